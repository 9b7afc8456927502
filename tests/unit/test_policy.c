/* test_policy.c: unit tests of the Lua policy bridge: default and example policies, conventions, sandbox, limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_storage.h"
#include "lua_arena.h"
#include "platform.h"
#include "policy.h"
#include "unit.h"

/* ---- Log capture ------------------------------------------------------- */

static char g_log[16384];
static size_t g_log_len;

/** Captures console output (log lines) for the checks. */
void platform_console_write(const char *s, size_t n)
{
  if (g_log_len + n >= sizeof g_log) {
    g_log_len = 0;
  }
  memcpy(g_log + g_log_len, s, n);
  g_log_len += n;
  g_log[g_log_len] = '\0';
}

static void log_clear(void)
{
  g_log_len = 0;
  g_log[0] = '\0';
}

static int log_has(const char *s)
{
  return strstr(g_log, s) != NULL;
}

static int log_lines(void)
{
  int n = 0;
  for (size_t i = 0; i < g_log_len; i++) {
    n += g_log[i] == '\n';
  }
  return n;
}

/* ---- Helpers --------------------------------------------------------------- */

static char g_file[65536];

static const char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  *len = 0;
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    return NULL;
  }
  *len = fread(g_file, 1, sizeof g_file - 1, f);
  g_file[*len] = '\0';
  fclose(f);
  return g_file;
}

/* Starts a VM with up to two settings and loads the script file. */
static int start_file(const char *path, const char *k1, const char *v1, const char *k2, const char *v2)
{
  const char *names[2] = {k1, k2}, *values[2] = {v1, v2};
  size_t len;
  int n = k1 ? (k2 ? 2 : 1) : 0;
  const char *src = read_file(path, &len);
  if (src == NULL || policy_init(names, values, n) != 0) {
    return -1;
  }
  return policy_load(path, src, len);
}

static int start_src(const char *chunk, const char *src)
{
  if (policy_init(NULL, NULL, 0) != 0) {
    return -1;
  }
  return policy_load(chunk, src, strlen(src));
}

static policy_str_t S(const char *s)
{
  policy_str_t x = {s, s ? strlen(s) : 0};
  return x;
}

typedef struct treq {
  policy_request_t r;
  policy_str_t names[8], values[8];
} treq_t;

/* A request; length < 0 means chunked; auth NULL means no Authorization. */
static policy_request_t *mkreq(treq_t *t, const char *method, const char *path, const char *name, long long length,
                               const char *expect, const char *auth)
{
  memset(t, 0, sizeof *t);
  t->r.method = S(method);
  t->r.path = S(path);
  t->r.version = S("HTTP/1.1");
  t->r.name = S(name);
  t->r.has_length = length >= 0;
  t->r.length = length >= 0 ? (uint64_t)length : 0;
  t->r.expect = S(expect);
  t->r.peer = S("10.0.2.2:54321");
  t->r.header_names = t->names;
  t->r.header_values = t->values;
  t->names[t->r.n_headers] = S("Host");
  t->values[t->r.n_headers++] = S("device");
  if (auth != NULL) {
    t->names[t->r.n_headers] = S("Authorization");
    t->values[t->r.n_headers++] = S(auth);
  }
  if (expect != NULL) {
    t->names[t->r.n_headers] = S("Expect");
    t->values[t->r.n_headers++] = S(expect);
  }
  return &t->r;
}

static policy_decision_t decide(const policy_request_t *r)
{
  policy_decision_t d;
  memset(&d, 0x5a, sizeof d);
  policy_decide(r, &d);
  return d;
}

/* Decides a GET of `path` (the test scripts switch on it). */
static policy_decision_t get(const char *path)
{
  treq_t t;
  return decide(mkreq(&t, "GET", path, NULL, 0, NULL, NULL));
}

#define TOKEN "Bearer s3cret"
#define EXPECT "100-continue"
#define KIB 1024LL
#define MIB (1024LL * 1024LL)

/* ---- The default policy --------------------------------------------------- */

static void test_default_with_token(void)
{
  treq_t t;
  policy_decision_t d;
  fake_storage_reset(MIB, 512 * KIB);
  log_clear();
  CHECK_EQ(start_file("scripts/policy.lua", "token", "s3cret", NULL, NULL), 0);
  CHECK(!log_has("no token"));

  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, TOKEN));
  CHECK_EQ(d.status, 100);
  CHECK(!d.policy_error);
  CHECK_STR(d.name, "");
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, NULL));
  CHECK_EQ(d.status, 417);
  CHECK(!d.retryable);
  CHECK(!d.policy_error);
  CHECK(d.message[0] != '\0');
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, "Bearer wrong"));
  CHECK_EQ(d.status, 417);
  CHECK(!d.retryable);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, NULL, NULL));
  CHECK_EQ(d.status, 401);
  CHECK_STR(d.www_authenticate, "Bearer realm=\"postern\"");
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, NULL, "Basic YWxpY2U6c2VjcmV0MQ=="));
  CHECK_EQ(d.status, 401);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, NULL, "Bearer wrong"));
  CHECK_EQ(d.status, 403);
  CHECK_STR(d.www_authenticate, "");
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, NULL, "Bearer s3cre"));
  CHECK_EQ(d.status, 403);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, NULL, "bearer  s3cret "));
  CHECK_EQ(d.status, 100);
  /* Space. */
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 512 * KIB, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 512 * KIB + 1, NULL, TOKEN));
  CHECK_EQ(d.status, 507);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 512 * KIB + 1, EXPECT, TOKEN));
  CHECK_EQ(d.status, 417);
  CHECK(!d.retryable);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 2 * MIB, NULL, TOKEN));
  CHECK_EQ(d.status, 413);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", -1, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", -1, EXPECT, TOKEN));
  CHECK_EQ(d.status, 100);
  /* Other routes. */
  d = decide(mkreq(&t, "GET", "/_status", NULL, -1, NULL, NULL));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "GET", "/files/a.bin", "a.bin", -1, NULL, NULL));
  CHECK_EQ(d.status, 401);
  d = decide(mkreq(&t, "GET", "/files/", NULL, -1, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "DELETE", "/files/a.bin", "a.bin", -1, NULL, "Bearer nope"));
  CHECK_EQ(d.status, 403);
  /* No after-body hook: accept. */
  policy_after_body(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 3, NULL, TOKEN), 3, "00", &d);
  CHECK_EQ(d.status, 100);
  CHECK(!d.policy_error);
  CHECK_EQ(log_lines(), 0);
  policy_shutdown();
}

static void test_default_without_token(void)
{
  treq_t t;
  policy_decision_t d;
  fake_storage_reset(MIB, 512 * KIB);
  log_clear();
  CHECK_EQ(start_file("scripts/policy.lua", NULL, NULL, NULL, NULL), 0);
  CHECK(log_has("policy: no token configured: set --set token=..."));
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 10, NULL, TOKEN));
  CHECK_EQ(d.status, 403);
  CHECK(!d.policy_error);
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 10, EXPECT, TOKEN));
  CHECK_EQ(d.status, 417);
  d = decide(mkreq(&t, "DELETE", "/files/a.bin", "a.bin", -1, NULL, "Bearer "));
  CHECK_EQ(d.status, 403);
  d = decide(mkreq(&t, "GET", "/_status", NULL, -1, NULL, NULL));
  CHECK_EQ(d.status, 100);
  policy_shutdown();
  /* An empty token is no token. */
  log_clear();
  CHECK_EQ(start_file("scripts/policy.lua", "token", "", NULL, NULL), 0);
  CHECK(log_has("no token configured"));
  d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 10, NULL, "Bearer "));
  CHECK_EQ(d.status, 403);
  policy_shutdown();
}

/* ---- The examples --------------------------------------------------------- */

