/*
 * test_memplan.c: the memory planner on small graphs parsed from specs.
 *
 * Checks that buffers whose lifetimes intersect never overlap, that dead
 * buffers are reused (a chain needs two buffers, not one per layer), that
 * a flatten is a view of its input, that graph inputs and outputs stay in
 * caller memory, and that offsets are 64-byte aligned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cnnc.h"

static Graph *plan(Arena *a, const char *text) {
  diag_reset();
  Graph *g = spec_parse_string(a, "t.yaml", text, strlen(text));
  assert_non_null(g);
  assert_true(shape_infer(g));
  assert_true(weights_bind(g));
  assert_true(verify(g));
  /* no layout pass: every tensor NCHW, so only the views matter here */
  TargetInfo t = {.vec = 1, .nregs = 16, .acc = 8, .l1 = 32 << 10, .l2 = 1 << 20, .isa = "scalar"};
  schedule(g, &t);
  memplan(g);
  return g;
}

static int64_t bytes(const Node *n) { return shape_numel(&n->shape) * 4; }

/* Every pair of workspace buffers that are live at once is disjoint. */
static void assert_no_conflicts(const Graph *g) {
  int *last = calloc((size_t)g->nnodes, sizeof *last);
  for (int i = 0; i < g->nnodes; i++) {
    last[i] = i;
    for (int j = 0; j < g->nodes[i].nin; j++) {
      int r = g->nodes[i].in[j];
      while (g->nodes[r].alias || g->nodes[r].inplace) r = g->nodes[r].in[0];
      if (last[r] < i) last[r] = i;
    }
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *a = &g->nodes[i];
    if (a->offset < 0 || a->inplace) continue;
    assert_int_equal(a->offset % 64, 0);
    assert_true(a->offset + bytes(a) <= g->workspace_size);
    for (int j = i + 1; j < g->nnodes; j++) {
      const Node *b = &g->nodes[j];
      if (b->offset < 0 || b->inplace || j > last[i]) continue;
      bool disjoint = a->offset + bytes(a) <= b->offset || b->offset + bytes(b) <= a->offset;
      if (!disjoint) fail_msg("%s and %s overlap while both live", a->name, b->name);
    }
  }
  free(last);
}

static void test_chain_reuses_buffers(void **state) {
  Arena a = {0};
  Graph *g = plan(&a,
                  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 3, 8, 8]}\nlayers:\n"
                  "  - {name: r1, op: maxpool2d, kernel: 1}\n  - {name: r2, op: maxpool2d, kernel: 1}\n"
                  "  - {name: r3, op: maxpool2d, kernel: 1}\n  - {name: r4, op: maxpool2d, kernel: 1}\n"
                  "  - {name: out, op: maxpool2d, kernel: 1}\n");
  assert_no_conflicts(g);
  /* r1..r4 are 768 bytes each; a chain needs two buffers at a time. */
  assert_int_equal(g->workspace_size, 2 * 768);
  assert_int_equal(g->workspace_bound, 2 * 768);
  assert_int_equal(g->nodes[graph_find(g, "x")].offset, -1);
  assert_int_equal(g->nodes[graph_find(g, "out")].offset, -1);
  assert_int_equal(g->nodes[graph_find(g, "out")].output_index, 0);
  arena_free(&a);
}

static void test_flatten_is_a_view(void **state) {
  Arena a = {0};
  Graph *g = plan(&a,
                  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [2, 2, 4, 4]}\nlayers:\n"
                  "  - {name: p, op: maxpool2d, kernel: 2}\n  - {name: f, op: flatten}\n"
                  "  - {name: s, op: softmax}\n");
  const Node *f = &g->nodes[graph_find(g, "f")];
  assert_true(f->alias);
  assert_int_equal(f->offset, -1);
  assert_int_equal(g->workspace_size, 2 * 2 * 2 * 2 * 4); /* p only */
  assert_no_conflicts(g);
  arena_free(&a);
}

static void test_flatten_output_is_copied(void **state) {
  Arena a = {0};
  Graph *g = plan(&a,
                  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 2, 4, 4]}\nlayers:\n"
                  "  - {name: p, op: maxpool2d, kernel: 2}\n  - {name: f, op: flatten}\n");
  assert_false(g->nodes[graph_find(g, "f")].alias);
  assert_int_equal(g->workspace_size, 64);
  arena_free(&a);
}

static void test_inplace_chain(void **state) {
  Arena a = {0};
  /* r1 cannot overwrite the caller's x; r2..r4 overwrite r1's buffer. */
  Graph *g = plan(&a,
                  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 3, 8, 8]}\nlayers:\n"
                  "  - {name: r1, op: relu}\n  - {name: r2, op: sigmoid}\n  - {name: r3, op: tanh}\n"
                  "  - {name: r4, op: relu}\n  - {name: out, op: relu}\n");
  assert_false(g->nodes[graph_find(g, "r1")].inplace);
  for (const char *n = "r2"; n; n = !strcmp(n, "r2") ? "r3" : !strcmp(n, "r3") ? "r4" : NULL) {
    assert_true(g->nodes[graph_find(g, n)].inplace);
    assert_int_equal(g->nodes[graph_find(g, n)].offset, g->nodes[graph_find(g, "r1")].offset);
  }
  assert_false(g->nodes[graph_find(g, "out")].inplace); /* caller memory */
  assert_int_equal(g->workspace_size, 768);
  arena_free(&a);
}

static void test_no_inplace_while_read_later(void **state) {
  Arena a = {0};
  /* p is read again by q after r, so r must not overwrite it. */
  Graph *g = plan(&a,
                  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 4, 8, 8]}\n"
                  "outputs: [s]\nlayers:\n"
                  "  - {name: p, op: maxpool2d, kernel: 1}\n  - {name: r, op: relu}\n"
                  "  - {name: q, op: add, inputs: [r, p]}\n  - {name: s, op: softmax}\n");
  assert_false(g->nodes[graph_find(g, "r")].inplace);
  assert_true(g->nodes[graph_find(g, "q")].inplace); /* r dies at q */
  assert_no_conflicts(g);
  arena_free(&a);
}

static void test_branches_stay_live(void **state) {
  Arena a = {0};
  /* p1 is read by the last layer, so it must survive r1 and r2. */
  Graph *g = plan(&a,
                  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 4, 8, 8]}\n"
                  "outputs: [s, q]\nlayers:\n"
                  "  - {name: p1, op: maxpool2d, kernel: 1}\n  - {name: r1, op: maxpool2d, kernel: 1}\n"
                  "  - {name: r2, op: maxpool2d, kernel: 1}\n"
                  "  - {name: s, op: softmax}\n  - {name: q, op: relu, input: p1}\n");
  assert_no_conflicts(g);
  assert_int_equal(g->workspace_size, 3 * 1024);
  arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_reuses_buffers),
      cmocka_unit_test(test_flatten_is_a_view),
      cmocka_unit_test(test_flatten_output_is_copied),
      cmocka_unit_test(test_branches_stay_live),
      cmocka_unit_test(test_inplace_chain),
      cmocka_unit_test(test_no_inplace_while_read_later),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
