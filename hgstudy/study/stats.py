"""Intervals for a claim "variant A is more accurate than variant B" that cover both training seeds and images.

A run's accuracy is a pooled PCK: hits / annotated over a fixed set of joint instances. Two runs of the same
variant with different seeds differ (initialisation, data order, augmentation), and the validation images
are a sample of the images the claim is about. The difference of the variants' mean accuracies over their
seeds, d = mean_A - mean_B, therefore has two independent sources of error:

- training: var_seed = s_A^2 / K_A + s_B^2 / K_B, from the spread of the K runs of each variant (Welch);
- images: var_img, a paired bootstrap over images of d with each variant's per-image hits averaged over its
  seeds (`scipy.stats.bootstrap`; people of one image stay together, both variants see the same images).

The interval is d +- t(df) * sqrt(var_seed + var_img), with Satterthwaite's degrees of freedom for the seed
part (the image part, from thousands of people, counts as exactly known). It assumes seed effects that are
roughly normal and independent between variants, and images exchangeable with the population the claim is
about. With K = 3 seeds per variant, t has about 4 degrees of freedom: intervals are wide, as they should be.
`coverage` checks the procedure on synthetic runs whose true difference and seed spread are set.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import special, stats

from hgstudy.scoring.annotations import Annotations
from hgstudy.scoring.metrics import distances


def hit_sums(ann: Annotations, preds, joints, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per image: hits at `threshold` (official `<=`) and annotated instances of `joints`, (n_images,) each."""
    d = distances(ann, preds)[:, list(joints)]
    valid = ~np.isnan(d)
    hits = (np.where(valid, d, np.inf) <= threshold).sum(axis=1)
    n_img = ann.n_images
    return (np.bincount(ann.image_index, weights=hits, minlength=n_img),
            np.bincount(ann.image_index, weights=valid.sum(axis=1), minlength=n_img))


def difference_interval(hits_a: np.ndarray, hits_b: np.ndarray, valid: np.ndarray, confidence: float = 0.95,
                        n_resamples: int = 1000, seed: int = 0) -> dict:
    """The interval of mean_A - mean_B (percent) from per-image hits of each run (K, n_images) and the
    per-image annotated counts (n_images,) they share. See the module docstring."""
    hits_a, hits_b = np.atleast_2d(np.asarray(hits_a, float)), np.atleast_2d(np.asarray(hits_b, float))
    valid = np.asarray(valid, float)
    acc_a, acc_b = 100 * hits_a.sum(axis=1) / valid.sum(), 100 * hits_b.sum(axis=1) / valid.sum()
    diff = acc_a.mean() - acc_b.mean()
    k_a, k_b = len(acc_a), len(acc_b)
    var_a = acc_a.var(ddof=1) / k_a if k_a > 1 else math.nan
    var_b = acc_b.var(ddof=1) / k_b if k_b > 1 else math.nan

    def mean_difference(ha, hb, v, axis=-1):
        return 100 * (ha.sum(axis=axis) - hb.sum(axis=axis)) / v.sum(axis=axis)

    with warnings.catch_warnings():  # identical predictions give a constant (degenerate) distribution
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        boot = stats.bootstrap((hits_a.mean(axis=0), hits_b.mean(axis=0), valid), mean_difference, paired=True,
                               vectorized=True, n_resamples=n_resamples, method="percentile",
                               rng=np.random.default_rng(seed))  # only its spread is used
    var_img = float(np.nanstd(boot.bootstrap_distribution, ddof=1)) ** 2
    var_seed = var_a + var_b
    df = welch_df(var_a, k_a, var_b, k_b, var_img)
    se = math.sqrt((var_seed if math.isfinite(var_seed) else 0.0) + var_img)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return {"acc_a": acc_a.mean(), "acc_b": acc_b.mean(), "diff": diff,
            "detectable": detectable_difference(se, df, confidence),
            "seed_sd_a": math.sqrt(var_a * k_a) if k_a > 1 else math.nan,
            "seed_sd_b": math.sqrt(var_b * k_b) if k_b > 1 else math.nan,
            "se_seed": math.sqrt(var_seed) if math.isfinite(var_seed) else math.nan, "se_images": math.sqrt(var_img),
            "se": se, "df": df, "ci_low": diff - half, "ci_high": diff + half, "seeds_a": k_a, "seeds_b": k_b}


def welch_df(var_a: float, k_a: int, var_b: float, k_b: int, known: float = 0.0) -> float:
    """Satterthwaite's degrees of freedom of var_a + var_b + known: var_a, var_b the squared standard errors of
    means over k_a, k_b runs, `known` a variance counted as exactly known (the images'). Infinite where the runs'
    part is zero or unknown (one seed, identical runs): the known part alone."""
    runs = var_a + var_b
    if not (math.isfinite(runs) and runs > 0):
        return math.inf
    return (runs + known) ** 2 / (var_a**2 / (k_a - 1) + var_b**2 / (k_b - 1))


def detectable_difference(se: float, df: float, confidence: float, power: float = 0.8) -> float:
    """The smallest true difference that an interval of this confidence and standard error excludes zero for
    with probability `power`: (t(1 - alpha / 2) + t(power)) x se, the usual two-sided approximation."""
    return float((stats.t.ppf(0.5 + confidence / 2, df) + stats.t.ppf(power, df)) * se)


