/* multipart.c: incremental, in-place decoder of a multipart/form-data body (RFC 7578, RFC 2046 5.1) with one file part. */
#include "multipart.h"

#include <string.h>

#include "text.h"

#if POSTERN_NAME_MAX > 254
#error "POSTERN_NAME_MAX must fit multipart_t's 8-bit name length"
#endif

/* Decoder states. */
enum {
  M_PREAMBLE, /* before the first delimiter: dropped */
  M_AFTER,    /* right after a delimiter: "--", transport padding or CRLF */
  M_DASH,     /* the second '-' of a close delimiter expected */
  M_PAD,      /* transport padding after a delimiter, then CRLF */
  M_LF,       /* the LF ending a delimiter line expected */
  M_HLINE,    /* a part header line, or the empty line ending the part's head */
  M_HLF,      /* the LF ending a part header line expected */
  M_BODY,     /* a part's content, up to the next delimiter */
  M_EPILOGUE, /* after the close delimiter: dropped */
  M_ERR       /* refused: sticky */
};

/* Flags. */
enum {
  F_DISP = 1,      /* this part has its Content-Disposition: form-data */
  F_FILENAME = 2,  /* ... with a filename */
  F_STAR = 4,      /* ... given by filename*, which wins over filename */
  F_IN_FILE = 8,   /* this part's content is the file */
  F_FILE_SEEN = 16 /* the form's file part came */
};

static char lower(char ch)
{
  return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
}

/* s[0..n) equals the lower-case literal lit, ignoring ASCII case. */
static bool ieq(const char *s, size_t n, const char *lit)
{
  if (n != strlen(lit))
    return false;
  for (size_t i = 0; i < n; i++) {
    if (lower(s[i]) != lit[i])
      return false;
  }
  return true;
}

static bool is_ows(char ch)
{
  return ch == ' ' || ch == '\t';
}

/* A byte of RFC 2046's bchars. */
static bool is_bchar(char ch)
{
  if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
    return true;
  return ch != '\0' && strchr("'()+_,-./:=? ", ch) != NULL;
}

/* A span of a header value. */
typedef struct span {
  const char *p;
  size_t n;
} span_t;

/* Skips OWS from *at. */
static void skip_ows(const char *s, size_t n, size_t *at)
{
  while (*at < n && is_ows(s[*at]))
    (*at)++;
}

/*
 * Reads the next parameter, `OWS ";" OWS name OWS "=" OWS value`, from s at
 * *at; a quoted value keeps its quotes and escapes (see unquote). Returns 1
 * with one, 0 at the end of s, -1 when malformed.
 */
static int param_next(const char *s, size_t n, size_t *at, span_t *name, span_t *value)
{
  size_t i = *at;
  skip_ows(s, n, &i);
  if (i == n)
    return 0;
  if (s[i++] != ';')
    return -1;
  skip_ows(s, n, &i);
  name->p = s + i;
  while (i < n && text_tchar((unsigned char)s[i]))
    i++;
  name->n = (size_t)(s + i - name->p);
  skip_ows(s, n, &i);
  if (name->n == 0 || i == n || s[i++] != '=')
    return -1;
  skip_ows(s, n, &i);
  value->p = s + i;
  if (i < n && s[i] == '"') {
    for (i++;; i++) {
      if (i >= n)
        return -1; /* unterminated */
      if (s[i] == '\\')
        i++;
      else if (s[i] == '"')
        break;
    }
    i++;
  } else {
    while (i < n && text_tchar((unsigned char)s[i]))
      i++;
  }
  value->n = (size_t)(s + i - value->p);
  if (value->n == 0)
    return -1;
  *at = i;
  return 1;
}

/* The k-th byte of a parameter value and the count of them, a quoted-string's quoted-pairs undone. */
static size_t unquote(span_t v, char *out, size_t cap)
{
  size_t n = 0;
  if (v.p[0] != '"') {
    for (size_t i = 0; i < v.n; i++, n++) {
      if (n < cap)
        out[n] = v.p[i];
    }
    return n;
  }
  for (size_t i = 1; i + 1 < v.n; i++, n++) {
    if (v.p[i] == '\\')
      i++;
    if (n < cap)
      out[n] = v.p[i];
  }
  return n;
}

