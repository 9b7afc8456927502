/* test_multipart.c: unit tests of the multipart/form-data decoder, fed whole, split at every byte and bytewise. */
#include <stdint.h>
#include <stdlib.h>

#include "multipart.h"
#include "unit.h"

#define CAP 8192

/* What decoding one complete body gave. */
typedef struct outcome {
  bool ok;           /* multipart_finish() */
  const char *error; /* m.error when not */
  int files;         /* MULTIPART_FILE events */
  char name[POSTERN_NAME_MAX + 2];
  size_t name_len;
  size_t n_file; /* file bytes delivered */
  uint8_t file[CAP];
} outcome_t;

static const char *g_ctype = "multipart/form-data; boundary=B0undary";
static size_t g_file_len = SIZE_MAX; /* the file's length, when the check of what is held back applies */

/*
 * Decodes body[0..len) as pieces [0,cut) and [cut,len) (cut == SIZE_MAX:
 * one byte at a time), each piece in a heap block of exactly its size so
 * that over-reads trip ASan. Checks each answer's contract on the way, and
 * that the file bytes delivered once a piece is in lag its file bytes by
 * at most the delimiter (file_at: where the file's content starts).
 */
static void feed(const char *body, size_t len, size_t cut, size_t file_at, outcome_t *o)
{
  multipart_t m;
  CHECK(multipart_init(&m, g_ctype, strlen(g_ctype)));
  memset(o, 0, sizeof *o);
  size_t start = 0;
  bool err = false;
  while (start < len && !err) {
    size_t end = cut == SIZE_MAX ? start + 1 : start < cut ? cut : len;
    if (end > len)
      end = len;
    size_t n = end - start, off = 0;
    uint8_t *frag = malloc(n);
    memcpy(frag, body + start, n);
    while (off < n) {
      const uint8_t *out = (const uint8_t *)"junk";
      size_t used = SIZE_MAX, out_len = 99;
      multipart_mark_t mark;
      multipart_mark(&m, &mark);
      int rc = multipart_decode(&m, frag + off, n - off, &used, &out, &out_len);
      CHECK(used <= n - off);
      if (rc == MULTIPART_DATA) {
        /* A pending write decodes the same bytes again: the same answer. */
        const uint8_t *out2;
        size_t used2, len2;
        multipart_rewind(&m, &mark);
        CHECK_EQ(multipart_decode(&m, frag + off, n - off, &used2, &out2, &len2), MULTIPART_DATA);
        CHECK(out2 == out && len2 == out_len && used2 == used);
      }
      if (rc == MULTIPART_DATA) {
        CHECK(out_len > 0);
        bool in_piece = out >= frag + off && out + out_len <= frag + off + used;
        bool held = out >= (const uint8_t *)m.delim && out + out_len <= (const uint8_t *)m.delim + m.dlen;
        CHECK(in_piece || held);
        CHECK(o->files == 1);
        if (o->n_file + out_len <= CAP)
          memcpy(o->file + o->n_file, out, out_len);
        o->n_file += out_len;
      } else {
        CHECK(out == NULL && out_len == 0);
      }
      if (rc == MULTIPART_FILE) {
        o->files++;
        o->name_len = m.name_len;
        if (m.name_len <= POSTERN_NAME_MAX) {
          CHECK(m.name[m.name_len] == '\0');
          memcpy(o->name, m.name, (size_t)m.name_len + 1);
        }
      }
      if (rc == MULTIPART_ERR) {
        CHECK(m.error != NULL);
        /* Sticky, consuming nothing more. */
        CHECK_EQ(multipart_decode(&m, (const uint8_t *)"x", 1, &used, &out, &out_len), MULTIPART_ERR);
        CHECK_EQ(used, 0);
        err = true;
        break;
      }
      if (rc == MULTIPART_MORE)
        CHECK_EQ(used, n - off);
      if (rc != MULTIPART_DATA && rc != MULTIPART_FILE)
        break;
      off += used;
    }
    free(frag);
    if (!err && o->files == 1 && g_file_len != SIZE_MAX && end > file_at) {
      size_t in_file = end - file_at < g_file_len ? end - file_at : g_file_len;
      CHECK(o->n_file + m.dlen >= in_file); /* at most the delimiter held back */
      CHECK(o->n_file <= in_file);
    }
    start = end;
  }
  o->ok = multipart_finish(&m);
  o->error = m.error;
  if (o->ok)
    CHECK(o->error == NULL);
}

