/*
 * test_errors.c: runs cnnc on every tests/errors/NAME.yaml and checks the
 * diagnostics against the expectations written in the file itself.
 *
 * A line of a bad spec that carries the comment `# error: TEXT` must get a
 * diagnostic "PATH:LINE:COL: error: ..." containing TEXT, where PATH is the
 * spec path exactly as passed to cnnc and LINE that line's number.  A line
 * may carry several (`# error: A # error: B`) when one line has several
 * problems.  Besides that, for every file:
 *   - cnnc exits with status 1 (not 0, not a crash);
 *   - it prints no more "error:" diagnostics than there are expectations;
 *   - the output directory stays empty: no out.o, no out.h, no temp files.
 * Lines that echo the source under a diagnostic ("   12 | ...") are not
 * diagnostics, even though they may show the `# error:` comment.  A first
 * line `# options: ARGS` passes extra space-separated options to cnnc.
 *
 * A tests/errors/NAME.onnx (made by tools/make_error_onnx.py) has its
 * expectations in NAME.onnx.expect, one per line, written as the
 * diagnostic after "PATH: ": `node 'X' (#3, LSTM): error: TEXT` must match
 * a diagnostic "PATH: node 'X' (#3, LSTM): error: ...TEXT...", and
 * `error: TEXT` a file-level "PATH: error: ...TEXT...".  Lines starting
 * with '#' are comments, except a first `# options: ARGS` line.
 *
 * Each file is one cmocka test, built at run time from the directory
 * listing (sorted, so that runs are comparable).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MARK "# error: "

typedef struct {
  int line;         /* 1-based line of the spec (0 for ONNX files) */
  const char *text; /* substring the diagnostic must contain */
  bool found;
  const char *where;/* ONNX: what comes between "PATH: " and ": error: " ("" for none) */
} Expect;

typedef struct {
  char *buf; /* growing text buffer */
  size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->buf = realloc(b->buf, b->cap);
    if (!b->buf) abort();
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = 0;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  Buf b = {0};
  char chunk[4096];
  size_t n;
  buf_add(&b, "", 0);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
  fclose(f);
  return b.buf;
}

/* Collects the `# error:` expectations of `text` into *out; returns the count. */
static int parse_expectations(char *text, Expect **out) {
  int n = 0, cap = 0, line = 1;
  *out = NULL;
  for (char *p = text; *p; line++) {
    char *eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    char *m = p;
    while ((m = strstr(m, MARK)) && m < eol) {
      char *t = m + strlen(MARK), *next = strstr(t, MARK), *e = eol;
      if (next && next < eol) e = next;
      while (e > t && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
      if (n == cap) {
        cap = cap ? 2 * cap : 8;
        *out = realloc(*out, (size_t)cap * sizeof **out);
        if (!*out) abort();
      }
      (*out)[n++] = (Expect){line, strndup(t, (size_t)(e - t)), false, NULL};
      m = t;
    }
    p = *eol ? eol + 1 : eol;
  }
  return n;
}

/* The expectations of an ONNX file's NAME.onnx.expect text. */
static int parse_onnx_expectations(char *text, Expect **out) {
  int n = 0, cap = 0;
  *out = NULL;
  for (char *p = text; *p;) {
    char *eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    char *m = p[0] == '#' ? NULL : strstr(p, "error: ");
    if (m && m < eol) {
      if (n == cap) {
        cap = cap ? 2 * cap : 8;
        *out = realloc(*out, (size_t)cap * sizeof **out);
        if (!*out) abort();
      }
      char *t = m + 7, *e = eol;
      while (e > t && (e[-1] == ' ' || e[-1] == '\r')) e--;
      size_t wl = m > p + 1 && m[-1] == ' ' && m[-2] == ':' ? (size_t)(m - 2 - p) : 0;
      (*out)[n++] = (Expect){0, strndup(t, (size_t)(e - t)), false, strndup(p, wl)};
    }
    p = *eol ? eol + 1 : eol;
  }
  return n;
}

/* A source excerpt line printed under a diagnostic: "  12 | text" or "     | ^". */
static bool is_excerpt(const char *line) {
  while (*line == ' ') line++;
  while (*line >= '0' && *line <= '9') line++;
  return line[0] == ' ' && line[1] == '|';
}

/* Whether `line` is "PATH:LINE:COL: error: ...TEXT...". */
static bool matches(const char *line, const char *path, const Expect *e) {
  size_t pl = strlen(path);
  if (strncmp(line, path, pl) != 0 || line[pl] != ':') return false;
  if (e->where) { /* ONNX: "PATH: WHERE: error: ...TEXT..." or "PATH: error: ..." */
    const char *r = line + pl + 1;
    if (*r++ != ' ') return false;
    size_t wl = strlen(e->where);
    if (wl && (strncmp(r, e->where, wl) != 0 || strncmp(r + wl, ": ", 2) != 0)) return false;
    r += wl ? wl + 2 : 0;
    return strncmp(r, "error: ", 7) == 0 && strstr(r + 7, e->text) != NULL;
  }
  char *end;
  long l = strtol(line + pl + 1, &end, 10);
  if (l != e->line || *end != ':' || end[1] < '0' || end[1] > '9') return false;
  strtol(end + 1, &end, 10);
  if (strncmp(end, ": error: ", 9) != 0) return false;
  return strstr(end + 9, e->text) != NULL;
}

/* Runs argv with stdout+stderr captured into *out; returns the wait status
 * or -1 if it could not be started. */
static int run_capture(char *const argv[], Buf *out) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  pid_t pid;
  int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    errno = err;
    return -1;
  }
  char chunk[4096];
  ssize_t n;
  buf_add(out, "", 0);
  while ((n = read(fds[0], chunk, sizeof chunk)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    buf_add(out, chunk, (size_t)n);
  }
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return status;
}

