"""nbval runs of the notebooks: each notebook finds the tiny runs its CI defaults name, built here if missing,
so that any one notebook can be tested alone (`pytest notebooks/30_evaluate.ipynb`).

The runs are the CI-sized ones of the notebooks' `parameters` cells (a 2-stack, 16-feature network at 64 px,
trained for 6 steps) under scratch/ (git-ignored), written with the same package calls the pipeline's stages
make.
"""

from pathlib import Path

import hgstudy
from hgstudy.study.stages.ablations import CI_RUNS
from hgstudy.study.stages.data import data_stage
from hgstudy.study.stages.evaluate import evaluate_stage
from hgstudy.study.stages.train import train_stage

ROOT = Path(hgstudy.__file__).resolve().parents[1]
SCRATCH = ROOT / "scratch"
_built: set[str] = set()


def tiny_run(key: str, variant: str, seed: int, evaluate: bool) -> Path:
    """scratch/runs/<key> (trained unless model.pt exists) and, if `evaluate`, its results under scratch/results."""
    run = SCRATCH / "runs" / key
    if not (run / "model.pt").is_file():  # the CI sizes (overrides=None)
        train_stage(variant, seed, run, SCRATCH / "results" / "train" / variant / key, progress=False)
    if evaluate and not (SCRATCH / "results" / "evaluate" / variant / key / "preds.h5").is_file():
        results = SCRATCH / "results" / "evaluate" / variant / key
        evaluate_stage(variant, seed, run, results, SCRATCH / "results" / "data")
    return run


def pytest_runtest_setup(item):
    name = Path(str(item.fspath)).name
    if name in _built or not name.endswith(".ipynb"):
        return
    _built.add(name)
    if name in ("30_evaluate.ipynb", "50_flic.ipynb"):
        tiny_run("ci", "hg_stacked_int", 0, evaluate=False)
    if name == "40_ablations.ipynb":
        if not (SCRATCH / "results" / "data" / "baselines.h5").is_file():
            data_stage(SCRATCH / "results" / "data")  # the CI sizes
        for variant, keys in CI_RUNS.items():  # the ablation notebook's CI runs, a seed each
            for seed, key in enumerate(keys):
                tiny_run(key, variant, seed, evaluate=True)
