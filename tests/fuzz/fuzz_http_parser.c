/* fuzz_http_parser.c: libFuzzer target: whole, split and byte-by-byte feeding of hp_feed must agree. */
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

/* Feeds data one byte per call: step() alone takes every byte (no whole line is ever in one call). */
static int feed_bytewise(hp_parser_t *p, const uint8_t *data, size_t size, size_t *consumed)
{
  size_t used = 0;
  for (size_t i = 0; i < size; i++) {
    int rc = hp_feed(p, (const char *)data + i, 1, &used);
    if (rc != HP_MORE) {
      *consumed = i + used;
      return rc;
    }
  }
  *consumed = size;
  return HP_MORE;
}

/* Feeds data whole, split in two (position from the first byte) and byte by
 * byte; aborts on any difference. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  hp_parser_t p1, p2, p3;
  hp_request_t r1, r2, r3;
  hp_meta_t m;
  size_t c1 = 0, c2 = 0, cut = size ? (size_t)data[0] * size / 256 : 0;
  char out[64];
  int rc1, rc2;

  hp_init(&p1, &r1);
  hp_init(&p2, &r2);
  rc1 = hp_feed(&p1, (const char *)data, size, &c1);
  rc2 = hp_feed(&p2, (const char *)data, cut, &c2);
  if (rc2 == HP_MORE) {
    rc2 = hp_feed(&p2, (const char *)data + cut, size - cut, &c2);
    c2 += cut;
  }
  if (rc1 != rc2 || c1 != c2 || memcmp(&r1, &r2, sizeof r1) != 0)
    abort();
  size_t c3 = 0;
  hp_init(&p3, &r3);
  if (feed_bytewise(&p3, data, size, &c3) != rc1 || c3 != c1 || memcmp(&r1, &r3, sizeof r1) != 0)
    abort();
  if (rc1 == HP_DONE) {
    if (c1 != r1.head_len)
      abort();
    (void)hp_analyze(&r1, (const char *)data, &m);
    (void)hp_pct_decode((const char *)data + r1.target.off, r1.target.len, out, sizeof out);
  }
  return 0;
}
