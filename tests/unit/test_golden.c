/*
 * test_golden.c: end-to-end golden tests.
 *
 * Every directory tests/golden/<case>/ with a model.yaml or a model.onnx is
 * one case (found at run time, so a new case needs no CMake change).  The
 * yaml's `name:` is the directory name (an ONNX model is compiled with
 * `--name <case>`); the directory also holds in_<input>.bin and
 * out_<output>.bin made once with PyTorch by tools/make_golden*.py.  For each
 * case and optimisation level this test
 *
 *   1. runs  $CNNC model.yaml -o TMP/out.o [-O0]   (must exit 0 and write
 *      out.o and out.h),
 *   2. checks with nm -u that out.o needs nothing but memcpy/memset and
 *      the pool entry points cnnrt_pool_threads/cnnrt_parallel_for,
 *   3. compiles tests/golden_glue.c against out.h (the header must compile
 *      on its own) and links it with tests/golden_driver.c (compiled once
 *      per run), out.o and $CNNRT_LIB (and -lpthread for its pools),
 *      without -lm,
 *   4. runs the driver on the case directory; it compares every output with
 *      |got - want| <= 1e-4*|want| + 1e-5, the pooled runs at 1, 2, 3 and 7
 *      threads and on a custom pool bit for bit with the one-thread run, and
 *      checks the run functions' error returns (see golden_driver.c).
 *
 * Programs are started with posix_spawn and argv arrays: no shell, so paths
 * need no quoting.  The environment comes from ctest (tests/CMakeLists.txt):
 * CNNC, CNNC_SOURCE_DIR, CNNRT_INCLUDE, CNNRT_LIB, CC.  A missing variable
 * or an empty tests/golden is a failure, not a skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  char name[256];  /* case = directory = model name */
  char dir[4096];  /* absolute case directory */
  char model[4200];/* its model.yaml or model.onnx */
  bool onnx;
  const char *opt; /* extra cnnc option ("-O0") or NULL for the default */
} Case;

