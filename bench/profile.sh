#!/usr/bin/env bash
# Per-layer profile of one model: bench/profile.sh MODEL [RUNS] [cnnc flags...]
# MODEL is a name in models/ (resnet50: models/resnet50.yaml) or the path of
# any YAML spec or ONNX file.  Compiles it with --profile (parameters that
# its weights file lacks, or all of them when there is none, from
# --random-weights 1), links bench/layer_profile.c, measures the FMA peak
# with bench/peak.c, and prints time, GFLOP/s and % of peak per layer.
# cnnc's messages are shown; a model that does not compile stops the script
# with cnnc's exit status.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: bench/profile.sh MODEL [RUNS] [cnnc flags...]}
runs=${2:-10}
shift $(( $# >= 2 ? 2 : 1 ))
build=${BUILD_DIR:-$here/build}
out=$build/bench/profile
mkdir -p "$out"
if [ -f "$model" ]; then
  path=$model
elif [ -f "$here/models/$model.yaml" ]; then
  path=$here/models/$model.yaml
else
  echo "bench/profile.sh: no model '$model' (not a file, nor models/$model.yaml)" >&2
  exit 2
fi
stem=$(basename "$path"); stem=${stem%.*}
# the generated symbols are profiled_*, whatever the model's own name
status=0
"$build/compiler/cnnc" "$path" -o "$out/$stem.o" --header "$out/$stem.h" --name profiled --profile \
  --random-weights 1 "$@" 2> >(grep -v "does not exist; --random-weights fills\|^ *[0-9]* | weights:\|^ *| *\^" >&2) || status=$?
if [ $status -ne 0 ]; then
  echo "bench/profile.sh: cnnc could not compile $path (status $status)" >&2
  exit $status
fi
cc -O2 -march=native -o "$out/peak" "$here/bench/peak.c"
cc -O2 -DMODEL=profiled -include "$out/$stem.h" -I "$here/runtime" "$here/bench/layer_profile.c" \
   "$out/$stem.o" "$build/runtime/libcnnrt.a" -o "$out/$stem.profile"
peak=$("$out/peak" | sed -n 's/.*"peak": *\([0-9.]*\).*/\1/p')
echo "model $path, cnnc flags: ${*:-(default)}, FMA peak $peak GFLOP/s"
taskset -c 1 "$out/$stem.profile" "$runs" "$peak" 2>/dev/null || "$out/$stem.profile" "$runs" "$peak"
