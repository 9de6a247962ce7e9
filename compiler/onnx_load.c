/*
 * onnx_load.c: an ONNX file (a protobuf-encoded onnx.ModelProto) into
 * protobuf-c's structs, without trusting the file.
 *
 * needs: the file's bytes (file_read, bounded by --max-file-bytes); gives:
 * an OnnxModel whose proto has a graph, an ir_version >= 3 and a
 * default-domain opset in 6..18, and whose nodes (subgraphs included) are
 * all in the default domain; or NULL after reporting.
 *
 * protobuf-c's unpacker is correct on well-formed input, but it trusts the
 * input in ways that matter for a hostile file:
 *   - it recurses once per nested message, with about 600 bytes of stack
 *     each, so subgraphs nested 10,000 deep overflow the C stack;
 *   - it allocates per message and per field occurrence, so a small file
 *     of empty messages becomes a large heap (an empty AttributeProto is 2
 *     bytes in the file and about 290 in memory), and a singular message
 *     field given n times is merged n times, which is quadratic;
 *   - it reports every failure as NULL, with no offset.
 * So walk() first walks the wire format itself, driven by protobuf-c's own
 * descriptors (the generated field tables; no schema is written here), and
 * refuses, with the byte offset and the field path: malformed or truncated
 * wire data, wire types the schema does not allow, groups, nesting deeper
 * than ONNX_MAX_DEPTH messages, a singular message field given twice, and
 * a file whose unpacking would allocate more than its memory budget.  To
 * know that, it counts the allocations protobuf_c_message_unpack (1.4)
 * makes, one by one: the message, its scan slabs, its repeated arrays, its
 * unknown fields, every string.  Unpacking then runs on an allocator that
 * takes from the arena and fails cleanly past the same budget, so an
 * error in the count is a clean error, never exhaustion.
 *
 * Budget: ONNX_BUDGET_FACTOR (16) times the file's size plus
 * ONNX_BUDGET_BASE (64 MiB), and at most --max-memory.  Real models need
 * about their own size (the weights, copied once) plus a few hundred bytes
 * per node; the 16 covers files that are all graph and no weights.
 */
#include "onnx.h"

#include <limits.h>
#include <string.h>

/* ---- the wire format ---- */

enum {
  WIRE_VARINT = 0,
  WIRE_64BIT = 1,
  WIRE_LEN = 2,
  WIRE_32BIT = 5,
  MAX_FIELDS = 32,          /* fields of one message type (ONNX's largest has 18) */
  MAX_FIELD_NUMBER = (1 << 29) - 1,
  /* protobuf-c 1.4 internals the budget mirrors (protobuf-c.c): */
  PBC_SCANNED_MEMBER = 32,  /* sizeof(ScannedMember) */
  PBC_FIRST_SLAB = 16,      /* ScannedMembers on the stack; then slabs of 32, 64, ... */
  PBC_MAX_SLABS = 22,       /* slabs beyond the first ("too many fields") */
};

static const char *const wire_names[8] = {"varint", "64-bit", "length-delimited", "group start",
                                          "group end", "32-bit", "6 (invalid)", "7 (invalid)"};

static int wire_of(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return WIRE_64BIT;
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT: return WIRE_32BIT;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE: return WIRE_LEN;
  default: return WIRE_VARINT;
  }
}

/* protobuf-c's sizeof_elt_in_repeated_array. */
static size_t elt_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return 8;
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  default: return 4;
  }
}

static bool packable(ProtobufCType t) {
  return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES && t != PROTOBUF_C_TYPE_MESSAGE;
}

/* A varint of at most max bytes at b[*p..end).  1: read (*p moves past
 * it); 0: the data ends inside it; -1: it is longer than max bytes. */
static int get_varint(const unsigned char *b, size_t *p, size_t end, int max, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < max; i++) {
    if (*p + (size_t)i >= end) return 0;
    unsigned char c = b[*p + (size_t)i];
    x |= (uint64_t)(c & 0x7f) << (7 * i);
    if (!(c & 0x80)) {
      *p += (size_t)i + 1;
      *v = x;
      return 1;
    }
  }
  return -1;
}

static size_t round8(size_t n) { return n ? (n + 7) & ~(size_t)7 : 8; }

/* ---- the walk ---- */

