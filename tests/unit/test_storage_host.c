/* test_storage_host.c: unit tests of the host storage backend, each in a fresh temporary directory. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform.h"
#include "postern_opts.h"
#include "storage.h"
#include "storage_host.h"
#include "unit.h"

/* The last log line, kept so that tests can look at what init reported. */
static char g_log[512];

/* log.c's console: stdout, plus a copy of the line in g_log. */
void platform_console_write(const char *s, size_t n)
{
  fwrite(s, 1, n, stdout);
  size_t k = n < sizeof g_log - 1 ? n : sizeof g_log - 1;
  memcpy(g_log, s, k);
  g_log[k] = '\0';
}

static char g_dir[64];

/* The medium's clock in the timing tests: time passes only when a test says so. */
static uint32_t g_now;

static uint32_t test_clock(void)
{
  return g_now;
}

/* storage_ready() calls, and what the core would do in it (NULL: nothing). */
static int g_ready;
static void (*g_on_ready)(void);

/** The core's hook, here a counter. */
void storage_ready(void)
{
  g_ready++;
  if (g_on_ready != NULL) {
    g_on_ready();
  }
}

/* Path of `name` inside the test directory (one static buffer). */
static const char *path_of(const char *name)
{
  static char p[256];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  return p;
}

/* Creates a fresh directory (not yet initialized). */
static void make_dir(void)
{
  snprintf(g_dir, sizeof g_dir, "/tmp/postern-storage-XXXXXX");
  if (mkdtemp(g_dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
}

/* Creates a fresh directory and serves it with `capacity` bytes. */
static void setup(uint64_t capacity)
{
  make_dir();
  CHECK_EQ(storage_host_init(g_dir, capacity), 0);
}

/* Removes the test directory, one level of subdirectories included; the medium goes back to synchronous. */
static void teardown(void)
{
  storage_host_timing(0, NULL);
  g_on_ready = NULL;
  DIR *d = opendir(g_dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && unlinkat(dirfd(d), e->d_name, 0) != 0) {
        unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
      }
    }
    closedir(d);
  }
  rmdir(g_dir);
}

/* Writes a file outside the backend, as a crash or another tool would. */
static void plant(const char *name, const char *data)
{
  FILE *f = fopen(path_of(name), "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fputs(data, f);
    fclose(f);
  }
}

/* True when the directory holds an entry starting with `prefix`. */
static bool dir_has_prefix(const char *prefix)
{
  bool found = false;
  DIR *d = opendir(g_dir);
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    found = found || strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  }
  if (d != NULL) {
    closedir(d);
  }
  return found;
}

/* Uploads `data` under `name` in one write; returns the first failing result or 0. */
static int put(const char *name, const char *data, bool *replaced)
{
  storage_upload_t *u;
  size_t n = strlen(data);
  int rc = storage_open(name, n, &u);
  if (rc != STORAGE_OK) {
    return rc;
  }
  rc = storage_write(u, data, n);
  if (rc != STORAGE_OK) {
    storage_abort(u);
    return rc;
  }
  return storage_commit(u, replaced);
}

/* Reads all of `name` through a reader into buf (NUL-terminated); returns the length or a result. */
static long get(const char *name, char *buf, size_t cap)
{
  storage_reader_t *r;
  uint64_t size = 0;
  int rc = storage_read_open(name, &r, &size);
  if (rc != STORAGE_OK) {
    return rc;
  }
  size_t got = 0;
  long n;
  while ((n = storage_read(r, buf + got, cap - 1 - got > 3 ? 3 : cap - 1 - got)) > 0) {
    got += (size_t)n; /* small reads on purpose: the position must advance */
  }
  storage_read_close(r);
  buf[got] = '\0';
  CHECK_EQ(n, 0);
  CHECK_EQ(size, got);
  return (long)got;
}

static void test_capacity_accounting(void)
{
  setup(1000);
  CHECK_EQ(storage_capacity(), 1000);
  CHECK_EQ(storage_free(), 1000);
  storage_upload_t *u;
  CHECK_EQ(storage_open("a", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_free(), 1000); /* an open reserves nothing */
  char block[100];
  memset(block, 'x', sizeof block);
  CHECK_EQ(storage_write(u, block, sizeof block), STORAGE_OK);
  CHECK_EQ(storage_free(), 900);
  CHECK_EQ(storage_commit(u, NULL), STORAGE_OK);
  CHECK_EQ(storage_free(), 900);
  CHECK_EQ(put("b", "0123456789", NULL), STORAGE_OK);
  CHECK_EQ(storage_free(), 890);
  /* A restart finds the same bytes by scanning. */
  CHECK_EQ(storage_host_init(g_dir, 1000), 0);
  CHECK_EQ(storage_free(), 890);
  CHECK(strstr(g_log, "2 files, 110 of 1000 bytes used") != NULL);
  /* Files beyond the capacity still start, with nothing free. */
  CHECK_EQ(storage_host_init(g_dir, 50), 0);
  CHECK_EQ(storage_capacity(), 50);
  CHECK_EQ(storage_free(), 0);
  CHECK_EQ(storage_open("c", 1, &u), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("c", 0, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "z", 1), STORAGE_ENOSPC);
  CHECK_EQ(storage_commit(u, NULL), STORAGE_OK); /* an empty file costs nothing */
  CHECK(storage_exists("c", NULL));
  CHECK_EQ(storage_remove("a"), STORAGE_OK);
  CHECK_EQ(storage_free(), 40);
  teardown();
}

static void test_commit_makes_visible(void)
{
  setup(1000);
  storage_upload_t *u;
  CHECK_EQ(storage_open("hello.txt", 11, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "hello ", 6), STORAGE_OK);
  CHECK_EQ(storage_write(u, "", 0), STORAGE_OK);
  CHECK_EQ(storage_write(u, "world", 5), STORAGE_OK);
  bool replaced = true;
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_OK);
  CHECK(!replaced);
  uint64_t size = 0;
  CHECK(storage_exists("hello.txt", &size));
  CHECK(storage_exists("hello.txt", NULL));
  CHECK_EQ(size, 11);
  char buf[64];
  CHECK_EQ(get("hello.txt", buf, sizeof buf), 11);
  CHECK_STR(buf, "hello world");
  struct stat st;
  CHECK_EQ(stat(path_of("hello.txt"), &st), 0);
  CHECK_EQ(st.st_size, 11);
  CHECK(!dir_has_prefix(".upload-"));
  teardown();
}

static void test_invisible_before_commit(void)
{
  setup(1000);
  storage_upload_t *u;
  CHECK_EQ(storage_open("new", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "partial", 7), STORAGE_OK);
  struct stat st;
  CHECK(stat(path_of("new"), &st) != 0);
  CHECK(!storage_exists("new", NULL));
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("new", &r, NULL), STORAGE_ENOENT);
  CHECK(dir_has_prefix(".upload-"));
  CHECK_EQ(storage_commit(u, NULL), STORAGE_OK);
  CHECK(storage_exists("new", NULL));
  teardown();
}

