/* stellaris_eth.c: lwIP netif driver for the LM3S6965's Ethernet MAC (QEMU's stellaris_enet): RX from the MAC's FIFO straight into pbufs, TX through the FIFO. */
#include "stellaris_eth.h"

#include <stdbool.h>
#include <string.h>

#include "board_opts.h"
#include "lm3s6965.h"
#include "log.h"
#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "netif/ethernet.h"
#include "pool_free.h"
#if LWIP_IPV6
#include "lwip/ethip6.h"
#endif

/*
 * The MAC keeps received frames in its own FIFO (2 KiB on the part; QEMU
 * models 31 whole frames) and reads them out through one DATA register, a
 * word at a time: the first word holds the length (the frame plus 6: the
 * length itself and the 4-byte FCS) in its low half and the frame's first two
 * bytes in its high half; the FCS ends the frame. Transmit is the mirror
 * image: a first word with the payload length (the frame less its 14-byte
 * header), the frame, then TR.NEWTX; the MAC pads short frames and appends
 * the FCS.
 *
 * The MAC's FIFO is the receive queue: 64 KiB of SRAM have no room for a
 * second one (each frame slot is 1.5 KiB). The interrupt masks itself and
 * tells the main loop; the main loop reads each frame out of the FIFO
 * straight into a pool pbuf (no copy in between) and feeds it to lwIP, and
 * unmasks the interrupt once the FIFO is empty. When the pool has no pbuf
 * the frames wait in the FIFO: no frame is lost to a full queue in RAM. Only
 * a full FIFO drops frames, as on the part, and TCP resends them.
 */

#define ETH_REG(off) LM3S_REG(LM3S_EMAC_BASE + (off))
#define ETH_RIS ETH_REG(0x00u) /* read: raw interrupt status; write: IACK */
#define ETH_IM ETH_REG(0x04u)
#define ETH_RCTL ETH_REG(0x08u)
#define ETH_TCTL ETH_REG(0x0Cu)
#define ETH_DATA ETH_REG(0x10u)
#define ETH_IA0 ETH_REG(0x14u)
#define ETH_IA1 ETH_REG(0x18u)
#define ETH_THR ETH_REG(0x1Cu)
#define ETH_NP ETH_REG(0x34u)
#define ETH_TR ETH_REG(0x38u)

#define ETH_INT_RX (1u << 0)
#define ETH_INT_ALL 0x7Fu
#define ETH_RCTL_RXEN (1u << 0)
#define ETH_RCTL_AMUL (1u << 1) /* every multicast frame (IPv6's neighbour discovery) */
#define ETH_RCTL_BADCRC (1u << 3)
#define ETH_RCTL_RSTFIFO (1u << 4)
#define ETH_TCTL_TXEN (1u << 0)
#define ETH_TCTL_PADEN (1u << 1)
#define ETH_TCTL_CRC (1u << 2)
#define ETH_TCTL_DUPLEX (1u << 4)
#define ETH_THR_OFF 0x3Fu /* no early transmit: a frame goes when TR.NEWTX is set */
#define ETH_TR_NEWTX (1u << 0)
#define ETH_HDR 14u
#define ETH_FRAME_MAX 1536u
#define ETH_RX_MAX (ETH_HDR + 1500u) /* one pool pbuf (PBUF_POOL_BUFSIZE): no VLAN tags */

/** Polls of TR.NEWTX before a frame counts as stuck. */
#define ETH_SPIN_MAX 100000u

static volatile bool eth_rx_signalled; /* the interrupt fired and masked itself: frames wait in the FIFO */

/** Interrupt: acknowledges, masks the receive interrupt and leaves the frames to the main loop. */
void stellaris_eth_isr(void)
{
  ETH_IM = 0;
  ETH_RIS = ETH_INT_ALL;
  eth_rx_signalled = true;
}

/** True when received frames wait for stellaris_eth_poll(). */
int stellaris_eth_rx_pending(void)
{
  return eth_rx_signalled;
}

/* Reads the frame at the head of the FIFO into a pool pbuf; NULL when there is none or no pbuf (it stays). */
static struct pbuf *eth_read_frame(bool *consumed)
{
  *consumed = false;
  /* The length is in the first word and reading it starts the frame: the pbuf is taken first, at full size. */
  struct pbuf *p = pool_has_room(ETH_RX_MAX) ? pbuf_alloc(PBUF_RAW, (u16_t)ETH_RX_MAX, PBUF_POOL) : NULL;
  if (p == NULL) {
    LINK_STATS_INC(link.memerr);
    return NULL;
  }
  *consumed = true;
  uint32_t first = ETH_DATA;
  uint32_t len = first & 0xFFFFu; /* the frame and 6 */
  uint32_t words = (len + 3u) / 4u;
  if (len < 6u + ETH_HDR || len - 6u > ETH_RX_MAX) {
    for (uint32_t i = 1; i < words; i++) {
      (void)ETH_DATA; /* read out: the FIFO frees a frame only when all of it was read */
    }
    pbuf_free(p);
    LINK_STATS_INC(link.err);
    return NULL;
  }
  uint32_t frame = len - 6u;
  /* Bytes 0 and 1 of the frame came with the length; the rest lands in the chain word by word. */
  struct pbuf *q = p;
  uint32_t off = 0, at = 0;
  uint32_t word = first >> 16;
  uint32_t have = 2;
  for (uint32_t i = 1;; i++) {
    while (have > 0 && at < frame) {
      if (off == q->len) {
        q = q->next;
        off = 0;
      }
      ((uint8_t *)q->payload)[off++] = (uint8_t)word;
      word >>= 8;
      have--;
      at++;
    }
    if (i == words) {
      break;
    }
    word = ETH_DATA;
    have = 4;
  }
  pbuf_realloc(p, (u16_t)frame);
  return p;
}

