/*
 * target.c: the target table, and the one place that resolves --target,
 * --cpu and --features.
 *
 * needs: the options; gives: a TargetInfo that the layout and the scheduler
 * (layout.c, schedule.c), the code generator and the emitter (emit.c) all read, or an
 * error listing what cnnc can serve, before LLVM is asked anything.
 *
 * Three tables, all plain data:
 *   arch_table  one row per instruction-set class the kernels are shaped
 *               for: vector width, registers, FMA, index width, FPU,
 *               bare metal (static code), the --profile clock, the memory
 *               sizes the tiling assumes, and the features --features may
 *               switch;
 *   triple_table  the triples' architecture components cnnc accepts, with
 *               the OS they need and their default CPU;
 *   cpu_table   the CPUs per triple architecture (LLVM 19 names) and their
 *               row in arch_table.
 * x86-64 CPUs map to SSE2, AVX2 or AVX-512 by their widest vectors; for
 * the host, LLVM's host feature string decides and sysfs gives the cache
 * sizes (the only host detection in cnnc).
 *
 * LLVM only warns about a CPU or feature it does not know (once per
 * function) and then compiles for a baseline, so every name is checked
 * here first.
 */
#include "cnnc.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <string.h>

/* ---- the architectures ---- */

enum { A_SSE2, A_AVX2, A_AVX512, A_NEON, A_V7EM_FP, A_V81M_MVE, A_V7M, A_V6M, A_COUNT };

static const TargetArch arch_table[] = {
    /* x86-64: 16 xmm/ymm registers, 32 zmm (PIC for Debian's PIE executables) */
    [A_SSE2] = {.name = "sse2", .vec = 4, .nregs = 16, .acc = 12, .fma = false, .fpu = true, .index_bits = 64,
                .clock = CLOCK_CYCLES, .l1 = 32 << 10, .l2 = 512 << 10,
                .features = "sse3,ssse3,sse4.1,sse4.2,avx,avx2,fma,f16c,avx512f"},
    [A_AVX2] = {.name = "avx2", .vec = 8, .nregs = 16, .acc = 12, .fma = true, .fpu = true, .index_bits = 64,
                .clock = CLOCK_CYCLES, .l1 = 32 << 10, .l2 = 512 << 10,
                .features = "sse3,ssse3,sse4.1,sse4.2,avx,avx2,fma,f16c,avx512f,avxvnni"},
    [A_AVX512] = {.name = "avx512", .vec = 16, .nregs = 32, .acc = 24, .fma = true, .fpu = true, .index_bits = 64,
                  .clock = CLOCK_CYCLES, .l1 = 32 << 10, .l2 = 512 << 10,
                  .features = "sse3,ssse3,sse4.1,sse4.2,avx,avx2,fma,f16c,avx512f,avx512vnni"},
    /* AArch64: 32 x 128-bit NEON registers, FMLA; the generic timer
     * (CNTVCT_EL0) is what user code may read (codegen.c reads it with an
     * inline-asm mrs: LLVM 19 lowers llvm.readsteadycounter to 0 there) */
    [A_NEON] = {.name = "neon", .vec = 4, .nregs = 32, .acc = 24, .fma = true, .fpu = true, .index_bits = 64,
                .clock = CLOCK_STEADY, .l1 = 32 << 10, .l2 = 512 << 10, .features = "dotprod,i8mm,fullfp16",
                .base_isa = true},
    /* Armv7E-M with FPv4-SP/FPv5 (M4, M7): scalar VFMA.F32 over 32 single
     * registers (s0-s31); 32-bit core; no cache on the M4, up to 64 KiB on
     * the M7: the tiling assumes a small fast memory */
    [A_V7EM_FP] = {.name = "armv7e-m+fp", .vec = 1, .nregs = 32, .acc = 20, .fma = true, .fpu = true, .index_bits = 32,
                   .bare_metal = true, .clock = CLOCK_DWT, .l1 = 16 << 10, .l2 = 64 << 10, .features = ""},
    /* Armv8.1-M with MVE-F (M55, M85): 8 Q registers of 4 floats, VFMA with
     * a scalar operand in a core register */
    [A_V81M_MVE] = {.name = "mve", .vec = 4, .nregs = 8, .acc = 6, .fma = true, .fpu = true, .index_bits = 32,
                    .fp_bits = true, .bare_metal = true, .clock = CLOCK_DWT, .l1 = 16 << 10, .l2 = 64 << 10,
                    .dot_i8 = true, .features = ""},
    /* M-profile without FPU: every float operation is a libgcc call
     * (__aeabi_fadd, ...); 13 core registers, of which the kernels get few */
    [A_V7M] = {.name = "armv7-m", .vec = 1, .nregs = 8, .acc = 2, .fma = false, .fpu = false, .index_bits = 32,
               .bare_metal = true, .clock = CLOCK_DWT, .l1 = 16 << 10, .l2 = 64 << 10, .features = ""},
    /* Armv6-M (M0, M0+): no DWT cycle counter either, and no divide instruction */
    [A_V6M] = {.name = "armv6-m", .vec = 1, .nregs = 4, .acc = 1, .fma = false, .fpu = false, .index_bits = 32,
               .no_div = true, .thumb1 = true, .bare_metal = true, .clock = CLOCK_NONE, .l1 = 8 << 10, .l2 = 32 << 10, .features = ""},
};
_Static_assert(sizeof arch_table / sizeof *arch_table == A_COUNT, "one row per architecture");

