"""The paper's ablation claims, and verdicts on them from paired bootstraps over validation images.

Section 5.2 of the paper measures validation PCKh@0.5 over wrists, elbows, knees and ankles (the
joints that are hard); every claim below compares two of the study's variants on that number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hgstudy.annotations import Annotations
from hgstudy.bootstrap import paired_bootstrap
from hgstudy.joints import MPII_JOINTS
from hgstudy.metrics import MPII_EVAL_JOINTS, distances, pooled_pck

ABLATION_JOINTS = tuple(
    MPII_JOINTS.index(f"{side}_{part}") for part in ("wrist", "elbow", "knee", "ankle") for side in ("l", "r")
)

PAPER_FLIC = {"elbow": 99.0, "wrist": 97.0}  # FLIC test PCK@0.2, 8 stacks (paper, observer-centric)
# Paper numbers (validation PCKh@0.5 over wrists, elbows, knees, ankles), from Fig. 9 and its text.
PAPER_ACCURACY = {"hg_stacked_int": 87.4, "s4x2": 87.8, "s8x1": 88.1}
PAPER_MIDDLE_STACK = {"hg_stacked_int": 84.6, "s4x2": 86.5, "s8x1": 87.1}


@dataclass(frozen=True)
class Claim:
    experiment: str  # "supervision" (Fig. 8) or "stacks" (Fig. 9)
    better: str  # variant the paper found more accurate
    worse: str
    text: str


CLAIMS = (
    Claim("supervision", "hg_int", "hg", "HG-Int beats HG: supervision inside the decoder helps a single hourglass"),
    Claim("supervision", "hg_stacked", "hg", "HG-Stacked beats HG: two 4-module hourglasses beat one 8-module one"),
    Claim("supervision", "hg_stacked_int", "hg_stacked",
          "HG-Stacked-Int beats HG-Stacked: supervising both stacks helps"),
    Claim("supervision", "hg_stacked_int", "hg_int", "HG-Stacked-Int beats HG-Int: best of Fig. 8"),
    Claim("stacks", "s4x2", "hg_stacked_int", "4 x 2 beats 2 x 4 at equal parameters"),
    Claim("stacks", "s8x1", "s4x2", "8 x 1 beats 4 x 2 at equal parameters"),
    Claim("stacks", "s8x1", "s8x1_last", "8 x 1 needs intermediate supervision: all stacks beat last only"),
)


def ablation_accuracy(ann: Annotations, pred) -> float:
    """PCKh@0.5 (official `<=`) with the instances of wrists, elbows, knees and ankles pooled."""
    return pooled_pck(distances(ann, pred), 0.5, ABLATION_JOINTS)


def verdict(ci_low: float, ci_high: float) -> str:
    """The claim 'better > worse' against a 95% interval of their difference."""
    if ci_low > 0:
        return "reproduced"
    if ci_high < 0:
        return "not reproduced (reversed)"
    return "inconclusive at this budget"


def judge_claims(ann: Annotations, predictions: dict[str, np.ndarray], claims=CLAIMS, n_resamples: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """One row per claim whose two variants have predictions: accuracies, difference, 95% CI, verdict."""
    rows = []
    for claim in claims:
        if claim.better not in predictions or claim.worse not in predictions:
            continue
        boot = paired_bootstrap(
            distances(ann, predictions[claim.better]), distances(ann, predictions[claim.worse]), ann.image_index,
            joints=ABLATION_JOINTS, threshold=0.5, n_resamples=n_resamples, seed=seed,
        ).loc["total"]
        rows.append({
            "experiment": claim.experiment, "claim": claim.text, "better": claim.better, "worse": claim.worse,
            "acc_better": boot["a"], "acc_worse": boot["b"], "diff": boot["diff"],
            "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "verdict": verdict(boot["ci_low"], boot["ci_high"]),
        })
    return pd.DataFrame(rows)


def seed_spread(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count across seeds of a long table with columns variant, seed, accuracy."""
    grouped = accuracy.groupby("variant")["accuracy"]
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "seeds": grouped.count()})


def middle_stack(stacks: int) -> int:
    """0-based index of a network's middle stack (the paper's Fig. 9: stack 1 of 2, 2 of 4, 4 of 8)."""
    return max(stacks // 2 - 1, 0)


def load_runs(results: Path, runs: dict[str, list[str]], ann: Annotations) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Read every run's train/evaluate outputs under `results` (train/<key>, evaluate/<key>).

    Returns (table: one row per run with size, speed and accuracies; predictions: {variant: {key: preds}};
    curves: validation PCKh over training steps, long format with variant and run columns).
    """
    import h5py

    rows, predictions, curves = [], {}, []
    for variant, keys in runs.items():
        for key in keys:
            train = json.loads((results / "train" / key / "metrics.json").read_text())
            with h5py.File(results / "evaluate" / key / "preds.h5", "r") as f:
                stacks = f["preds_stacks"][:]
            predictions.setdefault(variant, {})[key] = stacks[-1]
            middle = middle_stack(len(stacks))
            rows.append({
                "variant": variant, "run": key, "stacks": len(stacks), "params": train["params"],
                "gflops": train["gflops"], "samples_per_s": train.get("samples_per_s"),
                "pckh_total": pooled_pck(distances(ann, stacks[-1]), 0.5, MPII_EVAL_JOINTS),
                "accuracy": ablation_accuracy(ann, stacks[-1]),
                "accuracy_middle_stack": ablation_accuracy(ann, stacks[middle]) if len(stacks) > 1 else np.nan,
                "paper": PAPER_ACCURACY.get(variant, np.nan), "paper_middle": PAPER_MIDDLE_STACK.get(variant, np.nan),
            })
            val = pd.read_csv(results / "train" / key / "val.tsv", sep="\t")
            curves.append(val.assign(variant=variant, run=key))
    return pd.DataFrame(rows), predictions, pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
