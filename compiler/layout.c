/*
 * layout.c: channel-blocked layouts, reorders and packed weights.
 *
 * needs: verified (and fused) graph, target; gives: Node.layout/cblock on
 * every node, REORDER nodes wherever a consumer reads another layout than
 * its producer writes, conv weights repacked for the direct kernels, and
 * Node.sched for those convolutions; false (after reporting) when the
 * packed weights would pass --max-param-bytes, checked before allocating.
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
 *
 * Weights are packed at compile time, so nothing is packed at run time:
 *   direct conv: [OCp/(ocb*V)][IC/groups][KH][KW][ocb*V]  (oc innermost)
 *   depthwise:   [Cp/V][KH][KW][V]
 * with zeros for output channels past OC; bias is padded to OCp.
 */
#include "cnnc.h"

#include <math.h>
#include <string.h>

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

int64_t node_floats(const Node *n) {
  if (n->layout != LAYOUT_NCHWC) return shape_numel(&n->shape);
  const Shape *s = &n->shape;
  return s->dim[0] * round_up(s->dim[1], n->cblock) * s->dim[2] * s->dim[3];
}

static bool is_depthwise(const Graph *g, const Node *n) {
  const Shape *in = &g->nodes[n->in[0]].shape;
  return n->a.conv.groups > 1 && n->a.conv.groups == in->dim[1] && n->shape.dim[1] == in->dim[1];
}

static bool blocked_conv(const Graph *g, const Node *n) {
  return n->op == OP_CONV2D && (n->a.conv.groups == 1 || is_depthwise(g, n));
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
  if (n->op == OP_CONV2D && blocked_conv(g, n) && !is_depthwise(g, n) && j == 0)
    return g->nodes[n->in[0]].layout;
  return n->layout;
}

/* ---- weight packing ---- */

/* Packed parameters can be much larger than the originals (output
 * channels padded to whole register blocks, Winograd's 36/9): each packer
 * reserves its floats here first, against --max-param-bytes, so that no
 * allocation happens beyond the limit.  Reset by layout(). */
static struct {
  int64_t bytes;  /* reserved so far */
  bool failed;    /* the limit was reported */
} packed;

static float *reserve(Graph *g, const Node *n, int64_t nfloats) {
  int64_t b;
  if (packed.failed) return NULL;
  if (!ck_mul(nfloats, (int64_t)sizeof(float), &b) || !ck_add(packed.bytes, b, &packed.bytes) ||
      packed.bytes > cnnc_limits.param_bytes) {
    error_at(n->loc, "layer '%s': its weights packed for the target's kernels pass %.1f MiB with the "
                     "layers before it, the limit set by --max-param-bytes", n->name,
             cnnc_limits.param_bytes / 1048576.0);
    packed.failed = true;
    return NULL;
  }
  return arena_array(g->arena, (size_t)nfloats, sizeof(float));
}

/* Packs conv weights [OC][IC][KH][KW] into [OCp/(ocb*V)][IC][KH][KW][ocb*V]. */
static Param *pack_direct(Graph *g, const Node *n, int V, int ocb) {
  const Param *w = n->weight;
  int64_t OC = w->shape.dim[0], IC = w->shape.dim[1], KH = w->shape.dim[2], KW = w->shape.dim[3];
  int64_t G = ocb * V, OCp = round_up(OC, G), taps = KH * KW;
  Param *p = arena_alloc(g->arena, sizeof *p);
  *p = *w;
  p->name = arena_printf(g->arena, "%s.packed", w->name);
  p->shape = (Shape){1, {OCp * IC * taps}};
  if (!(p->data = reserve(g, n, p->shape.dim[0]))) return NULL;
  for (int64_t oc = 0; oc < OC; oc++)
    for (int64_t ic = 0; ic < IC; ic++)
      for (int64_t t = 0; t < taps; t++)
        p->data[((oc / G * IC + ic) * taps + t) * G + oc % G] = w->data[(oc * IC + ic) * taps + t];
  return p;
}

/* Packs depthwise weights [C][1][KH][KW] into [Cp/V][KH][KW][V]. */
static Param *pack_depthwise(Graph *g, const Node *n, int V) {
  const Param *w = n->weight;
  int64_t C = w->shape.dim[0], taps = w->shape.dim[2] * w->shape.dim[3], Cp = round_up(C, V);
  Param *p = arena_alloc(g->arena, sizeof *p);
  *p = *w;
  p->name = arena_printf(g->arena, "%s.packed", w->name);
  p->shape = (Shape){1, {Cp * taps}};
  if (!(p->data = reserve(g, n, p->shape.dim[0]))) return NULL;
  for (int64_t c = 0; c < C; c++)
    for (int64_t t = 0; t < taps; t++) p->data[(c / V * taps + t) * V + c % V] = w->data[c * taps + t];
  return p;
}

