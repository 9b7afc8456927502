/* board_bench.h: the mps2-an385's bench build (make BENCH=1): busy instructions and decisions counted. */
#ifndef POSTERN_BOARD_BENCH_H
#define POSTERN_BOARD_BENCH_H

#include <stdint.h>

#include "postern_opts.h"

#if POSTERN_BENCH
#include "mps2_an385.h"
#endif

#if POSTERN_BENCH
/** Times the calibration loop and mbedTLS's SHA-256 over 64 KiB of flash, logs both (once, at boot). */
void bench_boot(void);
/** Sleeps (WFI) and takes the time asleep off the busy count. */
void bench_wfi(void);
/** Main loop: adds the time since the last call; after 300 ms without a frame, logs the busy count once. */
void bench_poll(int frames);
/** The interrupt handlers in the vector table of a bench build: each counts its own time. */
void bench_systick_isr(void);
void bench_lan9118_isr(void);
/*
 * The flash model's own work (flash_model.c: the chip's, on real hardware):
 * 0 begins a span, 1 ends it. Inline, a timer read and a store each, so that
 * the marks add little to what they bracket.
 */
extern uint32_t bench_med_t0, bench_med_ticks; /* timer 0 at the span's start; the spans' ticks, wrapping */
static inline __attribute__((always_inline)) void bench_medium(int end)
{
  uint32_t now = MPS2_TIMER_VALUE(MPS2_TIMER0_BASE); /* counts down */
  if (end) {
    bench_med_ticks += bench_med_t0 - now;
  } else {
    bench_med_t0 = now;
  }
}
#define BENCH_MEDIUM(end) bench_medium(end)
#else
#define BENCH_MEDIUM(end) ((void)0)
#endif

#endif /* POSTERN_BOARD_BENCH_H */
