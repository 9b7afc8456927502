/* storage_sd.c: storage.h on a block device (the SD card): each file a few runs of clusters, made visible by one commit record sector written last; the card work runs in storage_poll(). */
#include "storage_sd.h"

#include <string.h>

#include "log.h"
#include "postern_opts.h"
#include "storage.h"

/*
 * Why not the flash store's design. Flash must be erased a block at a time
 * before it is programmed, so storage_flash.c chains erase blocks and
 * programs small records into blocks already in use. An SD card has no
 * erase to manage (its controller remaps sectors) and writes each 512-byte
 * sector whole or not at all, so a commit can be one whole sector:
 *
 *   - An upload writes its data into clusters no record refers to.
 *   - Its commit writes one record sector (name, size, SHA-256, the runs of
 *     clusters, a sequence number, a CRC-32) into a free slot of the record
 *     table: that single sector write is the commit.
 *   - The replaced version's slot is then written with zeros, and only once
 *     that is done do its clusters count as free. A removal does the same.
 *
 * At boot every slot is read; a slot without a valid record is free, a
 * cluster no valid record names is free. A power cut leaves at most two
 * records of one name (between a commit and the zeroing of the replaced
 * version): the higher sequence number wins and the other is zeroed then.
 * Nothing is ever partly visible: an unfinished upload has no record.
 *
 * Time (storage.h's time contract). The calls change only what is kept in
 * RAM and queue card work; storage_poll() drives one transfer at a time, a
 * bounded step per call (sd_spi.c: one block, or a few bytes of busy
 * polling). Uploads stage their bytes in a shared pool of sector buffers
 * (SD_BUFS, enough for every upload to hold a partial sector while one
 * stores a whole STORAGE_SD_WRITE_MAX write); a write that finds too few
 * free answers STORAGE_PENDING. Readers share a one-sector cache. Every
 * file's runs of clusters are kept in RAM, so only data moves at run time.
 * Work order: zeroing (removals, replaced versions), then full data
 * sectors, then commit records, then reads.
 */

#define SD_SECTOR BLOCKDEV_SECTOR
#define SD_MAGIC_SUPER "PSTNSD01"
#define SD_MAGIC_RECORD 0x31434552u /* "REC1" */
#define SD_NONE 0xFFu
#define SD_NAME_AREA 80u
#define SD_BUFS (POSTERN_MAX_CONNS - 1 + (511u + STORAGE_SD_WRITE_MAX + 511u) / 512u)
#define SD_RETIRE_MAX (2 * POSTERN_MAX_CONNS + 2)

_Static_assert(POSTERN_NAME_MAX < SD_NAME_AREA, "names fit the record with their NUL");
_Static_assert(STORAGE_SD_MAX_CLUSTERS <= 0xFFFFu, "cluster numbers are 16 bits");
_Static_assert(STORAGE_SD_SLOTS >= STORAGE_SD_MAX_FILES + SD_RETIRE_MAX + POSTERN_MAX_CONNS,
               "a slot for every file, every version waiting to be zeroed and every commit");
_Static_assert(SD_BUFS < SD_NONE, "buffer numbers fit a byte");

typedef struct sd_ext {
  uint16_t start, count; /* clusters */
} sd_ext_t;

/* The superblock (sector 0). */
typedef struct sd_super {
  char magic[8];
  uint32_t version, sectors, cluster_sectors;
  uint32_t crc; /* of the bytes before it */
} sd_super_t;

/* A commit record: one sector, its CRC-32 in the last four bytes. */
typedef struct sd_record {
  uint32_t magic, seq, size;
  uint8_t slot, n_ext, has_sha, pad;
  char name[SD_NAME_AREA];
  uint8_t sha[32];
  sd_ext_t ext[STORAGE_SD_EXTENTS];
} sd_record_t;
_Static_assert(sizeof(sd_record_t) <= SD_SECTOR - 4, "a record fits a sector with its CRC");

/* One version of a file on the card: its slot and its clusters. */
typedef struct sd_version {
  uint8_t slot;
  uint8_t n_ext;
  uint8_t readers; /* readers that have it open */
  sd_ext_t ext[STORAGE_SD_EXTENTS];
} sd_version_t;

/* Removal of a committed file: its slot's zeroing queued, written, or failed. */
enum { SD_KILL_NONE, SD_KILL_QUEUED, SD_KILL_DONE, SD_KILL_FAILED };

typedef struct sd_file {
  char name[POSTERN_NAME_MAX + 1];
  uint8_t kill; /* SD_KILL_* */
  bool has_sha;
  uint32_t size, seq;
  uint8_t sha[32];
  sd_version_t v;
} sd_file_t;

/* Commit of an upload: its record waiting, written, or failed. */
enum { SD_C_NONE, SD_C_WAIT, SD_C_WRITING, SD_C_DONE, SD_C_FAILED };

struct storage_upload {
  bool used;
  bool failed; /* the card failed under it: write and commit answer STORAGE_EIO */
  bool has_sha;
  uint8_t commit; /* SD_C_* */
  uint8_t slot;   /* record slot, taken when the commit is queued */
  uint8_t n_ext;
  uint8_t nbufs;         /* staged sector buffers, oldest first */
  uint8_t bufs[SD_BUFS]; /* indices into sd_bufs */
  char name[POSTERN_NAME_MAX + 1];
  uint64_t length;   /* announced at open, or STORAGE_LEN_UNKNOWN */
  uint32_t written;  /* bytes accepted */
  uint32_t clusters; /* clusters taken */
  uint32_t seq;
  uint8_t sha[32];
  sd_ext_t ext[STORAGE_SD_EXTENTS];
};

