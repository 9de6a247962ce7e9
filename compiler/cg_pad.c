/*
 * cg_pad.c: spatial padding of [N, C, H, W] tensors (reference), as
 * F.pad with mode constant, reflect or replicate (cnnc's `edge`).
 *
 * Output pixel (oh, ow) reads input (oh - top, ow - left) mapped back into
 * the image: constant mode writes `value` outside; reflect mirrors without
 * repeating the edge pixel (-1 -> 1, H -> H-2; PyTorch requires each pad
 * to be smaller than the dim, so one reflection suffices); edge clamps.
 * The source row is found once per output row.
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

static LLVMValueRef icmp(CodeGen *cg, LLVMIntPredicate p, LLVMValueRef a, int64_t b) {
  return LLVMBuildICmp(cg->b, p, a, cg_i64(cg, b), "");
}

/* Source coordinate of i (already shifted by the padding) in [0, size). */
static LLVMValueRef map_coord(CodeGen *cg, PadMode mode, LLVMValueRef i, int64_t size) {
  LLVMValueRef lo = icmp(cg, LLVMIntSLT, i, 0), hi = icmp(cg, LLVMIntSGE, i, size);
  LLVMValueRef below, above;
  if (mode == PAD_REFLECT) {
    below = LLVMBuildNeg(cg->b, i, "");
    above = LLVMBuildSub(cg->b, cg_i64(cg, 2 * (size - 1)), i, "");
  } else {
    below = cg_i64(cg, 0);
    above = cg_i64(cg, size - 1);
  }
  return LLVMBuildSelect(cg->b, lo, below, LLVMBuildSelect(cg->b, hi, above, i, ""), "src");
}

LLVMValueRef cg_pad(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  const PadAttr *p = &n->a.pad;
  int64_t NC = is->dim[0] * is->dim[1], H = is->dim[2], W = is->dim[3];
  int64_t OH = n->shape.dim[2], OW = n->shape.dim[3];
  bool is_new;
  const char *key = arena_printf(cg->arena, "pad nc=%lld in=%lldx%lld tl=%d,%d out=%lldx%lld mode=%d v=%a",
                                 (long long)NC, (long long)H, (long long)W, p->pad[0], p->pad[1], (long long)OH,
                                 (long long)OW, p->mode, p->mode == PAD_CONSTANT ? (double)p->value : 0.0);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.pad_%s", cg->g->name, n->name), 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);

  Loop lc = cg_for(cg, "nc", NC);
  LLVMValueRef plane = cg_gep(cg, in, cg_mul(cg, lc.iv, cg_i64(cg, H * W)), "plane");
  LLVMValueRef oplane = cg_gep(cg, out, cg_mul(cg, lc.iv, cg_i64(cg, OH * OW)), "oplane");
  Loop loh = cg_for(cg, "oh", OH);
  LLVMValueRef ih = cg_add(cg, loh.iv, cg_i64(cg, -p->pad[0]));
  LLVMValueRef hin = cg_in_range(cg, ih, H);
  if (p->mode != PAD_CONSTANT) ih = map_coord(cg, p->mode, ih, H);
  LLVMValueRef irow = cg_gep(cg, plane, cg_mul(cg, ih, cg_i64(cg, W)), "irow");
  LLVMValueRef orow = cg_gep(cg, oplane, cg_mul(cg, loh.iv, cg_i64(cg, OW)), "orow");
  Loop low = cg_for(cg, "ow", OW);
  LLVMValueRef iw = cg_add(cg, low.iv, cg_i64(cg, -p->pad[1]));
  if (p->mode == PAD_CONSTANT) {
    LLVMValueRef inside = LLVMBuildAnd(cg->b, hin, cg_in_range(cg, iw, W), "inside");
    LLVMValueRef v = cg_f32(cg, p->value);
    LLVMBasicBlockRef join = cg_if_begin(cg, inside, "copy");
    cg_store(cg, orow, low.iv, cg_load(cg, irow, iw, "x"));
    cg_if_end(cg, join);
    join = cg_if_begin(cg, LLVMBuildNot(cg->b, inside, ""), "fill");
    cg_store(cg, orow, low.iv, v);
    cg_if_end(cg, join);
  } else {
    cg_store(cg, orow, low.iv, cg_load(cg, irow, map_coord(cg, p->mode, iw, W), "x"));
  }
  cg_loop_end(cg, &low);
  cg_loop_end(cg, &loh);
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}
