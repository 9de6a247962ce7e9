/*
 * codegen.c: graph -> LLVM module.
 *
 * needs: verified graph with schedule and memory plan; gives: a module with
 *   - one constant global per parameter (64-byte aligned, internal),
 *   - one internal kernel per distinct layer (shared between layers whose
 *     key matches, see codegen.h),
 *   - `<name>_run(inputs..., outputs..., workspace)`: checks its pointers,
 *     then calls the kernels in topological order on the planned buffers,
 *   - `<name>_run_generic(inputs[], outputs[], workspace)` and the
 *     `<name>_model` descriptor (layout: cnnrt_model in runtime/cnnrt.h).
 * Every LLVM object created here is disposed before codegen_emit returns.
 */
#include "codegen.h"

#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"

/* ---- small builders ---- */

LLVMValueRef cg_i64(CodeGen *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(CodeGen *cg, double v) { return LLVMConstReal(cg->f32, v); }

LLVMValueRef cg_alloca(CodeGen *cg, LLVMTypeRef t, const char *name) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMValueRef first = LLVMGetFirstInstruction(cg->entry);
  if (first)
    LLVMPositionBuilderBefore(cg->b, first);
  else
    LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef a = LLVMBuildAlloca(cg->b, t, name);
  LLVMPositionBuilderAtEnd(cg->b, cur);
  return a;
}

LLVMValueRef cg_gep(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, const char *name) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->f32, base, &idx, 1, name);
}

LLVMValueRef cg_load(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, const char *name) {
  return LLVMBuildLoad2(cg->b, cg->f32, cg_gep(cg, base, idx, ""), name);
}

void cg_store(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(cg->b, v, cg_gep(cg, base, idx, ""));
}

LLVMValueRef cg_vload(CodeGen *cg, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef l = LLVMBuildLoad2(cg->b, vt, cg_gep(cg, base, idx, ""), "");
  LLVMSetAlignment(l, 4);
  return l;
}

void cg_vstore(CodeGen *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMSetAlignment(LLVMBuildStore(cg->b, v, cg_gep(cg, base, idx, "")), 4);
}

LLVMValueRef cg_splat(CodeGen *cg, LLVMTypeRef vt, LLVMValueRef x) {
  unsigned n = LLVMGetVectorSize(vt);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, LLVMConstInt(cg->i32, 0, 0), "");
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(cg->i32, n)), "splat");
}

LLVMValueRef cg_smin(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_smax(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, a, b, ""), a, b, "");
}

LLVMValueRef cg_add(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }
LLVMValueRef cg_mul(CodeGen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->b, a, b, ""); }

LLVMValueRef cg_muladd(CodeGen *cg, LLVMValueRef a, int64_t k, LLVMValueRef c) {
  return cg_add(cg, cg_mul(cg, a, cg_i64(cg, k)), c);
}

LLVMValueRef cg_in_range(CodeGen *cg, LLVMValueRef v, int64_t n) {
  return LLVMBuildICmp(cg->b, LLVMIntULT, v, cg_i64(cg, n), "inb");
}

LLVMValueRef cg_intrinsic(CodeGen *cg, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                          int nargs, const char *vname) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  CNNC_ASSERT(id != 0);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &t, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, &t, 1);
  return LLVMBuildCall2(cg->b, fty, fn, args, (unsigned)nargs, vname);
}

LLVMValueRef cg_fma(CodeGen *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return cg_intrinsic(cg, "llvm.fmuladd", LLVMTypeOf(a), args, 3, "");
}

const char *cg_act_key(CodeGen *cg, const Act *act) {
  return arena_printf(cg->arena, "act=%d/%a/%a", act->kind, (double)act->alpha, (double)act->beta);
}

/* ---- control flow ---- */

static LLVMBasicBlockRef block(CodeGen *cg, const char *name, const char *suffix) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s.%s", name, suffix);
  return LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
}

Loop cg_loop_begin(CodeGen *cg, const char *name, LLVMValueRef lo, LLVMValueRef hi, int64_t step) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  Loop l = {.header = block(cg, name, "head"), .exit = NULL, .step = cg_i64(cg, step)};
  LLVMBasicBlockRef body = block(cg, name, "body");
  l.exit = block(cg, name, "exit");
  LLVMBuildBr(cg->b, l.header);
  LLVMPositionBuilderAtEnd(cg->b, l.header);
  l.iv = LLVMBuildPhi(cg->b, cg->i64, name);
  LLVMAddIncoming(l.iv, &lo, &pre, 1);
  LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, l.iv, hi, "more");
  LLVMBuildCondBr(cg->b, more, body, l.exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
  return l;
}

