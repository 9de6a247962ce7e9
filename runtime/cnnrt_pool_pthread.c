/*
 * cnnrt_pool_pthread.c: the pthreads pool behind cnnrt_pool_new (hosted
 * builds only; bare metal uses cnnrt_pool_custom or no pool).
 *
 * The workload decides the design.  A compiled network issues about a
 * hundred cnnrt_parallel_for calls per run, back to back, and on a small
 * net each one is 20-100 microseconds of work, so what a job costs to
 * start and to finish matters as much as how tasks are spread.  As in
 * XNNPACK's pthreadpool:
 *
 *   - The calling thread is one of the nthreads: it posts the job, claims
 *     and runs tasks like any worker, then waits for the workers that took
 *     part.  A pool of nthreads has nthreads - 1 worker threads.
 *   - Tasks are claimed from one atomic counter (`next`).  Which thread
 *     runs which task does not matter: generated code gives task i a fixed
 *     part of the output and scratch slot i.
 *   - Every waiting thread first spins on the atomic word it waits for
 *     (pause between reads) for at most CNNRT_POOL_SPIN_US microseconds,
 *     then sleeps on it: a futex on Linux, a condition variable elsewhere
 *     (or with -DCNNRT_POOL_NO_FUTEX).  Between layers of a run nobody
 *     sleeps, so a job starts in well under a microsecond; between runs
 *     the workers sleep and cost nothing.
 *
 * A job's protocol, and why it is race-free:
 *
 *   1. The caller takes a turn from a ticket lock (`tickets`, `serving`),
 *      so concurrent callers sharing a pool run their jobs one at a time,
 *      first come first served: two model runs take turns, layer by layer.
 *   2. Holding the turn it writes the job (task, arg, ntasks), resets
 *      `next` to 0, opens the `door` (release), then increments `job` to
 *      wake the workers.
 *   3. A worker that sees `job` change tries to enter: it increments the
 *      door's count unless the door is closed (a CAS, acquire).  Only a
 *      worker inside touches the job fields or `next`, and the CAS makes
 *      it see everything the caller wrote before opening.  Inside, it
 *      claims tasks until `next` passes ntasks, then leaves (decrement,
 *      release).
 *   4. The caller claims tasks too; when none is left it closes the door
 *      and waits for the count to reach 0 (acquire).  Then every task has
 *      finished, its writes are visible to the caller, and no worker will
 *      read the job fields again, so the next job may overwrite them.
 *   5. The caller passes the turn on by incrementing `serving`.
 *
 * The caller waits only for workers that came in, not for all of them: a
 * worker that the OS has not scheduled in time (more threads than free
 * cores) finds the door closed when it does run and goes back to waiting,
 * instead of holding up every job by a scheduler time slice.  A worker
 * that misses whole jobs enters whichever job is open when it looks; that
 * is harmless, as the door, not `job`, decides what it may touch.
 *
 * Sleeping without lost wake-ups: a thread about to sleep on a word first
 * counts itself in the word's `sleepers`, then re-reads the word; a thread
 * that changes a word then reads `sleepers` and wakes the word only if it
 * is non-zero.  All four accesses are sequentially consistent, so either
 * the sleeper sees the new value or the changer sees the sleeper.  The
 * common case (nobody asleep) therefore makes no system call.
 *
 * The door is one word: bit 31 says closed, bits 0-30 count the workers
 * inside (so at most 2^31 - 1 workers, far beyond any pool).
 *
 * Nesting: a thread-local pointer says which pool's job the thread is in
 * (set for good on a worker, and on the caller while its job runs).  A
 * cnnrt_parallel_for from inside a job of the same pool would wait for a
 * turn that its own job holds; instead it runs inline, in order.
 *
 * Workers start with every signal blocked, so that the application's
 * signals go to its own threads.
 */
#define _DEFAULT_SOURCE /* syscall(), sysconf(_SC_NPROCESSORS_ONLN) */
#include "cnnrt_pool_impl.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Generated objects reference cnnrt_parallel_for and cnnrt_pool_threads
 * weakly, so that an application that calls only <name>_run links
 * without libcnnrt.  A static link that makes a pthreads pool must then
 * still bring in cnnrt_pool.c, which defines them (else <name>_run_pool
 * would see them absent and run on one thread): this reference does. */
__attribute__((used)) static void (*const pool_core_link)(cnnrt_pool *, int, cnnrt_task_fn, void *) =
    cnnrt_parallel_for;

#if defined(__linux__) && !defined(CNNRT_POOL_NO_FUTEX)
#define CNNRT_POOL_FUTEX 1
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#ifndef CNNRT_POOL_SPIN_US
#define CNNRT_POOL_SPIN_US 100 /* longest spin before sleeping; see bench/pool_latency.c */
#endif

enum { CACHE_LINE = 64 };
#define DOOR_CLOSED 0x80000000u /* the door's closed bit; the rest counts workers inside */