/** True when a Content-Type field value names multipart/form-data. */
bool multipart_is_form(const char *ctype, size_t len)
{
  static const char type[] = "multipart/form-data";
  size_t i = 0, k = sizeof type - 1;
  skip_ows(ctype, len, &i);
  if (len - i < k || !ieq(ctype + i, k, type))
    return false;
  i += k;
  return i == len || ctype[i] == ';' || is_ows(ctype[i]);
}

/** Prepares m for a body with the Content-Type value ctype (its boundary). */
bool multipart_init(multipart_t *m, const char *ctype, size_t len)
{
  *m = (multipart_t){0};
  m->state = M_ERR;
  m->error = "Content-Type multipart/form-data needs a boundary of 1 to 70 characters (RFC 2046)";
  if (!multipart_is_form(ctype, len))
    return false;
  size_t at = 0;
  skip_ows(ctype, len, &at);
  at += sizeof "multipart/form-data" - 1;
  span_t name, value;
  size_t blen = 0;
  int rc;
  while ((rc = param_next(ctype, len, &at, &name, &value)) == 1) {
    if (ieq(name.p, name.n, "boundary")) {
      if (blen != 0)
        return false; /* twice */
      blen = unquote(value, m->delim + 4, MULTIPART_BOUNDARY_MAX);
      if (blen == 0 || blen > MULTIPART_BOUNDARY_MAX)
        return false;
    }
  }
  if (rc < 0 || blen == 0 || m->delim[4 + blen - 1] == ' ')
    return false;
  for (size_t i = 0; i < blen; i++) {
    if (!is_bchar(m->delim[4 + i]))
      return false;
  }
  memcpy(m->delim, "\r\n--", 4);
  m->dlen = (uint8_t)(4 + blen);
  m->state = M_PREAMBLE;
  m->match = 2; /* the first delimiter may open the body: its CRLF counts as seen */
  m->error = NULL;
  return true;
}

static bool fail(multipart_t *m, const char *why)
{
  m->state = M_ERR;
  m->error = why;
  return false;
}

/* Counts n bytes that are not the file's; false past the bound. */
static bool extra(multipart_t *m, size_t n)
{
  if (n > POSTERN_FORM_FIELD_MAX - m->extra)
    return fail(m, "the form's other fields, part heads, preamble and epilogue exceed POSTERN_FORM_FIELD_MAX");
  m->extra += (uint32_t)n;
  return true;
}

/* Appends one byte to the file name; past POSTERN_NAME_MAX it is marked too long. */
static void name_put(multipart_t *m, char ch)
{
  if (m->name_len < POSTERN_NAME_MAX)
    m->name[m->name_len] = ch;
  if (m->name_len <= POSTERN_NAME_MAX)
    m->name_len++;
}

static int hex_val(char b)
{
  if (b >= '0' && b <= '9')
    return b - '0';
  b = lower(b);
  if (b >= 'a' && b <= 'f')
    return b - 'a' + 10;
  return -1;
}

/* filename* (RFC 5987 ext-value): UTF-8 only, percent-decoded into m->name. */
static bool name_ext(multipart_t *m, span_t v)
{
  const char *q1 = memchr(v.p, '\'', v.n);
  const char *q2 = q1 != NULL ? memchr(q1 + 1, '\'', (size_t)(v.p + v.n - q1 - 1)) : NULL;
  if (q2 == NULL)
    return fail(m, "malformed filename* in a form part's Content-Disposition");
  if (!ieq(v.p, (size_t)(q1 - v.p), "utf-8"))
    return fail(m, "filename* in a form part: only the UTF-8 charset is accepted");
  m->name_len = 0;
  for (const char *s = q2 + 1; s < v.p + v.n; s++) {
    if (*s == '%') {
      int hi = s + 2 < v.p + v.n ? hex_val(s[1]) : -1, lo = hi >= 0 ? hex_val(s[2]) : -1;
      if (lo < 0)
        return fail(m, "malformed filename* in a form part's Content-Disposition");
      name_put(m, (char)(hi << 4 | lo));
      s += 2;
    } else {
      name_put(m, *s);
    }
  }
  m->flags |= F_FILENAME | F_STAR;
  return true;
}

