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

/* A fresh medium: all zeros, like QEMU's memory at power-on. */
static void setup(void)
{
  memset(g_mem, 0, sizeof g_mem);
  flash_model_init(&g_flash, g_mem, sizeof g_mem);
  CHECK_EQ(storage_flash_init(&g_flash), 0);
}

/* Power cycle: the storage forgets its RAM and rebuilds from the medium. */
static void reboot(void)
{
  flash_power_restore(&g_flash);
  flash_model_init(&g_flash, g_mem, sizeof g_mem);
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

/* Writes len bytes of pattern seed in uneven pieces; returns the first failure or STORAGE_OK. */
static int put(const char *name, size_t len, unsigned seed, bool known, bool *replaced)
{
  static uint8_t buf[64 * 1024];
  fill(buf, len, seed);
  storage_upload_t *u;
  int rc = storage_open(name, known ? len : STORAGE_LEN_UNKNOWN, &u);
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
    rc = storage_write(u, buf + off, n);
    if (rc != STORAGE_OK) {
      storage_abort(u);
      return rc;
    }
    off += n;
  }
  return storage_commit(u, replaced);
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
  while ((n = storage_read(r, got + total, total + 777 <= sizeof got ? 777 : sizeof got - total)) > 0) {
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
  CHECK_EQ(storage_remove("a"), STORAGE_ENOENT);
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
  CHECK_EQ(put("block", 3952, 4, false, NULL), STORAGE_OK); /* exactly the head block's payload */
  CHECK(holds("block", 3952, 4));
  reboot();
  CHECK(holds("fw.bin", 50000, 1));
  CHECK(holds("empty", 0, 2));
  CHECK(holds("unit", 16, 3));
  CHECK(holds("block", 3952, 4));
  CHECK_EQ(g_flash.violations, 0);
}

static void test_bad_names(void)
{
  setup();
  storage_upload_t *u;
  char long_name[POSTERN_NAME_MAX + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  CHECK_EQ(storage_open("", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(storage_open(".hidden", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(storage_open("a/b", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(storage_open(long_name, 1, &u), STORAGE_EINVAL);
  long_name[POSTERN_NAME_MAX] = '\0';
  CHECK_EQ(put(long_name, 100, 1, true, NULL), STORAGE_OK);
  CHECK(holds(long_name, 100, 1));
}

static void test_replace_keeps_old_until_commit(void)
{
  setup();
  CHECK_EQ(put("cfg", 10000, 1, true, NULL), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(storage_open("cfg", 20000, &u), STORAGE_OK);
  uint8_t buf[20000];
  fill(buf, sizeof buf, 2);
  CHECK_EQ(storage_write(u, buf, 12345), STORAGE_OK);
  CHECK(holds("cfg", 10000, 1)); /* the old version until the commit */
  storage_upload_t *u2;
  CHECK_EQ(storage_open("cfg", 1, &u2), STORAGE_EBUSY); /* the name is being written */
  CHECK_EQ(storage_write(u, buf + 12345, sizeof buf - 12345), STORAGE_OK);
  bool replaced = false;
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_OK);
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
  CHECK_EQ(storage_open("keep", 9000, &u), STORAGE_OK);
  CHECK(storage_free() < free1); /* the announced length is reserved */
  uint8_t buf[9000];
  fill(buf, sizeof buf, 9);
  CHECK_EQ(storage_write(u, buf, sizeof buf), STORAGE_OK);
  storage_abort(u);
  storage_abort(NULL);
  CHECK_EQ(storage_free(), free1);
  CHECK(holds("keep", 5000, 1));
  CHECK_EQ(storage_open("gone", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, buf, sizeof buf), STORAGE_OK);
  storage_abort(u);
  CHECK(!storage_exists("gone", NULL));
  CHECK_EQ(storage_remove("keep"), STORAGE_OK);
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
  CHECK_EQ(storage_read(r, first, sizeof first), 1000);
  CHECK_EQ(put("doc", 8000, 2, true, NULL), STORAGE_OK);
  CHECK_EQ(storage_remove("doc"), STORAGE_OK);
  /* Fill the rest of the medium: the old version's blocks must not be reused while read. */
  while (put("filler", 4000, 7, true, NULL) == STORAGE_OK && storage_free() > 4000) {
    CHECK_EQ(storage_remove("filler"), STORAGE_OK);
    CHECK_EQ(put("filler2", 4000, 8, true, NULL), STORAGE_OK);
    CHECK_EQ(storage_remove("filler2"), STORAGE_OK);
    if (g_flash.erases > 3 * BLOCKS) {
      break;
    }
  }
  static uint8_t rest[30000];
  size_t got = 0;
  long n;
  while ((n = storage_read(r, rest + got, 1234)) > 0) {
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
    storage_remove(name);
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
  CHECK_EQ(storage_open("big", cap + 1, &u), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("big", cap, &u), STORAGE_OK); /* exactly fits */
  CHECK_EQ(storage_free(), 0);
  CHECK_EQ(storage_open("other", 1, &u2), STORAGE_ENOSPC); /* everything is promised */
  storage_abort(u);
  /* A chunked upload runs into the end of the medium. */
  CHECK_EQ(storage_open("chunked", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  static uint8_t buf[4096];
  fill(buf, sizeof buf, 5);
  uint64_t written = 0;
  int rc;
  while ((rc = storage_write(u, buf, sizeof buf)) == STORAGE_OK) {
    written += sizeof buf;
  }
  CHECK_EQ(rc, STORAGE_ENOSPC);
  CHECK(written <= cap && written + sizeof buf > cap);
  CHECK_EQ(storage_commit(u, NULL), STORAGE_OK);
  CHECK(storage_exists("chunked", NULL));
  /* A replacement needs room for both versions until its commit. */
  CHECK_EQ(storage_open("chunked", written, &u), STORAGE_ENOSPC);
  CHECK_EQ(storage_remove("chunked"), STORAGE_OK);
  CHECK_EQ(storage_free(), cap);
  CHECK_EQ(g_flash.violations, 0);
}

/* Data bytes of a head block and of a data block (storage_flash.c's SF_HEAD_PAYLOAD, SF_DATA_PAYLOAD). */
#define HEAD_PAYLOAD 3952u
#define DATA_PAYLOAD 4064u
/* Bytes of the largest file n blocks hold. */
#define BYTES_IN(n) ((uint64_t)((n) - 1) * DATA_PAYLOAD + HEAD_PAYLOAD)

/* Two known lengths that do not fit together: the second is refused at open, the first keeps its blocks. */
static void test_reservation_at_open(void)
{
  setup();
  CHECK_EQ(storage_capacity(), BYTES_IN(BLOCKS));
  storage_upload_t *a, *b;
  CHECK_EQ(storage_open("a", BYTES_IN(12), &a), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12)); /* before a single byte */
  CHECK_EQ(storage_open("b", BYTES_IN(BLOCKS - 12) + 1, &b), STORAGE_ENOSPC);
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  CHECK_EQ(storage_open("b", BYTES_IN(BLOCKS - 12), &b), STORAGE_OK);
  CHECK_EQ(storage_free(), 0);
  storage_abort(b); /* abort releases the reservation */
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  static uint8_t buf[BYTES_IN(12) + 1];
  fill(buf, sizeof buf, 4);
  CHECK_EQ(storage_write(a, buf, BYTES_IN(12) + 1), STORAGE_ENOSPC); /* past the announced length */
  CHECK_EQ(storage_write(a, buf, BYTES_IN(12)), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  CHECK_EQ(storage_commit(a, NULL), STORAGE_OK); /* commit: the file holds what was reserved */
  CHECK_EQ(storage_free(), BYTES_IN(BLOCKS - 12));
  CHECK(holds("a", BYTES_IN(12), 4));
  CHECK_EQ(storage_remove("a"), STORAGE_OK);
  CHECK_EQ(storage_free(), storage_capacity());
}

/* A write past the announced length is refused even when the block it would land in has room. */
static void test_write_past_announced_length(void)
{
  setup();
  storage_upload_t *u;
  CHECK_EQ(storage_open("ten", 10, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "0123456789x", 11), STORAGE_ENOSPC);
  CHECK_EQ(storage_write(u, "01234", 5), STORAGE_OK);
  CHECK_EQ(storage_write(u, "56789x", 6), STORAGE_ENOSPC); /* nothing of the call is kept */
  CHECK_EQ(storage_write(u, "56789", 5), STORAGE_OK);
  CHECK_EQ(storage_write(u, "x", 1), STORAGE_ENOSPC);
  CHECK_EQ(storage_commit(u, NULL), STORAGE_OK);
  storage_reader_t *r;
  uint64_t size = 0;
  char got[16];
  CHECK_EQ(storage_read_open("ten", &r, &size), STORAGE_OK);
  CHECK_EQ(size, 10);
  CHECK_EQ(storage_read(r, got, sizeof got), 10);
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
  CHECK_EQ(storage_open("chunked", STORAGE_LEN_UNKNOWN, &c), STORAGE_OK);
  CHECK_EQ(storage_free(), BYTES_IN(7)); /* only the head block */
  static uint8_t buf[HEAD_PAYLOAD + 5];
  fill(buf, sizeof buf, 6);
  CHECK_EQ(storage_write(c, buf, sizeof buf), STORAGE_OK); /* the head block full, 5 bytes staged */
  CHECK_EQ(storage_free(), BYTES_IN(6));
  CHECK_EQ(storage_open("known", BYTES_IN(6) + 1, &k), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("known", BYTES_IN(6), &k), STORAGE_OK);
  static uint8_t big[BYTES_IN(6)];
  fill(big, sizeof big, 7);
  CHECK_EQ(storage_write(k, big, sizeof big), STORAGE_OK);
  CHECK_EQ(storage_commit(k, NULL), STORAGE_OK);
  static uint8_t more[DATA_PAYLOAD];
  CHECK_EQ(storage_write(c, more, sizeof more), STORAGE_ENOSPC); /* a third block: the medium is full */
  CHECK_EQ(storage_commit(c, NULL), STORAGE_OK);                 /* but the staged bytes had their block */
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
  CHECK_EQ(storage_open("stream", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  static uint8_t buf[1000];
  fill(buf, sizeof buf, 3);
  int rc;
  uint64_t written = 0;
  while ((rc = storage_write(u, buf, sizeof buf)) == STORAGE_OK) {
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
    CHECK_EQ(storage_open(name, 10, &u[i]), STORAGE_OK);
  }
  CHECK_EQ(storage_open("one-more", 10, &u[POSTERN_MAX_CONNS]), STORAGE_EBUSY);
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    CHECK_EQ(storage_write(u[i], "0123456789", 10), STORAGE_OK);
    CHECK_EQ(storage_commit(u[i], NULL), STORAGE_OK);
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
  CHECK_EQ(storage_open("old", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  uint8_t buf[10000];
  fill(buf, sizeof buf, 2);
  CHECK_EQ(storage_write(u, buf, sizeof buf), STORAGE_OK);
  uint64_t free_before = storage_free();
  reboot(); /* the upload never committed */
  CHECK(holds("old", 7000, 1));
  CHECK(storage_free() > free_before);
  CHECK(strstr(g_log, "unfinished") != NULL);
  CHECK_EQ(put("new", 60000, 3, true, NULL), STORAGE_OK);
  CHECK(holds("new", 60000, 3));
  CHECK(holds("old", 7000, 1));
}

/*
 * Power cut during every erase and program of a replacement (and of a
 * removal): after the reboot the name holds the old version, or the new one
 * exactly when the commit record made it; never a mix, never nothing.
 */
static void test_power_cut_at_every_step(void)
{
  int cuts = 0, new_seen = 0, old_seen = 0;
  for (long k = 0; k < 100000; k++) {
    setup();
    /* Age the medium so that the replacement reuses dirty blocks (erases happen too). */
    for (int i = 0; i < 3; i++) {
      CHECK_EQ(put("churn", 20000, 90 + (unsigned)i, true, NULL), STORAGE_OK);
    }
    CHECK_EQ(storage_remove("churn"), STORAGE_OK);
    CHECK_EQ(put("fw", 9000, 1, true, NULL), STORAGE_OK);
    CHECK_EQ(put("other", 3000, 5, true, NULL), STORAGE_OK);
    flash_power_cut_after(&g_flash, k);
    int rc = put("fw", 23456, 2, k % 2 == 0, NULL);
    bool cut = g_flash.dead;
    reboot();
    CHECK(holds("other", 3000, 5));
    bool is_new = holds("fw", 23456, 2), is_old = holds("fw", 9000, 1);
    CHECK(is_new != is_old);
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
      break; /* the replacement ran to its end: every step has been cut once */
    }
    cuts++;
  }
  printf("power cut at %d steps of a replacement: old version %d times, new %d times\n", cuts, old_seen, new_seen);
  CHECK(cuts > 10);
  CHECK(old_seen > 0);
  CHECK(new_seen > 0);

  for (long k = 0; k < 10; k++) {
    setup();
    CHECK_EQ(put("fw", 9000, 1, true, NULL), STORAGE_OK);
    flash_power_cut_after(&g_flash, k);
    int rc = storage_remove("fw");
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
  memset(mem, 0x00, sizeof mem);
  flash_model_init(&f, mem, sizeof mem + 100);
  CHECK_EQ(f.blocks, 2);
  uint8_t unit[FLASH_PROG_UNIT];
  memset(unit, 0xA5, sizeof unit);
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), -1); /* 0 -> 1 needs an erase */
  CHECK_EQ(flash_erase(&f, 0), 0);
  CHECK(flash_is_erased(&f, 0, FLASH_BLOCK_SIZE));
  CHECK_EQ(flash_program(&f, 8, unit, sizeof unit), -1); /* misaligned */
  CHECK_EQ(flash_program(&f, 0, unit, 8), -1);            /* not a whole unit */
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), 0);
  memset(unit, 0x21, sizeof unit); /* 0xA5 & 0x21 == 0x21: only clears bits */
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), 0);
  CHECK_EQ(flash_read(&f, 0)[0], 0x21);
  memset(unit, 0xFF, sizeof unit);
  CHECK_EQ(flash_program(&f, 0, unit, sizeof unit), -1);
  CHECK_EQ(flash_erase(&f, 2), -1);
  CHECK_EQ(f.erases, 1);
  CHECK_EQ(f.programs, 2);
  CHECK_EQ(f.violations, 4);
  flash_power_cut_after(&f, 0);
  memset(unit, 0x00, sizeof unit);
  CHECK_EQ(flash_program(&f, 16, unit, sizeof unit), -1);
  CHECK_EQ(flash_read(&f, 16)[0], 0x00);                       /* first half made it */
  CHECK_EQ(flash_read(&f, 16)[FLASH_PROG_UNIT - 1], 0xFF);     /* second half did not */
  CHECK_EQ(flash_erase(&f, 1), -1);
  flash_power_restore(&f);
  CHECK_EQ(flash_erase(&f, 1), 0);
}

int main(void)
{
  RUN(test_flash_model_rules);
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
  RUN(test_power_cut_at_every_step);
  return UNIT_END();
}
