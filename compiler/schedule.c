/*
 * schedule.c: the one scheduler.  For every layer, from its shape, its
 * layout and the target table: the kernel, its register blocking and
 * cache tiling, its kernel scratch, and its split over threads.
 *
 * needs: layout (Node.layout/cblock, reorders) and fuse_dw (Node.pre_dw,
 * Node.fused); gives: Node.sched (kernel, vec, tile_*, split, split_n,
 * max_tasks) and Node.scratch on every node, and Node.alias for layers
 * that need no code.  The weights are not touched: pack.c rearranges them
 * for the kernels chosen here.
 *
 * Views: flatten, reshape and dropout only reinterpret their input's
 * elements (row-major order is unchanged), so each is a view of its
 * input's buffer, unless its result must be written to caller memory (a
 * graph output), where codegen copies.  Views may chain (reshape of a
 * flatten); memplan follows the chain to the buffer that owns the memory.
 *
 * Kernels (a layer not named here keeps the scalar reference kernel, or
 * the blocked vector kernel its layout implies):
 *   - blocked convolution, 3x3 stride 1, wide enough (winograd_eligible):
 *     Winograd F(4x4, 3x3), its GEMMs blocked like a direct conv over up to
 *     24 tiles, chunks of tiles sized so that a chunk's transformed input
 *     and output stay within half of L2 (cg_winograd.c);
 *   - blocked depthwise: the direct kernel, one channel block by as many
 *     columns as the target has accumulators;
 *   - other blocked convolutions: the direct kernel, ocb channel blocks by
 *     owb columns (choose_blocking);
 *   - a 1x1 conv with a fused depthwise before it (fuse_dw.c): strips of
 *     rows of the depthwise output within a quarter of L2;
 *   - blocked batchnorm: a vector scale and shift; dense: the vectorised
 *     matrix-vector kernel.
 *
 * The split over threads: a split layer's kernel takes a range [lo, hi) of
 * split_n units; task i of k runs [i*n/k, (i+1)*n/k), an even,
 * deterministic slice.  The units are output-channel groups, output rows
 * or Winograd tile chunks, never a reduction, so each output element is
 * computed by the same instructions in the same order whatever the number
 * of tasks: results are bit-identical for every thread count.  Which
 * dimension: the one with more units (better balance on 2-3 threads),
 * channel groups when there are at least 8 of them (each task then reads
 * only its share of the weights).  How many tasks: at most one per
 * TASK_MIN_FLOPS of work, so that a task's work stays well above the cost
 * of handing it out (0.25 us for a round trip through a spinning pthreads
 * pool, docs/bench.md); layers below two tasks' worth run inline.  The
 * thread count itself is known only at run time (<name>_run_pool takes
 * min(threads, max_tasks) tasks per layer).
 */
#include "cnnc.h"

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t x, int64_t m) { return ceil_div(x, m) * m; }

/* ---- kernels and tiling ---- */

/* Registers a micro-kernel step of o weight vectors by w columns keeps
 * live: o*w accumulators, the o weight vectors, the broadcast input value,
 * and without FMA the product before it is added. */
static int step_regs(const TargetInfo *t, int o, int w) { return o * w + o + 1 + !t->fma; }

/* Register blocking for a direct conv: ocb output-channel blocks by owb
 * output columns, chosen to use as much of the accumulator budget as
 * possible over the whole row (tails included) and over the channel blocks
 * (with `tail`, ocb need not divide OCB: the direct kernel computes a
 * short last group; Winograd's GEMMs need whole groups), never more registers than
 * the target has (past that LLVM keeps the accumulators on the stack:
 * AVX2's 16 registers ran 4x3 blocks, 17 live, at 12% of peak). */
static void choose_blocking(const TargetInfo *t, int64_t OCB, int64_t OW, bool tail, int *ocb, int *owb) {
  int cap = t->acc; /* from the target table */
  double best = -1;
  for (int o = 4; o >= 1; o--) {
    if (OCB % o && !tail) continue;
    int maxw = cap / o;
    while (maxw >= 1 && step_regs(t, o, maxw) > t->nregs) maxw--;
    if (maxw < 1) continue; /* more channel blocks than accumulators (armv6-m: 1) */
    if (maxw > 14) maxw = 14;
    int64_t nblk = (OW + maxw - 1) / maxw;
    int w = (int)((OW + nblk - 1) / nblk);
    /* the share of the accumulators a row fills, times the share of the
     * channel blocks that are real (a short last group wastes the rest) */
    double score = (double)(o * OW) / (double)(nblk * cap) * (double)OCB / (double)(ceil_div(OCB, o) * o);
    /* ties go to more channel blocks: fewer broadcasts per FMA (measured:
     * 4x6 blocks run 3x3 layers at 56 columns near peak, 2x12 at 60%),
     * unless the fewer blocks cover the whole row at once (measured on
     * resnet50's 7x7 layers: 2x7 runs 2-3 points of peak above 4x4 + 4x3) */
    bool tie_one_block = score > best - 1e-9 && nblk == 1;
    if (score > best + 1e-9 || tie_one_block) {
      best = score;
      *ocb = o;
      *owb = w;
    }
  }
}

