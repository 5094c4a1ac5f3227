"""Checkpoint files: written atomically with a content hash, read safely, verified and checked for finiteness.

A checkpoint is a dict saved with `torch.save`: `model_config` (HourglassConfig.to_dict), `model` (the state
dict), anything else the writer adds (training state, provenance), and `sha256`, a hash of every tensor and
value in it. Reading uses `torch.load(weights_only=True)`, which never runs code from the file; the hash
then catches silent corruption (a flipped byte inside a tensor loads fine otherwise), and a model whose
weights are not all finite is refused, since it can only predict nonsense.

A training run's folder holds `checkpoint.pt` (its latest state) and, once it has finished, `model.pt` (its final
model); a `model.pt` behind the `checkpoint.pt` beside it is not the run's result (`check_final_is_current`).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
from torch import nn

from hgstudy.core.errors import UserError
from hgstudy.core.files import atomic_path
from hgstudy.model.network import HourglassConfig, StackedHourglass

HASH_KEY = "sha256"
CHECKPOINT, FINAL = "checkpoint.pt", "model.pt"  # in a training run's folder


def _digest(value, h) -> None:
    """Feed a checkpoint's content into hash `h` in a fixed order (tensors by bytes, dicts by sorted key)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=str):
            h.update(repr(key).encode())
            _digest(value[key], h)
        h.update(b"}")
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for item in value:
            _digest(item, h)
        h.update(b"]")
    else:
        h.update(repr(value).encode())


def content_hash(entries: dict) -> str:
    h = hashlib.sha256()
    _digest({k: v for k, v in entries.items() if k != HASH_KEY}, h)
    return h.hexdigest()


def non_finite(tensors, prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) dict or list that hold NaN or infinity."""
    bad = []
    if isinstance(tensors, torch.Tensor):
        if tensors.is_floating_point() and not bool(torch.isfinite(tensors).all()):
            bad.append(prefix or "tensor")
    elif isinstance(tensors, dict):
        for key, value in tensors.items():
            bad += non_finite(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tensors, list | tuple):
        for i, value in enumerate(tensors):
            bad += non_finite(value, f"{prefix}[{i}]")
    return bad


def _names(bad: list[str]) -> str:
    return ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")


def save_checkpoint(model: StackedHourglass, path, **extra) -> Path:
    """Write {'model_config', 'model', **extra, 'sha256'} atomically; refuses non-finite weights or state."""
    entries = {"model_config": model.config.to_dict(), "model": model.state_dict(), **extra}
    bad = non_finite({k: v for k, v in entries.items() if k != "model_config"})
    if bad:
        raise UserError(f"refusing to write {path}: {len(bad)} tensors are not finite ({_names(bad)}); a "
                        "checkpoint that can only predict nonsense is never written")
    entries[HASH_KEY] = content_hash(entries)
    with atomic_path(path) as tmp:
        torch.save(entries, tmp)
    return Path(path)


def read_checkpoint(path, verify: bool = True) -> dict:
    """Load a checkpoint file safely (weights_only: it can never run code) and check its content hash."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder; pass the checkpoint file inside it (e.g. model.pt)")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # not a forbidden object: bytes that are no pickle at all
            raise UserError(f"checkpoint {path} could not be read: it is truncated, corrupt or not a torch "
                            "checkpoint") from exc
        raise UserError(f"checkpoint {path} holds Python objects other than tensors and plain values, which could "
                        "run code when loaded; hgstudy only loads weight files. Re-save its state dict "
                        "(torch.save(model.state_dict(), ...)) from the code that wrote it") from exc
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise UserError(f"checkpoint {path} could not be read ({type(exc).__name__}); it is truncated, corrupt "
                        "or not a torch checkpoint") from exc
    if verify and isinstance(ckpt, dict) and HASH_KEY in ckpt and ckpt[HASH_KEY] != content_hash(ckpt):
        raise UserError(f"checkpoint {path} is corrupt: its content does not match the hash written with it; "
                        "use another copy or retrain")
    if isinstance(ckpt, dict) and "model_config" in ckpt:  # ours: weights, optimiser state, losses all finite
        bad = non_finite({k: v for k, v in ckpt.items() if k != "model_config"})
        if bad:
            raise UserError(f"checkpoint {path} holds non-finite values ({_names(bad)}); the run that wrote it "
                            "diverged: use an earlier checkpoint or retrain with a lower learning rate")
    return ckpt


def stored_step(path) -> int | None:
    """The training step a checkpoint file holds, read without loading its tensors; None if it says none."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # unreadable: it cannot say it is further on
        return None
    return ckpt.get("step") if isinstance(ckpt, dict) else None


def check_final_is_current(path, ckpt: dict) -> None:
    """Refuse a run's final model (`ckpt`, read from `path`) when the run's checkpoint beside it is at a later step:
    the run was extended past it and has not finished, so this model is not what the run now stands for."""
    path = Path(path)
    beside = path.with_name(CHECKPOINT)
    if path.name != FINAL or not isinstance(ckpt, dict) or "step" not in ckpt or not beside.is_file():
        return
    latest = stored_step(beside)
    if latest is not None and latest > ckpt["step"]:
        raise UserError(f"{path} is the final model of step {ckpt['step']}, but {beside} beside it is at step "
                        f"{latest}: the run was extended and has not finished. Finish it (run the same train "
                        f"command) or evaluate {beside}")


def load_state(model: nn.Module, state: dict, source: str) -> None:
    """load_state_dict with an error that names missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise UserError(f"{source} does not match the model configuration; " + "; ".join(parts))
    model.load_state_dict(state)


def model_from_checkpoint(ckpt, source) -> StackedHourglass:
    """The model stored in a checkpoint dict (as `read_checkpoint` returns it), in eval mode."""
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(
            f"checkpoint {source} is not an hgstudy checkpoint (entries: {keys}); "
            "convert published weights with `hgstudy import-weights`"
        )
    bad = non_finite(ckpt["model"])
    if bad:
        raise UserError(f"checkpoint {source} has non-finite weights ({_names(bad)}); the run that wrote it "
                        "diverged: use an earlier checkpoint or retrain with a lower learning rate")
    model = StackedHourglass(HourglassConfig.from_dict(ckpt["model_config"], f"checkpoint {source} model_config"))
    load_state(model, ckpt["model"], f"checkpoint {source}")
    return model.eval()


def load_checkpoint(path) -> StackedHourglass:
    """The model stored in any hgstudy checkpoint, built from the configuration saved with it."""
    return model_from_checkpoint(read_checkpoint(path), path)
