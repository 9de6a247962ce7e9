/*
 * codegen.h: shared by the code generator files (codegen.c, cg_*.c,
 * emit.c), the only files that include llvm-c/.
 *
 * All LLVM state lives in one CodeGen passed around as `cg`.  Each node
 * kind has one cg_<op>() that emits (or reuses) an internal kernel
 * function specialised to the node's shapes and attributes; the run
 * function then calls the kernels in topological order with the buffers
 * the memory planner assigned.
 *
 * Kernels take their tensors as pointer arguments (inputs, output, then
 * parameters), never as globals, so that layers with identical shapes and
 * attributes share one kernel: cg_kernel_lookup() finds a kernel by a key
 * string that spells out everything the code depends on.
 */
#ifndef CNNC_CODEGEN_H
#define CNNC_CODEGEN_H

#include "cnnc.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

/* Pointer -> LLVM value (parameters' globals), open addressing. */
typedef struct {
  const void **keys;
  LLVMValueRef *vals;
  size_t cap, n;
} PtrMap;

typedef struct {
  LLVMValueRef iv;          /* induction variable (i64) */
  LLVMValueRef phi;         /* the counter: iv, or an i32 that iv extends (CodeGen.index32) */
  LLVMBasicBlockRef header; /* compares and branches */
  LLVMBasicBlockRef exit;   /* continues after the loop */
  LLVMValueRef step;        /* increment */
} Loop;

typedef struct {
  Graph *g;                /* graph being compiled */
  const Options *opt;      /* command-line options */
  Arena *arena;            /* = g->arena */
  LLVMContextRef ctx;      /* owned: disposed by codegen_emit */
  LLVMModuleRef mod;       /* owned */
  LLVMBuilderRef b;        /* owned */
  LLVMTargetMachineRef tm; /* owned */
  bool soft_float;         /* no FP hardware (target table): cg_math.c avoids what LLVM cannot soften */
  bool index32;            /* 32-bit core (target table): loop counters are i32 (cg_loop_begin) */
  bool no_div;             /* no divide instruction (target table): cg_udiv32 divides inline */
  bool thumb1;             /* Thumb-1 only (target table): cg_const_at_use builds constants in place */
  bool fp_bits;            /* NaN and sign tests on the bits (target table; cg_math.c) */
  LLVMTypeRef f32, i1, i8, i32, i64, ptr, void_t; /* cached types */
  LLVMTypeRef isize;       /* the target's size_t (emit_target_machine) */
  LLVMTypeRef task_t;      /* a split layer's task context (codegen.c, TASK_PTRS pointers) */
  LLVMValueRef fn;         /* function being emitted */
  LLVMBasicBlockRef entry; /* its entry block (allocas go here) */
  PtrMap params;           /* Param* -> its constant global, made on first use */
  LLVMValueRef *node_ptr;  /* per node: its buffer in the function being emitted */
  int *node_part;          /* per node: 1 + the run part node_ptr[] was made in */
  int part;                /* 1 + the run part being emitted */
  LLVMValueRef ws;         /* the workspace argument of the function being emitted */
  bool inplace;            /* the kernel being made runs in place: no noalias */
  SplitDim split;          /* the kernel being made takes a split range (i64 lo, hi) after its
                              pointers (Schedule.split of its layer); SPLIT_NONE: no range */
  LLVMValueRef split_lo, split_hi; /* those parameters of the kernel being made */
  PtrMap tasks;            /* kernel -> its task form, void(ctx, int task) */
  LLVMValueRef pool, threads; /* in a pooled run function: the pool, the threads usable (i32) */
  LLVMValueRef task_ctx;   /* ... and its task context (one alloca, reused layer by layer) */
  StrMap kernels;          /* key -> kernel function (LLVMValueRef), for sharing */
} CodeGen;

/* ---- codegen.c: helpers for kernel emission ---- */
void cg_init_types(CodeGen *cg); /* fills the cached types from cg->ctx */
LLVMValueRef cg_i64(CodeGen *cg, int64_t v);
LLVMValueRef cg_f32(CodeGen *cg, double v);
/* Starts a kernel function `name` with `nptr` pointer parameters (all
 * noalias: kernels only read their inputs, and no input shares memory
 * with the output) returning void, or returns an existing kernel with the same key
 * (then *is_new is false and nothing is emitted). */
LLVMValueRef cg_kernel_begin(CodeGen *cg, const char *key, const char *name, int nptr,
                             bool *is_new);
