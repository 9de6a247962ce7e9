/*
 * onnx.c: ONNX model -> Graph (the translator's core).
 *
 * needs: the model file's bytes; gives: the same kind of graph spec.c
 * gives for YAML (through the graph builder), with every initializer a
 * constant, or a parameter of the node that uses it as its weights; or
 * NULL after reporting every problem found.
 *
 * onnx_load.c checks and unpacks the file; here the graph's inputs become
 * input nodes (their dims fixed, by the file or by --input-shape), the
 * nodes are translated one by one in file order by their op's handler
 * (onnx_ops.c) or folded when they compute on constants (onnx_fold.c),
 * and the graph's outputs are requested from the builder.
 *
 * Errors are located at the ONNX node: `model.onnx: node 'NAME' (#INDEX,
 * OP): error: ...`, and translation goes on after one, so that a single
 * run lists every unsupported node: a node whose input could not be
 * translated still has its op and attributes checked, and its outputs are
 * "bad" (nothing more is said about them).
 */
#include "onnx_t.h"

#include <stdlib.h>
#include <string.h>

/* ---- values ---- */

static Val *new_val(T *t, VKind k) {
  Val *v = arena_alloc(t->a, sizeof *v);
  v->kind = k;
  v->sid = -1;
  return v;
}

static Val *bad(T *t) { return new_val(t, V_BAD); }

const char *onnx_shape_str(T *t, const Shape *s) { return shape_str(t->a, s); }

Val *onnx_const(T *t, const char *name, Shape shape, float *f, int64_t *i) {
  Val *v = new_val(t, V_CONST);
  v->name = name;
  v->shape = shape;
  v->f = f;
  v->i = i;
  v->is_int = i != NULL;
  v->numel = shape.rank ? shape_numel(&shape) : 1;
  return v;
}

/* An initializer, converted on first use. */
static Val *initializer(T *t, const char *name) {
  Onnx__TensorProto *tp = strmap_get(&t->inits, name);
  if (!tp) return NULL;
  Loc at = onnx_loc(t->a, t->path, "initializer", name);
  Shape s;
  int64_t n;
  Val *v;
  if (tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
    int64_t *d;
    v = onnx_tensor_int64s(t->m, tp, at, &d, &n, &s) ? onnx_const(t, name, s, NULL, d) : bad(t);
  } else {
    float *d;
    v = onnx_tensor_floats(t->m, tp, at, &d, &n, &s) ? onnx_const(t, name, s, d, NULL) : bad(t);
  }
  strmap_put(t->a, &t->vals, name, v); /* converted, or reported, once */
  return v;
}

static Val *lookup(T *t, const char *name) {
  Val *v = strmap_get(&t->vals, name);
  return v ? v : initializer(t, name);
}

int onnx_nin(T *t) {
  int n = (int)t->node->n_input;
  while (n > 0 && !*t->node->input[n - 1]) n--;
  return n;
}

Val *onnx_in(T *t, int k) {
  if (k >= onnx_nin(t) || !*t->node->input[k]) return NULL;
  Val *v = lookup(t, t->node->input[k]);
  if (v) return v;
  onnx_fail(t, "input '%s' is not defined before this node (ONNX graphs list nodes in topological order)",
            t->node->input[k]);
  v = bad(t);
  strmap_put(t->a, &t->vals, t->node->input[k], v); /* reported once */
  return v;
}

bool onnx_out_used(T *t, int k) {
  return k < (int)t->node->n_output && *t->node->output[k] && strmap_get(&t->used, t->node->output[k]);
}

void onnx_out(T *t, int k, Val *v) {
  if (k < (int)t->node->n_output && *t->node->output[k]) strmap_put(t->a, &t->vals, t->node->output[k], v);
}

/* ---- attributes ---- */

const Onnx__AttributeProto *onnx_attr(T *t, const char *name) {
  for (size_t i = 0; i < t->node->n_attribute; i++)
    if (t->node->attribute[i]->name && !strcmp(t->node->attribute[i]->name, name)) return t->node->attribute[i];
  return NULL;
}

static bool in_list(const char *list, const char *w) {
  size_t n = strlen(w);
  for (const char *s = list; *s;) {
    while (*s == ' ') s++;
    const char *e = s;
    while (*e && *e != ' ') e++;
    if ((size_t)(e - s) == n && n && !memcmp(s, w, n)) return true;
    s = e;
  }
  return false;
}

