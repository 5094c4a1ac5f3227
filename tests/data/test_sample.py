"""Crop geometry, augmentation draws, Gaussian targets and sample assembly (core.geometry, data.augment/sample).

Expected values are computed by hand from the conventions in transforms.py: a crop of scale s covers
200 s original pixels, its centre maps to (res - 1) / 2, and heatmap u = (x + 0.5) / 4 - 0.5 of input x.
"""

from __future__ import annotations

import numpy as np
import pytest

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import (
    affine_matrix,
    apply_affine,
    compose_affine,
    invert_affine,
    origin_shift,
    rescale_affine,
)
from hgstudy.core.joints import MPII_FLIP
from hgstudy.data.augment import NO_AUGMENTATION, Augmentation, sample_augmentation
from hgstudy.data.sample import annotate_sample, draw_targets
from hgstudy.data.split import to_float_rgb


def test_crop_centre_and_edges_by_hand():
    m = affine_matrix((500.0, 300.0), 2.0, 256)  # 400 px box -> 256 px: 0.64 px per original px
    assert np.allclose(apply_affine(m, [500, 300]), [127.5, 127.5])
    # the box edge (200 px from the centre) lands on the crop's outer pixel border (-0.5 and 255.5)
    assert np.allclose(apply_affine(m, [[300, 100], [700, 500]]), [[-0.5, -0.5], [255.5, 255.5]])
    assert np.allclose(apply_affine(m, [510, 300]), [127.5 + 6.4, 127.5])


def test_rotation_is_counter_clockwise_and_flip_mirrors():
    right_of_centre = [600.0, 300.0]  # 100 px to the right of (500, 300); scale 1: 1.28 px per px at 256
    rotated = apply_affine(affine_matrix((500, 300), 1.0, 256, rotation=90), right_of_centre)
    assert np.allclose(rotated, [127.5, 127.5 - 128.0])  # content turned counter-clockwise: now above
    flipped = apply_affine(affine_matrix((500, 300), 1.0, 256, flip=True), right_of_centre)
    assert np.allclose(flipped, [127.5 - 128.0, 127.5])


def test_heatmap_alignment_by_hand():
    m = affine_matrix((500.0, 300.0), 2.0, 256)
    hm = rescale_affine(m, 0.25)
    for x in ([500, 300], [321.7, 455.2], [690, 120]):
        u = apply_affine(m, x)
        assert np.allclose(apply_affine(hm, x), (u + 0.5) / 4 - 0.5)
    assert np.allclose(apply_affine(hm, [500, 300]), [31.5, 31.5])


def test_round_trip_heatmap_to_original_pixels_is_exact():
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(200):
        aug = Augmentation(scale=rng.uniform(0.7, 1.4), rotation=rng.uniform(-60, 60), flip=bool(rng.uniform() < 0.5))
        center, scale = rng.uniform(0, 1500, 2), rng.uniform(0.5, 6)
        joints = center + rng.uniform(-150, 150, (16, 2)) * scale
        s = annotate_sample(joints, np.ones(16, bool), np.ones(16), center, scale, 1.0, 0, 256, aug, MPII_FLIP)
        order = np.asarray(MPII_FLIP) if aug.flip else np.arange(16)
        back = apply_affine(invert_affine(s["matrix"]), s["joints_hm"].astype(np.float64))
        worst = max(worst, np.abs(back - joints[order]).max())
    # joints_hm is stored as float32 (5e-4 px at these magnitudes); the matrices themselves are exact
    assert worst < 0.01


def test_compose_and_origin_shift():
    a, b = affine_matrix((10, 20), 1.5, 64, rotation=20), affine_matrix((-5, 7), 0.7, 128, flip=True)
    p = np.array([[3.0, 4.0], [100.0, -20.0]])
    assert np.allclose(apply_affine(compose_affine(a, b), p), apply_affine(a, apply_affine(b, p)))
    assert np.allclose(apply_affine(origin_shift(1.0), [[1, 1], [10, 5]]), [[0, 0], [9, 4]])


