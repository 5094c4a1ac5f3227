"""The ablation stage: every run of the study read back, the paper's claims judged with intervals over seeds and
validation images, what the networks learned diagnosed, and the tables written (`results/ablations/`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hgstudy.scoring import metrics
from hgstudy.study.ablation import (
    CLAIMS,
    Runs,
    claim_curves,
    claim_trends,
    judge_claims,
    load_runs,
    variant_summary,
    what_was_learned,
    zero_loss,
)
from hgstudy.study.files import (
    read_baselines,
    read_crop_matrices,
    read_json,
    read_val_annotations,
    write_json,
    write_table,
)
from hgstudy.study.params import ROOT, open_study
from hgstudy.study.stats import coverage, design_detectable

CI_RUNS = {"hg_stacked": ["ci-a", "ci-b"], "hg_stacked_int": ["ci-c", "ci-d"]}  # CI's: two variants, two seeds
BASELINE_NAMES = {"mean_pose": "mean pose", "nearest_neighbour": "nearest neighbour"}


@dataclass
class Ablations:
    runs: Runs
    claims: pd.DataFrame  # one row per judged claim (claims.tsv)
    over_training: pd.DataFrame  # each claim's difference at every validation (claim_curves.tsv)
    trends: pd.DataFrame  # each claim's change over the later half of training
    learned: pd.DataFrame  # per run: prediction spread and per-part bias (`what_was_learned`)
    baselines: dict  # the data stage's metrics.json: baselines on the ablation's measure, all people
    curve_baselines: dict  # the same baselines on the people the validation curves use
    coverage: pd.DataFrame | None  # the interval procedure on synthetic studies; None with one seed per variant
    baseline_predictions: dict  # {baseline: (N, J, 2)} of the runs' people, where the data stage has them

    @property
    def mean_pose(self):
        return self.baseline_predictions.get("mean_pose")

    def figure_variants(self, experiment: str) -> list[str]:
        """The variants a figure compares (its claims' variants), those of these runs, in the claims' order."""
        names = dict.fromkeys(v for c in CLAIMS if c.experiment == experiment for v in (c.worse, c.better))
        return [v for v in names if v in self.runs.predictions]

    def run_table(self) -> pd.DataFrame:
        """Per run, then a row per baseline (its accuracy on the same people, from the data stage)."""
        columns = ["variant", "seed", "params", "gflops", "samples_per_s", "pckh_total", "accuracy",
                   "accuracy_middle_stack"]
        rows = [{"variant": f"{name} (baseline)", "pckh_total": self.baselines.get(f"{key}_total", np.nan),
                 "accuracy": self.baselines.get(f"{key}_ablation", np.nan)}
                for key, name in BASELINE_NAMES.items() if self.same_people]
        return pd.concat([self.runs.table[columns], pd.DataFrame(rows)], ignore_index=True)

    @property
    def same_people(self) -> bool:
        """Did the data stage score its baselines on the people the runs were evaluated on?"""
        return self.baselines.get("baseline_people") == len(self.runs.ann)

    def learned_by_variant(self) -> pd.DataFrame:
        """`what_was_learned`: means over each variant's runs, then a row per baseline (same people)."""
        means = self.learned.groupby("variant", sort=False).mean(numeric_only=True)
        rows = {f"{BASELINE_NAMES[k]} (baseline)": what_was_learned(self.runs.ann, p, self.mean_pose)
                for k, p in self.baseline_predictions.items()}
        return pd.concat([means, pd.DataFrame(rows).T])

    def variant_table(self) -> pd.DataFrame:
        return variant_summary(self.runs.table)

    def design(self) -> pd.DataFrame:
        """The difference a family-wise interval detects (80% power) at this run's seed spread and image error, by
        seeds per variant and family size (4: one figure's claims; 9: all)."""
        return pd.DataFrame({f"family of {m}": {k: design_detectable(self.seed_sd, self.se_images, k, m)
                                                for k in (3, 4, 5, 6)} for m in (4, 9)}).rename_axis("seeds")

    @property
    def seed_sd(self) -> float:
        return float(pd.concat([self.claims.seed_sd_better, self.claims.seed_sd_worse]).median())

    @property
    def se_images(self) -> float:
        return float(self.claims.se_images.median())


def curve_baselines(data, runs: Runs) -> dict:
    """The baselines' ablation measure on the first `val_samples` validation people (what the curves score), as
    `{<name>_ablation: value}`; empty where the data stage did not score those people."""
    samples = runs.table.val_samples.dropna().unique() if "val_samples" in runs.table else []
    people = int(samples[0]) if len(samples) == 1 else len(runs.ann)
    predictions = read_baselines(data, np.arange(people))
    ann = read_val_annotations(data).take(np.arange(people))
    return {f"{name}_ablation": metrics.ablation_pckh(metrics.distances(ann, p)) for name, p in predictions.items()}


def ablation_stage(results, out, runs: dict | None = None, n_resamples: int = 1000, coverage_experiments: int = 200,
                   root=ROOT) -> Ablations:
    """Judge the claims on `runs` ({variant: [run keys]}; None: CI's, `CI_RUNS`) read from `results` (paths
    relative to `root`), and write claims.tsv, runs.tsv, the curves and metrics.json to `out`."""
    study = open_study(root)
    results, out = study.path(results), study.path(out)
    r = load_runs(results, CI_RUNS if runs is None else runs, read_val_annotations(results / "data"))
    claims = judge_claims(r.ann, r.predictions, n_resamples=n_resamples, middle=r.middle)
    baselines = read_baselines(results / "data", r.evaluated)
    learned = pd.DataFrame([{"variant": v, "run": k, **what_was_learned(r.ann, p, baselines.get("mean_pose"))}
                            for v, by_run in r.predictions.items() for k, p in by_run.items()])
    first = r.table.iloc[0]  # every run is evaluated on the same people and crops
    zeros = zero_loss(r.ann, read_crop_matrices(results / "evaluate" / first.variant / first.run),
                      int(first.input_res) // 4, float(first.sigma))
    learned = learned.merge(r.table[["variant", "run"]].assign(loss_vs_zeros=r.table.final_loss / zeros))
    seeds = int(r.table.groupby("variant").size().min())
    checks = None
    if seeds > 1:  # the synthetic studies take this run's accuracy and seed spread
        spread = float(r.table.groupby("variant").accuracy.std().median())
        checks = pd.DataFrame([coverage(true_diff=d, seeds=seeds, seed_spread=spread, people=len(r.ann),
                                        base=float(r.table.accuracy.mean()) / 100, images=r.ann.n_images,
                                        experiments=coverage_experiments, seed=i) for i, d in enumerate((0.0, 2.0))])
    done = Ablations(r, claims, claim_curves(r.curves), claim_trends(r.curves), learned,
                     read_json(results / "data" / "metrics.json"), curve_baselines(results / "data", r), checks,
                     baselines)
    write_table(out / "runs.tsv", r.table.merge(learned, on=["variant", "run"]))
    write_table(out / "claims.tsv", claims)
    write_table(out / "curves.tsv", r.curves)
    write_table(out / "claim_curves.tsv", done.over_training)
    write_table(out / "pckh_curves.tsv", r.pckh_curves)
    per_variant = {f"{v}_{k}": x for v, row in variant_summary(r.table).iterrows()
                   for k, x in row.items() if k in ("accuracy_mean", "accuracy_std", "pckh_total_mean")}
    write_json(out / "metrics.json", {**per_variant, **{
        f"{row.better}_vs_{row.worse}{'_middle' if row.at_stack == 'middle' else ''}_{key}": getattr(row, key)
        for row in claims.itertuples() for key in ("diff", "family_low", "family_high", "detectable")}})
    return done
