/*
 * emit_yaml.c: the graph back as a YAML spec and a safetensors file
 * (--emit-yaml), so that a model read from ONNX, or a spec with inline or
 * random weights, can be kept, read and edited as a spec.
 *
 * needs: the graph as the front end leaves it (shapes inferred, every
 * Param bound, verified; before fold_bn changes it); gives: the spec's
 * text, which spec.c reads back into the same graph (the same nodes in the
 * same order, with the same names, inputs, attributes, activations and
 * parameter names), and every parameter in an F32 safetensors file under
 * its exact name.  So compiling the spec gives the object that compiling
 * the original gives, byte for byte.
 *
 * The emitter is spec.c's inverse, op by op.  Three things make that more
 * than printing fields:
 *   - shape inference normalised some attributes in place (axes made
 *     non-negative, slice bounds clamped, split parts turned into start
 *     and end, reduce axes into a bitmask, norm dims into first/count,
 *     upsample scales from sizes): what is written must normalise to the
 *     same values again, so slices write their clamped bounds (which
 *     clamp to themselves), the norms and reductions the axes as given,
 *     and upsample the size where one was given;
 *   - what spec.c cannot say is an error at the layer (an ONNX node), never
 *     a silent change: a float that is not finite, a name that is not
 *     UTF-8, a conv_transpose2d padded unevenly, ...;
 *   - names are any string, so every scalar that is not a plain word is
 *     double-quoted with escapes (put_str).
 * Layers are written in node order, one flow mapping per line, `input:`
 * omitted where spec.c's default (the previous layer) gives the same.
 * Floats are written with the fewest digits that read back as the same
 * float (float_text); attributes equal to spec.c's defaults are left out,
 * compared bit for bit (so -0 is written).  Parameters go to the
 * safetensors file in node order; the spec names it by its base name,
 * since it is written beside the YAML file.
 */
#include "cnnc.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { MAX_NAME_BYTES = 4096 }; /* spec.c's limit on names */

typedef struct {
  Graph *g;
  Arena *a;
  FILE *f;        /* the YAML text (open_memstream) */
  const Node *n;  /* the layer being written, for messages */
} E;

static const char *nname(const Node *n) { return n->name ? n->name : "?"; }

/* Reports at the current layer that it cannot be written as YAML. */
static void cannot(E *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cannot(E *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *why = arena_alloc(e->a, 512);
  vsnprintf(why, 512, fmt, ap);
  va_end(ap);
  error_at(e->n ? e->n->loc : e->g->name_loc, "cannot write %s '%s' as YAML: %s",
           e->n && e->n->op == OP_INPUT ? "input" : "layer", e->n ? nname(e->n) : "?", why);
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- scalars ---- */

/* The fewest digits that spec.c reads back as x: it reads numbers with
 * strtod, refuses what is beyond +-FLT_MAX as a double (so FLT_MAX's
 * shortest form, 3.4028235e+38, will not do) and rounds to float, except
 * where it keeps the double (upsample's scales).  False for NaN and
 * infinities, which the format cannot write. */
static bool num_text(double x, bool is_float, char *buf, size_t n) {
  if (!isfinite(x)) return false;
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(buf, n, "%.*g", digits, x);
    double d = strtod(buf, NULL);
    if (fabs(d) <= FLT_MAX && (is_float ? same_bits((float)d, (float)x) : d == x && signbit(d) == signbit(x)))
      return true;
  }
  return true; /* beyond FLT_MAX: the caller reports it */
}

static bool float_text(float x, char *buf, size_t n) { return num_text(x, true, buf, n); }

/* A plain scalar spec.c takes as this very string: an identifier-like
 * word that is none of YAML's null and boolean spellings (nor 1.1's yes,
 * no, on, off, y and n, for other readers' sake). */
static bool plain_ok(const char *s) {
  static const char *const special[] = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", NULL};
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return false;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
          *c == '.'))
      return false;
  for (int i = 0; special[i]; i++)
    if (!strcasecmp(s, special[i])) return false;
  return strlen(s) <= 64;
}

/* The code point of the UTF-8 character s[0..len). */
static unsigned code_point(const unsigned char *s, size_t len) {
  if (len == 1) return s[0];
  unsigned cp = s[0] & (0x7f >> len);
  for (size_t i = 1; i < len; i++) cp = cp << 6 | (s[i] & 0x3f);
  return cp;
}

/* Whether YAML lets character cp stand raw in a double-quoted scalar:
 * printable (YAML 1.1's set, which libyaml checks) and no line break
 * (NEL, LS and PS would be folded into a space). */
