#!/usr/bin/env bash
# Set up the environment, then run every check: lint, unit tests and the notebooks (nbval, tiny parameters).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv=${HGSTUDY_VENV:-.venv}
export DVC_NO_ANALYTICS=1 PYTHONDONTWRITEBYTECODE=1
"$venv/bin/ruff" check hgstudy tests notebooks/conftest.py
"$venv/bin/python" -m pytest "$@"
