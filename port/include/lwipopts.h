/* lwipopts.h: postern's lwIP configuration, the same on every board (NO_SYS or tcpip_thread, altcp, fixed pools). */
#ifndef POSTERN_LWIPOPTS_H
#define POSTERN_LWIPOPTS_H

#include "postern_opts.h"

/* ---- System ----------------------------------------------------------
 * NO_SYS 1 (the default): one main loop, no OS. NO_SYS 0 (make NO_SYS=0, the
 * host's RTOS mode): lwIP's tcpip_thread runs lwIP, its timers and every
 * postern callback; drivers post frames to it with tcpip_input() and other
 * threads reach it only through tcpip_callback(). The raw and altcp APIs
 * stay the only ones: no netconn, no sockets. */
#ifndef NO_SYS
#define NO_SYS 1
#endif
#define LWIP_TIMERS 1
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#if NO_SYS
#define SYS_LIGHTWEIGHT_PROT 0
#else
/* Pools and pbufs are taken from the driver thread too (the netif's input). */
#define SYS_LIGHTWEIGHT_PROT 1
/* No core lock: nothing outside tcpip_thread calls lwIP, so every raw API
 * call is checked to come from it (LWIP_ASSERT_CORE_LOCKED, implemented by
 * the sys_arch: lwIP's unix port, or the RTOS's). */
#define LWIP_TCPIP_CORE_LOCKING 0
void sys_check_core_locking(void);
#define LWIP_ASSERT_CORE_LOCKED() sys_check_core_locking()
/* tcpip_thread's stack: a policy decision (Lua) and a TLS handshake
 * (mbedTLS, ECDSA P-256) run on it. The host measures its use (README). */
#ifndef TCPIP_THREAD_STACKSIZE
#define TCPIP_THREAD_STACKSIZE (16 * 1024)
#endif
#ifndef TCPIP_THREAD_PRIO
#define TCPIP_THREAD_PRIO 3
#endif
/* Every received frame in flight to tcpip_thread is one message and one
 * pool pbuf: as many messages as pbufs, and room for the callbacks. */
#define MEMP_NUM_TCPIP_MSG_INPKT PBUF_POOL_SIZE
#define MEMP_NUM_TCPIP_MSG_API 8
#define TCPIP_MBOX_SIZE (PBUF_POOL_SIZE + MEMP_NUM_TCPIP_MSG_API)
/* lwIP's own timers and one of the board's (the host's tick, rtos_host.c). */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 1)
/* Mailboxes of the netconn and socket APIs, which postern does not use. */
#define DEFAULT_RAW_RECVMBOX_SIZE 4
#define DEFAULT_UDP_RECVMBOX_SIZE 4
#define DEFAULT_TCP_RECVMBOX_SIZE 4
#define DEFAULT_ACCEPTMBOX_SIZE 4
#endif /* NO_SYS */

/* ---- Memory: lwIP's own heap and pools, never libc malloc ------------- */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#ifndef MEM_ALIGNMENT
#define MEM_ALIGNMENT 4
#endif
/* Heap for outgoing PBUF_RAM data (responses, unacked segments). */
#ifndef MEM_SIZE
#define MEM_SIZE (16 * 1024)
#endif

/* ---- Protocols --------------------------------------------------------- */
#define LWIP_IPV4 1
/* Dual stack: POSTERN_IPV6 comes from the Makefile's IPV6 (each board picks its default). */
#ifndef POSTERN_IPV6
#define POSTERN_IPV6 1
#endif
#define LWIP_IPV6 POSTERN_IPV6
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define LWIP_TCP 1
#define LWIP_ALTCP 1
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_SINGLE_NETIF 1
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define ARP_TABLE_SIZE 4
/* Several connections can open before the peer's address is resolved: keep
 * every SYN-ACK waiting for it, not only the last (the others would wait
 * for the peer's SYN retransmission, 3 s on QEMU's network). */
#define ARP_QUEUEING 1
#define MEMP_NUM_ARP_QUEUE 8

/* ---- IPv6: a link-local address, then one by SLAAC from the router's
 * advertisement (libslirp and QEMU announce fec0::/64). MLD joins the
 * solicited-node groups, which tells the netif's MAC filter which multicast
 * frames ND needs (netif->mld_mac_filter). No fragments either way, as on
 * IPv4; the caches are as small as the ARP table. */
