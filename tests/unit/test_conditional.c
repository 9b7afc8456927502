/* test_conditional.c: unit tests of the ETag, the If-Match / If-None-Match lists and their order, Range and If-Range parsing. */
#include <stdint.h>
#include <stdlib.h>

#include "conditional.h"
#include "unit.h"

#define TAG "\"00112233445566778899aabbccddeeff\""
#define OTHER "\"ffeeddccbbaa99887766554433221100\""

/* Each value is copied into a heap block of exactly its size, so an over-read trips ASan. */
static int match(const char *v, bool exists, const char *etag, bool weak)
{
  size_t n = strlen(v);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, v, n);
  int r = cond_match(copy, n, exists, etag, weak);
  free(copy);
  return r;
}

static enum cond_range range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
  size_t n = strlen(v);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, v, n);
  enum cond_range r = cond_range(copy, n, size, a, b);
  free(copy);
  return r;
}

static void test_etag(void)
{
  uint8_t sha[32];
  for (int i = 0; i < 32; i++) {
    sha[i] = (uint8_t)(i * 0x11);
  }
  char etag[COND_ETAG_LEN + 1];
  cond_etag(sha, etag);
  CHECK_STR(etag, TAG);
  CHECK_EQ(strlen(etag), COND_ETAG_LEN);
}

static void test_match_lists(void)
{
  CHECK_EQ(match(TAG, true, TAG, false), 1);
  CHECK_EQ(match(OTHER, true, TAG, false), 0);
  CHECK_EQ(match(OTHER ", " TAG, true, TAG, false), 1);
  CHECK_EQ(match(" \t" OTHER " ,\t" TAG "\t ", true, TAG, false), 1); /* odd whitespace */
  CHECK_EQ(match(", ," TAG ",,", true, TAG, false), 1);               /* empty elements (RFC 9110 5.6.1) */
  CHECK_EQ(match("\"\"", true, TAG, false), 0);                       /* the empty tag is a tag */
  CHECK_EQ(match("\"x\", \"y\", \"z\"", true, TAG, true), 0);
  /* Weak tags: the strong comparison (If-Match) never matches one, the weak one (If-None-Match) does. */
  CHECK_EQ(match("W/" TAG, true, TAG, false), 0);
  CHECK_EQ(match("W/" TAG, true, TAG, true), 1);
  CHECK_EQ(match(TAG, true, TAG, true), 1);
  /* Case matters in tags. */
  CHECK_EQ(match("\"00112233445566778899AABBCCDDEEFF\"", true, TAG, false), 0);
}

static void test_match_star(void)
{
  CHECK_EQ(match("*", true, TAG, false), 1);
  CHECK_EQ(match("  *  ", true, NULL, true), 1); /* any existing file, with an ETag or not */
  CHECK_EQ(match("*", false, NULL, true), 0);
  CHECK_EQ(match(TAG, true, NULL, false), 0); /* a file without an ETag never matches a listed tag */
  CHECK_EQ(match(TAG, false, NULL, true), 0);
}

static void test_match_malformed(void)
{
  static const char *bad[] = {
      "",      " ",      ",",        "abc", "\"unterminated", TAG " " OTHER, TAG "x",       "* , " TAG,    "W/",
      "W/abc", "w/" TAG, "\"a\"b\"", "**",  "\"\x7f\"",       "\"a\" ;q=1",  "\"tab\tin\"", "\"quote\"\"", "\"sp ace\"",
      "*,*",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (match(bad[i], true, TAG, false) != -1) {
      fprintf(stderr, "accepted: [%s]\n", bad[i]);
      CHECK(false);
    }
  }
  CHECK_EQ(match("\"\x80\xff\"", true, TAG, false), 0); /* obs-text is etagc */
}

/* Every prefix of a valid list: parsed within its bytes, never a match it does not hold. */
static void test_match_prefixes(void)
{
  static const char *lists[] = {OTHER ", W/" TAG ", \"x\"", " " TAG " ,, " OTHER " "};
  for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
    size_t n = strlen(lists[k]);
    for (size_t cut = 0; cut <= n; cut++) {
      char *copy = malloc(cut ? cut : 1);
      memcpy(copy, lists[k], cut);
      int r = cond_match(copy, cut, true, TAG, true);
      const char *at = strstr(lists[k], TAG);
      bool holds = at != NULL && (size_t)(at - lists[k]) + strlen(TAG) <= cut;
      CHECK(r >= -1 && r <= 1);
      if (r == 1) {
        CHECK(holds);
      }
      free(copy);
    }
  }
}

