/* listen.c: opens an altcp listener on a device port, for every service postern runs. */
#include "listen.h"

#include "lwip/altcp_tcp.h"
#include "lwip/ip_addr.h"

/** Listeners postern opens at most: HTTP, HTTPS, echo, discard. */
#define LISTEN_MAX 4

static struct altcp_pcb *listen_pcbs[LISTEN_MAX];

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
  int slot = 0;
  while (slot < LISTEN_MAX && listen_pcbs[slot] != NULL) {
    slot++;
  }
  if (slot == LISTEN_MAX) {
    return ERR_MEM;
  }
  struct altcp_pcb *pcb =
      alloc != NULL ? altcp_new_ip_type(alloc, IPADDR_TYPE_ANY) : altcp_tcp_new_ip_type(IPADDR_TYPE_ANY);
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
  listen_pcbs[slot] = listener;
  return ERR_OK;
}

void listen_close_all(void)
{
  for (int i = 0; i < LISTEN_MAX; i++) {
    if (listen_pcbs[i] != NULL) {
      altcp_close(listen_pcbs[i]); /* a listener's close never fails */
      listen_pcbs[i] = NULL;
    }
  }
}