/* ---- the triples ---- */

typedef struct {
  const char *arch;        /* triple's first component */
  const char *os;          /* the OS it needs ("none": bare metal), NULL: any */
  const char *default_cpu; /* for a foreign triple without --cpu */
  const char *example;     /* a triple to suggest */
} TripleInfo;

static const TripleInfo triple_table[] = {
    {"x86_64", "linux", "x86-64", "x86_64-linux-gnu"},
    {"aarch64", NULL, "generic", "aarch64-linux-gnu"},
    {"thumbv8.1m.main", "none", "cortex-m55", "thumbv8.1m.main-none-eabihf"},
    {"thumbv7em", "none", "cortex-m4", "thumbv7em-none-eabihf"},
    {"thumbv7m", "none", "cortex-m3", "thumbv7m-none-eabi"},
    {"thumbv6m", "none", "cortex-m0plus", "thumbv6m-none-eabi"},
};

/* ---- the CPUs ---- */

typedef struct {
  const char *arch; /* triple architecture */
  const char *name; /* LLVM's CPU name */
  int a;            /* arch_table row; -1 for x86 (by x86_width) */
} CpuInfo;

/* Arm CPUs (LLVM 19, `llc -mtriple=<triple> -mcpu=help`). */
static const CpuInfo cpu_table[] = {
    {"aarch64", "generic", A_NEON},      {"aarch64", "cortex-a53", A_NEON},  {"aarch64", "cortex-a55", A_NEON},
    {"aarch64", "cortex-a57", A_NEON},   {"aarch64", "cortex-a72", A_NEON},  {"aarch64", "cortex-a76", A_NEON},
    {"aarch64", "cortex-a78", A_NEON},   {"aarch64", "cortex-x1", A_NEON},   {"aarch64", "neoverse-n1", A_NEON},
    {"aarch64", "neoverse-n2", A_NEON},  {"aarch64", "neoverse-v1", A_NEON}, {"aarch64", "apple-m1", A_NEON},
    {"thumbv8.1m.main", "cortex-m55", A_V81M_MVE}, {"thumbv8.1m.main", "cortex-m85", A_V81M_MVE},
    {"thumbv7em", "cortex-m4", A_V7EM_FP}, {"thumbv7em", "cortex-m7", A_V7EM_FP},
    {"thumbv7m", "cortex-m3", A_V7M},
    {"thumbv6m", "cortex-m0", A_V6M},    {"thumbv6m", "cortex-m0plus", A_V6M},
};

/* The 64-bit x86 CPUs LLVM 19 knows, with their widest vector width in
 * floats (from `llc -march=x86-64 -mcpu=help` and each CPU's features)
 * and the x86-64 psABI level that covers the instructions code for them
 * may use (SSE3 to AVX-512, FMA, F16C, BMI, LZCNT; cg_cpu.c checks it at
 * the first call): 1 the baseline, 2-4 x86-64-v2..v4.  Negative: no
 * level covers it (AVX without AVX2; AMD's SSE4A, FMA4, XOP, TBM and
 * LZCNT without SSSE3; Xeon Phi's AVX-512 ER/PF without BW/DQ/VL), so no
 * run-time check could keep its code from dying of SIGILL: refused, with
 * x86-64-v(-level) suggested (-1: x86-64). */
