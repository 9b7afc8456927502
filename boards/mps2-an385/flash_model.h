/* flash_model.h: a RAM-backed NOR flash: 4 KiB erase blocks, 16-byte program units, bits only go 1 to 0, power cuts on demand. */
#ifndef POSTERN_FLASH_MODEL_H
#define POSTERN_FLASH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Erase block: the unit that returns to all ones. */
#define FLASH_BLOCK_SIZE 4096u
/** Program unit: writes start and end on its multiples. */
#define FLASH_PROG_UNIT 16u

/**
 * The medium. Reads are plain memory reads (the flash is memory-mapped);
 * erases and programs go through the functions below, which enforce the
 * granularity and the 1 -> 0 rule and count the operations.
 */
typedef struct flash_model {
  uint8_t *mem;
  uint32_t size;      /* a multiple of FLASH_BLOCK_SIZE */
  uint32_t blocks;
  uint32_t erases;    /* erase operations since init */
  uint32_t programs;  /* program operations since init */
  uint32_t violations; /* refused programs: misaligned, or a 0 -> 1 bit */
  long cut_after;     /* operations left before the power fails; -1: never */
  bool dead;          /* the power has failed: every operation fails */
} flash_model_t;

/** Wraps `size` bytes of memory (rounded down to whole blocks); the content is kept as it is. */
void flash_model_init(flash_model_t *f, uint8_t *mem, uint32_t size);
/** Erases one block to all ones. Returns 0, or -1 (bad block, power failed). */
int flash_erase(flash_model_t *f, uint32_t block);
/**
 * Programs len bytes at addr (both multiples of FLASH_PROG_UNIT): each bit
 * may only go from 1 to 0. Returns 0, or -1 (misaligned, a 0 -> 1 bit, power
 * failed) with nothing changed, except at a power cut.
 */
int flash_program(flash_model_t *f, uint32_t addr, const void *data, uint32_t len);
/** Memory-mapped view of the medium at addr. */
const uint8_t *flash_read(const flash_model_t *f, uint32_t addr);
/** True when len bytes at addr are all ones (erased). */
bool flash_is_erased(const flash_model_t *f, uint32_t addr, uint32_t len);

/**
 * Test hook: the power fails during the n-th erase or program from now
 * (n = 0: the next one). That operation is torn: an erase does not happen,
 * a program writes only the first half of its bytes, rounded down. Every
 * later operation fails until flash_power_restore().
 */
void flash_power_cut_after(flash_model_t *f, long n);
/** Power back: operations work again (the medium keeps what was written). */
void flash_power_restore(flash_model_t *f);

#endif /* POSTERN_FLASH_MODEL_H */
