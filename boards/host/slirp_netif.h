/* slirp_netif.h: an lwIP Ethernet netif whose wire is libslirp (user-mode networking, no root). */
#ifndef POSTERN_SLIRP_NETIF_H
#define POSTERN_SLIRP_NETIF_H

#include <stdbool.h>
#include <stdint.h>

#include "frameq.h"
#include "lwip/netif.h"

/** One host forward: 127.0.0.1:host_port (and [::1]:host_port) -> device:device_port (TCP). */
typedef struct slirp_forward {
  uint16_t host_port;
  uint16_t device_port;
  const char *what;
} slirp_forward_t;

int slirp_netif_start(struct netif *netif, const slirp_forward_t *fwds, int n_fwds, bool ipv6);
int slirp_netif_poll(uint32_t timeout_ms);
void slirp_netif_stop(void);
#if !NO_SYS
void slirp_netif_wake(void);
#endif
const frameq_t *slirp_netif_rx_queue(void);

#endif /* POSTERN_SLIRP_NETIF_H */
