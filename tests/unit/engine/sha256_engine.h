/* sha256_engine.h: the counting fake hash engine of test_digest_engine.c (POSTERN_SHA256_ENGINE=1). */
#ifndef TEST_SHA256_ENGINE_H
#define TEST_SHA256_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "mbedtls/sha256.h"

/* The fake computes with mbedTLS and counts what postern asks of it. */
typedef struct sha256_engine {
  mbedtls_sha256_context ctx;
  int live; /* 1 between start and finish */
} sha256_engine_t;

void sha256_engine_start(sha256_engine_t *e);
void sha256_engine_update(sha256_engine_t *e, const uint8_t *data, size_t len);
void sha256_engine_finish(sha256_engine_t *e, uint8_t out[32]);

#endif /* TEST_SHA256_ENGINE_H */
