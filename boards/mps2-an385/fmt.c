/* fmt.c: snprintf and vsnprintf for the board: newlib-nano's cannot print 64-bit integers (Lua's and the logs') nor floats. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * C99 conversions d i u o x X c s p % e E f F g G (a and A print as e),
 * flags - + space # 0, width and precision (also *), lengths hh h l ll j z t L.
 * Floating point is exact to about 16 significant digits, which is what a
 * double holds; the last digit may differ from glibc's correctly rounded one.
 */

typedef struct fmt_out {
  char *buf;
  size_t size;
  size_t len; /* bytes the full output takes */
} fmt_out_t;

static void fmt_putc(fmt_out_t *o, char c)
{
  if (o->len + 1 < o->size) {
    o->buf[o->len] = c;
  }
  o->len++;
}

static void fmt_pad(fmt_out_t *o, char c, int n)
{
  while (n-- > 0) {
    fmt_putc(o, c);
  }
}

typedef struct fmt_spec {
  bool left, plus, space, alt, zero;
  int width, prec; /* prec < 0: none */
} fmt_spec_t;

/* Writes sign/prefix, zero padding and the body with the width applied. */
static void fmt_emit(fmt_out_t *o, const fmt_spec_t *s, const char *prefix, const char *body, size_t n, int zeros)
{
  int plen = (int)strlen(prefix);
  int total = plen + zeros + (int)n;
  int pad = s->width > total ? s->width - total : 0;
  if (!s->left && !s->zero) {
    fmt_pad(o, ' ', pad);
  }
  for (int i = 0; i < plen; i++) {
    fmt_putc(o, prefix[i]);
  }
  if (!s->left && s->zero) {
    fmt_pad(o, '0', pad);
  }
  fmt_pad(o, '0', zeros);
  for (size_t i = 0; i < n; i++) {
    fmt_putc(o, body[i]);
  }
  if (s->left) {
    fmt_pad(o, ' ', pad);
  }
}

static void fmt_integer(fmt_out_t *o, fmt_spec_t *s, uint64_t v, bool negative, unsigned base, bool upper)
{
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char tmp[24];
  size_t n = 0;
  if (!(v == 0 && s->prec == 0)) {
    do {
      tmp[sizeof tmp - 1 - n++] = digits[v % base];
      v /= base;
    } while (v != 0);
  }
  char prefix[4] = "";
  if (negative) {
    strcpy(prefix, "-");
  } else if (s->plus) {
    strcpy(prefix, "+");
  } else if (s->space) {
    strcpy(prefix, " ");
  }
  if (s->alt && base == 16 && n > 0) {
    strcat(prefix, upper ? "0X" : "0x");
  }
  int zeros = s->prec > (int)n ? s->prec - (int)n : 0;
  if (s->alt && base == 8 && zeros == 0 && (n == 0 || tmp[sizeof tmp - n] != '0')) {
    zeros = 1;
  }
  if (s->prec >= 0) {
    s->zero = false;
  }
  fmt_emit(o, s, prefix, tmp + sizeof tmp - n, n, zeros);
}

/* Up to 17 significant decimal digits of v > 0: digits[0..sig) and the exponent of the first. */
static void fmt_sig_digits(double v, int sig, char *digits, int *exp10)
{
  int e = (int)floor(log10(v));
  for (int attempt = 0; attempt < 2; attempt++) {
    int p = sig - 1 - e;
    double scaled = v;
    while (p > 300) {
      scaled *= 1e300;
      p -= 300;
    }
    while (p < -300) {
      scaled /= 1e300;
      p += 300;
    }
    scaled = p >= 0 ? scaled * pow(10.0, p) : scaled / pow(10.0, -p);
    uint64_t n = (uint64_t)(scaled + 0.5);
    uint64_t lo = 1;
    for (int i = 1; i < sig; i++) {
      lo *= 10u;
    }
    if (n >= lo * 10u) {
      e++;
      continue;
    }
    if (n < lo && attempt == 0) {
      e--;
      continue;
    }
    for (int i = sig - 1; i >= 0; i--) {
      digits[i] = (char)('0' + n % 10u);
      n /= 10u;
    }
    *exp10 = e;
    return;
  }
  memset(digits, '0', (size_t)sig);
  digits[0] = '1';
  *exp10 = e;
}

