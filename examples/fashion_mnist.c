/*
 * fashion_mnist.c: classify the Fashion-MNIST test set with the compiled
 * model and compare with PyTorch.
 *
 *   fashion_mnist [--images FILE] [--labels FILE] [--pytorch FILE] [--classes FILE]
 *                 [--threads N]
 *
 * The model (models/fashion_mnist.yaml) is compiled by cnnc at build time
 * into fashion_mnist.o and fashion_mnist.h; this program uses its typed
 * entry point, fashion_mnist_run(image, output, workspace), with one
 * workspace of FASHION_MNIST_WORKSPACE_SIZE bytes for all images.
 *
 * The images and labels are read straight from the dataset's idx files
 * (gzipped as Debian ships them, decompressed through `gzip -dc`, or
 * plain).  Pixels become pixel/255.0f, as torchvision's ToTensor does.  If
 * the model's batch dimension is larger than 1, images go through in
 * batches (the last one padded with zeros).
 *
 * --threads N splits the images into N contiguous ranges, each classified
 * by its own thread with its own input, scores and workspace: one compiled
 * model serves concurrent runs when each has its own workspace
 * (tests/cross.sh runs the 10,000 images under qemu-aarch64 this way).
 * The results do not depend on N.
 *
 * --classes FILE writes the predicted class of every image to FILE, one
 * digit per image and 100 per line: the bare-metal example
 * (examples/baremetal/fmnist.c) must print exactly the same for the first
 * 1,000.
 *
 * PyTorch's accuracy on the same weights is recorded in
 * models/fashion_mnist.pytorch.txt ("accuracy 91.23% (9123/10000)").  The
 * exit status is 0 when the number of correct images equals PyTorch's, 1
 * when it differs (or the record is missing), 2 on bad input files.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cnnrt.h"
#include "fashion_mnist.h"

#ifndef FASHION_MNIST_DIR
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif
#ifndef PYTORCH_RESULT
#define PYTORCH_RESULT "models/fashion_mnist.pytorch.txt"
#endif

#define IMAGE_SIDE 28
#define IMAGE_PIXELS (IMAGE_SIDE * IMAGE_SIDE)
#define NUM_CLASSES 10

extern char **environ;

static const char *const class_names[NUM_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

typedef struct {
  unsigned char *data;
  size_t len;
} Bytes;

static int read_all(int fd, Bytes *b) {
  size_t cap = 1 << 20;
  b->data = malloc(cap);
  b->len = 0;
  if (!b->data)
    return -1;
  for (;;) {
    if (b->len == cap) {
      unsigned char *p = realloc(b->data, cap * 2);
      if (!p)
        return -1;
      b->data = p;
      cap *= 2;
    }
    ssize_t r = read(fd, b->data + b->len, cap - b->len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      return 0;
    b->len += (size_t)r;
  }
}

/* Decompresses `path` with gzip -dc (no shell involved). */
static int read_gzip(const char *path, Bytes *b) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  char *argv[] = {"gzip", "-dc", "--", (char *)path, NULL};
  pid_t pid;
  int err = posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    fprintf(stderr, "%s: cannot run gzip: %s\n", path, strerror(err));
    return -1;
  }
  int rc = read_all(fds[0], b);
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s: gzip -dc failed\n", path);
    return -1;
  }
  return 0;
}

/* Reads a whole idx file, gunzipping it when it starts with gzip's magic. */
static int load_file(const char *path, Bytes *b) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return -1;
  }
  unsigned char magic[2] = {0};
  if (pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    close(fd);
    return read_gzip(path, b);
  }
  int rc = read_all(fd, b);
  if (rc != 0)
    fprintf(stderr, "%s: read error: %s\n", path, strerror(errno));
  close(fd);
  return rc;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks an idx header (magic 0x0000 08 <ndims>, big-endian dims) and that
 * the data that follows is exactly as long as the dims say. */
static int check_idx(const char *path, const Bytes *b, uint32_t ndims, uint32_t *dims) {
  size_t hdr = 4 + 4 * (size_t)ndims;
  if (b->len < hdr) {
    fprintf(stderr, "%s: too short for an idx header (%zu bytes)\n", path, b->len);
    return -1;
  }
  uint32_t magic = be32(b->data);
  if (magic != (0x0800u | ndims)) {
    fprintf(stderr, "%s: bad idx magic 0x%08x, expected 0x%08x (unsigned bytes, %u dims)\n",
            path, magic, 0x0800u | ndims, ndims);
    return -1;
  }
  size_t total = 1;
  for (uint32_t i = 0; i < ndims; i++) {
    dims[i] = be32(b->data + 4 + 4 * i);
    if (dims[i] != 0 && total > SIZE_MAX / dims[i]) {
      fprintf(stderr, "%s: idx dimensions overflow\n", path);
      return -1;
    }
    total *= dims[i];
  }
  if (b->len - hdr != total) {
    fprintf(stderr, "%s: header promises %zu data bytes, file has %zu\n", path, total,
            b->len - hdr);
    return -1;
  }
  return 0;
}

