/*
 * test_spec.c: spec.c, YAML -> graph.  Each test parses a spec from a
 * string, with diagnostics captured in memory, and checks the graph's
 * contents or the exact messages and locations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnnc.h"

typedef struct {
  Arena arena;
  char *diag; /* captured diagnostics */
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

static Graph *parse(Ctx *c, const char *text) {
  return spec_parse_string(&c->arena, "dir/m.yaml", text, strlen(text));
}

static const char *diags(Ctx *c) {
  fflush(c->stream);
  return c->diag ? c->diag : "";
}

static void assert_diag(Ctx *c, const char *needle) {
  if (!strstr(diags(c), needle)) fail_msg("missing diagnostic \"%s\" in:\n%s", needle, diags(c));
}

static const Node *node(const Graph *g, const char *name) {
  int id = graph_find(g, name);
  if (id < 0) fail_msg("no node %s", name);
  return &g->nodes[id];
}

static const char example[] =
    "cnnc: 1\n"
    "name: fashion_mnist\n"
    "weights: fm.safetensors\n"
    "inputs:\n"
    "  - {name: image, shape: [1, 1, 28, 28]}\n"
    "outputs: [probs]\n"
    "layers:\n"
    "  - {name: conv1, op: conv2d, filters: 32, kernel: 3, padding: 1, activation: relu}\n"
    "  - {name: pool1, op: maxpool2d, kernel: 2}\n"
    "  - {name: fc, op: dense, units: 10, input: pool1}\n"
    "  - {name: probs, op: softmax}\n";

static void test_example(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, example);
  assert_non_null(g);
  assert_string_equal(diags(c), "");
  assert_string_equal(g->name, "fashion_mnist");
  assert_string_equal(g->weights, "dir/fm.safetensors");
  assert_int_equal(g->weights_loc.line, 3);
  assert_int_equal(g->weights_loc.col, 10);
  assert_int_equal(g->nnodes, 5);
  assert_int_equal(g->ninputs, 1);
  assert_int_equal(g->inputs[0], 0);
  assert_int_equal(g->noutputs, 1);
  assert_int_equal(g->outputs[0], 4);

  const Node *in = node(g, "image");
  assert_int_equal(in->op, OP_INPUT);
  assert_int_equal(in->input_index, 0);
  assert_int_equal(in->shape.rank, 4);
  assert_int_equal(in->shape.dim[3], 28);

  const Node *conv = node(g, "conv1");
  assert_int_equal(conv->op, OP_CONV2D);
  assert_int_equal(conv->nin, 1);
  assert_int_equal(conv->in[0], 0);
  assert_int_equal(conv->a.conv.filters, 32);
  assert_int_equal(conv->a.conv.kernel[0], 3);
  assert_int_equal(conv->a.conv.kernel[1], 3);
  for (int i = 0; i < 4; i++) assert_int_equal(conv->a.conv.pad[i], 1);
  assert_int_equal(conv->a.conv.stride[0], 1);
  assert_int_equal(conv->a.conv.dilation[1], 1);
  assert_int_equal(conv->a.conv.groups, 1);
  assert_true(conv->a.conv.has_bias);
  assert_int_equal(conv->act.kind, ACT_RELU);
  assert_int_equal(conv->loc.line, 8);
  assert_int_equal(conv->loc.col, 5);
  assert_int_equal(conv->output_index, -1);
  assert_int_equal(conv->offset, -1);
  assert_int_equal(conv->layout, LAYOUT_NCHW);

  const Node *pool = node(g, "pool1");
  assert_int_equal(pool->op, OP_MAXPOOL2D);
  assert_int_equal(pool->a.pool.stride[0], 2); /* default = kernel */
  assert_int_equal(pool->a.pool.stride[1], 2);
  assert_false(pool->a.pool.ceil_mode);
  const Node *fc = node(g, "fc");
  assert_int_equal(fc->in[0], graph_find(g, "pool1"));
  assert_int_equal(fc->a.dense.units, 10);
  const Node *sm = node(g, "probs");
  assert_int_equal(sm->a.softmax.axis, 1);
  assert_false(sm->a.softmax.log);
  assert_int_equal(sm->output_index, 0);

  assert_int_equal(g->nparams, 4);
  assert_string_equal(g->params[0]->name, "conv1.weight");
  assert_string_equal(g->params[1]->name, "conv1.bias");
  assert_string_equal(g->params[2]->name, "fc.weight");
  assert_string_equal(g->params[3]->name, "fc.bias");
  assert_ptr_equal(conv->weight, g->params[0]);
  assert_false(g->params[0]->is_inline);
  assert_null(g->params[0]->data);
  assert_int_equal(g->params[0]->loc.line, 8);
}

