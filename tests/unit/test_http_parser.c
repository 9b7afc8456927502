/* test_http_parser.c: unit tests of the request-head parser, fed whole, split and bytewise. */
#include <stdint.h>
#include <stdlib.h>

#include "http_parser.h"
#include "unit.h"

/* ---- Feeding helpers -------------------------------------------------- */

/* Outcome of one complete feeding of an input. */
typedef struct outcome {
  int rc;
  size_t consumed; /* absolute: bytes of the input belonging to the head */
  hp_request_t req;
} outcome_t;

/* Feeds in[0..len) as fragments [0,cut) and [cut,len), or one byte at a
 * time when cut is SIZE_MAX. Each fragment is copied into a heap block of
 * exactly its size so that any over-read trips ASan. */
static void feed(const char *in, size_t len, size_t cut, outcome_t *o)
{
  hp_parser_t p;
  size_t start = 0;

  hp_init(&p, &o->req);
  o->rc = HP_MORE;
  o->consumed = 0;
  for (;;) {
    size_t end = cut == SIZE_MAX ? start + 1 : (start < cut ? cut : len);
    size_t n, used = SIZE_MAX;
    char *frag;
    int rc;

    if (end > len)
      end = len;
    n = end - start;
    frag = n ? malloc(n) : NULL;
    if (n)
      memcpy(frag, in + start, n);
    rc = hp_feed(&p, frag, n, &used);
    free(frag);
    CHECK(used <= n);
    if (rc != HP_MORE) {
      size_t again = SIZE_MAX;
      o->rc = rc;
      o->consumed = start + used;
      /* The result is sticky and consumes nothing more. */
      CHECK_EQ(hp_feed(&p, "x", 1, &again), rc);
      CHECK_EQ(again, 0);
      return;
    }
    CHECK_EQ(used, n);
    start = end;
    if (start >= len)
      break;
  }
  o->consumed = len;
}

/* Renders an outcome, spans resolved against in, into buf. */
static void render(const char *in, const outcome_t *o, char *buf, size_t cap)
{
  const hp_request_t *r = &o->req;
  int n, i;

  if (o->rc == HP_MORE) {
    n = snprintf(buf, cap, "MORE");
  } else if (o->rc != HP_DONE) {
    n = snprintf(buf, cap, "ERR %s @%zu", hp_error_name(o->rc), o->consumed);
  } else {
    n = snprintf(buf, cap, "DONE %zu %.*s %.*s 1.%u", o->consumed, (int)r->method.len, in + r->method.off,
                 (int)r->target.len, in + r->target.off, (unsigned)r->version_minor);
    for (i = 0; i < (int)r->n_headers && n > 0 && (size_t)n < cap; i++) {
      const hp_header_t *h = &r->headers[i];
      n += snprintf(buf + n, cap - (size_t)n, "|%.*s=%.*s", (int)h->name.len, in + h->name.off, (int)h->value.len,
                    in + h->value.off);
    }
  }
  CHECK(n > 0 && (size_t)n < cap);
}

static char g_render[8192];
static char g_other[8192];

/* Parses in[0..len) whole, split at every position, and bytewise; checks
 * that all agree; returns the rendered result, and the outcome in *out. */
static const char *parse_n(const char *in, size_t len, outcome_t *out)
{
  outcome_t whole, o;
  size_t cut;

  feed(in, len, len, &whole);
  render(in, &whole, g_render, sizeof g_render);
  if (whole.rc == HP_DONE)
    CHECK_EQ(whole.consumed, whole.req.head_len);
  for (cut = 0; cut <= len + 1; cut++) {
    feed(in, len, cut <= len ? cut : SIZE_MAX, &o);
    render(in, &o, g_other, sizeof g_other);
    if (o.rc != whole.rc || o.consumed != whole.consumed || strcmp(g_other, g_render) != 0) {
      CHECK_STR(g_other, g_render);
      if (cut <= len) {
        fprintf(stderr, "  split at %zu\n", cut);
      } else {
        fprintf(stderr, "  bytewise\n");
      }
      break;
    }
  }
  if (out)
    *out = whole;
  return g_render;
}

static const char *parse(const char *s)
{
  return parse_n(s, strlen(s), NULL);
}

/* ---- Valid heads ------------------------------------------------------- */

