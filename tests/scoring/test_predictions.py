"""Annotation and prediction readers (every layout, written here in the exact published layouts with
scipy.io.savemat / h5py) and the `hgstudy score` command line."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hgstudy import cli
from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_JOINTS
from hgstudy.scoring import metrics
from hgstudy.scoring.annotations import TOMPSON_JOINT_NAMES
from hgstudy.scoring.ground_truth import load_annotations
from hgstudy.scoring.predictions import read_predictions

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# Fixtures written by the real public tools' layouts and numbers from their real evaluation code (tests/data/README.md)
REAL = Path(__file__).resolve().parents[1] / "data" / "eval-mpii-pose"
REAL_GT = REAL / "detections_our_format.mat"
REAL_PREDICTIONS = ("tompson.h5", "newell.h5", "bearpaw-hg_s8_b1.mat")
REAL_PEOPLE = np.arange(0, 2958, 30)  # the rows of valid.h5 they hold
EVALMPII_JOINTS = [MPII_JOINTS.index(n) for n in ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist",
                                                  "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
                                                  "upper_neck", "head_top")]  # evalMPII's 14, in its order
MPII_VALID = DATA / "mpii" / "valid.h5"
FLIC_VALID = DATA / "flic" / "valid.h5"
needs_data = pytest.mark.skipif(not MPII_VALID.is_file(), reason="shared/data not present")
EMPTY = np.zeros((0, 0))


# ------------------------------------------------------------------------------------ synthetic ground truth
def synthetic():
    """Four MPII people: 0 and 1 in one image (annolist 5, rects 1 and 2), 2 alone (annolist 2, its only rect),
    3 alone with only the head top annotated (annolist 0). Person 0 has every joint annotated."""
    rng = np.random.default_rng(7)
    n = 4
    gt = rng.integers(20, 600, (n, 16, 2)).astype(float)
    annotated = rng.random((n, 16)) > 0.2
    annotated[0] = True  # every joint has at least one instance
    annotated[3] = False
    annotated[3, 9] = True
    visible = (rng.random((n, 16)) > 0.3) & annotated
    corner1 = rng.integers(0, 300, (n, 2)).astype(float)
    corner2 = corner1 + rng.integers(10, 60, (n, 2))
    head = 0.6 * np.hypot(*(corner2 - corner1).T)
    return dict(gt=gt, annotated=annotated, visible=visible, corners=(corner1, corner2), head=head,
                index=np.array([5, 5, 2, 0]), person=np.array([1, 2, 0, 0]), image=np.array([0, 0, 1, 2]))


def write_split_h5(path, s):
    part = np.where(s["annotated"][..., None], s["gt"], 0.0)
    with h5py.File(path, "w") as f:
        f["part"] = part
        f["normalize"] = s["head"]
        f["visible"] = s["visible"].astype(float)
        f["index"] = s["index"].astype(float)
        f["person"] = s["person"].astype(float)
        f["imgname"] = np.array([b"img%d.jpg" % i for i in s["index"]])
        f["center"] = s["gt"].mean(axis=1)
        f["scale"] = np.ones(len(s["head"]))


def write_tompson_mat(path, s, order=None):
    """pos_gt_src 16x2xN, headboxes_src 2x2xN = [corner][x/y][person], jnt_missing 16xN, dataset_joints 1x16."""
    order = np.arange(16) if order is None else np.asarray(order)
    pos = np.where(s["annotated"][..., None], s["gt"], -1.0).transpose(1, 2, 0)
    names = np.empty((1, 16), dtype=object)
    names[0, :] = [TOMPSON_JOINT_NAMES[i] for i in order]
    scipy.io.savemat(path, {
        "pos_gt_src": pos[order],
        "headboxes_src": np.stack(s["corners"], axis=0).transpose(0, 2, 1),
        "jnt_missing": (~s["annotated"]).T[order].astype(float),
        "dataset_joints": names,
    })


def _struct_array(fields, rows):
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        arr[0, i] = tuple(row)
    return arr


def write_release_mat(path, s):
    """RELEASE.annolist(i).annorect(j) with x1,y1,x2,y2 and annopoints.point (id, x, y, is_visible)."""
    rect_fields = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
    empty_rect = (EMPTY,) * 7
    rects = {}
    for k in range(len(s["head"])):
        points = []
        for j in np.flatnonzero(s["annotated"][k]):
            if s["visible"][k, j]:
                flag = [EMPTY, "1", 1][j % 3]  # empty (not recorded) means visible
            else:
                flag = "0" if j % 2 else 0
            points.append((int(j), float(s["gt"][k, j, 0]), float(s["gt"][k, j, 1]), flag))
        (x1, y1), (x2, y2) = s["corners"][0][k], s["corners"][1][k]
        annopoints = {"point": _struct_array(("id", "x", "y", "is_visible"), points)}
        rects[(s["index"][k], s["person"][k])] = (x1, y1, x2, y2, annopoints, 1.0, {"x": x1, "y": y1})
    annolist = []
    for i in range(6):
        mine = sorted(p for (ii, p) in rects if ii == i)
        rows = [rects[(i, p)] if (i, p) in rects else empty_rect for p in range(max(mine) + 1)] if mine else []
        annolist.append(({"name": f"img{i}.jpg"}, _struct_array(rect_fields, rows) if rows else EMPTY))
    release = {"annolist": _struct_array(("image", "annorect"), annolist), "img_train": np.ones((1, 6))}
    scipy.io.savemat(path, {"RELEASE": release})


@pytest.fixture
def files(tmp_path):
    s = synthetic()
    write_split_h5(tmp_path / "split.h5", s)
    write_tompson_mat(tmp_path / "gt_tompson.mat", s)
    write_release_mat(tmp_path / "release.mat", s)
    return s, tmp_path


def test_three_annotation_layouts_read_the_same(files):
    s, tmp = files
    readings = {
        "h5": load_annotations(tmp / "split.h5"),
        "tompson": load_annotations(tmp / "gt_tompson.mat"),
        "release": load_annotations(tmp / "release.mat", split=tmp / "split.h5"),
    }
    for name, ann in readings.items():
        assert ann.dataset == "mpii", name
        np.testing.assert_array_equal(ann.annotated, s["annotated"], err_msg=name)
        np.testing.assert_array_equal(ann.joints[s["annotated"]], s["gt"][s["annotated"]], err_msg=name)
        assert np.isnan(ann.joints[~s["annotated"]]).all(), name
        np.testing.assert_allclose(ann.ref_length, s["head"], rtol=1e-12, err_msg=name)
    for name in ("h5", "release"):
        np.testing.assert_array_equal(readings[name].visible, s["visible"], err_msg=name)
        np.testing.assert_array_equal(readings[name].image_index, s["image"], err_msg=name)
    assert readings["tompson"].visible is None
    np.testing.assert_array_equal(readings["tompson"].image_index, np.arange(4))
    pred = np.nan_to_num(readings["h5"].joints) + np.random.default_rng(1).normal(0, 8, (4, 16, 2))
    tables = {k: metrics.score_mpii(a, pred) for k, a in readings.items()}
    assert tables["h5"] == pytest.approx(tables["tompson"]) and tables["h5"] == pytest.approx(tables["release"])


def test_tompson_dataset_joints_order_is_honoured(tmp_path):
    s = synthetic()
    order = np.random.default_rng(2).permutation(16)
    write_tompson_mat(tmp_path / "shuffled.mat", s, order=order)
    ann = load_annotations(tmp_path / "shuffled.mat")
    np.testing.assert_array_equal(ann.annotated, s["annotated"])
    np.testing.assert_array_equal(ann.joints[s["annotated"]], s["gt"][s["annotated"]])


def test_tompson_head_size_is_0_6_diagonal(tmp_path):
    s = synthetic()
    s["corners"] = (np.zeros((4, 2)), np.tile([30.0, 40.0], (4, 1)))  # diagonal 50 -> head size 30
    write_tompson_mat(tmp_path / "t.mat", s)
    np.testing.assert_allclose(load_annotations(tmp_path / "t.mat").ref_length, 30.0)


# ------------------------------------------------------------------------------- the real public files
def test_real_ground_truth_layout_is_read():
    """pytorch-pose's detections_our_format.mat layout: uint8 jnt_missing, dataset_joints with thorax `thor`."""
    raw = scipy.io.loadmat(REAL_GT)
    assert raw["jnt_missing"].dtype == np.uint8 and "thor" in [str(v[0]) for v in raw["dataset_joints"].ravel()]
    ann = load_annotations(REAL_GT)
    assert (ann.dataset, len(ann), ann.layout, ann.visible) == ("mpii", len(REAL_PEOPLE), "tompson mat", None)
    np.testing.assert_array_equal(ann.annotated, raw["jnt_missing"].T == 0)  # joint order: MPII's
    np.testing.assert_array_equal(ann.joints[ann.annotated], raw["pos_gt_src"].transpose(2, 0, 1)[ann.annotated])


