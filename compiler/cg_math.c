/*
 * cg_math.c: transcendentals and activations emitted inline.
 *
 * The generated object must not depend on libm, so exp, log, expm1, tanh,
 * sigmoid and erf are built from IR here, in the classic Cephes way: range
 * reduction by powers of two, a polynomial on the reduced argument,
 * reconstruction by building the exponent bits.  Each is within a few ulp
 * of the correctly rounded result over the whole float range, including
 * subnormal results (the scale by 2^n is done in two steps so that no
 * intermediate overflows), and handles NaN, +-inf and 0 as C99 Annex F
 * says (which is what PyTorch does).  The bounds measured by
 * tests/unit/test_cg_math.c are stated there.
 *
 * Activations (cg_act) follow PyTorch's formulas and order of operations,
 * including where NaN comes out (hardswish(-inf) = -inf * 0 = NaN).
 *
 * Every function works on a float or a vector of floats: constants are
 * splatted to the type of the argument.
 */
#include "codegen.h"

#include <math.h>

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
/* MVE (TargetArch.fp_bits): MVE's VCMP LT and LE are true for NaN
 * operands (the inverses of GE and GT), and LLVM 19 lowers fcmp olt to
 * VCMP LT all the same, and fcmp uno and llvm.maximum's NaN test into VPT
 * blocks that miss NaN lanes; under QEMU its vector arithmetic also
 * flushes subnormal inputs to zero.  exp, log and pow returned 0 for NaN
 * and for negative x, max(NaN, 0) was 0 (op_act_pow_1_5,
 * op_act_new_specials on mps3-an547).  There the NaN and sign tests that
 * decide a special case are integer tests on the bits. */
static LLVMValueRef bits_of(CodeGen *cg, LLVMValueRef x) {
  return LLVMBuildBitCast(cg->b, x, int_like(cg, LLVMTypeOf(x)), "");
}

/* x is NaN: (bits << 1) > 0xff000000, unsigned.  The bound is made in a
 * core register at each use (an asm with side effects), the scalar operand
 * of VCMP: as a vector constant LLVM hoisted it to the kernel's entry, one
 * of MVE's 8 Q registers for good (mobilenet_v2's stem with its relu6 then
 * kept an accumulator on the stack). */
static LLVMValueRef is_nan(CodeGen *cg, LLVMValueRef x) {
  if (!cg->fp_bits) return fcmp(cg, LLVMRealUNO, x, x);
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef sh = LLVMBuildShl(cg->b, bits_of(cg, x), ic(cg, t, 1), "");
  LLVMValueRef k = cg_asm_identity(cg, LLVMConstInt(cg->i32, 0xff000000u, 0), "=r,0", true);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) k = cg_splat(cg, int_like(cg, t), k);
  return LLVMBuildICmp(cg->b, LLVMIntUGT, sh, k, "nan");
}

/* x is +-0; on the bits, a subnormal is not, where MVE's compare sees the
 * zero it flushes it to. */
static LLVMValueRef is_zero(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (!cg->fp_bits) return fcmp(cg, LLVMRealOEQ, x, LLVMConstNull(t));
  return LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildShl(cg->b, bits_of(cg, x), ic(cg, t, 1), ""), ic(cg, t, 0), "zero");
}

/* x < 0 (NaN: false, except that a negative NaN is true on the bits; the
 * callers return x for NaN); on the bits, a negative subnormal is below
 * zero too, where MVE's compare sees the zero it flushes it to. */
static LLVMValueRef is_neg(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (!cg->fp_bits) return fcmp(cg, LLVMRealOLT, x, LLVMConstNull(t));
  LLVMValueRef b = bits_of(cg, x), zero = ic(cg, t, 0);
  LLVMValueRef nonzero = LLVMBuildICmp(cg->b, LLVMIntNE, LLVMBuildShl(cg->b, b, ic(cg, t, 1), ""), zero, "");
  return LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, b, zero, ""), nonzero, "neg");
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

/* Nearest integer (ties to even) of x, |x| < 2^22, without llvm.rint:
 * targets without SSE4.1 lower rint to a libm call, and the generated
 * object must not need libm.  Adding and subtracting 1.5 * 2^23 rounds in
 * the FPU's default mode. */