static void test_basic_methods(void)
{
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "DONE 27 GET / 1.1|Host=a");
  CHECK_STR(parse("PUT /files/x.bin HTTP/1.1\r\nHost: example.com\r\n"
                  "Content-Length: 5\r\n\r\n"),
            "DONE 67 PUT /files/x.bin 1.1|Host=example.com|Content-Length=5");
  CHECK_STR(parse("HEAD /files/ HTTP/1.1\r\nHost: h\r\n\r\n"), "DONE 34 HEAD /files/ 1.1|Host=h");
  CHECK_STR(parse("DELETE /files/a%20b HTTP/1.1\r\nHost: h\r\n\r\n"), "DONE 41 DELETE /files/a%20b 1.1|Host=h");
  CHECK_STR(parse("GET / HTTP/1.0\r\n\r\n"), "DONE 18 GET / 1.0");
  CHECK_STR(parse("M-SEARCH * HTTP/1.1\r\n\r\n"), "DONE 23 M-SEARCH * 1.1");
  CHECK_STR(parse("OPTIONS http://x:80/?q=1&r=%7e#f HTTP/1.1\r\n\r\n"), "DONE 45 OPTIONS http://x:80/?q=1&r=%7e#f 1.1");
  CHECK_STR(parse("!#$%&'*+-.^_`|~ / HTTP/1.1\r\n\r\n"), "DONE 30 !#$%&'*+-.^_`|~ / 1.1");
  CHECK_STR(parse("09azAZ / HTTP/1.1\r\n\r\n"), "DONE 21 09azAZ / 1.1");
}

static void test_header_values(void)
{
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost:   a b \t \r\nX:\tv\t\r\nY:z\r\n\r\n"), "DONE 46 GET / 1.1|Host=a b|X=v|Y=z");
  CHECK_STR(parse("GET / HTTP/1.1\r\nA:\r\nB:   \r\nC: \t\r\n\r\n"), "DONE 35 GET / 1.1|A=|B=|C=");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n"), "DONE 31 GET / 1.1|X=caf\xc3\xa9 \x80\xff");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\tb  c\r\n\r\n"), "DONE 29 GET / 1.1|X=a\tb  c");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: a:80\r\nX: \"q,;=()\"\r\n\r\n"), "DONE 43 GET / 1.1|Host=a:80|X=\"q,;=()\"");
  CHECK_STR(parse("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"), "DONE 44 GET / 1.1|!#$%&'*+-.^_`|~09azAZ=v");
}

static void test_leading_empty_lines(void)
{
  CHECK_STR(parse("\r\nGET / HTTP/1.0\r\n\r\n"), "DONE 20 GET / 1.0");
  CHECK_STR(parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n"), "DONE 22 GET / 1.0");
  CHECK_STR(parse("\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n"), "ERR bad_request @4");
  CHECK_STR(parse("\n\r\nGET / HTTP/1.0\r\n\r\n"), "ERR bad_request @0");
  CHECK_STR(parse("\r\rGET / HTTP/1.0\r\n\r\n"), "ERR bad_request @1");
}

static void test_incomplete(void)
{
  CHECK_STR(parse(""), "MORE");
  CHECK_STR(parse("\r\n"), "MORE");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: a\r\n"), "MORE");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: a\r\n\r"), "MORE");
}

static void test_pipelined(void)
{
  static const char two[] = "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                            "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  outcome_t o;
  CHECK_STR(parse_n(two, sizeof two - 1, &o), "DONE 47 PUT /a 1.1|Host=h|Content-Length=3");
  CHECK_STR(parse("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"), "DONE 28 GET /1 1.1|Host=h");
  /* The second head parses on its own from where the first body ended. */
  CHECK_STR(parse(two + 50), "DONE 28 GET /b 1.1|Host=h");
  /* Garbage after a complete head is not looked at. */
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n\r\r\n\x01"), "DONE 27 GET / 1.1|Host=h");
}

/* ---- Strictness ------------------------------------------------------ */

static void test_bare_cr(void)
{
  CHECK_STR(parse("GET / HTTP/1.1\rX"), "ERR bad_request @15");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), "ERR bad_request @21");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\r\r\n\r\n"), "ERR bad_request @21");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\r\n\r\r\n"), "ERR bad_request @23");
  CHECK_STR(parse("GET /a\rb HTTP/1.1\r\n\r\n"), "ERR bad_request @6");
  CHECK_STR(parse("G\rET / HTTP/1.1\r\n\r\n"), "ERR bad_request @1");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX\r: a\r\n\r\n"), "ERR bad_request @17");
  CHECK_STR(parse("\rGET / HTTP/1.1\r\n\r\n"), "ERR bad_request @1");
}

