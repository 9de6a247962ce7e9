/*
 * fold_bn.c: batchnorm folded into the convolution before it.
 *
 * needs: verified graph with bound weights; gives: no batchnorm that
 * directly follows a conv2d whose only consumer it is.
 *
 * In eval mode batchnorm is y = x * s + (beta - mean * s) per channel with
 * s = gamma / sqrt(var + eps), so conv followed by batchnorm is one conv
 * with weights w * s (per output channel) and bias (b - mean) * s + beta.
 * The new weights are computed in double precision; the conv keeps its
 * place and takes the batchnorm's consumers (and name, when the batchnorm
 * is a graph output).
 */
#include "cnnc.h"

#include <math.h>

static Param *derived(Graph *g, const Param *like, const char *name, int64_t n) {
  Param *p = arena_alloc(g->arena, sizeof *p);
  *p = *like;
  p->name = name;
  p->shape = (Shape){1, {n}};
  p->data = arena_array(g->arena, (size_t)n, sizeof(float));
  VEC_PUSH(g->arena, g->params, g->nparams, g->capparams, p);
  return p;
}

static bool foldable(const Graph *g, const Node *bn) {
  if (bn->op != OP_BATCHNORM || bn->shape.rank != 4) return false;
  const Node *c = &g->nodes[bn->in[0]];
  return c->op == OP_CONV2D && c->nuses == 1 && c->output_index < 0 && c->act.kind == ACT_NONE && c->nin == 1;
}

static void fold(Graph *g, Node *c, const Node *bn) {
  const Param *w = c->weight;
  int64_t OC = w->shape.dim[0], per = shape_numel(&w->shape) / OC;
  Param *nw = derived(g, w, arena_printf(g->arena, "%s.folded", w->name), OC * per);
  nw->shape = w->shape;
  Param *nb = derived(g, bn->bias, arena_printf(g->arena, "%s.folded_bias", c->name), OC);
  for (int64_t o = 0; o < OC; o++) {
    double s = bn->weight->data[o] / sqrt((double)bn->var->data[o] + bn->a.bn.epsilon);
    for (int64_t i = 0; i < per; i++) nw->data[o * per + i] = (float)(w->data[o * per + i] * s);
    double b = c->bias ? c->bias->data[o] : 0.0;
    nb->data[o] = (float)((b - bn->mean->data[o]) * s + bn->bias->data[o]);
  }
  c->weight = nw;
  c->bias = nb;
  c->a.conv.has_bias = true;
}

void fold_bn(Graph *g) {
  graph_count_uses(g);
  int *replace = graph_identity_map(g);
  for (int i = 0; i < g->nnodes; i++) {
    Node *bn = &g->nodes[i];
    if (!foldable(g, bn)) continue;
    Node *c = &g->nodes[bn->in[0]];
    fold(g, c, bn);
    graph_take_output(g, c, bn);
    replace[i] = bn->in[0];
  }
  graph_rewrite(g, replace);
}
