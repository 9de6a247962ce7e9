/*
 * fuzz_model.c: libFuzzer targets for the front ends and everything after
 * them, on small graphs.
 *
 *   fuzz_spec     the input is a YAML spec: parse, names, shapes, limits,
 *                 weights (inline, and --random-weights for the rest; no
 *                 file is ever read), verification, every pass, the memory
 *                 plan, the header and --stats; no LLVM.
 *   fuzz_codegen  the same, then code generation for real: the LLVM
 *                 module is built, verified, optimised and emitted as an
 *                 object (to memory; nothing is written).
 *   fuzz_onnx_graph  the input is an ONNX file: the whole translation
 *                 (onnx.c, onnx_ops.c, onnx_fold.c on top of the loader
 *                 that fuzz_onnx covers), then the same passes as
 *                 fuzz_spec.  The model sits in an empty temporary
 *                 directory, so external data is never found.
 * All are built from this file (FUZZ_CODEGEN and FUZZ_ONNX select).  Limits are those
 * of a small graph (64 layers, 4 MiB of parameters, dimensions up to
 * 65536), so that each input takes milliseconds; the target, vector width
 * and optional passes (Winograd, depthwise fusion, -O level) are chosen by
 * a hash of the input, so every code path is reached from the corpus.
 * A crash, a sanitizer report, an abort (CNNC_ASSERT) or a timeout is a
 * finding; errors in the input are not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnnc.h"

static uint64_t hash(const uint8_t *d, size_t n) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 0x100000001b3u;
  return h;
}

#if FUZZ_ONNX
static char dir[] = "/tmp/cnnc_fuzz_onnx_graph_XXXXXX";
static char model[64];
static void cleanup(void) { rmdir(dir); }
#endif

static void init(void) {
  static bool done;
  if (done) return;
  done = true;
#if FUZZ_ONNX
  if (!mkdtemp(dir)) abort();
  snprintf(model, sizeof model, "%s/model.onnx", dir);
  atexit(cleanup);
#endif
  diag_set_stream(fopen("/dev/null", "w"));
  cnnc_limits.layers = 64;
  cnnc_limits.param_bytes = 4 << 20;
  cnnc_limits.yaml_values = 200000;
  cnnc_limits.dim = 65536;
  cnnc_limits.memory = (int64_t)1 << 30;
}

static const char *const cpus[] = {NULL, "x86-64", "x86-64-v3", "x86-64-v4"};

static void back_end(Graph *g, uint64_t h) {
  Options o = {.opt_level = FUZZ_CODEGEN ? (int)(h >> 8 & 3) : 3,
               .winograd = (int)((h >> 10) % 3) - 1,
               .fuse_dw = h >> 12 & 1,
               .profile = h >> 13 & 1,
               .cpu = cpus[h >> 14 & 3]};
  fold_bn(g);
  fuse(g);
  TargetInfo t;
  if (!target_info(&o, g->arena, &t)) return;
  o.target = &t;
  g->cpu_level = target_cpu_level(&t);
  layout(g, &t);
  fuse_dw(g, &t);
  schedule(g, &t);
  if (!pack(g)) return;
  BudgetUse use = {0};
  if (!budget_plan(g, &use)) return;
  memplan(g);
  if (!budget_address(g, &t)) return; /* as main.c's back_end */
  size_t len;
  header_text(g, o.profile, NULL, &len);
  FILE *null = fopen("/dev/null", "w");
  stats_print(g, &t, null);
  fclose(null);
#if FUZZ_CODEGEN
  o.obj_out = out_plan("/dev/null", "object file");
  Variant v = {g, &t};
  codegen_emit(g, &v, 1, &o);
  files_reset();
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  diag_reset();
  Arena a = {0};
  uint64_t h = hash(data, size);
#if FUZZ_ONNX
  /* a copy of exactly `size` bytes, so that reads past the end are caught */
  unsigned char *buf = malloc(size ? size : 1);
  if (size) memcpy(buf, data, size);
  OnnxOptions oo = {0};
  Graph *g = onnx_parse(&a, model, buf, size, &oo);
#else
  Graph *g = spec_parse_string(&a, "fuzz.yaml", (const char *)data, size);
#endif
  if (g) {
    g->weights = NULL; /* never touch the file system */
    g->random_weights = true;
    g->random_seed = h;
    bool names_ok = names_assign(g);
    if (shape_infer(g) && names_ok && budget_params(g) && weights_bind(g) && verify(g)) back_end(g, h);
  }
#if FUZZ_ONNX
  free(buf);
#endif
  arena_free(&a);
  files_reset();
  return 0;
}
