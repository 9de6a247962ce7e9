# tools/deps.sh: sourced by tools/setup.sh and tools/test.sh.
#
# install_deps PKG...  installs the Debian packages that are not installed
# yet (checked with dpkg-query, so a prepared machine needs no network and
# no root), with apt-get as root or through sudo otherwise.

# protobuf-c-compiler, libprotobuf-c-dev and libonnx-dev (onnx.proto) build
# the ONNX loader; libonnx-testdata holds the models its unit test loads.
CNNC_DEPS=(build-essential cmake ninja-build binutils llvm-19-dev libyaml-dev libcmocka-dev
           dataset-fashion-mnist gzip protobuf-c-compiler libprotobuf-c-dev libonnx-dev
           libonnx-testdata)
# Only for the test suite: clang-19 and its sanitizer/libFuzzer runtime for
# the fuzz targets (fuzz/run.sh).
#
# The cross tests (tests/cross.sh, ctest's cross_*): the AArch64 Linux
# toolchain and qemu-aarch64 for the golden suite and the example on
# AArch64; the bare-metal Arm toolchain, newlib and qemu-system-arm for
# the Cortex-M boards (mps2-an385, mps2-an500, mps3-an547).
CNNC_TEST_DEPS=(clang-19 libclang-rt-19-dev)
# (tools/test.sh, unless --no-cross)
CNNC_CROSS_DEPS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
                 gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)
CNNC_FUZZ_TARGETS="spec codegen safetensors onnx onnx_graph profile"
CNNC_TORCH_DEPS=(python3-torch python3-numpy)

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

install_deps() {
  local missing=() pkg
  for pkg in "$@"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "== packages: all present ($*)"
    return 0
  fi
  echo "== packages: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "error: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
}

# configure_and_build BUILD_DIR [CMAKE OPTIONS]: build of everything
# (compiler, runtime, tests, example; the example's model is compiled by
# the build), Release unless the options say otherwise.
configure_and_build() {
  local dir=$1
  shift
  echo "== configure ($dir)"
  # Ninja for a new build directory (an existing one keeps its generator)
  local gen=()
  [ -f "$dir/CMakeCache.txt" ] || gen=(-G Ninja)
  cmake "${gen[@]}" -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@"
  echo "== build ($dir)"
  cmake --build "$dir" -j"$(nproc)"
}
