/*
 * layout.c: channel-blocked layouts and reorders.
 *
 * needs: verified (and fused) graph, target (its vector width); gives:
 * Node.layout/cblock on every node, and REORDER nodes wherever a consumer
 * reads another layout than its producer writes.  Kernels are chosen
 * afterwards (schedule.c) and the weights packed for them (pack.c).
 *
 * Activations inside the network are NCHW<V>c (V = the target's vector
 * width in floats: 16 for AVX-512, 8 for AVX2, 4 for SSE): N, ceil(C/V),
 * H, W, V.  Lanes past C in the last block are "don't care": every kernel
 * that reads a blocked tensor reads only the real channels as data (conv
 * loops over real input channels; reorders copy real channels), so their
 * contents never matter.  Graph inputs and outputs are NCHW in caller
 * memory, so reorders appear only at the edges of the blocked region: the
 * first convolution reads NCHW directly, and a reorder turns the last
 * blocked tensor back into NCHW before dense/softmax/flatten.
 */
#include "cnnc.h"

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

int64_t node_floats(const Node *n) {
  if (n->layout != LAYOUT_NCHWC) return shape_numel(&n->shape);
  const Shape *s = &n->shape;
  return s->dim[0] * round_up(s->dim[1], n->cblock) * s->dim[2] * s->dim[3];
}

bool conv_is_depthwise(const Graph *g, const Node *n) {
  const Shape *in = &g->nodes[n->in[0]].shape;
  return n->a.conv.groups > 1 && n->a.conv.groups == in->dim[1] && n->shape.dim[1] == in->dim[1];
}

static bool blocked_conv(const Graph *g, const Node *n) {
  return n->op == OP_CONV2D && (n->a.conv.groups == 1 || conv_is_depthwise(g, n));
}

/* Whether `n` has a kernel that reads and writes blocked tensors. */
static bool has_blocked_kernel(const Graph *g, const Node *n) {
  if (n->shape.rank != 4 || !op_has(n->op, F_BLOCKED)) return false;
  switch (n->op) {
  case OP_CONV2D: return blocked_conv(g, n);
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D:
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D:
  case OP_BATCHNORM:
  case OP_DROPOUT: return true;
  case OP_ACT: return n->act.kind != ACT_PRELU;
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN:
    for (int j = 0; j < n->nin; j++) {
      const Shape *s = &g->nodes[n->in[j]].shape;
      bool same = shape_eq(s, &n->shape);
      bool per_channel = s->rank == 4 && s->dim[0] == n->shape.dim[0] && s->dim[1] == n->shape.dim[1] &&
                         s->dim[2] == 1 && s->dim[3] == 1;
      if (!same && !per_channel) return false;
    }
    return true;
  case OP_CONCAT: return n->a.concat.axis == 1;
  default: return false;
  }
}

/* Layout that node `n` wants its input j in, given its own output layout. */
static Layout wanted_input(const Graph *g, const Node *n, int j) {
  /* A direct (not depthwise) conv broadcasts single input values, so it
   * reads either layout: the first conv reads the NCHW image directly. */
  if (n->op == OP_CONV2D && blocked_conv(g, n) && !conv_is_depthwise(g, n) && j == 0)
    return g->nodes[n->in[0]].layout;
  return n->layout;
}

/* ---- rebuilding the node array with reorders ---- */

typedef struct {
  Node *nodes; /* new array */
  int n, cap;
  int *map;     /* old id -> new id */
  int *reorder; /* new id of producer -> new id of its reorder to the other layout, or -1 */
} Rebuild;

static int emit(Graph *g, Rebuild *r, Node node) {
  VEC_PUSH(g->arena, r->nodes, r->n, r->cap, node);
  return r->n - 1;
}

static Node reorder_node(Graph *g, const Node *src, int src_id, Layout to, int V) {
  Node n = {.op = OP_REORDER, .loc = src->loc, .nin = 1, .shape = src->shape, .layout = to,
            .cblock = to == LAYOUT_NCHWC ? V : 0, .input_index = -1, .output_index = -1, .offset = -1};
  n.name = arena_printf(g->arena, "%s_%s", src->name, to == LAYOUT_NCHWC ? "blocked" : "plain");
  n.in = arena_alloc(g->arena, sizeof(int));
  n.in[0] = src_id;
  return n;
}

/* New id of old node `id` seen in layout `want`, inserting a reorder if needed. */
static int input_in(Graph *g, Rebuild *r, int id, Layout want, int V) {
  int nid = r->map[id];
  if (r->nodes[nid].layout == want) return nid;
  if (r->reorder[nid] < 0) {
    Node ro = reorder_node(g, &r->nodes[nid], nid, want, V);
    r->reorder[nid] = emit(g, r, ro);
  }
  return r->reorder[nid];
}

void layout(Graph *g, const TargetInfo *t) {
  int V = t->vec;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->layout = LAYOUT_NCHW;
    n->cblock = 0;
    /* V = 1 (scalar FPU cores): NCHW1c is NCHW, and the blocked kernels
     * still bring their register blocking */
    if ((V > 1 && V < 4) || !has_blocked_kernel(g, n)) continue;
    bool blocked = n->op == OP_CONV2D;
    for (int j = 0; j < n->nin && !blocked; j++) blocked = g->nodes[n->in[j]].layout == LAYOUT_NCHWC;
    if (!blocked) continue;
    n->layout = LAYOUT_NCHWC;
    n->cblock = V;
  }
  Rebuild r = {0};
  int total = 2 * g->nnodes + 1;
  r.map = arena_array(g->arena, (size_t)g->nnodes, sizeof(int));
  r.reorder = arena_array(g->arena, (size_t)total, sizeof(int));
  for (int i = 0; i < total; i++) r.reorder[i] = -1;
  for (int i = 0; i < g->nnodes; i++) {
    Node n = g->nodes[i];
    int *in = arena_array(g->arena, (size_t)n.nin + 1, sizeof(int));
    for (int j = 0; j < n.nin; j++) in[j] = input_in(g, &r, n.in[j], wanted_input(g, &g->nodes[i], j), V);
    n.in = in;
    int out_index = n.output_index;
    if (out_index >= 0 && n.layout == LAYOUT_NCHWC) {
      /* The caller gets NCHW: the blocked result moves to the workspace
       * under a new name and a reorder writes the output. */
      const char *name = n.name;
      n.name = arena_printf(g->arena, "%s_blocked", name);
      n.user_name = name;
      n.output_index = -1;
      n.alias = n.op == OP_DROPOUT; /* now an inner node: a view again */
      r.map[i] = emit(g, &r, n);
      Node ro = reorder_node(g, &n, r.map[i], LAYOUT_NCHW, V);
      ro.name = name;
      ro.output_index = out_index;
      r.reorder[r.map[i]] = emit(g, &r, ro);
      continue;
    }
    r.map[i] = emit(g, &r, n);
  }
  for (int i = 0; i < g->ninputs; i++) g->inputs[i] = r.map[g->inputs[i]];
  for (int i = 0; i < g->noutputs; i++) {
    int id = r.map[g->outputs[i]];
    g->outputs[i] = r.nodes[id].output_index >= 0 ? id : r.reorder[id];
  }
  g->nodes = r.nodes;
  g->nnodes = r.n;
  g->capnodes = r.cap;
}
