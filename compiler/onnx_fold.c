/*
 * onnx_fold.c: nodes that compute on constants, evaluated while
 * translating.
 *
 * Exporters compute shapes at run time: x.view(x.size(0), -1) becomes
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape.  cnnc's shapes are
 * fixed, so Shape of any tensor is a constant here, and so is everything
 * computed from constants: Constant, Shape, Size, Gather, Cast,
 * ConstantOfShape, Range, Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * Dropout, Concat, Slice, Transpose, and the arithmetic Add, Sub, Mul,
 * Div, Neg with broadcasting, on int64 (shapes) or float values.  A folded
 * node adds nothing to the graph; its outputs are constants, which become
 * constant nodes only if a computing node uses them.
 *
 * Every result is bounded by --max-param-bytes before it is allocated.
 */
#include "onnx_t.h"

#include <stdint.h>

#include <math.h>
#include <string.h>

static int64_t at_i(const Val *v, int64_t k) { return v->is_int ? v->i[k] : (int64_t)v->f[k]; }
static double at_f(const Val *v, int64_t k) { return v->is_int ? (double)v->i[k] : v->f[k]; }

/* A new constant of shape s for output k (its name), values to be filled. */
static Val *result(T *t, int k, Shape s, bool is_int, bool *ok) {
  int64_t n = s.rank ? shape_numel(&s) : 1, bytes;
  if (n < 0 || !ck_mul(n, 8, &bytes) || bytes > cnnc_limits.param_bytes) {
    *ok = onnx_fail(t, "a constant of shape %s is too large (the limit set by --max-param-bytes)", onnx_shape_str(t, &s));
    return NULL;
  }
  const char *name = k < (int)t->node->n_output ? t->node->output[k] : onnx_name(t, "const");
  if (is_int) return onnx_const(t, name, s, NULL, arena_array(t->a, (size_t)n + 1, sizeof(int64_t)));
  return onnx_const(t, name, s, arena_array(t->a, (size_t)n + 1, sizeof(float)), NULL);
}

static bool all_const(T *t) {
  int n = onnx_nin(t);
  for (int k = 0; k < n; k++) {
    Val *v = onnx_in(t, k);
    if (v && v->kind != V_CONST) return false;
  }
  return true;
}

static int norm_axis(T *t, int64_t axis, int rank, bool *ok) {
  if (axis < -rank || axis >= rank) {
    *ok = onnx_fail(t, "axis %lld is out of range for rank %d", (long long)axis, rank);
    return -1;
  }
  return (int)(axis < 0 ? axis + rank : axis);
}

static void strides(const Shape *s, int64_t *st) {
  int64_t k = 1;
  for (int i = s->rank - 1; i >= 0; i--) st[i] = k, k *= s->dim[i];
}

/* ---- Constant ---- */

static bool fold_constant(T *t, bool *ok) {
  static const char *const kinds = "value value_float value_floats value_int value_ints";
  if (!onnx_check_attrs(t, kinds)) return *ok = false, true;
  const Onnx__AttributeProto *a = NULL;
  for (size_t i = 0; i < t->node->n_attribute; i++) a = t->node->attribute[i];
  if (!a) return *ok = onnx_fail(t, "needs a value"), true;
  Val *v;
  if (!strcmp(a->name, "value")) {
    if (!a->t) return *ok = onnx_fail(t, "value must be a tensor"), true;
    Shape s;
    int64_t n;
    int32_t dt = a->t->data_type;
    Loc at = t->loc;
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
        dt == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) {
      int64_t *d;
      if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) return *ok = onnx_fail(t, "boolean constants are not supported"), true;
      if (!onnx_tensor_int64s(t->m, a->t, at, &d, &n, &s)) return *ok = false, true;
      v = onnx_const(t, t->node->output[0], s, NULL, d);
    } else {
      float *d;
      if (!onnx_tensor_floats(t->m, a->t, at, &d, &n, &s)) return *ok = false, true;
      v = onnx_const(t, t->node->output[0], s, d, NULL);
    }
  } else {
    bool is_int = strstr(a->name, "int") != NULL, many = a->name[strlen(a->name) - 1] == 's';
    int64_t n = many ? (int64_t)(is_int ? a->n_ints : a->n_floats) : 1;
    Shape s = many ? (Shape){1, {n}} : (Shape){0};
    if (!(v = result(t, 0, s, is_int, ok))) return true;
    for (int64_t k = 0; k < n; k++)
      if (is_int) v->i[k] = many ? a->ints[k] : a->i;
      else v->f[k] = many ? a->floats[k] : a->f;
  }
  onnx_out(t, 0, v);
  return true;
}

