"""Data-parallel training under torchrun: process group, resumable data order, BatchNorm over the global batch.

The global batch of step k is the same set of people whatever the number of processes: each epoch's order
is a permutation drawn from (seed, epoch), step k takes the next `batch_size` people of it, and process r
of W takes its r-th share. The order depends on nothing else, so a resumed run starts exactly where the
checkpoint's step says (torch's DistributedSampler cannot start in the middle of an epoch).

With BatchNorm statistics synchronised across processes and DDP's gradient averaging, W processes compute
the same loss and gradients as one process with the whole batch, up to floating-point rounding. torch's
SyncBatchNorm runs on GPUs only; `CPUSyncBatchNorm` does the same over gloo, for CPU runs and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from hgstudy.core.errors import UserError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device) -> Dist:
    """Join the process group that torchrun describes in the environment (a no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return Dist()
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before NCCL starts, so that each process talks from its own GPU
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def shutdown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def broadcast_value(d: Dist, value: float) -> float:
    """Rank 0's value on every rank (validation runs on rank 0 only)."""
    if not d.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, 0)
    return float(t.item())


def mean_over_ranks(d: Dist, t: torch.Tensor) -> torch.Tensor:
    if not d.active:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / d.world


class StepBatchSampler(torch.utils.data.Sampler):
    """This process's share of the global batches of one epoch, from batch `start` on (drop_last)."""

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, d: Dist = Dist(), start: int = 0):
        if batch_size % d.world:
            raise UserError(f"batch_size {batch_size} must be divisible by the number of processes ({d.world})")
        if size < batch_size:
            raise UserError(f"the training set has {size} samples, fewer than one batch of {batch_size}")
        self.size, self.batch_size, self.seed, self.epoch, self.d, self.start = size, batch_size, seed, epoch, d, start
        self.local = batch_size // d.world

    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start

    def __iter__(self):
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.size)
        for b in range(self.start, self.batches_per_epoch()):
            first = b * self.batch_size + self.d.rank * self.local
            yield order[first:first + self.local].tolist()


class _SyncBN(torch.autograd.Function):
    """Training-mode batch norm with statistics and input gradients reduced over all processes."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = (0, 2, 3)
        x32 = x.float()
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float32)
        total = torch.cat([x32.sum(dims), count])
        dist.all_reduce(total)
        n = total[-1]
        mean = total[:-1] / n
        centred = x32 - mean.view(1, -1, 1, 1)
        sq = centred.square().sum(dims)  # two passes: no cancellation in E[x^2] - E[x]^2
        dist.all_reduce(sq)
        var = sq / n
        invstd = torch.rsqrt(var + eps)
        xhat = centred * invstd.view(1, -1, 1, 1)
        ctx.save_for_backward(xhat, weight, invstd, n)
        ctx.in_dtype = x.dtype
        out = xhat * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
        var_unbiased = var * n / (n - 1).clamp(min=1)
        ctx.mark_non_differentiable(mean, var_unbiased)
        return out.to(x.dtype), mean, var_unbiased

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        xhat, weight, invstd, n = ctx.saved_tensors
        dims = (0, 2, 3)
        g = grad_out.float()
        sum_g, sum_gx = g.sum(dims), (g * xhat).sum(dims)
        grad_weight, grad_bias = sum_gx.clone(), sum_g.clone()  # local: DDP averages them like any parameter
        total = torch.cat([sum_g, sum_gx])
        dist.all_reduce(total)
        c = sum_g.numel()
        mean_g, mean_gx = (total[:c] / n).view(1, -1, 1, 1), (total[c:] / n).view(1, -1, 1, 1)
        grad_x = (weight * invstd).view(1, -1, 1, 1) * (g - mean_g - xhat * mean_gx)
        return grad_x.to(ctx.in_dtype), grad_weight, grad_bias, None


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover all processes; same parameters, buffers and state_dict."""

    def forward(self, x):
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        out, mean, var_unbiased = _SyncBN.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean.to(self.running_mean), self.momentum)
            self.running_var.lerp_(var_unbiased.to(self.running_var), self.momentum)
        return out


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by its synchronised version (torch's on GPUs, CPUSyncBatchNorm on the CPU)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, module in list(model.named_children()):
        if type(module) is nn.BatchNorm2d:
            new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum)
            new.load_state_dict(module.state_dict())
            new.to(module.weight.device)
            setattr(model, name, new)
        else:
            sync_batchnorm(module, device)
    return model
