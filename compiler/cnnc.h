/*
 * cnnc.h: the one internal header of the compiler.
 *
 * The pipeline is  spec (YAML -> Graph)  ->  shape inference  ->  weights
 * binding  ->  verification  ->  passes (fusion, layout, schedule, memory
 * plan)  ->  codegen (LLVM IR)  ->  emit (object file)  ->  header.
 *
 * The IR is plain data: a Graph owns an array of Nodes in topological order
 * (every input id is smaller than the node's own id), so walking the array
 * front to back is a valid schedule and every dump is deterministic.  All
 * compiler memory comes from one Arena per compilation; nothing is freed
 * node by node.
 *
 * Shapes are logical and PyTorch-ordered (NCHW, or [N, features]).  How a
 * tensor is laid out in memory is a separate property of the node
 * (`layout`), chosen by the layout pass; fused epilogues (`act`, `residual`)
 * and per-layer schedules (`sched`) live in the node too, so that later
 * passes change data, not structure.
 *
 * Banners below split the header by the file that implements each part.
 */
#ifndef CNNC_H
#define CNNC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CNNC_VERSION "0.1.0"
#define CNNC_FORMAT_VERSION 1

/* ===================================================================== */
/* util.c: arena, diagnostics, overflow-checked arithmetic                */
/* ===================================================================== */

typedef struct {
  const char *file; /* spec path as given on the command line */
  int line, col;    /* 1-based; 0 when unknown */
} Loc;

typedef struct ArenaBlock ArenaBlock;
typedef struct {
  ArenaBlock *head; /* newest block first */
} Arena;

void *arena_alloc(Arena *a, size_t size); /* zeroed, 64-byte aligned, never NULL */
void *arena_packed(Arena *a, size_t size); /* zeroed, 8-byte aligned: many small objects */
void *arena_array(Arena *a, size_t n, size_t elem); /* aborts on size overflow */
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Grows *data (an arena array of `elem`-sized items) so that index `need-1`
 * is valid; *cap is updated.  Old contents are copied. */
void arena_grow(Arena *a, void **data, int *cap, int need, size_t elem);
#define VEC_PUSH(arena, data, len, cap, value)                                \
  do {                                                                        \
    arena_grow((arena), (void **)&(data), &(cap), (len) + 1, sizeof *(data)); \
    (data)[(len)++] = (value);                                                \
  } while (0)

/* A string -> pointer hash map in arena memory; keys are not copied. */
typedef struct {
  const char **keys; /* NULL: empty slot */
  void **vals;
  int cap, n;        /* cap: 0 or a power of two */
} StrMap;
void *strmap_get(const StrMap *m, const char *key);                 /* NULL if absent */
void *strmap_put(Arena *a, StrMap *m, const char *key, void *val); /* returns the old value */

/* Levenshtein distance between a and b, or a value > limit when it is
 * larger than limit (or either string is longer than 256 bytes); costs
 * O(strlen(a) * strlen(b)) time and no heap.  For "did you mean". */
int edit_distance(const char *a, const char *b, int limit);

/* Bytes of the longest prefix of s[0..len) of at most max bytes that ends
 * on a UTF-8 character boundary. */
size_t utf8_prefix(const char *s, size_t len, size_t max);
size_t utf8_char(const char *s, size_t n); /* bytes of the valid UTF-8 character at s, 0 if invalid */
/* s[0..len) cut to about max bytes with "..." and with control characters
 * and invalid UTF-8 escaped as \xNN. */
char *printable(Arena *a, const char *s, size_t len, size_t max);

/* Diagnostics go to diag_stream (stderr by default).  error_at prints
 * "file:line:col: error: msg", then the source line and a caret when the
 * file's text was registered with diag_add_source.  Errors are counted so
 * that a phase can report all of them before the pipeline stops. */
void diag_set_stream(FILE *f);
void diag_add_source(const char *file, const char *text, size_t len);
void diag_reset(void);
int diag_error_count(void);
void error_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void verror_at(Loc loc, const char *fmt, va_list ap);
void note_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_notes(bool on); /* off: notes are dropped (a --cpu list's second parse of the same model) */
void error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* "cnnc: error: ..." */

/* Internal bugs: never user-facing errors. */
_Noreturn void cnnc_die(const char *file, int line, const char *msg);
#define CNNC_ASSERT(c) ((c) ? (void)0 : cnnc_die(__FILE__, __LINE__, #c))
#define CNNC_UNREACHABLE() cnnc_die(__FILE__, __LINE__, "unreachable")

/* Overflow-checked int64 arithmetic: return false on overflow. */
bool ck_mul(int64_t a, int64_t b, int64_t *r);
bool ck_add(int64_t a, int64_t b, int64_t *r);

/* ===================================================================== */
/* limits (util.c holds the values; main.c sets them from the options)   */
/* ===================================================================== */

/* What a model may demand of the compiler, checked before allocating
 * (docs/format.md, "Limits"; each has a --max-* option). */
typedef struct {
  int64_t file_bytes;  /* --max-file-bytes: each input file (model, weights, external data) */
  int64_t yaml_values; /* --max-yaml-values: YAML nodes, each alias counted as what it names */
  int64_t layers;      /* --max-layers: graph inputs and layers */
  int64_t param_bytes; /* --max-param-bytes: parameters as stored in the object */
  int64_t dim;         /* --max-dim: any one dimension of a tensor */
  int64_t memory;      /* --max-memory: the compiler's estimated peak memory */
} Limits;
extern Limits cnnc_limits;
void limits_default(Limits *l);

/* ===================================================================== */
/* files.c: reading inputs, committing outputs                            */
/* ===================================================================== */

