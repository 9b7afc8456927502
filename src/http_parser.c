/* http_parser.c: incremental, strict HTTP/1.1 request-head parser (RFC 9112) and helpers. */
#include "http_parser.h"

#include <limits.h>
#include <string.h>

#include "text.h"

#if POSTERN_MAX_HEADERS > 127
#error "POSTERN_MAX_HEADERS must be at most 127 (hp_meta_t keeps int8_t indices)"
#endif

/* Parser states, one per position in the head grammar. */
enum {
  S_START,    /* before the request line (or an allowed empty line) */
  S_START_LF, /* CR of a leading empty line seen */
  S_METHOD,   /* inside the method token */
  S_TARGET0,  /* first byte of the target expected */
  S_TARGET,   /* inside the target */
  S_V_H,      /* "HTTP/" literal, one state per byte */
  S_V_T1,
  S_V_T2,
  S_V_P,
  S_V_SLASH,
  S_V_MAJOR,  /* major digit expected */
  S_V_DOT,    /* '.' expected */
  S_V_MINOR,  /* minor digit expected */
  S_RL_CR,    /* CR ending the request line expected */
  S_RL_LF,    /* LF ending the request line expected */
  S_LINE,     /* start of a field line or of the final empty line */
  S_NAME,     /* inside a field name */
  S_OWS,      /* leading OWS of a field value */
  S_VALUE,    /* inside a field value */
  S_FIELD_LF, /* LF ending a field line expected */
  S_END_LF,   /* LF of the final empty line expected */
  S_FINISHED  /* done or failed: result is sticky */
};

/* Empty lines (CRLF) accepted before the request line (RFC 9112 2.2). */
#define HP_LEADING_MAX 2

/* VCHAR or obs-text: a visible field-value byte. */
static bool is_vis(unsigned char c)
{
  return (text_class[c] & TEXT_VIS) != 0;
}

static bool is_digit(unsigned char c)
{
  return c >= '0' && c <= '9';
}

