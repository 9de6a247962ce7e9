/*
 * cg_norm.c: layer_norm and instance_norm (reference), and reductions.
 *
 * Normalisation views the tensor as [outer, R, post]: R values, `post`
 * apart, are normalised together (layer_norm over dims [first, first +
 * count): R is their product, post the product of the dims after them;
 * instance_norm: outer = N*C, R = H*W..., post = 1).  Two passes, each a
 * blocked sum (cg_sum), so that long rows keep float32 accuracy:
 *   mean = sum x / R,  var = sum (x - mean)^2 / R,  rstd = 1 / sqrt(var + eps)
 *   y = (x - mean) * rstd [* weight + bias]
 * with weight and bias indexed by the position in the normalised dims
 * (layer_norm) or by the channel (instance_norm), as PyTorch's kernels.
 *
 * Reductions (reduce_mean/sum/max/min over any set of axes): the dims are
 * merged where neighbours are both reduced or both kept; every output
 * element then loops over the reduced dims, innermost last, summing each
 * blocked (mean divides the sum by the count), or taking max / min
 * (NaN-propagating, as torch.amax).
 *
 * Kernel arguments: (in, out[, weight, bias]).
 */
#include "codegen.h"

static int64_t prod(const Shape *s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++) p *= s->dim[i];
  return p;
}

typedef struct {
  LLVMValueRef in, base, mean; /* base: index of the row's first value */
  int64_t post;                /* distance between its values */
} Row;

static LLVMValueRef row_x(CodeGen *cg, Row *r, LLVMValueRef i) {
  return cg_load(cg, r->in, cg_muladd(cg, i, r->post, r->base), "x");
}

static LLVMValueRef row_value(CodeGen *cg, void *ctx, LLVMValueRef i) { return row_x(cg, ctx, i); }

static LLVMValueRef row_square(CodeGen *cg, void *ctx, LLVMValueRef i) {
  Row *r = ctx;
  LLVMValueRef d = LLVMBuildFSub(cg->b, row_x(cg, r, i), r->mean, "");
  return LLVMBuildFMul(cg->b, d, d, "");
}

LLVMValueRef cg_norm(CodeGen *cg, const Node *n) {
  const Shape *s = &n->shape;
  const NormAttr *q = &n->a.norm;
  bool layer = n->op == OP_LAYER_NORM, affine = n->weight != NULL, is_new;
  int64_t outer = prod(s, 0, q->first), R = prod(s, q->first, q->first + q->count);
  int64_t post = prod(s, q->first + q->count, s->rank), C = layer ? 1 : s->dim[1];
  const char *key = arena_printf(cg->arena, "%s o=%lld r=%lld p=%lld c=%lld eps=%a affine=%d", op_name(n->op),
                                 (long long)outer, (long long)R, (long long)post, (long long)C, (double)q->epsilon, affine);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.norm_%s", cg->g->name, n->name),
                                    affine ? 4 : 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  Loop lo = cg_for(cg, "outer", outer);
  Loop lp = cg_for(cg, "post", post);
  Row r = {in, cg_add(cg, cg_mul(cg, lo.iv, cg_i64(cg, R * post)), lp.iv), NULL, post};
  LLVMValueRef zero = cg_i64(cg, 0), len = cg_i64(cg, R), fR = cg_f32(cg, (double)R);
  r.mean = LLVMBuildFDiv(cg->b, cg_sum(cg, "sum", cg->f32, zero, len, R, row_value, &r), fR, "mean");
  LLVMValueRef var = LLVMBuildFDiv(cg->b, cg_sum(cg, "sq", cg->f32, zero, len, R, row_square, &r), fR, "var");
  LLVMValueRef ve = LLVMBuildFAdd(cg->b, var, cg_f32(cg, q->epsilon), "");
  LLVMValueRef rstd = LLVMBuildFDiv(cg->b, cg_f32(cg, 1.0), cg_intrinsic(cg, "llvm.sqrt", cg->f32, &ve, 1, ""), "rstd");
  LLVMValueRef ch = layer ? NULL : LLVMBuildSRem(cg->b, lo.iv, cg_i64(cg, C), "c");
  Loop li = cg_for(cg, "r", R);
  LLVMValueRef idx = cg_muladd(cg, li.iv, post, r.base);
  LLVMValueRef y = LLVMBuildFMul(cg->b, LLVMBuildFSub(cg->b, cg_load(cg, in, idx, "x"), r.mean, ""), rstd, "");
  if (affine) {
    LLVMValueRef widx = layer ? li.iv : ch;
    y = LLVMBuildFAdd(cg->b, LLVMBuildFMul(cg->b, y, cg_load(cg, LLVMGetParam(fn, 2), widx, "w"), ""),
                      cg_load(cg, LLVMGetParam(fn, 3), widx, "b"), "");
  }
  cg_store(cg, out, idx, y);
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lp);
  cg_loop_end(cg, &lo);
  cg_kernel_end(cg);
  return fn;
}

/* ---- reductions ---- */

