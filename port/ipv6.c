/* ipv6.c: IPv6 on a board's netif: the link-local address and SLAAC at start, a console line for each address it gets.
 *
 * The netif is up with its IPv4 address already. ipv6_start() gives it the
 * link-local address made from its MAC (EUI-64); lwIP then runs duplicate
 * address detection, solicits a router and forms an address for every
 * autonomous prefix the router advertisement carries (SLAAC: fec0::/64 on
 * libslirp and QEMU). ipv6_poll(), once a turn of the main loop, logs an
 * address when it becomes usable, is found duplicate or goes away. In a build
 * without IPv6 (IPV6=0) both do nothing.
 */
#include "ipv6.h"

#include "log.h"
#include "lwip/ip_addr.h"
#include "text.h"

#if LWIP_IPV6
#include "lwip/ip6_addr.h"

/* What the console last said of each address slot. */
enum { IPV6_SAID_NOTHING, IPV6_SAID_VALID, IPV6_SAID_DUPLICATE };
static uint8_t ipv6_said[LWIP_IPV6_NUM_ADDRESSES];

/** Adds the link-local address (enable: IPv6 on; false leaves the netif IPv4 only). */
void ipv6_start(struct netif *netif, bool enable)
{
  if (!enable) {
    netif_set_ip6_autoconfig_enabled(netif, 0);
    log_line("ipv6: off");
    return;
  }
  netif_set_ip6_autoconfig_enabled(netif, 1);
  netif_create_ip6_linklocal_address(netif, 1);
}

void ipv6_poll(struct netif *netif)
{
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++) {
    uint8_t state = netif_ip6_addr_state(netif, i);
    uint8_t now = ip6_addr_isvalid(state)        ? IPV6_SAID_VALID
                  : ip6_addr_isduplicated(state) ? IPV6_SAID_DUPLICATE
                                                 : IPV6_SAID_NOTHING;
    if (now == ipv6_said[i] || (now == IPV6_SAID_NOTHING && ip6_addr_istentative(state))) {
      continue;
    }
    char text[IP6ADDR_STRLEN_MAX];
    text_lower(ip6addr_ntoa_r(netif_ip6_addr(netif, i), text, sizeof text));
    const char *what = i == 0 ? "link-local" : netif_ip6_addr_isstatic(netif, i) ? "static" : "SLAAC";
    if (now == IPV6_SAID_VALID) {
      log_line("ipv6: %s address %s", what, text);
    } else if (now == IPV6_SAID_DUPLICATE) {
      log_line("ipv6: %s address %s is in use on the link: not taken", what, text);
    } else {
      log_line("ipv6: %s address %s gone", what, text);
    }
    ipv6_said[i] = now;
  }
}

#else /* !LWIP_IPV6 */

void ipv6_start(struct netif *netif, bool enable)
{
  (void)netif;
  (void)enable;
}

void ipv6_poll(struct netif *netif)
{
  (void)netif;
}

#endif /* LWIP_IPV6 */
