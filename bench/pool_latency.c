/*
 * pool_latency.c: what a cnnrt_parallel_for costs on the pthreads pool.
 *
 *   cc -O2 -pthread -I runtime bench/pool_latency.c runtime/cnnrt_pool.c runtime/cnnrt_pool_pthread.c -o pool_latency
 *   ./pool_latency [nthreads]        (default 2)
 *
 * Add -DCNNRT_POOL_NO_FUTEX to the cc line to measure the condition-variable
 * fallback, -DCNNRT_POOL_SPIN_US=N to change how long waiters spin.
 *
 * Every figure is in microseconds per call, the median of 21 samples and
 * (in brackets) the best one; on a machine that others use too, the best
 * is closer to what the pool costs:
 *
 *   inline        NULL pool, empty tasks: the call itself.
 *   empty         ntasks = nthreads empty tasks, back to back.  The caller
 *                 may run them all before a worker gets in, so this is the
 *                 cost of posting and closing a job.
 *   meet          ntasks = nthreads tasks that each wait until all have
 *                 started, so every thread must take part: the round trip
 *                 of waking the spinning workers and waiting for them.
 *   meet, asleep  the same after 2 ms idle, when the workers sleep in the
 *                 kernel: the wake-up latency.
 *   work W        ntasks = nthreads tasks of W us of busy work each; the
 *                 overhead is the time minus W (ideal scaling).
 *   net           a run of a small net: 100 layers back to back of 20, 40,
 *                 60 and 100 us of work (in turn), each split into nthreads
 *                 tasks; printed per layer, with the overhead per layer.
 *   net, asleep   the same run after 2 ms idle.
 *
 * The pool is run the way generated code runs it: calls back to back, as
 * consecutive layers would be.  docs/bench.md has the figures measured on
 * the development machine (2 cores; nthreads 2, machine otherwise idle):
 * empty 0.19 us, meet 0.25 us, meet asleep 20 us, work overhead 0.3-0.5 us,
 * net overhead 0.28 us per layer (0.45 us after 2 ms idle).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cnnrt.h"

enum { SAMPLES = 21 };

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct Stat {
  double median, best; /* microseconds per call */
} Stat;

static Stat summarise(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return (Stat){v[n / 2], v[0]};
}

static void empty_task(void *arg, int i) {}

typedef struct Meet {
  atomic_int arrived; /* tasks started in this call */
  int ntasks;         /* tasks that must all be running at once */
} Meet;

static void meet_task(void *arg, int i) {
  Meet *m = arg;
  atomic_fetch_add(&m->arrived, 1);
  while (atomic_load(&m->arrived) < m->ntasks) {
  }
}

static double work_us; /* busy time of each work_task */

static void work_task(void *arg, int i) {
  double end = now_us() + work_us;
  while (now_us() < end) {
  }
}

/* Median time per call of `calls` back-to-back jobs. */
static Stat time_calls(cnnrt_pool *pool, int ntasks, cnnrt_task_fn task, int calls) {
  double s[SAMPLES];
  for (int k = 0; k < SAMPLES; k++) {
    double t0 = now_us();
    for (int c = 0; c < calls; c++)
      cnnrt_parallel_for(pool, ntasks, task, NULL);
    s[k] = (now_us() - t0) / calls;
  }
  return summarise(s, SAMPLES);
}

enum { LAYERS = 100 };
static const double layer_work[4] = {20, 40, 60, 100}; /* us of work per layer, in turn */

/* Time per layer of a LAYERS-layer run; asleep: after 2 ms idle.  *ideal
 * gets the time per layer with perfect scaling and no overhead. */
static Stat time_net(cnnrt_pool *pool, int nthreads, int asleep, double *ideal) {
  double s[SAMPLES];
  *ideal = 0;
  for (int l = 0; l < LAYERS; l++)
    *ideal += layer_work[l % 4] / nthreads / LAYERS;
  for (int k = 0; k < SAMPLES; k++) {
    if (asleep)
      usleep(2000);
    double t0 = now_us();
    for (int l = 0; l < LAYERS; l++) {
      work_us = layer_work[l % 4] / nthreads;
      cnnrt_parallel_for(pool, nthreads, work_task, NULL);
    }
    s[k] = (now_us() - t0) / LAYERS;
  }
  return summarise(s, SAMPLES);
}

/* Median time of a meeting job; asleep: after 2 ms idle. */
static Stat time_meet(cnnrt_pool *pool, int nthreads, int asleep) {
  double s[SAMPLES];
  int calls = asleep ? 1 : 2000;
  for (int k = 0; k < SAMPLES; k++) {
    if (asleep)
      usleep(2000);
    double t0 = now_us();
    for (int c = 0; c < calls; c++) {
      Meet m = {.ntasks = nthreads};
      cnnrt_parallel_for(pool, nthreads, meet_task, &m);
    }
    s[k] = (now_us() - t0) / calls;
  }
  return summarise(s, SAMPLES);
}

/* ideal: the time with no overhead, to print the overhead; 0 for none. */
static void print(const char *name, Stat s, double ideal) {
  printf("  %-20s %9.3f (%.3f)", name, s.median, s.best);
  if (ideal > 0)
    printf("  overhead %.3f (%.3f)", s.median - ideal, s.best - ideal);
  printf("\n");
}

int main(int argc, char **argv) {
  int nthreads = argc > 1 ? atoi(argv[1]) : 2;
  cnnrt_pool *pool = cnnrt_pool_new(nthreads);
  if (!pool || nthreads < 2) {
    fprintf(stderr, "usage: pool_latency [nthreads >= 2]\n");
    return 1;
  }
  time_calls(pool, nthreads, empty_task, 10000); /* warm up */
  printf("nthreads %d, microseconds per cnnrt_parallel_for: median of %d (best)\n", nthreads,
         SAMPLES);
  print("inline (NULL pool)", time_calls(NULL, nthreads, empty_task, 100000), 0);
  print("empty", time_calls(pool, nthreads, empty_task, 20000), 0);
  print("meet", time_meet(pool, nthreads, 0), 0);
  print("meet, asleep", time_meet(pool, nthreads, 1), 0);
  const double works[] = {5, 20, 50, 100};
  for (int w = 0; w < 4; w++) {
    char name[32];
    snprintf(name, sizeof name, "work %.0f", works[w]);
    work_us = works[w];
    print(name, time_calls(pool, nthreads, work_task, (int)(20000 / works[w])), works[w]);
  }
  double ideal;
  Stat net = time_net(pool, nthreads, 0, &ideal);
  print("net (per layer)", net, ideal);
  net = time_net(pool, nthreads, 1, &ideal);
  print("net, asleep", net, ideal);
  cnnrt_pool_free(pool);
  return 0;
}
