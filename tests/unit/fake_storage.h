/* fake_storage.h: an in-memory stand-in for storage.h in unit tests (free, capacity and a few named files). */
#ifndef POSTERN_FAKE_STORAGE_H
#define POSTERN_FAKE_STORAGE_H

#include <stdint.h>

/** Forgets every file; sets capacity and free bytes. */
void fake_storage_reset(uint64_t capacity, uint64_t free_bytes);
/** Adds (or resizes) a committed file seen by storage_exists. */
void fake_storage_add(const char *name, uint64_t size);

#endif /* POSTERN_FAKE_STORAGE_H */
