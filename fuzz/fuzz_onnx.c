/*
 * fuzz_onnx.c: libFuzzer target for the ONNX loading layer.
 *
 * The input is a whole .onnx file.  It is sniffed (onnx_sniff), loaded
 * (onnx_load: the wire walk, unpacking within the budget, the model
 * checks), and then every tensor the translation would read goes through
 * both accessors (onnx_tensor_floats, onnx_tensor_int64s): the
 * initializers and the TENSOR attributes (a Constant node's value among
 * them) of the graph and of every subgraph.  Elements are summed so that
 * AddressSanitizer sees every byte read.
 *
 * The model lives in a temporary directory holding one external data file,
 * w.bin (256 bytes), so that a tensor with data_location EXTERNAL and
 * location "w.bin" reaches the offset and length checks; nothing outside
 * that directory can be named (the loader refuses ".." and absolute
 * paths), and the dictionary fuzz/onnx.dict has the words for it.
 *
 * Findings, besides crashes, sanitizer reports and timeouts (each aborts):
 *   - unpacking used more memory than the wire walk counted, or ran out
 *     of the budget the walk said it would fit in (the count must be an
 *     upper bound of protobuf-c's allocations);
 *   - protobuf-c refused a file the walk accepted (the walk must find
 *     every error itself, with its offset);
 *   - an accessor's element count that does not match its shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx.h"

static char dir[] = "/tmp/cnnc_fuzz_onnx_XXXXXX";
static char model[64], wbin[64];

static void cleanup(void) {
  unlink(wbin);
  rmdir(dir);
}

static void init(void) {
  static bool done;
  if (done) return;
  done = true;
  if (!mkdtemp(dir)) abort();
  snprintf(model, sizeof model, "%s/model.onnx", dir);
  snprintf(wbin, sizeof wbin, "%s/w.bin", dir);
  FILE *f = fopen(wbin, "wb");
  if (!f) abort();
  for (int i = 0; i < 256; i++) fputc(i * 37 + 11, f);
  fclose(f);
  atexit(cleanup);
  cnnc_limits.memory = (int64_t)256 << 20;
  cnnc_limits.file_bytes = 1 << 20;
}

static volatile double sink;

static void read_tensor(OnnxModel *m, const Onnx__TensorProto *t) {
  if (!t) return;
  Loc at = onnx_loc(m->arena, m->path, "initializer", t->name);
  float *f;
  int64_t *q, n;
  Shape s;
  double sum = 0;
  bool okf = onnx_tensor_floats(m, t, at, &f, &n, &s);
  for (int64_t i = 0; okf && i < n; i++) sum += f[i];
  int64_t numel = 1;
  for (int i = 0; okf && i < s.rank; i++) numel *= s.dim[i];
  if (okf && numel != n) abort();
  bool oki = onnx_tensor_int64s(m, t, at, &q, &n, &s);
  for (int64_t i = 0; oki && i < n; i++) sum += (double)q[i];
  numel = 1;
  for (int i = 0; oki && i < s.rank; i++) numel *= s.dim[i];
  if (oki && numel != n) abort();
  if (okf && oki) abort(); /* no data type is both */
  sink = sum;
}

static void read_graph(OnnxModel *m, const Onnx__GraphProto *g) {
  for (size_t i = 0; i < g->n_initializer; i++) read_tensor(m, g->initializer[i]);
  for (size_t i = 0; i < g->n_node; i++)
    for (size_t j = 0; j < g->node[i]->n_attribute; j++) {
      const Onnx__AttributeProto *a = g->node[i]->attribute[j];
      read_tensor(m, a->t);
      for (size_t k = 0; k < a->n_tensors; k++) read_tensor(m, a->tensors[k]);
      if (a->g) read_graph(m, a->g);
      for (size_t k = 0; k < a->n_graphs; k++) read_graph(m, a->graphs[k]);
    }
}

/* Whether a line of diag is "MODEL: " + msg...; names in messages cannot
 * fake one (they are within a line, and newlines in them are escaped). */
static bool reported(const char *diag, const char *msg) {
  size_t n = strlen(model);
  for (const char *p = diag; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, model, n) == 0 && strncmp(p + n, ": ", 2) == 0 && strncmp(p + n + 2, msg, strlen(msg)) == 0)
      return true;
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  char *diag = NULL;
  size_t diaglen = 0;
  FILE *stream = open_memstream(&diag, &diaglen);
  diag_set_stream(stream);
  diag_reset();
  Arena a = {0};
  /* a copy of exactly `size` bytes, so that reads past the end are caught */
  unsigned char *buf = malloc(size ? size : 1);
  if (size) memcpy(buf, data, size);
  onnx_sniff(buf, size);
  OnnxModel *m = onnx_load(&a, model, buf, size);
  if (m) {
    if (m->used > m->estimate || m->estimate > m->budget) abort();
    read_graph(m, m->proto->graph);
  }
  fclose(stream);
  diag_set_stream(NULL);
  if (reported(diag, "error: corrupt ONNX file: protobuf-c cannot unpack it") ||
      reported(diag, "error: unpacking the file ran out of its memory budget"))
    abort();
  if (!m && diag_error_count() == 0) abort(); /* refused without a message */
  free(diag);
  free(buf);
  arena_free(&a);
  files_reset();
  return 0;
}