static void test_bare_lf(void)
{
  CHECK_STR(parse("GET / HTTP/1.1\nHost: a\n\n"), "ERR bad_request @14");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: a\n\r\n"), "ERR bad_request @23");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: a\r\n\n"), "ERR bad_request @25");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\nb\r\n\r\n"), "ERR bad_request @20");
  CHECK_STR(parse("GET /\n HTTP/1.1\r\n\r\n"), "ERR bad_request @5");
}

static void test_obs_fold_and_names(void)
{
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), "ERR bad_request @22");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), "ERR bad_request @22");
  CHECK_STR(parse("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), "ERR bad_request @16");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), "ERR bad_request @20");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), "ERR bad_request @20");
  CHECK_STR(parse("GET / HTTP/1.1\r\n: a\r\n\r\n"), "ERR bad_request @16");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHo@st: a\r\n\r\n"), "ERR bad_request @18");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHo\x80st: a\r\n\r\n"), "ERR bad_request @18");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost\r\n\r\n"), "ERR bad_request @20");
  CHECK_STR(parse("GET / HTTP/1.1\r\nA(b): c\r\n\r\n"), "ERR bad_request @17");
}

static void test_control_bytes(void)
{
  static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
  static const char nul_method[] = "G\0T / HTTP/1.1\r\n\r\n";
  CHECK_STR(parse_n(nul_value, sizeof nul_value - 1, NULL), "ERR bad_request @20");
  CHECK_STR(parse_n(nul_method, sizeof nul_method - 1, NULL), "ERR bad_request @1");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), "ERR bad_request @20");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n"), "ERR bad_request @19");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n"), "ERR bad_request @20");
  CHECK_STR(parse("GET / HTTP/1.1\r\nX\x01: a\r\n\r\n"), "ERR bad_request @17");
  CHECK_STR(parse("GET /\x01 HTTP/1.1\r\n\r\n"), "ERR bad_request @5");
  CHECK_STR(parse("GET /\x7f HTTP/1.1\r\n\r\n"), "ERR bad_request @5");
  CHECK_STR(parse("G\x1bT / HTTP/1.1\r\n\r\n"), "ERR bad_request @1");
  CHECK_STR(parse("\x7fGET / HTTP/1.1\r\n\r\n"), "ERR bad_request @0");
  CHECK_STR(parse("GET / HTTP/1.1\r\n\x7fX: a\r\n\r\n"), "ERR bad_request @16");
  /* HTAB is only allowed inside values (and their OWS). */
  CHECK_STR(parse("GET\t/ HTTP/1.1\r\n\r\n"), "ERR bad_request @3");
  CHECK_STR(parse("GET /\t HTTP/1.1\r\n\r\n"), "ERR bad_request @5");
  CHECK_STR(parse("GET / HTTP/1.1\t\r\n\r\n"), "ERR bad_request @14");
}

static void test_request_line_shape(void)
{
  CHECK_STR(parse("GET  / HTTP/1.1\r\n\r\n"), "ERR bad_request @4");
  CHECK_STR(parse("GET  HTTP/1.1\r\n\r\n"), "ERR bad_request @4");
  CHECK_STR(parse("GET /  HTTP/1.1\r\n\r\n"), "ERR bad_request @6");
  CHECK_STR(parse(" GET / HTTP/1.1\r\n\r\n"), "ERR bad_request @0");
  CHECK_STR(parse("GET / HTTP/1.1 \r\n\r\n"), "ERR bad_request @14");
  CHECK_STR(parse("GET / HTTP/1.1 x\r\n\r\n"), "ERR bad_request @14");
  CHECK_STR(parse("GET /\r\n\r\n"), "ERR bad_request @5");
  CHECK_STR(parse("GET\r\n\r\n"), "ERR bad_request @3");
  CHECK_STR(parse("GET \r\n\r\n"), "ERR bad_request @4");
  CHECK_STR(parse("GET / \r\n\r\n"), "ERR bad_request @6");
  CHECK_STR(parse("/ HTTP/1.1\r\n\r\n"), "ERR bad_request @0");
  CHECK_STR(parse("GET /\x80 HTTP/1.1\r\n\r\n"), "ERR bad_request @5");
  CHECK_STR(parse("GET \xff HTTP/1.1\r\n\r\n"), "ERR bad_request @4");
  CHECK_STR(parse("GE\"T / HTTP/1.1\r\n\r\n"), "ERR bad_request @2");
  CHECK_STR(parse("GET/ / HTTP/1.1\r\n\r\n"), "ERR bad_request @3");
}