/* Reads a regular file (or standard input for "-") into arena memory,
 * NUL-terminated, at most --max-file-bytes; reports at `at` (what: "model
 * file", "weights file", ...) and returns NULL on failure. */
char *file_read(Arena *a, const char *path, const char *what, Loc at, size_t *len);
/* Plans an output; -1 after reporting (a directory, an input, another
 * output, a missing directory, ...).  Call for every output before work. */
int out_plan(const char *path, const char *what);
bool out_write(int handle, const void *data, size_t len); /* into its temporary file */
bool out_commit(void);          /* all outputs at once, or none changed */
void files_abandon(void);       /* removes temporary files (async-signal-safe) */
void files_catch_signals(void); /* SIGINT etc. remove temporary files first */
void files_reset(void);         /* forgets inputs and outputs (tests, fuzzers) */
const char *files_input(int i); /* the i-th file read, as given; NULL past the last */

/* ===================================================================== */
/* yaml.c: YAML text -> tree                                              */
/* ===================================================================== */

typedef enum { Y_SCALAR, Y_SEQ, Y_MAP } YType;
typedef struct YNode YNode;
struct YNode {
  uint8_t type;        /* YType */
  bool plain;          /* scalar: plain style (typed by the core schema); quoted = string */
  int32_t line, col;   /* 1-based */
  uint32_t len;        /* scalar: bytes of s; seq: items; map: pairs */
  union {
    const char *s;     /* scalar: value, NUL-terminated (may hold NULs) */
    YNode **kids;      /* seq: items; map: key, value, key, value, ... */
  };
};
typedef struct {       /* a sequence or mapping */
  YNode n;
  bool open;           /* still being read (an alias of it would be a cycle) */
  int64_t weight;      /* nodes in it, aliases expanded */
  void *user;          /* spec.c: its inline values, once read */
} YColl;
/* The first document's root (NULL for an empty stream); false after
 * reporting when the text is not YAML. */
bool yaml_load(Arena *a, const char *file, const char *text, size_t len, YNode **root);
int64_t yaml_weight(const YNode *n);

/* ===================================================================== */
/* ir: ops, activations, shapes, nodes, graph (graph.c)                   */
/* ===================================================================== */

#define MAX_RANK 6

typedef struct {
  int rank;              /* 0 = unknown */
  int64_t dim[MAX_RANK]; /* PyTorch order: NCHW or N,features */
} Shape;

/* Facts about ops, as op table columns (each decided here, once). */
enum {
  F_ACT = 1,      /* takes a fused activation epilogue (`activation:`, fuse.c) */
  F_INPLACE = 2,  /* output element i depends only on element i of each input: may
                     overwrite a dying in[0] of its own shape (memplan.c) */
  F_VIEW = 4,     /* output is in[0]'s elements in the same order: a view of its
                     buffer unless it is a graph output (schedule.c) */
  F_BLOCKED = 8,  /* has a kernel for channel-blocked tensors; layout.c decides
                     per node whether the shapes allow it */
  F_INTERNAL = 16,/* made by passes, never in a model file */
  F_PARAMS = 32,  /* always has a `weight` parameter (conv, dense, norms, ...) */
};

/* Ops.  Columns: enum suffix, spec name, attribute union member, the
 * op-specific attribute keys the spec accepts (besides name, op, input,
 * inputs, and inline parameters), the fewest and most inputs (-1: any
 * number), flags. */
