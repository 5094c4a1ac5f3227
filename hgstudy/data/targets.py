"""Gaussian heatmap targets, drawn only in a small window around each joint."""

from __future__ import annotations

import numpy as np


def draw_targets(joints_hm, weights, res: int, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (J, res, res) with exp(-d^2 / 2 sigma^2) around each joint, and updated weights (J,).

    joints_hm: (J, 2) positions in heatmap pixels (continuous, pixel centres at integers).
    A joint with weight 0 or whose position lies outside the map gets an all-zero map and weight 0.
    """
    joints_hm = np.asarray(joints_hm, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float32).copy()
    inside = np.all((joints_hm >= -0.5) & (joints_hm < res - 0.5), axis=1)
    weights[~inside] = 0.0
    targets = np.zeros((len(joints_hm), res, res), dtype=np.float32)
    radius = int(np.ceil(3 * sigma))
    for j in np.flatnonzero(weights > 0):
        x, y = joints_hm[j]
        x0, y0 = max(round(x) - radius, 0), max(round(y) - radius, 0)
        x1, y1 = min(round(x) + radius + 1, res), min(round(y) + radius + 1, res)
        gx = np.exp(-((np.arange(x0, x1) - x) ** 2) / (2 * sigma**2))
        gy = np.exp(-((np.arange(y0, y1) - y) ** 2) / (2 * sigma**2))
        targets[j, y0:y1, x0:x1] = np.outer(gy, gx)
    return targets, weights
