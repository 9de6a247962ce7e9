/*
 * cnnrt.h: the cnnc runtime.
 *
 * A model compiled by cnnc is an object file plus a header.  The object
 * defines `<name>_run(...)`, a typed entry point, and `<name>_model`, a
 * cnnrt_model descriptor through which a generic driver can run any model
 * without knowing it at compile time.  Generated code never allocates and
 * calls nothing here; this library only holds what applications and
 * drivers share: the descriptor type, return codes and small helpers to
 * read and write raw float32 tensors.
 *
 * The descriptor layout is an ABI: cnnc emits it as constant data.  Change
 * it only together with CNNRT_ABI_VERSION and the code generator.
 */
#ifndef CNNRT_H
#define CNNRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNNRT_ABI_VERSION 1
#define CNNRT_MAX_RANK 6
#define CNNRT_WORKSPACE_ALIGN 64 /* the workspace must be aligned to this */

/* Return codes of every generated run function. */
enum {
  CNNRT_OK = 0,
  CNNRT_ERR_NULL = 1,  /* an input, output or (non-empty) workspace pointer is NULL */
  CNNRT_ERR_ALIGN = 2, /* the workspace is not CNNRT_WORKSPACE_ALIGN-aligned */
};

typedef struct cnnrt_tensor_info {
  const char *name;              /* input/output name from the model file */
  int64_t rank;                  /* number of dims used in shape[] */
  int64_t shape[CNNRT_MAX_RANK]; /* PyTorch order (NCHW or N, features) */
  int64_t numel;                 /* product of shape[0..rank-1] */
} cnnrt_tensor_info;

typedef int (*cnnrt_run_fn)(const float *const *inputs, float *const *outputs,
                            void *workspace);

typedef struct cnnrt_model {
  int64_t abi_version;              /* CNNRT_ABI_VERSION */
  const char *name;                 /* model name */
  int64_t num_inputs, num_outputs;  /* entries in inputs[] / outputs[] */
  const cnnrt_tensor_info *inputs;  /* in run() argument order */
  const cnnrt_tensor_info *outputs; /* in run() argument order */
  int64_t workspace_size;           /* bytes; may be 0 */
  cnnrt_run_fn run;                 /* generic entry point */
} cnnrt_model;

/* A message for a return code. */
const char *cnnrt_strerror(int code);

/* Allocates `size` bytes aligned to CNNRT_WORKSPACE_ALIGN (at least one
 * byte, so the pointer is never NULL on success).  Free with cnnrt_free. */
void *cnnrt_alloc(size_t size);
void cnnrt_free(void *p);

/* Reads exactly `count` little-endian float32 values from a raw file.
 * Returns 0 on success, -1 (with a message on stderr) otherwise, including
 * when the file holds more or fewer values. */
int cnnrt_read_f32(const char *path, float *dst, size_t count);
/* Writes `count` float32 values to a raw file.  0 on success, -1 otherwise. */
int cnnrt_write_f32(const char *path, const float *src, size_t count);

/* Index of the largest of `n` values (the first one on ties). */
size_t cnnrt_argmax(const float *v, size_t n);

#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Cortex-M (cnnrt_cycles.c, bare-metal builds of libcnnrt): starts the DWT
 * cycle counter that --profile builds read; 1 if it runs, 0 if the core
 * (or QEMU) has none.  Call it once before the first run. */
int cnnrt_cycles_enable(void);
uint32_t cnnrt_cycles(void); /* the counter now (0 without one) */
#endif

#ifdef __cplusplus
}
#endif
#endif
