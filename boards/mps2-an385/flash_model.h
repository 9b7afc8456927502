/* flash_model.h: a RAM-backed NOR flash: 4 KiB erase blocks, 16-byte program units, bits only go 1 to 0, real timing with a busy status, power cuts on demand. */
#ifndef POSTERN_FLASH_MODEL_H
#define POSTERN_FLASH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Erase block: the unit that returns to all ones. */
#define FLASH_BLOCK_SIZE 4096u
/** Program unit: writes start and end on its multiples. */
#define FLASH_PROG_UNIT 16u
/** Page: one program command writes at most this much, never across a page boundary (SPI NOR's page buffer). */
#define FLASH_PAGE_SIZE 256u

/**
 * Timing of the medium: an erase takes erase_us, a program unit_us per
 * program unit. Profiles (flash_timing_find): "instant" (0, 0: no busy time),
 * "nor" (45 ms per block, 50 us per unit: a typical SPI NOR), "slow" (1 s per
 * block, 50 us per unit: the big sectors of an MCU's internal flash).
 */
typedef struct flash_timing {
  const char *name;
  uint32_t erase_us;
  uint32_t unit_us;
} flash_timing_t;

/**
 * The medium. Erase and program are commands: each starts an operation and
 * the chip is busy until its time has passed on the clock (flash_status()).
 * A command or a read while busy is refused, as on real NOR. The effect of
 * an operation lands when it ends (a program's data waits in the page
 * buffer), so a power cut during one tears it.
 */
typedef struct flash_model {
  uint8_t *mem;
  uint32_t size; /* a multiple of FLASH_BLOCK_SIZE */
  uint32_t blocks;
  uint32_t erases;     /* erase commands accepted since init */
  uint32_t programs;   /* program commands accepted since init (torn ones excluded) */
  uint32_t violations; /* refused programs: misaligned, too long, or a 0 -> 1 bit */
  uint32_t refused;    /* commands and reads refused because the chip was busy */
  long cut_after;      /* operations left before the power fails; -1: never */
  bool dead;           /* the power has failed: every operation fails */
  /* Timing and the operation in flight. */
  uint32_t erase_us, unit_us;
  uint32_t (*now_us)(void); /* microsecond clock, wrapping at 2^32; NULL with instant timing */
  uint8_t op;               /* FLASH_OP_* in flight */
  uint32_t op_addr, op_len, op_start, op_time;
  _Alignas(4) uint8_t page[FLASH_PAGE_SIZE]; /* a timed program's data until it lands */
} flash_model_t;

/** Wraps `size` bytes of memory (rounded down to whole blocks); the content is kept. Instant timing. */
void flash_model_init(flash_model_t *f, uint8_t *mem, uint32_t size);
/** The profile called `name` ("instant", "nor", "slow"), or NULL. */
const flash_timing_t *flash_timing_find(const char *name);
/** Gives the medium timing t, measured on now_us (microseconds); t NULL or instant needs no clock. */
void flash_model_set_timing(flash_model_t *f, const flash_timing_t *t, uint32_t (*now_us)(void));

/** flash_status(): the chip is still working on the last command. */
#define FLASH_BUSY 1
/** 0: idle, ready for a command; FLASH_BUSY; -1: the power has failed. Ends the operation whose time has passed. */
int flash_status(flash_model_t *f);
/** Microseconds until the operation in flight ends (0 when idle). */
uint32_t flash_busy_left_us(flash_model_t *f);

/** Starts erasing one block to all ones. Returns 0, or -1 (busy, bad block, power failed). */
int flash_erase(flash_model_t *f, uint32_t block);
/**
 * Starts programming len bytes at addr (both multiples of FLASH_PROG_UNIT,
 * at most FLASH_PAGE_SIZE, within one page): each bit may only go from 1 to
 * 0. The data is taken at once (with instant timing it lands at once). Data
 * and medium word-aligned take the fast path. Returns 0, or -1 (busy,
 * misaligned, a 0 -> 1 bit, power failed) with nothing started.
 */
int flash_program(flash_model_t *f, uint32_t addr, const void *data, uint32_t len);
/** Copies len bytes at addr into buf. Returns 0, or -1 while the chip is busy (nothing copied). */
int flash_read(flash_model_t *f, uint32_t addr, void *buf, uint32_t len);
/** True when len bytes at addr are all ones (erased); false while busy. */
bool flash_is_erased(flash_model_t *f, uint32_t addr, uint32_t len);

/**
 * Test hook: the power fails during the n-th erase or program from now
 * (n = 0: the next one). That operation is torn: an erase does not happen,
 * a program writes only the first half of its bytes, rounded down. Every
 * later operation fails until flash_power_restore().
 */
void flash_power_cut_after(flash_model_t *f, long n);
/** Test hook: the power fails now; the operation in flight, if any, is torn as above. */
void flash_power_cut_now(flash_model_t *f);
/** Power back, as after a power cycle (an operation still in flight is torn); the medium keeps what was written. */
void flash_power_restore(flash_model_t *f);

#endif /* POSTERN_FLASH_MODEL_H */
