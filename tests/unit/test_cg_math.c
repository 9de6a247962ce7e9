/*
 * test_cg_math.c: the inline transcendentals of cg_math.c against libm.
 *
 * Each function is emitted into a module through the same helpers the
 * kernels use, JIT-compiled for the host, and evaluated on a sweep over
 * all float bit patterns (every 61st one, both signs, from subnormals to
 * infinity) plus the special values.  The reference is the double-precision
 * libm result rounded to float; the error allowed is 2 ulp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <llvm-c/ExecutionEngine.h>
#include <math.h>
#include <string.h>

#include "codegen.h"

typedef float (*UnaryFn)(float);
typedef LLVMValueRef (*Emit)(CodeGen *, LLVMValueRef);

typedef struct {
  CodeGen cg;
  LLVMExecutionEngineRef ee;
} Jit;

/* Builds `float name(float x) { return emit(x); }` and JITs it. */
static UnaryFn jit_unary(Jit *j, Emit emit, int width) {
  CodeGen *cg = &j->cg;
  memset(j, 0, sizeof *j);
  cg->ctx = LLVMContextCreate();
  cg->mod = LLVMModuleCreateWithNameInContext("t", cg->ctx);
  cg->b = LLVMCreateBuilderInContext(cg->ctx);
  cg_init_types(cg);
  LLVMTypeRef ft = LLVMFunctionType(cg->f32, &cg->f32, 1, 0);
  cg->fn = LLVMAddFunction(cg->mod, "f", ft);
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef x = LLVMGetParam(cg->fn, 0), r;
  if (width > 1) { /* exercise the vector path: splat, compute, take lane 1 */
    LLVMTypeRef vt = LLVMVectorType(cg->f32, (unsigned)width);
    LLVMValueRef v = LLVMGetUndef(vt);
    for (int i = 0; i < width; i++) v = LLVMBuildInsertElement(cg->b, v, x, LLVMConstInt(cg->i32, (unsigned)i, 0), "");
    r = LLVMBuildExtractElement(cg->b, emit(cg, v), LLVMConstInt(cg->i32, 1, 0), "");
  } else {
    r = emit(cg, x);
  }
  LLVMBuildRet(cg->b, r);
  char *err = NULL;
  assert_false(LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &err));
  LLVMDisposeMessage(err);
  LLVMLinkInMCJIT();
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  struct LLVMMCJITCompilerOptions opts;
  LLVMInitializeMCJITCompilerOptions(&opts, sizeof opts);
  opts.OptLevel = 2;
  assert_false(LLVMCreateMCJITCompilerForModule(&j->ee, cg->mod, &opts, sizeof opts, &err));
  return (UnaryFn)(uintptr_t)LLVMGetFunctionAddress(j->ee, "f");
}

static void jit_free(Jit *j) {
  LLVMDisposeBuilder(j->cg.b);
  LLVMDisposeExecutionEngine(j->ee); /* owns the module */
  LLVMContextDispose(j->cg.ctx);
}

static int64_t ulp_diff(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
  if (a == b) return 0;
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;
  if (ib < 0) ib = INT32_MIN - ib;
  return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

/* Max ulp error of f against ref over the sweep and the special values. */
static int64_t sweep(UnaryFn f, double (*ref)(double), float *worst) {
  int64_t maxerr = 0;
  static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN, 88.72f, 88.73f,
                                  -87.0f, -103.0f, -104.0f, 1e-45f, 1.17549435e-38f, 3.4028235e38f};
  for (uint64_t bits = 0; bits < (1ull << 32) + sizeof special / sizeof *special; bits += 61) {
    float x;
    if (bits >= (1ull << 32)) x = special[bits - (1ull << 32)];
    else {
      uint32_t b32 = (uint32_t)bits;
      memcpy(&x, &b32, 4);
    }
    float want = (float)ref((double)x), got = f(x);
    int64_t e = ulp_diff(got, want);
    if (e > maxerr) {
      maxerr = e;
      *worst = x;
    }
  }
  return maxerr;
}

static void check(Emit emit, double (*ref)(double), int width, const char *what) {
  Jit j;
  UnaryFn f = jit_unary(&j, emit, width);
  float worst = 0;
  int64_t e = sweep(f, ref, &worst);
  if (e > 2) fail_msg("%s (width %d): %lld ulp at x = %a (got %a, want %a)", what, width, (long long)e,
                      (double)worst, (double)f(worst), (double)(float)ref(worst));
  jit_free(&j);
}

static void test_exp(void **state) {
  check(cg_exp, exp, 1, "exp");
  check(cg_exp, exp, 8, "exp");
}

static void test_log(void **state) {
  check(cg_log, log, 1, "log");
  check(cg_log, log, 16, "log");
}

static LLVMValueRef max_with_one(CodeGen *cg, LLVMValueRef x) {
  return cg_max(cg, x, LLVMConstReal(LLVMTypeOf(x), 1.0));
}

static void test_max_propagates_nan(void **state) {
  Jit j;
  UnaryFn f = jit_unary(&j, max_with_one, 1);
  assert_true(isnan(f(NAN)));
  assert_true(f(2.0f) == 2.0f);
  assert_true(f(-INFINITY) == 1.0f);
  jit_free(&j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exp),
      cmocka_unit_test(test_log),
      cmocka_unit_test(test_max_propagates_nan),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
