/*
 * emit.c: target machine, optimisation pipeline, object file.
 *
 * The triple, CPU and features come resolved and checked from target.c
 * (the host by default).  Code is position independent so that the object
 * links into PIE executables, which Debian builds by default; bare-metal
 * targets get static code.  On Arm the normalised triple's environment
 * (eabi, eabihf) selects the float ABI, and LLVM writes the matching
 * build attributes (Tag_ABI_VFP_args), which arm-none-eabi-ld checks.  The object goes to files.c, which commits it together with
 * the header, so a failed compile leaves nothing behind.
 */
#include "codegen.h"

#include <llvm-c/ErrorHandling.h>
#include <llvm-c/Object.h>
#include <llvm-c/Support.h>

#include <stdlib.h>
#include <string.h>

/* LLVM aborts on some targets it cannot generate code for (a soft-float
 * RISC-V, say): report that as an error instead of crashing.  Nothing has
 * been written yet (output goes through a temporary file after
 * emission), so exiting leaves no file behind. */
static void llvm_fatal(const char *reason) {
  fprintf(stderr, "cnnc: error: LLVM cannot compile this model for the chosen target: %s\n", reason);
  files_abandon();
  exit(1);
}

static void init_llvm_targets(void) {
  static bool done;
  if (done) return;
  LLVMInstallFatalErrorHandler(llvm_fatal);
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeAllAsmParsers(); /* inline asm: the AArch64 profile clock (codegen.c read_cycles) */
  /* No MVE gathers and scatters: LLVM 19's lowering of a gather with
   * writeback scaled the offsets of `gep i8, p, i*12` by 4 again (lanes 0,
   * 48, 96, 144 for 0, 12, 24, 36; cf. llvm-project PR #185437), and
   * cortex-m55 computed wrong results for op_slice_axes, fam_googlenet,
   * fam_resnet_bottleneck, fam_unet and fuse_blocked_edges under QEMU.
   * The option is the ARM backend's own and touches no other target. */
  static const char *const args[] = {"cnnc", "-enable-arm-maskedgatscat=false"};
  LLVMParseCommandLineOptions(2, args, NULL);
  done = true;
}

bool emit_target_machine(CodeGen *cg) {
  init_llvm_targets();
  const TargetInfo *t = cg->opt->target;
  char *err = NULL;
  LLVMTargetRef target = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
    error_plain("unknown target '%s': %s", t->triple, err);
    LLVMDisposeMessage(err);
    return false;
  }
  static const LLVMCodeGenOptLevel levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                               LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
  /* bare metal links statically at fixed addresses: no GOT */
  LLVMRelocMode reloc = t->arch->bare_metal ? LLVMRelocStatic : LLVMRelocPIC;
  /* AArch64: the base architecture's instructions, the named CPU's tuning (emit_tag_functions) */
  cg->tm = LLVMCreateTargetMachine(target, t->triple, t->arch->base_isa ? "generic" : t->cpu, t->features,
                                   levels[cg->opt->opt_level], reloc, LLVMCodeModelDefault);
  if (!cg->tm) {
    error_plain("cannot create a target machine for '%s' (cpu '%s')", t->triple, t->cpu);
    return false;
  }
  cg->soft_float = !t->arch->fpu;
  cg->index32 = t->arch->index_bits == 32;
  cg->no_div = t->arch->no_div;
  cg->thumb1 = t->arch->thumb1;
  cg->fp_bits = t->arch->fp_bits;
  LLVMSetTarget(cg->mod, t->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
  char *layout = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(cg->mod, layout);
  cg->isize = LLVMIntPtrTypeInContext(cg->ctx, td);
  LLVMDisposeMessage(layout);
  LLVMDisposeTargetData(td);
  return true;
}

/* Every function made so far without a CPU of its own (cg_cpu.c's probe
 * and the dispatch are the baseline's, each variant's functions tagged
 * with its CPU when it is made) gets t's CPU and features, so that the
 * optimiser's vectorisers see the real vector width.  AArch64
 * (base_isa): the base architecture's instructions, tuned for the named
 * CPU. */