@needs_data
def test_real_ground_truth_agrees_with_the_split_file():
    mat, h5 = load_annotations(REAL_GT), load_annotations(MPII_VALID).take(REAL_PEOPLE)
    np.testing.assert_array_equal(mat.annotated, h5.annotated)
    np.testing.assert_array_equal(mat.joints[mat.annotated], h5.joints[h5.annotated])
    np.testing.assert_allclose(mat.ref_length, h5.ref_length, rtol=1e-12)


@pytest.mark.parametrize("name", REAL_PREDICTIONS)
@pytest.mark.parametrize("protocol", ["official", "tompson"])
def test_score_matches_the_official_evaluation_code(capsys, name, protocol):
    """`hgstudy score` on the real layouts = evalMPII.m (official) and pytorch-pose's eval_PCKh.py (tompson)."""
    expected = json.loads((REAL / "expected_pckh.json").read_text())[protocol]["results"][name]
    status, out, _ = run(capsys, "mpii", REAL / name, "--annotations", REAL_GT, "--protocol", protocol, "--json")
    assert status == 0
    table = json.loads(out)
    assert list(table) == list(expected["table"])
    assert table == pytest.approx(expected["table"], abs=0.01)
    dist = metrics.distances(load_annotations(REAL_GT), read_predictions(REAL / name))
    per_joint = metrics.pck(dist, 0.5, strict=protocol == "tompson")
    if protocol == "official":
        np.testing.assert_allclose(per_joint[EVALMPII_JOINTS], expected["per_joint"][:14], atol=1e-8)
    else:
        np.testing.assert_allclose(per_joint, expected["per_joint"], atol=1e-8)


