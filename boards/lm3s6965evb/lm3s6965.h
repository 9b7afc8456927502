/* lm3s6965.h: facts of the TI Stellaris LM3S6965 (Cortex-M3) on the EK-LM3S6965 board: memory map, clocks, interrupts, registers. */
#ifndef POSTERN_LM3S6965_H
#define POSTERN_LM3S6965_H

#include <stdint.h>

/** A 32-bit memory-mapped register. */
#define LM3S_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- System control: clocks --------------------------------------------- */
/** The system clock: the PLL's 200 MHz divided by 4 (RCC SYSDIV 3), the part's 50 MHz maximum. */
#define LM3S_SYSCLK_HZ 50000000u
#define LM3S_SYSCTL_RCC LM3S_REG(0x400FE060u)
#define LM3S_SYSCTL_RCGC1 LM3S_REG(0x400FE104u) /* clock gates: SSI0 bit 4, UART0 bit 0, timer 0 bit 16 */
#define LM3S_SYSCTL_RCGC2 LM3S_REG(0x400FE108u) /* clock gates: GPIO ports bits 0-6, Ethernet MAC 28, PHY 30 */
/* 8 MHz crystal, main oscillator, PLL on and used, SYSDIV 3 (/4), USESYSDIV. */
#define LM3S_RCC_50MHZ ((3u << 23) | (1u << 22) | (0xEu << 6))
#define LM3S_RCGC1_UART0 (1u << 0)
#define LM3S_RCGC1_SSI0 (1u << 4)
#define LM3S_RCGC1_TIMER0 (1u << 16)
#define LM3S_RCGC2_GPIOA (1u << 0)
#define LM3S_RCGC2_GPIOD (1u << 3)
#define LM3S_RCGC2_EMAC (1u << 28)
#define LM3S_RCGC2_EPHY (1u << 30)

/* ---- UART0 (PL011) --------------------------------------------------------- */
#define LM3S_UART0_BASE 0x4000C000u
#define LM3S_UART_DR(b) LM3S_REG((b) + 0x000u)
#define LM3S_UART_FR(b) LM3S_REG((b) + 0x018u)
#define LM3S_UART_IBRD(b) LM3S_REG((b) + 0x024u)
#define LM3S_UART_FBRD(b) LM3S_REG((b) + 0x028u)
#define LM3S_UART_LCRH(b) LM3S_REG((b) + 0x02Cu)
#define LM3S_UART_CTL(b) LM3S_REG((b) + 0x030u)
#define LM3S_UART_FR_TXFF (1u << 5)
#define LM3S_UART_LCRH_8N1_FIFO ((3u << 5) | (1u << 4))
#define LM3S_UART_CTL_ON ((1u << 0) | (1u << 8) | (1u << 9)) /* UARTEN, TXE, RXE */
#define LM3S_UART_BAUD 115200u

/* ---- General-purpose timer 0: the main loop's periodic wake-up ------------ */
#define LM3S_TIMER0_BASE 0x40030000u
#define LM3S_GPTM_CFG(b) LM3S_REG((b) + 0x00u)
#define LM3S_GPTM_TAMR(b) LM3S_REG((b) + 0x04u)
#define LM3S_GPTM_CTL(b) LM3S_REG((b) + 0x0Cu)
#define LM3S_GPTM_IMR(b) LM3S_REG((b) + 0x18u)
#define LM3S_GPTM_ICR(b) LM3S_REG((b) + 0x24u)
#define LM3S_GPTM_TAILR(b) LM3S_REG((b) + 0x28u)
#define LM3S_GPTM_TAMR_PERIODIC 2u
#define LM3S_GPTM_CTL_TAEN (1u << 0)
#define LM3S_GPTM_TATO (1u << 0)
#define LM3S_TIMER0A_IRQ 19u

/* ---- GPIO port D: PD0 is the SD card's chip select (active low) ----------- */
#define LM3S_GPIOD_BASE 0x40007000u
/* GPIODATA is addressed through a mask: bits [9:2] of the address select the pins written. */
#define LM3S_GPIO_DATA_BIT(b, pin) LM3S_REG((b) + (4u << (pin)))
#define LM3S_GPIO_DIR(b) LM3S_REG((b) + 0x400u)
#define LM3S_GPIO_AFSEL(b) LM3S_REG((b) + 0x420u)
#define LM3S_GPIO_DEN(b) LM3S_REG((b) + 0x51Cu)
/* PA2 (SSI0Clk), PA4 (SSI0Rx), PA5 (SSI0Tx) in their SSI function; PA3 (SSI0Fss) is the OLED's. */
#define LM3S_GPIOA_BASE 0x40004000u
#define LM3S_GPIOA_SSI_PINS ((1u << 2) | (1u << 4) | (1u << 5))

/* ---- SSI0 (PL022): the SD card in SPI mode -------------------------------- */
#define LM3S_SSI0_BASE 0x40008000u
#define LM3S_SSI_CR0 LM3S_REG(LM3S_SSI0_BASE + 0x00u)
#define LM3S_SSI_CR1 LM3S_REG(LM3S_SSI0_BASE + 0x04u)
#define LM3S_SSI_DR LM3S_REG(LM3S_SSI0_BASE + 0x08u)
#define LM3S_SSI_SR LM3S_REG(LM3S_SSI0_BASE + 0x0Cu)
#define LM3S_SSI_CPSR LM3S_REG(LM3S_SSI0_BASE + 0x10u)
#define LM3S_SSI_CR0_8BIT_MODE0 0x07u /* 8-bit frames, Freescale SPI, CPOL 0, CPHA 0 */
#define LM3S_SSI_CR1_SSE (1u << 1)
#define LM3S_SSI_SR_TNF (1u << 1)
#define LM3S_SSI_SR_RNE (1u << 2)
#define LM3S_SSI_SR_BSY (1u << 4)

/* ---- Ethernet MAC ----------------------------------------------------------- */
#define LM3S_EMAC_BASE 0x40048000u
#define LM3S_EMAC_IRQ 42u

/* ---- Cortex-M3 system control space -------------------------------------- */
#define LM3S_SYST_CSR LM3S_REG(0xE000E010u)
#define LM3S_SYST_RVR LM3S_REG(0xE000E014u)
#define LM3S_SYST_CVR LM3S_REG(0xE000E018u)
#define LM3S_SYST_CSR_ENABLE (1u << 0)
#define LM3S_SYST_CSR_CLKSOURCE (1u << 2) /* the processor clock */

#define LM3S_NVIC_ISER(n) LM3S_REG(0xE000E100u + 4u * (n))
#define LM3S_NVIC_ICER(n) LM3S_REG(0xE000E180u + 4u * (n))
#define LM3S_NVIC_ISPR(n) LM3S_REG(0xE000E200u + 4u * (n))

#define LM3S_SCB_VTOR LM3S_REG(0xE000ED08u)
#define LM3S_SCB_CFSR LM3S_REG(0xE000ED28u)
#define LM3S_SCB_HFSR LM3S_REG(0xE000ED2Cu)
#define LM3S_SCB_MMFAR LM3S_REG(0xE000ED34u)
#define LM3S_SCB_BFAR LM3S_REG(0xE000ED38u)

#endif /* POSTERN_LM3S6965_H */
