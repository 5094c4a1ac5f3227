"""Where a study run's wall time went: the share spent in training steps.

    python benchmarks/study_time.py --wall-s 3300 --json benchmarks/study_time.json [--results results]

A run's time in training steps is read from its train.tsv (each row: the steps since the last row at the
samples/s the row reports, validation excluded). The seeds of a variant train side by side, so a train stage
spends the longest of its runs' times in training steps; the study's share is the sum over variants of that,
over the measured wall time of `dvc repro` (`--wall-s`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def training_seconds(train_tsv: Path, batch_size: int) -> float:
    log = pd.read_csv(train_tsv, sep="\t")
    steps = log.step.diff().fillna(log.step.iloc[0])
    return float((steps * batch_size / log.samples_per_s).sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wall-s", type=float, required=True, help="the measured wall time of dvc repro")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for run in sorted((args.results / "train").glob("*/*/run.json")):
        info = json.loads(run.read_text())
        rows.append({"variant": info["variant"], "run": run.parent.name, "steps": info["steps"],
                     "train_s": training_seconds(run.parent / "train.tsv", info["batch_size"])})
    runs = pd.DataFrame(rows)
    per_stage = runs.groupby("variant").train_s.max()
    share = float(per_stage.sum()) / args.wall_s
    print(runs.to_string(index=False, float_format="%.1f"))
    print(f"train stages' time in training steps: {per_stage.sum():.0f} s of {args.wall_s:.0f} s wall = {share:.1%}")
    if args.json:
        args.json.write_text(json.dumps({"wall_s": args.wall_s, "training_steps_s": float(per_stage.sum()),
                                         "share": share, "runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
