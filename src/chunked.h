/* chunked.h: incremental, in-place decoder of the chunked transfer coding (RFC 9112 7.1). */
#ifndef POSTERN_CHUNKED_H
#define POSTERN_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "postern_opts.h"

/** Decoder state; no input bytes are buffered. */
typedef struct chunked {
  uint64_t remaining;   /* payload bytes left in the current chunk */
  uint16_t ext_len;     /* bytes of the current chunk extension (incl. BWS) */
  uint16_t trailer_len; /* bytes of the trailer section so far */
  uint8_t state;        /* internal state */
  uint8_t digits;       /* hex digits of the current chunk size */
} chunked_t;

enum { CHUNKED_MORE = 0, CHUNKED_DATA = 1, CHUNKED_DONE = 2, CHUNKED_ERR = -1 };

/* Prepares c to decode a new chunked body. */
void chunked_init(chunked_t *c);
/* Consumes from in[0..len): CHUNKED_DATA with a payload span (*out, *out_len)
 * inside `in` (the call stops right after it), CHUNKED_MORE when all input
 * was consumed without payload, CHUNKED_DONE at the end of the message
 * (*consumed ends it), CHUNKED_ERR on malformed input (sticky). */
int chunked_decode(chunked_t *c, const uint8_t *in, size_t len, size_t *consumed, const uint8_t **out, size_t *out_len);

#endif /* POSTERN_CHUNKED_H */
