/* storage.h: the storage interface uploads stream into; each board implements it (atomic commit). */
#ifndef POSTERN_STORAGE_H
#define POSTERN_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results: 0 is success, the rest are negative. */
enum storage_result {
  STORAGE_OK = 0,
  STORAGE_ENOSPC = -1,  /* not enough free space: 507 (or 413 when announced) */
  STORAGE_EIO = -2,     /* the medium failed: 500 */
  STORAGE_ENOENT = -3,  /* no such file: 404 */
  STORAGE_EBUSY = -4,   /* every upload or reader slot is taken, or the name is being written: 503 / 409 */
  STORAGE_EINVAL = -5,  /* a name the backend cannot hold */
  STORAGE_PENDING = -6, /* not now: the medium is busy; call again after storage_ready() (see below) */
};

/** Length passed to storage_open() for a chunked upload. */
#define STORAGE_LEN_UNKNOWN UINT64_MAX

typedef struct storage_upload storage_upload_t; /* from the backend's fixed pool */
typedef struct storage_reader storage_reader_t; /* from the backend's fixed pool */

/*
 * The space contract. Every backend follows it, so that a policy's decision
 * from storage_free() and the 100 Continue that follows are honest: an upload
 * that was admitted never fails later for lack of space.
 *
 * - Reservation at open. storage_open() with a known length reserves that
 *   many bytes at once, or what the medium needs to hold them (erase blocks
 *   and their headers on flash). When they do not fit next to the committed
 *   files and the other uploads in progress, the open fails with
 *   STORAGE_ENOSPC and nothing is taken. A reserved upload's writes, up to
 *   the announced length, never fail with STORAGE_ENOSPC, and neither does
 *   its commit.
 * - The announced length is a ceiling. storage_write() past it fails with
 *   STORAGE_ENOSPC and keeps nothing of that call (the core never does this:
 *   its framing stops at Content-Length). storage_commit() stores what was
 *   written; the core commits a known length only once all of it arrived.
 * - Unknown length (STORAGE_LEN_UNKNOWN, chunked) reserves nothing beyond the
 *   backend's fixed cost of a file (flash: the head block). Each write is
 *   checked against the free space as it comes: the quota is enforced while
 *   streaming, and the write that does not fit fails with STORAGE_ENOSPC,
 *   keeping nothing of that call. What a chunked upload has written stays
 *   taken until its commit or abort (the caller aborts after the failure, and
 *   nothing of the upload is kept).
 * - Release. storage_commit() and storage_abort() release the reservation in
 *   every case, failures included; after a commit the file counts at its
 *   written size.
 * - A replacement is a new upload: the old version's space stays taken until
 *   the commit makes the new one visible (both fit at once, or the open fails
 *   with STORAGE_ENOSPC). The host backend releases the old version's bytes
 *   at the commit; the flash backend releases its blocks at the commit too,
 *   or when the last reader that still has the old version open closes it.
 * - storage_free() is the largest length storage_open() accepts now: the
 *   capacity less the committed files, less every reservation, less what
 *   chunked uploads have written (flash: whole blocks, less a file's own
 *   headers). It falls when an upload opens, not only as its bytes arrive.
 *   An open may still fail with STORAGE_ENOSPC when a backend has no room for
 *   another name (flash: STORAGE_FLASH_MAX_FILES), which storage_free() does
 *   not show; the core opens before it answers 100, so the client is told
 *   before it sends the body either way.
 */

/*
 * The time contract. No call waits for the medium: real flash erases for
 * tens of milliseconds to seconds and an SD card stalls for hundreds, and
 * every call here runs on the network path, in lwIP's context (the NO_SYS
 * main loop, or tcpip_thread), where waiting would stop every connection.
 *
 * - Pending. storage_open(), storage_write(), storage_commit(),
 *   storage_remove() and storage_read() may answer STORAGE_PENDING. Such an
 *   answer changed nothing the caller can see: nothing of a write kept,
 *   nothing reserved, nothing removed, no byte read, and the upload handle of
 *   a pending commit is still the caller's. The backend has started or queued
 *   the medium work that stands in the way.
 * - Resume. The backend does that work a bounded step at a time in
 *   storage_poll(), which the board's main loop calls on every pass, and
 *   calls storage_ready() (the core's) when a call that answered
 *   STORAGE_PENDING may now go further. The caller then makes the same call
 *   again with the same arguments; a write's retry starts with the same
 *   bytes and may carry more after them (what arrived meanwhile). It may be
 *   pending again. A caller may give up instead: storage_abort() frees a
 *   pending upload at once (the medium work it started ends in the
 *   background), storage_read_close() a pending reader.
 * - While a write is pending the core keeps the bytes it could not store in
 *   the received pbufs and does not open the TCP window for them: the client
 *   is slowed down by TCP itself, nothing is dropped, nothing busy-waits. A
 *   pending commit holds the final answer until the medium is done.
 * - Bounded work. Each call, and each storage_poll() step, does a small fixed
 *   amount of medium work (flash: one program unit run or one busy check;
 *   host: a few system calls; a medium with no busy time may run its staging
 *   through in one call, a bounded amount). storage_capacity(),
 *   storage_free(), storage_exists(), storage_sha256(), storage_list(),
 *   storage_read_sha256() and storage_read_seek() answer from what the
 *   backend keeps in RAM (host: the file system's metadata) and never pend.
 * - Size. The core writes at most one received pbuf's payload
 *   (PBUF_POOL_BUFSIZE bytes) per storage_write(): a backend that stages
 *   writes holds at least that much at once, or such a write never fits.
 * - Re-entry. Everything runs in one context. storage_ready() is called only
 *   from storage_poll(), never from inside another storage call, so the core
 *   may call any storage function from it; storage_list()'s callback may call
 *   every function but storage_list().
 */