static void test_quota_example(void)
{
  treq_t t;
  policy_decision_t d;
  fake_storage_reset(8 * MIB, 4 * MIB);
  CHECK_EQ(start_file("scripts/examples/quota.lua", "token", "s3cret", "log_slots", "3"), 0);
  d = decide(mkreq(&t, "PUT", "/files/logs-1.txt", "logs-1.txt", 1000, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "PUT", "/files/logs-3.txt", "logs-3.txt", 64 * KIB, EXPECT, TOKEN));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "PUT", "/files/logs-1.txt", "logs-1.txt", 64 * KIB + 1, NULL, TOKEN));
  CHECK_EQ(d.status, 413);
  CHECK(strstr(d.message, "64 KiB") != NULL);
  d = decide(mkreq(&t, "PUT", "/files/logs-4.txt", "logs-4.txt", 10, NULL, TOKEN));
  CHECK_EQ(d.status, 403);
  d = decide(mkreq(&t, "PUT", "/files/fw-main.bin", "fw-main.bin", MIB, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "PUT", "/files/fw-main.bin", "fw-main.bin", 2 * MIB, NULL, TOKEN));
  CHECK_EQ(d.status, 413);
  d = decide(mkreq(&t, "PUT", "/files/fw-main.bin", "fw-main.bin", 2 * MIB, EXPECT, TOKEN));
  CHECK_EQ(d.status, 417);
  d = decide(mkreq(&t, "PUT", "/files/other.txt", "other.txt", 10, NULL, TOKEN));
  CHECK_EQ(d.status, 403);
  d = decide(mkreq(&t, "PUT", "/files/other.txt", "other.txt", 10, EXPECT, TOKEN));
  CHECK_EQ(d.status, 417);
  d = decide(mkreq(&t, "PUT", "/files/fw-main.bin", "fw-main.bin", 10, NULL, NULL));
  CHECK_EQ(d.status, 401);
  d = decide(mkreq(&t, "PUT", "/files/fw-main.bin", "fw-main.bin", -1, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  /* The cap is checked again on the stored size (chunked uploads). */
  policy_after_body(&t.r, 2 * MIB, "ab", &d);
  CHECK_EQ(d.status, 413);
  CHECK(!d.policy_error);
  policy_after_body(&t.r, MIB, "ab", &d);
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "GET", "/files/", NULL, -1, NULL, TOKEN));
  CHECK_EQ(d.status, 100);
  policy_shutdown();
}

static void test_basic_users_example(void)
{
  treq_t t;
  policy_decision_t d;
  const char *alice = "Basic YWxpY2U6c2VjcmV0MQ==", *bob = "Basic Ym9iOnNlY3JldDI=";
  fake_storage_reset(MIB, MIB);
  CHECK_EQ(start_file("scripts/examples/basic_users.lua", "users", "alice:secret1:rw,bob:secret2:r", NULL, NULL), 0);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, NULL, alice));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, EXPECT, alice));
  CHECK_EQ(d.status, 417);
  CHECK(d.retryable);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, NULL, bob));
  CHECK_EQ(d.status, 403);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, EXPECT, bob));
  CHECK_EQ(d.status, 417);
  CHECK(!d.retryable);
  d = decide(mkreq(&t, "GET", "/files/a", "a", -1, NULL, bob));
  CHECK_EQ(d.status, 100);
  d = decide(mkreq(&t, "DELETE", "/files/a", "a", -1, NULL, bob));
  CHECK_EQ(d.status, 403);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, NULL, "Basic bWFsbG9yeTp4"));
  CHECK_EQ(d.status, 401);
  CHECK_STR(d.www_authenticate, "Basic realm=\"postern\", charset=\"UTF-8\"");
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, NULL, "Basic YWxpY2U6c2VjcmV0Mg=="));
  CHECK_EQ(d.status, 401);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 10, EXPECT, NULL));
  CHECK_EQ(d.status, 417);
  CHECK(!d.retryable);
  d = decide(mkreq(&t, "PUT", "/files/a", "a", 2 * MIB, NULL, alice));
  CHECK_EQ(d.status, 507);
  policy_shutdown();
}

/* ---- Return conventions ----------------------------------------------------- */

static const char conventions_lua[] =
    "local R = {\n"
    "  ['/true'] = function() return true end,\n"
    "  ['/false'] = function() return false end,\n"
    "  ['/false-msg'] = function() return false, 'go away' end,\n"
    "  ['/100'] = function() return 100 end,\n"
    "  ['/accept'] = function() return 'accept' end,\n"
    "  ['/417'] = function() return 417, 'nope' end,\n"
    "  ['/401'] = function() return 401, 'who' end,\n"
    "  ['/404f'] = function() return 404.0 end,\n"
    "  ['/200'] = function() return 200 end,\n"
    "  ['/201'] = function() return 201, 'made' end,\n"
    "  ['/204'] = function() return 204 end,\n"
    "  ['/304'] = function() return 304 end,\n"
    "  ['/399'] = function() return 399 end,\n"
    "  ['/table-204'] = function() return {status = 204} end,\n"
    "  ['/name-utf8'] = function() return {status = 100, name = 'caf\\195\\169.bin'} end,\n"
    "  ['/name-bad-utf8'] = function() return {status = 100, name = 'edge-\\255\\254.bin'} end,\n"
    "  ['/name-dotdot'] = function() return {status = 100, name = 'a..b'} end,\n"
    "  ['/name-bslash'] = function() return {status = 100, name = 'a\\\\b'} end,\n"
    "  ['/table'] = function() return {status = 417, message = 'm', retry = true, name = 'x.bin',\n"
    "                                  www_authenticate = 'Bearer realm=\"postern\"'} end,\n"
    "  ['/table-403-retry'] = function() return {status = 403, retry = true} end,\n"
    "  ['/table-true'] = function() return {status = true} end,\n"
    "  ['/name-64'] = function() return {status = 100, name = string.rep('a', 64)} end,\n"
    "  ['/msg-ctl'] = function() return 403, 'a\\nb\\rc' end,\n"
    "  ['/msg-long'] = function() return 403, string.rep('m', 500) end,\n"
    "  ['/nil'] = function() return nil end,\n"
    "  ['/none'] = function() end,\n"
    "  ['/99'] = function() return 99 end,\n"
    "  ['/150'] = function() return 150 end,\n"
    "  ['/600'] = function() return 600 end,\n"
    "  ['/200.5'] = function() return 200.5 end,\n"
    "  ['/deny'] = function() return 'deny' end,\n"
    "  ['/msg-table'] = function() return 417, {} end,\n"
    "  ['/msg-number'] = function() return 417, 5 end,\n"
    "  ['/func'] = function() return print end,\n"
    "  ['/table-empty'] = function() return {} end,\n"
    "  ['/table-retry-str'] = function() return {status = 417, retry = 'yes'} end,\n"
    "  ['/name-empty'] = function() return {status = 100, name = ''} end,\n"
    "  ['/name-slash'] = function() return {status = 100, name = 'a/b'} end,\n"
    "  ['/name-dot'] = function() return {status = 100, name = '.hidden'} end,\n"
    "  ['/name-long'] = function() return {status = 100, name = string.rep('a', 65)} end,\n"
    "  ['/name-ctl'] = function() return {status = 100, name = 'a\\nb'} end,\n"
    "  ['/name-del'] = function() return {status = 100, name = 'a\\127'} end,\n"
    "  ['/name-num'] = function() return {status = 100, name = 5} end,\n"
    "  ['/www-crlf'] = function() return {status = 401, www_authenticate = 'a\\r\\nX: y'} end,\n"
    "  ['/www-long'] = function() return {status = 401, www_authenticate = string.rep('w', 96)} end,\n"
    "}\n"
    "function on_request(req) return R[req.path]() end\n";

