/*
 * cg_conv.c: 2-D convolution kernels.
 *
 * KERNEL_REF is the reference direct convolution in logical NCHW order,
 * one output element at a time, with every shape, stride, padding and
 * dilation baked in as constants so that LLVM can unroll and vectorise the
 * inner loops (without an FPU the columns and taps stay loops: cg_conv).  Bias and the fused activation form the epilogue.  Taps
 * that fall into the padding are skipped (the padding value is 0), so no
 * padded copy of the input is ever made.
 *
 * A conv with a second input has a fused residual, added before the
 * activation (fuse.c).  KERNEL_DIRECT convs go to cg_conv_direct.c.
 *
 * Kernel arguments: (in, [residual], out, weight[, bias]).
 */
#include "codegen.h"

static const char *conv_key(CodeGen *cg, const Node *n, const Shape *in) {
  const ConvAttr *c = &n->a.conv;
  return arena_printf(cg->arena,
                      "conv ref in=%s out=%s k=%dx%d s=%dx%d p=%d,%d,%d,%d d=%dx%d g=%d b=%d res=%d act=%s",
                      shape_str(cg->arena, in), shape_str(cg->arena, &n->shape), c->kernel[0],
                      c->kernel[1], c->stride[0], c->stride[1], c->pad[0], c->pad[1], c->pad[2],
                      c->pad[3], c->dilation[0], c->dilation[1], c->groups, c->has_bias, n->nin == 2, cg_act_key(cg, &n->act));
}

/* Input coordinate of output coordinate `o` and tap `k` along one axis. */
static LLVMValueRef in_coord(CodeGen *cg, LLVMValueRef o, int stride, int pad, LLVMValueRef k,
                             int dil) {
  return cg_add(cg, cg_muladd(cg, o, stride, cg_i64(cg, -pad)), cg_mul(cg, k, cg_i64(cg, dil)));
}

/* What one input channel's taps need (ref kernel). */
typedef struct {
  LLVMValueRef in, w, n, ic0, oc, oh, ow;
  int64_t C, H, W, icg;
  const ConvAttr *c;
} Chan;

/* Thumb-1: the taps of one kernel row inside the input, [lo, hi), found
 * by comparisons before the loop (tap k is left of the input when
 * iw0 + k*d < 0, right of it when iw0 + k*d >= W: a prefix and a suffix),
 * and walked by a pointer into the row and one into the weights
 * (cg_walk_begin).  With the range checked in the loop it kept the row's
 * base, the tap's offset, its column and the sum across the soft-float
 * calls: one more than r4-r7 (conv_depthwise's grouped dw2). */
