/* storage_host.h: the host simulator's storage backend: one directory stands in for the device's flash. */
#ifndef POSTERN_STORAGE_HOST_H
#define POSTERN_STORAGE_HOST_H

#include <stdint.h>

/**
 * Serves storage.h from the directory `dir`, simulating a flash of
 * `capacity` bytes. Creates `dir` when missing (one level only), removes
 * uploads a crash or kill left behind (`.upload-*`), counts the committed
 * files' bytes against the capacity (more than the capacity still starts,
 * with nothing free) and logs one summary line. Must run before any other
 * storage call; calling it again drops every open upload and reader (their
 * handles become invalid) and starts over. Returns 0, or -1 with a logged
 * reason.
 */
int storage_host_init(const char *dir, uint64_t capacity);

/**
 * Gives the simulated medium real timing (the time contract of storage.h):
 * each unit of medium work, namely erasing the next STORAGE_HOST_UNIT bytes
 * of an upload before its first write there, a commit and a remove, keeps
 * the one medium busy for `latency_ms` and completes in storage_poll(); the
 * call that needs it answers STORAGE_PENDING meanwhile. Units run one at a
 * time, in the order they were asked for. 0 (the default) is synchronous:
 * nothing ever pends. `clock_ms` reads milliseconds (wrapping at 2^32); NULL
 * is the host's monotonic clock (unit tests pass their own). Takes effect for
 * work asked for afterwards; storage_host_init() drops the work in progress.
 */
void storage_host_timing(uint32_t latency_ms, uint32_t (*clock_ms)(void));

/** Bytes one unit of medium work erases ahead of an upload's writes: a flash erase block. */
#define STORAGE_HOST_UNIT 4096u

#endif /* POSTERN_STORAGE_HOST_H */
