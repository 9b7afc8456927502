/* http_conn.c: postern's HTTP/1.1 server on altcp: head -> policy decision -> body -> storage -> response.
 *
 * The road of a request (the altcp callbacks that start it sit at the bottom):
 *   1. conn_on_recv()       bytes arrive from lwIP and join c->rx; altcp_recved()
 *                           opens the window only for what a stage consumed;
 *   2. conn_feed_head()     the incremental parser reads them, never twice;
 *   3. conn_on_head()       the complete head is checked, routed, and handed to the
 *                           Lua policy, before one body byte is read; a refusal
 *                           is answered here (417 or the policy's status);
 *   4. conn_start_upload()  storage opens, then 100 Continue;
 *   5. conn_feed_body()     body bytes stream through the chunked decoder and
 *                           SHA-256 into storage;
 *   6. conn_end_upload()    digest check, the policy's last word, atomic commit,
 *                           201/200;
 *   Responses leave through conn_respond_error() and conn_send_ok(), then
 *   conn_after() picks keep-alive or a lingering close.
 *
 * Memory: connection state comes from a fixed pool of POSTERN_MAX_CONNS; the
 * head is parsed in place from the pbufs, and copied into one shared bounded
 * buffer only when it spans pbufs (the decision is synchronous, so one copy
 * serves every connection).
 */
#include "http_conn.h"

#include <stdbool.h>
#include <string.h>

#include "ack_now.h"
#include "chunked.h"
#include "digest.h"
#include "http_parser.h"
#include "http_response.h"
#include "http_status.h"
#include "listen.h"
#include "log.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "policy.h"
#include "postern_opts.h"
#include "storage.h"
#include "text.h"
#if POSTERN_TLS
#include "tls.h"
#endif

/** Poll interval of lwIP's poll callback, in its 500 ms ticks: timeouts run once a second. */
#define CONN_POLL_TICKS 2
/** Send-buffer room required before a response is rendered. */
#define CONN_RESP_ROOM 1536
/** Longest listing entry: a name the medium holds may predate the UTF-8 rule
 *  (or, on the host, be put there by hand), and each byte that is not UTF-8
 *  renders as \ufffd, six bytes. */
#define CONN_LIST_ENTRY_MAX (6 * POSTERN_NAME_MAX + 48)
/** Received bytes a connection may hold unconsumed: the pool pbufs it may hold, full. */
#define CONN_RX_MAX (POSTERN_CONN_PBUFS_MAX * PBUF_POOL_BUFSIZE)
/** Heap a queued segment costs beyond its data: the pbuf, its header room, the heap's own header. */
#define CONN_SEG_OVERHEAD 128
#if !MEM_STATS
#error "postern reads lwIP's heap use (MEM_STATS) to keep POSTERN_HEAP_RESERVE free"
#endif
/** Request line bytes kept for the access log. */
#define CONN_REQLINE_MAX 96

typedef enum conn_state {
  CONN_FREE = 0,
  CONN_HEAD,      /* reading a request head */
  CONN_OPEN,      /* an accepted upload waits for storage to open it; its 100 or answer waits too */
  CONN_BODY,      /* streaming an accepted upload body to storage */
  CONN_COMMIT,    /* the body is complete: the commit, then the answer */
  CONN_REMOVE,    /* a DELETE waits for storage */
  CONN_SEND_FILE, /* streaming a download */
  CONN_SEND_LIST, /* streaming the JSON listing */
  CONN_LINGER,    /* response sent, FIN sent; reading and dropping until the peer closes */
} conn_state_t;

/* Classes of connections that may give their slot to a new client, best first. */
typedef enum conn_evict {
  EVICT_NEVER = 0, /* a request in progress, an upload keeping its rate, a new client within its grace */
  EVICT_IDLE,      /* keep-alive between two requests: nothing is lost */
  EVICT_LINGER,    /* answered and closing, nothing more expected from the client */
  EVICT_DRAIN,     /* closing while the refused body still arrives: the client may yet read a reset */
  EVICT_HEAD,      /* a head unfinished (or not begun) past POSTERN_EVICT_GRACE_MS */
  EVICT_STARVED,   /* an upload below its minimum rate past the grace: it fails its deadline anyway */
} conn_evict_t;

typedef struct conn {
  struct altcp_pcb *pcb;
  conn_state_t state;
  bool keep_alive;   /* the request allows a next one on this connection */
  bool expect;       /* Expect: 100-continue was honoured */
  bool chunked;      /* the body uses the chunked coding */
  bool has_length;
  bool want_digest;  /* Content-Digest: sha-256 was sent */
  bool head_only;    /* HEAD: headers of a download without the bytes */
  bool served;       /* a response went out and the connection was kept: idle between requests */
  bool retry_due;    /* a retryable 417 was sent: the next request must be its retry */
  bool waiting;      /* a storage call answered STORAGE_PENDING; storage_ready() resumes */
  bool checked;      /* the complete body passed its digest and the policy's after-body check */
  bool replaced;     /* the commit replaced a version */
  struct pbuf *rx;   /* received bytes not consumed yet */
  uint16_t fed;      /* bytes of rx the head parser has seen */
  uint32_t last_ms;  /* last progress, for the timeouts */
  uint32_t head_ms;  /* first byte of the head being read: its deadline runs from here */
  uint32_t body_ms;  /* an upload's start, for its minimum rate */
  uint32_t rate_ms;  /* start of the upload's current rate window */
  uint64_t rate_bytes; /* body bytes at rate_ms */
  uint32_t linger_ms;   /* when the lingering close began */
  uint32_t wait_ms;     /* when the storage wait began */
  uint32_t linger_left; /* bytes it still reads and drops: past POSTERN_LINGER_MAX, a refused body */
  uint32_t retry_key;   /* method and target of the request a retryable 417 refused */
  hp_parser_t parser;
  hp_request_t req;
  uint64_t length;     /* announced body length */
  uint64_t body_left;  /* body bytes still to come (Content-Length) */
  uint64_t body_bytes; /* body bytes stored so far */
  chunked_t chunk;
  digest_sha256_t sha;
  uint8_t digest[DIGEST_SHA256_LEN]; /* the client's Content-Digest; once the body is in, its SHA-256 */
  storage_upload_t *upload;
  storage_reader_t *reader;
  uint64_t send_left; /* download or listing bytes still to send */
  uint32_t list_next; /* listing: next entry to render */
  uint16_t status;    /* final status, for the access log */
  char name[POSTERN_NAME_MAX + 1];
  char reqline[CONN_REQLINE_MAX];
} conn_t;

