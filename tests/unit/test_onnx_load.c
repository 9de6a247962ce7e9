/*
 * test_onnx_load.c: the ONNX loading layer (onnx_load.c, onnx_tensor.c).
 *
 *   - every model.onnx of libonnx-testdata loads, or is refused for a
 *     documented reason (an operator set outside 6..18, a node in another
 *     domain); every initializer and every test_data_set tensor is read by
 *     the accessors (or refused for its data type);
 *   - onnx_sniff says ONNX for all of those and never for a YAML file of
 *     the repository;
 *   - hostile files made here each give an error, without a crash or a
 *     hang: every truncation of a real model, flipped bytes, lengths past
 *     the end, a nesting bomb of 10,000 subgraphs, a file of a million
 *     empty nodes, wire types the schema does not allow, a message field
 *     given twice, and the tensor checks (raw_data of the wrong size,
 *     external data with "..", absolute paths, offsets past the end, a
 *     missing file).
 * Models are built with a small protobuf writer (Buf below).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.h"

#define TESTDATA "/usr/share/libonnx-testdata/data"
/* Paths here are short; a cut one would only fail an assertion. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

typedef struct {
  Arena arena;
  char *diag; /* diagnostics printed since setup */
  size_t diaglen;
  FILE *stream;
  char dir[64]; /* a temporary directory for files, removed by teardown */
} Ctx;

static Ctx ctx;

static int setup(void **state) {
  memset(&ctx, 0, sizeof ctx);
  diag_reset();
  ctx.stream = open_memstream(&ctx.diag, &ctx.diaglen);
  diag_set_stream(ctx.stream);
  strcpy(ctx.dir, "/tmp/cnnc_onnx_XXXXXX");
  assert_non_null(mkdtemp(ctx.dir));
  return 0;
}

static int teardown(void **state) {
  diag_set_stream(NULL);
  fclose(ctx.stream);
  free(ctx.diag);
  arena_free(&ctx.arena);
  files_reset();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", ctx.dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* Forgets the diagnostics so far. */
static void clear_diag(void) {
  fclose(ctx.stream);
  free(ctx.diag);
  ctx.diag = NULL;
  ctx.stream = open_memstream(&ctx.diag, &ctx.diaglen);
  diag_set_stream(ctx.stream);
  diag_reset();
}

static const char *diag_text(void) {
  fflush(ctx.stream);
  return ctx.diag ? ctx.diag : "";
}

/* ---- a protobuf writer ---- */

typedef struct {
  unsigned char *p;
  size_t n, cap;
} Buf;

static void put(Buf *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  if (n) memcpy(b->p + b->n, d, n);
  b->n += n;
}

static void varint(Buf *b, uint64_t v) {
  do {
    unsigned char c = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) c |= 0x80;
    put(b, &c, 1);
  } while (v);
}

static void tag(Buf *b, unsigned field, int wt) { varint(b, (uint64_t)field << 3 | (unsigned)wt); }
static void f_int(Buf *b, unsigned field, uint64_t v) { tag(b, field, 0), varint(b, v); }
static void f_bytes(Buf *b, unsigned field, const void *d, size_t n) { tag(b, field, 2), varint(b, n), put(b, d, n); }
static void f_str(Buf *b, unsigned field, const char *s) { f_bytes(b, field, s, strlen(s)); }
/* Appends sub as a message field and frees it. */
static void f_msg(Buf *b, unsigned field, Buf *sub) {
  f_bytes(b, field, sub->p, sub->n);
  free(sub->p);
  *sub = (Buf){0};
}

/* ONNX field numbers used here (onnx.proto). */
enum {
  M_IR = 1, M_GRAPH = 7, M_OPSET = 8,           /* ModelProto */
  O_DOMAIN = 1, O_VERSION = 2,                  /* OperatorSetIdProto */
  G_NODE = 1, G_NAME = 2, G_INIT = 5,           /* GraphProto */
  N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP = 4, N_ATTR = 5, N_DOMAIN = 7, /* NodeProto */
  A_NAME = 1, A_T = 5, A_G = 6, A_TYPE = 20,    /* AttributeProto */
  T_DIMS = 1, T_DTYPE = 2, T_FLOATS = 4, T_INT32S = 5, T_INT64S = 7, T_NAME = 8, T_RAW = 9,
  T_DOUBLES = 10, T_EXTERNAL = 13, T_LOCATION = 14, /* TensorProto */
  KV_KEY = 1, KV_VALUE = 2,
};

static void opset(Buf *m, const char *domain, int64_t version) {
  Buf o = {0};
  if (domain) f_str(&o, O_DOMAIN, domain);
  f_int(&o, O_VERSION, (uint64_t)version);
  f_msg(m, M_OPSET, &o);
}

static void relu_node(Buf *g, const char *domain) {
  Buf n = {0};
  f_str(&n, N_INPUT, "x");
  f_str(&n, N_OUTPUT, "y");
  f_str(&n, N_NAME, "relu1");
  f_str(&n, N_OP, "Relu");
  if (domain) f_str(&n, N_DOMAIN, domain);
  f_msg(g, G_NODE, &n);
}

