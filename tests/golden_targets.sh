#!/bin/sh
# tests/golden_targets.sh: every golden case compiles for the Cortex-M
# cores, and their objects need only what docs/targets.md promises.
#
# Each tests/golden/*/model.yaml or model.onnx (with its options.txt) is
# compiled for cortex-m0plus (Armv6-M: soft float, no divide, one lane)
# and cortex-m3 (soft float): the board tests run a few cases only, and a
# case that fails to compile for a core went unseen
# (fam_densenet, mixed_chain and scale_avgpool_windows failed LLVM's
# verifier on one-lane targets until 2026-12-02).  The soft-float objects
# may need only libgcc's float routines (__aeabi_f*, __aeabi_i2f, ...),
# the __aeabi_mem* forms of memcpy/memset, and the runtime's weak
# thread-pool hooks; on Armv6-M, which has no divide and no 64-bit
# multiply instruction, also libgcc's integer helpers __aeabi_lmul,
# __aeabi_uidiv, __aeabi_idiv and __aeabi_uldivmod (the cases that need
# them are counted).  Environment: CNNC, CNNC_SOURCE_DIR
# (tests/CMakeLists.txt).
set -u
src=$CNNC_SOURCE_DIR
nm=$(command -v llvm-nm-19 || command -v arm-none-eabi-nm || command -v llvm-nm) || { echo "SKIP: no nm for Arm objects"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0 n=0
targets="thumbv6m-none-eabi:cortex-m0plus thumbv7m-none-eabi:cortex-m3"
float='__aeabi_(f[a-z0-9]+|[iu]i?2f|l2f|ul2f|memcpy[48]?|memmove[48]?|memset[48]?|memclr[48]?)|memcpy|memset|cnnrt_parallel_for|cnnrt_pool_threads'
int=0
for d in "$src"/tests/golden/*/; do
  m=$d/model.yaml
  [ -f "$m" ] || m=$d/model.onnx
  [ -f "$m" ] || continue
  opts=""
  [ -f "$d/options.txt" ] && opts=$(head -1 "$d/options.txt")
  case=$(basename "$d")
  for t in $targets; do
    # shellcheck disable=SC2086
    if ! "$CNNC" "$m" $opts --target="${t%%:*}" --cpu="${t#*:}" -o "$tmp/m.o" 2>"$tmp/err"; then
      echo "FAIL $case ${t#*:}: $(head -c 300 "$tmp/err")"
      status=1
      continue
    fi
    n=$((n + 1))
    allowed=$float
    [ "${t#*:}" = cortex-m0plus ] && allowed="$float|__aeabi_(lmul|uidiv|idiv|uldivmod)"
    syms=$("$nm" -u "$tmp/m.o" | awk '{print $NF}')
    bad=$(echo "$syms" | grep -Ev "^($allowed)\$")
    [ -z "$bad" ] || { echo "FAIL $case ${t#*:} needs: $(echo $bad)"; status=1; }
    echo "$syms" | grep -Eq '^__aeabi_(lmul|uidiv|idiv|uldivmod)$' && int=$((int + 1))
  done
done
echo "$n objects compiled for 2 Cortex-M cores; $int cortex-m0plus objects need libgcc's integer helpers"
exit $status
