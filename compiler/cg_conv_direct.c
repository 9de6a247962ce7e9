/*
 * cg_conv_direct.c: register-blocked direct convolution on channel-blocked
 * tensors (NCHW<V>c, see layout.c), with explicit vector types and fma.
 *
 * Direct conv (groups = 1).  The micro-kernel keeps ocb x owb vector
 * accumulators in registers: ocb blocks of V output channels by owb
 * consecutive output columns of one row.  For each input channel and
 * kernel tap it loads ocb weight vectors (packed at compile time so that
 * they are contiguous) and broadcasts owb input values, then does ocb*owb
 * FMAs.  Broadcasting single input values means the input may be NCHW or
 * blocked: the first layer reads the caller's NCHW image directly.
 *
 * Depthwise conv (groups = C = OC).  Channels are the vector lanes, so the
 * micro-kernel is owb accumulators of one channel block; inputs and
 * weights are both vector loads.
 *
 * Borders without branches: the kernel row range [kh_lo, kh_hi) is
 * computed per output row; along a row, blocks whose taps all fall inside
 * the input ("interior") run in a loop with no checks, and the few border
 * blocks are emitted separately with their out-of-range taps dropped at
 * compile time (every shape is a constant here).
 *
 * Epilogue: bias, fused residual (conv with two inputs), activation.
 * Kernel arguments: (in, [residual], out, packed weight, [padded bias]),
 * then for a split layer the range [lo, hi) of output-channel groups or
 * output rows it computes (Schedule.split).
 *
 * Depthwise + 1x1 (fuse_dw.c): per strip of Schedule.tile_oh output rows,
 * the depthwise kernel writes those rows of its output, all channel blocks,
 * into scratch, and the 1x1 kernel reads the strip as a tile_oh-row image.
 * Arguments: (in, [residual], out, weight, [bias], depthwise weight,
 * [depthwise bias], scratch).
 */
#include "codegen.h"

enum { MAX_ACC = 32 };

typedef struct {
  const Node *n;
  bool dw;                 /* depthwise */
  bool in_blocked;         /* input layout NCHW<V>c */
  bool roll_kw;            /* the loop over a row's taps stays a loop (taps_rolled) */
  int V, ocb, owb;         /* vector lanes, oc blocks, columns per block */
  int ocn;                 /* oc blocks of the group being emitted: ocb, or fewer in the
                              last group when ocb does not divide OCB */
  int64_t C, H, W;         /* input */
  int64_t OC, OH, OW, OCB; /* output; OCB = output channel blocks */
  int KH, KW, sh, sw, pt, pl, dh, dw_;
  LLVMTypeRef vt;          /* <V x float> */
  LLVMValueRef in, res, out, w, bias; /* kernel arguments */
  LLVMValueRef acc[MAX_ACC];          /* allocas, [o * owb + j] */
  /* Thumb-1, inside block_direct's channel walk: the current channel's
     input plane and weights (NULL elsewhere: indices from k->in, k->w) */
  LLVMValueRef cin, cw;
  /* per row, set in the row loop */
  LLVMValueRef nn, grp, oh, kh_lo, kh_hi;
  /* where results go: image onn, row ooh of OHo rows (normally nn, oh, OH) */
  LLVMValueRef onn, ooh;
  int64_t OHo;
} Conv;

/* Valid kernel rows for output row oh: kh with 0 <= oh*sh - pt + kh*dh < H. */
static void row_range(CodeGen *cg, Conv *k) {
  bool all_inside = k->pt == 0 && (k->OH - 1) * k->sh + (int64_t)(k->KH - 1) * k->dh < k->H;
  if (all_inside) {
    k->kh_lo = cg_i64(cg, 0);
    k->kh_hi = cg_i64(cg, k->KH);
    return;
  }
  LLVMValueRef ih0 = cg_muladd(cg, k->oh, k->sh, cg_i64(cg, -k->pt));
  /* kh_lo = ceil(-ih0 / dh) clamped at 0; kh_hi = ceil((H - ih0) / dh) clamped at KH */
  LLVMValueRef neg = LLVMBuildSub(cg->b, cg_i64(cg, k->dh - 1), ih0, "");
  LLVMValueRef lo = cg_smax(cg, LLVMBuildSDiv(cg->b, cg_smax(cg, neg, cg_i64(cg, 0)), cg_i64(cg, k->dh), ""), cg_i64(cg, 0));
  LLVMValueRef rem = LLVMBuildSub(cg->b, cg_i64(cg, k->H + k->dh - 1), ih0, "");
  LLVMValueRef hi = cg_smin(cg, LLVMBuildSDiv(cg->b, cg_smax(cg, rem, cg_i64(cg, 0)), cg_i64(cg, k->dh), ""), cg_i64(cg, k->KH));
  k->kh_lo = lo;
  k->kh_hi = hi;
}

