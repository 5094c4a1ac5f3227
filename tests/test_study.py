import ast
import copy
import json
import shlex
import shutil

import numpy as np
import pytest
import yaml

from hgstudy.annotations import make_annotations
from hgstudy.errors import UserError
from hgstudy.study import ROOT, load_study, run_name, runs, variant_config


@pytest.fixture(scope="module")
def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_committed_params_are_valid_and_hold_the_papers_variants(params):
    study = load_study(params)
    # Equal parameters: stacks x modules is 8 in every variant, as in the paper's ablations.
    for name in study["variants"]:
        config = variant_config(study, name, 0)
        assert config.stacks * config.modules == 8, name
    assert variant_config(study, "hg_int", 0).decoder_heads
    assert variant_config(study, "s8x1_last", 0).loss_weights() == [0.0] * 7 + [1.0]
    assert variant_config(study, "s8x1", 3).seed == 3


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.update(profile="gpu"), r"profile: must be one of cpu, paper, got 'gpu'"),
    (lambda p: p["variants"].append("hg_x"), r"variants\[7\]: 'hg_x' names no model"),
    (lambda p: p["models"]["hg"].update(stacks=0), r"stacks"),
    (lambda p: p["profiles"]["cpu"]["train"].update(dataset="coco"), r"dataset: must be one of .*coco"),
    (lambda p: p.update(seeds=[-1]), r"seeds: must be a non-empty list"),
    (lambda p: p.update(flic=["s16x1"]), r"flic: must be a list of names from models \(hg, hg_int"),
])
def test_bad_params_name_the_key(params, edit, message):
    bad = copy.deepcopy(params)
    edit(bad)
    with pytest.raises(UserError, match=message):
        load_study(bad)


def test_paper_profile_is_the_papers_recipe(params):
    paper = dict(params, profile="paper")
    config = variant_config(paper, "s8x1", 0)
    assert (config.dataset, config.input_res, config.features, config.batch_size) == ("mpii", 256, 256, 6)
    assert (config.optimizer, config.lr) == ("rmsprop", 2.5e-4)


def test_dvc_matrix_runs_are_the_params_runs(params):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["matrix"] == {"variant": "${variants}", "seed": "${seeds}"}
    assert runs(params) == [(v, s) for v in params["variants"] for s in params["seeds"]]
    assert run_name("hg", 0) == "hg-0"  # DVC's ${key} for the matrix (variant, seed)


def test_annotations_take_keeps_image_groups():
    joints = np.arange(4 * 16 * 2, dtype=float).reshape(4, 16, 2) + 1
    ann = make_annotations(joints, np.ones((4, 16), bool), np.ones(4), image_index=np.array([7, 7, 9, 4]))
    sub = ann.take([1, 0, 2])
    assert np.array_equal(sub.joints, joints[[1, 0, 2]])
    assert list(sub.image_index) == [0, 0, 1] and sub.n_images == 2  # people 0 and 1 share image 7


def notebook_parameters(path) -> set[str]:
    """Names assigned in a notebook's cell tagged `parameters` (what papermill may set)."""
    cells = json.loads(path.read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}


def pipeline_stages(tmp_path, params: dict) -> dict:
    """The stages DVC expands from dvc.yaml for `params` (a copy of the project's pipeline, no run)."""
    from dvc.repo import Repo

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    Repo.init(str(tmp_path), no_scm=True).close()
    with Repo(str(tmp_path)) as repo:
        return {stage.name: stage for stage in repo.index.stages}


def papermill_calls(stage) -> list[tuple[str, dict]]:
    """(notebook, {parameter: value}) of each papermill command of a stage (-p and -y)."""
    calls = []
    for cmd in [stage.cmd] if isinstance(stage.cmd, str) else stage.cmd:
        words = shlex.split(cmd)
        if "papermill" not in words:
            continue
        notebook = next(w for w in words if w.endswith(".ipynb"))
        values = {}
        for i, w in enumerate(words):
            if w == "-p":
                values[words[i + 1]] = words[i + 2]
            elif w == "-y":
                values.update(yaml.safe_load(words[i + 1]))
        calls.append((notebook, values))
    return calls


def test_every_stage_passes_only_parameters_its_notebook_declares(tmp_path, params):
    paper = dict(params, profile="paper", flic=["s8x1"])
    stages = pipeline_stages(tmp_path, paper)
    assert {"data", "ablations", "flic@s8x1", "train@s8x1-0", "evaluate@s8x1-0"} <= set(stages)
    for name, stage in stages.items():
        calls = papermill_calls(stage)
        assert calls, name
        for notebook, values in calls:
            unknown = set(values) - notebook_parameters(ROOT / notebook)
            assert not unknown, f"{name}: {notebook} has no parameters {unknown}"
    # The FLIC stage trains on FLIC into the run folder that its FLIC notebook then scores.
    (train_nb, train), (flic_nb, flic) = papermill_calls(stages["flic@s8x1"])
    assert (train_nb, flic_nb) == ("notebooks/20_train.ipynb", "notebooks/50_flic.ipynb")
    assert train["overrides"] == {"dataset": "flic"} and train["run"] == flic["run"] == "runs/flic-s8x1"
    # The default study has no FLIC stage.
    (tmp_path / "cpu").mkdir()
    assert not [n for n in pipeline_stages(tmp_path / "cpu", params) if n.startswith("flic")]


def test_a_variants_stages_track_only_its_own_model_and_its_profile(tmp_path, params):
    """So that editing one variant re-runs only its train/evaluate stages (and the ablation), and editing the
    paper profile leaves the CPU study alone."""
    stages = pipeline_stages(tmp_path, params)
    for variant in params["variants"]:
        for kind in ("train", "evaluate"):
            stage = stages[f"{kind}@{variant}-0"]
            keys = {key for dep in stage.deps if hasattr(dep, "params") for key in dep.params}
            assert keys == {"profile", f"profiles.{params['profile']}", f"models.{variant}"}, stage.name
