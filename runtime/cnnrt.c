/*
 * cnnrt.c: the cnnc runtime library.
 *
 * Generated code calls nothing here; these are the helpers that programs
 * around a compiled model share: messages for return codes, an allocator
 * that gives the alignment the workspace needs, raw float32 tensor files
 * (the format of the golden tests: little-endian, no header, exactly
 * numel values) and argmax for classifiers.
 *
 * File errors are reported on stderr as "path: message" and returned as -1,
 * so that a caller only has to check the result.
 */
#include "cnnrt.h"

/* -DCNNRT_FREESTANDING (bare metal: examples/baremetal builds it with
 * -ffreestanding) leaves out the hosted helpers: allocation and files. */
#ifndef CNNRT_FREESTANDING
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

const char *cnnrt_strerror(int code) {
  switch (code) {
  case CNNRT_OK: return "success";
  case CNNRT_ERR_NULL: return "an input, output or workspace pointer is NULL";
  case CNNRT_ERR_ALIGN: return "the workspace is not 64-byte aligned";
  case CNNRT_ERR_WORKSPACE: return "the workspace is smaller than one thread needs";
  case CNNRT_ERR_CPU: return "this CPU lacks the instruction set the model was compiled for";
  default: return "unknown cnnrt error code";
  }
}

#ifndef CNNRT_FREESTANDING
void *cnnrt_alloc(size_t size) {
  /* aligned_alloc wants a multiple of the alignment; round up (and ask for
   * at least one block, so a zero-sized workspace is still a real pointer). */
  size_t align = CNNRT_WORKSPACE_ALIGN;
  if (size > SIZE_MAX - (align - 1))
    return NULL;
  size_t rounded = (size + align - 1) / align * align;
  if (rounded == 0)
    rounded = align;
  return aligned_alloc(align, rounded);
}

void cnnrt_free(void *p) { free(p); }

/* Host byte order is checked at run time so that the files stay
 * little-endian on any machine. */
static int host_is_little(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static uint32_t bswap32(uint32_t x) {
  return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}

static void swap_floats(float *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &v[i], 4);
    u = bswap32(u);
    memcpy(&v[i], &u, 4);
  }
}

int cnnrt_read_f32(const char *path, float *dst, size_t count) {
  if (!path || (!dst && count > 0)) {
    fprintf(stderr, "cnnrt_read_f32: NULL argument\n");
    return -1;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
    return -1;
  }
  if (count > SIZE_MAX / sizeof(float)) {
    fprintf(stderr, "%s: %zu float32 values do not fit in memory\n", path, count);
    fclose(f);
    return -1;
  }
  size_t want = count * sizeof(float);
  size_t got = want ? fread(dst, 1, want, f) : 0;
  int rc = -1;
  if (ferror(f)) {
    fprintf(stderr, "%s: read error: %s\n", path, strerror(errno));
  } else if (got < want) {
    fprintf(stderr, "%s: is %zu bytes, expected exactly %zu float32 values (%zu bytes)\n",
            path, got, count, want);
  } else if (fgetc(f) != EOF) {
    /* Size the surplus for the message; the file may be a pipe, so count. */
    size_t extra = 1;
    while (fgetc(f) != EOF)
      extra++;
    fprintf(stderr, "%s: is %zu bytes, expected exactly %zu float32 values (%zu bytes)\n",
            path, want + extra, count, want);
  } else {
    rc = 0;
  }
  fclose(f);
  if (rc == 0 && !host_is_little())
    swap_floats(dst, count);
  return rc;
}

int cnnrt_write_f32(const char *path, const float *src, size_t count) {
  if (!path || (!src && count > 0)) {
    fprintf(stderr, "cnnrt_write_f32: NULL argument\n");
    return -1;
  }
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "%s: cannot create: %s\n", path, strerror(errno));
    return -1;
  }
  int ok = 1;
  if (host_is_little()) {
    ok = fwrite(src, sizeof(float), count, f) == count;
  } else {
    for (size_t i = 0; ok && i < count; i++) {
      float v = src[i];
      swap_floats(&v, 1);
      ok = fwrite(&v, sizeof v, 1, f) == 1;
    }
  }
  if (fclose(f) != 0)
    ok = 0;
  if (!ok) {
    fprintf(stderr, "%s: write error: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

#include <time.h>

static double seconds_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double cnnrt_profile_rate(void) {
#if defined(__aarch64__)
  uint64_t f;
  __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
  return (double)f;
#elif defined(__x86_64__)
  unsigned lo, hi;
  double t0 = seconds_now(), t;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  uint64_t c0 = (uint64_t)hi << 32 | lo;
  while ((t = seconds_now()) - t0 < 0.02) {
  }
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (double)(((uint64_t)hi << 32 | lo) - c0) / (t - t0);
#else
  return 0;
#endif
}

int cnnrt_profile_print(const cnnrt_profile *p, int runs, double rate, FILE *f) {
  if (!p || !f || runs < 1 || p->count < 0 || (p->count > 0 && (!p->layers || !p->flops || !p->ticks)))
    return -1;
  if (rate <= 0) rate = cnnrt_profile_rate();
  double total = 0;
  int64_t flops = 0;
  for (int64_t k = 0; k < p->count; k++) {
    total += (double)p->ticks[k];
    flops += p->flops[k];
  }
  fprintf(f, "# cnnrt profile of %s: %d run%s, %s\n", p->model ? p->model : "?", runs, runs == 1 ? "" : "s",
          rate > 0 ? "milliseconds per run" : "counter ticks per run (rate unknown)");
  fprintf(f, "# %12s %7s %9s  layer\n", rate > 0 ? "ms" : "ticks", "share", rate > 0 ? "GFLOP/s" : "");
  for (int64_t k = 0; k < p->count; k++) {
    double per = (double)p->ticks[k] / runs, share = total > 0 ? 100.0 * (double)p->ticks[k] / total : 0;
    if (rate > 0) {
      double s = per / rate;
      fprintf(f, "%14.4f %6.2f%% %9.2f  %s\n", s * 1e3, share, s > 0 ? (double)p->flops[k] / s * 1e-9 : 0.0,
              p->layers[k]);
    } else {
      fprintf(f, "%14.0f %6.2f%% %9s  %s\n", per, share, "-", p->layers[k]);
    }
  }
  if (rate > 0)
    fprintf(f, "# total %.4f ms per run, %.2f GFLOP/s\n", total / runs / rate * 1e3,
            total > 0 ? (double)flops / (total / runs / rate) * 1e-9 : 0.0);
  else
    fprintf(f, "# total %.0f ticks per run\n", total / runs);
  return ferror(f) ? -1 : 0;
}

#endif /* CNNRT_FREESTANDING */

void cnnrt_profile_reset(const cnnrt_profile *p) {
  for (int64_t k = 0; p && p->ticks && k < p->count; k++)
    p->ticks[k] = 0;
}

size_t cnnrt_argmax(const float *v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}
