/*
 * model.c: runs a cnnc model on a golden case, bare metal.
 *
 * The model is reached through its cnnrt_model descriptor, so this file
 * serves any model (like tests/golden_driver.c on a host); CMakeLists.txt
 * passes its header, descriptor and workspace size macros.  Inputs and
 * PyTorch's outputs are arrays in ROM (case.h); the workspace is a static,
 * 64-byte aligned array in RAM.  For each output the program prints the
 * largest difference from PyTorch and the index of its largest value (the
 * predicted class of a classifier) beside PyTorch's, and it exits non-zero
 * unless every value is within the golden tolerance
 * |got - want| <= 1e-4 |want| + 1e-5 (docs/golden.md).  The argmax is not
 * part of the check: outputs that are not class scores can have ties.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "case.h"
#include "cnnrt.h"
#include "cycles.h"
#include "semihost.h"
#include MODEL_HEADER

extern const cnnrt_model MODEL_DESC;

/* The stack (sections.ld): [_estack - __stack_size, _estack). */
extern char _estack[], __stack_size[];
#define STACK_PAINT 0xA5A5A5A5u

/* Paints the free stack below the caller's frame, so that stack_used()
 * can find the deepest word a run wrote. */
static void __attribute__((noinline)) stack_paint(void) {
  volatile uint32_t *p = (volatile uint32_t *)(_estack - (uintptr_t)__stack_size);
  volatile uint32_t *sp = (volatile uint32_t *)__builtin_frame_address(0) - 64;
  while (p < sp) *p++ = STACK_PAINT;
}

static uint32_t stack_used(void) {
  const uint32_t *p = (const uint32_t *)(_estack - (uintptr_t)__stack_size);
  while (p < (const uint32_t *)_estack && *p == STACK_PAINT) p++;
  return (uint32_t)(_estack - (const char *)p);
}

/* +1: a model may need no workspace at all */
static unsigned char workspace[MODEL_WORKSPACE_SIZE + 1] __attribute__((aligned(CNNRT_WORKSPACE_ALIGN)));

static const CaseTensor *find(const CaseTensor *t, const cnnrt_tensor_info *info) {
  for (; t->name; t++)
    if (!strcmp(t->name, info->name) && t->count == (uint32_t)info->numel) return t;
  sh_puts("no case data of the right size for tensor ");
  sh_puts(info->name);
  sh_puts("\n");
  return NULL;
}

static uint32_t argmax(const float *v, uint32_t n) {
  uint32_t best = 0;
  for (uint32_t i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

static float absf(float x) { return x < 0 ? -x : x; }

/* Prints how one output compares with PyTorch's; returns 0 if within tolerance. */
static int compare(const CaseTensor *t) {
  uint32_t bad = 0;
  float worst = 0;
  for (uint32_t i = 0; i < t->count; i++) {
    float g = t->got[i], w = t->want[i], d = absf(g - w);
    /* as tests/golden_driver.c: NaN only where PyTorch has NaN, infinities exactly */
    bool ok = w != w ? g != g : absf(w) > 3.4e38f ? g == w : d <= 1e-4f * absf(w) + 1e-5f;
    if (!ok) bad++;
    if (w == w && absf(w) <= 3.4e38f && (d > worst || d != d)) worst = d; /* finite wants */
  }
  uint32_t got = argmax(t->got, t->count), want = argmax(t->want, t->count);
  sh_puts("output ");
  sh_puts(t->name);
  sh_puts(": argmax ");
  sh_put_u32(got);
  sh_puts(" (PyTorch ");
  sh_put_u32(want);
  sh_puts("), max |diff| ");
  sh_put_f32(worst, 9);
  sh_puts(", ");
  sh_put_u32(bad);
  sh_puts(" of ");
  sh_put_u32(t->count);
  sh_puts(" out of tolerance\n");
  return bad != 0;
}

int main(void) {
  const cnnrt_model *m = &MODEL_DESC;
  enum { MAX_TENSORS = 32 };
  const float *in[MAX_TENSORS];
  float *out[MAX_TENSORS];
  const CaseTensor *outs[MAX_TENSORS];
  if (m->num_inputs > MAX_TENSORS || m->num_outputs > MAX_TENSORS) {
    sh_puts("more than 32 inputs or outputs\n");
    return 2;
  }
  for (int64_t i = 0; i < m->num_inputs; i++) {
    const CaseTensor *t = find(case_inputs, &m->inputs[i]);
    if (!t) return 2;
    in[i] = t->want;
  }
  for (int64_t i = 0; i < m->num_outputs; i++) {
    outs[i] = find(case_outputs, &m->outputs[i]);
    if (!outs[i]) return 2;
    out[i] = outs[i]->got;
  }
  sh_puts("model ");
  sh_puts(m->name);
  sh_puts(", workspace ");
  sh_put_u32((uint32_t)m->workspace_size);
  sh_puts(" bytes\n");
  bool timed = cycles_start();
  /* main's own part, from the top of the stack down to one of its locals
   * (its frame's bottom, to within a few words) */
  volatile char mark = 0;
  uint32_t main_part = (uint32_t)(_estack - (const char *)&mark);
  stack_paint();
  uint32_t t0 = cycles_now();
  int rc = m->run(in, out, workspace);
  uint32_t t1 = cycles_now();
  uint32_t stack = stack_used();
  if (rc != CNNRT_OK) {
    sh_puts("run failed with code ");
    sh_put_i32(rc);
    sh_puts("\n");
    return 1;
  }
  int bad = 0;
  for (int64_t i = 0; i < m->num_outputs; i++) bad += compare(outs[i]);
  if (timed) {
    sh_puts("cycles ");
    sh_put_u32(t1 - t0);
    sh_puts("\n");
  }
  /* the deepest stack use of main and the run, and the run's part (below
   * main's frame: what cnnc --stats estimates; the footprint in README.md) */
  sh_puts("stack ");
  sh_put_u32(stack);
  sh_puts(" bytes, the run about ");
  sh_put_u32(stack - main_part);
  sh_puts(" bytes\n");
  sh_puts(bad ? "FAIL\n" : "ok\n");
  return bad != 0;
}
