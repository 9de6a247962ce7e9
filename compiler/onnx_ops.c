/*
 * onnx_ops.c: one handler per ONNX operator, translating a node into IR
 * nodes with ONNX's semantics (opsets 6 to 18).
 *
 * Each handler first checks the node's attributes against the ones it
 * supports (an unknown one is an error naming it) and the values of those
 * it cannot follow, then, if its inputs are known, emits IR nodes
 * (onnx_emit) and binds the node's outputs (onnx_out).  Handlers that see
 * a "bad" input (its own node failed and was reported) stop after the
 * checks: that is how one run reports every unsupported node.
 *
 * Weights must be constants (initializers, Constant nodes, or folded):
 * Conv's W and B, Gemm's B and C, MatMul's constant operand, the norms'
 * scale and bias.  Shapes are known while translating (the scratch graph),
 * so attributes that depend on them (auto_pad, Flatten's axis, Softmax's
 * coercion to 2-D before opset 13, Squeeze without axes, ...) become plain
 * IR attributes here.
 */
#include "onnx_t.h"

#include <math.h>
#include <string.h>

static bool live(const Val *v) { return v && v->kind != V_BAD; }

static const char *out0(T *t) { return t->node->n_output ? t->node->output[0] : ""; }

static bool emit1(T *t, Node n, Val *x) {
  Val *v = onnx_emit(t, n, out0(t), &x, 1);
  onnx_out(t, 0, v);
  return live(v);
}

static Val *need_const(T *t, int k, const char *what) {
  Val *v = onnx_in(t, k);
  if (!v) {
    onnx_fail(t, "input %d (%s) is missing", k, what);
    return NULL;
  }
  if (v->kind == V_BAD) return NULL;
  if (v->kind != V_CONST) {
    onnx_fail(t, "input %d (%s) must be a constant (an initializer or a Constant node): cnnc compiles its "
                 "values into the object", k, what);
    return NULL;
  }
  return v;
}

/* A constant's values as int64 (shapes, axes, pads). */
static bool const_ints(T *t, const Val *c, int64_t *out, int max, int *n, const char *what) {
  if (c->numel > max) return onnx_fail(t, "%s has %lld values; at most %d are supported", what, (long long)c->numel, max);
  for (int64_t i = 0; i < c->numel; i++) out[i] = c->is_int ? c->i[i] : (int64_t)c->f[i];
  *n = (int)c->numel;
  return true;
}

static bool const_float(T *t, const Val *c, float *out, const char *what) {
  if (c->numel != 1) return onnx_fail(t, "%s must be a scalar, got shape %s", what, onnx_shape_str(t, &c->shape));
  *out = c->is_int ? (float)c->i[0] : c->f[0];
  return true;
}

/* A constant's values as floats (converted in place once). */
static bool floats_of(T *t, Val *c) {
  if (!c->is_int) return true;
  c->f = arena_array(t->a, (size_t)c->numel + 1, sizeof(float));
  for (int64_t k = 0; k < c->numel; k++) c->f[k] = (float)c->i[k];
  c->is_int = false;
  return true;
}

static int norm_axis(T *t, int64_t axis, int rank, const char *what) {
  if (axis < -rank || axis >= rank) {
    onnx_fail(t, "%s %lld is out of range for rank %d", what, (long long)axis, rank);
    return -1;
  }
  return (int)(axis < 0 ? axis + rank : axis);
}

/* ---- element-wise ---- */

static bool act(T *t, const char *attrs, ActKind k, float alpha, float beta) {
  if (!onnx_check_attrs(t, attrs)) return false;
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  Node n = {.op = OP_ACT, .act = {k, alpha, beta}};
  return emit1(t, n, x);
}

static bool op_relu(T *t) { return act(t, "", ACT_RELU, 0, 0); }
static bool op_sigmoid(T *t) { return act(t, "", ACT_SIGMOID, 0, 0); }
static bool op_tanh(T *t) { return act(t, "", ACT_TANH, 0, 0); }
static bool op_exp(T *t) { return act(t, "", ACT_EXP, 0, 0); }
static bool op_neg(T *t) { return act(t, "", ACT_NEG, 0, 0); }
static bool op_abs(T *t) { return act(t, "", ACT_ABS, 0, 0); }
static bool op_sqrt(T *t) { return act(t, "", ACT_SQRT, 0, 0); }
static bool op_reciprocal(T *t) { return act(t, "", ACT_RECIPROCAL, 0, 0); }
static bool op_erf(T *t) { return act(t, "", ACT_ERF, 0, 0); }
static bool op_softplus(T *t) { return act(t, "", ACT_SOFTPLUS, 1, 0); }
static bool op_hardswish(T *t) { return act(t, "", ACT_HARDSWISH, 0, 0); }
static bool op_leaky_relu(T *t) { return act(t, "alpha", ACT_LEAKY_RELU, onnx_attr_float(t, "alpha", 0.01f), 0); }
static bool op_elu(T *t) { return act(t, "alpha", ACT_ELU, onnx_attr_float(t, "alpha", 1.0f), 0); }

static bool op_selu(T *t) {
  return act(t, "alpha gamma", ACT_SELU, onnx_attr_float(t, "alpha", 1.67326319217681884765625f),
             onnx_attr_float(t, "gamma", 1.05070102214813232421875f));
}

static bool op_hardsigmoid(T *t) {
  return act(t, "alpha beta", ACT_HARDSIGMOID, onnx_attr_float(t, "alpha", 0.2f), onnx_attr_float(t, "beta", 0.5f));
}

/* Clip: min/max attributes before opset 11, optional constant inputs after. */
static bool op_clip(T *t) {
  float lo = -INFINITY, hi = INFINITY;
  if (t->opset < 11) {
    if (!onnx_check_attrs(t, "min max")) return false;
    lo = onnx_attr_float(t, "min", -INFINITY), hi = onnx_attr_float(t, "max", INFINITY);
  } else {
    if (!onnx_check_attrs(t, "")) return false;
    for (int k = 1; k <= 2; k++) {
      if (!onnx_in(t, k)) continue;
      Val *c = need_const(t, k, k == 1 ? "min" : "max");
      if (!c || !const_float(t, c, k == 1 ? &lo : &hi, k == 1 ? "min" : "max")) return false;
    }
  }
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  Node n = {.op = OP_ACT, .act = {ACT_CLIP, lo, hi}};
  return emit1(t, n, x);
}

/* PRelu with a slope that broadcasts to x otherwise than per channel:
 * relu(x) + slope * min(x, 0), exactly x or slope * x. */
static bool prelu_broadcast(T *t, Val *x, Val *s) {
  bool fits = s->shape.rank <= x->shape.rank;
  for (int i = 0; fits && i < s->shape.rank; i++) {
    int64_t sd = s->shape.dim[i], xd = x->shape.dim[x->shape.rank - s->shape.rank + i];
    fits = sd == 1 || sd == xd;
  }
  if (!fits)
    return onnx_fail(t, "a slope of shape %s does not broadcast to the input's %s", onnx_shape_str(t, &s->shape),
                     onnx_shape_str(t, &x->shape));
  floats_of(t, s);
  Val *zero = onnx_const(t, onnx_name(t, "zero"), (Shape){1, {1}}, arena_array(t->a, 1, sizeof(float)), NULL);
  Val *ins[2] = {x, zero};
  Val *neg = onnx_emit(t, (Node){.op = OP_MIN}, onnx_name(t, "neg"), ins, 2);
  Val *pos = onnx_emit(t, (Node){.op = OP_ACT, .act = {ACT_RELU, 0, 0}}, onnx_name(t, "pos"), &x, 1);
  if (!live(neg) || !live(pos)) return false;
  ins[0] = s, ins[1] = neg;
  Val *sn = onnx_emit(t, (Node){.op = OP_MUL}, onnx_name(t, "scaled"), ins, 2);
  if (!live(sn)) return false;
  ins[0] = pos, ins[1] = sn;
  Val *v = onnx_emit(t, (Node){.op = OP_ADD}, out0(t), ins, 2);
  onnx_out(t, 0, v);
  return live(v);
}

/* PRelu: a scalar slope, or one per channel (dim 1 of x), or else through
 * broadcasting binary ops. */
static bool op_prelu(T *t) {
  if (!onnx_check_attrs(t, "")) return false;
  Val *x = onnx_in(t, 0), *s = need_const(t, 1, "slope");
  if (!live(x) || !s) return false;
  int64_t C = x->shape.rank >= 2 ? x->shape.dim[1] : 1;
  bool per_channel = s->numel == C && x->shape.rank >= 2;
  /* from opset 7 the slope broadcasts (aligned from the right); before, C values are one per channel */
  for (int i = 0; per_channel && t->opset >= 7 && i < s->shape.rank; i++) {
    int xd = x->shape.rank - s->shape.rank + i;
    per_channel = s->shape.dim[i] == (xd == 1 ? C : 1);
  }
  if (s->numel != 1 && !per_channel) return prelu_broadcast(t, x, s);
  Node n = {.op = OP_ACT, .act = {ACT_PRELU, 0, 0}};
  n.a.num_parameters = (int)s->numel;
  n.weight = onnx_param(t, out0(t), "weight", s);
  return emit1(t, n, x);
}

