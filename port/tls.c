/* tls.c: postern's altcp TLS layer on mbedTLS 3.6: a server-side TLS 1.3/1.2 pcb that wraps an altcp_tcp pcb.
 *
 * Each accepted TCP connection (the inner pcb) gets a session from a pool of
 * POSTERN_MAX_TLS_CONNS; beyond it the connection is closed before any TLS
 * memory is taken. The outer pcb is what the application sees: its accept
 * callback runs once the handshake is complete, and it then reads and writes
 * plaintext through the usual altcp calls.
 *
 * Receiving: ciphertext pbufs queue in s->rx, and the window stays closed for
 *   them. The queue holds at most POSTERN_TLS_RX_PBUFS pool pbufs whatever
 *   the segmentation: small segments are copied together into a pbuf of the
 *   layer's own, and beyond the bound a segment is refused (lwIP keeps it).
 *   mbedTLS pulls them through tls_bio_recv() (s->taken counts what it
 *   took); they are acknowledged with altcp_recved() on the inner pcb only
 *   while the application holds less than POSTERN_TLS_RX_HELD_MAX plaintext
 *   bytes it has not consumed (altcp_recved() on the outer pcb), so a slow
 *   consumer closes the window within one record.
 * Plaintext: records are decrypted into one staged pool pbuf (s->plain) until
 *   it is full or nothing more is there, then handed up; the layer keeps a
 *   reference to each pbuf handed up (s->up) to see when the application lets
 *   go of it, and stages no more while POSTERN_TLS_PLAIN_PBUFS are out. So
 *   one-byte records cost one pool pbuf, not one each.
 * Sessions: a new connection takes a free session, else the session of the
 *   oldest handshake older than POSTERN_TLS_HANDSHAKE_GRACE_MS, else an idle
 *   one the application gives up (tls_set_reclaim); else it waits
 *   (POSTERN_TLS_ACCEPT_WAIT_S, first come, first served) or is closed.
 * Sending: altcp_write() on the outer pcb encrypts at once (records of at most
 *   MBEDTLS_SSL_OUT_CONTENT_LEN) and tls_bio_send() queues the ciphertext on
 *   the inner pcb; when lwIP has no room the record waits in mbedTLS's output
 *   buffer and is flushed from the inner sent and poll callbacks, while the
 *   outer sndbuf reads 0.
 * KeyUpdate (TLS 1.3): mbedTLS 3.6 refuses it as an unexpected message;
 *   tls_keyupdate.c applies it between two reads, and the KeyUpdate the peer
 *   may ask for goes out before any more application data, once mbedTLS's
 *   output buffer is free (s->key_update_owed until then).
 * Closing: close sends close_notify, then closes the inner pcb once mbedTLS's
 *   output is flushed; abort and errors tear everything down at once. Work
 *   that ends a connection inside a callback is finished when the callback
 *   unwinds (s->depth), so no state is freed under a caller's feet.
 */
#include "postern_opts.h"

#if POSTERN_TLS

#include "tls.h"

#include <string.h>

#include "arena.h"
#include "log.h"
#include "lwip/altcp_tcp.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/priv/altcp_priv.h"
#include "lwip/sys.h"
#include "pool_free.h"
#include "platform.h"
#include "text.h"
#include "tls_keyupdate.h"
/* ssl.h tests MBEDTLS_SSL_DTLS_CONNECTION_ID_COMPAT with #if after its own
 * config undefined it (no DTLS here): -Wundef stays quiet for these headers only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include "mbedtls/oid.h"
#include "mbedtls/pk.h"
#include "mbedtls/platform.h"
#include "mbedtls/psa_util.h"
#include "mbedtls/sha256.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"
#include "psa/crypto.h"
#pragma GCC diagnostic pop

/** Pool pbufs of ciphertext a held window may take: TCP_WND in full segments, and a partly filled own pbuf. */
#define TLS_RXQ_HOLD_PBUFS ((TCP_WND + TCP_MSS - 1) / TCP_MSS + 1)
/** Poll interval on the inner pcb while the application has none: 1 s. */
#define TLS_POLL_TICKS 2
/** Milliseconds a partial plaintext pbuf waits for more records while the
 *  application still holds plaintext (checked when bytes arrive and at each poll). */
#define TLS_PLAIN_QUIET_MS 200
/** Seconds a closing connection may take to flush before it is aborted. */
#define TLS_CLOSE_TIMEOUT_S 5

typedef enum tls_phase {
  TLS_FREE = 0,
  TLS_HANDSHAKE, /* no application yet */
  TLS_OPEN,      /* handed to the application */
  TLS_CLOSING,   /* the application let go: flushing, close_notify, then close */
} tls_phase_t;

/* Received bytes waiting to be taken, in at most POSTERN_TLS_RX_PBUFS pool
 * pbufs whatever the segmentation: a small segment is copied into the spare
 * room of a pbuf the layer allocated itself (own, always the last of the
 * chain, its room ending at own_end) and freed at once. */
typedef struct tls_rxq {
  struct pbuf *head;
  struct pbuf *own;
  uint8_t *own_end;
} tls_rxq_t;

typedef struct tls_session {
  tls_phase_t phase;
  struct altcp_pcb *outer, *inner;
  mbedtls_ssl_context ssl;
  tls_rxq_t rx;                             /* ciphertext not yet taken by mbedTLS */
  struct pbuf *plain;                       /* plaintext staged for the application, or refused by it (one pool pbuf) */
  struct pbuf *up[POSTERN_TLS_PLAIN_PBUFS]; /* pbufs handed up that the application may still hold */
  uint32_t plain_ms;                        /* when plain last grew */
  uint32_t taken;                           /* ciphertext taken by mbedTLS, not yet acknowledged */
  uint32_t held;                            /* plaintext delivered, not yet consumed by the application */
  uint32_t since_ms;                        /* start of the handshake or of the close */
  uint8_t depth;                            /* inner callbacks running for this session */
  bool rx_eof;                              /* the peer's FIN arrived */
  bool eof_seen;                            /* close_notify or the FIN was read: the end follows the staged bytes */
  bool eof_delivered;                       /* the application got its NULL pbuf */
  bool out_pending;                         /* a record waits in mbedTLS's output buffer */
  bool notify_sent;                         /* close_notify queued */
  bool shut_tx;                             /* the application half-closed (close_notify sent or pending) */
  bool doomed;                              /* tear down when the callbacks unwind */
  bool aborted;                             /* the inner pcb is gone (aborted or reset) */
  bool key_update_owed;                     /* the peer asked for a KeyUpdate, not sent yet: output was busy */
  bool hold;                                /* the application waits on something else: keep all the window brings */
  altcp_accept_fn accept;                   /* the listener's callback and argument */
  void *accept_arg;
  char subject[65];
  char fingerprint[65];
  bool has_peer;
} tls_session_t;

/* A TCP connection waiting for a session (POSTERN_TLS_ACCEPT_WAIT_S): its
 * bytes stay queued and unacknowledged until a session adopts it. */
typedef struct tls_waiting {
  struct altcp_pcb *inner;    /* NULL: the slot is free */
  struct altcp_pcb *listener; /* whose accept callback the session will call */
  tls_rxq_t rx;               /* the client's first bytes, not yet acknowledged */
  uint32_t since_ms;
  bool eof;
} tls_waiting_t;

static tls_session_t tls_sessions[POSTERN_MAX_TLS_CONNS];
#if POSTERN_TLS_ACCEPT_WAIT_S > 0
static tls_waiting_t tls_waiting[POSTERN_TLS_WAITING_MAX];
#endif
#if POSTERN_TLS_OWN_HEAP
static _Alignas(16) uint8_t tls_heap_mem[POSTERN_TLS_HEAP_SIZE];
static arena_t tls_heap;
#endif
static mbedtls_ssl_config tls_conf;
static mbedtls_x509_crt tls_cert, tls_ca;
static mbedtls_pk_context tls_key;
static bool tls_ready;
static uint32_t tls_active, tls_active_high, tls_handshakes, tls_failures, tls_refused;

