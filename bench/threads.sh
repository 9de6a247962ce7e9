#!/usr/bin/env bash
# bench/threads.sh [MODEL...]: cnnc's latency at each thread count, and its
# speedup over one thread (default models: resnet18 mobilenet_v2).
#
# Compiles models/MODEL.yaml (random weights unless MODEL.safetensors
# exists: timing does not depend on the values), links bench/cnnc_timing.c,
# and times the pooled run (run_pool on a cnnrt_pool_new(T) pool, workspace
# for T threads) at each count of THREADS (default 1,2).  The counts are
# interleaved over ROUNDS rounds (default 5) of RUNS runs each (default 30),
# so that a noisy neighbour slows every count alike; the table gives the
# median of each round's median, the fastest round's median, and the
# speedup of each count over the first.  Not pinned: two threads need two
# cores.  Prefix with `nice -n 10` on a shared machine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
out=$build/bench/threads
threads=${THREADS:-1,2}
rounds=${ROUNDS:-5}
runs=${RUNS:-30}
mkdir -p "$out"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet18 mobilenet_v2)
IFS=, read -r -a counts <<< "$threads"
printf '%-16s %8s %12s %12s %9s\n' model threads "median ms" "best ms" speedup
for model in "${models[@]}"; do
  weights=()
  [ -f "$here/models/$model.safetensors" ] || weights=(--random-weights 1)
  "$build/compiler/cnnc" "$here/models/$model.yaml" --name "$model" -o "$out/$model.o" "${weights[@]}"
  cc -O2 -DCNNC_MODEL="${model}_model" -I "$here/runtime" "$here/bench/cnnc_timing.c" "$out/$model.o" \
     "$build/runtime/libcnnrt.a" -lpthread -o "$out/$model.timing"
  numel=$(sed -n 's/^#define [A-Z0-9_]*_SIZE \([0-9]*\) \/\* floats \*\/$/\1/p' "$out/$model.h" | head -1)
  /usr/bin/python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<f', 0.5) * $numel)" \
    > "$out/$model.in"
  declare -A med=()
  for ((r = 0; r < rounds; r++)); do
    for t in "${counts[@]}"; do
      m=$("$out/$model.timing" "$out/$model.in" "$out/$model.out" 3 "$runs" 30 "$t" |
          sed -n 's/.*"median_ms": *\([0-9.]*\).*/\1/p')
      med[$t]="${med[$t]:-} $m"
    done
  done
  base=
  for t in "${counts[@]}"; do
    read -r median best < <(tr ' ' '\n' <<< "${med[$t]}" | sed '/^$/d' | sort -g |
      awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1]}')
    [ -n "$base" ] || base=$median
    printf '%-16s %8s %12.2f %12.2f %8.2fx\n' "$model" "$t" "$median" "$best" \
      "$(awk -v a="$base" -v b="$median" 'BEGIN {print a / b}')"
  done
  unset med
done