static conn_t conn_pool[POSTERN_MAX_CONNS];
static uint32_t conn_active, conn_high_water;
/* Set when a callback had to abort its pcb: lwIP then needs ERR_ABRT back. */
static bool conn_aborted;

/* Shared scratch, safe because everything runs in the one main loop. */
static char conn_head_buf[POSTERN_HEAD_MAX];
static char conn_out[1536];
static char conn_path[POSTERN_TARGET_MAX + 1];
static uint8_t conn_io[TCP_MSS];
_Static_assert(sizeof conn_io >= CONN_LIST_ENTRY_MAX, "a listing entry must fit conn_io whole");
_Static_assert(CONN_RX_MAX > POSTERN_HEAD_MAX, "POSTERN_CONN_PBUFS_MAX pool pbufs must hold a whole request head");

static void conn_process(conn_t *c);
static void conn_pump(conn_t *c);

/** Connections open right now. */
uint32_t http_conns_active(void)
{
  return conn_active;
}

/** The most connections ever open at once. */
size_t http_conn_slot_bytes(void)
{
  return sizeof(conn_t);
}

uint32_t http_conns_high_water(void)
{
  return conn_high_water;
}

/* ---- Connection life ---------------------------------------------------- */

/* Gives back everything a connection holds except its pcb. */
static void conn_release(conn_t *c)
{
  if (c->rx != NULL) {
    pbuf_free(c->rx);
    c->rx = NULL;
  }
  if (c->upload != NULL) {
    storage_abort(c->upload);
    c->upload = NULL;
  }
  if (c->reader != NULL) {
    storage_read_close(c->reader);
    c->reader = NULL;
  }
  c->state = CONN_FREE;
  c->waiting = false;
  c->pcb = NULL;
  conn_active--;
}

static void conn_detach(struct altcp_pcb *pcb)
{
  altcp_arg(pcb, NULL);
  altcp_recv(pcb, NULL);
  altcp_sent(pcb, NULL);
  altcp_err(pcb, NULL);
  altcp_poll(pcb, NULL, 0);
}

/* Closes the connection now; on a close failure the pcb is aborted. */
static void conn_close(conn_t *c)
{
  struct altcp_pcb *pcb = c->pcb;
  conn_detach(pcb);
  conn_release(c);
  if (altcp_close(pcb) != ERR_OK) {
    altcp_abort(pcb);
    conn_aborted = true;
  }
}

/* What a callback returns: ERR_ABRT when its pcb was aborted on the way. */
static err_t conn_cb_result(void)
{
  bool aborted = conn_aborted;
  conn_aborted = false;
  return aborted ? ERR_ABRT : ERR_OK;
}

/* Drops n bytes from the front of rx and opens the window by as much. */
static void conn_consume(conn_t *c, size_t n)
{
  c->rx = pbuf_free_header(c->rx, (u16_t)n);
  /* lwIP may leave a zero-length pbuf in a chain (a trimmed overlapping
   * segment): nothing would ever consume it, and the body loop would spin. */
  while (c->rx != NULL && c->rx->len == 0) {
    struct pbuf *empty = c->rx;
    c->rx = empty->next;
    empty->next = NULL;
    pbuf_free(empty);
  }
  while (n > 0) {
    u16_t part = n > 0xffff ? 0xffff : (u16_t)n;
    altcp_recved(c->pcb, part);
    n -= part;
  }
  c->last_ms = sys_now();
}

static bool conn_room(conn_t *c)
{
  return altcp_sndbuf(c->pcb) >= CONN_RESP_ROOM && altcp_sndqueuelen(c->pcb) < TCP_SND_QUEUELEN / 2;
}

/*
 * Notes what a storage call answered. STORAGE_PENDING starts or continues a
 * wait (storage_ready() resumes the connection, which makes the same call
 * again) and returns true. Any other answer ends a wait, and the time the
 * medium took is given back to the client's deadlines: a slow medium never
 * makes an upload look starved.
 */
static bool conn_storage_wait(conn_t *c, int rc)
{
  uint32_t now = sys_now();
  if (rc == STORAGE_PENDING) {
    if (!c->waiting) {
      c->waiting = true;
      c->wait_ms = now;
    }
    return true;
  }
  if (c->waiting) {
    uint32_t waited = now - c->wait_ms;
    c->body_ms += waited;
    c->rate_ms += waited;
    c->last_ms = now;
    c->waiting = false;
  }
  return false;
}

/* ---- Responses ---------------------------------------------------------- */

/* How a connection goes on after a response. */
typedef enum conn_after {
  AFTER_NEXT,   /* keep-alive: read the next request */
  AFTER_LINGER, /* close: FIN, then drop what still arrives for a while */
} conn_after_t;

static void conn_log(conn_t *c, const char *note)
{
  char ip[IPADDR_STRLEN_MAX] = "-";
  const ip_addr_t *peer = altcp_get_ip(c->pcb, 0);
  if (peer != NULL) {
    ipaddr_ntoa_r(peer, ip, sizeof ip);
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
  log_line("%s - - [%s] \"%s\" %u %llu%s%s", ip, date, c->reqline[0] ? c->reqline : "-", c->status,
           (unsigned long long)(c->body_bytes), note != NULL ? " " : "", note != NULL ? note : "");
}

/* Writes bytes into the send queue (copied); false when lwIP had no room. */
static bool conn_write(conn_t *c, const void *data, size_t len, bool more)
{
  err_t err = altcp_write(c->pcb, data, (u16_t)len, TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0));
  if (err != ERR_OK) {
    log_line("http: cannot queue %u response bytes (%d); closing", (unsigned)len, (int)err);
    return false;
  }
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
static void conn_linger_drop(conn_t *c)
{
  if (c->rx == NULL) {
    return;
  }
  uint32_t n = c->rx->tot_len;
  conn_consume(c, n);
  if (n > c->linger_left) {
    log_line("http: a closing connection sent more than its %u-byte budget; closed",
             (unsigned)(POSTERN_LINGER_MAX + POSTERN_DRAIN_MAX));
    conn_close(c);
    return;
  }
  c->linger_left -= n;
}

/* Enters the state that follows a response. */
static void conn_after(conn_t *c, conn_after_t after)
{
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
    hp_init(&c->parser, &c->req);
  }
}