static bool raw_ok(unsigned cp) {
  if (cp < 0x80) return cp >= 0x20 && cp != 0x7f && cp != '"' && cp != '\\';
  if (cp < 0xa0 || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff) return false;
  return cp <= 0xd7ff || (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000;
}

/* s with YAML's double-quoted escapes wherever raw_ok says no (and bytes
 * that are not UTF-8 as \xNN, which only a comment can use: YAML reads
 * that escape as the character U+00NN). */
static void put_escaped(FILE *f, const char *s, bool quoted) {
  for (size_t i = 0, n = strlen(s), l; i < n; i += l) {
    l = utf8_char(s + i, n - i);
    unsigned cp = l ? code_point((const unsigned char *)s + i, l) : (unsigned char)s[i];
    if (l && (raw_ok(cp) || (!quoted && (cp == '"' || cp == '\\')))) fwrite(s + i, 1, l, f);
    else if (!l) fprintf(f, "\\x%02x", cp), l = 1;
    else if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (char)cp);
    else if (cp == '\t') fputs("\\t", f);
    else if (cp == '\n') fputs("\\n", f);
    else if (cp == '\r') fputs("\\r", f);
    else if (cp < 0x100) fprintf(f, "\\x%02x", cp);
    else fprintf(f, "\\u%04x", cp);
  }
}

/* s as a YAML scalar that reads back as exactly s: plain when plain_ok,
 * else double-quoted; false (nothing written) when s is not UTF-8, which
 * YAML cannot hold. */
static bool put_str(E *e, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0, l; i < n; i += l)
    if (!(l = utf8_char(s + i, n - i))) return false;
  if (plain_ok(s)) {
    fputs(s, e->f);
    return true;
  }
  fputc('"', e->f);
  put_escaped(e->f, s, true);
  fputc('"', e->f);
  return true;
}

/* A layer or input name, as spec.c's get_name accepts it. */
static void put_name(E *e, const char *s) {
  if (!s || !*s) {
    cannot(e, "a name is empty");
  } else if (strlen(s) > MAX_NAME_BYTES) {
    cannot(e, "the name '%.40s...' is longer than %d bytes", s, MAX_NAME_BYTES);
  } else if (put_str(e, s)) {
    return;
  } else {
    cannot(e, "the name '%s' is not UTF-8", s);
  }
  fputs("\"\"", e->f); /* keeps the text well-formed; nothing is written */
}

/* ", key: x" for a finite float in [lo, hi] (what spec.c's get_num takes). */
static void put_num(E *e, const char *key, float x, double lo, double hi) {
  char buf[40];
  if (!float_text(x, buf, sizeof buf))
    cannot(e, "'%s' is %s, which the format cannot write", key, isnan(x) ? "NaN" : x > 0 ? "infinity" : "-infinity");
  else if (x < lo || x > hi)
    cannot(e, "'%s' is %s, outside what the format accepts (%g to %g)", key, buf, lo, hi);
  fprintf(e->f, ", %s: %s", key, float_text(x, buf, sizeof buf) ? buf : "0");
}

static void put_any_num(E *e, const char *key, float x) { put_num(e, key, x, -FLT_MAX, FLT_MAX); }

/* ", key: a" or ", key: [a, b]" (spec.c's get_ints reads either). */
static void put_pair(E *e, const char *key, const int *v) {
  if (v[0] == v[1]) fprintf(e->f, ", %s: %d", key, v[0]);
  else fprintf(e->f, ", %s: [%d, %d]", key, v[0], v[1]);
}

static void put_ints(E *e, const char *key, const int *v, int n) {
  fprintf(e->f, ", %s: [", key);
  for (int i = 0; i < n; i++) fprintf(e->f, "%s%d", i ? ", " : "", v[i]);
  fputc(']', e->f);
}

