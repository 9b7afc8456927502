/* storage_flash.c: storage.h on a flash medium: each file a chain of erase blocks, made visible by one commit record programmed last; the medium work runs in storage_poll(). */
#include "storage_flash.h"

#include <string.h>

#include "log.h"
#include "postern_opts.h"
#include "storage.h"

/*
 * On the medium, every block in use starts with a header unit. A file is a
 * chain of blocks, each block's link unit naming the next one:
 *
 *   head block: [hdr HEAD][link][name: 5 units][sha256: 2 units][commit][dead][data ...]
 *   data block: [hdr DATA (file id, index)][link][data ...]
 *
 * An upload programs the head header and name, then data, allocating and
 * linking blocks as it goes. Nothing of it counts until the commit record
 * (size, commit sequence, CRC) is programmed: that single program unit is the
 * commit. An upload given its SHA-256 programs it into the head block just
 * before the commit record, whose other magic (PCMS) then says the file has
 * a digest and whose CRC covers the digest too: the digest becomes valid
 * with the commit, in the same program unit, or not at all. Replacing a name then marks the old version's dead unit, removing a
 * file marks its own. At boot the index is rebuilt from head blocks with a
 * valid commit record and a clear dead unit; if a power cut came between a
 * commit and the old version's dead mark, the higher commit sequence wins.
 * Every record carries a CRC, so a torn program reads as never written.
 * Blocks of dead, replaced or unfinished files are erased in the background,
 * or when next needed, except while a reader still has the file open.
 *
 * Time (storage.h's time contract). No call here waits for the medium: the
 * calls only change what is kept in RAM (the index, the names, every
 * block's state and chain link) and queue the medium work, which
 * storage_poll() does one command at a time:
 *
 * - The queue (sf_q, STORAGE_FLASH_STAGE bytes, shared by every upload)
 *   holds, in order, an upload's head (header and name), its data in whole
 *   program units, and its commit record. storage_write() copies whole units
 *   into it (the bytes short of a unit wait in the upload's own stage) and
 *   answers STORAGE_PENDING, keeping nothing, when they do not fit.
 * - Dead marks (removals, replaced versions) wait in a short list of their
 *   own and go first.
 * - Each poll: end the operation whose time has passed, call
 *   storage_ready() if a call answered STORAGE_PENDING (the medium is idle
 *   then, so pending reads go through), then start the next erase or
 *   program: one on a timed medium (it is busy after it), up to SF_STEPS on
 *   an instant one. A write that finds the queue full does the same first.
 *   Erases of free blocks run while nothing else is queued and no reader is
 *   open, when no upload is open or the open ones may need more erased
 *   blocks than there are, so blocks are erased ahead of the uploads that
 *   take them; an upload that finds none erased erases one first.
 */

#define SF_UNIT FLASH_PROG_UNIT
#define SF_MAGIC_HEAD 0x31444850u       /* "PHD1" */
#define SF_MAGIC_DATA 0x31544450u       /* "PDT1" */
#define SF_MAGIC_LINK 0x4B4E4C50u       /* "PLNK" */
#define SF_MAGIC_COMMIT 0x544D4350u     /* "PCMT" */
#define SF_MAGIC_COMMIT_SHA 0x534D4350u /* "PCMS": committed with the SHA-256 before it */
#define SF_NONE 0xFFFFu

/* Offsets inside a block. */
#define SF_OFF_HDR 0u
#define SF_OFF_LINK 16u
#define SF_OFF_NAME 32u
#define SF_NAME_AREA 80u
#define SF_OFF_SHA (SF_OFF_NAME + SF_NAME_AREA)
#define SF_SHA_LEN 32u
#define SF_OFF_COMMIT (SF_OFF_SHA + SF_SHA_LEN)
#define SF_OFF_DEAD (SF_OFF_COMMIT + SF_UNIT)
#define SF_HEAD_DATA (SF_OFF_DEAD + SF_UNIT)
#define SF_DATA_DATA 32u
#define SF_HEAD_PAYLOAD (FLASH_BLOCK_SIZE - SF_HEAD_DATA)
#define SF_DATA_PAYLOAD (FLASH_BLOCK_SIZE - SF_DATA_DATA)

/* One program unit: a magic, two fields and the CRC of the first twelve bytes. */
typedef struct sf_rec {
  uint32_t magic, a, b, crc;
} sf_rec_t;

/* The name area: NUL-padded name and the CRC of the 76 bytes before it. */
typedef struct sf_name {
  char name[SF_NAME_AREA - 4];
  uint32_t crc;
} sf_name_t;

_Static_assert(sizeof(sf_rec_t) == SF_UNIT, "a record is one program unit");
_Static_assert(sizeof(sf_name_t) == SF_NAME_AREA, "the name area is whole program units");
_Static_assert(POSTERN_NAME_MAX < SF_NAME_AREA - 4, "names must fit the name area with their NUL");
_Static_assert(SF_HEAD_DATA % SF_UNIT == 0, "data starts on a program unit");
_Static_assert(SF_SHA_LEN % SF_UNIT == 0 &&
                   SF_OFF_SHA / FLASH_PAGE_SIZE == (SF_OFF_SHA + SF_SHA_LEN - 1) / FLASH_PAGE_SIZE,
               "the digest is whole program units in one program command");
_Static_assert(SF_OFF_NAME / FLASH_PAGE_SIZE == (SF_OFF_NAME + SF_NAME_AREA - 1) / FLASH_PAGE_SIZE,
               "the name area is one program command");
_Static_assert(STORAGE_FLASH_MAX_BLOCKS < 0xFFF, "block numbers fit the 12 bits of a RAM link");
_Static_assert(STORAGE_FLASH_NAME_POOL < 0xFFFF, "name offsets are 16 bits");
_Static_assert(STORAGE_FLASH_WRITE_MAX >= SF_UNIT && STORAGE_FLASH_WRITE_MAX < 0xFFFF, "a queued write fits its entry");
_Static_assert(POSTERN_MAX_CONNS < 256, "upload slots fit a byte");

/* Block states kept in RAM, with the chain link, in one 16-bit word per block. */
enum { SF_FREE, SF_DIRTY, SF_USED }; /* erased; to be erased; in a chain */
#define SF_BLK_NEXT 0x0FFFu          /* next block of the chain; all ones: none */
#define SF_BLK_STATE_SHIFT 12

/* Removal of a committed file: its dead mark queued, programmed, or failed. */
enum { SF_KILL_NONE, SF_KILL_QUEUED, SF_KILL_DONE, SF_KILL_FAILED };

typedef struct sf_file {
  uint16_t head;
  uint16_t name; /* offset in sf_names */
  uint8_t kill;  /* SF_KILL_*: a pending storage_remove() */
  bool has_sha;  /* committed with a digest */
  uint32_t size;
  uint32_t seq;
  uint8_t sha[SF_SHA_LEN];
} sf_file_t;

/* Commit of an upload: its record queued, programmed, or failed. */
enum { SF_C_NONE, SF_C_QUEUED, SF_C_DONE, SF_C_FAILED };

