"""Crop geometry: the affine maps between original images, input crops and heatmaps.

Coordinates are continuous with pixel centres at integers (OpenCV's convention). A crop of scale s
around centre c covers 200 * s original pixels; the region's centre maps to the crop's centre at
every resolution, so a 256x256 crop and its 64x64 heatmap are aligned: u = (x + 0.5) / 4 - 0.5.
"""

from __future__ import annotations

import cv2
import numpy as np

PIXELS_PER_SCALE = 200.0  # MPII/FLIC `scale` = person height / 200 px


def affine_matrix(center, scale: float, res: int, rotation: float = 0.0, flip: bool = False) -> np.ndarray:
    """(2, 3) map from original image pixels to a res x res crop.

    rotation: degrees, positive turns the image content counter-clockwise (as cv2.getRotationMatrix2D);
    flip: mirror the crop horizontally about its centre.
    """
    k = res / (PIXELS_PER_SCALE * scale)
    a = np.deg2rad(rotation)
    linear = k * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    if flip:
        linear[0] *= -1
    middle = (res - 1) / 2.0
    offset = np.array([middle, middle]) - linear @ np.asarray(center, dtype=np.float64)
    return np.hstack([linear, offset[:, None]])


def apply_affine(matrix: np.ndarray, points) -> np.ndarray:
    """Map points of shape (..., 2) through a (2, 3) affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def rescale_affine(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The same crop at `factor` times the resolution (e.g. 1/4: input crop -> heatmap), centres aligned."""
    scaled = matrix * factor
    scaled[:, 2] += (factor - 1) / 2.0  # keeps pixel centres aligned: u = f * (x + 0.5) - 0.5
    return scaled


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine map `outer(inner(x))`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def origin_shift(pixel_origin: float) -> np.ndarray:
    """Affine map from annotation coordinates to 0-based image pixels: x_pixel = x_annotation - origin.

    MPII and FLIC annotations come from MATLAB, where the first pixel's centre is 1 (pose-hg-train crops
    with that convention); OpenCV's first pixel centre is 0.
    """
    return np.array([[1.0, 0.0, -pixel_origin], [0.0, 1.0, -pixel_origin]])
