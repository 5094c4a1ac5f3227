"""Metric math against hand computations and the real MPII / FLIC annotation files.

Expected numbers are worked out by hand in the comments (or follow directly from a shift chosen relative to
each person's reference length), never taken from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hgstudy.core.joints import FLIC_JOINTS, MPII_JOINTS
from hgstudy.scoring import metrics
from hgstudy.scoring.annotations import Annotations, make_annotations
from hgstudy.scoring.ground_truth import load_annotations

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MPII_VALID = DATA / "mpii" / "valid.h5"
FLIC_VALID = DATA / "flic" / "valid.h5"
J = {n: i for i, n in enumerate(MPII_JOINTS)}
needs_data = pytest.mark.skipif(not MPII_VALID.is_file(), reason="shared/data not present")


def hand_case():
    """Three people; person 0 head size 10, person 1 head size 20, person 2 has no annotated joint.

    Errors (in head sizes, along x so the distance is exact):
      person 0: r_ankle 0.5 (exactly at the threshold), l_ankle 0.6, knees 0, hips 0.2, pelvis/thorax 5 (not
                evaluated), upper_neck 0.7, head_top 0, r_wrist 0.3, r_elbow 0.55, shoulders 0, l_elbow 0,
                l_wrist 0.5 (at the threshold);
      person 1: ankles and l_wrist not annotated, every other joint off by 0.1.
    """
    gt = np.zeros((3, 16, 2))
    gt[:, :, 0] = np.arange(16) * 10.0 + 100
    gt[:, :, 1] = 50.0
    annotated = np.ones((3, 16), dtype=bool)
    annotated[1, [J["r_ankle"], J["l_ankle"], J["l_wrist"]]] = False
    annotated[2] = False
    ref = np.array([10.0, 20.0, 0.0])
    err = np.zeros((3, 16))
    e0 = {"r_ankle": 0.5, "l_ankle": 0.6, "r_hip": 0.2, "l_hip": 0.2, "pelvis": 5, "thorax": 5, "upper_neck": 0.7,
          "r_wrist": 0.3, "r_elbow": 0.55, "l_wrist": 0.5}
    for name, e in e0.items():
        err[0, J[name]] = e
    err[1] = 0.1
    pred = gt.copy()
    pred[:, :, 0] += err * ref[:, None]
    pred[2] = 12345.0  # garbage for the unannotated person: must not matter
    ann = make_annotations(gt, annotated, ref, dataset="mpii", image_index=[0, 1, 2])
    return ann, pred


def test_normalized_distances_hand():
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[3.0, 4.0], [np.nan, 0.0], [1.0, 1.0]]])
    d = metrics.normalized_distances(pred, gt, [[True, True, False]], [10.0])
    assert d[0, 0] == 0.5  # |(3,4)| = 5 px over a 10 px head
    assert d[0, 1] == np.inf  # a NaN prediction is always wrong, as in evalMPII
    assert np.isnan(d[0, 2])  # not annotated: ignored


def test_official_table_hand():
    ann, pred = hand_case()
    table = metrics.score_mpii(ann, pred, "official")
    assert list(table) == ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "ubody", "total", "auc"]
    expected = {
        "head": 75.0,  # upper neck 1/2, head top 2/2
        "shoulder": 100.0,
        "elbow": 75.0,  # r_elbow 1/2, l_elbow 2/2
        "wrist": 100.0,  # r_wrist 2/2, l_wrist 1/1 (0.5 <= 0.5)
        "hip": 100.0,
        "knee": 100.0,
        "ankle": 50.0,  # r_ankle 1/1 (at threshold), l_ankle 0/1
        "ubody": 100 * 10 / 11,  # arms: person 0 5 of 6, person 1 5 of 5
        "total": 88.0,  # 14 joints: person 0 11 of 14, person 1 11 of 11 -> 22/25
        # Total curve (25 instances, 6 at 0, 11 at 0.1, 2 at 0.2, 1 at 0.3, 2 at 0.5, 3 beyond):
        # 24% for t < .1, 68% to .2, 76% to .3, 80% to .5, 88% at .5; x = t/0.5, trapezoids of width 0.02:
        # 0.02 * (10*24 + 10*68 + 10*76 + 20*80 + 88 - (24 + 88)/2) = 66.24
        "auc": 66.24,
    }
    for key, value in expected.items():
        assert table[key] == pytest.approx(value, abs=1e-9), key


def test_tompson_table_hand_and_where_protocols_differ():
    ann, pred = hand_case()
    table = metrics.score_mpii(ann, pred, "tompson")
    assert list(table) == ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "mean"]
    expected = {
        "head": 100.0,  # head top only
        "shoulder": 100.0,
        "elbow": 75.0,
        "wrist": 50.0,  # l_wrist at exactly 0.5 fails the strict <
        "hip": 100.0,
        "knee": 100.0,
        "ankle": 0.0,  # r_ankle at exactly 0.5 fails too
        # per joint: ankles 0, 0; knees, hips 100 x4; neck 50; head 100; r_wrist 100, r_elbow 50,
        # shoulders 100 x2, l_elbow 100, l_wrist 0 -> 1000 / 14
        "mean": 1000 / 14,
    }
    for key, value in expected.items():
        assert table[key] == pytest.approx(value, abs=1e-9), key


def test_curves_and_auc_hand():
    ann, pred = hand_case()
    curves = metrics.mpii_curves(metrics.distances(ann, pred), "official")
    assert curves.loc[0.0, "total"] == pytest.approx(24.0)
    assert curves.loc[0.1, "total"] == pytest.approx(68.0)
    assert curves.loc[0.5, "total"] == pytest.approx(88.0)
    assert metrics.auc([0, 100], [0.0, 0.5]) == pytest.approx(50.0)  # a straight line from 0 to 100
    assert metrics.auc(np.full(51, 100.0)) == pytest.approx(100.0)
    tomp = metrics.mpii_curves(metrics.distances(ann, pred), "tompson")
    assert tomp.loc[0.0, "mean"] == 0.0  # strict: nothing is closer than 0


def test_pck_ignores_unannotated_and_empty_joint_is_nan():
    dist = np.array([[0.1, np.nan], [0.6, np.nan]])
    assert metrics.pck(dist, 0.5)[0] == 50.0
    assert np.isnan(metrics.pck(dist, 0.5)[1])
    assert metrics.pooled_pck(dist, 0.5) == 50.0


@needs_data
def test_real_valid_ground_truth_scores_100():
    ann = load_annotations(MPII_VALID)
    assert len(ann) == 2958 and ann.n_images == 2729
    # counts of annotated joints, from part != (0, 0) in the file: e.g. 843 right ankles are missing
    assert int(ann.missing[:, J["r_ankle"]].sum()) == 843
    # only (0, 0) means missing: a head top on the image's top edge (y == 0) is annotated (README: 0,0)
    assert ann.annotated[293, J["head_top"]] and ann.joints[293, J["head_top"], 1] == 0.0
    assert int(ann.annotated[:, J["head_top"]].sum()) == 2932
    gt = np.nan_to_num(ann.joints)
    official = metrics.score_mpii(ann, gt, "official")
    assert all(v == 100.0 for v in official.values())
    assert all(v == 100.0 for v in metrics.score_mpii(ann, gt, "tompson").values())


@needs_data
def test_real_valid_shifted_by_head_fraction():
    ann = load_annotations(MPII_VALID)
    gt = np.nan_to_num(ann.joints)
    # every joint 0.405 head sizes away: correct for t >= 0.41 only. Total curve = 0 for k <= 40, 100 for
    # k >= 41 (t = k/100); AUC = 0.02 * (100/2 + 9 * 100) = 19.0
    pred = gt + np.stack([0.405 * ann.ref_length, np.zeros(len(ann))], axis=1)[:, None, :]
    table = metrics.score_mpii(ann, pred, "official")
    assert table["total"] == 100.0 and table["auc"] == pytest.approx(19.0, abs=1e-9)
    far = gt + np.stack([0.55 * ann.ref_length, np.zeros(len(ann))], axis=1)[:, None, :]
    assert metrics.score_mpii(ann, far, "official")["total"] == 0.0


@needs_data
def test_real_valid_shifted_by_pixels():
    ann = load_annotations(MPII_VALID)
    pred = np.nan_to_num(ann.joints) + np.array([5.0, 12.0])  # 13 px from every joint
    eval_joints = [i for i, n in enumerate(MPII_JOINTS) if n not in ("pelvis", "thorax")]
    n_annotated = ann.annotated[:, eval_joints].sum(axis=1)
    within = 13.0 <= 0.5 * ann.ref_length  # per person: all its joints are correct or none is
    expected_total = 100.0 * n_annotated[within].sum() / n_annotated.sum()
    assert 90.0 < expected_total < 100.0  # the shift matters for the small heads
    assert metrics.score_mpii(ann, pred)["total"] == pytest.approx(expected_total, abs=1e-9)
    # AUC: instances correct from t >= 13/h on
    t = np.arange(51) / 100
    curve = np.array([100.0 * n_annotated[13.0 / ann.ref_length <= x].sum() / n_annotated.sum() for x in t])
    expected_auc = np.sum((curve[1:] + curve[:-1]) / 2 * 0.02)
    assert metrics.score_mpii(ann, pred)["auc"] == pytest.approx(expected_auc, abs=1e-9)


@needs_data
def test_flic_real_valid():
    ann = load_annotations(FLIC_VALID, dataset="flic")
    assert ann.dataset == "flic" and len(ann) == 1016
    assert metrics.score_flic(ann, ann.joints)["elbow"] == 100.0
    torso = ann.ref_length
    near = ann.joints + np.stack([0.155 * torso, np.zeros(len(ann))], axis=1)[:, None, :]
    result = metrics.score_flic(ann, near)
    assert result["elbow"] == 100.0 and result["wrist"] == 100.0
    pdj = result["pdj"]
    assert (pdj.loc[:0.15] == 0.0).all().all() and (pdj.loc[0.16:] == 100.0).all().all()
    far = ann.joints + np.stack([0.25 * torso, np.zeros(len(ann))], axis=1)[:, None, :]
    assert metrics.score_flic(ann, far)["wrist"] == 0.0
    shifted = ann.joints + np.array([18.0, 24.0])  # 30 px
    expected = 100.0 * np.mean(30.0 <= 0.2 * torso)
    assert 0 < expected < 100
    assert metrics.score_flic(ann, shifted)["elbow"] == pytest.approx(expected, abs=1e-9)


def test_pcp_hand():
    gt = np.full((2, 16, 2), np.nan)
    pred = np.zeros((2, 16, 2))
    pts = {"r_shoulder": (0, 0), "r_elbow": (0, 20), "r_wrist": (0, 40),
           "l_shoulder": (100, 0), "l_elbow": (100, 30), "l_wrist": (100, 60)}
    off = {"r_shoulder": (10, 0), "r_elbow": (0, 4), "r_wrist": (0, 14),
           "l_shoulder": (0, 12), "l_elbow": (0, 0), "l_wrist": (0, 15)}
    for name, xy in pts.items():
        gt[0, J[name]] = xy
        pred[0, J[name]] = np.add(xy, off[name])
    gt[1, J["r_shoulder"]], gt[1, J["r_elbow"]] = (0, 0), (0, 10)
    pred[1, J["r_shoulder"]], pred[1, J["r_elbow"]] = (6, 0), (0, 16)
    annotated = np.isfinite(gt).all(axis=2)
    # r upper arm L=20 (tol 10): 10, 4 -> strict, loose; r lower arm L=20: 4, 14 -> loose only;
    # l upper arm L=30 (tol 15): 12, 0 -> both; l lower arm: 0, 15 -> both (<=); person 1 upper arm L=10: 6, 6 -> no
    table = metrics.pcp(pred, gt, annotated, metrics.MPII_LIMBS)
    assert table.loc["upper_arm"].tolist() == pytest.approx([200 / 3, 200 / 3, 3])
    assert table.loc["lower_arm"].tolist() == pytest.approx([50.0, 100.0, 2])
    assert table.loc["total"].tolist() == pytest.approx([60.0, 80.0, 5])
    assert np.isnan(table.loc["torso", "strict"]) and table.loc["torso", "n"] == 0
    sided = metrics.pcp(pred, gt, annotated, metrics.MPII_LIMBS, by_side=True)
    assert sided.loc["r_lower_arm", "strict"] == 0.0 and sided.loc["l_lower_arm", "strict"] == 100.0


def test_pcp_flic_torso_uses_midpoints():
    f = {n: i for i, n in enumerate(FLIC_JOINTS)}
    gt = np.zeros((2, 11, 2))
    for n, xy in {"l_shoulder": (0, 0), "r_shoulder": (40, 0), "l_hip": (0, 60), "r_hip": (40, 60)}.items():
        gt[:, f[n]] = xy
    pred = gt.copy()
    pred[0, [f["l_shoulder"], f["l_hip"]], 1] += 60  # midpoints move by 30 = half the 60 px torso: correct
    pred[1, [f["l_shoulder"], f["l_hip"]], 1] += 62  # 31 > 30: wrong
    table = metrics.pcp(pred, gt, np.ones((2, 11), bool), metrics.FLIC_LIMBS)
    assert table.loc["torso", "strict"] == 50.0 and table.loc["torso", "n"] == 2


def test_visibility_split_hand():
    ann, pred = hand_case()
    visible = ann.annotated.copy()
    visible[0, J["r_elbow"]] = False  # the wrong r_elbow of person 0 is occluded, person 1's is visible
    visible[1, J["r_wrist"]] = False
    ann = make_annotations(ann.joints, ann.annotated, ann.ref_length, visible=visible, dataset="mpii")
    split = metrics.mpii_by_visibility(ann, pred, "official")
    # elbow = mean(r, l): visible r 1/1, l 2/2 -> 100; occluded r 0/1, l none -> NaN
    assert split.loc["elbow", "visible"] == 100.0 and np.isnan(split.loc["elbow", "occluded"])
    assert split.loc["elbow", "all"] == 75.0
    # like the toolkit's (left + right) / 2, a side without instances makes the group NaN
    assert np.isnan(split.loc["wrist", "occluded"]) and split.loc["wrist", "n_occluded"] == 1
    assert split.loc["total", "n_visible"] == 23 and split.loc["total", "occluded"] == 50.0


def test_flic_measures_on_mpii_layout_people_use_the_shoulder_to_hip_torso():
    """Mannequins (MPII layout) scored FLIC's way: torso = |r_shoulder - l_hip| from the ground truth."""
    idx = {n: i for i, n in enumerate(MPII_JOINTS)}
    joints = np.zeros((3, 16, 2))
    joints[:, idx["r_shoulder"]] = [100.0, 100.0]
    joints[:, idx["l_hip"]] = [[130.0, 140.0], [160.0, 180.0], [0.0, 0.0]]  # torso 50, 100, (missing)
    annotated = np.ones((3, 16), bool)
    annotated[2, idx["l_hip"]] = False  # person 3 has no torso: left out
    joints[~annotated] = np.nan
    ann = Annotations(joints, annotated, annotated.copy(), np.full(3, 7.0), np.arange(3), "mpii")
    pred = np.nan_to_num(joints).copy()
    pred[:, idx["l_elbow"], 0] += 15.0  # 0.3 torso for person 1 (wrong), 0.15 for person 2 (right)
    pred[:, idx["r_wrist"], 1] += 10.0  # 0.2 and 0.1 torso: both right (<=)
    result = metrics.score_flic(ann, pred)
    assert result["elbow"] == pytest.approx((50.0 + 100.0) / 2)  # mean of l_elbow 50% and r_elbow 100%
    assert result["wrist"] == pytest.approx(100.0)
    assert result["pdj"].loc[0.1, "wrist"] == pytest.approx((50.0 + 100.0) / 2)  # r_wrist 1/2 at 0.1, l_wrist 2/2
    assert list(result["pdj"].columns) == ["shoulder", "elbow", "wrist", "hip"]
