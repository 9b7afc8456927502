/* text.h: byte-string checks shared by the parser, the routes, the policy bridge, the digest fields and the JSON writer. */
#ifndef POSTERN_TEXT_H
#define POSTERN_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Length of the well-formed UTF-8 sequence at the start of s (1 to 4), or 0
 * when it is not one: a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate or a code point past U+10FFFF (RFC 3629).
 * n must be at least 1.
 */
size_t text_utf8_len(const unsigned char *s, size_t n);

/* Byte classes, one bit each in text_class[]. */
#define TEXT_TCHAR 1u /* tchar (RFC 9110 5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA */
#define TEXT_VIS 2u   /* VCHAR or obs-text: a visible field-value byte */
#define TEXT_VCHAR 4u /* VCHAR: 0x21 to 0x7E */

/** The class bits of every byte value. */
extern const uint8_t text_class[256];

/** A tchar of RFC 9110 section 5.6.2, the bytes of a token. */
static inline bool text_tchar(unsigned char c)
{
  return (text_class[c] & TEXT_TCHAR) != 0;
}

/**
 * A stored file name: 1 to POSTERN_NAME_MAX bytes of well-formed UTF-8, no
 * '/', '\' or "..", no leading '.', no control bytes. Such a name is a plain
 * file on every backend and always renders as valid JSON.
 */
bool text_name_ok(const char *name, size_t len);

/**
 * Lower-cases the ASCII letters of a C string in place, and returns it: lwIP
 * writes IPv6 addresses in capitals, RFC 5952 in small letters.
 */
char *text_lower(char *s);

/** Writes in[0..n) as 2n lowercase hex digits plus a NUL (out holds 2n + 1 bytes). */
void text_hex(const uint8_t *in, size_t n, char *out);

#endif /* POSTERN_TEXT_H */
