/* startup.c: vector table, reset (copy .data, zero .bss, VTOR) and the HardFault report of the mps2-an385. */
#include <stdint.h>

#include "board.h"
#include "board_bench.h"
#include "lan9118.h"
#include "mps2_an385.h"
#include "platform.h"

/* Symbols of the linker script (mps2_an385.ld). */
extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_bottom, __stack_top;

/** Fill of the unused stack (see startup_reset); the first word that differs is the high-water mark. */
#define STARTUP_STACK_PAINT 0x5A5A5A5Au

int main(void);
void startup_reset(void);
void startup_fault_report(const uint32_t *frame, uint32_t exc_return);

/** Anything unexpected: report like a fault, then stop. */
static void startup_unexpected(void)
{
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  board_panic("unexpected exception", ipsr);
}

/* The fault entry: finds the stacked frame (MSP or PSP) and reports it. */
__attribute__((naked)) static void startup_hardfault(void)
{
  __asm volatile("tst lr, #4\n"
                 "ite eq\n"
                 "mrseq r0, msp\n"
                 "mrsne r0, psp\n"
                 "mov r1, lr\n"
                 "b startup_fault_report\n");
}

typedef void (*startup_vector_t)(void);

#if POSTERN_BENCH
/* A bench build's handlers time themselves (port/bench_count.c). */
static void startup_bench_systick_isr(void)
{
  bench_time_isr(board_systick_isr);
}

static void startup_bench_lan9118_isr(void)
{
  bench_time_isr(lan9118_isr);
}
#endif

/** The vector table: 16 system exceptions, then the external interrupts of the AN385 (32). */
__attribute__((section(".vectors"), used)) static const startup_vector_t startup_vectors[16 + 32] = {
    [0] = (startup_vector_t)(uintptr_t)&__stack_top,
    [1] = startup_reset,
    [2] = startup_unexpected,  /* NMI */
    [3] = startup_hardfault,   /* HardFault */
    [4] = startup_hardfault,   /* MemManage (escalates to HardFault while disabled) */
    [5] = startup_hardfault,   /* BusFault */
    [6] = startup_hardfault,   /* UsageFault */
    [11] = startup_unexpected, /* SVCall */
    [12] = startup_unexpected, /* DebugMon */
    [14] = startup_unexpected, /* PendSV */
#if POSTERN_BENCH
    [15] = startup_bench_systick_isr, /* each handler timed (port/bench_count.c) */
#else
    [15] = board_systick_isr,
#endif
    [16 ... 16 + MPS2_LAN9118_IRQ - 1] = startup_unexpected, /* interrupts nothing enables */
#if POSTERN_BENCH
    [16 + MPS2_LAN9118_IRQ] = startup_bench_lan9118_isr,
#else
    [16 + MPS2_LAN9118_IRQ] = lan9118_isr,
#endif
    [16 + MPS2_LAN9118_IRQ + 1 ... 16 + 31] = startup_unexpected,
};

/** Reset: copies .data from the image, zeroes .bss, points VTOR at the table, runs main. */
void startup_reset(void)
{
  uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) {
    *dst++ = *src++;
  }
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
    *dst++ = 0;
  }
  /* Paint the stack below this frame, so its high-water mark can be read from memory later. */
  uint32_t sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t *p = &__stack_bottom; (uintptr_t)p < sp - 64u; p++) {
    *p = STARTUP_STACK_PAINT;
  }
  MPS2_SCB_VTOR = (uint32_t)(uintptr_t)startup_vectors;
  __asm volatile("dsb\nisb" ::: "memory");
  main();
  board_panic("main returned", 0);
}

/** Bytes of the main stack ever used: from its top down to the deepest word that lost its paint. */
uint32_t board_stack_high_water(void)
{
  const uint32_t *p = &__stack_bottom;
  while (p < &__stack_top && *p == STARTUP_STACK_PAINT) {
    p++;
  }
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

/** Bytes of the main stack (mps2_an385.ld). */
uint32_t board_stack_size(void)
{
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_bottom);
}

/* Writes "name=0x........ " to the console without any formatting library. */
static void startup_hex(const char *name, uint32_t v)
{
  char buf[24];
  size_t n = 0;
  while (*name != '\0') {
    buf[n++] = *name++;
  }
  buf[n++] = '=';
  buf[n++] = '0';
  buf[n++] = 'x';
  for (int shift = 28; shift >= 0; shift -= 4) {
    buf[n++] = "0123456789abcdef"[(v >> shift) & 0xfu];
  }
  buf[n++] = ' ';
  platform_console_write(buf, n);
}

/** Prints the stacked registers and the fault status registers, then halts. */
void startup_fault_report(const uint32_t *frame, uint32_t exc_return)
{
  static const char *const names[8] = {"r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr"};
  platform_console_write("\r\n*** HardFault\r\n", 17);
  for (int i = 0; i < 8; i++) {
    startup_hex(names[i], frame[i]);
  }
  platform_console_write("\r\n", 2);
  startup_hex("CFSR", MPS2_SCB_CFSR);
  startup_hex("HFSR", MPS2_SCB_HFSR);
  startup_hex("MMFAR", MPS2_SCB_MMFAR);
  startup_hex("BFAR", MPS2_SCB_BFAR);
  startup_hex("EXC_RETURN", exc_return);
  platform_console_write("\r\n*** halted\r\n", 14);
  for (;;) {
    __asm volatile("wfi");
  }
}
