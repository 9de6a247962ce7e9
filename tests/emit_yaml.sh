#!/bin/sh
# tests/emit_yaml.sh: --emit-yaml round trips, run by ctest (tests/CMakeLists.txt).
#
#   emit_yaml.sh specs     every tests/golden/*/model.yaml (with its options.txt)
#                          and tests/emit/*.yaml (options in a '# options:' line)
#   emit_yaml.sh onnx      every tests/golden/*/model.onnx (with its options.txt),
#                          tests/onnx/*.onnx and tests/emit/onnx/*.onnx
#                          (tools/make_emit_onnx.py)
#   emit_yaml.sh testdata  the libonnx-testdata node models listed below;
#                          exit 77 (skipped) when libonnx-testdata is absent
#
# For each model M, with its options O:
#   1. cnnc M O -O0 -o a.o                       the object, compiled directly
#   2. cnnc M O --emit-yaml 1/m.yaml --dump=s    the spec and 1/m.safetensors
#   3. cnnc 1/m.yaml O' -O0 -o b.o               O' is O without --random-weights
#                                                (the weights file has them now)
#                                                and --input-shape (the spec has it)
#   4. cmp a.o b.o                               byte-identical objects
#   5. cnnc 1/m.yaml O' --emit-yaml 2/m.yaml --dump=s
#      the spec again: a fixed point (the same text but for its '#' comment,
#      the same safetensors bytes), and the graph after shape inference
#      dumped by 5 is the one dumped by 2 (but for where the parameters are)
# tests/emit/onnx/error_*.onnx hold what the format cannot say: --emit-yaml
# must fail with "cannot write layer" and write nothing.  Models run two at
# a time; every failure is listed, and the exit status is 1 if there was any.
# Environment (from ctest): CNNC, CNNC_SOURCE_DIR.
set -u
: "${CNNC:?run through ctest}" "${CNNC_SOURCE_DIR:?run through ctest}"
mode=${1:-specs}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_emit_yaml.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
: >"$tmp/fails"
: >"$tmp/list"
tab=$(printf '\t')

fail() {
  echo "FAIL $1: $2" >&2
  echo "$1" >>"$tmp/fails"
}

# The --dump=s text of a run, without what differs by design: the weights
# file and whether each parameter was inline or in the file.
graph_of() {
  grep -v '^graph ' "$1" | grep -v '^; after' | sed -e 's/ inline$//' -e 's/ file unbound$//' -e 's/ file$//'
}

# The first diagnostics in a file that also holds a --dump.
errors_in() {
  grep -v -e '^; after' -e '^%' -e '^param ' -e '^graph ' "$1" | head -3
}

# roundtrip DIR NAME MODEL [OPTIONS...]
roundtrip() {
  d=$1 name=$2 model=$3
  shift 3
  mkdir -p "$d/1" "$d/2"
  again=""
  skip=0
  for o in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case $o in
      --random-weights | --input-shape) skip=1 ;;
      --random-weights=* | --input-shape=*) ;;
      *) again="$again $o" ;;
    esac
  done
  if ! "$CNNC" "$model" "$@" -O0 -o "$d/a.o" 2>"$d/err" </dev/null; then
    fail "$name" "cnnc failed: $(head -3 "$d/err")"
    return
  fi
  if ! "$CNNC" "$model" "$@" --emit-yaml "$d/1/m.yaml" --dump=s 2>"$d/dump1" </dev/null; then
    fail "$name" "--emit-yaml failed: $(errors_in "$d/dump1")"
    return
  fi
  [ "$(ls "$d/1" | tr '\n' ' ')" = "m.safetensors m.yaml " ] || fail "$name" "--emit-yaml wrote: $(ls "$d/1")"
  # shellcheck disable=SC2086 # $again is a list of words
  if ! "$CNNC" "$d/1/m.yaml" $again -O0 -o "$d/b.o" 2>"$d/err" </dev/null; then
    fail "$name" "compiling the emitted spec failed: $(head -3 "$d/err")"
    return
  fi
  cmp -s "$d/a.o" "$d/b.o" || fail "$name" "the objects differ"
  # shellcheck disable=SC2086
  if ! "$CNNC" "$d/1/m.yaml" $again --emit-yaml "$d/2/m.yaml" --dump=s 2>"$d/dump2" </dev/null; then
    fail "$name" "--emit-yaml of the emitted spec failed: $(errors_in "$d/dump2")"
    return
  fi
  grep -v '^#' "$d/1/m.yaml" >"$d/1.txt"
  grep -v '^#' "$d/2/m.yaml" >"$d/2.txt"
  cmp -s "$d/1.txt" "$d/2.txt" || fail "$name" "the spec is no fixed point: $(diff "$d/1.txt" "$d/2.txt" | head -5)"
  cmp -s "$d/1/m.safetensors" "$d/2/m.safetensors" || fail "$name" "the weights file is no fixed point"
  graph_of "$d/dump1" >"$d/g1"
  graph_of "$d/dump2" >"$d/g2"
  cmp -s "$d/g1" "$d/g2" || fail "$name" "the spec reads back as another graph: $(diff "$d/g1" "$d/g2" | head -5)"
  rm -rf "$d"
}

