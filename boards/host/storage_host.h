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

#endif /* POSTERN_STORAGE_HOST_H */
