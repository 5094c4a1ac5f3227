import numpy as np
import pandas as pd
import pytest

from hgstudy.core.joints import MPII_JOINTS
from hgstudy.scoring.annotations import make_annotations
from hgstudy.scoring.metrics import ABLATION_JOINTS, ablation_pckh, distances
from hgstudy.study.ablation import (
    CLAIMS,
    claim_curves,
    claim_trends,
    judge_claims,
    verdict,
    what_was_learned,
    zero_loss,
)


def test_ablation_joints_are_wrists_elbows_knees_ankles():
    names = sorted(MPII_JOINTS[j] for j in ABLATION_JOINTS)
    assert names == sorted(f"{s}_{p}" for s in "lr" for p in ("wrist", "elbow", "knee", "ankle"))


@pytest.mark.parametrize(("claim", "low", "high", "expected"), [
    (CLAIMS[0], 0.1, 2.0, "agrees with the paper"), (CLAIMS[0], -2.0, -0.1, "disagrees with the paper"),
    (CLAIMS[0], -0.5, 0.7, "cannot tell at this budget"), (CLAIMS[-1], 0.1, 2.0, "supported"),
    (CLAIMS[-1], -2.0, -0.1, "contradicted"),
])
def test_verdict_words_say_what_was_shown(claim, low, high, expected):
    assert verdict(claim, low, high) == expected


def test_the_8x1_last_only_claim_is_labelled_as_the_studys_own():
    sources = {c.better + " vs " + c.worse: c.source for c in CLAIMS}
    assert sources["s8x1 vs s8x1_last"].startswith("this study's extension")
    assert all(s.startswith("paper") for k, s in sources.items() if k != "s8x1 vs s8x1_last")


def people(n=200, seed=0):
    rng = np.random.default_rng(seed)
    joints = rng.uniform(100, 500, size=(n, 16, 2))
    return make_annotations(joints, np.ones((n, 16), bool), np.full(n, 10.0), image_index=np.arange(n), dataset="mpii")


def offset(ann, wrong, seed):
    """Predictions 2 px off (correct at 0.5 x 10 px), except a `wrong` fraction of people moved 20 px."""
    rng = np.random.default_rng(seed)
    pred = ann.joints + 2.0
    pred[rng.uniform(size=len(ann)) < wrong] += 20.0
    return pred


def test_accuracy_by_hand():
    ann = people(10)
    pred = ann.joints.copy()
    pred[:3, ABLATION_JOINTS[0]] += 6.0  # 3 of 80 counted instances beyond 5 px
    pred[:, MPII_JOINTS.index("head_top")] += 50.0  # not one of the ablation's joints
    assert ablation_pckh(distances(ann, pred)) == pytest.approx(100 * 77 / 80)


def test_claims_judged_from_clear_and_null_differences_over_seeds():
    ann = people()
    seeds = {"hg": (0.5, 0.45, 0.55), "hg_int": (0.1, 0.12, 0.08), "hg_stacked": (0.5, 0.52, 0.48)}
    preds = {v: {f"{v}-{s}": offset(ann, wrong, 10 * s + k) for s, wrong in enumerate(rates)}
             for k, (v, rates) in enumerate(seeds.items())}
    table = judge_claims(ann, preds).set_index("better")
    # Only the claims whose two variants are present are judged.
    assert sorted(table.index) == ["hg_int", "hg_stacked"]
    assert table.loc["hg_int", "verdict"] == "agrees with the paper"  # about 90% vs 50% correct
    mean_hg = np.mean([ablation_pckh(distances(ann, p)) for p in preds["hg"].values()])
    assert table.loc["hg_int", "acc_worse"] == pytest.approx(mean_hg)
    sd_hg = np.std([ablation_pckh(distances(ann, p)) for p in preds["hg"].values()], ddof=1)
    assert table.loc["hg_int", "seed_sd_worse"] == pytest.approx(sd_hg)
    assert table.loc["hg_stacked", "verdict"] == "cannot tell at this budget"  # same error rates
    row = table.loc["hg_stacked"]
    assert row.family_low < row.ci95_low < row.ci95_high < row.family_high  # Fig. 8's 4 comparisons: wider
    assert row.family_confidence == pytest.approx(1 - 0.05 / 4)
    assert (table.seeds_better == 3).all() and len(CLAIMS) == 9
    # Fig. 8 gives curves, not numbers: no paper difference to hold against what this design detects
    assert table.paper_diff.isna().all() and table.paper_diff_detectable.isna().all()
    assert row.detectable > (row.family_high - row.family_low) / 2  # more than the interval's half-width


def test_the_middle_stack_claims_use_the_middle_predictions_and_the_papers_middle_numbers():
    ann = people()
    last = {v: {f"{v}-{s}": offset(ann, 0.3, 10 * s + k) for s in range(3)}
            for k, v in enumerate(("hg_stacked_int", "s4x2", "s8x1"))}
    middle = {"s4x2": {f"s4x2-{s}": offset(ann, 0.1, 50 + s) for s in range(3)},
              "hg_stacked_int": {f"hg_stacked_int-{s}": offset(ann, 0.6, 60 + s) for s in range(3)}}
    table = judge_claims(ann, last, middle=middle)
    mid = table[table.at_stack == "middle"].set_index("better")
    assert list(mid.index) == ["s4x2"]  # 8 x 1's middle stack was not given: that claim is not judged
    assert mid.loc["s4x2", "verdict"] == "agrees with the paper"  # about 90% vs 40% correct at the middle
    assert mid.loc["s4x2", "paper_diff"] == pytest.approx(86.5 - 84.6)  # the paper's middle-stack numbers
    lasts = table[table.at_stack == "last"].set_index(["better", "worse"])
    assert lasts.loc[("s8x1", "s4x2"), "paper_diff"] == pytest.approx(88.1 - 87.8)
    assert lasts.loc[("s8x1", "s4x2"), "family_confidence"] == pytest.approx(1 - 0.05 / 4)