static void put_shape(E *e, const char *key, const Shape *s) {
  fprintf(e->f, ", %s: [", key);
  for (int i = 0; i < s->rank; i++) fprintf(e->f, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
  fputc(']', e->f);
}

/* padding: p, [ph, pw] or [top, left, bottom, right], the shortest that
 * spec.c's get_pad4 reads back as pad[4]. */
static void put_pad4(E *e, const int *pad) {
  if (pad[0] == pad[2] && pad[1] == pad[3]) put_pair(e, "padding", pad);
  else put_ints(e, "padding", pad, 4);
}

/* ---- activations ---- */

/* The keys of activation `a` that differ from spec.c's defaults, as
 * ", key: value".  For a fused activation the caller writes the mapping. */
static void put_act_keys(E *e, const Act *a) {
  Act d = spec_act_default(a->kind);
  switch (a->kind) {
  case ACT_LEAKY_RELU:
  case ACT_ELU:
    if (!same_bits(a->alpha, d.alpha)) put_any_num(e, "alpha", a->alpha);
    break;
  case ACT_SELU:
    if (!same_bits(a->alpha, d.alpha)) put_any_num(e, "alpha", a->alpha);
    if (!same_bits(a->beta, d.beta)) put_any_num(e, "gamma", a->beta);
    break;
  case ACT_HARDSIGMOID:
    if (!same_bits(a->alpha, d.alpha)) put_any_num(e, "alpha", a->alpha);
    if (!same_bits(a->beta, d.beta)) put_any_num(e, "beta", a->beta);
    break;
  case ACT_SOFTPLUS:
    if (!same_bits(a->alpha, d.alpha)) put_num(e, "beta", a->alpha, FLT_MIN, FLT_MAX);
    break;
  case ACT_SCALE:
    if (!same_bits(a->alpha, d.alpha)) put_any_num(e, "scale", a->alpha);
    if (!same_bits(a->beta, d.beta)) put_any_num(e, "offset", a->beta);
    break;
  case ACT_POW: put_any_num(e, "exponent", a->alpha); break;
  case ACT_CLIP: /* -inf and inf are "no bound": left out; spec.c needs one */
    if (a->alpha == INFINITY || a->beta == -INFINITY || isnan(a->alpha) || isnan(a->beta))
      cannot(e, "clip bounds min %g, max %g cannot be written", a->alpha, a->beta);
    else if (a->alpha == -INFINITY && a->beta == INFINITY)
      cannot(e, "a clip without bounds cannot be written (the format needs 'min', 'max' or both)");
    else if (a->alpha > a->beta)
      cannot(e, "clip 'min' %g is greater than 'max' %g", a->alpha, a->beta);
    if (a->alpha != -INFINITY) put_any_num(e, "min", a->alpha);
    if (a->beta != INFINITY) put_any_num(e, "max", a->beta);
    break;
  default: break;
  }
}

/* The keys put_act_keys writes, as a string ("" when all are defaults). */
static const char *act_keys_text(E *e, const Act *a) {
  char *buf = NULL;
  size_t len = 0;
  FILE *saved = e->f, *f = open_memstream(&buf, &len);
  if (!f) {
    error_plain("out of memory writing the YAML spec");
    return "";
  }
  e->f = f;
  put_act_keys(e, a);
  fclose(f);
  e->f = saved;
  const char *s = arena_strdup(e->a, buf ? buf : "");
  free(buf);
  return s;
}

/* `activation: name`, or `{op: name, keys}` when a key is not the default. */
static void put_fused(E *e, const Node *n) {
  const Act *a = &n->act;
  if (a->kind == ACT_NONE) return;
  if ((unsigned)a->kind >= ACT_COUNT || !op_has(n->op, F_ACT) || a->kind == ACT_PRELU) {
    cannot(e, "a %s layer with a fused %s", op_name(n->op), (unsigned)a->kind < ACT_COUNT ? act_names[a->kind] : "?");
    return;
  }
  const char *keys = act_keys_text(e, a);
  if (*keys) fprintf(e->f, ", activation: {op: %s%s}", act_names[a->kind], keys);
  else fprintf(e->f, ", activation: %s", act_names[a->kind]);
}

/* ---- per-op attributes, each the inverse of spec.c's parse_<op> ---- */

static void put_conv(E *e, const Node *n) {
  const ConvAttr *c = &n->a.conv;
  bool t = n->op == OP_CONV_TRANSPOSE2D;
  fprintf(e->f, ", filters: %d", c->filters);
  put_pair(e, "kernel", c->kernel);
  if (c->stride[0] != 1 || c->stride[1] != 1) put_pair(e, "stride", c->stride);
  if (c->pad[0] || c->pad[1] || c->pad[2] || c->pad[3]) {
    if (t && (c->pad[0] != c->pad[2] || c->pad[1] != c->pad[3]))
      cannot(e, "conv_transpose2d padding top %d, left %d, bottom %d, right %d: the format pads both sides alike",
             c->pad[0], c->pad[1], c->pad[2], c->pad[3]);
    put_pad4(e, c->pad);
  }
  if (t && (c->output_padding[0] || c->output_padding[1])) {
    for (int i = 0; i < 2; i++)
      if (c->output_padding[i] >= c->stride[i] && c->output_padding[i] >= c->dilation[i])
        cannot(e, "output_padding %d is not smaller than the stride %d or the dilation %d (PyTorch's rule, which the "
                  "format keeps)", c->output_padding[i], c->stride[i], c->dilation[i]);
    put_pair(e, "output_padding", c->output_padding);
  }
  if (c->dilation[0] != 1 || c->dilation[1] != 1) put_pair(e, "dilation", c->dilation);
  if (c->groups != 1) fprintf(e->f, ", groups: %d", c->groups);
  if (!c->has_bias) fputs(", bias: false", e->f);
}

static void put_pool(E *e, const Node *n) {
  const PoolAttr *q = &n->a.pool;
  put_pair(e, "kernel", q->kernel);
  if (q->stride[0] != q->kernel[0] || q->stride[1] != q->kernel[1]) put_pair(e, "stride", q->stride);
  if (q->pad[0] || q->pad[1] || q->pad[2] || q->pad[3]) put_pad4(e, q->pad);
  if (q->dilation[0] != 1 || q->dilation[1] != 1) {
    if (n->op != OP_MAXPOOL2D) cannot(e, "an avgpool2d with dilation");
    put_pair(e, "dilation", q->dilation);
  }
  if (q->ceil_mode) fputs(", ceil_mode: true", e->f);
  if (n->op == OP_AVGPOOL2D && !q->count_include_pad) fputs(", count_include_pad: false", e->f);
}

static void put_pad(E *e, const Node *n) {
  static const char *const modes[] = {"constant", "reflect", "edge"};
  const PadAttr *q = &n->a.pad;
  put_pad4(e, q->pad);
  if (q->mode != PAD_CONSTANT) fprintf(e->f, ", mode: %s", (unsigned)q->mode < 3 ? modes[q->mode] : "?");
  else if (!same_bits(q->value, 0.0f)) put_any_num(e, "value", q->value);
}

static void put_upsample(E *e, const Node *n) {
  static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                       "tf_half_pixel_for_nn"};
  static const char *const nearests[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
  const UpsampleAttr *u = &n->a.upsample;
  if (u->size[0] > 0 || u->size[1] > 0) { /* shape.c derived the scales from it */
    if (u->size[0] < 1 || u->size[1] < 1) cannot(e, "an output size given for one axis only");
    fprintf(e->f, ", size: [%lld, %lld]", (long long)u->size[0], (long long)u->size[1]);
  } else {
    char a[40], b[40];
    if (!num_text(u->scale[0], false, a, sizeof a) || !num_text(u->scale[1], false, b, sizeof b) ||
        !(u->scale[0] >= FLT_MIN && u->scale[0] <= FLT_MAX && u->scale[1] >= FLT_MIN && u->scale[1] <= FLT_MAX))
      cannot(e, "scale %g x %g", u->scale[0], u->scale[1]);
    else if (!strcmp(a, b))
      fprintf(e->f, ", scale: %s", a);
    else
      fprintf(e->f, ", scale: [%s, %s]", a, b);
  }
  if (u->bilinear) fputs(", mode: bilinear", e->f);
  if ((unsigned)u->coord >= 5 || (unsigned)u->nearest >= 4) {
    cannot(e, "an unknown coordinate or nearest mode");
    return;
  }
  if (u->coord != (u->bilinear ? COORD_HALF_PIXEL : COORD_ASYMMETRIC)) { /* spec.c's defaults, PyTorch's */
    if (u->bilinear && u->coord == COORD_ALIGN_CORNERS) fputs(", align_corners: true", e->f);
    else fprintf(e->f, ", coordinate_mode: %s", coords[u->coord]);
  }
  if (u->nearest != NEAREST_FLOOR) {
    if (u->bilinear) cannot(e, "a bilinear upsample with nearest_mode %s", nearests[u->nearest]);
    fprintf(e->f, ", nearest_mode: %s", nearests[u->nearest]);
  }
  if (!u->torch_cases) fputs(", special_cases: false", e->f); /* ONNX's Resize */
}

/* Start and end as clamped by shape.c, which clamps them to the same
 * again; left out where spec.c's defaults clamp to them: 0 and dim for a
 * positive step, dim - 1 and -1 (before the first element; written, -1
 * would be the last) for a negative one. */
static void put_slice(E *e, const Node *n) {
  const SliceAttr *q = &n->a.slice;
  int64_t dim = e->g->nodes[n->in[0]].shape.dim[q->axis];
  bool back = q->step < 0;
  if (q->axis) fprintf(e->f, ", axis: %d", q->axis);
  if (q->start != (back ? dim - 1 : 0)) fprintf(e->f, ", start: %lld", (long long)q->start);
  if (q->end != (back ? -1 : dim)) fprintf(e->f, ", end: %lld", (long long)q->end);
  if (q->step != 1) fprintf(e->f, ", step: %lld", (long long)q->step);
}

static void put_norm(E *e, const Node *n) {
  const NormAttr *q = &n->a.norm;
  bool ln = n->op == OP_LAYER_NORM;
  if (ln && (q->naxes != 1 || q->axes[0] != -1)) { /* as given: shape.c derived first and count */
    if (q->naxes == 1) fprintf(e->f, ", axes: %d", q->axes[0]);
    else put_ints(e, "axes", q->axes, q->naxes);
  }
  if (!same_bits(q->epsilon, 1e-5f)) put_num(e, "epsilon", q->epsilon, 0, FLT_MAX);
  if (q->affine != ln) fprintf(e->f, ", %s: %s", ln ? "elementwise_affine" : "affine", q->affine ? "true" : "false");
}

/* The axes as given (shape.c made the bitmask); keepdims always, as
 * spec.c's default (false) is not ONNX's. */
static void put_reduce(E *e, const Node *n) {
  const ReduceAttr *q = &n->a.reduce;
  if (q->naxes) put_ints(e, "axes", q->given, q->naxes);
  fprintf(e->f, ", keepdims: %s", q->keepdims ? "true" : "false");
}

static void put_attrs(E *e, const Node *n) {
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: put_conv(e, n); break;
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: put_pool(e, n); break;
  case OP_ADAPTIVE_AVGPOOL2D: put_pair(e, "output_size", n->a.adaptive.out); break;
  case OP_BATCHNORM:
    if (!same_bits(n->a.bn.epsilon, 1e-5f)) put_num(e, "epsilon", n->a.bn.epsilon, 0, FLT_MAX);
    break;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: put_norm(e, n); break;
  case OP_ACT:
    put_act_keys(e, &n->act);
    if (n->act.kind == ACT_PRELU && n->a.num_parameters != 1)
      fprintf(e->f, ", num_parameters: %d", n->a.num_parameters);
    break;
  case OP_CONCAT:
    if (n->a.concat.axis != 1) fprintf(e->f, ", axis: %d", n->a.concat.axis);
    break;
  case OP_SLICE: put_slice(e, n); break;
  case OP_TRANSPOSE: put_ints(e, "perm", n->a.transpose.perm, n->a.transpose.rank); break;
  case OP_PAD: put_pad(e, n); break;
  case OP_UPSAMPLE: put_upsample(e, n); break;
  case OP_FLATTEN:
    if (n->a.flatten.start_dim != 1) fprintf(e->f, ", start_dim: %d", n->a.flatten.start_dim);
    break;
  case OP_RESHAPE: put_shape(e, "shape", &n->a.reshape.shape); break;
  case OP_CONSTANT: put_shape(e, "shape", &n->a.constant.shape); break;
  case OP_DENSE:
  case OP_LINEAR:
    fprintf(e->f, ", units: %d", n->a.dense.units);
    if (!n->a.dense.has_bias) fputs(", bias: false", e->f);
    break;
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: put_reduce(e, n); break;
  case OP_SOFTMAX:
    if (n->a.softmax.axis != 1) fprintf(e->f, ", axis: %d", n->a.softmax.axis);
    break;
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D:
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN:
  case OP_DROPOUT: break;
  case OP_INPUT:
  case OP_REORDER:
  case OP_COUNT: CNNC_UNREACHABLE();
  }
  if (n->op != OP_ACT) put_fused(e, n);
}

