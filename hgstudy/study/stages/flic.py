"""The FLIC stage's scoring (the paper profile trains a network on FLIC with the train stage's function first):
PCK@0.2 of elbows and wrists and PDJ in torso units, every stack, beside the paper's FLIC numbers."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hgstudy.engine.evaluate import Evaluation, evaluate_checkpoint
from hgstudy.scoring import metrics
from hgstudy.scoring.annotations import Annotations
from hgstudy.study.configs import evaluate_config
from hgstudy.study.files import write_eval_results
from hgstudy.study.paper import PAPER_FLIC
from hgstudy.study.params import ROOT, open_study
from hgstudy.study.stages.evaluate import CI_EVALUATE


@dataclass
class FlicScores:
    variant: str
    evaluation: Evaluation
    annotations: Annotations
    by_stack: pd.DataFrame  # PCK@0.2 of elbows and wrists of each stack (index 1..S)
    pdj: pd.DataFrame  # the last stack's PDJ curves (index threshold, a column per part)
    summary: dict  # what metrics.json holds

    @property
    def on_flic(self) -> bool:
        return self.evaluation.dataset_name == "flic"

    def describe(self) -> str:
        ev = self.evaluation
        return (f"{self.variant}: {len(ev.predictions.index)} {ev.dataset_name} "
                f"{'test' if self.on_flic else 'validation'} people, flip test {'on' if ev.config.flip else 'off'}, "
                f"{ev.runtime.describe()}")

    def table(self) -> pd.DataFrame:
        """The last stack's PCK@0.2, the paper's (on FLIC only), then every stack's."""
        table = self.by_stack.iloc[[-1]].rename(index=lambda s: f"{self.variant} (last stack)")
        if self.on_flic:
            table.loc["paper (8 stacks)"] = PAPER_FLIC
        return pd.concat([table, self.by_stack.rename(index=lambda s: f"stack {s}")])

    def pdj_long(self) -> pd.DataFrame:
        return self.pdj.reset_index().melt("threshold", var_name="joints", value_name="PDJ")


def flic_stage(variant: str, run, results, overrides: dict | None = None, root=ROOT) -> FlicScores:
    """Score `run`'s model.pt on the dataset it was trained on with FLIC's measures and write preds.h5,
    metrics.json and pdj.tsv to `results` (paths relative to `root`; `overrides=None`: the CI sizes)."""
    study = open_study(root)
    config = evaluate_config(study, CI_EVALUATE if overrides is None else overrides)
    ev = evaluate_checkpoint(study.path(run) / "model.pt", config)
    p, ann = ev.predictions, ev.annotations()
    by_stack = pd.DataFrame([metrics.score_flic(ann, pred) for pred in p.preds_stacks]).drop(columns="pdj")
    by_stack.index = pd.Index(range(1, len(by_stack) + 1), name="stack")
    final = metrics.score_flic(ann, p.preds)
    summary = {"people": len(p.index), "elbow": final["elbow"], "wrist": final["wrist"],
               **{f"{k}_stack{s}": row[k] for s, row in by_stack.iterrows() for k in ("elbow", "wrist")}}
    write_eval_results(study.path(results), p.heatmap_stacks, p.matrices, p.index, summary, final["pdj"], "pdj.tsv")
    return FlicScores(variant, ev, ann, by_stack, final["pdj"], summary)
