#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install hgstudy with its notebook and
# test extras. A torch that is already importable, or a wheel on the local wheel path, is used
# instead of downloading a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HGSTUDY_VENV:-.venv}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    flags=()
    if "$python" -c "import torch, sys; sys.exit(tuple(map(int, torch.__version__.split('.')[:2])) < (2, 4))" \
        2>/dev/null; then
        flags=(--system-site-packages)  # reuse the torch this Python already has
        echo "setup: reusing the torch installed for $python"
    fi
    "$python" -m venv "${flags[@]}" "$venv"
fi
py="$venv/bin/python"

if ! "$py" -c "import torch" 2>/dev/null; then
    pyver=$("$py" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
    # Local wheel folders: pip's find-links setting and the usual place on these machines.
    dirs="${PIP_FIND_LINKS:-} /opt/wheels"
    pattern="torch-*-$pyver-*linux*$(uname -m).whl"
    command -v nvidia-smi >/dev/null 2>&1 || pattern="torch-*+cpu-$pyver-*linux*$(uname -m).whl"
    wheel=$(for d in $dirs; do if [ -d "$d" ]; then find "$d" -maxdepth 1 -name "$pattern"; fi; done \
        | sort -V | tail -n 1)
    if [ -n "$wheel" ]; then
        echo "setup: installing torch from the local wheel $wheel"
        "$py" -m pip install --quiet "$wheel"
    else
        echo "setup: installing torch from the package index"
        "$py" -m pip install --quiet "torch>=2.4"
    fi
fi

# Reinstall only when the dependency list changed.
stamp="$venv/.hgstudy-pyproject.sha256"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$py" -c "import hgstudy" 2>/dev/null; then
    echo "setup: installing hgstudy and its extras into $venv"
    "$py" -m pip install --quiet --disable-pip-version-check -e ".[notebooks,dev]" 2>&1 \
        | grep -v "is neither a file nor a directory" || true
    "$py" -c "import hgstudy, torch, dvc, papermill, nbval" # fail here, not later, if the install broke
    echo "$want" > "$stamp"
fi
