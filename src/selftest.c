/* selftest.c: TCP echo (port 7) and discard (port 9) on altcp, the raw-TCP baseline for benchmarks. */
#include "selftest.h"

#include <inttypes.h>
#include <stdbool.h>

#include "listen.h"
#include "log.h"
#include "lwip/altcp.h"
#include "lwip/pbuf.h"

#define SELFTEST_ECHO_PORT 7
#define SELFTEST_DISCARD_PORT 9
/** Self-test connections open at once; more are refused. */
#define SELFTEST_MAX_CONNS 4

typedef struct selftest_conn {
  struct altcp_pcb *pcb; /* NULL when the slot is free */
  bool echo;
  bool closing;         /* echo: the peer closed; close once pending is out */
  struct pbuf *pending; /* echo: received bytes not yet written back */
  uint64_t bytes;       /* bytes received on this connection */
} selftest_conn_t;

static selftest_conn_t selftest_conns[SELFTEST_MAX_CONNS];
static uint64_t selftest_discarded;

/** Bytes swallowed by discard connections that have closed, in total. */
uint64_t selftest_discarded_total(void)
{
  return selftest_discarded;
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
  altcp_arg(pcb, NULL);
  altcp_recv(pcb, NULL);
  altcp_sent(pcb, NULL);
  altcp_err(pcb, NULL);
  selftest_release(c);
  if (altcp_close(pcb) != ERR_OK) {
    altcp_abort(pcb);
  }
}

/* Writes back as much pending data as the send buffer takes, and opens the
 * receive window only by what was written: a slow reader slows the sender. */
static void selftest_echo_flush(selftest_conn_t *c)
{
  while (c->pending != NULL) {
    struct pbuf *p = c->pending;
    u16_t room = altcp_sndbuf(c->pcb);
    u16_t n = p->len < room ? p->len : room;
    if (n == 0 || altcp_write(c->pcb, p->payload, n, TCP_WRITE_FLAG_COPY) != ERR_OK) {
      break;
    }
    altcp_recved(c->pcb, n);
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
  LWIP_UNUSED_ARG(pcb);
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
    return ERR_OK;
  }
  c->bytes += p->tot_len;
  if (c->echo) {
    if (c->pending == NULL) {
      c->pending = p;
    } else {
      pbuf_cat(c->pending, p);
    }
    selftest_echo_flush(c);
  } else {
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
  selftest_echo_flush(c);
  if (c->closing && c->pending == NULL) {
    selftest_finish(c, "closed");
  }
  return ERR_OK;
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
  for (int i = 0; i < SELFTEST_MAX_CONNS; i++) {
    if (selftest_conns[i].pcb == NULL) {
      c = &selftest_conns[i];
      break;
    }
  }
  if (c == NULL) {
    log_line("%s: refused, all %d self-test slots busy", echo ? "echo" : "discard", SELFTEST_MAX_CONNS);
    altcp_abort(pcb);
    return ERR_ABRT;
  }
  c->pcb = pcb;
  c->echo = echo;
  c->closing = false;
  c->pending = NULL;
  c->bytes = 0;
  altcp_arg(pcb, c);
  altcp_recv(pcb, selftest_on_recv);
  altcp_sent(pcb, selftest_on_sent);
  altcp_err(pcb, selftest_on_err);
  return ERR_OK;
}

/** Starts echo on device port 7 and discard on device port 9. */
err_t selftest_start(void)
{
  /* The listener's arg only tells echo (non-NULL) from discard. */
  err_t err = listen_on(NULL, SELFTEST_ECHO_PORT, selftest_on_accept, &selftest_conns);
  if (err == ERR_OK) {
    err = listen_on(NULL, SELFTEST_DISCARD_PORT, selftest_on_accept, NULL);
  }
  return err;
}
