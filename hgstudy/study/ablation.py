"""The paper's ablation claims, and what this study's runs show about each, with training variance counted.

Section 5.2 of the paper measures validation PCKh@0.5 over wrists, elbows, knees and ankles (the joints that
are hard; `scoring.metrics.ABLATION_JOINTS`); every claim compares two of the study's variants on that number,
averaged over each variant's seeds, with an interval that covers seeds and images (`study.stats`). Each of the
paper's figures is one family of claims (Fig. 8: four; Fig. 9: two at the last stack, two at the middle one;
this study's extension: one), so each verdict uses an interval family-wise within its figure (Bonferroni:
1 - 0.05 / m each): a figure answers one question, and a smaller family leaves a smaller difference
detectable. The per-claim 95% interval is reported beside it, and the smallest difference the family-wise
interval detects with 80% power beside the paper's own difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import apply_affine
from hgstudy.data.sample import draw_targets
from hgstudy.scoring.annotations import Annotations
from hgstudy.scoring.metrics import ABLATION_JOINTS, MPII_EVAL_JOINTS, ablation_pckh, distances, pooled_pck
from hgstudy.study import stats
from hgstudy.study.files import read_eval_results, read_pckh_curve, read_train_log, read_train_results
from hgstudy.study.paper import PAPER_ACCURACY, PAPER_MIDDLE_STACK


@dataclass(frozen=True)
class Claim:
    experiment: str  # the family: "supervision" (Fig. 8), "stacks" (Fig. 9) or "extension" (this study's own)
    better: str  # variant the source finds more accurate
    worse: str
    text: str
    source: str  # where the claim comes from
    stack: str = "last"  # whose predictions: the last stack's, or (Fig. 9's second measure) the middle one's

    def paper_difference(self) -> float:
        """better - worse in the paper (points), where the paper gives numbers (Fig. 9); else NaN."""
        table = PAPER_MIDDLE_STACK if self.stack == "middle" else PAPER_ACCURACY
        return table.get(self.better, np.nan) - table.get(self.worse, np.nan)


FIG8, FIG9 = "paper, Fig. 8 and section 5.2", "paper, Fig. 9 and section 5.2"
CLAIMS = (
    Claim("supervision", "hg_int", "hg", "HG-Int beats HG: supervision inside the decoder helps a single hourglass",
          FIG8),
    Claim("supervision", "hg_stacked", "hg", "HG-Stacked beats HG: two 4-module hourglasses beat one 8-module one",
          FIG8),
    Claim("supervision", "hg_stacked_int", "hg_stacked", "HG-Stacked-Int beats HG-Stacked: supervising both stacks "
          "helps", FIG8),
    Claim("supervision", "hg_stacked_int", "hg_int", "HG-Stacked-Int beats HG-Int: best of Fig. 8", FIG8),
    Claim("stacks", "s4x2", "hg_stacked_int", "4 x 2 beats 2 x 4 at equal parameters", FIG9),
    Claim("stacks", "s8x1", "s4x2", "8 x 1 beats 4 x 2 at equal parameters", FIG9),
    Claim("stacks", "s4x2", "hg_stacked_int", "at the middle stack, 4 x 2 beats 2 x 4 (later stacks refine)", FIG9,
          "middle"),
    Claim("stacks", "s8x1", "s4x2", "at the middle stack, 8 x 1 beats 4 x 2", FIG9, "middle"),
    Claim("extension", "s8x1", "s8x1_last", "8 x 1 with supervision on every stack beats 8 x 1 supervised at the "
          "end only", "this study's extension (the paper trains no 8 x 1 without intermediate supervision)"),
)


def verdict(claim: Claim, low: float, high: float) -> str:
    """What an interval of better - worse shows, in the words of the claim's source."""
    if not claim.source.startswith("paper"):
        return {"agrees with the paper": "supported", "disagrees with the paper": "contradicted"}.get(
            stats.verdict(low, high), stats.verdict(low, high))
    return stats.verdict(low, high)


def family_confidence(claim: Claim, claims=CLAIMS, confidence: float = 0.95) -> float:
    """Each interval's confidence in the claim's family (its figure), Bonferroni: 1 - (1 - confidence) / m."""
    return 1 - (1 - confidence) / sum(c.experiment == claim.experiment for c in claims)


