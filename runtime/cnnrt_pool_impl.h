/*
 * cnnrt_pool_impl.h: what a pool backend shares with the core
 * (runtime/cnnrt_pool.c).  Not installed; applications see cnnrt_pool as
 * an opaque type.
 *
 * A pool is three words of dispatch: cnnrt_parallel_for hands every job of
 * two or more tasks to fn(ctx, ...), and cnnrt_pool_free hands the pool to
 * destroy.  A backend that allocates its own state (the pthreads pool)
 * embeds a cnnrt_pool as its first member, points ctx at itself and
 * supplies destroy; a custom pool is a bare cnnrt_pool that the core
 * allocates and destroy is NULL.
 */
#ifndef CNNRT_POOL_IMPL_H
#define CNNRT_POOL_IMPL_H

#include "cnnrt.h"

struct cnnrt_pool {
  int nthreads;                       /* >= 1; what cnnrt_pool_threads says */
  cnnrt_parallel_fn fn;               /* runs each job of >= 2 tasks; never NULL */
  void *ctx;                          /* fn's first argument */
  void (*destroy)(cnnrt_pool *pool);  /* frees a backend's pool; NULL: the core's */
};

#endif