bool onnx_check_attrs(T *t, const char *allowed) {
  bool ok = true;
  for (size_t i = 0; i < t->node->n_attribute; i++) {
    const char *n = t->node->attribute[i]->name ? t->node->attribute[i]->name : "";
    if (!in_list(allowed, n)) ok = onnx_fail(t, "attribute '%s' is not supported%s%s", n, *allowed ? " (supported: " : "",
                                             *allowed ? arena_printf(t->a, "%s)", allowed) : "");
  }
  return ok;
}

static bool attr_is(T *t, const Onnx__AttributeProto *a, Onnx__AttributeProto__AttributeType type, const char *what) {
  if (a->type == type || (!a->has_type && type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)) return true;
  return onnx_fail(t, "attribute '%s' must be %s", a->name, what);
}

int64_t onnx_attr_int(T *t, const char *name, int64_t def) {
  const Onnx__AttributeProto *a = onnx_attr(t, name);
  if (!a || !attr_is(t, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an integer")) return def;
  return a->i;
}

float onnx_attr_float(T *t, const char *name, float def) {
  const Onnx__AttributeProto *a = onnx_attr(t, name);
  if (!a || !attr_is(t, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a float")) return def;
  return a->f;
}

const char *onnx_attr_str(T *t, const char *name, const char *def) {
  const Onnx__AttributeProto *a = onnx_attr(t, name);
  if (!a || !attr_is(t, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a string")) return def;
  char *s = arena_alloc(t->a, a->s.len + 1);
  if (a->s.len) memcpy(s, a->s.data, a->s.len);
  if (strlen(s) != a->s.len) return def;
  return s;
}

int onnx_attr_ints(T *t, const char *name, int64_t *out, int max) {
  const Onnx__AttributeProto *a = onnx_attr(t, name);
  if (!a || !attr_is(t, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "a list of integers")) return -1;
  if (a->n_ints > (size_t)max) {
    onnx_fail(t, "attribute '%s' has %zu values; at most %d are supported", name, a->n_ints, max);
    return -1;
  }
  for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
  return (int)a->n_ints;
}

/* ---- reporting and names ---- */

bool onnx_fail(T *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror_at(t->loc, fmt, ap);
  va_end(ap);
  return false;
}

const char *onnx_name(T *t, const char *what) {
  const char *out = t->node->n_output && *t->node->output[0] ? t->node->output[0] : "node";
  return arena_printf(t->a, "%s:%s%d", out, what, ++t->internal);
}

/* ---- emitting IR nodes ---- */

/* The scratch graph mirrors the real one with ids, so that shapes are
 * known while translating. */
static int scratch_add(T *t, Node n, const int *in, int nin) {
  n.in = arena_array(t->a, (size_t)nin + 1, sizeof *n.in);
  if (nin) memcpy(n.in, in, (size_t)nin * sizeof *in);
  n.nin = nin;
  VEC_PUSH(t->a, t->scratch.nodes, t->scratch.nnodes, t->scratch.capnodes, n);
  return t->scratch.nnodes - 1;
}

Param *onnx_param(T *t, const char *layer, const char *suffix, const Val *c) {
  Param *p = arena_alloc(t->a, sizeof *p);
  p->name = arena_printf(t->a, "%s.%s", layer, suffix);
  p->loc = t->loc;
  p->is_inline = true; /* bound here: weights.c checks the count against the shape */
  p->count = c->numel;
  if (c->is_int) {
    p->data = arena_array(t->a, (size_t)c->numel + 1, sizeof(float));
    for (int64_t k = 0; k < c->numel; k++) p->data[k] = (float)c->i[k];
  } else {
    p->data = c->f;
  }
  VEC_PUSH(t->a, t->g->params, t->g->nparams, t->g->capparams, p);
  return p;
}

/* The IR node of constant c, made on its first use as an operand (or as a
 * graph output); false after reporting a constant cnnc cannot hold. */
static bool materialize(T *t, Val *c) {
  if (c->sid >= 0) return true;
  if (c->numel == 0)
    return onnx_fail(t, "the constant '%s' is empty (shape %s): cnnc's tensors have no zero dimension", c->name,
                     onnx_shape_str(t, &c->shape));
  /* a graph output's name belongs to the output's named copy (add_outputs) */
  if (strmap_get(&t->outs, c->name)) c->name = arena_printf(t->a, "%s:const", c->name);
  Node n = {.op = OP_CONSTANT, .loc = t->loc, .name = c->name};
  n.a.constant.shape = c->shape.rank ? c->shape : (Shape){1, {1}};
  n.weight = onnx_param(t, c->name, "value", c);
  build_layer(t->b, n, t->loc, NULL, NULL, 0);
  c->sid = scratch_add(t, n, NULL, 0);
  shape_infer_node(&t->scratch, c->sid);
  return true;
}

Val *onnx_emit(T *t, Node n, const char *name, Val *const *ins, int nin) {
  const char **refs = arena_array(t->a, (size_t)nin + 1, sizeof *refs);
  Loc *locs = arena_array(t->a, (size_t)nin + 1, sizeof *locs);
  int *sids = arena_array(t->a, (size_t)nin + 1, sizeof *sids);
  for (int k = 0; k < nin; k++) {
    if (ins[k]->kind == V_BAD) return bad(t);
    if (ins[k]->kind == V_CONST && !materialize(t, ins[k])) return bad(t);
    refs[k] = ins[k]->name;
    locs[k] = t->loc;
    sids[k] = ins[k]->sid;
  }
  n.name = name;
  n.loc = t->loc;
  n.nin = 0;
  n.in = NULL;
  int sid = scratch_add(t, n, sids, nin);
  if (!shape_infer_node(&t->scratch, sid)) return bad(t);
  build_layer(t->b, n, t->loc, refs, locs, nin);
  Val *v = new_val(t, V_NODE);
  v->name = name;
  v->sid = sid;
  v->shape = t->scratch.nodes[sid].shape;
  return v;
}

/* ---- graph inputs ---- */

static const char *elem_type_name(int32_t type) {
  static const char *const names[] = {"undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                      "string", "bool", "float16", "float64", "uint32", "uint64", "complex64",
                                      "complex128", "bfloat16"};
  return type >= 0 && type < (int32_t)(sizeof names / sizeof *names) ? names[type] : "an unknown type";
}

static const InputShape *given_shape(T *t, const char *name) {
  for (int i = 0; t->opt && i < t->opt->ninputs; i++)
    if (!strcmp(t->opt->inputs[i].name, name)) return &t->opt->inputs[i];
  return NULL;
}

/* The input's shape: from --input-shape, or the file (every dim fixed). */
static bool input_shape(T *t, const Onnx__ValueInfoProto *vi, Loc at, Shape *s) {
  const InputShape *given = given_shape(t, vi->name);
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
    error_at(at, "not a tensor: cnnc compiles models whose inputs are float32 tensors");
    return false;
  }
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
    error_at(at, "its elements are %s; cnnc compiles models whose inputs are float32", elem_type_name(tt->elem_type));
    return false;
  }
  const Onnx__TensorShapeProto *sp = tt->shape;
  if (given) { /* it must fit what the model says: its rank and its fixed dims */
    *s = given->shape;
    if (!sp) return true;
    if (sp->n_dim != (size_t)s->rank) {
      error_at(at, "--input-shape gives %d dimensions, but the model's input has rank %zu", s->rank, sp->n_dim);
      return false;
    }
    bool ok = true;
    for (size_t d = 0; d < sp->n_dim; d++) {
      const Onnx__TensorShapeProto__Dimension *dim = sp->dim[d];
      if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value > 0 &&
          dim->dim_value != s->dim[d]) {
        error_at(at, "--input-shape gives %lld for dimension %zu, which the model fixes at %lld",
                 (long long)s->dim[d], d, (long long)dim->dim_value);
        ok = false;
      }
    }
    return ok;
  }
  if (!sp) {
    error_at(at, "its shape is not given in the model; give it with --input-shape %s=DIM,DIM,...", vi->name);
    return false;
  }
  if (sp->n_dim < 1 || sp->n_dim > MAX_RANK) {
    error_at(at, "rank %zu: cnnc's tensors have rank 1 to %d", sp->n_dim, MAX_RANK);
    return false;
  }
  s->rank = (int)sp->n_dim;
  for (size_t d = 0; d < sp->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = sp->dim[d];
    bool fixed = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value > 0;
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value == 0) {
      error_at(at, "dimension %zu is 0: empty tensors are not supported", d);
      return false;
    }
    if (!fixed) {
      const char *what = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                             ? arena_printf(t->a, "'%s'", dim->dim_param)
                             : "not given";
      error_at(at, "dimension %zu is %s (dynamic); give every dimension with --input-shape %s=DIM,DIM,...", d,
               what, vi->name);
      return false;
    }
    if (dim->dim_value > cnnc_limits.dim) {
      error_at(at, "dimension %zu is %lld, more than %lld (the limit set by --max-dim)", d, (long long)dim->dim_value,
               (long long)cnnc_limits.dim);
      return false;
    }
    s->dim[d] = dim->dim_value;
  }
  return true;
}

static void add_inputs(T *t) {
  for (size_t i = 0; i < t->graph->n_input; i++) {
    const Onnx__ValueInfoProto *vi = t->graph->input[i];
    if (!vi->name || !*vi->name) continue;
    if (strmap_get(&t->inits, vi->name)) continue; /* older exporters list initializers as inputs */
    Loc at = {arena_printf(t->a, "%s: input '%s'", t->path, vi->name), 0, 0};
    Node n = {.op = OP_INPUT, .loc = at, .name = vi->name};
    Val *v;
    if (input_shape(t, vi, at, &n.shape)) {
      build_input(t->b, n, at);
      v = new_val(t, V_NODE);
      v->name = vi->name;
      v->sid = scratch_add(t, n, NULL, 0);
      shape_infer_node(&t->scratch, v->sid);
      v->shape = n.shape;
    } else {
      v = bad(t);
    }
    strmap_put(t->a, &t->vals, vi->name, v);
  }
  for (int i = 0; t->opt && i < t->opt->ninputs; i++) {
    const char *name = t->opt->inputs[i].name;
    if (!strmap_get(&t->vals, name))
      error_at((Loc){"--input-shape", 0, 0}, "the model has no input named '%s'", name);
  }
}

/* ---- nodes ---- */

static void node_loc(T *t, int index) { t->loc = onnx_node_loc(t->a, t->path, t->graph, (size_t)index); }

/* Outputs that nobody reads need not be made; those that are read but a
 * successful handler did not bind are an error.  After a failure (reported
 * already) the node's outputs are marked bad, so that nodes reading them
 * stay silent. */
static void check_outputs(T *t, bool ok) {
  for (size_t k = 0; k < t->node->n_output; k++) {
    const char *o = t->node->output[k];
    if (!*o || strmap_get(&t->vals, o)) continue;
    if (ok && strmap_get(&t->used, o))
      onnx_fail(t, "output %zu ('%s') is used, but cnnc computes only the first output of %s", k, o,
                t->node->op_type);
    strmap_put(t->a, &t->vals, o, bad(t));
  }
}

static bool any_bad_input(T *t) {
  for (int k = 0; k < onnx_nin(t); k++) {
    const char *name = t->node->input[k];
    if (!*name) continue;
    Val *v = lookup(t, name);
    if (!v || v->kind == V_BAD) return true;
  }
  return false;
}

static void translate_node(T *t, const Onnx__NodeProto *nd, int index) {
  t->node = nd;
  t->index = index;
  t->internal = 0;
  node_loc(t, index);
  const char *op = nd->op_type ? nd->op_type : "";
  if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx")) {
    onnx_fail(t, "operators of domain '%s' are not supported (only the default ONNX domain)", nd->domain);
    check_outputs(t, false);
    return;
  }
  if (nd->n_output == 0) {
    onnx_fail(t, "the node has no outputs");
    return;
  }
  OpFn fn = onnx_op(op);
  bool poisoned = any_bad_input(t), ok = true;
  if (!poisoned && onnx_fold(t, op, &ok)) {
    check_outputs(t, ok);
    return;
  }
  if (!fn) {
    onnx_fail(t, "operator %s is not supported (supported: %s)", op, onnx_ops_list());
    ok = false;
  } else {
    /* with a bad input the handler sees it and only checks the attributes */
    ok = fn(t) && !poisoned;
  }
  check_outputs(t, ok);
}

/* ---- graph outputs ---- */

static void add_outputs(T *t) {
  t->node = NULL;
  for (size_t i = 0; i < t->graph->n_output; i++) {
    const char *name = t->graph->output[i]->name;
    Loc at = {arena_printf(t->a, "%s: output '%s'", t->path, name ? name : ""), 0, 0};
    Val *v = name ? lookup(t, name) : NULL;
    if (!v) {
      error_at(at, "no node computes it");
      continue;
    }
    if (v->kind == V_BAD) continue; /* reported at its node */
    const Onnx__TypeProto *tp = t->graph->output[i]->type;
    int32_t et = tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type
                     ? tp->tensor_type->elem_type : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && et != ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED) {
      error_at(at, "its elements are %s; cnnc compiles models whose outputs are float32", elem_type_name(et));
      continue;
    }
    if (v->kind == V_CONST) {
      t->loc = at;
      if (!materialize(t, v)) continue;
    }
    if (strcmp(v->name, name) != 0 || v->kind == V_CONST ||
        t->scratch.nodes[v->sid].op == OP_INPUT) { /* an identity, a constant or an input: a named copy */
      t->loc = at;
      static const Onnx__NodeProto none = ONNX__NODE_PROTO__INIT;
      t->node = &none;
      Node n = {.op = OP_DROPOUT};
      Val *copy = onnx_emit(t, n, name, &v, 1);
      t->node = NULL;
      if (copy->kind == V_BAD) continue;
    }
    build_output(t->b, name, at);
  }
}

