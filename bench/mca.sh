#!/bin/sh
# bench/mca.sh [CNNC]: llvm-mca throughput estimates of cnnc's micro-kernel
# loops for Neoverse N1 and Cortex-M7 (docs/bench.md, "llvm-mca").
#
# Compiles Fashion-MNIST (direct conv, dense), the golden cases
# fam_mobilenet_v2 (1x1 and depthwise convs) and fuse_wino_resblock
# (Winograd GEMM) with --emit-asm, cuts the innermost multiply-add loops
# out of the assembly (tests/spills.awk -v dump=DIR) and runs llvm-mca on
# each (200 iterations).  Prints per loop: instructions, multiply-adds
# (FMLA/FMADD on AArch64, VMLA/VFMA.F32 on the M7), stack accesses,
# llvm-mca's block reciprocal throughput and cycles per iteration, and the
# multiply-add instructions per cycle, against the core's limit (N1: 2
# FMLA per cycle, two 128-bit FP pipes; M7: 1 single-precision
# multiply-add per cycle).  Loops that llvm-mca cannot parse are left out.
set -u
cd "$(dirname "$0")/.."
cnnc=${1:-build/compiler/cnnc}
mca=${LLVM_MCA:-/usr/lib/llvm-19/bin/llvm-mca}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in "aarch64-linux-gnu neoverse-n1" "thumbv7em-none-eabihf cortex-m7"; do
  set -- $t
  triple=$1 cpu=$2
  echo "== $cpu"
  for m in models/fashion_mnist.yaml tests/golden/fam_mobilenet_v2/model.yaml tests/golden/fuse_wino_resblock/model.yaml; do
    d=$tmp/$cpu.$(basename "$(dirname "$m")")
    mkdir -p "$d"
    "$cnnc" "$m" --target="$triple" --cpu="$cpu" -o "$d.o" --emit-asm "$d.s" || exit 1
    awk -f tests/spills.awk -v only='conv|winograd|dense' -v dump="$d" "$d.s" >/dev/null
    for f in "$d"/*.s; do
      [ -f "$f" ] || continue
      n=$(grep -cE '^[[:space:]]*(fmla|fmadd|vfma\.f32|vmla\.f32)[[:space:]]' "$f")
      [ "$n" -gt 0 ] || continue
      out=$("$mca" -mtriple="$triple" -mcpu="$cpu" -iterations=200 "$f" 2>/dev/null) || continue
      rt=$(echo "$out" | awk '/Block RThroughput/ {print $3}')
      cyc=$(echo "$out" | awk '/Total Cycles/ {print $3}')
      [ -n "$cyc" ] || continue
      awk -v f="$(basename "$f" .s)" -v i="$(grep -c '' "$f")" -v n="$n" -v sp="$(grep -cE '\[sp[],]' "$f")" \
        -v rt="$rt" -v c="$cyc" 'BEGIN { printf "%-60s instr %4d  madd %4d  stack %3d  rthr %6.1f  cyc/iter %7.2f  madd/cycle %.2f\n", f, i, n, sp, rt, c / 200, n * 200 / c }'
    done
  done
done