static LLVMValueRef round_small(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef magic = fc(cg, t, 12582912.0);
  return fsub(cg, fadd(cg, x, magic), magic);
}

/* 2^k for integer k in [-126, 127], as a float of type t. */
static LLVMValueRef pow2i(CodeGen *cg, LLVMTypeRef t, LLVMValueRef k) {
  LLVMValueRef bits = LLVMBuildShl(cg->b, LLVMBuildAdd(cg->b, k, ic(cg, t, 127), ""), ic(cg, t, 23), "");
  return LLVMBuildBitCast(cg->b, bits, t, "");
}

/* The reduction shared by exp and expm1: x clamped to [lo, 89] (NaN to 0,
 * so fptosi never sees it), x = n ln2 + r with |r| <= ln2/2 (ln2 split in
 * two for an exact product), and expm1(r) = r + r^2 P(r).  Returns n as an
 * integer vector/scalar and sets *em = expm1(r). */
static LLVMValueRef exp_reduce(CodeGen *cg, LLVMValueRef x, double lo, LLVMValueRef *em) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef xc = sel(cg, fcmp(cg, LLVMRealOGT, x, fc(cg, t, 89.0)), fc(cg, t, 89.0), x);
  xc = sel(cg, fcmp(cg, LLVMRealOLT, xc, fc(cg, t, lo)), fc(cg, t, lo), xc);
  xc = sel(cg, is_nan(cg, x), fc(cg, t, 0.0), xc);
  LLVMValueRef fn = round_small(cg, fmul(cg, xc, fc(cg, t, 1.44269504088896341)));
  LLVMValueRef r = cg_fma(cg, fn, fc(cg, t, -0.693359375), xc);
  r = cg_fma(cg, fn, fc(cg, t, 2.12194440e-4), r);
  static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  *em = cg_fma(cg, fmul(cg, poly(cg, r, c, 6), r), r, r);
  return LLVMBuildFPToSI(cg->b, fn, int_like(cg, t), "");
}

/* y * 2^n for n in [-150, 128], in two steps so that neither factor
 * overflows and a subnormal result is rounded once. */
