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

#endif /* CNNRT_FREESTANDING */

size_t cnnrt_argmax(const float *v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}
