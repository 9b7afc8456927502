/* http_form.c: a form upload, POST /files/ with multipart/form-data: the decoder after the chunked one, the file part's name decided by the policy a second time, its content streamed to storage as a PUT's body. */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "digest.h"
#include "http_response.h"
#include "log.h"
#include "lwip/mem.h"
#include "multipart.h"
#include "policy.h"
#include "storage.h"
#include "text.h"
#if POSTERN_TLS
#include "tls.h"
#endif

/*
 * What a form upload needs besides the connection, from a pool of
 * POSTERN_FORM_UPLOADS: the decoder (and its position before the piece
 * being decoded, to decode it again after a pending write), the SHA-256 of
 * the whole form for Content-Digest, and a copy of the request head for the
 * second decision, from lwIP's heap (head_len bytes, freed once the policy
 * has seen the file's name or the request ends).
 */
struct conn_form {
  conn_t *owner;
  char *head;        /* the request head, from mem_malloc; NULL once decided */
  bool decided;      /* the file part's name passed the policy */
  bool open_pending; /* its storage_open() answered STORAGE_PENDING: called again first */
  uint16_t query;    /* the query's offset in head (0: none) and length */
  uint16_t query_len;
  char path[8]; /* "/files" or "/files/" */
  multipart_t mp;
  multipart_mark_t mark;
  digest_sha256_t body_sha;
};

#if POSTERN_FORM_UPLOADS > 0
static conn_form_t conn_forms[POSTERN_FORM_UPLOADS];

/* A slot is taken while its owner is a form upload between its head and its answer. */
static bool conn_form_busy(const conn_form_t *f)
{
  const conn_t *o = f->owner;
  return o != NULL && o->form == f && (o->state == CONN_OPEN || o->state == CONN_BODY || o->state == CONN_COMMIT);
}

/** True when the request's Content-Type is multipart/form-data. */
bool conn_form_wanted(const conn_t *c, const char *head)
{
  int h = hp_find(&c->req, head, "content-type");
  return h >= 0 && multipart_is_form(head + c->req.headers[h].value.off, c->req.headers[h].value.len);
}

/** After the policy's first yes: a slot, the boundary, a copy of the head; CONN_OPEN, or the refusal. */
void conn_form_begin(conn_t *c, const char *head, const char *path, policy_str_t query)
{
  conn_form_t *f = NULL;
  for (int i = 0; i < POSTERN_FORM_UPLOADS && f == NULL; i++) {
    if (!conn_form_busy(&conn_forms[i])) {
      f = &conn_forms[i];
    }
  }
  if (f == NULL) {
    conn_refuse(c, 503, "another form upload is in progress; try again, or upload with PUT");
    return;
  }
  int h = hp_find(&c->req, head, "content-type");
  if (!multipart_init(&f->mp, head + c->req.headers[h].value.off, c->req.headers[h].value.len)) {
    conn_refuse(c, 400, f->mp.error);
    return;
  }
  if (f->owner != NULL && f->owner->form == f) {
    conn_form_release(f->owner);
  }
  f->head = mem_malloc(c->req.head_len);
  if (f->head == NULL) {
    conn_refuse(c, 503, "no memory for a form upload now; try again");
    return;
  }
  f->owner = c;
  f->decided = false;
  f->open_pending = false;
  memcpy(f->head, head, c->req.head_len);
  f->query = query.p != NULL ? (uint16_t)(query.p - head) : 0;
  f->query_len = (uint16_t)query.n;
  strncpy(f->path, path, sizeof f->path - 1);
  f->path[sizeof f->path - 1] = '\0';
  digest_sha256_start(&f->body_sha);
  c->form = f;
  c->state = CONN_OPEN; /* 100 Continue; storage opens once the file part's name is known */
}

/*
 * The file part's head is in: its name checked, the policy asked again with
 * req.name set (the request as at its head otherwise), the upload opened.
 * False when it answered (a refusal) or waits on storage.
 */
