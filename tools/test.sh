#!/usr/bin/env bash
# tools/test.sh: the whole test suite on a fresh Debian 12 machine.
#
#   tools/test.sh [--build-dir DIR] [ctest arguments...]
#
# Installs the missing packages (no PyTorch: the golden files are
# committed), builds everything in ./build (Release) and runs ctest: unit
# tests, error tests, golden tests and the Fashion-MNIST example.  Exits
# with ctest's status.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh

build=build
if [ "${1:-}" = --build-dir ]; then
  build=${2:?--build-dir needs a directory}
  shift 2
fi

install_deps "${CNNC_DEPS[@]}"
configure_and_build "$build"
echo "== ctest"
status=0
ctest --test-dir "$build" --output-on-failure -j2 "$@" || status=$?
exit $status