/* ---- shapes ---- */

static bool fold_shape(T *t, bool *ok) {
  if (!onnx_check_attrs(t, t->opset < 15 ? "" : "start end")) return *ok = false, true;
  Val *x = onnx_in(t, 0);
  int r = x->shape.rank;
  int64_t start = onnx_attr_int(t, "start", 0), end = onnx_attr_int(t, "end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < start ? start : end > r ? r : end;
  Val *v = result(t, 0, (Shape){1, {end - start}}, true, ok);
  if (!v) return true;
  for (int64_t k = start; k < end; k++) v->i[k - start] = x->shape.dim[k];
  onnx_out(t, 0, v);
  return true;
}

static bool fold_size(T *t, bool *ok) {
  if (!onnx_check_attrs(t, "")) return *ok = false, true;
  Val *x = onnx_in(t, 0), *v = result(t, 0, (Shape){0}, true, ok);
  if (!v) return true;
  v->i[0] = x->shape.rank ? shape_numel(&x->shape) : 1;
  onnx_out(t, 0, v);
  return true;
}

/* The same values with a new shape (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity, Dropout on a constant): the handlers' logic through a scratch
 * node would need a graph; these few rules are simple enough to repeat. */
static bool fold_reshape(T *t, const char *op, bool *ok) {
  Val *x = onnx_in(t, 0);
  Shape s = x->shape;
  int64_t v[MAX_RANK];
  int n = 0;
  if (!strcmp(op, "Reshape")) {
    Val *c = onnx_in(t, 1);
    if (!c || c->numel > MAX_RANK) return *ok = onnx_fail(t, "a shape of %lld entries", (long long)(c ? c->numel : 0)), true;
    int64_t known = 1, infer = -1, numel = x->shape.rank ? x->numel : 1;
    s.rank = (int)c->numel;
    for (int i = 0; i < s.rank; i++) {
      int64_t d = at_i(c, i);
      if (d < -1 || (d == -1 && infer >= 0))
        return *ok = onnx_fail(t, "shape entry %lld is not a size, 0 or a single -1", (long long)d), true;
      s.dim[i] = d == 0 && i < x->shape.rank ? x->shape.dim[i] : d;
      if (d == -1) infer = i;
      else if (!ck_mul(known, s.dim[i], &known))
        return *ok = onnx_fail(t, "the shape's size overflows 64 bits"), true;
    }
    if (infer >= 0 && known > 0) s.dim[infer] = numel / known;
  } else if (!strcmp(op, "Flatten")) {
    int a = (int)onnx_attr_int(t, "axis", 1);
    if (a < 0) a += x->shape.rank;
    s = (Shape){2, {1, 1}};
    for (int i = 0; i < x->shape.rank; i++) s.dim[i < a ? 0 : 1] *= x->shape.dim[i];
  } else if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze")) {
    bool sq = op[0] == 'S';
    if (t->opset < 13) n = onnx_attr_ints(t, "axes", v, MAX_RANK);
    else if (onnx_in(t, 1)) {
      Val *c = onnx_in(t, 1);
      n = (int)c->numel;
      for (int i = 0; i < n && i < MAX_RANK; i++) v[i] = at_i(c, i);
    } else n = -1;
    int rank = sq ? x->shape.rank : x->shape.rank + (n > 0 ? n : 0);
    if (rank > MAX_RANK || n > MAX_RANK) return *ok = onnx_fail(t, "too many dimensions"), true;
    unsigned mask = 0;
    for (int i = 0; i < n; i++) {
      int a = norm_axis(t, v[i], rank, ok);
      if (a < 0) return true;
      mask |= 1u << a;
    }
    s.rank = 0;
    if (sq) {
      for (int i = 0; i < x->shape.rank; i++)
        if (n >= 0 ? !(mask & (1u << i)) : x->shape.dim[i] != 1) s.dim[s.rank++] = x->shape.dim[i];
    } else {
      for (int i = 0, k = 0; i < rank; i++) s.dim[s.rank++] = mask & (1u << i) ? 1 : x->shape.dim[k++];
    }
  }
  int64_t numel = s.rank ? shape_numel(&s) : 1;
  if (numel != x->numel) return *ok = onnx_fail(t, "cannot reshape %lld values into %s", (long long)x->numel, onnx_shape_str(t, &s)), true;
  Val *r = onnx_const(t, t->node->output[0], s, x->f, x->i);
  onnx_out(t, 0, r);
  return true;
}

