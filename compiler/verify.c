/*
 * verify.c: the last check before the graph reaches the back end.
 *
 * needs: spec graph, shapes (shape.c), bound parameters (weights.c);
 * gives: a guarantee to every later pass that
 *   - nodes are in topological order and every input id is valid,
 *   - every node has a shape whose element count and byte size fit int64,
 *   - every Param has a shape and data holding numel(shape) floats,
 *   - inputs are OP_INPUT nodes numbered 0..ninputs-1, outputs are layers
 *     numbered 0..noutputs-1, no node is listed twice,
 *   - the total bytes of all parameters and of all intermediate tensors,
 *     each rounded up to 64, fit int64.
 * Sizes that later passes make (tensors padded to whole channel blocks,
 * packed and Winograd weights, kernel scratch) are checked where they are
 * made: pack.c reserves packed weights against --max-param-bytes before
 * allocating them, and budget_plan (budget.c) checks the padded buffers
 * and scratch before the memory planner adds them up.
 * Broken invariants that earlier phases should have prevented are
 * internal bugs (CNNC_ASSERT); what a user could still cause is reported
 * with a location.
 */
#include "cnnc.h"

enum { ALIGN = 64 };

static const char *nname(const Node *n) { return n->name ? n->name : "?"; }

static bool add_aligned(int64_t *total, int64_t bytes) {
  int64_t padded;
  if (!ck_add(bytes, ALIGN - 1, &padded)) return false;
  padded -= padded % ALIGN;
  return ck_add(*total, padded, total);
}

/* Which parameters each op has. */
static void check_params(const Node *n) {
  bool conv = n->op == OP_CONV2D || n->op == OP_CONV_TRANSPOSE2D, dense = n->op == OP_DENSE || n->op == OP_LINEAR;
  bool norm = n->op == OP_LAYER_NORM || n->op == OP_INSTANCE_NORM;
  bool prelu = n->op == OP_ACT && n->act.kind == ACT_PRELU;
  bool has_weight = op_has(n->op, F_PARAMS) || prelu || n->op == OP_CONSTANT || (norm && n->a.norm.affine);
  CNNC_ASSERT(has_weight == (n->weight != NULL));
  if (conv) CNNC_ASSERT(n->a.conv.has_bias == (n->bias != NULL));
  if (dense) CNNC_ASSERT(n->a.dense.has_bias == (n->bias != NULL));
  if (norm) CNNC_ASSERT((n->bias != NULL) == n->a.norm.affine);
  if (n->op == OP_BATCHNORM) CNNC_ASSERT(n->bias && n->mean && n->var);
  if (!conv && !dense && !norm && n->op != OP_BATCHNORM) CNNC_ASSERT(n->bias == NULL);
  if (n->op != OP_BATCHNORM) CNNC_ASSERT(n->mean == NULL && n->var == NULL);
}

/* Fused activations only where the spec allows them; prelu is a layer. */
static void check_act(const Node *n) {
  CNNC_ASSERT((unsigned)n->act.kind < ACT_COUNT);
  if (n->op == OP_ACT) {
    CNNC_ASSERT(n->act.kind != ACT_NONE);
    return;
  }
  CNNC_ASSERT(n->act.kind != ACT_PRELU);
  if (!op_has(n->op, F_ACT)) CNNC_ASSERT(n->act.kind == ACT_NONE);
}

static void check_node(Graph *g, int id) {
  Node *n = &g->nodes[id];
  CNNC_ASSERT(n->name != NULL);
  CNNC_ASSERT((unsigned)n->op < OP_COUNT && !op_internal(n->op));
  CNNC_ASSERT(n->nin >= op_min_in[n->op] && (op_max_in[n->op] < 0 || n->nin <= op_max_in[n->op]));
  for (int k = 0; k < n->nin; k++) CNNC_ASSERT(n->in[k] >= 0 && n->in[k] < id);
  CNNC_ASSERT(n->shape.rank > 0 && n->shape.rank <= MAX_RANK);
  int64_t numel = shape_numel(&n->shape), bytes;
  CNNC_ASSERT(numel > 0 && ck_mul(numel, (int64_t)sizeof(float), &bytes));
  CNNC_ASSERT((n->op == OP_INPUT) == (n->input_index >= 0));
  check_act(n);
  check_params(n);
}

static void check_param(const Param *p) {
  CNNC_ASSERT(p->name != NULL);
  CNNC_ASSERT(p->shape.rank > 0);
  CNNC_ASSERT(p->data != NULL);
  int64_t numel = shape_numel(&p->shape), bytes;
  CNNC_ASSERT(numel > 0 && ck_mul(numel, (int64_t)sizeof(float), &bytes));
  if (p->is_inline) CNNC_ASSERT(p->count == numel);
}

static void check_io(Graph *g) {
  CNNC_ASSERT(g->ninputs > 0 && g->noutputs > 0);
  for (int k = 0; k < g->ninputs; k++) {
    int id = g->inputs[k];
    CNNC_ASSERT(id >= 0 && id < g->nnodes);
    CNNC_ASSERT(g->nodes[id].op == OP_INPUT && g->nodes[id].input_index == k);
  }
  for (int k = 0; k < g->noutputs; k++) {
    int id = g->outputs[k];
    CNNC_ASSERT(id >= 0 && id < g->nnodes);
    Node *n = &g->nodes[id];
    if (n->op == OP_INPUT) {
      error_at(n->loc, "input '%s' cannot also be an output", nname(n));
      continue;
    }
    CNNC_ASSERT(n->output_index == k);
  }
  int nout = 0;
  for (int i = 0; i < g->nnodes; i++) nout += g->nodes[i].output_index >= 0;
  CNNC_ASSERT(nout == g->noutputs);
}

/* Sums that later phases rely on; checked once here. */
static void check_totals(Graph *g) {
  int64_t params = 0, tensors = 0;
  for (int i = 0; i < g->nparams; i++) {
    Param *p = g->params[i];
    if (!add_aligned(&params, shape_numel(&p->shape) * (int64_t)sizeof(float))) {
      error_at(p->loc, "the parameters are too large: their total size overflows 64 bits at '%s'",
               p->name);
      return;
    }
  }
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    if (!add_aligned(&tensors, shape_numel(&n->shape) * (int64_t)sizeof(float))) {
      error_at(n->loc, "the intermediate tensors are too large: their total size overflows 64 "
                       "bits at layer '%s'", nname(n));
      return;
    }
  }
}

bool verify(Graph *g) {
  int errors0 = diag_error_count();
  CNNC_ASSERT(g->name != NULL);
  for (int i = 0; i < g->nnodes; i++) check_node(g, i);
  for (int i = 0; i < g->nparams; i++) check_param(g->params[i]);
  check_io(g);
  check_totals(g);
  return diag_error_count() == errors0;
}
