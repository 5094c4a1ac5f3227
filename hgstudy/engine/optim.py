"""A torch optimiser over one flat tensor: the same update, a few large operations instead of thousands of small ones.

The hourglass has about 1,500 parameter tensors, most of them tiny (biases, BatchNorm weights). torch's
RMSprop and Adam update each one separately (on the CPU even the `foreach` path loops over them), which cost
20-40 ms a step on a 2-core CPU: 8-15% of the CPU profile's training step. Here every parameter becomes a
view into one buffer, and so does its gradient, so that torch's own optimiser updates that single tensor
with a handful of elementwise operations. Elementwise updates do not mix elements, so the result is the
per-parameter update bit for bit (tests/engine/test_optim.py checks it against torch's optimisers).

`state_dict()` and `load_state_dict()` speak torch's per-parameter format, so checkpoints read and write
exactly as those of a plain torch optimiser (and old checkpoints resume).
"""

from __future__ import annotations

import operator

import torch


def memory_view(t: torch.Tensor) -> torch.Tensor:
    """The elements of a dense tensor (any dimension order, e.g. channels_last) as a 1-D view, in memory order."""
    return t.as_strided((t.numel(),), (1,), t.storage_offset())


def is_dense(t: torch.Tensor) -> bool:
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))


class FlatOptimizer:
    """`optimizer_class` (e.g. torch.optim.RMSprop) over one flat copy of `params`.

    Each parameter's data and gradient become views (with the parameter's own strides) into a flat parameter
    and a flat gradient buffer; `zero_grad` clears the buffer, backward accumulates into the views, and `step`
    runs the optimiser once on the flat tensor. If something replaced a gradient tensor (a `zero_grad` of the
    model, say), the gradients are gathered into the buffer first, so the update stays correct.
    """

    def __init__(self, params, optimizer_class: type[torch.optim.Optimizer], **options):
        self.params = list(params)
        if not self.params:
            raise ValueError("FlatOptimizer got no parameters")
        first = self.params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in self.params):
            raise ValueError("FlatOptimizer needs parameters of one dtype on one device")
        total = sum(p.numel() for p in self.params)
        with torch.no_grad():
            flat = torch.empty(total, dtype=first.dtype, device=first.device)
            self.grad = torch.zeros_like(flat)
            self.grads, offset = [], 0
            for p in self.params:
                p_dense = p if is_dense(p) else p.contiguous()
                view = flat.as_strided(p_dense.shape, p_dense.stride(), offset)
                view.copy_(p_dense)
                p.data = view
                p.grad = self.grad.as_strided(p_dense.shape, p_dense.stride(), offset)
                self.grads.append(p.grad)
                offset += p.numel()
        self.flat = torch.nn.Parameter(flat)
        self.flat.grad = self.grad
        self.optimizer = optimizer_class([self.flat], **options, foreach=False)  # one tensor: nothing to group

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients (kept as views of the flat buffer whatever `set_to_none` says)."""
        del set_to_none  # torch's Optimizer interface; the views must stay
        self._reattach()
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        if not all(map(operator.is_, (p.grad for p in self.params), self.grads)):
            self._gather()
        self.optimizer.step()

    def _gather(self) -> None:
        """Copy gradients that are no longer views of the buffer into it (None counts as zero)."""
        for p, view in zip(self.params, self.grads):
            if p.grad is None:
                view.zero_()
            elif p.grad is not view:
                view.copy_(p.grad)
        self._reattach()

    def _reattach(self) -> None:
        for p, view in zip(self.params, self.grads):
            if p.grad is not view:
                p.grad = view

    # ------------------------------------------------------------------------------------ torch's format
    def _is_flat(self, value) -> bool:
        return isinstance(value, torch.Tensor) and value.shape == self.flat.shape

    def state_dict(self) -> dict:
        """torch's per-parameter state dict: each flat state tensor split into views shaped like the parameters."""
        inner = self.optimizer.state_dict()
        flat_state = inner["state"].get(0, {})
        state = {}
        for i, p in enumerate(self.params):
            if not flat_state:
                break
            state[i] = {key: value.as_strided(p.shape, p.stride(), p.storage_offset()) if self._is_flat(value)
                        else value.clone() if isinstance(value, torch.Tensor) else value
                        for key, value in flat_state.items()}
        groups = [{**group, "params": list(range(len(self.params)))} for group in inner["param_groups"]]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load torch's per-parameter format (as `state_dict` writes it, or a plain torch optimiser did)."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"optimiser state for {sum(len(g['params']) for g in groups)} parameters in "
                             f"{len(groups)} groups; this model has {len(self.params)} in one")
        states = [state_dict["state"].get(i, state_dict["state"].get(str(i), {})) for i in groups[0]["params"]]
        if any(states) and not all(states):
            raise ValueError("the optimiser state covers only some of the parameters")
        flat_state = {}
        for key, first in (states[0].items() if all(states) else ()):
            values = [s[key] for s in states]
            if all(isinstance(v, torch.Tensor) and v.shape == p.shape for v, p in zip(values, self.params)):
                # copied into the parameters' own layout first, so that memory order matches the flat buffer
                flat_state[key] = torch.cat([memory_view(torch.empty_like(p).copy_(v))
                                             for p, v in zip(self.params, values)])
            else:
                flat_state[key] = first  # the step count: the same for every parameter
        group = {k: v for k, v in groups[0].items() if k != "params"}
        self.optimizer.load_state_dict({"state": {0: flat_state} if flat_state else {},
                                        "param_groups": [{**group, "params": [0]}]})