def judge_claims(ann: Annotations, predictions: dict[str, dict[str, np.ndarray]], claims=CLAIMS,
                 confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                 middle: dict[str, dict[str, np.ndarray]] | None = None) -> pd.DataFrame:
    """One row per claim whose two variants have predictions ({variant: {run key: (N, J, 2)}}, one per seed;
    `middle`: the same of the middle stack, for the claims about it).

    Columns: the claim, the mean accuracies, the difference, each variant's seed spread (sd across its runs),
    the standard errors from seeds and from images, the per-claim and the family-wise interval, the verdict
    (from the family-wise interval), the smallest difference the family-wise interval detects with 80% power
    (`detectable`), the paper's difference and whether it is at least that, and the seeds behind each side.
    """
    sources = {"last": predictions, "middle": middle or {}}
    judged = [c for c in claims if c.better in sources[c.stack] and c.worse in sources[c.stack]]
    hits = {(stack, v): [stats.hit_sums(ann, p, ABLATION_JOINTS) for p in runs.values()]
            for stack, by_variant in sources.items() for v, runs in by_variant.items()}
    rows = []
    for k, claim in enumerate(judged):
        (a, valid), (b, _) = (tuple(np.stack(x) for x in zip(*hits[claim.stack, v]))
                              for v in (claim.better, claim.worse))
        valid = valid[0]
        family = family_confidence(claim, claims, confidence)
        one = stats.difference_interval(a, b, valid, confidence, n_resamples, seed + k)
        wide = stats.difference_interval(a, b, valid, family, n_resamples, seed + k)
        paper = claim.paper_difference()
        rows.append({
            "experiment": claim.experiment, "at_stack": claim.stack, "claim": claim.text, "source": claim.source,
            "better": claim.better, "worse": claim.worse, "acc_better": one["acc_a"], "acc_worse": one["acc_b"],
            "diff": one["diff"], "seed_sd_better": one["seed_sd_a"], "seed_sd_worse": one["seed_sd_b"],
            "se_seeds": one["se_seed"], "se_images": one["se_images"], "ci95_low": one["ci_low"],
            "ci95_high": one["ci_high"], "family_confidence": family, "family_low": wide["ci_low"],
            "family_high": wide["ci_high"], "verdict": verdict(claim, wide["ci_low"], wide["ci_high"]),
            "detectable": wide["detectable"], "paper_diff": paper,
            "paper_diff_detectable": bool(paper >= wide["detectable"]) if np.isfinite(paper) else None,
            "seeds_better": one["seeds_a"], "seeds_worse": one["seeds_b"],
        })
    frame = pd.DataFrame(rows)
    frame.attrs.update(confidence=confidence, comparisons=len(claims),
                       families={c.experiment: sum(d.experiment == c.experiment for d in claims) for c in claims})
    return frame


def claim_curves(curves: pd.DataFrame, claims=CLAIMS, measure: str = "ablation",
                 confidence: float = 0.95) -> pd.DataFrame:
    """Each claim's difference (better - worse) over training: per validation step, the difference of the
    variants' means over seeds and a t band from the seeds' spread (training variance only; the validation
    subset is fixed). `curves`: long format with variant, run, step and `measure` columns."""
    rows = []
    for claim in (c for c in claims if c.stack == "last"):  # the curves are the last stack's
        a, b = (curves[curves.variant == v].pivot_table(index="step", columns="run", values=measure)
                for v in (claim.better, claim.worse))
        for step in a.index.intersection(b.index):
            ma, la, _ = stats.seed_band(a.loc[step], confidence)
            mb, lb, _ = stats.seed_band(b.loc[step], confidence)
            half = np.hypot(ma - la, mb - lb)  # t half-widths combined (a conservative Welch band)
            rows.append({"claim": f"{claim.better} - {claim.worse}", "step": step, "diff": ma - mb,
                         "low": ma - mb - half, "high": ma - mb + half})
    return pd.DataFrame(rows)


