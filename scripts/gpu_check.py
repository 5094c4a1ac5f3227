"""The GPU check behind `bash scripts/gpu-check.sh`: what the paper profile costs on a CUDA machine, in minutes.

Prints a summary and writes benchmarks/gpu.json with:
- the paper's network (8 stacks x 1 module, 256 features, 256 px input) trained and run for inference at batch 6
  and at the largest batch that fits (doubling, then bisecting, with bf16 autocast and channels_last): images/s,
  peak memory and first-step time with bf16 autocast, channels_last and torch.compile switched on one after the
  other from plain fp32 NCHW eager (`hgstudy.engine.bench.benchmark`, the training step `hgstudy train` runs);
- the data loader's samples/s from a crop store with 4, 8 and 16 worker processes (`hgstudy.data.bench`);
- 200 steps of the paper profile's training (params.yaml profiles.paper.train + models.s8x1, 8 loader processes,
  JPEGs) on a synthetic MPII mirror (scripts/paper_mirror.py) fetched by the real downloader: the loss must fall.
Parts run in that order of importance against a time budget (--budget, default 240 s); those that would not fit
are listed under "skipped". --cpu (GPU_CHECK_CPU=1): the same code with tiny sizes on the CPU, into
scratch/gpu-check-cpu.json, so that the check does not rot while no GPU is at hand.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch
from paper_mirror import SHARED, Server, build  # scripts/, beside this file

from hgstudy.core.errors import UserError
from hgstudy.data.bench import measure_loader
from hgstudy.data.download import acquire
from hgstudy.data.mpii import MPII
from hgstudy.engine.bench import Workload, benchmark
from hgstudy.engine.config import load_config
from hgstudy.engine.runtime import Runtime
from hgstudy.engine.train import train
from hgstudy.model.network import HourglassConfig
from hgstudy.model.size import summarize

ROOT = Path(__file__).resolve().parents[1]
# (precision, channels_last, compile): each switch turned on in turn
LADDER = (("fp32", False, False), ("bf16", False, False), ("bf16", True, False), ("bf16", True, True))
SIZES = {
    "cuda": {"model": {"stacks": 8, "modules": 1, "features": 256, "input_res": 256},
             "cap": {"train": 768, "infer": 1536}, "workers": (4, 8, 16), "loader_s": 3.0, "steps": 200,
             "people": 128, "min_s": 0.5, "overrides": {}},
    "cpu": {"model": {"stacks": 2, "modules": 1, "features": 16, "input_res": 64, "stem_channels": (8, 16)},
            "cap": {"train": 12, "infer": 24}, "workers": (1, 2), "loader_s": 0.5, "steps": 20, "people": 24,
            "min_s": 0.05, "overrides": {"features": 16, "input_res": 64, "stem_channels": [8, 16], "num_workers": 2}},
}


class Budget:
    def __init__(self, seconds: float):
        self.end, self.skipped = time.perf_counter() + seconds, []

    def left(self) -> float:
        return self.end - time.perf_counter()

    def allows(self, what: str, needs: float) -> bool:
        if self.left() >= needs:
            return True
        self.skipped.append(f"{what} (needs ~{needs:.0f} s, {max(self.left(), 0):.0f} s left)")
        print(f"gpu-check: skipping {what}: not enough time left", flush=True)
        return False


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def bench(config, batch: int, mode: str, device, precision, channels_last, compile_, min_s) -> dict:
    """One `benchmark` row, or the reason it could not run (out of memory, a failed compile)."""
    row = {"mode": mode, "batch": batch, "precision": precision, "channels_last": channels_last, "compile": compile_}
    try:
        result = benchmark(config, batch, mode, Runtime(device, precision, channels_last, compile_), repeats=3,
                           warmup=2, seconds=min_s, budget_s=30 * min_s)
        row |= {k: result[k] for k in ("images_per_s", "peak_mem_mb", "first_step_s")}
    except Exception as exc:  # out of memory, a compiler that fails: recorded, the other rows still run
        row["error"] = "out of memory" if out_of_memory(exc) else f"{type(exc).__name__}: {exc}"[:300]
    free_memory()
    print(f"  {mode:5s} batch {batch:4d} {precision} {'channels_last' if channels_last else 'NCHW':13s} "
          f"{'compiled' if compile_ else 'eager':8s} " + (f"{row['images_per_s']:9.1f} images/s, peak "
          f"{row['peak_mem_mb']:7.0f} MiB" if "error" not in row else row["error"]), flush=True)
    return row


def fits(config, batch: int, mode: str, runtime: Runtime) -> bool:
    try:
        work = Workload(config, batch, mode, runtime, fold_bn=True)
        work.step()
        work.step()
        return True
    except RuntimeError as exc:
        if not out_of_memory(exc):
            raise
        return False
    finally:
        work = None
        free_memory()


def largest_batch(config, mode: str, runtime: Runtime, start: int, cap: int) -> int:
    """The largest batch that trains (or infers) without running out of memory, up to `cap`."""
    low = start
    while low * 2 <= cap and fits(config, low * 2, mode, runtime):
        low *= 2
    high = min(low * 2, cap + 1)  # low fits, high does not (or is past the cap)
    while high - low > max(2, low // 8):
        mid = (low + high) // 2
        low, high = (mid, high) if fits(config, mid, mode, runtime) else (low, mid)
    return low


def mirror_data(tmp: Path, people: int, valid: int, annotations: Path) -> Path:
    """A synthetic MPII mirror served on 127.0.0.1, downloaded by `hgstudy download`'s code into tmp/data."""
    build(tmp / "mirror", annotations, train=people, valid=valid, datasets=("mpii",),
          log=lambda m: print(f"  {m}", flush=True))
    server = Server(tmp / "mirror", seconds=600)
    try:
        acquire("mpii", tmp / "data", mirror=server.url, pins=tmp / "mirror" / "pins.json", log=lambda m: None)
    finally:
        server.close()
    return tmp / "data"


