/* board_bench.h: the mps2-an385's bench build (make BENCH=1): busy instructions and decisions counted. */
#ifndef POSTERN_BOARD_BENCH_H
#define POSTERN_BOARD_BENCH_H

#include <stdint.h>

#include "postern_opts.h"

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
#endif

#endif /* POSTERN_BOARD_BENCH_H */
