/*
 * cg_cpu.c: the CPU probe of an x86-64 object, so that a model built for
 * AVX2 or AVX-512 returns CNNRT_ERR_CPU on an older machine instead of
 * dying of SIGILL, and an object built for several CPUs (--cpu A,B,...)
 * runs the variant of the highest level the machine has.
 *
 * needs: an x86-64 module; gives: the internal function
 * `<name>.cpu_level`, which returns the highest x86-64 psABI level this
 * machine has, 1 (the baseline) to 4, for codegen.c's dispatch in
 * `<name>_run`.  It runs cpuid (leaves 0, 1, 7 and 0x80000001) and, when
 * the OS enables XSAVE, xgetbv (the OS must save the YMM, and for
 * AVX-512 the ZMM and mask, registers), once: the answer is cached in an
 * internal global (relaxed atomic: every thread computes the same value).
 * It is compiled for the x86-64 baseline (cg_baseline_attrs: its own
 * target-cpu and target-features, which emit.c's tagging leaves alone)
 * and never inlined, so the probe uses no instruction the machine may
 * lack.
 *
 * The levels are the psABI's: v2 = SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT,
 * CMPXCHG16B, LAHF; v3 = v2 + AVX, AVX2, FMA, F16C, BMI1, BMI2, LZCNT,
 * MOVBE, and YMM state; v4 = v3 + AVX-512 F, BW, CD, DQ, VL, and ZMM
 * state.  An object built for a named CPU (the host's, or --cpu=znver3)
 * is checked at the level of its vector width; instructions of that CPU
 * beyond its level are not checked (docs/targets.md).
 */
#include "codegen.h"

#include <string.h>

/* One cpuid: {eax, ebx, ecx, edx} for (leaf, subleaf). */
static LLVMValueRef cpuid(CodeGen *cg, unsigned leaf, unsigned sub, int reg) {
  static const char text[] = "cpuid", cons[] = "={ax},={bx},={cx},={dx},{ax},{cx},~{dirflag},~{fpsr},~{flags}";
  LLVMTypeRef regs[4] = {cg->i32, cg->i32, cg->i32, cg->i32}, args[2] = {cg->i32, cg->i32};
  LLVMTypeRef rty = LLVMStructTypeInContext(cg->ctx, regs, 4, 0);
  LLVMTypeRef fty = LLVMFunctionType(rty, args, 2, 0);
  LLVMValueRef fn = LLVMGetInlineAsm(fty, text, sizeof text - 1, cons, sizeof cons - 1, 1, 0,
                                     LLVMInlineAsmDialectATT, 0);
  LLVMValueRef in[2] = {LLVMConstInt(cg->i32, leaf, 0), LLVMConstInt(cg->i32, sub, 0)};
  LLVMValueRef r = LLVMBuildCall2(cg->b, fty, fn, in, 2, "cpuid");
  return LLVMBuildExtractValue(cg->b, r, (unsigned)reg, "");
}

/* (v & mask) == mask */
static LLVMValueRef has_all(CodeGen *cg, LLVMValueRef v, unsigned mask) {
  LLVMValueRef m = LLVMConstInt(cg->i32, mask, 0);
  return LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildAnd(cg->b, v, m, ""), m, "");
}

/* v, or 0 when the leaf is past the highest one (max) */
static LLVMValueRef if_leaf(CodeGen *cg, LLVMValueRef max, unsigned leaf, LLVMValueRef v) {
  LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntUGE, max, LLVMConstInt(cg->i32, leaf, 0), "");
  return LLVMBuildSelect(cg->b, ok, v, LLVMConstInt(cg->i32, 0, 0), "");
}

enum { EAX, EBX, ECX, EDX };

/* The masks of one level: leaf 1 ECX, leaf 7 EBX, leaf 0x80000001 ECX, XCR0. */
typedef struct {
  unsigned m1, m7, me, mx;
} LevelMasks;

static LevelMasks level_masks(int level) {
  LevelMasks k = {1u << 0 | 1u << 9 | 1u << 13 | 1u << 19 | 1u << 20 | 1u << 23, 0, 1u << 0, 0};
  if (level >= 3) {
    k.m1 |= 1u << 12 | 1u << 22 | 1u << 27 | 1u << 28 | 1u << 29;
    k.m7 |= 1u << 3 | 1u << 5 | 1u << 8;
    k.me |= 1u << 5;
    k.mx = 0x6;
  }
  if (level >= 4) {
    k.m7 |= 1u << 16 | 1u << 17 | 1u << 28 | 1u << 30 | 1u << 31;
    k.mx = 0xE6;
  }
  return k;
}

