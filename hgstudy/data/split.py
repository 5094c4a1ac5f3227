"""A split of a real dataset (MPII, FLIC) as its pose-hg-train split file stores it, and its Dataset.

Split files are pose-hg-train's `annot/{train,valid}.h5`: `center` (N, 2), `scale` (N), `part` (N, J, 2) with
(0, 0) for a joint that is not annotated, `visible` (N, J), `normalize` (N: the PCKh head size for MPII, the
torso size for FLIC), `imgname` (N). Coordinates are kept as annotated (MATLAB convention, first pixel centre
at 1, see `geometry.origin_shift`), so `joints` and predictions mapped back through `matrix` compare directly
with the official files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import compose_affine, invert_affine
from hgstudy.data.augment import NO_AUGMENTATION, Augmentation, warp_image
from hgstudy.data.sample import SampleDataset, annotate_sample
from hgstudy.data.store import CropStore, ImageFolder, prepare_store
from hgstudy.scoring.annotations import read_split_fields

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


def read_split(path, num_joints: int, download_hint: str = "hgstudy download mpii") -> Split:
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


def to_float_rgb(crop_bgr: np.ndarray, gain=(1.0, 1.0, 1.0)) -> np.ndarray:
    """(3, R, R) float32 RGB in [0, 1] from an (R, R, 3) BGR uint8 crop, each channel times its gain."""
    out = np.empty((3, *crop_bgr.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.multiply(crop_bgr[:, :, 2 - c], np.float32(gain[c] / 255.0), out=out[c])
    if max(gain) > 1.0:
        np.minimum(out, 1.0, out=out)
    return out


class PoseDataset(SampleDataset):
    """Samples of `hgstudy.data` from a split and an image source (a JPEG folder or a prepared crop store).

    training: augment with `augment` ("paper", "official" or "none", see `augment.sample_augmentation`),
    drawn afresh each epoch (`set_epoch`); an evaluation split is never augmented.
    """

    def __init__(self, split: Split, images, res: int = 256, sigma: float = 1.0, augment: str = "none",
                 seed: int = 0, training: bool | None = None):
        super().__init__(augment != "none" if training is None else training, res, sigma, augment, seed)
        if split.joints.shape[1] != len(self.joint_names):
            raise UserError(f"{split.source}: {split.joints.shape[1]} joints per person; the {self.layout} joint set "
                            f"has {len(self.joint_names)}")
        self.split, self.images = split, images

    def __len__(self) -> int:
        return len(self.split)

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


