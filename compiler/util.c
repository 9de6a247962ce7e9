/*
 * util.c: the arena, a string map, diagnostics and overflow-checked
 * arithmetic that every other file uses.
 *
 * The arena hands out zeroed memory from large blocks and frees it all at
 * once: 64-byte aligned by default (arena_alloc), 8-byte aligned for the
 * many small objects of a large YAML tree (arena_packed).  The allocators
 * never return NULL.  Sizes that come from user input are bounded by the
 * documented limits (cnnc_limits) and checked with ck_mul/ck_add before
 * they get here; if memory still runs out, the compiler reports it as an
 * error, removes its temporary files (files.c) and exits with status 1.
 *
 * Diagnostics print like gcc ("file:line:col: error: msg"), followed by the
 * offending source line and a caret when the text is known.  Every byte a
 * user controls (names, scalars, source lines) reaches the terminal only
 * through diag_print(), which escapes control characters and invalid UTF-8
 * as \xNN, so a binary file or a hostile name cannot garble the terminal.
 */
#include "cnnc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- arena ---- */

struct ArenaBlock {
  ArenaBlock *next; /* older block */
  size_t used, cap; /* bytes used / available in mem */
  _Alignas(64) unsigned char mem[];
};

enum { ARENA_BLOCK = 1 << 20, ARENA_ALIGN = 64 };

static _Noreturn void out_of_memory(size_t n) {
  if (n == SIZE_MAX)
    fprintf(stderr, "cnnc: error: out of memory (a size overflows)\n");
  else
    fprintf(stderr, "cnnc: error: out of memory allocating %zu bytes (see the limits in docs/format.md)\n", n);
  files_abandon();
  exit(1);
}

void *arena_alloc(Arena *a, size_t size) {
  if (size > SIZE_MAX - 2 * ARENA_ALIGN) out_of_memory(size);
  size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (need == 0) need = ARENA_ALIGN;
  ArenaBlock *b = a->head;
  if (!b || b->cap - b->used < need) {
    size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    b = aligned_alloc(ARENA_ALIGN, (sizeof *b + cap + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1));
    if (!b) out_of_memory(need);
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->mem + b->used;
  b->used += need;
  memset(p, 0, size);
  return p;
}

/* Small objects: 8-byte aligned, carved from the newest block. */
void *arena_packed(Arena *a, size_t size) {
  size_t need = (size + 7) & ~(size_t)7;
  ArenaBlock *b = a->head;
  if (size > SIZE_MAX - 2 * ARENA_ALIGN) out_of_memory(size);
  if (!b || b->cap - b->used < need) return arena_alloc(a, size);
  void *p = b->mem + b->used;
  b->used += need;
  memset(p, 0, size);
  return p;
}

void *arena_array(Arena *a, size_t n, size_t elem) {
  if (elem && n > SIZE_MAX / elem) out_of_memory(SIZE_MAX);
  return arena_alloc(a, n * elem);
}

char *arena_strdup(Arena *a, const char *s) {
  size_t n = strlen(s);
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  return p;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void arena_free(Arena *a) {
  for (ArenaBlock *b = a->head, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  a->head = NULL;
}

void arena_grow(Arena *a, void **data, int *cap, int need, size_t elem) {
  if (need <= *cap) return;
  int ncap = *cap ? *cap : 8;
  while (ncap < need) {
    if (ncap > (1 << 29)) out_of_memory(SIZE_MAX);
    ncap *= 2;
  }
  void *p = arena_array(a, (size_t)ncap, elem);
  if (*cap) memcpy(p, *data, (size_t)*cap * elem);
  *data = p;
  *cap = ncap;
}

/* ---- string map (open addressing, power-of-two capacity) ---- */

static uint64_t hash_bytes(const char *s) {
  uint64_t h = 0xcbf29ce484222325u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3u;
  return h;
}

static size_t strmap_slot(const StrMap *m, const char *key) {
  size_t mask = (size_t)m->cap - 1, i = (size_t)hash_bytes(key) & mask;
  while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & mask;
  return i;
}

int edit_distance(const char *a, const char *b, int limit) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 256 || lb > 256) return limit + 1;
  if ((la > lb ? la - lb : lb - la) > (size_t)limit) return limit + 1;
  int row[257];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0], lo;
    row[0] = lo = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = row[j];
      row[j] = best;
      if (best < lo) lo = best;
    }
    if (lo > limit) return limit + 1;
  }
  return row[lb];
}

