"""`hgstudy import-weights` against checkpoints of the real public models.

The fixtures (tests/data/pytorch_stacked_hourglass, tests/data/pytorch-pose; provenance in tests/data/README.md)
were written by running the real code once: each manifest lists the real model's state-dict keys, shapes and
dtypes with the range each tensor's values are drawn from (a real checkpoint is tens of MB), and the heatmaps
the real model gave for the drawn input. Here the checkpoint is rebuilt, saved as the real project saves it,
imported, and the hgstudy model's heatmaps are compared with the real ones.
"""

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.model.checkpoint import load_checkpoint
from hgstudy.model.network import HourglassConfig, StackedHourglass
from hgstudy.model.weights import convert_state_dict, import_weights

DATA = Path(__file__).resolve().parents[1] / "data"
POSENET = DATA / "pytorch_stacked_hourglass" / "posenet_2x64"
BEARPAW = {name: DATA / "pytorch-pose" / name for name in ("hg_s1_b1", "hg_s2_b1", "hg_s1_b2")}


def draw(seed: int, stream: int, shape, low: float, high: float, dtype: str) -> torch.Tensor:
    """The generators' `draw`: values uniform in [low, high) from PCG64 stream (seed, stream)."""
    values = np.random.default_rng([seed, stream]).random(math.prod(shape))
    return torch.from_numpy((low + (high - low) * values).astype(dtype).reshape(shape))


def real_checkpoint(fixture: Path, path: Path) -> tuple[dict, torch.Tensor]:
    """Rebuild the fixture's checkpoint at `path`, in the real project's container; (manifest, input images)."""
    manifest = json.loads(fixture.with_suffix(".json").read_text())
    seed = manifest["seed"]
    state = {name: draw(seed, stream, shape, low, high, dtype)
             for stream, (name, shape, dtype, low, high) in enumerate(manifest["state"], start=1)}
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode() + tensor.numpy().tobytes())
    assert digest.hexdigest() == manifest["sha256"], "rebuilt state differs from the generator's: check `draw`"
    prefix = manifest["checkpoint"]["prefix"]
    entries = {"state_dict": {prefix + k: v for k, v in state.items()}, "epoch": 3, "arch": "hg", "best_acc": 0.5,
               "optimizer": {"state": {}, "param_groups": [{"lr": 2.5e-4, "params": [0, 1]}]}}
    torch.save({k: entries[k] for k in manifest["checkpoint"]["entries"]}, path)
    images = manifest["input"]
    return manifest, draw(seed, images["stream"], images["shape"], images["low"], images["high"], "float32")


def relative_error(ours: torch.Tensor, theirs: np.ndarray) -> float:
    theirs = torch.from_numpy(theirs)
    return float((ours - theirs).abs().max() / theirs.abs().max())


def test_real_posenet_gives_the_same_heatmaps(tmp_path):
    _, images = real_checkpoint(POSENET, tmp_path / "checkpoint.pt")
    import_weights("pytorch_stacked_hourglass", tmp_path / "checkpoint.pt", tmp_path / "hg.pt", input_res=64)
    model = load_checkpoint(tmp_path / "hg.pt")
    c = model.config
    assert (c.stacks, c.modules, c.features, c.joints, c.depth) == (2, 1, 64, 16, 4)
    assert (c.stem, c.stem_layout) == ((64, 128), "paper")
    with torch.no_grad():
        ours = model(images.permute(0, 3, 1, 2))  # the real model takes NHWC
    expected = np.load(f"{POSENET}_heatmaps.npy")
    assert ours.shape == expected.shape == (2, 2, 16, 16, 16)
    assert relative_error(ours, expected) < 1e-5


@pytest.mark.parametrize("name", sorted(BEARPAW))
def test_real_bearpaw_hg_gives_the_same_heatmaps(tmp_path, name):
    _, images = real_checkpoint(BEARPAW[name], tmp_path / "checkpoint.pth.tar")
    import_weights("bearpaw", tmp_path / "checkpoint.pth.tar", tmp_path / "hg.pt", input_res=64)
    model = load_checkpoint(tmp_path / "hg.pt")
    c = model.config
    stacks, blocks = int(name[4]), int(name[7])
    assert (c.stacks, c.modules, c.features, c.joints, c.depth) == (stacks, blocks, 256, 16, 4)
    assert (c.stem, c.stem_layout) == ((64, 128), "bearpaw")
    with torch.no_grad():
        ours = model(images)
    expected = np.load(f"{BEARPAW[name]}_heatmaps.npy")
    assert ours.shape == expected.shape == (2, stacks, 16, 16, 16)
    assert relative_error(ours, expected) < 1e-5


def test_the_comparison_sees_a_wrong_weight(tmp_path):
    """One inner BatchNorm statistic changed: the heatmaps must no longer match (the test can fail)."""
    _, images = real_checkpoint(POSENET, tmp_path / "checkpoint.pt")
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    ckpt["state_dict"]["model.module.hgs.1.0.low2.low2.low2.low2.bn2.running_var"] *= 4
    model = convert_state_dict(ckpt["state_dict"], "pytorch_stacked_hourglass", 64)
    with torch.no_grad():
        ours = model(images.permute(0, 3, 1, 2))
    assert relative_error(ours, np.load(f"{POSENET}_heatmaps.npy")) > 1e-3


