/* fake_storage_mem.c: an in-memory storage.h for fuzz_conn: real uploads, commits and readers, with checks and faults. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "fuzz_conn_fakes.h"
#include "lwip/sys.h"
#include "postern_opts.h"
#include "storage.h"
#include "text.h"

#define FS_FILES 8
#define FS_UPLOADS 2
#define FS_READERS 2
#define FS_DIGESTS 32

typedef struct fs_file {
  bool used;
  char name[POSTERN_NAME_MAX + 1];
  uint8_t *data;
  size_t len;
  bool borrowed; /* data is the caller's (a seed file): never freed, never changed */
  bool has_sha;  /* committed with storage_set_sha256() */
  uint8_t sha[DIGEST_SHA256_LEN];
} fs_file_t;

struct storage_upload {
  char name[POSTERN_NAME_MAX + 1];
  uint64_t announced; /* STORAGE_LEN_UNKNOWN for chunked */
  uint8_t *data;
  size_t len, cap;
  fa_pcb_t *pcb; /* the connection that opened it */
  /* A call on it that answered STORAGE_PENDING: the next one must be its retry (or an abort). */
  bool pend_write, pend_commit;
  uint8_t *pend_data; /* the pending write's bytes */
  size_t pend_len;
  bool has_sha;
  uint8_t sha[DIGEST_SHA256_LEN];
};

struct storage_reader {
  uint8_t *data; /* a snapshot: stays readable if the file is replaced */
  size_t len, pos;
  bool borrowed; /* the file's own bytes, which outlive it: no copy */
  bool has_sha;
  uint8_t sha[DIGEST_SHA256_LEN];
};

static fs_file_t fs_files[FS_FILES];
static storage_upload_t *fs_uploads[FS_UPLOADS];
static int fs_readers;
static uint64_t fs_capacity;
static enum fs_fault fs_fault;
static bool fs_fault_enospc;
static bool fs_listing;
static char fs_digests[FS_DIGESTS][2 * DIGEST_SHA256_LEN + 1];
static int fs_n_digests;
/* The medium's time (fs_pend, storage_poll). */
static unsigned fs_pend_mask; /* kinds that pend while busy */
static bool fs_busy;
static uint32_t fs_busy_until;
static bool fs_pended;        /* a call answered STORAGE_PENDING since the last storage_ready() */
static bool fs_upload_waited; /* an open or a write answered STORAGE_PENDING since fs_reset() */
static bool fs_ready_anyway;
bool fs_in_ready;
uint32_t fs_readies;

/* True (and noted) when a call of this kind must answer STORAGE_PENDING now. */
static bool fs_pends(unsigned kind)
{
  if (fs_busy && (fs_pend_mask & kind) != 0) {
    fs_pended = true;
    fs_upload_waited = fs_upload_waited || kind == FS_PEND_OPEN || kind == FS_PEND_WRITE;
    return true;
  }
  return false;
}

/*
 * After STORAGE_PENDING the next write on the upload must start with the
 * pending bytes (or they with it): none is lost or stored twice. storage.h
 * asks for exactly the same bytes; FUZZ_CONN_SAME_RETRY=1 checks that too
 * (FUZZ_CONN_DEFS='-DFUZZ_CONN_SAME_RETRY=1'). It is off because the core's
 * retry may bring more: received pbufs compacted while the write waited
 * (seed pend-chunked-ready-again), which a backend that keys on its state,
 * as both do, takes as it should.
 */
#ifndef FUZZ_CONN_SAME_RETRY
#define FUZZ_CONN_SAME_RETRY 0
#endif

/* The write after a pending one on u: its retry. */
static void fs_check_retry(storage_upload_t *u, const void *data, size_t len)
{
  size_t n = len < u->pend_len ? len : u->pend_len;
  FUZZ_CHECK(memcmp(data, u->pend_data, n) == 0,
             "the write after a pending write does not start with its bytes: body bytes lost or stored twice");
  FUZZ_CHECK(!FUZZ_CONN_SAME_RETRY || len == u->pend_len,
             "the retry of a pending write has more or fewer bytes (storage.h: the same bytes again)");
  free(u->pend_data);
  u->pend_data = NULL;
  u->pend_write = false;
}

/* Calls from the core's storage_ready() come from no callback: any connection's. */
static bool fs_from(const fa_pcb_t *pcb)
{
  return pcb == fa_current || (fs_in_ready && fa_current == NULL);
}

