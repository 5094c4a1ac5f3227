"""Readers of MPII and FLIC ground-truth files into one small dataclass, `Annotations`.

Three layouts are understood (see `load_annotations`):

- the pose-hg-train split files (`valid.h5`, FLIC `train.h5`/`valid.h5`): `part` (N,J,2) with (0, 0) meaning
  "not annotated", `normalize` (N) = the reference length (0.6 x head-box diagonal for MPII, torso for FLIC),
  `visible` (N,J), and `imgname`/`index` to tell which people share an image;
- the Tompson-format ground truth `.mat` that bearpaw/pytorch-pose and anibali/eval-mpii-pose ship for the
  MPII validation set: `pos_gt_src` (16,2,N), `headboxes_src` (2,2,N) = [corner][x/y][person],
  `jnt_missing` (16,N) with 1 = not annotated, `dataset_joints` (1,16) cell of joint names;
- the official release `mpii_human_pose_v1_u12_1.mat` (`RELEASE.annolist(i).annorect(j)` with head box
  `x1,y1,x2,y2` and `annopoints.point` entries `id,x,y,is_visible`) together with a split file whose
  `index`/`person` (0-based) pick the people.

All coordinates are original-image pixels; joints are in the order of `hgstudy.joints` (MPII_JOINTS or
FLIC_JOINTS). Missing joints have NaN coordinates and `annotated == False`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgstudy.errors import UserError
from hgstudy.joints import FLIC_JOINTS, MPII_JOINTS

SC_BIAS = 0.6  # MPII head size = 0.6 x diagonal of the annotated head box (evalMPII's util_get_head_size)

# Joint names used by the Tompson-format .mat (`dataset_joints`), in MPII order.
TOMPSON_JOINT_NAMES = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thrx",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)


@dataclass(frozen=True)
class Annotations:
    """Ground truth of N people, J joints each.

    joints: (N,J,2) float64 x, y in original image pixels, NaN where not annotated.
    annotated: (N,J) bool, True where the joint has a ground-truth position (the complement of `missing`).
    visible: (N,J) bool visibility flag (False for occluded and for unannotated joints), or None when the
        file carries no flags (the Tompson-format .mat).
    ref_length: (N,) float64 normalising length: head size (0.6 x head-box diagonal) for MPII, torso size
        (right shoulder to left hip, the file's `normalize`) for FLIC.
    image_index: (N,) int64 in 0..n_images-1; people with the same value share an image (for the bootstrap).
    dataset: "mpii" or "flic".  source: file it was read from.  layout: which reader produced it.
    """

    joints: np.ndarray
    annotated: np.ndarray
    visible: np.ndarray | None
    ref_length: np.ndarray
    image_index: np.ndarray
    dataset: str
    source: str = ""
    layout: str = ""

    def __post_init__(self) -> None:
        n, j = self.annotated.shape
        assert self.joints.shape == (n, j, 2), self.joints.shape
        assert self.ref_length.shape == (n,) and self.image_index.shape == (n,)
        assert self.visible is None or self.visible.shape == (n, j)

    def __len__(self) -> int:
        return int(self.annotated.shape[0])

    def take(self, rows) -> Annotations:
        """The annotations of the people `rows` (e.g. the first N of a split), image grouping kept."""
        rows = np.asarray(rows)
        _, image_index = np.unique(self.image_index[rows], return_inverse=True)
        return dataclasses.replace(
            self, joints=self.joints[rows], annotated=self.annotated[rows],
            visible=None if self.visible is None else self.visible[rows], ref_length=self.ref_length[rows],
            image_index=image_index.astype(np.int64))

    @property
    def missing(self) -> np.ndarray:
        """(N,J) bool, True where the joint is not annotated."""
        return ~self.annotated

    @property
    def joint_names(self) -> tuple[str, ...]:
        return MPII_JOINTS if self.dataset == "mpii" else FLIC_JOINTS

    @property
    def n_images(self) -> int:
        return int(self.image_index.max()) + 1 if len(self) else 0


def _dataset_for(n_joints: int, path: Path) -> str:
    if n_joints == len(MPII_JOINTS):
        return "mpii"
    if n_joints == len(FLIC_JOINTS):
        return "flic"
    raise UserError(f"{path}: {n_joints} joints per person; expected 16 (MPII) or 11 (FLIC)")


def _group_ids(values: np.ndarray) -> np.ndarray:
    """Map arbitrary labels (image names or indices) to 0..k-1, in order of first appearance."""
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # rank of each unique label by first appearance
    return order[inverse.ravel()].astype(np.int64)


def make_annotations(
    joints: np.ndarray,
    annotated: np.ndarray,
    ref_length: np.ndarray,
    *,
    visible: np.ndarray | None = None,
    image_index: np.ndarray | None = None,
    dataset: str | None = None,
    source: str = "",
    layout: str = "arrays",
) -> Annotations:
    """Build `Annotations` from arrays, checking shapes and reference lengths (raises UserError).

    Unannotated joints get NaN coordinates; `image_index` defaults to one image per person and may hold any
    labels (they are renumbered 0..k-1 in order of appearance).
    """
    where = Path(source) if source else Path("<arrays>")
    joints = np.array(joints, dtype=np.float64)
    annotated = np.asarray(annotated, dtype=bool)
    ref_length = np.asarray(ref_length, dtype=np.float64).reshape(-1)
    if joints.ndim != 3 or joints.shape[2] != 2:
        raise UserError(f"{where}: joint positions have shape {joints.shape}; expected (people, joints, 2)")
    n, j, _ = joints.shape
    if annotated.shape != (n, j):
        raise UserError(f"{where}: annotated/missing mask has shape {annotated.shape}; expected {(n, j)}")
    if ref_length.shape != (n,):
        raise UserError(f"{where}: {ref_length.size} reference lengths for {n} people")
    dataset = dataset or _dataset_for(j, where)
    annotated = annotated & np.isfinite(joints).all(axis=2)
    joints[~annotated] = np.nan
    bad = annotated.any(axis=1) & ~(np.isfinite(ref_length) & (ref_length > 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise UserError(
            f"{where}: {int(bad.sum())} annotated people have a missing or non-positive reference length "
            f"(head size / torso), the first is person {first} (0-based) with {ref_length[first]!r}"
        )
    if visible is not None:
        visible = np.asarray(visible)
        if visible.shape != (n, j):
            raise UserError(f"{where}: visibility flags have shape {visible.shape}; expected {(n, j)}")
        visible = (np.nan_to_num(visible.astype(np.float64)) > 0) & annotated
    image_index = np.arange(n, dtype=np.int64) if image_index is None else _group_ids(np.asarray(image_index))
    if image_index.shape != (n,):
        raise UserError(f"{where}: {image_index.size} image indices for {n} people")
    return Annotations(joints, annotated, visible, ref_length, image_index, dataset, str(source), layout)


SPLIT_H5_FIELDS = ("part", "normalize", "visible", "center", "scale", "imgname", "index")


def read_split_fields(path, required=("part", "normalize"), download_hint: str | None = None) -> dict:
    """The arrays of a pose-hg-train split file: every field of SPLIT_H5_FIELDS it holds, `required` ones checked.

    One reader for both uses: ground truth for the metrics (`read_split_h5`) and a dataset's crops and
    targets (`hgstudy.data.mpii.read_split_h5`). Every failure is a UserError naming the file and the fix.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        fix = f"run `{download_hint}` or pass" if download_hint else "pass"
        raise UserError(f"split file {path} not found: {fix} the annotation file's path")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in required if k not in f]
            if missing:
                names, found = ", ".join(map(repr, missing)), ", ".join(sorted(f.keys()))
                raise UserError(f"{path} is not a pose-hg-train split file: no field(s) {names} (found {found})")
            return {k: f[k][()] for k in SPLIT_H5_FIELDS if k in f}
    except OSError as exc:
        raise UserError(f"cannot read {path} as HDF5 (corrupt or truncated?): {exc}; download it again") from exc