static const struct altcp_functions tls_functions;
static altcp_allocator_t tls_alloc_obj;

/* ---- Heap and entropy ----------------------------------------------------- */

#if POSTERN_TLS_OWN_HEAP
static void *tls_heap_calloc(size_t n, size_t size)
{
  return arena_calloc(&tls_heap, n, size);
}

static void tls_heap_free(void *p)
{
  arena_free(&tls_heap, p);
}
#endif

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

/** The entropy source of mbedTLS (MBEDTLS_ENTROPY_HARDWARE_ALT): the board's platform_entropy(). */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
  (void)data;
  if (!platform_entropy(output, len)) {
    *olen = 0;
    return -1;
  }
  *olen = len;
  return 0;
}

/* ---- Small helpers -------------------------------------------------------- */

/* A short reason for the log, for the errors a client can cause. */
static const char *tls_reason(int rc)
{
  switch (rc) {
  case MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE:
    return "no common cipher suite or group";
  case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
    return "protocol version not supported (TLS 1.2 and 1.3 only)";
  case MBEDTLS_ERR_SSL_INVALID_RECORD:
    return "not a TLS record";
  case MBEDTLS_ERR_SSL_DECODE_ERROR:
    return "malformed handshake message";
  case MBEDTLS_ERR_SSL_CONN_EOF:
    return "peer closed the connection";
  case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
    return "fatal alert from the peer";
  case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
    return "no client certificate";
  case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
    return "client certificate not trusted";
  case MBEDTLS_ERR_SSL_ALLOC_FAILED:
    return "TLS heap exhausted";
  case MBEDTLS_ERR_SSL_INVALID_MAC:
    return "bad record MAC";
  case MBEDTLS_ERR_SSL_UNSUPPORTED_EXTENSION:
    return "unsupported extension";
  case MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER:
    return "illegal parameter";
  case MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE:
    return "unexpected message";
  default:
    return "TLS error";
  }
}

static void tls_log_peer(const tls_session_t *s, char *out, size_t cap)
{
  out[0] = '?';
  out[1] = '\0';
  if (s->inner != NULL) {
    const ip_addr_t *ip = altcp_get_ip(s->inner, 0);
    if (ip != NULL) {
      text_lower(ipaddr_ntoa_r(ip, out, (int)cap));
    }
  }
}

/* Acknowledges n bytes on the inner pcb. */
static void tls_ack(tls_session_t *s, uint32_t n)
{
  while (n > 0 && s->inner != NULL) {
    u16_t part = n > 0xffff ? 0xffff : (u16_t)n;
    altcp_recved(s->inner, part);
    n -= part;
  }
}

static void tls_inner_detach(struct altcp_pcb *inner)
{
  altcp_arg(inner, NULL);
  altcp_recv(inner, NULL);
  altcp_sent(inner, NULL);
  altcp_err(inner, NULL);
  altcp_poll(inner, NULL, 0);
}

/* ---- Bounded receive queues ------------------------------------------------ */

/* Segments up to this size are copied into an own pbuf; larger ones are chained as they are. */
#define TLS_RXQ_COPY_MAX (TCP_MSS / 2)

_Static_assert(TCP_MSS <= PBUF_POOL_BUFSIZE, "an own pbuf of TCP_MSS bytes must be one pool pbuf");

static u16_t tls_rxq_len(const tls_rxq_t *q)
{
  return q->head != NULL ? q->head->tot_len : 0;
}

static void tls_rxq_free(tls_rxq_t *q)
{
  if (q->head != NULL) {
    pbuf_free(q->head);
  }
  memset(q, 0, sizeof *q);
}

/* Bytes the own pbuf still takes (a consumed front moves its payload, not its end). */
static size_t tls_rxq_room(const tls_rxq_t *q)
{
  if (q->own == NULL) {
    return 0;
  }
  return (size_t)(q->own_end - ((uint8_t *)q->own->payload + q->own->len));
}

/* Copies n bytes of p from off into the own pbuf's room. */
static void tls_rxq_copy(tls_rxq_t *q, const struct pbuf *p, u16_t off, u16_t n)
{
  pbuf_copy_partial(p, (uint8_t *)q->own->payload + q->own->len, n, off);
  q->own->len = (u16_t)(q->own->len + n);
  for (struct pbuf *r = q->head; r != NULL; r = r->next) {
    r->tot_len = (u16_t)(r->tot_len + n);
  }
}

/*
 * Queues p, or returns false and leaves p alone when the queue already holds
 * max_pbufs pool pbufs it cannot fit p into: the caller refuses it
 * and lwIP offers it again later (dropping further segments meanwhile). An
 * empty queue takes anything, so a refusal always waits on something to drain.
 */
static bool tls_rxq_put(tls_rxq_t *q, struct pbuf *p, int max_pbufs)
{
  u16_t n = p->tot_len;
  if (q->head == NULL && p->next == NULL) {
    q->head = p; /* the common case, no copy */
    q->own = NULL;
    return true;
  }
  int used = q->head != NULL ? pbuf_clen(q->head) : 0;
  size_t room = tls_rxq_room(q);
  if (n <= room) {
    tls_rxq_copy(q, p, 0, n);
    pbuf_free(p);
    return true;
  }
  if (q->head != NULL && p->next == NULL && n > TLS_RXQ_COPY_MAX && used < max_pbufs) {
    pbuf_cat(q->head, p); /* a large segment: chained, and it ends the own pbuf's turn */
    q->own = NULL;
    return true;
  }
  if (used < max_pbufs && n <= room + TCP_MSS) {
    struct pbuf *o = pbuf_alloc(PBUF_RAW, TCP_MSS, PBUF_POOL);
    if (o != NULL) {
      u16_t first = (u16_t)room;
      if (first > 0) {
        tls_rxq_copy(q, p, 0, first);
      }
      uint8_t *end = (uint8_t *)o->payload + o->len;
      o->len = o->tot_len = 0;
      if (q->head == NULL) {
        q->head = o;
      } else {
        pbuf_cat(q->head, o);
      }
      q->own = o;
      q->own_end = end;
      tls_rxq_copy(q, p, first, (u16_t)(n - first));
      pbuf_free(p);
      return true;
    }
  }
  if (q->head == NULL) {
    q->head = p; /* a chain lwIP built from out-of-order segments, with the pool too short to copy it */
    q->own = NULL;
    return true;
  }
  return false;
}

/* Pool pbufs the ciphertext queue may hold: POSTERN_TLS_RX_PBUFS, or a whole
 * window's worth while the application holds what arrives (tls_hold_window)
 * and the pool keeps POSTERN_POOL_RESERVE pbufs for everyone else. */
static int tls_rxq_max(const tls_session_t *s)
{
  return s->hold && pool_free() >= POSTERN_POOL_RESERVE ? TLS_RXQ_HOLD_PBUFS : POSTERN_TLS_RX_PBUFS;
}

/* Gives back everything of a session but the pcbs. */
static void tls_session_release(tls_session_t *s)
{
  if (s->phase == TLS_FREE) {
    return;
  }
  mbedtls_ssl_free(&s->ssl);
  tls_rxq_free(&s->rx);
  if (s->plain != NULL) {
    pbuf_free(s->plain);
  }
  for (int i = 0; i < POSTERN_TLS_PLAIN_PBUFS; i++) {
    if (s->up[i] != NULL) {
      pbuf_free(s->up[i]); /* the layer's reference; the application may keep its own */
    }
  }
  memset(s, 0, sizeof *s); /* phase = TLS_FREE */
  tls_active--;
}

/* ---- Teardown --------------------------------------------------------------- */

static err_t tls_leave(tls_session_t *s);

