"""Hostile parameters: names that would reach a shell or a path, notebook parameters of the wrong type."""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hgstudy.core.errors import UserError
from hgstudy.study.configs import variant_config
from hgstudy.study.notebooks import check_parameters
from hgstudy.study.notebooks import main as notebooks_main
from hgstudy.study.params import ROOT, Study, open_study
from hgstudy.study.pipeline import announce, notebook_calls

PAYLOADS = ["x$(touch PWNED)", "x'$(touch PWNED)'", 'x"; touch PWNED; "', "x`touch PWNED`", "a b", "../escape",
            "-rf", "x\ny"]


@pytest.fixture
def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_variant(params: dict, name: str) -> dict:
    return {**params, "models": {**params["models"], name: {"stacks": 1, "modules": 1}}, "variants": [name],
            "seeds": [0]}


@pytest.mark.parametrize("name", PAYLOADS)
def test_a_name_that_a_shell_or_a_path_would_read_is_refused_naming_the_key_and_the_rule(params, name):
    with pytest.raises(UserError, match=r"models\..*is not a valid name: use letters, digits, '_' and '-'"):
        open_study(params=with_variant(params, name))
    with pytest.raises(UserError, match=r"variant: .* is not a valid name"):
        variant_config(params, name, 0)


def test_a_variant_that_names_no_model_is_refused(params):
    with pytest.raises(UserError, match="variant: 'nope' names no model"):
        variant_config(params, "nope", 0)


@pytest.mark.parametrize("name", PAYLOADS[:5])
def test_dvc_passes_every_name_to_the_stage_command_as_one_quoted_word(tmp_path, params, name):
    """What DVC expands from dvc.yaml: the shell would split the command back into these exact words."""
    from tests.study.test_pipeline import pipeline_stages

    stages = pipeline_stages(tmp_path, with_variant(params, name))
    for kind in ("train", "evaluate"):
        assert shlex.split(stages[f"{kind}@{name}"].cmd)[-3:] == [kind, "--variant", name]
    assert all("PWNED" not in stage.cmd.replace(shlex.quote(name), "") for stage in stages.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["x$(touch PWNED)", "x'$(touch PWNED)'"])
def test_dvc_repro_of_a_payload_named_stage_creates_no_file(tmp_path, params, name):
    """The reproduction: `dvc repro --single-item 'train@x$(touch PWNED)-0'` ran the payload in a shell (a train
    stage is now one per variant)."""
    for path in ("hgstudy", "notebooks"):
        (tmp_path / path).symlink_to(ROOT / path)
    (tmp_path / "results/data").mkdir(parents=True)
    (tmp_path / "results/data/metrics.json").write_text("{}")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_variant(params, name)))
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    done = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", f"train@{name}"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert f"--variant: {name!r}" in done.stderr + done.stdout  # the name arrived as one literal word
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()


def test_each_stage_derives_its_paths_from_a_run_of_params(params):
    study = Study(ROOT, {**params, "seeds": [0, 1]})
    calls = notebook_calls(study, "train", "hg")  # every seed of the variant
    assert [c[:3] for c in calls] == [("notebooks/20_train.ipynb", f"reports/train/hg/hg-{s}.ipynb",
                                       f"reports/html/train/hg/hg-{s}.html") for s in (0, 1)]
    values = calls[1][3]
    assert values["run"] == "runs/hg/hg-1" and values["results"] == "results/train/hg/hg-1"
    assert values["seed"] == 1 and values["fresh"] is False
    [(_, output, _, values)] = notebook_calls(study, "evaluate", "hg", 1)  # one seed, if asked for
    assert output == "reports/evaluate/hg/hg-1.ipynb" and values["run"] == "runs/hg/hg-1"
    assert values["results"] == "results/evaluate/hg/hg-1" and "fresh" not in values
    with pytest.raises(UserError, match=r"--variant: 'hg_x' is not in params\.yaml variants"):
        notebook_calls(study, "evaluate", "hg_x", 0)
    with pytest.raises(UserError, match=r"--seed: 7 is not in params\.yaml seeds"):
        notebook_calls(study, "evaluate", "hg", 7)
    with pytest.raises(UserError, match=r"not in params\.yaml flic"):
        notebook_calls(study, "flic", "s8x1")


