/*
 * cg_blocked.c: kernels for channel-blocked tensors (NCHW<V>c) other than
 * convolution, and the reorders between layouts.
 *
 * In the blocked layout the V lanes of a vector are V consecutive
 * channels of one pixel, so pooling, per-channel affine maps (batchnorm)
 * and broadcasts of [N, C, 1, 1] tensors are plain vector code.  Element-
 * wise ops on tensors of equal shape do not care about the layout at all
 * and run over the physical buffer.  Tail lanes (channels past C) are
 * computed on whatever they hold and never read as data (see layout.c);
 * reorders to the blocked layout write them as zeros.
 *
 * Kernel arguments: (inputs..., out[, params]).
 */
#include "codegen.h"

typedef struct {
  int V;
  LLVMTypeRef vt;
  int64_t N, C, CB, H, W; /* of the output */
} Blk;

static Blk blk(CodeGen *cg, const Node *n) {
  Blk b = {.V = n->cblock, .N = n->shape.dim[0], .C = n->shape.dim[1], .H = n->shape.dim[2], .W = n->shape.dim[3]};
  b.CB = (b.C + b.V - 1) / b.V;
  b.vt = LLVMVectorType(cg->f32, (unsigned)b.V);
  return b;
}

/* Starts (or finds) the kernel `what` of node n; `detail` goes into the
 * key only. */
static LLVMValueRef begin(CodeGen *cg, const Node *n, const char *what, const char *detail, int nargs,
                          bool *is_new) {
  const char *key = arena_printf(cg->arena, "blocked %s %s %s", what, detail, shape_str(cg->arena, &n->shape));
  for (int j = 0; j < n->nin; j++)
    key = arena_printf(cg->arena, "%s in%d=%s/%d", key, j, shape_str(cg->arena, &cg->g->nodes[n->in[j]].shape),
                       cg->g->nodes[n->in[j]].layout);
  key = arena_printf(cg->arena, "%s V=%d act=%s", key, n->cblock, cg_act_key(cg, &n->act));
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.%s_%s", cg->g->name, what, n->name), nargs,
                                    is_new);
  if (*is_new) cg_vector_attrs(cg, fn, n->cblock);
  return fn;
}

/* ---- element-wise over the physical buffer: activation, add, mul ---- */

static bool is_per_channel(const Shape *s, const Shape *out) {
  return s->rank == 4 && !shape_eq(s, out) && s->dim[2] == 1 && s->dim[3] == 1;
}

static LLVMValueRef eltwise(CodeGen *cg, const Node *n) {
  Blk b = blk(cg, n);
  bool is_new;
  const char *what = n->op == OP_ACT ? "act" : op_name(n->op);
  bool bn = n->op == OP_BATCHNORM;
  LLVMValueRef fn = begin(cg, n, what, "", n->nin + 1 + (bn ? 2 : 0), &is_new);
  if (!is_new) return fn;
  LLVMValueRef out = LLVMGetParam(fn, (unsigned)n->nin);
  Loop ln = cg_for(cg, "n", b.N);
  Loop lc = cg_for(cg, "cb", b.CB);
  LLVMValueRef nc = cg_muladd(cg, ln.iv, b.CB, lc.iv); /* index of the channel block */
  LLVMValueRef *chan = arena_array(cg->arena, (size_t)n->nin, sizeof *chan);
  for (int j = 0; j < n->nin; j++) /* per-channel operands are loaded once per block */
    chan[j] = is_per_channel(&cg->g->nodes[n->in[j]].shape, &n->shape)
                  ? cg_vload(cg, b.vt, LLVMGetParam(fn, (unsigned)j), cg_mul(cg, nc, cg_i64(cg, b.V)))
                  : NULL;
  LLVMValueRef scale = NULL, shift = NULL;
  if (bn) {
    scale = cg_vload(cg, b.vt, LLVMGetParam(fn, (unsigned)n->nin + 1), cg_mul(cg, lc.iv, cg_i64(cg, b.V)));
    shift = cg_vload(cg, b.vt, LLVMGetParam(fn, (unsigned)n->nin + 2), cg_mul(cg, lc.iv, cg_i64(cg, b.V)));
  }
  Loop lp = cg_for(cg, "hw", b.H * b.W);
  LLVMValueRef idx = cg_mul(cg, cg_muladd(cg, nc, b.H * b.W, lp.iv), cg_i64(cg, b.V));
  LLVMValueRef v = NULL;
  for (int j = 0; j < n->nin; j++) {
    LLVMValueRef x = chan[j] ? chan[j] : cg_vload(cg, b.vt, LLVMGetParam(fn, (unsigned)j), idx);
    v = !v ? x : cg_combine(cg, n->op, v, x);
  }
  if (bn) v = cg_fma(cg, v, scale, shift);
  cg_vstore(cg, cg_act(cg, &n->act, v), out, idx);
  cg_loop_end(cg, &lp);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}