static void test_version(void)
{
  CHECK_STR(parse("GET / HTTP/1.1x\r\n\r\n"), "ERR bad_request @14");
  CHECK_STR(parse("GET / http/1.1\r\n\r\n"), "ERR bad_request @6");
  CHECK_STR(parse("GET / HTTP/11\r\n\r\n"), "ERR bad_request @12");
  CHECK_STR(parse("GET / HTTP/1.\r\n\r\n"), "ERR bad_request @13");
  CHECK_STR(parse("GET / HTTP/1\r\n\r\n"), "ERR bad_request @12");
  CHECK_STR(parse("GET / HTTP/a.1\r\n\r\n"), "ERR bad_request @11");
  CHECK_STR(parse("GET / HTTP /1.1\r\n\r\n"), "ERR bad_request @10");
  CHECK_STR(parse("GET / HTTP/1.1\r\r\n"), "ERR bad_request @15");
  CHECK_STR(parse("GET / HTTP/2.0\r\n\r\n"), "ERR version_not_supported @15");
  CHECK_STR(parse("GET / HTTP/1.2\r\n\r\n"), "ERR version_not_supported @15");
  CHECK_STR(parse("GET / HTTP/0.9\r\n\r\n"), "ERR version_not_supported @15");
  CHECK_STR(parse("GET / HTTP/3.1\r\nHost: a\r\n\r\n"), "ERR version_not_supported @15");
  /* A malformed line is a syntax error even with an unsupported version. */
  CHECK_STR(parse("GET / HTTP/2.0\n\r\n"), "ERR bad_request @14");
  CHECK_STR(parse("GET / HTTP/2.0"), "MORE");
}

/* ---- Limits ------------------------------------------------------------ */

static char g_big[POSTERN_HEAD_MAX + 512];

static void test_method_limit(void)
{
  outcome_t o;
  size_t n = POSTERN_METHOD_MAX, len;
  memset(g_big, 'M', n);
  len = n + (size_t)sprintf(g_big + n, " / HTTP/1.1\r\n\r\n");
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_DONE);
  CHECK_EQ(o.req.method.len, POSTERN_METHOD_MAX);

  memset(g_big, 'M', n + 1);
  len = n + 1 + (size_t)sprintf(g_big + n + 1, " / HTTP/1.1\r\n\r\n");
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_ERR_METHOD);
  CHECK_EQ(o.consumed, POSTERN_METHOD_MAX);
  CHECK_EQ(hp_status_for(o.rc), 501);
}

static void test_target_limit(void)
{
  outcome_t o;
  size_t n = POSTERN_TARGET_MAX, len;
  memcpy(g_big, "GET /", 5);
  memset(g_big + 5, 'a', n - 1);
  len = 4 + n + (size_t)sprintf(g_big + 4 + n, " HTTP/1.1\r\n\r\n");
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_DONE);
  CHECK_EQ(o.req.target.len, POSTERN_TARGET_MAX);

  memset(g_big + 5, 'a', n);
  len = 5 + n + (size_t)sprintf(g_big + 5 + n, " HTTP/1.1\r\n\r\n");
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_ERR_TARGET_TOO_LONG);
  CHECK_EQ(o.consumed, 4 + POSTERN_TARGET_MAX);
  CHECK_EQ(hp_status_for(o.rc), 414);
}

/* Builds a head with n fields "Hk: k" into g_big; returns its length. */
static size_t many_headers(int n)
{
  size_t len = (size_t)sprintf(g_big, "GET / HTTP/1.1\r\n");
  int i;
  for (i = 0; i < n; i++)
    len += (size_t)sprintf(g_big + len, "H%d: %d\r\n", i, i);
  return len + (size_t)sprintf(g_big + len, "\r\n");
}

static void test_header_count_limit(void)
{
  outcome_t o;
  size_t len = many_headers(POSTERN_MAX_HEADERS);
  char name[32];
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_DONE);
  CHECK_EQ(o.req.n_headers, POSTERN_MAX_HEADERS);
  sprintf(name, "h%d", POSTERN_MAX_HEADERS - 1);
  CHECK_EQ(hp_find(&o.req, g_big, name), POSTERN_MAX_HEADERS - 1);

  len = many_headers(POSTERN_MAX_HEADERS + 1);
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_ERR_TOO_MANY_HEADERS);
  sprintf(name, "H%d: %d\r\n", POSTERN_MAX_HEADERS, POSTERN_MAX_HEADERS);
  CHECK_EQ(o.consumed, len - 2 - strlen(name));
  CHECK_EQ(hp_status_for(o.rc), 431);
}

/* Builds a head of exactly total bytes (one padded field) into g_big. */
static size_t head_of_size(size_t total)
{
  size_t len = (size_t)sprintf(g_big, "GET / HTTP/1.1\r\nX: ");
  size_t pad = total - len - 4;
  memset(g_big + len, 'v', pad);
  memcpy(g_big + len + pad, "\r\n\r\n", 4);
  return total;
}

