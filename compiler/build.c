/*
 * build.c: the frontend-neutral graph builder.
 *
 * needs: from a frontend (spec.c, onnx.c), the graph inputs and layers as
 * Nodes with names, locations and attributes, each layer's inputs as
 * names, and the requested outputs by name; gives: the Graph's node array
 * in topological order with inputs resolved to ids, the graph's input and
 * output lists, or located errors for unknown and duplicate names, cycles
 * and bad outputs.
 *
 * Layers are collected in frontend order first and references resolved by
 * name once everything is known (a layer may name a later one).  Then a
 * depth-first walk in frontend order emits each node after its inputs:
 * that keeps the frontend's order wherever the data flow allows, finds
 * cycles, and makes node ids stable from run to run.  Everything is linear
 * in the number of layers and references (names are hashed; the walk is
 * iterative, so long chains cannot overflow the C stack).
 *
 * A layer with nrefs == BUILD_PREVIOUS reads the layer before it (the
 * first layer reads the first graph input): the YAML format's default;
 * a layer that takes no inputs (a constant) reads nothing.
 * BUILD_SAME_INPUTS reads what the layer before it reads (the parts of a
 * split, which the frontend adds as consecutive layers).
 */
#include "cnnc.h"

#include <string.h>

typedef struct {
  Loc loc;             /* its name */
  const char *members; /* "a, b, c" */
} Group;

typedef struct {
  Node node;         /* op, name, loc, attributes, act, params */
  Loc name_loc;      /* the name (for duplicate notes) */
  const char **refs; /* input names */
  Loc *ref_locs;     /* where each is */
  int nrefs;         /* BUILD_PREVIOUS, BUILD_SAME_INPUTS, or the count */
} Item;

struct Builder {
  Graph *g;
  Arena *a;
  Item *in;          /* graph inputs, frontend order */
  int nin, capin;
  Item *ly;          /* layers, frontend order */
  int nly, capnly;
  const char **outs; /* requested outputs */
  Loc *out_locs;
  int nouts, capouts;
  int nout_locs, capout_locs;
  Item **all;        /* inputs then layers */
  int nall;
  StrMap names;      /* name -> 1 + index into all */
  StrMap groups;     /* name of a group of layers (a split) -> Group */
  bool too_many;     /* --max-layers reported */
  int errors0;       /* errors reported before build_begin */
};

Builder *build_begin(Graph *g) {
  Builder *b = arena_alloc(g->arena, sizeof *b);
  b->g = g;
  b->errors0 = diag_error_count();
  b->a = g->arena;
  return b;
}

static bool room(Builder *b, Loc loc) {
  if ((int64_t)b->nin + b->nly < cnnc_limits.layers) return true;
  if (!b->too_many)
    error_at(loc, "the model has more than %lld layers and inputs (the limit set by --max-layers)",
             (long long)cnnc_limits.layers);
  b->too_many = true;
  return false;
}

void build_input(Builder *b, Node n, Loc name_loc) {
  if (!room(b, n.loc)) return;
  n.op = OP_INPUT;
  Item it = {.node = n, .name_loc = name_loc, .nrefs = 0};
  VEC_PUSH(b->a, b->in, b->nin, b->capin, it);
}

void build_layer(Builder *b, Node n, Loc name_loc, const char **refs, Loc *ref_locs, int nrefs) {
  if (!room(b, n.loc)) return;
  Item it = {.node = n, .name_loc = name_loc, .refs = refs, .ref_locs = ref_locs, .nrefs = nrefs};
  VEC_PUSH(b->a, b->ly, b->nly, b->capnly, it);
}

void build_group(Builder *b, const char *name, Loc loc, const char *members) {
  Group *gr = strmap_get(&b->groups, name);
  if (gr) {
    error_at(loc, "duplicate name '%s'", name);
    note_at(gr->loc, "'%s' first defined here", name);
    return;
  }
  gr = arena_alloc(b->a, sizeof *gr);
  *gr = (Group){loc, members};
  strmap_put(b->a, &b->groups, name, gr);
}

void build_output(Builder *b, const char *name, Loc loc) {
  VEC_PUSH(b->a, b->outs, b->nouts, b->capouts, name);
  VEC_PUSH(b->a, b->out_locs, b->nout_locs, b->capout_locs, loc);
}

