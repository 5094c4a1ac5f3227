"""The pipeline's stages as commands (what dvc.yaml runs): each stage's notebooks, where their executed copies
go, and the parameters they get, all from a variant and a seed checked here.

    python -m hgstudy.study.stages train --variant hg --seed 0

dvc.yaml passes a run as `${item}`, which DVC writes shell-quoted (`--variant 'hg' --seed 0`), and never a
name inside a path or a bare word: no value of params.yaml reaches a shell unquoted. Here the variant must be
one that params.yaml runs (its name checked by `params.check_name`) before it becomes a path.
"""

from __future__ import annotations

import argparse
import sys

from hgstudy.core.errors import UserError
from hgstudy.study.notebooks import run
from hgstudy.study.params import ROOT, open_study, run_name

STAGES = ("data", "train", "evaluate", "ablations", "flic")


def notebook_calls(study, stage: str, variant: str | None = None, seed: int | None = None) -> list[tuple]:
    """(notebook, executed notebook, HTML copy, parameters) of each notebook a stage runs, paths relative to the
    checkout."""
    params = study.params
    if stage == "data":
        return [("notebooks/10_data.ipynb", "reports/10_data.ipynb", "reports/html/10_data.html",
                 {"profile": study.profile, "out": "results/data", "baseline_people": None, "nn_pool": None})]
    if stage == "ablations":
        return [("notebooks/40_ablations.ipynb", "reports/40_ablations.ipynb", "reports/html/40_ablations.html",
                 {"results": "results", "out": "results/ablations", "runs": None})]
    listed = params["flic"] if stage == "flic" else params["variants"]
    if variant not in listed:
        raise UserError(f"--variant: {variant!r} is not in params.yaml {'flic' if stage == 'flic' else 'variants'} "
                        f"({', '.join(listed) or 'empty'})")
    if stage == "flic":
        key = f"flic-{variant}"
        train = {"variant": variant, "seed": 0, "run": f"runs/{key}", "results": f"results/flic/{variant}/train",
                 "fresh": False, "overrides": {"dataset": "flic"}}
        return [("notebooks/20_train.ipynb", f"reports/flic/train-{variant}.ipynb",
                 f"reports/html/flic/train-{variant}.html", train),
                ("notebooks/50_flic.ipynb", f"reports/flic/{variant}.ipynb", f"reports/html/flic/{variant}.html",
                 {"variant": variant, "seed": 0, "run": f"runs/{key}", "results": f"results/flic/{variant}",
                  "overrides": {}})]
    if seed not in params["seeds"]:
        raise UserError(f"--seed: {seed!r} is not in params.yaml seeds ({', '.join(map(str, params['seeds']))})")
    key = run_name(variant, seed)
    common = {"variant": variant, "seed": seed, "run": f"runs/{key}", "results": f"results/{stage}/{key}",
              "overrides": {}}
    notebook = {"train": "20_train", "evaluate": "30_evaluate"}[stage]
    return [(f"notebooks/{notebook}.ipynb", f"reports/{stage}/{key}.ipynb", f"reports/html/{stage}/{key}.html",
             {**common, "fresh": False} if stage == "train" else common)]


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hgstudy.study.stages", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--variant", help="train, evaluate, flic: a variant of params.yaml")
    parser.add_argument("--seed", type=int, help="train, evaluate: a seed of params.yaml")
    return parser


def main(argv=None) -> int:
    parser = arguments()
    args = parser.parse_args(argv)
    try:
        study = open_study(ROOT)
        for notebook, output, html, parameters in notebook_calls(study, args.stage, args.variant, args.seed):
            run(ROOT / notebook, ROOT / output, parameters, ROOT / html)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
