/*
 * files.c: reading the run's inputs and committing its outputs, so that
 * cnnc never hangs on, never destroys and never half-writes a file.
 *
 * Inputs (the model file, the weights file, ONNX external data).  file_read
 * opens with O_NONBLOCK, so a FIFO or a device cannot block the open, and
 * accepts only a regular file (or standard input for "-"); anything else
 * is an error naming what the path is.  The size is checked against
 * --max-file-bytes before anything is allocated.  Every input read is
 * remembered by (device, inode), so that no output can be one of them,
 * and its bytes are kept: a second file_read of the same path (a --cpu
 * list reads the model once per CPU) returns the same bytes, standard
 * input included, without reading again.
 *
 * Outputs (object, header, and the other --emit-* files).  out_plan is
 * called for every output before the compiler does any work: it resolves
 * the destination and refuses a directory, a dangling symbolic link, a
 * missing directory, a path that is one of the inputs, and two outputs
 * that are one file.  Files are compared as files, not as spellings: an
 * existing destination by (device, inode), a new one by its directory's
 * (device, inode) and its name.  A regular file (or a new one) is replaced
 * atomically: the data goes to a temporary file beside it, and a symbolic
 * link is followed so that the link survives.  A character device, FIFO
 * or socket is written in place and never replaced, as `cc -o /dev/null`
 * does; a FIFO without a reader is an error rather than a hang.
 *
 * out_write fills an output's temporary file (or keeps the bytes for an
 * in-place output) and out_commit publishes all of them: it renames every
 * temporary file into place only after all were written, and if a rename
 * fails, the outputs already renamed get their old contents back from
 * hard-link backups.  So a failed run leaves every earlier output
 * untouched.  files_abandon removes the temporary files; it is called on
 * errors, on fatal signals and when memory runs out, and is
 * async-signal-safe.
 */
#include "cnnc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_OUTPUTS = 16 };

typedef struct {
  dev_t dev;
  ino_t ino;
  const char *path; /* as given */
} Seen;

typedef struct {
  const char *path;    /* as given */
  const char *what;    /* "object file", "header", ... */
  char *dest;          /* malloc'd: the file rename() replaces (symlinks followed) */
  bool in_place;       /* a device, FIFO or socket: written, never replaced */
  bool exists;         /* dest exists (regular file) */
  dev_t dev;           /* identity: the file's, or its directory's when new */
  ino_t ino;
  char *name;          /* malloc'd: base name when new (identity = dir + name) */
  char *tmp;           /* malloc'd: temporary file beside dest, or NULL */
  char *backup;        /* malloc'd: hard link to the old dest during commit, or NULL */
  void *data;          /* in-place outputs: the bytes, malloc'd */
  size_t len;
  bool written;        /* out_write called */
} Out;

static Seen *inputs; /* malloc'd */
static int ninputs, capinputs;
/* What file_read returned, by path (the bytes live in the caller's arena,
 * which outlives the run); malloc'd. */
typedef struct {
  char *path;
  char *text;
  size_t len;
} Kept;
static Kept *kept;
static int nkept, capkept;
static Out outs[MAX_OUTPUTS];
static int nouts;
/* Paths for files_abandon, readable from a signal handler. */
static char *volatile temps[2 * MAX_OUTPUTS];

static const char *file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

static void remember_input(const struct stat *st, const char *path) {
  for (int i = 0; i < ninputs; i++)
    if (inputs[i].dev == st->st_dev && inputs[i].ino == st->st_ino) return; /* read before */
  if (ninputs == capinputs) {
    int cap = capinputs ? 2 * capinputs : 16;
    Seen *s = realloc(inputs, (size_t)cap * sizeof *s);
    if (!s) return; /* only weakens the output check, which then compares fewer files */
    inputs = s;
    capinputs = cap;
  }
  inputs[ninputs++] = (Seen){st->st_dev, st->st_ino, path};
}

const char *files_input(int i) { return i >= 0 && i < ninputs ? inputs[i].path : NULL; }

