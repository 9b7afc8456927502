/* policy.c: the Lua policy bridge: one sandboxed Lua 5.4 VM in a bounded arena, with an instruction budget per call. */
#include "policy.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "lauxlib.h"
#include "log.h"
#include "lua.h"
#include "lua_arena.h"
#include "lua_math.h"
#include "lualib.h"
#include "mbedtls/base64.h"
#include "policy_pattern.h"
#include "storage.h"
#include "text.h"

#define WWW_AUTH_MAX ((int)sizeof(((policy_decision_t *)0)->www_authenticate))
#define LOG_TEXT_MAX 240

static lua_State *vm;
static bool loaded;
static long budget_used;
static bool budget_exhausted;
static bool mem_failed;                   /* the arena refused memory during this call */
static char last_error[LOG_TEXT_MAX + 1]; /* the message of the last failed call, as logged */

/* What the running VM was made from, kept to build it again (a replacement, a rollback). */
static const char *const *set_names, *const *set_values;
static int set_n;
static const char *run_name, *run_src;
static size_t run_len;
static uint32_t run_gen; /* advanced whenever the running text changes */
static uint8_t run_sha[DIGEST_SHA256_LEN];
static size_t hw_carry; /* the arena high water of the VMs a replacement closed */

/* A replacement is collected here, behind the running source when that is a
 * replacement too (stage_held bytes at the front); one collection at a time. */
static char stage_buf[POSTERN_POLICY_MAX];
static size_t stage_held, stage_len;
static const void *stage_owner;

/* Registry keys (their addresses). */
static const char ro_meta_key = 0;
static const char pin_key = 0;
static const char hdr_meta_key = 0;
static const char req_meta_key = 0;

/* ---- Small helpers ---------------------------------------------------- */

/* Copies s[0..n) into dst (cap bytes, NUL included), control bytes but tab as '?'. */
static void copy_clean(char *dst, size_t cap, const char *s, size_t n)
{
  if (n >= cap) {
    n = cap - 1;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[i] = ((c < 0x20 && c != '\t') || c == 0x7F) ? '?' : (char)c;
  }
  dst[n] = '\0';
}

/* Logs "policy: <text>" with control bytes neutralised (no forged log lines). */
static void log_text(const char *s, size_t n)
{
  char line[LOG_TEXT_MAX + 1];
  copy_clean(line, sizeof line, s, n);
  log_line("policy: %s", line);
}

static void push_u64(lua_State *L, uint64_t v)
{
  if (v <= (uint64_t)LUA_MAXINTEGER) {
    lua_pushinteger(L, (lua_Integer)v);
  } else {
    lua_pushnumber(L, (lua_Number)v);
  }
}

/* t[key] = s for the table on top, unless s is absent. */
static void set_str(lua_State *L, const char *key, policy_str_t s)
{
  if (s.p != NULL) {
    lua_pushlstring(L, s.p, s.n);
    lua_setfield(L, -2, key);
  }
}

/* Empties a decision: every string empty, nothing set (cheaper than clearing its whole ~600 bytes). */
static void decision_clear(policy_decision_t *d)
{
  d->status = 0;
  d->retryable = false;
  d->message[0] = '\0';
  d->name[0] = '\0';
  d->www_authenticate[0] = '\0';
  d->allow_origin[0] = '\0';
  d->allow_methods[0] = '\0';
  d->allow_headers[0] = '\0';
  d->max_age = -1;
  d->policy_error = false;
  d->no_digest = false;
}

static void fail_closed(policy_decision_t *out)
{
  decision_clear(out);
  out->status = 500;
  out->policy_error = true;
  snprintf(out->message, sizeof out->message, "%s", "policy_error");
}

/* ---- Read-only proxies ------------------------------------------------
 * A proxy is an empty userdata whose user value is the backing table: rawset
 * cannot reach it, and the shared metatable only reads. */

static int ro_index(lua_State *L)
{
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int ro_newindex(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TSTRING) {
    return luaL_error(L, "attempt to modify read-only field '%s'", lua_tostring(L, 2));
  }
  return luaL_error(L, "attempt to modify a read-only table");
}

static int ro_next(lua_State *L)
{
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1)) == 0) {
    lua_pushnil(L);
    return 1;
  }
  return 2;
}

