/*
 * cg_bn.c: standalone batch normalisation, eval mode (reference).
 *
 * y = (x - mean) / sqrt(var + eps) * weight + bias per channel (dim 1) of
 * a [N, C] or [N, C, H, W] tensor, walked as [N, C, inner].  As PyTorch's
 * CPU kernel does, each channel's affine form is computed once, alpha =
 * weight / sqrt(var + eps) (as invstd * weight) and beta = bias -
 * mean * alpha, and every element becomes x * alpha + beta.  The square
 * root is cg_sqrt: llvm.sqrt, an instruction, or inline code on targets
 * without FP hardware, never a libm call.
 *
 * Kernel arguments: (in, out, weight, bias, running_mean, running_var).
 */
#include "codegen.h"

LLVMValueRef cg_batchnorm(CodeGen *cg, const Node *n) {
  const Shape *s = &n->shape;
  int64_t N = s->dim[0], C = s->dim[1], inner = shape_numel(s) / (N * C);
  float eps = n->a.bn.epsilon;
  bool is_new;
  const char *key = arena_printf(cg->arena, "batchnorm n=%lld c=%lld i=%lld eps=%a %s", (long long)N, (long long)C,
                                 (long long)inner, (double)eps, cg_act_key(cg, &n->act));
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.bn_%s", cg->g->name, n->name), 6, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef w = LLVMGetParam(fn, 2), b = LLVMGetParam(fn, 3), mean = LLVMGetParam(fn, 4), var = LLVMGetParam(fn, 5);

  Loop lc = cg_for(cg, "c", C);
  LLVMValueRef v = LLVMBuildFAdd(cg->b, cg_load(cg, var, lc.iv, "var"), cg_f32(cg, eps), "");
  LLVMValueRef sd = cg_sqrt(cg, v);
  LLVMValueRef invstd = LLVMBuildFDiv(cg->b, cg_f32(cg, 1.0), sd, "invstd");
  LLVMValueRef alpha = LLVMBuildFMul(cg->b, invstd, cg_load(cg, w, lc.iv, "w"), "alpha");
  LLVMValueRef beta = LLVMBuildFSub(cg->b, cg_load(cg, b, lc.iv, "b"),
                                    LLVMBuildFMul(cg->b, cg_load(cg, mean, lc.iv, "mean"), alpha, ""), "beta");
  Loop ln = cg_for(cg, "n", N);
  LLVMValueRef row = cg_mul(cg, cg_muladd(cg, ln.iv, C, lc.iv), cg_i64(cg, inner));
  Loop li = cg_for(cg, "i", inner);
  LLVMValueRef idx = cg_add(cg, row, li.iv);
  LLVMValueRef y = LLVMBuildFAdd(cg->b, LLVMBuildFMul(cg->b, cg_load(cg, in, idx, "x"), alpha, ""), beta, "");
  cg_store(cg, out, idx, cg_act(cg, &n->act, y));
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &ln);
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}
