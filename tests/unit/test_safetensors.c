/*
 * test_safetensors.c: st_parse on well-formed blobs and on every kind of
 * corruption the reader must report (and survive).  Blobs are built in
 * memory: an 8-byte little-endian header length, the JSON, the data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cnnc.h"
#include "diag_capture.h"

static const Loc LOC = {"model.yaml", 3, 10};

typedef struct {
  Arena arena;
  DiagCapture d; /* diagnostics printed by the last parse */
  StFile st;
  bool ok;
} Ctx;

static Ctx ctx;

static int setup(void **state) {
  memset(&ctx, 0, sizeof ctx);
  if (!diag_capture_begin(&ctx.d)) return -1;
  return 0;
}

static int teardown(void **state) {
  diag_capture_end(&ctx.d);
  arena_free(&ctx.arena);
  return 0;
}

/* Builds header length + json + data in arena memory. */
static unsigned char *blob_n(uint64_t hlen, const char *json, const void *data, size_t datalen,
                             size_t *len) {
  size_t jl = strlen(json);
  *len = 8 + jl + datalen;
  unsigned char *b = arena_alloc(&ctx.arena, *len);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
  memcpy(b + 8, json, jl);
  if (datalen) memcpy(b + 8 + jl, data, datalen);
  return b;
}

static unsigned char *blob(const char *json, const void *data, size_t datalen, size_t *len) {
  return blob_n(strlen(json), json, data, datalen, len);
}

static bool parse(const unsigned char *b, size_t len) {
  ctx.ok = st_parse_named(&ctx.arena, b, len, "w.safetensors", LOC, &ctx.st);
  diag_capture_text(&ctx.d);
  return ctx.ok;
}

/* Asserts that parsing fails with exactly `count` errors, each located at
 * LOC and naming the file, and that one of them contains `text`. */
static void expect_errors(const unsigned char *b, size_t len, int count, const char *text) {
  bool ok = parse(b, len);
  if (ok || diag_error_count() != count || !strstr(ctx.d.text, text))
    print_error("expected %d error(s) containing \"%s\"; got ok=%d and:\n%s\n", count, text, ok,
                ctx.d.text);
  assert_false(ok);
  assert_int_equal(diag_error_count(), count);
  assert_non_null(strstr(ctx.d.text, text));
  int lines = 0;
  for (const char *p = ctx.d.text; (p = strstr(p, "model.yaml:3:10: error: w.safetensors: ")); p++)
    lines++;
  assert_int_equal(lines, count);
}

static void expect_error_json(const char *json, size_t datalen, const char *text) {
  static const unsigned char zeros[256];
  assert_true(datalen <= sizeof zeros);
  size_t len;
  unsigned char *b = blob(json, zeros, datalen, &len);
  expect_errors(b, len, 1, text);
}

/* ---- well-formed files ---- */