typedef struct {
  int n;                    /* merged dims */
  int64_t size[MAX_RANK], stride[MAX_RANK];
  bool reduced[MAX_RANK];
  LLVMValueRef in;
  int red[MAX_RANK], nred;  /* the reduced merged dims, outermost first */
  LLVMValueRef off;         /* input offset of the kept dims (set per output) */
  LLVMValueRef acc;         /* max/min accumulator */
  bool is_max;
} Red;

static Red merge_dims(const Shape *in, unsigned axes) {
  Red r = {0};
  int64_t st = 1, strides[MAX_RANK];
  for (int i = in->rank - 1; i >= 0; i--) strides[i] = st, st *= in->dim[i];
  for (int i = 0; i < in->rank; i++) {
    if (in->dim[i] == 1) continue;
    bool red = axes & (1u << i);
    if (r.n > 0 && r.reduced[r.n - 1] == red) {
      r.size[r.n - 1] *= in->dim[i];
      r.stride[r.n - 1] = strides[i];
      continue;
    }
    r.size[r.n] = in->dim[i], r.stride[r.n] = strides[i], r.reduced[r.n++] = red;
  }
  for (int i = 0; i < r.n; i++)
    if (r.reduced[i]) r.red[r.nred++] = i;
  return r;
}

/* Sum over reduced dims k.. at offset `off`: nested blocked sums. */
typedef struct {
  Red *r;
  int k;
  LLVMValueRef off;
} Level;

static LLVMValueRef level_term(CodeGen *cg, void *ctx, LLVMValueRef i) {
  Level *l = ctx;
  int d = l->r->red[l->k];
  LLVMValueRef off = cg_muladd(cg, i, l->r->stride[d], l->off);
  if (l->k + 1 == l->r->nred) return cg_load(cg, l->r->in, off, "x");
  Level next = {l->r, l->k + 1, off};
  int nd = l->r->red[next.k];
  return cg_sum(cg, "rd", cg->f32, cg_i64(cg, 0), cg_i64(cg, l->r->size[nd]), l->r->size[nd], level_term, &next);
}

static void max_levels(CodeGen *cg, Red *r, int k, LLVMValueRef off) {
  if (k == r->nred) {
    LLVMValueRef x = cg_load(cg, r->in, off, "x"), a = LLVMBuildLoad2(cg->b, cg->f32, r->acc, "");
    LLVMBuildStore(cg->b, r->is_max ? cg_max(cg, a, x) : cg_min(cg, a, x), r->acc);
    return;
  }
  int d = r->red[k];
  Loop l = cg_for(cg, "rd", r->size[d]);
  max_levels(cg, r, k + 1, cg_muladd(cg, l.iv, r->stride[d], off));
  cg_loop_end(cg, &l);
}

LLVMValueRef cg_reduce(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  Red r = merge_dims(is, n->a.reduce.axes);
  r.is_max = n->op == OP_REDUCE_MAX;
  bool sum = n->op == OP_REDUCE_SUM || n->op == OP_REDUCE_MEAN, is_new;
  char *key = arena_printf(cg->arena, "%s", op_name(n->op));
  for (int i = 0; i < r.n; i++)
    key = arena_printf(cg->arena, "%s %lld/%lld%s", key, (long long)r.size[i], (long long)r.stride[i], r.reduced[i] ? "r" : "");
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.%s_%s", cg->g->name, op_name(n->op), n->name),
                                    2, &is_new);
  if (!is_new) return fn;
  r.in = LLVMGetParam(fn, 0);
  LLVMValueRef out = LLVMGetParam(fn, 1), off = cg_i64(cg, 0), oidx = cg_i64(cg, 0);
  r.acc = cg_alloca(cg, cg->f32, "acc");
  Loop loops[MAX_RANK];
  int nl = 0;
  int64_t count = 1;
  for (int i = 0; i < r.n; i++) {
    if (r.reduced[i]) {
      count *= r.size[i];
      continue;
    }
    loops[nl] = cg_for(cg, "d", r.size[i]);
    off = cg_muladd(cg, loops[nl].iv, r.stride[i], off);
    oidx = cg_muladd(cg, oidx, r.size[i], loops[nl].iv);
    nl++;
  }
  LLVMValueRef y;
  if (r.nred == 0) {
    y = cg_load(cg, r.in, off, "x");
  } else if (sum) {
    Level l = {&r, 0, off};
    y = cg_sum(cg, "rd", cg->f32, cg_i64(cg, 0), cg_i64(cg, r.size[r.red[0]]), r.size[r.red[0]], level_term, &l);
    if (n->op == OP_REDUCE_MEAN) y = LLVMBuildFDiv(cg->b, y, cg_f32(cg, (double)count), "mean");
  } else {
    LLVMBuildStore(cg->b, cg_f32(cg, r.is_max ? -1.0 / 0.0 : 1.0 / 0.0), r.acc);
    max_levels(cg, &r, 0, off);
    y = LLVMBuildLoad2(cg->b, cg->f32, r.acc, "");
  }
  cg_store(cg, out, oidx, y);
  for (int i = nl - 1; i >= 0; i--) cg_loop_end(cg, &loops[i]);
  cg_kernel_end(cg);
  return fn;
}
