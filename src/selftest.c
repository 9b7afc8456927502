/* selftest.c: TCP echo (port 7) and discard (port 9) on altcp, the raw-TCP baseline for benchmarks. */
#include "selftest.h"

#include <inttypes.h>
#include <stdbool.h>

#include "listen.h"
#include "log.h"
#include "lwip/altcp.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "postern_opts.h"

#define SELFTEST_ECHO_PORT 7
#define SELFTEST_DISCARD_PORT 9

/* Poll interval in lwIP's coarse timer ticks (500 ms): once a second. */
#define SELFTEST_POLL_TICKS 2

/* Received pbufs an echo connection keeps while its output waits. Its window
 * admits POSTERN_SELFTEST_ECHO_BUF bytes, as many full segments; a peer that
 * sends smaller ones would otherwise pin a pool pbuf per byte or two. */
#define SELFTEST_ECHO_PBUFS ((POSTERN_SELFTEST_ECHO_BUF + TCP_MSS - 1) / TCP_MSS)

/* Receive window an echo connection never hands back, so that what the peer
 * may have in flight plus what waits here stays within the bound. lwIP
 * cannot shrink an advertised window; not reopening it has the same effect. */
#if POSTERN_SELFTEST_ECHO_BUF < TCP_WND
#define SELFTEST_ECHO_WITHHOLD (TCP_WND - POSTERN_SELFTEST_ECHO_BUF)
#else
#define SELFTEST_ECHO_WITHHOLD 0
#endif

typedef struct selftest_conn {
  struct altcp_pcb *pcb; /* NULL when the slot is free */
  bool echo;
  bool closing;         /* echo: the peer closed; close once pending is out */
  struct pbuf *pending; /* echo: received bytes not yet written back */
  uint32_t withheld;    /* echo: bytes echoed whose window stays closed */
  uint32_t last_ms;     /* last byte received or acknowledged */
  uint64_t bytes;       /* bytes received on this connection */
} selftest_conn_t;

static selftest_conn_t selftest_conns[POSTERN_SELFTEST_MAX_CONNS];
static uint64_t selftest_discarded;
static uint32_t selftest_idle_ms = POSTERN_SELFTEST_IDLE_S * 1000u;
/* Set when a callback aborted its pcb: lwIP must then be told ERR_ABRT, or it
 * goes on with the pcb it has just freed. */
static bool selftest_aborted;

/** Bytes swallowed by discard connections that have closed, in total. */
uint64_t selftest_discarded_total(void)
{
  return selftest_discarded;
}

/* What a callback returns: ERR_ABRT when it aborted its pcb. */
static err_t selftest_cb_result(void)
{
  bool aborted = selftest_aborted;
  selftest_aborted = false;
  return aborted ? ERR_ABRT : ERR_OK;
}

static void selftest_release(selftest_conn_t *c)
{
  if (c->pending != NULL) {
    pbuf_free(c->pending);
    c->pending = NULL;
  }
  c->pcb = NULL;
}

static void selftest_finish(selftest_conn_t *c, const char *how)
{
  if (!c->echo) {
    selftest_discarded += c->bytes;
  }
  log_line("%s: connection %s after %" PRIu64 " bytes", c->echo ? "echo" : "discard", how, c->bytes);
  struct altcp_pcb *pcb = c->pcb;
  /* The withheld window is handed back, or lwIP would take it for unread
   * data and reset instead of closing. Unechoed data still resets. */
  if (c->withheld > 0) {
    altcp_recved(pcb, (u16_t)c->withheld);
  }
  altcp_arg(pcb, NULL);
  altcp_recv(pcb, NULL);
  altcp_sent(pcb, NULL);
  altcp_err(pcb, NULL);
  altcp_poll(pcb, NULL, 0);
  selftest_release(c);
  if (altcp_close(pcb) != ERR_OK) {
    altcp_abort(pcb);
    selftest_aborted = true;
  }
}

/* Reopens the receive window by n echoed bytes, less what stays withheld. */
static void selftest_echo_reopen(selftest_conn_t *c, u16_t n)
{
  uint32_t give = n;
  if (c->withheld < SELFTEST_ECHO_WITHHOLD) {
    uint32_t keep = SELFTEST_ECHO_WITHHOLD - c->withheld;
    keep = keep < give ? keep : give;
    c->withheld += keep;
    give -= keep;
  }
  if (give > 0) {
    altcp_recved(c->pcb, (u16_t)give);
  }
}

/* Writes back as much pending data as the send buffer takes, at most
 * POSTERN_SELFTEST_ECHO_BUF bytes unacknowledged, and opens the receive
 * window only by what was written: a slow reader slows the sender. */
static void selftest_echo_flush(selftest_conn_t *c)
{
  while (c->pending != NULL) {
    struct pbuf *p = c->pending;
    u16_t room = altcp_sndbuf(c->pcb);
    u32_t queued = TCP_SND_BUF > room ? TCP_SND_BUF - room : 0;
    if (queued >= POSTERN_SELFTEST_ECHO_BUF) {
      break;
    }
    if (room > POSTERN_SELFTEST_ECHO_BUF - queued) {
      room = (u16_t)(POSTERN_SELFTEST_ECHO_BUF - queued);
    }
    u16_t n = p->len < room ? p->len : room;
    if (n == 0 || altcp_write(c->pcb, p->payload, n, TCP_WRITE_FLAG_COPY) != ERR_OK) {
      break; /* no room, or no heap: the sent or poll callback tries again */
    }
    selftest_echo_reopen(c, n);
    if (n < p->len) {
      pbuf_remove_header(p, n);
      break;
    }
    c->pending = pbuf_free_header(p, n);
  }
  altcp_output(c->pcb);
}

