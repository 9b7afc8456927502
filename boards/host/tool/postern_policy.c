/* postern_policy.c: postern-policy, the offline policy tester: the device's policy bridge (src/policy.c, its
 * sandbox, limits and helpers) against a file of cases, one line per case, exit status 0 only when all pass. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lua_arena.h"
#include "lua_math.h"
#include "lualib.h"
#include "platform.h"
#include "policy.h"
#include "postern_opts.h"
#include "storage.h"

static const char tool_usage[] =
    "usage: postern-policy [--verbose] POLICY.lua [CASES]\n"
    "\n"
    "Loads POLICY.lua with the device's sandbox and helpers and the host simulator's limits\n"
    "(src/policy.c: a %u-byte Lua arena, %u instructions per call, counted one by one here; the\n"
    "memory figures are a 64-bit VM's, a 32-bit board's VM is smaller), runs its self_test() if it has one, then\n"
    "every case of CASES and prints one line per case: PASS or FAIL, the answer, the instructions the\n"
    "call ran and the arena bytes it took. The exit status is 0 only when the policy loads, its\n"
    "self_test passes and every case passes (1 otherwise, 2 for a usage error).\n"
    "--verbose also shows the policy's own log lines.\n"
    "\n"
    "CASES is a Lua file (plain Lua, not sandboxed) that returns a table:\n"
    "  return {\n"
    "    settings = {token = \"T\"},               -- config.NAME for every case\n"
    "    storage = {capacity = 3145728, free = 3145728, files = {[\"a.bin\"] = 10}},\n"
    "    cases = {\n"
    "      {\"GET /_status is open\", method = \"GET\", path = \"/_status\", answer = {status = 100}},\n"
    "      {\"no token\", method = \"PUT\", path = \"/files/a.bin\", length = 10,\n"
    "       headers = {expect = \"100-continue\"}, answer = {status = 417, message = \"bearer\"}},\n"
    "    },\n"
    "  }\n"
    "A case: [1] its description; method (default GET), path (decoded, default /; /files/NAME sets\n"
    "req.name), name (req.name itself: a form upload's second step, POST /files/ with its file's name), query, version "
    "(default HTTP/1.1), headers (name = value), length (a number; nil\n"
    "with chunked = true), peer (default 10.0.2.2:40000), tls (true, or a table of version, cipher,\n"
    "subject, fingerprint), settings and storage (for this case: they replace the file's, field by\n"
    "field; a setting set to false is removed), stored = {size =, sha256 =} to ask on_stored instead\n"
    "of on_request. Expect counts, as on the device, only on a request with a body.\n"
    "answer, what the case wants: status (100 = accept), message (a substring; \"\" for none), retry\n"
    "(true or false), name (the storage name the policy chose), www_authenticate (a substring),\n"
    "allow_origin (exact; \"\" for none), allow_methods and allow_headers (substrings), max_age.\n"
    "Fields an answer leaves out are not checked.\n";

/* ---- The storage the helpers see: the case's ------------------------------------------ */

static uint64_t tool_capacity, tool_free;
static lua_State *tool_cases; /* the cases file's state; the files table of the case on its stack */
static int tool_files_idx;

uint64_t storage_capacity(void)
{
  return tool_capacity;
}

uint64_t storage_free(void)
{
  return tool_free;
}

bool storage_exists(const char *name, uint64_t *size)
{
  if (tool_files_idx == 0) {
    return false;
  }
  lua_getfield(tool_cases, tool_files_idx, name);
  bool found = lua_isinteger(tool_cases, -1);
  if (found && size != NULL) {
    *size = (uint64_t)lua_tointeger(tool_cases, -1);
  }
  lua_pop(tool_cases, 1);
  return found;
}

/* ---- The console: the policy's log lines, shown with --verbose ------------------------ */

static bool tool_verbose;

void platform_console_write(const char *s, size_t n)
{
  if (tool_verbose) {
    fputs("    | ", stdout);
    fwrite(s, 1, n, stdout);
  }
}

/* ---- Reading the cases ------------------------------------------------------------------ */

