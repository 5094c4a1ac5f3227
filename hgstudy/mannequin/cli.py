"""`hgstudy render mannequin` (rendered samples with their joints drawn, and a contact sheet) and
`hgstudy bench mannequin` (how fast the renderer makes samples)."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.joints import MPII_FLIP, MPII_SKELETON
from hgstudy.mannequin.dataset import MannequinDataset, render_speed

# Right side red, left side blue, middle green (RGB).
_RIGHT = {0, 1, 2, 10, 11, 12}
_LEFT = {3, 4, 5, 13, 14, 15}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["mannequin"], help="what to render")
    parser.add_argument("--split", choices=["train", "val"], default="val")
    parser.add_argument("--count", type=int, default=16, help="number of samples")
    parser.add_argument("--start", type=int, default=0, help="index of the first sample")
    parser.add_argument("--res", type=int, default=256, help="input resolution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int, default=0, help="training epoch (train split only)")
    parser.add_argument("--columns", type=int, default=4, help="columns of the contact sheet")
    parser.add_argument("--out", type=Path, required=True, help="output folder")


def _colour(j: int) -> tuple[int, int, int]:
    return (230, 40, 40) if j in _RIGHT else (40, 90, 255) if j in _LEFT else (40, 200, 60)


def draw_joints(sample: dict) -> np.ndarray:
    """The sample's image as uint8 RGB with its annotated joints and skeleton; hidden joints hollow."""
    image = np.ascontiguousarray((sample["image"].transpose(1, 2, 0) * 255).round().astype(np.uint8))
    res = image.shape[0]
    # Joints in input-crop pixels in the image's own left/right roles: heatmap joints x 4 (pixel-centre aligned).
    pts = (np.asarray(sample["joints_hm"], np.float64) + 0.5) * (res / (res // 4)) - 0.5
    weight = np.asarray(sample["target_weight"]) > 0
    # Visibility follows the joints' roles: after a flip (mirroring matrix), role j is annotated joint MPII_FLIP[j].
    flipped = np.linalg.det(np.asarray(sample["matrix_input"])[:, :2]) < 0
    visible = np.asarray(sample["visible"])[MPII_FLIP if flipped else slice(None)] > 0
    thick = max(1, res // 128)
    for a, b in MPII_SKELETON:
        if weight[a] and weight[b]:
            cv2.line(image, tuple(int(v) for v in np.rint(pts[a])), tuple(int(v) for v in np.rint(pts[b])),
                     _colour(b if b not in (6, 7) else a), thick, cv2.LINE_AA)
    for j in np.flatnonzero(weight):
        centre = tuple(int(v) for v in np.rint(pts[j]))
        cv2.circle(image, centre, 2 * thick + 1, _colour(j), -1 if visible[j] else thick, cv2.LINE_AA)
    return image


def contact_sheet(images: list[np.ndarray], columns: int, gap: int = 4) -> np.ndarray:
    res = images[0].shape[0]
    rows = (len(images) + columns - 1) // columns
    sheet = np.full((rows * (res + gap) + gap, columns * (res + gap) + gap, 3), 255, np.uint8)
    for k, image in enumerate(images):
        y, x = gap + (k // columns) * (res + gap), gap + (k % columns) * (res + gap)
        sheet[y:y + res, x:x + res] = image
    return sheet


def main(args: argparse.Namespace) -> int:
    if args.count < 1 or args.columns < 1:
        raise UserError("--count and --columns must be at least 1")
    dataset = MannequinDataset(args.split, input_res=args.res, seed=args.seed)
    if not 0 <= args.start or args.start + args.count > len(dataset):
        raise UserError(f"--start {args.start} --count {args.count} outside the {len(dataset)} {args.split} samples")
    dataset.set_epoch(args.epoch)
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for i in range(args.start, args.start + args.count):
        image = draw_joints(dataset[i])
        cv2.imwrite(str(args.out / f"{args.split}_{i:05d}.png"), image[:, :, ::-1])
        drawn.append(image)
    sheet = args.out / f"{args.split}_contact_sheet.png"
    cv2.imwrite(str(sheet), contact_sheet(drawn, args.columns)[:, :, ::-1])
    print(f"wrote {len(drawn)} samples and {sheet}")
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent on each resolution")
    parser.add_argument("--res", type=int, nargs="+", default=[64, 128, 256], help="input resolutions")
    parser.add_argument("--split", choices=["train", "val"], default="train")


def main_bench(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        raise UserError("--seconds must be positive")
    print(f"mannequin {args.split} samples (image + targets) per second, one core")
    for res in args.res:
        print(f"{res:>5} px  {render_speed(args.seconds, res, args.split):8.1f}")
    return 0
