#!/usr/bin/env bash
# tools/setup.sh: from a fresh Debian 12 machine to the running example.
#
#   tools/setup.sh [--with-torch] [--build-dir DIR]
#
# Installs the missing packages (apt-get; as root, or through sudo), builds
# cnnc, libcnnrt, the tests and the example in ./build (Release), compiles
# models/fashion_mnist.yaml with cnnc (part of the build) and runs the
# example on the 10,000 Fashion-MNIST test images.  --with-torch also
# installs PyTorch and numpy, needed only to retrain the model or remake
# the golden files.  Exits non-zero if any step fails, including when the
# example's accuracy differs from PyTorch's recorded figure.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh

build=build
pkgs=("${CNNC_DEPS[@]}")
while [ $# -gt 0 ]; do
  case $1 in
    --with-torch) pkgs+=("${CNNC_TORCH_DEPS[@]}") ;;
    --build-dir) build=${2:?--build-dir needs a directory}; shift ;;
    -h|--help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

install_deps "${pkgs[@]}"
configure_and_build "$build"

echo "== compiled model: $build/examples/fashion_mnist.o + fashion_mnist.h"
echo "   (by: $build/compiler/cnnc models/fashion_mnist.yaml -o $build/examples/fashion_mnist.o)"
echo "== run the example"
"$build/examples/fashion_mnist"
