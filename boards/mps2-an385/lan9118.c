/* lan9118.c: lwIP netif driver for the SMSC LAN9118 (QEMU's model on the mps2-an385): RX by interrupt into a frame queue, TX through the FIFO. */
#include "lan9118.h"

#include <stdbool.h>
#include <string.h>

#include "board_opts.h"
#include "log.h"
#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "mps2_an385.h"
#include "netif/ethernet.h"
#include "pool_free.h"
#if LWIP_IPV6
#include "lwip/ethip6.h"
#endif

/* ---- Registers (offsets from MPS2_LAN9118_BASE) ------------------------ */
#define LAN_REG(off) MPS2_REG(MPS2_LAN9118_BASE + (off))
#define LAN_RX_DATA LAN_REG(0x00u)
#define LAN_TX_DATA LAN_REG(0x20u)
#define LAN_RX_STATUS LAN_REG(0x40u)
#define LAN_TX_STATUS LAN_REG(0x48u)
#define LAN_ID_REV LAN_REG(0x50u)
#define LAN_IRQ_CFG LAN_REG(0x54u)
#define LAN_INT_STS LAN_REG(0x58u)
#define LAN_INT_EN LAN_REG(0x5Cu)
#define LAN_BYTE_TEST LAN_REG(0x64u)
#define LAN_FIFO_INT LAN_REG(0x68u)
#define LAN_RX_CFG LAN_REG(0x6Cu)
#define LAN_TX_CFG LAN_REG(0x70u)
#define LAN_HW_CFG LAN_REG(0x74u)
#define LAN_RX_FIFO_INF LAN_REG(0x7Cu)
#define LAN_TX_FIFO_INF LAN_REG(0x80u)
#define LAN_PMT_CTRL LAN_REG(0x84u)
#define LAN_MAC_CSR_CMD LAN_REG(0xA4u)
#define LAN_MAC_CSR_DATA LAN_REG(0xA8u)

#define LAN_IRQ_CFG_EN (1u << 8)
#define LAN_IRQ_CFG_POL_HIGH (1u << 4)  /* active high ... */
#define LAN_IRQ_CFG_PUSH_PULL (1u << 0) /* ... push-pull: the level QEMU passes on as is */
#define LAN_INT_RSFL (1u << 3)          /* RX status FIFO above its level (FIFO_INT[7:0] = 0: one frame) */
#define LAN_INT_RXE (1u << 14)
#define LAN_INT_ALL 0xFFFFFFFFu
#define LAN_HW_CFG_SRST (1u << 0)
#define LAN_PMT_CTRL_READY (1u << 0)
#define LAN_TX_CFG_TX_ON (1u << 1)
#define LAN_TX_CFG_TXSAO (1u << 2) /* TX status FIFO may overflow: statuses are not read */
#define LAN_MAC_CSR_BUSY (1u << 31)
#define LAN_MAC_CSR_READ (1u << 30)
#define LAN_RX_STS_ERROR (1u << 15)
#define LAN_RX_STS_LEN(s) (((s) >> 16) & 0x3FFFu)
#define LAN_RX_INF_STATUS_USED(i) (((i) >> 16) & 0xFFu)
#define LAN_TX_INF_DATA_FREE(i) ((i)&0xFFFFu)
#define LAN_TX_CMDA_FIRST (1u << 13)
#define LAN_TX_CMDA_LAST (1u << 12)

/* MAC control and status registers, behind MAC_CSR_CMD/DATA. */
#define LAN_MAC_CR 1u
#define LAN_MAC_ADDRH 2u
#define LAN_MAC_ADDRL 3u
#define LAN_MAC_HASHH 4u
#define LAN_MAC_HASHL 5u
#define LAN_MAC_CR_TXEN (1u << 3)
#define LAN_MAC_CR_RXEN (1u << 2)
#define LAN_MAC_CR_FDPX (1u << 20)
#define LAN_MAC_CR_HPFILT (1u << 13) /* multicast frames through the hash filter, not exact matching */

/** Polls of a self-clearing bit before the controller counts as absent. */
#define LAN_SPIN_MAX 100000u

/** Frames the interrupt may queue ahead of the main loop; the RX FIFO (10,560 bytes) holds the rest. */
#ifndef LAN9118_RX_SLOTS
#define LAN9118_RX_SLOTS 4
#endif

