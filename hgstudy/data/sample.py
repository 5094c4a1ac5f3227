"""One sample of any dataset: its Gaussian targets, its annotation fields, and the seeded Dataset base.

`SampleDataset` is what MPII, FLIC and the mannequins share: a split (training or not), an augmentation
mode, a seed, and the epoch. Every random choice of sample i in epoch e comes from one generator seeded with
(seed, split, i, e), so a sample is the same on every machine and with any number of DataLoader workers;
the epoch lives in shared memory, so `set_epoch` reaches workers that are already running.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import affine_matrix, apply_affine, rescale_affine
from hgstudy.core.joints import JOINT_LAYOUTS, flip_permutation
from hgstudy.data.augment import AUGMENTATION_MODES, NO_AUGMENTATION, Augmentation, sample_augmentation


def draw_targets(joints_hm, weights, res: int, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (J, res, res) with exp(-d^2 / 2 sigma^2) around each joint, and updated weights (J,).

    joints_hm: (J, 2) positions in heatmap pixels (continuous, pixel centres at integers).
    A joint with weight 0 or whose position lies outside the map gets an all-zero map and weight 0.
    Drawn only in a window of 3 sigma around each joint (beyond it the Gaussian is below 1%).
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


def crop_matrices(center, scale: float, res: int, aug: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps original image -> input crop (res) and -> heatmap (res // 4) under an augmentation."""
    to_input = affine_matrix(center, scale * aug.scale, res, aug.rotation, aug.flip)
    return to_input, rescale_affine(to_input, 0.25)


def annotate_sample(joints, annotated, visible, center, scale: float, norm: float, index: int, res: int,
                    aug: Augmentation, flip_permutation, sigma: float = 1.0) -> dict:
    """The sample dict of `hgstudy.data` without its image; `matrix_input` says where to draw or warp it.

    After a flip the image's left and right swap, so target j is drawn at the joint that now plays
    role j: joints_hm / target / target_weight are permuted, `joints` / `visible` / `annotated` stay
    as annotated (they are what metrics compare with, in original pixels).
    """
    joints = np.asarray(joints, dtype=np.float32)
    annotated = np.asarray(annotated, dtype=bool)
    to_input, to_heatmap = crop_matrices(center, scale, res, aug)
    order = np.asarray(flip_permutation) if aug.flip else np.arange(len(joints))
    joints_hm = apply_affine(to_heatmap, joints)[order]
    target, weight = draw_targets(joints_hm, annotated[order].astype(np.float32), res // 4, sigma)
    return {
        "target": target,
        "target_weight": weight,
        "joints": joints,
        "joints_hm": joints_hm.astype(np.float32),
        "annotated": annotated,
        "visible": np.asarray(visible, dtype=np.float32),
        "matrix": to_heatmap,
        "matrix_input": to_input,
        "center": np.asarray(center, dtype=np.float32),
        "scale": float(scale),
        "norm": float(norm),
        "index": int(index),
    }


class SampleDataset(Dataset):
    """The base of every dataset: split kind, input resolution, target sigma, augmentation, seed and epoch.

    training: True for a training split (augmented with `augment`, drawn afresh every epoch); False for an
    evaluation split (never augmented, the same in every epoch). Subclasses say which joint set their people
    have (`layout`, a key of `hgstudy.core.joints.JOINT_LAYOUTS`).
    """

    layout: str = "mpii"

    def __init__(self, training: bool, res: int, sigma: float, augment: str, seed: int):
        if not isinstance(res, int) or res < 16 or res % 4:
            raise UserError(f"input resolution must be a multiple of 4 and at least 16, got {res!r}")
        if not (isinstance(sigma, int | float) and np.isfinite(sigma) and sigma > 0):
            raise UserError(f"target sigma must be a positive number, got {sigma!r}")
        if augment not in AUGMENTATION_MODES:
            raise UserError(f"unknown augmentation {augment!r}; allowed: {', '.join(AUGMENTATION_MODES)}")
        self.training, self.res, self.sigma, self.seed = bool(training), int(res), float(sigma), int(seed)
        self.augment = augment if training else "none"
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def joint_names(self) -> tuple[str, ...]:
        return JOINT_LAYOUTS[self.layout]

    @property
    def flip(self) -> list[int]:
        """Left/right permutation of the joints (for flipped samples and the flip test)."""
        return flip_permutation(self.joint_names)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Training samples of a new epoch get fresh augmentation (also in running DataLoader workers)."""
        self._epoch.fill_(int(epoch))

    def rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of every random choice of sample `index` (evaluation splits: epoch 0 always)."""
        epoch = (self.epoch if epoch is None else int(epoch)) if self.training else 0
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(not self.training), int(index), epoch]))

    def augmentation(self, index: int, rng: np.random.Generator | None = None) -> Augmentation:
        if self.augment == "none":
            return NO_AUGMENTATION
        return sample_augmentation(self.rng(index) if rng is None else rng, self.augment)
