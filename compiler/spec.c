/*
 * spec.c: YAML spec (format version 1, docs/format.md) -> Graph.
 *
 * needs: the spec text; gives: a Graph in topological order with every
 * node's op, name, location, inputs and attributes (fused activations
 * included, in string or mapping form), the graph's inputs and outputs, and
 * one Param per weight, bias, running mean/var (inline data bound here,
 * shapes left to shape.c).  How many inputs an op takes is checked by
 * shape.c; here `inputs:` is just a list of names.
 *
 * yaml.c loads the text as a tree of YNodes (aliases shared, counted
 * against --max-yaml-values); every node carries its 1-based line and
 * column.  The walk over the tree never stops at the first problem: each
 * section reports what is wrong with it and carries on with what it could
 * read, so one run shows every error (the caller gets NULL if there was
 * any).  Layers, inputs and outputs go to the graph builder (build.c),
 * which resolves names, orders the nodes and reports cycles.
 *
 * Names of layers and inputs are any non-empty string, exactly as written
 * (PyTorch's module names "0", "layer1.0.conv1"), and parameters are
 * named "<layer>.<weight|bias|...>", so a state_dict fits as is; the C
 * identifiers of the generated API come from names.c.
 *
 * Robustness: the tree may share nodes through aliases, so no walk here
 * recurses more than a fixed depth, an aliased inline array is read once
 * and shared, inline arrays are bounded before they are read, and every
 * integer is range-checked.
 */
#include "cnnc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAX_INLINE_VALUES = 1 << 24, /* per parameter; larger tensors belong in a weights file */
  MAX_NAME_BYTES = 4096,       /* layer, input and output names */
};

typedef enum { K_NULL, K_BOOL, K_INT, K_FLOAT, K_STRING, K_SEQ, K_MAP } Kind;

/* Inline data already read, by YAML node: an alias of an array is the
 * same array, parsed once and shared. */
typedef struct {
  float *data;
  int64_t count;
  Shape given;
} Inline;

typedef struct {
  Arena *a;
  const char *file;
  Graph *g;
  Builder *b;
  bool first_layer;  /* no layer parsed yet */
} P;

/* ---- locations and scalar helpers ---- */

static Loc loc_of(P *p, YNode *n) { return (Loc){p->file, n->line, n->col}; }


static const char *sval(YNode *n) { return n->s; }
static size_t slen(YNode *n) { return n->len; }

static bool scalar_is(YNode *n, const char *s) {
  return n && n->type == Y_SCALAR && slen(n) == strlen(s) && memcmp(sval(n), s, slen(n)) == 0;
}

static bool any_of(const char *v, const char *const *list) {
  for (; *list; list++)
    if (strcmp(v, *list) == 0) return true;
  return false;
}

static bool is_int_text(const char *s) {
  if (*s == '+' || *s == '-') s++;
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

static bool is_float_text(const char *s) {
  if (*s == '+' || *s == '-') s++;
  int digits = 0;
  while (*s >= '0' && *s <= '9') s++, digits++;
  if (*s == '.') {
    s++;
    while (*s >= '0' && *s <= '9') s++, digits++;
  }
  if (!digits) return false;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9') s++;
  }
  return *s == 0;
}

/* YAML 1.2 core schema resolution of plain scalars; quoted ones are strings. */
static Kind kind_of(YNode *n) {
  if (n->type == Y_SEQ) return K_SEQ;
  if (n->type == Y_MAP) return K_MAP;
  if (!n->plain) return K_STRING;
  const char *v = sval(n);
  if (strlen(v) != slen(n)) return K_STRING; /* embedded NUL */
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
  static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
  if (any_of(v, nulls)) return K_NULL;
  if (any_of(v, bools)) return K_BOOL;
  if (is_int_text(v)) return K_INT;
  if (is_float_text(v)) return K_FLOAT;
  return K_STRING;
}

/* A printable, bounded copy of a scalar for messages. */
/* A bounded copy of a scalar for messages, cut at a character boundary
 * (diagnostics escape what is not printable). */
static const char *show(P *p, YNode *n) {
  size_t len = utf8_prefix(sval(n), slen(n), 40);
  char *s = arena_alloc(p->a, len + 4);
  memcpy(s, sval(n), len);
  for (size_t i = 0; i < len; i++)
    if (!s[i]) s[i] = '?'; /* an embedded NUL */
  if (len < slen(n)) memcpy(s + len, "...", 3);
  return s;
}

static const char *describe(P *p, YNode *n) {
  switch (kind_of(n)) {
  case K_NULL: return "null";
  case K_BOOL: return arena_printf(p->a, "boolean %s", show(p, n));
  case K_INT: return arena_printf(p->a, "integer %s", show(p, n));
  case K_FLOAT: return arena_printf(p->a, "number %s", show(p, n));
  case K_STRING: return arena_printf(p->a, "string '%s'", show(p, n));
  case K_SEQ: return "a list";
  case K_MAP: return "a mapping";
  }
  return "?";
}

/* ---- typed values; each reports at the value and returns false ---- */

static bool get_int(P *p, YNode *v, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  if (kind_of(v) != K_INT) {
    error_at(loc_of(p, v), "'%s' must be an integer, got %s", key, describe(p, v));
    return false;
  }
  errno = 0;
  long long x = strtoll(sval(v), NULL, 10);
  if (errno == ERANGE || x > hi) {
    error_at(loc_of(p, v), "'%s' is too large: %s (at most %lld)", key, show(p, v), (long long)hi);
    return false;
  }
  if (x < lo) {
    if (lo == 0 || lo == 1)
      error_at(loc_of(p, v), "'%s' must be %s, got %lld", key, lo ? "positive" : "non-negative", x);
    else
      error_at(loc_of(p, v), "'%s' must be between %lld and %lld, got %lld", key, (long long)lo,
               (long long)hi, x);
    return false;
  }
  *out = x;
  return true;
}

static bool get_i32(P *p, YNode *v, const char *key, int lo, int *out) {
  int64_t x;
  if (!get_int(p, v, key, lo, INT_MAX, &x)) return false;
  *out = (int)x;
  return true;
}

static bool get_bool(P *p, YNode *v, const char *key, bool *out) {
  if (kind_of(v) != K_BOOL) {
    error_at(loc_of(p, v), "'%s' must be true or false, got %s", key, describe(p, v));
    return false;
  }
  *out = sval(v)[0] == 't' || sval(v)[0] == 'T';
  return true;
}

static bool get_str(P *p, YNode *v, const char *key, const char **out) {
  if (kind_of(v) == K_STRING && strlen(sval(v)) != slen(v)) {
    error_at(loc_of(p, v), "'%s' must not contain NUL characters", key);
    return false;
  }
  if (kind_of(v) != K_STRING) {
    error_at(loc_of(p, v), "'%s' must be a string, got %s", key, describe(p, v));
    return false;
  }
  *out = arena_strdup(p->a, sval(v));
  return true;
}

static int seq_len(YNode *v) { return (int)v->len; }
static YNode *seq_at(P *p, YNode *v, int i) { return v->kids[i]; }

/* An int or a list of `n` ints (e.g. kernel: 3 or [3, 5]). */
static bool get_ints(P *p, YNode *v, const char *key, int lo, int n, int *out) {
  if (v->type == Y_SEQ) {
    if (seq_len(v) != n) {
      error_at(loc_of(p, v), "'%s' must be an integer or a list of %d integers, got a list of %d",
               key, n, seq_len(v));
      return false;
    }
    bool ok = true;
    for (int i = 0; i < n; i++) ok &= get_i32(p, seq_at(p, v, i), key, lo, &out[i]);
    return ok;
  }
  if (kind_of(v) != K_INT) {
    error_at(loc_of(p, v), "'%s' must be an integer or a list of %d integers, got %s", key, n,
             describe(p, v));
    return false;
  }
  if (!get_i32(p, v, key, lo, &out[0])) return false;
  for (int i = 1; i < n; i++) out[i] = out[0];
  return true;
}