void cg_loop_end(CodeGen *cg, Loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMValueRef next = cg_add(cg, l->iv, l->step);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

Loop cg_for(CodeGen *cg, const char *name, int64_t n) {
  return cg_loop_begin(cg, name, cg_i64(cg, 0), cg_i64(cg, n), 1);
}

LLVMBasicBlockRef cg_if_begin(CodeGen *cg, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = block(cg, name, "then");
  LLVMBasicBlockRef join = block(cg, name, "join");
  LLVMBuildCondBr(cg->b, cond, then, join);
  LLVMPositionBuilderAtEnd(cg->b, then);
  return join;
}

void cg_if_end(CodeGen *cg, LLVMBasicBlockRef join) {
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, join);
}

/* ---- blocked summation ---- */

typedef struct {
  LLVMTypeRef t;   /* float or float vector */
  LLVMValueRef hi; /* end of the range */
  CgTerm term;
  void *ctx;
  const char *name;
} Sum;

/* The sum of terms [base, min(base + SUM_BLOCK^(level+1), hi)): a loop of
 * at most SUM_BLOCK steps, each a partial sum of the level below. */
static LLVMValueRef sum_level(CodeGen *cg, Sum *s, int level, LLVMValueRef base) {
  int64_t step = 1;
  for (int k = 0; k < level; k++) step *= CG_SUM_BLOCK;
  LLVMValueRef end = cg_smin(cg, cg_add(cg, base, cg_i64(cg, step * CG_SUM_BLOCK)), s->hi);
  LLVMValueRef acc = cg_alloca(cg, s->t, s->name);
  LLVMBuildStore(cg->b, LLVMConstNull(s->t), acc);
  Loop l = cg_loop_begin(cg, s->name, base, end, step);
  LLVMValueRef v = level == 0 ? s->term(cg, s->ctx, l.iv) : sum_level(cg, s, level - 1, l.iv);
  LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, s->t, acc, ""), v, ""), acc);
  cg_loop_end(cg, &l);
  return LLVMBuildLoad2(cg->b, s->t, acc, s->name);
}

LLVMValueRef cg_sum(CodeGen *cg, const char *name, LLVMTypeRef t, LLVMValueRef lo, LLVMValueRef hi, int64_t maxn,
                    CgTerm term, void *ctx) {
  int levels = 1;
  for (int64_t span = CG_SUM_BLOCK; span < maxn; span *= CG_SUM_BLOCK) levels++;
  Sum s = {.t = t, .hi = hi, .term = term, .ctx = ctx, .name = name};
  return sum_level(cg, &s, levels - 1, lo);
}

/* ---- kernels ---- */

