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
  cnnc_limits.dim = INT64_MAX; /* the overflow checks themselves, beyond --max-dim */
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
  cnnc_limits.dim = INT32_MAX;
}

/* --max-dim: input dimensions at parse time, derived ones by budget_params. */
static void test_max_dim(void **state) {
  Ctx *c = *state;
  const char *text = "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 1, 3000000000, 1]}\nlayers:\n"
                     "  - {name: r, op: relu}\n";
  assert_null(spec_parse_string(&c->arena, "s.yaml", text, strlen(text)));
  assert_diag(c, "s.yaml:4:29: error: 'shape' is too large: 3000000000 (at most 2147483647)\n");
  diag_reset();
  Graph *g = parse(c, "[1, 1, 2000000000, 1]", "  - {name: up, op: upsample, scale: [2, 1]}\n");
  assert_true(shape_infer(g));
  assert_false(budget_params(g));
  assert_diag(c, "s.yaml:5:5: error: layer 'up': dimension 2 of its output [1, 1, 4000000000, 1] is larger "
                 "than 2147483647 (the limit set by --max-dim)\n");
}


/* ---- issue 3 ops; expected shapes from torch 1.13 ---- */

static Graph *parse_text(Ctx *c, const char *text) {
  Graph *g = spec_parse_string(&c->arena, "s.yaml", text, strlen(text));
  if (!g) fail_msg("spec errors:\n%s", diags(c));
  return g;
}

static const Node *nd(const Graph *g, const char *name) {
  int id = graph_find(g, name);
  if (id < 0) fail_msg("no node %s", name);
  return &g->nodes[id];
}

static void test_conv_transpose(void **state) {
  Ctx *c = *state;
  /* nn.ConvTranspose2d(6, 4, (3, 2), stride=(2, 3), padding=(1, 0),
   * output_padding=(1, 2), dilation=(2, 1), groups=2) on [2, 6, 5, 7]
   * -> [2, 4, 12, 22], weight [6, 2, 3, 2] */
  Graph *g = parse(c, "[2, 6, 5, 7]",
                   "  - {name: t, op: conv_transpose2d, filters: 4, kernel: [3, 2], stride: [2, 3],"
                   " padding: [1, 0], output_padding: [1, 2], dilation: [2, 1], groups: 2}\n"
                   "  - {name: d, op: conv_transpose2d, filters: 2, kernel: 3, dilation: 2,"
                   " output_padding: 1, bias: false, input: x}\n"
                   "  - {name: one, op: conv_transpose2d, filters: 3, kernel: 4, stride: 2, padding: 1,"
                   " input: x}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "t", "[2, 4, 12, 22]");
  assert_param(nd(g, "t")->weight, "[6, 2, 3, 2]");
  assert_param(nd(g, "t")->bias, "[4]");
  /* output_padding 1 < dilation 2 with stride 1: (5-1) + 2*2 + 1 + 1 = 10, (7-1) + 4 + 2 = 12 */
  assert_shape(g, "d", "[2, 2, 10, 12]");
  assert_param(nd(g, "d")->weight, "[6, 2, 3, 3]");
  assert_null(nd(g, "d")->bias);
  /* the DCGAN doubling: (5-1)*2 - 2 + 3 + 1 = 10 */
  assert_shape(g, "one", "[2, 3, 10, 14]");
  assert_param(nd(g, "one")->weight, "[6, 3, 4, 4]");
  /* Uneven padding (ONNX's auto_pad SAME_UPPER: [0, 0, 1, 1] for kernel 3,
   * stride 2) removes top + bottom rows: (5-1)*2 + 3 - 1 = 10 = 5 * 2 */
  Node *u = &g->nodes[graph_find(g, "one")];
  u->a.conv = (ConvAttr){.filters = 3, .kernel = {3, 3}, .stride = {2, 2}, .pad = {0, 0, 1, 1}, .dilation = {1, 1},
                         .groups = 1, .has_bias = true};
  assert_true(shape_infer(g));
  assert_shape(g, "one", "[2, 3, 10, 14]");
}

static void test_global_adaptive_pools(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 3, 7, 5]",
                   "  - {name: ga, op: global_avgpool2d}\n"
                   "  - {name: gm, op: global_maxpool2d, input: x}\n"
                   "  - {name: a, op: adaptive_avgpool2d, output_size: [3, 2], input: x}\n"
                   "  - {name: a1, op: adaptive_avgpool2d, output_size: 1, input: x}\n"
                   "  - {name: up, op: adaptive_avgpool2d, output_size: 9, input: x}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "ga", "[1, 3, 1, 1]");
  assert_shape(g, "gm", "[1, 3, 1, 1]");
  assert_shape(g, "a", "[1, 3, 3, 2]");
  assert_shape(g, "a1", "[1, 3, 1, 1]");
  assert_shape(g, "up", "[1, 3, 9, 9]");
}

