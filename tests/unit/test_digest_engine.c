/* test_digest_engine.c: digest.c on a board's hash engine (POSTERN_SHA256_ENGINE=1): every SHA-256 goes through
 * the engine's start, update and finish, with the bytes given, and the answers stay SHA-256's. */
#include <string.h>

#include "digest.h"
#include "text.h"
#include "unit.h"

static int starts, updates, finishes, misuse;
static size_t bytes;

void sha256_engine_start(sha256_engine_t *e)
{
  starts++;
  mbedtls_sha256_init(&e->ctx);
  (void)mbedtls_sha256_starts(&e->ctx, 0);
  e->live = 1;
}

void sha256_engine_update(sha256_engine_t *e, const uint8_t *data, size_t len)
{
  updates++;
  bytes += len;
  misuse += e->live != 1;
  (void)mbedtls_sha256_update(&e->ctx, data, len);
}

void sha256_engine_finish(sha256_engine_t *e, uint8_t out[32])
{
  finishes++;
  misuse += e->live != 1;
  (void)mbedtls_sha256_finish(&e->ctx, out);
  mbedtls_sha256_free(&e->ctx);
  e->live = 0;
}

static void reset(void)
{
  starts = updates = finishes = misuse = 0;
  bytes = 0;
}

static void test_one_shot_goes_through_the_engine(void)
{
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[65];
  reset();
  digest_sha256("abc", 3, d);
  text_hex(d, sizeof d, hex);
  CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_EQ(starts, 1);
  CHECK_EQ(updates, 1);
  CHECK_EQ(bytes, 3);
  CHECK_EQ(finishes, 1);
  CHECK_EQ(misuse, 0);
}

static void test_streaming_passes_every_span_and_skips_empty_ones(void)
{
  static const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[65];
  digest_sha256_t s;
  reset();
  digest_sha256_start(&s);
  for (size_t i = 0; i < strlen(msg); i += 7) {
    digest_sha256_update(&s, msg + i, strlen(msg) - i < 7 ? strlen(msg) - i : 7);
    digest_sha256_update(&s, msg, 0);
  }
  digest_sha256_finish(&s, d);
  text_hex(d, sizeof d, hex);
  CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK_EQ(starts, 1);
  CHECK_EQ(updates, 8); /* 56 bytes in spans of 7; the empty spans never reach the engine */
  CHECK_EQ(bytes, strlen(msg));
  CHECK_EQ(finishes, 1);
  CHECK_EQ(misuse, 0);
}

static void test_hmac_uses_the_engine_too(void)
{
  /* RFC 4231 test case 2. */
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[65];
  reset();
  digest_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
  text_hex(d, sizeof d, hex);
  CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK_EQ(starts, 2); /* inner and outer */
  CHECK_EQ(finishes, 2);
  CHECK_EQ(bytes, 64 + 28 + 64 + 32);
  CHECK_EQ(misuse, 0);
}

int main(void)
{
  RUN(test_one_shot_goes_through_the_engine);
  RUN(test_streaming_passes_every_span_and_skips_empty_ones);
  RUN(test_hmac_uses_the_engine_too);
  return UNIT_END();
}