/* Layer and input names: any non-empty string (a YAML scalar, so `name: 0`
 * is the name "0"); names.c derives the C identifiers the header needs. */
static bool get_name(P *p, YNode *v, const char *key, const char **out) {
  if (v->type != Y_SCALAR || kind_of(v) == K_NULL || slen(v) == 0) {
    error_at(loc_of(p, v), "%s must be a non-empty string, got %s", key, describe(p, v));
    return false;
  }
  if (strlen(sval(v)) != slen(v)) {
    error_at(loc_of(p, v), "%s must not contain NUL characters", key);
    return false;
  }
  if (slen(v) > MAX_NAME_BYTES) {
    error_at(loc_of(p, v), "%s is longer than %d bytes", key, MAX_NAME_BYTES);
    return false;
  }
  *out = arena_strdup(p->a, sval(v));
  return true;
}

/* The model name prefixes every generated symbol: a C identifier (names.c). */
static void get_model_name(P *p, YNode *v, const char **out) {
  const char *s;
  if (get_str(p, v, "name", &s) && names_check_model(s, loc_of(p, v))) *out = s;
}

/* ---- mappings ---- */

static YNode *map_get(P *p, YNode *m, const char *key, Loc *key_loc) {
  for (uint32_t i = 0; i < m->len; i++) {
    YNode *k = m->kids[2 * i];
    if (scalar_is(k, key)) {
      if (key_loc) *key_loc = loc_of(p, k);
      return m->kids[2 * i + 1];
    }
  }
  return NULL;
}

static bool has_word(const char *list, const char *w, size_t n) {
  for (const char *s = list; *s;) {
    while (*s == ' ') s++;
    const char *e = s;
    while (*e && *e != ' ') e++;
    if ((size_t)(e - s) == n && n && memcmp(s, w, n) == 0) return true;
    s = e;
  }
  return false;
}

/* The word of space-separated `list` closest to `got`, if close enough. */
static const char *did_you_mean(P *p, const char *got, const char *list) {
  const char *best = NULL;
  int bestd = 3;
  char word[64];
  for (const char *s = list; *s;) {
    while (*s == ' ') s++;
    const char *e = s;
    while (*e && *e != ' ') e++;
    size_t n = (size_t)(e - s);
    if (n && n < sizeof word) {
      memcpy(word, s, n);
      word[n] = 0;
      int d = edit_distance(got, word, bestd);
      if (d < bestd && d < (int)n) bestd = d, best = arena_strdup(p->a, word);
    }
    s = e;
  }
  return best;
}

/* "a, b, c" from a space-separated list. */
static const char *word_list(P *p, const char *list) {
  const char *out = "";
  for (const char *s = list; *s;) {
    while (*s == ' ') s++;
    const char *e = s;
    while (*e && *e != ' ') e++;
    if (e > s) out = arena_printf(p->a, "%s%s%.*s", out, *out ? ", " : "", (int)(e - s), s);
    s = e;
  }
  return out;
}

/* "; did you mean 'x'?" or " (<what>: a, b, c)". */
static const char *suggest(P *p, const char *got, const char *list, const char *what) {
  const char *best = did_you_mean(p, got, list);
  if (best) return arena_printf(p->a, "; did you mean '%s'?", best);
  return arena_printf(p->a, " (%s: %s)", what, word_list(p, list));
}

/* Reports non-string, unknown and duplicate keys of mapping `m`. */
static void check_keys(P *p, YNode *m, const char *allowed, const char *where) {
  for (uint32_t e = 0; e < m->len; e++) {
    YNode *k = m->kids[2 * e];
    if (kind_of(k) != K_STRING && kind_of(k) != K_BOOL && kind_of(k) != K_NULL) {
      error_at(loc_of(p, k), "keys must be strings, got %s", describe(p, k));
      continue;
    }
    if (k->type != Y_SCALAR) continue;
    const char *s = sval(k);
    if (!has_word(allowed, s, strlen(s)) || strlen(s) != slen(k)) {
      error_at(loc_of(p, k), "unknown key '%s' in %s%s", show(p, k), where,
               suggest(p, show(p, k), allowed, "expected one of"));
      continue;
    }
    for (uint32_t f = 0; f < e; f++) {
      YNode *k0 = m->kids[2 * f];
      if (scalar_is(k0, s)) {
        error_at(loc_of(p, k), "duplicate key '%s' in %s", s, where);
        note_at(loc_of(p, k0), "'%s' first given here", s);
        break;
      }
    }
  }
}

static YNode *require(P *p, YNode *m, const char *key, const char *where) {
  YNode *v = map_get(p, m, key, NULL);
  if (!v) error_at(loc_of(p, m), "missing required key '%s' in %s", key, where);
  return v;
}

/* ---- parameters ---- */

static Param *new_param(P *p, Node *n, const char *suffix) {
  Param *pr = arena_alloc(p->a, sizeof *pr);
  pr->name = arena_printf(p->a, "%s.%s", n->name, suffix);
  pr->loc = n->loc;
  VEC_PUSH(p->a, p->g->params, p->g->nparams, p->g->capparams, pr);
  return pr;
}

static bool get_float(P *p, YNode *v, const char *key, float *out) {
  Kind k = kind_of(v);
  if (k != K_INT && k != K_FLOAT) {
    error_at(loc_of(p, v), "inline '%s' values must be numbers, got %s", key, describe(p, v));
    return false;
  }
  double d = strtod(sval(v), NULL);
  if (!isfinite(d) || fabs(d) > FLT_MAX) {
    error_at(loc_of(p, v), "inline '%s' value %s is out of float32 range", key, show(p, v));
    return false;
  }
  *out = (float)d;
  return true;
}

/* A number attribute (epsilon, alpha, ...) within [lo, hi], as the double written. */
static bool get_double(P *p, YNode *v, const char *key, double lo, double hi, double *out) {
  Kind k = kind_of(v);
  if (k != K_INT && k != K_FLOAT) {
    error_at(loc_of(p, v), "'%s' must be a number, got %s", key, describe(p, v));
    return false;
  }
  double d = strtod(sval(v), NULL);
  if (!isfinite(d) || fabs(d) > FLT_MAX) {
    error_at(loc_of(p, v), "'%s' is out of float32 range: %s", key, show(p, v));
    return false;
  }
  if (d < lo || d > hi) {
    if (hi >= FLT_MAX)
      error_at(loc_of(p, v), "'%s' must be %s, got %s", key, lo > 0 ? "positive" : "non-negative", show(p, v));
    else
      error_at(loc_of(p, v), "'%s' must be between %g and %g, got %s", key, lo, hi, show(p, v));
    return false;
  }
  *out = d;
  return true;
}

/* The same, rounded to float. */
static bool get_num(P *p, YNode *v, const char *key, double lo, double hi, float *out) {
  double d;
  if (!get_double(p, v, key, lo, hi, &d)) return false;
  *out = (float)d;
  return true;
}

/* One of the space-separated `words`, as its index. */
static bool get_word(P *p, YNode *v, const char *key, const char *words, int *out) {
  const char *s;
  if (!get_str(p, v, key, &s)) return false;
  int i = 0;
  for (const char *w = words; *w; i++) {
    while (*w == ' ') w++;
    const char *e = w;
    while (*e && *e != ' ') e++;
    if ((size_t)(e - w) == strlen(s) && memcmp(w, s, strlen(s)) == 0) {
      *out = i;
      return true;
    }
    w = e;
  }
  error_at(loc_of(p, v), "unknown %s '%s'%s", key, show(p, v), suggest(p, s, words, "expected one of"));
  return false;
}