typedef struct {
  const char *name;
  int vec;   /* 16, 8, 4 */
  int level; /* 1-4, or minus the level to suggest */
} CpuWidth;

static const CpuWidth x86_table[] = {
    {"cannonlake", 16, 4}, {"cascadelake", 16, 4}, {"cooperlake", 16, 4}, {"emeraldrapids", 16, 4},
    {"graniterapids", 16, 4}, {"graniterapids-d", 16, 4}, {"graniterapids_d", 16, 4}, {"icelake-client", 16, 4},
    {"icelake-server", 16, 4}, {"icelake_client", 16, 4}, {"icelake_server", 16, 4}, {"knl", 16, -3},
    {"knm", 16, -3}, {"mic_avx512", 16, -3}, {"rocketlake", 16, 4}, {"sapphirerapids", 16, 4}, {"skx", 16, 4},
    {"skylake-avx512", 16, 4}, {"skylake_avx512", 16, 4}, {"tigerlake", 16, 4}, {"x86-64-v4", 16, 4},
    {"znver4", 16, 4}, {"znver5", 16, 4}, {"alderlake", 8, 3}, {"arrowlake", 8, 3}, {"arrowlake-s", 8, 3},
    {"arrowlake_s", 8, 3}, {"bdver4", 8, -3}, {"broadwell", 8, 3}, {"clearwaterforest", 8, 3}, {"core-avx2", 8, 3},
    {"core_4th_gen_avx", 8, 3}, {"core_4th_gen_avx_tsx", 8, 3}, {"core_5th_gen_avx", 8, 3},
    {"core_5th_gen_avx_tsx", 8, 3}, {"gracemont", 8, 3}, {"grandridge", 8, 3}, {"haswell", 8, 3},
    {"lunarlake", 8, 3}, {"meteorlake", 8, 3}, {"pantherlake", 8, 3}, {"raptorlake", 8, 3}, {"sierraforest", 8, 3},
    {"skylake", 8, 3}, {"x86-64-v3", 8, 3}, {"znver1", 8, 3}, {"znver2", 8, 3}, {"znver3", 8, 3},
    {"amdfam10", 4, -1}, {"athlon-fx", 4, 1}, {"athlon64", 4, 1}, {"athlon64-sse3", 4, 2}, {"atom", 4, 2},
    {"atom_sse4_2", 4, 2}, {"atom_sse4_2_movbe", 4, 2}, {"barcelona", 4, -1}, {"bdver1", 4, -2}, {"bdver2", 4, -2},
    {"bdver3", 4, -2}, {"bonnell", 4, 2}, {"btver1", 4, -1}, {"btver2", 4, -2}, {"core-avx-i", 4, -2},
    {"core2", 4, 2}, {"core_2_duo_sse4_1", 4, 2}, {"core_2_duo_ssse3", 4, 2}, {"core_2nd_gen_avx", 4, -2},
    {"core_3rd_gen_avx", 4, -2}, {"core_aes_pclmulqdq", 4, 2}, {"core_i7_sse4_2", 4, 2}, {"corei7", 4, 2},
    {"corei7-avx", 4, -2}, {"generic", 4, 1}, {"goldmont", 4, 2}, {"goldmont-plus", 4, 2}, {"goldmont_plus", 4, 2},
    {"ivybridge", 4, -2}, {"k8", 4, 1}, {"k8-sse3", 4, 2}, {"nehalem", 4, 2}, {"nocona", 4, 2}, {"opteron", 4, 1},
    {"opteron-sse3", 4, 2}, {"penryn", 4, 2}, {"sandybridge", 4, -2}, {"silvermont", 4, 2}, {"slm", 4, 2},
    {"tremont", 4, 2}, {"westmere", 4, 2}, {"x86-64", 4, 1}, {"x86-64-v2", 4, 2},
};

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Vector width of a known x86-64 CPU, 0 if the name is unknown. */
int target_x86_cpu_width(const char *cpu) {
  for (size_t i = 0; i < COUNT(x86_table); i++)
    if (!strcmp(cpu, x86_table[i].name)) return x86_table[i].vec;
  return 0;
}

