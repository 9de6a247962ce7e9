/*
 * shape.c: shape inference.
 *
 * needs: a spec graph (topological order, attributes parsed, inputs' shapes
 * given); gives: every node's output shape, every Param's required shape,
 * softmax and concat axes and flatten start dims normalised to 0..rank-1.
 *
 * The formulas are PyTorch's (torch.nn.Conv2d, ConvTranspose2d, MaxPool2d,
 * AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, Linear, Flatten, Softmax,
 * PReLU, F.pad, F.interpolate, torch.cat, Tensor.reshape and broadcasting),
 * so that a state_dict fits and outputs match.  Pooling in ceil mode
 * follows PyTorch's extra rule: the last window must start inside the
 * input or its left padding, otherwise it is dropped.
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
 * With ceil_mode a window may run past the padded input as long as it starts
 * inside it, so the kernel may be larger than the padded input, as in
 * PyTorch.  Returns < 1 if no window fits. */
static int64_t window_out(int64_t in, int k, int s, int d, int plo, int phi, bool ceil_mode) {
  int64_t padded, eff = (int64_t)d * (k - 1) + 1, num;
  if (!ck_add(in, (int64_t)plo + phi, &padded)) return -1;
  if (!ck_add(padded - eff, ceil_mode ? s - 1 : 0, &num)) return -1;
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1; /* floor division */
  if (ceil_mode && out >= 1 && (out - 1) * s >= in + plo) out--;
  return out;
}

/* Spatial output for conv and pooling; reports and returns false when no
 * window fits (the kernel is larger than the padded input). */
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

/* A 4-d input whose channels the groups divide (conv2d, conv_transpose2d). */
static bool conv_input_ok(Graph *g, Node *n, const Shape *in) {
  if (!need_rank4(g, n, in)) return false;
  if (in->dim[1] % n->a.conv.groups == 0) return true;
  error_at(n->loc, "%s layer '%s': input channels (%" PRId64 ") are not divisible by groups (%d)", op_name(n->op),
           nname(n), in->dim[1], n->a.conv.groups);
  return false;
}