static unsigned char to_lower(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/** Prepares p to parse a new head into req (which is cleared). */
void hp_init(hp_parser_t *p, hp_request_t *req)
{
  *req = (hp_request_t){0};
  *p = (hp_parser_t){0};
  p->req = req;
  p->state = S_START;
  p->result = HP_MORE;
}

/* Length of the token from p->tok up to the current byte. */
static uint16_t tok_len(const hp_parser_t *p)
{
  return (uint16_t)(p->pos - p->tok);
}

/* Consumes one byte c at offset p->pos; returns HP_MORE, HP_DONE or an error. */
static int step(hp_parser_t *p, unsigned char c)
{
  hp_request_t *r = p->req;

  switch (p->state) {
  case S_START:
    if (c == '\r') {
      if (p->leading >= HP_LEADING_MAX)
        return HP_ERR_SYNTAX;
      p->state = S_START_LF;
      return HP_MORE;
    }
    if (!text_tchar(c))
      return HP_ERR_SYNTAX;
    p->tok = p->pos;
    p->state = S_METHOD;
    return HP_MORE;

  case S_START_LF:
    if (c != '\n')
      return HP_ERR_SYNTAX;
    p->leading++;
    p->state = S_START;
    return HP_MORE;

  case S_METHOD:
    if (c == ' ') {
      r->method = (hp_span_t){p->tok, tok_len(p)};
      p->state = S_TARGET0;
      return HP_MORE;
    }
    if (!text_tchar(c))
      return HP_ERR_SYNTAX;
    if (tok_len(p) >= POSTERN_METHOD_MAX)
      return HP_ERR_METHOD;
    return HP_MORE;

  case S_TARGET0:
    if (c < 0x21 || c > 0x7E)
      return HP_ERR_SYNTAX;
    p->tok = p->pos;
    p->state = S_TARGET;
    return HP_MORE;

  case S_TARGET:
    if (c == ' ') {
      r->target = (hp_span_t){p->tok, tok_len(p)};
      p->state = S_V_H;
      return HP_MORE;
    }
    if (c < 0x21 || c > 0x7E)
      return HP_ERR_SYNTAX;
    if (tok_len(p) >= POSTERN_TARGET_MAX)
      return HP_ERR_TARGET_TOO_LONG;
    return HP_MORE;

  case S_V_H:
  case S_V_T1:
  case S_V_T2:
  case S_V_P:
  case S_V_SLASH: {
    static const char lit[] = "HTTP/";
    if (c != (unsigned char)lit[p->state - S_V_H])
      return HP_ERR_SYNTAX;
    p->state++;
    return HP_MORE;
  }

  case S_V_MAJOR:
    if (!is_digit(c))
      return HP_ERR_SYNTAX;
    p->major = (uint8_t)(c - '0');
    p->state = S_V_DOT;
    return HP_MORE;

  case S_V_DOT:
    if (c != '.')
      return HP_ERR_SYNTAX;
    p->state = S_V_MINOR;
    return HP_MORE;

  case S_V_MINOR:
    if (!is_digit(c))
      return HP_ERR_SYNTAX;
    r->version_minor = (uint8_t)(c - '0');
    p->state = S_RL_CR;
    return HP_MORE;

  case S_RL_CR:
    if (c != '\r')
      return HP_ERR_SYNTAX;
    p->state = S_RL_LF;
    return HP_MORE;

  case S_RL_LF:
    if (c != '\n')
      return HP_ERR_SYNTAX;
    /* The line is well-formed; only now judge the version. */
    if (p->major != 1 || r->version_minor > 1)
      return HP_ERR_VERSION;
    p->state = S_LINE;
    return HP_MORE;

  case S_LINE:
    if (c == '\r') {
      p->state = S_END_LF;
      return HP_MORE;
    }
    if (!text_tchar(c))
      return HP_ERR_SYNTAX; /* incl. obs-fold, empty name */
    if (r->n_headers >= POSTERN_MAX_HEADERS)
      return HP_ERR_TOO_MANY_HEADERS;
    p->tok = p->pos;
    p->state = S_NAME;
    return HP_MORE;

  case S_NAME:
    if (c == ':') {
      r->headers[r->n_headers].name = (hp_span_t){p->tok, tok_len(p)};
      p->state = S_OWS;
      return HP_MORE;
    }
    if (!text_tchar(c))
      return HP_ERR_SYNTAX; /* incl. space before ':' */
    return HP_MORE;

  case S_OWS:
    if (c == ' ' || c == '\t')
      return HP_MORE;
    if (c == '\r') {
      r->headers[r->n_headers].value = (hp_span_t){p->pos, 0};
      p->state = S_FIELD_LF;
      return HP_MORE;
    }
    if (!is_vis(c))
      return HP_ERR_SYNTAX;
    p->tok = p->pos;
    p->vend = (uint16_t)(p->pos + 1u);
    p->state = S_VALUE;
    return HP_MORE;

  case S_VALUE:
    if (c == ' ' || c == '\t')
      return HP_MORE;
    if (c == '\r') {
      r->headers[r->n_headers].value = (hp_span_t){p->tok, (uint16_t)(p->vend - p->tok)};
      p->state = S_FIELD_LF;
      return HP_MORE;
    }
    if (!is_vis(c))
      return HP_ERR_SYNTAX;
    p->vend = (uint16_t)(p->pos + 1u);
    return HP_MORE;

  case S_FIELD_LF:
    if (c != '\n')
      return HP_ERR_SYNTAX;
    r->n_headers++;
    p->state = S_LINE;
    return HP_MORE;

  case S_END_LF:
    if (c != '\n')
      return HP_ERR_SYNTAX;
    r->head_len = (uint16_t)(p->pos + 1u);
    return HP_DONE;

  default:
    return HP_ERR_SYNTAX;
  }
}

/* Room left before the head's limit. */
static size_t head_room(const hp_parser_t *p)
{
  return POSTERN_HEAD_MAX > p->pos ? (size_t)(POSTERN_HEAD_MAX - p->pos) : 0;
}

/* Length of the run of bytes of class cls at d[0..n). */
static size_t class_run(const unsigned char *d, size_t n, unsigned cls)
{
  size_t k = 0;
  while (k < n && (text_class[d[k]] & cls) != 0) {
    k++;
  }
  return k;
}

/* A whole field line ("name: value" CRLF) at d[0..n), well-formed and within
 * the limits: stored, and its length returned. 0 otherwise, and step() takes
 * the bytes one by one (it judges what is wrong, or waits for the rest). */
static size_t field_line(hp_parser_t *p, const unsigned char *d, size_t n)
{
  hp_request_t *r = p->req;
  if (r->n_headers >= POSTERN_MAX_HEADERS) {
    return 0;
  }
  size_t room = head_room(p);
  n = n < room ? n : room;
  size_t k = class_run(d, n, TEXT_TCHAR), name_len = k;
  if (k == 0 || k >= n || d[k] != ':') {
    return 0;
  }
  for (k++; k < n && (d[k] == ' ' || d[k] == '\t'); k++) {
  }
  size_t v0 = k, v1 = k; /* the value, without trailing OWS */
  for (; k < n; k++) {
    if ((text_class[d[k]] & TEXT_VIS) != 0) {
      v1 = k + 1;
    } else if (d[k] != ' ' && d[k] != '\t') {
      break;
    }
  }
  if (k + 1 >= n || d[k] != '\r' || d[k + 1] != '\n') {
    return 0;
  }
  r->headers[r->n_headers].name = (hp_span_t){p->pos, (uint16_t)name_len};
  r->headers[r->n_headers].value = (hp_span_t){(uint16_t)(p->pos + v0), (uint16_t)(v1 - v0)};
  r->n_headers++;
  return k + 2;
}

/* "HTTP/1.0" or "HTTP/1.1" and CRLF ending the request line, all at d[0..n): 10, else 0 (step() decides). */
static size_t version_line_end(hp_parser_t *p, const unsigned char *d, size_t n)
{
  if (n < 10 || head_room(p) < 10 || memcmp(d, "HTTP/1.", 7) != 0 || (d[7] != '0' && d[7] != '1') || d[8] != '\r' ||
      d[9] != '\n') {
    return 0;
  }
  p->major = 1;
  p->req->version_minor = (uint8_t)(d[7] - '0');
  return 10;
}

/*
 * What the current state takes of the n bytes at d at once, without step():
 * a whole field line, the request line's version, or a run of method,
 * target, name or value bytes. Never past the head's, the method's or the
 * target's limit: the byte that meets one goes through step(), which judges
 * it. Updates p; returns the bytes taken (0: step() takes the next one).
 */
static size_t take_run(hp_parser_t *p, const unsigned char *d, size_t n)
{
  size_t k, limit = head_room(p);
  switch (p->state) {
  case S_LINE:
    k = field_line(p, d, n);
    break; /* the state stays S_LINE */
  case S_V_H:
    k = version_line_end(p, d, n);
    if (k > 0) {
      p->state = S_LINE;
    }
    break;
  case S_METHOD:
  case S_TARGET: {
    size_t max = p->state == S_METHOD ? POSTERN_METHOD_MAX : POSTERN_TARGET_MAX;
    size_t room = (size_t)p->tok + max > p->pos ? (size_t)p->tok + max - p->pos : 0;
    limit = room < limit ? room : limit;
    k = class_run(d, n < limit ? n : limit, p->state == S_METHOD ? TEXT_TCHAR : TEXT_VCHAR);
    break;
  }
  case S_NAME:
    k = class_run(d, n < limit ? n : limit, TEXT_TCHAR);
    break;
  case S_VALUE:
    k = class_run(d, n < limit ? n : limit, TEXT_VIS);
    if (k > 0) {
      p->vend = (uint16_t)(p->pos + k);
    }
    break;
  default:
    return 0;
  }
  p->pos = (uint16_t)(p->pos + k);
  return k;
}

/** Feeds the next len bytes of the head; see enum hp_result. *consumed is
 *  the number of bytes that belong to the head (HP_MORE: len, HP_DONE: up to
 *  and including the final LF, errors: index of the offending byte). Once a
 *  result other than HP_MORE is returned, later calls return it again with
 *  *consumed = 0. */
int hp_feed(hp_parser_t *p, const char *data, size_t len, size_t *consumed)
{
  const unsigned char *d = (const unsigned char *)data;
  size_t i = 0;

  if (p->state == S_FINISHED) {
    *consumed = 0;
    return p->result;
  }
  while (i < len) {
    int rc;
    size_t run = take_run(p, d + i, len - i);
    if (run > 0) {
      i += run;
      continue;
    }
    if (p->pos >= POSTERN_HEAD_MAX) {
      rc = HP_ERR_HEAD_TOO_LARGE;
    } else {
      rc = step(p, d[i]);
    }
    if (rc != HP_MORE) {
      p->state = S_FINISHED;
      p->result = (int8_t)rc;
      *consumed = rc == HP_DONE ? i + 1 : i;
      return rc;
    }
    p->pos++;
    i++;
  }
  *consumed = len;
  return HP_MORE;
}

/** Maps an HP_ERR_* code to the HTTP status to answer with (0 otherwise). */
int hp_status_for(int hp_error)
{
  switch (hp_error) {
  case HP_ERR_SYNTAX:
    return 400;
  case HP_ERR_HEAD_TOO_LARGE:
    return 431;
  case HP_ERR_TOO_MANY_HEADERS:
    return 431;
  case HP_ERR_METHOD:
    return 501;
  case HP_ERR_TARGET_TOO_LONG:
    return 414;
  case HP_ERR_VERSION:
    return 505;
  default:
    return 0;
  }
}

/** Names an HP_* result in snake_case, for logs. */
const char *hp_error_name(int hp_error)
{
  switch (hp_error) {
  case HP_MORE:
    return "more";
  case HP_DONE:
    return "done";
  case HP_ERR_SYNTAX:
    return "bad_request";
  case HP_ERR_HEAD_TOO_LARGE:
    return "header_too_large";
  case HP_ERR_TOO_MANY_HEADERS:
    return "too_many_headers";
  case HP_ERR_METHOD:
    return "method_not_implemented";
  case HP_ERR_TARGET_TOO_LONG:
    return "uri_too_long";
  case HP_ERR_VERSION:
    return "version_not_supported";
  default:
    return "unknown";
  }
}

/* Case-insensitive compare of s[0..n) with the lower-case lit[0..lit_n). */
static bool mem_ieq(const char *s, size_t n, const char *lit, size_t lit_n)
{
  if (n != lit_n) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (to_lower((unsigned char)s[i]) != (unsigned char)lit[i]) {
      return false;
    }
  }
  return true;
}

