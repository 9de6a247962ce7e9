/*
 * test_hostile.c: cnnc against hostile command lines and files.
 *
 * Each test builds a fresh directory (a small model, its weights, and
 * whatever the scenario needs: FIFOs, links, directories, huge specs),
 * takes a snapshot of every file in it (type, inode, size, mode, mtime and
 * a hash of the contents), runs cnnc with a time limit, and checks:
 *   - the exit status (1 for errors; a hang or a signal is a failure),
 *   - that stderr holds the expected message and nothing a terminal should
 *     not see (control characters, invalid UTF-8),
 *   - that no file changed (errors), or only the outputs (success).
 * These are the cases of issue 7: outputs that are inputs, devices, FIFOs,
 * links, a missing directory, limits on expanded YAML and parameters, and
 * names that the generated header must survive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *cnnc_path(void) {
  const char *c = getenv("CNNC");
  if (!c || !*c) fail_msg("CNNC is not set (run through ctest)");
  return c;
}

/* ---- a scratch directory per test ---- */

static char dir[256];

static void path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void write_text(const char *name, const char *text) {
  char p[512];
  path(p, sizeof p, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static const char model[] = "cnnc: 1\nname: m\nweights: m.safetensors\ninputs:\n  - {name: x, shape: [1, 4]}\n"
                            "layers:\n  - {name: fc, op: dense, units: 2}\n";

/* A safetensors file with fc.weight [2, 4] and fc.bias [2] (F32). */
static void write_weights(const char *name) {
  const char hdr[] = "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]},"
                     "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}";
  char p[512];
  path(p, sizeof p, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  uint64_t n = sizeof hdr - 1;
  for (int i = 0; i < 8; i++) fputc((int)(n >> (8 * i)) & 0xff, f);
  fwrite(hdr, 1, n, f);
  for (int i = 0; i < 10; i++) {
    float v = 0.25f * (float)i;
    fwrite(&v, 4, 1, f);
  }
  fclose(f);
}

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/cnnc_hostile.XXXXXX");
  assert_non_null(mkdtemp(dir));
  write_text("m.yaml", model);
  write_weights("m.safetensors");
  return 0;
}

static void rm_rf(const char *p) {
  struct stat st;
  if (lstat(p, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char q[1024];
      snprintf(q, sizeof q, "%s/%s", p, e->d_name);
      rm_rf(q);
    }
    if (d) closedir(d);
    rmdir(p);
  } else {
    unlink(p);
  }
}

static int teardown(void **state) {
  rm_rf(dir);
  return 0;
}

/* ---- snapshots ---- */

typedef struct {
  char name[512];
  mode_t mode;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  uint64_t hash; /* FNV-1a of the contents (regular files) or link target */
} Entry;

typedef struct {
  Entry e[64];
  int n;
} Snap;

static uint64_t hash_file(const char *p) {
  uint64_t h = 0xcbf29ce484222325u;
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  int c;
  while ((c = fgetc(f)) != EOF) h = (h ^ (unsigned char)c) * 0x100000001b3u;
  fclose(f);
  return h;
}

static void snap_dir(Snap *s, const char *sub) {
  char d[512];
  snprintf(d, sizeof d, "%s%s%s", dir, *sub ? "/" : "", sub);
  DIR *dd = opendir(d);
  assert_non_null(dd);
  struct dirent *de;
  while ((de = readdir(dd))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    assert_true(s->n < 64);
    Entry *e = &s->e[s->n++];
    snprintf(e->name, sizeof e->name, "%s%s%s", sub, *sub ? "/" : "", de->d_name);
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->name);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    e->mode = st.st_mode, e->ino = st.st_ino, e->size = st.st_size, e->mtime = st.st_mtim, e->hash = 0;
    if (S_ISREG(st.st_mode)) e->hash = hash_file(p);
    if (S_ISLNK(st.st_mode)) {
      char t[512];
      ssize_t k = readlink(p, t, sizeof t - 1);
      t[k > 0 ? k : 0] = 0;
      for (char *c = t; *c; c++) e->hash = (e->hash ^ (unsigned char)*c) * 0x100000001b3u;
    }
    if (S_ISDIR(st.st_mode)) snap_dir(s, e->name);
  }
  closedir(dd);
}

static Snap snap(void) {
  Snap s = {.n = 0};
  snap_dir(&s, "");
  return s;
}

static const Entry *find(const Snap *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->e[i].name, name)) return &s->e[i];
  return NULL;
}

/* Every entry of a is in b, unchanged, and b has no other entries except
 * those named in `allowed` (NULL-terminated), which may also differ. */
