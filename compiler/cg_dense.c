/*
 * cg_dense.c: fully connected layers.
 *
 * out[n][u] = act(bias[u] + sum_k in[n][k] * weight[u][k]), with the input
 * read as [N, K] whatever its logical rank: dense flattens [N, C, H, W]
 * implicitly, in NCHW order like torch.flatten; linear (torch.nn.Linear)
 * works over the last axis, so N is the product of the other dims.
 *
 * At batch 1 this is a matrix-vector product bound by the bandwidth of
 * streaming the weights, so the kernel only has to keep the loads busy:
 * ROWS rows of the weight matrix at a time, each with its own vector
 * accumulator over V-wide slices of k (explicit vectors, because LLVM may
 * not reassociate a float reduction on its own), the k tail as one masked
 * vector step, and a horizontal sum at the end.  Long rows are summed
 * blocked (partial sums of at most CG_SUM_BLOCK vector steps, combined in
 * levels), so a row of 2^24 weights keeps float32 accuracy.  With V = 1
 * (no vector unit) the same code is scalar.
 *
 * Kernel arguments: (in, out, weight[, bias]), then for a split layer the
 * range [lo, hi) of groups of DENSE_ROWS units it computes.
 */
#include "codegen.h"

enum { ROWS = DENSE_ROWS };

typedef struct {
  int64_t K, V;        /* reduction length, vector lanes */
  LLVMTypeRef vt;      /* <V x float> */
  LLVMValueRef x, w;   /* this image's input row, the weights */
  LLVMValueRef acc[ROWS];
} Dot;

/* Loads the first n < V floats at base[idx], zeros in the other lanes. */
static LLVMValueRef masked_load(CodeGen *cg, Dot *d, LLVMValueRef base, LLVMValueRef idx, int64_t n) {
  LLVMValueRef lanes[64];
  for (int64_t i = 0; i < d->V; i++) lanes[i] = LLVMConstInt(cg->i1, i < n, 0);
  LLVMValueRef ptr = cg_gep(cg, base, idx, "");
  LLVMTypeRef types[2] = {d->vt, cg->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, types, 2);
  LLVMValueRef args[4] = {ptr, LLVMConstInt(cg->i32, 4, 0), LLVMConstVector(lanes, (unsigned)d->V),
                          LLVMConstNull(d->vt)};
  return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, types, 2), fn, args, 4, "tail");
}

/* acc[r] += the products of k in [base, base + V * CG_SUM_BLOCK^(level+1))
 * (cut at kmain): fmas at level 0, and above that a loop of at most
 * CG_SUM_BLOCK partial sums of the level below, each in its own
 * accumulators (blocked summation, as cg_sum, for long rows). */
static void dot_level(CodeGen *cg, Dot *d, int level, LLVMValueRef base, int64_t kmain, int nrows,
                      const LLVMValueRef *wrow, LLVMValueRef *acc) {
  int64_t step = d->V;
  for (int k = 0; k < level; k++) step *= CG_SUM_BLOCK;
  LLVMValueRef end = cg_smin(cg, cg_add(cg, base, cg_i64(cg, step * CG_SUM_BLOCK)), cg_i64(cg, kmain));
  Loop l = cg_loop_begin(cg, level ? "kb" : "k", base, end, step);
  if (level == 0) {
    LLVMValueRef xv = cg_vload(cg, d->vt, d->x, l.iv);
    for (int r = 0; r < nrows; r++) {
      LLVMValueRef wv = cg_vload(cg, d->vt, d->w, cg_add(cg, wrow[r], l.iv));
      LLVMBuildStore(cg->b, cg_fma(cg, wv, xv, LLVMBuildLoad2(cg->b, d->vt, acc[r], "")), acc[r]);
    }
  } else {
    LLVMValueRef part[ROWS];
    for (int r = 0; r < nrows; r++) {
      part[r] = cg_alloca(cg, d->vt, "part");
      LLVMBuildStore(cg->b, LLVMConstNull(d->vt), part[r]);
    }
    dot_level(cg, d, level - 1, l.iv, kmain, nrows, wrow, part);
    for (int r = 0; r < nrows; r++) {
      LLVMValueRef sum = LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, d->vt, acc[r], ""),
                                       LLVMBuildLoad2(cg->b, d->vt, part[r], ""), "");
      LLVMBuildStore(cg->b, sum, acc[r]);
    }
  }
  cg_loop_end(cg, &l);
}

