/*
 * cg_math.c: transcendentals and activations emitted inline.
 *
 * The generated object must not depend on libm, so exp and log are built
 * from IR here, in the classic Cephes way: range reduction by powers of
 * two, a minimax polynomial on the reduced argument, reconstruction by
 * building the exponent bits.  Both are within 2 ulp of the correctly
 * rounded result over the whole float range, including subnormal results
 * (the scale by 2^n is done in two steps so that no intermediate
 * overflows), and handle NaN, +-inf and 0 as C99 Annex F says (which is
 * what PyTorch does).
 *
 * Every function works on a float or a vector of floats: constants are
 * splatted to the type of the argument.
 */
#include "codegen.h"

static LLVMTypeRef int_like(CodeGen *cg, LLVMTypeRef t) {
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind)
    return LLVMVectorType(cg->i32, LLVMGetVectorSize(t));
  return cg->i32;
}

/* A constant of type t (float or float vector), or of t's int twin. */
static LLVMValueRef splat(LLVMTypeRef t, LLVMValueRef scalar) {
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return scalar;
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef e[64];
  CNNC_ASSERT(n <= 64);
  for (unsigned i = 0; i < n; i++) e[i] = scalar;
  return LLVMConstVector(e, n);
}

static LLVMValueRef fc(CodeGen *cg, LLVMTypeRef t, double v) { return splat(t, cg_f32(cg, v)); }
static LLVMValueRef ic(CodeGen *cg, LLVMTypeRef t, int v) {
  return splat(int_like(cg, t), LLVMConstInt(cg->i32, (unsigned long long)(long long)v, 1));
}