static void test_batchnorm_prelu_acts(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[2, 3, 4, 4]",
                   "  - {name: bn, op: batchnorm}\n"
                   "  - {name: f, op: flatten}\n"
                   "  - {name: bn1, op: batchnorm, epsilon: 0.001}\n"
                   "  - {name: pc, op: prelu, num_parameters: 3, input: x}\n"
                   "  - {name: p1, op: prelu, input: f}\n"
                   "  - {name: lr, op: leaky_relu, alpha: 0.2, input: x}\n"
                   "  - {name: dr, op: dropout, p: 0.5}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "bn", "[2, 3, 4, 4]");
  const Node *bn = nd(g, "bn");
  assert_param(bn->weight, "[3]");
  assert_param(bn->bias, "[3]");
  assert_param(bn->mean, "[3]");
  assert_param(bn->var, "[3]");
  assert_shape(g, "bn1", "[2, 48]");
  assert_param(nd(g, "bn1")->var, "[48]");
  assert_shape(g, "pc", "[2, 3, 4, 4]");
  assert_param(nd(g, "pc")->weight, "[3]");
  assert_param(nd(g, "p1")->weight, "[1]");
  assert_shape(g, "lr", "[2, 3, 4, 4]");
  assert_shape(g, "dr", "[2, 3, 4, 4]");
}

static void test_broadcast_concat(void **state) {
  Ctx *c = *state;
  Graph *g = parse_text(c,
      "cnnc: 1\nname: m\n"
      "inputs: [{name: x, shape: [2, 8, 5, 5]}, {name: s, shape: [2, 8, 1, 1]}, {name: a, shape: [2, 1, 5, 1]},\n"
      "         {name: b, shape: [1, 4, 1, 6]}, {name: v, shape: [1, 6]}, {name: y, shape: [2, 5, 5, 5]}]\n"
      "layers:\n"
      "  - {name: se, op: mul, inputs: [x, s]}\n"
      "  - {name: r, op: add, inputs: [se, x], activation: relu}\n"
      "  - {name: three, op: add, inputs: [a, b, v]}\n"
      "  - {name: c, op: concat, inputs: [x, y, x]}\n"
      "  - {name: c1, op: concat, inputs: [x]}\n"
      "  - {name: cl, op: concat, axis: -1, inputs: [a, a]}\n"
      "  - {name: c0, op: concat, axis: 0, inputs: [b, b, b]}\n");
  assert_true(shape_infer(g));
  assert_shape(g, "se", "[2, 8, 5, 5]");
  assert_shape(g, "r", "[2, 8, 5, 5]");
  assert_shape(g, "three", "[2, 4, 5, 6]"); /* torch: [2,1,5,1] + [1,4,1,6] + [1,6] */
  assert_shape(g, "c", "[2, 21, 5, 5]");
  assert_int_equal(nd(g, "c")->a.concat.axis, 1);
  assert_shape(g, "c1", "[2, 8, 5, 5]");
  assert_shape(g, "cl", "[2, 1, 5, 2]");
  assert_int_equal(nd(g, "cl")->a.concat.axis, 3);
  assert_shape(g, "c0", "[3, 4, 1, 6]");
}

