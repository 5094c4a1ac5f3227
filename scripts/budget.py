"""Predict the default study's wall time for a CPU profile from timed training steps and inference batches.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python scripts/budget.py --json benchmarks/budget.json \
        --candidate 'input_res: 64, features: 64' --candidate 'input_res: 64, features: 32' ...

Each candidate is a YAML mapping of `profiles.cpu.train` settings that replace params.yaml's (steps, val_every,
val_samples, batch_size, input_res, features, ...). For every variant of params.yaml it times one training step
(with the mannequins rendered in the process, as the study runs it) and folded inference at the validation
batch size with `hgstudy bench model`'s paired, load-checked timing, then predicts:

    per run   = steps x step time + (validations x val_samples + evaluated people) x 2 (flip) / inference rate
              + TRAIN_STAGE_S + EVAL_STAGE_S
    study     = seeds x sum over variants of per run + DATA_S + ABLATION_S

The fixed costs are measured on the committed study run (AVX2 class, 2026-12-02; each stage's wall time minus
its training and inference): kernel start, imports, figures, HTML, DVC's hashing; the data stage's baselines;
the ablation's bootstraps and coverage check. Run it with the AVX2 caps
to predict the time on CPUs without bf16.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import yaml

from hgstudy.datasets import val_annotations
from hgstudy.engine.bench import benchmark, machine
from hgstudy.engine.runtime import resolve_runtime
from hgstudy.engine.train import train
from hgstudy.model.size import summarize
from hgstudy.study.configs import variant_config
from hgstudy.study.params import open_study

TRAIN_STAGE_S = 23.0  # a train stage beyond its steps and validations (hg-0: 126 s, of which 88 + 15 s compute)
EVAL_STAGE_S = 21.0  # an evaluate stage beyond its flip-test forwards (hg-0: 27 s, of which 5.5 s forwards)
DATA_S = 50.0  # the data stage: samples, statistics, baselines on all validation people
ABLATION_S = 20.0  # the ablation stage: seven claims' bootstraps, the coverage check, figures (measured: 16 s)


def with_candidate(candidate: dict) -> dict:
    """params.yaml with the candidate's settings in place of those of `profiles.cpu.train`."""
    params = open_study().params
    cpu = params["profiles"]["cpu"]
    return {**params, "profiles": {**params["profiles"], "cpu": {**cpu, "train": {**cpu["train"], **candidate}}}}


def predict(candidate: dict, seconds: float = 1.0, repeats: int = 3, log=print) -> dict:
    params = with_candidate(candidate)
    limit = params["profiles"]["cpu"]["evaluate"].get("limit")
    people = len(val_annotations(params["profiles"]["cpu"]["train"]["dataset"]))  # the evaluate stage's people
    evaluated = people if limit is None else min(limit, people)
    rows = []
    for variant in params["variants"]:
        c = variant_config(params, variant, 0)
        model = c.model_config()
        runtime = resolve_runtime("cpu", c.precision, c.channels_last, gflop=summarize(model)["gflops"])
        train = benchmark(model, c.batch_size, "train", runtime, data=True, seconds=seconds, repeats=repeats)
        infer = benchmark(model, 64, "infer", runtime, seconds=seconds, repeats=repeats)
        validations = math.ceil(c.steps / c.val_every)
        forwards = 2 * (validations * min(c.val_samples or people, people) + evaluated)
        run_s = c.steps * c.batch_size / train["images_per_s"] + forwards / infer["images_per_s"] \
            + TRAIN_STAGE_S + EVAL_STAGE_S
        rows.append({"variant": variant, "train_samples_per_s": train["images_per_s"],
                     "infer_samples_per_s": infer["images_per_s"], "train_matmul_share": train["matmul_fp32_share"],
                     "steps": c.steps, "batch": c.batch_size, "validations": validations, "forwards": forwards,
                     "run_s": run_s})
        log(f"  {variant:<15} train {train['images_per_s']:6.1f}/s  infer {infer['images_per_s']:6.1f}/s  "
            f"run {run_s / 60:5.2f} min")
    seeds = len(params["seeds"])
    total = seeds * sum(r["run_s"] for r in rows) + DATA_S + ABLATION_S
    return {"candidate": candidate, "seeds": seeds, "variants": rows, "predicted_min": total / 60,
            "runtime": runtime.describe(), "machine": machine()}


def accuracy(candidate: dict, variants, seeds, out: Path, log=print) -> list[dict]:
    """Train `variants` x `seeds` under the candidate profile; each run's final validation scores and wall time."""
    params = with_candidate(candidate)
    rows = []
    for variant in variants:
        for seed in seeds:
            start = time.perf_counter()
            final = train(variant_config(params, variant, seed), out / f"{variant}-{seed}", progress=False)
            rows.append({"variant": variant, "seed": seed, "wall_s": time.perf_counter() - start,
                         **{k: final.get(k) for k in ("val_pckh", "val_ablation", "val_auc", "train_loss")}})
            log(f"  {variant}-{seed}: ablation {final.get('val_ablation', float('nan')):.2f} "
                f"pckh {final['val_pckh']:.2f} ({rows[-1]['wall_s']:.0f} s)")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", action="append", default=[], help="YAML mapping of profiles.cpu.train keys")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--train", nargs="*", metavar="VARIANT",
                        help="instead of timing: train these variants with --seeds and report their accuracy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=Path("scratch/budget"), help="run folders of --train")
    args = parser.parse_args(argv)
    results = []
    for k, text in enumerate(args.candidate or ["{}"]):
        candidate = yaml.safe_load(text) or {}
        print(f"candidate {candidate}", flush=True)
        if args.train is not None:
            runs = accuracy(candidate, args.train, args.seeds, args.out / f"candidate{k}")
            results.append({"candidate": candidate, "runs": runs})
        else:
            results.append(predict(candidate, args.seconds, args.repeats))
            print(f"  predicted study: {results[-1]['predicted_min']:.1f} min", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
