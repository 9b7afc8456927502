/* http_request.c: a request head, parsed from the received pbufs, routed, and decided by the policy before one body byte is read. */
#include "http_conn_int.h"

#include "bench.h"

#include <stdbool.h>
#include <string.h>

#include "http_response.h"
#include "lwip/ip_addr.h"
#include "policy.h"
#include "text.h"
#if POSTERN_TLS
#include "tls.h"
#endif

static char conn_path[POSTERN_TARGET_MAX + 1]; /* the decoded path of the head being decided */
/* The head's fields as the policy sees them: one decision at a time (http_form.c's second one too). */
policy_str_t conn_policy_names[POSTERN_MAX_HEADERS], conn_policy_values[POSTERN_MAX_HEADERS];
policy_decision_t conn_decision;

/* Feeds unparsed bytes of rx to the parser. Returns the parser's result. */
int conn_feed_head(conn_t *c)
{
  int rc = HP_MORE;
  u16_t off = c->fed;
  struct pbuf *q = c->rx;
  while (q != NULL && off >= q->len) {
    off = (u16_t)(off - q->len);
    q = q->next;
  }
  for (; q != NULL && rc == HP_MORE; q = q->next, off = 0) {
    size_t used = 0;
    rc = hp_feed(&c->parser, (const char *)q->payload + off, (size_t)(q->len - off), &used);
    c->fed = (u16_t)(c->fed + used);
  }
  return rc;
}

typedef enum conn_route {
  ROUTE_NONE,
  ROUTE_FILE,
  ROUTE_LIST,
  ROUTE_STATUS,
  ROUTE_POLICY,
  ROUTE_CONFIG,
  ROUTE_PAGE
} conn_route_t;

/* Case-insensitive prefix test against a lower-case literal (URI schemes, RFC 3986 3.1). */
static bool conn_has_iprefix_n(const char *t, size_t n, const char *lit, size_t k)
{
  if (n < k) {
    return false;
  }
  for (size_t i = 0; i < k; i++) {
    char ch = t[i];
    if ((ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch) != lit[i]) {
      return false;
    }
  }
  return true;
}
#define conn_has_iprefix(t, n, lit) conn_has_iprefix_n((t), (n), (lit), sizeof(lit) - 1)

/*
 * Splits the target into the decoded path (conn_path) and the raw query.
 * Accepts origin-form and absolute-form (RFC 9112 3.2). Returns 0 or a status.
 */
static int conn_parse_target(const char *t, size_t n, policy_str_t *query)
{
  bool http = conn_has_iprefix(t, n, "http://");
  if (http || conn_has_iprefix(t, n, "https://")) {
    size_t skip = http ? 7 : 8;
    const char *slash = memchr(t + skip, '/', n - skip);
    if (slash == NULL) {
      t = "/", n = 1;
    } else {
      n -= (size_t)(slash - t);
      t = slash;
    }
  }
  if (n == 0 || t[0] != '/') {
    return 400; /* asterisk-form and authority-form are not served here */
  }
  const char *q = memchr(t, '?', n);
  size_t path_len = q != NULL ? (size_t)(q - t) : n;
  *query = q != NULL ? (policy_str_t){q + 1, n - path_len - 1} : (policy_str_t){NULL, 0};
  if (hp_pct_decode(t, path_len, conn_path, sizeof conn_path) < 0) {
    return 400;
  }
  return 0;
}

static conn_route_t conn_route(conn_t *c, int *status)
{
  *status = 0;
  c->name[0] = '\0';
  if (strncmp(conn_path, "/files/", 7) == 0 && conn_path[7] != '\0') { /* the common case first */
    const char *name = conn_path + 7;
    size_t len = strlen(name);
    if (!text_name_ok(name, len)) {
      *status = 400;
      return ROUTE_NONE;
    }
    memcpy(c->name, name, len + 1);
    return ROUTE_FILE;
  }
  if (strcmp(conn_path, "/files") == 0 || strcmp(conn_path, "/files/") == 0) {
    return ROUTE_LIST;
  }
  if (POSTERN_PAGE && strcmp(conn_path, "/") == 0) {
    return ROUTE_PAGE;
  }
  if (strcmp(conn_path, "/_status") == 0) {
    return ROUTE_STATUS;
  }
  if (strcmp(conn_path, "/_policy") == 0) {
    return ROUTE_POLICY;
  }
#if POSTERN_CONFIG_ROUTE
  if (strcmp(conn_path, "/_config") == 0) {
    return ROUTE_CONFIG;
  }
#endif
  *status = 404;
  return ROUTE_NONE;
}

