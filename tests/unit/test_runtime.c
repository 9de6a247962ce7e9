/*
 * test_runtime.c: the runtime helpers in runtime/cnnrt.c.
 *
 * Raw float32 files must round-trip bit for bit and be rejected when they
 * hold one value (or one byte) more or less than asked; cnnrt_alloc must
 * give 64-byte-aligned, writable memory for any size including 0; argmax
 * picks the first of equal maxima.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnnrt.h"

static char tmpdir[256];

static int setup_dir(void **state) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/cnnrt_test_XXXXXX", base && *base ? base : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
  char path[512];
  const char *names[] = {"a.bin", "short.bin", "long.bin", "empty.bin"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
    unlink(path);
  }
  return rmdir(tmpdir);
}

static const char *tmp_path(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  return path;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void test_roundtrip(void **state) {
  float src[7] = {0.0f, -0.0f, 1.5f, -3.25e-7f, 1e30f, INFINITY, NAN};
  float dst[7];
  memset(dst, 0x55, sizeof dst);
  const char *p = tmp_path("a.bin");
  assert_int_equal(cnnrt_write_f32(p, src, 7), 0);
  assert_int_equal(cnnrt_read_f32(p, dst, 7), 0);
  assert_memory_equal(src, dst, sizeof src); /* bit-exact, NaN and -0 too */
}

static void test_little_endian_on_disk(void **state) {
  float one = 1.0f; /* 0x3f800000 */
  const char *p = tmp_path("a.bin");
  assert_int_equal(cnnrt_write_f32(p, &one, 1), 0);
  unsigned char b[4] = {0};
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  assert_int_equal(fread(b, 1, 4, f), 4);
  fclose(f);
  assert_int_equal(b[0], 0x00);
  assert_int_equal(b[1], 0x00);
  assert_int_equal(b[2], 0x80);
  assert_int_equal(b[3], 0x3f);
}

static void test_wrong_size_rejected(void **state) {
  float v[4] = {1, 2, 3, 4}, dst[5];
  assert_int_equal(cnnrt_write_f32(tmp_path("a.bin"), v, 4), 0);
  /* fewer values than asked */
  assert_int_equal(cnnrt_read_f32(tmp_path("a.bin"), dst, 5), -1);
  /* more values than asked */
  assert_int_equal(cnnrt_read_f32(tmp_path("a.bin"), dst, 3), -1);
  /* exactly right */
  assert_int_equal(cnnrt_read_f32(tmp_path("a.bin"), dst, 4), 0);
  assert_memory_equal(v, dst, sizeof v);
  /* a partial value: 4 floats and 2 bytes, and 3 floats and 3 bytes */
  unsigned char raw[18] = {0};
  write_bytes(tmp_path("long.bin"), raw, 18);
  assert_int_equal(cnnrt_read_f32(tmp_path("long.bin"), dst, 4), -1);
  write_bytes(tmp_path("short.bin"), raw, 15);
  assert_int_equal(cnnrt_read_f32(tmp_path("short.bin"), dst, 4), -1);
  /* empty file: fine for 0 values, an error for 1 */
  write_bytes(tmp_path("empty.bin"), raw, 0);
  assert_int_equal(cnnrt_read_f32(tmp_path("empty.bin"), dst, 0), 0);
  assert_int_equal(cnnrt_read_f32(tmp_path("empty.bin"), dst, 1), -1);
}

static void test_missing_file(void **state) {
  float dst[1];
  assert_int_equal(cnnrt_read_f32(tmp_path("does_not_exist.bin"), dst, 1), -1);
  assert_int_equal(cnnrt_write_f32(tmp_path("no_such_dir/x.bin"), dst, 1), -1);
  assert_int_equal(cnnrt_read_f32(NULL, dst, 1), -1);
}

static void test_alloc_alignment(void **state) {
  size_t sizes[] = {0, 1, 3, 63, 64, 65, 4096, 1000003};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    unsigned char *p = cnnrt_alloc(sizes[i]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % CNNRT_WORKSPACE_ALIGN, 0);
    memset(p, 0xab, sizes[i] ? sizes[i] : 1); /* writable over its whole size */
    cnnrt_free(p);
  }
  assert_null(cnnrt_alloc(SIZE_MAX)); /* overflow when rounding up */
  cnnrt_free(NULL);
}

static void test_argmax(void **state) {
  float a[] = {0.1f, 0.7f, 0.2f};
  assert_int_equal(cnnrt_argmax(a, 3), 1);
  float ties[] = {-1.0f, 5.0f, 2.0f, 5.0f, 5.0f};
  assert_int_equal(cnnrt_argmax(ties, 5), 1); /* first of the equal maxima */
  float neg[] = {-3.0f, -2.0f, -2.5f};
  assert_int_equal(cnnrt_argmax(neg, 3), 1);
  float last[] = {0.0f, 0.0f, 0.0f, 1.0f};
  assert_int_equal(cnnrt_argmax(last, 4), 3);
  float one[] = {42.0f};
  assert_int_equal(cnnrt_argmax(one, 1), 0);
}

static void test_strerror(void **state) {
  assert_string_equal(cnnrt_strerror(CNNRT_OK), "success");
  assert_non_null(strstr(cnnrt_strerror(CNNRT_ERR_NULL), "NULL"));
  assert_non_null(strstr(cnnrt_strerror(CNNRT_ERR_ALIGN), "aligned"));
  assert_non_null(strstr(cnnrt_strerror(12345), "unknown"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_little_endian_on_disk),
      cmocka_unit_test(test_wrong_size_rejected),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_alloc_alignment),
      cmocka_unit_test(test_argmax),
      cmocka_unit_test(test_strerror),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
