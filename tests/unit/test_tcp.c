/* test_tcp.c: the device's TCP receive path: when lwIP acknowledges a lone segment, and how the pool recovers.
 *
 * A sender in slow start has one segment in flight and waits for its ACK.
 * Out-of-sequence segments queued by a few connections can fill the receive
 * pool. Real lwIP, postern's lwipopts.h, port/ack_now.c and port/pool_free.c,
 * over a netif whose wire is this file: segments are built here and fed to
 * ip4_input() the way a driver feeds frames (pool_has_room() first), and what
 * lwIP sends is read back. No wall clock: "at once" means the ACK left during
 * the input call, before any lwIP timer ran.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ack_now.h"
#include "lwip/altcp.h"
#include "lwip/altcp_tcp.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/prot/tcp.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "platform.h"
#include "pool_free.h"
#include "unit.h"

static uint32_t fake_now = 1000;

u32_t sys_now(void)
{
  return fake_now;
}

void platform_console_write(const char *s, size_t n)
{
  fwrite(s, 1, n, stdout);
}

bool platform_unix_time(uint64_t *seconds)
{
  (void)seconds;
  return false;
}

uint32_t platform_random(void)
{
  return 4;
}

/* ---- The wire ------------------------------------------------------------- */

#define PEER_IP 0x0a000202u   /* 10.0.2.2, the slirp host */
#define DEVICE_IP 0x0a00020fu /* 10.0.2.15 */
#define DEVICE_PORT 80

typedef struct seg {
  uint8_t flags;
  uint32_t seq, ack;
  uint16_t wnd, len;
} seg_t;

static struct netif nif;
static seg_t sent[16]; /* what the device sent since the last wire_clear() */
static int n_sent;

static uint16_t get16(const uint8_t *p)
{
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
  return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void put16(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
  put16(p, v >> 16);
  put16(p + 2, v);
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
  for (size_t i = 0; i + 1 < n; i += 2) {
    acc += get16(p + i);
  }
  if (n & 1) {
    acc += (uint32_t)p[n - 1] << 8;
  }
  return acc;
}

static uint16_t fold(uint32_t acc)
{
  while (acc >> 16) {
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return (uint16_t)~acc;
}

/* The device's IP output: records each TCP segment's header. */
static err_t wire_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
  (void)netif;
  (void)dst;
  uint8_t b[1600];
  u16_t n = pbuf_copy_partial(p, b, sizeof b, 0);
  size_t ihl = (size_t)(b[0] & 15) * 4;
  const uint8_t *t = b + ihl;
  size_t thl = (size_t)(t[12] >> 4) * 4;
  if (n_sent < (int)(sizeof sent / sizeof sent[0])) {
    sent[n_sent++] = (seg_t){t[13], get32(t + 4), get32(t + 8), get16(t + 14), (uint16_t)(n - ihl - thl)};
  }
  return ERR_OK;
}

static err_t wire_netif_init(struct netif *netif)
{
  netif->name[0] = 't';
  netif->name[1] = 'w';
  netif->mtu = 1500;
  netif->output = wire_output;
  netif->flags = NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

static void wire_clear(void)
{
  n_sent = 0;
}

/* The peer sends one segment (an MSS option with SYN); false when the pool
 * has no room for the frame, which then waits, as at a driver. */
static bool wire_send(uint16_t port, uint8_t flags, uint32_t seq, uint32_t ack, const uint8_t *data, uint16_t len)
{
  uint8_t b[20 + 24 + TCP_MSS];
  size_t thl = (flags & TCP_SYN) ? 24 : 20;
  size_t tot = 20 + thl + len;
  memset(b, 0, 20 + thl);
  b[0] = 0x45;
  put16(b + 2, tot);
  b[8] = 64;
  b[9] = IP_PROTO_TCP;
  put32(b + 12, PEER_IP);
  put32(b + 16, DEVICE_IP);
  put16(b + 10, fold(sum16(b, 20, 0)));
  uint8_t *t = b + 20;
  put16(t, port);
  put16(t + 2, DEVICE_PORT);
  put32(t + 4, seq);
  put32(t + 8, ack);
  t[12] = (uint8_t)(thl / 4 << 4);
  t[13] = flags;
  put16(t + 14, 65535);
  if (flags & TCP_SYN) {
    t[20] = 2; /* MSS */
    t[21] = 4;
    put16(t + 22, TCP_MSS);
  }
  if (len > 0) {
    memcpy(t + thl, data, len);
  }
  uint8_t pseudo[12];
  put32(pseudo, PEER_IP);
  put32(pseudo + 4, DEVICE_IP);
  pseudo[8] = 0;
  pseudo[9] = IP_PROTO_TCP;
  put16(pseudo + 10, thl + len);
  put16(t + 16, fold(sum16(t, thl + len, sum16(pseudo, sizeof pseudo, 0))));
  if (!pool_has_room((u16_t)tot)) {
    return false;
  }
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)tot, PBUF_POOL);
  CHECK(p != NULL);
  if (p == NULL) {
    return false;
  }
  pbuf_take(p, b, (u16_t)tot);
  if (ip4_input(p, &nif) != ERR_OK) {
    pbuf_free(p);
  }
  return true;
}

