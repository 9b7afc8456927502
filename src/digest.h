/* digest.h: SHA-256 (mbedTLS's or a board's engine), HMAC-SHA-256, base64 and Content-Digest parsing. */
#ifndef POSTERN_DIGEST_H
#define POSTERN_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "postern_opts.h"

#if POSTERN_SHA256_ENGINE
#include "sha256_engine.h" /* the board's hash engine (see POSTERN_SHA256_ENGINE) */
#else
#include "mbedtls/sha256.h"
#endif

#define DIGEST_SHA256_LEN 32
/** Base64 of 32 bytes plus NUL. */
#define DIGEST_SHA256_B64_LEN 45

typedef struct digest_sha256 {
#if POSTERN_SHA256_ENGINE
  sha256_engine_t ctx;
#else
  mbedtls_sha256_context ctx;
#endif
} digest_sha256_t;

/** Starts a streaming SHA-256. */
void digest_sha256_start(digest_sha256_t *d);
/** Feeds len bytes into a streaming SHA-256. */
void digest_sha256_update(digest_sha256_t *d, const void *data, size_t len);
/** Writes the 32-byte digest and wipes the context. */
void digest_sha256_finish(digest_sha256_t *d, uint8_t out[DIGEST_SHA256_LEN]);
/** One-shot SHA-256 of data[0..len). */
void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN]);
/** HMAC-SHA-256 (RFC 2104) of msg under key, without heap. */
void digest_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len, uint8_t out[DIGEST_SHA256_LEN]);
/** Standard base64 with padding, NUL-terminated; returns the length without the NUL, 0 when cap is too small. */
size_t digest_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/** Compares n bytes in a time that does not depend on their content. */
bool digest_equal(const void *a, const void *b, size_t n);
/**
 * Parses a Content-Digest value (RFC 9530, an RFC 8941 dictionary): 1 and out
 * filled when a sha-256 member holds a 32-byte byte sequence, 0 when there is
 * no sha-256 member, -1 when malformed (or the sha-256 value is not 32 bytes).
 */
int digest_parse_content_digest(const char *value, size_t len, uint8_t out[DIGEST_SHA256_LEN]);

#endif /* POSTERN_DIGEST_H */