/* snprintf that refuses to truncate (paths here come from the environment). */
static bool fmt(char *dst, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static bool fmt(char *dst, size_t n, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int len = vsnprintf(dst, n, f, ap);
  va_end(ap);
  return len >= 0 && (size_t)len < n;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    fail_msg("environment variable %s is not set (run through ctest)", name);
  return v;
}

/* Runs argv; returns the exit status (or 128+signal).  With `out`, the
 * child's stdout is captured there (NUL-terminated, truncated to n-1). */
static int run(char *const argv[], char *out, size_t n) {
  int fds[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out) {
    close(fds[1]);
    size_t len = 0;
    for (;;) { /* fill `out`, then drain the rest so the child never blocks */
      char sink[4096];
      int full = len + 1 >= n;
      ssize_t r = read(fds[0], full ? sink : out + len, full ? sizeof sink : n - 1 - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      if (!full)
        len += (size_t)r;
    }
    out[len] = 0;
    close(fds[0]);
  }
  if (err != 0) {
    print_error("cannot start %s: %s\n", argv[0], strerror(err));
    return 127;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  if (WIFSIGNALED(status)) {
    print_error("%s killed by signal %d\n", argv[0], WTERMSIG(status));
    return 128 + WTERMSIG(status);
  }
  return WEXITSTATUS(status);
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *nm_program(void) {
  static const char *const candidates[] = {"/usr/bin/nm", "/usr/lib/llvm-19/bin/llvm-nm"};
  for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)
    if (access(candidates[i], X_OK) == 0)
      return candidates[i];
  return "nm";
}

/* Every undefined symbol of the object must be memcpy or memset, or one
 * of the two pool entry points that <name>_run_pool calls
 * (cnnrt_pool_threads, cnnrt_parallel_for; <name>_run calls neither). */
static void check_undefined_symbols(const char *obj) {
  char out[16384];
  char *argv[] = {(char *)nm_program(), "-u", (char *)obj, NULL};
  assert_int_equal(run(argv, out, sizeof out), 0);
  int bad = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    /* "                 U memcpy" (GNU) or "U memcpy" (llvm-nm) */
    char *sym = strrchr(line, ' ');
    sym = sym ? sym + 1 : line;
    if (!*sym)
      continue;
    bool pool = strcmp(sym, "cnnrt_pool_threads") == 0 || strcmp(sym, "cnnrt_parallel_for") == 0;
    if (strcmp(sym, "memcpy") != 0 && strcmp(sym, "memset") != 0 && !pool) {
      print_error("%s: unexpected undefined symbol '%s'\n", obj, sym);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      if (fmt(path, sizeof path, "%s/%s", dir, e->d_name))
        unlink(path);
    }
  closedir(d);
  rmdir(dir);
}

#define PATH_FMT(buf, ...) \
  do { \
    if (!fmt(buf, sizeof buf, __VA_ARGS__)) \
      fail_msg("path or argument too long: %s", #buf); \
  } while (0)

/* The driver (tests/golden_driver.c -DGOLDEN_GLUE) is the same for every
 * case: compiled once per run into g_driver_dir, linked with each case. */
static char g_driver_dir[4096], g_driver_obj[4096];

static int compile_driver(void **state) {
  (void)state;
  const char *src = getenv("CNNC_SOURCE_DIR"), *rt_inc = getenv("CNNRT_INCLUDE"),
             *cc = getenv("CC"), *base = getenv("TMPDIR");
  if (!src || !rt_inc || !cc || !*cc) {
    fprintf(stderr, "test_golden: CNNC_SOURCE_DIR, CNNRT_INCLUDE or CC is not set\n");
    return -1;
  }
  char driver[4096], inc_rt[4096];
  if (!fmt(g_driver_dir, sizeof g_driver_dir, "%s/cnnc_golden_driver_XXXXXX",
           base && *base ? base : "/tmp") ||
      !mkdtemp(g_driver_dir) ||
      !fmt(g_driver_obj, sizeof g_driver_obj, "%s/golden_driver.o", g_driver_dir) ||
      !fmt(driver, sizeof driver, "%s/tests/golden_driver.c", src) ||
      !fmt(inc_rt, sizeof inc_rt, "-I%s", rt_inc)) {
    fprintf(stderr, "test_golden: cannot make a directory for the driver\n");
    return -1;
  }
  char *argv[32] = {(char *)cc, "-std=c11", "-O1", "-Wall", "-Werror", "-DGOLDEN_GLUE", inc_rt,
                    "-c", driver, "-o", g_driver_obj};
  int n = 11;
  char extra[512] = "";
  const char *tf = getenv("CNNC_TEST_CFLAGS");
  if (tf) snprintf(extra, sizeof extra, "%s", tf);
  for (char *save, *tok = strtok_r(extra, " ", &save); tok && n < 31; tok = strtok_r(NULL, " ", &save))
    argv[n++] = tok;
  argv[n] = NULL;
  if (run(argv, NULL, 0) != 0) {
    fprintf(stderr, "test_golden: compiling %s failed\n", driver);
    return -1;
  }
  return 0;
}

static int remove_driver(void **state) {
  (void)state;
  rm_tree(g_driver_dir);
  return 0;
}

/* cnnc's arguments for case c, up to the output options: the model,
 * --name for ONNX, the run's option, CNNC_GOLDEN_EXTRA (one more option for
 * every case: the sanitized build's -O0, tests/CMakeLists.txt) and the
 * case's options.txt (extra cnnc options, e.g. --random-weights SEED for
 * weights too large to commit; tools/make_golden_scale.py), read into
 * `opts`.  Returns the count; argv has room for 16 and 4 more are left. */
static int case_args(const Case *c, char opts[256], char *argv[20]) {
  char optpath[4200];
  opts[0] = 0;
  if (fmt(optpath, sizeof optpath, "%s/options.txt", c->dir)) {
    FILE *of = fopen(optpath, "r");
    if (of) {
      if (!fgets(opts, 256, of)) opts[0] = 0;
      fclose(of);
      opts[strcspn(opts, "\n")] = 0;
    }
  }
  int n = 0;
  argv[n++] = (char *)getenv("CNNC");
  argv[n++] = (char *)c->model;
  if (c->onnx) argv[n++] = "--name", argv[n++] = (char *)c->name;
  if (c->opt) argv[n++] = (char *)c->opt;
  const char *extra_opt = getenv("CNNC_GOLDEN_EXTRA");
  if (extra_opt && *extra_opt) argv[n++] = (char *)extra_opt;
  for (char *save, *tok = strtok_r(opts, " ", &save); tok && n < 16; tok = strtok_r(NULL, " ", &save))
    argv[n++] = tok;
  argv[n] = NULL;
  return n;
}

static void test_case(void **state) {
  const Case *c = *state;
  const char *src = env("CNNC_SOURCE_DIR");
  env("CNNC");
  const char *rt_inc = env("CNNRT_INCLUDE"), *rt_lib = env("CNNRT_LIB"), *cc = env("CC");

  char tmp[4096], obj[4096], hdr[4096], exe[4096];
  const char *base = getenv("TMPDIR");
  PATH_FMT(tmp, "%s/cnnc_golden_%s_XXXXXX", base && *base ? base : "/tmp", c->name);
  assert_non_null(mkdtemp(tmp));
  PATH_FMT(obj, "%s/out.o", tmp);
  PATH_FMT(hdr, "%s/out.h", tmp);
  PATH_FMT(exe, "%s/driver", tmp);

  char opts[256], *compile[20];
  int nc = case_args(c, opts, compile);
  compile[nc++] = "-o", compile[nc++] = obj, compile[nc] = NULL;
  if (run(compile, NULL, 0) != 0)
    fail_msg("%s: cnnc failed (temporary files in %s)", c->name, tmp);
  if (!file_exists(obj) || !file_exists(hdr))
    fail_msg("%s: cnnc exited 0 but did not write %s and %s", c->name, obj, hdr);

  check_undefined_symbols(obj);

  char def_desc[512], def_ws[512], def_wst[512], inc_rt[4096], inc_tmp[4096], glue[4096],
      glue_obj[4096];
  PATH_FMT(def_desc, "-DMODEL_DESC=%s_model", c->name);
  /* the header's macros are upper-cased: NAME_WORKSPACE_SIZE */
  char upper[sizeof c->name];
  for (size_t i = 0; i < sizeof upper; i++)
    upper[i] = (char)toupper((unsigned char)c->name[i]);
  PATH_FMT(def_ws, "-DMODEL_WORKSPACE_MACRO=%s_WORKSPACE_SIZE", upper);
  PATH_FMT(def_wst, "-DMODEL_WORKSPACE_THREADS_MACRO=%s_WORKSPACE_SIZE_THREADS", upper);
  PATH_FMT(inc_rt, "-I%s", rt_inc);
  PATH_FMT(inc_tmp, "-I%s", tmp);
  PATH_FMT(glue, "%s/tests/golden_glue.c", src);
  PATH_FMT(glue_obj, "%s/glue.o", tmp);
  /* the case's part: golden_glue.c against out.h (the driver itself was
   * compiled once, by the group setup) */
  char *compile_glue[32] = {(char *)cc, "-std=c11", "-O1", "-Wall", "-Werror", def_desc,
                            "-DMODEL_HEADER=\"out.h\"", def_ws, def_wst, inc_rt, inc_tmp, "-c",
                            glue, "-o", glue_obj};
  char *link[32] = {(char *)cc, g_driver_obj, glue_obj, obj, (char *)rt_lib, "-lpthread",
                    "-o", exe};
  int ng = 15, nl = 8;
  char extra[512] = "";
  const char *tf = getenv("CNNC_TEST_CFLAGS"); /* sanitizer flags: libcnnrt.a needs them */
  if (tf) snprintf(extra, sizeof extra, "%s", tf);
  for (char *save, *tok = strtok_r(extra, " ", &save); tok && nl < 31; tok = strtok_r(NULL, " ", &save))
    compile_glue[ng++] = link[nl++] = tok;
  compile_glue[ng] = link[nl] = NULL;
  if (run(compile_glue, NULL, 0) != 0)
    fail_msg("%s: compiling golden_glue.c against the header failed "
             "(temporary files in %s)", c->name, tmp);
  if (run(link, NULL, 0) != 0)
    fail_msg("%s: linking the golden driver with the model failed "
             "(temporary files in %s)", c->name, tmp);

  char *drive[] = {exe, (char *)c->dir, NULL};
  if (run(drive, NULL, 0) != 0)
    fail_msg("%s%s%s: outputs or return codes wrong (see above; files in %s)", c->name,
             c->opt ? " " : "", c->opt ? c->opt : "", tmp);
  rm_tree(tmp);
}

/* CNNC_GOLDEN_WHEN=TEXT (the Winograd and fused-depthwise runs): whether
 * the case compiled with the run's option has a layer the option changes,
 * TEXT in the kernel column of `cnnc --check --stats` (no code generation;
 * without such a layer the object is the default run's).  A case whose
 * check fails is kept, for its test to report. */
static bool case_changed(const Case *c, const char *when) {
  static char out[1 << 18];
  char opts[256], *argv[20];
  int n = case_args(c, opts, argv);
  argv[n++] = "--check", argv[n++] = "--stats", argv[n] = NULL;
  return run(argv, out, sizeof out) != 0 || strstr(out, when) != NULL;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const Case *)a)->name, ((const Case *)b)->name);
}

/* Finds tests/golden/<case>/model.{yaml,onnx}; returns the count (sorted cases). */
static int find_cases(const char *src, Case **out) {
  char root[4096];
  DIR *d = fmt(root, sizeof root, "%s/tests/golden", src) ? opendir(root) : NULL;
  if (!d)
    return 0;
  int n = 0, cap = 16;
  Case *cases = calloc((size_t)cap, sizeof *cases);
  struct dirent *e;
  while (cases && (e = readdir(d))) {
    char yaml[4200], onnx[4200];
    if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof cases->name)
      continue;
    bool is_yaml = fmt(yaml, sizeof yaml, "%s/%s/model.yaml", root, e->d_name) && file_exists(yaml);
    bool is_onnx = !is_yaml && fmt(onnx, sizeof onnx, "%s/%s/model.onnx", root, e->d_name) &&
                   file_exists(onnx);
    if (!is_yaml && !is_onnx)
      continue;
    if (n == cap) {
      cap *= 2;
      cases = realloc(cases, (size_t)cap * sizeof *cases);
      if (!cases)
        break;
    }
    if (!fmt(cases[n].dir, sizeof cases[n].dir, "%s/%s", root, e->d_name))
      continue;
    fmt(cases[n].name, sizeof cases[n].name, "%s", e->d_name);
    fmt(cases[n].model, sizeof cases[n].model, "%s", is_yaml ? yaml : onnx);
    cases[n].onnx = is_onnx;
    n++;
  }
  closedir(d);
  if (!cases)
    return 0;
  qsort(cases, (size_t)n, sizeof *cases, by_name);
  *out = cases;
  return n;
}

