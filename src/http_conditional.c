/* http_conditional.c: preconditions (If-Match, If-None-Match) decided before storage or a 100, and ranged downloads (Range, If-Range). */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "conditional.h"
#include "http_response.h"
#include "storage.h"

/* The lines of one field in the head (a list may be split over several), into out (NULL: only counted). */
static int conn_fields_n(conn_t *c, const char *head, const char *name, size_t n, cond_field_t *out)
{
  const hp_request_t *r = &c->req;
  int count = 0;
  for (int i = 0; i < r->n_headers; i++) {
    const hp_span_t *k = &r->headers[i].name;
    if (k->len != n) {
      continue;
    }
    bool same = true;
    for (size_t j = 0; j < n && same; j++) {
      char ch = head[k->off + j];
      same = (ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch) == name[j];
    }
    if (same && out != NULL) {
      out[count] = (cond_field_t){head + r->headers[i].value.off, r->headers[i].value.len};
    }
    count += same;
  }
  return count;
}
#define conn_fields(c, head, lit, out) conn_fields_n((c), (head), (lit), sizeof(lit) - 1, (out))

/* Evaluates both fields for a file that exists or not (etag: NULL when it has none); answers and returns false unless they pass. */
static bool conn_evaluate(conn_t *c, const char *head, bool exists, const char *etag, bool safe)
{
  cond_field_t lines[POSTERN_MAX_HEADERS]; /* both fields' lines: a head has no more */
  cond_field_t *im = lines;
  int n_im = conn_fields(c, head, "if-match", im);
  cond_field_t *inm = lines + n_im;
  int n_inm = conn_fields(c, head, "if-none-match", inm);
  if (n_im == 0 && n_inm == 0) {
    return true;
  }
  enum cond_result rc = cond_evaluate(im, n_im, inm, n_inm, exists, etag, safe);
  if (rc == COND_PASS) {
    return true;
  }
  bool has_body = c->chunked || (c->has_length && c->length > 0);
  if (rc == COND_NOT_MODIFIED) {
    if (conn_send_ok(c, 304, NULL, 0, NULL, NULL, 0, 0, false)) {
      conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
    }
    return false;
  }
  const char *msg = rc == COND_MALFORMED ? "If-Match and If-None-Match take * or a list of entity-tags"
                    : n_im > 0 && cond_evaluate(im, n_im, NULL, 0, exists, etag, safe) != COND_PASS
                        ? (exists ? "If-Match: the file has another version" : "If-Match: no such file")
                        : "If-None-Match: the file exists in that version";
  conn_respond_error(c, (int)rc, NULL, msg, has_body || !c->keep_alive,
                     has_body || !c->keep_alive ? AFTER_LINGER : AFTER_NEXT, NULL);
  return false;
}

/** PUT or DELETE: the preconditions against the stored file, before storage or a 100; see http_conn_int.h. */
bool conn_preconditions(conn_t *c, const char *head, bool is_delete)
{
  uint8_t sha[DIGEST_SHA256_LEN];
  bool exists = storage_exists(c->name, NULL);
  if (!exists && is_delete) {
    return true; /* DELETE of no file: 404 follows, and preconditions are ignored (RFC 9110 13.2.1) */
  }
  char etag[COND_ETAG_LEN + 1];
  bool tagged = exists && storage_sha256(c->name, sha);
  if (tagged) {
    cond_etag(sha, etag);
  }
  c->cond_held = false;
  if (!conn_evaluate(c, head, exists, tagged ? etag : NULL, false)) {
    return false;
  }
  c->cond_held = conn_fields(c, head, "if-match", NULL) + conn_fields(c, head, "if-none-match", NULL) > 0;
  c->cond_existed = exists;
  c->cond_tagged = tagged;
  memcpy(c->cond_tag, sha, tagged ? sizeof c->cond_tag : 0);
  return true;
}

/** Whether the name still holds the version the preconditions passed on; see http_conn_int.h. */
bool conn_preconditions_still_hold(conn_t *c)
{
  if (!c->cond_held) {
    return true;
  }
  uint8_t sha[DIGEST_SHA256_LEN];
  bool exists = storage_exists(c->name, NULL);
  bool tagged = exists && storage_sha256(c->name, sha);
  return exists == c->cond_existed && tagged == c->cond_tagged &&
         (!tagged || memcmp(sha, c->cond_tag, sizeof c->cond_tag) == 0);
}

/** GET or HEAD with an open reader: preconditions, then Range; see http_conn_int.h. */
bool conn_download_conditions(conn_t *c, const char *head, uint64_t size, int *status, uint64_t *length)
{
  uint8_t sha[DIGEST_SHA256_LEN];
  bool tagged = storage_read_sha256(c->reader, sha);
  if (tagged) {
    cond_etag(sha, conn_etag);
  }
  *status = 200;
  *length = size;
  if (!conn_evaluate(c, head, true, tagged ? conn_etag : NULL, true)) {
    storage_read_close(c->reader);
    c->reader = NULL;
    return false;
  }
  cond_field_t range[1], if_range[1];
  int n_range = conn_fields(c, head, "range", NULL);
  int n_if_range = conn_fields(c, head, "if-range", NULL);
  if (n_range == 1) {
    conn_fields(c, head, "range", range);
  }
  if (n_if_range == 1) {
    conn_fields(c, head, "if-range", if_range);
  }
  if (n_range != 1 || n_if_range > 1 ||
      (n_if_range == 1 && !cond_if_range(if_range[0].p, if_range[0].n, tagged ? conn_etag : NULL))) {
    return true; /* no Range, several, or an If-Range that does not name this version: the whole file */
  }
  uint64_t first = 0, last = 0;
  enum cond_range rc = cond_range(range[0].p, range[0].n, size, &first, &last);
  wbuf_t b;
  wb_init(&b, conn_content_range, sizeof conn_content_range - 1);
  if (rc == COND_RANGE_UNSATISFIABLE) {
    storage_read_close(c->reader);
    c->reader = NULL;
    wb_lit(&b, "bytes */");
    wb_u64(&b, size);
    conn_content_range[b.len] = '\0';
    conn_respond_error(c, 416, NULL, "the range is outside the file", !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return false;
  }
  if (rc != COND_RANGE_PARTIAL) {
    return true;
  }
  int s = storage_read_seek(c->reader, first);
  if (s != STORAGE_OK) {
    storage_read_close(c->reader);
    c->reader = NULL;
    conn_respond_error(c, 500, NULL, "storage error", !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return false;
  }
  wb_lit(&b, "bytes ");
  wb_u64(&b, first);
  wb_lit(&b, "-");
  wb_u64(&b, last);
  wb_lit(&b, "/");
  wb_u64(&b, size);
  conn_content_range[b.len] = '\0';
  *status = 206;
  *length = last - first + 1;
  return true;
}