static int ro_pairs(lua_State *L)
{
  lua_getiuservalue(L, 1, 1);
  lua_pushcclosure(L, ro_next, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

static int ro_len(lua_State *L)
{
  lua_getiuservalue(L, 1, 1);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* Replaces the table on top of the stack with its read-only proxy. */
static void push_ro(lua_State *L)
{
  lua_newuserdatauv(L, 0, 1);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_meta_key);
  lua_setmetatable(L, -2);
}

/* ---- req and req.headers: views on the parsed head ---------------------
 * Nothing is copied into the VM until the script reads a field: a decision
 * that looks at three fields interns three strings, not the whole head.
 * The views point into the request, so they refuse to work once their call
 * is over (a script may keep them in a global). */

typedef struct view {
  const policy_request_t *req;
  uint32_t gen; /* the call it belongs to */
} view_t;

static uint32_t call_gen; /* advanced after every call */

/* The request behind the view at index 1, while its call lasts. */
static const policy_request_t *view_req(lua_State *L)
{
  const view_t *v = (const view_t *)lua_touserdata(L, 1);
  if (v->gen != call_gen) {
    luaL_error(L, "the request object is only valid during the policy call");
  }
  return v->req;
}

/* Pushes a new view of kind `meta` (a registry key) on r. */
static void push_view(lua_State *L, const policy_request_t *r, const char *meta, int user_values)
{
  view_t *v = (view_t *)lua_newuserdatauv(L, sizeof *v, user_values);
  v->req = r;
  v->gen = call_gen;
  lua_rawgetp(L, LUA_REGISTRYINDEX, meta);
  lua_setmetatable(L, -2);
}

/* True when the header name, lower-cased, is exactly k. */
static bool hdr_name_is(policy_str_t nm, const char *k, size_t kn)
{
  if (nm.p == NULL || nm.n != kn) {
    return false;
  }
  for (size_t j = 0; j < kn; j++) {
    char ch = nm.p[j];
    if (((ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch) != k[j]) {
      return false;
    }
  }
  return true;
}

/* Pushes the value of the fields named k (lower case); repeated fields are
 * joined with ", " (RFC 9110 5.3); nil when there is none. */
static void hdr_push(lua_State *L, const policy_request_t *r, const char *k, size_t kn)
{
  int found = 0;
  for (int i = 0; i < r->n_headers; i++) {
    if (!hdr_name_is(r->header_names[i], k, kn)) {
      continue;
    }
    policy_str_t v = r->header_values[i];
    lua_pushlstring(L, v.p ? v.p : "", v.p ? v.n : 0);
    if (found++ > 0) {
      lua_pushliteral(L, ", ");
      lua_insert(L, -2);
      lua_concat(L, 3);
    }
  }
  if (found == 0) {
    lua_pushnil(L);
  }
}

static int hdr_index(lua_State *L)
{
  const policy_request_t *r = view_req(L);
  size_t kn;
  if (lua_type(L, 2) != LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  const char *k = lua_tolstring(L, 2, &kn);
  hdr_push(L, r, k, kn);
  return 1;
}

/* Iterates over the table just built (pairs on a view). */
static int view_iterate(lua_State *L)
{
  lua_pushcclosure(L, ro_next, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

/* pairs(req.headers): the whole table, lower-case names, built when asked. */
static int hdr_pairs(lua_State *L)
{
  const policy_request_t *r = view_req(L);
  lua_createtable(L, 0, r->n_headers);
  for (int i = 0; i < r->n_headers; i++) {
    policy_str_t nm = r->header_names[i];
    if (nm.p == NULL) {
      continue;
    }
    luaL_Buffer b;
    char *k = luaL_buffinitsize(L, &b, nm.n);
    for (size_t j = 0; j < nm.n; j++) {
      char ch = nm.p[j];
      k[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    luaL_pushresultsize(&b, nm.n);
    size_t kn;
    const char *key = lua_tolstring(L, -1, &kn);
    hdr_push(L, r, key, kn);
    lua_rawset(L, -3);
  }
  return view_iterate(L);
}

static int view_len(lua_State *L)
{
  view_req(L);
  lua_pushinteger(L, 0); /* names only, no sequence */
  return 1;
}

/* The string fields of req, by name. */
static const struct {
  const char *name;
  uint8_t len;
  uint8_t offset;
} req_strings[] = {
    {"method", 6, offsetof(policy_request_t, method)}, {"path", 4, offsetof(policy_request_t, path)},
    {"query", 5, offsetof(policy_request_t, query)},   {"version", 7, offsetof(policy_request_t, version)},
    {"name", 4, offsetof(policy_request_t, name)},     {"expect", 6, offsetof(policy_request_t, expect)},
    {"peer", 4, offsetof(policy_request_t, peer)},
};

/* True when k[0..kn) is the literal lit. */
#define KEY_IS(k, kn, lit) ((kn) == sizeof(lit) - 1 && (k)[0] == (lit)[0] && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* Pushes req[k] for the view at index 1 (user values: 1 headers, 2 tls). */
static void req_push(lua_State *L, const policy_request_t *r, const char *k, size_t kn)
{
  for (size_t i = 0; i < sizeof req_strings / sizeof req_strings[0]; i++) {
    if (kn == req_strings[i].len && k[0] == req_strings[i].name[0] && memcmp(k, req_strings[i].name, kn) == 0) {
      const policy_str_t *s = (const policy_str_t *)(const void *)((const char *)r + req_strings[i].offset);
      if (s->p != NULL) {
        lua_pushlstring(L, s->p, s->n);
      } else if (s == &r->peer && r->peer_of != NULL) {
        char peer[POLICY_PEER_MAX];
        lua_pushlstring(L, peer, r->peer_of(r->peer_ctx, peer, sizeof peer));
      } else {
        lua_pushnil(L);
      }
      return;
    }
  }
  if (KEY_IS(k, kn, "length")) {
    if (r->has_length) {
      push_u64(L, r->length);
    } else {
      lua_pushnil(L);
    }
  } else if (KEY_IS(k, kn, "headers")) {
    if (lua_getiuservalue(L, 1, 1) == LUA_TNIL) {
      lua_pop(L, 1);
      push_view(L, r, &hdr_meta_key, 0);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, 1);
    }
  } else if (KEY_IS(k, kn, "tls") && r->tls != NULL) {
    if (lua_getiuservalue(L, 1, 2) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_createtable(L, 0, 4);
      set_str(L, "version", r->tls->version);
      set_str(L, "cipher", r->tls->cipher);
      set_str(L, "subject", r->tls->subject);
      set_str(L, "fingerprint", r->tls->fingerprint);
      push_ro(L);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, 2);
    }
  } else {
    lua_pushnil(L);
  }
}

static int req_index(lua_State *L)
{
  const policy_request_t *r = view_req(L);
  if (lua_type(L, 2) != LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  size_t kn;
  const char *k = lua_tolstring(L, 2, &kn);
  req_push(L, r, k, kn);
  return 1;
}

/* pairs(req): every field present, built when asked. */
static int req_pairs(lua_State *L)
{
  static const char *const others[] = {"length", "headers", "tls"};
  const policy_request_t *r = view_req(L);
  lua_createtable(L, 0, 10);
  for (size_t i = 0; i < sizeof req_strings / sizeof req_strings[0] + 3; i++) {
    const char *k = i < sizeof req_strings / sizeof req_strings[0]
                        ? req_strings[i].name
                        : others[i - sizeof req_strings / sizeof req_strings[0]];
    req_push(L, r, k, strlen(k));
    lua_setfield(L, -2, k);
  }
  return view_iterate(L);
}

/* ---- Helpers given to the script ---------------------------------------- */

static int h_storage_free(lua_State *L)
{
  push_u64(L, storage_free());
  return 1;
}

static int h_storage_capacity(lua_State *L)
{
  push_u64(L, storage_capacity());
  return 1;
}

static int h_storage_exists(lua_State *L)
{
  size_t n;
  const char *name = luaL_checklstring(L, 1, &n);
  uint64_t size = 0;
  if (strlen(name) != n || !storage_exists(name, &size)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  push_u64(L, size);
  return 2;
}

static bool is_token68_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/';
}

/* Finds the token68 credentials of `scheme` in an Authorization value:
 * returns them (and their length in *n) or NULL. */
static const char *auth_credentials(lua_State *L, const char *scheme, size_t *n)
{
  size_t len, sl = strlen(scheme), i = 0;
  if (lua_type(L, 1) != LUA_TSTRING) {
    return NULL;
  }
  const char *v = lua_tolstring(L, 1, &len);
  while (i < len && (v[i] == ' ' || v[i] == '\t')) {
    i++;
  }
  if (len - i <= sl) {
    return NULL;
  }
  for (size_t k = 0; k < sl; k++) {
    char c = v[i + k];
    if (c >= 'A' && c <= 'Z') {
      c = (char)(c + 32);
    }
    if (c != scheme[k]) {
      return NULL;
    }
  }
  i += sl;
  if (v[i] != ' ') {
    return NULL;
  }
  while (i < len && v[i] == ' ') {
    i++;
  }
  while (len > i && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
    len--;
  }
  size_t start = i;
  while (i < len && is_token68_char(v[i])) {
    i++;
  }
  if (i == start) {
    return NULL;
  }
  while (i < len && v[i] == '=') {
    i++;
  }
  if (i != len) {
    return NULL;
  }
  *n = len - start;
  return v + start;
}

static int h_auth_bearer(lua_State *L)
{
  size_t n;
  const char *tok = auth_credentials(L, "bearer", &n);
  if (tok == NULL) {
    lua_pushnil(L);
  } else {
    lua_pushlstring(L, tok, n);
  }
  return 1;
}

static int h_auth_basic(lua_State *L)
{
  size_t n, olen = 0;
  const char *b64 = auth_credentials(L, "basic", &n);
  if (b64 == NULL) {
    lua_pushnil(L);
    return 1;
  }
  luaL_Buffer b;
  unsigned char *dst = (unsigned char *)luaL_buffinitsize(L, &b, n);
  if (mbedtls_base64_decode(dst, n, &olen, (const unsigned char *)b64, n) != 0) {
    lua_pushnil(L);
    return 1;
  }
  const char *colon = memchr(dst, ':', olen);
  for (size_t i = 0; i < olen; i++) {
    if (dst[i] < 0x20 || dst[i] == 0x7F) {
      colon = NULL;
    }
  }
  if (colon == NULL) {
    lua_pushnil(L);
    return 1;
  }
  size_t user = (size_t)(colon - (const char *)dst);
  lua_pushlstring(L, (const char *)dst, user);
  lua_pushlstring(L, colon + 1, olen - user - 1);
  return 2;
}

static int h_auth_equal(lua_State *L)
{
  size_t la, lb;
  if (lua_type(L, 1) != LUA_TSTRING || lua_type(L, 2) != LUA_TSTRING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  const char *a = lua_tolstring(L, 1, &la);
  const char *b = lua_tolstring(L, 2, &lb);
  /* Different lengths still walk a's bytes, so only the lengths show. */
  bool same = digest_equal(a, la == lb ? b : a, la) && la == lb;
  lua_pushboolean(L, same);
  return 1;
}

static int h_crypto_sha256(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[2 * DIGEST_SHA256_LEN + 1];
  digest_sha256(s, n, d);
  text_hex(d, sizeof d, hex);
  lua_pushlstring(L, hex, 2 * DIGEST_SHA256_LEN);
  return 1;
}

static int h_crypto_hmac_sha256(lua_State *L)
{
  size_t kn, mn;
  const char *k = luaL_checklstring(L, 1, &kn);
  const char *m = luaL_checklstring(L, 2, &mn);
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[2 * DIGEST_SHA256_LEN + 1];
  digest_hmac_sha256(k, kn, m, mn, d);
  text_hex(d, sizeof d, hex);
  lua_pushlstring(L, hex, 2 * DIGEST_SHA256_LEN);
  return 1;
}

/* log(s) or log(fmt, ...): one line "policy: ..." (upvalue 1 is string.format). */
static int h_log(lua_State *L)
{
  int n = lua_gettop(L);
  size_t len;
  if (n > 1) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, 1);
  } else {
    lua_settop(L, 1);
    luaL_tolstring(L, 1, NULL);
  }
  const char *s = lua_tolstring(L, -1, &len);
  log_text(s ? s : "", s ? len : 0);
  return 0;
}

/* print(...): the arguments, tab-separated, as one log line. */
static int h_print(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) {
      luaL_addchar(&b, '\t');
    }
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  log_text(s, len);
  return 0;
}

/* load(chunk [, chunkname [, mode [, env]]]): text chunks given as strings only. */
static int sb_load(lua_State *L)
{
  size_t n;
  if (lua_type(L, 1) != LUA_TSTRING) {
    return luaL_argerror(L, 1, "string expected (a policy loads text chunks only)");
  }
  const char *s = lua_tolstring(L, 1, &n);
  const char *name = luaL_optstring(L, 2, s);
  int env = lua_isnone(L, 4) ? 0 : 4;
  int st = luaL_loadbufferx(L, s, n, name, "t");
  mem_failed = mem_failed || st == LUA_ERRMEM;
  if (st == LUA_OK) {
    if (env != 0) {
      lua_pushvalue(L, env);
      if (lua_setupvalue(L, -2, 1) == NULL) {
        lua_pop(L, 1);
      }
    }
    return 1;
  }
  if (st == LUA_ERRMEM) {
    return lua_error(L);
  }
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* collectgarbage(["collect"|"count"]): the other options are refused. */
static int sb_collectgarbage(lua_State *L)
{
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "collect") == 0) {
    lua_gc(L, LUA_GCCOLLECT);
    lua_pushinteger(L, 0);
    return 1;
  }
  if (strcmp(opt, "count") == 0) {
    int kb = lua_gc(L, LUA_GCCOUNT), rest = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, (lua_Number)kb + (lua_Number)rest / 1024);
    return 1;
  }
  return luaL_error(L, "collectgarbage: only \"collect\" and \"count\" are allowed");
}

/* setmetatable without finalizers: a __gc would run outside the budget. */
static int sb_setmetatable(lua_State *L)
{
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) {
      return luaL_error(L, "__gc metamethods are not allowed in a policy");
    }
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* Ends a script's pcall/xpcall: memory and budget failures are not the
 * script's to catch (retrying them would only burn time), so they go on up. */
static int finish_pcall(lua_State *L, int st, int extra)
{
  if (st == LUA_ERRMEM || (st != LUA_OK && mem_failed)) {
    mem_failed = true;
  }
  if (st != LUA_OK && (mem_failed || budget_exhausted)) {
    return lua_error(L);
  }
  if (st != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - extra;
}

static int sb_pcall(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  return finish_pcall(L, lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0), 0);
}

static int sb_xpcall(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  return finish_pcall(L, lua_pcall(L, n - 2, LUA_MULTRET, 2), 2);
}

/* ---- Sandbox machinery ------------------------------------------------ */

static void budget_hook(lua_State *L, lua_Debug *ar);

/* Spends n of the call's budget: VM instructions (from the hook) and pattern
 * matcher steps (policy_pattern.c, which the hook never sees) alike. Past
 * the budget, every further instruction raises an error, so a script's own
 * pcall cannot swallow the stop. The error names the innermost script line:
 * the hook's own function, or the caller of string.find and the like. */
static void budget_charge(lua_State *L, unsigned long n)
{
  lua_Debug d;
  budget_used += (long)n;
  if (!budget_exhausted && budget_used < POSTERN_LUA_BUDGET) {
    return;
  }
  if (!budget_exhausted) {
    budget_exhausted = true;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  }
  for (int level = 0; lua_getstack(L, level, &d); level++) {
    if (lua_getinfo(L, "Sl", &d) && d.currentline > 0) {
      lua_pushfstring(L, "instruction budget exhausted at %s:%d", d.short_src, d.currentline);
      lua_error(L);
    }
  }
  lua_pushliteral(L, "instruction budget exhausted");
  lua_error(L);
}

/* Count hook: every POSTERN_LUA_HOOK_STEP instructions. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  budget_charge(L, POSTERN_LUA_HOOK_STEP);
}

/* Message handler: makes the error a string that names the script line. */
static int msgh(lua_State *L)
{
  lua_Debug d;
  size_t n;
  const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                        ? lua_tolstring(L, 1, &n)
                        : lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  for (int level = 1; lua_getstack(L, level, &d); level++) {
    if (lua_getinfo(L, "Sl", &d) && d.currentline > 0) {
      const char *where = lua_pushfstring(L, "%s:%d", d.short_src, d.currentline);
      size_t wl = strlen(where), ml = strlen(msg);
      bool named = (ml > wl && strncmp(msg, where, wl) == 0 && msg[wl] == ':') ||
                   (ml >= wl && strcmp(msg + ml - wl, where) == 0);
      if (!named) {
        lua_pushfstring(L, "%s (at %s)", msg, where);
        return 1;
      }
      break;
    }
  }
  lua_pushstring(L, msg);
  return 1;
}

/* Runs f(ctx) protected, under the budget and the message handler; logs a
 * failure as one line and collects the garbage it left. Returns Lua's status. */
static int run_protected(lua_CFunction f, void *ctx)
{
  lua_State *L = vm;
  int base = lua_gettop(L);
  budget_used = 0;
  budget_exhausted = false;
  mem_failed = false;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, POSTERN_LUA_HOOK_STEP);
  policy_pattern_mark_stack();
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, ctx);
  int st = lua_pcall(L, 1, 0, base + 1);
  if (st != LUA_OK) {
    size_t n = 0;
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    copy_clean(last_error, sizeof last_error, m ? m : "unknown error", m ? n : 13);
    if ((st == LUA_ERRMEM || mem_failed) && strncmp(last_error, "out of memory", 13) != 0) {
      /* Lua's own message is the bare "not enough memory": name the cap. */
      snprintf(last_error, sizeof last_error, "out of memory (arena %lu bytes)", (unsigned long)POSTERN_LUA_ARENA_SIZE);
    }
    log_line("policy: error: %s", last_error);
  }
  lua_settop(L, base);
  if (st != LUA_OK) {
    lua_gc(L, LUA_GCCOLLECT);
  }
  return st;
}

static int panic(lua_State *L)
{
  const char *m = lua_tostring(L, -1);
  log_line("policy: panic: %s", m ? m : "?");
  return 0;
}

/* ---- Setup --------------------------------------------------------------- */

typedef struct init_ctx {
  const char *const *names;
  const char *const *values;
  int n;
} init_ctx_t;

static void new_helper(lua_State *L, const char *global, const luaL_Reg *fns)
{
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  push_ro(L);
  lua_setglobal(L, global);
}

/* Registers a read-only metatable with these functions under the registry key. */
static void new_meta(lua_State *L, const luaL_Reg *fns, const char *key)
{
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

static int init_k(lua_State *L)
{
  const init_ctx_t *c = (const init_ctx_t *)lua_touserdata(L, 1);
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, lua_math_open},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
  static const luaL_Reg ro_meta[] = {
      {"__index", ro_index}, {"__newindex", ro_newindex}, {"__pairs", ro_pairs}, {"__len", ro_len}, {NULL, NULL}};
  static const luaL_Reg hdr_meta[] = {
      {"__index", hdr_index}, {"__newindex", ro_newindex}, {"__pairs", hdr_pairs}, {"__len", view_len}, {NULL, NULL}};
  static const luaL_Reg req_meta[] = {
      {"__index", req_index}, {"__newindex", ro_newindex}, {"__pairs", req_pairs}, {"__len", view_len}, {NULL, NULL}};
  static const luaL_Reg storage_fns[] = {
      {"free", h_storage_free}, {"capacity", h_storage_capacity}, {"exists", h_storage_exists}, {NULL, NULL}};
  static const luaL_Reg auth_fns[] = {
      {"bearer", h_auth_bearer}, {"basic", h_auth_basic}, {"equal", h_auth_equal}, {NULL, NULL}};
  static const luaL_Reg crypto_fns[] = {
      {"sha256", h_crypto_sha256}, {"hmac_sha256", h_crypto_hmac_sha256}, {NULL, NULL}};

  for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  /* Kept interned so that Lua never allocates it in an unprotected spot. */
  lua_pushliteral(L, "error in error handling");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pin_key);

  new_meta(L, ro_meta, &ro_meta_key);
  new_meta(L, hdr_meta, &hdr_meta_key);
  new_meta(L, req_meta, &req_meta_key);

  /* The base library, trimmed. */
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  lua_pushcfunction(L, sb_load);
  lua_setglobal(L, "load");
  lua_pushcfunction(L, sb_collectgarbage);
  lua_setglobal(L, "collectgarbage");
  lua_pushcfunction(L, sb_setmetatable);
  lua_setglobal(L, "setmetatable");
  lua_pushcfunction(L, h_print);
  lua_setglobal(L, "print");
  lua_pushcfunction(L, sb_pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, sb_xpcall);
  lua_setglobal(L, "xpcall");
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  /* find, match, gmatch and gsub metered: lstrlib's matcher runs unseen by the hook. */
  policy_pattern_install(L, -1, budget_charge);
  lua_getfield(L, -1, "format");
  lua_pushcclosure(L, h_log, 1);
  lua_setglobal(L, "log");
  lua_pop(L, 1);

  new_helper(L, "storage", storage_fns);
  new_helper(L, "auth", auth_fns);
  new_helper(L, "crypto", crypto_fns);
  lua_createtable(L, 0, c->n);
  for (int i = 0; i < c->n; i++) {
    lua_pushstring(L, c->values[i]);
    lua_setfield(L, -2, c->names[i]);
  }
  push_ro(L);
  lua_setglobal(L, "config");
  return 0;
}