/* The part header line in m->line is complete: Content-Disposition is read, other fields ignored. */
static bool head_line(multipart_t *m)
{
  const char *s = m->line;
  size_t n = m->line_len, i = 0;
  if (is_ows(s[0]))
    return fail(m, "a form part's head folds a line (obs-fold)");
  while (i < n && text_tchar((unsigned char)s[i]))
    i++;
  if (i == 0 || i == n || s[i] != ':')
    return fail(m, "malformed header line in a form part");
  if (!ieq(s, i, "content-disposition"))
    return true; /* Content-Type and others: ignored */
  if (m->flags & F_DISP)
    return fail(m, "a form part with two Content-Disposition fields");
  i++;
  skip_ows(s, n, &i);
  size_t t = i;
  while (i < n && text_tchar((unsigned char)s[i]))
    i++;
  if (!ieq(s + t, i - t, "form-data"))
    return fail(m, "a form part's Content-Disposition is not form-data");
  m->flags |= F_DISP;
  span_t name, value;
  int rc;
  while ((rc = param_next(s, n, &i, &name, &value)) == 1) {
    if (ieq(name.p, name.n, "filename*")) {
      if (value.p[0] == '"')
        return fail(m, "malformed filename* in a form part's Content-Disposition");
      if (!name_ext(m, value))
        return false;
    } else if (ieq(name.p, name.n, "filename") && !(m->flags & F_STAR)) {
      size_t k = unquote(value, m->name, POSTERN_NAME_MAX);
      m->name_len = (uint8_t)(k > POSTERN_NAME_MAX ? POSTERN_NAME_MAX + 1 : k);
      m->flags |= F_FILENAME;
    }
  }
  if (rc < 0)
    return fail(m, "malformed Content-Disposition in a form part");
  if (m->name_len <= POSTERN_NAME_MAX)
    m->name[m->name_len] = '\0';
  return true;
}

/* The part's head ended (its empty line): the file part or a field. Returns MULTIPART_FILE, _MORE or _ERR. */
static int head_end(multipart_t *m)
{
  if (!(m->flags & F_DISP)) {
    fail(m, "a form part without Content-Disposition: form-data");
    return MULTIPART_ERR;
  }
  m->state = M_BODY;
  if (!(m->flags & F_FILENAME))
    return MULTIPART_MORE; /* a field: its value is read and dropped */
  if (m->flags & F_FILE_SEEN) {
    fail(m, "a form upload carries one file part, this one has more");
    return MULTIPART_ERR;
  }
  m->flags |= F_IN_FILE | F_FILE_SEEN;
  return MULTIPART_FILE;
}

/* Consumes one byte outside part contents and the preamble. Returns MULTIPART_MORE, _FILE or _ERR. */
static int step(multipart_t *m, uint8_t b)
{
  static const char bad_delim[] = "malformed multipart/form-data delimiter line";
  if (!extra(m, 1))
    return MULTIPART_ERR;
  switch (m->state) {
  case M_AFTER:
    if (b == '-')
      m->state = M_DASH;
    else if (is_ows((char)b))
      m->state = M_PAD;
    else if (b == '\r')
      m->state = M_LF;
    else
      break;
    return MULTIPART_MORE;
  case M_DASH:
    if (b != '-')
      break;
    m->state = M_EPILOGUE;
    return MULTIPART_MORE;
  case M_PAD:
    if (b == '\r')
      m->state = M_LF;
    else if (!is_ows((char)b))
      break;
    return MULTIPART_MORE;
  case M_LF:
    if (b != '\n')
      break;
    m->state = M_HLINE;
    m->flags &= F_FILE_SEEN;
    m->line_len = 0;
    m->name_len = 0;
    m->name[0] = '\0';
    return MULTIPART_MORE;
  case M_HLINE:
    if (b == '\r') {
      m->state = M_HLF;
      return MULTIPART_MORE;
    }
    if (b == '\n' || (b < 0x20 && b != '\t') || b == 0x7F)
      return fail(m, "a control byte in a form part's head"), MULTIPART_ERR;
    if (m->line_len >= POSTERN_FORM_LINE_MAX)
      return fail(m, "a form part's header line exceeds POSTERN_FORM_LINE_MAX"), MULTIPART_ERR;
    m->line[m->line_len++] = (char)b;
    return MULTIPART_MORE;
  case M_HLF:
    if (b != '\n')
      return fail(m, "a form part's header line ends in a CR without LF"), MULTIPART_ERR;
    if (m->line_len == 0)
      return head_end(m);
    if (!head_line(m))
      return MULTIPART_ERR;
    m->state = M_HLINE;
    m->line_len = 0;
    return MULTIPART_MORE;
  case M_EPILOGUE:
    return MULTIPART_MORE;
  default:
    break;
  }
  fail(m, bad_delim);
  return MULTIPART_ERR;
}

