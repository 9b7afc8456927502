/* http_upload.c: an accepted upload: storage opens (the reservation), 100 Continue, the body through the chunked decoder and SHA-256 into storage, the digest check, the commit, 201/200. */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "ack_now.h"
#include "bench.h"
#include "digest.h"
#include "http_response.h"
#include "log.h"
#include "lwip/sys.h"
#include "policy.h"
#include "policy_store.h"
#include "storage.h"
#include "text.h"

/* Opens the upload in storage (its reservation), then says 100 Continue. */
void conn_open_upload(conn_t *c)
{
  if (c->to_policy) {
    /* A policy goes to the policy's own buffer, one at a time; with Expect, 417 says "not this way". */
    if (!c->chunked && c->length > policy_stage_room()) {
      conn_refuse(c, c->expect ? 417 : 413, "larger than the room of GET /_policy");
      return;
    }
    if (!policy_stage_begin(c)) {
      conn_refuse(c, c->expect ? 417 : 409, "another one is being uploaded");
      return;
    }
  }
  /* A form upload opens storage once its file part names the file (http_form.c). */
  int rc = c->to_policy || c->form != NULL
               ? STORAGE_OK
               : storage_open(c->name, c->chunked ? STORAGE_LEN_UNKNOWN : c->length, &c->upload);
  if (conn_storage_wait(c, rc)) {
    return; /* the 100 waits for the reservation */
  }
  if (rc != STORAGE_OK) {
    c->upload = NULL;
    int status = rc == STORAGE_ENOSPC ? (c->length > storage_capacity() ? 413 : 507) : rc == STORAGE_EBUSY ? 409 : 500;
    const char *msg = rc == STORAGE_ENOSPC  ? "not enough free space"
                      : rc == STORAGE_EBUSY ? "this name is being uploaded right now"
                                            : "storage error";
    /* With Expect, the client waits for 100 or a refusal: 417 says "not this way". */
    conn_refuse(c, c->expect ? 417 : status, msg);
    return;
  }
  if (!c->to_policy && !conn_preconditions_still_hold(c)) {
    storage_abort(c->upload);
    c->upload = NULL;
    conn_refuse(c, 412, "the file changed while the upload waited for storage");
    return;
  }
  if (c->hash) {
    digest_sha256_start(&c->sha);
  }
  c->body_left = c->chunked ? 0 : c->length;
  chunked_init(&c->chunk);
  c->checked = false;
  c->sha_done = false;
  c->state = CONN_BODY;
  c->body_ms = c->rate_ms = sys_now();
  c->rate_bytes = 0;
  /* When lwIP runs out of pcbs it kills the lowest priority first: never an upload. */
  altcp_setprio(c->pcb, TCP_PRIO_MAX);
  if (c->expect) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!conn_write(c, cont, sizeof cont - 1, false)) {
      conn_close(c);
      return;
    }
    altcp_output(c->pcb);
  } else {
    /* No 100 Continue carries the head's ACK: send it now, or a sender in
     * slow start (one segment in flight) waits for lwIP's delayed-ACK tick. */
    ack_now(c->pcb);
    BENCH_DECISION_END();
  }
}

/* Storage and the digest take one span of payload. Returns a storage result. */
int conn_sink(conn_t *c, const uint8_t *data, size_t len)
{
  if (len == 0) {
    return STORAGE_OK;
  }
  int rc = !c->to_policy                      ? storage_write(c->upload, data, len)
           : policy_stage_write(c, data, len) ? STORAGE_OK
                                              : STORAGE_ENOSPC;
  if (conn_storage_wait(c, rc)) {
    return rc;
  }
  if (rc == STORAGE_OK) {
    if (c->hash) {
      digest_sha256_update(&c->sha, data, len);
    }
    c->body_bytes += len;
  }
  return rc;
}

/* Aborts the upload after a failure mid-body and answers. */
void conn_fail_upload(conn_t *c, int status, const char *msg)
{
  policy_stage_abort(c);
  storage_abort(c->upload);
  c->upload = NULL;
  conn_refuse(c, status, msg);
}

