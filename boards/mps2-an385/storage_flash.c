/* storage_flash.c: storage.h on a flash medium: each file a chain of erase blocks, made visible by one commit record programmed last. */
#include "storage_flash.h"

#include <string.h>

#include "log.h"
#include "postern_opts.h"
#include "storage.h"

/*
 * On the medium, every block in use starts with a header unit. A file is a
 * chain of blocks, each block's link unit naming the next one:
 *
 *   head block: [hdr HEAD][link][name: 5 units][commit][dead][data ...]
 *   data block: [hdr DATA (file id, index)][link][data ...]
 *
 * An upload programs the head header and name, then data, allocating and
 * linking blocks as it goes. Nothing of it counts until the commit record
 * (size, commit sequence, CRC) is programmed: that single program unit is the
 * commit. Replacing a name then marks the old version's dead unit, removing a
 * file marks its own. At boot the index is rebuilt from head blocks with a
 * valid commit record and a clear dead unit; if a power cut came between a
 * commit and the old version's dead mark, the higher commit sequence wins.
 * Every record carries a CRC, so a torn program reads as never written.
 * Blocks of dead, replaced or unfinished files are erased when next needed,
 * except while a reader still has the file open.
 */

#define SF_UNIT FLASH_PROG_UNIT
#define SF_MAGIC_HEAD 0x31444850u /* "PHD1" */
#define SF_MAGIC_DATA 0x31544450u /* "PDT1" */
#define SF_MAGIC_LINK 0x4B4E4C50u /* "PLNK" */
#define SF_MAGIC_COMMIT 0x544D4350u /* "PCMT" */
#define SF_NONE 0xFFFFu

/* Offsets inside a block. */
#define SF_OFF_HDR 0u
#define SF_OFF_LINK 16u
#define SF_OFF_NAME 32u
#define SF_NAME_AREA 80u
#define SF_OFF_COMMIT (SF_OFF_NAME + SF_NAME_AREA)
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

enum { SF_FREE, SF_DIRTY, SF_USED }; /* block states kept in RAM */

typedef struct sf_file {
  uint16_t head;
  uint32_t size;
  uint32_t seq;
} sf_file_t;

struct storage_upload {
  bool used;
  uint16_t head, cur;      /* first block, block being filled */
  uint32_t off;            /* next unit to program in cur */
  uint32_t file_id;
  uint64_t length;         /* announced at open, or STORAGE_LEN_UNKNOWN */
  uint32_t written;        /* bytes accepted */
  uint32_t blocks;         /* blocks allocated */
  uint32_t reserve;        /* blocks promised: at open for a known length, write by write for chunked */
  uint32_t stage_len;
  uint8_t stage[SF_UNIT];  /* bytes short of a whole unit */
};

struct storage_reader {
  bool used;
  uint16_t head, cur;
  uint32_t off;
  uint32_t left;
};

static flash_model_t *sf_medium;
static uint8_t sf_state[STORAGE_FLASH_MAX_BLOCKS];
static uint32_t sf_free_count; /* blocks SF_FREE or SF_DIRTY */
static uint32_t sf_cursor;     /* where the next allocation looks first (wear spreading) */
static uint32_t sf_next_id, sf_next_seq;
static sf_file_t sf_files[STORAGE_FLASH_MAX_FILES]; /* sorted by name */
static int sf_nfiles;
static struct storage_upload sf_uploads[POSTERN_MAX_CONNS];
static struct storage_reader sf_readers[POSTERN_MAX_CONNS];

/* ---- Records --------------------------------------------------------- */

/* CRC-32 (IEEE 802.3, reflected), bit by bit: records are small. */
static uint32_t sf_crc(const void *data, size_t len)
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

static uint32_t sf_addr(uint32_t block, uint32_t off)
{
  return block * FLASH_BLOCK_SIZE + off;
}

/* Reads the record at (block, off); true when it is intact and has this magic. */
static bool sf_rec_get(uint32_t block, uint32_t off, uint32_t magic, sf_rec_t *r)
{
  memcpy(r, flash_read(sf_medium, sf_addr(block, off)), sizeof *r);
  return r->magic == magic && r->crc == sf_crc(r, 12);
}

static int sf_rec_put(uint32_t block, uint32_t off, uint32_t magic, uint32_t a, uint32_t b)
{
  sf_rec_t r = {magic, a, b, 0};
  r.crc = sf_crc(&r, 12);
  return flash_program(sf_medium, sf_addr(block, off), &r, sizeof r);
}

