/* flash_model.c: a RAM-backed NOR flash with erase and program granularity, the 1 -> 0 rule, operation timing and simulated power cuts. */
#include "flash_model.h"

#include <string.h>

#include "board_bench.h"

enum { FLASH_OP_NONE, FLASH_OP_ERASE, FLASH_OP_PROGRAM };

static const flash_timing_t flash_profiles[] = {
    {"instant", 0, 0},
    {"nor", 45000, 50},
    {"slow", 1000000, 50},
};

/** Wraps `size` bytes of memory as a medium of whole blocks; the content is kept. */
void flash_model_init(flash_model_t *f, uint8_t *mem, uint32_t size)
{
  memset(f, 0, sizeof *f);
  f->mem = mem;
  f->blocks = size / FLASH_BLOCK_SIZE;
  f->size = f->blocks * FLASH_BLOCK_SIZE;
  f->cut_after = -1;
}

/** The profile called `name`, or NULL. */
const flash_timing_t *flash_timing_find(const char *name)
{
  for (size_t i = 0; i < sizeof flash_profiles / sizeof flash_profiles[0]; i++) {
    if (strcmp(flash_profiles[i].name, name) == 0) {
      return &flash_profiles[i];
    }
  }
  return NULL;
}

/** Gives the medium timing t on clock now_us. */
void flash_model_set_timing(flash_model_t *f, const flash_timing_t *t, uint32_t (*now_us)(void))
{
  f->erase_us = t != NULL ? t->erase_us : 0;
  f->unit_us = t != NULL ? t->unit_us : 0;
  f->now_us = now_us;
}

/*
 * The medium's bytes move in whole program units (16 bytes, word-aligned
 * both sides): on a Cortex-M with ldm/stm, four or eight words per
 * instruction, so that the emulation of the chip costs the CPU little;
 * elsewhere memcpy and plain loops.
 */
#define FLASH_WORDS(p) (((uintptr_t)(p)&3u) == 0)

/* Copies `units` program units from src to dst (both word-aligned). */
static void flash_copy_units(void *dst, const void *src, uint32_t units)
{
#if defined(__thumb2__)
  uint32_t *d = dst;
  const uint32_t *s = src;
  uint32_t pairs = units / 2;
  if (units & 1u) {
    __asm volatile("ldmia %1!, {r4-r7}\n\tstmia %0!, {r4-r7}" : "+r"(d), "+r"(s) : : "r4", "r5", "r6", "r7", "memory");
  }
  if (pairs > 0) {
    __asm volatile("1: ldmia %1!, {r4-r11}\n\tstmia %0!, {r4-r11}\n\tsubs %2, %2, #1\n\tbne 1b"
                   : "+r"(d), "+r"(s), "+r"(pairs)
                   :
                   : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "cc", "memory");
  }
#else
  memcpy(dst, src, (size_t)units * FLASH_PROG_UNIT);
#endif
}

/* True when `units` program units at p (word-aligned) are all ones. */
static bool flash_units_erased(const void *p, uint32_t units)
{
#if defined(__thumb2__)
  const uint32_t *w = p;
  uint32_t pairs = units / 2, all = 0xFFFFFFFFu;
  if (units & 1u) {
    __asm volatile("ldmia %1!, {r4-r7}\n\tands r4, r5\n\tands r6, r7\n\tand %0, r4, r6"
                   : "=r"(all), "+r"(w)
                   :
                   : "r4", "r5", "r6", "r7", "cc", "memory");
  }
  if (pairs > 0 && all == 0xFFFFFFFFu) {
    __asm volatile("1: ldmia %1!, {r4-r11}\n\t"
                   "ands r4, r5\n\tands r6, r7\n\tand r8, r9\n\tand r10, r11\n\t"
                   "ands r4, r6\n\tand r8, r10\n\tand %0, r4, r8\n\t"
                   "adds r4, %0, #1\n\tbne 2f\n\t"
                   "subs %2, %2, #1\n\tbne 1b\n"
                   "2:"
                   : "=&r"(all), "+r"(w), "+r"(pairs)
                   :
                   : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "cc", "memory");
  }
  return all == 0xFFFFFFFFu;
#else
  const uint8_t *b = p;
  for (uint32_t i = 0; i < units * FLASH_PROG_UNIT; i += 4) {
    uint32_t v;
    memcpy(&v, b + i, 4);
    if (v != 0xFFFFFFFFu) {
      return false;
    }
  }
  return true;
#endif
}

