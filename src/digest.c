/* digest.c: SHA-256, HMAC-SHA-256, hex/base64 and RFC 9530 Content-Digest parsing, on mbedTLS. */
#include "digest.h"

#include <string.h>

#include "mbedtls/base64.h"
#include "mbedtls/platform_util.h"
#include "text.h"

#define SHA256_BLOCK 64

/** Starts a streaming SHA-256. */
void digest_sha256_start(digest_sha256_t *d)
{
#if POSTERN_SHA256_ENGINE
  sha256_engine_start(&d->ctx);
#else
  mbedtls_sha256_init(&d->ctx);
  (void)mbedtls_sha256_starts(&d->ctx, 0);
#endif
}

/** Feeds len bytes into a streaming SHA-256. */
void digest_sha256_update(digest_sha256_t *d, const void *data, size_t len)
{
  if (len > 0) {
#if POSTERN_SHA256_ENGINE
    sha256_engine_update(&d->ctx, (const uint8_t *)data, len);
#else
    (void)mbedtls_sha256_update(&d->ctx, (const unsigned char *)data, len);
#endif
  }
}

/** Ends a streaming SHA-256: writes the 32-byte digest and wipes the context. */
void digest_sha256_finish(digest_sha256_t *d, uint8_t out[DIGEST_SHA256_LEN])
{
#if POSTERN_SHA256_ENGINE
  sha256_engine_finish(&d->ctx, out);
#else
  (void)mbedtls_sha256_finish(&d->ctx, out);
  mbedtls_sha256_free(&d->ctx);
#endif
}

/** One-shot SHA-256 of data[0..len). */
void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
  digest_sha256_t d;
  digest_sha256_start(&d);
  digest_sha256_update(&d, data, len);
  digest_sha256_finish(&d, out);
}

/** HMAC-SHA-256 (RFC 2104) of msg under key; no heap (mbedtls_md_hmac would allocate). */
void digest_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
  uint8_t k[SHA256_BLOCK];
  uint8_t pad[SHA256_BLOCK];
  uint8_t inner[DIGEST_SHA256_LEN];
  digest_sha256_t d;

  memset(k, 0, sizeof k);
  if (key_len > SHA256_BLOCK) {
    digest_sha256(key, key_len, k);
  } else if (key_len > 0) {
    memcpy(k, key, key_len);
  }
  for (size_t i = 0; i < SHA256_BLOCK; i++) {
    pad[i] = (uint8_t)(k[i] ^ 0x36);
  }
  digest_sha256_start(&d);
  digest_sha256_update(&d, pad, sizeof pad);
  digest_sha256_update(&d, msg, len);
  digest_sha256_finish(&d, inner);
  for (size_t i = 0; i < SHA256_BLOCK; i++) {
    pad[i] = (uint8_t)(k[i] ^ 0x5c);
  }
  digest_sha256_start(&d);
  digest_sha256_update(&d, pad, sizeof pad);
  digest_sha256_update(&d, inner, sizeof inner);
  digest_sha256_finish(&d, out);
  mbedtls_platform_zeroize(k, sizeof k);
  mbedtls_platform_zeroize(pad, sizeof pad);
  mbedtls_platform_zeroize(inner, sizeof inner);
}

/** Standard base64 with padding plus a NUL; returns the length without the NUL, 0 when cap is too small. */
size_t digest_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
  size_t olen = 0;
  if (cap == 0) {
    return 0;
  }
  if (mbedtls_base64_encode((unsigned char *)out, cap, &olen, in, n) != 0) {
    out[0] = '\0';
    return 0;
  }
  return olen;
}

/** Compares n bytes in a time that does not depend on their content. */
bool digest_equal(const void *a, const void *b, size_t n)
{
  const volatile uint8_t *x = (const volatile uint8_t *)a;
  const volatile uint8_t *y = (const volatile uint8_t *)b;
  uint8_t diff = 0;
  for (size_t i = 0; i < n; i++) {
    diff = (uint8_t)(diff | (x[i] ^ y[i]));
  }
  return diff == 0;
}

/* ---- Structured Field dictionary (RFC 8941), just enough for Content-Digest ---- */

typedef struct sf_cursor {
  const char *p;
  const char *end;
} sf_cursor_t;

static bool sf_at(const sf_cursor_t *c, char ch)
{
  return c->p < c->end && *c->p == ch;
}

static void sf_skip(sf_cursor_t *c, bool tabs)
{
  while (c->p < c->end && (*c->p == ' ' || (tabs && *c->p == '\t'))) {
    c->p++;
  }
}

static bool sf_lcalpha(char ch)
{
  return ch >= 'a' && ch <= 'z';
}

static bool sf_digit(char ch)
{
  return ch >= '0' && ch <= '9';
}

