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
  assert_string_equal(op_name(OP_CONV2D), "conv2d");
  assert_string_equal(op_name(OP_CONV_TRANSPOSE2D), "conv_transpose2d");
  assert_string_equal(op_name(OP_ADAPTIVE_AVGPOOL2D), "adaptive_avgpool2d");
  assert_string_equal(op_name(OP_SOFTMAX), "softmax");
  assert_string_equal(op_name(OP_COUNT), "?");
  assert_string_equal(op_attr_keys[OP_DENSE], "units bias activation weight");
  assert_int_equal(act_lookup("relu"), ACT_RELU);
  assert_int_equal(act_lookup("none"), ACT_NONE);
  assert_int_equal(act_lookup("gelu"), ACT_GELU);
  assert_int_equal(act_lookup("gelu_tanh"), ACT_GELU_TANH);
  assert_int_equal(act_lookup("swish"), ACT_COUNT);
  assert_string_equal(op_attr_keys[OP_BATCHNORM], "epsilon weight bias running_mean running_var");
  for (int i = 0; i < OP_COUNT; i++) assert_non_null(op_names[i]);
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

static const char spec3[] =
    "cnnc: 1\nname: net\n"
    "inputs: [{name: x, shape: [2, 3, 5, 5]}, {name: s, shape: [2, 4, 1, 1]}]\n"
    "outputs: [sm, cat, r, u, p, ad]\n"
    "layers:\n"
    "  - {name: t, op: conv_transpose2d, filters: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1,"
    " activation: {op: leaky_relu, alpha: 0.2}, input: x}\n"
    "  - {name: bn, op: batchnorm, epsilon: 0.001}\n"
    "  - {name: se, op: mul, inputs: [bn, s], activation: {op: clip, min: 0}}\n"
    "  - {name: pr, op: prelu, num_parameters: 4}\n"
    "  - {name: e, op: elu}\n"
    "  - {name: sum, op: add, inputs: [e, bn, pr], activation: hardswish}\n"
    "  - {name: ga, op: global_avgpool2d}\n"
    "  - {name: gm, op: global_maxpool2d, input: sum}\n"
    "  - {name: cat, op: concat, axis: -3, inputs: [ga, gm]}\n"
    "  - {name: ad, op: adaptive_avgpool2d, output_size: [2, 3], input: x}\n"
    "  - {name: p, op: pad, padding: [1, 2, 0, 1], mode: reflect, input: x}\n"
    "  - {name: pc, op: pad, padding: 1, value: 0.5, input: x}\n"
    "  - {name: u, op: upsample, scale: [2, 1], mode: bilinear, align_corners: true, input: pc}\n"
    "  - {name: r, op: reshape, shape: [0, -1], input: cat}\n"
    "  - {name: d, op: dropout, p: 0.1}\n"
    "  - {name: sm, op: softmax}\n";

static Graph *build3(Arena *a) {
  Graph *g = spec_parse_string(a, "n.yaml", spec3, strlen(spec3));
  if (!g) fail_msg("spec errors:\n%s", diags());
  if (!shape_infer(g)) fail_msg("shape errors:\n%s", diags());
  return g;
}

static void test_dump_new_ops(void **state) {
  Arena a = {0};
  Graph *g = build3(&a);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  graph_dump(g, f);
  fclose(f);
  assert_string_equal(
      buf,
      "graph net workspace=0\n"
      "%0 x = input() -> [2, 3, 5, 5] layout=nchw offset=-1 input#0\n"
      "%1 s = input() -> [2, 4, 1, 1] layout=nchw offset=-1 input#1\n"
      "%2 t = conv_transpose2d(%0) -> [2, 4, 10, 10] filters=4 kernel=3x3 stride=2x2 pad=1,1,1,1 "
      "output_padding=1x1 dilation=1x1 groups=1 bias=true act=leaky_relu(alpha=0.2) layout=nchw offset=-1\n"
      "%3 bn = batchnorm(%2) -> [2, 4, 10, 10] epsilon=0.001 layout=nchw offset=-1\n"
      "%4 se = mul(%3, %1) -> [2, 4, 10, 10] act=clip(min=0,max=inf) layout=nchw offset=-1\n"
      "%5 pr = activation(%4) -> [2, 4, 10, 10] num_parameters=4 act=prelu layout=nchw offset=-1\n"
      "%6 e = activation(%5) -> [2, 4, 10, 10] act=elu(alpha=1) layout=nchw offset=-1\n"
      "%7 sum = add(%6, %3, %5) -> [2, 4, 10, 10] act=hardswish layout=nchw offset=-1\n"
      "%8 ga = global_avgpool2d(%7) -> [2, 4, 1, 1] layout=nchw offset=-1\n"
      "%9 gm = global_maxpool2d(%7) -> [2, 4, 1, 1] layout=nchw offset=-1\n"
      "%10 cat = concat(%8, %9) -> [2, 8, 1, 1] axis=1 layout=nchw offset=-1 output#1\n"
      "%11 ad = adaptive_avgpool2d(%0) -> [2, 3, 2, 3] output_size=2x3 layout=nchw offset=-1 output#5\n"
      "%12 p = pad(%0) -> [2, 3, 6, 8] pad=1,2,0,1 mode=reflect layout=nchw offset=-1 output#4\n"
      "%13 pc = pad(%0) -> [2, 3, 7, 7] pad=1,1,1,1 mode=constant value=0.5 layout=nchw offset=-1\n"
      "%14 u = upsample(%13) -> [2, 3, 14, 7] size=0x0 scale=2x1 mode=bilinear coordinate_mode=align_corners layout=nchw "
      "offset=-1 output#3\n"
      "%15 r = reshape(%10) -> [2, 8] shape=[0, -1] layout=nchw offset=-1 output#2\n"
      "%16 d = dropout(%15) -> [2, 8] layout=nchw offset=-1\n"
      "%17 sm = softmax(%16) -> [2, 8] axis=1 log=false layout=nchw offset=-1 output#0\n"
      "param t.weight [3, 4, 3, 3] file unbound\n"
      "param t.bias [4] file unbound\n"
      "param bn.weight [4] file unbound\n"
      "param bn.bias [4] file unbound\n"
      "param bn.running_mean [4] file unbound\n"
      "param bn.running_var [4] file unbound\n"
      "param pr.weight [4] file unbound\n");
  free(buf);
  arena_free(&a);
}

/* Every new op through weights (random) and verify. */
static void test_verify_new_ops(void **state) {
  Arena a = {0};
  Graph *g = build3(&a);
  assert_false(weights_bind(g)); /* no weights anywhere */
  assert_non_null(strstr(diags(), "n.yaml:6:5: error: missing weight 't.weight' (no inline value and "
                                  "no weights file)\n"));
  diag_reset();
  g = build3(&a);
  g->random_weights = true;
  assert_true(weights_bind(g));
  assert_true(verify(g));
  assert_int_equal(diag_error_count(), 0);
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
      cmocka_unit_test_setup_teardown(test_dump_new_ops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_new_ops, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
