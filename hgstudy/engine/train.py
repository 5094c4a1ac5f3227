"""Training (`hgstudy train --out DIR ...`; several GPUs or machines: `torchrun ... -m hgstudy.engine.train ...`).

The step itself (loss, optimiser, schedule) is `hgstudy.engine.step`; this module runs it over the data,
validates, logs and checkpoints.

Checkpoints (`<out>/checkpoint.pt`, written atomically every `checkpoint_every` steps and at the end) hold
everything a run needs to continue bit for bit: model, optimiser, learning-rate schedule, step, RNG states
and the losses not yet logged; the data order is a function of (seed, step) (`distributed.StepBatchSampler`)
and augmentation a function of (seed, epoch, index). Running the same command again resumes; a checkpoint
of another configuration is refused. The final weights also go to `<out>/model.pt`; a run resumed to train
further removes it before its first step, so a `model.pt` is always the final model of the run beside it.

One process writes a run folder: it holds `<out>/train.lock` while it runs (under torchrun, rank 0, the only
writer), and a second `hgstudy train` on the same folder is refused at once, naming the holder.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from hgstudy.core.errors import UserError
from hgstudy.core.files import PARTIAL, check_writable
from hgstudy.core.lock import folder_lock
from hgstudy.datasets import build_dataset, dataset_spec
from hgstudy.engine import distributed as ddp
from hgstudy.engine.config import TrainConfig, add_config_arguments, config_from_args
from hgstudy.engine.evaluate import InMemory, predict, score
from hgstudy.engine.loss import DECODER_TARGETS, Collate, part_weights
from hgstudy.engine.runlog import Progress, RunLog
from hgstudy.engine.runtime import (
    Loading,
    Runtime,
    compile_model,
    resolve_loading,
    resolve_runtime,
    torch_threads,
    usable_cores,
)
from hgstudy.engine.step import LRSchedule, TrainStep, WeightAverage, make_optimizer
from hgstudy.model.checkpoint import CHECKPOINT, FINAL, load_state, non_finite, read_checkpoint, save_checkpoint
from hgstudy.model.network import StackedHourglass, fold_batchnorm
from hgstudy.model.size import summarize

LOCK = "train.lock"
RUN_FILES = (CHECKPOINT, FINAL, "train.tsv", "val.tsv", "metrics.json")  # what a run writes into its folder
VAL_IN_MEMORY = 256 * 2**20  # bytes of float32 validation images kept in memory (the CPU profile: 49 MB)


def config_dataset(config: TrainConfig, split: str):
    dataset = build_dataset(config.dataset, split, input_res=config.input_res, sigma=config.sigma,
                            augment=config.augment, seed=config.seed, data_root=config.data_root,
                            options=config.data_options)
    if split == "val" and config.val_samples:
        dataset = Subset(dataset, range(min(config.val_samples, len(dataset))))
    return dataset


# ------------------------------------------------------------------------------------------- checkpoints
def rng_state() -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - the global stream, saved as such
    version, pystate, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos),
             int(has_gauss), float(cached)], "python": [version, list(pystate), gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, pystate, gauss = state["python"]
    random.setstate((version, tuple(pystate), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_training_state(path: Path, config: TrainConfig) -> dict:
    """The checkpoint at `path`, refused (UserError naming each difference) if another configuration wrote it."""
    state = read_checkpoint(path)
    needed = ("model", "train_config", "optimizer", "schedule", "step", "rng", "pending")
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise UserError(f"{path} is not a training checkpoint of hgstudy train; delete it or use another --out")
    diffs = config.differences(state["train_config"])
    if diffs:
        raise UserError(f"{path} was written by another configuration ({'; '.join(diffs)}); "
                        f"use another output directory, or delete {path} to start over")
    if state["step"] > config.steps:
        raise UserError(f"{path} is at step {state['step']}, beyond steps={config.steps}")
    return state


def saved_step(path: Path) -> int | None:
    """The step of the checkpoint at `path`, or None if there is none that reads back."""
    try:
        return int(read_checkpoint(path)["step"]) if path.is_file() else None
    except (UserError, KeyError, TypeError):
        return None


def last_good_checkpoint(path: Path) -> str:
    """What a failed run leaves to resume from, checked: a checkpoint counts only if it reads back (finite)."""
    if not path.is_file():
        return "no checkpoint had been written yet"
    try:
        return f"the last good checkpoint {path} (step {read_checkpoint(path)['step']}) is kept"
    except (UserError, KeyError, TypeError):
        return f"{path} is not usable either: delete it to start over"


def clear_run(out) -> Path:
    """Start a run folder afresh: remove the files a run writes (and partial ones), nothing else. A folder that
    holds anything else is refused: it is not a run folder, and nothing here deletes what it did not write."""
    out = Path(out)
    if not out.exists():
        return out
    if not out.is_dir():
        raise UserError(f"{out} is not a folder: give a run folder (new, or one that `hgstudy train` wrote)")
    own = {*RUN_FILES, LOCK}
    others = sorted(p.name for p in out.iterdir() if p.name not in own and not p.name.endswith(PARTIAL))
    if others:
        raise UserError(f"{out} holds files that a training run does not write ({', '.join(others[:5])}"
                        f"{', ...' if len(others) > 5 else ''}): it is not a run folder, so it is not emptied; "
                        "choose a new folder")
    with folder_lock(out, LOCK, "trained"):
        for p in out.iterdir():
            if p.name in RUN_FILES or p.name.endswith(PARTIAL):
                p.unlink()
    return out


# ---------------------------------------------------------------------------------------------- the loop
def train(config: TrainConfig, out, *, progress: bool = True) -> dict:
    """Train (or resume) into `out`; returns the latest metrics (on rank 0; {} on other ranks)."""
    gflop = summarize(config.model_config())["gflops"]
    runtime = resolve_runtime(config.device, config.precision, config.channels_last, config.compile, gflop)
    started_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    d = ddp.init_distributed(runtime.device)
    loading = resolve_loading(config.num_workers, runtime.device, gflop, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    out = check_writable(out)  # a read-only, unwritable or full folder fails now, before anything is built
    run = None
    try:
        with loading.applied(), (folder_lock(out, LOCK, "trained") if d.main else contextlib.nullcontext()):
            run = _Run(config, out, runtime, loading, d, Progress(progress and d.main))
            return run.run()
    except KeyboardInterrupt:  # Ctrl-C: one line saying where the run stands (checkpoints are replaced whole)
        where = f"at step {run.step}" if run else "before the first step"
        saved = saved_step(out / CHECKPOINT)  # from the file: Ctrl-C may land between its rename and the bookkeeping
        kept = f"the checkpoint of step {saved} is kept" if saved is not None else "no checkpoint"
        raise KeyboardInterrupt(f"interrupted {where} ({kept}); run the same command to resume") from None
    finally:
        if started_group:
            ddp.shutdown(d)


class _Run:
    def __init__(self, config: TrainConfig, out: Path, runtime: Runtime, loading: Loading, d: ddp.Dist,
                 progress: Progress):
        self.config, self.out, self.runtime, self.d, self.progress = config, out, runtime, d, progress
        self.loading = loading
        if runtime.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        ckpt = out / CHECKPOINT
        state = read_training_state(ckpt, config) if ckpt.is_file() else None
        self.step = state["step"] if state else 0
        if d.main and self.step < config.steps:
            # Until this run ends, an earlier final model would pass for its result: it goes now, comes back at the end.
            (out / FINAL).unlink(missing_ok=True)
        self.log = RunLog(out, self.step if state else None) if d.main else None
        self.train_set = config_dataset(config, "train")
        self.val_set = config_dataset(config, "val") if d.main else None
        if self.val_set is not None and len(self.val_set) * 12 * config.input_res**2 <= VAL_IN_MEMORY:
            self.val_set = InMemory(self.val_set)  # drawn once, not at every validation
        torch.manual_seed(config.seed)
        self.model = StackedHourglass(config.model_config())
        if d.active and config.sync_bn:
            ddp.sync_batchnorm(self.model, runtime.device)
        runtime.model(self.model)
        self.optimizer = make_optimizer(config, self.model, runtime.flat_optimizer)
        self.schedule = LRSchedule(config, self.optimizer)
        self.average = WeightAverage(self.model, config.ema) if config.ema else None
        self.pending: list[torch.Tensor] = []
        if state:
            load_state(self.model, state["model"], f"checkpoint {ckpt}")
            if self.average:
                self.average.load_state_dict(state["average"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            set_rng_state(state["rng"])
            self.pending = list(state["pending"].to(runtime.device).unbind(0))
            self.progress.print(f"resuming from {ckpt} at step {self.step}")
        wrapped = self.model
        if d.active:
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            wrapped = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.train_step = TrainStep(compile_model(wrapped, runtime), self.optimizer, runtime, part_weights(config),
                                    config.decoder_heads)
        self.weights = self.train_step.weights
        self.metric = dataset_spec(config.dataset).metric
        self.mark = (time.perf_counter(), self.step)
        self.progress.print(f"runtime: {runtime.describe()} ({runtime.reason}); {loading.reason}")

    def run(self) -> dict:
        c = self.config
        per_epoch = len(self.train_set) // c.batch_size
        if per_epoch == 0:
            raise UserError(f"the training set has {len(self.train_set)} samples, fewer than one batch of "
                            f"{c.batch_size}")
        collate = Collate(c.input_res // 4, c.sigma, c.decoder_head_count)
        self.progress.start(c.steps, self.step)
        while self.step < c.steps:
            epoch, first = divmod(self.step, per_epoch)
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            sampler = ddp.StepBatchSampler(len(self.train_set), c.batch_size, c.seed, epoch, self.d, first)
            loader = DataLoader(self.train_set, batch_sampler=sampler, num_workers=self.loading.workers,
                                collate_fn=collate, pin_memory=self.runtime.device.type == "cuda")
            for batch in loader:
                self.pending.append(self.train_step(batch))
                if self.average:
                    self.average.update_parameters(self.model)
                self.step += 1
                self.schedule.after_step(self.step)
                self.after_step(epoch)
                self.progress.step(self.step, self.log.metrics if self.log else {})
                if self.step >= c.steps:
                    break
        self.progress.close()
        if self.d.main:
            save_checkpoint(self.evaluated(), self.out / FINAL, train_config=c.to_dict(), step=self.step)
        ddp.barrier(self.d)
        return dict(self.log.metrics) if self.log else {}

    def after_step(self, epoch: int) -> None:
        c, s = self.config, self.step
        last = s == c.steps
        validate, checkpoint = s % c.val_every == 0 or last, s % c.checkpoint_every == 0 or last
        if s % c.log_every == 0 or last:
            self.log_losses(epoch)
        elif validate or checkpoint:
            # Averaged over processes now, so that the checkpoint keeps global losses (rank 0 writes it).
            self.pending = list(self.check_finite(torch.stack(self.pending)).to(self.runtime.device).unbind(0))
        paused = time.perf_counter()
        if validate:
            self.validate()
        if checkpoint:
            self.check_state()
            if self.d.main:
                pending = torch.stack(self.pending) if self.pending else torch.zeros(0, len(self.weights))
                save_checkpoint(self.model, self.out / CHECKPOINT, train_config=c.to_dict(),
                                optimizer=self.optimizer.state_dict(), schedule=self.schedule.state_dict(), step=s,
                                epoch=epoch, rng=rng_state(), pending=pending.cpu(),
                                **({"average": self.average.state_dict()} if self.average else {}))
        t, step = self.mark
        self.mark = (t + time.perf_counter() - paused, step)  # samples/s counts training time only

    def evaluated(self) -> StackedHourglass:
        """The network that validation and model.pt hold: the weights' moving average if there is one."""
        return self.average.module if self.average else self.model

    def check_finite(self, losses: torch.Tensor) -> torch.Tensor:
        losses = ddp.mean_over_ranks(self.d, losses).cpu()  # every rank sees the same values and stops together
        bad = ~torch.isfinite(losses).all(dim=1)
        if bad.any():
            first = self.step - len(losses) + int(bad.nonzero()[0, 0]) + 1
            raise UserError(f"the loss is not finite at step {first} ({losses[bad][0].tolist()}); "
                            f"{last_good_checkpoint(self.out / CHECKPOINT)}. Lower the learning rate or check the data")
        return losses

    def check_state(self) -> None:
        """Stop, on every process, before a checkpoint step writes weights or optimiser state that are not finite
        (a loss can stay finite while, say, a BatchNorm running variance overflows)."""
        bad = non_finite({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()["state"]})
        if float(ddp.mean_over_ranks(self.d, torch.tensor([float(len(bad))], device=self.runtime.device))) > 0:
            more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
            raise UserError(f"the weights or optimiser state are not finite at step {self.step} "
                            f"({', '.join(bad[:3]) + more if bad else 'on another process'}); "
                            f"{last_good_checkpoint(self.out / CHECKPOINT)}. Lower the learning rate or check the data")

    def log_losses(self, epoch: int) -> None:
        losses = self.check_finite(torch.stack(self.pending))
        self.pending = []
        t, step = self.mark
        now = time.perf_counter()
        self.mark = (now, self.step)
        if not self.log:
            return
        mean = losses.mean(dim=0)
        row = {"step": self.step, "epoch": epoch, "loss": float((mean * self.weights.cpu()).sum())}
        row.update({f"loss_stack{i}": float(v) for i, v in enumerate(mean[: self.config.stacks], 1)})
        heads = DECODER_TARGETS[:self.config.decoder_head_count]
        row.update({f"loss_dec{round(1 / f)}": float(v) for (f, _), v in zip(heads, mean[self.config.stacks:])})
        speed = (self.step - step) * self.config.batch_size / max(now - t, 1e-9)
        row.update(lr=self.schedule.lr(), samples_per_s=speed)
        self.log.log_train(row)

    def validate(self) -> None:
        value = math.nan
        if self.d.main:
            # A plain copy (no DDP hooks, no sync BN) with BatchNorm folded: the same function, faster.
            plain = StackedHourglass(self.config.model_config())
            plain.load_state_dict(self.evaluated().state_dict())
            model = self.runtime.model(fold_batchnorm(plain))
            # every core: the data worker (if any) is idle now, and inference does gain from a second thread
            with torch_threads(usable_cores() if self.loading.threads else None):
                p = predict(model, self.val_set, self.runtime, flip=self.config.val_flip,
                            batch_size=2 * self.config.batch_size)
            scores = score(p)
            value = scores[self.metric]
            self.log.log_val({"step": self.step, **scores})
            stacks = ", ".join(f"{scores[f'{self.metric}_stack{i}']:.1f}" for i in range(1, self.config.stacks + 1))
            extra = f", ablation {scores['ablation']:.2f}" if "ablation" in scores else ""
            self.progress.print(f"step {self.step}: val {self.metric} {value:.2f} (by stack: {stacks}), "
                                f"auc {scores['auc']:.2f}{extra}")
        self.schedule.after_validation(ddp.broadcast_value(self.d, value))


# ---------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="run folder: checkpoints, logs, metrics (resumes if present)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_config_arguments(parser)


def main(args) -> dict:
    config = config_from_args(args)
    train(config, args.out, progress=not args.quiet)


if __name__ == "__main__":  # torchrun --nproc-per-node N -m hgstudy.engine.train --out DIR ...
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hgstudy.engine.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        main(parser.parse_args())
    except UserError as exc:
        print(f"hgstudy train: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:  # as `hgstudy train` does (cli.py)
        print(f"hgstudy train: {str(exc) or 'interrupted'}", file=sys.stderr)
        sys.exit(130)
