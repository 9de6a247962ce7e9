/*
 * layer_profile.c: per-layer time of a model compiled with `cnnc --profile`.
 *
 *   cc -DMODEL=resnet50 -include resnet50.h layer_profile.c resnet50.o libcnnrt.a
 *   ./a.out RUNS PEAK_GFLOPS
 *
 * Runs the model RUNS times (after one warm-up), converts the cycle-counter
 * ticks that the generated code accumulated per kernel call into
 * milliseconds per run (the counter's rate is measured against
 * CLOCK_MONOTONIC), and prints one line per layer: time, share of the
 * total, GFLOP/s and the fraction of PEAK_GFLOPS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnrt.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define DESC CAT(MODEL, _model)
#define COUNT CAT(MODEL, _profile_count)
#define LAYERS CAT(MODEL, _profile_layers)
#define FLOPS CAT(MODEL, _profile_flops)
#define TICKS CAT(MODEL, _profile_ticks)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned long long tsc(void) {
  unsigned lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((unsigned long long)hi << 32) | lo;
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 10;
  double peak = argc > 2 ? atof(argv[2]) : 0;
  const cnnrt_model *m = &DESC;
  float **in = calloc((size_t)m->num_inputs, sizeof *in), **out = calloc((size_t)m->num_outputs, sizeof *out);
  for (int i = 0; i < m->num_inputs; i++) {
    in[i] = cnnrt_alloc((size_t)m->inputs[i].numel * 4);
    for (int64_t j = 0; j < m->inputs[i].numel; j++) in[i][j] = (float)((j * 7919) % 1000) / 1000.0f - 0.5f;
  }
  for (int i = 0; i < m->num_outputs; i++) out[i] = cnnrt_alloc((size_t)m->outputs[i].numel * 4);
  void *ws = cnnrt_alloc((size_t)m->workspace_size);
  if (m->run((const float *const *)in, out, ws) != CNNRT_OK) return 1;
  memset(TICKS, 0, (size_t)COUNT * sizeof TICKS[0]);
  double t0 = now();
  unsigned long long c0 = tsc();
  for (int r = 0; r < runs; r++) m->run((const float *const *)in, out, ws);
  double secs = now() - t0;
  double hz = (double)(tsc() - c0) / secs;
  double total = 0;
  for (int64_t k = 0; k < COUNT; k++) total += (double)TICKS[k];
  printf("%-32s %9s %6s %9s %7s\n", "layer", "ms", "share", "GFLOP/s", "% peak");
  for (int64_t k = 0; k < COUNT; k++) {
    double s = (double)TICKS[k] / hz / runs;
    double gf = s > 0 ? (double)FLOPS[k] / s * 1e-9 : 0;
    printf("%-32s %9.4f %5.1f%% %9.1f", LAYERS[k], s * 1e3, 100.0 * (double)TICKS[k] / total, gf);
    if (peak > 0 && FLOPS[k] > 0) printf(" %6.1f%%", 100.0 * gf / peak);
    printf("\n");
  }
  printf("total %.3f ms per run (%.3f ms wall), %d runs\n", total / hz / runs * 1e3, secs / runs * 1e3, runs);
  return 0;
}
