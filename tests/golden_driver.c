/*
 * golden_driver.c: runs one compiled model on a golden case and compares.
 *
 Built once per run by tests/unit/test_golden.c, with -DGOLDEN_GLUE, and
 * linked with each case's tests/golden_glue.c (which includes the case's
 * header and gives its descriptor and workspace macros); or on its own for
 * one model (tests/cross.sh, tools/fuzz_diff.py):
 *
 *   cc -DMODEL_DESC=<case>_model [-DMODEL_HEADER='"out.h"'
 *      -DMODEL_WORKSPACE_MACRO=<CASE>_WORKSPACE_SIZE
 *      -DMODEL_WORKSPACE_THREADS_MACRO=<CASE>_WORKSPACE_SIZE_THREADS]
 *      golden_driver.c out.o libcnnrt.a -o driver
 *   driver <case dir>
 *
 * The model is reached only through its cnnrt_model descriptor, so one
 * source serves every model.  The case directory holds in_<input>.bin and
 * out_<output>.bin (raw little-endian float32, PyTorch's values).  An
 * element passes when
 *
 *     |got - want| <= 1e-4 * |want| + 1e-5
 *
 * (NaN only where PyTorch has NaN, infinities exactly).  Besides the values
 * the driver checks the contract of the run function: it rejects a NULL
 * input, output or workspace with CNNRT_ERR_NULL and a misaligned workspace
 * with CNNRT_ERR_ALIGN, writes no output when it fails, leaves its inputs
 * alone, does not depend on the workspace's prior contents (it starts out
 * as NaN bytes) and gives the same result when run again.
 *
 * Threads: the pooled run (m->run_pool) must give exactly the bits of the
 * one-thread run, memcmp on every output, at 1, 2, 3 and 7 threads
 * (cnnrt_pool_new pools, made once per process), with a NULL pool, and on
 * a custom pool that claims 4 threads but runs the tasks in reverse order
 * on the calling thread.  Each of those runs gets a workspace of exactly
 * cnnrt_workspace_size(m, n) bytes that ends where a PROT_NONE guard page
 * begins (one mapping, each workspace placed at its end), so a run that
 * writes or reads past its workspace crashes the driver.  A workspace
 * sized for 2 threads given to the 7-thread pool must give the same bits
 * (the run uses fewer threads; the guard page proves it stays inside), and
 * one byte less than one thread needs must be refused with
 * CNNRT_ERR_WORKSPACE, outputs untouched.  The header's
 * WORKSPACE_SIZE_THREADS(n) must equal the descriptor's size for n threads.
 * The few cases whose run touches 128 MiB or more (LARGE_RUN_BYTES) check
 * the 2- and 7-thread pools only.
 *
 * No libm: the link against out.o alone proves the object needs none.
 */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cnnrt.h"
#ifdef GOLDEN_GLUE
/* tests/golden_glue.c: the descriptor, and the header's WORKSPACE_SIZE
 * ([0]) and WORKSPACE_SIZE_THREADS(n) ([n], n = 1..9) */
extern const cnnrt_model *const golden_model;
extern const long long golden_header_ws[10];
#define MODEL_PTR golden_model
#define MODEL_WORKSPACE_MACRO golden_header_ws[0]
#define MODEL_WORKSPACE_THREADS_MACRO(n) golden_header_ws[n]
#else
#ifdef MODEL_HEADER
#include MODEL_HEADER /* the generated header must compile on its own */
#endif
#ifndef MODEL_DESC
#error "compile with -DMODEL_DESC=<name>_model (or -DGOLDEN_GLUE)"
#endif
extern const cnnrt_model MODEL_DESC;
#define MODEL_PTR (&MODEL_DESC)
#endif

#define REL_TOL 1e-4
#define ABS_TOL 1e-5

static int failures;

#define CHECK(cond, ...)                    \
  do {                                      \
    if (!(cond)) {                          \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                  \
      failures++;                           \
    }                                       \
  } while (0)

static int is_nan(double x) { return x != x; }
static int is_inf(double x) { return !is_nan(x) && is_nan(x - x); }
static double absd(double x) { return x < 0 ? -x : x; }