static void test_defaults_and_order(void **state) {
  Ctx *c = *state;
  /* `a` names a later layer: it must be sorted after it; the rest keeps
   * spec order.  No outputs: the last layer.  No weights: NULL. */
  Graph *g = parse(c, "cnnc: 1\nname: m\n"
                      "inputs: [{name: x, shape: [2, 8]}, {name: y, shape: [2, 3]}]\n"
                      "layers:\n"
                      "  - {name: a, op: relu, input: b}\n"
                      "  - {name: b, op: dense, units: 4, bias: false, input: x}\n"
                      "  - {name: f, op: flatten, start_dim: -1}\n"
                      "  - {name: s, op: log_softmax, inputs: [f]}\n");
  assert_non_null(g);
  assert_null(g->weights);
  assert_int_equal(g->nnodes, 6);
  const char *order[] = {"x", "y", "b", "a", "f", "s"};
  for (int i = 0; i < 6; i++) assert_string_equal(g->nodes[i].name, order[i]);
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) assert_true(g->nodes[i].in[k] < i);
  assert_int_equal(node(g, "y")->input_index, 1);
  assert_int_equal(node(g, "f")->in[0], graph_find(g, "b")); /* previous in the file */
  assert_int_equal(node(g, "f")->a.flatten.start_dim, -1); /* normalised by shape.c */
  assert_int_equal(node(g, "a")->op, OP_ACT);
  assert_int_equal(node(g, "a")->act.kind, ACT_RELU);
  assert_true(node(g, "s")->a.softmax.log);
  assert_int_equal(g->noutputs, 1);
  assert_int_equal(g->outputs[0], graph_find(g, "s"));
  assert_int_equal(g->nparams, 1); /* bias: false */
  assert_null(node(g, "b")->bias);
}

static void test_conv_padding_forms(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 4, 9, 9]}]\n"
                      "layers:\n"
                      "  - {name: s, op: conv2d, filters: 2, kernel: [4, 3], dilation: [1, 2], padding: same}\n"
                      "  - {name: p2, op: conv2d, filters: 2, kernel: 3, padding: [1, 2], input: x}\n"
                      "  - {name: p4, op: conv2d, filters: 4, kernel: 3, padding: [1, 2, 3, 4], groups: 2, input: x,"
                      " stride: [2, 3]}\n"
                      "  - {name: v, op: conv2d, filters: 2, kernel: 3, padding: valid, input: x}\n");
  assert_non_null(g);
  const ConvAttr *s = &node(g, "s")->a.conv;
  /* PyTorch 'same': total d*(k-1), the odd one on bottom/right */
  assert_int_equal(s->pad[0], 1);
  assert_int_equal(s->pad[2], 2);
  assert_int_equal(s->pad[1], 2);
  assert_int_equal(s->pad[3], 2);
  const ConvAttr *p2 = &node(g, "p2")->a.conv;
  assert_int_equal(p2->pad[0], 1);
  assert_int_equal(p2->pad[1], 2);
  assert_int_equal(p2->pad[2], 1);
  assert_int_equal(p2->pad[3], 2);
  const ConvAttr *p4 = &node(g, "p4")->a.conv;
  for (int i = 0; i < 4; i++) assert_int_equal(p4->pad[i], i + 1);
  assert_int_equal(p4->groups, 2);
  assert_int_equal(p4->stride[0], 2);
  assert_int_equal(p4->stride[1], 3);
  for (int i = 0; i < 4; i++) assert_int_equal(node(g, "v")->a.conv.pad[i], 0);
}

