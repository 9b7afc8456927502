/* slirp_bridge.c: user-mode networking for a QEMU board with IPv6 forwards: libslirp on one side, QEMU's stream netdev on the other.
 *
 * QEMU 7.2's own user networking (-nic user,hostfwd=...) takes IPv4
 * addresses only. This test tool runs libslirp itself, laid out as QEMU's
 * (10.0.2.0/24, router 10.0.2.2; fec0::/64, router fec0::2), forwards
 * 127.0.0.1:HOST and [::1]:HOST to the board's GUEST port (10.0.2.15 and its
 * SLAAC address), and carries the frames over a Unix socket that QEMU
 * connects to with -netdev stream (each frame: a 4-byte big-endian length,
 * then the bytes). It then runs the QEMU command line it was given and lives
 * as long as QEMU does; SIGTERM or SIGINT ends QEMU (its child, by PID), then
 * itself.
 *
 *   slirp-bridge SOCKET HOST:GUEST [HOST:GUEST ...] -- qemu-system-arm ... \
 *     -netdev stream,id=n0,server=off,addr.type=unix,addr.path=SOCKET -net nic,model=lan9118,netdev=n0
 *
 * Bridge messages go to stderr; QEMU's console stays on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

/* The board's MAC (boards/mps2-an385/lan9118.c) as EUI-64 on fec0::/64. */
#define BRIDGE_GUEST6 "fec0::5054:ff:fe12:3456"
#define BRIDGE_GUEST4 "10.0.2.15"
#define BRIDGE_MAX_FDS 256
#define BRIDGE_MAX_TIMERS 4
#define BRIDGE_FRAME_MAX 16384

typedef struct bridge_timer {
  SlirpTimerCb cb;
  void *cb_opaque;
  int64_t expire_ms; /* -1: not armed */
  bool used;
} bridge_timer_t;

static Slirp *bridge_slirp;
static int bridge_conn = -1; /* QEMU's end of the Unix socket */
static struct pollfd bridge_fds[BRIDGE_MAX_FDS];
static int bridge_nfds;
static bridge_timer_t bridge_timers[BRIDGE_MAX_TIMERS];
static volatile sig_atomic_t bridge_stop;
static uint8_t bridge_rx[4 + BRIDGE_FRAME_MAX];
static size_t bridge_rx_len;

