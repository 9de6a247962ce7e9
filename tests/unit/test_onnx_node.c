/*
 * test_onnx_node.c: ONNX's backend node tests through cnnc.
 *
 * Debian's libonnx-testdata ships ONNX's operator tests in
 * /usr/share/libonnx-testdata/data/node: each directory holds a model.onnx
 * of one node (sometimes a few) and test_data_set_0/ with input_K.pb and
 * output_K.pb (TensorProtos, computed by ONNX's reference implementation;
 * input K is the K-th graph input that is not an initializer; every
 * test_data_set_N is checked, though the node tests have one each).
 * The package's pytorch-converted, pytorch-operator and simple suites
 * (PyTorch's exports at opset 6 to 9, a few small models) are in the same
 * form and run too, as "SUITE/NAME"; tests/onnx_node/ holds cnnc's own
 * cases, regressions (made by tools/make_onnx_cases.py), run as
 * "cnnc/NAME".  For every directory this test
 *
 *   1. runs  $CNNC model.onnx -o TMP/m.o --name m ; whatever the model,
 *      cnnc must exit 0, or 1 with an error message: a signal or any other
 *      status (a sanitizer's 99, a CPU-time limit) is a failure;
 *   2. decides whether the test applies to cnnc: every node's op is one the
 *      frontend translates (onnx_op) or folds on constants
 *      (onnx_foldable), every graph output and output tensor is float32, and every
 *      graph input is float32, or int64/int32 (shapes, axes, pads: cnnc
 *      takes those only as constants, see 3);
 *   3. if the model as given does not compile, tries it with inputs turned
 *      into initializers holding the test's own values (ONNX's node tests
 *      pass weights, shapes and axes as inputs, which cnnc compiles into
 *      the object): first the int64/int32 inputs, then every input but
 *      one float32 input (the first, else the second, ...).  Each data set
 *      has its own model, so this is exact;
 *   4. an applicable test must compile, unless cnnc refuses it with a
 *      limitation message (limitation() below: "... is not supported",
 *      "cnnc supports ...", ...): then it is skipped with that message as
 *      its reason; any other error, also on the way through step 3, is a
 *      failure;
 *   5. links m.o into m.so ($CC -shared), and in a fork()ed child (a crash
 *      is a failure, not the end of this test) dlopens it, runs the
 *      `m_model` descriptor (runtime/cnnrt.h) on every input_K.pb of every
 *      data set (with inputs made constants, compiled again per set) and
 *      compares every output with output_K.pb: shapes equal (a scalar may
 *      come out as [1]) and |got - want| <= 1e-7 + 1e-3 |want| for every
 *      element (ONNX's own tolerance; NaN equals NaN, infinities must be
 *      equal).
 *
 * It prints one line per test (PASS, FAIL with the worst element, SKIP
 * with the reason), the totals and a table of skip reasons with counts.
 * It fails if anything crashed or an applicable test failed; without the
 * test data it exits 77 (ctest's skip).  Tests run in CNNC_NODE_JOBS
 * processes (default 2); `test_onnx_node NAME...` runs only those;
 * with CNNC_NODE_KEEP set, each process keeps its last test's files.
 */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cnnrt.h"
#include "onnx_t.h"

#define TESTDATA "/usr/share/libonnx-testdata/data"
#define NODE_DIR TESTDATA "/node"

/* The suites: ONNX's node tests, PyTorch's exports of the same package
 * (older opsets), its few whole models, and the repository's own. */
static const struct {
  const char *dir;    /* under TESTDATA, or NULL: $CNNC_SOURCE_DIR/tests/onnx_node */
  const char *prefix; /* of its tests' names */
} suites[] = {{"node", ""}, {"pytorch-converted", "pytorch-converted/"}, {"pytorch-operator", "pytorch-operator/"},
              {"simple", "simple/"}, {NULL, "cnnc/"}};
enum { NSUITES = sizeof suites / sizeof *suites };
#define RTOL 1e-3
#define ATOL 1e-7
#pragma GCC diagnostic ignored "-Wformat-truncation"

