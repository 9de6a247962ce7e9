/*
 * cnnc_timing.c: times one model compiled by cnnc, through its generic
 * descriptor, so the same driver links against any compiled model.
 *
 *   cc -O2 -DCNNC_MODEL=resnet18_model -I runtime bench/cnnc_timing.c \
 *      resnet18.o -L build/runtime -lcnnrt -o timing
 *   timing INPUT.bin OUTPUT.bin WARMUP RUNS BUDGET_SECONDS [THREADS]
 *
 * With THREADS the model runs through its pooled entry point (run_pool) on
 * a cnnrt_pool_new(THREADS) pool made before timing, with a workspace of
 * cnnrt_workspace_size(m, THREADS) bytes; without it, through run (one
 * thread, as before).
 *
 * INPUT.bin holds the first input as raw little-endian float32 (other
 * inputs, if any, are zero).  The driver does WARMUP untimed runs (at least
 * one; fewer once they have taken a quarter of the budget), then up to RUNS
 * timed runs with clock_gettime(CLOCK_MONOTONIC); it stops early
 * (after at least 3 timed runs) once BUDGET_SECONDS of timed runs have
 * passed, so a slow model cannot blow the benchmark's time limit.  The
 * first output of the last run is written to OUTPUT.bin for the accuracy
 * check.  The result is one JSON object on stdout:
 *   {"median_ms": .., "min_ms": .., "runs": N, "warmup": W, "workspace": BYTES}
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnrt.h"

#ifndef CNNC_MODEL
#error "compile with -DCNNC_MODEL=<name>_model"
#endif
extern const cnnrt_model CNNC_MODEL;

#define MAX_TENSORS 64

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Allocates a zeroed 64-byte aligned tensor of `numel` floats. */
static float *alloc_tensor(int64_t numel) {
  float *p = cnnrt_alloc((size_t)numel * sizeof(float));
  if (p)
    memset(p, 0, (size_t)numel * sizeof(float));
  return p;
}

static cnnrt_pool *pool;  /* THREADS given: the pool run_pool runs on */
static size_t ws_size;

static int run_once(const cnnrt_model *m, float **in, float **out, void *ws) {
  int rc = pool ? m->run_pool((const float *const *)in, (float *const *)out, ws, ws_size, pool)
                : m->run((const float *const *)in, (float *const *)out, ws);
  if (rc != CNNRT_OK)
    fprintf(stderr, "cnnc_timing: %s_run: %s\n", m->name, cnnrt_strerror(rc));
  return rc;
}

int main(int argc, char **argv) {
  const cnnrt_model *m = &CNNC_MODEL;
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin WARMUP RUNS BUDGET_SECONDS [THREADS]\n", argv[0]);
    return 2;
  }
  int threads = argc == 7 ? atoi(argv[6]) : 0;
  if (argc == 7 && (threads < 1 || !(pool = cnnrt_pool_new(threads)))) {
    fprintf(stderr, "cnnc_timing: cannot make a pool of '%s' threads\n", argv[6]);
    return 2;
  }
  int warmup = atoi(argv[3]), runs = atoi(argv[4]);
  double budget_ms = 1e3 * atof(argv[5]);
  if (warmup < 0 || runs < 1 || !(budget_ms > 0)) {
    fprintf(stderr, "cnnc_timing: bad WARMUP/RUNS/BUDGET\n");
    return 2;
  }
  if (m->abi_version != CNNRT_ABI_VERSION || m->num_inputs < 1 || m->num_outputs < 1 ||
      m->num_inputs > MAX_TENSORS || m->num_outputs > MAX_TENSORS) {
    fprintf(stderr, "cnnc_timing: unexpected descriptor (abi %lld, %lld inputs, %lld outputs)\n",
            (long long)m->abi_version, (long long)m->num_inputs, (long long)m->num_outputs);
    return 1;
  }
  float *in[MAX_TENSORS], *out[MAX_TENSORS];
  for (int64_t i = 0; i < m->num_inputs; i++)
    if (!(in[i] = alloc_tensor(m->inputs[i].numel)))
      return 1;
  for (int64_t i = 0; i < m->num_outputs; i++)
    if (!(out[i] = alloc_tensor(m->outputs[i].numel)))
      return 1;
  ws_size = (size_t)(pool ? cnnrt_workspace_size(m, threads) : m->workspace_size);
  void *ws = cnnrt_alloc(ws_size);
  if (!ws || cnnrt_read_f32(argv[1], in[0], (size_t)m->inputs[0].numel) != 0)
    return 1;

  double warm_spent = 0;
  int warm = 0;
  while (warm < (warmup > 0 ? warmup : 1) && !(warm >= 1 && warm_spent >= budget_ms / 4)) {
    double t0 = now_ms();
    if (run_once(m, in, out, ws) != CNNRT_OK)
      return 1;
    warm_spent += now_ms() - t0;
    warm++;
  }
  double *t = malloc((size_t)runs * sizeof *t);
  if (!t)
    return 1;
  int n = 0;
  double spent = 0;
  while (n < runs && !(n >= 3 && spent >= budget_ms)) {
    double t0 = now_ms();
    if (run_once(m, in, out, ws) != CNNRT_OK)
      return 1;
    t[n] = now_ms() - t0;
    spent += t[n++];
  }
  if (cnnrt_write_f32(argv[2], out[0], (size_t)m->outputs[0].numel) != 0)
    return 1;
  double med = median(t, n);
  printf("{\"median_ms\": %.6f, \"min_ms\": %.6f, \"runs\": %d, \"warmup\": %d, "
         "\"workspace\": %lld, \"threads\": %d, \"output\": \"%s\", \"output_numel\": %lld}\n",
         med, t[0], n, warm, (long long)ws_size, pool ? threads : 1, m->outputs[0].name,
         (long long)m->outputs[0].numel);
  free(t);
  cnnrt_free(ws);
  cnnrt_pool_free(pool);
  for (int64_t i = 0; i < m->num_inputs; i++)
    cnnrt_free(in[i]);
  for (int64_t i = 0; i < m->num_outputs; i++)
    cnnrt_free(out[i]);
  return 0;
}
