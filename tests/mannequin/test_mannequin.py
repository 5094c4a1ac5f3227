"""MPII Mannequins: packaged poses, rendered samples, occlusion, determinism, flips, baselines, CLI.

Expected values come from the real annotation files of ../shared/data/mpii (the JSON of all 25,204 people and
valid.h5), from the issue's numbers, or from hand formulas (mirroring a crop: x -> R - 1 - x).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import apply_affine, invert_affine
from hgstudy.core.joints import MPII_FLIP
from hgstudy.data.augment import NO_AUGMENTATION, Augmentation
from hgstudy.data.sample import annotate_sample
from hgstudy.mannequin import baselines, render
from hgstudy.mannequin.dataset import MannequinDataset
from hgstudy.mannequin.poses import POSES_FILE, load_poses

ROOT = Path(__file__).resolve().parents[2]
RES = 128


@pytest.fixture(scope="module")
def val() -> MannequinDataset:
    return MannequinDataset("val", input_res=RES)


@pytest.fixture(scope="module")
def train() -> MannequinDataset:
    return MannequinDataset("train", input_res=RES)


@pytest.fixture(scope="module")
def mpii_json(shared_data) -> list[dict]:
    return json.loads(gzip.decompress((shared_data / "mpii" / "mpii_annotations.json.gz").read_bytes()))


@pytest.fixture(scope="module")
def valid_h5(shared_data) -> dict:
    with h5py.File(shared_data / "mpii" / "valid.h5", "r") as f:
        return {k: f[k][()] for k in f}


def pckh(pred, gt, norm, threshold=0.5) -> float:
    """MPII PCKh in percent over annotated joints, pelvis and thorax excluded, `<=` comparison."""
    annotated = ~np.all(gt == 0, axis=-1)
    annotated[:, [6, 7]] = False
    dist = np.linalg.norm(pred - gt, axis=-1) / norm[:, None]
    return 100.0 * float(np.mean(dist[annotated] <= threshold))


def test_split_sizes(train, val):
    assert len(train) == 22246 and len(val) == 2958


def test_split_sizes_match_the_annotation_file(train, val, mpii_json):
    assert len(train) == sum(not e["isValidation"] for e in mpii_json)
    assert len(val) == sum(bool(e["isValidation"]) for e in mpii_json)


def test_packaged_poses_are_the_annotations(mpii_json, valid_h5):
    poses = load_poses()
    assert POSES_FILE.stat().st_size < 4_000_000
    entries = [e for e in mpii_json if not e["isValidation"]]
    people = poses.train
    joints = np.array([e["joint_self"] for e in entries])
    np.testing.assert_allclose(poses.joints[people], joints[..., :2], atol=1e-9)
    assert np.array_equal(poses.visible[people], joints[..., 2] > 0)
    np.testing.assert_array_equal(poses.objpos[people], [e["objpos"] for e in entries])
    np.testing.assert_allclose(poses.scale[people], [e["scale_provided"] for e in entries], atol=1e-9)
    names = [e["img_paths"].encode() for e in entries]
    assert [bytes(poses.image_names[i]) for i in poses.image[people]] == names
    # Validation people follow valid.h5's order; valid.h5 truncates neck/head-top decimals (at most 1 px).
    np.testing.assert_allclose(poses.joints[poses.val], valid_h5["part"], atol=1.0)
    assert np.array_equal(poses.visible[poses.val], valid_h5["visible"] > 0)
    np.testing.assert_array_equal(poses.val_norm, valid_h5["normalize"])
    np.testing.assert_array_equal(poses.val_center, valid_h5["center"])
    # Other people of an entry = the rest of its image (spot check against the JSON's own lists).
    for e, me in list(zip(entries, people, strict=True))[:2000:50]:
        others = poses.joints[(poses.image == poses.image[me]) & (np.arange(len(poses.image)) != me)]
        expect = np.array(e["joint_others"]).reshape(-1, 16, 3)[..., :2] if e["numOtherPeople"] else others[:0]
        rows = sorted(map(tuple, others.reshape(-1, 32).round(3)))
        assert rows == sorted(map(tuple, expect.reshape(-1, 32).round(3)))


def test_packaged_file_is_what_the_conversion_makes(shared_data, tmp_path):
    from hgstudy.mannequin.poses import build_poses

    counts = build_poses(shared_data / "mpii" / "mpii_annotations.json.gz", shared_data / "mpii" / "valid.h5",
                         tmp_path / "poses.npz")
    assert counts["people"] == 25204 + 3679 and counts["images"] == 17408
    with np.load(tmp_path / "poses.npz") as fresh, np.load(POSES_FILE) as packaged:
        assert sorted(fresh.files) == sorted(packaged.files)
        for key in fresh.files:
            np.testing.assert_array_equal(fresh[key], packaged[key], err_msg=key)


def test_train_head_size_rule_holds_on_validation(train, valid_h5, mpii_json):
    # valid.h5's scale is MPII's x 1.25: 25 x MPII scale = 20 x valid.h5 scale ~ the head size `normalize`.
    np.testing.assert_allclose(20 * valid_h5["scale"], valid_h5["normalize"], rtol=1e-3)
    entries = [e for e in mpii_json if not e["isValidation"]]
    for i in (0, 100, 22245):
        assert train[i]["norm"] == pytest.approx(25 * entries[i]["scale_provided"])


def test_sample_contract(train, val):
    reference = annotate_sample(np.zeros((16, 2)), np.ones(16, bool), np.ones(16), (10, 10), 1.0, 1.0, 0, RES,
                                NO_AUGMENTATION, MPII_FLIP)
    for ds in (train, val):
        s = ds[3]
        assert set(s) == set(reference) | {"image"}
        assert s["image"].dtype == np.float32 and s["image"].shape == (3, RES, RES)
        assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
        assert s["target"].shape == (16, RES // 4, RES // 4) and s["target"].dtype == np.float32
        assert s["joints"].dtype == np.float32 and s["joints_hm"].shape == (16, 2)
        assert s["annotated"].dtype == bool and s["visible"].dtype == np.float32
        assert isinstance(s["norm"], float) and s["norm"] > 0 and s["index"] == 3


def test_val_joints_map_back_to_the_annotation(val, mpii_json, valid_h5):
    by_release = {(int(e["annolist_index"]) - 1, int(e["people_index"]) - 1): e for e in mpii_json}
    for i in range(0, len(val), 97):
        s = val[i]
        back = apply_affine(invert_affine(s["matrix"]), s["joints_hm"])
        entry = by_release[(int(valid_h5["index"][i]), int(valid_h5["person"][i]))]
        truth = np.array(entry["joint_self"])[:, :2]
        annotated = ~np.all(truth == 0, axis=1)
        np.testing.assert_allclose(back[annotated], truth[annotated], atol=1e-3)
        np.testing.assert_allclose(back[annotated], valid_h5["part"][i][annotated], atol=1.0)
        np.testing.assert_allclose(s["center"], valid_h5["center"][i], rtol=1e-6)
        assert s["scale"] == pytest.approx(valid_h5["scale"][i])
        assert s["norm"] == pytest.approx(valid_h5["normalize"][i])


def _crop_joints(sample):
    """Annotated joints (annotation order) in the crop actually drawn (after any flip)."""
    return apply_affine(sample["matrix_input"], sample["joints"])


def test_hidden_joints_are_covered_and_visible_ones_mostly_shown(train, val):
    hidden = shown = visible = 0
    for ds, step in ((val, 37), (train, 211)):
        for i in range(0, len(ds), step):
            s, owner = ds.render(i)
            person = ds.people[i]
            pixels = np.floor(_crop_joints(s) + 0.5).astype(int)
            for j in range(16):
                x, y = pixels[j]
                # MPII's pelvis/thorax flags are derived from the hips/shoulders (render.DERIVED_FLAGS).
                if not s["annotated"][j] or j in (6, 7) or not (0 <= x < RES and 0 <= y < RES):
                    continue
                own = owner[y, x] in render.OWN_PARTS[j]
                if s["visible"][j]:
                    visible, shown = visible + 1, shown + own
                else:
                    hidden += 1
                    assert not own, f"{ds.split} {i}: hidden joint {j} shows its own part {owner[y, x]}"
                assert ds.poses.visible[person, j] == bool(s["visible"][j])
    assert hidden > 300 and shown / visible > 0.9


def test_other_people_are_at_their_annotated_places(val, mpii_json, valid_h5):
    by_release = {(int(e["annolist_index"]) - 1, int(e["people_index"]) - 1): e for e in mpii_json}
    seen = on_other = 0
    for i in range(0, len(val), 23):
        entry = by_release[(int(valid_h5["index"][i]), int(valid_h5["person"][i]))]
        if not entry["numOtherPeople"]:
            continue
        s, owner = val.render(i)
        others = np.array(entry["joint_others"]).reshape(-1, 16, 3)
        for person in others:  # torso joints of visible shoulders and hips
            for j in (2, 3, 12, 13):
                x, y = np.floor(apply_affine(s["matrix_input"], person[j, :2]) + 0.5).astype(int)
                if person[j, 2] > 0 and 0 <= x < RES and 0 <= y < RES and owner[y, x] not in (0, render.OUTSIDE_IMAGE):
                    seen += 1
                    on_other += owner[y, x] == render.OTHER_PERSON
    assert seen > 50 and on_other / seen > 0.6


def _digest(sample) -> str:
    h = hashlib.sha256()
    for key in ("image", "target", "target_weight", "joints_hm"):
        h.update(np.ascontiguousarray(sample[key]).tobytes())
    return h.hexdigest()


def test_deterministic_across_processes(train, val):
    code = ("from hgstudy.mannequin.dataset import MannequinDataset as M; import hashlib, numpy as np\n"
            "t = M('train', input_res=128); t.set_epoch(3); v = M('val', input_res=128)\n"
            "for s in (t[11], v[5]):\n"
            "    h = hashlib.sha256()\n"
            "    for k in ('image', 'target', 'target_weight', 'joints_hm'):\n"
            "        h.update(np.ascontiguousarray(s[k]).tobytes())\n"
            "    print(h.hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == [_digest(train.render(11, epoch=3)[0]), _digest(val[5])]


def test_epochs_rerender_train_but_not_val(train, val):
    assert _digest(train.render(7, epoch=0)[0]) == _digest(train.render(7, epoch=0)[0])
    assert not np.array_equal(train.render(7, epoch=0)[0]["image"], train.render(7, epoch=1)[0]["image"])
    assert _digest(val.render(7, epoch=0)[0]) == _digest(val.render(7, epoch=5)[0])


def test_set_epoch_reaches_dataloader_workers():
    ds = MannequinDataset("train", input_res=64)
    subset = torch.utils.data.Subset(ds, [0, 1])
    loader = torch.utils.data.DataLoader(subset, batch_size=2, num_workers=1, persistent_workers=True)
    for epoch in (0, 2):
        ds.set_epoch(epoch)
        batch = next(iter(loader))
        expected = np.stack([ds.render(i, epoch=epoch)[0]["image"] for i in (0, 1)])
        np.testing.assert_array_equal(batch["image"].numpy(), expected)


def test_flip_mirrors_image_and_swaps_labels(train):
    aug = Augmentation(scale=0.9, rotation=20.0, flip=False, color_gain=(1.0, 0.9, 1.1))
    for i in (5, 1234):
        plain, owner = train.render(i, aug=aug)
        flipped, owner_f = train.render(i, aug=Augmentation(0.9, 20.0, True, (1.0, 0.9, 1.1)))
        np.testing.assert_array_equal(flipped["image"], plain["image"][:, :, ::-1])
        np.testing.assert_array_equal(owner_f, owner[:, ::-1])
        # Role j of the flipped sample is joint MPII_FLIP[j], mirrored: x -> R/4 - 1 - x on the heatmap.
        mirrored = plain["joints_hm"][MPII_FLIP] * [-1, 1] + [RES // 4 - 1, 0]
        np.testing.assert_allclose(flipped["joints_hm"], mirrored, atol=1e-4)
        np.testing.assert_allclose(flipped["target"], plain["target"][MPII_FLIP][:, :, ::-1], atol=1e-5)
        np.testing.assert_array_equal(flipped["joints"], plain["joints"])
        # What is drawn at role j of the flipped image is what was drawn at joint MPII_FLIP[j] (its owner id
        # names the anatomical part, so a right-role joint of the flipped image shows a left part).
        role = np.floor((flipped["joints_hm"] + 0.5) * 4 - 0.5 + 0.5).astype(int)
        anat = np.floor((plain["joints_hm"] + 0.5) * 4 - 0.5 + 0.5).astype(int)
        for j in np.flatnonzero(flipped["target_weight"] > 0):
            (x, y), (u, v) = role[j], anat[MPII_FLIP[j]]
            if 0 <= x < RES and 0 <= y < RES:
                assert owner_f[y, x] == owner[v, u] and x == RES - 1 - u


def test_baselines(valid_h5):
    mean = baselines.mean_pose("val")
    assert mean.shape == (2958, 16, 2)
    score = pckh(mean, valid_h5["part"], valid_h5["normalize"])
    assert 5.0 < score < 40.0  # the bar: the mean pose at the centre stays below 40%
    # A training person's nearest neighbour among people including itself is itself: its own annotation.
    pool = np.arange(0, 3000, 10)
    pred = baselines.nearest_neighbour("train", input_res=32, train_indices=pool, indices=pool[:12])
    poses = load_poses()
    truth = poses.joints[poses.train[pool[:12]]]
    annotated = poses.annotated[poses.train[pool[:12]]]
    np.testing.assert_allclose(pred[annotated], truth[annotated], atol=1e-6)


def test_pose_file_errors(tmp_path):
    with pytest.raises(UserError, match="missing"):
        load_poses(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="unreadable"):
        load_poses(tmp_path / "bad.npz")
    with np.load(POSES_FILE) as npz:
        arrays = dict(npz)
    arrays["train"] = arrays["train"][:-1]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(UserError, match="corrupt"):
        load_poses(tmp_path / "short.npz")
    with pytest.raises(UserError):
        MannequinDataset("test")


def test_render_cli(tmp_path):
    from hgstudy.cli import main

    assert main(["render", "mannequin", "--split", "val", "--count", "3", "--res", "64", "--out", str(tmp_path)]) == 0
    sheet = cv2.imread(str(tmp_path / "val_contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 64 and sheet.shape[1] >= 3 * 64
    assert len(list(tmp_path.glob("val_0000*.png"))) == 3
    assert main(["render", "mannequin", "--count", "5000", "--out", str(tmp_path)]) == 2


def test_val_annotations_are_valid_h5s_people(shared_data):
    ann = load_poses().annotations("val")
    with h5py.File(shared_data / "mpii" / "valid.h5") as f:
        part, normalize, index = f["part"][:], f["normalize"][:], f["index"][:]
    assert np.array_equal(ann.annotated, (part != 0).any(axis=2))
    # valid.h5 truncates some coordinates to whole pixels; the JSON keeps the decimals.
    assert np.nanmax(np.abs(ann.joints - part)[ann.annotated]) <= 1.0
    assert np.array_equal(ann.ref_length, normalize)
    assert ann.n_images == len(np.unique(index))  # people of one image are resampled together