static bool fs_take_fault(enum fs_fault f)
{
  if (fs_fault == f) {
    fs_fault = FS_FAULT_NONE;
    return true;
  }
  return false;
}

/* Names reaching storage passed the core's checks: no separators, no dot-names, bounded. */
static void fs_check_name(const char *name)
{
  size_t n = strlen(name);
  FUZZ_CHECK(n > 0 && n <= POSTERN_NAME_MAX, "storage name empty or too long");
  FUZZ_CHECK(name[0] != '.', "storage name starts with a dot");
  FUZZ_CHECK(strchr(name, '/') == NULL, "storage name with a slash");
}

static fs_file_t *fs_find(const char *name)
{
  for (int i = 0; i < FS_FILES; i++) {
    if (fs_files[i].used && strcmp(fs_files[i].name, name) == 0) {
      return &fs_files[i];
    }
  }
  return NULL;
}

/* Bytes taken, as storage.h's space contract counts them: files, reservations, chunked bytes written. */
static uint64_t fs_used(void)
{
  uint64_t used = 0;
  for (int i = 0; i < FS_FILES; i++) {
    used += fs_files[i].used ? fs_files[i].len : 0;
  }
  for (int i = 0; i < FS_UPLOADS; i++) {
    storage_upload_t *u = fs_uploads[i];
    if (u != NULL) {
      used += u->announced != STORAGE_LEN_UNKNOWN ? u->announced : u->len;
    }
  }
  return used;
}

static int fs_upload_slot(storage_upload_t *u)
{
  FUZZ_CHECK(u != NULL, "storage call on a NULL upload");
  for (int i = 0; i < FS_UPLOADS; i++) {
    if (fs_uploads[i] == u) {
      return i;
    }
  }
  FUZZ_CHECK(0, "storage call on an upload that is not open (use after commit/abort)");
  return -1;
}

void fs_reset(uint64_t capacity)
{
  for (int i = 0; i < FS_FILES; i++) {
    if (!fs_files[i].borrowed) {
      free(fs_files[i].data);
    }
    memset(&fs_files[i], 0, sizeof fs_files[i]);
  }
  fs_check_idle();
  fs_capacity = capacity;
  fs_fault = FS_FAULT_NONE;
  fs_n_digests = 0;
  fs_upload_waited = false;
  fs_pend(0, 0);
  fs_pended = false;
}

bool fs_uploads_waited(void)
{
  return fs_upload_waited;
}

void fs_pend(unsigned mask, uint32_t until_ms)
{
  fs_pend_mask = mask;
  fs_busy = mask != 0;
  fs_busy_until = until_ms;
  fs_ready_anyway = false;
}

void fs_poll(bool done, bool anyway)
{
  if (done) {
    fs_busy = false;
  }
  fs_ready_anyway = anyway;
  storage_poll();
}

/* The medium's step: its busy time ends at fs_busy_until; storage_ready() when a call pended and may go on. */
uint32_t storage_poll(void)
{
  FUZZ_CHECK(!fs_in_ready && fa_current == NULL, "storage_poll from inside a callback or storage_ready");
  uint32_t now = sys_now();
  if (fs_busy && (int32_t)(now - fs_busy_until) >= 0) {
    fs_busy = false;
  }
  if (fs_pended && (!fs_busy || fs_ready_anyway)) {
    fs_pended = false;
    fs_ready_anyway = false;
    fs_in_ready = true;
    fs_readies++;
    fa_clock_reads = 0; /* the spin guard counts in storage_ready() too */
    storage_ready();
    fs_in_ready = false;
  }
  return fs_busy ? fs_busy_until - now : STORAGE_POLL_IDLE;
}

void fs_add(const char *name, const uint8_t *data, size_t len)
{
  for (int i = 0; i < FS_FILES; i++) {
    if (!fs_files[i].used) {
      fs_files[i].used = true;
      strcpy(fs_files[i].name, name);
      /* Borrowed, not copied: a 20 KB copy per input (and per download) cost
       * more than many whole inputs, in ASan's allocator and fresh pages. */
      fs_files[i].data = (uint8_t *)data;
      fs_files[i].len = len;
      fs_files[i].borrowed = true;
      return;
    }
  }
}

void fs_inject(enum fs_fault f, bool enospc)
{
  fs_fault = f;
  fs_fault_enospc = enospc;
}

