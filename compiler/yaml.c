/*
 * yaml.c: YAML text -> a compact tree of YNodes, with the spec's limits.
 *
 * needs: the spec's text; gives: the root node of its first document (NULL
 * for an empty stream), every node with its 1-based line and column; or
 * false (after reporting) when the text cannot be read as YAML at all.  A
 * second document is reported as an error but the first is still given,
 * so that its problems are reported in the same run.
 *
 * libyaml's document loader keeps about 100 bytes per node and a stack it
 * refuses to grow past 1 GiB, so the 16,777,216 inline values the format
 * allows could not be loaded ("out of memory while reading YAML").  This
 * loader reads libyaml's events and builds its own tree in the arena: 24
 * bytes per scalar plus its text, 8-byte aligned (arena_packed), children
 * as one array per collection.
 *
 * Aliases make a tree a DAG: an alias node is the very node its anchor
 * names, shared.  Shared nodes are where a small file can demand a huge
 * amount of work (16 layers aliasing one 4096x4096 matrix), so every node
 * counts once per appearance, an alias as the whole subtree it names, and
 * the running total is checked against --max-yaml-values as the events
 * arrive, before anything is expanded.  An alias of a node that is still
 * open (one that would contain itself) is refused: the tree stays acyclic.
 * Nesting deeper than MAX_DEPTH is refused too (libyaml's scanner slows
 * down quadratically with depth).
 */
#include "cnnc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum { MAX_DEPTH = 32 }; /* a spec needs about 10 levels */

typedef struct {
  YColl *node;       /* the open collection */
  size_t first;      /* index in kids of its first child */
} Frame;

typedef struct {
  Arena *a;
  const char *file, *text; /* for locations */
  size_t len;
  int64_t max, count;      /* --max-yaml-values, values so far (aliases expanded) */
  StrMap anchors;          /* anchor -> YNode* */
  Frame stack[MAX_DEPTH + 1];
  int depth;
  YNode **kids;            /* malloc'd: children of all open collections, in order */
  size_t nkids, capkids;
  YNode *root;
  bool failed;
} Loader;

int64_t yaml_weight(const YNode *n) { return n->type == Y_SCALAR ? 1 : ((const YColl *)n)->weight; }

static Loc mark_loc(Loader *l, yaml_mark_t m) {
  return (Loc){l->file, m.line < INT_MAX - 1 ? (int)m.line + 1 : INT_MAX, m.column < INT_MAX - 1 ? (int)m.column + 1 : INT_MAX};
}

static bool count(Loader *l, int64_t n, yaml_mark_t at) {
  if (!ck_add(l->count, n, &l->count) || l->count > l->max) {
    error_at(mark_loc(l, at), "the spec has more than %lld YAML values (each alias counts as a copy of "
                              "what it names); raise the limit with --max-yaml-values",
             (long long)l->max);
    l->failed = true;
    return false;
  }
  return true;
}

/* Appends a finished node to the open collection, or makes it the root. */
static void attach(Loader *l, YNode *n) {
  if (l->depth == 0) {
    l->root = n;
    return;
  }
  if (l->nkids == l->capkids) {
    size_t cap = l->capkids ? 2 * l->capkids : 256;
    YNode **k = realloc(l->kids, cap * sizeof *k);
    if (!k) {
      error_plain("out of memory while reading the YAML spec");
      l->failed = true;
      return;
    }
    l->kids = k;
    l->capkids = cap;
  }
  l->kids[l->nkids++] = n;
}

static void set_loc(Loader *l, YNode *n, yaml_mark_t m) {
  Loc loc = mark_loc(l, m);
  n->line = loc.line;
  n->col = loc.col;
}

static void anchor(Loader *l, const yaml_char_t *name, YNode *n) {
  if (name) strmap_put(l->a, &l->anchors, arena_strdup(l->a, (const char *)name), n);
}

static void on_scalar(Loader *l, yaml_event_t *ev) {
  if (!count(l, 1, ev->start_mark)) return;
  size_t len = ev->data.scalar.length;
  if (len > UINT32_MAX) {
    error_at(mark_loc(l, ev->start_mark), "a YAML scalar longer than 4 GiB");
    l->failed = true;
    return;
  }
  YNode *n = arena_packed(l->a, sizeof *n);
  char *s = arena_packed(l->a, len + 1);
  memcpy(s, ev->data.scalar.value, len);
  n->type = Y_SCALAR;
  n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  n->len = (uint32_t)len;
  n->s = s;
  set_loc(l, n, ev->start_mark);
  anchor(l, ev->data.scalar.anchor, n);
  attach(l, n);
}