/* Frees the session and the outer pcb; the inner pcb must be gone or detached. */
static void tls_destroy(tls_session_t *s)
{
  struct altcp_pcb *outer = s->outer;
  tls_session_release(s);
  if (outer != NULL) {
    outer->state = NULL;
    altcp_free(outer);
  }
}

/* Marks the session for release: at once, or when the outermost callback returns. */
static void tls_doom(tls_session_t *s)
{
  s->doomed = true;
  if (s->depth == 0) {
    tls_destroy(s);
  }
}

/* Aborts the inner pcb (RST) and frees everything now or when callbacks unwind. */
static void tls_kill(tls_session_t *s)
{
  if (s->inner != NULL) {
    struct altcp_pcb *inner = s->inner;
    s->inner = NULL;
    tls_inner_detach(inner);
    altcp_abort(inner);
    s->aborted = true;
  }
  tls_doom(s);
}

/* Acknowledges everything received (a close with unread data would send a
 * reset and destroy the alert or response in flight) and drops it. */
static void tls_drain(tls_session_t *s)
{
  uint32_t n = s->taken + tls_rxq_len(&s->rx);
  s->taken = 0;
  tls_rxq_free(&s->rx);
  tls_ack(s, n);
}

/* Closes the inner pcb gracefully (FIN after what is queued), then frees. */
static void tls_close_inner(tls_session_t *s)
{
  tls_drain(s);
  struct altcp_pcb *inner = s->inner;
  if (inner != NULL) {
    s->inner = NULL;
    tls_inner_detach(inner);
    if (altcp_close(inner) != ERR_OK) {
      altcp_abort(inner);
      s->aborted = true;
    }
  }
  tls_doom(s);
}

/* Moves a closing session on: flush, close_notify, then the inner close. */
static void tls_closing_step(tls_session_t *s)
{
  if (s->inner == NULL) {
    return;
  }
  tls_drain(s);
  if (mbedtls_ssl_is_handshake_over(&s->ssl) && !s->notify_sent) {
    int rc = mbedtls_ssl_close_notify(&s->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
      s->out_pending = true;
      altcp_output(s->inner);
      return; /* the sent or poll callback comes back here */
    }
    s->notify_sent = true;
    s->out_pending = false;
  } else if (s->out_pending) {
    int rc = mbedtls_ssl_write(&s->ssl, NULL, 0); /* flushes the pending record */
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
      return;
    }
    s->out_pending = false;
  }
  tls_close_inner(s);
}

/* The application is done with the outer pcb (close): finish in the background. */
static void tls_begin_close(tls_session_t *s)
{
  struct altcp_pcb *outer = s->outer;
  outer->arg = NULL;
  outer->recv = NULL;
  outer->sent = NULL;
  outer->err = NULL;
  outer->poll = NULL;
  s->phase = TLS_CLOSING;
  s->since_ms = sys_now();
  if (s->depth == 0) {
    s->depth++;
    tls_leave(s); /* runs the closing step */
  }
}

/* A fatal error after the handshake: the application hears it like a reset. */
static void tls_fail_open(tls_session_t *s, err_t err)
{
  struct altcp_pcb *outer = s->outer;
  altcp_err_fn errf = outer->err;
  void *arg = outer->arg;
  outer->recv = NULL;
  outer->sent = NULL;
  outer->err = NULL;
  outer->poll = NULL;
  s->phase = TLS_CLOSING;
  tls_close_inner(s); /* FIN after the alert mbedTLS queued */
  if (errf != NULL) {
    errf(arg, err);
  }
}

/* ---- mbedTLS I/O on the inner pcb ----------------------------------------- */

static int tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
  tls_session_t *s = ctx;
  if (s->inner == NULL) {
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  }
  u16_t room = altcp_sndbuf(s->inner);
  size_t n = len < room ? len : room;
  if (n == 0) {
    s->out_pending = true;
    return MBEDTLS_ERR_SSL_WANT_WRITE;
  }
  err_t err = altcp_write(s->inner, buf, (u16_t)n, TCP_WRITE_FLAG_COPY);
  if (err == ERR_MEM) {
    s->out_pending = true;
    return MBEDTLS_ERR_SSL_WANT_WRITE;
  }
  if (err != ERR_OK) {
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  }
  return (int)n;
}

static int tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
  tls_session_t *s = ctx;
  if (s->rx.head == NULL) {
    return s->rx_eof ? 0 : MBEDTLS_ERR_SSL_WANT_READ;
  }
  u16_t n = s->rx.head->tot_len;
  if (len < n) {
    n = (u16_t)len;
  }
  n = pbuf_copy_partial(s->rx.head, buf, n, 0);
  s->rx.head = pbuf_free_header(s->rx.head, n);
  if (s->rx.head == NULL) {
    s->rx.own = NULL; /* it was the last pbuf: freed with the rest */
  }
  s->taken += n;
  return (int)n;
}

/* ---- The handshake ---------------------------------------------------------- */

/* Hex of the SHA-256 of the client certificate and its subject CN, when trusted. */
static void tls_read_peer(tls_session_t *s)
{
  const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&s->ssl);
  if (peer == NULL) {
    return;
  }
  uint32_t flags = mbedtls_ssl_get_verify_result(&s->ssl);
  if (flags != 0) {
    log_line("tls: client certificate not trusted (verify flags 0x%lx); the policy sees no subject",
             (unsigned long)flags);
    return;
  }
  uint8_t sum[32];
  if (mbedtls_sha256(peer->raw.p, peer->raw.len, sum, 0) != 0) {
    return;
  }
  text_hex(sum, sizeof sum, s->fingerprint);
  for (const mbedtls_x509_name *n = &peer->subject; n != NULL; n = n->next) {
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
      size_t len = n->val.len < sizeof s->subject - 1 ? n->val.len : sizeof s->subject - 1;
      for (size_t i = 0; i < len; i++) {
        unsigned char ch = n->val.p[i];
        s->subject[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
      }
      s->subject[len] = '\0';
    }
  }
  s->has_peer = true;
}

/* Runs the handshake as far as the bytes allow; at its end, the application's accept. */
static void tls_handshake(tls_session_t *s)
{
  int rc = mbedtls_ssl_handshake(&s->ssl);
  uint32_t taken = s->taken;
  s->taken = 0;
  tls_ack(s, taken); /* handshake bytes carry no plaintext for the application */
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
    if (s->inner != NULL) {
      altcp_output(s->inner);
    }
    return;
  }
  s->out_pending = false;
  if (rc != 0) {
    char ip[IPADDR_STRLEN_MAX];
    tls_log_peer(s, ip, sizeof ip);
    log_line("tls: handshake with %s failed: %s (-0x%04x)", ip, tls_reason(rc), (unsigned)-rc);
    tls_failures++;
    s->phase = TLS_CLOSING;
    tls_close_inner(s);
    return;
  }
  tls_handshakes++;
  tls_read_peer(s);
  altcp_output(s->inner);
  s->phase = TLS_OPEN;
  err_t err = s->accept(s->accept_arg, s->outer, ERR_OK);
  if (err == ERR_ABRT) {
    return; /* the application aborted the outer pcb, which killed this session */
  }
  if (err != ERR_OK) {
    tls_kill(s);
  }
}

/* ---- KeyUpdate ------------------------------------------------------------ */

/* Sends the KeyUpdate the peer asked for, once mbedTLS's output buffer is
 * free (RFC 8446 §4.6.3: before our next application data; requests that
 * arrive meanwhile are all answered by that one). After close_notify nothing
 * more may be sent, so the answer is dropped. false after a fatal error, logged. */
