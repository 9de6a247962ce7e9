# Toolchain file for bare-metal Arm (Cortex-M) with Debian's gcc-arm-none-eabi
# and libnewlib-arm-none-eabi:
#
#   cmake -S examples/baremetal -B build-an385 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake -DBOARD=mps2-an385
#
# It only names the compiler; the CPU, FPU and float-ABI flags belong to the
# board and are set by the project (examples/baremetal/CMakeLists.txt).
# Test programs of CMake's compiler checks are built as static libraries,
# since an executable cannot link without a board's startup code and linker
# script.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_EXECUTABLE_SUFFIX_C .elf)

# Headers and libraries come from the cross toolchain only; programs run
# on the build machine.
set(CMAKE_FIND_ROOT_PATH /usr/lib/arm-none-eabi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
