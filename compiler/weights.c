/*
 * weights.c: binds every parameter to its values.
 *
 * needs: Param.shape (shape inference); gives: every Param.data, a
 * 64-byte aligned row-major float array of exactly shape_numel(shape)
 * values, in host byte order.
 *
 * A parameter given inline in the spec already holds its floats (spec.c);
 * here they are only checked against the required shape: a flat list must
 * have exactly numel values, a nested list exactly the required shape.
 * Everything else comes from the safetensors file named by `weights:`,
 * read once.  A tensor must exist, be F32 and have the required shape.
 * Tensors nobody asks for are ignored, so a whole PyTorch state_dict
 * (num_batches_tracked and all) can be used as is.
 *
 * All problems are reported in one run: file-level ones at the `weights:`
 * entry, per-parameter ones at the parameter's loc (the layer, or the
 * inline array).
 */
#include "cnnc.h"

#include <errno.h>
#include <string.h>

typedef struct {
  Graph *g;
  StFile st;   /* parsed weights file */
  bool loaded; /* st is valid */
} Binder;

/* Reads and parses g->weights; false after reporting why not. */
static bool load_file(Binder *b) {
  Graph *g = b->g;
  size_t len;
  char *buf = read_file(g->arena, g->weights, &len);
  if (!buf) {
    error_at(g->weights_loc, "cannot read weights file '%s': %s", g->weights, strerror(errno));
    return false;
  }
  b->loaded = st_parse_named(g->arena, (const unsigned char *)buf, len, g->weights,
                             g->weights_loc, &b->st);
  return b->loaded;
}

static bool check_inline(Graph *g, Param *p) {
  int64_t numel = shape_numel(&p->shape);
  if (p->given.rank > 0 && !shape_eq(&p->given, &p->shape)) {
    error_at(p->loc, "inline %s has shape %s, expected %s", p->name, shape_str(g->arena, &p->given),
             shape_str(g->arena, &p->shape));
    return false;
  }
  if (p->count != numel) {
    error_at(p->loc, "inline %s has %lld values, expected %lld for shape %s", p->name,
             (long long)p->count, (long long)numel, shape_str(g->arena, &p->shape));
    return false;
  }
  CNNC_ASSERT(p->data || numel == 0);
  return true;
}

/* Little-endian F32 bytes to host floats, independent of host byte order. */
static void copy_f32le(float *dst, const unsigned char *src, int64_t n) {
  for (int64_t i = 0; i < n; i++, src += 4) {
    uint32_t u = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
                 (uint32_t)src[3] << 24;
    memcpy(&dst[i], &u, sizeof u);
  }
}

static bool bind_from_file(Binder *b, Param *p) {
  Graph *g = b->g;
  const StTensor *t = st_find(&b->st, p->name);
  if (!t) {
    error_at(p->loc, "missing weight '%s': no such tensor in %s", p->name, g->weights);
    return false;
  }
  bool ok = true;
  if (strcmp(t->dtype, "F32") != 0) {
    error_at(p->loc, "%s in %s: dtype %s not supported; only F32", p->name, g->weights, t->dtype);
    ok = false;
  }
  if (!shape_eq(&t->shape, &p->shape)) {
    error_at(p->loc, "%s has shape %s in %s, expected %s", p->name,
             shape_str(g->arena, &t->shape), g->weights, shape_str(g->arena, &p->shape));
    ok = false;
  }
  if (!ok) return false;
  int64_t numel = shape_numel(&p->shape);
  CNNC_ASSERT(numel >= 0 && t->nbytes == (size_t)numel * 4);
  p->data = arena_array(g->arena, (size_t)numel, sizeof(float));
  copy_f32le(p->data, t->data, numel);
  return true;
}

bool weights_bind(Graph *g) {
  int errors = diag_error_count();
  Binder b = {.g = g};
  bool file_ok = g->weights && load_file(&b);
  for (int i = 0; i < g->nparams; i++) {
    Param *p = g->params[i];
    if (p->shape.rank == 0 || shape_numel(&p->shape) < 0) continue; /* reported by shape.c */
    if (p->is_inline)
      check_inline(g, p);
    else if (!g->weights)
      error_at(p->loc, "missing weight '%s' (no inline value and no weights file)", p->name);
    else if (file_ok)
      bind_from_file(&b, p);
  }
  return diag_error_count() == errors;
}