static uint8_t lan_rx_frames[LAN9118_RX_SLOTS][FRAMEQ_FRAME_MAX] __attribute__((aligned(4)));
static uint16_t lan_rx_lengths[LAN9118_RX_SLOTS];
static frameq_t lan_rxq;
static uint32_t lan_tx_words[(FRAMEQ_FRAME_MAX + 3) / 4];    /* one outgoing frame, word aligned */
static uint32_t lan_rx_word_buf[(FRAMEQ_FRAME_MAX + 8) / 4]; /* one incoming frame and its CRC */
static volatile bool lan_rx_paused;                          /* the interrupt stopped draining: the queue was full */
#if LWIP_IPV6
static uint8_t lan_hash_users[64]; /* multicast groups that share each bit of HASHH:HASHL */
#endif

static void lan_irq_enable(bool on)
{
  if (on) {
    MPS2_NVIC_ISER(0) = 1u << MPS2_LAN9118_IRQ;
  } else {
    MPS2_NVIC_ICER(0) = 1u << MPS2_LAN9118_IRQ;
    __asm volatile("dsb\nisb" ::: "memory");
  }
}

/* Waits while `bit` of the register at `reg` equals `busy_value`; false on timeout. */
static bool lan_wait(volatile uint32_t *reg, uint32_t bit, uint32_t busy_value)
{
  for (uint32_t i = 0; i < LAN_SPIN_MAX; i++) {
    if ((*reg & bit) != busy_value) {
      return true;
    }
  }
  return false;
}

static bool lan_mac_write(uint32_t reg, uint32_t value)
{
  LAN_MAC_CSR_DATA = value;
  LAN_MAC_CSR_CMD = LAN_MAC_CSR_BUSY | reg;
  return lan_wait(&LAN_MAC_CSR_CMD, LAN_MAC_CSR_BUSY, LAN_MAC_CSR_BUSY);
}

static bool lan_mac_read(uint32_t reg, uint32_t *value)
{
  LAN_MAC_CSR_CMD = LAN_MAC_CSR_BUSY | LAN_MAC_CSR_READ | reg;
  if (!lan_wait(&LAN_MAC_CSR_CMD, LAN_MAC_CSR_BUSY, LAN_MAC_CSR_BUSY)) {
    return false;
  }
  *value = LAN_MAC_CSR_DATA;
  return true;
}

/*
 * Moves whole frames from the RX FIFO into the queue while it has room.
 * Runs in the interrupt, or in the main loop with the interrupt masked.
 * Returns true when the FIFO is empty, false when the queue filled first
 * (the frames then wait in the controller's FIFO).
 */
static bool lan_drain_fifo(void)
{
  while (LAN_RX_INF_STATUS_USED(LAN_RX_FIFO_INF) != 0) {
    if (frameq_count(&lan_rxq) >= lan_rxq.slots) {
      return false;
    }
    uint32_t status = LAN_RX_STATUS;
    uint32_t len = LAN_RX_STS_LEN(status); /* the frame and its 4-byte CRC */
    uint32_t words = (len + 3u) / 4u;
    if ((status & LAN_RX_STS_ERROR) != 0 || len < 4u + 14u || words > sizeof lan_rx_word_buf / 4u) {
      /* Skip the frame by reading it out (QEMU's fast-forward does not free the FIFO space). */
      for (uint32_t i = 0; i < words; i++) {
        (void)LAN_RX_DATA;
      }
      LINK_STATS_INC(link.err);
      continue;
    }
    for (uint32_t i = 0; i < words; i++) {
      lan_rx_word_buf[i] = LAN_RX_DATA;
    }
    frameq_push(&lan_rxq, lan_rx_word_buf, len - 4u); /* the CRC stays behind */
  }
  return true;
}

/** Interrupt: acknowledges RSFL, then drains the FIFO into the queue; when the queue is full the
 *  interrupt is left off and the main loop finishes the drain (lan9118_poll). */
void lan9118_isr(void)
{
  LAN_INT_STS = LAN_INT_RSFL | LAN_INT_RXE; /* acknowledge first: a frame arriving now raises it again */
  if (!lan_drain_fifo()) {
    LAN_INT_EN = 0; /* the main loop re-enables it once the queue has room */
    lan_rx_paused = true;
  }
}

/** True when received frames wait for lan9118_poll(). */
int lan9118_rx_pending(void)
{
  return frameq_count(&lan_rxq) != 0 || lan_rx_paused;
}