static void assert_same(const Snap *a, const Snap *b, const char *const *allowed) {
  for (int i = 0; i < a->n; i++) {
    const Entry *x = &a->e[i], *y = find(b, x->name);
    bool ok_to_differ = false;
    for (const char *const *w = allowed; w && *w; w++) ok_to_differ |= !strcmp(*w, x->name);
    if (ok_to_differ || S_ISDIR(x->mode)) continue;
    if (!y) fail_msg("%s disappeared", x->name);
    if (y->mode != x->mode || y->ino != x->ino || y->size != x->size || y->hash != x->hash ||
        y->mtime.tv_sec != x->mtime.tv_sec || y->mtime.tv_nsec != x->mtime.tv_nsec)
      fail_msg("%s changed", x->name);
  }
  for (int i = 0; i < b->n; i++) {
    bool ok = find(a, b->e[i].name) != NULL;
    for (const char *const *w = allowed; w && *w; w++) ok |= !strcmp(*w, b->e[i].name);
    if (!ok) fail_msg("new file %s", b->e[i].name);
  }
}

/* ---- running cnnc ---- */

typedef struct {
  int status;   /* exit status, or -1 for a signal or a hang */
  char err[16384];
} Result;

/* Runs cnnc in `dir` with args (NULL-terminated); stdin from `in` or
 * /dev/null; kills it after `secs` seconds. */
static Result run_in(const char *in, int secs, const char *const *args) {
  Result r = {.status = -1};
  char *argv[32];
  int argc = 0;
  argv[argc++] = (char *)cnnc_path();
  for (; *args && argc < 31; args++) argv[argc++] = (char *)*args;
  argv[argc] = NULL;
  char errpath[512];
  path(errpath, sizeof errpath, ".stderr");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  pid_t pid;
  int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  assert_int_equal(chdir(cwd), 0);
  posix_spawn_file_actions_destroy(&fa);
  assert_int_equal(e, 0);
  int st = 0;
  for (int t = 0; t < secs * 100; t++) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) {
      r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      if (WIFSIGNALED(st)) print_error("cnnc killed by signal %d\n", WTERMSIG(st));
      break;
    }
    if (t == secs * 100 - 1) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      print_error("cnnc hung (killed after %d s)\n", secs);
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  FILE *f = fopen(errpath, "r");
  if (f) {
    size_t n = fread(r.err, 1, sizeof r.err - 1, f);
    r.err[n] = 0;
    fclose(f);
  }
  unlink(errpath);
  return r;
}

#define RUN(...) run_in(NULL, 60, (const char *const[]){__VA_ARGS__, NULL})

/* stderr holds `want` and only printable, valid UTF-8 text. */
static void assert_message(const Result *r, const char *want) {
  if (!strstr(r->err, want)) fail_msg("missing message \"%s\" in:\n%s", want, r->err);
  for (const unsigned char *p = (const unsigned char *)r->err; *p; p++) {
    if (*p < 0x20 && *p != '\n' && *p != '\t') fail_msg("control character 0x%02x in:\n%s", *p, r->err);
    if (*p >= 0x80) { /* a valid UTF-8 sequence */
      int n = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : *p >= 0xc2 ? 1 : -1;
      if (n < 0) fail_msg("invalid UTF-8 in:\n%s", r->err);
      for (int k = 1; k <= n; k++)
        if ((p[k] & 0xc0) != 0x80) fail_msg("invalid UTF-8 in:\n%s", r->err);
      p += n;
    }
  }
}

/* The run failed with `want`, status 1, and changed nothing. */
static void expect_error(const Snap *before, const Result *r, const char *want) {
  assert_message(r, want);
  if (r->status != 1) fail_msg("exit status %d, expected 1; stderr:\n%s", r->status, r->err);
  Snap after = snap();
  assert_same(before, &after, NULL);
}

/* ---- outputs ---- */

static void test_output_is_an_input(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "m.yaml");
  expect_error(&s, &r, "refusing to write the object file to 'm.yaml': it is the input file 'm.yaml'");
  r = RUN("m.yaml", "-o", "out.o", "--header", "m.yaml");
  expect_error(&s, &r, "refusing to write the header to 'm.yaml': it is the input file 'm.yaml'");
  r = RUN("m.yaml", "-o", "m.safetensors");
  expect_error(&s, &r, "refusing to write the object file to 'm.safetensors': it is the input file");
  r = RUN("m.yaml", "-o", "./m.yaml"); /* spellings differ, the file is the same */
  expect_error(&s, &r, "refusing to write the object file to './m.yaml': it is the input file 'm.yaml'");
}

static void test_output_is_an_input_by_link(void **state) {
  char a[512], b[512];
  path(a, sizeof a, "m.yaml");
  path(b, sizeof b, "hard.yaml");
  assert_int_equal(link(a, b), 0);
  path(b, sizeof b, "soft.o");
  assert_int_equal(symlink("m.safetensors", b), 0);
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "hard.yaml");
  expect_error(&s, &r, "refusing to write the object file to 'hard.yaml': it is the input file 'm.yaml'");
  r = RUN("m.yaml", "-o", "soft.o");
  expect_error(&s, &r, "refusing to write the object file to 'soft.o': it is the input file");
}

