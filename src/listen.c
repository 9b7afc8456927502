/* listen.c: opens an altcp listener on a device port, for every service postern runs. */
#include "listen.h"

#include "lwip/altcp_tcp.h"
#include "lwip/ip_addr.h"

/**
 * Listens on `port` (any address) with connections made by `alloc` (NULL:
 * plain TCP; an altcp TLS allocator for TLS); `accept` gets `arg`.
 */
err_t listen_on(altcp_allocator_t *alloc, uint16_t port, altcp_accept_fn accept, void *arg)
{
  struct altcp_pcb *pcb = alloc != NULL ? altcp_new_ip_type(alloc, IPADDR_TYPE_ANY)
                                        : altcp_tcp_new_ip_type(IPADDR_TYPE_ANY);
  if (pcb == NULL) {
    return ERR_MEM;
  }
  err_t err = altcp_bind(pcb, IP_ANY_TYPE, port);
  if (err != ERR_OK) {
    altcp_close(pcb);
    return err;
  }
  struct altcp_pcb *listener = altcp_listen(pcb);
  if (listener == NULL) {
    altcp_close(pcb);
    return ERR_MEM;
  }
  altcp_arg(listener, arg);
  altcp_accept(listener, accept);
  return ERR_OK;
}