/** Feeds queued frames to lwIP, oldest first; resumes a drain the interrupt had to leave. */
int lan9118_poll(struct netif *netif)
{
  int fed = 0;
  for (;;) {
    size_t len;
    const uint8_t *frame = frameq_peek(&lan_rxq, &len);
    if (frame == NULL) {
      break;
    }
    struct pbuf *p = pool_has_room((u16_t)len) ? pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL) : NULL;
    if (p == NULL) {
      LINK_STATS_INC(link.memerr);
      break; /* the frame stays queued until pbufs come back */
    }
    pbuf_take(p, frame, (u16_t)len);
    frameq_pop(&lan_rxq);
    LINK_STATS_INC(link.recv);
    fed++;
    if (netif->input(p, netif) != ERR_OK) {
      pbuf_free(p);
    }
  }
  if (lan_rx_paused && frameq_count(&lan_rxq) < lan_rxq.slots) {
    lan_irq_enable(false);
    lan_rx_paused = false;
    LAN_INT_STS = LAN_INT_RSFL;
    LAN_INT_EN = LAN_INT_RSFL;
    if (LAN_RX_INF_STATUS_USED(LAN_RX_FIFO_INF) != 0) {
      /* Frames already waiting raise no new RSFL: let the interrupt drain them. */
      MPS2_NVIC_ISPR(0) = 1u << MPS2_LAN9118_IRQ;
    }
    lan_irq_enable(true);
  }
  return fed;
}

/** The receive queue: frames waiting, dropped and its high-water mark. */
const frameq_t *lan9118_rx_queue(void)
{
  return &lan_rxq;
}

#if LWIP_IPV6
/* The multicast hash filter's bit for a MAC address: the top 6 bits of the
 * Ethernet CRC-32 of the address (LSB first per byte, MSB-first register, as
 * the LAN9118 and QEMU's model compute it). */
static uint32_t lan_hash_bit(const uint8_t mac[6])
{
  uint32_t crc = 0xFFFFFFFFu;
  for (int i = 0; i < 6; i++) {
    uint8_t b = mac[i];
    for (int bit = 0; bit < 8; bit++, b >>= 1) {
      uint32_t carry = ((crc >> 31) ^ b) & 1u;
      crc <<= 1;
      if (carry) {
        crc ^= 0x04C11DB7u;
      }
    }
  }
  return crc >> 26;
}

/* MLD -> MAC filter: lets in (or stops letting in) the frames of an IPv6
 * multicast group, 33:33 and the group's low 32 bits. ND needs the all-nodes
 * group (router advertisements) and the solicited-node group of each address
 * (neighbor solicitations). A bit shared by two groups stays set while either
 * is joined. */
static err_t lan_mld_filter(struct netif *netif, const ip6_addr_t *group, enum netif_mac_filter_action action)
{
  (void)netif;
  uint32_t low = lwip_ntohl(group->addr[3]);
  const uint8_t mac[6] = {0x33, 0x33, (uint8_t)(low >> 24), (uint8_t)(low >> 16), (uint8_t)(low >> 8), (uint8_t)low};
  uint32_t bit = lan_hash_bit(mac);
  if (action == NETIF_ADD_MAC_FILTER) {
    if (lan_hash_users[bit] == UINT8_MAX) {
      return ERR_MEM;
    }
    if (lan_hash_users[bit]++ != 0) {
      return ERR_OK;
    }
  } else if (lan_hash_users[bit] == 0 || --lan_hash_users[bit] != 0) {
    return ERR_OK;
  }
  uint32_t hash[2] = {0, 0}; /* [0]: HASHL (bits 0-31), [1]: HASHH (32-63) */
  for (uint32_t i = 0; i < 64; i++) {
    if (lan_hash_users[i] != 0) {
      hash[i >> 5] |= 1u << (i & 31u);
    }
  }
  if (!lan_mac_write(LAN_MAC_HASHL, hash[0]) || !lan_mac_write(LAN_MAC_HASHH, hash[1])) {
    return ERR_IF;
  }
  return ERR_OK;
}
#endif /* LWIP_IPV6 */

/* lwIP -> wire: copies the frame into one word-aligned buffer and pushes it through the TX data FIFO. */
static err_t lan_linkoutput(struct netif *netif, struct pbuf *p)
{
  (void)netif;
  uint32_t len = p->tot_len;
  if (len > FRAMEQ_FRAME_MAX || len < 14u) {
    LINK_STATS_INC(link.drop);
    return ERR_BUF;
  }
  pbuf_copy_partial(p, lan_tx_words, (u16_t)len, 0);
  uint32_t words = (len + 3u) / 4u;
  /* Room for the two command words and the data; the FIFO empties as the frames go out. */
  uint32_t spins = 0;
  while (LAN_TX_INF_DATA_FREE(LAN_TX_FIFO_INF) < 4u * (words + 2u)) {
    if (++spins == LAN_SPIN_MAX) {
      LINK_STATS_INC(link.drop);
      return ERR_MEM;
    }
  }
  LAN_TX_DATA = LAN_TX_CMDA_FIRST | LAN_TX_CMDA_LAST | len; /* command A: one segment, no offset */
  LAN_TX_DATA = len;                                        /* command B: packet length, tag 0 */
  for (uint32_t i = 0; i < words; i++) {
    LAN_TX_DATA = lan_tx_words[i];
  }
  LINK_STATS_INC(link.xmit);
  return ERR_OK;
}

