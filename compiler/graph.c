/*
 * graph.c: the IR's tables and small helpers.
 *
 * The op and activation name tables are generated from the X-macro lists in
 * cnnc.h, so adding an op there is the only edit needed for its name to
 * appear everywhere (spec parsing, dumps, messages).
 *
 * graph_dump prints one line per node in array (= topological) order and
 * one line per parameter; it depends on nothing but the graph's contents,
 * so two runs over the same spec give byte-identical dumps, which tests and
 * golden files rely on.
 */
#include "cnnc.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

/* ---- tables ---- */

const char *const op_names[OP_COUNT] = {
#define X(e, name, member, attrs, lo, hi, flags) name,
    CNNC_OPS(X)
#undef X
};

const char *const op_attr_keys[OP_COUNT] = {
#define X(e, name, member, attrs, lo, hi, flags) attrs,
    CNNC_OPS(X)
#undef X
};

const signed char op_min_in[OP_COUNT] = {
#define X(e, name, member, attrs, lo, hi, flags) lo,
    CNNC_OPS(X)
#undef X
};

const signed char op_max_in[OP_COUNT] = {
#define X(e, name, member, attrs, lo, hi, flags) hi,
    CNNC_OPS(X)
#undef X
};

const unsigned char op_flags[OP_COUNT] = {
#define X(e, name, member, attrs, lo, hi, flags) flags,
    CNNC_OPS(X)
#undef X
};

const char *const act_names[ACT_COUNT] = {
#define X(e, name) name,
    CNNC_ACTS(X)
#undef X
};

#define X(e, name, member, attrs, lo, hi, flags) +1
static_assert(0 CNNC_OPS(X) == OP_COUNT, "op table size");
#undef X
#define X(e, name) +1
static_assert(0 CNNC_ACTS(X) == ACT_COUNT, "activation table size");
#undef X
static_assert(sizeof op_names / sizeof *op_names == OP_COUNT, "op_names");
static_assert(sizeof act_names / sizeof *act_names == ACT_COUNT, "act_names");

const char *op_name(Op op) {
  return (unsigned)op < OP_COUNT ? op_names[op] : "?";
}

ActKind act_lookup(const char *name) {
  for (int i = 0; i < ACT_COUNT; i++)
    if (strcmp(act_names[i], name) == 0) return (ActKind)i;
  return ACT_COUNT;
}

/* ---- graph ---- */

Graph *graph_new(Arena *a, const char *file) {
  Graph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->file = file ? arena_strdup(a, file) : NULL;
  return g;
}

int graph_find(const Graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

void graph_count_uses(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) g->nodes[i].nuses = 0;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int j = g->nodes[i].in[k];
      CNNC_ASSERT(j >= 0 && j < g->nnodes);
      g->nodes[j].nuses++;
    }
}

/* ---- shapes ---- */

int64_t shape_numel(const Shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    if (s->dim[i] < 0 || !ck_mul(n, s->dim[i], &n)) return -1;
  return n;
}

bool shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