static void test_two_outputs_one_file(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "y.o", "--header", "./y.o");
  expect_error(&s, &r, "the object file 'y.o' and the header './y.o' are the same file");
}

static void test_failed_run_keeps_old_outputs(void **state) {
  Result r = RUN("m.yaml", "-o", "out.o");
  assert_int_equal(r.status, 0);
  Snap s = snap();
  r = RUN("m.yaml", "-o", "out.o", "--header", "nodir/out.h");
  expect_error(&s, &r, "cannot write the header 'nodir/out.h': directory 'nodir' does not exist");
  write_text("bad.yaml", "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 4]}]\nlayers: [{name: r, op: rleu}]\n");
  s = snap();
  r = RUN("bad.yaml", "-o", "out.o");
  expect_error(&s, &r, "unknown op 'rleu'");
}

static void test_output_is_a_directory(void **state) {
  char d[512];
  path(d, sizeof d, "outdir");
  assert_int_equal(mkdir(d, 0755), 0);
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "outdir");
  expect_error(&s, &r, "cannot write the object file 'outdir': it is a directory");
}

static void test_output_dangling_link(void **state) {
  char d[512];
  path(d, sizeof d, "dangling.o");
  assert_int_equal(symlink("nowhere/x.o", d), 0);
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "dangling.o");
  expect_error(&s, &r, "cannot write the object file 'dangling.o': it is a symbolic link to a missing file");
}

/* -o through a symbolic link replaces the file it names; the link stays. */
static void test_output_through_link(void **state) {
  write_text("real.o", "old");
  char d[512];
  path(d, sizeof d, "link.o");
  assert_int_equal(symlink("real.o", d), 0);
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "link.o", "--header", "m.h");
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after = snap();
  assert_same(&s, &after, (const char *const[]){"real.o", "m.h", NULL});
  const Entry *l = find(&after, "link.o");
  assert_non_null(l);
  assert_true(S_ISLNK(l->mode));
  assert_true(find(&after, "real.o")->size > 100);
}

/* -o /dev/null writes nothing anywhere and replaces no device. */
static void test_output_dev_null(void **state) {
  struct stat before, after;
  assert_int_equal(stat("/dev/null", &before), 0);
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "/dev/null");
  if (r.status != 0) fail_msg("%s", r.err);
  assert_int_equal(stat("/dev/null", &after), 0);
  assert_true(S_ISCHR(after.st_mode) && after.st_rdev == before.st_rdev && after.st_ino == before.st_ino);
  assert_int_equal(access("/dev/null.h", F_OK), -1);
  Snap s2 = snap();
  assert_same(&s, &s2, NULL);
  r = RUN("m.yaml", "-o", "/dev/null", "--header", "/dev/null");
  if (r.status != 0) fail_msg("%s", r.err);
}

/* A FIFO as output is written in place; one that nobody reads is an error, not a hang. */
static void test_output_fifo(void **state) {
  char f[512];
  path(f, sizeof f, "out.fifo");
  assert_int_equal(mkfifo(f, 0600), 0);
  Snap s = snap();
  Result r = run_in(NULL, 20, (const char *const[]){"m.yaml", "-o", "out.fifo", "--header", "m.h", NULL});
  expect_error(&s, &r, "cannot write the object file 'out.fifo': it is a FIFO that nobody reads");
}

/* ---- inputs ---- */

static void test_input_fifo(void **state) {
  char f[512];
  path(f, sizeof f, "spec.fifo");
  assert_int_equal(mkfifo(f, 0600), 0);
  path(f, sizeof f, "w.fifo");
  assert_int_equal(mkfifo(f, 0600), 0);
  write_text("w.yaml", "cnnc: 1\nname: m\nweights: w.fifo\ninputs: [{name: x, shape: [1, 4]}]\n"
                       "layers: [{name: fc, op: dense, units: 2}]\n");
  Snap s = snap();
  Result r = run_in(NULL, 20, (const char *const[]){"spec.fifo", "-o", "o.o", NULL});
  expect_error(&s, &r, "cannot read the model file 'spec.fifo': it is a FIFO (named pipe), not a regular file");
  r = run_in(NULL, 20, (const char *const[]){"w.yaml", "-o", "o.o", NULL});
  expect_error(&s, &r, "w.yaml:3:10: error: cannot read the weights file 'w.fifo': it is a FIFO (named pipe)");
}

static void test_input_devices(void **state) {
  Snap s = snap();
  Result r = RUN("/dev/zero", "-o", "o.o");
  expect_error(&s, &r, "cannot read the model file '/dev/zero': it is a character device, not a regular file");
  r = RUN(".", "-o", "o.o");
  expect_error(&s, &r, "cannot read the model file '.': it is a directory, not a regular file");
  r = RUN("nope.yaml", "-o", "o.o");
  expect_error(&s, &r, "cannot read the model file 'nope.yaml': No such file or directory");
}

