"""Heatmaps -> joint coordinates: flip-test averaging, argmax with the quarter-pixel shift, back to the image.

Heatmap coordinates are continuous with pixel centres at integers (as in `hgstudy.core.geometry`), so a
horizontal flip of the input maps heatmap column u to w - 1 - u exactly, and `invert_affine(matrix)` maps a
decoded position straight back to original image pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from hgstudy.core.geometry import apply_affine, invert_affine


def unflip_heatmaps(heatmaps: torch.Tensor, flip_permutation) -> torch.Tensor:
    """Heatmaps (..., J, h, w) of a horizontally flipped image, turned back into the original's frame.

    Mirror every map left/right, then swap left and right joints: joint j of the original image is joint
    flip_permutation[j] of the flipped one.
    """
    return heatmaps.flip(-1)[..., list(flip_permutation), :, :]


def flip_average(heatmaps: torch.Tensor, flipped: torch.Tensor, flip_permutation) -> torch.Tensor:
    """The flip test: mean of an image's heatmaps and its mirror image's heatmaps brought back."""
    return (heatmaps + unflip_heatmaps(flipped, flip_permutation)) / 2


def argmax_quarter(heatmaps: torch.Tensor) -> torch.Tensor:
    """(..., J, h, w) -> (..., J, 2) x, y of each map's maximum, moved 0.25 px toward the higher neighbour.

    As in pose-hg-train's getPreds + postprocess: the shift is applied in x and in y separately, only where
    both neighbours exist (not on the border), and not at all when they are equal.
    """
    *lead, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1, h * w).float()
    idx = flat.argmax(dim=1)
    x, y = idx % w, torch.div(idx, w, rounding_mode="floor")
    rows = torch.arange(flat.shape[0], device=flat.device)

    def value(yy, xx):
        return flat[rows, yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)]

    dx = torch.sign(value(y, x + 1) - value(y, x - 1)) * ((x > 0) & (x < w - 1))
    dy = torch.sign(value(y + 1, x) - value(y - 1, x)) * ((y > 0) & (y < h - 1))
    coords = torch.stack([x + 0.25 * dx, y + 0.25 * dy], dim=1).to(torch.float64)
    return coords.reshape(*lead, 2)


def to_image_coords(coords: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Heatmap coordinates (N, ..., J, 2) -> original pixels, with each sample's (N, 2, 3) image->heatmap map."""
    coords = np.asarray(coords, dtype=np.float64)
    out = np.empty_like(coords)
    for i, matrix in enumerate(np.asarray(matrices, dtype=np.float64)):
        out[i] = apply_affine(invert_affine(matrix), coords[i])
    return out
