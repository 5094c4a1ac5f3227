"""Data-pipeline speed (`hgstudy bench data`).

`hgstudy bench data` measures, on one core (torch and OpenCV limited to one thread), how many augmented
samples per second the real dataset code (`hgstudy.data.mpii.PoseDataset`) produces from synthetic
1280x720 images of MPII's size: from an already decoded image, from JPEG files, and from a prepared crop
store; and, in the same run, from an equivalent naive per-pixel implementation over a few samples, as the
reference for the speed-up. Peak memory: Python/numpy allocations traced during a short extra pass
(tracemalloc) per case, and the process's maximum resident size.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from hgstudy.core.errors import UserError
from hgstudy.core.geometry import compose_affine, invert_affine, origin_shift
from hgstudy.data.split import PoseDataset, Split
from hgstudy.data.store import CropStore, ImageFolder

WIDTH, HEIGHT, JOINTS = 1280, 720, 16


def synthetic_split(people: int, images: int, seed: int = 0) -> Split:
    """People of MPII-like size (scale 2-4, box 500-1000 px after x1.25) with all 16 joints inside their box."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(2.0, 4.0, people)
    center = np.stack([rng.uniform(500, 780, people), rng.uniform(300, 420, people)], axis=1)
    joints = center[:, None, :] + rng.uniform(-60, 60, (people, JOINTS, 2)) * scale[:, None, None]
    names = tuple(f"{i % images:04d}.jpg" for i in range(people))
    return Split(joints, np.ones((people, JOINTS), bool), np.ones((people, JOINTS), np.float32), center, scale,
                 np.full(people, 60.0), names, "synthetic")