/* B of a binary op before opset 7: only with broadcast = 1 may its shape
 * differ from A's, as a contiguous run of A's dims from `axis` (default:
 * A's last dims) or a single element.  Returned with trailing 1s so that
 * numpy broadcasting (the IR's) lines it up the same way. */
static Val *legacy_broadcast(T *t, Val *a, Val *b) {
  if (shape_eq(&a->shape, &b->shape)) return b;
  if (!onnx_attr_int(t, "broadcast", 0))
    return onnx_fail(t, "B of shape %s for A of shape %s needs broadcast = 1 (opset %lld)", onnx_shape_str(t, &b->shape),
                     onnx_shape_str(t, &a->shape), (long long)t->opset), NULL;
  if (b->numel == 1 || !onnx_attr(t, "axis")) return b; /* suffix matching: numpy's */
  int ra = a->shape.rank, rb = b->shape.rank, axis = norm_axis(t, onnx_attr_int(t, "axis", 0), ra, "axis");
  if (axis < 0) return NULL;
  if (axis + rb > ra) return onnx_fail(t, "B of rank %d does not fit A of rank %d from axis %d", rb, ra, axis), NULL;
  for (int i = 0; i < rb; i++)
    if (b->shape.dim[i] != a->shape.dim[axis + i])
      return onnx_fail(t, "B of shape %s is not A's %s from axis %d", onnx_shape_str(t, &b->shape),
                       onnx_shape_str(t, &a->shape), axis), NULL;
  Shape s = b->shape;
  while (s.rank < ra - axis) s.dim[s.rank++] = 1;
  if (b->kind == V_CONST) {
    Val *v = arena_alloc(t->a, sizeof *v);
    *v = *b;
    v->shape = s;
    return v;
  }
  Node r = {.op = OP_RESHAPE};
  r.a.reshape.shape = s;
  Val *v = onnx_emit(t, r, onnx_name(t, "bcast"), &b, 1);
  return live(v) ? v : NULL;
}

/* Add, Sub, Mul, Div, Max, Min (n-ary for Sum, Max, Min).  A scalar
 * constant operand of Add, Sub or Mul becomes an exact `scale` activation
 * (x + c, x - c, c - x, x * c round exactly as the binary op does). */
static bool binary(T *t, Op op, bool nary) {
  bool legacy = !nary && t->opset < 7; /* Add, Sub, Mul, Div before opset 7: broadcast and axis */
  if (!onnx_check_attrs(t, legacy ? "axis broadcast" : "")) return false;
  int nin = onnx_nin(t);
  if (!nary && nin != 2) return onnx_fail(t, "takes 2 inputs, got %d", nin);
  if (nin < 1) return onnx_fail(t, "needs at least one input");
  Val **ins = arena_array(t->a, (size_t)nin, sizeof *ins);
  for (int k = 0; k < nin; k++)
    if (!live(ins[k] = onnx_in(t, k))) return false;
  if (legacy && !(ins[1] = legacy_broadcast(t, ins[0], ins[1]))) return false;
  if (nin == 1) { /* Sum, Max, Min of one tensor: itself */
    onnx_out(t, 0, ins[0]);
    return true;
  }
  if (nin == 2 && (op == OP_ADD || op == OP_SUB || op == OP_MUL)) {
    for (int k = 0; k < 2; k++) {
      Val *c = ins[k], *x = ins[1 - k];
      if (c->kind != V_CONST || c->numel != 1 || x->kind != V_NODE || c->shape.rank > x->shape.rank) continue;
      float v = c->is_int ? (float)c->i[0] : c->f[0];
      Act a = op == OP_MUL ? (Act){ACT_SCALE, v, 0}
              : op == OP_ADD ? (Act){ACT_SCALE, 1, v}
              : k == 1 ? (Act){ACT_SCALE, 1, -v} /* x - c */
                       : (Act){ACT_SCALE, -1, v}; /* c - x */
      Node n = {.op = OP_ACT, .act = a};
      return emit1(t, n, x);
    }
  }
  Node n = {.op = op};
  Val *v = onnx_emit(t, n, out0(t), ins, nin);
  onnx_out(t, 0, v);
  return live(v);
}

static bool op_add(T *t) { return binary(t, OP_ADD, false); }
static bool op_sub(T *t) { return binary(t, OP_SUB, false); }
static bool op_mul(T *t) { return binary(t, OP_MUL, false); }
static bool op_div(T *t) { return binary(t, OP_DIV, false); }
static bool op_sum(T *t) { return binary(t, OP_ADD, true); }
static bool op_max(T *t) { return binary(t, OP_MAX, true); }
static bool op_min(T *t) { return binary(t, OP_MIN, true); }

static bool op_pow(T *t) {
  if (!onnx_check_attrs(t, t->opset < 7 ? "axis broadcast" : "")) return false; /* a scalar exponent: any axis fits */
  Val *x = onnx_in(t, 0), *e = need_const(t, 1, "exponent");
  float p = 0;
  if (!live(x) || !e) return false;
  if (e->numel != 1)
    return onnx_fail(t, "an exponent of shape %s is not supported: cnnc's Pow takes one exponent for every element",
                     onnx_shape_str(t, &e->shape));
  if (!const_float(t, e, &p, "the exponent")) return false;
  if (x->kind != V_NODE) return onnx_fail(t, "the base must be computed, not a constant");
  Node n = {.op = OP_ACT, .act = {ACT_POW, p, 0}};
  return emit1(t, n, x);
}

/* ---- views and data movement ---- */

static bool reshape_to(T *t, Val *x, Shape s, const char *name) {
  Node n = {.op = OP_RESHAPE};
  n.a.reshape.shape = s;
  Val *v = onnx_emit(t, n, name, &x, 1);
  onnx_out(t, 0, v);
  return live(v);
}

/* Output 0 is input 0 (Identity, Dropout, Cast to float32: the caller
 * checked the attributes). */
static bool pass_through(T *t) {
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  onnx_out(t, 0, x);
  return true;
}

static bool op_identity(T *t) { return onnx_check_attrs(t, "") && pass_through(t); }

/* Dropout: the identity in inference (ratio ignored, training_mode false). */
static bool op_dropout(T *t) {
  if (!onnx_check_attrs(t, t->opset < 7 ? "is_test ratio" : t->opset < 12 ? "ratio" : "seed")) return false;
  if (t->opset >= 12 && onnx_in(t, 2)) {
    Val *m = need_const(t, 2, "training_mode");
    if (!m) return false;
    if (m->numel != 1 || (m->is_int ? m->i[0] : (int64_t)m->f[0]) != 0)
      return onnx_fail(t, "training_mode must be false: cnnc compiles models for inference");
  }
  return pass_through(t);
}

static bool op_flatten(T *t) {
  if (!onnx_check_attrs(t, "axis")) return false;
  int64_t axis = onnx_attr_int(t, "axis", 1);
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  int a = axis == x->shape.rank ? x->shape.rank : norm_axis(t, axis, x->shape.rank, "axis");
  if (a < 0) return false;
  Shape s = {2, {1, 1}};
  for (int i = 0; i < x->shape.rank; i++) s.dim[i < a ? 0 : 1] *= x->shape.dim[i];
  return reshape_to(t, x, s, out0(t));
}

static bool op_reshape(T *t) {
  if (!onnx_check_attrs(t, t->opset < 5 ? "shape" : "allowzero")) return false;
  Val *x = onnx_in(t, 0), *c = need_const(t, 1, "shape");
  int64_t d[MAX_RANK];
  int n = 0;
  if (!live(x) || !c || !const_ints(t, c, d, MAX_RANK, &n, "the shape")) return false;
  Shape s = {n, {0}};
  for (int i = 0; i < n; i++) {
    if (d[i] == 0 && onnx_attr_int(t, "allowzero", 0)) return onnx_fail(t, "allowzero with a 0 in the shape (an empty tensor) is not supported");
    if (d[i] < -1) return onnx_fail(t, "shape entry %lld is not a size, 0 or -1", (long long)d[i]);
    s.dim[i] = d[i];
  }
  return reshape_to(t, x, s, out0(t));
}

/* Axes from the attribute (before `from_opset`) or input 1. */
static int get_axes(T *t, int from_opset, int64_t *axes) {
  if (t->opset < from_opset) return onnx_attr_ints(t, "axes", axes, MAX_RANK);
  if (!onnx_in(t, 1)) return -1;
  Val *c = need_const(t, 1, "axes");
  int n = 0;
  if (!c || !const_ints(t, c, axes, MAX_RANK, &n, "axes")) return -2;
  return n;
}