static void on_start(Loader *l, yaml_event_t *ev, YType t, const yaml_char_t *anchor_name) {
  if (l->depth == MAX_DEPTH) {
    error_at(mark_loc(l, ev->start_mark), "the spec is nested deeper than %d levels", MAX_DEPTH);
    l->failed = true;
    return;
  }
  if (!count(l, 1, ev->start_mark)) return;
  YColl *c = arena_packed(l->a, sizeof *c);
  c->n.type = (uint8_t)t;
  c->open = true;
  set_loc(l, &c->n, ev->start_mark);
  anchor(l, anchor_name, &c->n);
  l->stack[l->depth++] = (Frame){c, l->nkids};
}

static void on_end(Loader *l) {
  Frame f = l->stack[--l->depth];
  YColl *c = f.node;
  size_t n = l->nkids - f.first;
  c->n.kids = arena_array(l->a, n + 1, sizeof *c->n.kids);
  if (n) memcpy(c->n.kids, l->kids + f.first, n * sizeof *c->n.kids); /* no kids yet: l->kids may be NULL */
  c->n.len = (uint32_t)(c->n.type == Y_MAP ? n / 2 : n);
  c->weight = 1;
  for (size_t i = 0; i < n; i++) c->weight += yaml_weight(c->n.kids[i]);
  c->open = false;
  l->nkids = f.first;
  attach(l, &c->n);
}

static void on_alias(Loader *l, yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  YNode *n = strmap_get(&l->anchors, name);
  Loc loc = mark_loc(l, ev->start_mark);
  if (!n) {
    error_at(loc, "unknown YAML anchor '%s' (an alias must follow its anchor)", name);
  } else if (n->type != Y_SCALAR && ((YColl *)n)->open) {
    error_at(loc, "alias '*%s' names a node that contains it", name);
  } else {
    if (count(l, yaml_weight(n), ev->start_mark)) attach(l, n);
    return;
  }
  l->failed = true;
}

static void report_parser_error(Loader *l, yaml_parser_t *yp) {
  if (yp->error == YAML_MEMORY_ERROR) {
    error_plain("out of memory while reading the YAML spec '%s'", l->file);
    return;
  }
  Loc loc = mark_loc(l, yp->problem_mark);
  if (yp->error == YAML_READER_ERROR) { /* a byte offset, not a mark */
    loc = (Loc){l->file, 1, 1};
    for (size_t i = 0; i < yp->problem_offset && i < l->len; i++) {
      if (l->text[i] == '\n') loc.line++, loc.col = 1;
      else if (((unsigned char)l->text[i] & 0xc0) != 0x80) loc.col++;
    }
  }
  error_at(loc, "malformed YAML: %s", yp->problem ? yp->problem : "unknown error");
  if (yp->context && yp->error != YAML_READER_ERROR) note_at(mark_loc(l, yp->context_mark), "%s", yp->context);
}

/* One event; false to stop. */
static bool on_event(Loader *l, yaml_event_t *ev, int *docs) {
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++*docs == 2) { /* reported; the first document is still checked */
      error_at(mark_loc(l, ev->start_mark), "a spec holds one YAML document; found another");
      return false;
    }
    break;
  case YAML_SCALAR_EVENT: on_scalar(l, ev); break;
  case YAML_SEQUENCE_START_EVENT: on_start(l, ev, Y_SEQ, ev->data.sequence_start.anchor); break;
  case YAML_MAPPING_START_EVENT: on_start(l, ev, Y_MAP, ev->data.mapping_start.anchor); break;
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT: on_end(l); break;
  case YAML_ALIAS_EVENT: on_alias(l, ev); break;
  case YAML_STREAM_END_EVENT: return false;
  default: break;
  }
  return !l->failed;
}

bool yaml_load(Arena *a, const char *file, const char *text, size_t len, YNode **root) {
  Loader l = {.a = a, .file = file, .text = text, .len = len, .max = cnnc_limits.yaml_values};
  yaml_parser_t yp;
  if (!yaml_parser_initialize(&yp)) {
    error_plain("cannot initialise the YAML parser");
    return false;
  }
  yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
  int docs = 0;
  for (bool more = true; more;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&yp, &ev)) {
      report_parser_error(&l, &yp);
      l.failed = true;
      break;
    }
    more = on_event(&l, &ev, &docs);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&yp);
  free(l.kids);
  *root = l.failed ? NULL : l.root;
  return !l.failed;
}