static LLVMValueRef scale2(CodeGen *cg, LLVMValueRef y, LLVMValueRef n) {
  LLVMTypeRef t = LLVMTypeOf(y);
  LLVMValueRef n1 = LLVMBuildAShr(cg->b, n, ic(cg, t, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(cg->b, n, n1, "");
  return fmul(cg, fmul(cg, y, pow2i(cg, t, n1)), pow2i(cg, t, n2));
}

LLVMValueRef cg_exp(CodeGen *cg, LLVMValueRef x) {
  /* exp overflows above 88.73 and is 0 below -103.98. */
  LLVMValueRef em, n = exp_reduce(cg, x, -104.0, &em);
  LLVMValueRef y = scale2(cg, fadd(cg, em, fc(cg, LLVMTypeOf(x), 1.0)), n);
  return sel(cg, is_nan(cg, x), x, y);
}

LLVMValueRef cg_log(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMTypeRef it = int_like(cg, t);
  /* Subnormals: scale into the normal range first, by 2^23; with fp_bits
   * (MVE, which flushes a subnormal operand of the multiply to zero) by
   * 2^149: the bits as an integer, converted exactly (below 2^23). */
  LLVMValueRef sub, xs;
  int scale;
  if (cg->fp_bits) {
    LLVMValueRef xb = bits_of(cg, x);
    sub = LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildAnd(cg->b, xb, ic(cg, t, 0x7f800000), ""), ic(cg, t, 0), "sub");
    xs = sel(cg, sub, LLVMBuildSIToFP(cg->b, LLVMBuildAnd(cg->b, xb, ic(cg, t, 0x7fffff), ""), t, ""), x), scale = 149;
  } else {
    sub = fcmp(cg, LLVMRealOLT, x, fc(cg, t, 1.17549435e-38));
    xs = sel(cg, sub, fmul(cg, x, fc(cg, t, 8388608.0)), x), scale = 23;
  }
  LLVMValueRef bits = LLVMBuildBitCast(cg->b, xs, it, "");
  LLVMValueRef e = LLVMBuildSub(cg->b, LLVMBuildAnd(cg->b, LLVMBuildLShr(cg->b, bits, ic(cg, t, 23), ""), ic(cg, t, 0xff), ""),
                                ic(cg, t, 126), "");
  e = LLVMBuildSub(cg->b, e, sel(cg, sub, ic(cg, t, scale), ic(cg, t, 0)), "");
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
  r = sel(cg, is_zero(cg, x), fc(cg, t, -1.0 / 0.0), r);
  r = sel(cg, is_neg(cg, x), fc(cg, t, 0.0 / 0.0), r);
  return sel(cg, is_nan(cg, x), x, r);
}

/* Whether the target has no FP hardware (cg->soft_float, from target.c's
 * table): there LLVM 19 cannot lower llvm.maximum/minimum ("Do not know
 * how to soften the result of this operator!") and turns llvm.sqrt into a
 * call to libm. */
static bool soft_float(const CodeGen *cg) {
  return cg->soft_float;
}

/* sqrt(x), scalar or vector, as sqrtf: llvm.sqrt where the target has FP
 * hardware (an instruction).  Without it: a first guess from halving the
 * exponent bits (relative error at most 4e-2), then three Newton steps
 * y = (y + x/y)/2, each of which squares the error (8e-4, 3e-7, 5e-14:
 * below float rounding).  Subnormal x is scaled by 2^24 first and the
 * root by 2^-12 after (the guess needs a real exponent); 0, inf and NaN
 * are returned as they are, x < 0 gives NaN.  tests/unit/test_cg_math.c
 * sweeps it against sqrtf: within 1 ulp. */
LLVMValueRef cg_sqrt(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (!soft_float(cg)) return cg_intrinsic(cg, "llvm.sqrt", t, &x, 1, "sqrt");
  LLVMValueRef small = fcmp(cg, LLVMRealOLT, x, fc(cg, t, 0x1p-126));
  LLVMValueRef xs = sel(cg, small, fmul(cg, x, fc(cg, t, 0x1p24)), x);
  LLVMValueRef bits = LLVMBuildBitCast(cg->b, xs, int_like(cg, t), "");
  bits = LLVMBuildAdd(cg->b, LLVMBuildLShr(cg->b, bits, ic(cg, t, 1), ""), ic(cg, t, 0x1fbd1df5), "");
  LLVMValueRef y = LLVMBuildBitCast(cg->b, bits, t, "sqrt.guess");
  for (int i = 0; i < 3; i++) y = fmul(cg, fc(cg, t, 0.5), fadd(cg, y, LLVMBuildFDiv(cg->b, xs, y, "")));
  y = sel(cg, small, fmul(cg, y, fc(cg, t, 0x1p-12)), y);
  LLVMValueRef finite = LLVMBuildAnd(cg->b, fcmp(cg, LLVMRealOGT, x, fc(cg, t, 0.0)),
                                     fcmp(cg, LLVMRealONE, x, fc(cg, t, 1.0 / 0.0)), "");
  LLVMValueRef special = sel(cg, fcmp(cg, LLVMRealOLT, x, fc(cg, t, 0.0)), fc(cg, t, 0.0 / 0.0), x);
  return sel(cg, finite, y, special);
}

/* max(a, b) that returns NaN if either is NaN, as torch.max does.  Without
 * FP hardware: (a > b or a is NaN) ? a : b propagates NaN the same way;
 * only signed zeros can differ (max(-0, +0) is then b, whichever zero b
 * is). */
/* With fp_bits (MVE): maxnum/minnum (VMAXNM, VMINNM: -0 below +0), and a
 * NaN operand, found on its bits, passed through. */
static LLVMValueRef minmax_bits(CodeGen *cg, LLVMValueRef a, LLVMValueRef b, const char *num) {
  LLVMValueRef args[2] = {a, b};
  LLVMValueRef r = cg_intrinsic(cg, num, LLVMTypeOf(a), args, 2, "mm");
  return sel(cg, is_nan(cg, a), a, sel(cg, is_nan(cg, b), b, r));
}

LLVMValueRef cg_max(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  if (soft_float(cg))
    return sel(cg, LLVMBuildOr(cg->b, fcmp(cg, LLVMRealOGT, a, b), is_nan(cg, a), ""), a, b);
  if (cg->fp_bits) return minmax_bits(cg, a, b, "llvm.maxnum");
  LLVMValueRef args[2] = {a, b};
  return cg_intrinsic(cg, "llvm.maximum", LLVMTypeOf(a), args, 2, "max");
}

LLVMValueRef cg_min(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  if (soft_float(cg))
    return sel(cg, LLVMBuildOr(cg->b, fcmp(cg, LLVMRealOLT, a, b), is_nan(cg, a), ""), a, b);
  if (cg->fp_bits) return minmax_bits(cg, a, b, "llvm.minnum");
  LLVMValueRef args[2] = {a, b};
  return cg_intrinsic(cg, "llvm.minimum", LLVMTypeOf(a), args, 2, "min");
}

LLVMValueRef cg_combine(CodeGen *cg, Op op, LLVMValueRef a, LLVMValueRef b) {
  switch (op) {
  case OP_ADD: return LLVMBuildFAdd(cg->b, a, b, "sum");
  case OP_MUL: return LLVMBuildFMul(cg->b, a, b, "prod");
  case OP_SUB: return LLVMBuildFSub(cg->b, a, b, "diff");
  case OP_DIV: return LLVMBuildFDiv(cg->b, a, b, "quot");
  case OP_MAX: return cg_max(cg, a, b);
  case OP_MIN: return cg_min(cg, a, b);
  default: break;
  }
  CNNC_UNREACHABLE();
}

static LLVMValueRef fabs_(CodeGen *cg, LLVMValueRef x) {
  return cg_intrinsic(cg, "llvm.fabs", LLVMTypeOf(x), &x, 1, "");
}

static LLVMValueRef copysign_(CodeGen *cg, LLVMValueRef mag, LLVMValueRef sgn) {
  LLVMValueRef args[2] = {mag, sgn};
  return cg_intrinsic(cg, "llvm.copysign", LLVMTypeOf(mag), args, 2, "");
}

/* expm1 = e^x - 1 without the cancellation near 0.  Same reduction as
 * cg_exp, x = n ln2 + r with |r| <= ln2/2, and expm1(r) = r + r^2 P(r)
 * (the exp polynomial), which is accurate to the last bit however small r
 * is.  Then expm1(x) = 2^n expm1(r) + (2^n - 1), exact for the 2^n - 1
 * part while n <= 24; beyond that the -1 is below half an ulp and the
 * result is (expm1(r) + 1) 2^n, scaled in two steps like cg_exp.  Below
 * -30 the result rounds to -1, so x is clamped there. */
LLVMValueRef cg_expm1(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef nan = is_nan(cg, x);
  LLVMValueRef em, n = exp_reduce(cg, x, -30.0, &em);
  LLVMValueRef s = pow2i(cg, t, n);
  LLVMValueRef small = cg_fma(cg, s, em, fsub(cg, s, fc(cg, t, 1.0)));
  LLVMValueRef big = scale2(cg, fadd(cg, em, fc(cg, t, 1.0)), n);
  LLVMValueRef y = sel(cg, LLVMBuildICmp(cg->b, LLVMIntSGT, n, ic(cg, t, 24), ""), big, small);
  return sel(cg, nan, x, y);
}

/* tanh: Cephes' odd polynomial x + x^3 P(x^2) below 0.625, where the
 * exp form would cancel; above, 1 - 2/(e^2|x| + 1) with the sign of x,
 * which saturates to exactly +-1 (e^2|x| overflows to inf: 2/inf = 0). */
LLVMValueRef cg_tanh(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef ax = fabs_(cg, x);
  LLVMValueRef z = fmul(cg, x, x);
  static const double c[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                             1.33314422036E-1, -3.33332819422E-1};
  LLVMValueRef small = cg_fma(cg, fmul(cg, x, z), poly(cg, z, c, 5), x);
  LLVMValueRef e = cg_exp(cg, fadd(cg, ax, ax));
  LLVMValueRef big = fsub(cg, fc(cg, t, 1.0), LLVMBuildFDiv(cg->b, fc(cg, t, 2.0), fadd(cg, e, fc(cg, t, 1.0)), ""));
  return sel(cg, fcmp(cg, LLVMRealOGE, ax, fc(cg, t, 0.625)), copysign_(cg, big, x), small);
}

/* sigmoid = 1 / (1 + e^-x), computed from e = e^-|x| <= 1 so that nothing
 * overflows: 1/(1+e) for x >= 0, e/(1+e) below, which keeps full relative
 * accuracy down to the subnormal results of large negative x. */
LLVMValueRef cg_sigmoid(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, fabs_(cg, x), ""));
  LLVMValueRef r = LLVMBuildFDiv(cg->b, fc(cg, t, 1.0), fadd(cg, e, fc(cg, t, 1.0)), "");
  return sel(cg, fcmp(cg, LLVMRealOGE, x, fc(cg, t, 0.0)), r, fmul(cg, e, r));
}

