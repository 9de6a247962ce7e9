/*
 * test_cg_math.c: the inline transcendentals of cg_math.c against libm.
 *
 * Each function is emitted into a module through the same helpers the
 * kernels use, JIT-compiled for the host, and evaluated on a sweep over
 * all float bit patterns (every 61st one, both signs, from subnormals to
 * infinity) plus the special values.  The reference is the double-precision
 * libm result rounded to float.  Measured worst errors (x86-64, LLVM 19),
 * which are also the bounds asserted:
 *
 *   exp 1 ulp, log 1 ulp, expm1 2 ulp, tanh 1 ulp, sigmoid 3 ulp
 *   (reference 1/(1+e^-x) in double), erf 1 ulp.
 *
 * The activations are checked against PyTorch's formulas evaluated in
 * double on the same float input, on a coarser sweep (every 427th
 * pattern, and densely on [-10, 10]); all are within ULP_ACT = 3 ulp
 * (measured: sigmoid and silu 3, hardswish, gelu (x >= 0) and gelu_tanh
 * 2, elu, tanh and hardsigmoid 1, the piecewise-linear ones exact).  Where the
 * formula itself cancels (gelu and gelu_tanh for x < 0: 1 + erf(x) is
 * computed in float, as PyTorch does) an absolute error of ACT_ABS_ULPS
 * ulp of x is also accepted, and everywhere an error below FLT_MIN.
 *
 * The sanitized build (-DCNNC_SANITIZE=ON) sweeps every 997th and every
 * 6833rd pattern instead (SWEEP_STRIDE, ACT_STRIDE; the special values
 * and the dense [-10, 10] as here): it checks the emitting code, which the
 * sweep's length does not exercise more, and the JIT-compiled functions
 * are not instrumented.
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

#ifdef CNNC_SANITIZED
enum { SWEEP_STRIDE = 997, ACT_STRIDE = 6833 };
#else
enum { SWEEP_STRIDE = 61, ACT_STRIDE = 427 };
#endif

typedef float (*UnaryFn)(float);
typedef LLVMValueRef (*Emit)(CodeGen *, LLVMValueRef);

typedef struct {
  CodeGen cg;
  LLVMExecutionEngineRef ee;
} Jit;

/* A fresh context, module and builder in j->cg. */
static CodeGen *jit_start(Jit *j) {
  CodeGen *cg = &j->cg;
  memset(j, 0, sizeof *j);
  cg->ctx = LLVMContextCreate();
  cg->mod = LLVMModuleCreateWithNameInContext("t", cg->ctx);
  cg->b = LLVMCreateBuilderInContext(cg->ctx);
  cg_init_types(cg);
  return cg;
}

/* Verifies the module and JITs it for the host: the address of "f". */
static uintptr_t jit_finish(Jit *j) {
  char *err = NULL;
  assert_false(LLVMVerifyModule(j->cg.mod, LLVMReturnStatusAction, &err));
  LLVMDisposeMessage(err);
  LLVMLinkInMCJIT();
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  struct LLVMMCJITCompilerOptions opts;
  LLVMInitializeMCJITCompilerOptions(&opts, sizeof opts);
  opts.OptLevel = 2;
  assert_false(LLVMCreateMCJITCompilerForModule(&j->ee, j->cg.mod, &opts, sizeof opts, &err));
  return (uintptr_t)LLVMGetFunctionAddress(j->ee, "f");
}

/* Builds `float name(float x) { return emit(x); }` and JITs it. */
static UnaryFn jit_unary(Jit *j, Emit emit, int width) {
  CodeGen *cg = jit_start(j);
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
  return (UnaryFn)jit_finish(j);
}

typedef uint32_t (*DivFn)(uint32_t, uint32_t);

/* `uint32_t f(uint32_t x, uint32_t d) { return cg_udiv32(x, d); }` with
 * no divide instruction (the Armv6-M path), JITted for the host. */
