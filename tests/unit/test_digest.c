/* test_digest.c: unit tests of SHA-256, HMAC-SHA-256, hex, base64, constant-time compare and Content-Digest parsing. */
#include <string.h>

#include "digest.h"
#include "unit.h"
#include "text.h"

static void hex_of(const uint8_t *d, char *out)
{
  text_hex(d, DIGEST_SHA256_LEN, out);
}

static void test_sha256_vectors(void)
{
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[65];
  digest_sha256("", 0, d);
  hex_of(d, hex);
  CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  digest_sha256("abc", 3, d);
  hex_of(d, hex);
  CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_streaming(void)
{
  static const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  uint8_t one[DIGEST_SHA256_LEN], parts[DIGEST_SHA256_LEN];
  char hex[65];
  digest_sha256_t s;
  digest_sha256(msg, strlen(msg), one);
  digest_sha256_start(&s);
  for (size_t i = 0; i < strlen(msg); i += 5) {
    size_t n = strlen(msg) - i < 5 ? strlen(msg) - i : 5;
    digest_sha256_update(&s, msg + i, n);
  }
  digest_sha256_update(&s, "", 0);
  digest_sha256_finish(&s, parts);
  CHECK(memcmp(one, parts, sizeof one) == 0);
  hex_of(one, hex);
  CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_hmac(void)
{
  uint8_t d[DIGEST_SHA256_LEN];
  char hex[65];
  static const char data2[] = "what do ya want for nothing?";
  digest_hmac_sha256("Jefe", 4, data2, strlen(data2), d); /* RFC 4231 case 2 */
  hex_of(d, hex);
  CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  uint8_t key[131]; /* RFC 4231 case 6: a key longer than the block */
  memset(key, 0xaa, sizeof key);
  static const char data6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
  digest_hmac_sha256(key, sizeof key, data6, strlen(data6), d);
  hex_of(d, hex);
  CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_base64(void)
{
  char out[16];
  CHECK_EQ(digest_base64_encode((const uint8_t *)"foobar", 6, out, sizeof out), 8);
  CHECK_STR(out, "Zm9vYmFy");
  CHECK_EQ(digest_base64_encode((const uint8_t *)"fo", 2, out, sizeof out), 4);
  CHECK_STR(out, "Zm8=");
  CHECK_EQ(digest_base64_encode((const uint8_t *)"f", 1, out, sizeof out), 4);
  CHECK_STR(out, "Zg==");
  CHECK_EQ(digest_base64_encode((const uint8_t *)"foobar", 6, out, 8), 0); /* no room for the NUL */
  CHECK_EQ(digest_base64_encode((const uint8_t *)"foobar", 6, out, 9), 8);
  CHECK_EQ(digest_base64_encode((const uint8_t *)"x", 1, out, 0), 0);
  uint8_t d[DIGEST_SHA256_LEN];
  char b64[DIGEST_SHA256_B64_LEN];
  digest_sha256("{\"hello\": \"world\"}", 18, d);
  CHECK_EQ(digest_base64_encode(d, sizeof d, b64, sizeof b64), 44);
  CHECK_STR(b64, "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=");
}

static void test_equal(void)
{
  CHECK(digest_equal("abcdef", "abcdef", 6));
  CHECK(!digest_equal("abcdef", "abcdeg", 6));
  CHECK(!digest_equal("xbcdef", "abcdef", 6));
  CHECK(digest_equal("a", "b", 0));
}

#define HELLO "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
#define SHA512 "pKvURIxJVi2CgRXROh/M6pJ/UrTVRZKX+LQ+QtqJI4vBNibkPcs43bCCSIkn7JBPtCBXRDmD6IWFF51QVRr+Yg=="

static int parse(const char *v, uint8_t *out)
{
  return digest_parse_content_digest(v, strlen(v), out);
}

static void test_content_digest(void)
{
  uint8_t want[DIGEST_SHA256_LEN], got[DIGEST_SHA256_LEN];
  digest_sha256("{\"hello\": \"world\"}", 18, want);

  memset(got, 0, sizeof got);
  CHECK_EQ(parse("sha-256=:" HELLO ":", got), 1);
  CHECK(memcmp(got, want, sizeof got) == 0);
  memset(got, 0, sizeof got);
  CHECK_EQ(parse("sha-512=:" SHA512 ":, sha-256=:" HELLO ":", got), 1);
  CHECK(memcmp(got, want, sizeof got) == 0);
  CHECK_EQ(parse("  sha-256=:" HELLO ":;p=1 ,\tsha-512=:" SHA512 ":  ", got), 1);
  CHECK_EQ(parse("unixsum=30637, sha-256=:" HELLO ":, x=\"a,b\", y=(1 2 :AA==:);q, z", got), 1);

  /* No sha-256 member. */
  CHECK_EQ(parse("", got), 0);
  CHECK_EQ(parse("   ", got), 0);
  CHECK_EQ(parse("sha-512=:" SHA512 ":", got), 0);
  CHECK_EQ(parse("md5=:AAAA:, unixsum=1", got), 0);
  CHECK_EQ(parse("sha-2560=:" HELLO ":", got), 0);

  /* Malformed or not 32 bytes. */
  CHECK_EQ(parse("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBP!=:", got), -1);
  CHECK_EQ(parse("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9D BPE=:", got), -1);
  CHECK_EQ(parse("sha-256=:AAAA:", got), -1);        /* 3 bytes */
  CHECK_EQ(parse("sha-256=:" SHA512 ":", got), -1);  /* 64 bytes */
  CHECK_EQ(parse("sha-256=:" HELLO, got), -1);       /* unterminated */
  CHECK_EQ(parse("sha-256=\"" HELLO "\"", got), -1); /* a string, not bytes */
  CHECK_EQ(parse("sha-256", got), -1);               /* boolean true */
  CHECK_EQ(parse("SHA-256=:" HELLO ":", got), -1);   /* keys are lower case */
  CHECK_EQ(parse("sha-256=:" HELLO ":,", got), -1);  /* trailing comma */
  CHECK_EQ(parse("sha-256=:" HELLO ": sha-512=:" SHA512 ":", got), -1);
  CHECK_EQ(parse("sha-512=:" SHA512 ":, =", got), -1);
  CHECK_EQ(parse("x=\"unterminated, sha-256=:" HELLO ":", got), -1);
}

int main(void)
{
  RUN(test_sha256_vectors);
  RUN(test_sha256_streaming);
  RUN(test_hmac);
  RUN(test_base64);
  RUN(test_equal);
  RUN(test_content_digest);
  return UNIT_END();
}
