/* multipart.h: incremental, in-place decoder of a multipart/form-data body (RFC 7578, RFC 2046 5.1) with one file part. */
#ifndef POSTERN_MULTIPART_H
#define POSTERN_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "postern_opts.h"

/** Longest boundary (RFC 2046 5.1.1). */
#define MULTIPART_BOUNDARY_MAX 70

/**
 * Decoder state: no body byte is buffered but one part header line (the
 * Content-Disposition of the file part holds its name). About
 * 80 + POSTERN_FORM_LINE_MAX + POSTERN_NAME_MAX bytes (404 with the defaults).
 */
typedef struct multipart {
  const char *error;                      /* why the form was refused, once MULTIPART_ERR */
  uint32_t extra;                         /* bytes besides the file's: preamble, part heads, fields, epilogue */
  uint16_t line_len;                      /* bytes in line */
  uint8_t state;                          /* internal state */
  uint8_t dlen;                           /* delimiter length: CRLF "--" boundary */
  uint8_t match;                          /* delimiter bytes matched at the end of the input so far (held back) */
  uint8_t flags;                          /* internal: what the part head and the form held */
  uint8_t name_len;                       /* bytes of name; POSTERN_NAME_MAX + 1: longer */
  char delim[4 + MULTIPART_BOUNDARY_MAX]; /* CR LF '-' '-' boundary */
  char line[POSTERN_FORM_LINE_MAX];       /* the part header line being read */
  char name[POSTERN_NAME_MAX + 1];        /* the file part's filename, NUL-terminated */
} multipart_t;

enum { MULTIPART_MORE = 0, MULTIPART_DATA = 1, MULTIPART_FILE = 2, MULTIPART_ERR = -1 };

/**
 * True when a Content-Type field value names multipart/form-data (its
 * parameters are not looked at).
 */
bool multipart_is_form(const char *ctype, size_t len);
/**
 * Prepares m for a body with the Content-Type value ctype: its boundary
 * parameter, a token or a quoted-string, 1 to 70 bytes of RFC 2046's bchars
 * not ending in a space. False, with m->error set, when there is none.
 */
bool multipart_init(multipart_t *m, const char *ctype, size_t len);
/**
 * Consumes from in[0..len): MULTIPART_DATA with a non-empty span of the file
 * part's content (*out, *out_len): inside `in`, or for bytes an earlier call
 * held back as a possible delimiter, inside m->delim; the call stops right
 * after it. MULTIPART_FILE once the file part's head is complete (its
 * filename in m->name, m->name_len bytes); the call stops right after it.
 * MULTIPART_MORE when all input was consumed without either. MULTIPART_ERR
 * on a malformed or refused form (m->error says why; sticky).
 */
int multipart_decode(multipart_t *m, const uint8_t *in, size_t len, size_t *consumed, const uint8_t **out,
                     size_t *out_len);
/** The decoder's position without its buffers: what a call that returned MULTIPART_DATA changed. */
typedef struct multipart_mark {
  const char *error;
  uint32_t extra;
  uint16_t line_len;
  uint8_t state, match, flags, name_len;
} multipart_mark_t;
/** Notes m's position before a call. */
void multipart_mark(const multipart_t *m, multipart_mark_t *k);
/**
 * Puts m back where multipart_mark() noted it, to decode the same bytes
 * again (a write that must be retried). Exact across one call that returned
 * MULTIPART_DATA: such a call starts in the file's content and writes no
 * buffer (the part heads, and the name, come before).
 */
void multipart_rewind(multipart_t *m, const multipart_mark_t *k);
/**
 * The body ended: true when the close delimiter came and a file part with
 * it; false, with m->error set, otherwise.
 */
bool multipart_finish(multipart_t *m);

#endif /* POSTERN_MULTIPART_H */