/* The next block of a chain, or SF_NONE. */
static uint32_t sf_next(uint32_t block)
{
  sf_rec_t r;
  if (!sf_rec_get(block, SF_OFF_LINK, SF_MAGIC_LINK, &r) || r.a >= sf_medium->blocks) {
    return SF_NONE;
  }
  return r.a;
}

/* The name in a head block (NUL-terminated on the medium, checked at boot and when written). */
static const char *sf_name_of(uint32_t head)
{
  return ((const sf_name_t *)(const void *)flash_read(sf_medium, sf_addr(head, SF_OFF_NAME)))->name;
}

/* Blocks a file of `size` bytes occupies. */
static uint32_t sf_blocks_for(uint64_t size)
{
  if (size <= SF_HEAD_PAYLOAD) {
    return 1;
  }
  return 1u + (uint32_t)((size - SF_HEAD_PAYLOAD + SF_DATA_PAYLOAD - 1) / SF_DATA_PAYLOAD);
}

/* Bytes of the largest file that fits in n blocks. */
static uint64_t sf_bytes_in(uint32_t n)
{
  return n == 0 ? 0 : (uint64_t)(n - 1) * SF_DATA_PAYLOAD + SF_HEAD_PAYLOAD;
}

/* ---- Blocks ------------------------------------------------------------ */

/* Blocks promised to uploads of known length but not yet allocated. */
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

/* Takes a free block, erasing it first when needed; SF_NONE when none (or the medium failed). */
static uint32_t sf_alloc(void)
{
  uint32_t n = sf_medium->blocks;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t b = (sf_cursor + i) % n;
    if (sf_state[b] == SF_USED) {
      continue;
    }
    if (sf_state[b] == SF_DIRTY) {
      if (flash_erase(sf_medium, b) != 0) {
        return SF_NONE;
      }
      sf_state[b] = SF_FREE;
    }
    sf_state[b] = SF_USED;
    sf_free_count--;
    sf_cursor = (b + 1) % n;
    return b;
  }
  return SF_NONE;
}

/* True when an index entry, a reader or an upload still uses the chain at head. */
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
  return false;
}

/* Gives the blocks of the chain at head back (to be erased when next needed), unless still used. */
static void sf_release(uint32_t head)
{
  if (sf_referenced(head)) {
    return;
  }
  uint32_t b = head;
  for (uint32_t i = 0; b != SF_NONE && i < sf_medium->blocks; i++) {
    if (sf_state[b] == SF_USED) {
      sf_state[b] = SF_DIRTY;
      sf_free_count++;
    }
    b = sf_next(b);
  }
}

/* ---- Index --------------------------------------------------------------- */