/* Decodes body whole, split at every byte and bytewise: every way must agree with the whole. */
static void all_ways(const char *body, size_t len, size_t file_at, outcome_t *whole)
{
  static outcome_t o;
  feed(body, len, len, file_at, whole);
  for (size_t cut = 0; cut <= len + 1; cut++) {
    feed(body, len, cut == len + 1 ? SIZE_MAX : cut, file_at, &o);
    CHECK_EQ(o.ok, whole->ok);
    CHECK_EQ(o.files, whole->files);
    CHECK_EQ(o.n_file, whole->n_file);
    CHECK(memcmp(o.file, whole->file, o.n_file < CAP ? o.n_file : CAP) == 0);
    CHECK_EQ(o.name_len, whole->name_len);
    CHECK_STR(o.name, whole->name);
    CHECK((o.error == NULL) == (whole->error == NULL));
    if (o.error != NULL && whole->error != NULL)
      CHECK_STR(o.error, whole->error);
    if (unit_failed_checks > 50)
      return;
  }
}

static char g_body[CAP * 2];
static size_t g_len;

static void body(const char *s)
{
  g_len = strlen(s);
  memcpy(g_body, s, g_len);
}
static void body_n(const char *s, size_t n)
{
  memcpy(g_body, s, n);
  g_len = n;
}

#define HEAD(name) "--B0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" name "\"\r\n"
#define OCTETS "Content-Type: application/octet-stream\r\n\r\n"

/* Expects a stored file of the given bytes and name. */
static void expect_file(const char *name, const char *data, size_t n)
{
  static outcome_t o;
  const char *file_at = strstr(g_body, "filename");
  file_at = file_at != NULL ? strstr(file_at, "\r\n\r\n") : NULL;
  g_file_len = n;
  all_ways(g_body, g_len, file_at != NULL ? (size_t)(file_at - g_body) + 4 : 0, &o);
  g_file_len = SIZE_MAX;
  CHECK(o.ok);
  if (!o.ok)
    fprintf(stderr, "  error: %s\n", o.error);
  CHECK_EQ(o.files, 1);
  CHECK_STR(o.name, name);
  CHECK_EQ(o.n_file, n);
  CHECK(memcmp(o.file, data, n) == 0);
}

/* Expects a refusal whose message contains `why`. */
static void expect_error(const char *why)
{
  static outcome_t o;
  all_ways(g_body, g_len, g_len, &o);
  CHECK(!o.ok);
  CHECK(o.error != NULL && strstr(o.error, why) != NULL);
  if (o.error != NULL && strstr(o.error, why) == NULL)
    fprintf(stderr, "  error: %s (wanted %s)\n", o.error, why);
}

static void test_curl_form(void)
{
  body(HEAD("fw.bin") OCTETS "hello, world\r\n--B0undary--\r\n");
  expect_file("fw.bin", "hello, world", 12);
  /* No CRLF after the close delimiter, and no Content-Type. */
  body(HEAD("fw.bin") "\r\nhello\r\n--B0undary--");
  expect_file("fw.bin", "hello", 5);
}

static void test_empty_file(void)
{
  body(HEAD("empty.bin") OCTETS "\r\n--B0undary--\r\n");
  expect_file("empty.bin", "", 0);
}

static void test_fields_around(void)
{
  body("--B0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nfirst field\r\n" HEAD("a.bin") OCTETS
       "DATA\r\n--B0undary\r\ncontent-disposition: FORM-DATA; name=after\r\n\r\nlast\r\n--B0undary--\r\n");
  expect_file("a.bin", "DATA", 4);
}

static void test_preamble_epilogue(void)
{
  body("This is the preamble. --B0undary is not a delimiter here\r\nnor\r\n--B0undar\r\n" HEAD("p.bin") OCTETS
       "xyz\r\n--B0undary-- \r\nthe epilogue\r\n--B0undary\r\nignored");
  expect_file("p.bin", "xyz", 3);
  /* The body starts with CRLF then the first delimiter. */
  body("\r\n" HEAD("p.bin") OCTETS "xyz\r\n--B0undary--");
  expect_file("p.bin", "xyz", 3);
  /* Transport padding after a delimiter. */
  body("--B0undary \t\r\nContent-Disposition: form-data; name=f; filename=p.bin\r\n\r\nxyz\r\n--B0undary--");
  expect_file("p.bin", "xyz", 3);
}