static int x86_arch(int vec) { return vec == 16 ? A_AVX512 : vec == 8 ? A_AVX2 : A_SSE2; }

/* +1 if `feat` (e.g. "avx2") is switched on in the list, -1 if off, 0 if absent. */
static int has_feature(const char *list, const char *feat) {
  int r = 0;
  size_t n = strlen(feat);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n + 1 && !strncmp(p + 1, feat, n)) r = p[0] == '+' ? 1 : -1;
    p = e ? e + 1 : NULL;
  }
  return r;
}

/* Whether the comma list `list` holds the name p[0..n). */
static bool in_list(const char *list, const char *p, size_t n) {
  for (const char *q = list; *q;) {
    const char *e = strchr(q, ',');
    size_t len = e ? (size_t)(e - q) : strlen(q);
    if (len == n && !strncmp(q, p, n)) return true;
    q = e ? e + 1 : q + len;
  }
  return false;
}

static int64_t cache_size(int index, int64_t fallback) {
  char path[96], buf[32];
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
  FILE *f = fopen(path, "r");
  if (!f) return fallback;
  int64_t v = 0;
  char unit = 0;
  if (fgets(buf, sizeof buf, f) && sscanf(buf, "%lld%c", (long long *)&v, &unit) >= 1)
    v *= unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1;
  fclose(f);
  return v > 0 ? v : fallback;
}

/* The component `k` (0: arch, 1: vendor, 2: OS, 3: environment) of a
 * normalised triple, into buf. */
static const char *component(const char *triple, int k, char *buf, size_t size) {
  const char *p = triple;
  for (int i = 0; i < k && p; i++) p = strchr(p, '-'), p = p ? p + 1 : NULL;
  size_t n = 0;
  if (p)
    while (p[n] && p[n] != '-') n++;
  snprintf(buf, size, "%.*s", (int)n, p ? p : "");
  return buf;
}

static const TripleInfo *find_triple(const char *arch) {
  for (size_t i = 0; i < COUNT(triple_table); i++)
    if (!strcmp(arch, triple_table[i].arch)) return &triple_table[i];
  return NULL;
}

static char *list_triples(Arena *a) {
  char *s = "";
  for (size_t i = 0; i < COUNT(triple_table); i++)
    s = arena_printf(a, "%s%s%s", s, i ? ", " : "", triple_table[i].example);
  return s;
}

static char *list_cpus(Arena *a, const char *arch) {
  char *s = "";
  for (size_t i = 0; i < COUNT(cpu_table); i++)
    if (!strcmp(cpu_table[i].arch, arch)) s = arena_printf(a, "%s%s%s", s, *s ? ", " : "", cpu_table[i].name);
  return s;
}

/* The triple: known architecture, the OS it needs, a float ABI its CPU can do. */
static bool check_triple(Arena *a, TargetInfo *t, const char *arch) {
  char os[32], env[32];
  component(t->triple, 2, os, sizeof os);
  component(t->triple, 3, env, sizeof env);
  const TripleInfo *ti = find_triple(arch);
  if (!ti) {
    error_plain("cnnc cannot compile for '%s' (architecture '%s'); targets: %s", t->triple, arch, list_triples(a));
    return false;
  }
  if (ti->os && strncmp(os, ti->os, strlen(ti->os))) {
    error_plain("cnnc cannot compile for '%s': %s needs the OS '%s' (e.g. %s)", t->triple, arch, ti->os,
                ti->example);
    return false;
  }
  if (ti->os && !strcmp(ti->os, "none") && strncmp(env, "eabi", 4)) {
    error_plain("cnnc cannot compile for '%s': a bare-metal Arm triple ends in -eabi (soft-float calls) "
                "or -eabihf (float arguments in FP registers)", t->triple);
    return false;
  }
  return true;
}