struct storage_upload {
  bool used;
  bool failed;        /* the medium failed under it: write and commit answer STORAGE_EIO */
  uint8_t gen;        /* counts the slot's opens: a late completion does not reach a new upload */
  uint8_t commit;     /* SF_C_* */
  uint16_t name;      /* offset in sf_names */
  uint16_t head, cur; /* first block, block being filled (SF_NONE until the queue reaches the head) */
  uint32_t off;       /* next byte to program in cur */
  uint32_t file_id;
  uint64_t length;  /* announced at open, or STORAGE_LEN_UNKNOWN */
  uint32_t written; /* bytes accepted */
  uint32_t blocks;  /* blocks allocated */
  uint32_t reserve; /* blocks promised: at open for a known length (the head for chunked), write by write for chunked */
  uint32_t seq;     /* commit sequence, given when the commit is queued */
  uint32_t stage_len;
  uint8_t stage[SF_UNIT]; /* bytes short of a whole unit */
  bool has_sha;           /* storage_set_sha256() gave the digest */
  uint8_t sha[SF_SHA_LEN];
};

struct storage_reader {
  bool used;
  bool has_sha;
  uint16_t head, cur;
  uint32_t off;
  uint32_t left;
  uint32_t size;
  uint8_t sha[SF_SHA_LEN]; /* the digest of the version opened */
};

/* Queue entries: a 4-byte header, then len bytes (data entries only). */
enum { SF_Q_HEAD, SF_Q_DATA, SF_Q_SHA, SF_Q_COMMIT, SF_Q_SKIP };
typedef struct sf_qe {
  uint8_t kind, slot;
  uint16_t len;
} sf_qe_t;

/* What the operation in flight does. */
enum { SF_OP_NONE, SF_OP_ERASE, SF_OP_KILL, SF_OP_UPLOAD, SF_OP_COMMIT };

/* Dead marks waiting: every upload's replaced version and every connection's removal, and some for boot. */
#define SF_KILLS (2 * POSTERN_MAX_CONNS + 2)

static flash_model_t *sf_medium;
static uint16_t sf_blk[STORAGE_FLASH_MAX_BLOCKS];
static uint32_t sf_free_count;  /* blocks SF_FREE or SF_DIRTY */
static uint32_t sf_dirty_count; /* blocks SF_DIRTY */
static uint32_t sf_cursor;      /* where the next allocation looks first (wear spreading) */
static uint32_t sf_dirty_at;    /* where the next erase looks first (the last one found, and on) */
static uint32_t sf_next_id, sf_next_seq;
static sf_file_t sf_files[STORAGE_FLASH_MAX_FILES]; /* sorted by name */
static int sf_nfiles;
static char sf_names[STORAGE_FLASH_NAME_POOL]; /* NUL-terminated names of the files and uploads, packed */
static uint32_t sf_names_used;
static struct storage_upload sf_uploads[POSTERN_MAX_CONNS];
static struct storage_reader sf_readers[POSTERN_MAX_CONNS];
static _Alignas(4) uint8_t sf_q[STORAGE_FLASH_STAGE]; /* words: programs take their data from it in place */
static uint32_t sf_q_rd, sf_q_used;                   /* first byte of the oldest entry, bytes in use */
static uint16_t sf_kills[SF_KILLS];
static int sf_nkills;
static bool sf_want_ready; /* a call answered STORAGE_PENDING since the last storage_ready() */
static int sf_run_left;    /* commands sf_run() may still start (a step may start several on an instant medium) */

/* The engine: the operation in flight, and the progress through the queue's first entry. */
static struct {
  uint8_t op;        /* SF_OP_* */
  uint8_t slot, gen; /* upload of an SF_OP_UPLOAD or SF_OP_COMMIT */
  uint16_t block;    /* block of an erase or a dead mark */
  uint8_t phase;     /* head: 1 after the header; data: 1 after a new block's header */
  uint16_t nb;       /* data: the new block being linked */
  uint32_t done;     /* data: bytes of the entry programmed */
} sf_eng;

/* ---- Records --------------------------------------------------------- */

/* CRC-32 (IEEE 802.3, reflected), four bits a step from a 64-byte table: every block's header and link take one. */
static uint32_t sf_crc(const void *data, size_t len)
{
  static const uint32_t nibble[16] = {0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
                                      0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
                                      0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
  const uint8_t *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    c ^= p[i];
    c = (c >> 4) ^ nibble[c & 15u];
    c = (c >> 4) ^ nibble[c & 15u];
  }
  return ~c;
}

static uint32_t sf_addr(uint32_t block, uint32_t off)
{
  return block * FLASH_BLOCK_SIZE + off;
}

/* Reads the record at (block, off) (the medium idle); true when it is intact and has this magic. */
static bool sf_rec_get(uint32_t block, uint32_t off, uint32_t magic, sf_rec_t *r)
{
  if (flash_read(sf_medium, sf_addr(block, off), r, sizeof *r) != 0) {
    return false;
  }
  return r->magic == magic && r->crc == sf_crc(r, 12);
}

/* Starts programming a record. */
static int sf_rec_put(uint32_t block, uint32_t off, uint32_t magic, uint32_t a, uint32_t b)
{
  sf_rec_t r = {magic, a, b, 0};
  r.crc = sf_crc(&r, 12);
  return flash_program(sf_medium, sf_addr(block, off), &r, sizeof r);
}

/* The CRC of a commit record with a digest: its first twelve bytes, then the digest. */
static uint32_t sf_crc_sha(const sf_rec_t *r, const uint8_t sha[SF_SHA_LEN])
{
  uint8_t both[12 + SF_SHA_LEN];
  memcpy(both, r, 12);
  memcpy(both + 12, sha, SF_SHA_LEN);
  return sf_crc(both, sizeof both);
}

/* Starts programming the commit record of an upload, covering its digest when it has one. */
static int sf_commit_put(const struct storage_upload *u)
{
  sf_rec_t r = {u->has_sha ? SF_MAGIC_COMMIT_SHA : SF_MAGIC_COMMIT, u->written, u->seq, 0};
  r.crc = u->has_sha ? sf_crc_sha(&r, u->sha) : sf_crc(&r, 12);
  return flash_program(sf_medium, sf_addr(u->head, SF_OFF_COMMIT), &r, sizeof r);
}

/*
 * Reads the commit record of head block b (the medium idle): true when it
 * is intact; *has_sha and sha tell whether it carries a digest (read from
 * the medium and covered by the record's CRC).
 */
static bool sf_commit_get(uint32_t b, sf_rec_t *r, bool *has_sha, uint8_t sha[SF_SHA_LEN])
{
  *has_sha = false;
  if (flash_read(sf_medium, sf_addr(b, SF_OFF_COMMIT), r, sizeof *r) != 0) {
    return false;
  }
  if (r->magic == SF_MAGIC_COMMIT) {
    return r->crc == sf_crc(r, 12);
  }
  if (r->magic != SF_MAGIC_COMMIT_SHA || flash_read(sf_medium, sf_addr(b, SF_OFF_SHA), sha, SF_SHA_LEN) != 0) {
    return false;
  }
  *has_sha = true;
  return r->crc == sf_crc_sha(r, sha);
}

/* Blocks a file of `size` bytes occupies (a 32-bit division for every size a medium holds: each write asks). */
static uint32_t sf_blocks_for(uint64_t size)
{
  if (size <= SF_HEAD_PAYLOAD) {
    return 1;
  }
  if (size <= UINT32_MAX - SF_DATA_PAYLOAD) {
    return 1u + ((uint32_t)size - SF_HEAD_PAYLOAD + SF_DATA_PAYLOAD - 1) / SF_DATA_PAYLOAD;
  }
  return 1u + (uint32_t)((size - SF_HEAD_PAYLOAD + SF_DATA_PAYLOAD - 1) / SF_DATA_PAYLOAD);
}

