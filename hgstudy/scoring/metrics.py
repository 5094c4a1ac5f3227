"""Pose metrics: PCKh (two named protocols), PCK/PDJ, PCP, AUC, visibility split.

Everything is vectorised numpy over people and joints. Inputs are predictions `pred` (N,J,2) in original-image
pixels and an `hgstudy.scoring.annotations.Annotations`, or, for the lower-level functions, a normalised distance
array `dist` (N,J) as returned by `distances` (NaN where the joint is not annotated, +inf where the prediction
is NaN, as evalMPII does).

MPII protocols (`PROTOCOLS`):
- "official" = evalMPII.m of the MPII toolkit: correct when dist <= t; per-joint PCKh = 100 * mean over the
  annotated instances; table: Head = mean(upper neck, head top), Shoulder..Ankle = mean(left, right),
  UBody = the six arm joints' instances pooled, Total = the 14 joints' instances pooled (pelvis and thorax
  out), AUC = area under the Total curve for t = 0:0.01:0.5 with t rescaled to [0, 1] (linear interpolation
  between the 51 points, i.e. trapezoids), in percent.
- "tompson" = Tompson et al.'s eval script as used by bearpaw/pytorch-pose: dist < t (strict),
  Head = head top only, Mean = mean of the 14 per-joint values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hgstudy.core.joints import FLIC_JOINTS, MPII_JOINTS
from hgstudy.scoring.annotations import Annotations

THRESHOLDS = np.arange(51) / 100.0  # 0:0.01:0.5, the toolkit's range
_M = {name: i for i, name in enumerate(MPII_JOINTS)}
_F = {name: i for i, name in enumerate(FLIC_JOINTS)}
MPII_EVAL_JOINTS = tuple(i for i, n in enumerate(MPII_JOINTS) if n not in ("pelvis", "thorax"))  # the 14
# The paper's ablation measure (section 5.2): PCKh@0.5 over wrists, elbows, knees and ankles, instances pooled.
ABLATION_JOINTS = tuple(_M[f"{side}_{part}"] for part in ("wrist", "elbow", "knee", "ankle") for side in ("l", "r"))
MPII_ARM_JOINTS = tuple(_M[n] for n in ("r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist"))
_PAIRS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
FLIC_GROUPS = {
    "shoulder": (_F["l_shoulder"], _F["r_shoulder"]), "elbow": (_F["l_elbow"], _F["r_elbow"]),
    "wrist": (_F["l_wrist"], _F["r_wrist"]), "hip": (_F["l_hip"], _F["r_hip"]),
    "eye": (_F["l_eye"], _F["r_eye"]), "nose": (_F["nose"],),
}


@dataclass(frozen=True)
class Protocol:
    """How an MPII PCKh table is formed: comparison, which joints make Head, and the summary column."""

    name: str
    strict: bool  # True: dist < t; False: dist <= t
    head: tuple[int, ...]
    summary: str  # "total" (instances pooled, plus ubody and auc) or "mean" (mean of per-joint values)

    @property
    def groups(self) -> dict[str, tuple[int, ...]]:
        groups = {"head": self.head}
        groups.update({g: (_M["l_" + g], _M["r_" + g]) for g in _PAIRS})
        return groups

    @property
    def keys(self) -> tuple[str, ...]:
        """The table's columns, in order (also the JSON keys of `hgstudy score`)."""
        extra = ("ubody", "total", "auc") if self.summary == "total" else ("mean",)
        return (*self.groups, *extra)


