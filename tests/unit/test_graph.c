/*
 * test_graph.c: the IR helpers in graph.c (tables, shapes, lookup, use
 * counts, the deterministic dump) and verify.c on graphs that pass and
 * fail its user-facing checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cnnc.h"

static char *diag_buf;
static size_t diag_len;
static FILE *diag_mem;

static int setup(void **state) {
  diag_reset();
  diag_mem = open_memstream(&diag_buf, &diag_len);
  diag_set_stream(diag_mem);
  return 0;
}

static int teardown(void **state) {
  diag_set_stream(NULL);
  fclose(diag_mem);
  free(diag_buf);
  diag_buf = NULL;
  diag_reset();
  return 0;
}

static const char *diags(void) {
  fflush(diag_mem);
  return diag_buf ? diag_buf : "";
}

static const char spec[] =
    "cnnc: 1\nname: tiny\ninputs: [{name: x, shape: [1, 1, 4, 4]}]\n"
    "outputs: [sm, r]\n"
    "layers:\n"
    "  - {name: c, op: conv2d, filters: 1, kernel: 3, padding: 1, activation: relu,\n"
    "     weight: [1, 0, 0, 0, 1, 0, 0, 0, 1], bias: [0.5]}\n"
    "  - {name: p, op: avgpool2d, kernel: 2, count_include_pad: false}\n"
    "  - {name: d, op: dense, units: 2, weight: [[1, 1, 1, 1], [0, 0, 0, 1]], bias: false}\n"
    "  - {name: sm, op: log_softmax}\n"
    "  - {name: r, op: relu, input: d}\n";

static Graph *build(Arena *a) {
  Graph *g = spec_parse_string(a, "t.yaml", spec, strlen(spec));
  if (!g) fail_msg("spec errors:\n%s", diags());
  return g;
}

static void test_tables(void **state) {
  assert_int_equal(OP_COUNT, 8);
  assert_string_equal(op_name(OP_CONV2D), "conv2d");
  assert_string_equal(op_name(OP_SOFTMAX), "softmax");
  assert_string_equal(op_name(OP_COUNT), "?");
  assert_string_equal(op_attr_keys[OP_DENSE], "units bias activation weight");
  assert_int_equal(act_lookup("relu"), ACT_RELU);
  assert_int_equal(act_lookup("none"), ACT_NONE);
  assert_int_equal(act_lookup("gelu"), ACT_COUNT);
  assert_string_equal(act_names[ACT_RELU], "relu");
}

static void test_shapes(void **state) {
  Arena a = {0};
  Shape s = {4, {2, 3, 5, 7}}, t = {4, {2, 3, 5, 7}}, u = {3, {2, 3, 5}};
  assert_int_equal(shape_numel(&s), 210);
  assert_true(shape_eq(&s, &t));
  assert_false(shape_eq(&s, &u));
  t.dim[3] = 8;
  assert_false(shape_eq(&s, &t));
  assert_string_equal(shape_str(&a, &s), "[2, 3, 5, 7]");
  Shape empty = {0};
  assert_string_equal(shape_str(&a, &empty), "[]");
  assert_int_equal(shape_numel(&empty), 1);
  Shape big = {3, {INT64_MAX / 2, 2, 2}};
  assert_int_equal(shape_numel(&big), -1);
  Shape neg = {2, {-1, 2}};
  assert_int_equal(shape_numel(&neg), -1);
  Shape full = {6, {INT64_MAX, INT64_MIN, 1, 1, 1, 1}};
  assert_string_equal(shape_str(&a, &full),
                      "[9223372036854775807, -9223372036854775808, 1, 1, 1, 1]");
  arena_free(&a);
}

static void test_find_and_uses(void **state) {
  Arena a = {0};
  Graph *g = build(&a);
  assert_int_equal(graph_find(g, "x"), 0);
  assert_int_equal(graph_find(g, "r"), 5);
  assert_int_equal(graph_find(g, "nope"), -1);
  graph_count_uses(g);
  assert_int_equal(g->nodes[graph_find(g, "d")].nuses, 2);
  assert_int_equal(g->nodes[graph_find(g, "c")].nuses, 1);
  assert_int_equal(g->nodes[graph_find(g, "sm")].nuses, 0);
  arena_free(&a);
}

static void test_dump(void **state) {
  Arena a = {0};
  Graph *g = build(&a);
  assert_true(shape_infer(g));
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  graph_dump(g, f);
  fclose(f);
  assert_string_equal(
      buf,
      "graph tiny workspace=0\n"
      "%0 x = input() -> [1, 1, 4, 4] layout=nchw offset=-1 input#0\n"
      "%1 c = conv2d(%0) -> [1, 1, 4, 4] filters=1 kernel=3x3 stride=1x1 pad=1,1,1,1 dilation=1x1 "
      "groups=1 bias=true act=relu layout=nchw offset=-1\n"
      "%2 p = avgpool2d(%1) -> [1, 1, 2, 2] kernel=2x2 stride=2x2 pad=0,0,0,0 ceil_mode=false "
      "count_include_pad=false layout=nchw offset=-1\n"
      "%3 d = dense(%2) -> [1, 2] units=2 bias=false layout=nchw offset=-1\n"
      "%4 sm = softmax(%3) -> [1, 2] axis=1 log=true layout=nchw offset=-1 output#0\n"
      "%5 r = activation(%3) -> [1, 2] act=relu layout=nchw offset=-1 output#1\n"
      "param c.weight [1, 1, 3, 3] inline\n"
      "param c.bias [1] inline\n"
      "param d.weight [2, 4] inline\n");
  free(buf);
  arena_free(&a);
}

static void test_verify_ok(void **state) {
  Arena a = {0};
  Graph *g = build(&a);
  assert_true(shape_infer(g));
  assert_true(weights_bind(g));
  assert_true(verify(g));
  assert_int_equal(diag_error_count(), 0);
  arena_free(&a);
}

/* A graph whose output is its input cannot come from the spec parser
 * (which reports it at the outputs list), but verify still refuses it. */
static void test_verify_output_is_input(void **state) {
  Arena a = {0};
  Graph *g = graph_new(&a, "v.yaml");
  g->name = "v";
  g->nodes = arena_array(&a, 1, sizeof *g->nodes);
  g->nnodes = g->capnodes = 1;
  g->nodes[0] = (Node){.op = OP_INPUT, .name = "x", .loc = {"v.yaml", 4, 5},
                       .shape = {2, {1, 3}}, .input_index = 0, .output_index = 0, .offset = -1};
  int io = 0;
  g->inputs = g->outputs = &io;
  g->ninputs = g->noutputs = 1;
  assert_false(verify(g));
  assert_non_null(strstr(diags(), "v.yaml:4:5: error: input 'x' cannot also be an output\n"));
  arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tables, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_find_and_uses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_output_is_input, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