void *strmap_get(const StrMap *m, const char *key) {
  if (!m->cap) return NULL;
  size_t i = strmap_slot(m, key);
  return m->keys[i] ? m->vals[i] : NULL;
}

static void strmap_resize(Arena *a, StrMap *m, int cap) {
  StrMap n = {.cap = cap, .n = 0};
  n.keys = arena_array(a, (size_t)cap, sizeof *n.keys);
  n.vals = arena_array(a, (size_t)cap, sizeof *n.vals);
  for (int i = 0; i < m->cap; i++)
    if (m->keys[i]) {
      size_t j = strmap_slot(&n, m->keys[i]);
      n.keys[j] = m->keys[i];
      n.vals[j] = m->vals[i];
      n.n++;
    }
  *m = n;
}

void *strmap_put(Arena *a, StrMap *m, const char *key, void *val) {
  if (2 * (m->n + 1) > m->cap) {
    if (m->cap > (1 << 29)) out_of_memory(SIZE_MAX);
    strmap_resize(a, m, m->cap ? 2 * m->cap : 16);
  }
  size_t i = strmap_slot(m, key);
  void *old = m->vals[i];
  if (!m->keys[i]) {
    m->keys[i] = key;
    m->n++;
    old = NULL;
  }
  m->vals[i] = val;
  return old;
}

/* ---- diagnostics ---- */

typedef struct {
  const char *file; /* as passed to diag_add_source */
  const char *text; /* not owned */
  size_t len;
} Source;

static FILE *diag_out;
static int nerrors;
static Source *sources; /* malloc'd: diagnostics outlive any arena */
static int nsources, capsources;

void diag_set_stream(FILE *f) { diag_out = f; }
static FILE *out(void) { return diag_out ? diag_out : stderr; }

void diag_add_source(const char *file, const char *text, size_t len) {
  if (nsources == capsources) {
    int cap = capsources ? 2 * capsources : 8;
    Source *s = realloc(sources, (size_t)cap * sizeof *s);
    if (!s) out_of_memory((size_t)cap * sizeof *s);
    sources = s;
    capsources = cap;
  }
  sources[nsources++] = (Source){file, text, len};
}

void diag_reset(void) {
  nerrors = 0;
  nsources = 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (len == 0 || len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (len == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogate */
  if (len == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))) return 0;
  return len;
}

size_t utf8_char(const char *s, size_t n) { return n ? utf8_len((const unsigned char *)s, n) : 0; }

size_t utf8_prefix(const char *s, size_t len, size_t max) {
  size_t i = 0;
  while (i < len && i < max) {
    size_t l = utf8_len((const unsigned char *)s + i, len - i);
    if (l == 0) l = 1;
    if (i + l > max) break;
    i += l;
  }
  return i;
}

/* Writes n bytes of s, escaping what a terminal should not see raw. */
static void put_safe(FILE *f, const char *s, size_t n, bool keep_tabs) {
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t l = utf8_len((const unsigned char *)s + i, n - i);
    if (l > 1 || (l == 1 && c >= 0x20 && c != 0x7f) || (c == '\t' && keep_tabs)) {
      fwrite(s + i, 1, l ? l : 1, f);
      i += l ? l : 1;
    } else {
      fprintf(f, "\\x%02x", c);
      i++;
    }
  }
}

char *printable(Arena *a, const char *s, size_t len, size_t max) {
  size_t n = utf8_prefix(s, len, max);
  char *buf;
  size_t size;
  FILE *f = open_memstream(&buf, &size);
  if (!f) out_of_memory(len);
  put_safe(f, s, n, false);
  if (n < len) fputs("...", f);
  fclose(f);
  char *r = arena_strdup(a, buf);
  free(buf);
  return r;
}

int diag_error_count(void) { return nerrors; }

/* Bytes of the character at s (an invalid byte counts alone). */
static size_t char_bytes(const char *s, const char *end) {
  size_t l = utf8_len((const unsigned char *)s, (size_t)(end - s));
  return l ? l : 1;
}

/* Columns a character takes once printed by put_safe. */
static int char_cols(const char *s, const char *end) {
  unsigned char c = (unsigned char)*s;
  size_t l = utf8_len((const unsigned char *)s, (size_t)(end - s));
  return l > 1 || (l == 1 && c >= 0x20 && c != 0x7f) || c == '\t' ? 1 : 4;
}

