/*
 * onnx_tensor.c: a TensorProto's elements as cnnc arrays.
 *
 * needs: a loaded model (onnx_load) and one of its tensors (an
 * initializer, a Constant node's value); gives: its shape, checked
 * (rank <= MAX_RANK, dims >= 0 and <= --max-dim, the element count
 * overflow-checked), and its elements converted to float or int64 in
 * arena memory; or false after reporting at the caller's Loc, which names
 * the tensor (onnx_loc).
 *
 * A tensor's data is in exactly one place: raw_data (little-endian, its
 * size exactly the shape's), the typed field of its data type (float_data,
 * double_data, int32_data for INT32, FLOAT16 and BFLOAT16, int64_data;
 * the count exactly the shape's), or, with data_location EXTERNAL, an
 * external data file: external_data's "location" (a path relative to the
 * model's directory, neither absolute nor with a ".." component),
 * "offset" and "length" (decimal; the bytes must be exactly the shape's
 * and lie inside the file).  Each external file is read once per model
 * with file_read (regular files only, --max-file-bytes) and kept in
 * OnnxModel.external.  Every size is checked before anything is
 * allocated, so a tensor never takes more memory than its data occupies
 * in the files (twice that for 16-bit floats).
 */
#include "onnx.h"

#include <string.h>

typedef struct {
  const unsigned char *data; /* NULL: it could not be read (reported once) */
  size_t len;
} OnnxExternal;

/* Element types each accessor reads. */
typedef enum { WANT_FLOAT, WANT_INT } Want;

static int dtype_bytes(int32_t dt) {
  switch (dt) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return 8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
  default: return 0;
  }
}

static bool dtype_ok(int32_t dt, Want want) {
  if (want == WANT_INT)
    return dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
         dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

static const char *dtype_str(Arena *a, int32_t dt) {
  const char *n = onnx_dtype_name(dt);
  return n ? n : arena_printf(a, "%d (no ONNX data type)", (int)dt);
}

static const char *shape_of(Arena *a, int32_t dt, const Shape *s) {
  return arena_printf(a, "%s %s", dtype_str(a, dt), s->rank ? shape_str(a, s) : "scalar");
}

static bool check_shape(const Onnx__TensorProto *t, Loc at, Shape *shape, int64_t *numel) {
  if (t->n_dims > MAX_RANK) {
    error_at(at, "the tensor has %zu dimensions; cnnc reads at most %d", t->n_dims, MAX_RANK);
    return false;
  }
  *shape = (Shape){.rank = (int)t->n_dims};
  int64_t n = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    int64_t d = t->dims[i];
    if (d < 0 || d > cnnc_limits.dim) {
      error_at(at, "dimension %zu of the tensor is %lld: %s", i, (long long)d,
               d < 0 ? "a dimension cannot be negative" : "larger than --max-dim allows");
      return false;
    }
    shape->dim[i] = d;
    if (!ck_mul(n, d, &n)) {
      error_at(at, "the tensor's element count overflows");
      return false;
    }
  }
  *numel = n;
  return true;
}

/* ---- external data ---- */

static bool parse_uint(const char *s, int64_t *v) {
  int64_t x = 0;
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9' || !ck_mul(x, 10, &x) || !ck_add(x, *s - '0', &x)) return false;
  *v = x;
  return true;
}

/* Refuses what could leave the model's directory: an absolute path or a
 * ".." component.  (Symbolic links are followed, as for the model.) */
static bool safe_location(const char *loc) {
  if (!*loc || loc[0] == '/') return false;
  for (const char *p = loc; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.') return false;
    p += n;
    if (*p == '/') p++;
  }
  return true;
}

/* The model's directory (m->path up to its last '/') + loc, without "."
 * and empty components: the cache key, so that "w.bin" and "./w.bin" are
 * one file. */
static char *external_path(Arena *a, const char *model, const char *loc) {
  const char *slash = strrchr(model, '/');
  size_t dir = slash ? (size_t)(slash - model) + 1 : 0;
  char *s = arena_alloc(a, dir + strlen(loc) + 1), *o = s + dir;
  memcpy(s, model, dir);
  for (const char *p = loc; *p;) {
    size_t n = strcspn(p, "/");
    if (n && !(n == 1 && p[0] == '.')) {
      if (o > s + dir) *o++ = '/';
      memcpy(o, p, n);
      o += n;
    }
    p += n;
    if (*p == '/') p++;
  }
  *o = 0;
  return s;
}

