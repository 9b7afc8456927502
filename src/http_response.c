/* http_response.c: renders response heads and JSON bodies into a caller's buffer (no allocation). */
#include "http_response.h"

#include <string.h>

#include "platform.h"

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
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  wb_mem(b, tmp + i, sizeof tmp - i);
}

/** Appends a JSON string literal, quotes included, escaping what JSON needs. */
void wb_json_str(wbuf_t *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  wb_mem(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      wb_mem(b, esc, 2);
    } else if (c < 0x20 || c == 0x7f) {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      wb_mem(b, esc, 6);
    } else {
      wb_mem(b, (const char *)&c, 1);
    }
  }
  wb_mem(b, "\"", 1);
}

/** The reason phrase of a status code postern sends. */
const char *http_reason(int status)
{
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 417: return "Expectation Failed";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  case 507: return "Insufficient Storage";
  default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

/** The snake_case error key used in JSON bodies for a status. */
const char *http_error_key(int status)
{
  switch (status) {
  case 400: return "bad_request";
  case 401: return "unauthorized";
  case 403: return "forbidden";
  case 404: return "not_found";
  case 405: return "method_not_allowed";
  case 408: return "request_timeout";
  case 409: return "conflict";
  case 411: return "length_required";
  case 413: return "content_too_large";
  case 414: return "uri_too_long";
  case 417: return "expectation_failed";
  case 429: return "too_many_requests";
  case 431: return "header_too_large";
  case 500: return "internal_error";
  case 501: return "not_implemented";
  case 503: return "service_unavailable";
  case 505: return "version_not_supported";
  case 507: return "insufficient_storage";
  default: return status < 500 ? "client_error" : "server_error";
  }
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
  wb_str(&b, ", ");
  char two[2] = {(char)('0' + d / 10), (char)('0' + d % 10)};
  wb_mem(&b, two, 2);
  wb_str(&b, " ");
  wb_mem(&b, months + 3 * (m - 1), 3);
  wb_str(&b, " ");
  wb_u64(&b, (uint64_t)y);
  unsigned hms[3] = {(unsigned)(sec / 3600), (unsigned)(sec / 60 % 60), (unsigned)(sec % 60)};
  for (int i = 0; i < 3; i++) {
    char f[3] = {i == 0 ? ' ' : ':', (char)('0' + hms[i] / 10), (char)('0' + hms[i] % 10)};
    wb_mem(&b, f, 3);
  }
  wb_str(&b, " GMT");
  out[b.len] = '\0';
}

/** Renders the status line and headers, ending with the empty line. */
void http_render_head(wbuf_t *b, const http_head_t *h)
{
  wb_str(b, "HTTP/1.1 ");
  wb_u64(b, (uint64_t)h->status);
  wb_str(b, " ");
  wb_str(b, http_reason(h->status));
  wb_str(b, "\r\n");
  if (h->status == 100) {
    wb_str(b, "\r\n");
    return;
  }
  uint64_t now;
  if (platform_unix_time(&now)) {
    char date[30];
    http_format_date(date, now);
    wb_str(b, "Date: ");
    wb_str(b, date);
    wb_str(b, "\r\n");
  }
  wb_str(b, "Server: postern\r\n");
  if (h->content_type != NULL) {
    wb_str(b, "Content-Type: ");
    wb_str(b, h->content_type);
    wb_str(b, "\r\n");
  }
  if (h->status != 204) {
    wb_str(b, "Content-Length: ");
    wb_u64(b, h->content_length);
    wb_str(b, "\r\n");
  }
  if (h->www_authenticate != NULL) {
    wb_str(b, "WWW-Authenticate: ");
    wb_str(b, h->www_authenticate);
    wb_str(b, "\r\n");
  }
  if (h->allow != NULL) {
    wb_str(b, "Allow: ");
    wb_str(b, h->allow);
    wb_str(b, "\r\n");
  }
  if (h->repr_digest != NULL) {
    wb_str(b, "Repr-Digest: sha-256=:");
    wb_str(b, h->repr_digest);
    wb_str(b, ":\r\n");
  }
  if (h->close) {
    wb_str(b, "Connection: close\r\n");
  }
  wb_str(b, "\r\n");
}

/** Renders a whole error response: head plus {"error":"<key>","message":"..."}. */
void http_render_error(wbuf_t *b, http_head_t *h, const char *key, const char *message)
{
  char body[256];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_str(&j, "{\"error\":");
  wb_json_str(&j, key, strlen(key));
  wb_str(&j, ",\"message\":");
  const char *msg = message != NULL && message[0] != '\0' ? message : http_reason(h->status);
  wb_json_str(&j, msg, strlen(msg));
  wb_str(&j, "}\n");
  if (j.overflow) { /* an over-long message: keep the shape, drop the text */
    wb_init(&j, body, sizeof body);
    wb_str(&j, "{\"error\":");
    wb_json_str(&j, key, strlen(key));
    wb_str(&j, ",\"message\":\"\"}\n");
  }
  h->content_type = "application/json";
  h->content_length = j.len;
  http_render_head(b, h);
  wb_mem(b, body, j.len);
}
