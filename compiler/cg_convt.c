/*
 * cg_convt.c: transposed 2-D convolution (reference, NCHW).
 *
 * Written as a gather, so that each output element is computed once and
 * no scatter buffer is needed: output row oh receives input row ih through
 * tap kh exactly when oh + pad = ih * stride + kh * dilation, i.e. when
 * t = oh + pad - kh * dilation is a non-negative multiple of the stride
 * with t / stride < H.  Columns likewise.  PyTorch's weight layout is
 * [in_channels, out_channels / groups, kh, kw]; output channel oc of
 * group g reads input channels g*icg .. g*icg + icg - 1.  output_padding
 * only enlarges the output (already in the node's shape); those rows and
 * columns get taps like any other.  The tap checks sit outside the
 * innermost loop over input channels.  Bias and the fused activation form
 * the epilogue.
 *
 * Kernel arguments: (in, out, weight[, bias]).
 */
#include "codegen.h"

static const char *convt_key(CodeGen *cg, const Node *n, const Shape *in) {
  const ConvAttr *c = &n->a.conv;
  return arena_printf(cg->arena, "convt in=%s out=%s k=%dx%d s=%dx%d p=%d,%d d=%dx%d g=%d b=%d %s",
                      shape_str(cg->arena, in), shape_str(cg->arena, &n->shape), c->kernel[0], c->kernel[1],
                      c->stride[0], c->stride[1], c->pad[0], c->pad[1], c->dilation[0], c->dilation[1], c->groups,
                      c->has_bias, cg_act_key(cg, &n->act));
}

/* Input coordinate for output o and tap k along one axis, and whether
 * that tap contributes (*ok). */
static LLVMValueRef src_coord(CodeGen *cg, LLVMValueRef o, LLVMValueRef k, int stride, int pad, int dil,
                              int64_t size, LLVMValueRef *ok) {
  LLVMValueRef t = LLVMBuildSub(cg->b, cg_add(cg, o, cg_i64(cg, pad)), cg_mul(cg, k, cg_i64(cg, dil)), "t");
  if (stride == 1) {
    *ok = cg_in_range(cg, t, size);
    return t;
  }
  LLVMValueRef s = cg_i64(cg, stride);
  LLVMValueRef i = LLVMBuildUDiv(cg->b, t, s, "");
  LLVMValueRef exact = LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildURem(cg->b, t, s, ""), cg_i64(cg, 0), "");
  LLVMValueRef nonneg = LLVMBuildICmp(cg->b, LLVMIntSGE, t, cg_i64(cg, 0), "");
  *ok = LLVMBuildAnd(cg->b, LLVMBuildAnd(cg->b, nonneg, exact, ""), cg_in_range(cg, i, size), "tap");
  return i;
}

/* One tap's product for input channel ic (strides in floats). */
typedef struct {
  LLVMValueRef x, w;
  int64_t xstride, wstride;
} Tap;

static LLVMValueRef tap_product(CodeGen *cg, void *ctx, LLVMValueRef ic) {
  Tap *t = ctx;
  return LLVMBuildFMul(cg->b, cg_load(cg, t->x, cg_mul(cg, ic, cg_i64(cg, t->xstride)), "x"),
                       cg_load(cg, t->w, cg_mul(cg, ic, cg_i64(cg, t->wstride)), "w"), "");
}

