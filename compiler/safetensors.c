/*
 * safetensors.c: reads the safetensors container format.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON, and
 * the data section.  The JSON is one object: every key but "__metadata__"
 * names a tensor, {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 * with b and e relative to the start of the data section.  "__metadata__"
 * maps strings to strings and is ignored.
 *
 * The input is untrusted, so the JSON parser here is small and strict
 * (RFC 8259 syntax, a nesting limit, no trailing garbage except the spaces
 * writers pad the header with), and every number that becomes a size is
 * checked for overflow.  Syntax errors stop the parse; problems with single
 * tensors (bad dtype, offsets that do not match the shape, overlaps,
 * duplicates) are all reported before returning.  Every message names the
 * file and, where there is one, the tensor, and points at the spec's
 * `weights:` entry.
 *
 * Tensors of any dtype are accepted here (a state_dict may hold I64
 * counters nobody uses); weights.c rejects the ones it cannot bind.
 * StTensor.data points into the caller's buffer and is not aligned.
 */
#include "cnnc.h"

#include <stdlib.h>
#include <string.h>

enum {
  ST_MAX_HEADER = 100 << 20, /* larger JSON headers are refused as corrupt */
  ST_MAX_DEPTH = 64,         /* nesting limit when skipping unknown values */
};

static const struct {
  const char *name;
  int size; /* bytes per element */
} dtypes[] = {
    {"F64", 8},  {"F32", 4},     {"F16", 2},     {"BF16", 2}, {"I64", 8}, {"I32", 4},
    {"I16", 2},  {"I8", 1},      {"U64", 8},     {"U32", 4},  {"U16", 2}, {"U8", 1},
    {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static int dtype_size(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (strcmp(dtypes[i].name, name) == 0) return dtypes[i].size;
  return 0;
}

/* ---- JSON reader ---- */

typedef struct {
  Arena *arena;
  const char *p, *end; /* unread header text */
  const char *start;   /* header start, for byte positions in messages */
  const char *file;    /* display name of the file */
  Loc loc;             /* the spec's `weights:` entry */
  bool failed;         /* a syntax error was reported: stop */
} Json;

static void syntax_error(Json *j, const char *what) {
  if (j->failed) return;
  j->failed = true;
  if (j->p >= j->end)
    error_at(j->loc, "%s: corrupt safetensors header: %s, found end of header", j->file, what);
  else
    error_at(j->loc, "%s: corrupt safetensors header: %s at byte %td of the header", j->file,
             what, j->p - j->start);
}

static void skip_ws(Json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Consumes `c` after optional whitespace. */
static bool eat(Json *j, char c) {
  skip_ws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return true;
  }
  return false;
}

static bool expect(Json *j, char c, const char *what) {
  if (eat(j, c)) return true;
  syntax_error(j, what);
  return false;
}

static int hex4(const char *s) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = s[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

static char *put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | cp >> 6);
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | cp >> 12);
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | cp >> 18);
    *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

/* Decodes one \uXXXX escape (j->p just past the 'u'), joining surrogate
 * pairs.  Returns the code point or -1. */
static long unicode_escape(Json *j) {
  if (j->end - j->p < 4) return -1;
  long cp = hex4(j->p);
  if (cp < 0) return -1;
  j->p += 4;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
  if (cp < 0xD800 || cp > 0xDBFF) return cp;
  if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') return -1;
  long lo = hex4(j->p + 2);
  if (lo < 0xDC00 || lo > 0xDFFF) return -1;
  j->p += 6;
  return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
}

/* Parses a string into arena memory.  NUL (escaped) is refused because
 * names become C strings. */
static char *parse_string(Json *j) {
  if (!expect(j, '"', "expected a string")) return NULL;
  /* Decoded text is never longer than the source. */
  char *s = arena_alloc(j->arena, (size_t)(j->end - j->p) + 1), *o = s;
  while (j->p < j->end && *j->p != '"') {
    unsigned char c = (unsigned char)*j->p;
    if (c < 0x20) {
      syntax_error(j, "control character in a string");
      return NULL;
    }
    j->p++;
    if (c != '\\') {
      *o++ = (char)c;
      continue;
    }
    if (j->p >= j->end) break;
    char e = *j->p++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *k = strchr(from, e);
    if (e && k) {
      *o++ = to[k - from];
    } else if (e == 'u') {
      long cp = unicode_escape(j);
      if (cp <= 0) {
        syntax_error(j, cp == 0 ? "\\u0000 in a string" : "bad \\u escape");
        return NULL;
      }
      o = put_utf8(o, (unsigned)cp);
    } else {
      j->p -= 2;
      syntax_error(j, "bad escape in a string");
      return NULL;
    }
  }
  if (!expect(j, '"', "unterminated string")) return NULL;
  *o = 0;
  return s;
}

