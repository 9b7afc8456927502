/* http_routes.c: the answers that carry content: downloads and the listing streamed as the send buffer drains, /_status, and DELETE. */
#include "http_conn_int.h"

#include <stdbool.h>
#include <string.h>

#include "http_response.h"
#include "http_status.h"
#include "log.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "policy.h"
#include "storage.h"
#include "text.h"

#if !MEM_STATS
#error "postern reads lwIP's heap use (MEM_STATS) to keep POSTERN_HEAP_RESERVE free"
#endif

static uint8_t conn_io[TCP_MSS]; /* one chunk of a download or a listing at a time */
_Static_assert(sizeof conn_io >= CONN_LIST_ENTRY_MAX, "a listing entry must fit conn_io whole");

/* DELETE: removes the file, once storage takes the call. */
void conn_remove(conn_t *c)
{
  int rc = storage_remove(c->name);
  if (conn_storage_wait(c, rc)) {
    return;
  }
  if (rc == STORAGE_OK) {
    if (conn_send_ok(c, 204, NULL, 0, NULL, NULL, 0, 0, false)) {
      conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
    }
    return;
  }
  conn_respond_error(c, rc == STORAGE_ENOENT ? 404 : 500, NULL, rc == STORAGE_ENOENT ? "no such file" : "storage error",
                     !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
}

void conn_start_download(conn_t *c, const char *head)
{
  uint64_t size = 0;
  int rc = storage_read_open(c->name, &c->reader, &size);
  if (rc != STORAGE_OK) {
    c->reader = NULL;
    conn_respond_error(c,
                       rc == STORAGE_ENOENT  ? 404
                       : rc == STORAGE_EBUSY ? 503
                                             : 500,
                       NULL, rc == STORAGE_ENOENT ? "no such file" : "storage busy or failing", !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  int status;
  uint64_t length;
  if (!conn_download_conditions(c, head, size, &status, &length)) {
    return; /* 304, 412 or 416 answered */
  }
  uint8_t sha[DIGEST_SHA256_LEN];
  char b64[DIGEST_SHA256_B64_LEN];
  bool tagged = storage_read_sha256(c->reader, sha);
  if (tagged) {
    digest_base64_encode(sha, sizeof sha, b64, sizeof b64);
  }
  conn_accept_ranges = true;
  if (!conn_send_ok(c, status, "application/octet-stream", length, tagged ? b64 : NULL, NULL, 0, length, length > 0)) {
    return;
  }
  c->send_left = c->head_only ? 0 : length;
  c->state = CONN_SEND_FILE;
  conn_pump(c);
}

/*
 * The listing is a sequence of items, each rendered whole or not at all:
 * item 0 is `{"files":[`, items 1 to N the entries, item N + 1 the closing
 * `]}`. A render resumes at the item where the last one stopped.
 */
typedef struct conn_list_ctx {
  wbuf_t *b;
  uint32_t item; /* the entry being visited */
  uint32_t next; /* the first item not rendered yet */
  bool full;
} conn_list_ctx_t;

/* Appends one item whole, or marks the render full. */
static bool conn_list_put(conn_list_ctx_t *ctx, const char *s, size_t n)
{
  if (n > ctx->b->cap - ctx->b->len) {
    ctx->full = true;
    return false;
  }
  wb_mem(ctx->b, s, n);
  ctx->next++;
  return true;
}

static int conn_list_entry(void *arg, const char *name, uint64_t size)
{
  conn_list_ctx_t *ctx = arg;
  if (++ctx->item < ctx->next) {
    return 0; /* sent already */
  }
  char one[CONN_LIST_ENTRY_MAX];
  wbuf_t e;
  wb_init(&e, one, sizeof one);
  wb_str(&e, ctx->item == 1 ? "{\"name\":" : ",{\"name\":");
  wb_json_str(&e, name, strlen(name));
  wb_lit(&e, ",\"size\":");
  wb_u64(&e, size);
  uint8_t sha[DIGEST_SHA256_LEN];
  if (storage_sha256(name, sha)) {
    char etag[COND_ETAG_LEN + 1], b64[DIGEST_SHA256_B64_LEN];
    cond_etag(sha, etag);
    digest_base64_encode(sha, sizeof sha, b64, sizeof b64);
    wb_lit(&e, ",\"etag\":");
    wb_json_str(&e, etag, COND_ETAG_LEN);
    wb_lit(&e, ",\"sha256\":\"");
    wb_str(&e, b64);
    wb_lit(&e, "\"");
  }
  wb_lit(&e, "}");
  return conn_list_put(ctx, one, e.len) ? 0 : 1;
}

/* Renders listing items from `from` on into b, while they fit; returns the next item. */
static uint32_t conn_list_render(wbuf_t *b, uint32_t from, bool *finished)
{
  static const char open[] = "{\"files\":[", close[] = "]}\n";
  conn_list_ctx_t ctx = {b, 0, from, false};
  *finished = false;
  if (from == 0 && !conn_list_put(&ctx, open, sizeof open - 1)) {
    return ctx.next;
  }
  storage_list(conn_list_entry, &ctx);
  if (!ctx.full && conn_list_put(&ctx, close, sizeof close - 1)) {
    *finished = true;
  }
  return ctx.next;
}

void conn_start_list(conn_t *c)
{
  /* First pass: the length, for Content-Length. Every item fits an empty buffer. */
  uint64_t total = 0;
  uint32_t next = 0;
  bool finished = false;
  while (!finished) {
    wbuf_t b;
    wb_init(&b, (char *)conn_io, sizeof conn_io);
    next = conn_list_render(&b, next, &finished);
    total += b.len;
  }
  if (!conn_send_ok(c, 200, "application/json", total, NULL, NULL, 0, total, true)) {
    return;
  }
  c->send_left = c->head_only ? 0 : total;
  c->list_next = 0;
  c->state = CONN_SEND_LIST;
  conn_pump(c);
}

void conn_send_status(conn_t *c)
{
  char *body = (char *)conn_io; /* rendered, then copied into the send queue at once, like /_config */
  wbuf_t j;
  wb_init(&j, body, sizeof conn_io);
  http_status_render(&j);
  if (j.overflow) {
    /* Never a cut document. */
    log_line("http: /_status does not fit its %u-byte buffer", (unsigned)sizeof conn_io);
    conn_respond_error(c, 500, NULL, "the status document does not fit its buffer", !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  if (!conn_send_ok(c, 200, "application/json", j.len, NULL, body, j.len, j.len, false)) {
    return;
  }
  conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
}

/* GET /_policy: what runs (JSON), or with ?source its text, streamed like a download. */
void conn_send_policy(conn_t *c, bool source)
{
  size_t len;
  const char *name;
  uint8_t sha[DIGEST_SHA256_LEN];
  uint32_t gen;
  if (policy_running(&len, &name, sha, &gen) == NULL) {
    conn_respond_error(c, 503, NULL, "no policy is running", !c->keep_alive, c->keep_alive ? AFTER_NEXT : AFTER_LINGER,
                       NULL);
    return;
  }
  if (source) {
    if (!conn_send_ok(c, 200, "text/x-lua", len, NULL, NULL, 0, len, len > 0)) {
      return;
    }
    c->reader = NULL;
    c->list_next = 0;
    c->send_gen = gen;
    c->send_left = c->head_only ? 0 : len;
    c->state = CONN_SEND_FILE;
    conn_pump(c);
    return;
  }
  char hex[2 * DIGEST_SHA256_LEN + 1];
  text_hex(sha, sizeof sha, hex);
  char body[2 * DIGEST_SHA256_LEN + 6 * POSTERN_NAME_MAX + 64];
  size_t name_len = strlen(name);
  wbuf_t j;
  wb_init(&j, body, sizeof body);
  wb_lit(&j, "{\"name\":");
  wb_json_str(&j, name, name_len < POSTERN_NAME_MAX ? name_len : POSTERN_NAME_MAX);
  wb_lit(&j, ",\"bytes\":");
  wb_u64(&j, len);
  wb_lit(&j, ",\"sha256\":\"");
  wb_str(&j, hex);
  wb_lit(&j, "\",\"room\":");
  wb_u64(&j, policy_stage_room());
  wb_lit(&j, "}\n");
  if (conn_send_ok(c, 200, "application/json", j.len, NULL, body, j.len, j.len, false)) {
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}

#if POSTERN_CONFIG_ROUTE
/* GET /_config: the settings, a JSON object of strings, without the secret ones; rendered in conn_io. */
void conn_send_config(conn_t *c)
{
  const char *const *names, *const *values;
  int n = policy_settings(&names, &values);
  wbuf_t j;
  wb_init(&j, (char *)conn_io, sizeof conn_io);
  wb_lit(&j, "{");
  for (int i = 0, shown = 0; i < n; i++) {
    if (policy_setting_secret(names[i])) {
      continue;
    }
    wb_str(&j, shown++ > 0 ? "," : "");
    wb_json_str(&j, names[i], strlen(names[i]));
    wb_lit(&j, ":");
    wb_json_str(&j, values[i], strlen(values[i]));
  }
  wb_lit(&j, "}\n");
  if (j.overflow) {
    conn_respond_error(c, 500, NULL, "the settings do not fit their buffer", !c->keep_alive,
                       c->keep_alive ? AFTER_NEXT : AFTER_LINGER, NULL);
    return;
  }
  if (conn_send_ok(c, 200, "application/json", j.len, NULL, (const char *)conn_io, j.len, j.len, false)) {
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}
#endif

/* Whether n more bytes of a streamed body may go into lwIP's heap, given the
 * send room the connection has: within its own bound, and only while the
 * reserve stays free for everyone's answers. */
static bool conn_heap_room(size_t room, size_t n)
{
  size_t queued = room < TCP_SND_BUF ? TCP_SND_BUF - room : 0;
  size_t used = lwip_stats.mem.used;
  size_t left = used < MEM_SIZE ? MEM_SIZE - used : 0;
  return queued + n <= POSTERN_SEND_MAX && left >= POSTERN_HEAP_RESERVE + n + CONN_SEG_OVERHEAD;
}

/* Moves download or listing bytes into the send buffer while it has room. */
void conn_pump(conn_t *c)
{
  while (c->send_left > 0) {
    size_t room = altcp_sndbuf(c->pcb);
    if (room < CONN_LIST_ENTRY_MAX && room < c->send_left) { /* a listing entry goes whole */
      break;
    }
    if (altcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN - 2) {
      break;
    }
    size_t n = room < sizeof conn_io ? room : sizeof conn_io;
    if (n > c->send_left) {
      n = (size_t)c->send_left;
    }
    if (!conn_heap_room(room, n)) {
      break; /* conn_on_sent or conn_on_poll comes back */
    }
    if (c->state == CONN_SEND_FILE && c->send_mem != NULL) {
      memcpy(conn_io, c->send_mem + c->list_next, n); /* the page, from flash */
      c->list_next += (uint32_t)n;
    } else if (c->state == CONN_SEND_FILE && c->reader == NULL) {
      /* The policy's source: it must not change under the answer. */
      size_t len;
      uint32_t gen;
      const char *src = policy_running(&len, NULL, NULL, &gen);
      if (src == NULL || gen != c->send_gen || c->list_next + n > len) {
        log_line("http: the policy changed under its source; closing");
        conn_close(c);
        return;
      }
      memcpy(conn_io, src + c->list_next, n);
      c->list_next += (uint32_t)n;
    } else if (c->state == CONN_SEND_FILE) {
      long got = storage_read(c->reader, conn_io, n);
      if (conn_storage_wait(c, (int)(got < 0 ? got : STORAGE_OK))) {
        break; /* storage_ready() pumps again */
      }
      if (got <= 0) {
        log_line("http: %s: read failed at %llu bytes left; closing", c->name, (unsigned long long)c->send_left);
        conn_close(c);
        return;
      }
      n = (size_t)got;
    } else {
      wbuf_t b;
      bool finished;
      wb_init(&b, (char *)conn_io, n);
      c->list_next = conn_list_render(&b, c->list_next, &finished);
      if (b.len == 0 || b.len > c->send_left) {
        log_line("http: the listing changed while it was sent; closing");
        conn_close(c);
        return;
      }
      n = b.len;
    }
    if (!conn_write(c, conn_io, n, c->send_left > n)) {
      conn_close(c);
      return;
    }
    c->send_left -= n;
    c->last_ms = sys_now();
  }
  altcp_output(c->pcb);
  if (c->send_left == 0) {
    if (c->reader != NULL) {
      storage_read_close(c->reader);
      c->reader = NULL;
    }
    conn_after(c, c->keep_alive ? AFTER_NEXT : AFTER_LINGER);
  }
}
