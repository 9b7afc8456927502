/* test_storage_flash.c: unit tests of the mps2-an385 flash storage on the flash model, power cuts at every step included. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../boards/mps2-an385/flash_model.h"
#include "../../boards/mps2-an385/storage_flash.h"
#include "platform.h"
#include "postern_opts.h"
#include "storage.h"
#include "unit.h"

#define BLOCKS 24
static uint8_t g_mem[BLOCKS * FLASH_BLOCK_SIZE];
static flash_model_t g_flash;

/* log.c's console: quiet unless a test fails (the last line is kept). */
static char g_log[512];
void platform_console_write(const char *s, size_t n)
{
  size_t k = n < sizeof g_log - 1 ? n : sizeof g_log - 1;
  memcpy(g_log, s, k);
  g_log[k] = '\0';
}

/*
 * Time. Every test runs once per timing profile (main()): the medium then
 * answers on a fake microsecond clock that only step() advances, so every
 * erase and program keeps the chip busy until the next steps.
 */
static const flash_timing_t *g_timing; /* NULL: instant */
static uint32_t g_now_us;
static uint32_t fake_now_us(void)
{
  return g_now_us;
}

/* The core's hook: counts the calls. */
static unsigned g_ready;
void storage_ready(void)
{
  g_ready++;
}

/* Medium commands (erases and programs) so far, and the most a single call started. */
static uint32_t ops(void)
{
  return g_flash.erases + g_flash.programs;
}
static uint32_t g_max_poll_ops, g_max_call_ops;
static long g_cut_at_step = -1; /* step() cuts the power mid-operation at this step */
static long g_steps;

/* One main-loop pass: time moves on to the end of the operation in flight (at least 1 us), then storage_poll(). */
static uint32_t step(void)
{
  uint32_t left = flash_busy_left_us(&g_flash);
  if (g_cut_at_step >= 0 && g_steps++ == g_cut_at_step && left > 0) {
    g_now_us += left / 2;
    flash_power_cut_now(&g_flash);
  }
  g_now_us += left > 0 ? left : 1;
  uint32_t before = ops();
  uint32_t wait = storage_poll();
  if (ops() - before > g_max_poll_ops) {
    g_max_poll_ops = ops() - before;
  }
  return wait;
}

/* Polls until the medium has nothing left to do. */
static void drain(void)
{
  for (int i = 0; i < 1000000 && (step() != STORAGE_POLL_IDLE || flash_status(&g_flash) == FLASH_BUSY); i++) {
  }
}

/* Notes the medium commands a storage call (not storage_poll) started since `before`. */
static void call_end(uint32_t before)
{
  if (ops() - before > g_max_call_ops) {
    g_max_call_ops = ops() - before;
  }
}

/* The calls, made again after polls while they answer STORAGE_PENDING, as the core does. */
static int op(const char *name, uint64_t len, storage_upload_t **u)
{
  int rc;
  for (;;) {
    uint32_t before = ops();
    rc = storage_open(name, len, u);
    call_end(before);
    if (rc != STORAGE_PENDING) {
      break;
    }
    step();
  }
  return rc;
}

/* Writes in pieces a TCP segment long at most. */
static int wr(storage_upload_t *u, const void *data, size_t len)
{
  const uint8_t *p = data;
  do {
    size_t n = len < 1000 ? len : 1000;
    int rc;
    for (;;) {
      uint32_t before = ops();
      rc = storage_write(u, p, n);
      call_end(before);
      if (rc != STORAGE_PENDING) {
        break;
      }
      step();
    }
    if (rc != STORAGE_OK) {
      return rc;
    }
    p += n;
    len -= n;
  } while (len > 0);
  return STORAGE_OK;
}

static int cm(storage_upload_t *u, bool *replaced)
{
  int rc;
  for (;;) {
    uint32_t before = ops();
    rc = storage_commit(u, replaced);
    call_end(before);
    if (rc != STORAGE_PENDING) {
      break;
    }
    step();
  }
  return rc;
}

static int rm(const char *name)
{
  int rc;
  for (;;) {
    uint32_t before = ops();
    rc = storage_remove(name);
    call_end(before);
    if (rc != STORAGE_PENDING) {
      break;
    }
    step();
  }
  return rc;
}

static long rd(storage_reader_t *r, void *buf, size_t len)
{
  long rc;
  for (;;) {
    uint32_t before = ops();
    rc = storage_read(r, buf, len);
    call_end(before);
    if (rc != STORAGE_PENDING) {
      break;
    }
    step();
  }
  return rc;
}

static void timing_on(void)
{
  flash_model_set_timing(&g_flash, g_timing, g_timing != NULL ? fake_now_us : NULL);
}

/* A fresh medium: all zeros, like QEMU's memory at power-on. */
static void setup(void)
{
  memset(g_mem, 0, sizeof g_mem);
  flash_model_init(&g_flash, g_mem, sizeof g_mem);
  timing_on();
  CHECK_EQ(storage_flash_init(&g_flash), 0);
}

/* Power cycle: the storage forgets its RAM and rebuilds from the medium. */
static void reboot(void)
{
  flash_power_restore(&g_flash);
  uint32_t refused = g_flash.refused;
  flash_model_init(&g_flash, g_mem, sizeof g_mem);
  timing_on();
  g_flash.refused = refused;
  CHECK_EQ(storage_flash_init(&g_flash), 0);
}

/* Deterministic content: byte i of pattern `seed`. */
static void fill(uint8_t *buf, size_t len, unsigned seed)
{
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(x >> 16);
  }
}

/* put() gives each upload a digest (its stand-in: a pattern of len and seed) unless this is false. */
static bool g_with_sha = true;

/* The digest put() gives len bytes of pattern seed. */
static void sha_of(uint8_t out[32], size_t len, unsigned seed)
{
  fill(out, 32, seed * 7919u + (unsigned)len);
}