/* erf, with polynomials fitted for cnnc (relative-error least squares on
 * Chebyshev nodes; tools-free: see the sweep in tests/unit/test_cg_math.c):
 *   |x| < 1:   erf x = x + x Q(x^2)                 (Q(0) = 2/sqrt(pi) - 1)
 *   |x| >= 1:  erf x = 1 - e^(-x^2) R(1/|x|)        (R ~ erfc(x) e^(x^2))
 * R is fitted on [1, 3.92]; above 3.92 erf rounds to 1 and the second form
 * gives exactly that (as well as 1 at infinity, where 1/|x| = 0). */
LLVMValueRef cg_erf(CodeGen *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  static const double q[] = {7.8981394280886472e-05, -0.00080243353991010357, 0.0051900517732319336,
                             -0.026854807777684064,  0.11283612415525668,    -0.37612628842900159,
                             0.1283791665102882};
  static const double rc[] = {0.030782654075233319, -0.17993191985368065, 0.43833009810826878,
                              -0.53639731278816538, 0.23721051092468329,  0.23142597923333758,
                              -0.37639795078053595, 0.020696920304364326, 0.56174174429925305,
                              0.00012285924599336485};
  LLVMValueRef ax = fabs_(cg, x);
  LLVMValueRef small = cg_fma(cg, x, poly(cg, fmul(cg, x, x), q, 7), x);
  LLVMValueRef r = poly(cg, LLVMBuildFDiv(cg->b, fc(cg, t, 1.0), ax, ""), rc, 10);
  LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, fmul(cg, ax, ax), ""));
  LLVMValueRef big = fsub(cg, fc(cg, t, 1.0), fmul(cg, e, r));
  return sel(cg, fcmp(cg, LLVMRealOLT, ax, fc(cg, t, 1.0)), small, copysign_(cg, big, x));
}