void fs_check_idle(void)
{
  for (int i = 0; i < FS_UPLOADS; i++) {
    FUZZ_CHECK(fs_uploads[i] == NULL, "an upload is still open after every connection closed");
  }
  FUZZ_CHECK(fs_readers == 0, "a reader is still open after every connection closed");
}

bool fs_committed_digest(const char *hex)
{
  for (int i = 0; i < fs_n_digests; i++) {
    if (memcmp(fs_digests[i], hex, 2 * DIGEST_SHA256_LEN) == 0) {
      return true;
    }
  }
  return false;
}

/* ---- storage.h ---------------------------------------------------------------- */

uint64_t storage_capacity(void)
{
  return fs_capacity;
}

uint64_t storage_free(void)
{
  uint64_t used = fs_used();
  return used >= fs_capacity ? 0 : fs_capacity - used;
}

bool storage_exists(const char *name, uint64_t *size)
{
  fs_file_t *f = fs_find(name);
  if (f != NULL && size != NULL) {
    *size = f->len;
  }
  return f != NULL;
}

int storage_open(const char *name, uint64_t length, storage_upload_t **out)
{
  FUZZ_CHECK(!fs_listing, "storage_open during storage_list");
  fs_check_name(name);
  FUZZ_CHECK(fa_current != NULL || fs_in_ready, "storage_open outside a connection callback or storage_ready");
  if (fs_pends(FS_PEND_OPEN)) {
    return STORAGE_PENDING; /* *out untouched, nothing reserved */
  }
  *out = NULL;
  if (fs_take_fault(FS_FAULT_OPEN)) {
    return fs_fault_enospc ? STORAGE_ENOSPC : STORAGE_EIO;
  }
  int slot = -1;
  for (int i = 0; i < FS_UPLOADS; i++) {
    if (fs_uploads[i] != NULL && strcmp(fs_uploads[i]->name, name) == 0) {
      return STORAGE_EBUSY;
    }
    if (fs_uploads[i] == NULL && slot < 0) {
      slot = i;
    }
  }
  if (slot < 0) {
    return STORAGE_EBUSY;
  }
  /*
   * A file slot for every upload in progress, replacements included (the old
   * version may be removed meanwhile), like the flash index: an admitted
   * upload's commit never runs out of room.
   */
  int files = 0;
  for (int i = 0; i < FS_FILES; i++) {
    files += fs_files[i].used;
  }
  for (int i = 0; i < FS_UPLOADS; i++) {
    files += fs_uploads[i] != NULL;
  }
  if (fs_find(name) == NULL && files >= FS_FILES) {
    return STORAGE_ENOSPC;
  }
  /* The reservation: fs_used() counts the announced length from here on. */
  if (length != STORAGE_LEN_UNKNOWN && length > storage_free()) {
    return STORAGE_ENOSPC;
  }
  storage_upload_t *u = calloc(1, sizeof *u);
  strcpy(u->name, name);
  u->announced = length;
  u->pcb = fa_current; /* NULL from storage_ready(): known at its first write from a callback, if any */
  fs_uploads[slot] = u;
  *out = u;
  return STORAGE_OK;
}

int storage_write(storage_upload_t *u, const void *data, size_t len)
{
  fs_upload_slot(u);
  if (u->pcb == NULL) {
    u->pcb = fa_current;
  }
  FUZZ_CHECK(fs_from(u->pcb), "storage_write from another connection's callback");
  FUZZ_CHECK(len > 0 && data != NULL, "storage_write of nothing");
  FUZZ_CHECK(!u->pend_commit, "storage_write after a pending commit");
  if (u->pend_write) {
    fs_check_retry(u, data, len);
  }
  if (fs_pends(FS_PEND_WRITE)) {
    u->pend_write = true;
    u->pend_data = malloc(len);
    memcpy(u->pend_data, data, len);
    u->pend_len = len;
    return STORAGE_PENDING; /* nothing kept */
  }
  if (u->announced != STORAGE_LEN_UNKNOWN) {
    /* A backend refuses this with STORAGE_ENOSPC; the core must never try it. */
    FUZZ_CHECK(u->len + len <= u->announced, "more body bytes written than Content-Length announced");
  }
  if (fs_take_fault(FS_FAULT_WRITE)) {
    return fs_fault_enospc ? STORAGE_ENOSPC : STORAGE_EIO;
  }
  if (u->announced == STORAGE_LEN_UNKNOWN && len > storage_free()) {
    return STORAGE_ENOSPC;
  }
  if (u->len + len > u->cap) {
    size_t cap = u->cap ? u->cap : 256;
    while (cap < u->len + len) {
      cap *= 2;
    }
    u->data = realloc(u->data, cap);
    u->cap = cap;
  }
  memcpy(u->data + u->len, data, len);
  u->len += len;
  return STORAGE_OK;
}