/* ---- data ---- */

static void copy_elem(Val *dst, int64_t di, const Val *src, int64_t si) {
  if (dst->is_int) dst->i[di] = at_i(src, si);
  else dst->f[di] = (float)at_f(src, si);
}

static bool fold_gather(T *t, bool *ok) {
  Val *x = onnx_in(t, 0), *idx = onnx_in(t, 1);
  int a = norm_axis(t, onnx_attr_int(t, "axis", 0), x->shape.rank, ok);
  if (a < 0) return true;
  Shape s = {0};
  for (int i = 0; i < a; i++) s.dim[s.rank++] = x->shape.dim[i];
  for (int i = 0; i < idx->shape.rank; i++) s.dim[s.rank++] = idx->shape.dim[i];
  for (int i = a + 1; i < x->shape.rank; i++) s.dim[s.rank++] = x->shape.dim[i];
  if (s.rank > MAX_RANK) return *ok = onnx_fail(t, "the result has rank %d", s.rank), true;
  Val *v = result(t, 0, s, x->is_int, ok);
  if (!v) return true;
  int64_t outer = 1, inner = 1, dim = x->shape.dim[a];
  for (int i = 0; i < a; i++) outer *= x->shape.dim[i];
  for (int i = a + 1; i < x->shape.rank; i++) inner *= x->shape.dim[i];
  for (int64_t o = 0, d = 0; o < outer; o++)
    for (int64_t j = 0; j < idx->numel; j++) {
      int64_t k = at_i(idx, j);
      if (k < 0) k += dim;
      if (k < 0 || k >= dim) return *ok = onnx_fail(t, "index %lld is out of range for length %lld", (long long)at_i(idx, j), (long long)dim), true;
      for (int64_t i = 0; i < inner; i++) copy_elem(v, d++, x, (o * dim + k) * inner + i);
    }
  onnx_out(t, 0, v);
  return true;
}