/* Bytes of the largest file that fits in n blocks. */
static uint64_t sf_bytes_in(uint32_t n)
{
  return n == 0 ? 0 : (uint64_t)(n - 1) * SF_DATA_PAYLOAD + SF_HEAD_PAYLOAD;
}

/* ---- Names --------------------------------------------------------------- */

static const char *sf_name(uint16_t off)
{
  return &sf_names[off];
}

/* Adds a name to the pool; its offset, or -1 when the pool is full. */
static int sf_name_add(const char *name)
{
  size_t n = strlen(name) + 1;
  if (n > sizeof sf_names - sf_names_used) {
    return -1;
  }
  uint32_t off = sf_names_used;
  memcpy(&sf_names[off], name, n);
  sf_names_used += (uint32_t)n;
  return (int)off;
}

/* Takes a name out of the pool, moving the later ones down. */
static void sf_name_drop(uint16_t off)
{
  uint32_t n = (uint32_t)strlen(&sf_names[off]) + 1;
  memmove(&sf_names[off], &sf_names[off + n], sf_names_used - off - n);
  sf_names_used -= n;
  for (int i = 0; i < sf_nfiles; i++) {
    if (sf_files[i].name > off) {
      sf_files[i].name = (uint16_t)(sf_files[i].name - n);
    }
  }
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (sf_uploads[i].used && sf_uploads[i].name > off) {
      sf_uploads[i].name = (uint16_t)(sf_uploads[i].name - n);
    }
  }
}

static bool sf_name_ok(const char *name)
{
  size_t n = name != NULL ? strlen(name) : 0;
  return n > 0 && n <= POSTERN_NAME_MAX && name[0] != '.' && strchr(name, '/') == NULL;
}

/* ---- Blocks ------------------------------------------------------------ */

static unsigned sf_state(uint32_t b)
{
  return sf_blk[b] >> SF_BLK_STATE_SHIFT;
}

static void sf_set_state(uint32_t b, unsigned state)
{
  sf_blk[b] = (uint16_t)((sf_blk[b] & SF_BLK_NEXT) | state << SF_BLK_STATE_SHIFT);
}

/* The next block of a chain (RAM), or SF_NONE. */
static uint32_t sf_next(uint32_t b)
{
  uint32_t n = sf_blk[b] & SF_BLK_NEXT;
  return n == SF_BLK_NEXT ? SF_NONE : n;
}

static void sf_set_next(uint32_t b, uint32_t next)
{
  sf_blk[b] = (uint16_t)((sf_blk[b] & ~SF_BLK_NEXT) | (next == SF_NONE ? SF_BLK_NEXT : next));
}

/* Blocks promised to uploads but not yet allocated. */
static uint32_t sf_reserved(void)
{
  uint32_t n = 0;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    const struct storage_upload *u = &sf_uploads[i];
    if (u->used && u->reserve > u->blocks) {
      n += u->reserve - u->blocks;
    }
  }
  return n;
}

/* Free blocks nobody has been promised. */
static uint32_t sf_unreserved(void)
{
  uint32_t r = sf_reserved();
  return sf_free_count > r ? sf_free_count - r : 0;
}

/* Takes an erased block; SF_NONE when none is erased now. */
static uint32_t sf_take(void)
{
  uint32_t n = sf_medium->blocks;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t b = (sf_cursor + i) % n;
    if (sf_state(b) == SF_FREE) {
      sf_set_state(b, SF_USED);
      sf_set_next(b, SF_NONE);
      sf_free_count--;
      sf_cursor = (b + 1) % n;
      return b;
    }
  }
  return SF_NONE;
}

/* True when an index entry, a reader, an upload or a dead mark still uses the chain at head. */
static bool sf_referenced(uint32_t head)
{
  for (int i = 0; i < sf_nfiles; i++) {
    if (sf_files[i].head == head) {
      return true;
    }
  }
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if ((sf_readers[i].used && sf_readers[i].head == head) || (sf_uploads[i].used && sf_uploads[i].head == head)) {
      return true;
    }
  }
  for (int i = 0; i < sf_nkills; i++) {
    if (sf_kills[i] == head) {
      return true;
    }
  }
  return sf_eng.op == SF_OP_KILL && sf_eng.block == head;
}

/* Gives the blocks of the chain at head back (erased in the background), unless still used. RAM only. */
static void sf_release(uint32_t head)
{
  if (head == SF_NONE || sf_referenced(head)) {
    return;
  }
  uint32_t b = head;
  for (uint32_t i = 0; b != SF_NONE && i < sf_medium->blocks; i++) {
    uint32_t next = sf_next(b);
    if (sf_state(b) == SF_USED) {
      sf_set_state(b, SF_DIRTY);
      sf_set_next(b, SF_NONE);
      sf_free_count++;
      sf_dirty_count++;
    }
    b = next;
  }
}

/* ---- Index --------------------------------------------------------------- */

