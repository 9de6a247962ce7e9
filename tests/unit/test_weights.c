/*
 * test_weights.c: weights_bind on hand-built graphs: inline parameters
 * checked against their required shape, parameters read from a
 * safetensors file written to a temporary directory, and every error
 * (missing file, missing tensor, wrong shape, wrong dtype, corrupt file)
 * reported at the right place, all in one run; and --random-weights:
 * deterministic, within the documented ranges, file and inline values win.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <math.h>

#include "cnnc.h"

/* First values of bn.running_var and conv.weight for seed 42 (pinned so
 * that a change of the pattern, or a machine computing it differently,
 * shows up); the same numbers come out of a Python transcription of the
 * algorithm in weights.c. */
static const float FIRST_VAR[3] = {0.502198696f, 1.34507251f, 0.736575067f};
static const float FIRST_CONV[2] = {0.0712713674f, -0.0667599961f};

static const Loc WEIGHTS_LOC = {"m.yaml", 3, 1};

typedef struct {
  Arena arena;
  Graph *g;
  char dir[64];  /* temporary directory for weight files */
  char *diag;    /* diagnostics */
  size_t diaglen;
  FILE *stream;
} Ctx;

static Ctx ctx;

static int setup(void **state) {
  memset(&ctx, 0, sizeof ctx);
  diag_reset();
  ctx.stream = open_memstream(&ctx.diag, &ctx.diaglen);
  diag_set_stream(ctx.stream);
  strcpy(ctx.dir, "/tmp/cnnc_test_weights.XXXXXX");
  if (!mkdtemp(ctx.dir)) return -1;
  ctx.g = graph_new(&ctx.arena, "m.yaml");
  ctx.g->weights_loc = WEIGHTS_LOC;
  return 0;
}

static int teardown(void **state) {
  diag_set_stream(NULL);
  fclose(ctx.stream);
  free(ctx.diag);
  char path[128];
  snprintf(path, sizeof path, "%s/w.safetensors", ctx.dir);
  unlink(path);
  rmdir(ctx.dir);
  arena_free(&ctx.arena);
  return 0;
}

static Shape shape2(int64_t a, int64_t b) { return (Shape){b ? 2 : 1, {a, b}}; }

/* Adds a parameter of required shape `s` whose layer sits on `line`. */
static Param *add_param(const char *name, Shape s, int line) {
  Param *p = arena_alloc(&ctx.arena, sizeof *p);
  p->name = name;
  p->shape = s;
  p->loc = (Loc){"m.yaml", line, 5};
  VEC_PUSH(&ctx.arena, ctx.g->params, ctx.g->nparams, ctx.g->capparams, p);
  return p;
}

static Param *add_inline(const char *name, Shape s, int line, int64_t count, Shape given) {
  Param *p = add_param(name, s, line);
  p->is_inline = true;
  p->count = count;
  p->given = given;
  p->data = arena_array(&ctx.arena, (size_t)count, sizeof(float));
  for (int64_t i = 0; i < count; i++) p->data[i] = (float)i;
  return p;
}

