/*
 * diag_capture.h: the unit tests' capture of cnnc's diagnostics.  Between
 * diag_capture_begin and diag_capture_end everything util.c prints goes to
 * memory (diag_set_stream), and diag_capture_text returns all of it so far.
 */
#ifndef CNNC_DIAG_CAPTURE_H
#define CNNC_DIAG_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "cnnc.h"

typedef struct {
  char *text; /* what was printed since diag_capture_begin */
  size_t len;
  FILE *stream;
} DiagCapture;

/* Resets the error count and starts capturing; false if no memory stream. */
static inline bool diag_capture_begin(DiagCapture *d) {
  diag_reset();
  d->text = NULL;
  d->len = 0;
  d->stream = open_memstream(&d->text, &d->len);
  diag_set_stream(d->stream);
  return d->stream != NULL;
}

static inline const char *diag_capture_text(DiagCapture *d) {
  if (d->stream) fflush(d->stream);
  return d->text ? d->text : "";
}

/* Restores stderr, frees the text and resets the error count. */
static inline void diag_capture_end(DiagCapture *d) {
  diag_set_stream(NULL);
  if (d->stream) fclose(d->stream);
  free(d->text);
  *d = (DiagCapture){0};
  diag_reset();
}

#endif