static void test_replace_keeps_old_until_commit(void)
{
  setup(1000);
  char buf[64];
  CHECK_EQ(put("f", "old content", NULL), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(storage_open("f", 3, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "new", 3), STORAGE_OK);
  uint64_t size = 0;
  CHECK(storage_exists("f", &size));
  CHECK_EQ(size, 11);
  CHECK_EQ(get("f", buf, sizeof buf), 11);
  CHECK_STR(buf, "old content");
  CHECK_EQ(storage_free(), 1000 - 11 - 3); /* both versions count until the commit */
  bool replaced = false;
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_OK);
  CHECK(replaced);
  CHECK_EQ(get("f", buf, sizeof buf), 3);
  CHECK_STR(buf, "new");
  CHECK_EQ(storage_free(), 1000 - 3);
  teardown();
}

static void test_abort_restores(void)
{
  setup(1000);
  char buf[64];
  CHECK_EQ(put("f", "keep me", NULL), STORAGE_OK);
  uint64_t before = storage_free();
  storage_upload_t *u;
  CHECK_EQ(storage_open("f", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "garbage garbage", 15), STORAGE_OK);
  CHECK_EQ(storage_free(), before - 15);
  storage_abort(u);
  storage_abort(NULL);
  CHECK_EQ(storage_free(), before);
  CHECK_EQ(get("f", buf, sizeof buf), 7);
  CHECK_STR(buf, "keep me");
  CHECK(!dir_has_prefix(".upload-"));
  /* An aborted new name leaves nothing behind. */
  CHECK_EQ(storage_open("g", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "x", 1), STORAGE_OK);
  storage_abort(u);
  CHECK(!storage_exists("g", NULL));
  CHECK_EQ(storage_free(), before);
  teardown();
}

static int collect(void *ctx, const char *name, uint64_t size);

static void test_enospc(void)
{
  setup(100);
  storage_upload_t *u, *v;
  char block[100];
  memset(block, 'y', sizeof block);
  CHECK_EQ(storage_open("big", 101, &u), STORAGE_ENOSPC);
  CHECK_EQ(storage_free(), 100);
  CHECK_EQ(storage_open("big", 60, &u), STORAGE_OK);
  CHECK_EQ(storage_free(), 40); /* reserved at open, before any byte */
  CHECK_EQ(storage_write(u, block, 30), STORAGE_OK);
  CHECK_EQ(storage_free(), 40); /* writes within the reservation take nothing more */
  /* Another upload sees the reservation, not just the bytes written. */
  CHECK_EQ(storage_open("other", 41, &v), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("other", STORAGE_LEN_UNKNOWN, &v), STORAGE_OK);
  CHECK_EQ(storage_write(v, block, 41), STORAGE_ENOSPC); /* chunked: checked as it comes */
  CHECK_EQ(storage_write(v, block, 40), STORAGE_OK);     /* exactly full */
  CHECK_EQ(storage_free(), 0);
  CHECK_EQ(storage_write(u, block, 30), STORAGE_OK); /* the reservation holds on a full medium */
  CHECK_EQ(storage_write(v, block, 1), STORAGE_ENOSPC);
  storage_abort(v);
  CHECK_EQ(storage_free(), 40);
  storage_abort(u);
  CHECK_EQ(storage_free(), 100);
  CHECK(!storage_exists("big", NULL));
  CHECK(!dir_has_prefix(".upload-"));
  teardown();
}

/* The case seen on a 1 MiB device: two 629,145-byte uploads must not both be admitted. */
static void test_reservation_at_open(void)
{
  const uint64_t cap = 1024 * 1024, len = 629145;
  setup(cap);
  storage_upload_t *a, *b;
  CHECK_EQ(storage_open("a.bin", len, &a), STORAGE_OK);
  CHECK_EQ(storage_free(), cap - len); /* before a single byte is written */
  CHECK_EQ(storage_open("b.bin", len, &b), STORAGE_ENOSPC);
  CHECK_EQ(storage_free(), cap - len);
  CHECK_EQ(storage_open("b.bin", cap - len + 1, &b), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("b.bin", cap - len, &b), STORAGE_OK); /* exactly what is left */
  CHECK_EQ(storage_free(), 0);
  /* Abort gives the reservation back. */
  storage_abort(b);
  CHECK_EQ(storage_free(), cap - len);
  /* a streams all of it, then commits: the file takes what the reservation took. */
  static char body[629145];
  memset(body, 'a', sizeof body);
  for (size_t off = 0; off < sizeof body; off += 65536) {
    size_t n = sizeof body - off < 65536 ? sizeof body - off : 65536;
    CHECK_EQ(storage_write(a, body + off, n), STORAGE_OK);
    CHECK_EQ(storage_free(), cap - len);
  }
  CHECK_EQ(storage_commit(a, NULL), STORAGE_OK);
  CHECK_EQ(storage_free(), cap - len);
  /* A replacement needs room for both versions until its commit. */
  CHECK_EQ(storage_open("a.bin", len, &a), STORAGE_ENOSPC);
  CHECK_EQ(storage_open("a.bin", 1000, &a), STORAGE_OK);
  CHECK_EQ(storage_free(), cap - len - 1000);
  CHECK_EQ(storage_write(a, body, 1000), STORAGE_OK);
  CHECK_EQ(storage_commit(a, NULL), STORAGE_OK); /* the commit releases the reservation and the old version */
  CHECK_EQ(storage_free(), cap - 1000);
  /* The file holds only what was written (the preallocation keeps the size). */
  CHECK_EQ(storage_open("c", 500, &a), STORAGE_OK);
  CHECK_EQ(storage_write(a, body, 7), STORAGE_OK);
  CHECK_EQ(storage_commit(a, NULL), STORAGE_OK);
  struct stat st;
  CHECK_EQ(stat(path_of("c"), &st), 0);
  CHECK_EQ(st.st_size, 7);
  CHECK_EQ(storage_remove("c"), STORAGE_OK);
  /* An abort leaves nothing and gives the reservation back. */
  CHECK_EQ(storage_open("c", 500, &a), STORAGE_OK);
  CHECK_EQ(storage_write(a, body, 7), STORAGE_OK);
  storage_abort(a);
  CHECK(!dir_has_prefix(".upload-"));
  CHECK_EQ(storage_free(), cap - 1000);
  teardown();
}

static void test_write_past_announced_length(void)
{
  setup(1000);
  storage_upload_t *u;
  CHECK_EQ(storage_open("ten", 10, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "0123456789x", 11), STORAGE_ENOSPC); /* nothing of the call is kept */
  CHECK_EQ(storage_write(u, "01234", 5), STORAGE_OK);
  CHECK_EQ(storage_write(u, "56789x", 6), STORAGE_ENOSPC);
  CHECK_EQ(storage_write(u, "56789", 5), STORAGE_OK);
  CHECK_EQ(storage_write(u, "x", 1), STORAGE_ENOSPC);
  CHECK_EQ(storage_free(), 990);
  CHECK_EQ(storage_commit(u, NULL), STORAGE_OK);
  char buf[64];
  CHECK_EQ(get("ten", buf, sizeof buf), 10);
  CHECK_STR(buf, "0123456789");
  CHECK_EQ(storage_free(), 990);
  teardown();
}