static void fmt_float(fmt_out_t *o, fmt_spec_t *s, double v, char conv)
{
  char body[400];
  size_t n = 0;
  bool upper = conv == 'E' || conv == 'F' || conv == 'G' || conv == 'A';
  const char *prefix = signbit(v) ? "-" : s->plus ? "+" : s->space ? " " : "";
  v = fabs(v);
  if (!isfinite(v)) {
    const char *t = isnan(v) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
    s->zero = false;
    fmt_emit(o, s, prefix, t, 3, 0);
    return;
  }
  char lc = (char)(conv | 0x20);
  int prec = s->prec < 0 ? 6 : s->prec;
  if (prec > 300) {
    prec = 300;
  }
  bool strip = false;
  if (lc == 'a') {
    lc = 'e';
  }
  char digits[17];
  int e = 0;
  if (lc == 'g') {
    int sig = prec == 0 ? 1 : prec;
    if (v != 0) {
      fmt_sig_digits(v, sig > 17 ? 17 : sig, digits, &e);
    }
    strip = !s->alt;
    if (e < -4 || e >= sig) {
      lc = 'e';
      prec = sig - 1;
    } else {
      lc = 'f';
      prec = sig - 1 - e;
    }
  }
  if (lc == 'e') {
    int sig = prec + 1;
    if (v != 0) {
      fmt_sig_digits(v, sig > 17 ? 17 : sig, digits, &e);
    } else {
      memset(digits, '0', sizeof digits);
      e = 0;
    }
    body[n++] = digits[0];
    if (prec > 0 || s->alt) {
      body[n++] = '.';
    }
    for (int i = 1; i < sig; i++) {
      body[n++] = i < 17 ? digits[i] : '0';
    }
    if (strip && prec > 0) {
      while (body[n - 1] == '0') {
        n--;
      }
      if (body[n - 1] == '.') {
        n--;
      }
    }
    body[n++] = upper ? 'E' : 'e';
    body[n++] = e < 0 ? '-' : '+';
    int ae = e < 0 ? -e : e;
    if (ae >= 100) {
      body[n++] = (char)('0' + ae / 100);
    }
    body[n++] = (char)('0' + ae / 10 % 10);
    body[n++] = (char)('0' + ae % 10);
  } else {
    /* Fixed: the significant digits of v placed around the point, zeros beyond 17. */
    int first = 0; /* exponent of the leading digit */
    int sig = 0;
    if (v != 0) {
      fmt_sig_digits(v, 17, digits, &first);
      /* round to prec decimals: keep (first + 1 + prec) significant digits */
      sig = first + 1 + prec;
      if (sig <= 0) {
        /* Rounds to zero, or to one unit in the last place. */
        bool up = sig == 0 && digits[0] >= '5';
        sig = 0;
        if (up) {
          first = -prec;
          digits[0] = '1';
          sig = 1;
        }
      } else if (sig < 17) {
        fmt_sig_digits(v, sig, digits, &first);
        if (first + 1 + prec > sig && sig < 17) {
          sig++; /* rounding carried into a new digit: one more fits */
          fmt_sig_digits(v, sig, digits, &first);
        }
      } else {
        sig = 17;
      }
    }
    int top = first > 0 ? first : 0;
    for (int pos = top; pos >= -prec && n < sizeof body - 2; pos--) {
      int idx = first - pos;
      body[n++] = (idx >= 0 && idx < sig) ? digits[idx] : '0';
      if (pos == 0 && (prec > 0 || s->alt)) {
        body[n++] = '.';
      }
    }
    if (strip && prec > 0) {
      while (body[n - 1] == '0') {
        n--;
      }
      if (body[n - 1] == '.') {
        n--;
      }
    }
  }
  fmt_emit(o, s, prefix, body, n, 0);
}