static void test_return_conventions(void)
{
  static const char *const bad[] = {
      "/nil",         "/none",        "/99",        "/150",        "/600",      "/200.5",       "/deny",
      "/200",         "/201",         "/204",       "/304",        "/399",      "/table-204",   "/name-bad-utf8",
      "/name-dotdot", "/name-bslash", "/msg-table", "/msg-number", "/func",     "/table-empty", "/table-retry-str",
      "/name-empty",  "/name-slash",  "/name-dot",  "/name-long",  "/name-ctl", "/name-del",    "/name-num",
      "/www-crlf",    "/www-long"};
  policy_decision_t d;
  CHECK_EQ(start_src("conv.lua", conventions_lua), 0);
  CHECK_EQ(get("/true").status, 100);
  CHECK_EQ(get("/false").status, 403);
  d = get("/false-msg");
  CHECK_EQ(d.status, 403);
  CHECK_STR(d.message, "go away");
  CHECK_EQ(get("/100").status, 100);
  CHECK_EQ(get("/accept").status, 100);
  CHECK_EQ(get("/404f").status, 404);
  CHECK_STR(get("/name-utf8").name, "caf\xc3\xa9.bin");
  d = get("/417");
  CHECK_EQ(d.status, 417);
  CHECK_STR(d.message, "nope");
  CHECK(!d.retryable);
  d = get("/401");
  CHECK_EQ(d.status, 401);
  CHECK_STR(d.www_authenticate, "");
  d = get("/table");
  CHECK_EQ(d.status, 417);
  CHECK(d.retryable);
  CHECK(!d.policy_error);
  CHECK_STR(d.message, "m");
  CHECK_STR(d.name, "x.bin");
  CHECK_STR(d.www_authenticate, "Bearer realm=\"postern\"");
  d = get("/table-403-retry");
  CHECK_EQ(d.status, 403);
  CHECK(!d.retryable);
  CHECK_EQ(get("/table-true").status, 100);
  CHECK_EQ(strlen(get("/name-64").name), 64);
  CHECK_STR(get("/msg-ctl").message, "a?b?c");
  CHECK_EQ(strlen(get("/msg-long").message), POSTERN_MESSAGE_MAX - 1);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    log_clear();
    d = get(bad[i]);
    if (d.status != 500 || !d.policy_error) {
      fprintf(stderr, "not a policy error: %s -> %d\n", bad[i], d.status);
    }
    CHECK_EQ(d.status, 500);
    CHECK(d.policy_error);
    CHECK(!d.retryable);
    CHECK_STR(d.message, "policy_error");
    CHECK_STR(d.name, "");
    CHECK_EQ(log_lines(), 1);
    CHECK(log_has("policy: error: conv.lua:"));
  }
  CHECK_EQ(get("/true").status, 100);
  policy_shutdown();
}

/* ---- CORS fields ---------------------------------------------------------- */

static const char cors_lua[] =
    "local R = {\n"
    "  ['/star'] = {status = 100, allow_origin = '*'},\n"
    "  ['/full'] = {status = 100, allow_origin = 'https://dash.example:8443', allow_methods = 'PUT, GET,DELETE',\n"
    "               allow_headers = 'authorization,\\tcontent-digest', max_age = 600},\n"
    "  ['/v6'] = {status = 403, message = 'no', allow_origin = 'http://[fe80::1]:8080'},\n"
    "  ['/plus'] = {status = 100, allow_origin = 'coap+tcp://a-b.c_d'},\n"
    "  ['/age0'] = {status = 100, allow_origin = '*', max_age = 0},\n"
    "  ['/age-max'] = {status = 100, allow_origin = '*', max_age = 86400},\n"
    "  ['/o-crlf'] = {status = 100, allow_origin = 'http://a\\r\\nX: y'},\n"
    "  ['/o-path'] = {status = 100, allow_origin = 'http://a/'},\n"
    "  ['/o-noscheme'] = {status = 100, allow_origin = 'a.example'},\n"
    "  ['/o-empty-host'] = {status = 100, allow_origin = 'http://'},\n"
    "  ['/o-empty-v6'] = {status = 100, allow_origin = 'http://[]'},\n"
    "  ['/o-port'] = {status = 100, allow_origin = 'http://a:'},\n"
    "  ['/o-port6'] = {status = 100, allow_origin = 'http://a:123456'},\n"
    "  ['/o-space'] = {status = 100, allow_origin = 'http://a b'},\n"
    "  ['/o-long'] = {status = 100, allow_origin = 'http://' .. string.rep('a', 74)},\n"
    "  ['/o-num'] = {status = 100, allow_origin = 5},\n"
    "  ['/o-null'] = {status = 100, allow_origin = 'null'},\n"
    "  ['/m-space'] = {status = 100, allow_origin = '*', allow_methods = 'PUT GET'},\n"
    "  ['/m-empty'] = {status = 100, allow_origin = '*', allow_methods = ''},\n"
    "  ['/m-trailing'] = {status = 100, allow_origin = '*', allow_methods = 'PUT,'},\n"
    "  ['/h-ctl'] = {status = 100, allow_origin = '*', allow_headers = 'a\\nb'},\n"
    "  ['/h-long'] = {status = 100, allow_origin = '*', allow_headers = string.rep('a', 97)},\n"
    "  ['/age-neg'] = {status = 100, allow_origin = '*', max_age = -1},\n"
    "  ['/age-big'] = {status = 100, allow_origin = '*', max_age = 86401},\n"
    "  ['/age-frac'] = {status = 100, allow_origin = '*', max_age = 1.5},\n"
    "  ['/age-str'] = {status = 100, allow_origin = '*', max_age = '60'},\n"
    "}\n"
    "function on_request(req) if req.path == '/scalar' then return true end return R[req.path] end\n";

static void test_cors_fields(void)
{
  static const char *const bad[] = {"/o-crlf", "/o-path",  "/o-noscheme", "/o-empty-host", "/o-empty-v6",
                                    "/o-port", "/o-port6", "/o-space",    "/o-long",       "/o-num",
                                    "/o-null", "/m-space", "/m-empty",    "/m-trailing",   "/h-ctl",
                                    "/h-long", "/age-neg", "/age-big",    "/age-frac",     "/age-str"};
  policy_decision_t d;
  CHECK_EQ(start_src("cors.lua", cors_lua), 0);
  d = get("/scalar");
  CHECK_EQ(d.status, 100);
  CHECK_STR(d.allow_origin, "");
  CHECK_EQ(d.max_age, -1);
  d = get("/star");
  CHECK_STR(d.allow_origin, "*");
  CHECK_STR(d.allow_methods, "");
  CHECK_EQ(d.max_age, -1);
  d = get("/full");
  CHECK_EQ(d.status, 100);
  CHECK_STR(d.allow_origin, "https://dash.example:8443");
  CHECK_STR(d.allow_methods, "PUT, GET,DELETE");
  CHECK_STR(d.allow_headers, "authorization,\tcontent-digest");
  CHECK_EQ(d.max_age, 600);
  d = get("/v6");
  CHECK_EQ(d.status, 403);
  CHECK_STR(d.message, "no");
  CHECK_STR(d.allow_origin, "http://[fe80::1]:8080");
  CHECK_STR(get("/plus").allow_origin, "coap+tcp://a-b.c_d");
  CHECK_EQ(get("/age0").max_age, 0);
  CHECK_EQ(get("/age-max").max_age, 86400);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    log_clear();
    d = get(bad[i]);
    if (d.status != 500 || !d.policy_error) {
      fprintf(stderr, "not a policy error: %s -> %d\n", bad[i], d.status);
    }
    CHECK_EQ(d.status, 500);
    CHECK(d.policy_error);
    CHECK_STR(d.allow_origin, "");
    CHECK(log_has("policy: error: cors.lua:"));
    CHECK(log_has("returned an invalid "));
  }
  policy_shutdown();
}

/* ---- Limits ------------------------------------------------------------- */

static const char budget_lua[] = "function on_request(req)\n"
                                 "  if req.path == '/loop' then\n"
                                 "    while true do end\n"
                                 "  elseif req.path == '/swallow' then\n"
                                 "    while true do pcall(function() while true do end end) end\n"
                                 "  elseif req.path == '/deep' then\n"
                                 "    local function f() while true do pcall(f) end end\n"
                                 "    f()\n"
                                 "  elseif req.path == '/sort' then\n"
                                 "    local t = {} for i = 1, 200 do t[i] = i end\n"
                                 "    table.sort(t, function(a, b) while true do end end)\n"
                                 "  end\n"
                                 "  return true\n"
                                 "end\n";

