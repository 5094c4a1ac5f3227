"""Convert published PyTorch stacked-hourglass checkpoints into hgstudy checkpoints.

Two layouts map onto `hgstudy.model.network` exactly (same layers, same order of operations):

- princeton-vl/pytorch_stacked_hourglass `PoseNet` (`checkpoint.pt`, keys `model.module.pre.0.conv.weight`,
  ...; any stacks and `inp_dim`, `increase` 0). Its model takes NHWC RGB images scaled to [0, 1]; hgstudy
  takes the same values as NCHW.
- bearpaw/pytorch-pose `hg` models (`checkpoint.pth.tar`, keys `module.conv1.weight`, ...; any stacks and
  `num_blocks`). Its stem widens in the second residual, hence `stem_layout="bearpaw"`. Its model takes NCHW
  RGB in [0, 1] minus the per-channel mean of its training set (that project's `color_normalize`); feed
  hgstudy the same normalised tensor.

Checked against checkpoints of the real code (tests/data/pytorch_stacked_hourglass, tests/data/pytorch-pose).
Wrapper prefixes are optional: a state dict saved without DataParallel (or the Trainer) loads too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from hgstudy.core.errors import UserError
from hgstudy.model.checkpoint import load_state, read_checkpoint, save_checkpoint
from hgstudy.model.network import HourglassConfig, StackedHourglass

RESIDUAL_FIELD = re.compile(r"^(bn[123]|conv[123]|skip)\.")
UNUSED_SKIP = re.compile(r"(^|\.)skip\.")
PSH_STEM_RESIDUALS = {"1": "1", "3": "2", "4": "3"}  # pre.2 is the max-pool


def _psh_residual(rest: str) -> str:
    """pytorch_stacked_hourglass Residual: Conv wrappers add a `.conv` level; the skip is `skip_layer`."""
    rest = re.sub(r"^(conv[123])\.conv\.", r"\1.", rest)
    return re.sub(r"^skip_layer\.conv\.", "skip.", rest)


def _psh_hourglass(rest: str) -> str:
    """`low2.low2.up1.bn1.weight` -> `low2.low2.up1.0.bn1.weight`; the innermost low2 is a residual."""
    nested = 0
    while rest.startswith("low2."):
        nested, rest = nested + 1, rest[len("low2."):]
    if RESIDUAL_FIELD.match(_psh_residual(rest)):
        return "low2." * (nested - 1) + "low2.0." + _psh_residual(rest)
    branch, rest = rest.split(".", 1)
    return "low2." * nested + f"{branch}.0." + _psh_residual(rest)


def map_pytorch_stacked_hourglass(key: str) -> str | None:
    rules = [
        (r"^pre\.0\.conv\.(.*)", lambda m: f"stem_conv.{m[1]}"),
        (r"^pre\.0\.bn\.(.*)", lambda m: f"stem_bn.{m[1]}"),
        (r"^pre\.([134])\.(.*)", lambda m: f"stem_res{PSH_STEM_RESIDUALS[m[1]]}.{_psh_residual(m[2])}"),
        (r"^hgs\.(\d+)\.0\.(.*)", lambda m: f"hourglasses.{m[1]}.{_psh_hourglass(m[2])}"),
        (r"^features\.(\d+)\.0\.(.*)", lambda m: f"heads.{m[1]}.res.0.{_psh_residual(m[2])}"),
        (r"^features\.(\d+)\.1\.conv\.(.*)", lambda m: f"heads.{m[1]}.lin.{m[2]}"),
        (r"^features\.(\d+)\.1\.bn\.(.*)", lambda m: f"heads.{m[1]}.lin_bn.{m[2]}"),
        (r"^outs\.(\d+)\.conv\.(.*)", lambda m: f"heads.{m[1]}.out.{m[2]}"),
        # Merge wraps a Conv that wraps the nn.Conv2d: two `.conv` levels.
        (r"^merge_features\.(\d+)\.conv\.conv\.(.*)", lambda m: f"merge_features.{m[1]}.{m[2]}"),
        (r"^merge_preds\.(\d+)\.conv\.conv\.(.*)", lambda m: f"merge_heatmaps.{m[1]}.{m[2]}"),
    ]
    return _apply(rules, key)


def config_pytorch_stacked_hourglass(state: dict, input_res: int) -> HourglassConfig:
    stacks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("outs."))
    joints, features = state["outs.0.conv.weight"].shape[:2]
    depth = max(k.split(".")[2:].count("low2") for k in state if k.startswith("hgs.0.0."))
    inner = state["hgs.0.0.low1.conv3.conv.weight"].shape[0]
    if inner != features:
        raise UserError(f"this PoseNet was built with increase={inner - features} (its hourglasses widen from "
                        f"{features} to {inner} channels inside), which hgstudy's hourglass cannot express; "
                        "only checkpoints with increase=0 (the default) can be converted")
    stem = (state["pre.0.conv.weight"].shape[0], state["pre.1.conv3.conv.weight"].shape[0])
    return HourglassConfig(stacks=stacks, modules=1, features=features, joints=joints, depth=depth,
                           input_res=input_res, stem_channels=stem)


def _bearpaw_hourglass(stack: str, level: str, branch: str, rest: str, depth: int) -> str:
    # bearpaw indexes levels from the innermost (0) out; branches 0 up1, 1 low1, 2 low3, 3 innermost low2.
    prefix = "low2." * (depth - 1 - int(level))
    name = {"0": "up1", "1": "low1", "2": "low3", "3": "low2"}[branch]
    return f"hourglasses.{stack}.{prefix}{name}.{rest.replace('downsample.0.', 'skip.')}"


def map_bearpaw(key: str, depth: int) -> str | None:
    rules = [
        (r"^conv1\.(.*)", lambda m: f"stem_conv.{m[1]}"),
        (r"^bn1\.(.*)", lambda m: f"stem_bn.{m[1]}"),
        (r"^layer([123])\.0\.(.*)", lambda m: f"stem_res{m[1]}.{m[2].replace('downsample.0.', 'skip.')}"),
        (r"^hg\.(\d+)\.hg\.(\d+)\.([0-3])\.(.*)", lambda m: _bearpaw_hourglass(*m.groups(), depth)),
        (r"^res\.(\d+)\.(.*)", lambda m: f"heads.{m[1]}.res.{m[2]}"),
        (r"^fc\.(\d+)\.0\.(.*)", lambda m: f"heads.{m[1]}.lin.{m[2]}"),
        (r"^fc\.(\d+)\.1\.(.*)", lambda m: f"heads.{m[1]}.lin_bn.{m[2]}"),
        (r"^score\.(\d+)\.(.*)", lambda m: f"heads.{m[1]}.out.{m[2]}"),
        (r"^fc_\.(\d+)\.(.*)", lambda m: f"merge_features.{m[1]}.{m[2]}"),
        (r"^score_\.(\d+)\.(.*)", lambda m: f"merge_heatmaps.{m[1]}.{m[2]}"),
    ]
    return _apply(rules, key)


def config_bearpaw(state: dict, input_res: int) -> HourglassConfig:
    stacks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("score."))
    joints, features = state["score.0.weight"].shape[:2]
    modules = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("res.0."))
    depth = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("hg.0.hg."))
    stem = (state["conv1.weight"].shape[0], state["layer1.0.conv3.weight"].shape[0])
    # pytorch-pose's layer2 doubles the width (its planes = inplanes); a stem that keeps it is the paper's.
    widths = {stem[1]: "paper", 2 * stem[1]: "bearpaw"}
    layer2 = state["layer2.0.conv3.weight"].shape[0]
    if layer2 not in widths:
        raise UserError(f"unexpected stem: layer2 maps {stem[1]} -> {layer2} channels; hgstudy models "
                        f"{stem[1]} -> {stem[1]} (the paper) or {stem[1]} -> {2 * stem[1]} (pytorch-pose's hg)")
    return HourglassConfig(stacks=stacks, modules=modules, features=features, joints=joints, depth=depth,
                           input_res=input_res, stem_channels=stem, stem_layout=widths[layer2])


def _apply(rules, key: str) -> str | None:
    for pattern, build in rules:
        match = re.match(pattern, key)
        if match:
            return build(match)
    return None


LAYOUTS: dict[str, tuple[str, str, Callable, Callable]] = {
    # name: (key prefix the reference's wrappers add, a key every such model has, config reader, key mapper)
    "pytorch_stacked_hourglass": ("model.module.", "pre.0.conv.weight", config_pytorch_stacked_hourglass,
                                  lambda key, config: map_pytorch_stacked_hourglass(key)),
    "bearpaw": ("module.", "conv1.weight", config_bearpaw, lambda key, config: map_bearpaw(key, config.depth)),
}


def _unwrap(state: dict, prefix: str, marker: str) -> dict | None:
    """The model's own keys: without the wrappers' prefix (all of it, a part of it, or none was saved)."""
    parts = prefix.split(".")[:-1]
    for start in range(len(parts) + 1):
        head = "".join(f"{p}." for p in parts[start:])
        if head + marker in state:
            return {k[len(head):]: v for k, v in state.items() if k.startswith(head)}
    return None


def convert_state_dict(state: dict, layout: str, input_res: int = 256) -> StackedHourglass:
    """A StackedHourglass carrying the weights of a reference state dict of the given layout."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown checkpoint layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    prefix, marker, read_config, map_key = LAYOUTS[layout]
    unwrapped = _unwrap(state, prefix, marker)
    if unwrapped is None:
        raise UserError(f"no key {prefix + marker!r} (with or without the {prefix!r} prefix), so this is not a "
                        f"{layout} checkpoint (first keys: {', '.join(list(state)[:3])}); check --from")
    state = unwrapped
    try:
        config = read_config(state, input_res)
    except (KeyError, ValueError) as exc:
        raise UserError(f"cannot read the model configuration from this {layout} checkpoint: "
                        f"missing or malformed entry {exc}") from exc
    model = StackedHourglass(config)
    own = model.state_dict()
    converted, unmapped = {}, []
    for key, value in state.items():
        new = map_key(key, config)
        if new is None:
            unmapped.append(key)
        elif new in own:
            converted[new] = value
        elif not UNUSED_SKIP.search(new):  # skip convs the reference registers but never uses are dropped
            unmapped.append(key)
    if unmapped:
        raise UserError(f"{len(unmapped)} keys of the {layout} checkpoint have no place in the hgstudy model: "
                        + ", ".join(unmapped[:5]))
    load_state(model, converted, f"converted {layout} checkpoint")
    return model.eval()


def import_weights(layout: str, source, target, input_res: int = 256) -> StackedHourglass:
    ckpt = read_checkpoint(source)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{source} holds no state dict (expected a dict of tensors, or one under 'state_dict')")
    model = convert_state_dict(state, layout, input_res)
    save_checkpoint(model, target, source={"layout": layout, "file": str(source)})
    return model


def add_arguments(parser) -> None:
    parser.add_argument("--from", dest="layout", required=True, choices=sorted(LAYOUTS),
                        help="the project whose checkpoint this is")
    parser.add_argument("checkpoint", help="the published checkpoint file")
    parser.add_argument("out", help="where to write the hgstudy checkpoint")
    parser.add_argument("--input-res", type=int, default=256, help="input resolution the model is used at")


def main(args) -> None:
    model = import_weights(args.layout, args.checkpoint, args.out, args.input_res)
    c = model.config
    print(f"wrote {args.out}: {c.stacks} stacks, {c.modules} modules, {c.features} features, "
          f"{c.joints} joints, depth {c.depth}")