void emit_tag_functions(CodeGen *cg, const TargetInfo *t) {
  for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f)) {
    if (LLVMIsDeclaration(f) || LLVMGetStringAttributeAtIndex(f, LLVMAttributeFunctionIndex, "target-cpu", 10))
      continue;
    LLVMAddTargetDependentFunctionAttr(f, "target-cpu", t->arch->base_isa ? "generic" : t->cpu);
    if (t->arch->base_isa) LLVMAddTargetDependentFunctionAttr(f, "tune-cpu", t->cpu);
    if (t->features && *t->features) LLVMAddTargetDependentFunctionAttr(f, "target-features", t->features);
  }
}

static bool optimise(CodeGen *cg) {
  char passes[32];
  snprintf(passes, sizeof passes, "default<O%d>", cg->opt->opt_level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, cg->opt->opt_level >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(po, cg->opt->opt_level >= 2);
  LLVMErrorRef e = LLVMRunPasses(cg->mod, passes, cg->tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    error_plain("LLVM optimisation failed: %s", msg);
    LLVMDisposeErrorMessage(msg);
    return false;
  }
  return true;
}

/* Code generation into the planned output `handle`.  The assembly
 * (--emit-asm) is made from a copy of the module, since code generation
 * rewrites the IR it runs on (CodeGenPrepare) and the object must not
 * depend on whether assembly was asked for. */
/* The object's code and constant bytes (the flash a model needs, besides
 * the descriptor's relocations), for --stats. */
static void measure(CodeGen *cg, LLVMMemoryBufferRef buf) {
  char *err = NULL;
  LLVMBinaryRef bin = LLVMCreateBinary(buf, cg->ctx, &err);
  LLVMDisposeMessage(err);
  if (!bin) return;
  const char *ws = cg->opt->weights_section;
  LLVMSectionIteratorRef si = LLVMObjectFileCopySectionIterator(bin);
  for (; !LLVMObjectFileIsSectionIteratorAtEnd(bin, si); LLVMMoveToNextSection(si)) {
    const char *name = LLVMGetSectionName(si);
    int64_t size = (int64_t)LLVMGetSectionSize(si);
    if (!name) continue;
    if (!strncmp(name, ".text", 5)) cg->g->code_bytes += size;
    else if (!strncmp(name, ".rodata", 7) || !strncmp(name, ".data.rel.ro", 12) || (ws && !strcmp(name, ws)))
      cg->g->const_bytes += size;
  }
  LLVMDisposeSectionIterator(si);
  LLVMDisposeBinary(bin);
}

/* ---- stack depth (--stats) ----
 * Every function carries "warn-stack-size"="0", so that code generation
 * reports each frame's size as a diagnostic (PrologEpilogInserter: "stack
 * frame size (N) exceeds limit (0) in function 'F'"), which the handler
 * below records instead of printing.  The depth of <name>_run is then its
 * frame plus the deepest of its callees' depths over the final IR's calls
 * (the code has no recursion; calls into memcpy/memset and libgcc are not
 * counted), plus the return addresses x86-64 pushes. */
typedef struct {
  const char *name;
  int64_t size;
} Frame;

typedef struct {
  CodeGen *cg;
  Frame *f;
  int n, cap;
} Frames;

static void frame_diag(LLVMDiagnosticInfoRef info, void *ctx) {
  Frames *fr = ctx;
  char *d = LLVMGetDiagInfoDescription(info);
  const char *p = strstr(d, "stack frame size (");
  long long size;
  char name[512];
  if (p && sscanf(p, "stack frame size (%lld) exceeds limit (0) in function '%511[^']'", &size, name) == 2) {
    Frame f = {arena_printf(fr->cg->arena, "%s", name), size};
    VEC_PUSH(fr->cg->arena, fr->f, fr->n, fr->cap, f);
  } else if (LLVMGetDiagInfoSeverity(info) == LLVMDSError) {
    error_plain("LLVM: %s", d);
  }
  LLVMDisposeMessage(d);
}

static int64_t frame_of(const Frames *fr, LLVMValueRef f) {
  size_t len;
  const char *name = LLVMGetValueName2(f, &len);
  for (int i = fr->n - 1; i >= 0; i--)
    if (strlen(fr->f[i].name) == len && !memcmp(fr->f[i].name, name, len)) return fr->f[i].size;
  return 0; /* no diagnostic: no frame */
}

static int64_t depth_of(const Frames *fr, LLVMValueRef f, int ret, int level) {
  if (level > 64) return -1; /* no recursion in generated code; a guard all the same */
  int64_t deepest = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
      if (LLVMGetInstructionOpcode(i) != LLVMCall) continue;
      LLVMValueRef callee = LLVMGetCalledValue(i);
      if (!LLVMIsAFunction(callee) || LLVMIsDeclaration(callee) || LLVMGetIntrinsicID(callee)) continue;
      int64_t d = depth_of(fr, callee, ret, level + 1);
      if (d < 0) return -1;
      if (d + ret > deepest) deepest = d + ret;
    }
  return frame_of(fr, f) + deepest;
}