/*
 * Sends a complete response with a JSON body in the seed's shape and logs
 * it. `close` adds Connection: close; the connection lingers and closes in
 * both cases unless `after` is AFTER_NEXT.
 */
static void conn_respond_error(conn_t *c, int status, const char *key, const char *message, bool close_header,
                               conn_after_t after, const char *challenge)
{
  wbuf_t b;
  wb_init(&b, conn_out, sizeof conn_out);
  http_head_t h = {.status = status, .close = close_header, .www_authenticate = challenge};
  if (status == 405) {
    h.allow = c->name[0] ? "GET, HEAD, PUT, DELETE" : "GET, HEAD";
  }
  http_render_error(&b, &h, key != NULL ? key : http_error_key(status), message);
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
static void conn_refuse(conn_t *c, int status, const char *message)
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
static bool conn_send_ok(conn_t *c, int status, const char *type, uint64_t length, const char *repr_digest,
                         const char *body, size_t body_len, uint64_t log_bytes, bool more)
{
  if (c->head_only) {
    body_len = 0;
    log_bytes = 0;
    more = false;
  }
  wbuf_t b;
  wb_init(&b, conn_out, sizeof conn_out);
  http_head_t h = {.status = status, .content_type = type, .content_length = length, .close = !c->keep_alive,
                   .repr_digest = repr_digest};
  http_render_head(&b, &h);
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

/* ---- 2. The head ---------------------------------------------------------- */

/* Feeds unparsed bytes of rx to the parser. Returns the parser's result. */
static int conn_feed_head(conn_t *c)
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

/* ---- 3. Routing and the decision ----------------------------------------- */

typedef enum conn_route { ROUTE_NONE, ROUTE_FILE, ROUTE_LIST, ROUTE_STATUS } conn_route_t;

/* Case-insensitive prefix test against a lower-case literal (URI schemes, RFC 3986 3.1). */
static bool conn_has_iprefix(const char *t, size_t n, const char *lit)
{
  size_t k = strlen(lit);
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
  if (strcmp(conn_path, "/_status") == 0) {
    return ROUTE_STATUS;
  }
  if (strcmp(conn_path, "/files") == 0 || strcmp(conn_path, "/files/") == 0) {
    return ROUTE_LIST;
  }
  if (strncmp(conn_path, "/files/", 7) == 0) {
    const char *name = conn_path + 7;
    size_t len = strlen(name);
    if (!text_name_ok(name, len)) {
      *status = 400;
      return ROUTE_NONE;
    }
    memcpy(c->name, name, len + 1);
    return ROUTE_FILE;
  }
  *status = 404;
  return ROUTE_NONE;
}

static void conn_peer(conn_t *c, char *out, size_t cap)
{
  const ip_addr_t *ip = altcp_get_ip(c->pcb, 0);
  wbuf_t b;
  wb_init(&b, out, cap - 1);
  char tmp[IPADDR_STRLEN_MAX];
  wb_str(&b, ip != NULL ? ipaddr_ntoa_r(ip, tmp, sizeof tmp) : "?");
  wb_str(&b, ":");
  wb_u64(&b, altcp_get_port(c->pcb, 0));
  out[b.len] = '\0';
}

#if POSTERN_TLS
/* A C string as a policy string; NULL stays absent (nil). */
static policy_str_t conn_str(const char *s)
{
  return s != NULL ? (policy_str_t){s, strlen(s)} : (policy_str_t){NULL, 0};
}
#endif

static void conn_start_download(conn_t *c);
static void conn_start_list(conn_t *c);
static void conn_send_status(conn_t *c);

/* Methods are case-sensitive (RFC 9110 9.1). */
static bool conn_method_is(const char *head, const hp_request_t *r, const char *method)
{
  size_t n = strlen(method);
  return r->method.len == n && memcmp(head + r->method.off, method, n) == 0;
}

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
static void conn_on_head(conn_t *c, const char *head)
{
  hp_request_t *r = &c->req;
  size_t rl = (size_t)(r->target.off + r->target.len - r->method.off) + 9;
  if (rl >= sizeof c->reqline) {
    rl = sizeof c->reqline - 1;
  }
  memcpy(c->reqline, head + r->method.off, rl);
  c->reqline[rl] = '\0';
  c->body_bytes = 0;
  c->head_only = conn_method_is(head, r, "HEAD");

  hp_meta_t m;
  int st = hp_analyze(r, head, &m);
  c->keep_alive = m.keep_alive;
  if (st != 0) {
    conn_refuse(c, st, st == 501 ? "only the chunked transfer coding is supported" : "malformed framing headers or Host");
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
  bool is_put = conn_method_is(head, r, "PUT");
  bool is_get = conn_method_is(head, r, "GET");
  bool is_delete = conn_method_is(head, r, "DELETE");

  if (route == ROUTE_NONE) {
    conn_respond_error(c, route_status, route_status == 400 ? "bad_name" : NULL,
                       route_status == 400 ? "file names: 1 to 64 bytes, no '/', '..', leading '.' or control bytes"
                                           : "no such route",
                       has_body, has_body ? AFTER_LINGER : AFTER_NEXT, NULL);
    return;
  }
  bool allowed = route == ROUTE_FILE ? (is_put || is_get || c->head_only || is_delete) : (is_get || c->head_only);
  if (!allowed) {
    conn_respond_error(c, 405, NULL, "method not allowed here", has_body, has_body ? AFTER_LINGER : AFTER_NEXT,
                       NULL);
    return;
  }
  if (expect == HP_EXPECT_OTHER) {
    /* RFC 9110 10.1.1: an expectation the server cannot meet. */
    conn_refuse(c, 417, "only the 100-continue expectation is supported");
    return;
  }
  if (is_put && !m.has_length && !m.chunked) {
    conn_refuse(c, 411, "an upload needs Content-Length or chunked");
    return;
  }
  if (!is_put && has_body) {
    conn_refuse(c, 400, "this request takes no body");
    return;
  }
  c->expect = is_put && expect == HP_EXPECT_CONTINUE;
  c->want_digest = false;
  int dh = hp_find(r, head, "content-digest");
  if (dh >= 0 && is_put) {
    int d = digest_parse_content_digest(head + r->headers[dh].value.off, r->headers[dh].value.len, c->digest);
    if (d < 0) {
      conn_refuse(c, 400, "malformed Content-Digest");
      return;
    }
    c->want_digest = d == 1;
  }

  /* The request as the policy sees it. */
  static policy_str_t names[POSTERN_MAX_HEADERS], values[POSTERN_MAX_HEADERS];
  for (int i = 0; i < r->n_headers; i++) {
    names[i] = (policy_str_t){head + r->headers[i].name.off, r->headers[i].name.len};
    values[i] = (policy_str_t){head + r->headers[i].value.off, r->headers[i].value.len};
  }
  char peer[IPADDR_STRLEN_MAX + 8];
  conn_peer(c, peer, sizeof peer);
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
    .has_length = m.has_length,
    .length = m.content_length,
    .expect = expect != HP_EXPECT_NONE
                ? (policy_str_t){head + r->headers[m.expect_hdr].value.off, r->headers[m.expect_hdr].value.len}
                : (policy_str_t){NULL, 0},
    .peer = {peer, strlen(peer)},
    .tls = tls,
  };
  static policy_decision_t d;
  policy_decide(&pr, &d);

  if (d.status != 100) {
    /* Refused: no 100 is ever sent; body bytes in flight are never parsed. */
    const char *key = d.policy_error ? "policy_error" : NULL;
    const char *challenge = d.status == 401 ? (d.www_authenticate[0] ? d.www_authenticate : "Bearer realm=\"postern\"")
                                            : NULL;
    if (d.status == 417 && d.retryable && c->expect && c->keep_alive) {
      /* The client sent no body: the connection stays open for its retry. */
      c->retry_due = true;
      c->retry_key = conn_request_key(head, r);
      conn_respond_error(c, 417, key, d.message, false, AFTER_NEXT, NULL);
      return;
    }
    conn_respond_error(c, d.status, key, d.message, has_body, has_body ? AFTER_LINGER : AFTER_NEXT, challenge);
    return;
  }
  if (d.name[0] != '\0' && route == ROUTE_FILE) {
    memcpy(c->name, d.name, sizeof c->name);
  }
  switch (route) {
  case ROUTE_FILE:
    if (is_put) {
      c->state = CONN_OPEN; /* conn_process opens it, once the head is consumed */
    } else if (is_delete) {
      c->state = CONN_REMOVE;
    } else {
      conn_start_download(c);
    }
    break;
  case ROUTE_LIST:
    conn_start_list(c);
    break;
  case ROUTE_STATUS:
    conn_send_status(c);
    break;
  case ROUTE_NONE:
    break;
  }
}

/* DELETE: removes the file, once storage takes the call. */
static void conn_remove(conn_t *c)
{
  int rc = storage_remove(c->name);
  if (conn_storage_wait(c, rc)) {
    return;
  }
  if (rc == STORAGE_OK) {
    if (conn_send_ok(c, 204, NULL, 0, NULL, NULL, 0, 0, false)) {
      conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
    }
    return;
  }
  conn_respond_error(c, rc == STORAGE_ENOENT ? 404 : 500, NULL, rc == STORAGE_ENOENT ? "no such file" : "storage error",
                     !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
}

/* ---- 4. Accepted uploads -------------------------------------------------- */

/* Opens the upload in storage (its reservation), then says 100 Continue. */
static void conn_open_upload(conn_t *c)
{
  int rc = storage_open(c->name, c->chunked ? STORAGE_LEN_UNKNOWN : c->length, &c->upload);
  if (conn_storage_wait(c, rc)) {
    return; /* the 100 waits for the reservation */
  }
  if (rc != STORAGE_OK) {
    c->upload = NULL;
    int status = rc == STORAGE_ENOSPC ? (c->length > storage_capacity() ? 413 : 507)
                 : rc == STORAGE_EBUSY ? 409
                                       : 500;
    const char *msg = rc == STORAGE_ENOSPC ? "not enough free space"
                      : rc == STORAGE_EBUSY ? "this name is being uploaded right now"
                                            : "storage error";
    /* With Expect, the client waits for 100 or a refusal: 417 says "not this way". */
    conn_refuse(c, c->expect ? 417 : status, msg);
    return;
  }
  digest_sha256_start(&c->sha);
  c->body_left = c->chunked ? 0 : c->length;
  chunked_init(&c->chunk);
  c->checked = false;
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
  }
}

/* ---- 5. The body ---------------------------------------------------------- */

/* Storage and the digest take one span of payload. Returns a storage result. */
static int conn_sink(conn_t *c, const uint8_t *data, size_t len)
{
  if (len == 0) {
    return STORAGE_OK;
  }
  int rc = storage_write(c->upload, data, len);
  if (conn_storage_wait(c, rc)) {
    return rc;
  }
  if (rc == STORAGE_OK) {
    digest_sha256_update(&c->sha, data, len);
    c->body_bytes += len;
  }
  return rc;
}

static void conn_commit(conn_t *c);
static bool conn_check_body(conn_t *c);

/* Aborts the upload after a failure mid-body and answers. */
static void conn_fail_upload(conn_t *c, int status, const char *msg)
{
  storage_abort(c->upload);
  c->upload = NULL;
  conn_refuse(c, status, msg);
}

/* Streams what rx holds of the body. */
static void conn_feed_body(conn_t *c)
{
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
                       rc == STORAGE_ENOSPC ? "storage quota exceeded while streaming" : "storage error");
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

/* ---- 6. Commit ------------------------------------------------------------ */

/*
 * The body is all in: once there is room for the answer, the digest and the
 * policy's after-body check (once), then the commit, which may be pending,
 * then the answer.
 */
static void conn_commit(conn_t *c)
{
  if (!conn_room(c)) {
    return; /* conn_on_sent comes back once there is room for the answer */
  }
  if (!c->checked && !conn_check_body(c)) {
    return;
  }
  int rc = storage_commit(c->upload, &c->replaced);
  if (conn_storage_wait(c, rc)) {
    return; /* the answer waits for the medium */
  }
  c->upload = NULL;
  if (rc != STORAGE_OK) {
    conn_respond_error(c, 500, "storage_error", "commit failed; the previous version is intact", true,
                       AFTER_LINGER, NULL);
    return;
  }
  char hex[2 * DIGEST_SHA256_LEN + 1];
  digest_hex(c->digest, sizeof c->digest, hex);
  char b64[DIGEST_SHA256_B64_LEN];
  digest_base64_encode(c->digest, sizeof c->digest, b64, sizeof b64);
  /* A stored name has no control bytes or backslashes: a quote is its only
   * byte that JSON escapes, to two. The reply always fits. */
  char body[2 * POSTERN_NAME_MAX + 2 * DIGEST_SHA256_LEN + 48];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_str(&j, "{\"name\":");
  wb_json_str(&j, c->name, strlen(c->name));
  wb_str(&j, ",\"size\":");
  wb_u64(&j, c->body_bytes);
  wb_str(&j, ",\"sha256\":\"");
  wb_str(&j, hex);
  wb_str(&j, "\"}\n");
  if (!conn_send_ok(c, c->replaced ? 200 : 201, "application/json", j.len, b64, body, j.len, c->body_bytes, false)) {
    return;
  }
  conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
}

/*
 * Checks the complete body: its SHA-256 against the client's Content-Digest,
 * then the policy's on_stored. False when it refused and answered; true with
 * the SHA-256 kept in c->digest.
 */
static bool conn_check_body(conn_t *c)
{
  uint8_t sum[DIGEST_SHA256_LEN];
  digest_sha256_finish(&c->sha, sum);
  if (c->want_digest && !digest_equal(sum, c->digest, sizeof sum)) {
    storage_abort(c->upload);
    c->upload = NULL;
    conn_respond_error(c, 400, "digest_mismatch", "Content-Digest does not match the body; nothing stored",
                       !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return false;
  }
  char hex[2 * DIGEST_SHA256_LEN + 1];
  digest_hex(sum, sizeof sum, hex);
  policy_request_t pr = {
    .method = {"PUT", 3},
    .path = {c->name, strlen(c->name)},
    .name = {c->name, strlen(c->name)},
    .version = {"HTTP/1.1", 8},
    .has_length = true,
    .length = c->body_bytes,
  };
  static policy_decision_t d;
  policy_after_body(&pr, c->body_bytes, hex, &d);
  if (d.status != 100) {
    storage_abort(c->upload);
    c->upload = NULL;
    conn_respond_error(c, d.status, d.policy_error ? "policy_error" : NULL, d.message, !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return false;
  }
  memcpy(c->digest, sum, sizeof sum);
  c->checked = true;
  return true;
}

/* ---- Downloads, listing, status ------------------------------------------- */

static void conn_start_download(conn_t *c)
{
  uint64_t size = 0;
  int rc = storage_read_open(c->name, &c->reader, &size);
  if (rc != STORAGE_OK) {
    c->reader = NULL;
    conn_respond_error(c, rc == STORAGE_ENOENT ? 404 : rc == STORAGE_EBUSY ? 503 : 500, NULL,
                       rc == STORAGE_ENOENT ? "no such file" : "storage busy or failing", !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  if (!conn_send_ok(c, 200, "application/octet-stream", size, NULL, NULL, 0, size, size > 0)) {
    return;
  }
  c->send_left = c->head_only ? 0 : size;
  c->state = CONN_SEND_FILE;
  conn_pump(c);
}

/*
 * The listing is a sequence of items, each rendered whole or not at all:
 * item 0 is `{"files":[`, items 1 to N the entries, item N + 1 the closing
 * `]}`. A render resumes at the item where the last one stopped.
 */
typedef struct conn_list_ctx {
  wbuf_t *b;
  uint32_t item; /* the entry being visited */
  uint32_t next; /* the first item not rendered yet */
  bool full;
} conn_list_ctx_t;

/* Appends one item whole, or marks the render full. */
static bool conn_list_put(conn_list_ctx_t *ctx, const char *s, size_t n)
{
  if (n > ctx->b->cap - ctx->b->len) {
    ctx->full = true;
    return false;
  }
  wb_mem(ctx->b, s, n);
  ctx->next++;
  return true;
}

static int conn_list_entry(void *arg, const char *name, uint64_t size)
{
  conn_list_ctx_t *ctx = arg;
  if (++ctx->item < ctx->next) {
    return 0; /* sent already */
  }
  char one[CONN_LIST_ENTRY_MAX];
  wbuf_t e;
  wb_init(&e, one, sizeof one);
  wb_str(&e, ctx->item == 1 ? "{\"name\":" : ",{\"name\":");
  wb_json_str(&e, name, strlen(name));
  wb_str(&e, ",\"size\":");
  wb_u64(&e, size);
  wb_str(&e, "}");
  return conn_list_put(ctx, one, e.len) ? 0 : 1;
}

/* Renders listing items from `from` on into b, while they fit; returns the next item. */
static uint32_t conn_list_render(wbuf_t *b, uint32_t from, bool *finished)
{
  static const char open[] = "{\"files\":[", close[] = "]}\n";
  conn_list_ctx_t ctx = {b, 0, from, false};
  *finished = false;
  if (from == 0 && !conn_list_put(&ctx, open, sizeof open - 1)) {
    return ctx.next;
  }
  storage_list(conn_list_entry, &ctx);
  if (!ctx.full && conn_list_put(&ctx, close, sizeof close - 1)) {
    *finished = true;
  }
  return ctx.next;
}

static void conn_start_list(conn_t *c)
{
  /* First pass: the length, for Content-Length. Every item fits an empty buffer. */
  uint64_t total = 0;
  uint32_t next = 0;
  bool finished = false;
  while (!finished) {
    wbuf_t b;
    wb_init(&b, (char *)conn_io, sizeof conn_io);
    next = conn_list_render(&b, next, &finished);
    total += b.len;
  }
  if (!conn_send_ok(c, 200, "application/json", total, NULL, NULL, 0, total, true)) {
    return;
  }
  c->send_left = c->head_only ? 0 : total;
  c->list_next = 0;
  c->state = CONN_SEND_LIST;
  conn_pump(c);
}

static void conn_send_status(conn_t *c)
{
  static char body[1200];
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  http_status_render(&j);
  if (j.overflow) {
    /* Never a cut document. */
    log_line("http: /_status does not fit its %u-byte buffer", (unsigned)sizeof body);
    conn_respond_error(c, 500, NULL, "the status document does not fit its buffer", !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  if (!conn_send_ok(c, 200, "application/json", j.len, NULL, body, j.len, j.len, false)) {
    return;
  }
  conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
}

/* Whether n more bytes of a streamed body may go into lwIP's heap, given the
 * send room the connection has: within its own bound, and only while the
 * reserve stays free for everyone's answers. */
static bool conn_heap_room(size_t room, size_t n)
{
  size_t queued = room < TCP_SND_BUF ? TCP_SND_BUF - room : 0;
  size_t used = lwip_stats.mem.used;
  size_t left = used < MEM_SIZE ? MEM_SIZE - used : 0;
  return queued + n <= POSTERN_SEND_MAX && left >= POSTERN_HEAP_RESERVE + n + CONN_SEG_OVERHEAD;
}

/* Moves download or listing bytes into the send buffer while it has room. */
static void conn_pump(conn_t *c)
{
  while (c->send_left > 0) {
    size_t room = altcp_sndbuf(c->pcb);
    if (room < CONN_LIST_ENTRY_MAX && room < c->send_left) { /* a listing entry goes whole */
      break;
    }
    if (altcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN - 2) {
      break;
    }
    size_t n = room < sizeof conn_io ? room : sizeof conn_io;
    if (n > c->send_left) {
      n = (size_t)c->send_left;
    }
    if (!conn_heap_room(room, n)) {
      break; /* conn_on_sent or conn_on_poll comes back */
    }
    if (c->state == CONN_SEND_FILE) {
      long got = storage_read(c->reader, conn_io, n);
      if (conn_storage_wait(c, (int)(got < 0 ? got : STORAGE_OK))) {
        break; /* storage_ready() pumps again */
      }
      if (got <= 0) {
        log_line("http: %s: read failed at %llu bytes left; closing", c->name, (unsigned long long)c->send_left);
        conn_close(c);
        return;
      }
      n = (size_t)got;
    } else {
      wbuf_t b;
      bool finished;
      wb_init(&b, (char *)conn_io, n);
      c->list_next = conn_list_render(&b, c->list_next, &finished);
      if (b.len == 0 || b.len > c->send_left) {
        log_line("http: the listing changed while it was sent; closing");
        conn_close(c);
        return;
      }
      n = b.len;
    }
    if (!conn_write(c, conn_io, n, c->send_left > n)) {
      conn_close(c);
      return;
    }
    c->send_left -= n;
    c->last_ms = sys_now();
  }
  altcp_output(c->pcb);
  if (c->send_left == 0) {
    if (c->reader != NULL) {
      storage_read_close(c->reader);
      c->reader = NULL;
    }
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}

/* ---- The state machine ---------------------------------------------------- */

/* Runs the connection as far as the received bytes and the send room allow. */
static void conn_process(conn_t *c)
{
  for (;;) {
    switch (c->state) {
    case CONN_HEAD: {
      if (c->rx == NULL || !conn_room(c)) {
        return;
      }
      int rc = conn_feed_head(c);
      if (rc == HP_MORE) {
        /* The head goes on in the next segment, and nothing was consumed to
         * reopen the window: without an ACK now, a sender with one segment in
         * flight waits for lwIP's delayed-ACK tick (250 ms per head). */
        ack_now(c->pcb);
        return;
      }
      if (rc != HP_DONE) {
        c->keep_alive = false;
        if (c->reqline[0] == '\0') {
          memcpy(c->reqline, "-", 2);
        }
        conn_refuse(c, hp_status_for(rc), rc == HP_ERR_SYNTAX ? "malformed request" : NULL);
        if (c->state == CONN_FREE) {
          return;
        }
        continue;
      }
      uint16_t len = c->req.head_len;
      const char *head;
      if (c->rx->len >= len) {
        head = c->rx->payload; /* in place: the head lies in one pbuf */
      } else {
        pbuf_copy_partial(c->rx, conn_head_buf, len, 0);
        head = conn_head_buf;
      }
      conn_on_head(c, head);
      if (c->state == CONN_FREE) {
        return;
      }
      if (c->rx != NULL && c->state != CONN_LINGER) {
        conn_consume(c, len); /* the head is done with; body bytes stay */
      }
      c->fed = 0;
      continue;
    }
    case CONN_OPEN:
      conn_open_upload(c);
      if (c->state == CONN_OPEN) {
        return;
      }
      continue;
    case CONN_BODY:
      if (c->rx == NULL && (c->chunked || c->body_left > 0)) {
        return;
      }
      conn_feed_body(c);
      if (c->state == CONN_BODY) {
        return;
      }
      continue;
    case CONN_COMMIT:
      conn_commit(c);
      if (c->state == CONN_COMMIT) {
        return;
      }
      continue;
    case CONN_REMOVE:
      conn_remove(c);
      if (c->state == CONN_REMOVE) {
        return;
      }
      continue;
    case CONN_LINGER:
      conn_linger_drop(c);
      return;
    default: /* CONN_SEND_*: pipelined requests wait for the response to finish */
      return;
    }
  }
}

/* ---- altcp callbacks ------------------------------------------------------- */

/*
 * Received data a connection holds is bounded in pool pbufs, whatever its
 * segmentation: lwIP gives one pbuf per segment, so a client dripping
 * one-byte segments would otherwise hold one pbuf per byte and empty the
 * pool for everyone. A chain longer than POSTERN_CONN_PBUFS_MAX is copied
 * into as few pool pbufs as its bytes need (a head of up to POSTERN_HEAD_MAX
 * fits in two).
 */
static void conn_rx_compact(conn_t *c)
{
  if (c->rx == NULL || pbuf_clen(c->rx) <= POSTERN_CONN_PBUFS_MAX) {
    return;
  }
  struct pbuf *q = pbuf_alloc(PBUF_RAW, c->rx->tot_len, PBUF_POOL);
  if (q == NULL) {
    return; /* the pool is empty right now: the refusal in conn_on_recv still bounds the chain */
  }
  pbuf_copy(q, c->rx);
  pbuf_free(c->rx);
  c->rx = q;
}

static err_t conn_on_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
  conn_t *c = arg;
  if (c == NULL) {
    if (p != NULL) {
      altcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (p == NULL || err != ERR_OK) {
    /* The peer closed (all it sent before is delivered by now). A whole
     * request still gets its answer, maybe once storage is done with it; an
     * unfinished upload is dropped, nothing partial is committed. */
    if (p != NULL) {
      pbuf_free(p);
    }
    bool body_in = c->state == CONN_COMMIT ||
                   (c->state == CONN_BODY && !c->chunked && c->rx != NULL && c->rx->tot_len >= c->body_left);
    if (c->state == CONN_SEND_FILE || c->state == CONN_SEND_LIST || c->state == CONN_REMOVE || body_in) {
      c->keep_alive = false;
      return ERR_OK;
    }
    if (c->state == CONN_BODY) {
      log_line("http: %s: client went away after %llu body bytes; nothing stored", c->name,
               (unsigned long long)c->body_bytes);
    }
    conn_close(c);
    return conn_cb_result();
  }
  if (p->tot_len == 0) {
    pbuf_free(p); /* nothing in it, and nothing would ever consume it */
    return ERR_OK;
  }
  bool head_wants_more = c->state == CONN_HEAD && c->rx != NULL && c->fed == c->rx->tot_len;
  if (c->rx != NULL && (uint32_t)c->rx->tot_len + p->tot_len > CONN_RX_MAX && !head_wants_more) {
    /* It holds what it cannot consume yet (an answer waits for send room,
     * or a non-reading client pipelines): lwIP keeps p, drops what follows
     * unacknowledged, and offers p again later. An unfinished head always
     * takes more: the parser ends it at POSTERN_HEAD_MAX. */
    return ERR_MEM;
  }
  uint32_t now = sys_now();
  if (c->rx == NULL) {
    c->rx = p;
    if (c->state == CONN_HEAD) {
      c->head_ms = now; /* the head's deadline runs from its first byte */
    }
  } else {
    pbuf_cat(c->rx, p);
  }
  c->last_ms = now;
  conn_process(c);
  if (c->state != CONN_FREE) {
    conn_rx_compact(c);
  }
  return conn_cb_result();
}

static err_t conn_on_sent(void *arg, struct altcp_pcb *pcb, u16_t len)
{
  conn_t *c = arg;
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(len);
  if (c == NULL) {
    return ERR_OK;
  }
  if (c->state == CONN_SEND_FILE || c->state == CONN_SEND_LIST) {
    conn_pump(c);
  }
  if (c->state != CONN_FREE) {
    conn_process(c); /* pipelined requests, or an answer that waited for room */
  }
  return conn_cb_result();
}

static void conn_on_err(void *arg, err_t err)
{
  conn_t *c = arg;
  if (c == NULL) {
    return;
  }
  if (c->upload != NULL) {
    log_line("http: %s: connection reset (%d) after %llu body bytes; nothing stored", c->name, (int)err,
             (unsigned long long)c->body_bytes);
  }
  conn_release(c); /* lwIP has freed the pcb already */
}

/*
 * storage_ready(), from storage_poll() in the main loop: every connection
 * that waits on storage makes its call again. Not inside an lwIP callback,
 * so an abort on the way needs no ERR_ABRT.
 */
void storage_ready(void)
{
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    conn_t *c = &conn_pool[i];
    if (c->state == CONN_FREE || !c->waiting) {
      continue;
    }
    if (c->state == CONN_SEND_FILE) {
      conn_pump(c);
    }
    if (c->state != CONN_FREE) {
      conn_process(c);
    }
  }
  conn_aborted = false;
}

/* The medium made no progress for POSTERN_STORAGE_WAIT_S: the request fails, clearly, and nothing is stored. */
static void conn_storage_gave_up(conn_t *c)
{
  log_line("http: %s: storage did not answer for %us", c->name, POSTERN_STORAGE_WAIT_S);
  c->waiting = false;
  switch (c->state) {
  case CONN_OPEN:
  case CONN_REMOVE:
    conn_refuse(c, 503, "storage is busy; try again later");
    break;
  case CONN_BODY:
  case CONN_COMMIT:
    conn_fail_upload(c, 500, "storage did not answer; nothing stored");
    break;
  default:
    conn_close(c);
    break;
  }
}

/* Timeouts, once a second: head completion, body inactivity, idle keep-alive, linger. */
static err_t conn_on_poll(void *arg, struct altcp_pcb *pcb)
{
  conn_t *c = arg;
  if (c == NULL) {
    altcp_abort(pcb);
    return ERR_ABRT;
  }
  uint32_t now = sys_now();
  uint32_t idle = now - c->last_ms;
  if (c->waiting) {
    /* The medium holds it, not the client: no client deadline runs. */
    if (now - c->wait_ms >= POSTERN_STORAGE_WAIT_S * 1000u) {
      conn_storage_gave_up(c);
    }
    return conn_cb_result();
  }
  switch (c->state) {
  case CONN_HEAD:
    if (c->rx == NULL && idle >= POSTERN_IDLE_TIMEOUT_S * 1000u) {
      conn_close(c);
    } else if (c->rx != NULL && now - c->head_ms >= POSTERN_HEAD_TIMEOUT_S * 1000u) {
      /* A deadline from the first byte, not an idle timer: dripping a byte
       * now and then does not keep a head open. */
      c->keep_alive = false;
      memcpy(c->reqline, "-", 2);
      conn_refuse(c, 408, "the request head did not arrive in time");
    } else if (c->rx != NULL) {
      conn_process(c); /* maybe waiting for send room */
    }
    break;
  case CONN_BODY:
    if (idle >= POSTERN_BODY_TIMEOUT_S * 1000u) {
      log_line("http: %s: no body bytes for %us after %llu; nothing stored", c->name, POSTERN_BODY_TIMEOUT_S,
               (unsigned long long)c->body_bytes);
      conn_fail_upload(c, 408, "the body stopped arriving; nothing stored");
    } else if (now - c->rate_ms >= POSTERN_BODY_RATE_S * 1000u) {
      /* Each window must bring POSTERN_BODY_MIN_BYTES: a body dripped a
       * byte at a time would hold its slot and its reservation for ever. */
      if (c->body_bytes - c->rate_bytes < POSTERN_BODY_MIN_BYTES) {
        log_line("http: %s: %llu body bytes in %us, below the minimum of %u; nothing stored", c->name,
                 (unsigned long long)(c->body_bytes - c->rate_bytes), POSTERN_BODY_RATE_S, POSTERN_BODY_MIN_BYTES);
        conn_fail_upload(c, 408, "the body is arriving too slowly; nothing stored");
      } else {
        c->rate_ms = now;
        c->rate_bytes = c->body_bytes;
      }
    }
    break;
  case CONN_SEND_FILE:
  case CONN_SEND_LIST:
    if (idle >= POSTERN_BODY_TIMEOUT_S * 1000u) {
      conn_close(c);
    } else {
      conn_pump(c);
      if (c->state == CONN_HEAD) {
        conn_process(c);
      }
    }
    break;
  case CONN_LINGER:
    /* Quiet for POSTERN_LINGER_S: the client has stopped sending, a close
     * resets nothing. A drain ends at POSTERN_DRAIN_S whatever the client does. */
    if (idle >= POSTERN_LINGER_S * 1000u || sys_now() - c->linger_ms >= POSTERN_DRAIN_S * 1000u) {
      conn_close(c);
    }
    break;
  default:
    break;
  }
  return conn_cb_result();
}

/* True when an upload's average rate since its start is below the minimum, past the grace time. */
static bool conn_body_starved(const conn_t *c, uint32_t now)
{
  uint32_t elapsed = now - c->body_ms;
  return elapsed >= POSTERN_EVICT_GRACE_MS &&
         c->body_bytes * POSTERN_BODY_RATE_S * 1000u < (uint64_t)POSTERN_BODY_MIN_BYTES * elapsed;
}

/* Whether, and how willingly, a connection gives its slot to a new client. */
static conn_evict_t conn_evict_class(const conn_t *c, uint32_t now)
{
  switch (c->state) {
  case CONN_HEAD:
    if (c->rx == NULL && c->served) {
      return EVICT_IDLE;
    }
    /* An unfinished head, or a client that has not spoken yet, past its grace. */
    return now - (c->rx != NULL ? c->head_ms : c->last_ms) >= POSTERN_EVICT_GRACE_MS ? EVICT_HEAD : EVICT_NEVER;
  case CONN_LINGER:
    return c->linger_left > POSTERN_LINGER_MAX ? EVICT_DRAIN : EVICT_LINGER;
  case CONN_BODY:
    return !c->waiting && conn_body_starved(c, now) ? EVICT_STARVED : EVICT_NEVER;
  default:
    return EVICT_NEVER;
  }
}

/* The time a connection's age is counted from, for "the oldest first". */
static uint32_t conn_since(const conn_t *c)
{
  if (c->state == CONN_BODY) {
    return c->body_ms;
  }
  return c->state == CONN_HEAD && c->rx != NULL ? c->head_ms : c->last_ms;
}

/*
 * Closes the connection that gives its slot most willingly (the best class,
 * then the oldest) for a new client; only TLS ones with tls_only. Returns
 * it, or NULL when every connection is busy with work: uploads in progress
 * always go on.
 */
static conn_t *conn_evict(bool tls_only)
{
  conn_t *victim = NULL;
  conn_evict_t best = EVICT_NEVER;
  uint32_t now = sys_now();
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    conn_t *c = &conn_pool[i];
    conn_evict_t k = conn_evict_class(c, now);
#if POSTERN_TLS
    if (tls_only && k != EVICT_NEVER && !tls_owns(c->pcb)) {
      continue;
    }
#endif
    if (k != EVICT_NEVER &&
        (victim == NULL || k < best || (k == best && (int32_t)(conn_since(c) - conn_since(victim)) < 0))) {
      victim = c;
      best = k;
    }
  }
  if (victim != NULL) {
    static const char *const what[] = {
      [EVICT_IDLE] = "idle keep-alive connection", [EVICT_LINGER] = "closing connection",
      [EVICT_DRAIN] = "drain", [EVICT_HEAD] = "unfinished head", [EVICT_STARVED] = "upload below its minimum rate"};
    if (best != EVICT_LINGER) {
      log_line("http: all %s slots taken: closing the oldest %s", tls_only ? "TLS" : "connection", what[best]);
    }
    if (best == EVICT_STARVED) {
      conn_fail_upload(victim, 408, "the body is arriving too slowly; nothing stored");
      if (victim->state != CONN_FREE) {
        conn_close(victim);
      }
    } else {
      conn_close(victim);
    }
    conn_aborted = false; /* another pcb: the running callback's own is untouched */
  }
  return victim;
}

/* A slot for a new client: a free one, else one an idle or closing connection gives up. */
static conn_t *conn_take_slot(void)
{
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (conn_pool[i].state == CONN_FREE) {
      return &conn_pool[i];
    }
  }
  return conn_evict(false);
}

#if POSTERN_TLS
/* The TLS layer's hook: every session is taken and a new TLS client waits for one. */
static bool conn_reclaim_tls(void)
{
  return conn_evict(true) != NULL;
}
#endif

/* A new connection: a slot from the pool, or a quick 503 when every slot is busy. */
static err_t conn_on_accept(void *arg, struct altcp_pcb *pcb, err_t err)
{
  LWIP_UNUSED_ARG(arg);
  if (err != ERR_OK || pcb == NULL) {
    return ERR_VAL;
  }
  conn_t *c = conn_take_slot();
  if (c == NULL) {
    /* Every slot is busy: say so in one segment and close; uploads in progress go on. */
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
  memset(c, 0, sizeof *c);
  c->pcb = pcb;
  c->state = CONN_HEAD;
  c->keep_alive = true;
  c->last_ms = sys_now();
  hp_init(&c->parser, &c->req);
  conn_active++;
  if (conn_active > conn_high_water) {
    conn_high_water = conn_active;
  }
  altcp_arg(pcb, c);
  altcp_recv(pcb, conn_on_recv);
  altcp_sent(pcb, conn_on_sent);
  altcp_err(pcb, conn_on_err);
  altcp_poll(pcb, conn_on_poll, CONN_POLL_TICKS);
  altcp_setprio(pcb, TCP_PRIO_MIN);
  return ERR_OK;
}

/** Listens on `port` with connections made by `alloc` (NULL: plain TCP). */
err_t http_listen(altcp_allocator_t *alloc, uint16_t port)
{
#if POSTERN_TLS
  tls_set_reclaim(conn_reclaim_tls);
#endif
  err_t err = listen_on(alloc, port, conn_on_accept, NULL);
  if (err == ERR_OK) {
    http_status_boot();
  }
  return err;
}