/* A binary file as the model: a message, no raw bytes on the terminal. */
static void test_input_binary(void **state) {
  Snap s = snap();
  Result r = RUN("m.safetensors", "-o", "o.o");
  expect_error(&s, &r, "error:");
}

static void test_input_stdin(void **state) {
  char in[512];
  path(in, sizeof in, "m.yaml");
  write_text("s.yaml", "cnnc: 1\nname: s\ninputs: [{name: x, shape: [1, 4]}]\nlayers: [{name: r, op: relu}]\n");
  char sin[512];
  path(sin, sizeof sin, "s.yaml");
  Snap s = snap();
  Result r = run_in(sin, 60, (const char *const[]){"-", NULL});
  expect_error(&s, &r, "reading the model from standard input needs -o FILE");
  r = run_in(sin, 60, (const char *const[]){"-", "-o", "s.yaml", NULL});
  expect_error(&s, &r, "refusing to write the object file to 's.yaml': it is the input file '-'");
  r = run_in(sin, 60, (const char *const[]){"-", "-o", "s.o", NULL});
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after = snap();
  assert_same(&s, &after, (const char *const[]){"s.o", "s.h", NULL});
  assert_non_null(find(&after, "s.h"));
}

/* ---- --cpu lists ---- */

/* A bad --cpu list is refused before anything is written, with every
 * problem reported; a good one read from standard input (parsed once per
 * CPU, from the same bytes) gives one object and its header. */
static void test_cpu_list(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "--cpu=x86-64-v3,znver3", "-o", "c.o");
  expect_error(&s, &r, "x86-64-v3 and znver3 need the same instruction-set level (x86-64-v3)");
  r = RUN("m.yaml", "--cpu=x86-64-v3,,x86-64", "-o", "c.o");
  expect_error(&s, &r, "an empty CPU name in the list");
  r = RUN("m.yaml", "--cpu=nosuch,x86-64-v3,other", "-o", "c.o");
  expect_error(&s, &r, "unknown CPU 'nosuch'");
  expect_error(&s, &r, "unknown CPU 'other'");
  r = RUN("m.yaml", "--target=aarch64-linux-gnu", "--cpu=cortex-a53,neoverse-n1", "-o", "c.o");
  expect_error(&s, &r, "a list of CPUs is for x86-64 targets");
  r = RUN("m.yaml", "--cpu=x86-64,x86-64-v3", "--profile", "-o", "c.o");
  expect_error(&s, &r, "--profile takes one --cpu, not a list");
  write_text("s.yaml", "cnnc: 1\nname: s\ninputs: [{name: x, shape: [1, 4]}]\nlayers: [{name: r, op: relu}]\n");
  char sin[512];
  path(sin, sizeof sin, "s.yaml");
  Snap s2 = snap();
  r = run_in(sin, 60, (const char *const[]){"-", "--cpu=x86-64,x86-64-v3", "-o", "s.o", NULL});
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after = snap();
  assert_same(&s2, &after, (const char *const[]){"s.o", "s.h", NULL});
  char h[512];
  path(h, sizeof h, "s.h");
  FILE *f = fopen(h, "r");
  assert_non_null(f);
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  if (!strstr(text, "#define S_CPU_VARIANTS \"x86-64-v3,x86-64\"")) fail_msg("s.h lacks the variants:\n%s", text);
}

/* ---- --check ---- */

/* --check writes nothing (no object, no header, not MODEL.o by default),
 * refuses the options that would write code, writes --emit-dot's graph,
 * and reports a model's errors like a compile. */
static void test_check(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "--check", "--stats");
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after = snap();
  assert_same(&s, &after, NULL);
  r = RUN("m.yaml", "--check", "-o", "c.o");
  expect_error(&s, &r, "--check writes no object: it cannot take -o");
  r = RUN("m.yaml", "--check", "--emit-asm", "c.s");
  expect_error(&s, &r, "--check writes no object: it cannot take --emit-asm");
  r = RUN("m.yaml", "--check", "--emit-dot", "g.dot");
  if (r.status != 0) fail_msg("%s", r.err);
  Snap dot = snap();
  assert_same(&s, &dot, (const char *const[]){"g.dot", NULL});
  assert_non_null(find(&dot, "g.dot"));
  write_text("bad.yaml", "cnnc: 1\nname: b\ninputs:\n  - {name: x, shape: [1, 4]}\n"
                         "layers:\n  - {name: fc, op: dense}\n");
  Snap s2 = snap();
  r = RUN("bad.yaml", "--check");
  expect_error(&s2, &r, "bad.yaml:6:");
}