/** C99 vsnprintf; see the list of conversions above. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
  fmt_out_t o = {buf, size, 0};
  va_list args;
  va_copy(args, ap);
  for (const char *p = fmt; *p != '\0'; p++) {
    if (*p != '%') {
      fmt_putc(&o, *p);
      continue;
    }
    fmt_spec_t s = {false, false, false, false, false, 0, -1};
    for (;; p++) {
      char f = p[1];
      if (f == '-') s.left = true;
      else if (f == '+') s.plus = true;
      else if (f == ' ') s.space = true;
      else if (f == '#') s.alt = true;
      else if (f == '0') s.zero = true;
      else break;
    }
    p++;
    if (*p == '*') {
      s.width = va_arg(args, int);
      if (s.width < 0) {
        s.left = true;
        s.width = -s.width;
      }
      p++;
    } else {
      while (*p >= '0' && *p <= '9') {
        s.width = s.width * 10 + (*p++ - '0');
      }
    }
    if (*p == '.') {
      p++;
      s.prec = 0;
      if (*p == '*') {
        s.prec = va_arg(args, int);
        p++;
      } else {
        while (*p >= '0' && *p <= '9') {
          s.prec = s.prec * 10 + (*p++ - '0');
        }
      }
    }
    if (s.left) {
      s.zero = false;
    }
    int lng = 0; /* 0 int, 1 long, 2 long long, -1 short, -2 char, 3 size_t/ptrdiff_t/intmax_t */
    for (;; p++) {
      if (*p == 'l') lng = lng == 1 ? 2 : 1;
      else if (*p == 'h') lng = lng == -1 ? -2 : -1;
      else if (*p == 'j') lng = 2;
      else if (*p == 'z' || *p == 't') lng = 3;
      else if (*p == 'L') lng = 0;
      else break;
    }
    char c = *p;
    if (c == '\0') {
      break;
    }
    switch (c) {
    case 'd':
    case 'i': {
      int64_t v = lng == 2 ? va_arg(args, long long) : lng == 1 ? va_arg(args, long)
                : lng == 3 ? (int64_t)va_arg(args, ptrdiff_t) : va_arg(args, int);
      if (lng == -1) v = (short)v;
      if (lng == -2) v = (signed char)v;
      fmt_integer(&o, &s, v < 0 ? 0u - (uint64_t)v : (uint64_t)v, v < 0, 10, false);
      break;
    }
    case 'u':
    case 'o':
    case 'x':
    case 'X': {
      uint64_t v = lng == 2 ? va_arg(args, unsigned long long) : lng == 1 ? va_arg(args, unsigned long)
                 : lng == 3 ? (uint64_t)va_arg(args, size_t) : va_arg(args, unsigned);
      if (lng == -1) v = (unsigned short)v;
      if (lng == -2) v = (unsigned char)v;
      s.plus = s.space = false;
      fmt_integer(&o, &s, v, false, c == 'u' ? 10 : c == 'o' ? 8 : 16, c == 'X');
      break;
    }
    case 'p':
      s.alt = true;
      fmt_integer(&o, &s, (uintptr_t)va_arg(args, void *), false, 16, false);
      break;
    case 'c': {
      char ch = (char)va_arg(args, int);
      s.zero = false;
      fmt_emit(&o, &s, "", &ch, 1, 0);
      break;
    }
    case 's': {
      const char *str = va_arg(args, const char *);
      if (str == NULL) {
        str = "(null)";
      }
      size_t n = 0;
      while (str[n] != '\0' && (s.prec < 0 || n < (size_t)s.prec)) {
        n++;
      }
      s.zero = false;
      fmt_emit(&o, &s, "", str, n, 0);
      break;
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
      fmt_float(&o, &s, va_arg(args, double), c);
      break;
    default:
      fmt_putc(&o, '%');
      if (c != '%') {
        fmt_putc(&o, c);
      }
      break;
    }
  }
  va_end(args);
  if (size > 0) {
    buf[o.len < size ? o.len : size - 1] = '\0';
  }
  return o.len > INT32_MAX ? -1 : (int)o.len;
}

/** C99 snprintf. */
int snprintf(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
