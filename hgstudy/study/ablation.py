"""The paper's ablation claims, and verdicts on them from paired bootstraps over validation images.

Section 5.2 of the paper measures validation PCKh@0.5 over wrists, elbows, knees and ankles (the
joints that are hard); every claim below compares two of the study's variants on that number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_JOINTS
from hgstudy.scoring.annotations import Annotations
from hgstudy.scoring.bootstrap import paired_bootstrap
from hgstudy.scoring.metrics import MPII_EVAL_JOINTS, distances, pooled_pck
from hgstudy.study.files import read_eval_results, read_train_results
from hgstudy.study.paper import PAPER_ACCURACY, PAPER_MIDDLE_STACK

ABLATION_JOINTS = tuple(
    MPII_JOINTS.index(f"{side}_{part}") for part in ("wrist", "elbow", "knee", "ankle") for side in ("l", "r")
)

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


def load_runs(results: Path, runs: dict[str, list[str]], ann: Annotations):
    """Read every run's train/evaluate outputs under `results` (train/<key>, evaluate/<key>; `hgstudy.study.files`).

    `ann`: the whole validation split's ground truth. Returns (table: one row per run with size, speed and
    accuracies; predictions: {variant: {key: preds}}; curves: validation PCKh over training steps, long format
    with variant and run columns; the annotations of the people evaluated, the same for every run).
    """
    rows, predictions, curves, evaluated = [], {}, [], None
    for variant, keys in runs.items():
        for key in keys:
            train, val = read_train_results(results / "train" / key)
            stacks, index, _ = read_eval_results(results / "evaluate" / key)
            if evaluated is None:
                evaluated = index
            elif not np.array_equal(index, evaluated):
                raise UserError(f"run {key} was evaluated on other validation people than the first run; "
                                "evaluate every run with the same settings")
            people = ann.take(index)
            predictions.setdefault(variant, {})[key] = stacks[-1]
            middle = middle_stack(len(stacks))
            rows.append({
                "variant": variant, "run": key, "stacks": len(stacks), "params": train["params"],
                "gflops": train["gflops"], "samples_per_s": train.get("samples_per_s"),
                "pckh_total": pooled_pck(distances(people, stacks[-1]), 0.5, MPII_EVAL_JOINTS),
                "accuracy": ablation_accuracy(people, stacks[-1]),
                "accuracy_middle_stack": ablation_accuracy(people, stacks[middle]) if len(stacks) > 1 else np.nan,
                "paper": PAPER_ACCURACY.get(variant, np.nan), "paper_middle": PAPER_MIDDLE_STACK.get(variant, np.nan),
            })
            curves.append(val.assign(variant=variant, run=key))
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return pd.DataFrame(rows), predictions, curves, ann if evaluated is None else ann.take(evaluated)