/* Position of name in the sorted index; *found tells whether it is there. */
static int sf_find(const char *name, bool *found)
{
  int lo = 0, hi = sf_nfiles;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(sf_name(sf_files[mid].name), name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *found = false;
  return lo;
}

/* Drops the entry at `at` from the index, and its name from the pool. */
static void sf_index_remove(int at)
{
  uint16_t name = sf_files[at].name;
  memmove(&sf_files[at], &sf_files[at + 1], (size_t)(sf_nfiles - at - 1) * sizeof sf_files[0]);
  sf_nfiles--;
  sf_name_drop(name);
}

/* Inserts an entry at its place (the name already in the pool). */
static void sf_index_insert(sf_file_t entry)
{
  bool found;
  int at = sf_find(sf_name(entry.name), &found);
  memmove(&sf_files[at + 1], &sf_files[at], (size_t)(sf_nfiles - at) * sizeof sf_files[0]);
  sf_files[at] = entry;
  sf_nfiles++;
}

/* Queues the dead mark of the chain at head; false when the list is full. */
static bool sf_kill_push(uint16_t head)
{
  if (sf_nkills == SF_KILLS) {
    return false;
  }
  sf_kills[sf_nkills++] = head;
  return true;
}

/* Index position of a committed file, or a negative STORAGE_* result. */
static int sf_lookup(const char *name)
{
  if (sf_medium == NULL) {
    return STORAGE_EIO;
  }
  if (!sf_name_ok(name)) {
    return STORAGE_EINVAL;
  }
  bool found;
  int at = sf_find(name, &found);
  return found ? at : STORAGE_ENOENT;
}

/* ---- The queue ------------------------------------------------------------ */

/*
 * Every entry is its 4-byte header and a multiple of 16 data bytes, so that
 * headers sit on words and never wrap; data entries may wrap.
 */
_Static_assert(STORAGE_FLASH_STAGE % 4 == 0 && sizeof(sf_qe_t) == 4, "queue headers are words that never wrap");

/* The header of the entry at pos. */
static sf_qe_t sf_q_head(uint32_t pos)
{
  sf_qe_t e;
  memcpy(&e, sf_q + pos, sizeof e);
  return e;
}

/* The ring's bytes at pos..pos+n into dst: at most two spans, each one memcpy (not a byte and a modulo each). */
static void sf_q_out(uint32_t pos, void *dst, uint32_t n)
{
  pos %= sizeof sf_q;
  uint32_t first = n < sizeof sf_q - pos ? n : (uint32_t)sizeof sf_q - pos;
  if (n > 0) {
    memcpy(dst, sf_q + pos, first);
    memcpy((uint8_t *)dst + first, sf_q, n - first);
  }
}

/*
 * Copies n bytes to the queue at dst, a word (src anywhere): on a Cortex-M
 * eight loads and one store-multiple per 32 bytes, the body's one copy.
 */
static void sf_copy_in(uint8_t *dst, const uint8_t *src, uint32_t n)
{
#if defined(__thumb2__)
  uint32_t blocks = n / 32;
  if (blocks > 0) {
    __asm volatile("1: ldr r4, [%1]\n\tldr r5, [%1, #4]\n\tldr r6, [%1, #8]\n\tldr r7, [%1, #12]\n\t"
                   "ldr r8, [%1, #16]\n\tldr r9, [%1, #20]\n\tldr r10, [%1, #24]\n\tldr r11, [%1, #28]\n\t"
                   "adds %1, %1, #32\n\tstmia %0!, {r4-r11}\n\tsubs %2, %2, #1\n\tbne 1b"
                   : "+r"(dst), "+r"(src), "+r"(blocks)
                   :
                   : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "cc", "memory");
    n %= 32;
  }
#endif
  memcpy(dst, src, n);
}

static void sf_q_in(uint32_t pos, const void *src, uint32_t n)
{
  pos %= sizeof sf_q;
  uint32_t first = n < sizeof sf_q - pos ? n : (uint32_t)sizeof sf_q - pos;
  if (n > 0) {
    sf_copy_in(sf_q + pos, src, first);
    sf_copy_in(sf_q, (const uint8_t *)src + first, n - first);
  }
}

/* Appends an entry whose bytes are a then b; false (nothing queued) when it does not fit. */
static bool sf_q_push(uint8_t kind, int slot, const void *a, uint32_t alen, const void *b, uint32_t blen)
{
  uint32_t len = alen + blen;
  if (sizeof(sf_qe_t) + len > sizeof sf_q - sf_q_used) {
    return false;
  }
  sf_qe_t e = {kind, (uint8_t)slot, (uint16_t)len};
  uint32_t pos = (sf_q_rd + sf_q_used) % sizeof sf_q;
  memcpy(sf_q + pos, &e, sizeof e);
  pos += (uint32_t)sizeof e;
  if (alen > 0 && alen < SF_UNIT && blen >= SF_UNIT - alen) {
    /* The first unit from both, so that b's bytes land on words. */
    uint8_t unit[SF_UNIT];
    memcpy(unit, a, alen);
    memcpy(unit + alen, b, SF_UNIT - alen);
    sf_q_in(pos, unit, SF_UNIT);
    b = (const uint8_t *)b + (SF_UNIT - alen);
    blen -= SF_UNIT - alen;
    pos += SF_UNIT;
  } else {
    sf_q_in(pos, a, alen);
    pos += alen;
  }
  sf_q_in(pos, b, blen);
  sf_q_used += (uint32_t)sizeof e + len;
  return true;
}

static bool sf_q_room(uint32_t len)
{
  return len <= sizeof sf_q - sf_q_used;
}

/* Drops the oldest entry. */
static void sf_q_pop(void)
{
  sf_qe_t e = sf_q_head(sf_q_rd);
  sf_q_rd = (sf_q_rd + (uint32_t)sizeof e + e.len) % sizeof sf_q;
  sf_q_used -= (uint32_t)sizeof e + e.len;
  sf_eng.phase = 0;
  sf_eng.done = 0;
}

/* Turns the queued entries of an upload slot into no-ops (RAM only). */
static void sf_q_skip(int slot)
{
  static const uint8_t skip = SF_Q_SKIP;
  for (uint32_t at = 0; at < sf_q_used;) {
    uint32_t pos = (sf_q_rd + at) % sizeof sf_q;
    sf_qe_t e = sf_q_head(pos);
    if (e.slot == slot) {
      sf_q_in(pos, &skip, 1);
    }
    at += (uint32_t)sizeof e + e.len;
  }
}

/* ---- The engine: one medium command per storage_poll() step ------------------ */

static int sf_slot(const struct storage_upload *u)
{
  return (int)(u - sf_uploads);
}

/* The medium failed under an upload: its later writes and its commit answer STORAGE_EIO. */
static void sf_upload_failed(struct storage_upload *u)
{
  u->failed = true;
}

/* Starts an erase of a dirty block, for an allocation or ahead of one; false when none is dirty or it fails. */
static bool sf_erase_one(void)
{
  uint32_t n = sf_medium->blocks;
  uint32_t b = sf_dirty_at < n ? sf_dirty_at : 0;
  for (uint32_t i = 0; i < n && sf_dirty_count > 0; i++, b = b + 1 < n ? b + 1 : 0) {
    if (sf_state(b) == SF_DIRTY) {
      if (flash_erase(sf_medium, b) != 0) {
        return false;
      }
      sf_dirty_at = b + 1; /* a released chain's blocks tend to be neighbours */
      sf_eng.op = SF_OP_ERASE;
      sf_eng.block = (uint16_t)b;
      return true;
    }
  }
  return false;
}

/* The dead mark of the chain at head landed (or failed): a pending removal may finish; a replaced version goes. */
static void sf_kill_done(uint16_t head, bool ok)
{
  for (int i = 0; i < sf_nfiles; i++) {
    if (sf_files[i].head == head) {
      sf_files[i].kill = ok ? SF_KILL_DONE : SF_KILL_FAILED;
      return;
    }
  }
  sf_release(head); /* a replaced version (boot resolves a failed mark by the commit sequence) */
}

/* Ends the operation in flight: ok tells whether it landed. */
static void sf_complete(bool ok)
{
  struct storage_upload *u = &sf_uploads[sf_eng.slot];
  bool mine = u->used && u->gen == sf_eng.gen;
  switch (sf_eng.op) {
  case SF_OP_ERASE:
    if (ok && sf_state(sf_eng.block) == SF_DIRTY) {
      sf_set_state(sf_eng.block, SF_FREE);
      sf_dirty_count--;
    }
    break;
  case SF_OP_KILL:
    sf_eng.op = SF_OP_NONE; /* no longer referenced by the mark in flight */
    sf_kill_done(sf_eng.block, ok);
    break;
  case SF_OP_UPLOAD:
    if (!ok && mine) {
      sf_upload_failed(u);
    }
    break;
  case SF_OP_COMMIT:
    if (mine) {
      u->commit = ok ? SF_C_DONE : SF_C_FAILED;
    }
    break;
  default:
    break;
  }
  sf_eng.op = SF_OP_NONE;
}

/* Notes that an upload's command started (or failed to). */
static void sf_started(struct storage_upload *u, uint8_t op, int rc)
{
  if (rc != 0) {
    if (op == SF_OP_COMMIT) {
      u->commit = SF_C_FAILED;
    } else {
      sf_upload_failed(u);
    }
    return;
  }
  sf_eng.op = op;
  sf_eng.slot = (uint8_t)sf_slot(u);
  sf_eng.gen = u->gen;
}

/* Takes an erased block for an upload, or starts an erase for it; SF_NONE when it has to wait (or failed). */
static uint32_t sf_take_for(struct storage_upload *u)
{
  uint32_t b = sf_take();
  if (b != SF_NONE) {
    u->blocks++;
    return b;
  }
  if (!sf_erase_one()) {
    sf_upload_failed(u); /* nothing to erase (cannot happen: the block was promised) or the medium failed */
  }
  return SF_NONE;
}

/*
 * Programs the data of the queue's first entry (len bytes; the upload's
 * current block has room) straight from the queue, a page at most per
 * command; only a unit that wraps round the queue's end is copied out. A
 * program that lands at once (instant timing) is followed by the next in
 * the same step, up to the entry's or the block's end.
 */
static bool sf_q_data(struct storage_upload *u, uint32_t len)
{
  for (;;) {
    uint32_t n = len - sf_eng.done;
    if (n > FLASH_BLOCK_SIZE - u->off) {
      n = FLASH_BLOCK_SIZE - u->off;
    }
    if (n > FLASH_PAGE_SIZE - u->off % FLASH_PAGE_SIZE) {
      n = FLASH_PAGE_SIZE - u->off % FLASH_PAGE_SIZE;
    }
    uint32_t pos = (sf_q_rd + (uint32_t)sizeof(sf_qe_t) + sf_eng.done) % sizeof sf_q;
    const uint8_t *src = sf_q + pos;
    uint32_t unit[SF_UNIT / 4];
    if (n > sizeof sf_q - pos) {
      n = (sizeof sf_q - pos) / SF_UNIT * SF_UNIT; /* up to the queue's end */
      if (n == 0) {
        sf_q_out(pos, unit, SF_UNIT); /* a unit across the end */
        src = (const uint8_t *)unit;
        n = SF_UNIT;
      }
    }
    uint32_t at = sf_addr(u->cur, u->off);
    u->off += n;
    sf_eng.done += n;
    bool last = sf_eng.done == len;
    int rc = flash_program(sf_medium, at, src, n); /* the medium takes the data now: the queue may move on */
    if (last) {
      sf_q_pop();
    }
    if (rc != 0) {
      sf_upload_failed(u);
      return true;
    }
    sf_eng.op = SF_OP_UPLOAD;
    if (last || u->off == FLASH_BLOCK_SIZE || sf_run_left <= 1 || flash_status(sf_medium) != 0) {
      sf_eng.slot = (uint8_t)sf_slot(u);
      sf_eng.gen = u->gen;
      return true; /* in flight, the entry or block done, or the run's commands spent: the next step goes on */
    }
    sf_eng.op = SF_OP_NONE; /* landed already */
    sf_run_left--;
  }
}

/* Starts the next command of the queue's first entry; false when the entry ended without one (look at the next). */
static bool sf_q_step(void)
{
  sf_qe_t e = sf_q_head(sf_q_rd);
  struct storage_upload *u = &sf_uploads[e.slot];
  if (e.kind == SF_Q_SKIP || u->failed) {
    sf_q_pop();
    return false;
  }
  if (e.kind == SF_Q_HEAD) {
    if (sf_eng.phase == 0) {
      uint32_t b = sf_take_for(u);
      if (b == SF_NONE) {
        return true; /* an erase started, or the upload failed: look again next step */
      }
      u->head = u->cur = (uint16_t)b;
      u->off = SF_HEAD_DATA;
      sf_eng.phase = 1;
      sf_started(u, SF_OP_UPLOAD, sf_rec_put(b, SF_OFF_HDR, SF_MAGIC_HEAD, u->file_id, 0));
      return true;
    }
    sf_name_t nm;
    memset(&nm, 0, sizeof nm);
    memcpy(nm.name, sf_name(u->name), strlen(sf_name(u->name)));
    nm.crc = sf_crc(&nm, sizeof nm.name);
    sf_q_pop();
    sf_started(u, SF_OP_UPLOAD, flash_program(sf_medium, sf_addr(u->head, SF_OFF_NAME), &nm, sizeof nm));
    return true;
  }
  if (e.kind == SF_Q_SHA) {
    sf_q_pop();
    sf_started(u, SF_OP_UPLOAD, flash_program(sf_medium, sf_addr(u->head, SF_OFF_SHA), u->sha, SF_SHA_LEN));
    return true;
  }
  if (e.kind == SF_Q_COMMIT) {
    sf_q_pop();
    sf_started(u, SF_OP_COMMIT, sf_commit_put(u));
    return true;
  }
  /* Data: a new block (its header, then the link to it) when the current one is full, else one page at most. */
  if (u->off == FLASH_BLOCK_SIZE) {
    if (sf_eng.phase == 0) {
      uint32_t nb = sf_take_for(u);
      if (nb == SF_NONE) {
        return true;
      }
      sf_set_next(u->cur, nb); /* in RAM at once: an abort from here on releases it with the chain */
      sf_eng.nb = (uint16_t)nb;
      sf_eng.phase = 1;
      sf_started(u, SF_OP_UPLOAD, sf_rec_put(nb, SF_OFF_HDR, SF_MAGIC_DATA, u->file_id, u->blocks - 1));
      return true;
    }
    uint32_t prev = u->cur;
    u->cur = sf_eng.nb;
    u->off = SF_DATA_DATA;
    sf_eng.phase = 0;
    sf_started(u, SF_OP_UPLOAD, sf_rec_put(prev, SF_OFF_LINK, SF_MAGIC_LINK, sf_eng.nb, 0));
    return true;
  }
  return sf_q_data(u, e.len);
}

/* True when a reader is open: erases ahead wait, so that reads are not held up. */
static bool sf_reading(void)
{
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (sf_readers[i].used) {
      return true;
    }
  }
  return false;
}