static bool tls_key_update_answer(tls_session_t *s)
{
  if (!s->key_update_owed || s->out_pending) {
    return true; /* nothing owed, or the flush of the waiting record comes back here */
  }
  if (s->notify_sent || s->inner == NULL) {
    s->key_update_owed = false;
    return true;
  }
  int rc = tls_key_update_send(&s->ssl);
  if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
    s->out_pending = true; /* a record mbedTLS still holds: flushed first */
    return true;
  }
  s->key_update_owed = false;
  if (rc != 0) {
    char ip[IPADDR_STRLEN_MAX];
    tls_log_peer(s, ip, sizeof ip);
    log_line("tls: connection with %s failed: cannot send a KeyUpdate: %s (-0x%04x)", ip, tls_reason(rc),
             (unsigned)-rc);
    return false;
  }
  altcp_output(s->inner);
  return true;
}

/* ---- Delivering plaintext ------------------------------------------------- */

/* Forgets the pbufs handed up that the application has let go of (only the
 * layer's reference is left); returns how many it still holds. */
static unsigned tls_up_sweep(tls_session_t *s)
{
  unsigned held = 0;
  for (int i = 0; i < POSTERN_TLS_PLAIN_PBUFS; i++) {
    struct pbuf *p = s->up[i];
    if (p != NULL && p->ref == 1) {
      s->up[i] = NULL;
      pbuf_free(p); /* also the rest of a chain the application freed from its front */
    } else if (p != NULL) {
      held++;
    }
  }
  return held;
}

/* Whether the staged plaintext goes up now; drained: nothing more can be
 * decrypted at the moment. Records that arrive together share one pbuf. A
 * partial pbuf goes up at once while a slot for it is left (the HTTP layer
 * copies a chain longer than POSTERN_CONN_PBUFS_MAX into fewer pbufs and lets
 * go of ours); with every slot out it waits a little for more, so one-byte
 * records cost one pool pbuf, not one each. */
static bool tls_plain_due(tls_session_t *s, bool drained)
{
  u16_t staged = s->plain->len;
  if (staged >= TCP_MSS || s->held + staged >= POSTERN_TLS_RX_HELD_MAX || s->eof_seen) {
    return true; /* full, or as much as the application may hold: it must decide */
  }
  if (!drained) {
    return false;
  }
  return tls_up_sweep(s) < POSTERN_TLS_PLAIN_PBUFS || sys_now() - s->plain_ms >= TLS_PLAIN_QUIET_MS;
}

/* Hands the staged pbuf up, keeping a reference to see when the application
 * lets go of it; false when the application is gone or refused it (then it
 * is staged again and offered later, as TCP offers refused data again). */
static bool tls_hand_up(tls_session_t *s)
{
  struct altcp_pcb *outer = s->outer;
  struct pbuf *p = s->plain;
  s->plain = NULL;
  if (outer->recv == NULL) {
    pbuf_free(p);
    return true;
  }
  int slot = -1;
  for (int i = 0; i < POSTERN_TLS_PLAIN_PBUFS && slot < 0; i++) {
    if (s->up[i] == NULL) {
      slot = i;
    }
  }
  if (slot >= 0) { /* always: a pbuf is staged only while a slot is free */
    pbuf_ref(p);
    s->up[slot] = p;
  }
  u16_t n = p->tot_len;
  s->held += n;
  err_t err = outer->recv(outer->arg, outer, p, ERR_OK);
  if (s->doomed || s->phase != TLS_OPEN) {
    return false;
  }
  if (err != ERR_OK) {
    s->held -= n;
    if (slot >= 0) {
      s->up[slot] = NULL;
      pbuf_free(p); /* back to the layer's one reference */
    }
    s->plain = p;
    return false;
  }
  return true;
}

/* Tells the application the stream ended; false when it is gone. */
static bool tls_deliver_eof(tls_session_t *s)
{
  struct altcp_pcb *outer = s->outer;
  if (outer->recv != NULL) {
    outer->recv(outer->arg, outer, NULL, ERR_OK);
  }
  return !s->doomed && s->phase == TLS_OPEN;
}

/* Decrypts and hands up while the application has room; then opens the window. */
static void tls_pump(tls_session_t *s)
{
  if (s->phase == TLS_HANDSHAKE) {
    tls_handshake(s);
  }
  if (s->phase == TLS_CLOSING && !s->doomed) {
    tls_closing_step(s);
    return;
  }
  if (s->phase != TLS_OPEN || s->doomed) {
    return;
  }
  if (s->out_pending && mbedtls_ssl_write(&s->ssl, NULL, 0) != MBEDTLS_ERR_SSL_WANT_WRITE) {
    s->out_pending = false;
    if (s->shut_tx) {
      altcp_shutdown(s->inner, 0, 1); /* the FIN a half-close left for after the flush */
    }
    if (!tls_key_update_answer(s)) {
      tls_fail_open(s, ERR_ABRT);
      return;
    }
    altcp_output(s->inner);
  }
  bool drained = false;
  while (!s->eof_delivered) {
    u16_t staged = s->plain != NULL ? s->plain->len : 0;
    if (staged > 0 && tls_plain_due(s, drained)) {
      if (!tls_hand_up(s)) {
        return;
      }
      continue;
    }
    if (s->eof_seen) { /* every byte before the end is up: now the end */
      s->eof_delivered = true;
      if (!tls_deliver_eof(s)) {
        return;
      }
      break;
    }
    if (drained || s->held + staged >= POSTERN_TLS_RX_HELD_MAX) {
      break;
    }
    if (s->plain == NULL) {
      if (tls_up_sweep(s) >= POSTERN_TLS_PLAIN_PBUFS) {
        break; /* the application holds its share: it consumes first, and the window stays shut */
      }
      s->plain = pbuf_alloc(PBUF_RAW, TCP_MSS, PBUF_POOL);
      if (s->plain == NULL) {
        break; /* the poll callback tries again */
      }
      s->plain->len = s->plain->tot_len = 0;
    }
    int rc = mbedtls_ssl_read(&s->ssl, (uint8_t *)s->plain->payload + staged, (size_t)(TCP_MSS - staged));
    if (rc > 0) {
      s->plain->len = s->plain->tot_len = (u16_t)(staged + rc);
      s->plain_ms = sys_now();
      continue;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
      if (!s->rx_eof || s->rx.head != NULL) {
        drained = true;
        continue;
      }
      rc = 0; /* FIN without close_notify: the end all the same */
    }
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF) {
      s->eof_seen = true;
      continue;
    }
    /* mbedTLS 3.6 refuses a KeyUpdate like any message it does not know;
     * tls_post_handshake() applies it and the connection goes on. */
    const char *why = NULL;
    tls_post_hs_t post = tls_post_handshake(&s->ssl, rc, &why);
    if (post == TLS_POST_HS_KEY_UPDATED || post == TLS_POST_HS_KEY_REPLY) {
      s->key_update_owed |= post == TLS_POST_HS_KEY_REPLY;
      if (!tls_key_update_answer(s)) {
        tls_fail_open(s, ERR_ABRT);
        return;
      }
      continue;
    }
    char ip[IPADDR_STRLEN_MAX];
    tls_log_peer(s, ip, sizeof ip);
    log_line("tls: connection with %s failed: %s (-0x%04x)", ip, why != NULL ? why : tls_reason(rc), (unsigned)-rc);
    tls_fail_open(s, ERR_ABRT);
    return;
  }
  if (s->plain != NULL && s->plain->len == 0) {
    pbuf_free(s->plain); /* an idle connection holds no pool pbuf */
    s->plain = NULL;
  }
  if (s->held < POSTERN_TLS_RX_HELD_MAX) {
    uint32_t taken = s->taken;
    s->taken = 0;
    tls_ack(s, taken);
  }
}

/* ---- Inner pcb callbacks ---------------------------------------------------- */

/* Ends an inner callback: a doomed session is freed once no callback runs. */
static err_t tls_leave(tls_session_t *s)
{
  if (s->depth == 1 && s->phase == TLS_CLOSING && !s->doomed) {
    tls_closing_step(s); /* the application closed inside a callback */
  }
  s->depth--;
  if (s->depth > 0 || !s->doomed) {
    return ERR_OK;
  }
  bool aborted = s->aborted;
  tls_destroy(s);
  return aborted ? ERR_ABRT : ERR_OK;
}

