# cnncModel.cmake: cnnc_add_model(), for projects that use cnnc through
# find_package(cnnc) (installed: <prefix>/lib/cmake/cnnc) or through
# add_subdirectory / FetchContent of cnnc's source tree.
#
#   cnnc_add_model(<target> MODEL <file> [WEIGHTS <file>] [NAME <name>]
#                  [OPTIONS <cnnc option>...])
#
# Compiles MODEL (a YAML spec or an ONNX file; relative paths are from the
# current source directory) with cnnc at build time into <target>.o and
# <target>.h in ${CMAKE_CURRENT_BINARY_DIR}/<target>.cnnc/, and makes
# <target> a static library of that object.  Linking <target> gives the
# header's directory (#include "<target>.h") and cnnc::cnnrt.  WEIGHTS is a
# YAML spec's safetensors file (cnnc --weights; default: the spec's own
# `weights:`), NAME the prefix of the generated symbols (cnnc --name;
# default: the model's own name), OPTIONS any other cnnc options (-O2,
# --winograd=off, --cpu ..., --random-weights 1).  The model, the weights
# and every file cnnc reads (ONNX external data included: cnnc --depfile)
# are dependencies: editing one rebuilds the library.
#
# The compiler is CNNC_EXECUTABLE when set, else cnnc::cnnc.  In a cross
# build (CMAKE_CROSSCOMPILING) cnnc must run on the build machine: the
# installed cnnc::cnnc, CNNC_EXECUTABLE, or a `cnnc` found on the PATH (a
# cross build that includes cnnc's source tree builds no compiler); cnnc
# is given the toolchain's triple (CNNC_TARGET, default
# CMAKE_C_COMPILER_TARGET or what `${CMAKE_C_COMPILER} -dumpmachine`
# prints) and CPU (CNNC_CPU, if set).  The runtime is the target's: built
# from cnnc's source tree when it is included, and against the installed
# package (whose libcnnrt.a is the build machine's) compiled from the
# runtime sources it installs (share/cnnc/runtime) as the target
# cnnc_cnnrt_target.
#
#   cnnc_target_runtime(<target> <runtime source dir>) makes that static
#   library: the pthreads pool on an OS, freestanding on bare metal
#   (CMAKE_SYSTEM_NAME Generic: -DCNNRT_FREESTANDING, the Cortex-M cycle
#   counter, no pthreads).
include_guard(GLOBAL)

function(cnnc_target_runtime target src)
  if(CMAKE_SYSTEM_NAME STREQUAL "Generic")
    add_library(${target} STATIC ${src}/cnnrt.c ${src}/cnnrt_pool.c ${src}/cnnrt_cycles.c)
    target_compile_definitions(${target} PRIVATE CNNRT_FREESTANDING)
    target_compile_options(${target} PRIVATE -ffreestanding)
  else()
    find_package(Threads REQUIRED)
    add_library(${target} STATIC ${src}/cnnrt.c ${src}/cnnrt_pool.c ${src}/cnnrt_pool_pthread.c)
    target_link_libraries(${target} PUBLIC Threads::Threads)
  endif()
  target_include_directories(${target} PUBLIC ${src})
endfunction()

# The runtime a model library links: cnnc::cnnrt, or in a cross build
# against the installed package the target's own (see above).
function(_cnnc_runtime out)
  set(rt cnnc::cnnrt)
  if(CMAKE_CROSSCOMPILING AND TARGET cnnc::cnnrt)
    get_target_property(imported cnnc::cnnrt IMPORTED)
    if(imported)
      if(NOT TARGET cnnc_cnnrt_target)
        if(NOT EXISTS "${_CNNC_RUNTIME_SOURCES}/cnnrt.c")
          message(FATAL_ERROR "cnnc_add_model: a cross build needs the runtime's sources, which this cnnc "
                  "package does not have (${_CNNC_RUNTIME_SOURCES})")
        endif()
        cnnc_target_runtime(cnnc_cnnrt_target "${_CNNC_RUNTIME_SOURCES}")
      endif()
      set(rt cnnc_cnnrt_target)
    endif()
  endif()
  set(${out} ${rt} PARENT_SCOPE)
