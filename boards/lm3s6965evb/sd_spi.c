/* sd_spi.c: an SD card in SPI mode on SSI0 (PL022), chip select PD0: card initialisation (SDSC and SDHC), single and multi-block transfers a bounded step at a time. */
#include "sd_spi.h"

#include <stdbool.h>
#include <string.h>

#include "board_bench.h"
#include "lm3s6965.h"
#include "log.h"
#include "lwip/sys.h"

/*
 * Commands carry their CRC7 and data blocks their CRC16 (CCITT, XMODEM
 * form) in both directions: CMD59 turns the card's checking on, and every
 * block read is checked (a mismatch fails the transfer as an I/O error).
 * QEMU's model checks neither but sends correct CRCs.
 *
 * Addresses: SDSC cards take byte addresses, SDHC cards block numbers
 * (CMD58's CCS bit); the block size is 512 either way (CMD16 on SDSC).
 *
 * Time. Nothing here waits once the card is up: a transfer starts with its
 * command, then each poll does one bounded step: look for a read's data
 * token (a few bytes), move one 512-byte block, or check a write's busy
 * signal (a few bytes). The card's own delays (up to 100 ms to find a block,
 * 250 ms of busy after a write, more on a worn card) become polls that
 * answer BLOCKDEV_BUSY. A transfer that sees no progress for
 * SD_SPI_TIMEOUT_MS fails.
 */

#define SD_BLOCK 512u
#define SD_TOKEN_SINGLE 0xFEu /* a read's and a single write's data token */
#define SD_TOKEN_MULTI 0xFCu  /* each block of a multiple write */
#define SD_TOKEN_STOP 0xFDu   /* ends a multiple write */
#define SD_R1_IDLE 0x01u
#define SD_R1_ILLEGAL 0x04u
#define SD_OCR_CCS (1u << 30)
#define SD_OCR_VDD_27_36 0x00FF8000u
#define SD_POLL_BYTES 16u       /* bytes a poll looks at for a token or the end of busy */
#define SD_SPI_TIMEOUT_MS 1000u /* no progress for this long: the transfer fails */

enum { SD_OP_IDLE, SD_OP_READ_TOKEN, SD_OP_WRITE_BLOCK, SD_OP_WRITE_BUSY, SD_OP_STOP_BUSY };

static struct {
  uint8_t state;
  bool write, multi;
  uint32_t n, i;
  uint8_t *buf;
  size_t stride;
  uint32_t since; /* sys_now() of the last progress */
} sd_op;
static bool sd_high_capacity;

/* ---- The wire ------------------------------------------------------------- */

static uint8_t sd_xfer(uint8_t out)
{
  while ((LM3S_SSI_SR & LM3S_SSI_SR_TNF) == 0) {
  }
  LM3S_SSI_DR = out;
  while ((LM3S_SSI_SR & LM3S_SSI_SR_RNE) == 0) {
  }
  return (uint8_t)LM3S_SSI_DR;
}

static void sd_select(void)
{
  LM3S_GPIO_DATA_BIT(LM3S_GPIOD_BASE, 0) = 0;
}

/* Deselects, then clocks one byte so that the card lets go of the data line. */
static void sd_deselect(void)
{
  LM3S_GPIO_DATA_BIT(LM3S_GPIOD_BASE, 0) = 1u;
  (void)sd_xfer(0xFFu);
}

static uint8_t sd_crc7(const uint8_t *p, size_t n)
{
  uint8_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t b = p[i];
    for (int k = 0; k < 8; k++, b <<= 1) {
      crc = (uint8_t)(crc << 1);
      if (((b ^ crc) & 0x80u) != 0) {
        crc ^= 0x09u;
      }
    }
  }
  return crc & 0x7Fu;
}

/* CRC-16/XMODEM of one block, the SD data CRC: a nibble at a time from a
 * 16-entry table (about 12 instructions a byte; bit by bit took 69). */
static uint16_t sd_crc16(const uint8_t *p, size_t n)
{
  static const uint16_t nibble[16] = {0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
                                      0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef};
  uint32_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc = (crc << 4) ^ nibble[((crc >> 12) ^ (p[i] >> 4)) & 0xFu];
    crc = (crc << 4) ^ nibble[((crc >> 12) ^ p[i]) & 0xFu];
  }
  return (uint16_t)crc;
}

