"""Shared by the fixture GENERATORS beside this file (not part of the test suite): the seeded state a real model's
fixture is rebuilt from. tests/model/test_weights.py repeats `draw` on purpose: the test must rebuild the state
from a manifest without this code.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch

SEED = 20240613


def draw(stream: int, shape, low: float, high: float, dtype: str) -> torch.Tensor:
    """Values uniform in [low, high) from PCG64 stream (SEED, stream); the test rebuilds them the same way."""
    values = np.random.default_rng([SEED, stream]).random(math.prod(shape))
    return torch.from_numpy((low + (high - low) * values).astype(dtype).reshape(shape))


def value_range(name: str, tensor: torch.Tensor, batchnorms: set[str]) -> tuple[float, float]:
    module, leaf = name.rsplit(".", 1)
    if leaf == "num_batches_tracked":
        return 100.0, 100.0
    if module in batchnorms:
        return {"weight": (0.8, 1.2), "bias": (-0.1, 0.1), "running_mean": (-0.2, 0.2),
                "running_var": (0.5, 1.5)}[leaf]
    if tensor.ndim == 4:  # conv weight: variance 1 / fan_in
        bound = round(math.sqrt(3.0 / math.prod(tensor.shape[1:])), 6)
        return -bound, bound
    return -0.05, 0.05  # conv bias


def random_state(model: torch.nn.Module) -> tuple[list, dict, str]:
    """(manifest entries [name, shape, dtype, low, high], the drawn state dict, its SHA-256) of `model`'s keys."""
    batchnorms = {name for name, module in model.named_modules() if isinstance(module, torch.nn.BatchNorm2d)}
    entries, state = [], {}
    for stream, (name, tensor) in enumerate(model.state_dict().items(), start=1):
        low, high = value_range(name, tensor, batchnorms)
        dtype = str(tensor.dtype).removeprefix("torch.")
        entries.append([name, list(tensor.shape), dtype, low, high])
        state[name] = draw(stream, tuple(tensor.shape), low, high, dtype)
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode() + tensor.numpy().tobytes())
    return entries, state, digest.hexdigest()


def dump(manifest: dict) -> str:
    """JSON with one state entry a line (small, readable diffs)."""
    head = json.dumps({k: v for k, v in manifest.items() if k != "state"}, indent=1)[:-2]
    rows = ",\n".join(json.dumps(entry) for entry in manifest["state"])
    return f'{head},\n "state": [\n{rows}\n ]\n}}\n'
