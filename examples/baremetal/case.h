/*
 * case.h: a golden case compiled into the program (case_data.c, written
 * by CMakeLists.txt from in_<name>.bin and out_<name>.bin).  Each table
 * ends with a NULL name.
 */
#ifndef CASE_H
#define CASE_H

#include <stdint.h>

typedef struct {
  const char *name;  /* tensor name, as in the model file */
  const float *want; /* the input, or PyTorch's output */
  float *got;        /* outputs only: where the model writes */
  uint32_t count;    /* floats */
} CaseTensor;

extern const CaseTensor case_inputs[], case_outputs[];

#endif
