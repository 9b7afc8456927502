/* http_conn.c: postern's HTTP/1.1 server on altcp: the connection's life, and the state machine that runs a
 * request through its stages.
 *
 * The road of an upload, file by file:
 *   http_conn.c     conn_on_recv(): bytes arrive from lwIP and join c->rx, bounded
 *                   in pool pbufs; altcp_recved() opens the window only for what
 *                   a stage consumed. conn_process() runs the stage of c->state:
 *   http_request.c  CONN_HEAD: the incremental parser reads the head, never
 *                   twice; conn_on_head() checks, routes and hands it to the Lua
 *                   policy before one body byte is read, and answers a refusal
 *                   (417 or the policy's status);
 *   http_upload.c   CONN_OPEN: storage opens the upload (its reservation), then
 *                   100 Continue; CONN_BODY: body bytes stream through the
 *                   chunked decoder and SHA-256 into storage; CONN_COMMIT: the
 *                   digest check, the policy's last word, the atomic commit,
 *                   201/200;
 *   http_routes.c   downloads, the listing, /_status and DELETE;
 *   http_answer.c   every answer leaves through conn_respond_error() or
 *                   conn_send_ok(), then conn_after() picks keep-alive or a
 *                   lingering close (CONN_LINGER).
 * Any storage call may answer STORAGE_PENDING: the connection stays in its
 * state, keeps its unconsumed bytes (the window stays shut), and
 * storage_ready() runs it again.
 *
 * Memory: connection state comes from a fixed pool of POSTERN_MAX_CONNS; the
 * head is parsed in place from the pbufs, and copied into one shared bounded
 * buffer only when it spans pbufs (the decision is synchronous, so one copy
 * serves every connection).
 */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "ack_now.h"
#include "bench.h"
#include "http_status.h"
#include "listen.h"
#include "log.h"
#include "lwip/sys.h"
#include "pool_free.h"
#include "lwip_check.h"
#include "policy.h"
#if POSTERN_TLS
#include "tls.h"
#endif

/** Poll interval of lwIP's poll callback, in its 500 ms ticks: timeouts run once a second. */
#define CONN_POLL_TICKS 2
/** Received bytes a connection may hold unconsumed: the pool pbufs it may hold, full. */
#define CONN_RX_MAX (POSTERN_CONN_PBUFS_MAX * PBUF_POOL_BUFSIZE)
/** Pool pbufs an upload waiting on storage may hold: its window, compacted, and the segment being added. */
#define CONN_WAIT_PBUFS (TCP_WND / PBUF_POOL_BUFSIZE + 2)

/* Classes of connections that may give their slot to a new client, best first. */
typedef enum conn_evict {
  EVICT_NEVER = 0, /* a request in progress, an upload keeping its rate, a new client within its grace */
  EVICT_IDLE,      /* keep-alive between two requests: nothing is lost */
  EVICT_LINGER,    /* answered and closing, nothing more expected from the client */
  EVICT_DRAIN,     /* closing while the refused body still arrives: the client may yet read a reset */
  EVICT_HEAD,      /* a head unfinished (or not begun) past POSTERN_EVICT_GRACE_MS */
  EVICT_STARVED,   /* an upload below its minimum rate past the grace: it fails its deadline anyway */
} conn_evict_t;

static conn_t conn_pool[POSTERN_MAX_CONNS];
static uint32_t conn_active, conn_high_water;
/* Set when a callback had to abort its pcb: lwIP then needs ERR_ABRT back. */
static bool conn_aborted;
/* A head that spans pbufs is copied here to be decided: the decision is synchronous, one copy serves all. */
static char conn_head_buf[POSTERN_HEAD_MAX];
_Static_assert(CONN_RX_MAX > POSTERN_HEAD_MAX, "POSTERN_CONN_PBUFS_MAX pool pbufs must hold a whole request head");

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
  policy_stage_abort(c); /* a policy it was collecting is dropped */
  conn_form_release(c);  /* and a form upload's head copy */
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
void conn_close(conn_t *c)
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
void conn_consume(conn_t *c, size_t n)
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

