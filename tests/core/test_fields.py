"""Typed settings and the study's params.yaml: every bad value or structure is a UserError naming its full path."""

import math

import pytest
import yaml

from hgstudy.core.errors import UserError
from hgstudy.core.fields import check_value, read_params
from hgstudy.engine.config import TrainConfig, load_config
from hgstudy.study.configs import check_every_run
from hgstudy.study.params import ROOT, open_study

LR = {"above": 0.0, "maximum": 10.0}


@pytest.mark.parametrize(("tp", "value", "meta", "message"), [
    (float, math.nan, LR, "must be a finite number, got nan"),
    (float, "nan", LR, "must be a finite number"),
    (float, math.inf, LR, "must be a finite number, got inf"),
    (float, "-inf", LR, "must be a finite number"),
    (float, 0, LR, "must be greater than 0.0, got 0.0"),
    (float, 1e6, LR, "must be at most 10.0, got 1000000.0"),
    (float, True, LR, "expected a number, got True"),
    (float, [1e-3], LR, "expected a number"),
    (int, 1.5, {}, "expected an integer, got 1.5"),
    (int, "1e400", {}, "must be a finite number"),
    (list[int], [1, "x"], {"minimum": 1}, r"x\[1\]: expected an integer"),
    (list[float], [1.0, math.nan], {"minimum": 0.0}, r"x\[1\]: must be a finite number"),
    (list[int], 3, {}, "expected a list of integers"),
    (tuple[int, int], [1, 2, 3], {}, "expected two integers"),
    (dict, [("a", 1)], {}, "expected a mapping"),
])
def test_check_value_refuses_wrong_types_non_finite_numbers_and_out_of_range(tp, value, meta, message):
    with pytest.raises(UserError, match=message) as info:
        check_value("x", tp, value, meta)
    assert str(info.value).startswith("x")


def test_train_config_errors_name_the_full_path(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profiles": {"cpu": {"train": {"lr": 0}}},
                                      "models": {"hg": {"schedule": "steps", "lr_steps": [5, 3]}}}))
    with pytest.raises(UserError, match=r"^profiles\.cpu\.train\.lr: must be greater than 0\.0, got 0\.0$"):
        load_config(params, ["profiles.cpu.train"])
    with pytest.raises(UserError, match=r"^models\.hg\.lr_steps: must be increasing, got \[5, 3\]$"):
        load_config(params, ["models.hg"])  # a check across keys names where the key came from too
    with pytest.raises(UserError, match=r"^overrides\.lr: must be a finite number, got nan$"):
        load_config(overrides={"lr": math.nan})
    for values, message in (({"lr_drop": 1e42}, "lr_drop: must be at most 1.0"),
                            ({"lr_steps": [0]}, r"lr_steps\[0\]: must be at least 1"),
                            ({"decoder_weight": math.inf}, "decoder_weight: must be a finite number"),
                            ({"weight_decay": 1e300}, "weight_decay: must be at most 1.0"),
                            ({"steps": 10**12}, "steps: must be at most 1000000000"),
                            ({"supervision": "weights", "stacks": 2, "stack_weights": [0, 0]},
                             "at least one weight must be positive"),
                            ({"val_samples": 0}, "val_samples: must be at least 1")):
        with pytest.raises(UserError, match=message):
            TrainConfig.from_dict(values)


def test_a_key_given_twice_in_yaml_is_an_error_not_silently_the_last(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("models:\n  hg: {stacks: 1}\n  hg: {stacks: 2}\n")
    with pytest.raises(UserError, match=r"not valid YAML: key 'hg' is given twice in one mapping"):
        read_params(path)
    path.write_text("base: &b {lr: 0.001}\nmodels:\n  hg:\n    <<: *b\n    lr: 0.002\n")  # merges may override
    assert read_params(path)["models"]["hg"] == {"lr": 0.002}


@pytest.fixture(scope="module")
def committed():
    return (ROOT / "params.yaml").read_text()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: ["a", "list"], "expected a mapping of sections at the top level"),
    (lambda p: {**p, "profiles": 3}, r"profiles\.cpu: missing or not a mapping"),
    (lambda p: {**p, "profiles": {"cpu": {"train": 5}}}, r"profiles\.cpu\.train: must be a mapping of settings"),
    (lambda p: {**p, "profiles": {"cpu": {"train": {}}}}, r"profiles\.cpu\.train: must be a mapping"),
    (lambda p: {**p, "models": ["hg"]}, "models: must map variant names to their settings"),
    (lambda p: {**p, "models": {**p["models"], "hg": 3}}, r"models\.hg: must be a mapping of settings, got 3"),
    (lambda p: {**p, "variants": "hg"}, "variants: must be a non-empty list"),
    (lambda p: {**p, "variants": []}, "variants: must be a non-empty list"),
    (lambda p: {**p, "variants": [["hg"]]}, r"variants\[0\]: \['hg'\] names no model"),
    (lambda p: {**p, "variants": p["variants"] + p["variants"][:1]}, "listed more than once"),
    (lambda p: {**p, "flic": "s8x1"}, "flic: must be a list"),
    (lambda p: {**p, "seeds": [0, 0]}, "repeats a seed"),
    (lambda p: {**p, "seeds": [True]}, "seeds: must be a non-empty list of integers"),
    (lambda p: {**p, "seeds": [1.5]}, "seeds: must be a non-empty list of integers"),
    (lambda p: {**p, "profile": None}, "profile: must be one of cpu, paper, got None"),
    (lambda p: {**p, "models": {**p["models"], "hg": {**p["models"]["hg"], "lr": ".nan"}}},
     r"models\.hg\.lr: must be a finite number"),
    (lambda p: {**p, "models": {**p["models"], "hg": {**p["models"]["hg"], "stacks": "two"}}},
     r"models\.hg\.stacks: expected an integer"),
    (lambda p: {**p, "models": {**p["models"], "hg": {**p["models"]["hg"], "lr_rate": 1}}},
     r"unknown key\(s\) 'lr_rate'"),
    (lambda p: {**p, "profiles": {**p["profiles"], "cpu": {**p["profiles"]["cpu"],
                                                             "train": {**p["profiles"]["cpu"]["train"], "lr": 0}}}},
     r"profiles\.cpu\.train\.lr: must be greater than 0"),
])
def test_malformed_params_yaml_is_a_user_error_naming_the_key(tmp_path, committed, edit, message):
    params = yaml.safe_load(committed)
    assert "hg" in params["models"] and "cpu" in params["profiles"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(edit(params)).replace("'.nan'", ".nan"))
    with pytest.raises(UserError, match=message):
        check_every_run(open_study(params=path))


def test_a_variant_defined_twice_in_params_yaml_is_refused(tmp_path, committed):
    model = next(line for line in committed.splitlines() if line.startswith("  hg:"))
    path = tmp_path / "params.yaml"
    path.write_text(committed.replace(model, f"{model}\n  hg: {{stacks: 2}}", 1))
    with pytest.raises(UserError, match="key 'hg' is given twice"):
        check_every_run(open_study(params=path))
