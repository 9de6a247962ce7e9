/*
 * semihost.c: the semihosting calls of semihost.h and a tiny formatter.
 *
 * Each helper builds its text in a buffer on the stack and writes it with
 * one SYS_WRITE0, since every call traps into the host.  Floats are
 * printed by scaling to an integer, which is exact enough for showing
 * results (not a correctly rounded printf).
 */
#include "semihost.h"

enum {
  SYS_WRITE0 = 0x04,
  SYS_GET_CMDLINE = 0x15,
  SYS_EXIT = 0x18,
  SYS_EXIT_EXTENDED = 0x20,
  ADP_STOPPED_APPLICATION_EXIT = 0x20026,
  ADP_STOPPED_RUNTIME_ERROR = 0x20023,
};

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void sh_puts(const char *s) { semihost(SYS_WRITE0, s); }

int sh_cmdline(char *buf, int len) {
  struct {
    char *buf;
    int len;
  } block = {buf, len};
  if (len < 1 || semihost(SYS_GET_CMDLINE, &block) != 0) return -1;
  buf[block.len < len ? block.len : len - 1] = 0;
  return 0;
}

/* Writes v's decimal digits ending just before `end`; returns the first. */
static char *format_u32(uint32_t v, char *end) {
  char *p = end;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return p;
}

void sh_put_u32(uint32_t v) {
  char buf[12];
  buf[11] = 0;
  sh_puts(format_u32(v, buf + 11));
}

void sh_put_i32(int32_t v) {
  char buf[13];
  buf[12] = 0;
  char *p = format_u32(v < 0 ? 0u - (uint32_t)v : (uint32_t)v, buf + 12);
  if (v < 0) *--p = '-';
  sh_puts(p);
}

void sh_put_hex(uint32_t v) {
  char buf[11] = "0x";
  for (int i = 0; i < 8; i++) buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
  buf[10] = 0;
  sh_puts(buf);
}

void sh_put_f32(float v, int digits) {
  if (v != v) {
    sh_puts("nan");
    return;
  }
  if (digits < 0) digits = 0;
  if (digits > 9) digits = 9;
  char buf[40], *end = buf + sizeof buf - 1;
  *end = 0;
  int neg = v < 0;
  if (neg) v = -v;
  if (v > 4e9f) {
    sh_puts(neg ? "-inf" : "inf"); /* or merely too large for this formatter */
    return;
  }
  uint32_t scale = 1;
  for (int i = 0; i < digits; i++) scale *= 10;
  uint32_t ip = (uint32_t)v;
  /* the fraction in [0, scale], rounded; a carry goes into the integer part */
  uint32_t frac = (uint32_t)((v - (float)ip) * (float)scale + 0.5f);
  if (frac >= scale) {
    frac -= scale;
    ip++;
  }
  char *p = end;
  for (int i = 0; i < digits; i++) {
    *--p = (char)('0' + frac % 10);
    frac /= 10;
  }
  if (digits) *--p = '.';
  p = format_u32(ip, p);
  if (neg) *--p = '-';
  sh_puts(p);
}

_Noreturn void sh_exit(int status) {
  /* SYS_EXIT_EXTENDED carries the status; plain SYS_EXIT (if the host
   * lacks the extension) can only say success or failure. */
  uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
  semihost(SYS_EXIT_EXTENDED, block);
  semihost(SYS_EXIT, (const void *)(uintptr_t)(status ? ADP_STOPPED_RUNTIME_ERROR
                                                      : ADP_STOPPED_APPLICATION_EXIT));
  for (;;) __asm__ volatile("wfi");
}