static void test_inline_params(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 3]}]\n"
                      "layers:\n"
                      "  - name: fc\n"
                      "    op: dense\n"
                      "    units: 2\n"
                      "    weight: [[1, -2.5, 3e-1], [4, 5, 6]]\n"
                      "    bias: [0.5, -1]\n");
  assert_non_null(g);
  const Node *fc = node(g, "fc");
  Param *w = fc->weight, *b = fc->bias;
  assert_string_equal(w->name, "fc.weight");
  assert_true(w->is_inline);
  assert_int_equal(w->count, 6);
  assert_int_equal(w->given.rank, 2);
  assert_int_equal(w->given.dim[0], 2);
  assert_int_equal(w->given.dim[1], 3);
  assert_int_equal(w->loc.line, 8);
  assert_int_equal(w->loc.col, 13);
  float want[] = {1, -2.5f, 0.3f, 4, 5, 6};
  for (int i = 0; i < 6; i++) assert_float_equal(w->data[i], want[i], 0);
  assert_true(b->is_inline);
  assert_int_equal(b->count, 2);
  assert_int_equal(b->given.rank, 0); /* flat */
  assert_float_equal(b->data[1], -1.0f, 0);
  assert_true(fc->a.dense.has_bias);
}

static void test_error_messages(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 3]}]\n"
                      "layers:\n"
                      "  - {name: a, op: dense, unit: 2}\n"
                      "  - {name: b, op: softmx}\n"
                      "  - {name: a, op: relu, input: zz}\n");
  assert_null(g);
  assert_int_equal(diag_error_count(), 5);
  assert_diag(c, "dir/m.yaml:5:26: error: unknown key 'unit' in dense layer 'a'; did you mean 'units'?\n");
  assert_diag(c, "dir/m.yaml:5:5: error: missing required key 'units' in dense layer 'a'\n");
  assert_diag(c, "dir/m.yaml:6:19: error: unknown op 'softmx'; did you mean 'softmax'? (known ops: "
                 "constant, conv2d, conv_transpose2d, maxpool2d, avgpool2d, global_avgpool2d, global_maxpool2d, "
                 "adaptive_avgpool2d, batchnorm, layer_norm, instance_norm, add, mul, sub, div, max, min, concat, "
                 "slice, transpose, pad, upsample, flatten, reshape, dropout, dense, linear, reduce_mean, "
                 "reduce_sum, reduce_max, reduce_min, softmax, log_softmax, split, relu, relu6, leaky_relu, prelu, "
                 "elu, selu, sigmoid, tanh, hardsigmoid, hardswish, silu, gelu, gelu_tanh, softplus, clip, exp, "
                 "neg, abs, sqrt, reciprocal, erf, pow, scale)\n");
  assert_diag(c, "dir/m.yaml:7:12: error: duplicate name 'a'\n");
  assert_diag(c, "dir/m.yaml:5:12: note: 'a' first defined here\n");
  assert_diag(c, "dir/m.yaml:7:32: error: unknown layer or input 'zz' (referenced by layer 'a')\n");
  /* the source line and a caret follow each message */
  assert_diag(c, "    6 |   - {name: b, op: softmx}\n      |                   ^\n");
}

static void test_cycle(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 3]}]\n"
                      "layers:\n"
                      "  - {name: a, op: relu, inputs: [c]}\n"
                      "  - {name: b, op: relu}\n"
                      "  - {name: c, op: relu}\n");
  assert_null(g);
  assert_int_equal(diag_error_count(), 1);
  assert_diag(c, "dir/m.yaml:5:5: error: layer 'a' is part of a cycle: a -> b -> c -> a\n");
}

static void test_malformed_yaml(void **state) {
  Ctx *c = *state;
  assert_null(parse(c, "cnnc: 1\nname: [m\n"));
  assert_int_equal(diag_error_count(), 1);
  assert_diag(c, "dir/m.yaml:3:1: error: malformed YAML: did not find expected ',' or ']'\n");
  assert_diag(c, "dir/m.yaml:2:7: note: while parsing a flow sequence\n");
}

static void test_version_and_missing(void **state) {
  Ctx *c = *state;
  assert_null(parse(c, "cnnc: 3\nname: m\n"));
  assert_int_equal(diag_error_count(), 3);
  assert_diag(c, "dir/m.yaml:1:7: error: unsupported format version 3 (this cnnc reads version 1)\n");
  assert_diag(c, "dir/m.yaml:1:1: error: missing required key 'inputs' in the spec\n");
  assert_diag(c, "dir/m.yaml:1:1: error: missing required key 'layers' in the spec\n");
}

