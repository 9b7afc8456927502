/* fuzz_conn.c: libFuzzer target: the whole connection state machine (http_conn.c) over a fake altcp and storage.
 *
 * The input is byte code. Byte 0 configures the storage (bits 0-1: capacity,
 * bit 2: seed files) and the clock (bit 3: a minute before sys_now() wraps);
 * then each op is one byte (modulo OP_COUNT) followed by its arguments:
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
 *   ZDATA k lo hi split z ... as DATA (split 0: one part), with a zero-length pbuf
 *                             before part i for each bit i of z: lwIP leaves them
 *                             in a chain when it trims a segment that overlaps
 *                             bytes it already has (FUZZ_CONN_ZERO_PBUFS, below)
 *   DRIP k n ...              n input bytes, each its own one-byte segment; what
 *                             does not get through is sent again every second
 *   DRIPT k t                 a template in one-byte segments, the same way
 *   SLOW k t g                a template byte by byte, (g % 8 + 1) * 500 ms apart,
 *                             lwIP's timers running (at most 120 s)
 *   WAIT s                    (s % 16 + 1) * 15 s pass, lwIP's timers running
 *   FLOOD n m                 n % 8 + 2 new connections at once; 2 bits of m each,
 *                             in turn: silent, an unfinished head, an unfinished
 *                             head then a reset, or a FIN at once
 *   SNDBUF k m                the send buffer offers 32*m bytes at most (255: all):
 *                             lwIP short of memory, responses must wait
 *   DEAF k                    the peer stops reading: nothing is acknowledged again
 *   PEND m d                  the medium is busy for d * 250 ms: the storage calls of the
 *                             kinds in m (bits: open, write, commit, remove, read)
 *                             answer STORAGE_PENDING meanwhile (m & 31 == 0: not busy)
 *   POLL b                    storage_poll() now: the medium's work ends first (b & 1),
 *                             storage_ready() is called even if it stays busy (b & 2)
 * Received data never exceeds the window (TCP_WND less what is not yet recved).
 * What a recv callback refuses stays with the fake as lwIP's refused data and
 * is offered again on the next segment and every timer second; meanwhile new
 * data is not sent. As time passes, storage_poll() runs when the medium's busy
 * time ends and before every timer second, as the board's main loop calls it;
 * it calls storage_ready() when a call pended, and the core's retries run
 * there, outside any callback.
 *
 * After every op: connection slots match live pcbs and stay within the pool;
 * the pbuf pool holds no more than the live connections were given, and (with
 * FUZZ_CONN_PBUF_BOUND) no more than POSTERN_CONN_PBUFS_MAX per connection
 * plus the refused data the fake holds. A callback that reads the clock
 * FA_CLOCK_READS_MAX times spins. At the end every connection gets FIN and
 * time passes (acked, except to deaf peers) until all have closed by
 * themselves; then every lwIP pool and the heap are back to where they
 * started, storage has no open upload or reader, and every sha256 a response
 * reports was committed. The fake storage checks each call as it comes: the
 * call after a pending write is its retry with the same bytes (or an abort),
 * no commit while a write pends, and a committed body is the connection's
 * bytes in order, none lost or twice.
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
#include "lwip/priv/mem_priv.h"
#include "lwip/priv/memp_priv.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "platform.h"
#include "policy.h"
#include "policy_store.h"
#include "postern_opts.h"
#include "storage.h"

#define MAX_OPS 64

/*
 * Two checks that can be switched off to see what they guard against with a
 * build of the state machine that predates them: the bound on the pool pbufs
 * a connection holds at rest (POSTERN_CONN_PBUFS_MAX), and zero-length pbufs
 * in delivered chains (which once made the body loop spin). With
 * FUZZ_CONN_ZERO_PBUFS=0 the ZDATA op reads the same bytes and leaves the
 * zero-length pbufs out. Set them with FUZZ_CONN_DEFS='-DFUZZ_CONN_...=0'.
 */
#ifndef FUZZ_CONN_PBUF_BOUND
#define FUZZ_CONN_PBUF_BOUND 1
#endif
#ifndef FUZZ_CONN_ZERO_PBUFS
#define FUZZ_CONN_ZERO_PBUFS 1
#endif