/* A model: ir_version, the graph given (consumed; NULL: none), opset 13. */
static Buf model_with(int64_t ir, Buf *graph, int64_t version) {
  Buf m = {0};
  f_int(&m, M_IR, (uint64_t)ir);
  if (graph) f_msg(&m, M_GRAPH, graph);
  if (version) opset(&m, "", version);
  return m;
}

static Buf relu_graph(void) {
  Buf g = {0};
  relu_node(&g, NULL);
  f_str(&g, G_NAME, "g");
  return g;
}

/* ---- loading ---- */

static OnnxModel *load(const Buf *b, const char *path) {
  OnnxModel *m = onnx_load(&ctx.arena, path, b->p, b->n);
  if (!m) assert_true(diag_error_count() > 0);
  return m;
}

/* Asserts that loading b fails with a message containing text. */
static void expect_load_error(Buf *b, const char *text) {
  clear_diag();
  OnnxModel *m = load(b, "model.onnx");
  const char *d = diag_text();
  if (m || !strstr(d, text)) print_error("expected an error containing \"%s\"; got ok=%d and:\n%s\n", text, m != NULL, d);
  assert_null(m);
  assert_non_null(strstr(d, text));
  free(b->p);
  *b = (Buf){0};
}

static void test_minimal(void **state) {
  Buf g = relu_graph(), m = model_with(8, &g, 13);
  OnnxModel *om = load(&m, "model.onnx");
  assert_non_null(om);
  assert_int_equal(om->opset, 13);
  assert_int_equal(om->ir_version, 8);
  assert_int_equal(om->proto->graph->n_node, 1);
  assert_string_equal(om->proto->graph->node[0]->op_type, "Relu");
  assert_true(onnx_sniff(m.p, m.n));
  free(m.p);
}

static void test_model_checks(void **state) {
  Buf g = relu_graph(), m = model_with(2, &g, 13);
  expect_load_error(&m, "model.onnx: error: ir_version 2 is not supported");
  g = relu_graph(), m = model_with(8, &g, 5);
  expect_load_error(&m, "model.onnx: error: operator set version 5 of the default domain (ai.onnx) is not supported: cnnc reads 6 to 18");
  g = relu_graph(), m = model_with(8, &g, 19);
  expect_load_error(&m, "operator set version 19");
  g = relu_graph(), m = model_with(8, &g, 0);
  expect_load_error(&m, "imports no version of the default operator set");
  m = model_with(8, NULL, 13);
  expect_load_error(&m, "model.onnx: error: the model has no graph");
  m = (Buf){0};
  g = relu_graph();
  f_msg(&m, M_GRAPH, &g);
  opset(&m, "", 13);
  expect_load_error(&m, "has no ir_version");
  m = (Buf){0};
  expect_load_error(&m, "the ONNX file is empty");
  /* Another domain: an error only when a node uses it. */
  g = relu_graph(), m = model_with(8, &g, 13);
  opset(&m, "ai.onnx.ml", 3);
  opset(&m, "ai.onnx", 13);
  clear_diag();
  assert_non_null(load(&m, "model.onnx"));
  free(m.p);
  g = (Buf){0};
  relu_node(&g, "ai.onnx.ml");
  m = model_with(8, &g, 13);
  opset(&m, "ai.onnx.ml", 3);
  expect_load_error(&m, "model.onnx: node 'relu1' (#0, Relu): error: operator 'Relu' is in the domain 'ai.onnx.ml'");
  /* ... also in a subgraph. */
  Buf inner = {0}, attr = {0}, node = {0};
  relu_node(&inner, "com.microsoft");
  f_str(&attr, A_NAME, "then_branch");
  f_int(&attr, A_TYPE, 5);
  f_msg(&attr, A_G, &inner);
  f_str(&node, N_OP, "If");
  f_msg(&node, N_ATTR, &attr);
  g = (Buf){0};
  f_msg(&g, G_NODE, &node);
  m = model_with(8, &g, 13);
  expect_load_error(&m, "in the domain 'com.microsoft'");
  m = model_with(8, NULL, 13);
  opset(&m, "", 11);
  g = relu_graph();
  f_msg(&m, M_GRAPH, &g);
  expect_load_error(&m, "two versions of the default operator set");
}