/* Lists what is left in `dir` (appending names to *left), removes it all
 * and the directory; returns the number of entries found. */
static int clean_dir(const char *dir, Buf *left) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    buf_add(left, " ", 1);
    buf_add(left, de->d_name, strlen(de->d_name));
    unlink(path);
    n++;
  }
  closedir(d);
  rmdir(dir);
  return n;
}

static void report(Buf *msg, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  buf_add(msg, tmp, strlen(tmp));
}

/* Matches stderr against the expectations; appends problems to msg. */
static void check_diagnostics(const char *path, char *stderr_text, Expect *ex, int nex, Buf *msg) {
  int ndiag = 0;
  Buf extra = {0};
  for (char *line = stderr_text; line && *line;) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = 0;
    if (strstr(line, "error:") && !is_excerpt(line)) {
      ndiag++;
      bool used = false;
      for (int i = 0; i < nex && !used; i++)
        if (!ex[i].found && matches(line, path, &ex[i])) ex[i].found = used = true;
      if (!used) report(&extra, "    %s\n", line);
    }
    if (eol) *eol = '\n'; /* the whole text is printed on failure */
    line = eol ? eol + 1 : NULL;
  }
  for (int i = 0; i < nex; i++)
    if (!ex[i].found && ex[i].where)
      report(msg, "  missing diagnostic: %s: %s%serror: ...%s...\n", path, ex[i].where,
             *ex[i].where ? ": " : "", ex[i].text);
    else if (!ex[i].found)
      report(msg, "  missing diagnostic: %s:%d:<col>: error: ...%s...\n", path, ex[i].line,
             ex[i].text);
  if (ndiag != nex)
    report(msg, "  %d error diagnostic(s) printed, %d expected\n", ndiag, nex);
  if (extra.len) report(msg, "  unexpected diagnostics:\n%s", extra.buf);
  free(extra.buf);
}