/* ---- parameters ---- */

/* The parameters spec.c makes for node n, in its slots weight, bias,
 * running_mean, running_var: whether it makes each, and its suffix. */
static void param_slots(const Node *n, bool want[4], const char *suffix[4]) {
  static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
  for (int i = 0; i < 4; i++) want[i] = false, suffix[i] = names[i];
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: want[0] = true, want[1] = n->a.conv.has_bias; break;
  case OP_DENSE:
  case OP_LINEAR: want[0] = true, want[1] = n->a.dense.has_bias; break;
  case OP_BATCHNORM: want[0] = want[1] = want[2] = want[3] = true; break;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: want[0] = want[1] = n->a.norm.affine; break;
  case OP_ACT: want[0] = n->act.kind == ACT_PRELU; break;
  case OP_CONSTANT: want[0] = true, suffix[0] = "value"; break;
  default: break;
  }
}

static Param **node_params(const Node *n, Param *p[4]) {
  p[0] = n->weight, p[1] = n->bias, p[2] = n->mean, p[3] = n->var;
  return p;
}

/* Every parameter of n is where spec.c would make it, named as it would
 * name it, "<layer>.<suffix>". */
static void check_params(E *e, const Node *n) {
  bool want[4];
  const char *suffix[4];
  Param *p[4];
  param_slots(n, want, suffix);
  node_params(n, p);
  for (int i = 0; i < 4; i++) {
    if (!p[i] != !want[i])
      cannot(e, "it %s a parameter '%s', which the format %s", p[i] ? "has" : "lacks", suffix[i],
             p[i] ? "does not give it" : "requires");
    else if (p[i] && (strncmp(p[i]->name, n->name, strlen(n->name)) || p[i]->name[strlen(n->name)] != '.' ||
                      strcmp(p[i]->name + strlen(n->name) + 1, suffix[i])))
      cannot(e, "its parameter '%s' is not named '%s.%s'", p[i]->name, n->name, suffix[i]);
  }
}

