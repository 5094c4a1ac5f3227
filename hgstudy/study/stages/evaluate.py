"""The evaluate stage: one trained run's predictions of the validation people under the profile's evaluation
settings (flip test, all people), scored with the official MPII protocol and written, with the data stage's
baselines scored on the same people beside them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hgstudy.engine.evaluate import Evaluation, evaluate_checkpoint, score
from hgstudy.scoring import metrics
from hgstudy.scoring.annotations import Annotations
from hgstudy.study.configs import evaluate_config, variant_config
from hgstudy.study.files import read_baselines, write_eval_results
from hgstudy.study.params import ROOT, open_study

CI_EVALUATE = {"limit": 16, "batch_size": 8}  # the CI sizes: seconds on a CPU
TABLE = ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "ubody")
NETWORK = "network"


@dataclass
class EvaluatedRun:
    variant: str
    seed: int
    evaluation: Evaluation
    annotations: Annotations
    supervised: list[bool]  # per stack: did the loss see its output
    baselines: dict[str, np.ndarray]  # the same people's baseline predictions (empty where the data stage has none)
    summary: dict  # what metrics.json holds

    @property
    def predictions(self) -> dict[str, np.ndarray]:
        """{network or baseline: (N, J, 2)} in original image pixels."""
        return {NETWORK: self.evaluation.predictions.preds, **self.baselines}

    def describe(self) -> str:
        ev, c = self.evaluation, self.evaluation.config
        return (f"{self.variant} seed {self.seed}: {len(ev.predictions.index)} {ev.dataset_name} validation people, "
                f"flip test {'on' if c.flip else 'off'}, {ev.runtime.describe()}")

    def table(self, protocol: str = "official") -> pd.DataFrame:
        """The PCKh@0.5 table of the network and of each baseline: the official protocol, or the Tompson
        convention (strict `<`, Head = head top, Mean of the 14 joints)."""
        return pd.DataFrame({name: metrics.score_mpii(self.annotations, p, protocol)
                             for name, p in self.predictions.items()}).T

    def per_joint(self) -> pd.DataFrame:
        """PCKh@0.5 of every joint, network and baselines (long format: joint, predictor, PCKh@0.5)."""
        rows = [{"joint": joint, "predictor": name, "PCKh@0.5": value}
                for name, p in self.predictions.items()
                for joint, value in zip(self.annotations.joint_names, metrics.pck(self.distances(p), 0.5))]
        return pd.DataFrame(rows)

    def curve(self) -> pd.DataFrame:
        """PCKh of the network against the threshold (long format)."""
        curve = metrics.mpii_curves(self.distances()).reset_index()
        return curve.melt("threshold", var_name="joints", value_name="PCKh")

    def by_visibility(self) -> pd.DataFrame:
        return metrics.mpii_by_visibility(self.annotations, self.predictions[NETWORK])

    def limbs(self) -> pd.DataFrame:
        """Strict PCP (a limb is correct when both its ends lie within half its length of the truth), network and
        baselines; `n`: the limbs annotated."""
        frames = {name: metrics.score_pcp(self.annotations, p)["strict"] for name, p in self.predictions.items()}
        n = metrics.score_pcp(self.annotations, self.predictions[NETWORK])["n"]
        return pd.DataFrame({**frames, "n": n})

    def stacks(self) -> pd.DataFrame:
        """Each stack's own prediction: Total, AUC, the ablation's measure, wrist, ankle; unsupervised marked."""
        rows = []
        for s, pred in enumerate(self.evaluation.predictions.preds_stacks):
            table = metrics.score_mpii(self.annotations, pred)
            rows.append({"stack": s + 1, "supervised": self.supervised[s], "total": table["total"],
                         "auc": table["auc"], "ablation": metrics.ablation_pckh(self.distances(pred)),
                         "wrist": table["wrist"], "ankle": table["ankle"]})
        return pd.DataFrame(rows)

    def extremes(self, count: int = 4) -> tuple[list[int], list[str]]:
        """The `count` people with most and fewest correct joints (no one twice), and a title for each."""
        dist = self.distances()
        correct = np.nanmean(np.where(np.isnan(dist), np.nan, dist <= 0.5), axis=1)
        order = np.argsort(correct, kind="stable")
        best = [int(i) for i in order[::-1][:count]]
        worst = [int(i) for i in order[:count] if int(i) not in best]
        return best + worst, [f"{'best' if k < len(best) else 'worst'}: {100 * correct[i]:.0f}% correct"
                              for k, i in enumerate(best + worst)]

    def distances(self, pred=None) -> np.ndarray:
        return metrics.distances(self.annotations, self.predictions[NETWORK] if pred is None else pred)


def evaluate_stage(variant: str, seed: int, run, results, data="results/data", overrides: dict | None = None,
                   root=ROOT) -> EvaluatedRun:
    """Evaluate `run`'s model.pt (paths relative to `root`) and write its results; `data`: the data stage's
    folder (its baselines). `overrides=None` evaluates at the CI sizes; the pipeline passes {}."""
    study = open_study(root)
    config = evaluate_config(study, CI_EVALUATE if overrides is None else overrides)
    ev = evaluate_checkpoint(study.path(run) / "model.pt", config)
    p = ev.predictions
    ann = ev.annotations()
    supervised = [w > 0 for w in variant_config(study.params, variant, seed).stack_loss_weights()]
    official = metrics.score_mpii(ann, p.preds)
    summary = {**score(p), **{k: official[k] for k in TABLE}, "people": len(p.index)}
    write_eval_results(study.path(results), p.heatmap_stacks, p.matrices, p.index, summary,
                       metrics.mpii_curves(metrics.distances(ann, p.preds)))
    baselines = read_baselines(study.path(data), p.index)
    return EvaluatedRun(variant, seed, ev, ann, supervised, baselines, summary)
