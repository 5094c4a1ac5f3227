import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hgstudy.study import stats


def test_interval_by_hand_when_the_images_agree_exactly():
    """Every image has the same hit rate in each run, so the image bootstrap adds nothing and the interval is
    Welch's t interval of the two sets of run accuracies."""
    valid = np.full(50, 10.0)
    acc_a, acc_b = np.array([40.0, 44.0, 42.0]), np.array([38.0, 39.0, 40.0])
    hits_a, hits_b = (np.repeat(acc[:, None] / 10, 50, axis=1) for acc in (acc_a, acc_b))  # acc% of 10 per image
    r = stats.difference_interval(hits_a, hits_b, valid)
    assert r["diff"] == pytest.approx(42.0 - 39.0)
    assert r["se_images"] == pytest.approx(0.0, abs=1e-9)
    se = math.sqrt(acc_a.var(ddof=1) / 3 + acc_b.var(ddof=1) / 3)
    df = se**4 / ((acc_a.var(ddof=1) / 3) ** 2 / 2 + (acc_b.var(ddof=1) / 3) ** 2 / 2)
    welch = scipy_stats.ttest_ind(acc_a, acc_b, equal_var=False).confidence_interval(0.95)
    assert r["df"] == pytest.approx(df) and r["se"] == pytest.approx(se)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((welch.low, welch.high))
    assert r["seed_sd_a"] == pytest.approx(2.0) and r["seed_sd_b"] == pytest.approx(1.0)


def test_one_seed_gives_the_image_interval_only():
    rng = np.random.default_rng(0)
    valid = np.full(300, 8.0)
    a, b = rng.binomial(8, 0.5, (1, 300)), rng.binomial(8, 0.45, (1, 300))
    r = stats.difference_interval(a, b, valid)
    assert math.isinf(r["df"]) and math.isnan(r["se_seed"]) and r["se"] == pytest.approx(r["se_images"])
    assert r["ci_low"] < r["diff"] < r["ci_high"]


def test_coverage_of_the_interval_on_synthetic_studies_with_known_truth():
    """With this study's shape (2958 people, 8 joints, 3 seeds, a seed spread of about 1.3 points), the interval
    holds the true difference about 95% of the time; one seed's image bootstrap does not."""
    result = stats.coverage(true_diff=2.0, seeds=3, seed_spread=1.3, experiments=120, people=1500, images=900,
                            seed=1, n_resamples=200)
    assert result["true_diff"] == pytest.approx(2.0, abs=1e-6)
    assert 0.9 <= result["coverage"] <= 1.0, result
    assert result["coverage_images_only"] < 0.75, result
    assert 0.8 < result["seed_sd_points"] < 2.5, result


def test_detectable_difference_by_hand():
    # normal limit: (z(0.975) + z(0.8)) x se = (1.959964 + 0.841621) x 2 (tables of the normal quantiles)
    assert stats.detectable_difference(2.0, math.inf, 0.95) == pytest.approx(2 * 2.801585, rel=1e-6)
    # 4 degrees of freedom: t(0.975, 4) = 2.776445, t(0.8, 4) = 0.940965 (t tables)
    assert stats.detectable_difference(1.0, 4, 0.95) == pytest.approx(3.717410, rel=1e-6)


def test_design_detectable_by_hand():
    # seed sd 1, 3 seeds, no image error: se = sqrt(2 / 3), df = (2/3)^2 / (2 (1/3)^2 / 2) = 4, one comparison
    assert stats.design_detectable(1.0, 0.0, 3, 1) == pytest.approx(3.717410 * math.sqrt(2 / 3), rel=1e-6)
    # more seeds and a smaller family detect smaller differences
    assert stats.design_detectable(1.0, 0.3, 5, 4) < stats.design_detectable(1.0, 0.3, 3, 4)
    assert stats.design_detectable(1.0, 0.3, 3, 4) < stats.design_detectable(1.0, 0.3, 3, 9)


def test_welch_df_by_hand():
    # var 1/3 on each side from 3 runs: (2/3)^2 / (2 (1/3)^2 / 2) = 4; a known part of 1/3 adds: (1)^2 / (1/9) = 9
    assert stats.welch_df(1 / 3, 3, 1 / 3, 3) == pytest.approx(4.0)
    assert stats.welch_df(1 / 3, 3, 1 / 3, 3, known=1 / 3) == pytest.approx(9.0)
    assert stats.welch_df(0.0, 3, 0.0, 3) == math.inf and stats.welch_df(math.nan, 1, 0.2, 3) == math.inf