/** lwIP netif init: reset, identify, MAC address, TX/RX on, receive interrupt; see lan9118.h. */
err_t lan9118_netif_init(struct netif *netif)
{
  static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

  lan_irq_enable(false);
  frameq_init(&lan_rxq, lan_rx_frames, lan_rx_lengths, LAN9118_RX_SLOTS);
  uint32_t id = LAN_ID_REV;
  if ((id >> 16) != 0x0118u && (id >> 16) != 0x9220u) {
    log_line("lan9118: no controller (ID_REV 0x%08lx)", (unsigned long)id);
    return ERR_IF;
  }
  if (LAN_BYTE_TEST != 0x87654321u) {
    log_line("lan9118: BYTE_TEST mismatch: bus order is wrong");
    return ERR_IF;
  }
  LAN_HW_CFG = LAN_HW_CFG_SRST;
  if (!lan_wait(&LAN_HW_CFG, LAN_HW_CFG_SRST, LAN_HW_CFG_SRST) || !lan_wait(&LAN_PMT_CTRL, LAN_PMT_CTRL_READY, 0)) {
    log_line("lan9118: reset did not complete");
    return ERR_IF;
  }
  LAN_INT_EN = 0;
  LAN_INT_STS = LAN_INT_ALL;
  LAN_IRQ_CFG = LAN_IRQ_CFG_EN | LAN_IRQ_CFG_POL_HIGH | LAN_IRQ_CFG_PUSH_PULL;
  LAN_FIFO_INT = 0x48000000u; /* RX status level 0: interrupt for every frame; TX data available level 0x48 */
  LAN_RX_CFG = 0;             /* no offset, 4-byte end alignment */

  uint32_t addrl = (uint32_t)mac[0] | (uint32_t)mac[1] << 8 | (uint32_t)mac[2] << 16 | (uint32_t)mac[3] << 24;
  uint32_t addrh = (uint32_t)mac[4] | (uint32_t)mac[5] << 8;
  uint32_t check = 0;
  if (!lan_mac_write(LAN_MAC_ADDRH, addrh) || !lan_mac_write(LAN_MAC_ADDRL, addrl) ||
      !lan_mac_read(LAN_MAC_ADDRL, &check) || check != addrl) {
    log_line("lan9118: cannot program the MAC address");
    return ERR_IF;
  }
  /* Full duplex, TX and RX on; exact address and broadcast filtering (no promiscuous mode); with
   * IPv6, multicast through the hash filter, which starts empty (lan_mld_filter fills it). */
  uint32_t mac_cr = LAN_MAC_CR_FDPX | LAN_MAC_CR_TXEN | LAN_MAC_CR_RXEN;
#if LWIP_IPV6
  memset(lan_hash_users, 0, sizeof lan_hash_users);
  mac_cr |= LAN_MAC_CR_HPFILT;
  if (!lan_mac_write(LAN_MAC_HASHL, 0) || !lan_mac_write(LAN_MAC_HASHH, 0)) {
    log_line("lan9118: cannot clear the multicast hash filter");
    return ERR_IF;
  }
#endif
  if (!lan_mac_write(LAN_MAC_CR, mac_cr)) {
    log_line("lan9118: cannot enable the MAC");
    return ERR_IF;
  }
  LAN_TX_CFG = LAN_TX_CFG_TX_ON | LAN_TX_CFG_TXSAO;

  netif->name[0] = 'e';
  netif->name[1] = 'n';
  netif->mtu = 1500;
  netif->hwaddr_len = 6;
  memcpy(netif->hwaddr, mac, sizeof mac);
  /* QEMU's PHY reports the link up from reset; no MII polling is needed. */
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
  netif->output = etharp_output;
  netif->linkoutput = lan_linkoutput;
#if LWIP_IPV6
  netif->flags |= NETIF_FLAG_MLD6;
  netif->output_ip6 = ethip6_output;
  netif->mld_mac_filter = lan_mld_filter;
  /* lwIP answers the all-nodes group without joining it: the filter must pass it from the start. */
  ip6_addr_t all_nodes;
  ip6_addr_set_allnodes_linklocal(&all_nodes);
  lan_mld_filter(netif, &all_nodes, NETIF_ADD_MAC_FILTER);
#endif

  LAN_INT_EN = LAN_INT_RSFL;
  lan_irq_enable(true);
  log_line("lan9118: ID_REV 0x%08lx, MAC %02x:%02x:%02x:%02x:%02x:%02x", (unsigned long)id, mac[0], mac[1], mac[2],
           mac[3], mac[4], mac[5]);
  return ERR_OK;
}