/* Position of name in the sorted index; *found tells whether it is there. */
static int sf_find(const char *name, bool *found)
{
  int lo = 0, hi = sf_nfiles;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(sf_name_of(sf_files[mid].head), name);
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

static void sf_index_remove(int at)
{
  memmove(&sf_files[at], &sf_files[at + 1], (size_t)(sf_nfiles - at - 1) * sizeof sf_files[0]);
  sf_nfiles--;
}

/* Marks the file at index position `at` dead on the medium, drops it from the index, releases its blocks. */
static int sf_kill(int at)
{
  static const uint8_t dead[SF_UNIT] = {0};
  uint32_t head = sf_files[at].head;
  int rc = flash_program(sf_medium, sf_addr(head, SF_OFF_DEAD), dead, sizeof dead);
  sf_index_remove(at);
  sf_release(head);
  return rc;
}

static bool sf_name_ok(const char *name)
{
  size_t n = name != NULL ? strlen(name) : 0;
  return n > 0 && n <= POSTERN_NAME_MAX && name[0] != '.' && strchr(name, '/') == NULL;
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

/* ---- Boot ---------------------------------------------------------------- */

/* Checks the chain of a committed head block and marks it used; false when broken. */
static bool sf_claim_chain(uint32_t head, uint32_t file_id, uint32_t size)
{
  uint32_t need = sf_blocks_for(size);
  uint32_t b = head;
  for (uint32_t i = 0; i < need; i++) {
    sf_rec_t r;
    if (b == SF_NONE || sf_state[b] == SF_USED ||
        (i > 0 && (!sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_DATA, &r) || r.a != file_id || r.b != i))) {
      /* Undo what this chain claimed so far. */
      for (uint32_t k = 0, c = head; k < i; k++, c = sf_next(c)) {
        sf_state[c] = SF_DIRTY;
      }
      return false;
    }
    sf_state[b] = SF_USED;
    if (i + 1 < need) {
      b = sf_next(b);
    }
  }
  return true;
}

/* Looks at one head block: a committed, live file joins the index. */
static void sf_boot_head(uint32_t b, uint32_t file_id, unsigned *dropped)
{
  sf_rec_t c;
  const sf_name_t *nm = (const sf_name_t *)(const void *)flash_read(sf_medium, sf_addr(b, SF_OFF_NAME));
  bool named = nm->crc == sf_crc(nm, sizeof nm->name) && memchr(nm->name, '\0', sizeof nm->name) != NULL &&
               sf_name_ok(nm->name);
  if (!named || !sf_rec_get(b, SF_OFF_COMMIT, SF_MAGIC_COMMIT, &c)) {
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
    log_line("storage: file '%s' in block %u has a broken chain; dropped", nm->name, (unsigned)b);
    return;
  }
  bool found;
  int at = sf_find(nm->name, &found);
  if (found) {
    /* Two versions: a power cut came between a commit and the old one's dead mark. */
    if (sf_files[at].seq > c.b) {
      static const uint8_t dead[SF_UNIT] = {0};
      flash_program(sf_medium, sf_addr(b, SF_OFF_DEAD), dead, sizeof dead);
      sf_release(b);
      return;
    }
    sf_kill(at);
    at = sf_find(nm->name, &found);
  }
  if (sf_nfiles == STORAGE_FLASH_MAX_FILES) {
    log_line("storage: more than %d files; '%s' is not served", STORAGE_FLASH_MAX_FILES, nm->name);
    sf_release(b);
    return;
  }
  memmove(&sf_files[at + 1], &sf_files[at], (size_t)(sf_nfiles - at) * sizeof sf_files[0]);
  sf_files[at] = (sf_file_t){(uint16_t)b, c.a, c.b};
  sf_nfiles++;
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
  sf_nfiles = 0;
  sf_next_id = 1;
  sf_next_seq = 1;
  sf_cursor = 0;
  /* First pass: erased blocks are free, everything else waits for an erase unless a live file claims it. */
  for (uint32_t b = 0; b < f->blocks; b++) {
    sf_rec_t r;
    bool head = sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_HEAD, &r);
    if ((head || sf_rec_get(b, SF_OFF_HDR, SF_MAGIC_DATA, &r)) && r.a >= sf_next_id) {
      sf_next_id = r.a + 1; /* file ids are never reused, not even those of dropped uploads */
    }
    sf_state[b] = flash_is_erased(f, sf_addr(b, 0), FLASH_BLOCK_SIZE) ? SF_FREE : SF_DIRTY;
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
  uint64_t used = 0;
  for (uint32_t b = 0; b < f->blocks; b++) {
    sf_free_count += sf_state[b] != SF_USED;
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

/** Starts an upload: head block with header and name; nothing visible until the commit. */
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
      if (strcmp(sf_name_of(sf_uploads[i].head), name) == 0) {
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
  uint32_t need = length == STORAGE_LEN_UNKNOWN ? 1 : length > sf_bytes_in(sf_medium->blocks) ? UINT32_MAX
                                                                                              : sf_blocks_for(length);
  if (need > sf_unreserved()) {
    return STORAGE_ENOSPC;
  }
  uint32_t b = sf_alloc();
  if (b == SF_NONE) {
    return STORAGE_EIO;
  }
  sf_name_t nm;
  memset(&nm, 0, sizeof nm);
  memcpy(nm.name, name, strlen(name));
  nm.crc = sf_crc(&nm, sizeof nm.name);
  *u = (struct storage_upload){.used = true, .head = (uint16_t)b, .cur = (uint16_t)b, .off = SF_HEAD_DATA,
                               .file_id = sf_next_id++, .length = length, .blocks = 1,
                               .reserve = length == STORAGE_LEN_UNKNOWN ? 0 : need};
  if (sf_rec_put(b, SF_OFF_HDR, SF_MAGIC_HEAD, u->file_id, 0) != 0 ||
      flash_program(sf_medium, sf_addr(b, SF_OFF_NAME), &nm, sizeof nm) != 0) {
    storage_abort(u);
    return STORAGE_EIO;
  }
  *out = u;
  return STORAGE_OK;
}

/* Programs `len` bytes (whole units) at the upload's position, moving to a new linked block when one is full. */
static int sf_program_data(struct storage_upload *u, const uint8_t *p, uint32_t len)
{
  while (len > 0) {
    if (u->off == FLASH_BLOCK_SIZE) {
      uint32_t nb = sf_alloc();
      if (nb == SF_NONE) {
        return STORAGE_EIO;
      }
      if (sf_rec_put(nb, SF_OFF_HDR, SF_MAGIC_DATA, u->file_id, u->blocks) != 0 ||
          sf_rec_put(u->cur, SF_OFF_LINK, SF_MAGIC_LINK, nb, 0) != 0) {
        return STORAGE_EIO;
      }
      u->blocks++;
      u->cur = (uint16_t)nb;
      u->off = SF_DATA_DATA;
    }
    uint32_t n = FLASH_BLOCK_SIZE - u->off;
    if (n > len) {
      n = len;
    }
    if (flash_program(sf_medium, sf_addr(u->cur, u->off), p, n) != 0) {
      return STORAGE_EIO;
    }
    u->off += n;
    p += n;
    len -= n;
  }
  return STORAGE_OK;
}

/**
 * Appends bytes: whole units go to the medium at once, the rest waits in the
 * stage. A known length was reserved at open, so only passing it fails; a
 * chunked upload is checked against the unreserved blocks as it goes.
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
  size_t left = len;
  if (u->stage_len > 0) {
    size_t n = SF_UNIT - u->stage_len < left ? SF_UNIT - u->stage_len : left;
    memcpy(u->stage + u->stage_len, p, n);
    u->stage_len += (uint32_t)n;
    p += n;
    left -= n;
    if (u->stage_len == SF_UNIT) {
      if (sf_program_data(u, u->stage, SF_UNIT) != STORAGE_OK) {
        return STORAGE_EIO;
      }
      u->stage_len = 0;
    }
  }
  uint32_t whole = (uint32_t)(left - left % SF_UNIT);
  if (whole > 0 && sf_program_data(u, p, whole) != STORAGE_OK) {
    return STORAGE_EIO;
  }
  memcpy(u->stage, p + whole, left - whole);
  u->stage_len += (uint32_t)(left - whole);
  u->written = (uint32_t)total;
  return STORAGE_OK;
}

/** Programs the last partial unit, then the commit record; the old version is marked dead after. */
int storage_commit(storage_upload_t *u, bool *replaced)
{
  if (replaced != NULL) {
    *replaced = false;
  }
  if (u->stage_len > 0) {
    memset(u->stage + u->stage_len, 0xFF, SF_UNIT - u->stage_len);
    if (sf_program_data(u, u->stage, SF_UNIT) != STORAGE_OK) {
      storage_abort(u);
      return STORAGE_EIO;
    }
    u->stage_len = 0;
  }
  bool exists;
  int at = sf_find(sf_name_of(u->head), &exists);
  if (!exists && sf_nfiles == STORAGE_FLASH_MAX_FILES) {
    storage_abort(u);
    return STORAGE_ENOSPC;
  }
  uint32_t seq = sf_next_seq++;
  if (sf_rec_put(u->head, SF_OFF_COMMIT, SF_MAGIC_COMMIT, u->written, seq) != 0) {
    storage_abort(u);
    return STORAGE_EIO;
  }
  /* Committed: the rest only tidies up (boot would do the same). */
  sf_file_t entry = {u->head, u->written, seq};
  u->used = false;
  if (exists) {
    sf_kill(at);
    at = sf_find(sf_name_of(entry.head), &exists);
    if (replaced != NULL) {
      *replaced = true;
    }
  }
  memmove(&sf_files[at + 1], &sf_files[at], (size_t)(sf_nfiles - at) * sizeof sf_files[0]);
  sf_files[at] = entry;
  sf_nfiles++;
  return STORAGE_OK;
}

/** Drops the upload's blocks (erased when next needed); the previous version is untouched. */
void storage_abort(storage_upload_t *u)
{
  if (u == NULL || !u->used) {
    return;
  }
  u->used = false;
  sf_release(u->head);
}

/** Marks a committed file dead; readers that have it open keep reading it. */
int storage_remove(const char *name)
{
  int at = sf_lookup(name);
  if (at < 0) {
    return at;
  }
  return sf_kill(at) == 0 ? STORAGE_OK : STORAGE_EIO;
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
      *r = (struct storage_reader){true, sf_files[at].head, sf_files[at].head, SF_HEAD_DATA, sf_files[at].size};
      if (size != NULL) {
        *size = sf_files[at].size;
      }
      *out = r;
      return STORAGE_OK;
    }
  }
  return STORAGE_EBUSY;
}

/** Copies up to len bytes from the memory-mapped medium, following the chain. */
long storage_read(storage_reader_t *r, void *buf, size_t len)
{
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
    memcpy(dst + done, flash_read(sf_medium, sf_addr(r->cur, r->off)), n);
    r->off += (uint32_t)n;
    r->left -= (uint32_t)n;
    done += n;
  }
  return (long)done;
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
    const char *n = sf_name_of(sf_files[at].head);
    memcpy(name, n, strlen(n) + 1);
    int rc = fn(ctx, name, sf_files[at].size);
    if (rc != 0) {
      return rc;
    }
  }
}