/* True when `name` has the digest put() gave len bytes of pattern seed, through the index and a reader. */
static bool has_sha(const char *name, size_t len, unsigned seed)
{
  uint8_t want[32], got[32], via_reader[32];
  sha_of(want, len, seed);
  storage_reader_t *r;
  if (!storage_sha256(name, got) || storage_read_open(name, &r, NULL) != STORAGE_OK) {
    return false;
  }
  bool ok = storage_read_sha256(r, via_reader);
  storage_read_close(r);
  return ok && memcmp(got, want, 32) == 0 && memcmp(via_reader, want, 32) == 0;
}

/* Writes len bytes of pattern seed in uneven pieces; returns the first failure or STORAGE_OK. */
static int put(const char *name, size_t len, unsigned seed, bool known, bool *replaced)
{
  static uint8_t buf[64 * 1024];
  fill(buf, len, seed);
  storage_upload_t *u;
  int rc = op(name, known ? len : STORAGE_LEN_UNKNOWN, &u);
  if (rc != STORAGE_OK) {
    return rc;
  }
  static const size_t pieces[] = {1, 15, 17, 4000, 3, 1460, 16, 8192, 31};
  size_t off = 0;
  for (int i = 0; off < len; i++) {
    size_t n = pieces[i % 9];
    if (n > len - off) {
      n = len - off;
    }
    rc = wr(u, buf + off, n);
    if (rc != STORAGE_OK) {
      storage_abort(u);
      return rc;
    }
    off += n;
  }
  if (g_with_sha) {
    uint8_t sha[32];
    sha_of(sha, len, seed);
    storage_set_sha256(u, sha);
  }
  return cm(u, replaced);
}

/* True when `name` holds exactly len bytes of pattern seed. */
static bool holds(const char *name, size_t len, unsigned seed)
{
  static uint8_t want[64 * 1024], got[64 * 1024 + 1];
  storage_reader_t *r;
  uint64_t size = 0;
  if (storage_read_open(name, &r, &size) != STORAGE_OK) {
    return false;
  }
  fill(want, len, seed);
  size_t total = 0;
  long n;
  while ((n = rd(r, got + total, total + 777 <= sizeof got ? 777 : sizeof got - total)) > 0) {
    total += (size_t)n;
  }
  storage_read_close(r);
  return n == 0 && size == len && total == len && memcmp(want, got, len) == 0;
}

static void test_empty_medium(void)
{
  setup();
  CHECK(storage_capacity() > (BLOCKS - 1) * 4000u);
  CHECK_EQ(storage_free(), storage_capacity());
  CHECK(!storage_exists("a", NULL));
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("a", &r, NULL), STORAGE_ENOENT);
  CHECK_EQ(rm("a"), STORAGE_ENOENT);
  CHECK_EQ(g_flash.erases, 0);
}

static void test_write_commit_read(void)
{
  setup();
  bool replaced = true;
  CHECK_EQ(put("fw.bin", 50000, 1, true, &replaced), STORAGE_OK);
  CHECK(!replaced);
  uint64_t size = 0;
  CHECK(storage_exists("fw.bin", &size));
  CHECK_EQ(size, 50000);
  CHECK(holds("fw.bin", 50000, 1));
  CHECK_EQ(put("empty", 0, 2, true, NULL), STORAGE_OK);
  CHECK(holds("empty", 0, 2));
  CHECK_EQ(put("unit", 16, 3, false, NULL), STORAGE_OK);
  CHECK(holds("unit", 16, 3));
  CHECK_EQ(put("block", 3920, 4, false, NULL), STORAGE_OK); /* exactly the head block's payload */
  CHECK(holds("block", 3920, 4));
  reboot();
  CHECK(holds("fw.bin", 50000, 1));
  CHECK(holds("empty", 0, 2));
  CHECK(holds("unit", 16, 3));
  CHECK(holds("block", 3920, 4));
  CHECK_EQ(g_flash.violations, 0);
}