/* ---- pooling ---- */

/* A max window: every tap, skipping those outside the input. */
static LLVMValueRef max_window(CodeGen *cg, const Node *n, Blk *b, LLVMValueRef in, LLVMValueRef nc, LLVMValueRef oh,
                               LLVMValueRef ow, int64_t H, int64_t W, LLVMValueRef acc) {
  const PoolAttr *p = &n->a.pool;
  LLVMBuildStore(cg->b, cg_splat(cg, b->vt, cg_f32(cg, -1.0 / 0.0)), acc);
  Loop lkh = cg_for(cg, "kh", p->kernel[0]);
  LLVMValueRef ih = cg_add(cg, cg_muladd(cg, oh, p->stride[0], cg_i64(cg, -p->pad[0])),
                           cg_mul(cg, lkh.iv, cg_i64(cg, p->dilation[0])));
  LLVMBasicBlockRef hj = cg_if_begin(cg, cg_in_range(cg, ih, H), "hin");
  Loop lkw = cg_for(cg, "kw", p->kernel[1]);
  LLVMValueRef iw = cg_add(cg, cg_muladd(cg, ow, p->stride[1], cg_i64(cg, -p->pad[1])),
                           cg_mul(cg, lkw.iv, cg_i64(cg, p->dilation[1])));
  LLVMBasicBlockRef wj = cg_if_begin(cg, cg_in_range(cg, iw, W), "win");
  LLVMValueRef v = cg_vload(cg, b->vt, in, cg_mul(cg, cg_muladd(cg, cg_muladd(cg, nc, H, ih), W, iw), cg_i64(cg, b->V)));
  LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, b->vt, acc, ""), v), acc);
  cg_if_end(cg, wj);
  cg_loop_end(cg, &lkw);
  cg_if_end(cg, hj);
  cg_loop_end(cg, &lkh);
  return LLVMBuildLoad2(cg->b, b->vt, acc, "max");
}

/* An average window: the in-range taps summed blocked (cg_window_sum). */
static LLVMValueRef avg_window(CodeGen *cg, const Node *n, Blk *b, LLVMValueRef in, LLVMValueRef nc, LLVMValueRef oh,
                               LLVMValueRef ow, int64_t H, int64_t W) {
  const PoolAttr *p = &n->a.pool;
  LLVMValueRef hs = cg_muladd(cg, oh, p->stride[0], cg_i64(cg, -p->pad[0]));
  LLVMValueRef ws = cg_muladd(cg, ow, p->stride[1], cg_i64(cg, -p->pad[1]));
  LLVMValueRef r0 = cg_smax(cg, LLVMBuildNeg(cg->b, hs, ""), cg_i64(cg, 0));
  LLVMValueRef r1 = cg_smax(cg, cg_smin(cg, LLVMBuildSub(cg->b, cg_i64(cg, H), hs, ""), cg_i64(cg, p->kernel[0])), r0);
  LLVMValueRef c0 = cg_smax(cg, LLVMBuildNeg(cg->b, ws, ""), cg_i64(cg, 0));
  LLVMValueRef c1 = cg_smax(cg, cg_smin(cg, LLVMBuildSub(cg->b, cg_i64(cg, W), ws, ""), cg_i64(cg, p->kernel[1])), c0);
  LLVMValueRef sum = cg_window_sum(cg, b->vt, in, b->V, W, cg_add(cg, cg_mul(cg, nc, cg_i64(cg, H)), hs), r0, r1,
                                   p->kernel[0], ws, c0, c1, p->kernel[1]);
  return LLVMBuildFDiv(cg->b, sum, cg_splat(cg, b->vt, cg_pool_divisor(cg, p, oh, ow, H, W)), "avg");
}