/** Feeds the frames waiting in the MAC's FIFO to lwIP, oldest first; unmasks the interrupt once it is empty. */
int stellaris_eth_poll(struct netif *netif)
{
  if (!eth_rx_signalled) {
    return 0;
  }
  int fed = 0;
  while (ETH_NP != 0) {
    bool consumed;
    struct pbuf *p = eth_read_frame(&consumed);
    if (!consumed) {
      return fed; /* no pbuf: the frames wait in the FIFO, the interrupt stays masked */
    }
    if (p == NULL) {
      continue;
    }
    LINK_STATS_INC(link.recv);
    fed++;
    if (netif->input(p, netif) != ERR_OK) {
      pbuf_free(p);
    }
  }
  eth_rx_signalled = false;
  ETH_IM = ETH_INT_RX;
  if (ETH_NP != 0) {
    /* A frame that came after the last read and before the unmask raised RX while masked: the interrupt is pending. */
    eth_rx_signalled = true;
  }
  return fed;
}

/* lwIP -> wire: streams the pbuf chain into the TX FIFO a word at a time (no copy), then sets NEWTX. */
static err_t eth_linkoutput(struct netif *netif, struct pbuf *p)
{
  (void)netif;
  uint32_t len = p->tot_len;
  if (len > ETH_FRAME_MAX || len < ETH_HDR) {
    LINK_STATS_INC(link.drop);
    return ERR_BUF;
  }
  /* The FIFO holds one frame: wait for the previous one to leave. */
  for (uint32_t spins = 0; (ETH_TR & ETH_TR_NEWTX) != 0; spins++) {
    if (spins == ETH_SPIN_MAX) {
      LINK_STATS_INC(link.drop);
      return ERR_MEM;
    }
  }
  uint32_t word = len - ETH_HDR; /* the first word: the payload length, then the frame */
  uint32_t fill = 2;
  for (const struct pbuf *q = p; q != NULL; q = q->next) {
    const uint8_t *b = q->payload;
    for (uint32_t i = 0; i < q->len; i++) {
      word |= (uint32_t)b[i] << (8u * fill);
      if (++fill == 4u) {
        ETH_DATA = word;
        word = 0;
        fill = 0;
      }
    }
  }
  if (fill != 0) {
    ETH_DATA = word;
  }
  ETH_TR = ETH_TR_NEWTX;
  LINK_STATS_INC(link.xmit);
  return ERR_OK;
}

/** lwIP netif init: FIFO reset, MAC address, TX/RX on, receive interrupt; see stellaris_eth.h. */
err_t stellaris_eth_netif_init(struct netif *netif)
{
  LM3S_NVIC_ICER(LM3S_EMAC_IRQ / 32u) = 1u << (LM3S_EMAC_IRQ % 32u);
  ETH_IM = 0;
  ETH_RCTL = ETH_RCTL_RSTFIFO;
  ETH_RIS = ETH_INT_ALL;
  /* The address the boot loader (on the part: the USER0/USER1 flash words; under QEMU: -nic's) left in IA0/IA1. */
  uint32_t ia0 = ETH_IA0, ia1 = ETH_IA1;
  uint8_t mac[6] = {(uint8_t)ia0,         (uint8_t)(ia0 >> 8), (uint8_t)(ia0 >> 16),
                    (uint8_t)(ia0 >> 24), (uint8_t)ia1,        (uint8_t)(ia1 >> 8)};
  if ((ia0 | (ia1 & 0xFFFFu)) == 0) {
    static const uint8_t fallback[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}; /* locally administered */
    memcpy(mac, fallback, sizeof mac);
    ETH_IA0 = (uint32_t)mac[0] | (uint32_t)mac[1] << 8 | (uint32_t)mac[2] << 16 | (uint32_t)mac[3] << 24;
    ETH_IA1 = (uint32_t)mac[4] | (uint32_t)mac[5] << 8;
  }
  ETH_THR = ETH_THR_OFF;
  ETH_TCTL = ETH_TCTL_TXEN | ETH_TCTL_PADEN | ETH_TCTL_CRC | ETH_TCTL_DUPLEX;
  ETH_RCTL = ETH_RCTL_RXEN | ETH_RCTL_AMUL | ETH_RCTL_BADCRC;

  netif->name[0] = 'e';
  netif->name[1] = 'n';
  netif->mtu = 1500;
  netif->hwaddr_len = 6;
  memcpy(netif->hwaddr, mac, sizeof mac);
  /* QEMU's PHY is not modelled and the link counts as up from reset. */
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
  netif->output = etharp_output;
  netif->linkoutput = eth_linkoutput;
#if LWIP_IPV6
  netif->flags |= NETIF_FLAG_MLD6;
  netif->output_ip6 = ethip6_output;
#endif

  ETH_IM = ETH_INT_RX;
  LM3S_NVIC_ISER(LM3S_EMAC_IRQ / 32u) = 1u << (LM3S_EMAC_IRQ % 32u);
  log_line("stellaris_eth: MAC %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return ERR_OK;
}
