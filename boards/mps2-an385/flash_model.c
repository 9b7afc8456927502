/* flash_model.c: a RAM-backed NOR flash with erase and program granularity, the 1 -> 0 rule and simulated power cuts. */
#include "flash_model.h"

#include <string.h>

/** Wraps `size` bytes of memory as a medium of whole blocks; the content is kept. */
void flash_model_init(flash_model_t *f, uint8_t *mem, uint32_t size)
{
  f->mem = mem;
  f->blocks = size / FLASH_BLOCK_SIZE;
  f->size = f->blocks * FLASH_BLOCK_SIZE;
  f->erases = 0;
  f->programs = 0;
  f->violations = 0;
  f->cut_after = -1;
  f->dead = false;
}

/* Counts down to a power cut: true when this operation is the torn one. */
static bool flash_cut_now(flash_model_t *f)
{
  if (f->cut_after < 0) {
    return false;
  }
  if (f->cut_after == 0) {
    f->dead = true;
    f->cut_after = -1;
    return true;
  }
  f->cut_after--;
  return false;
}

/** Erases one block to all ones; see flash_model.h. */
int flash_erase(flash_model_t *f, uint32_t block)
{
  if (f->dead || block >= f->blocks) {
    return -1;
  }
  if (flash_cut_now(f)) {
    return -1; /* the erase never started */
  }
  memset(f->mem + (size_t)block * FLASH_BLOCK_SIZE, 0xFF, FLASH_BLOCK_SIZE);
  f->erases++;
  return 0;
}

/** Programs whole units, bits only 1 -> 0; see flash_model.h. */
int flash_program(flash_model_t *f, uint32_t addr, const void *data, uint32_t len)
{
  const uint8_t *src = data;
  if (f->dead) {
    return -1;
  }
  if (addr % FLASH_PROG_UNIT != 0 || len % FLASH_PROG_UNIT != 0 || addr > f->size || len > f->size - addr) {
    f->violations++;
    return -1;
  }
  uint8_t *dst = f->mem + addr;
  for (uint32_t i = 0; i < len; i++) {
    if ((dst[i] & src[i]) != src[i]) {
      f->violations++;
      return -1; /* a bit would go from 0 to 1: only an erase can do that */
    }
  }
  if (flash_cut_now(f)) {
    len /= 2; /* torn: the first half made it */
  } else {
    f->programs++;
  }
  for (uint32_t i = 0; i < len; i++) {
    dst[i] &= src[i];
  }
  return f->dead ? -1 : 0;
}

/** Memory-mapped view of the medium at addr. */
const uint8_t *flash_read(const flash_model_t *f, uint32_t addr)
{
  return f->mem + addr;
}

/** True when len bytes at addr are all ones. */
bool flash_is_erased(const flash_model_t *f, uint32_t addr, uint32_t len)
{
  const uint8_t *p = f->mem + addr;
  for (uint32_t i = 0; i < len; i++) {
    if (p[i] != 0xFF) {
      return false;
    }
  }
  return true;
}

/** Test hook: the power fails during the n-th operation from now; see flash_model.h. */
void flash_power_cut_after(flash_model_t *f, long n)
{
  f->cut_after = n;
}

/** Power back: operations work again. */
void flash_power_restore(flash_model_t *f)
{
  f->dead = false;
  f->cut_after = -1;
}