/* The same against a string literal, its length known at compile time. */
#define IEQ(s, n, lit) ((n) == sizeof(lit) - 1 && mem_ieq((s), (n), (lit), sizeof(lit) - 1))
#define SPAN_IS(head, sp, lit) IEQ((head) + (sp).off, (sp).len, lit)

/** Case-insensitive compare of a span with a NUL-terminated lower-case
 *  literal. */
bool hp_span_ieq(const char *head, hp_span_t s, const char *lit)
{
  return mem_ieq(head + s.off, s.len, lit, strlen(lit));
}

/** Finds the first header named `name` (lower-case literal); returns its
 *  index or -1. */
int hp_find(const hp_request_t *r, const char *head, const char *name)
{
  size_t n = strlen(name);
  for (int i = 0; i < (int)r->n_headers; i++) {
    if (mem_ieq(head + r->headers[i].name.off, r->headers[i].name.len, name, n))
      return i;
  }
  return -1;
}

/* Iterator over the elements of a comma-separated field value. */
typedef struct list_it {
  const char *s;
  size_t n, at;
  bool done;
} list_it_t;

static list_it_t list_begin(const char *head, hp_span_t v)
{
  return (list_it_t){head + v.off, v.len, 0, false};
}

/* Next element (OWS trimmed, may be empty) into *e and *elen; false at the end. */
static bool list_next(list_it_t *it, const char **e, size_t *elen)
{
  size_t b, end;
  if (it->done)
    return false;
  b = it->at;
  end = b;
  while (end < it->n && it->s[end] != ',')
    end++;
  it->done = end >= it->n;
  it->at = end + 1;
  while (b < end && (it->s[b] == ' ' || it->s[b] == '\t'))
    b++;
  while (end > b && (it->s[end - 1] == ' ' || it->s[end - 1] == '\t'))
    end--;
  *e = it->s + b;
  *elen = end - b;
  return true;
}