/* ---- --emit-yaml ---- */

/* The spec and the safetensors file beside it are outputs like any other:
 * never an input (the model, its weights), never another output. */
static void test_emit_yaml_is_an_input(void **state) {
  char a[512], b[512];
  path(a, sizeof a, "m.yaml");
  path(b, sizeof b, "hard.yaml");
  assert_int_equal(link(a, b), 0);
  Snap s = snap();
  Result r = RUN("m.yaml", "--emit-yaml", "m.yaml");
  expect_error(&s, &r, "refusing to write the YAML spec to 'm.yaml': it is the input file 'm.yaml'");
  r = RUN("m.yaml", "--emit-yaml", "./hard.yaml");
  expect_error(&s, &r, "refusing to write the YAML spec to './hard.yaml': it is the input file 'm.yaml'");
  r = RUN("m.yaml", "--emit-yaml", "m.spec"); /* beside it: m.safetensors, the weights */
  expect_error(&s, &r, "refusing to write the weights file to 'm.safetensors': it is the input file 'm.safetensors'");
  r = RUN("m.yaml", "--emit-yaml", "x.safetensors");
  expect_error(&s, &r, "the YAML spec 'x.safetensors' and the weights file 'x.safetensors' are the same file");
  r = RUN("m.yaml", "--emit-yaml", "o.yaml", "-o", "o.safetensors");
  expect_error(&s, &r, "the object file 'o.safetensors' and the weights file 'o.safetensors' are the same file");
  r = RUN("m.yaml", "--emit-yaml", "nodir/o.yaml");
  expect_error(&s, &r, "cannot write the YAML spec 'nodir/o.yaml': directory 'nodir' does not exist");
  r = RUN("m.yaml", "--emit-yaml", "o.yaml", "--header", "o.h");
  expect_error(&s, &r, "--emit-yaml without -o only converts the model: give -o FILE to compile it too");
}

/* Without -o a conversion writes the spec and its weights, nothing else;
 * with -o the object and the header too.  The spec compiles. */
static void test_emit_yaml_outputs(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "--emit-yaml", "c.yaml");
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after = snap();
  assert_same(&s, &after, (const char *const[]){"c.yaml", "c.safetensors", NULL});
  assert_non_null(find(&after, "c.safetensors"));
  r = RUN("m.yaml", "--emit-yaml", "d.yaml", "-o", "d.o");
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after2 = snap();
  assert_same(&after, &after2, (const char *const[]){"d.yaml", "d.safetensors", "d.o", "d.h", NULL});
  assert_non_null(find(&after2, "d.h"));
  r = RUN("c.yaml", "-o", "c.o");
  if (r.status != 0) fail_msg("%s", r.err);
  char in[512]; /* standard input needs no -o to be converted */
  path(in, sizeof in, "m.yaml");
  Snap s3 = snap();
  r = run_in(in, 60, (const char *const[]){"-", "--emit-yaml", "t.yaml", NULL});
  if (r.status != 0) fail_msg("%s", r.err);
  Snap after3 = snap();
  assert_same(&s3, &after3, (const char *const[]){"t.yaml", "t.safetensors", NULL});
}

/* A failed run leaves an earlier spec and its weights as they were. */
static void test_emit_yaml_failed_run(void **state) {
  Result r = RUN("m.yaml", "--emit-yaml", "e.yaml", "-o", "e.o");
  if (r.status != 0) fail_msg("%s", r.err);
  Snap s = snap();
  r = RUN("m.yaml", "--emit-yaml", "e.yaml", "-o", "e.o", "--header", "nodir/e.h");
  expect_error(&s, &r, "cannot write the header 'nodir/e.h': directory 'nodir' does not exist");
  write_text("bad.yaml", "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 4]}]\nlayers: [{name: r, op: rleu}]\n");
  s = snap();
  r = RUN("bad.yaml", "--emit-yaml", "e.yaml");
  expect_error(&s, &r, "unknown op 'rleu'");
}

/* A device gets the spec and no weights file beside it (/dev/null.safetensors). */
static void test_emit_yaml_dev_null(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "--emit-yaml", "/dev/null");
  if (r.status != 0) fail_msg("%s", r.err);
  assert_int_equal(access("/dev/null.safetensors", F_OK), -1);
  Snap after = snap();
  assert_same(&s, &after, NULL);
}

/* ---- limits ---- */

/* 16 layers aliasing one 4096x4096 inline matrix: refused at once by
 * --max-yaml-values, not after gigabytes of work. */
