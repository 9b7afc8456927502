/* fuzz_conditional.c: libFuzzer target: If-Match / If-None-Match lists, Range and If-Range on any bytes, with invariants. */
#include <stdlib.h>
#include <string.h>

#include "conditional.h"

#define TAG "\"00112233445566778899aabbccddeeff\""

/* The value is copied to a block of exactly its size: ASan sees any over-read. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *v = malloc(size ? size : 1);
  memcpy(v, data, size);
  int strong = cond_match(v, size, true, TAG, false), weak = cond_match(v, size, true, TAG, true);
  if (strong < -1 || strong > 1 || (strong < 0) != (weak < 0) || (strong == 1 && weak != 1))
    abort(); /* a strong match is a weak one; both parse alike */
  if (cond_match(v, size, true, NULL, true) == 1 && cond_match(v, size, false, NULL, true) != 0)
    abort(); /* nothing matches a missing file */
  uint64_t size_of_file = size ? data[0] * 97u : 0, first = 0, last = 0;
  enum cond_range r = cond_range(v, size, size_of_file, &first, &last);
  if (r == COND_RANGE_PARTIAL && (first > last || last >= size_of_file))
    abort();
  if (cond_if_range(v, size, TAG) && strong != 1)
    abort(); /* If-Range's match is a strong match */
  free(v);
  return 0;
}
