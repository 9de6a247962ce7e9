/*
 * budget.c: the resource limits a model must stay within, checked before
 * the work that would need the resources.
 *
 * budget_params  needs: shapes (shape.c); gives: every tensor dimension
 *   within --max-dim, and the parameters' total size within
 *   --max-param-bytes, before weights.c allocates a single one of them
 *   (so `--random-weights` on a dense layer of 2^31 weights is an error,
 *   not an attempt to allocate 8 GiB).
 * budget_plan    needs: layout and depthwise fusion (padded layouts,
 *   packed weights, scratch); gives: the parameters as they will be stored
 *   in the object within --max-param-bytes, the sum of every buffer the
 *   memory planner may place (padded to whole channel blocks, plus kernel
 *   scratch, each rounded to 64 bytes) within int64, so that the planner's
 *   offsets cannot overflow, and the compiler's estimated peak memory
 *   within --max-memory, before LLVM is asked for any of it (LLVM aborts
 *   when it runs out of memory).
 * budget_address needs: the memory plan and the target; gives: on a
 *   target with 32-bit indices and pointers (the Cortex-M cores), every
 *   caller buffer, the workspace and the stored parameters each below
 *   2 GiB, the range the kernels' i32 offsets reach (docs/targets.md,
 *   "Index width"); beyond it the offsets would wrap silently.
 *
 * The memory estimate is what this compiler holds (every parameter array
 * in the arena, original and packed) plus what LLVM holds at its peak:
 * a copy of each stored parameter as a constant and the object's bytes
 * (about three copies in all, measured on vgg16: see docs/format.md),
 * plus a fixed cost per node.
 */
#include "cnnc.h"

#include <inttypes.h>

enum { ALIGN = 64, NODE_BYTES = 16 << 10 /* LLVM per layer: about 10 KiB measured at 100,000 layers */ };

static const char *mib(Graph *g, int64_t b) { return arena_printf(g->arena, "%.1f MiB", b / 1048576.0); }

static bool add_aligned(int64_t *total, int64_t bytes) {
  int64_t padded;
  if (bytes < 0 || !ck_add(bytes, ALIGN - 1, &padded)) return false;
  padded -= padded % ALIGN;
  return ck_add(*total, padded, total);
}

static int64_t param_bytes(const Param *p) {
  int64_t n = shape_numel(&p->shape), b;
  return n >= 0 && ck_mul(n, (int64_t)sizeof(float), &b) ? b : -1;
}

static bool check_dims(Graph *g) {
  bool ok = true;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    for (int d = 0; d < n->shape.rank; d++)
      if (n->shape.dim[d] > cnnc_limits.dim) {
        error_at(n->loc, "layer '%s': dimension %d of its output %s is larger than %" PRId64
                         " (the limit set by --max-dim)", n->name, d, shape_str(g->arena, &n->shape),
                 cnnc_limits.dim);
        ok = false;
        break;
      }
  }
  return ok;
}

bool budget_params(Graph *g) {
  bool ok = check_dims(g);
  int64_t total = 0;
  for (int i = 0; i < g->nparams; i++) {
    Param *p = g->params[i];
    if (p->shape.rank == 0) continue;
    if (!add_aligned(&total, param_bytes(p)) || total > cnnc_limits.param_bytes) {
      error_at(p->loc, "the parameters are too large: with '%s' (%s) they pass %s, the limit set by "
                       "--max-param-bytes", p->name, shape_str(g->arena, &p->shape),
               mib(g, cnnc_limits.param_bytes));
      return false;
    }
  }
  return ok;
}

/* The parameters the nodes still use, each once. */
static int64_t stored_param_bytes(Graph *g, bool *overflow) {
  int64_t total = 0;
  StrMap seen = {0};
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    const Node *d = n->pre_dw ? &g->nodes[n->pre_dw - 1] : NULL;
    const Param *ps[6] = {n->weight, n->bias, n->mean, n->var, d ? d->weight : NULL, d ? d->bias : NULL};
    for (int j = 0; j < 6; j++) {
      if (!ps[j] || strmap_get(&seen, ps[j]->name)) continue;
      strmap_put(g->arena, &seen, ps[j]->name, (void *)ps[j]);
      if (!add_aligned(&total, param_bytes(ps[j]))) *overflow = true;
    }
  }
  return total;
}

