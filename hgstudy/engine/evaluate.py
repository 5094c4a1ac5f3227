"""Predictions and scores for a split: flip test, quarter-pixel decode, every stack (`hgstudy evaluate`).

Predictions are written in the layout `hgstudy score` reads (`hgstudy.scoring.predictions.write_predictions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from hgstudy.core.errors import UserError
from hgstudy.core.fields import add_arguments as add_field_arguments
from hgstudy.core.fields import arguments_given, check_fields, check_mapping, setting
from hgstudy.core.files import check_writable
from hgstudy.core.joints import METRICS
from hgstudy.datasets import build_dataset, dataset_spec, val_annotations
from hgstudy.engine.config import DatasetName
from hgstudy.engine.runtime import Device, Precision, Runtime, compile_model, resolve_runtime
from hgstudy.model.checkpoint import check_final_is_current, model_from_checkpoint, read_checkpoint
from hgstudy.model.network import fold_batchnorm
from hgstudy.model.size import summarize
from hgstudy.scoring import metrics
from hgstudy.scoring.annotations import Annotations
from hgstudy.scoring.decode import argmax_quarter, flip_average, to_image_coords
from hgstudy.scoring.predictions import write_predictions


@dataclass(frozen=True)
class EvaluateConfig:
    """How a checkpoint is evaluated: params.yaml `profiles.<profile>.evaluate`, `hgstudy evaluate`'s flags and the
    evaluate stage all read these fields."""

    dataset: DatasetName | None = setting(None, "the people to predict (default: the model's training data)")
    split: Literal["val", "train"] = setting("val", "which split (scores need the val split's ground truth)")
    data_root: str | None = setting(None, "data folder (default: the training run's)")
    limit: int | None = setting(None, "only the first N people (null = all)", minimum=1)
    flip: bool = setting(True, "flip test: average the heatmaps of the image and of its mirror image")
    batch_size: int = setting(32, "people per forward pass", minimum=1, maximum=65536)
    num_workers: int = setting(0, "data-loading processes", minimum=0, maximum=256)
    precision: Precision = setting("auto", "auto = the fastest correct precision here")
    device: Device = setting("auto", "where to run")
    compile: bool = setting(False, "torch.compile with freezing (worth it for a whole split: about 2x on a CPU)")

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "evaluation settings", prefix: str = "") -> EvaluateConfig:
        return cls(**check_mapping(cls, values, source, prefix))


@dataclass
class Predictions:
    heatmap_stacks: np.ndarray  # (S, N, J, 2) decoded heatmap pixels (quarter-pixel steps)
    matrices: np.ndarray  # (N, 2, 3) each person's map original image -> heatmap
    index: np.ndarray  # (N,) dataset index of each person
    joints: np.ndarray  # (N, J, 2) ground truth as the dataset gives it
    annotated: np.ndarray  # (N, J) bool
    visible: np.ndarray  # (N, J)
    norm: np.ndarray  # (N,) PCKh head size (MPII) or torso size (FLIC)
    layout: str = "mpii"  # the people's joint set (hgstudy.core.joints.JOINT_LAYOUTS)

    @cached_property
    def preds_stacks(self) -> np.ndarray:
        """(S, N, J, 2): every stack's predictions in original image pixels."""
        return to_image_coords(self.heatmap_stacks.transpose(1, 0, 2, 3), self.matrices).transpose(1, 0, 2, 3)

    @property
    def preds(self) -> np.ndarray:
        """(N, J, 2): the last stack's predictions."""
        return self.preds_stacks[-1]


