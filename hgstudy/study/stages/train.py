"""The train stage: one run of the study (a variant and a seed) trained, or resumed, and its results written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hgstudy.engine.config import TrainConfig
from hgstudy.engine.train import clear_run, train
from hgstudy.model.size import summarize
from hgstudy.study.configs import variant_config
from hgstudy.study.files import write_train_results
from hgstudy.study.params import ROOT, open_study

# The CI sizes of a training run: a 2-stack, 16-feature network at 64 px, a few steps, seconds on a CPU.
CI_TRAIN = {"steps": 6, "warmup": 2, "batch_size": 4, "input_res": 64, "features": 16, "stem_channels": [8, 16],
            "val_every": 3, "val_samples": 8, "checkpoint_every": 3, "log_every": 1}


@dataclass
class TrainedRun:
    variant: str
    seed: int
    config: TrainConfig
    size: dict  # params, gflops
    final: dict  # the run's last metrics
    run: Path
    results: Path

    def describe(self) -> str:
        c = self.config
        heads = " + decoder heads" if c.decoder_heads else ""
        return (f"{self.variant} (seed {self.seed}): {c.stacks} stacks x {c.modules} modules, {c.features} features, "
                f"{c.input_res}px input; {self.size['params']:,} parameters, {1e3 * self.size['gflops']:.0f} MFLOPs "
                f"per image; supervision {c.supervision}{heads}")

    def validation_subset(self) -> str:
        c = self.config
        people = f"first {c.val_samples} validation people" if c.val_samples else "all validation people"
        return f"{people}, {'flip test' if c.val_flip else 'no flip test'}"


def train_stage(variant: str, seed: int, run, results, overrides: dict | None = None, fresh: bool = False,
                root=ROOT, progress: bool = True) -> TrainedRun:
    """Train (or resume) one run of the study into `run` (paths relative to `root`) and write its results.
    `overrides=None` trains at the CI sizes; the pipeline passes {} (params.yaml as is). `fresh` clears the run's
    own files first (a folder holding anything else is refused)."""
    study = open_study(root)
    config = variant_config(study.params, variant, seed, CI_TRAIN if overrides is None else overrides)
    run, results = study.path(run), study.path(results)
    size = summarize(config.model_config())
    if fresh:
        clear_run(run)
    final = train(config, run, progress=progress)
    write_train_results(results, run, {"variant": variant, "seed": seed, **size, **config.to_dict()}, final)
    return TrainedRun(variant, seed, config, size, final, run, results)