static void test_chunked_runs_out(void)
{
  setup(100);
  CHECK_EQ(put("keep", "0123456789", NULL), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(storage_open("stream", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_free(), 90); /* nothing reserved */
  char block[64];
  memset(block, 'c', sizeof block);
  CHECK_EQ(storage_write(u, block, 64), STORAGE_OK);
  CHECK_EQ(storage_free(), 26);
  CHECK_EQ(storage_write(u, block, 27), STORAGE_ENOSPC);
  CHECK_EQ(storage_free(), 26); /* nothing of the refused call */
  storage_abort(u);             /* what the core does after the ENOSPC: the partial upload goes */
  CHECK_EQ(storage_free(), 90);
  CHECK(!storage_exists("stream", NULL));
  CHECK(!dir_has_prefix(".upload-"));
  char list[512] = "";
  CHECK_EQ(storage_list(collect, list), 0);
  CHECK_STR(list, "keep:10,");
  teardown();
}

/* storage_list callback that appends "name:size," to the string ctx. */
static int collect(void *ctx, const char *name, uint64_t size)
{
  char *s = ctx;
  snprintf(s + strlen(s), 512 - strlen(s), "%s:%llu,", name, (unsigned long long)size);
  return 0;
}

/* storage_list callback that stops after the first name. */
static int stop_first(void *ctx, const char *name, uint64_t size)
{
  (void)name;
  (void)size;
  ++*(int *)ctx;
  return 42;
}

static void test_stale_upload_removed(void)
{
  make_dir();
  plant(".upload-3", "half an upload");
  plant("kept", "1234");
  CHECK_EQ(storage_host_init(g_dir, 1000), 0);
  CHECK(strstr(g_log, "1 file, 4 of 1000 bytes used") != NULL);
  CHECK(strstr(g_log, "removed 1 unfinished upload") != NULL);
  struct stat st;
  CHECK(stat(path_of(".upload-3"), &st) != 0);
  CHECK_EQ(storage_free(), 996);
  char list[512] = "";
  CHECK_EQ(storage_list(collect, list), 0);
  CHECK_STR(list, "kept:4,");
  CHECK(!storage_exists(".upload-3", NULL));
  teardown();
}

static void test_same_name_busy(void)
{
  setup(1000);
  storage_upload_t *u, *v, *w;
  CHECK_EQ(storage_open("n", STORAGE_LEN_UNKNOWN, &u), STORAGE_OK);
  CHECK_EQ(storage_open("n", STORAGE_LEN_UNKNOWN, &v), STORAGE_EBUSY);
  CHECK_EQ(storage_open("m", STORAGE_LEN_UNKNOWN, &w), STORAGE_OK);
  CHECK_EQ(storage_write(u, "first", 5), STORAGE_OK);
  storage_abort(u);
  CHECK_EQ(storage_open("n", STORAGE_LEN_UNKNOWN, &v), STORAGE_OK);
  CHECK_EQ(storage_write(v, "second", 6), STORAGE_OK);
  CHECK_EQ(storage_commit(v, NULL), STORAGE_OK);
  CHECK_EQ(storage_commit(w, NULL), STORAGE_OK);
  char buf[64];
  CHECK_EQ(get("n", buf, sizeof buf), 6);
  CHECK_STR(buf, "second");
  teardown();
}

static void test_slot_exhaustion(void)
{
  setup(1000);
  storage_upload_t *u[POSTERN_MAX_CONNS], *extra;
  char name[16];
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    snprintf(name, sizeof name, "f%d", i);
    CHECK_EQ(storage_open(name, STORAGE_LEN_UNKNOWN, &u[i]), STORAGE_OK);
  }
  CHECK_EQ(storage_open("more", STORAGE_LEN_UNKNOWN, &extra), STORAGE_EBUSY);
  CHECK_EQ(storage_commit(u[0], NULL), STORAGE_OK);
  CHECK_EQ(storage_open("more", STORAGE_LEN_UNKNOWN, &u[0]), STORAGE_OK);
  CHECK_EQ(storage_open("more2", STORAGE_LEN_UNKNOWN, &extra), STORAGE_EBUSY);
  storage_abort(u[1]);
  CHECK_EQ(storage_open("more2", STORAGE_LEN_UNKNOWN, &u[1]), STORAGE_OK);
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    storage_abort(u[i]);
  }
  /* Reader slots too. */
  storage_reader_t *r[POSTERN_MAX_CONNS], *rx;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    CHECK_EQ(storage_read_open("f0", &r[i], NULL), STORAGE_OK);
  }
  CHECK_EQ(storage_read_open("f0", &rx, NULL), STORAGE_EBUSY);
  storage_read_close(r[2]);
  storage_read_close(NULL);
  CHECK_EQ(storage_read_open("f0", &r[2], NULL), STORAGE_OK);
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    storage_read_close(r[i]);
  }
  teardown();
}

static void test_list_order(void)
{
  setup(1000);
  const char *names[] = {"b", "a", "B", "a1", "\xc3\xa9", "~", "a.txt", "10", "9"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    CHECK_EQ(put(names[i], names[i], NULL), STORAGE_OK);
  }
  plant(".hidden", "secret");
  CHECK_EQ(mkdir(path_of("sub"), 0755), 0);
  char list[512] = "";
  CHECK_EQ(storage_list(collect, list), 0);
  CHECK_STR(list, "10:2,9:1,B:1,a:1,a.txt:5,a1:2,b:1,~:1,\xc3\xa9:2,");
  CHECK(!storage_exists("sub", NULL));
  int calls = 0;
  CHECK_EQ(storage_list(stop_first, &calls), 42);
  CHECK_EQ(calls, 1);
  teardown();
  /* An empty directory lists nothing. */
  setup(10);
  list[0] = '\0';
  CHECK_EQ(storage_list(collect, list), 0);
  CHECK_STR(list, "");
  teardown();
}

static char g_prev[POSTERN_NAME_MAX + 1];

/* storage_list callback that checks the order, counts the names and keeps the last in g_prev. */
static int count_sorted(void *ctx, const char *name, uint64_t size)
{
  char *prev = g_prev;
  int *n = ctx;
  CHECK(*n == 0 || strcmp(prev, name) < 0);
  CHECK_EQ(size, 1);
  snprintf(prev, sizeof g_prev, "%s", name);
  ++*n;
  return 0;
}

/* Plants n one-byte files n000.. in a scrambled order and checks that all are listed, sorted. */
static void check_list_all(int n)
{
  setup(100000);
  char name[16];
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "n%03d", (i * 37) % n); /* 37 is prime to every n used */
    plant(name, "x");
  }
  CHECK_EQ(storage_host_init(g_dir, 100000), 0);
  CHECK_EQ(storage_free(), 100000 - (uint64_t)n);
  int seen = 0;
  g_prev[0] = '\0';
  CHECK_EQ(storage_list(count_sorted, &seen), 0);
  CHECK_EQ(seen, n);
  if (n > 0) {
    snprintf(name, sizeof name, "n%03d", n - 1);
    CHECK_STR(g_prev, name);
  }
  teardown();
}

/* storage_list callback that removes each file it visits, and its successor n+1 once. */
static int remove_visited(void *ctx, const char *name, uint64_t size)
{
  (void)size;
  int *n = ctx;
  CHECK_EQ(storage_remove(name), STORAGE_OK);
  if (strcmp(name, "n005") == 0) {
    CHECK_EQ(storage_remove("n006"), STORAGE_OK); /* later in the same batch: must not be visited */
  }
  ++*n;
  return 0;
}

