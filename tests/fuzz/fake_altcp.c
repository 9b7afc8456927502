/* fake_altcp.c: the altcp functions http_conn.c uses, over a table of fake pcbs that record and check every use. */
#include <stddef.h>
#include <string.h>

#include "ack_now.h"
#include "fuzz_conn_fakes.h"
#include "lwip/altcp.h"
#include "lwip/altcp_tcp.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

fa_pcb_t fa_pcbs[FA_MAX_PCBS];
fa_pcb_t *fa_current;
bool fa_close_fails_next;
uint32_t fa_clock_reads;
int fa_opened;

/* The listening pcb lives across inputs; it is not in the table. */
static struct altcp_pcb fa_listener;
static bool fa_listening;

/* The table entry of a connection pcb, which must still be alive. */
static fa_pcb_t *fa_get(struct altcp_pcb *conn)
{
  FUZZ_CHECK(conn != NULL, "altcp call on a NULL pcb");
  uintptr_t a = (uintptr_t)conn, base = (uintptr_t)fa_pcbs;
  FUZZ_CHECK(a >= base && a < base + sizeof fa_pcbs && (a - base) % sizeof(fa_pcb_t) == 0,
             "altcp call on a pointer that is no pcb");
  fa_pcb_t *f = &fa_pcbs[(a - base) / sizeof(fa_pcb_t)];
  FUZZ_CHECK(f->used && f->alive, "altcp call on a closed, aborted or reset pcb (use after close)");
  return f;
}

static bool fa_is_listener(struct altcp_pcb *conn)
{
  return conn == &fa_listener;
}

/* Runs callbacks with f as the current pcb; checks lwIP's ERR_ABRT contract on the way out. */
static fa_pcb_t *fa_enter(fa_pcb_t *f)
{
  fa_pcb_t *prev = fa_current;
  if (prev == NULL) {
    fa_clock_reads = 0; /* the spin guard counts per outermost callback */
  }
  fa_current = f;
  return prev;
}

/* lwIP's tcp_pcb_purge: a pcb that closes, aborts or is reset drops its refused data. */
static void fa_purge(fa_pcb_t *f)
{
  if (f->refused != NULL) {
    pbuf_free(f->refused);
    f->refused = NULL;
  }
}

static void fa_leave(fa_pcb_t *f, fa_pcb_t *prev, err_t ret)
{
  fa_current = prev;
  if (f->aborted) {
    /* lwIP frees an aborted pcb at once: a callback that aborted must say so. */
    FUZZ_CHECK(ret == ERR_ABRT, "a callback aborted its pcb but did not return ERR_ABRT (lwIP would use freed memory)");
  } else {
    FUZZ_CHECK(ret != ERR_ABRT, "a callback returned ERR_ABRT without aborting its pcb");
  }
}

void fa_reset(void)
{
  for (int i = 0; i < FA_MAX_PCBS; i++) {
    FUZZ_CHECK(!fa_pcbs[i].used || !fa_pcbs[i].alive, "fa_reset with a live pcb");
    fa_pcbs[i].used = false;
  }
  fa_opened = 0;
  fa_current = NULL;
  fa_close_fails_next = false;
}

int fa_live(void)
{
  int n = 0;
  for (int i = 0; i < fa_opened; i++) {
    n += fa_pcbs[i].used && fa_pcbs[i].alive;
  }
  return n;
}

int fa_open(void)
{
  if (!fa_listening || fa_listener.accept == NULL || fa_opened >= FA_MAX_PCBS) {
    return -1;
  }
  int k = fa_opened++;
  fa_pcb_t *f = &fa_pcbs[k];
  memset(f, 0, offsetof(fa_pcb_t, in)); /* the records are valid up to in_len and out_len only */
  f->used = true;
  f->alive = true;
  f->snd_cap = TCP_SND_BUF;
  IP_ADDR4(&f->ip, 10, 0, 2, (u8_t)(2 + k));
  f->port = (u16_t)(40000 + k);
  fa_pcb_t *prev = fa_enter(f);
  err_t ret = fa_listener.accept(fa_listener.arg, &f->pcb, ERR_OK);
  fa_leave(f, prev, ret);
  if (ret != ERR_OK && ret != ERR_ABRT) {
    f->alive = false; /* lwIP aborts a pcb its accept callback refused */
  }
  return k;
}