/*
 * True when a free block should be erased ahead now: one waits for it, no
 * reader is open (its reads would wait), and no upload is open, or the open
 * ones may need more erased blocks than there are (an erase holds up their
 * writes: 1 s on big sectors).
 */
static bool sf_erase_ahead(void)
{
  if (sf_dirty_count == 0 || sf_reading()) {
    return false;
  }
  uint32_t want = 0;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    const struct storage_upload *u = &sf_uploads[i];
    if (u->used) {
      want += (u->reserve > u->blocks ? u->reserve - u->blocks : 0) + 1; /* a chunked upload's next block */
    }
  }
  return want == 0 || sf_free_count - sf_dirty_count < want;
}

/* Starts at most one command: a dead mark, the queue's next, or an erase ahead. */
static void sf_step(void)
{
  if (sf_nkills > 0) {
    uint16_t head = sf_kills[0];
    memmove(&sf_kills[0], &sf_kills[1], (size_t)(sf_nkills - 1) * sizeof sf_kills[0]);
    sf_nkills--;
    static const uint8_t dead[SF_UNIT] = {0};
    if (flash_program(sf_medium, sf_addr(head, SF_OFF_DEAD), dead, sizeof dead) != 0) {
      sf_kill_done(head, false);
      return;
    }
    sf_eng.op = SF_OP_KILL;
    sf_eng.block = head;
    return;
  }
  while (sf_q_used > 0) {
    if (sf_q_step()) {
      return;
    }
  }
  if (sf_erase_ahead()) {
    sf_erase_one();
  }
}

/*
 * Steps while the medium is idle, at most SF_STEPS of them: a medium that is
 * busy after each command (any real timing) gets one command per call; an
 * instant one gets the whole queue done at once.
 */