static err_t selftest_on_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
  selftest_conn_t *c = arg;
  if (c == NULL) {
    if (p != NULL) {
      altcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (p == NULL || err != ERR_OK) {
    if (p != NULL) {
      pbuf_free(p);
    }
    if (c->echo && c->pending != NULL) {
      selftest_echo_flush(c);
      if (c->pending != NULL) {
        c->closing = true; /* selftest_on_sent() finishes */
        return ERR_OK;
      }
    }
    selftest_finish(c, "closed");
    return selftest_cb_result();
  }
  if (c->echo) {
    if (c->pending != NULL && pbuf_clen(c->pending) + pbuf_clen(p) > SELFTEST_ECHO_PBUFS) {
      selftest_echo_flush(c);
      if (c->pending != NULL && pbuf_clen(c->pending) + pbuf_clen(p) > SELFTEST_ECHO_PBUFS) {
        /* lwIP keeps p as refused data, offers it again on the next segment
         * or timer tick, and drops further data until it is taken. */
        return ERR_MEM;
      }
    }
    c->bytes += p->tot_len;
    c->last_ms = sys_now();
    if (c->pending == NULL) {
      c->pending = p;
    } else {
      pbuf_cat(c->pending, p);
    }
    selftest_echo_flush(c);
  } else {
    c->bytes += p->tot_len;
    c->last_ms = sys_now();
    altcp_recved(pcb, p->tot_len);
    pbuf_free(p);
  }
  return ERR_OK;
}

static err_t selftest_on_sent(void *arg, struct altcp_pcb *pcb, u16_t len)
{
  selftest_conn_t *c = arg;
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(len);
  if (c == NULL) {
    return ERR_OK;
  }
  c->last_ms = sys_now();
  selftest_echo_flush(c);
  if (c->closing && c->pending == NULL) {
    selftest_finish(c, "closed");
  }
  return selftest_cb_result();
}

/* Once a second: an echo that waited for heap tries again; a connection
 * silent for the idle time is closed (a client that stopped reading too). */
static err_t selftest_on_poll(void *arg, struct altcp_pcb *pcb)
{
  selftest_conn_t *c = arg;
  if (c == NULL) {
    altcp_abort(pcb);
    return ERR_ABRT;
  }
  if (c->echo) {
    selftest_echo_flush(c);
  }
  if (c->closing && c->pending == NULL) {
    selftest_finish(c, "closed");
  } else if (sys_now() - c->last_ms >= selftest_idle_ms) {
    selftest_finish(c, "timed out");
  }
  return selftest_cb_result();
}

static void selftest_on_err(void *arg, err_t err)
{
  selftest_conn_t *c = arg;
  if (c == NULL) {
    return;
  }
  if (!c->echo) {
    selftest_discarded += c->bytes;
  }
  /* The pcb is already gone: only the slot is released. */
  log_line("%s: connection reset (%d) after %" PRIu64 " bytes", c->echo ? "echo" : "discard", (int)err, c->bytes);
  selftest_release(c);
}

static err_t selftest_on_accept(void *arg, struct altcp_pcb *pcb, err_t err)
{
  bool echo = arg != NULL;
  if (err != ERR_OK || pcb == NULL) {
    return ERR_VAL;
  }
  selftest_conn_t *c = NULL;
  for (int i = 0; i < POSTERN_SELFTEST_MAX_CONNS; i++) {
    if (selftest_conns[i].pcb == NULL) {
      c = &selftest_conns[i];
      break;
    }
  }
  if (c == NULL) {
    log_line("%s: refused, all %d self-test slots busy", echo ? "echo" : "discard", POSTERN_SELFTEST_MAX_CONNS);
    if (altcp_close(pcb) != ERR_OK) {
      altcp_abort(pcb);
      return ERR_ABRT;
    }
    return ERR_OK;
  }
  c->pcb = pcb;
  c->echo = echo;
  c->closing = false;
  c->pending = NULL;
  c->withheld = 0;
  c->last_ms = sys_now();
  c->bytes = 0;
  altcp_arg(pcb, c);
  altcp_recv(pcb, selftest_on_recv);
  altcp_sent(pcb, selftest_on_sent);
  altcp_err(pcb, selftest_on_err);
  altcp_poll(pcb, selftest_on_poll, SELFTEST_POLL_TICKS);
  return ERR_OK;
}

/**
 * Starts echo on device port 7 and discard on device port 9; a connection
 * silent for idle_s seconds is closed (0: POSTERN_SELFTEST_IDLE_S).
 */
err_t selftest_start(uint32_t idle_s)
{
  selftest_idle_ms = (idle_s != 0 ? idle_s : POSTERN_SELFTEST_IDLE_S) * 1000u;
  /* The listener's arg only tells echo (non-NULL) from discard. The lowest
   * priority lets an HTTP connection take a self-test pcb when none is left. */
  err_t err = listen_on_prio(NULL, SELFTEST_ECHO_PORT, selftest_on_accept, &selftest_conns, TCP_PRIO_MIN);
  if (err == ERR_OK) {
    err = listen_on_prio(NULL, SELFTEST_DISCARD_PORT, selftest_on_accept, NULL, TCP_PRIO_MIN);
  }
  return err;
}