void cg_kernel_end(CodeGen *cg);
/* A part of the kernel being emitted as a function of its own (internal,
 * noinline), for a loop nest that should not share registers with the
 * code around it: values LLVM hoisted to the kernel's entry (the Winograd
 * transforms' coefficient vectors) stay live across every loop of the
 * kernel.  cg_part_begin makes the function, of nptr pointer and then
 * nint integer parameters, and moves the builder into it; Part.param are
 * the parameters as the part uses them (the integers as i64); cg_part_end
 * returns from it and emits the call where the builder was, with i64
 * arguments for the integers.  On a 32-bit core the integers pass as i32,
 * as its loop counters are: i64 parameters made the products of a tile
 * index 64-bit multiplies, libgcc's __aeabi_lmul on the M0+. */
enum { CG_PART_MAX = 10 }; /* parameters */
typedef struct {
  LLVMValueRef fn;
  LLVMValueRef param[CG_PART_MAX];
  int nptr;
  LLVMBasicBlockRef entry, at;
} Part;
void cg_part_begin(CodeGen *cg, Part *p, const char *name, int V, int nptr, int nint);
void cg_part_end(CodeGen *cg, Part *p, LLVMValueRef *args, int nargs);
/* The units [lo, hi) of the layer's split dimension that the kernel being
 * emitted runs: its two range parameters when the layer is split (its
 * Schedule.split), else the whole [0, n).  Kernels loop over exactly this
 * range in the split dimension, so the work of a unit never depends on
 * which task runs it. */
void cg_split_range(CodeGen *cg, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi);
/* A counted loop for (iv = lo; iv < hi; iv += step), i64. */
Loop cg_loop_begin(CodeGen *cg, const char *name, LLVMValueRef lo, LLVMValueRef hi,
                   int64_t step);
void cg_loop_end(CodeGen *cg, Loop *l);
Loop cg_for(CodeGen *cg, const char *name, int64_t n); /* 0..n-1 */
/* cg_loop_end for a loop that must stay a loop (never unrolled), such as
 * a pass of a transform done through memory to bound register pressure. */
void cg_loop_end_rolled(CodeGen *cg, Loop *l);
/* A rolled loop of `count` iterations (i64, >= 0, may be dynamic) that
 * walks up to CG_WALK_MAX pointers, each by its constant byte step, and
 * counts down to zero: the loop keeps the pointers and the count and
 * nothing else.  On Thumb-1 each pointer passes an empty asm before its
 * step (made at use, cg_const_at_use), so that loop strength reduction
 * cannot rewrite it as a base and an offset, two registers where one
 * does (Armv6-M has r4-r7 across the soft-float calls).  Elsewhere they do
 * when the caller sets `hide` after cg_walk_begin: then LLVM cannot tell
 * that a load of this iteration reads what a load of the last one read
 * either, and keep the value across the back edge (taps_run). */
enum { CG_WALK_MAX = 4 };
typedef struct {
  LLVMValueRef p[CG_WALK_MAX]; /* the pointers in this iteration */
  LLVMValueRef iv;             /* iterations done so far (i64) */
  LLVMValueRef left;           /* iterations left (the phi) */
  int64_t step[CG_WALK_MAX];
  int np;
  bool hide; /* each pointer passes an empty asm before its step */
  LLVMBasicBlockRef header, exit;
} Walk;
Walk cg_walk_begin(CodeGen *cg, const char *name, LLVMValueRef count, int np, const LLVMValueRef *start,
                   const int64_t *step);
void cg_walk_end(CodeGen *cg, Walk *w);
/* if (cond) { ... } : returns the join block; call cg_if_end to close. */
LLVMBasicBlockRef cg_if_begin(CodeGen *cg, LLVMValueRef cond, const char *name);
void cg_if_end(CodeGen *cg, LLVMBasicBlockRef join);
LLVMValueRef cg_alloca(CodeGen *cg, LLVMTypeRef t, const char *name);
LLVMValueRef cg_gep(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, const char *name);
/* &base[idx] without inbounds: for a pointer that may lie outside its
 * buffer (a walk's start at a padded row or column) though every load
 * from it is inside. */
