/*
 * cycles.h: the DWT cycle counter, CYCCNT.
 *
 * Armv7-M and Armv8-M Mainline cores (Cortex-M3, M4, M7, M33, M55, M85)
 * may have a Data Watchpoint and Trace unit whose CYCCNT counts core clock
 * cycles; Armv6-M cores (Cortex-M0, M0+) have no cycle counter at all.  To
 * use it, set TRCENA (bit 24) in CoreDebug DEMCR, clear CYCCNT and set
 * CYCCNTENA (bit 0) in DWT_CTRL.  DWT_CTRL.NOCYCCNT (bit 25) says the
 * counter is not implemented.  Cortex-M7 ignores software writes to the DWT
 * until its lock access register is unlocked with 0xC5ACCE55; elsewhere
 * that write is ignored.
 *
 * cycles_start() returns false when there is no working counter (QEMU,
 * for one, models no DWT: see README.md); cycles_now() then reads 0.
 */
#ifndef CYCLES_H
#define CYCLES_H

#include <stdbool.h>
#include <stdint.h>

#define CYC_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define CYC_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define CYC_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define CYC_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

static inline bool cycles_start(void) {
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
  return false; /* no CYCCNT on Armv6-M / Armv8-M Baseline */
#else
  CYC_DEMCR |= 1u << 24; /* TRCENA */
  CYC_DWT_LAR = 0xC5ACCE55u;
  if (CYC_DWT_CTRL & (1u << 25)) return false; /* NOCYCCNT */
  CYC_DWT_CYCCNT = 0;
  CYC_DWT_CTRL |= 1u; /* CYCCNTENA */
  /* a counter that does not move is as good as none */
  uint32_t a = CYC_DWT_CYCCNT;
  for (volatile int i = 0; i < 16; i++) {
  }
  return CYC_DWT_CYCCNT != a;
#endif
}

static inline uint32_t cycles_now(void) {
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
  return 0;
#else
  return CYC_DWT_CYCCNT;
#endif
}

#endif
