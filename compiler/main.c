/*
 * main.c: the cnnc command line and the whole pipeline.
 *
 *   spec -> shapes -> weights -> verify -> fold_bn -> fuse -> layout ->
 *   fuse_dw -> schedule -> pack -> memplan -> codegen
 *   (LLVM IR, optimisation, object) -> header
 *
 * `--emit-yaml FILE` writes the graph as the front end leaves it (after
 * verify, before fold_bn) as a YAML spec and a safetensors file beside
 * it; without -o that is all the run does (a conversion).
 *
 * `--dump=LETTERS` prints the graph after the passes named by letters
 * (p: parse, s: shapes, m: memory plan) to stderr.  Nothing is written
 * unless every phase succeeds: outputs are planned once the inputs are
 * read (files.c refuses to write over an input or a directory), written
 * to temporary files and committed together at the very end.
 */
#include "cnnc.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: cnnc [options] MODEL.yaml|MODEL.onnx\n"
    "\n"
    "Compiles a CNN, described in YAML or as an ONNX file (recognised by content),\n"
    "into an object file and a C header.  MODEL may be '-' to read the model from\n"
    "standard input (then -o is required).\n"
    "\n"
    "options:\n"
    "  -o FILE            object file to write (default: MODEL.o in the current directory)\n"
    "  --header FILE      header to write (default: FILE with .o replaced by .h)\n"
    "  --name NAME        model name: prefixes every generated symbol (default: the model's own,\n"
    "                     or an ONNX file's name)\n"
    "  --weights FILE     the safetensors file of a YAML spec, instead of its 'weights:' (relative\n"
    "                     to the current directory, not the spec's)\n"
    "  --depfile FILE     also write a Makefile rule naming every file the run read (the model,\n"
    "                     the weights, ONNX external data), as cc -MD does, for build systems\n"
    "  --input-shape NAME=D,D,...\n"
    "                     the shape of an ONNX model's input whose dims are dynamic (repeatable)\n"
    "  --emit-llvm        write optimised LLVM IR (text) to -o instead of an object (and the header)\n"
    "  --emit-dot FILE    also write the compiled graph for Graphviz (dot -Tsvg FILE): per layer\n"
    "                     its op, shape, layout, kernel, tiling and share of the FLOPs\n"
    "  --profile-data TABLE with --emit-dot: each layer's measured share of the run, from the\n"
    "                     table cnnrt_profile_print wrote for a --profile build of the model\n"
    "  --emit-yaml FILE   write the model as a YAML spec to FILE and its parameters to FILE's stem\n"
    "                     + .safetensors beside it (for converting ONNX); without -o, nothing else\n"
    "                     is written\n"
    "  --emit-asm FILE    also write the target assembly to FILE\n"
    "  --target TRIPLE    target triple (default: the host): x86_64-linux-gnu, aarch64-linux-gnu,\n"
    "                     thumbv8.1m.main-none-eabihf, thumbv7em-none-eabihf, thumbv7m-none-eabi,\n"
    "                     thumbv6m-none-eabi (docs/targets.md)\n"
    "  --cpu NAME         target CPU, e.g. x86-64-v3, cortex-a76, cortex-m7 (default: the host CPU,\n"
    "                     or the triple's default); on x86-64 a list (x86-64-v2,x86-64-v3,x86-64-v4)\n"
    "                     makes one object with a variant per CPU, run on the best the machine has\n"
    "  --features LIST    features to switch, e.g. +avx2,+fma (default: the CPU's)\n"
    "  --weights-section NAME\n"
    "                     place the weights in the linker section NAME (e.g. .qspi_weights)\n"
    "  -O0 -O1 -O2 -O3    optimisation level (default: -O3)\n"
    "  --winograd=MODE    3x3 convolutions by Winograd F(4x4,3x3): auto (per layer, default), on, off\n"
    "  --fuse-dw=on|off   compute depthwise convs in strips inside the 1x1 conv after them: less\n"
    "                     workspace, slightly slower here (default off; see docs/compiler.md)\n"
    "  --dump=LETTERS     print the graph after passes: p parse, s shapes, f fusion, l layout, m memory plan\n"
    "  --random-weights SEED\n"
    "                     fill parameters that are neither inline nor in the weights file\n"
    "                     with a deterministic pattern from SEED (for benchmarking)\n"
    "  --profile          count cycles per layer in NAME_profile_ticks[] (for tuning; see docs/bench.md)\n"
    "  --stats            print per layer FLOPs, weight and activation bytes, thread split, kernel\n"
    "                     and tiling\n"
    "  --check            run every pass but code generation (every error of the model, the\n"
    "                     kernels and the memory plan) and write nothing; with --stats, --dump or\n"
    "                     --emit-dot, print or write those\n"
    "  --help             print this help\n"
    "  --version          print the version\n"
    "\n"
    "limits (checked before anything is allocated; see docs/format.md, \"Limits\"):\n"
    "  --max-file-bytes N    each input file (default 4 GiB)\n"
    "  --max-yaml-values N   YAML values, an alias counting as what it names (default 33554432)\n"
    "  --max-layers N        inputs and layers (default 1000000)\n"
    "  --max-param-bytes N   parameters as stored in the object (default 2 GiB)\n"
    "  --max-dim N           any one tensor dimension (default 2147483647)\n"
    "  --max-memory N        the compiler's estimated peak memory (default: 3/4 of the RAM)\n"
    "  N is a byte count or count, optionally with a K, M or G suffix (powers of 1024).\n";

