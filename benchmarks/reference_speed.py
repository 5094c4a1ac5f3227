"""hgstudy against princeton-vl/pytorch_stacked_hourglass at paper size, side by side on this CPU.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/reference_speed.py CHECKOUT \
        --json benchmarks/reference_cpu_avx2.json

CHECKOUT is a checkout of https://github.com/princeton-vl/pytorch_stacked_hourglass (its code is imported from
there, never copied here). Training: its `PoseNet(nstack, 256, 16)` as its `train.py` runs it (NHWC input,
its `calc_loss`, Adam) against hgstudy's network of the same size in `hgstudy train`'s step (fp32, the auto
memory format; the same Adam); inference: its eval-mode forward against hgstudy's (BatchNorm folded). Both
are timed in pairs of blocks, and a pair counts only while other processes used under 10% of the CPUs
(`hgstudy.engine.bench.ForeignLoad`). Prints a table; writes JSON with the machine's CPU flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from hgstudy.engine.bench import ForeignLoad, machine
from hgstudy.engine.config import TrainConfig
from hgstudy.engine.runtime import resolve_runtime
from hgstudy.engine.step import TrainStep, make_optimizer
from hgstudy.model.network import HourglassConfig, StackedHourglass, fold_batchnorm


def reference_step(stacks: int, batch: int, mode: str):
    from models.posenet import PoseNet  # from the checkout on sys.path

    torch.manual_seed(0)
    net = PoseNet(stacks, 256, 16)
    imgs, heatmaps = torch.rand(batch, 256, 256, 3), torch.rand(batch, 16, 64, 64)
    if mode == "infer":
        net.eval()

        def step():
            with torch.no_grad():
                net(imgs)
        return step
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)

    def step():
        loss = net.calc_loss(net(imgs)[None], heatmaps).sum()  # train.py: the mean over the batch of the stacks' sum
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def hgstudy_step(stacks: int, batch: int, mode: str):
    torch.manual_seed(0)
    config = HourglassConfig(stacks=stacks)
    runtime = resolve_runtime("cpu", "fp32", "auto")
    model = StackedHourglass(config)
    x = runtime.input(torch.rand(batch, 3, 256, 256))
    if mode == "infer":
        model = runtime.model(fold_batchnorm(model))

        def step():
            with torch.no_grad():
                model(x)
        return step
    runtime.model(model)
    train = TrainStep(model, make_optimizer(TrainConfig(optimizer="adam", lr=1e-3), model), runtime, [1.0] * stacks,
                      False)
    batch_data = {"image": x, "target": torch.rand(batch, 16, 64, 64), "target_weight": torch.ones(batch, 16)}
    return lambda: train(batch_data)


def paired(reference, ours, batch: int, repeats: int, budget_s: float, max_foreign: float = 0.10) -> dict:
    for _ in range(2):
        reference(), ours()
    pairs, deadline = [], time.perf_counter() + budget_s
    while sum(p[2] < max_foreign for p in pairs) < repeats and time.perf_counter() < deadline:
        rates, foreign = [], 0.0
        for step in (reference, ours):
            load, start = ForeignLoad(), time.perf_counter()
            step()
            rates.append(batch / (time.perf_counter() - start))
            foreign = max(foreign, load.fraction())
        pairs.append((*rates, foreign))
    used = [p for p in pairs if p[2] < max_foreign] or sorted(pairs, key=lambda p: p[2])[:repeats]
    ratios = [o / r for r, o, _ in used]
    return {"reference_images_per_s": statistics.median(r for r, _, _ in used),
            "hgstudy_images_per_s": statistics.median(o for _, o, _ in used), "ratio": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)], "clean_pairs": sum(p[2] < max_foreign for p in pairs),
            "pairs": len(pairs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of princeton-vl/pytorch_stacked_hourglass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per comparison at most")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.checkout / "models" / "posenet.py").is_file():
        print(f"{args.checkout} is not a checkout of pytorch_stacked_hourglass (no models/posenet.py)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(args.checkout))
    cases = [("train", 2, 6), ("infer", 8, 6)]  # 2 x 256 @ 256 training, 8 x 256 @ 256 inference, batch 6
    results = {"machine": machine(), "cases": []}
    for mode, stacks, batch in cases:
        r = paired(reference_step(stacks, batch, mode), hgstudy_step(stacks, batch, mode), batch, args.repeats,
                   args.budget)
        results["cases"].append({"mode": mode, "stacks": stacks, "features": 256, "input_res": 256, "batch": batch,
                                 "precision": "fp32", **r})
        low, high = r["ratio_range"]
        print(f"{mode:>5} {stacks} x 256 @ 256, batch {batch}: reference {r['reference_images_per_s']:.2f}, "
              f"hgstudy {r['hgstudy_images_per_s']:.2f} images/s, ratio {r['ratio']:.2f} [{low:.2f}-{high:.2f}] "
              f"({r['clean_pairs']} clean of {r['pairs']} pairs)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
