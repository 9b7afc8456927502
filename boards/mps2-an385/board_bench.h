/* board_bench.h: the mps2-an385's bench build (make BENCH=1): its clock for port/bench_count.c, the counts' calls. */
#ifndef POSTERN_BOARD_BENCH_H
#define POSTERN_BOARD_BENCH_H

#include "postern_opts.h"

#if POSTERN_BENCH
#include "mps2_an385.h"

/* Timer 0 counts the 25 MHz clock down through 32 bits (board.c): a tick every 40 instructions of the 1 GHz
 * instruction clock of qemu -icount shift=0. */
#define BENCH_CLOCK() MPS2_TIMER_VALUE(MPS2_TIMER0_BASE)
#define BENCH_CLOCK_MASK 0xFFFFFFFFu
#define BENCH_INSNS_PER_TICK 40u
#endif

#include "bench_count.h" /* after the clock: its inline marks read it */

#endif /* POSTERN_BOARD_BENCH_H */
