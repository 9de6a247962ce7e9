/*
 * rewrite.c: removing nodes from the topologically ordered node array.
 *
 * Passes that merge a node into another (fold_bn.c, fuse.c) mark it with
 * replace[i] = j, j < i: node i disappears and its consumers read node j.
 * graph_rewrite then compacts the array, renumbers every input, the graph
 * input and output lists, and keeps the order (so the result is still
 * topological and dumps stay deterministic).
 */
#include "cnnc.h"

void graph_rewrite(Graph *g, const int *replace) {
  int *newid = arena_array(g->arena, (size_t)g->nnodes, sizeof(int));
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (replace[i] == i) {
      newid[i] = n;
      g->nodes[n++] = g->nodes[i];
    } else {
      CNNC_ASSERT(replace[i] < i && replace[replace[i]] == replace[i]);
      newid[i] = newid[replace[i]];
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) g->nodes[i].in[j] = newid[g->nodes[i].in[j]];
  for (int i = 0; i < g->ninputs; i++) g->inputs[i] = newid[g->inputs[i]];
  for (int i = 0; i < g->noutputs; i++) g->outputs[i] = newid[g->outputs[i]];
  g->nnodes = n;
  graph_count_uses(g);
}

int *graph_identity_map(Graph *g) {
  int *r = arena_array(g->arena, (size_t)g->nnodes, sizeof(int));
  for (int i = 0; i < g->nnodes; i++) r[i] = i;
  return r;
}

/* Node `dst` takes over `src`'s role as a graph output (and its name, which
 * the generated API uses) when src is one. */
void graph_take_output(Graph *g, Node *dst, const Node *src) {
  if (src->output_index < 0) return;
  dst->output_index = src->output_index;
  dst->name = src->name;
  g->outputs[src->output_index] = (int)(dst - g->nodes);
}