class InMemory(Dataset):
    """A dataset's samples drawn once and kept: training-time validation sees the same people every time, so
    redrawing them (rendering mannequins, decoding JPEGs) each validation is wasted work."""

    def __init__(self, dataset):
        base = dataset.dataset if isinstance(dataset, Subset) else dataset
        self.flip, self.layout = base.flip, base.layout
        self.samples = [dataset[i] for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


@torch.no_grad()
def predict(model, dataset, runtime: Runtime | None = None, *, flip: bool = True, flip_perm=None,
            batch_size: int = 32, num_workers: int = 0) -> Predictions:
    """Run `model` (a StackedHourglass, any mode: it is put in eval mode and restored) over `dataset`.

    With flip, each batch is run together with its mirror image and the heatmaps are averaged (`decode`).
    """
    runtime = runtime or resolve_runtime("cpu", "fp32", False)
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    perm = list(flip_perm) if flip_perm is not None else base.flip
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    stacks, keep = [], {k: [] for k in ("matrix", "index", "joints", "annotated", "visible", "norm")}
    try:
        for batch in loader:
            x = runtime.input(batch["image"])
            n = x.shape[0]
            if flip:
                x = torch.cat([x, x.flip(-1)])
            with runtime.autocast():
                heatmaps = model(x)  # (n or 2n, S, J, h, w)
            heatmaps = heatmaps.float()
            if flip:
                heatmaps = flip_average(heatmaps[:n], heatmaps[n:], perm)
            stacks.append(argmax_quarter(heatmaps).cpu().numpy())  # (n, S, J, 2) heatmap pixels
            for k in keep:
                keep[k].append(np.asarray(batch[k]))
    finally:
        model.train(was_training)
    if not stacks:
        raise UserError("the evaluation dataset is empty")
    heatmap_stacks = np.concatenate(stacks).transpose(1, 0, 2, 3)  # (S, N, J, 2)
    return Predictions(heatmap_stacks, *(np.concatenate(keep[k]) for k in keep), layout=base.layout)


def score_arrays(preds, joints, annotated, norm, layout: str) -> dict:
    """MPII joint set: {'pckh', 'auc', 'ablation'} (official protocol: Total, its AUC, and the paper's ablation
    measure, PCKh@0.5 over wrists, elbows, knees and ankles); FLIC: {'pck', 'auc'} (@0.2). In percent.
    """
    dist = metrics.normalized_distances(preds, joints, annotated, norm)
    if layout == "mpii":
        table = metrics.mpii_table(dist, "official")
        return {"pckh": table["total"], "auc": table["auc"],
                "ablation": metrics.ablation_pckh(dist)}
    curve = metrics.pooled_pck(dist, metrics.THRESHOLDS)
    return {"pck": metrics.pooled_pck(dist, 0.2), "auc": metrics.auc(curve)}


def score(p: Predictions) -> dict:
    """Scores of the last stack, plus `<score>_stack<i>` (1-based) of the headline scores for every stack."""
    out = score_arrays(p.preds, p.joints, p.annotated, p.norm, p.layout)
    keys = [METRICS[p.layout]] + (["ablation"] if p.layout == "mpii" else [])
    for i, stack in enumerate(p.preds_stacks, 1):
        scores = score_arrays(stack, p.joints, p.annotated, p.norm, p.layout)
        out.update({f"{key}_stack{i}": scores[key] for key in keys})
    return out


def save_predictions(path, p: Predictions) -> Path:
    """The predictions of every stack, in the prediction-file layout (`write_predictions`)."""
    return write_predictions(path, p.heatmap_stacks, p.matrices, p.index)


# ---------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="an hgstudy checkpoint (model.pt or checkpoint.pt of a training run)")
    parser.add_argument("--out", help="write predictions to this .h5 file")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    add_field_arguments(parser, EvaluateConfig, title="evaluation (values are YAML: --flip false, --limit 100)")


@dataclass
class Evaluation:
    """A checkpoint's predictions on a split, with what produced them."""

    model: torch.nn.Module  # the network as trained (fp32, BatchNorm unfolded), e.g. to draw its heatmaps
    dataset_name: str
    split: str
    data_root: str
    dataset: object  # the people predicted, in order (a Subset when limited)
    runtime: Runtime
    predictions: Predictions
    config: EvaluateConfig

    def annotations(self) -> Annotations:
        """Ground truth of the predicted validation people, as `hgstudy.scoring.metrics` wants it."""
        if self.split != "val":  # the annotation readers hold the validation splits' ground truth only
            raise UserError(f"ground truth for metrics is available for the val split only, not {self.split!r}")
        return val_annotations(self.dataset_name, self.predictions.index, self.data_root)


def evaluate_checkpoint(checkpoint, config: EvaluateConfig | None = None) -> Evaluation:
    """Predict a split of the dataset a checkpoint was trained on (or `config.dataset`), with its training
    settings. BatchNorm is folded into the convolutions for speed (the same function, `fold_batchnorm`).
    """
    c = config or EvaluateConfig()
    ckpt = read_checkpoint(checkpoint)
    check_final_is_current(checkpoint, ckpt)
    model = model_from_checkpoint(ckpt, checkpoint)
    trained = ckpt.get("train_config") or {}
    name = c.dataset or trained.get("dataset")
    if name is None:
        raise UserError(f"{checkpoint} does not say which dataset it was trained on; pass the dataset")
    spec = dataset_spec(name)
    if spec.joints != model.config.joints:
        raise UserError(f"the model predicts {model.config.joints} joints; dataset {name} has {spec.joints}")
    data_root = str(c.data_root or trained.get("data_root", "data"))
    data = build_dataset(name, c.split, input_res=model.config.input_res, sigma=trained.get("sigma", 1.0),
                         augment="none", seed=trained.get("seed", 0), data_root=data_root,
                         options=trained.get("data_options"))
    if c.limit:
        data = Subset(data, range(min(c.limit, len(data))))
    runtime = resolve_runtime(c.device, c.precision, "auto", c.compile, summarize(model.config)["gflops"])
    fast = compile_model(runtime.model(fold_batchnorm(model)), runtime, inference=True)
    p = predict(fast, data, runtime, flip=c.flip, batch_size=c.batch_size, num_workers=c.num_workers)
    return Evaluation(model, name, c.split, data_root, data, runtime, p, c)


def main(args) -> None:
    config = EvaluateConfig.from_dict(arguments_given(args, EvaluateConfig), "flags", "--")
    if args.out:  # before the predictions are computed, not after
        if Path(args.out).is_dir():
            raise UserError(f"--out {args.out} is a folder; name the predictions file to write (e.g. preds.h5)")
        check_writable(Path(args.out).resolve().parent)
    try:
        ev = evaluate_checkpoint(args.checkpoint, config)
        p, model = ev.predictions, ev.model
        scores = score(p)
        if args.out:
            save_predictions(args.out, p)  # atomic: an interrupted write leaves no file
    except KeyboardInterrupt:
        raise KeyboardInterrupt("interrupted; nothing was written") from None
    if args.json:
        print(json.dumps(scores))
        return
    key = METRICS[p.layout]
    print(f"{len(p.index)} people, {ev.dataset_name} {config.split}, flip test {'on' if config.flip else 'off'}, "
          f"{ev.runtime.describe()}")
    for i in range(1, model.config.stacks + 1):
        print(f"stack {i}: {key} {scores[f'{key}_stack{i}']:.2f}")
    print(f"{key}@{0.5 if key == 'pckh' else 0.2} {scores[key]:.2f}  AUC {scores['auc']:.2f}")
    if args.out:
        print(f"predictions written to {args.out}")
