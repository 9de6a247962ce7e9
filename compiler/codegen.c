/*
 * codegen.c: graph -> LLVM module.
 *
 * needs: verified graph with schedule and memory plan; gives: a module with
 *   - one constant global per parameter (64-byte aligned, internal),
 *   - one internal kernel per distinct layer (shared between layers whose
 *     key matches, see codegen.h),
 *   - `<name>_run(inputs..., outputs..., workspace)`: checks its pointers,
 *     then calls the kernels in topological order on the planned buffers,
 *   - `<name>_run_pool(inputs..., outputs..., workspace, workspace_size,
 *     pool)`: the same calls, except that each layer that
 *     schedule.c split goes through cnnrt_parallel_for as min(threads,
 *     max_tasks) tasks, each a call of the same kernel on its slice of the
 *     split dimension (and its own scratch slot); threads is the pool's
 *     count, limited by the scratch slots workspace_size holds,
 *   - `<name>_run_generic(inputs[], outputs[], workspace)`,
 *     `<name>_run_pool_generic(...)` and the `<name>_model` descriptor
 *     (layout: cnnrt_model in runtime/cnnrt.h).
 * <name>_run calls nothing outside the object but memcpy/memset;
 * <name>_run_pool calls cnnrt_pool_threads and cnnrt_parallel_for.
 * Every LLVM object created here is disposed before codegen_emit returns.
 */
#include "codegen.h"

#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"

/* ---- small builders ---- */

LLVMValueRef cg_i64(CodeGen *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(CodeGen *cg, double v) { return LLVMConstReal(cg->f32, v); }

LLVMValueRef cg_alloca(CodeGen *cg, LLVMTypeRef t, const char *name) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMValueRef first = LLVMGetFirstInstruction(cg->entry);
  if (first)
    LLVMPositionBuilderBefore(cg->b, first);
  else
    LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef a = LLVMBuildAlloca(cg->b, t, name);
  LLVMPositionBuilderAtEnd(cg->b, cur);
  return a;
}

LLVMValueRef cg_gep(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, const char *name) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->f32, base, &idx, 1, name);
}

LLVMValueRef cg_gep_wrap(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildGEP2(cg->b, cg->f32, base, &idx, 1, "");
}

LLVMValueRef cg_load(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, const char *name) {
  return LLVMBuildLoad2(cg->b, cg->f32, cg_gep(cg, base, idx, ""), name);
}

void cg_store(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(cg->b, v, cg_gep(cg, base, idx, ""));
}

LLVMValueRef cg_vload(CodeGen *cg, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef l = LLVMBuildLoad2(cg->b, vt, cg_gep(cg, base, idx, ""), "");
  LLVMSetAlignment(l, 4);
  return l;
}

void cg_vstore(CodeGen *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMSetAlignment(LLVMBuildStore(cg->b, v, cg_gep(cg, base, idx, "")), 4);
}

LLVMValueRef cg_splat(CodeGen *cg, LLVMTypeRef vt, LLVMValueRef x) {
  unsigned n = LLVMGetVectorSize(vt);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, LLVMConstInt(cg->i32, 0, 0), "");
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(cg->i32, n)), "splat");
}

LLVMValueRef cg_smin(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_smax(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, a, b, ""), a, b, "");
}

LLVMValueRef cg_add(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }
LLVMValueRef cg_mul(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->b, a, b, ""); }

LLVMValueRef cg_muladd(CodeGen *cg, LLVMValueRef a, int64_t k, LLVMValueRef c) {
  return cg_add(cg, cg_mul(cg, a, cg_i64(cg, k)), c);
}

/* On 32-bit cores in 32 bits: indices there stay within +-2^31 (tensors
 * below 2^31 elements, target.c), and an i64 compare is two registers and
 * a subtract with carry. */
LLVMValueRef cg_in_range(CodeGen *cg, LLVMValueRef v, int64_t n) {
  if (cg->index32)
    return LLVMBuildICmp(cg->b, LLVMIntULT, LLVMBuildTrunc(cg->b, v, cg->i32, ""),
                         LLVMConstInt(cg->i32, (unsigned long long)n, 0), "inb");
  return LLVMBuildICmp(cg->b, LLVMIntULT, v, cg_i64(cg, n), "inb");
}

LLVMValueRef cg_intrinsic(CodeGen *cg, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                          int nargs, const char *vname) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  CNNC_ASSERT(id != 0);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &t, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, &t, 1);
  return LLVMBuildCall2(cg->b, fty, fn, args, (unsigned)nargs, vname);
}