/** Creates the VM in the Lua arena with the sandboxed libraries and helpers;
 *  settings become config.NAME. Returns 0, or -1 (logged). */
int policy_init(const char *const *setting_names, const char *const *setting_values, int n_settings)
{
  init_ctx_t c = {setting_names, setting_values, n_settings};
  policy_shutdown();
  if (n_settings < 0 || n_settings > POSTERN_MAX_SETTINGS) {
    log_line("policy: error: %d settings (at most %d)", n_settings, POSTERN_MAX_SETTINGS);
    return -1;
  }
  for (int i = 0; i < n_settings; i++) {
    if (setting_names[i] == NULL || setting_names[i][0] == '\0' || setting_values[i] == NULL) {
      log_line("policy: error: setting %d has no name or value", i);
      return -1;
    }
  }
  set_names = setting_names;
  set_values = setting_values;
  set_n = n_settings;
  lua_arena_init();
  vm = lua_newstate(lua_arena_alloc, NULL);
  if (vm == NULL) {
    log_line("policy: error: out of memory (arena %lu bytes)", (unsigned long)POSTERN_LUA_ARENA_SIZE);
    return -1;
  }
  lua_atpanic(vm, panic);
  if (run_protected(init_k, &c) != LUA_OK) {
    policy_shutdown();
    return -1;
  }
  /* Generational mode with a 5% minor multiplier: a request's garbage is
   * young and dies in cheap minor collections, so the heap stays near its
   * live size (the default incremental pause lets it double first, which the
   * arena cannot hold; a 100% pause would, at 10x the CPU per request). */
  lua_gc(vm, LUA_GCGEN, 5, 100);
  lua_gc(vm, LUA_GCCOLLECT);
  return 0;
}