static void add_attr(CodeGen *cg, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  CNNC_ASSERT(kind != 0);
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

LLVMValueRef cg_kernel_begin(CodeGen *cg, const char *key, const char *name, int nptr,
                             bool *is_new) {
  if (cg->inplace) key = arena_printf(cg->arena, "%s inplace", key);
  LLVMValueRef found = strmap_get(&cg->kernels, key);
  if (found) {
    *is_new = false;
    return found;
  }
  *is_new = true;
  LLVMTypeRef *params = arena_array(cg->arena, (size_t)nptr + 1, sizeof *params);
  for (int i = 0; i < nptr; i++) params[i] = cg->ptr;
  LLVMTypeRef fty = LLVMFunctionType(cg->void_t, params, (unsigned)nptr, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nofree");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nosync");
  /* Inlining kernels into the run function gains nothing measurable and
   * makes one huge function whose loop analyses are quadratic in the number
   * of layers (ScalarEvolution walks every predecessor chain). */
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  for (int i = 0; i < nptr; i++) {
    if (!cg->inplace) add_attr(cg, fn, (unsigned)i + 1, "noalias");
    add_attr(cg, fn, (unsigned)i + 1, "nocapture");
  }
  strmap_put(cg->arena, &cg->kernels, arena_strdup(cg->arena, key), fn);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  return fn;
}

void cg_kernel_end(CodeGen *cg) { LLVMBuildRetVoid(cg->b); }

/* ---- weights ---- */

static size_t ptr_slot(const PtrMap *m, const void *key) {
  size_t i = ((uintptr_t)key >> 4) * 0x9e3779b97f4a7c15u & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  return i;
}

static void ptr_put(CodeGen *cg, PtrMap *m, const void *key, LLVMValueRef v) {
  if (2 * (m->n + 1) > m->cap) {
    PtrMap n = {.cap = m->cap ? 2 * m->cap : 64};
    n.keys = arena_array(cg->arena, n.cap, sizeof *n.keys);
    n.vals = arena_array(cg->arena, n.cap, sizeof *n.vals);
    for (size_t i = 0; i < m->cap; i++)
      if (m->keys[i]) {
        size_t j = ptr_slot(&n, m->keys[i]);
        n.keys[j] = m->keys[i], n.vals[j] = m->vals[i], n.n++;
      }
    *m = n;
  }
  size_t i = ptr_slot(m, key);
  if (!m->keys[i]) m->n++;
  m->keys[i] = key;
  m->vals[i] = v;
}

/* The constant global holding parameter p, made on first use, so that only
 * the parameters some kernel reads reach the object (not the originals of
 * folded and packed weights). */
static LLVMValueRef param_value(CodeGen *cg, const Param *p) {
  if (cg->params.cap) {
    size_t i = ptr_slot(&cg->params, p);
    if (cg->params.keys[i]) return cg->params.vals[i];
  }
  size_t bytes = (size_t)shape_numel(&p->shape) * sizeof(float);
  LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, (const char *)p->data, bytes, 1);
  char *name = arena_printf(cg->arena, "%s.%s", cg->g->name, p->name);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMInternalLinkage);
  LLVMSetAlignment(gv, 64);
  LLVMSetUnnamedAddr(gv, 1);
  ptr_put(cg, &cg->params, p, gv);
  return gv;
}

/* Emits (or reuses) the kernel of node `n`; NULL for nodes without code. */
static LLVMValueRef node_kernel(CodeGen *cg, const Node *n) {
  if (n->fused) return NULL; /* computed inside its consumer (fuse_dw.c) */
  if (n->layout == LAYOUT_NCHWC && n->op != OP_CONV2D && n->op != OP_REORDER && !n->alias)
    return cg_blocked(cg, n);
  switch (n->op) {
  case OP_INPUT: return NULL;
  case OP_REORDER: return cg_reorder(cg, n);
  case OP_CONV2D: return cg_conv(cg, n);
  case OP_MAXPOOL2D:
  case OP_AVGPOOL2D: return cg_pool(cg, n);
  case OP_DENSE:
  case OP_LINEAR: return cg_dense(cg, n);
  case OP_SOFTMAX: return cg_softmax(cg, n);
  case OP_CONV_TRANSPOSE2D: return cg_convt(cg, n);
  case OP_GLOBAL_AVGPOOL2D:
  case OP_GLOBAL_MAXPOOL2D: return cg_global_pool(cg, n);
  case OP_ADAPTIVE_AVGPOOL2D: return cg_adaptive_pool(cg, n);
  case OP_BATCHNORM: return cg_batchnorm(cg, n);
  case OP_ADD:
  case OP_MUL:
  case OP_SUB:
  case OP_DIV:
  case OP_MAX:
  case OP_MIN: return cg_binary(cg, n);
  case OP_CONSTANT: /* its buffer is its parameter (node_buffer), unless the caller wants it */
    return n->output_index >= 0 ? cg_eltwise(cg, n) : NULL;
  case OP_LAYER_NORM:
  case OP_INSTANCE_NORM: return cg_norm(cg, n);
  case OP_SLICE:
  case OP_TRANSPOSE: return cg_strided(cg, n);
  case OP_REDUCE_MEAN:
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_REDUCE_MIN: return cg_reduce(cg, n);
  case OP_CONCAT: return cg_concat(cg, n);
  case OP_PAD: return cg_pad(cg, n);
  case OP_UPSAMPLE: return cg_upsample(cg, n);
  case OP_ACT:
  case OP_FLATTEN:
  case OP_RESHAPE:
  case OP_DROPOUT: return n->alias ? NULL : cg_eltwise(cg, n);
  case OP_COUNT: break;
  }
  CNNC_UNREACHABLE();
}

/* ---- the run function ---- */

static LLVMValueRef ret_code(CodeGen *cg, int code) { return LLVMConstInt(cg->i32, (unsigned)code, 0); }