static void test_list_every_file(void)
{
  static const int counts[] = {0, 1, 15, 16, 17, 32, 33, 200};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    check_list_all(counts[i]);
  }
  /* 200 files, each name of the batch boundaries included, none cut and nothing logged about it. */
  setup(100000);
  char name[16];
  for (int i = 199; i >= 0; i--) {
    snprintf(name, sizeof name, "n%03d", i);
    CHECK_EQ(put(name, "x", NULL), STORAGE_OK);
  }
  g_log[0] = '\0';
  int seen = 0;
  g_prev[0] = '\0';
  CHECK_EQ(storage_list(count_sorted, &seen), 0);
  CHECK_EQ(seen, 200);
  CHECK_STR(g_prev, "n199");
  CHECK_STR(g_log, "");
  /* fn may remove files meanwhile: every file is still visited once, a removed one not. */
  seen = 0;
  CHECK_EQ(storage_list(remove_visited, &seen), 0);
  CHECK_EQ(seen, 199);
  CHECK_EQ(storage_free(), 100000);
  seen = 0;
  CHECK_EQ(storage_list(count_sorted, &seen), 0);
  CHECK_EQ(seen, 0);
  teardown();
}

static void test_remove(void)
{
  setup(1000);
  CHECK_EQ(put("gone", "12345", NULL), STORAGE_OK);
  CHECK_EQ(put("stays", "1", NULL), STORAGE_OK);
  CHECK_EQ(storage_free(), 994);
  CHECK_EQ(storage_remove("gone"), STORAGE_OK);
  CHECK(!storage_exists("gone", NULL));
  CHECK(storage_exists("stays", NULL));
  CHECK_EQ(storage_free(), 999);
  CHECK_EQ(storage_remove("gone"), STORAGE_ENOENT);
  CHECK_EQ(storage_remove("never"), STORAGE_ENOENT);
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("gone", &r, NULL), STORAGE_ENOENT);
  char list[512] = "";
  CHECK_EQ(storage_list(collect, list), 0);
  CHECK_STR(list, "stays:1,");
  teardown();
}

static void test_reader_survives_replace(void)
{
  setup(100000);
  static char old[20000], fresh[20000], got[20000];
  for (size_t i = 0; i < sizeof old; i++) {
    old[i] = (char)('a' + i % 26);
    fresh[i] = (char)('0' + i % 10);
  }
  old[sizeof old - 1] = fresh[sizeof fresh - 1] = '\0';
  CHECK_EQ(put("f", old, NULL), STORAGE_OK);
  storage_reader_t *r;
  uint64_t size = 0;
  CHECK_EQ(storage_read_open("f", &r, &size), STORAGE_OK);
  CHECK_EQ(size, sizeof old - 1);
  CHECK_EQ(storage_read(r, got, 1000), 1000);
  CHECK_EQ(put("f", fresh, NULL), STORAGE_OK);
  size_t n = 1000;
  long k;
  while ((k = storage_read(r, got + n, sizeof got - n)) > 0) {
    n += (size_t)k;
  }
  CHECK_EQ(k, 0);
  CHECK_EQ(n, sizeof old - 1);
  CHECK(memcmp(got, old, n) == 0);
  storage_read_close(r);
  /* The same after a remove. */
  CHECK_EQ(storage_read_open("f", &r, NULL), STORAGE_OK);
  CHECK_EQ(storage_remove("f"), STORAGE_OK);
  n = 0;
  while ((k = storage_read(r, got + n, sizeof got - n)) > 0) {
    n += (size_t)k;
  }
  CHECK_EQ(n, sizeof fresh - 1);
  CHECK(memcmp(got, fresh, n) == 0);
  storage_read_close(r);
  teardown();
}

/* Uploads `data` under `name` with a digest (sha NULL: without one). */
static int put_sha(const char *name, const char *data, const uint8_t *sha, bool *replaced)
{
  storage_upload_t *u;
  size_t n = strlen(data);
  int rc = storage_open(name, n, &u);
  if (rc != STORAGE_OK) {
    return rc;
  }
  rc = storage_write(u, data, n);
  if (rc != STORAGE_OK) {
    storage_abort(u);
    return rc;
  }
  if (sha != NULL) {
    storage_set_sha256(u, sha);
  }
  return storage_commit(u, replaced);
}

/* A digest survives a new init (a reboot), and goes with a remove. */
static void test_sha_survives_rescan(void)
{
  setup(100000);
  uint8_t a[32], got[32];
  memset(a, 0xA5, sizeof a);
  CHECK(!storage_sha256("f", got));
  CHECK_EQ(put_sha("f", "content", a, NULL), STORAGE_OK);
  CHECK(storage_sha256("f", got) && memcmp(got, a, 32) == 0);
  CHECK_EQ(storage_host_init(g_dir, 100000), 0);
  memset(got, 0, sizeof got);
  CHECK(storage_sha256("f", got) && memcmp(got, a, 32) == 0);
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("f", &r, NULL), STORAGE_OK);
  memset(got, 0, sizeof got);
  CHECK(storage_read_sha256(r, got) && memcmp(got, a, 32) == 0);
  storage_read_close(r);
  char list[512] = "";
  CHECK_EQ(storage_list(collect, list), 0);
  CHECK_STR(list, "f:7,"); /* the sidecar is not a file */
  CHECK_EQ(storage_remove("f"), STORAGE_OK);
  CHECK(!dir_has_prefix(".sha256-"));
  CHECK_EQ(put_sha("f", "content", NULL, NULL), STORAGE_OK);
  CHECK(!storage_sha256("f", got)); /* a new upload without the call has none */
  teardown();
}

/* No digest without the call, also when it replaces a version that had one. */
static void test_sha_none_without_call(void)
{
  setup(100000);
  uint8_t a[32], got[32];
  memset(a, 1, sizeof a);
  CHECK_EQ(put_sha("g", "one", NULL, NULL), STORAGE_OK);
  CHECK(!storage_sha256("g", got));
  CHECK_EQ(put_sha("g", "two", a, NULL), STORAGE_OK);
  CHECK(storage_sha256("g", got));
  bool replaced = false;
  CHECK_EQ(put_sha("g", "three", NULL, &replaced), STORAGE_OK);
  CHECK(replaced);
  CHECK(!storage_sha256("g", got));
  plant("byhand", "copied in");
  CHECK(storage_exists("byhand", NULL));
  CHECK(!storage_sha256("byhand", got));
  teardown();
}

/* A reader keeps the digest of its version; the name has the new one. */
static void test_sha_reader_keeps_old(void)
{
  setup(100000);
  uint8_t a[32], b[32], got[32];
  memset(a, 0xAA, sizeof a);
  memset(b, 0xBB, sizeof b);
  CHECK_EQ(put_sha("f", "old version", a, NULL), STORAGE_OK);
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("f", &r, NULL), STORAGE_OK);
  CHECK_EQ(put_sha("f", "new version!", b, NULL), STORAGE_OK);
  CHECK(storage_read_sha256(r, got) && memcmp(got, a, 32) == 0);
  CHECK(storage_sha256("f", got) && memcmp(got, b, 32) == 0);
  storage_read_close(r);
  teardown();
}

