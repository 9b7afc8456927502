/* http_response.c: renders response heads and JSON bodies into a caller's buffer (no allocation). */
#include "http_response.h"

#include <string.h>

#include "platform.h"
#include "postern_opts.h"
#include "text.h"

/** Starts an empty buffer over p[0..cap). */
void wb_init(wbuf_t *b, char *p, size_t cap)
{
  b->p = p;
  b->len = 0;
  b->cap = cap;
  b->overflow = false;
}

/** Appends n bytes, or marks the buffer overflowed. */
void wb_mem(wbuf_t *b, const char *s, size_t n)
{
  if (n == 0) {
    return;
  }
  if (b->overflow || n > b->cap - b->len) {
    b->overflow = true;
    return;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

/** Appends a NUL-terminated string. */
void wb_str(wbuf_t *b, const char *s)
{
  wb_mem(b, s, strlen(s));
}

/** Appends a decimal number. */
void wb_u64(wbuf_t *b, uint64_t v)
{
  char tmp[20];
  size_t i = sizeof tmp;
  while (v > UINT32_MAX) {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  }
  uint32_t w = (uint32_t)v; /* 32-bit division is one instruction on a Cortex-M3, 64-bit a library call */
  do {
    tmp[--i] = (char)('0' + w % 10);
    w /= 10;
  } while (w != 0);
  wb_mem(b, tmp + i, sizeof tmp - i);
}

/**
 * Appends a JSON string literal, quotes included, escaping what JSON needs.
 * Bytes that are not well-formed UTF-8 become U+FFFD, so the document stays
 * valid JSON (RFC 8259 section 8.1) whatever a policy message holds.
 */
void wb_json_str(wbuf_t *b, const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  wb_mem(b, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned char c = u[i];
    size_t run = i;
    while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\') {
      run++; /* printable ASCII goes through as one span */
    }
    if (run > i) {
      wb_mem(b, s + i, run - i);
      i = run;
      continue;
    }
    size_t len = text_utf8_len(u + i, n - i);
    if (len == 0) {
      wb_mem(b, "\\ufffd", 6);
      i++;
      continue;
    }
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      wb_mem(b, esc, 2);
    } else if (c < 0x20 || c == 0x7f) {
      char esc[7] = {'\\', 'u', '0', '0'};
      text_hex(&c, 1, esc + 4);
      wb_mem(b, esc, 6);
    } else {
      wb_mem(b, s + i, len);
    }
    i += len;
  }
  wb_mem(b, "\"", 1);
}

/* Every status postern sends, in ascending order: its reason phrase and its JSON error key. */
static const struct {
  uint16_t code;
  const char *reason, *key;
} http_statuses[] = {
    {100, "Continue", NULL},
    {200, "OK", NULL},
    {201, "Created", NULL},
    {204, "No Content", NULL},
    {206, "Partial Content", NULL},
    {304, "Not Modified", NULL},
    {400, "Bad Request", "bad_request"},
    {401, "Unauthorized", "unauthorized"},
    {403, "Forbidden", "forbidden"},
    {404, "Not Found", "not_found"},
    {405, "Method Not Allowed", "method_not_allowed"},
    {406, "Not Acceptable", "not_acceptable"},
    {408, "Request Timeout", "request_timeout"},
    {409, "Conflict", "conflict"},
    {411, "Length Required", "length_required"},
    {412, "Precondition Failed", "precondition_failed"},
    {413, "Content Too Large", "content_too_large"},
    {414, "URI Too Long", "uri_too_long"},
    {415, "Unsupported Media Type", "unsupported_media_type"},
    {416, "Range Not Satisfiable", "range_not_satisfiable"},
    {417, "Expectation Failed", "expectation_failed"},
    {422, "Unprocessable Content", "unprocessable_content"},
    {429, "Too Many Requests", "too_many_requests"},
    {431, "Request Header Fields Too Large", "header_too_large"},
    {500, "Internal Server Error", "internal_error"},
    {501, "Not Implemented", "not_implemented"},
    {503, "Service Unavailable", "service_unavailable"},
    {505, "HTTP Version Not Supported", "version_not_supported"},
    {507, "Insufficient Storage", "insufficient_storage"},
};
_Static_assert(sizeof http_statuses / sizeof http_statuses[0] == HTTP_STATUS_KNOWN,
               "HTTP_STATUS_KNOWN must count the rows of http_statuses");

/** The status's row in the table, or HTTP_STATUS_KNOWN for a status not in it. */
size_t http_status_slot(int status)
{
  size_t lo = 0, hi = HTTP_STATUS_KNOWN; /* a binary search: the rows are in ascending order */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (http_statuses[mid].code < status) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < HTTP_STATUS_KNOWN && http_statuses[lo].code == status ? lo : HTTP_STATUS_KNOWN;
}

/** The status code of a table row (slot < HTTP_STATUS_KNOWN). */
int http_status_code(size_t slot)
{
  return http_statuses[slot].code;
}