/* True when a[0..n) is a subsequence of b[0..m). */
static bool fs_subsequence(const uint8_t *a, size_t n, const uint8_t *b, size_t m)
{
  size_t i = 0;
  for (size_t j = 0; i < n && j < m; j++) {
    i += a[i] == b[j];
  }
  return i == n;
}

static void fs_free_upload(storage_upload_t *u)
{
  fs_uploads[fs_upload_slot(u)] = NULL;
  free(u->pend_data);
  free(u->data);
  free(u);
}

int storage_commit(storage_upload_t *u, bool *replaced)
{
  fs_upload_slot(u);
  if (u->pcb == NULL) {
    u->pcb = fa_current;
  }
  FUZZ_CHECK(u->pcb == NULL || fs_from(u->pcb), "storage_commit from another connection's callback");
  FUZZ_CHECK(!u->pend_write, "storage_commit while a write is pending (its bytes would be lost)");
  if (u->announced != STORAGE_LEN_UNKNOWN) {
    FUZZ_CHECK(u->len == u->announced, "commit of an upload shorter than its Content-Length");
  }
  /* The stored bytes came from this connection, in order: contiguous for
   * Content-Length, a subsequence (chunk framing removed) for chunked. An
   * upload opened and written only from storage_ready() has no known
   * connection: its bytes came so from one of them. */
  bool from_input = u->len == 0;
  for (int k = u->pcb != NULL ? (int)(u->pcb - fa_pcbs) : 0; !from_input && k < fa_opened; k++) {
    fa_pcb_t *p = &fa_pcbs[k];
    if (p->delivered > FA_REC_MAX) {
      from_input = true; /* not all of its input recorded: no check */
    } else if (u->announced != STORAGE_LEN_UNKNOWN) {
      from_input = memmem(p->in, p->in_len, u->data, u->len) != NULL;
    } else {
      from_input = fs_subsequence(u->data, u->len, p->in, p->in_len);
    }
    if (u->pcb != NULL) {
      break;
    }
  }
  FUZZ_CHECK(from_input, u->announced != STORAGE_LEN_UNKNOWN ? "committed bytes are not the request's body"
                                                             : "committed bytes are not the chunked body");
  if (fs_pends(FS_PEND_COMMIT)) {
    u->pend_commit = true;
    return STORAGE_PENDING; /* u stays the caller's, nothing visible */
  }
  u->pend_commit = false;
  *replaced = false;
  if (fs_take_fault(FS_FAULT_COMMIT)) {
    fs_free_upload(u);
    return STORAGE_EIO;
  }
  fs_file_t *f = fs_find(u->name);
  if (f == NULL) {
    for (int i = 0; i < FS_FILES && f == NULL; i++) {
      if (!fs_files[i].used) {
        f = &fs_files[i];
      }
    }
    FUZZ_CHECK(f != NULL, "no file slot at commit although open admitted the upload");
    f->used = true;
    strcpy(f->name, u->name);
  } else {
    *replaced = true;
    if (!f->borrowed) {
      free(f->data);
    }
  }
  f->borrowed = false;
  f->data = malloc(u->len ? u->len : 1);
  if (u->len > 0) {
    memcpy(f->data, u->data, u->len);
  }
  f->len = u->len;
  f->has_sha = u->has_sha;
  if (u->has_sha) {
    uint8_t sum[DIGEST_SHA256_LEN];
    digest_sha256(f->data, f->len, sum);
    FUZZ_CHECK(memcmp(sum, u->sha, sizeof sum) == 0, "storage_set_sha256 gave a digest that is not the content's");
    memcpy(f->sha, u->sha, sizeof f->sha);
  }
  if (fs_n_digests < FS_DIGESTS) {
    uint8_t sum[DIGEST_SHA256_LEN];
    digest_sha256(f->data, f->len, sum);
    text_hex(sum, sizeof sum, fs_digests[fs_n_digests++]);
  }
  fs_free_upload(u);
  return STORAGE_OK;
}

void storage_abort(storage_upload_t *u)
{
  if (u == NULL) {
    return;
  }
  fs_free_upload(u);
}

