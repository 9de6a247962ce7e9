/*
 * stats.c: `cnnc --stats`: what the compiler decided, layer by layer.
 *
 * One line per layer with its FLOPs (2 per multiply-add of the
 * convolution or matrix product it computes; element-wise layers count
 * one per output), the bytes of its parameters as stored in the object,
 * the bytes of its output, its split over threads (dimension, units, the
 * most tasks; schedule.c), the kernel chosen and its tiling; then
 * totals, the workspace against the memory planner's liveness bound, and
 * what each further thread adds to it.
 */
#include "cnnc.h"

int64_t node_flops(const Graph *g, const Node *n) {
  const Shape *o = &n->shape, *x = n->nin ? &g->nodes[n->in[0]].shape : NULL;
  switch (n->op) {
  case OP_CONV2D:
    return 2 * shape_numel(o) * (x->dim[1] / n->a.conv.groups) * n->a.conv.kernel[0] * n->a.conv.kernel[1];
  case OP_CONV_TRANSPOSE2D:
    return 2 * shape_numel(x) * (o->dim[1] / n->a.conv.groups) * n->a.conv.kernel[0] * n->a.conv.kernel[1];
  case OP_DENSE: return 2 * shape_numel(x) * o->dim[1];
  case OP_LINEAR: return 2 * shape_numel(x) * n->a.dense.units;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: return 6 * shape_numel(o); /* two passes and the affine map */
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: return shape_numel(x);
  case OP_CONSTANT:
  case OP_SLICE:
  case OP_TRANSPOSE: return 0;
  case OP_INPUT:
  case OP_FLATTEN:
  case OP_RESHAPE:
  case OP_DROPOUT:
  case OP_REORDER: return 0;
  default: return shape_numel(o);
  }
}

static int64_t param_bytes(const Node *n) {
  const Param *p[4] = {n->weight, n->bias, n->mean, n->var};
  int64_t b = 0;
  for (int i = 0; i < 4; i++)
    if (p[i]) b += shape_numel(&p[i]->shape) * 4;
  return b;
}

const char *node_kernel_str(Arena *a, const Graph *g, const Node *n) {
  const Schedule *s = &n->sched;
  if (n->fused) return "fused into the next 1x1 conv";
  switch (s->kernel) {
  case KERNEL_DIRECT:
    if (n->op != OP_CONV2D) return arena_printf(a, "vector x%d", s->vec);
    if (n->pre_dw)
      return arena_printf(a, "direct x%d %dx%d after %s in strips of %d rows", s->vec, s->tile_oc, s->tile_ow,
                          g->nodes[n->pre_dw - 1].name, s->tile_oh);
    return arena_printf(a, "direct x%d %dx%d%s", s->vec, s->tile_oc, s->tile_ow, s->rows_outer ? " rows-outer" : "");
  case KERNEL_WINOGRAD: return arena_printf(a, "winograd4x3 x%d %dx%d T=%d", s->vec, s->tile_oc, s->tile_ow, s->tile_oh);
  case KERNEL_REF: break;
  }
  if (n->layout == LAYOUT_NCHWC) return arena_printf(a, "vector x%d", n->cblock);
  if ((n->op == OP_DENSE || n->op == OP_LINEAR) && s->vec > 1) return arena_printf(a, "matvec x%d", s->vec);
  return "scalar";
}

/* "rows/56 x<=8": the split dimension, its units and the most tasks; "-" inline. */
static const char *split_str(Arena *a, const Node *n) {
  static const char *const dims[] = {"-", "oc", "rows", "tiles"};
  const Schedule *s = &n->sched;
  if (!s->split) return "-";
  return arena_printf(a, "%s/%d x<=%d", dims[s->split], s->split_n, s->max_tasks);
}

void stats_print(const Graph *g, const TargetInfo *t, FILE *f) {
  Arena a = {0};
  int64_t tf = 0, tw = 0, ta = 0;
  fprintf(f, "%-28s %-18s %14s %12s %12s  %-9s %-16s %s\n", "layer", "op", "MFLOP", "weight KiB", "output KiB",
          "layout", "split", "kernel");
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->op == OP_INPUT) continue;
    int64_t fl = node_flops(g, n), wb = param_bytes(n), ab = node_floats(n) * 4;
    tf += fl;
    tw += wb;
    ta += n->alias || n->fused ? 0 : ab;
    const char *op = n->op == OP_ACT ? act_names[n->act.kind] : op_name(n->op);
    const char *lay = n->layout == LAYOUT_NCHWC ? arena_printf(&a, "nchw%dc", n->cblock) : "nchw";
    fprintf(f, "%-28s %-18s %14.3f %12.1f %12.1f  %-9s %-16s %s%s%s%s\n", n->name, op, fl / 1e6, wb / 1024.0,
            ab / 1024.0, lay, split_str(&a, n), n->alias ? "view" : node_kernel_str(&a, g, n), n->act.kind && n->op != OP_ACT ? " +" : "",
            n->act.kind && n->op != OP_ACT ? act_names[n->act.kind] : "", n->nin == 2 && n->op == OP_CONV2D ? " +residual" : "");
  }
  fprintf(f, "total: %.3f GFLOP, weights %.2f MiB, activations %.2f MiB\n", tf / 1e9, tw / 1048576.0, ta / 1048576.0);
  fprintf(f, "workspace: %lld bytes (liveness bound %lld bytes); target %s, %d-lane vectors\n",
          (long long)g->workspace_size, (long long)g->workspace_bound, t->isa, t->vec);
  fprintf(f, "threads: each thread after the first adds %lld bytes of scratch, up to %d threads\n",
          (long long)g->thread_scratch, g->scratch_threads);
  arena_free(&a);
}
