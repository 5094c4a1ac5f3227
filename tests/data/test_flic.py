"""FLIC loading against the real split files of ../shared/data (pose-hg-train data/flic/annot)."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from hgstudy.core.errors import UserError
from hgstudy.core.joints import FLIC_JOINTS, flip_permutation
from hgstudy.data.flic import FLIC

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "flic" / "train.h5").exists(), reason="shared FLIC files missing")


@pytest.fixture(scope="module")
def splits():
    return {s: FLIC(SHARED, s) for s in ("train", "valid")}


@needs_shared
def test_split_files_are_the_pinned_ones():
    from hgstudy.data.download import DATASETS

    pinned = {f.name: f.sha256 for f in DATASETS["flic"]}
    # shared/data/README.md abbreviates the two SHA-256s (its valid.h5 suffix "a0a6b" repeats the one of
    # train_images.txt, so only the prefix is compared for valid.h5)
    for name, head, tail in (("train.h5", "b736543395c4", "e891fe"), ("valid.h5", "0c4d4c20bb5a", "")):
        digest = hashlib.sha256((SHARED / "flic" / name).read_bytes()).hexdigest()
        assert digest.startswith(head) and digest.endswith(tail)
        assert pinned[f"flic/{name}"] == digest


@needs_shared
def test_counts_names_and_defaults(splits):
    assert (len(splits["train"]), len(splits["valid"])) == (3987, 1016)
    for s, ds in splits.items():
        assert list(ds.split.names) == (SHARED / "flic" / f"{s}_images.txt").read_text().split()
        assert ds.split.joints.shape[1:] == (11, 2) and ds.split.annotated.all()
    assert splits["train"].augment == "paper" and splits["valid"].augment == "none"


@needs_shared
def test_joint_order_from_torso_size(splits):
    """`normalize` is the torso size, right shoulder to left hip: only parts 3 and 6 reproduce it."""
    for ds in splits.values():
        part, norm = ds.split.joints, ds.split.norm
        matches = {(a, b): np.mean(np.abs(np.linalg.norm(part[:, a] - part[:, b], axis=1) - norm) < 1e-3)
                   for a, b in itertools.combinations(range(11), 2)}
        best = max(matches, key=matches.get)
        assert best == (FLIC_JOINTS.index("r_shoulder"), FLIC_JOINTS.index("l_hip"))
        assert matches[best] > 0.9
        # the face is above the shoulders
        assert np.mean(part[:, FLIC_JOINTS.index("nose"), 1] < part[:, FLIC_JOINTS.index("l_shoulder"), 1]) > 0.95


def test_flip_pairs_by_hand():
    # l_shoulder l_elbow l_wrist r_shoulder r_elbow r_wrist l_hip r_hip l_eye r_eye nose
    assert flip_permutation(FLIC_JOINTS) == [3, 4, 5, 0, 1, 2, 7, 6, 9, 8, 10]


@needs_shared
def test_annotated_parts_inside_crop_at_zero_augmentation(splits):
    """Weight 1 exactly for the parts inside the 200 x scale box around the stored centre (hand formula)."""
    for ds in splits.values():
        offset = ds.split.joints - ds.split.center[:, None, :]
        half = 100 * ds.split.scale[:, None, None]
        in_box = np.all((offset >= -half) & (offset < half), axis=2)
        weights = np.stack([ds.annotation(i)["target_weight"] for i in range(len(ds))])
        assert np.array_equal(weights > 0, in_box)
        assert in_box.mean() > 0.99


def test_sample_from_default_image_folder(tmp_path):
    """Paths default to root/flic/{split}.h5 and root/flic/FLIC/images (FLIC.zip's layout)."""
    import h5py

    (tmp_path / "flic" / "FLIC" / "images").mkdir(parents=True)
    img = np.zeros((480, 720, 3), np.uint8)
    img[200:260, 330:390] = (0, 0, 255)  # a red square (BGR), 60 x 60 px, centre at pixel 359.5, 229.5
    cv2.imwrite(str(tmp_path / "flic" / "FLIC" / "images" / "f.png"), img)
    with h5py.File(tmp_path / "flic" / "train.h5", "w") as f:
        f["center"], f["scale"] = np.array([[360.5, 230.5]]), np.array([2.2])
        f["part"], f["visible"] = np.full((1, 11, 2), 300.0), np.ones((1, 11))
        f["normalize"], f["imgname"] = np.array([100.0]), np.array([b"f.png"])
    s = FLIC(tmp_path, "train", augment="none")[0]
    assert s["image"].shape == (3, 256, 256) and s["target"].shape == (11, 64, 64)
    red = s["image"][0] > 0.5
    # 60 px at 256 / 440 px per px = 34.9 px, centred on the crop centre 127.5 (annotation origin 1)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - 127.5) < 0.3 and abs(ys.mean() - 127.5) < 0.3
    assert abs(np.sqrt(red.sum()) - 60 * 256 / 440) < 1.0
    assert not (s["image"][2] > 0.5).any()  # red stays in the R channel


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="hgstudy download flic"):
        FLIC(tmp_path, "train")
    with pytest.raises(UserError, match="split"):
        FLIC(tmp_path, "test")
    if (SHARED / "mpii" / "valid.h5").exists():
        with pytest.raises(UserError, match="11 joints"):
            FLIC(SHARED, "valid", annotations=SHARED / "mpii" / "valid.h5")


def test_prepare_stores_for_both_splits(tmp_path):
    """`hgstudy download flic --prepare` step: crop stores at root/flic/crops-{train,valid}, with 2 processes."""
    import h5py

    from hgstudy.data.download import prepare_stores

    images = tmp_path / "flic" / "FLIC" / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("valid", 3)):
        names = [f"{split}{i}.png" for i in range(n)]
        for name in names:
            cv2.imwrite(str(images / name), rng.integers(0, 255, (480, 720, 3), dtype=np.uint8))
        with h5py.File(tmp_path / "flic" / f"{split}.h5", "w") as f:
            f["center"], f["scale"] = rng.uniform(200, 400, (n, 2)), np.full(n, 2.2)
            f["part"], f["visible"] = rng.uniform(100, 400, (n, 11, 2)), np.ones((n, 11))
            f["normalize"], f["imgname"] = np.full(n, 100.0), np.array([x.encode() for x in names])
    stores = prepare_stores("flic", tmp_path, workers=2)
    assert stores == [tmp_path / "flic" / "crops-train", tmp_path / "flic" / "crops-valid"]
    for split, store in zip(("train", "valid"), stores, strict=True):
        direct = FLIC(tmp_path, split, augment="none")
        cached = FLIC(tmp_path, split, augment="none", store=store)
        for i in range(len(direct)):
            # random pixels resampled twice differ a lot pixel by pixel, but not on average
            assert abs(direct[i]["image"].mean() - cached[i]["image"].mean()) < 0.01
            assert np.array_equal(direct[i]["target"], cached[i]["target"])
