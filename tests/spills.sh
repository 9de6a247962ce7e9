#!/bin/sh
# tests/spills.sh: no stack traffic in the innermost loops of the
# convolution kernels (direct, depthwise: conv_*; Winograd: winograd_*),
# target by target.
#
# For each target and each model below, cnnc --emit-asm writes the
# assembly, and tests/spills.awk lists the innermost loops of the conv
# kernels that multiply-add, with their loads and stores relative to the
# stack pointer (spills and reloads).  Every target must have none, except
# those in KNOWN, whose counts are printed; the test fails if any other
# target spills, or if a KNOWN target stops spilling (then take it out of
# KNOWN).  SPILLS_KNOWN="" in the environment asserts every target.  Environment: CNNC, CNNC_SOURCE_DIR (tests/CMakeLists.txt).
set -u
src=$CNNC_SOURCE_DIR
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models="models/fashion_mnist.yaml tests/golden/conv_basic/model.yaml tests/golden/conv_depthwise/model.yaml
tests/golden/fuse_wino_resblock/model.yaml tests/golden/fam_mobilenet_v2/model.yaml"
targets="x86_64-linux-gnu:x86-64 x86_64-linux-gnu:x86-64-v3 x86_64-linux-gnu:x86-64-v4
aarch64-linux-gnu:generic aarch64-linux-gnu:neoverse-n1 thumbv7em-none-eabihf:cortex-m4
thumbv7em-none-eabihf:cortex-m7 thumbv8.1m.main-none-eabihf:cortex-m55 thumbv7m-none-eabi:cortex-m3
thumbv6m-none-eabi:cortex-m0plus"
# Measured on these five models (docs/targets.md, "Spills"): SSE2, AVX2,
# AVX-512, both AArch64 CPUs, the M4, the M7 and the M55 have none; on
# the soft-float M3 and M0+ every float operation is a call that clobbers
# r0-r3 and r12.
KNOWN=${SPILLS_KNOWN-"cortex-m3 cortex-m0plus"}
status=0
for t in $targets; do
  triple=${t%%:*} cpu=${t#*:} loops=0 spills=0
  for m in $models; do
    name=$(basename "$m" .yaml)
    [ "$name" = model ] && name=$(basename "$(dirname "$m")")
    "$CNNC" "$src/$m" --target="$triple" --cpu="$cpu" -o "$tmp/m.o" --emit-asm "$tmp/m.s" || { status=1; continue; }
    awk -f "$src/tests/spills.awk" -v only='conv|winograd' "$tmp/m.s" >"$tmp/r.txt"
    set -- $(tail -1 "$tmp/r.txt")
    loops=$((loops + $2)) spills=$((spills + $4))
    [ "$4" -gt 0 ] && echo "  $cpu $name: $(head -1 "$tmp/r.txt")"
  done
  known=0
  for k in $KNOWN; do [ "$k" = "$cpu" ] && known=1; done
  if [ $spills -gt 0 ] && [ $known = 0 ]; then
    echo "FAIL $triple $cpu: $spills stack accesses in $loops inner conv loops"
    status=1
  elif [ $spills = 0 ] && [ $known = 1 ]; then
    echo "FAIL $triple $cpu: no spills any more in $loops loops: take it out of KNOWN"
    status=1
  else
    echo "$([ $known = 1 ] && echo 'known' || echo 'ok   ') $triple $cpu: $spills stack accesses in $loops inner conv loops"
  fi
  [ $loops -gt 0 ] || { echo "FAIL $cpu: no conv loops found (spills.awk out of date?)"; status=1; }
done
exit $status
