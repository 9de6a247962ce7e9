/*
 * pack.c: parameters rearranged for the kernels the scheduler chose, at
 * compile time, so that nothing is packed at run time.
 *
 * needs: schedule (Node.sched: kernel, vec, tile_oc); gives: on every
 * blocked convolution and batchnorm, Node.weight/bias replaced by new
 * parameters in the kernel's order (added to Graph.params; the originals
 * stay for --emit-yaml's sake but are no longer referenced); false (after
 * reporting) when the packed parameters would pass --max-param-bytes,
 * checked before allocating each of them.
 *
 *   direct conv: [OCp/(ocb*V)][IC/groups][KH][KW][ocb*V]  (oc innermost)
 *   depthwise:   [Cp/V][KH][KW][V]
 *   Winograd:    [36][OCp/(ocb*V)][IC][ocb*V], U = G g G^T per tap
 *   batchnorm:   scale and shift, [Cp] each
 * with zeros for output channels past OC; bias is padded to OCp
 * (OCp, Cp: rounded up to whole vectors of V floats).
 */
#include "cnnc.h"

#include <math.h>
#include <string.h>

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Packed parameters can be much larger than the originals (output
 * channels padded to whole register blocks, Winograd's 36/9): each packer
 * reserves its floats here first, against --max-param-bytes, so that no
 * allocation happens beyond the limit.  Reset by pack(). */
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
                     "layers before it, the limit set by --max-param-bytes",
             n->user_name ? n->user_name : n->name,
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

/* G of the points 0, 1, -1, 1/2, -2 and infinity (see cg_winograd.c):
 * row j is (1, p_j, p_j^2) / prod_{l != j} (p_j - p_l). */
static const double WG[6][3] = {{1, 0, 0},
                                {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                {0, 0, 1}};

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

/* A blocked batchnorm is y = x * scale + shift per channel; both vectors
 * are computed here in double precision and padded to whole blocks. */
static void pack_batchnorm(Graph *g, Node *n, int V) {
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
}

static void pack_conv(Graph *g, Node *n) {
  const Schedule *s = &n->sched;
  int V = s->vec;
  Param *w, *b = NULL;
  if (s->kernel == KERNEL_WINOGRAD) w = pack_winograd(g, n, V, s->tile_oc);
  else if (conv_is_depthwise(g, n)) w = pack_depthwise(g, n, V);
  else w = pack_direct(g, n, V, s->tile_oc);
  if (n->bias) b = pad_bias(g, n, n->bias, round_up(n->shape.dim[1], V));
  if (!w || (n->bias && !b)) return; /* over the limit: reported, compilation stops */
  add_param(g, w);
  n->weight = w;
  if (b) {
    add_param(g, b);
    n->bias = b;
  }
}

bool pack(Graph *g) {
  packed.bytes = 0;
  packed.failed = false;
  for (int i = 0; i < g->nnodes && !packed.failed; i++) {
    Node *n = &g->nodes[i];
    if (n->layout != LAYOUT_NCHWC) continue;
    if (n->op == OP_CONV2D && n->sched.kernel != KERNEL_REF) pack_conv(g, n);
    if (n->op == OP_BATCHNORM) pack_batchnorm(g, n, n->sched.vec);
  }
  return !packed.failed;
}
