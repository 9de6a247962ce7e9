/*
 * pool_slots.c: the static pool objects of a freestanding libcnnrt
 * (runtime/cnnrt_pool.c built with -DCNNRT_FREESTANDING and, here,
 * -DCNNRT_MAX_POOLS=3; tests/CMakeLists.txt builds it as pool_slots).
 *
 * Three custom pools fit, a fourth gives NULL, freeing one makes room
 * again, and each pool keeps its own fn, ctx and thread count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cnnrt.h"

/* Runs the tasks in order and counts the jobs in *ctx. */
static void count_fn(void *ctx, int ntasks, cnnrt_task_fn task, void *arg) {
  ++*(int *)ctx;
  for (int i = 0; i < ntasks; i++)
    task(arg, i);
}

static void add_task(void *arg, int i) { *(int *)arg += i; }

static void test_slots(void **state) {
  int jobs[3] = {0};
  cnnrt_pool *p[3];
  for (int k = 0; k < 3; k++) {
    p[k] = cnnrt_pool_custom(k + 1, count_fn, &jobs[k]);
    assert_non_null(p[k]);
  }
  assert_null(cnnrt_pool_custom(1, count_fn, &jobs[0])); /* all slots taken */
  for (int k = 0; k < 3; k++) {
    int sum = 0;
    cnnrt_parallel_for(p[k], 10 + k, add_task, &sum);
    assert_int_equal(sum, (10 + k) * (9 + k) / 2);
    assert_int_equal(cnnrt_pool_threads(p[k]), k + 1);
  }
  assert_int_equal(jobs[0], 1);
  assert_int_equal(jobs[1], 1);
  assert_int_equal(jobs[2], 1);
  cnnrt_pool_free(p[1]);
  cnnrt_pool *again = cnnrt_pool_custom(7, count_fn, &jobs[1]);
  assert_ptr_equal(again, p[1]); /* the freed slot */
  assert_int_equal(cnnrt_pool_threads(again), 7);
  assert_int_equal(cnnrt_pool_threads(p[0]), 1);
  for (int k = 0; k < 3; k++)
    cnnrt_pool_free(p[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_slots)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
