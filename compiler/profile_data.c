/*
 * profile_data.c: `cnnc --emit-dot FILE --profile-data TABLE`: the
 * measured time of each layer, for dot.c's boxes.
 *
 * needs: the graph after memory planning (the layers as compiled) and
 * TABLE, what cnnrt_profile_print wrote for a build of the same model
 * with --profile: rows "MS SHARE% GFLOPS  LAYER" (ticks instead of
 * milliseconds and "-" for GFLOPS where the counter's rate was unknown;
 * the name is everything after the two spaces that follow GFLOPS, so any
 * name round-trips), blank lines and '#' comments; gives: a ProfileData
 * with each listed layer's milliseconds (-1 for ticks) and share of the
 * run.  Errors at their line and column, all of them reported (up to
 * MAX_ERRORS, then one note): a row that is not one (numbers are plain
 * decimals, finite, a share within 0-100%), a NUL byte, a layer the
 * compiled graph lacks or that has no code of its own (an input, a view),
 * a layer listed twice, and a table without rows.  Then it returns NULL.
 * The table is read with file_read (regular files, --max-file-bytes);
 * profile_data_parse takes its bytes (fuzz/fuzz_profile.c), exactly len
 * of them, not NUL-terminated.
 */
#include "cnnc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ERRORS = 20, SHOW_NAME = 200 };

static const char *skip_blanks(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

/* A plain decimal number at *p (digits, one '.', an exponent), finite. */
static bool number(const char **p, const char *end, double *v) {
  char buf[64];
  size_t n = 0;
  const char *q = *p;
  while (q + n < end && strchr("0123456789.eE+-", q[n]) && q[n]) {
    if (n == sizeof buf - 1) return false;
    buf[n] = q[n];
    n++;
  }
  buf[n] = 0;
  char *e;
  *v = strtod(buf, &e);
  if (n == 0 || *e || !isfinite(*v)) return false;
  *p += n;
  return true;
}

static int find_node(const Graph *g, const char *name, size_t len) {
  for (int i = 0; i < g->nnodes; i++)
    if (strlen(g->nodes[i].name) == len && !memcmp(g->nodes[i].name, name, len)) return i;
  return -1;
}

/* Whether node i has a kernel call that --profile times (an input, a view
 * or a depthwise conv computed inside the next 1x1 conv has none). */
static bool timed(const Graph *g, int i) {
  const Node *n = &g->nodes[i];
  return n->op != OP_INPUT && !n->alias && !n->fused;
}

ProfileData *profile_data_read(Graph *g, const char *path) {
  size_t len;
  const char *text = file_read(g->arena, path, "profile table", (Loc){path, 0, 0}, &len);
  return text ? profile_data_parse(g->arena, g, path, text, len) : NULL;
}

ProfileData *profile_data_parse(Arena *a, const Graph *g, const char *path, const char *text, size_t len) {
  ProfileData *pd = arena_alloc(a, sizeof *pd);
  pd->ms = arena_array(a, (size_t)g->nnodes + 1, sizeof *pd->ms);
  pd->share = arena_array(a, (size_t)g->nnodes + 1, sizeof *pd->share);
  for (int i = 0; i < g->nnodes; i++) pd->share[i] = -1;
  int errors = 0, line = 1;
#define ROW_ERROR(col, ...)                                              \
  do {                                                                   \
    if (++errors <= MAX_ERRORS) error_at((Loc){path, line, (col)}, __VA_ARGS__); \
  } while (0)
  for (const char *p = text, *end = text + len; p < end; line++) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *nul = memchr(p, 0, (size_t)(eol - p));
    const char *q = skip_blanks(p, eol);
    if (nul) {
      ROW_ERROR((int)(nul - p) + 1, "a NUL byte: not a line of cnnrt_profile_print's table");
    } else if (q < eol && *q != '#' && *q != '\r') {
      double ms = 0, share = 0, gflops = 0;
      const char *field = q;
      bool ticks = false;
      if (!number(&q, eol, &ms) || ms < 0) {
        ROW_ERROR((int)(field - p) + 1, "expected the milliseconds (or ticks) of a row of cnnrt_profile_print's "
                                        "table (MS SHARE%% GFLOPS  LAYER)");
      } else if (field = skip_blanks(q, eol), q = field, !number(&q, eol, &share) || q >= eol || *q++ != '%' ||
                 share < 0 || share > 100.005) {
        ROW_ERROR((int)(field - p) + 1, "expected the layer's share of the run, 0%% to 100%%");
      } else if (field = skip_blanks(q, eol), q = field,
                 !number(&q, eol, &gflops) && !(q < eol && *q == '-' && (ticks = true, q++))) {
        ROW_ERROR((int)(field - p) + 1, "expected the layer's GFLOP/s (or '-')");
      } else if (eol - q < 3 || q[0] != ' ' || q[1] != ' ') {
        ROW_ERROR((int)(q - p) + 1, "expected two spaces and the layer's name");
      } else {
        const char *name = q + 2;
        size_t nlen = (size_t)(eol - name);
        if (nlen && name[nlen - 1] == '\r') nlen--;
        int id = find_node(g, name, nlen);
        int show = nlen > SHOW_NAME ? SHOW_NAME : (int)nlen;
        const char *more = nlen > SHOW_NAME ? "..." : "";
        if (id < 0)
          ROW_ERROR((int)(name - p) + 1,
                    "no layer '%.*s%s' in this compiled graph (a profile of another model, or of other options?)",
                    show, name, more);
        else if (!timed(g, id))
          ROW_ERROR((int)(name - p) + 1, "layer '%.*s%s' has no code of its own (an input, a view or a fused "
                                         "depthwise conv): --profile does not time it", show, name, more);
        else if (pd->share[id] >= 0)
          ROW_ERROR((int)(name - p) + 1, "layer '%.*s%s' listed twice", show, name, more);
        else {
          pd->ms[id] = ticks ? -1 : ms;
          pd->share[id] = share / 100;
          pd->rows++;
        }
      }
    }
    p = eol + 1;
  }
#undef ROW_ERROR
  if (errors > MAX_ERRORS)
    error_at((Loc){path, 0, 0}, "%d more errors in the profile table not shown", errors - MAX_ERRORS);
  if (!errors && pd->rows == 0) {
    error_at((Loc){path, 0, 0}, "no rows: not a table of cnnrt_profile_print (MS SHARE%% GFLOPS  LAYER)");
    errors++;
  }
  return errors ? NULL : pd;
}