/* Wire-format errors, each with its offset. */
static void test_wire(void **state) {
  Buf m = {0};
  f_int(&m, M_IR, 8);
  tag(&m, M_GRAPH, 2);
  varint(&m, 1000);
  put(&m, "\x0a\x00", 2);
  expect_load_error(&m, "model.onnx: error: corrupt ONNX file: at byte 2 (in ModelProto): field 'graph' of ModelProto is 1000 bytes long, but only 2 bytes remain in the file (truncated?)");
  f_int(&m, M_IR, 8);
  tag(&m, M_GRAPH, 2);
  varint(&m, (uint64_t)1 << 40);
  expect_load_error(&m, "a length longer than 5 bytes");
  f_int(&m, M_IR, 8);
  tag(&m, M_GRAPH, 2);
  varint(&m, (uint64_t)3 << 30);
  expect_load_error(&m, "protobuf's limit is 2 GiB");
  f_int(&m, M_IR, 8);
  tag(&m, 3, 3); /* a group */
  expect_load_error(&m, "at byte 2 (in ModelProto): a group (wire type 3)");
  f_int(&m, M_IR, 8);
  tag(&m, 3, 7);
  expect_load_error(&m, "invalid wire type 7");
  put(&m, "\x00\x00", 2);
  expect_load_error(&m, "at byte 0 (in ModelProto): not a field tag (field number 0)");
  tag(&m, M_IR, 2); /* ir_version as a string */
  varint(&m, 1);
  put(&m, "x", 1);
  expect_load_error(&m, "field 'ir_version' of ModelProto is length-delimited, but the schema says varint");
  f_int(&m, M_IR, 8);
  put(&m, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
  expect_load_error(&m, "at byte 3 (in ModelProto): a varint longer than 10 bytes");
  f_int(&m, M_IR, 8);
  put(&m, "\x08\xff", 2);
  expect_load_error(&m, "the file ends inside a field's value (truncated?)");
  /* Inside a message: the path and the enclosing message's end. */
  Buf g = relu_graph(), n = {0}, t = {0};
  f_int(&t, T_DTYPE, 1);
  tag(&t, T_FLOATS, 2);
  varint(&t, 3);
  put(&t, "abc", 3);
  f_msg(&g, G_INIT, &t);
  m = model_with(8, &g, 13);
  expect_load_error(&m, "(in graph.initializer[0]): packed field 'float_data' holds 3 bytes, not a multiple of 4");
  g = relu_graph();
  tag(&n, N_OP, 2);
  varint(&n, 50);
  put(&n, "Relu", 4);
  f_msg(&g, G_NODE, &n);
  m = model_with(8, &g, 13);
  expect_load_error(&m, "(in graph.node[1]): field 'op_type' of NodeProto is 50 bytes long, but only 4 bytes remain in its message");
  /* A message field given twice would be merged by protobuf-c. */
  g = relu_graph();
  m = model_with(8, &g, 13);
  g = relu_graph();
  f_msg(&m, M_GRAPH, &g);
  expect_load_error(&m, "field 'graph' of ModelProto is given twice");
  /* Unknown fields are skipped (newer ONNX versions add some). */
  g = relu_graph();
  m = model_with(8, &g, 13);
  f_str(&m, 1000, "from the future");
  f_int(&m, 1001, 5);
  clear_diag();
  assert_non_null(load(&m, "model.onnx"));
  free(m.p);
}

/* Subgraphs 10,000 deep: refused before protobuf-c recurses. */
static void test_nesting_bomb(void **state) {
  enum { LEVELS = 10000 };
  /* graph{node{attribute{g: graph{...}}}}, sizes computed from inside out */
  static size_t size[LEVELS + 1][3]; /* payload size of the attribute, node, graph at each level */
  size_t inner = 0;
  for (int i = LEVELS; i >= 1; i--) {
    Buf tmp = {0};
    varint(&tmp, inner);
    size[i][0] = 1 + tmp.n + inner; /* attribute: g (tag 0x32) */
    tmp.n = 0;
    varint(&tmp, size[i][0]);
    size[i][1] = 1 + tmp.n + size[i][0]; /* node: attribute (0x2a) */
    tmp.n = 0;
    varint(&tmp, size[i][1]);
    size[i][2] = 1 + tmp.n + size[i][1]; /* graph: node (0x0a) */
    inner = size[i][2];
    free(tmp.p);
  }
  Buf m = {0};
  f_int(&m, M_IR, 8);
  opset(&m, "", 13);
  tag(&m, M_GRAPH, 2);
  varint(&m, size[1][2]);
  for (int i = 1; i <= LEVELS; i++) {
    tag(&m, G_NODE, 2), varint(&m, size[i][1]);
    tag(&m, N_ATTR, 2), varint(&m, size[i][0]);
    tag(&m, A_G, 2), varint(&m, i < LEVELS ? size[i + 1][2] : 0);
  }
  assert_true(onnx_sniff(m.p, m.n));
  expect_load_error(&m, "messages nested more than 100 deep");
}

/* A million empty nodes: 2 MB of file, about 150 MB for protobuf-c. */
static void test_memory_budget(void **state) {
  Buf g = {0};
  for (int i = 0; i < 1000000; i++) put(&g, "\x0a\x00", 2);
  Buf m = model_with(8, &g, 13);
  expect_load_error(&m, "unpacking the file would take more than");
  /* The same at a tenth fits, and the walk's estimate is an upper bound. */
  g = (Buf){0};
  for (int i = 0; i < 100000; i++) put(&g, "\x0a\x00", 2);
  m = model_with(8, &g, 13);
  clear_diag();
  OnnxModel *om = load(&m, "model.onnx");
  assert_non_null(om);
  assert_int_equal(om->proto->graph->n_node, 100000);
  assert_true(om->used <= om->estimate && om->estimate <= om->budget);
  print_message("100,000 empty nodes (%zu bytes): unpacking took %lld bytes (estimate %lld)\n", m.n,
                (long long)om->used, (long long)om->estimate);
  free(m.p);
  /* A small --max-memory is the budget. */
  int64_t keep = cnnc_limits.memory;
  cnnc_limits.memory = 1 << 20;
  g = (Buf){0};
  for (int i = 0; i < 10000; i++) put(&g, "\x0a\x00", 2);
  m = model_with(8, &g, 13);
  expect_load_error(&m, "its budget");
  cnnc_limits.memory = keep;
}

/* Every proper prefix of a real model is an error; flipped bytes never crash. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* Every truncation of `name` and every byte of it flipped four ways. */
static void truncate_and_flip(const char *name) {
  char path[512];
  snprintf(path, sizeof path, TESTDATA "/%s/model.onnx", name);
  size_t len;
  unsigned char *orig = slurp(path, &len);
  if (!orig) skip();
  Buf b = {0};
  put(&b, orig, len);
  clear_diag();
  assert_non_null(load(&b, "model.onnx"));
  int refused = 0, loaded = 0;
  for (size_t cut = 0; cut < len; cut++) {
    Arena a = {0};
    diag_reset();
    assert_true(cut == 0 || onnx_sniff(orig, cut));
    assert_null(onnx_load(&a, "model.onnx", orig, cut));
    assert_true(diag_error_count() > 0);
    refused++;
    arena_free(&a);
  }
  unsigned char *mut = malloc(len);
  static const unsigned char flips[] = {0xff, 0x80, 0x01, 0x7f};
  for (size_t i = 0; i < len; i++)
    for (size_t k = 0; k < sizeof flips; k++) {
      memcpy(mut, orig, len);
      mut[i] ^= flips[k];
      Arena a = {0};
      diag_reset();
      OnnxModel *m = onnx_load(&a, "model.onnx", mut, len);
      if (m) {
        loaded++;
        assert_true(m->used <= m->estimate);
        Onnx__GraphProto *g = m->proto->graph;
        for (size_t j = 0; j < g->n_initializer; j++) {
          float *d;
          int64_t n;
          Shape s;
          onnx_tensor_floats(m, g->initializer[j], (Loc){"x", 0, 0}, &d, &n, &s);
        }
      } else {
        assert_true(diag_error_count() > 0);
      }
      arena_free(&a);
    }
  print_message("%s (%zu bytes): %d truncations refused; %zu flipped bytes, %d still loaded\n", name, len,
                refused, len * sizeof flips, loaded);
  clear_diag();
  free(mut);
  free(orig);
  free(b.p);
}

static void test_truncations_and_flips(void **state) {
  truncate_and_flip("pytorch-converted/test_Conv2d");
  truncate_and_flip("node/test_loop16_seq_none"); /* subgraphs: Loop with an If inside */
}

/* ---- tensors ---- */

typedef struct {
  int32_t dtype;
  int ndims;
  int64_t dims[8];
} TSpec;

static Buf tensor_head(const char *name, int32_t dtype, int ndims, const int64_t *dims) {
  Buf t = {0};
  for (int i = 0; i < ndims; i++) f_int(&t, T_DIMS, (uint64_t)dims[i]);
  f_int(&t, T_DTYPE, (uint64_t)(int64_t)dtype);
  f_str(&t, T_NAME, name);
  return t;
}

/* A model whose graph holds the given initializers (consumed). */
static OnnxModel *model_of(const char *path, Buf *inits, int n) {
  Buf g = relu_graph();
  for (int i = 0; i < n; i++) f_msg(&g, G_INIT, &inits[i]);
  Buf m = model_with(8, &g, 13);
  clear_diag();
  OnnxModel *om = load(&m, path);
  free(m.p);
  assert_non_null(om);
  return om;
}

static bool floats_of(OnnxModel *m, int i, float **d, int64_t *n, Shape *s) {
  const Onnx__TensorProto *t = m->proto->graph->initializer[i];
  return onnx_tensor_floats(m, t, onnx_loc(&ctx.arena, m->path, "initializer", t->name), d, n, s);
}

static void expect_tensor_error(OnnxModel *m, int i, const char *text) {
  float *d;
  int64_t n;
  Shape s;
  clear_diag();
  bool ok = floats_of(m, i, &d, &n, &s);
  const char *diag = diag_text();
  if (ok || !strstr(diag, text)) print_error("tensor %d: expected \"%s\"; got ok=%d and:\n%s\n", i, text, ok, diag);
  assert_false(ok);
  assert_non_null(strstr(diag, text));
}

static void test_tensors(void **state) {
  static const int64_t d23[] = {2, 3}, d1[] = {1}, d7[] = {1, 1, 1, 1, 1, 1, 1}, dneg[] = {2, -1},
                       dbig[] = {INT64_MAX, 4}, d0[] = {0, 5};
  float f6[6] = {1, -2, 3.5f, 0, 1e30f, -0.25f};
  Buf t[16];
  int n = 0;
  t[n] = tensor_head("raw", 1, 2, d23), f_bytes(&t[n], T_RAW, f6, sizeof f6), n++;      /* 0 */
  t[n] = tensor_head("typed", 1, 2, d23);                                                /* 1 */
  tag(&t[n], T_FLOATS, 2), varint(&t[n], sizeof f6), put(&t[n], f6, sizeof f6), n++;
  t[n] = tensor_head("conv1.weight", 1, 2, d23), f_bytes(&t[n], T_RAW, f6, 20), n++;    /* 2: short raw */
  t[n] = tensor_head("f16", 10, 2, d23);                                                 /* 3 */
  unsigned char h[12] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x43, 0x00, 0x00, 0x00, 0x7c, 0x01, 0x00};
  f_bytes(&t[n], T_RAW, h, 12), n++;
  t[n] = tensor_head("dbl", 11, 1, d1);                                                  /* 4 */
  double dv = 0.5;
  tag(&t[n], T_DOUBLES, 2), varint(&t[n], 8), put(&t[n], &dv, 8), n++;
  t[n] = tensor_head("str", 8, 1, d1), f_bytes(&t[n], 6, "s", 1), n++;                   /* 5: STRING */
  t[n] = tensor_head("rank7", 1, 7, d7), f_bytes(&t[n], T_RAW, f6, 4), n++;              /* 6 */
  t[n] = tensor_head("neg", 1, 2, dneg), n++;                                            /* 7 */
  t[n] = tensor_head("big", 1, 2, dbig), n++;                                            /* 8 */
  t[n] = tensor_head("both", 1, 1, d1), f_bytes(&t[n], T_RAW, f6, 4);                    /* 9 */
  tag(&t[n], T_FLOATS, 2), varint(&t[n], 4), put(&t[n], f6, 4), n++;
  t[n] = tensor_head("count", 1, 2, d23);                                                /* 10 */
  tag(&t[n], T_FLOATS, 2), varint(&t[n], 8), put(&t[n], f6, 8), n++;
  t[n] = tensor_head("scalar", 1, 0, NULL), f_bytes(&t[n], T_RAW, f6 + 2, 4), n++;       /* 11 */
  t[n] = tensor_head("empty", 1, 2, d0), n++;                                            /* 12 */
  t[n] = tensor_head("u8", 2, 1, d1), f_bytes(&t[n], T_RAW, "x", 1), n++;                /* 13 */
  t[n] = tensor_head("nodata", 1, 1, d1), n++;                                           /* 14 */
  t[n] = tensor_head("wrongfield", 1, 1, d1);                                            /* 15 */
  tag(&t[n], T_INT64S, 2), varint(&t[n], 1), put(&t[n], "\x05", 1), n++;
  OnnxModel *m = model_of("dir/model.onnx", t, n);
  float *d;
  int64_t numel;
  Shape s;
  for (int i = 0; i < 2; i++) {
    assert_true(floats_of(m, i, &d, &numel, &s));
    assert_int_equal(numel, 6);
    assert_int_equal(s.rank, 2);
    assert_int_equal(s.dim[1], 3);
    assert_memory_equal(d, f6, sizeof f6);
  }
  expect_tensor_error(m, 2, "dir/model.onnx: initializer 'conv1.weight': error: raw_data holds 20 bytes, but FLOAT [2, 3] needs 24");
  assert_true(floats_of(m, 3, &d, &numel, &s));
  assert_true(d[0] == 1 && d[1] == -2 && d[2] == 3.5f && d[3] == 0 && d[4] > 1e38f && d[5] > 0 && d[5] < 1e-7f);
  assert_true(floats_of(m, 4, &d, &numel, &s));
  assert_true(d[0] == 0.5f);
  expect_tensor_error(m, 5, "initializer 'str': error: the tensor's data type is STRING; cnnc reads FLOAT, DOUBLE, FLOAT16 or BFLOAT16 here");
  expect_tensor_error(m, 6, "the tensor has 7 dimensions; cnnc reads at most 6");
  expect_tensor_error(m, 7, "dimension 1 of the tensor is -1: a dimension cannot be negative");
  expect_tensor_error(m, 8, "larger than --max-dim allows");
  expect_tensor_error(m, 9, "the tensor's data is given twice (raw_data and a typed field)");
  expect_tensor_error(m, 10, "float_data holds 2 values, but FLOAT [2, 3] needs 6");
  assert_true(floats_of(m, 11, &d, &numel, &s));
  assert_true(numel == 1 && s.rank == 0 && d[0] == 3.5f);
  assert_true(floats_of(m, 12, &d, &numel, &s));
  assert_true(numel == 0 && s.rank == 2);
  expect_tensor_error(m, 13, "the tensor's data type is UINT8");
  expect_tensor_error(m, 14, "the tensor holds no data, but FLOAT [1] needs 1 values");
  expect_tensor_error(m, 15, "a FLOAT tensor holds data in a field other than float_data");
  /* A huge dimension, within --max-dim, whose data is missing: an error before any allocation. */
  int64_t keep = cnnc_limits.dim;
  cnnc_limits.dim = INT64_MAX;
  expect_tensor_error(m, 8, "element count overflows");
  cnnc_limits.dim = keep;
}