/* Old seeds use bytes 0 to 9 only: new ops go after them, so they keep their meaning. */
enum {
  OP_OPEN,
  OP_DATA,
  OP_TMPL,
  OP_FIN,
  OP_ACK,
  OP_TICK,
  OP_RST,
  OP_FAULT,
  OP_ACKALL,
  OP_CLOSEFAIL,
  OP_ZDATA,
  OP_DRIP,
  OP_DRIPT,
  OP_SLOW,
  OP_WAIT,
  OP_FLOOD,
  OP_SNDBUF,
  OP_DEAF,
  OP_PEND,
  OP_POLL,
  OP_COUNT
};

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
    "  return { status = status, message = message, allow_origin = req.headers.origin == 'http://o' and '*' or nil }\n"
    "end\n"
    "function on_request(req)\n"
    "  if req.path == '/' then return true end\n"
    "  if req.method == 'OPTIONS' then\n"
    "    if req.headers.origin ~= 'http://o' then return 403 end\n"
    "    return { status = 100, allow_origin = 'http://o', allow_methods = 'PUT, GET', allow_headers = 'a', max_age = "
    "5 }\n"
    "  end\n"
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
    /* Form uploads (POST /files/): a whole one, and a chunked head whose body follows as DATA. */
    "POST /files/ HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nContent-Length: 146\r\n"
    "Content-Type: multipart/form-data; boundary=zz\r\n\r\n"
    "--zz\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\nv\r\n--zz\r\nContent-Disposition: form-data; "
    "name=\"f\"; filename=\"fm\"\r\n\r\nform \r\n--z content\r\n--zz--\r\n",
    "POST /files HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\nTransfer-Encoding: chunked\r\n"
    "Expect: 100-continue\r\nContent-Type: multipart/form-data; boundary=\"zz\"\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: d\r\nAccept-Encoding: br, gzip;q=0.5\r\n\r\n",
    "OPTIONS /files/a HTTP/1.1\r\nHost: d\r\nOrigin: http://o\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
    "PUT /files/o HTTP/1.1\r\nHost: d\r\nOrigin: http://o\r\nAuthorization: Bearer X\r\nContent-Length: 2\r\n\r\nhi",
};
#define N_TEMPLATES (sizeof templates / sizeof templates[0])

/* What a flood's connections send: a head that never ends. */
static const char flood_head[] = "PUT /files/f HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer T\r\n";

/* ---- Platform and clock ------------------------------------------------------ */

static uint32_t fake_ms = 1000;
static uint32_t next_timer_ms; /* when lwIP's timers run next (once a second) */
static uint32_t rand_state = 1;