typedef struct {
  const char *field; /* the field this message is in (stack[0], the root's, is unused) */
  size_t index;      /* its index if the field is repeated, else SIZE_MAX */
} Frame;

typedef struct {
  Arena *arena;
  const unsigned char *buf;
  size_t len;
  const char *path;
  int64_t need, budget; /* bytes unpacking will allocate (so far), and may */
  Frame stack[ONNX_MAX_DEPTH + 1];
  int depth;            /* messages open, the root included */
} Walk;

/* "graph.node[3].attribute[0]": where the walk is, for messages. */
static const char *where(Walk *w) {
  if (w->depth <= 1) return "ModelProto";
  char *s = "";
  for (int i = 1; i < w->depth; i++) {
    Frame *f = &w->stack[i];
    s = f->index == SIZE_MAX ? arena_printf(w->arena, "%s%s%s", s, i > 1 ? "." : "", f->field)
                             : arena_printf(w->arena, "%s%s%s[%zu]", s, i > 1 ? "." : "", f->field,
                                            f->index);
  }
  return s;
}

static bool fail(Walk *w, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(Walk *w, size_t at, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  error_at((Loc){w->path, 0, 0}, "corrupt ONNX file: at byte %zu (in %s): %s", at, where(w), msg);
  return false;
}

static bool charge(Walk *w, size_t bytes, size_t at) {
  w->need += (int64_t)round8(bytes);
  if (w->need <= w->budget) return true;
  error_at((Loc){w->path, 0, 0},
           "unpacking the file would take more than %lld bytes of memory (its budget: %d times its "
           "size plus %d MiB, at most --max-memory); passed at byte %zu (in %s)",
           (long long)w->budget, ONNX_BUDGET_FACTOR, ONNX_BUDGET_BASE >> 20, at, where(w));
  return false;
}

/* A field's extent: its tag at `at`, its value at `val` (for WIRE_LEN:
 * the length, then the payload at `pay`), up to `end`. */
typedef struct {
  size_t at, val, pay, end;
  uint32_t number;
  int wt;
} Field;

static const char *ends(Walk *w, size_t end) { return end == w->len ? "the file ends" : "its message ends"; }
static const char *hint(Walk *w, size_t end) { return end == w->len ? " (truncated?)" : ""; }

/* Reads the field at *p (before end); false after reporting. */
static bool next_field(Walk *w, const ProtobufCMessageDescriptor *d, size_t *p, size_t end, Field *fl) {
  uint64_t tag, v;
  fl->at = *p;
  int r = get_varint(w->buf, p, end, 5, &tag);
  if (r == 0) return fail(w, fl->at, "%s inside a field's tag%s", ends(w, end), hint(w, end));
  if (r < 0 || tag >> 3 == 0 || tag >> 3 > MAX_FIELD_NUMBER)
    return fail(w, fl->at, "not a field tag (field number %llu)",
                r < 0 ? 0ull : (unsigned long long)(tag >> 3));
  fl->number = (uint32_t)(tag >> 3);
  fl->wt = (int)(tag & 7);
  fl->val = fl->pay = *p;
  switch (fl->wt) {
  case WIRE_VARINT:
    r = get_varint(w->buf, p, end, 10, &v);
    if (r < 0) return fail(w, fl->val, "a varint longer than 10 bytes");
    break;
  case WIRE_64BIT:
  case WIRE_32BIT: {
    size_t n = fl->wt == WIRE_64BIT ? 8 : 4;
    r = end - *p >= n;
    if (r) *p += n;
    break;
  }
  case WIRE_LEN:
    r = get_varint(w->buf, p, end, 5, &v);
    if (r < 0) return fail(w, fl->val, "a length longer than 5 bytes");
    if (r == 0) break;
    fl->pay = *p;
    if (v > INT_MAX)
      return fail(w, fl->at, "a length of %llu bytes (protobuf's limit is 2 GiB)", (unsigned long long)v);
    if (v > end - *p) {
      const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, fl->number);
      const char *name = f ? arena_printf(w->arena, "'%s'", f->name) : arena_printf(w->arena, "%u", fl->number);
      return fail(w, fl->at, "field %s of %s is %llu bytes long, but only %zu bytes remain in %s%s", name,
                  d->short_name, (unsigned long long)v, end - *p, end == w->len ? "the file" : "its message",
                  hint(w, end));
    }
    *p += v;
    break;
  case 3:
  case 4: return fail(w, fl->at, "a group (wire type %d): ONNX has none", fl->wt);
  default: return fail(w, fl->at, "invalid wire type %d", fl->wt);
  }
  if (r == 0) return fail(w, fl->at, "%s inside a field's value%s", ends(w, end), hint(w, end));
  fl->end = *p;
  return true;
}