/* Sums rows u0 .. u0+nrows-1 of w against x; returns the scalar dot products. */
static void dots(CodeGen *cg, Dot *d, LLVMValueRef u0, int nrows, LLVMValueRef *res) {
  int64_t kmain = d->K / d->V * d->V;
  for (int r = 0; r < nrows; r++) LLVMBuildStore(cg->b, LLVMConstNull(d->vt), d->acc[r]);
  LLVMValueRef wrow[ROWS];
  for (int r = 0; r < nrows; r++) wrow[r] = cg_mul(cg, cg_add(cg, u0, cg_i64(cg, r)), cg_i64(cg, d->K));
  if (kmain > 0) {
    int levels = 0;
    for (int64_t span = d->V * (int64_t)CG_SUM_BLOCK; span < kmain; span *= CG_SUM_BLOCK) levels++;
    dot_level(cg, d, levels, cg_i64(cg, 0), kmain, nrows, wrow, d->acc);
  }
  int64_t tail = d->K - kmain;
  if (tail && d->V > 1) { /* the k tail: masked vector loads, no scalar loop */
    LLVMValueRef xv = masked_load(cg, d, d->x, cg_i64(cg, kmain), tail);
    for (int r = 0; r < nrows; r++) {
      LLVMValueRef wv = masked_load(cg, d, d->w, cg_add(cg, wrow[r], cg_i64(cg, kmain)), tail);
      LLVMBuildStore(cg->b, cg_fma(cg, wv, xv, LLVMBuildLoad2(cg->b, d->vt, d->acc[r], "")), d->acc[r]);
    }
  }
  for (int r = 0; r < nrows; r++) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, d->vt, d->acc[r], "");
    LLVMValueRef args[2] = {cg_f32(cg, 0), v};
    LLVMValueRef s = v;
    if (d->V > 1) s = cg_intrinsic(cg, "llvm.vector.reduce.fadd", d->vt, args, 2, "sum");
    for (int64_t k = kmain; d->V == 1 && k < d->K; k++)
      s = cg_fma(cg, cg_load(cg, d->w, cg_add(cg, wrow[r], cg_i64(cg, k)), "w"), cg_load(cg, d->x, cg_i64(cg, k), "x"),
                 s);
    res[r] = s;
  }
}

LLVMValueRef cg_dense(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  const DenseAttr *da = &n->a.dense;
  /* rows: the batch (dense), or every leading position (linear, over the last axis) */
  int64_t U = n->a.dense.units, N = shape_numel(&n->shape) / U, K = shape_numel(is) / N;
  int V = n->sched.vec > 1 ? n->sched.vec : 1;
  bool is_new;
  const char *key = arena_printf(cg->arena, "dense n=%lld k=%lld u=%lld V=%d b=%d act=%s", (long long)N,
                                 (long long)K, (long long)U, V, da->has_bias, cg_act_key(cg, &n->act));
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.dense_%s", cg->g->name, n->name),
                                    da->has_bias ? 4 : 3, &is_new);
  if (!is_new) return fn;
  cg_vector_attrs(cg, fn, V);
  Dot d = {.K = K, .V = V, .vt = V > 1 ? LLVMVectorType(cg->f32, (unsigned)V) : cg->f32, .w = LLVMGetParam(fn, 2)};
  for (int r = 0; r < ROWS; r++) d.acc[r] = cg_alloca(cg, d.vt, "acc");
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef bias = da->has_bias ? LLVMGetParam(fn, 3) : NULL;
  int64_t umain = U / ROWS * ROWS, ngroups = (U + ROWS - 1) / ROWS;
  /* a split layer runs the groups of ROWS units [lo, hi); the last group
   * is the tail of U - umain units when U is no multiple of ROWS */
  LLVMValueRef lo, hi;
  cg_split_range(cg, ngroups, &lo, &hi);
  LLVMValueRef u_lo = cg_mul(cg, lo, cg_i64(cg, ROWS));
  LLVMValueRef u_hi = cg_smin(cg, cg_mul(cg, hi, cg_i64(cg, ROWS)), cg_i64(cg, umain));

  Loop ln = cg_for(cg, "n", N);
  d.x = cg_gep(cg, in, cg_mul(cg, ln.iv, cg_i64(cg, K)), "xrow");
  LLVMValueRef orow = cg_gep(cg, out, cg_mul(cg, ln.iv, cg_i64(cg, U)), "orow");
  for (int part = 0; part < 2; part++) {
    int rows = part == 0 ? ROWS : (int)(U - umain);
    if (rows == 0 || (part == 0 && umain == 0)) continue;
    LLVMBasicBlockRef join = NULL;
    if (part == 1) /* the tail group, run by whoever has the last group */
      join = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, hi, cg_i64(cg, ngroups), ""), "tail");
    Loop lu = part == 0 ? cg_loop_begin(cg, "u", u_lo, u_hi, rows)
                        : cg_loop_begin(cg, "u", cg_i64(cg, umain), cg_i64(cg, U), rows);
    LLVMValueRef s[ROWS];
    dots(cg, &d, lu.iv, rows, s);
    for (int r = 0; r < rows; r++) {
      LLVMValueRef u = cg_add(cg, lu.iv, cg_i64(cg, r));
      if (bias) s[r] = LLVMBuildFAdd(cg->b, s[r], cg_load(cg, bias, u, "bias"), "");
      cg_store(cg, orow, u, cg_act(cg, &n->act, s[r]));
    }
    cg_loop_end(cg, &lu);
    if (join) cg_if_end(cg, join);
  }
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}
