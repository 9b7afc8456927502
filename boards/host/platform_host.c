/* platform_host.c: console, clocks and randomness of the host simulator board. */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lwip/sys.h"
#include "platform.h"

/** Writes console bytes to stdout, unbuffered, so logs interleave in order. */
void platform_console_write(const char *s, size_t n)
{
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, s, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

/** Seconds since 1970 from the host's real-time clock. */
bool platform_unix_time(uint64_t *seconds)
{
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0) {
    return false;
  }
  *seconds = (uint64_t)ts.tv_sec;
  return true;
}

/** 32 random bits from the kernel. */
uint32_t platform_random(void)
{
  uint32_t r = 0;
  while (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
    if (errno != EINTR) {
      break;
    }
  }
  return r;
}

/** Entropy for TLS from the kernel's generator. */
bool platform_entropy(uint8_t *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = getrandom(buf, len, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    buf += n;
    len -= (size_t)n;
  }
  return true;
}

#if NO_SYS
/** lwIP's millisecond clock: monotonic, wrapping at 2^32 like a SysTick counter (NO_SYS 0: lwIP's unix port has it). */
u32_t sys_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  return (u32_t)ms;
}
#endif /* NO_SYS */
