"""The study's files: what each pipeline stage writes for one run, and how the later stages read it back.

    runs/<variant>/<key>/       the training run: checkpoints and logs (DVC-cached)
    results/data/val_annotations.h5  the validation ground truth every score is computed against
    results/data/baselines.h5   the baselines' predictions (mean pose, nearest neighbour) of the same people
    results/train/<variant>/<key>/  metrics.json  numbers only: the final validation scores and training loss
                                run.json      what ran: variant, seed, parameters, GFLOPs, speed, runtime
                                train.tsv, val.tsv  the run's training and validation curves
    results/evaluate/<variant>/<key>/  metrics.json  numbers only: the official MPII table, AUC, every stack's Total
                                preds.h5      predictions of every stack (`hgstudy score` reads it)
                                pckh_curve.tsv  PCKh against the threshold

`<key>` is `params.run_name(variant, seed)`; a train or evaluate stage handles every seed of a variant, so runs
are grouped by variant (`pipeline.run_paths`). The notebooks write through these functions and the ablation reads
through them, so the contract between stages lives here and in `pipeline.run_paths`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from hgstudy.core.errors import UserError
from hgstudy.core.files import atomic_path, write_text
from hgstudy.scoring.annotations import Annotations, read_split_h5, write_split_h5
from hgstudy.scoring.predictions import read_prediction_stacks, write_predictions

TRAIN_LOGS = ("train.tsv", "val.tsv")


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, values: dict) -> Path:
    return write_text(path, json.dumps({k: _plain(v) for k, v in values.items()}, indent=2) + "\n")


def read_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing: run the stage that writes it first (`dvc repro`)")
    return json.loads(path.read_text())


def write_table(path, frame: pd.DataFrame) -> Path:
    """A DataFrame as a TSV file (no index), written atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)
    return Path(path)


def numbers(values: dict) -> dict:
    """Only the numeric entries (what `dvc metrics` should compare)."""
    return {k: v for k, v in values.items()
            if isinstance(v, int | float | np.number) and not isinstance(v, bool)}


# ------------------------------------------------------------------------------------------------ train
def write_train_results(results, run, info: dict, final: dict) -> None:
    """A training run's results: its final numbers, what ran (`info`), and copies of its curves."""
    results, run = Path(results), Path(run)
    results.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_LOGS:
        with atomic_path(results / name) as tmp:
            shutil.copyfile(run / name, tmp)
    # Not metrics: the speed varies between machines, the learning rate at the end is the schedule's (the
    # configured one, `lr`, stays in `info`).
    extra = {name: final[k] for k, name in (("samples_per_s", "samples_per_s"), ("lr", "final_lr")) if k in final}
    write_json(results / "metrics.json", numbers({k: v for k, v in final.items() if k not in ("samples_per_s", "lr")}))
    write_json(results / "run.json", {**info, **extra})


def read_train_log(results) -> pd.DataFrame:
    """A training run's train.tsv: the loss of every output at every logged step."""
    return pd.read_csv(Path(results) / "train.tsv", sep="\t")


def read_train_results(results) -> tuple[dict, pd.DataFrame]:
    """(metrics and run info of one training run, its validation curve)."""
    results = Path(results)
    values = {**read_json(results / "metrics.json"), **read_json(results / "run.json")}
    return values, pd.read_csv(results / "val.tsv", sep="\t")


# --------------------------------------------------------------------------------------------- evaluate
def write_eval_results(results, heatmap_stacks, matrices, index, metrics: dict, curve: pd.DataFrame,
                       curve_file: str = "pckh_curve.tsv") -> None:
    """An evaluated run's predictions (`write_predictions`), numbers and curve (PCKh; the FLIC stage: PDJ)."""
    results = Path(results)
    write_predictions(results / "preds.h5", heatmap_stacks, matrices, index)
    write_json(results / "metrics.json", numbers(metrics))
    with atomic_path(results / curve_file) as tmp:
        curve.to_csv(tmp, sep="\t")


def read_crop_matrices(results) -> np.ndarray:
    """(N, 2, 3): each evaluated person's map original image -> heatmap (`read_prediction_stacks`)."""
    return read_prediction_stacks(Path(results) / "preds.h5")[2]


def read_eval_results(results) -> tuple[np.ndarray, np.ndarray, dict]:
    """(preds_stacks (S, N, J, 2), dataset index (N,), metrics) of one evaluated run."""
    results = Path(results)
    stacks, index, _ = read_prediction_stacks(results / "preds.h5")
    return stacks, index, read_json(results / "metrics.json")


# ------------------------------------------------------------------------------------------ ground truth
VAL_ANNOTATIONS = "val_annotations.h5"


def write_val_annotations(results, ann: Annotations) -> Path:
    return write_split_h5(ann, Path(results) / VAL_ANNOTATIONS)


def read_val_annotations(results) -> Annotations:
    import h5py

    path = Path(results) / VAL_ANNOTATIONS
    if not path.is_file():
        raise UserError(f"{path} is missing: the data stage writes it (`dvc repro data`)")
    with h5py.File(path, "r") as f:
        dataset = str(f.attrs.get("dataset", "mpii"))
    return read_split_h5(path, dataset)


BASELINES = "baselines.h5"


def write_baselines(results, index: np.ndarray, predictions: dict[str, np.ndarray]) -> Path:
    """Each baseline's predictions (N, J, 2) in original image pixels of the validation people `index` (N,)."""
    import h5py

    with atomic_path(Path(results) / BASELINES) as tmp, h5py.File(tmp, "w") as f:
        f["index"] = np.asarray(index, np.int64)
        for name, pred in predictions.items():
            f[name] = np.asarray(pred, np.float64)
    return Path(results) / BASELINES


def read_baselines(results, index=None) -> dict[str, np.ndarray]:
    """{baseline: predictions (N, J, 2)} of the validation people `index` (default: those the data stage scored);
    empty where the data stage wrote none (the paper profile) or did not score all of these people."""
    import h5py

    path = Path(results) / BASELINES
    if not path.is_file():
        return {}
    with h5py.File(path, "r") as f:
        row_of = {int(person): row for row, person in enumerate(f["index"][()])}
        if index is not None and not all(int(person) in row_of for person in index):
            return {}
        rows = list(row_of.values()) if index is None else [row_of[int(person)] for person in index]
        return {name: f[name][()][rows] for name in f if name != "index"}


def read_pckh_curve(results) -> pd.DataFrame:
    """PCKh against the threshold of one evaluated run (columns threshold, head, ..., total)."""
    return pd.read_csv(Path(results) / "pckh_curve.tsv", sep="\t")