/* Nothing may crash: every odd input gives errors and NULL. */
static void test_odd_inputs(void **state) {
  Ctx *c = *state;
  const char *cases[] = {
      "", "~", "42", "- a\n- b\n", "cnnc:\nname:\ninputs:\nlayers:\n", "\"just a string\"",
      "cnnc: 1\nname: m\ninputs: [~, 3, {name: x, shape: ~}]\nlayers: [~, [], {name: ~, op: ~}]\n",
      "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 2]}]\nlayers: [{name: r, op: relu, "
      "inputs: [~, [a], r]}]\nouputs: 3\n",
      "cnnc: 99999999999999999999999\n", "{[a]: 1, ? {b: 1} : 2}\n", "a: &x [*x]\n",
      "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 2]}]\n"
      "layers: [{name: d, op: dense, units: 1, weight: &w [*w]}]\n",
      "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 2]}]\nlayers: [{name: d, op: dense, units: 1, "
      "weight: [[[[[[[1]]]]]]]}]\n",
      "\xff\xfe\x00", "cnnc: 1\n\t- x\n", "!!binary abc\n", "*undefined\n", "---\n---\n",
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    diag_reset();
    Graph *g = spec_parse_string(&c->arena, "odd.yaml", cases[i], i == 13 ? 3 : strlen(cases[i]));
    assert_null(g);
    assert_true(diag_error_count() > 0);
  }
  assert_diag(c, "odd.yaml:1:1: error: the spec is empty");
}

static void test_deep_nesting(void **state) {
  Ctx *c = *state;
  size_t n = 200000;
  char *s = malloc(2 * n + 1);
  memset(s, '[', n);
  memset(s + n, ']', n);
  s[2 * n] = 0;
  assert_null(spec_parse_string(&c->arena, "deep.yaml", s, 2 * n));
  free(s);
  assert_int_equal(diag_error_count(), 1);
  assert_diag(c, "deep.yaml:1:33: error: the spec is nested deeper than 32 levels\n");
}

static void test_read_failure(void **state) {
  Ctx *c = *state;
  assert_null(spec_parse(&c->arena, "/nonexistent/dir/x.yaml"));
  assert_diag(c, "/nonexistent/dir/x.yaml: error: cannot read the model file '/nonexistent/dir/x.yaml': No such file or "
                 "directory\n");
}

/* ---- issue 3: new ops, activations, n-ary inputs ---- */