/* ---- layers ---- */

/* The nodes from `id` on that spec.c made of one `op: split` layer (its
 * parts 0..k-1 in a row, reading one input); 0 when they are not. */
static int split_run(const Graph *g, int id) {
  const Node *n = &g->nodes[id];
  const SliceAttr *q = &n->a.slice;
  if (n->op != OP_SLICE || q->nparts < 1 || !q->split || q->part != 0 || q->nparts > g->nnodes - id) return 0;
  for (int k = 0; k < q->nparts; k++) {
    const Node *m = &g->nodes[id + k];
    const SliceAttr *r = &m->a.slice;
    if (m->op != OP_SLICE || r->nparts != q->nparts || r->part != k || r->sizes != q->sizes || r->axis != q->axis ||
        r->split != q->split || m->nin != 1 || m->in[0] != n->in[0])
      return 0;
  }
  return q->nparts;
}

/* `input:` or `inputs:` unless spec.c's default, node `def`, is the one. */
static void put_refs(E *e, const Node *n, int def) {
  if (n->nin == 1 && n->in[0] == def) return;
  if (n->nin == 1) {
    fputs(", input: ", e->f);
    put_name(e, e->g->nodes[n->in[0]].name);
    return;
  }
  fputs(", inputs: [", e->f);
  for (int k = 0; k < n->nin; k++) {
    if (k) fputs(", ", e->f);
    put_name(e, e->g->nodes[n->in[k]].name);
  }
  fputc(']', e->f);
}

