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
 *
 * Threads: a layer split into k tasks with kernel scratch needs k scratch
 * slots, one per task.  Slot 0 is the planned scratch buffer above, so
 * one thread needs exactly workspace_size; slots 1..k-1 of every layer
 * share one region after it (scratch lives only while its kernel runs),
 * slot j at workspace_size + (j-1) * thread_scratch.  A run on up to n
 * threads therefore needs workspace_for_threads(g, n) bytes, the header's
 * WORKSPACE_SIZE_THREADS(n).
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
 * share their first input's); root[] caches it for nodes already seen. */
static int root_of(const Graph *g, const int *root, int id) {
  const Node *n = &g->nodes[id];
  return n->alias || n->inplace ? root[n->in[0]] : id;
}

/* Element-wise layers whose output element i depends only on element i
 * of in[0] (and on other inputs) may overwrite in[0] when nothing reads it
 * afterwards: same shape and layout, a workspace buffer (never caller
 * memory), not also another input, and no reader after this layer.
 * Decided front to back, so chains of such layers share one buffer.
 * maxlast[r] is the last reader of any node living in buffer r so far, so
 * the whole decision is linear in the graph. */
static int *choose_inplace(Graph *g) {
  size_t n = (size_t)g->nnodes + 1;
  int *lastuse = arena_array(g->arena, n, sizeof(int)), *root = arena_array(g->arena, n, sizeof(int));
  int *maxlast = arena_array(g->arena, n, sizeof(int));
  for (int i = 0; i < g->nnodes; i++) {
    lastuse[i] = i;
    g->nodes[i].inplace = false;
  }
  for (int i = 0; i < g->nnodes; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) lastuse[g->nodes[i].in[j]] = i;
  for (int i = 0; i < g->nnodes; i++) {
    Node *nd = &g->nodes[i];
    bool eltwise = op_has(nd->op, F_INPLACE) && !(nd->op == OP_ACT && nd->act.kind == ACT_PRELU);
    if (eltwise && !nd->alias && nd->output_index < 0 && nd->nin >= 1) {
      const Node *x = &g->nodes[nd->in[0]];
      int r = root[nd->in[0]];
      bool ok = shape_eq(&x->shape, &nd->shape) && x->layout == nd->layout && x->cblock == nd->cblock &&
                g->nodes[r].input_index < 0 && g->nodes[r].output_index < 0 && g->nodes[r].op != OP_CONSTANT &&
                maxlast[r] <= i;
      for (int j = 1; j < nd->nin && ok; j++) ok = root[nd->in[j]] != r;
      nd->inplace = ok;
    }
    root[i] = root_of(g, root, i);
    if (lastuse[i] > maxlast[root[i]]) maxlast[root[i]] = lastuse[i];
  }
  return root;
}

static int by_size(const void *a, const void *b) {
  const Buf *x = a, *y = b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  if (x->node != y->node) return x->node - y->node;
  return x->scratch - y->scratch;
}

static int by_start(const void *a, const void *b) {
  const Buf *x = a, *y = b;
  if (x->first != y->first) return x->first - y->first;
  return by_size(a, b);
}