/* Lets lwIP's timers run for ms milliseconds, 10 ms at a time. */
static void run_timers(uint32_t ms)
{
  for (uint32_t t = 0; t < ms; t += 10) {
    fake_now += 10;
    sys_check_timeouts();
  }
}

/* ---- The device: an altcp listener that consumes everything -------------- */

static struct altcp_pcb *conn; /* the accepted connection */
static bool ack_in_recv;       /* the recv callback calls ack_now() */
static uint32_t consumed;

static err_t dev_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
  (void)err;
  if (p == NULL) {
    return ERR_OK;
  }
  consumed += p->tot_len;
  if (arg != NULL) {
    *(uint32_t *)arg += p->tot_len; /* this connection's own count */
  }
  altcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  if (ack_in_recv) {
    ack_now(pcb);
  }
  return ERR_OK;
}

static err_t dev_accept(void *arg, struct altcp_pcb *pcb, err_t err)
{
  (void)arg;
  (void)err;
  conn = pcb;
  altcp_recv(pcb, dev_recv);
  return ERR_OK;
}

static void device_listen(void)
{
  struct altcp_pcb *l = altcp_tcp_new_ip_type(IPADDR_TYPE_V4);
  CHECK(l != NULL && altcp_bind(l, IP4_ADDR_ANY, DEVICE_PORT) == ERR_OK);
  l = altcp_listen(l);
  CHECK(l != NULL);
  altcp_accept(l, dev_accept);
}

/* A fresh connection from `port`: the handshake; returns the device's next expected sequence number. */
static uint32_t peer_connect(uint16_t port, uint32_t *dev_seq)
{
  conn = NULL;
  wire_clear();
  wire_send(port, TCP_SYN, 1000, 0, NULL, 0);
  CHECK_EQ(n_sent, 1);
  CHECK_EQ(sent[0].flags, TCP_SYN | TCP_ACK);
  *dev_seq = sent[0].seq + 1;
  wire_send(port, TCP_ACK, 1001, *dev_seq, NULL, 0);
  CHECK(conn != NULL);
  wire_clear();
  return 1001;
}

static void peer_reset(void)
{
  if (conn != NULL) {
    altcp_abort(conn);
    conn = NULL;
  }
  ack_in_recv = false;
  consumed = 0;
  wire_clear();
}

static uint8_t payload[TCP_MSS];

/* ---- Cases ------------------------------------------------------------------ */

/* Without help, a lone short segment (a request head) is acknowledged only
 * on the delayed-ACK tick: a response written meanwhile would carry the ACK. */
static void test_short_segment_ack_waits_for_the_tick(void)
{
  uint32_t dev_seq, seq = peer_connect(40001, &dev_seq);
  wire_send(40001, TCP_ACK | TCP_PSH, seq, dev_seq, payload, 140);
  CHECK_EQ(consumed, 140);
  CHECK_EQ(n_sent, 0); /* held back */
  run_timers(260);     /* tcp_fasttmr runs every 250 ms */
  CHECK_EQ(n_sent, 1);
  CHECK_EQ(sent[0].ack, seq + 140);
  peer_reset();
}

/* ack_now() in the recv callback: the head's ACK leaves with the input. */
static void test_ack_now_sends_the_ack_at_once(void)
{
  uint32_t dev_seq, seq = peer_connect(40002, &dev_seq);
  ack_in_recv = true;
  wire_send(40002, TCP_ACK | TCP_PSH, seq, dev_seq, payload, 140);
  CHECK_EQ(n_sent, 1);
  CHECK_EQ(sent[0].flags & TCP_ACK, TCP_ACK);
  CHECK_EQ(sent[0].len, 0);
  CHECK_EQ(sent[0].ack, seq + 140);
  CHECK_EQ(sent[0].wnd, TCP_WND - 140); /* what was consumed reopens only by whole segments */
  peer_reset();
}

