"""The flat optimiser against torch's own per-parameter optimisers (the oracle): same updates bit for bit,
torch's state-dict format both ways, gradients that arrive in other tensors."""

import pytest
import torch

from hgstudy.engine.optim import FlatOptimizer
from hgstudy.model.network import HourglassConfig, StackedHourglass

OPTIMISERS = [
    (torch.optim.RMSprop, {"lr": 2e-3, "alpha": 0.99, "eps": 1e-8}),
    (torch.optim.RMSprop, {"lr": 1e-3, "alpha": 0.9, "eps": 1e-8, "weight_decay": 1e-4}),
    (torch.optim.Adam, {"lr": 1e-3}),
    (torch.optim.Adam, {"lr": 1e-3, "weight_decay": 1e-2}),
]


def small_model(channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = StackedHourglass(HourglassConfig(stacks=2, modules=1, features=16, joints=4, depth=2, input_res=32,
                                             stem_channels=(8, 16)))
    return model.to(memory_format=torch.channels_last) if channels_last else model


def random_grads(model, step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return [torch.randn(p.shape, generator=g) * 10.0**(step % 3 - 1) for p in model.parameters()]


def set_grads(model, grads, flat: FlatOptimizer | None) -> None:
    if flat is not None:
        flat.zero_grad()
    for p, g in zip(model.parameters(), grads):
        if flat is not None:
            p.grad.add_(g)  # as backward accumulates into an existing gradient
        else:
            p.grad = torch.empty_like(p).copy_(g)  # in the parameter's layout, as autograd makes it


@pytest.mark.parametrize(("cls", "options"), OPTIMISERS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_flat_update_is_torchs_per_parameter_update_bit_for_bit(cls, options, channels_last):
    plain_model, flat_model = small_model(channels_last), small_model(channels_last)
    plain = cls(plain_model.parameters(), **options, foreach=True)
    flat = FlatOptimizer(flat_model.parameters(), cls, **options)
    for step in range(6):
        grads = random_grads(plain_model, step)
        set_grads(plain_model, grads, None)
        set_grads(flat_model, grads, flat)
        plain.step()
        flat.step()
    for (name, a), b in zip(plain_model.named_parameters(), flat_model.parameters()):
        assert a.stride() == b.stride(), name
        assert torch.equal(a, b), name
    plain_state, flat_state = plain.state_dict(), flat.state_dict()
    settings = [[{k: v for k, v in g.items() if k != "foreach"} for g in s["param_groups"]]
                for s in (plain_state, flat_state)]  # foreach: how torch loops, not what it computes
    assert settings[0] == settings[1]
    for i, entry in plain_state["state"].items():
        assert entry.keys() == flat_state["state"][i].keys()
        for key, value in entry.items():
            assert torch.equal(value, flat_state["state"][i][key]), (i, key)


@pytest.mark.parametrize(("cls", "options"), OPTIMISERS[::2])
def test_state_moves_both_ways_between_flat_and_torch_optimisers(cls, options):
    """A checkpoint of either kind resumes in the other and continues exactly as an uninterrupted run."""
    models = [small_model(True) for _ in range(3)]
    reference = FlatOptimizer(models[0].parameters(), cls, **options)
    first = FlatOptimizer(models[1].parameters(), cls, **options)
    for step in range(3):
        grads = random_grads(models[0], step)
        for model, opt in ((models[0], reference), (models[1], first)):
            set_grads(model, grads, opt)
            opt.step()
    # flat -> torch (through a real file, weights_only as checkpoints are read) -> flat
    plain = cls(models[2].parameters(), **options, foreach=True)
    models[2].load_state_dict(models[1].state_dict())
    plain.load_state_dict(first.state_dict())
    set_grads(models[2], random_grads(models[2], 3), None)
    plain.step()
    resumed_model = small_model(True)
    resumed_model.load_state_dict(models[2].state_dict())
    resumed = FlatOptimizer(resumed_model.parameters(), cls, **options)
    resumed.load_state_dict(plain.state_dict())
    for step in (3, 4):
        grads = random_grads(models[0], step)
        if step == 3:
            set_grads(models[0], grads, reference)
            reference.step()
            continue
        for model, opt in ((models[0], reference), (resumed_model, resumed)):
            set_grads(model, grads, opt)
            opt.step()
    for a, b in zip(models[0].parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)


def test_gradients_replaced_by_the_model_still_reach_the_update():
    """model.zero_grad() (set_to_none) detaches the views; backward then makes new tensors, which step gathers."""
    plain_model, flat_model = small_model(True), small_model(True)
    plain = torch.optim.RMSprop(plain_model.parameters(), lr=1e-3, foreach=True)
    flat = FlatOptimizer(flat_model.parameters(), torch.optim.RMSprop, lr=1e-3)
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    for model, opt in ((plain_model, plain), (flat_model, flat)):
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()
    for a, b in zip(plain_model.parameters(), flat_model.parameters()):
        assert torch.equal(a, b)
    assert all(p.grad is view for p, view in zip(flat_model.parameters(), flat.grads))


def test_state_of_another_model_is_refused():
    small, other = small_model(False), StackedHourglass(HourglassConfig(stacks=1, features=8, depth=2, input_res=32))
    flat = FlatOptimizer(small.parameters(), torch.optim.Adam, lr=1e-3)
    with pytest.raises(ValueError, match="parameters"):
        flat.load_state_dict(torch.optim.Adam(other.parameters()).state_dict())