def test_posenet_with_increase_is_refused_by_name(tmp_path):
    real_checkpoint(DATA / "pytorch_stacked_hourglass" / "posenet_increase", tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match=r"increase=16 .*only checkpoints with increase=0"):
        import_weights("pytorch_stacked_hourglass", tmp_path / "checkpoint.pt", tmp_path / "hg.pt", input_res=64)
    assert not (tmp_path / "hg.pt").exists()


def test_unused_reference_skip_layers_are_dropped(tmp_path):
    real_checkpoint(POSENET, tmp_path / "checkpoint.pt")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state_dict"]
    # A skip conv whose input and output widths agree is registered but never used by PoseNet's Residual.
    unused = [k for k in state if k.endswith("skip_layer.conv.weight") and state[k].shape[0] == state[k].shape[1]]
    assert len(unused) == 1 + 2 * 13 + 2  # pre.3, 13 residuals per hourglass, 1 per head (2 stacks)
    model = convert_state_dict(state, "pytorch_stacked_hourglass", 64)
    assert len(model.state_dict()) == len(state) - 2 * len(unused)  # weight and bias each
    assert not any(".skip." in k for k in model.state_dict() if k.startswith("hourglasses"))


def test_wrapper_prefixes_are_optional(tmp_path):
    """A state dict saved without DataParallel (or princeton's Trainer) converts to the same model."""
    real_checkpoint(POSENET, tmp_path / "checkpoint.pt")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state_dict"]
    reference = convert_state_dict(state, "pytorch_stacked_hourglass", 64).state_dict()
    for cut in ("model.", "model.module."):
        bare = convert_state_dict({k.removeprefix(cut): v for k, v in state.items()}, "pytorch_stacked_hourglass", 64)
        assert all(torch.equal(bare.state_dict()[k], v) for k, v in reference.items()), cut


def test_wrong_layout_and_foreign_keys_are_named(tmp_path):
    real_checkpoint(BEARPAW["hg_s1_b1"], tmp_path / "bp.pth.tar")
    with pytest.raises(UserError, match="not a pytorch_stacked_hourglass checkpoint"):
        import_weights("pytorch_stacked_hourglass", tmp_path / "bp.pth.tar", tmp_path / "out.pt")
    state = torch.load(tmp_path / "bp.pth.tar", weights_only=True)["state_dict"]
    state["module.extra_layer.weight"] = torch.zeros(3)
    with pytest.raises(UserError, match="extra_layer"):
        convert_state_dict(state, "bearpaw", 64)
    del state["module.extra_layer.weight"]
    del state["module.score.0.bias"]
    with pytest.raises(UserError, match=r"missing keys: heads\.0\.out\.bias"):
        convert_state_dict(state, "bearpaw", 64)
    state["module.score.0.bias"] = torch.zeros(16)
    state["module.layer2.0.conv3.weight"] = torch.zeros(192, 128, 1, 1)
    with pytest.raises(UserError, match=r"layer2 maps 128 -> 192 channels"):
        convert_state_dict(state, "bearpaw", 64)
    assert not (tmp_path / "out.pt").exists()


def test_bearpaw_stem_layout_is_an_option_and_the_paper_stays_the_default():
    assert HourglassConfig().stem_layout == "paper"  # (its parameter count: tests/model/test_network.py)
    bearpaw = StackedHourglass(HourglassConfig(stacks=1, features=256, input_res=64, stem_layout="bearpaw"))
    widths = [(m.conv1.in_channels, m.conv2.in_channels, m.conv3.out_channels)
              for m in (bearpaw.stem_res1, bearpaw.stem_res2, bearpaw.stem_res3)]
    assert widths == [(64, 64, 128), (128, 128, 256), (256, 128, 256)]  # pytorch-pose's layer1..3
    with pytest.raises(UserError, match="stem_layout: must be one of paper, bearpaw"):
        HourglassConfig(stem_layout="resnet")


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="could run code") as refused:
        import_weights("bearpaw", tmp_path / "evil.pt", tmp_path / "out.pt")
    assert "weights_only=False" not in str(refused.value)  # never the advice to load it unsafely


def test_cli_converts_and_reports_errors(tmp_path):
    real_checkpoint(POSENET, tmp_path / "checkpoint.pt")
    cmd = [sys.executable, "-m", "hgstudy.cli", "import-weights", "--from", "pytorch_stacked_hourglass"]
    ok = subprocess.run([*cmd, str(tmp_path / "checkpoint.pt"), str(tmp_path / "hg.pt"), "--input-res", "64"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "2 stacks" in ok.stdout and (tmp_path / "hg.pt").is_file()
    bad = subprocess.run([*cmd, str(tmp_path / "nope.pt"), str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
