"""Everything in a mannequin image that is not a person: backgrounds, clutter, occluding objects, lighting.

Backgrounds are windows of a bank of textures generated once per process from a fixed seed with bit-exact
8-bit OpenCV operations, so they are the same on every machine; each sample picks a window, recolours it
and adds clutter. Occluders are placed over the joints that MPII marks as not visible and that the
person's own parts do not already cover, without covering any visible joint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import floor

import cv2
import numpy as np

from hgstudy.mannequin.render import (
    _ONE,
    OCCLUDER,
    OUTSIDE_IMAGE,
    OWN_PARTS,
    SHIFT,
    SKIN_TONES,
    _fx,
    _pt,
    darker,
    lighter,
    random_colour,
)

BANK_SEED = 20160322  # the bank is part of the renderer: fixed, whatever the dataset seed


@dataclass(frozen=True)
class Bank:
    textures: tuple  # uint8 (2R, 2R, 3) each
    lights: tuple  # uint8 (2R, 2R, 3), multiplied in with scale 1/215 (about x0.7 to x1.19)
    noise: tuple  # (added, subtracted) uint8 (2R, 2R, 3) pairs: zero-mean noise of std 3, 6 and 9 grey levels


def _field(rng, size: int, cells: int, blur: int = 0) -> np.ndarray:
    """Smooth uint8 noise: a cells x cells random grid, bilinearly enlarged (bit-exact), optionally blurred."""
    low = rng.integers(0, 256, (cells, cells), dtype=np.uint8)
    out = cv2.resize(low, (size, size), interpolation=cv2.INTER_LINEAR_EXACT)
    if blur:
        out = cv2.GaussianBlur(out, (blur, blur), 0)
    return out


def _colourise(t: np.ndarray, c0, c1) -> np.ndarray:
    t = t.astype(np.int32)[..., None]
    return ((np.asarray(c0, np.int32) * (255 - t) + np.asarray(c1, np.int32) * t) // 255).astype(np.uint8)


def _texture(kind: int, rng, size: int) -> np.ndarray:
    c0, c1 = random_colour(rng.random(3)), random_colour(rng.random(3))
    if kind == 0:  # blotches: walls, ground, sky
        t = (_field(rng, size, 4, 31).astype(np.int32) + _field(rng, size, 24, 9)) // 2
        return _colourise(t, c0, c1)
    if kind == 1:  # planks / floorboards: bands of similar shades with a fine grain and dark seams
        width = int(rng.integers(size // 24, size // 8))
        n = size // width + 1
        bands = np.repeat(96 + rng.integers(0, 64, n, dtype=np.int32), width)[:size]
        grain = cv2.resize(rng.integers(0, 256, (size // 2, 6), dtype=np.uint8), (size, size),
                           interpolation=cv2.INTER_LINEAR_EXACT).astype(np.int32)
        t = bands[:, None] + (grain - 128) // 5
        t[::width] = 20
        t = np.clip(t, 0, 255)
        return _colourise(t.T if rng.random() < 0.5 else t, c0, c1)
    if kind == 2:  # bricks / tiles
        h = int(rng.integers(size // 24, size // 8))
        w = int(rng.integers(h, 3 * h))
        y, x = np.mgrid[0:size, 0:size]
        row = y // h
        col = (x + (row % 2) * (w // 2)) // w
        t = ((row * 7919 + col * 104729) % 97) * 2 + 30
        t[(y % h < 2) | ((x + (row % 2) * (w // 2)) % w < 2)] = 255
        return _colourise(cv2.GaussianBlur(t.astype(np.uint8), (3, 3), 0), c0, c1)
    if kind == 3:  # foliage / crowd-like blobs
        img = _colourise(_field(rng, size, 8, 15), darker(c0, 0.5), c0)
        for _ in range(size // 2):
            c = random_colour(rng.random(3)) if rng.random() < 0.3 else lighter(c1, 0.6 + 0.6 * rng.random(), 0)
            centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            axes = (int(rng.integers(2, size // 14)), int(rng.integers(2, size // 14)))
            cv2.ellipse(img, centre, axes, int(rng.integers(0, 180)), 0, 360, c, -1, cv2.LINE_8)
        return cv2.GaussianBlur(img, (3, 3), 0)
    if kind == 4:  # wallpaper: stripes or checks
        y, x = np.mgrid[0:size, 0:size]
        p = int(rng.integers(6, size // 8))
        a = int(rng.integers(-2, 3))
        t = (((x + a * y) // p) % 2 * 255) if rng.random() < 0.5 else ((x // p + y // p) % 2 * 255)
        t = (t * 3 + _field(rng, size, 16, 5)) // 4
        return _colourise(t, c0, c1)
    grit = _field(rng, size, size // 2, 3).astype(np.int32)  # kind 5: gravel / carpet
    return _colourise((grit + _field(rng, size, 6, 21)) // 2, c0, c1)


@lru_cache(maxsize=4)
def texture_bank(res: int) -> Bank:
    rng = np.random.default_rng(BANK_SEED)
    size = 2 * res
    textures = tuple(_texture(k % 6, rng, size) for k in range(30))
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    lights = []
    for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2)):  # ramps, as rationals: no libm
        t = (dx * x + dy * y) / (abs(dx) + abs(dy))
        lights.append(150 + 105 * (t - t.min()) / (t.max() - t.min()))
    for cx, cy in ((0.3, 0.3), (0.7, 0.4), (0.5, 0.6)):  # spots
        r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        lights.append(255 - 105 * np.minimum(r / 0.7, 1))
    tints = ((1.0, 1.0, 1.0), (1.0, 0.96, 0.88), (0.9, 0.95, 1.0))
    lights = tuple(np.rint(np.stack([f * t for t in tints[k % 3]], axis=-1)).astype(np.uint8)
                   for k, f in enumerate(lights))
    # Roughly Gaussian noise (sum of four uniforms, std ~37), split into the parts added and subtracted so
    # that it is applied with saturating integer arithmetic (exact on every machine).
    base = rng.integers(0, 64, (4, size, size, 3), dtype=np.uint8).sum(axis=0, dtype=np.int32) - 126
    noise = tuple((np.clip(base * s // 37, 0, 255).astype(np.uint8), np.clip(-base * s // 37, 0, 255).astype(np.uint8))
                  for s in (3, 6, 9))
    return Bank(textures, lights, noise)


def _gains(u) -> np.ndarray:
    """A 3-channel lookup table (256,1,3) multiplying each channel by its gain (exact, unlike float maths)."""
    return np.clip(np.rint(np.arange(256.0)[:, None] * np.asarray(u)), 0, 255).astype(np.uint8)[:, None, :]


def background(rng, res: int, bank: Bank, floor_line=None) -> np.ndarray:
    """A recoloured texture window, with a second texture below `floor_line` ((point, direction) in crop px)."""
    u = rng.random(10)
    n = len(bank.textures)
    ox, oy = int(u[1] * res), int(u[2] * res)
    gains = 0.55 + 0.7 * u[3:6]
    image = cv2.LUT(bank.textures[int(u[0] * n)][oy:oy + res, ox:ox + res], _gains(gains))
    if floor_line is not None and u[7] < 0.5:
        (p, d), far = floor_line, 4.0 * res
        normal = np.array([-d[1], d[0]])
        quad = _fx([p - d * far, p + d * far, p + d * far + normal * far, p - d * far + normal * far])
        mask = np.zeros((res, res), np.uint8)
        cv2.fillConvexPoly(mask, quad, 255, cv2.LINE_8, SHIFT)
        floor = bank.textures[int(u[8] * n)][oy:oy + res, ox:ox + res]
        cv2.copyTo(cv2.LUT(floor, _gains(gains * (0.7 + 0.4 * u[9]))), mask, image)
    return image


def capsule(a, b, wa: float, wb: float) -> tuple[np.ndarray, tuple, tuple]:
    """Tapered limb from a to b with full widths wa, wb: (polygon, circle at a, circle at b) in cv2 form."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = b - a
    n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6)
    poly = _fx([a + n * wa / 2, b + n * wb / 2, b - n * wb / 2, a - n * wa / 2])
    return poly, (_pt(a), int(wa / 2 * _ONE)), (_pt(b), int(wb / 2 * _ONE))