static bool fold_cast(T *t, bool *ok) {
  Val *x = onnx_in(t, 0);
  int64_t to = onnx_attr_int(t, "to", 0);
  bool is_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
                to == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ||
                to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 || to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
  if (!is_int && to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    return *ok = onnx_fail(t, "a cast of a constant to type %lld is not supported", (long long)to), true;
  Val *v = result(t, 0, x->shape, is_int, ok);
  if (!v) return true;
  for (int64_t k = 0; k < x->numel; k++)
    if (is_int) v->i[k] = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? at_f(x, k) != 0 : (int64_t)at_f(x, k);
    else v->f[k] = (float)at_f(x, k);
  onnx_out(t, 0, v);
  return true;
}

static bool fold_constant_of_shape(T *t, bool *ok) {
  Val *c = onnx_in(t, 0);
  if (c->numel > MAX_RANK) return *ok = onnx_fail(t, "a shape of %lld dims", (long long)c->numel), true;
  Shape s = {(int)c->numel, {0}};
  for (int i = 0; i < s.rank; i++)
    if ((s.dim[i] = at_i(c, i)) < 1) return *ok = onnx_fail(t, "a dimension of %lld (empty tensors are not supported)", (long long)s.dim[i]), true;
  const Onnx__AttributeProto *a = onnx_attr(t, "value");
  bool is_int = a && a->t && a->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
                a->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  double fill = 0;
  if (a && a->t) {
    Shape vs;
    int64_t n;
    float *fd;
    int64_t *id;
    if (is_int ? !onnx_tensor_int64s(t->m, a->t, t->loc, &id, &n, &vs) : !onnx_tensor_floats(t->m, a->t, t->loc, &fd, &n, &vs))
      return *ok = false, true;
    if (n != 1) return *ok = onnx_fail(t, "value must hold one element"), true;
    fill = is_int ? (double)id[0] : fd[0];
  }
  Val *v = result(t, 0, s, is_int, ok);
  if (!v) return true;
  for (int64_t k = 0; k < v->numel; k++)
    if (is_int) v->i[k] = (int64_t)fill;
    else v->f[k] = (float)fill;
  onnx_out(t, 0, v);
  return true;
}

static bool fold_range(T *t, bool *ok) {
  Val *st = onnx_in(t, 0), *li = onnx_in(t, 1), *de = onnx_in(t, 2);
  if (!st || !li || !de || st->numel != 1 || li->numel != 1 || de->numel != 1)
    return *ok = onnx_fail(t, "start, limit and delta must be scalars"), true;
  bool is_int = st->is_int && li->is_int && de->is_int;
  double a = at_f(st, 0), b = at_f(li, 0), d = at_f(de, 0);
  if (d == 0) return *ok = onnx_fail(t, "a delta of 0"), true;
  double cnt = ceil((b - a) / d);
  if (!(cnt >= 1)) return *ok = onnx_fail(t, "an empty range"), true;
  if (cnt > 1e9) return *ok = onnx_fail(t, "a range of %.0f values", cnt), true;
  Val *v = result(t, 0, (Shape){1, {(int64_t)cnt}}, is_int, ok);
  if (!v) return true;
  for (int64_t k = 0; k < v->numel; k++)
    if (is_int) v->i[k] = at_i(st, 0) + k * at_i(de, 0);
    else v->f[k] = (float)(a + (double)k * d);
  onnx_out(t, 0, v);
  return true;
}

static bool fold_concat(T *t, bool *ok) {
  int n = onnx_nin(t);
  Val *x0 = onnx_in(t, 0);
  if (!x0) return false;
  int a = norm_axis(t, onnx_attr_int(t, "axis", 0), x0->shape.rank ? x0->shape.rank : 1, ok);
  if (a < 0) return true;
  Shape s = x0->shape.rank ? x0->shape : (Shape){1, {1}};
  bool is_int = true;
  s.dim[a] = 0;
  for (int k = 0; k < n; k++) {
    Val *x = onnx_in(t, k);
    if (!x) continue;
    is_int &= x->is_int;
    Shape xs = x->shape.rank ? x->shape : (Shape){1, {1}};
    if (xs.rank != s.rank) return *ok = onnx_fail(t, "inputs of different ranks"), true;
    s.dim[a] += xs.dim[a];
  }
  Val *v = result(t, 0, s, is_int, ok);
  if (!v) return true;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; i++) outer *= s.dim[i];
  for (int i = a + 1; i < s.rank; i++) inner *= s.dim[i];
  for (int64_t o = 0, d = 0; o < outer; o++)
    for (int k = 0; k < n; k++) {
      Val *x = onnx_in(t, k);
      if (!x) continue;
      int64_t len = (x->shape.rank ? x->shape.dim[a] : 1) * inner;
      for (int64_t i = 0; i < len; i++) copy_elem(v, d++, x, o * len + i);
    }
  onnx_out(t, 0, v);
  return true;
}

/* Slice and Transpose of a constant: a strided gather. */
static bool fold_strided(T *t, const Val *x, Shape s, const int64_t *st, int64_t base, bool *ok) {
  Val *v = result(t, 0, s, x->is_int, ok);
  if (!v) return true;
  int64_t idx[MAX_RANK] = {0};
  for (int64_t d = 0; d < v->numel; d++) {
    int64_t off = base;
    for (int i = 0; i < s.rank; i++) off += idx[i] * st[i];
    copy_elem(v, d, x, off);
    for (int i = s.rank - 1; i >= 0 && ++idx[i] == s.dim[i]; i--) idx[i] = 0;
  }
  onnx_out(t, 0, v);
  return true;
}

static bool fold_transpose(T *t, bool *ok) {
  Val *x = onnx_in(t, 0);
  int64_t perm[MAX_RANK], st[MAX_RANK], pst[MAX_RANK];
  int np = onnx_attr_ints(t, "perm", perm, MAX_RANK);
  strides(&x->shape, st);
  Shape s = {x->shape.rank, {0}};
  for (int i = 0; i < s.rank; i++) {
    int p = np >= 0 ? (int)perm[i] : s.rank - 1 - i;
    if (p < 0 || p >= s.rank) return *ok = onnx_fail(t, "perm entry %d is out of range", p), true;
    s.dim[i] = x->shape.dim[p], pst[i] = st[p];
  }
  return fold_strided(t, x, s, pst, 0, ok);
}