/* Streams what rx holds of the body. */
void conn_feed_body(conn_t *c)
{
  if (c->form != NULL) {
    conn_form_feed(c);
    return;
  }
  bool done = !c->chunked && c->body_left == 0;
  while (!done && c->rx != NULL) {
    struct pbuf *q = c->rx;
    const uint8_t *data = q->payload;
    size_t used, out_len = 0;
    const uint8_t *out = NULL;
    chunked_t before = c->chunk; /* a pending write decodes the same bytes again */
    int rc;
    if (c->chunked) {
      rc = chunked_decode(&c->chunk, data, q->len, &used, &out, &out_len);
      if (rc == CHUNKED_ERR) {
        conn_fail_upload(c, 400, "malformed chunked body");
        return;
      }
      done = rc == CHUNKED_DONE;
    } else {
      used = q->len < c->body_left ? q->len : (size_t)c->body_left;
      out = data;
      out_len = used;
      done = used == c->body_left;
    }
    rc = conn_sink(c, out, out_len);
    if (rc == STORAGE_PENDING) {
      /* The bytes stay in rx and the window stays shut until storage_ready(). */
      c->chunk = before;
      return;
    }
    if (rc != STORAGE_OK) {
      conn_fail_upload(c, rc == STORAGE_ENOSPC ? (c->chunked ? 413 : 507) : 500,
                       rc != STORAGE_ENOSPC ? "storage error"
                       : c->to_policy       ? "larger than the room of GET /_policy"
                                            : "storage quota exceeded while streaming");
      return;
    }
    if (!c->chunked) {
      c->body_left -= used;
    }
    conn_consume(c, used);
  }
  if (done) {
    c->state = CONN_COMMIT;
    conn_commit(c);
  }
}

/*
 * Checks the complete body: its SHA-256 against the client's Content-Digest,
 * then the policy's on_stored. False when it refused and answered; true with
 * the SHA-256 kept in c->digest (when c->hash: an upload stored without a
 * digest has none).
 */