def _draw_capsule(image, a, b, wa, wb, colour, line=cv2.LINE_AA):
    poly, ca, cb = capsule(a, b, wa, wb)
    cv2.fillConvexPoly(image, poly, colour, line, SHIFT)
    cv2.circle(image, ca[0], ca[1], colour, -1, line, SHIFT)
    cv2.circle(image, cb[0], cb[1], colour, -1, line, SHIFT)


def clutter(image, rng, res: int, head: float) -> None:
    """Shapes and limb-like strokes (skin or cloth coloured, some bent like arms) anywhere in the crop."""
    count = int(rng.integers(2, 10))
    u = rng.random((count, 12))
    for v in u:
        colour = SKIN_TONES[int(v[1] * len(SKIN_TONES))] if v[1] < 0.35 else random_colour(v[2:5])
        centre = v[5:7] * res
        size = (0.04 + 0.3 * v[7] ** 2) * res
        kind = int(v[0] * 5)
        if kind <= 1:  # limb-like stroke, sometimes bent, sometimes with a hand
            width = head * (0.25 + 0.35 * v[8])
            a = centre
            ang = v[9] * 2 * np.pi
            b = a + head * (0.8 + 1.2 * v[10]) * np.array([np.cos(ang), np.sin(ang)])
            _draw_capsule(image, a, b, width, width * 0.8, colour)
            if kind == 1:
                ang += (v[11] - 0.5) * 2.5
                c = b + head * (0.7 + v[10]) * np.array([np.cos(ang), np.sin(ang)])
                _draw_capsule(image, b, c, width * 0.8, width * 0.65, colour)
                cv2.circle(image, _pt(c), int(width * 0.55 * _ONE), lighter(colour, 1.0, 10), -1, cv2.LINE_AA, SHIFT)
        elif kind == 2:  # box
            ang = v[9] * np.pi
            d, n = np.array([np.cos(ang), np.sin(ang)]), np.array([-np.sin(ang), np.cos(ang)])
            h = size * (0.3 + v[10])
            cv2.fillConvexPoly(image, _fx([centre + d * size + n * h, centre - d * size + n * h,
                                           centre - d * size - n * h, centre + d * size - n * h]),
                               colour, cv2.LINE_AA, SHIFT)
            cv2.fillConvexPoly(image, _fx([centre + d * size + n * h, centre - d * size + n * h,
                                           centre - d * size + n * h * 0.6, centre + d * size + n * h * 0.6]),
                               lighter(colour), cv2.LINE_AA, SHIFT)
        elif kind == 3:  # round things
            axes = (int(size * _ONE), int(size * (0.4 + 0.6 * v[10]) * _ONE))
            cv2.ellipse(image, _pt(centre), axes, float(v[9] * 180), 0, 360, colour, -1, cv2.LINE_AA, SHIFT)
        else:  # poles, cables, edges
            ang = v[9] * np.pi
            d = np.array([np.cos(ang), np.sin(ang)]) * res
            cv2.line(image, _pt(centre - d), _pt(centre + d), colour, max(1, int(1 + v[10] * head * 0.5)),
                     cv2.LINE_AA, SHIFT)