#if LWIP_IPV6
#define LWIP_ICMP6 1
#define LWIP_IPV6_MLD 1
#define LWIP_IPV6_AUTOCONFIG 1
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 1
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_FRAG 0
#define LWIP_IPV6_REASS 0
#define LWIP_IPV6_NUM_ADDRESSES 3 /* link-local, SLAAC, one spare for a second prefix */
#define LWIP_ND6_NUM_NEIGHBORS 4
#define LWIP_ND6_NUM_DESTINATIONS 4
#define LWIP_ND6_NUM_PREFIXES 2
#define LWIP_ND6_NUM_ROUTERS 2
#define LWIP_ND6_QUEUEING 1
#define MEMP_NUM_ND6_QUEUE 8 /* as MEMP_NUM_ARP_QUEUE: SYN-ACKs waiting for the peer's address */
#define MEMP_NUM_MLD6_GROUP 4
#define LWIP_ND6_RDNSS_MAX_DNS_SERVERS 0
#endif /* LWIP_IPV6 */

/* ---- TCP ---------------------------------------------------------------
 * The receive window is sized to what the slowest board can buffer: the
 * mps2-an385's LAN9118 RX FIFO holds 10,560 bytes, so a full window of
 * maximum-size frames (1514 bytes each) must fit in it. */
#define TCP_MSS 1460
#ifndef TCP_WND
#define TCP_WND (6 * TCP_MSS)
#endif
#ifndef TCP_SND_BUF
#define TCP_SND_BUF (4 * TCP_MSS)
#endif
#define TCP_SND_QUEUELEN ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
/* A consumed full segment is acknowledged at once, with the window it
 * reopened. lwIP's default threshold, TCP_WND / 4, is 1.5 segments with this
 * window, so the ACK of a lone segment waited for the delayed-ACK tick
 * (tcp_fasttmr, up to 250 ms) unless data going out carried it. A sender in
 * slow start has one segment in flight and waits as long: libslirp's BSD TCP
 * (simulator, QEMU) starts at one segment and again after an idle second,
 * so the first body segment after a pause stalled. tcp_recved() reopens the
 * window only by whole segments (lwIP's silly-window rule, min(TCP_WND / 2,
 * MSS)): a head shorter than a segment still leaves its ACK to the response,
 * or to ack_now() when nothing answers it (port/ack_now.c). */
#define TCP_WND_UPDATE_THRESHOLD TCP_MSS
/* Segments past a lost one are kept, up to 4 pbufs per connection; a few
 * connections can so fill the pool, and the drivers then give such queues
 * back for the frame that waits (pool_has_room(), port/pool_free.c). */
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_PBUFS 4
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG (2 * POSTERN_MAX_CONNS) /* SYNs of a burst wait in SYN_RCVD, not dropped */
#define LWIP_TCP_KEEPALIVE 0
#define LWIP_WND_SCALE 0
#define TCP_OVERSIZE TCP_MSS

/* HTTP connections, as many again for connections beyond the pool that are
 * being answered 503 and closed (a missing pcb drops the SYN, and the client
 * only retries a second later), plus the self-test connections (whose pcbs
 * HTTP takes over when the pool runs out: src/selftest.c). */
#ifndef MEMP_NUM_TCP_PCB
#define MEMP_NUM_TCP_PCB (2 * POSTERN_MAX_CONNS + POSTERN_SELFTEST_MAX_CONNS)
#endif
#define MEMP_NUM_TCP_PCB_LISTEN 4
#ifndef MEMP_NUM_TCP_SEG
#define MEMP_NUM_TCP_SEG (2 * TCP_SND_QUEUELEN)
#endif
/* A TLS connection is two altcp pcbs (TLS over TCP), and so is its listener. */
#if POSTERN_TLS
#define MEMP_NUM_ALTCP_PCB (MEMP_NUM_TCP_PCB + MEMP_NUM_TCP_PCB_LISTEN + POSTERN_MAX_TLS_CONNS + 1)
#else
#define MEMP_NUM_ALTCP_PCB (MEMP_NUM_TCP_PCB + MEMP_NUM_TCP_PCB_LISTEN)
#endif

/* ---- Receive pbufs (the netif's frames land here) --------------------- */
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 24
#endif
#define PBUF_POOL_BUFSIZE LWIP_MEM_ALIGN_SIZE(TCP_MSS + 40 + PBUF_LINK_ENCAPSULATION_HLEN + PBUF_LINK_HLEN)

/* ---- Checksums: computed in software on every board ------------------- */
#define LWIP_CHECKSUM_ON_COPY 1

/* ---- Statistics: /_status reports pool and heap high-water marks ------ */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define MEM_STATS 1
#define MEMP_STATS 1
#define TCP_STATS 0
#define IP_STATS 0
#define ETHARP_STATS 0
#define LINK_STATS 1
#define ICMP_STATS 0
#define ICMP6_STATS 0
#define IP6_STATS 0
#define ND6_STATS 0
#define MLD6_STATS 0
#define SYS_STATS 0

/* ---- Debug ------------------------------------------------------------- */
#define LWIP_DBG_TYPES_ON 0

#endif /* POSTERN_LWIPOPTS_H */
