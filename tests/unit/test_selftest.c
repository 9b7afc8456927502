/* test_selftest.c: the echo and discard services over a fake altcp: ERR_ABRT contract, limits, idle timeout. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lwip/altcp.h"
#include "lwip/altcp_tcp.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "platform.h"
#include "postern_opts.h"
#include "selftest.h"
#include "unit.h"

/* ---- A fake altcp: listeners and connection pcbs that record every use ---- */

#define MAX_PCBS 16
#define REC_MAX 8192

typedef struct fake {
  struct altcp_pcb pcb; /* first: the pointer handed out */
  bool used, alive, aborted, closed;
  u16_t port;       /* the listener's port it came through */
  uint32_t unacked; /* bytes written and not acknowledged */
  uint64_t recved, written;
  uint8_t out[REC_MAX];
  size_t out_len;
} fake_t;

static fake_t pcbs[MAX_PCBS];
static struct altcp_pcb listeners[2];
static u16_t listener_ports[2];
static u8_t listener_prio[2];
static int n_listeners;
static bool close_fails_next;
static u32_t now_ms = 1000;
static int contract_violations;

u32_t sys_now(void)
{
  return now_ms;
}

uint32_t platform_random(void)
{
  return 4; /* lwIP's initial port and ISN: any value */
}

void platform_console_write(const char *s, size_t n)
{
  (void)s;
  (void)n;
}

static bool is_listener(struct altcp_pcb *c)
{
  return c >= &listeners[0] && c < &listeners[2];
}

static fake_t *get(struct altcp_pcb *c)
{
  fake_t *f = (fake_t *)c;
  CHECK(f >= &pcbs[0] && f < &pcbs[MAX_PCBS]);
  CHECK(f->used && f->alive); /* no use after close, abort or reset */
  return f;
}

/* What lwIP requires of a callback: ERR_ABRT exactly when it aborted its pcb. */
static void leave(fake_t *f, err_t ret)
{
  if (f->aborted != (ret == ERR_ABRT)) {
    contract_violations++;
  }
}

struct altcp_pcb *altcp_tcp_new_ip_type(u8_t ip_type)
{
  (void)ip_type;
  if (n_listeners >= 2) {
    return NULL;
  }
  memset(&listeners[n_listeners], 0, sizeof listeners[0]);
  return &listeners[n_listeners++];
}

struct altcp_pcb *altcp_new_ip_type(altcp_allocator_t *allocator, u8_t ip_type)
{
  (void)allocator;
  return altcp_tcp_new_ip_type(ip_type);
}

err_t altcp_bind(struct altcp_pcb *conn, const ip_addr_t *ipaddr, u16_t port)
{
  (void)ipaddr;
  CHECK(is_listener(conn));
  listener_ports[conn - listeners] = port;
  return ERR_OK;
}

struct altcp_pcb *altcp_listen_with_backlog_and_err(struct altcp_pcb *conn, u8_t backlog, err_t *err)
{
  (void)backlog;
  if (err != NULL) {
    *err = ERR_OK;
  }
  return conn;
}

void altcp_setprio(struct altcp_pcb *conn, u8_t prio)
{
  if (is_listener(conn)) {
    listener_prio[conn - listeners] = prio;
  }
}

void altcp_accept(struct altcp_pcb *conn, altcp_accept_fn accept)
{
  conn->accept = accept;
}

void altcp_arg(struct altcp_pcb *conn, void *arg)
{
  if (is_listener(conn)) {
    conn->arg = arg;
  } else {
    get(conn)->pcb.arg = arg;
  }
}

void altcp_recv(struct altcp_pcb *conn, altcp_recv_fn recv)
{
  get(conn)->pcb.recv = recv;
}

void altcp_sent(struct altcp_pcb *conn, altcp_sent_fn sent)
{
  get(conn)->pcb.sent = sent;
}

void altcp_err(struct altcp_pcb *conn, altcp_err_fn err)
{
  get(conn)->pcb.err = err;
}

void altcp_poll(struct altcp_pcb *conn, altcp_poll_fn poll, u8_t interval)
{
  get(conn)->pcb.poll = poll;
  get(conn)->pcb.pollinterval = interval;
}

