/* test_chunked.c: unit tests of the chunked decoder, fed whole, split and bytewise. */
#include <stdint.h>
#include <stdlib.h>

#include "chunked.h"
#include "unit.h"

/* Outcome of decoding one complete input. */
typedef struct outcome {
  int rc;          /* CHUNKED_DONE, CHUNKED_ERR or CHUNKED_MORE at the end */
  size_t consumed; /* absolute end of the message, or offending byte */
  size_t n_payload;
} outcome_t;

#define PAYLOAD_CAP 70000
static uint8_t g_payload[PAYLOAD_CAP];

/* Decodes in[0..len) fed as fragments [0,cut) and [cut,len), or one byte at
 * a time when cut is SIZE_MAX; payload goes to pay. Each fragment is copied
 * into a heap block of exactly its size so that over-reads trip ASan. */
static void feed(const uint8_t *in, size_t len, size_t cut, outcome_t *o, uint8_t *pay)
{
  chunked_t c;
  size_t start = 0;

  chunked_init(&c);
  o->rc = CHUNKED_MORE;
  o->n_payload = 0;
  for (;;) {
    size_t end = cut == SIZE_MAX ? start + 1 : (start < cut ? cut : len);
    size_t n, off = 0;
    uint8_t *frag;

    if (end > len)
      end = len;
    n = end - start;
    frag = n ? malloc(n) : NULL;
    if (n)
      memcpy(frag, in + start, n);
    for (;;) {
      const uint8_t *out = (const uint8_t *)"junk";
      size_t used = SIZE_MAX, out_len = 99;
      int rc = chunked_decode(&c, frag ? frag + off : NULL, n - off, &used, &out, &out_len);
      CHECK(used <= n - off);
      if (rc == CHUNKED_DATA) {
        CHECK(out_len > 0);
        CHECK(out >= frag + off && out + out_len == frag + off + used);
        if (o->n_payload + out_len <= PAYLOAD_CAP)
          memcpy(pay + o->n_payload, out, out_len);
        o->n_payload += out_len;
        off += used;
        if (off == n)
          break;
        continue;
      }
      CHECK(out == NULL && out_len == 0);
      if (rc == CHUNKED_MORE) {
        CHECK_EQ(used, n - off);
        break;
      }
      CHECK(rc == CHUNKED_DONE || rc == CHUNKED_ERR);
      o->rc = rc;
      o->consumed = start + off + used;
      free(frag);
      /* Sticky, consuming nothing more. */
      CHECK_EQ(chunked_decode(&c, (const uint8_t *)"0\r\n", 3, &used, &out, &out_len), rc);
      CHECK_EQ(used, 0);
      return;
    }
    free(frag);
    start = end;
    if (start >= len)
      break;
  }
  o->consumed = len;
}

static char g_render[PAYLOAD_CAP + 64];
static char g_other[PAYLOAD_CAP + 64];
static uint8_t g_pay2[PAYLOAD_CAP];

static void render(const outcome_t *o, const uint8_t *pay, char *buf)
{
  const char *what = o->rc == CHUNKED_DONE ? "DONE" : o->rc == CHUNKED_ERR ? "ERR" : "MORE";
  size_t n = o->n_payload < PAYLOAD_CAP ? o->n_payload : PAYLOAD_CAP;
  int k = sprintf(buf, "%s @%zu [", what, o->consumed);
  memcpy(buf + k, pay, n);
  memcpy(buf + (size_t)k + n, "]", 2);
}

/* Decodes in[0..len) whole, split at every position, and bytewise; checks
 * they all agree and returns the rendered result "DONE @n [payload]". */
static const char *decode_n(const void *in, size_t len, outcome_t *out)
{
  outcome_t whole, o;
  size_t cut;

  feed(in, len, len, &whole, g_payload);
  render(&whole, g_payload, g_render);
  for (cut = 0; cut <= len + 1; cut++) {
    feed(in, len, cut <= len ? cut : SIZE_MAX, &o, g_pay2);
    render(&o, g_pay2, g_other);
    if (o.rc != whole.rc || o.consumed != whole.consumed || o.n_payload != whole.n_payload ||
        memcmp(g_payload, g_pay2, whole.n_payload < PAYLOAD_CAP ? whole.n_payload : PAYLOAD_CAP)) {
      CHECK_STR(g_other, g_render);
      fprintf(stderr, "  split at %zu%s\n", cut, cut > len ? " (bytewise)" : "");
      break;
    }
  }
  if (out)
    *out = whole;
  return g_render;
}