#define CNNC_OPS(X)                                                                                        \
  X(INPUT, "input", none, "", 0, 0, 0)                                                                     \
  X(CONSTANT, "constant", constant, "shape value", 0, 0, 0) /* a parameter as a tensor */                  \
  X(CONV2D, "conv2d", conv, "filters kernel stride padding dilation groups bias activation weight", 1, 1,  \
    F_ACT | F_BLOCKED | F_PARAMS)                                                                          \
  X(CONV_TRANSPOSE2D, "conv_transpose2d", conv,                                                            \
    "filters kernel stride padding output_padding dilation groups bias activation weight", 1, 1,           \
    F_ACT | F_PARAMS)                                                                                      \
  X(MAXPOOL2D, "maxpool2d", pool, "kernel stride padding dilation ceil_mode", 1, 1, F_BLOCKED)             \
  X(AVGPOOL2D, "avgpool2d", pool, "kernel stride padding ceil_mode count_include_pad", 1, 1, F_BLOCKED)    \
  X(GLOBAL_AVGPOOL2D, "global_avgpool2d", none, "", 1, 1, F_BLOCKED)                                       \
  X(GLOBAL_MAXPOOL2D, "global_maxpool2d", none, "", 1, 1, F_BLOCKED)                                       \
  X(ADAPTIVE_AVGPOOL2D, "adaptive_avgpool2d", adaptive, "output_size", 1, 1, 0)                            \
  X(BATCHNORM, "batchnorm", bn, "epsilon weight bias running_mean running_var", 1, 1,                      \
    F_INPLACE | F_BLOCKED | F_PARAMS)                                                                      \
  X(LAYER_NORM, "layer_norm", norm, "axes epsilon elementwise_affine weight bias", 1, 1, 0)                \
  X(INSTANCE_NORM, "instance_norm", norm, "epsilon affine weight bias", 1, 1, 0)                           \
  X(ACT, "activation", act, "", 1, 1, F_INPLACE | F_BLOCKED) /* relu etc.: spec maps act names here */    \
  X(ADD, "add", none, "activation", 2, -1, F_ACT | F_INPLACE | F_BLOCKED) /* broadcasting */               \
  X(MUL, "mul", none, "activation", 2, -1, F_ACT | F_INPLACE | F_BLOCKED)                                  \
  X(SUB, "sub", none, "activation", 2, 2, F_ACT | F_INPLACE | F_BLOCKED)                                   \
  X(DIV, "div", none, "activation", 2, 2, F_ACT | F_INPLACE | F_BLOCKED)                                   \
  X(MAX, "max", none, "activation", 2, -1, F_ACT | F_INPLACE | F_BLOCKED) /* NaN-propagating */           \
  X(MIN, "min", none, "activation", 2, -1, F_ACT | F_INPLACE | F_BLOCKED)                                  \
  X(CONCAT, "concat", concat, "axis", 1, -1, F_BLOCKED)                                                    \
  X(SLICE, "slice", slice, "axis start end step", 1, 1, 0)                                                 \
  X(TRANSPOSE, "transpose", transpose, "perm", 1, 1, 0)                                                    \
  X(PAD, "pad", pad, "padding mode value", 1, 1, 0)                                                        \
  X(UPSAMPLE, "upsample", upsample, "scale size mode align_corners coordinate_mode nearest_mode special_cases", 1, 1, 0) \
  X(FLATTEN, "flatten", flatten, "start_dim", 1, 1, F_VIEW)                                                \
  X(RESHAPE, "reshape", reshape, "shape", 1, 1, F_VIEW)                                                    \
  X(DROPOUT, "dropout", none, "p", 1, 1, F_VIEW | F_BLOCKED) /* identity in eval mode */                  \
  X(DENSE, "dense", dense, "units bias activation weight", 1, 1, F_ACT | F_PARAMS)                         \
  X(LINEAR, "linear", dense, "units bias activation weight", 1, 1, F_ACT | F_PARAMS) /* over the last axis */ \
  X(REDUCE_MEAN, "reduce_mean", reduce, "axes keepdims", 1, 1, 0)                                          \
  X(REDUCE_SUM, "reduce_sum", reduce, "axes keepdims", 1, 1, 0)                                            \
  X(REDUCE_MAX, "reduce_max", reduce, "axes keepdims", 1, 1, 0)                                            \
  X(REDUCE_MIN, "reduce_min", reduce, "axes keepdims", 1, 1, 0)                                            \
  X(SOFTMAX, "softmax", softmax, "axis", 1, 1, 0)                                                          \
  X(REORDER, "reorder", none, "", 1, 1, F_INTERNAL) /* layout pass: change of layout only */

typedef enum {
#define X(e, name, member, attrs, lo, hi, flags) OP_##e,
  CNNC_OPS(X)
#undef X
      OP_COUNT
} Op;

extern const char *const op_names[OP_COUNT];
extern const char *const op_attr_keys[OP_COUNT];
extern const signed char op_min_in[OP_COUNT], op_max_in[OP_COUNT]; /* max -1: any number */
extern const unsigned char op_flags[OP_COUNT];
const char *op_name(Op op);
static inline bool op_has(Op op, unsigned flag) { return (unsigned)op < OP_COUNT && (op_flags[op] & flag); }

/* Activations, usable as a layer (`op: relu`) and as a fused epilogue
 * (`activation: relu`).  Columns: enum suffix, spec name. */
#define CNNC_ACTS(X)                                                    \
  X(NONE, "none")                                                       \
  X(RELU, "relu")                                                       \
  X(RELU6, "relu6")                                                     \
  X(LEAKY_RELU, "leaky_relu") /* alpha: negative slope, default 0.01 */ \
  X(PRELU, "prelu")           /* layer only: <layer>.weight, [C] or [1] */ \
  X(ELU, "elu")               /* alpha, default 1 */                    \
  X(SELU, "selu")             /* alpha (1.6733), beta = scale (1.0507) */ \
  X(SIGMOID, "sigmoid")                                                 \
  X(TANH, "tanh")                                                       \
  X(HARDSIGMOID, "hardsigmoid") /* max(0, min(1, alpha*x + beta)): 1/6, 1/2 */ \
  X(HARDSWISH, "hardswish")                                             \
  X(SILU, "silu")                                                       \
  X(GELU, "gelu")             /* exact (erf) form */                    \
  X(GELU_TANH, "gelu_tanh")   /* approximate='tanh' */                  \
  X(SOFTPLUS, "softplus")     /* log(1 + exp(x)) */                     \
  X(CLIP, "clip")             /* alpha = min, beta = max */             \
  X(EXP, "exp")                                                         \
  X(NEG, "neg")                                                         \
  X(ABS, "abs")                                                         \
  X(SQRT, "sqrt")                                                       \
  X(RECIPROCAL, "reciprocal")                                           \
  X(ERF, "erf")                                                         \
  X(POW, "pow")               /* x ** alpha (exponent) */               \
  X(SCALE, "scale")           /* alpha * x + beta */

typedef enum {
#define X(e, name) ACT_##e,
  CNNC_ACTS(X)
#undef X
      ACT_COUNT
} ActKind;

extern const char *const act_names[ACT_COUNT];
/* Returns ACT_COUNT when `name` is no activation. */
ActKind act_lookup(const char *name);

typedef struct {
  ActKind kind; /* ACT_NONE: identity */
  float alpha;  /* leaky_relu slope, elu/selu alpha, hardsigmoid slope, clip min
                   (-INFINITY: none), pow exponent, scale factor */
  float beta;   /* clip max (INFINITY: none), selu scale, hardsigmoid and scale offset */
} Act;

/* Memory layout of a node's output.  Shapes stay logical; layout says how
 * the elements sit in the buffer. */
typedef enum {
  LAYOUT_NCHW,   /* plain row-major in shape order (also used for [N, F]) */
  LAYOUT_NCHWC,  /* channel-blocked: N, C/cb, H, W, cb (cb = Node.cblock) */
} Layout;