err_t altcp_write(struct altcp_pcb *conn, const void *dataptr, u16_t len, u8_t apiflags)
{
  fake_t *f = get(conn);
  CHECK(apiflags & TCP_WRITE_FLAG_COPY);
  if (len > TCP_SND_BUF - f->unacked) {
    return ERR_MEM;
  }
  f->unacked += len;
  f->written += len;
  size_t n = len < REC_MAX - f->out_len ? len : REC_MAX - f->out_len;
  memcpy(f->out + f->out_len, dataptr, n);
  f->out_len += n;
  return ERR_OK;
}

err_t altcp_output(struct altcp_pcb *conn)
{
  get(conn);
  return ERR_OK;
}

void altcp_recved(struct altcp_pcb *conn, u16_t len)
{
  get(conn)->recved += len;
}

u16_t altcp_sndbuf(struct altcp_pcb *conn)
{
  return (u16_t)(TCP_SND_BUF - get(conn)->unacked);
}

err_t altcp_close(struct altcp_pcb *conn)
{
  if (is_listener(conn)) {
    return ERR_OK;
  }
  fake_t *f = get(conn);
  if (close_fails_next) {
    close_fails_next = false;
    return ERR_MEM; /* lwIP could not queue the FIN: the pcb stays the caller's */
  }
  f->alive = false;
  f->closed = true;
  return ERR_OK;
}

void altcp_abort(struct altcp_pcb *conn)
{
  fake_t *f = get(conn);
  f->alive = false;
  f->aborted = true;
  if (f->pcb.err != NULL) {
    f->pcb.err(f->pcb.arg, ERR_ABRT); /* lwIP's tcp_abort calls err */
  }
}

/* ---- Driving it ------------------------------------------------------------ */

static int listener_of(u16_t port)
{
  for (int i = 0; i < n_listeners; i++) {
    if (listener_ports[i] == port) {
      return i;
    }
  }
  return -1;
}

/* A new connection on a port; returns its table index. */
static int open_conn(u16_t port)
{
  int l = listener_of(port);
  CHECK(l >= 0);
  for (int k = 0; k < MAX_PCBS; k++) {
    if (!pcbs[k].used) {
      memset(&pcbs[k], 0, sizeof pcbs[k]);
      pcbs[k].used = pcbs[k].alive = true;
      pcbs[k].port = port;
      err_t ret = listeners[l].accept(listeners[l].arg, &pcbs[k].pcb, ERR_OK);
      leave(&pcbs[k], ret);
      CHECK(ret == ERR_OK || ret == ERR_ABRT);
      return k;
    }
  }
  CHECK(0);
  return -1;
}

/* Data from the peer as one pbuf chain of `segs` pool pbufs; returns the callback's answer.
 * A refused chain is freed here (lwIP would keep it and offer it again). */
static err_t deliver(int k, const char *data, size_t len, int segs)
{
  fake_t *f = &pcbs[k];
  CHECK(f->alive && f->pcb.recv != NULL);
  struct pbuf *chain = NULL;
  size_t per = len / (size_t)segs;
  for (int i = 0; i < segs; i++) {
    size_t n = i == segs - 1 ? len - per * (size_t)(segs - 1) : per;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
    CHECK(p != NULL);
    pbuf_take(p, data + per * (size_t)i, (u16_t)n);
    if (chain == NULL) {
      chain = p;
    } else {
      pbuf_cat(chain, p);
    }
  }
  err_t ret = f->pcb.recv(f->pcb.arg, &f->pcb, chain, ERR_OK);
  leave(f, ret);
  if (ret != ERR_OK && ret != ERR_ABRT) {
    pbuf_free(chain);
  }
  return ret;
}

static err_t fin(int k)
{
  fake_t *f = &pcbs[k];
  err_t ret = f->pcb.recv(f->pcb.arg, &f->pcb, NULL, ERR_OK);
  leave(f, ret);
  return ret;
}

static err_t ack(int k, uint32_t n)
{
  fake_t *f = &pcbs[k];
  f->unacked -= n;
  err_t ret = f->pcb.sent(f->pcb.arg, &f->pcb, (u16_t)n);
  leave(f, ret);
  return ret;
}

static err_t poll_conn(int k)
{
  fake_t *f = &pcbs[k];
  err_t ret = f->pcb.poll(f->pcb.arg, &f->pcb);
  leave(f, ret);
  return ret;
}