enum { R_PASS, R_FAIL, R_SKIP };

typedef struct {
  char name[128];   /* the test: its directory's name ("cnnc/NAME" for the repository's) */
  char dir[512];    /* its directory */
  int status;       /* R_* */
  char frozen[256]; /* inputs compiled in as constants ("" if none) */
  char msg[768];    /* FAIL: what went wrong; SKIP: the reason */
} Result;

typedef struct {
  int next; /* the next test to take (atomic) */
  Result r[];
} Shared;

static const char *cnnc_path, *cc_path, *cflags;
static Shared *sh;

/* ---- small helpers ---- */

static void say(Result *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(Result *r, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  r->status = status;
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *b = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap && !(b = realloc(b, cap = cap * 2 + 65536))) abort();
    size_t k = fread(b + n, 1, cap - n, f);
    if (!k) break;
    n += k;
  }
  fclose(f);
  *len = n;
  return b;
}

static bool write_file(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return false;
  bool ok = fwrite(d, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

static const char *dtype(int32_t t) {
  static const char *const names[] = {"undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                      "string", "bool", "float16", "float64", "uint32", "uint64", "complex64",
                                      "complex128", "bfloat16"};
  return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

static bool is_int_type(int32_t t) {
  return t == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || t == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
}

/* Runs argv with stdout and stderr into `log`; the exit status, or 128 +
 * the signal.  CPU time is limited so that a hang is a failure. */
static int run(char *const argv[], const char *log, int cpu_seconds) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
    struct rlimit rl = {(rlim_t)cpu_seconds, (rlim_t)cpu_seconds};
    setrlimit(RLIMIT_CPU, &rl);
    execvp(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* The first line of `log` with "error: " in it, shortened to what it says:
 * "Op: message" for a node, without the file's path and the list of
 * supported operators; else its first line; empty if it has none.
 * True if there was an "error: " line. */
static bool first_error(const char *log, char *out, size_t n) {
  size_t len;
  char *text = (char *)slurp(log, &len);
  bool found = false;
  out[0] = 0;
  if (!text) return false;
  text = realloc(text, len + 1);
  text[len] = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    char *e = strstr(line, "error: ");
    if (e) {
      const char *op = NULL;
      size_t oplen = 0;
      char *hash = strstr(line, " (#");
      if (hash && hash < e && (op = strchr(hash, ',')) && op < e) {
        op += 2;
        oplen = strcspn(op, ")");
      }
      char *cut = strstr(e, " (supported: ");
      if (cut) *cut = 0;
      snprintf(out, n, "%.*s%s%s", (int)oplen, op ? op : "", op ? ": " : "", e + 7);
      found = true;
      break;
    }
    if (!out[0] && *line) snprintf(out, n, "%s", line); /* "cnnc: internal error at ...", a sanitizer */
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return found;
}

/* cnnc's messages for what it cannot do (as opposed to what is wrong
 * with the model): an applicable test refused with one of these is
 * skipped, with any other error it fails. */
static bool limitation(const char *msg) {
  static const char *const marks[] = {"not supported", "cnnc supports", "cnnc compiles", "cnnc's ", "cnnc gathers",
                                      "cnnc computes only", NULL};
  for (const char *const *m = marks; *m; m++)
    if (strstr(msg, *m)) return true;
  return false;
}

/* ---- the test's data ---- */

static void *arena_pb_alloc(void *data, size_t size) { return arena_packed(data, size ? size : 1); }
static void arena_pb_free(void *data, void *p) {}

static Onnx__TensorProto *read_pb(Arena *a, const char *path) {
  size_t len;
  unsigned char *b = slurp(path, &len);
  if (!b) return NULL;
  ProtobufCAllocator al = {.alloc = arena_pb_alloc, .free = arena_pb_free, .allocator_data = a};
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(&al, len, b);
  free(b);
  return t;
}

/* One test, read: the model and the data set's tensors. */
typedef struct {
  Arena a;
  char dir[512];
  OnnxModel *m;              /* NULL: onnx_load refused it */
  const char **in_name;      /* non-initializer graph inputs, in order */
  int32_t *in_type;          /* their element types (-1: not a tensor) */
  int nin, nout;
  int nsets;                 /* test_data_set_0 .. nsets-1 */
  Onnx__TensorProto **in_pb, **out_pb; /* the current set's input_K.pb, output_K.pb (NULL: missing) */
} Test;

static bool is_init(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++)
    if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name)) return true;
  return false;
}

static int32_t vi_type(const Onnx__ValueInfoProto *vi) {
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return -1;
  return tp->tensor_type->elem_type;
}

static const char *type_word(int32_t t) { return t < 0 ? "a sequence, map or optional" : dtype(t); }

static void load_test(Test *t, const char *dir) {
  snprintf(t->dir, sizeof t->dir, "%s", dir);
  char path[600];
  snprintf(path, sizeof path, "%s/model.onnx", t->dir);
  size_t len;
  unsigned char *buf = slurp(path, &len);
  if (!buf) return;
  FILE *quiet = fopen("/dev/null", "w");
  diag_set_stream(quiet);
  diag_reset();
  t->m = onnx_load(&t->a, arena_strdup(&t->a, path), buf, len);
  diag_set_stream(NULL);
  fclose(quiet);
  free(buf); /* onnx_load copies what it keeps */
  if (!t->m) return;
  const Onnx__GraphProto *g = t->m->proto->graph;
  t->in_name = arena_array(&t->a, g->n_input + 1, sizeof *t->in_name);
  t->in_type = arena_array(&t->a, g->n_input + 1, sizeof *t->in_type);
  for (size_t i = 0; i < g->n_input; i++)
    if (!is_init(g, g->input[i]->name)) {
      t->in_name[t->nin] = g->input[i]->name;
      t->in_type[t->nin++] = vi_type(g->input[i]);
    }
  t->nout = (int)g->n_output;
  t->in_pb = arena_array(&t->a, (size_t)t->nin + 1, sizeof *t->in_pb);
  t->out_pb = arena_array(&t->a, (size_t)t->nout + 1, sizeof *t->out_pb);
  struct stat st;
  for (t->nsets = 0; t->nsets < 1000; t->nsets++) {
    snprintf(path, sizeof path, "%s/test_data_set_%d", t->dir, t->nsets);
    if (stat(path, &st) != 0) break;
  }
}

/* Reads data set `set`'s tensors. */
static void load_set(Test *t, int set) {
  char path[600];
  for (int k = 0; k < t->nin; k++) {
    snprintf(path, sizeof path, "%s/test_data_set_%d/input_%d.pb", t->dir, set, k);
    t->in_pb[k] = read_pb(&t->a, path);
  }
  for (int k = 0; k < t->nout; k++) {
    snprintf(path, sizeof path, "%s/test_data_set_%d/output_%d.pb", t->dir, set, k);
    t->out_pb[k] = read_pb(&t->a, path);
  }
}

static bool handled(const char *op) { return onnx_op(op) || onnx_foldable(op); }

/* Step 2: NULL if the test applies to cnnc, else why not (the data types
 * of the current set). */
static const char *not_applicable(Test *t, char *buf, size_t n) {
  if (!t->m) return NULL; /* cnnc's own message says why (set by the caller) */
  const Onnx__GraphProto *g = t->m->proto->graph;
  for (size_t i = 0; i < g->n_node; i++)
    if (!handled(g->node[i]->op_type)) return snprintf(buf, n, "op %s not supported", g->node[i]->op_type), buf;
  if (t->nsets == 0) return snprintf(buf, n, "no test data set"), buf;
  for (int k = 0; k < t->nin; k++) {
    int32_t ty = t->in_type[k];
    if (ty != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && !is_int_type(ty))
      return snprintf(buf, n, "input of type %s", type_word(ty)), buf;
    if (!t->in_pb[k]) return snprintf(buf, n, "input %d has no test data", k), buf;
    if (t->in_pb[k]->data_type != ty) return snprintf(buf, n, "input data of type %s", dtype(t->in_pb[k]->data_type)), buf;
  }
  for (int k = 0; k < t->nout; k++) {
    int32_t ty = vi_type(g->output[k]);
    if (ty != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return snprintf(buf, n, "output of type %s", type_word(ty)), buf;
    if (!t->out_pb[k]) return snprintf(buf, n, "output %d has no test data", k), buf;
    if (t->out_pb[k]->data_type != ty) return snprintf(buf, n, "output data of type %s", dtype(t->out_pb[k]->data_type)), buf;
  }
  return NULL;
}

/* Step 3: the model with the inputs in `freeze` (a bit per input) as
 * initializers holding input_K.pb, written to `path`; their names into
 * `names`. */
static bool write_frozen(Test *t, unsigned freeze, const char *path, char *names, size_t n) {
  Onnx__GraphProto *g = t->m->proto->graph;
  size_t n0 = g->n_initializer;
  Onnx__TensorProto **keep = g->initializer;
  Onnx__TensorProto **init = arena_array(&t->a, n0 + (size_t)t->nin + 1, sizeof *init);
  if (n0) memcpy(init, keep, n0 * sizeof *init);
  names[0] = 0;
  for (int k = 0; k < t->nin; k++)
    if (freeze & (1u << k)) {
      Onnx__TensorProto *tp = arena_alloc(&t->a, sizeof *tp);
      *tp = *t->in_pb[k];
      tp->name = (char *)t->in_name[k];
      init[g->n_initializer++] = tp;
      size_t l = strlen(names);
      snprintf(names + l, n - l, "%s%s", l ? ", " : "", t->in_name[k]);
    }
  g->initializer = init;
  size_t len = onnx__model_proto__get_packed_size(t->m->proto);
  unsigned char *b = malloc(len + 1);
  onnx__model_proto__pack(t->m->proto, b);
  g->initializer = keep;
  g->n_initializer = n0;
  bool ok = write_file(path, b, len);
  free(b);
  return ok;
}

/* ---- step 5: running the compiled model (in a child) ---- */

static float *tensor_floats(Test *t, const Onnx__TensorProto *tp, Shape *s, int64_t *numel) {
  float *d;
  Loc at = {"test data", 0, 0};
  FILE *quiet = fopen("/dev/null", "w");
  diag_set_stream(quiet);
  bool ok = onnx_tensor_floats(t->m, tp, at, &d, numel, s);
  diag_set_stream(NULL);
  fclose(quiet);
  return ok ? d : NULL;
}

static bool same_shape(const cnnrt_tensor_info *info, const Shape *s) {
  if (s->rank == 0) return info->numel == 1 && info->rank <= 1;
  if (info->rank != s->rank) return false;
  for (int i = 0; i < s->rank; i++)
    if (info->shape[i] != s->dim[i]) return false;
  return true;
}

static const char *info_shape(const cnnrt_tensor_info *info, char *buf, size_t n) {
  size_t l = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < info->rank; i++) l += (size_t)snprintf(buf + l, n - l, "%s%lld", i ? ", " : "", (long long)info->shape[i]);
  snprintf(buf + l, n - l, "]");
  return buf;
}

static int find_input(Test *t, const char *name) {
  for (int k = 0; k < t->nin; k++)
    if (!strcmp(t->in_name[k], name)) return k;
  return -1;
}

static void run_model(Test *t, const char *so, Result *r) {
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) return say(r, R_FAIL, "dlopen: %s", dlerror());
  const cnnrt_model *md = dlsym(h, "m_model");
  if (!md) return say(r, R_FAIL, "no m_model in m.so");
  if (md->abi_version != CNNRT_ABI_VERSION) return say(r, R_FAIL, "abi_version %lld", (long long)md->abi_version);
  const Onnx__GraphProto *g = t->m->proto->graph;
  if (md->num_outputs != t->nout) return say(r, R_FAIL, "%lld outputs, the model has %d", (long long)md->num_outputs, t->nout);
  const float **in = arena_array(&t->a, (size_t)md->num_inputs + 1, sizeof *in);
  float **out = arena_array(&t->a, (size_t)md->num_outputs + 1, sizeof *out);
  char sb[128];
  for (int64_t i = 0; i < md->num_inputs; i++) {
    int k = find_input(t, md->inputs[i].name);
    if (k < 0) return say(r, R_FAIL, "input %lld '%s' is not an input of the model", (long long)i, md->inputs[i].name);
    Shape s;
    int64_t numel;
    if (!(in[i] = tensor_floats(t, t->in_pb[k], &s, &numel))) return say(r, R_FAIL, "input_%d.pb cannot be read", k);
    if (!same_shape(&md->inputs[i], &s))
      return say(r, R_FAIL, "input '%s' is %s, the data %s", md->inputs[i].name, info_shape(&md->inputs[i], sb, sizeof sb),
                 shape_str(&t->a, &s));
  }
  for (int64_t i = 0; i < md->num_outputs; i++) {
    if (strcmp(md->outputs[i].name, g->output[i]->name))
      return say(r, R_FAIL, "output %lld is '%s', not '%s'", (long long)i, md->outputs[i].name, g->output[i]->name);
    out[i] = arena_array(&t->a, (size_t)md->outputs[i].numel + 1, sizeof(float));
    for (int64_t e = 0; e < md->outputs[i].numel; e++) out[i][e] = 7.77e33f; /* never written: a mismatch */
  }
  void *ws = cnnrt_alloc((size_t)md->workspace_size);
  int rc = md->run(in, out, ws);
  cnnrt_free(ws);
  if (rc != CNNRT_OK) return say(r, R_FAIL, "run returned %d (%s)", rc, cnnrt_strerror(rc));
  for (int64_t i = 0; i < md->num_outputs; i++) {
    Shape s;
    int64_t numel;
    const float *want = tensor_floats(t, t->out_pb[i], &s, &numel);
    if (!want) return say(r, R_FAIL, "output_%lld.pb cannot be read", (long long)i);
    if (!same_shape(&md->outputs[i], &s))
      return say(r, R_FAIL, "output '%s' is %s, want %s", md->outputs[i].name, info_shape(&md->outputs[i], sb, sizeof sb),
                 shape_str(&t->a, &s));
    int64_t bad = 0, worst = -1;
    double worst_ratio = 0;
    for (int64_t e = 0; e < numel; e++) {
      double w = want[e], o = out[i][e], tol = ATOL + RTOL * fabs(w), d = fabs(o - w);
      bool ok = (isnan(w) && isnan(o)) || (isinf(w) ? o == w : d <= tol);
      if (ok) continue;
      double ratio = isnan(d) || isinf(d) ? INFINITY : d / tol;
      if (!bad++ || ratio > worst_ratio) worst = e, worst_ratio = ratio;
    }
    if (bad)
      return say(r, R_FAIL, "output '%s': %lld of %lld elements off; worst [%lld]: got %.9g, want %.9g (tolerance %.3g)",
                 md->outputs[i].name, (long long)bad, (long long)numel, (long long)worst, out[i][worst], want[worst],
                 ATOL + RTOL * fabs(want[worst]));
  }
  say(r, R_PASS, "%s", "");
}