const char *shape_str(Arena *a, const Shape *s) {
  char buf[MAX_RANK * 24 + 8];
  size_t n = 0;
  buf[n++] = '[';
  for (int i = 0; i < s->rank && i < MAX_RANK; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%" PRId64, i ? ", " : "", s->dim[i]);
  buf[n++] = ']';
  buf[n] = 0;
  return arena_strdup(a, buf);
}

/* ---- dump ---- */

static void dump_shape(const Shape *s, FILE *f) {
  fputc('[', f);
  for (int i = 0; i < s->rank && i < MAX_RANK; i++)
    fprintf(f, "%s%" PRId64, i ? ", " : "", s->dim[i]);
  fputc(']', f);
}

static const char *tf(bool b) { return b ? "true" : "false"; }

static void dump_conv(const Node *n, FILE *f) {
  const ConvAttr *c = &n->a.conv;
  fprintf(f, " filters=%d kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d", c->filters, c->kernel[0],
          c->kernel[1], c->stride[0], c->stride[1], c->pad[0], c->pad[1], c->pad[2], c->pad[3]);
  if (n->op == OP_CONV_TRANSPOSE2D)
    fprintf(f, " output_padding=%dx%d", c->output_padding[0], c->output_padding[1]);
  fprintf(f, " dilation=%dx%d groups=%d bias=%s", c->dilation[0], c->dilation[1], c->groups,
          tf(c->has_bias));
}

static void dump_reshape(const Shape *s, FILE *f) {
  fputs(" shape=[", f);
  for (int i = 0; i < s->rank && i < MAX_RANK; i++) fprintf(f, "%s%" PRId64, i ? ", " : "", s->dim[i]);
  fputc(']', f);
}

static void dump_pad(const PadAttr *p, FILE *f) {
  static const char *const modes[] = {"constant", "reflect", "edge"};
  fprintf(f, " pad=%d,%d,%d,%d mode=%s", p->pad[0], p->pad[1], p->pad[2], p->pad[3],
          (unsigned)p->mode < 3 ? modes[p->mode] : "?");
  if (p->mode == PAD_CONSTANT) fprintf(f, " value=%g", p->value);
}

static void dump_pool(const Node *n, FILE *f) {
  const PoolAttr *p = &n->a.pool;
  fprintf(f, " kernel=%dx%d stride=%dx%d pad=%d,%d,%d,%d", p->kernel[0], p->kernel[1], p->stride[0],
          p->stride[1], p->pad[0], p->pad[1], p->pad[2], p->pad[3]);
  if (n->op == OP_MAXPOOL2D) fprintf(f, " dilation=%dx%d", p->dilation[0], p->dilation[1]);
  fprintf(f, " ceil_mode=%s", p->ceil_mode ? "true" : "false");
  if (n->op == OP_AVGPOOL2D)
    fprintf(f, " count_include_pad=%s", p->count_include_pad ? "true" : "false");
}

static void dump_upsample(const UpsampleAttr *u, FILE *f) {
  static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                       "tf_half_pixel_for_nn"};
  static const char *const nearests[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
  fprintf(f, " size=%lldx%lld scale=%gx%g mode=%s coordinate_mode=%s", (long long)u->size[0], (long long)u->size[1],
          u->scale[0], u->scale[1], u->bilinear ? "bilinear" : "nearest",
          (unsigned)u->coord < 5 ? coords[u->coord] : "?");
  if (!u->bilinear) fprintf(f, " nearest_mode=%s", (unsigned)u->nearest < 4 ? nearests[u->nearest] : "?");
}

static void dump_attrs(const Node *n, FILE *f) {
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: dump_conv(n, f); break;
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: dump_pool(n, f); break;
  case OP_ADAPTIVE_AVGPOOL2D:
    fprintf(f, " output_size=%dx%d", n->a.adaptive.out[0], n->a.adaptive.out[1]);
    break;
  case OP_BATCHNORM: fprintf(f, " epsilon=%g", n->a.bn.epsilon); break;
  case OP_CONCAT: fprintf(f, " axis=%d", n->a.concat.axis); break;
  case OP_PAD: dump_pad(&n->a.pad, f); break;
  case OP_UPSAMPLE: dump_upsample(&n->a.upsample, f); break;
  case OP_CONSTANT: dump_reshape(&n->a.constant.shape, f); break;
  case OP_SLICE:
    fprintf(f, " axis=%d start=%lld end=%lld step=%lld", n->a.slice.axis, (long long)n->a.slice.start,
            (long long)n->a.slice.end, (long long)n->a.slice.step);
    break;
  case OP_TRANSPOSE:
    fputs(" perm=[", f);
    for (int i = 0; i < n->a.transpose.rank; i++) fprintf(f, "%s%d", i ? ", " : "", n->a.transpose.perm[i]);
    fputc(']', f);
    break;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM:
    fprintf(f, " dims=%d..%d epsilon=%g affine=%s", n->a.norm.first, n->a.norm.first + n->a.norm.count - 1,
            n->a.norm.epsilon, tf(n->a.norm.affine));
    break;
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: fprintf(f, " axes=0x%x keepdims=%s", n->a.reduce.axes, tf(n->a.reduce.keepdims)); break;
  case OP_RESHAPE: dump_reshape(&n->a.reshape.shape, f); break;
  case OP_ACT:
    if (n->act.kind == ACT_PRELU) fprintf(f, " num_parameters=%d", n->a.num_parameters);
    break;
  case OP_DENSE:
  case OP_LINEAR:
    fprintf(f, " units=%d bias=%s", n->a.dense.units, n->a.dense.has_bias ? "true" : "false");
    break;
  case OP_SOFTMAX:
    fprintf(f, " axis=%d log=%s", n->a.softmax.axis, n->a.softmax.log ? "true" : "false");
    break;
  case OP_FLATTEN: fprintf(f, " start_dim=%d", n->a.flatten.start_dim); break;
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D:
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN:
  case OP_DROPOUT:
  case OP_INPUT:
  case OP_REORDER:
  case OP_COUNT: break;
  }
}