static void infer_conv(Graph *g, Node *n, const Shape *in) {
  ConvAttr *c = &n->a.conv;
  if (!conv_input_ok(g, n, in)) return;
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

/* Out = (H - 1) * s - p0 - p1 + d (k - 1) + output_padding + 1
 * (ConvTranspose2d; p0 = p1 from a spec, ONNX's pads may differ: the
 * kernel starts at p0). */
static int64_t transpose_out(int64_t in, int k, int s, int d, int p0, int p1, int op) {
  int64_t x;
  if (!ck_mul(in - 1, s, &x) || !ck_add(x, (int64_t)d * (k - 1) + op + 1 - (int64_t)p0 - p1, &x))
    return INT64_MIN;
  return x;
}

static void infer_conv_transpose(Graph *g, Node *n, const Shape *in) {
  ConvAttr *c = &n->a.conv;
  if (!conv_input_ok(g, n, in)) return;
  int64_t oh = transpose_out(in->dim[2], c->kernel[0], c->stride[0], c->dilation[0], c->pad[0],
                             c->pad[2], c->output_padding[0]);
  int64_t ow = transpose_out(in->dim[3], c->kernel[1], c->stride[1], c->dilation[1], c->pad[1],
                             c->pad[3], c->output_padding[1]);
  if (oh == INT64_MIN || ow == INT64_MIN) {
    error_at(n->loc, "conv_transpose2d layer '%s': the output size for input %s overflows 64 bits",
             nname(n), shape_str(g->arena, in));
    return;
  }
  if (oh < 1 || ow < 1) {
    error_at(n->loc, "conv_transpose2d layer '%s': padding %dx%d is too large: the output would be "
                     "%" PRId64 "x%" PRId64 " for input %s",
             nname(n), c->pad[0], c->pad[1], oh, ow, shape_str(g->arena, in));
    return;
  }
  n->shape = (Shape){4, {in->dim[0], c->filters, oh, ow}};
  set_param(g, n, n->weight, 4,
            (int64_t[]){in->dim[1], c->filters / c->groups, c->kernel[0], c->kernel[1]});
  set_param(g, n, n->bias, 1, (int64_t[]){c->filters});
}

static void infer_global(Graph *g, Node *n, const Shape *in, int64_t oh, int64_t ow) {
  if (!need_rank4(g, n, in)) return;
  n->shape = (Shape){4, {in->dim[0], in->dim[1], oh, ow}};
}

/* [N, C] or [N, C, H, W]; parameters [C]. */
static void infer_batchnorm(Graph *g, Node *n, const Shape *in) {
  if (in->rank != 2 && in->rank != 4) {
    error_at(n->loc, "batchnorm layer '%s' needs a [N, C] or [N, C, H, W] input, got %s", nname(n),
             shape_str(g->arena, in));
    return;
  }
  n->shape = *in;
  int64_t c[1] = {in->dim[1]};
  set_param(g, n, n->weight, 1, c);
  set_param(g, n, n->bias, 1, c);
  set_param(g, n, n->mean, 1, c);
  set_param(g, n, n->var, 1, c);
}

static void infer_act(Graph *g, Node *n, const Shape *in) {
  if (n->act.kind == ACT_PRELU) {
    int np = n->a.num_parameters;
    if (np != 1 && (in->rank < 2 || in->dim[1] != np)) {
      error_at(n->loc, "prelu layer '%s': num_parameters (%d) must be 1 or the number of channels "
                       "(dim 1) of its input %s", nname(n), np, shape_str(g->arena, in));
      return;
    }
    set_param(g, n, n->weight, 1, (int64_t[]){np});
  }
  n->shape = *in;
}

static const char *input_name(Graph *g, const Node *n, int k) {
  return nname(&g->nodes[n->in[k]]);
}

/* Numpy broadcasting of all inputs, aligned from the right. */
static void infer_broadcast(Graph *g, Node *n) {
  Shape out = g->nodes[n->in[0]].shape;
  for (int k = 1; k < n->nin; k++) {
    const Shape *s = &g->nodes[n->in[k]].shape;
    Shape r = {out.rank > s->rank ? out.rank : s->rank, {0}};
    for (int i = r.rank - 1; i >= 0; i--) { /* PyTorch names the last mismatch */
      int ia = i - (r.rank - out.rank), ib = i - (r.rank - s->rank);
      int64_t a = ia >= 0 ? out.dim[ia] : 1, b = ib >= 0 ? s->dim[ib] : 1;
      if (a != b && a != 1 && b != 1) {
        error_at(n->loc, "%s layer '%s': cannot broadcast %s (input '%s') with %s (%s): dimension %d "
                         "is %" PRId64 " vs %" PRId64 " (must be equal or 1)",
                 op_name(n->op), nname(n), shape_str(g->arena, s), input_name(g, n, k),
                 shape_str(g->arena, &out),
                 k == 1 ? arena_printf(g->arena, "input '%s'", input_name(g, n, 0))
                        : "the inputs before it",
                 i, b, a);
        return;
      }
      r.dim[i] = a == 1 ? b : a;
    }
    out = r;
  }
  n->shape = out;
}

static void infer_concat(Graph *g, Node *n) {
  const Shape *s0 = &g->nodes[n->in[0]].shape;
  int ax = n->a.concat.axis;
  if (ax < -s0->rank || ax >= s0->rank) {
    error_at(n->loc, "concat layer '%s': axis %d is out of range for rank-%d inputs such as %s "
                     "(valid: %d..%d)",
             nname(n), ax, s0->rank, shape_str(g->arena, s0), -s0->rank, s0->rank - 1);
    return;
  }
  if (ax < 0) ax += s0->rank;
  n->a.concat.axis = ax;
  Shape out = *s0;
  for (int k = 1; k < n->nin; k++) {
    const Shape *s = &g->nodes[n->in[k]].shape;
    bool ok = s->rank == s0->rank;
    for (int i = 0; ok && i < s->rank; i++) ok = i == ax || s->dim[i] == s0->dim[i];
    if (!ok) {
      error_at(n->loc, "concat layer '%s': input '%s' has shape %s, which does not match %s of input "
                       "'%s' in every dimension but the axis %d",
               nname(n), input_name(g, n, k), shape_str(g->arena, s), shape_str(g->arena, s0),
               input_name(g, n, 0), ax);
      return;
    }
    if (!ck_add(out.dim[ax], s->dim[ax], &out.dim[ax])) {
      error_at(n->loc, "concat layer '%s': the concatenated size overflows 64 bits", nname(n));
      return;
    }
  }
  n->shape = out;
}

/* reflect needs each pad < that dim, PyTorch's rule. */
static void infer_pad(Graph *g, Node *n, const Shape *in) {
  const PadAttr *q = &n->a.pad;
  if (!need_rank4(g, n, in)) return;
  static const char *const side[4] = {"top", "left", "bottom", "right"};
  if (q->mode == PAD_REFLECT)
    for (int i = 0; i < 4; i++) {
      int64_t dim = in->dim[2 + i % 2];
      if (q->pad[i] >= dim) {
        error_at(n->loc, "pad layer '%s': reflect padding %d (%s) must be smaller than the input %s "
                         "%" PRId64 " (input %s)",
                 nname(n), q->pad[i], side[i], i % 2 ? "width" : "height", dim,
                 shape_str(g->arena, in));
        return;
      }
    }
  Shape out = *in;
  if (!ck_add(out.dim[2], (int64_t)q->pad[0] + q->pad[2], &out.dim[2]) ||
      !ck_add(out.dim[3], (int64_t)q->pad[1] + q->pad[3], &out.dim[3])) {
    error_at(n->loc, "pad layer '%s': the padded size overflows 64 bits", nname(n));
    return;
  }
  n->shape = out;
}

/* Output h, w: `size`, or floor(in * scale) (F.interpolate, ONNX Resize);
 * a size given makes the scales size / in, as both do. */
static void infer_upsample(Graph *g, Node *n, const Shape *in) {
  UpsampleAttr *u = &n->a.upsample;
  if (!need_rank4(g, n, in)) return;
  Shape out = *in;
  for (int i = 0; i < 2; i++) {
    if (u->size[i] > 0) {
      out.dim[2 + i] = u->size[i];
      u->scale[i] = (double)u->size[i] / (double)in->dim[2 + i];
      continue;
    }
    double o = (double)in->dim[2 + i] * u->scale[i];
    if (o >= 9.2e18) {
      error_at(n->loc, "upsample layer '%s': the upsampled size overflows 64 bits", nname(n));
      return;
    }
    out.dim[2 + i] = (int64_t)o;
    if (out.dim[2 + i] < 1) {
      error_at(n->loc, "upsample layer '%s': scale %g of input %s gives an empty output", nname(n),
               u->scale[i], shape_str(g->arena, in));
      return;
    }
  }
  n->shape = out;
}

/* Normalises an axis in [-rank, rank) to [0, rank); -1 (after reporting) if out of range. */
static int norm_axis(Graph *g, Node *n, int axis, const Shape *in, const char *what) {
  if (axis >= -in->rank && axis < in->rank) return axis < 0 ? axis + in->rank : axis;
  error_at(n->loc, "%s layer '%s': %s %d is out of range for a rank-%d input %s (valid: %d..%d)", op_name(n->op),
           nname(n), what, axis, in->rank, shape_str(g->arena, in), -in->rank, in->rank - 1);
  return -1;
}

/* layer_norm over contiguous axes; weight and bias have the normalised shape. */
static void infer_layer_norm(Graph *g, Node *n, const Shape *in) {
  NormAttr *q = &n->a.norm;
  int ax[MAX_RANK] = {0};
  if (q->naxes < 1) {
    error_at(n->loc, "layer_norm layer '%s': needs at least one axis to normalise over", nname(n));
    return;
  }
  for (int i = 0; i < q->naxes; i++)
    if ((ax[i] = norm_axis(g, n, q->axes[i], in, "axis")) < 0) return;
  for (int i = 1; i < q->naxes; i++)
    if (ax[i] != ax[i - 1] + 1) {
      error_at(n->loc, "layer_norm layer '%s': the axes must be consecutive and in order (such as [-2, -1] or [1]), "
                       "got %d after %d", nname(n), q->axes[i], q->axes[i - 1]);
      return;
    }
  q->first = ax[0], q->count = q->naxes;
  int64_t dims[MAX_RANK];
  for (int i = 0; i < q->count; i++) dims[i] = in->dim[q->first + i];
  set_param(g, n, n->weight, q->count, dims);
  set_param(g, n, n->bias, q->count, dims);
  n->shape = *in;
}

/* instance_norm over dims 2..; weight and bias per channel (dim 1). */
static void infer_instance_norm(Graph *g, Node *n, const Shape *in) {
  if (in->rank < 3) {
    error_at(n->loc, "instance_norm layer '%s' needs an [N, C, ...] input of rank 3 or more, got %s", nname(n),
             shape_str(g->arena, in));
    return;
  }
  n->a.norm.first = 2, n->a.norm.count = in->rank - 2;
  set_param(g, n, n->weight, 1, &in->dim[1]);
  set_param(g, n, n->bias, 1, &in->dim[1]);
  n->shape = *in;
}

/* Python slicing: negative indices count from the end, then clamped. */
static int64_t clamp_index(int64_t i, int64_t dim, bool neg_step) {
  if (i < 0) i = i < -dim ? (neg_step ? -1 : 0) : i + dim;
  if (i > dim) i = dim;
  if (neg_step && i >= dim) i = dim - 1;
  return i;
}

/* A split's part: its start and end from the sizes or equal chunks. */
static bool split_part(Graph *g, Node *n, int64_t dim) {
  SliceAttr *q = &n->a.slice;
  int64_t start = 0, len;
  if (q->sizes) {
    int64_t total = 0;
    bool ok = true;
    for (int i = 0; i < q->nparts && ok; i++) {
      if (i == q->part) start = total;
      ok = ck_add(total, q->sizes[i], &total);
    }
    if (!ok || total != dim) {
      if (q->part == 0)
        error_at(n->loc, "split: the sizes add up to %s, but the axis has length %lld",
                 ok ? arena_printf(g->arena, "%lld", (long long)total) : "more than 2^63", (long long)dim);
      return false;
    }
    len = q->sizes[q->part];
  } else { /* torch.chunk: ceil(dim / k) each, the last part the rest */
    int64_t each = (dim + q->nparts - 1) / q->nparts, used = (dim + each - 1) / each;
    if (used != q->nparts) {
      if (q->part == 0)
        error_at(n->loc, "split: chunking an axis of length %lld into %d gives %lld parts (as torch.chunk does), "
                         "so 'outputs' must name %lld", (long long)dim, q->nparts, (long long)used, (long long)used);
      return false;
    }
    start = each * q->part;
    len = q->part == q->nparts - 1 ? dim - start : each;
  }
  q->start = start, q->end = start + len, q->step = 1;
  return true;
}

static void infer_slice(Graph *g, Node *n, const Shape *in) {
  SliceAttr *q = &n->a.slice;
  int ax = norm_axis(g, n, q->axis, in, "axis");
  if (ax < 0) return;
  q->axis = ax;
  int64_t dim = in->dim[ax], len;
  if (q->nparts > 0) {
    if (!split_part(g, n, dim)) return;
  } else {
    bool neg = q->step < 0;
    q->start = clamp_index(q->start, dim, neg);
    q->end = clamp_index(q->end, dim, neg);
  }
  /* ceil((end - start) / step), written so that no step (up to +-2^63) overflows */
  if (q->step > 0) len = q->end > q->start ? (q->end - q->start - 1) / q->step + 1 : 0;
  else len = q->start > q->end ? 1 - (q->start - q->end - 1) / q->step : 0;
  if (len < 1) {
    error_at(n->loc, "%s '%s': the part of axis %d (length %lld) from %lld to %lld in steps of %lld is empty",
             q->nparts ? "split output" : "slice layer", nname(n), ax, (long long)dim, (long long)q->start,
             (long long)q->end, (long long)q->step);
    return;
  }
  n->shape = *in;
  n->shape.dim[ax] = len;
}

static void infer_transpose(Graph *g, Node *n, const Shape *in) {
  TransposeAttr *q = &n->a.transpose;
  if (q->rank != in->rank) {
    error_at(n->loc, "transpose layer '%s': 'perm' has %d entries for a rank-%d input %s", nname(n), q->rank,
             in->rank, shape_str(g->arena, in));
    return;
  }
  unsigned seen = 0;
  for (int i = 0; i < q->rank; i++) {
    int a = norm_axis(g, n, q->perm[i], in, "perm entry");
    if (a < 0) return;
    if (seen & (1u << a)) {
      error_at(n->loc, "transpose layer '%s': 'perm' names dimension %d twice", nname(n), a);
      return;
    }
    seen |= 1u << a;
    q->perm[i] = a;
  }
  n->shape.rank = in->rank;
  for (int i = 0; i < in->rank; i++) n->shape.dim[i] = in->dim[q->perm[i]];
}

/* torch.nn.Linear: over the last axis of any rank; weight [units, in]. */
static void infer_linear(Graph *g, Node *n, const Shape *in) {
  n->shape = *in;
  n->shape.dim[in->rank - 1] = n->a.dense.units;
  set_param(g, n, n->weight, 2, (int64_t[]){n->a.dense.units, in->dim[in->rank - 1]});
  set_param(g, n, n->bias, 1, (int64_t[]){n->a.dense.units});
}

static void infer_reduce(Graph *g, Node *n, const Shape *in) {
  ReduceAttr *q = &n->a.reduce;
  q->axes = q->naxes ? 0 : (1u << in->rank) - 1; /* none given: all */
  for (int i = 0; i < q->naxes; i++) {
    int a = norm_axis(g, n, q->given[i], in, "axis");
    if (a < 0) return;
    if (q->axes & (1u << a)) {
      error_at(n->loc, "%s layer '%s': axis %d is listed twice (as %d)", op_name(n->op), nname(n), a, q->given[i]);
      return;
    }
    q->axes |= 1u << a;
  }
  Shape out = {0};
  for (int i = 0; i < in->rank; i++) {
    bool r = q->axes & (1u << i);
    if (!r) out.dim[out.rank++] = in->dim[i];
    else if (q->keepdims) out.dim[out.rank++] = 1;
  }
  if (out.rank == 0) out = (Shape){1, {1}}; /* a scalar is a tensor of one element */
  n->shape = out;
}

/* 0 copies the input's dim, one -1 takes what is left; counts must match. */
static void infer_reshape(Graph *g, Node *n, const Shape *in) {
  const Shape *want = &n->a.reshape.shape;
  Shape out = *want;
  int infer = -1;
  int64_t known = 1, numel = shape_numel(in);
  for (int i = 0; i < out.rank; i++) {
    if (out.dim[i] == 0) {
      if (i >= in->rank) {
        error_at(n->loc, "reshape layer '%s': shape[%d] is 0 (copy the input's), but the input %s "
                         "has only %d dimensions",
                 nname(n), i, shape_str(g->arena, in), in->rank);
        return;
      }
      out.dim[i] = in->dim[i];
    }
    if (out.dim[i] == -1)
      infer = i;
    else if (!ck_mul(known, out.dim[i], &known)) {
      error_at(n->loc, "reshape layer '%s': the size of shape %s overflows 64 bits", nname(n),
               shape_str(g->arena, want));
      return;
    }
  }
  if (infer >= 0 && numel % known == 0) out.dim[infer] = numel / known;
  if ((infer >= 0 && numel % known != 0) || (infer < 0 && known != numel)) {
    error_at(n->loc, "reshape layer '%s': cannot reshape %s (%" PRId64 " elements) into %s%s",
             nname(n), shape_str(g->arena, in), numel, shape_str(g->arena, want),
             infer >= 0 ? arena_printf(g->arena, " (%" PRId64 " is not a multiple of %" PRId64 ")",
                                       numel, known)
                        : arena_printf(g->arena, " (%" PRId64 " elements)", known));
    return;
  }
  n->shape = out;
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

static bool check_arity(Node *n) {
  int lo = op_min_in[n->op], hi = op_max_in[n->op] < 0 ? INT32_MAX : op_max_in[n->op];
  if (n->nin >= lo && n->nin <= hi) return true;
  if (lo == hi)
    error_at(n->loc, "%s layer '%s' takes %d input%s, got %d", kind(n), nname(n), lo,
             lo == 1 ? "" : "s", n->nin);
  else
    error_at(n->loc, "%s layer '%s' takes %d or more inputs, got %d", kind(n), nname(n), lo, n->nin);
  return false;
}

static void infer_node(Graph *g, Node *n) {
  if (!check_arity(n)) {
    n->shape.rank = 0;
    return;
  }
  if (n->op == OP_INPUT) {
    check_node_size(g, n);
    return;
  }
  if (n->op == OP_CONSTANT) {
    n->shape = n->a.constant.shape;
    set_param(g, n, n->weight, n->shape.rank, n->shape.dim);
    check_node_size(g, n);
    return;
  }
  n->shape.rank = 0;
  for (int k = 0; k < n->nin; k++)
    if (g->nodes[n->in[k]].shape.rank == 0) return; /* reported at the producer */
  const Shape *in = &g->nodes[n->in[0]].shape;
  switch (n->op) {
  case OP_CONV2D: infer_conv(g, n, in); break;
  case OP_CONV_TRANSPOSE2D: infer_conv_transpose(g, n, in); break;
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: infer_pool(g, n, in); break;
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D: infer_global(g, n, in, 1, 1); break;
  case OP_ADAPTIVE_AVGPOOL2D:
    infer_global(g, n, in, n->a.adaptive.out[0], n->a.adaptive.out[1]);
    break;
  case OP_BATCHNORM: infer_batchnorm(g, n, in); break;
  case OP_ACT: infer_act(g, n, in); break;
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN: infer_broadcast(g, n); break;
  case OP_LAYER_NORM: infer_layer_norm(g, n, in); break;
  case OP_INSTANCE_NORM: infer_instance_norm(g, n, in); break;
  case OP_SLICE: infer_slice(g, n, in); break;
  case OP_TRANSPOSE: infer_transpose(g, n, in); break;
  case OP_LINEAR: infer_linear(g, n, in); break;
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: infer_reduce(g, n, in); break;
  case OP_CONCAT: infer_concat(g, n); break;
  case OP_PAD: infer_pad(g, n, in); break;
  case OP_UPSAMPLE: infer_upsample(g, n, in); break;
  case OP_FLATTEN: infer_flatten(g, n, in); break;
  case OP_RESHAPE: infer_reshape(g, n, in); break;
  case OP_DROPOUT: n->shape = *in; break;
  case OP_DENSE: infer_dense(g, n, in); break;
  case OP_SOFTMAX: infer_softmax(g, n, in); break;
  case OP_INPUT:
  case OP_CONSTANT:
  case OP_REORDER:
  case OP_COUNT: CNNC_UNREACHABLE();
  }
  check_node_size(g, n);
}

bool shape_infer_node(Graph *g, int id) {
  int errors0 = diag_error_count();
  infer_node(g, &g->nodes[id]);
  return diag_error_count() == errors0 && g->nodes[id].shape.rank > 0;
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
