/*
 * cg_winograd.c: 3x3 stride-1 convolution by Winograd's F(4x4, 3x3).
 *
 * Each 4x4 output tile comes from a 6x6 input tile: Y = A^T [ sum_ic
 * (G g G^T) .* (B^T d B) ] A.  The weight transform U = G g G^T is done
 * at compile time (pack.c packs U as [36][OCB/ocb][IC][ocb*V]), so a
 * run does, per chunk of T tiles:
 *   1. input transform: B^T d B of every 6x6 tile, V channels at a time
 *      (vectors of the blocked layout), into TI[36][T][ICp];
 *   2. 36 independent GEMMs M[xi] = TI[xi] x U[xi]: the same register-
 *      blocked micro-kernel as the direct conv, with tiles in the role of
 *      output columns: ocb vector accumulators by owb tiles;
 *   3. output transform A^T M A, then bias, residual and activation, into
 *      the blocked output.
 * 36 multiply-adds per 16 outputs instead of 144: 4x fewer in the GEMM,
 * which dominates.  TI and M live in the kernel's scratch (Node.scratch,
 * placed by memplan), sized so that a chunk stays in L2, followed by X,
 * the 36 vectors a transform keeps between its passes, and on targets
 * with few registers (Schedule.at_use) D, 36 more, the tile a transform
 * reads (see lin).  Tiles that stick out of the input read zeros; tiles
 * past the last are computed on zeros and not stored.  Input channels are looped over only up to the
 * real count, so the don't-care tail lanes of the blocked input never
 * reach a result.
 *
 * Kernel arguments: (in, [residual], out, U, [bias], scratch), then for a
 * split layer the range [lo, hi) of tile chunks (each task its own
 * scratch slot) or of output-channel groups (every task transforms all
 * input tiles into its own scratch, multiplies and transforms back only
 * its channels) that it computes.
 */
#include "codegen.h"

enum { MAXACC = 32 };

/* Interpolation points 0, 1, -1, 1/2, -2 and infinity instead of the usual
 * 0, +-1, +-2: A^T then holds 1/2, 1/4, 1/8 where it held 2, 4, 8, which
 * halves the worst rounding error (simulated over 24,000 outputs of 64
 * channels: largest error 0.50 of the golden tolerance against 1.01 with
 * +-2; tools/fuzz_diff.py found outputs beyond tolerance with +-2).  BT
 * holds the matching coefficients; G (pack.c) is applied at compile time. */
static const double BT[6][6] = {{1, -1.5, -2, 1.5, 1, 0},  {0, -1, 0.5, 2.5, 1, 0},   {0, 1, -2.5, 0.5, 1, 0},
                                {0, -2, -1, 2, 1, 0},      {0, 0.5, -1, -0.5, 1, 0},  {0, 1, -1.5, -2, 1.5, 1}};
static const double AT[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5, -2, 0}, {0, 1, 1, 0.25, 4, 0}, {0, 1, -1, 0.125, -8, 1}};

typedef struct {
  const Node *n;
  int V, ocb, owb, T;
  int64_t C, H, W, OC, OH, OW, ICp, OCp, OCB, TW, ntiles;
  int pt, pl;
  bool at_use;   /* terms of the passes that read the scratch loaded where they are used (lin) */
  bool coef_gpr; /* coefficients in core registers (coef) */
  LLVMTypeRef vt;
  LLVMValueRef in, res, out, U, bias, TI, M, X; /* X: 36 vectors between a transform's passes */
  LLVMValueRef D; /* with at_use, 36 more: the input tile with its zeros, or the tile's M slots */
  LLVMValueRef acc[MAXACC];
  LLVMValueRef nn, t0;
  LLVMValueRef g_lo, g_hi; /* channel groups (of ocb blocks) this call computes */
} Wino;

/* The vector of coefficient a (> 0).  With MVE's 8 Q registers, LLVM
 * hoisted the coefficients' vectors out of the transform loops, 4 of them,
 * and the passes spilled (cortex-m55: 90 stack accesses in those loops).
 * There each use is an i32 made in a core register by an empty inline asm
 * with side effects, which nothing hoists or folds back into a vector
 * constant, so that the product is `mov.w r, #imm; vmul.f32 q, q, r`. */
static LLVMValueRef coef(CodeGen *cg, Wino *k, double a) {
  if (!k->coef_gpr) return cg_splat(cg, k->vt, cg_f32_at_use(cg, a));
  LLVMValueRef r = cg_asm_identity(cg, LLVMConstInt(cg->i32, cg_f32_bits(a), 0), "=r,0", true);
  return cg_splat(cg, k->vt, LLVMBuildBitCast(cg->b, r, cg->f32, ""));
}

/* Where lin finds term i: a vector already loaded (v) or one in memory
 * (base[off[i]]). */
typedef struct {
  LLVMValueRef *v;
  LLVMValueRef base;
  const int64_t *off;
} Terms;

/* Row i of the input column at col: zero where bit i of mask is clear (the
 * row or the column lies outside the input, or the tile is past the
 * last), and then read from index 0 instead. */
