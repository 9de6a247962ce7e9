#!/usr/bin/env bash
# fuzz/run.sh: runs one libFuzzer target for a while (docs/fuzz.md, "Coverage-guided fuzzing").
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#     TARGET: spec, codegen, safetensors, onnx, onnx_graph, profile
#   fuzz/run.sh --build-all
#     builds every target and exits (then CNNC_FUZZ_PREBUILT=1 skips the
#     build step, so that targets can run side by side: tools/test.sh)
#
# Builds the targets in ./build-fuzz with clang-19 (ASan, UBSan, libFuzzer)
# if needed, seeds the corpus from the test files (tests/golden, tests/errors,
# models; for onnx and onnx_graph, the ONNX golden and error files and the
# 300 smallest models of libonnx-testdata), fuzzes
# for SECONDS, prints libFuzzer's final statistics, and exits non-zero if it
# found a crash, a sanitizer report, a leak or a timeout; the input that
# caused it is in build-fuzz/findings/ (docs/fuzz.md).  The corpus grows in
# build-fuzz/corpus/TARGET between runs (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer options] | --build-all}
build=${CNNC_FUZZ_BUILD:-build-fuzz}
cc=${CNNC_FUZZ_CC:-clang-19}
command -v "$cc" >/dev/null || { echo "fuzz/run.sh: $cc not found (apt-get install clang-19 libclang-rt-19-dev)" >&2; exit 2; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  CC=$cc cmake "${gen[@]}" -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNC_FUZZ=ON -DCNNC_TESTS=OFF >/dev/null
fi
if [ "$target" = --build-all ]; then
  cmake --build "$build" -j"$(nproc)" --target fuzz_spec fuzz_codegen fuzz_safetensors fuzz_onnx fuzz_onnx_graph fuzz_profile >/dev/null
  exit 0
fi
secs=${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer options] | --build-all}
shift 2
[ -n "${CNNC_FUZZ_PREBUILT:-}" ] || cmake --build "$build" -j"$(nproc)" --target "fuzz_$target" >/dev/null

corpus=$build/corpus/$target seeds=$build/seeds/$target
mkdir -p "$corpus" "$seeds" "$build/findings"
dict=()
case $target in
  spec|codegen)
    for f in tests/golden/*/model.yaml tests/errors/*.yaml models/*.yaml; do
      cp "$f" "$seeds/$(echo "$f" | tr / _)"
    done
    dict=(-dict=fuzz/spec.dict) ;;
  safetensors)
    for f in tests/golden/*/model.safetensors tests/errors/*.safetensors; do
      [ "$(stat -c %s "$f")" -le 1048576 ] && cp "$f" "$seeds/$(echo "$f" | tr / _)"
    done ;;
  onnx|onnx_graph)
    for f in tests/golden/onnx_*/model.onnx tests/errors/*.onnx; do
      [ -f "$f" ] && cp "$f" "$seeds/$(echo "$f" | tr / _)"
    done
    # the 300 smallest models of libonnx-testdata (if installed); for
    # onnx_graph every node test (one operator each, mostly float32)
    testdata=/usr/share/libonnx-testdata/data
    pick=(-name model.onnx) count=300
    [ "$target" = onnx_graph ] && pick=(-path '*/node/*' -name model.onnx) count=100000
    if [ -d $testdata ]; then
      mapfile -t small < <(find $testdata "${pick[@]}" -printf '%s %p\n' | sort -n | head -$count)
      for line in "${small[@]}"; do
        f=${line#* }
        cp "$f" "$seeds/$(echo "${f#$testdata/}" | tr / _)"
      done
    fi
    dict=(-dict=fuzz/onnx.dict) ;;
  profile)
    # tables as cnnrt_profile_print writes them, for the target's graph
    printf '%s\n' "# cnnrt profile of prof: 3 runs, milliseconds per run" "#           ms   share   GFLOP/s  layer" \
      "        0.0100  40.00%     22.49  conv1" "        0.0050  20.00%      1.70  pw" "        0.0025  10.00%      1.70  pool" \
      "        0.0075  30.00%     17.77  fc" "# total 0.0250 ms per run, 55.69 GFLOP/s" > "$seeds/table.txt"
    printf '%s\n' "# ticks" "          1000  50.00%         -  conv1" "          1000  50.00%         -  fc" > "$seeds/ticks.txt" ;;
  *) echo "fuzz/run.sh: unknown target '$target'" >&2; exit 2 ;;
esac

status=0
"$build/fuzz/fuzz_$target" -max_total_time="$secs" -timeout=30 -rss_limit_mb=3072 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$build/findings/$target-" "${dict[@]}" "$@" \
  "$corpus" "$seeds" 2> "$build/fuzz_$target.log" || status=$?
grep -E "^(stat::|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)" "$build/fuzz_$target.log" || true
if [ $status -ne 0 ]; then
  echo "fuzz/run.sh: $target found a problem (status $status); see $build/fuzz_$target.log and $build/findings/" >&2
  tail -40 "$build/fuzz_$target.log" >&2
fi
exit $status