static LLVMValueRef fmul(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef fadd(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef fsub(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef fcmp(CodeGen *cg, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(cg->b, p, a, b, "");
}
static LLVMValueRef sel(CodeGen *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, c, a, b, "");
}

/* Horner evaluation of c[0]*x^(n-1) + ... + c[n-1]. */
static LLVMValueRef poly(CodeGen *cg, LLVMValueRef x, const double *c, int n) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef y = fc(cg, t, c[0]);
  for (int i = 1; i < n; i++) y = cg_fma(cg, y, x, fc(cg, t, c[i]));
  return y;
}

/* 2^k for integer k in [-126, 127], as a float of type t. */
static LLVMValueRef pow2i(CodeGen *cg, LLVMTypeRef t, LLVMValueRef k) {
  LLVMValueRef bits = LLVMBuildShl(cg->b, LLVMBuildAdd(cg->b, k, ic(cg, t, 127), ""), ic(cg, t, 23), "");
  return LLVMBuildBitCast(cg->b, bits, t, "");
}

LLVMValueRef cg_exp(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef nan = fcmp(cg, LLVMRealUNO, x, x);
  /* exp overflows above 88.73 and is 0 below -103.98: clamping keeps n in
   * range for the two-step scale and keeps NaN away from fptosi. */
  LLVMValueRef xc = sel(cg, fcmp(cg, LLVMRealOGT, x, fc(cg, t, 89.0)), fc(cg, t, 89.0), x);
  xc = sel(cg, fcmp(cg, LLVMRealOLT, xc, fc(cg, t, -104.0)), fc(cg, t, -104.0), xc);
  xc = sel(cg, nan, fc(cg, t, 0.0), xc);
  LLVMValueRef fn = cg_intrinsic(cg, "llvm.rint", t, (LLVMValueRef[]){fmul(cg, xc, fc(cg, t, 1.44269504088896341))}, 1, "");
  LLVMValueRef r = cg_fma(cg, fn, fc(cg, t, -0.693359375), xc);
  r = cg_fma(cg, fn, fc(cg, t, 2.12194440e-4), r);
  static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef p = poly(cg, r, c, 6);
  LLVMValueRef y = fadd(cg, cg_fma(cg, fmul(cg, p, r), r, r), fc(cg, t, 1.0));
  LLVMValueRef n = LLVMBuildFPToSI(cg->b, fn, int_like(cg, t), "");
  LLVMValueRef n1 = LLVMBuildAShr(cg->b, n, ic(cg, t, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(cg->b, n, n1, "");
  y = fmul(cg, fmul(cg, y, pow2i(cg, t, n1)), pow2i(cg, t, n2));
  return sel(cg, nan, x, y);
}

LLVMValueRef cg_log(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMTypeRef it = int_like(cg, t);
  /* Subnormals: scale into the normal range first. */
  LLVMValueRef sub = fcmp(cg, LLVMRealOLT, x, fc(cg, t, 1.17549435e-38));
  LLVMValueRef xs = sel(cg, sub, fmul(cg, x, fc(cg, t, 8388608.0)), x);
  LLVMValueRef bits = LLVMBuildBitCast(cg->b, xs, it, "");
  LLVMValueRef e = LLVMBuildSub(cg->b, LLVMBuildAnd(cg->b, LLVMBuildLShr(cg->b, bits, ic(cg, t, 23), ""), ic(cg, t, 0xff), ""),
                                ic(cg, t, 126), "");
  e = LLVMBuildSub(cg->b, e, sel(cg, sub, ic(cg, t, 23), ic(cg, t, 0)), "");
  LLVMValueRef mbits = LLVMBuildOr(cg->b, LLVMBuildAnd(cg->b, bits, ic(cg, t, 0x807fffff), ""), ic(cg, t, 0x3f000000), "");
  LLVMValueRef m = LLVMBuildBitCast(cg->b, mbits, t, ""); /* [0.5, 1) */
  LLVMValueRef small = fcmp(cg, LLVMRealOLT, m, fc(cg, t, 0.707106781186547524));
  LLVMValueRef ef = LLVMBuildSIToFP(cg->b, e, t, "");
  ef = sel(cg, small, fsub(cg, ef, fc(cg, t, 1.0)), ef);
  LLVMValueRef xm = fsub(cg, sel(cg, small, fadd(cg, m, m), m), fc(cg, t, 1.0));
  LLVMValueRef z = fmul(cg, xm, xm);
  static const double c[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                             -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                             2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
  LLVMValueRef y = fmul(cg, fmul(cg, poly(cg, xm, c, 9), xm), z);
  y = cg_fma(cg, ef, fc(cg, t, -2.12194440e-4), y);
  y = cg_fma(cg, z, fc(cg, t, -0.5), y);
  LLVMValueRef r = fadd(cg, xm, y);
  r = cg_fma(cg, ef, fc(cg, t, 0.693359375), r);
  /* Special cases: log(+inf) = inf, log(0) = -inf, log(<0) = NaN, NaN. */
  r = sel(cg, fcmp(cg, LLVMRealOEQ, x, fc(cg, t, 1.0 / 0.0)), x, r);
  r = sel(cg, fcmp(cg, LLVMRealOEQ, x, fc(cg, t, 0.0)), fc(cg, t, -1.0 / 0.0), r);
  r = sel(cg, fcmp(cg, LLVMRealOLT, x, fc(cg, t, 0.0)), fc(cg, t, 0.0 / 0.0), r);
  return sel(cg, fcmp(cg, LLVMRealUNO, x, x), x, r);
}

/* max(a, b) that returns NaN if either is NaN, as torch.max does. */
LLVMValueRef cg_max(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[2] = {a, b};
  return cg_intrinsic(cg, "llvm.maximum", LLVMTypeOf(a), args, 2, "max");
}

static LLVMValueRef relu(CodeGen *cg, LLVMValueRef x) {
  /* PyTorch's relu keeps NaN: x > 0 ? x : (x is NaN ? x : 0). */
  LLVMTypeRef t = LLVMTypeOf(x);
  return sel(cg, fcmp(cg, LLVMRealULE, x, fc(cg, t, 0.0)),
             sel(cg, fcmp(cg, LLVMRealUNO, x, x), x, fc(cg, t, 0.0)), x);
}

LLVMValueRef cg_act(CodeGen *cg, const Act *act, LLVMValueRef x) {
  switch (act->kind) {
  case ACT_NONE: return x;
  case ACT_RELU: return relu(cg, x);
  case ACT_COUNT: break;
  }
  CNNC_UNREACHABLE();
}
