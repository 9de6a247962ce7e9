#!/bin/sh
# tests/cross.sh MODE: cnnc's objects on Arm, built with the cross
# toolchains and run under QEMU (ctest's cross_* tests, Release builds).
#
#   aarch64      examples/aarch64 in $CNNC_BUILD_DIR/cross-aarch64: every
#                golden case compiled for aarch64-linux-gnu, linked with
#                tests/golden_driver.c and libcnnrt built for AArch64, run
#                under qemu-aarch64 (same tolerance as on x86); then the
#                Fashion-MNIST example on the 10,000 test images, whose
#                predicted classes must equal the x86 build's, image for
#                image (and its accuracy PyTorch's record).
#   mps2-an385 | mps2-an500 | mps3-an547
#                examples/baremetal for that board in
#                $CNNC_BUILD_DIR/cross-BOARD, under qemu-system-arm: hello
#                and fault, the golden cases of CNNC_CASES (model.c), and
#                fmnist.elf, whose classes of the first 1,000 test images
#                must equal the x86 build's; every model object needs
#                nothing but memcpy/memset (their __aeabi_ forms) and, on
#                the soft-float M3, libgcc's __aeabi_ float routines, and
#                keeps its weights in .cnnc_weights (--weights-section).
#
# Exits 77 (ctest: skipped) when a tool is not installed: Debian's
# gcc-aarch64-linux-gnu and qemu-user, or gcc-arm-none-eabi,
# libnewlib-arm-none-eabi and qemu-system-arm (tools/deps.sh installs them).
# Environment from tests/CMakeLists.txt: CNNC, CNNC_SOURCE_DIR,
# CNNC_BUILD_DIR.
set -u
mode=${1:?usage: cross.sh aarch64|mps2-an385|mps2-an500|mps3-an547|m0plus}
src=$CNNC_SOURCE_DIR
dir=$CNNC_BUILD_DIR/cross-$mode
host_example=$CNNC_BUILD_DIR/examples/fashion_mnist
dataset=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

skip() {
  echo "SKIP: $1"
  exit 77
}
need() {
  command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed (Debian package $2)"
}
fail() {
  echo "FAIL: $*"
  exit 1
}

# The x86 build's predicted classes of the test images (examples/fashion_mnist.c --classes).
host_classes() {
  [ -x "$host_example" ] && [ -f "$dataset" ] || return 1
  "$host_example" --classes "$dir/x86_classes.txt" >/dev/null || fail "the x86 example failed"
}

# Ninja (Debian ninja-build) when installed and the build directory is
# new: CMake's Makefiles spend about 150 ms of make and cmake_depends per
# golden case, where the compile and the link take 40 ms (the AArch64
# build: 93 s with Makefiles, 27 s with Ninja).
generator() { # generator BUILD_DIR: -G Ninja, or nothing
  [ ! -f "$1/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1 && echo "-G Ninja"
}

build() { # build SOURCE TOOLCHAIN [CMAKE OPTION...]
  s=$1 tc=$2
  shift 2
  cmake $(generator "$dir") -S "$src/$s" -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/$tc.cmake" -DCMAKE_BUILD_TYPE=Release \
    -DCNNC="$CNNC" "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; fail "configuring $s"; }
  cmake --build "$dir" -j2 >"$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; fail "building $s"; }
}

aarch64() {
  need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
  need qemu-aarch64 qemu-user
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || skip "no AArch64 libc (libc6-dev-arm64-cross)"
  build examples/aarch64 aarch64-linux-gnu
  ctest --test-dir "$dir" -j2 --output-on-failure -E example >"$dir.ctest.log" 2>&1
  st=$?
  grep -E "tests passed|Failed|\*\*\*" "$dir.ctest.log"
  [ $st -eq 0 ] || fail "golden cases under qemu-aarch64 (see $dir.ctest.log)"
  # --profile counts ticks there (CNTVCT_EL0 through an inline-asm mrs)
  "$CNNC" "$src/models/fashion_mnist.yaml" --target=aarch64-linux-gnu --profile --name profiled \
    -o "$dir/profiled.o" || fail "cnnc --profile for AArch64"
  aarch64-linux-gnu-gcc -O1 -I "$src/runtime" -I "$dir" "$src/tests/profile_ticks.c" "$dir/profiled.o" \
    "$src/runtime/cnnrt.c" -o "$dir/profile_ticks" || fail "linking tests/profile_ticks.c for AArch64"
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 "$dir/profile_ticks" || fail "AArch64 --profile counted no ticks"
  if host_classes; then
    ctest --test-dir "$dir" --output-on-failure -R example || fail "the AArch64 Fashion-MNIST example"
    cmp "$dir/x86_classes.txt" "$dir/classes.txt" || fail "AArch64 classes differ from x86's"
    echo "Fashion-MNIST: the 10000 classes equal the x86 build's"
  else
    fail "no x86 example ($host_example) or no dataset ($dataset)"
  fi
}

# Undefined symbols of a bare-metal model object beyond memcpy/memset and
# the weak references to the pool entry points (cnnrt.h: without them
# <name>_run_pool runs on one thread), which need nothing at link time.
extra_symbols() { # OBJECT SOFT(0|1)
  arm-none-eabi-nm -u "$1" | awk '!($1 == "w" && $2 ~ /^cnnrt_(parallel_for|pool_threads)$/) {print $2}' |
    grep -Ev '^(memcpy|memset|__aeabi_mem(cpy|set|clr|move)[48]?)$' |
    if [ "$2" = 1 ]; then
      grep -Ev '^__aeabi_(f[a-z0-9]+|[iu]2f|[u]?l2f)$'
    else
      cat
    fi
}

