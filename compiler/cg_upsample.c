/*
 * cg_upsample.c: resizing [N, C, H, W] along H and W (reference), with
 * F.interpolate's and ONNX Resize's exact arithmetic.
 *
 * Along each axis an output index o maps to a source coordinate r (float,
 * as PyTorch and ONNX compute it) by the coordinate mode, with ratio =
 * 1/scale (or in/out when the size was given, as PyTorch does):
 *   half_pixel          (o + 0.5) ratio - 0.5   (PyTorch align_corners=False)
 *   pytorch_half_pixel  the same, 0 when the output length is 1
 *   align_corners       o (in - 1) / (out - 1)
 *   asymmetric          o ratio                 (PyTorch nearest)
 *   tf_half_pixel_for_nn (o + 0.5) ratio
 * nearest: floor, ceil, or round with ties down or up (nearest_mode), then
 *   clamped to [0, in - 1] (PyTorch's nearest is asymmetric + floor:
 *   min((int)(o ratio), in - 1));
 * bilinear: r clamped at 0, i0 = (int)r, i1 = i0 + (i0 < in-1),
 *   l1 = clamp(r - i0, 0, 1), l0 = 1 - l1,
 *   out = (x00 l0w + x01 l1w) l0h + (x10 l0w + x11 l1w) l1h
 * (the edge value beyond the last row, as ONNX pads and PyTorch clamps).
 * PyTorch's kernels special-case some lengths, whatever the scale, and so
 * does cnnc in PyTorch's modes (nearest: asymmetric + floor; bilinear:
 * half_pixel or align_corners): bilinear along an axis whose length does
 * not change is a copy; nearest is too, and to exactly twice the length it
 * takes o / 2, but only for one channel (PyTorch runs [N, 1, H, W], which
 * is channels-last contiguous as well, through its channels-last kernel,
 * which has these cases; its NCHW kernel has not).  ONNX's other modes
 * always use the formulas, and so does every mode with `special_cases:
 * false` (UpsampleAttr.torch_cases), as ONNX models have it.  Row indices and weights are computed once per
 * output row.
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

typedef struct {
  LLVMValueRef i0, i1; /* source indices (i64) */
  LLVMValueRef l0, l1; /* their weights (bilinear) */
} Taps;

/* 1/scale in float, as PyTorch computes it (in/out when the size was given). */
static float axis_ratio(const UpsampleAttr *u, int axis, int64_t size, int64_t osize) {
  if (u->size[axis] > 0) return (float)size / (float)osize;
  return (float)(1.0 / u->scale[axis]);
}

static LLVMValueRef fconst(CodeGen *cg, double v) { return cg_f32(cg, v); }

/* The source coordinate of output index o (as float `of`). */
static LLVMValueRef src_coord(CodeGen *cg, const UpsampleAttr *u, LLVMValueRef of, float ratio, int64_t size,
                              int64_t osize) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef half = fconst(cg, 0.5);
  switch (u->coord) {
  case COORD_ALIGN_CORNERS:
    return osize > 1 ? LLVMBuildFMul(b, fconst(cg, (float)(size - 1) / (float)(osize - 1)), of, "") : fconst(cg, 0);
  case COORD_ASYMMETRIC: return LLVMBuildFMul(b, of, fconst(cg, ratio), "");
  case COORD_TF_HALF_PIXEL_FOR_NN: return LLVMBuildFMul(b, fconst(cg, ratio), LLVMBuildFAdd(b, of, half, ""), "");
  case COORD_PYTORCH_HALF_PIXEL:
    if (osize == 1) return fconst(cg, 0);
    /* fall through */
  case COORD_HALF_PIXEL: break;
  }
  return LLVMBuildFSub(b, LLVMBuildFMul(b, fconst(cg, ratio), LLVMBuildFAdd(b, of, half, ""), ""), half, "");
}

/* floor(r) (up = false) or ceil(r) as an i64, for a coordinate r of at most
 * a tensor dimension in magnitude: truncation, then one step down (up)
 * where it went the wrong way.  Not llvm.floor / llvm.ceil: targets without
 * SSE4.1 lower those to libm calls at -O0, and the object must not need
 * libm. */
static LLVMValueRef round_to_i64(CodeGen *cg, LLVMValueRef r, bool up) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef t = LLVMBuildFPToSI(b, r, cg->i64, "");
  LLVMValueRef tf = LLVMBuildSIToFP(b, t, cg->f32, "");
  LLVMValueRef wrong = LLVMBuildFCmp(b, up ? LLVMRealOLT : LLVMRealOGT, tf, r, "");
  return LLVMBuildSelect(b, wrong, LLVMBuildAdd(b, t, cg_i64(cg, up ? 1 : -1), ""), t, "");
}