typedef struct {
  Options o;
  const char *input; /* spec path */
  const char *dump;  /* letters */
  const char *name;  /* --name */
  InputShape *shapes; /* --input-shape */
  int nshapes, capshapes;
  Arena args;        /* their memory */
  bool stats;        /* --stats */
  bool check;        /* --check: no code generation, no object or header */
  bool random_weights; /* --random-weights */
  uint64_t seed;       /* its SEED */
  const char *weights;   /* --weights FILE */
  const char *depfile;   /* --depfile FILE */
  const char *dot;       /* --emit-dot FILE */
  const char *profile_data; /* --profile-data TABLE (profile_data.c) */
  bool dump_front;       /* --dump's p and s: for the first parse only */
  int dot_out;           /* its files.c handle (-2: not written) */
  int dep_out;           /* its files.c handle (-2: not written) */
  const char *emit_yaml; /* --emit-yaml FILE */
  const char *st_path;   /* the safetensors file beside it */
  int yaml_out, st_out;  /* their files.c handles (-2: not written) */
} Cli;

static bool takes_value(const char *arg, const char *name, int *i, int argc, char **argv,
                        const char **value) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return false;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return true;
  }
  if (arg[n] != 0) return false;
  if (*i + 1 >= argc) {
    error_plain("option '%s' needs a value", name);
    *value = NULL;
    return true;
  }
  *value = argv[++*i];
  return true;
}

/* SEED: a decimal integer 0 .. 2^64-1. */
static void parse_seed(const char *v, Cli *c) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (!*v || *end || *v == '-' || *v == '+' || errno == ERANGE) {
    error_plain("--random-weights needs a seed, a decimal integer from 0 to 18446744073709551615; "
                "got '%s'", v);
    return;
  }
  c->random_weights = true;
  c->seed = (uint64_t)x;
}

/* N[K|M|G]: a positive count; false (after reporting) otherwise. */
static void parse_limit(const char *opt, const char *v, int64_t *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  int64_t scale = 1;
  if (*end == 'K' || *end == 'k') scale = 1 << 10, end++;
  else if (*end == 'M' || *end == 'm') scale = 1 << 20, end++;
  else if (*end == 'G' || *end == 'g') scale = 1 << 30, end++;
  int64_t r;
  if (!*v || *end || *v == '-' || *v == '+' || errno == ERANGE || x < 1 || !ck_mul(x, scale, &r)) {
    error_plain("%s needs a positive number, optionally with a K, M or G suffix; got '%s'", opt, v);
    return;
  }
  *out = r;
}