/* Reads a (possibly nested) row-major array whose shape along each level is
 * `dims` (from the first elements).  Stops at the first problem. */
static bool read_values(P *p, YNode *v, const char *key, const int64_t *dims, int depth,
                        int rank, float *out, int64_t *pos) {
  if (v->type != Y_SEQ) {
    error_at(loc_of(p, v), "inline '%s' is not rectangular: expected a list of %lld here, got %s",
             key, (long long)dims[depth], describe(p, v));
    return false;
  }
  if (seq_len(v) != dims[depth]) {
    error_at(loc_of(p, v), "inline '%s' is not rectangular: expected %lld items here, got %d", key,
             (long long)dims[depth], seq_len(v));
    return false;
  }
  for (int i = 0; i < seq_len(v); i++) {
    YNode *it = seq_at(p, v, i);
    if (depth + 1 < rank) {
      if (!read_values(p, it, key, dims, depth + 1, rank, out, pos)) return false;
    } else if (!get_float(p, it, key, &out[(*pos)++])) {
      return false;
    }
  }
  return true;
}

static void parse_inline(P *p, YNode *v, const char *key, Param *pr) {
  if (v->type != Y_SEQ) {
    error_at(loc_of(p, v), "inline '%s' must be a list of numbers, got %s", key, describe(p, v));
    return;
  }
  Inline *in = ((YColl *)v)->user;
  if (!in) { /* first use of this array (an alias reuses it) */
    int64_t dims[MAX_RANK];
    int rank = 0;
    int64_t count = 1;
    YNode *n = v;
    while (n && n->type == Y_SEQ) {
      if (rank == MAX_RANK) {
        error_at(loc_of(p, v), "inline '%s' is nested deeper than %d levels", key, MAX_RANK);
        return;
      }
      dims[rank++] = seq_len(n);
      if (!ck_mul(count, seq_len(n), &count) || count > MAX_INLINE_VALUES) {
        error_at(loc_of(p, v), "inline '%s' has more than %d values; use a weights file", key,
                 MAX_INLINE_VALUES);
        return;
      }
      n = seq_len(n) ? seq_at(p, n, 0) : NULL;
    }
    float *data = arena_array(p->a, (size_t)(count ? count : 1), sizeof(float));
    int64_t pos = 0;
    if (!read_values(p, v, key, dims, 0, rank, data, &pos)) return;
    in = arena_alloc(p->a, sizeof *in);
    *in = (Inline){.data = data, .count = count};
    if (rank > 1) {
      in->given.rank = rank;
      memcpy(in->given.dim, dims, sizeof(int64_t) * (size_t)rank);
    }
    ((YColl *)v)->user = in;
  }
  pr->is_inline = true;
  pr->data = in->data;
  pr->count = in->count;
  pr->given = in->given;
  pr->loc = loc_of(p, v);
}

/* `bias: true|false` is the flag; `bias: [..]` is inline data (and true). */
static void parse_bias_flag(P *p, YNode *m, bool *has_bias, YNode **inline_bias) {
  *has_bias = true;
  *inline_bias = NULL;
  YNode *v = map_get(p, m, "bias", NULL);
  if (!v) return;
  if (v->type == Y_SEQ)
    *inline_bias = v;
  else if (kind_of(v) == K_BOOL)
    get_bool(p, v, "bias", has_bias);
  else
    error_at(loc_of(p, v), "'bias' must be true, false or a list of values, got %s", describe(p, v));
}

/* Parameter `<layer>.<key>`, with inline data when the layer gives `key`. */
static Param *param(P *p, YNode *m, Node *n, const char *key) {
  Param *pr = new_param(p, n, key);
  YNode *v = map_get(p, m, key, NULL);
  if (v) parse_inline(p, v, key, pr);
  return pr;
}

static void make_params(P *p, YNode *m, Node *n, bool has_bias, YNode *inline_bias) {
  if (!n->name) return;
  n->weight = param(p, m, n, "weight");
  if (has_bias) {
    n->bias = new_param(p, n, "bias");
    if (inline_bias) parse_inline(p, inline_bias, "bias", n->bias);
  }
}

/* ---- activations ---- */

/* The keys an activation takes besides `op` (as a layer also name, input,
 * inputs). */
static const char *act_keys(ActKind k) {
  switch (k) {
  case ACT_LEAKY_RELU:
  case ACT_ELU: return "alpha";
  case ACT_SELU: return "alpha gamma";
  case ACT_HARDSIGMOID: return "alpha beta";
  case ACT_SOFTPLUS: return "beta";
  case ACT_POW: return "exponent";
  case ACT_SCALE: return "scale offset";
  case ACT_CLIP: return "min max";
  case ACT_PRELU: return "num_parameters weight";
  default: return "";
  }
}

/* An optional number key of mapping m (NULL for the string form) into *out. */
static void opt_num(P *p, YNode *m, const char *key, float *out) {
  YNode *v;
  if (m && (v = map_get(p, m, key, NULL))) get_num(p, v, key, -FLT_MAX, FLT_MAX, out);
}

Act spec_act_default(ActKind k) {
  switch (k) {
  case ACT_LEAKY_RELU: return (Act){k, 0.01f, 0};
  case ACT_ELU: return (Act){k, 1.0f, 0};
  case ACT_SELU: return (Act){k, 1.6732632423543772f, 1.0507009873554805f}; /* torch.nn.SELU's constants */
  case ACT_HARDSIGMOID: return (Act){k, 1.0f / 6, 0.5f}; /* torch.nn.Hardsigmoid: relu6(x + 3) / 6 */
  case ACT_SOFTPLUS: return (Act){k, 1, 0};
  case ACT_SCALE: return (Act){k, 1, 0};
  case ACT_CLIP: return (Act){k, -INFINITY, INFINITY}; /* no bounds */
  default: return (Act){k, 0, 0};
  }
}

/* Defaults, then the activation's own keys from mapping `m` (a layer or a
 * fused `{op: ...}`); m NULL for the string form.  `at` is where a missing
 * clip bound is reported. */
static void parse_act_params(P *p, YNode *m, Act *act, YNode *at) {
  YNode *v, *vmin = NULL, *vmax = NULL;
  *act = spec_act_default(act->kind);
  switch (act->kind) {
  case ACT_LEAKY_RELU:
  case ACT_ELU:
    opt_num(p, m, "alpha", &act->alpha);
    break;
  case ACT_SELU:
    opt_num(p, m, "alpha", &act->alpha);
    opt_num(p, m, "gamma", &act->beta);
    break;
  case ACT_HARDSIGMOID:
    opt_num(p, m, "alpha", &act->alpha);
    opt_num(p, m, "beta", &act->beta);
    break;
  case ACT_SOFTPLUS:
    if (m && (v = map_get(p, m, "beta", NULL))) get_num(p, v, "beta", FLT_MIN, FLT_MAX, &act->alpha);
    break;
  case ACT_SCALE:
    opt_num(p, m, "scale", &act->alpha);
    opt_num(p, m, "offset", &act->beta);
    break;
  case ACT_POW:
    if (!m || !(v = map_get(p, m, "exponent", NULL)))
      error_at(loc_of(p, at), "pow needs 'exponent'%s", m ? "" : "; write e.g. activation: {op: pow, exponent: 2}");
    else
      get_num(p, v, "exponent", -FLT_MAX, FLT_MAX, &act->alpha);
    break;
  case ACT_CLIP:
    if (m && (vmin = map_get(p, m, "min", NULL)) && !get_num(p, vmin, "min", -FLT_MAX, FLT_MAX, &act->alpha))
      return;
    if (m && (vmax = map_get(p, m, "max", NULL)) && !get_num(p, vmax, "max", -FLT_MAX, FLT_MAX, &act->beta))
      return;
    if (!vmin && !vmax)
      error_at(loc_of(p, at), "clip needs 'min', 'max' or both%s",
               m ? "" : "; write e.g. activation: {op: clip, min: 0, max: 6}");
    else if (act->alpha > act->beta)
      error_at(loc_of(p, vmax), "clip 'min' (%g) is greater than 'max' (%g)", act->alpha, act->beta);
    break;
  default: break;
  }
}

