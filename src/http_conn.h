/* http_conn.h: postern's HTTP/1.1 server on altcp: head -> policy decision -> body -> storage -> response. */
#ifndef POSTERN_HTTP_CONN_H
#define POSTERN_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/altcp.h"
#include "lwip/err.h"

/**
 * Listens on `port` with connections made by `alloc` (NULL: plain TCP; an
 * altcp TLS allocator for HTTPS). Every connection goes through the same
 * state machine.
 */
err_t http_listen(altcp_allocator_t *alloc, uint16_t port);

/** Connections open right now, and the most ever open at once. */
uint32_t http_conns_active(void);
uint32_t http_conns_high_water(void);

/** Closes every connection at once: an upload in progress stores nothing. */
void http_close_all(void);

/** Bytes of one connection slot of the fixed pool (lwIP's pcbs aside). */
size_t http_conn_slot_bytes(void);

#endif /* POSTERN_HTTP_CONN_H */