/* Which kernel family codegen uses for a node (chosen by the schedule
 * pass; the scalar reference kernels are always available). */
typedef enum {
  KERNEL_REF,      /* scalar loops in logical order */
  KERNEL_DIRECT,   /* register-blocked vector direct convolution */
  KERNEL_WINOGRAD, /* F(4x4, 3x3) */
} KernelKind;

/* The dimension a layer is split over for threads (schedule.c).  Only
 * dimensions where every output element is computed by the same
 * instructions in the same order however the split falls: never a
 * reduction. */
typedef enum {
  SPLIT_NONE,  /* one task: the layer runs inline on the calling thread */
  SPLIT_OC,    /* output-channel groups (direct conv: ocb*V channels; depthwise: V;
                  Winograd: the GEMMs' ocb*V channels; dense: rows of 4 units) */
  SPLIT_ROWS,  /* output rows (direct and depthwise conv) */
  SPLIT_TILES, /* Winograd chunks of tile_oh tiles, each with its own scratch */
} SplitDim;

enum { DENSE_ROWS = 4 }; /* weight rows per step of the dense kernel: the units of its SPLIT_OC */

typedef struct {
  KernelKind kernel; /* KERNEL_REF until a schedule pass says otherwise */
  int vec;           /* vector width in floats (1 = scalar) */
  int tile_oc, tile_ow, tile_oh, tile_ic; /* register / cache tiles (0 = untiled) */
  bool rows_outer;   /* direct conv: output rows outside the channel groups (schedule.c) */
  bool at_use;       /* Winograd with few registers (no FPU, or 8 vector registers): the input
                        tile (its zeros included) and the tile's M slots are copied into scratch
                        first, and the transforms load each term where they use it (cg_winograd.c) */
  SplitDim split;    /* what tasks divide (schedule.c); SPLIT_NONE: no task form */
  int split_n;       /* units of that dimension; task i of k gets [i*n/k, (i+1)*n/k) */
  int max_tasks;     /* most tasks worth running (2 <= max_tasks <= split_n), 1 with SPLIT_NONE */
} Schedule;

typedef struct {
  int filters;           /* output channels */
  int kernel[2];         /* kh, kw */
  int stride[2];         /* sh, sw */
  int pad[4];            /* top, left, bottom, right */
  int dilation[2];       /* dh, dw */
  int output_padding[2]; /* conv_transpose2d only */
  int groups;
  bool has_bias;
} ConvAttr;

typedef struct {
  int kernel[2];
  int stride[2];
  int pad[4];      /* top, left, bottom, right */
  int dilation[2]; /* maxpool only; 1 for avgpool */
  bool ceil_mode;
  bool count_include_pad; /* avgpool only */
} PoolAttr;

typedef struct {
  int units; /* output features */
  bool has_bias;
} DenseAttr;

typedef struct {
  int axis; /* normalised to 0..rank-1 by shape inference */
  bool log; /* log_softmax */
} SoftmaxAttr;

typedef struct {
  int start_dim; /* flatten from this dim (default 1) to the last */
} FlattenAttr;

typedef struct {
  int out[2]; /* output height, width */
} AdaptiveAttr;

typedef struct {
  float epsilon; /* default 1e-5 */
} BatchnormAttr;

typedef struct {
  int axis; /* normalised to 0..rank-1 by shape inference */
} ConcatAttr;

typedef enum {
  PAD_CONSTANT, /* `value` outside */
  PAD_REFLECT,  /* mirror without repeating the edge (PyTorch 'reflect') */
  PAD_EDGE,     /* repeat the edge (PyTorch 'replicate') */
} PadMode;

typedef struct {
  int pad[4]; /* top, left, bottom, right */
  PadMode mode;
  float value; /* PAD_CONSTANT */
} PadAttr;

/* How an output coordinate maps to an input coordinate (ONNX Resize's
 * coordinate_transformation_mode; PyTorch's align_corners = false is
 * half_pixel for linear and asymmetric + floor for nearest). */
typedef enum {
  COORD_HALF_PIXEL,         /* (o + 0.5) / scale - 0.5 */
  COORD_PYTORCH_HALF_PIXEL, /* same, but 0 when the output length is 1 */
  COORD_ALIGN_CORNERS,      /* o * (in - 1) / (out - 1) */
  COORD_ASYMMETRIC,         /* o / scale */
  COORD_TF_HALF_PIXEL_FOR_NN, /* (o + 0.5) / scale */
} CoordMode;

typedef enum {
  NEAREST_FLOOR,             /* PyTorch's nearest */
  NEAREST_CEIL,
  NEAREST_ROUND_PREFER_FLOOR,/* ONNX's default */
  NEAREST_ROUND_PREFER_CEIL,
} NearestMode;

typedef struct {
  double scale[2];    /* h and w scale factors (output / input) as written: PyTorch computes
                         the output size and 1/scale in double */
  int64_t size[2];    /* output h and w as given, or 0 (then from the scales) */
  bool bilinear;      /* else nearest */
  CoordMode coord;
  NearestMode nearest;
  bool torch_cases;   /* PyTorch's special cases in its own modes (cg_upsample.c): true
                         for YAML (`special_cases`, default true), false for ONNX Resize */
} UpsampleAttr;

typedef struct {
  Shape shape;  /* the tensor's shape; its values are the node's `weight` */
} ConstantAttr;

