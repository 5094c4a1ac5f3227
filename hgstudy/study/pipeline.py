"""The pipeline's stages as commands (what dvc.yaml runs): each stage's notebooks, where their executed copies
go, and the parameters they get, all from a variant (and a seed) checked here.

    python -m hgstudy.study.pipeline train --variant hg       # every seed of params.yaml, side by side
    python -m hgstudy.study.pipeline evaluate --variant hg    # likewise

A train or evaluate stage handles all seeds of its variant: up to the profile's `runs_at_once` notebooks run at
the same time, each in its own process with one torch thread and its data rendered in-process (the study's small
networks gain almost nothing from a second thread, and a run on every core is what the hour buys most with). The
layout of the files each run writes is here (`run_paths`); `hgstudy.study.files` owns their contents.

dvc.yaml passes a run as `${item}`, which DVC writes shell-quoted (`--variant 'hg' --seed 0`), and never a
name inside a path or a bare word: no value of params.yaml reaches a shell unquoted. Here the variant must be
one that params.yaml runs (its name checked by `params.check_name`) before it becomes a path.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from hgstudy.core.errors import UserError
from hgstudy.core.files import write_text
from hgstudy.study.notebooks import run
from hgstudy.study.params import ROOT, open_study, run_name

STAGES = ("data", "train", "evaluate", "ablations", "flic")


def run_paths(variant: str, seed: int, stage: str = "train") -> dict:
    """Where one run's train (or evaluate) stage writes, relative to the checkout: grouped by variant, as the
    stages' outputs are."""
    key = run_name(variant, seed)
    return {"run": f"runs/{variant}/{key}", "results": f"results/{stage}/{variant}/{key}",
            "report": f"reports/{stage}/{variant}/{key}.ipynb", "html": f"reports/html/{stage}/{variant}/{key}.html"}


def notebook_calls(study, stage: str, variant: str | None = None, seed: int | None = None) -> list[tuple]:
    """(notebook, executed notebook, HTML copy, parameters) of each notebook a stage runs, paths relative to the
    checkout."""
    params = study.params
    if stage == "data":
        return [("notebooks/10_data.ipynb", "reports/10_data.ipynb", "reports/html/10_data.html",
                 {"out": "results/data", "overrides": {}})]
    if stage == "ablations":
        return [("notebooks/40_ablations.ipynb", "reports/40_ablations.ipynb", "reports/html/40_ablations.html",
                 {"results": "results", "out": "results/ablations", "runs": study.run_keys(),
                  "coverage_experiments": 200})]
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
                 {"variant": variant, "run": f"runs/{key}", "results": f"results/flic/{variant}", "overrides": {}})]
    seeds = params["seeds"] if seed is None else [seed]
    if seed is not None and seed not in params["seeds"]:
        raise UserError(f"--seed: {seed!r} is not in params.yaml seeds ({', '.join(map(str, params['seeds']))})")
    calls = []
    for s in seeds:
        paths = run_paths(variant, s, stage)
        values = {"variant": variant, "seed": s, "run": paths["run"], "results": paths["results"], "overrides": {}}
        extra = {"fresh": False} if stage == "train" else {"data": "results/data"}
        calls.append((f"notebooks/{'20_train' if stage == 'train' else '30_evaluate'}.ipynb", paths["report"],
                      paths["html"], {**values, **extra}))
    return calls


def _relay(proc: subprocess.Popen, name: str) -> None:
    for line in proc.stdout:
        print(f"[{name}] {line}", end="", flush=True)


def run_side_by_side(calls: list[tuple], overrides: dict) -> None:
    """Execute the notebook calls at the same time, each in its own process on one torch thread with its data in
    that process (`overrides`: run-only settings that say so); their lines reach the console prefixed with the run's
    name. One error names every failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running = []
    for notebook, output, html, parameters in calls:
        parameters = {**parameters, "overrides": {**parameters["overrides"], **overrides}}
        command = [sys.executable, "-m", "hgstudy.study.notebooks", str(ROOT / notebook), str(ROOT / output),
                   "--html", str(ROOT / html), "-y", json.dumps(parameters)]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        name = Path(output).stem
        reader = threading.Thread(target=_relay, args=(proc, name), daemon=True)
        reader.start()
        running.append((name, proc, reader))
    failed = []
    for name, proc, reader in running:
        if proc.wait() != 0:
            failed.append(name)
        reader.join()
    if failed:
        raise UserError(f"{', '.join(failed)} failed (the lines prefixed with their names above say why)")


# ------------------------------------------------------------------------------ the stages' code dependencies
def notebook_imports(notebook) -> list[str]:
    """Every `import hgstudy...` / `from hgstudy... import ...` statement in a notebook's code cells."""
    statements = []
    for cell in json.loads(Path(notebook).read_text())["cells"]:
        if cell["cell_type"] == "code":
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hgstudy"):
                    statements.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")
                elif isinstance(node, ast.Import):
                    statements += [f"import {a.name}" for a in node.names if a.name.startswith("hgstudy")]
    return statements


