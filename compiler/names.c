/*
 * names.c: the C identifiers of the generated API.
 *
 * needs: a graph with its model name, inputs and outputs; gives: the C
 * name of every input and output (Graph.in_cname, out_cname), or located
 * errors where two names would become one identifier.
 *
 * Layer and input names are any string ("input.1", "layer1.0.conv1",
 * "0"), but the header needs C identifiers for the run function's
 * parameters and for the macros NAME_<TENSOR>_SIZE etc.  The rule
 * (docs/format.md, "Names in C"):
 *   1. every character that is not a letter, digit or '_' becomes '_'
 *      (a multi-byte UTF-8 character becomes one '_');
 *   2. a name that starts with a digit gets a leading '_';
 *   3. a name the header cannot use as it is gets a trailing '_': C and
 *      C++ keywords, the names the generated API uses itself (workspace,
 *      workspace_size, pool), the types and macros of cnnrt.h and the
 *      standard headers it includes (size_t, int64_t, NULL, INT8_MAX,
 *      ...), anything starting with "cnnrt", CNNRT or with the model's
 *      upper-case macro prefix (they would meet the header's own macros),
 *      and "WORKSPACE" in any case (NAME_WORKSPACE_SIZE is the workspace's
 *      size); reserved identifiers (a leading "__" or '_' + upper case)
 *      get a leading 't'.
 * Two tensors whose C names are equal, or equal but for case (their
 * macros would be the same), are an error at the second one.  The header
 * shows each C name next to the original.
 *
 * The model name itself must already be a C identifier (it is the prefix
 * of every symbol, and two builds of one model need two names: --name);
 * it must not be a C keyword nor collide with the runtime (cnnrt,
 * cnnrt_*, in any case).
 */
#include "cnnc.h"

#include <ctype.h>
#include <string.h>

static const char *const reserved[] = {
    /* C11 and C23 keywords */
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Alignas", "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
    "_Static_assert", "_Thread_local", "alignas", "alignof", "bool", "constexpr", "false", "nullptr",
    "static_assert", "thread_local", "true", "typeof", "typeof_unqual", "_BitInt", "_Decimal32",
    "_Decimal64", "_Decimal128",
    /* C++ keywords and alternative tokens */
    "and", "and_eq", "asm", "bitand", "bitor", "catch", "char8_t", "char16_t", "char32_t", "class", "compl",
    "concept", "consteval", "constinit", "const_cast", "co_await", "co_return", "co_yield", "decltype",
    "delete", "dynamic_cast", "explicit", "export", "friend", "mutable", "namespace", "new", "noexcept", "not",
    "not_eq", "operator", "or", "or_eq", "private", "protected", "public", "reinterpret_cast", "requires",
    "static_cast", "template", "this", "throw", "try", "typeid", "typename", "using", "virtual", "wchar_t",
    "xor", "xor_eq",
    /* the generated API's own parameter names */
    "workspace", "workspace_size", "pool",
    /* <stddef.h> and <stdint.h> (included by cnnrt.h): types and object-like macros */
    "size_t", "ptrdiff_t", "max_align_t", "NULL", "offsetof", "int8_t", "int16_t", "int32_t", "int64_t",
    "uint8_t", "uint16_t", "uint32_t", "uint64_t", "int_least8_t", "int_least16_t", "int_least32_t",
    "int_least64_t", "uint_least8_t", "uint_least16_t", "uint_least32_t", "uint_least64_t", "int_fast8_t",
    "int_fast16_t", "int_fast32_t", "int_fast64_t", "uint_fast8_t", "uint_fast16_t", "uint_fast32_t",
    "uint_fast64_t", "intptr_t", "uintptr_t", "intmax_t", "uintmax_t", "INT8_MIN", "INT16_MIN", "INT32_MIN",
    "INT64_MIN", "INT8_MAX", "INT16_MAX", "INT32_MAX", "INT64_MAX", "UINT8_MAX", "UINT16_MAX", "UINT32_MAX",
    "UINT64_MAX", "INT_LEAST8_MIN", "INT_LEAST16_MIN", "INT_LEAST32_MIN", "INT_LEAST64_MIN",
    "INT_LEAST8_MAX", "INT_LEAST16_MAX", "INT_LEAST32_MAX", "INT_LEAST64_MAX", "UINT_LEAST8_MAX",
    "UINT_LEAST16_MAX", "UINT_LEAST32_MAX", "UINT_LEAST64_MAX", "INT_FAST8_MIN", "INT_FAST16_MIN",
    "INT_FAST32_MIN", "INT_FAST64_MIN", "INT_FAST8_MAX", "INT_FAST16_MAX", "INT_FAST32_MAX", "INT_FAST64_MAX",
    "UINT_FAST8_MAX", "UINT_FAST16_MAX", "UINT_FAST32_MAX", "UINT_FAST64_MAX", "INTPTR_MIN", "INTPTR_MAX",
    "UINTPTR_MAX", "INTMAX_MIN", "INTMAX_MAX", "UINTMAX_MAX", "PTRDIFF_MIN", "PTRDIFF_MAX", "SIG_ATOMIC_MIN",
    "SIG_ATOMIC_MAX", "SIZE_MAX", "WCHAR_MIN", "WCHAR_MAX", "WINT_MIN", "WINT_MAX", "INT8_WIDTH", NULL};