/*
 * Scans content (or the preamble) at in[i..len) for the delimiter; m->match
 * is 0. *k: where the content ends; returns the delimiter bytes matched
 * there (m->dlen: a whole delimiter; fewer: a prefix that ends the input).
 */
static size_t scan(const multipart_t *m, const uint8_t *in, size_t len, size_t i, size_t *k)
{
  for (;;) {
    const uint8_t *p = memchr(in + i, '\r', len - i);
    if (p == NULL) {
      *k = len;
      return 0;
    }
    size_t at = (size_t)(p - in), j = 0;
    while (at + j < len && j < m->dlen && in[at + j] == (uint8_t)m->delim[j])
      j++;
    if (j == m->dlen || at + j == len) {
      *k = at;
      return j;
    }
    i = at + 1; /* a CR of the content: a CR appears in the delimiter only at its start */
  }
}

/** Consumes from in[0..len); see multipart.h. */
int multipart_decode(multipart_t *m, const uint8_t *in, size_t len, size_t *consumed, const uint8_t **out,
                     size_t *out_len)
{
  size_t i = 0;
  *out = NULL;
  *out_len = 0;
  while (i < len && m->state != M_ERR) {
    if (m->state != M_BODY && m->state != M_PREAMBLE) {
      int rc = step(m, in[i]);
      if (rc == MULTIPART_ERR)
        break;
      i++;
      if (rc == MULTIPART_FILE) {
        *consumed = i;
        return rc;
      }
      if (m->state == M_EPILOGUE) {
        if (!extra(m, len - i))
          break;
        i = len;
      }
      continue;
    }
    bool file = m->state == M_BODY && (m->flags & F_IN_FILE);
    if (m->match > 0) {
      /* A delimiter prefix held back from earlier input: does it go on? */
      size_t h = m->match, j = 0;
      while (i + j < len && h < m->dlen && in[i + j] == (uint8_t)m->delim[h]) {
        h++;
        j++;
      }
      if (h == m->dlen) {
        m->match = 0;
        m->flags &= (uint8_t)~F_IN_FILE;
        m->state = M_AFTER;
        i += j;
        continue;
      }
      if (i + j == len) {
        m->match = (uint8_t)h;
        i = len;
        break;
      }
      /* No: the held bytes were content, and in[i..] is scanned afresh. */
      size_t held = m->match;
      m->match = 0;
      if (file) {
        *out = (const uint8_t *)m->delim;
        *out_len = held;
        *consumed = i;
        return MULTIPART_DATA;
      }
      if (!extra(m, held))
        break;
      continue;
    }
    size_t k, j = scan(m, in, len, i, &k);
    size_t next = j == m->dlen ? k + j : j > 0 ? len : k;
    size_t n = k - i;
    if (j == m->dlen) {
      m->flags &= (uint8_t)~F_IN_FILE;
      m->state = M_AFTER;
    } else {
      m->match = (uint8_t)j;
    }
    if (file && n > 0) {
      *out = in + i;
      *out_len = n;
      *consumed = next;
      return MULTIPART_DATA;
    }
    if (!file && !extra(m, n))
      break;
    i = next;
  }
  if (m->state == M_ERR) {
    *consumed = i;
    return MULTIPART_ERR;
  }
  *consumed = len;
  return MULTIPART_MORE;
}

/** The body ended: true when the close delimiter came and a file part with it. */
bool multipart_finish(multipart_t *m)
{
  if (m->state == M_ERR)
    return false;
  if (m->state != M_EPILOGUE)
    return fail(m, "the form ends before its close delimiter; nothing stored");
  if (!(m->flags & F_FILE_SEEN))
    return fail(m, "the form has no file part (a part whose Content-Disposition has a filename)");
  return true;
}

/** Notes m's position before a call. */
void multipart_mark(const multipart_t *m, multipart_mark_t *k)
{
  *k = (multipart_mark_t){m->error, m->extra, m->line_len, m->state, m->match, m->flags, m->name_len};
}

/** Puts m back where multipart_mark() noted it. */
void multipart_rewind(multipart_t *m, const multipart_mark_t *k)
{
  m->error = k->error;
  m->extra = k->extra;
  m->line_len = k->line_len;
  m->state = k->state;
  m->match = k->match;
  m->flags = k->flags;
  m->name_len = k->name_len;
}