def _inside(points, centre, d, hx: float, hy: float, margin: float) -> bool:
    """Is any point inside the rectangle (centre, unit axis d, half sizes hx, hy) grown by margin?"""
    if len(points) == 0:
        return False
    rel = np.asarray(points) - centre
    x, y = rel @ d, rel @ np.array([-d[1], d[0]])
    return bool(np.any((np.abs(x) <= hx + margin) & (np.abs(y) <= hy + margin)))


def _covered(owner, p, j: int, radius: float) -> bool:
    """True when no pixel at or around joint j (within `radius`) shows one of j's own parts."""
    res = owner.shape[0]
    for dx, dy in ((0, 0), (radius, 0), (-radius, 0), (0, radius), (0, -radius)):
        x, y = floor(p[0] + dx + 0.5), floor(p[1] + dy + 0.5)
        if 0 <= x < res and 0 <= y < res and owner[y, x] in OWN_PARTS[j]:
            return False
    return True


def cover_hidden(image, owner, pts, hidden_joints, visible_pts, head: float, rng, horizontal) -> int:
    """Draw occluders over hidden joints not yet covered; returns how many were drawn.

    horizontal: unit vector of the scene's horizontal in the crop (boxes stand upright in the scene).
    An occluder never reaches within a small margin of a visible joint, unless a visible joint sits so close
    to the hidden one that nothing fits between them; the hidden joint wins then.
    """
    res = owner.shape[0]
    drawn = 0
    up = np.array([-horizontal[1], horizontal[0]])
    for j in hidden_joints:
        p = pts[j]
        probe = max(1.0, 0.1 * head)
        if _covered(owner, p, j, probe):
            continue
        gap = np.min(np.hypot(*(np.asarray(visible_pts) - p).T)) if len(visible_pts) else np.inf
        r = max(probe + 1.5, min(float(gap - 2.0) * 0.95, head * (0.5 + 0.6 * rng.random())))
        probe = min(probe, r / 2)
        u = rng.random(8)
        colour = SKIN_TONES[int(u[1] * len(SKIN_TONES))] if u[1] < 0.25 else random_colour(u[2:5])
        placed = False
        for attempt in range(3):
            shrink = 1.0 - 0.3 * attempt
            ang = (u[5] - 0.5) * 0.3 if u[0] < 0.6 else u[5] * np.pi  # boxes mostly upright
            d = horizontal * np.cos(ang) + up * np.sin(ang)
            hx, hy = r * shrink * (1 + 2.5 * u[6]), r * shrink * (1 + 2.5 * u[7])
            if u[0] < 0.2:  # pole or beam across the crop
                hx = res
            offset = (rng.random(2) - 0.5) * 2 * (min(hx, hy) - probe - 1)
            centre = p + offset[0] * d + offset[1] * np.array([-d[1], d[0]])
            if not _inside(visible_pts, centre, d, hx, hy, 2.0):
                n = np.array([-d[1], d[0]])
                quad = _fx([centre + d * hx + n * hy, centre - d * hx + n * hy,
                            centre - d * hx - n * hy, centre + d * hx - n * hy])
                cv2.fillConvexPoly(image, quad, colour, cv2.LINE_AA, SHIFT)
                cv2.fillConvexPoly(owner, quad, OCCLUDER, cv2.LINE_8, SHIFT)
                edge = _fx([centre + d * hx - n * hy, centre - d * hx - n * hy,
                            centre - d * hx - n * hy * 0.7, centre + d * hx - n * hy * 0.7])
                cv2.fillConvexPoly(image, edge, lighter(colour), cv2.LINE_AA, SHIFT)
                placed = True
                break
        if not placed or not _covered(owner, p, j, probe):  # a ball right on the joint always fits
            cv2.circle(image, _pt(p), int(r * _ONE), colour, -1, cv2.LINE_AA, SHIFT)
            cv2.circle(image, _pt(p - up * r * 0.3), int(r * 0.5 * _ONE), lighter(colour), -1, cv2.LINE_AA, SHIFT)
            cv2.circle(owner, _pt(p), int(r * _ONE), OCCLUDER, -1, cv2.LINE_8, SHIFT)
        drawn += 1
    return drawn