static DivFn jit_udiv(Jit *j) {
  CodeGen *cg = jit_start(j);
  cg->no_div = true;
  LLVMTypeRef pt[2] = {cg->i32, cg->i32};
  cg->fn = LLVMAddFunction(cg->mod, "f", LLVMFunctionType(cg->i32, pt, 2, 0));
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMBuildRet(cg->b, cg_udiv32(cg, LLVMGetParam(cg->fn, 0), LLVMGetParam(cg->fn, 1)));
  return (DivFn)jit_finish(j);
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

enum { ULP_EXP = 1, ULP_LOG = 1, ULP_EXPM1 = 2, ULP_TANH = 1, ULP_SIGMOID = 3, ULP_ERF = 1, ULP_ACT = 3, ACT_ABS_ULPS = 4 };

/* Max ulp error of f against ref over every stride-th float bit pattern
 * and the special values (each of them, whatever the stride). */
static int64_t sweep(UnaryFn f, double (*ref)(double), uint64_t stride, float *worst) {
  int64_t maxerr = 0;
  static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN, 88.72f, 88.73f,
                                  -87.0f, -103.0f, -104.0f, 1e-45f, 1.17549435e-38f, 3.4028235e38f};
  const uint64_t nspecial = sizeof special / sizeof *special;
  for (uint64_t bits = 0, k = 0; bits < (1ull << 32) || k < nspecial; bits < (1ull << 32) ? (bits += stride) : k++) {
    float x;
    if (bits >= (1ull << 32)) x = special[k];
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

static void check_every(Emit emit, double (*ref)(double), int width, int64_t bound, const char *what,
                        uint64_t stride) {
  Jit j;
  UnaryFn f = jit_unary(&j, emit, width);
  float worst = 0;
  int64_t e = sweep(f, ref, stride, &worst);
  print_message("%s (width %d): max %lld ulp\n", what, width, (long long)e);
  if (e > bound) fail_msg("%s (width %d): %lld ulp at x = %a (got %a, want %a)", what, width, (long long)e,
                      (double)worst, (double)f(worst), (double)(float)ref(worst));
  jit_free(&j);
}

static void check(Emit emit, double (*ref)(double), int width, int64_t bound, const char *what) {
  check_every(emit, ref, width, bound, what, SWEEP_STRIDE);
}

static void test_exp(void **state) {
  check(cg_exp, exp, 1, ULP_EXP, "exp");
  check(cg_exp, exp, 8, ULP_EXP, "exp");
}

static void test_log(void **state) {
  check(cg_log, log, 1, ULP_LOG, "log");
  check(cg_log, log, 16, ULP_LOG, "log");
}

static void test_expm1(void **state) {
  check(cg_expm1, expm1, 1, ULP_EXPM1, "expm1");
  check(cg_expm1, expm1, 8, ULP_EXPM1, "expm1");
}

static void test_tanh(void **state) {
  check(cg_tanh, tanh, 1, ULP_TANH, "tanh");
  check(cg_tanh, tanh, 8, ULP_TANH, "tanh");
}

static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_sigmoid(void **state) {
  check(cg_sigmoid, sigmoid_ref, 1, ULP_SIGMOID, "sigmoid");
  check(cg_sigmoid, sigmoid_ref, 8, ULP_SIGMOID, "sigmoid");
}

static void test_erf(void **state) {
  check(cg_erf, erf, 1, ULP_ERF, "erf");
  check(cg_erf, erf, 8, ULP_ERF, "erf");
}

/* Exact values the functions must hit, NaN and infinity included. */
static void test_special_values(void **state) {
  static const struct {
    Emit emit;
    float x, want;
  } cases[] = {
      {cg_expm1, -INFINITY, -1.0f}, {cg_expm1, INFINITY, INFINITY}, {cg_expm1, 100.0f, INFINITY},
      {cg_expm1, -100.0f, -1.0f},   {cg_expm1, 0.0f, 0.0f},         {cg_expm1, 1e-30f, 1e-30f},
      {cg_tanh, INFINITY, 1.0f},    {cg_tanh, -INFINITY, -1.0f},    {cg_tanh, 20.0f, 1.0f},
      {cg_tanh, -1e-30f, -1e-30f},  {cg_sigmoid, INFINITY, 1.0f},   {cg_sigmoid, -INFINITY, 0.0f},
      {cg_sigmoid, 0.0f, 0.5f},     {cg_erf, INFINITY, 1.0f},       {cg_erf, -INFINITY, -1.0f},
      {cg_erf, 5.0f, 1.0f},         {cg_erf, 0.0f, 0.0f},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Jit j;
    UnaryFn f = jit_unary(&j, cases[i].emit, 1);
    float got = f(cases[i].x);
    if (got != cases[i].want) fail_msg("case %zu: f(%g) = %g, want %g", i, (double)cases[i].x, (double)got, (double)cases[i].want);
    assert_true(isnan(f(NAN)));
    jit_free(&j);
  }
}

/* ---- activations against PyTorch's formulas ---- */

static Act the_act;   /* what emit_act emits */
static bool act_bits; /* with cg->fp_bits (test_fp_bits) */

static LLVMValueRef emit_act(CodeGen *cg, LLVMValueRef x) {
  cg->fp_bits = act_bits;
  if (the_act.kind == ACT_PRELU) return cg_prelu(cg, x, LLVMConstReal(LLVMTypeOf(x), 0.25));
  return cg_act(cg, &the_act, x);
}

static double relu6_d(double x) { return x != x ? x : fmin(fmax(x, 0), 6); }
static double ref_act(double x) {
  double a = the_act.alpha, b = the_act.beta;
  switch (the_act.kind) {
  case ACT_NONE: return x;
  case ACT_RELU: return x != x ? x : x > 0 ? x : 0;
  case ACT_RELU6: return relu6_d(x);
  case ACT_LEAKY_RELU: return x > 0 ? x : x * a;
  case ACT_PRELU: return x > 0 ? x : x * 0.25;
  case ACT_ELU: return x > 0 ? x : a * expm1(x);
  case ACT_SIGMOID: return 1 / (1 + exp(-x));
  case ACT_TANH: return tanh(x);
  case ACT_HARDSIGMOID:
    if (a == 1.0f / 6 && b == 0.5f) return relu6_d(x + 3) / 6;
    return x != x ? x : fmin(fmax((double)(float)((float)(a * x) + b), 0), 1);
  case ACT_SELU: return b * (x > 0 ? x : a * expm1(x));
  case ACT_SOFTPLUS: return (float)(a * x) > 20 ? x : log1p(exp(a * x)) / a;
  case ACT_EXP: return exp(x);
  case ACT_NEG: return -x;
  case ACT_ABS: return fabs(x);
  case ACT_SQRT: return sqrt(x);
  case ACT_RECIPROCAL: return 1 / x;
  case ACT_ERF: return erf(x);
  case ACT_POW: /* PyTorch: x^-2 is 1 / (x * x) in float; other powers correctly rounded */
    return a == -2 ? 1 / (double)(float)(x * x) : pow(x, a);
  case ACT_SCALE: return (float)((float)(a * x) + b);
  case ACT_HARDSWISH: return (float)(x * relu6_d(x + 3)) / 6; /* x * 6 overflows in float, as in PyTorch */
  case ACT_SILU: return x / (1 + exp(-x));
  case ACT_GELU: return x * 0.5 * (1 + erf(x * M_SQRT1_2));
  case ACT_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  case ACT_CLIP: return x != x ? x : x < a ? a : x > b ? b : x;
  case ACT_COUNT: break;
  }
  return NAN;
}

/* The absolute error accepted besides the ulp bound: ACT_ABS_ULPS ulp of
 * x where the formula cancels, and anything below FLT_MIN (PyTorch itself
 * flushes silu(-90) = x / (1 + e^90) to -0). */
static bool act_abs_ok(float x, float got, float want) {
  float d = fabsf(got - want);
  bool cancels = (the_act.kind == ACT_GELU || the_act.kind == ACT_GELU_TANH) && x < 0;
  return d <= 0x1p-126f || (cancels && d <= ACT_ABS_ULPS * 0x1p-24f * fabsf(x));
}

static void check_act(Act act, int width) {
  the_act = act;
  Jit j;
  UnaryFn f = jit_unary(&j, emit_act, width);
  int64_t maxerr = 0;
  float worst = 0;
  for (uint64_t bits = 0; bits < (1ull << 32); bits += ACT_STRIDE) {
    uint32_t b32 = (uint32_t)bits;
    float x;
    memcpy(&x, &b32, 4);
    float got = f(x), want = (float)ref_act((double)x);
    int64_t e = ulp_diff(got, want);
    if (e != INT64_MAX && act_abs_ok(x, got, want)) e = 0;
    if (e > maxerr) {
      maxerr = e;
      worst = x;
    }
  }
  for (float x = -10.0f; x <= 10.0f; x += 0.001953125f) { /* dense near the kinks */
    int64_t e = ulp_diff(f(x), (float)ref_act(x));
    if (e != INT64_MAX && act_abs_ok(x, f(x), (float)ref_act(x))) e = 0;
    if (e > maxerr) {
      maxerr = e;
      worst = x;
    }
  }
  print_message("%s (width %d): max %lld ulp at %a (got %a want %a)\n", act_names[act.kind], width, (long long)maxerr, worst, f(worst), (float)ref_act(worst));
  /* a non-integer power is e^(p log x): the error of log x grows with |p log x|, up to 88 |p| ulp */
  int64_t bound = act.kind == ACT_POW && act.alpha != (float)(int)act.alpha && act.alpha != 0.5f ? 256 : ULP_ACT;
  if (maxerr > bound)
    fail_msg("%s (width %d): %lld ulp at x = %a (got %a, want %a)", act_names[act.kind], width, (long long)maxerr,
             (double)worst, (double)f(worst), (double)(float)ref_act(worst));
  jit_free(&j);
}

static void test_activations(void **state) {
  static const Act acts[] = {
      {ACT_RELU, 0, 0},        {ACT_RELU6, 0, 0},    {ACT_LEAKY_RELU, 0.01f, 0}, {ACT_PRELU, 0, 0},
      {ACT_ELU, 1.0f, 0},      {ACT_ELU, 0.5f, 0},   {ACT_SIGMOID, 0, 0},        {ACT_TANH, 0, 0},
      {ACT_HARDSIGMOID, 1.0f / 6, 0.5f}, {ACT_HARDSIGMOID, 0.2f, 0.5f}, {ACT_HARDSWISH, 0, 0}, {ACT_SILU, 0, 0},
      {ACT_GELU, 0, 0},        {ACT_GELU_TANH, 0, 0},   {ACT_CLIP, -1.5f, 2.25f}, {ACT_CLIP, -INFINITY, 0.5f},
      {ACT_SELU, 1.6732632423543772f, 1.0507009873554805f}, {ACT_SOFTPLUS, 1, 0}, {ACT_SOFTPLUS, 2, 0},
      {ACT_EXP, 0, 0},         {ACT_NEG, 0, 0},       {ACT_ABS, 0, 0},            {ACT_SQRT, 0, 0},
      {ACT_RECIPROCAL, 0, 0},  {ACT_ERF, 0, 0},       {ACT_POW, 2, 0},            {ACT_POW, 3, 0},
      {ACT_POW, -2, 0},        {ACT_POW, 0.5f, 0},    {ACT_POW, 1.7f, 0},         {ACT_SCALE, 0.5f, -3},
      {ACT_SCALE, 3, 0},
  };
  for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
    check_act(acts[i], 1);
    check_act(acts[i], 4);
  }
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

/* ---- the code for targets without FP hardware (cg->soft_float), run here ---- */

static LLVMValueRef soft_sqrt(CodeGen *cg, LLVMValueRef x) {
  cg->soft_float = true;
  return cg_sqrt(cg, x);
}

static LLVMValueRef soft_max_with_one(CodeGen *cg, LLVMValueRef x) {
  cg->soft_float = true;
  return cg_max(cg, x, LLVMConstReal(LLVMTypeOf(x), 1.0));
}

static LLVMValueRef soft_min_with_one(CodeGen *cg, LLVMValueRef x) {
  cg->soft_float = true;
  return cg_min(cg, x, LLVMConstReal(LLVMTypeOf(x), 1.0));
}

/* Newton's sqrt: within 1 ulp of sqrtf over the sweep (subnormals, 0, inf,
 * NaN and negative x included: sqrt(-1) is NaN, as sqrtf). */
static void test_soft_sqrt(void **state) {
  /* Newton's loop is slow to JIT-run 70 million times: every 1021st
   * pattern (4.2 million, some 500 per binade) and the special values */
  check_every(soft_sqrt, sqrt, 1, 1, "soft sqrt", 1021);
  check_every(soft_sqrt, sqrt, 4, 1, "soft sqrt", 1021);
}

static void test_soft_max_min(void **state) {
  Jit j;
  UnaryFn f = jit_unary(&j, soft_max_with_one, 1);
  assert_true(isnan(f(NAN)));
  assert_true(f(2.0f) == 2.0f);
  assert_true(f(-INFINITY) == 1.0f);
  assert_true(f(INFINITY) == INFINITY);
  jit_free(&j);
  f = jit_unary(&j, soft_min_with_one, 4);
  assert_true(isnan(f(NAN)));
  assert_true(f(2.0f) == 1.0f);
  assert_true(f(-INFINITY) == -INFINITY);
  jit_free(&j);
}

/* ---- the code for MVE (cg->fp_bits: NaN, sign and zero tests on the
 * bits, max and min as maxnum and minnum with NaN passed through), run
 * here: the same results as the float compares' code ---- */

static LLVMValueRef bits_log(CodeGen *cg, LLVMValueRef x) {
  cg->fp_bits = true;
  return cg_log(cg, x);
}

static LLVMValueRef bits_max_with_one(CodeGen *cg, LLVMValueRef x) {
  cg->fp_bits = true;
  return cg_max(cg, x, LLVMConstReal(LLVMTypeOf(x), 1.0));
}

static LLVMValueRef bits_min_with_zero(CodeGen *cg, LLVMValueRef x) {
  cg->fp_bits = true;
  return cg_min(cg, x, LLVMConstReal(LLVMTypeOf(x), 0.0));
}

static void test_fp_bits(void **state) {
  (void)state;
  check(bits_log, log, 4, ULP_LOG, "log (fp_bits)"); /* subnormals and negative ones included */
  static const Act acts[] = {{ACT_POW, 1.5f, 0}, {ACT_POW, 1.7f, 0}, {ACT_HARDSIGMOID, 0.2f, 0.5f},
                             {ACT_CLIP, -1.5f, 2.25f}, {ACT_RELU6, 0, 0}, {ACT_EXP, 0, 0}};
  act_bits = true;
  for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) check_act(acts[i], 4);
  act_bits = false;
  Jit j;
  UnaryFn f = jit_unary(&j, bits_max_with_one, 4);
  assert_true(isnan(f(NAN)));
  assert_true(f(2.0f) == 2.0f && f(-INFINITY) == 1.0f && f(INFINITY) == INFINITY);
  jit_free(&j);
  f = jit_unary(&j, bits_min_with_zero, 4);
  assert_true(isnan(f(NAN)) && isnan(f(-NAN)));
  assert_true(f(2.0f) == 0.0f && f(-INFINITY) == -INFINITY && f(-1e-45f) == -1e-45f);
  /* (the sign of min(-0, +0) is llvm.minnum's choice: VMINNM gives -0 on
   * Arm, as torch.minimum; the host's lowering may give either) */
  jit_free(&j);
}

/* cg_udiv32's shift-and-subtract loop (the Armv6-M split ranges: task t
 * of k runs units [t*n/k, (t+1)*n/k)) equals x / d: every x < 4096 by
 * every d < 80, and a sweep of large ones. */
static void test_udiv32(void **state) {
  (void)state;
  Jit j;
  DivFn f = jit_udiv(&j);
  for (uint32_t x = 0; x < 4096; x++)
    for (uint32_t d = 1; d < 80; d++) assert_int_equal(f(x, d), x / d);
  uint32_t x = 1;
  for (int i = 0; i < 100000; i++) {
    x = x * 1664525u + 1013904223u;
    uint32_t d = (x >> 7) % 100000 + 1;
    assert_int_equal(f(x, d), x / d);
    assert_int_equal(f(x, 1), x);
    assert_int_equal(f(x, 0xffffffffu), x / 0xffffffffu);
  }
  jit_free(&j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exp),
      cmocka_unit_test(test_log),
      cmocka_unit_test(test_max_propagates_nan),
      cmocka_unit_test(test_soft_sqrt),
      cmocka_unit_test(test_soft_max_min),
      cmocka_unit_test(test_expm1),
      cmocka_unit_test(test_tanh),
      cmocka_unit_test(test_sigmoid),
      cmocka_unit_test(test_erf),
      cmocka_unit_test(test_special_values),
      cmocka_unit_test(test_udiv32),
      cmocka_unit_test(test_activations),
      cmocka_unit_test(test_fp_bits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