static const char *fusable_acts(P *p) {
  char *list = arena_strdup(p->a, "");
  for (int i = 0; i < ACT_COUNT; i++)
    if (i != ACT_PRELU) list = arena_printf(p->a, "%s%s ", list, act_names[i]);
  return list;
}

/* `activation: name` or `activation: {op: name, <its keys>}`. */
static void parse_activation(P *p, YNode *m, Node *n) {
  YNode *v = map_get(p, m, "activation", NULL), *namev = v;
  const char *s;
  if (!v) return;
  if (v->type == Y_MAP) {
    namev = require(p, v, "op", "the activation mapping");
    if (!namev) return;
  } else if (kind_of(v) != K_STRING) {
    error_at(loc_of(p, v), "'activation' must be an activation name or a mapping {op: name, ...}, "
                           "got %s", describe(p, v));
    return;
  }
  if (!get_str(p, namev, "activation", &s)) return;
  ActKind k = act_lookup(s);
  if (k == ACT_COUNT) {
    error_at(loc_of(p, namev), "unknown activation '%s'%s", show(p, namev),
             suggest(p, s, fusable_acts(p), "known activations"));
    return;
  }
  if (k == ACT_PRELU) {
    error_at(loc_of(p, namev), "prelu cannot be fused (it has a weight); use a layer {op: prelu}");
    return;
  }
  n->act.kind = k;
  if (v->type == Y_MAP)
    check_keys(p, v, arena_printf(p->a, "op %s", act_keys(k)),
               arena_printf(p->a, "activation '%s' of layer '%s'", s, n->name ? n->name : "?"));
  parse_act_params(p, v->type == Y_MAP ? v : NULL, &n->act, v);
}

/* An activation layer: `{op: leaky_relu, alpha: 0.2}`, `{op: prelu, ...}`. */
static void parse_act_layer(P *p, YNode *m, Node *n) {
  parse_act_params(p, m, &n->act, m);
  if (n->act.kind != ACT_PRELU) return;
  YNode *v;
  n->a.num_parameters = 1;
  if ((v = map_get(p, m, "num_parameters", NULL)))
    get_i32(p, v, "num_parameters", 1, &n->a.num_parameters);
  if (n->name) n->weight = param(p, m, n, "weight");
}

/* ---- per-op attributes ---- */

/* padding: int | [ph, pw] | [top, left, bottom, right], non-negative, into
 * pad[4] = top, left, bottom, right.  `more` names other accepted forms. */
static bool get_pad4(P *p, YNode *v, const char *more, int *pad) {
  int q[4];
  if (v->type == Y_SEQ && seq_len(v) == 4) {
    bool ok = true;
    for (int i = 0; i < 4; i++) ok &= get_i32(p, seq_at(p, v, i), "padding", 0, &q[i]);
    if (ok) memcpy(pad, q, sizeof q);
    return ok;
  }
  if ((v->type == Y_SEQ && seq_len(v) != 2) ||
      (v->type != Y_SEQ && kind_of(v) != K_INT)) {
    error_at(loc_of(p, v), "'padding' must be an integer or a list of 2 or 4 integers%s, got %s%s",
             more, describe(p, v),
             v->type == Y_SEQ ? arena_printf(p->a, " of %d", seq_len(v)) : "");
    return false;
  }
  if (!get_ints(p, v, "padding", 0, 2, q)) return false;
  pad[0] = pad[2] = q[0];
  pad[1] = pad[3] = q[1];
  return true;
}

/* padding: int | [ph, pw], symmetric (conv_transpose2d). */
static bool get_pad2(P *p, YNode *v, int *pad) {
  int q[2];
  if (!get_ints(p, v, "padding", 0, 2, q)) return false;
  pad[0] = pad[2] = q[0];
  pad[1] = pad[3] = q[1];
  return true;
}

/* padding: int | [ph, pw] | [top, left, bottom, right] | same | valid */
static void parse_conv_padding(P *p, YNode *v, ConvAttr *c, bool geometry_ok) {
  if (v->type == Y_SCALAR && kind_of(v) == K_STRING) {
    if (scalar_is(v, "valid")) return;
    if (!scalar_is(v, "same")) {
      error_at(loc_of(p, v), "'padding' must be an integer or a list of 2 or 4 integers, 'same' or "
                             "'valid', got %s", describe(p, v));
      return;
    }
    if (!geometry_ok) return;
    if (c->stride[0] != 1 || c->stride[1] != 1) {
      error_at(loc_of(p, v), "padding 'same' needs stride 1 (as in PyTorch), got stride %dx%d",
               c->stride[0], c->stride[1]);
      return;
    }
    for (int i = 0; i < 2; i++) {
      int64_t total = (int64_t)c->dilation[i] * (c->kernel[i] - 1);
      if (total > INT_MAX) {
        error_at(loc_of(p, v), "padding 'same' is too large for this kernel and dilation");
        return;
      }
      c->pad[i] = (int)(total / 2); /* PyTorch puts the odd one on bottom/right */
      c->pad[i + 2] = (int)(total - total / 2);
    }
    return;
  }
  get_pad4(p, v, ", 'same' or 'valid'", c->pad);
}

/* PyTorch: "output padding must be smaller than either stride or dilation". */
static void parse_output_padding(P *p, YNode *v, ConvAttr *c, bool geometry_ok) {
  if (!get_ints(p, v, "output_padding", 0, 2, c->output_padding) || !geometry_ok) return;
  for (int i = 0; i < 2; i++)
    if (c->output_padding[i] >= c->stride[i] && c->output_padding[i] >= c->dilation[i]) {
      error_at(loc_of(p, v), "'output_padding' %dx%d is too large: each must be smaller than the "
                             "stride (%dx%d) or the dilation (%dx%d)",
               c->output_padding[0], c->output_padding[1], c->stride[0], c->stride[1],
               c->dilation[0], c->dilation[1]);
      return;
    }
}

