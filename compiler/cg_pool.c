/*
 * cg_pool.c: max and average pooling kernels (reference, NCHW).
 *
 * Semantics follow PyTorch exactly: windows start at o*stride - pad; taps
 * outside the input are skipped (max) or count as zeros (avg);  with
 * ceil_mode a window may run past the padded edge, and avgpool's divisor
 * is then PyTorch's: the window clipped to the padded input when
 * count_include_pad, else clipped to the input itself.  The divisor is
 * separable, (rows counted) * (columns counted), so each axis computes its
 * own factor.  Max pooling propagates NaN like torch.max.
 *
 * Sums are blocked (cg_sum: rows of blocked row sums), so a window or bin
 * of 4096x4096 values is as accurate as PyTorch's; max needs no care.
 *
 * Adaptive average pooling uses PyTorch's bins: output row i covers input
 * rows floor(i*H/OH) to ceil((i+1)*H/OH), exclusive (bins may overlap),
 * and divides the float sum by the bin height, then by its width, as
 * PyTorch's CPU kernel does.  Global pooling is the 1x1 case (the max form
 * for global_maxpool2d).
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

static const char *pool_key(CodeGen *cg, const Node *n, const Shape *in) {
  const PoolAttr *p = &n->a.pool;
  return arena_printf(cg->arena, "%s in=%s out=%s k=%dx%d s=%dx%d p=%d,%d,%d,%d d=%dx%d cip=%d",
                      op_name(n->op), shape_str(cg->arena, in), shape_str(cg->arena, &n->shape),
                      p->kernel[0], p->kernel[1], p->stride[0], p->stride[1], p->pad[0], p->pad[1],
                      p->pad[2], p->pad[3], p->dilation[0], p->dilation[1], p->count_include_pad);
}

/* Number of taps avgpool divides by along one axis, as PyTorch counts. */
LLVMValueRef cg_pool_count(CodeGen *cg, LLVMValueRef o, int stride, int pad, int k, int64_t size,
                              bool include_pad) {
  LLVMValueRef start = cg_muladd(cg, o, stride, cg_i64(cg, -pad));
  LLVMValueRef end = cg_smin(cg, cg_add(cg, start, cg_i64(cg, k)), cg_i64(cg, size + pad));
  if (!include_pad) {
    start = cg_smax(cg, start, cg_i64(cg, 0));
    end = cg_smin(cg, end, cg_i64(cg, size));
  }
  return LLVMBuildSub(cg->b, end, start, "cnt");
}

/* What avgpool divides output (oh, ow)'s window sum by, as a float: the
 * product of the two counts.  On 32-bit cores in i32 (a count is at most a
 * kernel's size): in i64 the product and its conversion were libgcc's
 * __aeabi_lmul and __aeabi_l2f on the Cortex-M0+. */
LLVMValueRef cg_pool_divisor(CodeGen *cg, const PoolAttr *p, LLVMValueRef oh, LLVMValueRef ow, int64_t H, int64_t W) {
  LLVMValueRef a = cg_pool_count(cg, oh, p->stride[0], p->pad[0], p->kernel[0], H, p->count_include_pad);
  LLVMValueRef b = cg_pool_count(cg, ow, p->stride[1], p->pad[1], p->kernel[1], W, p->count_include_pad);
  if (!cg->index32) return LLVMBuildSIToFP(cg->b, cg_mul(cg, a, b), cg->f32, "");
  LLVMValueRef c = LLVMBuildMul(cg->b, LLVMBuildTrunc(cg->b, a, cg->i32, ""), LLVMBuildTrunc(cg->b, b, cg->i32, ""), "");
  return LLVMBuildSIToFP(cg->b, c, cg->f32, "");
}

/* A window's taps along one axis that fall inside the input: [lo, hi) of
 * k = 0..K-1 with 0 <= o*stride - pad + k*dil < size (dil = 1 here). */
static void tap_range(CodeGen *cg, LLVMValueRef o, int stride, int pad, int K, int64_t size, LLVMValueRef *lo,
                      LLVMValueRef *hi) {
  LLVMValueRef start = cg_muladd(cg, o, stride, cg_i64(cg, -pad));
  *lo = cg_smax(cg, LLVMBuildNeg(cg->b, start, ""), cg_i64(cg, 0));
  *hi = cg_smax(cg, cg_smin(cg, LLVMBuildSub(cg->b, cg_i64(cg, size), start, ""), cg_i64(cg, K)), *lo);
}

/* Average pooling's window sum, blocked (cg_sum) along both axes: terms
 * in[row0 + r][col0 + c] for r in [r0, r1), c in [c0, c1). */
typedef struct {
  LLVMTypeRef t;                /* f32, or <V x float> for blocked tensors */
  LLVMValueRef in, row0, col0;  /* plane base index, window origin */
  LLVMValueRef r0, r1, c0, c1;  /* tap ranges */
  int64_t W, lanes, maxc;       /* row length, floats per pixel, most taps per row */
  LLVMValueRef row;             /* set per row */
} Win;