static LLVMValueRef pool(CodeGen *cg, const Node *n) {
  Blk b = blk(cg, n);
  const Node *x = &cg->g->nodes[n->in[0]];
  int64_t H = x->shape.dim[2], W = x->shape.dim[3];
  bool is_max = n->op == OP_MAXPOOL2D, is_new;
  const PoolAttr *p = &n->a.pool;
  const char *detail = arena_printf(cg->arena, "%s k=%dx%d s=%dx%d p=%d,%d d=%dx%d cip=%d", op_name(n->op), p->kernel[0],
                                    p->kernel[1], p->stride[0], p->stride[1], p->pad[0], p->pad[1], p->dilation[0],
                                    p->dilation[1], p->count_include_pad);
  LLVMValueRef fn = begin(cg, n, "pool", detail, 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef acc = is_max ? cg_alloca(cg, b.vt, "acc") : NULL;
  Loop lc = cg_for(cg, "ncb", b.N * b.CB);
  Loop lh = cg_for(cg, "oh", b.H);
  Loop lw = cg_for(cg, "ow", b.W);
  LLVMValueRef r = is_max ? max_window(cg, n, &b, in, lc.iv, lh.iv, lw.iv, H, W, acc)
                          : avg_window(cg, n, &b, in, lc.iv, lh.iv, lw.iv, H, W);
  cg_vstore(cg, r, out, cg_mul(cg, cg_muladd(cg, cg_muladd(cg, lc.iv, b.H, lh.iv), b.W, lw.iv), cg_i64(cg, b.V)));
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}

typedef struct {
  Blk *b;
  LLVMValueRef in, base; /* base: index of the plane's first pixel */
} Plane;

static LLVMValueRef plane_pixel(CodeGen *cg, void *ctx, LLVMValueRef i) {
  Plane *pl = ctx;
  return cg_vload(cg, pl->b->vt, pl->in, cg_mul(cg, cg_add(cg, pl->base, i), cg_i64(cg, pl->b->V)));
}

/* Global pools: max over a plane, or its blocked sum (cg_sum) / HW. */
static LLVMValueRef global_pool(CodeGen *cg, const Node *n) {
  Blk b = blk(cg, n);
  const Node *x = &cg->g->nodes[n->in[0]];
  int64_t HW = x->shape.dim[2] * x->shape.dim[3];
  bool is_max = n->op == OP_GLOBAL_MAXPOOL2D, is_new;
  LLVMValueRef fn = begin(cg, n, "globalpool", op_name(n->op), 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef acc = cg_alloca(cg, b.vt, "acc");
  Loop lc = cg_for(cg, "ncb", b.N * b.CB);
  Plane pl = {&b, in, cg_mul(cg, lc.iv, cg_i64(cg, HW))};
  LLVMValueRef r;
  if (is_max) {
    LLVMBuildStore(cg->b, cg_splat(cg, b.vt, cg_f32(cg, -1.0 / 0.0)), acc);
    Loop lp = cg_for(cg, "hw", HW);
    LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, b.vt, acc, ""), plane_pixel(cg, &pl, lp.iv)), acc);
    cg_loop_end(cg, &lp);
    r = LLVMBuildLoad2(cg->b, b.vt, acc, "max");
  } else {
    r = cg_sum(cg, "hw", b.vt, cg_i64(cg, 0), cg_i64(cg, HW), HW, plane_pixel, &pl);
    r = LLVMBuildFDiv(cg->b, r, cg_splat(cg, b.vt, cg_f32(cg, (double)HW)), "avg");
  }
  cg_vstore(cg, r, out, cg_mul(cg, lc.iv, cg_i64(cg, b.V)));
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return fn;
}

/* ---- concat along channels ---- */

/* Index of channel c (dynamic) at pixel p of image nn in a blocked tensor. */
static LLVMValueRef bidx(CodeGen *cg, int V, int64_t CB, int64_t HW, LLVMValueRef nn, LLVMValueRef c, LLVMValueRef p) {
  LLVMValueRef cb = LLVMBuildUDiv(cg->b, c, cg_i64(cg, V), "");
  LLVMValueRef lane = LLVMBuildURem(cg->b, c, cg_i64(cg, V), "");
  return cg_muladd(cg, cg_muladd(cg, cg_muladd(cg, nn, CB, cb), HW, p), V, lane);
}

