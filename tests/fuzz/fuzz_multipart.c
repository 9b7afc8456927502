/* fuzz_multipart.c: libFuzzer target: the multipart/form-data decoder fed whole, split and bytewise must agree, and with a whole-buffer search for the file. */
#define _GNU_SOURCE /* memmem */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

/* Boundaries to decode with; the first input byte picks one. */
static const char *const ctypes[] = {
    "multipart/form-data; boundary=B",
    "multipart/form-data; boundary=B0undary",
    "multipart/form-data; boundary=\"--x y\"",
};

typedef struct result {
  int rc;         /* MULTIPART_ERR if one came, else MULTIPART_MORE */
  bool ok;        /* multipart_finish() */
  size_t file_at; /* where the file's content begins (after its head), SIZE_MAX: no file part */
  size_t n;       /* file bytes delivered */
  char name[POSTERN_NAME_MAX + 1];
} result_t;

/*
 * Decodes in[0..len) in pieces of `step` bytes (the last ones shorter), the
 * first piece cut at `cut`; each piece in its own heap block of exactly its
 * size so that ASan sees an over-read. File bytes go to out.
 */
static void run(const char *ctype, const uint8_t *in, size_t len, size_t cut, size_t step, uint8_t *out, result_t *r)
{
  multipart_t m;
  if (!multipart_init(&m, ctype, strlen(ctype)))
    abort();
  memset(r, 0, sizeof *r);
  r->rc = MULTIPART_MORE;
  r->file_at = SIZE_MAX;
  size_t at = 0;
  while (at < len && r->rc != MULTIPART_ERR) {
    size_t end = at == 0 ? cut : at + step;
    if (end > len || end <= at)
      end = len;
    size_t n = end - at, off = 0;
    uint8_t *frag = malloc(n);
    memcpy(frag, in + at, n);
    while (off < n) {
      size_t used, got;
      const uint8_t *o;
      int rc = multipart_decode(&m, frag + off, n - off, &used, &o, &got);
      if (used > n - off)
        abort();
      if (rc == MULTIPART_DATA) {
        bool inside = o >= frag + off && o + got <= frag + off + used;
        bool held = o >= (const uint8_t *)m.delim && o + got <= (const uint8_t *)m.delim + m.dlen;
        if (got == 0 || !(inside || held) || r->file_at == SIZE_MAX)
          abort();
        memcpy(out + r->n, o, got);
        r->n += got;
        /* Never more than came in since the file began. */
        if (r->n > at + off + used - r->file_at)
          abort();
      } else if (o != NULL || got != 0) {
        abort();
      }
      if (rc == MULTIPART_FILE) {
        if (r->file_at != SIZE_MAX)
          abort(); /* one file part only */
        r->file_at = at + off + used;
        memcpy(r->name, m.name, m.name_len <= POSTERN_NAME_MAX ? (size_t)m.name_len + 1 : 1);
      }
      off += used;
      if (rc == MULTIPART_ERR) {
        r->rc = rc;
        if (m.error == NULL)
          abort();
        break;
      }
      if (rc == MULTIPART_MORE) {
        if (off != n)
          abort();
        break;
      }
    }
    free(frag);
    at = end;
  }
  r->ok = multipart_finish(&m);
  if (r->ok != (m.error == NULL))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  const char *ctype = ctypes[data[0] % (sizeof ctypes / sizeof ctypes[0])];
  size_t cut = data[1];
  data += 2;
  size -= 2;
  uint8_t *p1 = malloc(size + 1), *p2 = malloc(size + 1), *p3 = malloc(size + 1);
  result_t r1, r2, r3;
  run(ctype, data, size, size, size, p1, &r1);
  run(ctype, data, size, cut, 7, p2, &r2);
  run(ctype, data, size, 1, 1, p3, &r3);
  if (r1.rc != r2.rc || r1.rc != r3.rc || r1.ok != r2.ok || r1.ok != r3.ok || r1.file_at != r2.file_at ||
      r1.file_at != r3.file_at || r1.n != r2.n || r1.n != r3.n || memcmp(p1, p2, r1.n) != 0 ||
      memcmp(p1, p3, r1.n) != 0 || strcmp(r1.name, r2.name) != 0 || strcmp(r1.name, r3.name) != 0)
    abort();
  if (r1.ok) {
    /* The whole-buffer reference: the file is what lies between its head and the next delimiter. */
    multipart_t m;
    multipart_init(&m, ctype, strlen(ctype));
    const uint8_t *d = memmem(data + r1.file_at, size - r1.file_at, m.delim, m.dlen);
    if (d == NULL || (size_t)(d - data) - r1.file_at != r1.n || memcmp(data + r1.file_at, p1, r1.n) != 0)
      abort();
  }
  free(p1);
  free(p2);
  free(p3);
  return 0;
}
