/* bench_count.h: a bench build's counts (make BENCH=1, POSTERN_BENCH), common to the boards: busy instructions,
 * decisions, the medium's share; each board gives its clock (board_bench.h). Nothing in any other build. */
#ifndef POSTERN_BENCH_COUNT_H
#define POSTERN_BENCH_COUNT_H

#include <stdint.h>

#include "postern_opts.h"

#if POSTERN_BENCH
/*
 * Under `qemu-system-arm -icount shift=0` the virtual clock advances one
 * nanosecond per guest instruction executed, and jumps ahead while the core
 * sleeps in WFI. The board's clock counts that clock down; its
 * board_bench.h (which includes this header after them) says how:
 *   BENCH_CLOCK()          the counter, read (an expression)
 *   BENCH_CLOCK_MASK       its width: 0xFFFFFFFF for 32 bits, 0x00FFFFFF for 24
 *   BENCH_INSNS_PER_TICK   instructions a tick (1 GHz over its clock rate)
 * Every span timed is a difference of two reads less than one wrap apart (a
 * main loop pass, one sleep, one handler, one decision). A count is ticks x
 * BENCH_INSNS_PER_TICK, to within that; bench_boot() checks the factor on a
 * loop of known length. The busy count is all time but sleep: WFI spans less
 * the interrupt handlers that ran in them, each handler timed by
 * bench_time_isr(). Console lines, read by tests/bench/figures.py:
 *   bench: calibration <instructions counted> instructions for <n> instructions (<f> a tick, <bits>-bit clock)
 *   bench: sha256 <instructions> instructions for <bytes> bytes
 *   bench: decision <instructions> policy <instructions of it in policy_decide>
 *   bench: busy <instructions> instructions medium <instructions> instructions   (cumulative, wrapping at 2^32,
 *     logged once the network is quiet for 300 ms; medium: the storage medium's own work, within busy)
 */

/** Times the calibration loop and mbedTLS's SHA-256 over 64 KiB of the image, logs both (once, at boot). */
void bench_boot(void);
/** Sleeps (WFI) and takes the time asleep off the busy count. */
void bench_wfi(void);
/** Main loop, once a pass with the frames it took: adds the time since the last call; after 300 ms without a
 *  frame, logs the busy count once. */
void bench_poll(int frames);
/** Runs an interrupt handler and counts its time as the handlers' (taken off sleep and off decisions). */
void bench_time_isr(void (*isr)(void));
#ifdef BENCH_CLOCK
/*
 * The storage medium's own work (a flash chip's, or an SD card's transfers):
 * 0 begins a span, 1 ends it. Inline, a clock read and a store each, so that
 * the marks add little to what they bracket.
 */
extern uint32_t bench_med_t0, bench_med_ticks; /* the clock at the span's start; the spans' ticks, wrapping */
static inline __attribute__((always_inline)) void bench_medium(int end)
{
  uint32_t now = BENCH_CLOCK(); /* counts down */
  if (end) {
    bench_med_ticks += (bench_med_t0 - now) & BENCH_CLOCK_MASK;
  } else {
    bench_med_t0 = now;
  }
}
#define BENCH_MEDIUM(end) bench_medium(end)
#endif
#else
#define BENCH_MEDIUM(end) ((void)0)
#endif

#endif /* POSTERN_BENCH_COUNT_H */
