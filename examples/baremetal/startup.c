/*
 * startup.c: vector table and reset code for Cortex-M cores under QEMU.
 *
 * The vector table sits at the start of the board's code memory (address
 * 0 on all three boards, which is where QEMU's reset reads the initial
 * stack pointer and reset vector).  Reset_Handler then
 *
 *   1. enables the FPU (and with it MVE on Armv8.1-M) through CPACR, when
 *      the code is built for one: with a hard-float or softfp build the
 *      compiler may use FP registers anywhere, so this comes first, before
 *      any C code that could be compiled to FP or MVE instructions (the
 *      copy loops below included, hence the separate noinline function);
 *   2. copies .data from its load address in ROM and zeroes .bss;
 *   3. calls main() and exits through semihosting with its return value.
 *
 * Every fault (HardFault and, on Armv7-M and later, MemManage, BusFault,
 * UsageFault, SecureFault) goes to one handler that prints the exception
 * number, the stacked PC and LR and the fault status registers over
 * semihosting and exits with status 3, so a crash under QEMU ends the run
 * with a diagnosis instead of a hang.
 *
 * Caches are not enabled: QEMU does not model them.  On a real Cortex-M7
 * or M55 board, enable the I- and D-cache here for speed.
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
int main(void);

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR REG32(0xE000ED38u)

/* Stacked by the core on exception entry: r0-r3, r12, lr, pc, xpsr. */
enum { FRAME_LR = 5, FRAME_PC = 6, FRAME_XPSR = 7 };

__attribute__((used)) void fault_report(const uint32_t *frame) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  sh_puts("\n*** fault: exception ");
  sh_put_u32(ipsr & 0x1ff);
  sh_puts(ipsr == 3 ? " (HardFault)" : "");
  sh_puts(" pc=");
  sh_put_hex(frame[FRAME_PC]);
  sh_puts(" lr=");
  sh_put_hex(frame[FRAME_LR]);
  sh_puts(" xpsr=");
  sh_put_hex(frame[FRAME_XPSR]);
#ifndef __ARM_ARCH_6M__ /* Armv6-M has no fault status registers */
  sh_puts("\n    cfsr=");
  sh_put_hex(SCB_CFSR);
  sh_puts(" hfsr=");
  sh_put_hex(SCB_HFSR);
  sh_puts(" mmfar=");
  sh_put_hex(SCB_MMFAR);
  sh_puts(" bfar=");
  sh_put_hex(SCB_BFAR);
#endif
  sh_puts("\n");
  sh_exit(3);
}

/* Finds the exception frame (MSP or PSP, by bit 2 of EXC_RETURN in lr)
 * and hands it to fault_report.  Naked, so that no prologue moves the
 * stack; Thumb-1 instructions only, so that it assembles for Armv6-M. */
__attribute__((naked)) void Fault_Handler(void) {
  __asm__ volatile(
      "movs r1, #4\n"
      "mov r2, lr\n"
      "tst r2, r1\n"
      "beq 1f\n"
      "mrs r0, psp\n"
      "b fault_report\n"
      "1:\n"
      "mrs r0, msp\n"
      "b fault_report\n");
}

/* Interrupts are never enabled here; an unexpected one is reported too. */
void Default_Handler(void) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  sh_puts("\n*** unexpected exception ");
  sh_put_u32(ipsr & 0x1ff);
  sh_puts("\n");
  sh_exit(4);
}

__attribute__((noinline)) static void init_memory(void) {
  for (uint32_t *src = _sidata, *dst = _sdata; dst < _edata;) *dst++ = *src++;
  for (uint32_t *dst = _sbss; dst < _ebss;) *dst++ = 0;
}

_Noreturn void Reset_Handler(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  SCB_CPACR |= 0xFu << 20; /* CP10 and CP11 full access: FPU (and MVE) */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  init_memory();
  sh_exit(main());
}

typedef void (*Vector)(void);

/* The first 16 entries: the core's own exceptions. */
__attribute__((used, section(".vectors"))) const Vector vector_table[16] = {
    (Vector)(uintptr_t)_estack, /* initial stack pointer */
    Reset_Handler,
    Default_Handler, /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    Fault_Handler,   /* SecureFault (Armv8-M) */
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};
