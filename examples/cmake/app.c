/* app.c: runs the tiny model (tiny.yaml) on an image of ones and checks the
 * result, [6.25, 3.75], which the model's comment works out by hand. */
#include <stdio.h>

#include "tiny.h"

int main(void) {
  static _Alignas(TINY_WORKSPACE_ALIGN) unsigned char workspace[TINY_WORKSPACE_SIZE];
  float image[TINY_IMAGE_SIZE], scores[TINY_SCORES_SIZE];
  for (int i = 0; i < TINY_IMAGE_SIZE; i++) image[i] = 1.0f;
  int rc = tiny_run(image, scores, workspace);
  if (rc != CNNRT_OK) {
    fprintf(stderr, "tiny_run failed: %s\n", cnnrt_strerror(rc));
    return 1;
  }
  printf("scores: %g %g\n", scores[0], scores[1]);
  return scores[0] == 6.25f && scores[1] == 3.75f ? 0 : 1;
}