static LLVMValueRef input_row(CodeGen *cg, Wino *k, LLVMValueRef mask, LLVMValueRef col, int i) {
  LLVMValueRef bit = LLVMBuildAnd(cg->b, mask, LLVMConstInt(cg->i32, 1u << i, 0), "");
  LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntNE, bit, LLVMConstInt(cg->i32, 0, 0), "ok");
  LLVMValueRef idx = LLVMBuildSelect(cg->b, ok, cg_add(cg, col, cg_i64(cg, i * k->W * k->V)), cg_i64(cg, 0), "");
  return LLVMBuildSelect(cg->b, ok, cg_vload(cg, k->vt, k->in, idx), LLVMConstNull(k->vt), "d");
}

static LLVMValueRef term(CodeGen *cg, Wino *k, const Terms *t, int i) {
  if (t->v) return t->v[i];
  LLVMValueRef x = LLVMBuildLoad2(cg->b, k->vt, cg_gep_at_use(cg, t->base, t->off[i]), "");
  LLVMSetAlignment(x, 4);
  LLVMSetVolatile(x, 1);
  return x;
}

/* v into base[floats] (the offset made at use on Thumb-1). */
static void put(CodeGen *cg, LLVMValueRef v, LLVMValueRef base, int64_t floats) {
  cg_vstore(cg, v, cg_gep_at_use(cg, base, floats), cg_i64(cg, 0));
}

/* sum_i c[i] * term i, i < 6, with the constant coefficients folded in.
 *
 * Without an FPU every float operation is a libgcc call (an explicit one,
 * cg_soft_call), and values kept across the calls need callee-saved
 * registers that a pass's six inputs would take; with MVE's 8 Q registers
 * the six inputs and the products do not fit either.  There (k->at_use)
 * each term is loaded by a volatile load, which LLVM neither merges with
 * the other loads of the same vector nor moves across the calls (merged,
 * they were six values kept again): without an FPU just before its
 * product, on MVE with the other terms of the same output first.
 * Elsewhere the six inputs are loaded once (Terms.v). */
static LLVMValueRef lin(CodeGen *cg, Wino *k, const double *c, const Terms *t) {
  LLVMValueRef s = NULL, w[6];
  /* with an FPU, this output's terms are loaded first: the loads' latency hides behind one another */
  for (int i = 0; i < 6; i++) w[i] = c[i] != 0 && (t->v || !cg->soft_float) ? term(cg, k, t, i) : NULL;
  /* Thumb-1: a sum that starts with a positive term needs no negation,
   * whose sign bit and term LLVM kept across the next product's calls */
  int order[6], n = 0, first = -1;
  for (int i = 0; i < 6 && cg->thumb1; i++)
    if (c[i] > 0 && first < 0) first = i;
  if (first >= 0) order[n++] = first;
  for (int i = 0; i < 6; i++)
    if (i != first) order[n++] = i;
  for (int q = 0; q < 6; q++) {
    int i = order[q];
    if (c[i] == 0) continue;
    LLVMValueRef x = w[i] ? w[i] : term(cg, k, t, i);
    double a = c[i] < 0 ? -c[i] : c[i];
    if (a != 1) x = cg_fmul(cg, x, coef(cg, k, a));
    if (!s) s = c[i] < 0 ? cg_fneg_at_use(cg, x) : x;
    else s = c[i] < 0 ? cg_fsub(cg, s, x) : cg_fadd(cg, s, x);
  }
  return s ? s : LLVMConstNull(k->vt);
}

/* The terms base[off[i]]: loaded here once, or at each use (k->at_use). */
static Terms mem_terms(CodeGen *cg, Wino *k, LLVMValueRef *v, LLVMValueRef base, const int64_t *off) {
  if (k->at_use) return (Terms){.base = base, .off = off};
  for (int i = 0; i < 6; i++) v[i] = cg_vload(cg, k->vt, base, cg_i64(cg, off[i]));
  return (Terms){.v = v};
}

/* Thumb-1 (Armv6-M): r4-r7 are all a loop keeps across the soft-float
 * calls (the M3 has a few more, and uses the same passes), so each pass
 * below is a walk (cg_walk_begin) of at most two
 * pointers and its count, with the running sum the fourth; every offset
 * from a pointer is made at use (put, term).  A column pass needs one
 * pointer: D lies 36 vectors after X.  (With the loop's index, the
 * pointers' bases and the bias and residual kept, the passes had 2 to 15
 * stack accesses each.) */
enum { XD = 36 }; /* D - X, in vectors */

/* Column pass: X[i][j] = sum_r c[i][r] D[r][j], rows i < nout, j < 6. */
static void col_pass_walk(CodeGen *cg, Wino *k, const double (*c)[6], int nout) {
  int64_t step = (int64_t)k->V * 4, off[6];
  for (int i = 0; i < 6; i++) off[i] = (XD + 6 * i) * (int64_t)k->V;
  Walk w = cg_walk_begin(cg, "wcol", cg_i64(cg, 6), 1, &k->X, &step);
  Terms d = {.base = w.p[0], .off = off};
  for (int i = 0; i < nout; i++) put(cg, lin(cg, k, c[i], &d), w.p[0], (int64_t)i * 6 * k->V);
  cg_walk_end(cg, &w);
}