static void test_int_tensors(void **state) {
  static const int64_t d3[] = {3};
  int64_t v[3] = {1, -1, (int64_t)1 << 40};
  int32_t w[3] = {7, -8, 9};
  Buf t[4];
  t[0] = tensor_head("shape", 7, 1, d3), f_bytes(&t[0], T_RAW, v, sizeof v);
  t[1] = tensor_head("shape32", 6, 1, d3), f_bytes(&t[1], T_RAW, w, sizeof w);
  t[2] = tensor_head("typed", 7, 1, d3);
  tag(&t[2], T_INT64S, 2), varint(&t[2], 3), put(&t[2], "\x01\x02\x7f", 3);
  t[3] = tensor_head("flt", 1, 1, d3);
  OnnxModel *m = model_of("model.onnx", t, 4);
  int64_t *d, n;
  Shape s;
  const Onnx__TensorProto *const *in = (const Onnx__TensorProto *const *)m->proto->graph->initializer;
  assert_true(onnx_tensor_int64s(m, in[0], (Loc){"x", 0, 0}, &d, &n, &s));
  assert_memory_equal(d, v, sizeof v);
  assert_true(onnx_tensor_int64s(m, in[1], (Loc){"x", 0, 0}, &d, &n, &s));
  assert_true(d[0] == 7 && d[1] == -8 && d[2] == 9);
  assert_true(onnx_tensor_int64s(m, in[2], (Loc){"x", 0, 0}, &d, &n, &s));
  assert_true(d[0] == 1 && d[1] == 2 && d[2] == 127);
  clear_diag();
  assert_false(onnx_tensor_int64s(m, in[3], onnx_loc(&ctx.arena, "model.onnx", "initializer", "flt"), &d, &n, &s));
  assert_non_null(strstr(diag_text(), "initializer 'flt': error: the tensor's data type is FLOAT; cnnc reads INT64 or INT32 here"));
}