static bool fold_slice(T *t, bool *ok) {
  Val *x = onnx_in(t, 0);
  int64_t v[4][MAX_RANK], st[MAX_RANK], base = 0;
  int n[4] = {-1, -1, -1, -1};
  static const char *const what[4] = {"starts", "ends", "axes", "steps"};
  for (int k = 0; k < 4; k++) {
    if (t->opset < 10) {
      if (k < 3) n[k] = onnx_attr_ints(t, what[k], v[k], MAX_RANK);
      continue;
    }
    Val *c = onnx_in(t, k + 1);
    if (!c) continue;
    if (c->numel > MAX_RANK) return *ok = onnx_fail(t, "%s has too many values", what[k]), true;
    n[k] = (int)c->numel;
    for (int i = 0; i < n[k]; i++) v[k][i] = at_i(c, i);
  }
  if (n[0] < 0 || n[1] != n[0]) return *ok = onnx_fail(t, "needs as many starts as ends"), true;
  Shape s = x->shape;
  strides(&x->shape, st);
  bool seen[MAX_RANK] = {false};
  for (int i = 0; i < n[0]; i++) {
    int a = norm_axis(t, n[2] >= 0 ? v[2][i] : i, s.rank, ok);
    if (a < 0) return true;
    if (seen[a]) return *ok = onnx_fail(t, "axis %d is listed twice", a), true;
    seen[a] = true;
    int64_t dim = x->shape.dim[a], step = n[3] >= 0 ? v[3][i] : 1, b = v[0][i], e = v[1][i];
    if (step == 0) return *ok = onnx_fail(t, "a step of 0"), true;
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      b = b < 0 ? 0 : b > dim ? dim : b;
      e = e < 0 ? 0 : e > dim ? dim : e;
    } else {
      b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
      e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
    }
    /* b and e are clamped to [-1, dim], so e - b cannot overflow; a step
     * as large as the axis (or INT64_MIN) takes one element at most */
    int64_t len = step > 0 ? (e > b ? (e - b - 1) / step + 1 : 0)
                           : (b > e ? (step == INT64_MIN ? 1 : (b - e - 1) / -step + 1) : 0);
    base += len ? b * st[a] : 0;
    /* with two or more elements |step| < dim, so the stride stays within
     * the tensor's element count */
    st[a] = len > 1 ? st[a] * step : 0;
    s.dim[a] = len;
  }
  return fold_strided(t, x, s, st, base, ok);
}

/* ---- arithmetic with broadcasting ---- */

