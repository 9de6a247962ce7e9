/*
 * cg_dense.c: fully connected layers (reference).
 *
 * out[n][u] = act(bias[u] + sum_k in[n][k] * weight[u][k]), with the input
 * read as [N, K] whatever its logical rank (dense flattens [N, C, H, W]
 * implicitly, in NCHW order like torch.flatten).  Four accumulators over
 * interleaved k keep the reduction from being one long dependency chain.
 *
 * Kernel arguments: (in, out, weight[, bias]).
 */
#include "codegen.h"

enum { DENSE_ACCS = 4 };

LLVMValueRef cg_dense(CodeGen *cg, const Node *n) {
  const Shape *is = &cg->g->nodes[n->in[0]].shape;
  const DenseAttr *d = &n->a.dense;
  int64_t N = n->shape.dim[0], U = n->shape.dim[1], K = shape_numel(is) / N;
  bool is_new;
  const char *key = arena_printf(cg->arena, "dense n=%lld k=%lld u=%lld b=%d act=%d/%g/%g", (long long)N,
                                 (long long)K, (long long)U, d->has_bias, n->act.kind, n->act.alpha, n->act.beta);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.dense_%s", cg->g->name, n->name),
                                    d->has_bias ? 4 : 3, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1), w = LLVMGetParam(fn, 2);
  LLVMValueRef acc[DENSE_ACCS];
  for (int i = 0; i < DENSE_ACCS; i++) acc[i] = cg_alloca(cg, cg->f32, "acc");
  int64_t kmain = K / DENSE_ACCS * DENSE_ACCS;

  Loop ln = cg_for(cg, "n", N);
  Loop lu = cg_for(cg, "u", U);
  for (int i = 0; i < DENSE_ACCS; i++) LLVMBuildStore(cg->b, cg_f32(cg, 0), acc[i]);
  LLVMValueRef xrow = cg_gep(cg, in, cg_mul(cg, ln.iv, cg_i64(cg, K)), "xrow");
  LLVMValueRef wrow = cg_gep(cg, w, cg_mul(cg, lu.iv, cg_i64(cg, K)), "wrow");
  Loop lk = cg_loop_begin(cg, "k", cg_i64(cg, 0), cg_i64(cg, kmain), DENSE_ACCS);
  for (int i = 0; i < DENSE_ACCS; i++) {
    LLVMValueRef k = cg_add(cg, lk.iv, cg_i64(cg, i));
    LLVMValueRef s = cg_fma(cg, cg_load(cg, xrow, k, "x"), cg_load(cg, wrow, k, "w"),
                            LLVMBuildLoad2(cg->b, cg->f32, acc[i], ""));
    LLVMBuildStore(cg->b, s, acc[i]);
  }
  cg_loop_end(cg, &lk);
  LLVMValueRef sum = cg_f32(cg, 0);
  for (int i = 0; i < DENSE_ACCS; i++) sum = LLVMBuildFAdd(cg->b, sum, LLVMBuildLoad2(cg->b, cg->f32, acc[i], ""), "");
  for (int64_t k = kmain; k < K; k++)
    sum = cg_fma(cg, cg_load(cg, xrow, cg_i64(cg, k), "x"), cg_load(cg, wrow, cg_i64(cg, k), "w"), sum);
  if (d->has_bias) sum = LLVMBuildFAdd(cg->b, sum, cg_load(cg, LLVMGetParam(fn, 3), lu.iv, "bias"), "");
  cg_store(cg, out, cg_muladd(cg, ln.iv, U, lu.iv), cg_act(cg, &n->act, sum));
  cg_loop_end(cg, &lu);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}
