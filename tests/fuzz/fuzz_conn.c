/* fuzz_conn.c: libFuzzer target: the whole connection state machine (http_conn.c) over a fake altcp and storage.
 *
 * The input is byte code. Byte 0 configures the storage (capacity, seed
 * files); then each op is one byte followed by its arguments:
 *   OPEN                      a new connection through the accept callback
 *   DATA k lo hi split ...    lo|hi<<8 (at most 4096) input bytes to connection k, as one
 *                             pool pbuf chain (split 0) or up to 8 pbufs of `split` bytes
 *   TMPL k t split            a canned request or body, split the same way
 *   FIN k                     the peer's FIN (recv with NULL)
 *   ACK k m                   the peer acknowledges 64*m bytes (255: all), sent callback
 *   TICK s                    s % 32 + 1 seconds, polling every live connection each second
 *   RST k                     the peer resets: the pcb is gone, err callback
 *   FAULT f                   the next storage operation of a kind fails
 *   ACKALL                    every connection's bytes are acknowledged
 *   CLOSEFAIL                 the next altcp_close fails with ERR_MEM (off with
 *                             FUZZ_CONN_CLOSE_FAIL=0 in the environment)
 * Received data never exceeds the window (TCP_WND less what is not yet recved).
 *
 * After every op: connection slots match live pcbs, and the pbuf pool holds
 * no more than the live connections were given. At the end every connection
 * gets FIN and time passes (acked) until all have closed by themselves; then
 * lwIP's pbuf pools and heap are back to where they started, storage has no
 * open upload or reader, and every sha256 a response reports was committed.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_conn_fakes.h"
#include "http_conn.h"
#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "platform.h"
#include "policy.h"
#include "postern_opts.h"

#define MAX_OPS 64

enum { OP_OPEN, OP_DATA, OP_TMPL, OP_FIN, OP_ACK, OP_TICK, OP_RST, OP_FAULT, OP_ACKALL, OP_CLOSEFAIL, OP_COUNT };

/* The fixed policy: the default's shape with token "T"; names starting with
 * "r" get a retryable 417, "m" are stored as "moved", and on_stored vetoes
 * 3-byte uploads of names starting with "v". */
static const char fuzz_policy[] =
  "local function refuse(req, status, message)\n"
  "  if req.expect ~= nil then\n"
  "    local r = req.name ~= nil and req.name:sub(1, 1) == 'r'\n"
  "    return { status = 417, message = message, retry = r }\n"
  "  end\n"
  "  if status == 401 then\n"
  "    return { status = 401, message = message, www_authenticate = 'Bearer realm=\"postern\"' }\n"
  "  end\n"
  "  return { status = status, message = message }\n"
  "end\n"
  "function on_request(req)\n"
  "  if req.method == 'GET' and req.path == '/_status' then return true end\n"
  "  local t = auth.bearer(req.headers.authorization)\n"
  "  if t == nil then return refuse(req, 401, 'a bearer token is required') end\n"
  "  if not auth.equal(t, 'T') then return refuse(req, 403, 'invalid token') end\n"
  "  if req.method == 'PUT' and req.length ~= nil and req.length > storage.free() then\n"
  "    if req.length > storage.capacity() then return refuse(req, 413, 'too large') end\n"
  "    return refuse(req, 507, 'not enough free space')\n"
  "  end\n"
  "  if req.method == 'PUT' and req.name ~= nil and req.name:sub(1, 1) == 'm' then\n"
  "    return { status = 100, name = 'moved' }\n"
  "  end\n"
  "  return true\n"
  "end\n"
  "function on_stored(req, info)\n"
  "  if req.name:sub(1, 1) == 'v' and info.size == 3 then return 422, 'vetoed' end\n"
  "  return true\n"
  "end\n";