static bool fold_arith(T *t, const char *op, bool *ok) {
  int n = !strcmp(op, "Neg") ? 1 : 2;
  Val *a = onnx_in(t, 0), *b = n == 2 ? onnx_in(t, 1) : a;
  if (!a || !b) return *ok = onnx_fail(t, "needs %d inputs", n), true;
  Shape s = {a->shape.rank > b->shape.rank ? a->shape.rank : b->shape.rank, {0}};
  for (int i = 0; i < s.rank; i++) {
    int ia = i - (s.rank - a->shape.rank), ib = i - (s.rank - b->shape.rank);
    int64_t da = ia >= 0 ? a->shape.dim[ia] : 1, db = ib >= 0 ? b->shape.dim[ib] : 1;
    if (da != db && da != 1 && db != 1) return *ok = onnx_fail(t, "shapes that do not broadcast"), true;
    s.dim[i] = da == 1 ? db : da;
  }
  bool is_int = a->is_int && b->is_int;
  Val *v = result(t, 0, s, is_int, ok);
  if (!v) return true;
  int64_t idx[MAX_RANK] = {0}, sa[MAX_RANK], sb[MAX_RANK];
  strides(&a->shape, sa);
  strides(&b->shape, sb);
  for (int64_t d = 0; d < v->numel; d++) {
    int64_t oa = 0, ob = 0;
    for (int i = 0; i < s.rank; i++) {
      int ia = i - (s.rank - a->shape.rank), ib = i - (s.rank - b->shape.rank);
      if (ia >= 0 && a->shape.dim[ia] > 1) oa += idx[i] * sa[ia];
      if (ib >= 0 && b->shape.dim[ib] > 1) ob += idx[i] * sb[ib];
    }
    if (is_int) {
      int64_t x = at_i(a, oa), y = at_i(b, ob);
      if (op[0] == 'D' && y == 0) return *ok = onnx_fail(t, "an integer division by zero"), true;
      /* int64 arithmetic that cannot overflow, or an error (x / -1 and -x
       * of INT64_MIN overflow too) */
      int64_t r = 0;
      bool fits = op[0] == 'A'   ? ck_add(x, y, &r)
                  : op[0] == 'S' ? y != INT64_MIN && ck_add(x, -y, &r)
                  : op[0] == 'M' ? ck_mul(x, y, &r)
                  : op[0] == 'D' ? !(x == INT64_MIN && y == -1) && (r = x / y, true)
                                 : x != INT64_MIN && (r = -x, true);
      if (!fits && n == 1) return *ok = onnx_fail(t, "an integer result outside int64 (-(%lld))", (long long)x), true;
      if (!fits) {
        char sym = op[0] == 'A' ? '+' : op[0] == 'S' ? '-' : op[0] == 'M' ? '*' : '/';
        return *ok = onnx_fail(t, "an integer result outside int64 (%lld %c %lld)", (long long)x, sym, (long long)y), true;
      }
      v->i[d] = r;
    } else {
      double x = at_f(a, oa), y = at_f(b, ob);
      v->f[d] = (float)(op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : op[0] == 'D' ? x / y : -x);
    }
    for (int i = s.rank - 1; i >= 0 && ++idx[i] == s.dim[i]; i--) idx[i] = 0;
  }
  onnx_out(t, 0, v);
  return true;
}

/* Ops folded on constant inputs (Constant, Shape and Size always). */
static const char *const foldable[] = {"Constant", "Shape", "Size", "Gather", "Cast", "ConstantOfShape", "Range",
                                       "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Concat",
                                       "Slice", "Transpose", "Add", "Sub", "Mul", "Div", "Neg", NULL};

bool onnx_foldable(const char *op) {
  for (const char *const *f = foldable; *f; f++)
    if (!strcmp(*f, op)) return true;
  return false;
}

/* How many leading inputs `op` cannot do without (Concat: all it lists). */
static int fold_required(T *t, const char *op) {
  static const char *const two[] = {"Gather", "Reshape", "Add", "Sub", "Mul", "Div", NULL};
  if (!strcmp(op, "Concat")) return onnx_nin(t);
  if (!strcmp(op, "Range") || (!strcmp(op, "Slice") && t->opset >= 10)) return 3;
  for (const char *const *o = two; *o; o++)
    if (!strcmp(*o, op)) return 2;
  return 1;
}

bool onnx_fold(T *t, const char *op, bool *ok) {
  *ok = true;
  if (strcmp(op, "Constant") && onnx_foldable(op))
    for (int k = 0, n = fold_required(t, op); k < n; k++)
      if (!onnx_in(t, k))
        return *ok = onnx_fail(t, "input %d is missing (%s)", k, k < onnx_nin(t) ? "an empty name" : "not listed"), true;
  if (!strcmp(op, "Constant")) return fold_constant(t, ok);
  if (!strcmp(op, "Shape") || !strcmp(op, "Size")) {
    Val *x = onnx_in(t, 0);
    if (!x || x->kind == V_BAD) return false;
    return op[1] == 'h' ? fold_shape(t, ok) : fold_size(t, ok);
  }
  if (!onnx_foldable(op) || !onnx_nin(t) || !all_const(t)) return false;
  if (!strcmp(op, "Gather")) return fold_gather(t, ok);
  if (!strcmp(op, "Cast")) return fold_cast(t, ok);
  if (!strcmp(op, "ConstantOfShape")) return fold_constant_of_shape(t, ok);
  if (!strcmp(op, "Range")) return fold_range(t, ok);
  if (!strcmp(op, "Concat")) return fold_concat(t, ok);
  if (!strcmp(op, "Slice")) return fold_slice(t, ok);
  if (!strcmp(op, "Transpose")) return fold_transpose(t, ok);
  if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) {
    onnx_out(t, 0, onnx_in(t, 0));
    return true;
  }
  if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze"))
    return fold_reshape(t, op, ok);
  return fold_arith(t, op, ok);
}
