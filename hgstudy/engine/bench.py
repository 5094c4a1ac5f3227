"""Model speed: training or inference images/s, peak memory, and the share of the machine's matmul rate
(`hgstudy bench model`).

The measured configuration is what `hgstudy train` / `hgstudy evaluate` run with the same settings
(`runtime.resolve_runtime`): autocast precision, memory format, optional torch.compile, and for inference
BatchNorm folded into the preceding convolutions. A training step is the one training runs
(`engine.step.TrainStep`: forward, masked MSE against targets on every stack, backward, optimiser step);
with `data` it also renders its batch of mannequins in this process, as the CPU study does, so the number is
end to end. Inference is a no_grad forward in eval mode.

`baseline` times the same model in plain fp32 NCHW eager mode, as the public PyTorch ports run it. The two
are timed in pairs of blocks, the baseline's right before the candidate's, and a pair counts only while
other processes used less than `max_foreign` of the CPUs during both blocks: on 2 cores another busy
process slows a 2-thread step by 2-10x (each of its thousands of OpenMP regions waits for a descheduled
thread), so unpaired or unchecked numbers from a shared machine mean little. The matmul rate (fp32, and bf16
where the CPU has native bf16) is measured in the same run; FLOPs are counted by FlopCounterMode, 2 per
multiply-add, a training sample being 3 forward passes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from hgstudy.core.errors import UserError
from hgstudy.core.fields import add_arguments as add_field_arguments
from hgstudy.core.fields import arguments_given
from hgstudy.core.files import write_text
from hgstudy.datasets import build_dataset
from hgstudy.engine.config import TrainConfig
from hgstudy.engine.loss import DECODER_TARGETS, Collate
from hgstudy.engine.runtime import (
    Loading,
    Runtime,
    bf16_supported,
    compile_model,
    cpu_capability,
    resolve_loading,
    resolve_runtime,
)
from hgstudy.engine.step import TrainStep, make_optimizer
from hgstudy.engine.train import train
from hgstudy.model.network import HourglassConfig, ModelFields, StackedHourglass, fold_batchnorm
from hgstudy.model.size import summarize


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


class ForeignLoad:
    """The share of all CPUs that *other* processes used since construction (from /proc/stat; 0 elsewhere)."""

    def __init__(self):
        self.cpus = os.cpu_count() or 1
        self.start = (time.perf_counter(), self._busy(), self._mine())

    @staticmethod
    def _busy() -> int:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
        except OSError:
            return 0
        return sum(v) - v[3] - v[4]  # all but idle and iowait, in clock ticks

    @staticmethod
    def _mine() -> float:
        t = os.times()  # children_*: those that ended; live ones (data workers) are read from /proc
        return (t.user + t.system + t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK") + child_ticks()

    def fraction(self) -> float:
        t, busy, mine = self.start
        ticks = (self._busy() - busy) - (self._mine() - mine)
        return max(0.0, ticks / os.sysconf("SC_CLK_TCK") / max(time.perf_counter() - t, 1e-9) / self.cpus)


def child_ticks() -> int:
    """CPU clock ticks used so far by this process's live child processes (its data workers), from /proc."""
    me, total = os.getpid(), 0
    for pid in (p for p in os.listdir("/proc") if p.isdigit()) if os.path.isdir("/proc") else ():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after the command name: state, ppid, ...
        except OSError:
            continue
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def matmul_gflops(dtype=torch.float32, n: int = 2048, seconds: float = 1.0) -> float:
    """Best of three ~`seconds`/3 blocks of n^3 torch.mm, GFLOP/s (2 per multiply-add)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    c = a @ b
    best = 0.0
    for _ in range(3):
        k, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            torch.mm(a, b, out=c)
            k += 1
        best = max(best, 2 * n**3 * k / (time.perf_counter() - start) / 1e9)
    return best


def machine() -> dict:
    """The CPU (model name, flags that decide the fast paths), torch's build and what it uses here."""
    flags, model = set(), platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    caps = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k)}
    return {"cpu": model, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "flags": sorted(
        f for f in flags if f in wanted), "capped": caps, "uses": cpu_capability(), "torch": torch.__version__,
        "hgstudy_commit": source_commit()}


