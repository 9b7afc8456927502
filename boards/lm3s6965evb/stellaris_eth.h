/* stellaris_eth.h: lwIP netif driver for the LM3S6965's on-chip Ethernet MAC: the MAC's receive FIFO read straight into pbufs, transmit through the FIFO. */
#ifndef POSTERN_STELLARIS_ETH_H
#define POSTERN_STELLARIS_ETH_H

#include <stdint.h>

#include "lwip/err.h"
#include "lwip/netif.h"

/** netif_add() init function: resets the receive FIFO, takes the MAC address, enables TX, RX and the receive interrupt. */
err_t stellaris_eth_netif_init(struct netif *netif);
/** The MAC's interrupt (NVIC line 42): masks itself and leaves the received frames to the main loop. */
void stellaris_eth_isr(void);
/** Main loop: reads the frames waiting in the MAC's FIFO into pool pbufs and feeds them to lwIP; returns how many. */
int stellaris_eth_poll(struct netif *netif);
/** True when frames wait for stellaris_eth_poll(). */
int stellaris_eth_rx_pending(void);

#endif /* POSTERN_STELLARIS_ETH_H */