/* Prints the source line `line` of `file` and a caret under `col` (a
 * character count, as libyaml counts); long lines are cut around it. */
static void show_line(Loc loc) {
  for (int i = nsources - 1; i >= 0; i--) {
    if (!loc.file || strcmp(sources[i].file, loc.file) != 0) continue;
    const char *p = sources[i].text, *end = p + sources[i].len;
    for (int l = 1; l < loc.line && p < end; p++)
      if (*p == '\n') l++;
    if (p >= end && loc.line > 1) return;
    const char *e = p, *caret = p;
    while (e < end && *e != '\n') e++;
    for (int c = 1; c < loc.col && caret < e; c++) caret += char_bytes(caret, e);
    const char *from = p, *to = e;
    if (caret - from > 200) {
      from = caret - 200;
      while (from < caret && ((unsigned char)*from & 0xc0) == 0x80) from++;
    }
    if (to - caret > 200) to = caret + utf8_prefix(caret, (size_t)(to - caret), 200);
    fprintf(out(), "%5d | %s", loc.line, from > p ? "..." : "");
    put_safe(out(), from, (size_t)(to - from), true);
    fprintf(out(), "%s\n      | %s", to < e ? "..." : "", from > p ? "   " : "");
    for (const char *c = from; c < caret; c += char_bytes(c, e))
      for (int k = char_cols(c, e); k > 0; k--) fputc(*c == '\t' ? '\t' : ' ', out());
    fputs("^\n", out());
    return;
  }
}

static void vdiag(Loc loc, const char *kind, const char *fmt, va_list ap) {
  if (loc.file) put_safe(out(), loc.file, strlen(loc.file), true);
  if (loc.file && loc.line > 0)
    fprintf(out(), ":%d:%d: %s: ", loc.line, loc.col, kind);
  else if (loc.file)
    fprintf(out(), ": %s: ", kind);
  else
    fprintf(out(), "cnnc: %s: ", kind);
  char buf[1024], *msg = buf;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n >= (int)sizeof buf && (msg = malloc((size_t)n + 1)))
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  if (!msg) msg = buf, n = (int)sizeof buf - 1;
  put_safe(out(), msg, n > 0 ? (size_t)n : 0, true);
  if (msg != buf) free(msg);
  fputc('\n', out());
  if (loc.line > 0) show_line(loc);
}

void verror_at(Loc loc, const char *fmt, va_list ap) {
  nerrors++;
  vdiag(loc, "error", fmt, ap);
}

void error_at(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror_at(loc, fmt, ap);
  va_end(ap);
}

static bool notes_off;
void diag_notes(bool on) { notes_off = !on; }

void note_at(Loc loc, const char *fmt, ...) {
  if (notes_off) return;
  va_list ap;
  va_start(ap, fmt);
  vdiag(loc, "note", fmt, ap);
  va_end(ap);
}

void error_plain(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror_at((Loc){0}, fmt, ap);
  va_end(ap);
}

_Noreturn void cnnc_die(const char *file, int line, const char *msg) {
  fprintf(stderr, "cnnc: internal error at %s:%d: %s\n", file, line, msg);
  files_abandon();
  abort();
}

/* ---- limits ---- */

/* The defaults without --max-memory's (main.c calls limits_default). */
Limits cnnc_limits = {.file_bytes = (int64_t)4 << 30, .yaml_values = 1 << 25, .layers = 1000000,
                      .param_bytes = (int64_t)2 << 30, .dim = INT32_MAX, .memory = INT64_MAX};

/* Bytes the compiler may use: 3/4 of the RAM, or of a cgroup's limit. */
static int64_t default_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  int64_t ram = pages > 0 && page > 0 ? (int64_t)pages * page : (int64_t)8 << 30;
  FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
  if (f) {
    long long cg;
    if (fscanf(f, "%lld", &cg) == 1 && cg > 0 && cg < ram) ram = cg;
    fclose(f);
  }
  return ram / 4 * 3;
}

void limits_default(Limits *l) {
  *l = (Limits){.file_bytes = (int64_t)4 << 30,
                .yaml_values = 1 << 25,
                .layers = 1000000,
                .param_bytes = (int64_t)2 << 30,
                .dim = INT32_MAX,
                .memory = default_memory()};
}

/* ---- arithmetic ---- */

bool ck_mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
bool ck_add(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }
