/* slirp_netif.c: an lwIP Ethernet netif whose wire is libslirp (user-mode networking, no root). */
#include "slirp_netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <slirp/libslirp.h>

#include "board_opts.h"
#include "ipv6.h"
#include "log.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "netif/ethernet.h"
#include "pool_free.h"
#include "platform.h"
#if !NO_SYS
#include "lwip/tcpip.h"
#endif
#if LWIP_IPV6
#include "lwip/ethip6.h"
#endif

/*
 * NO_SYS 1: everything here runs in the main loop. NO_SYS 0 (rtos_host.c):
 * every slirp_* call, slirp's callbacks and the receive queue belong to the
 * slirp thread (slirp_netif_poll()); lwIP's side (linkoutput, the netif) to
 * tcpip_thread. Frames lwIP sends cross over a datagram socket pair, which
 * wakes the slirp thread's poll(); frames slirp produces go to tcpip_thread
 * through tcpip_input() (the netif's input), in pool pbufs.
 */

/* The guest network as QEMU's user-mode networking lays it out. */
#define SLIRP_NET "10.0.2.0"
#define SLIRP_MASK "255.255.255.0"
#define SLIRP_HOST "10.0.2.2"
#define SLIRP_GUEST "10.0.2.15"
/* IPv6 as QEMU lays it out too: the router (slirp) advertises fec0::/64 and is fec0::2. */
#define SLIRP_PREFIX6 "fec0::"
#define SLIRP_PREFIX6_LEN 64
#define SLIRP_HOST6 "fec0::2"
#define SLIRP_NAMESERVER6 "fec0::3"

/** Frames slirp may hand us between two turns of the main loop. */
#define SLIRP_RX_SLOTS 64
/** File descriptors slirp may ask us to poll at once. */
#define SLIRP_MAX_FDS 256
/** Timers slirp may create (it uses one, for IPv6 router adverts). */
#define SLIRP_MAX_TIMERS 4

typedef struct slirp_timer {
  SlirpTimerCb cb;
  void *cb_opaque;
  int64_t expire_ms; /* -1: not armed */
  int used;
} slirp_timer_t;

static Slirp *slirp_ctx;
static struct netif *slirp_nif;
static uint8_t slirp_rx_frames[SLIRP_RX_SLOTS][FRAMEQ_FRAME_MAX];
static uint16_t slirp_rx_lengths[SLIRP_RX_SLOTS];
static frameq_t slirp_rxq;
static struct pollfd slirp_fds[SLIRP_MAX_FDS];
static int slirp_nfds;
static slirp_timer_t slirp_timers[SLIRP_MAX_TIMERS];
static uint8_t slirp_tx_frame[FRAMEQ_FRAME_MAX];
static const uint8_t slirp_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
#if NO_SYS
/** A frame that waits in the queue is fed on the next turn at once. */
#define SLIRP_BACKLOG_RETRY_MS 0
#else
/** tcpip_thread's mailbox or the pbuf pool was full: the queued frames are fed again this soon. */
#define SLIRP_BACKLOG_RETRY_MS 1
/* [1]: linkoutput writes lwIP's frames (tcpip_thread); [0]: the slirp thread reads them. */
static int slirp_tx_fds[2] = {-1, -1};
static uint8_t slirp_wire_frame[FRAMEQ_FRAME_MAX]; /* the slirp thread's copy of one */
#endif

/* Link counters: the slirp thread and tcpip_thread both count (NO_SYS 0). */
#define SLIRP_STATS_INC(x)      \
  do {                          \
    SYS_ARCH_DECL_PROTECT(lev); \
    SYS_ARCH_PROTECT(lev);      \
    LINK_STATS_INC(x);          \
    SYS_ARCH_UNPROTECT(lev);    \
  } while (0)

