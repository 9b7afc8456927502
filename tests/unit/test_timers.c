/* test_timers.c: lwIP timeouts driven by the port's sys_now(), across the 32-bit millisecond wrap. */
#include <stdint.h>
#include <stdio.h>

#include "lwip/init.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "platform.h"
#include "unit.h"

static uint32_t fake_now;
static int fired;
static uint32_t fired_at;

u32_t sys_now(void)
{
  return fake_now;
}

void platform_console_write(const char *s, size_t n)
{
  fwrite(s, 1, n, stdout);
}

bool platform_unix_time(uint64_t *seconds)
{
  (void)seconds;
  return false;
}

uint32_t platform_random(void)
{
  return 4;
}

static void on_timeout(void *arg)
{
  (void)arg;
  fired++;
  fired_at = fake_now;
}

/* Advances the fake clock 10 ms at a time, as the main loop would. */
static void run_until(uint32_t ms)
{
  for (uint32_t t = 0; t < ms; t += 10) {
    fake_now += 10;
    sys_check_timeouts();
  }
}

static void test_timeout_fires_across_the_wrap(void)
{
  fake_now = UINT32_MAX - 200; /* 201 ms before the counter wraps */
  fired = 0;
  sys_timeout(500, on_timeout, NULL);
  CHECK(sys_timeouts_sleeptime() <= 500);
  run_until(490);
  CHECK_EQ(fired, 0);
  run_until(20);
  CHECK_EQ(fired, 1);
  /* It fired after the wrap, 500..510 ms after it was set. */
  CHECK((uint32_t)(fired_at - (UINT32_MAX - 200)) >= 500);
  CHECK((uint32_t)(fired_at - (UINT32_MAX - 200)) <= 510);
  sys_untimeout(on_timeout, NULL);
}

static void test_sleeptime_is_short_across_the_wrap(void)
{
  fake_now = UINT32_MAX - 5;
  sys_restart_timeouts();
  fired = 0;
  sys_timeout(100, on_timeout, NULL);
  fake_now += 50; /* now past the wrap */
  uint32_t sleep = sys_timeouts_sleeptime();
  CHECK(sleep <= 50);
  CHECK(sleep != 0xffffffffu);
  run_until(60);
  CHECK_EQ(fired, 1);
  sys_untimeout(on_timeout, NULL);
}

static void test_tcp_timer_keeps_running_after_the_wrap(void)
{
  /* lwIP's own cyclic timers (TCP, ARP) must go on firing after the wrap:
   * a stuck timer list would stall every retransmission on the device. */
  fake_now = UINT32_MAX - 1000;
  sys_restart_timeouts();
  fired = 0;
  for (int i = 0; i < 5; i++) {
    sys_timeout(400, on_timeout, NULL);
    run_until(410);
  }
  CHECK_EQ(fired, 5);
  CHECK(sys_timeouts_sleeptime() <= 1000);
}

int main(void)
{
  fake_now = UINT32_MAX - 10000;
  lwip_init();
  RUN(test_timeout_fires_across_the_wrap);
  RUN(test_sleeptime_is_short_across_the_wrap);
  RUN(test_tcp_timer_keeps_running_after_the_wrap);
  return UNIT_END();
}
