/* listen.h: opens an altcp listener on a device port, for every service postern runs. */
#ifndef POSTERN_LISTEN_H
#define POSTERN_LISTEN_H

#include <stdint.h>

#include "lwip/altcp.h"

err_t listen_on(altcp_allocator_t *alloc, uint16_t port, altcp_accept_fn accept, void *arg);
err_t listen_on_prio(altcp_allocator_t *alloc, uint16_t port, altcp_accept_fn accept, void *arg, uint8_t prio);
/** Closes every listener listen_on() opened: no new connection is accepted. */
void listen_close_all(void);

#endif /* POSTERN_LISTEN_H */