bool budget_plan(Graph *g, BudgetUse *use) {
  bool overflow = false;
  int64_t stored = stored_param_bytes(g, &overflow), held = 0, buffers = 0;
  /* the variants of one object (--cpu lists) count together: the object, and LLVM, hold them all */
  if (!overflow && !ck_add(stored, use->stored, &stored)) overflow = true;
  if (overflow || stored > cnnc_limits.param_bytes) {
    error_at((Loc){g->file, 0, 0}, "the parameters as stored in the object (packed for the target's "
                                   "kernels) pass %s, the limit set by --max-param-bytes",
             mib(g, cnnc_limits.param_bytes));
    return false;
  }
  for (int i = 0; i < g->nparams; i++)
    if (!add_aligned(&held, param_bytes(g->params[i]))) overflow = true;
  for (int i = 0; i < g->nnodes && !overflow; i++) {
    int64_t f = node_floats(&g->nodes[i]), b;
    if (f < 0 || !ck_mul(f, (int64_t)sizeof(float), &b) || !add_aligned(&buffers, b) ||
        !add_aligned(&buffers, g->nodes[i].scratch))
      overflow = true;
  }
  if (overflow) {
    error_at((Loc){g->file, 0, 0}, "the model's tensors are too large: their sizes overflow 64 bits");
    return false;
  }
  int64_t est = held, lx;
  if (!ck_mul(stored, 3, &lx) || !ck_add(est, lx, &est) || !ck_add(est, (int64_t)g->nnodes * NODE_BYTES, &est) ||
      !ck_add(est, use->held, &est) || est > cnnc_limits.memory) {
    error_at((Loc){g->file, 0, 0}, "compiling this model needs about %s of memory (%s of parameters), more "
                                   "than the %s allowed by --max-memory",
             overflow ? "more than 2^63 bytes" : mib(g, est), mib(g, stored), mib(g, cnnc_limits.memory));
    return false;
  }
  use->stored = stored;
  use->held += held + (int64_t)g->nnodes * NODE_BYTES;
  return true;
}

enum { INDEX32_BYTES_LIMIT = 1u << 31 };

static void index32_error(Graph *g, const TargetInfo *t, Loc loc, const char *what, int64_t bytes) {
  error_at(loc, "%s is %s, beyond the 2 GiB that 32-bit indices reach on %s (%s)", what, mib(g, bytes),
           t->triple, t->arch->name);
}

static bool fits_index32(Graph *g, const TargetInfo *t, Loc loc, const char *what, int64_t bytes) {
  if (bytes < INDEX32_BYTES_LIMIT) return true;
  index32_error(g, t, loc, what, bytes);
  return false;
}

bool budget_address(Graph *g, const TargetInfo *t) {
  if (t->arch->index_bits != 32) return true;
  bool ok = true, overflow = false;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    int64_t bytes = node_floats(n) * (int64_t)sizeof(float);
    if ((n->op != OP_INPUT && n->output_index < 0) || bytes < INDEX32_BYTES_LIMIT) continue; /* workspace: below */
    index32_error(g, t, n->loc, arena_printf(g->arena, "%s '%s' (%s)", n->op == OP_INPUT ? "input" : "output",
                                             n->name, shape_str(g->arena, &n->shape)), bytes);
    ok = false;
  }
  const Node *last = NULL; /* the buffer that ends last in the plan: where the error points */
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->offset >= 0 && (!last || n->offset + node_floats(n) > last->offset + node_floats(last))) last = n;
  }
  Loc file = {g->file, 0, 0};
  const char *ws = last ? arena_printf(g->arena, "the workspace, with layer '%s''s output at its end,", last->name)
                        : "the workspace";
  ok &= fits_index32(g, t, last ? last->loc : file, ws, workspace_for_threads(g, g->scratch_threads));
  int64_t stored = stored_param_bytes(g, &overflow);
  ok &= fits_index32(g, t, file, "the stored parameters' total", overflow ? INT64_MAX : stored);
  return ok;
}
