/* board.h: the LM3S6965's console, millisecond clock, idle and panic (platform.h is served here too). */
#ifndef POSTERN_BOARD_H
#define POSTERN_BOARD_H

#include <stdint.h>

/** Period of timer 0's wake-up: the longest the main loop sleeps in board_idle(). */
#define BOARD_TICK_MS 10u

/** Sets the 50 MHz clock, starts the console (UART0), the SysTick clock and timer 0's wake-up. */
void board_init(void);
/** Timer 0 handler: only wakes the main loop. */
void board_timer_isr(void);
/** Sleeps until the next interrupt (at most one timer period) unless `busy` says there is work already. */
void board_idle(int (*busy)(void));
/** Bytes of the main stack used at its deepest since reset (startup.c paints it), and its size. */
uint32_t board_stack_high_water(void);
uint32_t board_stack_size(void);
/** Prints what went wrong and stops the device. */
__attribute__((noreturn)) void board_panic(const char *what, uint32_t code);

#endif /* POSTERN_BOARD_H */
