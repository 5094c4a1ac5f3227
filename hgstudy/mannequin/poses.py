"""The real MPII poses packaged with hgstudy (`resources/mpii_poses.npz`), and the conversion that made them.

The file holds every person annotated in the 17,408 images of the standard MPII train + validation split:
the 25,204 people of the split (22,246 train, 2,958 validation) and the 3,679 further annotated people who
appear only as "other people" of an image. Layout (P people, I images):

    joints_milli  int32 (P,16,2)  joint x, y in original pixels x 1000 (MPII coordinates have 3 decimals,
                                  so this is exact); (0, 0) = not annotated, as in the annotation files
    flags         uint8 (P,16)    bit 0: annotated, bit 1: visible
    objpos        int32 (P,2)     MPII's person centre (`objpos`, integer pixels)
    scale_milli   int32 (P,)      MPII's `scale_provided` (person height / 200 px) x 1000
    image         int32 (P,)      image of each person; people sharing a value are in the same image
    image_names   bytes (I,)      MPII image file names;  image_size int32 (I,2) width, height
    train         int32 (22246,)  people of the training split, in the order of the annotation file
    val           int32 (2958,)   people of the validation split, in the order of valid.h5
    val_center    float64 (2958,2), val_scale float64 (2958,), val_norm float64 (2958,): valid.h5's
                                  `center`, `scale` (already moved down 15 x scale and x 1.25) and
                                  `normalize` (PCKh head size)
    source_sha256 str             "json=<sha256>;valid=<sha256>" of the two files converted

`python -m hgstudy.mannequin.poses build JSON VALID_H5 [OUT]` rebuilds it from the annotation files of
shared/data/mpii (see resources/MPII_POSES.md).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.scoring.annotations import Annotations, make_annotations

POSES_FILE = Path(__file__).resolve().parent / "resources" / "mpii_poses.npz"
N_TRAIN, N_VAL, N_JOINTS = 22246, 2958, 16
ANNOTATED, VISIBLE = 1, 2
# MPII's scale is head-derived: the PCKh head size (valid.h5's `normalize`, 0.6 x head-box diagonal) equals
# 25 x scale_provided within 0.06% for all 2,958 validation people (checked in the tests), so training
# people, who have no head box in the annotation file, get that.
HEAD_SIZE_PER_SCALE = 25.0
_KEYS = ("joints_milli", "flags", "objpos", "scale_milli", "image", "image_names", "image_size",
         "train", "val", "val_center", "val_scale", "val_norm", "source_sha256")


@dataclass(frozen=True)
class Poses:
    """All annotated people (float arrays in original pixels) and the two splits; see the module docstring."""

    joints: np.ndarray  # (P,16,2) float64
    annotated: np.ndarray  # (P,16) bool
    visible: np.ndarray  # (P,16) bool
    objpos: np.ndarray  # (P,2) float64
    scale: np.ndarray  # (P,) float64, as provided by MPII (not yet x 1.25)
    image: np.ndarray  # (P,) int64
    image_names: np.ndarray
    image_size: np.ndarray  # (I,2) width, height
    train: np.ndarray
    val: np.ndarray
    val_center: np.ndarray
    val_scale: np.ndarray
    val_norm: np.ndarray
    source_sha256: str

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "val"):
            raise UserError(f"unknown split {name!r}; allowed: train, val")
        return self.train if name == "train" else self.val

    def crop(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Centre (N,2) and scale (N,) of each person of a split after MPII's adjustment (as in valid.h5)."""
        if name == "val":
            return self.val_center, self.val_scale
        people = self.split(name)
        center = self.objpos[people].copy()
        center[:, 1] += 15 * self.scale[people]
        return center, 1.25 * self.scale[people]

    def head_size(self, name: str) -> np.ndarray:
        """PCKh head size: valid.h5's `normalize` for val; 25 x MPII's scale for train (see HEAD_SIZE_PER_SCALE)."""
        if name == "val":
            return self.val_norm
        return HEAD_SIZE_PER_SCALE * self.scale[self.split(name)]

    def annotations(self, name: str) -> Annotations:
        """The split's ground truth for `hgstudy.scoring.metrics` (val: valid.h5's order and head sizes)."""
        people = self.split(name)
        return make_annotations(self.joints[people], self.annotated[people], self.head_size(name),
                                visible=self.visible[people], image_index=self.image[people], dataset="mpii",
                                source=f"mannequin {name}", layout="mannequin")

    def people_of_image(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, start): people of image i are order[start[i]:start[i + 1]]."""
        order = np.argsort(self.image, kind="stable")
        start = np.searchsorted(self.image[order], np.arange(len(self.image_names) + 1))
        return order, start


@lru_cache(maxsize=4)
def load_poses(path: str | Path = POSES_FILE) -> Poses:
    """Read and check the packaged pose file; a missing or damaged file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"MPII pose file {path} is missing; reinstall hgstudy or rebuild it with "
                        "`python -m hgstudy.mannequin.poses build` (see hgstudy/mannequin/resources/MPII_POSES.md)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in _KEYS}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise UserError(f"MPII pose file {path} is unreadable or incomplete ({exc}); reinstall hgstudy") from exc
    n_people = len(raw["flags"])
    checks = {
        "joints shape": raw["joints_milli"].shape == (n_people, N_JOINTS, 2),
        "flags shape": raw["flags"].shape == (n_people, N_JOINTS),
        "split sizes": raw["train"].shape == (N_TRAIN,) and raw["val"].shape == (N_VAL,),
        "people indices": all(0 <= raw[k].min() and raw[k].max() < n_people for k in ("train", "val")),
        "image indices": raw["image"].shape == (n_people,) and raw["image"].max() < len(raw["image_names"]),
        "val arrays": raw["val_center"].shape == (N_VAL, 2) and raw["val_norm"].shape == (N_VAL,),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise UserError(f"MPII pose file {path} is corrupt ({', '.join(bad)}); reinstall hgstudy")
    flags = raw["flags"]
    return Poses(
        joints=raw["joints_milli"] / 1000.0, annotated=(flags & ANNOTATED) > 0, visible=(flags & VISIBLE) > 0,
        objpos=raw["objpos"].astype(np.float64), scale=raw["scale_milli"] / 1000.0,
        image=raw["image"].astype(np.int64), image_names=raw["image_names"], image_size=raw["image_size"],
        train=raw["train"].astype(np.int64), val=raw["val"].astype(np.int64),
        val_center=raw["val_center"], val_scale=raw["val_scale"], val_norm=raw["val_norm"],
        source_sha256=str(raw["source_sha256"]))


# ---- one-off conversion from the annotation files ----

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _others(entry: dict) -> list[tuple[list, list, float]]:
    """The other people of a JSON entry as (joints 16x3, objpos, scale); a single one is stored unnested."""
    n = int(entry["numOtherPeople"])
    if n == 0:
        return []
    joints, pos, scale = entry["joint_others"], entry["objpos_other"], entry["scale_provided_other"]
    if n == 1:
        joints, pos, scale = [joints], [pos], [scale]
    return list(zip(joints, pos, scale, strict=True))


def build_poses(json_path: str | Path, valid_path: str | Path, out_path: str | Path = POSES_FILE) -> dict:
    """Convert mpii_annotations.json.gz + valid.h5 into the packaged file; returns a few counts."""
    import h5py  # only the conversion needs it

    json_path, valid_path = Path(json_path), Path(valid_path)
    entries = json.loads(gzip.decompress(json_path.read_bytes()))
    images: dict[str, int] = {}
    people: dict[tuple, int] = {}  # (image, objpos, scale) -> row; identifies a person across entries
    rows: list[tuple] = []

    def person(img: str, joints, pos, scale) -> int:
        key = (img, round(pos[0]), round(pos[1]), round(scale * 1000))
        if key not in people:
            people[key] = len(rows)
            rows.append((images[img], np.asarray(joints, dtype=np.float64), key))
        elif not np.array_equal(rows[people[key]][1], np.asarray(joints, dtype=np.float64)):
            raise ValueError(f"person {key} has two different annotations")
        return people[key]

    selves, sizes = [], []
    for e in entries:
        if e["img_paths"] not in images:
            images[e["img_paths"]] = len(images)
            sizes.append((int(e["img_width"]), int(e["img_height"])))
        selves.append(person(e["img_paths"], e["joint_self"], e["objpos"], e["scale_provided"]))
        for joints, pos, scale in _others(e):
            person(e["img_paths"], joints, pos, scale)
    image = np.array([r[0] for r in rows], dtype=np.int32)
    # The other people of each entry must be exactly the rest of its image (so only `image` is stored).
    for e, me in zip(entries, selves, strict=True):
        others = {people[(e["img_paths"], round(p[0]), round(p[1]), round(s * 1000))] for _, p, s in _others(e)}
        if others != set(np.flatnonzero(image == image[me]).tolist()) - {me}:
            raise ValueError(f"other people of {e['img_paths']} are not the rest of its annotated people")

    raw = np.stack([r[1] for r in rows])  # (P,16,3)
    annotated = ~((raw[..., 0] == 0) & (raw[..., 1] == 0))
    flags = (annotated * ANNOTATED + (raw[..., 2] > 0) * VISIBLE).astype(np.uint8)
    is_val = np.array([bool(e["isValidation"]) for e in entries])
    selves = np.asarray(selves)
    with h5py.File(valid_path, "r") as h5:
        v = {k: h5[k][()] for k in ("index", "person", "imgname", "center", "scale", "normalize")}
    # valid.h5's index/person are 0-based positions in the MPII release; the JSON's are 1-based.
    by_release = {(int(e["annolist_index"]) - 1, int(e["people_index"]) - 1): i
                  for i, e in zip(selves, entries, strict=True) if e["isValidation"]}
    val = np.array([by_release[(int(a), int(b))] for a, b in zip(v["index"], v["person"], strict=True)])
    names = [rows[i][2][0].encode() for i in val]
    if len(set(val.tolist())) != N_VAL or names != [bytes(n) for n in v["imgname"]]:
        raise ValueError("validation people of the JSON and valid.h5 do not match one to one")
    arrays = {
        "joints_milli": np.round(raw[..., :2] * 1000).astype(np.int32),
        "flags": flags,
        "objpos": np.array([r[2][1:3] for r in rows], dtype=np.int32),
        "scale_milli": np.array([r[2][3] for r in rows], dtype=np.int32),
        "image": image,
        "image_names": np.array(list(images), dtype="S"),
        "image_size": np.array(sizes, dtype=np.int32),
        "train": selves[~is_val].astype(np.int32),
        "val": val.astype(np.int32),
        "val_center": v["center"].astype(np.float64),
        "val_scale": v["scale"].astype(np.float64),
        "val_norm": v["normalize"].astype(np.float64),
        "source_sha256": np.array(f"json={_sha256(json_path)};valid={_sha256(valid_path)}"),
    }
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)
    load_poses.cache_clear()
    return {"people": len(rows), "images": len(images), "train": int((~is_val).sum()), "val": len(val),
            "bytes": Path(out_path).stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hgstudy.mannequin.poses", description="rebuild mpii_poses.npz")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="convert mpii_annotations.json.gz + valid.h5")
    build.add_argument("json", type=Path)
    build.add_argument("valid", type=Path)
    build.add_argument("out", type=Path, nargs="?", default=POSES_FILE)
    args = parser.parse_args(argv)
    print(build_poses(args.json, args.valid, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
