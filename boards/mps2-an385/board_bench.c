/*
 * board_bench.c: the mps2-an385's bench build (make BENCH=1, POSTERN_BENCH): guest
 * instructions counted, for `make bench`, under `qemu-system-arm -icount
 * shift=0`, where the virtual clock advances one nanosecond per guest
 * instruction executed, and jumps ahead while the core sleeps in WFI.
 *
 * Timer 0 counts that clock at 25 MHz (board.c), one tick every 40
 * instructions: a count is ticks x 40, to within 40. bench_boot() checks the
 * factor on a loop of known length. The busy count is all time but sleep: WFI
 * spans less the interrupt handlers that ran in them, each handler timing
 * itself. Console lines, read by tests/bench/figures.py:
 *   bench: calibration <ticks> ticks for <n> instructions
 *   bench: sha256 <instructions> instructions for <bytes> bytes
 *   bench: decision <instructions> policy <instructions of it in policy_decide>
 *   bench: busy <ticks> ticks medium <ticks> ticks   (cumulative, wrapping at 2^32, logged once the network is
 *     quiet for 300 ms; medium: the flash model's own work, which a real chip does, counted within busy)
 */
#include "board_bench.h"

#if POSTERN_BENCH

#include <stdbool.h>

#include "bench.h" /* src/bench.h: the decision marks */
#include "board.h"
#include "digest.h"
#include "lan9118.h"
#include "log.h"
#include "lwip/sys.h"
#include "mps2_an385.h"

#define BENCH_INSNS_PER_TICK 40u /* 25 MHz ticks of a 1 GHz instruction clock */
#define BENCH_QUIET_MS 300u
#define BENCH_CAL_LOOPS 100000u
#define BENCH_SHA_BYTES (64u * 1024u)

static volatile uint32_t bench_isr_ticks; /* the handlers' own time, wrapping (differences only) */
static uint32_t bench_last;               /* timer 0 at the last bench_poll */
static uint64_t bench_total, bench_idle;  /* ticks since bench_boot, and those asleep */
static uint32_t bench_quiet_ms;           /* last frame */
static bool bench_active;                 /* frames since the last busy line */
static bool bench_armed;
static uint32_t bench_dec_t0, bench_dec_isr0;
static uint32_t bench_pol_t0, bench_pol_ticks;
uint32_t bench_med_t0, bench_med_ticks; /* board_bench.h's bench_medium() */

static inline uint32_t bench_now(void)
{
  return MPS2_TIMER_VALUE(MPS2_TIMER0_BASE); /* counts down */
}

/** Times the calibration loop and mbedTLS's SHA-256 over 64 KiB of flash, logs both (once, at boot). */
void bench_boot(void)
{
  uint32_t n = BENCH_CAL_LOOPS;
  uint32_t t0 = bench_now();
  __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n)::"cc"); /* two instructions a turn */
  uint32_t t1 = bench_now();
  log_line("bench: calibration %u ticks for %u instructions", (unsigned)(t0 - t1), (unsigned)(2u * BENCH_CAL_LOOPS));
  uint8_t sum[DIGEST_SHA256_LEN];
  const uint8_t *code = (const uint8_t *)(uintptr_t)0x400u; /* the image's code: any bytes do */
  t0 = bench_now();
  digest_sha256(code, BENCH_SHA_BYTES, sum);
  t1 = bench_now();
  log_line("bench: sha256 %u instructions for %u bytes (%02x...)", (unsigned)((t0 - t1) * BENCH_INSNS_PER_TICK),
           (unsigned)BENCH_SHA_BYTES, sum[0]);
  bench_last = bench_now();
}

/** Sleeps (WFI) and takes the time asleep off the busy count. */
void bench_wfi(void)
{
  uint32_t t0 = bench_now(), i0 = bench_isr_ticks;
  __asm volatile("dsb\nwfi" ::: "memory");
  uint32_t span = t0 - bench_now(), isr = bench_isr_ticks - i0;
  bench_idle += span - isr;
}

/** Main loop: adds the time since the last call; after 300 ms without a frame, logs the busy count once. */
void bench_poll(int frames)
{
  uint32_t now = bench_now();
  bench_total += bench_last - now;
  bench_last = now;
  uint32_t ms = sys_now();
  if (frames > 0) {
    bench_quiet_ms = ms;
    bench_active = true;
  } else if (bench_active && ms - bench_quiet_ms >= BENCH_QUIET_MS) {
    bench_active = false;
    log_line("bench: busy %u ticks medium %u ticks", (unsigned)(uint32_t)(bench_total - bench_idle),
             (unsigned)bench_med_ticks);
  }
}

void bench_systick_isr(void)
{
  uint32_t t0 = bench_now();
  board_systick_isr();
  bench_isr_ticks += t0 - bench_now();
}

void bench_lan9118_isr(void)
{
  uint32_t t0 = bench_now();
  lan9118_isr();
  bench_isr_ticks += t0 - bench_now();
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
  uint32_t ticks = (bench_dec_t0 - t1) - (bench_isr_ticks - bench_dec_isr0);
  log_line("bench: decision %u policy %u", (unsigned)(ticks * BENCH_INSNS_PER_TICK),
           (unsigned)(bench_pol_ticks * BENCH_INSNS_PER_TICK));
}

void bench_policy(int end)
{
  uint32_t now = bench_now();
  if (end) {
    bench_pol_ticks += bench_pol_t0 - now;
  } else {
    bench_pol_t0 = now;
  }
}

#endif /* POSTERN_BENCH */