typedef struct load_ctx {
  const char *chunkname;
  const char *source;
  size_t len;
} load_ctx_t;

static int load_k(lua_State *L)
{
  const load_ctx_t *c = (const load_ctx_t *)lua_touserdata(L, 1);
  const char *name = c->chunkname;
  if (name[0] != '@' && name[0] != '=') {
    name = lua_pushfstring(L, "@%s", name);
  }
  int st = luaL_loadbufferx(L, c->source, c->len, name, "t");
  if (st == LUA_ERRMEM || (st != LUA_OK && mem_failed)) {
    return luaL_error(L, "out of memory (arena %d bytes) loading %s", (int)POSTERN_LUA_ARENA_SIZE, name + 1);
  }
  if (st != LUA_OK) {
    return lua_error(L);
  }
  lua_call(L, 0, 0);
  if (lua_getglobal(L, "on_request") != LUA_TFUNCTION) {
    return luaL_error(L, "%s does not define a global function on_request", name + 1);
  }
  return 0;
}

/** Runs a policy script once (text only); it must define a global function
 *  on_request. Returns 0, or -1 with Lua's message (file:line) logged. */
int policy_load(const char *chunkname, const char *source, size_t len)
{
  load_ctx_t c = {chunkname ? chunkname : "policy", source, len};
  if (vm == NULL) {
    log_line("policy: error: policy_load before policy_init");
    return -1;
  }
  if (run_protected(load_k, &c) != LUA_OK) {
    return -1;
  }
  lua_gc(vm, LUA_GCCOLLECT); /* the parser's garbage */
  loaded = true;
  if (source != run_src || len != run_len) {
    run_gen++; /* another text: a rollback runs the same one again */
  }
  run_name = c.chunkname;
  run_src = source;
  run_len = len;
  digest_sha256(source, len, run_sha);
  stage_held = source == stage_buf ? len : 0;
  return 0;
}