#define SF_STEPS ((int)(STORAGE_FLASH_STAGE / FLASH_PAGE_SIZE) + 8)
static void sf_run(void)
{
  for (sf_run_left = SF_STEPS; sf_run_left > 0; sf_run_left--) {
    int st = flash_status(sf_medium);
    if (st == FLASH_BUSY) {
      break;
    }
    if (sf_eng.op != SF_OP_NONE) {
      sf_complete(st == 0);
    }
    sf_step();
    if (sf_eng.op == SF_OP_NONE) {
      break; /* nothing started: nothing to do, or the medium failed */
    }
  }
  sf_run_left = 0;
}

/* True while the medium has queued work or blocks to erase ahead (not once its power failed). */
static bool sf_has_work(bool failed)
{
  return sf_q_used > 0 || sf_nkills > 0 || (!failed && sf_erase_ahead());
}

/* Milliseconds until the operation in flight ends (rounded down: 0 when under one). */
static uint32_t sf_wait_ms(void)
{
  return flash_busy_left_us(sf_medium) / 1000u;
}

/** One bounded step of the medium work; see storage.h. */
uint32_t storage_poll(void)
{
  if (sf_medium == NULL) {
    return STORAGE_POLL_IDLE;
  }
  int st = flash_status(sf_medium);
  if (st == FLASH_BUSY) {
    return sf_wait_ms();
  }
  if (sf_eng.op != SF_OP_NONE) {
    sf_complete(st == 0);
  }
  if (sf_want_ready) {
    sf_want_ready = false;
    storage_ready(); /* the medium is idle now: pending reads go through */
  }
  sf_run();
  if (flash_status(sf_medium) == FLASH_BUSY) {
    return sf_wait_ms();
  }
  return sf_has_work(st < 0) || sf_want_ready || sf_eng.op != SF_OP_NONE ? 0 : STORAGE_POLL_IDLE;
}

/* Answers STORAGE_PENDING: storage_ready() comes after the next step. */
static int sf_pending(void)
{
  sf_want_ready = true;
  return STORAGE_PENDING;
}

/* ---- Boot ---------------------------------------------------------------- */

/* The next block of a chain on the medium, or SF_NONE (boot). */
static uint32_t sf_next_on_medium(uint32_t block)
{
  sf_rec_t r;
  if (!sf_rec_get(block, SF_OFF_LINK, SF_MAGIC_LINK, &r) || r.a >= sf_medium->blocks) {
    return SF_NONE;
  }
  return r.a;
}

/* Checks the chain of a committed head block, marks it used and keeps its links; false when broken. */
static bool sf_claim_chain(uint32_t head, uint32_t file_id, uint32_t size)
{
  uint32_t need = sf_blocks_for(size);
  uint32_t b = head;
  for (uint32_t i = 0; i < need; i++) {
    sf_rec_t r;
    if (b == SF_NONE || sf_state(b) == SF_USED ||
        (i > 0 && (!sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_DATA, &r) || r.a != file_id || r.b != i))) {
      /* Undo what this chain claimed so far. */
      for (uint32_t k = 0, c = head; k < i; k++) {
        uint32_t next = sf_next(c);
        sf_set_state(c, SF_DIRTY);
        sf_set_next(c, SF_NONE);
        c = next;
      }
      return false;
    }
    sf_set_state(b, SF_USED);
    uint32_t next = i + 1 < need ? sf_next_on_medium(b) : SF_NONE;
    sf_set_next(b, next);
    b = next;
  }
  return true;
}

/* A version lost to another at boot: its dead mark is queued (or, the list full, its blocks simply go). */
static void sf_boot_drop(uint16_t head)
{
  if (!sf_kill_push(head)) {
    sf_release(head);
  }
}

/* Looks at one head block: a committed, live file joins the index. */
static void sf_boot_head(uint32_t b, uint32_t file_id, unsigned *dropped)
{
  sf_rec_t c;
  sf_name_t nm;
  bool has_sha;
  uint8_t sha[SF_SHA_LEN];
  bool named = flash_read(sf_medium, sf_addr(b, SF_OFF_NAME), &nm, sizeof nm) == 0 &&
               nm.crc == sf_crc(&nm, sizeof nm.name) && memchr(nm.name, '\0', sizeof nm.name) != NULL &&
               sf_name_ok(nm.name);
  if (!named || !sf_commit_get(b, &c, &has_sha, sha)) {
    ++*dropped; /* an upload the power cut short */
    return;
  }
  if (c.b >= sf_next_seq) {
    sf_next_seq = c.b + 1;
  }
  if (!flash_is_erased(sf_medium, sf_addr(b, SF_OFF_DEAD), SF_UNIT)) {
    return; /* removed or replaced */
  }
  if (!sf_claim_chain(b, file_id, c.a)) {
    log_line("storage: file '%s' in block %u has a broken chain; dropped", nm.name, (unsigned)b);
    return;
  }
  bool found;
  int at = sf_find(nm.name, &found);
  if (found) {
    /* Two versions: a power cut came between a commit and the old one's dead mark. */
    if (sf_files[at].seq > c.b) {
      sf_boot_drop((uint16_t)b);
      return;
    }
    uint16_t old = sf_files[at].head;
    sf_index_remove(at);
    sf_boot_drop(old);
  }
  int name = sf_nfiles < STORAGE_FLASH_MAX_FILES ? sf_name_add(nm.name) : -1;
  if (name < 0) {
    log_line("storage: more than %d files or %u bytes of names; '%s' is not served", STORAGE_FLASH_MAX_FILES,
             (unsigned)STORAGE_FLASH_NAME_POOL, nm.name);
    sf_release(b);
    return;
  }
  sf_file_t entry = {(uint16_t)b, (uint16_t)name, SF_KILL_NONE, has_sha, c.a, c.b, {0}};
  memcpy(entry.sha, sha, has_sha ? sizeof entry.sha : 0);
  sf_index_insert(entry);
}

/** Rebuilds the index from the medium; see storage_flash.h. */
int storage_flash_init(flash_model_t *f)
{
  if (f->blocks > STORAGE_FLASH_MAX_BLOCKS || f->blocks < 2) {
    log_line("storage: medium of %u blocks is out of range", (unsigned)f->blocks);
    return -1;
  }
  sf_medium = f;
  memset(sf_uploads, 0, sizeof sf_uploads);
  memset(sf_readers, 0, sizeof sf_readers);
  memset(&sf_eng, 0, sizeof sf_eng);
  sf_nfiles = 0;
  sf_names_used = 0;
  sf_q_rd = sf_q_used = 0;
  sf_nkills = 0;
  sf_want_ready = false;
  sf_next_id = 1;
  sf_next_seq = 1;
  sf_cursor = 0;
  sf_dirty_at = 0;
  /* First pass: erased blocks are free, everything else waits for an erase unless a live file claims it. */
  for (uint32_t b = 0; b < f->blocks; b++) {
    sf_rec_t r;
    bool head = sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_HEAD, &r);
    if ((head || sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_DATA, &r)) && r.a >= sf_next_id) {
      sf_next_id = r.a + 1; /* file ids are never reused, not even those of dropped uploads */
    }
    sf_blk[b] = SF_BLK_NEXT;
    sf_set_state(b, flash_is_erased(f, sf_addr(b, 0), FLASH_BLOCK_SIZE) ? SF_FREE : SF_DIRTY);
  }
  /* Second pass: committed files. */
  unsigned dropped = 0;
  for (uint32_t b = 0; b < f->blocks; b++) {
    sf_rec_t r;
    if (sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_HEAD, &r)) {
      sf_boot_head(b, r.a, &dropped);
    }
  }
  sf_free_count = 0;
  sf_dirty_count = 0;
  uint64_t used = 0;
  for (uint32_t b = 0; b < f->blocks; b++) {
    sf_free_count += sf_state(b) != SF_USED;
    sf_dirty_count += sf_state(b) == SF_DIRTY;
  }
  for (int i = 0; i < sf_nfiles; i++) {
    used += sf_files[i].size;
  }
  log_line("storage: flash %u KiB in %u blocks: %d file%s, %llu bytes used, %llu free%s", (unsigned)(f->size / 1024),
           (unsigned)f->blocks, sf_nfiles, sf_nfiles == 1 ? "" : "s", (unsigned long long)used,
           (unsigned long long)storage_free(), dropped > 0 ? ", unfinished uploads dropped" : "");
  return 0;
}

