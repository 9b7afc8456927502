/* selftest.h: network self-test services: TCP echo (port 7) and discard (port 9). */
#ifndef POSTERN_SELFTEST_H
#define POSTERN_SELFTEST_H

#include <stdint.h>

#include "lwip/err.h"

/**
 * Starts echo on device port 7 and discard on device port 9; a connection
 * silent for idle_s seconds is closed (0: POSTERN_SELFTEST_IDLE_S).
 */
err_t selftest_start(uint32_t idle_s);

/** Bytes swallowed by discard connections that have closed, in total. */
uint64_t selftest_discarded_total(void);

#endif /* POSTERN_SELFTEST_H */