/*
 * Crashes around the commit: a sidecar that names another content (the
 * temporary file that never got renamed, or a replacement copied in by
 * hand) gives no digest, never a wrong one, and the next scan removes it.
 */
static void test_sha_crash_leaves_none(void)
{
  setup(100000);
  uint8_t a[32], got[32];
  memset(a, 0x5A, sizeof a);
  CHECK_EQ(put_sha("f", "version one", a, NULL), STORAGE_OK);
  /* A replacement put in place by hand (a new inode, the same size): no digest. */
  plant(".tmp-by-hand", "version two");
  char from[256];
  snprintf(from, sizeof from, "%s", path_of(".tmp-by-hand")); /* path_of() has one buffer */
  CHECK_EQ(rename(from, path_of("f")), 0);
  CHECK(!storage_sha256("f", got));
  /* The crash between the sidecar's rename and the content's: the sidecar names the lost temporary file. */
  CHECK_EQ(put_sha("g", "gg", a, NULL), STORAGE_OK);
  snprintf(from, sizeof from, "%s", path_of(".sha256-g"));
  CHECK_EQ(rename(from, path_of(".sha256-h")), 0);
  plant("h", "gg");
  CHECK(!storage_sha256("h", got));
  /* A sidecar of nothing, and one of an upload cut short. */
  plant(".sha256-gone", "whatever");
  plant(".upload-1.sha256", "half");
  CHECK_EQ(storage_host_init(g_dir, 100000), 0);
  struct stat st;
  CHECK(stat(path_of(".sha256-h"), &st) != 0);
  CHECK(stat(path_of(".sha256-gone"), &st) != 0);
  CHECK(stat(path_of(".upload-1.sha256"), &st) != 0);
  CHECK(stat(path_of(".sha256-f"), &st) != 0); /* it named the replaced version */
  CHECK(!storage_sha256("f", got) && !storage_sha256("h", got));
  teardown();
}

/* A reader seeks within its version; past the size is refused. */
static void test_read_seek(void)
{
  setup(100000);
  CHECK_EQ(put("s", "0123456789", NULL), STORAGE_OK);
  storage_reader_t *r;
  CHECK_EQ(storage_read_open("s", &r, NULL), STORAGE_OK);
  char buf[16] = "";
  CHECK_EQ(storage_read_seek(r, 7), STORAGE_OK);
  CHECK_EQ(storage_read(r, buf, sizeof buf), 3);
  CHECK(memcmp(buf, "789", 3) == 0);
  CHECK_EQ(storage_read_seek(r, 2), STORAGE_OK);
  CHECK_EQ(storage_read(r, buf, 2), 2);
  CHECK(memcmp(buf, "23", 2) == 0);
  CHECK_EQ(storage_read_seek(r, 10), STORAGE_OK);
  CHECK_EQ(storage_read(r, buf, sizeof buf), 0);
  CHECK_EQ(storage_read_seek(r, 11), STORAGE_EINVAL);
  storage_read_close(r);
  teardown();
}

static void test_invalid_names(void)
{
  setup(1000);
  char longname[POSTERN_NAME_MAX + 2];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  const char *bad[] = {"a/b", "/abs", ".hidden", ".upload-0", ".", "..", "", longname};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    storage_upload_t *u;
    storage_reader_t *r;
    CHECK_EQ(storage_open(bad[i], 1, &u), STORAGE_EINVAL);
    CHECK_EQ(storage_read_open(bad[i], &r, NULL), STORAGE_EINVAL);
    CHECK_EQ(storage_remove(bad[i]), STORAGE_EINVAL);
    CHECK(!storage_exists(bad[i], NULL));
  }
  longname[POSTERN_NAME_MAX] = '\0'; /* the longest allowed */
  CHECK_EQ(put(longname, "ok", NULL), STORAGE_OK);
  CHECK(storage_exists(longname, NULL));
  teardown();
}

static void test_init_errors(void)
{
  make_dir();
  CHECK_EQ(storage_host_init(path_of("no/such/parent"), 10), -1);
  plant("file", "x");
  CHECK_EQ(storage_host_init(path_of("file"), 10), -1);
  /* After a failed init every call fails cleanly. */
  storage_upload_t *u;
  CHECK_EQ(storage_open("a", 1, &u), STORAGE_EIO);
  CHECK(!storage_exists("a", NULL));
  /* A missing directory (one level) is created. */
  CHECK_EQ(storage_host_init(path_of("made"), 10), 0);
  struct stat st;
  CHECK(stat(path_of("made"), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_EQ(put("x", "1", NULL), STORAGE_OK);
  CHECK_EQ(unlink(path_of("made/x")), 0);
  teardown();
}

/* ---- Timing (--storage-latency) ------------------------------------------------------ */

#define LAT 200u

/* A fresh directory whose medium is busy LAT ms per unit, on the test's clock (near its wrap). */
static void setup_timed(uint64_t capacity)
{
  setup(capacity);
  g_now = 0xffffffffu - 300u; /* deadlines must survive the clock's wrap */
  g_ready = 0;
  g_on_ready = NULL;
  storage_host_timing(LAT, test_clock);
}

/* Time passes by ms, then the main loop's storage_poll(); returns its answer. */
static uint32_t advance(uint32_t ms)
{
  g_now += ms;
  return storage_poll();
}

/* Bytes of the upload's temporary file (slot 0 unless told). */
static long long tmp_size(int slot)
{
  char name[32];
  struct stat st;
  snprintf(name, sizeof name, ".upload-%d", slot);
  return stat(path_of(name), &st) == 0 ? (long long)st.st_size : -1;
}

/* Repeats a storage call, letting the medium's time pass, until it no longer pends. */
#define UNTIL_DONE(rc, call)                                             \
  do {                                                                   \
    int unit_guard_ = 0;                                                 \
    while (((rc) = (call)) == STORAGE_PENDING && unit_guard_++ < 1000) { \
      uint32_t w_ = storage_poll();                                      \
      advance(w_ == STORAGE_POLL_IDLE ? 1 : w_);                         \
    }                                                                    \
  } while (0)

/* put() on a timed medium: every call repeated until it is done. */
static int put_timed(const char *name, const char *data)
{
  storage_upload_t *u;
  size_t n = strlen(data);
  int rc = storage_open(name, n, &u);
  if (rc != STORAGE_OK) {
    return rc;
  }
  UNTIL_DONE(rc, storage_write(u, data, n));
  if (rc != STORAGE_OK) {
    storage_abort(u);
    return rc;
  }
  UNTIL_DONE(rc, storage_commit(u, NULL));
  return rc;
}

static void test_latency_zero_never_pends(void)
{
  setup(100000);
  storage_host_timing(0, test_clock);
  g_ready = 0;
  static char big[3 * STORAGE_HOST_UNIT + 5];
  memset(big, 'z', sizeof big - 1);
  CHECK_EQ(put("f", big, NULL), STORAGE_OK);
  CHECK_EQ(storage_poll(), STORAGE_POLL_IDLE);
  CHECK_EQ(storage_remove("f"), STORAGE_OK);
  CHECK_EQ(put("g", "x", NULL), STORAGE_OK);
  CHECK_EQ(storage_poll(), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 0);
  teardown();
}

static void test_write_pends_then_completes(void)
{
  setup_timed(100000);
  storage_upload_t *u;
  CHECK_EQ(storage_open("w", 3 * STORAGE_HOST_UNIT, &u), STORAGE_OK); /* no medium work: at once */
  CHECK_EQ(storage_poll(), STORAGE_POLL_IDLE);
  CHECK_EQ(storage_free(), 100000 - 3 * STORAGE_HOST_UNIT);
  static char data[3 * STORAGE_HOST_UNIT];
  for (size_t i = 0; i < sizeof data; i++) {
    data[i] = (char)('a' + i % 23);
  }
  CHECK_EQ(storage_write(u, data, 0), STORAGE_OK); /* nothing to erase for nothing */
  CHECK_EQ(storage_write(u, data, 100), STORAGE_PENDING);
  CHECK_EQ(tmp_size(0), 0);                               /* nothing of the call kept */
  CHECK_EQ(storage_write(u, data, 100), STORAGE_PENDING); /* the retry before the time: the same unit */
  CHECK_EQ(storage_poll(), LAT);
  CHECK_EQ(advance(LAT - 1), 1);
  CHECK_EQ(g_ready, 0);
  CHECK_EQ(advance(1), STORAGE_POLL_IDLE); /* the unit is done, nothing else queued */
  CHECK_EQ(g_ready, 1);
  CHECK_EQ(tmp_size(0), 0);                                                    /* still nothing: the retry writes */
  CHECK_EQ(storage_write(u, data, 100), STORAGE_OK);                           /* the retry, same bytes */
  CHECK_EQ(storage_write(u, data + 100, STORAGE_HOST_UNIT - 100), STORAGE_OK); /* the erased unit: at once */
  CHECK_EQ(tmp_size(0), STORAGE_HOST_UNIT);
  CHECK_EQ(storage_poll(), STORAGE_POLL_IDLE);
  /* A write across two more units pends twice: one unit at a time. */
  const char *rest = data + STORAGE_HOST_UNIT;
  CHECK_EQ(storage_write(u, rest, 2 * STORAGE_HOST_UNIT), STORAGE_PENDING);
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 2);
  CHECK_EQ(storage_write(u, rest, 2 * STORAGE_HOST_UNIT), STORAGE_PENDING);
  CHECK_EQ(tmp_size(0), STORAGE_HOST_UNIT);
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 3);
  CHECK_EQ(storage_write(u, rest, 2 * STORAGE_HOST_UNIT), STORAGE_OK);
  CHECK_EQ(tmp_size(0), 3 * STORAGE_HOST_UNIT);
  CHECK_EQ(storage_write(u, "x", 1), STORAGE_ENOSPC); /* a refusal comes at once, not after the medium */
  CHECK_EQ(storage_poll(), STORAGE_POLL_IDLE);
  int rc;
  UNTIL_DONE(rc, storage_commit(u, NULL));
  CHECK_EQ(rc, STORAGE_OK);
  static char got[sizeof data + 1];
  CHECK_EQ(get("w", got, sizeof got), (long)sizeof data);
  CHECK(memcmp(got, data, sizeof data) == 0);
  CHECK_EQ(storage_free(), 100000 - 3 * STORAGE_HOST_UNIT);
  teardown();
}

