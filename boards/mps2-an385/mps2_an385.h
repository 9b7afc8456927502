/* mps2_an385.h: facts of the MPS2+ AN385 board (Cortex-M3): memory map, clocks, interrupts, registers. */
#ifndef POSTERN_MPS2_AN385_H
#define POSTERN_MPS2_AN385_H

#include <stdint.h>

/** A 32-bit memory-mapped register. */
#define MPS2_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Clocks ------------------------------------------------------------- */
/** The system clock that drives the core and SysTick (25 MHz, as QEMU models it). */
#define MPS2_SYSCLK_HZ 25000000u
/** Console speed; QEMU ignores it but the divider must be valid (>= 16). */
#define MPS2_UART_BAUD 115200u

/* ---- CMSDK APB UART0 ---------------------------------------------------- */
#define MPS2_UART0_BASE 0x40004000u
#define MPS2_UART_DATA(b) MPS2_REG((b) + 0x00u)
#define MPS2_UART_STATE(b) MPS2_REG((b) + 0x04u)
#define MPS2_UART_CTRL(b) MPS2_REG((b) + 0x08u)
#define MPS2_UART_BAUDDIV(b) MPS2_REG((b) + 0x10u)
#define MPS2_UART_STATE_TX_FULL (1u << 0)
#define MPS2_UART_CTRL_TX_EN (1u << 0)

/* ---- SMSC LAN9118 Ethernet ---------------------------------------------- */
#define MPS2_LAN9118_BASE 0x40200000u
/** External interrupt number of the Ethernet controller (NVIC line). */
#define MPS2_LAN9118_IRQ 13u

/* ---- Cortex-M3 system control space -------------------------------------- */
/* CMSDK APB timer 0: a 32-bit down-counter on the 25 MHz peripheral clock. */
#define MPS2_TIMER0_BASE 0x40000000u
#define MPS2_TIMER_CTRL(b) MPS2_REG((b) + 0x00u)
#define MPS2_TIMER_VALUE(b) MPS2_REG((b) + 0x04u)
#define MPS2_TIMER_RELOAD(b) MPS2_REG((b) + 0x08u)
#define MPS2_TIMER_CTRL_ENABLE (1u << 0)

#define MPS2_SYST_CSR MPS2_REG(0xE000E010u)
#define MPS2_SYST_RVR MPS2_REG(0xE000E014u)
#define MPS2_SYST_CVR MPS2_REG(0xE000E018u)
#define MPS2_SYST_CSR_ENABLE (1u << 0)
#define MPS2_SYST_CSR_TICKINT (1u << 1)
#define MPS2_SYST_CSR_CLKSOURCE (1u << 2) /* the processor clock */

#define MPS2_NVIC_ISER(n) MPS2_REG(0xE000E100u + 4u * (n))
#define MPS2_NVIC_ICER(n) MPS2_REG(0xE000E180u + 4u * (n))
#define MPS2_NVIC_ISPR(n) MPS2_REG(0xE000E200u + 4u * (n))

#define MPS2_SCB_VTOR MPS2_REG(0xE000ED08u)
#define MPS2_SCB_CFSR MPS2_REG(0xE000ED28u)
#define MPS2_SCB_HFSR MPS2_REG(0xE000ED2Cu)
#define MPS2_SCB_MMFAR MPS2_REG(0xE000ED34u)
#define MPS2_SCB_BFAR MPS2_REG(0xE000ED38u)

/* ---- Memory map ---------------------------------------------------------- */
/* Code memory (SSRAM1, 4 MiB at 0x00000000) holds the image below 1 MiB and
 * the emulated flash medium above it; data memory (SSRAM2/3 at 0x20000000) is
 * limited to the RAM budget by the linker script (mps2_an385.ld). */

#endif /* POSTERN_MPS2_AN385_H */