static LLVMValueRef win_tap(CodeGen *cg, void *ctx, LLVMValueRef c) {
  Win *w = ctx;
  LLVMValueRef idx = cg_mul(cg, cg_add(cg, w->row, cg_add(cg, w->col0, c)), cg_i64(cg, w->lanes));
  return cg_vload(cg, w->t, w->in, idx); /* f32, or <1 x float> for a blocked tensor of one lane */
}

static LLVMValueRef win_row(CodeGen *cg, void *ctx, LLVMValueRef r) {
  Win *w = ctx;
  w->row = cg_mul(cg, cg_add(cg, w->row0, r), cg_i64(cg, w->W));
  return cg_sum(cg, "kw", w->t, w->c0, w->c1, w->maxc, win_tap, w);
}

LLVMValueRef cg_window_sum(CodeGen *cg, LLVMTypeRef t, LLVMValueRef in, int64_t lanes, int64_t W, LLVMValueRef row0,
                           LLVMValueRef r0, LLVMValueRef r1, int64_t maxr, LLVMValueRef col0, LLVMValueRef c0,
                           LLVMValueRef c1, int64_t maxc) {
  Win w = {.t = t, .in = in, .row0 = row0, .col0 = col0, .r0 = r0, .r1 = r1, .c0 = c0, .c1 = c1, .W = W,
           .lanes = lanes, .maxc = maxc};
  return cg_sum(cg, "kh", t, r0, r1, maxr, win_row, &w);
}

/* Average pooling: the in-range taps summed blocked, divided by PyTorch's count. */
static LLVMValueRef avg_window(CodeGen *cg, const Node *n, LLVMValueRef in, LLVMValueRef nc, LLVMValueRef oh,
                               LLVMValueRef ow, int64_t H, int64_t W) {
  const PoolAttr *p = &n->a.pool;
  LLVMValueRef r0, r1, c0, c1;
  tap_range(cg, oh, p->stride[0], p->pad[0], p->kernel[0], H, &r0, &r1);
  tap_range(cg, ow, p->stride[1], p->pad[1], p->kernel[1], W, &c0, &c1);
  LLVMValueRef row0 = cg_add(cg, cg_mul(cg, nc, cg_i64(cg, H)), cg_muladd(cg, oh, p->stride[0], cg_i64(cg, -p->pad[0])));
  LLVMValueRef col0 = cg_muladd(cg, ow, p->stride[1], cg_i64(cg, -p->pad[1]));
  LLVMValueRef sum = cg_window_sum(cg, cg->f32, in, 1, W, row0, r0, r1, p->kernel[0], col0, c0, c1, p->kernel[1]);
  return LLVMBuildFDiv(cg->b, sum, cg_pool_divisor(cg, p, oh, ow, H, W), "avg");
}

/* Max pooling: every tap, skipping those outside the input (max is exact). */
static LLVMValueRef max_window(CodeGen *cg, const Node *n, LLVMValueRef in, LLVMValueRef nc, LLVMValueRef oh,
                               LLVMValueRef ow, int64_t H, int64_t W, LLVMValueRef acc) {
  const PoolAttr *p = &n->a.pool;
  LLVMBuildStore(cg->b, cg_f32(cg, -1.0 / 0.0), acc);
  Loop lkh = cg_for(cg, "kh", p->kernel[0]);
  LLVMValueRef ih = cg_add(cg, cg_muladd(cg, oh, p->stride[0], cg_i64(cg, -p->pad[0])),
                           cg_mul(cg, lkh.iv, cg_i64(cg, p->dilation[0])));
  LLVMBasicBlockRef hjoin = cg_if_begin(cg, cg_in_range(cg, ih, H), "hin");
  Loop lkw = cg_for(cg, "kw", p->kernel[1]);
  LLVMValueRef iw = cg_add(cg, cg_muladd(cg, ow, p->stride[1], cg_i64(cg, -p->pad[1])),
                           cg_mul(cg, lkw.iv, cg_i64(cg, p->dilation[1])));
  LLVMBasicBlockRef wjoin = cg_if_begin(cg, cg_in_range(cg, iw, W), "win");
  LLVMValueRef x = cg_load(cg, in, cg_muladd(cg, cg_muladd(cg, nc, H, ih), W, iw), "x");
  LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc"), x), acc);
  cg_if_end(cg, wjoin);
  cg_loop_end(cg, &lkw);
  cg_if_end(cg, hjoin);
  cg_loop_end(cg, &lkh);
  return LLVMBuildLoad2(cg->b, cg->f32, acc, "max");
}

