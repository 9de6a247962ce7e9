/*
 * emit.c: target machine, optimisation pipeline, object file.
 *
 * The host is the default target: its triple, CPU name and feature string
 * come from LLVM.  `--target` and `--cpu` override them (for a foreign
 * triple the default CPU is "generic").  Code is position independent so
 * that the object links into PIE executables, which Debian builds by
 * default.  The object goes to files.c, which commits it together with
 * the header, so a failed compile leaves nothing behind.
 */
#include "codegen.h"

#include <llvm-c/ErrorHandling.h>

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
  done = true;
}

bool emit_target_machine(CodeGen *cg) {
  init_llvm_targets();
  const Options *o = cg->opt;
  char *host_triple = LLVMGetDefaultTargetTriple();
  char *host_cpu = LLVMGetHostCPUName();
  char *host_features = LLVMGetHostCPUFeatures();
  const char *triple = o->triple ? o->triple : host_triple;
  bool native = !o->triple || strcmp(o->triple, host_triple) == 0;
  const char *cpu = o->cpu ? o->cpu : native ? host_cpu : "generic";
  const char *features = o->features ? o->features : (native && !o->cpu) ? host_features : "";
  char *err = NULL;
  LLVMTargetRef target = NULL;
  bool ok = false;
  bool x86 = !strncmp(triple, "x86_64", 6);
  if (x86 && o->cpu && !target_x86_cpu_width(o->cpu)) {
    error_plain("unknown CPU '%s' for %s (e.g. x86-64, x86-64-v2, x86-64-v3, x86-64-v4, haswell, znver4, "
                "skylake-avx512)", o->cpu, triple);
    goto out;
  }
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    error_plain("unknown target '%s': %s", triple, err);
    goto out;
  }
  static const LLVMCodeGenOptLevel levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                               LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
  cg->tm = LLVMCreateTargetMachine(target, triple, cpu, features, levels[o->opt_level],
                                   LLVMRelocPIC, LLVMCodeModelDefault);
  if (!cg->tm) {
    error_plain("cannot create a target machine for '%s' (cpu '%s')", triple, cpu);
    goto out;
  }
  LLVMSetTarget(cg->mod, triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
  char *layout = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(cg->mod, layout);
  cg->isize = LLVMIntPtrTypeInContext(cg->ctx, td);
  LLVMDisposeMessage(layout);
  LLVMDisposeTargetData(td);
  ok = true;
out:
  LLVMDisposeMessage(err);
  LLVMDisposeMessage(host_triple);
  LLVMDisposeMessage(host_cpu);
  LLVMDisposeMessage(host_features);
  return ok;
}

/* Every function gets the target's CPU and features, so that the
 * optimiser's vectorisers see the real vector width. */
static void tag_functions(CodeGen *cg) {
  char *cpu = LLVMGetTargetMachineCPU(cg->tm);
  char *feat = LLVMGetTargetMachineFeatureString(cg->tm);
  for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f)) {
    if (LLVMIsDeclaration(f)) continue;
    LLVMAddTargetDependentFunctionAttr(f, "target-cpu", cpu);
    if (*feat) LLVMAddTargetDependentFunctionAttr(f, "target-features", feat);
  }
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
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

bool emit_module(CodeGen *cg) {
  tag_functions(cg);
  if (!optimise(cg)) return false;
  lower_memmove(cg);
  if (cg->opt->emit_llvm) {
    char *text = LLVMPrintModuleToString(cg->mod);
    bool ok = out_write(cg->opt->obj_out, text, strlen(text));
    LLVMDisposeMessage(text);
    return ok;
  }
  char *err = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(cg->tm, cg->mod, LLVMObjectFile, &err, &buf)) {
    error_plain("code generation failed: %s", err);
    LLVMDisposeMessage(err);
    return false;
  }
  bool ok = out_write(cg->opt->obj_out, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
  LLVMDisposeMemoryBuffer(buf);
  return ok;
}