/* Returns `code` from the run function when `bad` holds. */
static void fail_if(CodeGen *cg, LLVMValueRef bad, int code, const char *name) {
  LLVMBasicBlockRef fail = block(cg, name, "fail"), ok = block(cg, name, "ok");
  LLVMBuildCondBr(cg->b, bad, fail, ok);
  LLVMPositionBuilderAtEnd(cg->b, fail);
  LLVMBuildRet(cg->b, ret_code(cg, code));
  LLVMPositionBuilderAtEnd(cg->b, ok);
}

static LLVMValueRef is_null(CodeGen *cg, LLVMValueRef p) {
  return LLVMBuildICmp(cg->b, LLVMIntEQ, p, LLVMConstNull(cg->ptr), "isnull");
}

/* Node id's buffer in the function being emitted: caller memory for
 * inputs and outputs, the workspace at the planned offset otherwise, or
 * its input's buffer for aliasing nodes.  Made once per run part. */
static LLVMValueRef node_buffer(CodeGen *cg, int id) {
  if (cg->node_part[id] == cg->part) return cg->node_ptr[id];
  Graph *g = cg->g;
  Node *n = &g->nodes[id];
  LLVMValueRef v;
  if (n->input_index >= 0)
    v = LLVMGetParam(cg->fn, (unsigned)n->input_index);
  else if (n->output_index >= 0)
    v = LLVMGetParam(cg->fn, (unsigned)(g->ninputs + n->output_index));
  else if (n->op == OP_CONSTANT)
    v = param_value(cg, n->weight);
  else if (n->alias)
    v = node_buffer(cg, n->in[0]);
  else {
    LLVMValueRef off = cg_i64(cg, n->offset);
    v = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->ws, &off, 1, n->name);
  }
  cg->node_ptr[id] = v;
  cg->node_part[id] = cg->part;
  return v;
}

/* Kernel arguments: inputs, output, then weight, bias, mean, var (those
 * the node has), a fused depthwise conv's weight and bias, and scratch. */
static void call_kernel(CodeGen *cg, const Node *n, LLVMValueRef kfn) {
  LLVMValueRef *args = arena_array(cg->arena, (size_t)n->nin + 7, sizeof *args);
  int na = 0;
  for (int j = 0; j < n->nin; j++) args[na++] = node_buffer(cg, n->in[j]);
  args[na++] = node_buffer(cg, (int)(n - cg->g->nodes));
  const Param *params[4] = {n->weight, n->bias, n->mean, n->var};
  for (int j = 0; j < 4; j++)
    if (params[j]) args[na++] = param_value(cg, params[j]);
  if (n->pre_dw) { /* the fused depthwise conv's weight and bias */
    const Node *d = &cg->g->nodes[n->pre_dw - 1];
    args[na++] = param_value(cg, d->weight);
    if (d->bias) args[na++] = param_value(cg, d->bias);
  }
  if (n->scratch > 0) {
    LLVMValueRef off = cg_i64(cg, n->scratch_offset);
    args[na++] = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->ws, &off, 1, "scratch");
  }
  LLVMTypeRef fty = LLVMGlobalGetValueType(kfn);
  CNNC_ASSERT(LLVMCountParamTypes(fty) == (unsigned)na);
  LLVMBuildCall2(cg->b, fty, kfn, args, (unsigned)na, "");
}

static LLVMValueRef cstring(CodeGen *cg, const char *s, const char *gname);

/* ---- --profile ---- */

static LLVMValueRef read_cycles(CodeGen *cg) {
  unsigned id = LLVMLookupIntrinsicID("llvm.readcyclecounter", 21);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, NULL, 0);
  return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, NULL, 0), fn, NULL, 0, "tsc");
}

static LLVMValueRef global_const(CodeGen *cg, const char *name, LLVMValueRef init) {
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  return gv;
}

/* <name>_profile_count, _layers[], _flops[] (constant) and _ticks[]
 * (zeroed, updated by every run); returns _ticks. */
