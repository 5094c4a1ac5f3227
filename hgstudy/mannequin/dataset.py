"""MPII Mannequins: the real MPII poses, rendered on the CPU at the crop resolution. Nothing to download.

Each sample is drawn directly in crop space: the augmentation is applied to the joints of every person of
the image (the annotated one and the other annotated people, at their real positions and scales), then
background, clutter, people and occluders are drawn with OpenCV primitives. No image is warped. A horizontal
flip is the one exception to "draw in crop space": the crop is drawn unflipped and then mirrored
(a pixel permutation, not a resampling), so a flipped sample is exactly the mirror image with its left and
right labels swapped, as `annotate_sample` does for the targets.

Randomness comes from `SampleDataset.rng`, seeded with (seed, split, index, epoch): the same seed and index give the
same image on every machine; validation samples (no augmentation, epoch 0) never change; training samples
are re-rendered with fresh augmentation and appearance each epoch (`set_epoch`).

`norm` (PCKh head size) is valid.h5's `normalize` for validation people; training people have no head box
in the annotation file, so theirs is 25 x MPII's scale, which matches `normalize` within 0.06% for every
validation person (see `poses.HEAD_SIZE_PER_SCALE`).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import affine_matrix, apply_affine
from hgstudy.data.augment import Augmentation
from hgstudy.data.sample import SampleDataset, annotate_sample
from hgstudy.mannequin import render, scene
from hgstudy.mannequin.poses import Poses, load_poses

SPLITS = ("train", "val")
BACKGROUND_PEOPLE_P = 0.3  # chance of unannotated people in the background (crowds are common on MPII)


class MannequinDataset(SampleDataset):
    """A torch Dataset of rendered MPII people: 22,246 train / 2,958 val samples, sample dict of `hgstudy.data`.

    split: "train" (augmented, re-rendered every epoch) or "val" (fixed). input_res: crop side (heatmaps
    input_res // 4). augmentation: a `augment.AUGMENTATION_MODES` mode for train (with "none", train
    crops are framed like val ones; appearance and scene still change each epoch). other_people: draw the
    other annotated people of the image. poses: a `Poses` (default: the packaged file).
    """

    layout = "mpii"

    def __init__(self, split: str = "train", input_res: int = 128, sigma: float = 1.0, augmentation: str = "paper",
                 seed: int = 0, other_people: bool = True, poses: Poses | None = None):
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        super().__init__(split == "train", input_res, sigma, augmentation, seed)
        self.split = split
        self.other_people = other_people
        self.poses = load_poses() if poses is None else poses
        self.people = self.poses.split(split)
        self.center, self.scale = self.poses.crop(split)
        self.norm = self.poses.head_size(split)
        p = self.poses
        self.draw_joints = render.complete_poses(p.joints, p.annotated, p.objpos, p.scale)
        self.hidden = p.annotated & ~p.visible
        self.hidden[:, list(render.DERIVED_FLAGS)] = False
        self._order, self._start = p.people_of_image()

    def __len__(self) -> int:
        return len(self.people)

    def __getitem__(self, index: int) -> dict:
        return self.render(index)[0]

    def render(self, index: int, epoch: int | None = None, aug: Augmentation | None = None) -> tuple[dict, np.ndarray]:
        """(sample, owner): `owner` (R,R) uint8 says which part is on top at each pixel (`render` ids).

        aug: force an augmentation (default: drawn from the sample's random stream; none for val).
        """
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = self.rng(index, epoch)
        drawn = self.augmentation(index, rng)  # drawn even when `aug` is given: the scene's draws stay the same
        aug = drawn if aug is None else aug
        person = int(self.people[index])
        p, res = self.poses, self.res
        center, scale = self.center[index], float(self.scale[index])
        sample = annotate_sample(p.joints[person], p.annotated[person], p.visible[person], center, scale,
                                 float(self.norm[index]), index, res, aug, self.flip, self.sigma)
        # Drawn unflipped; mirrored at the end (see the module docstring).
        to_crop = affine_matrix(center, scale * aug.scale, res, aug.rotation, flip=False)
        zoom = float(np.sqrt(abs(np.linalg.det(to_crop[:, :2]))))
        horizontal = to_crop[:, 0] / np.hypot(*to_crop[:, 0])
        head = 200 * p.scale[person] / 6 * zoom  # MPII: head length = 200 * scale / 6
        bank = scene.texture_bank(res)
        u = rng.random(4)
        floor = (apply_affine(to_crop, [center[0], center[1] + (u[0] - 0.2) * 120 * scale]), horizontal)
        image = scene.background(rng, res, bank, floor)
        scene.clutter(image, rng, res, head)
        light = np.array([np.cos(u[1] * 2 * np.pi), np.sin(u[1] * 2 * np.pi)])
        if u[2] < BACKGROUND_PEOPLE_P:
            self._background_people(image, rng, to_crop, head, light)
        owner = np.zeros((res, res), np.uint8)
        if self.other_people:
            self._other_people(image, owner, rng, person, to_crop, zoom, light)
        pts = apply_affine(to_crop, self.draw_joints[person])
        hidden = self.hidden[person]
        look = render.sample_appearance(rng)
        render.draw_shapes(render.person_shapes(pts, hidden, head, look, light), image, owner)
        inside = np.all((np.floor(pts + 0.5) >= 0) & (np.floor(pts + 0.5) <= res - 1), axis=1)
        shown = p.annotated[person] & p.visible[person] & inside
        scene.cover_hidden(image, owner, pts, np.flatnonzero(hidden & inside), pts[shown], head, rng, horizontal)
        w, h = p.image_size[p.image[person]]
        corners = apply_affine(to_crop, [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        image = scene.finish(image, owner, rng, bank, res, res / 256, corners)
        if aug.flip:
            image, owner = cv2.flip(image, 1), cv2.flip(owner, 1)
        sample["image"] = to_float(image, aug.color_gain)
        return sample, owner

    def _other_people(self, image, owner, rng, person: int, to_crop, zoom: float, light) -> None:
        """The other annotated people of the image, at their real places, farthest (smallest) first."""
        img = self.poses.image[person]
        others = self._order[self._start[img]:self._start[img + 1]]
        others = others[others != person]
        res = self.res
        for q in others[np.argsort(self.poses.scale[others], kind="stable")]:
            head = 200 * self.poses.scale[q] / 6 * zoom
            pts = apply_affine(to_crop, self.draw_joints[q])
            lo, hi = pts.min(axis=0) - 1.5 * head, pts.max(axis=0) + 1.5 * head
            if np.any(hi < 0) or np.any(lo > res - 1) or head < 1.5:
                continue
            look = render.sample_appearance(rng)
            shapes = render.person_shapes(pts, self.hidden[q], head, look, light, detail=head > 6)
            render.draw_shapes(shapes, image, owner, render.OTHER_PERSON)

    def _background_people(self, image, rng, to_crop, head: float, light) -> None:
        """One to three unannotated people from anywhere in MPII, smaller, somewhere in the crop."""
        rot = to_crop[:, :2] / np.sqrt(abs(np.linalg.det(to_crop[:, :2])))
        for _ in range(int(rng.integers(1, 4))):
            u = rng.random(4)
            q = int(u[0] * len(self.draw_joints))
            size = head * (0.35 + 0.5 * u[1])
            their_head = 200 * self.poses.scale[q] / 6
            rel = (self.draw_joints[q] - self.poses.objpos[q]) * (size / their_head)
            pts = rel @ rot.T + u[2:4] * self.res
            look = render.sample_appearance(rng)
            render.draw_shapes(render.person_shapes(pts, self.hidden[q], size, look, light, detail=size > 6), image)


def to_float(image: np.ndarray, gain=(1.0, 1.0, 1.0)) -> np.ndarray:
    """uint8 (R,R,3) RGB -> float32 (3,R,R) in [0,1] with a per-channel colour gain (clipped)."""
    gain = np.asarray(gain, dtype=np.float32) / 255
    out = np.empty((3, *image.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.multiply(image[:, :, c], gain[c], out=out[c])
    if np.any(gain > 1 / 255):
        np.minimum(out, 1.0, out=out)
    return out


def render_speed(seconds: float = 3.0, input_res: int = 256, split: str = "train") -> float:
    """Samples per second (image + targets) rendered by this process on one core, for `hgstudy bench data`."""
    dataset = MannequinDataset(split, input_res=input_res)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        dataset[0]  # builds the texture bank outside the timing
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            dataset[count % len(dataset)]
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(threads)
