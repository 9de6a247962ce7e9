/*
 * cnnrt.h: the cnnc runtime.
 *
 * A model compiled by cnnc is an object file plus a header.  The object
 * defines `<name>_run(...)` (one thread), `<name>_run_pool(...)` (on the
 * threads of a pool the caller made), and `<name>_model`, a cnnrt_model
 * descriptor through which a generic driver can run any model without
 * knowing it at compile time.  Generated code never allocates and never
 * creates threads; of this library only <name>_run_pool calls anything,
 * and only the thread-pool entry points cnnrt_pool_threads and
 * cnnrt_parallel_for.  The object references both weakly: a program that
 * calls only <name>_run links without libcnnrt, and without them
 * <name>_run_pool runs on one thread (on bare metal, link the
 * freestanding cnnrt_pool.c for custom pools).  The rest is what
 * applications and drivers share: the descriptor type, return codes, small
 * helpers to read and write raw float32 tensors, and the pools themselves.
 *
 * The descriptor layout is an ABI: cnnc emits it as constant data.  Change
 * it only together with CNNRT_ABI_VERSION and the code generator.
 */
#ifndef CNNRT_H
#define CNNRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNNRT_ABI_VERSION 2 /* 2: run_pool, workspace_thread_size, workspace_max_threads */
#define CNNRT_MAX_RANK 6
#define CNNRT_WORKSPACE_ALIGN 64 /* the workspace must be aligned to this */

/* Return codes of every generated run function. */
enum {
  CNNRT_OK = 0,
  CNNRT_ERR_NULL = 1,  /* an input, output or (non-empty) workspace pointer is NULL */
  CNNRT_ERR_ALIGN = 2, /* the workspace is not CNNRT_WORKSPACE_ALIGN-aligned */
  CNNRT_ERR_WORKSPACE = 3, /* _run_pool: workspace_size is smaller than one thread needs */
  CNNRT_ERR_CPU = 4,   /* this CPU lacks the instruction-set level the object was built for
                          (<NAME>_CPU_LEVEL in its header; checked at the first call) */
};

typedef struct cnnrt_pool cnnrt_pool; /* a thread pool: see "Thread pools" below */

typedef struct cnnrt_tensor_info {
  const char *name;              /* input/output name from the model file */
  int64_t rank;                  /* number of dims used in shape[] */
  int64_t shape[CNNRT_MAX_RANK]; /* PyTorch order (NCHW or N, features) */
  int64_t numel;                 /* product of shape[0..rank-1] */
} cnnrt_tensor_info;

typedef int (*cnnrt_run_fn)(const float *const *inputs, float *const *outputs,
                            void *workspace);
/* The pooled run: as many of the pool's threads as workspace_size bytes
 * allow (cnnrt_workspace_size), one thread with a NULL pool. */
typedef int (*cnnrt_run_pool_fn)(const float *const *inputs, float *const *outputs,
                                 void *workspace, size_t workspace_size, cnnrt_pool *pool);

typedef struct cnnrt_model {
  int64_t abi_version;              /* CNNRT_ABI_VERSION */
  const char *name;                 /* model name */
  int64_t num_inputs, num_outputs;  /* entries in inputs[] / outputs[] */
  const cnnrt_tensor_info *inputs;  /* in run() argument order */
  const cnnrt_tensor_info *outputs; /* in run() argument order */
  int64_t workspace_size;           /* bytes for one thread (run); may be 0 */
  cnnrt_run_fn run;                 /* generic entry point, one thread */
  int64_t workspace_thread_size;    /* bytes each thread after the first adds (per-task scratch) */
  int64_t workspace_max_threads;    /* threads beyond this many add no bytes (>= 1) */
  cnnrt_run_pool_fn run_pool;       /* generic pooled entry point */
} cnnrt_model;

/* Workspace bytes for a pooled run on up to `threads` threads: the
 * header's <NAME>_WORKSPACE_SIZE_THREADS(threads); threads <= 1 gives
 * workspace_size. */
static inline int64_t cnnrt_workspace_size(const cnnrt_model *m, int threads) {
  int64_t t = threads < m->workspace_max_threads ? threads : m->workspace_max_threads;
  return m->workspace_size + (t > 1 ? t - 1 : 0) * m->workspace_thread_size;
}

/* A message for a return code. */
const char *cnnrt_strerror(int code);

/* Allocates `size` bytes aligned to CNNRT_WORKSPACE_ALIGN (at least one
 * byte, so the pointer is never NULL on success).  Free with cnnrt_free. */
void *cnnrt_alloc(size_t size);
void cnnrt_free(void *p);

/* Reads exactly `count` little-endian float32 values from a raw file.
 * Returns 0 on success, -1 (with a message on stderr) otherwise, including
 * when the file holds more or fewer values. */
int cnnrt_read_f32(const char *path, float *dst, size_t count);
/* Writes `count` float32 values to a raw file.  0 on success, -1 otherwise. */
int cnnrt_write_f32(const char *path, const float *src, size_t count);

/* Index of the largest of `n` values (the first one on ties). */
size_t cnnrt_argmax(const float *v, size_t n);

