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
 * Every node gets the scalar reference kernel for now; the blocked-layout,
 * register-blocked and Winograd kernels will be chosen here from each
 * layer's shape and the target's vector width and cache sizes.
 */
#include "cnnc.h"

static bool is_view(Op op) { return op_has(op, F_VIEW); }

void schedule(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->sched = (Schedule){.kernel = KERNEL_REF, .vec = 1};
    n->alias = is_view(n->op) && n->output_index < 0;
  }
}
