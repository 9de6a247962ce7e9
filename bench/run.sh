#!/usr/bin/env bash
# bench/run.sh: the cnnc benchmark, from a fresh Debian 12 machine, in one command.
#
#   bench/run.sh [--models a,b] [--runs N] [--quick] [--threads 1,2] [--build-dir DIR]
#                [bench.py options]
#
# Installs what is missing (apt-get as root or through sudo: the build
# dependencies of cnnc plus python3-torch, -torchvision, -onnx, -numpy,
# -matplotlib, and nodejs/npm when `node`/`npm` are not there; then
# onnxruntime-node, pinned by bench/package-lock.json, with
# `npm ci --ignore-scripts` into bench/node_modules), builds cnnc and
# libcnnrt in ./build (Release; or --build-dir), and runs bench/bench.py,
# which times cnnc, ONNX Runtime and PyTorch on one core (with --threads,
# at each count, on as many cores) and writes bench/results.md,
# bench/results.json and bench/ratios.png (or into --out DIR).
# See docs/bench.md; `bench/run.sh --help` lists bench.py's options.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh

BENCH_DEPS=(python3-torch python3-torchvision python3-onnx python3-numpy
            python3-matplotlib)
ORT_VERSION=1.30.0

build=build
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build=${2:?--build-dir needs a directory}; args+=("$1" "$2"); shift ;;
    --build-dir=*) build=${1#--build-dir=}; args+=("$1") ;;
    -h|--help)
      sed -n '2,16s/^# \{0,1\}//p' "$0"
      echo
      exec /usr/bin/python3 bench/bench.py --help 2>/dev/null ||
        echo "(bench.py's options are listed once python3-numpy is installed)"
      ;;
    *) args+=("$1") ;;
  esac
  shift
done

pkgs=("${CNNC_DEPS[@]}" "${BENCH_DEPS[@]}")
# nodesource's nodejs bundles npm and conflicts with Debian's npm package:
# ask for the Debian packages only when the commands are missing.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
install_deps "${pkgs[@]}"

echo "== onnxruntime-node $ORT_VERSION"
have=$(node -p "try { require('./bench/node_modules/onnxruntime-node/package.json').version }
                catch (e) { '' }" 2>/dev/null || true)
if [ "$have" != "$ORT_VERSION" ]; then
  (cd bench && npm ci --ignore-scripts --no-audit --no-fund)
else
  echo "   already in bench/node_modules"
fi
node -e "require('./bench/node_modules/onnxruntime-node')" ||
  { echo "error: onnxruntime-node does not load" >&2; exit 1; }

echo "== build cnnc and libcnnrt ($build)"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
fi
# On a build error the benchmark still runs ONNX Runtime and PyTorch, and
# reports every cnnc row as "not built" (never a stale cnnc from before).
mkdir -p "$build/bench"
if ! cmake --build "$build" -j"$(nproc)" --target cnnc cnnrt 2>&1 | tee "$build/bench/build.log"
then
  why=$(grep -m1 -i 'error' "$build/bench/build.log" | cut -c1-200 || true)
  echo "warning: building cnnc failed; the cnnc rows will say so" >&2
  args+=(--cnnc-unavailable "build failed: ${why:-see $build/bench/build.log}")
fi

echo "== benchmark"
exec /usr/bin/python3 bench/bench.py "${args[@]}"
