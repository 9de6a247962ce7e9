/*
 * memplan.c: places every intermediate tensor in the one workspace.
 *
 * needs: schedule and layout (Node.alias, layouts); gives: Node.offset for every node that
 * lives in the workspace, and Graph.workspace_size.
 *
 * Graph inputs and outputs live in caller memory; an aliasing node shares
 * its input's buffer (which must then stay live for the alias's users), and
 * so does an element-wise layer that overwrites its dying input in place.
 * Every other node owns a buffer that is live from its own position in
 * the (topological) schedule to its last reader's, inclusive, so a
 * kernel's output never overlaps its inputs.  Buffers are placed one at a
 * time, each at the lowest 64-byte aligned offset that does not overlap a
 * placed buffer with an intersecting lifetime, in two orders (largest
 * first, as TFLite's arena planner does, and by first use); the smaller
 * result wins.  The result is deterministic.
 */
#include "cnnc.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  int node;        /* owner */
  bool scratch;    /* the node's kernel scratch, not its output */
  int first, last; /* live interval in schedule positions, inclusive */
  int64_t size;    /* bytes, 64-aligned */
  int64_t offset;  /* assigned */
} Buf;

/* The node that owns the buffer `id` lives in (views and in-place layers
 * share their first input's). */
static int root_of(const Graph *g, int id) {
  while (g->nodes[id].alias || g->nodes[id].inplace) id = g->nodes[id].in[0];
  return id;
}

/* Element-wise layers whose output element i depends only on element i
 * of in[0] (and on other inputs) may overwrite in[0] when nothing reads it
 * afterwards: same shape and layout, a workspace buffer (never caller
 * memory), not also another input, and no reader after this layer.
 * Decided front to back, so chains of such layers share one buffer. */
static void choose_inplace(Graph *g) {
  int *lastuse = arena_array(g->arena, (size_t)g->nnodes, sizeof(int));
  for (int i = 0; i < g->nnodes; i++) {
    lastuse[i] = i;
    g->nodes[i].inplace = false;
  }
  for (int i = 0; i < g->nnodes; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) lastuse[g->nodes[i].in[j]] = i;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    bool eltwise = (n->op == OP_ACT && n->act.kind != ACT_PRELU) || n->op == OP_BATCHNORM || n->op == OP_ADD ||
                   n->op == OP_MUL;
    if (!eltwise || n->alias || n->output_index >= 0 || n->nin < 1) continue;
    const Node *x = &g->nodes[n->in[0]];
    int r = root_of(g, n->in[0]);
    if (!shape_eq(&x->shape, &n->shape) || x->layout != n->layout || x->cblock != n->cblock) continue;
    if (g->nodes[r].input_index >= 0 || g->nodes[r].output_index >= 0) continue;
    bool ok = true;
    for (int j = 1; j < n->nin; j++) ok &= root_of(g, n->in[j]) != r;
    for (int k = r; k < i && ok; k++) /* every reader of the buffer so far */
      ok = root_of(g, k) != r || lastuse[k] <= i;
    n->inplace = ok;
  }
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

static int by_start(const void *a, const void *b) {
  const Buf *x = a, *y = b;
  if (x->first != y->first) return x->first - y->first;
  return by_size(a, b);
}

/* Sorts bufs by `order`, places each in turn; returns the total size. */
static int64_t place_all(Buf *bufs, int nb, int (*order)(const void *, const void *)) {
  qsort(bufs, (size_t)nb, sizeof *bufs, order);
  int64_t total = 0;
  for (int i = 0; i < nb; i++) {
    bufs[i].offset = place(bufs, i, &bufs[i]);
    if (bufs[i].offset + bufs[i].size > total) total = bufs[i].offset + bufs[i].size;
  }
  return total;
}

void memplan(Graph *g) {
  choose_inplace(g);
  Buf *bufs = arena_array(g->arena, 2 * (size_t)g->nnodes + 1, sizeof *bufs);
  int *index = arena_array(g->arena, (size_t)g->nnodes, sizeof *index);
  int nb = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->offset = -1;
    index[i] = -1;
    if (n->input_index >= 0 || n->output_index >= 0 || n->alias || n->inplace || n->fused) continue;
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
  /* Two greedy orders; keep the smaller workspace (ties: by size). */
  Buf *alt = arena_array(g->arena, (size_t)nb + 1, sizeof *alt);
  memcpy(alt, bufs, (size_t)nb * sizeof *bufs);
  int64_t total = place_all(bufs, nb, by_size), total_alt = place_all(alt, nb, by_start);
  if (total_alt < total) {
    bufs = alt;
    total = total_alt;
  }
  for (int i = 0; i < nb; i++) {
    if (bufs[i].scratch) g->nodes[bufs[i].node].scratch_offset = bufs[i].offset;
    else g->nodes[bufs[i].node].offset = bufs[i].offset;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].inplace) g->nodes[i].offset = g->nodes[root_of(g, i)].offset;
  g->workspace_size = total;
}