static bool op_squeeze(T *t) {
  if (!onnx_check_attrs(t, t->opset < 13 ? "axes" : "")) return false;
  int64_t axes[MAX_RANK];
  int na = get_axes(t, 13, axes);
  Val *x = onnx_in(t, 0);
  if (na == -2 || !live(x)) return false;
  unsigned drop = 0;
  for (int i = 0; i < na; i++) {
    int a = norm_axis(t, axes[i], x->shape.rank, "axis");
    if (a < 0) return false;
    if (x->shape.dim[a] != 1) return onnx_fail(t, "dimension %d has size %lld, not 1", a, (long long)x->shape.dim[a]);
    drop |= 1u << a;
  }
  Shape s = {0};
  for (int i = 0; i < x->shape.rank; i++)
    if (na >= 0 ? !(drop & (1u << i)) : x->shape.dim[i] != 1) s.dim[s.rank++] = x->shape.dim[i];
  if (s.rank == 0) s = (Shape){1, {1}};
  return reshape_to(t, x, s, out0(t));
}

static bool op_unsqueeze(T *t) {
  if (!onnx_check_attrs(t, t->opset < 13 ? "axes" : "")) return false;
  int64_t axes[MAX_RANK];
  int na = get_axes(t, 13, axes);
  Val *x = onnx_in(t, 0);
  if (na == -2 || !live(x)) return false;
  if (na < 0) return onnx_fail(t, "needs axes");
  int rank = x->shape.rank + na;
  if (rank > MAX_RANK) return onnx_fail(t, "the result would have rank %d; cnnc's tensors have at most %d", rank, MAX_RANK);
  unsigned add = 0;
  for (int i = 0; i < na; i++) {
    int a = norm_axis(t, axes[i], rank, "axis");
    if (a < 0) return false;
    add |= 1u << a;
  }
  Shape s = {rank, {0}};
  for (int i = 0, k = 0; i < rank; i++) s.dim[i] = add & (1u << i) ? 1 : x->shape.dim[k++];
  return reshape_to(t, x, s, out0(t));
}

static bool op_transpose(T *t) {
  if (!onnx_check_attrs(t, "perm")) return false;
  int64_t perm[MAX_RANK];
  int np = onnx_attr_ints(t, "perm", perm, MAX_RANK);
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  Node n = {.op = OP_TRANSPOSE};
  n.a.transpose.rank = x->shape.rank;
  for (int i = 0; i < x->shape.rank; i++) /* default: the dims reversed */
    n.a.transpose.perm[i] = np >= 0 ? (int)perm[i < np ? i : 0] : x->shape.rank - 1 - i;
  if (np >= 0 && np != x->shape.rank) return onnx_fail(t, "perm has %d entries for a rank-%d input", np, x->shape.rank);
  return emit1(t, n, x);
}

static bool op_concat(T *t) {
  if (!onnx_check_attrs(t, "axis")) return false;
  if (!onnx_attr(t, "axis")) return onnx_fail(t, "needs the attribute 'axis'");
  int nin = onnx_nin(t);
  Val **ins = arena_array(t->a, (size_t)nin + 1, sizeof *ins);
  for (int k = 0; k < nin; k++)
    if (!live(ins[k] = onnx_in(t, k))) return false;
  Node n = {.op = OP_CONCAT};
  n.a.concat.axis = (int)onnx_attr_int(t, "axis", 1);
  Val *v = onnx_emit(t, n, out0(t), ins, nin);
  onnx_out(t, 0, v);
  return live(v);
}

/* The length of ONNX's Slice of `dim` elements (starts and ends clamped). */
static int64_t slice_len(int64_t dim, int64_t b, int64_t e, int64_t step) {
  if (b < 0) b += dim;
  if (e < 0) e += dim;
  if (step > 0) {
    b = b < 0 ? 0 : b > dim ? dim : b;
    e = e < 0 ? 0 : e > dim ? dim : e;
    return e > b ? (e - b - 1) / step + 1 : 0;
  }
  b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
  e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
  return b > e ? (b - e - 1) / -step + 1 : 0;
}

static Val *slice1(T *t, Val *x, int axis, int64_t start, int64_t end, int64_t step, const char *name) {
  Node n = {.op = OP_SLICE};
  n.a.slice = (SliceAttr){.axis = axis, .start = start, .end = end, .step = step};
  return onnx_emit(t, n, name, &x, 1);
}

/* Split: `split` sizes (attribute before opset 13, input after), or equal
 * parts (opset 18's num_outputs: the last part may be smaller). */
static bool op_split(T *t) {
  if (!onnx_check_attrs(t, t->opset < 13 ? "axis split" : t->opset < 18 ? "axis" : "axis num_outputs")) return false;
  int64_t sizes[256];
  int ns = -1, nout = (int)t->node->n_output;
  if (nout > 256) return onnx_fail(t, "more than 256 outputs");
  if (t->opset < 13) ns = onnx_attr_ints(t, "split", sizes, 256);
  else if (onnx_in(t, 1)) {
    Val *c = need_const(t, 1, "split");
    if (!c || !const_ints(t, c, sizes, 256, &ns, "split")) return false;
  }
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  int a = norm_axis(t, onnx_attr_int(t, "axis", 0), x->shape.rank, "axis");
  if (a < 0) return false;
  int64_t dim = x->shape.dim[a];
  if (ns < 0) { /* equal parts */
    int64_t each = (dim + nout - 1) / nout;
    if (t->opset < 18 && dim % nout) return onnx_fail(t, "axis %d of length %lld does not split into %d equal parts", a, (long long)dim, nout);
    for (int k = 0; k < nout; k++) sizes[k] = k < nout - 1 ? each : dim - each * (nout - 1);
    ns = nout;
  }
  if (ns != nout) return onnx_fail(t, "split has %d sizes for %d outputs", ns, nout);
  int64_t start = 0;
  for (int k = 0; k < nout; k++) {
    if (sizes[k] < 0 || start + sizes[k] > dim) return onnx_fail(t, "the split sizes do not add up to the axis length %lld", (long long)dim);
    Val *v = sizes[k] ? slice1(t, x, a, start, start + sizes[k], 1, t->node->output[k]) : NULL;
    if (!sizes[k]) return onnx_fail(t, "a split part of size 0 (an empty tensor) is not supported");
    onnx_out(t, k, v);
    start += sizes[k];
  }
  if (start != dim) return onnx_fail(t, "the split sizes add up to %lld, not the axis length %lld", (long long)start, (long long)dim);
  return true;
}

/* Slice: one IR slice per axis, chained; starts/ends/axes/steps are
 * attributes before opset 10, constant inputs after. */
static bool op_slice(T *t) {
  if (!onnx_check_attrs(t, t->opset < 10 ? "starts ends axes" : "")) return false;
  int64_t v[4][MAX_RANK];
  int n[4] = {-1, -1, -1, -1};
  static const char *const what[4] = {"starts", "ends", "axes", "steps"};
  for (int k = 0; k < 4; k++) {
    if (t->opset < 10) {
      if (k < 3) n[k] = onnx_attr_ints(t, what[k], v[k], MAX_RANK);
    } else if (onnx_in(t, k + 1)) {
      Val *c = need_const(t, k + 1, what[k]);
      if (!c || !const_ints(t, c, v[k], MAX_RANK, &n[k], what[k])) return false;
    }
  }
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  if (n[0] < 0 || n[1] != n[0]) return onnx_fail(t, "needs as many starts as ends");
  if ((n[2] >= 0 && n[2] != n[0]) || (n[3] >= 0 && n[3] != n[0])) return onnx_fail(t, "axes and steps must match starts");
  Val *cur = x;
  for (int i = 0; i < n[0]; i++) {
    int a = norm_axis(t, n[2] >= 0 ? v[2][i] : i, x->shape.rank, "axis");
    int64_t step = n[3] >= 0 ? v[3][i] : 1;
    if (a < 0) return false;
    if (step == 0) return onnx_fail(t, "a step of 0");
    if (step == INT64_MIN || slice_len(cur->shape.dim[a], v[0][i], v[1][i], step) == 0)
      return onnx_fail(t, "an empty result (axis %d from %lld to %lld in steps of %lld) is not supported: cnnc's "
                          "tensors have no zero dimension", a, (long long)v[0][i], (long long)v[1][i], (long long)step);
    const char *name = i == n[0] - 1 ? out0(t) : onnx_name(t, "slice");
    if (!live(cur = slice1(t, cur, a, v[0][i], v[1][i], step, name))) return false;
  }
  if (n[0] == 0) cur = onnx_emit(t, (Node){.op = OP_DROPOUT}, out0(t), &x, 1);
  onnx_out(t, 0, cur);
  return live(cur);
}

/* Gather on a computed tensor with constant indices: one slice per run
 * of consecutive indices, concatenated along the axis, reshaped to
 * x.shape[:axis] + indices.shape + x.shape[axis+1:] when that differs. */
enum { GATHER_MAX_RUNS = 256 };