typedef struct {
  int axis;           /* normalised to 0..rank-1 by shape inference */
  int64_t start, end; /* clamped to 0..dim (or -1..dim-1 for a negative step) by shape.c */
  int64_t step;       /* non-zero */
  int part, nparts;   /* part `part` of a split (`op: split`) into nparts; shape.c turns it
                         into start/end once the axis' length is known; nparts 0: a slice */
  const int64_t *sizes; /* the split's sizes, or NULL for torch.chunk's equal parts */
  const char *split;    /* the split's own name (a name of the spec's, for --emit-yaml) */
} SliceAttr;

typedef struct {
  int rank;           /* perm's length = the input's rank */
  int perm[MAX_RANK]; /* output dim i is input dim perm[i] (torch.permute) */
} TransposeAttr;

typedef struct {
  int first, count;   /* normalised dims [first, first + count) (layer_norm: the last
                         `count` dims of `axes`; instance_norm: 2..rank-1) */
  int naxes;          /* layer_norm as given: axes[0..naxes), negative counted from the end */
  int axes[MAX_RANK];
  float epsilon;      /* default 1e-5 */
  bool affine;        /* has weight and bias (default true) */
} NormAttr;

typedef struct {
  unsigned axes;      /* bit i: dim i is reduced (shape.c normalises; 0 in the spec: all) */
  int naxes;          /* as given, before normalisation */
  int given[MAX_RANK];
  bool keepdims;      /* reduced dims stay as 1 (default false, as torch.mean) */
} ReduceAttr;

typedef struct {
  Shape shape; /* as given: may hold one -1 and 0 (= copy the input dim) */
} ReshapeAttr;

/* A parameter tensor (weight, bias, ...).  Named as in a PyTorch
 * state_dict: "<layer>.weight".  Created by spec; `shape` is the required
 * shape, set by shape inference; `data` is bound by spec (inline) or by
 * weights.c (safetensors file). */
typedef struct {
  const char *name; /* safetensors key */
  const char *alt;  /* a second key tried when `name` is absent (a constant's bare
                       layer name, as a state_dict has it), or NULL */
  Shape shape;      /* required shape (shape.c) */
  float *data;      /* shape-sized, row-major; NULL until bound */
  bool is_inline;   /* given in the spec */
  int64_t count;    /* inline: number of values given */
  Shape given;      /* inline: shape of a nested array (rank 0 if flat) */
  Loc loc;          /* inline: the array; else the layer */
} Param;

/* Ops that exist only inside the compiler, never in a spec. */
static inline bool op_internal(Op op) { return op_has(op, F_INTERNAL); }

typedef struct {
  Op op;            /* which member of `a` is used: see CNNC_OPS */
  const char *name; /* layer name from the model file: any non-empty string */
  const char *user_name; /* the model file's name when a pass renamed the node (layout.c's
                            "<name>_blocked"), for diagnostics; NULL otherwise */
  Loc loc;          /* the layer's mapping in the spec */
  int nin;          /* number of inputs; a conv2d with 2 has a fused residual in[1],
                       added to the result before `act` (fuse.c) */
  int *in;          /* input node ids, each < this node's id */
  Shape shape;      /* output shape, logical (shape.c) */
  Act act;          /* OP_ACT: the op itself; otherwise fused epilogue */
  Param *weight;    /* conv2d, conv_transpose2d, dense, linear, batchnorm, prelu, the norms
                       when affine, constant (its values); else NULL */
  Param *bias;      /* conv*, dense, linear when has_bias; batchnorm; the norms when affine */
  Param *mean;      /* batchnorm running_mean */
  Param *var;       /* batchnorm running_var */
  union {
    ConvAttr conv;         /* OP_CONV2D, OP_CONV_TRANSPOSE2D */
    PoolAttr pool;         /* OP_MAXPOOL2D, OP_AVGPOOL2D */
    AdaptiveAttr adaptive; /* OP_ADAPTIVE_AVGPOOL2D */
    BatchnormAttr bn;      /* OP_BATCHNORM */
    ConcatAttr concat;     /* OP_CONCAT */
    PadAttr pad;           /* OP_PAD */
    UpsampleAttr upsample; /* OP_UPSAMPLE */
    ReshapeAttr reshape;   /* OP_RESHAPE */
    DenseAttr dense;       /* OP_DENSE, OP_LINEAR */
    ConstantAttr constant; /* OP_CONSTANT */
    SliceAttr slice;       /* OP_SLICE */
    TransposeAttr transpose; /* OP_TRANSPOSE */
    NormAttr norm;         /* OP_LAYER_NORM, OP_INSTANCE_NORM */
    ReduceAttr reduce;     /* OP_REDUCE_* */
    SoftmaxAttr softmax;   /* OP_SOFTMAX */
    FlattenAttr flatten;   /* OP_FLATTEN */
    int num_parameters;    /* OP_ACT with ACT_PRELU: 1 or C (weight [num_parameters]) */
  } a;
  /* Filled by passes after verification. */
  Layout layout;   /* output layout (LAYOUT_NCHW until the layout pass) */
  int cblock;      /* LAYOUT_NCHWC block size */
  Schedule sched;  /* kernel choice and tiling */
  int input_index; /* >= 0: the graph's input #k (OP_INPUT) */
  int output_index;/* >= 0: the graph's output #k (written to caller memory) */
  int nuses;       /* number of consumers (graph_count_uses) */
  bool alias;      /* output is the input buffer viewed differently (flatten) */
  bool inplace;    /* writes its output over in[0]'s buffer, which dies here (memplan) */
  bool fused;      /* a depthwise conv computed in strips inside its consumer (fuse_dw.c):
                      no kernel, no buffer */
  int pre_dw;      /* 1 + index of the fused depthwise conv whose output rows this 1x1
                      conv consumes (its in[0] is then that conv's input); 0 = none */
  int64_t offset;  /* workspace byte offset (memplan); -1 = not in workspace */
  int64_t scratch; /* bytes of kernel-private scratch the kernel needs (schedule.c) */
  int64_t scratch_offset; /* its workspace byte offset (memplan) */
} Node;