LLVMValueRef cg_cpu_level_fn(CodeGen *cg) {
  LLVMValueRef state = LLVMAddGlobal(cg->mod, cg->i32, arena_printf(cg->arena, "%s.cpu", cg->g->name));
  LLVMSetInitializer(state, LLVMConstInt(cg->i32, 0, 0));
  LLVMSetLinkage(state, LLVMInternalLinkage);
  LLVMSetAlignment(state, 4);

  LLVMValueRef saved_fn = cg->fn;
  LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(cg->b);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, arena_printf(cg->arena, "%s.cpu_level", cg->g->name),
                                    LLVMFunctionType(cg->i32, NULL, 0, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
  cg_baseline_attrs(cg, fn);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"),
                    probe = LLVMAppendBasicBlockInContext(cg->ctx, fn, "probe"),
                    xget = LLVMAppendBasicBlockInContext(cg->ctx, fn, "xgetbv"),
                    done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done"),
                    known = LLVMAppendBasicBlockInContext(cg->ctx, fn, "known");
  cg->fn = fn;
  LLVMPositionBuilderAtEnd(cg->b, entry);
  LLVMValueRef cached = LLVMBuildLoad2(cg->b, cg->i32, state, "cached");
  LLVMSetOrdering(cached, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(cached, 4);
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntNE, cached, LLVMConstInt(cg->i32, 0, 0), ""), known, probe);

  LLVMPositionBuilderAtEnd(cg->b, probe);
  LLVMValueRef max = cpuid(cg, 0, 0, EAX), ecx1 = if_leaf(cg, max, 1, cpuid(cg, 1, 0, ECX));
  LLVMValueRef ebx7 = if_leaf(cg, max, 7, cpuid(cg, 7, 0, EBX));
  LLVMValueRef emax = cpuid(cg, 0x80000000u, 0, EAX), ecxe = if_leaf(cg, emax, 0x80000001u, cpuid(cg, 0x80000001u, 0, ECX));
  /* xgetbv only where the OS enables it (OSXSAVE), or it faults */
  LLVMValueRef osx = has_all(cg, ecx1, 1u << 27);
  LLVMBuildCondBr(cg->b, osx, xget, done);

  LLVMPositionBuilderAtEnd(cg->b, xget);
  static const char xtext[] = "xgetbv", xcons[] = "={ax},={dx},{cx},~{dirflag},~{fpsr},~{flags}";
  LLVMTypeRef xregs[2] = {cg->i32, cg->i32}, xarg = cg->i32;
  LLVMTypeRef xfty = LLVMFunctionType(LLVMStructTypeInContext(cg->ctx, xregs, 2, 0), &xarg, 1, 0);
  LLVMValueRef xfn = LLVMGetInlineAsm(xfty, xtext, sizeof xtext - 1, xcons, sizeof xcons - 1, 1, 0,
                                      LLVMInlineAsmDialectATT, 0);
  LLVMValueRef zero = LLVMConstInt(cg->i32, 0, 0);
  LLVMValueRef xcr0 = LLVMBuildExtractValue(cg->b, LLVMBuildCall2(cg->b, xfty, xfn, &zero, 1, "xgetbv"), 0, "xcr0");
  LLVMBuildBr(cg->b, done);

  LLVMPositionBuilderAtEnd(cg->b, done);
  LLVMValueRef x = LLVMBuildPhi(cg->b, cg->i32, "xcr0");
  LLVMValueRef xv[2] = {zero, xcr0};
  LLVMBasicBlockRef xb[2] = {probe, xget};
  LLVMAddIncoming(x, xv, xb, 2);
  /* the highest level whose every bit is there (each level includes the one below) */
  LLVMValueRef v = LLVMConstInt(cg->i32, 1, 0);
  for (int level = 2; level <= 4; level++) {
    LevelMasks k = level_masks(level);
    LLVMValueRef ok = LLVMBuildAnd(cg->b, has_all(cg, ecx1, k.m1), has_all(cg, ebx7, k.m7), "");
    ok = LLVMBuildAnd(cg->b, ok, has_all(cg, ecxe, k.me), "");
    ok = LLVMBuildAnd(cg->b, ok, has_all(cg, x, k.mx), "ok");
    v = LLVMBuildSelect(cg->b, ok, LLVMConstInt(cg->i32, (unsigned)level, 0), v, "level");
  }
  LLVMValueRef st = LLVMBuildStore(cg->b, v, state);
  LLVMSetOrdering(st, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(st, 4);
  LLVMBuildRet(cg->b, v);

  LLVMPositionBuilderAtEnd(cg->b, known);
  LLVMBuildRet(cg->b, cached);

  cg->fn = saved_fn;
  if (saved_bb) LLVMPositionBuilderAtEnd(cg->b, saved_bb);
  return fn;
}

void cg_baseline_attrs(CodeGen *cg, LLVMValueRef fn) {
  (void)cg;
  LLVMAddTargetDependentFunctionAttr(fn, "target-cpu", "x86-64");
  LLVMAddTargetDependentFunctionAttr(fn, "target-features", "+64bit,+cx8,+fxsr,+mmx,+sse,+sse2");
}