static bool conn_form_file(conn_t *c, conn_form_t *f)
{
  const multipart_t *mp = &f->mp;
  if (mp->name_len > POSTERN_NAME_MAX || !text_name_ok(mp->name, mp->name_len)) {
    conn_respond_error(c, 400, "bad_name",
                       "the file part's filename: 1 to 64 bytes, no '/', '..', leading '.' or control bytes", true,
                       AFTER_LINGER, NULL);
    return false;
  }
  if (!f->decided) {
    const char *head = f->head;
    const hp_request_t *r = &c->req;
    hp_meta_t m;
    hp_analyze(r, head, &m);
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
      tls_view.version = (policy_str_t){facts.version, facts.version ? strlen(facts.version) : 0};
      tls_view.cipher = (policy_str_t){facts.cipher, facts.cipher ? strlen(facts.cipher) : 0};
      tls_view.subject = (policy_str_t){facts.subject, facts.subject ? strlen(facts.subject) : 0};
      tls_view.fingerprint = (policy_str_t){facts.fingerprint, facts.fingerprint ? strlen(facts.fingerprint) : 0};
      tls = &tls_view;
    }
#endif
    policy_request_t pr = {
        .method = {head + r->method.off, r->method.len},
        .path = {f->path, strlen(f->path)},
        .query = f->query != 0 ? (policy_str_t){head + f->query, f->query_len} : (policy_str_t){NULL, 0},
        .version = {r->version_minor ? "HTTP/1.1" : "HTTP/1.0", 8},
        .name = {mp->name, mp->name_len},
        .header_names = names,
        .header_values = values,
        .n_headers = r->n_headers,
        .has_length = false, /* the file's length is not announced */
        .expect = m.expect != HP_EXPECT_NONE
                      ? (policy_str_t){head + r->headers[m.expect_hdr].value.off, r->headers[m.expect_hdr].value.len}
                      : (policy_str_t){NULL, 0},
        .peer_of = conn_peer,
        .peer_ctx = c,
        .tls = tls,
    };
    policy_decision_t *d = &conn_decision;
    policy_decide(&pr, d);
    mem_free(f->head); /* the head's last use */
    f->head = NULL;
    f->decided = true;
    if (d->status != 100) {
      /* The body is on its way: the answer, then the rest is read and dropped. */
      conn_respond_error(c, d->status, d->policy_error ? "policy_error" : NULL, d->message, true, AFTER_LINGER,
                         d->status == 401 ? (d->www_authenticate[0] ? d->www_authenticate : "Bearer realm=\"postern\"")
                                          : NULL);
      return false;
    }
    memcpy(c->name, d->name[0] != '\0' ? d->name : mp->name, sizeof c->name);
    c->name[POSTERN_NAME_MAX] = '\0';
  }
  int rc = storage_open(c->name, STORAGE_LEN_UNKNOWN, &c->upload);
  f->open_pending = conn_storage_wait(c, rc); /* conn_form_feed calls again, without asking the policy */
  if (f->open_pending) {
    return true;
  }
  if (rc != STORAGE_OK) {
    c->upload = NULL;
    conn_refuse(c,
                rc == STORAGE_ENOSPC  ? 507
                : rc == STORAGE_EBUSY ? 409
                                      : 500,
                rc == STORAGE_ENOSPC  ? "not enough free space"
                : rc == STORAGE_EBUSY ? "this name is being uploaded right now"
                                      : "storage error");
    return false;
  }
  return true;
}

