/* board.h: the mps2-an385's console, millisecond and microsecond clocks, idle and panic (platform.h is served here too). */
#ifndef POSTERN_BOARD_H
#define POSTERN_BOARD_H

#include <stdint.h>

/** SysTick period: the longest the main loop sleeps in board_idle(). */
#define BOARD_TICK_MS 10u

/** Starts the console (UART0) and SysTick (every BOARD_TICK_MS). */
void board_init(void);
/** SysTick handler: only wakes the main loop. */
void board_systick_isr(void);
/** Microseconds since boot, wrapping at 2^32 (the flash model's clock; main loop only). */
uint32_t board_now_us(void);
/** Sleeps until the next interrupt (at most one SysTick period) unless `busy` says there is work already. */
void board_idle(int (*busy)(void));
/** Bytes of the main stack used at its deepest since reset (startup.c paints it), and its size. */
uint32_t board_stack_high_water(void);
uint32_t board_stack_size(void);
/** Prints what went wrong and stops the device. */
__attribute__((noreturn)) void board_panic(const char *what, uint32_t code);

#endif /* POSTERN_BOARD_H */
