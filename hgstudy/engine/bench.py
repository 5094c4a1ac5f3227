"""Model speed: training or inference images/s and peak memory (`hgstudy bench model`).

The measured configuration is what `hgstudy train` / `hgstudy evaluate` run with the same settings
(`precision.resolve_runtime`): autocast precision, memory format, optional torch.compile, and for inference
BatchNorm folded into the preceding convolutions. `--baseline` also times the same model in plain fp32 NCHW
eager mode, as the public PyTorch ports run it, interleaving the timed repeats of the two so that a busy
machine slows both alike. A training step is the one training runs (`hgstudy.engine.step.TrainStep`: forward,
masked MSE against random targets on every stack, backward, RMSprop step); inference is a no_grad forward in
eval mode. images/s is the median over repeats after warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from hgstudy.core.fields import add_arguments as add_field_arguments
from hgstudy.core.fields import arguments_given
from hgstudy.engine.config import TrainConfig
from hgstudy.engine.runtime import Runtime, compile_model, resolve_runtime
from hgstudy.engine.step import TrainStep, make_optimizer
from hgstudy.engine.train import train
from hgstudy.model.network import HourglassConfig, ModelFields, StackedHourglass, fold_batchnorm


class PeakRSS:
    """Peak resident memory of this process while the context runs (sampled every 5 ms), in MiB."""

    def __enter__(self):
        self.peak, self._stop = rss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class Workload:
    """One model in one runtime, ready to run `step()` (a training step or an inference batch)."""

    def __init__(self, config: HourglassConfig, batch: int, mode: str, runtime: Runtime, fold_bn: bool):
        torch.manual_seed(0)
        model = StackedHourglass(config)
        self.mode, self.runtime = mode, runtime
        self.x = torch.rand(batch, 3, config.input_res, config.input_res)
        shape = (batch, config.joints, config.output_res, config.output_res)
        self.batch = {"image": self.x, "target": torch.rand(shape), "target_weight": torch.ones(batch, config.joints)}
        if config.decoder_heads:
            for f, key in ((2, "target_dec2"), (4, "target_dec4")):
                side = config.output_res // f
                self.batch[key] = torch.rand(batch, config.joints, side, side)
                self.batch[key + "_weight"] = torch.ones(batch, config.joints)
        if mode == "infer":
            model = fold_batchnorm(model) if fold_bn else model.eval()
            self.model = compile_model(runtime.model(model), runtime, inference=True)
            self.x = runtime.input(self.x)
        else:
            runtime.model(model)
            optimizer = make_optimizer(TrainConfig(**config.model_fields(), lr=2.5e-4), model)
            self.train_step = TrainStep(compile_model(model, runtime), optimizer, runtime,
                                        [1.0] * (config.stacks + 2 * config.decoder_heads), config.decoder_heads)

    def step(self) -> None:
        if self.mode == "infer":
            with torch.no_grad(), self.runtime.autocast():
                self.model(self.x)
        else:
            self.train_step(self.batch)
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize()

    def timed(self, iterations: int) -> float:
        start = time.perf_counter()
        for _ in range(iterations):
            self.step()
        return time.perf_counter() - start


def benchmark(config: HourglassConfig, batch: int, mode: str, runtime: Runtime, *, baseline: bool = False,
              fold_bn: bool = True, repeats: int = 5, warmup: int = 2, min_seconds: float = 1.0) -> dict:
    """{'images_per_s', 'peak_mem_mb', 'times_s', ...} (+ 'baseline_images_per_s', 'speedup' with baseline:
    the median of the per-repeat ratios)."""
    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(runtime.device)
    with PeakRSS() as rss:
        work = Workload(config, batch, mode, runtime, fold_bn)
        start = time.perf_counter()
        work.step()  # compilation, if any, happens here
        first = time.perf_counter() - start
        for _ in range(warmup):
            work.step()
    peak = torch.cuda.max_memory_allocated(runtime.device) / 2**20 if cuda else rss.peak
    # Enough iterations per repeat for a stable timer, judged from the last warm-up step.
    per_step = max(work.timed(1), 1e-6)
    iterations = max(1, round(min_seconds / per_step))
    base, base_iterations = None, 0
    if baseline:
        plain = Runtime(runtime.device, "fp32", channels_last=False, compile=False)
        base = Workload(config, batch, mode, plain, fold_bn=False)
        for _ in range(warmup):
            base.step()
        base_iterations = max(1, round(min_seconds / max(base.timed(1), 1e-6)))
    times, base_times = [], []
    for _ in range(repeats):
        times.append(work.timed(iterations))
        if base:
            base_times.append(base.timed(base_iterations))
    result = {
        "mode": mode, "batch": batch, "device": str(runtime.device), "precision": runtime.precision,
        "channels_last": runtime.channels_last, "compile": runtime.compile,
        "fold_bn": fold_bn and mode == "infer", "model": config.to_dict(), "iterations": iterations,
        "images_per_s": batch * iterations / statistics.median(times), "peak_mem_mb": peak,
        "first_step_s": first, "times_s": times,
    }
    if base:
        result["baseline_images_per_s"] = batch * base_iterations / statistics.median(base_times)
        result["baseline_times_s"], result["baseline_iterations"] = base_times, base_iterations
        # Each repeat of the baseline ran right after one of the measured configuration: the median of these
        # paired ratios is robust to other processes slowing the machine for a while.
        ratios = [(iterations / t) / (base_iterations / b) for t, b in zip(times, base_times)]
        result["speedup"] = statistics.median(ratios)
    result["loadavg_1min"] = os.getloadavg()[0]  # other processes on the machine while it ran
    return result


def precision_check(config: HourglassConfig, steps: int, seeds=(0, 1), batch: int = 16, val_samples: int = 1000,
                    out=None) -> list[dict]:
    """Train the same configuration on mannequins in fp32 and in bf16 (autocast, channels_last) with each seed;
    return one row per run with its final validation PCKh@0.5 and AUC (official protocol) and its wall time."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for precision in ("fp32", "bf16"):
                c = TrainConfig(dataset="mannequin", **config.model_fields(), batch_size=batch, steps=steps, seed=seed,
                                optimizer="adam", lr=1e-3, schedule="constant", precision=precision,
                                device="cpu", val_every=steps, val_samples=val_samples, log_every=steps,
                                checkpoint_every=steps)
                start = time.perf_counter()
                metrics = train(c, Path(out or tmp) / f"{precision}-seed{seed}", progress=False)
                rows.append({"precision": precision, "seed": seed, "steps": steps, "batch": batch,
                             "val_pckh": metrics["val_pckh"], "val_auc": metrics["val_auc"],
                             "train_loss": metrics["train_loss"], "wall_s": time.perf_counter() - start})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def add_arguments(parser) -> None:
    add_field_arguments(parser, ModelFields, title="model (values are YAML: --stem-channels [16, 32])")
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last memory format (default: auto = on)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (inference: with freezing)")
    parser.add_argument("--no-fold-bn", action="store_true", help="inference: keep BatchNorm layers separate")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--baseline", action="store_true", help="also time plain fp32 NCHW eager mode")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="length of one timed repeat")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--precision-check", type=int, metavar="STEPS",
                        help="instead: train STEPS steps on mannequins in fp32 and bf16 for each --seeds and "
                             "compare validation PCKh (uses --batch, the model flags)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])