def test_real_prediction_layouts_are_read():
    """eval-mpii-pose's reference files: h5 2 x 16 x n (Tompson), h5 n x 16 x 2 (Newell), .mat n x 16 x 2 (bearpaw)."""
    preds = {name: read_predictions(REAL / name, n_people=len(REAL_PEOPLE), n_joints=16) for name in REAL_PREDICTIONS}
    with h5py.File(REAL / "tompson.h5") as f:
        assert f["preds"].shape == (2, 16, len(REAL_PEOPLE))
    # The ground-truth file carries Tompson's predictions too (16 x 2 x n): the same numbers, another layout.
    tompson = scipy.io.loadmat(REAL_GT)["pos_pred_src"].transpose(2, 0, 1)
    np.testing.assert_allclose(preds["tompson.h5"], tompson, rtol=1e-6)
    gt = load_annotations(REAL_GT)
    for name, p in preds.items():  # each file is of these people, x then y: most joints within a head size
        dist = metrics.distances(gt, p)[:, list(metrics.MPII_EVAL_JOINTS)]  # (Tompson's pelvis/thorax are junk)
        assert (dist[~np.isnan(dist)] < 1).mean() > 0.9, name


def _respelled(tmp_path, names, **changes):
    mat = {k: v for k, v in scipy.io.loadmat(REAL_GT).items() if not k.startswith("__")}
    cells = np.empty((1, 16), dtype=object)
    cells[0, :] = [np.array([n]) for n in names]
    mat.update(dataset_joints=cells, **changes)
    scipy.io.savemat(tmp_path / "gt.mat", mat)
    return tmp_path / "gt.mat"