static void test_pad_upsample_reshape(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "[1, 2, 5, 6]",
                   "  - {name: rf, op: pad, padding: [1, 2, 3, 4], mode: reflect}\n"
                   "  - {name: ed, op: pad, padding: 2, mode: replicate, input: x}\n"
                   "  - {name: cn, op: pad, padding: [0, 3], value: -1.5, input: x}\n"
                   "  - {name: un, op: upsample, scale: [2, 3], input: x}\n"
                   "  - {name: ub, op: upsample, scale: 2, mode: bilinear, align_corners: true, input: x}\n"
                   "  - {name: r1, op: reshape, shape: [0, -1], input: x}\n"
                   "  - {name: r2, op: reshape, shape: [1, 0, 30], input: x}\n"
                   "  - {name: r3, op: reshape, shape: [-1, 3, 2, 2, 5, 1], input: x}\n"
                   "  - {name: r4, op: reshape, shape: [60], input: x}\n");
  assert_true(shape_infer(g));
  /* F.pad(x, (2, 4, 1, 3), mode='reflect') -> [1, 2, 9, 12] */
  assert_shape(g, "rf", "[1, 2, 9, 12]");
  assert_shape(g, "ed", "[1, 2, 9, 10]");
  assert_int_equal(nd(g, "ed")->a.pad.mode, PAD_EDGE);
  assert_shape(g, "cn", "[1, 2, 5, 12]");
  assert_true(nd(g, "cn")->a.pad.value == -1.5f);
  assert_shape(g, "un", "[1, 2, 10, 18]");
  assert_shape(g, "ub", "[1, 2, 10, 12]");
  assert_shape(g, "r1", "[1, 60]");
  assert_shape(g, "r2", "[1, 2, 30]");
  assert_shape(g, "r3", "[1, 3, 2, 2, 5, 1]");
  assert_shape(g, "r4", "[60]");
  /* the attribute keeps the shape as written */
  assert_int_equal(nd(g, "r1")->a.reshape.shape.dim[1], -1);
}

static void test_new_op_errors(void **state) {
  Ctx *c = *state;
  Graph *g = parse_text(c,
      "cnnc: 1\nname: m\n"
      "inputs: [{name: x, shape: [2, 8, 5, 5]}, {name: y, shape: [2, 8, 4, 5]}, {name: v, shape: [2, 6]}]\n"
      "layers:\n"
      "  - {name: bc, op: add, inputs: [x, y]}\n"                                 /* 5 */
      "  - {name: bc3, op: mul, inputs: [x, x, y]}\n"                             /* 6 */
      "  - {name: one, op: add, input: x}\n"                                      /* 7 */
      "  - {name: cat, op: concat, inputs: [x, v]}\n"                             /* 8 */
      "  - {name: cat2, op: concat, axis: 2, inputs: [x, y, x]}\n"                /* 9 */
      "  - {name: cat3, op: concat, inputs: [x, y]}\n"                            /* 10 */
      "  - {name: cax, op: concat, axis: 2, inputs: [v, v]}\n"                    /* 11 */
      "  - {name: rf, op: pad, padding: [0, 0, 5, 0], mode: reflect, input: x}\n" /* 12 */
      "  - {name: rs, op: reshape, shape: [2, -1, 7], input: x}\n"                /* 13 */
      "  - {name: rs2, op: reshape, shape: [4, 101], input: x}\n"                 /* 14 */
      "  - {name: rs3, op: reshape, shape: [0, 0, 0], input: v}\n"                /* 15 */
      "  - {name: pr, op: prelu, num_parameters: 4, input: x}\n"                  /* 16 */
      "  - {name: ct, op: conv_transpose2d, filters: 2, kernel: 1, padding: 3, input: x}\n" /* 17 */
      "  - {name: cg, op: conv_transpose2d, filters: 3, kernel: 1, groups: 3, input: x}\n"  /* 18 */
      "  - {name: gp, op: global_avgpool2d, input: v}\n"                          /* 19 */
      "  - {name: bn, op: batchnorm, input: r}\n"                                 /* 20 */
      "  - {name: r, op: reshape, shape: [2, 2, 3], input: v}\n"                  /* 21 */
      "  - {name: up, op: upsample, scale: 2, input: v}\n"                        /* 22 */
      "  - {name: ok, op: add, inputs: [bc, x]}\n");                             /* 23 */
  assert_false(shape_infer(g));
  assert_diag(c, "s.yaml:5:5: error: add layer 'bc': cannot broadcast [2, 8, 4, 5] (input 'y') with "
                 "[2, 8, 5, 5] (input 'x'): dimension 2 is 4 vs 5 (must be equal or 1)\n");
  assert_diag(c, "s.yaml:6:5: error: mul layer 'bc3': cannot broadcast [2, 8, 4, 5] (input 'y') with "
                 "[2, 8, 5, 5] (the inputs before it): dimension 2 is 4 vs 5");
  assert_diag(c, "s.yaml:7:5: error: add layer 'one' takes 2 or more inputs, got 1\n");
  assert_diag(c, "s.yaml:8:5: error: concat layer 'cat': input 'v' has shape [2, 6], which does not "
                 "match [2, 8, 5, 5] of input 'x' in every dimension but the axis 1\n");
  assert_diag(c, "s.yaml:10:5: error: concat layer 'cat3': input 'y' has shape [2, 8, 4, 5]");
  assert_diag(c, "s.yaml:11:5: error: concat layer 'cax': axis 2 is out of range for rank-2 inputs "
                 "such as [2, 6] (valid: -2..1)\n");
  assert_diag(c, "s.yaml:12:5: error: pad layer 'rf': reflect padding 5 (bottom) must be smaller than "
                 "the input height 5 (input [2, 8, 5, 5])\n");
  assert_diag(c, "s.yaml:13:5: error: reshape layer 'rs': cannot reshape [2, 8, 5, 5] (400 elements) "
                 "into [2, -1, 7] (400 is not a multiple of 14)\n");
  assert_diag(c, "s.yaml:14:5: error: reshape layer 'rs2': cannot reshape [2, 8, 5, 5] (400 elements) "
                 "into [4, 101] (404 elements)\n");
  assert_diag(c, "s.yaml:15:5: error: reshape layer 'rs3': shape[2] is 0 (copy the input's), but the "
                 "input [2, 6] has only 2 dimensions\n");
  assert_diag(c, "s.yaml:16:5: error: prelu layer 'pr': num_parameters (4) must be 1 or the number of "
                 "channels (dim 1) of its input [2, 8, 5, 5]\n");
  assert_diag(c, "s.yaml:17:5: error: conv_transpose2d layer 'ct': padding 3x3 is too large: the output "
                 "would be -1x-1 for input [2, 8, 5, 5]\n");
  assert_diag(c, "s.yaml:18:5: error: conv_transpose2d layer 'cg': input channels (8) are not divisible "
                 "by groups (3)\n");
  assert_diag(c, "s.yaml:19:5: error: global_avgpool2d layer 'gp' needs a 4-d [N, C, H, W] input, got "
                 "[2, 6]\n");
  assert_diag(c, "s.yaml:20:5: error: batchnorm layer 'bn' needs a [N, C] or [N, C, H, W] input, got "
                 "[2, 2, 3]\n");
  assert_diag(c, "s.yaml:22:5: error: upsample layer 'up' needs a 4-d [N, C, H, W] input, got [2, 6]\n");
  /* cat2 (axis 2: 5 + 4 + 5) is fine; ok reads the failed bc: nothing more */
  assert_shape(g, "cat2", "[2, 8, 14, 5]");
  assert_int_equal(diag_error_count(), 16);
  assert_int_equal(nd(g, "ok")->shape.rank, 0);
}