static bool limit_option(const char *a, int *i, int argc, char **argv) {
  static const struct {
    const char *opt;
    size_t off;
  } opts[] = {{"--max-file-bytes", offsetof(Limits, file_bytes)}, {"--max-yaml-values", offsetof(Limits, yaml_values)},
              {"--max-layers", offsetof(Limits, layers)},         {"--max-param-bytes", offsetof(Limits, param_bytes)},
              {"--max-dim", offsetof(Limits, dim)},               {"--max-memory", offsetof(Limits, memory)}};
  const char *v;
  for (size_t k = 0; k < sizeof opts / sizeof *opts; k++)
    if (takes_value(a, opts[k].opt, i, argc, argv, &v)) {
      if (v) parse_limit(opts[k].opt, v, (int64_t *)((char *)&cnnc_limits + opts[k].off));
      return true;
    }
  return false;
}

/* --input-shape NAME=D,D,...: positive dims, at most MAX_RANK. */
static void parse_input_shape(Cli *c, const char *v) {
  const char *eq = strrchr(v, '=');
  InputShape is = {0};
  bool ok = eq && eq > v;
  for (const char *p = eq ? eq + 1 : ""; ok && *p;) {
    char *end;
    errno = 0;
    long long d = strtoll(p, &end, 10);
    ok = end != p && d >= 1 && errno != ERANGE && is.shape.rank < MAX_RANK && d <= cnnc_limits.dim && (*end == ',' || !*end);
    if (ok) is.shape.dim[is.shape.rank++] = d;
    p = *end == ',' ? end + 1 : end;
  }
  if (!ok || is.shape.rank == 0) {
    error_plain("--input-shape takes NAME=D,D,... with 1 to %d positive dimensions, got '%s'", MAX_RANK, v);
    return;
  }
  is.name = arena_printf(&c->args, "%.*s", (int)(eq - v), v);
  VEC_PUSH(&c->args, c->shapes, c->nshapes, c->capshapes, is);
}

/* A section name as ELF linkers take it: letters, digits, '_', '.', '$'. */
static void check_section(const char *v) {
  bool ok = *v && strlen(v) < 128;
  for (const char *p = v; ok && *p; p++)
    ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_.$", *p);
  if (!ok) error_plain("--weights-section takes a section name (letters, digits, '_', '.', '$'), not '%s'", v);
}