int storage_remove(const char *name)
{
  FUZZ_CHECK(!fs_listing, "storage_remove during storage_list");
  fs_check_name(name);
  if (fs_pends(FS_PEND_REMOVE)) {
    return STORAGE_PENDING; /* still there */
  }
  if (fs_take_fault(FS_FAULT_REMOVE)) {
    return STORAGE_EIO;
  }
  fs_file_t *f = fs_find(name);
  if (f == NULL) {
    return STORAGE_ENOENT;
  }
  if (!f->borrowed) {
    free(f->data);
  }
  memset(f, 0, sizeof *f);
  return STORAGE_OK;
}

int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size)
{
  fs_check_name(name);
  *out = NULL;
  if (fs_take_fault(FS_FAULT_OPEN)) {
    return STORAGE_EIO;
  }
  fs_file_t *f = fs_find(name);
  if (f == NULL) {
    return STORAGE_ENOENT;
  }
  if (fs_readers >= FS_READERS) {
    return STORAGE_EBUSY;
  }
  storage_reader_t *r = calloc(1, sizeof *r);
  r->borrowed = f->borrowed;
  if (r->borrowed) {
    r->data = f->data;
  } else {
    r->data = malloc(f->len ? f->len : 1);
    memcpy(r->data, f->data, f->len);
  }
  r->len = f->len;
  r->has_sha = f->has_sha;
  memcpy(r->sha, f->sha, sizeof r->sha);
  fs_readers++;
  *size = f->len;
  *out = r;
  return STORAGE_OK;
}

long storage_read(storage_reader_t *r, void *buf, size_t len)
{
  FUZZ_CHECK(r != NULL && buf != NULL, "storage_read of NULL");
  if (fs_pends(FS_PEND_READ)) {
    return STORAGE_PENDING; /* nothing read, the position stays */
  }
  if (fs_take_fault(FS_FAULT_READ)) {
    return STORAGE_EIO;
  }
  size_t n = r->len - r->pos < len ? r->len - r->pos : len;
  memcpy(buf, r->data + r->pos, n);
  r->pos += n;
  return (long)n;
}

int storage_read_seek(storage_reader_t *r, uint64_t offset)
{
  FUZZ_CHECK(r != NULL, "storage_read_seek of NULL");
  if (offset > r->len) {
    return STORAGE_EINVAL;
  }
  r->pos = (size_t)offset;
  return STORAGE_OK;
}

void storage_set_sha256(storage_upload_t *u, const uint8_t sha256[32])
{
  fs_upload_slot(u);
  FUZZ_CHECK(!u->pend_commit, "storage_set_sha256 after the commit began");
  memcpy(u->sha, sha256, sizeof u->sha);
  u->has_sha = true;
}

bool storage_sha256(const char *name, uint8_t out[32])
{
  fs_check_name(name);
  fs_file_t *f = fs_find(name);
  if (f == NULL || !f->has_sha) {
    return false;
  }
  memcpy(out, f->sha, sizeof f->sha);
  return true;
}

bool storage_read_sha256(storage_reader_t *r, uint8_t out[32])
{
  if (r->has_sha) {
    memcpy(out, r->sha, sizeof r->sha);
  }
  return r->has_sha;
}

void storage_read_close(storage_reader_t *r)
{
  if (r == NULL) {
    return;
  }
  FUZZ_CHECK(fs_readers > 0, "storage_read_close with no reader open");
  fs_readers--;
  if (!r->borrowed) {
    free(r->data);
  }
  free(r); /* ASan flags a second close or a read after it */
}

static int fs_cmp(const void *a, const void *b)
{
  const fs_file_t *x = *(const fs_file_t *const *)a, *y = *(const fs_file_t *const *)b;
  return strcmp(x->name, y->name);
}

int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx)
{
  FUZZ_CHECK(!fs_listing, "storage_list called inside storage_list");
  fs_file_t *order[FS_FILES];
  int n = 0;
  for (int i = 0; i < FS_FILES; i++) {
    if (fs_files[i].used) {
      order[n++] = &fs_files[i];
    }
  }
  qsort(order, (size_t)n, sizeof order[0], fs_cmp);
  int rc = 0;
  fs_listing = true;
  for (int i = 0; i < n && rc == 0; i++) {
    char name[POSTERN_NAME_MAX + 1];
    strcpy(name, order[i]->name); /* valid during the call only */
    rc = fn(ctx, name, order[i]->len);
  }
  fs_listing = false;
  return rc;
}