static Param *pad_bias(Graph *g, const Node *n, const Param *b, int64_t to) {
  Param *p = arena_alloc(g->arena, sizeof *p);
  *p = *b;
  p->name = arena_printf(g->arena, "%s.padded", b->name);
  p->shape = (Shape){1, {to}};
  if (!(p->data = reserve(g, n, to))) return NULL;
  memcpy(p->data, b->data, (size_t)b->shape.dim[0] * sizeof(float));
  return p;
}

static void add_param(Graph *g, Param *p) { VEC_PUSH(g->arena, g->params, g->nparams, g->capparams, p); }

static Param *new_param(Graph *g, const Node *n, const Param *like, const char *suffix, int64_t nfloats) {
  Param *p = arena_alloc(g->arena, sizeof *p);
  *p = *like;
  p->name = arena_printf(g->arena, "%s.%s", like->name, suffix);
  p->shape = (Shape){1, {nfloats}};
  if (!(p->data = reserve(g, n, nfloats))) return NULL;
  add_param(g, p);
  return p;
}

/* A blocked batchnorm is y = x * scale + shift per channel; both vectors
 * are computed here in double precision and padded to whole blocks. */
static void schedule_batchnorm(Graph *g, Node *n, int V) {
  int64_t C = n->shape.dim[1], Cp = round_up(C, V);
  Param *scale = new_param(g, n, n->weight, "scale", Cp), *shift = new_param(g, n, n->bias, "shift", Cp);
  if (!scale || !shift) return;
  for (int64_t c = 0; c < C; c++) {
    double s = n->weight->data[c] / sqrt((double)n->var->data[c] + n->a.bn.epsilon);
    scale->data[c] = (float)s;
    shift->data[c] = (float)(n->bias->data[c] - n->mean->data[c] * s);
  }
  n->weight = scale;
  n->bias = shift;
  n->mean = n->var = NULL;
  n->sched = (Schedule){.kernel = KERNEL_DIRECT, .vec = V};
}

/* Register blocking for a direct conv: ocb output-channel blocks by owb
 * output columns, chosen to use as much of the accumulator budget as
 * possible over the whole row (tails included). */
static void choose_blocking(const TargetInfo *t, int64_t OCB, int64_t OW, int *ocb, int *owb) {
  int cap = t->nregs >= 32 ? 24 : 12;
  double best = -1;
  for (int o = 4; o >= 1; o--) {
    if (OCB % o) continue;
    int maxw = cap / o;
    if (maxw > 14) maxw = 14;
    int64_t nblk = (OW + maxw - 1) / maxw;
    int w = (int)((OW + nblk - 1) / nblk);
    double score = (double)(o * OW) / (double)(nblk * cap);
    /* ties go to more channel blocks: fewer broadcasts per FMA (measured:
     * 4x6 blocks run 3x3 layers at 56 columns near peak, 2x12 at 60%),
     * unless the fewer blocks cover the whole row at once (measured on
     * resnet50's 7x7 layers: 2x7 runs 2-3 points of peak above 4x4 + 4x3) */
    bool tie_one_block = score > best - 1e-9 && nblk == 1;
    if (score > best + 1e-9 || tie_one_block) {
      best = score;
      *ocb = o;
      *owb = w;
    }
  }
}

/* ---- Winograd F(4x4, 3x3) (cg_winograd.c) ---- */

/* G of the points 0, 1, -1, 1/2, -2 and infinity (see cg_winograd.c):
 * row j is (1, p_j, p_j^2) / prod_{l != j} (p_j - p_l). */
static const double WG[6][3] = {{1, 0, 0},
                                {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                {0, 0, 1}};

enum { CONV_WINOGRAD_MAX_C = 4096 };

static bool winograd_eligible(const Graph *g, const Node *n, const TargetInfo *t) {
  const ConvAttr *c = &n->a.conv;
  const Node *x = &g->nodes[n->in[0]];
  /* the 36 GEMMs sum over input channels unblocked: long ones go direct (chunked) */
  if (t->winograd == 0 || c->groups != 1 || x->shape.dim[1] > CONV_WINOGRAD_MAX_C || c->kernel[0] != 3 || c->kernel[1] != 3 || c->stride[0] != 1 ||
      c->stride[1] != 1 || c->dilation[0] != 1 || c->dilation[1] != 1 || x->layout != LAYOUT_NCHWC)
    return false;
  if (t->winograd == 1) return true;
  /* auto: the transforms cost O(C + OC) per tile against O(C * OC) saved,
   * so thin layers stay direct; so do tiny images, where 4x4 tiles waste
   * much of their work on the border. */
  return x->shape.dim[1] >= 32 && n->shape.dim[1] >= 32 && n->shape.dim[2] >= 6 && n->shape.dim[3] >= 6;
}

/* U[xi][oc][ic] = (G g G^T)[xi], packed [36][OCp/(ocb*V)][IC][ocb*V]. */
static Param *pack_winograd(Graph *g, const Node *n, int V, int ocb) {
  const Param *w = n->weight;
  int64_t OC = w->shape.dim[0], IC = w->shape.dim[1], G = (int64_t)ocb * V, OCp = round_up(OC, G);
  Param *p = arena_alloc(g->arena, sizeof *p);
  *p = *w;
  p->name = arena_printf(g->arena, "%s.winograd", w->name);
  p->shape = (Shape){1, {36 * OCp * IC}};
  if (!(p->data = reserve(g, n, p->shape.dim[0]))) return NULL;
  for (int64_t oc = 0; oc < OC; oc++)
    for (int64_t ic = 0; ic < IC; ic++) {
      const float *k = &w->data[(oc * IC + ic) * 9];
      double tmp[6][3];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) tmp[i][j] = WG[i][0] * k[j] + WG[i][1] * k[3 + j] + WG[i][2] * k[6 + j];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
          double u = tmp[i][0] * WG[j][0] + tmp[i][1] * WG[j][1] + tmp[i][2] * WG[j][2];
          p->data[(((i * 6 + j) * (OCp / G) + oc / G) * IC + ic) * G + oc % G] = (float)u;
        }
    }
  return p;
}