static void *xalloc(size_t n) {
  void *p = cnnrt_alloc(n);
  if (!p) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

static float *alloc_tensor(const cnnrt_tensor_info *t) {
  return xalloc((size_t)t->numel * sizeof(float));
}

static void fill_nan(void *p, size_t bytes) { memset(p, 0xff, bytes); }

/* Writes "[i0, i1, ...]" for flat index `flat` of shape t. */
static void format_index(const cnnrt_tensor_info *t, int64_t flat, char *buf, size_t n) {
  int64_t idx[CNNRT_MAX_RANK];
  for (int64_t d = t->rank - 1; d >= 0; d--) {
    idx[d] = t->shape[d] ? flat % t->shape[d] : 0;
    flat = t->shape[d] ? flat / t->shape[d] : 0;
  }
  size_t len = (size_t)snprintf(buf, n, "[");
  for (int64_t d = 0; d < t->rank && len < n; d++)
    len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)idx[d]);
  if (len < n)
    snprintf(buf + len, n - len, "]");
}

/* How far one element is from passing: <= 1 passes, > 1 fails. */
static double badness(double got, double want) {
  if (is_nan(want))
    return is_nan(got) ? 0 : 1e30;
  if (is_inf(want))
    return got == want ? 0 : 1e30;
  if (is_nan(got) || is_inf(got))
    return 1e30;
  return absd(got - want) / (REL_TOL * absd(want) + ABS_TOL);
}

static void compare(const cnnrt_tensor_info *t, const float *got, const float *want) {
  int64_t bad = 0, worst = 0;
  double worst_b = -1;
  for (int64_t i = 0; i < t->numel; i++) {
    double b = badness(got[i], want[i]);
    if (b > 1)
      bad++;
    if (b > worst_b) {
      worst_b = b;
      worst = i;
    }
  }
  char where[128] = "[]";
  if (t->numel > 0)
    format_index(t, worst, where, sizeof where);
  printf("  output %s: %lld elements, %lld out of tolerance", t->name,
         (long long)t->numel, (long long)bad);
  if (t->numel > 0)
    printf("; worst %s (flat %lld): got %.9g, want %.9g, |diff| %.3g, allowed %.3g",
           where, (long long)worst, got[worst], want[worst],
           absd((double)got[worst] - want[worst]), REL_TOL * absd(want[worst]) + ABS_TOL);
  printf("\n");
  CHECK(bad == 0, "output %s: %lld of %lld elements differ from PyTorch beyond "
        "1e-4*|want| + 1e-5", t->name, (long long)bad, (long long)t->numel);
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* A generated input (too large to commit), from in_<name>.gen holding
 * "uniform SEED LO HI [SKIP]": element i is LO + (HI - LO) * u_i / 2^24
 * with u_i the top 24 bits of splitmix64 output SKIP + i + 1 from SEED,
 * computed in double and rounded once (tools/make_golden_scale.py does the
 * same; with SEED and SKIP of a --random-weights stream the input follows
 * a weight row, so that a dot product adds only positive terms). */
static int generate(const char *path, float *dst, int64_t n) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  unsigned long long seed, skip = 0;
  double lo, hi;
  int got = fscanf(f, "uniform %llu %lf %lf %llu", &seed, &lo, &hi, &skip);
  fclose(f);
  if (got < 3) {
    fprintf(stderr, "%s: expected 'uniform SEED LO HI [SKIP]'\n", path);
    return -1;
  }
  uint64_t state = seed;
  for (unsigned long long i = 0; i < skip; i++)
    splitmix64(&state);
  for (int64_t i = 0; i < n; i++)
    dst[i] = (float)(lo + (hi - lo) * (double)(splitmix64(&state) >> 40) / 16777216.0);
  return 0;
}

static int read_tensor(const char *dir, const char *prefix, const cnnrt_tensor_info *t,
                       float *dst) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s_%s.gen", dir, prefix, t->name);
  if (generate(path, dst, t->numel) == 0)
    return 0;
  snprintf(path, sizeof path, "%s/%s_%s.bin", dir, prefix, t->name);
  return cnnrt_read_f32(path, dst, (size_t)t->numel);
}

static int outputs_untouched(const cnnrt_model *m, float **outs) {
  for (int64_t i = 0; i < m->num_outputs; i++)
    for (int64_t j = 0; j < m->outputs[i].numel; j++)
      if (!is_nan(outs[i][j]))
        return 0;
  return 1;
}

