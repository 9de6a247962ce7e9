/*
 * peak.c: measures this core's peak float32 FMA rate.
 *
 * Each kernel keeps NACC independent accumulator registers and updates each
 * one with a fused multiply-add per iteration, so the FMA units never wait
 * for a previous result: with a latency of L cycles and P FMA pipes, L*P
 * chains keep them busy (4 cycles x 2 pipes on current x86 cores; we use
 * more to be safe).  acc = acc*a + b with a just below 1 converges to a
 * fixed point, so values stay normal (no denormal slow-down, no overflow).
 * The sum of the accumulators is printed, so nothing is optimised away.
 *
 * Widths: AVX-512 (16 floats, 16 accumulators of 32 zmm registers) and
 * AVX2+FMA (8 floats, 12 accumulators of 16 ymm registers).  Each kernel is
 * compiled with a target attribute and called only when the CPU reports
 * the features, so the program builds anywhere with -O2 -march=native.
 *
 * Output: one JSON object on stdout,
 *   {"avx512": GFLOPS|null, "avx2": GFLOPS|null, "peak": GFLOPS, "isa": "..."}
 * where one FMA lane counts as 2 FLOPs and peak is the best width.
 *
 *   peak [SECONDS_PER_TRIAL]   (default 0.05; 40 trials per width, best kept:
 *   the best is the one least disturbed by other processes and the hypervisor)
 */
#define _POSIX_C_SOURCE 199309L
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TRIALS 40

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs `iters` iterations; returns a value depending on every accumulator. */
__attribute__((target("avx512f"), noinline)) static float fma512(int64_t iters) {
  __m512 a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
  __m512 c0 = _mm512_set1_ps(0.0f), c1 = _mm512_set1_ps(0.1f), c2 = _mm512_set1_ps(0.2f),
         c3 = _mm512_set1_ps(0.3f), c4 = _mm512_set1_ps(0.4f), c5 = _mm512_set1_ps(0.5f),
         c6 = _mm512_set1_ps(0.6f), c7 = _mm512_set1_ps(0.7f), c8 = _mm512_set1_ps(0.8f),
         c9 = _mm512_set1_ps(0.9f), c10 = _mm512_set1_ps(1.0f), c11 = _mm512_set1_ps(1.1f),
         c12 = _mm512_set1_ps(1.2f), c13 = _mm512_set1_ps(1.3f), c14 = _mm512_set1_ps(1.4f),
         c15 = _mm512_set1_ps(1.5f);
  for (int64_t i = 0; i < iters; i++) {
    c0 = _mm512_fmadd_ps(c0, a, b);
    c1 = _mm512_fmadd_ps(c1, a, b);
    c2 = _mm512_fmadd_ps(c2, a, b);
    c3 = _mm512_fmadd_ps(c3, a, b);
    c4 = _mm512_fmadd_ps(c4, a, b);
    c5 = _mm512_fmadd_ps(c5, a, b);
    c6 = _mm512_fmadd_ps(c6, a, b);
    c7 = _mm512_fmadd_ps(c7, a, b);
    c8 = _mm512_fmadd_ps(c8, a, b);
    c9 = _mm512_fmadd_ps(c9, a, b);
    c10 = _mm512_fmadd_ps(c10, a, b);
    c11 = _mm512_fmadd_ps(c11, a, b);
    c12 = _mm512_fmadd_ps(c12, a, b);
    c13 = _mm512_fmadd_ps(c13, a, b);
    c14 = _mm512_fmadd_ps(c14, a, b);
    c15 = _mm512_fmadd_ps(c15, a, b);
    /* An empty asm that "reads and writes" the accumulators keeps the
     * compiler from folding or reassociating the chains. */
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5),
                     "+v"(c6), "+v"(c7));
    __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13),
                     "+v"(c14), "+v"(c15));
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                           _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15)));
  return _mm512_reduce_add_ps(_mm512_add_ps(s, t));
}
#define FMA512_PER_ITER 16 /* FMA instructions per iteration */

__attribute__((target("avx2,fma"), noinline)) static float fma256(int64_t iters) {
  __m256 a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
  __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f),
         c3 = _mm256_set1_ps(0.3f), c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f),
         c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f), c8 = _mm256_set1_ps(0.8f),
         c9 = _mm256_set1_ps(0.9f), c10 = _mm256_set1_ps(1.0f), c11 = _mm256_set1_ps(1.1f);
  for (int64_t i = 0; i < iters; i++) {
    c0 = _mm256_fmadd_ps(c0, a, b);
    c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b);
    c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b);
    c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
    c10 = _mm256_fmadd_ps(c10, a, b);
    c11 = _mm256_fmadd_ps(c11, a, b);
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  float v[8];
  _mm256_storeu_ps(v, s);
  return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
#define FMA256_PER_ITER 12

typedef float (*KernelFn)(int64_t);

/* Best GFLOP/s over TRIALS runs of about `seconds` each. */
static double measure(KernelFn fn, int fmas_per_iter, int lanes, double seconds,
                      float *sink) {
  int64_t iters = 1 << 16;
  for (;;) { /* calibrate: grow until one run takes a tenth of the target */
    double t0 = now_s();
    *sink += fn(iters);
    double dt = now_s() - t0;
    if (dt > seconds / 10 || iters > (INT64_C(1) << 40))
      break;
    iters *= 2;
  }
  iters = (int64_t)((double)iters * 10);
  double best = 0;
  for (int t = 0; t < TRIALS; t++) {
    double t0 = now_s();
    *sink += fn(iters);
    double dt = now_s() - t0;
    double gflops = (double)iters * fmas_per_iter * lanes * 2 / dt * 1e-9;
    if (gflops > best)
      best = gflops;
  }
  return best;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0.05;
  if (!(seconds > 0 && seconds < 60)) {
    fprintf(stderr, "usage: peak [SECONDS_PER_TRIAL in (0, 60)]\n");
    return 2;
  }
  __builtin_cpu_init();
  float sink = 0;
  double g512 = -1, g256 = -1;
  if (__builtin_cpu_supports("avx512f"))
    g512 = measure(fma512, FMA512_PER_ITER, 16, seconds, &sink);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    g256 = measure(fma256, FMA256_PER_ITER, 8, seconds, &sink);
  if (g512 < 0 && g256 < 0) {
    fprintf(stderr, "peak: this CPU has neither AVX-512F nor AVX2+FMA\n");
    return 1;
  }
  double peak = g512 > g256 ? g512 : g256;
  const char *isa = g512 > g256 ? "avx512" : "avx2";
  printf("{\"avx512\": ");
  if (g512 < 0)
    printf("null");
  else
    printf("%.2f", g512);
  printf(", \"avx2\": ");
  if (g256 < 0)
    printf("null");
  else
    printf("%.2f", g256);
  printf(", \"peak\": %.2f, \"isa\": \"%s\", \"checksum\": %g}\n", peak, isa, (double)sink);
  return 0;
}
