/*
 * test_shape.c: shape.c, output and parameter shapes with PyTorch's
 * formulas (the expected numbers were checked against torch 1.13), and the
 * located errors for shapes that do not fit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cnnc.h"

typedef struct {
  Arena arena;
  char *diag;
  size_t diag_len;
  FILE *stream;
} Ctx;

static int setup(void **state) {
  Ctx *c = calloc(1, sizeof *c);
  diag_reset();
  c->stream = open_memstream(&c->diag, &c->diag_len);
  diag_set_stream(c->stream);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  Ctx *c = *state;
  diag_set_stream(NULL);
  fclose(c->stream);
  free(c->diag);
  arena_free(&c->arena);
  diag_reset();
  free(c);
  return 0;
}

static const char *diags(Ctx *c) {
  fflush(c->stream);
  return c->diag ? c->diag : "";
}

static void assert_diag(Ctx *c, const char *needle) {
  if (!strstr(diags(c), needle)) fail_msg("missing diagnostic \"%s\" in:\n%s", needle, diags(c));
}

/* Parses `layers` (YAML lines) after one input of `shape`. */
static Graph *parse(Ctx *c, const char *shape, const char *layers) {
  char *text = arena_printf(&c->arena, "cnnc: 1\nname: m\ninputs: [{name: x, shape: %s}]\nlayers:\n%s",
                            shape, layers);
  Graph *g = spec_parse_string(&c->arena, "s.yaml", text, strlen(text));
  if (!g) fail_msg("spec errors:\n%s", diags(c));
  return g;
}

static void assert_shape(const Graph *g, const char *name, const char *want) {
  int id = graph_find(g, name);
  assert_true(id >= 0);
  Arena a = {0};
  assert_string_equal(shape_str(&a, &g->nodes[id].shape), want);
  arena_free(&a);
}

static void assert_param(const Param *p, const char *want) {
  Arena a = {0};
  assert_non_null(p);
  assert_string_equal(shape_str(&a, &p->shape), want);
  arena_free(&a);
}

static void test_conv(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 4, 11, 9]",
                   "  - {name: c, op: conv2d, filters: 6, kernel: [3, 2], stride: [2, 1], padding: [1, 0],"
                   " dilation: [2, 3], groups: 2}\n"
                   "  - {name: s, op: conv2d, filters: 3, kernel: 4, padding: same, bias: false, input: x}\n"
                   "  - {name: a, op: conv2d, filters: 2, kernel: 3, stride: 2, padding: [0, 1, 2, 3], input: x}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "c", "[1, 6, 5, 6]");
  const Node *n = &g->nodes[graph_find(g, "c")];
  assert_param(n->weight, "[6, 2, 3, 2]");
  assert_param(n->bias, "[6]");
  assert_shape(g, "s", "[1, 3, 11, 9]");
  assert_null(g->nodes[graph_find(g, "s")].bias);
  /* H: (11 + 0 + 2 - 3) / 2 + 1 = 6; W: (9 + 1 + 3 - 3) / 2 + 1 = 6 */
  assert_shape(g, "a", "[1, 2, 6, 6]");
}

static void test_pool(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[2, 3, 6, 7]",
                   "  - {name: avg, op: avgpool2d, kernel: 3, stride: 2, padding: 1, ceil_mode: true}\n"
                   "  - {name: mx, op: maxpool2d, kernel: 2, input: x}\n"
                   "  - {name: dil, op: maxpool2d, kernel: 2, stride: 1, dilation: 2, input: x}\n"
                   "  - {name: fl, op: maxpool2d, kernel: 3, stride: 2, input: x}\n"
                   "  - {name: cl, op: maxpool2d, kernel: 3, stride: 2, ceil_mode: true, input: x}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "avg", "[2, 3, 4, 4]");
  assert_shape(g, "mx", "[2, 3, 3, 3]");
  assert_shape(g, "dil", "[2, 3, 4, 5]");
  assert_shape(g, "fl", "[2, 3, 2, 3]");
  assert_shape(g, "cl", "[2, 3, 3, 3]");
}

/* ceil_mode: the last window must start inside the input or left padding
 * (torch: MaxPool2d(2, 2, padding=1, ceil_mode=True) on 3x3 gives 2x2). */