static void test_delimiter_lookalikes(void)
{
  static const char data[] = "a\r\n--B0undar\r\n--B0undarX\r\r\n\r\n-\r\n--\r\n--B\r\r\n--B0undaryy-not\r";
  /* "\r\n--B0undaryy" is a whole delimiter followed by junk: refused (below). Here without it. */
  static const char ok[] = "a\r\n--B0undar\r\n--B0undarX\r\r\n\r\n-\r\n--\r\n--B\r\r\r\n";
  char buf[512];
  snprintf(buf, sizeof buf, HEAD("l.bin") OCTETS "%s\r\n--B0undary--\r\n", ok);
  body(buf);
  expect_file("l.bin", ok, sizeof ok - 1);
  /* The content ends in CR, LF, "\r\n-" and "\r\n--B0undar". */
  static const char *const ends[] = {"x\r", "x\n", "\r\n", "x\r\n-", "x\r\n--B0undar", "\r\n--B0undar\r"};
  for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
    snprintf(buf, sizeof buf, HEAD("e.bin") OCTETS "%s\r\n--B0undary--\r\n", ends[i]);
    body(buf);
    expect_file("e.bin", ends[i], strlen(ends[i]));
  }
  snprintf(buf, sizeof buf, HEAD("l.bin") OCTETS "%s\r\n--B0undary--\r\n", data);
  body(buf);
  expect_error("delimiter");
}

static void test_binary(void)
{
  static char buf[3000];
  static char data[1500];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (char)(i * 7 + (i >> 3));
  data[0] = '\0';
  memcpy(data + 100, "\r\n--B0undar", 11);
  size_t h = strlen(HEAD("bin") OCTETS);
  memcpy(buf, HEAD("bin") OCTETS, h);
  memcpy(buf + h, data, sizeof data);
  memcpy(buf + h + sizeof data, "\r\n--B0undary--\r\n", 16);
  body_n(buf, h + sizeof data + 16);
  expect_file("bin", data, sizeof data);
}

static void test_names(void)
{
  body("--B0undary\r\nContent-Disposition: form-data; name=\"f\"; "
       "filename=\"a\\\"b\\\\c.bin\"\r\n\r\nx\r\n--B0undary--");
  expect_file("a\"b\\c.bin", "x", 1);
  body("--B0undary\r\nContent-Disposition: form-data;name=f;filename=tok.bin\r\n\r\nx\r\n--B0undary--");
  expect_file("tok.bin", "x", 1);
  /* filename* (RFC 5987) wins over filename, in either order. */
  body("--B0undary\r\nContent-Disposition: form-data; name=f; filename*=UTF-8''%C3%A9t%C3%A9.bin; "
       "filename=\"ete.bin\"\r\n\r\nx\r\n--B0undary--");
  expect_file("\xC3\xA9t\xC3\xA9.bin", "x", 1);
  body("--B0undary\r\nContent-Disposition: form-data; name=f; filename=\"ete.bin\"; "
       "filename*=utf-8'en'%c3%a9.bin\r\n\r\nx\r\n--B0undary--");
  expect_file("\xC3\xA9.bin", "x", 1);
  /* Raw UTF-8 in a quoted filename, as browsers send it. */
  body(HEAD("\xC3\xA9.bin") "\r\nx\r\n--B0undary--");
  expect_file("\xC3\xA9.bin", "x", 1);
  /* An empty filename (a form sent with no file picked) and a name too long: the connection refuses them. */
  static outcome_t o;
  body(HEAD("") "\r\nx\r\n--B0undary--");
  all_ways(g_body, g_len, g_len, &o);
  CHECK(o.ok && o.files == 1 && o.name_len == 0);
  body(HEAD("12345678901234567890123456789012345678901234567890123456789012345") "\r\nx\r\n--B0undary--");
  all_ways(g_body, g_len, g_len, &o);
  CHECK(o.ok && o.files == 1 && o.name_len == POSTERN_NAME_MAX + 1);
  body(HEAD("1234567890123456789012345678901234567890123456789012345678901234") "\r\nx\r\n--B0undary--");
  all_ways(g_body, g_len, g_len, &o);
  CHECK(o.ok && o.files == 1 && o.name_len == POSTERN_NAME_MAX);
}