static int self_test_k(lua_State *L)
{
  if (lua_getglobal(L, "self_test") == LUA_TNIL) {
    *(bool *)lua_touserdata(L, 1) = false;
    return 0;
  }
  if (!lua_isfunction(L, -1)) {
    return luaL_error(L, "self_test is not a function");
  }
  int fidx = lua_gettop(L);
  lua_pushvalue(L, -1);
  lua_call(L, 0, 2);
  if (lua_type(L, -2) == LUA_TBOOLEAN && !lua_toboolean(L, -2)) {
    lua_Debug d;
    lua_pushvalue(L, fidx);
    lua_getinfo(L, ">S", &d);
    return luaL_error(L, "%s:%d: self_test failed%s%s", d.short_src, d.linedefined, lua_isstring(L, -1) ? ": " : "",
                      lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  }
  return 0;
}

/** Runs the policy's optional self_test() under the budget: 0 when it returned
 *  anything but false, 1 when there is none, -1 (logged, see policy_last_error). */
int policy_self_test(void)
{
  bool present = true;
  if (vm == NULL || !loaded) {
    snprintf(last_error, sizeof last_error, "%s", "no policy loaded");
    return -1;
  }
  if (run_protected(self_test_k, &present) != LUA_OK) {
    return -1;
  }
  return present ? 0 : 1;
}

/** The budget the last call spent: VM instructions (counted by POSTERN_LUA_HOOK_STEP) and matcher steps. */
long policy_instructions_used(void)
{
  return budget_used;
}

/** The message of the last call that failed, as logged (Lua's, with name:line). */
const char *policy_last_error(void)
{
  return last_error;
}

/** The running policy: its source (len bytes), name, SHA-256, and a number that changes with it. */
const char *policy_running(size_t *len, const char **name, uint8_t sha256[DIGEST_SHA256_LEN], uint32_t *gen)
{
  if (len != NULL) {
    *len = loaded ? run_len : 0;
  }
  if (name != NULL) {
    *name = loaded ? run_name : "";
  }
  if (sha256 != NULL) {
    memcpy(sha256, run_sha, DIGEST_SHA256_LEN);
  }
  if (gen != NULL) {
    *gen = run_gen;
  }
  return loaded ? run_src : NULL;
}

/* ---- Replacement ------------------------------------------------------------ */

/** Bytes a replacement may have now: the buffer less the running source it holds. */
size_t policy_stage_room(void)
{
  return sizeof stage_buf - stage_held;
}

/** Starts collecting a replacement for owner; false while another owner collects one. */
bool policy_stage_begin(const void *owner)
{
  if (stage_owner != NULL && stage_owner != owner) {
    return false;
  }
  stage_owner = owner;
  stage_len = 0;
  return true;
}

/** Appends n bytes; false (nothing kept) past policy_stage_room() or for another owner. */
bool policy_stage_write(const void *owner, const void *data, size_t n)
{
  if (owner != stage_owner || n > sizeof stage_buf - stage_held - stage_len) {
    return false;
  }
  memcpy(stage_buf + stage_held + stage_len, data, n);
  stage_len += n;
  return true;
}

/** Drops owner's collection, if it has one. */
void policy_stage_abort(const void *owner)
{
  if (owner != NULL && owner == stage_owner) {
    stage_owner = NULL;
    stage_len = 0;
  }
}

/* Builds the VM again from the kept settings and runs `source`, then its
 * self_test. The old VM is closed first: the arena holds one VM at a time. */
static int rebuild(const char *name, const char *source, size_t len, bool self_test)
{
  size_t hw = lua_arena_high_water();
  hw_carry = hw > hw_carry ? hw : hw_carry;
  if (policy_init(set_names, set_values, set_n) != 0) {
    return -1;
  }
  if (policy_load(name, source, len) != 0 || (self_test && policy_self_test() < 0)) {
    loaded = false;
    return -1;
  }
  return 0;
}

/**
 * Checks owner's collected script and, when it passes, swaps it in: the VM is
 * rebuilt from it (same arena, sandbox and settings), its on_request must
 * exist and its optional self_test() pass. On failure the running policy is
 * rebuilt from its kept source, and -1 comes back with the reason in msg.
 */
int policy_stage_commit(const void *owner, size_t *peak)
{
  if (owner != stage_owner) {
    snprintf(last_error, sizeof last_error, "%s", "no policy is being collected");
    return -1;
  }
  const char *old_name = run_name, *old_src = run_src;
  size_t old_len = run_len;
  uint32_t old_gen = run_gen;
  bool had = loaded;
  size_t n = stage_len, held = stage_held;
  stage_owner = NULL;
  stage_len = 0;
  int st = rebuild("_policy", stage_buf + held, n, true);
  if (peak != NULL) {
    *peak = lua_arena_high_water(); /* the new VM's, from its start through its check */
  }
  if (st == 0) {
    memmove(stage_buf, stage_buf + held, n); /* the old source is not needed any more */
    run_src = stage_buf;
    run_gen++;
    stage_held = n;
    return 0;
  }
  /* Lua names the script first in its own messages, not in a memory error's. */
  if (strncmp(last_error, "_policy", 7) != 0) {
    size_t n_err = strlen(last_error);
    n_err = n_err < sizeof last_error - 10 ? n_err : sizeof last_error - 10;
    memmove(last_error + 9, last_error, n_err + 1);
    memcpy(last_error, "_policy: ", 9);
    last_error[sizeof last_error - 1] = '\0';
  }
  run_name = old_name; /* a script that loaded and failed its self_test was the running text for a moment */
  run_src = old_src;
  run_len = old_len;
  run_gen = old_gen;
  if (!had || rebuild(old_name, old_src, old_len, false) != 0) {
    log_line("policy: error: %s did not load again; every request fails closed", old_name);
  } else {
    stage_held = old_src == stage_buf ? old_len : 0;
  }
  return -1;
}

#if POSTERN_CONFIG_ROUTE
/* ---- Settings at run time (PUT /_config) --------------------------------------
 * A JSON object of strings, parsed into one of two static slots: the one in
 * use stays intact until the new settings have passed the same check as a
 * replaced policy (the running text rebuilt with them). */

static char cfg_text[2][POSTERN_CONFIG_MAX];
static const char *cfg_names[2][POSTERN_MAX_SETTINGS], *cfg_values[2][POSTERN_MAX_SETTINGS];
static int cfg_next; /* the slot the next parse writes */

static size_t json_ws(const char *js, size_t i, size_t len)
{
  while (i < len && (js[i] == ' ' || js[i] == '\t' || js[i] == '\r' || js[i] == '\n')) {
    i++;
  }
  return i;
}

static int json_hex4(const char *p)
{
  int v = 0;
  for (int k = 0; k < 4; k++) {
    char ch = p[k];
    int d = ch >= '0' && ch <= '9'   ? ch - '0'
            : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                     : -1;
    if (d < 0) {
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

/* Decodes the JSON string at js[*i] (its opening quote) into out[*o..cap), NUL-terminated; false when malformed or too long. */
static bool json_string(const char *js, size_t len, size_t *i, char *out, size_t *o, size_t cap)
{
  size_t k = *i + 1, w = *o;
  while (k < len && js[k] != '"') {
    unsigned char ch = (unsigned char)js[k];
    unsigned long cp = ch;
    int n = 1;
    if (ch < 0x20) {
      return false;
    }
    if (ch == '\\') {
      if (k + 1 >= len) {
        return false;
      }
      const char *esc = strchr("\"\\/bfnrt", js[k + 1]);
      if (esc != NULL && js[k + 1] != '\0') {
        cp = (unsigned long)"\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
        k += 2;
      } else if (js[k + 1] == 'u' && k + 6 <= len && json_hex4(js + k + 2) > 0) {
        cp = (unsigned long)json_hex4(js + k + 2);
        k += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          int lo = k + 6 <= len && js[k] == '\\' && js[k + 1] == 'u' ? json_hex4(js + k + 2) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF) {
            return false;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
          k += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
      } else {
        return false;
      }
      n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    } else {
      k++;
    }
    if (w + (size_t)n + 1 > cap) {
      return false;
    }
    if (n == 1) {
      out[w++] = (char)cp;
    } else {
      static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
      for (int b = n - 1; b > 0; b--) {
        out[w + (size_t)b] = (char)(0x80 | (cp & 0x3F));
        cp >>= 6;
      }
      out[w] = (char)(lead[n] | cp);
      w += (size_t)n;
    }
  }
  if (k >= len) {
    return false;
  }
  out[w++] = '\0';
  *i = k + 1;
  *o = w;
  return true;
}

/* A setting name as --set takes it: 1 to 32 letters, digits and '_', not starting with a digit. */
static bool setting_name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 32 || (s[0] >= '0' && s[0] <= '9')) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')) {
      return false;
    }
  }
  return true;
}