/* The body ended: the form complete and its Content-Digest matching, or 400 and nothing stored. */
static void conn_form_end(conn_t *c, conn_form_t *f)
{
  if (f->open_pending) {
    f->open_pending = false; /* the body ended right after the file part's head: given up */
    conn_storage_wait(c, STORAGE_OK);
  }
  if (!multipart_finish(&f->mp)) {
    conn_fail_upload(c, 400, f->mp.error);
    return;
  }
  if (c->want_digest) {
    uint8_t sum[DIGEST_SHA256_LEN];
    digest_sha256_finish(&f->body_sha, sum);
    if (!digest_equal(sum, c->digest, sizeof sum)) {
      storage_abort(c->upload);
      c->upload = NULL;
      conn_respond_error(c, 400, "digest_mismatch",
                         "Content-Digest does not match the form's content (the whole multipart body); nothing stored",
                         !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
      return;
    }
    c->want_digest = false; /* checked here: the stored file's digest is the answer's */
  }
  c->state = CONN_COMMIT;
  conn_commit(c);
}

/*
 * CONN_BODY of a form: each pass takes one pbuf's worth through the chunked
 * decoder (when chunked) and the form decoder, and does at most one thing
 * that may be pending (a write or the open). A pending write restores both
 * decoders, and the same bytes are decoded again after storage_ready(); a
 * pending open keeps what was decoded (the file's name) and is called again
 * first.
 */
void conn_form_feed(conn_t *c)
{
  conn_form_t *f = c->form;
  if (f->open_pending && (!conn_form_file(c, f) || f->open_pending)) {
    return; /* refused, or still pending */
  }
  bool done = !c->chunked && c->body_left == 0;
  while (!done && c->rx != NULL) {
    struct pbuf *q = c->rx;
    const uint8_t *data = q->payload;
    size_t used, span_len = 0;
    const uint8_t *span = NULL;
    chunked_t chunk_before = c->chunk;
    multipart_mark(&f->mp, &f->mark);
    bool end = false;
    if (c->chunked) {
      int rc = chunked_decode(&c->chunk, data, q->len, &used, &span, &span_len);
      if (rc == CHUNKED_ERR) {
        conn_fail_upload(c, 400, "malformed chunked body");
        return;
      }
      end = rc == CHUNKED_DONE;
    } else {
      used = q->len < c->body_left ? q->len : (size_t)c->body_left;
      span = data;
      span_len = used;
      end = used == c->body_left;
    }
    size_t took = 0, out_len = 0;
    const uint8_t *out = NULL;
    int mrc = span_len > 0 ? multipart_decode(&f->mp, span, span_len, &took, &out, &out_len) : MULTIPART_MORE;
    if (mrc == MULTIPART_ERR) {
      conn_fail_upload(c, 400, f->mp.error);
      return;
    }
    if (took < span_len) {
      /* The form decoder stopped inside the span: so does the transport. */
      end = false;
      if (c->chunked) {
        size_t lim = (size_t)(span - data) + took;
        const uint8_t *o;
        size_t n;
        c->chunk = chunk_before;
        (void)chunked_decode(&c->chunk, data, lim, &used, &o, &n);
      } else {
        used = took;
      }
    }
    int rc = STORAGE_OK;
    if (mrc == MULTIPART_FILE && !conn_form_file(c, f)) {
      return; /* refused */
    }
    if (mrc == MULTIPART_DATA) {
      rc = conn_sink(c, out, out_len);
    }
    if (rc == STORAGE_PENDING) {
      c->chunk = chunk_before;
      multipart_rewind(&f->mp, &f->mark);
      return;
    }
    if (rc != STORAGE_OK) {
      conn_fail_upload(c, rc == STORAGE_ENOSPC ? 413 : 500,
                       rc == STORAGE_ENOSPC ? "storage quota exceeded while streaming" : "storage error");
      return;
    }
    digest_sha256_update(&f->body_sha, span, took);
    if (!c->chunked) {
      c->body_left -= used;
    }
    conn_consume(c, used);
    done = end;
    if (f->open_pending) {
      break; /* decoded and consumed: the open is called again first */
    }
  }
  if (done) {
    conn_form_end(c, f);
  }
}

/** The connection answered or closes: the head copy goes back to lwIP's heap. */
void conn_form_release(conn_t *c)
{
  conn_form_t *f = c->form;
  if (f != NULL && f->owner == c && f->head != NULL) {
    mem_free(f->head);
    f->head = NULL;
  }
}

#else /* POSTERN_FORM_UPLOADS == 0: no form uploads, POST /files/ is a 405 (http_request.c never starts one) */
bool conn_form_wanted(const conn_t *c, const char *head)
{
  (void)c;
  (void)head;
  return false;
}

void conn_form_begin(conn_t *c, const char *head, const char *path, policy_str_t query)
{
  (void)head;
  (void)path;
  (void)query;
  conn_refuse(c, 405, "form uploads are not built into this firmware");
}

void conn_form_feed(conn_t *c)
{
  conn_fail_upload(c, 500, "form uploads are not built into this firmware");
}

void conn_form_release(conn_t *c)
{
  (void)c;
}
#endif
