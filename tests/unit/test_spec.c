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
                 "conv2d, maxpool2d, avgpool2d, flatten, dense, softmax, log_softmax, relu)\n");
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
  assert_diag(c, "/nonexistent/dir/x.yaml: error: cannot read the spec: No such file or directory\n");
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