static const char *decode(const char *s)
{
  return decode_n(s, strlen(s), NULL);
}

static void test_single_and_many(void)
{
  CHECK_STR(decode("5\r\nhello\r\n0\r\n\r\n"), "DONE @15 [hello]");
  CHECK_STR(decode("1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\na\r\n0123456789\r\n0\r\n\r\n"), "DONE @41 [abcdef0123456789]");
  CHECK_STR(decode("0\r\n\r\n"), "DONE @5 []");
  CHECK_STR(decode("3\r\n\r\n\r\r\n0\r\n\r\n"), "DONE @13 [\r\n\r]");
}

static void test_hex_forms(void)
{
  CHECK_STR(decode("A\r\n0123456789\r\n0\r\n\r\n"), "DONE @20 [0123456789]");
  CHECK_STR(decode("a\r\n0123456789\r\n0\r\n\r\n"), "DONE @20 [0123456789]");
  CHECK_STR(decode("0005\r\nhello\r\n000\r\n\r\n"), "DONE @20 [hello]");
  CHECK_STR(decode("0000000000000010\r\n0123456789abcdef\r\n0\r\n\r\n"), "DONE @41 [0123456789abcdef]");
  /* 17 digits, even if zeros. */
  CHECK_STR(decode("00000000000000005\r\nhello\r\n0\r\n\r\n"), "ERR @16 []");
  CHECK_STR(decode("1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n"), "DONE @42 [0123456789012345678901234567890]");
}

static void test_size_overflow(void)
{
  outcome_t o;
  /* 2^62 is accepted (the body then simply does not end here). */
  CHECK_STR(decode("4000000000000000\r\nab"), "MORE @20 [ab]");
  CHECK_STR(decode("4000000000000001\r\nab"), "ERR @15 []");
  CHECK_STR(decode("FFFFFFFFFFFFFFFF\r\n"), "ERR @15 []");
  CHECK_STR(decode("10000000000000000\r\n"), "ERR @16 []");
  decode_n("3fffffffffffffff\r\n", 18, &o);
  CHECK_EQ(o.rc, CHUNKED_MORE);
}

static void test_bad_size(void)
{
  CHECK_STR(decode("\r\nabc\r\n0\r\n\r\n"), "ERR @0 []");
  CHECK_STR(decode("g\r\n"), "ERR @0 []");
  CHECK_STR(decode("5x\r\nhello\r\n"), "ERR @1 []");
  CHECK_STR(decode("-5\r\n"), "ERR @0 []");
  CHECK_STR(decode("0x5\r\nhello\r\n"), "ERR @1 []");
  CHECK_STR(decode(" 5\r\nhello\r\n"), "ERR @0 []");
  CHECK_STR(decode(";a\r\n"), "ERR @0 []");
  CHECK_STR(decode("5\nhello\r\n0\r\n\r\n"), "ERR @1 []");
  CHECK_STR(decode("5\rhello\r\n0\r\n\r\n"), "ERR @2 []");
  CHECK_STR(decode("5 \r\nhello\r\n"), "ERR @2 []");
  CHECK_STR(decode("5\t\r\nhello\r\n"), "ERR @2 []");
}

static void test_data_crlf(void)
{
  CHECK_STR(decode("5\r\nhelloX\r\n0\r\n\r\n"), "ERR @8 [hello]");
  CHECK_STR(decode("5\r\nhello\n0\r\n\r\n"), "ERR @8 [hello]");
  CHECK_STR(decode("5\r\nhello\rX0\r\n\r\n"), "ERR @9 [hello]");
  CHECK_STR(decode("5\r\nhello0\r\n\r\n"), "ERR @8 [hello]");
  CHECK_STR(decode("5\r\nhello\r\n0\r\n\n"), "ERR @13 [hello]");
  CHECK_STR(decode("5\r\nhello\r\n0\r\n\rX"), "ERR @14 [hello]");
  CHECK_STR(decode("5\r\nhello\r\n0\n\r\n"), "ERR @11 [hello]");
}