static const char *spec_op(const Node *n) {
  if (n->op == OP_ACT) return (unsigned)n->act.kind < ACT_COUNT ? act_names[n->act.kind] : "?";
  if (n->op == OP_SOFTMAX && n->a.softmax.log) return "log_softmax";
  return op_name(n->op);
}

/* The split whose parts are nodes id..id+k-1. */
static void put_split(E *e, int id, int k, int def) {
  const Node *n = &e->g->nodes[id];
  const SliceAttr *q = &n->a.slice;
  fputs("  - {name: ", e->f);
  put_name(e, q->split);
  fputs(", op: split", e->f);
  put_refs(e, n, def);
  if (q->axis) fprintf(e->f, ", axis: %d", q->axis);
  if (q->sizes) {
    fputs(", sizes: [", e->f);
    for (int i = 0; i < k; i++) fprintf(e->f, "%s%lld", i ? ", " : "", (long long)q->sizes[i]);
    fputc(']', e->f);
  } else {
    fprintf(e->f, ", chunks: %d", k);
  }
  fputs(", outputs: [", e->f);
  for (int i = 0; i < k; i++) {
    if (i) fputs(", ", e->f);
    e->n = &e->g->nodes[id + i];
    put_name(e, e->n->name);
  }
  fputs("]}\n", e->f);
}

static void put_layer(E *e, const Node *n, int def) {
  fputs("  - {name: ", e->f);
  put_name(e, n->name);
  fprintf(e->f, ", op: %s", spec_op(n));
  if (n->op == OP_ACT && n->act.kind == ACT_NONE) cannot(e, "an activation layer of kind 'none'");
  put_refs(e, n, def);
  put_attrs(e, n);
  fputs("}\n", e->f);
}

static void put_layers(E *e) {
  Graph *g = e->g;
  int prev = -1; /* the node spec.c's default reads: the previous layer's */
  fputs("layers:\n", e->f);
  for (int id = 0; id < g->nnodes; id++) {
    const Node *n = e->n = &g->nodes[id];
    if (n->op == OP_INPUT) continue;
    CNNC_ASSERT(!op_internal(n->op));
    int def = prev >= 0 ? prev : g->inputs[0];
    check_params(e, n);
    int k = split_run(g, id);
    if (k) {
      for (int i = 1; i < k; i++) e->n = &g->nodes[id + i], check_params(e, e->n);
      put_split(e, id, k, def);
      id += k - 1;
    } else {
      put_layer(e, n, def);
    }
    prev = id;
  }
}

static void put_graph(E *e, const char *source, const char *weights_name) {
  Graph *g = e->g;
  fprintf(e->f, "# Generated by cnnc %s --emit-yaml from ", CNNC_VERSION);
  put_escaped(e->f, source, false);
  fputs("; the parameters are in ", e->f);
  put_escaped(e->f, weights_name, false);
  fputs(".\n", e->f);
  fprintf(e->f, "cnnc: %d\nname: ", CNNC_FORMAT_VERSION);
  if (!put_str(e, g->name)) cannot(e, "the model name is not UTF-8");
  fputs("\nweights: ", e->f);
  if (!put_str(e, weights_name))
    error_plain("cannot write the YAML spec: the weights file name '%s' is not UTF-8", weights_name);
  fputs("\ninputs:\n", e->f);
  if (g->ninputs == 0) cannot(e, "the model has no inputs; a spec needs at least one");
  for (int k = 0; k < g->ninputs; k++) {
    const Node *n = e->n = &g->nodes[g->inputs[k]];
    CNNC_ASSERT(g->inputs[k] == k); /* verify.c: inputs are nodes 0..ninputs-1, so layers keep their ids */
    fputs("  - {name: ", e->f);
    put_name(e, n->name);
    put_shape(e, "shape", &n->shape);
    fputs("}\n", e->f);
  }
  fputs("outputs: [", e->f);
  for (int k = 0; k < g->noutputs; k++) {
    if (k) fputs(", ", e->f);
    e->n = &g->nodes[g->outputs[k]];
    put_name(e, e->n->name);
  }
  fputs("]\n", e->f);
  put_layers(e);
}

/* ---- the safetensors file ---- */

/* s as a JSON string: quotes, backslashes and control characters
 * escaped, the rest (UTF-8, checked when the YAML was written) as is. */
static void put_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
    else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
    else fputc(*c, f);
  }
  fputc('"', f);
}

/* Every node's parameters, in node order: an 8-byte little-endian header
 * length, the JSON header padded with spaces to a multiple of 8 bytes (as
 * the safetensors library does), then the F32 data, little-endian. */