/* Input transform without an FPU (Thumb-1, and the M3 too): after the
 * copy into D, columns into X, then rows from X into the tile's TI slots
 * (tirow, T * ICp floats apart).  (Counted by an index on the M3, the row
 * pass kept a base on the stack, one reload per row in resnet18's
 * layer1.0.conv1 and layer2.0.conv2.) */
static void input_passes_walk(CodeGen *cg, Wino *k, LLVMValueRef tirow) {
  col_pass_walk(cg, k, BT, 6);
  LLVMValueRef start[2] = {k->X, tirow};
  int64_t step[2] = {6 * k->V * 4, 6 * k->T * k->ICp * 4}, xoff[6];
  for (int j = 0; j < 6; j++) xoff[j] = (int64_t)j * k->V;
  Walk w = cg_walk_begin(cg, "wrow", cg_i64(cg, 6), 2, start, step);
  Terms x = {.base = w.p[0], .off = xoff};
  for (int j = 0; j < 6; j++) put(cg, lin(cg, k, BT[j], &x), w.p[1], (int64_t)j * k->T * k->ICp);
  cg_walk_end(cg, &w);
}

/* Output transform of one channel block without an FPU (Thumb-1 and the
 * M3, whose row pass, counted by an index, reloaded its bound), after the
 * copy of its M slots into D.  The bias goes into slot (1, 1): column 1 of A^T is all
 * ones, so A^T m A adds it to every output, and no pass keeps it.  Rows
 * [0, rows), columns [0, cols) are stored; with a residual the row pass
 * writes D (4 x 4, its slots consumed by then), and a last walk adds the
 * residual, applies the activation and stores. */
static void out_passes_walk(CodeGen *cg, Wino *k, LLVMValueRef bias, LLVMValueRef rows, int cols, LLVMValueRef out0,
                            LLVMValueRef res0) {
  int64_t V = k->V, xoff[6], orow = k->OW * V * 4;
  if (bias) {
    LLVMValueRef d11 = cg_gep_at_use(cg, k->D, 7 * V);
    cg_vstore(cg, cg_fadd(cg, cg_vload(cg, k->vt, d11, cg_i64(cg, 0)), bias), d11, cg_i64(cg, 0));
  }
  col_pass_walk(cg, k, AT, 4);
  for (int j = 0; j < 6; j++) xoff[j] = (int64_t)j * V;
  LLVMValueRef start[3] = {k->X, res0 ? k->D : out0};
  int64_t step[3] = {6 * V * 4, res0 ? 4 * V * 4 : orow};
  Walk w = cg_walk_begin(cg, "wrow", rows, 2, start, step);
  Terms x = {.base = w.p[0], .off = xoff};
  for (int j = 0; j < cols; j++) {
    LLVMValueRef y = lin(cg, k, AT[j], &x);
    put(cg, res0 ? y : cg_act(cg, &k->n->act, y), w.p[1], (int64_t)j * V);
  }
  cg_walk_end(cg, &w);
  if (!res0) return;
  start[0] = k->D, start[1] = out0, start[2] = res0;
  step[0] = 4 * V * 4, step[1] = step[2] = orow;
  w = cg_walk_begin(cg, "wres", rows, 3, start, step);
  for (int j = 0; j < cols; j++) {
    LLVMValueRef y = cg_fadd(cg, cg_vload(cg, k->vt, w.p[0], cg_i64(cg, j * V)), cg_vload(cg, k->vt, w.p[2], cg_i64(cg, j * V)));
    put(cg, cg_act(cg, &k->n->act, y), w.p[1], j * V);
  }
  cg_walk_end(cg, &w);
}

/* Tile index -> tile row and column.  Without a divide instruction
 * (Armv6-M) by cg_udiv32: LLVM's division by the constant TW needed a
 * 32 x 32 -> 64-bit multiply there, libgcc's __aeabi_lmul, and the object
 * must need no libgcc but its float routines. */
static void tile_rc(CodeGen *cg, Wino *k, LLVMValueRef tile, LLVMValueRef *th, LLVMValueRef *tw) {
  if (cg->no_div) {
    LLVMValueRef q = cg_udiv32(cg, LLVMBuildTrunc(cg->b, tile, cg->i32, ""), LLVMConstInt(cg->i32, (unsigned)k->TW, 0));
    *th = LLVMBuildZExt(cg->b, q, cg->i64, "th");
  } else {
    *th = LLVMBuildUDiv(cg->b, tile, cg_i64(cg, k->TW), "th");
  }
  *tw = LLVMBuildSub(cg->b, tile, cg_mul(cg, *th, cg_i64(cg, k->TW)), "tw");
}

/* Tile index -> top-left input coordinates. */
static void tile_origin(CodeGen *cg, Wino *k, LLVMValueRef tile, LLVMValueRef *ih0, LLVMValueRef *iw0) {
  LLVMValueRef th, tw;
  tile_rc(cg, k, tile, &th, &tw);
  *ih0 = cg_muladd(cg, th, 4, cg_i64(cg, -k->pt));
  *iw0 = cg_muladd(cg, tw, 4, cg_i64(cg, -k->pl));
}

/* Index of slot xi (0..35) of tile t, channel block cb, in TI or M:
 * [36][T][rowlen]. */
