/* fmt.c: snprintf, vsnprintf and strtod for the board: newlib-nano's printf cannot print 64-bit integers nor floats, and its strtod is 10 KiB. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* 17 significant decimal digits of v > 0 (scaled in binary): digits[0..sig) and the exponent of the first. */
static void fmt_scaled_digits(double v, int sig, char *digits, int *exp10)
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
    double whole = floor(scaled);
    double rest = scaled - whole;
    uint64_t n = (uint64_t)whole + (rest > 0.5 || (rest == 0.5 && fmod(whole, 2.0) != 0.0)); /* ties to even */
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

/*
 * sig (1 to 17) significant digits of v > 0: the 17 a double needs, then
 * rounded in decimal (half to even), so that 160.34999999999999 gives 160.3
 * at one decimal rather than the 160.4 a binary rescaling rounds to.
 */
static void fmt_sig_digits(double v, int sig, char *digits, int *exp10)
{
  fmt_scaled_digits(v, 17, digits, exp10);
  if (sig >= 17) {
    return;
  }
  bool tail = false;
  for (int i = sig + 1; i < 17; i++) {
    tail = tail || digits[i] != '0';
  }
  bool up = digits[sig] > '5' || (digits[sig] == '5' && (tail || (digits[sig - 1] - '0') % 2 != 0));
  for (int i = sig - 1; up && i >= 0; i--) {
    up = digits[i] == '9';
    digits[i] = up ? '0' : (char)(digits[i] + 1);
  }
  if (up) {
    digits[0] = '1'; /* 9.99 -> 10.0: one digit more in front */
    ++*exp10;
  }
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
        /* A carry into a new leading digit (9.96 -> 10.0) leaves only zeros after it. */
        fmt_sig_digits(v, sig, digits, &first);
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
      if (f == '-')
        s.left = true;
      else if (f == '+')
        s.plus = true;
      else if (f == ' ')
        s.space = true;
      else if (f == '#')
        s.alt = true;
      else if (f == '0')
        s.zero = true;
      else
        break;
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
      if (*p == 'l')
        lng = lng == 1 ? 2 : 1;
      else if (*p == 'h')
        lng = lng == -1 ? -2 : -1;
      else if (*p == 'j')
        lng = 2;
      else if (*p == 'z' || *p == 't')
        lng = 3;
      else if (*p == 'L')
        lng = 0;
      else
        break;
    }
    char c = *p;
    if (c == '\0') {
      break;
    }
    switch (c) {
    case 'd':
    case 'i': {
      int64_t v = lng == 2   ? va_arg(args, long long)
                  : lng == 1 ? va_arg(args, long)
                  : lng == 3 ? (int64_t)va_arg(args, ptrdiff_t)
                             : va_arg(args, int);
      if (lng == -1)
        v = (short)v;
      if (lng == -2)
        v = (signed char)v;
      fmt_integer(&o, &s, v < 0 ? 0u - (uint64_t)v : (uint64_t)v, v < 0, 10, false);
      break;
    }
    case 'u':
    case 'o':
    case 'x':
    case 'X': {
      uint64_t v = lng == 2   ? va_arg(args, unsigned long long)
                   : lng == 1 ? va_arg(args, unsigned long)
                   : lng == 3 ? (uint64_t)va_arg(args, size_t)
                              : va_arg(args, unsigned);
      if (lng == -1)
        v = (unsigned short)v;
      if (lng == -2)
        v = (unsigned char)v;
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

/* Value of a hex digit, or -1. */
static int fmt_hex_digit(char c)
{
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * C99 strtod for decimal and hexadecimal numbers ("inf" and "nan" are not
 * converted: Lua, its one user, rejects them before calling). The first 19
 * significant digits count; the result is within an ulp or two of the
 * correctly rounded one (exact when the digits and the power of ten are).
 */
double strtod(const char *str, char **end)
{
  const char *p = str;
  while (isspace((unsigned char)*p)) {
    p++;
  }
  bool negative = *p == '-';
  if (*p == '-' || *p == '+') {
    p++;
  }
  bool hex =
      p[0] == '0' && (p[1] | 0x20) == 'x' && (fmt_hex_digit(p[2]) >= 0 || (p[2] == '.' && fmt_hex_digit(p[3]) >= 0));
  unsigned base = hex ? 16u : 10u;
  if (hex) {
    p += 2;
  }
  uint64_t mant = 0;
  int digits = 0, scale = 0; /* scale: digits (hex: bits) dropped or after the point */
  bool any = false, point = false;
  for (;; p++) {
    int d = hex ? fmt_hex_digit(*p) : (*p >= '0' && *p <= '9' ? *p - '0' : -1);
    if (d < 0) {
      if (*p == '.' && !point) {
        point = true;
        continue;
      }
      break;
    }
    any = true;
    if (digits < (hex ? 15 : 19)) {
      mant = mant * base + (unsigned)d;
      if (mant != 0) {
        digits++;
      }
      if (point) {
        scale -= hex ? 4 : 1;
      }
    } else if (!point) {
      scale += hex ? 4 : 1;
    }
  }
  if (!any) {
    if (end != NULL) {
      *end = (char *)(uintptr_t)str;
    }
    return 0.0;
  }
  char expc = hex ? 'p' : 'e';
  if ((*p | 0x20) == expc) {
    const char *q = p + 1;
    bool eneg = *q == '-';
    if (*q == '-' || *q == '+') {
      q++;
    }
    if (*q >= '0' && *q <= '9') {
      long e = 0;
      while (*q >= '0' && *q <= '9') {
        if (e < 100000) {
          e = e * 10 + (*q - '0');
        }
        q++;
      }
      scale += (int)(eneg ? -e : e);
      p = q;
    }
  }
  if (end != NULL) {
    *end = (char *)(uintptr_t)p;
  }
  double v = (double)mant;
  if (mant != 0) {
    if (hex) {
      v = ldexp(v, scale);
    } else if (scale > 0) {
      v = scale > 308 ? HUGE_VAL : v * pow(10.0, scale);
    } else if (scale < 0) {
      v = scale < -308 ? v / 1e308 / pow(10.0, -scale - 308 > 308 ? 308 : -scale - 308) : v / pow(10.0, -scale);
    }
    if (isinf(v) || v == 0.0) {
      errno = ERANGE;
    }
  }
  return negative ? -v : v;
}