board() {
  need arm-none-eabi-gcc gcc-arm-none-eabi
  need qemu-system-arm qemu-system-arm
  case $(arm-none-eabi-gcc -print-file-name=libc_nano.a) in
  /*) ;;
  *) skip "no newlib for arm-none-eabi (libnewlib-arm-none-eabi)" ;;
  esac
  build examples/baremetal arm-none-eabi -DBOARD="$mode"
  ctest --test-dir "$dir" -j2 --output-on-failure -E '^fmnist$' >"$dir.ctest.log" 2>&1
  st=$?
  grep -E "tests passed|Failed|\*\*\*|argmax" "$dir.ctest.log"
  [ $st -eq 0 ] || fail "programs on $mode (see $dir.ctest.log)"
  soft=0
  [ "$mode" = mps2-an385 ] && soft=1
  for o in "$dir"/*/*.o; do
    extra=$(extra_symbols "$o" $soft)
    [ -z "$extra" ] || fail "$o needs $(echo $extra)"
  done
  # the model with weights: all of them (fc1 alone is 401 KiB) in .cnnc_weights
  o=$dir/fmnist/fashion_mnist.o
  hex=$(arm-none-eabi-readelf -SW "$o" | sed -n 's/.*\.cnnc_weights  *PROGBITS  *[0-9a-f]*  *[0-9a-f]*  *\([0-9a-f]*\).*/\1/p')
  size=$(printf '%d' "0x${hex:-0}")
  [ "${size:-0}" -gt 400000 ] || fail "$o: the weights are not in .cnnc_weights (size '${size:-none}')"
  echo "model objects: only memcpy/memset$([ $soft = 1 ] && echo ' and __aeabi_ float routines'); weights in .cnnc_weights ($size bytes)"
  host_classes || fail "no x86 example ($host_example) or no dataset ($dataset)"
  # QEMU writes the semihosting output to its stderr.  Two QEMUs share the
  # 1,000 images, 500 each, side by side (the test has both cores): the
  # soft-float M3 needs about 170 s of CPU for all of them; on a loaded
  # machine QEMU gets a fraction of a core, hence the long timeout.
  pids=
  for half in 0 500; do
    RUN_ARGS="$half 500" RUN_TIMEOUT=1500 "$src/examples/baremetal/run.sh" "$mode" "$dir/fmnist.elf" \
      2>"$dir/fmnist.$half.out" &
    pids="$pids $!"
  done
  st=0
  for pid in $pids; do wait "$pid" || st=1; done
  cat "$dir/fmnist.0.out" "$dir/fmnist.500.out" >"$dir/fmnist.out"
  [ $st = 0 ] || fail "fmnist.elf on $mode: $(cat "$dir/fmnist.out")"
  head -10 "$dir/x86_classes.txt" | cmp - "$dir/fmnist.out" || fail "classes on $mode differ from x86's"
  echo "Fashion-MNIST on $mode: the classes of the first 1000 test images equal the x86 build's"
}

# The Cortex-M0+ objects (Armv6-M, whose instructions the Armv7-M core
# runs too) on the M3 board, mps2-an385 (QEMU has no M0+ board with the
# RAM of these models): the golden cases that have a Winograd layer with
# --winograd=on, the kernels that keep the most across the soft-float
# calls (cg_winograd.c), the direct and reference convs' walks (cg_walk_begin:
# 1x1, strided, padded, dilated, grouped, batched), relu on the bits, and
# a few families.
M0PLUS_CASES="conv_basic;conv_dilation;conv_groups;conv_asym_pad;conv_asym_pad_stride;conv_odd;conv_same_dilated;conv_stride_gt_kernel;conv_valid;conv_batch2;relu_layer;dense_relu;op_act_new_specials;fuse_pad_conv;fuse_tail_groups;conv_same_even;conv_1x1_image;conv_depthwise;fam_densenet;fam_googlenet;fam_mobilenet_v2;fam_resnet_basic;fam_squeezenet;fam_vgg_bn;fashion_mnist;fashion_mnist_b8;fuse_thread_splits;fuse_wino_odd;fuse_wino_resblock;fuzz_wino_points;op_residual"
m0plus() {
  need arm-none-eabi-gcc gcc-arm-none-eabi
  need qemu-system-arm qemu-system-arm
  build examples/baremetal arm-none-eabi -DBOARD=mps2-an385 -DFASHION_MNIST_DIR=/nonexistent \
    "-DCNNC_CASES=$M0PLUS_CASES" \
    "-DCNNC_FLAGS=--target=thumbv6m-none-eabi;--cpu=cortex-m0plus;--weights-section=.cnnc_weights;--winograd=on"
  ctest --test-dir "$dir" -j2 --output-on-failure >"$dir.ctest.log" 2>&1
  st=$?
  grep -E "tests passed|Failed|\*\*\*" "$dir.ctest.log"
  [ $st -eq 0 ] || fail "Cortex-M0+ objects on mps2-an385 (see $dir.ctest.log)"
  for o in "$dir"/*/*.o; do
    arm-none-eabi-readelf -A "$o" | grep -q 'Tag_CPU_arch: v6S-M' || fail "$o is not an Armv6-M object"
  done
  echo "Cortex-M0+ objects (Armv6-M) of $(echo "$M0PLUS_CASES" | tr ';' '\n' | wc -l) golden cases match PyTorch on mps2-an385"
}

mkdir -p "$dir"
case $mode in
m0plus) m0plus ;;
aarch64) aarch64 ;;
mps2-an385 | mps2-an500 | mps3-an547) board ;;
*) fail "unknown mode '$mode'" ;;
esac
