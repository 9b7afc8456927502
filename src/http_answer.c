/* http_answer.c: the answer's road back: status line, head and body into the send queue, the access log, then keep-alive or a lingering close. */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "bench.h"
#include "http_response.h"
#include "http_status.h"
#include "log.h"
#include "lwip/ip_addr.h"
#include "lwip/sys.h"
#include "platform.h"
#include "text.h"

static char conn_out[1536]; /* one response head at a time: everything runs in the one main loop */
char conn_etag[COND_ETAG_LEN + 1];
char conn_content_range[48];
bool conn_accept_ranges;

/* The file facts of one answer are used once. */
static void conn_file_facts_clear(void)
{
  conn_etag[0] = conn_content_range[0] = '\0';
  conn_accept_ranges = false;
}

static void conn_log(conn_t *c, const char *note)
{
  char ip[IPADDR_STRLEN_MAX] = "-";
  const ip_addr_t *peer = altcp_get_ip(c->pcb, 0);
  if (peer != NULL) {
    text_lower(ipaddr_ntoa_r(peer, ip, sizeof ip));
  }
  char date[32] = "-";
  uint64_t now;
  if (platform_unix_time(&now)) {
    /* Common Log Format wants [22/Nov/2026:04:35:00 +0000]; rebuild it from the IMF date. */
    char imf[30];
    http_format_date(imf, now);
    memcpy(date, imf + 5, 2);
    date[2] = '/';
    memcpy(date + 3, imf + 8, 3);
    date[6] = '/';
    memcpy(date + 7, imf + 12, 4);
    date[11] = ':';
    memcpy(date + 12, imf + 17, 8);
    memcpy(date + 20, " +0000", 7);
  }
  /* Built by hand: printf's formatting was a third of a refusal's cost on a Cortex-M3. */
  char line[320];
  wbuf_t b;
  wb_init(&b, line, sizeof line);
  wb_str(&b, ip);
  wb_lit(&b, " - - [");
  wb_str(&b, date);
  wb_lit(&b, "] \"");
  wb_str(&b, c->reqline[0] ? c->reqline : "-");
  wb_lit(&b, "\" ");
  wb_u64(&b, c->status);
  wb_lit(&b, " ");
  wb_u64(&b, c->body_bytes);
  if (note != NULL) {
    wb_lit(&b, " ");
    size_t n = 0;
    while (n < b.cap - b.len && note[n] != '\0') {
      n++;
    }
    wb_mem(&b, note, n); /* cut where the line ends */
  }
  log_write(b.p, b.len);
}

/* Writes bytes into the send queue (copied); false when lwIP had no room. */
bool conn_write(conn_t *c, const void *data, size_t len, bool more)
{
  err_t err = altcp_write(c->pcb, data, (u16_t)len, TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0));
  if (err != ERR_OK) {
    log_line("http: cannot queue %u response bytes (%d); closing", (unsigned)len, (int)err);
    return false;
  }
  BENCH_DECISION_END();
  return true;
}

/* Announced body bytes of the request that were not read (UINT64_MAX: chunked, not finished). */
static uint64_t conn_body_unread(const conn_t *c)
{
  if (c->state == CONN_COMMIT) {
    return 0;
  }
  if (c->chunked) {
    return UINT64_MAX;
  }
  if (c->state == CONN_BODY) {
    return c->body_left;
  }
  return c->has_length ? c->length : 0;
}

/* Reads and drops what rx holds during a lingering close; closes once its byte budget is spent. */
void conn_linger_drop(conn_t *c)
{
  if (c->rx == NULL) {
    return;
  }
  uint32_t n = c->rx->tot_len;
  conn_consume(c, n);
  if (n > c->linger_left) {
    log_line("http: a closing connection sent more than its body (drained up to %u KiB) and %u KiB; closed",
             (unsigned)(POSTERN_DRAIN_MAX / 1024u), (unsigned)(POSTERN_LINGER_MAX / 1024u));
    conn_close(c);
    return;
  }
  c->linger_left -= n;
}

/* Enters the state that follows a response. */
void conn_after(conn_t *c, conn_after_t after)
{
  conn_form_release(c);
  altcp_output(c->pcb);
  altcp_setprio(c->pcb, TCP_PRIO_MIN); /* nothing in progress that a pcb shortage should spare */
  if (after == AFTER_LINGER) {
    /* Half-close: the response and a FIN go out, and whatever the client
     * still sends is read and dropped, so no reset can destroy the response.
     * A refused body is drained whole (up to POSTERN_DRAIN_MAX): clients that
     * write all of it before they read (Go, Node) then see the answer. */
    uint64_t unread = conn_body_unread(c);
    altcp_shutdown(c->pcb, 0, 1);
    c->state = CONN_LINGER;
    c->linger_ms = sys_now();
    c->linger_left = POSTERN_LINGER_MAX + (uint32_t)(unread < POSTERN_DRAIN_MAX ? unread : POSTERN_DRAIN_MAX);
    conn_linger_drop(c);
  } else if (after == AFTER_NEXT) {
    c->state = CONN_HEAD;
    c->served = true;
    c->head_ms = sys_now(); /* a pipelined head already in rx starts now */
    c->fed = 0;
    c->reqline[0] = '\0';
    c->head_only = false;
    c->has_length = false;
    c->chunked = false;
    c->length = 0;
    c->origin[0] = '\0';
    hp_init(&c->parser, &c->req);
  }
}