/* Links m.o and runs it in a child; a crash is a failure. */
static void link_and_run(Test *t, const char *tmp, Result *r) {
  char so[600], obj[600], log[600];
  snprintf(so, sizeof so, "%s/m.so", tmp);
  snprintf(obj, sizeof obj, "%s/m.o", tmp);
  snprintf(log, sizeof log, "%s/cc.log", tmp);
  char *argv[64], flags[1024];
  int n = 0;
  argv[n++] = (char *)cc_path;
  snprintf(flags, sizeof flags, "%s", cflags);
  for (char *f = strtok(flags, " "); f && n < 56; f = strtok(NULL, " ")) argv[n++] = f;
  argv[n++] = "-shared", argv[n++] = "-o", argv[n++] = so, argv[n++] = obj, argv[n] = NULL;
  int st = run(argv, log, 120);
  if (st != 0) {
    char e[300];
    first_error(log, e, sizeof e);
    return say(r, R_FAIL, "%s -shared failed (status %d): %s", cc_path, st, e);
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(60);
    struct rlimit rl = {60, 60};
    setrlimit(RLIMIT_CPU, &rl);
    run_model(t, so, r); /* r is shared memory */
    _exit(0);
  }
  int ws;
  if (pid < 0 || waitpid(pid, &ws, 0) < 0) return say(r, R_FAIL, "fork: %s", strerror(errno));
  if (WIFSIGNALED(ws)) say(r, R_FAIL, "the compiled model crashed (signal %d, %s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
  else if (WEXITSTATUS(ws) != 0) say(r, R_FAIL, "the child running the model exited with status %d", WEXITSTATUS(ws));
}

/* ---- one test ---- */

/* Runs cnnc on `model`; 0: compiled.  Otherwise the reason is in err. */
static int compile(const char *model, const char *tmp, char *err, size_t n, Result *r) {
  char obj[600], log[600];
  snprintf(obj, sizeof obj, "%s/m.o", tmp);
  snprintf(log, sizeof log, "%s/cnnc.log", tmp);
  char *argv[] = {(char *)cnnc_path, (char *)model, "-o", obj, "--name", "m", NULL};
  int st = run(argv, log, 300);
  bool said = first_error(log, err, n);
  if (st == 0 || (st == 1 && said)) return st;
  if (st == 1) say(r, R_FAIL, "cnnc exited with 1 without an error message");
  else if (st > 128) say(r, R_FAIL, "cnnc crashed (signal %d, %s): %s", st - 128, strsignal(st - 128), err);
  else say(r, R_FAIL, "cnnc exited with status %d: %s", st, err);
  return -1;
}

/* Links TMP/m.o and runs it on the current data set; false if the test
 * failed (said in r). */
static bool check_set(Test *t, const char *tmp, int set, Result *r) {
  link_and_run(t, tmp, r);
  if (r->status == R_PASS || set == 0) return r->status == R_PASS;
  char msg[sizeof r->msg];
  snprintf(msg, sizeof msg, "%s", r->msg);
  say(r, R_FAIL, "test_data_set_%d: %s", set, msg);
  return false;
}

static void run_test(const char *tmp, Result *r) {
  Test t = {0};
  char model[600], why[256], err[512] = "";
  load_test(&t, r->dir);
  snprintf(model, sizeof model, "%s/model.onnx", t.dir);
  int st = compile(model, tmp, err, sizeof err, r); /* every test: cnnc must not crash */
  if (st < 0) goto done;
  if (t.m && t.nsets) load_set(&t, 0);
  const char *na = not_applicable(&t, why, sizeof why);
  if (!t.m || na) {
    say(r, R_SKIP, "%s%s", na ? "" : "cnnc: ", na ? na : err);
    goto done;
  }
  /* step 3: the int inputs, then all inputs but one float input (the
   * first, the second, ...), as constants; each refusal on the way must be
   * a limitation */
  unsigned ints = 0, floats = 0, frozen = 0, tries[33];
  int ntries = 0;
  for (int k = 0; k < t.nin && k < 32; k++) *(is_int_type(t.in_type[k]) ? &ints : &floats) |= 1u << k;
  if (ints) tries[ntries++] = ints;
  for (int k = 0; k < t.nin && k < 32; k++)
    if ((floats & (1u << k)) && floats != 1u << k) tries[ntries++] = (ints | floats) & ~(1u << k);
  snprintf(model, sizeof model, "%s/frozen.onnx", tmp);
  char first_err[sizeof err] = ""; /* with the first float input computed: the skip reason */
  for (int i = 0; i < ntries && st != 0; i++) {
    if (!limitation(err)) break;
    if (i == (ints != 0) + 1) snprintf(first_err, sizeof first_err, "%s", err);
    if (!write_frozen(&t, frozen = tries[i], model, r->frozen, sizeof r->frozen)) {
      say(r, R_FAIL, "cannot write %s", model);
      goto done;
    }
    if ((st = compile(model, tmp, err, sizeof err, r)) < 0) goto done;
  }
  if (st != 0) {
    if (limitation(err)) say(r, R_SKIP, "cnnc: %s", first_err[0] ? first_err : err);
    else say(r, R_FAIL, "cnnc refuses it%s%s%s: %s", r->frozen[0] ? " (with " : "", r->frozen,
             r->frozen[0] ? " as constants)" : "", err);
    r->frozen[0] = 0;
    goto done;
  }
  /* step 5 on every data set; one with other constants is compiled again */
  for (int set = 0; set < t.nsets && check_set(&t, tmp, set, r); set++) {
    if (set + 1 == t.nsets) break;
    load_set(&t, set + 1);
    if ((na = not_applicable(&t, why, sizeof why))) {
      say(r, R_FAIL, "test_data_set_%d: %s", set + 1, na);
      break;
    }
    if (frozen && (!write_frozen(&t, frozen, model, r->frozen, sizeof r->frozen) ||
                   compile(model, tmp, err, sizeof err, r) != 0)) {
      if (r->status != R_FAIL) say(r, R_FAIL, "test_data_set_%d: cnnc refuses it: %s", set + 1, err);
      break;
    }
  }
done:
  arena_free(&t.a);
}

static void worker(int id, int ntests) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "/tmp/cnnc_node_%d_%d_XXXXXX", (int)getppid(), id);
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    _exit(2);
  }
  for (int i; (i = __atomic_fetch_add(&sh->next, 1, __ATOMIC_SEQ_CST)) < ntests;) run_test(tmp, &sh->r[i]);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (getenv("CNNC_NODE_KEEP")) fprintf(stderr, "test_onnx_node: the last test's files are in %s\n", tmp);
  else if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
  _exit(0);
}