u32_t sys_now(void)
{
  if ((fa_current != NULL || fs_in_ready) && ++fa_clock_reads > FA_CLOCK_READS_MAX) {
    fuzz_fail(__FILE__, __LINE__, "a callback read the clock without end: it spins (a loop that makes no progress)");
  }
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

/* PUT /_policy keeps nothing across runs here. */
int policy_store_save(const char *source, size_t len)
{
  (void)source;
  (void)len;
  return POLICY_STORE_RAM;
}

int policy_store_save_config(const char *const *names, const char *const *values, int n)
{
  (void)names;
  (void)values;
  (void)n;
  return POLICY_STORE_RAM;
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

static int pick(input_t *in)
{
  uint8_t b = in_byte(in);
  return fa_opened > 0 ? b % fa_opened : -1;
}

/* Bytes the peer may send now: the window less what the application has not recved (refused data included). */
static size_t window(int k)
{
  if (k < 0 || !fa_pcbs[k].used || !fa_pcbs[k].alive || fa_pcbs[k].peer_fin) {
    return 0;
  }
  uint64_t pending = fa_pcbs[k].delivered - fa_pcbs[k].recved;
  return pending >= TCP_WND ? 0 : (size_t)(TCP_WND - pending);
}

/* A pool pbuf holding data[0..n) (a chain when n exceeds one pool buffer); NULL when the pool is empty. */
static struct pbuf *pool_pbuf(const uint8_t *data, size_t n)
{
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
  if (p != NULL && n > 0) {
    FUZZ_CHECK(pbuf_take(p, data, (u16_t)n) == ERR_OK, "pbuf_take");
  }
  return p;
}

static struct pbuf *chain_cat(struct pbuf *p, struct pbuf *q)
{
  if (p == NULL) {
    return q;
  }
  pbuf_cat(p, q);
  return p;
}

/*
 * Builds a pbuf chain of data and delivers it: split 0 is the pool's own
 * chaining, else up to 8 pbufs of `split` bytes; bit i of zeros puts a
 * zero-length pbuf before part i. Returns false when nothing was delivered.
 */
static bool deliver_z(int k, const uint8_t *data, size_t n, uint8_t split, uint8_t zeros)
{
  if (k < 0 || !fa_retry_refused(k)) {
    return false; /* refused data still waits: lwIP would drop the segment, the peer sends it again */
  }
  size_t w = window(k);
  if (n > w) {
    n = w;
  }
  if (split != 0 && n > 8u * split) {
    n = 8u * split;
  }
  if (n == 0) {
    return false;
  }
  size_t part_max = split != 0 ? split : n;
  struct pbuf *p = NULL;
  for (size_t off = 0, i = 0; off < n; off += part_max, i++) {
    size_t part = n - off < part_max ? n - off : part_max;
    bool want_zero = FUZZ_CONN_ZERO_PBUFS && i < 8 && (zeros >> i & 1);
    struct pbuf *z = want_zero ? pool_pbuf(NULL, 0) : NULL;
    struct pbuf *q = pool_pbuf(data + off, part);
    if (q == NULL || (want_zero && z == NULL)) {
      /* The pool is empty: lwIP drops the segment. */
      if (q != NULL) {
        pbuf_free(q);
      }
      if (z != NULL) {
        pbuf_free(z);
      }
      if (p != NULL) {
        pbuf_free(p);
      }
      return false;
    }
    p = chain_cat(p, z != NULL ? chain_cat(z, q) : q);
  }
  fa_deliver(k, p);
  return true;
}

static bool deliver(int k, const uint8_t *data, size_t n, uint8_t split)
{
  return deliver_z(k, data, n, split, 0);
}

/*
 * A peer that sends one-byte segments keeps what did not get through (the
 * pool was empty, or refused data waits) and sends it again, once a second
 * and on its next send, as TCP retransmits: a server that refuses data must
 * still get the whole request.
 */
typedef struct backlog {
  uint8_t buf[512];
  uint16_t off, len;
} backlog_t;
static backlog_t backlogs[FA_MAX_PCBS];

static void backlog_flush(int k)
{
  backlog_t *b = &backlogs[k];
  while (b->off < b->len && deliver(k, b->buf + b->off, 1, 0)) {
    b->off++;
  }
  if (b->off == b->len || !fa_pcbs[k].alive || fa_pcbs[k].peer_fin) {
    b->off = b->len = 0; /* all sent, or nobody to send it to */
  }
}

/* Each byte its own segment: lwIP hands every one to the callback in its own pool pbuf. */
static void drip(int k, const uint8_t *data, size_t n)
{
  if (k < 0) {
    return;
  }
  backlog_t *b = &backlogs[k];
  if (b->off > 0) {
    memmove(b->buf, b->buf + b->off, (size_t)(b->len - b->off));
    b->len = (uint16_t)(b->len - b->off);
    b->off = 0;
  }
  if (n > sizeof b->buf - b->len) {
    n = sizeof b->buf - b->len;
  }
  memcpy(b->buf + b->len, data, n);
  b->len = (uint16_t)(b->len + n);
  backlog_flush(k);
}

static void check_step(void);

/*
 * Time passes; lwIP's timers run once a second (refused data, then the poll
 * callbacks), the medium's step (storage_poll) when its busy time ends and
 * before each timer second.
 */
static void pass_time(uint32_t ms)
{
  uint32_t end = fake_ms + ms;
  for (;;) {
    uint32_t readies = fs_readies;
    uint32_t wait = storage_poll();
    if (fs_readies != readies) {
      check_step();
    }
    if (wait != STORAGE_POLL_IDLE && (int32_t)(fake_ms + wait - next_timer_ms) < 0) {
      if ((int32_t)(end - (fake_ms + wait)) < 0) {
        break;
      }
      fake_ms += wait; /* the medium is done before the next timer second */
      continue;
    }
    if ((int32_t)(end - next_timer_ms) < 0) {
      break;
    }
    fake_ms = next_timer_ms;
    next_timer_ms += 1000;
    if (fa_live() > 0) {
      fa_poll_all();
      for (int k = 0; k < fa_opened; k++) {
        if (backlogs[k].len > 0) {
          backlog_flush(k);
        }
      }
      check_step();
    }
  }
  fake_ms = end;
  storage_poll();
}

/* ---- Invariants ------------------------------------------------------------------ */

static u16_t base_pool, base_pbuf;
static u16_t base_memp[MEMP_MAX];
static mem_size_t base_heap;
static bool close_fail_allowed;

#if MEMP_OVERFLOW_CHECK != 1 || !MEMP_SANITY_CHECK
#error "fuzz_conn checks lwIP's pool guards itself: build with MEMP_OVERFLOW_CHECK=1 and MEMP_SANITY_CHECK=1"
#endif

/*
 * The guard bytes around every element of every pool the target has used. At
 * MEMP_OVERFLOW_CHECK=2 lwIP did this on each memp call, over the pools of the
 * TCP stack the fake replaces too (114 elements, 24 of them pbufs the target
 * uses): a fifth of all time. Now lwIP checks each element it hands out or
 * takes back (level 1), and this checks them all after every step.
 */
static void check_pool_guards(void)
{
  for (int i = 0; i < MEMP_MAX; i++) {
    const struct memp_desc *d = memp_pools[i];
    if (d->stats->max == 0) {
      continue; /* never handed out: nothing wrote there */
    }
    u8_t *p = (u8_t *)LWIP_MEM_ALIGN(d->base);
    for (u16_t j = 0; j < d->num; j++) {
      mem_overflow_check_raw(p + MEMP_SIZE, d->size, "pool ", d->desc);
      p += MEMP_SIZE + d->size + MEM_SANITY_REGION_AFTER_ALIGNED;
    }
  }
}
static bool trace; /* FUZZ_CONN_TRACE=1: print each connection's status lines (for checking seeds) */

static void check_step(void)
{
  uint32_t held = 0;
  int live = 0;
  for (int k = 0; k < fa_opened; k++) {
    if (fa_pcbs[k].used && fa_pcbs[k].alive) {
      held += fa_pcbs[k].pbufs_held_max;
      live++;
      FUZZ_CHECK(fa_pcbs[k].pcb.arg != NULL, "a live pcb has no connection (it can never be closed)");
    }
  }
  FUZZ_CHECK(http_conns_active() == (uint32_t)live, "active connections differ from live pcbs");
  FUZZ_CHECK(http_conns_active() <= POSTERN_MAX_CONNS, "more connections than the pool");
  FUZZ_CHECK(http_conns_high_water() <= POSTERN_MAX_CONNS, "the pool's high-water mark exceeds it");
  u16_t pool = lwip_stats.memp[MEMP_PBUF_POOL]->used;
  FUZZ_CHECK(pool <= base_pool + held, "the pbuf pool holds pbufs no live connection was given (leak)");
#if FUZZ_CONN_PBUF_BOUND
  /* At rest (no callback runs) a connection holds at most POSTERN_CONN_PBUFS_MAX
   * pool pbufs: beyond them it refuses, and lwIP (here the fake) keeps the
   * data. An upload that waited on the medium may have taken its window,
   * compacted, and holds it until it consumes it. */
  uint32_t each = POSTERN_CONN_PBUFS_MAX;
  if (fs_uploads_waited() && TCP_WND / PBUF_POOL_BUFSIZE + 2 > each) {
    each = TCP_WND / PBUF_POOL_BUFSIZE + 2;
  }
  FUZZ_CHECK(pool <= base_pool + each * http_conns_active() + fa_pbufs_held(),
             "connections hold more pool pbufs each than POSTERN_CONN_PBUFS_MAX (a window while storage waits)");
#endif
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF]->used == base_pbuf, "PBUF_REF/ROM pbufs in use");
  check_pool_guards();
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
    /* A policy's answer ({"name":...,"bytes":N,"sha256":...}) reports the policy's digest, not a file's. */
    const uint8_t *obj = p;
    while (obj > f->out && *obj != '{') {
      obj--;
    }
    bool of_policy = memmem(obj, (size_t)(p - obj), "\"bytes\":", 8) != NULL;
    p += sizeof key - 1;
    if (!of_policy && end - p >= 64 && is_hex(p, 64)) {
      char hex[65];
      memcpy(hex, p, 64);
      hex[64] = '\0';
      FUZZ_CHECK(fs_committed_digest(hex), "a response reports a sha256 that was never committed");
    }
  }
}

