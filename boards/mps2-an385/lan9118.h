/* lan9118.h: lwIP netif driver for the SMSC LAN9118 Ethernet controller of the mps2-an385. */
#ifndef POSTERN_LAN9118_H
#define POSTERN_LAN9118_H

#include <stdint.h>

#include "frameq.h"
#include "lwip/netif.h"

/**
 * lwIP netif init function (for netif_add): resets and checks the controller,
 * programs the MAC address, enables TX and RX and the receive interrupt.
 * Returns ERR_IF when no LAN9118/LAN9220 answers.
 */
err_t lan9118_netif_init(struct netif *netif);
/** Interrupt handler: moves received frames from the RX FIFO into the frame queue. */
void lan9118_isr(void);
/** Main-loop side: feeds queued frames to netif->input; returns the frames fed. */
int lan9118_poll(struct netif *netif);
/** True when received frames wait for lan9118_poll(). */
int lan9118_rx_pending(void);
/** The receive queue: frames waiting, dropped and its high-water mark. */
const frameq_t *lan9118_rx_queue(void);

#endif /* POSTERN_LAN9118_H */
