"""MPII Human Pose, 16 joints: the split files (22,246 / 2,958 people, the Tompson et al. split) or the JSON
annotations, over the official images.

The split files' centre and scale already include the official code's adjustments (centre moved down
15 x scale px, scale x 1.25): the pose-hg-train crop uses them as stored. The JSON annotations (bearpaw/
pytorch-pose layout, `isValidation`) hold the unadjusted values and no head size: `read_mpii_json` applies the
adjustments and sets norm to NaN.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_JOINTS
from hgstudy.data.split import SPLITS, PoseDataset, Split, image_source, read_split
from hgstudy.scoring.annotations import check_regular_file


def read_mpii_json(path, split: str) -> Split:
    """Read the MPII JSON annotations (`mpii_annotations.json[.gz]`): isValidation 0 = train, 1 = valid."""
    path = Path(path)
    if split not in SPLITS:
        raise UserError(f"unknown MPII split {split!r}; choose one of {', '.join(SPLITS)}")
    check_regular_file(path, "MPII annotation file", "pass the path of mpii_annotations.json (or .json.gz)")
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


class MPII(PoseDataset):
    """MPII Human Pose, 16 joints (`hgstudy.core.joints.MPII_JOINTS`).

    root: data folder of `hgstudy download mpii` (split files root/mpii/{split}.h5, images root/mpii/images);
    annotations: another split file, or the JSON annotations (`.json` / `.json.gz`, split by isValidation);
    images: the image folder; store: a crop store made by `prepare` (then images are not read);
    augment: default "paper" for train, "none" for valid.
    """

    layout = "mpii"

    def __init__(self, root="data", split: str = "train", *, annotations=None, images=None, store=None,
                 res: int = 256, sigma: float = 1.0, augment: str | None = None, seed: int = 0,
                 pixel_origin: float = 1.0):
        if split not in SPLITS:
            raise UserError(f"unknown MPII split {split!r}; choose one of {', '.join(SPLITS)}")
        path = Path(annotations) if annotations else Path(root) / "mpii" / f"{split}.h5"
        if path.name.endswith((".json", ".json.gz")):
            data = read_mpii_json(path, split)
        else:
            data = read_split(path, len(MPII_JOINTS), "hgstudy download mpii")
        images = Path(images) if images else Path(root) / "mpii" / "images"
        super().__init__(data, image_source(data, images, store, pixel_origin), res, sigma,
                         augment or ("paper" if split == "train" else "none"), seed, training=split == "train")
