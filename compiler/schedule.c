/*
 * schedule.c: per-layer kernel choice and tiling.
 *
 * needs: verified graph; gives: Node.sched on every node, and Node.alias
 * for layers that need no code (a flatten is a view of its input unless
 * its result must be written to caller memory).
 *
 * Every node gets the scalar reference kernel for now; the blocked-layout,
 * register-blocked and Winograd kernels will be chosen here from each
 * layer's shape and the target's vector width and cache sizes.
 */
#include "cnnc.h"

void schedule(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->sched = (Schedule){.kernel = KERNEL_REF, .vec = 1};
    n->alias = n->op == OP_FLATTEN && n->output_index < 0;
  }
}
