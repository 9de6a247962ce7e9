/*
 * cg_eltwise.c: element-wise layers: activations used as layers, and
 * copies (a flatten whose result must land in caller memory).
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

LLVMValueRef cg_eltwise(CodeGen *cg, const Node *n) {
  int64_t count = shape_numel(&n->shape);
  Act act = n->op == OP_ACT ? n->act : (Act){ACT_NONE, 0, 0};
  bool is_new;
  const char *key = arena_printf(cg->arena, "eltwise n=%lld act=%d/%g/%g", (long long)count, act.kind,
                                 act.alpha, act.beta);
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