static int64_t slirp_clock_ns(void *opaque)
{
  (void)opaque;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* slirp -> device. Called from inside slirp, possibly while lwIP is
 * transmitting, so the frame is only queued; the main loop feeds lwIP. */
static ssize_t slirp_send_packet(const void *buf, size_t len, void *opaque)
{
  (void)opaque;
  frameq_push(&slirp_rxq, buf, len);
  return (ssize_t)len;
}

static void slirp_guest_error(const char *msg, void *opaque)
{
  (void)opaque;
  /* A line of its own: with NO_SYS 0 this is the slirp thread, and log_line() is tcpip_thread's. */
  char line[200];
  int n = snprintf(line, sizeof line, "slirp: guest error: %s\n", msg);
  if (n > 0) {
    platform_console_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  }
}

static void *slirp_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
  (void)opaque;
  for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
    if (!slirp_timers[i].used) {
      slirp_timers[i] = (slirp_timer_t){cb, cb_opaque, -1, 1};
      return &slirp_timers[i];
    }
  }
  log_line("slirp: out of timers");
  return NULL;
}

static void slirp_timer_free(void *timer, void *opaque)
{
  (void)opaque;
  if (timer != NULL) {
    ((slirp_timer_t *)timer)->used = 0;
  }
}

static void slirp_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
  (void)opaque;
  if (timer != NULL) {
    ((slirp_timer_t *)timer)->expire_ms = expire_ms;
  }
}

static void slirp_register_fd(int fd, void *opaque)
{
  (void)fd;
  (void)opaque;
}

static void slirp_notify(void *opaque)
{
  (void)opaque;
}

static const SlirpCb slirp_callbacks = {
    .send_packet = slirp_send_packet,
    .guest_error = slirp_guest_error,
    .clock_get_ns = slirp_clock_ns,
    .timer_new = slirp_timer_new,
    .timer_free = slirp_timer_free,
    .timer_mod = slirp_timer_mod,
    .register_poll_fd = slirp_register_fd,
    .unregister_poll_fd = slirp_register_fd,
    .notify = slirp_notify,
};

static short slirp_to_poll(int events)
{
  short e = 0;
  if (events & SLIRP_POLL_IN)
    e |= POLLIN;
  if (events & SLIRP_POLL_OUT)
    e |= POLLOUT;
  if (events & SLIRP_POLL_PRI)
    e |= POLLPRI;
  if (events & SLIRP_POLL_ERR)
    e |= POLLERR;
  if (events & SLIRP_POLL_HUP)
    e |= POLLHUP;
  return e;
}

static int slirp_add_poll(int fd, int events, void *opaque)
{
  (void)opaque;
  if (slirp_nfds >= SLIRP_MAX_FDS) {
    return -1;
  }
  slirp_fds[slirp_nfds].fd = fd;
  slirp_fds[slirp_nfds].events = slirp_to_poll(events);
  slirp_fds[slirp_nfds].revents = 0;
  return slirp_nfds++;
}

static int slirp_get_revents(int idx, void *opaque)
{
  (void)opaque;
  if (idx < 0 || idx >= slirp_nfds) {
    return 0;
  }
  short r = slirp_fds[idx].revents;
  int e = 0;
  if (r & POLLIN)
    e |= SLIRP_POLL_IN;
  if (r & POLLOUT)
    e |= SLIRP_POLL_OUT;
  if (r & POLLPRI)
    e |= SLIRP_POLL_PRI;
  if (r & POLLERR)
    e |= SLIRP_POLL_ERR;
  if (r & POLLHUP)
    e |= SLIRP_POLL_HUP;
  return e;
}

