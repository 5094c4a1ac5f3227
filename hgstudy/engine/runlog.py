"""What a training run writes besides checkpoints: TSV logs and metrics.json for `dvc plots` / `dvc metrics`,
and one progress line per epoch when the output is not a terminal (notebooks, papermill, CI logs).

    <out>/train.tsv     step, epoch, loss, loss_stack1..S (+ loss_dec2, loss_dec4 for HG-Int), lr, samples_per_s
    <out>/val.tsv       step, pckh (pck on FLIC), auc, pckh_stack1..S
    <out>/metrics.json  the latest values: step, train_loss, val_pckh, val_auc, lr, samples_per_s

Rows are appended as they come, so a killed run leaves at most one partial line; on resume every row after
the checkpoint's step (and any partial line) is dropped, so the files read as if the run had never stopped.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from tqdm import tqdm


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
        tmp = self.path.with_name(self.path.name + ".partial")
        tmp.write_text("\n".join([header, *kept]) + "\n")
        tmp.replace(self.path)
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
        tmp = self.metrics_path.with_name("metrics.json.partial")
        tmp.write_text(json.dumps(self.metrics, indent=2) + "\n")
        os.replace(tmp, self.metrics_path)


class Progress:
    """A tqdm bar per epoch on a terminal; otherwise one printed line per epoch and per validation."""

    def __init__(self, enabled: bool = True, stream=None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None

    def start_epoch(self, epoch: int, total: int, done: int) -> None:
        if self.tty:
            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}", file=self.stream, leave=True,
                            dynamic_ncols=True)

    def step(self, loss: float | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.3g}", refresh=False)

    def end_epoch(self, text: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.print(text)

    def print(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)