/* Parses a non-empty run of digits below 2^63 into *v; false otherwise. */
static bool parse_len(const char *s, size_t n, uint64_t *v)
{
  const uint64_t max = (uint64_t)INT64_MAX;
  uint64_t x = 0;
  size_t i;
  if (n == 0)
    return false;
  for (i = 0; i < n; i++) {
    unsigned d;
    if (!is_digit((unsigned char)s[i]))
      return false;
    d = (unsigned)(s[i] - '0');
    if (x > max / 10u || (x == max / 10u && d > max % 10u))
      return false;
    x = x * 10u + d;
  }
  *v = x;
  return true;
}

/* ---- Host field value (RFC 9112 3.2) -------------------------------------
 *
 * Host = uri-host [ ":" port ], with RFC 3986's uri-host = IP-literal /
 * IPv4address / reg-name. What is enforced, in linear time, no copy:
 *
 *   value    = ""                      ; no authority (RFC 9112 3.2)
 *            / host [ ":" port ]
 *   host     = "[" ( IPv6address / IPvFuture ) "]"
 *            / 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / pct-encoded
 *                / "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / ";" / "=" )
 *   port     = *5DIGIT, at most 65535
 *   IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ),
 *               sub-delims without "," here too
 *
 * ("v" and HEXDIG in either case, as ABNF literals are; pct-encoded is
 * "%" HEXDIG HEXDIG.)
 *
 * Deliberate departures from the bare ABNF:
 * - "," is refused although it is a sub-delim. RFC 9110 5.3 lets a recipient
 *   join repeated field lines with commas, so "a, b" or "a,b" cannot be told
 *   from two Host lines merged on the way, and peers that pick different
 *   elements route the same request differently. No DNS name or address
 *   contains one, so a comma always means a list, and a list is two Hosts.
 * - The host part must not be empty when a ':' follows (":80", ":"): an
 *   authority with an empty host is an invalid "http" URI (RFC 9110 4.2.1).
 *   A wholly empty value stays valid: it is what a client sends for a target
 *   without authority.
 * - The port is a TCP port: at most 5 digits and at most 65535. An empty port
 *   ("dev:") is valid (port = *DIGIT, RFC 3986 3.2.3). A bigger number names
 *   no TCP port, and zero padding past 5 digits only invites parsers to
 *   disagree.
 * - IPv4address needs no code of its own: it is a subset of reg-name, and a
 *   dotted name like 999.1.1.1 is a valid reg-name anyway. Inside brackets
 *   the IPv6 grammar is checked in full, with dec-octets in an embedded IPv4.
 * - No "%25" zone identifiers (RFC 6874): not part of RFC 3986's IP-literal,
 *   which RFC 9110 refers to.
 * Whatever is not listed ('@' of userinfo, '/', '?', '#', '"', '\\', space,
 * HTAB, controls, obs-text, a second ':', an unbracketed "::1") makes the
 * value invalid. */