/* conv2d and conv_transpose2d. */
static void parse_conv(P *p, YNode *m, Node *n) {
  ConvAttr *c = &n->a.conv;
  bool transpose = n->op == OP_CONV_TRANSPOSE2D;
  *c = (ConvAttr){.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
  const char *where = arena_printf(p->a, "%s layer '%s'", op_name(n->op), n->name ? n->name : "?");
  YNode *v;
  bool ok = true;
  if ((v = require(p, m, "filters", where))) get_i32(p, v, "filters", 1, &c->filters);
  if ((v = require(p, m, "kernel", where)))
    ok &= get_ints(p, v, "kernel", 1, 2, c->kernel);
  else
    ok = false;
  if ((v = map_get(p, m, "stride", NULL))) ok &= get_ints(p, v, "stride", 1, 2, c->stride);
  if ((v = map_get(p, m, "dilation", NULL))) ok &= get_ints(p, v, "dilation", 1, 2, c->dilation);
  if ((v = map_get(p, m, "padding", NULL))) {
    if (transpose)
      get_pad2(p, v, c->pad);
    else
      parse_conv_padding(p, v, c, ok);
  }
  if (transpose && (v = map_get(p, m, "output_padding", NULL))) parse_output_padding(p, v, c, ok);
  if ((v = map_get(p, m, "groups", NULL)) && get_i32(p, v, "groups", 1, &c->groups) &&
      c->filters > 0 && c->filters % c->groups != 0)
    error_at(loc_of(p, v), "'groups' (%d) must divide 'filters' (%d)", c->groups, c->filters);
  YNode *inline_bias;
  parse_bias_flag(p, m, &c->has_bias, &inline_bias);
  parse_activation(p, m, n);
  make_params(p, m, n, c->has_bias, inline_bias);
}

/* Every window must overlap the input: each side's padding is smaller
 * than the (dilated) kernel.  PyTorch asks for at most half the kernel on
 * both sides alike; ONNX's pads may be more, and uneven (auto_pad
 * SAME_UPPER), so the format takes what cnnc computes, as ONNX does. */
static void check_pool_padding(P *p, YNode *v, const PoolAttr *q) {
  static const char *const side[4] = {"top", "left", "bottom", "right"};
  for (int i = 0; i < 4; i++) {
    int64_t extent = (int64_t)q->dilation[i % 2] * (q->kernel[i % 2] - 1) + 1;
    if (q->pad[i] >= extent) {
      error_at(loc_of(p, v), "pooling padding %d (%s) must be smaller than the kernel (%lld%s), so that every window "
                             "overlaps the input", q->pad[i], side[i], (long long)extent,
               q->dilation[i % 2] > 1 ? " with dilation" : "");
      return;
    }
  }
}

static void parse_pool(P *p, YNode *m, Node *n) {
  PoolAttr *q = &n->a.pool;
  *q = (PoolAttr){.dilation = {1, 1}, .count_include_pad = true};
  const char *where = arena_printf(p->a, "%s layer '%s'", op_name(n->op), n->name ? n->name : "?");
  YNode *v;
  bool kernel_ok = false;
  if ((v = require(p, m, "kernel", where))) kernel_ok = get_ints(p, v, "kernel", 1, 2, q->kernel);
  if ((v = map_get(p, m, "stride", NULL)))
    get_ints(p, v, "stride", 1, 2, q->stride);
  else
    memcpy(q->stride, q->kernel, sizeof q->stride);
  if (n->op == OP_MAXPOOL2D && (v = map_get(p, m, "dilation", NULL)))
    get_ints(p, v, "dilation", 1, 2, q->dilation);
  if ((v = map_get(p, m, "padding", NULL)) && get_pad4(p, v, "", q->pad) && kernel_ok) check_pool_padding(p, v, q);
  if ((v = map_get(p, m, "ceil_mode", NULL))) get_bool(p, v, "ceil_mode", &q->ceil_mode);
  if ((v = map_get(p, m, "count_include_pad", NULL)))
    get_bool(p, v, "count_include_pad", &q->count_include_pad);
}

static void parse_dense(P *p, YNode *m, Node *n) {
  const char *where = arena_printf(p->a, "%s layer '%s'", op_name(n->op), n->name ? n->name : "?");
  YNode *v;
  if ((v = require(p, m, "units", where))) get_i32(p, v, "units", 1, &n->a.dense.units);
  YNode *inline_bias;
  parse_bias_flag(p, m, &n->a.dense.has_bias, &inline_bias);
  parse_activation(p, m, n);
  make_params(p, m, n, n->a.dense.has_bias, inline_bias);
}

static void parse_batchnorm(P *p, YNode *m, Node *n) {
  YNode *v;
  n->a.bn.epsilon = 1e-5f;
  if ((v = map_get(p, m, "epsilon", NULL))) get_num(p, v, "epsilon", 0, FLT_MAX, &n->a.bn.epsilon);
  if (!n->name) return;
  n->weight = param(p, m, n, "weight");
  n->bias = param(p, m, n, "bias");
  n->mean = param(p, m, n, "running_mean");
  n->var = param(p, m, n, "running_var");
}

static void parse_pad(P *p, YNode *m, Node *n) {
  PadAttr *q = &n->a.pad;
  YNode *v, *value = map_get(p, m, "value", NULL);
  int mode = 0;
  if ((v = require(p, m, "padding", arena_printf(p->a, "pad layer '%s'", n->name ? n->name : "?"))))
    get_pad4(p, v, "", q->pad);
  if ((v = map_get(p, m, "mode", NULL)) && get_word(p, v, "mode", "constant reflect edge replicate", &mode))
    q->mode = mode == 0 ? PAD_CONSTANT : mode == 1 ? PAD_REFLECT : PAD_EDGE;
  if (value && q->mode != PAD_CONSTANT)
    error_at(loc_of(p, value), "'value' only applies to mode 'constant'");
  else if (value)
    get_num(p, value, "value", -FLT_MAX, FLT_MAX, &q->value);
}

/* scale: a number or [h, w] (positive); size: [h, w] (positive integers). */
static void parse_upsample_size(P *p, YNode *m, Node *n, const char *where) {
  UpsampleAttr *u = &n->a.upsample;
  YNode *scale = map_get(p, m, "scale", NULL), *size = map_get(p, m, "size", NULL);
  if (!scale && !size) {
    error_at(loc_of(p, m), "%s needs 'scale' or 'size'", where);
    return;
  }
  if (scale && size) {
    error_at(loc_of(p, size), "%s: give 'scale' or 'size', not both", where);
    return;
  }
  if (size) {
    if (size->type != Y_SEQ || seq_len(size) != 2) {
      error_at(loc_of(p, size), "'size' must be a list [h, w], got %s", describe(p, size));
      return;
    }
    for (int i = 0; i < 2; i++) get_int(p, seq_at(p, size, i), "size", 1, cnnc_limits.dim, &u->size[i]);
    return;
  }
  bool list = scale->type == Y_SEQ;
  if (list && seq_len(scale) != 2) {
    error_at(loc_of(p, scale), "'scale' must be a number or a list [h, w], got a list of %d", seq_len(scale));
    return;
  }
  if (!list) {
    if (get_double(p, scale, "scale", FLT_MIN, FLT_MAX, &u->scale[0])) u->scale[1] = u->scale[0];
    return;
  }
  for (int i = 0; i < 2; i++) get_double(p, seq_at(p, scale, i), "scale", FLT_MIN, FLT_MAX, &u->scale[i]);
}

static void parse_upsample(P *p, YNode *m, Node *n) {
  UpsampleAttr *u = &n->a.upsample;
  const char *where = arena_printf(p->a, "upsample layer '%s'", n->name ? n->name : "?");
  YNode *v, *ac = map_get(p, m, "align_corners", NULL), *cm = map_get(p, m, "coordinate_mode", NULL);
  int mode = 0, k;
  parse_upsample_size(p, m, n, where);
  if ((v = map_get(p, m, "mode", NULL))) get_word(p, v, "mode", "nearest bilinear linear", &mode);
  u->bilinear = mode >= 1;
  /* PyTorch's defaults: nearest is asymmetric + floor, bilinear half_pixel */
  u->coord = u->bilinear ? COORD_HALF_PIXEL : COORD_ASYMMETRIC;
  u->nearest = NEAREST_FLOOR;
  bool align = false;
  if (ac && cm) error_at(loc_of(p, ac), "give 'align_corners' or 'coordinate_mode', not both");
  else if (ac && !u->bilinear) error_at(loc_of(p, ac), "'align_corners' only applies to mode 'bilinear'");
  else if (ac && get_bool(p, ac, "align_corners", &align) && align) u->coord = COORD_ALIGN_CORNERS;
  if (cm && get_word(p, cm, "coordinate_mode", "half_pixel pytorch_half_pixel align_corners asymmetric tf_half_pixel_for_nn", &k))
    u->coord = (CoordMode)k;
  if ((v = map_get(p, m, "nearest_mode", NULL))) {
    if (u->bilinear)
      error_at(loc_of(p, v), "'nearest_mode' only applies to mode 'nearest'");
    else if (get_word(p, v, "nearest_mode", "floor ceil round_prefer_floor round_prefer_ceil", &k))
      u->nearest = (NearestMode)k;
  }
  u->torch_cases = true;
  if ((v = map_get(p, m, "special_cases", NULL))) get_bool(p, v, "special_cases", &u->torch_cases);
}

/* shape: [d, ...], each positive, 0 (copy the input's) or -1 (inferred, once). */
static void parse_reshape(P *p, YNode *m, Node *n) {
  Shape *s = &n->a.reshape.shape;
  YNode *v = require(p, m, "shape", arena_printf(p->a, "reshape layer '%s'", n->name ? n->name : "?"));
  if (!v) return;
  if (v->type != Y_SEQ || seq_len(v) < 1 || seq_len(v) > MAX_RANK) {
    error_at(loc_of(p, v), "'shape' must be a list of 1 to %d dimensions, got %s%s", MAX_RANK,
             describe(p, v),
             v->type == Y_SEQ ? arena_printf(p->a, " of %d", seq_len(v)) : "");
    return;
  }
  bool ok = true;
  YNode *infer = NULL;
  for (int i = 0; i < seq_len(v); i++) {
    YNode *it = seq_at(p, v, i);
    int64_t d;
    if (!get_int(p, it, "shape", INT64_MIN, INT64_MAX, &d)) {
      ok = false;
      continue;
    }
    if (d < -1) {
      error_at(loc_of(p, it), "'shape' entries must be positive, 0 (copy the input's) or -1 "
                              "(inferred), got %lld", (long long)d);
      ok = false;
      continue;
    }
    if (d == -1 && infer) {
      error_at(loc_of(p, it), "'shape' may contain -1 only once");
      note_at(loc_of(p, infer), "first -1 here");
      ok = false;
    }
    if (d == -1 && !infer) infer = it;
    s->dim[i] = d;
  }
  if (ok) s->rank = seq_len(v);
}

/* A list of axes (or one axis) in [-MAX_RANK, MAX_RANK), into out[0..*n). */
static bool get_axes(P *p, YNode *v, const char *key, int *out, int *n) {
  int64_t x;
  if (v->type != Y_SEQ) {
    if (!get_int(p, v, key, -MAX_RANK, MAX_RANK - 1, &x)) return false;
    out[0] = (int)x, *n = 1;
    return true;
  }
  if (seq_len(v) > MAX_RANK) {
    error_at(loc_of(p, v), "'%s' lists %d axes; tensors have at most %d", key, seq_len(v), MAX_RANK);
    return false;
  }
  bool ok = true;
  *n = 0;
  for (int i = 0; i < seq_len(v); i++)
    if ((ok &= get_int(p, seq_at(p, v, i), key, -MAX_RANK, MAX_RANK - 1, &x))) out[(*n)++] = (int)x;
  return ok;
}

static void parse_input_shape(P *p, YNode *v, Shape *s);

static void parse_constant(P *p, YNode *m, Node *n) {
  YNode *v = require(p, m, "shape", arena_printf(p->a, "constant layer '%s'", n->name ? n->name : "?"));
  if (v) parse_input_shape(p, v, &n->a.constant.shape);
  if (n->name) {
    n->weight = param(p, m, n, "value");
    n->weight->alt = n->name; /* an nn.Parameter's state_dict key is the bare path */
  }
}

/* layer_norm: axes (default [-1]), contiguous; instance_norm: dims 2.. */
static void parse_norm(P *p, YNode *m, Node *n) {
  NormAttr *q = &n->a.norm;
  YNode *v;
  bool ln = n->op == OP_LAYER_NORM;
  q->epsilon = 1e-5f;
  q->affine = ln; /* torch: LayerNorm(elementwise_affine=True), InstanceNorm2d(affine=False) */
  q->naxes = 1, q->axes[0] = -1;
  if (ln && (v = map_get(p, m, "axes", NULL)) && get_axes(p, v, "axes", q->axes, &q->naxes) && q->naxes == 0)
    error_at(loc_of(p, v), "'axes' must name at least one axis");
  if ((v = map_get(p, m, "epsilon", NULL))) get_num(p, v, "epsilon", 0, FLT_MAX, &q->epsilon);
  if ((v = map_get(p, m, ln ? "elementwise_affine" : "affine", NULL))) get_bool(p, v, ln ? "elementwise_affine" : "affine", &q->affine);
  if (q->affine && n->name) {
    n->weight = param(p, m, n, "weight");
    n->bias = param(p, m, n, "bias");
  } else {
    for (const char *const *k = (const char *const[]){"weight", "bias", NULL}; *k; k++)
      if ((v = map_get(p, m, *k, NULL)))
        error_at(loc_of(p, v), "'%s' needs %s: true (a norm without it has no parameters)", *k,
                 ln ? "elementwise_affine" : "affine");
  }
}

static void parse_reduce(P *p, YNode *m, Node *n) {
  ReduceAttr *q = &n->a.reduce;
  YNode *v;
  if ((v = map_get(p, m, "axes", NULL))) get_axes(p, v, "axes", q->given, &q->naxes);
  if ((v = map_get(p, m, "keepdims", NULL))) get_bool(p, v, "keepdims", &q->keepdims);
}

static void parse_transpose(P *p, YNode *m, Node *n) {
  TransposeAttr *q = &n->a.transpose;
  YNode *v = require(p, m, "perm", arena_printf(p->a, "transpose layer '%s'", n->name ? n->name : "?"));
  if (v) get_axes(p, v, "perm", q->perm, &q->rank);
}

/* slice: axis (default 0), start, end, step (default 1, not 0); start and
 * end default to the whole axis, backwards for a negative step (Python's
 * x[::-1]: from the last element through the first). */
static void parse_slice(P *p, YNode *m, Node *n) {
  SliceAttr *q = &n->a.slice;
  YNode *v;
  int64_t x;
  *q = (SliceAttr){.axis = 0, .start = 0, .end = INT64_MAX, .step = 1};
  if ((v = map_get(p, m, "axis", NULL)) && get_int(p, v, "axis", -MAX_RANK, MAX_RANK - 1, &x)) q->axis = (int)x;
  if ((v = map_get(p, m, "step", NULL)) && get_int(p, v, "step", INT64_MIN, INT64_MAX, &q->step) && q->step == 0)
    error_at(loc_of(p, v), "'step' must not be 0");
  if (q->step < 0) q->start = INT64_MAX, q->end = INT64_MIN; /* clamped to dim - 1 and -1 by shape.c */
  if ((v = map_get(p, m, "start", NULL))) get_int(p, v, "start", INT64_MIN, INT64_MAX, &q->start);
  if ((v = map_get(p, m, "end", NULL))) get_int(p, v, "end", INT64_MIN, INT64_MAX, &q->end);
}

static void parse_attrs(P *p, YNode *m, Node *n) {
  YNode *v;
  int64_t x;
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: parse_conv(p, m, n); break;
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: parse_pool(p, m, n); break;
  case OP_ADAPTIVE_AVGPOOL2D:
    if ((v = require(p, m, "output_size",
                     arena_printf(p->a, "adaptive_avgpool2d layer '%s'", n->name ? n->name : "?"))))
      get_ints(p, v, "output_size", 1, 2, n->a.adaptive.out);
    break;
  case OP_BATCHNORM: parse_batchnorm(p, m, n); break;
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN: parse_activation(p, m, n); break;
  case OP_CONSTANT: parse_constant(p, m, n); break;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: parse_norm(p, m, n); break;
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: parse_reduce(p, m, n); break;
  case OP_TRANSPOSE: parse_transpose(p, m, n); break;
  case OP_SLICE: parse_slice(p, m, n); break;
  case OP_CONCAT:
    n->a.concat.axis = 1;
    if ((v = map_get(p, m, "axis", NULL)) && get_int(p, v, "axis", -MAX_RANK, MAX_RANK - 1, &x))
      n->a.concat.axis = (int)x;
    break;
  case OP_PAD: parse_pad(p, m, n); break;
  case OP_UPSAMPLE: parse_upsample(p, m, n); break;
  case OP_RESHAPE: parse_reshape(p, m, n); break;
  case OP_DROPOUT: {
    float prob;
    if ((v = map_get(p, m, "p", NULL))) get_num(p, v, "p", 0, 1, &prob); /* ignored in eval mode */
    break;
  }
  case OP_ACT: parse_act_layer(p, m, n); break;
  case OP_DENSE:
  case OP_LINEAR: parse_dense(p, m, n); break;
  case OP_SOFTMAX:
    n->a.softmax.axis = 1;
    if ((v = map_get(p, m, "axis", NULL)) && get_int(p, v, "axis", -MAX_RANK, MAX_RANK - 1, &x))
      n->a.softmax.axis = (int)x;
    break;
  case OP_FLATTEN:
    n->a.flatten.start_dim = 1;
    if ((v = map_get(p, m, "start_dim", NULL)) &&
        get_int(p, v, "start_dim", -MAX_RANK, MAX_RANK - 1, &x))
      n->a.flatten.start_dim = (int)x;
    break;
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D:
  case OP_INPUT:
  case OP_REORDER:
  case OP_COUNT: break;
  }
}