/* Writes `json` + `data` as a safetensors file and points the graph at it. */
static void write_weights(const char *json, const void *data, size_t datalen) {
  char *path = arena_printf(&ctx.arena, "%s/w.safetensors", ctx.dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  uint64_t n = strlen(json);
  for (int i = 0; i < 8; i++) fputc((int)(n >> (8 * i) & 0xff), f);
  fputs(json, f);
  if (datalen) fwrite(data, 1, datalen, f);
  assert_int_equal(fclose(f), 0);
  ctx.g->weights = path;
}

static bool bind(void) {
  bool ok = weights_bind(ctx.g);
  fflush(ctx.stream);
  return ok;
}

static void assert_diag(const char *text) {
  if (!strstr(ctx.diag, text)) print_error("missing \"%s\" in:\n%s\n", text, ctx.diag);
  assert_non_null(strstr(ctx.diag, text));
}

/* Little-endian bytes of floats 0.5, -2, 3.25, 1e-3, 7, 8 (shape [2, 3]) and 100, 200. */
static const unsigned char FC_DATA[] = {
    0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x50, 0x40, 0x6f, 0x12, 0x83, 0x3a,
    0x00, 0x00, 0xe0, 0x40, 0x00, 0x00, 0x00, 0x41, 0x00, 0x00, 0xc8, 0x42, 0x00, 0x00, 0x48, 0x43,
};
static const char FC_JSON[] =
    "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
    "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}}";

static void write_fc(void) {
  unsigned char data[40] = {0};
  memcpy(data, FC_DATA, sizeof FC_DATA);
  write_weights(FC_JSON, data, sizeof data);
}

/* ---- success ---- */

static void test_bind_from_file(void **state) {
  write_fc();
  Param *w = add_param("fc.weight", shape2(2, 3), 7);
  Param *b = add_param("fc.bias", shape2(2, 0), 7);
  assert_true(bind());
  assert_int_equal(diag_error_count(), 0);
  assert_non_null(w->data);
  assert_non_null(b->data);
  assert_int_equal((uintptr_t)w->data % 64, 0);
  assert_int_equal((uintptr_t)b->data % 64, 0);
  const float want[] = {0.5f, -2.0f, 3.25f, 1e-3f, 7.0f, 8.0f};
  for (int i = 0; i < 6; i++) assert_true(w->data[i] == want[i]);
  assert_true(b->data[0] == 100.0f);
  assert_true(b->data[1] == 200.0f);
}

static void test_inline_ok(void **state) {
  /* No weights file needed when everything is inline. */
  Param *w = add_inline("fc.weight", shape2(2, 3), 7, 6, (Shape){0});
  Param *b = add_inline("fc.bias", shape2(2, 0), 7, 2, shape2(2, 0));
  Param *c = add_inline("conv.weight", (Shape){4, {1, 1, 2, 2}}, 8, 4, (Shape){4, {1, 1, 2, 2}});
  assert_true(bind());
  assert_true(w->data[5] == 5.0f);
  assert_true(b->data[1] == 1.0f);
  assert_true(c->data[3] == 3.0f);
}

static void test_inline_wins_over_file(void **state) {
  write_fc();
  Param *w = add_inline("fc.weight", shape2(2, 3), 7, 6, (Shape){0});
  Param *b = add_param("fc.bias", shape2(2, 0), 7);
  assert_true(bind());
  assert_true(w->data[0] == 0.0f);
  assert_true(b->data[0] == 100.0f);
}

/* ---- errors ---- */

static void test_no_weights_file(void **state) {
  add_param("conv1.weight", (Shape){4, {2, 1, 3, 3}}, 7);
  add_param("conv1.bias", shape2(2, 0), 7);
  assert_false(bind());
  assert_int_equal(diag_error_count(), 2);
  assert_diag("m.yaml:7:5: error: missing weight 'conv1.weight' (no inline value and no weights file)\n");
  assert_diag("m.yaml:7:5: error: missing weight 'conv1.bias' (no inline value and no weights file)\n");
}

static void test_file_not_found(void **state) {
  add_param("fc.weight", shape2(2, 3), 7);
  ctx.g->weights = arena_printf(&ctx.arena, "%s/nope.safetensors", ctx.dir);
  assert_false(bind());
  assert_int_equal(diag_error_count(), 1); /* nothing more about fc.weight */
  char *want = arena_printf(&ctx.arena,
                            "m.yaml:3:1: error: cannot read the weights file '%s/nope.safetensors': "
                            "No such file or directory\n",
                            ctx.dir);
  assert_diag(want);
}

static void test_file_is_directory(void **state) {
  ctx.g->weights = ctx.dir;
  assert_false(bind());
  assert_int_equal(diag_error_count(), 1);
  assert_diag(arena_printf(&ctx.arena, "m.yaml:3:1: error: cannot read the weights file '%s': it is a directory, "
                                       "not a regular file\n", ctx.dir));
}

static void test_missing_tensor(void **state) {
  write_fc();
  add_param("fc.weight", shape2(2, 3), 7);
  add_param("conv.weight", (Shape){4, {1, 1, 1, 1}}, 9);
  add_param("conv.bias", shape2(1, 0), 9);
  assert_false(bind());
  assert_int_equal(diag_error_count(), 2);
  assert_diag("m.yaml:9:5: error: missing weight 'conv.weight': no such tensor in ");
  assert_diag("m.yaml:9:5: error: missing weight 'conv.bias': no such tensor in ");
  assert_diag("/w.safetensors (none of its 3 tensors has a similar name)\n");
}

static void test_wrong_shape(void **state) {
  write_fc();
  add_param("fc.weight", shape2(3, 2), 7);
  add_param("fc.bias", (Shape){2, {2, 1}}, 7);
  assert_false(bind());
  assert_int_equal(diag_error_count(), 2);
  assert_diag("m.yaml:7:5: error: fc.weight has shape [2, 3] in ");
  assert_diag("w.safetensors, expected [3, 2]\n");
  assert_diag("fc.bias has shape [2] in ");
  assert_diag("w.safetensors, expected [2, 1]\n");
}

static void test_wrong_dtype(void **state) {
  static const unsigned char data[16];
  write_weights("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]}}",
                data, sizeof data);
  add_param("a", shape2(2, 0), 4);
  add_param("b", shape2(3, 0), 5);
  assert_false(bind());
  assert_int_equal(diag_error_count(), 3);
  assert_diag("m.yaml:4:5: error: a in ");
  assert_diag("w.safetensors: dtype F16 not supported; only F32\n");
  assert_diag("m.yaml:5:5: error: b in ");
  assert_diag("w.safetensors: dtype I64 not supported; only F32\n");
  assert_diag("m.yaml:5:5: error: b has shape [1] in ");
}

static void test_corrupt_file(void **state) {
  write_weights("{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", "abc", 3);
  add_param("fc.weight", shape2(2, 3), 7);
  add_param("fc.bias", shape2(2, 0), 7);
  assert_false(bind());
  assert_int_equal(diag_error_count(), 1); /* the params are not blamed too */
  assert_diag("m.yaml:3:1: error: ");
  assert_diag("w.safetensors: tensor 'fc.weight': data_offsets [0, 24] run past the end of the data "
              "(3 bytes; truncated file?)\n");
}

static void test_inline_wrong_count(void **state) {
  add_inline("fc.weight", shape2(2, 3), 7, 5, (Shape){0});
  add_inline("fc.bias", shape2(2, 0), 8, 3, (Shape){0});
  assert_false(bind());
  assert_int_equal(diag_error_count(), 2);
  assert_diag("m.yaml:7:5: error: inline fc.weight has 5 values, expected 6 for shape [2, 3]\n");
  assert_diag("m.yaml:8:5: error: inline fc.bias has 3 values, expected 2 for shape [2]\n");
}

static void test_inline_wrong_nested_shape(void **state) {
  /* Same element count, different nesting: still wrong. */
  add_inline("fc.weight", shape2(2, 3), 7, 6, shape2(3, 2));
  add_inline("conv.weight", (Shape){4, {2, 1, 1, 1}}, 8, 2, shape2(2, 0));
  assert_false(bind());
  assert_int_equal(diag_error_count(), 2);
  assert_diag("m.yaml:7:5: error: inline fc.weight has shape [3, 2], expected [2, 3]\n");
  assert_diag("m.yaml:8:5: error: inline conv.weight has shape [2], expected [2, 1, 1, 1]\n");
}

static void test_all_problems_in_one_run(void **state) {
  write_fc();
  add_param("fc.weight", shape2(2, 4), 7);
  add_param("fc.bias", shape2(2, 0), 7);
  add_param("missing", shape2(2, 0), 8);
  add_inline("x", shape2(2, 0), 9, 1, (Shape){0});
  assert_false(bind());
  assert_int_equal(diag_error_count(), 3);
  assert_diag("m.yaml:7:5: error: fc.weight has shape [2, 3]");
  assert_diag("m.yaml:8:5: error: missing weight 'missing'");
  assert_diag("m.yaml:9:5: error: inline x has 1 values");
}

/* ---- --random-weights ---- */

static const char RANDOM_SPEC[] =
    "cnnc: 1\nname: r\ninputs: [{name: x, shape: [1, 3, 6, 6]}]\n"
    "layers:\n"
    "  - {name: conv, op: conv2d, filters: 4, kernel: 3}\n"
    "  - {name: bn, op: batchnorm}\n"
    "  - {name: pr, op: prelu, num_parameters: 4}\n"
    "  - {name: up, op: conv_transpose2d, filters: 2, kernel: 2, stride: 2, groups: 2}\n"
    "  - {name: fc, op: dense, units: 5, bias: [1, 2, 3, 4, 5]}\n";

static Graph *random_graph(uint64_t seed) {
  Graph *g = spec_parse_string(&ctx.arena, "r.yaml", RANDOM_SPEC, strlen(RANDOM_SPEC));
  assert_non_null(g);
  assert_true(shape_infer(g));
  g->random_weights = true;
  g->random_seed = seed;
  return g;
}

static const Param *find_param(const Graph *g, const char *name) {
  for (int i = 0; i < g->nparams; i++)
    if (!strcmp(g->params[i]->name, name)) return g->params[i];
  fail_msg("no param %s", name);
  return NULL;
}

static void assert_range(const Param *p, float lo, float hi) {
  int64_t n = shape_numel(&p->shape);
  assert_non_null(p->data);
  float mn = p->data[0], mx = p->data[0];
  for (int64_t i = 0; i < n; i++) {
    if (!(p->data[i] >= lo && p->data[i] < hi))
      fail_msg("%s[%lld] = %g not in [%g, %g)", p->name, (long long)i, p->data[i], lo, hi);
    mn = p->data[i] < mn ? p->data[i] : mn;
    mx = p->data[i] > mx ? p->data[i] : mx;
  }
  if (n > 1 && mn == mx) fail_msg("%s is constant", p->name);
}

static bool same_data(const Graph *a, const Graph *b) {
  CNNC_ASSERT(a->nparams == b->nparams);
  for (int i = 0; i < a->nparams; i++) {
    size_t n = (size_t)shape_numel(&a->params[i]->shape);
    if (memcmp(a->params[i]->data, b->params[i]->data, n * sizeof(float))) return false;
  }
  return true;
}

static void test_random_weights(void **state) {
  Graph *g = random_graph(42);
  assert_true(weights_bind(g));
  assert_true(verify(g));
  assert_int_equal(diag_error_count(), 0);
  assert_int_equal(g->nparams, 11);
  /* PyTorch's init bound 1/sqrt(fan_in): conv 3*3*3 = 27; conv_transpose
   * weight [4, 1, 2, 2]: fan_in 1*2*2 = 4; dense 4*2*8 = 64 */
  float b27 = 1 / sqrtf(27), b4 = 0.5f, b64 = 0.125f;
  assert_range(find_param(g, "conv.weight"), -b27, b27);
  assert_range(find_param(g, "conv.bias"), -b27, b27);
  assert_range(find_param(g, "bn.weight"), 0.5f, 1.5f);
  assert_range(find_param(g, "bn.bias"), -0.125f, 0.125f);
  assert_range(find_param(g, "bn.running_mean"), -0.125f, 0.125f);
  assert_range(find_param(g, "bn.running_var"), 0.5f, 1.5f);
  assert_range(find_param(g, "pr.weight"), 0.125f, 0.375f);
  assert_range(find_param(g, "up.weight"), -b4, b4);
  assert_range(find_param(g, "up.bias"), -b4, b4);
  assert_range(find_param(g, "fc.weight"), -b64, b64);
  /* inline values are kept */
  assert_true(find_param(g, "fc.bias")->data[4] == 5.0f);
  /* the same on every machine: these are the first values for seed 42 */
  const float *w = find_param(g, "bn.running_var")->data;
  if (w[0] != FIRST_VAR[0] || w[1] != FIRST_VAR[1] || w[2] != FIRST_VAR[2])
    fail_msg("bn.running_var starts %.9g %.9g %.9g", w[0], w[1], w[2]);
  const float *cw = find_param(g, "conv.weight")->data;
  if (cw[0] != FIRST_CONV[0] || cw[1] != FIRST_CONV[1])
    fail_msg("conv.weight starts %.9g %.9g", cw[0], cw[1]);

  /* same seed, same values; another seed, other values */
  Graph *g2 = random_graph(42);
  assert_true(weights_bind(g2));
  assert_true(same_data(g, g2));
  Graph *g3 = random_graph(43);
  assert_true(weights_bind(g3));
  assert_false(same_data(g, g3));
  /* a parameter's values depend on its name, not on its position */
  assert_false(memcmp(find_param(g, "bn.bias")->data, find_param(g, "bn.running_mean")->data,
                      4 * sizeof(float)) == 0);
}

static void test_random_file_wins(void **state) {
  /* fc.weight [2, 3] and fc.bias [2] in the file; bn's are not */
  write_fc();
  const char *path = ctx.g->weights;
  static const char spec[] = "cnnc: 1\nname: r\ninputs: [{name: x, shape: [1, 3]}]\n"
                             "layers:\n"
                             "  - {name: fc, op: dense, units: 2}\n"
                             "  - {name: bn, op: batchnorm}\n";
  Graph *g = spec_parse_string(&ctx.arena, "r.yaml", spec, strlen(spec));
  assert_non_null(g);
  assert_true(shape_infer(g));
  g->weights = path;
  g->random_weights = true;
  assert_true(weights_bind(g));
  assert_true(find_param(g, "fc.weight")->data[1] == -2.0f);
  assert_true(find_param(g, "fc.bias")->data[1] == 200.0f);
  assert_range(find_param(g, "bn.running_var"), 0.5f, 1.5f);
  assert_int_equal(diag_error_count(), 0);

  /* a tensor of the wrong shape in the file is still an error */
  static const char spec2[] = "cnnc: 1\nname: r\ninputs: [{name: x, shape: [1, 4]}]\n"
                              "layers:\n"
                              "  - {name: fc, op: dense, units: 2}\n";
  g = spec_parse_string(&ctx.arena, "r.yaml", spec2, strlen(spec2));
  assert_true(shape_infer(g));
  g->weights = path;
  g->random_weights = true;
  assert_false(weights_bind(g));
  fflush(ctx.stream);
  assert_diag("r.yaml:5:5: error: fc.weight has shape [2, 3] in ");
}

static void test_random_no_file(void **state) {
  Graph *g = random_graph(1);
  g->weights = arena_printf(&ctx.arena, "%s/absent.safetensors", ctx.dir);
  g->weights_loc = WEIGHTS_LOC;
  assert_true(weights_bind(g));
  fflush(ctx.stream);
  assert_int_equal(diag_error_count(), 0);
  assert_diag("m.yaml:3:1: note: weights file '");
  assert_diag("/absent.safetensors' does not exist; --random-weights fills every parameter that is "
              "not inline\n");
  Graph *h = random_graph(1); /* no weights file at all: the same values */
  assert_true(weights_bind(h));
  assert_true(same_data(g, h));
  /* a file that exists but is corrupt is still an error */
  write_weights("{\"a\":", "", 0);
  g = random_graph(1);
  g->weights = ctx.g->weights;
  g->weights_loc = WEIGHTS_LOC;
  assert_false(weights_bind(g));
  /* and an inline value of the wrong size too */
  static const char spec[] = "cnnc: 1\nname: r\ninputs: [{name: x, shape: [1, 3]}]\n"
                             "layers: [{name: fc, op: dense, units: 2, weight: [1, 2]}]\n";
  diag_reset();
  g = spec_parse_string(&ctx.arena, "r.yaml", spec, strlen(spec));
  assert_true(shape_infer(g));
  g->random_weights = true;
  assert_false(weights_bind(g));
  fflush(ctx.stream);
  assert_diag("r.yaml:4:50: error: inline fc.weight has 2 values, expected 6 for shape [2, 3]\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bind_from_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inline_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inline_wins_over_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_weights_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_not_found, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_is_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_tensor, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_dtype, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inline_wrong_count, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inline_wrong_nested_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_problems_in_one_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_weights, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_file_wins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_no_file, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