static bool is_hex(unsigned char c)
{
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* unreserved / sub-delims of RFC 3986 minus ",": a reg-name byte other than
 * the '%' of a pct-encoded triplet (see above for the comma). */
static bool is_regname_char(unsigned char c)
{
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return true;
  }
  switch (c) {
  case '-':
  case '.':
  case '_':
  case '~': /* unreserved */
  case '!':
  case '$':
  case '&':
  case '\'':
  case '(':
  case ')': /* sub-delims */
  case '*':
  case '+':
  case ';':
  case '=':
    return true;
  default:
    return false;
  }
}

/* Length of the reg-name at s[0..n) (up to a ':' or the end), or -1 on a
 * byte outside reg-name or a broken %-triplet. May be 0. */
static long regname_len(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n && s[i] != ':') {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (n - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2])) {
        return -1;
      }
      i += 3;
    } else if (is_regname_char(c)) {
      i++;
    } else {
      return -1;
    }
  }
  return (long)i;
}

/* IPv4address = dec-octet 3( "." dec-octet ), dec-octet = 0-255 without
 * leading zeros, exactly s[0..n). */
static bool is_ipv4(const char *s, size_t n)
{
  size_t i = 0;
  int octet;
  for (octet = 0; octet < 4; octet++) {
    unsigned v = 0;
    size_t b = i;
    if (octet > 0) {
      if (i >= n || s[i] != '.')
        return false;
      b = ++i;
    }
    while (i < n && is_digit((unsigned char)s[i]) && i - b < 3) {
      v = v * 10u + (unsigned)(s[i] - '0');
      i++;
    }
    if (i == b || v > 255 || (i - b > 1 && s[b] == '0'))
      return false;
  }
  return i == n;
}