@pytest.mark.parametrize("names", [
    TOMPSON_JOINT_NAMES,  # thrx
    MPII_JOINTS,
    ("r ankle", "r knee", "r hip", "l hip", "l knee", "l ankle", "pelvis", "thorax", "upper neck", "head top",
     "r wrist", "r elbow", "r shoulder", "l shoulder", "l elbow", "l wrist"),  # the MPII release's
    tuple({"r_": "Right ", "l_": "Left-"}.get(n[:2], n[:2]) + n[2:] for n in MPII_JOINTS),
])
def test_joint_spellings_are_accepted(tmp_path, names):
    reference = load_annotations(REAL_GT)
    order = np.random.default_rng(3).permutation(16)  # in any column order
    raw = scipy.io.loadmat(REAL_GT)
    path = _respelled(tmp_path, [names[i] for i in order], pos_gt_src=raw["pos_gt_src"][order],
                      jnt_missing=raw["jnt_missing"][order])
    ann = load_annotations(path)
    np.testing.assert_array_equal(ann.annotated, reference.annotated)
    np.testing.assert_array_equal(ann.joints[ann.annotated], reference.joints[reference.annotated])


def test_wrong_joint_names_and_values_are_refused(tmp_path):
    names = list(TOMPSON_JOINT_NAMES)
    with pytest.raises(UserError, match=r"unknown \['chin'\].*thor"):
        load_annotations(_respelled(tmp_path, [*names[:9], "chin", *names[10:]]))
    with pytest.raises(UserError, match="not 16 different joints"):
        load_annotations(_respelled(tmp_path, [*names[:7], "thor", "thrx", *names[9:]]))  # thorax twice, no neck
    missing = scipy.io.loadmat(REAL_GT)["jnt_missing"].copy()
    missing[0, 0] = 2
    with pytest.raises(UserError, match="'jnt_missing' must hold 0"):
        load_annotations(_respelled(tmp_path, names, jnt_missing=missing))
    pos = scipy.io.loadmat(REAL_GT)["pos_gt_src"].copy()
    pos[9, 0, 4] = np.nan  # head top of person 4 is annotated
    with pytest.raises(UserError, match="head_top of person 4"):
        load_annotations(_respelled(tmp_path, names, pos_gt_src=pos))


# -------------------------------------------------------------------------------------------- predictions
def _v73(path, array_as_h5py_sees_it):
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with h5py.File(path, "w", userblock_size=512) as f:
        f["preds"] = array_as_h5py_sees_it
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM")