/* Parses a JSON number that must be a non-negative integer.  Returns 1 on
 * success, 0 if it is a valid number of another kind (reported by the
 * caller with context), and -1 after a syntax error. */
static int parse_uint(Json *j, int64_t *out) {
  skip_ws(j);
  const char *s = j->p;
  bool neg = j->p < j->end && *j->p == '-';
  if (neg) j->p++;
  if (j->p >= j->end || *j->p < '0' || *j->p > '9') {
    j->p = s;
    syntax_error(j, "expected a number");
    return -1;
  }
  bool ok = !neg, leading0 = *j->p == '0';
  int64_t v = 0;
  for (; j->p < j->end && *j->p >= '0' && *j->p <= '9'; j->p++)
    if (!ck_mul(v, 10, &v) || !ck_add(v, *j->p - '0', &v)) ok = false;
  if (leading0 && j->p - s - neg > 1) {
    syntax_error(j, "number with a leading zero");
    return -1;
  }
  if (j->p < j->end && *j->p == '.') {
    ok = false;
    j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return syntax_error(j, "bad number"), -1;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    ok = false;
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return syntax_error(j, "bad number"), -1;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  }
  *out = v;
  return ok ? 1 : 0;
}

static bool eat_word(Json *j, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(j->end - j->p) >= n && memcmp(j->p, w, n) == 0) {
    j->p += n;
    return true;
  }
  return false;
}

/* Skips any JSON value (used for unknown fields, to keep checking the rest). */
static void skip_value(Json *j, int depth) {
  skip_ws(j);
  if (depth > ST_MAX_DEPTH) return syntax_error(j, "nesting too deep");
  if (j->p >= j->end) return syntax_error(j, "expected a value");
  char c = *j->p;
  if (c == '"') {
    parse_string(j);
  } else if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    j->p++;
    if (eat(j, close)) return;
    do {
      if (c == '{') {
        parse_string(j);
        if (j->failed || !expect(j, ':', "expected ':'")) return;
      }
      skip_value(j, depth + 1);
      if (j->failed) return;
    } while (eat(j, ','));
    expect(j, close, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    int64_t v;
    parse_uint(j, &v);
  } else if (!eat_word(j, "true") && !eat_word(j, "false") && !eat_word(j, "null")) {
    syntax_error(j, "expected a value");
  }
}

/* ---- the header's structure ---- */

typedef struct {
  StTensor t;
  int64_t begin, end; /* data_offsets */
  bool has_dtype, has_shape, has_offsets;
  bool bad; /* a field was reported wrong: skip the cross checks */
} Entry;

/* Parses a list of non-negative integers into v[0..max-1]; returns the
 * count, or -1 after an error (reported).  More than `max` items is an
 * error reported by the caller (count = max + 1). */
static int parse_uint_list(Json *j, int64_t *v, int max, const char *tensor, const char *field) {
  if (!expect(j, '[', "expected '['")) return -1;
  if (eat(j, ']')) return 0;
  int n = 0;
  bool bad = false;
  do {
    int64_t x;
    int r = parse_uint(j, &x);
    if (r < 0) return -1;
    if (r == 0 && !bad) {
      error_at(j->loc, "%s: tensor '%s': %s must hold non-negative integers below 2^63", j->file,
               tensor, field);
      bad = true;
    }
    if (n < max) v[n] = x;
    if (n <= max) n++;
  } while (eat(j, ','));
  if (!expect(j, ']', "expected ',' or ']'")) return -1;
  return bad ? -2 : n;
}