/** Parses a JSON object of strings (the settings, as PUT /_config and the store give them) into a
 *  static slot; its count, with *names and *values valid until the parse after next, or -1 with msg. */
int policy_config_parse(const char *js, size_t len, const char *const **names, const char *const **values, char *msg,
                        size_t cap)
{
  int slot = cfg_next, n = 0;
  char *text = cfg_text[slot];
  size_t i = json_ws(js, 0, len), o = 0;
  const char *why = NULL;
  if (i >= len || js[i] != '{') {
    why = "the settings must be a JSON object of strings";
  } else {
    i = json_ws(js, i + 1, len);
    bool first = true;
    while (why == NULL && !(i < len && js[i] == '}' && first)) {
      size_t name_at = o, value_at = 0;
      if (n == POSTERN_MAX_SETTINGS) {
        why = "too many settings (POSTERN_MAX_SETTINGS)";
      } else if (i >= len || js[i] != '"' || !json_string(js, len, &i, text, &o, sizeof cfg_text[slot])) {
        why = "a setting's name is not a JSON string, or the settings are too long (POSTERN_CONFIG_MAX)";
      } else if (!setting_name_ok(text + name_at)) {
        why = "setting names are 1 to 32 letters, digits and '_', not starting with a digit";
      } else if ((i = json_ws(js, i, len)) >= len || js[i] != ':') {
        why = "':' expected after a setting's name";
      } else if ((i = json_ws(js, i + 1, len)) >= len || js[i] != '"' || (value_at = o) != o ||
                 !json_string(js, len, &i, text, &o, sizeof cfg_text[slot]) ||
                 strlen(text + value_at) != o - value_at - 1) {
        why = "a setting's value is not a JSON string (without NUL), or the settings are too long (POSTERN_CONFIG_MAX)";
      } else {
        for (int k = 0; k < n && why == NULL; k++) {
          if (strcmp(cfg_names[slot][k], text + name_at) == 0) {
            why = "a setting appears twice";
          }
        }
        cfg_names[slot][n] = text + name_at;
        cfg_values[slot][n] = text + value_at;
        n++;
        i = json_ws(js, i, len);
        if (why == NULL && i < len && js[i] == ',') {
          i = json_ws(js, i + 1, len);
          first = false;
          continue;
        }
        if (why == NULL && (i >= len || js[i] != '}')) {
          why = "',' or '}' expected after a setting";
        }
        break;
      }
    }
    if (why == NULL && json_ws(js, i + 1, len) != len) {
      why = "bytes after the settings object";
    }
  }
  if (why != NULL) {
    snprintf(msg, cap, "%s", why);
    return -1;
  }
  cfg_next = 1 - slot;
  *names = cfg_names[slot];
  *values = cfg_values[slot];
  return n;
}

/** Checks owner's collected settings (a JSON object of strings) and swaps them in: the running
 *  policy is rebuilt with them and must load and pass its self_test. 0; -1 (malformed, msg) with
 *  nothing changed; -2 (the policy refused them, msg) with the previous settings back. */
int policy_stage_commit_config(const void *owner)
{
  const char *const *names, *const *values;
  if (owner != stage_owner) {
    snprintf(last_error, sizeof last_error, "%s", "no settings are being collected");
    return -1;
  }
  size_t n = stage_len;
  stage_owner = NULL;
  stage_len = 0;
  int count = policy_config_parse(stage_buf + stage_held, n, &names, &values, last_error, sizeof last_error);
  if (count < 0) {
    return -1;
  }
  const char *const *old_names = set_names, *const *old_values = set_values;
  int old_n = set_n;
  uint32_t old_gen = run_gen;
  set_names = names;
  set_values = values;
  set_n = count;
  if (rebuild(run_name, run_src, run_len, true) == 0) {
    return 0;
  }
  set_names = old_names;
  set_values = old_values;
  set_n = old_n;
  cfg_next = 1 - cfg_next; /* the slot in use stays the old one's */
  if (rebuild(run_name, run_src, run_len, false) != 0) {
    log_line("policy: error: the policy did not load again with the previous settings; every request fails closed");
  }
  run_gen = old_gen;
  return -2;
}

/** The settings the policy runs with (config.NAME); the count. */
int policy_settings(const char *const **names, const char *const **values)
{
  *names = set_names;
  *values = set_values;
  return set_n;
}

typedef struct secret_ctx {
  const char *name;
  bool secret;
} secret_ctx_t;