/* ---- layers ---- */

static const char *spec_ops(P *p) {
  char *s = arena_strdup(p->a, "");
  for (int i = 0; i < OP_COUNT; i++) {
    if (i == OP_INPUT || i == OP_ACT || op_internal((Op)i)) continue;
    s = arena_printf(p->a, "%s%s ", s, op_names[i]);
    if (i == OP_SOFTMAX) s = arena_printf(p->a, "%slog_softmax split ", s);
  }
  for (int i = 0; i < ACT_COUNT; i++)
    if (i != ACT_NONE) s = arena_printf(p->a, "%s%s ", s, act_names[i]);
  return s;
}

/* Resolves `op:`; false (after reporting) when it names no op. */
static bool parse_op(P *p, YNode *v, Node *n) {
  const char *s;
  if (!get_str(p, v, "op", &s)) return false;
  for (int i = 0; i < OP_COUNT; i++)
    if (i != OP_INPUT && i != OP_ACT && !op_internal((Op)i) && strcmp(s, op_names[i]) == 0) {
      n->op = (Op)i;
      return true;
    }
  if (strcmp(s, "log_softmax") == 0) {
    n->op = OP_SOFTMAX;
    n->a.softmax.log = true;
    return true;
  }
  ActKind k = act_lookup(s);
  if (k != ACT_COUNT && k != ACT_NONE) {
    n->op = OP_ACT;
    n->act.kind = k;
    return true;
  }
  const char *ops = spec_ops(p), *best = did_you_mean(p, s, ops);
  error_at(loc_of(p, v), "unknown op '%s'%s (known ops: %s)", show(p, v),
           best ? arena_printf(p->a, "; did you mean '%s'?", best) : "", word_list(p, ops));
  return false;
}

