"""Crop geometry and augmentation shared by every dataset.

Coordinates are continuous with pixel centres at integers (OpenCV's convention). A crop of scale s
around centre c covers 200 * s original pixels; the region's centre maps to the crop's centre at
every resolution, so a 256x256 crop and its 64x64 heatmap are aligned: u = (x + 0.5) / 4 - 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hgstudy.errors import UserError

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


def warp_image(image: np.ndarray, matrix: np.ndarray, res: int) -> np.ndarray:
    """One bilinear warp of an HxWx3 image into a res x res crop (outside the image: black)."""
    return cv2.warpAffine(image, matrix, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


@dataclass(frozen=True)
class Augmentation:
    scale: float = 1.0  # multiplies the person's scale (> 1: the person looks smaller)
    rotation: float = 0.0  # degrees
    flip: bool = False
    color_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per RGB channel


NO_AUGMENTATION = Augmentation()
AUGMENTATION_MODES = ("paper", "official", "none")


def sample_augmentation(rng: np.random.Generator, mode: str = "paper") -> Augmentation:
    """Draw one sample's augmentation.

    paper: rotation U(-30, 30), scale U(0.75, 1.25), flip with p = 0.5, colour gain U(0.6, 1.4).
    official (pose-hg-train): scale 2^N(0, 0.25) clipped to [0.71, 1.41], rotation N(0, 30) clipped
    to +-60 and applied 40% of the time, flip p = 0.5, colour gain U(0.6, 1.4).
    """
    if mode == "none":
        return NO_AUGMENTATION
    if mode == "paper":
        scale = rng.uniform(0.75, 1.25)
        rotation = rng.uniform(-30.0, 30.0)
    elif mode == "official":
        scale = 2.0 ** float(np.clip(rng.normal(0.0, 0.25), -0.5, 0.5))
        rotation = float(np.clip(rng.normal(0.0, 30.0), -60.0, 60.0)) if rng.uniform() < 0.4 else 0.0
    else:
        raise UserError(f"unknown augmentation mode {mode!r}; allowed: {', '.join(AUGMENTATION_MODES)}")
    flip = bool(rng.uniform() < 0.5)
    gain = tuple(float(g) for g in rng.uniform(0.6, 1.4, size=3))
    return Augmentation(scale=float(scale), rotation=float(rotation), flip=flip, color_gain=gain)
