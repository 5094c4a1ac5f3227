"""The training configuration: defaults, params.yaml sections, overrides, CLI flags and error messages."""

import argparse

import pytest
import yaml

from hgstudy.core.errors import UserError
from hgstudy.engine.config import TrainConfig, add_config_arguments, config_from_args, load_config


def test_defaults_are_the_papers_recipe():
    c = TrainConfig()
    # the paper and pose-hg-train: 8 stacks, 1 module, 256 features, 256 px, RMSprop 2.5e-4, batch 6, x5 drop
    assert (c.stacks, c.modules, c.features, c.input_res, c.depth) == (8, 1, 256, 256, 4)
    assert (c.optimizer, c.lr, c.batch_size, c.schedule, c.lr_drop) == ("rmsprop", 2.5e-4, 6, "plateau", 0.2)
    assert c.supervision == "all" and c.stack_loss_weights() == [1.0] * 8
    assert c.model_config().joints == 16


def test_sections_merge_in_order_and_overrides_win(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "train": {"dataset": "mannequin", "steps": 1500, "batch_size": 16, "lr": "1e-3"},
        "models": {"hg": {"stacks": 1, "modules": 8, "features": 64, "supervision": "last"}},
    }))
    c = load_config(params, ["train", "models.hg"], {"batch_size": 12, "seed": None})
    assert (c.steps, c.batch_size, c.stacks, c.modules, c.features) == (1500, 12, 1, 8, 64)
    assert c.lr == 0.001 and isinstance(c.lr, float)  # YAML reads "1e-3" as a string
    assert c.stack_loss_weights() == [1.0]
    assert c.seed == 0  # None overrides are ignored


def test_supervision_modes_give_stack_weights():
    assert TrainConfig(stacks=3, supervision="last").stack_loss_weights() == [0.0, 0.0, 1.0]
    assert TrainConfig(stacks=2, supervision="weights", stack_weights=[0.5, 2]).stack_loss_weights() == [0.5, 2.0]
    with pytest.raises(UserError, match=r"stack_weights: supervision 'weights' needs 3 weights"):
        TrainConfig(stacks=3, supervision="weights", stack_weights=[1, 1])
    with pytest.raises(UserError, match="stack_weights: given, but supervision is 'all'"):
        TrainConfig(stack_weights=[1.0] * 8)


@pytest.mark.parametrize(("values", "message"), [
    ({"optimizer": "lamb"}, "optimizer: must be one of rmsprop, adam, sgd, got 'lamb'"),
    ({"dataset": "coco"}, "dataset: must be one of mannequin, mpii, flic"),
    ({"precision": "fp16"}, "precision: must be one of auto, fp32, bf16"),
    ({"stacks": 0}, "stacks: must be at least 1, got 0"),
    ({"stacks": 2.5}, "stacks: expected an integer, got 2.5"),
    ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
    ({"compile": "yes"}, "compile: expected true or false, got 'yes'"),
    ({"channels_last": 1}, "channels_last: expected true or false or auto"),
    ({"stem_channels": [16]}, "stem_channels: expected two integers"),
    ({"schedule": "steps"}, "lr_steps: schedule 'steps' needs a non-empty list"),
    ({"input_res": 100}, "input_res 100 must be divisible by 4 \\* 2\\*\\*depth = 64"),
])
def test_errors_name_the_key_and_the_allowed_values(values, message):
    with pytest.raises(UserError, match=message):
        TrainConfig.from_dict(values)


def test_unknown_keys_are_named_with_a_suggestion(tmp_path):
    with pytest.raises(UserError, match=r"unknown key\(s\) 'stack' \(did you mean 'stacks'\?\)"):
        TrainConfig.from_dict({"stack": 2})
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  batchsize: 4\n")
    with pytest.raises(UserError, match=r"section 'train': unknown key\(s\) 'batchsize' \(did you mean 'batch_size'"):
        load_config(params, ["train"])
    with pytest.raises(UserError, match=r"no section 'models\.hg'"):
        load_config(params, ["models.hg"])


def test_differences_name_each_changed_result_key_only():
    a = TrainConfig(stacks=2, lr=1e-3)
    b = TrainConfig(stacks=4, lr=1e-3, steps=99, num_workers=3, data_root="elsewhere")
    assert a.differences(b.to_dict()) == ["stacks: checkpoint 4, now 2"]
    assert a.differences(a.to_dict()) == []


def test_command_line_flags_are_yaml_values(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train: {steps: 10, stacks: 2}\n")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--params", str(params), "--section", "train", "--stacks", "3", "--lr", "1e-3",
                              "--stem-channels", "[16, 32]", "--channels-last", "false", "--val-samples", "null"])
    c = config_from_args(args)
    assert (c.steps, c.stacks, c.lr, c.stem_channels, c.channels_last, c.val_samples) == (
        10, 3, 1e-3, (16, 32), False, None)
    assert c.model_config().stem_channels == (16, 32)


# ------------------------------------------------------------------------- command-line values (issue 17)
@pytest.mark.parametrize(("flags", "message"), [
    (["--batch-size", "0"], "--batch_size: must be at least 1, got 0"),
    (["--limit", "0"], "--limit: must be at least 1, got 0"),
    (["--num-workers", "-1"], "--num_workers: must be at least 0, got -1"),
    (["--flip", "sometimes"], "--flip: expected true or false, got 'sometimes'"),
])
def test_evaluate_flags_are_checked_before_anything_runs(tmp_path, capsys, monkeypatch, flags, message):
    from hgstudy import cli
    from hgstudy.engine import evaluate

    monkeypatch.setattr(evaluate, "evaluate_checkpoint", lambda *a, **k: pytest.fail("evaluated before the checks"))
    assert cli.main(["evaluate", str(tmp_path / "model.pt"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_evaluate_out_is_checked_before_the_predictions_are_computed(tmp_path, capsys, monkeypatch):
    import errno
    import os
    from pathlib import Path

    from hgstudy import cli
    from hgstudy.engine import evaluate

    monkeypatch.setattr(evaluate, "evaluate_checkpoint", lambda *a, **k: pytest.fail("predicted before the check"))
    assert cli.main(["evaluate", "model.pt", "--out", str(tmp_path)]) == 2
    assert "is a folder; name the predictions file" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main(["evaluate", "model.pt", "--out", str(tmp_path / "file" / "preds.h5")]) == 2
    assert f"cannot write to {tmp_path / 'file'}" in capsys.readouterr().err
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_open = os.open  # a read-only folder (chmod binds no root): creating a file there fails with EROFS

    def refuse(path, *args, **kwargs):
        if Path(path).parent == read_only:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    assert cli.main(["evaluate", "model.pt", "--out", str(read_only / "preds.h5")]) == 2
    err = capsys.readouterr().err
    assert f"the file system is read-only while creating a file in {read_only}; choose a folder" in err
    assert list(read_only.iterdir()) == []