def train_on_mirror(root: Path, out: Path, steps: int, valid: int, overrides: dict) -> dict:
    config = load_config(ROOT / "params.yaml", ["profiles.paper.train", "models.s8x1"],
                         {"steps": steps, "data_root": str(root), "val_every": steps // 2, "val_samples": valid,
                          "checkpoint_every": steps, "log_every": max(steps // 10, 1), **overrides})
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    final = train(config, out, progress=False)
    rows = [line.split("\t") for line in (out / "train.tsv").read_text().splitlines()]
    rows = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    losses = [float(r["loss"]) for r in rows]
    return {"steps": steps, "batch": config.batch_size, "num_workers": config.num_workers,
            "wall_s": time.perf_counter() - start, "loss_first_log": losses[0], "loss_last": losses[-1],
            "loss_fell": losses[-1] < losses[0], "loss_by_log": losses,
            "samples_per_s_last": float(rows[-1]["samples_per_s"]), "val_pckh": final.get("val_pckh"),
            "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None}


def describe(device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info |= {"gpu": p.name, "memory_gib": p.total_memory / 2**30, "capability": f"{p.major}.{p.minor}",
                 "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    return info


def run(cpu: bool, out: Path, budget_s: float, annotations: Path) -> dict:
    kind = "cpu" if cpu else "cuda"
    size, device, budget = SIZES[kind], torch.device(kind), Budget(budget_s)
    config = HourglassConfig(**size["model"], joints=16)
    report = {"kind": kind, "machine": describe(device), "model": config.to_dict(), **summarize(config),
              "budget_s": budget_s, "skipped": budget.skipped}
    started = time.perf_counter()
    cv2.setNumThreads(1)  # loader workers fork from here: one OpenCV thread each (as `hgstudy bench data`)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        tmp = Path(tmp)
        print("gpu-check: synthetic MPII mirror, downloaded and verified", flush=True)
        valid = max(8, size["people"] // 2)  # validation people with images
        root = mirror_data(tmp, size["people"], valid, annotations)
        print(f"gpu-check: the paper profile (s8x1), {size['steps']} steps on the mirror", flush=True)
        report["train_mirror"] = train_on_mirror(root, tmp / "run", size["steps"], valid, size["overrides"])
        t = report["train_mirror"]
        fell = "falls" if t["loss_fell"] else "DOES NOT FALL"
        print(f"  loss {t['loss_first_log']:.5f} -> {t['loss_last']:.5f} ({fell}), "
              f"{t['samples_per_s_last']:.1f} samples/s, {t['wall_s']:.0f} s", flush=True)
        print("gpu-check: batch 6, eager", flush=True)
        rows = report["batch6"] = []
        for mode in ("train", "infer"):
            rows += [bench(config, 6, mode, device, *c, size["min_s"]) for c in LADDER if not c[2]]
        print("gpu-check: data loader from a crop store (batches of 6)", flush=True)
        store = MPII(root, "train").prepare(root / "mpii" / "crops-train", workers=4, progress=False)
        dataset = MPII(root, "train", store=store)
        report["loader"] = []
        for workers in size["workers"]:
            if budget.allows(f"loader with {workers} workers", 3 * size["loader_s"] + 5):
                result = measure_loader(dataset, workers, size["loader_s"], batch=6)
                report["loader"].append({"workers": workers, "samples_per_s": result["samples_per_s"]})
                print(f"  {workers:2d} workers: {result['samples_per_s']:8.1f} samples/s", flush=True)
    torch.set_num_threads(os.cpu_count() or 1)  # measure_loader leaves one thread
    largest = report["largest"] = {"batch": {}, "results": []}
    print("gpu-check: largest batch (bf16, channels_last, eager)", flush=True)
    for mode in ("train", "infer"):
        if budget.allows(f"largest {mode} batch", 30):
            b = largest_batch(config, mode, Runtime(device, "bf16", True), 6, size["cap"][mode])
            largest["batch"][mode] = b
            print(f"  {mode}: {b}", flush=True)
            largest["results"] += [bench(config, b, mode, device, *c, size["min_s"]) for c in LADDER if not c[2]]
    print("gpu-check: torch.compile", flush=True)
    compile_s = 0.0
    for mode in ("train", "infer"):
        if budget.allows(f"compiled {mode} at batch 6", max(60.0, compile_s)):
            row = bench(config, 6, mode, device, *LADDER[-1], size["min_s"])
            compile_s = max(compile_s, row.get("first_step_s", 0.0))
            rows.append(row)
    for mode, b in largest["batch"].items():
        if budget.allows(f"compiled {mode} at batch {b}", 1.5 * max(compile_s, 60.0 if not cpu else 0.0)):
            largest["results"].append(bench(config, b, mode, device, *LADDER[-1], size["min_s"]))
    report["peak_mem_mb"] = max([r.get("peak_mem_mb", 0) for r in rows + largest["results"]]
                                + [report["train_mirror"]["peak_mem_mb"] or 0])
    report["elapsed_s"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"gpu-check: {report['elapsed_s']:.0f} s; written to {out}" + (
        f"; skipped: {'; '.join(budget.skipped)}" if budget.skipped else ""), flush=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", default=os.environ.get("GPU_CHECK_CPU") == "1",
                        help="tiny sizes on the CPU (a dry run of this script; also GPU_CHECK_CPU=1)")
    parser.add_argument("--out", type=Path, help="default benchmarks/gpu.json (--cpu: scratch/gpu-check-cpu.json)")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for all the parts (default 240)")
    parser.add_argument("--annotations", type=Path, default=SHARED,
                        help="folder with mpii/valid.h5 for the mirror (optional: else made from packaged poses)")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print(f"gpu-check: no CUDA GPU here (torch {torch.__version__}): nothing to check")
        return 0
    out = args.out or ROOT / ("scratch/gpu-check-cpu.json" if args.cpu else "benchmarks/gpu.json")
    try:
        report = run(args.cpu, out, args.budget, args.annotations)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0 if report["train_mirror"]["loss_fell"] else 1


if __name__ == "__main__":
    sys.exit(main())