static void parse_field(Json *j, Entry *e, const char *key) {
  const char *tn = e->t.name;
  bool *seen = strcmp(key, "dtype") == 0          ? &e->has_dtype
               : strcmp(key, "shape") == 0        ? &e->has_shape
               : strcmp(key, "data_offsets") == 0 ? &e->has_offsets
                                                  : NULL;
  if (seen && *seen) {
    error_at(j->loc, "%s: tensor '%s': field '%s' given twice", j->file, tn, key);
    e->bad = true;
  }
  if (seen) *seen = true; /* present, even if malformed: no "lacks" message */
  skip_ws(j);
  char c = j->p < j->end ? *j->p : 0;
  if (strcmp(key, "dtype") == 0) {
    if (c != '"') {
      error_at(j->loc, "%s: tensor '%s': dtype must be a string", j->file, tn);
      e->bad = true;
      skip_value(j, 0);
      return;
    }
    e->t.dtype = parse_string(j);
  } else if (strcmp(key, "shape") == 0 || strcmp(key, "data_offsets") == 0) {
    bool shape = key[0] == 's';
    if (c != '[') {
      error_at(j->loc, "%s: tensor '%s': %s must be a list of integers", j->file, tn, key);
      e->bad = true;
      skip_value(j, 0);
      return;
    }
    int64_t v[MAX_RANK + 1];
    int max = shape ? MAX_RANK : 2;
    int n = parse_uint_list(j, v, max, tn, key);
    if (n == -1) return;
    if (n == -2) {
      e->bad = true;
    } else if (shape && n > MAX_RANK) {
      error_at(j->loc, "%s: tensor '%s' has more than %d dimensions", j->file, tn, MAX_RANK);
      e->bad = true;
    } else if (!shape && n != 2) {
      error_at(j->loc, "%s: tensor '%s': data_offsets must be [begin, end]", j->file, tn);
      e->bad = true;
    } else if (shape) {
      e->t.shape.rank = n;
      memcpy(e->t.shape.dim, v, (size_t)n * sizeof *v);
    } else {
      e->begin = v[0];
      e->end = v[1];
    }
  } else {
    error_at(j->loc, "%s: tensor '%s': unknown field '%s'", j->file, tn, key);
    e->bad = true;
    skip_value(j, 0);
  }
}

/* Parses one tensor entry's object; j->p is at its value. */
static void parse_entry(Json *j, Entry *e) {
  skip_ws(j);
  if (j->p >= j->end || *j->p != '{') {
    error_at(j->loc, "%s: tensor '%s': expected an object with dtype, shape and data_offsets",
             j->file, e->t.name);
    e->bad = true;
    skip_value(j, 0);
    return;
  }
  j->p++;
  if (eat(j, '}')) goto missing;
  do {
    char *key = parse_string(j);
    if (!key || !expect(j, ':', "expected ':'")) return;
    parse_field(j, e, key);
    if (j->failed) return;
  } while (eat(j, ','));
  if (!expect(j, '}', "expected ',' or '}'")) return;
missing:
  if (!e->has_dtype || !e->has_shape || !e->has_offsets) {
    error_at(j->loc, "%s: tensor '%s' lacks %s", j->file, e->t.name,
             !e->has_dtype ? "a dtype" : !e->has_shape ? "a shape" : "data_offsets");
    e->bad = true;
  }
}

/* "__metadata__": an object of strings; contents ignored. */
static void parse_metadata(Json *j) {
  skip_ws(j);
  bool ok = j->p < j->end && *j->p == '{';
  if (ok) {
    j->p++;
    if (eat(j, '}')) return;
    do {
      if (!parse_string(j) || !expect(j, ':', "expected ':'")) return;
      skip_ws(j);
      if (j->p < j->end && *j->p != '"') ok = false;
      skip_value(j, 0);
      if (j->failed) return;
    } while (eat(j, ','));
    if (!expect(j, '}', "expected ',' or '}'")) return;
  } else {
    skip_value(j, 0);
  }
  if (!ok && !j->failed)
    error_at(j->loc, "%s: __metadata__ must map strings to strings", j->file);
}

/* ---- checks across entries ---- */

/* Checks dtype, size and range of one entry against the data section. */
static bool check_entry(Json *j, Entry *e, size_t datalen) {
  const char *tn = e->t.name;
  int size = dtype_size(e->t.dtype);
  if (size == 0) {
    error_at(j->loc, "%s: tensor '%s' has unknown dtype '%s'", j->file, tn, e->t.dtype);
    return false;
  }
  int64_t numel = 1, nbytes;
  for (int i = 0; i < e->t.shape.rank; i++)
    if (!ck_mul(numel, e->t.shape.dim[i], &numel)) numel = -1;
  if (numel < 0 || !ck_mul(numel, size, &nbytes)) {
    error_at(j->loc, "%s: tensor '%s': size of shape %s overflows", j->file, tn,
             shape_str(j->arena, &e->t.shape));
    return false;
  }
  if (e->begin > e->end) {
    error_at(j->loc, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", j->file,
             tn, (long long)e->begin, (long long)e->end);
    return false;
  }
  if (e->end - e->begin != nbytes) {
    error_at(j->loc,
             "%s: tensor '%s': data_offsets [%lld, %lld] span %lld bytes, but %s %s needs %lld",
             j->file, tn, (long long)e->begin, (long long)e->end, (long long)(e->end - e->begin),
             e->t.dtype, shape_str(j->arena, &e->t.shape), (long long)nbytes);
    return false;
  }
  if ((uint64_t)e->end > datalen) {
    error_at(j->loc,
             "%s: tensor '%s': data_offsets [%lld, %lld] run past the end of the data "
             "(%zu bytes; truncated file?)",
             j->file, tn, (long long)e->begin, (long long)e->end, datalen);
    return false;
  }
  e->t.nbytes = (size_t)nbytes;
  return true;
}

