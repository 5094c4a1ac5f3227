#!/usr/bin/env bash
# The GPU check, one command for the day a CUDA machine is at hand: `bash scripts/gpu-check.sh` (about 5 minutes).
# Prints and writes benchmarks/gpu.json: training and inference images/s and peak memory of the paper's 8 x 256
# network at 256 px, at batch 6 and at the largest batch that fits, with bf16 autocast, channels_last and
# torch.compile each on and off; the data loader's samples/s from a crop store with 4, 8 and 16 workers; and
# 200 steps of the paper profile on a synthetic MPII mirror whose loss must fall (scripts/gpu_check.py says more).
# Without CUDA it says so and exits 0. GPU_CHECK_CPU=1: the same code with tiny sizes on the CPU (a dry run that
# keeps the check from rotting; it writes scratch/gpu-check-cpu.json). Arguments go to scripts/gpu_check.py
# (--budget SECONDS, --out FILE, --annotations DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HGSTUDY_VENV:-.venv}
export PYTHONUNBUFFERED=1 PIP_RETRIES=${PIP_RETRIES:-1} PIP_TIMEOUT=${PIP_TIMEOUT:-20}
# The environment as every command makes it (scripts/setup.sh). A GPU machine without a package index can still
# hold all the package itself needs (torch, numpy, opencv, h5py, ...): then its Python runs this checkout.
if bash scripts/setup.sh; then
    py=$venv/bin/python
else
    py=${PYTHON:-python3}
    echo "gpu-check: scripts/setup.sh failed (no package index?); running this checkout with $py"
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$py" -c "import torch, cv2, h5py, numpy, pandas, scipy, tqdm, yaml, hgstudy"; then
    echo "gpu-check: $py lacks the package's dependencies (pyproject.toml); install them and run again" >&2
    exit 1
fi
if [ "${GPU_CHECK_CPU:-0}" != 1 ] && ! "$py" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu-check: no CUDA GPU here (torch $("$py" -c 'import torch; print(torch.__version__)')): nothing to check"
    exit 0
fi
exec "$py" scripts/gpu_check.py "$@"