static void taps_walk(CodeGen *cg, Chan *k, LLVMValueRef xrow, LLVMValueRef wrow, LLVMValueRef acc) {
  const ConvAttr *c = k->c;
  LLVMValueRef iw0 = cg_muladd(cg, k->ow, c->stride[1], cg_i64(cg, -c->pad[1])), lo = cg_i64(cg, 0), hi = cg_i64(cg, c->kernel[1]);
  for (int t = 0; t < c->kernel[1]; t++) {
    LLVMValueRef iw = cg_add(cg, iw0, cg_i64(cg, (int64_t)t * c->dilation[1]));
    LLVMValueRef left = LLVMBuildICmp(cg->b, LLVMIntSLT, iw, cg_i64(cg, 0), "");
    LLVMValueRef right = LLVMBuildICmp(cg->b, LLVMIntSGE, iw, cg_i64(cg, k->W), "");
    lo = cg_add(cg, lo, LLVMBuildZExt(cg->b, left, cg->i64, ""));
    hi = LLVMBuildSub(cg->b, hi, LLVMBuildZExt(cg->b, right, cg->i64, ""), "");
  }
  LLVMValueRef start[2] = {cg_gep_wrap(cg, xrow, cg_muladd(cg, lo, c->dilation[1], iw0)), cg_gep_wrap(cg, wrow, lo)};
  int64_t step[2] = {(int64_t)c->dilation[1] * 4, 4};
  Walk wk = cg_walk_begin(cg, "kw", LLVMBuildSub(cg->b, hi, lo, ""), 2, start, step);
  LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->f32, wk.p[0], "x"), w = LLVMBuildLoad2(cg->b, cg->f32, wk.p[1], "w");
  LLVMBuildStore(cg->b, cg_fma(cg, x, w, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc")), acc);
  cg_walk_end(cg, &wk);
}

/* acc + the taps of input channel ic0 + lic for output (n, oc, oh, ow);
 * taps in the padding are skipped. */
static LLVMValueRef chan_taps(CodeGen *cg, Chan *k, LLVMValueRef lic, LLVMValueRef acc0) {
  const ConvAttr *c = k->c;
  LLVMValueRef acc = cg_alloca(cg, cg->f32, "tacc");
  LLVMBuildStore(cg->b, acc0, acc);
  LLVMValueRef ch = cg_add(cg, k->ic0, lic);
  Loop lkh = cg_for(cg, "kh", c->kernel[0]);
  LLVMValueRef ih = in_coord(cg, k->oh, c->stride[0], c->pad[0], lkh.iv, c->dilation[0]);
  LLVMBasicBlockRef hjoin = cg_if_begin(cg, cg_in_range(cg, ih, k->H), "hin");
  /* x[n][ch][ih][iw] * w[oc][ic][kh][kw], from the rows' pointers (without
   * an FPU, indices from the bases kept both across the calls: M0+) */
  LLVMValueRef xi = cg_mul(cg, cg_muladd(cg, cg_muladd(cg, k->n, k->C, ch), k->H, ih), cg_i64(cg, k->W));
  LLVMValueRef wi = cg_muladd(cg, cg_muladd(cg, k->oc, k->icg, lic), c->kernel[0], lkh.iv);
  LLVMValueRef xrow = cg_gep(cg, k->in, xi, "xrow"), wrow = cg_gep(cg, k->w, cg_mul(cg, wi, cg_i64(cg, c->kernel[1])), "wrow");
  if (cg->thumb1) {
    taps_walk(cg, k, xrow, wrow, acc);
    cg_if_end(cg, hjoin);
    cg_loop_end_rolled(cg, &lkh);
    return LLVMBuildLoad2(cg->b, cg->f32, acc, "taps");
  }
  Loop lkw = cg_for(cg, "kw", c->kernel[1]);
  LLVMValueRef iw = in_coord(cg, k->ow, c->stride[1], c->pad[1], lkw.iv, c->dilation[1]);
  LLVMBasicBlockRef wjoin = cg_if_begin(cg, cg_in_range(cg, iw, k->W), "win");
  LLVMValueRef sum = cg_fma(cg, cg_load(cg, xrow, iw, "x"), cg_load(cg, wrow, lkw.iv, "w"),
                            LLVMBuildLoad2(cg->b, cg->f32, acc, "acc"));
  LLVMBuildStore(cg->b, sum, acc);
  cg_if_end(cg, wjoin);
  /* without an FPU the taps stay a loop too (see the columns in cg_conv) */
  if (cg->soft_float) cg_loop_end_rolled(cg, &lkw);
  else cg_loop_end(cg, &lkw);
  cg_if_end(cg, hjoin);
  cg_loop_end_rolled(cg, &lkh); /* unrolled with the taps, it spilled the row pointers on Thumb */
  return LLVMBuildLoad2(cg->b, cg->f32, acc, "taps");
}

static LLVMValueRef chan_sum(CodeGen *cg, void *ctx, LLVMValueRef lic) { return chan_taps(cg, ctx, lic, cg_f32(cg, 0)); }

LLVMValueRef cg_conv(CodeGen *cg, const Node *n) {
  if (n->sched.kernel == KERNEL_DIRECT) return cg_conv_direct(cg, n);
  if (n->sched.kernel == KERNEL_WINOGRAD) return cg_winograd(cg, n);
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  const ConvAttr *c = &n->a.conv;
  bool is_new, res = n->nin == 2;
  LLVMValueRef fn = cg_kernel_begin(cg, conv_key(cg, n, is), arena_printf(cg->arena, "%s.conv_%s", cg->g->name, n->name),
                                    3 + res + c->has_bias, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1 + res), w = LLVMGetParam(fn, 2 + res);
  int64_t N = is->dim[0], C = is->dim[1], H = is->dim[2], W = is->dim[3];
  int64_t OC = n->shape.dim[1], OH = n->shape.dim[2], OW = n->shape.dim[3];
  int64_t icg = C / c->groups, ocg = OC / c->groups;
  LLVMValueRef acc = cg_alloca(cg, cg->f32, "acc");

  Loop ln = cg_for(cg, "n", N);
  Loop loc = cg_for(cg, "oc", OC);
  LLVMValueRef grp = LLVMBuildSDiv(cg->b, loc.iv, cg_i64(cg, ocg), "group");
  LLVMValueRef ic0 = cg_mul(cg, grp, cg_i64(cg, icg));
  Loop loh = cg_for(cg, "oh", OH);
  Loop low = cg_for(cg, "ow", OW);
  LLVMBuildStore(cg->b, c->has_bias ? cg_load(cg, LLVMGetParam(fn, 3 + res), loc.iv, "bias") : cg_f32(cg, 0), acc);
  Chan ch = {in, w, ln.iv, ic0, loc.iv, loh.iv, low.iv, C, H, W, icg, c};
  if (icg * c->kernel[0] * c->kernel[1] <= CG_LONG_REDUCTION) {
    Loop lic = cg_for(cg, "ic", icg);
    LLVMBuildStore(cg->b, chan_taps(cg, &ch, lic.iv, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc")), acc);
    cg_loop_end(cg, &lic);
  } else { /* a long reduction: per-channel sums, summed blocked */
    LLVMValueRef s = cg_sum(cg, "ic", cg->f32, cg_i64(cg, 0), cg_i64(cg, icg), icg, chan_sum, &ch);
    LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc"), s, ""), acc);
  }
  LLVMValueRef oi = cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, ln.iv, OC, loc.iv), OH, loh.iv), OW, low.iv);
  LLVMValueRef r = LLVMBuildLoad2(cg->b, cg->f32, acc, "acc");
  if (res) r = LLVMBuildFAdd(cg->b, r, cg_load(cg, LLVMGetParam(fn, 1), oi, "res"), "");
  cg_store(cg, out, oi, cg_act(cg, &n->act, r));
  /* Without an FPU the columns stay a loop: a multiply-add is two libgcc
   * calls, which unrolling does not make cheaper, and unrolled, each
   * column's taps had input pointers of their own, hoisted out of the row
   * loop, which the M3 and M0+ reloaded there (conv_depthwise's grouped
   * dw2).  (Rolled on the M4, M7 and M55, that loop spilled instead.) */
  if (cg->soft_float) cg_loop_end_rolled(cg, &low);
  else cg_loop_end(cg, &low);
  cg_loop_end(cg, &loh);
  cg_loop_end(cg, &loc);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}