static unsigned char *safetensors(E *e, size_t *len) {
  Graph *g = e->g;
  char *hdr = NULL;
  size_t hlen = 0, data = 0;
  FILE *f = open_memstream(&hdr, &hlen);
  if (!f) {
    error_plain("out of memory writing the weights file");
    return NULL;
  }
  fputc('{', f);
  bool first = true;
  for (int id = 0; id < g->nnodes; id++) {
    Param *p[4];
    node_params(&g->nodes[id], p);
    for (int i = 0; i < 4; i++) {
      if (!p[i]) continue;
      size_t bytes = (size_t)shape_numel(&p[i]->shape) * sizeof(float); /* fits: verify.c */
      if (!first) fputc(',', f);
      first = false;
      put_json_str(f, p[i]->name);
      fputs(":{\"dtype\":\"F32\",\"shape\":[", f);
      for (int k = 0; k < p[i]->shape.rank; k++) fprintf(f, "%s%lld", k ? "," : "", (long long)p[i]->shape.dim[k]);
      fprintf(f, "],\"data_offsets\":[%zu,%zu]}", data, data + bytes);
      data += bytes;
    }
  }
  fputc('}', f);
  while ((ftell(f) + 8) % 8) fputc(' ', f);
  fclose(f);
  if (!hdr) {
    error_plain("out of memory writing the weights file");
    return NULL;
  }
  *len = 8 + hlen + data;
  unsigned char *buf = arena_alloc(e->a, *len), *o = buf;
  for (int i = 0; i < 8; i++) *o++ = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(o, hdr, hlen);
  o += hlen;
  free(hdr);
  for (int id = 0; id < g->nnodes; id++) {
    Param *p[4];
    node_params(&g->nodes[id], p);
    for (int i = 0; i < 4; i++) {
      if (!p[i]) continue;
      CNNC_ASSERT(p[i]->data);
      for (int64_t k = 0, n = shape_numel(&p[i]->shape); k < n; k++) {
        uint32_t u;
        memcpy(&u, &p[i]->data[k], sizeof u);
        for (int b = 0; b < 4; b++) *o++ = (unsigned char)(u >> (8 * b));
      }
    }
  }
  CNNC_ASSERT(o == buf + *len);
  return buf;
}

/* ---- the check: what was written reads back as the same graph ---- */

/* Which of alpha (1) and beta (2) activation k uses. */
static unsigned act_params(ActKind k) {
  switch (k) {
  case ACT_LEAKY_RELU:
  case ACT_ELU:
  case ACT_SOFTPLUS:
  case ACT_POW: return 1;
  case ACT_SELU:
  case ACT_HARDSIGMOID:
  case ACT_SCALE:
  case ACT_CLIP: return 3;
  default: return 0;
  }
}

