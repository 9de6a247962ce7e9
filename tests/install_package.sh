#!/bin/sh
# tests/install_package.sh MODE: the installed package, as an outside
# project uses it (ctest install_prefix and install_deb).
#   prefix  cmake --install this build into a temporary prefix, then build
#           and run examples/cmake (find_package(cnnc), cnnc_add_model) and
#           examples/make (pkg-config, cnnc from the PATH) against it; then
#           edit the model and check that the CMake project rebuilds it;
#           then cross-build examples/cmake for AArch64 against the prefix
#           and, with add_subdirectory of this source tree, with the
#           prefix's cnnc, and run both under qemu-aarch64.
#   deb     cpack -G DEB in this build, check the package's dependencies
#           and files, unpack it into a temporary root (dpkg-deb -x) and
#           build examples/cmake against that root's /usr.
# Needs CNNC_SOURCE_DIR and CNNC_BUILD_DIR (set by ctest); CNNC_TEST_CFLAGS
# (the sanitizer flags of a sanitized build) go to the outside builds.
set -eu
mode=$1
src=$CNNC_SOURCE_DIR build=$CNNC_BUILD_DIR
flags=${CNNC_TEST_CFLAGS:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc_install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_package.sh $mode: $*" >&2; exit 1; }

# build_cmake PREFIX DIR: configures and builds examples/cmake (a copy in
# DIR/src, so that the test can edit its model) and runs it.
build_cmake() {
  mkdir -p "$2"
  cp -r "$src/examples/cmake" "$2/src"
  cmake -S "$2/src" -B "$2/build" -DCMAKE_PREFIX_PATH="$1" -DCMAKE_C_FLAGS="$flags" \
        -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$2/configure.log" 2>&1 || { cat "$2/configure.log"; fail "configure failed"; }
  cmake --build "$2/build" >"$2/build.log" 2>&1 || { cat "$2/build.log"; fail "build failed"; }
  out=$("$2/build/app") || fail "the CMake example's app failed: $out"
  [ "$out" = "scores: 6.25 3.75" ] || fail "the CMake example printed '$out'"
}

# cross_cmake DIR CMAKE-ARGS...: examples/cmake's app for AArch64 Linux
# (cmake/aarch64-linux-gnu.cmake), configured in DIR with the arguments,
# built and run under qemu-aarch64; a no-op (with a note) without the
# cross toolchain and QEMU (tools/test.sh installs them unless --no-cross).
cross_cmake() {
  d=$1
  shift
  if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    echo "install_package.sh $mode: no aarch64-linux-gnu-gcc or qemu-aarch64: cross build not tried"
    return 0
  fi
  cmake -S "$d/src" -B "$d/build" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" "$@" \
        >"$d/configure.log" 2>&1 || { cat "$d/configure.log"; fail "cross configure failed"; }
  cmake --build "$d/build" >"$d/build.log" 2>&1 || { cat "$d/build.log"; fail "cross build failed"; }
  file "$d/build/app" | grep -q aarch64 || fail "the cross-built app is not an AArch64 program"
  out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$d/build/app") || fail "the cross-built app failed: $out"
  [ "$out" = "scores: 6.25 3.75" ] || fail "the cross-built app printed '$out'"
  echo "install_package.sh $mode: $(basename "$d"): the app cross-built for AArch64 ran under qemu-aarch64: $out"
}

case $mode in
prefix)
  cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install failed"; }
  for f in bin/cnnc bin/cnnc-export include/cnnrt.h lib/libcnnrt.a lib/pkgconfig/cnnrt.pc \
           lib/cmake/cnnc/cnncConfig.cmake lib/cmake/cnnc/cnncModel.cmake share/man/man1/cnnc.1; do
    [ -e "$tmp/prefix/$f" ] || [ -e "$(ls -d "$tmp"/prefix/lib/*/"${f#lib/}" 2>/dev/null | head -1)" ] || fail "not installed: $f"
  done
  build_cmake "$tmp/prefix" "$tmp/cmake"
  # a cross build against the installed package: its cnnc runs here, the
  # runtime is compiled for the target from the sources it installs
  mkdir -p "$tmp/cross" && cp -r "$src/examples/cmake" "$tmp/cross/src"
  cfg=$(ls "$tmp"/prefix/lib/cmake/cnnc/cnncConfig.cmake "$tmp"/prefix/lib/*/cmake/cnnc/cnncConfig.cmake 2>/dev/null | head -1)
  cross_cmake "$tmp/cross" -Dcnnc_DIR="$(dirname "$cfg")"
  # and one that includes cnnc's source tree (add_subdirectory, as
  # FetchContent does): the target's runtime from the tree, a host cnnc
  mkdir -p "$tmp/sub/src" && cp "$src/examples/cmake/app.c" "$src/examples/cmake/tiny.yaml" "$tmp/sub/src/"
  printf '%s\n' "cmake_minimum_required(VERSION 3.16)" "project(sub C)" "add_subdirectory(\"$src\" cnnc)" \
    "cnnc_add_model(tiny MODEL tiny.yaml)" "add_executable(app app.c)" "target_link_libraries(app PRIVATE tiny)" \
    > "$tmp/sub/src/CMakeLists.txt"
  cross_cmake "$tmp/sub" -DCNNC_EXECUTABLE="$tmp/prefix/bin/cnnc"
  # editing the model rebuilds the library: a bias of 20 gives 13.75
  sed -i 's/bias: \[0, 10\]/bias: [0, 20]/' "$tmp/cmake/src/tiny.yaml"
  cmake --build "$tmp/cmake/build" >"$tmp/rebuild.log" 2>&1 || { cat "$tmp/rebuild.log"; fail "rebuild failed"; }
  out=$("$tmp/cmake/build/app" || true)
  [ "$out" = "scores: 6.25 13.75" ] || fail "after editing tiny.yaml the app printed '$out' (not rebuilt?)"
  # the Makefile example, through pkg-config
  mkdir "$tmp/make"
  pc=$(dirname "$(find "$tmp/prefix" -name cnnrt.pc | head -1)")
  (cd "$tmp/make" && PATH="$tmp/prefix/bin:$PATH" PKG_CONFIG_PATH="$pc" \
     make -f "$src/examples/make/Makefile" SRC="$src/examples/cmake" CC="${CC:-cc} $flags" \
     >"$tmp/make.log" 2>&1) || { cat "$tmp/make.log"; fail "the Makefile example failed to build"; }
  out=$("$tmp/make/app") || fail "the Makefile example's app failed: $out"
  [ "$out" = "scores: 6.25 3.75" ] || fail "the Makefile example printed '$out'"
  echo "install_package.sh prefix: installed, examples/cmake and examples/make built and ran; the edited model was rebuilt"
  ;;
deb)
  command -v cpack >/dev/null && command -v dpkg-deb >/dev/null || { echo "skipped: no cpack or dpkg-deb"; exit 77; }
  (cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; fail "cpack failed"; }
  deb=$(ls "$tmp"/cnnc_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || fail "cpack wrote no cnnc_*.deb"
  deps=$(dpkg-deb -f "$deb" Depends)
  for d in libllvm19 libyaml-0-2 libprotobuf-c1 libc6; do
    case $deps in *"$d"*) ;; *) fail "Depends lacks $d: $deps" ;; esac
  done
  dpkg-deb -x "$deb" "$tmp/root"
  for f in usr/bin/cnnc usr/bin/cnnc-export usr/include/cnnrt.h usr/share/man/man1/cnnc.1; do
    [ -e "$tmp/root/$f" ] || fail "the package lacks /$f"
  done
  build_cmake "$tmp/root/usr" "$tmp/cmake"
  # apt resolves its dependencies (a simulation: installs nothing)
  apt-get install -s "$deb" >"$tmp/apt.log" 2>&1 && grep -q '^Inst cnnc ' "$tmp/apt.log" ||
    { cat "$tmp/apt.log"; fail "apt-get install -s $deb does not resolve"; }
  echo "install_package.sh deb: $(basename "$deb"), Depends: $deps; examples/cmake built and ran against its files; apt resolves it"
  # CI (.ci/run, as root on a throwaway machine) installs it for real, as
  # a user would, builds examples/cmake against the system's /usr, and
  # removes it again; never over a cnnc package that is installed already.
  if [ "${CNNC_TEST_DEB_INSTALL:-0}" = 1 ]; then
    [ "$(id -u)" = 0 ] || fail "CNNC_TEST_DEB_INSTALL=1 needs root"
    if dpkg -s cnnc >/dev/null 2>&1; then
      echo "install_package.sh deb: a cnnc package is installed already; not replacing it"
    else
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log"; fail "apt-get install $deb failed"; }
      st=0
      (build_cmake /usr "$tmp/system") || st=1
      [ "$(command -v cnnc)" = /usr/bin/cnnc ] || st=1
      DEBIAN_FRONTEND=noninteractive apt-get remove -y -q cnnc >"$tmp/remove.log" 2>&1 ||
        { cat "$tmp/remove.log"; fail "apt-get remove cnnc failed"; }
      [ $st = 0 ] || fail "examples/cmake against the installed package failed"
      echo "install_package.sh deb: apt-get install ./$(basename "$deb"), examples/cmake built against /usr and ran, package removed"
    fi
  fi
  ;;
*) fail "unknown mode" ;;
esac