/** Erase blocks free now (erased, or waiting for an erase). */
uint32_t storage_flash_free_blocks(void)
{
  return sf_free_count;
}

/** Erase blocks waiting for an erase. */
uint32_t storage_flash_dirty_blocks(void)
{
  return sf_dirty_count;
}

/* ---- storage.h ----------------------------------------------------------- */

/** Bytes of the largest file the empty medium would hold. */
uint64_t storage_capacity(void)
{
  return sf_medium == NULL ? 0 : sf_bytes_in(sf_medium->blocks);
}

/** Bytes of the largest file that fits now, beside the files and the uploads in progress. */
uint64_t storage_free(void)
{
  return sf_medium == NULL ? 0 : sf_bytes_in(sf_unreserved());
}

/** True when `name` is committed; its size goes to *size when size is not NULL. */
bool storage_exists(const char *name, uint64_t *size)
{
  bool found = false;
  if (sf_medium == NULL || !sf_name_ok(name)) {
    return false;
  }
  int at = sf_find(name, &found);
  if (found && size != NULL) {
    *size = sf_files[at].size;
  }
  return found;
}

/** Starts an upload: its blocks are promised now, its head block is programmed from the queue. */
int storage_open(const char *name, uint64_t length, storage_upload_t **out)
{
  if (sf_medium == NULL) {
    return STORAGE_EIO;
  }
  if (!sf_name_ok(name)) {
    return STORAGE_EINVAL;
  }
  struct storage_upload *u = NULL;
  int new_names = 0;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (sf_uploads[i].used) {
      if (strcmp(sf_name(sf_uploads[i].name), name) == 0) {
        return STORAGE_EBUSY; /* the name is being written */
      }
      new_names++;
    } else if (u == NULL) {
      u = &sf_uploads[i];
    }
  }
  if (u == NULL) {
    return STORAGE_EBUSY;
  }
  bool exists;
  sf_find(name, &exists);
  if (!exists && sf_nfiles + new_names >= STORAGE_FLASH_MAX_FILES) {
    return STORAGE_ENOSPC; /* no index slot for another name */
  }
  uint32_t need = length == STORAGE_LEN_UNKNOWN             ? 1
                  : length > sf_bytes_in(sf_medium->blocks) ? UINT32_MAX
                                                            : sf_blocks_for(length);
  if (need > sf_unreserved()) {
    return STORAGE_ENOSPC;
  }
  if (!sf_q_room(sizeof(sf_qe_t))) {
    return sf_pending();
  }
  int nm = sf_name_add(name);
  if (nm < 0) {
    return STORAGE_ENOSPC; /* no room for another name */
  }
  uint8_t gen = (uint8_t)(u->gen + 1);
  *u = (struct storage_upload){.used = true,
                               .gen = gen,
                               .name = (uint16_t)nm,
                               .head = SF_NONE,
                               .cur = SF_NONE,
                               .file_id = sf_next_id++,
                               .length = length,
                               .reserve = need};
  sf_q_push(SF_Q_HEAD, sf_slot(u), NULL, 0, NULL, 0);
  *out = u;
  return STORAGE_OK;
}

/**
 * Appends bytes: whole units go to the queue, the rest waits in the stage.
 * A known length was reserved at open, so only passing it fails; a chunked
 * upload is checked against the unreserved blocks as it goes.
 */
int storage_write(storage_upload_t *u, const void *data, size_t len)
{
  uint64_t total = (uint64_t)u->written + len;
  if (total > sf_bytes_in(sf_medium->blocks) || (u->length != STORAGE_LEN_UNKNOWN && total > u->length)) {
    return STORAGE_ENOSPC; /* past the medium, or past the announced length (never reserved) */
  }
  uint32_t need = sf_blocks_for(total);
  uint32_t have = u->reserve > u->blocks ? u->reserve : u->blocks;
  if (need > have && need - have > sf_unreserved()) {
    return STORAGE_ENOSPC;
  }
  if (u->failed || u->commit != SF_C_NONE) {
    return STORAGE_EIO;
  }
  if (len > STORAGE_FLASH_WRITE_MAX) {
    return STORAGE_EINVAL; /* longer than the queue could ever take at once */
  }
  uint32_t all = u->stage_len + (uint32_t)len;
  uint32_t whole = all - all % SF_UNIT;
  if (whole > 0 && !sf_q_push(SF_Q_DATA, sf_slot(u), u->stage, u->stage_len, data, whole - u->stage_len)) {
    sf_run(); /* an idle medium takes what is queued now (a busy one its next command) */
    if (!sf_q_push(SF_Q_DATA, sf_slot(u), u->stage, u->stage_len, data, whole - u->stage_len)) {
      return sf_pending(); /* nothing kept: the same bytes come again */
    }
  }
  /*
   * Promise the blocks these bytes need before taking them. For chunked
   * uploads this matters when the last partial unit waits in the stage for a
   * block not yet allocated: without the promise another upload could take
   * that block and this commit would fail for lack of space.
   */
  if (need > u->reserve) {
    u->reserve = need;
  }
  const uint8_t *p = data;
  if (whole > 0) {
    memcpy(u->stage, p + (whole - u->stage_len), all - whole);
  } else {
    memcpy(u->stage + u->stage_len, p, len);
  }
  u->stage_len = all - whole;
  u->written = (uint32_t)total;
  return STORAGE_OK;
}

/**
 * Queues the last partial unit and the commit record, and answers
 * STORAGE_PENDING until the record has landed; then the index takes the new
 * version and the old one's dead mark is queued.
 */