/* ---- names and references ---- */

static int lookup(Builder *b, const char *name) {
  return (int)(intptr_t)strmap_get(&b->names, name) - 1;
}

static void index_names(Builder *b) {
  b->nall = b->nin + b->nly;
  b->all = arena_array(b->a, (size_t)b->nall + 1, sizeof *b->all);
  for (int i = 0; i < b->nin; i++) b->all[i] = &b->in[i];
  for (int i = 0; i < b->nly; i++) b->all[b->nin + i] = &b->ly[i];
  for (int i = 0; i < b->nall; i++) {
    Node *n = &b->all[i]->node;
    if (!n->name) continue;
    int j = lookup(b, n->name);
    const Group *gr = strmap_get(&b->groups, n->name);
    if (j >= 0) {
      error_at(b->all[i]->name_loc, "duplicate name '%s'", n->name);
      note_at(b->all[j]->name_loc, "'%s' first defined here", n->name);
      continue;
    }
    if (gr) { /* reported at whichever comes second in the file */
      Loc here = b->all[i]->name_loc, there = gr->loc;
      bool later = here.line > there.line || (here.line == there.line && here.col > there.col);
      error_at(later ? here : there, "duplicate name '%s'", n->name);
      note_at(later ? there : here, "'%s' first defined here", n->name);
      continue;
    }
    strmap_put(b->a, &b->names, n->name, (void *)(intptr_t)(i + 1));
  }
}

/* Fills node.in with indices into `all` (the default is the previous one). */
static void resolve_refs(Builder *b) {
  for (int i = b->nin; i < b->nall; i++) {
    Item *l = b->all[i];
    Node *n = &l->node;
    if (l->nrefs == BUILD_SAME_INPUTS && i > b->nin) {
      const Node *prev = &b->all[i - 1]->node;
      n->in = arena_array(b->a, (size_t)prev->nin + 1, sizeof *n->in);
      if (prev->nin) memcpy(n->in, prev->in, (size_t)prev->nin * sizeof *n->in);
      n->nin = prev->nin;
      continue;
    }
    if (l->nrefs < 0) {
      if ((i == b->nin && b->nin == 0) || ((unsigned)n->op < OP_COUNT && op_max_in[n->op] == 0)) continue;
      n->in = arena_alloc(b->a, sizeof *n->in);
      n->in[n->nin++] = i == b->nin ? 0 : i - 1;
      continue;
    }
    n->in = arena_array(b->a, (size_t)l->nrefs + 1, sizeof *n->in);
    for (int k = 0; k < l->nrefs; k++) {
      int j = lookup(b, l->refs[k]);
      const Group *gr = j < 0 ? strmap_get(&b->groups, l->refs[k]) : NULL;
      if (gr)
        error_at(l->ref_locs[k], "'%s' is a split, not a tensor: refer to one of its parts (%s)", l->refs[k],
                 gr->members);
      else if (j < 0)
        error_at(l->ref_locs[k], "unknown layer or input '%s' (referenced by layer '%s')", l->refs[k],
                 n->name ? n->name : "?");
      else
        n->in[n->nin++] = j;
    }
  }
}

static const char *name_of(Builder *b, int i) {
  const char *s = b->all[i]->node.name;
  return s ? s : "(unnamed)";
}

static const char *cycle_text(Builder *b, const int *stack, int from, int top) {
  /* stack[k+1] is an input of stack[k]: print in data-flow order */
  const char *s = name_of(b, stack[from]);
  int len = top - from + 1;
  for (int k = top, shown = 0; k >= from; k--, shown++) {
    if (len > 8 && shown == 4) {
      s = arena_printf(b->a, "%s -> ...", s);
      k = from + 3;
    }
    s = arena_printf(b->a, "%s -> %s", s, name_of(b, stack[k]));
  }
  return s;
}

/* Depth-first in frontend order, each node after its inputs; returns the
 * order (indices into `all`). */