/* Reads all of fd (at most max bytes); NULL after reporting. */
static char *read_all(Arena *a, int fd, const char *path, const char *what, Loc at, int64_t max,
                      size_t hint, size_t *len) {
  size_t cap = hint + 1, n = 0;
  char *buf = malloc(cap);
  if (!buf) {
    error_at(at, "cannot read the %s '%s': out of memory (%zu bytes)", what, path, cap);
    return NULL;
  }
  for (;;) {
    if (n + 1 >= cap) {
      if ((int64_t)cap > max + 1) break;
      char *nb = realloc(buf, cap * 2);
      if (!nb) break;
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      error_at(at, "cannot read the %s '%s': %s", what, path, strerror(errno));
      free(buf);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
    if ((int64_t)n > max) {
      error_at(at, "the %s '%s' is larger than %lld bytes (the limit set by --max-file-bytes)", what,
               path, (long long)max);
      free(buf);
      return NULL;
    }
  }
  char *out = arena_alloc(a, n + 1);
  memcpy(out, buf, n);
  free(buf);
  *len = n;
  return out;
}

static char *xstrdup(const char *s);

static void keep(const char *path, char *text, size_t len) {
  if (nkept == capkept) {
    int cap = capkept ? 2 * capkept : 8;
    Kept *k = realloc(kept, (size_t)cap * sizeof *k);
    if (!k) return; /* then it is read again */
    kept = k;
    capkept = cap;
  }
  char *p = xstrdup(path);
  if (p) kept[nkept++] = (Kept){p, text, len};
}

static char *read_file(Arena *a, const char *path, const char *what, Loc at, size_t *len);

char *file_read(Arena *a, const char *path, const char *what, Loc at, size_t *len) {
  for (int i = 0; i < nkept; i++)
    if (!strcmp(kept[i].path, path)) {
      *len = kept[i].len;
      return kept[i].text;
    }
  char *text = read_file(a, path, what, at, len);
  if (text) keep(path, text, *len);
  return text;
}

static char *read_file(Arena *a, const char *path, const char *what, Loc at, size_t *len) {
  int64_t max = cnnc_limits.file_bytes;
  if (strcmp(path, "-") == 0) {
    struct stat st;
    if (fstat(0, &st) == 0 && S_ISREG(st.st_mode)) remember_input(&st, path);
    return read_all(a, 0, "standard input", what, at, max, 1 << 16, len);
  }
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error_at(at, "cannot read the %s '%s': %s", what, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error_at(at, "cannot read the %s '%s': it is %s, not a regular file", what, path,
             fstat(fd, &st) == 0 ? file_kind(st.st_mode) : strerror(errno));
    close(fd);
    return NULL;
  }
  if (st.st_size > max) {
    error_at(at, "the %s '%s' is %lld bytes, more than %lld (the limit set by --max-file-bytes)", what,
             path, (long long)st.st_size, (long long)max);
    close(fd);
    return NULL;
  }
  remember_input(&st, path);
  char *text = read_all(a, fd, path, what, at, max, (size_t)st.st_size, len);
  close(fd);
  return text;
}

/* ---- outputs ---- */

static char *xstrdup(const char *s) {
  char *d = strdup(s);
  if (!d) {
    fprintf(stderr, "cnnc: error: out of memory\n");
    files_abandon();
    exit(1);
  }
  return d;
}

/* "dir/name" -> "dir" ("." when there is no slash, "/" for "/name"). */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return xstrdup(".");
  if (slash == path) return xstrdup("/");
  char *d = xstrdup(path);
  d[slash - path] = 0;
  return d;
}