static bool op_gather(T *t) {
  if (!onnx_check_attrs(t, "axis")) return false;
  Val *x = onnx_in(t, 0), *idx = need_const(t, 1, "indices");
  if (!live(x) || !idx) return false;
  int a = norm_axis(t, onnx_attr_int(t, "axis", 0), x->shape.rank, "axis");
  if (a < 0) return false;
  int64_t dim = x->shape.dim[a], n = idx->numel;
  if (n == 0) return onnx_fail(t, "empty indices (an empty result) are not supported");
  int rank = x->shape.rank - 1 + idx->shape.rank;
  if (rank > MAX_RANK) return onnx_fail(t, "the result would have rank %d; cnnc's tensors have at most %d", rank, MAX_RANK);
  Shape r = {0}, cat = x->shape;
  for (int i = 0; i < a; i++) r.dim[r.rank++] = x->shape.dim[i];
  for (int i = 0; i < idx->shape.rank; i++) r.dim[r.rank++] = idx->shape.dim[i];
  for (int i = a + 1; i < x->shape.rank; i++) r.dim[r.rank++] = x->shape.dim[i];
  if (r.rank == 0) r = (Shape){1, {1}};
  cat.dim[a] = n;
  int64_t *k = arena_array(t->a, (size_t)n, sizeof *k);
  int runs = 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t v = idx->is_int ? idx->i[j] : (int64_t)idx->f[j];
    k[j] = v < 0 ? v + dim : v;
    if (k[j] < 0 || k[j] >= dim) return onnx_fail(t, "index %lld is out of range for length %lld", (long long)v, (long long)dim);
    runs += j == 0 || k[j] != k[j - 1] + 1;
  }
  if (runs > GATHER_MAX_RUNS)
    return onnx_fail(t, "indices in %d runs of consecutive values are not supported (at most %d)", runs, GATHER_MAX_RUNS);
  bool reshape = !shape_eq(&cat, &r);
  const char *last = reshape ? onnx_name(t, "gather") : out0(t);
  Val **parts = arena_array(t->a, (size_t)runs, sizeof *parts);
  int np = 0;
  for (int64_t j = 0, e; j < n; j = e) {
    for (e = j + 1; e < n && k[e] == k[e - 1] + 1; e++) {}
    parts[np] = slice1(t, x, a, k[j], k[e - 1] + 1, 1, runs == 1 ? last : onnx_name(t, "run"));
    if (!live(parts[np++])) return false;
  }
  Val *v = parts[0];
  if (runs > 1) {
    Node c = {.op = OP_CONCAT};
    c.a.concat.axis = a;
    if (!live(v = onnx_emit(t, c, last, parts, np))) return false;
  }
  if (reshape) return reshape_to(t, v, r, out0(t));
  onnx_out(t, 0, v);
  return true;
}

