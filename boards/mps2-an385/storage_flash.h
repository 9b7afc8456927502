/* storage_flash.h: storage.h on a flash medium (flash_model.h): log-structured block chains, commit record programmed last, medium work in storage_poll(). */
#ifndef POSTERN_STORAGE_FLASH_H
#define POSTERN_STORAGE_FLASH_H

#include "flash_model.h"

/** Most erase blocks the backend tracks (4 MiB of 4 KiB blocks, one byte of RAM each). */
#ifndef STORAGE_FLASH_MAX_BLOCKS
#define STORAGE_FLASH_MAX_BLOCKS 1024
#endif

/** Most committed files. */
#ifndef STORAGE_FLASH_MAX_FILES
#define STORAGE_FLASH_MAX_FILES 64
#endif

/**
 * Bytes of the queue of medium work every upload shares (headers, data in
 * whole program units, commit records): what storage_write() takes before
 * it answers STORAGE_PENDING. The core writes one received pbuf at a time.
 */
#ifndef STORAGE_FLASH_STAGE
#define STORAGE_FLASH_STAGE 2048
#endif

/** Longest single storage_write() (longer ones are refused with STORAGE_EINVAL): one TCP segment fits. */
#define STORAGE_FLASH_WRITE_MAX (STORAGE_FLASH_STAGE - 32)

/** Bytes of RAM for the names of the files and uploads (each name and its NUL); an open past them is STORAGE_ENOSPC. */
#ifndef STORAGE_FLASH_NAME_POOL
#define STORAGE_FLASH_NAME_POOL 2048
#endif

/**
 * Serves storage.h from medium `f`: rebuilds the index from what the medium
 * holds (committed files; unfinished uploads and superseded versions are
 * dropped, and their blocks erased when next needed). A medium that holds
 * nothing of ours (fresh, all zeros or all ones) is simply empty.
 * Returns 0, or -1 when the medium is larger than STORAGE_FLASH_MAX_BLOCKS.
 */
int storage_flash_init(flash_model_t *f);

/** Erase blocks free now (erased, or waiting for an erase). */
uint32_t storage_flash_free_blocks(void);
/** Free erase blocks still waiting for their erase (storage_poll() erases them ahead). */
uint32_t storage_flash_dirty_blocks(void);

#endif /* POSTERN_STORAGE_FLASH_H */