static void add_attr(CodeGen *cg, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  CNNC_ASSERT(kind != 0);
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

/* a OP b as an explicit call of the EABI routine __aeabi_f<op> (soft
 * float: Arm cores without FPU, whose vectors have one lane). */
static LLVMValueRef cg_soft_call(CodeGen *cg, const char *op, LLVMValueRef a, LLVMValueRef b) {
  char name[32];
  snprintf(name, sizeof name, "__aeabi_f%s", op);
  LLVMTypeRef t = LLVMTypeOf(a), params[2] = {cg->f32, cg->f32};
  LLVMTypeRef fty = LLVMFunctionType(cg->f32, params, 2, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
  if (!fn) {
    fn = LLVMAddFunction(cg->mod, name, fty);
    add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  }
  bool vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
  CNNC_ASSERT(!vec || LLVMGetVectorSize(t) == 1);
  LLVMValueRef args[2] = {a, b};
  if (vec)
    for (int i = 0; i < 2; i++) args[i] = LLVMBuildExtractElement(cg->b, args[i], LLVMConstInt(cg->i32, 0, 0), "");
  LLVMValueRef r = LLVMBuildCall2(cg->b, fty, fn, args, 2, "");
  return vec ? LLVMBuildInsertElement(cg->b, LLVMGetUndef(t), r, LLVMConstInt(cg->i32, 0, 0), "") : r;
}

LLVMValueRef cg_fadd(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return cg->soft_float ? cg_soft_call(cg, "add", a, b) : LLVMBuildFAdd(cg->b, a, b, "");
}

LLVMValueRef cg_fsub(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return cg->soft_float ? cg_soft_call(cg, "sub", a, b) : LLVMBuildFSub(cg->b, a, b, "");
}

LLVMValueRef cg_fmul(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return cg->soft_float ? cg_soft_call(cg, "mul", a, b) : LLVMBuildFMul(cg->b, a, b, "");
}

/* The asm of cg_const_at_use (below), for any bits: one movs below 256. */
static LLVMValueRef const_asm(CodeGen *cg, uint32_t bits) {
  char text[160];
  int n = 0, len = 32;
  while (len > 8 && !(bits >> (len - 1) & 1)) len--;
  int pos = len > 8 ? len - 8 : 0; /* bits below the first byte still to add */
  n += snprintf(text + n, sizeof text - (size_t)n, "movs $0, #%u", (unsigned)(bits >> pos) & 0xff);
  while (pos > 0) {
    int sh = pos >= 8 ? 8 : pos;
    pos -= sh;
    unsigned chunk = (unsigned)(bits >> pos) & ((1u << sh) - 1);
    if (!(bits & ((1u << (pos + sh)) - 1))) { /* nothing below: one shift ends it */
      n += snprintf(text + n, sizeof text - (size_t)n, "\n\tlsls $0, $0, #%d", sh + pos);
      break;
    }
    n += snprintf(text + n, sizeof text - (size_t)n, "\n\tlsls $0, $0, #%d", sh);
    if (chunk) n += snprintf(text + n, sizeof text - (size_t)n, "\n\tadds $0, #%u", chunk);
  }
  static const char cons[] = "=l,~{cpsr}";
  LLVMTypeRef fty = LLVMFunctionType(cg->i32, NULL, 0, 0);
  LLVMValueRef asm_ = LLVMGetInlineAsm(fty, text, (size_t)n, (char *)cons, sizeof cons - 1, 1, 0,
                                      LLVMInlineAsmDialectATT, 0);
  return LLVMBuildCall2(cg->b, fty, asm_, NULL, 0, "k");
}

/* The i32 `bits` made where it is used.  On Thumb-1 (Armv6-M) a constant
 * above 255 takes two or more instructions (movs, lsls, adds), and LLVM
 * neither rematerialises such a sequence nor keeps it out of a loop's
 * callee-saved registers r4-r7: it made each constant once per loop and
 * kept it across the soft-float calls, on the stack.  Here each use is an
 * inline asm with side effects that builds the value in a low register,
 * which nothing merges, hoists or keeps; elsewhere a plain constant. */
LLVMValueRef cg_const_at_use(CodeGen *cg, uint32_t bits) {
  if (!cg->thumb1 || bits < 256) return LLVMConstInt(cg->i32, bits, 0);
  return const_asm(cg, bits);
}


/* v through an empty inline asm of constraints `cons` ("=r,0": the same
 * register out as in), which LLVM cannot see through; with side effects,
 * never merged with another or moved. */
LLVMValueRef cg_asm_identity(CodeGen *cg, LLVMValueRef v, const char *cons, bool side_effects) {
  LLVMTypeRef t = LLVMTypeOf(v), fty = LLVMFunctionType(t, &t, 1, 0);
  LLVMValueRef asm_ = LLVMGetInlineAsm(fty, "", 0, (char *)cons, strlen(cons), side_effects, 0,
                                      LLVMInlineAsmDialectATT, 0);
  return LLVMBuildCall2(cg->b, fty, asm_, &v, 1, "");
}

/* p, on Thumb-1 behind cg_asm_identity: a base of its own, which loop
 * strength reduction does not fold into another pointer of the same loop
 * (with offsets beyond the 124 bytes a Thumb-1 load reaches, kept in
 * registers); elsewhere p. */
LLVMValueRef cg_base_at_use(CodeGen *cg, LLVMValueRef p) { return cg->thumb1 ? cg_asm_identity(cg, p, "=l,0", false) : p; }

/* &base[floats], on Thumb-1 with an offset beyond a load's reach made
 * where it is used (cg_const_at_use) instead of kept in a register. */
LLVMValueRef cg_gep_at_use(CodeGen *cg, LLVMValueRef base, int64_t floats) {
  if (!cg->thumb1 || floats * 4 < 128) return cg_gep(cg, base, cg_i64(cg, floats), "");
  CNNC_ASSERT(floats >= 0 && floats * 4 <= UINT32_MAX);
  LLVMValueRef off = const_asm(cg, (uint32_t)(floats * 4)); /* below 256 too: LLVM hoisted those movs */
  return LLVMBuildInBoundsGEP2(cg->b, cg->i8, base, &off, 1, "");
}

/* The f32 v made where it is used (cg_const_at_use). */
LLVMValueRef cg_f32_at_use(CodeGen *cg, double v) {
  if (!cg->thumb1) return cg_f32(cg, v);
  return LLVMBuildBitCast(cg->b, cg_const_at_use(cg, cg_f32_bits(v)), cg->f32, "");
}

uint32_t cg_f32_bits(double v) {
  union {
    float f;
    uint32_t u;
  } bits = {.f = (float)v};
  return bits.u;
}

/* -x (a scalar or a one-lane vector); on Thumb-1 the sign bit it flips is
 * made where it is used (cg_const_at_use). */
LLVMValueRef cg_fneg_at_use(CodeGen *cg, LLVMValueRef x) {
  if (!cg->thumb1) return LLVMBuildFNeg(cg->b, x, "");
  LLVMTypeRef t = LLVMTypeOf(x);
  bool vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
  LLVMValueRef s = vec ? LLVMBuildExtractElement(cg->b, x, LLVMConstInt(cg->i32, 0, 0), "") : x;
  LLVMValueRef i = LLVMBuildXor(cg->b, LLVMBuildBitCast(cg->b, s, cg->i32, ""), cg_const_at_use(cg, 0x80000000u), "");
  LLVMValueRef r = LLVMBuildBitCast(cg->b, i, cg->f32, "neg");
  return vec ? LLVMBuildInsertElement(cg->b, LLVMGetUndef(t), r, LLVMConstInt(cg->i32, 0, 0), "") : r;
}

LLVMValueRef cg_fma(CodeGen *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  if (cg->soft_float) return cg_fadd(cg, cg_fmul(cg, a, b), c);
  LLVMValueRef args[3] = {a, b, c};
  return cg_intrinsic(cg, "llvm.fmuladd", LLVMTypeOf(a), args, 3, "");
}

const char *cg_act_key(CodeGen *cg, const Act *act) {
  return arena_printf(cg->arena, "act=%d/%a/%a", act->kind, (double)act->alpha, (double)act->beta);
}

/* ---- control flow ---- */

static LLVMBasicBlockRef block(CodeGen *cg, const char *name, const char *suffix) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s.%s", name, suffix);
  return LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
}

/* On 32-bit cores (cg->index32) the counter is an i32 phi and iv its
 * sign extension: the optimiser then narrows the index arithmetic to 32
 * bits (GEP indices are pointer-sized there), where i64 counters would
 * take two registers each and add with carry. */
Loop cg_loop_begin(CodeGen *cg, const char *name, LLVMValueRef lo, LLVMValueRef hi, int64_t step) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  Loop l = {.header = block(cg, name, "head"), .exit = NULL, .step = cg_i64(cg, step)};
  LLVMBasicBlockRef body = block(cg, name, "body");
  l.exit = block(cg, name, "exit");
  if (cg->index32) {
    lo = LLVMBuildTrunc(cg->b, lo, cg->i32, "");
    hi = LLVMBuildTrunc(cg->b, hi, cg->i32, "");
    l.step = LLVMConstInt(cg->i32, (unsigned long long)step, 1);
  }
  LLVMBuildBr(cg->b, l.header);
  LLVMPositionBuilderAtEnd(cg->b, l.header);
  l.phi = LLVMBuildPhi(cg->b, cg->index32 ? cg->i32 : cg->i64, name);
  LLVMAddIncoming(l.phi, &lo, &pre, 1);
  l.iv = cg->index32 ? LLVMBuildSExt(cg->b, l.phi, cg->i64, name) : l.phi; /* in the header: dominates the exit */
  LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, l.phi, hi, "more");
  LLVMBuildCondBr(cg->b, more, body, l.exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
  return l;
}

void cg_loop_end(CodeGen *cg, Loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMValueRef next = LLVMBuildNSWAdd(cg->b, l->phi, l->step, "");
  LLVMAddIncoming(l->phi, &next, &latch, 1);
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

Loop cg_for(CodeGen *cg, const char *name, int64_t n) {
  return cg_loop_begin(cg, name, cg_i64(cg, 0), cg_i64(cg, n), 1);
}

/* The latch branch gets !llvm.loop !{self, !{!"llvm.loop.unroll.disable"}}
 * (a loop id names itself, hence the temporary node). */
static void mark_rolled(CodeGen *cg, LLVMBasicBlockRef latch) {
  static const char opt[] = "llvm.loop.unroll.disable";
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(cg->ctx, NULL, 0);
  LLVMMetadataRef prop = LLVMMDStringInContext2(cg->ctx, opt, sizeof opt - 1);
  LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(cg->ctx, &prop, 1)};
  LLVMMetadataRef id = LLVMMDNodeInContext2(cg->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, id);
  LLVMSetMetadata(LLVMGetBasicBlockTerminator(latch), LLVMGetMDKindIDInContext(cg->ctx, "llvm.loop", 9),
                  LLVMMetadataAsValue(cg->ctx, id));
}

void cg_loop_end_rolled(CodeGen *cg, Loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  cg_loop_end(cg, l);
  mark_rolled(cg, latch);
}

Walk cg_walk_begin(CodeGen *cg, const char *name, LLVMValueRef count, int np, const LLVMValueRef *start,
                   const int64_t *step) {
  CNNC_ASSERT(np >= 1 && np <= CG_WALK_MAX);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  Walk w = {.header = block(cg, name, "head"), .np = np, .hide = cg->thumb1};
  LLVMBasicBlockRef body = block(cg, name, "body");
  w.exit = block(cg, name, "exit");
  LLVMTypeRef it = cg->index32 ? cg->i32 : cg->i64;
  if (cg->index32) count = LLVMBuildTrunc(cg->b, count, it, "");
  LLVMBuildBr(cg->b, w.header);
  LLVMPositionBuilderAtEnd(cg->b, w.header);
  w.left = LLVMBuildPhi(cg->b, it, name);
  LLVMAddIncoming(w.left, &count, &pre, 1);
  for (int i = 0; i < np; i++) {
    w.step[i] = step[i];
    w.p[i] = LLVMBuildPhi(cg->b, cg->ptr, name);
    LLVMValueRef s = start[i];
    LLVMAddIncoming(w.p[i], &s, &pre, 1);
  }
  LLVMValueRef done = LLVMBuildSub(cg->b, count, w.left, "");
  w.iv = cg->index32 ? LLVMBuildSExt(cg->b, done, cg->i64, name) : done;
  LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSGT, w.left, LLVMConstInt(it, 0, 0), "more");
  LLVMBuildCondBr(cg->b, more, body, w.exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
  return w;
}

void cg_walk_end(CodeGen *cg, Walk *w) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMValueRef next = LLVMBuildNSWSub(cg->b, w->left, LLVMConstInt(LLVMTypeOf(w->left), 1, 0), "");
  LLVMAddIncoming(w->left, &next, &latch, 1);
  for (int i = 0; i < w->np; i++) {
    LLVMValueRef p = w->hide ? cg_asm_identity(cg, w->p[i], cg->thumb1 ? "=l,0" : "=r,0", false) : w->p[i], off;
    if (cg->thumb1 && w->step[i] >= 0 && w->step[i] <= UINT32_MAX)
      off = cg_const_at_use(cg, (uint32_t)w->step[i]);
    else
      off = LLVMConstInt(cg->isize, (unsigned long long)w->step[i], 1);
    LLVMValueRef q = LLVMBuildGEP2(cg->b, cg->i8, p, &off, 1, "");
    LLVMAddIncoming(w->p[i], &q, &latch, 1);
  }
  LLVMBuildBr(cg->b, w->header);
  mark_rolled(cg, latch);
  LLVMPositionBuilderAtEnd(cg->b, w->exit);
}

