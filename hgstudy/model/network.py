"""Stacked hourglass network, layer for layer as in the official Torch code (pose-hg-train).

Notation: B batch, S stacks, J joints, F features, H x W input, h x w = H/4 x W/4 output.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as nnf
from torch import nn

from hgstudy.core.errors import UserError
from hgstudy.core.fields import check_fields, check_mapping, setting


@dataclass(frozen=True)
class ModelFields:
    """The architecture's settings (all but the joint count, which the dataset decides); the paper's defaults.

    Declared once: `HourglassConfig` adds the joints, `hgstudy.engine.config.TrainConfig` and every command
    that builds a model (`summary`, `bench model`, `train`) reuse these fields and their checks.
    """

    stacks: int = setting(8, "hourglasses", minimum=1, maximum=64)
    modules: int = setting(1, "residual modules at every position (nModules)", minimum=1, maximum=64)
    features: int = setting(256, "channels inside the hourglasses", minimum=2, maximum=4096)
    depth: int = setting(4, "2x poolings inside one hourglass", minimum=1, maximum=8)
    input_res: int = setting(256, "input crop side in pixels", minimum=16, maximum=2048)
    # None = the paper's (64, 128); small CPU models shrink it so the stem doesn't dwarf the hourglasses.
    stem_channels: tuple[int, int] | None = setting(None, "channels of the stem's 7x7 conv and first residual "
                                                    "(null: the paper's [64, 128])", minimum=2, maximum=4096)
    # bearpaw/pytorch-pose's `hg` widens in the stem's second residual (c2 -> 2 c2, as its layer2 is built with
    # planes = inplanes), the paper's in the third (c2 -> F); its checkpoints need its layout.
    stem_layout: Literal["paper", "bearpaw"] = setting("paper", "stem residuals: paper c1->c2, c2->c2, c2->F; "
                                                       "bearpaw c1->c2, c2->2*c2, 2*c2->F")
    decoder_heads: bool = setting(False, "HG-Int (paper Fig. 8): extra heatmap heads in the decoder at 1/2 and 1/4 "
                                  "of the output size (depth 2: at 1/2 only, the one level upsampled before it)")

    @property
    def decoder_head_count(self) -> int:
        """HG-Int's decoder heads: at 1/2 and 1/4 of the output, as many as the decoder has levels below it."""
        return min(2, self.depth - 1) if self.decoder_heads else 0

    def check_model(self, where: str = "model config") -> None:
        """The checks that tie fields together (named by key)."""
        if self.features % 2:
            raise UserError(f"{where}: features must be even (bottlenecks use F/2), got {self.features}")
        if self.input_res % (4 * 2**self.depth):
            raise UserError(
                f"{where}: input_res {self.input_res} must be divisible by 4 * 2**depth = "
                f"{4 * 2**self.depth} (stem /4, then depth={self.depth} poolings)"
            )
        if self.decoder_heads and self.depth < 2:
            raise UserError(f"{where}: decoder_heads needs depth >= 2 (a head at 1/2 of the output, after upsampling)")
        if self.stem_channels is not None and any(c % 2 for c in self.stem_channels):
            raise UserError(f"{where}: stem_channels must be even (bottlenecks use C/2), got {self.stem_channels}")

    def model_fields(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ModelFields)}


@dataclass(frozen=True)
class HourglassConfig(ModelFields):
    joints: int = setting(16, "heatmaps (joints) per stack", minimum=1, maximum=1024)

    def __post_init__(self):
        check_fields(self, "model config: ")
        self.check_model()

    @property
    def stem(self) -> tuple[int, int]:
        return self.stem_channels or (64, 128)

    @property
    def output_res(self) -> int:
        return self.input_res // 4

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "model config") -> HourglassConfig:
        return cls(**check_mapping(cls, values, source))


