/*
 * main.c: a first bare-metal program: float arithmetic, printed over
 * semihosting, timed with the DWT cycle counter when there is one.
 *
 * It computes sqrt(2) by Newton's method, pi by the Leibniz series and a
 * 16-element dot product, checks them against known values (so that a
 * broken FPU setup or float ABI shows as a failure, not just odd output)
 * and returns non-zero if any is off.  Built with -DFAULT_TEST it then
 * reads from an unmapped address, to show the fault handler at work.
 */
#include <stdint.h>

#include "cycles.h"
#include "semihost.h"

static float absf(float x) { return x < 0 ? -x : x; }

/* volatile inputs keep the compiler from folding everything at build time */
static volatile float two = 2.0f;
static volatile int terms = 100000;

static float newton_sqrt(float a) {
  float x = a;
  for (int i = 0; i < 20; i++) x = 0.5f * (x + a / x);
  return x;
}

static float leibniz_pi(int n) {
  float s = 0;
  for (int k = n - 1; k >= 0; k--) s += (k & 1 ? -4.0f : 4.0f) / (float)(2 * k + 1);
  return s;
}

static float dot16(void) {
  float a[16], b[16], s = 0;
  for (int i = 0; i < 16; i++) {
    a[i] = (float)i * two * 0.25f; /* i / 2 */
    b[i] = 1.0f / (float)(i + 1);
  }
  for (int i = 0; i < 16; i++) s += a[i] * b[i];
  return s; /* sum i/(2(i+1)) = (16 - H_16) / 2 */
}

static int check(const char *what, float got, float want, float tol) {
  int ok = absf(got - want) <= tol;
  sh_puts(what);
  sh_put_f32(got, 6);
  sh_puts(ok ? "  ok\n" : "  WRONG, want ");
  if (!ok) {
    sh_put_f32(want, 6);
    sh_puts("\n");
  }
  return !ok;
}

int main(void) {
  bool timed = cycles_start();
  uint32_t t0 = cycles_now();
  int bad = check("sqrt(2) = ", newton_sqrt(two), 1.414214f, 1e-6f);
  bad += check("pi      = ", leibniz_pi(terms), 3.141583f, 2e-5f);
  bad += check("dot16   = ", dot16(), 6.309636f, 1e-5f);
  uint32_t t1 = cycles_now();
  if (timed) {
    sh_puts("cycles  = ");
    sh_put_u32(t1 - t0);
    sh_puts("\n");
  } else {
    sh_puts("cycles  = (no DWT cycle counter)\n");
  }
#ifdef FAULT_TEST
  sh_puts("reading 0xfffffff0 on purpose...\n");
  bad += (int)*(volatile uint32_t *)0xFFFFFFF0u;
#endif
  return bad;
}
