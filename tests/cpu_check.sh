#!/bin/sh
# tests/cpu_check.sh: x86-64 objects check their instruction-set level at
# the first call (compiler/cg_cpu.c): one tiny model compiled for
# x86-64-v2, -v3 and -v4, each linked with tests/cpu_check.c, must run
# where this CPU has the level and return CNNRT_ERR_CPU where it lacks it
# (on a machine without AVX-512 the v4 object is refused instead of dying
# of SIGILL).  Skipped (77) on other hosts.  Environment: CNNC,
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
"$CNNC" "$d/cpu.yaml" --random-weights 1 --cpu=x86-64 -o "$d/v1.o" || status=1
grep -q 'CPU_LEVEL ""' "$d/v1.h" || { echo "FAIL: the x86-64 baseline object should need no check"; status=1; }
exit $status