/* "accuracy 91.23% (9123/10000)" anywhere on a line of the record. */
static int read_pytorch(const char *path, long *correct, long *total) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *p = strstr(line, "accuracy");
    double pct;
    found = p && sscanf(p, "accuracy %lf%% (%ld/%ld)", &pct, correct, total) == 3;
  }
  fclose(f);
  return found ? 0 : -1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One thread's share: images [first, last), batch by batch. */
typedef struct {
  const unsigned char *pixels;
  size_t first, last, batch;
  unsigned char *guesses; /* per image */
  int rc;                 /* CNNRT_OK, a run's error, or -1: out of memory */
  pthread_t tid;
} Range;

static void *classify(void *arg) {
  Range *r = arg;
  size_t batch = r->batch;
  float *input = cnnrt_alloc(batch * IMAGE_PIXELS * sizeof(float));
  float *scores = cnnrt_alloc(batch * NUM_CLASSES * sizeof(float));
  void *workspace = cnnrt_alloc(FASHION_MNIST_WORKSPACE_SIZE);
  r->rc = input && scores && workspace ? CNNRT_OK : -1;
  for (size_t first = r->first; r->rc == CNNRT_OK && first < r->last; first += batch) {
    size_t n = r->last - first < batch ? r->last - first : batch;
    memset(input, 0, batch * IMAGE_PIXELS * sizeof(float));
    for (size_t i = 0; i < n * IMAGE_PIXELS; i++)
      input[i] = (float)r->pixels[first * IMAGE_PIXELS + i] / 255.0f;
    r->rc = fashion_mnist_run(input, scores, workspace);
    for (size_t i = 0; r->rc == CNNRT_OK && i < n; i++)
      r->guesses[first + i] = (unsigned char)cnnrt_argmax(scores + i * NUM_CLASSES, NUM_CLASSES);
  }
  cnnrt_free(input);
  cnnrt_free(scores);
  cnnrt_free(workspace);
  return NULL;
}

static void usage(FILE *f, const char *argv0) {
  fprintf(f,
          "usage: %s [--images FILE] [--labels FILE] [--pytorch FILE] [--classes FILE] [--threads N]\n"
          "  --images   idx3 images, gzipped or not (default %s/t10k-images-idx3-ubyte.gz)\n"
          "  --labels   idx1 labels (default %s/t10k-labels-idx1-ubyte.gz)\n"
          "  --pytorch  PyTorch's recorded accuracy (default %s)\n"
          "  --classes  write the predicted classes to FILE (a digit per image, 100 per line)\n"
          "  --threads  classify on N threads, each with its own workspace (default 1)\n",
          argv0, FASHION_MNIST_DIR, FASHION_MNIST_DIR, PYTORCH_RESULT);
}