def claim_trends(curves: pd.DataFrame, claims=CLAIMS, measure: str = "ablation",
                 confidence: float = 0.95) -> pd.DataFrame:
    """Per claim (last stack), how its difference moved over the later half of training, with a seed interval:
    each run's change over the later half (a least-squares line through its validations there, times their span),
    the difference of the variants' mean changes, and a Welch t interval from the runs' spread. The trend is
    "growing" (moving away from zero) or "shrinking" (towards it) when that interval excludes zero, else "stable"."""
    rows = []
    for claim in (c for c in claims if c.stack == "last"):
        changes = []
        for variant in (claim.better, claim.worse):
            wide = curves[curves.variant == variant].pivot_table(index="step", columns="run", values=measure)
            later = wide.iloc[len(wide) // 2:] if len(wide) >= 4 else wide
            if len(later) < 2:
                break
            x = later.index.to_numpy(float)
            changes.append(np.polyfit(x, later.to_numpy(float), 1)[0] * (x[-1] - x[0]))
        if len(changes) < 2:
            continue
        (a, b), last = changes, float(curves[curves.variant == claim.better].groupby("step")[measure].mean().iloc[-1]
                                      - curves[curves.variant == claim.worse].groupby("step")[measure].mean().iloc[-1])
        change = float(a.mean() - b.mean())
        va, vb = (x.var(ddof=1) / len(x) if len(x) > 1 else np.nan for x in (a, b))
        df = stats.welch_df(va, len(a), vb, len(b))
        half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(va + vb))
        low, high = change - half, change + half
        trend = ("stable" if not (low > 0 or high < 0) else
                 "growing" if np.sign(change) == np.sign(last) else "shrinking")
        rows.append({"claim": f"{claim.better} - {claim.worse}", "last_diff": last, "change_later_half": change,
                     "change_low": low, "change_high": high, "trend": trend, "validations": len(later)})
    return pd.DataFrame(rows)