struct storage_reader {
  bool used;
  bool has_sha;
  uint8_t slot;
  uint8_t n_ext;
  uint32_t size, pos;
  uint8_t sha[32];
  sd_ext_t ext[STORAGE_SD_EXTENTS];
};

/* The transfer in flight. */
enum { SD_OP_NONE, SD_OP_ZERO, SD_OP_FLUSH, SD_OP_COMMIT, SD_OP_FILL };

static const blockdev_t *sd_dev;
static storage_sd_state_t sd_state = STORAGE_SD_NO_CARD;
static uint32_t sd_cs; /* sectors per cluster */
static uint32_t sd_nclusters, sd_free_clusters, sd_cursor;
static uint8_t sd_bitmap[STORAGE_SD_MAX_CLUSTERS / 8]; /* clusters taken */
static uint8_t sd_slots[STORAGE_SD_SLOTS / 8];         /* slots holding (or about to hold) a record */
static uint32_t sd_next_seq;
static sd_file_t sd_files[STORAGE_SD_MAX_FILES]; /* sorted by name */
static int sd_nfiles;
static sd_version_t sd_retired[POSTERN_MAX_CONNS]; /* replaced or removed versions readers still have open */
static sd_version_t sd_retire_q[SD_RETIRE_MAX];    /* versions whose slot is to be zeroed, then their clusters freed */
static int sd_nretire;
static struct storage_upload sd_uploads[POSTERN_MAX_CONNS];
static struct storage_reader sd_readers[POSTERN_MAX_CONNS];
static uint8_t sd_bufs[SD_BUFS][SD_SECTOR] __attribute__((aligned(4)));
static uint16_t sd_buf_fill[SD_BUFS];
static uint32_t sd_buf_sector[SD_BUFS]; /* the sector of its file it holds */
static uint8_t sd_buf_owner[SD_BUFS];   /* upload slot, or SD_NONE: free */
static uint8_t sd_cache[SD_SECTOR] __attribute__((aligned(4)));
static uint32_t sd_cache_lba = UINT32_MAX;
static uint8_t sd_work[SD_SECTOR] __attribute__((aligned(4))); /* the record being written */
static const uint8_t sd_zeros[SD_SECTOR];
static bool sd_want_ready;
static bool sd_want_fill; /* a reader waits for a sector */
static uint32_t sd_fill_lba;

static struct {
  uint8_t op;  /* SD_OP_* */
  uint8_t arg; /* upload slot (flush, commit), buffer (flush), or retire queue index (zero) */
  uint8_t buf;
  uint32_t lba;
} sd_eng;

/* ---- Helpers ------------------------------------------------------------ */

/** CRC-32 (IEEE 802.3, reflected), bit by bit: records are small. */
uint32_t storage_sd_crc32(const void *data, size_t len)
{
  const uint8_t *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) {
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
  }
  return ~c;
}

static bool sd_bit(const uint8_t *map, uint32_t i)
{
  return (map[i / 8] >> (i % 8)) & 1u;
}

static void sd_bit_set(uint8_t *map, uint32_t i, bool on)
{
  if (on) {
    map[i / 8] |= (uint8_t)(1u << (i % 8));
  } else {
    map[i / 8] &= (uint8_t) ~(1u << (i % 8));
  }
}

static void sd_ext_mark(const sd_ext_t *ext, int n, bool taken)
{
  for (int e = 0; e < n; e++) {
    for (uint32_t c = ext[e].start; c < (uint32_t)ext[e].start + ext[e].count; c++) {
      sd_bit_set(sd_bitmap, c, taken);
    }
    if (taken) {
      sd_free_clusters -= ext[e].count;
    } else {
      sd_free_clusters += ext[e].count;
    }
  }
}

static uint32_t sd_cluster_bytes(void)
{
  return sd_cs * SD_SECTOR;
}

static uint32_t sd_clusters_for(uint64_t bytes)
{
  uint64_t cb = sd_cluster_bytes();
  return (uint32_t)((bytes + cb - 1u) / cb);
}

/*
 * Takes `count` more clusters for a file whose runs are ext[0..*n): the one
 * after its last run first, else the next free run from the cursor. Returns
 * false (nothing taken) when they do not fit in the free clusters or in
 * STORAGE_SD_EXTENTS runs.
 */
static bool sd_take(sd_ext_t *ext, uint8_t *n, uint32_t count)
{
  if (count > sd_free_clusters) {
    return false;
  }
  sd_ext_t tmp[STORAGE_SD_EXTENTS];
  uint8_t tn = *n;
  memcpy(tmp, ext, sizeof tmp);
  uint32_t left = count;
  uint32_t look = sd_cursor;
  while (left > 0) {
    if (tn > 0) {
      uint32_t next = (uint32_t)tmp[tn - 1].start + tmp[tn - 1].count;
      if (next < sd_nclusters && !sd_bit(sd_bitmap, next) && tmp[tn - 1].count < 0xFFFFu) {
        sd_bit_set(sd_bitmap, next, true);
        tmp[tn - 1].count++;
        left--;
        continue;
      }
    }
    if (tn == STORAGE_SD_EXTENTS) {
      break;
    }
    uint32_t i = 0;
    while (i < sd_nclusters && sd_bit(sd_bitmap, (look + i) % sd_nclusters)) {
      i++;
    }
    uint32_t c = (look + i) % sd_nclusters;
    sd_bit_set(sd_bitmap, c, true);
    tmp[tn].start = (uint16_t)c;
    tmp[tn].count = 1;
    tn++;
    left--;
    look = c + 1u;
  }
  if (left > 0) {
    /* Give back what this call took: the growth of the old last run and the new runs. */
    for (uint8_t e = 0; e < tn; e++) {
      uint32_t from = tmp[e].start, to = (uint32_t)tmp[e].start + tmp[e].count;
      if (e + 1u == *n) {
        from = (uint32_t)ext[e].start + ext[e].count;
      } else if (e + 1u < *n) {
        continue;
      }
      for (uint32_t c = from; c < to; c++) {
        sd_bit_set(sd_bitmap, c, false);
      }
    }
    return false;
  }
  sd_free_clusters -= count;
  sd_cursor = tn > 0 ? ((uint32_t)tmp[tn - 1].start + tmp[tn - 1].count) % sd_nclusters : sd_cursor;
  memcpy(ext, tmp, sizeof tmp);
  *n = tn;
  return true;
}