static const char *const templates[] = {
  "PUT /files/a HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nContent-Length: 10\r\n"
  "Expect: 100-continue\r\n\r\n",
  "PUT /files/b HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nTransfer-Encoding: chunked\r\n\r\n",
  "GET /files/big HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\n\r\n",
  "GET /files HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\n\r\n",
  "GET /_status HTTP/1.1\r\nHost: d\r\n\r\n",
  "PUT /files/r1 HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
  "DELETE /files/a HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\n\r\n",
  "HEAD /files/big HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nConnection: close\r\n\r\n",
  "0123456789",
  "5\r\nhello\r\n0\r\n\r\n",
  "PUT /files/v HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nContent-Length: 3\r\n"
  "Content-Digest: sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:\r\n\r\nabc",
  "PUT /files/m HTTP/1.0\r\nHost: d\r\nAuthorization: Bearer T\r\nContent-Length: 4\r\n\r\nabcd",
  "GET /_status HTTP/1.1\r\nHost: d\r\n\r\nGET /files/a HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\n\r\n",
  "PUT /files/c HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nContent-Length: 100000\r\n\r\n",
  "PUT /files/d HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer X\r\nContent-Length: 4\r\n\r\nwxyz",
  "GET /files/a HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nConnection: close\r\n\r\n",
};
#define N_TEMPLATES (sizeof templates / sizeof templates[0])

/* ---- Platform and clock ------------------------------------------------------ */

static uint32_t fake_ms = 1000;
static uint32_t rand_state = 1;

u32_t sys_now(void)
{
  return fake_ms;
}

void platform_console_write(const char *s, size_t n)
{
  (void)s;
  (void)n;
}

bool platform_unix_time(uint64_t *seconds)
{
  *seconds = 1767225600u; /* 2026-01-01 */
  return true;
}

uint32_t platform_random(void)
{
  rand_state = rand_state * 1103515245u + 12345u;
  return rand_state;
}

void fuzz_fail(const char *file, int line, const char *why)
{
  fprintf(stderr, "fuzz_conn: invariant violated at %s:%d: %s\n", file, line, why);
  abort();
}

/* ---- Input reading --------------------------------------------------------------- */

typedef struct input {
  const uint8_t *p;
  size_t n;
} input_t;

static uint8_t in_byte(input_t *in)
{
  if (in->n == 0) {
    return 0;
  }
  in->n--;
  return *in->p++;
}

/* ---- Delivering data ------------------------------------------------------------- */

static int opened;

static int pick(input_t *in)
{
  uint8_t b = in_byte(in);
  return opened > 0 ? b % opened : -1;
}

/* Bytes the peer may send now: the window less what the application has not recved. */
static size_t window(int k)
{
  if (k < 0 || !fa_pcbs[k].used || !fa_pcbs[k].alive || fa_pcbs[k].peer_fin) {
    return 0;
  }
  uint64_t pending = fa_pcbs[k].delivered - fa_pcbs[k].recved;
  return pending >= TCP_WND ? 0 : (size_t)(TCP_WND - pending);
}

/* Builds a pbuf chain of data (split 0: the pool's own chaining) and delivers it. */
static void deliver(int k, const uint8_t *data, size_t n, uint8_t split)
{
  size_t w = window(k);
  if (n > w) {
    n = w;
  }
  if (split != 0 && n > 8u * split) {
    n = 8u * split;
  }
  if (n == 0) {
    return;
  }
  struct pbuf *p = NULL;
  if (split == 0) {
    p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
    if (p == NULL) {
      return; /* the pool is empty: lwIP drops the segment */
    }
    FUZZ_CHECK(pbuf_take(p, data, (u16_t)n) == ERR_OK, "pbuf_take");
  } else {
    for (size_t off = 0; off < n; off += split) {
      size_t part = n - off < split ? n - off : split;
      struct pbuf *q = pbuf_alloc(PBUF_RAW, (u16_t)part, PBUF_POOL);
      if (q == NULL) {
        if (p != NULL) {
          pbuf_free(p);
        }
        return;
      }
      FUZZ_CHECK(pbuf_take(q, data + off, (u16_t)part) == ERR_OK, "pbuf_take");
      if (p == NULL) {
        p = q;
      } else {
        pbuf_cat(p, q);
      }
    }
  }
  fa_deliver(k, p);
}

/* ---- Invariants ------------------------------------------------------------------ */

static u16_t base_pool, base_pbuf;
static mem_size_t base_heap;
static bool close_fail_allowed;
static bool trace; /* FUZZ_CONN_TRACE=1: print each connection's status lines (for checking seeds) */

