"""How to share a CPU's cores between torch and the data: the measurements behind `num_workers: auto`.

    python benchmarks/loading.py --json benchmarks/cpu/avx2/loading.json

For 8 x 1 networks of three sizes (the CPU study's 32 features at 64 px, 64 features at 64 px and at 128 px),
batch 16, fp32 channels_last with the flat optimiser (what `hgstudy train` runs), it times in interleaved blocks:
the training step alone on every core and on one core less, and the step with its mannequins rendered in the
training process (every core) or by one worker process (torch on the other cores). A block counts only while
other processes used under 10% of the CPUs (`hgstudy.engine.bench.ForeignLoad`, which counts the workers as
this process's own). Prints a table; writes JSON with the machine's CPU flags and the rule's choice per network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from hgstudy.engine.bench import Workload, machine
from hgstudy.engine.runtime import Loading, resolve_loading, resolve_runtime, usable_cores
from hgstudy.model.network import HourglassConfig
from hgstudy.model.size import summarize

NETWORKS = {"f32-64": (32, 64), "f64-64": (64, 64), "f64-128": (64, 128)}


def measure(config: HourglassConfig, repeats: int, seconds: float, max_foreign: float = 0.10) -> dict:
    cores = usable_cores()
    runtime = resolve_runtime("cpu", "fp32", True)
    cases = {
        "train, all cores": Workload(config, 16, "train", runtime, False),
        "train, one core less": Workload(config, 16, "train", runtime, False),
        "with data, in process": Workload(config, 16, "train", runtime, False, Loading(0, cores, "")),
        "with data, 1 worker": Workload(config, 16, "train", runtime, False, Loading(1, max(1, cores - 1), "")),
    }
    # the step alone (a fixed batch) with the thread counts of the two ways (Workload.block applies them)
    cases["train, all cores"].loading = Loading(0, cores, "")
    cases["train, one core less"].loading = Loading(0, max(1, cores - 1), "")
    iterations = {}
    for name, work in cases.items():
        work.block(2)
        iterations[name] = max(1, round(seconds * work.block(1)[0] / 16))
    rows, blocks = {name: [] for name in cases}, 0
    while min(len(v) for v in rows.values()) < repeats and blocks < 20 * repeats:
        for name, work in cases.items():
            rate, foreign = work.block(iterations[name])
            blocks += 1
            if foreign < max_foreign:
                rows[name].append(rate)
    return {name: statistics.median(v) if v else float("nan") for name, v in rows.items()} | {
        "clean_blocks": {name: len(v) for name, v in rows.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="clean blocks per case")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one block")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = {"machine": machine(), "batch": 16, "networks": {}}
    print(f"{'network':>8} {'GFLOP':>6} | train: all cores, one less | with data: in process, 1 worker | auto")
    for name, (features, res) in NETWORKS.items():
        config = HourglassConfig(stacks=8, modules=1, features=features, stem_channels=(16, 32), input_res=res)
        gflop = summarize(config)["gflops"]
        r = measure(config, args.repeats, args.seconds)
        auto = resolve_loading("auto", torch.device("cpu"), gflop)
        results["networks"][name] = {"features": features, "input_res": res, "gflop_per_sample": gflop,
                                     "images_per_s": r, "auto": auto.reason}
        print(f"{name:>8} {gflop:6.2f} | {r['train, all cores']:6.1f} {r['train, one core less']:6.1f}"
              f"      | {r['with data, in process']:6.1f} {r['with data, 1 worker']:6.1f}            | "
              f"{'1 worker' if auto.workers else 'in process'}", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