/* Sets one erase block (word-aligned) to all ones. */
static void flash_fill_block(void *dst)
{
#if defined(__thumb2__)
  uint32_t *d = dst;
  uint32_t n = FLASH_BLOCK_SIZE / 128u;
  __asm volatile("mov r4, #-1\n\tmov r5, r4\n\tmov r6, r4\n\tmov r7, r4\n\t"
                 "mov r8, r4\n\tmov r9, r4\n\tmov r10, r4\n\tmov r11, r4\n"
                 "1: stmia %0!, {r4-r11}\n\tstmia %0!, {r4-r11}\n\tstmia %0!, {r4-r11}\n\tstmia %0!, {r4-r11}\n\t"
                 "subs %1, %1, #1\n\tbne 1b"
                 : "+r"(d), "+r"(n)
                 :
                 : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "cc", "memory");
#else
  memset(dst, 0xFF, FLASH_BLOCK_SIZE);
#endif
}

/*
 * Writes a program's data into the medium: len bytes (the whole program, or
 * the torn half of one). The data was checked to clear bits only, and
 * nothing else reaches those bytes while the chip is busy, so what the
 * cells hold after it (old AND new) is the data itself: a copy.
 */
static inline void flash_put(flash_model_t *f, uint32_t addr, const uint8_t *data, uint32_t len)
{
  uint8_t *mem = f->mem + addr;
  if (len % FLASH_PROG_UNIT == 0 && FLASH_WORDS(mem) && FLASH_WORDS(data)) {
    flash_copy_units(mem, data, len / FLASH_PROG_UNIT);
  } else {
    memcpy(mem, data, len);
  }
}

/* Makes the effect of the operation in flight land: whole, or torn (the first half of a program). */
static void flash_land(flash_model_t *f, bool torn)
{
  BENCH_MEDIUM(0);
  if (f->op == FLASH_OP_ERASE && !torn) {
    uint8_t *mem = f->mem + f->op_addr;
    if (FLASH_WORDS(mem)) {
      flash_fill_block(mem);
    } else {
      memset(mem, 0xFF, FLASH_BLOCK_SIZE);
    }
  } else if (f->op == FLASH_OP_PROGRAM) {
    flash_put(f, f->op_addr, f->page, torn ? f->op_len / 2 : f->op_len);
  }
  f->op = FLASH_OP_NONE;
  BENCH_MEDIUM(1);
}

/* True while the operation in flight lasts; else it lands. */
static bool flash_busy_op(flash_model_t *f)
{
  if (f->now_us != NULL && f->now_us() - f->op_start < f->op_time) {
    return true;
  }
  flash_land(f, false);
  return false;
}

/* True while an operation is in flight; ends the one whose time has passed. */
static inline bool flash_busy(flash_model_t *f)
{
  return f->op != FLASH_OP_NONE && flash_busy_op(f);
}

/** 0 idle, FLASH_BUSY, -1 power failed. */
int flash_status(flash_model_t *f)
{
  if (flash_busy(f)) {
    return FLASH_BUSY;
  }
  return f->dead ? -1 : 0;
}