static void test_head_size_limit(void)
{
  outcome_t o;
  size_t len = head_of_size(POSTERN_HEAD_MAX);
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_DONE);
  CHECK_EQ(o.req.head_len, POSTERN_HEAD_MAX);

  /* Exactly at the limit with a body behind it. */
  memcpy(g_big + len, "body", 4);
  parse_n(g_big, len + 4, &o);
  CHECK_EQ(o.rc, HP_DONE);
  CHECK_EQ(o.consumed, POSTERN_HEAD_MAX);

  len = head_of_size(POSTERN_HEAD_MAX + 1);
  parse_n(g_big, len, &o);
  CHECK_EQ(o.rc, HP_ERR_HEAD_TOO_LARGE);
  CHECK_EQ(o.consumed, POSTERN_HEAD_MAX);
  CHECK_EQ(hp_status_for(o.rc), 431);

  /* Leading empty lines count against the limit too. */
  memmove(g_big + 2, g_big, POSTERN_HEAD_MAX - 1);
  memcpy(g_big, "\r\n", 2);
  parse_n(g_big, POSTERN_HEAD_MAX + 1, &o);
  CHECK_EQ(o.rc, HP_ERR_HEAD_TOO_LARGE);
  parse_n(g_big, POSTERN_HEAD_MAX, &o);
  CHECK_EQ(o.rc, HP_MORE);
}

static void test_error_names(void)
{
  CHECK_EQ(hp_status_for(HP_ERR_SYNTAX), 400);
  CHECK_EQ(hp_status_for(HP_ERR_HEAD_TOO_LARGE), 431);
  CHECK_EQ(hp_status_for(HP_ERR_TOO_MANY_HEADERS), 431);
  CHECK_EQ(hp_status_for(HP_ERR_METHOD), 501);
  CHECK_EQ(hp_status_for(HP_ERR_TARGET_TOO_LONG), 414);
  CHECK_EQ(hp_status_for(HP_ERR_VERSION), 505);
  CHECK_EQ(hp_status_for(HP_DONE), 0);
  CHECK_STR(hp_error_name(HP_ERR_SYNTAX), "bad_request");
  CHECK_STR(hp_error_name(HP_ERR_HEAD_TOO_LARGE), "header_too_large");
  CHECK_STR(hp_error_name(HP_ERR_TOO_MANY_HEADERS), "too_many_headers");
  CHECK_STR(hp_error_name(HP_ERR_METHOD), "method_not_implemented");
  CHECK_STR(hp_error_name(HP_ERR_TARGET_TOO_LONG), "uri_too_long");
  CHECK_STR(hp_error_name(HP_ERR_VERSION), "version_not_supported");
}

/* ---- hp_find / hp_span_ieq / hp_analyze ------------------------------- */

static const char *g_head;
static hp_request_t g_req;

/* Parses s (must be a complete head) and runs hp_analyze on it. */
static int analyze(const char *s, hp_meta_t *m)
{
  outcome_t o;
  parse_n(s, strlen(s), &o);
  CHECK_EQ(o.rc, HP_DONE);
  if (o.rc != HP_DONE)
    return -1;
  g_head = s;
  g_req = o.req;
  return hp_analyze(&o.req, s, m);
}

static void test_find(void)
{
  static const char h[] = "GET / HTTP/1.1\r\nHOST: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
  outcome_t o;
  parse_n(h, sizeof h - 1, &o);
  CHECK_EQ(hp_find(&o.req, h, "host"), 0);
  CHECK_EQ(hp_find(&o.req, h, "x-a"), 1);
  CHECK_EQ(hp_find(&o.req, h, "x-"), -1);
  CHECK_EQ(hp_find(&o.req, h, "x-ab"), -1);
  CHECK_EQ(hp_find(&o.req, h, "expect"), -1);
  CHECK(hp_span_ieq(h, o.req.method, "get"));
  CHECK(!hp_span_ieq(h, o.req.method, "ge"));
  CHECK(!hp_span_ieq(h, o.req.method, "gets"));
  CHECK(hp_span_ieq(h, o.req.headers[2].value, "2"));
}