static void test_budget(void)
{
  static const char *const loops[] = {"/loop", "/swallow", "/deep", "/sort"};
  CHECK_EQ(start_src("budget.lua", budget_lua), 0);
  for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
    clock_t t0 = clock();
    log_clear();
    policy_decision_t d = get(loops[i]);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK_EQ(d.status, 500);
    CHECK(d.policy_error);
    CHECK(secs < 2.0);
    CHECK_EQ(log_lines(), 1);
    if (strcmp(loops[i], "/deep") == 0) { /* the recursion may run out of memory first */
      CHECK(log_has("policy: error: out of memory (arena") || log_has("instruction budget exhausted at budget.lua:"));
    } else {
      CHECK(log_has("policy: error: instruction budget exhausted"));
      CHECK(log_has("budget.lua:"));
    }
    if (d.status != 500 || log_lines() != 1) {
      fprintf(stderr, "%s: %s", loops[i], g_log);
    }
    CHECK_EQ(get("/ok").status, 100);
  }
  CHECK(log_has("at budget.lua:"));
  log_clear();
  get("/loop");
  CHECK(log_has("policy: error: instruction budget exhausted at budget.lua:3"));
  policy_shutdown();
  /* The main chunk runs under the budget too. */
  log_clear();
  CHECK_EQ(start_src("spin.lua", "while true do end"), -1);
  CHECK(log_has("instruction budget exhausted at spin.lua:1"));
  policy_shutdown();
}

/* Pattern functions run in C, where the count hook never fires: the
 * sandbox's own matcher charges its steps to the same budget. */
static const char pattern_lua[] =
    "function on_request(req)\n"
    "  local v = req.headers['x-firmware'] or ''\n"
    "  if req.path == '/fw' then\n"
    "    return v:match('^(.-)/(.-)/(.-)%.bin$') ~= nil\n"
    "  elseif req.path == '/swallow' then\n"
    "    for i = 1, 100 do pcall(string.find, v, '.-.-.-b') end\n"
    "  elseif req.path == '/trim' then\n"
    "    return #v:match('^%s*(.-)%s*$') > 0\n"
    "  elseif req.path == '/shared' then\n"
    "    for i = 1, tonumber(req.query) do end\n"
    "    return (('a'):rep(250)):find('a-b') == nil\n"
    "  elseif req.path == '/loop' then\n"
    "    while true do end\n"
    "  elseif req.path == '/nest' then\n"
    "    local depth = 0\n"
    "    local function again(x) depth = depth + 1; return (x .. 'x'):gsub('x', again) end\n"
    "    again('')\n"
    "  end\n"
    "  return false\n"
    "end\n";

/* Decides a GET of path with X-Firmware: value (and the query). */
static policy_decision_t get_fw(const char *path, const char *query, const char *value)
{
  treq_t t;
  policy_request_t *r = mkreq(&t, "GET", path, NULL, 0, NULL, NULL);
  r->query = S(query);
  t.names[r->n_headers] = S("X-Firmware");
  t.values[r->n_headers++] = S(value);
  return decide(r);
}

static double wall_ms(const struct timespec *t0)
{
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_pattern_budget(void)
{
  static char slashes[1951], spaces[1903];
  struct timespec t0;
  memset(slashes, '/', 1950);
  spaces[0] = 'a';
  memset(spaces + 1, ' ', 1900);
  spaces[1901] = 'b';
  CHECK_EQ(start_src("pattern.lua", pattern_lua), 0);
  CHECK_EQ(get_fw("/fw", NULL, "boards/mps2/fw.bin").status, 100);
  CHECK_EQ(get_fw("/fw", NULL, "fw.bin").status, 403);
  static const struct {
    const char *path, *value, *where;
  } runaways[] = {
      {"/fw", slashes, "at pattern.lua:4"},
      {"/swallow", slashes, "at pattern.lua:6"},
      {"/trim", spaces, "at pattern.lua:8"},
      {"/loop", "", "at pattern.lua:13"},
  };
  for (size_t i = 0; i < sizeof runaways / sizeof runaways[0]; i++) {
    log_clear();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    policy_decision_t d = get_fw(runaways[i].path, NULL, runaways[i].value);
    double ms = wall_ms(&t0);
    printf("figures: %-9s stopped by the budget in %.2f ms (sanitized build)\n", runaways[i].path, ms);
    CHECK_EQ(d.status, 500);
    CHECK(d.policy_error);
    CHECK(ms < 100.0);
    CHECK_EQ(log_lines(), 1);
    CHECK(log_has("policy: error: instruction budget exhausted"));
    CHECK(log_has(runaways[i].where));
    if (!log_has(runaways[i].where)) {
      fprintf(stderr, "%s: %s", runaways[i].path, g_log);
    }
  }
  /* A gsub whose replacement calls gsub again stops at the C stack bound,
   * long before the board's stack would be overrun. */
  log_clear();
  policy_decision_t nest = get_fw("/nest", NULL, "");
  CHECK_EQ(nest.status, 500);
  CHECK(nest.policy_error);
  CHECK(log_has("C stack overflow (pattern functions nested too deep)"));
  /* A trim of 1.9 KB of text, spaces around it, fits in the budget. */
  spaces[1] = 'x';
  memset(spaces + 2, 'y', 1898);
  CHECK_EQ(get_fw("/trim", NULL, spaces).status, 100);
  /* One budget: about 95,000 matcher steps pass alone and after 50,000
   * instructions, not after 150,000. */
  CHECK_EQ(get_fw("/shared", "1", "").status, 100);
  CHECK_EQ(get_fw("/shared", "50000", "").status, 100);
  log_clear();
  CHECK_EQ(get_fw("/shared", "150000", "").status, 500);
  CHECK(log_has("instruction budget exhausted at pattern.lua:11"));
  CHECK_EQ(get_fw("/fw", NULL, "a/b/c.bin").status, 100); /* the VM goes on */
  policy_shutdown();
}

static const char memory_lua[] = "local keep = {}\n"
                                 "function on_request(req)\n"
                                 "  if req.path == '/rep' then\n"
                                 "    local s = string.rep('x', 1 << 20)\n"
                                 "    return #s > 0\n"
                                 "  elseif req.path == '/rep-huge' then\n"
                                 "    return #string.rep('x', 1 << 40) > 0\n"
                                 "  elseif req.path == '/double' then\n"
                                 "    local s = 'x' while true do s = s .. s end\n"
                                 "  elseif req.path == '/table' then\n"
                                 "    local t = {} local i = 0 while true do i = i + 1 t[i] = i end\n"
                                 "  elseif req.path == '/hash' then\n"
                                 "    local t = {} local i = 0 while true do i = i + 1 t['k' .. i] = i end\n"
                                 "  elseif req.path == '/keep' then\n"
                                 "    for i = 1, 100 do keep[i] = {i} end\n"
                                 "  elseif req.path == '/leak' then\n"
                                 "    local i = 0 while true do i = i + 1 keep[i] = {i} end\n"
                                 "  elseif req.path == '/caught' then\n"
                                 "    local ok = pcall(string.rep, 'x', 1 << 20)\n"
                                 "    return not ok\n"
                                 "  elseif req.path == '/keep-free' then\n"
                                 "    keep = {}\n"
                                 "  end\n"
                                 "  return true\n"
                                 "end\n";

static void test_memory(void)
{
  static const char *const bombs[] = {"/rep", "/rep-huge", "/double", "/table", "/hash"};
  CHECK_EQ(start_src("mem.lua", memory_lua), 0);
  CHECK_EQ(get("/ok").status, 100);
  size_t baseline = policy_memory_in_use();
  size_t after_first = 0;
  CHECK(baseline > 0);
  for (int round = 0; round < 10; round++) {
    if (round == 1) {
      after_first = lua_arena_in_use();
    }
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
      log_clear();
      policy_decision_t d = get(bombs[i]);
      CHECK_EQ(d.status, 500);
      CHECK(d.policy_error);
      CHECK_EQ(log_lines(), 1);
      CHECK(log_has("policy: error:"));
      /* Back to the baseline, give or take a grown string table or call
       * list (the first round grows them); later rounds must not grow. */
      CHECK(lua_arena_in_use() <= baseline + 2048);
      CHECK(lua_arena_high_water() <= POSTERN_LUA_ARENA_SIZE);
      CHECK_EQ(get("/ok").status, 100);
    }
  }
  CHECK(lua_arena_in_use() <= after_first + 64); /* nine more rounds leaked nothing */
  CHECK(log_has("out of memory (arena"));
  /* A script cannot catch a memory error (nor retry it forever). */
  log_clear();
  CHECK_EQ(get("/caught").status, 500);
  CHECK(log_has("policy: error: out of memory (arena"));
  CHECK_EQ(log_lines(), 1);
  /* Memory the script keeps in globals stays, until it lets go of it. */
  CHECK_EQ(get("/keep").status, 100);
  CHECK_EQ(get("/rep").status, 500); /* a failure collects all garbage */
  CHECK(lua_arena_in_use() > after_first + 1024);
  CHECK_EQ(get("/ok").status, 100);
  CHECK_EQ(get("/keep-free").status, 100);
  CHECK_EQ(get("/rep").status, 500);
  CHECK(lua_arena_in_use() <= after_first + 64);
  /* A script that fills the arena with live data gets what still fits, and
   * fails closed for the rest: never a crash, never a decision made up. */
  CHECK_EQ(get("/leak").status, 500);
  for (int i = 0; i < 3; i++) {
    policy_decision_t d = get("/ok");
    CHECK(d.status == 100 || (d.status == 500 && d.policy_error));
    d = get("/table");
    CHECK_EQ(d.status, 500);
    CHECK(d.policy_error);
  }
  policy_shutdown();
  CHECK_EQ(lua_arena_in_use(), 0);
}