/* ack_now() outside a callback sends at once too. */
static void test_ack_now_outside_a_callback(void)
{
  uint32_t dev_seq, seq = peer_connect(40003, &dev_seq);
  wire_send(40003, TCP_ACK | TCP_PSH, seq, dev_seq, payload, 300);
  CHECK_EQ(n_sent, 0);
  ack_now(conn);
  CHECK_EQ(n_sent, 1);
  CHECK_EQ(sent[0].ack, seq + 300);
  peer_reset();
}

/* A lone full segment, consumed in the callback, is acknowledged at once
 * with the whole window (TCP_WND_UPDATE_THRESHOLD in lwipopts.h): the first
 * body segment after an idle pause is one. */
static void test_consumed_full_segment_is_acknowledged_at_once(void)
{
  uint32_t dev_seq, seq = peer_connect(40004, &dev_seq);
  wire_send(40004, TCP_ACK, seq, dev_seq, payload, TCP_MSS);
  CHECK_EQ(consumed, TCP_MSS);
  CHECK_EQ(n_sent, 1);
  CHECK_EQ(sent[0].ack, seq + TCP_MSS);
  CHECK_EQ(sent[0].wnd, TCP_WND);
  peer_reset();
}

/* Two connections each lose their first segment and queue the next ones out
 * of sequence while the application holds the rest of the pool: the pool is
 * empty, and the lost segment's frame waits for it. pool_has_room() gives
 * one queue back so that the frame gets in; once the peer resends, both
 * streams arrive whole and every pbuf is back in the pool. (Without it, the
 * frame waited for lwIP's out-of-sequence timeout: six RTOs.) */
static void test_ooseq_that_fills_the_pool_is_given_back(void)
{
  enum { SEGS = TCP_OOSEQ_MAX_PBUFS + 1 };
  CHECK(PBUF_POOL_SIZE > 2 * TCP_OOSEQ_MAX_PBUFS);
  struct pbuf *held[PBUF_POOL_SIZE];
  int n_held = 0;
  uint32_t got[2] = {0, 0}, seq[2], dev_seq[2];
  struct altcp_pcb *pcbs[2];
  for (int i = 0; i < 2; i++) {
    seq[i] = peer_connect((uint16_t)(40011 + i), &dev_seq[i]);
    pcbs[i] = conn;
    altcp_arg(conn, &got[i]);
  }
  conn = NULL;
  while (pool_free() > 2 * TCP_OOSEQ_MAX_PBUFS) {
    held[n_held++] = pbuf_alloc(PBUF_RAW, PBUF_POOL_BUFSIZE, PBUF_POOL);
  }
  for (int i = 0; i < 2; i++) {
    for (uint32_t k = 1; k < SEGS; k++) {
      CHECK(wire_send((uint16_t)(40011 + i), TCP_ACK, seq[i] + k * TCP_MSS, dev_seq[i], payload, TCP_MSS));
    }
  }
  CHECK_EQ(got[0] + got[1], 0);
  CHECK_EQ(pool_free(), 0);
  /* The first connection's lost segment: it gets in without any timer running. */
  CHECK(wire_send(40011, TCP_ACK, seq[0], dev_seq[0], payload, TCP_MSS));
  CHECK(got[0] >= TCP_MSS);
  /* The peer goes back to what was not acknowledged, on both connections. */
  for (int i = 0; i < 2; i++) {
    for (uint32_t k = got[i] / TCP_MSS; k < SEGS; k++) {
      CHECK(wire_send((uint16_t)(40011 + i), TCP_ACK, seq[i] + k * TCP_MSS, dev_seq[i], payload, TCP_MSS));
    }
    CHECK_EQ(got[i], SEGS * TCP_MSS);
  }
  while (n_held > 0) {
    pbuf_free(held[--n_held]);
  }
  for (int i = 0; i < 2; i++) {
    altcp_abort(pcbs[i]);
  }
  CHECK_EQ(pool_free(), PBUF_POOL_SIZE);
  peer_reset();
}

int main(void)
{
  lwip_init();
  ip4_addr_t ip, mask, gw;
  IP4_ADDR(&ip, 10, 0, 2, 15);
  IP4_ADDR(&mask, 255, 255, 255, 0);
  IP4_ADDR(&gw, 10, 0, 2, 2);
  CHECK(netif_add(&nif, &ip, &mask, &gw, NULL, wire_netif_init, ip4_input) != NULL);
  netif_set_default(&nif);
  netif_set_up(&nif);
  device_listen();
  RUN(test_short_segment_ack_waits_for_the_tick);
  RUN(test_ack_now_sends_the_ack_at_once);
  RUN(test_ack_now_outside_a_callback);
  RUN(test_consumed_full_segment_is_acknowledged_at_once);
  RUN(test_ooseq_that_fills_the_pool_is_given_back);
  return UNIT_END();
}