/* Nearest source index: rounded by nearest_mode, clamped to [0, size). */
static LLVMValueRef nearest_index(CodeGen *cg, const UpsampleAttr *u, LLVMValueRef r, int64_t size) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef i;
  if (u->coord == COORD_ASYMMETRIC && u->nearest == NEAREST_FLOOR) { /* PyTorch: r >= 0, truncation */
    i = LLVMBuildFPToSI(b, r, cg->i64, "");
  } else {
    bool up = u->nearest == NEAREST_CEIL;
    if (u->nearest == NEAREST_ROUND_PREFER_FLOOR) r = LLVMBuildFSub(b, r, fconst(cg, 0.5), ""), up = true;
    if (u->nearest == NEAREST_ROUND_PREFER_CEIL) r = LLVMBuildFAdd(b, r, fconst(cg, 0.5), "");
    i = round_to_i64(cg, r, up);
  }
  i = cg_smax(cg, i, cg_i64(cg, 0));
  return cg_smin(cg, i, cg_i64(cg, size - 1));
}

static bool torch_mode(const UpsampleAttr *u) {
  if (!u->torch_cases) return false;
  return u->bilinear ? u->coord == COORD_HALF_PIXEL || u->coord == COORD_ALIGN_CORNERS
                     : u->coord == COORD_ASYMMETRIC && u->nearest == NEAREST_FLOOR;
}

/* C: the input's channels (PyTorch's nearest special cases need one). */
static Taps axis_taps(CodeGen *cg, const UpsampleAttr *u, int axis, LLVMValueRef o, int64_t size, int64_t osize,
                      int64_t C) {
  LLVMBuilderRef b = cg->b;
  bool special = torch_mode(u) && (u->bilinear || C == 1);
  if (size == osize && special) return (Taps){o, o, cg_f32(cg, 1.0), cg_f32(cg, 0.0)};
  if (osize == 2 * size && !u->bilinear && special) {
    LLVMValueRef i = LLVMBuildAShr(b, o, cg_i64(cg, 1), "");
    return (Taps){i, i, NULL, NULL};
  }
  LLVMValueRef r = src_coord(cg, u, LLVMBuildSIToFP(b, o, cg->f32, ""), axis_ratio(u, axis, size, osize), size, osize);
  if (!u->bilinear) {
    LLVMValueRef i = nearest_index(cg, u, r, size);
    return (Taps){i, i, NULL, NULL};
  }
  r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, r, cg_f32(cg, 0.0), ""), cg_f32(cg, 0.0), r, "");
  Taps t;
  t.i0 = cg_smin(cg, LLVMBuildFPToSI(b, r, cg->i64, "i0"), cg_i64(cg, size - 1));
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
  const char *key = arena_printf(cg->arena, "upsample nc=%lld c1=%d in=%lldx%lld out=%lldx%lld s=%a,%a sized=%d,%d "
                                 "bilinear=%d coord=%d nearest=%d torch=%d",
                                 (long long)NC, is->dim[1] == 1, (long long)H, (long long)W, (long long)OH, (long long)OW,
                                 (double)u->scale[0], (double)u->scale[1], u->size[0] > 0, u->size[1] > 0,
                                 u->bilinear, u->coord, u->nearest, u->torch_cases);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.upsample_%s", cg->g->name, n->name), 2,
                                    &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);

  Loop lc = cg_for(cg, "nc", NC);
  LLVMValueRef plane = cg_gep(cg, in, cg_mul(cg, lc.iv, cg_i64(cg, H * W)), "plane");
  Loop loh = cg_for(cg, "oh", OH);
  Taps th = axis_taps(cg, u, 0, loh.iv, H, OH, is->dim[1]);
  LLVMValueRef row0 = cg_gep(cg, plane, cg_mul(cg, th.i0, cg_i64(cg, W)), "row0");
  LLVMValueRef row1 = cg_gep(cg, plane, cg_mul(cg, th.i1, cg_i64(cg, W)), "row1");
  LLVMValueRef orow = cg_gep(cg, out, cg_mul(cg, cg_muladd(cg, lc.iv, OH, loh.iv), cg_i64(cg, OW)), "orow");
  Loop low = cg_for(cg, "ow", OW);
  Taps tw = axis_taps(cg, u, 1, low.iv, W, OW, is->dim[1]);
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