static LLVMValueRef slot(CodeGen *cg, Wino *k, LLVMValueRef t, LLVMValueRef xi, int64_t rowlen, LLVMValueRef cb) {
  LLVMValueRef row = cg_muladd(cg, xi, k->T, t);
  return cg_add(cg, cg_mul(cg, row, cg_i64(cg, rowlen)), cg_mul(cg, cb, cg_i64(cg, k->V)));
}

/* Index of vector xi (0..35) in X. */
static LLVMValueRef xslot(CodeGen *cg, Wino *k, LLVMValueRef xi) { return cg_mul(cg, xi, cg_i64(cg, k->V)); }

/* 1. input transform of tile t0 + t, all channel blocks.  The 6x6
 * transform B^T d B is two rolled passes, columns (B^T d, into X) then
 * rows (. B, from X into the tile's TI slots), each holding 6 inputs and
 * its constants, instead of 72 vectors live at once (which spilled on
 * every target): the stack traffic the register allocator made is now
 * planned, through X, 36 contiguous vectors in L1.  (In place in TI, whose
 * slots lie T * ICp floats apart, often a multiple of 4 KiB, the same
 * loads and stores fell into one L1 set.)  With at_use a loop before them
 * copies the tile into D, its zeros included. */
static void input_transform(CodeGen *cg, Wino *k, LLVMValueRef t) {
  LLVMValueRef tile = cg_add(cg, k->t0, t), ih0, iw0;
  tile_origin(cg, k, tile, &ih0, &iw0);
  LLVMValueRef live = LLVMBuildICmp(cg->b, LLVMIntSLT, tile, cg_i64(cg, k->ntiles), "live");
  int64_t ICB = k->ICp / k->V;
  Loop lc = cg_for(cg, "icb", ICB);
  LLVMValueRef plane = cg_muladd(cg, k->nn, ICB, lc.iv);
  LLVMValueRef corner = cg_mul(cg, cg_muladd(cg, cg_muladd(cg, plane, k->H, ih0), k->W, iw0), cg_i64(cg, k->V));
  LLVMValueRef v[6];
  /* The rows of the tile inside the input as a 6-bit mask, none past the
   * last tile, one value kept across the column loop (six row indices
   * spilled there on x86-64, and two bounds still reloaded one on every
   * target but AArch64; the last-tile test in the loop kept the tile
   * index, two registers on a 32-bit core, and the M7 reloaded iw0). */
  LLVMValueRef zero = LLVMConstInt(cg->i32, 0, 0), rows = zero;
  for (int i = 0; i < 6; i++) {
    LLVMValueRef in = LLVMBuildZExt(cg->b, cg_in_range(cg, cg_add(cg, ih0, cg_i64(cg, i)), k->H), cg->i32, "");
    rows = LLVMBuildOr(cg->b, rows, LLVMBuildShl(cg->b, in, LLVMConstInt(cg->i32, (unsigned)i, 0), ""), "rows");
  }
  /* behind an empty asm: else LLVM folds the test back into the loop */
  rows = cg_asm_identity(cg, LLVMBuildSelect(cg->b, live, rows, zero, "rows"), "=r,0", false);
  Loop lj = cg_for(cg, "wcol", 6); /* tmp[.][j] = B^T d[.][j] */
  LLVMValueRef colok = cg_in_range(cg, cg_add(cg, iw0, lj.iv), k->W);
  LLVMValueRef mask = LLVMBuildSelect(cg->b, colok, rows, zero, "mask");
  LLVMValueRef col = cg_muladd(cg, lj.iv, k->V, corner);
  /* one base per pass and constant offsets from it: the addresses fold into the loads and stores */
  int64_t doff[6];
  for (int i = 0; i < 6; i++) doff[i] = (int64_t)i * 6 * k->V;
  Terms d = {.v = v};
  if (k->D) {
    /* few registers: the tile, zeros included, into D first, in a loop of
     * its own, then the column pass reads its terms from there (lin) */
    LLVMValueRef dcol = cg_gep(cg, k->D, xslot(cg, k, lj.iv), "dcol");
    for (int i = 0; i < 6; i++) cg_vstore(cg, input_row(cg, k, mask, col, i), dcol, cg_i64(cg, doff[i]));
    cg_loop_end_rolled(cg, &lj);
    if (cg->soft_float) {
      input_passes_walk(cg, k, cg_gep(cg, k->TI, slot(cg, k, t, cg_i64(cg, 0), k->ICp, lc.iv), "tirow"));
      cg_loop_end(cg, &lc);
      return;
    }
    lj = cg_for(cg, "wcol", 6);
    d = mem_terms(cg, k, v, cg_base_at_use(cg, cg_gep(cg, k->D, xslot(cg, k, lj.iv), "dcol")), doff);
  } else {
    for (int i = 0; i < 6; i++) v[i] = input_row(cg, k, mask, col, i);
  }
  LLVMValueRef xcol = cg_gep(cg, k->X, xslot(cg, k, lj.iv), "xcol");
  for (int i = 0; i < 6; i++) cg_vstore(cg, lin(cg, k, BT[i], &d), xcol, cg_i64(cg, doff[i]));
  cg_loop_end_rolled(cg, &lj);
  Loop li = cg_for(cg, "wrow", 6); /* r[i][.] = tmp[i][.] B */
  LLVMValueRef row = cg_mul(cg, li.iv, cg_i64(cg, 6));
  LLVMValueRef xrow = cg_gep(cg, k->X, xslot(cg, k, row), "xrow");
  LLVMValueRef tirow = cg_gep(cg, k->TI, slot(cg, k, t, row, k->ICp, lc.iv), "tirow");
  int64_t xoff[6];
  for (int j = 0; j < 6; j++) xoff[j] = (int64_t)j * k->V;
  Terms x = mem_terms(cg, k, v, xrow, xoff);
  for (int j = 0; j < 6; j++) {
    LLVMValueRef y = lin(cg, k, BT[j], &x);
    cg_vstore(cg, y, cg_gep_at_use(cg, tirow, (int64_t)j * k->T * k->ICp), cg_i64(cg, 0));
  }
  cg_loop_end_rolled(cg, &li);
  cg_loop_end(cg, &lc);
}

