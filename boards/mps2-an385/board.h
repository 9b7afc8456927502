/* board.h: the mps2-an385's console, millisecond clock, idle and panic (platform.h is served here too). */
#ifndef POSTERN_BOARD_H
#define POSTERN_BOARD_H

#include <stdint.h>

/** Starts the console (UART0) and SysTick (see board.c for the period). */
void board_init(void);
/** SysTick handler: advances the clock behind sys_now(). */
void board_systick_isr(void);
/** Sleeps until the next interrupt (at most one SysTick period) unless `busy` says there is work already. */
void board_idle(int (*busy)(void));
/** Bytes of the main stack used at its deepest since reset (startup.c paints it), and its size. */
uint32_t board_stack_high_water(void);
uint32_t board_stack_size(void);
/** Prints what went wrong and stops the device. */
__attribute__((noreturn)) void board_panic(const char *what, uint32_t code);

#endif /* POSTERN_BOARD_H */
