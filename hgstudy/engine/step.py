"""One training step, as training runs it and `hgstudy bench model` times it: forward, loss (`engine.loss`),
backward, optimiser; and the learning-rate schedule and weight average around it."""

from __future__ import annotations

import math

import torch
from torch.optim.swa_utils import AveragedModel

from hgstudy.engine.config import TrainConfig
from hgstudy.engine.loss import DECODER_TARGETS, masked_mse
from hgstudy.engine.optim import FlatOptimizer
from hgstudy.engine.runtime import Runtime


class TrainStep:
    """forward, loss, backward and optimiser step of `model` (already in the runtime's device and format)."""

    def __init__(self, model, optimizer: torch.optim.Optimizer, runtime: Runtime, weights, decoder: bool):
        self.model, self.optimizer, self.runtime, self.decoder = model, optimizer, runtime, decoder
        self.weights = torch.as_tensor(weights, dtype=torch.float32, device=runtime.device)

    def __call__(self, batch: dict) -> torch.Tensor:
        """One optimiser step; returns the unweighted losses [stack 1..S (, dec/2, dec/4)] (detached)."""
        dev, runtime = self.runtime.device, self.runtime
        x = runtime.input(batch["image"])
        target = batch["target"].to(dev, non_blocking=True)
        weight = batch["target_weight"].to(dev, non_blocking=True)
        with runtime.autocast():
            out = self.model(x, return_decoder=True) if self.decoder else self.model(x)
        heatmaps, dec = out if self.decoder else (out, None)
        parts = masked_mse(heatmaps, target, weight)
        if self.decoder:
            extra = [masked_mse(p, batch[k].to(dev), batch[k + "_weight"].to(dev))
                     for p, (_, k) in zip(dec, DECODER_TARGETS)]
            parts = torch.cat([parts, torch.stack(extra)])
        loss = (parts * self.weights).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return parts.detach()


def make_optimizer(config: TrainConfig, model, flat: bool = True) -> torch.optim.Optimizer | FlatOptimizer:
    """torch's RMSprop, Adam or SGD (Nesterov, momentum 0.9) over the model's parameters; `flat`: over one flat
    view of them (bitwise the same update, 20-40 ms a step faster on a CPU); otherwise foreach (one multi-tensor
    call per operation)."""
    if config.optimizer == "rmsprop":  # Torch7 optim.rmsprop defaults: alpha 0.99, epsilon 1e-8
        cls, options = torch.optim.RMSprop, {"alpha": 0.99, "eps": 1e-8}
    elif config.optimizer == "sgd":
        cls, options = torch.optim.SGD, {"momentum": 0.9, "nesterov": True}
    else:
        cls, options = torch.optim.Adam, {}
    options.update(lr=config.lr, weight_decay=config.weight_decay)
    return FlatOptimizer(model.parameters(), cls, **options) if flat else cls(model.parameters(), **options,
                                                                               foreach=True)


class LRSchedule:
    """The learning rate of each step: base x lr_drop^drops, a drop at each of lr_steps (schedule steps) or once
    validation has not improved by plateau_min_delta for more than plateau_patience validations (plateau, as
    torch's ReduceLROnPlateau, mode max); or (linear) straight down to zero at the run's last step. `warmup`
    ramps any of them up from lr / warmup over its first steps."""

    def __init__(self, config: TrainConfig, optimizer):
        self.config, self.optimizer = config, optimizer
        self.drops, self.best, self.bad, self.step = 0, -math.inf, 0, 0
        self._apply()

    def lr(self) -> float:
        c, step = self.config, self.step
        if c.schedule == "linear":  # the decay counts from the end of the warm-up
            base = c.lr * min(1.0, (c.steps - step) / max(1, c.steps - c.warmup))
        else:
            base = c.lr * c.lr_drop ** self.drops
        return base * min(1.0, (step + 1) / c.warmup) if c.warmup else base

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr()

    def after_step(self, step: int) -> None:
        """`step` optimiser steps are done: set the rate of the next one."""
        self.step = step
        if self.config.schedule == "steps":
            self.drops = sum(step >= s for s in self.config.lr_steps)
        if self.config.schedule in ("steps", "linear") or step <= self.config.warmup:
            self._apply()

    def after_validation(self, metric: float) -> None:
        if self.config.schedule != "plateau":
            return
        if metric > self.best + self.config.plateau_min_delta:  # NaN never improves
            self.best, self.bad = metric, 0
        else:
            self.bad += 1
        if self.bad > self.config.plateau_patience:
            self.drops, self.bad = self.drops + 1, 0
            self._apply()

    def state_dict(self) -> dict:
        return {"drops": self.drops, "best": self.best, "bad": self.bad, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.drops, self.best, self.bad = int(state["drops"]), float(state["best"]), int(state["bad"])
        self.step = int(state.get("step", 0))  # checkpoints before warm-up and linear decay lack it
        self._apply()


class WeightAverage(AveragedModel):
    """An exponential moving average of a model's weights and BatchNorm statistics (torch's AveragedModel). Its
    decay starts low, min(decay, (1 + n) / (10 + n)) after n updates, so the first steps' weights fade fast."""

    def __init__(self, model, decay: float):
        super().__init__(model, multi_avg_fn=self._average, use_buffers=True)
        self.decay = decay

    def _average(self, averaged: list, current: list, n: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # BatchNorm's batch counters: the model's own
            torch._foreach_copy_(averaged, current)
            return
        decay = min(self.decay, (1 + float(n)) / (10 + float(n)))
        torch._foreach_lerp_(averaged, current, 1 - decay)