static err_t tls_inner_recv(void *arg, struct altcp_pcb *inner, struct pbuf *p, err_t err)
{
  struct altcp_pcb *outer = arg;
  tls_session_t *s = outer != NULL ? outer->state : NULL;
  if (s == NULL) {
    if (p != NULL) {
      altcp_recved(inner, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  s->depth++;
  if (p == NULL || err != ERR_OK) {
    if (p != NULL) {
      pbuf_free(p);
    }
    s->rx_eof = true;
    if (s->phase == TLS_HANDSHAKE && s->rx.head == NULL) {
      char ip[IPADDR_STRLEN_MAX];
      tls_log_peer(s, ip, sizeof ip);
      log_line("tls: handshake with %s failed: %s", ip, tls_reason(MBEDTLS_ERR_SSL_CONN_EOF));
      tls_failures++;
      s->phase = TLS_CLOSING;
      tls_close_inner(s);
      return tls_leave(s);
    }
  } else if (s->phase == TLS_CLOSING) {
    altcp_recved(inner, p->tot_len); /* nobody reads any more */
    pbuf_free(p);
  } else if (!tls_rxq_put(&s->rx, p, tls_rxq_max(s))) {
    tls_pump(s); /* mbedTLS may take some of what waits */
    if (s->doomed || s->phase == TLS_CLOSING) {
      if (s->inner != NULL) {
        altcp_recved(inner, p->tot_len);
      }
      pbuf_free(p);
      return tls_leave(s);
    }
    if (!tls_rxq_put(&s->rx, p, tls_rxq_max(s))) {
      /* Full: lwIP keeps p and offers it again (every 250 ms, and with each
       * segment, which it drops meanwhile), so the peer waits as for a shut window. */
      err_t left = tls_leave(s);
      return left == ERR_ABRT ? ERR_ABRT : ERR_MEM;
    }
  }
  tls_pump(s);
  return tls_leave(s);
}

static err_t tls_inner_sent(void *arg, struct altcp_pcb *inner, u16_t len)
{
  LWIP_UNUSED_ARG(inner);
  struct altcp_pcb *outer = arg;
  tls_session_t *s = outer != NULL ? outer->state : NULL;
  if (s == NULL) {
    return ERR_OK;
  }
  s->depth++;
  if (s->phase == TLS_OPEN && s->out_pending) {
    tls_pump(s); /* flushes first */
  }
  if (s->phase == TLS_OPEN && !s->doomed && outer->sent != NULL) {
    outer->sent(outer->arg, outer, len);
  }
  if (!s->doomed) {
    tls_pump(s);
  }
  return tls_leave(s);
}

static err_t tls_inner_poll(void *arg, struct altcp_pcb *inner)
{
  LWIP_UNUSED_ARG(inner);
  struct altcp_pcb *outer = arg;
  tls_session_t *s = outer != NULL ? outer->state : NULL;
  if (s == NULL) {
    return ERR_OK;
  }
  s->depth++;
  uint32_t age = sys_now() - s->since_ms;
  if (s->phase == TLS_HANDSHAKE && age >= POSTERN_TLS_HANDSHAKE_TIMEOUT_S * 1000u) {
    char ip[IPADDR_STRLEN_MAX];
    tls_log_peer(s, ip, sizeof ip);
    log_line("tls: handshake with %s did not complete in %us; closed", ip, POSTERN_TLS_HANDSHAKE_TIMEOUT_S);
    tls_failures++;
    s->phase = TLS_CLOSING;
    tls_close_inner(s);
  } else if (s->phase == TLS_CLOSING && age >= TLS_CLOSE_TIMEOUT_S * 1000u) {
    tls_kill(s);
  } else if (s->phase == TLS_OPEN && outer->poll != NULL) {
    outer->poll(outer->arg, outer);
  }
  if (!s->doomed) {
    tls_pump(s);
  }
  return tls_leave(s);
}

static void tls_inner_err(void *arg, err_t err)
{
  struct altcp_pcb *outer = arg;
  tls_session_t *s = outer != NULL ? outer->state : NULL;
  if (s == NULL) {
    return;
  }
  /* lwIP has freed the inner pcb already. */
  s->inner = NULL;
  s->aborted = true;
  altcp_err_fn errf = s->phase == TLS_OPEN ? outer->err : NULL;
  void *app = outer->arg;
  tls_doom(s);
  if (errf != NULL) {
    errf(app, err);
  }
}

/* Closes a connection no session takes (counted and logged); ERR_ABRT when it had to be aborted. */
static err_t tls_refuse(struct altcp_pcb *inner)
{
  tls_refused++;
  log_line("tls: connection closed before the handshake: all %d TLS sessions busy", POSTERN_MAX_TLS_CONNS);
  tls_inner_detach(inner);
  if (altcp_close(inner) != ERR_OK) {
    altcp_abort(inner);
    return ERR_ABRT;
  }
  return ERR_OK;
}

/* Starts a session for a TCP connection of the listener: ERR_OK; ERR_MEM when
 * none is free (inner untouched); ERR_CLSD or ERR_ABRT when the session could
 * not start and inner was closed or aborted. */
static err_t tls_start_session(struct altcp_pcb *listener, struct altcp_pcb *inner)
{
  tls_session_t *s = NULL;
  for (int i = 0; i < POSTERN_MAX_TLS_CONNS && s == NULL; i++) {
    if (tls_sessions[i].phase == TLS_FREE) {
      s = &tls_sessions[i];
    }
  }
  struct altcp_pcb *outer = s != NULL ? altcp_alloc() : NULL;
  if (outer == NULL) {
    return ERR_MEM;
  }
  memset(s, 0, sizeof *s);
  mbedtls_ssl_init(&s->ssl);
  s->phase = TLS_HANDSHAKE;
  tls_active++;
  if (tls_active > tls_active_high) {
    tls_active_high = tls_active;
  }
  s->outer = outer;
  s->inner = inner;
  s->since_ms = sys_now();
  s->accept = listener->accept;
  s->accept_arg = listener->arg;
  outer->fns = &tls_functions;
  outer->inner_conn = inner;
  outer->state = s;
  int rc = mbedtls_ssl_setup(&s->ssl, &tls_conf);
  if (rc != 0) {
    log_line("tls: cannot start a session: %s (-0x%04x)", tls_reason(rc), (unsigned)-rc);
    tls_failures++;
    tls_inner_detach(inner);
    s->inner = NULL;
    tls_destroy(s);
    if (altcp_close(inner) != ERR_OK) {
      altcp_abort(inner);
      return ERR_ABRT;
    }
    return ERR_CLSD;
  }
  mbedtls_ssl_set_bio(&s->ssl, s, tls_bio_send, tls_bio_recv, NULL);
  altcp_arg(inner, outer);
  altcp_recv(inner, tls_inner_recv);
  altcp_sent(inner, tls_inner_sent);
  altcp_err(inner, tls_inner_err);
  altcp_poll(inner, tls_inner_poll, TLS_POLL_TICKS);
  return ERR_OK;
}

/* The application's hook that closes an idle TLS connection for a new one (tls_set_reclaim). */
static bool (*tls_reclaim)(void);

/** Sets the hook a connection beyond the session limit calls before it is refused. */
void tls_set_reclaim(bool (*reclaim)(void))
{
  tls_reclaim = reclaim;
}

/** True when pcb is a connection of this TLS layer. */
bool tls_owns(const struct altcp_pcb *pcb)
{
  return pcb != NULL && pcb->fns == &tls_functions;
}

void tls_hold_window(struct altcp_pcb *pcb, bool hold)
{
  tls_session_t *s = tls_owns(pcb) ? pcb->state : NULL;
  if (s != NULL) {
    s->hold = hold;
  }
}

void tls_resume(struct altcp_pcb *pcb)
{
  tls_session_t *s = tls_owns(pcb) ? pcb->state : NULL;
  if (s == NULL || s->depth > 0 || s->doomed) {
    return;
  }
  s->depth++;
  tls_pump(s);
  (void)tls_leave(s); /* not in a callback: nobody to tell of an abort */
}

/*
 * Frees the session of the oldest handshake (or close) that has lasted
 * POSTERN_TLS_HANDSHAKE_GRACE_MS, for a new connection; false when there is
 * none. A client that opens connections and never finishes their handshakes
 * would otherwise keep every session for POSTERN_TLS_HANDSHAKE_TIMEOUT_S at a
 * time; a real handshake is over well within the grace, so it never yields.
 * Established sessions are the application's (tls_set_reclaim).
 */
static bool tls_yield_stale(void)
{
  tls_session_t *victim = NULL;
  uint32_t now = sys_now(), oldest = 0;
  for (int i = 0; i < POSTERN_MAX_TLS_CONNS; i++) {
    tls_session_t *s = &tls_sessions[i];
    uint32_t age = now - s->since_ms;
    /* depth 0: no callback of its own runs, so its session is free when this returns */
    if ((s->phase == TLS_HANDSHAKE || s->phase == TLS_CLOSING) && s->depth == 0 && !s->doomed &&
        age >= POSTERN_TLS_HANDSHAKE_GRACE_MS && (victim == NULL || age > oldest)) {
      victim = s;
      oldest = age;
    }
  }
  if (victim == NULL) {
    return false;
  }
  char ip[IPADDR_STRLEN_MAX];
  tls_log_peer(victim, ip, sizeof ip);
  if (victim->phase == TLS_HANDSHAKE) {
    log_line("tls: handshake with %s unfinished after %u ms: closed, its session goes to a new connection", ip,
             (unsigned)oldest);
    tls_failures++;
    victim->phase = TLS_CLOSING;
    tls_close_inner(victim);
  } else {
    log_line("tls: connection with %s still closing after %u ms: reset, its session goes to a new connection", ip,
             (unsigned)oldest);
    tls_kill(victim);
  }
  return true;
}

/* A session for a new TCP connection: a free one, a stale handshake's, or an
 * idle one the application gives up. Returns what tls_start_session() does. */
static err_t tls_acquire(struct altcp_pcb *listener, struct altcp_pcb *inner)
{
  err_t err = tls_start_session(listener, inner);
  if (err == ERR_MEM && tls_yield_stale()) {
    err = tls_start_session(listener, inner);
  }
  if (err == ERR_MEM && tls_reclaim != NULL && tls_reclaim()) {
    /* An idle session closed for this client: its close_notify and FIN went
     * out at once and gave the session back, unless lwIP had no room to send. */
    err = tls_start_session(listener, inner);
  }
  return err;
}

#if POSTERN_TLS_ACCEPT_WAIT_S > 0
/** Poll interval of a waiting connection: 500 ms, so a freed session is taken soon. */
#define TLS_WAIT_POLL_TICKS 1

/* Forgets a waiting connection: its callbacks, its queued bytes and its slot. */
static void tls_wait_forget(tls_waiting_t *w)
{
  if (w->inner != NULL) {
    tls_inner_detach(w->inner);
    if (w->rx.head != NULL) {
      altcp_recved(w->inner, w->rx.head->tot_len); /* so that a close is a FIN, not a reset */
    }
  }
  tls_rxq_free(&w->rx);
  memset(w, 0, sizeof *w);
}

/* True when no connection has waited longer than w: sessions go first come, first served,
 * so a client that reconnects in a loop cannot take every session that frees up. */
static bool tls_wait_first(const tls_waiting_t *w)
{
  for (int i = 0; i < POSTERN_TLS_WAITING_MAX; i++) {
    const tls_waiting_t *o = &tls_waiting[i];
    if (o != w && o->inner != NULL && (int32_t)(o->since_ms - w->since_ms) < 0) {
      return false;
    }
  }
  return true;
}

static bool tls_wait_any(void)
{
  for (int i = 0; i < POSTERN_TLS_WAITING_MAX; i++) {
    if (tls_waiting[i].inner != NULL) {
      return true;
    }
  }
  return false;
}

/* Hands a waiting connection to a session with the bytes it queued; ERR_MEM while none is to be had. */
static err_t tls_wait_adopt(tls_waiting_t *w)
{
  struct altcp_pcb *inner = w->inner, *listener = w->listener;
  if (!tls_wait_first(w)) {
    return ERR_MEM;
  }
  struct pbuf *rx = w->rx.head;
  bool eof = w->eof;
  tls_inner_detach(inner);
  err_t err = tls_acquire(listener, inner);
  if (err == ERR_MEM) {
    return ERR_MEM; /* the caller restores the waiting callbacks */
  }
  memset(&w->rx, 0, sizeof w->rx);
  w->inner = NULL;
  tls_wait_forget(w);
  if (err != ERR_OK) {
    if (rx != NULL) {
      pbuf_free(rx);
    }
    return err == ERR_ABRT ? ERR_ABRT : ERR_OK; /* closed or aborted already */
  }
  struct altcp_pcb *outer = inner->arg;
  if (rx != NULL) {
    err = tls_inner_recv(outer, inner, rx, ERR_OK); /* an empty queue takes it whole */
    if (err == ERR_ABRT) {
      return ERR_ABRT;
    }
  }
  if (eof && outer->state != NULL) {
    return tls_inner_recv(outer, inner, NULL, ERR_OK);
  }
  return ERR_OK;
}

static err_t tls_wait_recv(void *arg, struct altcp_pcb *inner, struct pbuf *p, err_t err);
static err_t tls_wait_poll(void *arg, struct altcp_pcb *inner);
static void tls_wait_err(void *arg, err_t err);

static void tls_wait_attach(tls_waiting_t *w)
{
  altcp_arg(w->inner, w);
  altcp_recv(w->inner, tls_wait_recv);
  altcp_err(w->inner, tls_wait_err);
  altcp_poll(w->inner, tls_wait_poll, TLS_WAIT_POLL_TICKS);
}

/* Tries to hand the connection to a session; keeps it waiting when none is free. */
static err_t tls_wait_try(tls_waiting_t *w)
{
  err_t err = tls_wait_adopt(w);
  if (err == ERR_MEM) {
    tls_wait_attach(w);
    return ERR_OK;
  }
  return err;
}

static err_t tls_wait_recv(void *arg, struct altcp_pcb *inner, struct pbuf *p, err_t err)
{
  tls_waiting_t *w = arg;
  LWIP_UNUSED_ARG(inner);
  if (p == NULL || err != ERR_OK) {
    if (p != NULL) {
      pbuf_free(p);
    }
    w->eof = true;
  } else if (!tls_rxq_put(&w->rx, p, POSTERN_TLS_RX_PBUFS)) {
    /* Its queue is full: lwIP keeps p, and offers it again to the session if one takes the connection. */
    err = tls_wait_try(w);
    if (err == ERR_ABRT) {
      pbuf_free(p);
      return ERR_ABRT;
    }
    return ERR_MEM;
  }
  if (w->eof && w->rx.head == NULL) {
    struct altcp_pcb *gone = w->inner;
    tls_wait_forget(w); /* the client gave up before saying anything */
    if (altcp_close(gone) != ERR_OK) {
      altcp_abort(gone);
      return ERR_ABRT;
    }
    return ERR_OK;
  }
  return tls_wait_try(w);
}

static err_t tls_wait_poll(void *arg, struct altcp_pcb *inner)
{
  tls_waiting_t *w = arg;
  LWIP_UNUSED_ARG(inner);
  if (sys_now() - w->since_ms >= POSTERN_TLS_ACCEPT_WAIT_S * 1000u) {
    struct altcp_pcb *gone = w->inner;
    tls_wait_forget(w);
    return tls_refuse(gone);
  }
  return tls_wait_try(w);
}

static void tls_wait_err(void *arg, err_t err)
{
  LWIP_UNUSED_ARG(err);
  tls_waiting_t *w = arg;
  w->inner = NULL; /* lwIP has freed it */
  tls_wait_forget(w);
}

/* Parks a connection no session can take yet; false when the waiting room is full. */
static bool tls_wait_park(struct altcp_pcb *listener, struct altcp_pcb *inner)
{
  for (int i = 0; i < POSTERN_TLS_WAITING_MAX; i++) {
    tls_waiting_t *w = &tls_waiting[i];
    if (w->inner == NULL) {
      memset(w, 0, sizeof *w);
      w->inner = inner;
      w->listener = listener;
      w->since_ms = sys_now();
      tls_wait_attach(w);
      return true;
    }
  }
  return false;
}
#endif /* POSTERN_TLS_ACCEPT_WAIT_S */

/* A TCP connection arrived on the listener: a session, a wait for one, or a close when all are busy. */
static err_t tls_inner_accept(void *arg, struct altcp_pcb *inner, err_t err)
{
  struct altcp_pcb *listener = arg;
  if (err != ERR_OK || inner == NULL || listener == NULL || listener->accept == NULL) {
    return ERR_VAL;
  }
#if POSTERN_TLS_ACCEPT_WAIT_S > 0
  if (tls_wait_any()) { /* others wait already: this one queues behind them */
    return tls_wait_park(listener, inner) ? ERR_OK : tls_refuse(inner);
  }
#endif /* POSTERN_TLS_ACCEPT_WAIT_S */
  err = tls_acquire(listener, inner);
  if (err != ERR_MEM) {
    return err == ERR_ABRT ? ERR_ABRT : ERR_OK;
  }
#if POSTERN_TLS_ACCEPT_WAIT_S > 0
  if (tls_wait_park(listener, inner)) {
    return ERR_OK;
  }
#endif /* POSTERN_TLS_ACCEPT_WAIT_S */
  return tls_refuse(inner);
}

/* ---- The outer pcb's functions ---------------------------------------------- */

static tls_session_t *tls_of(struct altcp_pcb *conn)
{
  return conn != NULL ? conn->state : NULL;
}

static void tls_set_poll(struct altcp_pcb *conn, u8_t interval)
{
  tls_session_t *s = tls_of(conn);
  if (s != NULL && s->inner != NULL) {
    altcp_poll(s->inner, tls_inner_poll, interval != 0 ? interval : TLS_POLL_TICKS);
  }
}

/* The application consumed plaintext: the window may open again. */
static void tls_recved(struct altcp_pcb *conn, u16_t len)
{
  tls_session_t *s = tls_of(conn);
  if (s == NULL) {
    return;
  }
  s->held = len < s->held ? s->held - len : 0;
  tls_up_sweep(s); /* the pool pbufs it let go of go back now */
  /* No delivery from here (the application may be in the middle of its own
   * work): the callback that is running pumps when it returns, else the poll. */
}

static struct altcp_pcb *tls_listen(struct altcp_pcb *conn, u8_t backlog, err_t *err)
{
  if (conn == NULL || conn->inner_conn == NULL) {
    return NULL;
  }
  struct altcp_pcb *lpcb = altcp_listen_with_backlog_and_err(conn->inner_conn, backlog, err);
  if (lpcb == NULL) {
    return NULL;
  }
  conn->inner_conn = lpcb;
  altcp_arg(lpcb, conn);
  altcp_accept(lpcb, tls_inner_accept);
  return conn;
}

static void tls_abort(struct altcp_pcb *conn)
{
  tls_session_t *s = tls_of(conn);
  if (s == NULL) {
    if (conn != NULL && conn->inner_conn != NULL) {
      altcp_abort(conn->inner_conn);
    }
    altcp_free(conn);
    return;
  }
  altcp_err_fn errf = conn->err;
  void *arg = conn->arg;
  conn->err = NULL;
  tls_kill(s);
  if (errf != NULL) {
    errf(arg, ERR_ABRT);
  }
}

static err_t tls_close(struct altcp_pcb *conn)
{
  if (conn == NULL) {
    return ERR_VAL;
  }
  tls_session_t *s = tls_of(conn);
  if (s == NULL) { /* a listener or a pcb that never connected */
    if (conn->inner_conn != NULL) {
      struct altcp_pcb *inner = conn->inner_conn;
      altcp_arg(inner, NULL);
      altcp_accept(inner, NULL);
      if (altcp_close(inner) != ERR_OK) {
        altcp_abort(inner);
      }
    }
    altcp_free(conn);
    return ERR_OK;
  }
  if (s->phase == TLS_OPEN) {
    tls_begin_close(s);
  }
  return ERR_OK;
}

static err_t tls_shutdown(struct altcp_pcb *conn, int shut_rx, int shut_tx)
{
  tls_session_t *s = tls_of(conn);
  if (s == NULL || s->phase != TLS_OPEN) {
    return ERR_CONN;
  }
  if (shut_rx && shut_tx) {
    return tls_close(conn);
  }
  if (!shut_tx || s->notify_sent) {
    return ERR_OK; /* receiving stays on: a linger reads and drops */
  }
  /* Half-close: close_notify, then a FIN once mbedTLS's output is out. */
  int rc = mbedtls_ssl_close_notify(&s->ssl);
  s->notify_sent = true;
  s->shut_tx = true;
  if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
    s->out_pending = true;
    return ERR_OK; /* tls_pump() sends the FIN after the flush */
  }
  return altcp_shutdown(s->inner, 0, 1);
}

static err_t tls_write(struct altcp_pcb *conn, const void *data, u16_t len, u8_t flags)
{
  LWIP_UNUSED_ARG(flags); /* always copied: the record is built at once */
  tls_session_t *s = tls_of(conn);
  if (s == NULL || s->phase != TLS_OPEN || s->inner == NULL || s->notify_sent) {
    return ERR_CONN;
  }
  if (s->out_pending) {
    if (mbedtls_ssl_write(&s->ssl, NULL, 0) == MBEDTLS_ERR_SSL_WANT_WRITE) {
      return ERR_MEM;
    }
    s->out_pending = false;
  }
  if (s->key_update_owed) { /* the KeyUpdate the peer asked for goes before any data */
    if (!tls_key_update_answer(s)) {
      return ERR_CONN;
    }
    if (s->out_pending) {
      return ERR_MEM;
    }
  }
  const unsigned char *p = data;
  size_t left = len;
  int max = mbedtls_ssl_get_max_out_record_payload(&s->ssl);
  while (left > 0) {
    size_t chunk = max > 0 && left > (size_t)max ? (size_t)max : left;
    int rc = mbedtls_ssl_write(&s->ssl, p, chunk);
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
      /* The record is built and waits in mbedTLS's buffer: the data is taken. */
      rc = (int)chunk;
    }
    if (rc <= 0) {
      return ERR_CONN;
    }
    p += rc;
    left -= (size_t)rc;
    if (s->out_pending && left > 0) {
      return ERR_MEM; /* the caller must close: part of its data went out */
    }
  }
  return ERR_OK;
}

static err_t tls_output(struct altcp_pcb *conn)
{
  tls_session_t *s = tls_of(conn);
  if (s == NULL || s->inner == NULL) {
    return ERR_CONN;
  }
  return altcp_output(s->inner);
}

/* Room for plaintext: what the inner pcb takes, less each record's expansion. */
static u16_t tls_sndbuf(struct altcp_pcb *conn)
{
  tls_session_t *s = tls_of(conn);
  if (s == NULL || s->inner == NULL || s->phase != TLS_OPEN || s->out_pending || s->key_update_owed) {
    return 0;
  }
  int exp = mbedtls_ssl_get_record_expansion(&s->ssl);
  int max = mbedtls_ssl_get_max_out_record_payload(&s->ssl);
  if (exp < 0 || max <= 0) {
    exp = 64, max = 1024;
  }
  uint32_t room = altcp_sndbuf(s->inner);
  uint32_t records = room / (uint32_t)(max + exp) + 1;
  uint32_t cost = records * (uint32_t)exp;
  return room > cost ? (u16_t)(room - cost) : 0;
}

static void tls_dealloc(struct altcp_pcb *conn)
{
  LWIP_UNUSED_ARG(conn); /* sessions are released by tls_destroy() before the free */
}

static const struct altcp_functions tls_functions = {
    .set_poll = tls_set_poll,
    .recved = tls_recved,
    .bind = altcp_default_bind,
    .connect = NULL,
    .listen = tls_listen,
    .abort = tls_abort,
    .close = tls_close,
    .shutdown = tls_shutdown,
    .write = tls_write,
    .output = tls_output,
    .mss = altcp_default_mss,
    .sndbuf = tls_sndbuf,
    .sndqueuelen = altcp_default_sndqueuelen,
    .nagle_disable = altcp_default_nagle_disable,
    .nagle_enable = altcp_default_nagle_enable,
    .nagle_disabled = altcp_default_nagle_disabled,
    .setprio = altcp_default_setprio,
    .dealloc = tls_dealloc,
    .addrinfo = altcp_default_get_tcp_addrinfo,
    .getip = altcp_default_get_ip,
    .getport = altcp_default_get_port,
#ifdef LWIP_DEBUG
    .dbg_get_tcp_state = altcp_default_dbg_get_tcp_state,
#endif
};

/* The allocator: an outer pcb over a fresh TCP pcb (for the listener). */
static struct altcp_pcb *tls_new(void *arg, u8_t ip_type)
{
  LWIP_UNUSED_ARG(arg);
  if (!tls_ready) {
    return NULL;
  }
  struct altcp_pcb *inner = altcp_tcp_new_ip_type(ip_type);
  if (inner == NULL) {
    return NULL;
  }
  struct altcp_pcb *outer = altcp_alloc();
  if (outer == NULL) {
    altcp_close(inner);
    return NULL;
  }
  outer->fns = &tls_functions;
  outer->inner_conn = inner;
  return outer;
}

/* ---- Public API --------------------------------------------------------------- */

/** The allocator for http_listen(): each connection is a TLS pcb over TCP. */
altcp_allocator_t *tls_allocator(void)
{
  tls_alloc_obj.alloc = tls_new;
  tls_alloc_obj.arg = NULL;
  return &tls_alloc_obj;
}

/** Sets up the TLS heap, the random generator and the server configuration (0 or -1, logged). */
int tls_server_init(const tls_server_params_t *p)
{
#if POSTERN_TLS_OWN_HEAP
  arena_init(&tls_heap, tls_heap_mem, sizeof tls_heap_mem);
  mbedtls_platform_set_calloc_free(tls_heap_calloc, tls_heap_free);
#endif
  psa_status_t ps = psa_crypto_init();
  if (ps != PSA_SUCCESS) {
    log_line("tls: the crypto library did not start (PSA %d): no entropy?", (int)ps);
    return -1;
  }
  mbedtls_x509_crt_init(&tls_cert);
  mbedtls_x509_crt_init(&tls_ca);
  mbedtls_pk_init(&tls_key);
  mbedtls_ssl_config_init(&tls_conf);
  int rc = mbedtls_x509_crt_parse(&tls_cert, p->cert, p->cert_len);
  if (rc != 0) {
    log_line("tls: the server certificate does not parse (-0x%04x): PEM or DER, ECDSA P-256", (unsigned)-rc);
    return -1;
  }
  rc = mbedtls_pk_parse_key(&tls_key, p->key, p->key_len, NULL, 0, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
  if (rc != 0 || !mbedtls_pk_can_do(&tls_key, MBEDTLS_PK_ECDSA)) {
    log_line("tls: the server key does not parse as an ECDSA P-256 key (-0x%04x)", (unsigned)-rc);
    return -1;
  }
  rc = mbedtls_pk_check_pair(&tls_cert.pk, &tls_key, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
  if (rc != 0) {
    log_line("tls: the server key does not belong to the certificate (-0x%04x)", (unsigned)-rc);
    return -1;
  }
  rc = mbedtls_ssl_config_defaults(&tls_conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) {
    log_line("tls: cannot set up the TLS configuration (-0x%04x)", (unsigned)-rc);
    return -1;
  }
  static const uint16_t groups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                    MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
  mbedtls_ssl_conf_groups(&tls_conf, groups);
  mbedtls_ssl_conf_min_tls_version(&tls_conf, MBEDTLS_SSL_VERSION_TLS1_2);
  mbedtls_ssl_conf_max_tls_version(&tls_conf, MBEDTLS_SSL_VERSION_TLS1_3);
  mbedtls_ssl_conf_rng(&tls_conf, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
  rc = mbedtls_ssl_conf_own_cert(&tls_conf, &tls_cert, &tls_key);
  if (rc != 0) {
    log_line("tls: cannot use the server certificate (-0x%04x)", (unsigned)-rc);
    return -1;
  }
  int mode = MBEDTLS_SSL_VERIFY_NONE;
  if (p->client_ca != NULL) {
    rc = mbedtls_x509_crt_parse(&tls_ca, p->client_ca, p->client_ca_len);
    if (rc != 0) {
      log_line("tls: the client CA does not parse (-0x%04x)", (unsigned)-rc);
      return -1;
    }
    mbedtls_ssl_conf_ca_chain(&tls_conf, &tls_ca, NULL);
    mode = p->client_cert == TLS_CLIENT_CERT_REQUIRED   ? MBEDTLS_SSL_VERIFY_REQUIRED
           : p->client_cert == TLS_CLIENT_CERT_OPTIONAL ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                        : MBEDTLS_SSL_VERIFY_NONE;
  }
  mbedtls_ssl_conf_authmode(&tls_conf, mode);
  tls_ready = true;
#if POSTERN_TLS_OWN_HEAP
  arena_reset_high_water(&tls_heap);
  log_line("tls: ready: TLS 1.3 and 1.2, %d sessions, heap %u of %u bytes in use (certificates and keys)",
           POSTERN_MAX_TLS_CONNS, (unsigned)arena_in_use(&tls_heap), (unsigned)sizeof tls_heap_mem);
#else
  log_line("tls: ready: TLS 1.3 and 1.2, %d sessions, on the firmware's mbedTLS allocator", POSTERN_MAX_TLS_CONNS);
#endif
  return 0;
}

/** Fills f for a TLS pcb (after its handshake); false for any other pcb. */
bool tls_get_facts(struct altcp_pcb *pcb, tls_facts_t *f)
{
  if (pcb == NULL || pcb->fns != &tls_functions || pcb->state == NULL) {
    return false;
  }
  tls_session_t *s = pcb->state;
  f->version = mbedtls_ssl_get_version(&s->ssl);
  f->cipher = mbedtls_ssl_get_ciphersuite(&s->ssl);
  f->subject = s->has_peer && s->subject[0] != '\0' ? s->subject : NULL;
  f->fingerprint = s->has_peer ? s->fingerprint : NULL;
  return true;
}

/** Heap and session counters. */
void tls_get_stats(tls_stats_t *st)
{
#if POSTERN_TLS_OWN_HEAP
  st->heap_size = sizeof tls_heap_mem;
  st->heap_in_use = arena_in_use(&tls_heap);
  st->heap_high_water = arena_high_water(&tls_heap);
#else
  st->heap_size = st->heap_in_use = st->heap_high_water = 0;
#endif
  st->sessions = tls_active;
  st->sessions_high_water = tls_active_high;
  st->sessions_max = POSTERN_MAX_TLS_CONNS;
  st->handshakes = tls_handshakes;
  st->handshake_failures = tls_failures;
  st->refused_over_limit = tls_refused;
}

#endif /* POSTERN_TLS */
