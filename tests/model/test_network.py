from pathlib import Path

import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from hgstudy.model.network import HourglassConfig, StackedHourglass
from hgstudy.model.size import summarize


# --- parameter count by hand, from the layer list of the official architecture (pose-hg-train models/hg.lua) ---
def conv(c_in, c_out, k=1):
    return c_in * c_out * k * k + c_out  # weights + bias


def bn(c):
    return 2 * c  # affine weight and bias


def residual(c_in, c_out):
    mid = c_out // 2
    skip = conv(c_in, c_out) if c_in != c_out else 0
    return bn(c_in) + conv(c_in, mid) + bn(mid) + conv(mid, mid, 3) + bn(mid) + conv(mid, c_out) + skip


def hand_count(stacks, modules, features, joints, depth=4, stem=(64, 128)):
    f = features
    stem_params = conv(3, stem[0], 7) + bn(stem[0]) + residual(stem[0], stem[1]) + residual(stem[1], stem[1])
    stem_params += residual(stem[1], f)
    # Each level: skip branch, pre-pool and post-upsample residuals; the innermost adds its own.
    hourglass = (3 * depth + 1) * modules * residual(f, f)
    head = modules * residual(f, f) + conv(f, f) + bn(f) + conv(f, joints)
    merge = conv(f, f) + conv(joints, f)
    return stem_params + stacks * (hourglass + head) + (stacks - 1) * merge


def test_paper_model_has_the_published_parameter_count():
    config = HourglassConfig(stacks=8, modules=1, features=256, joints=16)
    assert hand_count(8, 1, 256, 16) == 25_434_112  # the official architecture's count
    model = StackedHourglass(config)
    assert sum(p.numel() for p in model.parameters()) == 25_434_112


@pytest.mark.parametrize(("stacks", "modules", "features", "joints", "depth", "stem"), [
    (1, 1, 64, 16, 4, (64, 128)), (2, 4, 32, 16, 4, (16, 32)), (4, 2, 48, 11, 3, (64, 128)), (3, 1, 16, 5, 2, (8, 8)),
])
def test_parameter_count_matches_the_layer_list(stacks, modules, features, joints, depth, stem):
    config = HourglassConfig(stacks=stacks, modules=modules, features=features, joints=joints, depth=depth,
                             input_res=64, stem_channels=stem)
    expected = hand_count(stacks, modules, features, joints, depth, stem)
    assert sum(p.numel() for p in StackedHourglass(config).parameters()) == expected
    assert summarize(config)["params"] == expected


def test_paper_model_flops():
    # 2 FLOPs per multiply-add; the paper's model is about 55 GFLOP at 256x256.
    result = summarize(HourglassConfig())
    assert 54.0 < result["gflops"] < 56.0


def test_stem_flops_by_hand():
    # One stack, depth 1, input 16: the 7x7 stem conv alone is 2 * 3*64*49 MACs at 8x8 outputs.
    small = HourglassConfig(stacks=1, features=4, joints=1, depth=1, input_res=16, stem_channels=(2, 2))
    big = HourglassConfig(stacks=1, features=4, joints=1, depth=1, input_res=16, stem_channels=(64, 2))
    delta = summarize(big)["gflops"] - summarize(small)["gflops"]
    # At 8x8 outputs: the stem conv gains 62 output channels (3*49 MACs each), the first residual's 1x1
    # conv gains 62 inputs (one output), and it gains a 64 -> 2 skip conv that the 2 -> 2 residual lacks.
    expected = 2 * 64 * (3 * 49 * 62 + 62 * 1 + 64 * 2)
    assert delta * 1e9 == pytest.approx(expected)


