"""Trivial baselines on MPII Mannequins, to show the task is neither trivial nor hopeless.

Both know only what a test-time system knows: the person's centre and scale (the crop), and for the
nearest-neighbour baseline the rendered crop itself. Poses are compared in crop-normalised coordinates,
(joint - centre) / (200 * scale) with the dataset's adjusted centre and scale (valid.h5's for validation).

- mean pose: the average training pose in those coordinates (per joint, over annotated joints), placed in
  each test person's crop.
- nearest neighbour: every training and test person is rendered without augmentation at 64 x 64; the image
  feature is a histogram of gradient orientations (8 x 8 cells of 8 x 8 pixels, 8 unsigned orientations,
  weighted by gradient magnitude, square-rooted, then centred and scaled to unit norm); a test person gets
  the crop-normalised pose of the training person with the most similar feature (cosine), or with k > 1 the
  per-joint median of the k most similar ones. A neighbour's unannotated joint takes the mean pose's place.
  (Raw 16 x 16 grey levels were tried first: they match backgrounds, not people, and do worse than the mean
  pose.)

Predictions are (N,16,2) in original image pixels, in the order of the split (valid.h5's for val).
"""

from __future__ import annotations

import cv2
import numpy as np

from hgstudy.mannequin.dataset import MannequinDataset
from hgstudy.mannequin.poses import Poses, load_poses


def normalised_poses(poses: Poses, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Crop-normalised joints (N,16,2) of a split, and their annotated mask (N,16)."""
    people = poses.split(split)
    center, scale = poses.crop(split)
    rel = (poses.joints[people] - center[:, None]) / (200.0 * scale[:, None, None])
    return rel, poses.annotated[people]


def to_original(rel: np.ndarray, poses: Poses, split: str) -> np.ndarray:
    center, scale = poses.crop(split)
    return center[:, None] + rel * (200.0 * scale[:, None, None])


def mean_pose(split: str = "val", poses: Poses | None = None) -> np.ndarray:
    """The mean training pose placed at every person's centre and scale."""
    poses = load_poses() if poses is None else poses
    rel, annotated = normalised_poses(poses, "train")
    mean = (rel * annotated[..., None]).sum(axis=0) / annotated.sum(axis=0)[:, None]
    n = len(poses.split(split))
    return to_original(np.broadcast_to(mean, (n, *mean.shape)), poses, split)


def gradient_histograms(images: np.ndarray, cell: int = 8, bins: int = 8) -> np.ndarray:
    """(N, (R/cell)^2 * bins) float32 features of uint8 grey images (N,R,R); see the module docstring."""
    n, res = images.shape[0], images.shape[1]
    cells = res // cell
    out = np.empty((n, cells * cells * bins), np.float32)
    ys, xs = np.mgrid[0:res, 0:res] // cell
    where = ((ys * cells + xs) * bins).ravel()
    for k, image in enumerate(images):
        g = image.astype(np.float32)
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
        orientation = np.minimum(((np.arctan2(gy, gx) % np.pi) * (bins / np.pi)).astype(np.int64), bins - 1)
        hist = np.bincount(where + orientation.ravel(), weights=np.hypot(gx, gy).ravel(), minlength=out.shape[1])
        out[k] = np.sqrt(hist)
    out -= out.mean(axis=1, keepdims=True)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)
    return out


def grey_crops(dataset: MannequinDataset, indices) -> np.ndarray:
    """(N,R,R) uint8 grey levels of the dataset's samples."""
    return np.stack([np.rint(dataset[int(i)]["image"].mean(axis=0) * 255).astype(np.uint8) for i in indices])


def nearest_neighbour(split: str = "val", k: int = 1, input_res: int = 64, seed: int = 0, poses: Poses | None = None,
                      train_indices=None, indices=None) -> np.ndarray:
    """Pose of the most alike training person(s) by rendered crop (see the module docstring).

    train_indices / indices: restrict the training pool / the people predicted (default: all), e.g. for tests.
    """
    poses = load_poses() if poses is None else poses
    train = MannequinDataset("train", input_res=input_res, augmentation="none", seed=seed, poses=poses)
    test = MannequinDataset(split, input_res=input_res, augmentation="none", seed=seed, poses=poses)
    pool = np.arange(len(train)) if train_indices is None else np.asarray(train_indices)
    chosen = np.arange(len(test)) if indices is None else np.asarray(indices)
    pool_feats = gradient_histograms(grey_crops(train, pool))
    test_feats = gradient_histograms(grey_crops(test, chosen))
    rel, annotated = normalised_poses(poses, "train")
    mean = (rel * annotated[..., None]).sum(axis=0) / annotated.sum(axis=0)[:, None]
    rel = np.where(annotated[..., None], rel, mean)[pool]
    k = min(int(k), len(pool))
    picked = np.empty((len(chosen), 16, 2))
    for start in range(0, len(chosen), 512):  # keeps the similarity matrix small
        sim = test_feats[start:start + 512] @ pool_feats.T
        if k == 1:
            picked[start:start + 512] = rel[np.argmax(sim, axis=1)]
        else:
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            picked[start:start + 512] = np.median(rel[top], axis=1)
    center, scale = poses.crop(split)
    return center[chosen, None] + picked * (200.0 * scale[chosen, None, None])