def design_detectable(seed_sd: float, se_images: float, seeds: int, comparisons: int, confidence: float = 0.95,
                      power: float = 0.8) -> float:
    """The detectable difference (`detectable_difference`) of a claim between two variants of `seeds` runs each,
    whose runs spread by `seed_sd` points, with an image part `se_images`, in a family of `comparisons`
    (Bonferroni): what a design of that many seeds and that family could decide."""
    var_mean = seed_sd**2 / seeds
    df = welch_df(var_mean, seeds, var_mean, seeds, se_images**2)
    return detectable_difference(math.sqrt(2 * var_mean + se_images**2), df, 1 - (1 - confidence) / comparisons, power)


def verdict(low: float, high: float) -> str:
    """What an interval of better - worse (the paper's order) shows."""
    if low > 0:
        return "agrees with the paper"
    if high < 0:
        return "disagrees with the paper"
    return "cannot tell at this budget"


def seed_band(values: pd.Series, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): a t interval of the mean of per-seed values (training variance only)."""
    v = values.dropna().to_numpy(float)
    if len(v) < 2:
        return (float(v.mean()) if len(v) else math.nan), math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


# ------------------------------------------------------------------------------------- checking coverage
def _accuracy(mu: float, sigma: float) -> float:
    """E[sigmoid(mu + N(0, sigma^2))] by Gauss-Hermite quadrature (the true accuracy of a simulated variant)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float((special.expit(mu + sigma * x) * w).sum() / w.sum())


def simulate_runs(rng, mu: float, seeds: int, difficulty: np.ndarray, people_image: np.ndarray, joints: int,
                  seed_sd: float, run_sd: float) -> np.ndarray:
    """Per-image hits (seeds, n_images) of one variant: each instance is right with probability
    sigmoid(mu + seed effect - image difficulty + run-and-image noise) (logit scale)."""
    n_img = len(difficulty)
    seed_effect = rng.normal(0, seed_sd, (seeds, 1))
    noise = rng.normal(0, run_sd, (seeds, n_img))
    p = special.expit(mu + seed_effect - difficulty[None] + noise)[:, people_image]  # (seeds, people)
    hits = rng.binomial(joints, p)
    return np.stack([np.bincount(people_image, weights=h, minlength=n_img) for h in hits])


def coverage(true_diff: float = 2.0, seeds: int = 3, seed_spread: float = 1.3, run_sd: float = 0.3,
             people: int = 2958, images: int = 1700, joints: int = 8, base: float = 0.3, experiments: int = 300,
             confidence: float = 0.95, seed: int = 0, n_resamples: int = 300) -> dict:
    """How often `difference_interval` holds the true difference, on synthetic studies like this one.

    Each experiment draws `images` images (difficulty N(0, 1), people spread over them), `seeds` runs of two
    variants whose true accuracies (over seeds, images and noise) are `base` and `base` + `true_diff` points,
    with runs of one variant differing by about `seed_spread` points (sd), and computes the interval. Also
    returned: the coverage of the image-only interval (the paired bootstrap of one seed per variant), which
    ignores training variance.
    """
    rng = np.random.default_rng(seed)
    x, w = np.polynomial.hermite_e.hermegauss(80)
    slope = float((special.expit(special.logit(base) + math.sqrt(run_sd**2 + 1) * x) * (1 - special.expit(
        special.logit(base) + math.sqrt(run_sd**2 + 1) * x)) * w).sum() / w.sum())
    seed_sd = seed_spread / (100 * slope)  # logit-scale seed effect for that spread in points (delta method)
    sigma = math.sqrt(seed_sd**2 + run_sd**2 + 1.0)
    mu_b = special.logit(base)
    for _ in range(60):  # mu_b such that the true accuracy is `base` (Newton steps on the quadrature)
        mu_b -= (_accuracy(mu_b, sigma) - base) / max(base * (1 - base), 1e-3)
    target = base + true_diff / 100
    mu_a = special.logit(target)
    for _ in range(60):
        mu_a -= (_accuracy(mu_a, sigma) - target) / max(target * (1 - target), 1e-3)
    truth = 100 * (_accuracy(mu_a, sigma) - _accuracy(mu_b, sigma))
    held, held_images_only, widths, seed_sds = 0, 0, [], []
    for _ in range(experiments):
        difficulty = rng.normal(0, 1, images)
        people_image = np.concatenate([np.arange(images), rng.integers(0, images, people - images)])
        valid = np.bincount(people_image, minlength=images) * float(joints)
        a = simulate_runs(rng, mu_a, seeds, difficulty, people_image, joints, seed_sd, run_sd)
        b = simulate_runs(rng, mu_b, seeds, difficulty, people_image, joints, seed_sd, run_sd)
        r = difference_interval(a, b, valid, confidence, n_resamples, seed=int(rng.integers(2**31)))
        held += r["ci_low"] <= truth <= r["ci_high"]
        one = difference_interval(a[:1], b[:1], valid, confidence, n_resamples, seed=int(rng.integers(2**31)))
        held_images_only += one["ci_low"] <= truth <= one["ci_high"]
        widths.append(r["ci_high"] - r["ci_low"])
        seed_sds.append(r["seed_sd_a"])
    return {"true_diff": truth, "base": 100 * base, "seed_spread": seed_spread, "seeds": seeds,
            "experiments": experiments, "coverage": held / experiments,
            "coverage_images_only": held_images_only / experiments, "mean_width": float(np.mean(widths)),
            "seed_sd_points": float(np.mean(seed_sds))}