static void test_new_ops(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\n"
                      "inputs: [{name: x, shape: [1, 4, 8, 8]}, {name: y, shape: [1, 4, 8, 8]}]\n"
                      "layers:\n"
                      "  - {name: t, op: conv_transpose2d, filters: 6, kernel: [3, 4], stride: 2, padding: [1, 2],"
                      " output_padding: [1, 0], dilation: [1, 3], groups: 2, bias: false}\n"
                      "  - {name: t0, op: conv_transpose2d, filters: 2, kernel: 2, input: x}\n"
                      "  - {name: bn, op: batchnorm, input: x}\n"
                      "  - {name: bn2, op: batchnorm, epsilon: 1e-3, input: x}\n"
                      "  - {name: s, op: add, inputs: [x, y, bn]}\n"
                      "  - {name: m2, op: mul, inputs: [y, x]}\n"
                      "  - {name: cat, op: concat, inputs: [x, y]}\n"
                      "  - {name: cat2, op: concat, axis: -3, inputs: [x]}\n"
                      "  - {name: ga, op: global_avgpool2d, input: x}\n"
                      "  - {name: gm, op: global_maxpool2d, input: x}\n"
                      "  - {name: ad, op: adaptive_avgpool2d, output_size: [1, 2], input: x}\n"
                      "  - {name: ad1, op: adaptive_avgpool2d, output_size: 3, input: x}\n"
                      "  - {name: p0, op: pad, padding: 1, input: x}\n"
                      "  - {name: p1, op: pad, padding: [1, 2, 3, 4], mode: edge, input: x}\n"
                      "  - {name: p2, op: pad, padding: [5, 6], mode: reflect, input: x}\n"
                      "  - {name: p3, op: pad, padding: 0, value: 2.5, mode: constant, input: x}\n"
                      "  - {name: u0, op: upsample, scale: 2, input: x}\n"
                      "  - {name: u1, op: upsample, scale: [3, 1], mode: bilinear, align_corners: true, input: x}\n"
                      "  - {name: u2, op: upsample, scale: 2, mode: bilinear, input: x}\n"
                      "  - {name: r, op: reshape, shape: [0, -1, 2], input: x}\n"
                      "  - {name: d, op: dropout, p: 0.2, input: x}\n"
                      "  - {name: d0, op: dropout, input: x}\n");
  assert_non_null(g);
  const ConvAttr *t = &node(g, "t")->a.conv;
  assert_int_equal(node(g, "t")->op, OP_CONV_TRANSPOSE2D);
  assert_int_equal(t->filters, 6);
  assert_int_equal(t->kernel[0], 3);
  assert_int_equal(t->kernel[1], 4);
  assert_int_equal(t->stride[1], 2);
  int pad[4] = {1, 2, 1, 2};
  for (int i = 0; i < 4; i++) assert_int_equal(t->pad[i], pad[i]);
  assert_int_equal(t->output_padding[0], 1);
  assert_int_equal(t->output_padding[1], 0);
  assert_int_equal(t->dilation[1], 3);
  assert_int_equal(t->groups, 2);
  assert_false(t->has_bias);
  assert_non_null(node(g, "t")->weight);
  assert_null(node(g, "t")->bias);
  const ConvAttr *t0 = &node(g, "t0")->a.conv;
  assert_int_equal(t0->output_padding[0] + t0->output_padding[1] + t0->pad[0] + t0->pad[3], 0);
  assert_int_equal(t0->stride[0] * t0->dilation[0] * t0->groups, 1);
  assert_string_equal(node(g, "t0")->bias->name, "t0.bias");

  assert_true(node(g, "bn")->a.bn.epsilon == 1e-5f);
  assert_true(node(g, "bn2")->a.bn.epsilon == 1e-3f);

  const Node *sum = node(g, "s");
  assert_int_equal(sum->op, OP_ADD);
  assert_int_equal(sum->nin, 3);
  assert_int_equal(sum->in[0], graph_find(g, "x"));
  assert_int_equal(sum->in[1], graph_find(g, "y"));
  assert_int_equal(sum->in[2], graph_find(g, "bn"));
  assert_int_equal(node(g, "m2")->op, OP_MUL);
  assert_int_equal(node(g, "m2")->in[0], graph_find(g, "y"));
  assert_int_equal(node(g, "cat")->a.concat.axis, 1);
  assert_int_equal(node(g, "cat2")->a.concat.axis, -3); /* normalised by shape.c */
  assert_int_equal(node(g, "cat2")->nin, 1);
  assert_int_equal(node(g, "ga")->op, OP_GLOBAL_AVGPOOL2D);
  assert_int_equal(node(g, "gm")->op, OP_GLOBAL_MAXPOOL2D);
  assert_int_equal(node(g, "ad")->a.adaptive.out[0], 1);
  assert_int_equal(node(g, "ad")->a.adaptive.out[1], 2);
  assert_int_equal(node(g, "ad1")->a.adaptive.out[1], 3);

  const PadAttr *p0 = &node(g, "p0")->a.pad, *p1 = &node(g, "p1")->a.pad;
  for (int i = 0; i < 4; i++) assert_int_equal(p0->pad[i], 1);
  assert_int_equal(p0->mode, PAD_CONSTANT);
  assert_true(p0->value == 0.0f);
  for (int i = 0; i < 4; i++) assert_int_equal(p1->pad[i], i + 1);
  assert_int_equal(p1->mode, PAD_EDGE);
  const PadAttr *p2 = &node(g, "p2")->a.pad;
  assert_int_equal(p2->mode, PAD_REFLECT);
  assert_int_equal(p2->pad[0], 5);
  assert_int_equal(p2->pad[1], 6);
  assert_int_equal(p2->pad[2], 5);
  assert_int_equal(p2->pad[3], 6);
  assert_true(node(g, "p3")->a.pad.value == 2.5f);

  const UpsampleAttr *u0 = &node(g, "u0")->a.upsample, *u1 = &node(g, "u1")->a.upsample;
  assert_true(u0->scale[0] == 2 && u0->scale[1] == 2);
  assert_false(u0->bilinear);
  assert_int_equal(u0->coord, COORD_ASYMMETRIC); /* PyTorch's nearest */
  assert_int_equal(u0->nearest, NEAREST_FLOOR);
  assert_true(u1->scale[0] == 3 && u1->scale[1] == 1);
  assert_true(u1->bilinear);
  assert_int_equal(u1->coord, COORD_ALIGN_CORNERS);
  assert_true(node(g, "u2")->a.upsample.bilinear);
  assert_int_equal(node(g, "u2")->a.upsample.coord, COORD_HALF_PIXEL);

  const Shape *rs = &node(g, "r")->a.reshape.shape;
  assert_int_equal(rs->rank, 3);
  assert_int_equal(rs->dim[0], 0);
  assert_int_equal(rs->dim[1], -1);
  assert_int_equal(rs->dim[2], 2);
  assert_int_equal(node(g, "d")->op, OP_DROPOUT);
  assert_int_equal(node(g, "d0")->op, OP_DROPOUT);
}