static bool op_cast(T *t) {
  if (!onnx_check_attrs(t, "to")) return false;
  if (onnx_attr_int(t, "to", 0) != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
    return onnx_fail(t, "casting a computed tensor to another type than float32 is not supported");
  return pass_through(t);
}

/* Pad of the spatial dims of [N, C, H, W]; negative pads crop. */
static bool op_pad(T *t) {
  if (!onnx_check_attrs(t, t->opset < 11 ? "mode pads value" : "mode")) return false;
  const char *mode = onnx_attr_str(t, "mode", "constant");
  int m = !strcmp(mode, "constant") ? PAD_CONSTANT : !strcmp(mode, "reflect") ? PAD_REFLECT : !strcmp(mode, "edge") ? PAD_EDGE : -1;
  if (m < 0) return onnx_fail(t, "mode '%s' is not supported (constant, reflect, edge)", mode);
  int64_t pads[2 * MAX_RANK];
  int np = -1;
  float value = 0;
  if (t->opset < 11) {
    np = onnx_attr_ints(t, "pads", pads, 2 * MAX_RANK);
    value = onnx_attr_float(t, "value", 0);
  } else {
    Val *c = need_const(t, 1, "pads");
    if (!c || !const_ints(t, c, pads, 2 * MAX_RANK, &np, "pads")) return false;
    if (onnx_in(t, 2)) {
      Val *cv = need_const(t, 2, "constant_value");
      if (!cv || !const_float(t, cv, &value, "constant_value")) return false;
    }
    if (onnx_in(t, 3)) return onnx_fail(t, "the axes input (opset 18) is not supported");
  }
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  int r = x->shape.rank;
  if (np != 2 * r) return onnx_fail(t, "pads has %d values for a rank-%d input (2 per dimension)", np, r);
  if (r != 4 || pads[0] || pads[1] || pads[4] || pads[5])
    return onnx_fail(t, "pads on other dimensions than H and W of an [N, C, H, W] tensor are not supported");
  int64_t p[4] = {pads[2], pads[3], pads[6], pads[7]}; /* top, left, bottom, right */
  Val *cur = x;
  for (int s = 0; s < 2; s++) /* crop first: negative pads are slices */
    if (p[s] < 0 || p[s + 2] < 0) {
      int64_t dim = cur->shape.dim[2 + s], lo = p[s] < 0 ? -p[s] : 0, hi = dim - (p[s + 2] < 0 ? -p[s + 2] : 0);
      if (!live(cur = slice1(t, cur, 2 + s, lo, hi, 1, onnx_name(t, "crop")))) return false;
    }
  Node n = {.op = OP_PAD};
  for (int k = 0; k < 4; k++) {
    if (p[k] > INT32_MAX) return onnx_fail(t, "a pad of %lld is too large", (long long)p[k]);
    n.a.pad.pad[k] = p[k] > 0 ? (int)p[k] : 0;
  }
  n.a.pad.mode = (PadMode)m;
  n.a.pad.value = value;
  Val *v = onnx_emit(t, n, out0(t), &cur, 1);
  onnx_out(t, 0, v);
  return live(v);
}

/* ---- convolution and pooling ---- */

typedef struct {
  int sd;                /* spatial dims: 1 ([N, C, L], computed as [N, C, 1, L]) or 2 */
  int64_t kernel[2], stride[2], dil[2], pads[4]; /* 2-D (a 1-D window is 1 x L); pads: top, left, bottom, right */
  const char *auto_pad;
} Window;

/* An ints attribute of `per` x sd values into its 2-D place in out. */
static bool spatial_attr(T *t, const char *name, int sd, int per, int64_t *out) {
  int64_t v[8];
  int n = onnx_attr_ints(t, name, v, 8);
  if (n < 0) return true; /* absent, or reported */
  if (n != per * sd) return onnx_fail(t, "%s has %d values for a %d-D window (%d expected)", name, n, sd, per * sd);
  for (int i = 0; i < n; i++) out[sd == 2 ? i : 2 * i + 1] = v[i];
  return true;
}

/* The window attributes; kernel_from: W's spatial dims (nfrom of them). */
static bool window(T *t, Window *w, const int64_t *kernel_from, int nfrom) {
  int64_t v[8];
  int n = onnx_attr_ints(t, "kernel_shape", v, 8);
  if (n < 0 && !kernel_from) return onnx_fail(t, "needs kernel_shape");
  w->sd = n >= 0 ? n : nfrom;
  if (w->sd != 1 && w->sd != 2)
    return onnx_fail(t, "a %d-D window is not supported: cnnc supports 1-D and 2-D windows ([N, C, L] and [N, C, H, "
                        "W] inputs)", w->sd);
  for (int i = 0; i < 2; i++) w->kernel[i] = w->stride[i] = w->dil[i] = 1;
  memset(w->pads, 0, sizeof w->pads);
  if (n >= 0) spatial_attr(t, "kernel_shape", w->sd, 1, w->kernel);
  else for (int i = 0; i < nfrom; i++) w->kernel[2 - nfrom + i] = kernel_from[i];
  if (!spatial_attr(t, "strides", w->sd, 1, w->stride) || !spatial_attr(t, "dilations", w->sd, 1, w->dil) ||
      !spatial_attr(t, "pads", w->sd, 2, w->pads))
    return false;
  w->auto_pad = onnx_attr_str(t, "auto_pad", "NOTSET");
  for (int i = 0; i < 2; i++)
    if (w->kernel[i] < 1 || w->stride[i] < 1 || w->dil[i] < 1 || w->kernel[i] > INT32_MAX || w->stride[i] > INT32_MAX ||
        w->dil[i] > INT32_MAX)
      return onnx_fail(t, "kernel, strides and dilations must be positive (and fit 32 bits)");
  for (int i = 0; i < 4; i++)
    if (w->pads[i] < 0 || w->pads[i] > INT32_MAX) return onnx_fail(t, "pads must be non-negative (and fit 32 bits)");
  if (strcmp(w->auto_pad, "NOTSET") && strcmp(w->auto_pad, "VALID") && strcmp(w->auto_pad, "SAME_UPPER") &&
      strcmp(w->auto_pad, "SAME_LOWER"))
    return onnx_fail(t, "auto_pad '%s' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", w->auto_pad);
  return true;
}

/* auto_pad SAME_*: output ceil(in / stride), the padding split with the
 * odd one at the end (UPPER) or the start (LOWER); VALID: none. */
static void auto_pads(const Window *w, const Shape *in, int64_t *pads) {
  if (!strcmp(w->auto_pad, "NOTSET")) return;
  memset(pads, 0, 4 * sizeof *pads);
  if (!strcmp(w->auto_pad, "VALID")) return;
  for (int i = 0; i < 2; i++) {
    int64_t size = in->dim[2 + i], out = (size + w->stride[i] - 1) / w->stride[i];
    int64_t total = (out - 1) * w->stride[i] + (w->kernel[i] - 1) * w->dil[i] + 1 - size;
    if (total < 0) total = 0;
    bool upper = !strcmp(w->auto_pad, "SAME_UPPER");
    pads[i] = upper ? total / 2 : total - total / 2;
    pads[i + 2] = total - pads[i];
  }
}

/* x as [N, C, H, W]: itself, or [N, C, L] viewed as [N, C, 1, L] (sd 1);
 * NULL after reporting another rank. */
static Val *as_2d(T *t, Val *x, int sd) {
  if (x->shape.rank == sd + 2 && sd == 2) return x;
  if (x->shape.rank != sd + 2)
    return onnx_fail(t, "an input of rank %d for a %d-D window: cnnc supports 1-D and 2-D convolutions and pooling "
                        "([N, C, L] and [N, C, H, W] inputs)", x->shape.rank, sd), NULL;
  Node r = {.op = OP_RESHAPE};
  r.a.reshape.shape = (Shape){4, {x->shape.dim[0], x->shape.dim[1], 1, x->shape.dim[2]}};
  Val *v = onnx_emit(t, r, onnx_name(t, "as2d"), &x, 1);
  return live(v) ? v : NULL;
}

/* Emits n on x4 as output 0; a 1-D op's result [N, C, 1, L] as [N, C, L]. */
static bool emit_window(T *t, Node n, Val *x4, int sd) {
  if (sd == 2) return emit1(t, n, x4);
  Val *v = onnx_emit(t, n, onnx_name(t, "2d"), &x4, 1);
  if (!live(v)) return false;
  return reshape_to(t, v, (Shape){3, {v->shape.dim[0], v->shape.dim[1], v->shape.dim[3]}}, out0(t));
}

/* W of a 1-D op [M, C, K] as [M, C, 1, K]. */
static Val *weight_2d(T *t, Val *w, int sd) {
  if (sd == 2) return w;
  Val *v = arena_alloc(t->a, sizeof *v);
  *v = *w;
  v->shape = (Shape){4, {w->shape.dim[0], w->shape.dim[1], 1, w->shape.dim[2]}};
  return v;
}

static bool op_conv(T *t) {
  if (!onnx_check_attrs(t, "auto_pad dilations group kernel_shape pads strides")) return false;
  Val *x = onnx_in(t, 0), *w = need_const(t, 1, "W"), *b = onnx_in(t, 2) ? need_const(t, 2, "B") : NULL;
  if (!live(x) || !w || (onnx_in(t, 2) && !b)) return false;
  if (w->shape.rank != 3 && w->shape.rank != 4)
    return onnx_fail(t, "W of shape %s: cnnc supports 1-D and 2-D convolutions", onnx_shape_str(t, &w->shape));
  Window win;
  if (!window(t, &win, &w->shape.dim[2], w->shape.rank - 2)) return false;
  if (win.sd != w->shape.rank - 2) return onnx_fail(t, "kernel_shape does not match W's shape %s", onnx_shape_str(t, &w->shape));
  if (!(x = as_2d(t, x, win.sd))) return false;
  w = weight_2d(t, w, win.sd);
  if (win.kernel[0] != w->shape.dim[2] || win.kernel[1] != w->shape.dim[3])
    return onnx_fail(t, "kernel_shape does not match W's shape %s", onnx_shape_str(t, &w->shape));
  auto_pads(&win, &x->shape, win.pads);
  int64_t group = onnx_attr_int(t, "group", 1);
  if (group < 1 || group > INT32_MAX || w->shape.dim[0] % group || w->shape.dim[0] > INT32_MAX)
    return onnx_fail(t, "group %lld does not divide the %lld filters", (long long)group, (long long)w->shape.dim[0]);
  Node n = {.op = OP_CONV2D};
  ConvAttr *c = &n.a.conv;
  *c = (ConvAttr){.filters = (int)w->shape.dim[0], .groups = (int)group, .has_bias = b != NULL};
  for (int i = 0; i < 2; i++)
    c->kernel[i] = (int)win.kernel[i], c->stride[i] = (int)win.stride[i], c->dilation[i] = (int)win.dil[i];
  for (int i = 0; i < 4; i++) c->pad[i] = (int)win.pads[i];
  n.weight = onnx_param(t, out0(t), "weight", w);
  if (b) n.bias = onnx_param(t, out0(t), "bias", b);
  return emit_window(t, n, x, win.sd);
}

/* ConvTranspose: pads, or output_shape (the pads computed from it, split
 * as ONNX says; an output_shape larger than the full result adds rows and
 * columns at the end, as output_padding does). */
static bool op_conv_transpose(T *t) {
  if (!onnx_check_attrs(t, "auto_pad dilations group kernel_shape output_padding output_shape pads strides")) return false;
  Val *x = onnx_in(t, 0), *w = need_const(t, 1, "W"), *b = onnx_in(t, 2) ? need_const(t, 2, "B") : NULL;
  if (!live(x) || !w || (onnx_in(t, 2) && !b)) return false;
  if (w->shape.rank != 3 && w->shape.rank != 4)
    return onnx_fail(t, "W of shape %s: cnnc supports 1-D and 2-D convolutions", onnx_shape_str(t, &w->shape));
  Window win;
  if (!window(t, &win, &w->shape.dim[2], w->shape.rank - 2)) return false;
  if (win.sd != w->shape.rank - 2) return onnx_fail(t, "kernel_shape does not match W's shape %s", onnx_shape_str(t, &w->shape));
  if (!(x = as_2d(t, x, win.sd))) return false;
  w = weight_2d(t, w, win.sd);
  int64_t group = onnx_attr_int(t, "group", 1), op[2] = {0, 0}, os[4] = {1, 1, 1, 1}, v[8];
  if (group < 1 || group > INT32_MAX || w->shape.dim[0] % group) return onnx_fail(t, "group %lld does not divide the input channels", (long long)group);
  if (!spatial_attr(t, "output_padding", win.sd, 1, op)) return false;
  for (int i = 0; i < 2; i++)
    if (op[i] < 0 || op[i] > INT32_MAX) return onnx_fail(t, "output_padding must be non-negative (and fit 32 bits)");
  int nos = onnx_attr_ints(t, "output_shape", v, 4);
  if (nos >= 0 && nos != win.sd && nos != win.sd + 2)
    return onnx_fail(t, "output_shape has %d values for a %d-D window", nos, win.sd);
  for (int i = 0; i < win.sd && nos >= 0; i++) /* the spatial dims, also when [N, C, ...] is given in full */
    os[2 - win.sd + i] = v[nos - win.sd + i];
  bool same = !strcmp(win.auto_pad, "SAME_UPPER") || !strcmp(win.auto_pad, "SAME_LOWER");
  if (nos >= 0 || same)
    for (int i = 0; i < 2; i++) {
      int64_t in = x->shape.dim[2 + i], full = win.stride[i] * (in - 1) + op[i] + (win.kernel[i] - 1) * win.dil[i] + 1;
      int64_t want = nos >= 0 ? os[i] : in * win.stride[i], total = full - want;
      if (total < 0) { /* a larger output: its last rows (columns) get no taps, as output_padding's */
        if (-total > INT32_MAX - op[i]) return onnx_fail(t, "output_shape %lld is too large", (long long)want);
        op[i] -= total;
        win.pads[i] = win.pads[i + 2] = 0;
        continue;
      }
      bool upper = !strcmp(win.auto_pad, "SAME_UPPER");
      win.pads[i] = upper ? total / 2 : total - total / 2;
      win.pads[i + 2] = total - win.pads[i];
    }
  else if (!strcmp(win.auto_pad, "VALID"))
    memset(win.pads, 0, sizeof win.pads);
  Node nd = {.op = OP_CONV_TRANSPOSE2D};
  ConvAttr *c = &nd.a.conv;
  *c = (ConvAttr){.filters = (int)(w->shape.dim[1] * group), .groups = (int)group, .has_bias = b != NULL};
  for (int i = 0; i < 2; i++)
    c->kernel[i] = (int)win.kernel[i], c->stride[i] = (int)win.stride[i], c->dilation[i] = (int)win.dil[i],
    c->output_padding[i] = (int)op[i];
  for (int i = 0; i < 4; i++) c->pad[i] = (int)win.pads[i];
  nd.weight = onnx_param(t, out0(t), "weight", w);
  if (b) nd.bias = onnx_param(t, out0(t), "bias", b);
  return emit_window(t, nd, x, win.sd);
}

static bool pool(T *t, Op op) {
  bool is_max = op == OP_MAXPOOL2D;
  const char *attrs = is_max ? "auto_pad ceil_mode dilations kernel_shape pads storage_order strides"
                             : "auto_pad ceil_mode count_include_pad kernel_shape pads strides";
  if (!onnx_check_attrs(t, attrs)) return false;
  Window win;
  if (!window(t, &win, NULL, 0)) return false;
  Val *x = onnx_in(t, 0);
  if (!live(x) || !(x = as_2d(t, x, win.sd))) return false;
  auto_pads(&win, &x->shape, win.pads);
  Node n = {.op = op};
  PoolAttr *p = &n.a.pool;
  *p = (PoolAttr){.ceil_mode = onnx_attr_int(t, "ceil_mode", 0) != 0,
                  .count_include_pad = onnx_attr_int(t, "count_include_pad", 0) != 0};
  for (int i = 0; i < 2; i++)
    p->kernel[i] = (int)win.kernel[i], p->stride[i] = (int)win.stride[i], p->dilation[i] = (int)win.dil[i];
  for (int i = 0; i < 4; i++) p->pad[i] = (int)win.pads[i];
  return emit_window(t, n, x, win.sd);
}

static bool op_maxpool(T *t) { return pool(t, OP_MAXPOOL2D); }
static bool op_avgpool(T *t) { return pool(t, OP_AVGPOOL2D); }

static bool global_pool(T *t, Op op) {
  if (!onnx_check_attrs(t, "")) return false;
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  int sd = x->shape.rank == 3 ? 1 : 2;
  if (!(x = as_2d(t, x, sd))) return false;
  return emit_window(t, (Node){.op = op}, x, sd);
}

static bool op_global_avgpool(T *t) { return global_pool(t, OP_GLOBAL_AVGPOOL2D); }
static bool op_global_maxpool(T *t) { return global_pool(t, OP_GLOBAL_MAXPOOL2D); }

/* ---- normalisation ---- */

/* Input k, a constant of exactly n values. */
static Val *vec_const(T *t, int k, const char *what, int64_t n) {
  Val *c = need_const(t, k, what);
  if (c && c->numel != n) {
    onnx_fail(t, "%s has %lld values, expected %lld", what, (long long)c->numel, (long long)n);
    return NULL;
  }
  return c;
}

/* BatchNormalization in inference: on [N, C, ...] (ranks other than 2 and
 * 4 through a reshape to [N, C, rest, 1]). */
static bool op_batchnorm(T *t) {
  const char *attrs = t->opset < 7 ? "epsilon momentum spatial is_test consumed_inputs"
                      : t->opset < 9 ? "epsilon momentum spatial" : t->opset < 14 ? "epsilon momentum" : "epsilon momentum training_mode";
  if (!onnx_check_attrs(t, attrs)) return false;
  if (onnx_attr_int(t, "spatial", 1) != 1) return onnx_fail(t, "spatial = 0 is not supported");
  if (onnx_attr_int(t, "training_mode", 0) != 0) return onnx_fail(t, "training_mode must be 0: cnnc compiles models for inference");
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  if (x->shape.rank < 2) return onnx_fail(t, "an input of rank %d; BatchNormalization needs [N, C, ...]", x->shape.rank);
  int64_t C = x->shape.dim[1];
  Val *p[4];
  static const char *const what[4] = {"scale", "B", "mean", "var"};
  for (int k = 0; k < 4; k++)
    if (!(p[k] = vec_const(t, k + 1, what[k], C))) return false;
  Val *cur = x;
  bool reshaped = x->shape.rank != 2 && x->shape.rank != 4;
  if (reshaped) {
    Node r = {.op = OP_RESHAPE};
    r.a.reshape.shape = (Shape){4, {x->shape.dim[0], C, shape_numel(&x->shape) / (x->shape.dim[0] * C), 1}};
    if (!live(cur = onnx_emit(t, r, onnx_name(t, "bn_in"), &cur, 1))) return false;
  }
  Node n = {.op = OP_BATCHNORM};
  n.a.bn.epsilon = onnx_attr_float(t, "epsilon", 1e-5f);
  const char *name = reshaped ? onnx_name(t, "bn") : out0(t);
  n.weight = onnx_param(t, name, "weight", p[0]);
  n.bias = onnx_param(t, name, "bias", p[1]);
  n.mean = onnx_param(t, name, "running_mean", p[2]);
  n.var = onnx_param(t, name, "running_var", p[3]);
  Val *v = onnx_emit(t, n, name, &cur, 1);
  if (reshaped && live(v)) return reshape_to(t, v, x->shape, out0(t));
  onnx_out(t, 0, v);
  return live(v);
}

static bool op_instance_norm(T *t) {
  if (!onnx_check_attrs(t, "epsilon")) return false;
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  if (x->shape.rank < 3) return onnx_fail(t, "an input of rank %d; InstanceNormalization needs [N, C, D1, ...]", x->shape.rank);
  Val *s = vec_const(t, 1, "scale", x->shape.dim[1]), *b = vec_const(t, 2, "B", x->shape.dim[1]);
  if (!s || !b) return false;
  Node n = {.op = OP_INSTANCE_NORM};
  n.a.norm = (NormAttr){.epsilon = onnx_attr_float(t, "epsilon", 1e-5f), .affine = true};
  n.weight = onnx_param(t, out0(t), "weight", s);
  n.bias = onnx_param(t, out0(t), "bias", b);
  return emit1(t, n, x);
}

/* Output k of the node, computed by IR node n from ins: named as the
 * output when it is used, else internally. */
static Val *emit_out(T *t, int k, Node n, const char *what, Val *const *ins, int nin) {
  bool out = onnx_out_used(t, k);
  Val *v = onnx_emit(t, n, out ? t->node->output[k] : onnx_name(t, what), ins, nin);
  if (out) onnx_out(t, k, v);
  return v;
}

/* LayerNormalization's Mean and InvStdDev (outputs 1 and 2), when used, as
 * ONNX defines them: Mean = ReduceMean(X), InvStdDev = 1 / Sqrt(ReduceMean((X
 * - Mean)^2) + epsilon), over axis.. with the reduced dims kept as 1. */
static bool layer_norm_stats(T *t, Val *x, int a, float eps) {
  if (!onnx_out_used(t, 1) && !onnx_out_used(t, 2)) return true;
  Node r = {.op = OP_REDUCE_MEAN};
  r.a.reduce.keepdims = true;
  r.a.reduce.naxes = x->shape.rank - a;
  for (int i = a; i < x->shape.rank; i++) r.a.reduce.given[i - a] = i;
  Val *mean = emit_out(t, 1, r, "mean", &x, 1);
  if (!live(mean) || !onnx_out_used(t, 2)) return live(mean);
  Val *ins[2] = {x, mean};
  Val *d = onnx_emit(t, (Node){.op = OP_SUB}, onnx_name(t, "dev"), ins, 2);
  if (!live(d)) return false;
  ins[0] = ins[1] = d;
  Val *dd = onnx_emit(t, (Node){.op = OP_MUL}, onnx_name(t, "sq"), ins, 2), *v = live(dd) ? onnx_emit(t, r, onnx_name(t, "var"), &dd, 1) : dd;
  if (live(v)) v = onnx_emit(t, (Node){.op = OP_ACT, .act = {ACT_SCALE, 1, eps}}, onnx_name(t, "var_eps"), &v, 1);
  if (live(v)) v = onnx_emit(t, (Node){.op = OP_ACT, .act = {ACT_SQRT, 0, 0}}, onnx_name(t, "std"), &v, 1);
  return live(v) && live(emit_out(t, 2, (Node){.op = OP_ACT, .act = {ACT_RECIPROCAL, 0, 0}}, "inv_std", &v, 1));
}

/* LayerNormalization (opset 17): over dims axis..; Scale and B of the
 * normalised shape (B optional: zeros). */
static bool op_layer_norm(T *t) {
  if (!onnx_check_attrs(t, "axis epsilon stash_type")) return false;
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  int a = norm_axis(t, onnx_attr_int(t, "axis", -1), x->shape.rank, "axis");
  if (a < 0) return false;
  int64_t R = 1;
  for (int i = a; i < x->shape.rank; i++) R *= x->shape.dim[i];
  Val *s = vec_const(t, 1, "Scale", R), *b = onnx_in(t, 2) ? vec_const(t, 2, "B", R) : NULL;
  if (!s || (onnx_in(t, 2) && !b)) return false;
  if (!b) b = onnx_const(t, onnx_name(t, "zeros"), (Shape){1, {R}}, arena_array(t->a, (size_t)R, sizeof(float)), NULL);
  Node n = {.op = OP_LAYER_NORM};
  n.a.norm = (NormAttr){.epsilon = onnx_attr_float(t, "epsilon", 1e-5f), .affine = true, .naxes = x->shape.rank - a};
  for (int i = 0; i < n.a.norm.naxes; i++) n.a.norm.axes[i] = a + i;
  n.weight = onnx_param(t, out0(t), "weight", s);
  n.bias = onnx_param(t, out0(t), "bias", b);
  return emit1(t, n, x) && layer_norm_stats(t, x, a, n.a.norm.epsilon);
}

/* Softmax, LogSoftmax: before opset 13 over the dims axis.. flattened
 * together (through reshapes); from 13 over one axis. */
static bool softmax(T *t, bool log) {
  if (!onnx_check_attrs(t, "axis")) return false;
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  int a = norm_axis(t, onnx_attr_int(t, "axis", t->opset < 13 ? 1 : -1), x->shape.rank, "axis");
  if (a < 0) return false;
  Node n = {.op = OP_SOFTMAX};
  n.a.softmax.log = log;
  if (t->opset >= 13 || a == x->shape.rank - 1) {
    n.a.softmax.axis = a;
    return emit1(t, n, x);
  }
  Shape flat = {2, {1, 1}};
  for (int i = 0; i < x->shape.rank; i++) flat.dim[i < a ? 0 : 1] *= x->shape.dim[i];
  Node r = {.op = OP_RESHAPE};
  r.a.reshape.shape = flat;
  Val *f = onnx_emit(t, r, onnx_name(t, "flat"), &x, 1);
  n.a.softmax.axis = 1;
  Val *s = live(f) ? onnx_emit(t, n, onnx_name(t, "softmax"), &f, 1) : f;
  if (!live(s)) return false;
  return reshape_to(t, s, x->shape, out0(t));
}

static bool op_softmax(T *t) { return softmax(t, false); }
static bool op_log_softmax(T *t) { return softmax(t, true); }

/* ---- matrix products ---- */

/* weight [units, K] from a constant: B^T (MatMul, Gemm without transB) or B. */
static Val *weight_rows(T *t, const Val *b, bool transposed, float alpha) {
  int64_t R = b->shape.dim[0], C = b->shape.dim[1];
  int64_t units = transposed ? R : C, K = transposed ? C : R;
  float *w = arena_array(t->a, (size_t)(units * K) + 1, sizeof(float));
  for (int64_t u = 0; u < units; u++)
    for (int64_t k = 0; k < K; k++) {
      double v = transposed ? b->f[u * C + k] : b->f[k * C + u];
      w[u * K + k] = (float)(alpha == 1 ? v : alpha * v);
    }
  return onnx_const(t, b->name, (Shape){2, {units, K}}, w, NULL);
}

/* Gemm: A (computed, [M, K]) times a constant B, plus C (a constant: a bias
 * when it is a vector; or computed: added). */
static bool op_gemm(T *t) {
  if (!onnx_check_attrs(t, t->opset < 7 ? "alpha beta broadcast transA transB" : "alpha beta transA transB")) return false;
  float alpha = onnx_attr_float(t, "alpha", 1), beta = onnx_attr_float(t, "beta", 1);
  bool ta = onnx_attr_int(t, "transA", 0), tb = onnx_attr_int(t, "transB", 0);
  Val *a = onnx_in(t, 0), *b = need_const(t, 1, "B"), *c = onnx_in(t, 2);
  if (!live(a) || !b || (c && !live(c))) return false;
  if (a->kind != V_NODE) return onnx_fail(t, "A must be computed (Gemm of two constants is not supported)");
  if (a->shape.rank != 2 || b->shape.rank != 2) return onnx_fail(t, "A and B must be matrices");
  floats_of(t, b);
  Val *w = weight_rows(t, b, tb, alpha);
  int64_t units = w->shape.dim[0];
  Val *cur = a;
  if (ta) {
    Node tr = {.op = OP_TRANSPOSE};
    tr.a.transpose = (TransposeAttr){.rank = 2, .perm = {1, 0}};
    if (!live(cur = onnx_emit(t, tr, onnx_name(t, "transA"), &a, 1))) return false;
  }
  if (cur->shape.dim[1] != w->shape.dim[1])
    return onnx_fail(t, "A's %lld columns do not match B's %lld rows", (long long)cur->shape.dim[1], (long long)w->shape.dim[1]);
  bool vec_bias = c && c->kind == V_CONST && beta != 0 && (c->numel == units || c->numel == 1) && c->shape.rank <= 2 &&
                  (c->shape.rank < 2 || c->shape.dim[0] == 1);
  Node n = {.op = OP_DENSE};
  n.a.dense = (DenseAttr){.units = (int)units, .has_bias = vec_bias};
  const char *name = c && !vec_bias && beta != 0 ? onnx_name(t, "gemm") : out0(t);
  n.weight = onnx_param(t, name, "weight", w);
  if (vec_bias) {
    floats_of(t, c);
    float *bv = arena_array(t->a, (size_t)units, sizeof(float));
    for (int64_t u = 0; u < units; u++) bv[u] = beta * c->f[c->numel == 1 ? 0 : u];
    n.bias = onnx_param(t, name, "bias", onnx_const(t, c->name, (Shape){1, {units}}, bv, NULL));
  }
  Val *v = onnx_emit(t, n, name, &cur, 1);
  if (c && !vec_bias && beta != 0 && live(v)) { /* a full [M, N] C, or a computed one: added */
    Val *cc = c;
    if (c->kind == V_NODE && beta != 1) {
      cc = onnx_emit(t, (Node){.op = OP_ACT, .act = {ACT_SCALE, beta, 0}}, onnx_name(t, "betaC"), &c, 1);
      if (!live(cc)) return false;
    } else if (c->kind == V_CONST && beta != 1) {
      floats_of(t, c);
      float *sv = arena_array(t->a, (size_t)c->numel, sizeof(float));
      for (int64_t k = 0; k < c->numel; k++) sv[k] = beta * c->f[k];
      cc = onnx_const(t, onnx_name(t, "C"), c->shape, sv, NULL);
    }
    Val *ins[2] = {v, cc};
    v = onnx_emit(t, (Node){.op = OP_ADD}, out0(t), ins, 2);
  }
  onnx_out(t, 0, v);
  return live(v);
}

/* MatMul of a computed tensor and a constant [K, N] (or [K]): linear over
 * the last axis. */
static bool op_matmul(T *t) {
  if (!onnx_check_attrs(t, "")) return false;
  Val *a = onnx_in(t, 0), *b = onnx_in(t, 1);
  if (!live(a) || !live(b)) return false;
  if (b->kind != V_CONST) return onnx_fail(t, "B must be a constant: cnnc supports MatMul with constant weights");
  if (a->kind != V_NODE) return onnx_fail(t, "A must be computed (MatMul of two constants is not supported)");
  if (b->shape.rank != 1 && b->shape.rank != 2)
    return onnx_fail(t, "B of shape %s: cnnc supports a constant matrix or vector", onnx_shape_str(t, &b->shape));
  if (a->shape.rank < 2) return onnx_fail(t, "A of rank %d: cnnc supports A of rank 2 or more", a->shape.rank);
  floats_of(t, b);
  Val bm = *b;
  if (b->shape.rank == 1) bm.shape = (Shape){2, {b->shape.dim[0], 1}};
  if (a->shape.dim[a->shape.rank - 1] != bm.shape.dim[0])
    return onnx_fail(t, "A's last dimension %lld does not match B's %lld rows", (long long)a->shape.dim[a->shape.rank - 1],
                     (long long)bm.shape.dim[0]);
  Val *w = weight_rows(t, &bm, false, 1);
  Node n = {.op = OP_LINEAR};
  n.a.dense = (DenseAttr){.units = (int)w->shape.dim[0], .has_bias = false};
  const char *name = b->shape.rank == 1 ? onnx_name(t, "matvec") : out0(t);
  n.weight = onnx_param(t, name, "weight", w);
  Val *v = onnx_emit(t, n, name, &a, 1);
  if (b->shape.rank == 1 && live(v)) { /* the vector's dim goes away */
    Shape s = a->shape;
    s.rank--;
    return reshape_to(t, v, s.rank ? s : (Shape){1, {1}}, out0(t));
  }
  onnx_out(t, 0, v);
  return live(v);
}

/* ---- resize ---- */

static bool coord_mode(T *t, const char *s, CoordMode *c) {
  static const char *const names[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(s, names[i])) return *c = (CoordMode)i, true;
  return onnx_fail(t, "coordinate_transformation_mode '%s' is not supported (half_pixel, pytorch_half_pixel, "
                      "align_corners, asymmetric, tf_half_pixel_for_nn)", s);
}

static bool nearest_mode(T *t, const char *s, NearestMode *m) {
  static const char *const names[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, names[i])) return *m = (NearestMode)i, true;
  return onnx_fail(t, "nearest_mode '%s' is not supported", s);
}