static int secret_k(lua_State *L)
{
  secret_ctx_t *c = (secret_ctx_t *)lua_touserdata(L, 1);
  lua_pushglobaltable(L);
  lua_pushliteral(L, "secret_settings");
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    c->secret = strcmp(c->name, "token") == 0;
    return 0;
  }
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    if (strcmp(lua_tostring(L, -1), c->name) == 0) {
      c->secret = true;
      return 0;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/** True when GET /_config must not show the setting: the policy's global list secret_settings names
 *  it, or, without such a list, it is "token". Fails closed (true). */
bool policy_setting_secret(const char *name)
{
  secret_ctx_t c = {name, true};
  if (vm == NULL || !loaded) {
    return true;
  }
  c.secret = false;
  if (run_protected(secret_k, &c) != LUA_OK) {
    return true;
  }
  return c.secret;
}
#endif /* POSTERN_CONFIG_ROUTE */

/* ---- Calls ----------------------------------------------------------------- */

typedef struct call_ctx {
  const policy_request_t *req;
  const char *fn; /* "on_request" or "on_stored" */
  bool optional;  /* a missing function means accept */
  bool stored;    /* pass {size=, sha256=} too */
  uint64_t size;
  const char *sha256_hex;
  policy_decision_t *out;
} call_ctx_t;

/* Pushes the read-only request object: a view, filled in as it is read. */
static void push_request(lua_State *L, const policy_request_t *r)
{
  push_view(L, r, &req_meta_key, 2);
}

/* 100 goes on; a final answer is a refusal, 4xx or 5xx. A 2xx or 3xx would
 * claim a success the core never produced (and a 204 or 304 must carry no
 * body), so it fails closed like any other invalid answer. */
static bool valid_status(lua_Integer s)
{
  return s == 100 || (s >= 400 && s <= 599);
}

/* Status from a scalar result (true, false, a number, "accept"); -1 when invalid. */
static lua_Integer scalar_status(lua_State *L, int idx)
{
  int isnum = 0;
  lua_Integer s;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? 100 : 403;
  case LUA_TNUMBER:
    s = lua_tointegerx(L, idx, &isnum);
    return isnum && valid_status(s) ? s : -1;
  case LUA_TSTRING:
    return strcmp(lua_tostring(L, idx), "accept") == 0 ? 100 : -1;
  default:
    return -1;
  }
}

/* Copies an optional string at idx into dst; false when it is neither nil nor a string. */
static bool opt_message(lua_State *L, int idx, char *dst, size_t cap)
{
  size_t n;
  if (lua_isnoneornil(L, idx)) {
    return true;
  }
  if (lua_type(L, idx) != LUA_TSTRING) {
    return false;
  }
  const char *s = lua_tolstring(L, idx, &n);
  copy_clean(dst, cap, s, n);
  return true;
}

/* The function that returned a result, for error messages: named only when
 * one is raised, so a good decision pays nothing for it. */
typedef struct result_src {
  int fidx;       /* stack index of the function */
  const char *fn; /* its global name */
} result_src_t;

/* Raises "<script>:<line>: <fn> returned <what>". */
static void result_error(lua_State *L, const result_src_t *src, const char *what)
{
  lua_Debug d;
  lua_pushvalue(L, src->fidx);
  lua_getinfo(L, ">S", &d);
  luaL_error(L, "%s:%d: %s returned %s", d.short_src, d.linedefined, src->fn, what);
}

/* ---- CORS answers ------------------------------------------------------
 * What a policy's table says to browsers: checked here like every other
 * field, so a header the core writes never carries CR, LF or a stray byte. */