typedef struct {
  Arena *arena;           /* owns everything below */
  const char *file;       /* spec path */
  const char *name;       /* model name: C identifier, prefixes symbols */
  Loc name_loc;           /* where it is given */
  const char **in_cname;  /* per input index: its C identifier in the header (names.c) */
  const char **out_cname; /* per output index */
  const char *weights;    /* safetensors path resolved against the spec's dir; NULL if none */
  Loc weights_loc;        /* where `weights:` is */
  Node *nodes;            /* topological order */
  int nnodes, capnodes;
  int *inputs;            /* node ids of OP_INPUT nodes, in spec order */
  int ninputs;
  int *outputs;           /* node ids of outputs, in spec order */
  int noutputs;
  Param **params;         /* every parameter, in creation order */
  int nparams, capparams;
  int64_t workspace_size; /* bytes (memplan) for one thread */
  int cpu_level;          /* x86-64-vN that the run checks at its first call, 0: none
                             (target_cpu_level; set with the target, main.c) */
  int64_t thread_scratch; /* bytes each further thread adds: the largest per-task scratch of a
                             split layer, 64-aligned (memplan); 0 when no split layer has scratch */
  int scratch_threads;    /* most tasks of a split layer with scratch: threads beyond it add
                             nothing (memplan); 1 when thread_scratch is 0 */
  int64_t workspace_bound;/* most bytes live at any one time: no plan can do better */
  int64_t code_bytes;     /* emit.c: the object's code (.text*), for --stats */
  int64_t const_bytes;    /* emit.c: its constants (weights, descriptor: .rodata*, .data.rel.ro*, --weights-section) */
  int64_t stack_bytes;    /* emit.c: the deepest stack of <name>_run (frame sizes along its call chains;
                             -1: not known), for --stats */
  bool random_weights;    /* --random-weights: weights_bind fills params found nowhere */
  uint64_t random_seed;   /* its SEED */
} Graph;

Graph *graph_new(Arena *a, const char *file);
int graph_find(const Graph *g, const char *name); /* node id or -1 */
void graph_count_uses(Graph *g);
int64_t shape_numel(const Shape *s); /* -1 on overflow */
bool shape_eq(const Shape *a, const Shape *b);
const char *shape_str(Arena *a, const Shape *s); /* "[1, 3, 224, 224]" */
void graph_dump(const Graph *g, FILE *f);

/* ===================================================================== */
/* build.c: the frontend-neutral graph builder                            */
/* ===================================================================== */

typedef struct Builder Builder;
Builder *build_begin(Graph *g);
void build_input(Builder *b, Node n, Loc name_loc);
/* A layer reading the named nodes, or (nrefs) the previous layer, or what
 * the previous layer reads. */
enum { BUILD_PREVIOUS = -1, BUILD_SAME_INPUTS = -2 };
void build_layer(Builder *b, Node n, Loc name_loc, const char **refs, Loc *ref_locs, int nrefs);
void build_output(Builder *b, const char *name, Loc loc); /* none: the last layer */
/* A name that is no tensor but must stay unique (a split, whose parts are
 * `members`, "a, b"): duplicates and references to it are errors. */
void build_group(Builder *b, const char *name, Loc loc, const char *members);
/* Resolves names, orders nodes, fills the graph; false after reporting. */
bool build_end(Builder *b);

/* ===================================================================== */
/* names.c: C identifiers of the generated API                            */
/* ===================================================================== */

/* Whether `name` can be a model name (reports at loc if not). */
bool names_check_model(const char *name, Loc loc);
/* Fills in_cname/out_cname; false after reporting collisions. */
bool names_assign(Graph *g);
/* s with "*" "/" kept apart and non-printable bytes as \xNN: safe in a C comment. */
const char *names_comment(Arena *a, const char *s);

/* ===================================================================== */
/* spec.c: YAML spec -> Graph                                             */
/* ===================================================================== */

/* Parses `path` into a graph in topological order.  Reports every problem
 * found with error_at; returns NULL if there was any. */
Graph *spec_parse(Arena *a, const char *path);
Graph *spec_parse_string(Arena *a, const char *path, const char *text, size_t len);
/* An activation as spec.c reads it when no keys are given (`activation:
 * leaky_relu`): its default alpha and beta (emit_yaml.c omits them). */
Act spec_act_default(ActKind k);

/* ===================================================================== */
/* emit_yaml.c: Graph -> YAML spec and safetensors (--emit-yaml)          */
/* ===================================================================== */

typedef struct {
  const char *yaml;             /* the spec's text */
  size_t yaml_len;
  const unsigned char *weights; /* the safetensors file: every parameter, F32 */
  size_t weights_len;
} YamlSpec;

/* needs: the front end's graph (shapes, bound weights, verified; before
 * fold_bn); gives: a spec that names its weights file `weights_name` (a
 * path relative to the spec's directory) and that spec.c reads back into
 * the same graph, checked by reading it back as if from `path`; `source`
 * (the model file) goes into its header comment.  False after reporting
 * what the format cannot say. */
bool emit_yaml(Graph *g, const char *path, const char *source, const char *weights_name, YamlSpec *out);

/* ===================================================================== */
/* onnx.c: ONNX model -> Graph                                            */
/* ===================================================================== */

typedef struct {
  const char *name; /* a graph input */
  Shape shape;      /* its shape, for models whose dims are dynamic */
} InputShape;

