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
  return listen_on_prio(alloc, port, accept, arg, TCP_PRIO_NORMAL);
}

/**
 * listen_on() whose connections get lwIP priority `prio` (TCP_PRIO_MIN to
 * TCP_PRIO_MAX): when the pcb pool is empty, a new connection takes the pcb
 * of the least recently active connection of a lower priority.
 */
err_t listen_on_prio(altcp_allocator_t *alloc, uint16_t port, altcp_accept_fn accept, void *arg, uint8_t prio)
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
  /* Set before listening: the listener hands it to every pcb it allocates,
   * SYN_RCVD ones included, and tcp_alloc() compares it. A new pcb already
   * has TCP_PRIO_NORMAL. */
  if (prio != TCP_PRIO_NORMAL) {
    altcp_setprio(pcb, prio);
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