/* ---- Errors and loading ----------------------------------------------------- */

static const char errors_lua[] = "-- line 1\n"
                                 "function on_request(req)\n"
                                 "  if req.path == '/index' then\n"
                                 "    local t = nil\n"
                                 "    return t.x\n"
                                 "  elseif req.path == '/level0' then\n"
                                 "    error('boom', 0)\n"
                                 "  elseif req.path == '/object' then\n"
                                 "    error({})\n"
                                 "  elseif req.path == '/nested' then\n"
                                 "    local function inner() error('deep') end\n"
                                 "    inner()\n"
                                 "  end\n"
                                 "  return true\n"
                                 "end\n";

static void test_errors(void)
{
  CHECK_EQ(start_src("errs.lua", errors_lua), 0);
  log_clear();
  policy_decision_t d = get("/index");
  CHECK_EQ(d.status, 500);
  CHECK(d.policy_error);
  CHECK_EQ(log_lines(), 1);
  CHECK(log_has("policy: error: errs.lua:5: attempt to index a nil value"));
  log_clear();
  CHECK_EQ(get("/level0").status, 500);
  CHECK(log_has("policy: error: boom (at errs.lua:7)"));
  log_clear();
  CHECK_EQ(get("/object").status, 500);
  CHECK(log_has("policy: error: (error object is a table value) (at errs.lua:9)"));
  log_clear();
  CHECK_EQ(get("/nested").status, 500);
  CHECK(log_has("policy: error: errs.lua:11: deep\n"));
  CHECK_EQ(get("/ok").status, 100);
  policy_shutdown();

  /* Without a policy: fail closed. */
  log_clear();
  d = get("/ok");
  CHECK_EQ(d.status, 500);
  CHECK(d.policy_error);
  CHECK(log_has("no policy loaded"));
}

static void test_load_failures(void)
{
  log_clear();
  CHECK_EQ(start_src("bad.lua", "function on_request(req)\n  return (\nend\n"), -1);
  CHECK_EQ(log_lines(), 1);
  CHECK(log_has("policy: error: bad.lua:3: unexpected symbol near 'end'"));
  policy_shutdown();
  log_clear();
  CHECK_EQ(start_src("run.lua", "local x = nil\nx.y = 1\n"), -1);
  CHECK(log_has("policy: error: run.lua:2: attempt to index a nil value"));
  policy_shutdown();
  log_clear();
  CHECK_EQ(start_src("none.lua", "function on_stored() return true end\n"), -1);
  CHECK(log_has("none.lua does not define a global function on_request"));
  policy_shutdown();
  log_clear();
  CHECK_EQ(start_src("bin.lua", "\033Lua\x54\x00"), -1);
  CHECK(log_has("attempt to load a binary chunk"));
  policy_shutdown();
  /* Before init, and too many settings. */
  CHECK_EQ(policy_load("x.lua", "", 0), -1);
  CHECK_EQ(policy_init(NULL, NULL, POSTERN_MAX_SETTINGS + 1), -1);
}

/* ---- Sandbox and helpers -------------------------------------------------- */

static const char sandbox_lua[] =
    "local P = {}\n"
    "P['/globals'] = function()\n"
    "  return io == nil and os == nil and package == nil and debug == nil and require == nil\n"
    "     and dofile == nil and loadfile == nil and coroutine == nil and string.dump == nil\n"
    "end\n"
    "P['/load-binary'] = function()\n"
    "  local f, err = load('\\27Lua\\84\\0')\n"
    "  assert(f == nil and err:find('binary'), err)\n"
    "  assert(not pcall(load, function() return nil end))\n"
    "  return true\n"
    "end\n"
    "P['/load-text'] = function()\n"
    "  assert(load('return 7')() == 7)\n"
    "  assert(load('return x', 'c', 'b', {x = 5})() == 5)\n"
    "  assert(load('return io', 'c', 't', {})() == nil)\n"
    "  local f, err = load('return +')\n"
    "  return f == nil and type(err) == 'string'\n"
    "end\n"
    "P['/write-req'] = function(req) req.path = '/x' return true end\n"
    "P['/write-new'] = function(req) req.anything = 1 return true end\n"
    "P['/write-headers'] = function(req) req.headers.authorization = 'x' return true end\n"
    "P['/write-tls'] = function(req) req.tls.subject = 'x' return true end\n"
    "P['/rawset'] = function(req) rawset(req, 'path', '/x') return true end\n"
    "P['/setmt'] = function(req) setmetatable(req, {}) return true end\n"
    "P['/getmt'] = function(req)\n"
    "  return getmetatable(req) == false and getmetatable(req.headers) == false\n"
    "     and getmetatable(storage) == false and getmetatable(config) == false\n"
    "end\n"
    "P['/stash'] = function(req) stash = req.headers return stash.host == 'device' end\n"
    "P['/stale'] = function() return stash.authorization == nil end\n"
    "P['/config-write'] = function() config.token = 'x' return true end\n"
    "P['/storage-write'] = function() storage.free = function() return 1e9 end return true end\n"
    "P['/config-read'] = function() return config.token == 's3cret' and config.missing == nil end\n"
    "P['/gc-meta'] = function() setmetatable({}, {__gc = function() end}) return true end\n"
    "P['/gc-stop'] = function() collectgarbage('stop') return true end\n"
    "P['/gc-ok'] = function() return collectgarbage('count') > 0 and collectgarbage() == 0 end\n"
    "P['/request'] = function(req)\n"
    "  local h = req.headers\n"
    "  assert(req.method == 'PUT' and req.path == '/request' and req.query == 'x=1', 'fields')\n"
    "  assert(req.version == 'HTTP/1.1' and req.name == 'a b' and req.peer == '10.0.2.2:54321')\n"
    "  assert(req.length == nil and req.expect == '100-continue', 'length')\n"
    "  assert(h['x-multi'] == 'a, b, c' and h.host == 'device' and h.Host == nil, 'headers')\n"
    "  assert(h['empty'] == '', 'empty header')\n"
    "  assert(req.tls.version == 'TLSv1.3' and req.tls.subject == 'CN=dev' and req.tls.cipher == nil)\n"
    "  local n = 0\n"
    "  for k, v in pairs(h) do n = n + 1 assert(type(k) == 'string' and type(v) == 'string') end\n"
    "  assert(n == 4, 'pairs ' .. n)\n"
    "  local seen = {}\n"
    "  for k in pairs(req) do seen[#seen + 1] = k end\n"
    "  assert(#seen == 9, 'req pairs ' .. #seen)\n"
    "  assert(type(req) == 'userdata')\n"
    "  return true\n"
    "end\n"
    "P['/helpers'] = function()\n"
    "  assert(crypto.sha256('abc') == 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')\n"
    "  assert(crypto.hmac_sha256('key', 'msg') == '2d93cbc1be167bcb1637a4a23cbff01a7878f0c50ee833954ea5221bb1b8c628')\n"
    "  assert(auth.bearer('Bearer abc.DEF-_~+/==') == 'abc.DEF-_~+/==')\n"
    "  assert(auth.bearer('  BEARER   tok  ') == 'tok')\n"
    "  assert(auth.bearer('Bearer') == nil and auth.bearer('Bearer ') == nil and auth.bearer('Bearerx y') == nil)\n"
    "  assert(auth.bearer('Bearer a b') == nil and auth.bearer('Bearer a=b') == nil and auth.bearer(nil) == nil)\n"
    "  assert(auth.bearer('Basic abc') == nil and auth.bearer(5) == nil)\n"
    "  local u, p = auth.basic('Basic YWxpY2U6c2VjcmV0MQ==')\n"
    "  assert(u == 'alice' and p == 'secret1', 'basic')\n"
    "  u, p = auth.basic('basic Ojo=')\n"
    "  assert(u == '' and p == ':', 'basic colons')\n"
    "  assert(auth.basic('Basic bm9jb2xvbg==') == nil and auth.basic('Basic !!') == nil)\n"
    "  assert(auth.basic('Basic YQ') == nil and auth.basic('Bearer YWxpY2U6c2VjcmV0MQ==') == nil)\n"
    "  assert(auth.equal('abc', 'abc') and not auth.equal('abc', 'abd') and not auth.equal('abc', 'ab'))\n"
    "  assert(not auth.equal(nil, 'a') and not auth.equal(1, 1) and auth.equal('', ''))\n"
    "  assert(storage.free() == 1000 and storage.capacity() == 5000)\n"
    "  local ok, size = storage.exists('here.bin')\n"
    "  assert(ok == true and size == 42)\n"
    "  assert(storage.exists('gone.bin') == false and storage.exists('here.bin\\0x') == false)\n"
    "  log('hello %s %d', 'world', 7)\n"
    "  log('plain\\nline')\n"
    "  print('p', 1, nil)\n"
    "  return true\n"
    "end\n"
    "function on_request(req) return P[req.path](req) end\n"
    "function on_stored(req, info)\n"
    "  if info.size == 3 and info.sha256 == crypto.sha256('abc') then return true end\n"
    "  return {status = 422, message = 'digest mismatch'}\n"
    "end\n";