/* The card sector of sector `s` of a file with these runs (UINT32_MAX past them). */
static uint32_t sd_lba_of(const sd_ext_t *ext, int n, uint32_t s)
{
  uint32_t c = s / sd_cs;
  for (int e = 0; e < n; e++) {
    if (c < ext[e].count) {
      return STORAGE_SD_LBA_DATA + ((uint32_t)ext[e].start + c) * sd_cs + s % sd_cs;
    }
    c -= ext[e].count;
  }
  return UINT32_MAX;
}

static int sd_slot_take(void)
{
  for (uint32_t s = 0; s < STORAGE_SD_SLOTS; s++) {
    if (!sd_bit(sd_slots, s)) {
      sd_bit_set(sd_slots, s, true);
      return (int)s;
    }
  }
  return -1;
}

static int sd_find(const char *name)
{
  for (int i = 0; i < sd_nfiles; i++) {
    if (strcmp(sd_files[i].name, name) == 0) {
      return i;
    }
  }
  return -1;
}

/* A visible file: committed and not being removed. */
static sd_file_t *sd_visible(const char *name)
{
  int i = sd_find(name);
  return i >= 0 && sd_files[i].kill != SD_KILL_DONE ? &sd_files[i] : NULL;
}

static bool sd_name_ok(const char *name)
{
  size_t n = strlen(name);
  return n > 0 && n <= POSTERN_NAME_MAX && strchr(name, '/') == NULL;
}

static bool sd_ready_card(void)
{
  return sd_state == STORAGE_SD_READY;
}

/* Queues a version for zeroing (its slot) and freeing (its clusters). */
static void sd_retire(const sd_version_t *v)
{
  if (sd_nretire == SD_RETIRE_MAX) {
    /* Cannot happen (the queue holds every version that can wait); the clusters stay taken until reboot. */
    log_line("storage_sd: retire queue full; slot %u kept until reboot", (unsigned)v->slot);
    return;
  }
  sd_retire_q[sd_nretire++] = *v;
  sd_retire_q[sd_nretire - 1].readers = 0;
}

/* A version leaves the index: zeroed now, or when its last reader closes it. */
static void sd_version_drop(const sd_version_t *v, bool zero)
{
  if (v->readers == 0) {
    if (zero) {
      sd_retire(v);
    } else {
      sd_ext_mark(v->ext, v->n_ext, false);
      sd_bit_set(sd_slots, v->slot, false);
    }
    return;
  }
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (sd_retired[i].readers == 0) {
      sd_retired[i] = *v;
      if (!zero) {
        sd_retired[i].slot |= 0x80u; /* zeroed already: free only */
      }
      return;
    }
  }
  log_line("storage_sd: no room for a retired version; slot %u kept until reboot", (unsigned)v->slot);
}

static void sd_file_remove_at(int i)
{
  memmove(&sd_files[i], &sd_files[i + 1], (size_t)(sd_nfiles - i - 1) * sizeof sd_files[0]);
  sd_nfiles--;
}

/* Inserts a file in name order; returns its index (room checked by the caller). */
static int sd_file_insert(const char *name)
{
  int i = 0;
  while (i < sd_nfiles && strcmp(sd_files[i].name, name) < 0) {
    i++;
  }
  memmove(&sd_files[i + 1], &sd_files[i], (size_t)(sd_nfiles - i) * sizeof sd_files[0]);
  sd_nfiles++;
  memset(&sd_files[i], 0, sizeof sd_files[i]);
  strcpy(sd_files[i].name, name);
  return i;
}

static int sd_pending(void)
{
  sd_want_ready = true;
  return STORAGE_PENDING;
}

/* ---- Sector buffers ------------------------------------------------------ */

static int sd_bufs_free(void)
{
  int n = 0;
  for (uint32_t b = 0; b < SD_BUFS; b++) {
    n += sd_buf_owner[b] == SD_NONE;
  }
  return n;
}

static uint8_t sd_buf_take(uint8_t owner, uint32_t sector)
{
  for (uint8_t b = 0; b < SD_BUFS; b++) {
    if (sd_buf_owner[b] == SD_NONE) {
      sd_buf_owner[b] = owner;
      sd_buf_fill[b] = 0;
      sd_buf_sector[b] = sector;
      return b;
    }
  }
  return SD_NONE;
}

/* Frees an upload's buffers (those in flight are freed when their write ends). */
static void sd_upload_free_bufs(struct storage_upload *u)
{
  for (int i = 0; i < u->nbufs; i++) {
    uint8_t b = u->bufs[i];
    if (!(sd_eng.op == SD_OP_FLUSH && sd_eng.buf == b)) {
      sd_buf_owner[b] = SD_NONE;
    }
  }
  u->nbufs = 0;
}

/* ---- The engine ------------------------------------------------------------ */