/* Opens the part `<kernel>.<suffix>` (cg_part_begin) over the Wino
 * fields ptr[0..np) and ints[0..ni) of k: their values in the kernel go
 * to args (for cg_part_end), and the fields become the part's parameters. */
static void part_begin(CodeGen *cg, Part *part, Wino *k, const char *suffix, LLVMValueRef **ptr, int np,
                       LLVMValueRef **ints, int ni, LLVMValueRef *args) {
  for (int i = 0; i < np + ni; i++) args[i] = *(i < np ? ptr[i] : ints[i - np]);
  size_t len;
  const char *name = LLVMGetValueName2(cg->fn, &len);
  cg_part_begin(cg, part, arena_printf(cg->arena, "%.*s.%s", (int)len, name, suffix), k->V, np, ni);
  for (int i = 0; i < np + ni; i++) *(i < np ? ptr[i] : ints[i - np]) = part->param[i];
}

/* 2. M[xi][t][oc] = sum_ic TI[xi][t][ic] * U[xi][ic][oc], for the channel
 * groups [g_lo, g_hi), in a function of its own (cg_part_begin): in the
 * kernel's, the transforms' coefficient vectors, hoisted to its entry,
 * stayed live across the GEMM's loop, and AVX-512's 4x6 step (29 of 32
 * registers) kept an accumulator on the stack (resnet18's layer1.0.conv1:
 * 2 stack accesses per multiply-add step). */
static void gemm(CodeGen *cg, const Wino *kernel) {
  Wino g = *kernel, *k = &g;
  LLVMValueRef *ptr[3] = {&k->TI, &k->U, &k->M}, *ints[2] = {&k->g_lo, &k->g_hi}, args[5];
  Part part;
  part_begin(cg, &part, k, "gemm", ptr, 3, ints, 2, args);
  for (int i = 0; i < k->ocb * k->owb; i++) k->acc[i] = cg_alloca(cg, k->vt, "acc");
  int64_t G = (int64_t)k->ocb * k->V, ngroups = k->OCB / k->ocb;
  Loop lx = cg_for(cg, "xi", 36);
  Loop lg = cg_loop_begin(cg, "ocg", k->g_lo, k->g_hi, 1);
  Loop lt = cg_loop_begin(cg, "tb", cg_i64(cg, 0), cg_i64(cg, k->T), k->owb);
  for (int i = 0; i < k->ocb * k->owb; i++) LLVMBuildStore(cg->b, LLVMConstNull(k->vt), k->acc[i]);
  LLVMValueRef tirow = cg_mul(cg, cg_muladd(cg, lx.iv, k->T, lt.iv), cg_i64(cg, k->ICp));
  LLVMValueRef ubase = cg_mul(cg, cg_muladd(cg, lx.iv, ngroups, lg.iv), cg_i64(cg, k->C * G));
  Loop lic = cg_for(cg, "ic", k->C);
  LLVMValueRef wv[4];
  LLVMValueRef urow = cg_add(cg, ubase, cg_mul(cg, lic.iv, cg_i64(cg, G)));
  for (int o = 0; o < k->ocb; o++) wv[o] = cg_vload(cg, k->vt, k->U, cg_add(cg, urow, cg_i64(cg, (int64_t)o * k->V)));
  LLVMValueRef xrow = cg_add(cg, tirow, lic.iv);
  for (int j = 0; j < k->owb; j++) {
    LLVMValueRef x = cg_splat(cg, k->vt, cg_load(cg, k->TI, cg_add(cg, xrow, cg_i64(cg, (int64_t)j * k->ICp)), "x"));
    for (int o = 0; o < k->ocb; o++) {
      LLVMValueRef p = k->acc[o * k->owb + j];
      LLVMBuildStore(cg->b, cg_fma(cg, wv[o], x, LLVMBuildLoad2(cg->b, k->vt, p, "")), p);
    }
  }
  cg_loop_end(cg, &lic);
  for (int o = 0; o < k->ocb; o++)
    for (int j = 0; j < k->owb; j++) {
      LLVMValueRef trow = cg_add(cg, cg_muladd(cg, lx.iv, k->T, lt.iv), cg_i64(cg, j));
      LLVMValueRef ob = cg_add(cg, cg_mul(cg, lg.iv, cg_i64(cg, k->ocb)), cg_i64(cg, o));
      LLVMValueRef idx = cg_add(cg, cg_mul(cg, trow, cg_i64(cg, k->OCp)), cg_mul(cg, ob, cg_i64(cg, k->V)));
      cg_vstore(cg, LLVMBuildLoad2(cg->b, k->vt, k->acc[o * k->owb + j], ""), k->M, idx);
    }
  cg_loop_end(cg, &lt);
  cg_loop_end(cg, &lg);
  cg_loop_end(cg, &lx);
  cg_part_end(cg, &part, args, 5);
}

