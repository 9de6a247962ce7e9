/*
 * cnnrt_pool.c: the part of the thread-pool API that every build has,
 * hosted or bare metal.
 *
 * Generated code calls cnnrt_parallel_for once per layer with the task
 * count it was compiled for; this file only dispatches.  A NULL pool (the
 * application wants one thread) and a job of at most one task never reach
 * a backend: they run inline, in index order, on the calling thread, which
 * is also what makes a NULL pool a valid argument on every target.  Any
 * other job goes to the pool's fn, which owns scheduling, ordering and the
 * memory ordering between tasks and the caller.
 *
 * The pthreads backend lives in cnnrt_pool_pthread.c and is built only
 * hosted.  What remains here must compile with a freestanding compiler: it
 * includes only cnnrt.h (stddef.h, stdint.h).  Custom pools are allocated
 * with malloc in hosted builds; with -DCNNRT_FREESTANDING they come from a
 * static array of CNNRT_MAX_POOLS objects (default 4; define it to change),
 * and creating and freeing them is not thread-safe there: do it from one
 * thread, typically at start-up.  cnnrt_parallel_for and
 * cnnrt_pool_threads never touch that array, so they are thread-safe
 * whenever the pool's fn is.
 */
#include "cnnrt_pool_impl.h"

#ifdef CNNRT_FREESTANDING
#ifndef CNNRT_MAX_POOLS
#define CNNRT_MAX_POOLS 4
#endif

/* A slot is free while its fn is NULL. */
static cnnrt_pool cnnrt_pool_slots[CNNRT_MAX_POOLS];

static cnnrt_pool *pool_alloc(void) {
  for (int i = 0; i < CNNRT_MAX_POOLS; i++)
    if (!cnnrt_pool_slots[i].fn)
      return &cnnrt_pool_slots[i];
  return NULL;
}

static void pool_release(cnnrt_pool *pool) { pool->fn = NULL; }
#else
#include <stdlib.h>

static cnnrt_pool *pool_alloc(void) { return malloc(sizeof(cnnrt_pool)); }
static void pool_release(cnnrt_pool *pool) { free(pool); }
#endif

cnnrt_pool *cnnrt_pool_custom(int nthreads, cnnrt_parallel_fn fn, void *ctx) {
  if (nthreads < 1 || !fn)
    return NULL;
  cnnrt_pool *pool = pool_alloc();
  if (!pool)
    return NULL;
  pool->nthreads = nthreads;
  pool->fn = fn;
  pool->ctx = ctx;
  pool->destroy = NULL;
  return pool;
}

void cnnrt_pool_free(cnnrt_pool *pool) {
  if (!pool)
    return;
  if (pool->destroy)
    pool->destroy(pool);
  else
    pool_release(pool);
}

int cnnrt_pool_threads(const cnnrt_pool *pool) { return pool ? pool->nthreads : 1; }

void cnnrt_parallel_for(cnnrt_pool *pool, int ntasks, cnnrt_task_fn task, void *arg) {
  if (!pool || ntasks <= 1) {
    for (int i = 0; i < ntasks; i++)
      task(arg, i);
    return;
  }
  pool->fn(pool->ctx, ntasks, task, arg);
}