@pytest.mark.parametrize("n", [5, 2])
def test_prediction_layouts_round_trip(tmp_path, n):
    preds = np.random.default_rng(n).uniform(0, 500, (n, 16, 2))
    matlab = preds.transpose(2, 1, 0)  # 2 x 16 x n, as MATLAB and the toolkit write it
    scipy.io.savemat(tmp_path / "matlab.mat", {"preds": matlab})
    _v73(tmp_path / "v73.mat", preds)  # MATLAB's 2x16xn seen through HDF5: axes reversed
    with h5py.File(tmp_path / "torch.h5", "w") as f:
        f["preds"] = preds.astype(np.float32)
    np.save(tmp_path / "p.npy", preds)
    np.savez(tmp_path / "p.npz", preds=preds)
    np.savez(tmp_path / "other.npz", whatever=preds)
    for name in ("matlab.mat", "v73.mat", "torch.h5", "p.npy", "p.npz", "other.npz"):
        got = read_predictions(tmp_path / name, n_people=n, n_joints=16)
        np.testing.assert_allclose(got, preds, rtol=1e-6, err_msg=name)
    if n != 2:  # unambiguous shapes: the other orientations too
        scipy.io.savemat(tmp_path / "bearpaw.mat", {"preds": preds})  # n x 16 x 2 from Python
        with h5py.File(tmp_path / "t.h5", "w") as f:
            f["preds"] = matlab
        for name in ("bearpaw.mat", "t.h5"):
            np.testing.assert_allclose(read_predictions(tmp_path / name, n, 16), preds, err_msg=name)
    else:  # n == 2: a Python-written n x 16 x 2 .mat needs the explicit layout
        scipy.io.savemat(tmp_path / "bearpaw.mat", {"preds": preds})
        np.testing.assert_allclose(read_predictions(tmp_path / "bearpaw.mat", 2, 16, layout="n-j-2"), preds)
        assert not np.allclose(read_predictions(tmp_path / "bearpaw.mat", 2, 16), preds)


# --------------------------------------------------------------------------------------------------- CLI
def run(capsys, *argv):
    status = cli.main(["score", *map(str, argv)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_official_and_tompson(files, capsys):
    s, tmp = files
    pred = np.where(s["annotated"][..., None], s["gt"], 0.0)
    np.save(tmp / "gt.npy", pred)
    status, out, _ = run(capsys, "mpii", tmp / "gt.npy", "--annotations", tmp / "split.h5")
    assert status == 0 and "official" in out
    assert out.split("\n")[2].split() == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "UBody",
                                          "Total", "AUC"]
    assert out.split("\n")[3].split() == ["100.00"] * 10
    status, out, _ = run(capsys, "mpii", tmp / "gt.npy", "--annotations", tmp / "release.mat",
                         "--split", tmp / "split.h5", "--json")
    assert status == 0
    result = json.loads(out)
    assert list(result) == ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "ubody", "total", "auc"]
    assert result["total"] == 100.0 and result["auc"] == 100.0
    status, out, _ = run(capsys, "mpii", tmp / "gt.npy", "--annotations", tmp / "gt_tompson.mat",
                         "--protocol", "tompson", "--json")
    assert list(json.loads(out)) == ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "mean"]


@needs_data
def test_cli_real_mpii_shift_json(tmp_path, capsys):
    with h5py.File(MPII_VALID) as f:
        part = f["part"][()]
        head = f["normalize"][()]
    # every prediction 0.405 head sizes to the right: Total 100, AUC 19.0 (see test_metrics), written as
    # MATLAB does (2 x 16 x n)
    preds = part + np.stack([0.405 * head, np.zeros_like(head)], axis=1)[:, None, :]
    scipy.io.savemat(tmp_path / "preds.mat", {"preds": preds.transpose(2, 1, 0)})
    status, out, _ = run(capsys, "mpii", tmp_path / "preds.mat", "--annotations", MPII_VALID, "--json")
    assert status == 0
    result = json.loads(out)
    assert result["total"] == 100.0 and result["auc"] == pytest.approx(19.0, abs=1e-9)


@needs_data
def test_cli_flic(tmp_path, capsys):
    with h5py.File(FLIC_VALID) as f:
        part = f["part"][()]
    with h5py.File(tmp_path / "preds.h5", "w") as f:
        f["preds"] = part
    status, out, _ = run(capsys, "flic", tmp_path / "preds.h5", "--annotations", FLIC_VALID, "--json")
    assert status == 0
    result = json.loads(out)
    assert list(result) == ["elbow", "wrist", "pdj"]
    assert result["elbow"] == 100.0 and result["wrist"] == 100.0
    assert result["pdj"]["threshold"][0] == 0.0 and result["pdj"]["threshold"][-1] == 0.5
    assert result["pdj"]["wrist"] == [100.0] * 51
    status, out, _ = run(capsys, "flic", tmp_path / "preds.h5", "--annotations", FLIC_VALID)
    assert status == 0 and "Elbow" in out and "100.00" in out