static void test_alias_bomb(void **state) {
  char p[512];
  path(p, sizeof p, "bomb.yaml");
  /* one row anchored, 4095 aliases of it, then 15 aliases of the matrix */
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs("cnnc: 1\nname: b\ninputs: [{name: x, shape: [1, 4096]}]\nlayers:\n"
        "  - {name: d0, op: dense, units: 4096, bias: false, weight: &w [&r [", f);
  for (int i = 0; i < 4096; i++) fputs(i ? ", 0.5" : "0.5", f);
  fputs("]", f);
  for (int i = 1; i < 4096; i++) fputs(", *r", f);
  fputs("]}\n", f);
  for (int k = 1; k < 16; k++) fprintf(f, "  - {name: d%d, op: dense, units: 4096, bias: false, weight: *w}\n", k);
  fclose(f);
  Snap s = snap();
  time_t t0 = time(NULL);
  Result r = RUN("bomb.yaml", "-o", "b.o");
  expect_error(&s, &r, "the spec has more than 33554432 YAML values (each alias counts as a copy of what it names)");
  assert_true(time(NULL) - t0 < 20);
}

/* A dense layer of 2^31 weights under --random-weights: a located error
 * before anything is allocated. */
static void test_param_limit(void **state) {
  write_text("big.yaml", "cnnc: 1\nname: big\ninputs: [{name: x, shape: [1, 65536]}]\nlayers:\n"
                         "  - {name: fc, op: dense, units: 32768, bias: false}\n");
  Snap s = snap();
  Result r = RUN("big.yaml", "--random-weights", "1", "-o", "big.o");
  expect_error(&s, &r, "big.yaml:5:5: error: the parameters are too large: with 'fc.weight' ([32768, 65536])");
  r = RUN("m.yaml", "--max-param-bytes", "16", "-o", "m.o");
  expect_error(&s, &r, "the limit set by --max-param-bytes");
  r = RUN("m.yaml", "--max-layers", "1", "-o", "m.o");
  expect_error(&s, &r, "the model has more than 1 layers and inputs (the limit set by --max-layers)");
  r = RUN("m.yaml", "--max-file-bytes", "10", "-o", "m.o");
  expect_error(&s, &r, "error: the model file 'm.yaml' is 120 bytes, more than 10 (the limit set by --max-file-bytes)");
  r = RUN("m.yaml", "--max-memory", "1K", "-o", "m.o");
  expect_error(&s, &r, "more than the 0.0 MiB allowed by --max-memory");
  r = RUN("m.yaml", "--max-layers", "-3", "-o", "m.o");
  assert_int_equal(r.status, 1);
  assert_message(&r, "--max-layers needs a positive number");
}

/* The documented limit of 2^24 inline values per parameter is reachable. */
static void test_inline_limit_reachable(void **state) {
  for (int extra = 0; extra < 2; extra++) {
    char p[512];
    path(p, sizeof p, "inl.yaml");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    int64_t k = 8388608 + extra;
    fprintf(f, "cnnc: 1\nname: inl\ninputs: [{name: x, shape: [1, %lld]}]\nlayers:\n"
               "  - {name: fc, op: dense, units: 2, bias: false, weight: [",
            (long long)k);
    for (int64_t i = 0; i < 2 * k; i++) fputs(i ? ",1" : "1", f);
    fputs("]}\n", f);
    fclose(f);
    Result r = run_in(NULL, 300, (const char *const[]){"inl.yaml", "-O0", "-o", "/dev/null", NULL});
    if (extra == 0 && r.status != 0) fail_msg("2^24 inline values: %s", r.err);
    if (extra == 1) {
      assert_int_equal(r.status, 1);
      assert_message(&r, "inline 'weight' has more than 16777216 values; use a weights file");
    }
  }
}

/* ---- names in the generated header ---- */

/* Compiles a file including the header with -Werror, as C and as C++. */
static void compile_header(const char *h) {
  char src[512], obj[512], cmd[2048];
  path(src, sizeof src, "use.c");
  FILE *f = fopen(src, "w");
  assert_non_null(f);
  fprintf(f, "#include \"%s\"\nint main(void) { return 0; }\n", h);
  fclose(f);
  path(obj, sizeof obj, "use.o");
  const char *inc = getenv("CNNRT_INCLUDE");
  for (int cxx = 0; cxx < 2; cxx++) {
    snprintf(cmd, sizeof cmd, "%s -x %s %s -Wall -Wextra -Werror -I%s -I%s -c %s -o %s", cxx ? "c++" : "cc",
             cxx ? "c++" : "c", cxx ? "-std=c++11" : "-std=c11", inc ? inc : ".", dir, src, obj);
    if (system(cmd) != 0) fail_msg("the header %s does not compile as %s: %s", h, cxx ? "C++" : "C", cmd);
  }
}

