/*
 * cpu_check.c: an object built for an x86-64 level runs where the CPU has
 * it and returns CNNRT_ERR_CPU, outputs untouched, where it does not
 * (tests/cpu_check.sh builds one per level, -DLEVEL=2..4).  What the CPU
 * has comes from the compiler's own __builtin_cpu_supports, independently
 * of the object's cpuid check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "cpu_level.h"

extern const cnnrt_model cpu_model;

static int has_level(int level) { return cpu_level() >= level; }

int main(void) {
  const cnnrt_model *m = &cpu_model;
  float *in = calloc((size_t)m->inputs[0].numel, sizeof *in);
  float *out = malloc((size_t)m->outputs[0].numel * sizeof *out);
  void *ws = aligned_alloc(64, ((size_t)m->workspace_size + 63) / 64 * 64 + 64);
  if (!in || !out || !ws) return 2;
  for (int64_t i = 0; i < m->outputs[0].numel; i++) out[i] = 12345.0f;
  int want = has_level(LEVEL) ? CNNRT_OK : CNNRT_ERR_CPU;
  for (int r = 0; r < 2; r++) { /* the second call uses the cached answer */
    const float *ins[1] = {in};
    float *outs[1] = {out};
    int rc = m->run(ins, outs, ws);
    int rcp = m->run_pool(ins, outs, ws, (size_t)m->workspace_size, NULL);
    if (rc != want || rcp != want) {
      fprintf(stderr, "FAIL: x86-64-v%d object: run %d, run_pool %d, expected %d (%s)\n", LEVEL, rc, rcp, want,
              cnnrt_strerror(want));
      want = -1;
      break;
    }
  }
  int bad = want < 0;
  for (int64_t i = 0; want == CNNRT_ERR_CPU && i < m->outputs[0].numel && !bad; i++)
    if (out[i] != 12345.0f) {
      fprintf(stderr, "FAIL: the refused run wrote output %lld\n", (long long)i);
      bad = 1;
    }
  if (!bad)
    printf("x86-64-v%d object: %s, as this CPU %s it\n", LEVEL, cnnrt_strerror(want),
           want == CNNRT_OK ? "has" : "lacks");
  free(in);
  free(out);
  free(ws);
  return bad;
}
