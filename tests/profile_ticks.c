/*
 * profile_ticks.c: a model compiled with --profile --name profiled counts
 * ticks on this target (tests/cross.sh, AArch64 under qemu-aarch64: the
 * generic timer CNTVCT_EL0, read by an inline-asm mrs).  Runs the model
 * three times on zeros and fails unless some layer counted ticks.
 *
 *   cc -I runtime -I DIR tests/profile_ticks.c DIR/profiled.o runtime/cnnrt.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiled.h"

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
  return sum > 0 ? 0 : 1;
}
