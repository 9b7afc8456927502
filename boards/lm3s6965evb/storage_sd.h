/* storage_sd.h: storage.h on a 512-byte-sector block device (the SD card): files in clusters, made visible by one commit record sector written last. */
#ifndef POSTERN_STORAGE_SD_H
#define POSTERN_STORAGE_SD_H

#include <stdbool.h>
#include <stdint.h>

#include "blockdev.h"
#include "postern_opts.h" /* the board's STORAGE_SD_* choices come with its options */

/*
 * The card's layout (scripts/card.py writes the same), in 512-byte sectors:
 *   0        superblock: magic, the card's sector count, the cluster size
 *   1        settings (card.py SET=): NAME=VALUE lines, with a length and CRC
 *   2        the policy's header (card.py POLICY=): length, CRC, name
 *   3..127   the policy's text
 *   128..191 64 commit record slots
 *   256..    data clusters of STORAGE_SD_CLUSTER sectors or more (a power of
 *            two, so that at most STORAGE_SD_MAX_CLUSTERS cover the card)
 */
#define STORAGE_SD_LBA_SUPER 0u
#define STORAGE_SD_LBA_SETTINGS 1u
#define STORAGE_SD_LBA_POLICY 2u
#define STORAGE_SD_POLICY_SECTORS 125u
#define STORAGE_SD_LBA_RECORDS 128u
#define STORAGE_SD_SLOTS 64u
#define STORAGE_SD_LBA_DATA 256u
#define STORAGE_SD_CLUSTER 8u
/** The smallest card the store takes: 512 KiB. */
#define STORAGE_SD_MIN_SECTORS 1024u

/** Clusters the store tracks (one bit of RAM each). */
#ifndef STORAGE_SD_MAX_CLUSTERS
#define STORAGE_SD_MAX_CLUSTERS 2048u
#endif
/** Most committed files. */
#ifndef STORAGE_SD_MAX_FILES
#define STORAGE_SD_MAX_FILES 16
#endif
/** Runs of clusters (extents) a file may take: an open that would need more is STORAGE_ENOSPC. */
#ifndef STORAGE_SD_EXTENTS
#define STORAGE_SD_EXTENTS 8
#endif
/** Longest single storage_write() (longer ones are STORAGE_EINVAL): one received pbuf. */
#ifndef STORAGE_SD_WRITE_MAX
#define STORAGE_SD_WRITE_MAX 1536u
#endif

/** Why the store serves nothing (storage_sd_state()). */
typedef enum storage_sd_state {
  STORAGE_SD_READY,
  STORAGE_SD_NO_CARD,    /* no card answered */
  STORAGE_SD_TOO_SMALL,  /* smaller than STORAGE_SD_MIN_SECTORS */
  STORAGE_SD_FOREIGN,    /* sector 0 holds something else: left untouched */
  STORAGE_SD_CARD_ERROR, /* the card failed while the store started */
} storage_sd_state_t;

/**
 * Serves storage.h from `dev` (NULL: no card): reads the superblock (a blank
 * card, sector 0 all zeros, is formatted), then every commit record slot, and
 * rebuilds the index (the newest record of each name; unfinished uploads
 * hold no record, so their clusters are simply free). Waits for the card:
 * boot only. Whatever the state, storage.h answers: without a usable card
 * it holds nothing and every open is STORAGE_ENOSPC.
 */
storage_sd_state_t storage_sd_init(const blockdev_t *dev);

/** Bytes of one cluster (0 without a usable card): the unit files take space in. */
uint32_t storage_sd_cluster_bytes(void);

/**
 * Reads `n` sectors from `lba` into buf, waiting (boot only: the card's
 * settings and policy, also on a card the store cannot use); false when the
 * card failed or there is none.
 */
bool storage_sd_read_sync(uint32_t lba, uint32_t n, void *buf);

/** CRC-32 (IEEE 802.3) of the card's records, settings and policy. */
uint32_t storage_sd_crc32(const void *data, size_t len);

#endif /* POSTERN_STORAGE_SD_H */
