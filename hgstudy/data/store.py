"""Where a dataset's pixels come from: JPEG files, or a prepared store of decoded person-centred crops.

Decoding an MPII JPEG costs about 5 ms, several times the rest of a sample. `prepare_store` decodes each
image of a split once and keeps, for every person, a `size` x `size` uint8 crop around the person's
(adjusted) centre covering `margin` times the person box, so that augmentation (scale, rotation) still finds
real pixels around the box; pixels beyond the margin are black, as pixels beyond the image border are.
With the defaults (384 px, margin 1.5) a crop has the input crop's pixel density at augmentation scale 1.

Both sources return (image, matrix): a BGR uint8 array and the affine map from annotation coordinates to
its pixels, so a dataset warps either with one `cv2.warpAffine`.

Store layout (a folder): crops.npy (N, size, size, 3) uint8, read memory-mapped; matrices.npy (N, 2, 3);
people.json (image names, centres, scales: checked against the split when the store is opened). It is
written under `<folder>.partial` and renamed when complete.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import defaultdict
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hgstudy.core.errors import UserError
from hgstudy.core.files import check_space, disk_error
from hgstudy.core.geometry import affine_matrix, compose_affine, invert_affine, origin_shift
from hgstudy.data.augment import warp_image


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        if not Path(path).exists():
            raise UserError(f"image {path} is missing: fetch the dataset (`hgstudy download mpii|flic`) or pass "
                            "the folder that holds the images")
        raise UserError(f"image {path} cannot be decoded (corrupt or truncated?): download the dataset again")
    return image


class ImageFolder:
    """Decode `folder/names[i]` on every access."""

    def __init__(self, folder: Path, names, pixel_origin: float = 1.0):
        self.folder = Path(folder)
        self.names = list(names)
        self.pixel_origin = float(pixel_origin)
        self.matrix = origin_shift(pixel_origin)

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return read_image(self.folder / self.names[index]), self.matrix


class CropStore:
    """A prepared store (see `prepare_store`), opened memory-mapped lazily (so it pickles to workers cheaply)."""

    def __init__(self, folder: Path, names=None, centers=None, scales=None):
        self.folder = Path(folder)
        if not (self.folder / "people.json").is_file():
            hint = " (an interrupted prepare: run it again)" if self.folder.with_name(
                self.folder.name + ".partial").exists() else ""
            raise UserError(f"{self.folder} is not a complete crop store{hint}: create it with `prepare_store`")
        people = json.loads((self.folder / "people.json").read_text())
        self.size, self.margin = int(people["size"]), float(people["margin"])
        self.pixel_origin = float(people["pixel_origin"])
        self.matrices = np.load(self.folder / "matrices.npy")
        if names is not None and (list(names) != people["names"]
                                  or not np.allclose(np.asarray(centers, float), people["centers"], atol=1e-3)
                                  or not np.allclose(np.asarray(scales, float), people["scales"], rtol=1e-6)):
            raise UserError(f"crop store {self.folder} was prepared from other annotations than this split "
                            f"({people.get('source')}): prepare it again for this split")
        self._crops = None

    def __len__(self) -> int:
        return len(self.matrices)

    @property
    def crops(self) -> np.ndarray:
        if self._crops is None:
            self._crops = np.load(self.folder / "crops.npy", mmap_mode="r")
        return self._crops

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_crops"] = None  # each worker maps the file itself
        return state

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.crops[index], self.matrices[index]


def _crop_group(task):
    """Decode one image and cut the crops of its people (runs in a worker process)."""
    path, indices, matrices, size, pixel_origin = task
    image = read_image(path)
    from_pixels = invert_affine(origin_shift(pixel_origin))
    crops = [warp_image(image, compose_affine(matrix, from_pixels), size) for matrix in matrices]
    return indices, crops


def store_matrices(centers, scales, size: int, margin: float) -> np.ndarray:
    """(N, 2, 3): annotation coordinates -> store crop pixels for every person."""
    return np.stack([affine_matrix(c, s * margin, size) for c, s in zip(centers, scales, strict=True)])


def _write_store(folder: Path, names, centers, scales, image_dir: Path, size: int, margin: float,
                 pixel_origin: float, workers: int, progress: bool) -> None:
    matrices = store_matrices(centers, scales, size, margin)
    crops = np.lib.format.open_memmap(folder / "crops.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(names), size, size, 3))
    _allocate(folder / "crops.npy")
    groups = defaultdict(list)
    for i, name in enumerate(names):
        groups[name].append(i)
    tasks = [(image_dir / n, idx, matrices[idx], size, pixel_origin) for n, idx in groups.items()]
    bar = tqdm(total=len(names), desc=f"prepare {folder.name.removesuffix('.partial')}", unit="crop",
               disable=not progress, mininterval=0.5 if os.isatty(2) else 30)
    if workers > 1:
        # spawn, not fork: a forked child that touches OpenCV's thread pool after the parent used it can hang
        pool = get_context("spawn").Pool(workers, initializer=cv2.setNumThreads, initargs=(1,))
        results = pool.imap_unordered(_crop_group, tasks, chunksize=8)
    else:
        pool, results = None, map(_crop_group, tasks)
    try:
        for indices, group in results:
            for i, crop in zip(indices, group, strict=True):
                crops[i] = crop
            bar.update(len(indices))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    crops.flush()
    del crops
    np.save(folder / "matrices.npy", matrices)


def _allocate(path: Path) -> None:
    """Give a sparse file its blocks now: a full disk is then an OSError here, not a SIGBUS in a mapped write."""
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot: write as we go
                    raise


def prepare_store(names, centers, scales, image_dir: Path, dest: Path, size: int = 384, margin: float = 1.5,
                  pixel_origin: float = 1.0, workers: int = 1, source: str = "", progress: bool = True) -> Path:
    """Decode every image once and write the person-centred crops of all people into store folder `dest`.

    names, centers, scales: per person (a split's `imgname`, `center`, `scale`, after dataset adjustments).
    Returns `dest`. Does nothing if `dest` is already a complete store for these people.
    """
    dest, image_dir = Path(dest), Path(image_dir)
    names = [str(n) for n in names]
    centers, scales = np.asarray(centers, np.float64), np.asarray(scales, np.float64)
    if size < 16 or margin < 1.0:
        raise UserError(f"store size must be >= 16 px and margin >= 1 (got size {size}, margin {margin})")
    if (dest / "people.json").is_file():
        CropStore(dest, names, centers, scales)  # raises if it was made from other annotations
        return dest
    if dest.exists():
        raise UserError(f"{dest} exists but is not a complete crop store: remove it or choose another folder")
    missing = [n for n in dict.fromkeys(names) if not (image_dir / n).is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) of this split are missing from {image_dir}, e.g. {missing[0]}: "
                        "fetch the dataset (`hgstudy download mpii|flic`) or pass the right image folder")
    partial = dest.with_name(dest.name + ".partial")
    check_space(dest.parent, len(names) * size * size * 3 + (1 << 20), "the crop store")  # before hours of decoding
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _write_store(partial, names, centers, scales, image_dir, size, margin, pixel_origin, workers, progress)
        people = {"source": source, "size": size, "margin": margin, "pixel_origin": pixel_origin, "names": names,
                  "centers": centers.tolist(), "scales": scales.tolist()}
        (partial / "people.json").write_text(json.dumps(people))  # written last: marks the store complete
        os.replace(partial, dest)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)  # never leave a half-written store behind
        error = disk_error(exc, partial, "preparing", "Nothing was kept: run it again") if isinstance(
            exc, OSError) else None
        if error is not None:
            raise error from exc
        raise
    return dest
