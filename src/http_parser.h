/* http_parser.h: incremental, strict HTTP/1.1 request-head parser (RFC 9112) and helpers. */
#ifndef POSTERN_HTTP_PARSER_H
#define POSTERN_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "postern_opts.h"

/** A token of the head: offset from the first byte fed, and length. */
typedef struct hp_span {
  uint16_t off, len;
} hp_span_t;

/** One header field; value has OWS trimmed on both sides. */
typedef struct hp_header {
  hp_span_t name, value;
} hp_header_t;

/** The parsed request head; spans resolve against a contiguous head copy. */
typedef struct hp_request {
  hp_span_t method, target;
  uint8_t version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
  uint8_t n_headers;
  uint16_t head_len; /* valid on HP_DONE: offset of the first body byte,
                        leading empty lines and final CRLF included */
  hp_header_t headers[POSTERN_MAX_HEADERS];
} hp_request_t;

/** Parser state; no input bytes are buffered. */
typedef struct hp_parser {
  hp_request_t *req;
  uint16_t pos;    /* offset of the next byte in the head */
  uint16_t tok;    /* start of the token being read */
  uint16_t vend;   /* end of the value so far, trailing OWS excluded */
  uint8_t state;   /* internal state */
  uint8_t leading; /* empty lines seen before the request line */
  uint8_t major;   /* HTTP major version digit */
  int8_t result;   /* sticky result once done or failed, else HP_MORE */
} hp_parser_t;

enum hp_result {
  HP_MORE = 0,                  /* all input consumed, head not complete */
  HP_DONE = 1,                  /* head complete; *consumed = its bytes here */
  HP_ERR_SYNTAX = -1,           /* 400 */
  HP_ERR_HEAD_TOO_LARGE = -2,   /* 431: more than POSTERN_HEAD_MAX bytes */
  HP_ERR_TOO_MANY_HEADERS = -3, /* 431: more than POSTERN_MAX_HEADERS */
  HP_ERR_METHOD = -4,           /* 501: method longer than POSTERN_METHOD_MAX */
  HP_ERR_TARGET_TOO_LONG = -5,  /* 414: target longer than POSTERN_TARGET_MAX */
  HP_ERR_VERSION = -6           /* 505: well-formed but not HTTP/1.0 or 1.1 */
};

/* Expect header interpretation (hp_meta_t.expect). */
enum hp_expect { HP_EXPECT_NONE = 0, HP_EXPECT_CONTINUE = 1, HP_EXPECT_OTHER = 2 };

/** Framing-relevant facts about a parsed request (see hp_analyze). */
typedef struct hp_meta {
  uint64_t content_length; /* valid if has_length */
  bool has_length;
  bool chunked;      /* Transfer-Encoding: chunked */
  bool keep_alive;   /* persistence after this request */
  uint8_t expect;    /* enum hp_expect; always HP_EXPECT_NONE for HTTP/1.0 */
  int8_t expect_hdr; /* index of the first Expect field or -1 */
  int8_t host_hdr;   /* index of the Host field or -1 */
} hp_meta_t;

/* Prepares p to parse a new head into req (which is cleared). */
void hp_init(hp_parser_t *p, hp_request_t *req);
/* Feeds the next fragment; returns an enum hp_result, sets *consumed always. */
int hp_feed(hp_parser_t *p, const char *data, size_t len, size_t *consumed);
/* HTTP status for an HP_ERR_* code: 400, 431, 431, 501, 414, 505 (else 0). */
int hp_status_for(int hp_error);
/* snake_case name of an HP_* result, e.g. "bad_request". */
const char *hp_error_name(int hp_error);

/* Case-insensitive compare of a span with a NUL-terminated lower-case literal. */
bool hp_span_ieq(const char *head, hp_span_t s, const char *lit);
/* Finds the first header named `name` (lower-case literal); its index or -1. */
int hp_find(const hp_request_t *r, const char *head, const char *name);
/* Interprets framing headers into *m; returns 0, 400 or 501. */
int hp_analyze(const hp_request_t *r, const char *head, hp_meta_t *m);
/* Percent-decodes src[0..len) into out[cap] with a NUL; length or -1. */
int hp_pct_decode(const char *src, size_t len, char *out, size_t cap);

#endif /* POSTERN_HTTP_PARSER_H */