LLVMValueRef cg_udiv32(CodeGen *cg, LLVMValueRef x, LLVMValueRef d) {
  if (!cg->no_div) return LLVMBuildUDiv(cg->b, x, d, "");
  LLVMValueRef qa = cg_alloca(cg, cg->i32, "div.q"), ra = cg_alloca(cg, cg->i32, "div.r");
  LLVMBuildStore(cg->b, LLVMConstInt(cg->i32, 0, 0), qa);
  LLVMBuildStore(cg->b, LLVMConstInt(cg->i32, 0, 0), ra);
  Loop l = cg_for(cg, "div", 32); /* bit 31 - iv of the quotient */
  LLVMValueRef bit = LLVMBuildSub(cg->b, LLVMConstInt(cg->i32, 31, 0), LLVMBuildTrunc(cg->b, l.iv, cg->i32, ""), "bit");
  LLVMValueRef r = LLVMBuildShl(cg->b, LLVMBuildLoad2(cg->b, cg->i32, ra, ""), LLVMConstInt(cg->i32, 1, 0), "");
  r = LLVMBuildOr(cg->b, r, LLVMBuildAnd(cg->b, LLVMBuildLShr(cg->b, x, bit, ""), LLVMConstInt(cg->i32, 1, 0), ""), "");
  LLVMValueRef ge = LLVMBuildICmp(cg->b, LLVMIntUGE, r, d, "ge");
  LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, ge, LLVMBuildSub(cg->b, r, d, ""), r, ""), ra);
  LLVMValueRef qbit = LLVMBuildShl(cg->b, LLVMBuildZExt(cg->b, ge, cg->i32, ""), bit, "");
  LLVMBuildStore(cg->b, LLVMBuildOr(cg->b, LLVMBuildLoad2(cg->b, cg->i32, qa, ""), qbit, ""), qa);
  cg_loop_end(cg, &l);
  return LLVMBuildLoad2(cg->b, cg->i32, qa, "quot");
}

LLVMBasicBlockRef cg_if_begin(CodeGen *cg, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = block(cg, name, "then");
  LLVMBasicBlockRef join = block(cg, name, "join");
  LLVMBuildCondBr(cg->b, cond, then, join);
  LLVMPositionBuilderAtEnd(cg->b, then);
  return join;
}

void cg_if_end(CodeGen *cg, LLVMBasicBlockRef join) {
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, join);
}

/* ---- blocked summation ---- */

typedef struct {
  LLVMTypeRef t;   /* float or float vector */
  LLVMValueRef hi; /* end of the range */
  CgTerm term;
  void *ctx;
  const char *name;
} Sum;

/* The sum of terms [base, min(base + SUM_BLOCK^(level+1), hi)): a loop of
 * at most SUM_BLOCK steps, each a partial sum of the level below. */
static LLVMValueRef sum_level(CodeGen *cg, Sum *s, int level, LLVMValueRef base) {
  int64_t step = 1;
  for (int k = 0; k < level; k++) step *= CG_SUM_BLOCK;
  LLVMValueRef end = cg_smin(cg, cg_add(cg, base, cg_i64(cg, step * CG_SUM_BLOCK)), s->hi);
  LLVMValueRef acc = cg_alloca(cg, s->t, s->name);
  LLVMBuildStore(cg->b, LLVMConstNull(s->t), acc);
  Loop l = cg_loop_begin(cg, s->name, base, end, step);
  LLVMValueRef v = level == 0 ? s->term(cg, s->ctx, l.iv) : sum_level(cg, s, level - 1, l.iv);
  LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, s->t, acc, ""), v, ""), acc);
  cg_loop_end(cg, &l);
  return LLVMBuildLoad2(cg->b, s->t, acc, s->name);
}

LLVMValueRef cg_sum(CodeGen *cg, const char *name, LLVMTypeRef t, LLVMValueRef lo, LLVMValueRef hi, int64_t maxn,
                    CgTerm term, void *ctx) {
  int levels = 1;
  for (int64_t span = CG_SUM_BLOCK; span < maxn; span *= CG_SUM_BLOCK) levels++;
  Sum s = {.t = t, .hi = hi, .term = term, .ctx = ctx, .name = name};
  return sum_level(cg, &s, levels - 1, lo);
}

/* ---- kernels ---- */


LLVMValueRef cg_kernel_begin(CodeGen *cg, const char *key, const char *name, int nptr,
                             bool *is_new) {
  if (cg->inplace) key = arena_printf(cg->arena, "%s inplace", key);
  if (cg->split) key = arena_printf(cg->arena, "%s split=%d", key, cg->split);
  LLVMValueRef found = strmap_get(&cg->kernels, key);
  if (found) {
    *is_new = false;
    return found;
  }
  *is_new = true;
  int nrange = cg->split ? 2 : 0;
  LLVMTypeRef *params = arena_array(cg->arena, (size_t)nptr + 3, sizeof *params);
  for (int i = 0; i < nptr; i++) params[i] = cg->ptr;
  for (int i = 0; i < nrange; i++) params[nptr + i] = cg->i64;
  LLVMTypeRef fty = LLVMFunctionType(cg->void_t, params, (unsigned)(nptr + nrange), 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nofree");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nosync");
  /* Inlining kernels into the run function gains nothing measurable and
   * makes one huge function whose loop analyses are quadratic in the number
   * of layers (ScalarEvolution walks every predecessor chain). */
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  for (int i = 0; i < nptr; i++) {
    if (!cg->inplace) add_attr(cg, fn, (unsigned)i + 1, "noalias");
    add_attr(cg, fn, (unsigned)i + 1, "nocapture");
  }
  strmap_put(cg->arena, &cg->kernels, arena_strdup(cg->arena, key), fn);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  cg->split_lo = cg->split ? LLVMGetParam(fn, (unsigned)nptr) : NULL;
  cg->split_hi = cg->split ? LLVMGetParam(fn, (unsigned)nptr + 1) : NULL;
  if (cg->split) {
    LLVMSetValueName2(cg->split_lo, "lo", 2);
    LLVMSetValueName2(cg->split_hi, "hi", 2);
  }
  return fn;
}

void cg_kernel_end(CodeGen *cg) { LLVMBuildRetVoid(cg->b); }

void cg_part_begin(CodeGen *cg, Part *p, const char *name, int V, int nptr, int nint) {
  *p = (Part){.fn = cg->fn, .entry = cg->entry, .at = LLVMGetInsertBlock(cg->b), .nptr = nptr};
  LLVMTypeRef params[CG_PART_MAX];
  CNNC_ASSERT(nptr >= 0 && nint >= 0 && nptr + nint <= CG_PART_MAX);
  for (int i = 0; i < nptr + nint; i++) params[i] = i < nptr ? cg->ptr : cg->index32 ? cg->i32 : cg->i64;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_t, params, (unsigned)(nptr + nint), 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  /* 64-bit targets (x86-64, AArch64, which LLVM gives preserve_most): the
   * caller keeps its pointers and counters in registers across the call */
  if (cg->opt->target->arch->index_bits == 64) LLVMSetFunctionCallConv(fn, LLVMPreserveMostCallConv);
  static const char *const fattrs[] = {"nounwind", "nofree", "nosync", "noinline"};
  for (size_t i = 0; i < sizeof fattrs / sizeof *fattrs; i++) add_attr(cg, fn, LLVMAttributeFunctionIndex, fattrs[i]);
  for (int i = 0; i < nptr; i++) add_attr(cg, fn, (unsigned)i + 1, "nocapture");
  cg_vector_attrs(cg, fn, V);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  for (int i = 0; i < nptr + nint; i++) {
    LLVMValueRef v = LLVMGetParam(fn, (unsigned)i);
    p->param[i] = i >= nptr && cg->index32 ? LLVMBuildSExt(cg->b, v, cg->i64, "") : v;
  }
}

void cg_part_end(CodeGen *cg, Part *p, LLVMValueRef *args, int nargs) {
  LLVMBuildRetVoid(cg->b);
  LLVMValueRef fn = cg->fn;
  cg->fn = p->fn, cg->entry = p->entry;
  LLVMPositionBuilderAtEnd(cg->b, p->at);
  CNNC_ASSERT(nargs <= CG_PART_MAX);
  LLVMValueRef a[CG_PART_MAX];
  for (int i = 0; i < nargs; i++) a[i] = i >= p->nptr && cg->index32 ? LLVMBuildTrunc(cg->b, args[i], cg->i32, "") : args[i];
  args = a;
  LLVMValueRef call = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)nargs, "");
  LLVMSetInstructionCallConv(call, LLVMGetFunctionCallConv(fn));
}

void cg_split_range(CodeGen *cg, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi) {
  *lo = cg->split_lo ? cg->split_lo : cg_i64(cg, 0);
  *hi = cg->split_hi ? cg->split_hi : cg_i64(cg, n);
}

/* ---- weights ---- */

static size_t ptr_slot(const PtrMap *m, const void *key) {
  size_t i = ((uintptr_t)key >> 4) * 0x9e3779b97f4a7c15u & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  return i;
}