static void sd_upload_fail(struct storage_upload *u)
{
  u->failed = true;
  sd_upload_free_bufs(u);
}

/* Ends the transfer in flight with result rc (0: done). */
static void sd_complete(int rc)
{
  uint8_t op = sd_eng.op;
  sd_eng.op = SD_OP_NONE;
  switch (op) {
  case SD_OP_ZERO: {
    sd_version_t v = sd_retire_q[0];
    memmove(&sd_retire_q[0], &sd_retire_q[1], (size_t)(sd_nretire - 1) * sizeof sd_retire_q[0]);
    sd_nretire--;
    if (rc != 0) {
      log_line("storage_sd: zeroing slot %u failed; its clusters stay taken until reboot", (unsigned)v.slot);
      for (int i = 0; i < sd_nfiles; i++) {
        if (sd_files[i].kill == SD_KILL_QUEUED && sd_files[i].v.slot == v.slot) {
          sd_files[i].kill = SD_KILL_FAILED;
        }
      }
      break;
    }
    /* A removal waiting on this slot is done; otherwise this was a replaced version. */
    for (int i = 0; i < sd_nfiles; i++) {
      if (sd_files[i].kill == SD_KILL_QUEUED && sd_files[i].v.slot == v.slot) {
        sd_files[i].kill = SD_KILL_DONE;
        return;
      }
    }
    sd_ext_mark(v.ext, v.n_ext, false);
    sd_bit_set(sd_slots, v.slot, false);
    break;
  }
  case SD_OP_FLUSH: {
    struct storage_upload *u = &sd_uploads[sd_eng.arg];
    uint8_t b = sd_eng.buf;
    bool owned = u->used && u->nbufs > 0 && u->bufs[0] == b && sd_buf_owner[b] == sd_eng.arg;
    if (owned) {
      memmove(&u->bufs[0], &u->bufs[1], (size_t)(u->nbufs - 1));
      u->nbufs--;
      if (rc != 0) {
        sd_upload_fail(u);
      }
    }
    sd_buf_owner[b] = SD_NONE;
    break;
  }
  case SD_OP_COMMIT: {
    struct storage_upload *u = &sd_uploads[sd_eng.arg];
    if (u->used && u->commit == SD_C_WRITING) {
      u->commit = rc == 0 ? SD_C_DONE : SD_C_FAILED;
    } else {
      /* Aborted while its record was written: zero it again (a failed write may have landed too). */
      const sd_record_t *rec = (const sd_record_t *)sd_work;
      sd_version_t v = {.slot = (uint8_t)(sd_eng.lba - STORAGE_SD_LBA_RECORDS), .n_ext = rec->n_ext};
      memcpy(v.ext, rec->ext, sizeof v.ext);
      sd_retire(&v);
    }
    break;
  }
  case SD_OP_FILL:
    sd_cache_lba = rc == 0 ? sd_eng.lba : UINT32_MAX;
    if (rc != 0) {
      log_line("storage_sd: reading sector %lu failed", (unsigned long)sd_eng.lba);
    }
    break;
  default:
    break;
  }
}

static bool sd_start(uint8_t op, bool write, uint32_t lba, const void *buf)
{
  sd_eng.op = op;
  sd_eng.lba = lba;
  if ((write && sd_cache_lba == lba) || op == SD_OP_FILL) {
    sd_cache_lba = UINT32_MAX; /* the cache is being overwritten, or its sector is */
  }
  if (sd_dev->start(write, lba, 1, (void *)(uintptr_t)buf, SD_SECTOR) != 0) {
    sd_complete(-1);
    return false;
  }
  return true;
}

/* Builds the record of upload u into sd_work. */
static void sd_build_record(const struct storage_upload *u)
{
  sd_record_t *rec = (sd_record_t *)sd_work;
  memset(sd_work, 0, sizeof sd_work);
  rec->magic = SD_MAGIC_RECORD;
  rec->seq = u->seq;
  rec->size = u->written;
  rec->slot = u->slot;
  rec->n_ext = u->n_ext;
  rec->has_sha = u->has_sha;
  strcpy(rec->name, u->name);
  memcpy(rec->sha, u->sha, sizeof rec->sha);
  memcpy(rec->ext, u->ext, sizeof rec->ext);
  uint32_t crc = storage_sd_crc32(sd_work, SD_SECTOR - 4);
  memcpy(sd_work + SD_SECTOR - 4, &crc, 4);
}

/* Starts the next transfer, most urgent first; false when there is none. */
static bool sd_next(void)
{
  if (sd_nretire > 0) {
    return sd_start(SD_OP_ZERO, true, STORAGE_SD_LBA_RECORDS + sd_retire_q[0].slot, sd_zeros);
  }
  for (uint8_t s = 0; s < POSTERN_MAX_CONNS; s++) {
    struct storage_upload *u = &sd_uploads[s];
    if (!u->used || u->failed || u->nbufs == 0) {
      continue;
    }
    uint8_t b = u->bufs[0];
    bool full = sd_buf_fill[b] == SD_SECTOR;
    if (full || u->commit == SD_C_WAIT) {
      if (!full) {
        memset(sd_bufs[b] + sd_buf_fill[b], 0, SD_SECTOR - sd_buf_fill[b]);
      }
      uint32_t lba = sd_lba_of(u->ext, u->n_ext, sd_buf_sector[b]);
      if (lba == UINT32_MAX) {
        sd_upload_fail(u);
        continue;
      }
      sd_eng.arg = s;
      sd_eng.buf = b;
      return sd_start(SD_OP_FLUSH, true, lba, sd_bufs[b]);
    }
  }
  for (uint8_t s = 0; s < POSTERN_MAX_CONNS; s++) {
    struct storage_upload *u = &sd_uploads[s];
    if (u->used && !u->failed && u->commit == SD_C_WAIT && u->nbufs == 0) {
      sd_build_record(u);
      u->commit = SD_C_WRITING;
      sd_eng.arg = s;
      return sd_start(SD_OP_COMMIT, true, STORAGE_SD_LBA_RECORDS + u->slot, sd_work);
    }
  }
  if (sd_want_fill) {
    sd_want_fill = false;
    return sd_start(SD_OP_FILL, false, sd_fill_lba, sd_cache);
  }
  return false;
}