/* ---- entry point ---- */

static void index_model(T *t) {
  for (size_t i = 0; i < t->graph->n_initializer; i++) {
    Onnx__TensorProto *tp = t->graph->initializer[i];
    if (tp->name && *tp->name) strmap_put(t->a, &t->inits, tp->name, tp);
  }
  for (size_t i = 0; i < t->graph->n_node; i++)
    for (size_t k = 0; k < t->graph->node[i]->n_input; k++)
      if (*t->graph->node[i]->input[k]) strmap_put(t->a, &t->used, t->graph->node[i]->input[k], (void *)1);
  for (size_t i = 0; i < t->graph->n_output; i++)
    if (t->graph->output[i]->name) {
      strmap_put(t->a, &t->used, t->graph->output[i]->name, (void *)1);
      strmap_put(t->a, &t->outs, t->graph->output[i]->name, (void *)1);
    }
}

/* "dir/resnet18.onnx" -> "resnet18", made a C identifier (names.c's rule)
 * that starts with a letter (symbols such as __run are reserved in C);
 * standard input ("-") -> "model". */
static const char *model_name(T *t) {
  if (!strcmp(t->path, "-")) return "model";
  const char *base = strrchr(t->path, '/');
  base = base ? base + 1 : t->path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  char *s = arena_alloc(t->a, n + 2), *o = s;
  if (n == 0 || (*base >= '0' && *base <= '9') || *base == '_' || !((*base >= 'a' && *base <= 'z') || (*base >= 'A' && *base <= 'Z'))) *o++ = 'm';
  for (size_t i = 0; i < n; i++) {
    char c = base[i];
    *o++ = (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
  }
  return s;
}

Graph *onnx_parse(Arena *a, const char *path, const unsigned char *buf, size_t len, const OnnxOptions *opt) {
  int errors0 = diag_error_count();
  T tt = {.a = a, .path = arena_strdup(a, path), .opt = opt}, *t = &tt;
  t->m = onnx_load(a, t->path, buf, len);
  if (!t->m) return NULL;
  t->opset = t->m->opset;
  t->graph = t->m->proto->graph;
  t->g = graph_new(a, t->path);
  t->g->name_loc = (Loc){t->path, 0, 0};
  t->g->name = opt && opt->name ? opt->name : model_name(t);
  if (!names_check_model(t->g->name, t->g->name_loc)) {
    note_at(t->g->name_loc, "an ONNX model's name comes from its file name; give another with --name NAME");
    t->g->name = "model";
  }
  t->b = build_begin(t->g);
  t->scratch.arena = a;
  index_model(t);
  add_inputs(t);
  for (size_t i = 0; i < t->graph->n_node; i++) translate_node(t, t->graph->node[i], (int)i);
  add_outputs(t);
  build_end(t->b);
  return diag_error_count() == errors0 ? t->g : NULL;
}
