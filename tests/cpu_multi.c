/*
 * cpu_multi.c: an object built for several x86-64 levels (cnnc --cpu
 * x86-64-v4,x86-64-v3,x86-64-v2, named `multi`) runs the variant of the
 * highest level this CPU has, and returns CNNRT_ERR_CPU, outputs
 * untouched, on a CPU below them all (tests/cpu_check.sh runs it here and
 * under qemu-x86_64 as older CPUs).  Each variant's output must equal, bit
 * for bit, that of the one-level object of its level (`single_v2` ...
 * `single_v4`, the same model and weights), run beside it.  What the CPU
 * has comes from the compiler's __builtin_cpu_supports, independently of
 * the objects' cpuid probe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "cpu_level.h"

extern const cnnrt_model multi_model, single_v2_model, single_v3_model, single_v4_model;
const char *multi_cpu(void);


static float *outputs(const cnnrt_model *m, float fill) {
  float *o = malloc((size_t)m->outputs[0].numel * sizeof *o);
  for (int64_t i = 0; o && i < m->outputs[0].numel; i++) o[i] = fill;
  return o;
}

/* rc of m->run on `in` into `out`, with a workspace of its size */
static int run(const cnnrt_model *m, const float *in, float *out) {
  void *ws = aligned_alloc(64, ((size_t)m->workspace_size + 63) / 64 * 64 + 64);
  const float *ins[1] = {in};
  float *outs[1] = {out};
  int rc = ws ? m->run(ins, outs, ws) : -1;
  free(ws);
  return rc;
}

int main(void) {
  const cnnrt_model *m = &multi_model, *single[5] = {NULL, NULL, &single_v2_model, &single_v3_model, &single_v4_model};
  static const char *const names[5] = {NULL, NULL, "x86-64-v2", "x86-64-v3", "x86-64-v4"};
  int lv = cpu_level();
  float *in = malloc((size_t)m->inputs[0].numel * sizeof *in), *out = outputs(m, 12345.0f);
  if (!in || !out) return 2;
  for (int64_t i = 0; i < m->inputs[0].numel; i++) in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  const char *want = names[lv];
  const char *got = multi_cpu();
  if ((want == NULL) != (got == NULL) || (want && strcmp(want, got))) {
    fprintf(stderr, "FAIL: on an x86-64-v%d CPU multi_cpu() says %s, expected %s\n", lv, got ? got : "NULL",
            want ? want : "NULL");
    return 1;
  }
  int bad = 0;
  for (int r = 0; r < 2 && !bad; r++) { /* the second call takes the cached level */
    int rc = run(m, in, out);
    if (rc != (want ? CNNRT_OK : CNNRT_ERR_CPU)) {
      fprintf(stderr, "FAIL: x86-64-v%d CPU: the run returned %d (%s)\n", lv, rc, cnnrt_strerror(rc));
      bad = 1;
    }
  }
  if (!bad && !want) {
    for (int64_t i = 0; i < m->outputs[0].numel && !bad; i++)
      if (out[i] != 12345.0f) {
        fprintf(stderr, "FAIL: the refused run wrote output %lld\n", (long long)i);
        bad = 1;
      }
    if (!bad) printf("below x86-64-v2: CNNRT_ERR_CPU, outputs untouched, multi_cpu() NULL\n");
  } else if (!bad) {
    float *ref = outputs(m, 0.0f);
    int rc = ref ? run(single[lv], in, ref) : -1;
    if (rc != CNNRT_OK || memcmp(ref, out, (size_t)m->outputs[0].numel * sizeof *out)) {
      fprintf(stderr, "FAIL: the %s variant's output differs from the %s object's (rc %d)\n", want, want, rc);
      bad = 1;
    } else {
      printf("x86-64-v%d CPU: the %s variant ran, output equal to the one-level object's\n", lv, want);
    }
    free(ref);
  }
  free(in);
  free(out);
  return bad;
}