/** The reason phrase of a status code postern sends. */
const char *http_reason(int status)
{
  size_t i = http_status_slot(status);
  if (i < HTTP_STATUS_KNOWN) {
    return http_statuses[i].reason;
  }
  return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/** The snake_case error key used in JSON bodies for a status. */
const char *http_error_key(int status)
{
  size_t i = http_status_slot(status);
  if (i < HTTP_STATUS_KNOWN && http_statuses[i].key != NULL) {
    return http_statuses[i].key;
  }
  return status < 500 ? "client_error" : "server_error";
}

/** Formats an IMF-fixdate ("Sun, 22 Nov 2026 04:35:00 GMT") without gmtime's static state. */
void http_format_date(char out[30], uint64_t t)
{
  static const char days[] = "ThuFriSatSunMonTueWed";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  uint64_t day = t / 86400, sec = t % 86400;
  const char *wd = days + 3 * (day % 7);
  /* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
  int64_t z = (int64_t)day + 719468;
  int64_t era = z / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  wbuf_t b;
  wb_init(&b, out, 29);
  wb_mem(&b, wd, 3);
  wb_lit(&b, ", ");
  char two[2] = {(char)('0' + d / 10), (char)('0' + d % 10)};
  wb_mem(&b, two, 2);
  wb_lit(&b, " ");
  wb_mem(&b, months + 3 * (m - 1), 3);
  wb_lit(&b, " ");
  wb_u64(&b, (uint64_t)y);
  unsigned hms[3] = {(unsigned)(sec / 3600), (unsigned)(sec / 60 % 60), (unsigned)(sec % 60)};
  for (int i = 0; i < 3; i++) {
    char f[3] = {i == 0 ? ' ' : ':', (char)('0' + hms[i] / 10), (char)('0' + hms[i] % 10)};
    wb_mem(&b, f, 3);
  }
  wb_lit(&b, " GMT");
  out[b.len] = '\0';
}

/* Appends "Name: value\r\n" when value is not NULL. */
static void wb_header_n(wbuf_t *b, const char *name_colon, size_t n, const char *value)
{
  if (value != NULL) {
    wb_mem(b, name_colon, n);
    wb_str(b, value);
    wb_lit(b, "\r\n");
  }
}
#define wb_header(b, name, value) wb_header_n((b), name ": ", sizeof(name ": ") - 1, (value))

/** Renders the status line and headers, ending with the empty line. */
void http_render_head(wbuf_t *b, const http_head_t *h)
{
  wb_lit(b, "HTTP/1.1 ");
  wb_u64(b, (uint64_t)h->status);
  wb_lit(b, " ");
  wb_str(b, http_reason(h->status));
  wb_lit(b, "\r\n");
  if (h->status == 100) {
    wb_lit(b, "\r\n");
    return;
  }
  uint64_t now;
  char date[30];
  bool has_date = platform_unix_time(&now);
  if (has_date) {
    http_format_date(date, now);
  }
  wb_header(b, "Date", has_date ? date : NULL);
  wb_header(b, "Server", "postern");
  wb_header(b, "Content-Type", h->content_type);
  if (h->status != 204 && h->status != 304) { /* 304: no content, and no length that would claim one */
    wb_lit(b, "Content-Length: ");
    wb_u64(b, h->content_length);
    wb_lit(b, "\r\n");
  }
  wb_header(b, "WWW-Authenticate", h->www_authenticate);
  wb_header(b, "Allow", h->allow);
  wb_header(b, "ETag", h->etag);
  wb_header(b, "Accept-Ranges", h->accept_ranges ? "bytes" : NULL);
  wb_header(b, "Content-Range", h->content_range);
  if (h->repr_digest != NULL) {
    wb_lit(b, "Repr-Digest: sha-256=:");
    wb_str(b, h->repr_digest);
    wb_lit(b, ":\r\n");
  }
  if (h->allow_origin != NULL) {
    wb_header(b, "Access-Control-Allow-Origin", h->allow_origin);
    wb_lit(b, "Access-Control-Expose-Headers: ETag, Repr-Digest, Content-Digest, Location\r\nVary: Origin\r\n");
  }
  if (h->extra != NULL) {
    wb_str(b, h->extra);
  }
  wb_header(b, "Connection", h->close ? "close" : NULL);
  wb_lit(b, "\r\n");
}

/** Renders a whole error response: head plus {"error":"<key>","message":"..."}. */
void http_render_error(wbuf_t *b, http_head_t *h, const char *key, const char *message)
{
  /* Room for a message of POSTERN_MESSAGE_MAX bytes that are all quotes. */
  char body[2 * POSTERN_MESSAGE_MAX + 64];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_lit(&j, "{\"error\":");
  wb_json_str(&j, key, strlen(key));
  wb_lit(&j, ",\"message\":");
  const char *msg = message != NULL && message[0] != '\0' ? message : http_reason(h->status);
  wb_json_str(&j, msg, strlen(msg));
  wb_lit(&j, "}\n");
  if (j.overflow) { /* an over-long message: keep the shape, drop the text */
    wb_init(&j, body, sizeof body);
    wb_lit(&j, "{\"error\":");
    wb_json_str(&j, key, strlen(key));
    wb_lit(&j, ",\"message\":\"\"}\n");
  }
  h->content_type = "application/json";
  h->content_length = j.len;
  http_render_head(b, h);
  wb_mem(b, body, j.len);
}