static LLVMValueRef emit_profile_tables(CodeGen *cg, LLVMValueRef *kernels) {
  Graph *g = cg->g;
  int k = 0;
  LLVMValueRef *names = arena_array(cg->arena, (size_t)g->nnodes + 1, sizeof *names);
  LLVMValueRef *flops = arena_array(cg->arena, (size_t)g->nnodes + 1, sizeof *flops);
  for (int i = 0; i < g->nnodes; i++) {
    if (!kernels[i]) continue;
    names[k] = cstring(cg, g->nodes[i].name, arena_printf(cg->arena, "%s.prof.%d", g->name, k));
    flops[k++] = cg_i64(cg, node_flops(g, &g->nodes[i]));
  }
  global_const(cg, arena_printf(cg->arena, "%s_profile_count", g->name), cg_i64(cg, k));
  global_const(cg, arena_printf(cg->arena, "%s_profile_layers", g->name), LLVMConstArray2(cg->ptr, names, (uint64_t)k));
  global_const(cg, arena_printf(cg->arena, "%s_profile_flops", g->name), LLVMConstArray2(cg->i64, flops, (uint64_t)k));
  LLVMTypeRef at = LLVMArrayType2(cg->i64, (uint64_t)k);
  LLVMValueRef ticks = LLVMAddGlobal(cg->mod, at, arena_printf(cg->arena, "%s_profile_ticks", g->name));
  LLVMSetInitializer(ticks, LLVMConstNull(at));
  return ticks;
}

enum { PART_CALLS = 256 }; /* kernel calls per run part */

/* Calls the kernels of nodes [from, to) in the current function; *k counts
 * profiled calls across parts. */
static void emit_calls(CodeGen *cg, LLVMValueRef *kernels, int from, int to, LLVMValueRef ticks, int *k) {
  for (int i = from; i < to; i++) {
    if (!kernels[i]) continue;
    LLVMValueRef t0 = ticks ? read_cycles(cg) : NULL;
    call_kernel(cg, &cg->g->nodes[i], kernels[i]);
    if (ticks) {
      LLVMValueRef idx[2] = {cg_i64(cg, 0), cg_i64(cg, (*k)++)};
      LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, LLVMGlobalGetValueType(ticks), ticks, idx, 2, "");
      LLVMValueRef dt = LLVMBuildSub(cg->b, read_cycles(cg), t0, "dt");
      LLVMBuildStore(cg->b, cg_add(cg, LLVMBuildLoad2(cg->b, cg->i64, slot, ""), dt), slot);
    }
  }
}

/* A function with the run function's pointer parameters (all noalias: the
 * contract in header.c; without it LLVM may join copies into memmove). */
static LLVMValueRef run_like(CodeGen *cg, const char *name, LLVMTypeRef ret, int np) {
  LLVMTypeRef *pt = arena_array(cg->arena, (size_t)np, sizeof *pt);
  for (int i = 0; i < np; i++) pt[i] = cg->ptr;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(ret, pt, (unsigned)np, 0));
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  for (int i = 0; i < np; i++) add_attr(cg, fn, (unsigned)i + 1, "noalias");
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  cg->ws = LLVMGetParam(fn, (unsigned)np - 1);
  cg->part++; /* node buffers are made anew in each function */
  return fn;
}

/* The kernel calls in parts of PART_CALLS, each its own function, so that
 * LLVM's per-block and per-function work (SelectionDAG, constant pools)
 * stays bounded however many layers there are; returns the parts. */
static LLVMValueRef *emit_parts(CodeGen *cg, LLVMValueRef *kernels, LLVMValueRef ticks, int np, int *nparts) {
  Graph *g = cg->g;
  LLVMValueRef *parts = arena_array(cg->arena, (size_t)g->nnodes / PART_CALLS + 2, sizeof *parts);
  int k = 0, from = 0;
  *nparts = 0;
  while (from < g->nnodes) {
    int to = from, calls = 0;
    while (to < g->nnodes && calls < PART_CALLS) calls += kernels[to++] != NULL;
    LLVMValueRef fn = run_like(cg, arena_printf(cg->arena, "%s.run.%d", g->name, *nparts), cg->void_t, np);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
    emit_calls(cg, kernels, from, to, ticks, &k);
    LLVMBuildRetVoid(cg->b);
    parts[(*nparts)++] = fn;
    from = to;
  }
  return parts;
}

static int count_calls(const Graph *g, LLVMValueRef *kernels) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += kernels[i] != NULL;
  return n;
}