@pytest.mark.parametrize(("name", "value", "error"), [
    ("fresh", "false", r"parameter fresh: must be bool, got 'false' \(str\)"),
    ("fresh", 0, "parameter fresh: must be bool, got 0"),
    ("seed", True, "parameter seed: must be int, got True"),
    ("overrides", [1, 2], r"parameter overrides: must be dict or null, got \[1, 2\] \(list\)"),
    ("runs", "x", "parameter runs: must be"),
    ("steps", 3, "parameter steps: .* has no such parameter"),
])
def test_a_notebook_parameter_of_another_type_is_refused_naming_it(name, value, error):
    notebook = ROOT / ("notebooks/40_ablations.ipynb" if name == "runs" else "notebooks/20_train.ipynb")
    with pytest.raises(UserError, match=error):
        check_parameters(notebook, {name: value})


def test_declared_types_accept_what_they_say():
    check_parameters(ROOT / "notebooks/10_data.ipynb", {"overrides": None, "out": "x", "data_root": "data"})
    check_parameters(ROOT / "notebooks/10_data.ipynb", {"overrides": {"nn_pool": 3}})
    check_parameters(ROOT / "notebooks/40_ablations.ipynb", {"runs": None, "n_resamples": 10})
    check_parameters(ROOT / "notebooks/20_train.ipynb", {"fresh": False, "overrides": {}, "seed": 2})


def test_the_string_false_never_reaches_the_notebook_and_no_folder_is_touched(tmp_path, capsys):
    """The reproduction: `-p fresh '"false"'` was true to the notebook, which then emptied the run folder."""
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    rc = notebooks_main([str(ROOT / "notebooks/20_train.ipynb"), str(tmp_path / "out.ipynb"), "-p", "run",
                         str(folder), "-p", "results", str(tmp_path / "r"), "-p", "fresh", '"false"'])
    assert rc == 2 and "parameter fresh: must be bool" in capsys.readouterr().err
    assert (folder / "keep.txt").read_text() == "mine" and not (tmp_path / "out.ipynb").exists()


@pytest.mark.slow
def test_runs_side_by_side_each_write_their_notebook_and_a_failure_is_named(tmp_path, capsys):
    from hgstudy.study.pipeline import run_side_by_side

    def call(name, seed, **extra):
        return ("notebooks/20_train.ipynb", str(tmp_path / f"{name}.ipynb"), str(tmp_path / f"{name}.html"),
                {"variant": "hg_stacked_int", "seed": seed, "run": str(tmp_path / "runs" / name),
                 "results": str(tmp_path / "results" / name), "overrides": {"steps": 2, "warmup": 1, "batch_size": 2,
                 "features": 8, "stem_channels": [8, 8], "val_every": 2, "val_samples": 4}, **extra})

    run_side_by_side([call("a", 0), call("b", 1)], {"num_workers": 0})
    out = capsys.readouterr().out
    assert (tmp_path / "a.ipynb").is_file() and (tmp_path / "b.html").is_file()
    assert (tmp_path / "runs" / "b" / "model.pt").is_file() and "[a] " in out and "[b] " in out
    with pytest.raises(UserError, match=r"^c failed"):
        run_side_by_side([call("c", 0, fresh="no")], {})
    assert "parameter fresh: must be bool" in capsys.readouterr().out


def test_each_stage_says_its_place_in_the_study_and_the_time_left(tmp_path):
    """scripts/study.sh's progress file: the start (10 minutes ago) and 4 stages. The second stage has taken
    10 minutes for one stage done, so the three still to run (itself included) take about 30."""
    progress = tmp_path / "progress"
    progress.write_text(f"{time.time() - 600} 4\n")
    assert announce("data", progress) == "stage 1 of 4: data (10 min elapsed)"
    assert announce("train@hg", progress) == "stage 2 of 4: train@hg (10 min elapsed, about 30 min left)"
    assert announce("ablations", tmp_path / "absent") == "stage ablations"
