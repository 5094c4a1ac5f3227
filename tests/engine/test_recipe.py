"""The recipe's options for short budgets: warm-up and linear decay, a moving average of the weights, a fresh start
that deletes only a run's own files."""

import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.engine.config import TrainConfig
from hgstudy.engine.step import LRSchedule, WeightAverage, make_optimizer
from hgstudy.engine.train import clear_run, train
from hgstudy.model.checkpoint import read_checkpoint
from tests.engine.test_train import tiny


def rates(config: TrainConfig) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=123.0)
    schedule, out = LRSchedule(config, opt), [opt.param_groups[0]["lr"]]
    for step in range(1, config.steps):
        schedule.after_step(step)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_warmup_then_linear_decay_to_zero_by_hand():
    # warm-up over 4 steps: lr x 1/4, 2/4, 3/4, 1; then (12 - step) / (12 - 4) down to 1/8 at the last step
    expected = [0.25, 0.5, 0.75, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    assert rates(tiny(schedule="linear", warmup=4, lr=1.0, steps=12)) == pytest.approx(expected)
    # warm-up before step drops: the drop at 6 applies to the full rate
    assert rates(tiny(schedule="steps", lr_steps=[6], lr_drop=0.5, warmup=2, lr=1.0, steps=8)) == pytest.approx(
        [0.5, 1, 1, 1, 1, 1, 0.5, 0.5])


def test_a_linear_schedule_resumes_at_its_step_and_its_length_decides_results():
    config = tiny(schedule="linear", warmup=2, lr=1.0, steps=10)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    first = LRSchedule(config, opt)
    first.after_step(6)
    again = LRSchedule(config, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))
    again.load_state_dict(first.state_dict())
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(0.5)  # (10 - 6) / (10 - 2)
    longer = tiny(schedule="linear", warmup=2, lr=1.0, steps=20)
    assert longer.differences(config.to_dict()) == ["steps: checkpoint 10, now 20"]
    assert tiny(steps=20).differences(tiny(steps=10).to_dict()) == []  # other schedules: a run may be extended
    with pytest.raises(UserError, match="warmup: 10 steps leave none"):
        tiny(schedule="linear", warmup=10, steps=10)


def test_weight_average_by_hand():
    model = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(model, decay=0.9)
    expected = None
    for n, value in enumerate([1.0, 3.0, 5.0, 7.0]):
        model.weight.data.fill_(value)
        average.update_parameters(model)
        decay = min(0.9, (1 + n) / (10 + n))  # n updates averaged before this one
        expected = value if n == 0 else decay * expected + (1 - decay) * value
        assert float(average.module.weight.detach()) == pytest.approx(expected)
    assert float(average.module.weight.detach()) == pytest.approx((4 / 13) * ((3 / 12) * ((2 / 11) * 1 + (9 / 11) * 3)
                                                                     + (9 / 12) * 5) + (9 / 13) * 7)


def test_the_final_model_is_the_weight_average_and_a_resumed_run_averages_on_exactly(tmp_path):
    common = {"batch_size": 4, "val_every": 100, "checkpoint_every": 2, "log_every": 1, "ema": 0.5, "lr": 1e-2}
    train(tiny(steps=4, **common), tmp_path / "straight", progress=False)
    train(tiny(steps=2, **common), tmp_path / "resumed", progress=False)
    train(tiny(steps=4, **common), tmp_path / "resumed", progress=False)
    final = read_checkpoint(tmp_path / "straight" / "model.pt")["model"]
    for name, value in read_checkpoint(tmp_path / "resumed" / "model.pt")["model"].items():
        assert torch.equal(value, final[name]), name
    live = read_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model"]
    assert any(not torch.equal(live[k], final[k]) for k in final if final[k].is_floating_point())  # the average


def test_nesterov_sgd_is_torchs():
    model = torch.nn.Linear(2, 1)
    opt = make_optimizer(tiny(optimizer="sgd", lr=0.1), model, flat=False)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9


def test_a_fresh_start_removes_a_runs_own_files_and_refuses_any_other_folder(tmp_path):
    train(tiny(batch_size=4, steps=2, val_every=2), tmp_path / "run", progress=False)
    (tmp_path / "run" / "model.pt.123.abc.partial").write_bytes(b"x")
    clear_run(tmp_path / "run")
    assert list((tmp_path / "run").iterdir()) == []
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (precious / "train.tsv").write_text("a run's name, but not a run's folder")
    with pytest.raises(UserError, match=r"holds files that a training run does not write \(thesis.tex\)"):
        clear_run(precious)
    assert (precious / "thesis.tex").read_text() == "years of work" and (precious / "train.tsv").exists()
    assert clear_run(tmp_path / "new") == tmp_path / "new" and not (tmp_path / "new").exists()
