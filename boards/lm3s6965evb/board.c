/* board.c: console on UART0, SysTick time base, timer 0 wake-up and randomness of the LM3S6965 (platform.h). */
#include "board.h"

#include <stdbool.h>
#include <string.h>

#include "baked.h"
#include "board_bench.h"
#include "board_opts.h"
#include "lm3s6965.h"
#include "log.h"
#include "lwip/sys.h"
#include "mbedtls/sha256.h"
#include "platform.h"

/*
 * Time base: SysTick counts the 50 MHz clock down through its 24 bits (a
 * wrap every 335 ms) with no interrupt, and each clock read adds up the
 * cycles since the last one into milliseconds. Time is read, never counted
 * in interrupts (under QEMU a sleeping core takes its timer interrupts late,
 * and a clock made of ticks runs slow). QEMU's general-purpose timers cannot
 * be read (TAR reads 0), so timer 0 only wakes the main loop every
 * BOARD_TICK_MS: the clock is read far more often than once per wrap. A
 * single pass of the loop longer than a wrap (335 ms) would lose time.
 */
#define BOARD_SYST_MASK 0x00FFFFFFu
#define BOARD_CYCLES_PER_MS (LM3S_SYSCLK_HZ / 1000u)

static uint32_t board_clock_last;   /* SysTick at the last read */
static uint32_t board_clock_cycles; /* cycles not yet a whole millisecond */
static uint32_t board_clock_ms;     /* wraps at 2^32, as lwIP expects */

/** Sets the clock, starts the console (UART0), the SysTick clock and the timer 0 wake-up. */
void board_init(void)
{
  LM3S_SYSCTL_RCC = LM3S_RCC_50MHZ;
  LM3S_SYSCTL_RCGC1 |= LM3S_RCGC1_UART0 | LM3S_RCGC1_SSI0 | LM3S_RCGC1_TIMER0;
  LM3S_SYSCTL_RCGC2 |= LM3S_RCGC2_GPIOA | LM3S_RCGC2_GPIOD | LM3S_RCGC2_EMAC | LM3S_RCGC2_EPHY;
  /* 115200 8N1: divisor 50 MHz / (16 * 115200) = 27.127, fraction 0.127 * 64 = 8. */
  LM3S_UART_CTL(LM3S_UART0_BASE) = 0;
  LM3S_UART_IBRD(LM3S_UART0_BASE) = LM3S_SYSCLK_HZ / (16u * LM3S_UART_BAUD);
  LM3S_UART_FBRD(LM3S_UART0_BASE) = 8u;
  LM3S_UART_LCRH(LM3S_UART0_BASE) = LM3S_UART_LCRH_8N1_FIFO;
  LM3S_UART_CTL(LM3S_UART0_BASE) = LM3S_UART_CTL_ON;
  LM3S_SYST_RVR = BOARD_SYST_MASK;
  LM3S_SYST_CVR = 0;
  LM3S_SYST_CSR = LM3S_SYST_CSR_ENABLE | LM3S_SYST_CSR_CLKSOURCE;
  board_clock_last = LM3S_SYST_CVR & BOARD_SYST_MASK;
  LM3S_GPTM_CTL(LM3S_TIMER0_BASE) = 0;
  LM3S_GPTM_CFG(LM3S_TIMER0_BASE) = 0; /* one 32-bit timer */
  LM3S_GPTM_TAMR(LM3S_TIMER0_BASE) = LM3S_GPTM_TAMR_PERIODIC;
  LM3S_GPTM_TAILR(LM3S_TIMER0_BASE) = BOARD_CYCLES_PER_MS * BOARD_TICK_MS - 1u;
  LM3S_GPTM_ICR(LM3S_TIMER0_BASE) = LM3S_GPTM_TATO;
  LM3S_GPTM_IMR(LM3S_TIMER0_BASE) = LM3S_GPTM_TATO;
  LM3S_GPTM_CTL(LM3S_TIMER0_BASE) = LM3S_GPTM_CTL_TAEN;
  LM3S_NVIC_ISER(LM3S_TIMER0A_IRQ / 32u) = 1u << (LM3S_TIMER0A_IRQ % 32u);
}

/** Timer 0: acknowledges the time-out; taking the interrupt ends the main loop's WFI. */
void board_timer_isr(void)
{
  LM3S_GPTM_ICR(LM3S_TIMER0_BASE) = LM3S_GPTM_TATO;
}

