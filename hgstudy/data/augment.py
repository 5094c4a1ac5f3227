"""Training augmentation (scale, rotation, flip, colour gain) and the one warp that applies it to an image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hgstudy.core.errors import UserError


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
