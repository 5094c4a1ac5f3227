"""Do the fast paths train like the plain one? The study's recipe trained both ways, over seeds.

    python benchmarks/numerics.py --variant s8x1 --seeds 0 1 2 --json benchmarks/cpu/avx2/numerics.json

Each seed trains the variant with the CPU profile of params.yaml twice: `plain` (fp32, NCHW, data rendered in
the training process on every core: the public ports' way) and `auto` (what the study runs: the automatic
precision, memory format and sharing of the cores). The flat optimiser is in both: it is torch's update bit for
bit (tests/engine/test_optim.py). What differs is rounding (kernels, summation order, thread count), so the
two runs of one seed drift apart; the question is whether they drift further than seeds differ. Prints the
final validation scores per run and the mean difference against the spread over seeds; writes JSON with every
run's validation curve.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from hgstudy.engine.bench import machine
from hgstudy.engine.train import train
from hgstudy.study.configs import check_every_run, variant_config
from hgstudy.study.params import open_study

MODES = {"plain": {"precision": "fp32", "channels_last": False, "num_workers": 0}, "auto": {}}
SCORES = ("ablation", "pckh", "auc")


def run(params: dict, variant: str, seed: int, mode: str, folder: Path) -> dict:
    config = variant_config(params, variant, seed, MODES[mode])
    start = time.perf_counter()
    train(config, folder, progress=False)
    val = pd.read_csv(folder / "val.tsv", sep="\t")
    log = pd.read_csv(folder / "train.tsv", sep="\t")
    return {"mode": mode, "seed": seed, "wall_s": time.perf_counter() - start,
            "samples_per_s": float(log.samples_per_s.median()), "final": {k: float(val[k].iloc[-1]) for k in SCORES},
            "curve": {"step": val.step.tolist(), **{k: val[k].tolist() for k in SCORES}},
            "final_loss": float(log.loss.iloc[-1])}


def summary(runs: list[dict]) -> dict:
    """Per score: each mode's mean and sd over seeds, and the mean over seeds of (auto - plain)."""
    out = {}
    for key in SCORES:
        by_mode = {m: [r["final"][key] for r in runs if r["mode"] == m] for m in MODES}
        diffs = [a["final"][key] - p["final"][key] for a in runs for p in runs
                 if a["mode"] == "auto" and p["mode"] == "plain" and a["seed"] == p["seed"]]
        out[key] = {**{f"{m}_mean": statistics.mean(v) for m, v in by_mode.items()},
                    **{f"{m}_sd": statistics.stdev(v) if len(v) > 1 else float("nan") for m, v in by_mode.items()},
                    "mean_difference": statistics.mean(diffs), "differences": diffs}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--variant", default="s8x1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    params = check_every_run(open_study(params=args.params)).params
    results = {"machine": machine(), "variant": args.variant, "profile": params["profile"], "modes": MODES,
               "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for seed in args.seeds:
            for mode in MODES:
                r = run(params, args.variant, seed, mode, root / f"{mode}-{seed}")
                results["runs"].append(r)
                f = r["final"]
                print(f"seed {seed} {mode:>5}: ablation {f['ablation']:.2f} pckh {f['pckh']:.2f} auc {f['auc']:.2f} "
                      f"({r['samples_per_s']:.1f} samples/s, {r['wall_s']:.0f} s)", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1) + "\n")
    if len(args.seeds) > 1:
        results["summary"] = summary(results["runs"])
        for key, s in results["summary"].items():
            print(f"{key:>9}: plain {s['plain_mean']:.2f} (sd {s['plain_sd']:.2f}), auto {s['auto_mean']:.2f} "
                  f"(sd {s['auto_sd']:.2f}); auto - plain {s['mean_difference']:+.2f} on average")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