bool conn_room(conn_t *c)
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
bool conn_storage_wait(conn_t *c, int rc)
{
  uint32_t now = sys_now();
  if (rc == STORAGE_PENDING) {
    if (!c->waiting) {
      c->waiting = true;
      c->wait_ms = now;
#if POSTERN_TLS
      tls_hold_window(c->pcb, true); /* what the window brings meanwhile is kept (conn_rx_bound) */
#endif
    }
    return true;
  }
  if (c->waiting) {
#if POSTERN_TLS
    tls_hold_window(c->pcb, false);
#endif
    uint32_t waited = now - c->wait_ms;
    c->body_ms += waited;
    c->rate_ms += waited;
    c->last_ms = now;
    c->waiting = false;
  }
  return false;
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

/*
 * Whether a connection takes p beside what it holds. At rest, or when the
 * client is the one that stalls (it does not read an answer, it pipelines),
 * up to the pool pbufs of POSTERN_CONN_PBUFS_MAX. While storage makes an
 * upload wait, the client is within the window it was offered, and what it
 * sends is kept (compacted, up to TCP_WND in CONN_WAIT_PBUFS) as long as the pool keeps
 * POSTERN_POOL_RESERVE pbufs for the others: a refusal makes lwIP drop the
 * segments that follow, and the client waits for its retransmission timer.
 * The window shuts as the held bytes fill it.
 */
static bool conn_rx_takes(const conn_t *c, const struct pbuf *p)
{
  uint32_t held = (uint32_t)c->rx->tot_len + p->tot_len;
  if (held <= CONN_RX_MAX) {
    return true;
  }
  bool upload_waits = c->waiting && (c->state == CONN_OPEN || c->state == CONN_BODY);
  return upload_waits && held <= TCP_WND && pbuf_clen(c->rx) + pbuf_clen(p) <= CONN_WAIT_PBUFS &&
         pool_free() >= POSTERN_POOL_RESERVE;
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
  if (c->rx != NULL && !conn_rx_takes(c, p) && !head_wants_more) {
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
  if (c->state == CONN_HEAD) {
    BENCH_DECISION_BEGIN();
  }
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
#if POSTERN_TLS
    struct altcp_pcb *pcb = c->pcb;
#endif
    if (c->state == CONN_SEND_FILE) {
      conn_pump(c);
    }
    if (c->state != CONN_FREE) {
      conn_process(c);
    }
#if POSTERN_TLS
    if (c->state != CONN_FREE && c->pcb == pcb) {
      tls_resume(pcb); /* no TLS callback is running to deliver what it held meanwhile */
    }
#endif
  }
  conn_aborted = false;
}

/* The medium made no progress for POSTERN_STORAGE_WAIT_S: the request fails, clearly, and nothing is stored. */
static void conn_storage_gave_up(conn_t *c)
{
  log_line("http: %s: storage did not answer for %us", c->name, POSTERN_STORAGE_WAIT_S);
  c->waiting = false;
#if POSTERN_TLS
  tls_hold_window(c->pcb, false);
#endif
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
  case CONN_COMMIT:
    /* The commit waits for room for its answer, which a client that reads nothing never makes. */
    if (idle >= POSTERN_BODY_TIMEOUT_S * 1000u) {
      log_line("http: %s: the client read nothing for %us; closed, nothing stored", c->name, POSTERN_BODY_TIMEOUT_S);
      conn_close(c);
    } else {
      conn_process(c);
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
    static const char *const what[] = {[EVICT_IDLE] = "idle keep-alive connection",
                                       [EVICT_LINGER] = "closing connection",
                                       [EVICT_DRAIN] = "drain",
                                       [EVICT_HEAD] = "unfinished head",
                                       [EVICT_STARVED] = "upload below its minimum rate"};
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
    return conn_refuse_busy(pcb); /* uploads in progress go on */
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

void http_close_all(void)
{
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (conn_pool[i].state != CONN_FREE) {
      struct altcp_pcb *pcb = conn_pool[i].pcb;
      conn_detach(pcb);
      conn_release(&conn_pool[i]);
      altcp_abort(pcb);
    }
  }
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
