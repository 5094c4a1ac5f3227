"""The datasets of the study, in one table: `DATASETS[name]` says everything the engine needs to know of one.

Each entry names its Dataset class (which owns the joint set: `layout` "mpii" or "flic", hence the joint names,
left/right pairs and skeleton in `hgstudy.core.joints`), how to build its training or validation split, how
to read its validation ground truth for the metrics, and which `hgstudy download` fetches its files. The
metric follows from the joint set: PCKh@0.5 (official MPII protocol) for MPII-layout people, PCK@0.2 (torso
units) for FLIC. Splits are called "train" and "val" here whatever the dataset's own files call them.

To add a dataset: write its Dataset (a `hgstudy.data.sample.SampleDataset` with a `layout`), then one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hgstudy.core.errors import UserError
from hgstudy.core.joints import JOINT_LAYOUTS, METRICS, flip_permutation
from hgstudy.data.flic import FLIC
from hgstudy.data.mpii import MPII
from hgstudy.mannequin.dataset import MannequinDataset
from hgstudy.mannequin.poses import load_poses
from hgstudy.scoring.annotations import Annotations, read_split_h5

SPLITS = ("train", "val")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    dataset_class: type
    build: Callable  # (split, res, sigma, augment, seed, data_root, options) -> Dataset
    ground_truth: Callable[[Path], Annotations]  # (data_root) -> the validation people's annotations

    @property
    def layout(self) -> str:
        return self.dataset_class.layout

    @property
    def joint_names(self) -> tuple[str, ...]:
        return JOINT_LAYOUTS[self.layout]

    @property
    def joints(self) -> int:
        return len(self.joint_names)

    @property
    def flip(self) -> list[int]:
        return flip_permutation(self.joint_names)

    @property
    def metric(self) -> str:
        """The headline score's key: "pckh" (MPII layout) or "pck" (FLIC)."""
        return METRICS[self.layout]


def _official_split(split: str) -> str:
    return "valid" if split == "val" else split  # pose-hg-train's file names


DATASETS: dict[str, DatasetSpec] = {
    "mannequin": DatasetSpec(
        "mannequin", MannequinDataset,
        lambda split, res, sigma, augment, seed, root, options: MannequinDataset(
            split, input_res=res, sigma=sigma, augmentation=augment, seed=seed, **options),
        lambda root: load_poses().annotations("val")),
    "mpii": DatasetSpec(
        "mpii", MPII,
        lambda split, res, sigma, augment, seed, root, options: MPII(
            root, _official_split(split), res=res, sigma=sigma, augment=augment, seed=seed, **options),
        lambda root: read_split_h5(Path(root) / "mpii" / "valid.h5", "mpii")),
    "flic": DatasetSpec(
        "flic", FLIC,
        lambda split, res, sigma, augment, seed, root, options: FLIC(
            root, _official_split(split), res=res, sigma=sigma, augment=augment, seed=seed, **options),
        lambda root: read_split_h5(Path(root) / "flic" / "valid.h5", "flic")),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    return DATASETS[name]


def _per_split(options: dict | None, split: str) -> dict:
    """Dataset options; a value {train: a, val: b} gives each split its own."""
    out = {}
    for key, value in (options or {}).items():
        if isinstance(value, dict) and value and set(value) <= set(SPLITS):
            if split in value:
                out[key] = value[split]
        else:
            out[key] = value
    return out


def build_dataset(name: str, split: str, *, input_res: int, sigma: float = 1.0, augment: str = "paper",
                  seed: int = 0, data_root="data", options: dict | None = None):
    """Split `split` ("train" or "val") of dataset `name`; validation is never augmented."""
    spec = dataset_spec(name)
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    try:
        return spec.build(split, input_res, sigma, augment if split == "train" else "none", seed, data_root,
                          _per_split(options, split))
    except TypeError as exc:  # an unknown key in data_options
        raise UserError(f"data_options for {name}: {exc}") from exc


def val_annotations(name: str, index=None, data_root="data") -> Annotations:
    """Ground truth of a dataset's validation split as `hgstudy.scoring.metrics` wants it (people `index`)."""
    ann = dataset_spec(name).ground_truth(Path(data_root))
    return ann if index is None else ann.take(index)