static int by_offset(const void *a, const void *b) {
  const Buf *x = *(const Buf *const *)a, *y = *(const Buf *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Placed buffers by the time buckets (BUCKET schedule positions each) their
 * lifetimes touch, so that placing a buffer looks only at buffers live
 * near its own lifetime. */
enum { BUCKET = 32 };
typedef struct {
  Buf ***items; /* per bucket: placed buffers */
  int *n, *cap;
  int nbuckets;
  Buf **cand;   /* scratch for one placement */
  unsigned *mark; /* per buffer: the placement that last listed it */
} Index;

static void index_add(Arena *a, Index *x, Buf *b) {
  for (int k = b->first / BUCKET; k <= b->last / BUCKET; k++)
    VEC_PUSH(a, x->items[k], x->n[k], x->cap[k], b);
}

/* Lowest aligned offset for b clear of every placed buffer live with it:
 * the candidates sorted by offset, then one first-fit sweep. */
static int64_t place(Index *x, const Buf *bufs, const Buf *b, unsigned stamp) {
  int nc = 0;
  for (int k = b->first / BUCKET; k <= b->last / BUCKET; k++)
    for (int i = 0; i < x->n[k]; i++) {
      Buf *p = x->items[k][i];
      unsigned *m = &x->mark[p - bufs];
      if (*m == stamp || p->first > b->last || b->first > p->last) continue;
      *m = stamp;
      x->cand[nc++] = p;
    }
  qsort(x->cand, (size_t)nc, sizeof *x->cand, by_offset);
  int64_t off = 0;
  for (int i = 0; i < nc; i++) {
    if (x->cand[i]->offset >= off + b->size) break;
    if (x->cand[i]->offset + x->cand[i]->size > off) off = x->cand[i]->offset + x->cand[i]->size;
  }
  return off;
}

/* Sorts bufs by `order`, places each in turn; returns the total size. */
static int64_t place_all(Graph *g, Buf *bufs, int nb, int (*order)(const void *, const void *)) {
  qsort(bufs, (size_t)nb, sizeof *bufs, order);
  Index x = {.nbuckets = g->nnodes / BUCKET + 1};
  x.items = arena_array(g->arena, (size_t)x.nbuckets, sizeof *x.items);
  x.n = arena_array(g->arena, (size_t)x.nbuckets, sizeof *x.n);
  x.cap = arena_array(g->arena, (size_t)x.nbuckets, sizeof *x.cap);
  x.cand = arena_array(g->arena, (size_t)nb + 1, sizeof *x.cand);
  x.mark = arena_array(g->arena, (size_t)nb + 1, sizeof *x.mark);
  int64_t total = 0;
  for (int i = 0; i < nb; i++) {
    bufs[i].offset = place(&x, bufs, &bufs[i], (unsigned)i + 1);
    index_add(g->arena, &x, &bufs[i]);
    if (bufs[i].offset + bufs[i].size > total) total = bufs[i].offset + bufs[i].size;
  }
  return total;
}

/* The most bytes live at one time: a sweep over lifetime ends. */
static int64_t liveness_bound(Graph *g, const Buf *bufs, int nb) {
  int64_t *delta = arena_array(g->arena, (size_t)g->nnodes + 2, sizeof *delta), live = 0, best = 0;
  for (int i = 0; i < nb; i++) {
    delta[bufs[i].first] += bufs[i].size;
    delta[bufs[i].last + 1] -= bufs[i].size;
  }
  for (int t = 0; t <= g->nnodes; t++) {
    live += delta[t];
    if (live > best) best = live;
  }
  return best;
}

void memplan(Graph *g) {
  int *root = choose_inplace(g);
  Buf *bufs = arena_array(g->arena, 2 * (size_t)g->nnodes + 1, sizeof *bufs);
  int *index = arena_array(g->arena, (size_t)g->nnodes, sizeof *index);
  int nb = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->offset = -1;
    index[i] = -1;
    if (n->input_index >= 0 || n->output_index >= 0 || n->alias || n->inplace || n->fused || n->op == OP_CONSTANT)
      continue; /* caller memory, shared buffers, or constant data in the object */
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
      int r = root[g->nodes[i].in[j]];
      if (index[r] >= 0 && bufs[index[r]].last < i) bufs[index[r]].last = i;
    }
  g->workspace_bound = liveness_bound(g, bufs, nb);
  /* Two greedy orders; keep the smaller workspace (ties: by size). */
  Buf *alt = arena_array(g->arena, (size_t)nb + 1, sizeof *alt);
  memcpy(alt, bufs, (size_t)nb * sizeof *bufs);
  int64_t total = place_all(g, bufs, nb, by_size), total_alt = place_all(g, alt, nb, by_start);
  if (total_alt < total) {
    bufs = alt;
    total = total_alt;
  }
  for (int i = 0; i < nb; i++) {
    if (bufs[i].scratch) g->nodes[bufs[i].node].scratch_offset = bufs[i].offset;
    else g->nodes[bufs[i].node].offset = bufs[i].offset;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].inplace) g->nodes[i].offset = g->nodes[root[i]].offset;
  g->workspace_size = total;
  g->thread_scratch = 0;
  g->scratch_threads = 1;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = &g->nodes[i];
    if (n->scratch <= 0 || n->sched.max_tasks < 2) continue;
    int64_t slot = (n->scratch + 63) & ~(int64_t)63;
    if (slot > g->thread_scratch) g->thread_scratch = slot;
    if (n->sched.max_tasks > g->scratch_threads) g->scratch_threads = n->sched.max_tasks;
  }
}

int64_t workspace_for_threads(const Graph *g, int64_t threads) {
  int64_t extra = threads < g->scratch_threads ? threads : g->scratch_threads;
  return g->workspace_size + (extra > 1 ? extra - 1 : 0) * g->thread_scratch;
}