/* device -> slirp: lwIP hands a frame (maybe a pbuf chain) to the wire. */
static err_t slirp_linkoutput(struct netif *netif, struct pbuf *p)
{
  (void)netif;
  if (p->tot_len > sizeof slirp_tx_frame) {
    SLIRP_STATS_INC(link.drop);
    return ERR_BUF;
  }
  u16_t n = pbuf_copy_partial(p, slirp_tx_frame, p->tot_len, 0);
#if NO_SYS
  if (slirp_ctx == NULL) {
    return ERR_OK; /* stopped: the wire is gone */
  }
  slirp_input(slirp_ctx, slirp_tx_frame, n);
#else
  /* To the slirp thread; the socket's buffer holds hundreds of frames, and a
   * full one waits for the slirp thread, which never waits for this one. */
  ssize_t w;
  while ((w = send(slirp_tx_fds[1], slirp_tx_frame, n, 0)) < 0 && errno == EINTR) {
  }
  if (w != (ssize_t)n) {
    SLIRP_STATS_INC(link.drop);
    return ERR_IF;
  }
#endif
  SLIRP_STATS_INC(link.xmit);
  return ERR_OK;
}

static err_t slirp_netif_init(struct netif *netif)
{
  netif->name[0] = 's';
  netif->name[1] = 'l';
  netif->mtu = 1500;
  netif->hwaddr_len = 6;
  memcpy(netif->hwaddr, slirp_mac, sizeof slirp_mac);
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
  netif->output = etharp_output;
#if LWIP_IPV6
  netif->flags |= NETIF_FLAG_MLD6; /* slirp passes every frame: no MAC filter to program */
  netif->output_ip6 = ethip6_output;
#endif
  netif->linkoutput = slirp_linkoutput;
  return ERR_OK;
}

/* The device's SLAAC address on SLIRP_PREFIX6: the prefix and the EUI-64 of its MAC, as lwIP forms it. */
static void slirp_guest6(struct in6_addr *out)
{
  inet_pton(AF_INET6, SLIRP_PREFIX6, out);
  static const uint8_t u_bit = 0x02; /* universal/local bit, inverted in the EUI-64 */
  const uint8_t eui64[8] = {(uint8_t)(slirp_mac[0] ^ u_bit),
                            slirp_mac[1],
                            slirp_mac[2],
                            0xff,
                            0xfe,
                            slirp_mac[3],
                            slirp_mac[4],
                            slirp_mac[5]};
  memcpy(&out->s6_addr[8], eui64, sizeof eui64);
}

/*
 * libslirp listens on each forward with a backlog of one: when two clients
 * connect while the main loop is busy, the kernel drops the second SYN and
 * that client waits a second for its retransmission. The forwards are the
 * only listening sockets of this process, so each gets a real backlog once
 * they exist (listen() again on a listening socket only changes it).
 */
#define SLIRP_FORWARD_BACKLOG 16

static void slirp_widen_backlogs(void)
{
  for (int fd = 0; fd < 1024; fd++) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
      (void)listen(fd, SLIRP_FORWARD_BACKLOG);
    }
  }
}

/* [::1]:host_port -> the device's SLAAC address, device_port. */
static int slirp_forward6(const slirp_forward_t *f)
{
  struct sockaddr_in6 host, guest;
  memset(&host, 0, sizeof host);
  memset(&guest, 0, sizeof guest);
  host.sin6_family = AF_INET6;
  host.sin6_addr = in6addr_loopback;
  host.sin6_port = htons(f->host_port);
  guest.sin6_family = AF_INET6;
  slirp_guest6(&guest.sin6_addr);
  guest.sin6_port = htons(f->device_port);
  return slirp_add_hostxfwd(slirp_ctx, (const struct sockaddr *)&host, sizeof host, (const struct sockaddr *)&guest,
                            sizeof guest, SLIRP_HOSTFWD_V6ONLY);
}

/**
 * Creates the slirp network, the device's netif (10.0.2.15; with ipv6, a
 * link-local address and one by SLAAC on fec0::/64) and the host forwards
 * (127.0.0.1, and [::1] with ipv6).
 */