static void test_header_names(void **state) {
  char d[512];
  path(d, sizeof d, "we*");
  assert_int_equal(mkdir(d, 0755), 0);
  path(d, sizeof d, "we*/ird");
  assert_int_equal(mkdir(d, 0755), 0);
  path(d, sizeof d, "we*/ird/n.yaml");
  FILE *f = fopen(d, "w");
  assert_non_null(f);
  fputs("cnnc: 1\nname: net\ninputs:\n"
        "  - {name: workspace, shape: [1, 4]}\n  - {name: input.1, shape: [1, 4]}\n  - {name: \"0\", shape: [1, 4]}\n"
        "  - {name: size_t, shape: [1, 4]}\n  - {name: NET_H, shape: [1, 4]}\n  - {name: class, shape: [1, 4]}\n"
        "  - {name: \"\\u00e9*/x\", shape: [1, 4]}\n  - {name: \"NULL\", shape: [1, 4]}\n  - {name: __x, shape: [1, 4]}\n"
        "  - {name: pool, shape: [1, 4]}\n"
        "outputs: [a, layer1.0.conv1, WORKSPACE_SIZE]\nlayers:\n"
        "  - {name: a, op: add, inputs: [workspace, input.1, \"0\", size_t, NET_H, class, \"\\u00e9*/x\", \"NULL\", __x, pool]}\n"
        "  - {name: layer1.0.conv1, op: relu}\n  - {name: WORKSPACE_SIZE, op: relu}\n",
        f);
  fclose(f);
  Result r = RUN("we*/ird/n.yaml", "-o", "n.o");
  if (r.status != 0) fail_msg("%s", r.err);
  compile_header("n.h");
  /* the header's workspace size is the workspace's, whatever the tensors are called */
  char h[512], line[4096];
  path(h, sizeof h, "n.h");
  f = fopen(h, "r");
  int found = 0;
  while (fgets(line, sizeof line, f)) found += !strncmp(line, "#define NET_WORKSPACE_SIZE ", 27);
  fclose(f);
  assert_int_equal(found, 1);
}

static void test_name_collisions(void **state) {
  write_text("c.yaml", "cnnc: 1\nname: m\ninputs:\n  - {name: x, shape: [1, 4]}\noutputs: [a, A]\nlayers:\n"
                       "  - {name: a, op: relu, input: x}\n  - {name: A, op: relu, input: x}\n");
  write_text("rt.yaml", "cnnc: 1\nname: cnnrt\ninputs:\n  - {name: x, shape: [1, 4]}\nlayers:\n  - {name: a, op: relu}\n");
  Snap s = snap();
  Result r = RUN("c.yaml", "-o", "c.o");
  expect_error(&s, &r, "c.yaml:8:5: error: output 'A' and 'a' both become the C name 'A' (ignoring case, as macros do)");
  r = RUN("rt.yaml", "-o", "rt.o");
  expect_error(&s, &r, "rt.yaml:2:7: error: invalid model name 'cnnrt': names 'cnnrt' and 'cnnrt_*' belong to the runtime");
  r = RUN("m.yaml", "--name", "cnnrt_x", "-o", "rt.o");
  expect_error(&s, &r, "invalid model name 'cnnrt_x'");
  r = RUN("m.yaml", "--name", "two", "-o", "two.o");
  if (r.status != 0) fail_msg("%s", r.err);
  compile_header("two.h");
}

/* A long name with multi-byte characters is never cut inside a character. */
static void test_messages_utf8(void **state) {
  char text[2048] = "cnnc: 1\nname: m\ninputs: [{name: x, shape: [1, 4]}]\nlayers:\n  - {name: r, op: ";
  for (int i = 0; i < 30; i++) strcat(text, "\xc3\xa9\xe2\x82\xac");
  strcat(text, "}\n");
  write_text("u.yaml", text);
  Snap s = snap();
  Result r = RUN("u.yaml", "-o", "u.o");
  expect_error(&s, &r, "unknown op");
}

/* ---- --depfile and --weights ---- */

static void read_text(const char *name, char *buf, size_t n) {
  char p[512];
  path(p, sizeof p, name);
  FILE *f = fopen(p, "r");
  if (!f) fail_msg("%s was not written", name);
  size_t k = fread(buf, 1, n - 1, f);
  buf[k] = 0;
  fclose(f);
}

/* The rule names both outputs and every file read, escaped as make reads
 * them; a failed run writes none, and the depfile is an output like the
 * others (never one of the inputs). */