/* Index of input element (channel c, row ih, column iw) of image nn. */
static LLVMValueRef in_index(CodeGen *cg, Conv *k, LLVMValueRef c, LLVMValueRef ih, LLVMValueRef iw) {
  if (!k->in_blocked)
    return cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, k->nn, k->C, c), k->H, ih), k->W, iw);
  int64_t CB = (k->C + k->V - 1) / k->V;
  LLVMValueRef cb = LLVMBuildLShr(cg->b, c, cg_i64(cg, __builtin_ctz((unsigned)k->V)), "cb");
  LLVMValueRef lane = LLVMBuildAnd(cg->b, c, cg_i64(cg, k->V - 1), "lane");
  LLVMValueRef pix = cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, k->nn, CB, cb), k->H, ih), k->W, iw);
  return cg_muladd(cg, pix, k->V, lane);
}

/* The loop over kernel rows stays a loop on every target.  Where the
 * reduction is short (the first layer's few input channels read from the
 * NCHW image; depthwise, which has none), LLVM unrolled it (and the
 * channel loop) completely; the weights of every tap were then invariant
 * in the row loop and hoisted out of it, more vectors than there are
 * registers, and every block reloaded them from the stack.  Unrolled on a
 * blocked input, the rows' pointers and taps outlived the registers: the
 * stride-2 3x3 layers of resnet18 and resnet50 had 994 and more stack
 * accesses in their inner loops on AVX2, none rolled (with the taps of a
 * stride > 1 rolled too, Conv.roll_kw), and the rolled kernels took 0.94
 * to 0.96 of resnet18's time and 0.98 of resnet50's (timed alternately
 * with the unrolled ones on one core, 2026-12-01).  Both kh loops
 * (channel_taps, block_depthwise) end with cg_loop_end_rolled. */

/* A load of `base[idx]` (a vector of k->vt, or a float when !vec): on
 * Thumb-1, where base may be a walk's pointer outside its buffer
 * (cg_gep_wrap), without inbounds. */
static LLVMValueRef xload(CodeGen *cg, const Conv *k, bool vec, LLVMValueRef base, LLVMValueRef idx) {
  if (!cg->thumb1) return vec ? cg_vload(cg, k->vt, base, idx) : cg_load(cg, base, idx, "x");
  LLVMValueRef l = LLVMBuildLoad2(cg->b, vec ? k->vt : cg->f32, cg_gep_wrap(cg, base, idx), "x");
  LLVMSetAlignment(l, 4);
  return l;
}

static void acc_init(CodeGen *cg, Conv *k, int width) {
  for (int o = 0; o < k->ocn; o++) {
    LLVMValueRef init = LLVMConstNull(k->vt);
    if (k->bias) {
      LLVMValueRef ob = cg_add(cg, cg_mul(cg, k->grp, cg_i64(cg, k->ocb)), cg_i64(cg, o));
      init = cg_vload(cg, k->vt, k->bias, cg_mul(cg, ob, cg_i64(cg, k->V)));
    }
    for (int j = 0; j < width; j++) LLVMBuildStore(cg->b, init, k->acc[o * k->owb + j]);
  }
}

static void acc_fma(CodeGen *cg, Conv *k, int o, int j, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef p = k->acc[o * k->owb + j];
  LLVMBuildStore(cg->b, cg_fma(cg, a, b, LLVMBuildLoad2(cg->b, k->vt, p, "")), p);
}

/* Whether tap kw of column ow0 + j reads inside the input (static ow0). */
static bool col_inside(const Conv *k, int64_t ow0, int j, int kw) {
  int64_t iw = (ow0 + j) * k->sw - k->pl + (int64_t)kw * k->dw_;
  return iw >= 0 && iw < k->W;
}

/* The taps of one kernel row in a rolled kw loop (Conv.roll_kw): column j
 * of tap kw reads input column iw0 + j*sw + kw*dw, a different address in
 * every iteration, where unrolled taps share them (column j+1 of tap kw is
 * column j of tap kw+1 at stride 1), and LLVM kept the shared inputs live
 * across taps, beyond the registers.  Direct: ocn weight vectors and a
 * broadcast input per column; depthwise: one weight vector and an input
 * vector per column.
 *
 * A border block (static_ow0 >= 0) splits the taps into runs [a, b) over
 * which the same columns read inside the input (every column's inside
 * range is known at compile time), one rolled loop per run, each with the
 * multiply-adds of its columns only: the taps outside are dropped, as the
 * unrolled taps drop them.  Guarded in the loop instead (a select of zero,
 * or a branch without an FPU), they cost what the step had no register
 * for: the guard's zero and compare, the loads LLVM hoisted above the
 * branch, the accumulator of a guarded column kept on the stack (measured
 * on resnet18's 7x7 stem and 3x3 border blocks: 2 stack accesses per loop
 * on SSE2, AVX2 and the M0+, 4 on the M3). */
