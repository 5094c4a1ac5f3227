"""Training: the loss, HG-Int targets, learning, checkpoints (refusal, resume after SIGKILL), non-finite losses."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.engine.config import TrainConfig
from hgstudy.engine.loss import Collate, masked_mse
from hgstudy.engine.step import LRSchedule, TrainStep
from hgstudy.engine.train import train
from hgstudy.model.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY = {"dataset": "mannequin", "stacks": 2, "features": 16, "depth": 3, "input_res": 64, "stem_channels": [8, 16],
        "precision": "fp32", "device": "cpu", "num_workers": 0, "val_samples": 16}


def tiny(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


def test_masked_mse_by_hand():
    rng = np.random.default_rng(0)
    pred, target = rng.random((2, 3, 4, 5, 5)), rng.random((2, 4, 5, 5))  # (B, S, J, h, w), (B, J, h, w)
    weight = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], dtype=float)
    expected = [sum(weight[b, j] * (pred[b, s, j] - target[b, j]) ** 2 for b in range(2) for j in range(4)).sum()
                / (2 * 4 * 25) for s in range(3)]
    got = masked_mse(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(weight))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_hg_int_targets_are_drawn_at_half_and_quarter_resolution():
    sample = {"joints_hm": np.array([[10.0, 5.0], [30.0, 30.0]], np.float32), "target_weight": np.ones(2, np.float32)}
    batch = Collate(heatmap_res=32, sigma=1.0, decoder_heads=2)([sample])
    t2, t4 = batch["target_dec2"][0], batch["target_dec4"][0]
    assert t2.shape == (2, 16, 16) and t4.shape == (2, 8, 8)
    # Pixel-centre alignment u' = f (u + 0.5) - 0.5: (10, 5) -> (4.75, 2.25) at 1/2 and (2.125, 0.875) at 1/4;
    # sigma 1 in each map's own pixels.
    for t, (cx, cy), peak in ((t2, (4.75, 2.25), (5, 2)), (t4, (2.125, 0.875), (2, 1))):
        assert np.unravel_index(int(t[0].argmax()), t[0].shape) == peak[::-1]
        for x, y in ((4, 2), (2, 1), (3, 0), (5, 3)):
            expected = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 2)
            assert float(t[0, y, x]) == pytest.approx(expected, rel=1e-5)
    # (30, 30) -> (14.75, 14.75) and (7.125, 7.125): still inside both maps.
    assert batch["target_dec2_weight"][0].tolist() == [1, 1] and batch["target_dec4_weight"][0].tolist() == [1, 1]


def test_plateau_schedule_drops_after_patience():
    config = tiny(schedule="plateau", plateau_patience=2, plateau_min_delta=0.5, lr=1.0, lr_drop=0.2)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = LRSchedule(config, opt)
    lrs = []
    for metric in [10, 20, 20.4, 20.3, 20.2, 30, 30, 30, 30]:
        s.after_validation(metric)
        lrs.append(opt.param_groups[0]["lr"])
    # Three validations without +0.5 (20.4, 20.3, 20.2) exceed patience 2 -> one drop; likewise at the end.
    assert lrs == pytest.approx([1, 1, 1, 1, 0.2, 0.2, 0.2, 0.2, 0.04])


def test_tiny_model_learns_on_mannequins(tmp_path, capsys):
    metrics = train(tiny(batch_size=8, steps=40, log_every=10, val_every=40, checkpoint_every=40, lr=1e-3), tmp_path)
    log = pd.read_csv(tmp_path / "train.tsv", sep="\t")
    assert list(log.step) == [10, 20, 30, 40]
    assert log.loss.iloc[-1] < 0.6 * log.loss.iloc[0]
    assert list(log.columns) == ["step", "epoch", "loss", "loss_stack1", "loss_stack2", "lr", "samples_per_s"]
    np.testing.assert_allclose(log.loss, log.loss_stack1 + log.loss_stack2, rtol=1e-5)
    val = pd.read_csv(tmp_path / "val.tsv", sep="\t")
    assert list(val.columns) == ["step", "pckh", "auc", "ablation", "pckh_stack1", "ablation_stack1", "pckh_stack2",
                                 "ablation_stack2"] and list(val.step) == [40]
    assert metrics["step"] == 40 and metrics["val_pckh"] == pytest.approx(val.pckh.iloc[-1], rel=1e-5)
    assert metrics["val_ablation"] == pytest.approx(val.ablation.iloc[-1], rel=1e-5)
    assert set(read_checkpoint(tmp_path / "model.pt")) >= {"model", "model_config", "train_config"}
    out = capsys.readouterr().out.splitlines()
    # not a terminal: no bar; the runtime chosen and why, a line per validation, one per half minute and the last
    assert not any("\r" in line for line in out)
    assert out[0].startswith("runtime: cpu") and "precision" in out[0]
    assert [line for line in out if ": val " in line] == [out[-2]] and out[-2].startswith("step 40: val pckh")
    assert out[-1].startswith("step 40/40: loss") and all(line.startswith("step ") for line in out[1:])


def test_hg_int_model_trains_with_decoder_losses(tmp_path):
    train(tiny(stacks=1, decoder_heads=True, batch_size=4, steps=2, log_every=1, val_every=2), tmp_path,
          progress=False)
    log = pd.read_csv(tmp_path / "train.tsv", sep="\t")
    assert {"loss_stack1", "loss_dec2", "loss_dec4"} <= set(log.columns)
    np.testing.assert_allclose(log.loss, log.loss_stack1 + log.loss_dec2 + log.loss_dec4, rtol=1e-5)


def test_a_depth_2_hg_int_trains_its_one_decoder_head(tmp_path):
    train(tiny(stacks=1, depth=2, decoder_heads=True, batch_size=4, steps=2, log_every=1, val_every=2), tmp_path,
          progress=False)
    log = pd.read_csv(tmp_path / "train.tsv", sep="\t")
    assert "loss_dec2" in log.columns and "loss_dec4" not in log.columns
    np.testing.assert_allclose(log.loss, log.loss_stack1 + log.loss_dec2, rtol=1e-5)


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    train(tiny(batch_size=4, steps=2, val_every=2), tmp_path, progress=False)
    with pytest.raises(UserError, match=r"another configuration \(lr: checkpoint 0.00025, now 0.001; "
                                        r"stacks: checkpoint 2, now 1\)"):
        train(tiny(batch_size=4, steps=4, val_every=2, lr=1e-3, stacks=1), tmp_path, progress=False)


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    real_step, calls = TrainStep.__call__, []

    def poisoned(self, batch):
        parts = real_step(self, batch)
        calls.append(1)
        return parts * float("nan") if len(calls) == 7 else parts

    monkeypatch.setattr(TrainStep, "__call__", poisoned)
    with pytest.raises(UserError, match=r"the loss is not finite at step 7 .*last good checkpoint .* is kept"):
        train(tiny(batch_size=4, steps=20, log_every=10, checkpoint_every=5, val_every=100), tmp_path,
              progress=False)
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    assert not (tmp_path / "model.pt").exists()


# ---------------------------------------------------------------------------------------- resume after kill
RESUME_ARGS = ["--dataset", "mannequin", "--stacks", "2", "--features", "16", "--depth", "3", "--input-res", "64",
               "--stem-channels", "[8, 16]", "--precision", "fp32", "--device", "cpu", "--num-workers", "0",
               "--batch-size", "4", "--steps", "36", "--checkpoint-every", "6", "--val-every", "12",
               "--val-samples", "8", "--log-every", "3", "--schedule", "steps", "--lr-steps", "[10, 25]",
               "--optimizer", "adam", "--lr", "1e-3", "--seed", "3", "--quiet"]


def start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "hgstudy.engine.train", "--out", str(out), *RESUME_ARGS], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(proc: subprocess.Popen, ready, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"training ended before it could be stopped: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, "training did not get there in time"
        time.sleep(0.005)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 180) -> None:
    wait_for(proc, ready, timeout)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def val_rows(out: Path) -> int:
    path = out / "val.tsv"
    return len(path.read_text().splitlines()) - 1 if path.is_file() else 0


@pytest.mark.slow
def test_a_run_killed_with_sigkill_and_resumed_ends_exactly_like_an_uninterrupted_one(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    reference = start(whole)
    # First kill: right after the first checkpoint appears. Second kill (of the resumed run): right after a
    # validation row is written, before the checkpoint of that step, so logged rows must be rolled back.
    kill_when(start(broken), lambda: (broken / "checkpoint.pt").exists())
    kill_when(start(broken), lambda: val_rows(broken) >= 2)
    assert not (broken / "model.pt").exists()
    finish = start(broken)
    assert finish.wait(120) == 0, finish.stderr.read().decode()
    assert reference.wait(120) == 0, reference.stderr.read().decode()

    a, b = read_checkpoint(whole / "model.pt"), read_checkpoint(broken / "model.pt")
    assert a["step"] == b["step"] == 36
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), f"{key} differs after resuming"
    ca, cb = read_checkpoint(whole / "checkpoint.pt"), read_checkpoint(broken / "checkpoint.pt")
    for group_a, group_b in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert all(torch.equal(group_a[k], group_b[k]) for k in group_a)
    for name in ("val.tsv", "train.tsv"):
        ta = pd.read_csv(whole / name, sep="\t").drop(columns="samples_per_s", errors="ignore")
        tb = pd.read_csv(broken / name, sep="\t").drop(columns="samples_per_s", errors="ignore")
        pd.testing.assert_frame_equal(ta, tb, check_exact=True)
    assert list(pd.read_csv(broken / "train.tsv", sep="\t").lr) == pytest.approx([1e-3] * 3 + [2e-4] * 5 + [4e-5] * 4)


@pytest.mark.slow
def test_model_benchmark_reports_speed_memory_the_baseline_and_the_matmul_share():
    from hgstudy.engine.bench import benchmark
    from hgstudy.engine.runtime import resolve_runtime
    from hgstudy.model.network import HourglassConfig

    config = HourglassConfig(stacks=1, features=16, depth=3, input_res=64, stem_channels=(8, 16))
    for mode, data in (("train", False), ("infer", False), ("train", True)):
        r = benchmark(config, 2, mode, resolve_runtime("cpu"), baseline=True, data=data, repeats=2, warmup=1,
                      seconds=0.05, max_foreign=1.0)
        assert r["images_per_s"] > 0 and r["baseline_images_per_s"] > 0 and r["peak_mem_mb"] > 0
        assert r["clean_blocks"] == r["blocks"] == 2 and len(r["foreign_cpu_share"]) == 2
        low, high = r["speedup_range"]
        assert low <= r["speedup"] <= high  # the median of the two paired ratios lies between them
        assert r["gflops"] == pytest.approx(r["images_per_s"] * r["gflop_per_image"])
        low, high = r["matmul_fp32_share_range"]  # each block against the matmul rate measured right after it
        assert 0 < low <= r["matmul_fp32_share"] <= high and r["matmul_fp32_gflops"] > 1
        assert r["data"] is data
        assert "avx2" in r["machine"]["flags"] or r["machine"]["flags"] == []


# ------------------------------------------------------------------ non-finite state, unwritable folders
def poison_batchnorm_at(monkeypatch, call: int) -> None:
    """From training step `call` on, a BatchNorm running variance is infinite while the loss stays finite
    (what --lr 1e6 did: the loss is computed with batch statistics, the running ones overflow)."""
    real_step, calls = TrainStep.__call__, []

    def poisoned(self, batch):
        parts = real_step(self, batch)
        calls.append(1)
        if len(calls) == call:
            bn = next(m for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("inf"))
        return parts

    monkeypatch.setattr(TrainStep, "__call__", poisoned)


def test_non_finite_weights_with_a_finite_loss_never_reach_a_checkpoint(tmp_path, monkeypatch):
    from hgstudy.model.checkpoint import non_finite

    poison_batchnorm_at(monkeypatch, 7)
    with pytest.raises(UserError, match=r"the weights or optimiser state are not finite at step 10 \(model\..*"
                                        r"running_var\); the last good checkpoint .*checkpoint.pt \(step 5\) is kept"):
        train(tiny(batch_size=4, steps=20, log_every=5, checkpoint_every=5, val_every=100), tmp_path, progress=False)
    kept = read_checkpoint(tmp_path / "checkpoint.pt")
    assert kept["step"] == 5 and non_finite({k: v for k, v in kept.items() if k != "model_config"}) == []
    assert not (tmp_path / "model.pt").exists()
    assert sorted(p.name for p in tmp_path.glob("*.pt*")) == ["checkpoint.pt"]


def test_non_finite_weights_before_any_checkpoint_say_so(tmp_path, monkeypatch):
    poison_batchnorm_at(monkeypatch, 2)
    with pytest.raises(UserError, match=r"not finite at step 4 .*; no checkpoint had been written yet"):
        train(tiny(batch_size=4, steps=8, log_every=4, checkpoint_every=4, val_every=100), tmp_path, progress=False)
    assert list(tmp_path.glob("*.pt*")) == []


def test_a_non_finite_checkpoint_on_disk_is_never_called_good_nor_resumed(tmp_path):
    from hgstudy.engine.train import last_good_checkpoint

    train(tiny(batch_size=4, steps=2, val_every=2), tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # as an older version could have left it
    key = next(k for k in state["model"] if k.endswith("running_var"))
    state["model"][key][0] = float("nan")
    del state["sha256"]
    torch.save(state, tmp_path / "checkpoint.pt")
    assert last_good_checkpoint(tmp_path / "checkpoint.pt").endswith("is not usable either: delete it to start over")
    with pytest.raises(UserError, match=rf"checkpoint .* holds non-finite values \(model\.{key}\)"):
        train(tiny(batch_size=4, steps=4, val_every=2), tmp_path, progress=False)


@pytest.mark.parametrize(("flags", "message"), [
    (["--lr", "0"], "--lr: must be greater than 0.0, got 0.0"),
    (["--lr=-1e-3"], "--lr: must be greater than 0.0"),
    (["--lr", "nan"], "--lr: must be a finite number"),
    (["--lr", ".inf"], "--lr: must be a finite number"),
    (["--lr", "1e6"], "--lr: must be at most 10.0"),
    (["--schedule", "steps", "--lr-steps", "[9]", "--lr-drop", "1e42"], "--lr_drop: must be at most 1.0"),
    (["--schedule", "steps", "--lr-steps", "[9, 3]"], "lr_steps: must be increasing"),
    (["--schedule", "steps", "--lr-steps", "[0]"], r"--lr_steps\[0\]: must be at least 1"),
    (["--batch-size", "0"], "--batch_size: must be at least 1"),
    (["--steps", "1e30"], "--steps: must be at most 1000000000"),
])
def test_bad_training_flags_exit_2_before_anything_is_written(tmp_path, capsys, flags, message):
    from hgstudy import cli

    assert cli.main(["train", "--out", str(tmp_path / "run"), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_training_or_resuming_on_a_read_only_folder_fails_before_building_anything(tmp_path, monkeypatch,
                                                                                    refuse_writes):
    import hgstudy.engine.train as train_module

    run = tmp_path / "run"
    train(tiny(batch_size=4, steps=2, val_every=2), run, progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    refuse_writes(tmp_path)
    monkeypatch.setattr(train_module, "config_dataset", lambda *a: pytest.fail("built before the check"))
    for out in (run, tmp_path / "fresh"):  # resuming, starting
        with pytest.raises(UserError, match=rf"the file system is read-only while creating a file in {out}; "
                                            "choose a folder you can write to"):
            train(tiny(batch_size=4, steps=4, val_every=2), out, progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before and not (tmp_path / "fresh").exists()


def test_a_full_disk_at_a_checkpoint_is_one_clear_error_and_keeps_the_last_one(tmp_path, monkeypatch):
    import shutil

    import hgstudy.model.checkpoint as checkpoint_module

    real_save, saves = torch.save, []

    def save_on_a_filling_disk(obj, path, *a, **kw):
        saves.append(path)
        if len(saves) == 2:
            Path(path).write_bytes(b"PK\x03\x04 half")
            monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12, 0))
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054")
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(checkpoint_module.torch, "save", save_on_a_filling_disk)
    with pytest.raises(UserError, match=rf"no space left on device while writing {tmp_path / 'checkpoint.pt'}; "
                                        "free some space or choose another folder"):
        train(tiny(batch_size=4, steps=20, log_every=5, checkpoint_every=5, val_every=100), tmp_path, progress=False)
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    assert sorted(p.name for p in tmp_path.glob("*.pt*")) == ["checkpoint.pt"]  # no .partial left


# ------------------------------------------------------------------- one writer, no stale final model, Ctrl-C
def tiny_command(out: Path, *extra: str, entry: tuple[str, ...] = ("hgstudy.cli", "train")) -> list[str]:
    return [sys.executable, "-m", *entry, "--out", str(out), "--stacks", "1", "--modules", "1", "--features", "8",
            "--stem-channels", "[8, 8]", "--input-res", "64", "--batch-size", "2", "--val-samples", "4",
            "--num-workers", "0", "--precision", "fp32", "--device", "cpu", "--quiet", *extra]


def start_tiny(out: Path, *extra: str, **kw) -> subprocess.Popen:
    # SIGINT as at a terminal (a shell's background job would inherit it ignored)
    return subprocess.Popen(tiny_command(out, *extra, **kw), cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_extending_a_finished_run_removes_its_final_model_before_the_first_step(tmp_path, monkeypatch):
    train(tiny(stacks=1, batch_size=4, steps=2, val_every=2), tmp_path, progress=False)
    assert read_checkpoint(tmp_path / "model.pt")["step"] == 2

    def interrupted(self, batch):
        assert not (tmp_path / "model.pt").exists(), "the step-2 model was still there at step 3"
        raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setattr(TrainStep, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted at step 2 \(the checkpoint of step 2 is kept\); "
                                                 "run the same command to resume$"):
        train(tiny(stacks=1, batch_size=4, steps=4, val_every=2), tmp_path, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "metrics.json", "train.tsv", "val.tsv"]
    monkeypatch.undo()
    train(tiny(stacks=1, batch_size=4, steps=4, val_every=2), tmp_path, progress=False)
    assert read_checkpoint(tmp_path / "model.pt")["step"] == 4


@pytest.mark.slow
def test_a_second_writer_of_a_run_folder_is_refused_at_once_naming_the_first(tmp_path):
    lock = tmp_path / "train.lock"
    first = start_tiny(tmp_path, "--steps", "300", "--log-every", "1", "--checkpoint-every", "20")
    wait_for(first, lambda: lock.exists() and lock.read_text().startswith("pid"))
    second = subprocess.run(tiny_command(tmp_path, "--steps", "300", "--log-every", "1", "--checkpoint-every", "20"),
                            cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                            timeout=120)
    assert first.poll() is None, "the first run ended before the second one could be refused"
    assert second.returncode == 2
    assert re.fullmatch(rf"hgstudy train: error: {re.escape(str(tmp_path))} is being trained by pid {first.pid} on "
                        rf"host {re.escape(socket.gethostname())} since \S+; wait for it or stop it\n",
                        second.stderr), second.stderr
    assert first.wait(180) == 0, first.stderr.read().decode()
    assert list(pd.read_csv(tmp_path / "train.tsv", sep="\t").step) == list(range(1, 301))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "metrics.json", "model.pt", "train.tsv", "val.tsv"]


@pytest.mark.slow
@pytest.mark.parametrize("entry", [("hgstudy.cli", "train"), ("hgstudy.engine.train",)])
def test_ctrl_c_stops_training_in_one_line_with_exit_130_and_keeps_the_checkpoint(tmp_path, entry):
    proc = start_tiny(tmp_path, "--steps", "100000", "--checkpoint-every", "5", entry=entry)
    wait_for(proc, lambda: (tmp_path / "checkpoint.pt").exists())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    err = proc.stderr.read().decode()
    stopped = re.fullmatch(r"hgstudy train: interrupted at step (\d+) \(the checkpoint of step (\d+) is kept\); "
                           r"run the same command to resume\n", err)
    assert stopped, err
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == int(stopped[2]) <= int(stopped[1])
    assert "checkpoint.pt" in os.listdir(tmp_path)
    assert set(os.listdir(tmp_path)) <= {"checkpoint.pt", "train.tsv", "val.tsv", "metrics.json"}  # no partial, lock


@pytest.mark.slow
def test_a_run_extended_and_killed_leaves_no_final_model_to_mistake_for_its_result(tmp_path, capsys):
    from hgstudy import cli

    finished = subprocess.run(tiny_command(tmp_path, "--steps", "4"), cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert finished.returncode == 0, finished.stderr
    stale, ckpt = (tmp_path / "model.pt").read_bytes(), tmp_path / "checkpoint.pt"
    written = ckpt.stat().st_ino
    kill_when(start_tiny(tmp_path, "--steps", "400", "--checkpoint-every", "10"), lambda: ckpt.stat().st_ino != written)
    assert read_checkpoint(ckpt)["step"] > 4 and not (tmp_path / "model.pt").exists()
    # A run folder from before resuming removed model.pt: evaluate names the mismatch rather than score it.
    (tmp_path / "model.pt").write_bytes(stale)
    assert cli.main(["evaluate", str(tmp_path / "model.pt"), "--limit", "2"]) == 2
    assert f"{tmp_path / 'model.pt'} is the final model of step 4, but {ckpt} beside it is at step" in (
        capsys.readouterr().err)
