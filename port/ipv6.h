/* ipv6.h: IPv6 on a board's netif: the link-local address and SLAAC at start, a console line for each address it gets. */
#ifndef POSTERN_IPV6_H
#define POSTERN_IPV6_H

#include <stdbool.h>

#include "lwip/netif.h"

void ipv6_start(struct netif *netif, bool enable);
void ipv6_poll(struct netif *netif);

#endif /* POSTERN_IPV6_H */
