import subprocess
import sys

import pytest
import torch
from reference_layouts import BpHourglassNet, PshPoseNet, randomize

from hgstudy.core.errors import UserError
from hgstudy.model.checkpoint import load_checkpoint
from hgstudy.model.weights import convert_state_dict, import_weights


def psh_checkpoint(path, nstack=2, features=32, joints=16, depth=4):
    ref = randomize(PshPoseNet(nstack, features, joints, depth), seed=1)
    state = {f"model.module.{k}": v for k, v in ref.state_dict().items()}  # Trainer(DataParallel(PoseNet))
    torch.save({"state_dict": state, "optimizer": {}, "epoch": 3}, path)
    return ref


def bearpaw_checkpoint(path, stacks=2, blocks=2, joints=16, depth=4):
    ref = randomize(BpHourglassNet(stacks, blocks, joints, depth), seed=2)
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}  # DataParallel
    torch.save({"state_dict": state, "arch": "hg", "best_acc": 0.5}, path)
    return ref


@pytest.mark.parametrize(("nstack", "features", "joints", "depth"), [(2, 32, 16, 4), (3, 16, 11, 3)])
def test_pytorch_stacked_hourglass_gives_the_same_heatmaps(tmp_path, nstack, features, joints, depth):
    ref = psh_checkpoint(tmp_path / "checkpoint.pt", nstack, features, joints, depth)
    import_weights("pytorch_stacked_hourglass", tmp_path / "checkpoint.pt", tmp_path / "hg.pt", input_res=64)
    model = load_checkpoint(tmp_path / "hg.pt")
    c = model.config
    assert (c.stacks, c.features, c.joints, c.depth, c.modules) == (nstack, features, joints, depth, 1)
    images = torch.rand(2, 64, 64, 3)  # the reference takes NHWC in [0, 1]
    with torch.no_grad():
        torch.testing.assert_close(model(images.permute(0, 3, 1, 2)), ref(images), rtol=1e-5, atol=1e-5)


def test_unused_reference_skip_layers_are_dropped(tmp_path):
    psh_checkpoint(tmp_path / "checkpoint.pt")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state_dict"]
    # A skip conv whose input and output widths agree is registered but never used by the reference.
    unused = [k for k in state if k.endswith("skip_layer.conv.weight") and state[k].shape[0] == state[k].shape[1]]
    assert len(unused) == 1 + 2 * 13 + 2  # pre.3, 13 residuals per hourglass, 1 per head (2 stacks)
    model = convert_state_dict(state, "pytorch_stacked_hourglass", 64)
    assert len(model.state_dict()) == len(state) - 2 * len(unused)  # weight and bias each
    assert not any(".skip." in k for k in model.state_dict() if k.startswith("hourglasses"))


@pytest.mark.parametrize(("stacks", "blocks", "depth"), [(2, 2, 4), (1, 1, 3)])
def test_bearpaw_gives_the_same_heatmaps(tmp_path, stacks, blocks, depth):
    ref = bearpaw_checkpoint(tmp_path / "checkpoint.pth.tar", stacks, blocks, 16, depth)
    import_weights("bearpaw", tmp_path / "checkpoint.pth.tar", tmp_path / "hg.pt", input_res=64)
    model = load_checkpoint(tmp_path / "hg.pt")
    assert (model.config.stacks, model.config.modules, model.config.depth) == (stacks, blocks, depth)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(images), torch.stack(ref(images), 1), rtol=1e-5, atol=1e-5)


def test_wrong_layout_and_foreign_keys_are_named(tmp_path):
    bearpaw_checkpoint(tmp_path / "bp.pth.tar")
    with pytest.raises(UserError, match="not a pytorch_stacked_hourglass checkpoint"):
        import_weights("pytorch_stacked_hourglass", tmp_path / "bp.pth.tar", tmp_path / "out.pt")
    state = torch.load(tmp_path / "bp.pth.tar", weights_only=True)["state_dict"]
    state["module.extra_layer.weight"] = torch.zeros(3)
    with pytest.raises(UserError, match="extra_layer"):
        convert_state_dict(state, "bearpaw", 64)
    del state["module.extra_layer.weight"]
    del state["module.score.1.bias"]
    with pytest.raises(UserError, match=r"missing keys: heads\.1\.out\.bias"):
        convert_state_dict(state, "bearpaw", 64)
    assert not (tmp_path / "out.pt").exists()


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="could run code") as refused:
        import_weights("bearpaw", tmp_path / "evil.pt", tmp_path / "out.pt")
    assert "weights_only=False" not in str(refused.value)  # never the advice to load it unsafely


def test_cli_converts_and_reports_errors(tmp_path):
    psh_checkpoint(tmp_path / "checkpoint.pt", nstack=1, features=16)
    cmd = [sys.executable, "-m", "hgstudy.cli", "import-weights", "--from", "pytorch_stacked_hourglass"]
    ok = subprocess.run([*cmd, str(tmp_path / "checkpoint.pt"), str(tmp_path / "hg.pt")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "1 stacks" in ok.stdout and (tmp_path / "hg.pt").is_file()
    bad = subprocess.run([*cmd, str(tmp_path / "nope.pt"), str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
