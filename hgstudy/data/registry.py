"""The dataset registry: a name in `TrainConfig.dataset` -> a Dataset for a split (train | val).

Builders import their dataset lazily so that a mannequin run never imports h5py-backed MPII code and vice
versa. `register_dataset` adds one.
"""

from __future__ import annotations

from hgstudy.config import DATASET_JOINTS
from hgstudy.errors import UserError


def _per_split(options: dict | None, split: str) -> dict:
    """Dataset options; a value {train: a, val: b} gives each split its own."""
    out = {}
    for key, value in (options or {}).items():
        if isinstance(value, dict) and value and set(value) <= {"train", "val"}:
            if split in value:
                out[key] = value[split]
        else:
            out[key] = value
    return out


def _mannequin(split, input_res, sigma, augment, seed, data_root, options):
    from hgstudy.data.mannequin import MannequinDataset

    return MannequinDataset(split, input_res=input_res, sigma=sigma, augmentation=augment, seed=seed, **options)


def _mpii(split, input_res, sigma, augment, seed, data_root, options):
    from hgstudy.data.mpii import MPII

    return MPII(data_root, "valid" if split == "val" else split, res=input_res, sigma=sigma, augment=augment,
                seed=seed, **options)


def _flic(split, input_res, sigma, augment, seed, data_root, options):
    from hgstudy.data.flic import FLIC

    return FLIC(data_root, "valid" if split == "val" else split, res=input_res, sigma=sigma, augment=augment,
                seed=seed, **options)


DATASET_BUILDERS = {"mannequin": _mannequin, "mpii": _mpii, "flic": _flic}


def register_dataset(name: str, joints: int, builder) -> None:
    """Add a dataset: builder(split, input_res, sigma, augment, seed, data_root, options) -> Dataset."""
    DATASET_JOINTS[name] = joints
    DATASET_BUILDERS[name] = builder


def build_dataset(name: str, split: str, *, input_res: int, sigma: float = 1.0, augment: str = "paper",
                  seed: int = 0, data_root="data", options: dict | None = None):
    if name not in DATASET_BUILDERS:
        raise UserError(f"dataset must be one of {', '.join(DATASET_BUILDERS)}, got {name!r}")
    try:
        return DATASET_BUILDERS[name](split, input_res, sigma, augment if split == "train" else "none", seed,
                                      data_root, _per_split(options, split))
    except TypeError as exc:  # an unknown key in data_options
        raise UserError(f"data_options for {name}: {exc}") from exc