/* The CPU: one of the table's for the triple's architecture. */
static bool resolve_cpu(Arena *a, TargetInfo *t, const char *arch, const char *cpu) {
  if (!strcmp(arch, "x86_64")) {
    const CpuWidth *c = NULL;
    for (size_t i = 0; i < COUNT(x86_table) && !c; i++)
      if (!strcmp(cpu, x86_table[i].name)) c = &x86_table[i];
    if (!c) {
      error_plain("unknown CPU '%.200s' for %s (e.g. x86-64, x86-64-v2, x86-64-v3, x86-64-v4, haswell, znver4, "
                  "skylake-avx512)", cpu, t->triple);
      return false;
    }
    if (c->level < 0) {
      error_plain("--cpu=%s: its instruction set matches no x86-64 psABI level (AVX without AVX2, or AMD's "
                  "SSE4A, FMA4 or XOP, or Xeon Phi's AVX-512), so an object for it could not check the CPU at "
                  "run time; use --cpu=%s, which such a CPU runs", cpu, target_level_name(-c->level));
      return false;
    }
    t->arch = &arch_table[x86_arch(c->vec)];
    t->level = c->level > 1 ? c->level : 0;
    return true;
  }
  for (size_t i = 0; i < COUNT(cpu_table); i++)
    if (!strcmp(cpu_table[i].arch, arch) && !strcmp(cpu_table[i].name, cpu)) {
      t->arch = &arch_table[cpu_table[i].a];
      return true;
    }
  error_plain("unknown CPU '%.200s' for %s (cnnc knows: %s)", cpu, t->triple, list_cpus(a, arch));
  return false;
}

/* --features: each +name or -name one the architecture lets cnnc switch. */
static bool check_features(const TargetInfo *t, const char *features) {
  bool ok = true;
  for (const char *p = features; *p;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n < 2 || (p[0] != '+' && p[0] != '-') || !in_list(t->arch->features, p + 1, n - 1)) {
      if (*t->arch->features)
        error_plain("--features: cnnc does not know '%.*s' for %s (known, each with + or -: %s)", (int)n, p,
                    t->cpu, t->arch->features);
      else
        error_plain("--features: '%.*s': the CPU %s sets every feature cnnc uses; --features takes none", (int)n,
                    p, t->cpu);
      ok = false;
    }
    p = e ? e + 1 : p + n;
  }
  return ok;
}

/* The psABI level a +feature needs (check_features allows only these). */
static int feature_level(const char *p, size_t n) {
  static const char *const v3[] = {"avx", "avx2", "fma", "f16c", "avxvnni"}, *const v4[] = {"avx512f", "avx512vnni"};
  for (size_t i = 0; i < COUNT(v4); i++)
    if (strlen(v4[i]) == n && !strncmp(p, v4[i], n)) return 4;
  for (size_t i = 0; i < COUNT(v3); i++)
    if (strlen(v3[i]) == n && !strncmp(p, v3[i], n)) return 3;
  return 2; /* sse3 .. sse4.2 */
}

/* x86 --features that change the vector width, FMA or the level checked
 * (a feature switched on raises it; one switched off leaves the CPU's:
 * the rest of that level may still be used).  AVX-512 kernels need F, BW,
 * DQ and VL (LLVM cannot select some of their masked operations with F
 * alone), so +avx512f brings the others. */
static void x86_features(Arena *a, TargetInfo *t, const char *f) {
  for (const char *p = f; *p;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (p[0] == '+') {
      int l = feature_level(p + 1, n - 1);
      if (l > t->level) t->level = l;
    }
    p = e ? e + 1 : p + n;
  }
  if (has_feature(f, "avx512f") > 0) t->features = arena_printf(a, "%s,+avx512vl,+avx512bw,+avx512dq,+avx512cd", f);
  int vec = t->arch->vec;
  bool fma = t->arch->fma;
  if (has_feature(f, "avx512f") > 0) vec = 16;
  else if (has_feature(f, "avx512f") < 0 && vec > 8) vec = 8;
  if (has_feature(f, "avx2") > 0 && vec < 8) vec = 8;
  else if (has_feature(f, "avx2") < 0 && vec > 4) vec = 4;
  if (has_feature(f, "fma")) fma = has_feature(f, "fma") > 0;
  t->arch = &arch_table[x86_arch(vec)];
  t->fma = fma;
}