int slirp_netif_start(struct netif *netif, const slirp_forward_t *fwds, int n_fwds, bool ipv6)
{
  SlirpConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.version = 4;
  cfg.restricted = 1; /* the device reaches nothing outside the host forwards */
  cfg.in_enabled = true;
  inet_pton(AF_INET, SLIRP_NET, &cfg.vnetwork);
  inet_pton(AF_INET, SLIRP_MASK, &cfg.vnetmask);
  inet_pton(AF_INET, SLIRP_HOST, &cfg.vhost);
  inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
  inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
  cfg.in6_enabled = ipv6;
  if (ipv6) {
    inet_pton(AF_INET6, SLIRP_PREFIX6, &cfg.vprefix_addr6);
    cfg.vprefix_len = SLIRP_PREFIX6_LEN;
    inet_pton(AF_INET6, SLIRP_HOST6, &cfg.vhost6);
    inet_pton(AF_INET6, SLIRP_NAMESERVER6, &cfg.vnameserver6);
  }
  cfg.disable_dns = true;
  cfg.disable_dhcp = true;
  cfg.disable_host_loopback = true;

  frameq_init(&slirp_rxq, slirp_rx_frames, slirp_rx_lengths, SLIRP_RX_SLOTS);
#if !NO_SYS
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, slirp_tx_fds) != 0) {
    log_line("slirp: socketpair: %s", strerror(errno));
    return -1;
  }
#endif
  slirp_ctx = slirp_new(&cfg, &slirp_callbacks, NULL);
  if (slirp_ctx == NULL) {
    log_line("slirp: slirp_new failed");
    return -1;
  }

  struct in_addr loopback, guest;
  inet_pton(AF_INET, "127.0.0.1", &loopback);
  inet_pton(AF_INET, SLIRP_GUEST, &guest);
  for (int i = 0; i < n_fwds; i++) {
    if (fwds[i].host_port == 0) {
      continue;
    }
    if (slirp_add_hostfwd(slirp_ctx, 0, loopback, fwds[i].host_port, guest, fwds[i].device_port) < 0) {
      log_line("slirp: cannot forward 127.0.0.1:%u to device port %u (%s): %s", fwds[i].host_port, fwds[i].device_port,
               fwds[i].what, strerror(errno));
      return -1;
    }
    if (ipv6 && slirp_forward6(&fwds[i]) < 0) {
      log_line("slirp: cannot forward [::1]:%u to device port %u (%s): %s", fwds[i].host_port, fwds[i].device_port,
               fwds[i].what, strerror(errno));
      return -1;
    }
  }
  slirp_widen_backlogs();

  ip4_addr_t ip, mask, gw;
  ip4addr_aton(SLIRP_GUEST, &ip);
  ip4addr_aton(SLIRP_MASK, &mask);
  ip4addr_aton(SLIRP_HOST, &gw);
#if NO_SYS
  slirp_nif = netif_add(netif, &ip, &mask, &gw, NULL, slirp_netif_init, ethernet_input);
#else
  slirp_nif = netif_add(netif, &ip, &mask, &gw, NULL, slirp_netif_init, tcpip_input); /* from the slirp thread */
#endif
  if (slirp_nif == NULL) {
    return -1;
  }
  netif_set_default(netif);
  netif_set_up(netif);
  ipv6_start(netif, ipv6);
  return 0;
}

/* Feeds the slirp frames queued so far to lwIP, oldest first. slirp answers
 * lwIP's frames synchronously, so the queue can refill as it drains: frames
 * that arrive meanwhile wait for the next turn, or two stacks that answer
 * each other at once (slirp re-probes a zero window on every ACK) would keep
 * the main loop here, its timers and every other socket unserved. */
