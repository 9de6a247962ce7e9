/*
 * cg_eltwise.c: element-wise layers: activations used as layers (prelu
 * among them), and copies (a flatten, reshape or dropout whose result must
 * land in caller memory; elsewhere those are views and have no code).
 *
 * prelu's slope is its weight, one value for all channels or one per
 * channel (dim 1, as torch.nn.PReLU): the tensor is then walked as
 * [outer, C, inner] and the slope loaded once per (outer, channel) row.
 *
 * Kernel arguments: (in, out) or, for prelu, (in, out, weight); for a
 * constant that is a graph output, (out, value).
 */
#include "codegen.h"

static LLVMValueRef prelu_kernel(CodeGen *cg, const Node *n) {
  const Shape *s = &n->shape;
  int64_t slopes = shape_numel(&n->weight->shape);
  int64_t C = slopes == 1 ? 1 : s->dim[1];
  int64_t outer = slopes == 1 ? 1 : s->dim[0], inner = shape_numel(s) / (outer * C);
  bool is_new;
  const char *key = arena_printf(cg->arena, "prelu o=%lld c=%lld i=%lld", (long long)outer, (long long)C,
                                 (long long)inner);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.prelu_%s", cg->g->name, n->name), 3,
                                    &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1), w = LLVMGetParam(fn, 2);
  Loop lo = cg_for(cg, "outer", outer);
  Loop lc = cg_for(cg, "c", C);
  LLVMValueRef slope = cg_load(cg, w, lc.iv, "slope");
  LLVMValueRef row = cg_mul(cg, cg_muladd(cg, lo.iv, C, lc.iv), cg_i64(cg, inner));
  Loop li = cg_for(cg, "i", inner);
  LLVMValueRef idx = cg_add(cg, row, li.iv);
  cg_store(cg, out, idx, cg_prelu(cg, cg_load(cg, in, idx, "x"), slope));
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lo);
  cg_kernel_end(cg);
  return fn;
}

/* A constant that is a graph output: copied from the object to the caller.
 * Arguments: (out, value). */
static LLVMValueRef constant_copy(CodeGen *cg, const Node *n) {
  int64_t count = shape_numel(&n->shape);
  bool is_new;
  LLVMValueRef fn = cg_kernel_begin(cg, arena_printf(cg->arena, "constant n=%lld", (long long)count),
                                    arena_printf(cg->arena, "%s.constant_%s", cg->g->name, n->name), 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef out = LLVMGetParam(fn, 0), in = LLVMGetParam(fn, 1);
  Loop l = cg_for(cg, "i", count);
  cg_store(cg, out, l.iv, cg_load(cg, in, l.iv, "x"));
  cg_loop_end(cg, &l);
  cg_kernel_end(cg);
  return fn;
}

LLVMValueRef cg_eltwise(CodeGen *cg, const Node *n) {
  if (n->op == OP_CONSTANT) return constant_copy(cg, n);
  if (n->op == OP_ACT && n->act.kind == ACT_PRELU) return prelu_kernel(cg, n);
  int64_t count = shape_numel(&n->shape);
  Act act = n->op == OP_ACT ? n->act : (Act){ACT_NONE, 0, 0};
  bool is_new;
  const char *key = arena_printf(cg->arena, "eltwise n=%lld %s", (long long)count, cg_act_key(cg, &act));
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.%s_%s", cg->g->name,
                                                          act.kind ? act_names[act.kind] : "copy", n->name),
                                    2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  Loop l = cg_for(cg, "i", count);
  cg_store(cg, out, l.iv, cg_act(cg, &act, cg_load(cg, in, l.iv, "x")));
  cg_loop_end(cg, &l);
  cg_kernel_end(cg);
  return fn;
}