int main(int argc, char **argv) {
  const char *images_path = FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz";
  const char *labels_path = FASHION_MNIST_DIR "/t10k-labels-idx1-ubyte.gz";
  const char *pytorch_path = PYTORCH_RESULT;
  const char *classes_path = NULL, *threads_arg = "1";
  for (int i = 1; i < argc; i++) {
    const char **slot = !strcmp(argv[i], "--images")    ? &images_path
                        : !strcmp(argv[i], "--labels")  ? &labels_path
                        : !strcmp(argv[i], "--pytorch") ? &pytorch_path
                        : !strcmp(argv[i], "--classes") ? &classes_path
                        : !strcmp(argv[i], "--threads") ? &threads_arg
                                                        : NULL;
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout, argv[0]);
      return 0;
    }
    if (!slot || i + 1 >= argc) {
      usage(stderr, argv[0]);
      return 2;
    }
    *slot = argv[++i];
  }
  char *end;
  long nthreads = strtol(threads_arg, &end, 10);
  if (*end || nthreads < 1 || nthreads > 64) {
    fprintf(stderr, "fashion_mnist: --threads takes 1 to 64, not '%s'\n", threads_arg);
    return 2;
  }

  /* The model must take one [B, 1, 28, 28]-sized input and give B x 10. */
  const cnnrt_model *m = &fashion_mnist_model;
  if (m->num_inputs != 1 || m->num_outputs != 1 || m->inputs[0].rank < 1 ||
      m->inputs[0].shape[0] < 1 || m->inputs[0].numel != m->inputs[0].shape[0] * IMAGE_PIXELS ||
      m->outputs[0].numel != m->inputs[0].shape[0] * NUM_CLASSES) {
    fprintf(stderr, "fashion_mnist: the model does not map [B,1,28,28] images to B x 10 scores\n");
    return 2;
  }
  size_t batch = (size_t)m->inputs[0].shape[0];

  Bytes img, lab;
  uint32_t idims[3], ldims[1];
  if (load_file(images_path, &img) || check_idx(images_path, &img, 3, idims) ||
      load_file(labels_path, &lab) || check_idx(labels_path, &lab, 1, ldims))
    return 2;
  if (idims[1] != IMAGE_SIDE || idims[2] != IMAGE_SIDE) {
    fprintf(stderr, "%s: images are %ux%u, expected 28x28\n", images_path, idims[1], idims[2]);
    return 2;
  }
  if (idims[0] != ldims[0] || idims[0] == 0) {
    fprintf(stderr, "%s has %u images but %s has %u labels\n", images_path, idims[0],
            labels_path, ldims[0]);
    return 2;
  }
  size_t count = idims[0];
  const unsigned char *pixels = img.data + 16, *labels = lab.data + 8;
  for (size_t i = 0; i < count; i++)
    if (labels[i] >= NUM_CLASSES) {
      fprintf(stderr, "%s: label %u of image %zu is not a class 0..9\n", labels_path,
              labels[i], i);
      return 2;
    }

  FILE *classes = classes_path ? fopen(classes_path, "w") : NULL;
  if (classes_path && !classes) {
    fprintf(stderr, "%s: %s\n", classes_path, strerror(errno));
    return 2;
  }
  unsigned char *guesses = malloc(count);
  Range ranges[64];
  if (!guesses) {
    fprintf(stderr, "fashion_mnist: out of memory\n");
    return 2;
  }
  double t0 = now();
  size_t nbatches = (count + batch - 1) / batch;
  for (long t = 0; t < nthreads; t++) { /* whole batches per thread */
    size_t b0 = nbatches * (size_t)t / (size_t)nthreads, b1 = nbatches * (size_t)(t + 1) / (size_t)nthreads;
    ranges[t] = (Range){.pixels = pixels, .first = b0 * batch, .last = b1 * batch < count ? b1 * batch : count,
                        .batch = batch, .guesses = guesses};
    if (t > 0 && pthread_create(&ranges[t].tid, NULL, classify, &ranges[t])) {
      fprintf(stderr, "fashion_mnist: cannot start thread %ld\n", t);
      return 2;
    }
  }
  classify(&ranges[0]);
  int rc = CNNRT_OK;
  for (long t = 0; t < nthreads; t++) {
    if (t > 0) pthread_join(ranges[t].tid, NULL);
    if (ranges[t].rc != CNNRT_OK) rc = ranges[t].rc;
  }
  if (rc != CNNRT_OK) {
    fprintf(stderr, "fashion_mnist_run: %s\n", rc < 0 ? "out of memory" : cnnrt_strerror(rc));
    return 2;
  }
  size_t correct = 0, confusion[NUM_CLASSES][NUM_CLASSES] = {{0}};
  for (size_t i = 0; i < count; i++) {
    size_t guess = guesses[i], truth = labels[i];
    correct += guess == truth;
    confusion[truth][guess]++;
    if (classes) fprintf(classes, "%zu%s", guess, i % 100 == 99 || i == count - 1 ? "\n" : "");
  }
  double seconds = now() - t0;
  if (classes && fclose(classes)) {
    fprintf(stderr, "%s: write error\n", classes_path);
    return 2;
  }

  printf("per class (correct/total):\n");
  for (int c = 0; c < NUM_CLASSES; c++) {
    size_t total = 0;
    for (int g = 0; g < NUM_CLASSES; g++)
      total += confusion[c][g];
    printf("  %-12s %4zu/%zu\n", class_names[c], confusion[c][c], total);
  }
  printf("cnnc accuracy: %.2f%% (%zu/%zu)\n", 100.0 * (double)correct / (double)count, correct,
         count);
  printf("speed: %.0f images/s (%.3f s for %zu images, batch %zu, %ld thread%s, workspace %lld bytes each)\n",
         seconds > 0 ? (double)count / seconds : 0.0, seconds, count, batch, nthreads, nthreads > 1 ? "s" : "",
         (long long)FASHION_MNIST_WORKSPACE_SIZE);

  long pt_correct, pt_total;
  int status;
  if (read_pytorch(pytorch_path, &pt_correct, &pt_total) != 0) {
    printf("pytorch accuracy: no record in %s\n", pytorch_path);
    status = 1;
  } else {
    printf("pytorch accuracy: %.2f%% (%ld/%ld) [recorded in %s]\n",
           pt_total ? 100.0 * (double)pt_correct / (double)pt_total : 0.0, pt_correct, pt_total,
           pytorch_path);
    int agree = (size_t)pt_correct == correct && (size_t)pt_total == count;
    printf("%s\n", agree ? "cnnc and PyTorch agree" : "MISMATCH: cnnc and PyTorch disagree");
    status = agree ? 0 : 1;
  }
  free(guesses);
  free(img.data);
  free(lab.data);
  return status;
}