/* RFC 9110 13.2.2's order: If-Match before If-None-Match; 304 only for GET and HEAD. */
static void test_evaluate_order(void)
{
  cond_field_t star = {"*", 1}, tag = {TAG, strlen(TAG)}, other = {OTHER, strlen(OTHER)}, bad = {"x", 1};
  /* PUT with If-None-Match: * (create only). */
  CHECK_EQ(cond_evaluate(NULL, 0, &star, 1, true, TAG, false), COND_FAILED);
  CHECK_EQ(cond_evaluate(NULL, 0, &star, 1, false, NULL, false), COND_PASS);
  CHECK_EQ(cond_evaluate(NULL, 0, &star, 1, true, NULL, false), COND_FAILED); /* a file without an ETag exists */
  /* If-Match: replace only the version you know. */
  CHECK_EQ(cond_evaluate(&tag, 1, NULL, 0, true, TAG, false), COND_PASS);
  CHECK_EQ(cond_evaluate(&other, 1, NULL, 0, true, TAG, false), COND_FAILED);
  CHECK_EQ(cond_evaluate(&tag, 1, NULL, 0, false, NULL, false), COND_FAILED);
  CHECK_EQ(cond_evaluate(&star, 1, NULL, 0, false, NULL, false), COND_FAILED);
  CHECK_EQ(cond_evaluate(&tag, 1, NULL, 0, true, NULL, false), COND_FAILED);
  /* GET: If-None-Match matching gives 304, a failed If-Match 412 first. */
  CHECK_EQ(cond_evaluate(NULL, 0, &tag, 1, true, TAG, true), COND_NOT_MODIFIED);
  CHECK_EQ(cond_evaluate(NULL, 0, &other, 1, true, TAG, true), COND_PASS);
  CHECK_EQ(cond_evaluate(&other, 1, &tag, 1, true, TAG, true), COND_FAILED);
  CHECK_EQ(cond_evaluate(&tag, 1, &tag, 1, true, TAG, true), COND_NOT_MODIFIED);
  CHECK_EQ(cond_evaluate(&tag, 1, &other, 1, true, TAG, false), COND_PASS);
  /* A list split over lines: any line may hold the match. */
  cond_field_t lines[2] = {other, tag};
  CHECK_EQ(cond_evaluate(lines, 2, NULL, 0, true, TAG, false), COND_PASS);
  CHECK_EQ(cond_evaluate(NULL, 0, lines, 2, true, TAG, false), COND_FAILED);
  /* A malformed line anywhere: 400. */
  cond_field_t with_bad[2] = {tag, bad};
  CHECK_EQ(cond_evaluate(with_bad, 2, NULL, 0, true, TAG, false), COND_MALFORMED);
  CHECK_EQ(cond_evaluate(NULL, 0, &bad, 1, true, TAG, true), COND_MALFORMED);
  CHECK_EQ(cond_evaluate(NULL, 0, NULL, 0, true, TAG, false), COND_PASS);
}

static void test_range_forms(void)
{
  uint64_t a = 99, b = 99;
  CHECK_EQ(range("bytes=0-9", 100, &a, &b), COND_RANGE_PARTIAL);
  CHECK_EQ(a, 0);
  CHECK_EQ(b, 9);
  CHECK_EQ(range("bytes=5-", 100, &a, &b), COND_RANGE_PARTIAL);
  CHECK_EQ(a, 5);
  CHECK_EQ(b, 99);
  CHECK_EQ(range("bytes=-5", 100, &a, &b), COND_RANGE_PARTIAL);
  CHECK_EQ(a, 95);
  CHECK_EQ(b, 99);
  CHECK_EQ(range("bytes=-500", 100, &a, &b), COND_RANGE_PARTIAL); /* longer than the file: all of it */
  CHECK_EQ(a, 0);
  CHECK_EQ(b, 99);
  CHECK_EQ(range("bytes=90-1000", 100, &a, &b), COND_RANGE_PARTIAL); /* cut to the end */
  CHECK_EQ(a, 90);
  CHECK_EQ(b, 99);
  CHECK_EQ(range("bytes=99-99", 100, &a, &b), COND_RANGE_PARTIAL);
  CHECK_EQ(a, 99);
  CHECK_EQ(b, 99);
  CHECK_EQ(range("Bytes=3-4", 100, &a, &b), COND_RANGE_PARTIAL); /* the unit is case-insensitive */
  CHECK_EQ(range("bytes= 3-4 ", 100, &a, &b), COND_RANGE_PARTIAL);
  CHECK_EQ(range("bytes=0-99999999999999999999999", 100, &a, &b), COND_RANGE_PARTIAL); /* saturates */
  CHECK_EQ(b, 99);
}