_Static_assert(POLICY_PEER_MAX >= IPADDR_STRLEN_MAX + 8, "POLICY_PEER_MAX holds [, an address, ]:, five digits");

/* The peer as the policy sees it: "10.0.2.2:54321", or "[fec0::2]:54321" over IPv6. */
size_t conn_peer(const void *conn, char *out, size_t cap)
{
  const conn_t *c = (const conn_t *)conn;
  const ip_addr_t *ip = altcp_get_ip(c->pcb, 0);
  wbuf_t b;
  wb_init(&b, out, cap - 1);
  char tmp[IPADDR_STRLEN_MAX];
  bool v6 = ip != NULL && IP_IS_V6(ip);
  wb_str(&b, v6 ? "[" : "");
  wb_str(&b, ip != NULL ? text_lower(ipaddr_ntoa_r(ip, tmp, sizeof tmp)) : "?");
  wb_str(&b, v6 ? "]:" : ":");
  wb_u64(&b, altcp_get_port(c->pcb, 0));
  out[b.len] = '\0';
  return b.len;
}

#if POSTERN_TLS
/* A C string as a policy string; NULL stays absent (nil). */
static policy_str_t conn_str(const char *s)
{
  return s != NULL ? (policy_str_t){s, strlen(s)} : (policy_str_t){NULL, 0};
}
#endif

/* Methods are case-sensitive (RFC 9110 9.1). */
static bool conn_method_is(const char *head, const hp_request_t *r, const char *method, size_t n)
{
  return r->method.len == n && memcmp(head + r->method.off, method, n) == 0;
}
#define METHOD_IS(head, r, lit) conn_method_is((head), (r), (lit), sizeof(lit) - 1)

/* What identifies a request for its retry: FNV-1a over the method and the raw target. */
static uint32_t conn_request_key(const char *head, const hp_request_t *r)
{
  uint32_t h = 2166136261u;
  const char *p = head + r->method.off;
  size_t n = (size_t)(r->target.off + r->target.len - r->method.off); /* "METHOD SP target" */
  for (size_t i = 0; i < n; i++) {
    h = (h ^ (uint8_t)p[i]) * 16777619u;
  }
  return h;
}

/*
 * A complete head is in `head` (in place or copied). Everything the body
 * stage needs is copied into c; the head is dropped by the caller.
 */
