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

/* Makes the effect of the operation in flight land: whole, or torn (the first half of a program). */
static void flash_land(flash_model_t *f, bool torn)
{
  BENCH_MEDIUM(0);
  if (f->op == FLASH_OP_ERASE && !torn) {
    memset(f->mem + f->op_addr, 0xFF, FLASH_BLOCK_SIZE);
  } else if (f->op == FLASH_OP_PROGRAM) {
    uint32_t len = torn ? f->op_len / 2 : f->op_len;
    uint8_t *mem = f->mem + f->op_addr;
    uint32_t i = 0;
    for (; i + 4 <= len; i += 4) { /* a word at a time: the medium's emulation costs the CPU little */
      uint32_t m, p;
      memcpy(&m, mem + i, 4);
      memcpy(&p, f->page + i, 4);
      m &= p;
      memcpy(mem + i, &m, 4);
    }
    for (; i < len; i++) {
      mem[i] &= f->page[i];
    }
  }
  f->op = FLASH_OP_NONE;
  BENCH_MEDIUM(1);
}

/* True while an operation is in flight; ends the one whose time has passed. */
static bool flash_busy(flash_model_t *f)
{
  if (f->op == FLASH_OP_NONE) {
    return false;
  }
  if (f->now_us != NULL && f->now_us() - f->op_start < f->op_time) {
    return true;
  }
  flash_land(f, false);
  return false;
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
  BENCH_MEDIUM(0);
  for (uint32_t i = 0; i < len; i += 4) { /* len is whole program units: words */
    uint32_t d, s;
    memcpy(&d, dst + i, 4);
    memcpy(&s, src + i, 4);
    if ((d & s) != s) {
      BENCH_MEDIUM(1);
      f->violations++;
      return -1; /* a bit would go from 0 to 1: only an erase can do that */
    }
  }
  memcpy(f->page, src, len);
  BENCH_MEDIUM(1);
  f->op = FLASH_OP_PROGRAM;
  f->op_addr = addr;
  f->op_len = len;
  if (flash_cut_now(f)) {
    flash_land(f, true); /* torn: the first half made it */
    return -1;
  }
  f->programs++;
  flash_start(f, len / FLASH_PROG_UNIT * f->unit_us);
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