static void ptr_put(CodeGen *cg, PtrMap *m, const void *key, LLVMValueRef v) {
  if (2 * (m->n + 1) > m->cap) {
    PtrMap n = {.cap = m->cap ? 2 * m->cap : 64};
    n.keys = arena_array(cg->arena, n.cap, sizeof *n.keys);
    n.vals = arena_array(cg->arena, n.cap, sizeof *n.vals);
    for (size_t i = 0; i < m->cap; i++)
      if (m->keys[i]) {
        size_t j = ptr_slot(&n, m->keys[i]);
        n.keys[j] = m->keys[i], n.vals[j] = m->vals[i], n.n++;
      }
    *m = n;
  }
  size_t i = ptr_slot(m, key);
  if (!m->keys[i]) m->n++;
  m->keys[i] = key;
  m->vals[i] = v;
}

/* The constant global holding parameter p, made on first use, so that only
 * the parameters some kernel reads reach the object (not the originals of
 * folded and packed weights). */
static LLVMValueRef param_value(CodeGen *cg, const Param *p) {
  if (cg->params.cap) {
    size_t i = ptr_slot(&cg->params, p);
    if (cg->params.keys[i]) return cg->params.vals[i];
  }
  size_t bytes = (size_t)shape_numel(&p->shape) * sizeof(float);
  LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, (const char *)p->data, bytes, 1);
  char *name = arena_printf(cg->arena, "%s.%s", cg->g->name, p->name);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMInternalLinkage);
  LLVMSetAlignment(gv, 64);
  LLVMSetUnnamedAddr(gv, 1);
  if (cg->opt->weights_section) LLVMSetSection(gv, cg->opt->weights_section); /* --weights-section */
  ptr_put(cg, &cg->params, p, gv);
  return gv;
}

/* Emits (or reuses) the kernel of node `n`; NULL for nodes without code. */
static LLVMValueRef node_kernel_of(CodeGen *cg, const Node *n);

/* Emits (or reuses) the kernel of node `n`, with a split range when the
 * layer is split (schedule.c); NULL for nodes without code. */
static LLVMValueRef node_kernel(CodeGen *cg, const Node *n) {
  cg->split = n->sched.split;
  cg->split_lo = cg->split_hi = NULL;
  LLVMValueRef fn = node_kernel_of(cg, n);
  cg->split = SPLIT_NONE;
  cg->split_lo = cg->split_hi = NULL;
  return fn;
}

static LLVMValueRef node_kernel_of(CodeGen *cg, const Node *n) {
  if (n->fused) return NULL; /* computed inside its consumer (fuse_dw.c) */
  if (n->layout == LAYOUT_NCHWC && n->op != OP_CONV2D && n->op != OP_REORDER && !n->alias)
    return cg_blocked(cg, n);
  switch (n->op) {
  case OP_INPUT: return NULL;
  case OP_REORDER: return cg_reorder(cg, n);
  case OP_CONV2D: return cg_conv(cg, n);
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: return cg_pool(cg, n);
  case OP_DENSE:
  case OP_LINEAR: return cg_dense(cg, n);
  case OP_SOFTMAX: return cg_softmax(cg, n);
  case OP_CONV_TRANSPOSE2D: return cg_convt(cg, n);
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D: return cg_global_pool(cg, n);
  case OP_ADAPTIVE_AVGPOOL2D: return cg_adaptive_pool(cg, n);
  case OP_BATCHNORM: return cg_batchnorm(cg, n);
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN: return cg_binary(cg, n);
  case OP_CONSTANT: /* its buffer is its parameter (node_buffer), unless the caller wants it */
    return n->output_index >= 0 ? cg_eltwise(cg, n) : NULL;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: return cg_norm(cg, n);
  case OP_SLICE:
  case OP_TRANSPOSE: return cg_strided(cg, n);
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: return cg_reduce(cg, n);
  case OP_CONCAT: return cg_concat(cg, n);
  case OP_PAD: return cg_pad(cg, n);
  case OP_UPSAMPLE: return cg_upsample(cg, n);
  case OP_ACT:
  case OP_FLATTEN:
  case OP_RESHAPE:
  case OP_DROPOUT: return n->alias ? NULL : cg_eltwise(cg, n);
  case OP_COUNT: break;
  }
  CNNC_UNREACHABLE();
}

/* ---- the run function ---- */

static LLVMValueRef ret_code(CodeGen *cg, int code) { return LLVMConstInt(cg->i32, (unsigned)code, 0); }

/* Returns `code` from the run function when `bad` holds. */
static void fail_if(CodeGen *cg, LLVMValueRef bad, int code, const char *name) {
  LLVMBasicBlockRef fail = block(cg, name, "fail"), ok = block(cg, name, "ok");
  LLVMBuildCondBr(cg->b, bad, fail, ok);
  LLVMPositionBuilderAtEnd(cg->b, fail);
  LLVMBuildRet(cg->b, ret_code(cg, code));
  LLVMPositionBuilderAtEnd(cg->b, ok);
}

static LLVMValueRef is_null(CodeGen *cg, LLVMValueRef p) {
  return LLVMBuildICmp(cg->b, LLVMIntEQ, p, LLVMConstNull(cg->ptr), "isnull");
}

/* Node id's buffer in the function being emitted: caller memory for
 * inputs and outputs, the workspace at the planned offset otherwise, or
 * its input's buffer for aliasing nodes.  Made once per run part. */
static LLVMValueRef node_buffer(CodeGen *cg, int id) {
  if (cg->node_part[id] == cg->part) return cg->node_ptr[id];
  Graph *g = cg->g;
  Node *n = &g->nodes[id];
  LLVMValueRef v;
  if (n->input_index >= 0)
    v = LLVMGetParam(cg->fn, (unsigned)n->input_index);
  else if (n->output_index >= 0)
    v = LLVMGetParam(cg->fn, (unsigned)(g->ninputs + n->output_index));
  else if (n->op == OP_CONSTANT)
    v = param_value(cg, n->weight);
  else if (n->alias)
    v = node_buffer(cg, n->in[0]);
  else {
    LLVMValueRef off = cg_i64(cg, n->offset);
    v = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->ws, &off, 1, n->name);
  }
  cg->node_ptr[id] = v;
  cg->node_part[id] = cg->part;
  return v;
}

/* Kernel arguments: inputs, output, then weight, bias, mean, var (those
 * the node has), a fused depthwise conv's weight and bias, and scratch
 * (slot 0 of it; a split layer's further tasks use slots after the
 * workspace, see memplan.c); returns their count.  args has room for
 * n->nin + 9 (the range of a split layer comes after them). */
static int kernel_args(CodeGen *cg, const Node *n, LLVMValueRef *args) {
  int na = 0;
  for (int j = 0; j < n->nin; j++) args[na++] = node_buffer(cg, n->in[j]);
  args[na++] = node_buffer(cg, (int)(n - cg->g->nodes));
  const Param *params[4] = {n->weight, n->bias, n->mean, n->var};
  for (int j = 0; j < 4; j++)
    if (params[j]) args[na++] = param_value(cg, params[j]);
  if (n->pre_dw) { /* the fused depthwise conv's weight and bias */
    const Node *d = &cg->g->nodes[n->pre_dw - 1];
    args[na++] = param_value(cg, d->weight);
    if (d->bias) args[na++] = param_value(cg, d->bias);
  }
  if (n->scratch > 0) {
    LLVMValueRef off = cg_i64(cg, n->scratch_offset);
    args[na++] = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->ws, &off, 1, "scratch");
  }
  return na;
}

/* The kernel of n called on the whole layer (a split layer's range is all
 * of [0, split_n)). */
static void call_kernel(CodeGen *cg, const Node *n, LLVMValueRef kfn) {
  LLVMValueRef *args = arena_array(cg->arena, (size_t)n->nin + 9, sizeof *args);
  int na = kernel_args(cg, n, args);
  if (n->sched.split) {
    args[na++] = cg_i64(cg, 0);
    args[na++] = cg_i64(cg, n->sched.split_n);
  }
  LLVMTypeRef fty = LLVMGlobalGetValueType(kfn);
  CNNC_ASSERT(LLVMCountParamTypes(fty) == (unsigned)na);
  LLVMBuildCall2(cg->b, fty, kfn, args, (unsigned)na, "");
}

/* ---- threads: task forms and cnnrt_parallel_for ---- */

/* A task context: the kernel's pointer arguments, the split's units, the
 * number of tasks, and where scratch slots 1.. start and their stride. */
enum { TASK_PTRS = 8, TASK_N = TASK_PTRS, TASK_NTASKS, TASK_TAIL, TASK_STRIDE, TASK_FIELDS };

static LLVMTypeRef task_type(CodeGen *cg) {
  if (!cg->task_t) {
    LLVMTypeRef f[TASK_FIELDS];
    for (int i = 0; i < TASK_PTRS; i++) f[i] = cg->ptr;
    f[TASK_N] = cg->i64, f[TASK_NTASKS] = cg->i32, f[TASK_TAIL] = cg->ptr, f[TASK_STRIDE] = cg->i64;
    cg->task_t = LLVMStructCreateNamed(cg->ctx, "cnnc.task");
    LLVMStructSetBody(cg->task_t, f, TASK_FIELDS, 0);
  }
  return cg->task_t;
}