endfunction()

function(_cnnc_compiler out_exe out_dep)
  if(CNNC_EXECUTABLE)
    set(${out_exe} "${CNNC_EXECUTABLE}" PARENT_SCOPE)
    set(${out_dep} "${CNNC_EXECUTABLE}" PARENT_SCOPE)
    return()
  endif()
  if(TARGET cnnc::cnnc)
    get_target_property(imported cnnc::cnnc IMPORTED)
    if(imported OR NOT CMAKE_CROSSCOMPILING)
      set(${out_exe} cnnc::cnnc PARENT_SCOPE)
      set(${out_dep} cnnc::cnnc PARENT_SCOPE)
      return()
    endif()
  endif()
  find_program(CNNC_EXECUTABLE cnnc)
  if(NOT CNNC_EXECUTABLE)
    message(FATAL_ERROR "cnnc_add_model: no cnnc that runs on this machine: set CNNC_EXECUTABLE "
            "(in a cross build, to a cnnc built for the build machine)")
  endif()
  set(${out_exe} "${CNNC_EXECUTABLE}" PARENT_SCOPE)
  set(${out_dep} "${CNNC_EXECUTABLE}" PARENT_SCOPE)
endfunction()

function(cnnc_add_model target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "MODEL;WEIGHTS;NAME" "OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "cnnc_add_model(${target}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_MODEL)
    message(FATAL_ERROR "cnnc_add_model(${target}): MODEL <file> is required")
  endif()
  get_filename_component(model "${arg_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${target}.cnnc")
  set(obj "${dir}/${target}.o")
  set(hdr "${dir}/${target}.h")
  set(args "${model}" -o "${obj}" --header "${hdr}")
  set(deps "${model}")
  if(arg_WEIGHTS)
    get_filename_component(weights "${arg_WEIGHTS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --weights "${weights}")
    list(APPEND deps "${weights}")
  endif()
  if(arg_NAME)
    list(APPEND args --name "${arg_NAME}")
  endif()
  if(CMAKE_CROSSCOMPILING)
    set(triple "${CNNC_TARGET}")
    if(NOT triple)
      set(triple "${CMAKE_C_COMPILER_TARGET}")
    endif()
    if(NOT triple)
      execute_process(COMMAND "${CMAKE_C_COMPILER}" -dumpmachine OUTPUT_VARIABLE triple
                      OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
      if(rc)
        message(FATAL_ERROR "cnnc_add_model(${target}): cannot tell the target triple: set CNNC_TARGET")
      endif()
    endif()
    list(APPEND args --target "${triple}")
    if(CNNC_CPU)
      list(APPEND args --cpu "${CNNC_CPU}")
    endif()
  endif()
  list(APPEND args ${arg_OPTIONS})
  _cnnc_compiler(cnnc cnnc_dep)
  set(depfile_args)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.20)
    list(APPEND args --depfile "${dir}/${target}.d")
    set(depfile_args DEPFILE "${dir}/${target}.d")
  endif()
  file(MAKE_DIRECTORY "${dir}")
  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${obj}")
  add_custom_command(
    OUTPUT "${obj}" "${hdr}"
    COMMAND ${cnnc} ${args}
    DEPENDS ${deps} ${cnnc_dep}
    ${depfile_args}
    COMMENT "cnnc ${arg_MODEL} -> ${shown}"
    VERBATIM)
  set_source_files_properties("${obj}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  set_source_files_properties("${hdr}" PROPERTIES GENERATED TRUE HEADER_FILE_ONLY TRUE)
  add_library(${target} STATIC "${obj}" "${hdr}")
  set_target_properties(${target} PROPERTIES LINKER_LANGUAGE C)
  target_include_directories(${target} INTERFACE "${dir}")
  _cnnc_runtime(runtime)
  target_link_libraries(${target} INTERFACE ${runtime})
endfunction()