@pytest.mark.parametrize(("stacks", "depth", "res"), [(1, 4, 64), (2, 4, 64), (4, 3, 32), (8, 4, 64), (2, 2, 48)])
def test_output_shape(stacks, depth, res):
    config = HourglassConfig(stacks=stacks, features=16, joints=7, depth=depth, input_res=res, stem_channels=(8, 16))
    out = StackedHourglass(config)(torch.randn(2, 3, res, res))
    assert out.shape == (2, stacks, 7, res // 4, res // 4)


def test_non_square_input():
    config = HourglassConfig(stacks=2, features=16, input_res=64, stem_channels=(8, 16))
    assert StackedHourglass(config)(torch.randn(1, 3, 64, 128)).shape == (1, 2, 16, 16, 32)


def test_decoder_heads_shapes_and_gradients():
    torch.manual_seed(0)  # a random draw can leave a tiny innermost level all below ReLU's threshold
    config = HourglassConfig(stacks=1, modules=2, features=16, joints=5, input_res=64, stem_channels=(8, 16),
                             decoder_heads=True)
    model = StackedHourglass(config).eval()  # eval: a conv bias before train-mode BN has zero gradient
    heatmaps, decoder = model(torch.randn(2, 3, 64, 64), return_decoder=True)
    assert heatmaps.shape == (2, 1, 5, 16, 16)
    assert [d.shape for d in decoder] == [(2, 5, 8, 8), (2, 5, 4, 4)]
    (heatmaps.square().sum() + sum(d.square().sum() for d in decoder)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_a_depth_2_hourglass_has_one_decoder_head_at_half_the_output_and_depth_1_none():
    torch.manual_seed(0)
    config = HourglassConfig(stacks=1, modules=1, features=16, joints=5, input_res=64, depth=2, stem_channels=(8, 16),
                             decoder_heads=True)
    assert config.decoder_head_count == 1
    heatmaps, decoder = StackedHourglass(config).eval()(torch.randn(2, 3, 64, 64), return_decoder=True)
    assert heatmaps.shape == (2, 1, 5, 16, 16) and [d.shape for d in decoder] == [(2, 5, 8, 8)]
    with pytest.raises(UserError, match="decoder_heads needs depth >= 2"):
        HourglassConfig(features=16, input_res=64, depth=1, decoder_heads=True).check_model()


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)  # a random draw can leave a tiny innermost level all below ReLU's threshold
    config = HourglassConfig(stacks=3, modules=2, features=16, joints=4, input_res=64, stem_channels=(8, 16))
    model = StackedHourglass(config).eval()  # eval: a conv bias before train-mode BN has zero gradient
    model(torch.randn(2, 3, 64, 64)).square().sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


@pytest.mark.parametrize(("field", "value"), [("stacks", 0), ("features", 15), ("input_res", 100), ("depth", -1)])
def test_bad_config_is_refused_with_the_key_named(field, value):
    with pytest.raises(UserError, match=field):
        HourglassConfig(**{field: value})


def test_checkpoint_round_trip(tmp_path):
    config = HourglassConfig(stacks=2, features=16, joints=3, input_res=32, depth=3, stem_channels=(8, 16))
    model = StackedHourglass(config).eval()
    save_checkpoint(model, tmp_path / "m.pt")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.config == config
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no partial file left beside it


def test_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    config = HourglassConfig(stacks=2, features=16, joints=3, input_res=32, depth=3)
    model = StackedHourglass(config)
    save_checkpoint(model, tmp_path / "m.pt")
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["model_config"]["joints"] = 4  # the stored weights no longer fit the configuration
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(UserError, match="is corrupt: its content does not match the hash"):
        load_checkpoint(tmp_path / "edited.pt")
    del ckpt["sha256"]  # a checkpoint written without a hash (older, or by hand) is checked by its shapes
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(UserError, match=r"shape mismatches: heads\.0\.out\.bias"):
        load_checkpoint(tmp_path / "bad.pt")


# ------------------------------------------------------------- hostile and damaged checkpoints (issue 17)
def small_model() -> StackedHourglass:
    config = HourglassConfig(stacks=1, features=16, joints=3, input_res=32, depth=3, stem_channels=(8, 16))
    return StackedHourglass(config)


def test_a_byte_flipped_inside_a_tensor_is_caught_by_the_content_hash(tmp_path):
    model = small_model()
    save_checkpoint(model, tmp_path / "model.pt")
    weight = max(model.state_dict().values(), key=lambda t: t.numel())
    raw = bytearray((tmp_path / "model.pt").read_bytes())
    at = raw.find(weight.numpy().tobytes())
    assert at > 0
    raw[at + weight.numel() * 2] ^= 0x10  # one bit of one float in the middle: still a valid zip and tensor
    (tmp_path / "model.pt").write_bytes(bytes(raw))
    with pytest.raises(UserError, match="is corrupt"):
        load_checkpoint(tmp_path / "model.pt")


def test_a_pickle_with_code_is_refused_without_advising_to_load_it_anyway(tmp_path, capsys):
    import argparse

    from hgstudy import cli

    torch.save({"model": argparse.Namespace(lr=1)}, tmp_path / "evil.pt")
    with pytest.raises(UserError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    assert "Python objects other than tensors" in str(info.value) and "weights_only" not in str(info.value)
    assert cli.main(["evaluate", str(tmp_path / "evil.pt")]) == 2
    err = capsys.readouterr().err
    assert "Python objects other than tensors" in err and "weights_only" not in err and "Traceback" not in err


def test_non_finite_weights_are_never_written_nor_loaded(tmp_path, capsys):
    from hgstudy import cli
    from hgstudy.model.checkpoint import HASH_KEY, content_hash

    model = small_model()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var[0] = float("inf")
    with pytest.raises(UserError, match=r"refusing to write .*m.pt: 1 tensors are not finite \(model\..*running_var"):
        save_checkpoint(model, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []
    # written by other means (an older version, by hand), with a matching hash: still refused on reading
    entries = {"model_config": model.config.to_dict(), "model": model.state_dict(), "train_config": {}}
    entries[HASH_KEY] = content_hash(entries)
    torch.save(entries, tmp_path / "m.pt")
    with pytest.raises(UserError, match=r"holds non-finite values \(model\..*running_var\); the run that wrote it "
                                        "diverged"):
        load_checkpoint(tmp_path / "m.pt")
    assert cli.main(["evaluate", str(tmp_path / "m.pt"), "--dataset", "mannequin"]) == 2  # never PCKh 0.00
    err = capsys.readouterr().err
    assert "non-finite values" in err and "PCKh" not in err


def test_a_checkpoint_write_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    import shutil

    import hgstudy.model.checkpoint as checkpoint_module

    model = small_model()
    save_checkpoint(model, tmp_path / "m.pt", step=1)

    def fails_half_way(obj, path):
        Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054")

    monkeypatch.setattr(checkpoint_module.torch, "save", fails_half_way)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12, 0))
    with pytest.raises(UserError, match=rf"no space left on device while writing {tmp_path / 'm.pt'}; free some "
                                        "space or choose another folder. Any previous version of it is intact"):
        save_checkpoint(model, tmp_path / "m.pt", step=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
    assert read_checkpoint(tmp_path / "m.pt")["step"] == 1


def test_small_maps_as_matmuls_compute_the_same_function_and_gradients():
    """On the CPU the 1x1 convolutions of small channels_last maps run as addmm (`pointwise`); in float64 the
    outputs and every gradient equal those of the NCHW model, where every 1x1 convolution is nn.Conv2d."""
    torch.manual_seed(0)
    config = HourglassConfig(stacks=2, modules=1, features=16, joints=4, input_res=64, stem_channels=(8, 16),
                             decoder_heads=True)
    # eval: with batch statistics the random network is chaotic (1e-16 rounding grows to 1e-8), not a smooth map
    model = StackedHourglass(config).double().eval()
    fast = StackedHourglass(config).double().eval().to(memory_format=torch.channels_last)
    fast.load_state_dict(model.state_dict())
    x = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    outs = []
    for m, inp in ((model, x), (fast, x.contiguous(memory_format=torch.channels_last))):
        heatmaps, decoder = m(inp, return_decoder=True)
        (heatmaps.square().sum() + sum(d.square().sum() for d in decoder)).backward()
        outs.append((heatmaps, {n: p.grad for n, p in m.named_parameters()}))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-10, atol=1e-12)
    for name, grad in outs[0][1].items():
        torch.testing.assert_close(outs[1][1][name], grad, rtol=1e-8, atol=1e-10, msg=name)
