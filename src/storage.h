/* storage.h: the storage interface uploads stream into; each board implements it (atomic commit). */
#ifndef POSTERN_STORAGE_H
#define POSTERN_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results: 0 is success, the rest are negative. */
enum storage_result {
  STORAGE_OK = 0,
  STORAGE_ENOSPC = -1,   /* not enough free space: 507 (or 413 when announced) */
  STORAGE_EIO = -2,      /* the medium failed: 500 */
  STORAGE_ENOENT = -3,   /* no such file: 404 */
  STORAGE_EBUSY = -4,    /* every upload or reader slot is taken, or the name is being written: 503 / 409 */
  STORAGE_EINVAL = -5,   /* a name the backend cannot hold */
};

/** Length passed to storage_open() for a chunked upload. */
#define STORAGE_LEN_UNKNOWN UINT64_MAX

typedef struct storage_upload storage_upload_t; /* from the backend's fixed pool */
typedef struct storage_reader storage_reader_t; /* from the backend's fixed pool */

/** Bytes the medium holds in all. */
uint64_t storage_capacity(void);
/** Bytes still free: capacity less committed files less uploads in progress. */
uint64_t storage_free(void);
/** True when `name` is committed; its size goes to *size when size is not NULL. */
bool storage_exists(const char *name, uint64_t *size);

/**
 * Starts writing `name`. Nothing is visible under that name until
 * storage_commit(); a previous version stays readable and intact until then.
 * A known length is checked against the free space at once (STORAGE_ENOSPC).
 */
int storage_open(const char *name, uint64_t length, storage_upload_t **out);
/** Appends bytes; STORAGE_ENOSPC when they would pass the free space. */
int storage_write(storage_upload_t *u, const void *data, size_t len);
/**
 * Makes the written bytes visible under the name, atomically; *replaced tells
 * whether a version existed. Frees u in every case, failures included: after
 * an error the previous version is intact, except that STORAGE_EIO may also
 * mean the new version is visible but not known to be durable.
 */
int storage_commit(storage_upload_t *u, bool *replaced);
/** Drops everything written; the previous version is untouched. Frees u; NULL does nothing. */
void storage_abort(storage_upload_t *u);

/** Removes a committed file. */
int storage_remove(const char *name);

/** Opens a committed file for reading; it stays readable even if replaced meanwhile. */
int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size);
/** Reads up to len bytes at the reader's position; returns the count (0 at the end) or a negative result. */
long storage_read(storage_reader_t *r, void *buf, size_t len);
/** Closes a reader and frees its slot; NULL does nothing. */
void storage_read_close(storage_reader_t *r);

/**
 * Calls fn for each committed file (in byte order of names) until fn returns
 * non-zero; returns that value, 0, or a negative result before the first call
 * (so fn should stop with a positive value). `name` is valid during the call
 * only; fn may call the other functions but not storage_list() itself.
 */
int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx);

#endif /* POSTERN_STORAGE_H */
