"""The training loss: mean squared error between each stack's heatmaps and the Gaussian targets, joints with
target_weight 0 masked out, summed over the loss parts with their weights: one part per stack (the supervision
setting decides its weight), and for HG-Int one per decoder head, against targets drawn at 1/2 and 1/4 of the
heatmap size (`Collate`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from hgstudy.data.sample import draw_targets
from hgstudy.engine.config import TrainConfig

DECODER_TARGETS = ((0.5, "target_dec2"), (0.25, "target_dec4"))


class Collate:
    """default_collate; for HG-Int also targets at 1/2 (and 1/4) of the heatmap size, drawn from joints_hm.

    Pixel centres stay aligned across resolutions: u' = f * (u + 0.5) - 0.5; sigma is the same in each map's
    own pixels.
    """

    def __init__(self, heatmap_res: int, sigma: float, decoder_heads: int):
        self.res, self.sigma, self.targets = heatmap_res, sigma, DECODER_TARGETS[:decoder_heads]

    def __call__(self, samples):
        if self.targets:
            samples = [dict(s) for s in samples]
            for s in samples:
                for f, key in self.targets:
                    hm = f * (np.asarray(s["joints_hm"], np.float64) + 0.5) - 0.5
                    s[key], s[key + "_weight"] = draw_targets(hm, s["target_weight"], int(self.res * f), self.sigma)
        return default_collate(samples)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over all of (..., J, h, w) of weight_j * (pred - target)^2, in fp32; leading dims of pred beyond
    target's (the stacks) are kept: pred (B, S, J, h, w), target (B, J, h, w) -> (S,)."""
    extra = pred.dim() - target.dim()
    shape = (target.shape[0],) + (1,) * extra + target.shape[1:2] + (1, 1)
    err = (pred.float() - target.view(target.shape[0], *(1,) * extra, *target.shape[1:])).square()
    err = err * weight.view(shape)
    dims = (0, *range(extra + 1, err.dim()))
    return err.mean(dim=dims)


def part_weights(config: TrainConfig) -> list[float]:
    """Weights of the loss parts: one per stack (`TrainConfig.stack_loss_weights`), then one per decoder head."""
    return config.stack_loss_weights() + [config.decoder_weight] * config.decoder_head_count
