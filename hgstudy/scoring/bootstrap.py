"""Paired bootstrap over images for the difference between two sets of predictions on the same annotations.

Images (not people) are resampled with replacement, so people of the same image stay together. Both
prediction sets are scored on every resample, giving the distribution of the difference of the summary
PCK (MPII official Total / Tompson Mean / FLIC elbows+wrists) and of the AUC.

Fast: each person's correct counts (at the table threshold) and AUC contributions are precomputed once; a
resample is a vector of image counts, so all resamples are one matrix product (counts (B, images) @ per-image
sums). 1000 resamples of the 2958 MPII validation people take a few tens of milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hgstudy.scoring.annotations import Annotations
from hgstudy.scoring.metrics import (
    FLIC_GROUPS,
    MPII_EVAL_JOINTS,
    THRESHOLDS,
    distances,
    get_protocol,
    trapezoid_weights,
)


def resample_counts(n_images: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n_images) float64: how often each image is drawn in each of B resamples of n_images draws."""
    draws = rng.integers(0, n_images, size=(n_resamples, n_images))
    draws += (np.arange(n_resamples) * n_images)[:, None]
    return np.bincount(draws.ravel(), minlength=n_resamples * n_images).reshape(n_resamples, n_images).astype(
        np.float64
    )


def _instance_scores(dist, threshold, thresholds, strict):
    """Per instance: hit at `threshold` (0/1) and its AUC contribution sum_k w_k [hit at t_k] (0 if unannotated)."""
    t = np.asarray(thresholds, dtype=np.float64)
    if np.any(np.diff(t) <= 0):
        raise ValueError("thresholds must be strictly increasing")
    valid = ~np.isnan(dist)
    d = np.where(valid, dist, np.inf)
    hit = (d < threshold) if strict else (d <= threshold)
    # d is within t_k for every k from the first such index on (`<=`: t_k >= d; strict: t_k > d)
    first = np.searchsorted(t, d, side="right" if strict else "left")
    suffix = np.concatenate([np.cumsum(trapezoid_weights(t)[::-1])[::-1], [0.0]])
    return (hit & valid).astype(np.float64), np.where(valid, suffix[first], 0.0), valid.astype(np.float64)


def paired_bootstrap(
    dist_a,
    dist_b,
    image_index,
    *,
    joints=None,
    threshold: float = 0.5,
    thresholds=THRESHOLDS,
    strict: bool = False,
    pooling: str = "instances",
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Bootstrap the difference A - B of a summary PCK and its AUC, resampling images.

    dist_a, dist_b: (N,J) normalised distances of the two prediction sets (same NaN pattern: same annotations).
    image_index: (N,) image id of each person (0..I-1). joints: columns to use (default all).
    pooling: "instances" (PCK over all annotated instances of `joints`: MPII official Total) or "joints"
    (mean of the per-joint PCKs: the Tompson Mean); the AUC is of the matching curve over `thresholds`.
    Returns a DataFrame with rows (the summary: "total" or "mean") and "auc", columns a, b, diff (on the
    full set), boot_mean (mean of resampled differences), ci_low, ci_high (percentile interval at
    `confidence`), and attrs n_resamples, seed, n_images. Percent units. Seeded: same inputs, same output.
    """
    da, db = np.asarray(dist_a, dtype=np.float64), np.asarray(dist_b, dtype=np.float64)
    if joints is not None:
        da, db = da[:, list(joints)], db[:, list(joints)]
    if da.shape != db.shape or (np.isnan(da) != np.isnan(db)).any():
        raise ValueError("the two prediction sets must be scored on the same annotations")
    if pooling not in ("instances", "joints"):
        raise ValueError(f"pooling must be 'instances' or 'joints', not {pooling!r}")
    image = np.asarray(image_index, dtype=np.int64).ravel()
    if image.shape != (da.shape[0],):
        raise ValueError(f"image_index has {image.size} entries for {da.shape[0]} people")
    _, image = np.unique(image, return_inverse=True)
    n_img, n_j = int(image.max()) + 1, da.shape[1]
    hit_a, auc_a, valid = _instance_scores(da, threshold, thresholds, strict)
    hit_b, auc_b, _ = _instance_scores(db, threshold, thresholds, strict)
    parts = np.stack([hit_a, auc_a, hit_b, auc_b, valid])  # (5, N, J)
    if pooling == "instances":
        per_person = parts.sum(axis=2)  # (5, N)
        per_image = np.stack([np.bincount(image, weights=p, minlength=n_img) for p in per_person], axis=1)
    else:  # per image and joint: bin = image * J + joint
        bins = (image[:, None] * n_j + np.arange(n_j)).ravel()
        per_image = np.stack(
            [np.bincount(bins, weights=p.ravel(), minlength=n_img * n_j).reshape(n_img, n_j) for p in parts], axis=1
        ).reshape(n_img, 5 * n_j)

    def summarise(counts: np.ndarray) -> np.ndarray:
        """(R, n_img) image counts -> (R, 4): pck_a, auc_a, pck_b, auc_b."""
        sums = counts @ per_image  # (R, 5) or (R, 5*J)
        if pooling == "joints":
            sums = sums.reshape(len(counts), 5, n_j)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = 100.0 * sums[:, :4] / sums[:, 4:5]
        return ratios.mean(axis=2) if pooling == "joints" else ratios

    full = summarise(np.ones((1, n_img)))[0]
    boot = summarise(resample_counts(n_img, n_resamples, np.random.default_rng(seed)))
    diffs = boot[:, [0, 1]] - boot[:, [2, 3]]
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.nanpercentile(diffs, [tail, 100.0 - tail], axis=0)
    frame = pd.DataFrame(
        {
            "a": full[[0, 1]],
            "b": full[[2, 3]],
            "diff": full[[0, 1]] - full[[2, 3]],
            "boot_mean": np.nanmean(diffs, axis=0),
            "ci_low": low,
            "ci_high": high,
        },
        index=pd.Index(["total" if pooling == "instances" else "mean", "auc"], name="metric"),
    )
    frame.attrs.update(n_resamples=n_resamples, seed=seed, n_images=n_img, confidence=confidence)
    return frame


def bootstrap_difference(
    ann: Annotations,
    pred_a,
    pred_b,
    *,
    protocol: str = "official",
    threshold: float | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Paired image bootstrap of A - B for the study's headline numbers (see `paired_bootstrap`).

    MPII: the 14 evaluated joints at PCKh@0.5, rows total/auc ("official") or mean/auc ("tompson", strict `<`).
    FLIC: elbows and wrists pooled at PCK@0.2, rows total/auc.
    """
    if ann.dataset == "mpii":
        p = get_protocol(protocol)
        joints, strict = MPII_EVAL_JOINTS, p.strict
        pooling = "instances" if p.summary == "total" else "joints"
        threshold = 0.5 if threshold is None else threshold
    else:
        joints, strict, pooling = (*FLIC_GROUPS["elbow"], *FLIC_GROUPS["wrist"]), False, "instances"
        threshold = 0.2 if threshold is None else threshold
    return paired_bootstrap(
        distances(ann, pred_a), distances(ann, pred_b), ann.image_index, joints=joints, threshold=threshold,
        strict=strict, pooling=pooling, n_resamples=n_resamples, seed=seed, confidence=confidence,
    )