# refused DIR NAME MODEL: --emit-yaml fails, says why, and writes nothing.
refused() {
  d=$1 name=$2 model=$3
  mkdir -p "$d"
  "$CNNC" "$model" --emit-yaml "$d/m.yaml" 2>"$d/../$name.err" </dev/null
  status=$?
  [ "$status" = 1 ] || fail "$name" "--emit-yaml exited with $status, not 1"
  grep -q "error: cannot write layer '[^']*' as YAML: " "$d/../$name.err" ||
    fail "$name" "no 'cannot write layer' message: $(head -3 "$d/../$name.err")"
  [ -z "$(ls -A "$d")" ] || fail "$name" "a refused --emit-yaml wrote: $(ls -A "$d")"
  rm -rf "$d"
}

# add NAME MODEL [OPTIONS...]: one more line for the workers.
add() {
  name=$1 model=$2
  shift 2
  printf '%s\t%s\t%s\n' "$name" "$model" "$*" >>"$tmp/list"
}

# worker K N: the lines K, K+N, K+2N, ... of the list.
worker() {
  i=0
  while IFS=$tab read -r name model opts; do
    if [ $((i % $2)) = "$1" ]; then
      # shellcheck disable=SC2086 # $opts is a list of words
      case $name in
        */error_*) refused "$tmp/$i" "${name##*/}" "$model" ;;
        *) roundtrip "$tmp/$i" "$name" "$model" $opts ;;
      esac
    fi
    i=$((i + 1))
  done <"$tmp/list"
}

src=$CNNC_SOURCE_DIR
case $mode in
specs)
  for yaml in "$src"/tests/golden/*/model.yaml; do
    [ -f "$yaml" ] || continue
    opts=""
    [ -f "${yaml%/*}/options.txt" ] && opts=$(head -1 "${yaml%/*}/options.txt")
    # shellcheck disable=SC2086
    add "${yaml#"$src"/}" "$yaml" $opts
  done
  for yaml in "$src"/tests/emit/*.yaml; do
    # shellcheck disable=SC2046
    [ -f "$yaml" ] && add "${yaml#"$src"/}" "$yaml" $(sed -n 's/^# options: //p' "$yaml" | head -1)
  done
  ;;
onnx)
  for f in "$src"/tests/golden/*/model.onnx; do
    opts=""
    [ -f "${f%/*}/options.txt" ] && opts=$(head -1 "${f%/*}/options.txt")
    # shellcheck disable=SC2086
    [ -f "$f" ] && add "${f#"$src"/}" "$f" $opts
  done
  for f in "$src"/tests/onnx/*.onnx "$src"/tests/emit/onnx/*.onnx; do
    [ -f "$f" ] && add "${f#"$src"/}" "$f"
  done
  ;;
testdata)
  # libonnx-testdata's node models that cnnc compiles as they are (some of
  # those whose weights are inputs are in tests/emit/onnx as node_*.onnx)
  node=/usr/share/libonnx-testdata/data/node
  if [ ! -d "$node" ]; then
    echo "emit_yaml.sh testdata: skipped: no $node (Debian: libonnx-testdata)"
    exit 77
  fi
  for t in maxpool_2d_pads maxpool_2d_same_upper maxpool_2d_same_lower maxpool_2d_ceil maxpool_2d_dilations \
    maxpool_2d_strides averagepool_2d_ceil averagepool_2d_pads averagepool_2d_pads_count_include_pad \
    averagepool_2d_same_upper averagepool_2d_precomputed_same_upper transpose_all_permutations_3 transpose_default \
    reduce_mean_keepdims_example reduce_mean_do_not_keepdims_example reduce_max_negative_axes_keepdims_example \
    reduce_min_default_axes_keepdims_example split_equal_parts_1d split_equal_parts_2d split_equal_parts_default_axis \
    concat_3d_axis_negative_3 flatten_negative_axis1 softmax_axis_0 logsoftmax_negative_axis \
    softmax_default_axis_expanded leakyrelu selu hardsigmoid elu hardswish celu_expanded mvn_expanded \
    unsqueeze_axis_3 dropout_default_old identity sum_two_inputs max_example sub_bcast div_bcast erf abs; do
    add "test_$t" "$node/test_$t/model.onnx"
  done
  ;;
*)
  echo "usage: emit_yaml.sh specs|onnx|testdata" >&2
  exit 2
  ;;
esac
worker 0 2 &
worker 1 2
wait
n=$(wc -l <"$tmp/list")
nf=$(wc -l <"$tmp/fails")
echo "emit_yaml.sh $mode: $n models, $nf failed"
[ "$nf" = 0 ]
