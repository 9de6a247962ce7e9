/*
 * fuse_dw.c: a depthwise convolution computed in strips of rows inside the 1x1
 * convolution that consumes it (MobileNet's depthwise + projection).
 *
 * needs: layout (blocked layouts); gives: for each fused pair, the 1x1
 * conv's pre_dw (1 + the depthwise node) and its in[0] = the depthwise
 * conv's input; the depthwise node is `fused`: it has no buffer and no
 * task of its own.  The scheduler (schedule.c) then gives both their
 * direct kernels and the strips: the 1x1 conv's tile_oh (rows per strip)
 * and scratch for a strip of depthwise output.
 *
 * The kernel (cg_conv_direct.c) computes, for each strip of output rows,
 * those rows of the depthwise output for every channel into a scratch strip
 * sized to a quarter of L2, then the 1x1 conv of the strip.  The depthwise
 * output tensor never exists, which saves its buffer (mobilenet_v2's
 * workspace: 5.36 MiB instead of 5.74) and its trip through memory.
 *
 * Opt-in (--fuse-dw=on): measured on mobilenet_v2 (AVX-512, Zen 4) the fused
 * pairs ran 1-16% slower than the two kernels apart, except the first
 * (112x112, 8% faster); the whole net 6.10 ms against 6.00.  Everything
 * already stays in L2/L3 here, and the 1x1 conv loses the reuse of its
 * weights across the rows of a whole image.
 *
 * Conditions: the depthwise conv is blocked (so the scheduler gives it the
 * direct kernel), has no other reader and is not a graph output; the
 * consumer is a blocked 1x1 conv (direct: Winograd takes only 3x3) with
 * stride 1 and no padding that reads it as in[0].
 */
#include "cnnc.h"

static bool fusable_pw(const Node *n) {
  const ConvAttr *c = &n->a.conv;
  return n->op == OP_CONV2D && n->layout == LAYOUT_NCHWC && c->groups == 1 &&
         c->kernel[0] == 1 && c->kernel[1] == 1 && c->stride[0] == 1 && c->stride[1] == 1 && c->pad[0] == 0 &&
         c->pad[1] == 0 && c->pad[2] == 0 && c->pad[3] == 0;
}

static bool fusable_dw(const Graph *g, const Node *d) {
  if (d->op != OP_CONV2D || d->layout != LAYOUT_NCHWC || d->nin != 1 ||
      d->nuses != 1 || d->output_index >= 0)
    return false;
  const Node *x = &g->nodes[d->in[0]];
  int64_t C = x->shape.dim[1];
  return d->a.conv.groups > 1 && d->a.conv.groups == C && d->shape.dim[1] == C && x->layout == LAYOUT_NCHWC &&
         x->cblock == d->cblock;
}

void fuse_dw(Graph *g, const TargetInfo *t) {
  if (!t->fuse_dw) return;
  graph_count_uses(g);
  for (int i = 0; i < g->nnodes; i++) {
    Node *p = &g->nodes[i];
    if (!fusable_pw(p)) continue;
    Node *d = &g->nodes[p->in[0]];
    if (!fusable_dw(g, d) || d->cblock != p->cblock) continue;
    int *in = arena_array(g->arena, (size_t)p->nin, sizeof(int));
    for (int j = 0; j < p->nin; j++) in[j] = p->in[j];
    p->pre_dw = in[0] + 1;
    in[0] = d->in[0];
    p->in = in;
    d->fused = true;
  }
  graph_count_uses(g);
}