static void test_name_errors(void)
{
  body("--B0undary\r\nContent-Disposition: form-data; name=f; filename*=ISO-8859-1''%E9.bin\r\n\r\nx\r\n--B0undary--");
  expect_error("UTF-8");
  body("--B0undary\r\nContent-Disposition: form-data; name=f; filename*=UTF-8''%E\r\n\r\nx\r\n--B0undary--");
  expect_error("filename*");
  body("--B0undary\r\nContent-Disposition: form-data; name=f; filename*=\"UTF-8''a\"\r\n\r\nx\r\n--B0undary--");
  expect_error("filename*");
  body("--B0undary\r\nContent-Disposition: form-data; name=f; filename=\"open\r\n\r\nx\r\n--B0undary--");
  expect_error("Content-Disposition");
  body("--B0undary\r\nContent-Disposition: attachment; filename=a\r\n\r\nx\r\n--B0undary--");
  expect_error("not form-data");
  body("--B0undary\r\nContent-Type: text/plain\r\n\r\nx\r\n--B0undary--");
  expect_error("without Content-Disposition");
  body("--B0undary\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\nx\r\n"
       "--B0undary--");
  expect_error("two Content-Disposition");
  body("--B0undary\r\nno colon here\r\n\r\nx\r\n--B0undary--");
  expect_error("malformed header line");
  body("--B0undary\r\nContent-Disposition: form-data; name=a\r\n filename=b\r\n\r\nx\r\n--B0undary--");
  expect_error("obs-fold");
  body("--B0undary\r\nContent-Disposition: form-data; name=a\nX: y\r\n\r\nx\r\n--B0undary--");
  expect_error("control byte");
  body("--B0undary\r\nContent-Disposition: form-data; name=a\rX: y\r\n\r\nx\r\n--B0undary--");
  expect_error("CR without LF");
}

static void test_form_errors(void)
{
  body(HEAD("a") "\r\nx\r\n" HEAD("b") "\r\ny\r\n--B0undary--");
  expect_error("one file part");
  body("--B0undary\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B0undary--");
  expect_error("no file part");
  body("--B0undary--\r\n");
  expect_error("no file part");
  body("");
  expect_error("before its close delimiter");
  body("no delimiter at all");
  expect_error("before its close delimiter");
  body(HEAD("a") "\r\nx\r\n--B0undary-x");
  expect_error("delimiter");
  body(HEAD("a") "\r\nx\r\n--B0undaryX\r\n");
  expect_error("delimiter");
  body(HEAD("a") "\r\nx\r\n--B0undary \r");
  expect_error("before its close delimiter");
  body(HEAD("a") "\r\nx\r\n--B0undary \rX");
  expect_error("delimiter");
}

/* Every proper prefix of a good form fails at its end, and what it delivered is a prefix of the file. */
static void test_cut_short(void)
{
  static const char full[] = HEAD("c.bin") OCTETS "0123456789\r\n--B0undary--";
  static outcome_t o;
  for (size_t n = 0; n < sizeof full - 1; n++) {
    body_n(full, n);
    feed(g_body, g_len, SIZE_MAX, g_len, &o);
    CHECK(!o.ok);
    CHECK(o.error != NULL && strstr(o.error, "close delimiter") != NULL);
    CHECK(o.n_file <= 10 && memcmp(o.file, "0123456789", o.n_file) == 0);
  }
}

static void test_field_bound(void)
{
  static char buf[POSTERN_FORM_FIELD_MAX + 512];
  static const char pre[] = "--B0undary\r\nContent-Disposition: form-data; name=big\r\n\r\n";
  static const char post[] = "\r\n" HEAD("f.bin") "\r\nx\r\n--B0undary--\r\n";
  /* The bytes counted: all but the file's content and the delimiters' own bytes. */
  size_t fixed = strlen(pre) + strlen(post) - strlen("--B0undary") - strlen("\r\n--B0undary") * 2 - 1;
  size_t n = POSTERN_FORM_FIELD_MAX - fixed;
  memcpy(buf, pre, strlen(pre));
  memset(buf + strlen(pre), 'v', n);
  memcpy(buf + strlen(pre) + n, post, strlen(post));
  static outcome_t o;
  feed(buf, strlen(pre) + n + strlen(post), SIZE_MAX, 0, &o);
  CHECK(o.ok);
  if (!o.ok)
    fprintf(stderr, "  error: %s\n", o.error);
  memset(buf + strlen(pre), 'v', n + 1);
  memcpy(buf + strlen(pre) + n + 1, post, strlen(post));
  feed(buf, strlen(pre) + n + 1 + strlen(post), SIZE_MAX, 0, &o);
  CHECK(!o.ok && strstr(o.error, "POSTERN_FORM_FIELD_MAX") != NULL);
  /* The epilogue counts too. */
  memcpy(buf, HEAD("f.bin") "\r\nx\r\n--B0undary--", strlen(HEAD("f.bin") "\r\nx\r\n--B0undary--"));
  size_t h = strlen(HEAD("f.bin") "\r\nx\r\n--B0undary--");
  memset(buf + h, 'e', POSTERN_FORM_FIELD_MAX);
  feed(buf, h + POSTERN_FORM_FIELD_MAX, 700, 0, &o);
  CHECK(!o.ok && o.error != NULL && strstr(o.error, "POSTERN_FORM_FIELD_MAX") != NULL);

  /* A header line longer than POSTERN_FORM_LINE_MAX. */
  memcpy(buf, "--B0undary\r\nX-Long: ", 20);
  memset(buf + 20, 'l', POSTERN_FORM_LINE_MAX);
  memcpy(buf + 20 + POSTERN_FORM_LINE_MAX, "\r\n\r\n", 4);
  feed(buf, 24 + POSTERN_FORM_LINE_MAX, SIZE_MAX, 0, &o);
  CHECK(!o.ok && strstr(o.error, "POSTERN_FORM_LINE_MAX") != NULL);
}

