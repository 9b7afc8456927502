/* chunked.c: incremental, in-place decoder of the chunked transfer coding (RFC 9112 7.1). */
#include "chunked.h"

#include <stdbool.h>

#include "text.h"

#if POSTERN_CHUNK_EXT_MAX > 65535 || POSTERN_TRAILER_MAX > 65535
#error "POSTERN_CHUNK_EXT_MAX and POSTERN_TRAILER_MAX must fit in 16 bits"
#endif

/* Largest accepted chunk size, and most hex digits (leading zeros count). */
#define CHUNK_SIZE_MAX ((uint64_t)1 << 62)
#define CHUNK_DIGITS_MAX 16

/* Decoder states. */
enum {
  C_SIZE0,   /* first hex digit of a chunk size expected */
  C_SIZE,    /* inside the chunk size */
  C_BWS,     /* BWS after the size: ';' must follow */
  C_EXT,     /* inside the chunk extension (skipped) */
  C_SIZE_LF, /* LF ending the chunk-size line expected */
  C_DATA,    /* chunk payload */
  C_DATA_CR, /* CR after the payload expected */
  C_DATA_LF, /* LF after the payload expected */
  C_TLINE,   /* start of a trailer field line or of the final CRLF */
  C_TNAME,   /* inside a trailer field name */
  C_TVALUE,  /* inside a trailer field value */
  C_TLF,     /* LF ending a trailer field line expected */
  C_END_LF,  /* LF of the final CRLF expected */
  C_DONE,    /* message complete */
  C_ERR      /* malformed input: sticky */
};

/* HTAB, SP, VCHAR or obs-text: a byte allowed in values and extensions. */
static bool is_text(uint8_t b)
{
  return b == '\t' || (b >= 0x20 && b != 0x7F);
}

static int hex_val(uint8_t b)
{
  if (b >= '0' && b <= '9')
    return b - '0';
  if (b >= 'a' && b <= 'f')
    return b - 'a' + 10;
  if (b >= 'A' && b <= 'F')
    return b - 'A' + 10;
  return -1;
}

/** Prepares c to decode a new chunked body. */
void chunked_init(chunked_t *c)
{
  *c = (chunked_t){0};
  c->state = C_SIZE0;
}

/* Counts one byte of the trailer section; false when it grows too long. */
static bool trailer_byte(chunked_t *c)
{
  if (c->trailer_len >= POSTERN_TRAILER_MAX)
    return false;
  c->trailer_len++;
  return true;
}

/* Consumes one byte of BWS or chunk extension after the size. */
static bool ext_byte(chunked_t *c, uint8_t b)
{
  if (c->state == C_BWS) {
    if (b == ';') {
      c->state = C_EXT;
    } else if (b != ' ' && b != '\t') {
      return false; /* BWS must lead to ';' */
    }
  } else if (b == '\r') {
    c->state = C_SIZE_LF;
    return true;
  } else if (!is_text(b)) {
    return false;
  }
  if (c->ext_len >= POSTERN_CHUNK_EXT_MAX)
    return false;
  c->ext_len++;
  return true;
}

/* Consumes one framing byte b (never payload); false on malformed input. */
static bool step(chunked_t *c, uint8_t b)
{
  int d;

  switch (c->state) {
  case C_SIZE0:
  case C_SIZE:
    d = hex_val(b);
    if (d >= 0) {
      if (c->digits >= CHUNK_DIGITS_MAX)
        return false;
      if (c->remaining > (CHUNK_SIZE_MAX - (uint64_t)d) >> 4)
        return false;
      c->remaining = (c->remaining << 4) | (uint64_t)d;
      c->digits++;
      c->state = C_SIZE;
      return true;
    }
    if (c->state == C_SIZE0)
      return false; /* empty size */
    if (b == '\r') {
      c->state = C_SIZE_LF;
      return true;
    }
    if (b != ' ' && b != '\t' && b != ';')
      return false;
    c->ext_len = 0;
    c->state = C_BWS;
    return ext_byte(c, b);

  case C_BWS:
  case C_EXT:
    return ext_byte(c, b);

  case C_SIZE_LF:
    if (b != '\n')
      return false;
    c->digits = 0;
    c->state = c->remaining == 0 ? C_TLINE : C_DATA;
    return true;

  case C_DATA_CR:
    if (b != '\r')
      return false;
    c->state = C_DATA_LF;
    return true;

  case C_DATA_LF:
    if (b != '\n')
      return false;
    c->state = C_SIZE0;
    return true;

  case C_TLINE:
    if (b == '\r') {
      c->state = C_END_LF;
      return true;
    }
    if (!text_tchar(b))
      return false; /* obs-fold, empty name, controls */
    c->state = C_TNAME;
    return trailer_byte(c);

  case C_TNAME:
    if (b == ':') {
      c->state = C_TVALUE;
    } else if (!text_tchar(b)) {
      return false;
    }
    return trailer_byte(c);

  case C_TVALUE:
    if (b == '\r') {
      c->state = C_TLF;
    } else if (!is_text(b)) {
      return false;
    }
    return trailer_byte(c);

  case C_TLF:
    if (b != '\n')
      return false;
    c->state = C_TLINE;
    return trailer_byte(c);

  case C_END_LF:
    if (b != '\n')
      return false;
    c->state = C_DONE;
    return true;

  default:
    return false;
  }
}

/** Consumes from in[0..len). Returns CHUNKED_DATA with *out and *out_len set
 *  to a non-empty payload span inside `in` (the call stops right after it;
 *  *consumed includes it), CHUNKED_MORE when all input was consumed without
 *  payload, CHUNKED_DONE once the last chunk, trailers and final CRLF are
 *  consumed (*consumed ends the message: later bytes belong to the next
 *  request; later calls return CHUNKED_DONE consuming nothing), or
 *  CHUNKED_ERR for malformed input (*consumed = index of the offending byte;
 *  sticky). */
int chunked_decode(chunked_t *c, const uint8_t *in, size_t len, size_t *consumed, const uint8_t **out, size_t *out_len)
{
  size_t i = 0;

  *out = NULL;
  *out_len = 0;
  if (c->state == C_DONE || c->state == C_ERR) {
    *consumed = 0;
    return c->state == C_DONE ? CHUNKED_DONE : CHUNKED_ERR;
  }
  while (i < len) {
    if (c->state == C_DATA) {
      size_t n = len - i;
      if ((uint64_t)n > c->remaining)
        n = (size_t)c->remaining;
      c->remaining -= n;
      if (c->remaining == 0)
        c->state = C_DATA_CR;
      *out = in + i;
      *out_len = n;
      *consumed = i + n;
      return CHUNKED_DATA;
    }
    if (!step(c, in[i])) {
      c->state = C_ERR;
      *consumed = i;
      return CHUNKED_ERR;
    }
    i++;
    if (c->state == C_DONE) {
      *consumed = i;
      return CHUNKED_DONE;
    }
  }
  *consumed = len;
  return CHUNKED_MORE;
}