typedef struct {
  const InputShape *inputs; /* --input-shape NAME=D,D,... */
  int ninputs;
  const char *name;         /* --name, or NULL: the file's name made an identifier */
} OnnxOptions;

/* Whether a file is ONNX (onnx_load.c; by content, not by name). */
bool onnx_sniff(const unsigned char *buf, size_t len);
/* Translates an ONNX model (docs/format.md, "ONNX models"); NULL after
 * reporting every problem found. */
Graph *onnx_parse(Arena *a, const char *path, const unsigned char *buf, size_t len, const OnnxOptions *o);

/* ===================================================================== */
/* safetensors.c                                                          */
/* ===================================================================== */

typedef struct {
  const char *name;
  const char *dtype; /* "F32", ... as written in the file */
  Shape shape;
  const unsigned char *data; /* into the mapped file contents */
  size_t nbytes;
} StTensor;

typedef struct {
  StTensor *tensors;
  int ntensors;
  StrMap index; /* name -> StTensor* */
} StFile;

/* Parses a safetensors blob; reports problems at `loc` (the `weights:`
 * entry) and returns false on any. */
bool st_parse(Arena *a, const unsigned char *buf, size_t len, Loc loc, StFile *out);
/* Same, naming the file `file` in every message. */
bool st_parse_named(Arena *a, const unsigned char *buf, size_t len, const char *file, Loc loc,
                    StFile *out);
const StTensor *st_find(const StFile *f, const char *name);

/* ===================================================================== */
/* Passes.  Each returns false after reporting errors with error_at.     */
/* ===================================================================== */

bool shape_infer(Graph *g);  /* shape.c:   needs: spec graph; gives: shapes, param shapes */
/* One node, its inputs' shapes known: for frontends that need shapes while
 * translating (onnx.c); false after reporting. */
bool shape_infer_node(Graph *g, int id);
bool weights_bind(Graph *g); /* weights.c: needs: param shapes; gives: every Param.data */
bool verify(Graph *g);       /* verify.c:  needs: all above; checks invariants, sizes */
/* rewrite.c: node removal for passes that merge nodes. */
void graph_rewrite(Graph *g, const int *replace); /* replace[i] != i: node i's users read replace[i] */
int *graph_identity_map(Graph *g);
void graph_take_output(Graph *g, Node *dst, const Node *src);

void fold_bn(Graph *g);      /* fold_bn.c: batchnorm after conv folded into its weights */
void fuse(Graph *g);         /* fuse.c:    activations and residual adds into conv epilogues */
struct TargetInfo;
/* The back end's passes, in order (main.c's back_end): */
void layout(Graph *g, const struct TargetInfo *t);   /* layout.c: blocked layouts and reorders */
void fuse_dw(Graph *g, const struct TargetInfo *t);  /* fuse_dw.c: depthwise into the next 1x1 conv */
void schedule(Graph *g, const struct TargetInfo *t); /* schedule.c: kernel, tiling, scratch, split; views */
bool pack(Graph *g); /* pack.c: weights for the chosen kernels; false past --max-param-bytes */
int64_t node_floats(const Node *n); /* layout.c: floats in a node's buffer, given its layout */
bool conv_is_depthwise(const Graph *g, const Node *n); /* layout.c: groups == C == OC */
/* The workspace bytes a run on up to `threads` threads needs (header.c, codegen.c). */
int64_t workspace_for_threads(const Graph *g, int64_t threads);
void stats_print(const Graph *g, const struct TargetInfo *t, FILE *f); /* stats.c: --stats */
int64_t node_flops(const Graph *g, const Node *n); /* stats.c: 2 per multiply-add */
const char *node_kernel_str(Arena *a, const Graph *g, const Node *n); /* stats.c: "direct x8 4x6" */
/* profile_data.c: --profile-data, a layer's measured time: per node id,
 * ms (-1: unknown, the table counted ticks) and share of the run (-1:
 * not in the table). */
typedef struct {
  double *ms, *share;
  int rows;
} ProfileData;
ProfileData *profile_data_read(Graph *g, const char *path); /* NULL after reporting */
ProfileData *profile_data_parse(Arena *a, const Graph *g, const char *path, const char *text, size_t len);
/* dot.c: --emit-dot, the graph for Graphviz; pd: --profile-data or NULL */
char *dot_text(const Graph *g, const ProfileData *pd, size_t *len);
void memplan(Graph *g);      /* memplan.c: needs: schedule; gives: offsets, workspace size */
/* budget.c: the resource limits.  budget_params: needs shapes, before any
 * parameter is allocated; budget_plan: needs the memory plan, before
 * codegen.  Both report and return false when a limit would be passed. */
bool budget_params(Graph *g);
typedef struct {
  int64_t stored, held; /* the parameters stored and the memory held by the variants planned so far */
} BudgetUse;
bool budget_plan(Graph *g, BudgetUse *use); /* use: {0} for the first variant of an object */
bool budget_address(Graph *g, const struct TargetInfo *t); /* after memplan: 32-bit targets' 2 GiB */

/* ===================================================================== */
/* codegen.c / cg_*.c / emit.c                                            */
/* ===================================================================== */

