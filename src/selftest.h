/* selftest.h: network self-test services: TCP echo (port 7) and discard (port 9). */
#ifndef POSTERN_SELFTEST_H
#define POSTERN_SELFTEST_H

#include <stdint.h>

#include "lwip/err.h"

/** Starts echo on device port 7 and discard on device port 9. */
err_t selftest_start(void);

/** Bytes swallowed by discard connections that have closed, in total. */
uint64_t selftest_discarded_total(void);

#endif /* POSTERN_SELFTEST_H */
