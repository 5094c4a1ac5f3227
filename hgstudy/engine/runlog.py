"""What a training run writes besides checkpoints: TSV logs and metrics.json for `dvc plots` / `dvc metrics`,
and the run's progress (a bar on a terminal, else a line every half minute).

    <out>/train.tsv     step, epoch, loss, loss_stack1..S (+ loss_dec2, loss_dec4 for HG-Int), lr, samples_per_s
    <out>/val.tsv       step, pckh (pck on FLIC), auc, ablation (MPII layout: wrists, elbows, knees, ankles),
                        pckh_stack1..S, ablation_stack1..S
    <out>/metrics.json  the latest values: step, train_loss, val_pckh, val_auc, val_ablation, lr, samples_per_s

Rows are appended as they come, so a killed run leaves at most one partial line; on resume every row after
the checkpoint's step (and any partial line) is dropped, so the files read as if the run had never stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from hgstudy.core.files import write_text


def _format(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class TSVLog:
    def __init__(self, path: Path, resume_step: int | None):
        self.path, self.columns = path, None
        if resume_step is None:
            path.unlink(missing_ok=True)
        elif path.is_file():
            self._truncate(resume_step)

    def _truncate(self, step: int) -> None:
        lines = self.path.read_text().split("\n")
        header, rows = lines[0], lines[1:-1]  # the last element is "" or a partial line
        kept = [r for r in rows if r.split("\t")[0].isdigit() and int(r.split("\t")[0]) <= step]
        write_text(self.path, "\n".join([header, *kept]) + "\n")
        self.columns = header.split("\t")

    def append(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w") as f:
                f.write("\t".join(self.columns) + "\n")
        with open(self.path, "a") as f:
            f.write("\t".join(_format(row.get(c, "")) for c in self.columns) + "\n")


class RunLog:
    """The run's files in `out`; `resume_step` None starts them afresh, else keeps rows up to that step."""

    def __init__(self, out: Path, resume_step: int | None):
        self.out = out
        self.train = TSVLog(out / "train.tsv", resume_step)
        self.val = TSVLog(out / "val.tsv", resume_step)
        self.metrics_path = out / "metrics.json"
        self.metrics: dict = {}
        if resume_step is None:
            self.metrics_path.unlink(missing_ok=True)
        elif self.metrics_path.is_file():
            self.metrics = json.loads(self.metrics_path.read_text())

    def log_train(self, row: dict) -> None:
        self.train.append(row)
        self.metrics.update(step=row["step"], epoch=row["epoch"], train_loss=row["loss"], lr=row["lr"],
                            samples_per_s=row["samples_per_s"])

    def log_val(self, row: dict) -> None:
        self.val.append(row)
        self.metrics.update({f"val_{k}": v for k, v in row.items() if k != "step" and "_stack" not in k})
        self.write_metrics()

    def write_metrics(self) -> None:
        write_text(self.metrics_path, json.dumps(self.metrics, indent=2) + "\n")


class Progress:
    """Progress of a run: on a terminal a tqdm bar over the run's steps with the latest loss; otherwise (notebooks,
    papermill, CI logs, `dvc repro`) one printed line every `interval` seconds, and one per validation."""

    def __init__(self, enabled: bool = True, stream=None, interval: float = 30.0):
        self.stream = stream or sys.stdout
        self.enabled, self.interval = enabled, interval
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar, self.total, self.last_line = None, 0, 0.0

    def start(self, total: int, done: int) -> None:
        self.total, self.last_line = total, time.monotonic()
        if self.tty:
            self.bar = tqdm(total=total, initial=done, desc="train", unit="step", file=self.stream, leave=True,
                            dynamic_ncols=True)

    def step(self, step: int, status: dict) -> None:
        """After optimiser step `step`; `status`: the latest logged values (loss, lr, samples/s)."""
        if self.bar is not None:
            self.bar.update(1)
            if "train_loss" in status:
                self.bar.set_postfix(loss=f"{status['train_loss']:.3g}", refresh=False)
        elif self.enabled and (time.monotonic() - self.last_line >= self.interval or step == self.total):
            self.last_line = time.monotonic()
            self.print(f"step {step}/{self.total}: loss {status.get('train_loss', math.nan):.4g} "
                       f"lr {status.get('lr', math.nan):.3g} {status.get('samples_per_s', math.nan):.1f} samples/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def print(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)