def test_claim_curves_difference_the_seed_means_at_each_step():
    rows = [{"variant": v, "run": f"{v}-{s}", "step": step, "ablation": base + step / 100 + s}
            for v, base in (("hg_int", 30.0), ("hg", 28.0)) for s in range(3) for step in (100, 200)]
    curves = claim_curves(pd.DataFrame(rows), [CLAIMS[0]])
    assert list(curves.step) == [100, 200]
    np.testing.assert_allclose(curves["diff"], [2.0, 2.0])  # (30 + 1) - (28 + 1) at every step
    assert (curves.low < curves["diff"]).all() and (curves["diff"] < curves.high).all()


def test_what_was_learned_tells_a_network_that_follows_people_from_one_that_guesses_an_average_pose():
    ann = people()
    assert what_was_learned(ann, ann.joints)["spread_ratio"] == pytest.approx(1.0)
    centre = ann.joints.mean(axis=1, keepdims=True)
    average = centre + (ann.joints - centre).mean(axis=0, keepdims=True)  # one pose for everyone
    assert what_was_learned(ann, average)["spread_ratio"] == pytest.approx(0.0, abs=1e-12)
    halfway = centre + 0.5 * (ann.joints - centre)  # every joint pulled halfway towards the person's centre
    assert what_was_learned(ann, halfway)["spread_ratio"] == pytest.approx(0.5)
    low = ann.joints.copy()
    low[:, [MPII_JOINTS.index("l_ankle"), MPII_JOINTS.index("r_ankle")], 1] += 5.0  # half a head size (10 px) lower
    learned = what_was_learned(ann, low)
    assert learned["bias_ankle_y"] == pytest.approx(0.5) and learned["bias_wrist_y"] == pytest.approx(0.0)
    # Near a mean-pose baseline (within a quarter head size): the average itself entirely; ankles half a head size
    # off from it are not, so 6 of the 8 joints remain.
    assert what_was_learned(ann, average, average)["near_mean_pose"] == 1.0
    assert what_was_learned(ann, low, ann.joints)["near_mean_pose"] == 0.75


def trend_curves(changes_better, changes_worse, worse_base=28.0):
    """Runs of hg_int (at 30) and hg validated at steps 100-400, each moving by its `change` between 300 and 400."""
    rows = []
    for variant, base, changes in (("hg_int", 30.0, changes_better), ("hg", worse_base, changes_worse)):
        for s, change in enumerate(changes):
            for step, value in ((100, base - 5), (200, base - 2), (300, base), (400, base + change)):
                rows.append({"variant": variant, "run": f"{variant}-{s}", "step": step, "ablation": value})
    return pd.DataFrame(rows)


def test_claim_trends_fire_when_the_seed_interval_of_the_change_excludes_zero():
    # later half = steps 300 and 400; changes 4, 5, 3 against 0, 1, -1: mean 4, Welch se sqrt(1/3 + 1/3), df 4,
    # half-width t(0.975, 4) = 2.776445 x 0.816497 = 2.267
    t = claim_trends(trend_curves([4, 5, 3], [0, 1, -1]), [CLAIMS[0]]).iloc[0]
    assert t.claim == "hg_int - hg" and t.change_later_half == pytest.approx(4.0)
    assert (t.change_low, t.change_high) == pytest.approx((4 - 2.267, 4 + 2.267), abs=1e-3)
    assert t.trend == "growing" and t.last_diff == pytest.approx(34 - 28)  # moving away from zero
    # 30 - 4 against 20 at the end: still ahead, but closing in -> towards zero
    assert claim_trends(trend_curves([-4, -5, -3], [0, 1, -1], 20.0), [CLAIMS[0]]).trend.iloc[0] == "shrinking"
    # a change of 1 with a seed spread of 2 points: the interval holds zero
    assert claim_trends(trend_curves([1, 3, -1], [0, 0, 0]), [CLAIMS[0]]).trend.iloc[0] == "stable"
    middle = [c for c in CLAIMS if c.stack == "middle"]  # the curves are the last stack's: no trend for these
    assert claim_trends(trend_curves([4, 5, 3], [0, 1, -1]), middle).empty


def test_the_all_zeros_loss_is_the_mean_squared_target_over_joints_and_pixels():
    """One annotated joint on a pixel centre of a 16 x 16 map (sigma 1, drawn within 3 sigma), 15 unannotated:
    the sum of exp(-d^2) over the window, by hand, over 16 joints x 256 pixels."""
    joints = np.zeros((2, 16, 2))
    joints[:, 0] = (8.0, 8.0)
    annotated = np.zeros((2, 16), bool)
    annotated[:, 0] = True
    ann = make_annotations(joints, annotated, np.full(2, 10.0), image_index=np.arange(2), dataset="mpii")
    identity = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1))  # image pixels are heatmap pixels
    window = (1 + 2 * np.exp(-1) + 2 * np.exp(-4) + 2 * np.exp(-9)) ** 2
    assert zero_loss(ann, identity, 16, 1.0) == pytest.approx(window / (16 * 256), rel=1e-6)