static LLVMValueRef task_field(CodeGen *cg, LLVMValueRef ctx, int i) {
  return LLVMBuildStructGEP2(cg->b, task_type(cg), ctx, (unsigned)i, "");
}

/* A runtime entry point, referenced weakly: an object whose application
 * calls only <name>_run links without libcnnrt, and <name>_run_pool runs
 * on one thread when the pool functions are absent (no pool can exist
 * then; runtime/cnnrt_pool_pthread.c keeps them linked with its pools). */
static LLVMValueRef runtime_fn(CodeGen *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *pt, int np) {
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
  if (!fn) {
    fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(ret, pt, (unsigned)np, 0));
    LLVMSetLinkage(fn, LLVMExternalWeakLinkage);
    add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  }
  return fn;
}

static LLVMValueRef parallel_for_fn(CodeGen *cg) {
  LLVMTypeRef pt[4] = {cg->ptr, cg->i32, cg->ptr, cg->ptr};
  return runtime_fn(cg, "cnnrt_parallel_for", cg->void_t, pt, 4);
}

/* void task(ctx, int i): runs units [i*n/k, (i+1)*n/k) of the kernel's
 * layer, k = ntasks, with scratch slot i (slot 0 is the planned one). */
static LLVMValueRef task_form(CodeGen *cg, LLVMValueRef kfn, bool scratch) {
  if (cg->tasks.cap) {
    size_t i = ptr_slot(&cg->tasks, kfn);
    if (cg->tasks.keys[i]) return cg->tasks.vals[i];
  }
  LLVMTypeRef kty = LLVMGlobalGetValueType(kfn);
  int nptr = (int)LLVMCountParamTypes(kty) - 2;
  CNNC_ASSERT(nptr >= 1 && nptr <= TASK_PTRS);
  LLVMTypeRef pt[2] = {cg->ptr, cg->i32};
  size_t len;
  const char *kname = LLVMGetValueName2(kfn, &len);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, arena_printf(cg->arena, "%s.task", kname),
                                    LLVMFunctionType(cg->void_t, pt, 2, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  LLVMBasicBlockRef saved = LLVMGetInsertBlock(cg->b), saved_entry = cg->entry;
  LLVMValueRef saved_fn = cg->fn;
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef ctx = LLVMGetParam(fn, 0);
  LLVMValueRef t = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 1), cg->i64, "t");
  LLVMValueRef args[TASK_PTRS + 2];
  for (int i = 0; i < nptr; i++) args[i] = LLVMBuildLoad2(cg->b, cg->ptr, task_field(cg, ctx, i), "");
  LLVMValueRef n = LLVMBuildLoad2(cg->b, cg->i64, task_field(cg, ctx, TASK_N), "n");
  LLVMValueRef k = LLVMBuildSExt(cg->b, LLVMBuildLoad2(cg->b, cg->i32, task_field(cg, ctx, TASK_NTASKS), ""),
                                 cg->i64, "k");
  if (cg->index32) { /* t * n < 2^31 (tensors there stay below 2^31 elements): no __aeabi_ldivmod */
    LLVMValueRef t32 = LLVMGetParam(fn, 1), n32 = LLVMBuildTrunc(cg->b, n, cg->i32, ""),
                 k32 = LLVMBuildTrunc(cg->b, k, cg->i32, "");
    LLVMValueRef lo = cg_udiv32(cg, LLVMBuildMul(cg->b, t32, n32, ""), k32);
    LLVMValueRef hi = cg_udiv32(cg, LLVMBuildMul(cg->b, LLVMBuildAdd(cg->b, t32, LLVMConstInt(cg->i32, 1, 0), ""), n32, ""), k32);
    args[nptr] = LLVMBuildZExt(cg->b, lo, cg->i64, "lo");
    args[nptr + 1] = LLVMBuildZExt(cg->b, hi, cg->i64, "hi");
  } else {
    args[nptr] = LLVMBuildSDiv(cg->b, cg_mul(cg, t, n), k, "lo");
    args[nptr + 1] = LLVMBuildSDiv(cg->b, cg_mul(cg, cg_add(cg, t, cg_i64(cg, 1)), n), k, "hi");
  }
  if (scratch) {
    LLVMValueRef tail = LLVMBuildLoad2(cg->b, cg->ptr, task_field(cg, ctx, TASK_TAIL), "tail");
    LLVMValueRef stride = LLVMBuildLoad2(cg->b, cg->i64, task_field(cg, ctx, TASK_STRIDE), "stride");
    LLVMValueRef before = LLVMBuildSub(cg->b, t, cg_i64(cg, 1), ""), off;
    if (cg->index32) /* slots lie below 2^31 bytes: no __aeabi_lmul (Armv6-M has no 64-bit multiply) */
      off = LLVMBuildMul(cg->b, LLVMBuildTrunc(cg->b, before, cg->i32, ""), LLVMBuildTrunc(cg->b, stride, cg->i32, ""), "off");
    else
      off = cg_mul(cg, before, stride);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->i8, tail, &off, 1, "slot");
    LLVMValueRef first = LLVMBuildICmp(cg->b, LLVMIntEQ, t, cg_i64(cg, 0), "");
    args[nptr - 1] = LLVMBuildSelect(cg->b, first, args[nptr - 1], slot, "scratch");
  }
  LLVMBuildCall2(cg->b, kty, kfn, args, (unsigned)nptr + 2, "");
  LLVMBuildRetVoid(cg->b);
  cg->fn = saved_fn;
  cg->entry = saved_entry;
  LLVMPositionBuilderAtEnd(cg->b, saved);
  ptr_put(cg, &cg->tasks, kfn, fn);
  return fn;
}

/* A split layer in a pooled run: min(threads, max_tasks) tasks through
 * cnnrt_parallel_for, or the kernel called directly when that is one. */
static void call_tasks(CodeGen *cg, const Node *n, LLVMValueRef kfn) {
  LLVMValueRef most = LLVMConstInt(cg->i32, (unsigned)n->sched.max_tasks, 0);
  LLVMValueRef k = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, cg->threads, most, ""), cg->threads,
                                   most, "ntasks");
  LLVMValueRef one = LLVMBuildICmp(cg->b, LLVMIntSLT, k, LLVMConstInt(cg->i32, 2, 0), "");
  LLVMBasicBlockRef join = cg_if_begin(cg, one, "inline");
  call_kernel(cg, n, kfn);
  cg_if_end(cg, join);
  join = cg_if_begin(cg, LLVMBuildNot(cg->b, one, ""), "tasks");
  cg->part++; /* buffers made in a branch do not dominate what follows */
  LLVMValueRef *args = arena_array(cg->arena, (size_t)n->nin + 9, sizeof *args);
  int na = kernel_args(cg, n, args);
  CNNC_ASSERT(na <= TASK_PTRS);
  LLVMValueRef ctx = cg->task_ctx;
  for (int i = 0; i < na; i++) LLVMBuildStore(cg->b, args[i], task_field(cg, ctx, i));
  LLVMBuildStore(cg->b, cg_i64(cg, n->sched.split_n), task_field(cg, ctx, TASK_N));
  LLVMBuildStore(cg->b, k, task_field(cg, ctx, TASK_NTASKS));
  if (n->scratch > 0) {
    LLVMValueRef off = cg_i64(cg, cg->g->workspace_size);
    LLVMBuildStore(cg->b, LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->ws, &off, 1, "tail"),
                   task_field(cg, ctx, TASK_TAIL));
    LLVMBuildStore(cg->b, cg_i64(cg, cg->g->thread_scratch), task_field(cg, ctx, TASK_STRIDE));
  }
  LLVMValueRef pf = parallel_for_fn(cg);
  LLVMValueRef cargs[4] = {cg->pool, k, task_form(cg, kfn, n->scratch > 0), ctx};
  LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(pf), pf, cargs, 4, "");
  cg_if_end(cg, join);
  cg->part++;
}

static LLVMValueRef cstring(CodeGen *cg, const char *s, const char *gname);

/* ---- --profile ---- */

/* The counter the target table names (TargetArch.clock): rdtsc through
 * llvm.readcyclecounter on x86; on AArch64 the generic timer's virtual
 * count CNTVCT_EL0, which user code may read, through an inline-asm
 * `mrs` (PMCCNTR_EL0, what readcyclecounter reads there, traps at EL0
 * under Linux, and LLVM 19 lowers llvm.readsteadycounter to 0 on
 * AArch64); on Cortex-M a volatile load of DWT CYCCNT, 32 bits
 * (readcyclecounter is a constant 0 there).  target.c refuses --profile
 * where there is none. */
static LLVMValueRef read_cycles(CodeGen *cg) {
  ProfileClock clock = cg->opt->target->arch->clock;
  if (clock == CLOCK_DWT) {
    LLVMValueRef p = LLVMConstIntToPtr(LLVMConstInt(cg->i32, 0xE0001004u, 0), cg->ptr);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->i32, p, "cyccnt");
    LLVMSetVolatile(v, 1);
    return v;
  }
  if (clock == CLOCK_STEADY) {
    static const char asm_text[] = "mrs $0, cntvct_el0", cons[] = "=r";
    LLVMTypeRef fty = LLVMFunctionType(cg->i64, NULL, 0, 0);
    LLVMValueRef mrs = LLVMGetInlineAsm(fty, asm_text, sizeof asm_text - 1, cons, sizeof cons - 1, 1, 0,
                                        LLVMInlineAsmDialectATT, 0);
    return LLVMBuildCall2(cg->b, fty, mrs, NULL, 0, "cntvct");
  }
  const char *name = "llvm.readcyclecounter";
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, NULL, 0);
  return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, NULL, 0), fn, NULL, 0, "tsc");
}