static void slirp_drain_rx(void)
{
  size_t len;
  const uint8_t *frame;
  for (uint32_t n = frameq_count(&slirp_rxq); n > 0 && (frame = frameq_peek(&slirp_rxq, &len)) != NULL; n--) {
    struct pbuf *p = pool_has_room((u16_t)len) ? pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL) : NULL;
    if (p == NULL) {
      SLIRP_STATS_INC(link.memerr);
      SLIRP_STATS_INC(link.drop);
      break; /* retried on the next turn; the queue bounds the backlog */
    }
    pbuf_take(p, frame, (u16_t)len);
#if NO_SYS
    frameq_pop(&slirp_rxq); /* first: lwIP's answers land in the queue during the input */
    SLIRP_STATS_INC(link.recv);
    if (slirp_nif->input(p, slirp_nif) != ERR_OK) {
      pbuf_free(p);
    }
#else
    if (slirp_nif->input(p, slirp_nif) != ERR_OK) {
      pbuf_free(p); /* tcpip_thread's mailbox is full: the frame is fed again on the next turn */
      break;
    }
    frameq_pop(&slirp_rxq);
    SLIRP_STATS_INC(link.recv);
#endif
  }
}

/**
 * One turn of the wire: polls slirp's sockets for at most timeout_ms, lets
 * slirp process them, fires its timers and feeds the frames it produced to
 * lwIP. Returns -1 when poll() was interrupted by a signal.
 */
int slirp_netif_poll(uint32_t timeout_ms)
{
  int64_t now_ms = slirp_clock_ns(NULL) / 1000000;
  for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
    if (slirp_timers[i].used && slirp_timers[i].expire_ms >= 0) {
      int64_t left = slirp_timers[i].expire_ms - now_ms;
      if (left < 0)
        left = 0;
      if (left < (int64_t)timeout_ms)
        timeout_ms = (uint32_t)left;
    }
  }
  if (frameq_count(&slirp_rxq) != 0 && timeout_ms > SLIRP_BACKLOG_RETRY_MS) {
    timeout_ms = SLIRP_BACKLOG_RETRY_MS;
  }
  slirp_nfds = 0;
  slirp_pollfds_fill(slirp_ctx, &timeout_ms, slirp_add_poll, NULL);
#if !NO_SYS
  int tx = slirp_add_poll(slirp_tx_fds[0], SLIRP_POLL_IN, NULL);
#endif
  int rc = poll(slirp_fds, (nfds_t)slirp_nfds, (int)timeout_ms);
  int interrupted = rc < 0 && errno == EINTR;
  slirp_pollfds_poll(slirp_ctx, rc < 0, slirp_get_revents, NULL);
#if !NO_SYS
  /* lwIP's frames, in the order tcpip_thread sent them; an empty one is slirp_netif_wake(). */
  ssize_t n;
  for (int k = 0; k < SLIRP_RX_SLOTS && tx >= 0 && rc > 0 && (slirp_fds[tx].revents & POLLIN) &&
                  (n = recv(slirp_tx_fds[0], slirp_wire_frame, sizeof slirp_wire_frame, MSG_DONTWAIT)) >= 0;
       k++) {
    if (n > 0) {
      slirp_input(slirp_ctx, slirp_wire_frame, (int)n);
    }
  }
#endif

  now_ms = slirp_clock_ns(NULL) / 1000000;
  for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
    slirp_timer_t *t = &slirp_timers[i];
    if (t->used && t->expire_ms >= 0 && t->expire_ms <= now_ms) {
      t->expire_ms = -1;
      t->cb(t->cb_opaque);
    }
  }
  slirp_drain_rx();
  return interrupted ? -1 : 0;
}

/** Frames waiting, dropped and the high-water mark, for tests and /_status. */
const frameq_t *slirp_netif_rx_queue(void)
{
  return &slirp_rxq;
}

#if !NO_SYS
/** Wakes the slirp thread's poll() (from any thread). */
void slirp_netif_wake(void)
{
  while (send(slirp_tx_fds[1], "", 0, 0) < 0 && errno == EINTR) {
  }
}
#endif

/** Closes every host socket slirp holds. */
void slirp_netif_stop(void)
{
  if (slirp_ctx != NULL) {
    slirp_cleanup(slirp_ctx);
    slirp_ctx = NULL;
  }
}
