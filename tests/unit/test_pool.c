/*
 * test_pool.c: the thread pools of runtime/cnnrt_pool.c and
 * runtime/cnnrt_pool_pthread.c.
 *
 * What generated code relies on: every task index runs exactly once per
 * cnnrt_parallel_for, and everything the tasks wrote is visible to the
 * caller when it returns (and everything the caller wrote before is
 * visible to the tasks).  Around that: a NULL pool and jobs of at most one
 * task run inline in order; a custom pool's fn gets the job as it is; a
 * task may call its own pool again (inline, no deadlock); two application
 * threads may share a pool, and their jobs never overlap; a pool can be
 * freed idle, including after its workers have gone to sleep.
 *
 * The same file is built with -fsanitize=thread as the pool_tsan test
 * (tests/CMakeLists.txt), which is what checks the memory ordering.
 * Threads other than main never call cmocka: they count failures in
 * atomics that main asserts on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "cnnrt.h"

enum { MAX_TASKS = 1000 };

/* ---- every index exactly once ---- */

typedef struct Hits {
  atomic_int count[MAX_TASKS]; /* runs of each task index */
  atomic_int bad;              /* indices out of [0, ntasks) */
  int ntasks;                  /* of the current job */
} Hits;

static void hit_task(void *arg, int i) {
  Hits *h = arg;
  if (i < 0 || i >= h->ntasks)
    atomic_fetch_add(&h->bad, 1);
  else
    atomic_fetch_add(&h->count[i], 1);
}

/* Runs one job of ntasks on pool and checks that each index ran once. */
static void check_once(cnnrt_pool *pool, Hits *h, int ntasks) {
  memset(h, 0, sizeof *h);
  h->ntasks = ntasks;
  cnnrt_parallel_for(pool, ntasks, hit_task, h);
  assert_int_equal(atomic_load(&h->bad), 0);
  for (int i = 0; i < ntasks; i++)
    assert_int_equal(atomic_load(&h->count[i]), 1);
}

static void test_every_index_once(void **state) {
  static Hits h;
  const int threads[] = {1, 2, 3, 7}, tasks[] = {0, 1, 2, 3, 7, 64, 1000};
  for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
    cnnrt_pool *pool = cnnrt_pool_new(threads[t]);
    assert_non_null(pool);
    assert_int_equal(cnnrt_pool_threads(pool), threads[t]);
    for (int rep = 0; rep < 10; rep++)
      for (size_t n = 0; n < sizeof tasks / sizeof *tasks; n++)
        check_once(pool, &h, tasks[n]);
    cnnrt_pool_free(pool);
  }
}

/* ---- tasks really run in parallel ---- */

typedef struct Meet {
  atomic_int arrived; /* tasks that have started */
  int ntasks;         /* all of them must be running at once */
  atomic_int late;    /* tasks that gave up waiting for the others */
} Meet;

/* Waits (up to about ten seconds) until every task has started: only
 * possible if ntasks threads run them at the same time. */
static void meet_task(void *arg, int i) {
  Meet *m = arg;
  atomic_fetch_add(&m->arrived, 1);
  for (int wait = 0; atomic_load(&m->arrived) < m->ntasks; wait++) {
    if (wait == 100000) {
      atomic_fetch_add(&m->late, 1);
      return;
    }
    usleep(100);
  }
}

static void test_parallel(void **state) {
  for (int nthreads = 2; nthreads <= 4; nthreads++) {
    cnnrt_pool *pool = cnnrt_pool_new(nthreads);
    assert_non_null(pool);
    for (int rep = 0; rep < 20; rep++) {
      Meet m = {.ntasks = nthreads};
      cnnrt_parallel_for(pool, nthreads, meet_task, &m);
      assert_int_equal(atomic_load(&m.late), 0);
      assert_int_equal(atomic_load(&m.arrived), nthreads);
    }
    cnnrt_pool_free(pool);
  }
}

/* ---- inline runs: NULL pool, one task, one-thread pool ---- */

typedef struct Order {
  pthread_t caller; /* the thread that called cnnrt_parallel_for */
  int seen[16];     /* task indices in the order they ran */
  int n;            /* entries in seen[] */
  int elsewhere;    /* tasks that ran on another thread */
} Order;

static void order_task(void *arg, int i) {
  Order *o = arg;
  if (!pthread_equal(pthread_self(), o->caller))
    o->elsewhere++;
  if (o->n < 16)
    o->seen[o->n] = i;
  o->n++;
}

/* Checks that pool runs ntasks inline, in order, on this thread. */
static void check_inline(cnnrt_pool *pool, int ntasks) {
  Order o = {.caller = pthread_self()};
  cnnrt_parallel_for(pool, ntasks, order_task, &o);
  assert_int_equal(o.n, ntasks < 0 ? 0 : ntasks);
  assert_int_equal(o.elsewhere, 0);
  for (int i = 0; i < o.n; i++)
    assert_int_equal(o.seen[i], i);
}

