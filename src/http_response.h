/* http_response.h: renders response heads and JSON bodies into a caller's buffer (no allocation). */
#ifndef POSTERN_HTTP_RESPONSE_H
#define POSTERN_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A bounded output buffer; `overflow` is set, never the bytes past cap. */
typedef struct wbuf {
  char *p;
  size_t len, cap;
  bool overflow;
} wbuf_t;

void wb_init(wbuf_t *b, char *p, size_t cap);
void wb_mem(wbuf_t *b, const char *s, size_t n);
void wb_str(wbuf_t *b, const char *s);
/** Appends a string literal (its length known when compiled). */
#define wb_lit(b, lit) wb_mem((b), (lit), sizeof(lit) - 1)
void wb_u64(wbuf_t *b, uint64_t v);
void wb_json_str(wbuf_t *b, const char *s, size_t n);

/** What a response head says besides the status line. */
typedef struct http_head {
  int status;
  const char *content_type;     /* NULL: no Content-Type */
  uint64_t content_length;      /* always sent, except on 100 and 204 */
  bool close;                   /* Connection: close */
  const char *www_authenticate; /* NULL: none */
  const char *allow;            /* NULL: none */
  const char *repr_digest;      /* base64 SHA-256 of the stored file, or NULL */
  const char *etag;             /* the file's ETag, quotes included, or NULL */
  const char *content_range;    /* Content-Range value, or NULL */
  bool accept_ranges;           /* Accept-Ranges: bytes */
  const char *allow_origin;     /* CORS: Access-Control-Allow-Origin (and Vary, Expose-Headers), or NULL */
  const char *extra;            /* more header lines, each ending in CRLF, or NULL */
} http_head_t;

/** Rows of the status table (reason, error key, counter slot). */
#define HTTP_STATUS_KNOWN 29

size_t http_status_slot(int status);
int http_status_code(size_t slot);
const char *http_reason(int status);
const char *http_error_key(int status);
void http_render_head(wbuf_t *b, const http_head_t *h);
void http_render_error(wbuf_t *b, http_head_t *h, const char *key, const char *message);
void http_format_date(char out[30], uint64_t unix_seconds);

#endif /* POSTERN_HTTP_RESPONSE_H */