/* Sends a command (the card selected) and returns its R1, or 0xFF when none came. */
static uint8_t sd_cmd(uint8_t cmd, uint32_t arg)
{
  (void)sd_xfer(0xFFu); /* one byte between commands: the card ends its last response on it */
  uint8_t f[6] = {(uint8_t)(0x40u | cmd), (uint8_t)(arg >> 24), (uint8_t)(arg >> 16), (uint8_t)(arg >> 8),
                  (uint8_t)arg};
  f[5] = (uint8_t)(sd_crc7(f, 5) << 1 | 1u);
  for (size_t i = 0; i < sizeof f; i++) {
    (void)sd_xfer(f[i]);
  }
  if (cmd == 12) {
    (void)sd_xfer(0xFFu); /* the stuff byte after a stop */
  }
  for (int i = 0; i < 10; i++) {
    uint8_t r = sd_xfer(0xFFu);
    if ((r & 0x80u) == 0) {
      return r;
    }
  }
  return 0xFFu;
}

/* ---- Transfers -------------------------------------------------------------- */

static int sd_fail(const char *what)
{
  log_line("sd: %s (block %u of %u)", what, (unsigned)sd_op.i, (unsigned)sd_op.n);
  sd_deselect();
  sd_op.state = SD_OP_IDLE;
  return -1;
}

static int sd_start(bool write, uint32_t lba, uint32_t n, void *buf, size_t stride)
{
  if (sd_op.state != SD_OP_IDLE || n == 0) {
    return -1;
  }
  sd_op.write = write;
  sd_op.multi = n > 1;
  sd_op.n = n;
  sd_op.i = 0;
  sd_op.buf = buf;
  sd_op.stride = stride;
  sd_op.since = sys_now();
  sd_select();
  uint8_t cmd = write ? (sd_op.multi ? 25u : 24u) : (sd_op.multi ? 18u : 17u);
  uint8_t r1 = sd_cmd(cmd, sd_high_capacity ? lba : lba * SD_BLOCK);
  if (r1 != 0) {
    log_line("sd: CMD%u at block %lu: R1 0x%02x", cmd, (unsigned long)lba, r1);
    sd_deselect();
    return -1;
  }
  sd_op.state = write ? SD_OP_WRITE_BLOCK : SD_OP_READ_TOKEN;
  return 0;
}

static bool sd_timed_out(void)
{
  return sys_now() - sd_op.since > SD_SPI_TIMEOUT_MS;
}

/* Ends the transfer: a multiple read is stopped with CMD12 (then the card may be busy). */
static int sd_finish(void)
{
  if (!sd_op.write && sd_op.multi) {
    (void)sd_cmd(12, 0);
    sd_op.state = SD_OP_STOP_BUSY;
    return BLOCKDEV_BUSY;
  }
  sd_deselect();
  sd_op.state = SD_OP_IDLE;
  return 0;
}

/* Looks for the end of busy (0xFF on the line) for a few bytes. */
static bool sd_ready(void)
{
  for (uint32_t k = 0; k < SD_POLL_BYTES; k++) {
    if (sd_xfer(0xFFu) == 0xFFu) {
      return true;
    }
  }
  return false;
}

static int sd_poll(void)
{
  switch (sd_op.state) {
  case SD_OP_READ_TOKEN:
    for (uint32_t k = 0; k < SD_POLL_BYTES; k++) {
      uint8_t t = sd_xfer(0xFFu);
      if (t == 0xFFu) {
        continue;
      }
      if (t != SD_TOKEN_SINGLE) {
        return sd_fail("read error token");
      }
      uint8_t *dst = sd_op.buf + sd_op.i * sd_op.stride;
      for (uint32_t b = 0; b < SD_BLOCK; b++) {
        dst[b] = sd_xfer(0xFFu);
      }
      uint16_t crc = (uint16_t)(sd_xfer(0xFFu) << 8);
      crc |= sd_xfer(0xFFu);
      if (crc != sd_crc16(dst, SD_BLOCK)) {
        return sd_fail("read CRC mismatch");
      }
      sd_op.since = sys_now();
      return ++sd_op.i == sd_op.n ? sd_finish() : BLOCKDEV_BUSY;
    }
    return sd_timed_out() ? sd_fail("no data token") : BLOCKDEV_BUSY;
  case SD_OP_WRITE_BLOCK: {
    const uint8_t *src = sd_op.buf + sd_op.i * sd_op.stride;
    uint16_t crc = sd_crc16(src, SD_BLOCK);
    (void)sd_xfer(0xFFu);
    (void)sd_xfer(sd_op.multi ? SD_TOKEN_MULTI : SD_TOKEN_SINGLE);
    for (uint32_t b = 0; b < SD_BLOCK; b++) {
      (void)sd_xfer(src[b]);
    }
    (void)sd_xfer((uint8_t)(crc >> 8));
    (void)sd_xfer((uint8_t)crc);
    uint8_t resp = 0xFFu;
    for (int k = 0; k < 8 && resp == 0xFFu; k++) {
      resp = sd_xfer(0xFFu);
    }
    if ((resp & 0x1Fu) != 0x05u) {
      return sd_fail("write not accepted");
    }
    sd_op.since = sys_now();
    sd_op.state = SD_OP_WRITE_BUSY;
    return BLOCKDEV_BUSY;
  }
  case SD_OP_WRITE_BUSY:
    if (!sd_ready()) {
      return sd_timed_out() ? sd_fail("busy after a write") : BLOCKDEV_BUSY;
    }
    sd_op.since = sys_now();
    if (++sd_op.i < sd_op.n) {
      sd_op.state = SD_OP_WRITE_BLOCK;
      return BLOCKDEV_BUSY;
    }
    if (sd_op.multi) {
      (void)sd_xfer(SD_TOKEN_STOP);
      (void)sd_xfer(0xFFu);
      sd_op.state = SD_OP_STOP_BUSY;
      return BLOCKDEV_BUSY;
    }
    return sd_finish();
  case SD_OP_STOP_BUSY:
    if (!sd_ready()) {
      return sd_timed_out() ? sd_fail("busy after a stop") : BLOCKDEV_BUSY;
    }
    sd_deselect();
    sd_op.state = SD_OP_IDLE;
    return 0;
  default:
    return -1;
  }
}