/* Returns 0 to go on, or an exit status + 1. */
static int parse_args(int argc, char **argv, Cli *c) {
  c->o.opt_level = 3;
  c->o.winograd = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage, stdout);
      return 1;
    } else if (!strcmp(a, "--version")) {
      printf("cnnc %s (model format %d)\n", CNNC_VERSION, CNNC_FORMAT_VERSION);
      return 1;
    } else if (!strcmp(a, "--profile")) {
      c->o.profile = true;
    } else if (!strcmp(a, "--stats")) {
      c->stats = true;
    } else if (!strcmp(a, "--check")) {
      c->check = true;
    } else if (!strcmp(a, "--emit-llvm")) {
      c->o.emit_llvm = true;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      c->o.opt_level = a[2] - '0';
    } else if (!strcmp(a, "-o") || !strncmp(a, "-o", 2)) {
      if (a[2]) c->o.output = a + 2;
      else if (i + 1 < argc) c->o.output = argv[++i];
      else error_plain("option '-o' needs a value");
    } else if (takes_value(a, "--emit-yaml", &i, argc, argv, &v)) {
      c->emit_yaml = v;
    } else if (takes_value(a, "--weights", &i, argc, argv, &v)) {
      c->weights = v;
    } else if (takes_value(a, "--emit-dot", &i, argc, argv, &v)) {
      c->dot = v;
    } else if (takes_value(a, "--profile-data", &i, argc, argv, &v)) {
      c->profile_data = v;
    } else if (takes_value(a, "--depfile", &i, argc, argv, &v)) {
      c->depfile = v;
    } else if (takes_value(a, "--emit-asm", &i, argc, argv, &v)) {
      c->o.emit_asm = v;
    } else if (takes_value(a, "--weights-section", &i, argc, argv, &v)) {
      if (v) check_section(v);
      c->o.weights_section = v;
    } else if (takes_value(a, "--header", &i, argc, argv, &v)) {
      c->o.header = v;
    } else if (takes_value(a, "--name", &i, argc, argv, &v)) {
      if (v && names_check_model(v, (Loc){"--name", 0, 0})) c->name = v;
    } else if (takes_value(a, "--input-shape", &i, argc, argv, &v)) {
      if (v) parse_input_shape(c, v);
    } else if (takes_value(a, "--target", &i, argc, argv, &v)) {
      c->o.triple = v;
    } else if (takes_value(a, "--cpu", &i, argc, argv, &v)) {
      c->o.cpu = v;
    } else if (takes_value(a, "--features", &i, argc, argv, &v)) {
      c->o.features = v;
    } else if (takes_value(a, "--winograd", &i, argc, argv, &v)) {
      if (!v) continue;
      if (!strcmp(v, "auto")) c->o.winograd = -1;
      else if (!strcmp(v, "off")) c->o.winograd = 0;
      else if (!strcmp(v, "on")) c->o.winograd = 1;
      else error_plain("--winograd takes auto, off or on, not '%s'", v);
    } else if (takes_value(a, "--fuse-dw", &i, argc, argv, &v)) {
      if (!v) continue;
      if (!strcmp(v, "on")) c->o.fuse_dw = true;
      else if (!strcmp(v, "off")) c->o.fuse_dw = false;
      else error_plain("--fuse-dw takes on or off, not '%s'", v);
    } else if (takes_value(a, "--dump", &i, argc, argv, &v)) {
      c->dump = v;
    } else if (takes_value(a, "--random-weights", &i, argc, argv, &v)) {
      if (v) parse_seed(v, c);
    } else if (limit_option(a, &i, argc, argv)) {
    } else if (a[0] == '-' && a[1]) {
      error_plain("unknown option '%s' (see cnnc --help)", a);
    } else if (c->input) {
      error_plain("more than one model file given ('%s' and '%s')", c->input, a);
    } else {
      c->input = a;
    }
  }
  if (!c->input && !diag_error_count()) error_plain("no model file given (see cnnc --help)");
  if (c->input && !strcmp(c->input, "-") && !c->o.output && !c->emit_yaml && !c->check && !diag_error_count())
    error_plain("reading the model from standard input needs -o FILE");
  if (c->emit_yaml && !c->o.output && (c->o.header || c->o.emit_llvm || c->o.emit_asm || c->stats || c->dot))
    error_plain("--emit-yaml without -o only converts the model: give -o FILE to compile it too (for %s)",
                c->o.header ? "--header" : c->o.emit_llvm ? "--emit-llvm" : c->o.emit_asm ? "--emit-asm"
                : c->stats ? "--stats" : "--emit-dot");
  if (c->profile_data && !c->dot && !diag_error_count())
    error_plain("--profile-data shades the --emit-dot graph: give --emit-dot FILE too");
  if (c->profile_data && c->input && !strcmp(c->profile_data, "-") && !strcmp(c->input, "-"))
    error_plain("the model and --profile-data cannot both come from standard input");
  if (c->check && (c->o.output || c->o.header || c->o.emit_llvm || c->o.emit_asm || c->emit_yaml || c->depfile))
    error_plain("--check writes no object: it cannot take %s", c->o.output ? "-o" : c->o.header ? "--header"
                : c->o.emit_llvm ? "--emit-llvm" : c->o.emit_asm ? "--emit-asm"
                : c->emit_yaml ? "--emit-yaml" : "--depfile");
  return diag_error_count() ? 2 : 0;
}

/* "dir/model.yaml" -> "model" + ext */
static char *stem_with(Arena *a, const char *path, const char *ext) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  int n = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
  return arena_printf(a, "%.*s%s", n, base, ext);
}

/* "x/y.o" -> "x/y" + ext; "x/y" -> "x/y" + ext */
static char *replace_ext(Arena *a, const char *path, const char *ext) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  int n = dot && (!slash || dot > slash + 1) ? (int)(dot - path) : (int)strlen(path);
  return arena_printf(a, "%.*s%s", n, path, ext);
}

static void dump(const Cli *c, char pass, const Graph *g, const char *what) {
  if (!c->dump || !strchr(c->dump, pass)) return;
  fprintf(stderr, "; after %s\n", what);
  graph_dump(g, stderr);
}

/* Whether path ends in ".onnx" (any case). */
static bool onnx_named(const char *path) {
  size_t n = strlen(path);
  return n >= 5 && !strcasecmp(path + n - 5, ".onnx");
}