/* IPv6address of RFC 3986 3.2.2, exactly s[0..n): eight h16 (1 to 4 HEXDIG)
 * separated by ':', the last two replaceable by an IPv4address, with at most
 * one "::" standing for one or more zero groups. */
static bool is_ipv6(const char *s, size_t n)
{
  unsigned groups = 0;
  bool elided = false;
  size_t i = 0;

  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    elided = true;
    i = 2;
    if (i == n)
      return true; /* "::" */
  }
  for (;;) {
    size_t j = i;
    while (j < n && is_hex((unsigned char)s[j]))
      j++;
    if (j < n && s[j] == '.') {
      /* ls32 as IPv4: ends the address and stands for two groups. */
      if (!is_ipv4(s + i, n - i))
        return false;
      groups += 2;
      break;
    }
    if (j == i || j - i > 4)
      return false;
    groups++;
    if (j == n)
      break;
    if (s[j] != ':')
      return false;
    j++;
    if (j < n && s[j] == ':') {
      if (elided)
        return false; /* a second "::" */
      elided = true;
      j++;
      if (j == n)
        break; /* trailing "::" */
    } else if (j == n) {
      return false; /* trailing single ':' */
    }
    if (groups >= 8)
      return false;
    i = j;
  }
  return elided ? groups <= 7 : groups == 8;
}

/* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ), exactly
 * s[0..n), with the comma refused as in reg-name. */
static bool is_ipvfuture(const char *s, size_t n)
{
  size_t i = 1;
  if (n == 0 || (s[0] != 'v' && s[0] != 'V'))
    return false;
  while (i < n && is_hex((unsigned char)s[i]))
    i++;
  if (i == 1 || i >= n || s[i] != '.')
    return false;
  if (++i == n)
    return false;
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c != ':' && !is_regname_char(c))
      return false;
  }
  return true;
}

/* Whether s[0..n) (OWS already trimmed) is a valid Host value, see above. */
static bool host_valid(const char *s, size_t n)
{
  size_t i, digits;
  unsigned long port = 0;

  if (n == 0)
    return true;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', n);
    size_t alen;
    if (close == NULL)
      return false;
    alen = (size_t)(close - s) - 1u;
    if (!is_ipv6(s + 1, alen) && !is_ipvfuture(s + 1, alen))
      return false;
    i = alen + 2u;
  } else {
    long len = regname_len(s, n);
    if (len <= 0)
      return false; /* bad byte, or empty host before ':' */
    i = (size_t)len;
  }
  if (i == n)
    return true;
  if (s[i] != ':')
    return false; /* e.g. "[::1]x" */
  for (i++, digits = 0; i < n; i++, digits++) {
    if (!is_digit((unsigned char)s[i]) || digits >= 5)
      return false;
    port = port * 10u + (unsigned long)(s[i] - '0');
  }
  return port <= 65535u;
}