def test_cli_errors_exit_2_and_name_the_file(files, capsys):
    s, tmp = files
    good = np.where(s["annotated"][..., None], s["gt"], 0.0)
    cases = {
        "fewer.npy": (good[:3], "3 predictions for 4"),
        "shape.npy": (np.zeros((4, 16, 3)), "shape (4, 16, 3)"),
        "joints.npy": (np.zeros((4, 11, 2)), "11 joints"),
        "nan.npy": (np.where(np.arange(16)[None, :, None] == 3, np.nan, good), "NaN"),
    }
    for name, (array, message) in cases.items():
        np.save(tmp / name, array)
        status, _, err = run(capsys, "mpii", tmp / name, "--annotations", tmp / "split.h5")
        assert status == 2 and name in err and message in err, (name, err)
    with h5py.File(tmp / "nopreds.h5", "w") as f:
        f["predictions"] = good
    (tmp / "preds.txt").write_text("1 2 3")
    np.save(tmp / "gt.npy", good)
    (tmp / "folder.npy").mkdir()
    with h5py.File(tmp / "nonorm.h5", "w") as f:
        f["part"] = good
    checks = [
        (["mpii", tmp / "nopreds.h5", "--annotations", tmp / "split.h5"], "nopreds.h5", "'preds'"),
        (["mpii", tmp / "preds.txt", "--annotations", tmp / "split.h5"], "preds.txt", "unknown prediction file"),
        (["mpii", tmp / "gt.npy", "--annotations", tmp / "nonorm.h5"], "nonorm.h5", "'normalize'"),
        (["mpii", tmp / "gt.npy", "--annotations", tmp / "preds.txt"], "preds.txt", "unknown annotation file"),
        (["mpii", tmp / "gt.npy", "--annotations", tmp / "release.mat"], "release.mat", "split"),
        (["mpii", tmp / "missing.npy", "--annotations", tmp / "split.h5"], "missing.npy", "not found"),
        (["mpii", tmp / "folder.npy", "--annotations", tmp / "split.h5"], "folder.npy", "is a folder, not a file"),
    ]
    for argv, name, message in checks:
        status, _, err = run(capsys, *argv)
        assert status == 2 and name in err and message in err, (argv, err)


@needs_data
def test_cli_wrong_dataset(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.zeros((1016, 11, 2)))
    status, _, err = run(capsys, "mpii", tmp_path / "p.npy", "--annotations", FLIC_VALID)
    assert status == 2 and "FLIC" in err and "valid.h5" in err


