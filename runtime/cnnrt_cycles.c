/*
 * cnnrt_cycles.c: the Cortex-M DWT cycle counter, for `cnnc --profile`.
 *
 * On M-profile cores a --profile build reads DWT CYCCNT (0xE0001004)
 * around every kernel call (target.c's table: CLOCK_DWT); the counter
 * runs only once software has enabled it, which cnnrt_cycles_enable()
 * does: TRCENA (bit 24) in CoreDebug DEMCR, unlock the DWT (the Cortex-M7
 * ignores writes until its lock access register holds 0xC5ACCE55;
 * elsewhere the write is ignored), clear CYCCNT, set CYCCNTENA (bit 0) in
 * DWT_CTRL.  DWT_CTRL.NOCYCCNT (bit 25) says there is no counter, and
 * QEMU models no DWT at all (the registers read 0), so the function
 * checks that the counter moves.  Armv6-M and Armv8-M Baseline have none
 * (cnnc refuses --profile there).  Part of libcnnrt only in bare-metal
 * builds (examples/baremetal); it needs nothing from libc.
 */
#include "cnnrt.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

int cnnrt_cycles_enable(void) {
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
  return 0;
#else
  DEMCR |= 1u << 24; /* TRCENA */
  DWT_LAR = 0xC5ACCE55u;
  if (DWT_CTRL & (1u << 25)) return 0; /* NOCYCCNT */
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u; /* CYCCNTENA */
  uint32_t a = DWT_CYCCNT;
  for (volatile int i = 0; i < 16; i++) {
  }
  return DWT_CYCCNT != a; /* a counter that does not move is as good as none */
#endif
}

uint32_t cnnrt_cycles(void) {
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
  return 0;
#else
  return DWT_CYCCNT;
#endif
}