/* lo <= x <= hi, keeping NaN and the sign of zero, as torch.clamp. */
static LLVMValueRef clamp(CodeGen *cg, LLVMValueRef x, double lo, double hi) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef y = sel(cg, fcmp(cg, LLVMRealOLT, x, fc(cg, t, lo)), fc(cg, t, lo), x);
  y = sel(cg, fcmp(cg, LLVMRealOGT, y, fc(cg, t, hi)), fc(cg, t, hi), y);
  return cg->fp_bits ? sel(cg, is_nan(cg, x), x, y) : y; /* MVE: the olt is true for NaN */
}

static LLVMValueRef relu(CodeGen *cg, LLVMValueRef x) {
  /* PyTorch's relu keeps NaN: x > 0 ? x : (x is NaN ? x : 0). */
  LLVMTypeRef t = LLVMTypeOf(x);
  if (cg->soft_float) {
    /* on the bits, without the two comparison calls (whose operands a
     * loop kept across them): bits & ~(bits >> 31) is x or, with the sign
     * set, +0, except that a NaN (bits << 1 above 0xff000000) stays */
    LLVMTypeRef it = int_like(cg, t);
    LLVMValueRef bits = LLVMBuildBitCast(cg->b, x, it, ""), k = cg_const_at_use(cg, 0xff000000u);
    if (it != cg->i32) k = cg_splat(cg, it, k);
    LLVMValueRef z = LLVMBuildAnd(cg->b, bits, LLVMBuildNot(cg->b, LLVMBuildAShr(cg->b, bits, ic(cg, t, 31), ""), ""), "");
    LLVMValueRef nan = LLVMBuildICmp(cg->b, LLVMIntUGT, LLVMBuildShl(cg->b, bits, ic(cg, t, 1), ""), k, "");
    return LLVMBuildBitCast(cg->b, sel(cg, nan, bits, z), t, "relu");
  }
  return sel(cg, fcmp(cg, LLVMRealULE, x, fc(cg, t, 0.0)),
             sel(cg, is_nan(cg, x), x, fc(cg, t, 0.0)), x);
}

