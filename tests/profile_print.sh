#!/bin/sh
# tests/profile_print.sh: --profile on this machine, cnnrt_profile_print's
# table, and that table drawn by --emit-dot --profile-data.
#
# Fashion-MNIST compiled with --profile --name profiled runs three times
# in tests/profile_ticks.c, which checks the table cnnrt_profile_print
# writes (every layer in order, shares summing to 100%, milliseconds to
# the total).  cnnc then reads that table back: the graph's boxes must
# carry each layer's share of the run, and a table with a bad row or a
# layer the graph lacks must be refused at its line, writing nothing.
# Environment: CNNC, CNNC_SOURCE_DIR, CNNRT_INCLUDE, CNNRT_LIB, CC
# (tests/CMakeLists.txt).
set -u
d=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_prof_XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
m=$CNNC_SOURCE_DIR/models/fashion_mnist.yaml
"$CNNC" "$m" --profile --name profiled -o "$d/profiled.o" || fail "cnnc --profile"
grep -q "extern const cnnrt_profile profiled_profile;" "$d/profiled.h" || fail "profiled.h lacks profiled_profile"
# shellcheck disable=SC2086
$CC -std=gnu11 -O1 -I "$CNNRT_INCLUDE" -I "$d" "$CNNC_SOURCE_DIR/tests/profile_ticks.c" "$d/profiled.o" \
    "$CNNRT_LIB" -lpthread ${CNNC_TEST_CFLAGS:-} -o "$d/p" || fail "linking tests/profile_ticks.c"
"$d/p" > "$d/out.txt" || { cat "$d/out.txt"; fail "tests/profile_ticks.c"; }
cat "$d/out.txt"
grep -v '^profile:\|^cnnrt_profile_print:' "$d/out.txt" > "$d/table.txt"
"$CNNC" "$m" --check --emit-dot "$d/g.dot" --profile-data "$d/table.txt" || fail "cnnc --profile-data"
rows=$(grep -c '^ *[0-9]' "$d/table.txt")
shaded=$(grep -c '% of the run (' "$d/g.dot")
[ "$rows" -gt 0 ] && [ "$rows" = "$shaded" ] || fail "$rows layers in the table, $shaded boxes with their share of the run"
want=$(awk '$NF == "conv2" {printf "%.1f%% of the run (%.3f ms)", $2, $1}' "$d/table.txt")
grep "conv2" "$d/g.dot" | grep -qF "$want" || fail "conv2's box lacks '$want'"
# bad tables: an unknown layer (line 3) and a broken row (line 4), both reported, nothing written
{ sed -n 1,2p "$d/table.txt"; echo "  0.0100  5.00%  1.00  no_such_layer"; echo "  0.01 abc 1  conv1"; } > "$d/bad.txt"
"$CNNC" "$m" --check --emit-dot "$d/bad.dot" --profile-data "$d/bad.txt" 2> "$d/err.txt" && fail "a bad table was taken"
grep -q "bad.txt:3:[0-9]*: error: no layer 'no_such_layer'" "$d/err.txt" || { cat "$d/err.txt"; fail "no error at line 3"; }
grep -q "bad.txt:4:8: error: expected the layer's share" "$d/err.txt" || { cat "$d/err.txt"; fail "no error at line 4"; }
[ ! -e "$d/bad.dot" ] || fail "a refused run wrote the graph"
# a row for the input (no code of its own), and a table with no rows
sed 's/  conv1$/  image/' "$d/table.txt" > "$d/input.txt"
"$CNNC" "$m" --check --emit-dot "$d/bad.dot" --profile-data "$d/input.txt" 2> "$d/err.txt" && fail "a row for the input was taken"
grep -q "error: layer 'image' has no code of its own" "$d/err.txt" || { cat "$d/err.txt"; fail "no error for the input's row"; }
grep '^#' "$d/table.txt" > "$d/empty.txt"
"$CNNC" "$m" --check --emit-dot "$d/bad.dot" --profile-data "$d/empty.txt" 2> "$d/err.txt" && fail "a table without rows was taken"
grep -q "error: no rows" "$d/err.txt" || { cat "$d/err.txt"; fail "no error for a table without rows"; }
[ ! -e "$d/bad.dot" ] || fail "a refused run wrote the graph"
"$CNNC" "$m" --check --profile-data "$d/table.txt" 2> "$d/err.txt" && fail "--profile-data without --emit-dot"
"$CNNC" "$m" --check --emit-dot "$d/table.txt" --profile-data "$d/table.txt" 2> "$d/err.txt" &&
  fail "--emit-dot onto the table was taken"
grep -q "it is the input file" "$d/err.txt" || { cat "$d/err.txt"; fail "no refusal to overwrite the table"; }
echo "profile table: $rows layers drawn in the graph; bad tables refused"