enum { CONV_WINOGRAD_MAX_C = 4096 };

static bool winograd_eligible(const Graph *g, const Node *n, const TargetInfo *t) {
  const ConvAttr *c = &n->a.conv;
  const Node *x = &g->nodes[n->in[0]];
  /* the 36 GEMMs sum over input channels unblocked: long ones go direct (chunked) */
  if (t->winograd == 0 || c->groups != 1 || x->shape.dim[1] > CONV_WINOGRAD_MAX_C || c->kernel[0] != 3 ||
      c->kernel[1] != 3 || c->stride[0] != 1 || c->stride[1] != 1 || c->dilation[0] != 1 ||
      c->dilation[1] != 1 || x->layout != LAYOUT_NCHWC)
    return false;
  if (t->winograd == 1) return true;
  /* auto: the transforms cost O(C + OC) per tile against O(C * OC) saved,
   * so thin layers stay direct; so do tiny images, where 4x4 tiles waste
   * much of their work on the border. */
  return x->shape.dim[1] >= 32 && n->shape.dim[1] >= 32 && n->shape.dim[2] >= 6 && n->shape.dim[3] >= 6;
}

static void schedule_winograd(const Graph *g, Node *n, const TargetInfo *t) {
  int V = t->vec;
  int64_t ICp = round_up(g->nodes[n->in[0]].shape.dim[1], V), OCp = round_up(n->shape.dim[1], V);
  int64_t ntiles = ceil_div(n->shape.dim[2], 4) * ceil_div(n->shape.dim[3], 4);
  int ocb = 1, owb = 1;
  choose_blocking(t, OCp / V, ntiles < 24 ? ntiles : 24, false, &ocb, &owb);
  /* tiles per chunk: TI and M of a chunk stay within half of L2 */
  int64_t per_tile = 36 * (ICp + OCp) * (int64_t)sizeof(float);
  int64_t m = t->l2 / 2 / (per_tile * owb);
  int64_t mmax = ceil_div(ntiles, owb);
  m = m < 1 ? 1 : m > mmax ? mmax : m;
  int T = (int)(m * owb);
  bool at_use = !t->arch->fpu || t->nregs < 16;
  n->sched = (Schedule){.kernel = KERNEL_WINOGRAD, .vec = V, .tile_oc = ocb, .tile_ow = owb, .tile_oh = T,
                        .at_use = at_use};
  /* TI, M and X, and with at_use D, the tile a transform reads (cg_winograd.c) */
  n->scratch = per_tile * T + (at_use ? 2 : 1) * 36 * V * (int64_t)sizeof(float);
}

/* A 1x1 conv that computes a fused depthwise conv's output (fuse_dw.c) in
 * strips: tile_oh rows of every channel block, the most rows dividing the
 * depthwise output's height within a quarter of L2. */
static void schedule_strips(const Graph *g, Node *p, const TargetInfo *t) {
  const Node *d = &g->nodes[p->pre_dw - 1];
  int64_t row = ceil_div(d->shape.dim[1], d->cblock) * d->shape.dim[3] * d->cblock * (int64_t)sizeof(float);
  int64_t OH = d->shape.dim[2], budget = t->l2 / 4, rows = 1;
  for (int64_t r = 1; r <= OH; r++)
    if (OH % r == 0 && r * row <= budget) rows = r;
  p->sched.tile_oh = (int)rows;
  p->scratch = rows * row;
}

/* Loop order of a direct conv: channel groups outside the rows (each
 * group's weights stay in cache over the whole image; the input is read
 * again for every group) or rows outside the groups (each input row band
 * is read once and serves every group while it is in L1/L2; the weights,
 * one sequential stream, are read again for every row).  Rows outside
 * when the input does not fit in half of L2, so that groups outside would
 * fetch it again from L3 for every group through one stream per channel
 * block.  Measured on resnet50's 1x1 layers on one Zen 3 core (the
 * fastest of 4 x 5 runs per layer, bench/profile.sh; this machine's
 * timings vary by 30% from run to run): 256 -> 64 channels at 56x56 took
 * 4.8 ms with groups outside, 2.4 with rows outside; 512 -> 256 at 28x28
 * 9.0 and 6.1; 1024 -> 256 at 14x14 3.9 and 2.1; 2048 -> 512 at 7x7 6.0
 * and 3.9; the whole net 195 and 165 ms in the same runs. */
static bool rows_outer(const Graph *g, const Node *n, const TargetInfo *t) {
  const Shape *x = &g->nodes[n->in[0]].shape;
  return x->dim[1] * x->dim[2] * x->dim[3] * 4 > t->l2 / 2;
}