static void test_depfile(void **state) {
  char a[512], b[512];
  path(a, sizeof a, "m.safetensors");
  path(b, sizeof b, "w $1#.safetensors");
  assert_int_equal(rename(a, b), 0);
  Result r = RUN("m.yaml", "-o", "out dir.o", "--depfile", "m.d", "--weights", "w $1#.safetensors");
  if (r.status != 0) fail_msg("status %d:\n%s", r.status, r.err);
  char d[1024];
  read_text("m.d", d, sizeof d);
  assert_string_equal(d, "out\\ dir.o out\\ dir.h: \\\n m.yaml \\\n w\\ $$1\\#.safetensors\n");
  Snap s = snap();
  r = RUN("m.yaml", "-o", "x.o", "--depfile", "m.d"); /* the spec's weights: m.safetensors is gone */
  expect_error(&s, &r, "m.yaml:3:10: error: cannot read the weights file");
  r = RUN("m.yaml", "-o", "x.o", "--depfile", "m.yaml", "--weights", "w $1#.safetensors");
  expect_error(&s, &r, "refusing to write the dependency file to 'm.yaml': it is the input file 'm.yaml'");
  r = RUN("m.yaml", "-o", "x.o", "--depfile", "x.o", "--weights", "w $1#.safetensors");
  expect_error(&s, &r, "are the same file");
}

static void test_weights_option(void **state) {
  Snap s = snap();
  Result r = RUN("m.yaml", "-o", "x.o", "--weights", "none.safetensors");
  expect_error(&s, &r, "--weights: error: cannot read the weights file 'none.safetensors'");
  write_text("m.onnx", "\x08\x07");
  s = snap();
  r = RUN("m.onnx", "-o", "x.o", "--weights", "m.safetensors");
  expect_error(&s, &r, "cnnc: error: --weights is for YAML specs");
}

/* --emit-dot: one box per layer, names escaped for DOT (any string is a
 * name), Graphviz reads it (when installed); an output like the others. */
static void test_emit_dot(void **state) {
  write_text("q.yaml", "cnnc: 1\nname: q\ninputs: [{name: 'in \"x\"', shape: [1, 4]}]\nlayers:\n"
                       "  - {name: fc, op: dense, units: 2, weight: [1, 2, 3, 4, 5, 6, 7, 8], bias: [0, 1]}\n"
                       "  - {name: 'out\\1', op: relu}\n"); /* fused into fc, under the output's name */
  Result r = RUN("q.yaml", "-o", "q.o", "--emit-dot", "q.dot");
  if (r.status != 0) fail_msg("status %d:\n%s", r.status, r.err);
  char d[8192];
  read_text("q.dot", d, sizeof d);
  if (!strstr(d, "digraph \"q\" {") || !strstr(d, "label=\"in \\\"x\\\"\\ninput\\n[1, 4] nchw\"") ||
      !strstr(d, "label=\"out\\\\1\\ndense + relu\\n[1, 2] nchw") || !strstr(d, "n0 -> n1;"))
    fail_msg("unexpected --emit-dot text:\n%s", d);
  if (access("/usr/bin/dot", X_OK) == 0) {
    char p[512], cmd[1200];
    path(p, sizeof p, "q.dot");
    snprintf(cmd, sizeof cmd, "/usr/bin/dot -Tsvg '%s' -o /dev/null", p);
    assert_int_equal(system(cmd), 0);
  }
  Snap s = snap();
  r = RUN("q.yaml", "-o", "q.o", "--emit-dot", "q.yaml");
  expect_error(&s, &r, "refusing to write the graph file to 'q.yaml': it is the input file 'q.yaml'");
}

/* SIGTERM while compiling leaves no temporary file behind. */
static void test_signal_cleans_up(void **state) {
  /* 400 MB of weights: writing the object takes long enough to be caught */
  write_text("v.yaml", "cnnc: 1\nname: v\ninputs: [{name: x, shape: [1, 1024]}]\nlayers:\n"
                       "  - {name: fc, op: dense, units: 100000, bias: false}\n");
  Snap s = snap();
  char *argv[] = {(char *)cnnc_path(), "v.yaml", "--random-weights", "1", "-O0", "-o", "v.o", NULL};
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
  assert_int_equal(chdir(cwd), 0);
  for (int ms = 0; ms < 30000; ms += 5) { /* wait until it writes its temporary file */
    DIR *d = opendir(dir);
    struct dirent *e;
    bool tmp = false;
    while ((e = readdir(d))) tmp |= !strncmp(e->d_name, ".v.o.", 5);
    closedir(d);
    if (tmp) break;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  Snap after = snap();
  if (!WIFSIGNALED(st)) fail_msg("cnnc finished before the signal (status %d): the test proves nothing", st);
  assert_same(&s, &after, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_output_is_an_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_is_an_input_by_link, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_outputs_one_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_run_keeps_old_outputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_is_a_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_dangling_link, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_through_link, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_dev_null, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_devices, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_binary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_stdin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cpu_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_emit_yaml_is_an_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_emit_yaml_outputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_emit_yaml_failed_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_emit_yaml_dev_null, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alias_bomb, setup, teardown),
      cmocka_unit_test_setup_teardown(test_param_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inline_limit_reachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_header_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_collisions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_messages_utf8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_depfile, setup, teardown),
      cmocka_unit_test_setup_teardown(test_weights_option, setup, teardown),
      cmocka_unit_test_setup_teardown(test_emit_dot, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signal_cleans_up, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
