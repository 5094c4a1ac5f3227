"""MPII Human Pose: split files, and the dataset class that MPII and FLIC share.

Split files are pose-hg-train's `annot/{train,valid}.h5` (22,246 / 2,958 people, the Tompson et al. split):
`center` (N, 2), `scale` (N), `part` (N, J, 2) with (0, 0) for a joint that is not annotated, `visible`
(N, J), `normalize` (N: the PCKh head size for MPII, the torso size for FLIC), `imgname` (N). Their centre and
scale already include the official code's adjustments (centre moved down 15 x scale px, scale x 1.25): the
pose-hg-train crop uses them as stored. The JSON annotations (bearpaw/pytorch-pose layout, `isValidation`)
hold the unadjusted values and no head size: `read_mpii_json` applies the adjustments and sets norm to NaN.
Coordinates are kept as annotated (MATLAB convention, first pixel centre at 1, see `store.origin_shift`),
so `joints` and predictions mapped back through `matrix` compare directly with the official files.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from hgstudy.annotations import read_split_fields
from hgstudy.data.sample import annotate_sample
from hgstudy.data.store import CropStore, ImageFolder, compose_affine, prepare_store
from hgstudy.data.transforms import (
    AUGMENTATION_MODES,
    NO_AUGMENTATION,
    Augmentation,
    invert_affine,
    sample_augmentation,
    warp_image,
)
from hgstudy.errors import UserError
from hgstudy.joints import MPII_FLIP, MPII_JOINTS

SPLITS = ("train", "valid")


@dataclass(frozen=True)
class Split:
    """One split's people (N) and joints (J), as stored in its annotation file."""

    joints: np.ndarray  # (N, J, 2) float64, annotation coordinates; (0, 0) where not annotated
    annotated: np.ndarray  # (N, J) bool
    visible: np.ndarray  # (N, J) float32
    center: np.ndarray  # (N, 2) float64, after the dataset's adjustments
    scale: np.ndarray  # (N,) float64, person box side / 200 px, after the dataset's adjustments
    norm: np.ndarray  # (N,) float64: head size (MPII) or torso size (FLIC); NaN where unknown
    names: tuple[str, ...]  # image file name of each person
    source: str = ""

    def __len__(self) -> int:
        return len(self.scale)


def read_split_h5(path, num_joints: int, download_hint: str = "hgstudy download mpii") -> Split:
    """Read a pose-hg-train split file (MPII or FLIC layout)."""
    f = read_split_fields(path, ("center", "scale", "part", "visible", "normalize", "imgname"), download_hint)
    part = np.asarray(f["part"], dtype=np.float64)
    center, scale = np.asarray(f["center"], np.float64), np.asarray(f["scale"], np.float64)
    visible, norm = np.asarray(f["visible"], np.float32), np.asarray(f["normalize"], np.float64)
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in f["imgname"])
    n = len(scale)
    if part.shape != (n, num_joints, 2) or visible.shape != (n, num_joints) or center.shape != (n, 2):
        raise UserError(f"{path}: expected {num_joints} joints per person, found part {part.shape}, "
                        f"visible {visible.shape}, center {center.shape}: is it the right dataset's file?")
    annotated = ~np.all(part == 0, axis=2)
    return Split(part, annotated, visible, center, scale, norm, names, str(path))


def read_mpii_json(path, split: str) -> Split:
    """Read the MPII JSON annotations (`mpii_annotations.json[.gz]`): isValidation 0 = train, 1 = valid."""
    path = Path(path)
    if split not in SPLITS:
        raise UserError(f"unknown MPII split {split!r}; choose one of {', '.join(SPLITS)}")
    if not path.is_file():
        raise UserError(f"MPII annotation file {path} not found")
    try:
        with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as f:
            people = [p for p in json.load(f) if int(p["isValidation"]) == (split == "valid")]
        joints = np.array([p["joint_self"] for p in people], dtype=np.float64).reshape(len(people), 16, 3)
        center = np.array([p["objpos"] for p in people], dtype=np.float64).reshape(len(people), 2)
        scale = np.array([p["scale_provided"] for p in people], dtype=np.float64)
        names = tuple(str(p["img_paths"]) for p in people)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise UserError(f"{path} is not an MPII JSON annotation file (list of people with joint_self, objpos, "
                        f"scale_provided, img_paths, isValidation): {exc}") from exc
    center[:, 1] += 15 * scale  # the official code's adjustments (already in the .h5 split files)
    scale = scale * 1.25
    part = joints[:, :, :2]
    annotated = ~np.all(part == 0, axis=2)
    return Split(part, annotated, joints[:, :, 2].astype(np.float32), center, scale,
                 np.full(len(people), np.nan), names, str(path))