static const OnnxExternal *external_file(OnnxModel *m, const char *loc, Loc at) {
  Arena *a = m->arena;
  if (strcmp(m->path, "-") == 0) {
    error_at(at, "the tensor's data is in the external file '%s', but the model was read from "
             "standard input, which has no directory to find it in", loc);
    return NULL;
  }
  char *path = external_path(a, m->path, loc);
  OnnxExternal *e = strmap_get(&m->external, path);
  if (!e) {
    e = arena_alloc(a, sizeof *e);
    size_t len;
    e->data = (const unsigned char *)file_read(a, path, "external data file", at, &len);
    e->len = e->data ? len : 0;
    strmap_put(a, &m->external, path, e);
    if (!e->data) return NULL;
  } else if (!e->data) {
    error_at(at, "the external data file '%s' could not be read (see above)", path);
    return NULL;
  }
  return e;
}

/* The bytes of an EXTERNAL tensor: exactly `need` bytes. */
static const unsigned char *external_bytes(OnnxModel *m, const Onnx__TensorProto *t, Loc at, int64_t need) {
  const char *keys[3] = {"location", "offset", "length"}, *vals[3] = {0};
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *kv = t->external_data[i];
    for (int k = 0; k < 3; k++) {
      if (!kv->key || strcmp(kv->key, keys[k]) != 0) continue;
      if (vals[k]) {
        error_at(at, "external_data gives '%s' twice", keys[k]);
        return NULL;
      }
      vals[k] = kv->value ? kv->value : "";
    }
  }
  int64_t offset = 0, length = -1;
  if (!vals[0]) {
    error_at(at, "the tensor's data is external, but external_data gives no 'location'");
    return NULL;
  }
  if (!safe_location(vals[0])) {
    error_at(at, "external data location '%s' %s: it must be a path inside the model's directory",
             vals[0], !*vals[0] ? "is empty" : vals[0][0] == '/' ? "is absolute" : "leaves the model's directory ('..')");
    return NULL;
  }
  for (int k = 1; k < 3; k++)
    if (vals[k] && !parse_uint(vals[k], k == 1 ? &offset : &length)) {
      error_at(at, "external data %s '%s' is not a non-negative decimal integer", keys[k], vals[k]);
      return NULL;
    }
  const OnnxExternal *e = external_file(m, vals[0], at);
  if (!e) return NULL;
  int64_t flen = (int64_t)e->len, end;
  if (offset > flen || (length >= 0 && (!ck_add(offset, length, &end) || end > flen))) {
    error_at(at, "external data at offset %lld%s runs past the end of '%s' (%lld bytes)", (long long)offset,
             length >= 0 ? arena_printf(m->arena, ", length %lld,", (long long)length) : "", vals[0],
             (long long)flen);
    return NULL;
  }
  int64_t have = length >= 0 ? length : flen - offset;
  if (have != need) {
    error_at(at, "external data in '%s' is %lld bytes%s, but the tensor needs %lld", vals[0],
             (long long)have, length >= 0 ? "" : " (from the offset to the end of the file)", (long long)need);
    return NULL;
  }
  return e->data + offset;
}

/* ---- conversion ---- */

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, e = h >> 10 & 0x1f, m = h & 0x3ff, u;
  if (e == 0x1f) {
    u = sign | 0x7f800000u | m << 13; /* inf, nan */
  } else if (e) {
    u = sign | (e + 112) << 23 | m << 13;
  } else if (!m) {
    u = sign;
  } else { /* subnormal: normalise */
    e = 113;
    while (!(m & 0x400)) m <<= 1, e--;
    u = sign | e << 23 | (m & 0x3ff) << 13;
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static double bits_double(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

/* Element i of little-endian bytes of type dt, as float or int64. */
static float raw_float(const unsigned char *b, int32_t dt, int64_t i) {
  switch (dt) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return (float)bits_double(le(b + 8 * i, 8));
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return half_to_float((uint16_t)le(b + 2 * i, 2));
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return bits_float((uint32_t)le(b + 2 * i, 2) << 16);
  default: return bits_float((uint32_t)le(b + 4 * i, 4));
  }
}

static int64_t raw_int(const unsigned char *b, int32_t dt, int64_t i) {
  if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) return (int32_t)(uint32_t)le(b + 4 * i, 4);
  return (int64_t)le(b + 8 * i, 8);
}

/* The typed field that holds dt's elements: its count (and which). */
static size_t typed_count(const Onnx__TensorProto *t, int32_t dt) {
  switch (dt) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return t->n_int64_data;
  default: return t->n_int32_data;
  }
}

static const char *typed_name(int32_t dt) {
  switch (dt) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return "float_data";
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return "double_data";
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return "int64_data";
  default: return "int32_data";
  }
}

/* Fields that must be empty for dt (data in the wrong typed field). */
static bool stray_data(const Onnx__TensorProto *t, int32_t dt) {
  size_t all = t->n_float_data + t->n_double_data + t->n_int64_data + t->n_int32_data +
               t->n_string_data + t->n_uint64_data;
  return all != typed_count(t, dt);
}