typedef struct {
  const char *output;  /* object path (-o) */
  const char *header;  /* header path (default: output with .h) */
  const char *triple;  /* NULL: host */
  const char *cpu;     /* NULL: host ("native") */
  const char *features;/* NULL: host features when cpu is native */
  int opt_level;       /* 0..3 */
  bool emit_llvm;      /* write textual IR to `output` instead of an object */
  int winograd;        /* -1 auto, 0 off, 1 on (--winograd=auto|off|on) */
  bool profile;        /* --profile: count cycles per layer (see codegen.c) */
  bool fuse_dw;        /* --fuse-dw=on: depthwise convs inside the next 1x1 conv (fuse_dw.c) */
  const char *emit_asm;        /* --emit-asm FILE: the assembly too (NULL: not written) */
  const char *weights_section; /* --weights-section NAME: parameters in that section (NULL: .rodata) */
  const struct TargetInfo *target; /* resolved by target_info before codegen */
  int asm_out;         /* files.c handle of --emit-asm's file (-2: none) */
  int obj_out, hdr_out;/* files.c handles of the object (or IR) and the header */
} Options;

/* target.c: the target table (one row per architecture class) and the
 * target resolved from --target, --cpu and --features. */
typedef enum {
  CLOCK_NONE,   /* no counter: --profile is refused */
  CLOCK_CYCLES, /* llvm.readcyclecounter (x86 rdtsc) */
  CLOCK_STEADY, /* llvm.readsteadycounter, meant for AArch64's CNTVCT_EL0 (LLVM 19 lowers it to 0 there) */
  CLOCK_DWT,    /* Cortex-M DWT CYCCNT (0xE0001004, 32 bits), enabled by cnnrt_cycles_enable() */
} ProfileClock;

typedef struct TargetArch {
  const char *name;     /* "avx512", "neon", "armv7e-m+fp", "mve", ... (--stats, dumps) */
  int vec;              /* f32 lanes per vector register: 16, 8, 4 (1 = scalar) */
  int nregs;            /* registers of vec lanes the kernels may block over */
  int acc;              /* of those, accumulators the conv micro-kernels keep (the rest hold
                           weights and inputs: no spills; tests/unit/test_spills.c checks) */
  bool fma;             /* fused multiply-add */
  bool fpu;             /* FP hardware; false: float ops are libgcc's __aeabi_f* calls */
  int index_bits;       /* native integer width: 64, or 32 on 32-bit cores */
  bool no_div;          /* no integer divide instruction (Armv6-M): run-time divisions are inline
                           code (cg_udiv32), not libgcc's __aeabi_uidiv */
  bool thumb1;          /* Thumb-1 only (Armv6-M): 8-bit immediates, most instructions reach r0-r7 */
  bool fp_bits;         /* NaN and sign tests on a float's bits, not float compares (MVE: cg_math.c) */
  bool bare_metal;      /* no OS: static code (no GOT), objects for arm-none-eabi-gcc */
  ProfileClock clock;   /* what --profile reads */
  int64_t l1, l2;       /* data cache (or fast memory) bytes the tiling assumes off the host */
  bool dot_i8;          /* int8 dot-product instructions (for int8 kernels later; unused) */
  bool base_isa;        /* a named CPU tunes the code (LLVM's tune-cpu) but adds no instructions
                           beyond the architecture's base, so objects need no run-time check (AArch64) */
  const char *features; /* the features --features may switch (comma list, without +/-) */
} TargetArch;

typedef struct TargetInfo {
  const TargetArch *arch; /* the table row */
  const char *triple;     /* normalised (LLVMNormalizeTargetTriple) */
  const char *cpu;        /* LLVM CPU name: the host's, --cpu, or the triple's default */
  const char *features;   /* LLVM feature string ("" for the CPU's own) */
  const char *float_abi;  /* "hard", "softfp" (FPU, soft calls) or "soft" (no FPU) */
  bool hard_float;        /* the triple's environment is eabihf */
  int vec;        /* f32 lanes of the widest profitable vector: 16, 8, 4 (1 = scalar) */
  int nregs;      /* vector registers */
  int acc;        /* accumulators of a conv micro-kernel (= arch->acc) */
  bool fma;       /* fused multiply-add available */
  int64_t l1, l2; /* data cache bytes per core */
  const char *isa;/* = arch->name, for --stats and dumps */
  int winograd;   /* from --winograd: -1 auto (per layer), 0 never, 1 wherever eligible */
  bool fuse_dw;   /* from --fuse-dw: depthwise convs into the 1x1 convs after them (fuse_dw.c) */
  int level;      /* x86-64: the psABI level (2-4) the run checks (the CPU's, raised by --features), 0: none */
} TargetInfo;

/* Resolves the target from the options (the host by default, else the
 * tables; --features last).  false after reporting a triple, CPU,
 * feature or --profile the tables cannot serve. */
bool target_info(const Options *o, Arena *a, TargetInfo *t);
int target_x86_cpu_width(const char *cpu); /* 16, 8, 4; 0: not a known x86-64 CPU */
int target_cpu_level(const TargetInfo *t);  /* x86-64-vN the run checks (cg_cpu.c), 0: none */
const char *target_level_name(int level);   /* "x86-64-v2".."x86-64-v4"; "x86-64" below 2 */

/* One variant of the model in an object: its graph after the back end
 * (whose cpu_level is the x86-64 psABI level its run needs; 0: none to
 * check), compiled for its target. */
typedef struct {
  Graph *g;
  const TargetInfo *t;
} Variant;

/* Generates the module and writes the object (or .ll): the variants
 * (several from a --cpu list, highest level first) behind one descriptor,
 * `top` (the model's name, tensors and workspace, which covers every
 * variant's).  An x86-64 object above the baseline dispatches on the
 * machine's level at the first call.  Returns false on failure (reported
 * with error_plain). */
bool codegen_emit(Graph *top, const Variant *vs, int nv, const Options *o);

/* header.c: the header's text; cpus: the --cpu list's variants, best
 * first ("x86-64-v4,x86-64-v3"), or NULL for one. */
const char *header_text(const Graph *g, bool profile, const char *cpus, size_t *len);

#endif
