/*
 * target.c: the few target facts the schedule depends on.
 *
 * For the host, LLVM's host feature string says which vector extensions
 * exist and sysfs gives the cache sizes.  For another CPU (--cpu) the
 * vector width comes from a table of the x86 CPU names LLVM knows (LLVM's C API
 * cannot enumerate a CPU's features); --features can then add or remove
 * +avx512f / +avx2 / +fma.  A non-x86 triple gets 4-lane vectors (NEON
 * and friends) unless features say otherwise.
 */
#include "cnnc.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <string.h>

/* The 64-bit x86 CPUs LLVM 19 knows, with their widest vector width in
 * floats (from `llc -march=x86-64 -mcpu=help` and each CPU's features).
 * A name not listed is an error rather than LLVM's crash on it. */
typedef struct {
  const char *name;
  int vec; /* 16, 8, 4 */
} CpuWidth;

static const CpuWidth cpu_table[] = {
    {"cannonlake", 16}, {"cascadelake", 16}, {"cooperlake", 16}, {"emeraldrapids", 16},
    {"graniterapids", 16}, {"graniterapids-d", 16}, {"graniterapids_d", 16}, {"icelake-client", 16},
    {"icelake-server", 16}, {"icelake_client", 16}, {"icelake_server", 16}, {"knl", 16},
    {"knm", 16}, {"mic_avx512", 16}, {"rocketlake", 16}, {"sapphirerapids", 16}, {"skx", 16},
    {"skylake-avx512", 16}, {"skylake_avx512", 16}, {"tigerlake", 16}, {"x86-64-v4", 16},
    {"znver4", 16}, {"znver5", 16},
    {"alderlake", 8}, {"arrowlake", 8}, {"arrowlake-s", 8}, {"arrowlake_s", 8}, {"bdver4", 8},
    {"broadwell", 8}, {"clearwaterforest", 8}, {"core-avx2", 8}, {"core_4th_gen_avx", 8},
    {"core_4th_gen_avx_tsx", 8}, {"core_5th_gen_avx", 8}, {"core_5th_gen_avx_tsx", 8},
    {"gracemont", 8}, {"grandridge", 8}, {"haswell", 8}, {"lunarlake", 8}, {"meteorlake", 8},
    {"pantherlake", 8}, {"raptorlake", 8}, {"sierraforest", 8}, {"skylake", 8}, {"x86-64-v3", 8},
    {"znver1", 8}, {"znver2", 8}, {"znver3", 8},
    {"amdfam10", 4}, {"athlon-fx", 4}, {"athlon64", 4}, {"athlon64-sse3", 4}, {"atom", 4},
    {"atom_sse4_2", 4}, {"atom_sse4_2_movbe", 4}, {"barcelona", 4}, {"bdver1", 4}, {"bdver2", 4},
    {"bdver3", 4}, {"bonnell", 4}, {"btver1", 4}, {"btver2", 4}, {"core-avx-i", 4}, {"core2", 4},
    {"core_2_duo_sse4_1", 4}, {"core_2_duo_ssse3", 4}, {"core_2nd_gen_avx", 4},
    {"core_3rd_gen_avx", 4}, {"core_aes_pclmulqdq", 4}, {"core_i7_sse4_2", 4}, {"corei7", 4},
    {"corei7-avx", 4}, {"generic", 4}, {"goldmont", 4}, {"goldmont-plus", 4}, {"goldmont_plus", 4},
    {"ivybridge", 4}, {"k8", 4}, {"k8-sse3", 4}, {"nehalem", 4}, {"nocona", 4}, {"opteron", 4},
    {"opteron-sse3", 4}, {"penryn", 4}, {"sandybridge", 4}, {"silvermont", 4}, {"slm", 4},
    {"tremont", 4}, {"westmere", 4}, {"x86-64", 4}, {"x86-64-v2", 4},
};

/* Vector width of a known x86-64 CPU, 0 if the name is unknown. */
int target_x86_cpu_width(const char *cpu) {
  for (size_t i = 0; i < sizeof cpu_table / sizeof *cpu_table; i++)
    if (!strcmp(cpu, cpu_table[i].name)) return cpu_table[i].vec;
  return 0;
}

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

void target_info(const Options *o, TargetInfo *t) {
  char *host_triple = LLVMGetDefaultTargetTriple();
  bool native = !o->triple || !strcmp(o->triple, host_triple);
  const char *triple = o->triple ? o->triple : host_triple;
  bool x86 = !strncmp(triple, "x86_64", 6) || !strncmp(triple, "i686", 4) || !strncmp(triple, "i386", 4);
  *t = (TargetInfo){.vec = 4, .nregs = 16, .fma = false, .l1 = 32 << 10, .l2 = 512 << 10};
  if (native && !o->cpu) {
    char *feat = LLVMGetHostCPUFeatures();
    t->vec = has_feature(feat, "avx512f") > 0 ? 16 : has_feature(feat, "avx2") > 0 ? 8 : 4;
    t->fma = has_feature(feat, "fma") > 0;
    LLVMDisposeMessage(feat);
    t->l1 = cache_size(0, t->l1);
    t->l2 = cache_size(2, t->l2);
  } else if (x86) {
    t->vec = target_x86_cpu_width(o->cpu ? o->cpu : "generic");
    if (!t->vec) t->vec = 4; /* unknown: emit_target_machine reports it */
    t->fma = t->vec >= 8;
  } else {
    t->fma = true; /* aarch64 and most modern non-x86 targets */
    t->nregs = 32;
  }
  if (o->features) {
    if (has_feature(o->features, "avx512f") > 0) t->vec = 16;
    else if (has_feature(o->features, "avx512f") < 0 && t->vec > 8) t->vec = 8;
    if (has_feature(o->features, "avx2") > 0 && t->vec < 8) t->vec = 8;
    else if (has_feature(o->features, "avx2") < 0 && t->vec > 4) t->vec = 4;
    if (has_feature(o->features, "fma")) t->fma = has_feature(o->features, "fma") > 0;
  }
  if (x86) t->nregs = t->vec == 16 ? 32 : 16;
  t->winograd = o->winograd;
  t->fuse_dw = o->fuse_dw;
  t->isa = !x86 ? "generic" : t->vec == 16 ? "avx512" : t->vec == 8 ? "avx2" : "sse2";
  LLVMDisposeMessage(host_triple);
}