def source_commit() -> str | None:
    """The git commit of the hgstudy checkout that measured ("+changes" if it had uncommitted ones), if any."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+changes" if dirty else "")


class Workload:
    """One model in one runtime, ready to run `step()` (a training step or an inference batch)."""

    def __init__(self, config: HourglassConfig, batch: int, mode: str, runtime: Runtime, fold_bn: bool,
                 loading: Loading | None = None):
        """loading: render mannequin batches as training does (`runtime.resolve_loading`); None: fixed tensors."""
        torch.manual_seed(0)
        model = StackedHourglass(config)
        self.mode, self.runtime, self.batch, self.loading = mode, runtime, batch, loading
        shape = (batch, config.joints, config.output_res, config.output_res)
        self.fixed = {"image": torch.rand(batch, 3, config.input_res, config.input_res), "target": torch.rand(shape),
                      "target_weight": torch.ones(batch, config.joints)}
        for f, key in DECODER_TARGETS[:config.decoder_head_count]:
            side = int(config.output_res * f)
            self.fixed[key], self.fixed[key + "_weight"] = torch.rand(batch, config.joints, side, side), \
                torch.ones(batch, config.joints)
        self.batches = iter(self._loader(config, batch, loading)) if loading else None
        if mode == "infer":
            model = fold_batchnorm(model) if fold_bn else model.eval()
            self.model = compile_model(runtime.model(model), runtime, inference=True)
            self.x = runtime.input(self.fixed["image"])
        else:
            runtime.model(model)
            optimizer = make_optimizer(TrainConfig(**config.model_fields(), lr=2.5e-4), model, runtime.flat_optimizer)
            self.train_step = TrainStep(compile_model(model, runtime), optimizer, runtime,
                                        [1.0] * (config.stacks + config.decoder_head_count), config.decoder_heads)

    @staticmethod
    def _loader(config: HourglassConfig, batch: int, loading: Loading):
        """Augmented mannequin training batches, rendered in this process or in workers as `loading` says."""
        dataset = build_dataset("mannequin", "train", input_res=config.input_res)
        generator = torch.Generator().manual_seed(0)
        sampler = RandomSampler(dataset, replacement=True, num_samples=10**9, generator=generator)
        with loading.applied():  # OpenCV's threads as the workers inherit them
            return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=loading.workers,
                              persistent_workers=loading.workers > 0,
                              collate_fn=Collate(config.output_res, 1.0, config.decoder_head_count))

    def step(self) -> None:
        batch = next(self.batches) if self.batches is not None else self.fixed
        if self.mode == "infer":
            with torch.no_grad(), self.runtime.autocast():
                self.model(self.runtime.input(batch["image"]) if self.batches is not None else self.x)
        else:
            self.train_step(batch)
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize()

    def block(self, iterations: int) -> tuple[float, float]:
        """(images/s, foreign CPU share) of `iterations` steps, with this workload's thread count."""
        with self.loading.applied() if self.loading else contextlib.nullcontext():
            load, start = ForeignLoad(), time.perf_counter()
            for _ in range(iterations):
                self.step()
            rate, foreign = self.batch * iterations / (time.perf_counter() - start), load.fraction()
        self.settle()
        return rate, foreign

    def settle(self, poll: float = 0.02, limit: float = 5.0) -> None:
        """Wait until the data workers have rendered their prefetched batches, so that the next block (the
        other workload's) runs on a quiet machine."""
        if not (self.loading and self.loading.workers):
            return
        before, deadline = child_ticks(), time.perf_counter() + limit
        while time.perf_counter() < deadline:
            time.sleep(poll)
            now = child_ticks()
            if now == before:
                return
            before = now