/* Checks a packed repeated field's payload b[p..end) as protobuf-c reads
 * it and gives the number of elements protobuf-c allocates for. */
static bool walk_packed(Walk *w, const ProtobufCFieldDescriptor *f, size_t p, size_t end,
                        size_t *count) {
  size_t n = end - p;
  int wt = wire_of(f->type);
  if (wt == WIRE_64BIT || wt == WIRE_32BIT) {
    size_t size = wt == WIRE_64BIT ? 8 : 4;
    if (n % size) return fail(w, p, "packed field '%s' holds %zu bytes, not a multiple of %zu", f->name, n, size);
    *count = n / size;
    return true;
  }
  size_t k = 0;
  for (size_t q = p; q < end; k++) {
    uint64_t v;
    size_t at = q;
    if (get_varint(w->buf, &q, end, 10, &v) != 1)
      return fail(w, at, "packed field '%s' holds a malformed varint", f->name);
  }
  *count = f->type == PROTOBUF_C_TYPE_BOOL ? n : k;
  return true;
}

static bool walk_message(Walk *w, const ProtobufCMessageDescriptor *d, size_t p, size_t end);

/* One occurrence fl of the known field f of d.  count: f's elements so
 * far (repeated f); seen: whether f was given before (singular f). */
static bool walk_field(Walk *w, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                       const Field *fl, size_t *count, bool *seen) {
  int wt = fl->wt;
  size_t tag_at = fl->at, p = fl->pay, vend = fl->end;
  bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
  if (wt != wire_of(f->type) && !(repeated && wt == WIRE_LEN && packable(f->type)))
    return fail(w, tag_at, "field '%s' of %s is %s, but the schema says %s", f->name, d->short_name,
                wire_names[wt], wire_names[wire_of(f->type)]);
  size_t k = 1;
  if (repeated && wt == WIRE_LEN && packable(f->type) && !walk_packed(w, f, p, vend, &k)) return false;
  if (repeated && (k > INT32_MAX || *count > (size_t)INT32_MAX - k))
    return fail(w, tag_at, "field '%s' of %s has more than 2^31 elements", f->name, d->short_name);
  size_t index = repeated ? *count : SIZE_MAX;
  if (repeated) *count += k;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: return charge(w, vend - p + 1, tag_at);
  case PROTOBUF_C_TYPE_BYTES: return vend == p || charge(w, vend - p, tag_at);
  case PROTOBUF_C_TYPE_MESSAGE:
    if (!repeated && *seen)
      return fail(w, tag_at, "field '%s' of %s is given twice (protobuf would merge them)", f->name,
                  d->short_name);
    *seen = true;
    if (w->depth >= ONNX_MAX_DEPTH)
      return fail(w, tag_at, "messages nested more than %d deep (field '%s' of %s)", ONNX_MAX_DEPTH,
                  f->name, d->short_name);
    w->stack[w->depth] = (Frame){f->name, index};
    return walk_message(w, f->descriptor, p, vend);
  default: return true;
  }
}

/* The message of type d in buf[p..end); w->depth counts the messages
 * around it.  Charges what protobuf_c_message_unpack allocates for it. */
