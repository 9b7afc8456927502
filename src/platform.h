/* platform.h: the few services the portable core needs from a board. */
#ifndef POSTERN_PLATFORM_H
#define POSTERN_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Writes console bytes (logs); may block until they are out. */
void platform_console_write(const char *s, size_t n);

/** Seconds since 1970-01-01 UTC, or false when the board has no clock. */
bool platform_unix_time(uint64_t *seconds);

/** 32 random bits for TCP sequence numbers and ports (not for keys). */
uint32_t platform_random(void);

/**
 * Fills buf with len bytes of entropy for the TLS random generator; false when
 * the board cannot. Boards without a hardware RNG derive them from a seed
 * provisioned at build time, which is fit for emulation only.
 */
bool platform_entropy(uint8_t *buf, size_t len);

#endif /* POSTERN_PLATFORM_H */
