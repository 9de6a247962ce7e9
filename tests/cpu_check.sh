#!/bin/sh
# tests/cpu_check.sh: x86-64 objects check their instruction-set level at
# the first call (compiler/cg_cpu.c): one tiny model compiled for
# x86-64-v2, -v3 and -v4, each linked with tests/cpu_check.c, must run
# where this CPU has the level and return CNNRT_ERR_CPU where it lacks it
# (on a machine without AVX-512 the v4 object is refused instead of dying
# of SIGILL); an object built for all three (--cpu list) runs the best
# variant the CPU has, checked here and under qemu-x86_64 as three older
# CPUs (tests/cpu_multi.c).  Skipped (77) on other hosts.  Environment: CNNC,
# CNNC_SOURCE_DIR, CNNRT_INCLUDE, CNNRT_LIB, CC (tests/CMakeLists.txt).
set -u
[ "$(uname -m)" = x86_64 ] || { echo "skipped: not an x86-64 host"; exit 77; }
d=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_cpu_XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
cat > "$d/cpu.yaml" <<'YAML'
cnnc: 1
name: cpu
inputs:
  - {name: x, shape: [1, 8, 6, 6]}
layers:
  - {name: c, op: conv2d, filters: 16, kernel: 3, padding: 1, activation: relu}
  - {name: g, op: global_avgpool2d}
YAML
status=0
for level in 2 3 4; do
  "$CNNC" "$d/cpu.yaml" --random-weights 1 --cpu=x86-64-v$level -o "$d/v$level.o" || { status=1; continue; }
  grep -q "CPU_LEVEL \"x86-64-v$level\"" "$d/v$level.h" || { echo "FAIL: v$level header lacks CPU_LEVEL"; status=1; }
  # shellcheck disable=SC2086
  $CC -std=c11 -O1 -DLEVEL=$level -I "$CNNRT_INCLUDE" "$CNNC_SOURCE_DIR/tests/cpu_check.c" "$d/v$level.o" \
      "$CNNRT_LIB" -lpthread ${CNNC_TEST_CFLAGS:-} -o "$d/v$level" || { status=1; continue; }
  "$d/v$level" || status=1
done
# A named CPU is checked at the lowest level covering its instructions
# (nehalem: SSE4.2, so x86-64-v2); one that no level covers is refused.
"$CNNC" "$d/cpu.yaml" --random-weights 1 --cpu=nehalem -o "$d/nehalem.o" || status=1
grep -q 'CPU_LEVEL "x86-64-v2"' "$d/nehalem.h" || { echo "FAIL: --cpu=nehalem is not checked as x86-64-v2"; status=1; }
# shellcheck disable=SC2086
$CC -std=c11 -O1 -DLEVEL=2 -I "$CNNRT_INCLUDE" "$CNNC_SOURCE_DIR/tests/cpu_check.c" "$d/nehalem.o" \
    "$CNNRT_LIB" -lpthread ${CNNC_TEST_CFLAGS:-} -o "$d/nehalem" || status=1
"$d/nehalem" || status=1
if "$CNNC" "$d/cpu.yaml" --random-weights 1 --cpu=sandybridge -o "$d/sb.o" 2>"$d/sb.err" ||
   ! grep -q "matches no x86-64 psABI level" "$d/sb.err" || [ -e "$d/sb.o" ]; then
  echo "FAIL: --cpu=sandybridge (AVX without AVX2) was not refused"; status=1
fi
"$CNNC" "$d/cpu.yaml" --random-weights 1 --cpu=x86-64-v2 --features=+avx2,+fma -o "$d/f.o" || status=1
grep -q 'CPU_LEVEL "x86-64-v3"' "$d/f.h" || { echo "FAIL: x86-64-v2 with +avx2 is not checked as x86-64-v3"; status=1; }
"$CNNC" "$d/cpu.yaml" --random-weights 1 --cpu=x86-64 -o "$d/v1.o" || status=1
grep -q 'CPU_LEVEL ""' "$d/v1.h" || { echo "FAIL: the x86-64 baseline object should need no check"; status=1; }

# One object for three levels (tests/cpu_multi.c), beside the three
# one-level objects of the same model and weights.
"$CNNC" "$d/cpu.yaml" --random-weights 1 --name multi --cpu=x86-64-v2,x86-64-v4,x86-64-v3 -o "$d/multi.o" ||
  status=1
grep -q 'MULTI_CPU_VARIANTS "x86-64-v4,x86-64-v3,x86-64-v2"' "$d/multi.h" ||
  { echo "FAIL: multi.h lacks the variants, best first"; status=1; }
grep -q 'MULTI_CPU_LEVEL "x86-64-v2"' "$d/multi.h" || { echo "FAIL: multi.h's CPU_LEVEL is not the lowest"; status=1; }
for level in 2 3 4; do
  "$CNNC" "$d/cpu.yaml" --random-weights 1 --name single_v$level --cpu=x86-64-v$level -o "$d/single_v$level.o" ||
    status=1
done
# shellcheck disable=SC2086
$CC -std=c11 -O1 -I "$CNNRT_INCLUDE" "$CNNC_SOURCE_DIR/tests/cpu_multi.c" "$d/multi.o" "$d"/single_v?.o \
    "$CNNRT_LIB" -lpthread ${CNNC_TEST_CFLAGS:-} -o "$d/multi" || status=1
"$d/multi" || status=1
# The same programs on older CPUs: qemu-x86_64 (Debian qemu-user) as a
# CPU below x86-64-v2 (qemu64), an x86-64-v2 (Nehalem) and an x86-64-v3
# (Haswell) one; this CPU is the fourth.  Not under the sanitizers, whose
# runtimes QEMU's user mode does not run.
if [ -n "${CNNC_TEST_CFLAGS:-}" ]; then
  echo "(qemu-x86_64 runs: not in the sanitized build)"
elif command -v qemu-x86_64 >/dev/null 2>&1; then
  for cpu in qemu64 Nehalem Haswell; do
    echo "-- qemu-x86_64 -cpu $cpu"
    for p in v2 v3 v4 nehalem multi; do
      qemu-x86_64 -cpu "$cpu" "$d/$p" 2>"$d/qemu.err" || { echo "FAIL: $p as $cpu"; status=1; }
      grep -v "TCG doesn't support requested feature" "$d/qemu.err" # QEMU's notes on the model's other features
    done
  done
else
  echo "FAIL: qemu-x86_64 not installed (Debian qemu-user; tools/test.sh installs it)"
  status=1
fi
exit $status