static void taps_run(CodeGen *cg, Conv *k, LLVMValueRef xb, LLVMValueRef rowx, LLVMValueRef wb, LLVMValueRef wrow,
                     int a, int b, const bool *active, int width) {
  int64_t G = k->dw ? k->V : (int64_t)k->ocb * k->V, xstride = k->in_blocked ? k->V : 1;
  int64_t xstep = k->dw_ * xstride;
  int nw = k->dw ? 1 : k->ocn;
  rowx = cg_add(cg, rowx, cg_i64(cg, a * xstep));
  wrow = cg_add(cg, wrow, cg_i64(cg, a * G));
  /* Without an FPU the taps walk a pointer into the row and one into the
   * weights (cg_walk_begin), and the loop keeps those, its count and the
   * accumulators in the registers the soft-float calls leave alone (r4-r7
   * on Thumb-1; on the M3, counted by an index, LLVM gave each column a
   * pointer of its own and kept an accumulator on the stack: 2 stack
   * accesses per loop in Fashion-MNIST's conv2).
   *
   * A run of a border block walks on every target, its pointers hidden
   * (Walk.hide) and its count too.  Knowing a count of one, LLVM
   * dissolved the run's loop into the kernel-row loop, where the runs of a
   * block together held more inputs than the registers (a 16-column
   * depthwise block on NEON: 3 one-tap runs, 7 stack accesses); seeing the
   * addresses, it kept the inputs a tap shares with the next one (column j
   * + 1 of tap kw is column j of tap kw + 1) in registers across the back
   * edge, a chain of copies one vector too long (mobilenet_v2's first
   * depthwise layer on NEON, 2, and the M55, 1).  An index hidden instead
   * cost the M7 the pointers LLVM made of it (2).
   *
   * An interior run of two taps counts to a hidden count: knowing it,
   * LLVM made the counter a flag and the accumulators' phis copies, two
   * vectors more than the step's registers (measured on AVX2, resnet18's
   * stem and 3x3 layers on the NCHW input: 2 stack accesses per loop). */
  bool border = b - a < k->KW, walk = cg->soft_float || border;
  LLVMValueRef n = cg_i64(cg, b - a);
  if (!cg->soft_float && (border || b - a == 2)) n = cg_asm_identity(cg, n, "=r,0", false);
  Walk wk = {0};
  Loop lkw = {0};
  LLVMValueRef wtap, tapx;
  if (walk) {
    LLVMValueRef start[2] = {cg_gep_wrap(cg, xb, rowx), cg_gep_wrap(cg, wb, wrow)};
    int64_t step[2] = {xstep * 4, G * 4};
    wk = cg_walk_begin(cg, "kw", n, 2, start, step);
    wk.hide |= !cg->soft_float;
    xb = wk.p[0], wb = wk.p[1], wtap = tapx = cg_i64(cg, 0);
  } else {
    lkw = cg_loop_begin(cg, "kw", cg_i64(cg, 0), n, 1);
    wtap = cg_add(cg, wrow, cg_mul(cg, lkw.iv, cg_i64(cg, G)));
    tapx = cg_add(cg, rowx, cg_mul(cg, lkw.iv, cg_i64(cg, xstep)));
  }
  LLVMValueRef wv[4];
  for (int o = 0; o < nw; o++) wv[o] = xload(cg, k, true, wb, cg_add(cg, wtap, cg_i64(cg, o * k->V)));
  for (int j = 0; j < width; j++) {
    if (!active[j]) continue;
    LLVMValueRef x = xload(cg, k, k->dw, xb, cg_add(cg, tapx, cg_i64(cg, (int64_t)j * k->sw * xstride)));
    if (!k->dw) x = cg_splat(cg, k->vt, x);
    for (int o = 0; o < nw; o++) acc_fma(cg, k, o, j, wv[o], x);
  }
  if (walk) cg_walk_end(cg, &wk);
  else cg_loop_end_rolled(cg, &lkw);
}

static void taps_rolled(CodeGen *cg, Conv *k, LLVMValueRef xb, LLVMValueRef rowx, LLVMValueRef wb, LLVMValueRef wrow,
                        int64_t static_ow0, int width) {
  bool active[MAX_ACC];
  if (static_ow0 < 0) { /* interior: every column reads inside at every tap */
    for (int j = 0; j < width; j++) active[j] = true;
    taps_run(cg, k, xb, rowx, wb, wrow, 0, k->KW, active, width);
    return;
  }
  /* each column's taps inside the input are one range: iw grows with kw */
  int a = 0;
  while (a < k->KW) {
    int b = k->KW;
    bool any = false;
    for (int j = 0; j < width; j++) {
      active[j] = col_inside(k, static_ow0, j, a);
      any |= active[j];
      /* the run ends where some column enters or leaves the input */
      for (int t = a + 1; t < b; t++)
        if (col_inside(k, static_ow0, j, t) != active[j]) b = t;
    }
    if (any) taps_run(cg, k, xb, rowx, wb, wrow, a, b, active, width);
    a = b;
  }
}

/* The taps of input channel c (channel block cb, lane `lane` when the
 * input is blocked; NULL otherwise) for one block. */