/* The sandbox's own math library: Lua 5.4's integer and rounding semantics, no trigonometry, logarithms or random. */
static const char math_lua[] =
    "function on_request(req)\n"
    "  assert(math.sin == nil and math.log == nil and math.random == nil and math.exp == nil)\n"
    "  assert(math.floor(3.7) == 3 and math.type(math.floor(3.7)) == 'integer' and math.floor(-3.5) == -4)\n"
    "  assert(math.ceil(3.2) == 4 and math.floor(5) == 5 and math.type(math.floor(1e300)) == 'float')\n"
    "  assert(math.abs(-7) == 7 and math.abs(-2.5) == 2.5 and math.abs(math.mininteger) == math.mininteger)\n"
    "  assert(math.fmod(7, 3) == 1 and math.fmod(-7, 3) == -1 and math.fmod(7, -1) == 0)\n"
    "  assert(math.fmod(7.5, 2) == 1.5 and not pcall(math.fmod, 1, 0))\n"
    "  assert(math.max(3, 9, 2) == 9 and math.min(3, 9, 2) == 2 and math.max(1, 2.5) == 2.5)\n"
    "  assert(not pcall(math.max) and not pcall(math.min, 1, 'x'))\n"
    "  assert(math.tointeger(4.0) == 4 and math.tointeger(4.5) == nil and math.tointeger('8') == nil)\n"
    "  assert(math.type(1) == 'integer' and math.type(1.0) == 'float' and math.type('1') == nil)\n"
    "  assert(math.ult(1, -1) and not math.ult(-1, 1) and math.huge > math.maxinteger)\n"
    "  assert(math.pi > 3.14159 and math.pi < 3.1416 and math.maxinteger + 1 == math.mininteger)\n"
    "  return 2 ^ 10 == 1024.0\n"
    "end\n";

static void test_sandbox_math(void)
{
  fake_storage_reset(5000, 1000);
  CHECK_EQ(policy_init(NULL, NULL, 0), 0);
  CHECK_EQ(policy_load("math.lua", math_lua, strlen(math_lua)), 0);
  log_clear();
  policy_decision_t d = get("/m");
  if (d.status != 100) {
    fprintf(stderr, "math: %d: %s", d.status, g_log);
  }
  CHECK_EQ(d.status, 100);
}

static void test_sandbox(void)
{
  static const char *const ok[] = {"/globals",     "/load-binary", "/load-text", "/getmt",
                                   "/config-read", "/gc-ok",       "/stash",     "/helpers"};
  static const char *const refused[] = {"/write-req", "/write-new", "/write-headers", "/write-tls",
                                        "/rawset",    "/setmt",     "/config-write",  "/storage-write",
                                        "/gc-meta",   "/gc-stop",   "/stale"};
  const char *names[] = {"token"}, *values[] = {"s3cret"};
  fake_storage_reset(5000, 1000);
  fake_storage_add("here.bin", 42);
  CHECK_EQ(policy_init(names, values, 1), 0);
  CHECK_EQ(policy_load("sandbox.lua", sandbox_lua, strlen(sandbox_lua)), 0);
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    log_clear();
    treq_t t;
    policy_decision_t d = decide(mkreq(&t, "PUT", ok[i], NULL, -1, EXPECT, NULL));
    if (d.status != 100) {
      fprintf(stderr, "%s -> %d: %s", ok[i], d.status, g_log);
    }
    CHECK_EQ(d.status, 100);
  }
  CHECK(log_has("policy: hello world 7\n"));
  CHECK(log_has("policy: plain?line\n"));
  CHECK(log_has("policy: p\t1\tnil\n"));
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    log_clear();
    policy_decision_t d = get(refused[i]);
    if (d.status != 500) {
      fprintf(stderr, "%s -> %d\n", refused[i], d.status);
    }
    CHECK_EQ(d.status, 500);
    CHECK(d.policy_error);
    CHECK(log_has("sandbox.lua:"));
  }
  CHECK_EQ(get("/config-read").status, 100);
  /* req.headers kept past its call points at nothing: it refuses to be read. */
  log_clear();
  CHECK_EQ(get("/stale").status, 500);
  CHECK(log_has("the request object is only valid during the policy call"));

  /* The request object, headers lower-cased and joined. */
  policy_str_t hn[] = {S("Host"), S("X-Multi"), S("x-multi"), S("Expect"), S("X-MULTI"), S("Empty")};
  policy_str_t hv[] = {S("device"), S("a"), S("b"), S("100-continue"), S("c"), {"", 0}};
  policy_tls_t tls = {S("TLSv1.3"), {NULL, 0}, S("CN=dev"), S("ab:cd")};
  treq_t t;
  mkreq(&t, "PUT", "/request", "a b", -1, EXPECT, NULL);
  t.r.query = S("x=1");
  t.r.header_names = hn;
  t.r.header_values = hv;
  t.r.n_headers = 6;
  t.r.tls = &tls;
  log_clear();
  policy_decision_t d = decide(&t.r);
  if (d.status != 100) {
    fprintf(stderr, "request -> %d: %s", d.status, g_log);
  }
  CHECK_EQ(d.status, 100);

  /* on_stored sees size and sha256. */
  policy_after_body(&t.r, 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &d);
  CHECK_EQ(d.status, 100);
  policy_after_body(&t.r, 4, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &d);
  CHECK_EQ(d.status, 422);
  CHECK_STR(d.message, "digest mismatch");
  policy_shutdown();
}

/* ---- digest = false ---------------------------------------------------------- */

/* The answer's digest field: false turns the stored digest off, true or none leaves it on, anything else
 * fails closed; on_stored of such an upload sees no sha256. */
