/*
 * semihost.h: console output and exit status through Arm semihosting.
 *
 * A semihosting call is a `bkpt 0xab` with the operation in r0 and its
 * argument in r1; QEMU (-semihosting-config enable=on,target=native) or a
 * debugger carries it out on the host.  Only three operations are used:
 * SYS_WRITE0 (print a NUL-terminated string), SYS_EXIT_EXTENDED (exit with
 * a status) and SYS_EXIT as its fallback.  Without a debugger or QEMU
 * attached, a semihosting call is a HardFault, so these are for emulation
 * and bring-up only.
 *
 * The print helpers format into a small buffer and write it with one call;
 * they replace printf, which would pull in most of newlib (see README.md
 * for the sizes).
 */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stdint.h>

void sh_puts(const char *s);          /* no newline added */
int sh_cmdline(char *buf, int len);   /* the command line (QEMU: -semihosting-config ...,arg=...); 0 or -1 */
void sh_put_u32(uint32_t v);          /* decimal */
void sh_put_i32(int32_t v);           /* decimal */
void sh_put_hex(uint32_t v);          /* 0x%08x */
void sh_put_f32(float v, int digits); /* fixed point with `digits` decimals (0..9) */
_Noreturn void sh_exit(int status);   /* QEMU exits with `status` */

#endif