static LLVMValueRef concat(CodeGen *cg, const Node *n) {
  Blk b = blk(cg, n);
  bool is_new;
  LLVMValueRef fn = begin(cg, n, "concat", "", n->nin + 1, &is_new);
  if (!is_new) return fn;
  LLVMValueRef out = LLVMGetParam(fn, (unsigned)n->nin);
  int64_t HW = b.H * b.W, c0 = 0;
  for (int j = 0; j < n->nin; j++) {
    LLVMValueRef in = LLVMGetParam(fn, (unsigned)j);
    int64_t C = cg->g->nodes[n->in[j]].shape.dim[1], CBj = (C + b.V - 1) / b.V;
    if (c0 % b.V == 0 && (C % b.V == 0 || j == n->nin - 1)) {
      /* whole blocks: vector copies */
      Loop ln = cg_for(cg, "n", b.N);
      Loop lc = cg_for(cg, "cb", CBj);
      Loop lp = cg_for(cg, "hw", HW);
      LLVMValueRef src = cg_mul(cg, cg_muladd(cg, cg_muladd(cg, ln.iv, CBj, lc.iv), HW, lp.iv), cg_i64(cg, b.V));
      LLVMValueRef dcb = cg_add(cg, lc.iv, cg_i64(cg, c0 / b.V));
      LLVMValueRef dst = cg_mul(cg, cg_muladd(cg, cg_muladd(cg, ln.iv, b.CB, dcb), HW, lp.iv), cg_i64(cg, b.V));
      cg_vstore(cg, cg_vload(cg, b.vt, in, src), out, dst);
      cg_loop_end(cg, &lp);
      cg_loop_end(cg, &lc);
      cg_loop_end(cg, &ln);
    } else {
      Loop ln = cg_for(cg, "n", b.N);
      Loop lc = cg_for(cg, "c", C);
      Loop lp = cg_for(cg, "hw", HW);
      LLVMValueRef v = cg_load(cg, in, bidx(cg, b.V, CBj, HW, ln.iv, lc.iv, lp.iv), "x");
      cg_store(cg, out, bidx(cg, b.V, b.CB, HW, ln.iv, cg_add(cg, lc.iv, cg_i64(cg, c0)), lp.iv), v);
      cg_loop_end(cg, &lp);
      cg_loop_end(cg, &lc);
      cg_loop_end(cg, &ln);
    }
    c0 += C;
  }
  cg_kernel_end(cg);
  return fn;
}

/* ---- reorders ---- */

void cg_vector_attrs(CodeGen *cg, LLVMValueRef fn, int V) {
  if (V < 8) return;
  const char *bits = V == 16 ? "512" : "256";
  LLVMAddTargetDependentFunctionAttr(fn, "prefer-vector-width", bits);
  LLVMAddTargetDependentFunctionAttr(fn, "min-legal-vector-width", bits);
}

LLVMValueRef cg_reorder(CodeGen *cg, const Node *n) {
  const Node *x = &cg->g->nodes[n->in[0]];
  bool to_blocked = n->layout == LAYOUT_NCHWC, is_new;
  int V = to_blocked ? n->cblock : x->cblock;
  CNNC_ASSERT(n->shape.rank == 4 && (to_blocked ? x->layout == LAYOUT_NCHW : x->layout == LAYOUT_NCHWC));
  const char *key = arena_printf(cg->arena, "reorder %s to=%d V=%d", shape_str(cg->arena, &n->shape), to_blocked, V);
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.reorder_%s", cg->g->name, n->name), 2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  int64_t N = n->shape.dim[0], C = n->shape.dim[1], HW = n->shape.dim[2] * n->shape.dim[3];
  int64_t CB = (C + V - 1) / V;
  Loop ln = cg_for(cg, "n", N);
  Loop lc = cg_for(cg, to_blocked ? "cp" : "c", to_blocked ? CB * V : C);
  Loop lp = cg_for(cg, "hw", HW);
  LLVMValueRef plain = cg_muladd(cg, cg_muladd(cg, ln.iv, C, lc.iv), HW, lp.iv);
  LLVMValueRef blocked = bidx(cg, V, CB, HW, ln.iv, lc.iv, lp.iv);
  if (to_blocked) {
    /* tail lanes get zeros: load a real channel or 0 */
    LLVMValueRef real = LLVMBuildICmp(cg->b, LLVMIntSLT, lc.iv, cg_i64(cg, C), "");
    LLVMValueRef safe = LLVMBuildSelect(cg->b, real, plain, cg_i64(cg, 0), "");
    LLVMValueRef v = LLVMBuildSelect(cg->b, real, cg_load(cg, in, safe, "x"), cg_f32(cg, 0), "");
    cg_store(cg, out, blocked, v);
  } else {
    cg_store(cg, out, plain, cg_load(cg, in, blocked, "x"));
  }
  cg_loop_end(cg, &lp);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &ln);
  cg_kernel_end(cg);
  return fn;
}

LLVMValueRef cg_blocked(CodeGen *cg, const Node *n) {
  switch (n->op) {
  case OP_ACT:
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN:
  case OP_BATCHNORM: return eltwise(cg, n);
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: return pool(cg, n);
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D: return global_pool(cg, n);
  case OP_CONCAT: return concat(cg, n);
  default: break;
  }
  CNNC_UNREACHABLE();
}