/* Resize (10: scales; 11+: roi, scales, sizes) and Upsample (7-9): along
 * H and W of [N, C, H, W], nearest or linear. */
static bool resize(T *t, bool upsample) {
  const char *attrs = upsample ? (t->opset < 9 ? "mode scales" : "mode")
                      : t->opset < 11 ? "mode"
                      : t->opset < 18 ? "coordinate_transformation_mode cubic_coeff_a exclude_outside extrapolation_value mode nearest_mode"
                                      : "antialias axes coordinate_transformation_mode cubic_coeff_a exclude_outside "
                                        "extrapolation_value keep_aspect_ratio_policy mode nearest_mode";
  if (!onnx_check_attrs(t, attrs)) return false;
  const char *mode = onnx_attr_str(t, "mode", "nearest");
  if (strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "bilinear"))
    return onnx_fail(t, "mode '%s' is not supported (nearest, linear)", mode);
  UpsampleAttr u = {.bilinear = strcmp(mode, "nearest") != 0, .coord = COORD_ASYMMETRIC, .nearest = NEAREST_FLOOR};
  if (!upsample && t->opset >= 11) {
    if (!coord_mode(t, onnx_attr_str(t, "coordinate_transformation_mode", "half_pixel"), &u.coord)) return false;
    if (!u.bilinear && !nearest_mode(t, onnx_attr_str(t, "nearest_mode", "round_prefer_floor"), &u.nearest)) return false;
  }
  if (onnx_attr_int(t, "antialias", 0)) return onnx_fail(t, "antialias is not supported");
  if (onnx_attr(t, "axes")) return onnx_fail(t, "the axes attribute is not supported");
  if (strcmp(onnx_attr_str(t, "keep_aspect_ratio_policy", "stretch"), "stretch")) return onnx_fail(t, "keep_aspect_ratio_policy other than stretch is not supported");
  float scales[MAX_RANK];
  int64_t sizes[MAX_RANK];
  int ns = -1, nz = -1;
  if (upsample && t->opset < 9) {
    const Onnx__AttributeProto *a = onnx_attr(t, "scales");
    if (!a || a->n_floats > MAX_RANK) return onnx_fail(t, "needs the attribute 'scales'");
    for (size_t i = 0; i < a->n_floats; i++) scales[i] = a->floats[i];
    ns = (int)a->n_floats;
  } else {
    int si = upsample || t->opset < 11 ? 1 : 2;
    Val *c = NULL;
    if (onnx_in(t, si) && (c = need_const(t, si, "scales")) && c->numel > 0) {
      if (c->numel > MAX_RANK) return onnx_fail(t, "scales has %lld values", (long long)c->numel);
      floats_of(t, c);
      for (int64_t i = 0; i < c->numel; i++) scales[i] = c->f[i];
      ns = (int)c->numel;
    } else if (onnx_in(t, si) && !c) {
      return false;
    }
    if (!upsample && t->opset >= 11 && onnx_in(t, 3)) {
      Val *z = need_const(t, 3, "sizes");
      if (!z || !const_ints(t, z, sizes, MAX_RANK, &nz, "sizes")) return false;
    }
  }
  Val *x = onnx_in(t, 0);
  if (!live(x)) return false;
  if (x->shape.rank != 4)
    return onnx_fail(t, "an input of rank %d is not supported: cnnc resizes [N, C, H, W] tensors along H and W", x->shape.rank);
  if ((ns >= 0) == (nz >= 0)) return onnx_fail(t, "needs scales or sizes (exactly one)");
  if ((ns >= 0 && ns != 4) || (nz >= 0 && nz != 4)) return onnx_fail(t, "scales or sizes must have 4 values for an [N, C, H, W] input");
  if (ns >= 0) {
    if (scales[0] != 1 || scales[1] != 1) return onnx_fail(t, "scales for N and C must be 1");
    if (!(scales[2] > 0) || !(scales[3] > 0)) return onnx_fail(t, "scales must be positive");
    /* ONNX maps align_corners through the unrounded length scale * in, PyTorch (and cnnc) through the output's */
    for (int i = 2; i < 4 && u.coord == COORD_ALIGN_CORNERS; i++)
      if ((double)scales[i] * (double)x->shape.dim[i] != floor((double)scales[i] * (double)x->shape.dim[i]))
        return onnx_fail(t, "align_corners with a scale that does not give a whole output length (%g x %lld) is not "
                            "supported", scales[i], (long long)x->shape.dim[i]);
    u.scale[0] = scales[2], u.scale[1] = scales[3];
  } else {
    if (sizes[0] != x->shape.dim[0] || sizes[1] != x->shape.dim[1]) return onnx_fail(t, "sizes for N and C must be the input's");
    if (sizes[2] < 1 || sizes[3] < 1) return onnx_fail(t, "sizes must be positive");
    u.size[0] = sizes[2], u.size[1] = sizes[3];
  }
  Node n = {.op = OP_UPSAMPLE};
  n.a.upsample = u;
  return emit1(t, n, x);
}