static void test_inline(void **state) {
  for (int n = -1; n <= 16; n++)
    check_inline(NULL, n);
  cnnrt_pool *pool = cnnrt_pool_new(4);
  assert_non_null(pool);
  check_inline(pool, 0);
  check_inline(pool, 1);
  cnnrt_pool_free(pool);
  pool = cnnrt_pool_new(1);
  assert_non_null(pool);
  check_inline(pool, 16);
  cnnrt_pool_free(pool);
}

static void test_thread_counts(void **state) {
  assert_int_equal(cnnrt_pool_threads(NULL), 1);
  assert_null(cnnrt_pool_new(-1));
  assert_null(cnnrt_pool_new(-1000));
  cnnrt_pool *pool = cnnrt_pool_new(0);
  assert_non_null(pool);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  assert_int_equal(cnnrt_pool_threads(pool), cpus < 1 ? 1 : cpus);
  cnnrt_pool_free(pool);
  cnnrt_pool_free(NULL);
}

/* ---- custom pools ---- */

typedef struct Custom {
  int calls;    /* times fn was called */
  int last_n;   /* ntasks of the last call */
  pthread_t on; /* the thread fn ran on */
} Custom;

/* A scheduler of its own: every task on this thread, last index first. */
static void reverse_fn(void *ctx, int ntasks, cnnrt_task_fn task, void *arg) {
  Custom *c = ctx;
  c->calls++;
  c->last_n = ntasks;
  c->on = pthread_self();
  for (int i = ntasks - 1; i >= 0; i--)
    task(arg, i);
}

static void test_custom(void **state) {
  Custom c = {0};
  assert_null(cnnrt_pool_custom(0, reverse_fn, &c));
  assert_null(cnnrt_pool_custom(-3, reverse_fn, &c));
  assert_null(cnnrt_pool_custom(2, NULL, &c));
  cnnrt_pool *pool = cnnrt_pool_custom(5, reverse_fn, &c);
  assert_non_null(pool);
  assert_int_equal(cnnrt_pool_threads(pool), 5);
  check_inline(pool, 0); /* at most one task never reaches fn */
  check_inline(pool, 1);
  assert_int_equal(c.calls, 0);
  Order o = {.caller = pthread_self()};
  cnnrt_parallel_for(pool, 7, order_task, &o);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.last_n, 7);
  assert_true(pthread_equal(c.on, pthread_self()));
  assert_int_equal(o.n, 7);
  for (int i = 0; i < 7; i++)
    assert_int_equal(o.seen[i], 6 - i);
  static Hits h;
  check_once(pool, &h, 1000);
  cnnrt_pool_free(pool);
}

/* ---- nesting ---- */

enum { OUTER = 7, INNER = 5 };

typedef struct Nest {
  cnnrt_pool *pool;                /* the pool the inner calls go to */
  atomic_int count[OUTER][INNER];  /* runs of each (outer, inner) pair */
  atomic_int elsewhere;            /* inner tasks not on their outer task's thread */
} Nest;

typedef struct Inner {
  Nest *nest;       /* shared state */
  int outer;        /* the outer task's index */
  pthread_t thread; /* the outer task's thread */
} Inner;

static void inner_task(void *arg, int i) {
  Inner *in = arg;
  if (!pthread_equal(pthread_self(), in->thread))
    atomic_fetch_add(&in->nest->elsewhere, 1);
  atomic_fetch_add(&in->nest->count[in->outer][i], 1);
}

static void outer_task(void *arg, int i) {
  Nest *nest = arg;
  Inner in = {.nest = nest, .outer = i, .thread = pthread_self()};
  cnnrt_parallel_for(nest->pool, INNER, inner_task, &in);
}

/* Outer tasks on outer_pool each run INNER tasks on nest->pool. */
static void check_nest(cnnrt_pool *outer_pool, cnnrt_pool *inner_pool, int same_thread) {
  static Nest nest;
  memset(&nest, 0, sizeof nest);
  nest.pool = inner_pool;
  cnnrt_parallel_for(outer_pool, OUTER, outer_task, &nest);
  for (int o = 0; o < OUTER; o++)
    for (int i = 0; i < INNER; i++)
      assert_int_equal(atomic_load(&nest.count[o][i]), 1);
  if (same_thread)
    assert_int_equal(atomic_load(&nest.elsewhere), 0);
}

static void test_nested(void **state) {
  cnnrt_pool *a = cnnrt_pool_new(3), *b = cnnrt_pool_new(2);
  assert_non_null(a);
  assert_non_null(b);
  for (int rep = 0; rep < 50; rep++) {
    check_nest(a, a, 1); /* same pool: inline on the task's thread */
    check_nest(a, b, 0); /* another pool: runs there */
  }
  cnnrt_pool_free(b);
  cnnrt_pool_free(a);
}