static void rst(int k)
{
  fake_t *f = &pcbs[k];
  f->alive = false;
  if (f->pcb.err != NULL) {
    f->pcb.err(f->pcb.arg, ERR_RST);
  }
}

static int pool_used(void)
{
  return (int)lwip_stats.memp[MEMP_PBUF_POOL]->used;
}

/* Ends every live connection (peer resets) and forgets the table. */
static void reset_all(void)
{
  for (int k = 0; k < MAX_PCBS; k++) {
    if (pcbs[k].used && pcbs[k].alive) {
      rst(k);
    }
    pcbs[k].used = false;
  }
  close_fails_next = false;
  CHECK_EQ(pool_used(), 0);
  CHECK_EQ(contract_violations, 0);
  contract_violations = 0; /* one case's violation is reported once */
}

/* ---- Cases ------------------------------------------------------------------ */

static void test_listeners_have_the_lowest_priority(void)
{
  CHECK_EQ(n_listeners, 2);
  CHECK(listener_of(7) >= 0 && listener_of(9) >= 0);
  CHECK_EQ(listener_prio[listener_of(7)], TCP_PRIO_MIN);
  CHECK_EQ(listener_prio[listener_of(9)], TCP_PRIO_MIN);
}

static void test_echo_returns_the_bytes_and_closes_on_fin(void)
{
  int k = open_conn(7);
  CHECK_EQ(deliver(k, "hello", 5, 1), ERR_OK);
  CHECK(pcbs[k].out_len == 5 && memcmp(pcbs[k].out, "hello", 5) == 0);
  CHECK_EQ(fin(k), ERR_OK);
  CHECK(pcbs[k].closed);
  CHECK_EQ(contract_violations, 0);
  reset_all();
}

static void test_failed_close_on_fin_aborts_and_says_so(void)
{
  int k = open_conn(9);
  CHECK_EQ(deliver(k, "abc", 3, 1), ERR_OK);
  close_fails_next = true;
  CHECK_EQ(fin(k), ERR_ABRT);
  CHECK(pcbs[k].aborted);
  CHECK_EQ(contract_violations, 0);
  reset_all();
}

static void test_failed_close_after_the_last_echo_aborts_in_sent(void)
{
  static char big[TCP_SND_BUF + 100];
  memset(big, 'e', sizeof big);
  int k = open_conn(7);
  CHECK_EQ(deliver(k, big, POSTERN_SELFTEST_ECHO_BUF + 100, 2), ERR_OK); /* more than the echo may hold out */
  CHECK_EQ(fin(k), ERR_OK);                                              /* pending: closes after the echo */
  CHECK(pcbs[k].alive);
  close_fails_next = true;
  CHECK_EQ(ack(k, pcbs[k].unacked), ERR_ABRT);
  CHECK(pcbs[k].aborted);
  CHECK_EQ(pcbs[k].written, POSTERN_SELFTEST_ECHO_BUF + 100);
  CHECK_EQ(contract_violations, 0);
  reset_all();
}

static void test_idle_timeout_closes_and_a_failed_close_aborts(void)
{
  int a = open_conn(7), b = open_conn(9);
  now_ms += POSTERN_SELFTEST_IDLE_S * 1000u - 1;
  CHECK_EQ(poll_conn(a), ERR_OK);
  CHECK_EQ(poll_conn(b), ERR_OK);
  CHECK(pcbs[a].alive && pcbs[b].alive);
  CHECK_EQ(deliver(b, "x", 1, 1), ERR_OK); /* traffic restarts b's clock */
  now_ms += 1;
  CHECK_EQ(poll_conn(a), ERR_OK);
  CHECK(pcbs[a].closed);
  CHECK_EQ(poll_conn(b), ERR_OK);
  CHECK(pcbs[b].alive);
  now_ms += POSTERN_SELFTEST_IDLE_S * 1000u;
  close_fails_next = true;
  CHECK_EQ(poll_conn(b), ERR_ABRT);
  CHECK(pcbs[b].aborted);
  CHECK_EQ(contract_violations, 0);
  reset_all();
}