/* t[key] as a string, or dflt. */
static const char *tool_str(lua_State *L, int t, const char *key, const char *dflt)
{
  lua_getfield(L, t, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : dflt;
  lua_pop(L, 1); /* the string stays referenced by the table */
  return s;
}

/* Collects the settings: the file's, then the case's over them (false removes one). */
static int tool_settings(lua_State *L, int file, int c, const char **names, const char **values)
{
  int n = 0;
  int tables[2] = {file, c};
  for (int k = 0; k < 2; k++) {
    if (lua_getfield(L, tables[k], "settings") != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *name = lua_tostring(L, -2);
        int i = 0;
        while (i < n && strcmp(names[i], name) != 0) {
          i++;
        }
        if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
          if (i < n) {
            names[i] = names[n - 1];
            values[i] = values[n - 1];
            n--;
          }
        } else if (i < POSTERN_MAX_SETTINGS) {
          names[i] = name;
          values[i] = luaL_tolstring(L, -1, NULL); /* kept alive below */
          lua_rawsetp(L, LUA_REGISTRYINDEX, values[i]);
          n += i == n;
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return n;
}

/* Sets the storage the helpers see from the case's storage, else the file's. */
static void tool_storage(lua_State *L, int file, int c)
{
  tool_capacity = 3u * 1024 * 1024;
  tool_free = tool_capacity;
  tool_files_idx = 0;
  int tables[2] = {file, c};
  for (int k = 0; k < 2; k++) {
    if (lua_getfield(L, tables[k], "storage") != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    lua_getfield(L, -1, "capacity");
    if (lua_isinteger(L, -1)) {
      tool_capacity = tool_free = (uint64_t)lua_tointeger(L, -1);
    }
    lua_getfield(L, -2, "free");
    if (lua_isinteger(L, -1)) {
      tool_free = (uint64_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 2);
    if (lua_getfield(L, -1, "files") == LUA_TTABLE) {
      tool_files_idx = lua_gettop(L); /* left on the stack for the case */
      lua_remove(L, -2);
      continue;
    }
    lua_pop(L, 2);
  }
}

static policy_str_t tool_pstr(const char *s)
{
  return s != NULL ? (policy_str_t){s, strlen(s)} : (policy_str_t){NULL, 0};
}

/* ---- One case --------------------------------------------------------------------------- */

typedef struct tool_run {
  const char *name, *source;
  size_t len;
} tool_run_t;

static int tool_check(lua_State *L, int c, const policy_decision_t *d, char *why, size_t cap)
{
  if (lua_getfield(L, c, "answer") != LUA_TTABLE) {
    lua_pop(L, 1);
    snprintf(why, cap, "the case has no answer table");
    return 0;
  }
  int a = lua_gettop(L);
  int ok = 1;
  lua_getfield(L, a, "status");
  if (lua_isinteger(L, -1) && lua_tointeger(L, -1) != d->status) {
    snprintf(why, cap, "wanted status %d", (int)lua_tointeger(L, -1));
    ok = 0;
  }
  const char *m = tool_str(L, a, "message", NULL);
  if (ok && m != NULL && (m[0] == '\0' ? d->message[0] != '\0' : strstr(d->message, m) == NULL)) {
    snprintf(why, cap, "wanted a message with \"%s\"", m);
    ok = 0;
  }
  lua_getfield(L, a, "retry");
  if (ok && lua_isboolean(L, -1) && lua_toboolean(L, -1) != d->retryable) {
    snprintf(why, cap, "wanted retry = %s", lua_toboolean(L, -1) ? "true" : "false");
    ok = 0;
  }
  const char *name = tool_str(L, a, "name", NULL);
  if (ok && name != NULL && strcmp(name, d->name) != 0) {
    snprintf(why, cap, "wanted name \"%s\"", name);
    ok = 0;
  }
  const char *w = tool_str(L, a, "www_authenticate", NULL);
  if (ok && w != NULL && strstr(d->www_authenticate, w) == NULL) {
    snprintf(why, cap, "wanted a challenge with \"%s\"", w);
    ok = 0;
  }
  const char *o = tool_str(L, a, "allow_origin", NULL);
  if (ok && o != NULL && strcmp(o, d->allow_origin) != 0) {
    snprintf(why, cap, "wanted allow_origin \"%s\"", o);
    ok = 0;
  }
  const char *am = tool_str(L, a, "allow_methods", NULL), *ah = tool_str(L, a, "allow_headers", NULL);
  if (ok &&
      ((am != NULL && strstr(d->allow_methods, am) == NULL) || (ah != NULL && strstr(d->allow_headers, ah) == NULL))) {
    snprintf(why, cap, "wanted allow_methods with \"%s\", allow_headers with \"%s\"", am ? am : "", ah ? ah : "");
    ok = 0;
  }
  lua_getfield(L, a, "max_age");
  if (ok && lua_isinteger(L, -1) && lua_tointeger(L, -1) != d->max_age) {
    snprintf(why, cap, "wanted max_age %d", (int)lua_tointeger(L, -1));
    ok = 0;
  }
  lua_settop(L, a - 1);
  return ok;
}

/* Runs case number i (its table on top of L's stack); prints its line; returns 1 when it passed. */
static int tool_case(lua_State *L, int file, int i, const tool_run_t *run)
{
  int c = lua_gettop(L);
  lua_rawgeti(L, c, 1);
  const char *desc = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no description)";
  lua_pop(L, 1);

  const char *names[POSTERN_MAX_SETTINGS], *values[POSTERN_MAX_SETTINGS];
  int n_set = tool_settings(L, file, c, names, values);
  tool_storage(L, file, c);
  if (policy_init(names, values, n_set) != 0 || policy_load(run->name, run->source, run->len) != 0) {
    printf("FAIL %3d %s: the policy did not load with these settings: %s\n", i, desc, policy_last_error());
    lua_settop(L, c);
    return 0;
  }

  static policy_str_t hn[POSTERN_MAX_HEADERS], hv[POSTERN_MAX_HEADERS];
  int n_hdr = 0;
  const char *expect = NULL;
  if (lua_getfield(L, c, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0 && n_hdr < POSTERN_MAX_HEADERS) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
        hn[n_hdr] = tool_pstr(lua_tostring(L, -2));
        hv[n_hdr] = tool_pstr(lua_tostring(L, -1));
        if (strcmp(lua_tostring(L, -2), "expect") == 0) {
          expect = lua_tostring(L, -1);
        }
        n_hdr++;
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  const char *path = tool_str(L, c, "path", "/");
  lua_getfield(L, c, "length");
  bool has_length = lua_isinteger(L, -1);
  uint64_t length = has_length ? (uint64_t)lua_tointeger(L, -1) : 0;
  lua_getfield(L, c, "chunked");
  bool chunked = lua_toboolean(L, -1);
  lua_pop(L, 2);
  bool has_body = chunked || (has_length && length > 0);
  policy_tls_t tls = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}};
  int tt = lua_getfield(L, c, "tls");
  if (tt == LUA_TTABLE || (tt == LUA_TBOOLEAN && lua_toboolean(L, -1))) {
    int t = lua_gettop(L);
    tls.version = tool_pstr(tt == LUA_TTABLE ? tool_str(L, t, "version", "TLSv1.3") : "TLSv1.3");
    tls.cipher = tool_pstr(tt == LUA_TTABLE ? tool_str(L, t, "cipher", "TLS1-3-AES-128-GCM-SHA256")
                                            : "TLS1-3-AES-128-GCM-SHA256");
    tls.subject = tool_pstr(tt == LUA_TTABLE ? tool_str(L, t, "subject", NULL) : NULL);
    tls.fingerprint = tool_pstr(tt == LUA_TTABLE ? tool_str(L, t, "fingerprint", NULL) : NULL);
  }
  lua_pop(L, 1);
  policy_request_t req = {
      .method = tool_pstr(tool_str(L, c, "method", "GET")),
      .path = tool_pstr(path),
      .query = tool_pstr(tool_str(L, c, "query", NULL)),
      .version = tool_pstr(tool_str(L, c, "version", "HTTP/1.1")),
      .name = tool_pstr(tool_str(L, c, "name", strncmp(path, "/files/", 7) == 0 && path[7] != '\0' ? path + 7 : NULL)),
      .header_names = hn,
      .header_values = hv,
      .n_headers = n_hdr,
      .has_length = has_length && !chunked,
      .length = length,
      .expect = tool_pstr(has_body ? expect : NULL),
      .peer = tool_pstr(tool_str(L, c, "peer", "10.0.2.2:40000")),
      .tls = tls.version.p != NULL ? &tls : NULL,
  };

  policy_decision_t d;
  size_t before = lua_arena_in_use();
  lua_arena_reset_high_water();
  bool stored = lua_getfield(L, c, "stored") == LUA_TTABLE;
  if (stored) {
    lua_getfield(L, -1, "size");
    uint64_t size = lua_isinteger(L, -1) ? (uint64_t)lua_tointeger(L, -1) : length;
    lua_pop(L, 1);
    policy_after_body(&req, size, tool_str(L, lua_gettop(L), "sha256", ""), &d);
  } else {
    policy_decide(&req, &d);
  }
  lua_pop(L, 1);
  size_t peak = lua_arena_high_water();
  long instr = policy_instructions_used();

  char why[160] = "";
  int ok = tool_check(L, c, &d, why, sizeof why);
  char answer[POSTERN_MESSAGE_MAX + POSTERN_NAME_MAX + POSTERN_ORIGIN_MAX + 80];
  int k = snprintf(answer, sizeof answer, "%d", d.status);
  if (d.status == 100) {
    k += snprintf(answer + k, sizeof answer - (size_t)k, " accept");
  }
  if (d.message[0] != '\0') {
    k += snprintf(answer + k, sizeof answer - (size_t)k, " \"%s\"", d.message);
  }
  if (d.retryable) {
    k += snprintf(answer + k, sizeof answer - (size_t)k, " retry");
  }
  if (d.name[0] != '\0') {
    k += snprintf(answer + k, sizeof answer - (size_t)k, " name=%s", d.name);
  }
  if (d.allow_origin[0] != '\0') {
    snprintf(answer + k, sizeof answer - (size_t)k, " allow_origin=%s", d.allow_origin);
  }
  printf("%s %3d %s%s: %s%s%s | %ld instructions, %+ld B (arena peak %zu of %u)\n", ok ? "PASS" : "FAIL", i,
         stored ? "on_stored: " : "", desc, answer, ok ? "" : " -- ", why, instr,
         (long)lua_arena_in_use() - (long)before, peak, (unsigned)POSTERN_LUA_ARENA_SIZE);
  lua_settop(L, c);
  return ok;
}

/* ---- main ------------------------------------------------------------------------------- */

static char tool_source[POSTERN_POLICY_MAX];

int main(int argc, char **argv)
{
  int argi = 1;
  for (; argi < argc && argv[argi][0] == '-'; argi++) {
    if (strcmp(argv[argi], "--help") == 0 || strcmp(argv[argi], "-h") == 0) {
      printf(tool_usage, (unsigned)POSTERN_LUA_ARENA_SIZE, (unsigned)POSTERN_LUA_BUDGET);
      return 0;
    }
    if (strcmp(argv[argi], "--verbose") == 0) {
      tool_verbose = true;
      continue;
    }
    fprintf(stderr, "postern-policy: unknown option %s (see --help)\n", argv[argi]);
    return 2;
  }
  if (argc - argi < 1 || argc - argi > 2) {
    fprintf(stderr, "postern-policy: a policy and a cases file, please (see --help)\n");
    return 2;
  }
  const char *policy_path = argv[argi], *cases_path = argi + 1 < argc ? argv[argi + 1] : NULL;
  FILE *f = fopen(policy_path, "rb");
  if (f == NULL) {
    fprintf(stderr, "postern-policy: cannot open %s\n", policy_path);
    return 2;
  }
  size_t len = fread(tool_source, 1, sizeof tool_source, f);
  fclose(f);
  if (len == sizeof tool_source) {
    printf("FAIL %s is larger than POSTERN_POLICY_MAX (%u bytes), what PUT /_policy takes\n", policy_path,
           (unsigned)sizeof tool_source);
    return 1;
  }
  const char *base = strrchr(policy_path, '/');
  tool_run_t run = {base != NULL ? base + 1 : policy_path, tool_source, len};

  lua_State *L = luaL_newstate(); /* the cases file: plain Lua, outside the sandbox */
  if (L == NULL) {
    return 2;
  }
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_MATHLIBNAME, lua_math_open},
                                  {NULL, NULL}};
  for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  int file = 0;
  if (cases_path != NULL) {
    if (luaL_dofile(L, cases_path) != LUA_OK || !lua_istable(L, -1)) {
      fprintf(stderr, "postern-policy: %s: %s\n", cases_path,
              lua_isstring(L, -1) ? lua_tostring(L, -1) : "does not return a table");
      return 2;
    }
    file = lua_gettop(L);
  } else {
    lua_newtable(L);
    file = lua_gettop(L);
  }
  tool_cases = L;

  /* The load and the self_test, with the file's settings and storage. */
  const char *names[POSTERN_MAX_SETTINGS], *values[POSTERN_MAX_SETTINGS];
  int n_set = tool_settings(L, file, file, names, values);
  tool_storage(L, file, file);
  if (policy_init(names, values, n_set) != 0 || policy_load(run.name, run.source, run.len) != 0) {
    printf("FAIL %s does not load: %s\n", policy_path, policy_last_error());
    return 1;
  }
  size_t live = policy_memory_live();
  printf("load %s: %zu bytes, Lua arena %zu B live, peak %zu of %u\n", policy_path, len, live,
         policy_memory_high_water(), (unsigned)POSTERN_LUA_ARENA_SIZE);
  lua_arena_reset_high_water();
  int failed = 0, passed = 0;
  int st = policy_self_test();
  if (st < 0) {
    printf("FAIL self_test: %s\n", policy_last_error());
    failed++;
  } else if (st == 0) {
    printf("PASS self_test | %ld instructions, arena peak %zu\n", policy_instructions_used(), lua_arena_high_water());
  } else {
    printf("---- self_test: none\n");
  }
  lua_settop(L, file);

  if (lua_getfield(L, file, "cases") == LUA_TTABLE) {
    int cases = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, cases);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, cases, i);
      if (!lua_istable(L, -1)) {
        printf("FAIL %3d: not a table\n", (int)i);
        failed++;
      } else if (tool_case(L, file, (int)i, &run)) {
        passed++;
      } else {
        failed++;
      }
      lua_settop(L, cases);
    }
  } else if (cases_path != NULL) {
    printf("FAIL %s has no cases\n", cases_path);
    failed++;
  }
  printf("%s %s: %d passed, %d failed\n", failed ? "FAIL" : "PASS", policy_path, passed, failed);
  policy_shutdown();
  lua_close(L);
  return failed ? 1 : 0;
}