static LLVMValueRef emit_run(CodeGen *cg, LLVMValueRef *kernels) {
  Graph *g = cg->g;
  int np = g->ninputs + g->noutputs + 1, nparts = 0;
  LLVMValueRef ticks = cg->opt->profile ? emit_profile_tables(cg, kernels) : NULL;
  LLVMValueRef *parts = count_calls(g, kernels) > PART_CALLS ? emit_parts(cg, kernels, ticks, np, &nparts) : NULL;
  LLVMValueRef fn = run_like(cg, arena_printf(cg->arena, "%s_run", g->name), cg->i32, np);
  for (int i = 0; i < np; i++) {
    const char *pname = i == np - 1 ? "workspace" : i < g->ninputs ? g->in_cname[i] : g->out_cname[i - g->ninputs];
    LLVMSetValueName2(LLVMGetParam(fn, (unsigned)i), pname, strlen(pname));
  }
  for (int i = 0; i < np - 1; i++) fail_if(cg, is_null(cg, LLVMGetParam(fn, (unsigned)i)), CNNRT_ERR_NULL, "arg");
  LLVMValueRef ws = cg->ws;
  if (g->workspace_size > 0) {
    fail_if(cg, is_null(cg, ws), CNNRT_ERR_NULL, "ws");
    LLVMValueRef addr = LLVMBuildPtrToInt(cg->b, ws, cg->i64, "ws.addr");
    LLVMValueRef mis = LLVMBuildAnd(cg->b, addr, cg_i64(cg, CNNRT_WORKSPACE_ALIGN - 1), "ws.mis");
    fail_if(cg, LLVMBuildICmp(cg->b, LLVMIntNE, mis, cg_i64(cg, 0), ""), CNNRT_ERR_ALIGN, "align");
  }
  if (!parts) {
    int k = 0;
    emit_calls(cg, kernels, 0, g->nnodes, ticks, &k);
  }
  LLVMValueRef *args = arena_array(cg->arena, (size_t)np, sizeof *args);
  for (int i = 0; i < np; i++) args[i] = LLVMGetParam(fn, (unsigned)i);
  for (int p = 0; p < nparts; p++) LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(parts[p]), parts[p], args, (unsigned)np, "");
  LLVMBuildRet(cg->b, ret_code(cg, CNNRT_OK));
  return fn;
}

/* int <name>_run_generic(const float *const *in, float *const *out, void *ws) */
static LLVMValueRef emit_run_generic(CodeGen *cg, LLVMValueRef run) {
  Graph *g = cg->g;
  LLVMTypeRef pt[3] = {cg->ptr, cg->ptr, cg->ptr};
  LLVMTypeRef fty = LLVMFunctionType(cg->i32, pt, 3, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, arena_printf(cg->arena, "%s_run_generic", g->name), fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry);
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  fail_if(cg, LLVMBuildOr(cg->b, is_null(cg, in), is_null(cg, out), ""), CNNRT_ERR_NULL, "arrays");
  int np = g->ninputs + g->noutputs + 1;
  LLVMValueRef *args = arena_array(cg->arena, (size_t)np, sizeof *args);
  for (int i = 0; i < np - 1; i++) {
    bool isin = i < g->ninputs;
    LLVMValueRef idx = cg_i64(cg, isin ? i : i - g->ninputs);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, isin ? in : out, &idx, 1, "");
    args[i] = LLVMBuildLoad2(cg->b, cg->ptr, slot, "");
  }
  args[np - 1] = LLVMGetParam(fn, 2);
  LLVMValueRef r = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(run), run, args, (unsigned)np, "r");
  LLVMBuildRet(cg->b, r);
  return fn;
}

/* ---- descriptor (cnnrt_model, cnnrt_tensor_info) ---- */

static LLVMValueRef cstring(CodeGen *cg, const char *s, const char *gname) {
  LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, s, strlen(s), 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), gname);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddr(gv, 1);
  return gv;
}

static LLVMValueRef tensor_infos(CodeGen *cg, LLVMTypeRef info_t, const int *ids, int n,
                                 const char *what) {
  LLVMValueRef *elems = arena_array(cg->arena, (size_t)n + 1, sizeof *elems);
  for (int i = 0; i < n; i++) {
    const Node *nd = &cg->g->nodes[ids[i]];
    LLVMValueRef dims[CNNRT_MAX_RANK];
    for (int d = 0; d < CNNRT_MAX_RANK; d++)
      dims[d] = cg_i64(cg, d < nd->shape.rank ? nd->shape.dim[d] : 0);
    LLVMValueRef f[4] = {
        cstring(cg, nd->name, arena_printf(cg->arena, "%s.%s.name", cg->g->name, nd->name)),
        cg_i64(cg, nd->shape.rank), LLVMConstArray2(cg->i64, dims, CNNRT_MAX_RANK),
        cg_i64(cg, shape_numel(&nd->shape))};
    elems[i] = LLVMConstNamedStruct(info_t, f, 4);
  }
  LLVMValueRef arr = LLVMConstArray2(info_t, elems, (uint64_t)n);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), arena_printf(cg->arena, "%s.%s", cg->g->name, what));
  LLVMSetInitializer(gv, arr);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