def synthetic_image(rng: np.random.Generator) -> np.ndarray:
    """A 1280x720 BGR image with photo-like detail (smoothed noise), about 150-300 kB as a JPEG."""
    noise = rng.integers(0, 256, (HEIGHT // 4, WIDTH // 4, 3), dtype=np.uint8)
    image = cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return cv2.add(image, rng.integers(0, 24, (HEIGHT, WIDTH, 3), dtype=np.uint8))


class DecodedImages:
    """An image source that hands out already decoded images (what the fast path costs without JPEG)."""

    def __init__(self, images: list[np.ndarray], names, pixel_origin: float = 1.0):
        self.images = {f"{i:04d}.jpg": im for i, im in enumerate(images)}
        self.names, self.pixel_origin, self.matrix = list(names), pixel_origin, origin_shift(pixel_origin)

    def __call__(self, index: int):
        return self.images[self.names[index]], self.matrix


def naive_sample(dataset: PoseDataset, index: int) -> dict:
    """The same sample as `dataset[index]`, computed pixel by pixel in Python (the speed reference)."""
    aug = dataset.augmentation(index)
    sample = dataset.annotation(index, aug)
    image, to_source = dataset.images(index)
    back = invert_affine(compose_affine(sample["matrix_input"], invert_affine(to_source)))  # crop -> source
    res, (h, w) = dataset.res, image.shape[:2]
    out = np.zeros((3, res, res), np.float32)
    for v in range(res):
        for u in range(res):
            x = back[0, 0] * u + back[0, 1] * v + back[0, 2]
            y = back[1, 0] * u + back[1, 1] * v + back[1, 2]
            x0, y0 = math.floor(x), math.floor(y)
            fx, fy = x - x0, y - y0
            for c in range(3):
                value = 0.0
                for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                                       (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
                    yy, xx = y0 + dy, x0 + dx
                    if 0 <= yy < h and 0 <= xx < w:
                        value += weight * float(image[yy, xx, 2 - c])
                out[c, v, u] = min(value * aug.color_gain[c] / 255.0, 1.0)
    hm = res // 4
    target = np.zeros((JOINTS, hm, hm), np.float32)
    radius = math.ceil(3 * dataset.sigma)
    for j, (x, y) in enumerate(sample["joints_hm"].astype(np.float64)):
        if sample["target_weight"][j] == 0:
            continue
        for v in range(hm):
            for u in range(hm):
                if abs(u - round(x)) <= radius and abs(v - round(y)) <= radius:
                    target[j, v, u] = math.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * dataset.sigma**2))
    sample["image"], sample["target"] = out, target
    return sample


def measure(dataset: PoseDataset, seconds: float, minimum: int = 3) -> dict:
    """Samples per second over about `seconds`, then the traced peak of a short extra pass."""
    count, start = 0, time.perf_counter()
    while count < minimum or time.perf_counter() - start < seconds:
        dataset[count % len(dataset)]
        count += 1
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    for i in range(min(count, 20)):
        dataset[i % len(dataset)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"samples": count, "seconds": elapsed, "samples_per_s": count / elapsed,
            "ms_per_sample": 1e3 * elapsed / count, "peak_traced_mib": peak / 2**20}


def measure_loader(dataset: PoseDataset, workers: int, seconds: float, batch: int = 16) -> dict:
    """Samples per second through a torch DataLoader with `workers` processes (after the first batch)."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, persistent_workers=workers > 0,
                        sampler=RandomSampler(dataset, replacement=True, num_samples=10**9))
    # forked workers inherit cv2.setNumThreads(1) from run_data (calling it inside a forked worker can hang)
    batches = iter(loader)
    next(batches)  # workers started
    count, start = 0, time.perf_counter()
    while count < 3 * batch or time.perf_counter() - start < seconds:
        count += len(next(batches)["index"])
    elapsed = time.perf_counter() - start
    del batches, loader
    torch.set_num_threads(1)
    return {"samples": count, "seconds": elapsed, "samples_per_s": count / elapsed,
            "ms_per_sample": 1e3 * elapsed / count, "peak_traced_mib": None}


def max_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def run_data(seconds: float = 2.0, naive_samples: int = 2, people: int = 64, images: int = 8, res: int = 256,
             augment: str = "paper", workers: int = 0, workdir: Path | None = None, log=print) -> dict:
    """Run the data benchmark; return its results (see module docstring)."""
    if seconds <= 0 or naive_samples < 1 or people < 1 or images < 1 or workers < 0:
        raise UserError("--seconds must be > 0, --naive-samples, --people, --images >= 1 and --workers >= 0")
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    split = synthetic_split(people, images)
    pictures = [synthetic_image(rng) for _ in range(images)]
    results: dict = {"cases": {}, "settings": {"res": res, "targets": JOINTS, "augment": augment, "people": people,
                                               "images": images, "image_size": [WIDTH, HEIGHT], "threads": 1}}
    cases = results["cases"]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, picture in enumerate(pictures):
            cv2.imwrite(str(folder / f"{i:04d}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        jpeg_kb = np.mean([p.stat().st_size for p in folder.iterdir()]) / 1024

        def dataset(source):
            return PoseDataset(split, source, res=res, augment=augment)

        fast = dataset(DecodedImages(pictures, split.names))
        log("decoded image -> sample ...")
        cases["decoded image -> sample"] = measure(fast, seconds)
        log(f"naive per-pixel reference ({naive_samples} samples) ...")
        start = time.perf_counter()
        diffs = []
        for i in range(naive_samples):
            slow, quick = naive_sample(fast, i), fast[i]
            diffs.append([float(np.abs(slow[k] - quick[k]).max()) for k in ("image", "target")])
        elapsed = time.perf_counter() - start
        cases["naive per-pixel -> sample"] = {"samples": naive_samples, "seconds": elapsed,
                                              "samples_per_s": naive_samples / elapsed,
                                              "ms_per_sample": 1e3 * elapsed / naive_samples, "peak_traced_mib": None}
        results["naive_max_abs_difference"] = {"image": max(d[0] for d in diffs), "target": max(d[1] for d in diffs)}
        log("JPEG decode ...")
        paths = sorted(folder.iterdir())
        count, start = 0, time.perf_counter()
        while count < 3 or time.perf_counter() - start < seconds / 2:
            cv2.imread(str(paths[count % len(paths)]), cv2.IMREAD_COLOR)
            count += 1
        elapsed = time.perf_counter() - start
        cases["JPEG decode only (per image)"] = {"samples": count, "seconds": elapsed, "samples_per_s": count / elapsed,
                                                 "ms_per_sample": 1e3 * elapsed / count, "peak_traced_mib": None}
        log("JPEG file -> sample ...")
        cases["JPEG file -> sample"] = measure(dataset(ImageFolder(folder, split.names)), seconds)
        log("preparing a crop store ...")
        start = time.perf_counter()
        fast_folder = dataset(ImageFolder(folder, split.names))
        store_dir = fast_folder.prepare(Path(tmp) / "store", progress=False)
        results["store_prepare_s_per_person"] = (time.perf_counter() - start) / people
        log("crop store (memory-mapped) -> sample ...")
        cases["crop store -> sample"] = measure(dataset(CropStore(store_dir)), seconds)
        if workers:
            log(f"crop store -> batches of 16, DataLoader with {workers} worker processes ...")
            name = f"crop store -> batch, {workers} workers"
            cases[name] = measure_loader(dataset(CropStore(store_dir)), workers, seconds)
    naive = cases["naive per-pixel -> sample"]["samples_per_s"]
    for case in cases.values():
        case["ratio_vs_naive"] = case["samples_per_s"] / naive
    results["jpeg_kib"] = float(jpeg_kb)
    results["max_rss_mib"] = max_rss_mib()
    results["projected_16_cores_from_store"] = 16 * cases["crop store -> sample"]["samples_per_s"]
    results["target_600_per_s_met"] = cases["decoded image -> sample"]["samples_per_s"] >= 600
    return results


def format_table(results: dict) -> str:
    s = results["settings"]
    lines = [f"one core, {s['image_size'][0]}x{s['image_size'][1]} images, {s['res']}x{s['res']} samples with "
             f"{s['targets']} targets, augmentation {s['augment']!r}",
             f"{'what':<34} {'samples/s':>10} {'ms/sample':>10} {'x naive':>9} {'peak traced MiB':>16}"]
    for name, case in results["cases"].items():
        peak = "" if case["peak_traced_mib"] is None else f"{case['peak_traced_mib']:.1f}"
        lines.append(f"{name:<34} {case['samples_per_s']:>10.1f} {case['ms_per_sample']:>10.2f} "
                     f"{case['ratio_vs_naive']:>9.0f} {peak:>16}")
    diff = results["naive_max_abs_difference"]
    rss = results["max_rss_mib"]
    lines += [f"naive vs fast max |difference|: image {diff['image']:.4f}, target {diff['target']:.2e}",
              f"process peak resident memory: {rss:.0f} MiB" if rss is not None else "",
              f"store: {results['store_prepare_s_per_person'] * 1e3:.1f} ms per person to prepare; 16 cores at "
              f"this rate: ~{results['projected_16_cores_from_store']:,.0f} samples/s (projection, not measured)",
              ">= 600 samples/s from a decoded image on one core: "
              + ("yes" if results["target_600_per_s_met"] else "NO")]
    return "\n".join(line for line in lines if line)


def add_arguments(parser) -> None:
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each fast case (default 2)")
    parser.add_argument("--naive-samples", type=int, default=2, help="samples of the slow per-pixel reference")
    parser.add_argument("--people", type=int, default=64, help="synthetic people (default 64)")
    parser.add_argument("--images", type=int, default=8, help="synthetic 1280x720 images (default 8)")
    parser.add_argument("--res", type=int, default=256, help="input resolution (default 256)")
    parser.add_argument("--augment", default="paper", choices=["paper", "official", "none"])
    parser.add_argument("--workers", type=int, default=0,
                        help="also measure a DataLoader with this many worker processes over the store (all cores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")


def main(args) -> None:
    results = run_data(args.seconds, args.naive_samples, args.people, args.images, args.res, args.augment,
                       args.workers, log=lambda m: print(m, file=sys.stderr))
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
