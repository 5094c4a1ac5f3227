"""Readers of the MATLAB ground-truth files of MPII, and `load_annotations`, which reads any supported file.

- the Tompson-format ground truth `.mat` that bearpaw/pytorch-pose (`evaluation/data/detections_our_format.mat`),
  anibali's pytorch-stacked-hourglass and HRNet (`gt_valid.mat`) evaluate against: `pos_gt_src` (16,2,N),
  `headboxes_src` (2,2,N) = [corner][x/y][person], `jnt_missing` (16,N) uint8 with 1 = not annotated,
  `dataset_joints` (1,16) cell of joint names (thorax `thor` there, `thrx` elsewhere; MPII's long names too),
  and `pos_pred_src` (Tompson's predictions, ignored);
- the official release `mpii_human_pose_v1_u12_1.mat` (`RELEASE.annolist(i).annorect(j)` with head box
  `x1,y1,x2,y2` and `annopoints.point` entries `id,x,y,is_visible`) together with a split file whose
  `index`/`person` (0-based) pick the people;
- and the pose-hg-train split files (`hgstudy.scoring.annotations.read_split_h5`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_JOINTS
from hgstudy.scoring.annotations import (
    SC_BIAS,
    TOMPSON_JOINT_ALIASES,
    TOMPSON_JOINT_NAMES,
    Annotations,
    check_regular_file,
    make_annotations,
    read_split_h5,
)

# Every accepted spelling of a joint name (lower case, words joined by "_") -> its index in MPII order.
_JOINT_INDEX = {**{n: i for i, n in enumerate(TOMPSON_JOINT_NAMES)}, **{n: i for i, n in enumerate(MPII_JOINTS)},
                **{alias: TOMPSON_JOINT_NAMES.index(name) for alias, name in TOMPSON_JOINT_ALIASES.items()}}


def _loadmat(path: Path, **kwargs):
    import scipy.io

    check_regular_file(path, "annotation file", "pass the path of the .mat ground-truth file")
    try:
        return scipy.io.loadmat(path, **kwargs)
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise UserError(f"{path}: MATLAB v7.3 annotation files are not supported; save it with -v7") from exc
    except (ValueError, OSError, TypeError) as exc:
        raise UserError(f"{path}: cannot read as a MATLAB .mat file ({exc})") from exc


def _cell_str(value) -> str:
    arr = np.asarray(value).ravel()
    return str(arr[0]).strip().lower() if arr.size else ""


def _joint_index(name: str) -> int | None:
    """MPII index of a joint name in any spelling the public files use (`thor`, `thrx`, `r ankle`, `right_ankle`)."""
    key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    key = re.sub(r"^right_", "r_", re.sub(r"^left_", "l_", key))
    return _JOINT_INDEX.get(key)


def read_tompson_mat(path: str | Path) -> Annotations:
    """Read the Tompson-format MPII validation ground truth (`detections_our_format.mat` layout).

    Head size = 0.6 x |corner 2 - corner 1| of `headboxes_src`; `jnt_missing == 1` marks unannotated joints;
    joints are reordered to MPII order using `dataset_joints` when present. The file has no visibility flags
    and no image ids, so `visible` is None and every person counts as their own image.
    """
    path = Path(path)
    mat = _loadmat(path)
    for field in ("pos_gt_src", "headboxes_src", "jnt_missing"):
        if field not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise UserError(f"{path}: missing field '{field}' of the Tompson ground-truth layout (found {found})")
    pos = np.asarray(mat["pos_gt_src"], dtype=np.float64)
    boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)
    missing = np.asarray(mat["jnt_missing"])
    if missing.dtype.kind not in "biuf" or not np.isin(missing, (0, 1)).all():
        raise UserError(f"{path}: 'jnt_missing' must hold 0 (annotated) or 1 (missing) only")
    if pos.ndim != 3 or pos.shape[:2] != (16, 2):
        raise UserError(f"{path}: 'pos_gt_src' has shape {pos.shape}; expected (16, 2, people)")
    n = pos.shape[2]
    if boxes.shape != (2, 2, n):
        raise UserError(f"{path}: 'headboxes_src' has shape {boxes.shape}; expected (2, 2, {n})")
    if missing.shape != (16, n):
        raise UserError(f"{path}: 'jnt_missing' has shape {missing.shape}; expected (16, {n})")
    order = np.arange(16)
    if "dataset_joints" in mat:
        names = [_cell_str(v) for v in np.asarray(mat["dataset_joints"], dtype=object).ravel()]
        index = [_joint_index(x) for x in names]
        unknown = [x for x, i in zip(names, index) if i is None]
        if len(names) != 16 or unknown or len(set(index)) != 16:
            problem = f"unknown {unknown}" if unknown else "not 16 different joints"
            raise UserError(f"{path}: 'dataset_joints' is {names} ({problem}); expected the 16 MPII joints, named "
                            f"as {TOMPSON_JOINT_NAMES} (thorax also `thor`) or as {MPII_JOINTS}")
        order = np.argsort(index)
    joints = pos.transpose(2, 0, 1)[:, order]
    annotated = (missing.T == 0)[:, order]
    bad = annotated & ~np.isfinite(joints).all(axis=2)
    if bad.any():
        person, joint = np.argwhere(bad)[0]
        raise UserError(f"{path}: {int(bad.sum())} annotated joints (jnt_missing 0) have non-finite coordinates in "
                        f"'pos_gt_src', the first is joint {MPII_JOINTS[joint]} of person {person} (0-based)")
    head = SC_BIAS * np.linalg.norm(boxes[1] - boxes[0], axis=0)
    return make_annotations(joints, annotated, head, dataset="mpii", source=str(path), layout="tompson mat")


def _field(struct, name):
    value = getattr(struct, name, None)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.size == 0:
        return None
    return value


def _scalar(value) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size != 1:
        raise ValueError(f"expected one number, got {arr.size}")
    return float(arr[0])


def _visibility(value) -> bool:
    """`is_visible` comes as 0/1, '0'/'1' or empty; empty (not recorded) counts as visible."""
    if value is None:
        return True
    arr = np.asarray(value).ravel()
    if arr.size == 0:
        return True
    item = arr[0]
    if isinstance(item, str | bytes):
        text = item.decode() if isinstance(item, bytes) else item
        return text.strip() not in ("0", "0.0")
    return bool(float(item))


def _split_arrays(split) -> tuple[np.ndarray, np.ndarray, Path]:
    if isinstance(split, tuple):
        index, person = split
        return np.asarray(index).astype(np.int64).ravel(), np.asarray(person).astype(np.int64).ravel(), Path("<split>")
    import h5py

    where = Path(split)
    check_regular_file(where, "split file", "pass the split .h5 file (index/person) that goes with the release .mat")
    try:
        with h5py.File(where, "r") as f:
            for field in ("index", "person"):
                if field not in f:
                    raise UserError(f"{where}: split file has no field '{field}' (needed with the release .mat)")
            index, person = np.asarray(f["index"][()]), np.asarray(f["person"][()])
    except OSError as exc:
        raise UserError(f"{where}: cannot read split file as HDF5 ({exc})") from exc
    return index.astype(np.int64).ravel(), person.astype(np.int64).ravel(), where


def read_mpii_release(path: str | Path, split) -> Annotations:
    """Read the official `mpii_human_pose_v1_u12_1.mat` for the people a split file selects.

    `split` is a split .h5 file with 0-based `index` (into RELEASE.annolist) and `person` (into its annorect),
    or a tuple (index, person) of arrays. Points absent from `annopoints.point` are unannotated; an empty
    `is_visible` counts as visible. People of the same annolist entry share an image.
    """
    path = Path(path)
    index, person, split_path = _split_arrays(split)
    if index.shape != person.shape:
        raise UserError(f"{split_path}: 'index' and 'person' have different lengths")
    mat = _loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=["RELEASE"])
    if "RELEASE" not in mat or not hasattr(mat["RELEASE"], "annolist"):
        raise UserError(f"{path}: no RELEASE.annolist (not the official MPII release annotation file)")
    annolist = np.atleast_1d(mat["RELEASE"].annolist)
    n = index.size
    joints = np.full((n, 16, 2), np.nan)
    visible = np.zeros((n, 16), dtype=bool)
    head = np.full(n, np.nan)
    for k in range(n):  # I/O: walk the MATLAB structs once
        i, p = int(index[k]), int(person[k])
        where = f"{path}: RELEASE.annolist({i + 1}).annorect({p + 1}) (split entry {k})"
        if not 0 <= i < annolist.size:
            raise UserError(f"{split_path}: index {i} of entry {k} is outside the {annolist.size} annolist entries")
        rects = _field(annolist[i], "annorect")
        rects = np.atleast_1d(rects) if rects is not None else np.empty(0, dtype=object)
        if not 0 <= p < rects.size:
            raise UserError(f"{where}: image has only {rects.size} annotated rectangles")
        rect = rects[p]
        try:
            box = [_scalar(_field(rect, c)) for c in ("x1", "y1", "x2", "y2")]
            head[k] = SC_BIAS * np.hypot(box[2] - box[0], box[3] - box[1])
            annopoints = _field(rect, "annopoints")
            points = np.atleast_1d(_field(annopoints, "point")) if annopoints is not None else []
            for point in points:
                jid = int(_scalar(point.id))
                if not 0 <= jid < 16:
                    raise ValueError(f"joint id {jid} outside 0..15")
                joints[k, jid] = (_scalar(point.x), _scalar(point.y))
                visible[k, jid] = _visibility(_field(point, "is_visible"))
        except (TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{where}: malformed head box or annopoints ({exc})") from exc
    annotated = np.isfinite(joints).all(axis=2)
    return make_annotations(
        joints, annotated, head, visible=visible, image_index=index, dataset="mpii",
        source=str(path), layout="mpii release mat",
    )


def load_annotations(path: str | Path, split: str | Path | None = None, dataset: str = "mpii") -> Annotations:
    """Read any supported ground-truth file, choosing the reader from its suffix and contents.

    `.h5`/`.hdf5`: pose-hg-train split file. `.mat`: Tompson-format ground truth (has `pos_gt_src`) or the
    official release (has `RELEASE`; then `split` must name the split .h5 file giving index/person).
    Raises UserError for a missing file, an unknown type or a missing field.
    """
    path = Path(path)
    check_regular_file(path, "annotation file", "pass the path of the .h5 or .mat ground-truth file")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return read_split_h5(path, dataset)
    if suffix == ".mat":
        import scipy.io

        try:
            names = {name for name, _, _ in scipy.io.whosmat(path)}
        except NotImplementedError as exc:
            raise UserError(f"{path}: MATLAB v7.3 annotation files are not supported; save it with -v7") from exc
        except (ValueError, OSError, TypeError) as exc:
            raise UserError(f"{path}: cannot read as a MATLAB .mat file ({exc})") from exc
        if "RELEASE" in names:
            if split is None:
                raise UserError(f"{path}: the official release needs a split file (index/person), e.g. valid.h5")
            return read_mpii_release(path, split)
        if "pos_gt_src" in names:
            return read_tompson_mat(path)
        raise UserError(
            f"{path}: neither the Tompson ground-truth layout (pos_gt_src, headboxes_src, jnt_missing) nor the "
            f"official release (RELEASE); found variables {sorted(names)}"
        )
    raise UserError(f"{path}: unknown annotation file type '{path.suffix}' (expected .h5 or .mat)")