/* The peers acknowledge what they were sent, as long as more comes (a fast reader; deaf peers read nothing). */
static void ack_until_quiet(void)
{
  for (int round = 0; round < 1000; round++) {
    uint64_t written = 0, after = 0;
    for (int k = 0; k < fa_opened; k++) {
      written += fa_pcbs[k].written;
      fa_ack(k, UINT32_MAX);
      after += fa_pcbs[k].written;
    }
    check_step();
    if (after == written) {
      return;
    }
  }
}

/* FIN to everyone, then time passes with every byte acknowledged (deaf peers
 * acknowledge nothing): all must close by themselves. The peers read fast: a
 * long pipelined download through a starved send buffer ends in a second. */
static void wind_down(void)
{
  for (int k = 0; k < fa_opened; k++) {
    fa_ack(k, UINT32_MAX);
    check_step();
    fa_fin(k);
    check_step();
  }
  for (int s = 0; s < 120 && fa_live() > 0; s++) {
    ack_until_quiet();
    pass_time(1000);
    check_step();
  }
  for (int k = 0; trace && k < fa_opened; k++) {
    const fa_pcb_t *f = &fa_pcbs[k];
    if (f->alive) {
      fprintf(stderr, "conn %d still open: unacked %u of %u, deaf %d, fin %d/%d, refused %d, written %llu\n", k,
              (unsigned)f->unacked, (unsigned)f->snd_cap, f->deaf, f->peer_fin, f->shut_tx, f->refused != NULL,
              (unsigned long long)f->written);
    }
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
  head_ack_case(req, true, 0);                                        /* 100 Continue carries the ACK */
  head_ack_case("GET /_status HTTP/1.1\r\nHost: d\r\n\r\n", true, 0); /* the response carries it */
  fa_reset();
}

/* ---- The target ------------------------------------------------------------------ */

/* Shared by every input that has seed files: fs_add borrows it. */
static uint8_t pattern[20000];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  for (size_t i = 0; i < sizeof pattern; i++) {
    pattern[i] = (uint8_t)(i * 7 + (i >> 8));
  }
  lwip_init();
  FUZZ_CHECK(policy_init(NULL, NULL, 0) == 0, "policy_init");
  FUZZ_CHECK(policy_load("fuzz_policy", fuzz_policy, sizeof fuzz_policy - 1) == 0, "policy_load");
  FUZZ_CHECK(http_listen(NULL, 80) == ERR_OK, "http_listen");
  base_pool = lwip_stats.memp[MEMP_PBUF_POOL]->used;
  base_pbuf = lwip_stats.memp[MEMP_PBUF]->used;
  for (int i = 0; i < MEMP_MAX; i++) {
    base_memp[i] = lwip_stats.memp[i]->used;
  }
  base_heap = lwip_stats.mem.used;
  next_timer_ms = fake_ms + 1000;
  check_head_acks();
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF_POOL]->used == base_pool && lwip_stats.mem.used == base_heap,
             "check_head_acks leaked");
  const char *e = getenv("FUZZ_CONN_CLOSE_FAIL");
  close_fail_allowed = e == NULL || e[0] != '0'; /* on unless FUZZ_CONN_CLOSE_FAIL=0 */
  e = getenv("FUZZ_CONN_TRACE");
  trace = e != NULL && e[0] == '1';
  return 0;
}