def to_float_rgb(crop_bgr: np.ndarray, gain=(1.0, 1.0, 1.0)) -> np.ndarray:
    """(3, R, R) float32 RGB in [0, 1] from an (R, R, 3) BGR uint8 crop, each channel times its gain."""
    out = np.empty((3, *crop_bgr.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.multiply(crop_bgr[:, :, 2 - c], np.float32(gain[c] / 255.0), out=out[c])
    if max(gain) > 1.0:
        np.minimum(out, 1.0, out=out)
    return out


class PoseDataset(Dataset):
    """Samples of `hgstudy.data` from a split and an image source (a JPEG folder or a prepared crop store).

    augment: "paper", "official" or "none" (see `transforms.sample_augmentation`). The augmentation of
    person i in epoch e is drawn from a generator seeded with (seed, e, i): reproducible with any number of
    loader workers. Call `set_epoch(e)` before iterating a DataLoader over epoch e (persistent workers keep
    the copy they were started with, so do not combine them with set_epoch).
    """

    def __init__(self, split: Split, images, flip_permutation, res: int = 256, sigma: float = 1.0,
                 augment: str = "none", seed: int = 0):
        if res < 16 or res % 4:
            raise UserError(f"input resolution must be a multiple of 4 and at least 16, got {res}")
        if not sigma > 0:
            raise UserError(f"target sigma must be positive, got {sigma}")
        if augment not in AUGMENTATION_MODES:
            raise UserError(f"unknown augmentation {augment!r}; allowed: {', '.join(AUGMENTATION_MODES)}")
        self.split, self.images, self.flip = split, images, list(flip_permutation)
        self.res, self.sigma, self.augment, self.seed, self.epoch = res, float(sigma), augment, int(seed), 0

    def __len__(self) -> int:
        return len(self.split)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def augmentation(self, index: int) -> Augmentation:
        if self.augment == "none":
            return NO_AUGMENTATION
        return sample_augmentation(np.random.default_rng((self.seed, self.epoch, index)), self.augment)

    def annotation(self, index: int, aug: Augmentation = NO_AUGMENTATION) -> dict:
        """The sample without its image (and with `matrix_input`): cheap, needs no image file."""
        if not 0 <= index < len(self):
            raise IndexError(f"person {index} out of range (split of {len(self)})")
        s = self.split
        return annotate_sample(s.joints[index], s.annotated[index], s.visible[index], s.center[index],
                               float(s.scale[index]), float(s.norm[index]), index, self.res, aug, self.flip,
                               self.sigma)

    def __getitem__(self, index: int) -> dict:
        aug = self.augmentation(index)
        sample = self.annotation(index, aug)
        image, to_source = self.images(index)
        warp = compose_affine(sample["matrix_input"], invert_affine(to_source))
        sample["image"] = to_float_rgb(warp_image(image, warp, self.res), aug.color_gain)
        return sample

    def prepare(self, dest, size: int = 384, margin: float = 1.5, workers: int = 1, progress: bool = True) -> Path:
        """Decode this split's images once into a crop store at `dest` (see `store.prepare_store`)."""
        if not isinstance(self.images, ImageFolder):
            raise UserError("prepare a store from a dataset that reads its JPEG folder (store=None)")
        s = self.split
        return prepare_store(s.names, s.center, s.scale, self.images.folder, dest, size, margin,
                             pixel_origin=self.pixel_origin, workers=workers, source=s.source, progress=progress)

    @property
    def pixel_origin(self) -> float:
        return self.images.pixel_origin


def image_source(split: Split, images, store, pixel_origin: float):
    if store is not None:
        return CropStore(store, split.names, split.center, split.scale)
    return ImageFolder(images, split.names, pixel_origin)


class MPII(PoseDataset):
    """MPII Human Pose, 16 joints (`hgstudy.joints.MPII_JOINTS`).

    root: data folder of `hgstudy download mpii` (split files root/mpii/{split}.h5, images root/mpii/images);
    annotations: another split file, or the JSON annotations (`.json` / `.json.gz`, split by isValidation);
    images: the image folder; store: a crop store made by `prepare` (then images are not read);
    augment: default "paper" for train, "none" for valid.
    """

    joint_names = MPII_JOINTS

    def __init__(self, root="data", split: str = "train", *, annotations=None, images=None, store=None,
                 res: int = 256, sigma: float = 1.0, augment: str | None = None, seed: int = 0,
                 pixel_origin: float = 1.0):
        if split not in SPLITS:
            raise UserError(f"unknown MPII split {split!r}; choose one of {', '.join(SPLITS)}")
        path = Path(annotations) if annotations else Path(root) / "mpii" / f"{split}.h5"
        if path.name.endswith((".json", ".json.gz")):
            data = read_mpii_json(path, split)
        else:
            data = read_split_h5(path, len(MPII_JOINTS), "hgstudy download mpii")
        images = Path(images) if images else Path(root) / "mpii" / "images"
        super().__init__(data, image_source(data, images, store, pixel_origin), MPII_FLIP, res, sigma,
                         augment or ("paper" if split == "train" else "none"), seed)
