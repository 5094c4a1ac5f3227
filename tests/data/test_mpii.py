"""MPII loading against the real split files of ../shared/data, and the sample pipeline on synthetic images.

Expected values come from the files themselves and their README (counts, names, checksums, joint order),
from hand formulas (the crop box), or from pixels drawn into synthetic images (where a joint must appear).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_FLIP, MPII_JOINTS
from hgstudy.data.mpii import MPII, read_mpii_json
from hgstudy.data.split import read_split

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VALID_H5 = SHARED / "mpii" / "valid.h5"
JSON = SHARED / "mpii" / "mpii_annotations.json.gz"
needs_shared = pytest.mark.skipif(not VALID_H5.exists(), reason="shared MPII annotation files not available")


@pytest.fixture(scope="module")
def valid():
    return MPII(SHARED, "valid", annotations=VALID_H5)


@needs_shared
def test_valid_split_file_is_the_pinned_one():
    digest = hashlib.sha256(VALID_H5.read_bytes()).hexdigest()
    assert digest == "6c9e29d1472945abf370339d8a75e0da4117be52dcc3f589cb9f4a77cac2b760"  # shared/data/README.md


@needs_shared
def test_valid_counts_and_names(valid):
    assert len(valid) == 2958
    names = (SHARED / "mpii" / "valid_images.txt").read_text().split()
    assert list(valid.split.names) == names
    assert valid.split.joints.shape == (2958, 16, 2)
    assert valid.augment == "none"
    # joints without annotation are stored as (0, 0): 3088 of them in valid.h5
    assert int((~valid.split.annotated).sum()) == 3088
    assert np.all(valid.split.norm > 0)


@pytest.fixture(scope="module")
def json_valid():
    return read_mpii_json(JSON, "valid")


@needs_shared
def test_json_train_and_valid_counts(json_valid):
    train = read_mpii_json(JSON, "train")
    assert (len(train), len(json_valid)) == (22246, 2958)
    assert np.isnan(train.norm).all()  # the JSON has no head boxes
    assert not set(train.names) & set(json_valid.names)  # the standard split shares no image


@needs_shared
def test_split_files_hold_the_official_adjustments(valid, json_valid):
    """valid.h5 centre = objpos + 15 x scale (down), scale = 1.25 x scale_provided of the raw JSON annotations."""
    raw = json_valid  # read_mpii_json applies the adjustments
    assert list(raw.names) == list(valid.split.names)
    assert np.allclose(raw.center, valid.split.center, atol=0.01)
    assert np.allclose(raw.scale, valid.split.scale, rtol=1e-3)  # JSON scales are rounded to 3 decimals
    assert np.abs(raw.joints - valid.split.joints).max() <= 1.0  # the .h5 truncates joints to integers
    assert np.array_equal(raw.annotated, valid.split.annotated)


def test_joint_order_and_flip_pairs():
    # shared/data/README.md: 0 r ankle ... 15 l wrist; flip pairs from pose-hg-train's flipRef
    assert MPII_JOINTS[0] == "r_ankle" and MPII_JOINTS[9] == "head_top" and MPII_JOINTS[15] == "l_wrist"
    assert MPII_FLIP == [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]


@needs_shared
def test_joint_order_matches_anatomy(valid):
    part, ann = valid.split.joints, valid.split.annotated

    def above(i, j):
        both = ann[:, i] & ann[:, j]
        return np.mean(part[both, i, 1] < part[both, j, 1])

    assert above(9, 8) > 0.9  # head top above upper neck
    assert above(7, 6) > 0.9  # thorax above pelvis
    assert above(2, 1) > 0.85 and above(3, 4) > 0.85  # hips above knees
    assert above(1, 0) > 0.85 and above(4, 5) > 0.85  # knees above ankles


@needs_shared
def test_annotated_joints_inside_crop_at_zero_augmentation(valid):
    """Weight 1 exactly for the annotated joints inside the 200 x scale box (hand formula), 0 elsewhere."""
    c, s = valid.split.center[:, None, :], valid.split.scale[:, None, None]
    offset = valid.split.joints - c
    in_box = np.all((offset >= -100 * s) & (offset < 100 * s), axis=2) & valid.split.annotated
    weights = np.stack([valid.annotation(i)["target_weight"] for i in range(len(valid))])
    assert np.array_equal(weights > 0, in_box)
    # nearly all: 196 of 44,240 annotated joints (mostly ankles and head tops) lie outside the official crop
    assert in_box.sum() == valid.split.annotated.sum() - 196


def write_split(path: Path, names, centers, scales, joints):
    n = len(names)
    with h5py.File(path, "w") as f:
        f["center"], f["scale"] = np.asarray(centers, float), np.asarray(scales, float)
        f["part"] = np.asarray(joints, float)
        f["visible"], f["normalize"] = np.ones((n, joints.shape[1])), np.full(n, 50.0)
        f["imgname"] = np.array([x.encode() for x in names])


def blob_image(points, shape=(480, 640)) -> np.ndarray:
    """Black BGR image with a Gaussian blob (sigma 2 px) at each 0-based pixel position."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape, np.float64)
    for x, y in points:
        img += 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def blob_centre(gray: np.ndarray, near=None, radius: int = 12) -> np.ndarray:
    """Brightness-weighted centroid (x, y) in a 9x9 window around the brightest pixel (within `radius` px of
    `near`, when given: other people's blobs may be in the crop too)."""
    if near is not None:
        yy, xx = np.mgrid[: gray.shape[0], : gray.shape[1]]
        gray = np.where((xx - near[0]) ** 2 + (yy - near[1]) ** 2 <= radius**2, gray, 0)
    y, x = np.unravel_index(np.argmax(gray), gray.shape)
    y0, x0 = max(y - 4, 0), max(x - 4, 0)
    win = gray[y0 : y + 5, x0 : x + 5].astype(np.float64)
    win = np.clip(win - 0.2 * win.max(), 0, None)
    yy, xx = np.mgrid[: win.shape[0], : win.shape[1]]
    return np.array([(xx * win).sum() / win.sum() + x0, (yy * win).sum() / win.sum() + y0])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three people in two 640x480 PNG images; each has one annotated joint (r_wrist) drawn as a blob."""
    root = tmp_path_factory.mktemp("mpii")
    (root / "mpii" / "images").mkdir(parents=True)
    rng = np.random.default_rng(3)
    names, scales = ["a.png", "a.png", "b.png"], [1.1, 0.9, 1.3]
    centers = np.array([[300, 250], [420, 230], [330, 260]])
    joints = np.zeros((3, 16, 2))
    joints[:, 10] = centers + rng.uniform(-40, 40, (3, 2))  # annotation coordinates (first pixel centre = 1)
    for name in ("a.png", "b.png"):
        pts = [joints[i, 10] - 1 for i in range(3) if names[i] == name]  # 0-based pixel positions
        cv2.imwrite(str(root / "mpii" / "images" / name), blob_image(pts))
    write_split(root / "mpii" / "train.h5", names, centers, scales, joints)
    return root


def _check_joint_where_drawn(sample):
    k = int(np.flatnonzero(sample["target_weight"])[0])  # r_wrist, or l_wrist after a flip
    expected = (sample["joints_hm"][k] + 0.5) * 4 - 0.5  # input-crop pixels
    drawn = blob_centre(sample["image"].sum(axis=0), near=expected)
    drawn_hm = (drawn + 0.5) / 4 - 0.5
    assert np.abs(drawn_hm - sample["joints_hm"][k]).max() < 0.1, (drawn_hm, sample["joints_hm"][k])
    peak = np.unravel_index(np.argmax(sample["target"][k]), sample["target"][k].shape)
    assert peak == tuple(np.round(sample["joints_hm"][k][::-1]).astype(int))


def test_sample_contract_and_joint_where_drawn(synthetic):
    ds = MPII(synthetic, "train", seed=5)
    assert ds.augment == "paper"
    flips = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            assert s["image"].shape == (3, 256, 256) and s["image"].dtype == np.float32
            assert s["target"].shape == (16, 64, 64) and s["target_weight"].shape == (16,)
            assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
            assert s["index"] == i and s["matrix"].shape == (2, 3)
            _check_joint_where_drawn(s)
            flips.add(bool(s["target_weight"][15]))
    assert flips == {True, False}  # both flipped and unflipped samples were checked


def test_augmentation_is_reproducible(synthetic):
    a, b = MPII(synthetic, "train", seed=1), MPII(synthetic, "train", seed=1)
    assert np.array_equal(a[2]["image"], b[2]["image"])
    b.set_epoch(1)
    assert not np.array_equal(a[2]["image"], b[2]["image"])


def test_crop_store_gives_the_same_samples(synthetic, tmp_path):
    folder = MPII(synthetic, "train", augment="none")
    store_dir = folder.prepare(tmp_path / "store", progress=False)
    assert sorted(p.name for p in store_dir.iterdir()) == ["crops.npy", "matrices.npy", "people.json"]
    store = MPII(synthetic, "train", store=store_dir, seed=5)
    for i in range(len(store)):
        direct, cached = folder[i], MPII(synthetic, "train", store=store_dir, augment="none")[i]
        assert np.abs(direct["image"] - cached["image"]).mean() < 0.01  # resampled twice: close, not equal
        _check_joint_where_drawn(store[i])
    assert len(pickle.dumps(store)) < 100_000  # the memory map is not pickled into loader workers
    batch = next(iter(torch.utils.data.DataLoader(store, batch_size=3)))
    assert batch["image"].shape == (3, 3, 256, 256) and batch["target"].shape == (3, 16, 64, 64)


def test_store_refuses_other_annotations_and_cleans_up(synthetic, tmp_path):
    ds = MPII(synthetic, "train", augment="none")
    store_dir = ds.prepare(tmp_path / "store", progress=False)
    other = tmp_path / "other.h5"
    joints = np.zeros((3, 16, 2))
    write_split(other, ["a.png", "a.png", "b.png"], [[1, 1]] * 3, [1.0] * 3, joints)
    with pytest.raises(UserError, match="other annotations"):
        MPII(synthetic, "train", annotations=other, store=store_dir)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not an image")
    (tmp_path / "bad" / "b.png").write_bytes(b"not an image")
    broken = MPII(synthetic, "train", images=tmp_path / "bad")
    with pytest.raises(UserError, match="cannot be decoded"):
        broken.prepare(tmp_path / "broken", progress=False)
    assert not (tmp_path / "broken").exists() and not (tmp_path / "broken.partial").exists()
    with pytest.raises(UserError, match="missing"):
        MPII(synthetic, "train", images=tmp_path / "nowhere").prepare(tmp_path / "x", progress=False)
    with pytest.raises(UserError, match="not a complete crop store"):
        MPII(synthetic, "train", store=tmp_path / "nowhere")


def test_user_errors(synthetic, tmp_path):
    with pytest.raises(UserError, match="hgstudy download mpii"):
        MPII(tmp_path, "train")
    with pytest.raises(UserError, match="split"):
        MPII(synthetic, "test")
    with pytest.raises(UserError, match="multiple of 4"):
        MPII(synthetic, "train", res=250)
    with pytest.raises(UserError, match="augmentation"):
        MPII(synthetic, "train", augment="heavy")
    (tmp_path / "junk.h5").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="HDF5"):
        read_split(tmp_path / "junk.h5", 16)
    with pytest.raises(UserError, match="missing"):
        MPII(synthetic, "train", images=tmp_path)[0]
    if (SHARED / "flic" / "valid.h5").exists():
        with pytest.raises(UserError, match="16 joints"):
            MPII(SHARED, "valid", annotations=SHARED / "flic" / "valid.h5")


def test_bench_data_runs_and_matches_the_per_pixel_reference(tmp_path, capsys):
    """`hgstudy bench data`: the fast pipeline equals the naive per-pixel one (bilinear in 1/32 px steps)."""
    import json

    from hgstudy import cli

    out = tmp_path / "bench.json"
    args = ["bench", "data", "--seconds", "0.2", "--naive-samples", "2", "--people", "4", "--images", "1",
            "--res", "64", "--json", str(out)]
    assert cli.main(args) == 0
    result = json.loads(out.read_text())
    assert result["naive_max_abs_difference"]["image"] < 1.5 / 255
    assert result["naive_max_abs_difference"]["target"] < 1e-5
    assert {"decoded image -> sample", "naive per-pixel -> sample", "crop store -> sample"} <= set(result["cases"])
    assert "samples/s" in capsys.readouterr().out
