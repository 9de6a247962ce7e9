#!/usr/bin/env bash
# tools/test.sh: the whole test suite on a fresh Debian 12 machine.
#
#   tools/test.sh [--plain] [--no-cross] [ctest arguments...]
#
# Installs the missing packages (no PyTorch: the golden files are
# committed), then
#   1. builds everything in ./build (Release) and runs ctest: unit tests,
#      error and hostile-input tests, golden tests, the example, and the
#      Arm tests under QEMU (ctest cross_*: the golden suite and the
#      example under qemu-aarch64, the bare-metal example and golden cases
#      on three Cortex-M boards under qemu-system-arm);
#   2. builds it again in ./build-asan with -DCNNC_SANITIZE=ON
#      (AddressSanitizer, leaks included, and UndefinedBehaviorSanitizer:
#      the compiler, the runtime, the tests and every program they build)
#      and runs the same suite there;
#   3. runs every libFuzzer target for 40 seconds, two at a time
#      (fuzz/run.sh, in ./build-fuzz, clang-19).
# --plain runs step 1 only (for quick local runs); --no-cross (or
# CNNC_CROSS=0) leaves out the Arm tests and their packages.  Extra
# arguments go to both ctest runs.  Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh

plain=0 cross=${CNNC_CROSS:-1}
while :; do
  case "${1:-}" in
  --plain) plain=1; shift ;;
  --cross) cross=1; shift ;;
  --no-cross) cross=0; shift ;;
  *) break ;;
  esac
done
# The Arm tests run in the Release build only (Release objects are what
# the cross toolchains link; the sanitizers do not apply to QEMU's guests).
xcross=()
[ "$cross" = 1 ] || xcross=(-E '^cross_')

deps=("${CNNC_DEPS[@]}" "${CNNC_TEST_DEPS[@]}")
[ "$cross" = 1 ] && deps+=("${CNNC_CROSS_DEPS[@]}")
install_deps "${deps[@]}"
status=0
configure_and_build build -DCMAKE_BUILD_TYPE=Release
echo "== ctest (Release)"
ctest --test-dir build --output-on-failure -j2 "${xcross[@]}" "$@" || status=1
if [ $plain = 1 ]; then exit $status; fi

configure_and_build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNC_SANITIZE=ON
echo "== ctest (ASan + UBSan)"
ctest --test-dir build-asan --output-on-failure -j2 "$@" || status=1

echo "== fuzz smoke runs (40 s per target, two side by side)"
fuzz/run.sh --build-all || status=1
smoke() { CNNC_FUZZ_PREBUILT=1 fuzz/run.sh "$1" 40 > "build-fuzz/smoke_$1.out" 2>&1; }
targets=($CNNC_FUZZ_TARGETS)
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pair=("${targets[@]:i:2}") pids=()
  for t in "${pair[@]}"; do smoke "$t" & pids+=($!); done
  for j in "${!pair[@]}"; do
    wait "${pids[j]}" || status=1
    echo "-- fuzz/run.sh ${pair[j]} 40"
    cat "build-fuzz/smoke_${pair[j]}.out"
  done
done
exit $status