/* 3. output transform of tile t0 + t, all output channel blocks: A^T m A
 * in two rolled passes like the input transform's, columns (A^T m, from
 * the M slots into X) then rows (. A from X, then bias, residual,
 * activation and the store).
 *
 * The row pass (out_rows). */
typedef struct {
  LLVMValueRef rows;       /* rows inside the output */
  LLVMValueRef bias;       /* the channel block's bias vector, or NULL */
  LLVMValueRef out0, res0; /* the tile's first output (and residual) */
  LLVMValueRef last_col;   /* whether the tile is in the last tile column */
  int cols;                /* the columns inside the output when known, or 0: 4, those past
                              OW % 4 computed unless last_col */
  LLVMValueRef *v;         /* room for 6 vectors */
} OutRows;

/* y[i][.] = tmp[i][.] A, from X, then bias, residual, activation and the
 * store, for rows [0, r->rows). */
static void out_rows(CodeGen *cg, Wino *k, const OutRows *r) {
  Loop li = cg_loop_begin(cg, "wrow", cg_i64(cg, 0), r->rows, 1);
  LLVMValueRef row = cg_mul(cg, li.iv, cg_i64(cg, 6));
  LLVMValueRef xrow = cg_gep(cg, k->X, xslot(cg, k, row), "xrow");
  int64_t xoff[6];
  for (int j = 0; j < 6; j++) xoff[j] = (int64_t)j * k->V;
  Terms x = mem_terms(cg, k, r->v, xrow, xoff);
  LLVMValueRef rowoff = cg_mul(cg, li.iv, cg_i64(cg, k->OW * k->V));
  LLVMValueRef outrow = cg_gep(cg, r->out0, rowoff, "outrow");
  LLVMValueRef resrow = r->res0 ? cg_gep(cg, r->res0, rowoff, "resrow") : NULL;
  for (int j = 0; j < (r->cols ? r->cols : 4); j++) {
    /* columns past the output's edge, in the last tile column */
    bool check = !r->cols && k->OW % 4 && j >= k->OW % 4;
    LLVMBasicBlockRef join = check ? cg_if_begin(cg, LLVMBuildNot(cg->b, r->last_col, ""), "in") : NULL;
    LLVMValueRef y = lin(cg, k, AT[j], &x);
    LLVMValueRef off = cg_i64(cg, (int64_t)j * k->V);
    if (r->bias) y = cg_fadd(cg, y, r->bias);
    if (k->res) y = cg_fadd(cg, y, cg_vload(cg, k->vt, resrow, off));
    cg_vstore(cg, cg_act(cg, &k->n->act, y), outrow, off);
    if (join) cg_if_end(cg, join);
  }
  cg_loop_end_rolled(cg, &li);
}

/* What the output transform of one tile needs (out_blocks). */
typedef struct {
  LLVMValueRef t, oh0, ow0, last_row, last_col;
  int cols; /* 0, or the tile's columns inside the output when they are known (OutRows.cols) */
} OutTile;

