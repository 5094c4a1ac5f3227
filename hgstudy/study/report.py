"""The ablation report's words, computed from the run's numbers so that they stay true when the numbers change.

`scope` states what the study measured and how it differs from the paper (data, model size, samples seen,
seeds, what the intervals cover); `standing` places the networks against the data stage's trivial baselines;
`conclusion` turns the judged claims and their trends (`ablation.claim_trends`) into a short paragraph.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAPER_SAMPLES = 800_000 * 6  # the official code: 100 epochs x 8000 iterations of batch 6
DATASET_WORDS = {
    "mannequin": "MPII Mannequins: the real MPII poses rendered as mannequins in synthetic scenes (not MPII's images)",
    "mpii": "MPII Human Pose (the real images)",
    "flic": "FLIC",
}


FAMILY_WORDS = {"supervision": "Fig. 8", "stacks": "Fig. 9", "extension": "this study's extension"}


def scope(runs: pd.DataFrame, people: int, families: dict[str, int]) -> str:
    """Markdown: what this run of the study is, from its runs table (one row per run)."""
    first = runs.iloc[0]
    seeds = runs.groupby("variant").size()
    samples = int(first.steps * first.batch_size)
    params = f"{runs.params.min() / 1e6:.2f}-{runs.params.max() / 1e6:.2f} M"
    seed_text = (f"{seeds.min()} seeds per variant" if seeds.min() == seeds.max()
                 else f"{seeds.min()}-{seeds.max()} seeds per variant")
    return "\n".join([
        f"- **Data:** {DATASET_WORDS.get(first.dataset, first.dataset)}; scored on {people:,} validation people "
        f"(official MPII protocol, `<=`, flip test).",
        f"- **Networks:** {params} parameters at {first.input_res} px input and {first.features} features "
        f"(the paper: about 25 M at 256 px, 256 features).",
        f"- **Training:** {first.steps:,} steps of {first.batch_size} = {samples:,} samples, "
        f"{100 * samples / PAPER_SAMPLES:.2g}% of the paper's {PAPER_SAMPLES / 1e6:.1f} M; "
        f"{first.optimizer} at {first.lr:g}, schedule {first.schedule}"
        + (f" with {first.warmup} warm-up steps" if first.get("warmup") else "")
        + (f", weights averaged (EMA {first.ema:g}) for validation and evaluation" if first.get("ema") else "")
        + ".",
        hg_int_heads(runs),
        f"- **Seeds:** {seed_text}; a claim's interval covers the spread between seeds and the sampling of "
        f"validation images (`hgstudy.study.stats`).",
        f"- **Comparisons:** {sum(families.values())} claims in {len(families)} families, one per figure ("
        + ", ".join(f"{FAMILY_WORDS.get(k, k)}: {m}" for k, m in families.items())
        + "); each verdict uses an interval family-wise within its figure (Bonferroni: "
        + ", ".join(sorted({f"{100 - 5 / m:.2f}% in a family of {m}" for m in families.values()}))
        + "); the per-claim 95% interval is shown beside it, and the smallest difference each family-wise "
          "interval detects with 80% power (`detectable`) beside the paper's difference.",
        "- **The paper's numbers** (87-88% on this measure) come from full-size networks trained on MPII for 4.8 M "
        "samples: they set the direction of each claim, not a level these runs could reach.",
    ])


def hg_int_heads(runs: pd.DataFrame) -> str:
    """Markdown: the size of HG-Int's decoder heads here against the paper's (32 x 32 and 16 x 16 for a 64 x 64
    output), which decides how much their supervision can teach."""
    first = runs.iloc[0]
    out, depth = int(first.input_res) // 4, int(first.get("depth", 4))
    heads = " and ".join(f"{out // f} x {out // f}" for f in (2, 4)[:min(2, depth - 1)])
    return (f"- **HG-Int's decoder heads** predict {heads} maps here (output {out} x {out}, hourglass depth {depth}); "
            "the paper's predict 32 x 32 and 16 x 16 (output 64 x 64): a coarser map can teach less, so Fig. 8's "
            "HG-Int claims test a weaker version of the paper's decoder supervision.")


def standing(table: pd.DataFrame, baselines: dict | None, people: int) -> str:
    """Markdown: the variants' final accuracy (mean over seeds, the ablation's measure) against the data stage's
    baselines on that measure (`results/data/metrics.json`); empty when the baselines are not at hand."""
    if not baselines or "mean_pose_ablation" not in baselines or not len(table):
        return ""
    means = table.groupby("variant").accuracy.mean()
    mean_pose, neighbour = baselines["mean_pose_ablation"], baselines["nearest_neighbour_ablation"]
    same = baselines.get("baseline_people") == people
    text = (f"The variants' accuracies (mean over seeds) lie between {means.min():.1f}% and {means.max():.1f}% on "
            f"this measure; the data stage's trivial baselines score {mean_pose:.1f}% (the training poses' mean "
            f"pose) and {neighbour:.1f}% (nearest neighbour)" + (" on the same people. " if same else ". "))
    if means.max() < mean_pose + 2:
        return text + ("At this budget the networks have learned little more than the average pose, so "
                       "differences between architectures of the size the paper reports (a few points at 87-88%) "
                       "cannot be expected to show here; a longer budget is the remedy.")
    if means.min() < neighbour:
        return text + "Some variants are still below the nearest-neighbour baseline: training is at an early stage."
    return text + "Every variant is above both baselines."


def conclusion(claims: pd.DataFrame, claim_trends: pd.DataFrame | None = None) -> str:
    """Markdown: what the judged claims show, one line per claim, then the counts."""
    if not len(claims):
        return "No claim has both of its variants in these runs."
    trend_of = {} if claim_trends is None else dict(zip(claim_trends.claim, claim_trends.trend))
    lines = []
    for row in claims.itertuples():
        trend = trend_of.get(f"{row.better} - {row.worse}") if row.at_stack == "last" else None
        over = f"; over training the difference is {trend}" if trend else ""
        source = ("the paper gives this figure as curves, no numbers" if row.source.startswith("paper")
                  else "this study's own comparison: the paper has no number for it")
        paper = (f"the paper's {row.paper_diff:+.1f} is {'above' if row.paper_diff_detectable else 'below'} "
                 f"what this design detects ({row.detectable:.1f})" if np.isfinite(row.paper_diff) else
                 f"detectable here: {row.detectable:.1f} points ({source})")
        lines.append(f"- **{row.verdict}**: {row.claim} ({row.acc_better:.1f} vs {row.acc_worse:.1f}%, "
                     f"difference {row.diff:+.1f} points, 95% interval [{row.ci95_low:+.1f}, {row.ci95_high:+.1f}], "
                     f"family-wise [{row.family_low:+.1f}, {row.family_high:+.1f}]; {paper}; seed spread "
                     f"{row.seed_sd_better:.1f} / {row.seed_sd_worse:.1f}){over}.")
    counts = claims.verdict.value_counts()
    summary = ", ".join(f"{n} {'claim' if n == 1 else 'claims'}: {v}" for v, n in counts.items())
    return "\n".join([*lines, "", f"In all, {summary} (of {len(claims)} judged)."])
