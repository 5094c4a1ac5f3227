"""Assemble one training/evaluation sample (everything but the image) from a person's annotation."""

from __future__ import annotations

import numpy as np

from hgstudy.data.targets import draw_targets
from hgstudy.data.transforms import Augmentation, affine_matrix, apply_affine, rescale_affine


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