def read_split_h5(path: str | Path) -> Annotations:
    """Read a pose-hg-train split file (MPII `valid.h5`, FLIC `valid.h5`, ...).

    A joint is annotated unless its `part` entry is exactly (0, 0); the reference length is `normalize`;
    people are grouped into images by `imgname` (else `index`, else one image each).
    """
    fields = read_split_fields(path)
    part = np.asarray(fields["part"], dtype=np.float64)
    if part.ndim != 3 or part.shape[2] != 2:
        raise UserError(f"{path}: field 'part' has shape {part.shape}; expected (people, joints, 2)")
    groups = next((np.asarray(fields[k]) for k in ("imgname", "index") if k in fields), None)
    annotated = ~(part == 0).all(axis=2)
    return make_annotations(
        part, annotated, np.asarray(fields["normalize"], dtype=np.float64), visible=fields.get("visible"),
        image_index=groups, source=str(path), layout="pose-hg-train h5"
    )


def _loadmat(path: Path, **kwargs):
    import scipy.io

    try:
        return scipy.io.loadmat(path, **kwargs)
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise UserError(f"{path}: MATLAB v7.3 annotation files are not supported; save it with -v7") from exc
    except (ValueError, OSError, TypeError) as exc:
        raise UserError(f"{path}: cannot read as a MATLAB .mat file ({exc})") from exc


def _cell_str(value) -> str:
    arr = np.asarray(value).ravel()
    return str(arr[0]).strip().lower() if arr.size else ""


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
        unknown = [x for x in names if x not in TOMPSON_JOINT_NAMES]
        if len(names) != 16 or unknown or len(set(names)) != 16:
            raise UserError(f"{path}: 'dataset_joints' is {names}; expected the 16 names {TOMPSON_JOINT_NAMES}")
        order = np.array([names.index(x) for x in TOMPSON_JOINT_NAMES])
    joints = pos.transpose(2, 0, 1)[:, order]
    annotated = (missing.T == 0)[:, order]
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


def load_annotations(path: str | Path, split: str | Path | None = None) -> Annotations:
    """Read any supported ground-truth file, choosing the reader from its suffix and contents.

    `.h5`/`.hdf5`: pose-hg-train split file. `.mat`: Tompson-format ground truth (has `pos_gt_src`) or the
    official release (has `RELEASE`; then `split` must name the split .h5 file giving index/person).
    Raises UserError for a missing file, an unknown type or a missing field.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: annotation file not found")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return read_split_h5(path)
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