/*
 * Per-layer profile of a model compiled with `cnnc --profile`: every run
 * adds the ticks of the counter --profile reads (x86-64: the time-stamp
 * counter; AArch64: CNTVCT_EL0; Cortex-M: DWT CYCCNT) spent in each
 * kernel call to ticks[k]; the object defines `<name>_profile` pointing at
 * its tables.
 */
typedef struct cnnrt_profile {
  const char *model;         /* the model's name */
  int64_t count;             /* kernel calls profiled (a layer each) */
  const char *const *layers; /* their layers' names */
  const int64_t *flops;      /* floating-point operations per run of each */
  int64_t *ticks;            /* ticks summed over the runs (not thread-safe) */
} cnnrt_profile;

/* Zeroes the ticks, e.g. after a warm-up run. */
void cnnrt_profile_reset(const cnnrt_profile *p);

#if !defined(__STDC_HOSTED__) || __STDC_HOSTED__
#include <stdio.h>
/* The counter's ticks per second on this machine: AArch64's CNTFRQ_EL0,
 * or on x86-64 the time-stamp counter measured against CLOCK_MONOTONIC
 * (for about 20 ms at each call); 0 where unknown. */
double cnnrt_profile_rate(void);
/* Prints the table of `runs` runs to f: per layer, milliseconds per run,
 * share of the total, GFLOP/s, then the name; lines that are not a layer
 * start with '#' (cnnc --profile-data reads the table back for
 * --emit-dot).  ticks_per_second: the counter's rate (on a Cortex-M the
 * core clock), or 0 for cnnrt_profile_rate(); where that is 0 too, ticks
 * are printed instead of milliseconds and GFLOP/s.  Returns 0, or -1 on a
 * write error or a bad argument (NULL, runs < 1). */
int cnnrt_profile_print(const cnnrt_profile *p, int runs, double ticks_per_second, FILE *f);
#endif

/*
 * Thread pools.  A compiled layer splits into `ntasks` tasks; task i owns
 * a fixed part of the output and scratch slot i, so tasks never talk to
 * each other and the result does not depend on which thread runs which.
 * The application owns the pool and passes it to the run function;
 * generated code calls only cnnrt_pool_threads and cnnrt_parallel_for.
 *
 * cnnrt_pool_new makes a pthreads pool (hosted builds only): nthreads - 1
 * worker threads plus the thread that calls cnnrt_parallel_for, which runs
 * tasks too.  0 means one thread per online CPU; 1 creates no thread; a
 * negative count, or any failure to create it, gives NULL and leaves
 * nothing behind.  Workers spin briefly after a job, then sleep.
 *
 * One pool may serve several application threads at once: concurrent runs
 * sharing a pool take turns, layer by layer (each cnnrt_parallel_for call
 * waits for the ones before it, first come first served).  So two
 * <name>_run_pool calls may share one pool (each with its own workspace);
 * they never corrupt each other, they only wait for each other's layers.
 * A custom pool's fn must allow the same, or the application must not
 * share it.  A task may call
 * cnnrt_parallel_for on its own pool; that nested call runs inline on the
 * task's thread.  (Nesting across two different pthreads pools that call
 * back into each other can deadlock; do not.)
 *
 * cnnrt_pool_custom wraps a scheduler the application already has (an
 * RTOS's, OpenMP's, its own): cnnrt_parallel_for(pool, n, task, arg) calls
 * fn(ctx, n, task, arg) for n >= 2, and fn must call task(arg, i) once for
 * each i in [0, n), in any order on any threads, and return when all have
 * finished, their writes visible to its caller.  nthreads (>= 1) is what
 * cnnrt_pool_threads reports, so what the generated code splits for.
 *
 * cnnrt_pool_free(NULL) does nothing; otherwise it joins the workers.  Free
 * a pool only when no cnnrt_parallel_for call on it is in progress.
 */
typedef void (*cnnrt_task_fn)(void *arg, int task);
/* Calls task(arg, i) once for each i in [0, ntasks), on up to nthreads
 * threads, returns when all have finished. */
typedef void (*cnnrt_parallel_fn)(void *ctx, int ntasks, cnnrt_task_fn task, void *arg);

/* A pthreads pool; the calling thread is one of the nthreads. */
cnnrt_pool *cnnrt_pool_new(int nthreads);
/* An RTOS's, OpenMP's or the app's own; NULL if nthreads < 1 or !fn. */
cnnrt_pool *cnnrt_pool_custom(int nthreads, cnnrt_parallel_fn fn, void *ctx);
void cnnrt_pool_free(cnnrt_pool *pool);

/* nthreads of the pool; 1 for NULL. */
int cnnrt_pool_threads(const cnnrt_pool *pool);
/* Runs task(arg, i) for every i in [0, ntasks) and returns when all have
 * finished.  A NULL pool or ntasks <= 1 runs them inline, in order, on the
 * calling thread. */
void cnnrt_parallel_for(cnnrt_pool *pool, int ntasks, cnnrt_task_fn task, void *arg);

#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Cortex-M (cnnrt_cycles.c, bare-metal builds of libcnnrt): starts the DWT
 * cycle counter that --profile builds read; 1 if it runs, 0 if the core
 * (or QEMU) has none.  Call it once before the first run. */
int cnnrt_cycles_enable(void);
uint32_t cnnrt_cycles(void); /* the counter now (0 without one) */
#endif

#ifdef __cplusplus
}
#endif
#endif
