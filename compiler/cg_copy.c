/*
 * cg_copy.c: strided copies: transpose (torch.permute) and slice (any
 * axis, any step, including negative steps).
 *
 * Both are out[i_0, ..., i_k] = in[base + sum_j i_j * stride_j] for the
 * output's dims, with the input's strides permuted (transpose) or
 * multiplied by the step along one axis (slice; base = start * stride).
 * The dims are simplified at compile time as the broadcasting kernels do:
 * dims of size 1 are dropped, and neighbours are merged wherever the input
 * is contiguous across them too, so a channel slice of NCHW becomes one
 * loop over images and one contiguous copy, and ShuffleNet's channel
 * shuffle ([N, 2, C/2, H, W] -> [N, C/2, 2, H, W]) keeps its H*W rows
 * contiguous for the vectoriser.
 *
 * Kernel arguments: (in, out).
 */
#include "codegen.h"

typedef struct {
  int n;                     /* merged dims */
  int64_t size[MAX_RANK];    /* output sizes, outermost first */
  int64_t stride[MAX_RANK];  /* input strides (may be negative) */
  int64_t base;              /* input offset of output element 0 */
} Strided;

static void row_major(const Shape *s, int64_t *st) {
  int64_t k = 1;
  for (int i = s->rank - 1; i >= 0; i--) st[i] = k, k *= s->dim[i];
}

static Strided simplify(const Shape *out, const int64_t *stride, int64_t base) {
  Strided r = {.base = base};
  for (int i = 0; i < out->rank; i++) {
    if (out->dim[i] == 1) continue;
    if (r.n > 0 && r.stride[r.n - 1] == stride[i] * out->dim[i]) { /* contiguous across: merge */
      r.size[r.n - 1] *= out->dim[i];
      r.stride[r.n - 1] = stride[i];
      continue;
    }
    r.size[r.n] = out->dim[i];
    r.stride[r.n++] = stride[i];
  }
  return r;
}

static Strided transposed(const Node *n, const Shape *in) {
  int64_t st[MAX_RANK], perm[MAX_RANK];
  row_major(in, st);
  for (int i = 0; i < in->rank; i++) perm[i] = st[n->a.transpose.perm[i]];
  return simplify(&n->shape, perm, 0);
}

static Strided sliced(const Node *n, const Shape *in) {
  const SliceAttr *q = &n->a.slice;
  int64_t st[MAX_RANK];
  row_major(in, st);
  int64_t base = q->start * st[q->axis];
  if (n->shape.dim[q->axis] > 1) st[q->axis] *= q->step; /* then |step| < dim: no overflow */
  return simplify(&n->shape, st, base);
}

LLVMValueRef cg_strided(CodeGen *cg, const Node *n) {
  const Shape *in = &cg->g->nodes[n->in[0]].shape;
  Strided s = n->op == OP_TRANSPOSE ? transposed(n, in) : sliced(n, in);
  char *key = arena_printf(cg->arena, "strided base=%lld", (long long)s.base);
  for (int i = 0; i < s.n; i++) key = arena_printf(cg->arena, "%s %lld/%lld", key, (long long)s.size[i], (long long)s.stride[i]);
  bool is_new;
  LLVMValueRef fn = cg_kernel_begin(cg, key, arena_printf(cg->arena, "%s.%s_%s", cg->g->name, op_name(n->op), n->name),
                                    2, &is_new);
  if (!is_new) return fn;
  LLVMValueRef src = LLVMGetParam(fn, 0), dst = LLVMGetParam(fn, 1);
  LLVMValueRef off = cg_i64(cg, s.base), oidx = cg_i64(cg, 0);
  Loop loops[MAX_RANK];
  for (int i = 0; i < s.n; i++) {
    loops[i] = cg_for(cg, "d", s.size[i]);
    off = cg_muladd(cg, loops[i].iv, s.stride[i], off);
    oidx = cg_muladd(cg, oidx, s.size[i], loops[i].iv);
  }
  cg_store(cg, dst, oidx, cg_load(cg, src, off, "x"));
  for (int i = s.n - 1; i >= 0; i--) cg_loop_end(cg, &loops[i]);
  cg_kernel_end(cg);
  return fn;
}