static int by_begin(const void *a, const void *b) {
  const Entry *x = *(Entry *const *)a, *y = *(Entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Reports tensors whose byte ranges overlap (empty tensors overlap nothing). */
static void check_overlaps(Json *j, Entry **ok, int n) {
  qsort(ok, (size_t)n, sizeof *ok, by_begin);
  const Entry *last = NULL; /* the non-empty entry reaching furthest so far */
  for (int i = 0; i < n; i++) {
    if (ok[i]->begin == ok[i]->end) continue;
    if (last && ok[i]->begin < last->end)
      error_at(j->loc, "%s: tensors '%s' and '%s' overlap in the data section", j->file,
               last->t.name, ok[i]->t.name);
    if (!last || ok[i]->end > last->end) last = ok[i];
  }
}

static bool check_duplicate(Json *j, StrMap *names, const char *name) {
  if (strmap_put(j->arena, names, name, (void *)name)) {
    error_at(j->loc, "%s: tensor '%s' appears twice in the header", j->file, name);
    return true;
  }
  return false;
}

/* Parses the top-level object into entries; returns the count. */
static int parse_header(Json *j, Entry **out) {
  Entry *entries = NULL;
  int n = 0, cap = 0;
  bool seen_meta = false;
  StrMap names = {0};
  *out = NULL;
  if (!expect(j, '{', "expected '{'")) return 0;
  if (!eat(j, '}')) {
    do {
      char *name = parse_string(j);
      if (!name || !expect(j, ':', "expected ':'")) break;
      if (strcmp(name, "__metadata__") == 0) {
        if (seen_meta) error_at(j->loc, "%s: __metadata__ appears twice", j->file);
        seen_meta = true;
        parse_metadata(j);
      } else {
        Entry e = {.t.name = name};
        e.bad = check_duplicate(j, &names, name);
        parse_entry(j, &e);
        VEC_PUSH(j->arena, entries, n, cap, e);
      }
      if (j->failed) break;
    } while (eat(j, ','));
    if (!j->failed) expect(j, '}', "expected ',' or '}'");
  }
  skip_ws(j);
  if (!j->failed && j->p < j->end) syntax_error(j, "trailing characters after the header");
  *out = entries;
  return n;
}

static uint64_t read_le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
  return v;
}

bool st_parse_named(Arena *a, const unsigned char *buf, size_t len, const char *file, Loc loc,
                    StFile *out) {
  int errors = diag_error_count();
  *out = (StFile){0};
  if (len < 8) {
    error_at(loc, "%s: truncated safetensors file: %zu bytes, too short for the 8-byte header length",
             file, len);
    return false;
  }
  uint64_t n = read_le64(buf);
  if (n > ST_MAX_HEADER) {
    error_at(loc, "%s: corrupt safetensors file: header length %llu is over the %d MB limit", file,
             (unsigned long long)n, ST_MAX_HEADER >> 20);
    return false;
  }
  if (n > len - 8) {
    error_at(loc,
             "%s: truncated safetensors file: header length %llu runs past the end of the file "
             "(%zu bytes)",
             file, (unsigned long long)n, len);
    return false;
  }
  const char *text = (const char *)buf + 8;
  Json j = {.arena = a, .p = text, .end = text + n, .start = text, .file = file, .loc = loc};
  Entry *entries;
  int count = parse_header(&j, &entries);
  if (j.failed) return false;

  size_t datalen = len - 8 - (size_t)n;
  const unsigned char *data = buf + 8 + n;
  Entry **ok = arena_array(a, (size_t)count, sizeof *ok);
  int nok = 0;
  for (int i = 0; i < count; i++)
    if (!entries[i].bad && check_entry(&j, &entries[i], datalen)) ok[nok++] = &entries[i];
  check_overlaps(&j, ok, nok);
  if (diag_error_count() != errors) return false;

  out->tensors = arena_array(a, (size_t)count, sizeof *out->tensors);
  for (int i = 0; i < count; i++) {
    entries[i].t.data = data + entries[i].begin;
    out->tensors[i] = entries[i].t;
    strmap_put(a, &out->index, out->tensors[i].name, &out->tensors[i]);
  }
  out->ntensors = count;
  return true;
}

bool st_parse(Arena *a, const unsigned char *buf, size_t len, Loc loc, StFile *out) {
  return st_parse_named(a, buf, len, "safetensors file", loc, out);
}

const StTensor *st_find(const StFile *f, const char *name) { return strmap_get(&f->index, name); }
