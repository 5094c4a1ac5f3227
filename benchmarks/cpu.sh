#!/usr/bin/env bash
# The CPU benchmarks behind the README's speed claims: `bash benchmarks/cpu.sh [REFERENCE_CHECKOUT]`.
# Writes benchmarks/cpu/<class>/<case>.json for the CPU classes of this machine: `avx2` (the kernels capped at
# AVX2, fp32 only: most laptops; on an AVX2-only CPU the cap changes nothing) and, where the CPU has AVX-512,
# `native` (whatever it has, e.g. AVX512-BF16). Every case times the training step (or folded inference)
# against plain fp32 NCHW eager in the same run (`hgstudy bench model --baseline`); the *-data cases add
# rendering each batch of mannequins as the study trains (num_workers auto), and loading.json (benchmarks/
# loading.py) the ways of sharing the cores between torch and the data that `num_workers: auto` chooses from.
# With a checkout of princeton-vl/pytorch_stacked_hourglass it also times that code against hgstudy at paper size
# (benchmarks/reference_speed.py, AVX2 class). Run it on a quiet machine: blocks disturbed by other processes
# are discarded, and a case with no clean block fails.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${HGSTUDY_VENV:-.venv}/bin/python
cpu_profile=(--stacks 8 --modules 1 --features 32 --stem-channels '[16, 32]' --input-res 64 --batch 16)
issue_11=(--stacks 8 --modules 1 --features 64 --stem-channels '[16, 32]' --input-res 128 --batch 16)
classes=(avx2)
grep -qw avx512f /proc/cpuinfo && classes+=(native)
for class in "${classes[@]}"; do
    out=benchmarks/cpu/$class
    mkdir -p "$out"
    caps=()
    [ "$class" = avx2 ] && caps=(env ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)
    run() { local name=$1; shift; echo "== $class $name"; "${caps[@]}" "$py" -m hgstudy.cli bench model "$@" --baseline \
        --json "$out/$name.json"; }
    run s8x1-f32-64-train "${cpu_profile[@]}" --mode train
    run s8x1-f32-64-train-data "${cpu_profile[@]}" --mode train --data
    run s8x1-f32-64-infer "${cpu_profile[@]}" --mode infer --batch 64
    run s8x1-f64-128-train "${issue_11[@]}" --mode train
    run s8x1-f64-128-train-data "${issue_11[@]}" --mode train --data
    echo "== $class loading"
    "${caps[@]}" "$py" benchmarks/loading.py --json "$out/loading.json"
done
if [ $# -ge 1 ]; then
    echo "== avx2 reference (pytorch_stacked_hourglass at $1)"
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 "$py" benchmarks/reference_speed.py "$1" --repeats 3 \
        --budget 120 --json benchmarks/cpu/avx2/reference.json
fi