#if POSTERN_BENCH
/* A bench build counts the transfers as the medium's work (the CPU's on this board: no DMA, it moves each byte). */
static int sd_start_timed(bool write, uint32_t lba, uint32_t n, void *buf, size_t stride)
{
  BENCH_MEDIUM(0);
  int rc = sd_start(write, lba, n, buf, stride);
  BENCH_MEDIUM(1);
  return rc;
}

static int sd_poll_timed(void)
{
  BENCH_MEDIUM(0);
  int rc = sd_poll();
  BENCH_MEDIUM(1);
  return rc;
}
#define SD_START sd_start_timed
#define SD_POLL sd_poll_timed
#else
#define SD_START sd_start
#define SD_POLL sd_poll
#endif

/* ---- Initialisation ---------------------------------------------------------- */

/* Reads a register's data block (CSD: CMD9) of n bytes after its R1. */
static bool sd_read_reg(uint8_t cmd, uint8_t *out, size_t n)
{
  if (sd_cmd(cmd, 0) != 0) {
    return false;
  }
  for (int k = 0; k < 1000; k++) {
    uint8_t t = sd_xfer(0xFFu);
    if (t == SD_TOKEN_SINGLE) {
      for (size_t i = 0; i < n; i++) {
        out[i] = sd_xfer(0xFFu);
      }
      uint16_t crc = (uint16_t)(sd_xfer(0xFFu) << 8);
      crc |= sd_xfer(0xFFu);
      return crc == sd_crc16(out, n);
    }
    if (t != 0xFFu) {
      return false;
    }
  }
  return false;
}

/* Sectors of the card from its CSD (version 1: SDSC; version 2: SDHC/SDXC). */
static uint32_t sd_csd_sectors(const uint8_t *csd)
{
  if ((csd[0] >> 6) == 1u) {
    uint32_t c_size = (uint32_t)(csd[7] & 0x3Fu) << 16 | (uint32_t)csd[8] << 8 | csd[9];
    return (c_size + 1u) * 1024u;
  }
  uint32_t read_bl_len = csd[5] & 0x0Fu;
  uint32_t c_size = (uint32_t)(csd[6] & 0x03u) << 10 | (uint32_t)csd[7] << 2 | csd[8] >> 6;
  uint32_t mult = (uint32_t)(csd[9] & 0x03u) << 1 | csd[10] >> 7;
  uint64_t bytes = (uint64_t)(c_size + 1u) << (mult + 2u + read_bl_len);
  return (uint32_t)(bytes / SD_BLOCK);
}

static sd_spi_kind_t sd_init_fail(const char *why, uint32_t v)
{
  log_line("sd: %s (0x%02lx): no card", why, (unsigned long)v);
  sd_deselect();
  return SD_SPI_NONE;
}