/* x > 0 ? x : x * slope (leaky_relu, prelu; NaN stays NaN). */
LLVMValueRef cg_prelu(CodeGen *cg, LLVMValueRef x, LLVMValueRef slope) {
  LLVMTypeRef t = LLVMTypeOf(x);
  return sel(cg, fcmp(cg, LLVMRealOGT, x, fc(cg, t, 0.0)), x, fmul(cg, x, slope));
}

/* relu6(x + 3), the factor of hardsigmoid and hardswish. */
static LLVMValueRef hard_gate(CodeGen *cg, LLVMValueRef x) {
  return clamp(cg, fadd(cg, x, fc(cg, LLVMTypeOf(x), 3.0)), 0.0, 6.0);
}

/* log(1 + e) for e >= 0 without losing e's low bits: log(u) * e / (u - 1)
 * with u = 1 + e rounded (the classic correction; exact e when u == 1). */
static LLVMValueRef log1p_pos(CodeGen *cg, LLVMValueRef e) {
  LLVMTypeRef t = LLVMTypeOf(e);
  LLVMValueRef u = fadd(cg, fc(cg, t, 1.0), e), d = fsub(cg, u, fc(cg, t, 1.0));
  LLVMValueRef r = LLVMBuildFDiv(cg->b, fmul(cg, cg_log(cg, u), e), d, "");
  return sel(cg, fcmp(cg, LLVMRealOEQ, d, fc(cg, t, 0.0)), e, r);
}

/* torch.nn.Softplus(beta, threshold=20): x where beta x > 20, else
 * log(1 + e^(beta x)) / beta (ONNX Softplus is beta = 1, no threshold:
 * the same to float rounding). */
static LLVMValueRef softplus(CodeGen *cg, LLVMValueRef x, double beta) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef bx = beta == 1 ? x : fmul(cg, x, fc(cg, t, beta));
  /* log(1 + e^bx) = max(bx, 0) + log(1 + e^-|bx|): no overflow */
  LLVMValueRef pos = sel(cg, fcmp(cg, LLVMRealOGT, bx, fc(cg, t, 0.0)), bx, fc(cg, t, 0.0));
  LLVMValueRef y = fadd(cg, pos, log1p_pos(cg, cg_exp(cg, LLVMBuildFNeg(cg->b, fabs_(cg, bx), ""))));
  if (beta != 1) y = LLVMBuildFDiv(cg->b, y, fc(cg, t, beta), "");
  return sel(cg, fcmp(cg, LLVMRealOGT, bx, fc(cg, t, 20.0)), x, y);
}

/* x ** p for a constant p, as torch.pow: integer powers by repeated
 * multiplication (exact for p = 2, as PyTorch special-cases), p = 0.5 as
 * sqrt and -0.5 as 1 / sqrt (PyTorch's rsqrt: (-0) ** -0.5 = -inf), others
 * as e^(p log x): NaN for x < 0 unless p is an integer, and (-inf) ** p is
 * inf or 0, as pow. */
static LLVMValueRef pow_const(CodeGen *cg, LLVMValueRef x, double p) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (p == 0.5) return cg_sqrt(cg, x);
  if (p == -0.5) return LLVMBuildFDiv(cg->b, fc(cg, t, 1.0), cg_sqrt(cg, x), "");
  if (p == (double)(int)p && p >= -64 && p <= 64) {
    int k = (int)(p < 0 ? -p : p);
    LLVMValueRef r = fc(cg, t, 1.0), b = x;
    for (bool first = true; k; k >>= 1) {
      if (k & 1) r = first ? b : fmul(cg, r, b), first = false;
      if (k > 1) b = fmul(cg, b, b);
    }
    return p < 0 ? LLVMBuildFDiv(cg->b, fc(cg, t, 1.0), r, "") : r;
  }
  /* integers beyond 64: |x| ** p, negative for odd p and negative x */
  bool integral = p == floor(p), odd = integral && fmod(p, 2) != 0;
  LLVMValueRef y = cg_exp(cg, fmul(cg, fc(cg, t, p), cg_log(cg, integral ? fabs_(cg, x) : x)));
  y = sel(cg, fcmp(cg, LLVMRealOEQ, x, fc(cg, t, -1.0 / 0.0)), fc(cg, t, p > 0 ? 1.0 / 0.0 : 0.0), y); /* as pow */
  y = sel(cg, is_zero(cg, x), fc(cg, t, p > 0 ? 0.0 : 1.0 / 0.0), y);
  return odd ? copysign_(cg, y, x) : y;
}