static bool op_resize(T *t) { return resize(t, false); }
static bool op_upsample(T *t) { return resize(t, true); }

/* ---- reductions ---- */

static bool reduce(T *t, Op op, int axes_input_opset) {
  if (!onnx_check_attrs(t, t->opset < axes_input_opset ? "axes keepdims" : "keepdims noop_with_empty_axes")) return false;
  int64_t axes[MAX_RANK];
  int na = get_axes(t, axes_input_opset, axes);
  Val *x = onnx_in(t, 0);
  if (na == -2 || !live(x)) return false;
  if (na <= 0 && onnx_attr_int(t, "noop_with_empty_axes", 0)) {
    onnx_out(t, 0, x);
    return true;
  }
  Node n = {.op = op};
  n.a.reduce.keepdims = onnx_attr_int(t, "keepdims", 1) != 0;
  n.a.reduce.naxes = na > 0 ? na : 0;
  for (int i = 0; i < na; i++) {
    int a = norm_axis(t, axes[i], x->shape.rank, "axis");
    if (a < 0) return false;
    n.a.reduce.given[i] = a;
  }
  return emit1(t, n, x);
}

static bool op_reduce_mean(T *t) { return reduce(t, OP_REDUCE_MEAN, 18); }
static bool op_reduce_sum(T *t) { return reduce(t, OP_REDUCE_SUM, 13); }
static bool op_reduce_max(T *t) { return reduce(t, OP_REDUCE_MAX, 18); }
static bool op_reduce_min(T *t) { return reduce(t, OP_REDUCE_MIN, 18); }

