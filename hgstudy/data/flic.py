"""FLIC (Frames Labeled In Cinema): 3,987 training and 1,016 test people, 11 annotated parts.

Split files are pose-hg-train's `data/flic/annot/{train,valid}.h5` ("valid" is FLIC's test set), in the MPII
split-file layout (`hgstudy.data.split.read_split`) with the parts of `hgstudy.core.joints.FLIC_JOINTS` and
`normalize` = torso size (right shoulder to left hip), the PCK reference length. The stored centre and scale
(scale 2.2: a 440 px box on the 480 px high frames) are used as they are: the official code adjusts MPII only.
"""

from __future__ import annotations

from pathlib import Path

from hgstudy.core.errors import UserError
from hgstudy.core.joints import FLIC_JOINTS
from hgstudy.data.split import SPLITS, PoseDataset, image_source, read_split


class FLIC(PoseDataset):
    """FLIC, 11 parts.

    root: data folder of `hgstudy download flic` (split files root/flic/{split}.h5, images
    root/flic/FLIC/images as extracted from FLIC.zip); annotations / images / store override those
    (store: a crop store made by `prepare`); augment: default "paper" for train, "none" for valid.
    """

    layout = "flic"

    def __init__(self, root="data", split: str = "train", *, annotations=None, images=None, store=None,
                 res: int = 256, sigma: float = 1.0, augment: str | None = None, seed: int = 0,
                 pixel_origin: float = 1.0):
        if split not in SPLITS:
            raise UserError(f"unknown FLIC split {split!r}; choose one of {', '.join(SPLITS)} (valid = FLIC test)")
        path = Path(annotations) if annotations else Path(root) / "flic" / f"{split}.h5"
        data = read_split(path, len(FLIC_JOINTS), "hgstudy download flic")
        images = Path(images) if images else Path(root) / "flic" / "FLIC" / "images"
        super().__init__(data, image_source(data, images, store, pixel_origin), res, sigma,
                         augment or ("paper" if split == "train" else "none"), seed, training=split == "train")