/* The output channel blocks of one tile: columns, then rows. */
static void out_blocks(CodeGen *cg, Wino *k, const OutTile *ot) {
  LLVMValueRef t = ot->t;
  Loop lo = cg_loop_begin(cg, "ob", cg_mul(cg, k->g_lo, cg_i64(cg, k->ocb)), cg_mul(cg, k->g_hi, cg_i64(cg, k->ocb)), 1);
  LLVMValueRef v[6];
  int64_t moff[6];
  int64_t doff[6]; /* column j's rows in X and D */
  for (int i = 0; i < 6; i++) moff[i] = (int64_t)i * 6 * k->T * k->OCp, doff[i] = (int64_t)i * 6 * k->V;
  if (k->D) {
    /* few registers: the tile's 36 slots, T * OCp floats apart in M, into
     * D first (their offsets took core registers in the column pass) */
    Loop lq = cg_for(cg, "mcol", 6);
    LLVMValueRef mcol = cg_gep(cg, k->M, slot(cg, k, t, lq.iv, k->OCp, lo.iv), "mcol");
    LLVMValueRef dcol = cg_gep(cg, k->D, xslot(cg, k, lq.iv), "dcol");
    for (int i = 0; i < 6; i++)
      cg_vstore(cg, cg_vload(cg, k->vt, mcol, cg_i64(cg, moff[i])), dcol, cg_i64(cg, doff[i]));
    cg_loop_end_rolled(cg, &lq);
  }
  if (cg->soft_float) {
    CNNC_ASSERT(k->D);
    LLVMValueRef bias = k->bias ? cg_vload(cg, k->vt, k->bias, cg_mul(cg, lo.iv, cg_i64(cg, k->V))) : NULL;
    LLVMValueRef rows = k->OH % 4 ? LLVMBuildSelect(cg->b, ot->last_row, cg_i64(cg, k->OH % 4), cg_i64(cg, 4), "rows")
                                  : cg_i64(cg, 4);
    LLVMValueRef plane = cg_muladd(cg, k->nn, k->OCB, lo.iv);
    LLVMValueRef idx0 = cg_mul(cg, cg_muladd(cg, cg_muladd(cg, plane, k->OH, ot->oh0), k->OW, ot->ow0), cg_i64(cg, k->V));
    out_passes_walk(cg, k, bias, rows, ot->cols ? ot->cols : 4, cg_gep(cg, k->out, idx0, "out0"),
                    k->res ? cg_gep(cg, k->res, idx0, "res0") : NULL);
    cg_loop_end(cg, &lo);
    return;
  }
  Loop lj = cg_for(cg, "wcol", 6); /* tmp[.][j] = A^T m[.][j] */
  LLVMValueRef xcol = cg_gep(cg, k->X, xslot(cg, k, lj.iv), "xcol");
  Terms m = k->D ? mem_terms(cg, k, v, cg_base_at_use(cg, cg_gep(cg, k->D, xslot(cg, k, lj.iv), "dcol")), doff)
                 : mem_terms(cg, k, v, cg_gep(cg, k->M, slot(cg, k, t, lj.iv, k->OCp, lo.iv), "mcol"), moff);
  for (int i = 0; i < 4; i++) cg_vstore(cg, lin(cg, k, AT[i], &m), xcol, cg_i64(cg, doff[i]));
  cg_loop_end_rolled(cg, &lj);
  LLVMValueRef bias = k->bias ? cg_vload(cg, k->vt, k->bias, cg_mul(cg, lo.iv, cg_i64(cg, k->V))) : NULL;
  LLVMValueRef plane = cg_muladd(cg, k->nn, k->OCB, lo.iv);
  /* the rows inside the output: all 4, or OH % 4 in the last tile row */
  LLVMValueRef rows = k->OH % 4 ? LLVMBuildSelect(cg->b, ot->last_row, cg_i64(cg, k->OH % 4), cg_i64(cg, 4), "rows")
                                : cg_i64(cg, 4);
  /* the tile's first output; its columns follow V floats apart, its rows OW * V */
  LLVMValueRef idx0 = cg_mul(cg, cg_muladd(cg, cg_muladd(cg, plane, k->OH, ot->oh0), k->OW, ot->ow0), cg_i64(cg, k->V));
  LLVMValueRef out0 = cg_gep(cg, k->out, idx0, "out0"), res0 = k->res ? cg_gep(cg, k->res, idx0, "res0") : NULL;
  OutRows r = {.rows = rows, .bias = bias, .out0 = out0, .res0 = res0, .last_col = ot->last_col, .cols = ot->cols, .v = v};
  out_rows(cg, k, &r);
  cg_loop_end(cg, &lo);
}

static void output_transform(CodeGen *cg, Wino *k, LLVMValueRef t) {
  LLVMValueRef tile = cg_add(cg, k->t0, t);
  LLVMBasicBlockRef skip = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, tile, cg_i64(cg, k->ntiles), ""), "live");
  LLVMValueRef th, tw;
  tile_rc(cg, k, tile, &th, &tw);
  OutTile ot = {.t = t, .oh0 = cg_mul(cg, th, cg_i64(cg, 4)), .ow0 = cg_mul(cg, tw, cg_i64(cg, 4)),
                .last_row = LLVMBuildICmp(cg->b, LLVMIntEQ, th, cg_i64(cg, (k->OH + 3) / 4 - 1), "lastrow"),
                .last_col = LLVMBuildICmp(cg->b, LLVMIntEQ, tw, cg_i64(cg, k->TW - 1), "lastcol")};
  if (k->at_use && k->OW % 4) {
    /* few registers: the channel blocks of a tile in the last tile column,
     * and of the others, apart, with no flag kept across the calls (the M3
     * reloaded it) */
    LLVMBasicBlockRef join = cg_if_begin(cg, ot.last_col, "lastcol");
    ot.cols = (int)(k->OW % 4);
    out_blocks(cg, k, &ot);
    cg_if_end(cg, join);
    join = cg_if_begin(cg, LLVMBuildNot(cg->b, ot.last_col, ""), "cols");
    ot.cols = 4;
    out_blocks(cg, k, &ot);
    cg_if_end(cg, join);
  } else {
    out_blocks(cg, k, &ot);
  }
  cg_if_end(cg, skip);
}

/* The input (1.) or the output (3.) transforms of a chunk's T tiles, in a
 * function of their own (cg_part_begin) with only the pointers and
 * counters they read: in the kernel's, the bases and counters of the
 * loops around them and of the other passes stayed live across their
 * loops, beyond the 14 core registers of an M4 (resnet18's layer1.0.conv2
 * and layer2.1.conv2: the output column pass reloaded a base, 1 stack
 * access per loop; walked, the input pass did, 3 and 4). */