/** One bounded step of the card work; see storage.h. */
uint32_t storage_poll(void)
{
  if (!sd_ready_card()) {
    if (sd_want_ready) {
      sd_want_ready = false;
      storage_ready();
    }
    return STORAGE_POLL_IDLE;
  }
  if (sd_eng.op != SD_OP_NONE) {
    int rc = sd_dev->poll();
    if (rc == BLOCKDEV_BUSY) {
      return 0;
    }
    sd_complete(rc);
    if (sd_want_ready) {
      sd_want_ready = false;
      storage_ready();
    }
  }
  if (sd_eng.op == SD_OP_NONE && !sd_next()) {
    if (sd_want_ready) {
      sd_want_ready = false;
      storage_ready();
    }
    return sd_eng.op == SD_OP_NONE ? STORAGE_POLL_IDLE : 0;
  }
  return 0;
}

/* ---- Space and names -------------------------------------------------------- */

/** Bytes the card's data clusters hold. */
uint64_t storage_capacity(void)
{
  return sd_ready_card() ? (uint64_t)sd_nclusters * sd_cluster_bytes() : 0;
}

/** Free clusters, in bytes: the largest known length storage_open() accepts (runs permitting). */
uint64_t storage_free(void)
{
  return sd_ready_card() ? (uint64_t)sd_free_clusters * sd_cluster_bytes() : 0;
}

uint32_t storage_sd_cluster_bytes(void)
{
  return sd_ready_card() ? sd_cluster_bytes() : 0;
}

bool storage_exists(const char *name, uint64_t *size)
{
  sd_file_t *f = sd_visible(name);
  if (f != NULL && size != NULL) {
    *size = f->size;
  }
  return f != NULL;
}

bool storage_sha256(const char *name, uint8_t out[32])
{
  sd_file_t *f = sd_visible(name);
  if (f == NULL || !f->has_sha) {
    return false;
  }
  memcpy(out, f->sha, 32);
  return true;
}

/* ---- Uploads -------------------------------------------------------------------- */

int storage_open(const char *name, uint64_t length, storage_upload_t **out)
{
  if (!sd_name_ok(name)) {
    return STORAGE_EINVAL;
  }
  if (!sd_ready_card()) {
    return STORAGE_ENOSPC;
  }
  int files_after = sd_nfiles;
  bool replacing = sd_visible(name) != NULL;
  struct storage_upload *u = NULL;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    struct storage_upload *o = &sd_uploads[i];
    if (!o->used) {
      u = u == NULL ? o : u;
      continue;
    }
    if (strcmp(o->name, name) == 0) {
      return STORAGE_EBUSY;
    }
    files_after += sd_find(o->name) < 0;
  }
  if (u == NULL) {
    return STORAGE_EBUSY;
  }
  if (!replacing && files_after + (sd_find(name) < 0) > STORAGE_SD_MAX_FILES) {
    return STORAGE_ENOSPC;
  }
  memset(u, 0, sizeof *u);
  u->length = length;
  if (length != STORAGE_LEN_UNKNOWN) {
    if (length > UINT32_MAX || !sd_take(u->ext, &u->n_ext, sd_clusters_for(length))) {
      return STORAGE_ENOSPC;
    }
    u->clusters = sd_clusters_for(length);
  }
  u->used = true;
  strcpy(u->name, name);
  *out = u;
  return STORAGE_OK;
}

int storage_write(storage_upload_t *u, const void *data, size_t len)
{
  if (u->failed) {
    return STORAGE_EIO;
  }
  if (len > STORAGE_SD_WRITE_MAX) {
    return STORAGE_EINVAL;
  }
  if (len == 0) {
    return STORAGE_OK;
  }
  uint64_t end = (uint64_t)u->written + len;
  if ((u->length != STORAGE_LEN_UNKNOWN && end > u->length) || end > UINT32_MAX) {
    return STORAGE_ENOSPC;
  }
  uint8_t slot = (uint8_t)(u - sd_uploads);
  uint32_t room = 0;
  if (u->nbufs > 0) {
    room = SD_SECTOR - sd_buf_fill[u->bufs[u->nbufs - 1]];
  }
  uint32_t need = len > room ? (uint32_t)((len - room + SD_SECTOR - 1) / SD_SECTOR) : 0;
  if (u->nbufs + need > SD_BUFS || (int)need > sd_bufs_free()) {
    return sd_pending();
  }
  if (u->length == STORAGE_LEN_UNKNOWN) {
    uint32_t want = sd_clusters_for(end);
    if (want > u->clusters) {
      if (!sd_take(u->ext, &u->n_ext, want - u->clusters)) {
        return STORAGE_ENOSPC;
      }
      u->clusters = want;
    }
  }
  const uint8_t *p = data;
  while (len > 0) {
    uint8_t b;
    if (u->nbufs > 0 && sd_buf_fill[u->bufs[u->nbufs - 1]] < SD_SECTOR) {
      b = u->bufs[u->nbufs - 1];
    } else {
      b = sd_buf_take(slot, u->written / SD_SECTOR);
      u->bufs[u->nbufs++] = b;
    }
    size_t n = SD_SECTOR - sd_buf_fill[b];
    n = n < len ? n : len;
    memcpy(sd_bufs[b] + sd_buf_fill[b], p, n);
    sd_buf_fill[b] = (uint16_t)(sd_buf_fill[b] + n);
    u->written += (uint32_t)n;
    p += n;
    len -= n;
  }
  return STORAGE_OK;
}

