/* blockdev.h: a 512-byte-sector block device driven without waiting: start one transfer, then poll it (the SD card; the unit tests' RAM card). */
#ifndef POSTERN_BLOCKDEV_H
#define POSTERN_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCKDEV_SECTOR 512u

/** What blockdev_t.poll answers while the transfer goes on. */
#define BLOCKDEV_BUSY 1

typedef struct blockdev {
  /** Sectors the device holds. */
  uint32_t sectors;
  /**
   * Starts reading or writing n sectors from `lba`: sector i from or to
   * buf + i * stride (a stride of 0 writes one sector n times). Returns 0, or
   * a negative number when the device refused (nothing started).
   */
  int (*start)(bool write, uint32_t lba, uint32_t n, void *buf, size_t stride);
  /**
   * A bounded step of the transfer in progress: BLOCKDEV_BUSY, 0 when it is
   * done, negative when it failed (a write may then have reached some of its
   * sectors; each sector is written whole or not at all).
   */
  int (*poll)(void);
} blockdev_t;

#endif /* POSTERN_BLOCKDEV_H */
