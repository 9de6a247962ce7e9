/*
 * cg_binary.c: the binary ops (n-ary add, mul, max, min; sub, div) with
 * numpy/PyTorch broadcasting, plus the fused activation (reference).
 *
 * Shapes are aligned from the right; an input dim of 1 against a larger
 * output dim is broadcast (its stride is 0).  At compile time the output
 * dims are simplified: dims of size 1 are dropped, and neighbouring dims
 * are merged when every input broadcasts both or neither, so that
 * [N,C,1,1] * [N,C,H,W] becomes a 2-level loop [N*C] x [H*W] and a plain
 * same-shape add becomes one flat loop.  Inputs are combined left to
 * right, ((a + b) + c), as chained PyTorch additions are.
 *
 * Kernel arguments: (in_0, ..., in_{k-1}, out).
 */
#include "codegen.h"

#include <string.h>

typedef struct {
  int ndims, nin;          /* merged dims, inputs */
  int64_t size[MAX_RANK];  /* merged sizes, outermost first */
  bool *bc[MAX_RANK];      /* bc[j][k]: input k broadcasts along merged dim j */
} Bcast;

/* Input k's dims aligned to the output's rank (leading 1s). */
static int64_t in_dim(const Shape *in, int rank, int i) {
  int j = i - (rank - in->rank);
  return j < 0 ? 1 : in->dim[j];
}

static Bcast simplify(CodeGen *cg, const Node *n) {
  Bcast b = {.nin = n->nin};
  const Shape *o = &n->shape;
  for (int i = 0; i < o->rank; i++) {
    if (o->dim[i] == 1) continue;
    bool *bc = arena_array(cg->arena, (size_t)n->nin, sizeof *bc);
    for (int k = 0; k < n->nin; k++) bc[k] = in_dim(&cg->g->nodes[n->in[k]].shape, o->rank, i) == 1;
    if (b.ndims > 0 && memcmp(b.bc[b.ndims - 1], bc, (size_t)n->nin * sizeof *bc) == 0) {
      b.size[b.ndims - 1] *= o->dim[i];
    } else {
      b.size[b.ndims] = o->dim[i];
      b.bc[b.ndims++] = bc;
    }
  }
  return b;
}

/* Element stride of input k (or the output, k = nin) along merged dim j. */
static int64_t stride(const Bcast *b, int k, int j) {
  bool out = k == b->nin;
  if (!out && b->bc[j][k]) return 0;
  int64_t s = 1;
  for (int i = j + 1; i < b->ndims; i++)
    if (out || !b->bc[i][k]) s *= b->size[i];
  return s;
}

static const char *binary_key(CodeGen *cg, const Node *n, const Bcast *b) {
  char *key = arena_printf(cg->arena, "%s k=%d %s dims", op_name(n->op), n->nin, cg_act_key(cg, &n->act));
  for (int j = 0; j < b->ndims; j++) {
    char *bits = arena_array(cg->arena, (size_t)b->nin + 1, 1);
    for (int k = 0; k < b->nin; k++) bits[k] = b->bc[j][k] ? 'b' : '.';
    key = arena_printf(cg->arena, "%s %lld/%s", key, (long long)b->size[j], bits);
  }
  return key;
}

LLVMValueRef cg_binary(CodeGen *cg, const Node *n) {
  Bcast b = simplify(cg, n);
  bool is_new;
  const char *kname = arena_printf(cg->arena, "%s.%s_%s", cg->g->name, op_name(n->op), n->name);
  LLVMValueRef fn = cg_kernel_begin(cg, binary_key(cg, n, &b), kname, n->nin + 1, &is_new);
  if (!is_new) return fn;
  LLVMValueRef out = LLVMGetParam(fn, (unsigned)n->nin);
  /* Running offsets per input (index k) and of the output (index nin). */
  LLVMValueRef *off = arena_array(cg->arena, (size_t)n->nin + 1, sizeof *off);
  for (int k = 0; k <= n->nin; k++) off[k] = cg_i64(cg, 0);
  Loop loops[MAX_RANK];
  for (int j = 0; j < b.ndims; j++) {
    loops[j] = cg_for(cg, "d", b.size[j]);
    for (int k = 0; k <= n->nin; k++) {
      int64_t st = stride(&b, k, j);
      if (st) off[k] = cg_muladd(cg, loops[j].iv, st, off[k]);
    }
  }
  LLVMValueRef acc = NULL;
  for (int k = 0; k < n->nin; k++) {
    LLVMValueRef x = cg_load(cg, LLVMGetParam(fn, (unsigned)k), off[k], "x");
    if (!acc) acc = x;
    else acc = cg_combine(cg, n->op, acc, x);
  }
  cg_store(cg, out, off[n->nin], cg_act(cg, &n->act, acc));
  for (int j = b.ndims - 1; j >= 0; j--) cg_loop_end(cg, &loops[j]);
  cg_kernel_end(cg);
  return fn;
}