static bool walk_message(Walk *w, const ProtobufCMessageDescriptor *d, size_t p, size_t end) {
  CNNC_ASSERT(d->n_fields <= MAX_FIELDS);
  size_t count[MAX_FIELDS] = {0}, occurrences = 0, slab_cap = PBC_FIRST_SLAB, slab_next = 2 * PBC_FIRST_SLAB;
  size_t unknown = 0;
  bool seen[MAX_FIELDS] = {0};
  int slabs = 0;
  size_t start = p;
  w->depth++;
  if (!charge(w, d->sizeof_message, p)) return false;
  if ((d->n_fields + 7) / 8 > 16 && !charge(w, (d->n_fields + 7) / 8, p)) return false;
  while (p < end) {
    Field fl = {0};
    if (!next_field(w, d, &p, end, &fl)) return false;
    if (occurrences == slab_cap) { /* protobuf-c allocates its next scan slab */
      if (++slabs > PBC_MAX_SLABS)
        return fail(w, fl.at, "more fields in one %s than protobuf-c can read", d->short_name);
      if (!charge(w, slab_next * PBC_SCANNED_MEMBER, fl.at)) return false;
      slab_cap += slab_next;
      slab_next *= 2;
    }
    occurrences++;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, fl.number);
    if (!f) { /* kept as an unknown field: a copy of its value */
      unknown++;
      if (!charge(w, fl.end - fl.val, fl.at)) return false;
      continue;
    }
    size_t i = (size_t)(f - d->fields);
    if (!walk_field(w, d, f, &fl, &count[i], &seen[i])) return false;
  }
  for (unsigned i = 0; i < d->n_fields; i++)
    if (count[i] && !charge(w, count[i] * elt_size(d->fields[i].type), start)) return false;
  if (unknown && !charge(w, unknown * sizeof(ProtobufCMessageUnknownField), start)) return false;
  w->depth--;
  return true;
}

/* ---- unpacking within the budget ---- */

typedef struct {
  Arena *arena;
  int64_t used, budget;
  bool over; /* an allocation was refused */
} Budget;

static void *budget_alloc(void *data, size_t size) {
  Budget *b = data;
  size_t need = round8(size);
  if (need > (size_t)(b->budget - b->used)) {
    b->over = true;
    return NULL;
  }
  b->used += (int64_t)need;
  return arena_packed(b->arena, size);
}

static void budget_free(void *data, void *p) {} /* the arena frees everything at once */

static int64_t budget_for(size_t len) {
  int64_t b = (int64_t)ONNX_BUDGET_BASE, m;
  if (!ck_mul((int64_t)len, ONNX_BUDGET_FACTOR, &m) || !ck_add(b, m, &b)) b = INT64_MAX;
  return b < cnnc_limits.memory ? b : cnnc_limits.memory;
}

/* ---- checks on the model ---- */

static bool default_domain(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

static bool check_opsets(OnnxModel *m, Loc at) {
  const Onnx__ModelProto *p = m->proto;
  bool found = false, ok = true;
  for (size_t i = 0; i < p->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = p->opset_import[i];
    if (!default_domain(o->domain)) continue;
    if (found && o->version != m->opset) {
      error_at(at, "the model imports two versions of the default operator set (ai.onnx): %lld and %lld",
               (long long)m->opset, (long long)o->version);
      ok = false;
    }
    found = true;
    m->opset = o->version;
  }
  if (!found) {
    error_at(at, "the model imports no version of the default operator set (ai.onnx)");
    return false;
  }
  if (ok && (m->opset < ONNX_MIN_OPSET || m->opset > ONNX_MAX_OPSET)) {
    error_at(at, "operator set version %lld of the default domain (ai.onnx) is not supported: cnnc reads %d to %d",
             (long long)m->opset, ONNX_MIN_OPSET, ONNX_MAX_OPSET);
    return false;
  }
  return ok;
}

/* Nodes in another operator domain (ai.onnx.ml, com.microsoft, a
 * model-local function's), subgraphs included; each domain once. */
static void check_domains(OnnxModel *m, const Onnx__GraphProto *g, StrMap *reported, bool *ok) {
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (!default_domain(n->domain) && !strmap_get(reported, n->domain)) {
      strmap_put(m->arena, reported, n->domain, (void *)n->domain);
      Loc at = onnx_node_loc(m->arena, m->path, g, i);
      error_at(at, "operator '%s' is in the domain '%s': cnnc reads only the default domain (ai.onnx)",
               n->op_type ? n->op_type : "", n->domain);
      *ok = false;
    }
    for (size_t j = 0; j < n->n_attribute; j++) {
      const Onnx__AttributeProto *a = n->attribute[j];
      if (a->g) check_domains(m, a->g, reported, ok);
      for (size_t k = 0; k < a->n_graphs; k++) check_domains(m, a->graphs[k], reported, ok);
    }
  }
}