/* Each activation in the order of operations PyTorch's CPU kernels use,
 * so that results agree to rounding. */
LLVMValueRef cg_act(CodeGen *cg, const Act *act, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef half = fc(cg, t, 0.5), one = fc(cg, t, 1.0), six = fc(cg, t, 6.0);
  switch (act->kind) {
  case ACT_NONE: return x;
  case ACT_RELU: return relu(cg, x);
  case ACT_RELU6: return clamp(cg, x, 0.0, 6.0);
  case ACT_LEAKY_RELU: return cg_prelu(cg, x, fc(cg, t, act->alpha));
  case ACT_ELU:
    return sel(cg, fcmp(cg, LLVMRealOGT, x, fc(cg, t, 0.0)), x, fmul(cg, fc(cg, t, act->alpha), cg_expm1(cg, x)));
  case ACT_SIGMOID: return cg_sigmoid(cg, x);
  case ACT_TANH: return cg_tanh(cg, x);
  case ACT_HARDSIGMOID:
    if (act->alpha == 1.0f / 6 && act->beta == 0.5f) return LLVMBuildFDiv(cg->b, hard_gate(cg, x), six, "");
    return clamp(cg, fadd(cg, fmul(cg, fc(cg, t, act->alpha), x), fc(cg, t, act->beta)), 0.0, 1.0);
  case ACT_SELU: { /* scale * (x > 0 ? x : alpha * expm1(x)) */
    LLVMValueRef neg = fmul(cg, fc(cg, t, act->alpha), cg_expm1(cg, x));
    return fmul(cg, fc(cg, t, act->beta), sel(cg, fcmp(cg, LLVMRealOGT, x, fc(cg, t, 0.0)), x, neg));
  }
  case ACT_SOFTPLUS: return softplus(cg, x, act->alpha);
  case ACT_EXP: return cg_exp(cg, x);
  case ACT_NEG: return LLVMBuildFNeg(cg->b, x, "");
  case ACT_ABS: return fabs_(cg, x);
  case ACT_SQRT: return cg_sqrt(cg, x);
  case ACT_RECIPROCAL: return LLVMBuildFDiv(cg->b, one, x, "");
  case ACT_ERF: return cg_erf(cg, x);
  case ACT_POW: return pow_const(cg, x, act->alpha);
  case ACT_SCALE: {
    LLVMValueRef y = act->alpha == 1 ? x : fmul(cg, fc(cg, t, act->alpha), x);
    return act->beta == 0 ? y : fadd(cg, y, fc(cg, t, act->beta));
  }
  case ACT_HARDSWISH: return LLVMBuildFDiv(cg->b, fmul(cg, x, hard_gate(cg, x)), six, "");
  case ACT_SILU: return fmul(cg, x, cg_sigmoid(cg, x));
  case ACT_GELU: /* x * 0.5 * (1 + erf(x / sqrt 2)) */
    return fmul(cg, fmul(cg, x, half), fadd(cg, one, cg_erf(cg, fmul(cg, x, fc(cg, t, 0.70710678118654752440)))));
  case ACT_GELU_TANH: { /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    LLVMValueRef cube = fmul(cg, fmul(cg, x, x), x);
    LLVMValueRef inner = fmul(cg, fc(cg, t, 0.79788456080286535588), fadd(cg, x, fmul(cg, fc(cg, t, 0.044715), cube)));
    return fmul(cg, fmul(cg, half, x), fadd(cg, one, cg_tanh(cg, inner)));
  }
  case ACT_CLIP: return clamp(cg, x, act->alpha, act->beta);
  case ACT_PRELU: break; /* needs its weight: cg_prelu */
  case ACT_COUNT: break;
  }
  CNNC_UNREACHABLE();
}