/* ---- two application threads sharing one pool ---- */

enum { SHARED_ITERS = 10000 };

/* Which job has tasks running; tasks of two jobs must never overlap. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static int live_job;          /* the job of the running tasks, if live_tasks > 0 */
static int live_tasks;        /* tasks running now */
static atomic_int overlaps;   /* tasks that started during another job's */

typedef struct Runner {
  cnnrt_pool *pool; /* shared by both runners */
  int job;          /* unique id of the current job */
  int failures;     /* jobs in which some index did not run exactly once */
  Hits hits;        /* of the current job */
} Runner;

static void shared_task(void *arg, int i) {
  Runner *r = arg;
  pthread_mutex_lock(&live_lock);
  if (live_tasks == 0)
    live_job = r->job;
  else if (live_job != r->job)
    atomic_fetch_add(&overlaps, 1);
  live_tasks++;
  pthread_mutex_unlock(&live_lock);
  hit_task(&r->hits, i);
  pthread_mutex_lock(&live_lock);
  live_tasks--;
  pthread_mutex_unlock(&live_lock);
}

static void *runner_main(void *arg) {
  Runner *r = arg;
  for (int iter = 0; iter < SHARED_ITERS; iter++) {
    int ntasks = 2 + iter % 9;
    memset(&r->hits, 0, sizeof r->hits);
    r->hits.ntasks = ntasks;
    r->job += 2;
    cnnrt_parallel_for(r->pool, ntasks, shared_task, r);
    int ok = atomic_load(&r->hits.bad) == 0;
    for (int i = 0; i < ntasks; i++)
      ok &= atomic_load(&r->hits.count[i]) == 1;
    r->failures += !ok;
    if (iter % 1000 == 999)
      usleep(1000); /* let the workers fall asleep now and then */
  }
  return NULL;
}

static void test_shared_pool(void **state) {
  static Runner r[2];
  cnnrt_pool *pool = cnnrt_pool_new(3);
  assert_non_null(pool);
  pthread_t t[2];
  for (int k = 0; k < 2; k++) {
    memset(&r[k], 0, sizeof r[k]);
    r[k].pool = pool;
    r[k].job = k; /* even and odd ids */
    assert_int_equal(pthread_create(&t[k], NULL, runner_main, &r[k]), 0);
  }
  for (int k = 0; k < 2; k++)
    assert_int_equal(pthread_join(t[k], NULL), 0);
  assert_int_equal(r[0].failures, 0);
  assert_int_equal(r[1].failures, 0);
  assert_int_equal(atomic_load(&overlaps), 0);
  cnnrt_pool_free(pool);
}

/* ---- freeing ---- */

static void test_free_idle(void **state) {
  static Hits h;
  for (int rep = 0; rep < 20; rep++)
    cnnrt_pool_free(cnnrt_pool_new(1 + rep % 5)); /* never used */
  cnnrt_pool *pool = cnnrt_pool_new(3);
  assert_non_null(pool);
  check_once(pool, &h, 64);
  usleep(20000); /* long past the spin: the workers sleep */
  check_once(pool, &h, 64);
  usleep(20000);
  cnnrt_pool_free(pool);
}

/* ---- memory visibility ---- */

enum { VIS_TASKS = 8, VIS_SLICE = 256, VIS_ITERS = 5000 };

typedef struct Vis {
  int in[VIS_TASKS * VIS_SLICE];  /* written by the caller before each job */
  int out[VIS_TASKS * VIS_SLICE]; /* written by the tasks, read by the caller */
} Vis;

static void vis_task(void *arg, int t) {
  Vis *v = arg;
  for (int i = t * VIS_SLICE; i < (t + 1) * VIS_SLICE; i++)
    v->out[i] = v->in[i] * 3 + 1;
}

static void test_visibility(void **state) {
  static Vis v;
  cnnrt_pool *pool = cnnrt_pool_new(3);
  assert_non_null(pool);
  int bad = 0;
  for (int iter = 0; iter < VIS_ITERS; iter++) {
    for (int i = 0; i < VIS_TASKS * VIS_SLICE; i++)
      v.in[i] = iter + i;
    cnnrt_parallel_for(pool, VIS_TASKS, vis_task, &v);
    for (int i = 0; i < VIS_TASKS * VIS_SLICE; i++)
      bad += v.out[i] != (iter + i) * 3 + 1;
  }
  assert_int_equal(bad, 0);
  cnnrt_pool_free(pool);
}

int main(void) {
  alarm(300); /* a deadlock fails the test instead of hanging it */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_index_once), cmocka_unit_test(test_parallel),
      cmocka_unit_test(test_inline),           cmocka_unit_test(test_thread_counts),
      cmocka_unit_test(test_custom),           cmocka_unit_test(test_nested),
      cmocka_unit_test(test_shared_pool),      cmocka_unit_test(test_free_idle),
      cmocka_unit_test(test_visibility),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