/* A file of a format that users mistake for a model cnnc reads: what it
 * is and what to do, or NULL. */
static const char *foreign_format(const unsigned char *b, size_t len) {
  if (len >= 4 && !memcmp(b, "PK\x03\x04", 4))
    return "a zip archive, as torch.save writes it; cnnc reads ONNX models and YAML specs: export "
           "the module with torch.onnx.export, or with tools/cnnc_export.py (docs/export.md)";
  if (len >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
    return "a Python pickle (an old torch.save file); cnnc reads ONNX models and YAML specs: export "
           "the module with torch.onnx.export, or with tools/cnnc_export.py (docs/export.md)";
  if (len >= 8 && !memcmp(b + 4, "TFL3", 4))
    return "a TensorFlow Lite flatbuffer; cnnc reads ONNX models (tf2onnx converts .tflite files) "
           "and YAML specs";
  return NULL;
}

/* Control bytes (other than tab and line ends) or invalid UTF-8 in the
 * first 4 KiB. */
static bool looks_binary(const unsigned char *b, size_t len) {
  size_t n = len < 4096 ? len : 4096;
  for (size_t i = 0, k; i < n; i += k) {
    if ((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') || b[i] == 0x7f) return true;
    k = utf8_char((const char *)b + i, len - i);
    if (!k) return true;
  }
  return false;
}

/* The model file as a graph: ONNX by its content or its name, else YAML. */
static Graph *read_model(Arena *arena, Cli *c) {
  size_t len;
  char *text = file_read(arena, c->input, "model file", (Loc){c->input, 0, 0}, &len);
  if (!text) return NULL;
  const unsigned char *bytes = (const unsigned char *)text;
  const char *foreign = foreign_format(bytes, len);
  if (foreign) {
    error_at((Loc){c->input, 0, 0}, "not a model cnnc can read: %s", foreign);
    return NULL;
  }
  /* A binary file named .onnx is read as ONNX even when it does not look
   * like it, so that a damaged one gets the ONNX reader's message, not
   * YAML's (text is read as YAML whatever its name). */
  if (onnx_sniff(bytes, len) || (onnx_named(c->input) && looks_binary(bytes, len))) {
    if (c->weights) {
      error_plain("--weights is for YAML specs: an ONNX model holds its weights (or names its external data)");
      return NULL;
    }
    OnnxOptions o = {c->shapes, c->nshapes, c->name};
    return onnx_parse(arena, c->input, bytes, len, &o);
  }
  if (c->nshapes) {
    error_plain("--input-shape is for ONNX models; a YAML spec gives its inputs' shapes");
    return NULL;
  }
  Graph *g = spec_parse_string(arena, c->input, text, len);
  if (g && c->weights) g->weights = c->weights, g->weights_loc = (Loc){"--weights", 0, 0};
  return g;
}

/* The model file through verification: a graph with bound weights. */
static Graph *front_end(Arena *arena, Cli *c) {
  Graph *g = read_model(arena, c);
  if (!g) return NULL;
  if (c->name) g->name = c->name;
  g->random_weights = c->random_weights;
  g->random_seed = c->seed;
  if (c->dump_front) dump(c, 'p', g, "parse");
  bool names_ok = names_assign(g);
  if (!shape_infer(g) || !names_ok) return NULL;
  if (c->dump_front) dump(c, 's', g, "shape inference");
  if (!budget_params(g) || !weights_bind(g) || !verify(g)) return NULL;
  return g;
}

/* Whether `path` exists and is not a regular file (-o /dev/null). */
static bool is_special(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* Plans --emit-yaml and the safetensors file beside it; with FILE a
 * device or FIFO (`--emit-yaml /dev/stdout`), only the spec is written. */
static bool plan_yaml(Arena *arena, Cli *c) {
  c->yaml_out = c->st_out = -2;
  c->st_path = replace_ext(arena, c->emit_yaml, ".safetensors");
  if ((c->yaml_out = out_plan(c->emit_yaml, "YAML spec")) < 0) return false;
  if (!is_special(c->emit_yaml)) c->st_out = out_plan(c->st_path, "weights file");
  return c->st_out != -1;
}

/* Plans -o and --header (after the inputs are known, before any work),
 * and the --emit-yaml files.  With -o naming a device or FIFO and no
 * --header, no header is written (`-o /dev/null` checks that a model
 * compiles).  --emit-yaml without -o writes only the spec and its weights;
 * --check, only --emit-dot's graph. */
static bool plan_outputs(Arena *arena, Cli *c) {
  c->o.obj_out = c->o.hdr_out = c->o.asm_out = -2;
  c->dep_out = c->depfile ? out_plan(c->depfile, "dependency file") : -2;
  if (c->dep_out == -1) return false;
  if (c->emit_yaml && !c->o.output) return plan_yaml(arena, c);
  if (c->check) {
    c->dot_out = c->dot ? out_plan(c->dot, "graph file") : -2;
    return c->dot_out != -1;
  }
  if (!c->o.output) c->o.output = stem_with(arena, c->input, c->o.emit_llvm ? ".ll" : ".o");
  if (!c->o.header && !is_special(c->o.output)) c->o.header = replace_ext(arena, c->o.output, ".h");
  c->o.obj_out = out_plan(c->o.output, c->o.emit_llvm ? "LLVM IR file" : "object file");
  c->o.hdr_out = c->o.header ? out_plan(c->o.header, "header") : -2;
  c->o.asm_out = c->o.emit_asm ? out_plan(c->o.emit_asm, "assembly file") : -2;
  c->dot_out = c->dot ? out_plan(c->dot, "graph file") : -2;
  if (c->o.obj_out < 0 || c->o.hdr_out == -1 || c->o.asm_out == -1 || c->dot_out == -1) return false;
  return !c->emit_yaml || plan_yaml(arena, c);
}

/* `path` in a Makefile rule: spaces, '#' and '$' escaped as make reads them. */
static void put_make_path(Arena *a, char **text, const char *path) {
  for (const char *p = path; *p; p++)
    *text = arena_printf(a, "%s%s%c", *text, *p == ' ' || *p == '#' ? "\\" : *p == '$' ? "$" : "", *p);
}

/* --depfile: "OUTPUTS: INPUTS" (files.c's list of what was read; standard
 * input is not a file and is left out), into its planned output. */
static bool write_depfile(Arena *a, Cli *c) {
  const char *outs[4] = {c->o.obj_out >= 0 ? c->o.output : NULL, c->o.hdr_out >= 0 ? c->o.header : NULL,
                         c->emit_yaml, c->emit_yaml && c->st_out >= 0 ? c->st_path : NULL};
  char *text = "";
  for (int i = 0; i < 4; i++)
    if (outs[i]) {
      if (*text) text = arena_printf(a, "%s ", text);
      put_make_path(a, &text, outs[i]);
    }
  text = arena_printf(a, "%s:", text);
  for (int i = 0; files_input(i); i++) {
    if (!strcmp(files_input(i), "-")) continue;
    text = arena_printf(a, "%s \\\n ", text);
    put_make_path(a, &text, files_input(i));
  }
  text = arena_printf(a, "%s\n", text);
  return out_write(c->dep_out, text, strlen(text));
}

/* The graph as a spec and its weights, into the planned outputs. */
static bool write_yaml(Graph *g, Cli *c) {
  YamlSpec s;
  const char *slash = strrchr(c->st_path, '/');
  const char *source = strcmp(c->input, "-") ? c->input : "standard input";
  if (!emit_yaml(g, c->emit_yaml, source, slash ? slash + 1 : c->st_path, &s)) return false;
  return out_write(c->yaml_out, s.yaml, s.yaml_len) && (c->st_out < 0 || out_write(c->st_out, s.weights, s.weights_len));
}

/* --stats, after the object is made: what the model needs on the target. */
static void print_footprint(const Graph *g, const TargetInfo *t, const char *cpus) {
  printf("footprint (%s, %s): flash %lld bytes (code %lld + constants %lld); RAM: workspace %lld bytes "
         "+ stack %lld bytes (%s_run's deepest call chain, from the frame sizes of code generation; "
         "memcpy/memset and libgcc's routines not included)\n",
         t->triple, cpus ? cpus : t->cpu, (long long)(g->code_bytes + g->const_bytes), (long long)g->code_bytes,
         (long long)g->const_bytes, (long long)g->workspace_size, (long long)g->stack_bytes, g->name);
}

/* The target-dependent passes, layout to memory planning, on one variant. */
static bool back_end(Cli *c, Graph *g, const TargetInfo *t, BudgetUse *use) {
  g->cpu_level = target_cpu_level(t);
  fold_bn(g);
  fuse(g);
  dump(c, 'f', g, "batchnorm folding and fusion");
  layout(g, t);
  fuse_dw(g, t);
  schedule(g, t);
  if (!pack(g)) return false;
  dump(c, 'l', g, "layout, depthwise fusion and scheduling");
  if (!budget_plan(g, use)) return false;
  memplan(g);
  if (!budget_address(g, t)) return false;
  dump(c, 'm', g, "memory planning");
  return true;
}

enum { MAX_CPUS = 8 };

/* --cpu A,B,...: each CPU resolved as a --cpu of its own, then checked as
 * a set: x86-64 only (the dispatch reads cpuid), no --profile, and no two
 * of one instruction-set level.  Sorted best first (a stable sort by
 * level, so the order given breaks no tie: there is none).  Returns the
 * count, 0 after reporting every problem. */
static int resolve_cpus(Arena *arena, Cli *c, TargetInfo *ts, int *levels) {
  const char *list = c->o.cpu;
  int n = 0, entries = 1;
  bool ok = true;
  for (const char *p = list; *p; p++) entries += *p == ',';
  if (entries > MAX_CPUS) { /* one per level is at most 4 */
    error_plain("--cpu lists %d CPUs, more than %d", entries, MAX_CPUS);
    return 0;
  }
  if (strstr(list, ",,") || list[0] == ',' || list[strlen(list) - 1] == ',') {
    error_plain("--cpu '%.200s': an empty CPU name in the list", list);
    return 0;
  }
  for (const char *p = list;; p++) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    Options o = c->o;
    o.cpu = arena_printf(arena, "%.*s", (int)len, p);
    if (!target_info(&o, arena, &ts[n])) {
      ok = false;
    } else {
      levels[n] = target_cpu_level(&ts[n]) > 1 ? target_cpu_level(&ts[n]) : 1;
      n++;
    }
    if (!e) break;
    p = e;
  }
  if (!ok) return 0;
  if (n > 1 && strncmp(ts[0].triple, "x86_64", 6)) {
    error_plain("--cpu '%s': a list of CPUs is for x86-64 targets, whose objects pick a variant by cpuid at "
                "the first call; %s takes one CPU", list, ts[0].triple);
    return 0;
  }
  if (n > 1 && c->o.profile) {
    error_plain("--profile takes one --cpu, not a list ('%s')", list);
    return 0;
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (levels[i] == levels[j]) {
        error_plain("--cpu '%s': %s and %s need the same instruction-set level (%s): the object would "
                    "never run the second; list one",
                    list, ts[i].cpu, ts[j].cpu, target_level_name(levels[i]));
        ok = false;
      }
  if (!ok) return 0;
  for (int i = 1; i < n; i++) /* insertion sort, best first */
    for (int j = i; j > 0 && levels[j] > levels[j - 1]; j--) {
      TargetInfo t = ts[j];
      ts[j] = ts[j - 1], ts[j - 1] = t;
      int l = levels[j];
      levels[j] = levels[j - 1], levels[j - 1] = l;
    }
  return n;
}

/* The descriptor's graph of several variants: the first one's tensors and
 * name, and a workspace that fits every variant (each places its buffers
 * within its own size, and its further threads' scratch at the shared
 * size, one shared stride apart). */
static Graph *merged(Arena *arena, Variant *vs, int nv) {
  if (nv == 1) return vs[0].g;
  Graph *top = arena_alloc(arena, sizeof *top);
  *top = *vs[0].g;
  for (int v = 1; v < nv; v++) {
    const Graph *g = vs[v].g;
    if (g->workspace_size > top->workspace_size) top->workspace_size = g->workspace_size;
    if (g->thread_scratch > top->thread_scratch) top->thread_scratch = g->thread_scratch;
    if (g->scratch_threads > top->scratch_threads) top->scratch_threads = g->scratch_threads;
    if (g->workspace_bound > top->workspace_bound) top->workspace_bound = g->workspace_bound;
  }
  top->cpu_level = vs[nv - 1].g->cpu_level; /* the lowest variant's */
  for (int v = 0; v < nv; v++) { /* one without further threads' scratch keeps none (codegen.c usable_threads) */
    vs[v].g->workspace_size = top->workspace_size;
    if (vs[v].g->thread_scratch > 0) vs[v].g->thread_scratch = top->thread_scratch;
  }
  return top;
}

static int compile(Arena *arena, Cli *c) {
  TargetInfo ts[MAX_CPUS];
  int levels[MAX_CPUS], nv = 1;
  if (c->o.cpu && strchr(c->o.cpu, ',')) {
    if (!(nv = resolve_cpus(arena, c, ts, levels))) return 1;
  } else {
    if (!target_info(&c->o, arena, &ts[0])) return 1; /* before LLVM can print anything about it */
  }
  c->o.target = &ts[nv - 1]; /* the target machine's: the lowest level */
  Graph *g = front_end(arena, c);
  size_t plen; /* read before the outputs are planned, so that none of them can be the table */
  if (!g || (c->profile_data && !file_read(arena, c->profile_data, "profile table", (Loc){c->profile_data, 0, 0}, &plen)))
    return 1;
  if (!plan_outputs(arena, c)) return 1;
  if (c->emit_yaml && !write_yaml(g, c)) return 1;
  if (c->dep_out >= 0 && !write_depfile(arena, c)) return 1;
  if (c->o.obj_out < 0 && !c->check) return out_commit() ? 0 : 1; /* a conversion: nothing to compile */
  Variant vs[MAX_CPUS];
  BudgetUse use = {0};
  char *cpus = "";
  for (int v = 0; v < nv; v++) {
    /* each variant from its own parse (of the same bytes, files.c): the passes change the graph */
    if (v == 1) { /* the same parse again: its notes and dumps were shown */
      diag_notes(false);
      c->dump_front = false;
    }
    Graph *gv = v == 0 ? g : front_end(arena, c);
    if (nv > 1 && c->dump) fprintf(stderr, "; variant %d of %d: --cpu %s\n", v + 1, nv, ts[v].cpu);
    if (!gv || !back_end(c, gv, &ts[v], &use)) return 1;
    vs[v] = (Variant){gv, &ts[v]};
    cpus = arena_printf(arena, "%s%s%s", cpus, v ? "," : "", ts[v].cpu);
    if (c->stats) {
      if (nv > 1) printf("variant %d of %d: --cpu %s\n", v + 1, nv, ts[v].cpu);
      stats_print(gv, &ts[v], stdout);
    }
  }
  Graph *top = merged(arena, vs, nv);
  if (c->dot_out >= 0) { /* the graph of the first (best) variant */
    size_t dlen;
    ProfileData *pd = c->profile_data ? profile_data_read(vs[0].g, c->profile_data) : NULL;
    if (c->profile_data && !pd) return 1;
    const char *dot = dot_text(vs[0].g, pd, &dlen);
    if (!dot || !out_write(c->dot_out, dot, dlen)) return 1;
  }
  if (c->check) return out_commit() ? 0 : 1;
  if (!codegen_emit(top, vs, nv, &c->o)) return 1;
  if (c->stats && !c->o.emit_llvm) print_footprint(top, c->o.target, nv > 1 ? cpus : NULL);
  size_t hlen;
  const char *htext = header_text(top, c->o.profile, nv > 1 ? cpus : NULL, &hlen);
  if ((c->o.hdr_out >= 0 && !out_write(c->o.hdr_out, htext, hlen)) || !out_commit()) return 1;
  return 0;
}

int main(int argc, char **argv) {
  limits_default(&cnnc_limits);
  Cli c = {.dump_front = true};
  int r = parse_args(argc, argv, &c);
  if (r) return r - 1;
  files_catch_signals();
  Arena arena = {0};
  r = compile(&arena, &c);
  files_reset(); /* removes what a failed run left (temporary files) and frees */
  arena_free(&arena);
  arena_free(&c.args);
  return r;
}
