/* sd_spi.h: an SD card on the LM3S6965's SSI0 (PL022) in SPI mode, chip select on PD0: initialisation, then block transfers that never wait. */
#ifndef POSTERN_SD_SPI_H
#define POSTERN_SD_SPI_H

#include <stdint.h>

#include "blockdev.h"

/** What sd_spi_init() found. */
typedef enum sd_spi_kind { SD_SPI_NONE, SD_SPI_SDSC, SD_SPI_SDHC } sd_spi_kind_t;

/**
 * Brings the card up (CMD0, CMD8, ACMD41, CMD58, CMD59, CMD16, CMD9) and
 * fills *dev with its size and the asynchronous transfer functions. Boot
 * only: it waits for the card (at most about a second). Returns the kind,
 * SD_SPI_NONE when no card answers or it does not start (the reason is
 * logged).
 */
sd_spi_kind_t sd_spi_init(blockdev_t *dev);

#endif /* POSTERN_SD_SPI_H */