static void test_extensions(void)
{
  CHECK_STR(decode("5;name=value\r\nhello\r\n0;last\r\n\r\n"), "DONE @31 [hello]");
  CHECK_STR(decode("5 ;a\r\nhello\r\n0\t \t;b=\"q s\"\r\n\r\n"), "DONE @29 [hello]");
  CHECK_STR(decode("5;a=\x80\xff\t \r\nhello\r\n0\r\n\r\n"), "DONE @22 [hello]");
  CHECK_STR(decode("5;a\x01\r\nhello\r\n0\r\n\r\n"), "ERR @3 []");
  CHECK_STR(decode("5;a\x7f\r\nhello\r\n0\r\n\r\n"), "ERR @3 []");
  CHECK_STR(decode("5;a\nhello\r\n0\r\n\r\n"), "ERR @3 []");
  CHECK_STR(decode("5;a\rhello\r\n0\r\n\r\n"), "ERR @4 []");
  CHECK_STR(decode("5 x\r\nhello\r\n0\r\n\r\n"), "ERR @2 []");
}

static char g_big[PAYLOAD_CAP];

static void test_ext_limit(void)
{
  outcome_t o;
  size_t len;
  /* Extension (BWS and ';' included) exactly at the limit. */
  g_big[0] = '5';
  g_big[1] = ' ';
  g_big[2] = ';';
  memset(g_big + 3, 'e', POSTERN_CHUNK_EXT_MAX - 2);
  len = 1 + POSTERN_CHUNK_EXT_MAX;
  len += (size_t)sprintf(g_big + len, "\r\nhello\r\n0\r\n\r\n");
  decode_n(g_big, len, &o);
  CHECK_EQ(o.rc, CHUNKED_DONE);
  CHECK_EQ(o.consumed, len);
  CHECK_EQ(o.n_payload, 5);

  memset(g_big + 3, 'e', POSTERN_CHUNK_EXT_MAX - 1);
  len = 2 + POSTERN_CHUNK_EXT_MAX;
  len += (size_t)sprintf(g_big + len, "\r\nhello\r\n0\r\n\r\n");
  decode_n(g_big, len, &o);
  CHECK_EQ(o.rc, CHUNKED_ERR);
  CHECK_EQ(o.consumed, 1 + POSTERN_CHUNK_EXT_MAX);

  /* The limit is per chunk-size line. */
  len = 0;
  for (int i = 0; i < 3; i++) {
    g_big[len++] = '1';
    g_big[len++] = ';';
    memset(g_big + len, 'e', POSTERN_CHUNK_EXT_MAX - 1);
    len += POSTERN_CHUNK_EXT_MAX - 1;
    len += (size_t)sprintf(g_big + len, "\r\nx\r\n");
  }
  len += (size_t)sprintf(g_big + len, "0\r\n\r\n");
  decode_n(g_big, len, &o);
  CHECK_EQ(o.rc, CHUNKED_DONE);
  CHECK_EQ(o.n_payload, 3);
}

static void test_trailers(void)
{
  CHECK_STR(decode("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: \t v\x80\r\n\r\n"), "DONE @40 [hello]");
  CHECK_STR(decode("0\r\nX: a\r\n b\r\n\r\n"), "ERR @9 []");
  CHECK_STR(decode("0\r\nX: a\r\n\tb\r\n\r\n"), "ERR @9 []");
  CHECK_STR(decode("0\r\nX : a\r\n\r\n"), "ERR @4 []");
  CHECK_STR(decode("0\r\n: a\r\n\r\n"), "ERR @3 []");
  CHECK_STR(decode("0\r\nX\r\n\r\n"), "ERR @4 []");
  CHECK_STR(decode("0\r\nX: a\rb\r\n\r\n"), "ERR @8 []");
  CHECK_STR(decode("0\r\nX: a\nb\r\n\r\n"), "ERR @7 []");
  CHECK_STR(decode("0\r\nX: a\x01\r\n\r\n"), "ERR @7 []");
  CHECK_STR(decode("0\r\nX: a\r\n"), "MORE @9 []");
}