static bool in_list(const char *s) {
  for (const char *const *r = reserved; *r; r++)
    if (strcmp(*r, s) == 0) return true;
  return false;
}

static bool is_ident(const char *s) {
  if (!*s || isdigit((unsigned char)*s)) return false;
  for (; *s; s++)
    if (!(*s == '_' || isalnum((unsigned char)*s)) || (unsigned char)*s >= 0x80) return false;
  return true;
}

static bool ci_prefix(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix)) return false;
  return true;
}

bool names_check_model(const char *name, Loc loc) {
  if (!is_ident(name) || strlen(name) > 200) {
    error_at(loc, "invalid model name '%s': it prefixes every generated symbol, so it must be a C "
                  "identifier (letters, digits and '_', not starting with a digit, at most 200 characters)",
             name);
    return false;
  }
  if (in_list(name)) {
    error_at(loc, "invalid model name '%s': a C or C++ keyword or a standard name", name);
    return false;
  }
  if (ci_prefix(name, "cnnrt") && (!name[5] || name[5] == '_')) {
    error_at(loc, "invalid model name '%s': names 'cnnrt' and 'cnnrt_*' belong to the runtime", name);
    return false;
  }
  return true;
}

/* Rules 1-3 above; `M` is the model's upper-case macro prefix with '_'. */
static char *c_name(Arena *a, const char *s, const char *M) {
  size_t n = strlen(s);
  char *c = arena_alloc(a, n + 4), *o = c;
  if (isdigit((unsigned char)*s)) *o++ = '_';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p >= 0x80 && (*p & 0xc0) == 0x80 && p > (const unsigned char *)s && p[-1] >= 0x80) continue;
    *o++ = (*p < 0x80 && (isalnum(*p) || *p == '_')) ? (char)*p : '_';
  }
  *o = 0;
  if (c[0] == '_' && (c[1] == '_' || isupper((unsigned char)c[1]))) {
    memmove(c + 1, c, strlen(c) + 1);
    c[0] = 't';
  }
  bool clash = in_list(c) || ci_prefix(c, "cnnrt") || !strncmp(c, M, strlen(M)) ||
               (strlen(c) == 9 && ci_prefix(c, "workspace"));
  if (clash) strcat(c, "_");
  return c;
}

static char *upper(Arena *a, const char *s) {
  char *u = arena_strdup(a, s);
  for (char *p = u; *p; p++) *p = (char)toupper((unsigned char)*p);
  return u;
}

bool names_assign(Graph *g) {
  int errors0 = diag_error_count();
  int n = g->ninputs + g->noutputs;
  const char *M = arena_printf(g->arena, "%s_", upper(g->arena, g->name));
  g->in_cname = arena_array(g->arena, (size_t)g->ninputs + 1, sizeof *g->in_cname);
  g->out_cname = arena_array(g->arena, (size_t)g->noutputs + 1, sizeof *g->out_cname);
  StrMap exact = {0}, folded = {0};
  for (int k = 0; k < n; k++) {
    bool in = k < g->ninputs;
    const Node *nd = &g->nodes[in ? g->inputs[k] : g->outputs[k - g->ninputs]];
    const char *c = c_name(g->arena, nd->name, M);
    if (in) g->in_cname[k] = c;
    else g->out_cname[k - g->ninputs] = c;
    const Node *other = strmap_get(&exact, c);
    const Node *other_ci = strmap_get(&folded, upper(g->arena, c));
    if (other || other_ci) {
      const Node *o = other ? other : other_ci;
      error_at(nd->loc, "%s '%s' and '%s' both become the C name '%s'%s in the generated header; rename one",
               in ? "input" : "output", nd->name, o->name, c, other ? "" : " (ignoring case, as macros do)");
      continue;
    }
    strmap_put(g->arena, &exact, c, (void *)nd);
    strmap_put(g->arena, &folded, upper(g->arena, c), (void *)nd);
  }
  return diag_error_count() == errors0;
}

const char *names_comment(Arena *a, const char *s) {
  size_t n = strlen(s);
  char *c = arena_alloc(a, 4 * n + 1), *o = c;
  for (const char *p = s; *p;) {
    unsigned char b = (unsigned char)*p;
    size_t l = utf8_char(p, strlen(p));
    if (l > 1) { /* valid UTF-8 is kept */
      memcpy(o, p, l), o += l, p += l;
      continue;
    }
    if (b < 0x20 || b >= 0x7f) o += sprintf(o, "\\x%02x", b);
    else if (b == '/' && o > c && o[-1] == '*') o += sprintf(o, "\\x2f"); /* no comment end */
    else if (b == '*' && o > c && o[-1] == '/') o += sprintf(o, "\\x2a"); /* no nested opener */
    else *o++ = (char)b;
    p++;
  }
  *o = 0;
  return c;
}
