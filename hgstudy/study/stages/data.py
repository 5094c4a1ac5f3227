"""The data stage: every run's settings checked, the data acquired (paper profile: MPII and FLIC downloaded),
the validation ground truth written, and the trivial baselines scored (mannequins: mean pose and nearest
neighbour, whose predictions the later stages draw beside the networks')."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_JOINTS
from hgstudy.data.download import acquire
from hgstudy.datasets import build_dataset, val_annotations
from hgstudy.mannequin.baselines import mean_pose, nearest_neighbour, normalised_poses
from hgstudy.mannequin.poses import Poses, load_poses
from hgstudy.scoring import metrics
from hgstudy.study.configs import check_every_run
from hgstudy.study.files import write_baselines, write_json, write_val_annotations
from hgstudy.study.params import ROOT, open_study

BASELINE_COLUMNS = ["total", "auc", "ablation", "wrist", "elbow", "knee", "ankle"]
# The baselines' sizes: the first `baseline_people` validation people scored (None: all), the median pose of the
# `nn_k` nearest of the first `nn_pool` training people (None: all). CI's are small: seconds on a CPU.
BASELINES = {"baseline_people": None, "nn_k": 20, "nn_pool": None}
CI_BASELINES = {"baseline_people": 100, "nn_k": 20, "nn_pool": 500}


@dataclass
class PreparedData:
    dataset: str  # what the study trains on
    data_root: Path
    baselines: pd.DataFrame  # one row per baseline: the official table and the ablation's measure (mannequins)
    people: int  # the validation people the baselines were scored on
    split_sizes: dict = field(default_factory=dict)  # paper profile: people per dataset and split

    def sample_sets(self) -> dict:
        """{title: dataset at 256 px} to show samples of: mannequins' validation and (augmented) training people;
        MPII's and FLIC's validation people."""
        if self.dataset == "mannequin":
            return {split: build_dataset("mannequin", split, input_res=256) for split in ("val", "train")}
        return {f"{name} val": build_dataset(name, "val", input_res=256, data_root=str(self.data_root))
                for name in ("mpii", "flic")}


def annotation_rates(poses: Poses) -> pd.DataFrame:
    """Per joint, over the training and validation people: % annotated, % of those visible (long format)."""
    people = np.concatenate([poses.train, poses.val])
    annotated, visible = poses.annotated[people], poses.visible[people]
    rates = pd.DataFrame({"joint": MPII_JOINTS, "annotated %": 100 * annotated.mean(0),
                          "visible % of annotated": 100 * visible.sum(0) / annotated.sum(0)})
    return rates.melt("joint", var_name="rate", value_name="percent")


def training_poses(poses: Poses) -> pd.DataFrame:
    """Every annotated joint of the training people in crop units (x, y relative to the centre, / 200 x scale)."""
    rel, annotated = normalised_poses(poses, "train")
    names = np.broadcast_to(np.array(MPII_JOINTS), annotated.shape)[annotated]
    return pd.DataFrame({"joint": names, "x": rel[..., 0][annotated], "y": rel[..., 1][annotated]})


def score_baselines(ann, predictions: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = {name: {**metrics.score_mpii(ann, p), "ablation": metrics.ablation_pckh(metrics.distances(ann, p))}
            for name, p in predictions.items()}
    return pd.DataFrame(rows).T[BASELINE_COLUMNS]


def data_stage(out, data_root="data", overrides: dict | None = None, root=ROOT) -> PreparedData:
    """Write the data stage's files to `out` (paths relative to `root`); `overrides` of the baselines' sizes
    (`BASELINES`; None: CI's)."""
    sizes = CI_BASELINES if overrides is None else {**BASELINES, **overrides}
    if set(sizes) != set(BASELINES):
        raise UserError(f"overrides: unknown key(s) {sorted(set(sizes) - set(BASELINES))}; allowed: "
                        f"{', '.join(BASELINES)}")
    baseline_people, nn_k, nn_pool = (sizes[k] for k in BASELINES)
    study = check_every_run(open_study(root))  # the first stage: a bad value in params.yaml stops it here, named
    out, data_root = study.path(out), study.path(data_root)
    dataset = study.section("train")["dataset"]
    if dataset != "mannequin":
        source = study.params["profiles"][study.profile].get("data") or {}  # a mirror; a test mirror's pins
        pins = source.get("mirror_pins")
        for name in ("mpii", "flic"):  # resumes partial downloads; verified files are not fetched again
            acquire(name, data_root, mirror=source.get("mirror"), pins=pins and study.path(pins))
    write_val_annotations(out, val_annotations(dataset, data_root=data_root))  # what every score is computed on
    if dataset != "mannequin":
        sizes = {f"{name}_{split}": len(build_dataset(name, split, input_res=256, data_root=str(data_root)))
                 for name in ("mpii", "flic") for split in ("train", "val")}
        write_json(out / "metrics.json", sizes)
        write_baselines(out, np.zeros(0, np.int64), {})  # no baselines off the mannequins: later stages show none
        return PreparedData(dataset, data_root, pd.DataFrame(), 0, sizes)
    poses = load_poses()
    people = np.arange(baseline_people or len(poses.val))
    pool = None if nn_pool is None else np.arange(nn_pool)
    predictions = {"mean_pose": mean_pose("val", poses)[people],
                   "nearest_neighbour": nearest_neighbour("val", k=nn_k, poses=poses, indices=people,
                                                          train_indices=pool)}
    table = score_baselines(poses.annotations("val").take(people), predictions)
    write_baselines(out, people, predictions)
    values = {f"{name}_{key}": row[key] for name, row in table.iterrows() for key in ("total", "auc", "ablation")}
    write_json(out / "metrics.json", {**values, "baseline_people": len(people)})
    return PreparedData(dataset, data_root, table, len(people))