LLVMValueRef cg_pool(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  bool is_max = n->op == OP_MAXPOOL2D, is_new;
  LLVMValueRef fn = cg_kernel_begin(cg, pool_key(cg, n, is),
                                    arena_printf(cg->arena, "%s.pool_%s", cg->g->name, n->name), 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  int64_t NC = is->dim[0] * is->dim[1], H = is->dim[2], W = is->dim[3];
  int64_t OH = n->shape.dim[2], OW = n->shape.dim[3];
  LLVMValueRef acc = is_max ? cg_alloca(cg, cg->f32, "acc") : NULL;
  Loop lc = cg_for(cg, "nc", NC);
  Loop loh = cg_for(cg, "oh", OH);
  Loop low = cg_for(cg, "ow", OW);
  LLVMValueRef r = is_max ? max_window(cg, n, in, lc.iv, loh.iv, low.iv, H, W, acc)
                          : avg_window(cg, n, in, lc.iv, loh.iv, low.iv, H, W);
  cg_store(cg, out, cg_muladd(cg, cg_muladd(cg, lc.iv, OH, loh.iv), OW, low.iv), r);
  cg_loop_end(cg, &low);
  cg_loop_end(cg, &loh);
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}

/* Bin [start, end) of output index o along an axis of `size` inputs and
 * `osize` outputs (floor and ceil of o*size/osize, (o+1)*size/osize). */
static void adaptive_bin(CodeGen *cg, LLVMValueRef o, int64_t size, int64_t osize, LLVMValueRef *start,
                         LLVMValueRef *end) {
  *start = LLVMBuildSDiv(cg->b, cg_mul(cg, o, cg_i64(cg, size)), cg_i64(cg, osize), "bin0");
  LLVMValueRef hi = cg_muladd(cg, cg_add(cg, o, cg_i64(cg, 1)), size, cg_i64(cg, osize - 1));
  *end = LLVMBuildSDiv(cg->b, hi, cg_i64(cg, osize), "bin1");
}

/* The most inputs a bin takes along an axis. */
static int64_t bin_max(int64_t size, int64_t osize) { return (size + osize - 1) / osize + 1; }

static LLVMValueRef adaptive_kernel(CodeGen *cg, const Node *n, bool is_max) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  int64_t NC = is->dim[0] * is->dim[1], H = is->dim[2], W = is->dim[3];
  int64_t OH = n->shape.dim[2], OW = n->shape.dim[3];
  bool is_new;
  const char *key = arena_printf(cg->arena, "adaptive %s nc=%lld in=%lldx%lld out=%lldx%lld", is_max ? "max" : "avg",
                                 (long long)NC, (long long)H, (long long)W, (long long)OH, (long long)OW);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.pool_%s", cg->g->name, n->name), 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef acc = cg_alloca(cg, cg->f32, "acc");

  Loop lc = cg_for(cg, "nc", NC);
  LLVMValueRef plane = cg_mul(cg, lc.iv, cg_i64(cg, H));
  Loop loh = cg_for(cg, "oh", OH);
  LLVMValueRef h0, h1, w0, w1;
  adaptive_bin(cg, loh.iv, H, OH, &h0, &h1);
  Loop low = cg_for(cg, "ow", OW);
  adaptive_bin(cg, low.iv, W, OW, &w0, &w1);
  LLVMValueRef r;
  if (is_max) {
    LLVMBuildStore(cg->b, cg_f32(cg, -1.0 / 0.0), acc);
    Loop lh = cg_loop_begin(cg, "ih", h0, h1, 1);
    Loop lw = cg_loop_begin(cg, "iw", w0, w1, 1);
    LLVMValueRef x = cg_load(cg, in, cg_muladd(cg, cg_add(cg, plane, lh.iv), W, lw.iv), "x");
    LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc"), x), acc);
    cg_loop_end(cg, &lw);
    cg_loop_end(cg, &lh);
    r = LLVMBuildLoad2(cg->b, cg->f32, acc, "max");
  } else { /* divided by the bin height, then its width, as PyTorch's CPU kernel does */
    LLVMValueRef zero = cg_i64(cg, 0);
    r = cg_window_sum(cg, cg->f32, in, 1, W, cg_add(cg, plane, h0), zero, LLVMBuildSub(cg->b, h1, h0, ""),
                      bin_max(H, OH), w0, zero, LLVMBuildSub(cg->b, w1, w0, ""), bin_max(W, OW));
    LLVMValueRef kh = LLVMBuildSIToFP(cg->b, LLVMBuildSub(cg->b, h1, h0, ""), cg->f32, "kh");
    LLVMValueRef kw = LLVMBuildSIToFP(cg->b, LLVMBuildSub(cg->b, w1, w0, ""), cg->f32, "kw");
    r = LLVMBuildFDiv(cg->b, LLVMBuildFDiv(cg->b, r, kh, ""), kw, "avg");
  }
  cg_store(cg, out, cg_muladd(cg, cg_muladd(cg, lc.iv, OH, loh.iv), OW, low.iv), r);
  cg_loop_end(cg, &low);
  cg_loop_end(cg, &loh);
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}

LLVMValueRef cg_adaptive_pool(CodeGen *cg, const Node *n) { return adaptive_kernel(cg, n, false); }

LLVMValueRef cg_global_pool(CodeGen *cg, const Node *n) {
  return adaptive_kernel(cg, n, n->op == OP_GLOBAL_MAXPOOL2D);
}