/* ---- the report ---- */

typedef struct {
  const char *reason;
  int count;
} Reason;

static int cmp_reason(const void *a, const void *b) {
  const Reason *x = a, *y = b;
  return x->count != y->count ? y->count - x->count : strcmp(x->reason, y->reason);
}

static int suite_of(const char *name) {
  for (int k = NSUITES - 1; k > 0; k--)
    if (!strncmp(name, suites[k].prefix, strlen(suites[k].prefix))) return k;
  return 0;
}

static int report(int n, double secs) {
  int pass = 0, fail = 0, skip = 0, frozen = 0, crashed = 0, nr = 0, per[NSUITES][4] = {{0}};
  Reason *reasons = calloc((size_t)n + 1, sizeof *reasons);
  for (int i = 0; i < n; i++) {
    Result *r = &sh->r[i];
    int *c = per[suite_of(r->name)];
    c[r->status]++;
    c[3] += r->status == R_PASS && r->frozen[0];
    if (r->status == R_PASS) {
      pass++, frozen += r->frozen[0] != 0;
      printf("PASS %s%s%s%s\n", r->name, r->frozen[0] ? " (as constants: " : "", r->frozen, r->frozen[0] ? ")" : "");
    } else if (r->status == R_FAIL) {
      fail++, crashed += strstr(r->msg, "crashed") != NULL;
      printf("FAIL %s: %s%s%s%s\n", r->name, r->msg, r->frozen[0] ? " (as constants: " : "", r->frozen,
             r->frozen[0] ? ")" : "");
    } else {
      skip++;
      printf("SKIP %s: %s\n", r->name, r->msg);
      int k = 0;
      while (k < nr && strcmp(reasons[k].reason, r->msg)) k++;
      if (k == nr) reasons[nr++].reason = r->msg;
      reasons[k].count++;
    }
  }
  qsort(reasons, (size_t)nr, sizeof *reasons, cmp_reason);
  printf("\nskip reasons (%d tests):\n", skip);
  for (int k = 0; k < nr; k++) printf("%5d  %s\n", reasons[k].count, reasons[k].reason);
  printf("\n");
  for (int k = 0; k < NSUITES; k++)
    if (per[k][0] + per[k][1] + per[k][2])
      printf("%-18s %4d passed (%d with inputs as constants), %d failed, %d skipped\n",
             suites[k].dir ? suites[k].dir : "tests/onnx_node", per[k][R_PASS], per[k][3], per[k][R_FAIL], per[k][R_SKIP]);
  printf("ONNX node tests: %d passed (%d with inputs as constants), %d failed (%d crashed), %d skipped, of %d "
         "(%.0f s)\n", pass, frozen, fail, crashed, skip, n, secs);
  free(reasons);
  return fail ? 1 : 0;
}

