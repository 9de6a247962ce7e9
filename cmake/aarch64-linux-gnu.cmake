# Toolchain file for AArch64 Linux with Debian's gcc-aarch64-linux-gnu
# (and libc6-dev-arm64-cross); programs run under qemu-aarch64 (Debian
# qemu-user), which ctest and add_custom_command use through
# CMAKE_CROSSCOMPILING_EMULATOR:
#
#   cmake -S examples/aarch64 -B build-a64 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCNNC=build/compiler/cnnc
#   cmake --build build-a64 -j2 && ctest --test-dir build-a64
#
# -L points qemu-aarch64 at the AArch64 dynamic loader and libc that the
# cross packages install under /usr/aarch64-linux-gnu.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