static void test_trailer_limit(void)
{
  outcome_t o;
  size_t len, head = 3;
  /* One trailer field of exactly POSTERN_TRAILER_MAX bytes, CRLF included. */
  memcpy(g_big, "0\r\nT: ", 6);
  memset(g_big + 6, 'v', POSTERN_TRAILER_MAX - 5);
  len = head + POSTERN_TRAILER_MAX;
  memcpy(g_big + len - 2, "\r\n\r\n", 4);
  len += 2;
  decode_n(g_big, len, &o);
  CHECK_EQ(o.rc, CHUNKED_DONE);
  CHECK_EQ(o.consumed, len);

  memset(g_big + 6, 'v', POSTERN_TRAILER_MAX - 4);
  len = head + POSTERN_TRAILER_MAX + 1;
  memcpy(g_big + len - 2, "\r\n\r\n", 4);
  len += 2;
  decode_n(g_big, len, &o);
  CHECK_EQ(o.rc, CHUNKED_ERR);
  CHECK_EQ(o.consumed, head + POSTERN_TRAILER_MAX);
}

static void test_pipelining(void)
{
  static const char two[] = "3\r\nabc\r\n0\r\n\r\nPUT /next HTTP/1.1\r\n";
  CHECK_STR(decode(two), "DONE @13 [abc]");
  CHECK_STR(decode("0\r\n\r\n0\r\n\r\n"), "DONE @5 []");
  CHECK_STR(decode("0\r\nA: b\r\n\r\n\x01garbage"), "DONE @11 []");
}

static void test_incomplete(void)
{
  CHECK_STR(decode(""), "MORE @0 []");
  CHECK_STR(decode("5"), "MORE @1 []");
  CHECK_STR(decode("5\r\nhel"), "MORE @6 [hel]");
  CHECK_STR(decode("5\r\nhello\r"), "MORE @9 [hello]");
  CHECK_STR(decode("5\r\nhello\r\n0\r\n\r"), "MORE @14 [hello]");
}

static void test_binary_payload(void)
{
  static const uint8_t in[] = {'4', '\r', '\n', 0, 0xff, '\r', '\n', '\r', '\n', '0', '\r', '\n', '\r', '\n'};
  outcome_t o;
  decode_n(in, sizeof in, &o);
  CHECK_EQ(o.rc, CHUNKED_DONE);
  CHECK_EQ(o.consumed, sizeof in);
  CHECK_EQ(o.n_payload, 4);
  CHECK(memcmp(g_payload, in + 3, 4) == 0);
}

static void test_large_chunk(void)
{
  outcome_t o;
  size_t i, n = 0x2345, len = (size_t)sprintf(g_big, "%zx\r\n", n);
  for (i = 0; i < n; i++)
    g_big[len + i] = (char)('a' + i % 26);
  len += n;
  len += (size_t)sprintf(g_big + len, "\r\n0\r\n\r\n");
  decode_n(g_big, len, &o);
  CHECK_EQ(o.rc, CHUNKED_DONE);
  CHECK_EQ(o.consumed, len);
  CHECK_EQ(o.n_payload, n);
  CHECK(memcmp(g_payload, g_big + 6, n) == 0);
}

int main(void)
{
  RUN(test_single_and_many);
  RUN(test_hex_forms);
  RUN(test_size_overflow);
  RUN(test_bad_size);
  RUN(test_data_crlf);
  RUN(test_extensions);
  RUN(test_ext_limit);
  RUN(test_trailers);
  RUN(test_trailer_limit);
  RUN(test_pipelining);
  RUN(test_incomplete);
  RUN(test_binary_payload);
  RUN(test_large_chunk);
  return UNIT_END();
}
