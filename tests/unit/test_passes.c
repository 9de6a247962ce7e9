/*
 * test_passes.c: the optimising passes on small specs: batchnorm folding
 * (values), activation / residual / pad fusion (structure), the layout
 * pass (reorders, packed weights, kernel choice), target resolution from
 * --cpu and --features, and the header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "cnnc.h"

static Graph *load(Arena *a, const char *text) {
  diag_reset();
  Graph *g = spec_parse_string(a, "t.yaml", text, strlen(text));
  assert_non_null(g);
  assert_true(shape_infer(g));
  assert_true(weights_bind(g));
  assert_true(verify(g));
  return g;
}

static const Node *node(const Graph *g, const char *name) {
  int i = graph_find(g, name);
  if (i < 0) fail_msg("no node '%s'", name);
  return &g->nodes[i];
}

static const TargetArch avx512_arch = {.name = "avx512", .vec = 16, .nregs = 32, .acc = 24, .fma = true, .fpu = true,
                                       .index_bits = 64};

static TargetInfo avx512(void) {
  return (TargetInfo){.arch = &avx512_arch, .vec = 16, .nregs = 32, .acc = 24, .fma = true, .l1 = 32 << 10,
                      .l2 = 1 << 20, .isa = "avx512", .winograd = -1};
}

#define CONV_BN                                                                                   \
  "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 1, 3, 3]}\nlayers:\n"                       \
  "  - {name: c, op: conv2d, filters: 2, kernel: 1, weight: [2, -1], bias: [0.5, 1]}\n"           \
  "  - {name: bn, op: batchnorm, epsilon: 0, weight: [3, 1], bias: [0.25, -2], running_mean: [1, 2], " \
  "running_var: [4, 16]}\n"

static void test_fold_bn_values(void **state) {
  Arena a = {0};
  Graph *g = load(&a, CONV_BN);
  fold_bn(g);
  assert_int_equal(g->nnodes, 2);
  const Node *c = &g->nodes[1];
  assert_int_equal(c->op, OP_CONV2D);
  assert_string_equal(c->name, "bn"); /* the output keeps its name */
  assert_int_equal(c->output_index, 0);
  /* s = w / sqrt(var + eps): 3/2 and 1/4 */
  assert_float_equal(c->weight->data[0], 2 * 1.5, 1e-6);
  assert_float_equal(c->weight->data[1], -1 * 0.25, 1e-6);
  /* b' = (b - mean) * s + beta */
  assert_float_equal(c->bias->data[0], (0.5 - 1) * 1.5 + 0.25, 1e-6);
  assert_float_equal(c->bias->data[1], (1 - 2) * 0.25 - 2, 1e-6);
  arena_free(&a);
}

static void test_fuse_act_and_residual(void **state) {
  Arena a = {0};
  Graph *g = load(&a, "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 2, 4, 4]}\nlayers:\n"
                      "  - {name: c1, op: conv2d, filters: 2, kernel: 1, weight: [1, 0, 0, 1], bias: false}\n"
                      "  - {name: c2, op: conv2d, filters: 2, kernel: 1, weight: [1, 0, 0, 1], bias: false}\n"
                      "  - {name: s, op: add, inputs: [c2, c1]}\n"
                      "  - {name: r, op: relu6}\n");
  fold_bn(g);
  fuse(g);
  /* x, c1, c2 (+ residual c1, relu6): add and relu6 are gone */
  assert_int_equal(g->nnodes, 3);
  const Node *c2 = node(g, "r");
  assert_int_equal(c2->op, OP_CONV2D);
  assert_int_equal(c2->nin, 2);
  assert_int_equal(c2->in[1], graph_find(g, "c1"));
  assert_int_equal(c2->act.kind, ACT_RELU6);
  arena_free(&a);
}

static void test_no_residual_when_conv_has_act(void **state) {
  Arena a = {0};
  Graph *g = load(&a, "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 2, 4, 4]}\nlayers:\n"
                      "  - {name: c1, op: conv2d, filters: 2, kernel: 1, weight: [1, 0, 0, 1], bias: false, activation: relu}\n"
                      "  - {name: s, op: add, inputs: [c1, x]}\n");
  fuse(g);
  assert_int_equal(node(g, "s")->op, OP_ADD); /* relu comes before the add: not fusable */
  arena_free(&a);
}

static void test_fuse_pad_into_conv(void **state) {
  Arena a = {0};
  Graph *g = load(&a, "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 1, 4, 4]}\nlayers:\n"
                      "  - {name: p, op: pad, padding: [1, 2, 0, 3]}\n"
                      "  - {name: c, op: conv2d, filters: 1, kernel: 3, padding: 1, weight: [1,1,1,1,1,1,1,1,1], bias: false}\n");
  fuse(g);
  assert_int_equal(graph_find(g, "p"), -1);
  const Node *c = node(g, "c");
  assert_int_equal(c->in[0], graph_find(g, "x"));
  assert_int_equal(c->a.conv.pad[0], 2);
  assert_int_equal(c->a.conv.pad[1], 3);
  assert_int_equal(c->a.conv.pad[2], 1);
  assert_int_equal(c->a.conv.pad[3], 4);
  arena_free(&a);
}