static void test_batchnorm_params(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 2, 3, 3]}]\n"
                      "layers:\n"
                      "  - {name: c, op: conv2d, filters: 2, kernel: 1, bias: false}\n"
                      "  - name: bn\n"
                      "    op: batchnorm\n"
                      "    weight: [1, 2]\n"
                      "    running_var: [0.5, 0.25]\n"
                      "  - {name: pr, op: prelu, num_parameters: 2, weight: [0.1, 0.2]}\n"
                      "  - {name: t, op: conv_transpose2d, filters: 2, kernel: 1, bias: [3, 4]}\n");
  assert_non_null(g);
  const char *names[] = {"c.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                         "pr.weight", "t.weight", "t.bias"};
  assert_int_equal(g->nparams, 8);
  for (int i = 0; i < 8; i++) assert_string_equal(g->params[i]->name, names[i]);
  const Node *bn = node(g, "bn");
  assert_ptr_equal(bn->weight, g->params[1]);
  assert_ptr_equal(bn->bias, g->params[2]);
  assert_ptr_equal(bn->mean, g->params[3]);
  assert_ptr_equal(bn->var, g->params[4]);
  assert_true(bn->weight->is_inline);
  assert_true(bn->weight->data[1] == 2.0f);
  assert_false(bn->bias->is_inline);
  assert_false(bn->mean->is_inline);
  assert_true(bn->var->is_inline);
  assert_true(bn->var->data[1] == 0.25f);
  assert_int_equal(bn->var->loc.line, 9);
  assert_int_equal(bn->mean->loc.line, 6); /* the layer */
  const Node *pr = node(g, "pr");
  assert_int_equal(pr->op, OP_ACT);
  assert_int_equal(pr->act.kind, ACT_PRELU);
  assert_int_equal(pr->a.num_parameters, 2);
  assert_true(pr->weight->is_inline);
  assert_true(pr->weight->data[0] == 0.1f);
  assert_true(node(g, "t")->bias->data[1] == 4.0f);
  assert_null(node(g, "c")->mean);
}

static void test_activations(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 4, 4, 4]}]\n"
                      "layers:\n"
                      "  - {name: a1, op: leaky_relu}\n"
                      "  - {name: a2, op: leaky_relu, alpha: 0.2}\n"
                      "  - {name: a3, op: elu}\n"
                      "  - {name: a4, op: elu, alpha: -2}\n"
                      "  - {name: a5, op: clip, min: 0, max: 6}\n"
                      "  - {name: a6, op: clip, max: 1.5}\n"
                      "  - {name: a7, op: clip, min: -1}\n"
                      "  - {name: a8, op: prelu}\n"
                      "  - {name: a9, op: gelu_tanh}\n"
                      "  - {name: c1, op: conv2d, filters: 4, kernel: 1, activation: hardswish}\n"
                      "  - {name: c2, op: conv2d, filters: 4, kernel: 1, activation: {op: leaky_relu, alpha: 0.1}}\n"
                      "  - {name: c3, op: conv_transpose2d, filters: 4, kernel: 1, activation: {op: clip, max: 6, min: 0}}\n"
                      "  - {name: d, op: dense, units: 3, activation: {op: silu}}\n"
                      "  - {name: s, op: add, inputs: [x, c1], activation: relu6}\n"
                      "  - {name: m, op: mul, inputs: [x, c1], activation: {op: elu}}\n"
                      "  - {name: n, op: mul, inputs: [x, c1], activation: none}\n");
  assert_non_null(g);
  const struct { const char *name; ActKind kind; float alpha, beta; } want[] = {
      {"a1", ACT_LEAKY_RELU, 0.01f, 0}, {"a2", ACT_LEAKY_RELU, 0.2f, 0},
      {"a3", ACT_ELU, 1.0f, 0},         {"a4", ACT_ELU, -2.0f, 0},
      {"a5", ACT_CLIP, 0, 6},           {"a6", ACT_CLIP, -INFINITY, 1.5f},
      {"a7", ACT_CLIP, -1, INFINITY},   {"a8", ACT_PRELU, 0, 0},
      {"a9", ACT_GELU_TANH, 0, 0},      {"c1", ACT_HARDSWISH, 0, 0},
      {"c2", ACT_LEAKY_RELU, 0.1f, 0},  {"c3", ACT_CLIP, 0, 6},
      {"d", ACT_SILU, 0, 0},            {"s", ACT_RELU6, 0, 0},
      {"m", ACT_ELU, 1.0f, 0},          {"n", ACT_NONE, 0, 0},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    const Node *n = node(g, want[i].name);
    if (n->act.kind != want[i].kind || n->act.alpha != want[i].alpha || n->act.beta != want[i].beta)
      fail_msg("%s: act %d alpha %g beta %g", want[i].name, n->act.kind, n->act.alpha, n->act.beta);
  }
  assert_int_equal(node(g, "a1")->op, OP_ACT);
  assert_int_equal(node(g, "a8")->a.num_parameters, 1);
  assert_string_equal(node(g, "a8")->weight->name, "a8.weight");
  assert_null(node(g, "a1")->weight);
}