static const char *act_str(ActKind k) {
  return (unsigned)k < ACT_COUNT ? act_names[k] : "?";
}

/* "act=relu", "act=leaky_relu(alpha=0.2)", "act=clip(min=0,max=6)" */
static void dump_act(const Act *a, FILE *f) {
  fprintf(f, " act=%s", act_str(a->kind));
  if (a->kind == ACT_LEAKY_RELU || a->kind == ACT_ELU) fprintf(f, "(alpha=%g)", a->alpha);
  if (a->kind == ACT_SELU || a->kind == ACT_HARDSIGMOID || a->kind == ACT_SCALE)
    fprintf(f, "(alpha=%g,beta=%g)", a->alpha, a->beta);
  if (a->kind == ACT_POW) fprintf(f, "(exponent=%g)", a->alpha);
  if (a->kind == ACT_SOFTPLUS) fprintf(f, "(beta=%g)", a->alpha);
  if (a->kind == ACT_CLIP) fprintf(f, "(min=%g,max=%g)", a->alpha, a->beta);
}

static void dump_node(const Graph *g, int id, FILE *f) {
  const Node *n = &g->nodes[id];
  fprintf(f, "%%%d %s = %s(", id, n->name ? n->name : "?", op_name(n->op));
  for (int k = 0; k < n->nin; k++) fprintf(f, "%s%%%d", k ? ", " : "", n->in[k]);
  fputs(") -> ", f);
  dump_shape(&n->shape, f);
  dump_attrs(n, f);
  if (n->op == OP_ACT || n->act.kind != ACT_NONE) dump_act(&n->act, f);
  if (n->layout == LAYOUT_NCHWC)
    fprintf(f, " layout=nchw%dc", n->cblock);
  else
    fputs(" layout=nchw", f);
  fprintf(f, " offset=%" PRId64, n->offset);
  if (n->alias) fputs(" alias", f);
  if (n->input_index >= 0) fprintf(f, " input#%d", n->input_index);
  if (n->output_index >= 0) fprintf(f, " output#%d", n->output_index);
  fputc('\n', f);
}

static void dump_param(const Param *p, FILE *f) {
  fprintf(f, "param %s ", p->name ? p->name : "?");
  dump_shape(&p->shape, f);
  fprintf(f, " %s%s\n", p->is_inline ? "inline" : "file", p->data ? "" : " unbound");
}

void graph_dump(const Graph *g, FILE *f) {
  fprintf(f, "graph %s", g->name ? g->name : "?");
  if (g->weights) fprintf(f, " weights=%s", g->weights);
  fprintf(f, " workspace=%" PRId64 "\n", g->workspace_size);
  for (int i = 0; i < g->nnodes; i++) dump_node(g, i, f);
  for (int i = 0; i < g->nparams; i++) dump_param(g->params[i], f);
}