/* Ticks since t0 (read_cycles), as i64: a 32-bit count is subtracted in
 * 32 bits first, so that one wrap of the counter still gives the delta. */
static LLVMValueRef cycles_since(CodeGen *cg, LLVMValueRef t0) {
  LLVMValueRef dt = LLVMBuildSub(cg->b, read_cycles(cg), t0, "dt");
  return LLVMTypeOf(dt) == cg->i64 ? dt : LLVMBuildZExt(cg->b, dt, cg->i64, "dt64");
}

static LLVMValueRef global_const(CodeGen *cg, const char *name, LLVMValueRef init) {
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  return gv;
}

/* <name>_profile_count, _layers[], _flops[] (constant), _ticks[]
 * (zeroed, updated by every run) and <name>_profile, the cnnrt_profile
 * that points at them; returns _ticks. */
static LLVMValueRef emit_profile_tables(CodeGen *cg, LLVMValueRef *kernels) {
  Graph *g = cg->g;
  int k = 0;
  LLVMValueRef *names = arena_array(cg->arena, (size_t)g->nnodes + 1, sizeof *names);
  LLVMValueRef *flops = arena_array(cg->arena, (size_t)g->nnodes + 1, sizeof *flops);
  for (int i = 0; i < g->nnodes; i++) {
    if (!kernels[i]) continue;
    names[k] = cstring(cg, g->nodes[i].name, arena_printf(cg->arena, "%s.prof.%d", g->name, k));
    flops[k++] = cg_i64(cg, node_flops(g, &g->nodes[i]));
  }
  global_const(cg, arena_printf(cg->arena, "%s_profile_count", g->name), cg_i64(cg, k));
  global_const(cg, arena_printf(cg->arena, "%s_profile_layers", g->name), LLVMConstArray2(cg->ptr, names, (uint64_t)k));
  global_const(cg, arena_printf(cg->arena, "%s_profile_flops", g->name), LLVMConstArray2(cg->i64, flops, (uint64_t)k));
  LLVMTypeRef at = LLVMArrayType2(cg->i64, (uint64_t)k);
  LLVMValueRef ticks = LLVMAddGlobal(cg->mod, at, arena_printf(cg->arena, "%s_profile_ticks", g->name));
  LLVMSetInitializer(ticks, LLVMConstNull(at));
  /* <name>_profile, a cnnrt_profile (cnnrt.h) of the tables, for cnnrt_profile_print */
  LLVMValueRef f[5] = {cstring(cg, g->name, arena_printf(cg->arena, "%s.prof.name", g->name)), cg_i64(cg, k),
                       LLVMGetNamedGlobal(cg->mod, arena_printf(cg->arena, "%s_profile_layers", g->name)),
                       LLVMGetNamedGlobal(cg->mod, arena_printf(cg->arena, "%s_profile_flops", g->name)), ticks};
  global_const(cg, arena_printf(cg->arena, "%s_profile", g->name), LLVMConstStructInContext(cg->ctx, f, 5, 0));
  return ticks;
}

enum { PART_CALLS = 256 }; /* kernel calls per run part */

/* Calls the kernels of nodes [from, to) in the current function; *k counts
 * profiled calls across parts. */
static void emit_calls(CodeGen *cg, LLVMValueRef *kernels, int from, int to, LLVMValueRef ticks, int *k) {
  for (int i = from; i < to; i++) {
    if (!kernels[i]) continue;
    LLVMValueRef t0 = ticks ? read_cycles(cg) : NULL;
    if (cg->pool && cg->g->nodes[i].sched.split) call_tasks(cg, &cg->g->nodes[i], kernels[i]);
    else call_kernel(cg, &cg->g->nodes[i], kernels[i]);
    if (ticks) {
      LLVMValueRef idx[2] = {cg_i64(cg, 0), cg_i64(cg, (*k)++)};
      LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, LLVMGlobalGetValueType(ticks), ticks, idx, 2, "");
      LLVMValueRef dt = cycles_since(cg, t0);
      LLVMBuildStore(cg->b, cg_add(cg, LLVMBuildLoad2(cg->b, cg->i64, slot, ""), dt), slot);
    }
  }
}

/* How a run function ends its parameters after the tensors and the
 * workspace: nothing (<name>_run), size_t workspace_size and the pool
 * (<name>_run_pool), or the pool and the threads usable (its parts). */
typedef enum { RUN_ONE, RUN_POOL, RUN_POOL_PART } RunKind;

/* A function with the run function's pointer parameters (all noalias: the
 * contract in header.c; without it LLVM may join copies into memmove). */
static LLVMValueRef run_like(CodeGen *cg, const char *name, LLVMTypeRef ret, int np, RunKind kind) {
  LLVMTypeRef *pt = arena_array(cg->arena, (size_t)np + 2, sizeof *pt);
  for (int i = 0; i < np; i++) pt[i] = cg->ptr;
  int nx = kind == RUN_ONE ? 0 : 2;
  if (kind == RUN_POOL) pt[np] = cg->isize, pt[np + 1] = cg->ptr;
  if (kind == RUN_POOL_PART) pt[np] = cg->ptr, pt[np + 1] = cg->i32;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(ret, pt, (unsigned)(np + nx), 0));
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  for (int i = 0; i < np; i++) add_attr(cg, fn, (unsigned)i + 1, "noalias");
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  cg->ws = LLVMGetParam(fn, (unsigned)np - 1);
  cg->pool = cg->threads = cg->task_ctx = NULL;
  if (kind == RUN_POOL_PART) {
    cg->pool = LLVMGetParam(fn, (unsigned)np);
    cg->threads = LLVMGetParam(fn, (unsigned)np + 1);
  }
  if (kind != RUN_ONE) cg->task_ctx = cg_alloca(cg, task_type(cg), "task");
  cg->part++; /* node buffers are made anew in each function */
  return fn;
}

/* The kernel calls in parts of PART_CALLS, each its own function, so that
 * LLVM's per-block and per-function work (SelectionDAG, constant pools)
 * stays bounded however many layers there are; returns the parts. */
static LLVMValueRef *emit_parts(CodeGen *cg, LLVMValueRef *kernels, LLVMValueRef ticks, int np, RunKind kind,
                                int *nparts) {
  Graph *g = cg->g;
  LLVMValueRef *parts = arena_array(cg->arena, (size_t)g->nnodes / PART_CALLS + 2, sizeof *parts);
  int k = 0, from = 0;
  *nparts = 0;
  while (from < g->nnodes) {
    int to = from, calls = 0;
    while (to < g->nnodes && calls < PART_CALLS) calls += kernels[to++] != NULL;
    LLVMValueRef fn = run_like(cg, arena_printf(cg->arena, "%s.run%s.%d", g->name, kind ? "_pool" : "", *nparts),
                               cg->void_t, np, kind);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
    emit_calls(cg, kernels, from, to, ticks, &k);
    LLVMBuildRetVoid(cg->b);
    parts[(*nparts)++] = fn;
    from = to;
  }
  return parts;
}

static int count_calls(const Graph *g, LLVMValueRef *kernels) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += kernels[i] != NULL;
  return n;
}

/* In <name>_run_pool, after the checks: the threads it may use, the
 * pool's, but no more than workspace_size has scratch slots for. */
static LLVMValueRef usable_threads(CodeGen *cg, LLVMValueRef size, LLVMValueRef pool) {
  const Graph *g = cg->g;
  LLVMTypeRef pt[1] = {cg->ptr};
  LLVMValueRef tf = runtime_fn(cg, "cnnrt_pool_threads", cg->i32, pt, 1), pf = parallel_for_fn(cg);
  /* one thread without a pool, or when the pool functions are not linked */
  LLVMValueRef tv = cg_alloca(cg, cg->i32, "pool.threads");
  LLVMBuildStore(cg->b, LLVMConstInt(cg->i32, 1, 0), tv);
  LLVMValueRef have = LLVMBuildAnd(cg->b, LLVMBuildNot(cg->b, is_null(cg, pool), ""),
                                   LLVMBuildAnd(cg->b, LLVMBuildNot(cg->b, is_null(cg, tf), ""),
                                                LLVMBuildNot(cg->b, is_null(cg, pf), ""), ""), "have");
  LLVMBasicBlockRef join = cg_if_begin(cg, have, "pool");
  LLVMBuildStore(cg->b, LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(tf), tf, &pool, 1, ""), tv);
  cg_if_end(cg, join);
  LLVMValueRef t = LLVMBuildLoad2(cg->b, cg->i32, tv, "");
  t = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, t, LLVMConstInt(cg->i32, 1, 0), ""),
                      LLVMConstInt(cg->i32, 1, 0), t, "");
  if (g->thread_scratch == 0) return t;
  /* room = 1 + (size - WORKSPACE_SIZE) / thread_scratch, at most scratch_threads */
  LLVMValueRef extra = LLVMBuildSub(cg->b, size, LLVMConstInt(cg->isize, (unsigned long long)g->workspace_size, 0), "");
  LLVMValueRef per = LLVMConstInt(cg->isize, (unsigned long long)g->thread_scratch, 0);
  LLVMValueRef room = cg->no_div ? cg_udiv32(cg, extra, per) : LLVMBuildUDiv(cg->b, extra, per, ""); /* no __aeabi_uidiv */
  LLVMValueRef most = LLVMConstInt(cg->isize, (unsigned long long)g->scratch_threads - 1, 0);
  room = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntULT, room, most, ""), room, most, "");
  room = LLVMBuildAdd(cg->b, LLVMBuildTrunc(cg->b, room, cg->i32, ""), LLVMConstInt(cg->i32, 1, 0), "room");
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, room, t, ""), room, t, "threads");
}