static void emit_descriptor(CodeGen *cg, LLVMValueRef generic) {
  Graph *g = cg->g;
  LLVMTypeRef info_t = LLVMStructCreateNamed(cg->ctx, "cnnrt_tensor_info");
  LLVMTypeRef info_f[4] = {cg->ptr, cg->i64, LLVMArrayType2(cg->i64, CNNRT_MAX_RANK), cg->i64};
  LLVMStructSetBody(info_t, info_f, 4, 0);
  LLVMTypeRef model_t = LLVMStructCreateNamed(cg->ctx, "cnnrt_model");
  LLVMTypeRef model_f[8] = {cg->i64, cg->ptr, cg->i64, cg->i64, cg->ptr, cg->ptr, cg->i64, cg->ptr};
  LLVMStructSetBody(model_t, model_f, 8, 0);
  LLVMValueRef f[8] = {
      cg_i64(cg, CNNRT_ABI_VERSION),
      cstring(cg, g->name, arena_printf(cg->arena, "%s.name", g->name)),
      cg_i64(cg, g->ninputs),
      cg_i64(cg, g->noutputs),
      tensor_infos(cg, info_t, g->inputs, g->ninputs, "inputs"),
      tensor_infos(cg, info_t, g->outputs, g->noutputs, "outputs"),
      cg_i64(cg, g->workspace_size),
      generic};
  LLVMValueRef init = LLVMConstNamedStruct(model_t, f, 8);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, model_t, arena_printf(cg->arena, "%s_model", g->name));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
}

/* ---- driver ---- */

void cg_init_types(CodeGen *cg) {
  cg->f32 = LLVMFloatTypeInContext(cg->ctx);
  cg->i1 = LLVMInt1TypeInContext(cg->ctx);
  cg->i8 = LLVMInt8TypeInContext(cg->ctx);
  cg->i32 = LLVMInt32TypeInContext(cg->ctx);
  cg->i64 = LLVMInt64TypeInContext(cg->ctx);
  cg->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  cg->void_t = LLVMVoidTypeInContext(cg->ctx);
}

static bool verify_module(CodeGen *cg) {
  char *msg = NULL;
  if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &msg)) {
    fprintf(stderr, "cnnc: internal error: invalid LLVM module:\n%s\n", msg);
    if (getenv("CNNC_DUMP_BAD_IR")) LLVMDumpModule(cg->mod);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  return true;
}

bool codegen_emit(Graph *g, const Options *o) {
  CodeGen cg = {.g = g, .opt = o, .arena = g->arena};
  bool ok = false;
  cg.ctx = LLVMContextCreate();
  cg.mod = LLVMModuleCreateWithNameInContext(g->name, cg.ctx);
  cg.b = LLVMCreateBuilderInContext(cg.ctx);
  cg_init_types(&cg);
  if (!emit_target_machine(&cg)) goto cleanup;
  cg.node_ptr = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof *cg.node_ptr);
  cg.node_part = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof *cg.node_part);
  LLVMValueRef *kernels = arena_array(g->arena, (size_t)g->nnodes, sizeof *kernels);
  for (int i = 0; i < g->nnodes; i++) {
    cg.inplace = g->nodes[i].inplace;
    kernels[i] = node_kernel(&cg, &g->nodes[i]);
  }
  cg.inplace = false;
  LLVMValueRef run = emit_run(&cg, kernels);
  emit_descriptor(&cg, emit_run_generic(&cg, run));
  if (!verify_module(&cg)) goto cleanup;
  ok = emit_module(&cg);
cleanup:
  LLVMDisposeBuilder(cg.b);
  LLVMDisposeModule(cg.mod);
  if (cg.tm) LLVMDisposeTargetMachine(cg.tm);
  LLVMContextDispose(cg.ctx);
  return ok;
}
