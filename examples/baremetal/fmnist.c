/*
 * fmnist.c: classifies the first FMNIST_COUNT Fashion-MNIST test images,
 * bare metal, with models/fashion_mnist.yaml compiled for the board.
 *
 * The images are the raw idx file (t10k-images-idx3-ubyte, decompressed
 * by the build), taken into ROM by the assembler's .incbin without its
 * 16-byte header.  Each image becomes pixel/255.0f, as torchvision's
 * ToTensor and examples/fashion_mnist.c do, and goes through
 * fashion_mnist_run with one static workspace.  The predicted classes are
 * printed as examples/fashion_mnist.c --classes writes them (a digit per
 * image, 100 per line), so that tests/cross.sh can compare the two outputs
 * byte for byte.  The command line (semihosting; run.sh's RUN_ARGS) may
 * name a range "FIRST COUNT" of the embedded images, FIRST a multiple of
 * 100: tests/cross.sh runs two QEMUs on the two halves side by side.
 * Exit status: 0, 1 if a run fails, 2 on a bad range.
 */
#include <stdint.h>

#include "cnnrt.h"
#include "fashion_mnist.h"
#include "semihost.h"

#define PIXELS 784
#define STR_(x) #x
#define STR(x) STR_(x)

__asm__(".section .rodata.fmnist_images,\"a\"\n"
        ".balign 4\n"
        "fmnist_images:\n"
        ".incbin \"" FMNIST_IMAGES "\", 16, " STR(FMNIST_COUNT) " * 784\n"
        ".previous\n");
extern const unsigned char fmnist_images[];

static unsigned char workspace[FASHION_MNIST_WORKSPACE_SIZE + 1] __attribute__((aligned(CNNRT_WORKSPACE_ALIGN)));
static float image[PIXELS], scores[10];

/* A decimal number at *p (skipping spaces), or `dflt` when there is none. */
static uint32_t number(const char **p, uint32_t dflt) {
  while (**p == ' ') (*p)++;
  if (**p < '0' || **p > '9') return dflt;
  uint32_t v = 0;
  while (**p >= '0' && **p <= '9' && v < 100000) v = v * 10 + (uint32_t)(*(*p)++ - '0');
  return v;
}

int main(void) {
  /* optional command line "fmnist FIRST COUNT": those images only (so that
   * two QEMUs can share the work), FIRST a multiple of 100 */
  char cmd[80] = "";
  const char *p = cmd;
  if (sh_cmdline(cmd, sizeof cmd) == 0)
    while (*p && *p != ' ') p++; /* the program's name */
  uint32_t first = number(&p, 0), count = number(&p, FMNIST_COUNT - first);
  if (first % 100 || first > FMNIST_COUNT || count > FMNIST_COUNT - first) {
    sh_puts("usage: fmnist [FIRST COUNT], FIRST a multiple of 100, within the embedded images\n");
    return 2;
  }
  char line[101];
  for (uint32_t i = first; i < first + count; i++) {
    for (int p = 0; p < PIXELS; p++) image[p] = (float)fmnist_images[i * PIXELS + p] / 255.0f;
    if (fashion_mnist_run(image, scores, workspace) != CNNRT_OK) {
      sh_puts("fashion_mnist_run failed\n");
      return 1;
    }
    line[i % 100] = (char)('0' + cnnrt_argmax(scores, 10)); /* as the x86 example */
    if (i % 100 == 99 || i == first + count - 1) {
      line[i % 100 + 1] = 0;
      sh_puts(line);
      sh_puts("\n");
    }
  }
  return 0;
}