static void test_commit_pends_nothing_visible(void)
{
  setup_timed(1000);
  CHECK_EQ(put_timed("f", "old"), STORAGE_OK);
  storage_upload_t *u;
  CHECK_EQ(storage_open("f", 3, &u), STORAGE_OK);
  int rc;
  UNTIL_DONE(rc, storage_write(u, "new", 3));
  CHECK_EQ(rc, STORAGE_OK);
  int before = g_ready;
  bool replaced = false;
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_PENDING);
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_PENDING); /* recognised: no second unit */
  char buf[16];
  CHECK_EQ(get("f", buf, sizeof buf), 3);
  CHECK_STR(buf, "old");
  CHECK_EQ(storage_free(), 1000 - 3 - 3); /* still both versions */
  CHECK_EQ(advance(LAT - 1), 1);
  CHECK_EQ(g_ready, before);
  CHECK_EQ(advance(1), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, before + 1);
  CHECK_EQ(get("f", buf, sizeof buf), 3);
  CHECK_STR(buf, "old"); /* visible at the retry, not before */
  CHECK(!replaced);
  CHECK_EQ(storage_commit(u, &replaced), STORAGE_OK);
  CHECK(replaced);
  CHECK_EQ(get("f", buf, sizeof buf), 3);
  CHECK_STR(buf, "new");
  CHECK_EQ(storage_free(), 1000 - 3);
  CHECK(!dir_has_prefix(".upload-"));
  teardown();
}

static void test_remove_pends(void)
{
  setup_timed(1000);
  CHECK_EQ(put_timed("gone", "12345"), STORAGE_OK);
  CHECK_EQ(put_timed("also", "1"), STORAGE_OK);
  int before = g_ready;
  CHECK_EQ(storage_remove("never"), STORAGE_ENOENT); /* nothing to do: no medium work */
  CHECK_EQ(storage_remove("bad/name"), STORAGE_EINVAL);
  CHECK_EQ(storage_poll(), STORAGE_POLL_IDLE);
  CHECK_EQ(storage_remove("gone"), STORAGE_PENDING);
  CHECK_EQ(storage_remove("also"), STORAGE_PENDING); /* queued behind it */
  CHECK_EQ(storage_remove("gone"), STORAGE_PENDING); /* the retry: the same unit */
  CHECK(storage_exists("gone", NULL));
  CHECK_EQ(storage_free(), 1000 - 6);
  CHECK_EQ(advance(LAT), LAT); /* "gone" done, "also" started */
  CHECK_EQ(g_ready, before + 1);
  CHECK(storage_exists("gone", NULL)); /* until the retry */
  CHECK_EQ(storage_remove("also"), STORAGE_PENDING);
  CHECK_EQ(storage_remove("gone"), STORAGE_OK);
  CHECK(!storage_exists("gone", NULL));
  CHECK_EQ(storage_free(), 1000 - 1);
  CHECK_EQ(storage_remove("gone"), STORAGE_ENOENT); /* done once only */
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, before + 2);
  CHECK_EQ(storage_remove("also"), STORAGE_OK);
  CHECK_EQ(storage_free(), 1000);
  teardown();
}