static const char GOOD_JSON[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
    "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}}    ";

static unsigned char *good_blob(size_t *len) {
  unsigned char data[40];
  for (int i = 0; i < 40; i++) data[i] = (unsigned char)i;
  return blob(GOOD_JSON, data, sizeof data, len);
}

static void test_good(void **state) {
  size_t len;
  unsigned char *b = good_blob(&len);
  assert_true(parse(b, len));
  assert_int_equal(diag_error_count(), 0);
  assert_int_equal(ctx.st.ntensors, 3);
  size_t data0 = 8 + strlen(GOOD_JSON);

  const StTensor *w = st_find(&ctx.st, "fc.weight");
  assert_non_null(w);
  assert_string_equal(w->dtype, "F32");
  assert_int_equal(w->shape.rank, 2);
  assert_int_equal(w->shape.dim[0], 2);
  assert_int_equal(w->shape.dim[1], 3);
  assert_ptr_equal(w->data, b + data0);
  assert_int_equal(w->nbytes, 24);

  const StTensor *bias = st_find(&ctx.st, "fc.bias");
  assert_non_null(bias);
  assert_int_equal(bias->shape.rank, 1);
  assert_int_equal(bias->shape.dim[0], 2);
  assert_ptr_equal(bias->data, b + data0 + 24);
  assert_int_equal(bias->data[0], 24);

  const StTensor *n = st_find(&ctx.st, "bn.num_batches_tracked");
  assert_non_null(n);
  assert_string_equal(n->dtype, "I64");
  assert_int_equal(n->shape.rank, 0);
  assert_int_equal(n->nbytes, 8);

  assert_null(st_find(&ctx.st, "fc"));
  assert_null(st_find(&ctx.st, "__metadata__"));
}

static void test_empty_header(void **state) {
  size_t len;
  unsigned char *b = blob(" { } ", NULL, 0, &len);
  assert_true(parse(b, len));
  assert_int_equal(ctx.st.ntensors, 0);
}

static void test_st_parse_default_name(void **state) {
  size_t len;
  unsigned char *b = blob("[]", NULL, 0, &len);
  assert_false(st_parse(&ctx.arena, b, len, LOC, &ctx.st));
  diag_capture_text(&ctx.d);
  assert_non_null(strstr(ctx.d.text, "model.yaml:3:10: error: safetensors file: corrupt"));
}

static void test_escapes_and_whitespace(void **state) {
  size_t len;
  unsigned char *b = blob(
      "{\n\t\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\" : { \"shape\" : [ 1 ] , \"dtype\" : \"U8\" ,"
      " \"data_offsets\" : [ 0 , 1 ] } ,\r\n\"\" : {\"dtype\":\"F32\",\"shape\":[0,5],"
      "\"data_offsets\":[1,1]}}",
      "x", 1, &len);
  assert_true(parse(b, len));
  assert_int_equal(ctx.st.ntensors, 2);
  assert_non_null(st_find(&ctx.st, "a\xc3\xa9\xf0\x9f\x98\x80\n\"/"));
  const StTensor *e = st_find(&ctx.st, "");
  assert_non_null(e);
  assert_int_equal(e->nbytes, 0);
}

static void test_holes_are_fine(void **state) {
  /* Unused bytes between and after tensors are not an error. */
  static const unsigned char data[16];
  size_t len;
  unsigned char *b =
      blob("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data, 16, &len);
  assert_true(parse(b, len));
  assert_int_equal(ctx.st.tensors[0].nbytes, 4);
}

/* ---- file-level corruption ---- */

static void test_too_short(void **state) {
  static const unsigned char b[5] = {2, 0, 0, 0, 0};
  expect_errors(b, sizeof b, 1, "truncated safetensors file: 5 bytes");
  expect_errors(b, 0, 2, "truncated safetensors file: 0 bytes");
}

static void test_header_past_end(void **state) {
  size_t len;
  unsigned char *b = blob_n(1000, "{}", NULL, 0, &len);
  expect_errors(b, len, 1, "header length 1000 runs past the end of the file (10 bytes)");
}

static void test_header_absurd(void **state) {
  size_t len;
  unsigned char *b = blob_n(UINT64_MAX, "{}", NULL, 0, &len);
  expect_errors(b, len, 1, "header length 18446744073709551615 is over the 100 MB limit");
  b = blob_n((100u << 20) + 1, "{}", NULL, 0, &len);
  expect_errors(b, len, 2, "header length 104857601 is over the 100 MB limit");
}

static void test_header_cuts_json(void **state) {
  /* The header length ends inside the JSON: the rest counts as data. */
  size_t len;
  unsigned char *b = blob_n(4, "{\"a\":{}}", NULL, 0, &len);
  expect_errors(b, len, 1, "corrupt safetensors header: expected ':', found end of header");
}

static void test_not_json(void **state) {
  expect_error_json("this is not json", 0, "corrupt safetensors header: expected '{' at byte 0");
  teardown(state), setup(state);
  expect_error_json("", 0, "expected '{', found end of header");
  teardown(state), setup(state);
  expect_error_json("[1, 2]", 0, "expected '{' at byte 0");
  teardown(state), setup(state);
  expect_error_json("{\"a\" 1}", 0, "expected ':' at byte 5");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 0, "expected ',' or '}', found end of header");
  teardown(state), setup(state);
  expect_error_json("{} x", 0, "trailing characters after the header at byte 3");
  teardown(state), setup(state);
  expect_error_json("{\"a", 0, "unterminated string");
  teardown(state), setup(state);
  expect_error_json("{\"a\\", 0, "unterminated string");
  teardown(state), setup(state);
  expect_error_json("{\"a\tb\":{}}", 0, "control character in a string");
  teardown(state), setup(state);
  expect_error_json("{\"a\\x\":{}}", 0, "bad escape in a string at byte 3");
  teardown(state), setup(state);
  expect_error_json("{\"a\\u12\":{}}", 0, "bad \\u escape");
  teardown(state), setup(state);
  expect_error_json("{\"a\\udc00\":{}}", 0, "bad \\u escape");
  teardown(state), setup(state);
  expect_error_json("{\"a\\ud800x\":{}}", 0, "bad \\u escape");
  teardown(state), setup(state);
  expect_error_json("{\"a\\u0000\":{}}", 0, "\\u0000 in a string");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"shape\":[01]}}", 0, "number with a leading zero");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"shape\":[1.]}}", 0, "bad number");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"shape\":[1e]}}", 0, "bad number");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"shape\":[-]}}", 0, "expected a number");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"shape\":[1,]}}", 0, "expected a number at byte 17");
  teardown(state), setup(state);
  expect_error_json("{\"a\":{\"dtype\":\"F32\",}}", 0, "expected a string at byte 20");
  teardown(state), setup(state);
  expect_error_json("{\"__metadata__\":{\"k\":tru}}", 0, "expected a value");
}

