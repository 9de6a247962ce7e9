/*
 * cg_concat.c: concatenation along any axis (reference).
 *
 * With the output viewed as [outer, axis * inner] (outer = product of the
 * dims before the axis, inner = of those after), input k is a block of
 * rows [outer, len_k] with len_k = dim_k[axis] * inner that lands at
 * column offset sum_{j<k} len_j of each output row: one contiguous copy
 * per (input, outer index).
 *
 * Kernel arguments: (in_0, ..., in_{k-1}, out).
 */
#include "codegen.h"

LLVMValueRef cg_concat(CodeGen *cg, const Node *n) {
  const Shape *o = &n->shape;
  int axis = n->a.concat.axis;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++) outer *= o->dim[i];
  for (int i = axis + 1; i < o->rank; i++) inner *= o->dim[i];
  int64_t row = o->dim[axis] * inner;
  char *key = arena_printf(cg->arena, "concat outer=%lld inner=%lld axis", (long long)outer, (long long)inner);
  for (int k = 0; k < n->nin; k++)
    key = arena_printf(cg->arena, "%s %lld", key, (long long)cg->g->nodes[n->in[k]].shape.dim[axis]);
  bool is_new;
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.concat_%s", cg->g->name, n->name),
                                    n->nin + 1, &is_new);
  if (!is_new) return fn;
  LLVMValueRef out = LLVMGetParam(fn, (unsigned)n->nin);
  int64_t col = 0;
  for (int k = 0; k < n->nin; k++) {
    int64_t len = cg->g->nodes[n->in[k]].shape.dim[axis] * inner;
    LLVMValueRef in = LLVMGetParam(fn, (unsigned)k);
    Loop lo = cg_for(cg, "outer", outer);
    LLVMValueRef src = cg_gep(cg, in, cg_mul(cg, lo.iv, cg_i64(cg, len)), "src");
    LLVMValueRef dst = cg_gep(cg, out, cg_muladd(cg, lo.iv, row, cg_i64(cg, col)), "dst");
    Loop li = cg_for(cg, "i", len);
    cg_store(cg, dst, li.iv, cg_load(cg, src, li.iv, "x"));
    cg_loop_end(cg, &li);
    cg_loop_end(cg, &lo);
    col += len;
  }
  cg_kernel_end(cg);
  return fn;
}