/* Resolves o->path: destination, kind and identity.  false after reporting. */
static bool resolve(Out *o) {
  struct stat st, lst;
  if (stat(o->path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      error_plain("cannot write the %s '%s': it is a directory", o->what, o->path);
      return false;
    }
    o->dev = st.st_dev, o->ino = st.st_ino;
    if (!S_ISREG(st.st_mode)) {
      if (S_ISBLK(st.st_mode)) {
        error_plain("refusing to write the %s to '%s': it is a block device", o->what, o->path);
        return false;
      }
      o->in_place = true;
      o->dest = xstrdup(o->path);
      return true;
    }
    char *real = realpath(o->path, NULL); /* follows links: the link stays a link */
    o->dest = real ? real : xstrdup(o->path);
    o->exists = true;
    return true;
  }
  if (lstat(o->path, &lst) == 0) {
    error_plain("cannot write the %s '%s': it is a symbolic link to a missing file", o->what, o->path);
    return false;
  }
  char *dir = dir_of(o->path);
  bool ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
  if (!ok)
    error_plain("cannot write the %s '%s': directory '%s' %s", o->what, o->path, dir,
                stat(dir, &st) == 0 ? "is not a directory" : "does not exist");
  else if (access(dir, W_OK | X_OK) != 0)
    error_plain("cannot write the %s '%s': directory '%s' is not writable", o->what, o->path, dir);
  free(dir);
  if (!ok || access(o->path, F_OK) == 0) return false;
  const char *base = strrchr(o->path, '/');
  o->name = xstrdup(base ? base + 1 : o->path);
  if (!*o->name || !strcmp(o->name, ".") || !strcmp(o->name, "..")) {
    error_plain("cannot write the %s '%s': not a file name", o->what, o->path);
    return false;
  }
  o->dev = st.st_dev, o->ino = st.st_ino;
  o->dest = xstrdup(o->path);
  return true;
}

static bool same_file(const Out *a, const Out *b) {
  if (a->dev != b->dev || a->ino != b->ino) return false;
  if (!a->name || !b->name) return !a->name && !b->name;
  return strcmp(a->name, b->name) == 0;
}

/* Whether output o may be written (after resolve): not an input, not another output. */
static bool allowed(const Out *o) {
  for (int i = 0; i < ninputs && !o->name; i++)
    if (inputs[i].dev == o->dev && inputs[i].ino == o->ino) {
      error_plain("refusing to write the %s to '%s': it is the input file '%s'", o->what, o->path,
                  inputs[i].path);
      return false;
    }
  for (int i = 0; i < nouts; i++)
    if (same_file(&outs[i], o) && !(o->in_place && outs[i].in_place)) {
      error_plain("the %s '%s' and the %s '%s' are the same file", outs[i].what, outs[i].path, o->what, o->path);
      return false;
    }
  return true;
}

int out_plan(const char *path, const char *what) {
  if (nouts == MAX_OUTPUTS) CNNC_UNREACHABLE();
  Out *o = &outs[nouts];
  *o = (Out){.path = path, .what = what};
  if (resolve(o) && allowed(o)) return nouts++;
  free(o->dest);
  free(o->name);
  *o = (Out){0};
  return -1;
}

/* A new file "dir/.name.XXXXXX" beside `dest`; NULL after reporting. */
static char *temp_beside(const char *dest, const char *what, int *fd) {
  const char *slash = strrchr(dest, '/');
  size_t dirlen = slash ? (size_t)(slash - dest + 1) : 0, n = strlen(dest) + 16;
  char *t = malloc(n);
  if (!t) return NULL;
  snprintf(t, n, "%.*s.%s.XXXXXX", (int)dirlen, dest, dest + dirlen);
  *fd = mkstemp(t);
  if (*fd < 0) {
    error_plain("cannot write the %s: cannot create a file beside '%s': %s", what, dest, strerror(errno));
    free(t);
    return NULL;
  }
  return t;
}

static void add_temp(char *path) {
  for (int i = 0; i < 2 * MAX_OUTPUTS; i++)
    if (!temps[i]) {
      temps[i] = path;
      return;
    }
}

static void drop_temp(const char *path) {
  for (int i = 0; i < 2 * MAX_OUTPUTS; i++)
    if (temps[i] == path) temps[i] = NULL;
}

static bool write_fd(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    len -= (size_t)w;
  }
  return true;
}