static void test_bad_names(void)
{
  setup();
  storage_upload_t *u;
  char long_name[POSTERN_NAME_MAX + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  CHECK_EQ(op("", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(op(".hidden", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(op("a/b", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(op(long_name, 1, &u), STORAGE_EINVAL);
  long_name[POSTERN_NAME_MAX] = '\0';
  CHECK_EQ(put(long_name, 100, 1, true, NULL), STORAGE_OK);
  CHECK(holds(long_name, 100, 1));
}

static void test_replace_keeps_old_until_commit(void)
{
  setup();
  CHECK_EQ(put("cfg", 10000, 1, true, NULL), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(op("cfg", 20000, &u), STORAGE_OK);
  uint8_t buf[20000];
  fill(buf, sizeof buf, 2);
  CHECK_EQ(wr(u, buf, 12345), STORAGE_OK);
  CHECK(holds("cfg", 10000, 1)); /* the old version until the commit */
  storage_upload_t *u2;
  CHECK_EQ(op("cfg", 1, &u2), STORAGE_EBUSY); /* the name is being written */
  CHECK_EQ(wr(u, buf + 12345, sizeof buf - 12345), STORAGE_OK);
  bool replaced = false;
  CHECK_EQ(cm(u, &replaced), STORAGE_OK);
  CHECK(replaced);
  CHECK(holds("cfg", 20000, 2));
  reboot();
  CHECK(holds("cfg", 20000, 2));
}

static void test_abort_leaves_nothing(void)
{
  setup();
  uint64_t free0 = storage_free();
  CHECK_EQ(put("keep", 5000, 1, true, NULL), STORAGE_OK);
  uint64_t free1 = storage_free();
  storage_upload_t *u;
  CHECK_EQ(op("keep", 9000, &u), STORAGE_OK);
  CHECK(storage_free() < free1); /* the announced length is reserved */
  uint8_t buf[9000];
  fill(buf, sizeof buf, 9);
  CHECK_EQ(wr(u, buf, sizeof buf), STORAGE_OK);
  storage_abort(u);
  storage_abort(NULL);
  CHECK_EQ(storage_free(), free1);
  CHECK(holds("keep", 5000, 1));
  CHECK_EQ(op("gone", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(wr(u, buf, sizeof buf), STORAGE_OK);
  storage_abort(u);
  CHECK(!storage_exists("gone", NULL));
  CHECK_EQ(rm("keep"), STORAGE_OK);
  CHECK_EQ(storage_free(), free0);
  reboot();
  CHECK(!storage_exists("keep", NULL));
  CHECK(!storage_exists("gone", NULL));
  CHECK_EQ(storage_free(), free0);
}

static void test_reader_survives_replace_and_remove(void)
{
  setup();
  CHECK_EQ(put("doc", 30000, 1, true, NULL), STORAGE_OK);
  storage_reader_t *r;
  uint64_t size;
  CHECK_EQ(storage_read_open("doc", &r, &size), STORAGE_OK);
  uint8_t first[1000], want[30000];
  fill(want, sizeof want, 1);
  CHECK_EQ(rd(r, first, sizeof first), 1000);
  CHECK_EQ(put("doc", 8000, 2, true, NULL), STORAGE_OK);
  CHECK_EQ(rm("doc"), STORAGE_OK);
  /* Fill the rest of the medium: the old version's blocks must not be reused while read. */
  while (put("filler", 4000, 7, true, NULL) == STORAGE_OK && storage_free() > 4000) {
    CHECK_EQ(rm("filler"), STORAGE_OK);
    CHECK_EQ(put("filler2", 4000, 8, true, NULL), STORAGE_OK);
    CHECK_EQ(rm("filler2"), STORAGE_OK);
    if (g_flash.erases > 3 * BLOCKS) {
      break;
    }
  }
  static uint8_t rest[30000];
  size_t got = 0;
  long n;
  while ((n = rd(r, rest + got, 1234)) > 0) {
    got += (size_t)n;
  }
  CHECK_EQ(n, 0);
  CHECK_EQ(got, 29000);
  CHECK(memcmp(first, want, 1000) == 0);
  CHECK(memcmp(rest, want + 1000, 29000) == 0);
  uint32_t held = storage_flash_free_blocks();
  storage_read_close(r);
  storage_read_close(NULL);
  CHECK(storage_flash_free_blocks() > held); /* the old version's blocks came back */
  CHECK(g_flash.erases > 0);
  CHECK_EQ(g_flash.violations, 0);
}

struct list_ctx {
  char names[8][80];
  uint64_t sizes[8];
  int n;
  bool remove_while_listing;
};

static int list_cb(void *ctx, const char *name, uint64_t size)
{
  struct list_ctx *c = ctx;
  if (c->n < 8) {
    snprintf(c->names[c->n], sizeof c->names[0], "%s", name);
    c->sizes[c->n] = size;
  }
  c->n++;
  if (c->remove_while_listing) {
    rm(name);
  }
  return 0;
}

static int stop_cb(void *ctx, const char *name, uint64_t size)
{
  (void)name;
  (void)size;
  ++*(int *)ctx;
  return 7;
}

static void test_list_sorted(void)
{
  setup();
  const char *names[] = {"zeta", "Alpha", "beta", "a", "b.bin", "_x"};
  for (int i = 0; i < 6; i++) {
    CHECK_EQ(put(names[i], (size_t)(100 * i), (unsigned)i, true, NULL), STORAGE_OK);
  }
  struct list_ctx c = {.n = 0};
  CHECK_EQ(storage_list(list_cb, &c), 0);
  CHECK_EQ(c.n, 6);
  const char *sorted[] = {"Alpha", "_x", "a", "b.bin", "beta", "zeta"};
  for (int i = 0; i < 6 && i < c.n; i++) {
    CHECK_STR(c.names[i], sorted[i]);
  }
  CHECK_EQ(c.sizes[5], 0); /* zeta is empty */
  int calls = 0;
  CHECK_EQ(storage_list(stop_cb, &calls), 7);
  CHECK_EQ(calls, 1);
  reboot();
  struct list_ctx d = {.n = 0, .remove_while_listing = true};
  CHECK_EQ(storage_list(list_cb, &d), 0);
  CHECK_EQ(d.n, 6);
  for (int i = 0; i < 6 && i < d.n; i++) {
    CHECK_STR(d.names[i], sorted[i]);
  }
  struct list_ctx e = {.n = 0};
  CHECK_EQ(storage_list(list_cb, &e), 0);
  CHECK_EQ(e.n, 0);
}

static void test_enospc(void)
{
  setup();
  uint64_t cap = storage_capacity();
  storage_upload_t *u, *u2;
  CHECK_EQ(op("big", cap + 1, &u), STORAGE_ENOSPC);
  CHECK_EQ(op("big", cap, &u), STORAGE_OK); /* exactly fits */
  CHECK_EQ(storage_free(), 0);
  CHECK_EQ(op("other", 1, &u2), STORAGE_ENOSPC); /* everything is promised */
  storage_abort(u);
  /* A chunked upload runs into the end of the medium. */
  CHECK_EQ(op("chunked", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  static uint8_t buf[4096];
  fill(buf, sizeof buf, 5);
  uint64_t written = 0;
  int rc;
  while ((rc = wr(u, buf, sizeof buf)) == STORAGE_OK) {
    written += sizeof buf;
  }
  CHECK_EQ(rc, STORAGE_ENOSPC);
  CHECK(written <= cap && written + sizeof buf > cap);
  CHECK_EQ(cm(u, NULL), STORAGE_OK);
  CHECK(storage_exists("chunked", NULL));
  /* A replacement needs room for both versions until its commit. */
  CHECK_EQ(op("chunked", written, &u), STORAGE_ENOSPC);
  CHECK_EQ(rm("chunked"), STORAGE_OK);
  CHECK_EQ(storage_free(), cap);
  CHECK_EQ(g_flash.violations, 0);
}

/* Data bytes of a head block and of a data block (storage_flash.c's SF_HEAD_PAYLOAD, SF_DATA_PAYLOAD). */
#define HEAD_PAYLOAD 3920u
#define DATA_PAYLOAD 4064u
/* Bytes of the largest file n blocks hold. */
#define BYTES_IN(n) ((uint64_t)((n)-1) * DATA_PAYLOAD + HEAD_PAYLOAD)

/* Two known lengths that do not fit together: the second is refused at open, the first keeps its blocks. */
static void test_reservation_at_open(void)
{
  setup();
  CHECK_EQ(storage_capacity(), BYTES_IN(BLOCKS));
  storage_upload_t *a, *b;
  CHECK_EQ(op("a", BYTES_IN(12), &a), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12)); /* before a single byte */
  CHECK_EQ(op("b", BYTES_IN(BLOCKS - 12) + 1, &b), STORAGE_ENOSPC);
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  CHECK_EQ(op("b", BYTES_IN(BLOCKS - 12), &b), STORAGE_OK);
  CHECK_EQ(storage_free(), 0);
  storage_abort(b); /* abort releases the reservation */
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  static uint8_t buf[BYTES_IN(12) + 1];
  fill(buf, sizeof buf, 4);
  CHECK_EQ(storage_write(a, buf, BYTES_IN(12) + 1), STORAGE_ENOSPC); /* past the announced length */
  CHECK_EQ(wr(a, buf, BYTES_IN(12)), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  CHECK_EQ(cm(a, NULL), STORAGE_OK); /* commit: the file holds what was reserved */
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  CHECK(holds("a", BYTES_IN(12), 4));
  CHECK_EQ(rm("a"), STORAGE_OK);
  CHECK_EQ(storage_free(), storage_capacity());
}

/* A write past the announced length is refused even when the block it would land in has room. */
static void test_write_past_announced_length(void)
{
  setup();
  storage_upload_t *u;
  CHECK_EQ(op("ten", 10, &u), STORAGE_OK);
  CHECK_EQ(wr(u, "0123456789x", 11), STORAGE_ENOSPC);
  CHECK_EQ(wr(u, "01234", 5), STORAGE_OK);
  CHECK_EQ(wr(u, "56789x", 6), STORAGE_ENOSPC); /* nothing of the call is kept */
  CHECK_EQ(wr(u, "56789", 5), STORAGE_OK);
  CHECK_EQ(wr(u, "x", 1), STORAGE_ENOSPC);
  CHECK_EQ(cm(u, NULL), STORAGE_OK);
  storage_reader_t *r;
  uint64_t size = 0;
  char got[16];
  CHECK_EQ(storage_read_open("ten", &r, &size), STORAGE_OK);
  CHECK_EQ(size, 10);
  CHECK_EQ(rd(r, got, sizeof got), 10);
  CHECK(memcmp(got, "0123456789", 10) == 0);
  storage_read_close(r);
}

/*
 * A chunked upload whose last bytes wait in RAM for a block not yet
 * allocated: that block is promised, so a reservation made meanwhile cannot
 * take it and the commit still finds it.
 */
static void test_chunked_staged_block_promised(void)
{
  setup();
  /* 16 of the 24 blocks hold files, so what follows fits the test's buffers. */
  CHECK_EQ(put("pad1", BYTES_IN(8), 1, true, NULL), STORAGE_OK);
  CHECK_EQ(put("pad2", BYTES_IN(8), 2, true, NULL), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(8));
  storage_upload_t *c, *k;
  CHECK_EQ(op("chunked", STORAGE_LEN_UNKNOWN, &c), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(7)); /* only the head block */
  static uint8_t buf[HEAD_PAYLOAD + 5];
  fill(buf, sizeof buf, 6);
  CHECK_EQ(wr(c, buf, sizeof buf), STORAGE_OK); /* the head block full, 5 bytes staged */
  CHECK_EQ(storage_free(), BYTES_IN(6));
  CHECK_EQ(op("known", BYTES_IN(6) + 1, &k), STORAGE_ENOSPC);
  CHECK_EQ(op("known", BYTES_IN(6), &k), STORAGE_OK);
  static uint8_t big[BYTES_IN(6)];
  fill(big, sizeof big, 7);
  CHECK_EQ(wr(k, big, sizeof big), STORAGE_OK);
  CHECK_EQ(cm(k, NULL), STORAGE_OK);
  static uint8_t more[DATA_PAYLOAD];
  CHECK_EQ(storage_write(c, more, sizeof more), STORAGE_ENOSPC); /* a third block: the medium is full */
  CHECK_EQ(cm(c, NULL), STORAGE_OK);                             /* but the staged bytes had their block */
  CHECK(holds("chunked", sizeof buf, 6));
  CHECK(holds("known", sizeof big, 7));
  CHECK_EQ(storage_flash_free_blocks(), 0);
  CHECK_EQ(g_flash.violations, 0);
}

/* A chunked upload that runs out of space: ENOSPC, and after the abort nothing of it stays. */
static void test_chunked_runs_out(void)
{
  setup();
  CHECK_EQ(put("keep", 5000, 1, true, NULL), STORAGE_OK);
  uint64_t before = storage_free();
  storage_upload_t *u;
  CHECK_EQ(op("stream", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  static uint8_t buf[1000];
  fill(buf, sizeof buf, 3);
  int rc;
  uint64_t written = 0;
  while ((rc = wr(u, buf, sizeof buf)) == STORAGE_OK) {
    written += sizeof buf;
  }
  CHECK_EQ(rc, STORAGE_ENOSPC);
  CHECK_EQ(written, before / 1000 * 1000);
  storage_abort(u);
  CHECK_EQ(storage_free(), before);
  CHECK(!storage_exists("stream", NULL));
  struct list_ctx c = {.n = 0};
  CHECK_EQ(storage_list(list_cb, &c), 0);
  CHECK_EQ(c.n, 1);
  CHECK_STR(c.names[0], "keep");
  reboot();
  CHECK_EQ(storage_free(), before);
}

static void test_slots(void)
{
  setup();
  storage_upload_t *u[POSTERN_MAX_CONNS + 1];
  char name[16];
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    snprintf(name, sizeof name, "f%d", i);
    CHECK_EQ(op(name, 10, &u[i]), STORAGE_OK);
  }
  CHECK_EQ(op("one-more", 10, &u[POSTERN_MAX_CONNS]), STORAGE_EBUSY);
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    CHECK_EQ(wr(u[i], "0123456789", 10), STORAGE_OK);
    CHECK_EQ(cm(u[i], NULL), STORAGE_OK);
  }
  storage_reader_t *r[POSTERN_MAX_CONNS + 1];
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    CHECK_EQ(storage_read_open("f0", &r[i], NULL), STORAGE_OK);
  }
  CHECK_EQ(storage_read_open("f0", &r[POSTERN_MAX_CONNS], NULL), STORAGE_EBUSY);
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    storage_read_close(r[i]);
  }
}

/* An unfinished upload is dropped at boot, and its blocks are reused. */
static void test_unfinished_upload_dropped_at_boot(void)
{
  setup();
  CHECK_EQ(put("old", 7000, 1, true, NULL), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(op("old", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  uint8_t buf[10000];
  fill(buf, sizeof buf, 2);
  CHECK_EQ(wr(u, buf, sizeof buf), STORAGE_OK);
  uint64_t free_before = storage_free();
  reboot(); /* the upload never committed */
  CHECK(holds("old", 7000, 1));
  CHECK(storage_free() > free_before);
  CHECK(strstr(g_log, "unfinished") != NULL);
  CHECK_EQ(put("new", 60000, 3, true, NULL), STORAGE_OK);
  CHECK(holds("new", 60000, 3));
  CHECK(holds("old", 7000, 1));
}

/* The digest is in the commit: it survives a reboot; an upload without the call has none. */
static void test_sha_survives_reboot(void)
{
  setup();
  CHECK_EQ(put("a", 10000, 1, true, NULL), STORAGE_OK);
  g_with_sha = false;
  CHECK_EQ(put("b", 100, 2, true, NULL), STORAGE_OK);
  g_with_sha = true;
  CHECK(has_sha("a", 10000, 1));
  uint8_t got[32];
  CHECK(storage_exists("b", NULL) && !storage_sha256("b", got));
  drain();
  reboot();
  CHECK(holds("a", 10000, 1) && has_sha("a", 10000, 1));
  CHECK(holds("b", 100, 2) && !storage_sha256("b", got));
  /* A replacement without the call drops the digest; with it, the new one. */
  g_with_sha = false;
  CHECK_EQ(put("a", 500, 3, false, NULL), STORAGE_OK);
  g_with_sha = true;
  CHECK(!storage_sha256("a", got));
  CHECK_EQ(put("b", 7000, 4, false, NULL), STORAGE_OK);
  drain();
  reboot();
  CHECK(holds("a", 500, 3) && !storage_sha256("a", got));
  CHECK(holds("b", 7000, 4) && has_sha("b", 7000, 4));
}

/* A reader keeps the digest of the version it opened. */
static void test_sha_reader_keeps_old(void)
{
  setup();
  CHECK_EQ(put("f", 5000, 1, true, NULL), STORAGE_OK);
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("f", &r, NULL), STORAGE_OK);
  CHECK_EQ(put("f", 6000, 2, true, NULL), STORAGE_OK);
  uint8_t got[32], want[32];
  sha_of(want, 5000, 1);
  CHECK(storage_read_sha256(r, got) && memcmp(got, want, 32) == 0);
  CHECK(has_sha("f", 6000, 2));
  CHECK_EQ(rm("f"), STORAGE_OK);
  CHECK(storage_read_sha256(r, got) && memcmp(got, want, 32) == 0);
  storage_read_close(r);
}

/* A seek follows the chain in RAM, to any offset up to the size, and reads from there. */
static void test_read_seek(void)
{
  setup();
  static uint8_t want[20000], got[20000];
  fill(want, sizeof want, 9);
  CHECK_EQ(put("s", sizeof want, 9, true, NULL), STORAGE_OK);
  static const uint64_t offsets[] = {0,
                                     1,
                                     HEAD_PAYLOAD - 1,
                                     HEAD_PAYLOAD,
                                     HEAD_PAYLOAD + 1,
                                     HEAD_PAYLOAD + DATA_PAYLOAD,
                                     12345,
                                     sizeof want - 1,
                                     sizeof want};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    storage_reader_t *r;
    CHECK_EQ(storage_read_open("s", &r, NULL), STORAGE_OK);
    uint32_t before = ops();
    CHECK_EQ(storage_read_seek(r, offsets[i]), STORAGE_OK);
    CHECK_EQ(ops(), before); /* no medium work */
    size_t total = 0;
    long n;
    while ((n = rd(r, got + total, 999)) > 0) {
      total += (size_t)n;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(total, sizeof want - offsets[i]);
    CHECK(memcmp(got, want + offsets[i], total) == 0);
    CHECK_EQ(storage_read_seek(r, sizeof want + 1), STORAGE_EINVAL);
    storage_read_close(r);
  }
}

/*
 * Power cut during every erase and program of a replacement (and of a
 * removal), the background work after it included: after the reboot the name
 * holds the old version, or the new one exactly when the commit record made
 * it; never a mix, never nothing. With timing, the operation is torn as it
 * starts (flash_power_cut_after) or halfway through its time (step()).
 */
static void power_cut_replacements(bool mid_operation)
{
  int cuts = 0, new_seen = 0, old_seen = 0;
  for (long k = 0; k < 100000; k++) {
    setup();
    /* Age the medium so that the replacement reuses dirty blocks (erases happen too). */
    for (int i = 0; i < 3; i++) {
      CHECK_EQ(put("churn", 20000, 90 + (unsigned)i, true, NULL), STORAGE_OK);
    }
    CHECK_EQ(rm("churn"), STORAGE_OK);
    CHECK_EQ(put("fw", 9000, 1, true, NULL), STORAGE_OK);
    CHECK_EQ(put("other", 3000, 5, true, NULL), STORAGE_OK);
    if (mid_operation) {
      g_steps = 0;
      g_cut_at_step = k;
    } else {
      flash_power_cut_after(&g_flash, k);
    }
    int rc = put("fw", 23456, 2, k % 2 == 0, NULL);
    drain(); /* the old version's dead mark and the erases ahead */
    bool cut = g_flash.dead;
    g_cut_at_step = -1;
    reboot();
    CHECK(holds("other", 3000, 5));
    bool is_new = holds("fw", 23456, 2), is_old = holds("fw", 9000, 1);
    CHECK(is_new != is_old);
    CHECK(is_new ? has_sha("fw", 23456, 2) : has_sha("fw", 9000, 1)); /* each version with its own digest */
    CHECK(has_sha("other", 3000, 5));
    if (rc == STORAGE_OK) {
      CHECK(is_new); /* a commit that reported success is durable */
    }
    new_seen += is_new;
    old_seen += is_old;
    /* The medium stays usable: write, replace, read back. */
    CHECK_EQ(put("fw", 30000, 3, true, NULL), STORAGE_OK);
    CHECK(holds("fw", 30000, 3));
    CHECK_EQ(g_flash.violations, 0);
    if (!cut) {
      if (!mid_operation || k >= g_steps) {
        break; /* the replacement ran to its end: every step has been cut once */
      }
      continue; /* a step with nothing in flight: no cut there */
    }
    cuts++;
  }
  printf("power cut %s at %d steps of a replacement (%s): old version %d times, new %d times\n",
         mid_operation ? "mid-operation" : "as an operation starts", cuts, g_timing ? g_timing->name : "instant",
         old_seen, new_seen);
  CHECK(cuts > 10);
  CHECK(old_seen > 0);
  CHECK(new_seen > 0);
}

static void test_power_cut_at_every_step(void)
{
  power_cut_replacements(false);
  if (g_timing != NULL) {
    power_cut_replacements(true);
  }
  for (long k = 0; k < 10; k++) {
    setup();
    CHECK_EQ(put("fw", 9000, 1, true, NULL), STORAGE_OK);
    flash_power_cut_after(&g_flash, k);
    int rc = rm("fw");
    bool cut = g_flash.dead;
    reboot();
    if (rc == STORAGE_OK && !cut) {
      CHECK(!storage_exists("fw", NULL));
      break;
    }
    CHECK(!storage_exists("fw", NULL) || holds("fw", 9000, 1)); /* gone, or whole */
  }
}

/* The model itself: granularity, 1 -> 0 only, counters. */
static void test_flash_model_rules(void)
{
  static uint8_t mem[2 * FLASH_BLOCK_SIZE];
  flash_model_t f;
  uint8_t got[FLASH_PROG_UNIT];
  memset(mem, 0x00, sizeof mem);
  flash_model_init(&f, mem, sizeof mem + 100);
  CHECK_EQ(f.blocks, 2);
  uint8_t unit[FLASH_PROG_UNIT];
  memset(unit, 0xA5, sizeof unit);
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), -1); /* 0 -> 1 needs an erase */
  CHECK_EQ(flash_erase(&f, 0), 0);
  CHECK(flash_is_erased(&f, 0, FLASH_BLOCK_SIZE));
  CHECK_EQ(flash_program(&f, 8, unit, sizeof unit), -1); /* misaligned */
  CHECK_EQ(flash_program(&f, 0, unit, 8), -1);           /* not a whole unit */
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), 0);
  memset(unit, 0x21, sizeof unit); /* 0xA5 & 0x21 == 0x21: only clears bits */
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), 0);
  CHECK_EQ(flash_read(&f, 0, got, sizeof got), 0);
  CHECK_EQ(got[0], 0x21);
  memset(unit, 0xFF, sizeof unit);
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), -1);
  CHECK_EQ(flash_erase(&f, 2), -1);
  static uint8_t two_pages[2 * FLASH_PAGE_SIZE];
  memset(two_pages, 0x00, sizeof two_pages);
  CHECK_EQ(flash_program(&f, FLASH_PAGE_SIZE, two_pages, 2 * FLASH_PAGE_SIZE), -1); /* longer than a page */
  CHECK_EQ(flash_program(&f, FLASH_PAGE_SIZE - 16, two_pages, 32), -1);             /* across a page boundary */
  CHECK_EQ(f.erases, 1);
  CHECK_EQ(f.programs, 2);
  CHECK_EQ(f.violations, 6);
  flash_power_cut_after(&f, 0);
  memset(unit, 0x00, sizeof unit);
  CHECK_EQ(flash_program(&f, 16, unit, sizeof unit), -1);
  CHECK_EQ(mem[16], 0x00);                       /* first half made it */
  CHECK_EQ(mem[16 + FLASH_PROG_UNIT - 1], 0xFF); /* second half did not */
  CHECK_EQ(flash_erase(&f, 1), -1);
  flash_power_restore(&f);
  CHECK_EQ(flash_erase(&f, 1), 0);
}

/* The model's time: busy until the operation's time has passed, commands and reads refused meanwhile, cuts tear. */
static void test_flash_model_timing(void)
{
  static uint8_t mem[2 * FLASH_BLOCK_SIZE];
  flash_model_t f;
  uint8_t got[FLASH_PROG_UNIT], unit[FLASH_PROG_UNIT];
  memset(mem, 0x00, sizeof mem);
  flash_model_init(&f, mem, sizeof mem);
  CHECK(flash_timing_find("instant") != NULL && flash_timing_find("bogus") == NULL);
  const flash_timing_t *nor = flash_timing_find("nor");
  CHECK(nor != NULL && nor->erase_us == 45000 && nor->unit_us == 50);
  CHECK_EQ(flash_timing_find("slow")->erase_us, 1000000);
  flash_model_set_timing(&f, nor, fake_now_us);
  g_now_us = 1000;
  CHECK_EQ(flash_erase(&f, 0), 0);
  CHECK_EQ(flash_status(&f), FLASH_BUSY);
  CHECK_EQ(flash_busy_left_us(&f), 45000);
  CHECK_EQ(mem[0], 0x00); /* the effect lands when the operation ends */
  CHECK_EQ(flash_read(&f, 0, got, sizeof got), -1);
  CHECK_EQ(flash_erase(&f, 1), -1);
  memset(unit, 0x00, sizeof unit);
  CHECK_EQ(flash_program(&f, 4096, unit, sizeof unit), -1);
  CHECK_EQ(f.refused, 3);
  g_now_us += 44999;
  CHECK_EQ(flash_status(&f), FLASH_BUSY);
  g_now_us += 1;
  CHECK_EQ(flash_status(&f), 0);
  CHECK(flash_is_erased(&f, 0, FLASH_BLOCK_SIZE));
  static uint8_t page[FLASH_PAGE_SIZE];
  memset(page, 0x5A, sizeof page);
  CHECK_EQ(flash_program(&f, 0, page, sizeof page), 0);
  CHECK_EQ(flash_busy_left_us(&f), FLASH_PAGE_SIZE / FLASH_PROG_UNIT * 50);
  g_now_us += 200;
  flash_power_cut_now(&f); /* torn: the first half of the page lands */
  CHECK_EQ(flash_status(&f), -1);
  CHECK_EQ(mem[FLASH_PAGE_SIZE / 2 - 1], 0x5A);
  CHECK_EQ(mem[FLASH_PAGE_SIZE / 2], 0xFF);
  flash_power_restore(&f);
  CHECK_EQ(flash_erase(&f, 0), 0);
  g_now_us += 10;
  flash_power_restore(&f); /* a power cycle mid-erase: the erase did not happen */
  CHECK_EQ(flash_status(&f), 0);
  CHECK_EQ(mem[0], 0x5A);
  CHECK_EQ(f.programs, 1);
  CHECK_EQ(f.erases, 2);
}

/* ---- The time contract ---------------------------------------------------------- */

/*
 * Writes without polling fill the shared queue (a timed medium takes one
 * command per call): then STORAGE_PENDING, nothing kept; after polls the
 * same bytes go in. An instant medium empties the queue as the write waits.
 */
static void test_write_pending_when_full(void)
{
  setup();
  static uint8_t buf[20000];
  fill(buf, sizeof buf, 11);
  storage_upload_t *u;
  CHECK_EQ(op("w", sizeof buf, &u), STORAGE_OK);
  size_t off = 0;
  int rc = STORAGE_OK;
  uint32_t before = ops();
  while (off + 1000 <= sizeof buf && (rc = storage_write(u, buf + off, 1000)) == STORAGE_OK) {
    off += 1000;
  }
  if (g_timing != NULL) {
    CHECK_EQ(rc, STORAGE_PENDING);
    CHECK(off > 0 && off <= STORAGE_FLASH_STAGE);
    CHECK(ops() - before <= 1); /* the write that found the queue full started the next command, no more */
    unsigned ready = g_ready;
    while (g_ready == ready) {
      step();
    }
  } else {
    CHECK_EQ(rc, STORAGE_OK);
    CHECK_EQ(off, sizeof buf);
  }
  CHECK_EQ(wr(u, buf + off, sizeof buf - off), STORAGE_OK); /* the same bytes again, then the rest */
  CHECK_EQ(cm(u, NULL), STORAGE_OK);
  CHECK(holds("w", sizeof buf, 11));
  reboot();
  CHECK(holds("w", sizeof buf, 11));
}

/* A commit answers STORAGE_PENDING until its record landed; nothing is visible until then, and the handle stays the caller's. */
static void test_commit_pending(void)
{
  setup();
  CHECK_EQ(put("c", 5000, 1, true, NULL), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(op("c", 3000, &u), STORAGE_OK);
  static uint8_t buf[3000];
  fill(buf, sizeof buf, 2);
  CHECK_EQ(wr(u, buf, sizeof buf), STORAGE_OK);
  bool replaced = false;
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_PENDING);
  CHECK(!replaced);
  int n = 0;
  while (storage_commit(u, &replaced) == STORAGE_PENDING) {
    uint64_t size = 0;
    CHECK(storage_exists("c", &size) && size == 5000);
    step();
    n++;
  }
  CHECK(replaced);
  CHECK(n > 0);
  CHECK(holds("c", 3000, 2));
  drain();
  reboot();
  CHECK(holds("c", 3000, 2));
}

/* Reads pend while the chip erases (a block freed by a removal, erased ahead), and go through once it is done. */
static void test_read_pending_during_erase(void)
{
  setup();
  CHECK_EQ(put("keep", 6000, 3, true, NULL), STORAGE_OK);
  CHECK_EQ(put("gone", 9000, 4, true, NULL), STORAGE_OK);
  CHECK_EQ(rm("gone"), STORAGE_OK);
  CHECK(storage_flash_dirty_blocks() > 0);
  storage_poll(); /* starts an erase ahead: no reader is open */
  storage_reader_t *r;
  uint64_t size;
  CHECK_EQ(storage_read_open("keep", &r, &size), STORAGE_OK); /* RAM only: never pends */
  uint8_t got[1000], want[6000];
  fill(want, sizeof want, 3);
  if (g_timing != NULL) {
    CHECK_EQ(flash_status(&g_flash), FLASH_BUSY);
    CHECK_EQ(storage_read(r, got, sizeof got), STORAGE_PENDING);
    g_now_us += flash_busy_left_us(&g_flash) / 2;
    CHECK_EQ(storage_read(r, got, sizeof got), STORAGE_PENDING);
    unsigned ready = g_ready;
    step();
    CHECK(g_ready > ready);
  }
  CHECK_EQ(storage_read(r, got, sizeof got), (long)sizeof got);
  CHECK(memcmp(got, want, sizeof got) == 0);
  drain(); /* the erase in flight ends, and no other starts while a reader is open */
  CHECK(g_timing == NULL || storage_flash_dirty_blocks() > 0); /* (an instant medium erased them all at once) */
  storage_read_close(r);
  drain();
  CHECK_EQ(storage_flash_dirty_blocks(), 0);
  CHECK_EQ(g_flash.refused, 0);
}

/* An upload aborted while its writes are queued: freed at once, its queued work skipped, nothing of it kept. */
static void test_abort_pending_upload(void)
{
  setup();
  CHECK_EQ(put("old", 4000, 1, true, NULL), STORAGE_OK);
  drain();
  uint64_t before = storage_free();
  static uint8_t buf[12000];
  fill(buf, sizeof buf, 5);
  for (int when = 0; when < 3; when++) {
    storage_upload_t *u;
    CHECK_EQ(op("old", sizeof buf, &u), STORAGE_OK);
    size_t off = 0;
    for (int i = 0; i < 4 * when; i++) {
      step(); /* let the queue reach the medium for a while */
    }
    while (off < sizeof buf && storage_write(u, buf + off, 1000) == STORAGE_OK) {
      off += 1000;
    }
    if (when == 2) {
      CHECK_EQ(storage_commit(u, NULL), STORAGE_PENDING);
    }
    storage_abort(u);
    CHECK_EQ(storage_free(), before);
    drain();
    CHECK(holds("old", 4000, 1));
    CHECK_EQ(storage_free(), before);
  }
  CHECK_EQ(put("new", 9000, 6, true, NULL), STORAGE_OK);
  reboot();
  CHECK(holds("old", 4000, 1));
  CHECK(holds("new", 9000, 6));
  CHECK_EQ(storage_free(), before - 3 * DATA_PAYLOAD); /* the aborted uploads left nothing taken: only new's 3 blocks */
  CHECK_EQ(g_flash.violations, 0);
}

/* Erases ahead: all free blocks while no upload is open; while one is, only as many as it may still need. */
static void test_erase_ahead(void)
{
  setup(); /* all zeros: every block waits for an erase */
  CHECK_EQ(storage_flash_dirty_blocks(), BLOCKS);
  storage_upload_t *u;
  CHECK_EQ(op("up", BYTES_IN(3), &u), STORAGE_OK);
  drain();
  uint32_t erased = storage_flash_free_blocks() - storage_flash_dirty_blocks();
  CHECK_EQ(erased + 1, 3 + 1); /* the head block taken, the two others and a spare erased ahead */
  CHECK_EQ(storage_flash_dirty_blocks(), BLOCKS - 4);
  static uint8_t buf[BYTES_IN(3)];
  fill(buf, sizeof buf, 8);
  CHECK_EQ(wr(u, buf, sizeof buf), STORAGE_OK);
  CHECK_EQ(cm(u, NULL), STORAGE_OK);
  drain(); /* no upload open: the rest */
  CHECK_EQ(storage_flash_dirty_blocks(), 0);
  CHECK(holds("up", sizeof buf, 8));
}

/* A removal answers STORAGE_PENDING until its dead mark landed: the file is still there until then. */
static void test_remove_pending(void)
{
  setup();
  CHECK_EQ(put("r", 7000, 7, true, NULL), STORAGE_OK);
  drain();
  uint64_t before = storage_free();
  CHECK_EQ(storage_remove("r"), STORAGE_PENDING);
  CHECK(storage_exists("r", NULL));
  CHECK(holds("r", 7000, 7));
  CHECK_EQ(storage_free(), before);
  unsigned ready = g_ready;
  while (storage_remove("r") == STORAGE_PENDING) {
    step();
  }
  CHECK(g_ready > ready);
  CHECK(!storage_exists("r", NULL));
  CHECK(storage_free() > before);
  CHECK_EQ(storage_remove("r"), STORAGE_ENOENT);
  reboot();
  CHECK(!storage_exists("r", NULL));
}

/*
 * Bounded work: a call starts at most one medium command on a timed medium
 * (a page long at most), and on an instant one at most what the queue holds.
 */
static void test_bounded_work(void)
{
  setup();
  CHECK_EQ(put("a", 40000, 1, true, NULL), STORAGE_OK);
  CHECK_EQ(put("b", 20000, 2, false, NULL), STORAGE_OK);
  CHECK_EQ(put("a", 20000, 3, true, NULL), STORAGE_OK);
  CHECK(holds("a", 20000, 3));
  CHECK_EQ(rm("b"), STORAGE_OK);
  drain();
  CHECK(g_max_poll_ops <= (g_timing != NULL ? 1u : STORAGE_FLASH_STAGE / FLASH_PAGE_SIZE + 8));
  CHECK(ops() > 80000 / FLASH_PAGE_SIZE); /* programs are at most a page each */
}

/* Every test, on one timing profile. */
static void run_all(const char *profile)
{
  g_timing = strcmp(profile, "instant") == 0 ? NULL : flash_timing_find(profile);
  g_max_poll_ops = g_max_call_ops = 0;
  printf("timing %s\n", profile);
  RUN(test_empty_medium);
  RUN(test_write_commit_read);
  RUN(test_bad_names);
  RUN(test_replace_keeps_old_until_commit);
  RUN(test_abort_leaves_nothing);
  RUN(test_reader_survives_replace_and_remove);
  RUN(test_list_sorted);
  RUN(test_enospc);
  RUN(test_reservation_at_open);
  RUN(test_write_past_announced_length);
  RUN(test_chunked_staged_block_promised);
  RUN(test_chunked_runs_out);
  RUN(test_slots);
  RUN(test_unfinished_upload_dropped_at_boot);
  RUN(test_write_pending_when_full);
  RUN(test_commit_pending);
  RUN(test_read_pending_during_erase);
  RUN(test_abort_pending_upload);
  RUN(test_remove_pending);
  RUN(test_erase_ahead);
  RUN(test_bounded_work);
  RUN(test_power_cut_at_every_step);
  RUN(test_sha_survives_reboot);
  RUN(test_sha_reader_keeps_old);
  RUN(test_read_seek);
  /* Bounded work: one command per call while the medium takes time; the queue's worth on an instant one. */
  uint32_t bound = g_timing != NULL ? 1u : STORAGE_FLASH_STAGE / FLASH_PAGE_SIZE + 8;
  CHECK(g_max_call_ops <= bound);
  CHECK(g_max_poll_ops <= bound);
  printf("most medium commands in one call %u, in one poll %u\n", (unsigned)g_max_call_ops, (unsigned)g_max_poll_ops);
  CHECK_EQ(g_flash.refused, 0); /* the driver never commands or reads a busy chip */
}

int main(void)
{
  RUN(test_flash_model_rules);
  RUN(test_flash_model_timing);
  run_all("instant");
  run_all("nor");
  run_all("slow");
  return UNIT_END();
}