/* <name>_run (kind RUN_ONE) or <name>_run_pool (RUN_POOL): checks the
 * arguments, then calls every kernel in order, or the parts that do. */
/* The run function's parameters named after the model's tensors. */
static void name_params(CodeGen *cg, LLVMValueRef fn, RunKind kind) {
  const Graph *g = cg->g;
  int np = g->ninputs + g->noutputs + 1;
  for (int i = 0; i < np; i++) {
    const char *pname = i == np - 1 ? "workspace" : i < g->ninputs ? g->in_cname[i] : g->out_cname[i - g->ninputs];
    LLVMSetValueName2(LLVMGetParam(fn, (unsigned)i), pname, strlen(pname));
  }
  if (kind == RUN_POOL) {
    LLVMSetValueName2(LLVMGetParam(fn, (unsigned)np), "workspace_size", 14);
    LLVMSetValueName2(LLVMGetParam(fn, (unsigned)np + 1), "pool", 4);
  }
}

static LLVMValueRef emit_run(CodeGen *cg, LLVMValueRef *kernels, LLVMValueRef ticks, RunKind kind, const char *name) {
  Graph *g = cg->g;
  int np = g->ninputs + g->noutputs + 1, nparts = 0;
  RunKind part_kind = kind == RUN_ONE ? RUN_ONE : RUN_POOL_PART;
  LLVMValueRef *parts =
      count_calls(g, kernels) > PART_CALLS ? emit_parts(cg, kernels, ticks, np, part_kind, &nparts) : NULL;
  LLVMValueRef fn = run_like(cg, name, cg->i32, np, kind);
  name_params(cg, fn, kind);
  for (int i = 0; i < np - 1; i++) fail_if(cg, is_null(cg, LLVMGetParam(fn, (unsigned)i)), CNNRT_ERR_NULL, "arg");
  LLVMValueRef ws = cg->ws;
  if (g->workspace_size > 0) {
    fail_if(cg, is_null(cg, ws), CNNRT_ERR_NULL, "ws");
    if (kind == RUN_POOL) {
      LLVMValueRef size = LLVMGetParam(fn, (unsigned)np);
      LLVMValueRef need = LLVMConstInt(cg->isize, (unsigned long long)g->workspace_size, 0);
      fail_if(cg, LLVMBuildICmp(cg->b, LLVMIntULT, size, need, "small"), CNNRT_ERR_WORKSPACE, "size");
    }
    LLVMValueRef addr = LLVMBuildPtrToInt(cg->b, ws, cg->i64, "ws.addr");
    LLVMValueRef mis = LLVMBuildAnd(cg->b, addr, cg_i64(cg, CNNRT_WORKSPACE_ALIGN - 1), "ws.mis");
    fail_if(cg, LLVMBuildICmp(cg->b, LLVMIntNE, mis, cg_i64(cg, 0), ""), CNNRT_ERR_ALIGN, "align");
  }
  LLVMValueRef *args = arena_array(cg->arena, (size_t)np + 2, sizeof *args);
  for (int i = 0; i < np; i++) args[i] = LLVMGetParam(fn, (unsigned)i);
  int nargs = np;
  if (kind == RUN_POOL) {
    cg->pool = LLVMGetParam(fn, (unsigned)np + 1);
    cg->threads = usable_threads(cg, LLVMGetParam(fn, (unsigned)np), cg->pool);
    args[nargs++] = cg->pool;
    args[nargs++] = cg->threads;
  }
  if (!parts) {
    int k = 0;
    emit_calls(cg, kernels, 0, g->nnodes, ticks, &k);
  }
  for (int p = 0; p < nparts; p++)
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(parts[p]), parts[p], args, (unsigned)nargs, "");
  LLVMBuildRet(cg->b, ret_code(cg, CNNRT_OK));
  cg->pool = cg->threads = cg->task_ctx = NULL;
  return fn;
}

/* int <name>_run_generic(const float *const *in, float *const *out, void *ws)
 * and (pooled) <name>_run_pool_generic(in, out, ws, size_t size, cnnrt_pool *pool) */
static LLVMValueRef emit_run_generic(CodeGen *cg, LLVMValueRef run, bool pooled) {
  Graph *g = cg->g;
  LLVMTypeRef pt[5] = {cg->ptr, cg->ptr, cg->ptr, cg->isize, cg->ptr};
  LLVMTypeRef fty = LLVMFunctionType(cg->i32, pt, pooled ? 5 : 3, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, arena_printf(cg->arena, "%s_run%s_generic", g->name, pooled ? "_pool" : ""), fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  fail_if(cg, LLVMBuildOr(cg->b, is_null(cg, in), is_null(cg, out), ""), CNNRT_ERR_NULL, "arrays");
  int np = g->ninputs + g->noutputs + 1;
  LLVMValueRef *args = arena_array(cg->arena, (size_t)np + 2, sizeof *args);
  for (int i = 0; i < np - 1; i++) {
    bool isin = i < g->ninputs;
    LLVMValueRef idx = cg_i64(cg, isin ? i : i - g->ninputs);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, isin ? in : out, &idx, 1, "");
    args[i] = LLVMBuildLoad2(cg->b, cg->ptr, slot, "");
  }
  args[np - 1] = LLVMGetParam(fn, 2);
  if (pooled) args[np] = LLVMGetParam(fn, 3), args[np + 1] = LLVMGetParam(fn, 4);
  LLVMValueRef r = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(run), run, args, (unsigned)np + (pooled ? 2 : 0), "r");
  LLVMBuildRet(cg->b, r);
  return fn;
}

/* ---- descriptor (cnnrt_model, cnnrt_tensor_info) ---- */

static LLVMValueRef cstring(CodeGen *cg, const char *s, const char *gname) {
  LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, s, strlen(s), 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), gname);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddr(gv, 1);
  return gv;
}

static LLVMValueRef tensor_infos(CodeGen *cg, LLVMTypeRef info_t, const int *ids, int n,
                                 const char *what) {
  LLVMValueRef *elems = arena_array(cg->arena, (size_t)n + 1, sizeof *elems);
  for (int i = 0; i < n; i++) {
    const Node *nd = &cg->g->nodes[ids[i]];
    LLVMValueRef dims[CNNRT_MAX_RANK];
    for (int d = 0; d < CNNRT_MAX_RANK; d++)
      dims[d] = cg_i64(cg, d < nd->shape.rank ? nd->shape.dim[d] : 0);
    LLVMValueRef f[4] = {
        cstring(cg, nd->name, arena_printf(cg->arena, "%s.%s.name", cg->g->name, nd->name)),
        cg_i64(cg, nd->shape.rank), LLVMConstArray2(cg->i64, dims, CNNRT_MAX_RANK),
        cg_i64(cg, shape_numel(&nd->shape))};
    elems[i] = LLVMConstNamedStruct(info_t, f, 4);
  }
  LLVMValueRef arr = LLVMConstArray2(info_t, elems, (uint64_t)n);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), arena_printf(cg->arena, "%s.%s", cg->g->name, what));
  LLVMSetInitializer(gv, arr);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

static void emit_descriptor(CodeGen *cg, LLVMValueRef generic, LLVMValueRef pool_generic) {
  Graph *g = cg->g;
  LLVMTypeRef info_t = LLVMStructCreateNamed(cg->ctx, "cnnrt_tensor_info");
  LLVMTypeRef info_f[4] = {cg->ptr, cg->i64, LLVMArrayType2(cg->i64, CNNRT_MAX_RANK), cg->i64};
  LLVMStructSetBody(info_t, info_f, 4, 0);
  LLVMTypeRef model_t = LLVMStructCreateNamed(cg->ctx, "cnnrt_model");
  LLVMTypeRef model_f[11] = {cg->i64, cg->ptr, cg->i64, cg->i64, cg->ptr, cg->ptr,
                             cg->i64, cg->ptr, cg->i64, cg->i64, cg->ptr};
  LLVMStructSetBody(model_t, model_f, 11, 0);
  LLVMValueRef f[11] = {
      cg_i64(cg, CNNRT_ABI_VERSION),
      cstring(cg, g->name, arena_printf(cg->arena, "%s.name", g->name)),
      cg_i64(cg, g->ninputs),
      cg_i64(cg, g->noutputs),
      tensor_infos(cg, info_t, g->inputs, g->ninputs, "inputs"),
      tensor_infos(cg, info_t, g->outputs, g->noutputs, "outputs"),
      cg_i64(cg, g->workspace_size),
      generic,
      cg_i64(cg, g->thread_scratch),
      cg_i64(cg, g->scratch_threads),
      pool_generic};
  LLVMValueRef init = LLVMConstNamedStruct(model_t, f, 11);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, model_t, arena_printf(cg->arena, "%s_model", g->name));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
}