def middle_stack(stacks: int) -> int:
    """0-based index of a network's middle stack (the paper's Fig. 9: stack 1 of 2, 2 of 4, 4 of 8)."""
    return max(stacks // 2 - 1, 0)


# what run.json records of each run's configuration (the report states them)
RUN_SETTINGS = ("dataset", "input_res", "sigma", "features", "depth", "steps", "batch_size", "optimizer", "lr",
                "schedule", "warmup", "ema", "supervision", "val_samples", "val_flip")


@dataclass
class Runs:
    """Everything the ablation report reads of the study's runs (`load_runs`)."""

    table: pd.DataFrame  # one row per run: settings, size, speed, accuracies
    predictions: dict  # {variant: {run key: (N, J, 2) last stack}}
    middle: dict  # the same of the middle stack, for the variants whose middle stack is supervised
    curves: pd.DataFrame  # validation scores over training: variant, run, step, pckh, ablation, ...
    stacks: pd.DataFrame  # the ablation's accuracy of every stack: variant, run, stack, accuracy, supervised
    pckh_curves: pd.DataFrame  # PCKh (official Total) against the threshold: variant, run, threshold, total
    ann: Annotations  # the validation people every run was evaluated on
    evaluated: np.ndarray  # their indices in the validation split


def load_runs(results: Path, runs: dict[str, list[str]], ann: Annotations) -> Runs:
    """Read every run's outputs under `results` (train/ and evaluate/<variant>/<key>; `hgstudy.study.files`).

    `ann`: the whole validation split's ground truth. A stack's accuracy is marked unsupervised where its output
    gets no loss (it is not trained to predict, so its number means nothing); the middle stack's accuracy is
    then NaN in the table.
    """
    rows, predictions, middles, curves, stack_rows, pckh, evaluated = [], {}, {}, [], [], [], None
    for variant, keys in runs.items():
        for key in keys:
            train, val = read_train_results(results / "train" / variant / key)
            stacks, index, _ = read_eval_results(results / "evaluate" / variant / key)
            if evaluated is None:
                evaluated = index
            elif not np.array_equal(index, evaluated):
                raise UserError(f"run {key} was evaluated on other validation people than the first run; "
                                "evaluate every run with the same settings")
            people = ann.take(index)
            predictions.setdefault(variant, {})[key] = stacks[-1]
            by_stack = [ablation_pckh(distances(people, s)) for s in stacks]
            supervised = [train.get("supervision") == "all" or i == len(stacks) - 1 for i in range(len(stacks))]
            stack_rows += [{"variant": variant, "run": key, "stack": i + 1, "stacks": len(stacks), "accuracy": acc,
                            "supervised": sup} for i, (acc, sup) in enumerate(zip(by_stack, supervised))]
            middle = middle_stack(len(stacks))
            if len(stacks) > 1 and supervised[middle]:
                middles.setdefault(variant, {})[key] = stacks[middle]
            rows.append({
                "variant": variant, "run": key, "seed": train.get("seed"), "stacks": len(stacks),
                **{k: train.get(k) for k in RUN_SETTINGS}, "params": train["params"], "gflops": train["gflops"],
                "samples_per_s": train.get("samples_per_s"),
                "final_loss": read_train_log(results / "train" / variant / key)[f"loss_stack{len(stacks)}"].iloc[-1],
                "pckh_total": pooled_pck(distances(people, stacks[-1]), 0.5, MPII_EVAL_JOINTS),
                "accuracy": by_stack[-1],
                "accuracy_middle_stack": by_stack[middle] if len(stacks) > 1 and supervised[middle] else np.nan,
                "paper": PAPER_ACCURACY.get(variant, np.nan), "paper_middle": PAPER_MIDDLE_STACK.get(variant, np.nan),
            })
            curves.append(val.assign(variant=variant, run=key))
            pckh.append(read_pckh_curve(results / "evaluate" / variant / key).assign(variant=variant, run=key))
    return Runs(pd.DataFrame(rows), predictions, middles,
                pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(), pd.DataFrame(stack_rows),
                pd.concat(pckh, ignore_index=True) if pckh else pd.DataFrame(),
                ann if evaluated is None else ann.take(evaluated),
                np.arange(len(ann.joints)) if evaluated is None else evaluated)


def what_was_learned(ann: Annotations, pred, mean_pose=None, joints=ABLATION_JOINTS) -> dict:
    """Does a network follow the image or guess an average pose? Each joint is placed relative to the person's
    ground-truth centroid, in head sizes (so a person's position and size do not count):

    - `spread_ratio`: the predictions' spread across people (sd per joint and axis, averaged) over the ground
      truth's: near 0 for one pose predicted for everyone, near 1 for predictions that vary as people do;
    - `near_mean_pose` (given the mean-pose baseline's predictions of the same people): the share of the joints
      predicted within a quarter head size of where the mean pose puts them;
    - `bias_<part>_y`: the mean vertical error of a part (both sides, head sizes; positive = predicted too low).
    """
    gt, p = np.asarray(ann.joints, float), np.asarray(pred, float)
    centre = np.nanmean(gt, axis=1, keepdims=True)
    scale = ann.ref_length[:, None, None]
    rel_gt, rel_p = (gt - centre) / scale, (p - centre) / scale
    rel_p = np.where(np.isnan(rel_gt), np.nan, rel_p)  # the same people and joints on both sides
    joints = list(joints)
    spread = np.nanstd(rel_p[:, joints], axis=0).mean() / np.nanstd(rel_gt[:, joints], axis=0).mean()
    out = {"spread_ratio": float(spread)}
    if mean_pose is not None:
        apart = np.linalg.norm(p[:, joints] - np.asarray(mean_pose, float)[:, joints], axis=-1) / scale[..., 0]
        out["near_mean_pose"] = float(np.mean(apart[~np.isnan(rel_gt[:, joints, 0])] <= 0.25))
    names = ann.joint_names
    for part in dict.fromkeys(names[j].split("_", 1)[1] for j in joints):
        both = [j for j in joints if names[j].endswith(part)]
        out[f"bias_{part}_y"] = float(np.nanmean(rel_p[:, both, 1] - rel_gt[:, both, 1]))
    return out


def zero_loss(ann: Annotations, matrices: np.ndarray, res: int, sigma: float) -> float:
    """The loss of predicting all-zero heatmaps for these people, as training computes it (the mean over people,
    joints and pixels of target weight x target^2), with each person's crop (`matrices`, image -> heatmap) and
    targets drawn as training draws them (`draw_targets`): what a network that learned nothing scores."""
    total = 0.0
    for matrix, joints, annotated in zip(matrices, np.nan_to_num(ann.joints), ann.annotated):
        targets, weights = draw_targets(apply_affine(matrix, joints), annotated, res, sigma)
        total += float((weights[:, None, None] * targets.astype(np.float64) ** 2).mean())
    return total / len(matrices)


def variant_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean and sd across seeds of the accuracies, and the number of seeds."""
    grouped = table.groupby("variant", sort=False)
    out = grouped[["accuracy", "accuracy_middle_stack", "pckh_total"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = grouped.size()
    out["paper"] = grouped["paper"].first()
    return out
