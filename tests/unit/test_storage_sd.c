/* test_storage_sd.c: unit tests of the lm3s6965evb SD store on a RAM card, a power cut at every sector write included. */
#include <stdlib.h>

#include "blockdev.h"
#include "storage.h"
#include "storage_sd.h"
#include "unit.h"

#define SECTORS 4096u /* a 2 MiB card: 480 clusters of 4 KiB */

static uint8_t g_card[SECTORS * BLOCKDEV_SECTOR];
static blockdev_t g_bd;
static bool g_op_write;
static uint32_t g_op_lba, g_op_n, g_op_i, g_op_wait;
static uint8_t *g_op_buf;
static size_t g_op_stride;
static bool g_op_busy;
static long g_writes;         /* sectors written since setup */
static long g_cut_at = -1;    /* the power fails before this sector write lands */
static bool g_dead;           /* the power is off: nothing reaches the card */
static uint32_t g_busy_polls; /* polls each sector takes (the card's own delay) */
static unsigned g_ready;

void platform_console_write(const char *s, size_t n)
{
  (void)s;
  (void)n;
}

void storage_ready(void)
{
  g_ready++;
}

static int ram_start(bool write, uint32_t lba, uint32_t n, void *buf, size_t stride)
{
  if (g_dead || g_op_busy || lba + n > SECTORS) {
    return -1;
  }
  g_op_write = write;
  g_op_lba = lba;
  g_op_n = n;
  g_op_i = 0;
  g_op_buf = buf;
  g_op_stride = stride;
  g_op_wait = g_busy_polls;
  g_op_busy = true;
  return 0;
}

/* One sector per poll after the card's delay; a write is whole or not at all. */
static int ram_poll(void)
{
  if (g_dead) {
    g_op_busy = false;
    return -1;
  }
  if (g_op_wait > 0) {
    g_op_wait--;
    return BLOCKDEV_BUSY;
  }
  uint8_t *sector = g_card + (size_t)(g_op_lba + g_op_i) * BLOCKDEV_SECTOR;
  uint8_t *mem = g_op_buf + g_op_i * g_op_stride;
  if (g_op_write) {
    if (g_cut_at >= 0 && g_writes == g_cut_at) {
      g_dead = true;
      g_op_busy = false;
      return -1;
    }
    memcpy(sector, mem, BLOCKDEV_SECTOR);
    g_writes++;
  } else {
    memcpy(mem, sector, BLOCKDEV_SECTOR);
  }
  g_op_wait = g_busy_polls;
  if (++g_op_i == g_op_n) {
    g_op_busy = false;
    return 0;
  }
  return BLOCKDEV_BUSY;
}

static void reboot(void)
{
  g_dead = false;
  g_cut_at = -1;
  g_op_busy = false;
  g_bd.sectors = SECTORS;
  g_bd.start = ram_start;
  g_bd.poll = ram_poll;
  CHECK_EQ(storage_sd_init(&g_bd), STORAGE_SD_READY);
}

static void setup(void)
{
  memset(g_card, 0, sizeof g_card);
  g_writes = 0;
  g_busy_polls = 0;
  reboot();
}