static void check_step(void)
{
  uint32_t held = 0;
  int live = 0;
  for (int k = 0; k < FA_MAX_PCBS; k++) {
    if (fa_pcbs[k].used && fa_pcbs[k].alive) {
      held += fa_pcbs[k].pbufs_held_max;
      live++;
      FUZZ_CHECK(fa_pcbs[k].pcb.arg != NULL, "a live pcb has no connection (it can never be closed)");
    }
  }
  FUZZ_CHECK(http_conns_active() == (uint32_t)live, "active connections differ from live pcbs");
  FUZZ_CHECK(http_conns_active() <= POSTERN_MAX_CONNS, "more connections than the pool");
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF_POOL]->used <= base_pool + held,
             "the pbuf pool holds pbufs no live connection was given (leak)");
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF]->used == base_pbuf, "PBUF_REF/ROM pbufs in use");
}

static bool is_hex(const uint8_t *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
      return false;
    }
  }
  return true;
}

/* Every response stream starts with a status line; every reported sha256 was committed. */
static void check_output(const fa_pcb_t *f)
{
  static const char key[] = "\"sha256\":\"";
  if (f->out_len == 0) {
    return;
  }
  FUZZ_CHECK(f->out_len >= 9 && memcmp(f->out, "HTTP/1.1 ", 9) == 0, "output does not start with a status line");
  if (memmem(f->out, f->out_len, "application/octet-stream", 24) != NULL) {
    return; /* downloads may carry anything */
  }
  const uint8_t *p = f->out, *end = f->out + f->out_len;
  while ((p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
    p += sizeof key - 1;
    if (end - p >= 64 && is_hex(p, 64)) {
      char hex[65];
      memcpy(hex, p, 64);
      hex[64] = '\0';
      FUZZ_CHECK(fs_committed_digest(hex), "a response reports a sha256 that was never committed");
    }
  }
}

/* FIN to everyone, then time passes with every byte acknowledged: all must close by themselves. */
static void wind_down(void)
{
  for (int k = 0; k < FA_MAX_PCBS; k++) {
    fa_ack(k, UINT32_MAX);
    check_step();
    fa_fin(k);
    check_step();
  }
  for (int s = 0; s < 120 && fa_live() > 0; s++) {
    fake_ms += 1000;
    for (int k = 0; k < FA_MAX_PCBS; k++) {
      fa_ack(k, UINT32_MAX);
    }
    fa_poll_all();
    check_step();
  }
  FUZZ_CHECK(fa_live() == 0, "a connection did not close within 120 s after the peer's FIN");
}

/* One request on a fresh connection, then everything closes: did the device
 * write anything, and did it ask for the ACK at once? */
static void head_ack_case(const char *req, bool want_written, uint32_t want_acks)
{
  fa_reset();
  fs_reset(65536);
  int k = fa_open();
  FUZZ_CHECK(k >= 0, "head_ack_case: open");
  deliver(k, (const uint8_t *)req, strlen(req), 0);
  FUZZ_CHECK((fa_pcbs[k].written != 0) == want_written, "head_ack_case: unexpected output");
  FUZZ_CHECK(fa_pcbs[k].acks_now == want_acks,
             "a request head nothing answers was not acknowledged at once (the sender would wait for the delayed-ACK "
             "tick), or an ACK was forced where a response carries it");
  wind_down();
}

/* A sender in slow start has one segment in flight: the head of a request
 * (maybe with the first body bytes). lwIP holds back its ACK until the
 * delayed-ACK tick (250 ms) unless data leaves: 100 Continue or a response
 * carries it, and an upload without Expect must ask for it (ack_now). */
static void check_head_acks(void)
{
  static const char put[] = "PUT /files/s HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nContent-Length: 4\r\n";
  char req[256];
  snprintf(req, sizeof req, "%s\r\n", put);
  head_ack_case(req, false, 1); /* the head alone */
  snprintf(req, sizeof req, "%s\r\nab", put);
  head_ack_case(req, false, 1); /* the head and the first body bytes */
  snprintf(req, sizeof req, "%sExpect: 100-continue\r\n\r\n", put);
  head_ack_case(req, true, 0); /* 100 Continue carries the ACK */
  head_ack_case("GET /_status HTTP/1.1\r\nHost: d\r\n\r\n", true, 0); /* the response carries it */
  fa_reset();
}

/* ---- The target ------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  lwip_init();
  FUZZ_CHECK(policy_init(NULL, NULL, 0) == 0, "policy_init");
  FUZZ_CHECK(policy_load("fuzz_policy", fuzz_policy, sizeof fuzz_policy - 1) == 0, "policy_load");
  FUZZ_CHECK(http_listen(NULL, 80) == ERR_OK, "http_listen");
  base_pool = lwip_stats.memp[MEMP_PBUF_POOL]->used;
  base_pbuf = lwip_stats.memp[MEMP_PBUF]->used;
  base_heap = lwip_stats.mem.used;
  check_head_acks();
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF_POOL]->used == base_pool && lwip_stats.mem.used == base_heap,
             "check_head_acks leaked");
  const char *e = getenv("FUZZ_CONN_CLOSE_FAIL");
  close_fail_allowed = e == NULL || e[0] != '0'; /* on unless FUZZ_CONN_CLOSE_FAIL=0 */
  e = getenv("FUZZ_CONN_TRACE");
  trace = e != NULL && e[0] == '1';
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const uint64_t caps[4] = {1024, 8192, 65536, 1u << 20};
  static uint8_t pattern[20000];
  input_t in = {data, size};
  uint8_t cfg = in_byte(&in);

  fa_reset();
  fs_reset(caps[cfg & 3]);
  if (cfg & 4) {
    for (size_t i = 0; i < sizeof pattern; i++) {
      pattern[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    fs_add("big", pattern, sizeof pattern);
    fs_add("a", (const uint8_t *)"hello", 5);
  }
  opened = 0;

  for (int op = 0; op < MAX_OPS && in.n > 0; op++) {
    switch (in_byte(&in) % OP_COUNT) {
    case OP_OPEN:
      if (fa_live() < POSTERN_MAX_CONNS + 2 && fa_open() >= 0) {
        opened++;
      }
      break;
    case OP_DATA: {
      int k = pick(&in);
      size_t n = in_byte(&in);
      n |= (size_t)in_byte(&in) << 8;
      n %= 4097;
      uint8_t split = in_byte(&in);
      if (n > in.n) {
        n = in.n;
      }
      deliver(k, in.p, n, split);
      in.p += n;
      in.n -= n;
      break;
    }
    case OP_TMPL: {
      int k = pick(&in);
      const char *t = templates[in_byte(&in) % N_TEMPLATES];
      deliver(k, (const uint8_t *)t, strlen(t), in_byte(&in));
      break;
    }
    case OP_FIN:
      fa_fin(pick(&in));
      break;
    case OP_ACK: {
      int k = pick(&in);
      uint8_t m = in_byte(&in);
      fa_ack(k, m == 255 ? UINT32_MAX : 64u * m);
      break;
    }
    case OP_TICK: {
      int secs = in_byte(&in) % 32 + 1;
      for (int s = 0; s < secs; s++) {
        fake_ms += 1000;
        fa_poll_all();
        check_step();
      }
      break;
    }
    case OP_RST:
      fa_rst(pick(&in));
      break;
    case OP_FAULT: {
      uint8_t f = in_byte(&in);
      fs_inject((enum fs_fault)(f % 6), (f & 8) != 0);
      break;
    }
    case OP_ACKALL:
      for (int k = 0; k < FA_MAX_PCBS; k++) {
        fa_ack(k, UINT32_MAX);
      }
      break;
    case OP_CLOSEFAIL:
      fa_close_fails_next = close_fail_allowed;
      break;
    }
    check_step();
  }

  fa_close_fails_next = false;
  fs_inject(FS_FAULT_NONE, false);
  wind_down();
  for (int k = 0; k < FA_MAX_PCBS; k++) {
    fa_rst(k);
  }
  check_step();
  FUZZ_CHECK(http_conns_active() == 0, "connections still active after all were closed");
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF_POOL]->used == base_pool, "pbuf pool not back to zero: leaked pbufs");
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF]->used == base_pbuf, "PBUF_REF/ROM pool not back to zero");
  FUZZ_CHECK(lwip_stats.mem.used == base_heap, "lwIP heap not back to zero");
  fs_check_idle();
  for (int k = 0; k < FA_MAX_PCBS; k++) {
    if (fa_pcbs[k].used) {
      check_output(&fa_pcbs[k]);
    }
    for (size_t i = 0; trace && fa_pcbs[k].used && i + 12 <= fa_pcbs[k].out_len; i++) {
      if (memcmp(fa_pcbs[k].out + i, "HTTP/1.1 ", 9) == 0) {
        fprintf(stderr, "conn %d: %.12s\n", k, (const char *)fa_pcbs[k].out + i);
      }
    }
  }
  return 0;
}
