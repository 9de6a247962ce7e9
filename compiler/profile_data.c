/*
 * profile_data.c: `cnnc --emit-dot FILE --profile-data TABLE`: the
 * measured time of each layer, for dot.c's boxes.
 *
 * needs: the graph after memory planning (the layers as compiled) and
 * TABLE, what cnnrt_profile_print wrote for a build of the same model
 * with --profile: lines "MS SHARE% GFLOPS  LAYER" (or ticks instead of
 * milliseconds), blank lines and '#' comments; gives: a ProfileData with
 * each listed layer's node, milliseconds (-1 when the table holds ticks)
 * and share of the run.  A line that is not such a row, a layer the
 * compiled graph lacks (a profile of another model, or of other options)
 * and a layer listed twice are errors at their line and column, all of
 * them reported; then it returns NULL.  The table is read with file_read
 * (regular files, --max-file-bytes).
 */
#include "cnnc.h"

#include <stdlib.h>
#include <string.h>

static const char *skip_blanks(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

/* A number at p (strtod on a bounded copy); false if none. */
static bool number(const char **p, const char *end, double *v) {
  char buf[64];
  size_t n = 0;
  while (*p + n < end && n < sizeof buf - 1 && (*p)[n] != ' ' && (*p)[n] != '\t' && (*p)[n] != '%') n++;
  memcpy(buf, *p, n);
  buf[n] = 0;
  char *e;
  *v = strtod(buf, &e);
  if (n == 0 || *e || *v != *v) return false;
  *p += n;
  return true;
}

static int find_node(const Graph *g, const char *name, size_t len) {
  for (int i = 0; i < g->nnodes; i++)
    if (strlen(g->nodes[i].name) == len && !memcmp(g->nodes[i].name, name, len)) return i;
  return -1;
}

ProfileData *profile_data_read(Graph *g, const char *path) {
  size_t len;
  const char *text = file_read(g->arena, path, "profile table", (Loc){path, 0, 0}, &len);
  if (!text) return NULL;
  ProfileData *pd = arena_alloc(g->arena, sizeof *pd);
  pd->ms = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof *pd->ms);
  pd->share = arena_array(g->arena, (size_t)g->nnodes + 1, sizeof *pd->share);
  for (int i = 0; i < g->nnodes; i++) pd->share[i] = -1;
  bool ok = true;
  int line = 1;
  for (const char *p = text, *end = text + len; p < end; line++) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *q = skip_blanks(p, eol);
    if (q < eol && *q != '#') {
      double ms = 0, share = 0, gflops = 0;
      const char *start = q;
      bool row = number(&q, eol, &ms);
      q = skip_blanks(q, eol);
      row = row && number(&q, eol, &share) && q < eol && *q++ == '%';
      q = skip_blanks(q, eol);
      row = row && (number(&q, eol, &gflops) || (q < eol && *q == '-' && (q++, true)));
      const char *name = skip_blanks(q, eol);
      size_t nlen = (size_t)(eol - name);
      while (nlen && (name[nlen - 1] == '\r' || name[nlen - 1] == ' ')) nlen--;
      if (!row || name == q || nlen == 0 || ms < 0 || share < 0 || share > 100.0001) {
        error_at((Loc){path, line, (int)(start - p) + 1},
                 "not a row of cnnrt_profile_print's table (MS SHARE%% GFLOPS  LAYER)");
        ok = false;
      } else {
        int id = find_node(g, name, nlen);
        if (id < 0) {
          error_at((Loc){path, line, (int)(name - p) + 1},
                   "no layer '%.*s' in this compiled graph (a profile of another model, or of other options?)",
                   (int)nlen, name);
          ok = false;
        } else if (pd->share[id] >= 0) {
          error_at((Loc){path, line, (int)(name - p) + 1}, "layer '%.*s' listed twice", (int)nlen, name);
          ok = false;
        } else {
          bool ticks = q[-1] == '-'; /* rate unknown: the first column counts ticks */
          pd->ms[id] = ticks ? -1 : ms;
          pd->share[id] = share / 100;
          pd->rows++;
        }
      }
    }
    p = eol + 1;
  }
  return ok ? pd : NULL;
}