static void test_connections_beyond_the_bound_are_closed(void)
{
  int k[POSTERN_SELFTEST_MAX_CONNS];
  for (int i = 0; i < POSTERN_SELFTEST_MAX_CONNS; i++) {
    k[i] = open_conn(i % 2 ? 7 : 9);
    CHECK(pcbs[k[i]].alive);
  }
  int over = open_conn(9);
  CHECK(pcbs[over].closed && !pcbs[over].aborted);
  close_fails_next = true;
  over = open_conn(7); /* its close fails: aborted, and accept said ERR_ABRT (checked in open_conn) */
  CHECK(pcbs[over].aborted);
  rst(k[0]); /* a slot frees (lwIP also resets a self-test pcb to give HTTP its pcb) */
  int again = open_conn(9);
  CHECK(pcbs[again].alive);
  CHECK_EQ(contract_violations, 0);
  reset_all();
}

static void test_echo_holds_a_bounded_share_of_a_peer_that_does_not_read(void)
{
  static char buf[REC_MAX];
  for (size_t i = 0; i < sizeof buf; i++) {
    buf[i] = (char)('a' + i % 26);
  }
  int k = open_conn(7);
  /* Small segments, never acknowledged: first the send side fills, then the held pbufs. */
  size_t taken = 0;
  int refused = 0;
  for (int i = 0; i < 4000 && refused < 3; i++) {
    err_t ret = deliver(k, buf + taken % 4096, 3, 1);
    if (ret == ERR_MEM) {
      refused++;
    } else {
      CHECK_EQ(ret, ERR_OK);
      taken += 3;
    }
  }
  CHECK_EQ(refused, 3);
  CHECK(pcbs[k].unacked <= POSTERN_SELFTEST_ECHO_BUF);
  CHECK(pool_used() <= (POSTERN_SELFTEST_ECHO_BUF + TCP_MSS - 1) / TCP_MSS);
  CHECK(pcbs[k].recved <= pcbs[k].written); /* the window opens only by what was echoed */
  CHECK(pcbs[k].written - pcbs[k].recved <= (uint64_t)TCP_WND - POSTERN_SELFTEST_ECHO_BUF); /* only the withheld part */
  /* The peer reads: the held bytes go out, and data is taken again, in order. */
  CHECK_EQ(ack(k, pcbs[k].unacked), ERR_OK);
  CHECK_EQ(deliver(k, buf + taken % 4096, 3, 1), ERR_OK);
  taken += 3;
  while (pcbs[k].unacked > 0) {
    CHECK_EQ(ack(k, pcbs[k].unacked), ERR_OK);
  }
  CHECK_EQ(pcbs[k].written, taken);
  CHECK_EQ(pool_used(), 0);
  size_t n = taken < REC_MAX ? taken : REC_MAX;
  int same = 1;
  for (size_t i = 0; i < n; i += 3) {
    same &= memcmp(pcbs[k].out + i, buf + i % 4096, 3) == 0;
  }
  CHECK(same);
  CHECK_EQ(fin(k), ERR_OK);
  CHECK(pcbs[k].closed);
  /* Once closed, the window held back is handed back: everything delivered was consumed. */
  CHECK_EQ(pcbs[k].recved, taken);
  CHECK_EQ(contract_violations, 0);
  reset_all();
}

static void test_discard_swallows_and_opens_the_window(void)
{
  static char buf[4000];
  memset(buf, 'd', sizeof buf);
  int k = open_conn(9);
  uint64_t before = selftest_discarded_total();
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(deliver(k, buf, sizeof buf, 3), ERR_OK);
  }
  CHECK_EQ(pcbs[k].recved, 10 * sizeof buf);
  CHECK_EQ(pool_used(), 0);
  CHECK_EQ(fin(k), ERR_OK);
  CHECK_EQ(selftest_discarded_total() - before, 10 * sizeof buf);
  reset_all();
}

int main(void)
{
  lwip_init();
  CHECK_EQ(selftest_start(0), ERR_OK);
  RUN(test_listeners_have_the_lowest_priority);
  RUN(test_echo_returns_the_bytes_and_closes_on_fin);
  RUN(test_failed_close_on_fin_aborts_and_says_so);
  RUN(test_failed_close_after_the_last_echo_aborts_in_sent);
  RUN(test_idle_timeout_closes_and_a_failed_close_aborts);
  RUN(test_connections_beyond_the_bound_are_closed);
  RUN(test_echo_holds_a_bounded_share_of_a_peer_that_does_not_read);
  RUN(test_discard_swallows_and_opens_the_window);
  return UNIT_END();
}