static void test_new_attr_errors(void **state) {
  Ctx *c = *state;
  Graph *g = parse(c, "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 4, 4, 4]}]\n"
                      "layers:\n"
                      "  - {name: a, op: relu, alpha: 1}\n"                                  /* 5 */
                      "  - {name: b, op: leaky_relu, alpha: fast}\n"                          /* 6 */
                      "  - {name: c, op: clip}\n"                                             /* 7 */
                      "  - {name: d, op: clip, min: 2, max: 1}\n"                             /* 8 */
                      "  - {name: e, op: conv2d, filters: 4, kernel: 1, activation: prelu}\n" /* 9 */
                      "  - {name: f, op: dense, units: 1, activation: clip}\n"                /* 10 */
                      "  - {name: g, op: add, inputs: [x, x], activation: {op: elu, beta: 1}}\n" /* 11 */
                      "  - {name: h, op: mul, inputs: [x, x], activation: {alpha: 1}}\n"     /* 12 */
                      "  - {name: i, op: add, inputs: [x, x], activation: 3}\n"              /* 13 */
                      "  - {name: j, op: add, inputs: [x, x], activation: swish}\n"          /* 14 */
                      "  - {name: k, op: conv_transpose2d, filters: 2, kernel: 3, stride: 2, output_padding: 2}\n" /* 15 */
                      "  - {name: l, op: conv_transpose2d, filters: 2, kernel: 3, padding: same}\n" /* 16 */
                      "  - {name: m, op: batchnorm, momentum: 0.1, epsilon: -1}\n"           /* 17 */
                      "  - {name: n, op: batchnorm, bias: true}\n"                            /* 18 */
                      "  - {name: o, op: pad, padding: [1, 2, 3], mode: reflection}\n"       /* 19 */
                      "  - {name: p, op: pad, padding: 1, mode: edge, value: 1}\n"           /* 20 */
                      "  - {name: q, op: upsample, scale: 0, align_corners: true}\n"         /* 21 */
                      "  - {name: r, op: upsample, scale: 2, mode: bicubic}\n"               /* 22 */
                      "  - {name: s, op: reshape, shape: [-1, 2, -1, -2]}\n"                 /* 23 */
                      "  - {name: t, op: reshape, shape: 4}\n"                                /* 24 */
                      "  - {name: u, op: adaptive_avgpool2d, output_size: [0, 1]}\n"         /* 25 */
                      "  - {name: v, op: dropout, p: 1.5}\n"                                  /* 26 */
                      "  - {name: w, op: concat, axis: 7}\n"                                  /* 27 */
                      "  - {name: y, op: prelu, num_parameters: 0}\n"                         /* 28 */
                      "  - {name: z, op: upsample}\n"                                         /* 29 */
                      "  - {name: z2, op: global_avgpool2d, kernel: 2}\n");                   /* 30 */
  assert_null(g);
  assert_diag(c, "m.yaml:5:25: error: unknown key 'alpha' in relu layer 'a' (expected one of: name, op, "
                 "input, inputs)\n");
  assert_diag(c, "m.yaml:6:38: error: 'alpha' must be a number, got string 'fast'\n");
  assert_diag(c, "m.yaml:7:5: error: clip needs 'min', 'max' or both\n");
  assert_diag(c, "m.yaml:8:38: error: clip 'min' (2) is greater than 'max' (1)\n");
  assert_diag(c, "m.yaml:9:62: error: prelu cannot be fused (it has a weight); use a layer {op: prelu}\n");
  assert_diag(c, "m.yaml:10:48: error: clip needs 'min', 'max' or both; write e.g. activation: "
                 "{op: clip, min: 0, max: 6}\n");
  assert_diag(c, "m.yaml:11:62: error: unknown key 'beta' in activation 'elu' of layer 'g' (expected "
                 "one of: op, alpha)\n");
  assert_diag(c, "m.yaml:12:52: error: missing required key 'op' in the activation mapping\n");
  assert_diag(c, "m.yaml:13:52: error: 'activation' must be an activation name or a mapping "
                 "{op: name, ...}, got integer 3\n");
  assert_diag(c, "m.yaml:14:52: error: unknown activation 'swish' (known activations: none, relu, "
                 "relu6, leaky_relu, elu, selu, sigmoid, tanh, hardsigmoid, hardswish, silu, gelu, "
                 "gelu_tanh, softplus, clip, exp, neg, abs, sqrt, reciprocal, erf, pow, scale)\n");
  assert_diag(c, "m.yaml:15:87: error: 'output_padding' 2x2 is too large: each must be smaller than the "
                 "stride (2x2) or the dilation (1x1)\n");
  assert_diag(c, "m.yaml:16:69: error: 'padding' must be an integer or a list of 2 integers, got "
                 "string 'same'\n");
  assert_diag(c, "m.yaml:17:30: error: unknown key 'momentum' in batchnorm layer 'm' (expected one of: "
                 "name, op, input, inputs, epsilon, weight, bias, running_mean, running_var)\n");
  assert_diag(c, "m.yaml:17:54: error: 'epsilon' must be non-negative, got -1\n");
  assert_diag(c, "m.yaml:18:36: error: inline 'bias' must be a list of numbers, got boolean true\n");
  assert_diag(c, "m.yaml:19:33: error: 'padding' must be an integer or a list of 2 or 4 integers, got "
                 "a list of 3\n");
  assert_diag(c, "m.yaml:19:50: error: unknown mode 'reflection' (expected one of: constant, reflect, "
                 "edge, replicate)\n");
  assert_diag(c, "m.yaml:20:55: error: 'value' only applies to mode 'constant'\n");
  assert_diag(c, "m.yaml:21:36: error: 'scale' must be positive, got 0\n");
  assert_diag(c, "m.yaml:21:54: error: 'align_corners' only applies to mode 'bilinear'\n");
  assert_diag(c, "m.yaml:22:45: error: unknown mode 'bicubic' (expected one of: nearest, bilinear, linear)\n");
  assert_diag(c, "m.yaml:23:43: error: 'shape' may contain -1 only once\n");
  assert_diag(c, "m.yaml:23:36: note: first -1 here\n");
  assert_diag(c, "m.yaml:23:47: error: 'shape' entries must be positive, 0 (copy the input's) or -1 "
                 "(inferred), got -2\n");
  assert_diag(c, "m.yaml:24:35: error: 'shape' must be a list of 1 to 6 dimensions, got integer 4\n");
  assert_diag(c, "m.yaml:25:53: error: 'output_size' must be positive, got 0\n");
  assert_diag(c, "m.yaml:26:31: error: 'p' must be between 0 and 1, got 1.5\n");
  assert_diag(c, "m.yaml:27:33: error: 'axis' is too large: 7 (at most 5)\n");
  assert_diag(c, "m.yaml:28:42: error: 'num_parameters' must be positive, got 0\n");
  assert_diag(c, "m.yaml:29:5: error: upsample layer 'z' needs 'scale' or 'size'\n");
  assert_diag(c, "m.yaml:30:38: error: unknown key 'kernel' in global_avgpool2d layer 'z2' (expected "
                 "one of: name, op, input, inputs)\n");
  assert_int_equal(diag_error_count(), 30);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_example, setup, teardown),
      cmocka_unit_test_setup_teardown(test_defaults_and_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conv_padding_forms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inline_params, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_yaml, setup, teardown),
      cmocka_unit_test_setup_teardown(test_version_and_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_odd_inputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_ops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batchnorm_params, setup, teardown),
      cmocka_unit_test_setup_teardown(test_activations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_attr_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