/* ---- driver ---- */

void cg_init_types(CodeGen *cg) {
  cg->f32 = LLVMFloatTypeInContext(cg->ctx);
  cg->i1 = LLVMInt1TypeInContext(cg->ctx);
  cg->i8 = LLVMInt8TypeInContext(cg->ctx);
  cg->i32 = LLVMInt32TypeInContext(cg->ctx);
  cg->i64 = LLVMInt64TypeInContext(cg->ctx);
  cg->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  cg->void_t = LLVMVoidTypeInContext(cg->ctx);
}

static bool verify_module(CodeGen *cg) {
  char *msg = NULL;
  if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &msg)) {
    fprintf(stderr, "cnnc: internal error: invalid LLVM module:\n%s\n", msg);
    if (getenv("CNNC_DUMP_BAD_IR")) LLVMDumpModule(cg->mod);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  return true;
}

/* Whether the machine's level (cg_cpu.c's probe, or NULL: no probe) runs
 * variant v: always for one without a level to check. */
static LLVMValueRef variant_fits(CodeGen *cg, LLVMValueRef level, const Variant *v) {
  if (!level || v->g->cpu_level <= 1) return LLVMConstInt(cg->i1, 1, 0);
  return LLVMBuildICmp(cg->b, LLVMIntSGE, level, LLVMConstInt(cg->i32, (unsigned)v->g->cpu_level, 0), "fits");
}

/* <name>_run or <name>_run_pool of a CPU-checked object: the machine's
 * level (cg_cpu.c), then the first variant (highest level first) it has,
 * called with the same arguments, or CNNRT_ERR_CPU.  Compiled for the
 * x86-64 baseline, so nothing before the check needs what the CPU lacks. */
static LLVMValueRef emit_dispatch(CodeGen *cg, LLVMValueRef level_fn, const Variant *vs, LLVMValueRef *runs, int nv,
                                  RunKind kind) {
  Graph *g = cg->g;
  int np = g->ninputs + g->noutputs + 1, nargs = np + (kind == RUN_POOL ? 2 : 0);
  LLVMValueRef fn = run_like(cg, arena_printf(cg->arena, "%s_run%s", g->name, kind ? "_pool" : ""), cg->i32, np, kind);
  cg_baseline_attrs(cg, fn);
  name_params(cg, fn, kind);
  LLVMValueRef *args = arena_array(cg->arena, (size_t)nargs, sizeof *args);
  for (int i = 0; i < nargs; i++) args[i] = LLVMGetParam(fn, (unsigned)i);
  LLVMValueRef level = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(level_fn), level_fn, NULL, 0, "level");
  for (int v = 0; v < nv; v++) {
    LLVMBasicBlockRef next = NULL;
    if (vs[v].g->cpu_level > 1) {
      LLVMBasicBlockRef run = block(cg, "variant", "run");
      next = block(cg, "variant", "next");
      LLVMBuildCondBr(cg->b, variant_fits(cg, level, &vs[v]), run, next);
      LLVMPositionBuilderAtEnd(cg->b, run);
    }
    LLVMValueRef r = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(runs[v]), runs[v], args, (unsigned)nargs, "");
    LLVMSetTailCall(r, 1);
    LLVMBuildRet(cg->b, r);
    if (!next) return fn; /* the baseline variant runs anywhere */
    LLVMPositionBuilderAtEnd(cg->b, next);
  }
  LLVMBuildRet(cg->b, ret_code(cg, CNNRT_ERR_CPU));
  return fn;
}

/* const char *<name>_cpu(void): the CPU of the variant a run uses (the
 * --cpu name), NULL where none fits this machine. */
static void emit_cpu_name(CodeGen *cg, LLVMValueRef level_fn, const Variant *vs, int nv) {
  Graph *g = cg->g;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, arena_printf(cg->arena, "%s_cpu", g->name), LLVMFunctionType(cg->ptr, NULL, 0, 0));
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  if (level_fn) cg_baseline_attrs(cg, fn);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef level = level_fn ? LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(level_fn), level_fn, NULL, 0, "level") : NULL;
  LLVMValueRef r = LLVMConstNull(cg->ptr);
  for (int v = nv - 1; v >= 0; v--) { /* the first variant that fits wins */
    LLVMValueRef name = cstring(cg, vs[v].t->cpu, arena_printf(cg->arena, "%s.cpu.%d", g->name, v));
    r = LLVMBuildSelect(cg->b, variant_fits(cg, level, &vs[v]), name, r, "");
  }
  LLVMBuildRet(cg->b, r);
}

/* One variant's kernels and run functions: `<name>_run` and
 * `<name>_run_pool` when there is no dispatch, else internal
 * `<name>.run` and `<name>.run_pool` (the variant's graph named
 * `<name>.<cpu>` when there are several). */
static void emit_variant(CodeGen *cg, const Variant *v, bool dispatch, LLVMValueRef *run, LLVMValueRef *run_pool) {
  Graph *g = v->g;
  cg->g = g;
  cg->kernels = (StrMap){0};
  cg->node_ptr = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof *cg->node_ptr);
  cg->node_part = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof *cg->node_part);
  LLVMValueRef *kernels = arena_array(g->arena, (size_t)g->nnodes, sizeof *kernels);
  for (int i = 0; i < g->nnodes; i++) {
    cg->inplace = g->nodes[i].inplace;
    kernels[i] = node_kernel(cg, &g->nodes[i]);
  }
  cg->inplace = false;
  LLVMValueRef ticks = cg->opt->profile ? emit_profile_tables(cg, kernels) : NULL;
  const char *sep = dispatch ? "." : "_";
  *run = emit_run(cg, kernels, ticks, RUN_ONE, arena_printf(cg->arena, "%s%srun", g->name, sep));
  *run_pool = emit_run(cg, kernels, ticks, RUN_POOL, arena_printf(cg->arena, "%s%srun_pool", g->name, sep));
  if (dispatch) {
    LLVMSetLinkage(*run, LLVMInternalLinkage);
    LLVMSetLinkage(*run_pool, LLVMInternalLinkage);
    add_attr(cg, *run, LLVMAttributeFunctionIndex, "noinline");
    add_attr(cg, *run_pool, LLVMAttributeFunctionIndex, "noinline");
  }
  emit_tag_functions(cg, v->t);
}

bool codegen_emit(Graph *top, const Variant *vs, int nv, const Options *o) {
  CodeGen cg = {.g = top, .opt = o, .arena = top->arena};
  bool ok = false;
  cg.ctx = LLVMContextCreate();
  cg.mod = LLVMModuleCreateWithNameInContext(top->name, cg.ctx);
  cg.b = LLVMCreateBuilderInContext(cg.ctx);
  cg_init_types(&cg);
  if (!emit_target_machine(&cg)) goto cleanup;
  /* an x86-64 object above the baseline checks the CPU first */
  bool dispatch = nv > 1 || vs[0].g->cpu_level > 1;
  LLVMValueRef *runs = arena_array(top->arena, (size_t)nv, sizeof *runs);
  LLVMValueRef *pools = arena_array(top->arena, (size_t)nv, sizeof *pools);
  for (int v = 0; v < nv; v++) {
    const char *name = vs[v].g->name;
    if (nv > 1) vs[v].g->name = arena_printf(top->arena, "%s.%s", top->name, vs[v].t->cpu);
    emit_variant(&cg, &vs[v], dispatch, &runs[v], &pools[v]);
    vs[v].g->name = name;
  }
  cg.g = top;
  LLVMValueRef run = runs[0], run_pool = pools[0], level_fn = dispatch ? cg_cpu_level_fn(&cg) : NULL;
  if (dispatch) {
    run = emit_dispatch(&cg, level_fn, vs, runs, nv, RUN_ONE);
    run_pool = emit_dispatch(&cg, level_fn, vs, pools, nv, RUN_POOL);
  }
  emit_cpu_name(&cg, level_fn, vs, nv);
  LLVMValueRef generic = emit_run_generic(&cg, run, false), pool_generic = emit_run_generic(&cg, run_pool, true);
  if (dispatch) { /* the wrappers, before any check, run anywhere */
    cg_baseline_attrs(&cg, generic);
    cg_baseline_attrs(&cg, pool_generic);
  }
  emit_descriptor(&cg, generic, pool_generic);
  if (!verify_module(&cg)) goto cleanup;
  ok = emit_module(&cg);
cleanup:
  LLVMDisposeBuilder(cg.b);
  LLVMDisposeModule(cg.mod);
  if (cg.tm) LLVMDisposeTargetMachine(cg.tm);
  LLVMContextDispose(cg.ctx);
  return ok;
}
