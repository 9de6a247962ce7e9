/*
 * schedule.c: per-layer kernel choice and tiling.
 *
 * needs: verified graph; gives: Node.sched on every node, and Node.alias
 * for layers that need no code: flatten, reshape and dropout only
 * reinterpret their input's elements (row-major order is unchanged), so
 * each is a view of its input's buffer, unless its result must be written
 * to caller memory (a graph output), where codegen copies.  Views may
 * chain (reshape of a flatten); memplan follows the chain to the buffer
 * that owns the memory.
 *
 * Every node gets the scalar reference kernel here; the blocked-layout,
 * register-blocked and Winograd kernels are still chosen by layout.c
 * (moving that choice here is a separate job).
 *
 * schedule_split, after layout and fuse_dw, decides how each layer splits
 * over threads.  needs: every kernel and its blocking chosen (Node.sched
 * from layout.c); gives: Node.sched.split, split_n and max_tasks.  A
 * split layer's kernel takes a range [lo, hi) of split_n units; task i of
 * k runs [i*n/k, (i+1)*n/k), an even, deterministic slice.  The units are
 * output-channel groups, output rows or Winograd tile chunks, never a
 * reduction, so each output element is computed by the same instructions
 * in the same order whatever the number of tasks: results are
 * bit-identical for every thread count.  Which dimension: the one with
 * more units (better balance on 2-3 threads), channel groups when there
 * are at least 8 of them (each task then reads only its share of the
 * weights).  How many tasks: at most one per TASK_MIN_FLOPS of work, so
 * that a task's work stays well above the cost of handing it out (0.25 us
 * for a round trip through a spinning pthreads pool, docs/bench.md);
 * layers below two tasks' worth run inline.  The thread count itself is
 * known only at run time (<name>_run_pool takes min(threads, max_tasks)
 * tasks per layer).
 */
#include "cnnc.h"

static bool is_view(Op op) { return op_has(op, F_VIEW); }

void schedule(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->sched = (Schedule){.kernel = KERNEL_REF, .vec = 1, .split_n = 1, .max_tasks = 1};
    n->alias = is_view(n->op) && n->output_index < 0;
  }
}

/* ---- the parallel split ---- */

enum {
  TASK_MIN_FLOPS = 32768, /* ~0.5 us at this machine's 60 GFLOP/s per core */
  DENSE_COST = 4,         /* a matrix-vector product streams its weights: about 4x fewer
                             FLOP/s than a convolution, so its work counts 4x */
  MAX_TASKS = 64,         /* more tasks than any pool here has threads */
};

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

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
  int64_t groups = dw ? OCB : OCB / s->tile_oc, rows = n->shape.dim[2];
  if (groups >= 8 || groups >= rows) set_split(n, SPLIT_OC, groups, flops);
  else set_split(n, SPLIT_ROWS, rows, flops);
}

void schedule_split(Graph *g, const TargetInfo *t) {
  (void)t; /* the vector width is already in each Schedule */
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->sched.split = SPLIT_NONE;
    n->sched.split_n = 1;
    n->sched.max_tasks = 1;
    if (n->fused || n->alias) continue;
    if (n->op == OP_CONV2D && n->layout == LAYOUT_NCHWC) split_conv(g, n);
    if (n->op == OP_DENSE || n->op == OP_LINEAR)
      set_split(n, SPLIT_OC, ceil_div(n->a.dense.units, DENSE_ROWS), DENSE_COST * node_flops(g, n));
  }
}