static void transforms(CodeGen *cg, const Wino *kernel, bool input) {
  Wino g = *kernel, *k = &g;
  LLVMValueRef *ptr[6], *ints[4] = {&k->nn, &k->t0, &k->g_lo, &k->g_hi}, args[10];
  int np = 0, ni = input ? 2 : 4;
  if (input) {
    ptr[np++] = &k->in, ptr[np++] = &k->TI;
  } else {
    ptr[np++] = &k->out, ptr[np++] = &k->M;
    if (k->res) ptr[np++] = &k->res;
    if (k->bias) ptr[np++] = &k->bias;
  }
  ptr[np++] = &k->X;
  Part part;
  part_begin(cg, &part, k, input ? "in" : "out", ptr, np, ints, ni, args);
  if (k->D) k->D = cg_gep(cg, k->X, cg_i64(cg, 36 * k->V), "D");
  Loop lt = cg_for(cg, "t", k->T);
  if (input) input_transform(cg, k, lt.iv);
  else output_transform(cg, k, lt.iv);
  cg_loop_end(cg, &lt);
  cg_part_end(cg, &part, args, np + ni);
}

LLVMValueRef cg_winograd(CodeGen *cg, const Node *n) {
  const Node *x = &cg->g->nodes[n->in[0]];
  CNNC_ASSERT(x->layout == LAYOUT_NCHWC && n->layout == LAYOUT_NCHWC);
  Wino k = {.n = n, .V = n->cblock, .ocb = n->sched.tile_oc, .owb = n->sched.tile_ow, .T = n->sched.tile_oh,
            .C = x->shape.dim[1], .H = x->shape.dim[2], .W = x->shape.dim[3], .OC = n->shape.dim[1],
            .OH = n->shape.dim[2], .OW = n->shape.dim[3], .pt = n->a.conv.pad[0], .pl = n->a.conv.pad[1]};
  k.ICp = (k.C + k.V - 1) / k.V * k.V;
  k.at_use = n->sched.at_use;
  k.coef_gpr = k.at_use && !cg->soft_float && k.V > 1;
  k.OCp = (k.OC + k.V - 1) / k.V * k.V;
  k.OCB = k.OCp / k.V;
  k.TW = (k.OW + 3) / 4;
  k.ntiles = (k.OH + 3) / 4 * k.TW;
  CNNC_ASSERT(k.ocb * k.owb <= MAXACC && k.T % k.owb == 0 && k.OCB % k.ocb == 0);
  bool has_res = n->nin == 2, is_new;
  const char *key = arena_printf(cg->arena, "winograd in=%s out=%s p=%d,%d V=%d ocb=%d owb=%d T=%d u=%d b=%d res=%d act=%s",
                                 shape_str(cg->arena, &x->shape), shape_str(cg->arena, &n->shape), k.pt, k.pl, k.V, k.ocb,
                                 k.owb, k.T, k.at_use, n->bias != NULL, has_res, cg_act_key(cg, &n->act));
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.winograd_%s", cg->g->name, n->name),
                                    4 + has_res + (n->bias != NULL), &is_new);
  if (!is_new) return fn;
  cg_vector_attrs(cg, fn, k.V);
  unsigned a = 0;
  k.in = LLVMGetParam(fn, a++);
  k.res = has_res ? LLVMGetParam(fn, a++) : NULL;
  k.out = LLVMGetParam(fn, a++);
  k.U = LLVMGetParam(fn, a++);
  k.bias = n->bias ? LLVMGetParam(fn, a++) : NULL;
  LLVMValueRef scratch = LLVMGetParam(fn, a++);
  k.vt = LLVMVectorType(cg->f32, (unsigned)k.V);
  k.TI = scratch;
  k.M = cg_gep(cg, scratch, cg_i64(cg, 36 * k.T * k.ICp), "M");
  k.X = cg_gep(cg, scratch, cg_i64(cg, 36 * k.T * (k.ICp + k.OCp)), "X");
  k.D = k.at_use ? cg_gep(cg, k.X, cg_i64(cg, 36 * k.V), "D") : NULL; /* schedule_winograd sized it */

  /* a split layer runs tile chunks or channel groups [lo, hi) (schedule.c) */
  SplitDim split = n->sched.split;
  int64_t nchunks = (k.ntiles + k.T - 1) / k.T, ngroups = k.OCB / k.ocb;
  LLVMValueRef lo, hi;
  cg_split_range(cg, split == SPLIT_TILES ? nchunks : ngroups, &lo, &hi);
  CNNC_ASSERT(split == SPLIT_NONE || split == SPLIT_OC || split == SPLIT_TILES);
  k.g_lo = split == SPLIT_OC ? lo : cg_i64(cg, 0);
  k.g_hi = split == SPLIT_OC ? hi : cg_i64(cg, ngroups);
  LLVMValueRef c_lo = split == SPLIT_TILES ? cg_mul(cg, lo, cg_i64(cg, k.T)) : cg_i64(cg, 0);
  LLVMValueRef c_hi = split == SPLIT_TILES ? cg_smin(cg, cg_mul(cg, hi, cg_i64(cg, k.T)), cg_i64(cg, k.ntiles))
                                           : cg_i64(cg, k.ntiles);
  Loop ln = cg_for(cg, "n", x->shape.dim[0]);
  k.nn = ln.iv;
  Loop lc = cg_loop_begin(cg, "chunk", c_lo, c_hi, k.T);
  k.t0 = lc.iv;
  transforms(cg, &k, true);
  gemm(cg, &k);
  transforms(cg, &k, false);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}