/** Microseconds until the operation in flight ends. */
uint32_t flash_busy_left_us(flash_model_t *f)
{
  if (!flash_busy(f)) {
    return 0;
  }
  return f->op_time - (f->now_us() - f->op_start);
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

/* Starts the operation set up in f->op for `time` microseconds; instant ones land at once. */
static void flash_start(flash_model_t *f, uint32_t time)
{
  f->op_time = time;
  if (time == 0 || f->now_us == NULL) {
    flash_land(f, false);
    return;
  }
  f->op_start = f->now_us();
}

/** Starts erasing one block; see flash_model.h. */
int flash_erase(flash_model_t *f, uint32_t block)
{
  if (flash_busy(f)) {
    f->refused++;
    return -1;
  }
  if (f->dead || block >= f->blocks) {
    return -1;
  }
  if (flash_cut_now(f)) {
    return -1; /* the erase never started */
  }
  f->erases++;
  f->op = FLASH_OP_ERASE;
  f->op_addr = block * FLASH_BLOCK_SIZE;
  flash_start(f, f->erase_us);
  return 0;
}

/** Starts programming whole units within a page, bits only 1 -> 0; see flash_model.h. */
int flash_program(flash_model_t *f, uint32_t addr, const void *data, uint32_t len)
{
  const uint8_t *src = data;
  if (flash_busy(f)) {
    f->refused++;
    return -1;
  }
  if (f->dead) {
    return -1;
  }
  if (addr % FLASH_PROG_UNIT != 0 || len % FLASH_PROG_UNIT != 0 || len > FLASH_PAGE_SIZE || addr > f->size ||
      len > f->size - addr || (len > 0 && addr / FLASH_PAGE_SIZE != (addr + len - 1) / FLASH_PAGE_SIZE)) {
    f->violations++;
    return -1;
  }
  const uint8_t *dst = f->mem + addr;
  bool words = FLASH_WORDS(dst) && FLASH_WORDS(src);
  BENCH_MEDIUM(0);
  if (!words || !flash_units_erased(dst, len / FLASH_PROG_UNIT)) { /* erased cells take any data */
    for (uint32_t i = 0; i < len; i += 4) {                        /* len is whole program units: words */
      uint32_t d, s;
      memcpy(&d, dst + i, 4);
      memcpy(&s, src + i, 4);
      if ((d & s) != s) {
        BENCH_MEDIUM(1);
        f->violations++;
        return -1; /* a bit would go from 0 to 1: only an erase can do that */
      }
    }
  }
  if (flash_cut_now(f)) {
    flash_put(f, addr, src, len / 2); /* torn: the first half made it */
    BENCH_MEDIUM(1);
    return -1;
  }
  f->programs++;
  uint32_t time = len / FLASH_PROG_UNIT * f->unit_us;
  if (time == 0 || f->now_us == NULL) {
    flash_put(f, addr, src, len); /* instant: it lands now, with no stop in the page buffer */
    BENCH_MEDIUM(1);
    return 0;
  }
  if (words) {
    flash_copy_units(f->page, src, len / FLASH_PROG_UNIT);
  } else {
    memcpy(f->page, src, len);
  }
  BENCH_MEDIUM(1);
  f->op = FLASH_OP_PROGRAM;
  f->op_addr = addr;
  f->op_len = len;
  flash_start(f, time);
  return 0;
}

/** Copies len bytes at addr, unless the chip is busy. */
int flash_read(flash_model_t *f, uint32_t addr, void *buf, uint32_t len)
{
  if (flash_busy(f)) {
    f->refused++;
    return -1;
  }
  if (addr > f->size || len > f->size - addr) {
    return -1;
  }
  memcpy(buf, f->mem + addr, len);
  return 0;
}

/** True when len bytes at addr are all ones. */
bool flash_is_erased(flash_model_t *f, uint32_t addr, uint32_t len)
{
  if (flash_busy(f)) {
    return false;
  }
  const uint8_t *p = f->mem + addr;
  if (len % FLASH_PROG_UNIT == 0 && FLASH_WORDS(p)) {
    return flash_units_erased(p, len / FLASH_PROG_UNIT);
  }
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

/* Ends the operation in flight at a power loss: whole if its time had passed, else torn. */
static void flash_power_off(flash_model_t *f)
{
  if (f->op != FLASH_OP_NONE) {
    flash_land(f, f->now_us != NULL && f->now_us() - f->op_start < f->op_time);
  }
}

/** Test hook: the power fails now, tearing the operation in flight. */
void flash_power_cut_now(flash_model_t *f)
{
  flash_power_off(f);
  f->dead = true;
  f->cut_after = -1;
}

/** Power back (a power cycle: an operation still in flight is torn); operations work again. */
void flash_power_restore(flash_model_t *f)
{
  flash_power_off(f);
  f->dead = false;
  f->cut_after = -1;
}