static fa_pcb_t *fa_slot(int k)
{
  if (k < 0 || k >= fa_opened || !fa_pcbs[k].used || !fa_pcbs[k].alive) {
    return NULL;
  }
  return &fa_pcbs[k];
}

/* One recv callback with p (NULL: FIN); returns what it returned. */
static err_t fa_recv(fa_pcb_t *f, struct pbuf *p)
{
  fa_pcb_t *prev = fa_enter(f);
  err_t ret = f->pcb.recv(f->pcb.arg, &f->pcb, p, ERR_OK);
  fa_leave(f, prev, ret);
  return ret;
}

/* The FIN lwIP held back behind refused data, once that data is taken. */
static void fa_pending_fin(fa_pcb_t *f)
{
  if (f->fin_pending && f->refused == NULL && f->alive && f->pcb.recv != NULL) {
    f->fin_pending = false;
    fa_recv(f, NULL);
  }
}

bool fa_retry_refused(int k)
{
  fa_pcb_t *f = fa_slot(k);
  if (f == NULL) {
    return true;
  }
  if (f->refused != NULL) {
    struct pbuf *p = f->refused;
    f->refused = NULL;
    if (f->pcb.recv == NULL) {
      pbuf_free(p); /* lwIP's tcp_recv_null */
    } else {
      err_t ret = fa_recv(f, p);
      if (ret != ERR_OK && ret != ERR_ABRT && f->alive) {
        f->refused = p; /* refused again: lwIP keeps it for the next try */
      } else if (ret != ERR_OK && ret != ERR_ABRT) {
        pbuf_free(p); /* refused by a callback that closed its pcb: lwIP purges it */
      }
    }
  }
  fa_pending_fin(f);
  return f->refused == NULL;
}

void fa_deliver(int k, struct pbuf *p)
{
  fa_pcb_t *f = fa_slot(k);
  /* lwIP retries refused data when a segment arrives, and drops a data
   * segment while some is still refused (the peer sends it again). */
  if (f == NULL || !fa_retry_refused(k) || !f->alive || f->peer_fin || f->pcb.recv == NULL) {
    pbuf_free(p);
    return;
  }
  for (struct pbuf *q = p; q != NULL; q = q->next) {
    size_t n = q->len;
    if (n > FA_REC_MAX - f->in_len) {
      n = FA_REC_MAX - f->in_len;
    }
    memcpy(f->in + f->in_len, q->payload, n);
    f->in_len += n;
    f->pbufs_held_max++;
  }
  f->delivered += p->tot_len;
  err_t ret = fa_recv(f, p);
  if (ret != ERR_OK && ret != ERR_ABRT) {
    /* lwIP has acknowledged these bytes: it keeps them as refused data and
     * offers them again later, while the window stays closed by as much. */
    if (f->alive) {
      f->refused = p;
    } else {
      pbuf_free(p);
    }
  }
}

void fa_fin(int k)
{
  fa_pcb_t *f = fa_slot(k);
  if (f == NULL || f->peer_fin) {
    return;
  }
  f->peer_fin = true;
  if (f->pcb.recv == NULL) {
    return;
  }
  if (f->refused != NULL) {
    f->fin_pending = true; /* lwIP: refused_data->flags |= PBUF_FLAG_TCP_FIN */
    fa_retry_refused(k);
    return;
  }
  fa_recv(f, NULL);
}

uint32_t fa_pbufs_held(void)
{
  uint32_t n = 0;
  for (int k = 0; k < fa_opened; k++) {
    if (fa_pcbs[k].used && fa_pcbs[k].refused != NULL) {
      n += pbuf_clen(fa_pcbs[k].refused);
    }
  }
  return n;
}