void conn_on_head(conn_t *c, const char *head)
{
  hp_request_t *r = &c->req;
  size_t rl = (size_t)(r->target.off + r->target.len - r->method.off) + 9;
  if (rl >= sizeof c->reqline) {
    rl = sizeof c->reqline - 1;
  }
  memcpy(c->reqline, head + r->method.off, rl);
  c->reqline[rl] = '\0';
  c->body_bytes = 0;
  c->head_only = METHOD_IS(head, r, "HEAD");
  c->to_policy = false;
  c->to_config = false;
  c->form = NULL;
  c->list_route = false;
  c->cond_held = false;
  c->origin[0] = '\0';
  c->send_mem = NULL;

  hp_meta_t m;
  int st = hp_analyze(r, head, &m);
  c->keep_alive = m.keep_alive;
  if (st != 0) {
    conn_refuse(c, st,
                st == 501 ? "only the chunked transfer coding is supported" : "malformed framing headers or Host");
    return;
  }
  c->has_length = m.has_length;
  c->length = m.content_length;
  c->chunked = m.chunked;
  bool has_body = m.chunked || (m.has_length && m.content_length > 0);
  /* An expectation concerns a body: on a request without one it is ignored,
   * and the request gets its precise answer (a 401 keeps its challenge). */
  uint8_t expect = has_body ? m.expect : HP_EXPECT_NONE;

  if (c->retry_due) {
    /* After a retryable 417 the client may send the refused body anyway (its
     * Expect timeout ran out): those bytes must never run as a request. Only
     * the retry itself, without the expectation, is taken. */
    c->retry_due = false;
    if (conn_request_key(head, r) != c->retry_key || expect != HP_EXPECT_NONE) {
      c->keep_alive = false;
      conn_refuse(c, 400, "after a retryable 417 only its retry, without Expect, may follow");
      return;
    }
  }

  policy_str_t query;
  if (conn_parse_target(head + r->target.off, r->target.len, &query) != 0) {
    conn_refuse(c, 400, "bad request target");
    return;
  }
  int route_status;
  conn_route_t route = conn_route(c, &route_status);
  bool is_put = METHOD_IS(head, r, "PUT");
  bool is_get = METHOD_IS(head, r, "GET");
  bool is_delete = METHOD_IS(head, r, "DELETE");
  /* POST /files/: a form upload, its file's name in the body (http_form.c). */
  bool is_form = POSTERN_FORM_UPLOADS > 0 && route == ROUTE_LIST && METHOD_IS(head, r, "POST");
  bool is_upload = is_put || is_form;
  bool is_options = METHOD_IS(head, r, "OPTIONS"); /* a CORS preflight, on any path */

  if (route == ROUTE_NONE && !is_options) {
    conn_respond_error(c, route_status, route_status == 400 ? "bad_name" : NULL,
                       route_status == 400 ? "file names: 1 to 64 bytes, no '/', '..', leading '.' or control bytes"
                                           : "no such route",
                       has_body, has_body ? AFTER_LINGER : AFTER_NEXT, NULL);
    return;
  }
  bool allowed = is_options || (route == ROUTE_FILE ? (is_put || is_get || c->head_only || is_delete)
                                : route == ROUTE_POLICY || route == ROUTE_CONFIG ? (is_put || is_get || c->head_only)
                                                                                 : (is_get || c->head_only || is_form));
  if (!allowed) {
    c->to_policy = route == ROUTE_POLICY || route == ROUTE_CONFIG; /* for the Allow header */
    c->list_route = POSTERN_FORM_UPLOADS > 0 && route == ROUTE_LIST;
    conn_respond_error(c, 405, NULL, "method not allowed here", has_body, has_body ? AFTER_LINGER : AFTER_NEXT, NULL);
    return;
  }
  if (expect == HP_EXPECT_OTHER) {
    /* RFC 9110 10.1.1: an expectation the server cannot meet. */
    conn_refuse(c, 417, "only the 100-continue expectation is supported");
    return;
  }
  if (is_form && !conn_form_wanted(c, head)) {
    conn_refuse(c, 415, "POST /files/ takes multipart/form-data (a form upload); PUT /files/NAME takes any body");
    return;
  }
  if (is_upload && !m.has_length && !m.chunked) {
    conn_refuse(c, 411, "an upload needs Content-Length or chunked");
    return;
  }
  if (!is_upload && has_body) {
    conn_refuse(c, 400, "this request takes no body");
    return;
  }
  c->expect = is_upload && expect == HP_EXPECT_CONTINUE;
  c->want_digest = false;
  int dh = hp_find(r, head, "content-digest");
  if (dh >= 0 && is_upload) {
    int d = digest_parse_content_digest(head + r->headers[dh].value.off, r->headers[dh].value.len, c->digest);
    if (d < 0) {
      conn_refuse(c, 400, "malformed Content-Digest");
      return;
    }
    c->want_digest = d == 1;
  }

  /* The request as the policy sees it. */
  policy_str_t *names = conn_policy_names, *values = conn_policy_values;
  for (int i = 0; i < r->n_headers; i++) {
    names[i] = (policy_str_t){head + r->headers[i].name.off, r->headers[i].name.len};
    values[i] = (policy_str_t){head + r->headers[i].value.off, r->headers[i].value.len};
  }
  const policy_tls_t *tls = NULL;
#if POSTERN_TLS
  tls_facts_t facts;
  policy_tls_t tls_view;
  if (tls_get_facts(c->pcb, &facts)) {
    tls_view.version = conn_str(facts.version);
    tls_view.cipher = conn_str(facts.cipher);
    tls_view.subject = conn_str(facts.subject);
    tls_view.fingerprint = conn_str(facts.fingerprint);
    tls = &tls_view;
  }
#endif
  policy_request_t pr = {
      .method = {head + r->method.off, r->method.len},
      .path = {conn_path, strlen(conn_path)},
      .query = query,
      .version = {r->version_minor ? "HTTP/1.1" : "HTTP/1.0", 8},
      .name = c->name[0] ? (policy_str_t){c->name, strlen(c->name)} : (policy_str_t){NULL, 0},
      .header_names = names,
      .header_values = values,
      .n_headers = r->n_headers,
      .has_length = m.has_length && !is_form, /* a form's file has no announced length */
      .length = m.content_length,
      .expect = expect != HP_EXPECT_NONE
                    ? (policy_str_t){head + r->headers[m.expect_hdr].value.off, r->headers[m.expect_hdr].value.len}
                    : (policy_str_t){NULL, 0},
      .peer_of = conn_peer, /* formatted only if the script reads req.peer */
      .peer_ctx = c,
      .tls = tls,
  };
  policy_decision_t *d = &conn_decision;
  BENCH_POLICY(0);
  policy_decide(&pr, d);
  BENCH_POLICY(1);
  if (!is_options) { /* every answer to this request may be read by the origin the policy names */
    memcpy(c->origin, d->allow_origin, sizeof c->origin);
  }

  if (d->status != 100) {
    /* Refused: no 100 is ever sent; body bytes in flight are never parsed. */
    const char *key = d->policy_error ? "policy_error" : NULL;
    const char *challenge =
        d->status == 401 ? (d->www_authenticate[0] ? d->www_authenticate : "Bearer realm=\"postern\"") : NULL;
    if (d->status == 417 && d->retryable && c->expect && c->keep_alive) {
      /* The client sent no body: the connection stays open for its retry. */
      c->retry_due = true;
      c->retry_key = conn_request_key(head, r);
      conn_respond_error(c, 417, key, d->message, false, AFTER_NEXT, NULL);
      return;
    }
    conn_respond_error(c, d->status, key, d->message, has_body, has_body ? AFTER_LINGER : AFTER_NEXT, challenge);
    return;
  }
  if (d->name[0] != '\0' && route == ROUTE_FILE) {
    memcpy(c->name, d->name, sizeof c->name);
  }
  if (is_options) {
    conn_send_preflight(c, d);
    return;
  }
  if (route == ROUTE_FILE && (is_put || is_delete) && !conn_preconditions(c, head, is_delete)) {
    return; /* 412 before storage or a 100: no body byte is read */
  }
  /* digest = false stores a file upload without its SHA-256; a client's Content-Digest is checked still. */
  c->hash = !d->no_digest || c->want_digest || route != ROUTE_FILE;
  switch (route) {
  case ROUTE_FILE:
    if (is_put) {
      c->state = CONN_OPEN; /* conn_process opens it, once the head is consumed */
    } else if (is_delete) {
      c->state = CONN_REMOVE;
    } else {
      conn_start_download(c, head);
    }
    break;
  case ROUTE_LIST:
    if (is_form) {
      conn_form_begin(c, head, conn_path, query);
      break;
    }
    conn_start_list(c);
    break;
  case ROUTE_STATUS:
    conn_send_status(c);
    break;
  case ROUTE_PAGE:
#if POSTERN_PAGE
    conn_start_page(c, head);
#endif
    break;
  case ROUTE_POLICY:
    if (is_put) {
      c->to_policy = true;
      c->state = CONN_OPEN; /* collected into the policy's buffer, checked at the commit */
    } else {
      conn_send_policy(c, query.p != NULL && query.n == 6 && memcmp(query.p, "source", 6) == 0);
    }
    break;
  case ROUTE_CONFIG:
#if POSTERN_CONFIG_ROUTE
    if (is_put) {
      c->to_policy = c->to_config = true; /* collected like a policy, checked at the commit */
      c->state = CONN_OPEN;
    } else {
      conn_send_config(c);
    }
#endif
    break;
  case ROUTE_NONE:
    break;
  }
}
