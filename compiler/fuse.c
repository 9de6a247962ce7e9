/*
 * fuse.c: activations and residual additions moved into the epilogue of
 * the layer that produces their input.
 *
 * needs: folded graph (fold_bn.c); gives:
 *   - no activation layer (other than prelu) directly after a layer that
 *     takes one (F_ACT: convolutions, dense, linear, the binary ops) and
 *     has no activation of its own and no other consumer: that layer's
 *     `act` does it;
 *   - no two-input add of equal shapes where one input is a conv2d with
 *     no activation, no other consumer, and the other input computed
 *     before it: the conv gets the other input as in[1] (its residual),
 *     and the add's activation.
 *   - no zero constant pad directly before a conv2d that is its only
 *     consumer: the pad widens the conv's own (possibly asymmetric)
 *     padding, whose taps the kernels skip instead of reading zeros.
 * A removed layer that was a graph output hands that role (and its name)
 * to the layer it was fused into.
 */
#include "cnnc.h"

static bool takes_act(Op op) { return op_has(op, F_ACT); }

static bool sole_private_use(const Node *p) { return p->nuses == 1 && p->output_index < 0; }

static void fuse_acts(Graph *g, int *replace) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *a = &g->nodes[i];
    if (a->op != OP_ACT || a->act.kind == ACT_PRELU) continue;
    Node *p = &g->nodes[a->in[0]];
    if (!takes_act(p->op) || p->act.kind != ACT_NONE || !sole_private_use(p)) continue;
    p->act = a->act;
    graph_take_output(g, p, a);
    replace[i] = a->in[0];
  }
}

/* The conv input of `add` that can absorb it, or -1. */
static int residual_conv(const Graph *g, const Node *add) {
  if (add->op != OP_ADD || add->nin != 2) return -1;
  for (int j = 0; j < 2; j++)
    if (!shape_eq(&g->nodes[add->in[j]].shape, &add->shape)) return -1;
  int best = -1;
  for (int j = 0; j < 2; j++) {
    int c = add->in[j], r = add->in[1 - j];
    const Node *cn = &g->nodes[c];
    if (cn->op == OP_CONV2D && cn->nin == 1 && cn->act.kind == ACT_NONE && sole_private_use(cn) && r < c && c > best)
      best = c;
  }
  return best;
}

static void fuse_residuals(Graph *g, int *replace) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *add = &g->nodes[i];
    int c = residual_conv(g, add);
    if (c < 0) continue;
    Node *cn = &g->nodes[c];
    int r = add->in[0] == c ? add->in[1] : add->in[0];
    int *in = arena_array(g->arena, 2, sizeof(int));
    in[0] = cn->in[0];
    in[1] = r;
    cn->in = in;
    cn->nin = 2;
    cn->act = add->act;
    graph_take_output(g, cn, add);
    replace[i] = c;
  }
}

static void fuse_pads(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *c = &g->nodes[i];
    if (c->op != OP_CONV2D) continue;
    Node *p = &g->nodes[c->in[0]];
    if (p->op != OP_PAD || p->a.pad.mode != PAD_CONSTANT || p->a.pad.value != 0 || !sole_private_use(p)) continue;
    for (int k = 0; k < 4; k++) c->a.conv.pad[k] += p->a.pad.pad[k];
    int *in = arena_array(g->arena, (size_t)c->nin, sizeof(int));
    for (int j = 0; j < c->nin; j++) in[j] = c->in[j];
    in[0] = p->in[0];
    c->in = in;
  }
}

/* Drops pads that fuse_pads left without readers. */
static void drop_dead_pads(Graph *g, int *replace) {
  graph_count_uses(g);
  for (int i = 0; i < g->nnodes; i++) {
    Node *p = &g->nodes[i];
    if (p->op == OP_PAD && p->nuses == 0 && p->output_index < 0) replace[i] = p->in[0];
  }
}

void fuse(Graph *g) {
  graph_count_uses(g);
  int *replace = graph_identity_map(g);
  fuse_pads(g);
  drop_dead_pads(g, replace);
  graph_rewrite(g, replace);
  replace = graph_identity_map(g);
  fuse_acts(g, replace);
  graph_rewrite(g, replace);
  replace = graph_identity_map(g);
  fuse_residuals(g, replace);
  graph_rewrite(g, replace);
}