static void test_nesting_limit(void **state) {
  /* An unknown field holding 10000 nested lists: reported, no stack overflow. */
  enum { DEPTH = 10000 };
  char *json = arena_alloc(&ctx.arena, 2 * DEPTH + 64);
  char *o = json + sprintf(json, "{\"a\":{\"x\":");
  memset(o, '[', DEPTH), o += DEPTH;
  memset(o, ']', DEPTH), o += DEPTH;
  strcpy(o, "}}");
  size_t len;
  unsigned char *b = blob(json, NULL, 0, &len);
  expect_errors(b, len, 2, "nesting too deep");
  assert_non_null(strstr(ctx.d.text, "tensor 'a': unknown field 'x'"));
}

/* ---- per-tensor problems ---- */

static void test_missing_fields(void **state) {
  expect_error_json("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 't' lacks a dtype");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 't' lacks a shape");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 't' lacks data_offsets");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{}}", 0, "tensor 't' lacks a dtype");
}

static void test_wrong_types(void **state) {
  expect_error_json("{\"t\":5}", 0, "tensor 't': expected an object with dtype, shape and data_offsets");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                    "tensor 't': dtype must be a string");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4,
                    "tensor 't': shape must be a list of integers");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4,
                    "tensor 't': data_offsets must be a list of integers");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                    "tensor 't': shape must hold non-negative integers");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                    "tensor 't': shape must hold non-negative integers");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4e0]}}", 4,
                    "tensor 't': data_offsets must hold non-negative integers");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                    "tensor 't': data_offsets must hold non-negative integers");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}",
                    4, "tensor 't': data_offsets must hold non-negative integers below 2^63");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                    "tensor 't': data_offsets must be [begin, end]");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 8,
                    "tensor 't': data_offsets must be [begin, end]");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                    4, "tensor 't' has more than 6 dimensions");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":null}}", 4,
                    "tensor 't': unknown field 'x'");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                    4, "tensor 't': field 'dtype' given twice");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"X9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                    "tensor 't' has unknown dtype 'X9'");
  teardown(state), setup(state);
  expect_error_json("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ must map strings to strings");
  teardown(state), setup(state);
  expect_error_json("{\"__metadata__\":[]}", 0, "__metadata__ must map strings to strings");
}