static bool ints_eq(const int *a, const int *b, int n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

static bool conv_same(const ConvAttr *x, const ConvAttr *y) {
  return x->filters == y->filters && ints_eq(x->kernel, y->kernel, 2) && ints_eq(x->stride, y->stride, 2) &&
         ints_eq(x->pad, y->pad, 4) && ints_eq(x->dilation, y->dilation, 2) &&
         ints_eq(x->output_padding, y->output_padding, 2) && x->groups == y->groups && x->has_bias == y->has_bias;
}

/* count_include_pad only counts for avgpool2d. */
static bool pool_same(Op op, const PoolAttr *x, const PoolAttr *y) {
  return ints_eq(x->kernel, y->kernel, 2) && ints_eq(x->stride, y->stride, 2) && ints_eq(x->pad, y->pad, 4) &&
         ints_eq(x->dilation, y->dilation, 2) && x->ceil_mode == y->ceil_mode &&
         (op != OP_AVGPOOL2D || x->count_include_pad == y->count_include_pad);
}

/* The axes as given only count for layer_norm (instance_norm's are dims 2..). */
static bool norm_same(Op op, const NormAttr *x, const NormAttr *y) {
  return x->first == y->first && x->count == y->count && same_bits(x->epsilon, y->epsilon) &&
         x->affine == y->affine && (op != OP_LAYER_NORM || (x->naxes == y->naxes && ints_eq(x->axes, y->axes, x->naxes)));
}

static bool upsample_same(const UpsampleAttr *x, const UpsampleAttr *y) {
  return !memcmp(x->scale, y->scale, sizeof x->scale) && x->size[0] == y->size[0] && x->size[1] == y->size[1] &&
         x->bilinear == y->bilinear && x->coord == y->coord && x->nearest == y->nearest &&
         x->torch_cases == y->torch_cases;
}

/* The value of `value` only counts for constant padding. */
static bool pad_same(const PadAttr *x, const PadAttr *y) {
  return ints_eq(x->pad, y->pad, 4) && x->mode == y->mode &&
         (x->mode != PAD_CONSTANT || same_bits(x->value, y->value));
}

/* Slices compare by what they take, not by whether a split made them. */
static bool slice_same(const SliceAttr *x, const SliceAttr *y) {
  return x->axis == y->axis && x->start == y->start && x->end == y->end && x->step == y->step;
}

static bool reduce_same(const ReduceAttr *x, const ReduceAttr *y) {
  return x->axes == y->axes && x->keepdims == y->keepdims && x->naxes == y->naxes &&
         ints_eq(x->given, y->given, x->naxes);
}

/* Whether nodes a and b (of one op) have the same attributes. */
static bool attrs_same(const Node *a, const Node *b) {
  switch (a->op) {
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: return conv_same(&a->a.conv, &b->a.conv);
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: return pool_same(a->op, &a->a.pool, &b->a.pool);
  case OP_ADAPTIVE_AVGPOOL2D: return ints_eq(a->a.adaptive.out, b->a.adaptive.out, 2);
  case OP_BATCHNORM: return same_bits(a->a.bn.epsilon, b->a.bn.epsilon);
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: return norm_same(a->op, &a->a.norm, &b->a.norm);
  case OP_ACT: return a->act.kind != ACT_PRELU || a->a.num_parameters == b->a.num_parameters;
  case OP_CONCAT: return a->a.concat.axis == b->a.concat.axis;
  case OP_SLICE: return slice_same(&a->a.slice, &b->a.slice);
  case OP_TRANSPOSE:
    return a->a.transpose.rank == b->a.transpose.rank &&
           ints_eq(a->a.transpose.perm, b->a.transpose.perm, a->a.transpose.rank);
  case OP_PAD: return pad_same(&a->a.pad, &b->a.pad);
  case OP_UPSAMPLE: return upsample_same(&a->a.upsample, &b->a.upsample);
  case OP_FLATTEN: return a->a.flatten.start_dim == b->a.flatten.start_dim;
  case OP_RESHAPE: return shape_eq(&a->a.reshape.shape, &b->a.reshape.shape);
  case OP_CONSTANT: return shape_eq(&a->a.constant.shape, &b->a.constant.shape);
  case OP_DENSE:
  case OP_LINEAR: return a->a.dense.units == b->a.dense.units && a->a.dense.has_bias == b->a.dense.has_bias;
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: return reduce_same(&a->a.reduce, &b->a.reduce);
  case OP_SOFTMAX: return a->a.softmax.axis == b->a.softmax.axis && a->a.softmax.log == b->a.softmax.log;
  default: return true;
  }
}

static bool params_same(const Node *a, const Node *b) {
  Param *pa[4], *pb[4];
  node_params(a, pa);
  node_params(b, pb);
  for (int i = 0; i < 4; i++)
    if (!pa[i] != !pb[i] || (pa[i] && (strcmp(pa[i]->name, pb[i]->name) || !shape_eq(&pa[i]->shape, &pb[i]->shape))))
      return false;
  return true;
}

/* What differs between node a and node b (of the same id), or NULL. */
static const char *node_diff(const Node *a, const Node *b) {
  unsigned keys = act_params(a->act.kind); /* the others ignore alpha and beta */
  if (a->op != b->op) return "its op";
  if (strcmp(a->name, b->name)) return "its name";
  if (a->nin != b->nin || (a->nin && !ints_eq(a->in, b->in, a->nin))) return "its inputs";
  if (!shape_eq(&a->shape, &b->shape)) return "its shape";
  if (a->input_index != b->input_index || a->output_index != b->output_index) return "its place among the outputs";
  if (a->act.kind != b->act.kind || ((keys & 1) && !same_bits(a->act.alpha, b->act.alpha)) ||
      ((keys & 2) && !same_bits(a->act.beta, b->act.beta)))
    return "its activation";
  if (!attrs_same(a, b)) return "its attributes";
  if (!params_same(a, b)) return "its parameters";
  return NULL;
}

/* Reads the text back with spec.c (as if from `path`) and compares: what
 * spec.c rejects or reads differently is reported, so that no file is
 * written that does not say what the graph says. */
static void check_read_back(E *e, const char *path, const char *text, size_t len) {
  Graph *g = e->g, *b = spec_parse_string(e->a, path, text, len);
  if (!b || !shape_infer(b)) {
    note_at(g->name_loc, "in the YAML spec that --emit-yaml would write: cnnc cannot write this model as a spec");
    return;
  }
  CNNC_ASSERT(b->nnodes == g->nnodes && b->noutputs == g->noutputs); /* one node per node written */
  for (int i = 0; i < g->nnodes; i++) {
    const char *d = node_diff(&g->nodes[i], &b->nodes[i]);
    if (d) {
      e->n = &g->nodes[i];
      cannot(e, "it would read back with another value of %s", d);
    }
  }
}

bool emit_yaml(Graph *g, const char *path, const char *source, const char *weights_name, YamlSpec *out) {
  int errors0 = diag_error_count();
  E e = {.g = g, .a = g->arena};
  char *text = NULL;
  size_t len = 0;
  e.f = open_memstream(&text, &len);
  if (!e.f) {
    error_plain("out of memory writing the YAML spec");
    return false;
  }
  put_graph(&e, source, weights_name);
  fclose(e.f);
  if (!text) {
    error_plain("out of memory writing the YAML spec");
    return false;
  }
  out->yaml = arena_alloc(g->arena, len + 1);
  memcpy((char *)out->yaml, text, len);
  out->yaml_len = len;
  free(text);
  if (diag_error_count() != errors0) return false;
  check_read_back(&e, path, out->yaml, out->yaml_len);
  if (diag_error_count() != errors0) return false;
  out->weights = safetensors(&e, &out->weights_len);
  return diag_error_count() == errors0;
}