void fa_ack(int k, uint32_t n)
{
  fa_pcb_t *f = fa_slot(k);
  if (f == NULL || f->deaf) {
    return;
  }
  fa_retry_refused(k); /* the ACK is a segment: lwIP offers refused data first */
  if (!f->alive) {
    return;
  }
  if (n > f->unacked) {
    n = f->unacked;
  }
  if (n == 0) {
    return;
  }
  f->unacked -= n;
  for (uint32_t left = n; left > 0;) {
    FUZZ_CHECK(f->seg_count > 0, "fake altcp: segment accounting");
    uint16_t *s = &f->segs[f->seg_head % 64];
    uint32_t take = left < *s ? left : *s;
    *s = (uint16_t)(*s - take);
    left -= take;
    if (*s == 0) {
      f->seg_head++;
      f->seg_count--;
    }
  }
  if (f->pcb.sent != NULL) {
    fa_pcb_t *prev = fa_enter(f);
    err_t ret = f->pcb.sent(f->pcb.arg, &f->pcb, (u16_t)n);
    fa_leave(f, prev, ret);
  }
}

void fa_poll_all(void)
{
  for (int k = 0; k < fa_opened; k++) {
    fa_retry_refused(k); /* tcp_fasttmr */
  }
  for (int k = 0; k < fa_opened; k++) {
    fa_pcb_t *f = fa_slot(k);
    if (f == NULL || f->pcb.poll == NULL) {
      continue;
    }
    fa_pcb_t *prev = fa_enter(f);
    err_t ret = f->pcb.poll(f->pcb.arg, &f->pcb);
    fa_leave(f, prev, ret);
  }
}

void fa_rst(int k)
{
  fa_pcb_t *f = fa_slot(k);
  if (f == NULL) {
    return;
  }
  f->alive = false; /* lwIP frees the pcb before it calls err */
  fa_purge(f);
  if (f->pcb.err != NULL) {
    fa_pcb_t *prev = fa_enter(f);
    f->pcb.err(f->pcb.arg, ERR_RST);
    fa_current = prev;
  }
}

/* ---- The altcp API (prototypes of lwIP 2.2.1's altcp.h and altcp_tcp.h) ---- */

struct altcp_pcb *altcp_tcp_new_ip_type(u8_t ip_type)
{
  LWIP_UNUSED_ARG(ip_type);
  memset(&fa_listener, 0, sizeof fa_listener);
  return &fa_listener;
}

struct altcp_pcb *altcp_new_ip_type(altcp_allocator_t *allocator, u8_t ip_type)
{
  LWIP_UNUSED_ARG(allocator);
  return altcp_tcp_new_ip_type(ip_type);
}

err_t altcp_bind(struct altcp_pcb *conn, const ip_addr_t *ipaddr, u16_t port)
{
  LWIP_UNUSED_ARG(ipaddr);
  LWIP_UNUSED_ARG(port);
  FUZZ_CHECK(fa_is_listener(conn), "altcp_bind on a connection");
  return ERR_OK;
}

struct altcp_pcb *altcp_listen_with_backlog_and_err(struct altcp_pcb *conn, u8_t backlog, err_t *err)
{
  LWIP_UNUSED_ARG(backlog);
  FUZZ_CHECK(fa_is_listener(conn), "altcp_listen on a connection");
  fa_listening = true;
  if (err != NULL) {
    *err = ERR_OK;
  }
  return conn;
}

void altcp_accept(struct altcp_pcb *conn, altcp_accept_fn accept)
{
  FUZZ_CHECK(fa_is_listener(conn), "altcp_accept on a connection");
  conn->accept = accept;
}

void altcp_arg(struct altcp_pcb *conn, void *arg)
{
  if (fa_is_listener(conn)) {
    conn->arg = arg;
    return;
  }
  fa_get(conn)->pcb.arg = arg;
}

void altcp_recv(struct altcp_pcb *conn, altcp_recv_fn recv)
{
  fa_get(conn)->pcb.recv = recv;
}

void altcp_sent(struct altcp_pcb *conn, altcp_sent_fn sent)
{
  fa_get(conn)->pcb.sent = sent;
}

void altcp_err(struct altcp_pcb *conn, altcp_err_fn err)
{
  fa_get(conn)->pcb.err = err;
}

void altcp_poll(struct altcp_pcb *conn, altcp_poll_fn poll, u8_t interval)
{
  fa_pcb_t *f = fa_get(conn);
  f->pcb.poll = poll;
  f->pcb.pollinterval = interval;
}

