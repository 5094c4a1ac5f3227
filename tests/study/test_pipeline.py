"""The DVC pipeline as DVC itself reads it: parameters, matrix, and the dependencies of every stage."""

import ast
import functools
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hgstudy.study.notebooks import check_parameters
from hgstudy.study.params import ROOT, Study, run_name
from hgstudy.study.pipeline import arguments, notebook_calls, notebook_imports, write_code_dependencies


@pytest.fixture(scope="module")
def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_dvc_matrix_runs_are_the_params_runs(params):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    # a stage trains (evaluates) every seed of its variant
    assert stages["train"]["matrix"] == stages["evaluate"]["matrix"] == {"variant": "${variants}"}
    small = dict(params, variants=["hg", "s8x1"], seeds=[0, 2])
    assert Study(ROOT, small).run_keys() == {"hg": ["hg-0", "hg-2"], "s8x1": ["s8x1-0", "s8x1-2"]}
    assert run_name("hg", 0) == "hg-0"  # DVC's ${key} for the matrix (variant, seed)


def notebook_parameters(path) -> set[str]:
    """Names assigned in a notebook's cell tagged `parameters` (what papermill may set)."""
    cells = json.loads(path.read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return ({t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
            | {node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)})


def pipeline_stages(tmp_path, params: dict) -> dict:
    """The stages DVC expands from dvc.yaml for `params` (a copy of the project's pipeline, no run)."""
    from dvc.repo import Repo

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    Repo.init(str(tmp_path), no_scm=True).close()
    with Repo(str(tmp_path)) as repo:
        return {stage.name: stage for stage in repo.index.stages}


def papermill_calls(stage, params: dict) -> list[tuple[str, dict]]:
    """(notebook, {parameter: value}) of each notebook a stage runs: its command read as hgstudy.study.pipeline
    reads it."""
    words = shlex.split(stage.cmd)
    args = arguments().parse_args(words[words.index("hgstudy.study.pipeline") + 1:])
    calls = notebook_calls(Study(ROOT, params), args.stage, args.variant, args.seed)
    return [(notebook, values) for notebook, _, _, values in calls]


def test_every_stage_passes_only_parameters_its_notebook_declares(tmp_path, params):
    paper = dict(params, profile="paper", flic=["s8x1"])
    stages = pipeline_stages(tmp_path, paper)
    assert {"data", "ablations", "flic@s8x1", "train@s8x1", "evaluate@s8x1"} <= set(stages)
    for name, stage in stages.items():
        calls = papermill_calls(stage, paper)
        assert calls, name
        for notebook, values in calls:
            unknown = set(values) - notebook_parameters(ROOT / notebook)
            assert not unknown, f"{name}: {notebook} has no parameters {unknown}"
            check_parameters(ROOT / notebook, values)  # and each of the type its notebook declares
    # The FLIC stage trains on FLIC into the run folder that its FLIC notebook then scores.
    (train_nb, train), (flic_nb, flic) = papermill_calls(stages["flic@s8x1"], paper)
    assert (train_nb, flic_nb) == ("notebooks/20_train.ipynb", "notebooks/50_flic.ipynb")
    assert train["overrides"] == {"dataset": "flic"} and train["run"] == flic["run"] == "runs/flic-s8x1"
    # The default study has no FLIC stage.
    (tmp_path / "cpu").mkdir()
    assert not [n for n in pipeline_stages(tmp_path / "cpu", params) if n.startswith("flic")]


def test_a_variants_stages_track_only_its_own_model_and_its_profile(tmp_path, params):
    """So that editing one variant re-runs only its train/evaluate stages (and the ablation), editing the paper
    profile leaves the CPU study alone, and an evaluation setting retrains nothing."""
    stages = pipeline_stages(tmp_path, params)
    profile = params["profile"]
    for variant in params["variants"]:
        for kind in ("train", "evaluate"):
            keys = {key for dep in stages[f"{kind}@{variant}"].deps if hasattr(dep, "params") for key in dep.params}
            assert keys == {"profile", "seeds", f"models.{variant}", f"profiles.{profile}.{kind}"}, kind


@functools.cache
def imported_files(statements: tuple[str, ...]) -> set[str]:
    """The package files (relative to the repository) that these import statements load, transitively."""
    code = "\n".join([*statements, "import sys",
                      "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('hgstudy')))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return {str(Path(f).resolve().relative_to(ROOT)) for f in out.split()}


def is_docstring_only(path) -> bool:
    """True for a package `__init__.py` that holds only its docstring (and `__version__`): nothing that runs."""
    body = ast.parse(path.read_text()).body
    docs = [n for n in body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)]
    version = [n for n in body if isinstance(n, ast.Assign) and [t.id for t in n.targets] == ["__version__"]]
    return len(docs) == 1 and len(body) == len(docs) + len(version)


@pytest.mark.slow
def test_each_stage_depends_on_the_package_files_its_notebooks_import_and_not_on_all_of_it(tmp_path, params):
    """A stage re-runs when code it runs changes, and only then (a renderer change does not re-run the ablation;
    an ablation change does not retrain)."""
    paper = dict(params, profile="paper", flic=["s8x1"])
    stages = pipeline_stages(tmp_path, paper)
    for name, stage in stages.items():
        deps = [str(Path(d.def_path)) for d in stage.deps if not hasattr(d, "params")]
        assert "hgstudy" not in deps, f"{name} depends on the whole package"
        needed = set()
        for notebook, _ in papermill_calls(stage, paper):  # the runner's own imports, then the notebook's
            needed |= imported_files(("import hgstudy.study.pipeline", *notebook_imports(ROOT / notebook)))
        uncovered = sorted(f for f in needed if not any(f == d or f.startswith(d + "/") for d in deps)
                           and not (Path(f).name == "__init__.py" and is_docstring_only(ROOT / f)))
        assert not uncovered, f"{name} imports {uncovered} but does not depend on them"
        excess = [d for d in deps
                  if d.startswith("hgstudy/") and not any(f == d or f.startswith(d + "/") for f in needed)]
        assert not excess, f"{name} depends on {excess}, which it does not import"
    # the ablation stage does not depend on the renderer, the training engine or the data loaders (it draws
    # training targets, data.sample, for the all-zeros loss)
    ablation = [str(Path(d.def_path)) for d in stages["ablations"].deps if not hasattr(d, "params")]
    loaders = ("hgstudy/data/mpii.py", "hgstudy/data/flic.py", "hgstudy/data/download.py", "hgstudy/data/store.py")
    assert not [d for d in ablation if d.startswith(("hgstudy/mannequin", "hgstudy/engine", *loaders))]
    train = [str(Path(d.def_path)) for d in stages["train@s8x1"].deps if not hasattr(d, "params")]
    assert "hgstudy/study/ablation.py" not in train and "hgstudy/study" not in train
    assert not [d for d in train if "bench" in d]  # the benchmarks' code re-runs nothing


@pytest.mark.slow
def test_the_dependency_lines_are_what_the_generator_writes(tmp_path):
    copy = tmp_path / "dvc.yaml"
    shutil.copy(ROOT / "dvc.yaml", copy)
    write_code_dependencies(copy)
    assert copy.read_text() == (ROOT / "dvc.yaml").read_text(), "run `python -m hgstudy.study.pipeline deps`"



def test_committed_metrics_are_numbers_under_plain_keys(tmp_path, params):
    """What `dvc metrics show --json` prints of the committed results: numbers only, keys a shell can type."""
    import re

    stages = pipeline_stages(tmp_path, params)
    files = {str(Path(m.def_path)) for stage in stages.values() for m in stage.metrics}
    present = sorted(f for f in files if (ROOT / f).is_file())
    assert present, "no metrics committed"
    for name in present:
        values = json.loads((ROOT / name).read_text())
        assert isinstance(values, dict), name
        for key, value in values.items():
            assert re.fullmatch(r"[a-z0-9_]+", key), f"{name}: key {key!r}"
            assert isinstance(value, int | float) and not isinstance(value, bool), f"{name}: {key} = {value!r}"


def test_the_committed_lock_trains_and_evaluates_every_variant_with_every_seed(params):
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    expected = {run_name(v, s) for v in params["variants"] for s in params["seeds"]}
    assert len(set(params["seeds"])) >= 3
    for kind in ("train", "evaluate"):
        assert {name.split("@", 1)[1] for name in lock if name.startswith(f"{kind}@")} >= set(params["variants"])
    evaluated = set(pd.read_csv(ROOT / "results/ablations/runs.tsv", sep="\t").run)  # every run, evaluated
    assert evaluated >= expected
    claims = (ROOT / "results/ablations/claims.tsv").read_text().splitlines()[0].split("\t")
    assert "seed_sd_better" in claims and "seed_sd_worse" in claims  # the claims table carries the seed spread