/* One call that must fail with `want_rc` and write nothing. */
static void expect_error(const cnnrt_model *m, const float **ins, float **outs, void *ws,
                         int want_rc, const char *what) {
  for (int64_t i = 0; i < m->num_outputs; i++)
    fill_nan(outs[i], (size_t)m->outputs[i].numel * sizeof(float));
  int rc = m->run((const float *const *)ins, (float *const *)outs, ws);
  CHECK(rc == want_rc, "%s: run returned %d (%s), expected %d (%s)", what, rc,
        cnnrt_strerror(rc), want_rc, cnnrt_strerror(want_rc));
  CHECK(outputs_untouched(m, outs), "%s: run wrote outputs although it failed", what);
}

static void check_contract(const cnnrt_model *m, const float **ins, float **outs, void *ws) {
  for (int64_t i = 0; i < m->num_inputs; i++) {
    const float *saved = ins[i];
    ins[i] = NULL;
    expect_error(m, ins, outs, ws, CNNRT_ERR_NULL, "NULL input");
    ins[i] = saved;
  }
  for (int64_t i = 0; i < m->num_outputs; i++) {
    float *saved = outs[i];
    outs[i] = NULL;
    /* the other outputs must stay untouched; this one is NULL */
    int rc = m->run((const float *const *)ins, (float *const *)outs, ws);
    CHECK(rc == CNNRT_ERR_NULL, "NULL output %s: run returned %d, expected %d",
          m->outputs[i].name, rc, CNNRT_ERR_NULL);
    outs[i] = saved;
  }
  if (m->workspace_size > 0) {
    expect_error(m, ins, outs, NULL, CNNRT_ERR_NULL, "NULL workspace");
    /* misaligned but still big enough, in case the check is missing */
    unsigned char *big = xalloc((size_t)m->workspace_size + CNNRT_WORKSPACE_ALIGN);
    expect_error(m, ins, outs, big + 4, CNNRT_ERR_ALIGN, "workspace misaligned by 4");
    expect_error(m, ins, outs, big + 32, CNNRT_ERR_ALIGN, "workspace misaligned by 32");
    cnnrt_free(big);
  }
}

/* ---- threads ---- */

/* One mapping of at least `size` bytes followed by an inaccessible page;
 * returns where that page begins.  Each pooled run's workspace is placed
 * to end there, so the byte after it is the guard page.  One mapping for
 * all runs: the scale_* cases have workspaces of 600 MB. */
static unsigned char *guarded_end(size_t size, void **map, size_t *maplen) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (size + page - 1) / page * page;
  *maplen = body + page;
  unsigned char *p = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || mprotect(p + body, page, PROT_NONE) != 0) {
    fprintf(stderr, "mmap/mprotect of %zu bytes failed\n", *maplen);
    exit(2);
  }
  *map = p;
  fill_nan(p, body);
  return p + body;
}

/* The workspace is NaN-filled again before each run up to this size (the
 * first run, in main, checks that nothing unwritten is read; beyond it
 * only the per-thread scratch slots are refilled). */
#define REFILL_BYTES ((size_t)64 << 20)

static void reverse_on_one_thread(void *ctx, int ntasks, cnnrt_task_fn task, void *arg) {
  (void)ctx;
  for (int i = ntasks - 1; i >= 0; i--)
    task(arg, i);
}

/* One pooled run on a guarded workspace of `size` bytes: must return
 * `want_rc` and, when that is CNNRT_OK, reproduce `firsts` bit for bit. */
static void pooled_run(const cnnrt_model *m, const float **ins, float **outs, float **firsts,
                       unsigned char *end, size_t size, cnnrt_pool *pool, int want_rc,
                       const char *what) {
  unsigned char *ws = end - size;
  size_t one = (size_t)m->workspace_size;
  if (size <= REFILL_BYTES)
    fill_nan(ws, size);
  else if (size > one)
    fill_nan(ws + one, size - one);
  for (int64_t i = 0; i < m->num_outputs; i++)
    fill_nan(outs[i], (size_t)m->outputs[i].numel * sizeof(float));
  int rc = m->run_pool((const float *const *)ins, (float *const *)outs, ws, size, pool);
  CHECK(rc == want_rc, "%s (workspace %zu bytes): run_pool returned %d (%s), expected %d", what, size,
        rc, cnnrt_strerror(rc), want_rc);
  if (want_rc != CNNRT_OK)
    CHECK(outputs_untouched(m, outs), "%s: run_pool wrote outputs although it failed", what);
  else
    for (int64_t i = 0; i < m->num_outputs; i++)
      CHECK(memcmp(outs[i], firsts[i], (size_t)m->outputs[i].numel * sizeof(float)) == 0,
            "%s: output %s differs from the one-thread run's bits", what, m->outputs[i].name);
}

