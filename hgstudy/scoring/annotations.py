"""Ground truth of MPII and FLIC people in one small dataclass, `Annotations`, and the pose-hg-train split files.

The split files (`valid.h5`, FLIC `train.h5`/`valid.h5`): `part` (N,J,2) with (0, 0) meaning "not annotated",
`normalize` (N) = the reference length (0.6 x head-box diagonal for MPII, torso for FLIC), `visible` (N,J),
and `imgname`/`index` to tell which people share an image. The MATLAB files are read by
`hgstudy.scoring.ground_truth`, which also has `load_annotations` for any supported file.

All coordinates are original-image pixels; joints are in the order of `hgstudy.core.joints` (MPII_JOINTS or
FLIC_JOINTS). Missing joints have NaN coordinates and `annotated == False`.
"""

from __future__ import annotations

import dataclasses
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.files import atomic_path
from hgstudy.core.joints import JOINT_LAYOUTS

SC_BIAS = 0.6  # MPII head size = 0.6 x diagonal of the annotated head box (evalMPII's util_get_head_size)

# Joint names used by the Tompson-format .mat (`dataset_joints`), in MPII order.
TOMPSON_JOINT_NAMES = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thrx",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)
# Other spellings the real files use: pytorch-pose's and HRNet's detections_our_format.mat / gt_valid.mat spell
# thorax `thor`; MPII's own names ("r ankle", "upper neck", "head top", and `hgstudy.core.joints`) are accepted
# too by `hgstudy.scoring.ground_truth`.
TOMPSON_JOINT_ALIASES = {"thor": "thrx", "thorax": "thrx", "pelvis": "pelv", "upper_neck": "neck", "head_top": "head",
                         "top_head": "head"}


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
        return JOINT_LAYOUTS[self.dataset]

    @property
    def n_images(self) -> int:
        return int(self.image_index.max()) + 1 if len(self) else 0


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
    dataset: str,
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
    if dataset not in JOINT_LAYOUTS:
        raise UserError(f"{where}: unknown joint set {dataset!r}; allowed: {', '.join(JOINT_LAYOUTS)}")
    if j != len(JOINT_LAYOUTS[dataset]):
        fits = [name.upper() for name, names in JOINT_LAYOUTS.items() if len(names) == j]
        raise UserError(f"{where}: {j} joints per person, which is {' or '.join(fits) or 'neither MPII nor FLIC'} "
                        f"annotations, not {dataset.upper()} ({len(JOINT_LAYOUTS[dataset])} joints)")
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


def check_regular_file(path: Path, what: str, fix: str) -> None:
    """Unless `path` is a regular file, a UserError that says what it is instead and `fix`. It stats, never
    opens: opening a FIFO waits for a writer forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UserError(f"{what} {path} not found: {fix}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path} ({exc.strerror}): {fix}") from exc
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a folder, not a file: {fix}")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is not a regular file (a pipe, socket or device): {fix}")


def read_split_fields(path, required=("part", "normalize"), download_hint: str | None = None) -> dict:
    """The arrays of a pose-hg-train split file: every field of SPLIT_H5_FIELDS it holds, `required` ones checked.

    One reader for both uses: ground truth for the metrics (`read_split_h5`) and a dataset's crops and
    targets (`hgstudy.data.mpii.read_split_h5`). Every failure is a UserError naming the file and the fix.
    """
    import h5py

    path = Path(path)
    fix = f"run `{download_hint}` or pass" if download_hint else "pass"
    check_regular_file(path, "split file", f"{fix} the annotation file's path")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in required if k not in f]
            if missing:
                names, found = ", ".join(map(repr, missing)), ", ".join(sorted(f.keys()))
                raise UserError(f"{path} is not a pose-hg-train split file: no field(s) {names} (found {found})")
            return {k: f[k][()] for k in SPLIT_H5_FIELDS if k in f}
    except OSError as exc:
        raise UserError(f"cannot read {path} as HDF5 (corrupt or truncated?): {exc}; download it again") from exc


def read_split_h5(path: str | Path, dataset: str) -> Annotations:
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
        image_index=groups, dataset=dataset, source=str(path), layout="pose-hg-train h5"
    )


def write_split_h5(ann: Annotations, path) -> Path:
    """Annotations as a pose-hg-train split file (`part` (0, 0) where not annotated, `normalize`, `visible`,
    `index` = image of each person), which `read_split_h5` reads back; the joint set goes in attribute
    `dataset`. Written atomically."""
    import h5py

    part = np.where(ann.annotated[..., None], ann.joints, 0.0)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["part"], f["normalize"], f["index"] = part, ann.ref_length, ann.image_index
        if ann.visible is not None:
            f["visible"] = ann.visible.astype(np.float64)
        f.attrs["dataset"] = ann.dataset
    return Path(path)