static void test_spec(void **state) {
  const char *path = *state;
  const char *cnnc = getenv("CNNC");
  if (!cnnc || !*cnnc) fail_msg("CNNC is not set (run through ctest)");

  size_t pl = strlen(path);
  bool onnx = pl > 5 && strcmp(path + pl - 5, ".onnx") == 0;
  char expect_path[4200];
  snprintf(expect_path, sizeof expect_path, "%s.expect", path);
  char *text = slurp(onnx ? expect_path : path);
  if (!text) fail_msg("cannot read %s: %s", onnx ? expect_path : path, strerror(errno));
  Expect *ex;
  int nex = onnx ? parse_onnx_expectations(text, &ex) : parse_expectations(text, &ex);
  if (nex == 0) fail_msg("%s has no expected error; every error test must expect one", path);

  char dir[] = "/tmp/cnnc_errors.XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp: %s", strerror(errno));
  char out[sizeof dir + 16];
  snprintf(out, sizeof out, "%s/out.o", dir);
  char *argv[16] = {(char *)cnnc, (char *)path, "-o", out};
  int argc = 4;
  char *opts = strncmp(text, "# options: ", 11) == 0 ? strndup(text + 11, strcspn(text + 11, "\n")) : NULL;
  for (char *tok = opts ? strtok(opts, " ") : NULL; tok && argc < 15; tok = strtok(NULL, " ")) argv[argc++] = tok;
  argv[argc] = NULL;
  Buf err = {0}, msg = {0}, left = {0};
  int status = run_capture(argv, &err);

  if (status == -1)
    report(&msg, "  cannot run %s: %s\n", cnnc, strerror(errno));
  else if (WIFSIGNALED(status))
    report(&msg, "  cnnc was killed by signal %d (%s)\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else if (WEXITSTATUS(status) != 1)
    report(&msg, "  exit status %d, expected 1\n", WEXITSTATUS(status));
  if (clean_dir(dir, &left)) report(&msg, "  files left in the output directory:%s\n", left.buf);
  if (status != -1) check_diagnostics(path, err.buf ? err.buf : "", ex, nex, &msg);

  if (msg.len) { /* stderr directly: cmocka's print_error truncates at 1 KB */
    fprintf(stderr, "%s: FAILED\n%s  expected:\n", path, msg.buf);
    for (int i = 0; i < nex; i++)
      if (ex[i].where)
        fprintf(stderr, "    %s: %s%serror: ...%s...\n", path, ex[i].where, *ex[i].where ? ": " : "",
                ex[i].text);
      else
        fprintf(stderr, "    %s:%d:<col>: error: ...%s...\n", path, ex[i].line, ex[i].text);
    fprintf(stderr, "  cnnc's output:\n%s\n", err.buf ? err.buf : "");
    fflush(stderr);
  }
  for (int i = 0; i < nex; i++) free((char *)ex[i].text), free((char *)ex[i].where);
  free(ex);
  free(opts);
  free(text);
  free(err.buf);
  free(left.buf);
  bool failed = msg.len != 0;
  free(msg.buf);
  if (failed) fail_msg("%s: see above", path);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
  const char *src = getenv("CNNC_SOURCE_DIR");
  if (!src) src = ".";
  char dirpath[4096];
  snprintf(dirpath, sizeof dirpath, "%s/tests/errors", src);
  DIR *d = opendir(dirpath);
  if (!d) {
    fprintf(stderr, "test_errors: cannot open %s: %s\n", dirpath, strerror(errno));
    return 1;
  }
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l < 6 || (strcmp(de->d_name + l - 5, ".yaml") != 0 && strcmp(de->d_name + l - 5, ".onnx") != 0))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      names = realloc(names, (size_t)cap * sizeof *names);
      if (!names) abort();
    }
    names[n++] = strdup(de->d_name);
  }
  closedir(d);
  if (n == 0) {
    fprintf(stderr, "test_errors: no .yaml or .onnx files in %s\n", dirpath);
    return 1;
  }
  qsort(names, (size_t)n, sizeof *names, by_name);

  struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
  for (int i = 0; i < n; i++) {
    size_t l = strlen(dirpath) + strlen(names[i]) + 2;
    char *path = malloc(l);
    snprintf(path, l, "%s/%s", dirpath, names[i]);
    tests[i] = (struct CMUnitTest){.name = names[i], .test_func = test_spec, .initial_state = path};
  }
  int r = _cmocka_run_group_tests("errors", tests, (size_t)n, NULL, NULL);
  for (int i = 0; i < n; i++) {
    free((void *)tests[i].initial_state);
    free(names[i]);
  }
  free(tests);
  free(names);
  return r;
}