/* Adds the cycles SysTick counted since the last read to the clock (main loop only). */
static void board_clock_read(void)
{
  uint32_t now = LM3S_SYST_CVR & BOARD_SYST_MASK;
  uint32_t elapsed = (board_clock_last - now) & BOARD_SYST_MASK; /* it counts down; the wrap cancels out */
  board_clock_last = now;
  board_clock_ms += elapsed / BOARD_CYCLES_PER_MS;
  board_clock_cycles += elapsed % BOARD_CYCLES_PER_MS;
  if (board_clock_cycles >= BOARD_CYCLES_PER_MS) {
    board_clock_cycles -= BOARD_CYCLES_PER_MS;
    board_clock_ms++;
  }
}

/** lwIP's millisecond clock (main loop only). */
u32_t sys_now(void)
{
  board_clock_read();
  return board_clock_ms;
}

/**
 * Sleeps until the next interrupt unless busy() reports work. An interrupt
 * that slips in between the check and the WFI costs at most one timer
 * period (BOARD_TICK_MS).
 */
void board_idle(int (*busy)(void))
{
  if (!busy()) {
#if POSTERN_BENCH
    bench_wfi(); /* the same WFI, its time taken off the busy count */
#else
    __asm volatile("dsb\nwfi" ::: "memory");
#endif
  }
}

/** Writes console bytes to UART0, waiting while its transmit FIFO is full. */
void platform_console_write(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    while (LM3S_UART_FR(LM3S_UART0_BASE) & LM3S_UART_FR_TXFF) {
    }
    LM3S_UART_DR(LM3S_UART0_BASE) = (uint8_t)s[i];
  }
}

/** Prints what went wrong and stops the device. */
void board_panic(const char *what, uint32_t code)
{
  static const char hex[] = "0123456789abcdef";
  char num[11] = {'0', 'x'};
  for (int i = 0; i < 8; i++) {
    num[2 + i] = hex[(code >> (28 - 4 * i)) & 0xfu];
  }
  num[10] = '\n';
  platform_console_write("postern: panic: ", 16);
  platform_console_write(what, strlen(what));
  platform_console_write(" ", 1);
  platform_console_write(num, sizeof num);
  __asm volatile("cpsid i" ::: "memory");
  for (;;) {
    __asm volatile("wfi");
  }
}

/** The board has no real-time clock: responses carry no Date and logs no time. */
bool platform_unix_time(uint64_t *seconds)
{
  (void)seconds;
  return false;
}

/*
 * Entropy. The LM3S6965 has no hardware random generator, so bytes come from
 * SHA-256(seed || counter), where the 32-byte seed was drawn from the build
 * machine's /dev/urandom when the image was built (baked.h) and the counter
 * only grows. Every boot of one image replays the same sequence: anyone who
 * holds the image can predict it. This is fit for emulation only, never for
 * a device in the field.
 */
static uint32_t board_entropy_counter;

/** Fills buf with SHA-256(seed || counter) blocks; see the note above (emulation only). */
bool platform_entropy(uint8_t *buf, size_t len)
{
  while (len > 0) {
    uint8_t block[32];
    uint8_t ctr[4];
    uint32_t c = board_entropy_counter++;
    for (int i = 0; i < 4; i++) {
      ctr[i] = (uint8_t)(c >> (8 * i));
    }
    mbedtls_sha256_context sha;
    mbedtls_sha256_init(&sha);
    int rc = mbedtls_sha256_starts(&sha, 0);
    rc = rc != 0 ? rc : mbedtls_sha256_update(&sha, baked_entropy_seed, sizeof baked_entropy_seed);
    rc = rc != 0 ? rc : mbedtls_sha256_update(&sha, ctr, sizeof ctr);
    rc = rc != 0 ? rc : mbedtls_sha256_finish(&sha, block);
    mbedtls_sha256_free(&sha);
    if (rc != 0) {
      return false;
    }
    size_t n = len < sizeof block ? len : sizeof block;
    memcpy(buf, block, n);
    buf += n;
    len -= n;
  }
  return true;
}

/** 32 bits for TCP sequence numbers and ports: the entropy stream mixed with the SysTick phase. */
uint32_t platform_random(void)
{
  uint8_t b[4] = {0};
  platform_entropy(b, sizeof b);
  uint32_t r = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return r ^ LM3S_SYST_CVR ^ (sys_now() << 16);
}

/** lwIP's LWIP_PLATFORM_ASSERT on this board (board_opts.h): log, then stop. */
void board_assert_failed(const char *msg, const char *file, int line)
{
  log_line("lwip assert \"%s\" at %s:%d", msg, file, line);
  board_panic("lwIP assertion", (uint32_t)line);
}
