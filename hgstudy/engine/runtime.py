"""Device, numeric precision, memory format and compilation: the speed choices that leave results unchanged.

One `Runtime` says how a model runs; training, evaluation and the model benchmark all build theirs with
`resolve_runtime`, so "auto" means the same thing everywhere:
- device auto: CUDA when available (the process's LOCAL_RANK under torchrun), else the CPU;
- precision auto: bf16 autocast where the hardware has bf16 matrix units (CUDA with bf16 support, CPUs with
  AVX512-BF16 or AMX through oneDNN: about 2x fp32 there), fp32 otherwise (AVX2-only and plain AVX-512 CPUs,
  where bf16 is emulated and slower than fp32), and fp32 on a CPU for a small network (`small_network`), whose
  step is bound by the fixed cost of its thousands of operations, to which bf16 only adds casts (measured on
  a Zen 4 with AVX512-BF16: the CPU study's 8 x 1 network trains at 57 samples/s in bf16, 65 in fp32).
  Autocast keeps weights, optimiser state, BatchNorm statistics and the loss in fp32; only convolutions and
  matmuls run in bf16;
- channels_last auto: on (oneDNN's and cuDNN's fast kernels are NHWC; on a 2-core AVX2 CPU fp32 training of
  the CPU-profile networks was 1.3x faster in channels_last, bf16 about 2x: benchmarks/model_cpu.json, measured
  on 2026-11-28, before the 1x1 and flat-optimiser paths);
- torch.compile: only when asked for, never by auto (on the CPU it compiles for minutes per network and, measured,
  trains slower than the eager step: Inductor's channels_last BatchNorm+ReLU is 6x slower than eager's here);
- CPU threads and data workers (`resolve_loading`): a small network on a CPU trains almost as fast on one
  thread as on two, so auto gives the data (rendering mannequins, decoding images) a worker process of its own
  and torch the other cores; a larger network keeps every core and loads data in the training process.
`Runtime.reason` says why, for the training log.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import torch
from torch import nn

from hgstudy.core.errors import UserError

Device = Literal["auto", "cpu", "cuda"]  # the choices training and evaluation offer, resolved here
Precision = Literal["auto", "fp32", "bf16"]
DEVICES, PRECISIONS = get_args(Device), get_args(Precision)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # "fp32" or "bf16" (resolved)
    channels_last: bool
    compile: bool = False
    reason: str = ""  # why these were chosen (for the training log)
    flat_optimizer: bool = True  # one flat tensor for the optimiser (engine.optim); the plain baseline: foreach

    def autocast(self):
        """Context for forward passes: bf16 autocast, or nothing in fp32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """Move a batch of images to the device in the model's memory format."""
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def model(self, model: nn.Module) -> nn.Module:
        """Move a model to the device and memory format (in place; compilation is separate)."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def describe(self) -> str:
        fmt = "channels_last" if self.channels_last else "NCHW"
        return f"{self.device} {self.precision} {fmt}{' compiled' if self.compile else ''}"


def resolve_device(name: str = "auto") -> torch.device:
    if name not in DEVICES:
        raise UserError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda was asked for but torch sees no CUDA GPU (use device: cpu or auto)")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def bf16_supported(device: torch.device) -> bool:
    """True where bf16 convolutions run on native bf16 units (not emulated, which is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # oneDNN's check: AVX512-BF16 (e.g. AMD Zen 4/5, Intel Cooper Lake) or AMX (Sapphire Rapids and later).
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


# Forward GFLOP per sample below which a network counts as small on a CPU: its training step is bound by the
# fixed cost per operation, not by arithmetic (measured on a 2-core AVX2 CPU, benchmarks/cpu/avx2/loading.json:
# two threads train an 8 x 1 network of 0.07 GFLOP 1.0-1.12x as fast as one, of 0.22 GFLOP 1.2x, of 0.9 1.4-1.5x).
SMALL_NETWORK_GFLOP = 0.12


def small_network(gflop: float | None) -> bool:
    return gflop is not None and gflop < SMALL_NETWORK_GFLOP


def resolve_precision(precision: str, device: torch.device, gflop: float | None = None) -> str:
    """`gflop`: the network's forward GFLOP per sample, if known (a small one stays fp32 on a CPU)."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_supported(device) and not (device.type == "cpu" and small_network(gflop)) else "fp32"
    if precision == "bf16" and not bf16_supported(device):
        raise UserError(f"precision bf16 was asked for, but {device} has no native bf16 support; use fp32 or auto")
    return precision


def resolve_channels_last(setting) -> bool:
    """auto = on everywhere measured so far (CUDA per the ports' experience; this CPU: bf16 and fp32 training)."""
    if setting in (True, False):
        return bool(setting)
    if setting != "auto":
        raise UserError(f"channels_last must be true, false or auto, got {setting!r}")
    return True


def cpu_capability() -> str:
    """What the CPU offers the kernels torch runs here (after ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA caps)."""
    aten = torch.backends.cpu.get_cpu_capability()
    bf16 = bf16_supported(torch.device("cpu"))
    return f"{aten}{' with native bf16 (oneDNN)' if bf16 else ', no native bf16'}"


def resolve_runtime(device: str = "auto", precision: str = "auto", channels_last="auto",
                    compile: bool = False, gflop: float | None = None) -> Runtime:
    """`gflop`: the network's forward GFLOP per sample (`model.size.summarize`), for the choices that depend on
    its size."""
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev, gflop)
    if dev.type == "cuda":
        why = f"CUDA {torch.cuda.get_device_name(dev)}" + (", bf16 supported" if prec == "bf16" else "")
    else:
        why = f"CPU {cpu_capability()}"
    how = "asked for"
    if precision == "auto":
        small = dev.type == "cpu" and bf16_supported(dev) and small_network(gflop)
        how = f"auto: a small network, {gflop:.2f} GFLOP a sample, runs no faster in bf16" if small else "auto"
    chosen = [f"precision {prec} ({how})",
              f"channels_last {resolve_channels_last(channels_last)} ({channels_last})"]
    return Runtime(dev, prec, resolve_channels_last(channels_last), bool(compile), f"{why}: {', '.join(chosen)}")


def compile_model(model: nn.Module, runtime: Runtime, inference: bool = False) -> nn.Module:
    """torch.compile when the runtime asks for it (Inductor needs a C++ compiler on the CPU).

    For inference, Inductor's freezing folds BatchNorm into convolutions and prepacks weights.
    """
    if not runtime.compile:
        return model
    if inference:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    try:
        return torch.compile(model)
    except Exception as exc:  # missing compiler, unsupported platform
        raise UserError(f"torch.compile failed ({type(exc).__name__}: {exc}); run without compile") from exc


@dataclass(frozen=True)
class Loading:
    """How a CPU's cores are shared: `workers` data-loading processes, `threads` for torch (None: its default)."""

    workers: int
    threads: int | None
    reason: str

    @contextlib.contextmanager
    def applied(self):
        """torch's thread count (and OpenCV's, for worker processes) set while the context runs, then restored."""
        cv2_threads = cv2.getNumThreads()
        if self.workers:
            cv2.setNumThreads(1)  # forked workers inherit it (calling it inside a forked worker can hang)
        try:
            with torch_threads(self.threads):
                yield self
        finally:
            cv2.setNumThreads(cv2_threads)


@contextlib.contextmanager
def torch_threads(count: int | None):
    """torch's intra-op thread count set to `count` (None: unchanged) while the context runs, then restored."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_loading(num_workers, device: torch.device, gflop: float | None, processes: int = 1) -> Loading:
    """num_workers auto: on a CPU with 2+ cores a small network gets one data worker and the other cores
    (its step gains little from a second thread, the data a whole core); otherwise data loads in the training
    process on a CPU, and on a GPU in up to 8 workers. An explicit count is kept, with torch's default threads.
    `processes`: training processes on this machine (torchrun); several on a CPU load their own data."""
    if num_workers != "auto":
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise UserError(f"num_workers must be auto or a count >= 0, got {num_workers!r}")
        return Loading(num_workers, None, f"{num_workers} data workers (asked for)")
    cores = usable_cores()
    if device.type == "cpu" and processes > 1:
        return Loading(0, None, f"data in each of the {processes} training processes (auto)")
    if device.type == "cuda":
        workers = min(8, max(1, cores - 1))
        return Loading(workers, None, f"{workers} data workers (auto: {cores} CPU cores for a GPU)")
    if cores >= 2 and small_network(gflop):
        threads = f"{cores - 1} torch thread{'s' if cores > 2 else ''}"
        return Loading(1, cores - 1, f"1 data worker and {threads} (auto: a small network, {gflop:.2f} GFLOP a "
                                     "sample, gains little from more threads)")
    return Loading(0, None, f"data in the training process, {torch.get_num_threads()} torch threads (auto)")
