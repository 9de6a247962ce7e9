#!/bin/sh
# tests/readme_snippets.sh: the README's snippets, copied as written and run
# in a fresh shell (ctest readme_snippets).  Each is the code block after a
# `<!-- readme-test: NAME -->` line:
#   quickstart      with this build installed into a temporary prefix and
#                   only that prefix's bin/, include/ and lib/ on the
#                   shell's paths (as /usr/local is on a fresh machine), in
#                   a directory holding models/ and the README's app.c
#   app.c           the API example, compiled by quickstart and buildtree
#   buildtree       in a directory laid out as the repository root after
#                   building (runtime/, build/, models/)
#   CMakeLists.txt  beside examples/cmake's tiny.yaml and app.c, configured
#                   with the prefix, built and run
# Each must exit 0; quickstart's ./app must print what its comment says.
set -eu
src=$CNNC_SOURCE_DIR build=$CNNC_BUILD_DIR
flags=${CNNC_TEST_CFLAGS:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_readme.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "readme_snippets.sh: $*" >&2; exit 1; }

# snippet NAME: the block after the marker (without its fences)
snippet() {
  awk -v name="$1" '
    index($0, "<!-- readme-test: " name) == 1 { want = 1; next }
    want == 1 && /^```/ { want = 2; next }
    want == 2 && /^```/ { exit }
    want == 2 { print }' "$src/README.md"
}
for n in quickstart app.c buildtree CMakeLists.txt; do
  [ -n "$(snippet "$n")" ] || fail "README.md has no block marked 'readme-test: $n'"
done

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null || fail "cmake --install failed"
p=$tmp/prefix
libdir=$(dirname "$(find "$p" -name libcnnrt.a | head -1)")
# fresh_sh DIR SCRIPT: runs SCRIPT in DIR in an environment holding only
# the prefix and the system's paths (CC carries a sanitized build's flags)
fresh_sh() {
  (cd "$1" && env -i HOME="$tmp" PATH="$p/bin:/usr/bin:/bin" CPATH="$p/include" LIBRARY_PATH="$libdir" \
     ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
     sh -ec "cc() { command cc $flags \"\$@\"; }; $2")
}

mkdir "$tmp/qs"
cp -r "$src/models" "$tmp/qs/models"
snippet app.c > "$tmp/qs/app.c"
out=$(fresh_sh "$tmp/qs" "$(snippet quickstart)") || fail "the quick start failed: $out"
want=$(snippet quickstart | sed -n 's/.*# prints "\(.*\)".*/\1/p')
[ -n "$want" ] && [ "$(echo "$out" | tail -1)" = "$want" ] || fail "the quick start printed '$out', its comment says '$want'"

mkdir "$tmp/bt"
ln -s "$src/runtime" "$tmp/bt/runtime"
ln -s "$build" "$tmp/bt/build"
cp -r "$src/models" "$tmp/bt/models"
snippet app.c > "$tmp/bt/app.c"
fresh_sh "$tmp/bt" "$(snippet buildtree) && ./app" >/dev/null || fail "the build-tree commands failed"

mkdir "$tmp/cm"
snippet CMakeLists.txt > "$tmp/cm/CMakeLists.txt"
cp "$src/examples/cmake/tiny.yaml" "$src/examples/cmake/app.c" "$tmp/cm/"
fresh_sh "$tmp/cm" "cmake -S . -B b -DCMAKE_PREFIX_PATH='$p' -DCMAKE_C_FLAGS='$flags' -DCMAKE_EXE_LINKER_FLAGS='$flags' >/dev/null && cmake --build b >/dev/null && b/app" \
  >/dev/null || fail "the README's CMake example failed"
echo "readme_snippets.sh: quick start ('$want'), build-tree commands and CMake example ran as written"
