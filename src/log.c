/* log.c: the console logger: one bounded line at a time, no allocation. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "platform.h"

/** Longest log line; longer lines are cut and end in "...". */
#define LOG_LINE_MAX 320

/** Formats one line (a newline is added) and writes it to the console. */
void log_line(const char *fmt, ...)
{
  static char line[LOG_LINE_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, LOG_LINE_MAX, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  size_t len = (size_t)n;
  if (len >= LOG_LINE_MAX) {
    len = LOG_LINE_MAX - 1;
    line[len - 3] = line[len - 2] = line[len - 1] = '.';
  }
  line[len++] = '\n';
  platform_console_write(line, len);
}

/** Writes n bytes as one line (a newline is added; cut like log_line), without formatting. */
void log_write(const char *s, size_t n)
{
  if (n >= LOG_LINE_MAX) {
    platform_console_write(s, LOG_LINE_MAX - 4);
    platform_console_write("...\n", 4);
    return;
  }
  platform_console_write(s, n);
  platform_console_write("\n", 1);
}