/* Adds the test directories of `root` (prefix for their names) that the
 * arguments name (all without arguments). */
static void find_tests(const char *root, const char *prefix, int argc, char **argv, char ***names, int *n, int *cap) {
  DIR *d = opendir(root);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    char name[300], dir[600], model[700];
    snprintf(name, sizeof name, "%s%s", prefix, e->d_name);
    snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    struct stat st;
    if (e->d_name[0] == '.' || strlen(name) >= sizeof sh->r[0].name || strlen(dir) >= sizeof sh->r[0].dir ||
        stat(model, &st) != 0)
      continue;
    bool wanted = argc < 2;
    for (int a = 1; a < argc; a++) wanted |= !strcmp(argv[a], name);
    if (!wanted) continue;
    if (*n + 2 > *cap && !(*names = realloc(*names, (size_t)(*cap = *cap * 2 + 64) * sizeof **names))) abort();
    (*names)[(*n)++] = strdup(name);
    (*names)[(*n)++] = strdup(dir);
  }
  closedir(d);
}

static int cmp_pair(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  cnnc_path = getenv("CNNC"), cc_path = getenv("CC"), cflags = getenv("CNNC_TEST_CFLAGS");
  const char *src = getenv("CNNC_SOURCE_DIR");
  if (!cnnc_path || !*cnnc_path || !cc_path || !*cc_path || !src || !*src) {
    fprintf(stderr, "test_onnx_node: CNNC, CC and CNNC_SOURCE_DIR must be set (run through ctest)\n");
    return 1;
  }
  if (!cflags) cflags = "";
  struct stat st;
  if (stat(NODE_DIR, &st) != 0) {
    printf("test_onnx_node: skipped: %s is missing (apt-get install libonnx-testdata)\n", NODE_DIR);
    return 77;
  }
  char **names = NULL, extra[600];
  int n = 0, cap = 0;
  snprintf(extra, sizeof extra, "%s/tests/onnx_node", src);
  for (int k = 0; k < NSUITES; k++) {
    char dir[600];
    snprintf(dir, sizeof dir, TESTDATA "/%s", suites[k].dir ? suites[k].dir : "");
    find_tests(suites[k].dir ? dir : extra, suites[k].prefix, argc, argv, &names, &n, &cap);
  }
  n /= 2; /* name, dir pairs */
  if (n == 0) {
    fprintf(stderr, "test_onnx_node: no test in %s%s\n", NODE_DIR, argc > 1 ? " matches the arguments" : "");
    return 1;
  }
  qsort(names, (size_t)n, 2 * sizeof *names, cmp_pair);
  size_t bytes = sizeof *sh + (size_t)n * sizeof sh->r[0];
  sh = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return perror("mmap"), 1;
  for (int i = 0; i < n; i++) {
    snprintf(sh->r[i].name, sizeof sh->r[i].name, "%s", names[2 * i]);
    snprintf(sh->r[i].dir, sizeof sh->r[i].dir, "%s", names[2 * i + 1]);
    say(&sh->r[i], R_FAIL, "%s", "not run (its worker died)");
  }
  const char *j = getenv("CNNC_NODE_JOBS");
  int jobs = j && atoi(j) > 0 ? atoi(j) : 2;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int w = 0; w < jobs; w++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) worker(w, n);
    if (pid < 0) return perror("fork"), 1;
  }
  int status, bad = 0;
  while (wait(&status) > 0) bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int rc = report(n, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
  for (int i = 0; i < 2 * n; i++) free(names[i]);
  free(names);
  return rc || bad;
}