static int64_t bridge_clock_ns(void *opaque)
{
  (void)opaque;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool bridge_write_all(int fd, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* slirp -> board: one length-prefixed frame on the socket (dropped before QEMU connects). */
static ssize_t bridge_send_packet(const void *buf, size_t len, void *opaque)
{
  (void)opaque;
  if (bridge_conn < 0) {
    return (ssize_t)len;
  }
  uint8_t head[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  if (!bridge_write_all(bridge_conn, head, sizeof head) || !bridge_write_all(bridge_conn, buf, len)) {
    fprintf(stderr, "slirp-bridge: write to QEMU: %s\n", strerror(errno));
  }
  return (ssize_t)len;
}

static void bridge_guest_error(const char *msg, void *opaque)
{
  (void)opaque;
  fprintf(stderr, "slirp-bridge: guest error: %s\n", msg);
}

static void *bridge_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
  (void)opaque;
  for (int i = 0; i < BRIDGE_MAX_TIMERS; i++) {
    if (!bridge_timers[i].used) {
      bridge_timers[i] = (bridge_timer_t){cb, cb_opaque, -1, true};
      return &bridge_timers[i];
    }
  }
  return NULL;
}

static void bridge_timer_free(void *timer, void *opaque)
{
  (void)opaque;
  if (timer != NULL) {
    ((bridge_timer_t *)timer)->used = false;
  }
}

static void bridge_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
  (void)opaque;
  if (timer != NULL) {
    ((bridge_timer_t *)timer)->expire_ms = expire_ms;
  }
}

static void bridge_fd_noop(int fd, void *opaque)
{
  (void)fd;
  (void)opaque;
}

static void bridge_notify(void *opaque)
{
  (void)opaque;
}

static const SlirpCb bridge_callbacks = {
    .send_packet = bridge_send_packet,
    .guest_error = bridge_guest_error,
    .clock_get_ns = bridge_clock_ns,
    .timer_new = bridge_timer_new,
    .timer_free = bridge_timer_free,
    .timer_mod = bridge_timer_mod,
    .register_poll_fd = bridge_fd_noop,
    .unregister_poll_fd = bridge_fd_noop,
    .notify = bridge_notify,
};

static int bridge_add_poll(int fd, int events, void *opaque)
{
  (void)opaque;
  if (bridge_nfds >= BRIDGE_MAX_FDS) {
    return -1;
  }
  short e = 0;
  if (events & SLIRP_POLL_IN)
    e |= POLLIN;
  if (events & SLIRP_POLL_OUT)
    e |= POLLOUT;
  if (events & SLIRP_POLL_PRI)
    e |= POLLPRI;
  bridge_fds[bridge_nfds] = (struct pollfd){.fd = fd, .events = e};
  return bridge_nfds++;
}

static int bridge_get_revents(int idx, void *opaque)
{
  (void)opaque;
  if (idx < 0 || idx >= bridge_nfds) {
    return 0;
  }
  short r = bridge_fds[idx].revents;
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

/* 127.0.0.1:host and [::1]:host -> the board's guest port, over both families. */
static int bridge_forward(uint16_t host, uint16_t guest)
{
  struct sockaddr_in h4 = {.sin_family = AF_INET, .sin_port = htons(host)};
  struct sockaddr_in g4 = {.sin_family = AF_INET, .sin_port = htons(guest)};
  inet_pton(AF_INET, "127.0.0.1", &h4.sin_addr);
  inet_pton(AF_INET, BRIDGE_GUEST4, &g4.sin_addr);
  struct sockaddr_in6 h6 = {.sin6_family = AF_INET6, .sin6_port = htons(host), .sin6_addr = in6addr_loopback};
  struct sockaddr_in6 g6 = {.sin6_family = AF_INET6, .sin6_port = htons(guest)};
  inet_pton(AF_INET6, BRIDGE_GUEST6, &g6.sin6_addr);
  if (slirp_add_hostxfwd(bridge_slirp, (struct sockaddr *)&h4, sizeof h4, (struct sockaddr *)&g4, sizeof g4, 0) < 0 ||
      slirp_add_hostxfwd(bridge_slirp, (struct sockaddr *)&h6, sizeof h6, (struct sockaddr *)&g6, sizeof g6,
                         SLIRP_HOSTFWD_V6ONLY) < 0) {
    fprintf(stderr, "slirp-bridge: Could not set up host forwarding rule for port %u: %s\n", host, strerror(errno));
    return -1;
  }
  return 0;
}

static void bridge_on_signal(int sig)
{
  bridge_stop = sig;
}

/* Bytes from QEMU: whole frames go to slirp; false when QEMU closed its end. */
static bool bridge_read_frames(void)
{
  ssize_t n = read(bridge_conn, bridge_rx + bridge_rx_len, sizeof bridge_rx - bridge_rx_len);
  if (n < 0 && errno == EINTR) {
    return true;
  }
  if (n <= 0) {
    return false;
  }
  bridge_rx_len += (size_t)n;
  size_t off = 0;
  while (bridge_rx_len - off >= 4) {
    const uint8_t *h = bridge_rx + off;
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (len > BRIDGE_FRAME_MAX) {
      fprintf(stderr, "slirp-bridge: frame of %zu bytes from QEMU\n", len);
      return false;
    }
    if (bridge_rx_len - off < 4 + len) {
      break;
    }
    slirp_input(bridge_slirp, h + 4, (int)len);
    off += 4 + len;
  }
  memmove(bridge_rx, bridge_rx + off, bridge_rx_len - off);
  bridge_rx_len -= off;
  return true;
}

int main(int argc, char **argv)
{
  int sep = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      sep = i;
      break;
    }
  }
  if (argc < 3 || sep < 2 || sep == argc - 1) {
    fprintf(stderr, "usage: slirp-bridge SOCKET HOST:GUEST [HOST:GUEST ...] -- QEMU-COMMAND ...\n");
    return 2;
  }

  SlirpConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.version = 4;
  cfg.restricted = 1;
  cfg.in_enabled = true;
  inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
  inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
  inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
  inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
  inet_pton(AF_INET, BRIDGE_GUEST4, &cfg.vdhcp_start);
  cfg.in6_enabled = true;
  inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
  cfg.vprefix_len = 64;
  inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
  inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
  cfg.disable_dns = true;
  cfg.disable_dhcp = true;
  cfg.disable_host_loopback = true;
  bridge_slirp = slirp_new(&cfg, &bridge_callbacks, NULL);
  if (bridge_slirp == NULL) {
    fprintf(stderr, "slirp-bridge: slirp_new failed\n");
    return 1;
  }
  for (int i = 2; i < sep; i++) {
    unsigned host, guest;
    char extra;
    if (sscanf(argv[i], "%u:%u%c", &host, &guest, &extra) != 2 || host == 0 || host > 65535 || guest > 65535) {
      fprintf(stderr, "slirp-bridge: '%s' is not HOST:GUEST\n", argv[i]);
      return 2;
    }
    if (bridge_forward((uint16_t)host, (uint16_t)guest) != 0) {
      return 1;
    }
  }

  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof sun.sun_path) {
    fprintf(stderr, "slirp-bridge: socket path too long\n");
    return 2;
  }
  strcpy(sun.sun_path, argv[1]);
  unlink(argv[1]);
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(lfd, 1) != 0) {
    fprintf(stderr, "slirp-bridge: cannot listen on %s: %s\n", argv[1], strerror(errno));
    return 1;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = bridge_on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  pid_t qemu = fork();
  if (qemu < 0) {
    fprintf(stderr, "slirp-bridge: fork: %s\n", strerror(errno));
    return 1;
  }
  if (qemu == 0) {
    close(lfd);
    execvp(argv[sep + 1], &argv[sep + 1]);
    fprintf(stderr, "slirp-bridge: cannot run %s: %s\n", argv[sep + 1], strerror(errno));
    _exit(127);
  }

  int status = 0;
  for (;;) {
    if (bridge_stop) {
      kill(qemu, SIGTERM);
      waitpid(qemu, &status, 0);
      break;
    }
    if (waitpid(qemu, &status, WNOHANG) == qemu) {
      break;
    }
    uint32_t timeout = 200; /* bounds the wait: QEMU's exit is seen by polling */
    int64_t now_ms = bridge_clock_ns(NULL) / 1000000;
    for (int i = 0; i < BRIDGE_MAX_TIMERS; i++) {
      if (bridge_timers[i].used && bridge_timers[i].expire_ms >= 0) {
        int64_t left = bridge_timers[i].expire_ms - now_ms;
        if (left < 0)
          left = 0;
        if (left < (int64_t)timeout)
          timeout = (uint32_t)left;
      }
    }
    bridge_nfds = 0;
    slirp_pollfds_fill(bridge_slirp, &timeout, bridge_add_poll, NULL);
    int own = bridge_nfds;
    if (own < BRIDGE_MAX_FDS) {
      bridge_fds[own] = (struct pollfd){.fd = bridge_conn >= 0 ? bridge_conn : lfd, .events = POLLIN};
      bridge_nfds++;
    }
    int rc = poll(bridge_fds, (nfds_t)bridge_nfds, (int)timeout);
    slirp_pollfds_poll(bridge_slirp, rc < 0, bridge_get_revents, NULL);
    if (rc > 0 && own < bridge_nfds && (bridge_fds[own].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (bridge_conn < 0) {
        bridge_conn = accept(lfd, NULL, NULL);
      } else if (!bridge_read_frames()) {
        close(bridge_conn);
        bridge_conn = -1; /* QEMU is going away */
      }
    }
    now_ms = bridge_clock_ns(NULL) / 1000000;
    for (int i = 0; i < BRIDGE_MAX_TIMERS; i++) {
      bridge_timer_t *t = &bridge_timers[i];
      if (t->used && t->expire_ms >= 0 && t->expire_ms <= now_ms) {
        t->expire_ms = -1;
        t->cb(t->cb_opaque);
      }
    }
  }
  slirp_cleanup(bridge_slirp);
  unlink(argv[1]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