static void test_nonzero_pad_stays(void **state) {
  Arena a = {0};
  Graph *g = load(&a, "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 1, 4, 4]}\nlayers:\n"
                      "  - {name: p, op: pad, padding: 1, value: 0.5}\n"
                      "  - {name: c, op: conv2d, filters: 1, kernel: 3, weight: [1,1,1,1,1,1,1,1,1], bias: false}\n");
  fuse(g);
  assert_int_not_equal(graph_find(g, "p"), -1);
  arena_free(&a);
}

static void test_layout_edges_and_packing(void **state) {
  Arena a = {0};
  /* 17 output channels: two blocks of 16, the second padded with zeros. */
  char spec[4096];
  int n = snprintf(spec, sizeof spec,
                   "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 1, 5, 5]}\nlayers:\n"
                   "  - {name: c, op: conv2d, filters: 17, kernel: 1, weight: [");
  for (int i = 0; i < 17; i++) n += snprintf(spec + n, sizeof spec - (size_t)n, "%s%d", i ? ", " : "", i + 1);
  snprintf(spec + n, sizeof spec - (size_t)n, "], bias: false}\n  - {name: s, op: softmax}\n");
  Graph *g = load(&a, spec);
  TargetInfo t = avx512();
  layout(g, &t);
  schedule(g, &t);
  assert_true(pack(g));
  /* x (nchw) -> c (blocked, reads x directly) -> reorder -> softmax */
  assert_int_equal(g->nnodes, 4);
  const Node *c = &g->nodes[1], *r = &g->nodes[2];
  assert_int_equal(c->layout, LAYOUT_NCHWC);
  assert_int_equal(c->cblock, 16);
  assert_int_equal(c->sched.kernel, KERNEL_DIRECT);
  assert_int_equal(r->op, OP_REORDER);
  assert_int_equal(r->layout, LAYOUT_NCHW);
  assert_int_equal(g->nodes[3].in[0], 2);
  assert_int_equal(node_floats(c), 32 * 25);
  /* packed [OCp/(ocb*16)][IC=1][1][1][ocb*16]: oc order kept, zero tail */
  int64_t np = shape_numel(&c->weight->shape);
  assert_int_equal(np, 32);
  for (int i = 0; i < 32; i++) assert_float_equal(c->weight->data[i], i < 17 ? i + 1 : 0, 0);
  arena_free(&a);
}

static void test_layout_output_reorder_keeps_name(void **state) {
  Arena a = {0};
  Graph *g = load(&a, "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 1, 4, 4]}\nlayers:\n"
                      "  - {name: c, op: conv2d, filters: 1, kernel: 1, weight: [2], bias: false}\n");
  TargetInfo t = avx512();
  layout(g, &t);
  schedule(g, &t);
  assert_true(pack(g));
  const Node *out = &g->nodes[g->outputs[0]];
  assert_string_equal(out->name, "c");
  assert_int_equal(out->op, OP_REORDER);
  assert_int_equal(out->output_index, 0);
  assert_string_equal(g->nodes[out->in[0]].name, "c_blocked");
  arena_free(&a);
}

static void test_winograd_choice(void **state) {
  Arena a = {0};
  const char *spec = "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 32, 8, 8]}\nlayers:\n"
                     "  - {name: a, op: conv2d, filters: 32, kernel: 1}\n"
                     "  - {name: b, op: conv2d, filters: 32, kernel: 3, padding: 1}\n"
                     "  - {name: c, op: conv2d, filters: 32, kernel: 3, padding: 1, stride: 2}\n";
  diag_reset();
  Graph *g = spec_parse_string(&a, "t.yaml", spec, strlen(spec));
  assert_non_null(g);
  g->random_weights = true;
  assert_true(shape_infer(g) && weights_bind(g) && verify(g));
  TargetInfo t = avx512();
  layout(g, &t);
  schedule(g, &t);
  assert_true(pack(g));
  assert_int_equal(node(g, "a")->sched.kernel, KERNEL_DIRECT);   /* reads NCHW x, 1x1 */
  assert_int_equal(node(g, "b")->sched.kernel, KERNEL_WINOGRAD); /* 3x3 s1, 32 -> 32 */
  assert_true(node(g, "b")->scratch > 0);
  assert_false(node(g, "b")->sched.at_use);
  assert_int_equal(node(g, "c_blocked")->sched.kernel, KERNEL_DIRECT); /* stride 2 */
  arena_free(&a);
  /* 8 Q registers (cortex-m55) and no FPU (cortex-m3): the transforms load
   * their terms at use, and the scratch holds 36 more vectors (D) */
  const char *cpus[2][2] = {{"thumbv8.1m.main-none-eabihf", "cortex-m55"}, {"thumbv7m-none-eabi", "cortex-m3"}};
  for (int i = 0; i < 2; i++) {
    Arena b = {0};
    Options o = {.triple = cpus[i][0], .cpu = cpus[i][1], .winograd = 1, .fuse_dw = true};
    assert_true(target_info(&o, &b, &t));
    g = spec_parse_string(&b, "t.yaml", spec, strlen(spec));
    assert_non_null(g);
    g->random_weights = true;
    assert_true(shape_infer(g) && weights_bind(g) && verify(g));
    layout(g, &t);
    schedule(g, &t);
    const Node *w = node(g, "b");
    assert_int_equal(w->sched.kernel, KERNEL_WINOGRAD);
    assert_true(w->sched.at_use);
    int64_t V = w->sched.vec, T = w->sched.tile_oh, C = 32 / V * V;
    assert_int_equal(w->scratch, 36 * (C + C) * 4 * T + 2 * 36 * V * 4);
    arena_free(&b);
  }
}

