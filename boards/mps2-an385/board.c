/* board.c: console on UART0, SysTick time base and randomness of the mps2-an385 (platform.h). */
#include "board.h"

#include <stdbool.h>
#include <string.h>

#include "baked.h"
#include "board_bench.h"
#include "board_opts.h"
#include "log.h"
#include "lwip/sys.h"
#include "mbedtls/sha256.h"
#include "mps2_an385.h"
#include "platform.h"

/*
 * Time base: timer 0 counts the 25 MHz clock down through all 32 bits (a
 * wrap every 171 s), and each clock read adds up the cycles since the last
 * one, into milliseconds (sys_now) and microseconds (board_now_us, the flash
 * model's clock). Time is read, never counted in interrupts: under QEMU a
 * sleeping (WFI) core takes its timer interrupts late, and a clock made of
 * ticks ran about a third slow. SysTick only wakes the main loop every
 * BOARD_TICK_MS, so the clock is read far more often than once per wrap.
 */
#define BOARD_TICK_CYCLES (MPS2_SYSCLK_HZ / 1000u * BOARD_TICK_MS)
#define BOARD_CYCLES_PER_MS (MPS2_SYSCLK_HZ / 1000u)
#define BOARD_CYCLES_PER_US (MPS2_SYSCLK_HZ / 1000000u)

static uint32_t board_clock_last;      /* timer 0 at the last read */
static uint32_t board_clock_cycles;    /* cycles not yet a whole millisecond */
static uint32_t board_clock_ms;        /* wraps at 2^32, as lwIP expects */
static uint32_t board_clock_us_cycles; /* cycles not yet a whole microsecond */
static uint32_t board_clock_us;        /* wraps at 2^32 (71 minutes) */

/** Starts the console (UART0, TX only), the free-running clock and the SysTick wake-up. */
void board_init(void)
{
  MPS2_UART_BAUDDIV(MPS2_UART0_BASE) = MPS2_SYSCLK_HZ / MPS2_UART_BAUD;
  MPS2_UART_CTRL(MPS2_UART0_BASE) = MPS2_UART_CTRL_TX_EN;
  MPS2_TIMER_CTRL(MPS2_TIMER0_BASE) = 0;
  MPS2_TIMER_RELOAD(MPS2_TIMER0_BASE) = 0xFFFFFFFFu;
  MPS2_TIMER_VALUE(MPS2_TIMER0_BASE) = 0xFFFFFFFFu;
  MPS2_TIMER_CTRL(MPS2_TIMER0_BASE) = MPS2_TIMER_CTRL_ENABLE;
  board_clock_last = MPS2_TIMER_VALUE(MPS2_TIMER0_BASE);
  MPS2_SYST_RVR = BOARD_TICK_CYCLES - 1u;
  MPS2_SYST_CVR = 0;
  MPS2_SYST_CSR = MPS2_SYST_CSR_ENABLE | MPS2_SYST_CSR_TICKINT | MPS2_SYST_CSR_CLKSOURCE;
}

/** SysTick: nothing to count; taking the interrupt ends the main loop's WFI. */
void board_systick_isr(void)
{
}

/* Adds the cycles timer 0 counted since the last read to both clocks (main loop only). */
static void board_clock_read(void)
{
  uint32_t now = MPS2_TIMER_VALUE(MPS2_TIMER0_BASE);
  uint32_t elapsed = board_clock_last - now; /* it counts down; the wrap cancels out */
  board_clock_last = now;
  /* 32-bit arithmetic only (no __aeabi_uldivmod on this often-called path). */
  board_clock_ms += elapsed / BOARD_CYCLES_PER_MS;
  board_clock_cycles += elapsed % BOARD_CYCLES_PER_MS;
  if (board_clock_cycles >= BOARD_CYCLES_PER_MS) {
    board_clock_cycles -= BOARD_CYCLES_PER_MS;
    board_clock_ms++;
  }
  board_clock_us += elapsed / BOARD_CYCLES_PER_US;
  board_clock_us_cycles += elapsed % BOARD_CYCLES_PER_US;
  if (board_clock_us_cycles >= BOARD_CYCLES_PER_US) {
    board_clock_us_cycles -= BOARD_CYCLES_PER_US;
    board_clock_us++;
  }
}

/** lwIP's millisecond clock (main loop only). */
u32_t sys_now(void)
{
  board_clock_read();
  return board_clock_ms;
}

/** Microseconds on the same clock, wrapping at 2^32 (main loop only). */
uint32_t board_now_us(void)
{
  board_clock_read();
  return board_clock_us;
}

/**
 * Sleeps until the next interrupt unless busy() reports work. An interrupt
 * that slips in between the check and the WFI costs at most one SysTick
 * period (BOARD_TICK_MS). (The PRIMASK-guarded form does not wake under QEMU: its
 * NVIC only wakes a WFI for an interrupt that could preempt.)
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

/** Writes console bytes to UART0, waiting while its transmit buffer is full. */
void platform_console_write(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    while (MPS2_UART_STATE(MPS2_UART0_BASE) & MPS2_UART_STATE_TX_FULL) {
    }
    MPS2_UART_DATA(MPS2_UART0_BASE) = (uint8_t)s[i];
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
 * Entropy. The AN385 has no hardware random generator, so bytes come from
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
  return r ^ MPS2_SYST_CVR ^ (sys_now() << 16);
}

/** lwIP's LWIP_PLATFORM_ASSERT on this board (board_opts.h): log, then stop. */
void board_assert_failed(const char *msg, const char *file, int line)
{
  log_line("lwip assert \"%s\" at %s:%d", msg, file, line);
  board_panic("lwIP assertion", (uint32_t)line);
}