def _iterations(work: Workload, seconds: float) -> int:
    one = min(work.block(1)[0] for _ in range(2))
    return max(1, round(seconds * one / work.batch))


def benchmark(config: HourglassConfig, batch: int, mode: str, runtime: Runtime, *, baseline: bool = False,
              data: bool = False, fold_bn: bool = True, repeats: int = 5, warmup: int = 2, seconds: float = 1.0,
              max_foreign: float = 0.10, budget_s: float | None = None) -> dict:
    """Images/s of `config` in `runtime` (median of the clean blocks) with the model's FLOPs and the share of
    the matmul rate; with `baseline` also plain fp32 NCHW eager and `speedup`, the median of the paired ratios.
    Stops after `repeats` clean blocks (pairs) or `budget_s` seconds, then uses the least disturbed ones."""
    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(runtime.device)
    gflop = summarize(config)["gflops"]
    loading = resolve_loading("auto", runtime.device, gflop) if data else None
    with PeakRSS() as rss:
        work = Workload(config, batch, mode, runtime, fold_bn, loading)
        start = time.perf_counter()
        work.step()  # compilation, if any, happens here
        first = time.perf_counter() - start
        for _ in range(warmup):
            work.step()
    peak = torch.cuda.max_memory_allocated(runtime.device) / 2**20 if cuda else rss.peak
    base = None
    if baseline:
        plain = Runtime(runtime.device, "fp32", False, flat_optimizer=False)
        in_process = Loading(0, None, "data in the training process") if data else None
        base = Workload(config, batch, mode, plain, fold_bn=False, loading=in_process)
        for _ in range(warmup):
            base.step()
    n_work, n_base = _iterations(work, seconds), _iterations(base, seconds) if base else 0
    # The matmul rate is measured after every pair too: on a shared machine it drifts (seen here: 106 to 171
    # GFLOP/s within minutes), so each block is set against the rate of its own moment.
    cpu = runtime.device.type == "cpu"
    blocks, deadline = [], time.perf_counter() + (budget_s or 20 * seconds * repeats)
    while sum(b[-1] < max_foreign for b in blocks) < repeats and time.perf_counter() < deadline:
        pair = base.block(n_base) if base else (float("nan"), 0.0)
        rate, foreign = work.block(n_work)
        mm = matmul_gflops(torch.float32, seconds=0.3) if cpu else float("nan")
        blocks.append((pair[0], rate, mm, max(pair[1], foreign)))
    clean = [b for b in blocks if b[-1] < max_foreign] or sorted(blocks, key=lambda b: b[-1])[:repeats]
    gflop *= 3 if mode == "train" else 1
    rate = statistics.median(b[1] for b in clean)
    mm32 = statistics.median(b[2] for b in clean)
    result = {
        "mode": mode, "batch": batch, "device": str(runtime.device), "precision": runtime.precision,
        "channels_last": runtime.channels_last, "compile": runtime.compile, "data": data,
        "fold_bn": fold_bn and mode == "infer", "model": config.to_dict(), "iterations": n_work,
        "images_per_s": rate, "gflop_per_image": gflop, "gflops": rate * gflop, "peak_mem_mb": peak,
        "first_step_s": first, "blocks": len(blocks), "clean_blocks": sum(b[-1] < max_foreign for b in blocks),
        "foreign_cpu_share": [round(b[-1], 3) for b in clean], "matmul_fp32_gflops": mm32,
        "loading": loading.reason if loading else None, "runtime": runtime.reason,
        "matmul_fp32_share": statistics.median(b[1] * gflop / b[2] for b in clean),
        "matmul_fp32_share_range": [min(b[1] * gflop / b[2] for b in clean), max(b[1] * gflop / b[2] for b in clean)],
        "machine": machine(),
    }
    if runtime.device.type == "cpu" and bf16_supported(runtime.device):
        result["matmul_bf16_gflops"] = mm16 = matmul_gflops(torch.bfloat16)
        result["matmul_bf16_share"] = rate * gflop / mm16
    if base:
        result["baseline_images_per_s"] = statistics.median(b[0] for b in clean)
        result["speedup"] = statistics.median(b[1] / b[0] for b in clean)
        result["speedup_range"] = [min(b[1] / b[0] for b in clean), max(b[1] / b[0] for b in clean)]
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
    parser.add_argument("--baseline", action="store_true", help="also time plain fp32 NCHW eager mode, paired")
    parser.add_argument("--data", action="store_true", help="render each batch of mannequins in this process")
    parser.add_argument("--repeats", type=int, default=5, help="clean blocks (pairs) to time")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed block")
    parser.add_argument("--max-foreign", type=float, default=0.10,
                        help="a block counts only while other processes used less than this share of the CPUs")
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")
    parser.add_argument("--precision-check", type=int, metavar="STEPS",
                        help="instead: train STEPS steps on mannequins in fp32 and bf16 for each --seeds and "
                             "compare validation PCKh (uses --batch, the model flags)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])


def main(args) -> None:
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0 or not args.seconds > 0:
        raise UserError("--batch and --repeats must be at least 1, --warmup at least 0, --seconds positive")
    config = HourglassConfig.from_dict(arguments_given(args, ModelFields), "model flags")
    if args.precision_check:
        rows = precision_check(config, args.precision_check, args.seeds, args.batch)
        for precision in ("fp32", "bf16"):
            values = [r["val_pckh"] for r in rows if r["precision"] == precision]
            print(f"{precision}: val PCKh@0.5 {', '.join(f'{v:.2f}' for v in values)}  "
                  f"(mean {statistics.mean(values):.2f})")
        return
    cl = "auto" if args.channels_last is None else args.channels_last
    runtime = resolve_runtime(args.device, args.precision, cl, args.compile, summarize(config)["gflops"])
    r = benchmark(config, args.batch, args.mode, runtime, baseline=args.baseline, data=args.data,
                  fold_bn=not args.no_fold_bn, repeats=args.repeats, warmup=args.warmup, seconds=args.seconds,
                  max_foreign=args.max_foreign)
    if args.json:
        write_text(args.json, json.dumps(r, indent=1) + "\n")
    what = f"{args.mode} {config.stacks}x{config.modules} F{config.features} {config.input_res}px batch {args.batch}"
    print(f"{what}, {runtime.describe()}{', BN folded' if r['fold_bn'] else ''}{', with data' if args.data else ''}")
    print(f"machine       {r['machine']['cpu']}, {r['machine']['uses']}, {r['machine']['torch_threads']} threads")
    print(f"chosen        {r['runtime']}" + (f"; {r['loading']}" if r["loading"] else ""))
    print(f"images/s      {r['images_per_s']:.2f}  (median of {r['clean_blocks']} clean of {r['blocks']} blocks)")
    share = f"{100 * r['matmul_fp32_share']:.0f}% of the fp32 matmul rate ({r['matmul_fp32_gflops']:.0f} GFLOP/s)"
    if "matmul_bf16_share" in r:
        share += f", {100 * r['matmul_bf16_share']:.0f}% of bf16 ({r['matmul_bf16_gflops']:.0f})"
    print(f"GFLOP/s       {r['gflops']:.1f}  = {share}")
    where = "allocated on the GPU" if runtime.device.type == "cuda" else "process RSS, before the baseline ran"
    print(f"peak memory   {r['peak_mem_mb']:.0f} MiB  ({where})")
    print(f"first step    {r['first_step_s']:.2f} s")
    if args.baseline:
        low, high = r["speedup_range"]
        print(f"baseline      {r['baseline_images_per_s']:.2f} images/s (fp32 NCHW eager)  "
              f"speedup {r['speedup']:.2f}x [{low:.2f}-{high:.2f}]")