/* The host: LLVM's CPU name and features, sysfs's caches. */
static void host(Arena *a, TargetInfo *t, const char *arch) {
  char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
  t->cpu = arena_printf(a, "%s", cpu);
  t->features = arena_printf(a, "%s", feat);
  if (!strcmp(arch, "x86_64")) {
    int vec = has_feature(feat, "avx512f") > 0 ? 16 : has_feature(feat, "avx2") > 0 ? 8 : 4;
    t->arch = &arch_table[x86_arch(vec)];
    /* the highest level this CPU has all of (its code may use more: docs/targets.md) */
    static const char *const v2[] = {"sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf"},
                             *const v3[] = {"avx", "avx2", "fma", "f16c", "bmi", "bmi2", "lzcnt", "movbe"},
                             *const v4[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"};
    bool ok = true;
    for (size_t i = 0; i < COUNT(v2); i++) ok &= has_feature(feat, v2[i]) > 0;
    t->level = ok ? 2 : 0;
    for (size_t i = 0; i < COUNT(v3); i++) ok &= has_feature(feat, v3[i]) > 0;
    if (ok) t->level = 3;
    for (size_t i = 0; i < COUNT(v4); i++) ok &= has_feature(feat, v4[i]) > 0;
    if (ok) t->level = 4;
  } else {
    t->arch = &arch_table[A_NEON]; /* a native AArch64 build: tuned for this CPU, Armv8.0 instructions */
    t->features = "";
  }
  t->fma = has_feature(feat, "fma") > 0 || strcmp(arch, "x86_64");
  t->l1 = cache_size(0, t->arch->l1);
  t->l2 = cache_size(2, t->arch->l2);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
}

bool target_info(const Options *o, Arena *a, TargetInfo *t) {
  char *host_triple = LLVMGetDefaultTargetTriple();
  char *norm = LLVMNormalizeTargetTriple(o->triple ? o->triple : host_triple);
  char *host_norm = LLVMNormalizeTargetTriple(host_triple);
  char arch[32], env[32];
  *t = (TargetInfo){.winograd = o->winograd, .fuse_dw = o->fuse_dw};
  /* LLVM's Triple takes components by position: "thumbv7em-none-eabihf"
   * would be vendor "none", OS "eabihf", and lose the hard-float ABI; the
   * normalised "thumbv7em-unknown-none-eabihf" keeps it. */
  t->triple = arena_printf(a, "%s", norm);
  bool native = !strcmp(norm, host_norm);
  LLVMDisposeMessage(host_triple);
  LLVMDisposeMessage(norm);
  LLVMDisposeMessage(host_norm);
  component(t->triple, 0, arch, sizeof arch);
  component(t->triple, 3, env, sizeof env);
  if (!check_triple(a, t, arch)) return false;
  if (native && !o->cpu) {
    host(a, t, arch);
  } else {
    t->cpu = o->cpu ? o->cpu : find_triple(arch)->default_cpu;
    t->features = "";
    if (!resolve_cpu(a, t, arch, t->cpu)) return false;
    t->fma = t->arch->fma;
    t->l1 = t->arch->l1;
    t->l2 = t->arch->l2;
  }
  if (o->features) {
    if (!check_features(t, o->features)) return false;
    t->features = o->features;
    if (!strcmp(arch, "x86_64")) x86_features(a, t, o->features);
  }
  t->vec = t->arch->vec;
  t->nregs = t->arch->nregs;
  t->acc = t->arch->acc;
  t->isa = t->arch->name;
  t->hard_float = !strcmp(env, "eabihf");
  if (t->hard_float && !t->arch->fpu) {
    error_plain("%s has no FPU, so it cannot use the hard-float ABI of %s (use %s-none-eabi)", t->cpu, t->triple,
                arch);
    return false;
  }
  t->float_abi = !t->arch->fpu ? "soft" : t->arch->bare_metal && !t->hard_float ? "softfp" : "hard";
  if (o->profile && t->arch->clock == CLOCK_NONE) {
    error_plain("--profile needs a cycle counter, and %s has none (Armv6-M has no DWT CYCCNT)", t->cpu);
    return false;
  }
  return true;
}

/* The x86-64 psABI level an object's run checks at its first call
 * (cg_cpu.c): the CPU's from the table (the host's: the highest it has
 * all of), raised by --features that switch on a higher level's
 * instructions; 0 (no check) for the x86-64 baseline, where every x86-64
 * CPU runs the code, and for Arm targets (AArch64's NEON is part of the
 * base architecture; a Cortex-M object is built for one core). */
int target_cpu_level(const TargetInfo *t) { return t->level; }

const char *target_level_name(int level) {
  static const char *const names[] = {"x86-64", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
  return level >= 0 && level <= 4 ? names[level] : "x86-64";
}
