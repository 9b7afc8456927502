/* page.h: the upload page served at GET / (src/page.html), gzip-compressed into a C array at build time (scripts/page-gz.sh). */
#ifndef POSTERN_PAGE_H
#define POSTERN_PAGE_H

#include <stddef.h>
#include <stdint.h>

/** The page, gzip-compressed (RFC 1952), in flash. */
extern const uint8_t page_gz[];
extern const size_t page_gz_len;

#endif /* POSTERN_PAGE_H */