static void write_file(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(d, 1, n, f), n);
  fclose(f);
}

static Buf external(const char *name, int64_t n, const char *loc, const char *off, const char *len) {
  int64_t dims[1] = {n};
  Buf t = tensor_head(name, 1, 1, dims), kv = {0};
  const char *keys[3] = {"location", "offset", "length"}, *vals[3] = {loc, off, len};
  for (int i = 0; i < 3; i++) {
    if (!vals[i]) continue;
    f_str(&kv, KV_KEY, keys[i]);
    f_str(&kv, KV_VALUE, vals[i]);
    f_msg(&t, T_EXTERNAL, &kv);
  }
  f_int(&t, T_LOCATION, 1);
  return t;
}

static void test_external(void **state) {
  float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  char path[128], model[128];
  snprintf(path, sizeof path, "%s/weights.bin", ctx.dir);
  write_file(path, w, sizeof w);
  snprintf(path, sizeof path, "%s/sub", ctx.dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(model, sizeof model, "%s/model.onnx", ctx.dir);
  Buf t[12];
  int n = 0;
  t[n++] = external("a", 4, "weights.bin", NULL, "16");          /* 0: w[0..3] */
  t[n++] = external("b", 4, "./weights.bin", "16", "16");        /* 1: w[4..7], same file */
  t[n++] = external("c", 8, "weights.bin", NULL, NULL);          /* 2: the whole file */
  t[n++] = external("up", 4, "../weights.bin", NULL, NULL);      /* 3 */
  t[n++] = external("abs", 4, "/etc/passwd", NULL, NULL);        /* 4 */
  t[n++] = external("far", 4, "weights.bin", "24", "16");        /* 5: past the end */
  t[n++] = external("off", 4, "weights.bin", "64", NULL);        /* 6: offset past the end */
  t[n++] = external("missing", 4, "nothere.bin", NULL, NULL);    /* 7 */
  t[n++] = external("size", 4, "weights.bin", "0", "12");        /* 8: length != tensor */
  t[n++] = external("noloc", 4, NULL, "0", "16");                /* 9 */
  t[n++] = external("dir", 4, "sub", NULL, NULL);                /* 10: a directory */
  t[n++] = external("num", 4, "weights.bin", "0x10", NULL);      /* 11 */
  OnnxModel *m = model_of(model, t, n);
  float *d;
  int64_t numel;
  Shape s;
  assert_true(floats_of(m, 0, &d, &numel, &s));
  assert_memory_equal(d, w, 16);
  assert_true(floats_of(m, 1, &d, &numel, &s));
  assert_memory_equal(d, w + 4, 16);
  assert_true(floats_of(m, 2, &d, &numel, &s));
  assert_memory_equal(d, w, 32);
  assert_int_equal(m->external.n, 1); /* read once */
  expect_tensor_error(m, 3, "initializer 'up': error: external data location '../weights.bin' leaves the model's directory");
  expect_tensor_error(m, 4, "external data location '/etc/passwd' is absolute");
  expect_tensor_error(m, 5, "external data at offset 24, length 16, runs past the end of 'weights.bin' (32 bytes)");
  expect_tensor_error(m, 6, "external data at offset 64 runs past the end of 'weights.bin' (32 bytes)");
  expect_tensor_error(m, 7, "cannot read the external data file");
  expect_tensor_error(m, 7, "could not be read (see above)");
  expect_tensor_error(m, 8, "external data in 'weights.bin' is 12 bytes, but the tensor needs 16");
  expect_tensor_error(m, 9, "external_data gives no 'location'");
  expect_tensor_error(m, 10, "external data file");
  expect_tensor_error(m, 11, "offset '0x10' is not a non-negative decimal integer");
  /* The model read from standard input has no directory. */
  Buf one = external("a", 4, "weights.bin", NULL, "16");
  OnnxModel *stdin_model = model_of("-", &one, 1);
  expect_tensor_error(stdin_model, 0, "read from standard input");
}

/* ---- libonnx-testdata ---- */

typedef struct {
  int models, loaded, opset, domain, initializers, tensors_read, tensors_refused, pb_files;
} Counts;

static bool has_testdata(void) {
  struct stat st;
  return stat(TESTDATA, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads each tensor of one test_data_set_* directory. */
static void read_pb_files(const char *dir, Counts *c) {
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name);
    if (l < 4 || strcmp(e->d_name + l - 3, ".pb") != 0) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    size_t len;
    unsigned char *b = slurp(path, &len);
    Onnx__TensorProto *t = b ? onnx__tensor_proto__unpack(NULL, len, b) : NULL;
    if (t) {
      Arena a = {0};
      OnnxModel m = {.arena = &a, .path = path};
      float *f;
      int64_t *i, n, numel = 1;
      Shape s;
      int dt = t->data_type;
      bool ok = dt == 6 || dt == 7 ? onnx_tensor_int64s(&m, t, (Loc){path, 0, 0}, &i, &n, &s)
                                   : onnx_tensor_floats(&m, t, (Loc){path, 0, 0}, &f, &n, &s);
      if (ok) {
        c->pb_files++;
        for (size_t k = 0; k < t->n_dims; k++) numel *= t->dims[k];
        assert_int_equal(n, numel);
        if (dt == 1 && t->raw_data.len) assert_memory_equal(f, t->raw_data.data, t->raw_data.len);
      }
      onnx__tensor_proto__free_unpacked(t, NULL);
      arena_free(&a);
    }
    free(b);
  }
  closedir(d);
}

static void load_testdata_model(const char *dir, Counts *c) {
  char path[2048];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  size_t len;
  Arena a = {0};
  clear_diag();
  char *buf = file_read(&a, path, "model file", (Loc){path, 0, 0}, &len);
  if (!buf) {
    arena_free(&a);
    return;
  }
  c->models++;
  if (!onnx_sniff((unsigned char *)buf, len)) print_error("not sniffed as ONNX: %s\n", path);
  assert_true(onnx_sniff((unsigned char *)buf, len));
  OnnxModel *m = onnx_load(&a, path, (unsigned char *)buf, len);
  const char *d = diag_text();
  if (!m) {
    bool opset = strstr(d, "operator set version") != NULL && strstr(d, "cnnc reads 6 to 18");
    bool domain = strstr(d, "cnnc reads only the default domain") != NULL;
    if (!opset && !domain) print_error("%s: refused for no documented reason:\n%s\n", path, d);
    assert_true(opset || domain);
    c->opset += opset;
    c->domain += domain && !opset;
  } else {
    c->loaded++;
    const Onnx__GraphProto *g = m->proto->graph;
    for (size_t i = 0; i < g->n_initializer; i++) {
      const Onnx__TensorProto *t = g->initializer[i];
      Loc at = onnx_loc(&a, path, "initializer", t->name);
      float *f;
      int64_t *q, n;
      Shape s;
      int dt = t->data_type;
      bool ok = dt == 6 || dt == 7 ? onnx_tensor_int64s(m, t, at, &q, &n, &s) : onnx_tensor_floats(m, t, at, &f, &n, &s);
      c->initializers++;
      if (!ok && !strstr(diag_text(), "the tensor's data type is"))
        print_error("%s: initializer refused:\n%s\n", path, diag_text());
      assert_true(ok || strstr(diag_text(), "the tensor's data type is"));
      ok ? c->tensors_read++ : c->tensors_refused++;
    }
  }
  arena_free(&a);
  files_reset();
  DIR *dd = opendir(dir);
  assert_non_null(dd);
  for (struct dirent *e; (e = readdir(dd));)
    if (strncmp(e->d_name, "test_data_set_", 14) == 0) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      read_pb_files(path, c);
    }
  closedir(dd);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static void test_testdata(void **state) {
  if (!has_testdata()) {
    print_message("libonnx-testdata is not installed (apt-get install libonnx-testdata): skipped\n");
    skip();
  }
  static const char *const groups[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
  Counts total = {0};
  for (size_t k = 0; k < sizeof groups / sizeof *groups; k++) {
    char dir[512];
    snprintf(dir, sizeof dir, TESTDATA "/%s", groups[k]);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name);
    assert_true(n > 0);
    Counts c = {0};
    for (int i = 0; i < n; i++) {
      if (list[i]->d_name[0] != '.') {
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", dir, list[i]->d_name);
        load_testdata_model(sub, &c);
      }
      free(list[i]);
    }
    free(list);
    print_message("%-18s %4d models: %4d loaded, %2d refused for their opset, %2d for another domain; "
                  "%d initializers (%d read, %d refused for their data type); %d test tensors read\n",
                  groups[k], c.models, c.loaded, c.opset, c.domain, c.initializers, c.tensors_read,
                  c.tensors_refused, c.pb_files);
    total.models += c.models, total.loaded += c.loaded, total.opset += c.opset, total.domain += c.domain;
  }
  print_message("all                %4d models: %4d loaded, %2d refused for their opset, %2d for another domain\n",
                total.models, total.loaded, total.opset, total.domain);
  assert_int_equal(total.models, total.loaded + total.opset + total.domain);
  assert_true(total.loaded > 1000);
}

/* ---- sniffing ---- */

static int sniff_yaml_tree(const char *dir, int *yes) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      n += sniff_yaml_tree(path, yes);
      continue;
    }
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 5, ".yaml") != 0) continue;
    size_t len;
    unsigned char *b = slurp(path, &len);
    assert_non_null(b);
    if (onnx_sniff(b, len)) {
      print_error("YAML file sniffed as ONNX: %s\n", path);
      (*yes)++;
    }
    n++;
    free(b);
  }
  closedir(d);
  return n;
}