def test_targets_by_hand():
    joints = np.array([[10.0, 20.0], [30.5, 40.0], [70.0, 5.0], [-0.6, 5.0], [5.0, 5.0]])
    weights = np.array([1, 1, 1, 1, 0], np.float32)
    t, w = draw_targets(joints, weights, 64, sigma=1.0)
    assert t.shape == (5, 64, 64) and t.dtype == np.float32
    assert t[0, 20, 10] == pytest.approx(1.0)
    assert t[0, 20, 11] == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert t[0, 21, 11] == pytest.approx(np.exp(-1.0), rel=1e-6)
    assert t[0, 20, 14] == 0.0  # outside the 3-sigma window
    assert t[1, 40, 30] == pytest.approx(np.exp(-0.125), rel=1e-6)
    assert list(w) == [1, 1, 0, 0, 0]  # off the map (x >= 63.5, x < -0.5) or not annotated
    assert not t[2:].any()
    t2, _ = draw_targets(joints[:1], weights[:1], 64, sigma=2.0)
    assert t2[0, 20, 12] == pytest.approx(np.exp(-0.5), rel=1e-6)


def test_known_joint_lands_on_target_argmax():
    # centre (500, 300), scale 1 (200 px box): heatmap u = (x - 500) * 64 / 200 + 31.5
    joints = np.zeros((16, 2))
    joints[10] = [500 + 200 / 64 * 8.5, 300 - 200 / 64 * 3.5]  # r_wrist -> (40, 28) exactly
    annotated = np.zeros(16, bool)
    annotated[10] = True
    s = annotate_sample(joints, annotated, annotated, (500, 300), 1.0, 1.0, 0, 256, NO_AUGMENTATION, MPII_FLIP)
    assert np.allclose(s["joints_hm"][10], [40, 28], atol=1e-4)
    assert np.unravel_index(np.argmax(s["target"][10]), (64, 64)) == (28, 40)
    assert list(np.flatnonzero(s["target_weight"])) == [10]
    flipped = annotate_sample(joints, annotated, annotated, (500, 300), 1.0, 1.0, 0, 256,
                              Augmentation(flip=True), MPII_FLIP)
    # after a flip the right wrist appears on the left and becomes target 15 (l_wrist), mirrored: 63 - 40
    assert list(np.flatnonzero(flipped["target_weight"])) == [15]
    assert np.unravel_index(np.argmax(flipped["target"][15]), (64, 64)) == (28, 23)
    assert np.allclose(flipped["joints"], joints)  # ground truth stays as annotated


def test_paper_augmentation_ranges():
    rng = np.random.default_rng(0)
    draws = [sample_augmentation(rng, "paper") for _ in range(3000)]
    rot = np.array([d.rotation for d in draws])
    scale = np.array([d.scale for d in draws])
    gain = np.array([d.color_gain for d in draws])
    assert rot.min() >= -30 and rot.max() <= 30 and rot.min() < -29 and rot.max() > 29
    assert scale.min() >= 0.75 and scale.max() <= 1.25 and scale.min() < 0.76 and scale.max() > 1.24
    assert gain.min() >= 0.6 and gain.max() <= 1.4
    assert 0.45 < np.mean([d.flip for d in draws]) < 0.55


def test_official_augmentation_ranges():
    rng = np.random.default_rng(0)
    draws = [sample_augmentation(rng, "official") for _ in range(4000)]
    rot = np.array([d.rotation for d in draws])
    scale = np.array([d.scale for d in draws])
    assert np.abs(rot).max() <= 60 and 0.55 < np.mean(rot == 0) < 0.65
    assert scale.min() >= 2**-0.5 - 1e-12 and scale.max() <= 2**0.5 + 1e-12
    assert np.std(np.log2(scale)) == pytest.approx(0.25, rel=0.1)
    assert sample_augmentation(rng, "none") == NO_AUGMENTATION
    with pytest.raises(UserError):
        sample_augmentation(rng, "bogus")


def test_float_rgb_conversion_by_hand():
    crop = np.zeros((2, 2, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 10, 100, 250  # B, G, R
    out = to_float_rgb(crop, (1.2, 0.5, 1.0))  # gains of R, G, B
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    assert np.allclose(out[:, 0, 0], [1.0, 50 / 255, 10 / 255])  # R: 250 * 1.2 / 255 clipped to 1