static void test_range_unsatisfiable(void)
{
  uint64_t a, b;
  CHECK_EQ(range("bytes=100-", 100, &a, &b), COND_RANGE_UNSATISFIABLE);
  CHECK_EQ(range("bytes=100-200", 100, &a, &b), COND_RANGE_UNSATISFIABLE);
  CHECK_EQ(range("bytes=-0", 100, &a, &b), COND_RANGE_UNSATISFIABLE);
  CHECK_EQ(range("bytes=99999999999999999999999-", 100, &a, &b), COND_RANGE_UNSATISFIABLE);
}

static void test_range_ignored(void)
{
  uint64_t a, b;
  static const char *ignored[] = {
      "",           "bytes",         "bytes=",        "bytes=-",
      "bytes=a-b",  "bytes=5-3",     "bytes=1-2-3",   "items=0-9",
      "bytes =0-9", "bytes=0-9x",    "bytes=0 -9",    "bytes=--5",
      "bytes=0-9;", "bytes=0-9 1-2", "bytes=0-1,2-3", /* several ranges: the whole file */ "bytes=0-1,,200-300",
      "bytes=,",
  };
  for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
    if (range(ignored[i], 100, &a, &b) != COND_RANGE_WHOLE) {
      fprintf(stderr, "not ignored: [%s]\n", ignored[i]);
      CHECK(false);
    }
  }
  CHECK_EQ(range("bytes=0-9", 0, &a, &b), COND_RANGE_WHOLE); /* an empty file has nothing to cut */
  CHECK_EQ(range("bytes=, 0-9 ,", 100, &a, &b), COND_RANGE_PARTIAL);
}

/* Every prefix of a Range value stays within its bytes and answers one of the three results. */
static void test_range_prefixes(void)
{
  static const char *values[] = {"bytes=12345-67890", "bytes=-4096", "bytes=0-1, 5-9"};
  for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
    size_t n = strlen(values[k]);
    for (size_t cut = 0; cut <= n; cut++) {
      char *copy = malloc(cut ? cut : 1);
      memcpy(copy, values[k], cut);
      uint64_t a = 0, b = 0;
      enum cond_range r = cond_range(copy, cut, 100000, &a, &b);
      CHECK(r == COND_RANGE_WHOLE || r == COND_RANGE_PARTIAL || r == COND_RANGE_UNSATISFIABLE);
      if (r == COND_RANGE_PARTIAL) {
        CHECK(a <= b && b < 100000);
      }
      free(copy);
    }
  }
}

static void test_if_range(void)
{
  CHECK(cond_if_range(TAG, strlen(TAG), TAG));
  CHECK(cond_if_range(" " TAG " ", strlen(TAG) + 2, TAG));
  CHECK(!cond_if_range(OTHER, strlen(OTHER), TAG));
  CHECK(!cond_if_range("W/" TAG, strlen(TAG) + 2, TAG)); /* If-Range compares strongly */
  static const char date[] = "Sun, 22 Nov 2026 04:35:00 GMT";
  CHECK(!cond_if_range(date, sizeof date - 1, TAG)); /* no dates kept: the whole file */
  CHECK(!cond_if_range(TAG, strlen(TAG), NULL));
}

int main(void)
{
  RUN(test_etag);
  RUN(test_match_lists);
  RUN(test_match_star);
  RUN(test_match_malformed);
  RUN(test_match_prefixes);
  RUN(test_evaluate_order);
  RUN(test_range_forms);
  RUN(test_range_unsatisfiable);
  RUN(test_range_ignored);
  RUN(test_range_prefixes);
  RUN(test_if_range);
  return UNIT_END();
}