void storage_set_sha256(storage_upload_t *u, const uint8_t sha256[32])
{
  memcpy(u->sha, sha256, 32);
  u->has_sha = true;
}

/* Frees the clusters an upload took beyond what it wrote (a short commit). */
static void sd_trim(struct storage_upload *u)
{
  uint32_t keep = sd_clusters_for(u->written);
  uint32_t c = 0;
  for (uint8_t e = 0; e < u->n_ext; e++) {
    if (c + u->ext[e].count <= keep) {
      c += u->ext[e].count;
      continue;
    }
    uint32_t k = keep > c ? keep - c : 0;
    sd_ext_t extra = {(uint16_t)(u->ext[e].start + k), (uint16_t)(u->ext[e].count - k)};
    sd_ext_mark(&extra, 1, false);
    u->ext[e].count = (uint16_t)k;
    c += k;
  }
  while (u->n_ext > 0 && u->ext[u->n_ext - 1].count == 0) {
    u->n_ext--;
  }
  u->clusters = keep;
}

static void sd_upload_release(struct storage_upload *u, bool free_clusters)
{
  sd_upload_free_bufs(u);
  if (free_clusters) {
    sd_ext_mark(u->ext, u->n_ext, false);
  }
  u->used = false;
}

int storage_commit(storage_upload_t *u, bool *replaced)
{
  if (replaced != NULL) {
    *replaced = false;
  }
  if (u->commit == SD_C_NONE) {
    if (u->failed) {
      storage_abort(u);
      return STORAGE_EIO;
    }
    int slot = sd_slot_take();
    if (slot < 0) {
      storage_abort(u);
      return STORAGE_ENOSPC;
    }
    sd_trim(u);
    u->slot = (uint8_t)slot;
    u->seq = sd_next_seq++;
    u->commit = SD_C_WAIT;
    return sd_pending();
  }
  if (u->commit == SD_C_WAIT || u->commit == SD_C_WRITING) {
    if (u->failed) {
      u->commit = SD_C_FAILED;
    } else {
      return sd_pending();
    }
  }
  if (u->commit == SD_C_FAILED) {
    /* A failed record write may still have landed: zero the slot before its clusters count as free. */
    sd_version_t v = {.slot = u->slot, .n_ext = u->n_ext};
    memcpy(v.ext, u->ext, sizeof v.ext);
    sd_upload_release(u, false);
    sd_retire(&v);
    return STORAGE_EIO;
  }
  /* SD_C_DONE: the record is on the card. */
  int i = sd_find(u->name);
  if (i >= 0) {
    sd_file_t *old = &sd_files[i];
    if (replaced != NULL) {
      *replaced = old->kill != SD_KILL_DONE;
    }
    /* A removal already zeroed the slot; otherwise the replaced record is zeroed now. */
    sd_version_drop(&old->v, old->kill != SD_KILL_DONE);
  } else {
    i = sd_file_insert(u->name);
  }
  sd_file_t *f = &sd_files[i];
  f->kill = SD_KILL_NONE;
  f->size = u->written;
  f->seq = u->seq;
  f->has_sha = u->has_sha;
  memcpy(f->sha, u->sha, 32);
  f->v.slot = u->slot;
  f->v.n_ext = u->n_ext;
  f->v.readers = 0;
  memcpy(f->v.ext, u->ext, sizeof f->v.ext);
  sd_upload_release(u, false);
  return STORAGE_OK;
}

void storage_abort(storage_upload_t *u)
{
  if (u == NULL || !u->used) {
    return;
  }
  if (u->commit == SD_C_DONE) {
    /* Its record is on the card: zero it, then free. */
    sd_version_t v = {.slot = u->slot, .n_ext = u->n_ext};
    memcpy(v.ext, u->ext, sizeof v.ext);
    sd_upload_free_bufs(u);
    u->used = false;
    sd_retire(&v);
    return;
  }
  if (u->commit == SD_C_WRITING) {
    /* The record is being written: sd_complete() zeroes it again when it lands. */
    sd_upload_free_bufs(u);
    u->used = false;
    return;
  }
  if (u->commit == SD_C_WAIT) {
    sd_bit_set(sd_slots, u->slot, false);
  }
  sd_upload_release(u, true);
}

int storage_remove(const char *name)
{
  int i = sd_find(name);
  if (i < 0) {
    return STORAGE_ENOENT;
  }
  sd_file_t *f = &sd_files[i];
  switch (f->kill) {
  case SD_KILL_NONE:
    f->kill = SD_KILL_QUEUED;
    sd_retire(&f->v);
    return sd_pending();
  case SD_KILL_QUEUED:
    return sd_pending();
  case SD_KILL_DONE: {
    sd_version_t v = f->v;
    sd_file_remove_at(i);
    sd_version_drop(&v, false);
    return STORAGE_OK;
  }
  default:
    f->kill = SD_KILL_NONE;
    return STORAGE_EIO;
  }
}

/* ---- Readers ----------------------------------------------------------------------- */

