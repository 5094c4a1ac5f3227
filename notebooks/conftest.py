"""nbval runs of the notebooks: each notebook finds the tiny runs its CI defaults name, built here if missing,
so that any one notebook can be tested alone (`pytest notebooks/30_evaluate.ipynb`).

The runs are the CI-sized ones of the notebooks' `parameters` cells (a 2-stack, 16-feature network at 64 px,
trained for 6 steps) under scratch/ (git-ignored), written with the same package calls the pipeline's stages
make.
"""

from pathlib import Path

import hgstudy
from hgstudy.datasets import val_annotations
from hgstudy.engine.evaluate import evaluate_checkpoint, score
from hgstudy.scoring import metrics
from hgstudy.study.files import write_eval_results, write_json, write_val_annotations
from hgstudy.study.stages.train import train_stage

ROOT = Path(hgstudy.__file__).resolve().parents[1]
SCRATCH = ROOT / "scratch"
ABLATION_RUNS = {"ci-a": ("hg_stacked", 0), "ci-b": ("hg_stacked", 1), "ci-c": ("hg_stacked_int", 0),
                 "ci-d": ("hg_stacked_int", 1)}  # the ablation notebook's default `runs`
_built: set[str] = set()


def tiny_run(key: str, variant: str, seed: int, evaluate: bool) -> Path:
    """scratch/runs/<key> (trained unless model.pt exists) and, if `evaluate`, its results under scratch/results."""
    run = SCRATCH / "runs" / key
    if not (run / "model.pt").is_file():  # the CI sizes (overrides=None)
        train_stage(variant, seed, run, SCRATCH / "results" / "train" / variant / key, progress=False)
    if evaluate and not (SCRATCH / "results" / "evaluate" / variant / key / "preds.h5").is_file():
        p = evaluate_checkpoint(run / "model.pt", limit=16, batch_size=8).predictions
        ann = val_annotations("mannequin", p.index)
        curve = metrics.mpii_curves(metrics.distances(ann, p.preds))
        write_eval_results(SCRATCH / "results" / "evaluate" / variant / key, p.heatmap_stacks, p.matrices, p.index,
                           score(p), curve)
    return run


def pytest_runtest_setup(item):
    name = Path(str(item.fspath)).name
    if name in _built or not name.endswith(".ipynb"):
        return
    _built.add(name)
    if name in ("30_evaluate.ipynb", "50_flic.ipynb"):
        tiny_run("ci", "hg_stacked_int", 0, evaluate=False)
    if name == "40_ablations.ipynb":
        write_val_annotations(SCRATCH / "results" / "data", val_annotations("mannequin"))
        # the data stage's baselines (results/data/metrics.json), made-up values: the report only places runs by them
        write_json(SCRATCH / "results" / "data" / "metrics.json",
                   {"mean_pose_ablation": 10.0, "nearest_neighbour_ablation": 15.0, "baseline_people": 0})
        for key, (variant, seed) in ABLATION_RUNS.items():
            tiny_run(key, variant, seed, evaluate=True)
