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
 * byte for byte.  Exit status: 0, or 1 if a run fails.
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

int main(void) {
  char line[101];
  for (uint32_t i = 0; i < FMNIST_COUNT; i++) {
    for (int p = 0; p < PIXELS; p++) image[p] = (float)fmnist_images[i * PIXELS + p] / 255.0f;
    if (fashion_mnist_run(image, scores, workspace) != CNNRT_OK) {
      sh_puts("fashion_mnist_run failed\n");
      return 1;
    }
    line[i % 100] = (char)('0' + cnnrt_argmax(scores, 10)); /* as the x86 example */
    if (i % 100 == 99 || i == FMNIST_COUNT - 1) {
      line[i % 100 + 1] = 0;
      sh_puts(line);
      sh_puts("\n");
    }
  }
  return 0;
}
