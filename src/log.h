/* log.h: the console logger shared by the core, the port and the boards. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stddef.h>

#if defined(__GNUC__)
#define POSTERN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define POSTERN_PRINTF(f, a)
#endif

/** Formats one line (a newline is added) and writes it to the console. */
void log_line(const char *fmt, ...) POSTERN_PRINTF(1, 2);
/** Writes n bytes as one line (a newline is added; cut like log_line), without formatting. */
void log_write(const char *s, size_t n);

#endif /* POSTERN_LOG_H */