static void schedule_conv(const Graph *g, Node *n, const TargetInfo *t) {
  int V = t->vec;
  if (winograd_eligible(g, n, t)) {
    schedule_winograd(g, n, t);
  } else if (conv_is_depthwise(g, n)) {
    /* w accumulators, the weight vector, the input vector, a zero for the
     * border taps (cg_conv_direct.c reads zeros there), and the product
     * without FMA */
    int room = t->nregs - 3 - !t->fma;
    /* the in-order Cortex-M cores' scheduler loads a tap's inputs for all
     * columns before the multiply-adds, and so does x86's without FMA
     * (SSE2's two-operand multiply overwrites the input it loaded): room
     * for both (measured on SSE2: 8 columns, 2 accumulators on the stack) */
    if (t->arch->bare_metal || !t->fma) room = (t->nregs - 2) / 2;
    int cap = t->acc < room ? t->acc : room;
    if (cap < 1) cap = 1; /* armv6-m: one accumulator */
    int64_t OW = n->shape.dim[3], nblk = ceil_div(OW, cap);
    n->sched = (Schedule){.kernel = KERNEL_DIRECT, .vec = V, .tile_oc = 1, .tile_ow = (int)ceil_div(OW, nblk)};
  } else {
    int ocb = 1, owb = 1;
    choose_blocking(t, round_up(n->shape.dim[1], V) / V, n->shape.dim[3], true, &ocb, &owb);
    n->sched = (Schedule){.kernel = KERNEL_DIRECT, .vec = V, .tile_oc = ocb, .tile_ow = owb};
    if (n->pre_dw) schedule_strips(g, n, t);
    else n->sched.rows_outer = rows_outer(g, n, t);
  }
}

/* ---- the parallel split ---- */

enum {
  TASK_MIN_FLOPS = 32768, /* ~0.5 us at this machine's 60 GFLOP/s per core */
  DENSE_COST = 4,         /* a matrix-vector product streams its weights: about 4x fewer
                             FLOP/s than a convolution, so its work counts 4x */
  MAX_TASKS = 64,         /* more tasks than any pool here has threads */
};

static void set_split(Node *n, SplitDim d, int64_t units, int64_t work) {
  int64_t k = work / TASK_MIN_FLOPS;
  if (k > units) k = units;
  if (k > MAX_TASKS) k = MAX_TASKS;
  if (k < 2) return; /* inline */
  n->sched.split = d;
  n->sched.split_n = (int)units;
  n->sched.max_tasks = (int)k;
}

static void split_conv(const Graph *g, Node *n) {
  const Schedule *s = &n->sched;
  int64_t OCB = ceil_div(n->shape.dim[1], s->vec), flops = node_flops(g, n);
  if (s->kernel == KERNEL_WINOGRAD) {
    int64_t tiles = ceil_div(n->shape.dim[2], 4) * ceil_div(n->shape.dim[3], 4);
    int64_t chunks = ceil_div(tiles, s->tile_oh), groups = OCB / s->tile_oc;
    /* by chunks each task transforms only its own tiles; by channel groups
     * every task transforms all input tiles (cheap next to the GEMMs) */
    if (chunks >= 4 || chunks >= groups) set_split(n, SPLIT_TILES, chunks, flops / 4);
    else set_split(n, SPLIT_OC, groups, flops / 4);
    return;
  }
  if (s->kernel != KERNEL_DIRECT || n->pre_dw) return; /* a fused pair runs as one task */
  bool dw = n->a.conv.groups > 1;
  int64_t groups = dw ? OCB : ceil_div(OCB, s->tile_oc), rows = n->shape.dim[2];
  if (groups >= 8 || groups >= rows) set_split(n, SPLIT_OC, groups, flops);
  else set_split(n, SPLIT_ROWS, rows, flops);
}

void schedule(Graph *g, const TargetInfo *t) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->sched = (Schedule){.kernel = KERNEL_REF, .vec = 1, .split_n = 1, .max_tasks = 1};
    n->scratch = 0;
    n->alias = op_has(n->op, F_VIEW) && n->output_index < 0;
    bool blocked = n->layout == LAYOUT_NCHWC;
    if (n->op == OP_CONV2D && blocked) schedule_conv(g, n, t);
    if (n->op == OP_BATCHNORM && blocked) n->sched = (Schedule){.kernel = KERNEL_DIRECT, .vec = t->vec};
    if (n->op == OP_DENSE || n->op == OP_LINEAR) n->sched.vec = t->vec; /* vectorised matrix-vector kernel */
    n->sched.split = SPLIT_NONE;
    n->sched.split_n = 1;
    n->sched.max_tasks = 1;
    if (n->fused || n->alias) continue; /* a fused depthwise runs inside its consumer's task */
    if (n->op == OP_CONV2D && blocked) split_conv(g, n);
    if (n->op == OP_DENSE || n->op == OP_LINEAR)
      set_split(n, SPLIT_OC, ceil_div(n->a.dense.units, DENSE_ROWS), DENSE_COST * node_flops(g, n));
  }
}