/** Interprets the framing headers of a parsed request into *m. Returns 0,
 *  400 (conflicting/invalid Content-Length or Transfer-Encoding, missing,
 *  repeated or invalid Host, chunked not last) or 501 (unsupported transfer
 *  coding).
 *  Repeated Content-Length values ("5, 5" or two fields) are accepted when
 *  identical. */
int hp_analyze(const hp_request_t *r, const char *head, hp_meta_t *m)
{
  bool http11 = r->version_minor >= 1;
  bool te_seen = false, te_bad = false, te_unsupported = false;
  bool conn_close = false, conn_keep = false;
  unsigned n_host = 0, n_expect = 0;
  int i;

  *m = (hp_meta_t){0};
  m->expect_hdr = -1;
  m->host_hdr = -1;

  for (i = 0; i < (int)r->n_headers; i++) {
    const hp_header_t *h = &r->headers[i];
    list_it_t it = list_begin(head, h->value);
    const char *e;
    size_t elen;

    if (SPAN_IS(head, h->name, "content-length")) {
      while (list_next(&it, &e, &elen)) {
        uint64_t v;
        if (!parse_len(e, elen, &v))
          return 400;
        if (m->has_length && v != m->content_length)
          return 400;
        m->content_length = v;
        m->has_length = true;
      }
    } else if (SPAN_IS(head, h->name, "transfer-encoding")) {
      while (list_next(&it, &e, &elen)) {
        if (elen == 0 || m->chunked) {
          te_bad = true; /* empty element, or a coding after chunked */
        } else if (IEQ(e, elen, "chunked")) {
          m->chunked = true;
        } else {
          te_unsupported = true;
        }
      }
      te_seen = true;
    } else if (SPAN_IS(head, h->name, "host")) {
      if (!host_valid(head + h->value.off, h->value.len))
        return 400;
      if (n_host++ == 0)
        m->host_hdr = (int8_t)i;
    } else if (SPAN_IS(head, h->name, "expect")) {
      if (n_expect++ == 0)
        m->expect_hdr = (int8_t)i;
    } else if (SPAN_IS(head, h->name, "connection")) {
      while (list_next(&it, &e, &elen)) {
        if (IEQ(e, elen, "close"))
          conn_close = true;
        if (IEQ(e, elen, "keep-alive"))
          conn_keep = true;
      }
    }
  }

  if (n_host > 1 || (http11 && n_host == 0))
    return 400;
  if (te_seen) {
    if (!http11 || m->has_length || te_bad)
      return 400;
    if (te_unsupported || !m->chunked)
      return 501;
  }

  m->keep_alive = http11 ? !conn_close : (conn_keep && !conn_close);

  if (http11 && n_expect > 0) {
    const hp_header_t *h = &r->headers[m->expect_hdr];
    m->expect = (n_expect == 1 && SPAN_IS(head, h->value, "100-continue")) ? HP_EXPECT_CONTINUE : HP_EXPECT_OTHER;
  }
  return 0;
}

static int hex_val(unsigned char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = to_lower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/** Percent-decodes src[0..len) into out (capacity cap) and NUL-terminates
 *  it. Returns the decoded length, or -1 for a malformed %-escape, a decoded
 *  NUL byte, or output overflow. '+' is left as is. */
int hp_pct_decode(const char *src, size_t len, char *out, size_t cap)
{
  size_t i = 0, o = 0;

  if (cap == 0)
    return -1;
  while (i < len) {
    unsigned char c = (unsigned char)src[i];
    if (c == '%') {
      int hi, lo;
      if (len - i < 3)
        return -1;
      hi = hex_val((unsigned char)src[i + 1]);
      lo = hex_val((unsigned char)src[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = (unsigned char)(hi * 16 + lo);
      i += 3;
    } else {
      i++;
    }
    if (c == 0)
      return -1;
    if (o + 1 >= cap || o >= (size_t)INT_MAX)
      return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return (int)o;
}
