/*
 * profile_ticks.c: a model compiled with --profile --name profiled counts
 * ticks on this target (x86-64: the time-stamp counter, ctest
 * profile_print; AArch64 under qemu-aarch64, tests/cross.sh: the generic
 * timer CNTVCT_EL0, read by an inline-asm mrs).  Runs the model three
 * times on zeros and fails unless some layer counted ticks, then checks
 * cnnrt_profile_print's table of profiled_profile: the counter's rate is
 * known, one line per profiled call in order with its layer's name, the
 * shares summing to 100% and the milliseconds to the total line.
 *
 *   cc -I runtime -I DIR tests/profile_ticks.c DIR/profiled.o runtime/cnnrt.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiled.h"

static int check_table(void);

int main(void) {
  const cnnrt_model *m = &profiled_model;
  float **io = calloc((size_t)(m->num_inputs + m->num_outputs), sizeof *io);
  if (!io) return 2;
  for (int64_t i = 0; i < m->num_inputs; i++) io[i] = calloc((size_t)m->inputs[i].numel, sizeof(float));
  for (int64_t i = 0; i < m->num_outputs; i++)
    io[m->num_inputs + i] = calloc((size_t)m->outputs[i].numel, sizeof(float));
  void *ws = aligned_alloc(64, ((size_t)m->workspace_size + 63) / 64 * 64 + 64);
  for (int r = 0; r < 3; r++)
    if (m->run((const float *const *)io, io + m->num_inputs, ws) != CNNRT_OK) return 1;
  int64_t sum = 0;
  for (int64_t k = 0; k < profiled_profile_count; k++) sum += profiled_profile_ticks[k];
  printf("profile: %lld layers, %lld ticks in 3 runs\n", (long long)profiled_profile_count, (long long)sum);
  for (int64_t i = 0; i < m->num_inputs + m->num_outputs; i++) free(io[i]);
  free(io);
  free(ws);
  return sum > 0 ? check_table() : 1;
}

/* cnnrt_profile_print's table of the runs above, read back. */
static int check_table(void) {
  if (cnnrt_profile_rate() <= 0) {
    fprintf(stderr, "FAIL: cnnrt_profile_rate() knows no rate here\n");
    return 1;
  }
  FILE *f = tmpfile();
  if (!f || cnnrt_profile_print(&profiled_profile, 3, 0, f) != 0) return 1;
  if (cnnrt_profile_print(&profiled_profile, 0, 0, f) != -1 || cnnrt_profile_print(NULL, 1, 0, f) != -1) {
    fprintf(stderr, "FAIL: cnnrt_profile_print took runs = 0 or no profile\n");
    return 1;
  }
  rewind(f);
  char line[512];
  int64_t k = 0;
  double ms = 0, share = 0, total = -1;
  while (fgets(line, sizeof line, f)) {
    fputs(line, stdout);
    if (line[0] == '#') {
      sscanf(line, "# total %lf ms per run", &total);
      continue;
    }
    double t, sh, gf;
    char name[256];
    if (sscanf(line, "%lf %lf%% %lf %255[^\n]", &t, &sh, &gf, name) != 4 || k >= profiled_profile_count ||
        strcmp(name, profiled_profile_layers[k])) {
      fprintf(stderr, "FAIL: line %lld of the table: %s", (long long)k, line);
      return 1;
    }
    ms += t, share += sh, k++;
  }
  fclose(f);
  if (k != profiled_profile_count || share < 99.5 || share > 100.5 || total < 0 || ms < total * 0.99 - 1e-3 ||
      ms > total * 1.01 + 1e-3) {
    fprintf(stderr, "FAIL: %lld of %lld layers, shares %.2f%%, %.4f ms against a total of %.4f\n", (long long)k,
            (long long)profiled_profile_count, share, ms, total);
    return 1;
  }
  printf("cnnrt_profile_print: %lld layers, shares %.2f%%, %.4f ms per run\n", (long long)k, share, total);
  return 0;
}
