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
 * read once, under the parameter's name (a constant's also under its bare
 * layer name).  A tensor must exist, be F32 and have the required shape.
 * Tensors nobody asks for are ignored, so a whole PyTorch state_dict
 * (num_batches_tracked and all) can be used as is.
 *
 * All problems are reported in one run: file-level ones at the `weights:`
 * entry, per-parameter ones at the parameter's loc (the layer, or the
 * inline array).
 *
 * With --random-weights SEED (Graph.random_weights), a parameter that is
 * neither inline nor in the file (or when there is no file, or the named
 * file does not exist) is filled with a seeded pattern instead of being an
 * error.  Each parameter gets its own splitmix64 stream, seeded from SEED
 * and its name, so its values do not depend on the other parameters and
 * are the same on every machine: the floats are computed with exact
 * operations plus at most one rounding multiply (no libm, no rand()).
 * The ranges keep deep nets sane: conv, conv_transpose, dense and linear
 * weights and biases are uniform in +-1/sqrt(fan_in) (PyTorch's default
 * init bound), batchnorm, layer_norm and instance_norm scales and
 * running_var in [0.5, 1.5), their shifts and running_mean in
 * [-0.125, 0.125), prelu slopes in [0.125, 0.375), anything else
 * (constants) in [-0.125, 0.125).
 */
#include "cnnc.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  Graph *g;
  StFile st;    /* parsed weights file */
  bool loaded;  /* st is valid */
  bool no_file; /* random weights and the named file does not exist */
  int nmissing;  /* missing parameters reported so far */
} Binder;

/* Suggestions are searched for the first few missing parameters only:
 * each search compares with every tensor of the file. */
enum { MAX_SUGGESTED = 16, MAX_NEAREST = 3 };

static bool ends_with_dotted(const char *s, const char *tail) {
  size_t ls = strlen(s), lt = strlen(tail);
  return ls > lt + 1 && s[ls - lt - 1] == '.' && strcmp(s + ls - lt, tail) == 0;
}

/* "; nearest names in FILE: 'a', 'b'" (or why there are none) for a
 * missing tensor `name`.  A name that differs only by a leading module
 * path (DataParallel's 'module.', a wrapper's 'model.') is named first. */
static const char *nearest_names(Binder *b, const char *name) {
  Arena *a = b->g->arena;
  const StFile *st = &b->st;
  for (int i = 0; i < st->ntensors; i++) {
    const char *t = st->tensors[i].name;
    if (ends_with_dotted(t, name))
      return arena_printf(a, "; the file has '%s' (its names have the prefix '%.*s')", t,
                          (int)(strlen(t) - strlen(name)), t);
    if (ends_with_dotted(name, t))
      return arena_printf(a, "; the file has '%s' (the spec's name has the prefix '%.*s')", t,
                          (int)(strlen(name) - strlen(t)), name);
  }
  int limit = (int)strlen(name) / 4;
  if (limit < 2) limit = 2;
  const char *best[MAX_NEAREST] = {0};
  int bestd[MAX_NEAREST], nbest = 0;
  for (int i = 0; i < st->ntensors; i++) {
    const char *t = st->tensors[i].name;
    int worst = nbest == MAX_NEAREST ? bestd[MAX_NEAREST - 1] - 1 : limit;
    int d = edit_distance(name, t, worst);
    if (d > worst) continue;
    int k = nbest < MAX_NEAREST ? nbest++ : MAX_NEAREST - 1;
    for (; k > 0 && bestd[k - 1] > d; k--) best[k] = best[k - 1], bestd[k] = bestd[k - 1];
    best[k] = t, bestd[k] = d;
  }
  if (!nbest)
    return arena_printf(a, " (none of its %d tensors has a similar name)", st->ntensors);
  const char *list = "";
  for (int k = 0; k < nbest; k++)
    list = arena_printf(a, "%s%s'%s'", list, k ? ", " : "", best[k]);
  return arena_printf(a, "; nearest names in the file: %s", list);
}