static void test_abort_pending_upload(void)
{
  setup_timed(10000);
  storage_upload_t *u, *v;
  CHECK_EQ(storage_open("a", 100, &u), STORAGE_OK);
  CHECK_EQ(storage_write(u, "abc", 3), STORAGE_PENDING);
  storage_abort(u); /* at once, though its erase is on the medium */
  CHECK_EQ(storage_free(), 10000);
  CHECK(!dir_has_prefix(".upload-"));
  /* The slot is taken again; its write waits behind the aborted unit, which ends in the background. */
  CHECK_EQ(storage_open("b", 100, &v), STORAGE_OK);
  CHECK(v == u);
  CHECK_EQ(storage_write(v, "xyz", 3), STORAGE_PENDING);
  CHECK_EQ(advance(LAT), LAT);
  CHECK_EQ(g_ready, 0); /* the aborted unit's end helps nobody */
  CHECK_EQ(storage_write(v, "xyz", 3), STORAGE_PENDING);
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 1);
  CHECK_EQ(storage_write(v, "xyz", 3), STORAGE_OK);
  /* A pending commit aborted: nothing visible, ever. */
  CHECK_EQ(storage_commit(v, NULL), STORAGE_PENDING);
  storage_abort(v);
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 1);
  CHECK(!storage_exists("b", NULL));
  CHECK(!dir_has_prefix(".upload-"));
  CHECK_EQ(storage_free(), 10000);
  /* Units queued behind and aborted before their turn never run. */
  CHECK_EQ(storage_open("c", 100, &u), STORAGE_OK);
  CHECK_EQ(storage_open("d", 100, &v), STORAGE_OK);
  CHECK_EQ(storage_write(u, "1", 1), STORAGE_PENDING);
  CHECK_EQ(storage_write(v, "2", 1), STORAGE_PENDING);
  storage_abort(v);
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 2);
  CHECK_EQ(storage_write(u, "1", 1), STORAGE_OK);
  storage_abort(u);
  teardown();
}

/* What the core does in storage_ready(): the pending calls again, in a fixed order (a before b). */
static storage_upload_t *g_a, *g_b;
static const char *g_a_data, *g_b_data;
static size_t g_a_off, g_b_off, g_a_len, g_b_len;
static int g_a_turns, g_b_turns;

/* Writes what is left of one upload in 1 KiB pieces until it pends; counts the pieces in *turns. */
static void feed(storage_upload_t *u, const char *data, size_t len, size_t *off, int *turns)
{
  while (u != NULL && *off < len) {
    size_t n = len - *off < 1024 ? len - *off : 1024;
    int rc = storage_write(u, data + *off, n);
    if (rc != STORAGE_OK) {
      CHECK_EQ(rc, STORAGE_PENDING);
      return;
    }
    *off += n;
    ++*turns;
  }
}

static void core_retries(void)
{
  feed(g_a, g_a_data, g_a_len, &g_a_off, &g_a_turns);
  feed(g_b, g_b_data, g_b_len, &g_b_off, &g_b_turns);
}

static void test_one_medium_for_all(void)
{
  setup_timed(100000);
  storage_host_timing(0, NULL);
  CHECK_EQ(put("r", "x", NULL), STORAGE_OK);
  storage_host_timing(LAT, test_clock);
  static char a[4 * STORAGE_HOST_UNIT], b[2 * STORAGE_HOST_UNIT];
  memset(a, 'A', sizeof a);
  memset(b, 'B', sizeof b);
  g_a_data = a, g_a_len = sizeof a, g_a_off = 0, g_a_turns = 0;
  g_b_data = b, g_b_len = sizeof b, g_b_off = 0, g_b_turns = 0;
  CHECK_EQ(storage_open("a", sizeof a, &g_a), STORAGE_OK);
  CHECK_EQ(storage_open("b", sizeof b, &g_b), STORAGE_OK);
  g_on_ready = core_retries;
  core_retries(); /* both pend: a's first unit on the medium, b's queued behind it */
  CHECK_EQ(g_a_off + g_b_off, 0);
  CHECK_EQ(advance(LAT), LAT); /* a's unit done, b's started; a writes its unit and queues its next */
  CHECK_EQ(g_a_off, STORAGE_HOST_UNIT);
  CHECK_EQ(g_b_off, 0);
  CHECK_EQ(advance(LAT), LAT); /* b's turn: a does not take the medium twice in a row */
  CHECK_EQ(g_a_off, STORAGE_HOST_UNIT);
  CHECK_EQ(g_b_off, STORAGE_HOST_UNIT);
  /* A remove waits its turn like the writes: behind a's second unit (on the medium) and b's. */
  CHECK_EQ(storage_remove("r"), STORAGE_PENDING);
  CHECK_EQ(advance(LAT), LAT);
  CHECK_EQ(g_a_off, 2 * STORAGE_HOST_UNIT);
  CHECK_EQ(advance(LAT), LAT);
  CHECK_EQ(g_b_off, sizeof b);
  CHECK_EQ(storage_remove("r"), STORAGE_PENDING); /* on the medium now */
  CHECK_EQ(advance(LAT), LAT);
  CHECK_EQ(storage_remove("r"), STORAGE_OK);
  for (int i = 0; i < 10 && storage_poll() != STORAGE_POLL_IDLE; i++) {
    advance(LAT);
  }
  CHECK_EQ(g_a_off, sizeof a);
  g_on_ready = NULL;
  int rc;
  UNTIL_DONE(rc, storage_commit(g_a, NULL));
  CHECK_EQ(rc, STORAGE_OK);
  UNTIL_DONE(rc, storage_commit(g_b, NULL));
  CHECK_EQ(rc, STORAGE_OK);
  CHECK_EQ(g_a_turns + g_b_turns, (int)((sizeof a + sizeof b) / 1024)); /* each piece written once */
  static char got[sizeof a + 1];
  CHECK_EQ(get("a", got, sizeof got), (long)sizeof a);
  CHECK(memcmp(got, a, sizeof a) == 0);
  CHECK_EQ(get("b", got, sizeof got), (long)sizeof b);
  CHECK(memcmp(got, b, sizeof b) == 0);
  teardown();
}

static int g_ready_calls_at_idle;

/* storage_ready() asks the medium for more: a re-entrant remove that pends, and a poll's answer after it. */
static void remove_in_ready(void)
{
  if (g_ready == 1) {
    CHECK_EQ(storage_remove("y"), STORAGE_PENDING);
  }
  g_ready_calls_at_idle += storage_poll() == STORAGE_POLL_IDLE;
}

static void test_ready_exactly_when_progress(void)
{
  setup_timed(1000);
  storage_host_timing(0, NULL);
  CHECK_EQ(put("x", "1", NULL), STORAGE_OK);
  CHECK_EQ(put("y", "2", NULL), STORAGE_OK);
  storage_host_timing(LAT, test_clock);
  /* Nothing in progress: polls never call it. */
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(advance(1000), STORAGE_POLL_IDLE);
  }
  CHECK_EQ(g_ready, 0);
  CHECK_EQ(storage_remove("x"), STORAGE_PENDING);
  for (uint32_t t = 0; t < LAT - 1; t += 7) {
    CHECK_EQ(advance(7 < LAT - 1 - t ? 7 : LAT - 1 - t) > 0, 1);
  }
  CHECK_EQ(g_ready, 0);
  g_on_ready = remove_in_ready;
  CHECK_EQ(advance(1), LAT); /* once, and the remove it asked for is under way */
  CHECK_EQ(g_ready, 1);
  CHECK_EQ(g_ready_calls_at_idle, 0);
  CHECK_EQ(storage_poll(), LAT);
  CHECK_EQ(g_ready, 1);
  CHECK_EQ(advance(5 * LAT), STORAGE_POLL_IDLE); /* a late poll: one call all the same */
  CHECK_EQ(g_ready, 2);
  CHECK_EQ(advance(LAT), STORAGE_POLL_IDLE);
  CHECK_EQ(g_ready, 2);
  g_on_ready = NULL;
  CHECK_EQ(storage_remove("x"), STORAGE_OK);
  CHECK_EQ(storage_remove("y"), STORAGE_OK);
  CHECK_EQ(storage_free(), 1000);
  teardown();
}

