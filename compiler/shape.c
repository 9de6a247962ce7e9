/*
 * shape.c: shape inference.
 *
 * needs: a spec graph (topological order, attributes parsed, inputs' shapes
 * given); gives: every node's output shape, every Param's required shape,
 * softmax axes and flatten start dims normalised to 0..rank-1.
 *
 * The formulas are PyTorch's (torch.nn.Conv2d, MaxPool2d, AvgPool2d,
 * Linear, Flatten, Softmax), so that a state_dict fits and outputs match.
 * Pooling in ceil mode follows PyTorch's extra rule: the last window must
 * start inside the input or its left padding, otherwise it is dropped.
 *
 * A node whose shape cannot be inferred keeps rank 0 and its consumers are
 * skipped silently, so that one mistake gives one message.  All sizes are
 * int64 and every element count and byte size is overflow-checked.
 */
#include "cnnc.h"

#include <inttypes.h>

static const char *nname(const Node *n) { return n->name ? n->name : "?"; }

/* The op as the spec spells it (relu, log_softmax, ...). */
static const char *kind(const Node *n) {
  if (n->op == OP_ACT && (unsigned)n->act.kind < ACT_COUNT) return act_names[n->act.kind];
  if (n->op == OP_SOFTMAX && n->a.softmax.log) return "log_softmax";
  return op_name(n->op);
}

/* Element count and float32 byte size must fit int64. */
static bool size_ok(const Shape *s) {
  int64_t numel = shape_numel(s), bytes;
  return numel >= 0 && ck_mul(numel, (int64_t)sizeof(float), &bytes);
}

static void check_node_size(Graph *g, Node *n) {
  if (n->shape.rank == 0 || size_ok(&n->shape)) return;
  if (n->op == OP_INPUT)
    error_at(n->loc, "input '%s' is too large: the size of %s overflows 64 bits", nname(n),
             shape_str(g->arena, &n->shape));
  else
    error_at(n->loc, "layer '%s' is too large: the size of its %s output %s overflows 64 bits",
             nname(n), op_name(n->op), shape_str(g->arena, &n->shape));
  n->shape.rank = 0;
}

static void set_param(Graph *g, Node *n, Param *p, int rank, const int64_t *dims) {
  if (!p) return;
  p->shape.rank = rank;
  for (int i = 0; i < rank; i++) p->shape.dim[i] = dims[i];
  if (!size_ok(&p->shape))
    error_at(n->loc, "parameter '%s' of layer '%s' is too large: the size of %s overflows 64 bits",
             p->name, nname(n), shape_str(g->arena, &p->shape));
}

/* Output length of a sliding window along one spatial dim (PyTorch's
 * pooling_output_shape_pad_lr; conv is the same with ceil_mode false).
 * Returns -1 if the (dilated) kernel does not fit the padded input. */
static int64_t window_out(int64_t in, int k, int s, int d, int plo, int phi, bool ceil_mode) {
  int64_t padded, eff = (int64_t)d * (k - 1) + 1, num;
  if (!ck_add(in, (int64_t)plo + phi, &padded) || eff > padded) return -1;
  num = padded - eff;
  if (ceil_mode && !ck_add(num, s - 1, &num)) return -1;
  int64_t out = num / s + 1;
  if (ceil_mode && (out - 1) * s >= in + plo) out--;
  return out;
}

/* Spatial output for conv and pooling; reports and returns false when the
 * kernel is larger than the padded input. */
static bool spatial(Graph *g, Node *n, const Shape *in, const int *k, const int *s, const int *d,
                    const int *pad, bool ceil_mode, int64_t *oh, int64_t *ow) {
  *oh = window_out(in->dim[2], k[0], s[0], d[0], pad[0], pad[2], ceil_mode);
  *ow = window_out(in->dim[3], k[1], s[1], d[1], pad[1], pad[3], ceil_mode);
  if (*oh >= 1 && *ow >= 1) return true;
  const char *eff = "";
  if (d[0] != 1 || d[1] != 1)
    eff = arena_printf(g->arena, " (%" PRId64 "x%" PRId64 " with dilation %dx%d)",
                       (int64_t)d[0] * (k[0] - 1) + 1, (int64_t)d[1] * (k[1] - 1) + 1, d[0], d[1]);
  error_at(n->loc,
           "%s layer '%s': kernel %dx%d%s is larger than the padded input %" PRId64 "x%" PRId64
           " (input %s, padding top %d, left %d, bottom %d, right %d)",
           op_name(n->op), nname(n), k[0], k[1], eff, in->dim[2] + pad[0] + pad[2],
           in->dim[3] + pad[1] + pad[3], shape_str(g->arena, in), pad[0], pad[1], pad[2], pad[3]);
  return false;
}

static bool need_rank4(Graph *g, Node *n, const Shape *in) {
  if (in->rank == 4) return true;
  error_at(n->loc, "%s layer '%s' needs a 4-d [N, C, H, W] input, got %s", op_name(n->op),
           nname(n), shape_str(g->arena, in));
  return false;
}

