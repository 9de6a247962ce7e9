/*
 * dot.c: `cnnc --emit-dot FILE`: the compiled graph for Graphviz
 * (`dot -Tsvg FILE -o graph.svg`).
 *
 * needs: a graph after memory planning (fusion, layout, schedule and
 * workspace offsets decided); gives: the text of one `digraph`, in the
 * graph's arena: a box per layer with its name, op and fused epilogue
 * (activation, residual add), output shape, layout, kernel and tiling (in
 * stats.c's words) and its share of the model's FLOPs, which also shades
 * the box, or with --profile-data (profile_data.c) its measured share of
 * the run and milliseconds, which then shade it; an edge from each input.  Views (flatten, reshape: no code) are
 * dashed, depthwise convs computed inside the next 1x1 conv dotted, graph
 * inputs and outputs drawn as ellipses.  Writes nothing itself: main.c
 * commits the text with the other outputs.
 */
#include "cnnc.h"

#include <stdlib.h>
#include <string.h>

/* `s` inside a DOT string: quotes and backslashes escaped, control
 * characters shown as spaces (a name is any string). */
static void put_escaped(FILE *f, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fputc('\\', f);
    fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
  }
}

static const char *layout_str(Arena *a, const Node *n) {
  return n->layout == LAYOUT_NCHWC ? arena_printf(a, "nchw%dc", n->cblock) : "nchw";
}

/* One layer's box. */
static void put_node(FILE *f, Arena *a, const Graph *g, const ProfileData *pd, int id, int64_t total_flops) {
  const Node *n = &g->nodes[id];
  const char *op = n->op == OP_ACT ? act_names[n->act.kind] : op_name(n->op);
  fprintf(f, "  n%d [label=\"", id);
  put_escaped(f, n->name);
  fprintf(f, "\\n%s", op);
  if (n->nin == 2 && n->op == OP_CONV2D) fputs(" + residual", f); /* added before the activation */
  if (n->act.kind && n->op != OP_ACT) fprintf(f, " + %s", act_names[n->act.kind]);
  fprintf(f, "\\n%s %s", shape_str(a, &n->shape), layout_str(a, n));
  if (n->op == OP_INPUT) {
    fputs("\", shape=ellipse, style=filled, fillcolor=\"#e8f0e8\"];\n", f);
    return;
  }
  int64_t fl = node_flops(g, n);
  double share = total_flops > 0 ? (double)fl / (double)total_flops : 0;
  fputs("\\n", f);
  put_escaped(f, n->alias ? "view" : node_kernel_str(a, g, n));
  if (fl > 0 && share < 0.0005) fputs("\\n<0.1% of the FLOPs", f);
  else if (fl > 0) fprintf(f, "\\n%.1f%% of the FLOPs", 100 * share);
  if (pd) { /* --profile-data: the measured time shades the box instead */
    share = pd->share[id] > 0 ? pd->share[id] : 0;
    if (pd->share[id] >= 0 && pd->ms[id] >= 0) fprintf(f, "\\n%.1f%% of the run (%.3f ms)", 100 * share, pd->ms[id]);
    else if (pd->share[id] >= 0) fprintf(f, "\\n%.1f%% of the run", 100 * share);
  }
  /* white to orange by share (a quarter of the FLOPs, or of the run, is full orange) */
  double t = share * 4 > 1 ? 1 : share * 4;
  fprintf(f, "\", shape=%s, style=\"filled%s\", fillcolor=\"#ff%02x%02x\"];\n",
          n->output_index >= 0 ? "doubleoctagon" : "box",
          n->alias ? ",dashed" : n->fused ? ",dotted" : "", (int)(255 - 90 * t), (int)(255 - 200 * t));
}

char *dot_text(const Graph *g, const ProfileData *pd, size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) {
    error_plain("out of memory while writing the --emit-dot graph");
    return NULL;
  }
  Arena a = {0};
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++) total += node_flops(g, &g->nodes[i]);
  fputs("digraph \"", f);
  put_escaped(f, g->name);
  fprintf(f, "\" {\n  graph [rankdir=TB, fontname=\"Helvetica\", label=\"");
  put_escaped(f, g->name);
  fprintf(f, ": %.3f GFLOP, workspace %lld bytes (liveness bound %lld)\", labelloc=t];\n",
          total / 1e9, (long long)g->workspace_size, (long long)g->workspace_bound);
  fputs("  node [fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#555555\"];\n", f);
  for (int i = 0; i < g->nnodes; i++) put_node(f, &a, g, pd, i, total);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *d = &g->nodes[i];
    /* a 1x1 conv after a fused depthwise conv reads that conv's input
     * itself: draw the data flow, through the fused conv */
    for (int k = 0; k < d->nin; k++) {
      int src = k == 0 && d->pre_dw ? d->pre_dw - 1 : d->in[k];
      fprintf(f, "  n%d -> n%d;\n", src, i);
    }
  }
  fputs("}\n", f);
  arena_free(&a);
  if (fclose(f) != 0 || !buf) {
    free(buf);
    error_plain("out of memory while writing the --emit-dot graph");
    return NULL;
  }
  char *text = arena_alloc(g->arena, n + 1);
  memcpy(text, buf, n + 1);
  free(buf);
  *len = n;
  return text;
}
