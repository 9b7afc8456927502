/* sha256_rate.c: seconds for the firmware's SHA-256 (digest.c on mbedTLS) over N MiB in 64 KiB spans, on the host:
 * the "SHA-256 alone" of make bench's host table. Usage: sha256_rate MIB */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"

int main(int argc, char **argv)
{
  static unsigned char block[65536];
  long mib = argc > 1 ? atol(argv[1]) : 64;
  memset(block, 0x5a, sizeof block);
  struct timespec t0, t1;
  uint8_t out[DIGEST_SHA256_LEN];
  digest_sha256_t d;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  digest_sha256_start(&d);
  for (long i = 0; i < mib * 16; i++) {
    digest_sha256_update(&d, block, sizeof block);
  }
  digest_sha256_finish(&d, out);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f %02x\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9, out[0]);
  return 0;
}
