#!/usr/bin/env bash
# The paper profile end to end on a CPU, in minutes: `bash scripts/paper-dryrun.sh OUT`.
#
# In a temporary copy of this checkout (HEAD plus the working tree's changes), it builds a synthetic MPII/FLIC
# mirror (scripts/paper_mirror.py: official file layout, rendered images of real people), serves it on
# 127.0.0.1, and runs the real pipeline with `dvc exp run -S profile=paper -S 'flic=[s8x1]'`: the data stage
# downloads both datasets from the mirror (checksums, extraction, the real loaders), two variants x two seeds
# train on MPII at 256 px with 8 loader processes, are evaluated and compared, and s8x1 trains on FLIC and is
# scored. Only run lengths and sizes shrink (steps, features, validation people). The executed notebooks
# (reports/, with reports/html/), the metrics and plot data (results/), params.yaml, dvc.lock, a log and
# dryrun.json (time, machine load) land in OUT; the temporary folder is removed.
# Environment: ANNOTATIONS (default ../shared/data: mpii/valid.h5, flic/{train,valid}.h5), DRYRUN_STEPS (30),
# DRYRUN_TIMEOUT (seconds for the pipeline, 1800), HGSTUDY_VENV (.venv).
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: bash scripts/paper-dryrun.sh OUT" >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
annotations=${ANNOTATIONS:-$repo/../shared/data}
steps=${DRYRUN_STEPS:-30}
start=$(date +%s)

bash "$repo/scripts/setup.sh"
venv=${HGSTUDY_VENV:-.venv}
case $venv in /*) ;; *) venv=$repo/$venv ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paper-dryrun.XXXXXX")
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
# Everything the tools cache goes into the temporary folder, nothing into HOME.
export TMPDIR=$tmp PATH="$venv/bin:$PATH" PYTHONPATH="$tmp/repo" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export MPLCONFIGDIR=$tmp/cache/mpl IPYTHONDIR=$tmp/cache/ipython JUPYTER_RUNTIME_DIR=$tmp/cache/jupyter \
    XDG_CACHE_HOME=$tmp/cache DVC_SITE_CACHE_DIR=$tmp/cache/dvc DVC_NO_ANALYTICS=1
export GIT_AUTHOR_NAME=dryrun GIT_AUTHOR_EMAIL=dryrun@localhost GIT_COMMITTER_NAME=dryrun \
    GIT_COMMITTER_EMAIL=dryrun@localhost
log=$out/dryrun.log
: > "$log"
say() { echo "paper-dryrun: $*" | tee -a "$log"; }

say "copying $repo (HEAD and the working tree's changes) to $tmp/repo"
git clone -q "$repo" "$tmp/repo"
git -C "$repo" diff HEAD --binary > "$tmp/changes.patch"
if [ -s "$tmp/changes.patch" ]; then git -C "$tmp/repo" apply --whitespace=nowarn "$tmp/changes.patch"; fi
(cd "$repo" && git ls-files -z --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$tmp/repo"
cd "$tmp/repo"
python -c "import hgstudy, sys; sys.exit(not hgstudy.__file__.startswith('$tmp/repo/'))" \
    || { say "error: the copy's hgstudy is not the one imported"; exit 1; }
rm -rf reports results  # the committed CPU study's: OUT gets this run's only

say "building the synthetic mirror from $annotations"
python scripts/paper_mirror.py build "$tmp/mirror" --annotations "$annotations" --train 64 --valid 32 2>&1 \
    | tee -a "$log"
python scripts/paper_mirror.py serve "$tmp/mirror" --seconds 3600 --port-file "$tmp/url" >> "$log" 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.1; done
[ -s "$tmp/url" ] || { say "error: the mirror server did not start"; exit 1; }
url=$(cat "$tmp/url")

say "dvc exp run -S profile=paper, mirror $url, $steps steps"
set +e
timeout "${DRYRUN_TIMEOUT:-1800}" dvc exp run -S profile=paper -S 'flic=[s8x1]' \
    -S 'variants=[hg_stacked,hg_stacked_int]' -S 'seeds=[0,1]' \
    -S "profiles.paper.data.mirror=$url" -S "profiles.paper.data.mirror_pins=$tmp/mirror/pins.json" \
    -S "profiles.paper.train.steps=$steps" -S "profiles.paper.train.val_every=$((steps / 2))" \
    -S "profiles.paper.train.checkpoint_every=$((steps / 2))" -S profiles.paper.train.log_every=5 \
    -S profiles.paper.train.features=32 -S '+profiles.paper.train.stem_channels=[16,32]' \
    -S +profiles.paper.train.val_samples=32 -S profiles.paper.evaluate.limit=32 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
dvc metrics show --md > metrics.md 2>> "$log" || true
mkdir -p "$out"
rm -rf "${out:?}/reports" "${out:?}/results"
cp -r params.yaml dvc.lock metrics.md "$out/" 2>/dev/null || true
[ -d reports ] && cp -r reports "$out/"
[ -d results ] && cp -r results "$out/"
seconds=$(( $(date +%s) - start ))
load=$(cut -d' ' -f1-3 /proc/loadavg)
printf '{"exit_status": %d, "seconds": %d, "steps": %d, "cpus": %d, "loadavg_at_end": "%s"}\n' \
    "$status" "$seconds" "$steps" "$(nproc)" "$load" > "$out/dryrun.json"
if [ "$status" -ne 0 ]; then
    say "error: the pipeline failed (exit $status) after ${seconds}s; see $log and the notebooks in $out/reports"
    exit 1
fi
missing=()
for f in reports/10_data.ipynb reports/40_ablations.ipynb reports/flic/train-s8x1.ipynb reports/flic/s8x1.ipynb \
    results/data/metrics.json results/ablations/metrics.json results/flic/s8x1/metrics.json; do
    [ -f "$out/$f" ] || missing+=("$f")
done
for run in hg_stacked/hg_stacked-0 hg_stacked/hg_stacked-1 hg_stacked_int/hg_stacked_int-0 \
    hg_stacked_int/hg_stacked_int-1; do
    for f in "reports/train/$run.ipynb" "reports/evaluate/$run.ipynb" "reports/html/evaluate/$run.html" \
        "results/train/$run/metrics.json" "results/evaluate/$run/metrics.json"; do
        [ -f "$out/$f" ] || missing+=("$f")
    done
done
if [ ${#missing[@]} -ne 0 ]; then
    say "error: the pipeline ran but these are missing from $out: ${missing[*]}"
    exit 1
fi
say "done in ${seconds}s (load average $load on $(nproc) CPUs): notebooks in $out/reports, metrics in $out/results"