/** Milliseconds storage_poll() may wait before its next step when it has none to do now. */
#define STORAGE_POLL_IDLE UINT32_MAX

/**
 * Does a bounded step of the medium work in progress and calls
 * storage_ready() when pending calls may go further. Returns how long the
 * main loop may sleep before calling it again: 0 while the medium wants
 * attention, STORAGE_POLL_IDLE when nothing is in progress.
 */
uint32_t storage_poll(void);

/** The core's hook (http_conn.c), called by storage_poll(): calls that answered STORAGE_PENDING may go further. */
void storage_ready(void);

/** Bytes the medium holds in all. */
uint64_t storage_capacity(void);
/** Largest length storage_open() accepts now: the capacity less committed files, reservations and chunked bytes written. */
uint64_t storage_free(void);
/** True when `name` is committed; its size goes to *size when size is not NULL. */
bool storage_exists(const char *name, uint64_t *size);

/**
 * Starts writing `name`. Nothing is visible under that name until
 * storage_commit(); a previous version stays readable and intact until then.
 * A known length is reserved at once (STORAGE_ENOSPC when it does not fit);
 * STORAGE_LEN_UNKNOWN reserves nothing. See the space contract above.
 * STORAGE_PENDING: nothing reserved and *out untouched; open again later.
 */
int storage_open(const char *name, uint64_t length, storage_upload_t **out);
/**
 * Appends bytes; on a failure nothing of this call is kept. STORAGE_ENOSPC
 * past the announced length, or, for STORAGE_LEN_UNKNOWN, past the free space.
 * STORAGE_PENDING: the medium has no room for these bytes yet; write them
 * again (and maybe more after them) after storage_ready().
 */
int storage_write(storage_upload_t *u, const void *data, size_t len);
/**
 * Makes the written bytes visible under the name, atomically; *replaced tells
 * whether a version existed. Frees u and releases its reservation in every
 * case, failures included: after an error the previous version is intact,
 * except that STORAGE_EIO may also mean the new version is visible but not
 * known to be durable. The one exception to "in every case": STORAGE_PENDING
 * keeps u, nothing visible yet; commit again after storage_ready() (or abort).
 */
int storage_commit(storage_upload_t *u, bool *replaced);

/** Drops everything written and releases the reservation; the previous version is untouched. Frees u; NULL does nothing. */
void storage_abort(storage_upload_t *u);

/*
 * The digest contract. A file may carry the SHA-256 of its content, stored
 * with its commit: the core computes it while the body streams and hands it
 * over before the commit. The digest and the content become visible
 * together; a crash or a power cut at any point leaves the file (old or new
 * version) with its own digest or with none, never with a wrong one. A file
 * committed without storage_set_sha256(), or put on the medium by other
 * means (a file copied into the host directory), has no digest. These calls
 * never touch a busy medium and never pend: the digest is in RAM or in the
 * medium's metadata.
 */

/** Gives the upload's SHA-256 (32 bytes), stored with its commit; call before storage_commit() (again: the last wins). */
void storage_set_sha256(storage_upload_t *u, const uint8_t sha256[32]);
/** True when committed `name` has a stored SHA-256; copies it to out. Never pends (like storage_exists()). */
bool storage_sha256(const char *name, uint8_t out[32]);
/** The SHA-256 of the version the reader has open (it stays that version if replaced meanwhile); false: none. */
bool storage_read_sha256(storage_reader_t *r, uint8_t out[32]);

/** Removes a committed file; STORAGE_PENDING: still there, remove again after storage_ready(). */
int storage_remove(const char *name);

/** Opens a committed file for reading; it stays readable even if replaced meanwhile. */
int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size);
/**
 * Reads up to len bytes at the reader's position; returns the count (0 at
 * the end), STORAGE_PENDING (nothing read: the medium is busy), or another
 * negative result.
 */
long storage_read(storage_reader_t *r, void *buf, size_t len);
/**
 * Moves the reader's position to `offset` bytes from the start of its
 * version (a ranged download). Never pends and reads nothing: the next
 * storage_read() starts there. STORAGE_EINVAL past the size (the size itself
 * is allowed: the next read answers 0).
 */
int storage_read_seek(storage_reader_t *r, uint64_t offset);
/** Closes a reader and frees its slot; NULL does nothing. */
void storage_read_close(storage_reader_t *r);

/**
 * Calls fn for every committed file, in byte order of names (strcmp, as
 * unsigned bytes), until fn returns non-zero; returns that value, 0, or a
 * negative result when the medium fails (before the first call, or later,
 * the listing then incomplete; so fn should stop with a positive value).
 * There is no limit on the count: a backend that cannot hold the
 * whole listing in memory visits it in pieces, never cuts it short. `name`
 * is valid during the call only; fn may call the other functions but not
 * storage_list() itself. A file fn adds or removes meanwhile may or may not
 * be visited; every other file is visited exactly once.
 */
int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx);

#endif /* POSTERN_STORAGE_H */
