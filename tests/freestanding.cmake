# Run by the pool_freestanding test (tests/CMakeLists.txt): compiles SRC
# freestanding with CC (and ARM_CC for a Cortex-M0, if set), and fails if
# the object needs any symbol other than memcpy, memset, memmove, memcmp.
# Only the compiler's own include directory is on the path, so a libc
# header would not be found.
file(MAKE_DIRECTORY ${OUT})

function(check_freestanding cc nm obj)
  execute_process(COMMAND ${cc} -print-file-name=include
    OUTPUT_VARIABLE inc OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${cc} ${ARGN} -std=c11 -pedantic -Wall -Wextra -Werror -O2
      -ffreestanding -nostdinc -isystem ${inc} -DCNNRT_FREESTANDING -c ${SRC} -o ${obj}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${cc}: ${SRC} does not compile freestanding")
  endif()
  execute_process(COMMAND ${nm} -u ${obj} OUTPUT_VARIABLE undef RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${nm} -u ${obj} failed")
  endif()
  string(REGEX REPLACE "[ \t]*U (memcpy|memset|memmove|memcmp)\n" "" rest "${undef}")
  if(NOT rest STREQUAL "")
    message(FATAL_ERROR "${obj} needs more than memcpy/memset/memmove/memcmp:\n${undef}")
  endif()
  message(STATUS "${cc}: freestanding, undefined symbols: none beyond mem*")
endfunction()

check_freestanding(${CC} ${NM} ${OUT}/cnnrt_pool.o)
if(ARM_CC)
  string(REGEX REPLACE "gcc$" "nm" arm_nm "${ARM_CC}")
  check_freestanding(${ARM_CC} ${arm_nm} ${OUT}/cnnrt_pool_m0.o -mcpu=cortex-m0 -mthumb)
endif()
