/* bench_count.c: a bench build's counts (make BENCH=1), common to the boards; see bench_count.h. */
#include "postern_opts.h"

#if POSTERN_BENCH
#include "board_bench.h" /* the board's clock: BENCH_CLOCK(), BENCH_CLOCK_MASK, BENCH_INSNS_PER_TICK; then bench_count.h */

#include <stdbool.h>

#include "bench.h" /* src/bench.h: the decision marks */
#include "digest.h"
#include "log.h"
#include "lwip/sys.h"

#define BENCH_QUIET_MS 300u
#define BENCH_CAL_LOOPS 100000u
#define BENCH_SHA_BYTES (64u * 1024u)
/* SHA-256 reads the image's code from here on (any bytes do): flash starts at 0 on both boards. */
#ifndef BENCH_SHA_FROM
#define BENCH_SHA_FROM 0x400u
#endif

static volatile uint32_t bench_isr_ticks; /* the handlers' own time, wrapping (differences only) */
static uint32_t bench_last;               /* the clock at the last bench_poll */
static uint64_t bench_total, bench_idle;  /* ticks since bench_boot, and those asleep */
static uint32_t bench_quiet_ms;           /* last frame */
static bool bench_active;                 /* frames since the last busy line */
static bool bench_armed;
static uint32_t bench_dec_t0, bench_dec_isr0;
static uint32_t bench_pol_t0, bench_pol_ticks;
uint32_t bench_med_t0, bench_med_ticks; /* bench_count.h's bench_medium(): the medium's work, wrapping */

static inline uint32_t bench_now(void)
{
  return BENCH_CLOCK();
}

/* Ticks from t0 to now: the clock counts down, the wrap cancels out. */
static inline uint32_t bench_since(uint32_t t0, uint32_t now)
{
  return (t0 - now) & BENCH_CLOCK_MASK;
}

void bench_boot(void)
{
  uint32_t n = BENCH_CAL_LOOPS;
  uint32_t t0 = bench_now();
  __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n)::"cc"); /* two instructions a turn */
  uint32_t ticks = bench_since(t0, bench_now());
  log_line("bench: calibration %u instructions for %u instructions (%u a tick, %u-bit clock)",
           (unsigned)(ticks * BENCH_INSNS_PER_TICK), (unsigned)(2u * BENCH_CAL_LOOPS), (unsigned)BENCH_INSNS_PER_TICK,
           (unsigned)(32 - __builtin_clz(BENCH_CLOCK_MASK)));
  uint8_t sum[DIGEST_SHA256_LEN];
  const uint8_t *code = (const uint8_t *)(uintptr_t)BENCH_SHA_FROM;
  t0 = bench_now();
  digest_sha256(code, BENCH_SHA_BYTES, sum);
  ticks = bench_since(t0, bench_now());
  log_line("bench: sha256 %u instructions for %u bytes (%02x...)", (unsigned)(ticks * BENCH_INSNS_PER_TICK),
           (unsigned)BENCH_SHA_BYTES, sum[0]);
  bench_last = bench_now();
}

void bench_wfi(void)
{
  uint32_t t0 = bench_now(), i0 = bench_isr_ticks;
  __asm volatile("dsb\nwfi" ::: "memory");
  uint32_t span = bench_since(t0, bench_now()), isr = bench_isr_ticks - i0;
  bench_idle += span - isr;
}

void bench_poll(int frames)
{
  uint32_t now = bench_now();
  bench_total += bench_since(bench_last, now);
  bench_last = now;
  uint32_t ms = sys_now();
  if (frames > 0) {
    bench_quiet_ms = ms;
    bench_active = true;
  } else if (bench_active && ms - bench_quiet_ms >= BENCH_QUIET_MS) {
    bench_active = false;
    log_line("bench: busy %u instructions medium %u instructions",
             (unsigned)((uint32_t)(bench_total - bench_idle) * BENCH_INSNS_PER_TICK),
             (unsigned)(bench_med_ticks * BENCH_INSNS_PER_TICK));
  }
}

void bench_time_isr(void (*isr)(void))
{
  uint32_t t0 = bench_now();
  isr();
  bench_isr_ticks += bench_since(t0, bench_now());
}

/* src/bench.h: a decision's instructions, the interrupt handlers' time taken off. */
void bench_decision_begin(void)
{
  bench_armed = true;
  bench_pol_ticks = 0;
  bench_dec_isr0 = bench_isr_ticks;
  bench_dec_t0 = bench_now();
}

void bench_decision_end(void)
{
  uint32_t t1 = bench_now();
  if (!bench_armed) {
    return;
  }
  bench_armed = false;
  uint32_t ticks = bench_since(bench_dec_t0, t1) - (bench_isr_ticks - bench_dec_isr0);
  log_line("bench: decision %u policy %u", (unsigned)(ticks * BENCH_INSNS_PER_TICK),
           (unsigned)(bench_pol_ticks * BENCH_INSNS_PER_TICK));
}

void bench_policy(int end)
{
  uint32_t now = bench_now();
  if (end) {
    bench_pol_ticks += bench_since(bench_pol_t0, now);
  } else {
    bench_pol_t0 = now;
  }
}
#endif /* POSTERN_BENCH */