static Param *schedule_winograd(Graph *g, Node *n, const TargetInfo *t) {
  int V = t->vec;
  int64_t ICp = round_up(g->nodes[n->in[0]].shape.dim[1], V), OCp = round_up(n->shape.dim[1], V);
  int64_t ntiles = (n->shape.dim[2] + 3) / 4 * ((n->shape.dim[3] + 3) / 4);
  int ocb = 1, owb = 1;
  choose_blocking(t, OCp / V, ntiles < 24 ? ntiles : 24, &ocb, &owb);
  /* tiles per chunk: TI and M of a chunk stay within half of L2 */
  int64_t per_tile = 36 * (ICp + OCp) * (int64_t)sizeof(float);
  int64_t m = t->l2 / 2 / (per_tile * owb);
  int64_t mmax = (ntiles + owb - 1) / owb;
  m = m < 1 ? 1 : m > mmax ? mmax : m;
  int T = (int)(m * owb);
  n->sched = (Schedule){.kernel = KERNEL_WINOGRAD, .vec = V, .tile_oc = ocb, .tile_ow = owb, .tile_oh = T};
  n->scratch = per_tile * T;
  return pack_winograd(g, n, V, ocb);
}

static void schedule_conv(Graph *g, Node *n, const TargetInfo *t) {
  int V = t->vec;
  int64_t OCp = round_up(n->shape.dim[1], V);
  Param *w, *b = NULL;
  if (winograd_eligible(g, n, t)) {
    w = schedule_winograd(g, n, t);
  } else if (is_depthwise(g, n)) {
    int64_t OW = n->shape.dim[3];
    int cap = t->nregs >= 32 ? 24 : 12;
    int64_t nblk = (OW + cap - 1) / cap;
    n->sched = (Schedule){.kernel = KERNEL_DIRECT, .vec = V, .tile_oc = 1, .tile_ow = (int)((OW + nblk - 1) / nblk)};
    w = pack_depthwise(g, n, V);
  } else {
    int ocb = 1, owb = 1;
    choose_blocking(t, OCp / V, n->shape.dim[3], &ocb, &owb);
    n->sched = (Schedule){.kernel = KERNEL_DIRECT, .vec = V, .tile_oc = ocb, .tile_ow = owb};
    w = pack_direct(g, n, V, ocb);
  }
  if (n->bias) b = pad_bias(g, n, n->bias, OCp);
  if (!w || (n->bias && !b)) return; /* over the limit: reported, compilation stops */
  add_param(g, w);
  n->weight = w;
  if (b) {
    add_param(g, b);
    n->bias = b;
  }
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
  n.sched = (Schedule){.kernel = KERNEL_REF, .vec = V};
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

bool layout(Graph *g, const TargetInfo *t) {
  int V = t->vec;
  packed.bytes = 0;
  packed.failed = false;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = &g->nodes[i];
    n->layout = LAYOUT_NCHW;
    n->cblock = 0;
    if (n->op == OP_DENSE || n->op == OP_LINEAR) n->sched.vec = V; /* vectorised matrix-vector kernel */
    if (V < 4 || !has_blocked_kernel(g, n)) continue;
    bool blocked = n->op == OP_CONV2D;
    for (int j = 0; j < n->nin && !blocked; j++) blocked = g->nodes[n->in[j]].layout == LAYOUT_NCHWC;
    if (!blocked) continue;
    n->layout = LAYOUT_NCHWC;
    n->cblock = V;
    if (n->op == OP_CONV2D) schedule_conv(g, n, t);
    if (n->op == OP_BATCHNORM) schedule_batchnorm(g, n, V);
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
  return !packed.failed;
}