static void test_sniff(void **state) {
  const char *src = getenv("CNNC_SOURCE_DIR");
  assert_non_null(src);
  char dir[1024];
  int yes = 0, n = 0;
  snprintf(dir, sizeof dir, "%s/tests", src);
  n += sniff_yaml_tree(dir, &yes);
  snprintf(dir, sizeof dir, "%s/models", src);
  n += sniff_yaml_tree(dir, &yes);
  print_message("%d YAML files of the repository: %d sniffed as ONNX\n", n, yes);
  assert_true(n > 50);
  assert_int_equal(yes, 0);
  static const struct {
    const char *s;
    size_t n;
    bool onnx;
  } cases[] = {
      {"", 0, false},
      {"\x08", 1, true},                      /* a truncated ONNX file */
      {"\x08\x07\x12\x07pytorch", 11, true},
      {"\x08\x07", 2, true},
      {"cnnc: 1\nname: m\n", 16, false},
      {"\xef\xbb\xbf" "cnnc: 1\n", 11, false}, /* UTF-8 BOM */
      {"\xff\xfe" "c\0n\0n\0c\0:\0 \0" "1\0\n\0", 18, false}, /* UTF-16LE YAML */
      {"\xfe\xff" "\0c\0n\0n\0c\0:\0 \0" "1\0\n", 18, false},
      {"\x3a\x00\x08\x07", 4, true},          /* the graph first */
      {"\x07\x08", 2, false},                 /* wire type 7 */
      {"\x88\x80\x80\x80\x80\x01", 6, false}, /* field number beyond 2^29 */
      {"\x48\x02\x00\x00\x00\x00\x00\x00{\"__metadata__\"", 23, false}, /* safetensors */
      {"\x7f" "ELF\x02\x01\x01", 7, false},
      {"\x1f\x8b\x08", 3, false},             /* gzip */
      {"\x22\x05hello\x01", 8, true},         /* domain first, a control character later */
      {"\"domain\": 1\n", 12, false},         /* text that is a well-formed field */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    bool got = onnx_sniff((const unsigned char *)cases[i].s, cases[i].n);
    if (got != cases[i].onnx) print_error("sniff case %zu: got %d\n", i, got);
    assert_int_equal(got, cases[i].onnx);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_minimal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_model_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nesting_bomb, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncations_and_flips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tensors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_int_tensors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_external, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sniff, setup, teardown),
      cmocka_unit_test_setup_teardown(test_testdata, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
