/* test_text.c: unit tests of the UTF-8 check and the stored-name rule, against an independent decoder; lower case. */
#include <stdint.h>
#include <stdlib.h>

#include "postern_opts.h"
#include "text.h"
#include "unit.h"

/* Each case is copied into a heap block of exactly its size, so an over-read trips ASan. */
static size_t utf8_len(const char *s, size_t n)
{
  unsigned char *copy = malloc(n);
  memcpy(copy, s, n);
  size_t r = text_utf8_len(copy, n);
  free(copy);
  return r;
}

static bool name_ok(const char *s)
{
  size_t n = strlen(s);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, s, n);
  bool r = text_name_ok(copy, n);
  free(copy);
  return r;
}

static void test_utf8_sequences(void)
{
  CHECK_EQ(utf8_len("a", 1), 1);
  CHECK_EQ(utf8_len("\xc3\xa9", 2), 2);         /* U+00E9 */
  CHECK_EQ(utf8_len("\xe2\x82\xac", 3), 3);     /* U+20AC */
  CHECK_EQ(utf8_len("\xf0\x9f\x98\x80", 4), 4); /* U+1F600 */
  CHECK_EQ(utf8_len("\xef\xbf\xbd", 3), 3);     /* U+FFFD */
  CHECK_EQ(utf8_len("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
  CHECK_EQ(utf8_len("\xff", 1), 0);
  CHECK_EQ(utf8_len("\xfe", 1), 0);
  CHECK_EQ(utf8_len("\x80", 1), 0);     /* a stray continuation byte */
  CHECK_EQ(utf8_len("\xc0\xaf", 2), 0); /* overlong '/' */
  CHECK_EQ(utf8_len("\xc1\xbf", 2), 0);
  CHECK_EQ(utf8_len("\xe0\x80\xaf", 3), 0);     /* overlong */
  CHECK_EQ(utf8_len("\xf0\x80\x80\xaf", 4), 0); /* overlong */
  CHECK_EQ(utf8_len("\xed\xa0\x80", 3), 0);     /* U+D800, a surrogate */
  CHECK_EQ(utf8_len("\xf4\x90\x80\x80", 4), 0); /* U+110000 */
  CHECK_EQ(utf8_len("\xc3", 1), 0);             /* truncated */
  CHECK_EQ(utf8_len("\xe2\x82", 2), 0);
  CHECK_EQ(utf8_len("\xe2\x82x", 3), 0); /* a non-continuation byte inside */
}

/* Every 1- and 2-byte input against a reference decoder: the lead byte's
 * class and the second byte's range decide the answer. */
static void test_utf8_exhaustive_two_bytes(void)
{
  for (unsigned a = 0; a < 256; a++) {
    for (unsigned b = 0; b < 256; b++) {
      char s[2] = {(char)a, (char)b};
      size_t want;
      if (a < 0x80) {
        want = 1;
      } else if (a >= 0xc2 && a <= 0xdf) {
        want = b >= 0x80 && b <= 0xbf ? 2 : 0;
      } else {
        want = 0; /* longer sequences are truncated here, or invalid leads */
      }
      if (utf8_len(s, 2) != want) {
        CHECK_EQ(utf8_len(s, 2), want);
        return;
      }
    }
  }
}

static void test_names(void)
{
  char longest[POSTERN_NAME_MAX + 2];
  memset(longest, 'a', sizeof longest);
  longest[POSTERN_NAME_MAX] = '\0';
  CHECK(name_ok(longest));
  longest[POSTERN_NAME_MAX] = 'a';
  longest[POSTERN_NAME_MAX + 1] = '\0';
  CHECK(!name_ok(longest));

  CHECK(name_ok("fw.bin"));
  CHECK(name_ok("caf\xc3\xa9 log (1).txt"));
  CHECK(name_ok("a.b.c"));
  CHECK(name_ok("x."));
  CHECK(!name_ok(""));
  CHECK(!name_ok(".hidden"));
  CHECK(!name_ok("a/b"));
  CHECK(!name_ok("a\\b"));
  CHECK(!name_ok("a..b"));
  CHECK(!name_ok(".."));
  CHECK(!name_ok("a\nb"));
  CHECK(!name_ok("a\x7f"));
  CHECK(!name_ok("edge-\xff\xfe.bin"));
  CHECK(!name_ok("trunc-\xc3"));
  CHECK(!name_ok("\xed\xa0\x80"));
}

static void test_lower(void)
{
  char addr[] = "FEC0::5054:FF:FE12:3456";
  CHECK(text_lower(addr) == addr);
  CHECK_STR(addr, "fec0::5054:ff:fe12:3456");
  char mixed[] = "10.0.2.2 [Az@[`{]";
  text_lower(mixed);
  CHECK_STR(mixed, "10.0.2.2 [az@[`{]");
  char empty[] = "";
  CHECK(text_lower(empty)[0] == '\0');
}

int main(void)
{
  RUN(test_utf8_sequences);
  RUN(test_utf8_exhaustive_two_bytes);
  RUN(test_names);
  RUN(test_lower);
  return UNIT_END();
}