int storage_commit(storage_upload_t *u, bool *replaced)
{
  if (replaced != NULL) {
    *replaced = false;
  }
  bool exists;
  int at = sf_find(sf_name(u->name), &exists);
  if (u->failed || u->commit == SF_C_FAILED) {
    storage_abort(u);
    return STORAGE_EIO;
  }
  if (u->commit == SF_C_NONE) {
    if (!exists && sf_nfiles == STORAGE_FLASH_MAX_FILES) {
      storage_abort(u);
      return STORAGE_ENOSPC;
    }
    uint32_t room = 3 * (uint32_t)sizeof(sf_qe_t) + (u->stage_len > 0 ? SF_UNIT : 0);
    if (!sf_q_room(room)) {
      return sf_pending();
    }
    if (u->stage_len > 0) {
      memset(u->stage + u->stage_len, 0xFF, SF_UNIT - u->stage_len);
      sf_q_push(SF_Q_DATA, sf_slot(u), u->stage, SF_UNIT, NULL, 0);
      u->stage_len = 0;
    }
    u->seq = sf_next_seq++;
    if (u->has_sha) {
      sf_q_push(SF_Q_SHA, sf_slot(u), NULL, 0, NULL, 0); /* the digest from u->sha, before the record */
    }
    sf_q_push(SF_Q_COMMIT, sf_slot(u), NULL, 0, NULL, 0);
    u->commit = SF_C_QUEUED;
    return sf_pending();
  }
  if (u->commit == SF_C_QUEUED) {
    return sf_pending();
  }
  /* The record landed: the new version is durable. */
  if (exists) {
    sf_file_t old = sf_files[at];
    if (old.kill == SF_KILL_NONE && !sf_kill_push(old.head)) {
      return sf_pending(); /* the dead marks' list is full: it drains first */
    }
    sf_index_remove(at);
    if (old.kill == SF_KILL_DONE || old.kill == SF_KILL_FAILED) {
      sf_release(old.head); /* already marked (else the mark in flight releases it) */
    }
    if (replaced != NULL) {
      *replaced = true;
    }
  }
  sf_file_t entry = {u->head, u->name, SF_KILL_NONE, u->has_sha, u->written, u->seq, {0}};
  memcpy(entry.sha, u->sha, sizeof entry.sha);
  u->used = false;
  sf_index_insert(entry);
  return STORAGE_OK;
}

/** Drops the upload at once: its queued work is skipped and its blocks erased in the background. */
void storage_abort(storage_upload_t *u)
{
  if (u == NULL || !u->used) {
    return;
  }
  u->used = false;
  sf_q_skip(sf_slot(u));
  sf_release(u->head);
  sf_name_drop(u->name);
}

/** Marks a committed file dead: STORAGE_PENDING until the mark has landed; readers that have it open keep reading it. */
int storage_remove(const char *name)
{
  int at = sf_lookup(name);
  if (at < 0) {
    return at;
  }
  sf_file_t *e = &sf_files[at];
  switch (e->kill) {
  case SF_KILL_DONE: {
    uint16_t head = e->head;
    sf_index_remove(at);
    sf_release(head);
    return STORAGE_OK;
  }
  case SF_KILL_FAILED:
    e->kill = SF_KILL_NONE;
    return STORAGE_EIO;
  case SF_KILL_QUEUED:
    return sf_pending();
  default:
    if (sf_kill_push(e->head)) {
      e->kill = SF_KILL_QUEUED;
    }
    return sf_pending();
  }
}

/** Opens a committed file for reading; its blocks stay until the reader closes. */
int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size)
{
  int at = sf_lookup(name);
  if (at < 0) {
    return at;
  }
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    struct storage_reader *r = &sf_readers[i];
    if (!r->used) {
      const sf_file_t *f = &sf_files[at];
      *r = (struct storage_reader){true, f->has_sha, f->head, f->head, SF_HEAD_DATA, f->size, f->size, {0}};
      memcpy(r->sha, f->sha, sizeof r->sha);
      if (size != NULL) {
        *size = sf_files[at].size;
      }
      *out = r;
      return STORAGE_OK;
    }
  }
  return STORAGE_EBUSY;
}

/** Copies up to len bytes from the medium, following the chain; STORAGE_PENDING while the medium is busy. */
long storage_read(storage_reader_t *r, void *buf, size_t len)
{
  if (len == 0 || r->left == 0) {
    return 0;
  }
  int st = flash_status(sf_medium);
  if (st != 0) {
    return st == FLASH_BUSY ? sf_pending() : STORAGE_EIO;
  }
  uint8_t *dst = buf;
  size_t done = 0;
  while (done < len && r->left > 0) {
    if (r->off == FLASH_BLOCK_SIZE) {
      uint32_t nb = sf_next(r->cur);
      if (nb == SF_NONE) {
        return STORAGE_EIO;
      }
      r->cur = (uint16_t)nb;
      r->off = SF_DATA_DATA;
    }
    size_t n = FLASH_BLOCK_SIZE - r->off;
    if (n > len - done) {
      n = len - done;
    }
    if (n > r->left) {
      n = r->left;
    }
    if (flash_read(sf_medium, sf_addr(r->cur, r->off), dst + done, (uint32_t)n) != 0) {
      return STORAGE_EIO;
    }
    r->off += (uint32_t)n;
    r->left -= (uint32_t)n;
    done += n;
  }
  return (long)done;
}

/** Moves the reader along its chain in RAM (the links are kept there): never touches the medium. */
int storage_read_seek(storage_reader_t *r, uint64_t offset)
{
  if (offset > r->size) {
    return STORAGE_EINVAL;
  }
  uint32_t cur = r->head, off = SF_HEAD_DATA;
  uint32_t skip = (uint32_t)offset;
  while (skip > FLASH_BLOCK_SIZE - off) {
    skip -= FLASH_BLOCK_SIZE - off;
    cur = sf_next(cur);
    if (cur == SF_NONE) {
      return STORAGE_EIO;
    }
    off = SF_DATA_DATA;
  }
  r->cur = (uint16_t)cur;
  r->off = off + skip; /* at a block's end: storage_read() follows the link */
  r->left = r->size - (uint32_t)offset;
  return STORAGE_OK;
}

/** Keeps the digest for the commit: programmed before the record, in RAM with the index after. */
void storage_set_sha256(storage_upload_t *u, const uint8_t sha256[32])
{
  memcpy(u->sha, sha256, sizeof u->sha);
  u->has_sha = true;
}

/** The digest the index keeps in RAM for a committed file. */
bool storage_sha256(const char *name, uint8_t out[32])
{
  int at = sf_lookup(name);
  if (at < 0 || !sf_files[at].has_sha) {
    return false;
  }
  memcpy(out, sf_files[at].sha, SF_SHA_LEN);
  return true;
}

/** The digest of the version the reader opened. */
bool storage_read_sha256(storage_reader_t *r, uint8_t out[32])
{
  if (r->has_sha) {
    memcpy(out, r->sha, SF_SHA_LEN);
  }
  return r->has_sha;
}

/** Closes a reader; a file removed or replaced meanwhile gives its blocks back now. */
void storage_read_close(storage_reader_t *r)
{
  if (r != NULL && r->used) {
    r->used = false;
    sf_release(r->head);
  }
}

/** Calls fn for each committed file in byte order of names; fn may change the files meanwhile. */
int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx)
{
  if (sf_medium == NULL) {
    return STORAGE_EIO;
  }
  char name[SF_NAME_AREA];
  name[0] = '\0';
  for (;;) {
    /* The first name after the last one reported: the index may change during fn. */
    bool found;
    int at = name[0] == '\0' ? 0 : sf_find(name, &found);
    if (name[0] != '\0' && found) {
      at++;
    }
    if (at >= sf_nfiles) {
      return 0;
    }
    const char *n = sf_name(sf_files[at].name);
    memcpy(name, n, strlen(n) + 1);
    int rc = fn(ctx, name, sf_files[at].size);
    if (rc != 0) {
      return rc;
    }
  }
}
