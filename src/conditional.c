/* conditional.c: ETags from SHA-256, If-Match / If-None-Match lists and their order, Range and If-Range parsing (no allocation). */
#include "conditional.h"

#include <string.h>

#include "text.h"

/** Renders the ETag: a quote, the first 16 bytes of the SHA-256 in hex, a quote. */
void cond_etag(const uint8_t sha256[32], char out[COND_ETAG_LEN + 1])
{
  out[0] = '"';
  text_hex(sha256, 16, out + 1);
  out[COND_ETAG_LEN - 1] = '"';
  out[COND_ETAG_LEN] = '\0';
}

static bool cond_ows(char c)
{
  return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text */
static bool cond_etagc(unsigned char c)
{
  return c == 0x21 || (c >= 0x23 && c != 0x7F);
}

/*
 * Reads one entity-tag at v[*i] (whitespace skipped before it): its opaque
 * part (quotes included) as [*tag, *tag + *len) and whether it is weak.
 * False when what is there is no entity-tag.
 */
static bool cond_entity_tag(const char *v, size_t n, size_t *i, size_t *tag, size_t *len, bool *weak)
{
  size_t k = *i;
  *weak = false;
  if (k + 1 < n && v[k] == 'W' && v[k + 1] == '/') {
    *weak = true;
    k += 2;
  }
  if (k >= n || v[k] != '"') {
    return false;
  }
  size_t start = k++;
  while (k < n && cond_etagc((unsigned char)v[k])) {
    k++;
  }
  if (k >= n || v[k] != '"') {
    return false;
  }
  k++;
  *tag = start;
  *len = k - start;
  *i = k;
  return true;
}

/** Matches one If-Match / If-None-Match line; see conditional.h. */
int cond_match(const char *v, size_t n, bool exists, const char *etag, bool weak)
{
  size_t a = 0, b = n;
  while (a < b && cond_ows(v[a])) {
    a++;
  }
  while (b > a && cond_ows(v[b - 1])) {
    b--;
  }
  if (b - a == 1 && v[a] == '*') {
    return exists ? 1 : 0;
  }
  size_t etag_len = etag != NULL ? strlen(etag) : 0;
  int found = 0, tags = 0;
  size_t i = a;
  for (;;) {
    while (i < b && (cond_ows(v[i]) || v[i] == ',')) {
      i++; /* empty elements and whitespace (RFC 9110 5.6.1) */
    }
    if (i >= b) {
      break;
    }
    size_t tag, len;
    bool is_weak;
    if (!cond_entity_tag(v, b, &i, &tag, &len, &is_weak)) {
      return -1;
    }
    tags++;
    while (i < b && cond_ows(v[i])) {
      i++;
    }
    if (i < b && v[i] != ',') {
      return -1; /* two tags without a comma, or trailing bytes */
    }
    if (exists && etag != NULL && (weak || !is_weak) && len == etag_len && memcmp(v + tag, etag, len) == 0) {
      found = 1;
    }
  }
  return tags > 0 ? found : -1;
}

/* Matches every line of one field: 1 when any matches, 0 when none, -1 when one is malformed. */
static int cond_match_all(const cond_field_t *f, int count, bool exists, const char *etag, bool weak)
{
  int result = 0;
  for (int k = 0; k < count; k++) {
    int m = cond_match(f[k].p, f[k].n, exists, etag, weak);
    if (m < 0) {
      return -1;
    }
    result |= m;
  }
  return result;
}

/** RFC 9110 13.2.2: If-Match first (strong), then If-None-Match (weak); see conditional.h. */
enum cond_result cond_evaluate(const cond_field_t *if_match, int n_if_match, const cond_field_t *if_none_match,
                               int n_if_none_match, bool exists, const char *etag, bool safe)
{
  if (n_if_match > 0) {
    int m = cond_match_all(if_match, n_if_match, exists, etag, false);
    if (m < 0) {
      return COND_MALFORMED;
    }
    if (m == 0) {
      return COND_FAILED;
    }
  }
  if (n_if_none_match > 0) {
    int m = cond_match_all(if_none_match, n_if_none_match, exists, etag, true);
    if (m < 0) {
      return COND_MALFORMED;
    }
    if (m == 1) {
      return safe ? COND_NOT_MODIFIED : COND_FAILED;
    }
  }
  return COND_PASS;
}

/* Reads decimal digits at v[*i], saturating at UINT64_MAX; false when there is none. */
static bool cond_number(const char *v, size_t n, size_t *i, uint64_t *out)
{
  size_t k = *i;
  uint64_t x = 0;
  while (k < n && v[k] >= '0' && v[k] <= '9') {
    unsigned d = (unsigned)(v[k] - '0');
    x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    k++;
  }
  if (k == *i) {
    return false;
  }
  *i = k;
  *out = x;
  return true;
}

/*
 * Parses one range-spec in v[*i..n) (whitespace around it skipped) into
 * first..last for a file of `size` bytes (> 0). Returns 1 when it is
 * satisfiable, 0 when it is valid but outside the file, -1 when malformed.
 */
static int cond_range_spec(const char *v, size_t n, size_t *i, uint64_t size, uint64_t *first, uint64_t *last)
{
  size_t k = *i;
  uint64_t a = 0, b = 0;
  int rc;
  if (k < n && v[k] == '-') {
    k++;
    if (!cond_number(v, n, &k, &b)) {
      return -1;
    }
    /* suffix-range: the last b bytes; satisfiable when b > 0 */
    rc = b > 0;
    *first = b >= size ? 0 : size - b;
    *last = size - 1;
  } else {
    if (!cond_number(v, n, &k, &a) || k >= n || v[k] != '-') {
      return -1;
    }
    k++;
    bool has_last = cond_number(v, n, &k, &b);
    if (has_last && b < a) {
      return -1; /* invalid: last before first */
    }
    rc = a < size;
    *first = a;
    *last = !has_last || b >= size ? size - 1 : b;
  }
  *i = k;
  return rc;
}

/** Parses a Range value; see conditional.h. */
enum cond_range cond_range(const char *v, size_t n, uint64_t size, uint64_t *first, uint64_t *last)
{
  size_t i = 0;
  while (i < n && cond_ows(v[i])) {
    i++;
  }
  static const char unit[] = "bytes=";
  if (n - i < sizeof unit - 1) {
    return COND_RANGE_WHOLE;
  }
  for (size_t k = 0; k < sizeof unit - 1; k++) {
    char c = v[i + k];
    if ((c >= 'A' && c <= 'Z' ? (char)(c + 32) : c) != unit[k]) {
      return COND_RANGE_WHOLE; /* another unit, or not a Range at all */
    }
  }
  i += sizeof unit - 1;
  int specs = 0, satisfiable = 0;
  for (;;) {
    while (i < n && (cond_ows(v[i]) || v[i] == ',')) {
      i++;
    }
    if (i >= n) {
      break;
    }
    uint64_t a, b;
    int rc = cond_range_spec(v, n, &i, size > 0 ? size : 1, &a, &b);
    if (rc < 0) {
      return COND_RANGE_WHOLE; /* malformed: ignored */
    }
    while (i < n && cond_ows(v[i])) {
      i++;
    }
    if (i < n && v[i] != ',') {
      return COND_RANGE_WHOLE;
    }
    if (specs++ == 0) {
      *first = a;
      *last = b;
      satisfiable = rc;
    }
  }
  if (specs != 1 || size == 0) {
    return COND_RANGE_WHOLE; /* none, several (the whole file), or nothing to cut */
  }
  return satisfiable ? COND_RANGE_PARTIAL : COND_RANGE_UNSATISFIABLE;
}

/** Whether If-Range lets the Range apply: the file's own ETag, strongly; see conditional.h. */
bool cond_if_range(const char *v, size_t n, const char *etag)
{
  size_t a = 0, b = n;
  while (a < b && cond_ows(v[a])) {
    a++;
  }
  while (b > a && cond_ows(v[b - 1])) {
    b--;
  }
  return etag != NULL && b - a == strlen(etag) && memcmp(v + a, etag, b - a) == 0;
}
