/*
 * onnx.h: the ONNX frontend's internal declarations.
 *
 * The only header that includes protobuf-c's onnx.pb-c.h (generated at
 * build time from Debian's onnx.proto, ONNX 1.12), as codegen.h is the
 * only one that includes llvm-c/: only compiler/onnx*.c, and the tests and
 * fuzzers of those files, include it.
 *
 * onnx_load.c reads a file into protobuf-c's structs without trusting it;
 * onnx_tensor.c turns a TensorProto's data (in the file or in external
 * data files) into cnnc's arrays.  The rules and limits are in
 * docs/format.md, "ONNX files: loading".
 */
#ifndef CNNC_ONNX_H
#define CNNC_ONNX_H

#include "cnnc.h"
#include "onnx.pb-c.h"

enum {
  ONNX_MIN_IR = 3,      /* oldest ir_version read (opset_import exists from 3 on) */
  ONNX_MIN_OPSET = 6,   /* default-domain (ai.onnx) operator set versions read */
  ONNX_MAX_OPSET = 18,
  ONNX_MAX_DEPTH = 100, /* nested messages, ModelProto counted as 1 (protobuf's own default) */
  ONNX_BUDGET_FACTOR = 16,      /* unpacking may allocate 16 x the file's size ... */
  ONNX_BUDGET_BASE = 64 << 20,  /* ... plus 64 MiB (at most --max-memory) */
};

/* A loaded model.  Everything is in `arena` memory. */
typedef struct {
  Arena *arena;            /* owns everything below */
  const char *path;        /* the model file as given: messages; its directory holds external data */
  Onnx__ModelProto *proto; /* unpacked; proto->graph is not NULL */
  int64_t ir_version;      /* >= ONNX_MIN_IR */
  int64_t opset;           /* the default domain's version, ONNX_MIN_OPSET..ONNX_MAX_OPSET */
  int64_t budget;          /* bytes unpacking was allowed to allocate */
  int64_t estimate;        /* bytes the wire walk counted for it (>= used) */
  int64_t used;            /* bytes it allocated */
  StrMap external;         /* external data files read so far: path -> OnnxExternal* */
} OnnxModel;

/* Whether buf holds an ONNX file rather than YAML text: it has a byte that
 * no YAML text can hold (a control character other than tab, LF, CR) in
 * its first 4 KiB, and it opens with a well-formed ModelProto field.  A
 * valid YAML spec is never taken for ONNX; a truncated ONNX file still is. */
bool onnx_sniff(const unsigned char *buf, size_t len);

/* Checks the wire format, unpacks within the memory budget and checks the
 * model (ir_version, opsets, a graph, node domains).  Reports every
 * problem as "PATH: error: ..." and returns NULL if there was any. */
OnnxModel *onnx_load(Arena *a, const char *path, const unsigned char *buf, size_t len);

/* A location naming one object of the model in messages: its file is
 * "PATH: WHAT 'NAME'" (e.g. "model.onnx: initializer 'conv1.weight'"),
 * which error_at prints as "model.onnx: initializer 'conv1.weight': error: ...". */
Loc onnx_loc(Arena *a, const char *path, const char *what, const char *name);
/* Node i of graph g: "PATH: node 'NAME'", or "PATH: unnamed node #i of
 * graph 'G'" when it has no name. */
Loc onnx_node_loc(Arena *a, const char *path, const Onnx__GraphProto *g, size_t i);

/* A tensor's elements as floats (FLOAT; DOUBLE, FLOAT16 and BFLOAT16
 * converted), row-major in arena memory, with its shape (rank 0: a scalar,
 * numel 1) and element count.  Data comes from raw_data (little-endian),
 * the typed fields, or external data files next to the model (each read
 * once per model).  Reports at `at` and returns false on any problem. */
bool onnx_tensor_floats(OnnxModel *m, const Onnx__TensorProto *t, Loc at, float **data,
                        int64_t *numel, Shape *shape);
/* The same for integer tensors (INT64; INT32 converted): shape constants. */
bool onnx_tensor_int64s(OnnxModel *m, const Onnx__TensorProto *t, Loc at, int64_t **data,
                        int64_t *numel, Shape *shape);

/* "FLOAT", "INT64", ... for a TensorProto.data_type (from the generated
 * enum descriptor); NULL if it is none. */
const char *onnx_dtype_name(int32_t dtype);

#endif