static void test_content_type(void)
{
  multipart_t m;
#define INIT(s) multipart_init(&m, s, strlen(s))
  CHECK(INIT("multipart/form-data; boundary=abc"));
  CHECK_EQ(m.dlen, 7);
  CHECK(memcmp(m.delim, "\r\n--abc", 7) == 0);
  CHECK(INIT("Multipart/Form-Data;BOUNDARY=\"a b'()+_,-./:=?\""));
  CHECK(memcmp(m.delim + 4, "a b'()+_,-./:=?", 15) == 0);
  CHECK(INIT("multipart/form-data; charset=utf-8; boundary=\"q\\\"\"") == false); /* '"' is no bchar */
  CHECK(INIT("multipart/form-data ; boundary=------------------------d74496d66958873e; x=y"));
  CHECK(INIT("multipart/form-data; boundary=1234567890123456789012345678901234567890123456789012345678901234567890"));
  CHECK(!INIT("multipart/form-data; boundary=12345678901234567890123456789012345678901234567890123456789012345678901"));
  CHECK(m.error != NULL && strstr(m.error, "boundary") != NULL);
  CHECK(!INIT("multipart/form-data"));
  CHECK(!INIT("multipart/form-data; boundary="));
  CHECK(!INIT("multipart/form-data; boundary=\"\""));
  CHECK(!INIT("multipart/form-data; boundary=\"ends in space \""));
  CHECK(!INIT("multipart/form-data; boundary=a; boundary=b"));
  CHECK(!INIT("multipart/form-data; boundary=\"open"));
  CHECK(!INIT("multipart/form-data; boundary=a b"));
  CHECK(!INIT("multipart/mixed; boundary=abc"));
  CHECK(!INIT("text/plain"));
  CHECK(multipart_is_form("multipart/form-data", 19));
  CHECK(multipart_is_form(" MULTIPART/FORM-DATA;boundary=x", 31));
  CHECK(!multipart_is_form("multipart/form-database", 23));
  CHECK(!multipart_is_form("multipart/form", 14));
  CHECK(!multipart_is_form("application/octet-stream", 24));
  /* A decoder whose init failed refuses everything. */
  CHECK(!INIT("text/plain"));
  size_t used;
  const uint8_t *out;
  size_t out_len;
  CHECK_EQ(multipart_decode(&m, (const uint8_t *)"--x", 3, &used, &out, &out_len), MULTIPART_ERR);
  CHECK(!multipart_finish(&m));
#undef INIT
}

static void test_other_boundary(void)
{
  /* curl's boundary shape: dashes inside the boundary itself. */
  g_ctype = "multipart/form-data; boundary=------------------------d74496d66958873e";
  body("--------------------------d74496d66958873e\r\nContent-Disposition: form-data; name=\"file\"; "
       "filename=\"fw.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n-----\r\n-------------------------"
       "d74496d66958873\r\n--------------------------d74496d66958873e--\r\n");
  static const char tricky[] = "-----\r\n-------------------------d74496d66958873";
  expect_file("fw.bin", tricky, sizeof tricky - 1);
  /* A one-byte boundary. */
  g_ctype = "multipart/form-data; boundary=-";
  body("---\r\nContent-Disposition: form-data; name=f; filename=z\r\n\r\n\r\n-\r\n--x\r\n-----\r\n");
  expect_file("z", "\r\n-\r\n--x", 8);
  g_ctype = "multipart/form-data; boundary=B0undary";
}

int main(void)
{
  RUN(test_curl_form);
  RUN(test_empty_file);
  RUN(test_fields_around);
  RUN(test_preamble_epilogue);
  RUN(test_delimiter_lookalikes);
  RUN(test_binary);
  RUN(test_names);
  RUN(test_name_errors);
  RUN(test_form_errors);
  RUN(test_cut_short);
  RUN(test_field_bound);
  RUN(test_content_type);
  RUN(test_other_boundary);
  return UNIT_END();
}
