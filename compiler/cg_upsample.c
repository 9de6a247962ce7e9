/*
 * cg_upsample.c: upsampling of [N, C, H, W] by integer factors (reference),
 * with F.interpolate(scale_factor=s)'s exact arithmetic.
 *
 * PyTorch computes source coordinates in float from the scale 1/s (not
 * from the sizes), and cnnc repeats those float operations so that every
 * index and weight is bit-identical:
 *   nearest:  src = min((int)((float)o * (1/s)), size - 1)
 *   bilinear: r = align_corners ? o * (size-1)/(osize-1)
 *                               : max((o + 0.5) * (1/s) - 0.5, 0)
 *             i0 = (int)r, i1 = i0 + (i0 < size-1), l1 = clamp(r - i0, 0, 1),
 *             l0 = 1 - l1,  out = (x00 l0w + x01 l1w) l0h + (x10 l0w + x11 l1w) l1h
 * An axis with factor 1 is a plain copy along that axis, as in PyTorch.
 * Row indices and weights are computed once per output row.
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

typedef struct {
  LLVMValueRef i0, i1; /* source indices (i64) */
  LLVMValueRef l0, l1; /* their weights (bilinear) */
} Taps;

/* The float scale PyTorch uses along one axis. */
static float axis_ratio(const UpsampleAttr *u, int64_t size, int64_t osize, int s) {
  if (u->bilinear && u->align_corners) return osize > 1 ? (float)(size - 1) / (float)(osize - 1) : 0.0f;
  return (float)(1.0 / s);
}

static Taps axis_taps(CodeGen *cg, const UpsampleAttr *u, LLVMValueRef o, int64_t size, int64_t osize, int s) {
  LLVMBuilderRef b = cg->b;
  if (s == 1) return (Taps){o, o, cg_f32(cg, 1.0), cg_f32(cg, 0.0)};
  LLVMValueRef ratio = cg_f32(cg, axis_ratio(u, size, osize, s));
  LLVMValueRef of = LLVMBuildSIToFP(b, o, cg->f32, "");
  if (!u->bilinear) {
    LLVMValueRef i = LLVMBuildFPToSI(b, LLVMBuildFMul(b, of, ratio, ""), cg->i64, "");
    LLVMValueRef last = cg_i64(cg, size - 1);
    i = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, i, last, ""), i, last, "src");
    return (Taps){i, i, NULL, NULL};
  }
  LLVMValueRef r;
  if (u->align_corners) {
    r = LLVMBuildFMul(b, ratio, of, "");
  } else {
    r = LLVMBuildFSub(b, LLVMBuildFMul(b, ratio, LLVMBuildFAdd(b, of, cg_f32(cg, 0.5), ""), ""), cg_f32(cg, 0.5), "");
    r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, r, cg_f32(cg, 0.0), ""), cg_f32(cg, 0.0), r, "");
  }
  Taps t;
  t.i0 = LLVMBuildFPToSI(b, r, cg->i64, "i0");
  LLVMValueRef more = LLVMBuildICmp(b, LLVMIntSLT, t.i0, cg_i64(cg, size - 1), "");
  t.i1 = cg_add(cg, t.i0, LLVMBuildZExt(b, more, cg->i64, ""));
  LLVMValueRef l1 = LLVMBuildFSub(b, r, LLVMBuildSIToFP(b, t.i0, cg->f32, ""), "");
  l1 = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, l1, cg_f32(cg, 0.0), ""), cg_f32(cg, 0.0), l1, "");
  t.l1 = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, l1, cg_f32(cg, 1.0), ""), cg_f32(cg, 1.0), l1, "l1");
  t.l0 = LLVMBuildFSub(b, cg_f32(cg, 1.0), t.l1, "l0");
  return t;
}

/* x[i0] * l0 + x[i1] * l1 along w, in row `row`. */
static LLVMValueRef lerp_row(CodeGen *cg, LLVMValueRef row, const Taps *w) {
  LLVMValueRef a = LLVMBuildFMul(cg->b, cg_load(cg, row, w->i0, "x0"), w->l0, "");
  return LLVMBuildFAdd(cg->b, a, LLVMBuildFMul(cg->b, cg_load(cg, row, w->i1, "x1"), w->l1, ""), "");
}

LLVMValueRef cg_upsample(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  const UpsampleAttr *u = &n->a.upsample;
  int64_t NC = is->dim[0] * is->dim[1], H = is->dim[2], W = is->dim[3];
  int64_t OH = n->shape.dim[2], OW = n->shape.dim[3];
  bool is_new;
  const char *key = arena_printf(cg->arena, "upsample nc=%lld in=%lldx%lld s=%dx%d bilinear=%d ac=%d", (long long)NC,
                                 (long long)H, (long long)W, u->scale[0], u->scale[1], u->bilinear,
                                 u->bilinear && u->align_corners);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.upsample_%s", cg->g->name, n->name), 2,
                                    &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);

  Loop lc = cg_for(cg, "nc", NC);
  LLVMValueRef plane = cg_gep(cg, in, cg_mul(cg, lc.iv, cg_i64(cg, H * W)), "plane");
  Loop loh = cg_for(cg, "oh", OH);
  Taps th = axis_taps(cg, u, loh.iv, H, OH, u->scale[0]);
  LLVMValueRef row0 = cg_gep(cg, plane, cg_mul(cg, th.i0, cg_i64(cg, W)), "row0");
  LLVMValueRef row1 = cg_gep(cg, plane, cg_mul(cg, th.i1, cg_i64(cg, W)), "row1");
  LLVMValueRef orow = cg_gep(cg, out, cg_mul(cg, cg_muladd(cg, lc.iv, OH, loh.iv), cg_i64(cg, OW)), "orow");
  Loop low = cg_for(cg, "ow", OW);
  Taps tw = axis_taps(cg, u, low.iv, W, OW, u->scale[1]);
  LLVMValueRef y;
  if (!u->bilinear) {
    y = cg_load(cg, row0, tw.i0, "x");
  } else {
    LLVMValueRef top = LLVMBuildFMul(cg->b, lerp_row(cg, row0, &tw), th.l0, "");
    y = LLVMBuildFAdd(cg->b, top, LLVMBuildFMul(cg->b, lerp_row(cg, row1, &tw), th.l1, ""), "");
  }
  cg_store(cg, orow, low.iv, y);
  cg_loop_end(cg, &low);
  cg_loop_end(cg, &loh);
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}
