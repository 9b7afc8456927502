/* fuzz_chunked.c: libFuzzer target: whole vs split chunked decoding must agree. */
#include <stdlib.h>
#include <string.h>

#include "chunked.h"

/* Decodes in[0..len) as the fragments split at cut; payload to pay; returns the final result. */
static int run(const uint8_t *in, size_t len, size_t cut, uint8_t *pay, size_t *npay, size_t *end)
{
  chunked_t c;
  size_t at = 0, used, n;
  const uint8_t *out;
  int rc = CHUNKED_MORE;

  chunked_init(&c);
  *npay = 0;
  for (size_t lim = cut;; lim = len) {
    do {
      rc = chunked_decode(&c, in + at, lim - at, &used, &out, &n);
      if (rc == CHUNKED_DATA) {
        if (out != in + at + used - n || n == 0)
          abort();
        memcpy(pay + *npay, out, n);
        *npay += n;
      }
      at += used;
    } while (rc == CHUNKED_DATA && at < lim);
    if ((rc != CHUNKED_MORE && rc != CHUNKED_DATA) || lim == len)
      break;
  }
  *end = at;
  return rc == CHUNKED_DATA ? CHUNKED_MORE : rc;
}

/* Decodes data whole and split in two (position from the first byte); aborts on any difference. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  uint8_t *p1 = malloc(size + 1), *p2 = malloc(size + 1);
  size_t n1, n2, e1, e2, cut = size ? (size_t)data[0] * size / 256 : 0;
  int rc1 = run(data, size, size, p1, &n1, &e1);
  int rc2 = run(data, size, cut, p2, &n2, &e2);

  if (rc1 != rc2 || e1 != e2 || n1 != n2 || memcmp(p1, p2, n1) != 0)
    abort();
  free(p1);
  free(p2);
  return 0;
}
