"""The mannequin body model: a person's joints (in crop pixels) -> filled, shaded parts drawn in depth order.

Sizes are in units of the person's head length L = |head top - upper neck| of an upright head, which on
MPII is exactly 200 * scale / 6 (MPII's scale is derived from the head box), so limb widths follow the
person's scale. Parts touching a joint that MPII marks as not visible are drawn behind the torso; the
others in front. Each part can also be drawn into an `owner` map (one uint8 id per pixel) that says which
part is on top; the scene uses it to check that hidden joints are really covered.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from math import atan2, degrees, floor

import cv2
import numpy as np

SHIFT = 4  # cv2 sub-pixel bits: coordinates are passed as int(x * 16)
_ONE = 1 << SHIFT

# Owner-map ids. 0 is background; parts of the annotated person are 1..16.
TORSO, HEAD, NECK, PELVIS = 1, 2, 3, 4
R_UPPER_ARM, R_FOREARM, L_UPPER_ARM, L_FOREARM = 5, 6, 7, 8
R_THIGH, R_SHIN, L_THIGH, L_SHIN = 9, 10, 11, 12
R_HAND, L_HAND, R_FOOT, L_FOOT = 13, 14, 15, 16
OTHER_PERSON, OCCLUDER, OUTSIDE_IMAGE = 20, 21, 22

# The parts that show a joint when they are on top at its pixel (MPII joint order).
OWN_PARTS = (
    {R_SHIN, R_FOOT}, {R_THIGH, R_SHIN}, {R_THIGH, TORSO, PELVIS}, {L_THIGH, TORSO, PELVIS},
    {L_THIGH, L_SHIN}, {L_SHIN, L_FOOT}, {TORSO, PELVIS, R_THIGH, L_THIGH}, {TORSO, NECK},
    {NECK, HEAD, TORSO}, {HEAD}, {R_FOREARM, R_HAND}, {R_UPPER_ARM, R_FOREARM}, {R_UPPER_ARM, TORSO},
    {L_UPPER_ARM, TORSO}, {L_UPPER_ARM, L_FOREARM}, {L_FOREARM, L_HAND},
)
# MPII's pelvis/thorax flags are derived, not observed: pelvis is "visible" exactly when both hips are,
# thorax exactly when both shoulders are (true for all 25,204 people), so they are never hidden on purpose.
DERIVED_FLAGS = (6, 7)

# Limbs: (part, joint a, joint b, width at a, width at b in head lengths, garment slot, is_arm).
# Garment slots: 0 upper-arm sleeve, 1 forearm sleeve, 2 thigh, 3 shin.
LIMBS = (
    (R_THIGH, 2, 1, 0.58, 0.44, 2, False), (R_SHIN, 1, 0, 0.42, 0.30, 3, False),
    (L_THIGH, 3, 4, 0.58, 0.44, 2, False), (L_SHIN, 4, 5, 0.42, 0.30, 3, False),
    (R_UPPER_ARM, 12, 11, 0.42, 0.34, 0, True), (R_FOREARM, 11, 10, 0.34, 0.26, 1, True),
    (L_UPPER_ARM, 13, 14, 0.42, 0.34, 0, True), (L_FOREARM, 14, 15, 0.34, 0.26, 1, True),
)
_LIMB_A = np.array([lb[1] for lb in LIMBS])
_LIMB_B = np.array([lb[2] for lb in LIMBS])
_LIMB_W = np.array([[lb[3], lb[4]] for lb in LIMBS])
_RIGHT, _LEFT = [0, 1, 2, 10, 11, 12], [5, 4, 3, 15, 14, 13]
# Hands and feet: (part, joint, parent joint, half length, half width in head lengths, is_foot).
EXTREMITIES = ((R_HAND, 10, 11, 0.30, 0.19, False), (L_HAND, 15, 14, 0.30, 0.19, False),
               (R_FOOT, 0, 1, 0.40, 0.17, True), (L_FOOT, 5, 4, 0.40, 0.17, True))

# Depth layers, drawn in increasing order.
BACK_LEG, BACK_ARM, BACK_HEAD, BODY, BODY_DETAIL, FRONT_HEAD, FRONT_LEG, FRONT_ARM = range(8)

SKIN_TONES = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
              (92, 56, 30), (255, 205, 148), (234, 192, 134), (170, 110, 70))
EYES = (35, 25, 20)
HAIR_COLOURS = ((20, 18, 16), (60, 40, 28), (110, 70, 40), (200, 170, 110), (150, 150, 150), (150, 60, 30))


def random_colour(u: np.ndarray) -> tuple[int, int, int]:
    """An RGB clothing colour from three uniforms: any hue, often muted, sometimes near black or white."""
    r, g, b = colorsys.hsv_to_rgb(float(u[0]), float(u[1]) ** 1.5, 0.12 + 0.85 * float(u[2]))
    return int(255 * r), int(255 * g), int(255 * b)


SHADE = 0.78  # brightness of the side of a part turned away from the light


def lighter(c, f: float = 1.25, add: int = 22) -> tuple[int, int, int]:
    return min(255, int(c[0] * f + add)), min(255, int(c[1] * f + add)), min(255, int(c[2] * f + add))


def darker(c, f: float = 0.72) -> tuple[int, int, int]:
    return int(c[0] * f), int(c[1] * f), int(c[2] * f)


@dataclass(frozen=True)
class Appearance:
    skin: tuple
    hair: tuple
    upper: tuple  # shirt
    lower: tuple  # trousers / shorts
    shoes: tuple
    stripes: tuple | None  # colour of the shirt's stripes, or None for a plain shirt
    n_stripes: int
    sleeves: int  # 0 none, 1 short, 2 long
    long_legs: bool  # trousers (True) or shorts
    width: float  # limb-width factor
    front_sign: float  # face direction in profile when visibility does not tell (+1: torso's right normal)
    garment: tuple = ()  # colour of each limb garment slot (upper arm, forearm, thigh, shin)
    shade: tuple = ()  # their shadow colours, then the shirt's
    pattern: tuple = ()  # per slot: colour of bands across the limb (striped sleeves), a side stripe, or None


def sample_appearance(rng: np.random.Generator) -> Appearance:
    u = rng.random(23)
    skin = SKIN_TONES[int(u[0] * len(SKIN_TONES))]
    skin = tuple(min(255, int(v * (0.9 + 0.2 * u[1]))) for v in skin)
    upper = random_colour(u[2:5])
    lower = random_colour(u[10:13])
    stripes = random_colour(u[5:8]) if u[8] < 0.3 else None
    sleeves, long_legs = int(u[17] * 3), bool(u[18] < 0.7)
    garment = (upper if sleeves >= 1 else skin, upper if sleeves == 2 else skin, lower, lower if long_legs else skin)
    side_stripe = random_colour((u[21], u[22], 1 - u[22])) if u[21] < 0.2 else None  # track-suit trousers
    pattern = (stripes if sleeves >= 1 else None, stripes if sleeves == 2 else None,
               side_stripe, side_stripe if long_legs else None)
    return Appearance(
        skin=skin, hair=HAIR_COLOURS[int(u[9] * len(HAIR_COLOURS))], upper=upper, lower=lower,
        shoes=darker(random_colour(u[13:16]), 0.6), stripes=stripes, n_stripes=3 + int(u[16] * 4),
        sleeves=sleeves, long_legs=long_legs, width=0.85 + 0.35 * float(u[19]),
        front_sign=1.0 if u[20] < 0.5 else -1.0, garment=garment, pattern=pattern,
        shade=tuple(darker(c, SHADE) for c in (*garment, upper)))


def complete_poses(joints, annotated, objpos, scale) -> np.ndarray:
    """Joints (P,16,2) with every unannotated joint filled in, for drawing only.

    A template pose (mean of fully annotated people, in units of 200 * scale around objpos) is fitted to each
    person's annotated joints by a similarity transform; missing joints take the fitted template's position,
    except a missing wrist/ankle below an annotated elbow/knee, which continues the limb straight.
    """
    joints = np.asarray(joints, dtype=np.float64)
    annotated = np.asarray(annotated, dtype=bool)
    unit = 200.0 * np.asarray(scale, dtype=np.float64)
    z = (joints[..., 0] + 1j * joints[..., 1])  # complex points make the similarity fit closed-form
    full = annotated.all(axis=1)
    template = ((z[full] - (objpos[full, 0] + 1j * objpos[full, 1])[:, None]) / unit[full, None]).mean(axis=0)
    w = annotated.astype(np.float64)
    n = w.sum(axis=1)
    t0 = (w * template).sum(axis=1) / np.maximum(n, 1)
    z0 = (w * z).sum(axis=1) / np.maximum(n, 1)
    tc, zc = template[None] - t0[:, None], z - z0[:, None]
    alpha = (w * np.conj(tc) * zc).sum(axis=1) / np.maximum((w * np.abs(tc) ** 2).sum(axis=1), 1e-9)
    few = (n < 2) | (np.abs(alpha) < 1e-6)  # too little to fit: upright template at the person's centre
    alpha[few] = unit[few]
    z0[few] = objpos[few, 0] + 1j * objpos[few, 1]
    t0[few] = 0
    fitted = alpha[:, None] * (template[None] - t0[:, None]) + z0[:, None]
    out = np.where(annotated, z, fitted)
    for child, mid, root in ((0, 1, 2), (5, 4, 3), (10, 11, 12), (15, 14, 13)):
        straight = ~annotated[:, child] & annotated[:, mid] & annotated[:, root]
        out[straight, child] = 2 * out[straight, mid] - out[straight, root]
    return np.stack([out.real, out.imag], axis=-1)


def _fx(points) -> np.ndarray:
    return np.rint(np.asarray(points) * _ONE).astype(np.int32)


def _pt(p) -> tuple[int, int]:
    return floor(p[0] * _ONE + 0.5), floor(p[1] * _ONE + 0.5)


# The torso and head are built from a handful of points, so they use Python complex numbers (x + iy):
# far cheaper than numpy for 2-vectors. i * v turns v by +90 degrees (image coordinates, y down).
def _c(z: complex) -> tuple[int, int]:
    return floor(z.real * _ONE + 0.5), floor(z.imag * _ONE + 0.5)


def _poly(zs) -> np.ndarray:
    return np.array([_c(z) for z in zs], np.int32)


def _hull(zs) -> np.ndarray:
    return cv2.convexHull(_poly(zs))[:, 0]


def _dot(u: complex, v: complex) -> float:
    return u.real * v.real + u.imag * v.imag


def _unit(v: complex, fallback: complex) -> complex:
    n = abs(v)
    return v / n if n > 1e-6 else fallback


def _ellipse(centre: complex, half_len, half_wid, direction: complex, colour, part, depth):
    axes = (max(1, int(half_len * _ONE)), max(1, int(half_wid * _ONE)))
    return depth, 2, (_c(centre), axes, degrees(atan2(direction.imag, direction.real))), colour, part


def person_shapes(pts: np.ndarray, hidden: np.ndarray, head: float, look: Appearance, light: np.ndarray,
                  detail: bool = True) -> list[tuple]:
    """Drawing list of one person: (depth, kind, geometry, colour, part); kind 0 polygon, 1 circle, 2 ellipse.

    pts: (16,2) joints in crop pixels (all filled in); hidden: (16,) True = drawn behind the torso;
    head: head length L in crop pixels; light: unit vector towards the light (the far side is shaded).
    """
    L = head
    shapes: list[tuple] = []
    add = shapes.append
    z = (pts[:, 0] + 1j * pts[:, 1]).tolist()
    hid = hidden.tolist()
    lz = complex(light[0], light[1])
    # Torso frame: axis from mid-hips to mid-shoulders, `side` its right-hand normal (image right when upright).
    top, bottom = (z[12] + z[13]) / 2, (z[2] + z[3]) / 2
    axis = _unit(top - bottom, -1j)
    side = axis * 1j
    lateral = _dot(z[13] - z[12], side)  # > 0: the person faces the camera
    facing = min(1.0, max(-1.0, lateral / (1.3 * L)))
    sign = 1.0 if lateral >= 0 else -1.0
    # In profile the near side is the visible one; a person whose right side is near faces `side`.
    near_right = sum(hid[j] for j in _LEFT) - sum(hid[j] for j in _RIGHT)
    front_sign = (1.0 if near_right > 0 else -1.0) if near_right else look.front_sign

    def widen(r, l, half_min, out):  # noqa: E741 - r/l are the right/left points of the torso
        extra = max(0.0, half_min - _dot(l - r, side) * sign / 2) + out
        return r - side * sign * extra, l + side * sign * extra

    rs, ls = widen(z[12], z[13], 0.42 * L * look.width, 0.12 * L)
    rh, lh = widen(z[2], z[3], 0.40 * L * look.width, 0.22 * L)
    down = -axis * 0.25 * L
    add((BODY, 0, _hull([rs, ls, lh + down, rh + down]), look.upper, TORSO))
    # Shadowed side of the torso (away from the light), stripes, then the trousers' top.
    mid_t, mid_b = (rs + ls) / 2, (rh + lh) / 2
    edge_t, edge_b = (rs, rh + down) if _dot(side, lz) * sign > 0 else (ls, lh + down)
    add((BODY, 0, _poly([0.3 * mid_t + 0.7 * edge_t, edge_t, edge_b, 0.3 * mid_b + 0.7 * edge_b]), look.shade[4], 0))
    if look.stripes is not None and detail:
        n = 2 * look.n_stripes
        f = [0.05 + 0.65 * k / n for k in range(n + 1)]
        for k in range(1, n, 2):
            add((BODY, 0, _poly([rs + (rh - rs) * f[k], ls + (lh - ls) * f[k], ls + (lh - ls) * f[k + 1],
                                 rs + (rh - rs) * f[k + 1]]), look.stripes, 0))
    wl, wr = ls + (lh - ls) * 0.72, rs + (rh - rs) * 0.72
    add((BODY, 0, _hull([wr, wl, lh + down * 1.6, rh + down * 1.6]), look.lower, PELVIS))
    if facing > 0.25 and detail:  # neckline: only the front of a shirt shows skin below the neck
        add((BODY_DETAIL, 0, _poly([top - side * 0.2 * L, top + side * 0.2 * L, top - axis * 0.35 * L]), look.skin, 0))
    _limb_shapes(pts, hid, L, look, light, add, detail)
    for part, j, parent, hl, hw, is_foot in EXTREMITIES:
        direction = _unit(z[j] - z[parent], -axis)
        if is_foot:  # toes point to the person's front: down the leg when frontal, sideways in profile
            direction = _unit(direction * abs(facing) + side * front_sign * (1 - abs(facing)), direction)
        colour = look.shoes if is_foot else look.skin
        depth = (BACK_LEG if is_foot else BACK_ARM) if hid[j] else (FRONT_LEG if is_foot else FRONT_ARM)
        add(_ellipse(z[j] + direction * hl * 0.7 * L, hl * L, hw * L * look.width, direction, colour, part, depth))
    _head_shapes(z, hid, L, look, facing, front_sign, axis, side, add, detail)
    shapes.sort(key=lambda s: s[0])
    return shapes


def _limb_shapes(pts, hid, L, look, light, add, detail):
    """Limbs, all eight at once in numpy: tapered quads with round caps, the side away from the light shaded."""
    a, b = pts[_LIMB_A], pts[_LIMB_B]
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.maximum(length, 1e-6)[:, None]
    half = _LIMB_W * (L * look.width / 2)
    na, nb = normal * half[:, :1], normal * half[:, 1:]
    quads = _fx(np.stack([a + na, b + nb, b - nb, a - na], axis=1))
    away = np.where((normal @ light) >= 0, -1.0, 1.0)[:, None]
    sa, sb = a + 0.1 * d, b - 0.1 * d
    shadow = _fx(np.stack([sa + away * na, sb + away * nb, sb + away * nb * 0.35, sa + away * na * 0.35], axis=1))
    # Bands across sleeves (a striped shirt's stripes continue on them), a stripe down trouser legs.
    ends = [a + f * d for f in (0.3, 0.5, 0.7, 0.9)]
    bands = _fx(np.stack([ends[0] + na, ends[1] + na, ends[1] - na, ends[0] - na,
                          ends[2] + na, ends[3] + na, ends[3] - na, ends[2] - na], axis=1).reshape(-1, 2, 4, 2))
    seam = _fx(np.stack([sa + na * 0.2, sb + nb * 0.2, sb - nb * 0.2, sa - na * 0.2], axis=1))
    caps_a, caps_b = _fx(a).tolist(), _fx(b).tolist()
    radius = (half * _ONE).astype(np.int64).tolist()
    long_enough = (length > 1e-3).tolist()
    for i, (part, ja, jb, _, _, slot, is_arm) in enumerate(LIMBS):
        back = hid[ja] or hid[jb]
        depth = (BACK_ARM if back else FRONT_ARM) if is_arm else (BACK_LEG if back else FRONT_LEG)
        colour = look.garment[slot]
        add((depth, 1, (caps_a[i], radius[i][0]), colour, part))
        add((depth, 1, (caps_b[i], radius[i][1]), colour, part))
        if long_enough[i]:
            add((depth, 0, quads[i], colour, part))
            if detail:
                add((depth, 0, shadow[i], look.shade[slot], 0))
                pattern = look.pattern[slot]
                if pattern is not None and is_arm:
                    add((depth, 0, bands[i, 0], pattern, 0))
                    add((depth, 0, bands[i, 1], pattern, 0))
                elif pattern is not None:
                    add((depth, 0, seam[i], pattern, 0))


def _head_shapes(z, hid, L, look, facing, front_sign, axis, side, add, detail):
    """Neck, and a head oriented along upper neck -> head top: hair all round, face on the person's front."""
    depth = BACK_HEAD if (hid[8] or hid[9]) else FRONT_HEAD
    neck_base = z[7]
    add((depth, 1, (_c(neck_base), int(0.22 * L * _ONE)), look.skin, NECK))
    add((depth, 1, (_c(z[8]), int(0.2 * L * _ONE)), look.skin, NECK))
    nd = z[8] - neck_base
    if abs(nd) > 1e-3:
        n = nd / abs(nd) * 1j * 0.2 * L
        add((depth, 0, _poly([neck_base + n, z[8] + n, z[8] - n, neck_base - n]), look.skin, NECK))
    length = abs(z[9] - z[8])
    up = _unit(z[9] - z[8], axis)
    across = up * 1j
    half_len = max(0.5 * length, 0.42 * L)  # a foreshortened head (seen from above) stays round, not flat
    half_wid = 0.37 * L
    centre = z[9] - up * half_len
    add(_ellipse(centre, half_len, half_wid, up, look.hair, HEAD, depth))
    # `front` is the person's front: toward the camera when facing > 0, sideways in profile.
    front = front_sign if _dot(across, side) >= 0 else -front_sign
    if facing > -0.35:
        width = half_wid * (0.45 + 0.45 * max(facing, 0.0))
        face_centre = centre - up * half_len * 0.14 + across * front * (1 - abs(facing)) * half_wid * 0.45
        add(_ellipse(face_centre, half_len * 0.8, width, up, look.skin, 0, depth))
        if detail and facing > 0.3:  # eyes
            r = max(1, int(0.05 * L * _ONE))
            for s in (-1, 1):
                eye = face_centre + across * s * width * 0.42 + up * half_len * 0.18
                add((depth, 1, (_c(eye), r), EYES, 0))
        if abs(facing) < 0.6:  # nose sticking out on the face side
            add((depth, 1, (_c(centre + across * front * half_wid * 0.92), int(0.11 * L * _ONE)), look.skin, 0))
    elif detail:  # seen from behind: ears on both sides
        for s in (-1, 1):
            add((depth, 1, (_c(centre + across * s * half_wid * 0.95), int(0.09 * L * _ONE)), look.skin, 0))


def draw_shapes(shapes, image: np.ndarray, owner: np.ndarray | None = None, owner_id: int | None = None,
                antialias: bool = True) -> None:
    """Draw a shape list onto an RGB uint8 image, and each part's id onto `owner` (or `owner_id` for all)."""
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    for _, kind, geom, colour, part in shapes:
        if kind == 0:
            cv2.fillConvexPoly(image, geom, colour, line, SHIFT)
        elif kind == 1:
            cv2.circle(image, geom[0], geom[1], colour, -1, line, SHIFT)
        else:
            cv2.ellipse(image, geom[0], geom[1], geom[2], 0, 360, colour, -1, line, SHIFT)
        if owner is None or not part:
            continue
        value = part if owner_id is None else owner_id
        if kind == 0:
            cv2.fillConvexPoly(owner, geom, value, cv2.LINE_8, SHIFT)
        elif kind == 1:
            cv2.circle(owner, geom[0], geom[1], value, -1, cv2.LINE_8, SHIFT)
        else:
            cv2.ellipse(owner, geom[0], geom[1], geom[2], 0, 360, value, -1, cv2.LINE_8, SHIFT)