static void channel_taps(CodeGen *cg, Conv *k, LLVMValueRef c, LLVMValueRef cb, LLVMValueRef lane, LLVMValueRef ow0,
                         int64_t static_ow0, int width) {
  int64_t G = (int64_t)k->ocb * k->V, taps = (int64_t)k->KH * k->KW;
  LLVMValueRef xb = k->cin ? k->cin : k->in, wb = k->cw ? k->cw : k->w; /* what rowx and wrow index */
  LLVMValueRef wic = k->cw ? cg_i64(cg, 0) : cg_mul(cg, cg_muladd(cg, k->grp, k->C, c), cg_i64(cg, taps * G));
  Loop lkh = cg_loop_begin(cg, "kh", k->kh_lo, k->kh_hi, 1);
  LLVMValueRef ih = cg_add(cg, cg_muladd(cg, k->oh, k->sh, cg_i64(cg, -k->pt)), cg_mul(cg, lkh.iv, cg_i64(cg, k->dh)));
  LLVMValueRef iw0 = cg_muladd(cg, ow0, k->sw, cg_i64(cg, -k->pl));
  LLVMValueRef rowx; /* index of column iw0 */
  if (k->cin) {
    rowx = cg_mul(cg, lkh.iv, cg_i64(cg, k->dh * k->W)); /* from the walk's pixel (ih - kh dh, iw0) */
  } else if (cb) {
    int64_t CB = (k->C + k->V - 1) / k->V;
    LLVMValueRef pix = cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, k->nn, CB, cb), k->H, ih), k->W, iw0);
    rowx = cg_muladd(cg, pix, k->V, lane);
  } else {
    rowx = in_index(cg, k, c, ih, iw0);
  }
  int64_t xstride = k->in_blocked ? k->V : 1;
  LLVMValueRef wrow = cg_add(cg, wic, cg_mul(cg, lkh.iv, cg_i64(cg, k->KW * G)));
  if (k->roll_kw) {
    taps_rolled(cg, k, xb, rowx, wb, wrow, static_ow0, width);
  } else {
    for (int kw = 0; kw < k->KW; kw++) {
      LLVMValueRef wv[4];
      for (int o = 0; o < k->ocn; o++) wv[o] = xload(cg, k, true, wb, cg_add(cg, wrow, cg_i64(cg, kw * G + o * k->V)));
      for (int j = 0; j < width; j++) {
        if (static_ow0 >= 0 && !col_inside(k, static_ow0, j, kw)) continue;
        int64_t off = ((int64_t)j * k->sw + (int64_t)kw * k->dw_) * xstride;
        LLVMValueRef x = cg_splat(cg, k->vt, xload(cg, k, false, xb, cg_add(cg, rowx, cg_i64(cg, off))));
        for (int o = 0; o < k->ocn; o++) acc_fma(cg, k, o, j, wv[o], x);
      }
    }
  }
  cg_loop_end_rolled(cg, &lkh); /* kernel rows stay a loop (the note before acc_init) */
}

/* Accumulates one block of `width` columns starting at ow0 (dynamic
 * value) over input channels [ic_lo, ic_hi); static_ow0 >= 0 when the
 * block is a border block at that column (then out-of-range taps are
 * dropped), -1 for interior blocks.
 *
 * The channel loop is never unrolled: the step fits the registers
 * (schedule.c counts them), and unrolled channels only interleave steps
 * beyond them; a short channel loop unrolled completely made every weight
 * invariant in the column loop, hoisted out of it and kept on the stack
 * (measured: mobilenet_v2's 16-channel 1x1 convs, 34 stack accesses per
 * block on AVX2; unrolled twice, SSE2's spills grew from 120 to 383).  A
 * blocked input's channels run as blocks of V lanes, lanes inside, so
 * that the input index is a pointer increment instead of a shift, a mask
 * and two multiplies per channel (chunks of a long reduction start on a
 * block: chunk_channels). */
static void block_direct(CodeGen *cg, Conv *k, LLVMValueRef ow0, int64_t static_ow0, int width, LLVMValueRef ic_lo,
                         LLVMValueRef ic_hi) {
  /* One lane on a 32-bit core: walk the channels' planes and weights
   * (cg_walk_begin), a count and two pointers.  Counted by an index, the
   * loop kept the index, the input's base, the weights' pointer and the
   * bound, and the M4 reloaded the base once per channel (resnet18's
   * layer3.0.downsample.0, a 1x1 conv with the residual add). */
  if (k->V == 1 && cg->index32) {
    int64_t taps = (int64_t)k->KH * k->KW;
    LLVMValueRef ih0 = cg_muladd(cg, k->oh, k->sh, cg_i64(cg, -k->pt)), iw0 = cg_muladd(cg, ow0, k->sw, cg_i64(cg, -k->pl));
    LLVMValueRef start[2] = {cg_gep_wrap(cg, k->in, in_index(cg, k, ic_lo, ih0, iw0)),
                             cg_gep(cg, k->w, cg_mul(cg, cg_muladd(cg, k->grp, k->C, ic_lo), cg_i64(cg, taps * k->ocb)), "")};
    int64_t step[2] = {k->H * k->W * 4, taps * k->ocb * 4};
    Walk wc = cg_walk_begin(cg, "ic", LLVMBuildSub(cg->b, ic_hi, ic_lo, ""), 2, start, step);
    k->cin = wc.p[0], k->cw = wc.p[1];
    channel_taps(cg, k, NULL, NULL, NULL, ow0, static_ow0, width);
    k->cin = k->cw = NULL;
    cg_walk_end(cg, &wc);
    return;
  }
  if (!k->in_blocked || k->V == 1) {
    Loop lic = cg_loop_begin(cg, "ic", ic_lo, ic_hi, 1);
    channel_taps(cg, k, lic.iv, NULL, NULL, ow0, static_ow0, width);
    cg_loop_end_rolled(cg, &lic);
    return;
  }
  LLVMValueRef V = cg_i64(cg, k->V);
  LLVMValueRef cb_lo = LLVMBuildUDiv(cg->b, ic_lo, V, "");
  LLVMValueRef cb_hi = LLVMBuildUDiv(cg->b, cg_add(cg, ic_hi, cg_i64(cg, k->V - 1)), V, "");
  Loop lcb = cg_loop_begin(cg, "icb", cb_lo, cb_hi, 1);
  LLVMValueRef c0 = cg_mul(cg, lcb.iv, V);
  Loop ll = cg_loop_begin(cg, "lane", cg_i64(cg, 0), cg_smin(cg, LLVMBuildSub(cg->b, ic_hi, c0, ""), V), 1);
  channel_taps(cg, k, cg_add(cg, c0, ll.iv), lcb.iv, ll.iv, ow0, static_ow0, width);
  cg_loop_end_rolled(cg, &ll);
  cg_loop_end(cg, &lcb);
}