int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size)
{
  sd_file_t *f = sd_visible(name);
  if (f == NULL || f->kill != SD_KILL_NONE) {
    return STORAGE_ENOENT;
  }
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    struct storage_reader *r = &sd_readers[i];
    if (r->used) {
      continue;
    }
    memset(r, 0, sizeof *r);
    r->used = true;
    r->slot = f->v.slot;
    r->n_ext = f->v.n_ext;
    memcpy(r->ext, f->v.ext, sizeof r->ext);
    r->size = f->size;
    r->has_sha = f->has_sha;
    memcpy(r->sha, f->sha, 32);
    f->v.readers++;
    if (size != NULL) {
      *size = f->size;
    }
    *out = r;
    return STORAGE_OK;
  }
  return STORAGE_EBUSY;
}

long storage_read(storage_reader_t *r, void *buf, size_t len)
{
  if (r->pos >= r->size || len == 0) {
    return 0;
  }
  uint32_t lba = sd_lba_of(r->ext, r->n_ext, r->pos / SD_SECTOR);
  if (lba == UINT32_MAX) {
    return STORAGE_EIO;
  }
  if (sd_cache_lba != lba) {
    if (!(sd_eng.op == SD_OP_FILL && sd_eng.lba == lba)) {
      sd_want_fill = true;
      sd_fill_lba = lba;
    }
    return sd_pending();
  }
  uint32_t off = r->pos % SD_SECTOR;
  size_t n = SD_SECTOR - off;
  n = n < len ? n : len;
  n = n < r->size - r->pos ? n : r->size - r->pos;
  memcpy(buf, sd_cache + off, n);
  r->pos += (uint32_t)n;
  return (long)n;
}

int storage_read_seek(storage_reader_t *r, uint64_t offset)
{
  if (offset > r->size) {
    return STORAGE_EINVAL;
  }
  r->pos = (uint32_t)offset; /* the extents map any position to its sector */
  return STORAGE_OK;
}

bool storage_read_sha256(storage_reader_t *r, uint8_t out[32])
{
  if (!r->has_sha) {
    return false;
  }
  memcpy(out, r->sha, 32);
  return true;
}

void storage_read_close(storage_reader_t *r)
{
  if (r == NULL || !r->used) {
    return;
  }
  r->used = false;
  for (int i = 0; i < sd_nfiles; i++) {
    if (sd_files[i].v.slot == r->slot && sd_files[i].v.readers > 0) {
      sd_files[i].v.readers--;
      return;
    }
  }
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    sd_version_t *v = &sd_retired[i];
    if (v->readers > 0 && (v->slot & 0x7Fu) == r->slot && --v->readers == 0) {
      bool zeroed = (v->slot & 0x80u) != 0;
      v->slot &= 0x7Fu;
      sd_version_drop(v, !zeroed);
      return;
    }
  }
}

int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx)
{
  char last[POSTERN_NAME_MAX + 1] = "";
  bool first = true;
  for (;;) {
    /* The next name after `last`: files may come and go while fn runs. */
    const sd_file_t *next = NULL;
    for (int i = 0; i < sd_nfiles; i++) {
      const sd_file_t *f = &sd_files[i];
      if (f->kill == SD_KILL_DONE || (!first && strcmp(f->name, last) <= 0)) {
        continue;
      }
      if (next == NULL || strcmp(f->name, next->name) < 0) {
        next = f;
      }
    }
    if (next == NULL) {
      return 0;
    }
    strcpy(last, next->name);
    first = false;
    int rc = fn(ctx, last, next->size);
    if (rc != 0) {
      return rc;
    }
  }
}

/* ---- Boot ---------------------------------------------------------------------------- */

/* Runs one transfer to its end (boot only). */
static int sd_sync(bool write, uint32_t lba, uint32_t n, void *buf, size_t stride)
{
  if (sd_dev == NULL || sd_dev->start(write, lba, n, buf, stride) != 0) {
    return -1;
  }
  int rc;
  while ((rc = sd_dev->poll()) == BLOCKDEV_BUSY) {
  }
  return rc;
}

bool storage_sd_read_sync(uint32_t lba, uint32_t n, void *buf)
{
  /* A card the store cannot use (too small, another layout) may still hold settings and a policy. */
  return sd_state != STORAGE_SD_NO_CARD && sd_state != STORAGE_SD_CARD_ERROR &&
         sd_sync(false, lba, n, buf, SD_SECTOR) == 0;
}

/* The cluster size of a card: the smallest power of two from STORAGE_SD_CLUSTER that keeps the count in the bitmap. */
static uint32_t sd_layout_cs(uint32_t sectors)
{
  uint32_t cs = STORAGE_SD_CLUSTER;
  while ((sectors - STORAGE_SD_LBA_DATA) / cs > STORAGE_SD_MAX_CLUSTERS) {
    cs *= 2u;
  }
  return cs;
}

