#!/usr/bin/env bash
# Set up the environment, then run the whole study pipeline (default: embedded data, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv=${HGSTUDY_VENV:-.venv}
export DVC_NO_ANALYTICS=1 PATH="$PWD/$venv/bin:$PATH"
# The stages print "stage k of N" with the time elapsed and left: the study's start and stage count go here.
export HGSTUDY_PROGRESS=.dvc/tmp/hgstudy-progress
mkdir -p .dvc/tmp
trap 'rm -f "$HGSTUDY_PROGRESS"' EXIT
# (what `dvc status` finds changed: every stage on a fresh clone; stages changed only by an upstream one it cannot
# know of, so "k of N" then grows N as they come)
echo "$(date +%s) $(dvc status --json "$@" | python -c 'import json, sys; print(len(json.load(sys.stdin)))')" \
    > "$HGSTUDY_PROGRESS"
dvc repro "$@"
