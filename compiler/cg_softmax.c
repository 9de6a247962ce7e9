/*
 * cg_softmax.c: softmax and log_softmax along any axis (reference).
 *
 * The tensor is viewed as [outer, axis, inner].  For each (outer, inner)
 * line: m = max, s = sum exp(x - m) (blocked: cg_sum), then out = exp(x - m) / s, or
 * x - m - log(s) for log_softmax: the max shift keeps exp from
 * overflowing, as PyTorch does.  A line holding NaN gives NaN (the max
 * propagates it); a line of -inf gives NaN, as in PyTorch.
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

typedef struct {
  LLVMValueRef in, out, base, m; /* line start, its max */
  int64_t inner;                 /* stride along the axis */
  bool log;                      /* log_softmax: exp(x - m) is not stored */
} Line;

/* exp(x - m) of element a of the line (stored in out for softmax). */
static LLVMValueRef line_exp(CodeGen *cg, void *ctx, LLVMValueRef a) {
  Line *l = ctx;
  LLVMValueRef idx = cg_muladd(cg, a, l->inner, l->base);
  LLVMValueRef e = cg_exp(cg, LLVMBuildFSub(cg->b, cg_load(cg, l->in, idx, "x"), l->m, ""));
  if (!l->log) cg_store(cg, l->out, idx, e);
  return e;
}

LLVMValueRef cg_softmax(CodeGen *cg, const Node *n) {
  const Shape *s = &n->shape;
  int axis = n->a.softmax.axis;
  bool log = n->a.softmax.log, is_new;
  int64_t outer = 1, inner = 1, len = s->dim[axis];
  for (int i = 0; i < axis; i++) outer *= s->dim[i];
  for (int i = axis + 1; i < s->rank; i++) inner *= s->dim[i];
  const char *key = arena_printf(cg->arena, "softmax o=%lld a=%lld i=%lld log=%d", (long long)outer,
                                 (long long)len, (long long)inner, log);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.softmax_%s", cg->g->name, n->name), 2,
                                    &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef vmax = cg_alloca(cg, cg->f32, "max");

  Loop lo = cg_for(cg, "outer", outer);
  Loop li = cg_for(cg, "inner", inner);
  LLVMValueRef base = cg_add(cg, cg_mul(cg, lo.iv, cg_i64(cg, len * inner)), li.iv);
  LLVMBuildStore(cg->b, cg_f32(cg, -1.0 / 0.0), vmax);
  Loop la = cg_for(cg, "a", len);
  LLVMValueRef idx = cg_muladd(cg, la.iv, inner, base);
  LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->f32, vmax, ""), cg_load(cg, in, idx, "x")), vmax);
  cg_loop_end(cg, &la);
  LLVMValueRef m = LLVMBuildLoad2(cg->b, cg->f32, vmax, "m");
  Line line = {in, out, base, m, inner, log};
  LLVMValueRef sum = cg_sum(cg, "a", cg->f32, cg_i64(cg, 0), cg_i64(cg, len), len, line_exp, &line);
  LLVMValueRef k = log ? LLVMBuildFAdd(cg->b, m, cg_log(cg, sum), "shift")
                       : LLVMBuildFDiv(cg->b, cg_f32(cg, 1.0), sum, "inv");
  la = cg_for(cg, "a", len);
  idx = cg_muladd(cg, la.iv, inner, base);
  LLVMValueRef y = log ? LLVMBuildFSub(cg->b, cg_load(cg, in, idx, "x"), k, "")
                       : LLVMBuildFMul(cg->b, cg_load(cg, out, idx, "e"), k, "");
  cg_store(cg, out, idx, y);
  cg_loop_end(cg, &la);
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lo);
  cg_kernel_end(cg);
  return fn;
}