/*
 * Sends a complete response with a JSON body in the seed's shape and logs
 * it. `close` adds Connection: close; the connection lingers and closes in
 * both cases unless `after` is AFTER_NEXT.
 */
void conn_respond_error(conn_t *c, int status, const char *key, const char *message, bool close_header,
                        conn_after_t after, const char *challenge)
{
  wbuf_t b;
  wb_init(&b, conn_out, sizeof conn_out);
  http_head_t h = {.status = status,
                   .close = close_header,
                   .www_authenticate = challenge,
                   .content_range = conn_content_range[0] ? conn_content_range : NULL,
                   .allow_origin = c->origin[0] ? c->origin : NULL};
  if (status == 405) {
    h.allow = c->name[0]      ? "GET, HEAD, PUT, DELETE"
              : c->to_policy  ? "GET, HEAD, PUT"
              : c->list_route ? "GET, HEAD, POST"
                              : "GET, HEAD";
  }
  http_render_error(&b, &h, key != NULL ? key : http_error_key(status), message);
  conn_file_facts_clear();
  c->status = (uint16_t)status;
  http_status_count(status);
  conn_log(c, message != NULL && message[0] ? message : NULL);
  /* RFC 9110 9.3.2: a response to HEAD carries no content, or keep-alive desyncs. */
  size_t len = c->head_only ? b.len - (size_t)h.content_length : b.len;
  if (!conn_write(c, b.p, len, false)) {
    conn_close(c);
    return;
  }
  conn_after(c, after);
}

/* The usual refusal of a request whose body may follow: answer and close. */
void conn_refuse(conn_t *c, int status, const char *message)
{
  conn_respond_error(c, status, NULL, message, true, AFTER_LINGER, NULL);
}

/*
 * Sends a success head plus an optional short body, counts and logs it
 * (log_bytes: the bytes the log line reports; `more`: content follows). A
 * HEAD request gets the head alone. The body is queued from its own buffer,
 * so its size is never bounded by the head's. Returns false after closing
 * the connection when lwIP had no room.
 */
bool conn_send_ok(conn_t *c, int status, const char *type, uint64_t length, const char *repr_digest, const char *body,
                  size_t body_len, uint64_t log_bytes, bool more)
{
  if (c->head_only) {
    body_len = 0;
    log_bytes = 0;
    more = false;
  }
  wbuf_t b;
  wb_init(&b, conn_out, sizeof conn_out);
  http_head_t h = {.status = status,
                   .content_type = type,
                   .content_length = length,
                   .close = !c->keep_alive,
                   .repr_digest = repr_digest,
                   .etag = conn_etag[0] ? conn_etag : NULL,
                   .content_range = conn_content_range[0] ? conn_content_range : NULL,
                   .accept_ranges = conn_accept_ranges,
                   .allow_origin = c->origin[0] ? c->origin : NULL};
  http_render_head(&b, &h);
  conn_file_facts_clear();
  c->status = (uint16_t)status;
  http_status_count(status);
  uint64_t received = c->body_bytes;
  c->body_bytes = log_bytes;
  conn_log(c, NULL);
  c->body_bytes = received;
  if (!conn_write(c, b.p, b.len, more || body_len > 0) || (body_len > 0 && !conn_write(c, body, body_len, more))) {
    conn_close(c);
    return false;
  }
  return true;
}

/*
 * Sends a head the caller filled in (status, type, length, extra lines), with
 * the request's CORS origin and Connection: close as the connection needs;
 * counts and logs it. A HEAD request logs no content. Returns false after
 * closing the connection when lwIP had no room.
 */
bool conn_send_head(conn_t *c, http_head_t *h, bool more)
{
  wbuf_t b;
  wb_init(&b, conn_out, sizeof conn_out);
  h->close = !c->keep_alive;
  h->allow_origin = c->origin[0] ? c->origin : NULL;
  http_render_head(&b, h);
  c->status = (uint16_t)h->status;
  http_status_count(h->status);
  uint64_t received = c->body_bytes;
  c->body_bytes = c->head_only ? 0 : h->content_length;
  conn_log(c, NULL);
  c->body_bytes = received;
  if (!conn_write(c, b.p, b.len, more && !c->head_only)) {
    conn_close(c);
    return false;
  }
  return true;
}

/* Every slot is busy: a new connection gets 503 in one segment and a close, before it has a slot. */
err_t conn_refuse_busy(struct altcp_pcb *pcb)
{
  wbuf_t b;
  wb_init(&b, conn_out, sizeof conn_out);
  http_head_t h = {.status = 503, .close = true};
  http_render_error(&b, &h, "service_unavailable", "all connection slots are busy; try again");
  http_status_count(503);
  log_line("http: connection refused with 503: all %d slots busy", POSTERN_MAX_CONNS);
  if (altcp_write(pcb, b.p, (u16_t)b.len, TCP_WRITE_FLAG_COPY) != ERR_OK || altcp_close(pcb) != ERR_OK) {
    altcp_abort(pcb);
    return ERR_ABRT;
  }
  return ERR_OK;
}