static void test_content_length(void)
{
  hp_meta_t m;
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &m), 0);
  CHECK(!m.has_length);
  CHECK(!m.chunked);
  CHECK_EQ(m.host_hdr, 0);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &m), 0);
  CHECK(m.has_length);
  CHECK_EQ(m.content_length, 5);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\ncontent-length: 0005\r\n\r\n", &m), 0);
  CHECK_EQ(m.content_length, 5);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &m), 0);
  CHECK(m.has_length);
  CHECK_EQ(m.content_length, 0);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", &m), 0);
  CHECK_EQ(m.content_length, 5);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5 ,\t5\r\n\r\n", &m), 0);
  CHECK_EQ(m.content_length, 5);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n"
                   "Content-Length: 7\r\n\r\n",
                   &m),
           0);
  CHECK_EQ(m.content_length, 7);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n", &m), 0);
  CHECK(m.content_length == 9223372036854775807ull);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                   "Content-Length: 6\r\n\r\n",
                   &m),
           400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", &m), 400);
}

static void test_transfer_encoding(void)
{
  hp_meta_t m;
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 0);
  CHECK(m.chunked);
  CHECK(!m.has_length);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n", &m), 0);
  CHECK(m.chunked);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Length: 5\r\n\r\n",
                   &m),
           400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   &m),
           400);
  CHECK_EQ(analyze("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &m), 501);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   &m),
           501);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", &m), 501);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", &m), 501);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   &m),
           400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", &m), 400);
}

static void test_host(void)
{
  hp_meta_t m;
  CHECK_EQ(analyze("GET / HTTP/1.1\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\n\r\n", &m), 0);
  CHECK_EQ(m.host_hdr, -1);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nX: 1\r\nhost:\r\n\r\n", &m), 0);
  CHECK_EQ(m.host_hdr, 1);
}

/* hp_analyze's status for "GET / HTTP/1.1" with the field line "Host:<v>". */
static int host_status(const char *v)
{
  static char buf[512];
  hp_meta_t m;
  int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost:%s\r\n\r\n", v);
  CHECK(n > 0 && (size_t)n < sizeof buf);
  return analyze(buf, &m);
}

static void test_host_valid(void)
{
  static const char *const ok[] = {
      /* reg-name, with and without a port */
      " dev",
      " dev:8080",
      " DEV.example.COM",
      " xn--bcher-kva.example",
      " a-b.c_d~e",
      " %41b",
      " a%2e%2Eb",
      " !$&'()*+;=",
      " localhost:0",
      " dev:65535",
      " dev:00080",
      " h:1",
      /* IPv4address (and dotted names that only look like one) */
      " 127.0.0.1:80",
      " 127.0.0.1",
      " 999.1.1.1",
      " 1.2.3",
      " 01.2.3.4",
      /* IP-literal */
      " [::1]:8080",
      " [fe80::1]",
      " [::]",
      " [::]:80",
      " [1::]",
      " [1:2:3:4:5:6:7:8]",
      " [1:2:3:4:5:6:7::]",
      " [::2:3:4:5:6:7:8]",
      " [1:2:3:4::5:6:7]",
      " [ABCD:ef01::1]",
      " [::ffff:192.0.2.1]",
      " [1:2:3:4:5:6:1.2.3.4]",
      " [::1.2.3.4]",
      " [64:ff9b::255.255.255.255]",
      " [v1.x]",
      " [VF.a:b!$]",
      " [v1a.::]",
      /* an empty port (port = *DIGIT), OWS trimmed, an empty value */
      " dev:",
      " [::1]:",
      "   dev\t",
      "",
      "  \t ",
  };
  static const char *const bad[] = {
      /* whitespace and control bytes inside */
      " a b",
      " a\tb",
      " a \t b",
      " caf\xc3\xa9",
      " \x80",
      /* userinfo, lists, URI delimiters, quoting */
      " user:pw@dev",
      " user@dev",
      " @dev",
      " a, b",
      " a,b",
      " dev,",
      " ,dev",
      " dev/x",
      " dev/",
      " dev?x",
      " dev#x",
      " dev\"",
      " \"dev\"",
      " dev\\x",
      " dev<",
      " dev>",
      " d{e}v",
      " d|v",
      " d^v",
      " d`v",
      " d[v]",
      /* broken pct-encoding */
      " %",
      " a%4",
      " %g1",
      " %1g",
      " a%%41",
      /* ports */
      " dev:80x",
      " dev:x",
      " dev:-1",
      " dev:+80",
      " dev: 80",
      " dev:80:80",
      " dev:65536",
      " dev:99999",
      " dev:100000",
      " dev:000080",
      " a:b:c",
      /* an empty host with a port */
      " :",
      " :80",
      /* IPv6 outside brackets, broken brackets */
      " ::1",
      " fe80::1",
      " [::1",
      " ::1]",
      " []",
      " []:80",
      " [::1]x",
      " [::1]]",
      " [[::1]]",
      " [::1]:80x",
      " [::1]:65536",
      " [::1 ]",
      " [ ::1]",
      /* IPv6 grammar */
      " [1:2:3:4:5:6:7]",
      " [1:2:3:4:5:6:7:8:9]",
      " [1:2:3:4:5:6:7:8::]",
      " [::1:2:3:4:5:6:7:8]",
      " [1::2::3]",
      " [:::]",
      " [:1]",
      " [1:]",
      " [1::2:]",
      " [12345::]",
      " [g::1]",
      " [1.2.3.4]",
      " [::1.2.3]",
      " [::1.2.3.4.5]",
      " [::256.1.1.1]",
      " [::01.2.3.4]",
      " [::1.2.3.4:1]",
      " [1:2:3:4:5:6:7:1.2.3.4]",
      " [::1%25eth0]",
      " [::1%eth0]",
      " [dev]",
      /* IPvFuture */
      " [v.x]",
      " [v1x]",
      " [v1.]",
      " [vg.x]",
      " [v1.a,b]",
      " [v1.a/b]",
  };
  size_t i;
  for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int st = host_status(ok[i]);
    CHECK_EQ(st, 0);
    if (st != 0)
      fprintf(stderr, "  Host:%s\n", ok[i]);
  }
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int st = host_status(bad[i]);
    CHECK_EQ(st, 400);
    if (st != 400)
      fprintf(stderr, "  Host:%s\n", bad[i]);
  }
}

