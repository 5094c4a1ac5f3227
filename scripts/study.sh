#!/usr/bin/env bash
# Set up the environment, then run the whole study pipeline (default: embedded data, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv=${HGSTUDY_VENV:-.venv}
export DVC_NO_ANALYTICS=1 PATH="$PWD/$venv/bin:$PATH"
dvc repro "$@"