def code_dependencies(notebooks: list[str]) -> list[str]:
    """The package files a stage runs (this runner and its notebooks' imports, loaded in a fresh interpreter: what
    Python really imports), a folder named instead of its files where all of them are; relative to the checkout."""
    statements = ["import hgstudy.study.pipeline"] + [s for nb in notebooks for s in notebook_imports(ROOT / nb)]
    code = "\n".join([*statements, "import sys", "print('\\n'.join(m.__file__ for n, m in sys.modules.items() "
                                               "if n.startswith('hgstudy')))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    files = {Path(f).resolve().relative_to(ROOT) for f in out.split()}
    deps = set(files)
    for folder in sorted({f.parent for f in files}, key=lambda f: len(f.parts), reverse=True):
        inside = {f for f in deps if folder in f.parents}
        if folder != Path("hgstudy") and inside >= {f.relative_to(ROOT) for f in (ROOT / folder).rglob("*.py")}:
            deps = (deps - inside) | {folder}
    return sorted(str(d) for d in deps)


def write_code_dependencies(dvc_yaml=ROOT / "dvc.yaml") -> Path:
    """Rewrite each stage's `- hgstudy/...` dependency lines in dvc.yaml from `code_dependencies` of the notebooks
    listed just before them (run after changing what a notebook or module imports; tests check they match)."""
    lines, out, notebooks = Path(dvc_yaml).read_text().splitlines(), [], []
    for line in lines:
        item = line.strip().removeprefix("- ")
        if line.startswith("      - notebooks/"):
            notebooks.append(item)
        elif line.startswith("      - hgstudy/"):
            if notebooks:
                out += [f"      - {d}" for d in code_dependencies(notebooks)]
                notebooks = []
            continue
        out.append(line)
    return write_text(dvc_yaml, "\n".join(out) + "\n")


def announce(name: str, progress=None) -> str:
    """'stage k of N: <name> (elapsed, about T left)' where `scripts/study.sh` keeps the study's progress in the
    file `$HGSTUDY_PROGRESS` (its start time and stage count, then one line per stage begun); else the name."""
    progress = progress or os.environ.get("HGSTUDY_PROGRESS")
    if not progress or not Path(progress).is_file():
        return f"stage {name}"
    with Path(progress).open("a+") as f:
        f.write(f"{name}\n")
        f.seek(0)
        lines = f.read().splitlines()
    start, total = (float(x) for x in lines[0].split())
    k, elapsed = len(lines) - 1, time.time() - start
    total = max(total, k)  # a stage that only an upstream one changed is not counted in advance
    left = f", about {(elapsed / (k - 1) * (total - k + 1)) / 60:.0f} min left" if k > 1 else ""
    return f"stage {k} of {total:.0f}: {name} ({elapsed / 60:.0f} min elapsed{left})"


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hgstudy.study.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=(*STAGES, "deps"),
                        help="a stage to run, or deps: rewrite dvc.yaml's package dependencies from the imports")
    parser.add_argument("--variant", help="train, evaluate, flic: a variant of params.yaml")
    parser.add_argument("--seed", type=int, help="train, evaluate: only this seed of params.yaml (default: all)")
    return parser


def main(argv=None) -> int:
    parser = arguments()
    args = parser.parse_args(argv)
    try:
        if args.stage == "deps":
            print(f"wrote {write_code_dependencies()}")
            return 0
        study = open_study(ROOT)
        calls = notebook_calls(study, args.stage, args.variant, args.seed)
        print(announce(args.stage + (f"@{args.variant}" if args.variant else "")), flush=True)
        at_once = study.params["profiles"][study.profile].get("runs_at_once", 1)
        if args.stage in ("train", "evaluate") and at_once > 1:
            overrides = {"num_workers": 0} if args.stage == "train" else {}  # data in each run's own process
            for first in range(0, len(calls), at_once):
                run_side_by_side(calls[first:first + at_once], overrides)
        else:
            for notebook, output, html, parameters in calls:
                run(ROOT / notebook, ROOT / output, parameters, ROOT / html)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