LLVMValueRef cg_gep_wrap(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_load(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, const char *name);
void cg_store(CodeGen *cg, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* Vector load/store of type vt at base[idx] (float index; alignment 4). */
LLVMValueRef cg_vload(CodeGen *cg, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx);
void cg_vstore(CodeGen *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_splat(CodeGen *cg, LLVMTypeRef vt, LLVMValueRef x); /* scalar -> all lanes */
LLVMValueRef cg_smin(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);  /* signed i64 */
LLVMValueRef cg_smax(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_add(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_mul(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_muladd(CodeGen *cg, LLVMValueRef a, int64_t k, LLVMValueRef c); /* a*k+c */
/* Calls an overloaded intrinsic such as "llvm.fmuladd" at type `t`. */
LLVMValueRef cg_intrinsic(CodeGen *cg, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                          int nargs, const char *vname);
LLVMValueRef cg_fma(CodeGen *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
LLVMValueRef cg_fadd(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fsub(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmul(CodeGen *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_const_at_use(CodeGen *cg, uint32_t bits);
LLVMValueRef cg_f32_at_use(CodeGen *cg, double v);
LLVMValueRef cg_fneg_at_use(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_base_at_use(CodeGen *cg, LLVMValueRef p);
LLVMValueRef cg_asm_identity(CodeGen *cg, LLVMValueRef v, const char *cons, bool side_effects);
uint32_t cg_f32_bits(double v); /* the bits of (float)v */
LLVMValueRef cg_gep_at_use(CodeGen *cg, LLVMValueRef base, int64_t floats);
/* Unsigned i32 division x / d, d > 0: udiv, or where the core has no
 * divide instruction (CodeGen.no_div) a 32-step shift-and-subtract loop,
 * so that objects need no libgcc division routine. */
LLVMValueRef cg_udiv32(CodeGen *cg, LLVMValueRef x, LLVMValueRef d);
/* Unsigned range check 0 <= v < n as an i1. */
LLVMValueRef cg_in_range(CodeGen *cg, LLVMValueRef v, int64_t n);

/* Blocked summation, for every reduction whose length a model controls:
 * sum of term(ctx, i) over i in [lo, hi) (at most maxn terms), as a loop of
 * at most CG_SUM_BLOCK partial sums of at most CG_SUM_BLOCK partial sums...
 * so that the rounding error grows like CG_SUM_BLOCK * log(n) rather than
 * n (a 4096x4096 mean: 1e-7 instead of 1e-4).  With maxn <= CG_SUM_BLOCK
 * it is the plain loop.  t: float or a float vector (lane-wise sums). */
enum {
  CG_SUM_BLOCK = 64,          /* partial sums of at most this many terms */
  CG_LONG_REDUCTION = 16384,  /* convolutions summing more terms sum them blocked */
};
typedef LLVMValueRef (*CgTerm)(CodeGen *cg, void *ctx, LLVMValueRef i);
LLVMValueRef cg_sum(CodeGen *cg, const char *name, LLVMTypeRef t, LLVMValueRef lo, LLVMValueRef hi, int64_t maxn,
                    CgTerm term, void *ctx);

/* ---- cg_math.c: inline transcendentals (scalar or vector float) ---- */
LLVMValueRef cg_exp(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_log(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_expm1(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_tanh(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_sigmoid(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_erf(CodeGen *cg, LLVMValueRef x);
LLVMValueRef cg_max(CodeGen *cg, LLVMValueRef a, LLVMValueRef b); /* NaN-propagating */
LLVMValueRef cg_min(CodeGen *cg, LLVMValueRef a, LLVMValueRef b); /* NaN-propagating */
LLVMValueRef cg_sqrt(CodeGen *cg, LLVMValueRef x); /* as sqrtf; never a libm call */
/* The binary ops' combination of two values (add, mul, sub, div, max, min). */
LLVMValueRef cg_combine(CodeGen *cg, Op op, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_prelu(CodeGen *cg, LLVMValueRef x, LLVMValueRef slope); /* x > 0 ? x : x*slope */
/* Any activation but ACT_PRELU (which needs its weight: cg_prelu). */
LLVMValueRef cg_act(CodeGen *cg, const Act *act, LLVMValueRef x);
/* "act=<kind>/<alpha>/<beta>" with exact (hex) floats, for kernel keys. */
const char *cg_act_key(CodeGen *cg, const Act *act);

/* ---- one per op family; each returns the kernel function ---- */
LLVMValueRef cg_conv(CodeGen *cg, const Node *n);
LLVMValueRef cg_pool(CodeGen *cg, const Node *n);
LLVMValueRef cg_dense(CodeGen *cg, const Node *n);
LLVMValueRef cg_softmax(CodeGen *cg, const Node *n);
LLVMValueRef cg_eltwise(CodeGen *cg, const Node *n); /* activation layers, copies */
LLVMValueRef cg_global_pool(CodeGen *cg, const Node *n);   /* cg_pool.c: global avg/max */
LLVMValueRef cg_adaptive_pool(CodeGen *cg, const Node *n); /* cg_pool.c */
LLVMValueRef cg_batchnorm(CodeGen *cg, const Node *n);     /* cg_bn.c */
LLVMValueRef cg_binary(CodeGen *cg, const Node *n);        /* add, mul (n-ary, broadcasting) */
LLVMValueRef cg_concat(CodeGen *cg, const Node *n);
LLVMValueRef cg_pad(CodeGen *cg, const Node *n);
LLVMValueRef cg_upsample(CodeGen *cg, const Node *n);
LLVMValueRef cg_convt(CodeGen *cg, const Node *n);         /* conv_transpose2d */
LLVMValueRef cg_strided(CodeGen *cg, const Node *n);       /* cg_copy.c: transpose, slice */
LLVMValueRef cg_norm(CodeGen *cg, const Node *n);          /* cg_norm.c: layer_norm, instance_norm */
LLVMValueRef cg_reduce(CodeGen *cg, const Node *n);        /* cg_norm.c: reduce_* */

/* ---- fast paths for channel-blocked layouts (layout.c) ---- */
LLVMValueRef cg_conv_direct(CodeGen *cg, const Node *n); /* cg_conv_direct.c */
LLVMValueRef cg_winograd(CodeGen *cg, const Node *n);    /* cg_winograd.c */
LLVMValueRef cg_blocked(CodeGen *cg, const Node *n);     /* cg_blocked.c: pools, eltwise, concat, bn */
LLVMValueRef cg_reorder(CodeGen *cg, const Node *n);     /* cg_blocked.c */
/* Keeps LLVM from splitting V-lane vectors on targets that prefer narrower ones. */
/* cg_cpu.c: the x86-64 CPU probe: `<name>.cpu_level()` returns the
 * machine's psABI level, 1-4 (cached after the first call).
 * cg_baseline_attrs: a function compiled for the x86-64 baseline whatever
 * the target CPU. */
LLVMValueRef cg_cpu_level_fn(CodeGen *cg);
void cg_baseline_attrs(CodeGen *cg, LLVMValueRef fn);
void cg_vector_attrs(CodeGen *cg, LLVMValueRef fn, int V);
/* cg_pool.c: the blocked sum of a window: rows row0 + [r0, r1) (at most
 * maxr), columns col0 + [c0, c1) (at most maxc) of a plane of rows of W
 * pixels of `lanes` floats (1, or V for blocked tensors, then t is <V x float>);
 * row0 counts rows from the start of `in`. */
LLVMValueRef cg_window_sum(CodeGen *cg, LLVMTypeRef t, LLVMValueRef in, int64_t lanes, int64_t W, LLVMValueRef row0,
                           LLVMValueRef r0, LLVMValueRef r1, int64_t maxr, LLVMValueRef col0, LLVMValueRef c0,
                           LLVMValueRef c1, int64_t maxc);
/* cg_pool.c: taps avgpool divides by along one axis, as PyTorch counts them. */
LLVMValueRef cg_pool_count(CodeGen *cg, LLVMValueRef o, int stride, int pad, int k, int64_t size, bool include_pad);
/* cg_pool.c: the product of the two counts, as a float (avgpool's divisor). */
LLVMValueRef cg_pool_divisor(CodeGen *cg, const PoolAttr *p, LLVMValueRef oh, LLVMValueRef ow, int64_t H, int64_t W);

/* ---- emit.c ---- */
/* Creates the target machine for the options (host by default). */
bool emit_target_machine(CodeGen *cg);
/* Optimises and writes the module to o->output (object or .ll). */
bool emit_module(CodeGen *cg);
/* emit.c: t's target-cpu (and tune-cpu, target-features) on every defined
 * function that has none yet (per variant, then the target machine's). */
void emit_tag_functions(CodeGen *cg, const struct TargetInfo *t);

/* ---- lower_memmove.c ---- */
/* Replaces the optimiser's llvm.memmove calls with an internal copy loop. */
void lower_memmove(CodeGen *cg);

#endif
