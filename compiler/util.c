/*
 * util.c: the arena, diagnostics and overflow-checked arithmetic that every
 * other file uses.
 *
 * The arena hands out zeroed, 64-byte aligned memory from large blocks and
 * frees it all at once.  Running out of memory is not a user error the
 * compiler can report usefully, so the allocators abort instead of
 * returning NULL; sizes that come from user input must be checked with
 * ck_mul/ck_add before they get here.
 *
 * Diagnostics print like gcc ("file:line:col: error: msg"), followed by the
 * offending source line and a caret when the text is known.
 */
#include "cnnc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- arena ---- */

struct ArenaBlock {
  ArenaBlock *next; /* older block */
  size_t used, cap; /* bytes used / available in mem */
  _Alignas(64) unsigned char mem[];
};

enum { ARENA_BLOCK = 1 << 20, ARENA_ALIGN = 64 };

static _Noreturn void out_of_memory(size_t n) {
  fprintf(stderr, "cnnc: fatal: out of memory allocating %zu bytes\n", n);
  exit(2);
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

/* ---- diagnostics ---- */

typedef struct {
  const char *file; /* as passed to diag_add_source */
  const char *text; /* not owned */
  size_t len;
} Source;

static FILE *diag_out;
static int nerrors;
static Source sources[16];
static int nsources;

void diag_set_stream(FILE *f) { diag_out = f; }
static FILE *out(void) { return diag_out ? diag_out : stderr; }

void diag_add_source(const char *file, const char *text, size_t len) {
  if (nsources < (int)(sizeof sources / sizeof *sources))
    sources[nsources++] = (Source){file, text, len};
}

void diag_reset(void) {
  nerrors = 0;
  nsources = 0;
}

int diag_error_count(void) { return nerrors; }

/* Prints the source line `line` of `file` and a caret under `col`. */
static void show_line(Loc loc) {
  for (int i = nsources - 1; i >= 0; i--) {
    if (!loc.file || strcmp(sources[i].file, loc.file) != 0) continue;
    const char *p = sources[i].text, *end = p + sources[i].len;
    for (int l = 1; l < loc.line && p < end; p++)
      if (*p == '\n') l++;
    const char *e = p;
    while (e < end && *e != '\n') e++;
    if (p >= end && loc.line > 1) return;
    fprintf(out(), "%5d | %.*s\n      | ", loc.line, (int)(e - p), p);
    for (int c = 1; c < loc.col && p + c - 1 < e; c++) fputc(p[c - 1] == '\t' ? '\t' : ' ', out());
    fputs("^\n", out());
    return;
  }
}

static void vdiag(Loc loc, const char *kind, const char *fmt, va_list ap) {
  if (loc.file && loc.line > 0)
    fprintf(out(), "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
  else if (loc.file)
    fprintf(out(), "%s: %s: ", loc.file, kind);
  else
    fprintf(out(), "cnnc: %s: ", kind);
  vfprintf(out(), fmt, ap);
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

void note_at(Loc loc, const char *fmt, ...) {
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
  abort();
}

/* ---- arithmetic ---- */

bool ck_mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
bool ck_add(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }

/* ---- files ---- */

char *read_file(Arena *a, const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    errno = EISDIR;
    return NULL;
  }
  size_t n = (size_t)st.st_size;
  char *buf = arena_alloc(a, n + 1);
  size_t got = fread(buf, 1, n, f);
  int err = ferror(f) || got != n;
  fclose(f);
  if (err) {
    errno = EIO;
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}