static void block_depthwise(CodeGen *cg, Conv *k, LLVMValueRef ow0, int64_t static_ow0, int width) {
  int64_t taps = (int64_t)k->KH * k->KW;
  Loop lkh = cg_loop_begin(cg, "kh", k->kh_lo, k->kh_hi, 1);
  LLVMValueRef ih = cg_add(cg, cg_muladd(cg, k->oh, k->sh, cg_i64(cg, -k->pt)), cg_mul(cg, lkh.iv, cg_i64(cg, k->dh)));
  LLVMValueRef iw0 = cg_muladd(cg, ow0, k->sw, cg_i64(cg, -k->pl));
  LLVMValueRef c0 = cg_mul(cg, k->grp, cg_i64(cg, k->V));
  LLVMValueRef rowx = in_index(cg, k, c0, ih, iw0);
  LLVMValueRef wrow = cg_mul(cg, cg_muladd(cg, k->grp, taps, cg_mul(cg, lkh.iv, cg_i64(cg, k->KW))), cg_i64(cg, k->V));
  if (k->roll_kw) {
    taps_rolled(cg, k, k->in, rowx, k->w, wrow, static_ow0, width);
  } else {
    for (int kw = 0; kw < k->KW; kw++) {
      LLVMValueRef wv = cg_vload(cg, k->vt, k->w, cg_add(cg, wrow, cg_i64(cg, (int64_t)kw * k->V)));
      for (int j = 0; j < width; j++) {
        if (static_ow0 >= 0 && !col_inside(k, static_ow0, j, kw)) continue;
        int64_t off = ((int64_t)j * k->sw + (int64_t)kw * k->dw_) * k->V;
        acc_fma(cg, k, 0, j, wv, cg_vload(cg, k->vt, k->in, cg_add(cg, rowx, cg_i64(cg, off))));
      }
    }
  }
  cg_loop_end_rolled(cg, &lkh); /* kernel rows stay a loop (the note before acc_init) */
}

/* Stores the accumulators: plus what `out` already holds when `add_out`
 * (a later chunk of input channels), and with the residual and the
 * activation when `final`. */
static void acc_store(CodeGen *cg, Conv *k, LLVMValueRef ow0, int width, bool add_out, bool final) {
  for (int o = 0; o < k->ocn; o++) {
    LLVMValueRef ob = cg_add(cg, cg_mul(cg, k->grp, cg_i64(cg, k->ocb)), cg_i64(cg, o));
    LLVMValueRef row = cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, k->onn, k->OCB, ob), k->OHo, k->ooh), k->OW, ow0);
    for (int j = 0; j < width; j++) {
      LLVMValueRef idx = cg_mul(cg, cg_add(cg, row, cg_i64(cg, j)), cg_i64(cg, k->V));
      LLVMValueRef v = LLVMBuildLoad2(cg->b, k->vt, k->acc[o * k->owb + j], "");
      if (add_out) v = LLVMBuildFAdd(cg->b, cg_vload(cg, k->vt, k->out, idx), v, "part");
      if (final && k->res) v = LLVMBuildFAdd(cg->b, v, cg_vload(cg, k->vt, k->res, idx), "res");
      cg_vstore(cg, final ? cg_act(cg, &k->n->act, v) : v, k->out, idx);
    }
  }
}

static void acc_zero(CodeGen *cg, Conv *k, int width) {
  for (int i = 0; i < k->ocn; i++)
    for (int j = 0; j < width; j++) LLVMBuildStore(cg->b, LLVMConstNull(k->vt), k->acc[i * k->owb + j]);
}

/* Input channels per chunk of a long reduction (0: no chunks). */
static int64_t chunk_channels(const Conv *k) {
  int64_t taps = (int64_t)k->KH * k->KW;
  if (k->dw || k->C * taps <= CG_LONG_REDUCTION) return 0;
  int64_t per = CG_LONG_REDUCTION / 4 / taps / k->V * k->V; /* whole channel blocks */
  return per < k->V ? k->V : per;
}

/* A direct conv whose reduction (C x KH x KW) is long: input channels in
 * chunks, each summed from zero in the registers and added to what the
 * chunks before it left in the output, so that rounding grows with the
 * chunk length plus the number of chunks, not with C x KH x KW. */
static void block_chunked(CodeGen *cg, Conv *k, LLVMValueRef ow0, int64_t static_ow0, int width, int64_t chunk) {
  int64_t last = (k->C - 1) / chunk * chunk; /* first channel of the last chunk */
  acc_init(cg, k, width);
  block_direct(cg, k, ow0, static_ow0, width, cg_i64(cg, 0), cg_i64(cg, chunk));
  acc_store(cg, k, ow0, width, false, false);
  if (last > chunk) {
    Loop lc = cg_loop_begin(cg, "icc", cg_i64(cg, chunk), cg_i64(cg, last), chunk);
    acc_zero(cg, k, width);
    block_direct(cg, k, ow0, static_ow0, width, lc.iv, cg_add(cg, lc.iv, cg_i64(cg, chunk)));
    acc_store(cg, k, ow0, width, true, false);
    cg_loop_end(cg, &lc);
  }
  acc_zero(cg, k, width);
  block_direct(cg, k, ow0, static_ow0, width, cg_i64(cg, last), cg_i64(cg, k->C));
  acc_store(cg, k, ow0, width, true, true);
}

static void block(CodeGen *cg, Conv *k, LLVMValueRef ow0, int64_t static_ow0, int width) {
  int64_t chunk = chunk_channels(k);
  if (chunk) {
    block_chunked(cg, k, ow0, static_ow0, width, chunk);
    return;
  }
  acc_init(cg, k, width);
  if (k->dw) block_depthwise(cg, k, ow0, static_ow0, width);
  else block_direct(cg, k, ow0, static_ow0, width, cg_i64(cg, 0), cg_i64(cg, k->C));
  acc_store(cg, k, ow0, width, false, true);
}

static bool block_interior(const Conv *k, int64_t ow0, int width) {
  for (int kw = 0; kw < k->KW; kw++)
    for (int j = 0; j < width; j++)
      if (!col_inside(k, ow0, j, kw)) return false;
  return true;
}

/* `count` blocks of `width` columns from column `start`: border blocks
 * unrolled, interior blocks in a loop. */
static void segment(CodeGen *cg, Conv *k, int64_t start, int width, int64_t count) {
  int64_t lo = 0, hi = count; /* interior blocks [lo, hi) */
  while (lo < hi && !block_interior(k, start + lo * width, width)) lo++;
  while (hi > lo && !block_interior(k, start + (hi - 1) * width, width)) hi--;
  if (hi - lo < 2) lo = hi = count; /* not worth a loop */
  for (int64_t b = 0; b < lo; b++) block(cg, k, cg_i64(cg, start + b * width), start + b * width, width);
  if (hi > lo) {
    Loop lb = cg_loop_begin(cg, "owb", cg_i64(cg, start + lo * width), cg_i64(cg, start + hi * width), width);
    block(cg, k, lb.iv, -1, width);
    if (cg->thumb1) cg_loop_end_rolled(cg, &lb);
    else cg_loop_end(cg, &lb);
  }
  for (int64_t b = hi; b < count; b++) block(cg, k, cg_i64(cg, start + b * width), start + b * width, width);
}

/* One output row in nblk = ceil(OW / owb) blocks as even as possible:
 * some of owb columns, the rest of owb - 1 (56 columns with owb 6 are six
 * blocks of 6 and four of 5, not nine of 6 and one of 2). */
static void row(CodeGen *cg, Conv *k) {
  int64_t nblk = (k->OW + k->owb - 1) / k->owb;
  int64_t nwide = k->owb == 1 ? nblk : k->OW - (int64_t)(k->owb - 1) * nblk;
  segment(cg, k, 0, k->owb, nwide);
  if (nblk > nwide) segment(cg, k, nwide * k->owb, k->owb - 1, nblk - nwide);
}

static const char *direct_key(CodeGen *cg, const Conv *k) {
  const ConvAttr *c = &k->n->a.conv;
  return arena_printf(cg->arena,
                      "conv direct dw=%d in=%s inl=%d out=%s k=%dx%d s=%dx%d p=%d,%d d=%dx%d V=%d ocb=%d owb=%d "
                      "b=%d res=%d act=%s ro=%d",
                      k->dw, shape_str(cg->arena, &cg->g->nodes[k->n->in[0]].shape), k->in_blocked,
                      shape_str(cg->arena, &k->n->shape), c->kernel[0], c->kernel[1], c->stride[0], c->stride[1],
                      c->pad[0], c->pad[1], c->dilation[0], c->dilation[1], k->V, k->ocb, k->owb, k->bias != NULL,
                      k->res != NULL, cg_act_key(cg, &k->n->act), k->n->sched.rows_outer);
}

static Conv conv_of(CodeGen *cg, const Node *n, const Node *x) {
  const ConvAttr *c = &n->a.conv;
  Conv k = {.n = n, .dw = c->groups > 1, .in_blocked = x->layout == LAYOUT_NCHWC, .V = n->sched.vec,
            .ocb = n->sched.tile_oc, .owb = n->sched.tile_ow, .C = x->shape.dim[1], .H = x->shape.dim[2],
            .W = x->shape.dim[3], .OC = n->shape.dim[1], .OH = n->shape.dim[2], .OW = n->shape.dim[3],
            .KH = c->kernel[0], .KW = c->kernel[1], .sh = c->stride[0], .sw = c->stride[1], .pt = c->pad[0],
            .pl = c->pad[1], .dh = c->dilation[0], .dw_ = c->dilation[1]};
  CNNC_ASSERT(k.ocb * k.owb <= MAX_ACC && k.ocb <= 4 && n->layout == LAYOUT_NCHWC);
  CNNC_ASSERT(!k.in_blocked || x->cblock == k.V);
  k.OCB = (k.OC + k.V - 1) / k.V;
  k.ocn = k.ocb;
  k.roll_kw = (k.dw || !k.in_blocked || k.sw > 1 || !cg->opt->target->fma) && k.KW > 1;
  k.OHo = k.OH;
  k.vt = LLVMVectorType(cg->f32, (unsigned)k.V);
  return k;
}

static void alloc_acc(CodeGen *cg, Conv *k) {
  for (int i = 0; i < k->ocb * k->owb; i++) k->acc[i] = cg_alloca(cg, k->vt, "acc");
}

/* Output-channel groups of ocb blocks: ceil(OCB / ocb), the last with
 * OCB % ocb blocks when ocb does not divide OCB (its weights are packed
 * as a whole group, zeros past OC; only its real blocks are computed and
 * stored). */
static int64_t conv_groups(const Conv *k) { return k->dw ? k->OCB : (k->OCB + k->ocb - 1) / k->ocb; }

typedef void (*GroupBody)(CodeGen *cg, Conv *k, void *ctx);

/* body(k) for group k->grp: a full group, or the short last one (a branch
 * on the group index; both bodies are emitted). */
static void group_body(CodeGen *cg, Conv *k, GroupBody body, void *ctx) {
  int tail = k->dw ? 0 : (int)(k->OCB % k->ocb);
  if (!tail) {
    body(cg, k, ctx);
    return;
  }
  LLVMValueRef full = cg_i64(cg, k->OCB / k->ocb);
  LLVMBasicBlockRef j = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, k->grp, full, ""), "full");
  body(cg, k, ctx);
  cg_if_end(cg, j);
  j = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntSGE, k->grp, full, ""), "tail");
  k->ocn = tail;
  body(cg, k, ctx);
  k->ocn = k->ocb;
  cg_if_end(cg, j);
}

/* The rows of one strip of the fused 1x1 conv (conv_dw_pw). */
typedef struct {
  int64_t R;
  LLVMValueRef onn, oh0;
} StripRows;

static void strip_rows(CodeGen *cg, Conv *p, void *ctx) {
  const StripRows *sr = ctx;
  Loop lq = cg_for(cg, "r", sr->R);
  p->nn = cg_i64(cg, 0);
  p->oh = lq.iv;
  p->onn = sr->onn;
  p->ooh = cg_add(cg, sr->oh0, lq.iv);
  row_range(cg, p);
  row(cg, p);
  cg_loop_end(cg, &lq);
}

/* The output rows of one group (cg_conv_direct): all, or [lo, hi) of a
 * layer split by rows. */
typedef struct {
  bool split_rows;
  LLVMValueRef lo, hi;
} GroupRows;

static void one_row(CodeGen *cg, Conv *k, void *ctx) {
  (void)ctx;
  row(cg, k);
}

static void group_rows(CodeGen *cg, Conv *k, void *ctx) {
  const GroupRows *gr = ctx;
  Loop lr = gr->split_rows ? cg_loop_begin(cg, "oh", gr->lo, gr->hi, 1) : cg_for(cg, "oh", k->OH);
  k->oh = k->ooh = lr.iv;
  row_range(cg, k);
  row(cg, k);
  cg_loop_end(cg, &lr);
}

/* Depthwise conv d computed strip by strip into scratch that the 1x1 conv
 * p reads (see the comment at the top and fuse_dw.c). */
static LLVMValueRef conv_dw_pw(CodeGen *cg, const Node *n) {
  const Node *dn = &cg->g->nodes[n->pre_dw - 1], *x = &cg->g->nodes[n->in[0]];
  Conv d = conv_of(cg, dn, x), p = conv_of(cg, n, dn);
  /* p reads the scratch: a strip of tile_oh rows of d's output */
  p.H = p.OH = n->sched.tile_oh;
  bool has_res = n->nin == 2, is_new;
  int nargs = 4 + has_res + (n->bias != NULL) + 1 + (dn->bias != NULL);
  d.bias = dn->bias ? (LLVMValueRef)1 : NULL; /* for the keys; replaced below */
  p.bias = n->bias ? (LLVMValueRef)1 : NULL;
  p.res = has_res ? (LLVMValueRef)1 : NULL;
  const char *key = arena_printf(cg->arena, "fused R=%d [%s] [%s]", n->sched.tile_oh, direct_key(cg, &d),
                                 direct_key(cg, &p));
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.conv_%s", cg->g->name, n->name), nargs,
                                    &is_new);
  if (!is_new) return fn;
  unsigned a = 0;
  d.in = LLVMGetParam(fn, a++);
  p.res = has_res ? LLVMGetParam(fn, a++) : NULL;
  p.out = LLVMGetParam(fn, a++);
  p.w = LLVMGetParam(fn, a++);
  p.bias = n->bias ? LLVMGetParam(fn, a++) : NULL;
  d.w = LLVMGetParam(fn, a++);
  d.bias = dn->bias ? LLVMGetParam(fn, a++) : NULL;
  d.out = p.in = LLVMGetParam(fn, a++);
  alloc_acc(cg, &d);
  alloc_acc(cg, &p);
  cg_vector_attrs(cg, fn, d.V);

  int64_t R = n->sched.tile_oh, OH = d.OH;
  CNNC_ASSERT(R >= 1 && OH % R == 0);
  Loop ln = cg_for(cg, "n", x->shape.dim[0]);
  Loop ls = cg_for(cg, "strip", OH / R);
  LLVMValueRef oh0 = cg_mul(cg, ls.iv, cg_i64(cg, R));
  /* depthwise rows oh0 .. oh0 + R - 1 into the scratch strip */
  Loop lr = cg_for(cg, "r", R);
  d.nn = ln.iv;
  d.oh = cg_add(cg, oh0, lr.iv);
  d.onn = cg_i64(cg, 0);
  d.ooh = lr.iv;
  d.OHo = R;
  row_range(cg, &d);
  Loop lc = cg_for(cg, "cb", d.OCB);
  d.grp = lc.iv;
  row(cg, &d);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lr);
  /* the 1x1 conv of the strip */
  Loop lg = cg_for(cg, "ocg", conv_groups(&p));
  p.grp = lg.iv;
  p.OHo = OH;
  StripRows sr = {.R = R, .onn = ln.iv, .oh0 = oh0};
  group_body(cg, &p, strip_rows, &sr);
  cg_loop_end(cg, &lg);
  cg_loop_end(cg, &ls);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}

LLVMValueRef cg_conv_direct(CodeGen *cg, const Node *n) {
  if (n->pre_dw) return conv_dw_pw(cg, n);
  const Node *x = &cg->g->nodes[n->in[0]];
  Conv k = conv_of(cg, n, x);
  bool has_res = n->nin == 2, is_new;
  int nargs = 3 + has_res + (n->bias != NULL);
  k.bias = n->bias ? (LLVMValueRef)1 : NULL; /* for the key; replaced below */
  k.res = has_res ? (LLVMValueRef)1 : NULL;
  LLVMValueRef fn = cg_kernel_begin(cg, direct_key(cg, &k),
                                    arena_printf(cg->arena, "%s.conv_%s", cg->g->name, n->name), nargs, &is_new);
  if (!is_new) return fn;
  int a = 0;
  k.in = LLVMGetParam(fn, (unsigned)a++);
  k.res = has_res ? LLVMGetParam(fn, (unsigned)a++) : NULL;
  k.out = LLVMGetParam(fn, (unsigned)a++);
  k.w = LLVMGetParam(fn, (unsigned)a++);
  k.bias = n->bias ? LLVMGetParam(fn, (unsigned)a++) : NULL;
  alloc_acc(cg, &k);
  cg_vector_attrs(cg, fn, k.V);

  /* a split layer runs channel groups or rows [lo, hi) (schedule.c) */
  int64_t ngroups = conv_groups(&k);
  SplitDim split = n->sched.split;
  LLVMValueRef lo, hi;
  cg_split_range(cg, split == SPLIT_ROWS ? k.OH : ngroups, &lo, &hi);
  CNNC_ASSERT(split == SPLIT_NONE || split == SPLIT_OC || split == SPLIT_ROWS);
  Loop ln = cg_for(cg, "n", x->shape.dim[0]);
  k.nn = k.onn = ln.iv;
  if (n->sched.rows_outer) {
    /* each input row band read once for all groups (the weights stay in L2) */
    Loop lr = split == SPLIT_ROWS ? cg_loop_begin(cg, "oh", lo, hi, 1) : cg_for(cg, "oh", k.OH);
    k.oh = k.ooh = lr.iv;
    row_range(cg, &k);
    Loop lg = split == SPLIT_OC ? cg_loop_begin(cg, "ocg", lo, hi, 1) : cg_for(cg, "ocg", ngroups);
    k.grp = lg.iv;
    group_body(cg, &k, one_row, NULL);
    cg_loop_end(cg, &lg);
    cg_loop_end(cg, &lr);
    cg_loop_end(cg, &ln);
    cg_kernel_end(cg);
    return fn;
  }
  Loop lg = split == SPLIT_OC ? cg_loop_begin(cg, "ocg", lo, hi, 1) : cg_for(cg, "ocg", ngroups);
  k.grp = lg.iv;
  GroupRows gr = {.split_rows = split == SPLIT_ROWS, .lo = lo, .hi = hi};
  group_body(cg, &k, group_rows, &gr);
  cg_loop_end(cg, &lg);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}