static void test_new_op_overflow(void **state) {
  Ctx *c = *state;
  cnnc_limits.dim = INT64_MAX;
  Graph *g = parse(c, "[1, 1, 1500000000, 1500000000]",
                   "  - {name: up, op: upsample, scale: [2, 1]}\n"
                   "  - {name: p, op: pad, padding: [2147483647, 0], input: x}\n"
                   "  - {name: c, op: concat, axis: 0, inputs: [x, x]}\n");
  assert_false(shape_infer(g));
  assert_diag(c, "s.yaml:5:5: error: layer 'up' is too large: the size of its upsample output "
                 "[1, 1, 3000000000, 1500000000] overflows 64 bits\n");
  assert_diag(c, "s.yaml:6:5: error: layer 'p' is too large");
  assert_diag(c, "s.yaml:7:5: error: layer 'c' is too large");
  diag_reset();
  g = parse(c, "[1, 1, 2000000000000000000, 1]",
            "  - {name: up, op: upsample, scale: [2147483647, 1]}\n"
            "  - {name: t, op: conv_transpose2d, filters: 1, kernel: 1, stride: 2147483647, input: x}\n");
  assert_false(shape_infer(g));
  assert_diag(c, "s.yaml:5:5: error: upsample layer 'up': the upsampled size overflows 64 bits\n");
  assert_diag(c, "s.yaml:6:5: error: conv_transpose2d layer 't': the output size for input "
                 "[1, 1, 2000000000000000000, 1] overflows 64 bits\n");
  cnnc_limits.dim = INT32_MAX;
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
      cmocka_unit_test_setup_teardown(test_max_dim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conv_transpose, setup, teardown),
      cmocka_unit_test_setup_teardown(test_global_adaptive_pools, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batchnorm_prelu_acts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_broadcast_concat, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pad_upsample_reshape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_op_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_op_overflow, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