static void test_digest_field(void)
{
  treq_t t;
  policy_decision_t d;
  CHECK_EQ(start_src("=digest", "function on_request(req)\n"
                                "  if req.path == '/off' then return { status = 100, digest = false } end\n"
                                "  if req.path == '/on' then return { status = 100, digest = true } end\n"
                                "  if req.path == '/bad' then return { status = 100, digest = 'no' } end\n"
                                "  if req.path == '/refused' then return { status = 403, digest = false } end\n"
                                "  return true\n"
                                "end\n"
                                "function on_stored(req, f)\n"
                                "  if f.sha256 == nil then return 409, 'no sha256' end\n"
                                "  return #f.sha256 == 64\n"
                                "end\n"),
           0);
  d = get("/off");
  CHECK_EQ(d.status, 100);
  CHECK(d.no_digest);
  d = get("/on");
  CHECK_EQ(d.status, 100);
  CHECK(!d.no_digest);
  d = get("/plain");
  CHECK_EQ(d.status, 100);
  CHECK(!d.no_digest);
  d = get("/refused");
  CHECK_EQ(d.status, 403);
  log_clear();
  d = get("/bad");
  CHECK_EQ(d.status, 500);
  CHECK(d.policy_error);
  CHECK(strstr(g_log, "a digest field that is not a boolean") != NULL);
  mkreq(&t, "PUT", "/off", "a", 3, NULL, NULL);
  policy_after_body(&t.r, 3, NULL, &d);
  CHECK_EQ(d.status, 409);
  CHECK_STR(d.message, "no sha256");
  policy_after_body(&t.r, 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &d);
  CHECK_EQ(d.status, 100);
  policy_shutdown();
}

/* ---- Fault injection ------------------------------------------------------ */

static void test_fault_injection(void)
{
  treq_t t;
  fake_storage_reset(MIB, MIB);
  CHECK_EQ(start_file("scripts/policy.lua", "token", "s3cret", NULL, NULL), 0);
  policy_request_t *r = mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, TOKEN);
  size_t baseline = 0;
  int failures = 0;
  for (long i = 0; i < 30; i++) {
    lua_arena_fail_after(i);
    policy_decision_t d = decide(r);
    lua_arena_fail_after(-1);
    CHECK(d.status == 100 || (d.status == 500 && d.policy_error));
    failures += d.status == 500;
    d = decide(r);
    CHECK_EQ(d.status, 100);
    CHECK(!d.policy_error);
    d = decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, NULL, NULL));
    CHECK_EQ(d.status, 401);
    r = mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, TOKEN);
    if (i == 0) {
      baseline = lua_arena_in_use();
    }
  }
  CHECK(failures > 0);
  CHECK(lua_arena_in_use() < baseline + 4096);
  policy_shutdown();

  /* Failing allocations while creating the VM and loading the script. */
  size_t len;
  const char *src = read_file("scripts/policy.lua", &len);
  const char *names[] = {"token"}, *values[] = {"s3cret"};
  int loaded = 0;
  for (long i = 0; i < 400 && src != NULL; i += 3) {
    lua_arena_fail_after(i);
    if (policy_init(names, values, 1) == 0 && policy_load("scripts/policy.lua", src, len) == 0) {
      loaded++;
    }
    lua_arena_fail_after(-1);
    policy_shutdown();
  }
  CHECK(loaded > 0);
  CHECK_EQ(start_file("scripts/policy.lua", "token", "s3cret", NULL, NULL), 0);
  CHECK_EQ(decide(r).status, 100);
  policy_shutdown();
}

/* ---- The arena itself --------------------------------------------------- */

static void test_arena(void)
{
  lua_arena_init();
  CHECK_EQ(lua_arena_in_use(), 0);
  char *a = lua_arena_alloc(NULL, NULL, 0, 10);
  char *b = lua_arena_alloc(NULL, NULL, 0, 100);
  char *c = lua_arena_alloc(NULL, NULL, 0, 30);
  CHECK(a && b && c);
  CHECK_EQ((uintptr_t)a % 8, 0);
  CHECK_EQ((uintptr_t)b % 8, 0);
  memset(a, 'a', 10);
  memset(b, 'b', 100);
  memset(c, 'c', 30);
  /* Shrink in place, grow in place into the freed tail, grow by moving. */
  CHECK(lua_arena_alloc(NULL, b, 100, 20) == b);
  CHECK(lua_arena_alloc(NULL, b, 20, 90) == b);
  CHECK(b[19] == 'b');
  char *a2 = lua_arena_alloc(NULL, a, 10, 200);
  CHECK(a2 != NULL && a2 != a && a2[9] == 'a');
  size_t used = lua_arena_in_use();
  CHECK(used > 0 && lua_arena_high_water() >= used);
  /* Everything freed coalesces back into one block. */
  lua_arena_alloc(NULL, b, 90, 0);
  lua_arena_alloc(NULL, a2, 200, 0);
  lua_arena_alloc(NULL, c, 30, 0);
  CHECK_EQ(lua_arena_in_use(), 0);
  void *big = lua_arena_alloc(NULL, NULL, 0, POSTERN_LUA_ARENA_SIZE - 8);
  CHECK(big != NULL);
  CHECK(lua_arena_alloc(NULL, NULL, 0, 1) == NULL);
  lua_arena_alloc(NULL, big, POSTERN_LUA_ARENA_SIZE - 8, 0);
  CHECK(lua_arena_alloc(NULL, NULL, 0, POSTERN_LUA_ARENA_SIZE) == NULL);
  lua_arena_reset_high_water();
  CHECK_EQ(lua_arena_high_water(), 0);
  lua_arena_fail_after(1);
  void *x = lua_arena_alloc(NULL, NULL, 0, 8);
  CHECK(x != NULL);
  CHECK(lua_arena_alloc(NULL, NULL, 0, 8) == NULL);
  CHECK(lua_arena_alloc(NULL, x, 8, 4) == x); /* shrinking never fails */
  lua_arena_fail_after(-1);
  CHECK(lua_arena_alloc(NULL, x, 4, 16) != NULL);
  lua_arena_init();
}

/* ---- Figures -------------------------------------------------------------- */

static void test_figures(void)
{
  treq_t t;
  size_t len;
  const char *names[] = {"token"}, *values[] = {"s3cret"};
  const char *src = read_file("scripts/policy.lua", &len);
  fake_storage_reset(MIB, MIB);
  CHECK_EQ(policy_init(names, values, 1), 0);
  size_t after_init = policy_memory_in_use();
  CHECK_EQ(policy_load("scripts/policy.lua", src, len), 0);
  size_t after_load = policy_memory_in_use();
  CHECK_EQ(decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, TOKEN)).status, 100);
  size_t high = policy_memory_high_water();
  printf("figures: default policy: %zu B after init, %zu B after load, high water after load + "
         "one decide %zu B (arena %u B)\n",
         after_init, after_load, high, (unsigned)POSTERN_LUA_ARENA_SIZE);
  CHECK(high <= 24 * 1024);
  lua_arena_reset_high_water();
  for (int i = 0; i < 50; i++) {
    CHECK_EQ(decide(mkreq(&t, "PUT", "/files/a.bin", "a.bin", 100, EXPECT, TOKEN)).status, 100);
  }
  printf("figures: steady state over 50 decides: %zu B in use, high water %zu B\n", policy_memory_in_use(),
         policy_memory_high_water());
  CHECK(policy_memory_high_water() <= 24 * 1024);
  policy_shutdown();
}

/* ---- Replacement (PUT /_policy) -------------------------------------------- */

static const char repl_old[] = "function on_request(req) if req.path == '/old' then return 451 end return true end\n";

/* Collects src for owner and commits it; returns policy_stage_commit's result, msg gets the reason. */
static int replace_with(const void *owner, const char *src, char *msg, size_t cap)
{
  if (!policy_stage_begin(owner) || !policy_stage_write(owner, src, strlen(src))) {
    return -2;
  }
  size_t peak = 0;
  int rc = policy_stage_commit(owner, &peak);
  snprintf(msg, cap, "%s", policy_last_error());
  CHECK(peak > 0 && peak <= POSTERN_LUA_ARENA_SIZE);
  return rc;
}