static bool conn_check_body(conn_t *c)
{
  uint8_t sum[DIGEST_SHA256_LEN] = {0};
  if (c->hash) {
    digest_sha256_finish(&c->sha, sum);
  }
  if (c->want_digest && !digest_equal(sum, c->digest, sizeof sum)) {
    policy_stage_abort(c);
    storage_abort(c->upload);
    c->upload = NULL;
    conn_respond_error(c, 400, "digest_mismatch", "Content-Digest does not match the body; nothing stored",
                       !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return false;
  }
  if (c->to_policy) {
    memcpy(c->digest, sum, sizeof sum); /* a policy's own checks come at its commit */
    c->checked = true;
    return true;
  }
  char hex[2 * DIGEST_SHA256_LEN + 1];
  text_hex(sum, sizeof sum, hex);
  policy_request_t pr = {
      .method = c->form != NULL ? (policy_str_t){"POST", 4} : (policy_str_t){"PUT", 3},
      .path = {c->name, strlen(c->name)},
      .name = {c->name, strlen(c->name)},
      .version = {"HTTP/1.1", 8},
      .has_length = true,
      .length = c->body_bytes,
  };
  policy_decision_t *d = &conn_decision;
  policy_after_body(&pr, c->body_bytes, c->hash ? hex : NULL, d);
  if (d->status != 100) {
    storage_abort(c->upload);
    c->upload = NULL;
    conn_respond_error(c, d->status, d->policy_error ? "policy_error" : NULL, d->message, !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return false;
  }
  memcpy(c->digest, sum, sizeof sum);
  c->sha_done = c->hash; /* digest = false: stored without one, no ETag */
  c->checked = true;
  return true;
}

/* PUT /_policy, its body all in: the check and the swap, then 200, or 422 and the old policy still runs. */
static void conn_commit_policy(conn_t *c)
{
  size_t peak = 0;
  if (policy_stage_commit(c, &peak) != 0) {
    const char *msg = policy_last_error();
    log_line("policy: replacement refused: %s", msg);
    conn_respond_error(c, 422, "policy_invalid", msg, !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  size_t len;
  const char *src = policy_running(&len, NULL, NULL, NULL);
  int kept = policy_store_save(src, len);
  char hex[2 * DIGEST_SHA256_LEN + 1];
  text_hex(c->digest, sizeof c->digest, hex);
  log_line("policy: replaced by %u bytes, sha256 %s, %s (Lua arena: %u bytes live, the check's peak %u)", (unsigned)len,
           hex,
           kept == POLICY_STORE_KEPT  ? "stored"
           : kept == POLICY_STORE_RAM ? "until reset"
                                      : "NOT STORED",
           (unsigned)policy_memory_live(), (unsigned)peak);
  char body[2 * DIGEST_SHA256_LEN + 120];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_lit(&j, "{\"name\":\"_policy\",\"bytes\":");
  wb_u64(&j, len);
  wb_lit(&j, ",\"sha256\":\"");
  wb_str(&j, hex);
  wb_str(&j, kept == POLICY_STORE_KEPT ? "\",\"stored\":true,\"lua_check_peak\":"
                                       : "\",\"stored\":false,\"lua_check_peak\":");
  wb_u64(&j, peak);
  wb_lit(&j, "}\n");
  if (conn_send_ok(c, 200, "application/json", j.len, NULL, body, j.len, c->body_bytes, false)) {
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}

#if POSTERN_CONFIG_ROUTE
/* PUT /_config, its body all in: the settings parsed, the policy rebuilt with them, then 200, or 400/422. */
static void conn_commit_config(conn_t *c)
{
  int rc = policy_stage_commit_config(c);
  if (rc != 0) {
    const char *msg = policy_last_error();
    log_line("policy: settings refused: %s", msg);
    conn_respond_error(c, rc == -1 ? 400 : 422, rc == -1 ? "config_invalid" : "policy_invalid", msg, !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  const char *const *names, *const *values;
  int n = policy_settings(&names, &values);
  int kept = policy_store_save_config(names, values, n);
  log_line("policy: %d settings replaced, %s", n,
           kept == POLICY_STORE_KEPT  ? "stored for the next boot"
           : kept == POLICY_STORE_RAM ? "kept until reset"
                                      : "NOT STORED");
  char body[48];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_lit(&j, "{\"settings\":");
  wb_u64(&j, (uint64_t)n);
  wb_str(&j, kept == POLICY_STORE_KEPT ? ",\"stored\":true}\n" : ",\"stored\":false}\n");
  if (conn_send_ok(c, 200, "application/json", j.len, NULL, body, j.len, c->body_bytes, false)) {
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}
#endif

/*
 * The body is all in: once there is room for the answer, the digest and the
 * policy's after-body check (once), then the commit, which may be pending,
 * then the answer.
 */
void conn_commit(conn_t *c)
{
  if (!conn_room(c)) {
    return; /* conn_on_sent comes back once there is room for the answer */
  }
  if (!c->checked) {
    if (!conn_check_body(c)) {
      return;
    }
    if (c->sha_done) {
      storage_set_sha256(c->upload, c->digest); /* stored with the commit: the file's ETag */
    }
  }
#if POSTERN_CONFIG_ROUTE
  if (c->to_config) {
    conn_commit_config(c);
    return;
  }
#endif
  if (c->to_policy) {
    conn_commit_policy(c);
    return;
  }
  int rc = storage_commit(c->upload, &c->replaced);
  if (conn_storage_wait(c, rc)) {
    return; /* the answer waits for the medium */
  }
  c->upload = NULL;
  if (rc != STORAGE_OK) {
    conn_respond_error(c, 500, "storage_error", "commit failed; the previous version is intact", true, AFTER_LINGER,
                       NULL);
    return;
  }
  char b64[DIGEST_SHA256_B64_LEN];
  if (c->sha_done) {
    cond_etag(c->digest, conn_etag);
  }
  /* A stored name has no control bytes or backslashes: a quote is its only
   * byte that JSON escapes, to two. The reply always fits. */
  char body[2 * POSTERN_NAME_MAX + 2 * DIGEST_SHA256_LEN + 48];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_lit(&j, "{\"name\":");
  wb_json_str(&j, c->name, strlen(c->name));
  wb_lit(&j, ",\"size\":");
  wb_u64(&j, c->body_bytes);
  if (c->hash) {
    char hex[2 * DIGEST_SHA256_LEN + 1];
    text_hex(c->digest, sizeof c->digest, hex);
    digest_base64_encode(c->digest, sizeof c->digest, b64, sizeof b64);
    wb_lit(&j, ",\"sha256\":\"");
    wb_str(&j, hex);
    wb_lit(&j, "\"");
  }
  wb_lit(&j, "}\n");
  if (!conn_send_ok(c, c->replaced ? 200 : 201, "application/json", j.len, c->hash ? b64 : NULL, body, j.len,
                    c->body_bytes, false)) {
    return;
  }
  conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
}
