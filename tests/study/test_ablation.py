import numpy as np
import pytest

from hgstudy.core.joints import MPII_JOINTS
from hgstudy.scoring.annotations import make_annotations
from hgstudy.study.ablation import ABLATION_JOINTS, CLAIMS, ablation_accuracy, judge_claims, verdict


def test_ablation_joints_are_wrists_elbows_knees_ankles():
    names = sorted(MPII_JOINTS[j] for j in ABLATION_JOINTS)
    assert names == sorted(f"{s}_{p}" for s in "lr" for p in ("wrist", "elbow", "knee", "ankle"))


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.1, 2.0, "reproduced"), (-2.0, -0.1, "not reproduced (reversed)"), (-0.5, 0.7, "inconclusive at this budget"),
])
def test_verdict(low, high, expected):
    assert verdict(low, high) == expected


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
    assert ablation_accuracy(ann, pred) == pytest.approx(100 * 77 / 80)


def test_claims_judged_from_clear_and_null_differences():
    ann = people()
    preds = {"hg": offset(ann, 0.5, 1), "hg_int": offset(ann, 0.1, 2), "hg_stacked": offset(ann, 0.5, 3)}
    table = judge_claims(ann, preds).set_index("better")
    # Only the claims whose two variants are present are judged.
    assert sorted(table.index) == ["hg_int", "hg_stacked"]
    assert table.loc["hg_int", "verdict"] == "reproduced"  # about 90% vs 50% correct
    assert table.loc["hg_int", "acc_worse"] == pytest.approx(ablation_accuracy(ann, preds["hg"]))
    assert table.loc["hg_stacked", "verdict"] == "inconclusive at this budget"  # same error rate
    assert len(CLAIMS) == 7
