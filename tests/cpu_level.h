/*
 * cpu_level.h: this CPU's x86-64 psABI level, 1 (the baseline) to 4, from
 * the compiler's __builtin_cpu_supports: independent of the objects'
 * cpuid probe (compiler/cg_cpu.c), which tests/cpu_check.c and
 * tests/cpu_multi.c check against it.
 */
#ifndef CPU_LEVEL_H
#define CPU_LEVEL_H

static int cpu_level(void) {
  __builtin_cpu_init();
  int v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt") &&
           __builtin_cpu_supports("ssse3");
  int v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx");
  int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
  return v4 ? 4 : v3 ? 3 : v2 ? 2 : 1;
}

#endif