SMALL_MAP = 8  # px: at or below this width a 1x1 convolution on the CPU runs as one matmul (`pointwise`)


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """conv(x) for a 1x1 convolution. On the CPU, for a small channels_last map, it is one addmm on the
    (B*H*W, C) view of x, with no copy in or out: the same function without oneDNN's fixed cost per call, which
    dominates at these sizes (no committed benchmark isolates this path; `hgstudy bench model` times the step)."""
    b, c, h, w = x.shape
    if x.device.type != "cpu" or w > SMALL_MAP or not x.is_contiguous(memory_format=torch.channels_last):
        return conv(x)
    rows, weight = x.permute(0, 2, 3, 1).reshape(b * h * w, c), conv.weight.view(conv.out_channels, c).t()
    y = torch.addmm(conv.bias, rows, weight) if conv.bias is not None else rows @ weight
    return y.view(b, h, w, conv.out_channels).permute(0, 3, 1, 2)  # channels_last again


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
        # ReLU in place: BatchNorm's backward needs its input, not its output; conv3's output is not saved.
        y = pointwise(self.conv1, torch.relu_(self.bn1(x)))
        y = self.conv2(torch.relu_(self.bn2(y)))
        y = pointwise(self.conv3, torch.relu_(self.bn3(y)))
        return y.add_(x if self.skip is None else pointwise(self.skip, x))


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
        out = self.up1(x).add_(up)  # up1's output is a fresh sum, saved by nothing
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
        features = torch.relu_(self.lin_bn(pointwise(self.lin, self.res(x))))
        return features, pointwise(self.out, features)


class StackedHourglass(nn.Module):
    def __init__(self, config: HourglassConfig):
        super().__init__()
        self.config = c = config
        c1, c2 = c.stem
        self.stem_conv = nn.Conv2d(3, c1, 7, stride=2, padding=3)
        self.stem_bn = nn.BatchNorm2d(c1)
        self.stem_res1 = Residual(c1, c2)
        c3 = 2 * c2 if c.stem_layout == "bearpaw" else c2
        self.stem_res2 = Residual(c2, c3)
        self.stem_res3 = Residual(c3, c.features)
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
                for _ in range(c.decoder_head_count))

    def stem(self, x):
        x = torch.relu_(self.stem_bn(self.stem_conv(x)))  # (B, c1, H/2, W/2)
        x = nnf.max_pool2d(self.stem_res1(x), 2, 2)  # (B, c2, H/4, W/4)
        return self.stem_res3(self.stem_res2(x))  # (B, F, H/4, W/4)

    def forward(self, x, return_decoder: bool = False):
        """(B, 3, H, W) -> heatmaps (B, S, J, H/4, W/4).

        With return_decoder (HG-Int models only) also the decoder heads' heatmaps of the last
        stack: [(B, J, h/2, w/2), (B, J, h/4, w/4)] (depth 2: the first only).
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
                x = pointwise(self.merge_features[i], features).add_(x).add_(pointwise(self.merge_heatmaps[i], hm))
        heatmaps = torch.stack(heatmaps, 1)  # (B, S, J, h, w)
        if not return_decoder:
            return heatmaps
        depth = self.config.depth
        levels = (depth - 1, depth - 2)  # (B, J, h/2, w/2) and (B, J, h/4, w/4)
        return heatmaps, [conv(decoder_out[level]) for conv, level in zip(self.decoder_heads, levels)]


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy in which every BatchNorm that directly follows a convolution is folded into it.

    In the pre-activation residual module, bn2 follows conv1 and bn3 follows conv2 (bn1 reads the residual
    stream and cannot be folded); in the stem and heads, stem_bn follows stem_conv and lin_bn follows lin.
    Same function up to rounding; only for inference (folded BNs no longer learn or track statistics).
    """
    model = copy.deepcopy(model).eval()
    pairs = [("stem_conv", "stem_bn")]
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if hasattr(module, "conv1") and hasattr(module, "bn2"):
            pairs += [(f"{prefix}conv1", f"{prefix}bn2"), (f"{prefix}conv2", f"{prefix}bn3")]
        if hasattr(module, "lin") and hasattr(module, "lin_bn"):
            pairs.append((f"{prefix}lin", f"{prefix}lin_bn"))
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        with torch.no_grad():
            factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(factor.view(-1, 1, 1, 1).to(conv.weight))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter((bias - bn.running_mean) * factor + bn.bias)
        parent, _, child = bn_name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())
    return model
