/*
 * onnx_t.h: shared by the ONNX translator's files (onnx.c: values, nodes,
 * graph inputs and outputs; onnx_ops.c: one handler per operator;
 * onnx_fold.c: constant folding of shape computations).
 *
 * The translator walks the ONNX graph's nodes in file order (ONNX requires
 * them topologically sorted) and turns each into IR nodes through the graph
 * builder (build.c), which resolves names and orders the graph as it does
 * for YAML.  Every ONNX tensor name maps to a Val: the IR node computing it
 * (with its shape, inferred as the node is added, on a scratch copy of the
 * graph: many translations need shapes, such as Flatten, auto_pad and
 * Shape), or a constant (an initializer, a Constant node, or folded from
 * constants), or "bad" (its node could not be translated; reported there).
 * Constants become IR constant nodes only where a computing node uses
 * them as operands.
 */
#ifndef CNNC_ONNX_T_H
#define CNNC_ONNX_T_H

#include "onnx.h"

typedef enum { V_NODE, V_CONST, V_BAD } VKind;

typedef struct {
  VKind kind;
  const char *name;   /* V_NODE: the IR node; V_CONST: the tensor's name (for its IR node) */
  int sid;            /* V_NODE: the node's id in the scratch graph; V_CONST: -1 until used */
  Shape shape;        /* known for V_NODE and V_CONST (rank 0: a scalar constant) */
  bool is_int;        /* V_CONST: int64 data (shapes, axes, indices) */
  float *f;           /* V_CONST: numel floats (is_int: NULL) */
  int64_t *i;         /* V_CONST: numel ints (!is_int: NULL) */
  int64_t numel;
} Val;

typedef struct T T;
typedef bool (*OpFn)(T *t);

struct T {
  Arena *a;
  Graph *g;                 /* the graph being built */
  Builder *b;
  Graph scratch;            /* the same nodes, with ids, for shapes as we go */
  const char *path;         /* the model file */
  OnnxModel *m;             /* loaded (onnx_load.c) */
  Onnx__GraphProto *graph;
  int64_t opset;            /* of the default domain */
  StrMap vals;              /* tensor name -> Val* */
  StrMap inits;             /* initializer name -> Onnx__TensorProto* */
  StrMap used;              /* tensor names some node or graph output reads */
  StrMap outs;              /* the graph outputs' names */
  const OnnxOptions *opt;
  /* the node being translated */
  const Onnx__NodeProto *node;
  int index;
  Loc loc;                  /* "model.onnx: node 'NAME' (#i, Op)" */
  int internal;             /* counter for names of extra IR nodes */
};

/* onnx.c */
Val *onnx_in(T *t, int k);              /* input k, NULL if absent; reports undefined ones */
int onnx_nin(T *t);                     /* number of inputs given (trailing empty ones dropped) */
void onnx_out(T *t, int k, Val *v);     /* binds output k */
bool onnx_out_used(T *t, int k);        /* output k is read by a node or is a graph output */
const Onnx__AttributeProto *onnx_attr(T *t, const char *name);
/* Reports attributes of the node that are not in the space-separated list. */
bool onnx_check_attrs(T *t, const char *allowed);
int64_t onnx_attr_int(T *t, const char *name, int64_t def);
float onnx_attr_float(T *t, const char *name, float def);
const char *onnx_attr_str(T *t, const char *name, const char *def);
/* ints attribute into out[0..max); returns the count, -1 if absent (or reported). */
int onnx_attr_ints(T *t, const char *name, int64_t *out, int max);
bool onnx_fail(T *t, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* reports; false */
const char *onnx_name(T *t, const char *what); /* a fresh IR node name for an extra node */
/* Adds IR node n named `name` reading ins[0..nin) (constants become constant
 * nodes); returns its value (V_BAD after reporting). */
Val *onnx_emit(T *t, Node n, const char *name, Val *const *ins, int nin);
Val *onnx_const(T *t, const char *name, Shape shape, float *f, int64_t *i);
Param *onnx_param(T *t, const char *layer, const char *suffix, const Val *c); /* from a constant */
const char *onnx_shape_str(T *t, const Shape *s);

/* onnx_ops.c */
OpFn onnx_op(const char *op_type);      /* NULL: unsupported */
const char *onnx_ops_list(void);        /* "Abs, Add, ..." */

/* onnx_fold.c: ops over constants; true when the node was folded (or
 * failed, reported), false when it is not a foldable op on constants. */
bool onnx_fold(T *t, const char *op_type, bool *ok);
bool onnx_foldable(const char *op_type); /* onnx_fold may fold it (its inputs constant) */

#endif