err_t altcp_write(struct altcp_pcb *conn, const void *dataptr, u16_t len, u8_t apiflags)
{
  fa_pcb_t *f = fa_get(conn);
  FUZZ_CHECK(apiflags & TCP_WRITE_FLAG_COPY, "altcp_write without TCP_WRITE_FLAG_COPY");
  FUZZ_CHECK(dataptr != NULL || len == 0, "altcp_write of NULL");
  if (f->shut_tx) {
    return ERR_CONN; /* lwIP: no writes after FIN */
  }
  if (len == 0) {
    return ERR_OK;
  }
  uint32_t nseg = ((uint32_t)len + TCP_MSS - 1) / TCP_MSS;
  if (f->unacked > f->snd_cap || len > f->snd_cap - f->unacked || f->seg_count + nseg > TCP_SND_QUEUELEN) {
    return ERR_MEM;
  }
  for (uint32_t left = len; left > 0;) {
    uint32_t s = left < TCP_MSS ? left : TCP_MSS;
    f->segs[(f->seg_head + f->seg_count) % 64] = (uint16_t)s;
    f->seg_count++;
    left -= s;
  }
  f->unacked += len;
  f->written += len;
  size_t n = len;
  if (n > FA_REC_MAX - f->out_len) {
    n = FA_REC_MAX - f->out_len;
  }
  memcpy(f->out + f->out_len, dataptr, n);
  f->out_len += n;
  return ERR_OK;
}

err_t altcp_output(struct altcp_pcb *conn)
{
  fa_get(conn);
  return ERR_OK;
}

void altcp_recved(struct altcp_pcb *conn, u16_t len)
{
  fa_pcb_t *f = fa_get(conn);
  f->recved += len;
  FUZZ_CHECK(f->recved <= f->delivered, "altcp_recved for more bytes than were delivered (window wrap)");
}

u16_t altcp_sndbuf(struct altcp_pcb *conn)
{
  fa_pcb_t *f = fa_get(conn);
  return (u16_t)(f->unacked >= f->snd_cap ? 0 : f->snd_cap - f->unacked);
}

u16_t altcp_sndqueuelen(struct altcp_pcb *conn)
{
  return (u16_t)fa_get(conn)->seg_count;
}

err_t altcp_close(struct altcp_pcb *conn)
{
  if (fa_is_listener(conn)) {
    fa_listening = false;
    return ERR_OK;
  }
  fa_pcb_t *f = fa_get(conn);
  if (fa_close_fails_next) {
    fa_close_fails_next = false;
    return ERR_MEM; /* lwIP could not queue the FIN: the pcb stays the caller's */
  }
  f->alive = false;
  fa_purge(f);
  return ERR_OK;
}

void altcp_abort(struct altcp_pcb *conn)
{
  fa_pcb_t *f = fa_get(conn);
  f->alive = false;
  f->aborted = true;
  fa_purge(f);
  /* lwIP's tcp_abort calls the err callback (ERR_ABRT) if one is still set. */
  if (f->pcb.err != NULL) {
    fa_pcb_t *prev = fa_enter(f);
    f->pcb.err(f->pcb.arg, ERR_ABRT);
    fa_current = prev;
  }
}

err_t altcp_shutdown(struct altcp_pcb *conn, int shut_rx, int shut_tx)
{
  fa_pcb_t *f = fa_get(conn);
  if (shut_rx && shut_tx) {
    return altcp_close(conn);
  }
  if (shut_tx) {
    f->shut_tx = true;
  }
  return ERR_OK;
}

ip_addr_t *altcp_get_ip(struct altcp_pcb *conn, int local)
{
  LWIP_UNUSED_ARG(local);
  return &fa_get(conn)->ip;
}

u16_t altcp_get_port(struct altcp_pcb *conn, int local)
{
  return local ? 80 : fa_get(conn)->port;
}

void altcp_setprio(struct altcp_pcb *conn, u8_t prio)
{
  fa_get(conn)->prio = prio;
}

/* port/ack_now.c reaches lwIP's tcp_pcb; here the request is only counted. */
void ack_now(struct altcp_pcb *conn)
{
  fa_get(conn)->acks_now++;
}