PROTOCOLS = {
    "official": Protocol("official", strict=False, head=(_M["upper_neck"], _M["head_top"]), summary="total"),
    "tompson": Protocol("tompson", strict=True, head=(_M["head_top"],), summary="mean"),
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {sorted(PROTOCOLS)}") from None


# --------------------------------------------------------------------------------------------- distances
def normalized_distances(pred, gt, annotated, ref_length) -> np.ndarray:
    """(N,J) Euclidean prediction error divided by each person's reference length.

    NaN where the joint is not annotated (ignored by every metric); +inf where the prediction is not finite
    (always wrong), like evalMPII's `pred(isnan(pred)) = inf`.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    annotated = np.asarray(annotated, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.linalg.norm(pred - gt, axis=-1) / np.asarray(ref_length, dtype=np.float64)[:, None]
    d = np.where(np.isfinite(pred).all(axis=-1), d, np.inf)
    return np.where(annotated, d, np.nan)


def distances(ann: Annotations, pred, ref_length=None) -> np.ndarray:
    """`normalized_distances` of predictions (N,J,2) against annotations, in units of the annotations' reference
    length (head size or torso) or of `ref_length` (N,)."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != ann.joints.shape:
        raise ValueError(f"predictions have shape {pred.shape}, annotations {ann.joints.shape}")
    return normalized_distances(pred, ann.joints, ann.annotated, ann.ref_length if ref_length is None else ref_length)


# ------------------------------------------------------------------------------------------- PCK family
def pck_counts(dist, thresholds=THRESHOLDS, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(correct (T,J), annotated (J,)) instance counts at each threshold; NaN distances are not counted."""
    dist = np.asarray(dist, dtype=np.float64)
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    valid = ~np.isnan(dist)
    d = np.where(valid, dist, np.inf)[..., None]
    hit = d < t if strict else d <= t  # (N,J,T)
    return hit.sum(axis=0).T, valid.sum(axis=0)


def _percent(num, den):
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 100.0 * num / np.where(den > 0, den, 1.0), np.nan)


def pck(dist, threshold: float = 0.5, strict: bool = False) -> np.ndarray:
    """(J,) per-joint percentage of annotated instances within `threshold` (NaN for a joint never annotated)."""
    correct, total = pck_counts(dist, [threshold], strict)
    return _percent(correct[0], total)


def pck_curves(dist, thresholds=THRESHOLDS, strict: bool = False) -> np.ndarray:
    """(T,J) per-joint PCK at each threshold (the PDJ curves when `dist` is in torso units)."""
    correct, total = pck_counts(dist, thresholds, strict)
    return _percent(correct, total[None, :])


def pooled_pck(dist, thresholds=0.5, joints=None, strict: bool = False):
    """PCK with the instances of `joints` (default all) pooled: a float for one threshold, (T,) for several."""
    dist = np.asarray(dist, dtype=np.float64)
    sel = dist if joints is None else dist[:, list(joints)]
    correct, total = pck_counts(sel, thresholds, strict)
    out = _percent(correct.sum(axis=1), total.sum())
    return float(out[0]) if np.ndim(thresholds) == 0 else out


def ablation_pckh(dist) -> float:
    """The paper's ablation measure (section 5.2): PCKh@0.5 over wrists, elbows, knees and ankles, pooled."""
    return pooled_pck(dist, 0.5, ABLATION_JOINTS)


def auc(curve, thresholds=THRESHOLDS) -> float:
    """Area under a PCK curve (percent) with the threshold axis rescaled to [0, 1], by trapezoids.

    This equals the toolkit's quadgk over the linear interpolant (area_under_curve(scale01(range), pck)).
    """
    t = np.asarray(thresholds, dtype=np.float64)
    y = np.asarray(curve, dtype=np.float64)
    x = (t - t[0]) / (t[-1] - t[0])
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


# ------------------------------------------------------------------------------------------ MPII tables
def mpii_table(dist, protocol: str | Protocol = "official", threshold: float = 0.5, thresholds=THRESHOLDS) -> dict:
    """The PCKh table from (N,16) distances in head-size units: {key: percentage} in `Protocol.keys` order.

    official: head, shoulder, elbow, wrist, hip, knee, ankle, ubody, total, auc (AUC over `thresholds`);
    tompson: head, ..., ankle, mean. Values are unrounded percentages (NaN where nothing is annotated).
    """
    p = get_protocol(protocol)
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2 or dist.shape[1] != len(MPII_JOINTS):
        raise ValueError(f"MPII distances must have shape (N, 16), got {dist.shape}")
    per_joint = pck(dist, threshold, p.strict)
    table = {g: float(np.mean(per_joint[list(idx)])) for g, idx in p.groups.items()}
    if p.summary == "total":
        table["ubody"] = pooled_pck(dist, threshold, MPII_ARM_JOINTS, p.strict)
        table["total"] = pooled_pck(dist, threshold, MPII_EVAL_JOINTS, p.strict)
        table["auc"] = auc(pooled_pck(dist, np.asarray(thresholds), MPII_EVAL_JOINTS, p.strict), thresholds)
    else:
        table["mean"] = float(np.mean(per_joint[list(MPII_EVAL_JOINTS)]))
    return table


def mpii_curves(dist, protocol: str | Protocol = "official", thresholds=THRESHOLDS) -> pd.DataFrame:
    """PCKh curves of the table's columns (without auc), one row per threshold (index 'threshold')."""
    p = get_protocol(protocol)
    t = np.asarray(thresholds, dtype=np.float64)
    curves = pck_curves(dist, t, p.strict)
    cols = {g: curves[:, list(idx)].mean(axis=1) for g, idx in p.groups.items()}
    if p.summary == "total":
        cols["ubody"] = pooled_pck(dist, t, MPII_ARM_JOINTS, p.strict)
        cols["total"] = pooled_pck(dist, t, MPII_EVAL_JOINTS, p.strict)
    else:
        cols["mean"] = curves[:, list(MPII_EVAL_JOINTS)].mean(axis=1)
    return pd.DataFrame(cols, index=pd.Index(t, name="threshold"))


def _require(ann: Annotations, dataset: str) -> None:
    if ann.dataset != dataset:
        raise ValueError(f"{ann.source or 'annotations'} are {ann.dataset.upper()}, not {dataset.upper()}")


def score_mpii(ann: Annotations, pred, protocol: str | Protocol = "official", threshold: float = 0.5) -> dict:
    """The MPII PCKh table (see `mpii_table`) of predictions (N,16,2) in original pixels."""
    _require(ann, "mpii")
    return mpii_table(distances(ann, pred), protocol, threshold)


def mpii_by_visibility(ann: Annotations, pred, protocol: str | Protocol = "official", threshold: float = 0.5):
    """The PCKh table computed on all, visible-only and occluded-only annotated joints (paper, Fig. 11).

    Returns a DataFrame indexed by the table keys with columns all, visible, occluded (percentages) and
    n_all, n_visible, n_occluded (annotated instances behind each row).
    """
    _require(ann, "mpii")
    if ann.visible is None:
        raise ValueError(f"{ann.source or 'annotations'} carry no visibility flags")
    p = get_protocol(protocol)
    d = distances(ann, pred)
    masks = {"all": ann.annotated, "visible": ann.visible, "occluded": ann.annotated & ~ann.visible}
    rows = {}
    for col, mask in masks.items():
        rows[col] = mpii_table(np.where(mask, d, np.nan), p, threshold)
        counts = mask.sum(axis=0)
        n = {g: int(counts[list(idx)].sum()) for g, idx in p.groups.items()}
        n_eval = int(counts[list(MPII_EVAL_JOINTS)].sum())
        n.update(ubody=int(counts[list(MPII_ARM_JOINTS)].sum()), total=n_eval, auc=n_eval, mean=n_eval)
        rows["n_" + col] = {k: n[k] for k in p.keys}
    return pd.DataFrame(rows).loc[list(p.keys)]


# ------------------------------------------------------------------------------------------------- FLIC
MPII_TORSO_GROUPS = {g: (_M["l_" + g], _M["r_" + g]) for g in ("shoulder", "elbow", "wrist", "hip")}


def flic_table(dist, threshold: float = 0.2, groups=None) -> dict:
    """FLIC PCK@threshold (torso units, `<=`) for elbows and wrists, each the mean of left and right."""
    groups = FLIC_GROUPS if groups is None else groups
    per_joint = pck(dist, threshold, strict=False)
    return {g: float(np.mean(per_joint[list(groups[g])])) for g in ("elbow", "wrist")}


def pdj_curves(dist, thresholds=THRESHOLDS, groups=None) -> pd.DataFrame:
    """PDJ (percent of detected joints vs normalised threshold, `<=`), one column per joint group (mean of
    left and right; default `FLIC_GROUPS`), indexed by threshold."""
    groups = FLIC_GROUPS if groups is None else groups
    t = np.asarray(thresholds, dtype=np.float64)
    curves = pck_curves(dist, t, strict=False)
    return pd.DataFrame(
        {g: curves[:, list(idx)].mean(axis=1) for g, idx in groups.items()}, index=pd.Index(t, name="threshold")
    )


def torso_lengths(ann: Annotations) -> np.ndarray:
    """(N,) FLIC's reference length: right shoulder to left hip.

    FLIC files store it (`normalize`); for people in the MPII layout (the mannequins) it is measured from the
    ground truth, NaN where either joint is missing (such people are left out).
    """
    if ann.dataset == "flic":
        return ann.ref_length
    return np.linalg.norm(ann.joints[:, _M["r_shoulder"]] - ann.joints[:, _M["l_hip"]], axis=-1)


def score_flic(ann: Annotations, pred, threshold: float = 0.2, thresholds=THRESHOLDS) -> dict:
    """{"elbow", "wrist": PCK@threshold, "pdj": DataFrame of PDJ curves} in torso units.

    FLIC predictions (N,11,2) as the paper scores them; MPII-layout predictions (N,16,2) get the same
    measures (torso from `torso_lengths`, PDJ for shoulders, elbows, wrists and hips).
    """
    groups = FLIC_GROUPS if ann.dataset == "flic" else MPII_TORSO_GROUPS
    d = distances(ann, pred, torso_lengths(ann))
    return {**flic_table(d, threshold, groups), "pdj": pdj_curves(d, thresholds, groups)}


# -------------------------------------------------------------------------------------------------- PCP
def _limbs(joints, names):
    idx = {n: i for i, n in enumerate(joints)}
    return [(name, tuple(idx[j] for j in a), tuple(idx[j] for j in b)) for name, a, b in names]


_SIDED = [
    ("upper_arm", "shoulder", "elbow"), ("lower_arm", "elbow", "wrist"),
    ("upper_leg", "hip", "knee"), ("lower_leg", "knee", "ankle"),
]
MPII_LIMBS = _limbs(MPII_JOINTS, [
    *[(f"{s}_{limb}", (f"{s}_{a}",), (f"{s}_{b}",)) for limb, a, b in _SIDED for s in ("r", "l")],
    ("torso", ("thorax",), ("pelvis",)),
    ("head", ("upper_neck",), ("head_top",)),
])
FLIC_LIMBS = _limbs(FLIC_JOINTS, [
    *[(f"{s}_{limb}", (f"{s}_{a}",), (f"{s}_{b}",)) for limb, a, b in _SIDED[:2] for s in ("r", "l")],
    ("torso", ("l_shoulder", "r_shoulder"), ("l_hip", "r_hip")),  # shoulder midpoint to hip midpoint
])


def pcp(pred, gt, annotated, limbs, factor: float = 0.5, by_side: bool = False) -> pd.DataFrame:
    """Percentage of Correct Parts per limb: DataFrame with columns strict, loose (percent) and n.

    `limbs`: list of (name, joints of end A, joints of end B); an end made of several joints is their
    midpoint (FLIC torso). A limb counts when both ends are annotated and its true length L > 0. Strict:
    both predicted ends within factor*L of the true ends; loose: the mean of the two distances within
    factor*L (`<=`). Rows: limb types with left and right pooled (or each side with by_side), then "total".
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    annotated = np.asarray(annotated, dtype=bool)
    names, strict, loose, valid = [], [], [], []
    for name, a, b in limbs:
        ga, gb = gt[:, list(a)].mean(axis=1), gt[:, list(b)].mean(axis=1)
        pa, pb = pred[:, list(a)].mean(axis=1), pred[:, list(b)].mean(axis=1)
        length = np.linalg.norm(gb - ga, axis=1)
        ok = annotated[:, list(a)].all(axis=1) & annotated[:, list(b)].all(axis=1) & (length > 0)
        da, db = np.linalg.norm(pa - ga, axis=1), np.linalg.norm(pb - gb, axis=1)
        with np.errstate(invalid="ignore"):
            strict.append(ok & (da <= factor * length) & (db <= factor * length))
            loose.append(ok & ((da + db) / 2 <= factor * length))
        names.append(name if by_side else name.removeprefix("r_").removeprefix("l_"))
        valid.append(ok)
    frame = pd.DataFrame(
        {"strict": np.sum(strict, axis=1), "loose": np.sum(loose, axis=1), "n": np.sum(valid, axis=1)},
        index=pd.Index(names, name="limb"),
    )
    frame = frame.groupby(level=0, sort=False).sum()
    frame.loc["total"] = frame.sum()
    frame["strict"] = _percent(frame["strict"], frame["n"])
    frame["loose"] = _percent(frame["loose"], frame["n"])
    frame["n"] = frame["n"].astype(int)
    return frame


def score_pcp(ann: Annotations, pred, factor: float = 0.5, by_side: bool = False) -> pd.DataFrame:
    """`pcp` with the limbs of the annotation's dataset (MPII: arms, legs, torso, head; FLIC: arms, torso)."""
    limbs = MPII_LIMBS if ann.dataset == "mpii" else FLIC_LIMBS
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != ann.joints.shape:
        raise ValueError(f"predictions have shape {pred.shape}, annotations {ann.joints.shape}")
    return pcp(pred, ann.joints, ann.annotated, limbs, factor, by_side)