static bool sf_alpha(char ch)
{
  return sf_lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

/* key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ) */
static bool sf_key(sf_cursor_t *c, const char **key, size_t *key_len)
{
  const char *start = c->p;
  if (c->p >= c->end || !(sf_lcalpha(*c->p) || *c->p == '*')) {
    return false;
  }
  c->p++;
  while (c->p < c->end) {
    char ch = *c->p;
    if (!(sf_lcalpha(ch) || sf_digit(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '*')) {
      break;
    }
    c->p++;
  }
  *key = start;
  *key_len = (size_t)(c->p - start);
  return true;
}

static bool sf_b64char(char ch)
{
  return sf_alpha(ch) || sf_digit(ch) || ch == '+' || ch == '/' || ch == '=';
}

/* sf-token characters (RFC 8941 3.3.4): tchar, ':' and '/'. */
static bool sf_tokenchar(char ch)
{
  return text_tchar((unsigned char)ch) || ch == ':' || ch == '/';
}

/* Bare item; bs and bs_len receive a byte sequence's base64 text (NULL for other types). */
static bool sf_bare_item(sf_cursor_t *c, const char **bs, size_t *bs_len)
{
  *bs = NULL;
  *bs_len = 0;
  if (c->p >= c->end) {
    return false;
  }
  char ch = *c->p;
  if (ch == ':') {
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != ':') {
      if (!sf_b64char(*c->p)) {
        return false;
      }
      c->p++;
    }
    if (c->p >= c->end) {
      return false;
    }
    *bs = start;
    *bs_len = (size_t)(c->p - start);
    c->p++;
    return true;
  }
  if (ch == '"') {
    c->p++;
    while (c->p < c->end) {
      char s = *c->p++;
      if (s == '\\') {
        if (c->p >= c->end || (*c->p != '"' && *c->p != '\\')) {
          return false;
        }
        c->p++;
      } else if (s == '"') {
        return true;
      } else if ((unsigned char)s < 0x20 || (unsigned char)s >= 0x7F) {
        return false;
      }
    }
    return false;
  }
  if (ch == '?') {
    c->p++;
    if (c->p < c->end && (*c->p == '0' || *c->p == '1')) {
      c->p++;
      return true;
    }
    return false;
  }
  if (ch == '-' || sf_digit(ch)) {
    int digits = 0;
    bool dot = false;
    if (ch == '-') {
      c->p++;
    }
    if (c->p >= c->end || !sf_digit(*c->p)) {
      return false;
    }
    while (c->p < c->end && (sf_digit(*c->p) || (*c->p == '.' && !dot))) {
      if (*c->p == '.') {
        dot = true;
      } else if (++digits > 15) {
        return false;
      }
      c->p++;
    }
    return c->p[-1] != '.';
  }
  if (sf_alpha(ch) || ch == '*') {
    c->p++;
    while (c->p < c->end && sf_tokenchar(*c->p)) {
      c->p++;
    }
    return true;
  }
  return false;
}

/* parameters = *( ";" *SP key [ "=" bare-item ] ) */
static bool sf_params(sf_cursor_t *c)
{
  while (sf_at(c, ';')) {
    const char *key, *bs;
    size_t key_len, bs_len;
    c->p++;
    sf_skip(c, false);
    if (!sf_key(c, &key, &key_len)) {
      return false;
    }
    if (sf_at(c, '=')) {
      c->p++;
      if (!sf_bare_item(c, &bs, &bs_len)) {
        return false;
      }
    }
  }
  return true;
}

/* item or inner-list, with parameters; *bs as in sf_bare_item (NULL for an inner list). */
static bool sf_member_value(sf_cursor_t *c, const char **bs, size_t *bs_len)
{
  if (sf_at(c, '(')) {
    c->p++;
    *bs = NULL;
    for (;;) {
      const char *ibs;
      size_t ibs_len;
      sf_skip(c, false);
      if (sf_at(c, ')')) {
        c->p++;
        break;
      }
      if (!sf_bare_item(c, &ibs, &ibs_len) || !sf_params(c)) {
        return false;
      }
      if (!(sf_at(c, ' ') || sf_at(c, ')'))) {
        return false;
      }
    }
    return sf_params(c);
  }
  return sf_bare_item(c, bs, bs_len) && sf_params(c);
}

/**
 * Parses a Content-Digest field value (an RFC 8941 dictionary, RFC 9530).
 * Returns 1 and fills out when a sha-256 member holds a 32-byte byte sequence
 * (the last one wins, as in any dictionary), 0 when there is no sha-256
 * member, -1 when the value is malformed or the sha-256 member is not 32 bytes.
 */
int digest_parse_content_digest(const char *value, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
  sf_cursor_t c = {value, value + len};
  const char *sha = NULL;
  size_t sha_len = 0;
  bool sha_seen = false;

  sf_skip(&c, false);
  while (c.p < c.end) {
    const char *key, *bs = NULL;
    size_t key_len, bs_len = 0;
    bool is_sha;
    if (!sf_key(&c, &key, &key_len)) {
      return -1;
    }
    is_sha = key_len == 7 && memcmp(key, "sha-256", 7) == 0;
    if (sf_at(&c, '=')) {
      c.p++;
      if (!sf_member_value(&c, &bs, &bs_len)) {
        return -1;
      }
    } else if (!sf_params(&c)) { /* a bare key is boolean true */
      return -1;
    }
    if (is_sha) {
      sha_seen = true;
      sha = bs;
      sha_len = bs_len;
    }
    sf_skip(&c, true);
    if (c.p >= c.end) {
      break;
    }
    if (*c.p != ',') {
      return -1;
    }
    c.p++;
    sf_skip(&c, true);
    if (c.p >= c.end) { /* trailing comma */
      return -1;
    }
  }
  if (!sha_seen) {
    return 0;
  }
  if (sha == NULL) {
    return -1;
  }
  uint8_t buf[DIGEST_SHA256_LEN];
  size_t olen = 0;
  if (mbedtls_base64_decode(buf, sizeof buf, &olen, (const unsigned char *)sha, sha_len) != 0 ||
      olen != DIGEST_SHA256_LEN) {
    return -1;
  }
  memcpy(out, buf, DIGEST_SHA256_LEN);
  return 1;
}