/* An atomic word that threads wait on until it changes. */
typedef struct Word {
  alignas(CACHE_LINE) atomic_uint value; /* the word; its own cache line */
  atomic_uint sleepers;                  /* threads asleep on value, or about to be */
} Word;

typedef struct Pool {
  cnnrt_pool base;      /* the core's view; first, base.ctx points here */
  int nworkers;         /* worker threads running: base.nthreads - 1 */
  atomic_int stop;      /* set before the last bump of job: workers exit */
  cnnrt_task_fn task;   /* the job: written while the door is closed */
  void *arg;            /*   and nobody is inside, read only by the */
  unsigned ntasks;      /*   caller and by workers inside */
  alignas(CACHE_LINE) atomic_uint next; /* next task index to claim; same rule */
  Word job;             /* +1 per job (and once more to stop) */
  Word door;            /* DOOR_CLOSED | workers inside the current job */
  Word serving;         /* ticket whose holder may run a job */
  alignas(CACHE_LINE) atomic_uint tickets; /* next ticket to hand out */
#ifndef CNNRT_POOL_FUTEX
  pthread_mutex_t sleep_lock; /* with wakeup: sleeping on any Word of the pool */
  pthread_cond_t wakeup;      /* broadcast whenever a word with sleepers changes */
#endif
  pthread_t threads[]; /* nworkers */
} Pool;

/* The pool whose job this thread is running, if any. */
static _Thread_local const Pool *current_pool;

/* ---- waiting: spin, then sleep ---- */

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ volatile("yield");
#endif
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Spins until *w != old or CNNRT_POOL_SPIN_US have passed; 1 if it
 * changed.  The clock is read only every 32 pauses (about a microsecond),
 * so a short wait never reads it. */
static int spin_while(atomic_uint *w, unsigned old) {
  uint64_t deadline = 0;
  for (;;) {
    for (int i = 0; i < 32; i++) {
      if (atomic_load(w) != old)
        return 1;
      cpu_relax();
    }
    uint64_t t = now_ns();
    if (!deadline)
      deadline = t + CNNRT_POOL_SPIN_US * 1000u;
    else if (t >= deadline)
      return 0;
  }
}

#ifdef CNNRT_POOL_FUTEX
/* The kernel re-checks *w == old under its own lock, so a change between
 * our read and the call is never slept through. */