/* More calls pending than the queue holds: the one left out is told when a unit ends, and gets its turn. */
static void test_queue_full(void)
{
  setup(100000);
  enum { N = 3 * POSTERN_MAX_CONNS + 1 };
  char name[16];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "q%02d", i);
    CHECK_EQ(put(name, "q", NULL), STORAGE_OK);
  }
  g_now = 5, g_ready = 0;
  storage_host_timing(LAT, test_clock);
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "q%02d", i);
    CHECK_EQ(storage_remove(name), STORAGE_PENDING);
  }
  int done = 0;
  for (int round = 0; round < 4 * N && done < N; round++) {
    advance(LAT);
    for (int i = 0; i < N; i++) {
      snprintf(name, sizeof name, "q%02d", i);
      int rc = storage_remove(name);
      done += rc == STORAGE_OK;
      CHECK(rc == STORAGE_OK || rc == STORAGE_PENDING || rc == STORAGE_ENOENT);
    }
  }
  CHECK_EQ(done, N);
  CHECK_EQ(storage_free(), 100000);
  teardown();
}

/* The bytes of a pattern at offset i: every upload of test_writer_many_chunks differs from the others. */
static uint8_t pattern(unsigned seed, size_t i)
{
  return (uint8_t)((i * 131u + seed * 7u + (i >> 16)) & 0xffu);
}

/* True when committed `name` holds `size` bytes of pattern(seed). */
static bool holds_pattern(const char *name, unsigned seed, size_t size)
{
  storage_reader_t *r;
  uint64_t n = 0;
  if (storage_read_open(name, &r, &n) != STORAGE_OK || n != size) {
    return false;
  }
  static uint8_t buf[50000];
  size_t at = 0;
  bool same = true;
  long k;
  while ((k = storage_read(r, buf, sizeof buf)) > 0) {
    for (long i = 0; i < k; i++) {
      same = same && buf[i] == pattern(seed, at + (size_t)i);
    }
    at += (size_t)k;
  }
  storage_read_close(r);
  return same && k == 0 && at == size;
}

/*
 * Many writes of odd sizes, much more than the RAM an upload slot keeps on
 * its way to the file: two uploads interleaved (one replacing a file that a
 * reader holds), a third aborted with bytes still on their way. Every byte
 * lands where it belongs, the abort leaves nothing, the reader keeps the old
 * version.
 */
static void test_writer_many_chunks(void)
{
  const size_t size = 3u * 1024u * 1024u + 4321u;
  setup(64u * 1024u * 1024u);
  CHECK_EQ(put("b.bin", "the old version", NULL), STORAGE_OK);
  storage_reader_t *old;
  CHECK_EQ(storage_read_open("b.bin", &old, NULL), STORAGE_OK);
  storage_upload_t *a, *b, *c;
  CHECK_EQ(storage_open("a.bin", size, &a), STORAGE_OK);
  CHECK_EQ(storage_open("b.bin", STORAGE_LEN_UNKNOWN, &b), STORAGE_OK);
  CHECK_EQ(storage_open("c.bin", size, &c), STORAGE_OK);
  static uint8_t piece[1500];
  for (size_t at = 0, n; at < size; at += n) {
    n = 1 + (at * 7u) % sizeof piece; /* 1 to 1500 bytes */
    n = n < size - at ? n : size - at;
    for (unsigned seed = 1; seed <= 3; seed++) {
      for (size_t i = 0; i < n; i++) {
        piece[i] = pattern(seed, at + i);
      }
      storage_upload_t *u = seed == 1 ? a : seed == 2 ? b : c;
      CHECK_EQ(storage_write(u, piece, n), STORAGE_OK);
    }
  }
  storage_abort(c);
  bool replaced = false;
  CHECK_EQ(storage_commit(b, &replaced), STORAGE_OK);
  CHECK(replaced);
  CHECK_EQ(storage_commit(a, NULL), STORAGE_OK);
  CHECK(holds_pattern("a.bin", 1, size));
  CHECK(holds_pattern("b.bin", 2, size));
  CHECK(!storage_exists("c.bin", NULL));
  CHECK(!dir_has_prefix(".upload-"));
  char got[32] = {0};
  CHECK_EQ(storage_read(old, got, sizeof got - 1), 15);
  CHECK(strcmp(got, "the old version") == 0);
  storage_read_close(old);
  CHECK_EQ(storage_free(), 64u * 1024u * 1024u - 2 * size);
  teardown();
}

/*
 * A client that pauses mid-upload: the whole chunks it sent reach the
 * temporary file without another call (the writer is woken for each), so
 * what sits in RAM is at most the chunk being filled.
 */
static void test_writer_paused_upload_on_disk(void)
{
  const size_t chunk = 64u * 1024u, size = 3 * chunk + 100;
  setup(8u * 1024u * 1024u);
  storage_upload_t *u;
  CHECK_EQ(storage_open("p.bin", 4 * size, &u), STORAGE_OK);
  static uint8_t piece[1000];
  for (size_t at = 0, n; at < size; at += n) {
    n = size - at < sizeof piece ? size - at : sizeof piece;
    for (size_t i = 0; i < n; i++) {
      piece[i] = pattern(4, at + i);
    }
    CHECK_EQ(storage_write(u, piece, n), STORAGE_OK);
  }
  long long seen = -1;
  for (int i = 0; i < 400 && seen < (long long)(3 * chunk); i++) {
    usleep(5000); /* up to 2 s for the writer thread */
    seen = tmp_size(0);
  }
  CHECK_EQ(seen, (long long)(3 * chunk)); /* the three whole chunks, not the chunk being filled */
  storage_abort(u);
  CHECK(!dir_has_prefix(".upload-"));
  CHECK_EQ(storage_free(), 8u * 1024u * 1024u);
  teardown();
}

int main(void)
{
  RUN(test_capacity_accounting);
  RUN(test_commit_makes_visible);
  RUN(test_invisible_before_commit);
  RUN(test_replace_keeps_old_until_commit);
  RUN(test_abort_restores);
  RUN(test_enospc);
  RUN(test_reservation_at_open);
  RUN(test_write_past_announced_length);
  RUN(test_chunked_runs_out);
  RUN(test_stale_upload_removed);
  RUN(test_same_name_busy);
  RUN(test_slot_exhaustion);
  RUN(test_list_order);
  RUN(test_list_every_file);
  RUN(test_remove);
  RUN(test_reader_survives_replace);
  RUN(test_writer_many_chunks);
  RUN(test_writer_paused_upload_on_disk);
  RUN(test_invalid_names);
  RUN(test_sha_survives_rescan);
  RUN(test_sha_none_without_call);
  RUN(test_sha_reader_keeps_old);
  RUN(test_sha_crash_leaves_none);
  RUN(test_read_seek);
  RUN(test_init_errors);
  RUN(test_latency_zero_never_pends);
  RUN(test_write_pends_then_completes);
  RUN(test_commit_pends_nothing_visible);
  RUN(test_remove_pends);
  RUN(test_abort_pending_upload);
  RUN(test_one_medium_for_all);
  RUN(test_ready_exactly_when_progress);
  RUN(test_queue_full);
  return UNIT_END();
}