static void drain(void)
{
  for (int i = 0; i < 1000000 && storage_poll() != STORAGE_POLL_IDLE; i++) {
  }
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
  for (size_t i = 0; i < len; i++) {
    buf[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
  }
}

/* Retries a call that answered STORAGE_PENDING after polling, as the core does; gives up when the power is off. */
#define RETRY(expr)                                        \
  ({                                                       \
    int rc_;                                               \
    int tries_ = 0;                                        \
    while ((rc_ = (expr)) == STORAGE_PENDING && !g_dead) { \
      storage_poll();                                      \
      if (++tries_ > 1000000) {                            \
        break;                                             \
      }                                                    \
    }                                                      \
    rc_;                                                   \
  })

/* Uploads len bytes of pattern `seed` in 1460-byte writes; returns the commit's result. */
static int put(const char *name, size_t len, unsigned seed, bool known)
{
  static uint8_t data[300000];
  fill(data, len, seed);
  storage_upload_t *u = NULL;
  int rc = storage_open(name, known ? len : STORAGE_LEN_UNKNOWN, &u);
  if (rc != STORAGE_OK) {
    return rc;
  }
  uint8_t sha[32];
  memset(sha, (int)seed, sizeof sha);
  storage_set_sha256(u, sha);
  for (size_t off = 0; off < len;) {
    size_t n = len - off < 1460 ? len - off : 1460;
    rc = RETRY(storage_write(u, data + off, n));
    if (rc != STORAGE_OK) {
      storage_abort(u);
      return rc;
    }
    off += n;
  }
  bool replaced;
  return RETRY(storage_commit(u, &replaced));
}

/* True when `name` reads back as len bytes of pattern `seed` with its digest. */
static bool holds(const char *name, size_t len, unsigned seed)
{
  static uint8_t want[300000], got[300000];
  fill(want, len, seed);
  storage_reader_t *r;
  uint64_t size;
  if (storage_read_open(name, &r, &size) != STORAGE_OK) {
    return false;
  }
  bool ok = size == len;
  size_t at = 0;
  while (ok) {
    long n = RETRY((int)storage_read(r, got + at, 1000));
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    at += (size_t)n;
    ok = at <= len;
  }
  uint8_t sha[32], want_sha[32];
  memset(want_sha, (int)seed, sizeof want_sha);
  ok = ok && at == len && memcmp(want, got, len) == 0 && storage_read_sha256(r, sha) && memcmp(sha, want_sha, 32) == 0;
  storage_read_close(r);
  return ok;
}

static int count_cb(void *ctx, const char *name, uint64_t size)
{
  (void)name;
  (void)size;
  (*(int *)ctx)++;
  return 0;
}

static int count_files(void)
{
  int n = 0;
  storage_list(count_cb, &n);
  return n;
}

static uint64_t clusters_of(uint64_t bytes)
{
  uint64_t cb = storage_sd_cluster_bytes();
  return (bytes + cb - 1) / cb * cb;
}

static void test_blank_card(void)
{
  setup();
  CHECK_EQ(storage_sd_cluster_bytes(), 4096);
  CHECK_EQ(storage_capacity(), (uint64_t)(SECTORS - STORAGE_SD_LBA_DATA) / 8 * 4096);
  CHECK_EQ(storage_free(), storage_capacity());
  CHECK_EQ(count_files(), 0);
  CHECK(!storage_exists("a", NULL));
  CHECK(memcmp(g_card, "PSTNSD01", 8) == 0);
}

static void test_write_commit_read_reboot(void)
{
  setup();
  g_busy_polls = 3;
  CHECK_EQ(put("fw.bin", 100000, 1, true), STORAGE_OK);
  CHECK(holds("fw.bin", 100000, 1));
  CHECK_EQ(put("log.txt", 5000, 2, false), STORAGE_OK);
  uint64_t size;
  CHECK(storage_exists("log.txt", &size));
  CHECK_EQ(size, 5000);
  uint8_t sha[32];
  CHECK(storage_sha256("fw.bin", sha));
  CHECK_EQ(sha[0], 1);
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(100000) - clusters_of(5000));
  reboot();
  CHECK_EQ(count_files(), 2);
  CHECK(holds("fw.bin", 100000, 1));
  CHECK(holds("log.txt", 5000, 2));
  CHECK(storage_sha256("log.txt", sha) && sha[0] == 2);
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(100000) - clusters_of(5000));
  CHECK_EQ(put("empty", 0, 3, true), STORAGE_OK);
  CHECK(holds("empty", 0, 3));
}

static void test_replace_and_reader(void)
{
  setup();
  CHECK_EQ(put("a", 20000, 1, true), STORAGE_OK);
  storage_reader_t *r;
  uint64_t size;
  CHECK_EQ(storage_read_open("a", &r, &size), STORAGE_OK);
  CHECK_EQ(put("a", 30000, 2, true), STORAGE_OK);
  CHECK(holds("a", 30000, 2));
  /* The reader still has version 1, whose clusters stay taken until it closes. */
  uint8_t buf[1000], want[1000];
  fill(want, sizeof want, 1);
  CHECK_EQ(RETRY((int)storage_read(r, buf, 500)), 500);
  CHECK(memcmp(buf, want, 500) == 0);
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(20000) - clusters_of(30000));
  storage_read_close(r);
  drain();
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(30000));
  reboot();
  CHECK_EQ(count_files(), 1);
  CHECK(holds("a", 30000, 2));
}

static void test_abort_and_unfinished(void)
{
  setup();
  storage_upload_t *u;
  CHECK_EQ(storage_open("x", 50000, &u), STORAGE_OK);
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(50000));
  uint8_t data[1460];
  fill(data, sizeof data, 9);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(RETRY(storage_write(u, data, sizeof data)), STORAGE_OK);
  }
  storage_abort(u);
  drain();
  CHECK_EQ(storage_free(), storage_capacity());
  CHECK(!storage_exists("x", NULL));
  /* An upload the power cut short leaves nothing at boot. */
  CHECK_EQ(storage_open("y", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(RETRY(storage_write(u, data, sizeof data)), STORAGE_OK);
  }
  drain();
  reboot();
  CHECK_EQ(count_files(), 0);
  CHECK_EQ(storage_free(), storage_capacity());
}

static void test_remove(void)
{
  setup();
  CHECK_EQ(put("a", 9000, 1, true), STORAGE_OK);
  CHECK_EQ(put("b", 9000, 2, true), STORAGE_OK);
  CHECK_EQ(RETRY(storage_remove("a")), STORAGE_OK);
  CHECK_EQ(storage_remove("a"), STORAGE_ENOENT);
  CHECK(!storage_exists("a", NULL));
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(9000));
  reboot();
  CHECK_EQ(count_files(), 1);
  CHECK(holds("b", 9000, 2));
}

