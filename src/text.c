/* text.c: UTF-8 well-formedness, the rule for stored file names, lower case for addresses. */
#include "text.h"

#include <string.h>

#include "postern_opts.h"

#define TEXT_IS_TCHAR(c)                                                                                            \
  (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || (c) == '!' ||          \
   (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || \
   (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define TEXT_CLASS(c)                                                                      \
  ((TEXT_IS_TCHAR(c) ? TEXT_TCHAR : 0u) | (((c) >= 0x21 && (c) != 0x7F) ? TEXT_VIS : 0u) | \
   (((c) >= 0x21 && (c) <= 0x7E) ? TEXT_VCHAR : 0u))
#define TEXT_C4(c) TEXT_CLASS(c), TEXT_CLASS((c) + 1), TEXT_CLASS((c) + 2), TEXT_CLASS((c) + 3)
#define TEXT_C16(c) TEXT_C4(c), TEXT_C4((c) + 4), TEXT_C4((c) + 8), TEXT_C4((c) + 12)
#define TEXT_C64(c) TEXT_C16(c), TEXT_C16((c) + 16), TEXT_C16((c) + 32), TEXT_C16((c) + 48)

const uint8_t text_class[256] = {TEXT_C64(0), TEXT_C64(64), TEXT_C64(128), TEXT_C64(192)};

/** Length of the well-formed UTF-8 sequence at s, or 0 (see text.h). */
size_t text_utf8_len(const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  if (c < 0x80) {
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte (RFC 3629 section 4) */
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
    hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    lo = c == 0xf0 ? 0x90 : 0x80; /* no overlong forms */
    hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
  } else {
    return 0; /* a continuation byte, 0xc0/0xc1 or 0xf5..0xff */
  }
  if (n < len || s[1] < lo || s[1] > hi) {
    return 0;
  }
  for (size_t i = 2; i < len; i++) {
    if (s[i] < 0x80 || s[i] > 0xbf) {
      return 0;
    }
  }
  return len;
}

/** True for a name a file may be stored under (see text.h). */
bool text_name_ok(const char *name, size_t len)
{
  if (len == 0 || len > POSTERN_NAME_MAX || name[0] == '.') {
    return false;
  }
  const unsigned char *s = (const unsigned char *)name;
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || (c == '.' && i + 1 < len && s[i + 1] == '.')) {
      return false;
    }
    size_t step = text_utf8_len(s + i, len - i);
    if (step == 0) {
      return false;
    }
    i += step;
  }
  return true;
}

/** Lower-cases ASCII letters in place (see text.h). */
char *text_lower(char *s)
{
  for (char *p = s; *p != '\0'; p++) {
    if (*p >= 'A' && *p <= 'Z') {
      *p = (char)(*p - 'A' + 'a');
    }
  }
  return s;
}

void text_hex(const uint8_t *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}