/* Bytes a run touches: its inputs and its workspace. */
static size_t run_bytes(const cnnrt_model *m) {
  size_t n = (size_t)m->workspace_size;
  for (int64_t i = 0; i < m->num_inputs; i++)
    n += (size_t)m->inputs[i].numel * sizeof(float);
  return n;
}

/* Cases whose run touches at least this much (the scale_* cases of 2^24
 * and more values: 6-9 s a run under qemu-aarch64) take the pooled runs
 * on 2 and 7 threads only; every other case covers the rest (1 and 3
 * threads, the reversed custom pool, 7 threads on a 2-thread workspace). */
#define LARGE_RUN_BYTES ((size_t)128 << 20)

static void check_threads(const cnnrt_model *m, const float **ins, float **outs, float **firsts) {
  static const int counts[] = {1, 2, 3, 7};
  enum { NPOOLS = sizeof counts / sizeof *counts };
  cnnrt_pool *pools[NPOOLS];
  char what[64];
  for (int p = 0; p < NPOOLS; p++) {
    pools[p] = cnnrt_pool_new(counts[p]);
    if (!pools[p]) {
      fprintf(stderr, "cnnrt_pool_new(%d) failed\n", counts[p]);
      exit(2);
    }
  }
  cnnrt_pool *reverse = cnnrt_pool_custom(4, reverse_on_one_thread, NULL);
  CHECK(m->workspace_max_threads >= 1 && m->workspace_thread_size >= 0 &&
        cnnrt_workspace_size(m, 1) == m->workspace_size,
        "descriptor: workspace for threads malformed (%lld bytes per thread, up to %lld)",
        (long long)m->workspace_thread_size, (long long)m->workspace_max_threads);
#ifdef MODEL_WORKSPACE_THREADS_MACRO
#ifndef GOLDEN_GLUE /* golden_glue.c asserts it */
  _Static_assert(MODEL_WORKSPACE_THREADS_MACRO(1) == MODEL_WORKSPACE_MACRO,
                 "WORKSPACE_SIZE_THREADS(1) is WORKSPACE_SIZE");
#endif
  for (int n = 1; n <= 9; n++)
    CHECK((long long)MODEL_WORKSPACE_THREADS_MACRO(n) == (long long)cnnrt_workspace_size(m, n),
          "header says %lld bytes for %d threads, descriptor %lld",
          (long long)MODEL_WORKSPACE_THREADS_MACRO(n), n, (long long)cnnrt_workspace_size(m, n));
#endif
  void *map;
  size_t maplen;
  unsigned char *end = guarded_end((size_t)cnnrt_workspace_size(m, 7), &map, &maplen);
  cnnrt_pool *seven = pools[NPOOLS - 1];
  int large = run_bytes(m) >= LARGE_RUN_BYTES;
  if (!large)
    pooled_run(m, ins, outs, firsts, end, (size_t)m->workspace_size, NULL, CNNRT_OK, "NULL pool");
  for (int p = 0; p < NPOOLS; p++) {
    if (large && counts[p] != 2)
      continue;
    snprintf(what, sizeof what, "%d-thread pool", counts[p]);
    pooled_run(m, ins, outs, firsts, end, (size_t)cnnrt_workspace_size(m, counts[p]), pools[p], CNNRT_OK,
               what);
  }
  if (!large) {
    pooled_run(m, ins, outs, firsts, end, (size_t)cnnrt_workspace_size(m, 4), reverse, CNNRT_OK,
               "custom pool, tasks reversed on one thread");
    pooled_run(m, ins, outs, firsts, end, (size_t)cnnrt_workspace_size(m, 2), seven, CNNRT_OK,
               "7-thread pool, workspace for 2 threads");
  }
  pooled_run(m, ins, outs, firsts, end, (size_t)m->workspace_size, seven, CNNRT_OK,
             "7-thread pool, workspace for 1 thread");
  if (m->workspace_size > 0)
    pooled_run(m, ins, outs, firsts, end, (size_t)m->workspace_size - 1, seven, CNNRT_ERR_WORKSPACE,
               "7-thread pool, workspace one byte short");
  munmap(map, maplen);
  for (int p = 0; p < NPOOLS; p++)
    cnnrt_pool_free(pools[p]);
  cnnrt_pool_free(reverse);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE_DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  const cnnrt_model *m = MODEL_PTR;
  printf("model %s: %lld input(s), %lld output(s), workspace %lld bytes\n", m->name,
         (long long)m->num_inputs, (long long)m->num_outputs, (long long)m->workspace_size);
  if (m->abi_version != CNNRT_ABI_VERSION || !m->run || !m->run_pool || m->num_inputs < 1 ||
      m->num_outputs < 1 || m->workspace_size < 0) {
    fprintf(stderr, "FAIL: malformed descriptor (abi %lld, want %d)\n",
            (long long)m->abi_version, CNNRT_ABI_VERSION);
    return 1;
  }
#ifdef MODEL_WORKSPACE_MACRO
  CHECK((long long)(MODEL_WORKSPACE_MACRO) == (long long)m->workspace_size,
        "header says workspace %lld bytes, descriptor %lld", (long long)(MODEL_WORKSPACE_MACRO),
        (long long)m->workspace_size);
#endif

  const float **ins = calloc((size_t)m->num_inputs, sizeof *ins);
  float **saved_ins = calloc((size_t)m->num_inputs, sizeof *saved_ins);
  float **outs = calloc((size_t)m->num_outputs, sizeof *outs);
  float **wants = calloc((size_t)m->num_outputs, sizeof *wants);
  float **firsts = calloc((size_t)m->num_outputs, sizeof *firsts);
  if (!ins || !saved_ins || !outs || !wants || !firsts)
    return 2;
  for (int64_t i = 0; i < m->num_inputs; i++) {
    float *in = alloc_tensor(&m->inputs[i]);
    saved_ins[i] = alloc_tensor(&m->inputs[i]);
    if (read_tensor(dir, "in", &m->inputs[i], in) != 0)
      return 1;
    memcpy(saved_ins[i], in, (size_t)m->inputs[i].numel * sizeof(float));
    ins[i] = in;
  }
  for (int64_t i = 0; i < m->num_outputs; i++) {
    outs[i] = alloc_tensor(&m->outputs[i]);
    wants[i] = alloc_tensor(&m->outputs[i]);
    firsts[i] = alloc_tensor(&m->outputs[i]);
    fill_nan(outs[i], (size_t)m->outputs[i].numel * sizeof(float));
    if (read_tensor(dir, "out", &m->outputs[i], wants[i]) != 0)
      return 1;
  }

  /* NaN bytes in the workspace expose reads of memory the code never wrote. */
  void *ws = m->workspace_size > 0 ? xalloc((size_t)m->workspace_size) : NULL;
  if (ws)
    fill_nan(ws, (size_t)m->workspace_size);
  int rc = m->run((const float *const *)ins, (float *const *)outs, ws);
  CHECK(rc == CNNRT_OK, "run returned %d (%s)", rc, cnnrt_strerror(rc));
  for (int64_t i = 0; i < m->num_outputs; i++) {
    compare(&m->outputs[i], outs[i], wants[i]);
    memcpy(firsts[i], outs[i], (size_t)m->outputs[i].numel * sizeof(float));
  }
  for (int64_t i = 0; i < m->num_inputs; i++)
    CHECK(memcmp(ins[i], saved_ins[i], (size_t)m->inputs[i].numel * sizeof(float)) == 0,
          "run modified input %s", m->inputs[i].name);

  /* Same workspace again (now holding the previous run's data). */
  for (int64_t i = 0; i < m->num_outputs; i++)
    fill_nan(outs[i], (size_t)m->outputs[i].numel * sizeof(float));
  rc = m->run((const float *const *)ins, (float *const *)outs, ws);
  CHECK(rc == CNNRT_OK, "second run returned %d (%s)", rc, cnnrt_strerror(rc));
  for (int64_t i = 0; i < m->num_outputs; i++)
    CHECK(memcmp(outs[i], firsts[i], (size_t)m->outputs[i].numel * sizeof(float)) == 0,
          "output %s differs between two runs on the same input", m->outputs[i].name);

  check_contract(m, ins, outs, ws);
  check_threads(m, ins, outs, firsts);

  cnnrt_free(ws);
  for (int64_t i = 0; i < m->num_inputs; i++) {
    cnnrt_free((void *)ins[i]);
    cnnrt_free(saved_ins[i]);
  }
  for (int64_t i = 0; i < m->num_outputs; i++) {
    cnnrt_free(outs[i]);
    cnnrt_free(wants[i]);
    cnnrt_free(firsts[i]);
  }
  free(ins);
  free(saved_ins);
  free(outs);
  free(wants);
  free(firsts);
  printf("%s: %s\n", m->name, failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