static bool cors_alpha(char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool cors_digit(char ch)
{
  return ch >= '0' && ch <= '9';
}

/* "*", or a serialized origin (RFC 6454 section 6.2): scheme "://" host [":" port], nothing after. */
static bool cors_origin_ok(const char *s, size_t n)
{
  if (n == 1 && s[0] == '*') {
    return true;
  }
  size_t i = 0;
  while (i < n && (cors_alpha(s[i]) || (i > 0 && (cors_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')))) {
    i++;
  }
  if (i == 0 || n - i < 4 || memcmp(s + i, "://", 3) != 0) {
    return false;
  }
  size_t host = i += 3;
  if (s[i] == '[') { /* an IPv6 literal */
    while (++i < n && (cors_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F') ||
                       s[i] == ':' || s[i] == '.')) {
    }
    if (i >= n || s[i] != ']' || i == host + 1) {
      return false;
    }
    i++;
  } else {
    while (i < n && (cors_alpha(s[i]) || cors_digit(s[i]) || s[i] == '-' || s[i] == '.' || s[i] == '_')) {
      i++;
    }
    if (i == host) {
      return false;
    }
  }
  if (i < n && s[i] == ':') {
    size_t port = ++i;
    while (i < n && cors_digit(s[i])) {
      i++;
    }
    if (i == port || i - port > 5) {
      return false;
    }
  }
  return i == n;
}

/* A list of tokens (RFC 9110 section 5.6.1): token *(OWS "," OWS token). */
static bool cors_list_ok(const char *s, size_t n)
{
  size_t i = 0;
  for (;;) {
    size_t t = i;
    while (i < n && text_tchar((unsigned char)s[i])) {
      i++;
    }
    if (i == t) {
      return false;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
      i++;
    }
    if (i == n) {
      return true;
    }
    if (s[i++] != ',') {
      return false;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
      i++;
    }
  }
}

/* The fields of a table answer, a bit each: which ones a table holds is
 * learnt in one pass over it, so that a small answer ({status = 417,
 * message = ...}) is not asked for the eight fields it lacks. */
enum {
  ANSWER_STATUS = 1u << 0,
  ANSWER_MESSAGE = 1u << 1,
  ANSWER_RETRY = 1u << 2,
  ANSWER_NAME = 1u << 3,
  ANSWER_WWW_AUTHENTICATE = 1u << 4,
  ANSWER_CORS = 1u << 5, /* allow_origin, allow_methods, allow_headers, max_age */
  ANSWER_DIGEST = 1u << 6,
  ANSWER_ALL = (1u << 7) - 1u
};

static const struct {
  const char *key;
  uint8_t len;
  uint8_t bit;
} answer_keys[] = {
    {"status", 6, ANSWER_STATUS},
    {"message", 7, ANSWER_MESSAGE},
    {"retry", 5, ANSWER_RETRY},
    {"name", 4, ANSWER_NAME},
    {"www_authenticate", 16, ANSWER_WWW_AUTHENTICATE},
    {"allow_origin", 12, ANSWER_CORS},
    {"allow_methods", 13, ANSWER_CORS},
    {"allow_headers", 13, ANSWER_CORS},
    {"max_age", 7, ANSWER_CORS},
    {"digest", 6, ANSWER_DIGEST},
};

/* The answer fields the table at v holds; all of them when it has a
 * metatable (an __index may supply any). */
static unsigned answer_fields(lua_State *L, int v)
{
  if (lua_getmetatable(L, v)) {
    lua_pop(L, 1);
    return ANSWER_ALL;
  }
  unsigned fields = 0;
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      continue;
    }
    size_t n;
    const char *k = lua_tolstring(L, -1, &n);
    for (size_t i = 0; i < sizeof answer_keys / sizeof answer_keys[0]; i++) {
      if (n == answer_keys[i].len && memcmp(k, answer_keys[i].key, n) == 0) {
        fields |= answer_keys[i].bit;
        break;
      }
    }
  }
  return fields;
}

/* Pushes the field key of the answer at v, or nil without asking when held is 0. */
static void answer_get(lua_State *L, int v, unsigned held, const char *key)
{
  if (held != 0) {
    lua_getfield(L, v, key);
  } else {
    lua_pushnil(L);
  }
}

/* Copies the optional string field key of the table at v into dst when ok() accepts it. */
static void read_cors_str(lua_State *L, int v, const char *key, char *dst, size_t cap, bool (*ok)(const char *, size_t),
                          const result_src_t *who)
{
  lua_getfield(L, v, key);
  if (!lua_isnil(L, -1)) {
    size_t n = 0;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (s == NULL || n >= cap || !ok(s, n)) {
      result_error(L, who, lua_pushfstring(L, "an invalid %s", key));
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
  }
  lua_pop(L, 1);
}

/* The CORS fields of a table answer: allow_origin, allow_methods, allow_headers, max_age. */
static void read_cors(lua_State *L, int v, policy_decision_t *d, const result_src_t *who, unsigned fields)
{
  if ((fields & ANSWER_CORS) == 0) {
    return;
  }
  read_cors_str(L, v, "allow_origin", d->allow_origin, sizeof d->allow_origin, cors_origin_ok, who);
  read_cors_str(L, v, "allow_methods", d->allow_methods, sizeof d->allow_methods, cors_list_ok, who);
  read_cors_str(L, v, "allow_headers", d->allow_headers, sizeof d->allow_headers, cors_list_ok, who);
  lua_getfield(L, v, "max_age");
  if (!lua_isnil(L, -1)) {
    int isint = 0;
    lua_Integer a = lua_tointegerx(L, -1, &isint);
    if (!isint || lua_type(L, -1) != LUA_TNUMBER || a < 0 || a > 86400) {
      result_error(L, who, "an invalid max_age (0 to 86400 seconds)");
    }
    d->max_age = (int32_t)a;
  }
  lua_pop(L, 1);
}

/* Reads the two results of a call (at v and v + 1) into d; raises an error
 * naming the function when they do not follow the conventions. */
static void read_result(lua_State *L, int v, policy_decision_t *d, const result_src_t *who)
{
  decision_clear(d);
  if (lua_type(L, v) != LUA_TTABLE) {
    lua_Integer s = scalar_status(L, v);
    if (s < 0) {
      result_error(L, who, lua_pushfstring(L, "an invalid decision (%s)", luaL_typename(L, v)));
    }
    if (!opt_message(L, v + 1, d->message, sizeof d->message)) {
      result_error(L, who, "a message that is not a string");
    }
    d->status = (int)s;
    return;
  }
  unsigned fields = answer_fields(L, v);
  answer_get(L, v, fields & ANSWER_STATUS, "status");
  lua_Integer s = scalar_status(L, -1);
  if (s < 0) {
    result_error(L, who, "an invalid status field");
  }
  d->status = (int)s;
  answer_get(L, v, fields & ANSWER_MESSAGE, "message");
  if (!opt_message(L, -1, d->message, sizeof d->message)) {
    result_error(L, who, "a message that is not a string");
  }
  answer_get(L, v, fields & ANSWER_RETRY, "retry");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) {
    result_error(L, who, "a retry field that is not a boolean");
  }
  d->retryable = lua_toboolean(L, -1) && s == 417;
  answer_get(L, v, fields & ANSWER_NAME, "name");
  if (!lua_isnil(L, -1)) {
    size_t n = 0;
    const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (name == NULL || !text_name_ok(name, n)) {
      result_error(L, who, "an invalid storage name");
    }
    memcpy(d->name, name, n);
    d->name[n] = '\0';
  }
  answer_get(L, v, fields & ANSWER_WWW_AUTHENTICATE, "www_authenticate");
  if (!lua_isnil(L, -1)) {
    size_t n = 0;
    const char *w = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    bool ok = w != NULL && n < (size_t)WWW_AUTH_MAX;
    for (size_t i = 0; ok && i < n; i++) {
      ok = (unsigned char)w[i] >= 0x20 && (unsigned char)w[i] != 0x7F;
    }
    if (!ok) {
      result_error(L, who, "an invalid www_authenticate");
    }
    memcpy(d->www_authenticate, w, n);
    d->www_authenticate[n] = '\0';
  }
  read_cors(L, v, d, who, fields);
  answer_get(L, v, fields & ANSWER_DIGEST, "digest");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) {
    result_error(L, who, "a digest field that is not a boolean");
  }
  d->no_digest = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
}

static int call_k(lua_State *L)
{
  const call_ctx_t *c = (const call_ctx_t *)lua_touserdata(L, 1);
  int t = lua_getglobal(L, c->fn);
  if (t == LUA_TNIL && c->optional) {
    decision_clear(c->out);
    c->out->status = 100;
    return 0;
  }
  if (t != LUA_TFUNCTION) {
    return luaL_error(L, "%s is not a function", c->fn);
  }
  result_src_t who = {lua_gettop(L), c->fn};
  lua_pushvalue(L, -1);
  push_request(L, c->req);
  if (c->stored) {
    lua_createtable(L, 0, 2);
    push_u64(L, c->size);
    lua_setfield(L, -2, "size");
    if (c->sha256_hex != NULL) {
      lua_pushstring(L, c->sha256_hex);
      lua_setfield(L, -2, "sha256");
    }
  }
  lua_call(L, c->stored ? 2 : 1, 2);
  read_result(L, lua_gettop(L) - 1, c->out, &who);
  return 0;
}

/* Runs one policy call into *out, failing closed on any error. */
static void call_policy(call_ctx_t *c, policy_decision_t *out)
{
  c->out = out;
  if (vm == NULL || !loaded) {
    log_line("policy: error: no policy loaded");
    fail_closed(out);
    return;
  }
  if (run_protected(call_k, c) != LUA_OK) {
    fail_closed(out);
  }
  call_gen++; /* this call's req.headers is gone */
}

/** Calls on_request(req) under the sandbox; fails closed (500, policy_error). */
void policy_decide(const policy_request_t *req, policy_decision_t *out)
{
  call_ctx_t c = {req, "on_request", false, false, 0, NULL, NULL};
  call_policy(&c, out);
}

/** Calls the optional on_stored(req, {size=, sha256=}) before the commit (sha256 nil for an
 *  upload stored without a digest); without that function the upload is accepted (status 100). */
void policy_after_body(const policy_request_t *req, uint64_t size, const char *sha256_hex, policy_decision_t *out)
{
  call_ctx_t c = {req, "on_stored", true, true, size, sha256_hex, NULL};
  call_policy(&c, out);
}

/** Bytes the VM holds now in its arena. */
size_t policy_memory_in_use(void)
{
  return vm != NULL ? lua_arena_in_use() : 0;
}

/** Runs a full collection and returns the bytes still live: the VM's true baseline. */
size_t policy_memory_live(void)
{
  if (vm == NULL) {
    return 0;
  }
  lua_gc(vm, LUA_GCCOLLECT);
  return lua_arena_in_use();
}

/** Most bytes the VM has held since policy_init. */
size_t policy_memory_high_water(void)
{
  size_t hw = lua_arena_high_water();
  return hw > hw_carry ? hw : hw_carry;
}

/** Closes the VM and returns every arena byte. */
void policy_shutdown(void)
{
  if (vm != NULL) {
    lua_close(vm);
    vm = NULL;
  }
  loaded = false;
}
