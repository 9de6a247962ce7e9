/*
 * lower_memmove.c: no memmove in the object.
 *
 * The generated code may call only memcpy and memset, but LLVM's optimiser
 * can create llvm.memmove.  memcpyopt merges two copies, b = a then c = b,
 * into c = a, and when the memory planner has given c and a overlapping
 * workspace offsets (a is dead by then), the merged copy must be a
 * memmove.  The code generator would lower that to a call to libc's
 * memmove.  This pass runs after the optimiser and replaces every
 * llvm.memmove with a call to one internal byte-copy loop (forward or
 * backward, depending on the order of the pointers).  Such copies are rare
 * and small: each moves one tensor that an identity layer passes on.
 *
 * needs: the optimised module; gives: no llvm.memmove calls.
 */
#include "codegen.h"

#include <string.h>

static bool is_memmove_call(LLVMValueRef inst) {
  if (!LLVMIsACallInst(inst)) return false;
  LLVMValueRef callee = LLVMGetCalledValue(inst);
  if (!callee || !LLVMIsAFunction(callee)) return false;
  size_t len;
  const char *name = LLVMGetValueName2(callee, &len);
  return len >= 12 && strncmp(name, "llvm.memmove", 12) == 0;
}

/* One copy loop: i from lo while i != hi in steps of `step`, copying byte
 * i going up (step 1) or byte i - 1 going down (step -1). */
static void copy_loop(LLVMContextRef ctx, LLVMBuilderRef b, LLVMValueRef fn, LLVMValueRef d, LLVMValueRef s,
                      LLVMValueRef lo, LLVMValueRef hi, int step, LLVMBasicBlockRef done) {
  LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx), i8 = LLVMInt8TypeInContext(ctx);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(ctx, fn, step > 0 ? "fwd" : "bwd");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, lo, hi, ""), done, body);
  LLVMPositionBuilderAtEnd(b, body);
  LLVMValueRef i = LLVMBuildPhi(b, i64, "i");
  LLVMValueRef next = LLVMBuildAdd(b, i, LLVMConstInt(i64, (unsigned long long)(long long)step, 1), "");
  LLVMValueRef at = step > 0 ? i : next;
  LLVMValueRef v = LLVMBuildLoad2(b, i8, LLVMBuildGEP2(b, i8, s, &at, 1, ""), "");
  LLVMBuildStore(b, v, LLVMBuildGEP2(b, i8, d, &at, 1, ""));
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, next, hi, ""), done, body);
  LLVMValueRef vals[2] = {lo, next};
  LLVMBasicBlockRef from[2] = {pre, body};
  LLVMAddIncoming(i, vals, from, 2);
}

/* void <model>.memmove(ptr d, ptr s, i64 n) */
static LLVMValueRef emit_helper(CodeGen *cg, LLVMBuilderRef b) {
  LLVMContextRef ctx = cg->ctx;
  LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMTypeRef params[3] = {ptr, ptr, i64};
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 3, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, arena_printf(cg->arena, "%s.memmove", cg->g->name), fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMValueRef d = LLVMGetParam(fn, 0), s = LLVMGetParam(fn, 1), n = LLVMGetParam(fn, 2);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, fn, "entry");
  LLVMBasicBlockRef up = LLVMAppendBasicBlockInContext(ctx, fn, "up");
  LLVMBasicBlockRef down = LLVMAppendBasicBlockInContext(ctx, fn, "down");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ctx, fn, "done");
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef below = LLVMBuildICmp(b, LLVMIntULE, LLVMBuildPtrToInt(b, d, i64, ""), LLVMBuildPtrToInt(b, s, i64, ""), "");
  LLVMBuildCondBr(b, below, up, down);
  LLVMValueRef zero = LLVMConstInt(i64, 0, 0);
  LLVMPositionBuilderAtEnd(b, up);
  copy_loop(ctx, b, fn, d, s, zero, n, 1, done);
  LLVMPositionBuilderAtEnd(b, down);
  copy_loop(ctx, b, fn, d, s, n, zero, -1, done);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRetVoid(b);
  return fn;
}

void lower_memmove(CodeGen *cg) {
  LLVMValueRef *calls = NULL;
  int ncalls = 0, cap = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
      for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
        if (is_memmove_call(in)) VEC_PUSH(cg->arena, calls, ncalls, cap, in);
  if (ncalls == 0) return;
  LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->ctx);
  LLVMValueRef helper = emit_helper(cg, b);
  LLVMTypeRef i64 = LLVMInt64TypeInContext(cg->ctx);
  for (int k = 0; k < ncalls; k++) {
    LLVMPositionBuilderBefore(b, calls[k]);
    LLVMValueRef args[3] = {LLVMGetOperand(calls[k], 0), LLVMGetOperand(calls[k], 1),
                            LLVMBuildZExtOrBitCast(b, LLVMGetOperand(calls[k], 2), i64, "")};
    LLVMBuildCall2(b, LLVMGlobalGetValueType(helper), helper, args, 3, "");
    LLVMInstructionEraseFromParent(calls[k]);
  }
  LLVMDisposeBuilder(b);
}