/* ---- the table ---- */

static const struct {
  const char *name;
  OpFn fn;
} ops[] = {
    {"Abs", op_abs}, {"Add", op_add}, {"AveragePool", op_avgpool}, {"BatchNormalization", op_batchnorm},
    {"Cast", op_cast}, {"Clip", op_clip}, {"Concat", op_concat}, {"Conv", op_conv},
    {"ConvTranspose", op_conv_transpose}, {"Div", op_div}, {"Dropout", op_dropout}, {"Elu", op_elu},
    {"Erf", op_erf}, {"Exp", op_exp}, {"Flatten", op_flatten}, {"Gather", op_gather}, {"Gemm", op_gemm},
    {"GlobalAveragePool", op_global_avgpool}, {"GlobalMaxPool", op_global_maxpool},
    {"HardSigmoid", op_hardsigmoid}, {"HardSwish", op_hardswish}, {"Identity", op_identity},
    {"InstanceNormalization", op_instance_norm}, {"LayerNormalization", op_layer_norm},
    {"LeakyRelu", op_leaky_relu}, {"LogSoftmax", op_log_softmax}, {"MatMul", op_matmul}, {"Max", op_max},
    {"MaxPool", op_maxpool}, {"Min", op_min}, {"Mul", op_mul}, {"Neg", op_neg}, {"PRelu", op_prelu},
    {"Pad", op_pad}, {"Pow", op_pow}, {"Reciprocal", op_reciprocal}, {"ReduceMax", op_reduce_max},
    {"ReduceMean", op_reduce_mean}, {"ReduceMin", op_reduce_min}, {"ReduceSum", op_reduce_sum},
    {"Relu", op_relu}, {"Reshape", op_reshape}, {"Resize", op_resize}, {"Selu", op_selu},
    {"Sigmoid", op_sigmoid}, {"Slice", op_slice}, {"Softmax", op_softmax}, {"Softplus", op_softplus},
    {"Split", op_split}, {"Sqrt", op_sqrt}, {"Squeeze", op_squeeze}, {"Sub", op_sub}, {"Sum", op_sum},
    {"Tanh", op_tanh}, {"Transpose", op_transpose}, {"Unsqueeze", op_unsqueeze}, {"Upsample", op_upsample},
};

OpFn onnx_op(const char *op_type) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(ops[i].name, op_type)) return ops[i].fn;
  return NULL;
}

const char *onnx_ops_list(void) {
  static char buf[2048];
  if (!buf[0]) {
    size_t n = 0;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "", ops[i].name);
    snprintf(buf + n, sizeof buf - n, "; and on constants: Constant, ConstantOfShape, Range, Shape and arithmetic");
  }
  return buf;
}