/* Takes the record in sd_work from slot s into the index; false when the slot holds none. */
static bool sd_scan_record(uint32_t s)
{
  const sd_record_t *rec = (const sd_record_t *)sd_work;
  uint32_t crc;
  memcpy(&crc, sd_work + SD_SECTOR - 4, 4);
  if (rec->magic != SD_MAGIC_RECORD || crc != storage_sd_crc32(sd_work, SD_SECTOR - 4) || rec->slot != s ||
      rec->n_ext > STORAGE_SD_EXTENTS || memchr(rec->name, 0, sizeof rec->name) == NULL || !sd_name_ok(rec->name)) {
    return false;
  }
  uint64_t clusters = 0;
  for (uint8_t e = 0; e < rec->n_ext; e++) {
    uint32_t end = (uint32_t)rec->ext[e].start + rec->ext[e].count;
    if (end > sd_nclusters) {
      return false;
    }
    for (uint32_t c = rec->ext[e].start; c < end; c++) {
      if (sd_bit(sd_bitmap, c)) {
        return false; /* overlaps another record: not ours to trust */
      }
    }
    clusters += rec->ext[e].count;
  }
  if (clusters < sd_clusters_for(rec->size)) {
    return false;
  }
  int i = sd_find(rec->name);
  if (i >= 0) {
    sd_file_t *f = &sd_files[i];
    bool newer = rec->seq > f->seq;
    uint8_t drop = newer ? f->v.slot : (uint8_t)s;
    log_line("storage_sd: %s in slots %u and %u (a commit cut short): slot %u wins", rec->name, (unsigned)f->v.slot,
             (unsigned)s, newer ? (unsigned)s : (unsigned)f->v.slot);
    (void)sd_sync(true, STORAGE_SD_LBA_RECORDS + drop, 1, (void *)(uintptr_t)sd_zeros, SD_SECTOR);
    if (!newer) {
      return false;
    }
    sd_ext_mark(f->v.ext, f->v.n_ext, false);
    sd_bit_set(sd_slots, f->v.slot, false);
  } else if (sd_nfiles == STORAGE_SD_MAX_FILES) {
    log_line("storage_sd: more than %d files on the card: %s left out", STORAGE_SD_MAX_FILES, rec->name);
    return false;
  } else {
    i = sd_file_insert(rec->name);
  }
  sd_file_t *f = &sd_files[i];
  f->size = rec->size;
  f->seq = rec->seq;
  f->has_sha = rec->has_sha != 0;
  memcpy(f->sha, rec->sha, 32);
  f->v.slot = (uint8_t)s;
  f->v.n_ext = rec->n_ext;
  memcpy(f->v.ext, rec->ext, sizeof f->v.ext);
  sd_ext_mark(f->v.ext, f->v.n_ext, true);
  sd_bit_set(sd_slots, s, true);
  if (rec->seq >= sd_next_seq) {
    sd_next_seq = rec->seq + 1u;
  }
  return true;
}

static storage_sd_state_t sd_init_state(storage_sd_state_t st)
{
  sd_state = st;
  return st;
}

storage_sd_state_t storage_sd_init(const blockdev_t *dev)
{
  memset(sd_bitmap, 0, sizeof sd_bitmap);
  memset(sd_slots, 0, sizeof sd_slots);
  memset(sd_uploads, 0, sizeof sd_uploads);
  memset(sd_readers, 0, sizeof sd_readers);
  memset(sd_retired, 0, sizeof sd_retired);
  memset(sd_buf_owner, SD_NONE, sizeof sd_buf_owner);
  memset(&sd_eng, 0, sizeof sd_eng);
  sd_nfiles = 0;
  sd_nretire = 0;
  sd_next_seq = 1;
  sd_cache_lba = UINT32_MAX;
  sd_want_ready = sd_want_fill = false;
  sd_cursor = 0;
  sd_dev = dev;
  sd_state = STORAGE_SD_NO_CARD;
  if (dev == NULL || dev->sectors == 0) {
    return sd_init_state(STORAGE_SD_NO_CARD);
  }
  if (dev->sectors < STORAGE_SD_MIN_SECTORS) {
    return sd_init_state(STORAGE_SD_TOO_SMALL);
  }
  sd_cs = sd_layout_cs(dev->sectors);
  sd_nclusters = (dev->sectors - STORAGE_SD_LBA_DATA) / sd_cs;
  sd_free_clusters = sd_nclusters;
  if (sd_sync(false, STORAGE_SD_LBA_SUPER, 1, sd_work, SD_SECTOR) != 0) {
    return sd_init_state(STORAGE_SD_CARD_ERROR);
  }
  sd_super_t sb;
  memcpy(&sb, sd_work, sizeof sb);
  bool valid = memcmp(sb.magic, SD_MAGIC_SUPER, 8) == 0 && sb.crc == storage_sd_crc32(&sb, offsetof(sd_super_t, crc)) &&
               sb.version == 1u && sb.sectors == dev->sectors && sb.cluster_sectors == sd_cs;
  if (!valid) {
    if (memcmp(sd_work, sd_zeros, SD_SECTOR) != 0) {
      return sd_init_state(STORAGE_SD_FOREIGN);
    }
    /* A blank card: zero the record table, then write the superblock (the format's commit). */
    memset(&sb, 0, sizeof sb);
    memcpy(sb.magic, SD_MAGIC_SUPER, 8);
    sb.version = 1;
    sb.sectors = dev->sectors;
    sb.cluster_sectors = sd_cs;
    sb.crc = storage_sd_crc32(&sb, offsetof(sd_super_t, crc));
    memset(sd_work, 0, sizeof sd_work);
    memcpy(sd_work, &sb, sizeof sb);
    if (sd_sync(true, STORAGE_SD_LBA_RECORDS, STORAGE_SD_SLOTS, (void *)(uintptr_t)sd_zeros, 0) != 0 ||
        sd_sync(true, STORAGE_SD_LBA_SUPER, 1, sd_work, SD_SECTOR) != 0) {
      return sd_init_state(STORAGE_SD_CARD_ERROR);
    }
    log_line("storage_sd: blank card formatted");
  }
  for (uint32_t s = 0; s < STORAGE_SD_SLOTS; s++) {
    if (sd_sync(false, STORAGE_SD_LBA_RECORDS + s, 1, sd_work, SD_SECTOR) != 0) {
      return sd_init_state(STORAGE_SD_CARD_ERROR);
    }
    (void)sd_scan_record(s);
  }
  sd_cursor = 0;
  return sd_init_state(STORAGE_SD_READY);
}