static void test_pool_ceil_rule(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 1, 3, 3]",
                   "  - {name: p, op: maxpool2d, kernel: 2, padding: 1, ceil_mode: true}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "p", "[1, 1, 2, 2]");
}

static void test_dense_flatten_softmax(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[5, 4, 7, 7]",
                   "  - {name: d, op: dense, units: 10}\n"
                   "  - {name: f, op: flatten, input: x}\n"
                   "  - {name: f2, op: flatten, start_dim: -2, input: x}\n"
                   "  - {name: sm, op: softmax, axis: -1, input: d}\n"
                   "  - {name: r, op: relu, input: x}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "d", "[5, 10]");
  const Node *d = &g->nodes[graph_find(g, "d")];
  assert_param(d->weight, "[10, 196]");
  assert_param(d->bias, "[10]");
  assert_shape(g, "f", "[5, 196]");
  assert_shape(g, "f2", "[5, 4, 49]");
  assert_int_equal(g->nodes[graph_find(g, "f2")].a.flatten.start_dim, 2);
  assert_shape(g, "sm", "[5, 10]");
  assert_int_equal(g->nodes[graph_find(g, "sm")].a.softmax.axis, 1);
  assert_shape(g, "r", "[5, 4, 7, 7]");
}

static void test_kernel_too_large(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 1, 4, 4]",
                   "  - {name: c, op: conv2d, filters: 1, kernel: 3, dilation: 2}\n"
                   "  - {name: r, op: relu}\n");
  assert_false(shape_infer(g));
  assert_int_equal(diag_error_count(), 1); /* nothing more about r */
  assert_diag(c, "s.yaml:5:5: error: conv2d layer 'c': kernel 3x3 (5x5 with dilation 2x2) is larger "
                 "than the padded input 4x4 (input [1, 1, 4, 4], padding top 0, left 0, bottom 0, right 0)\n");
  assert_int_equal(g->nodes[graph_find(g, "r")].shape.rank, 0);
}

static void test_errors(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 3, 8, 8]",
                   "  - {name: c, op: conv2d, filters: 4, kernel: 1, groups: 2}\n"
                   "  - {name: s, op: softmax, axis: -5, input: x}\n"
                   "  - {name: f, op: flatten, start_dim: 3, input: x}\n"
                   "  - {name: d, op: dense, units: 1, input: f}\n"
                   "  - {name: two, op: relu, inputs: [x, f]}\n");
  assert_false(shape_infer(g));
  assert_int_equal(diag_error_count(), 3);
  assert_diag(c, "s.yaml:5:5: error: conv2d layer 'c': input channels (3) are not divisible by groups (2)\n");
  assert_diag(c, "s.yaml:6:5: error: softmax layer 's': axis -5 is out of range for a rank-4 input "
                 "[1, 3, 8, 8] (valid: -4..3)\n");
  assert_diag(c, "s.yaml:9:5: error: relu layer 'two' takes 1 input, got 2\n");
  /* flatten from the last dim is the identity: rank 4 goes on to dense */
  assert_shape(g, "f", "[1, 3, 8, 8]");
  assert_shape(g, "d", "[1, 1]");
}

static void test_overflow(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 100000000000, 100000, 100000]", "  - {name: r, op: relu}\n");
  assert_false(shape_infer(g));
  assert_int_equal(diag_error_count(), 1);
  assert_diag(c, "s.yaml:3:10: error: input 'x' is too large: the size of [1, 100000000000, 100000, "
                 "100000] overflows 64 bits\n");
  diag_reset();
  g = parse(c, "[4, 1000000000000000000]", "  - {name: f, op: dense, units: 1}\n");
  assert_false(shape_infer(g)); /* 4e18 elements fit int64, 16e18 bytes do not */
  assert_diag(c, "input 'x' is too large");
  diag_reset();
  g = parse(c, "[1, 2000000000]", "  - {name: f, op: dense, units: 2000000000}\n");
  assert_false(shape_infer(g));
  assert_diag(c, "s.yaml:5:5: error: parameter 'f.weight' of layer 'f' is too large");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_conv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool_ceil_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dense_flatten_softmax, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kernel_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
