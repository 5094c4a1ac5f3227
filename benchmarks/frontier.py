"""Which recipe learns most per CPU-minute? Candidates trained under the CPU profile, scored on the ablation's measure.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/frontier.py \
        --candidates base linear ... --seeds 0 --variants s8x1 --report benchmarks/frontier

Each candidate is a set of `profiles.cpu.train` settings replacing params.yaml's (CANDIDATES below). Runs go two
at a time, each pinned to one core with one torch thread and its data rendered in its own process (so a run's
CPU time is its wall time on one core), validated once at the end on the training-time validation people with
the flip test. A run's row: the final ablation measure and PCKh Total, its CPU minutes, its training loss. The
JSON accumulates (a candidate x seed already measured is skipped); `--report DIR` writes the frontier table
(frontier.tsv: mean and range over seeds per candidate) and plot (frontier.png: ablation measure against CPU
minutes per run, the chosen point marked, the data stage's baselines drawn).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FAST = {"optimizer": "rmsprop", "schedule": "linear", "warmup": 32, "lr": 4e-3}  # the one-cycle family's base
CANDIDATES = {  # name -> settings that replace the profile's (params.yaml profiles.cpu.train)
    "base": {},  # the committed profile: RMSprop 2e-3, x0.2 at 320 of 384 steps
    "base_1152": {"steps": 1152, "lr_steps": [960]},
    "linear": {**FAST, "steps": 384},
    "linear_lr8e-3": {**FAST, "lr": 8e-3, "steps": 384},
    "linear_ema": {**FAST, "steps": 384, "ema": 0.98},
    "linear_adam": {**FAST, "optimizer": "adam", "lr": 2e-3, "steps": 384},
    "linear_sgd": {**FAST, "optimizer": "sgd", "lr": 0.1, "steps": 384},
    "linear_depth2": {**FAST, "depth": 2, "steps": 384},
    "linear_sigma1.5": {**FAST, "sigma": 1.5, "steps": 384},
    "linear_b32": {**FAST, "batch_size": 32, "steps": 192},
    "linear_1152": {**FAST, "steps": 1152},
    "linear_depth2_1152": {**FAST, "depth": 2, "steps": 1152},
    "linear_depth2_1536": {**FAST, "depth": 2, "steps": 1536},
    "linear_depth2_1536_ema": {**FAST, "depth": 2, "steps": 1536, "ema": 0.99},
    "linear_lr8e-3_1152": {**FAST, "lr": 8e-3, "steps": 1152},
    "linear_128px_d3_384": {**FAST, "input_res": 128, "depth": 3, "steps": 384},
    "linear_128px_d3_f16_576": {**FAST, "input_res": 128, "depth": 3, "features": 16, "steps": 576},
    "linear_depth2_768": {**FAST, "depth": 2, "steps": 768},
    "linear_depth2_960": {**FAST, "depth": 2, "steps": 960},
    "linear_depth2_768_ema": {**FAST, "depth": 2, "steps": 768, "ema": 0.98},
    "linear_depth2_768_sigma1.5": {**FAST, "depth": 2, "steps": 768, "sigma": 1.5},
}
MEASURE = {"val_every": 100000, "val_samples": 1000, "val_flip": True, "num_workers": 0, "checkpoint_every": 100000,
           "log_every": 16}  # one validation at the end, data in the run's own process


def settings(name: str, steps: int | None) -> dict:
    values = {**CANDIDATES[name], **MEASURE}
    if steps:
        values["steps"] = steps
    return values


def child(name: str, variant: str, seed: int, folder: Path, steps: int | None) -> dict:
    """One run in this process (already pinned to a core): its final scores and CPU time."""
    from hgstudy.engine.train import train
    from hgstudy.study.configs import variant_config
    from hgstudy.study.params import open_study

    config = variant_config(open_study(ROOT).params, variant, seed, settings(name, steps))
    start, cpu = time.perf_counter(), time.process_time()
    final = train(config, folder, progress=False)
    log = pd.read_csv(folder / "train.tsv", sep="\t")
    return {"candidate": name, "variant": variant, "seed": seed, "steps": config.steps,
            "batch_size": config.batch_size, "samples": config.steps * config.batch_size,
            "cpu_min": (time.process_time() - cpu) / 60, "wall_min": (time.perf_counter() - start) / 60,
            "ablation": final.get("val_ablation"), "pckh": final.get("val_pckh"),
            "final_loss": float(log.loss.tail(4).mean()), "settings": CANDIDATES[name]}


def measure(jobs: list[tuple], out: Path, parallel: int, done) -> None:
    """Run `jobs` (candidate, variant, seed) `parallel` at a time, each pinned to its own core."""
    cores = sorted(os.sched_getaffinity(0))
    running: dict[int, tuple] = {}
    queue = list(jobs)
    while queue or running:
        while queue and len(running) < parallel:
            core = next(c for c in cores[:parallel] if c not in running)
            name, variant, seed, steps = queue.pop(0)
            folder = out / "runs" / f"{name}-{variant}-{seed}"
            result = folder.parent / f"{folder.name}.json"
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            cmd = ["taskset", "-c", str(core), sys.executable, __file__, "--child", name, variant, str(seed),
                   str(folder), str(result), str(steps or 0)]
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
            running[core] = (proc, result, name, variant, seed)
            print(f"started {name} {variant} seed {seed} on core {core}", flush=True)
        time.sleep(2)
        for core, (proc, result, name, variant, seed) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[core]
            if proc.returncode == 0:
                row = json.loads(result.read_text())
                print(f"done {name} {variant} seed {seed}: ablation {row['ablation']:.2f} pckh {row['pckh']:.2f} "
                      f"{row['cpu_min']:.2f} CPU min", flush=True)
                done(row)
            else:
                print(f"FAILED {name} {variant} seed {seed} (exit {proc.returncode})", flush=True)


def report(rows: list[dict], out: Path, chosen: str | None, baselines: dict) -> pd.DataFrame:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = pd.DataFrame(rows)
    table = (runs.groupby("candidate")
             .agg(seeds=("seed", "nunique"), steps=("steps", "first"), batch=("batch_size", "first"),
                  cpu_min=("cpu_min", "mean"), ablation=("ablation", "mean"), ablation_min=("ablation", "min"),
                  ablation_max=("ablation", "max"), pckh=("pckh", "mean"), loss=("final_loss", "mean"))
             .sort_values("cpu_min").reset_index())
    table["settings"] = [json.dumps(CANDIDATES.get(c, {}), separators=(",", ":")) for c in table.candidate]
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "frontier.tsv", sep="\t", index=False, float_format="%.3f")
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter(runs.cpu_min, runs.ablation, s=12, color="0.6", label="single runs")
    ax.errorbar(table.cpu_min, table.ablation, yerr=[table.ablation - table.ablation_min,
                table.ablation_max - table.ablation], fmt="o", color="C0", label="candidate: mean, range over seeds")
    for row in table.itertuples():
        ax.annotate(row.candidate, (row.cpu_min, row.ablation), fontsize=7, xytext=(4, 2), textcoords="offset points")
    if chosen in set(table.candidate):
        pick = table[table.candidate == chosen].iloc[0]
        ax.scatter([pick.cpu_min], [pick.ablation], s=160, facecolors="none", edgecolors="C3", linewidths=2,
                   label=f"chosen: {chosen}")
    for key, label, style in (("mean_pose_ablation", "mean pose", ":"),
                              ("nearest_neighbour_ablation", "nearest neighbour", "--")):
        if key in baselines:
            ax.axhline(baselines[key], color="0.3", linestyle=style, linewidth=1, label=f"{label} baseline")
    ax.set(xlabel="CPU minutes per run (one core: training + one validation)",
           ylabel="PCKh@0.5, wrists/elbows/knees/ankles (%)",
           title="Recipes on the CPU profile: accuracy against CPU time (first 1000 validation people, flip test)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "frontier.png", dpi=120)
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="*", default=[], choices=list(CANDIDATES),
                        help="candidates to train (those already in --json are skipped); none: only --report")
    parser.add_argument("--variants", nargs="+", default=["s8x1"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/frontier/runs.json")
    parser.add_argument("--out", type=Path, default=ROOT / "scratch/frontier", help="run folders")
    parser.add_argument("--report", type=Path, help="write frontier.tsv and frontier.png here")
    parser.add_argument("--chosen", help="the candidate the study uses (marked in the plot)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, variant, seed, folder, result, steps = args.child
        row = child(name, variant, int(seed), Path(folder), int(steps) or None)
        Path(result).write_text(json.dumps(row))
        return 0
    from hgstudy.engine.bench import machine

    data = json.loads(args.json.read_text()) if args.json.is_file() else {"machine": machine(), "runs": []}
    have = {(r["candidate"], r["variant"], r["seed"]) for r in data["runs"]}
    jobs = [(c, v, s, None) for c in args.candidates for v in args.variants for s in args.seeds
            if (c, v, s) not in have]

    def done(row):
        data["runs"].append(row)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")

    measure(jobs, args.out, args.parallel, done)
    if args.report:
        baselines_file = ROOT / "results/data/metrics.json"
        baselines = json.loads(baselines_file.read_text()) if baselines_file.is_file() else {}
        print(report(data["runs"], args.report, args.chosen, baselines).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