static void test_offsets(void **state) {
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                    "tensor 't': data_offsets [8, 0] end before they begin");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24,
                    "tensor 't': data_offsets [0, 20] span 20 bytes, but F32 [2, 3] needs 24");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 12,
                    "span 12 bytes, but F16 [3] needs 6");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
                    "tensor 't': data_offsets [0, 16] run past the end of the data (12 bytes; "
                    "truncated file?)");
  teardown(state), setup(state);
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9223372036854775803,"
                    "9223372036854775807]}}",
                    4, "run past the end of the data (4 bytes");
}

static void test_shape_overflow(void **state) {
  expect_error_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
                    4, "tensor 't': size of shape [4294967296, 4294967296] overflows");
  teardown(state), setup(state);
  /* numel fits, bytes do not */
  expect_error_json("{\"t\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}",
                    4, "tensor 't': size of shape [2305843009213693952] overflows");
}

static void test_overlap(void **state) {
  expect_error_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                    12, "tensors 'a' and 'b' overlap in the data section");
  teardown(state), setup(state);
  /* a long tensor covering two later ones: both overlaps are reported */
  static const unsigned char z[32];
  size_t len;
  unsigned char *b = blob("{\"a\":{\"dtype\":\"U8\",\"shape\":[32],\"data_offsets\":[0,32]},"
                          "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
                          "\"c\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[16,20]}}",
                          z, 32, &len);
  expect_errors(b, len, 2, "tensors 'a' and 'c' overlap");
  assert_non_null(strstr(ctx.d.text, "tensors 'a' and 'b' overlap"));
}

static void test_duplicate(void **state) {
  expect_error_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                    8, "tensor 'a' appears twice in the header");
  teardown(state), setup(state);
  expect_error_json("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice");
}

static void test_all_errors_reported(void **state) {
  static const unsigned char z[8];
  size_t len;
  unsigned char *b = blob("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"ok\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                          "\"c\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}",
                          z, 8, &len);
  expect_errors(b, len, 3, "tensor 'a': data_offsets [0, 4] span 4 bytes, but F16 [1] needs 2");
  assert_non_null(strstr(ctx.d.text, "tensor 'b': data_offsets [4, 12] run past the end"));
  assert_non_null(strstr(ctx.d.text, "tensor 'c': dtype must be a string"));
  assert_int_equal(ctx.st.ntensors, 0);
}

/* Every truncation and many single-byte corruptions of a good file: the
 * parser must not crash, and whatever it accepts must lie in the buffer. */
static void test_fuzz(void **state) {
  size_t len;
  unsigned char *good = good_blob(&len);
  unsigned char *b = malloc(len); /* exact size, so that ASan sees overreads */
  static const unsigned char vals[] = {0, '"', '\\', '{', '}', '[', ']', ',', ':', '-', '9', 0xff};
  int accepted = 0, rejected = 0;
  for (size_t i = 0; i <= len; i++) {
    for (size_t v = 0; v <= sizeof vals; v++) {
      size_t n = v == sizeof vals ? i : len; /* last round: truncate at i */
      memcpy(b, good, len);
      if (v < sizeof vals && i < len) b[i] = vals[v];
      else if (v < sizeof vals) continue;
      unsigned char *copy = malloc(n ? n : 1);
      memcpy(copy, b, n);
      diag_reset();
      if (parse(copy, n)) {
        accepted++;
        assert_int_equal(diag_error_count(), 0);
        for (int k = 0; k < ctx.st.ntensors; k++) {
          const StTensor *t = &ctx.st.tensors[k];
          assert_true(t->data >= copy && t->data + t->nbytes <= copy + n);
        }
      } else {
        rejected++;
        assert_true(diag_error_count() > 0);
      }
      free(copy);
    }
  }
  free(b);
  assert_true(accepted > 0);
  assert_true(rejected > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_header, setup, teardown),
      cmocka_unit_test_setup_teardown(test_st_parse_default_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_escapes_and_whitespace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holes_are_fine, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_short, setup, teardown),
      cmocka_unit_test_setup_teardown(test_header_past_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_header_absurd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_header_cuts_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nesting_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
      cmocka_unit_test_setup_teardown(test_offsets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shape_overflow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overlap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_errors_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