def black_outside(image, owner, corners) -> None:
    """Black outside the original image (corners: its 4 corners in crop pixels, in order), as MPII crops are.

    The outside of the convex image quad is the union of the outer half-planes of its edges: each edge that
    has a crop corner beyond it gets one large black polygon.
    """
    res = image.shape[0]
    quad = np.asarray(corners, np.float64)
    e0, e1 = quad[1] - quad[0], quad[2] - quad[1]
    if e0[0] * e1[1] - e0[1] * e1[0] < 0:
        quad = quad[::-1]  # counter-clockwise in image coordinates (y down): inside is left of every edge
    grid = np.array([[0, 0], [res - 1, 0], [res - 1, res - 1], [0, res - 1]], np.float64)
    far = 4.0 * res
    for k in range(4):
        p, q = quad[k], quad[(k + 1) % 4]
        e = q - p
        rel = grid - p
        if np.all(e[0] * rel[:, 1] - e[1] * rel[:, 0] >= 0):
            continue  # every crop corner is on the inner side of this edge
        e = e / max(np.hypot(*e), 1e-9)
        out = np.array([e[1], -e[0]]) * far
        poly = _fx([p - e * far, q + e * far, q + e * far + out, p - e * far + out])
        cv2.fillConvexPoly(image, poly, (0, 0, 0), cv2.LINE_8, SHIFT)
        if owner is not None:
            cv2.fillConvexPoly(owner, poly, OUTSIDE_IMAGE, cv2.LINE_8, SHIFT)


def finish(image, owner, rng, bank: Bank, res: int, blur_scale: float, corners) -> np.ndarray:
    """Lighting gradient and sensor noise, black outside the original image (as MPII crops), then blur."""
    u = rng.random(8)
    ox, oy = int(u[1] * res), int(u[2] * res)
    light = bank.lights[int(u[0] * len(bank.lights))][oy:oy + res, ox:ox + res]
    image = cv2.multiply(image, light, scale=1 / 215)
    if u[3] < 0.6:
        added, subtracted = bank.noise[int(u[4] * len(bank.noise))]
        nx, ny = int(u[5] * res), int(u[6] * res)
        cv2.add(image, added[ny:ny + res, nx:nx + res], dst=image)
        cv2.subtract(image, subtracted[ny:ny + res, nx:nx + res], dst=image)
    black_outside(image, owner, corners)
    if u[7] < 0.6:
        image = cv2.GaussianBlur(image, (0, 0), (0.4 + 0.8 * u[7] / 0.6) * blur_scale)
    return image