static int *order_nodes(Builder *b) {
  int n = b->nall;
  int *order = arena_array(b->a, (size_t)n + 1, sizeof *order);
  int *state = arena_array(b->a, (size_t)n + 1, sizeof *state); /* 0 new, 1 open, 2 done */
  int *next = arena_array(b->a, (size_t)n + 1, sizeof *next);   /* next input to visit */
  int *pos = arena_array(b->a, (size_t)n + 1, sizeof *pos);     /* index in stack */
  int *stack = arena_array(b->a, (size_t)n + 1, sizeof *stack);
  bool *in_cycle = arena_array(b->a, (size_t)n + 1, sizeof *in_cycle);
  int norder = 0;
  for (int s = 0; s < n; s++) {
    if (state[s]) continue;
    int top = 0;
    stack[0] = s, pos[s] = 0, state[s] = 1;
    while (top >= 0) {
      int v = stack[top];
      Node *nv = &b->all[v]->node;
      if (next[v] < nv->nin) {
        int u = nv->in[next[v]++];
        if (state[u] == 0) {
          stack[++top] = u, pos[u] = top, state[u] = 1;
        } else if (state[u] == 1 && !in_cycle[u]) {
          for (int k = pos[u]; k <= top; k++) in_cycle[stack[k]] = true;
          error_at(b->all[u]->node.loc, "layer '%s' is part of a cycle: %s", name_of(b, u),
                   cycle_text(b, stack, pos[u], top));
        }
        continue;
      }
      state[v] = 2;
      order[norder++] = v;
      top--;
    }
  }
  CNNC_ASSERT(norder == n);
  return order;
}

static void resolve_outputs(Builder *b, const int *newid) {
  Graph *g = b->g;
  if (b->nouts == 0) {
    if (b->nly == 0) return;
    g->outputs = arena_alloc(b->a, sizeof *g->outputs);
    g->outputs[g->noutputs++] = newid[b->nall - 1];
    return;
  }
  g->outputs = arena_array(b->a, (size_t)b->nouts, sizeof *g->outputs);
  for (int i = 0; i < b->nouts; i++) {
    const char *s = b->outs[i];
    int j = lookup(b, s);
    if (j < 0) {
      error_at(b->out_locs[i], "unknown output '%s': no layer has this name", s);
      continue;
    }
    Node *n = &g->nodes[newid[j]];
    if (n->op == OP_INPUT) {
      error_at(b->out_locs[i], "output '%s' is a graph input; outputs must be layers", s);
      continue;
    }
    if (n->output_index >= 0) {
      error_at(b->out_locs[i], "output '%s' is listed twice", s);
      continue;
    }
    n->output_index = g->noutputs;
    g->outputs[g->noutputs++] = newid[j];
  }
}

static void emit_graph(Builder *b) {
  Graph *g = b->g;
  int *order = order_nodes(b);
  int *newid = arena_array(b->a, (size_t)b->nall + 1, sizeof *newid);
  for (int i = 0; i < b->nall; i++) newid[order[i]] = i;
  g->nodes = arena_array(b->a, (size_t)b->nall + 1, sizeof *g->nodes);
  g->nnodes = g->capnodes = b->nall;
  for (int i = 0; i < b->nall; i++) {
    Node *n = &g->nodes[i];
    *n = b->all[order[i]]->node;
    for (int k = 0; k < n->nin; k++) n->in[k] = newid[n->in[k]];
    n->input_index = n->output_index = -1;
    n->offset = -1;
    n->layout = LAYOUT_NCHW;
  }
  g->inputs = arena_array(b->a, (size_t)b->nin + 1, sizeof *g->inputs);
  for (int i = 0; i < b->nin; i++) {
    g->inputs[g->ninputs] = newid[i];
    g->nodes[newid[i]].input_index = g->ninputs++;
  }
  resolve_outputs(b, newid);
  for (int k = 0; k < g->noutputs; k++) g->nodes[g->outputs[k]].output_index = k;
}

bool build_end(Builder *b) {
  int errors0 = diag_error_count();
  index_names(b);
  resolve_refs(b);
  emit_graph(b);
  /* what the frontends did not already report (an ONNX graph whose only
   * input was an initializer, or whose outputs all failed) */
  if (diag_error_count() == b->errors0 && b->g->ninputs == 0)
    error_at((Loc){b->g->file, 0, 0}, "the model has no inputs: cnnc compiles functions of at least one input");
  if (diag_error_count() == b->errors0 && b->g->noutputs == 0)
    error_at((Loc){b->g->file, 0, 0}, "the model has no outputs");
  return diag_error_count() == errors0;
}
