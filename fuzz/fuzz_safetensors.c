/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader.
 *
 * The input is a whole file: header length, JSON header, data.  It is
 * parsed as weights.c parses a weights file, then every tensor is looked
 * up by name and its bytes read (so that a header whose offsets the
 * parser accepted but which point outside the data would be caught by
 * AddressSanitizer).  Errors are the expected outcome; crashes, sanitizer
 * reports and timeouts are findings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *null;
  if (!null) diag_set_stream(null = fopen("/dev/null", "w"));
  diag_reset();
  Arena a = {0};
  /* a copy of exactly `size` bytes, so that reads past the end are caught */
  unsigned char *buf = malloc(size ? size : 1);
  if (size) memcpy(buf, data, size);
  StFile f;
  if (st_parse_named(&a, buf, size, "fuzz.safetensors", (Loc){"fuzz.yaml", 1, 1}, &f)) {
    volatile unsigned sum = 0;
    for (int i = 0; i < f.ntensors; i++) {
      const StTensor *t = st_find(&f, f.tensors[i].name);
      if (!t) abort(); /* every parsed tensor must be found by its name */
      for (size_t k = 0; k < t->nbytes; k++) sum += t->data[k];
    }
  }
  free(buf);
  arena_free(&a);
  return 0;
}
