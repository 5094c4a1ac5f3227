"""Prediction files: their readers and writer, and `hgstudy score` (a file against MPII or FLIC annotations).

Prediction files use the layout of anibali/eval-mpii-pose, bearpaw/pytorch-pose and pose-hg-demo: one array
`preds` of shape n x J x 2 or 2 x J x n (x, y in original image pixels, people in the annotation file's
order) in a `.mat` (MATLAB v5/v7 or v7.3) or `.h5` file; `.npy` (the array itself) and `.npz` (`preds`, or
its only array) are accepted too.
"""

from __future__ import annotations

import argparse
import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.files import atomic_path
from hgstudy.scoring import metrics
from hgstudy.scoring.annotations import Annotations, check_regular_file
from hgstudy.scoring.decode import to_image_coords
from hgstudy.scoring.ground_truth import load_annotations

LAYOUTS = ("auto", "n-j-2", "2-j-n")
_PROTOCOL_TEXT = {
    "official": "official MPII protocol (evalMPII: <=, Head = mean(upper neck, head top), Total = 14 joints pooled)",
    "tompson": "Tompson convention (bearpaw/pytorch-pose: strict <, Head = head top, Mean = mean of 14 joints)",
}


MAX_VALUES = 1 << 26  # numbers in a `preds` of unknown count: 16x more than MPII's test set needs, 512 MB
_MAT_TYPES = {c: np.dtype(c.replace("single", "float32").replace("double", "float64")) for c in (
    "double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")}


def _check_declared(path: Path, shape, dtype, n_people: int | None, n_joints: int | None) -> None:
    """Refuse a `preds` by the shape and type its file declares, before reading (or allocating) any of it."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
        raise UserError(f"{path}: 'preds' holds {dtype} values; expected numbers")
    if shape is None or len(shape) != 3 or 2 not in (shape[0], shape[2]):
        raise UserError(f"{path}: 'preds' has shape {shape}; expected n x J x 2 or 2 x J x n")
    shape, people = tuple(int(s) for s in shape), max(int(shape[0]), int(shape[2]))
    if n_joints is not None and shape[1] != n_joints:
        raise UserError(f"{path}: predictions have {shape[1]} joints per person; expected {n_joints}")
    if n_people is not None and people > n_people:
        raise UserError(f"{path}: 'preds' declares shape {shape}: {people:,} predictions for {n_people} annotated "
                        "people (counts differ); nothing was read")
    if math.prod(shape) > MAX_VALUES:
        raise UserError(f"{path}: 'preds' declares shape {shape}, {math.prod(shape):,} values: far more than any "
                        "benchmark's predictions; nothing was read")


def _read_mat(path: Path, check) -> tuple[np.ndarray, bool]:
    """The `preds` array of a .mat file and whether its axes are in MATLAB order (v5/v7: yes, v7.3: flipped)."""
    import scipy.io

    try:
        found = {name: (shape, cls) for name, shape, cls in scipy.io.whosmat(path)}  # the header only
        if "preds" not in found:
            raise UserError(f"{path}: no variable 'preds' in the .mat file (found {sorted(found)})")
        shape, cls = found["preds"]
        check(shape, _MAT_TYPES.get(cls, f"MATLAB {cls}"))
        return scipy.io.loadmat(path, variable_names=["preds"])["preds"], True
    except NotImplementedError:  # v7.3 = HDF5, arrays come back with their axes reversed
        return _read_h5(path, lambda shape, dtype: check(None if shape is None else shape[::-1], dtype)).T, True
    except UserError:
        raise
    except Exception as exc:  # scipy raises many types (even IndexError) for a file that is no .mat
        raise UserError(f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from exc


def _read_h5(path: Path, check) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "preds" not in f:
                raise UserError(f"{path}: no dataset 'preds' in the HDF5 file (found {sorted(f.keys())})")
            preds = f["preds"]
            if not isinstance(preds, h5py.Dataset):
                raise UserError(f"{path}: 'preds' is an HDF5 {type(preds).__name__.lower()}, not an array")
            check(preds.shape, preds.dtype)
            exact = "heatmap_stacks" in f and "matrices" in f  # a file of `write_predictions`
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: cannot read as HDF5 ({exc})") from exc
    if exact:  # its float32 `preds` is for other tools; the exact values are these
        return read_prediction_stacks(path)[0][-1]
    with h5py.File(path, "r") as f:
        return f["preds"][()]


def _npy_header(f, path: Path) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from the header of a .npy file or .npz member, reading nothing else."""
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            raise UserError(f"{path}: .npy format version {version} is not supported (save with numpy.save)")
        shape, _, dtype = read[version](f)
    except ValueError as exc:
        raise UserError(f"{path}: not a numpy file ({exc})") from exc
    return shape, dtype