/* Reads and parses g->weights; false after reporting why not. */
static bool load_file(Binder *b) {
  Graph *g = b->g;
  size_t len;
  if (g->random_weights && access(g->weights, F_OK) != 0 && errno == ENOENT) {
    note_at(g->weights_loc, "weights file '%s' does not exist; --random-weights fills every "
                            "parameter that is not inline", g->weights);
    b->no_file = true;
    return false;
  }
  char *buf = file_read(g->arena, g->weights, "weights file", g->weights_loc, &len);
  if (!buf) return false;
  if (len >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0) {
    error_at(g->weights_loc, "'%s' is a zip archive, as torch.save writes it, not a safetensors file; "
                             "convert it with tools/pt2safetensors.py (see docs/export.md)", g->weights);
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
  if (!t && p->alt) t = st_find(&b->st, p->alt);
  if (!t && g->random_weights) return true; /* filled later */
  if (!t) {
    const char *hint = b->nmissing++ < MAX_SUGGESTED ? nearest_names(b, p->name) : "";
    error_at(p->loc, "missing weight '%s'%s%s%s: no such tensor in %s%s", p->name, p->alt ? " (or '" : "",
             p->alt ? p->alt : "", p->alt ? "')" : "", g->weights, hint);
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

/* ---- --random-weights ---- */

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3u;
  return h;
}

/* Values center + scale * t, t uniform in [-1, 1) on a 2^-23 grid.  With
 * center 0 the one multiply is the only rounding; otherwise scale is a
 * power of two and center + scale * t is exact in double, so the result
 * is the same with or without fused multiply-add. */
static void fill_random(const Graph *g, Param *p, double center, double scale) {
  int64_t numel = shape_numel(&p->shape);
  uint64_t state = g->random_seed ^ fnv1a64(p->name);
  splitmix64(&state);
  p->data = arena_array(g->arena, (size_t)numel, sizeof(float));
  for (int64_t i = 0; i < numel; i++) {
    int64_t k = (int64_t)(splitmix64(&state) >> 40) - (1 << 23); /* [-2^23, 2^23) */
    double t = (double)k / (double)(1 << 23);
    p->data[i] = (float)(center == 0 ? scale * t : center + scale * t);
  }
}

/* PyTorch's fan_in of a weight: dim 1 times the kernel size (for
 * conv_transpose2d that is filters/groups * kh * kw, as in PyTorch). */
static double init_bound(const Param *w) {
  int64_t fan_in = 1;
  for (int i = 1; i < w->shape.rank; i++) fan_in *= w->shape.dim[i]; /* fits: size_ok */
  return 1.0 / sqrt((double)(fan_in > 0 ? fan_in : 1));
}

static bool wants_random(const Param *p) {
  return p && !p->data && !p->is_inline && p->shape.rank > 0 && shape_numel(&p->shape) >= 0;
}

static void fill(const Graph *g, Param *p, double center, double scale) {
  if (wants_random(p)) fill_random(g, p, center, scale);
}

static void fill_node(const Graph *g, Node *n) {
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D:
  case OP_DENSE:
  case OP_LINEAR:
    if (n->weight && n->weight->shape.rank > 0) {
      double bound = init_bound(n->weight);
      fill(g, n->weight, 0, bound);
      fill(g, n->bias, 0, bound);
    }
    break;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM:
  case OP_BATCHNORM:
    fill(g, n->weight, 1, 0.5);
    fill(g, n->bias, 0, 0.125);
    fill(g, n->mean, 0, 0.125);
    fill(g, n->var, 1, 0.5);
    break;
  case OP_ACT: fill(g, n->weight, 0.25, 0.125); break;
  default: break;
  }
}

/* Every parameter still unbound after the inline values and the file. */
static void fill_missing(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) fill_node(g, &g->nodes[i]);
  for (int i = 0; i < g->nparams; i++) fill(g, g->params[i], 0, 0.125); /* owned by no node */
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
    else if (g->random_weights && (!g->weights || b.no_file))
      continue; /* filled below */
    else if (!g->weights)
      error_at(p->loc, "missing weight '%s' (no inline value and no weights file)", p->name);
    else if (file_ok)
      bind_from_file(&b, p);
  }
  if (diag_error_count() != errors) return false;
  if (g->random_weights) fill_missing(g);
  return true;
}
