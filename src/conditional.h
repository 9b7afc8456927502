/* conditional.h: conditional requests and ranges (RFC 9110 sections 13 and 14): ETags from SHA-256, If-Match / If-None-Match, Range / If-Range. */
#ifndef POSTERN_CONDITIONAL_H
#define POSTERN_CONDITIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Characters of an ETag: a quote, 32 hex digits (the first 16 bytes of the SHA-256), a quote. */
#define COND_ETAG_LEN 34

/** One field line's value (the parser's span of the head). */
typedef struct cond_field {
  const char *p;
  size_t n;
} cond_field_t;

/** The strong ETag of a file from its SHA-256, NUL-terminated: "<32 lower-case hex digits>". */
void cond_etag(const uint8_t sha256[32], char out[COND_ETAG_LEN + 1]);

/**
 * Matches one If-Match or If-None-Match field line against the current ETag
 * (NULL: the file has none; `exists`: the file exists). `weak` selects the
 * weak comparison (If-None-Match), else the strong one (If-Match: a weak tag
 * never matches). `*` matches any existing file; a listed tag never matches
 * a file without an ETag. Returns 1 (matches), 0 (does not) or -1 (not a
 * valid `*` or entity-tag list). Elements are separated by commas with
 * optional whitespace; empty elements are skipped.
 */
int cond_match(const char *v, size_t n, bool exists, const char *etag, bool weak);

/** What the preconditions decided. */
enum cond_result {
  COND_PASS = 0,           /* go on with the request */
  COND_FAILED = 412,       /* Precondition Failed */
  COND_NOT_MODIFIED = 304, /* a GET or HEAD whose If-None-Match matched */
  COND_MALFORMED = 400,    /* a field that is neither `*` nor a list of entity-tags */
};

/**
 * Evaluates If-Match, then If-None-Match, in RFC 9110 section 13.2.2's
 * order, for a file that exists or not and has `etag` or none (NULL). Each
 * field may come in several lines (a list split over lines). `safe`: GET or
 * HEAD (a matching If-None-Match answers 304 there, 412 otherwise).
 * If-Modified-Since and If-Unmodified-Since are not evaluated: no dates are
 * kept.
 */
enum cond_result cond_evaluate(const cond_field_t *if_match, int n_if_match, const cond_field_t *if_none_match,
                               int n_if_none_match, bool exists, const char *etag, bool safe);

/** What a Range field asks for. */
enum cond_range {
  COND_RANGE_WHOLE = 0,          /* no usable range: 200 with the whole file */
  COND_RANGE_PARTIAL = 206,      /* one satisfiable range: first..last */
  COND_RANGE_UNSATISFIABLE = 416 /* one range, outside the file */
};

/**
 * Parses a Range field value for a file of `size` bytes: `bytes=a-b`,
 * `bytes=a-`, `bytes=-n` (the unit is case-insensitive; whitespace around
 * the list's elements is allowed). A malformed value, another unit and an
 * empty file are ignored (WHOLE, RFC 9110 14.2); so are several ranges (the
 * whole file is the answer then). A last position past the end is cut to
 * it; a suffix longer than the file takes all of it.
 */
enum cond_range cond_range(const char *v, size_t n, uint64_t size, uint64_t *first, uint64_t *last);

/**
 * True when an If-Range value lets the Range apply: it is the file's ETag,
 * compared strongly. A date, a weak tag or another tag: false (the whole
 * file is sent). etag NULL (no ETag): false.
 */
bool cond_if_range(const char *v, size_t n, const char *etag);

#endif /* POSTERN_CONDITIONAL_H */