def main(args) -> None:
    config = HourglassConfig.from_dict(arguments_given(args, ModelFields), "model flags")
    if args.precision_check:
        rows = precision_check(config, args.precision_check, args.seeds, args.batch)
        for precision in ("fp32", "bf16"):
            values = [r["val_pckh"] for r in rows if r["precision"] == precision]
            print(f"{precision}: val PCKh@0.5 {', '.join(f'{v:.2f}' for v in values)}  "
                  f"(mean {statistics.mean(values):.2f})")
        return
    cl = "auto" if args.channels_last is None else args.channels_last
    runtime = resolve_runtime(args.device, args.precision, cl, args.compile)
    result = benchmark(config, args.batch, args.mode, runtime, baseline=args.baseline, fold_bn=not args.no_fold_bn,
                       repeats=args.repeats, warmup=args.warmup, min_seconds=args.min_seconds)
    if args.json:
        print(json.dumps(result))
        return
    what = f"{args.mode} {config.stacks}x{config.modules} F{config.features} {config.input_res}px batch {args.batch}"
    print(f"{what}, {runtime.describe()}{', BN folded' if result['fold_bn'] else ''}")
    print(f"images/s      {result['images_per_s']:.2f}  (median of {args.repeats} x {result['iterations']} steps)")
    where = "allocated on the GPU" if runtime.device.type == "cuda" else "process RSS, before the baseline ran"
    print(f"peak memory   {result['peak_mem_mb']:.0f} MiB  ({where})")
    print(f"first step    {result['first_step_s']:.2f} s")
    if args.baseline:
        print(f"baseline      {result['baseline_images_per_s']:.2f} images/s (fp32 NCHW eager)  "
              f"speedup {result['speedup']:.2f}x")