/** Brings the card up; see sd_spi.h. */
sd_spi_kind_t sd_spi_init(blockdev_t *dev)
{
  memset(dev, 0, sizeof *dev);
  memset(&sd_op, 0, sizeof sd_op);
  /* PD0 drives the card's select: an output, then high (idle). GPIODATA writes reach output pins only. */
  LM3S_GPIO_DEN(LM3S_GPIOD_BASE) |= 1u;
  LM3S_GPIO_DIR(LM3S_GPIOD_BASE) |= 1u;
  LM3S_GPIO_DATA_BIT(LM3S_GPIOD_BASE, 0) = 1u;
  LM3S_GPIO_AFSEL(LM3S_GPIOA_BASE) |= LM3S_GPIOA_SSI_PINS;
  LM3S_GPIO_DEN(LM3S_GPIOA_BASE) |= LM3S_GPIOA_SSI_PINS;
  /* Master, 8-bit frames, mode 0; 390 kHz (50 MHz / 128) while identifying. */
  LM3S_SSI_CR1 = 0;
  LM3S_SSI_CPSR = 128u;
  LM3S_SSI_CR0 = LM3S_SSI_CR0_8BIT_MODE0;
  LM3S_SSI_CR1 = LM3S_SSI_CR1_SSE;
  while ((LM3S_SSI_SR & LM3S_SSI_SR_RNE) != 0) {
    (void)LM3S_SSI_DR;
  }
  for (int i = 0; i < 10; i++) {
    (void)sd_xfer(0xFFu); /* at least 74 clocks with the card deselected */
  }
  sd_select();
  sd_select();
  uint8_t r1 = 0xFFu;
  for (int i = 0; i < 10 && r1 != SD_R1_IDLE; i++) {
    r1 = sd_cmd(0, 0);
  }
  if (r1 != SD_R1_IDLE) {
    return sd_init_fail("CMD0 answered no idle state", r1);
  }
  bool v2 = false;
  r1 = sd_cmd(8, 0x1AAu);
  if ((r1 & SD_R1_ILLEGAL) == 0) {
    uint32_t r7 = 0;
    for (int i = 0; i < 4; i++) {
      r7 = r7 << 8 | sd_xfer(0xFFu);
    }
    /* A card that sends no R7 payload (the line stays high) counts as version 2 too: CMD8 was legal. */
    if ((r7 & 0xFFFu) != 0x1AAu && r7 != 0xFFFFFFFFu) {
      return sd_init_fail("CMD8 echo mismatch", r7);
    }
    v2 = true;
  }
  /* ACMD41 with HCS (and the 2.7-3.6 V window); CMD1, which SPI mode also takes, when a card does not
   * leave idle on it. */
  for (uint32_t start = sys_now(); r1 == SD_R1_IDLE && sys_now() - start < 1000u;) {
    (void)sd_cmd(55, 0);
    r1 = sd_cmd(41, (v2 ? SD_OCR_CCS : 0) | SD_OCR_VDD_27_36);
  }
  /* A card whose R1 shows the state before the command answers idle to the CMD1 that starts it:
   * CMD16, illegal while idle, tells. */
  for (uint32_t start = sys_now(); r1 != 0 && sys_now() - start < 1000u;) {
    r1 = sd_cmd(1, (v2 ? SD_OCR_CCS : 0) | SD_OCR_VDD_27_36);
    if (r1 == SD_R1_IDLE && sd_cmd(16, SD_BLOCK) == 0) {
      r1 = 0;
    }
  }
  if (r1 != 0) {
    return sd_init_fail("ACMD41 and CMD1 did not leave the idle state", r1);
  }
  sd_high_capacity = false;
  bool ocr_known = false;
  if (v2) {
    (void)sd_cmd(58, 0); /* its R1 is not checked: QEMU's model always answers 0x01 */
    uint32_t ocr = 0;
    for (int i = 0; i < 4; i++) {
      ocr = ocr << 8 | sd_xfer(0xFFu);
    }
    ocr_known = ocr != 0xFFFFFFFFu; /* no OCR sent: the CSD's version decides below */
    sd_high_capacity = ocr_known && (ocr & SD_OCR_CCS) != 0;
  }
  if (sd_cmd(59, 1) != 0) {
    return sd_init_fail("CMD59 (CRC on) refused", 0);
  }
  uint8_t csd[16];
  if (!sd_read_reg(9, csd, sizeof csd)) {
    return sd_init_fail("CSD unreadable", 0);
  }
  if (!ocr_known) {
    sd_high_capacity = (csd[0] >> 6) == 1u; /* CSD version 2: SDHC or SDXC, block addresses */
  }
  if (!sd_high_capacity && sd_cmd(16, SD_BLOCK) != 0) {
    return sd_init_fail("CMD16 (512-byte blocks) refused", 0);
  }
  sd_deselect();
  /* Identification done: 12.5 MHz (50 MHz / 2 / (1 + SCR 1)), the most SPI mode allows is 25 MHz. */
  LM3S_SSI_CR1 = 0;
  LM3S_SSI_CPSR = 2u;
  LM3S_SSI_CR0 = LM3S_SSI_CR0_8BIT_MODE0 | (1u << 8);
  LM3S_SSI_CR1 = LM3S_SSI_CR1_SSE;
  dev->sectors = sd_csd_sectors(csd);
  dev->start = SD_START;
  dev->poll = SD_POLL;
  return sd_high_capacity ? SD_SPI_SDHC : SD_SPI_SDSC;
}