static void infer_conv(Graph *g, Node *n, const Shape *in) {
  ConvAttr *c = &n->a.conv;
  if (!need_rank4(g, n, in)) return;
  if (in->dim[1] % c->groups != 0) {
    error_at(n->loc, "conv2d layer '%s': input channels (%" PRId64 ") are not divisible by groups (%d)",
             nname(n), in->dim[1], c->groups);
    return;
  }
  int64_t oh, ow;
  if (!spatial(g, n, in, c->kernel, c->stride, c->dilation, c->pad, false, &oh, &ow)) return;
  n->shape = (Shape){4, {in->dim[0], c->filters, oh, ow}};
  set_param(g, n, n->weight, 4, (int64_t[]){c->filters, in->dim[1] / c->groups, c->kernel[0], c->kernel[1]});
  set_param(g, n, n->bias, 1, (int64_t[]){c->filters});
}

static void infer_pool(Graph *g, Node *n, const Shape *in) {
  PoolAttr *p = &n->a.pool;
  if (!need_rank4(g, n, in)) return;
  int64_t oh, ow;
  if (!spatial(g, n, in, p->kernel, p->stride, p->dilation, p->pad, p->ceil_mode, &oh, &ow)) return;
  n->shape = (Shape){4, {in->dim[0], in->dim[1], oh, ow}};
}

/* [N, F] -> [N, units]; [N, C, H, W] is flattened implicitly to [N, C*H*W]. */
static void infer_dense(Graph *g, Node *n, const Shape *in) {
  if (in->rank != 2 && in->rank != 4) {
    error_at(n->loc, "dense layer '%s' needs a [N, features] or [N, C, H, W] input, got %s",
             nname(n), shape_str(g->arena, in));
    return;
  }
  int64_t f = 1;
  for (int i = 1; i < in->rank; i++)
    if (!ck_mul(f, in->dim[i], &f)) {
      error_at(n->loc, "dense layer '%s': input features of %s overflow 64 bits", nname(n),
               shape_str(g->arena, in));
      return;
    }
  n->shape = (Shape){2, {in->dim[0], n->a.dense.units}};
  set_param(g, n, n->weight, 2, (int64_t[]){n->a.dense.units, f});
  set_param(g, n, n->bias, 1, (int64_t[]){n->a.dense.units});
}

static void infer_flatten(Graph *g, Node *n, const Shape *in) {
  int sd = n->a.flatten.start_dim;
  if (sd < -in->rank || sd >= in->rank) {
    error_at(n->loc, "flatten layer '%s': start_dim %d is out of range for a rank-%d input %s",
             nname(n), sd, in->rank, shape_str(g->arena, in));
    return;
  }
  if (sd < 0) sd += in->rank;
  n->a.flatten.start_dim = sd;
  Shape s = {sd + 1, {0}};
  for (int i = 0; i < sd; i++) s.dim[i] = in->dim[i];
  s.dim[sd] = 1;
  for (int i = sd; i < in->rank; i++)
    if (!ck_mul(s.dim[sd], in->dim[i], &s.dim[sd])) {
      error_at(n->loc, "flatten layer '%s': the size of %s overflows 64 bits", nname(n),
               shape_str(g->arena, in));
      return;
    }
  n->shape = s;
}

static void infer_softmax(Graph *g, Node *n, const Shape *in) {
  int ax = n->a.softmax.axis;
  if (ax < -in->rank || ax >= in->rank) {
    error_at(n->loc, "%s layer '%s': axis %d is out of range for a rank-%d input %s (valid: %d..%d)",
             kind(n), nname(n), ax, in->rank,
             shape_str(g->arena, in), -in->rank, in->rank - 1);
    return;
  }
  n->a.softmax.axis = ax < 0 ? ax + in->rank : ax;
  n->shape = *in;
}

static void infer_node(Graph *g, Node *n) {
  int want = n->op == OP_INPUT ? 0 : 1;
  if (n->nin != want) {
    error_at(n->loc, "%s layer '%s' takes %d input%s, got %d", kind(n), nname(n), want,
             want == 1 ? "" : "s", n->nin);
    n->shape.rank = 0;
    return;
  }
  if (n->op == OP_INPUT) {
    check_node_size(g, n);
    return;
  }
  const Shape *in = &g->nodes[n->in[0]].shape;
  n->shape.rank = 0;
  if (in->rank == 0) return; /* reported at the producer */
  switch (n->op) {
  case OP_CONV2D: infer_conv(g, n, in); break;
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: infer_pool(g, n, in); break;
  case OP_DENSE: infer_dense(g, n, in); break;
  case OP_FLATTEN: infer_flatten(g, n, in); break;
  case OP_SOFTMAX: infer_softmax(g, n, in); break;
  case OP_ACT: n->shape = *in; break;
  case OP_INPUT:
  case OP_COUNT: CNNC_UNREACHABLE();
  }
  check_node_size(g, n);
}

bool shape_infer(Graph *g) {
  int errors0 = diag_error_count();
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    for (int k = 0; k < n->nin; k++) CNNC_ASSERT(n->in[k] >= 0 && n->in[k] < i);
    infer_node(g, n);
  }
  return diag_error_count() == errors0;
}
