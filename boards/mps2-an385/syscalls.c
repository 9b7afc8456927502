/* syscalls.c: the C library's system interface on a board with no heap, no files and no real-time clock. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/times.h>

#include "board.h"
#include "lwip/sys.h"
#include "platform.h"

/*
 * No heap. Memory comes from fixed pools and the Lua arena; the allocator
 * entry points exist only so that newlib's own malloc (and its _sbrk) is
 * never linked. Reaching one is a bug: the device says so and stops.
 */
struct _reent;

void *malloc(size_t n)
{
  (void)n;
  board_panic("malloc called", (uint32_t)n);
}

void *calloc(size_t n, size_t size)
{
  (void)size;
  board_panic("calloc called", (uint32_t)n);
}

void *realloc(void *p, size_t n)
{
  (void)p;
  board_panic("realloc called", (uint32_t)n);
}

void free(void *p)
{
  if (p != NULL) {
    board_panic("free called", (uint32_t)(uintptr_t)p);
  }
}

void *_malloc_r(struct _reent *r, size_t n)
{
  (void)r;
  return malloc(n);
}

void *_calloc_r(struct _reent *r, size_t n, size_t size)
{
  (void)r;
  return calloc(n, size);
}

void *_realloc_r(struct _reent *r, void *p, size_t n)
{
  (void)r;
  return realloc(p, n);
}

void _free_r(struct _reent *r, void *p)
{
  (void)r;
  free(p);
}

/* Lua's last resort (an error with no protected call around it). */
void abort(void)
{
  board_panic("abort", 0);
}

/* newlib's own asserts (its number parser has a few). */
void __assert_func(const char *file, int line, const char *func, const char *expr)
{
  (void)file;
  (void)func;
  platform_console_write(expr, strlen(expr));
  board_panic(" <- C library assertion", (uint32_t)line);
}

/* Messages for errno values (newlib's table is 2.8 KiB; only file errors reach Lua here). */
char *strerror(int err)
{
  static char unknown[] = "error";
  static char noent[] = "no such file";
  return err == ENOENT ? noent : unknown;
}

void _exit(int status)
{
  board_panic("exit", (uint32_t)status);
}

/* Time: uptime only (time() and clock() of Lua's seeds and pivots). */
int _gettimeofday(struct timeval *tv, void *tz)
{
  (void)tz;
  uint32_t ms = sys_now();
  tv->tv_sec = (time_t)(ms / 1000u);
  tv->tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
  return 0;
}

clock_t _times(struct tms *t)
{
  memset(t, 0, sizeof *t);
  t->tms_utime = (clock_t)sys_now();
  return t->tms_utime;
}

/*
 * Files: there are none. Lua's loadfile/dofile (removed from the sandbox
 * anyway) find nothing; print and Lua's error reports go to the console.
 * Each stub stands in for a newlib stdio function that would bring
 * buffering and malloc with it.
 */
FILE *fopen(const char *path, const char *mode)
{
  (void)path;
  (void)mode;
  errno = ENOENT;
  return NULL;
}

FILE *freopen(const char *path, const char *mode, FILE *f)
{
  (void)f;
  return fopen(path, mode);
}

int fclose(FILE *f)
{
  (void)f;
  return EOF;
}

int(getc)(FILE *f)
{
  (void)f;
  return EOF;
}

int(ferror)(FILE *f)
{
  (void)f;
  return 1;
}

int(feof)(FILE *f)
{
  (void)f;
  return 1;
}

size_t fread(void *buf, size_t size, size_t n, FILE *f)
{
  (void)buf;
  (void)size;
  (void)n;
  (void)f;
  return 0;
}

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
  (void)f;
  platform_console_write(buf, size * n);
  return n;
}

int fflush(FILE *f)
{
  (void)f;
  return 0;
}

int fputs(const char *s, FILE *f)
{
  (void)f;
  platform_console_write(s, strlen(s));
  return 0;
}

int fputc(int c, FILE *f)
{
  char ch = (char)c;
  (void)f;
  platform_console_write(&ch, 1);
  return (unsigned char)c;
}

int fprintf(FILE *f, const char *fmt, ...)
{
  char buf[160];
  va_list ap;
  (void)f;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) {
    platform_console_write(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
  }
  return n;
}