/* The names a layer reads, from `input:` or `inputs:`; nrefs -1 when it
 * gives neither (it reads the previous layer). */
typedef struct {
  const char **refs;
  Loc *locs;
  int n;
} Refs;

static Refs parse_refs(P *p, YNode *m) {
  Loc k1, k2;
  YNode *one = map_get(p, m, "input", &k1), *many = map_get(p, m, "inputs", &k2);
  Refs r = {.n = -1};
  if (one && many) {
    error_at(k2, "give either 'input' or 'inputs', not both");
    return r;
  }
  if (!one && !many) return r;
  if (many && many->type != Y_SEQ) {
    error_at(loc_of(p, many), "'inputs' must be a list of layer names, got %s", describe(p, many));
    return r;
  }
  int n = one ? 1 : seq_len(many);
  r.refs = arena_array(p->a, (size_t)n + 1, sizeof *r.refs);
  r.locs = arena_array(p->a, (size_t)n + 1, sizeof *r.locs);
  r.n = 0;
  for (int i = 0; i < n; i++) {
    const char *s;
    YNode *it = one ? one : seq_at(p, many, i);
    if (get_name(p, it, one ? "'input'" : "each of 'inputs'", &s)) r.refs[r.n] = s, r.locs[r.n++] = loc_of(p, it);
  }
  return r;
}

/* `op: split`: one slice layer per name of `outputs`, in order, each
 * reading the split's input: `sizes` along `axis` (torch.split) or
 * `chunks` equal parts (torch.chunk; the last may be shorter). */
static void parse_split(P *p, YNode *m, Node *n) {
  const char *where = arena_printf(p->a, "split layer '%s'", n->name ? n->name : "?");
  check_keys(p, m, "name op input inputs axis sizes chunks outputs", where);
  YNode *v, *outs = require(p, m, "outputs", where), *sizes = map_get(p, m, "sizes", NULL);
  YNode *chunks = map_get(p, m, "chunks", NULL);
  int64_t axis = 0, x, *sz = NULL;
  if ((v = map_get(p, m, "axis", NULL))) get_int(p, v, "axis", -MAX_RANK, MAX_RANK - 1, &axis);
  if (!outs) return;
  if (outs->type != Y_SEQ || seq_len(outs) < 1) {
    error_at(loc_of(p, outs), "'outputs' must be a non-empty list of names, got %s", describe(p, outs));
    return;
  }
  int k = seq_len(outs);
  if (!sizes == !chunks) {
    error_at(loc_of(p, m), "%s needs one of 'sizes' and 'chunks'%s", where, sizes ? ", not both" : "");
  } else if (sizes) {
    if (sizes->type != Y_SEQ || seq_len(sizes) != k) {
      error_at(loc_of(p, sizes), "'sizes' must be a list of %d lengths (one per output), got %s", k, describe(p, sizes));
      return;
    }
    sz = arena_array(p->a, (size_t)k, sizeof *sz);
    for (int i = 0; i < k; i++) get_int(p, seq_at(p, sizes, i), "sizes", 0, INT64_MAX, &sz[i]);
  } else if (get_int(p, chunks, "chunks", 1, INT32_MAX, &x) && x != k) {
    error_at(loc_of(p, chunks), "'chunks' is %lld but 'outputs' names %d parts", (long long)x, k);
  }
  Refs r = parse_refs(p, m);
  const char *members = "";
  for (int i = 0; i < k; i++)
    if (seq_at(p, outs, i)->type == Y_SCALAR)
      members = arena_printf(p->a, "%s%s%s", members, i ? ", " : "", sval(seq_at(p, outs, i)));
  if (n->name) build_group(p->b, n->name, loc_of(p, m), members);
  for (int i = 0; i < k; i++) {
    Node part = *n;
    part.op = OP_SLICE;
    part.a.slice = (SliceAttr){.axis = (int)axis, .step = 1, .part = i, .nparts = k, .sizes = sz, .split = n->name};
    YNode *it = seq_at(p, outs, i);
    if (!get_name(p, it, "each of 'outputs'", &part.name)) continue;
    part.loc = loc_of(p, it);
    build_layer(p->b, part, loc_of(p, it), r.refs, r.locs, i == 0 ? r.n : BUILD_SAME_INPUTS);
  }
}

