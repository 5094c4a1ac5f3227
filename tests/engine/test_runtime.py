"""The automatic speed choices: precision by hardware and network size, and how a CPU's cores are shared between
torch and the data; data from a worker process is the same data."""

import cv2
import pytest
import torch

from hgstudy.core.errors import UserError
from hgstudy.engine import runtime as rt
from hgstudy.engine.config import TrainConfig
from hgstudy.engine.train import train
from hgstudy.model.checkpoint import read_checkpoint
from hgstudy.model.network import HourglassConfig
from hgstudy.model.size import summarize

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)
STUDY_NET = HourglassConfig(stacks=8, modules=1, features=32, stem_channels=(16, 32), input_res=64)
ISSUE_NET = HourglassConfig(stacks=8, modules=1, features=64, stem_channels=(16, 32), input_res=128)


def test_the_study_network_is_small_and_the_larger_ones_are_not():
    """The threshold sits between the measured cases (benchmarks/cpu/*/loading.json): the study's 8 x 1 network
    (0.07 GFLOP a sample) gains little from a second thread; 0.22 and 0.9 GFLOP networks do."""
    assert rt.small_network(summarize(STUDY_NET)["gflops"])
    assert not rt.small_network(summarize(ISSUE_NET)["gflops"])
    assert not rt.small_network(summarize(HourglassConfig(stacks=8, modules=1, features=64, input_res=64,
                                                          stem_channels=(16, 32)))["gflops"])
    assert not rt.small_network(None)  # unknown size: no size-based choice


@pytest.mark.parametrize(("native_bf16", "gflop", "expected"), [
    (True, 0.9, "bf16"), (True, 0.07, "fp32"), (True, None, "bf16"), (False, 0.9, "fp32"), (False, 0.07, "fp32")])
def test_auto_precision_on_a_cpu_uses_bf16_only_where_it_pays(monkeypatch, native_bf16, gflop, expected):
    monkeypatch.setattr(rt, "bf16_supported", lambda device: native_bf16)
    assert rt.resolve_precision("auto", CPU, gflop) == expected
    runtime = rt.resolve_runtime("cpu", "auto", "auto", gflop=gflop)
    assert runtime.precision == expected
    if native_bf16 and expected == "fp32":
        assert "small network" in runtime.reason


def test_asked_for_precision_is_kept_or_refused(monkeypatch):
    monkeypatch.setattr(rt, "bf16_supported", lambda device: True)
    assert rt.resolve_precision("bf16", CPU, 0.07) == "bf16"  # asked for: kept even where it does not pay
    monkeypatch.setattr(rt, "bf16_supported", lambda device: False)
    with pytest.raises(UserError, match="no native bf16"):
        rt.resolve_precision("bf16", CPU)


@pytest.mark.parametrize(("cores", "device", "gflop", "processes", "workers", "threads"), [
    (2, CPU, 0.07, 1, 1, 1),      # the study on a 2-core laptop: a worker renders, torch keeps one core
    (8, CPU, 0.07, 1, 1, 7),
    (2, CPU, 0.9, 1, 0, None),    # a larger network keeps both cores; data in the training process
    (1, CPU, 0.07, 1, 0, None),   # one core: nothing to share
    (4, CPU, 0.07, 2, 0, None),   # torchrun on a CPU: each process loads its own data
    (16, CUDA, 55.0, 1, 8, None),
    (4, CUDA, 55.0, 1, 3, None),
])
def test_auto_loading_shares_the_cores(monkeypatch, cores, device, gflop, processes, workers, threads):
    monkeypatch.setattr(rt, "usable_cores", lambda: cores)
    loading = rt.resolve_loading("auto", device, gflop, processes)
    assert (loading.workers, loading.threads) == (workers, threads)
    assert "auto" in loading.reason


def test_an_explicit_worker_count_is_kept_and_a_bad_one_refused():
    assert rt.resolve_loading(3, CPU, 0.07) == rt.Loading(3, None, "3 data workers (asked for)")
    for bad in (-1, "some", True):
        with pytest.raises(UserError, match="num_workers"):
            rt.resolve_loading(bad, CPU, 0.07)
    with pytest.raises(UserError, match="num_workers"):
        TrainConfig(num_workers="many")


def test_applied_loading_sets_and_restores_the_thread_counts():
    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    with rt.Loading(1, 1, "test").applied():
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (torch_before, cv2_before)


def test_a_run_fed_by_a_worker_process_ends_bit_for_bit_like_one_fed_in_process(tmp_path):
    """The worker renders the same samples (seeded by seed, index and epoch); with the same thread count the two
    runs compute the same numbers."""
    base = {"dataset": "mannequin", "stacks": 1, "features": 16, "depth": 3, "input_res": 64,
            "stem_channels": [8, 16], "precision": "fp32", "device": "cpu", "batch_size": 4, "steps": 6,
            "val_every": 6, "val_samples": 8, "log_every": 3}
    for workers in (0, 1):
        train(TrainConfig.from_dict({**base, "num_workers": workers}), tmp_path / str(workers), progress=False)
    a, b = (read_checkpoint(tmp_path / w / "model.pt")["model"] for w in "01")
    assert all(torch.equal(a[k], b[k]) for k in a)
