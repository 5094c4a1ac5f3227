"""Stacked hourglass network, layer for layer as in the official Torch code (pose-hg-train).

Notation: B batch, S stacks, J joints, F features, H x W input, h x w = H/4 x W/4 output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as nnf
from torch import nn

from hgstudy.errors import UserError


@dataclass(frozen=True)
class HourglassConfig:
    stacks: int = 8
    modules: int = 1  # residual modules at every position ("nModules")
    features: int = 256
    joints: int = 16
    depth: int = 4  # number of 2x poolings inside one hourglass
    input_res: int = 256
    # Channels of the stem's 7x7 conv and first residual. None = the paper's (64, 128);
    # small CPU models shrink it so the stem doesn't dwarf the hourglasses.
    stem_channels: tuple[int, int] | None = None
    # HG-Int (paper Fig. 8): extra heatmap heads in the decoder at 1/2 and 1/4 of the output size.
    decoder_heads: bool = False

    def __post_init__(self):
        for name in ("stacks", "modules", "features", "joints", "depth", "input_res"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.features % 2:
            raise UserError(f"model config: features must be even (bottlenecks use F/2), got {self.features}")
        if self.input_res % (4 * 2**self.depth):
            raise UserError(
                f"model config: input_res {self.input_res} must be divisible by 4 * 2**depth = "
                f"{4 * 2**self.depth} (stem /4, then depth={self.depth} poolings)"
            )
        if self.decoder_heads and self.depth < 3:
            raise UserError("model config: decoder_heads needs depth >= 3 (heads at 1/2 and 1/4 of the output)")
        if self.stem_channels is not None:
            stem = tuple(self.stem_channels)
            if len(stem) != 2 or any(not isinstance(c, int) or c < 2 or c % 2 for c in stem):
                raise UserError(f"model config: stem_channels must be two even integers, got {self.stem_channels!r}")
            object.__setattr__(self, "stem_channels", stem)

    @property
    def stem(self) -> tuple[int, int]:
        return self.stem_channels or (64, 128)

    @property
    def output_res(self) -> int:
        return self.input_res // 4

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> HourglassConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"model config: unknown keys {unknown}; allowed: {sorted(known)}")
        values = dict(values)
        if values.get("stem_channels") is not None:
            values["stem_channels"] = tuple(values["stem_channels"])
        return cls(**values)


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1(F/2) BN-ReLU-3x3(F/2) BN-ReLU-1x1(F), plus skip."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        mid = c_out // 2
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c_out, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x):
        y = self.conv1(nnf.relu(self.bn1(x)))
        y = self.conv2(nnf.relu(self.bn2(y)))
        y = self.conv3(nnf.relu(self.bn3(y)))
        return y + (x if self.skip is None else self.skip(x))


def residuals(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(Residual(channels, channels) for _ in range(count)))


class Hourglass(nn.Module):
    """One level: skip branch at this resolution + (pool, residuals, inner level, residuals, upsample)."""

    def __init__(self, depth: int, features: int, modules: int):
        super().__init__()
        self.depth = depth
        self.up1 = residuals(features, modules)
        self.low1 = residuals(features, modules)
        self.low2 = Hourglass(depth - 1, features, modules) if depth > 1 else residuals(features, modules)
        self.low3 = residuals(features, modules)

    def forward(self, x, decoder_out: dict | None = None):
        low = self.low1(nnf.max_pool2d(x, 2, 2))  # (B, F, r/2, r/2)
        low = self.low2(low, decoder_out) if self.depth > 1 else self.low2(low)
        up = nnf.interpolate(self.low3(low), scale_factor=2, mode="nearest")  # (B, F, r, r)
        out = self.up1(x) + up
        if decoder_out is not None:
            decoder_out[self.depth] = out
        return out


class Head(nn.Module):
    """Residuals at output resolution, 1x1 conv-BN-ReLU, 1x1 conv to heatmaps."""

    def __init__(self, features: int, joints: int, modules: int):
        super().__init__()
        self.res = residuals(features, modules)
        self.lin = nn.Conv2d(features, features, 1)
        self.lin_bn = nn.BatchNorm2d(features)
        self.out = nn.Conv2d(features, joints, 1)

    def forward(self, x):
        features = nnf.relu(self.lin_bn(self.lin(self.res(x))))
        return features, self.out(features)


class StackedHourglass(nn.Module):
    def __init__(self, config: HourglassConfig):
        super().__init__()
        self.config = c = config
        c1, c2 = c.stem
        self.stem_conv = nn.Conv2d(3, c1, 7, stride=2, padding=3)
        self.stem_bn = nn.BatchNorm2d(c1)
        self.stem_res1 = Residual(c1, c2)
        self.stem_res2 = Residual(c2, c2)
        self.stem_res3 = Residual(c2, c.features)
        self.hourglasses = nn.ModuleList(Hourglass(c.depth, c.features, c.modules) for _ in range(c.stacks))
        self.heads = nn.ModuleList(Head(c.features, c.joints, c.modules) for _ in range(c.stacks))
        # Remap into the next stack's input (not after the last stack).
        self.merge_features = nn.ModuleList(nn.Conv2d(c.features, c.features, 1) for _ in range(c.stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(c.joints, c.features, 1) for _ in range(c.stacks - 1))
        if c.decoder_heads:
            # At 1/2 and 1/4 of the output size. BN-ReLU first: the decoder's sums are not normalised, and a
            # bare 1x1 conv on them starts with losses 1000x the main head's.
            self.decoder_heads = nn.ModuleList(
                nn.Sequential(nn.BatchNorm2d(c.features), nn.ReLU(), nn.Conv2d(c.features, c.joints, 1))
                for _ in range(2))

    def stem(self, x):
        x = nnf.relu(self.stem_bn(self.stem_conv(x)))  # (B, c1, H/2, W/2)
        x = nnf.max_pool2d(self.stem_res1(x), 2, 2)  # (B, c2, H/4, W/4)
        return self.stem_res3(self.stem_res2(x))  # (B, F, H/4, W/4)

    def forward(self, x, return_decoder: bool = False):
        """(B, 3, H, W) -> heatmaps (B, S, J, H/4, W/4).

        With return_decoder (HG-Int models only) also the decoder heads' heatmaps of the last
        stack: [(B, J, h/2, w/2), (B, J, h/4, w/4)].
        """
        if return_decoder and not self.config.decoder_heads:
            raise ValueError("return_decoder needs a model built with decoder_heads=True")
        x = self.stem(x)
        heatmaps, decoder_out = [], None
        for i, (hourglass, head) in enumerate(zip(self.hourglasses, self.heads)):
            decoder_out = {} if return_decoder else None
            features, hm = head(hourglass(x, decoder_out))  # hm: (B, J, h, w)
            heatmaps.append(hm)
            if i < len(self.merge_features):
                x = x + self.merge_features[i](features) + self.merge_heatmaps[i](hm)
        heatmaps = torch.stack(heatmaps, 1)  # (B, S, J, h, w)
        if not return_decoder:
            return heatmaps
        depth = self.config.depth
        levels = (depth - 1, depth - 2)  # (B, J, h/2, w/2) and (B, J, h/4, w/4)
        return heatmaps, [conv(decoder_out[level]) for conv, level in zip(self.decoder_heads, levels)]


def save_checkpoint(model: StackedHourglass, path, **extra) -> None:
    """Write {'model_config', 'model'} (+ extra entries) atomically: temporary file, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save({"model_config": model.config.to_dict(), "model": model.state_dict(), **extra}, tmp)
    tmp.replace(path)


def read_checkpoint(path) -> dict:
    """Load a checkpoint file safely (weights_only: it can never run code)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise UserError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {exc}); "
            "it is truncated, corrupt or not a torch checkpoint"
        ) from exc


def load_state(model: nn.Module, state: dict, source: str) -> None:
    """load_state_dict with an error that names missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise UserError(f"{source} does not match the model configuration; " + "; ".join(parts))
    model.load_state_dict(state)


def load_checkpoint(path) -> StackedHourglass:
    """The model stored in any hgstudy checkpoint, built from the configuration saved with it."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(
            f"checkpoint {path} is not an hgstudy checkpoint (entries: {keys}); "
            "convert published weights with `hgstudy import-weights`"
        )
    model = StackedHourglass(HourglassConfig.from_dict(ckpt["model_config"]))
    load_state(model, ckpt["model"], f"checkpoint {path}")
    return model.eval()