/* Control bytes in Host: the head parser refuses them first, and
 * hp_analyze refuses them too when handed such a head directly. */
static void test_host_control_bytes(void)
{
  static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
  /* ctl: "Host" at 0, then one value byte per offset from 4 on. */
  static const char ctl[] = "Host"
                            "a\0b\x01"
                            "c\x7f"
                            "d\te\rf\ng";
  static const hp_span_t vals[] = {{4, 2}, {5, 3}, {6, 3}, {8, 3}, {10, 3}, {12, 3}, {14, 3}};
  hp_request_t r = {0};
  hp_meta_t m;
  size_t i;
  outcome_t o;
  CHECK_STR(parse_n(nul, sizeof nul - 1, &o), "ERR bad_request @23");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: dev\x01\r\n\r\n"), "ERR bad_request @25");
  CHECK_STR(parse("GET / HTTP/1.1\r\nHost: d\x7f\r\n\r\n"), "ERR bad_request @23");
  r.n_headers = 1;
  r.headers[0].name = (hp_span_t){0, 4};
  for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    r.headers[0].value = vals[i];
    CHECK_EQ(hp_analyze(&r, ctl, &m), 400);
  }
  CHECK_EQ(sizeof ctl, 18);
  r.headers[0].value = (hp_span_t){4, 1}; /* "a" */
  CHECK_EQ(hp_analyze(&r, ctl, &m), 0);
}

static void test_host_value_and_version(void)
{
  hp_meta_t m;
  /* HTTP/1.0: Host is optional, but when sent it must be valid. */
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nHost: user:pw@dev\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nHost: a,b\r\n\r\n", &m), 400);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nHost: dev:8080\r\n\r\n", &m), 0);
  CHECK_EQ(m.host_hdr, 0);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nX: a b\r\n\r\n", &m), 0);
  CHECK_EQ(m.host_hdr, -1);
  /* An invalid Host is refused wherever it stands among the fields, and a
   * valid one alongside a repeated invalid one does not help. */
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nContent-Length: 1\r\nHost: a/b\r\n"
                   "Connection: close\r\n\r\n",
                   &m),
           400);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nHost: a b\r\n\r\n", &m), 400);
  /* Other fields may hold what Host may not. */
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: dev\r\nX-Host: a, b@c\r\n\r\n", &m), 0);
  CHECK_EQ(m.host_hdr, 0);
  CHECK_EQ(analyze("GET http://dev:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", &m), 0);
}