def _read_numpy(path: Path, check) -> np.ndarray:
    with open(path, "rb") as f:
        magic = f.read(6)
        if path.suffix.lower() == ".npy":
            if magic != b"\x93NUMPY":
                raise UserError(f"{path}: not a numpy file (no .npy header); save the array with numpy.save")
            f.seek(0)
            check(*_npy_header(f, path))
    try:
        if path.suffix.lower() == ".npy":
            return np.array(np.load(path, mmap_mode="r", allow_pickle=False))  # the header was checked above
        if not magic.startswith(b"PK"):
            raise UserError(f"{path}: not a numpy .npz file (not a zip archive); save it with numpy.savez")
        with zipfile.ZipFile(path) as zf:
            arrays = {n.removesuffix(".npy"): n for n in zf.namelist() if n.endswith(".npy")}
            if "preds" not in arrays and len(arrays) != 1:
                raise UserError(f"{path}: no array 'preds' in the .npz file (found {sorted(arrays)})")
            key = "preds" if "preds" in arrays else next(iter(arrays))
            with zf.open(arrays[key]) as member:
                check(*_npy_header(member, path))
        with np.load(path, allow_pickle=False) as data:
            return data[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{path}: cannot read as a numpy file: it is damaged or truncated ({exc})") from exc


def read_predictions(
    path: str | Path, n_people: int | None = None, n_joints: int | None = None, layout: str = "auto"
) -> np.ndarray:
    """Read a prediction file into an (n, J, 2) float64 array of x, y in original-image pixels.

    The x/y axis is the one of size 2 at either end: n x J x 2 or 2 x J x n. When both ends have size 2
    (n == 2), `layout="auto"` follows evalMPII: a .mat array (as MATLAB sees it) is 2 x J x n, every other
    file n x J x 2; pass layout "n-j-2" or "2-j-n" to say otherwise. With `n_people` / `n_joints` the counts
    are checked. Raises UserError naming the file for an unknown type, a missing `preds`, a wrong shape,
    mismatched counts or non-finite values.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    check_regular_file(path, "prediction file", "pass the path of a .mat, .h5, .npy or .npz prediction file")
    suffix = path.suffix.lower()
    if suffix not in (".mat", ".h5", ".hdf5", ".npy", ".npz"):
        raise UserError(f"{path}: unknown prediction file type '{path.suffix}' (expected .mat, .h5, .npy or .npz)")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes)")

    def check(shape, dtype):
        _check_declared(path, shape, dtype, n_people, n_joints)

    matlab_order = False
    if suffix == ".mat":
        raw, matlab_order = _read_mat(path, check)
    elif suffix in (".h5", ".hdf5"):
        raw = _read_h5(path, check)
    else:
        raw = _read_numpy(path, check)
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iuf":
        raise UserError(f"{path}: 'preds' holds {arr.dtype} values; expected numbers")
    if arr.ndim != 3 or 2 not in (arr.shape[0], arr.shape[2]):
        raise UserError(f"{path}: 'preds' has shape {arr.shape}; expected n x J x 2 or 2 x J x n")
    if layout == "auto":
        if arr.shape[0] == 2 and arr.shape[2] == 2:
            layout = "2-j-n" if matlab_order else "n-j-2"
        else:
            layout = "n-j-2" if arr.shape[2] == 2 else "2-j-n"
    expected_end = 2 if layout == "n-j-2" else 0
    if arr.shape[expected_end] != 2:
        raise UserError(f"{path}: 'preds' has shape {arr.shape}, which is not layout {layout}")
    preds = (arr if layout == "n-j-2" else arr.transpose(2, 1, 0)).astype(np.float64)
    if n_joints is not None and preds.shape[1] != n_joints:
        raise UserError(f"{path}: predictions have {preds.shape[1]} joints per person; expected {n_joints}")
    if n_people is not None and preds.shape[0] != n_people:
        raise UserError(f"{path}: {preds.shape[0]} predictions for {n_people} annotated people (counts differ)")
    bad = ~np.isfinite(preds)
    if bad.any():
        person = int(np.flatnonzero(bad.any(axis=(1, 2)))[0])
        raise UserError(
            f"{path}: {int(bad.sum())} prediction values are NaN or infinite (first in person {person}, 0-based)"
        )
    return preds


def write_predictions(path, heatmap_stacks, matrices, index) -> Path:
    """An HDF5 prediction file of every stack, exact and small enough to keep in git.

    `preds` (N, J, 2) float32: the last stack in original image pixels, the layout every tool reads. The exact
    predictions of every stack: `heatmap_stacks` (S, N, J, 2), decoded heatmap pixels in quarter-pixel steps
    (stored x 4 as small integers), and `matrices` (N, 2, 3), each person's map original image -> heatmap;
    `read_prediction_stacks` maps them back to the same float64 pixels as in memory. `index` (N,): the dataset
    index of each row. Written atomically, compressed.
    """
    import h5py

    heatmap_stacks, matrices = np.asarray(heatmap_stacks, np.float64), np.asarray(matrices, np.float64)
    quarters = heatmap_stacks * 4
    exact = np.array_equal(quarters, np.round(quarters)) and quarters.min(initial=0) >= 0
    big = quarters.max(initial=0) > 255
    stored = (quarters.astype(np.uint16 if big else np.uint8) if exact else heatmap_stacks.astype(np.float64))
    options = {"compression": "gzip", "compression_opts": 6, "shuffle": True}
    last = to_image_coords(heatmap_stacks[-1], matrices)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("preds", data=last.astype(np.float32), **options)
        f.create_dataset("heatmap_stacks", data=stored, **options)
        f["heatmap_stacks"].attrs["scale"] = 4.0 if exact else 1.0
        f.create_dataset("matrices", data=matrices, **options)
        f.create_dataset("index", data=np.asarray(index, dtype=np.int64), **options)
    return Path(path)


def read_prediction_stacks(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preds_stacks (S, N, J, 2) in original pixels, index (N,), matrices (N, 2, 3) original image -> heatmap)
    of a file written by `write_predictions`."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            stored, scale = f["heatmap_stacks"], float(f["heatmap_stacks"].attrs["scale"])
            heatmap = np.asarray(stored[()], np.float64) / scale
            matrices, index = np.asarray(f["matrices"][()], np.float64), np.asarray(f["index"][()], np.int64)
    except (OSError, KeyError) as exc:
        raise UserError(f"{path}: not a prediction file of `hgstudy evaluate` ({exc})") from exc
    return to_image_coords(heatmap.transpose(1, 0, 2, 3), matrices).transpose(1, 0, 2, 3), index, matrices


def load_for_scoring(predictions, annotations, split=None, dataset: str | None = None, layout: str = "auto"):
    """(Annotations, predictions (N,J,2)) checked against each other; `dataset` ("mpii"/"flic") if given."""
    ann: Annotations = load_annotations(annotations, split=split, dataset=dataset or "mpii")
    if dataset is not None and ann.dataset != dataset:
        raise UserError(f"{annotations}: these are {ann.dataset.upper()} annotations, not {dataset.upper()}")
    j = ann.joints.shape[1]
    try:
        preds = read_predictions(predictions, n_people=len(ann), n_joints=j, layout=layout)
    except UserError as exc:
        raise UserError(f"{exc} [annotations: {annotations}]") from exc
    return ann, preds


def _json_value(value):
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def score_file(predictions, annotations, dataset: str, *, protocol: str = "official", threshold=None, split=None,
               layout: str = "auto") -> dict:
    """Score a prediction file: the MPII table (`metrics.score_mpii`) or FLIC elbow/wrist + PDJ curves."""
    ann, preds = load_for_scoring(predictions, annotations, split=split, dataset=dataset, layout=layout)
    if dataset == "mpii":
        return metrics.score_mpii(ann, preds, protocol, 0.5 if threshold is None else threshold)
    return metrics.score_flic(ann, preds, 0.2 if threshold is None else threshold)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=("mpii", "flic"), help="benchmark of the predictions")
    parser.add_argument("predictions", type=Path, help="prediction file (.mat, .h5, .npy, .npz) with 'preds'")
    parser.add_argument("--annotations", type=Path, required=True,
                        help="ground truth: pose-hg-train split .h5, Tompson-format .mat or the official release .mat")
    parser.add_argument("--split", type=Path, help="split .h5 (index/person) to use with the official release .mat")
    parser.add_argument("--protocol", choices=("official", "tompson"), default=None,
                        help="MPII PCKh convention (default official)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="PCK threshold (default 0.5 of head size for MPII, 0.2 of torso for FLIC)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto",
                        help="axis order of 'preds' when it cannot be told from the shape (n == 2)")
    parser.add_argument("--json", action="store_true", help="print a JSON object of unrounded percentages")


def main(args: argparse.Namespace) -> int:
    if args.dataset == "flic" and args.protocol is not None:
        raise UserError("--protocol applies to MPII only (FLIC PCK uses <= and elbow/wrist means)")
    protocol = args.protocol or "official"
    if args.threshold is not None and not 0 <= args.threshold:
        raise UserError(f"--threshold must be non-negative, not {args.threshold}")
    result = score_file(args.predictions, args.annotations, args.dataset, protocol=protocol,
                        threshold=args.threshold, split=args.split, layout=args.layout)
    if args.dataset == "mpii":
        if args.json:
            print(json.dumps({k: _json_value(v) for k, v in result.items()}, indent=2))
            return 0
        t = 0.5 if args.threshold is None else args.threshold
        print(f"MPII PCKh@{t:g}, {_PROTOCOL_TEXT[protocol]}")
        print(f"predictions: {args.predictions}   annotations: {args.annotations}")
        names = {"ubody": "UBody", "auc": "AUC"}
        print("  ".join(f"{names.get(k, k.capitalize()):>8}" for k in result))
        print("  ".join(f"{v:8.2f}" for v in result.values()))
        return 0
    pdj = result.pop("pdj")
    if args.json:
        curves = {"threshold": [float(x) for x in pdj.index]}
        curves.update({c: [_json_value(float(v)) for v in pdj[c]] for c in pdj.columns})
        print(json.dumps({**{k: _json_value(v) for k, v in result.items()}, "pdj": curves}, indent=2))
        return 0
    t = 0.2 if args.threshold is None else args.threshold
    print(f"FLIC PCK@{t:g} (torso = right shoulder to left hip; <=; mean of left and right)")
    print(f"predictions: {args.predictions}   annotations: {args.annotations}")
    print(f"{'Elbow':>8}  {'Wrist':>8}\n{result['elbow']:8.2f}  {result['wrist']:8.2f}")
    print("\nPDJ (percent of detected joints) by normalised distance:")
    print(pdj.iloc[::5].round(2).to_string())
    return 0