static bool emit_file(CodeGen *cg, LLVMCodeGenFileType type, int handle) {
  char *err = NULL;
  LLVMMemoryBufferRef buf = NULL;
  LLVMModuleRef m = type == LLVMAssemblyFile ? LLVMCloneModule(cg->mod) : cg->mod;
  bool failed = LLVMTargetMachineEmitToMemoryBuffer(cg->tm, m, type, &err, &buf);
  if (m != cg->mod) LLVMDisposeModule(m);
  if (failed) {
    error_plain("code generation failed: %s", err);
    LLVMDisposeMessage(err);
    return false;
  }
  if (type == LLVMObjectFile) measure(cg, buf);
  bool ok = out_write(handle, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
  LLVMDisposeMemoryBuffer(buf);
  return ok;
}

bool emit_module(CodeGen *cg) {
  emit_tag_functions(cg, cg->opt->target);
  if (!optimise(cg)) return false;
  lower_memmove(cg);
  if (cg->opt->emit_llvm) { /* the IR, and with --emit-asm the assembly code generation makes of it */
    if (cg->opt->emit_asm && !emit_file(cg, LLVMAssemblyFile, cg->opt->asm_out)) return false;
    char *text = LLVMPrintModuleToString(cg->mod);
    bool ok = out_write(cg->opt->obj_out, text, strlen(text));
    LLVMDisposeMessage(text);
    return ok;
  }
  if (cg->opt->emit_asm && !emit_file(cg, LLVMAssemblyFile, cg->opt->asm_out)) return false;
  for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
    if (!LLVMIsDeclaration(f)) LLVMAddTargetDependentFunctionAttr(f, "warn-stack-size", "0");
  Frames fr = {.cg = cg};
  LLVMContextSetDiagnosticHandler(cg->ctx, frame_diag, &fr);
  bool ok = emit_file(cg, LLVMObjectFile, cg->opt->obj_out);
  LLVMContextSetDiagnosticHandler(cg->ctx, NULL, NULL);
  LLVMValueRef run = LLVMGetNamedFunction(cg->mod, arena_printf(cg->arena, "%s_run", cg->g->name));
  const char *triple = LLVMGetTarget(cg->mod);
  int ret = !strncmp(triple, "x86_64", 6) ? 8 : 0; /* the call's return address (Arm: lr, saved in the frame) */
  cg->g->stack_bytes = run ? depth_of(&fr, run, ret, 0) : -1;
  if (cg->g->stack_bytes >= 0) cg->g->stack_bytes += ret; /* <name>_run's own */
  return ok;
}