static void test_target_widths(void **state) {
  TargetInfo t;
  Arena a = {0};
  Options o = {.triple = "x86_64-pc-linux-gnu", .cpu = "x86-64"};
  assert_true(target_info(&o, &a, &t));
  assert_int_equal(t.vec, 4);
  o.cpu = "x86-64-v3";
  assert_true(target_info(&o, &a, &t));
  assert_int_equal(t.vec, 8);
  assert_true(t.fma);
  o.cpu = "znver4";
  assert_true(target_info(&o, &a, &t));
  assert_int_equal(t.vec, 16);
  assert_int_equal(t.nregs, 32);
  o.features = "-avx512f";
  assert_true(target_info(&o, &a, &t));
  assert_int_equal(t.vec, 8);
  assert_int_equal(target_x86_cpu_width("no-such-cpu"), 0);
  assert_int_equal(target_x86_cpu_width("skylake"), 8);
  assert_int_equal(target_x86_cpu_width("skylake-avx512"), 16);
  arena_free(&a);
}

/* The Arm rows of the target table, defaults, and what cnnc refuses. */
static void test_target_arm(void **state) {
  TargetInfo t;
  Arena a = {0};
  Options o = {.triple = "thumbv7em-none-eabihf", .cpu = "cortex-m7"};
  assert_true(target_info(&o, &a, &t));
  assert_string_equal(t.triple, "thumbv7em-unknown-none-eabihf"); /* normalised: keeps eabihf */
  assert_int_equal(t.vec, 1);
  assert_int_equal(t.nregs, 32);
  assert_int_equal(t.arch->index_bits, 32);
  assert_true(t.arch->bare_metal && t.hard_float && t.fma);
  assert_int_equal(t.arch->clock, CLOCK_DWT);
  assert_string_equal(t.float_abi, "hard");
  o = (Options){.triple = "thumbv8.1m.main-none-eabihf"};
  assert_true(target_info(&o, &a, &t));
  assert_string_equal(t.cpu, "cortex-m55"); /* the triple's default */
  assert_int_equal(t.vec, 4);
  assert_int_equal(t.nregs, 8);
  o = (Options){.triple = "thumbv7m-none-eabi"};
  assert_true(target_info(&o, &a, &t));
  assert_false(t.arch->fpu);
  assert_string_equal(t.float_abi, "soft");
  o = (Options){.triple = "aarch64-linux-gnu", .cpu = "neoverse-n1"};
  assert_true(target_info(&o, &a, &t));
  assert_int_equal(t.nregs, 32);
  assert_int_equal(t.arch->index_bits, 64);
  assert_false(t.arch->bare_metal);
  int before = diag_error_count();
  o = (Options){.triple = "thumbv7em-none-eabihf", .cpu = "cortex-m77"};
  assert_false(target_info(&o, &a, &t));
  o = (Options){.triple = "riscv64-linux-gnu"};
  assert_false(target_info(&o, &a, &t));
  o = (Options){.triple = "thumbv7m-none-eabihf"}; /* no FPU for the hard-float ABI */
  assert_false(target_info(&o, &a, &t));
  o = (Options){.triple = "thumbv6m-none-eabi", .profile = true}; /* no cycle counter */
  assert_false(target_info(&o, &a, &t));
  o = (Options){.triple = "aarch64-linux-gnu", .features = "+foo"};
  assert_false(target_info(&o, &a, &t));
  o = (Options){.triple = "thumbv7em-linux-gnueabihf"}; /* M-profile needs OS none */
  assert_false(target_info(&o, &a, &t));
  assert_int_equal(diag_error_count(), before + 6);
  diag_reset();
  arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fold_bn_values),
      cmocka_unit_test(test_fuse_act_and_residual),
      cmocka_unit_test(test_no_residual_when_conv_has_act),
      cmocka_unit_test(test_fuse_pad_into_conv),
      cmocka_unit_test(test_nonzero_pad_stays),
      cmocka_unit_test(test_layout_edges_and_packing),
      cmocka_unit_test(test_layout_output_reorder_keeps_name),
      cmocka_unit_test(test_winograd_choice),
      cmocka_unit_test(test_target_widths),
      cmocka_unit_test(test_target_arm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
