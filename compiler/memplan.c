/*
 * memplan.c: places every intermediate tensor in the one workspace.
 *
 * needs: schedule and layout (Node.alias, layouts); gives: Node.offset for every node that
 * lives in the workspace, and Graph.workspace_size.
 *
 * Graph inputs and outputs live in caller memory; an aliasing node shares
 * its input's buffer (which must then stay live for the alias's users).
 * Every other node owns a buffer that is live from its own position in
 * the (topological) schedule to its last reader's, inclusive, so a
 * kernel's output never overlaps its inputs.  Buffers are placed largest
 * first, each at the lowest 64-byte aligned offset that does not overlap a
 * placed buffer with an intersecting lifetime (greedy by size, as in
 * TFLite's arena planner).  The result is deterministic.
 */
#include "cnnc.h"

#include <stdlib.h>

typedef struct {
  int node;        /* owner */
  bool scratch;    /* the node's kernel scratch, not its output */
  int first, last; /* live interval in schedule positions, inclusive */
  int64_t size;    /* bytes, 64-aligned */
  int64_t offset;  /* assigned */
} Buf;

static int root_of(const Graph *g, int id) {
  while (g->nodes[id].alias) id = g->nodes[id].in[0];
  return id;
}

static int by_size(const void *a, const void *b) {
  const Buf *x = a, *y = b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  if (x->node != y->node) return x->node - y->node;
  return x->scratch - y->scratch;
}

static bool overlaps(const Buf *a, const Buf *b) {
  return a->first <= b->last && b->first <= a->last;
}

/* Lowest aligned offset for b clear of every placed buffer live with it. */
static int64_t place(const Buf *bufs, int nplaced, const Buf *b) {
  int64_t off = 0;
  for (bool moved = true; moved;) {
    moved = false;
    for (int i = 0; i < nplaced; i++) {
      const Buf *p = &bufs[i];
      if (!overlaps(p, b)) continue;
      if (off < p->offset + p->size && p->offset < off + b->size) {
        off = p->offset + p->size;
        moved = true;
      }
    }
  }
  return off;
}

void memplan(Graph *g) {
  Buf *bufs = arena_array(g->arena, 2 * (size_t)g->nnodes + 1, sizeof *bufs);
  int *index = arena_array(g->arena, (size_t)g->nnodes, sizeof *index);
  int nb = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->offset = -1;
    index[i] = -1;
    if (n->input_index >= 0 || n->output_index >= 0 || n->alias) continue;
    int64_t bytes = node_floats(n) * (int64_t)sizeof(float);
    index[i] = nb;
    bufs[nb++] = (Buf){.node = i, .first = i, .last = i, .size = (bytes + 63) & ~(int64_t)63};
  }
  for (int i = 0; i < g->nnodes; i++) /* scratch: live only while its kernel runs */
    if (g->nodes[i].scratch > 0)
      bufs[nb++] = (Buf){.node = i, .scratch = true, .first = i, .last = i,
                         .size = (g->nodes[i].scratch + 63) & ~(int64_t)63};
  for (int i = 0; i < g->nnodes; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) {
      int r = root_of(g, g->nodes[i].in[j]);
      if (index[r] >= 0 && bufs[index[r]].last < i) bufs[index[r]].last = i;
    }
  g->workspace_bound = 0;
  for (int t = 0; t < g->nnodes; t++) {
    int64_t live = 0;
    for (int i = 0; i < nb; i++)
      if (bufs[i].first <= t && t <= bufs[i].last) live += bufs[i].size;
    if (live > g->workspace_bound) g->workspace_bound = live;
  }
  qsort(bufs, (size_t)nb, sizeof *bufs, by_size);
  int64_t total = 0;
  for (int i = 0; i < nb; i++) {
    bufs[i].offset = place(bufs, i, &bufs[i]);
    if (bufs[i].scratch) g->nodes[bufs[i].node].scratch_offset = bufs[i].offset;
    else g->nodes[bufs[i].node].offset = bufs[i].offset;
    if (bufs[i].offset + bufs[i].size > total) total = bufs[i].offset + bufs[i].size;
  }
  g->workspace_size = total;
}
