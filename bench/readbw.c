/* readbw.c: single-core memory read bandwidth, the bound of a dense layer
 * whose weights do not fit in cache (vgg16's classifier reads 392 MiB per
 * inference).  Sums a 512 MiB float array with 4 independent vector
 * accumulators, best of 5 passes, and prints GB/s (1e9 bytes per second).
 *
 *   cc -O2 -march=native -o readbw bench/readbw.c && taskset -c 1 ./readbw
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64)));

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
  size_t bytes = (size_t)512 << 20, n = bytes / sizeof(v16);
  v16 *a = aligned_alloc(64, bytes);
  if (!a) return 1;
  for (size_t i = 0; i < n; i++) a[i] = (v16){0} + (float)(i & 7);
  double best = 1e30;
  v16 keep = {0};
  for (int pass = 0; pass < 5; pass++) {
    v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    double t0 = now();
    for (size_t i = 0; i < n; i += 4) {
      s0 += a[i];
      s1 += a[i + 1];
      s2 += a[i + 2];
      s3 += a[i + 3];
    }
    double t = now() - t0;
    keep += s0 + s1 + s2 + s3;
    if (t < best) best = t;
  }
  printf("{\"read_GBps\": %.2f, \"check\": %g}\n", (double)bytes / best / 1e9, (double)keep[0]);
  free(a);
  return 0;
}