static void test_replacement(void)
{
  static const char names0[] = "token";
  const char *names[1] = {names0}, *values[1] = {"s3cret"};
  int a, b;
  char msg[POSTERN_MESSAGE_MAX];
  CHECK_EQ(policy_init(names, values, 1), 0);
  CHECK_EQ(policy_load("old.lua", repl_old, strlen(repl_old)), 0);
  CHECK_EQ(get("/old").status, 451);
  size_t room = policy_stage_room();
  CHECK_EQ(room, POSTERN_POLICY_MAX);

  /* One collection at a time; past the room nothing is kept. */
  CHECK(policy_stage_begin(&a));
  CHECK(!policy_stage_begin(&b));
  CHECK(!policy_stage_write(&b, "x", 1));
  CHECK(policy_stage_commit(&b, NULL) == -1);
  static char big[POSTERN_POLICY_MAX + 1];
  memset(big, '-', sizeof big);
  CHECK(!policy_stage_write(&a, big, sizeof big));
  policy_stage_abort(&b); /* not its collection */
  CHECK(!policy_stage_begin(&b));
  policy_stage_abort(&a);
  CHECK(policy_stage_begin(&b));
  policy_stage_abort(&b);

  /* Refusals change nothing, and say why with name:line. */
  struct {
    const char *src, *words;
  } bad[] = {
      {"function on_request(req) return true end\nlocal x = = 1\n", "_policy:2:"},
      {"function on_requests(req) return true end\n", "on_request"},
      {"function on_request(req) return true end\nfunction self_test()\n  error('boom')\nend\n", "_policy:3: boom"},
      {"function on_request(req) return true end\nfunction self_test() return false, 'why' end\n",
       "self_test failed: why"},
      {"function on_request(req) return true end\nfunction self_test() while true do end end\n", "budget exhausted"},
      {"local t = {} for i = 1, 1e7 do t[i] = i .. 'x' end function on_request() return true end\n", "out of memory"},
  };
  uint8_t sha0[32], sha1[32];
  uint32_t gen0, gen1;
  policy_running(NULL, NULL, sha0, &gen0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    log_clear();
    CHECK_EQ(replace_with(&a, bad[i].src, msg, sizeof msg), -1);
    if (strstr(msg, bad[i].words) == NULL) {
      fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, msg, bad[i].words);
      CHECK(0);
    }
    CHECK_EQ(get("/old").status, 451);
    const char *name;
    CHECK(policy_running(NULL, &name, sha1, &gen1) == repl_old);
    CHECK_STR(name, "old.lua");
    CHECK(memcmp(sha0, sha1, 32) == 0 && gen1 == gen0); /* rebuilt from the same text */
  }

  /* A good one takes over; its settings are the same; it keeps its source in the buffer. */
  static const char next[] =
      "local t = config.token\nfunction on_request(req) if req.path == '/new' then return 452, t end return true end\n"
      "function self_test() return on_request({path = '/new'}) == 452 end\n";
  CHECK_EQ(replace_with(&a, next, msg, sizeof msg), 0);
  CHECK_EQ(get("/old").status, 100);
  policy_decision_t d = get("/new");
  CHECK_EQ(d.status, 452);
  CHECK_STR(d.message, "s3cret");
  size_t len;
  CHECK(memcmp(policy_running(&len, NULL, NULL, NULL), next, sizeof next - 1) == 0 && len == sizeof next - 1);
  CHECK_EQ(policy_stage_room(), POSTERN_POLICY_MAX - (sizeof next - 1));
  CHECK_EQ(policy_self_test(), 0);

  /* A failure now goes back to the replacement, kept at the front of the buffer. */
  CHECK_EQ(replace_with(&b, bad[0].src, msg, sizeof msg), -1);
  CHECK_EQ(get("/new").status, 452);
  /* And a second replacement moves to the front. */
  CHECK_EQ(replace_with(&b, repl_old, msg, sizeof msg), 0);
  CHECK_EQ(get("/old").status, 451);
  CHECK_EQ(policy_stage_room(), POSTERN_POLICY_MAX - strlen(repl_old));
  CHECK_EQ(policy_self_test(), 1); /* none */
  policy_shutdown();
}

/* ---- Settings at run time (PUT /_config) ------------------------------------ */

static void test_config(void)
{
  const char *const *names, *const *values;
  char msg[POSTERN_MESSAGE_MAX];
  static const char ok[] = " { \"token\" : \"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\" , \"x_1\":\"\" }\n";
  CHECK_EQ(policy_config_parse(ok, strlen(ok), &names, &values, msg, sizeof msg), 2);
  CHECK_STR(names[0], "token");
  CHECK_STR(values[0], "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80");
  CHECK_STR(names[1], "x_1");
  CHECK_STR(values[1], "");
  CHECK_EQ(policy_config_parse("{}", 2, &names, &values, msg, sizeof msg), 0);
  static const char *const bad[] = {
      "",
      "[]",
      "{",
      "{\"a\"}",
      "{\"a\":1}",
      "{\"a\":\"b\",}",
      "{\"a\":\"b\"} x",
      "{\"1a\":\"b\"}",
      "{\"a b\":\"c\"}",
      "{\"a\":\"b\",\"a\":\"c\"}",
      "{\"a\":\"\\u0000\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\x\"}",
      "{\"a\":\"b\n\"}",
      "{\"a\":\"b",
      "{\"a\":\"b\"",
      "{\"a\":\"b\" \"c\":\"d\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (policy_config_parse(bad[i], strlen(bad[i]), &names, &values, msg, sizeof msg) != -1) {
      fprintf(stderr, "config %zu accepted: %s\n", i, bad[i]);
      CHECK(0);
    }
  }
  /* Too many, and too long. */
  static char many[4096];
  size_t n = 0;
  n += (size_t)snprintf(many + n, sizeof many - n, "{");
  for (int i = 0; i <= POSTERN_MAX_SETTINGS; i++) {
    n += (size_t)snprintf(many + n, sizeof many - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
  }
  n += (size_t)snprintf(many + n, sizeof many - n, "}");
  CHECK_EQ(policy_config_parse(many, n, &names, &values, msg, sizeof msg), -1);
  static char longv[POSTERN_CONFIG_MAX + 32];
  memset(longv, 'x', sizeof longv);
  memcpy(longv, "{\"a\":\"", 6);
  memcpy(longv + sizeof longv - 2, "\"}", 2);
  CHECK_EQ(policy_config_parse(longv, sizeof longv, &names, &values, msg, sizeof msg), -1);

  /* A swap: the policy sees the new settings; a refusal keeps the old ones. */
  static const char pol[] = "local t = config.token\n"
                            "function on_request(req) return 451, t end\n"
                            "function self_test() return t ~= 'bad', 'no' end\n";
  static const char *const n0[] = {"token"}, *const v0[] = {"first"};
  CHECK_EQ(policy_init(n0, v0, 1), 0);
  CHECK_EQ(policy_load("cfg.lua", pol, strlen(pol)), 0);
  CHECK_STR(get("/").message, "first");
  int a;
  static const char next[] = "{\"token\":\"second\",\"other\":\"o\"}";
  CHECK(policy_stage_begin(&a) && policy_stage_write(&a, next, strlen(next)));
  CHECK_EQ(policy_stage_commit_config(&a), 0);
  CHECK_STR(get("/").message, "second");
  CHECK_EQ(policy_settings(&names, &values), 2);
  CHECK(policy_setting_secret("token") && !policy_setting_secret("other"));
  static const char refused[] = "{\"token\":\"bad\"}";
  CHECK(policy_stage_begin(&a) && policy_stage_write(&a, refused, strlen(refused)));
  CHECK_EQ(policy_stage_commit_config(&a), -2);
  CHECK(strstr(policy_last_error(), "self_test failed: no") != NULL);
  CHECK_STR(get("/").message, "second");
  CHECK(policy_stage_begin(&a) && policy_stage_write(&a, "{", 1));
  CHECK_EQ(policy_stage_commit_config(&a), -1);
  CHECK_STR(get("/").message, "second");
  CHECK_EQ(policy_settings(&names, &values), 2);
  CHECK_STR(values[0], "second");
  policy_shutdown();
}

int main(void)
{
  RUN(test_arena);
  RUN(test_default_with_token);
  RUN(test_default_without_token);
  RUN(test_quota_example);
  RUN(test_basic_users_example);
  RUN(test_return_conventions);
  RUN(test_cors_fields);
  RUN(test_budget);
  RUN(test_pattern_budget);
  RUN(test_memory);
  RUN(test_errors);
  RUN(test_load_failures);
  RUN(test_sandbox);
  RUN(test_sandbox_math);
  RUN(test_fault_injection);
  RUN(test_digest_field);
  RUN(test_figures);
  RUN(test_replacement);
  RUN(test_config);
  return UNIT_END();
}