LLVMValueRef cg_convt(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  const ConvAttr *c = &n->a.conv;
  bool is_new;
  LLVMValueRef fn = cg_kernel_begin(cg, convt_key(cg, n, is), arena_printf(cg->arena, "%s.convt_%s", cg->g->name, n->name),
                                    c->has_bias ? 4 : 3, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1), w = LLVMGetParam(fn, 2);
  int64_t N = is->dim[0], C = is->dim[1], H = is->dim[2], W = is->dim[3];
  int64_t OC = n->shape.dim[1], OH = n->shape.dim[2], OW = n->shape.dim[3];
  int64_t KH = c->kernel[0], KW = c->kernel[1];
  int64_t icg = C / c->groups, ocg = OC / c->groups;
  LLVMValueRef acc = cg_alloca(cg, cg->f32, "acc");

  Loop ln = cg_for(cg, "n", N);
  Loop loc = cg_for(cg, "oc", OC);
  LLVMValueRef grp = LLVMBuildSDiv(cg->b, loc.iv, cg_i64(cg, ocg), "group");
  LLVMValueRef ocl = LLVMBuildSRem(cg->b, loc.iv, cg_i64(cg, ocg), "ocl");
  LLVMValueRef ic0 = cg_mul(cg, grp, cg_i64(cg, icg));
  /* x[n][ic0][0][0] and w[ic0][ocl][0][0]: channel steps are H*W and ocg*KH*KW. */
  LLVMValueRef xbase = cg_gep(cg, in, cg_mul(cg, cg_muladd(cg, ln.iv, C, ic0), cg_i64(cg, H * W)), "xbase");
  LLVMValueRef wbase = cg_gep(cg, w, cg_mul(cg, cg_muladd(cg, ic0, ocg, ocl), cg_i64(cg, KH * KW)), "wbase");
  LLVMValueRef bias = c->has_bias ? cg_load(cg, LLVMGetParam(fn, 3), loc.iv, "bias") : cg_f32(cg, 0);
  Loop loh = cg_for(cg, "oh", OH);
  Loop low = cg_for(cg, "ow", OW);
  LLVMBuildStore(cg->b, bias, acc);
  Loop lkh = cg_for(cg, "kh", KH);
  LLVMValueRef hok, ih = src_coord(cg, loh.iv, lkh.iv, c->stride[0], c->pad[0], c->dilation[0], H, &hok);
  LLVMBasicBlockRef hjoin = cg_if_begin(cg, hok, "hin");
  Loop lkw = cg_for(cg, "kw", KW);
  LLVMValueRef wok, iw = src_coord(cg, low.iv, lkw.iv, c->stride[1], c->pad[1], c->dilation[1], W, &wok);
  LLVMBasicBlockRef wjoin = cg_if_begin(cg, wok, "win");
  LLVMValueRef xpix = cg_gep(cg, xbase, cg_muladd(cg, ih, W, iw), "xpix");
  LLVMValueRef wtap = cg_gep(cg, wbase, cg_muladd(cg, lkh.iv, KW, lkw.iv), "wtap");
  Tap t = {xpix, wtap, H * W, ocg * KH * KW};
  if (icg <= CG_SUM_BLOCK) {
    Loop lic = cg_for(cg, "ic", icg);
    LLVMValueRef x = cg_load(cg, xpix, cg_mul(cg, lic.iv, cg_i64(cg, H * W)), "x");
    LLVMValueRef wv = cg_load(cg, wtap, cg_mul(cg, lic.iv, cg_i64(cg, ocg * KH * KW)), "w");
    LLVMBuildStore(cg->b, cg_fma(cg, x, wv, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc")), acc);
    cg_loop_end(cg, &lic);
  } else { /* many input channels: their products summed blocked */
    LLVMValueRef s = cg_sum(cg, "ic", cg->f32, cg_i64(cg, 0), cg_i64(cg, icg), icg, tap_product, &t);
    LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc"), s, ""), acc);
  }
  cg_if_end(cg, wjoin);
  cg_loop_end(cg, &lkw);
  cg_if_end(cg, hjoin);
  cg_loop_end(cg, &lkh);
  LLVMValueRef oi = cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, ln.iv, OC, loc.iv), OH, loh.iv), OW, low.iv);
  cg_store(cg, out, oi, cg_act(cg, &n->act, LLVMBuildLoad2(cg->b, cg->f32, acc, "acc")));
  cg_loop_end(cg, &low);
  cg_loop_end(cg, &loh);
  cg_loop_end(cg, &loc);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}