static void os_sleep(Pool *pool, atomic_uint *w, unsigned old) {
  syscall(SYS_futex, (void *)w, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
}

static void os_wake(Pool *pool, atomic_uint *w) {
  syscall(SYS_futex, (void *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
/* The value is checked under sleep_lock and a waker takes the lock after
 * changing it, so the broadcast cannot fall between check and wait. */
static void os_sleep(Pool *pool, atomic_uint *w, unsigned old) {
  pthread_mutex_lock(&pool->sleep_lock);
  while (atomic_load(w) == old)
    pthread_cond_wait(&pool->wakeup, &pool->sleep_lock);
  pthread_mutex_unlock(&pool->sleep_lock);
}

static void os_wake(Pool *pool, atomic_uint *w) {
  pthread_mutex_lock(&pool->sleep_lock);
  pthread_mutex_unlock(&pool->sleep_lock);
  pthread_cond_broadcast(&pool->wakeup);
}
#endif

/* Waits until w differs from old; returns the new value. */
static unsigned word_wait(Pool *pool, Word *w, unsigned old) {
  if (spin_while(&w->value, old))
    return atomic_load(&w->value);
  atomic_fetch_add(&w->sleepers, 1);
  unsigned v;
  while ((v = atomic_load(&w->value)) == old)
    os_sleep(pool, &w->value, old);
  atomic_fetch_sub(&w->sleepers, 1);
  return v;
}

/* Call after changing w->value. */
static void word_wake(Pool *pool, Word *w) {
  if (atomic_load(&w->sleepers))
    os_wake(pool, &w->value);
}

/* ---- jobs ---- */

static void run_inline(int ntasks, cnnrt_task_fn task, void *arg) {
  for (int i = 0; i < ntasks; i++)
    task(arg, i);
}

/* Claims and runs tasks of the current job until none is left.  Each
 * entry of a thread ends with one failed claim, and a worker enters a job
 * at most twice (once more if it entered it late, for an earlier value of
 * job), so next ends less than 2 * nthreads past ntasks: with ntasks <=
 * INT_MAX the unsigned counter cannot wrap. */
static void run_tasks(Pool *pool) {
  for (;;) {
    unsigned i = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
    if (i >= pool->ntasks)
      return;
    pool->task(pool->arg, (int)i);
  }
}

/* 1 if the worker got in: the door was open, and is counted. */
static int door_enter(Pool *pool) {
  unsigned d = atomic_load(&pool->door.value);
  while (!(d & DOOR_CLOSED))
    if (atomic_compare_exchange_weak(&pool->door.value, &d, d + 1))
      return 1;
  return 0;
}

/* The last worker out of a closed door wakes the caller. */
static void door_leave(Pool *pool) {
  if (atomic_fetch_sub(&pool->door.value, 1) == (DOOR_CLOSED | 1))
    word_wake(pool, &pool->door);
}

static void *worker_main(void *p) {
  Pool *pool = p;
  current_pool = pool;
  unsigned seen = 0; /* job is 0 until the pool is complete */
  for (;;) {
    seen = word_wait(pool, &pool->job, seen);
    if (atomic_load_explicit(&pool->stop, memory_order_relaxed))
      return NULL;
    if (door_enter(pool)) {
      run_tasks(pool);
      door_leave(pool);
    }
  }
}

static void turn_take(Pool *pool) {
  unsigned ticket = atomic_fetch_add(&pool->tickets, 1), s;
  while ((s = atomic_load(&pool->serving.value)) != ticket)
    word_wait(pool, &pool->serving, s);
}

static void turn_pass(Pool *pool) {
  atomic_fetch_add(&pool->serving.value, 1);
  word_wake(pool, &pool->serving);
}

static void post_job(Pool *pool, int ntasks, cnnrt_task_fn task, void *arg) {
  pool->task = task;
  pool->arg = arg;
  pool->ntasks = (unsigned)ntasks;
  atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
  atomic_store(&pool->door.value, 0); /* open: publishes the stores above */
  atomic_fetch_add(&pool->job.value, 1);
  word_wake(pool, &pool->job);
}

/* Closes the door and waits for the workers inside to leave. */
static void close_job(Pool *pool) {
  unsigned d = atomic_fetch_or(&pool->door.value, DOOR_CLOSED) | DOOR_CLOSED;
  while (d != DOOR_CLOSED)
    d = word_wait(pool, &pool->door, d);
}

/* The pool's cnnrt_parallel_fn; ntasks >= 2. */
static void pool_run(void *ctx, int ntasks, cnnrt_task_fn task, void *arg) {
  Pool *pool = ctx;
  if (pool->nworkers == 0 || current_pool == pool) {
    run_inline(ntasks, task, arg);
    return;
  }
  turn_take(pool);
  post_job(pool, ntasks, task, arg);
  const Pool *outer = current_pool;
  current_pool = pool;
  run_tasks(pool);
  current_pool = outer;
  close_job(pool);
  turn_pass(pool);
}

/* ---- creation and destruction ---- */

/* Tells the workers to exit, joins them and frees the pool. */
static void pool_destroy(cnnrt_pool *base) {
  Pool *pool = base->ctx;
  atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
  atomic_fetch_add(&pool->job.value, 1);
  word_wake(pool, &pool->job);
  for (int i = 0; i < pool->nworkers; i++)
    pthread_join(pool->threads[i], NULL);
#ifndef CNNRT_POOL_FUTEX
  pthread_cond_destroy(&pool->wakeup);
  pthread_mutex_destroy(&pool->sleep_lock);
#endif
  free(pool);
}

/* A zeroed pool for nthreads, with its sleep lock ready; NULL on failure. */
static Pool *pool_alloc(int nthreads) {
  size_t nworkers = (size_t)nthreads - 1;
  if (nworkers > (SIZE_MAX - sizeof(Pool) - CACHE_LINE) / sizeof(pthread_t))
    return NULL;
  size_t size = sizeof(Pool) + nworkers * sizeof(pthread_t);
  size = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
  Pool *pool = aligned_alloc(CACHE_LINE, size);
  if (!pool)
    return NULL;
  *pool = (Pool){.base = {.nthreads = nthreads, .fn = pool_run, .ctx = pool,
                          .destroy = pool_destroy},
                 .door = {.value = DOOR_CLOSED}};
#ifndef CNNRT_POOL_FUTEX
  if (pthread_mutex_init(&pool->sleep_lock, NULL) != 0) {
    free(pool);
    return NULL;
  }
  if (pthread_cond_init(&pool->wakeup, NULL) != 0) {
    pthread_mutex_destroy(&pool->sleep_lock);
    free(pool);
    return NULL;
  }
#endif
  return pool;
}

/* Starts nthreads - 1 workers, signals blocked; on failure nworkers says
 * how many did start.  Returns 0 on success. */
static int start_workers(Pool *pool) {
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  int rc = 0;
  while (rc == 0 && pool->nworkers < pool->base.nthreads - 1) {
    rc = pthread_create(&pool->threads[pool->nworkers], NULL, worker_main, pool);
    if (rc == 0)
      pool->nworkers++;
  }
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  return rc;
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
}

cnnrt_pool *cnnrt_pool_new(int nthreads) {
  if (nthreads < 0)
    return NULL;
  Pool *pool = pool_alloc(nthreads == 0 ? online_cpus() : nthreads);
  if (!pool)
    return NULL;
  if (start_workers(pool) != 0) {
    pool_destroy(&pool->base);
    return NULL;
  }
  return &pool->base;
}
