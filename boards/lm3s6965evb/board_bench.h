/* board_bench.h: the lm3s6965evb's bench build (make BENCH=1): its clock for port/bench_count.c, the counts' calls. */
#ifndef POSTERN_BOARD_BENCH_H
#define POSTERN_BOARD_BENCH_H

#include "postern_opts.h"

#if POSTERN_BENCH
#include "lm3s6965.h"

/* SysTick counts the 50 MHz processor clock down through 24 bits (board.c; a wrap every 335 ms): a tick every
 * 20 instructions of the 1 GHz instruction clock of qemu -icount shift=0. (Timer 0's counter reads 0 under QEMU.) */
#define BENCH_CLOCK() LM3S_SYST_CVR
#define BENCH_CLOCK_MASK 0x00FFFFFFu
#define BENCH_INSNS_PER_TICK 20u
#endif

#include "bench_count.h" /* after the clock: its inline marks read it */

#endif /* POSTERN_BOARD_BENCH_H */