static void test_limits(void)
{
  setup();
  storage_upload_t *u;
  CHECK_EQ(storage_open("big", storage_capacity() + 1, &u), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("", 1, &u), STORAGE_EINVAL);
  CHECK_EQ(storage_open("a/b", 1, &u), STORAGE_EINVAL);
  /* Fill the card: 7 files of 62 clusters, then the rest, then nothing fits. */
  for (int i = 0; i < 7; i++) {
    char n[4] = {'p', (char)('0' + i), 0};
    CHECK_EQ(put(n, 250000, (unsigned)i, true), STORAGE_OK);
  }
  CHECK_EQ(put("rest", (size_t)storage_free(), 9, false), STORAGE_OK);
  CHECK_EQ(storage_free(), 0);
  CHECK_EQ(storage_open("more", 1, &u), STORAGE_ENOSPC);
  CHECK_EQ(put("more", 10, 1, false), STORAGE_ENOSPC); /* chunked: its first write finds no cluster */
  reboot();
  CHECK_EQ(storage_free(), 0);
  CHECK(holds("p3", 250000, 3));
  setup();
  char name[16];
  int ok = 0;
  for (int i = 0; i < STORAGE_SD_MAX_FILES + 2; i++) {
    snprintf(name, sizeof name, "f%d", i);
    ok += put(name, 10, (unsigned)i, true) == STORAGE_OK;
  }
  CHECK_EQ(ok, STORAGE_SD_MAX_FILES);
  CHECK_EQ(count_files(), STORAGE_SD_MAX_FILES);
}

static void test_unusable_cards(void)
{
  CHECK_EQ(storage_sd_init(NULL), STORAGE_SD_NO_CARD);
  storage_upload_t *u;
  CHECK_EQ(storage_open("a", 1, &u), STORAGE_ENOSPC);
  CHECK_EQ(storage_capacity(), 0);
  blockdev_t small = {STORAGE_SD_MIN_SECTORS - 1u, ram_start, ram_poll};
  CHECK_EQ(storage_sd_init(&small), STORAGE_SD_TOO_SMALL);
  memset(g_card, 0x5A, BLOCKDEV_SECTOR); /* a card formatted for something else */
  g_dead = false;
  g_bd.sectors = SECTORS;
  CHECK_EQ(storage_sd_init(&g_bd), STORAGE_SD_FOREIGN);
  CHECK_EQ(g_card[0], 0x5A);
  CHECK_EQ(storage_open("a", 1, &u), STORAGE_ENOSPC);
}

/* Replaces v1 (known length or chunked) by v2 with the power failing before sector write `cut`. */
static void power_cut_once(long cut, bool known, bool *done)
{
  setup();
  CHECK_EQ(put("fw", 60000, 1, true), STORAGE_OK);
  CHECK_EQ(put("other", 3000, 7, true), STORAGE_OK);
  long base = g_writes;
  g_cut_at = base + cut;
  int rc = put("fw", 70000, 2, known);
  bool committed = rc == STORAGE_OK;
  if (!g_dead) {
    drain(); /* the old record's zeroing */
  }
  *done = !g_dead;
  reboot();
  CHECK_EQ(count_files(), 2);
  CHECK(holds("other", 3000, 7));
  uint64_t size = 0;
  CHECK(storage_exists("fw", &size));
  bool v2 = size == 70000;
  CHECK(v2 ? holds("fw", 70000, 2) : holds("fw", 60000, 1));
  if (committed) {
    CHECK(v2);
  }
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(size) - clusters_of(3000));
  /* The card still works: another replacement and a reboot. */
  CHECK_EQ(put("fw", 1000, 3, true), STORAGE_OK);
  drain();
  reboot();
  CHECK(holds("fw", 1000, 3));
  CHECK_EQ(storage_free(), storage_capacity() - clusters_of(1000) - clusters_of(3000));
}

static void test_power_cut_at_every_write(void)
{
  for (int k = 0; k < 2; k++) {
    bool done = false;
    long cut = 0;
    for (; !done && cut < 1000; cut++) {
      int before = unit_failed_checks;
      power_cut_once(cut, k == 0, &done);
      if (unit_failed_checks != before) {
        fprintf(stderr, "power cut before write %ld (%s)\n", cut, k == 0 ? "known length" : "chunked");
        return;
      }
    }
    CHECK(done);
    CHECK(cut > 137); /* 70000 bytes are 137 sectors, then the record and the zeroing */
  }
}

int main(void)
{
  RUN(test_blank_card);
  RUN(test_write_commit_read_reboot);
  RUN(test_replace_and_reader);
  RUN(test_abort_and_unfinished);
  RUN(test_remove);
  RUN(test_limits);
  RUN(test_unusable_cards);
  RUN(test_power_cut_at_every_write);
  return UNIT_END();
}