bool out_write(int handle, const void *data, size_t len) {
  Out *o = &outs[handle];
  CNNC_ASSERT(handle >= 0 && handle < nouts && !o->written);
  o->written = true;
  if (o->in_place) { /* kept until commit: nothing reaches a device before every output is ready */
    o->data = malloc(len ? len : 1);
    if (!o->data) {
      error_plain("cannot write the %s '%s': out of memory", o->what, o->path);
      return false;
    }
    memcpy(o->data, data, len);
    o->len = len;
    return true;
  }
  int fd;
  char *tmp = temp_beside(o->dest, o->what, &fd);
  if (!tmp) return false;
  o->tmp = tmp;
  add_temp(tmp);
  mode_t mask = umask(0);
  umask(mask);
  bool ok = fchmod(fd, 0666 & ~mask) == 0 && write_fd(fd, data, len);
  int err = errno;
  if (close(fd) != 0 && ok) ok = false, err = errno;
  if (!ok) error_plain("cannot write the %s '%s': %s", o->what, o->path, strerror(err));
  return ok;
}

/* Writes an in-place output (device, FIFO, socket). */
static bool write_in_place(Out *o) {
  int fd = open(o->dest, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error_plain("cannot write the %s '%s': %s", o->what, o->path,
                errno == ENXIO ? "it is a FIFO that nobody reads" : strerror(errno));
    return false;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  bool ok = write_fd(fd, o->data, o->len);
  int err = errno;
  close(fd);
  if (!ok) error_plain("cannot write the %s '%s': %s", o->what, o->path, strerror(err));
  return ok;
}

/* Puts back the outputs renamed so far (k of them), from their backups. */
static void roll_back(int k) {
  for (int i = 0; i < k; i++) {
    Out *o = &outs[i];
    if (o->in_place) continue;
    if (o->backup) rename(o->backup, o->dest);
    else if (!o->exists) unlink(o->dest);
  }
}

bool out_commit(void) {
  for (int i = 0; i < nouts; i++) CNNC_ASSERT(outs[i].written);
  for (int i = 0; i < nouts; i++) { /* hard-link backups of the files about to be replaced */
    Out *o = &outs[i];
    if (o->in_place || !o->exists) continue;
    o->backup = malloc(strlen(o->dest) + 16);
    if (!o->backup) continue;
    snprintf(o->backup, strlen(o->dest) + 16, "%s.old.XXXXXX", o->dest);
    int fd = mkstemp(o->backup);
    if (fd >= 0) close(fd);
    if (fd < 0 || unlink(o->backup) != 0 || link(o->dest, o->backup) != 0) {
      free(o->backup); /* no hard links here: no backup, a failure cannot be undone */
      o->backup = NULL;
    } else {
      add_temp(o->backup);
    }
  }
  int done = 0;
  bool ok = true;
  for (; done < nouts && ok; done++) {
    Out *o = &outs[done];
    if (o->in_place) continue;
    if (rename(o->tmp, o->dest) != 0) {
      error_plain("cannot write the %s '%s': %s", o->what, o->path, strerror(errno));
      ok = false;
      break;
    }
    drop_temp(o->tmp);
  }
  if (!ok) roll_back(done);
  for (int i = 0; ok && i < nouts; i++) /* devices last: they cannot be rolled back */
    if (outs[i].in_place && !(ok = write_in_place(&outs[i]))) roll_back(nouts);
  files_abandon();
  return ok;
}

void files_abandon(void) {
  for (int i = 0; i < 2 * MAX_OUTPUTS; i++) {
    char *t = temps[i];
    if (t) unlink(t);
    temps[i] = NULL;
  }
}

static void on_signal(int sig) {
  files_abandon();
  signal(sig, SIG_DFL);
  raise(sig);
}

void files_catch_signals(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], on_signal);
}

void files_reset(void) {
  files_abandon();
  for (int i = 0; i < nouts; i++) {
    free(outs[i].dest);
    free(outs[i].name);
    free(outs[i].tmp);
    free(outs[i].backup);
    free(outs[i].data);
  }
  for (int i = 0; i < nkept; i++) free(kept[i].path);
  free(kept);
  kept = NULL;
  nkept = capkept = 0;
  nouts = ninputs = 0;
  free(inputs);
  inputs = NULL;
  capinputs = 0;
}