static bool check_model(OnnxModel *m) {
  Loc at = {m->path, 0, 0};
  const Onnx__ModelProto *p = m->proto;
  if (!p->has_ir_version) {
    error_at(at, "the file has no ir_version: not an ONNX model");
    return false;
  }
  m->ir_version = p->ir_version;
  if (p->ir_version < ONNX_MIN_IR) {
    error_at(at, "ir_version %lld is not supported: cnnc reads ONNX files of ir_version %d and later",
             (long long)p->ir_version, ONNX_MIN_IR);
    return false;
  }
  bool ok = check_opsets(m, at);
  if (!p->graph) {
    error_at(at, "the model has no graph");
    return false;
  }
  StrMap reported = {0};
  check_domains(m, p->graph, &reported, &ok);
  return ok;
}

OnnxModel *onnx_load(Arena *a, const char *path, const unsigned char *buf, size_t len) {
  Loc at = {path, 0, 0};
  if (len == 0) {
    error_at(at, "the ONNX file is empty");
    return NULL;
  }
  Walk w = {.arena = a, .buf = buf, .len = len, .path = path, .budget = budget_for(len)};
  if (!walk_message(&w, &onnx__model_proto__descriptor, 0, len)) return NULL;
  Budget b = {.arena = a, .budget = w.budget};
  ProtobufCAllocator alloc = {.alloc = budget_alloc, .free = budget_free, .allocator_data = &b};
  Onnx__ModelProto *p = onnx__model_proto__unpack(&alloc, len, buf);
  if (!p) {
    if (b.over)
      error_at(at, "unpacking the file ran out of its memory budget (%lld bytes: %d times its size plus %d MiB, "
               "at most --max-memory)", (long long)b.budget, ONNX_BUDGET_FACTOR, ONNX_BUDGET_BASE >> 20);
    else
      error_at(at, "corrupt ONNX file: protobuf-c cannot unpack it");
    return NULL;
  }
  OnnxModel *m = arena_alloc(a, sizeof *m);
  *m = (OnnxModel){.arena = a, .path = path, .proto = p, .budget = b.budget, .estimate = w.need, .used = b.used};
  return check_model(m) ? m : NULL;
}

/* ---- content sniffing ---- */

bool onnx_sniff(const unsigned char *buf, size_t len) {
  size_t n = len < 4096 ? len : 4096;
  bool binary = false;
  for (size_t i = 0; i < n && !binary; i++)
    binary = (buf[i] < 0x20 && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r') || buf[i] == 0x7f;
  if (!binary) return false;
  /* The first field: a ModelProto field with its wire type, its value
   * well formed as far as the file goes (a truncated file is still ONNX). */
  size_t p = 0;
  uint64_t tag, v = 0;
  if (get_varint(buf, &p, len, 5, &tag) != 1 || tag >> 3 > MAX_FIELD_NUMBER) return false;
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&onnx__model_proto__descriptor, (unsigned)(tag >> 3));
  int wt = (int)(tag & 7);
  if (!f || !(wt == wire_of(f->type) ||
              (f->label == PROTOBUF_C_LABEL_REPEATED && wt == WIRE_LEN && packable(f->type))))
    return false;
  if (wt == WIRE_VARINT) return get_varint(buf, &p, len, 10, &v) >= 0;
  if (wt == WIRE_LEN) {
    int r = get_varint(buf, &p, len, 5, &v);
    return r == 0 || (r == 1 && v <= INT_MAX);
  }
  return true;
}

/* ---- names ---- */

Loc onnx_loc(Arena *a, const char *path, const char *what, const char *name) {
  const char *s = name ? name : "";
  return (Loc){arena_printf(a, "%s: %s '%s'", path, what, printable(a, s, strlen(s), 200)), 0, 0};
}

Loc onnx_node_loc(Arena *a, const char *path, const Onnx__GraphProto *g, size_t i) {
  const Onnx__NodeProto *n = g->node[i];
  const char *name = n->name && *n->name ? n->name : n->n_output && *n->output[0] ? n->output[0] : "";
  const char *op = n->op_type ? n->op_type : "?";
  return (Loc){arena_printf(a, "%s: node '%s' (#%zu, %s)", path, printable(a, name, strlen(name), 200), i,
                            printable(a, op, strlen(op), 100)),
               0, 0};
}

const char *onnx_dtype_name(int32_t dtype) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&onnx__tensor_proto__data_type__descriptor, dtype);
  return v ? v->name : NULL;
}