static void parse_layer(P *p, YNode *m) {
  if (m->type != Y_MAP) {
    error_at(loc_of(p, m), "a layer must be a mapping with 'name' and 'op', got %s", describe(p, m));
    return;
  }
  Node node = {.op = OP_COUNT, .loc = loc_of(p, m)}, *n = &node; /* OP_COUNT: unknown op */
  Loc name_loc = {0};
  YNode *v = require(p, m, "name", "layer");
  if (v && get_name(p, v, "a layer name", &n->name)) name_loc = loc_of(p, v);
  const char *where = arena_printf(p->a, "layer '%s'", n->name ? n->name : "?");
  v = require(p, m, "op", where);
  if (v && scalar_is(v, "split")) {
    parse_split(p, m, n);
    return;
  }
  bool op_ok = v && parse_op(p, v, n);
  if (op_ok) {
    const char *opn = v ? show(p, v) : "?";
    const char *keys = n->op == OP_ACT ? act_keys(n->act.kind) : op_attr_keys[n->op];
    check_keys(p, m, arena_printf(p->a, "name op input inputs %s", keys),
               arena_printf(p->a, "%s layer '%s'", opn, n->name ? n->name : "?"));
    parse_attrs(p, m, n);
  }
  Refs r = parse_refs(p, m);
  build_layer(p->b, node, name_loc, r.refs, r.locs, r.n);
}

static void parse_layers(P *p, YNode *v) {
  if (v->type != Y_SEQ) {
    error_at(loc_of(p, v), "'layers' must be a list of layers, got %s", describe(p, v));
    return;
  }
  if (seq_len(v) == 0) error_at(loc_of(p, v), "'layers' is empty: a model needs at least one layer");
  for (int i = 0; i < seq_len(v); i++) parse_layer(p, seq_at(p, v, i));
}

/* ---- inputs and outputs ---- */

static void parse_input_shape(P *p, YNode *v, Shape *s) {
  if (v->type != Y_SEQ) {
    error_at(loc_of(p, v), "'shape' must be a list of dimensions, got %s", describe(p, v));
    return;
  }
  int rank = seq_len(v);
  if (rank < 1 || rank > MAX_RANK) {
    error_at(loc_of(p, v), "'shape' must have rank 1 to %d (e.g. [N, C, H, W] or [N, features]), "
                           "got rank %d", MAX_RANK, rank);
    return;
  }
  bool ok = true;
  for (int i = 0; i < rank; i++) ok &= get_int(p, seq_at(p, v, i), "shape", 1, cnnc_limits.dim, &s->dim[i]);
  if (ok) s->rank = rank;
}

static void parse_input(P *p, YNode *m) {
  if (m->type != Y_MAP) {
    error_at(loc_of(p, m), "an input must be a mapping {name: ..., shape: [...]}, got %s",
             describe(p, m));
    return;
  }
  Node n = {.op = OP_INPUT, .loc = loc_of(p, m)};
  Loc name_loc = {0};
  check_keys(p, m, "name shape", "an input");
  YNode *v = require(p, m, "name", "input");
  if (v && get_name(p, v, "an input name", &n.name)) name_loc = loc_of(p, v);
  v = require(p, m, "shape", arena_printf(p->a, "input '%s'", n.name ? n.name : "?"));
  if (v) parse_input_shape(p, v, &n.shape);
  build_input(p->b, n, name_loc);
}

static void parse_inputs(P *p, YNode *v) {
  if (v->type != Y_SEQ) {
    error_at(loc_of(p, v), "'inputs' must be a list of {name, shape}, got %s", describe(p, v));
    return;
  }
  if (seq_len(v) == 0) error_at(loc_of(p, v), "'inputs' is empty: a model needs at least one input");
  for (int i = 0; i < seq_len(v); i++) parse_input(p, seq_at(p, v, i));
}

static void parse_outputs(P *p, YNode *v) {
  if (v->type != Y_SEQ || seq_len(v) == 0) {
    error_at(loc_of(p, v), "'outputs' must be a non-empty list of layer names, got %s%s", describe(p, v),
             v->type == Y_SEQ ? " (empty)" : "");
    return;
  }
  for (int i = 0; i < seq_len(v); i++) {
    const char *s;
    YNode *it = seq_at(p, v, i);
    if (get_name(p, it, "each of 'outputs'", &s)) build_output(p->b, s, loc_of(p, it));
  }
}

/* ---- top level ---- */

static const char *resolve_path(P *p, const char *rel) {
  if (rel[0] == '/') return rel;
  const char *slash = strrchr(p->file, '/');
  if (!slash) return rel;
  return arena_printf(p->a, "%.*s/%s", (int)(slash - p->file + 1) - 1, p->file, rel);
}

static void parse_top(P *p, YNode *root) {
  Graph *g = p->g;
  if (root->type != Y_MAP) {
    error_at(loc_of(p, root), "a spec must be a mapping with keys cnnc, name, inputs and layers; "
                              "got %s", describe(p, root));
    return;
  }
  check_keys(p, root, "cnnc name weights inputs outputs layers", "the spec");
  YNode *v;
  int64_t version;
  if ((v = require(p, root, "cnnc", "the spec")) &&
      get_int(p, v, "cnnc", INT64_MIN, INT64_MAX, &version) && version != CNNC_FORMAT_VERSION)
    error_at(loc_of(p, v), "unsupported format version %lld (this cnnc reads version %d)",
             (long long)version, CNNC_FORMAT_VERSION);
  if ((v = require(p, root, "name", "the spec"))) {
    get_model_name(p, v, &g->name);
    g->name_loc = loc_of(p, v);
  }
  const char *w;
  if ((v = map_get(p, root, "weights", NULL)) && get_str(p, v, "weights", &w)) {
    if (!*w)
      error_at(loc_of(p, v), "'weights' is an empty path");
    else
      g->weights = resolve_path(p, w), g->weights_loc = loc_of(p, v);
  }
  if ((v = require(p, root, "inputs", "the spec"))) parse_inputs(p, v);
  if ((v = require(p, root, "layers", "the spec"))) parse_layers(p, v);
  if ((v = map_get(p, root, "outputs", NULL))) parse_outputs(p, v);
}

/* ---- entry points ---- */

Graph *spec_parse_string(Arena *a, const char *path, const char *text, size_t len) {
  int errors0 = diag_error_count();
  P p = {.a = a, .file = arena_strdup(a, path)};
  char *copy = arena_alloc(a, len + 1);
  memcpy(copy, text, len);
  diag_add_source(p.file, copy, len);
  p.g = graph_new(a, p.file);
  p.b = build_begin(p.g);
  YNode *root;
  if (!yaml_load(a, p.file, copy, len, &root)) return NULL;
  if (!root) {
    error_at((Loc){p.file, 1, 1}, "the spec is empty; expected a mapping with keys cnnc, name, "
                                  "inputs and layers");
    return NULL;
  }
  parse_top(&p, root);
  /* names, references, cycles and outputs are checked even after other
   * errors, for a complete report */
  build_end(p.b);
  return diag_error_count() == errors0 ? p.g : NULL;
}

Graph *spec_parse(Arena *a, const char *path) {
  size_t len = 0;
  char *text = file_read(a, path, "model file", (Loc){path, 0, 0}, &len);
  if (!text) return NULL;
  return spec_parse_string(a, path, text, len);
}