int main(int argc, char **argv) {
  const char *src = getenv("CNNC_SOURCE_DIR");
  if (!src || !*src) {
    fprintf(stderr, "test_golden: CNNC_SOURCE_DIR is not set (run through ctest)\n");
    return 1;
  }
  /* One cnnc option per run, from CNNC_GOLDEN_OPT (tests/CMakeLists.txt
   * registers a run per optimisation level and code path: default (the
   * host's widest vectors), -O0, AVX-512, AVX2 and SSE2; and one each with Winograd
   * wherever eligible and with --fuse-dw=on).  A code path the host
   * cannot execute is skipped with a message.  Optional filter:
   * test_golden CASE... */
  const char *opt = getenv("CNNC_GOLDEN_OPT");
  if (opt && !*opt) opt = NULL;
  /* A --cpu list (golden_multi) is one object with a variant per level: it
   * runs the best variant this CPU has, so none of the checks below. */
  const char *single = opt && !strchr(opt, ',') ? opt : NULL;
  /* 77: ctest's SKIP_RETURN_CODE (tests/CMakeLists.txt), so a code path
   * this CPU cannot run is reported as skipped, not as passed. */
  if (single && strstr(single, "x86-64-v3") && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    printf("test_golden: skipped: this CPU cannot run %s code (no AVX2/FMA)\n", opt);
    return 77;
  }
  /* Without AVX-512 the default run already compiles for this CPU's AVX2
   * (cnnc's widest vectors here): the same code path, twice the time. */
  if (single && strstr(single, "x86-64-v3") && !__builtin_cpu_supports("avx512f")) {
    printf("test_golden: skipped: %s is the default run's code path on this CPU (AVX2, no AVX-512)\n", opt);
    return 77;
  }
  if (single && strstr(single, "x86-64-v4") &&
      !(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))) {
    printf("test_golden: skipped: this CPU cannot run %s code (no AVX-512 F/BW/DQ/VL)\n", opt);
    return 77;
  }
  Case *found = NULL;
  int n = find_cases(src, &found);
  if (n == 0) {
    fprintf(stderr, "test_golden: no cases in %s/tests/golden/*/model.{yaml,onnx}\n", src);
    return 1;
  }
  const char *const opts[] = {opt};
  const int nopt = 1;
  Case *cases = calloc((size_t)n * nopt, sizeof *cases);
  struct CMUnitTest *tests = calloc((size_t)n * nopt, sizeof *tests);
  char (*names)[300] = calloc((size_t)n * nopt, sizeof *names);
  if (!cases || !tests || !names)
    return 1;
  /* CNNC_GOLDEN_SHARD=k/n: only the cases whose index (in name order) is
   * k modulo n (the sanitized build's variant runs; tests/CMakeLists.txt) */
  int shard_k = 0, shard_n = 1;
  const char *shard = getenv("CNNC_GOLDEN_SHARD");
  if (shard && *shard && (sscanf(shard, "%d/%d", &shard_k, &shard_n) != 2 || shard_n < 1 || shard_k < 0 ||
                          shard_k >= shard_n)) {
    fprintf(stderr, "test_golden: CNNC_GOLDEN_SHARD must be k/n with 0 <= k < n, not '%s'\n", shard);
    return 1;
  }
  const char *when = getenv("CNNC_GOLDEN_WHEN");
  if (when && !*when) when = NULL;
  int m = 0, considered = 0;
  for (int i = 0; i < n; i++) {
    int wanted = argc < 2 && i % shard_n == shard_k; /* named cases: any shard */
    for (int a = 1; a < argc; a++)
      wanted |= strcmp(argv[a], found[i].name) == 0;
    if (!wanted)
      continue;
    considered++;
    found[i].opt = opt;
    if (when && !case_changed(&found[i], when))
      continue;
    for (int o = 0; o < nopt; o++, m++) {
      cases[m] = found[i];
      cases[m].opt = opts[o];
      fmt(names[m], sizeof names[m], "%s%s%s", found[i].name, opts[o] ? " " : "",
               opts[o] ? opts[o] : "");
      tests[m] = (struct CMUnitTest){names[m], test_case, NULL, NULL, &cases[m]};
    }
  }
  if (m == 0) {
    if (when)
      fprintf(stderr, "test_golden: no case has a layer that %s changes ('%s' in cnnc --check --stats)\n",
              opt ? opt : "", when);
    else
      fprintf(stderr, "test_golden: no case matches the arguments\n");
    return 1;
  }
  if (when)
    printf("test_golden: %d of %d cases have a layer that %s changes ('%s' in cnnc --check --stats); "
           "the others compile to the default run's object\n", m, considered, opt ? opt : "", when);
  int rc = _cmocka_run_group_tests("golden", tests, (size_t)m, compile_driver, remove_driver);
  free(names);
  free(tests);
  free(cases);
  free(found);
  return rc;
}
