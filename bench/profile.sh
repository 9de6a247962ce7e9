#!/usr/bin/env bash
# Per-layer profile of one model: bench/profile.sh MODEL [RUNS] [cnnc flags...]
# Compiles models/MODEL.yaml with --profile (random weights unless the
# safetensors file exists), links bench/layer_profile.c, measures the FMA
# peak with bench/peak.c, and prints time, GFLOP/s and % of peak per layer.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: bench/profile.sh MODEL [RUNS] [cnnc flags...]}
runs=${2:-10}
shift $(( $# >= 2 ? 2 : 1 ))
build=${BUILD_DIR:-$here/build}
out=$build/bench/profile
mkdir -p "$out"
weights=()
[ -f "$here/models/$model.safetensors" ] || weights=(--random-weights 1)
"$build/compiler/cnnc" "$here/models/$model.yaml" -o "$out/$model.o" --profile "${weights[@]}" "$@" 2>/dev/null
cc -O2 -march=native -o "$out/peak" "$here/bench/peak.c"
cc -O2 -DMODEL="$model" -include "$out/$model.h" -I "$here/runtime" "$here/bench/layer_profile.c" \
   "$out/$model.o" "$build/runtime/libcnnrt.a" -o "$out/$model.profile"
peak=$("$out/peak" | sed -n 's/.*"peak": *\([0-9.]*\).*/\1/p')
echo "model $model, cnnc flags: ${*:-(default)}, FMA peak $peak GFLOP/s"
taskset -c 1 "$out/$model.profile" "$runs" "$peak" 2>/dev/null || "$out/$model.profile" "$runs" "$peak"
