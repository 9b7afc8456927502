/* fake_storage.c: in-memory fake of the storage interface: free/capacity/exists work, the rest fail with STORAGE_EIO. */
#include "fake_storage.h"

#include <string.h>

#include "storage.h"

#define FAKE_FILES 16
#define FAKE_NAME 80

static uint64_t fake_capacity = 1024 * 1024;
static uint64_t fake_free = 1024 * 1024;
static char fake_names[FAKE_FILES][FAKE_NAME];
static uint64_t fake_sizes[FAKE_FILES];
static int fake_count;

/** Forgets every file; sets capacity and free bytes. */
void fake_storage_reset(uint64_t capacity, uint64_t free_bytes)
{
  fake_capacity = capacity;
  fake_free = free_bytes;
  fake_count = 0;
}

/** Adds (or resizes) a committed file seen by storage_exists. */
void fake_storage_add(const char *name, uint64_t size)
{
  for (int i = 0; i < fake_count; i++) {
    if (strcmp(fake_names[i], name) == 0) {
      fake_sizes[i] = size;
      return;
    }
  }
  if (fake_count < FAKE_FILES && strlen(name) < FAKE_NAME) {
    strcpy(fake_names[fake_count], name);
    fake_sizes[fake_count++] = size;
  }
}

/** Bytes the fake medium holds in all. */
uint64_t storage_capacity(void)
{
  return fake_capacity;
}

/** Bytes still free, as set by fake_storage_reset. */
uint64_t storage_free(void)
{
  return fake_free;
}

/** True when fake_storage_add named the file. */
bool storage_exists(const char *name, uint64_t *size)
{
  for (int i = 0; i < fake_count; i++) {
    if (strcmp(fake_names[i], name) == 0) {
      if (size != NULL) {
        *size = fake_sizes[i];
      }
      return true;
    }
  }
  return false;
}

/** Not faked. */
int storage_open(const char *name, uint64_t length, storage_upload_t **out)
{
  (void)name;
  (void)length;
  *out = NULL;
  return STORAGE_EIO;
}

/** Not faked. */
int storage_write(storage_upload_t *u, const void *data, size_t len)
{
  (void)u;
  (void)data;
  (void)len;
  return STORAGE_EIO;
}

/** Not faked. */
int storage_commit(storage_upload_t *u, bool *replaced)
{
  (void)u;
  (void)replaced;
  return STORAGE_EIO;
}

/** Not faked. */
void storage_abort(storage_upload_t *u)
{
  (void)u;
}

/** Not faked. */
int storage_remove(const char *name)
{
  (void)name;
  return STORAGE_EIO;
}

/** Not faked. */
int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size)
{
  (void)name;
  (void)size;
  *out = NULL;
  return STORAGE_EIO;
}

/** Not faked. */
long storage_read(storage_reader_t *r, void *buf, size_t len)
{
  (void)r;
  (void)buf;
  (void)len;
  return STORAGE_EIO;
}

/** Not faked. */
int storage_read_seek(storage_reader_t *r, uint64_t offset)
{
  (void)r;
  (void)offset;
  return STORAGE_EIO;
}

/** Not faked. */
void storage_set_sha256(storage_upload_t *u, const uint8_t sha256[32])
{
  (void)u;
  (void)sha256;
}

/** Not faked: no file has a digest. */
bool storage_sha256(const char *name, uint8_t out[32])
{
  (void)name;
  (void)out;
  return false;
}

/** Not faked. */
bool storage_read_sha256(storage_reader_t *r, uint8_t out[32])
{
  (void)r;
  (void)out;
  return false;
}

/** Not faked. */
void storage_read_close(storage_reader_t *r)
{
  (void)r;
}

/** Not faked: lists nothing. */
int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx)
{
  (void)fn;
  (void)ctx;
  return STORAGE_EIO;
}
