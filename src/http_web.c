/* http_web.c: what browsers need: the answer to a CORS preflight the policy accepted, and the upload page at GET /. */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "http_response.h"
#include "policy.h"
#if POSTERN_PAGE
#include "page.h"
#endif

/* Appends "Name: value\r\n" when value is not empty. */
static void web_line(wbuf_t *b, const char *name, const char *value)
{
  if (value[0] != '\0') {
    wb_str(b, name);
    wb_lit(b, ": ");
    wb_str(b, value);
    wb_lit(b, "\r\n");
  }
}

/*
 * OPTIONS, accepted: 204 with what the policy allows. Without an
 * allow_origin the answer has no Access-Control-* field at all, and the
 * browser refuses the request it asked about.
 */
void conn_send_preflight(conn_t *c, const policy_decision_t *d)
{
  char extra[2 * POSTERN_CORS_LIST_MAX + 160];
  wbuf_t b;
  wb_init(&b, extra, sizeof extra - 1);
  memcpy(c->origin, d->allow_origin, sizeof c->origin);
  if (c->origin[0] != '\0') {
    web_line(&b, "Access-Control-Allow-Methods", d->allow_methods);
    web_line(&b, "Access-Control-Allow-Headers", d->allow_headers);
    if (d->max_age >= 0) {
      wb_lit(&b, "Access-Control-Max-Age: ");
      wb_u64(&b, (uint64_t)d->max_age);
      wb_lit(&b, "\r\n");
    }
    wb_lit(&b, "Vary: Access-Control-Request-Method, Access-Control-Request-Headers\r\n");
  }
  extra[b.len] = '\0'; /* the fields are bounded: they always fit */
  http_head_t h = {.status = 204, .extra = extra};
  if (conn_send_head(c, &h, false)) {
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}

#if POSTERN_PAGE
/* A q-value of zero (RFC 9110 section 12.4.2): "0", "0.", "0.0" up to "0.000". */
static bool web_q_zero(const char *s, size_t n)
{
  if (n == 0 || s[0] != '0' || n > 5 || (n > 1 && s[1] != '.')) {
    return false;
  }
  for (size_t i = 2; i < n; i++) {
    if (s[i] != '0') {
      return false;
    }
  }
  return true;
}

static bool web_ieq(const char *s, size_t n, const char *lit)
{
  size_t k = strlen(lit);
  if (n != k) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
    if (ch != lit[i]) {
      return false;
    }
  }
  return true;
}

/*
 * Whether an Accept-Encoding value (RFC 9110 section 12.5.3) takes gzip:
 * gzip or x-gzip, else "*", with a q-value above zero. Elements are
 * coding *(OWS ";" OWS name "=" value); the first field only.
 */
static bool web_accepts_gzip(const char *s, size_t n)
{
  int gzip = -1, any = -1; /* -1 not named, 0 refused, 1 accepted */
  size_t i = 0;
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) {
      i++;
    }
    size_t c0 = i;
    while (i < n && s[i] != ',' && s[i] != ';' && s[i] != ' ' && s[i] != '\t') {
      i++;
    }
    size_t c1 = i;
    bool zero = false;
    while (i < n && s[i] != ',') { /* parameters: only q matters */
      while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ';')) {
        i++;
      }
      size_t p0 = i;
      while (i < n && s[i] != ',' && s[i] != ';' && s[i] != ' ' && s[i] != '\t') {
        i++;
      }
      if (i - p0 >= 2 && (s[p0] == 'q' || s[p0] == 'Q') && s[p0 + 1] == '=') {
        zero = web_q_zero(s + p0 + 2, i - p0 - 2);
      }
    }
    if (web_ieq(s + c0, c1 - c0, "gzip") || web_ieq(s + c0, c1 - c0, "x-gzip")) {
      gzip = !zero;
    } else if (web_ieq(s + c0, c1 - c0, "*")) {
      any = !zero;
    }
  }
  return gzip >= 0 ? gzip == 1 : any == 1;
}

/*
 * GET or HEAD /: the page, as it is in flash: gzip-compressed. A request
 * without Accept-Encoding takes any coding (RFC 9110 section 12.5.3); one
 * whose Accept-Encoding excludes gzip gets 406, since the firmware holds no
 * uncompressed copy. Streamed like a download as the send buffer drains.
 */
void conn_start_page(conn_t *c, const char *head)
{
  int ae = hp_find(&c->req, head, "accept-encoding");
  if (ae >= 0 && !web_accepts_gzip(head + c->req.headers[ae].value.off, c->req.headers[ae].value.len)) {
    conn_respond_error(c, 406, NULL, "the page is stored gzip-compressed only: send Accept-Encoding: gzip",
                       !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  http_head_t h = {.status = 200,
                   .content_type = "text/html; charset=utf-8",
                   .content_length = page_gz_len,
                   .extra = "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\nCache-Control: no-cache\r\n"
                            "Content-Security-Policy: frame-ancestors 'none'\r\n"};
  if (!conn_send_head(c, &h, true)) {
    return;
  }
  c->send_mem = page_gz;
  c->list_next = 0;
  c->send_left = c->head_only ? 0 : page_gz_len;
  c->state = CONN_SEND_FILE;
  conn_pump(c);
}
#endif /* POSTERN_PAGE */