static void test_connection(void)
{
  hp_meta_t m;
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &m), 0);
  CHECK(m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &m), 0);
  CHECK(!m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", &m), 0);
  CHECK(!m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade,CLOSE\r\n\r\n", &m), 0);
  CHECK(!m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n"
                   "Connection: close\r\n\r\n",
                   &m),
           0);
  CHECK(!m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, xclose\r\n\r\n", &m), 0);
  CHECK(m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", &m), 0);
  CHECK(m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\n\r\n", &m), 0);
  CHECK(!m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &m), 0);
  CHECK(m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nConnection: foo , Keep-Alive\r\n\r\n", &m), 0);
  CHECK(m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &m), 0);
  CHECK(!m.keep_alive);
  CHECK_EQ(analyze("GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", &m), 0);
  CHECK(!m.keep_alive);
}

static void test_expect(void)
{
  hp_meta_t m;
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_NONE);
  CHECK_EQ(m.expect_hdr, -1);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_CONTINUE);
  CHECK_EQ(m.expect_hdr, 1);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nexpect:  100-Continue \r\nHost: a\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_CONTINUE);
  CHECK_EQ(m.expect_hdr, 0);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_OTHER);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_OTHER);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                   "Expect: 100-continue\r\n\r\n",
                   &m),
           0);
  CHECK_EQ(m.expect, HP_EXPECT_OTHER);
  CHECK_EQ(m.expect_hdr, 1);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_OTHER);
  CHECK_EQ(analyze("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_OTHER);
  CHECK_EQ(analyze("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &m), 0);
  CHECK_EQ(m.expect, HP_EXPECT_NONE);
  CHECK_EQ(m.expect_hdr, 0);
  CHECK(hp_span_ieq(g_head, g_req.headers[m.expect_hdr].value, "100-continue"));
}

/* ---- hp_pct_decode ---------------------------------------------------- */

static int g_pct_len;

/* Decodes src into a heap block of exactly cap bytes; returns the text. */
static const char *pct(const char *src, size_t cap)
{
  static char copy[256];
  char *out = malloc(cap ? cap : 1);
  g_pct_len = hp_pct_decode(src, strlen(src), cap ? out : NULL, cap);
  if (g_pct_len >= 0) {
    memcpy(copy, out, (size_t)g_pct_len + 1);
  } else {
    strcpy(copy, "(invalid)");
  }
  free(out);
  return copy;
}

static void test_pct_decode(void)
{
  CHECK_STR(pct("abc", 4), "abc");
  CHECK_EQ(g_pct_len, 3);
  CHECK_STR(pct("a%20b", 16), "a b");
  CHECK_EQ(g_pct_len, 3);
  CHECK_STR(pct("%41%4a%4A%7e", 16), "AJJ~");
  CHECK_STR(pct("%e2%82%AC", 16), "\xe2\x82\xac");
  CHECK_EQ(g_pct_len, 3);
  CHECK_STR(pct("a+b", 16), "a+b");
  CHECK_STR(pct("", 1), "");
  CHECK_EQ(g_pct_len, 0);
  CHECK_STR(pct("%", 16), "(invalid)");
  CHECK_STR(pct("a%2", 16), "(invalid)");
  CHECK_STR(pct("%zz", 16), "(invalid)");
  CHECK_STR(pct("%2g", 16), "(invalid)");
  CHECK_STR(pct("%g2", 16), "(invalid)");
  CHECK_STR(pct("%%41", 16), "(invalid)");
  CHECK_STR(pct("a%00b", 16), "(invalid)");
  CHECK_STR(pct("%2f%2F", 16), "//");
  /* Output capacity: the decoded text plus its NUL must fit. */
  CHECK_STR(pct("abcd", 5), "abcd");
  CHECK_STR(pct("abcd", 4), "(invalid)");
  CHECK_STR(pct("a%41", 3), "aA");
  CHECK_STR(pct("a%41", 2), "(invalid)");
  CHECK_STR(pct("", 0), "(invalid)");
  /* Only len bytes are read. */
  CHECK_EQ(hp_pct_decode("ab%41", 2, g_other, sizeof g_other), 2);
  CHECK_EQ(hp_pct_decode("ab%41", 4, g_other, sizeof g_other), -1);
}

int main(void)
{
  RUN(test_basic_methods);
  RUN(test_header_values);
  RUN(test_leading_empty_lines);
  RUN(test_incomplete);
  RUN(test_pipelined);
  RUN(test_bare_cr);
  RUN(test_bare_lf);
  RUN(test_obs_fold_and_names);
  RUN(test_control_bytes);
  RUN(test_request_line_shape);
  RUN(test_version);
  RUN(test_method_limit);
  RUN(test_target_limit);
  RUN(test_header_count_limit);
  RUN(test_head_size_limit);
  RUN(test_error_names);
  RUN(test_find);
  RUN(test_content_length);
  RUN(test_transfer_encoding);
  RUN(test_host);
  RUN(test_host_valid);
  RUN(test_host_control_bytes);
  RUN(test_host_value_and_version);
  RUN(test_connection);
  RUN(test_expect);
  RUN(test_pct_decode);
  return UNIT_END();
}