/* The peer of a flood connection: silent, an unfinished head, that and a reset, or a FIN at once. */
static void flood_peer(int k, unsigned how)
{
  if (how == 1 || how == 2) {
    deliver(k, (const uint8_t *)flood_head, sizeof flood_head - 1, 0);
  }
  if (how == 2) {
    fa_rst(k);
  } else if (how == 3) {
    fa_fin(k);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const uint64_t caps[4] = {1024, 8192, 65536, 1u << 20};
  input_t in = {data, size};
  uint8_t cfg = in_byte(&in);

  fa_reset();
  fs_reset(caps[cfg & 3]);
  if (policy_running(NULL, NULL, NULL, NULL) != fuzz_policy) {
    /* An input replaced it (PUT /_policy): every input starts with the fixed one. */
    FUZZ_CHECK(policy_init(NULL, NULL, 0) == 0, "policy_init");
    FUZZ_CHECK(policy_load("fuzz_policy", fuzz_policy, sizeof fuzz_policy - 1) == 0, "policy_load");
  }
  if (cfg & 4) {
    fs_add("big", pattern, sizeof pattern);
    fs_add("a", (const uint8_t *)"hello", 5);
  }
  /* Each input starts from the same clock (a crash must replay), or a minute before it wraps. */
  fake_ms = cfg & 8 ? 0xffffffffu - 60000u : 1000u;
  next_timer_ms = fake_ms + 1000;
  rand_state = 1;
  for (int k = 0; k < FA_MAX_PCBS; k++) {
    backlogs[k].off = backlogs[k].len = 0;
  }

  for (int op = 0; op < MAX_OPS && in.n > 0; op++) {
    uint8_t opcode = in_byte(&in) % OP_COUNT;
    if (trace) {
      static const char *const names[OP_COUNT] = {"OPEN",  "DATA",   "TMPL",      "FIN",   "ACK",  "TICK",  "RST",
                                                  "FAULT", "ACKALL", "CLOSEFAIL", "ZDATA", "DRIP", "DRIPT", "SLOW",
                                                  "WAIT",  "FLOOD",  "SNDBUF",    "DEAF",  "PEND", "POLL"};
      fprintf(stderr, "t=%u op %s", (unsigned)(fake_ms - (cfg & 8 ? 0xffffffffu - 60000u : 1000u)), names[opcode]);
      for (size_t i = 0; i < 5 && i < in.n; i++) {
        fprintf(stderr, " %u", in.p[i]);
      }
      fprintf(stderr, " (live %d)\n", fa_live());
    }
    switch (opcode) {
    case OP_OPEN:
      if (fa_live() < POSTERN_MAX_CONNS + 2) {
        fa_open();
      }
      break;
    case OP_DATA:
    case OP_ZDATA: {
      int k = pick(&in);
      size_t n = in_byte(&in);
      n |= (size_t)in_byte(&in) << 8;
      n %= 4097;
      uint8_t split = in_byte(&in);
      uint8_t zeros = opcode == OP_ZDATA ? in_byte(&in) : 0;
      if (n > in.n) {
        n = in.n;
      }
      deliver_z(k, in.p, n, split, zeros);
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
    case OP_TICK:
      pass_time((in_byte(&in) % 32 + 1) * 1000u);
      break;
    case OP_RST:
      fa_rst(pick(&in));
      break;
    case OP_FAULT: {
      uint8_t f = in_byte(&in);
      fs_inject((enum fs_fault)(f % 6), (f & 8) != 0);
      break;
    }
    case OP_ACKALL:
      for (int k = 0; k < fa_opened; k++) {
        fa_ack(k, UINT32_MAX);
      }
      break;
    case OP_CLOSEFAIL:
      fa_close_fails_next = close_fail_allowed;
      break;
    case OP_DRIP: {
      int k = pick(&in);
      size_t n = in_byte(&in);
      if (n > in.n) {
        n = in.n;
      }
      drip(k, in.p, n);
      in.p += n;
      in.n -= n;
      break;
    }
    case OP_DRIPT: {
      int k = pick(&in);
      const char *t = templates[in_byte(&in) % N_TEMPLATES];
      drip(k, (const uint8_t *)t, strlen(t));
      break;
    }
    case OP_SLOW: {
      int k = pick(&in);
      const char *t = templates[in_byte(&in) % N_TEMPLATES];
      uint32_t gap = (in_byte(&in) % 8 + 1) * 500u;
      for (uint32_t i = 0; k >= 0 && t[i] != '\0' && i * gap < 120000u; i++) {
        if (!fa_pcbs[k].alive || fa_pcbs[k].peer_fin) {
          break; /* nobody to send to */
        }
        drip(k, (const uint8_t *)t + i, 1);
        check_step();
        pass_time(gap);
      }
      break;
    }
    case OP_WAIT:
      pass_time((in_byte(&in) % 16 + 1) * 15000u);
      break;
    case OP_FLOOD: {
      int n = in_byte(&in) % 8 + 2;
      uint8_t how = in_byte(&in);
      for (int i = 0; i < n; i++) {
        int k = fa_open();
        if (k < 0) {
          break;
        }
        check_step();
        flood_peer(k, (how >> (2 * (i % 4))) & 3u);
        check_step();
      }
      break;
    }
    case OP_SNDBUF: {
      int k = pick(&in);
      uint8_t m = in_byte(&in);
      if (k >= 0) {
        fa_pcbs[k].snd_cap = m == 255 || 32u * m > TCP_SND_BUF ? TCP_SND_BUF : 32u * m;
      }
      break;
    }
    case OP_DEAF: {
      int k = pick(&in);
      if (k >= 0) {
        fa_pcbs[k].deaf = true;
      }
      break;
    }
    case OP_PEND: {
      uint8_t m = in_byte(&in);
      uint8_t d = in_byte(&in);
      fs_pend(m & FS_PEND_ALL, fake_ms + d * 250u);
      break;
    }
    case OP_POLL: {
      uint8_t b = in_byte(&in);
      fs_poll((b & 1) != 0, (b & 2) != 0);
      break;
    }
    }
    check_step();
  }

  fa_close_fails_next = false;
  fs_inject(FS_FAULT_NONE, false);
  fs_pend(0, 0); /* the medium's work ends: what pended resumes at the next storage_poll() */
  wind_down();
  for (int k = 0; k < fa_opened; k++) {
    fa_rst(k);
  }
  check_step();
  FUZZ_CHECK(http_conns_active() == 0, "connections still active after all were closed");
  FUZZ_CHECK(fa_pbufs_held() == 0, "refused data is still held after every connection closed");
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF_POOL]->used == base_pool, "pbuf pool not back to zero: leaked pbufs");
  FUZZ_CHECK(lwip_stats.memp[MEMP_PBUF]->used == base_pbuf, "PBUF_REF/ROM pool not back to zero");
  for (int i = 0; i < MEMP_MAX; i++) {
    FUZZ_CHECK(lwip_stats.memp[i]->used == base_memp[i], "an lwIP pool is not back where it started");
  }
  FUZZ_CHECK(lwip_stats.mem.used == base_heap, "lwIP heap not back to zero");
  fs_check_idle();
  for (int k = 0; k < fa_opened; k++) {
    if (fa_pcbs[k].used) {
      check_output(&fa_pcbs[k]);
    }
    for (size_t i = 0; trace && fa_pcbs[k].used && i + 12 <= fa_pcbs[k].out_len; i++) {
      if (memcmp(fa_pcbs[k].out + i, "HTTP/1.1 ", 9) == 0) {
        fprintf(stderr, "conn %d: %.12s\n", k, (const char *)fa_pcbs[k].out + i);
      }
    }
  }
  /* Everything this input allocated goes back now: libFuzzer reruns an input
   * whose mallocs outnumber its frees, to look for a leak. */
  fs_reset(0);
  return 0;
}