# ------------------------------------------------------------------ hostile prediction files (issue 17)
def npy_header_only(path: Path, shape, dtype="<f8") -> None:
    """A .npy whose header declares `shape` but which holds no data (a few hundred bytes)."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})


def hostile_prediction_files(tmp: Path) -> dict:
    """{file name: what the error must say} for prediction files that are malformed in every way found."""
    cases = {}
    np.savez(tmp / "objects.npz", preds=np.array([{"a": 1}, None], dtype=object))
    cases["objects.npz"] = "'preds' holds object values; expected numbers"
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases["objects.npy"] = "'preds' holds object values; expected numbers"
    for name in ("empty.npy", "empty.npz", "empty.mat", "empty.h5"):
        (tmp / name).write_bytes(b"")
        cases[name] = "the file is empty (0 bytes)"
    with h5py.File(tmp / "group.h5", "w") as f:
        f.create_group("preds")
    cases["group.h5"] = "'preds' is an HDF5 group, not an array"
    with h5py.File(tmp / "huge.h5", "w") as f:  # 1-2 KB on disk, 4.66 TiB if read
        f.create_dataset("preds", shape=(20_000_000_000, 16, 2), dtype="f8")
    cases["huge.h5"] = "declares shape (20000000000, 16, 2): 20,000,000,000 predictions for 4 annotated people"
    with h5py.File(tmp / "strings.h5", "w") as f:
        f["preds"] = np.array([[[b"a", b"b"]] * 16] * 4)
    cases["strings.h5"] = "'preds' holds |S1 values"
    (tmp / "text.npy").write_text("1 2 3\n4 5 6\n")
    cases["text.npy"] = "not a numpy file (no .npy header)"
    (tmp / "text.npz").write_text("1 2 3\n")
    cases["text.npz"] = "not a numpy .npz file (not a zip archive)"
    npy_header_only(tmp / "declared.npy", (10**9, 16, 2))
    cases["declared.npy"] = "declares shape (1000000000, 16, 2): 1,000,000,000 predictions for 4"
    npy_header_only(tmp / "truncated.npy", (4, 16, 2))
    cases["truncated.npy"] = "damaged or truncated"
    np.savez(tmp / "cut.npz", preds=np.zeros((4, 16, 2)))
    (tmp / "cut.npz").write_bytes((tmp / "cut.npz").read_bytes()[:300])
    cases["cut.npz"] = "cannot read as a numpy file: it is damaged or truncated"
    scipy.io.savemat(tmp / "cell.mat", {"preds": np.array([[np.zeros(3)]], dtype=object)})
    cases["cell.mat"] = "'preds' holds MATLAB cell values; expected numbers"
    (tmp / "text.mat").write_text("hello, this is no MATLAB file at all" * 5)
    cases["text.mat"] = "not a readable MATLAB .mat file"
    for name, make in (("v73group.mat", lambda f: f.create_group("preds")),
                       ("v73huge.mat", lambda f: f.create_dataset("preds", shape=(20_000_000_000, 16, 2), dtype="f8"))):
        with h5py.File(tmp / name, "w", userblock_size=512) as f:  # MATLAB v7.3: HDF5 behind a MAT header
            make(f)
        with open(tmp / name, "r+b") as f:
            f.write(b"MATLAB 7.3 MAT-file, HDF5 schema 1.00 .".ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    cases["v73group.mat"] = "'preds' is an HDF5 group, not an array"
    cases["v73huge.mat"] = "declares shape (2, 16, 20000000000): 20,000,000,000 predictions for 4 annotated"
    return cases


def test_every_malformed_prediction_file_is_a_user_error_with_an_accurate_message(files, capsys):
    _, tmp = files
    cases = hostile_prediction_files(tmp)
    assert (tmp / "huge.h5").stat().st_size < 10_000
    for name, message in cases.items():
        status, _, err = run(capsys, "mpii", tmp / name, "--annotations", tmp / "split.h5")
        assert status == 2 and "Traceback" not in err and f"{tmp / name}: " in err and message in err, (name, err)


def test_declared_sizes_are_refused_before_reading_even_without_annotations(tmp_path):
    with h5py.File(tmp_path / "huge.h5", "w") as f:
        f.create_dataset("preds", shape=(20_000_000_000, 16, 2), dtype="f8")
    with pytest.raises(UserError, match=r"declares shape \(20000000000, 16, 2\), 640,000,000,000 values: far more"):
        read_predictions(tmp_path / "huge.h5")
    npy_header_only(tmp_path / "wide.npy", (4, 10**8, 2))
    with pytest.raises(UserError, match="predictions have 100000000 joints per person; expected 16"):
        read_predictions(tmp_path / "wide.npy", n_joints=16)
    np.save(tmp_path / "ok.npy", np.ones((3, 16, 2)))  # the checks do not stand in the way of a good file
    assert read_predictions(tmp_path / "ok.npy", n_people=3, n_joints=16).shape == (3, 16, 2)
    np.savez(tmp_path / "ok.npz", other=np.ones((3, 16, 2)))
    assert read_predictions(tmp_path / "ok.npz", n_people=3).sum() == 96