/* Finds the tensor's elements: *raw (little-endian bytes) or, if *raw is
 * NULL, the typed field.  Checks every size against numel. */
static bool locate(OnnxModel *m, const Onnx__TensorProto *t, Loc at, int64_t numel, Shape *shape,
                   const unsigned char **raw) {
  int32_t dt = t->data_type;
  int64_t need;
  *raw = NULL;
  if (!ck_mul(numel, dtype_bytes(dt), &need)) {
    error_at(at, "the size of %s overflows", shape_of(m->arena, dt, shape));
    return false;
  }
  bool external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  size_t typed = typed_count(t, dt);
  bool has_raw = t->has_raw_data || t->raw_data.len;
  if (t->segment) {
    error_at(at, "the tensor is a segment of a larger one; cnnc does not read segmented tensors");
    return false;
  }
  if (stray_data(t, dt)) {
    error_at(at, "a %s tensor holds data in a field other than %s", dtype_str(m->arena, dt), typed_name(dt));
    return false;
  }
  if ((external && (has_raw || typed)) || (has_raw && typed)) {
    error_at(at, "the tensor's data is given twice (%s)",
             external ? (has_raw ? "external data and raw_data" : "external data and a typed field")
                      : "raw_data and a typed field");
    return false;
  }
  if (external) {
    *raw = external_bytes(m, t, at, need);
    return *raw != NULL;
  }
  if (t->has_data_location && t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT) {
    error_at(at, "unknown data_location %d", (int)t->data_location);
    return false;
  }
  if (has_raw) {
    if ((uint64_t)t->raw_data.len != (uint64_t)need) {
      error_at(at, "raw_data holds %zu bytes, but %s needs %lld", t->raw_data.len,
               shape_of(m->arena, dt, shape), (long long)need);
      return false;
    }
    *raw = t->raw_data.data ? t->raw_data.data : (const unsigned char *)"";
    return true;
  }
  if (typed == 0 && numel > 0) {
    error_at(at, "the tensor holds no data, but %s needs %lld values", shape_of(m->arena, dt, shape),
             (long long)numel);
    return false;
  }
  if ((uint64_t)typed != (uint64_t)numel) {
    error_at(at, "%s holds %zu values, but %s needs %lld", typed_name(dt), typed,
             shape_of(m->arena, dt, shape), (long long)numel);
    return false;
  }
  return true;
}

/* The shape, the type check and the data's place, common to both accessors. */
static bool begin(OnnxModel *m, const Onnx__TensorProto *t, Loc at, Want want, int64_t *numel,
                  Shape *shape, const unsigned char **raw) {
  if (!check_shape(t, at, shape, numel)) return false;
  if (!dtype_ok(t->data_type, want)) {
    error_at(at, "the tensor's data type is %s; cnnc reads %s here", dtype_str(m->arena, t->data_type),
             want == WANT_FLOAT ? "FLOAT, DOUBLE, FLOAT16 or BFLOAT16" : "INT64 or INT32");
    return false;
  }
  return locate(m, t, at, *numel, shape, raw);
}

bool onnx_tensor_floats(OnnxModel *m, const Onnx__TensorProto *t, Loc at, float **data,
                        int64_t *numel, Shape *shape) {
  const unsigned char *raw;
  if (!begin(m, t, at, WANT_FLOAT, numel, shape, &raw)) return false;
  int64_t n = *numel;
  int32_t dt = t->data_type;
  float *out = arena_array(m->arena, (size_t)n, sizeof *out);
  for (int64_t i = 0; i < n; i++) {
    if (raw) out[i] = raw_float(raw, dt, i);
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) out[i] = t->float_data[i];
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) out[i] = (float)t->double_data[i];
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16) out[i] = half_to_float((uint16_t)t->int32_data[i]);
    else out[i] = bits_float((uint32_t)(uint16_t)t->int32_data[i] << 16);
  }
  *data = out;
  return true;
}

bool onnx_tensor_int64s(OnnxModel *m, const Onnx__TensorProto *t, Loc at, int64_t **data,
                        int64_t *numel, Shape *shape) {
  const unsigned char *raw;
  if (!begin(m, t, at, WANT_INT, numel, shape, &raw)) return false;
  int64_t n = *numel;
  int32_t dt = t->data_type;
  int64_t *out = arena_array(m->arena, (size_t)n, sizeof *out);
  for (int64_t i = 0; i < n; i++)
    out[i] = raw ? raw_int(raw, dt, i) : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->int64_data[i] : t->int32_data[i];
  *data = out;
  return true;
}
