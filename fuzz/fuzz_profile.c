/*
 * fuzz_profile.c: libFuzzer target for --profile-data's reader
 * (compiler/profile_data.c).
 *
 * The input is a table as cnnrt_profile_print writes it.  It is parsed
 * against one fixed compiled graph (a small model with an input, convs,
 * a fused depthwise conv, a view and a dense layer, through every pass up
 * to the memory plan, made once), then dot.c draws that graph with it.
 * Errors are the expected outcome; crashes, sanitizer reports and
 * timeouts are findings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnc.h"

static const char spec[] = "cnnc: 1\n"
                           "name: prof\n"
                           "inputs:\n"
                           "  - {name: image, shape: [1, 3, 12, 12]}\n"
                           "layers:\n"
                           "  - {name: conv1, op: conv2d, filters: 16, kernel: 3, padding: 1, activation: relu}\n"
                           "  - {name: 'dw 1', op: conv2d, filters: 16, kernel: 3, padding: 1, groups: 16}\n"
                           "  - {name: pw, op: conv2d, filters: 16, kernel: 1, activation: relu}\n"
                           "  - {name: pool, op: maxpool2d, kernel: 2}\n"
                           "  - {name: flatten, op: flatten}\n"
                           "  - {name: fc, op: dense, units: 10}\n";

static Arena graph_arena;
static Graph *graph;

static void init(void) {
  static FILE *null;
  if (graph) return;
  diag_set_stream(null = fopen("/dev/null", "w"));
  limits_default(&cnnc_limits);
  Graph *g = spec_parse_string(&graph_arena, "prof.yaml", spec, sizeof spec - 1);
  if (!g) abort();
  g->random_weights = true;
  g->random_seed = 1;
  bool names_ok = names_assign(g);
  if (!shape_infer(g) || !names_ok || !budget_params(g) || !weights_bind(g) || !verify(g)) abort();
  fold_bn(g);
  fuse(g);
  Options o = {.opt_level = 3, .winograd = -1, .fuse_dw = true, .cpu = "x86-64-v3", .triple = "x86_64-linux-gnu"};
  TargetInfo t;
  if (!target_info(&o, g->arena, &t)) abort();
  layout(g, &t);
  fuse_dw(g, &t);
  schedule(g, &t);
  BudgetUse use = {0};
  if (!pack(g) || !budget_plan(g, &use)) abort();
  memplan(g);
  graph = g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  diag_reset();
  Arena a = {0};
  /* a copy of exactly `size` bytes, so that reads past the end are caught */
  char *buf = malloc(size ? size : 1);
  if (size) memcpy(buf, data, size);
  ProfileData *pd = profile_data_parse(&a, graph, "fuzz.txt", buf, size);
  if (pd) {
    size_t len;
    char *dot = dot_text(graph, pd, &len);
    if (!dot) abort();
  }
  free(buf);
  arena_free(&a);
  return 0;
}
