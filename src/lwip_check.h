/* lwip_check.h: the lwIP options postern depends on, checked at compile time against the firmware's lwipopts.h.
 *
 * A firmware that brings its own lwIP configuration learns here, at build
 * time, what to change: each #error names the option, the value needed and
 * why. Included once, by http_conn.c, after lwIP's opt.h and postern_opts.h.
 */
#ifndef POSTERN_LWIP_CHECK_H
#define POSTERN_LWIP_CHECK_H

#include "lwip/opt.h"
#include "postern_opts.h"

/* The server is written on altcp (plain TCP and TLS through one API) with
 * lwIP's raw callback API. */
#if !LWIP_TCP || !LWIP_ALTCP
#error "postern needs LWIP_TCP 1 and LWIP_ALTCP 1: every connection, plain or TLS, is an altcp pcb"
#endif
#if !LWIP_CALLBACK_API
#error "postern needs LWIP_CALLBACK_API 1: it runs on altcp's recv/sent/poll/err callbacks"
#endif

/* An answer is rendered only once this much send room is free (CONN_RESP_ROOM
 * in http_conn_int.h): with lwIP's default TCP_SND_BUF (2 * TCP_MSS, 1,072
 * bytes at the default MSS) there never is, and every request ends in 408. */
#if TCP_SND_BUF < 1536
#error \
    "TCP_SND_BUF must be at least 1536 bytes (4 * TCP_MSS recommended): postern renders an answer only when 1536 bytes of send room are free"
#endif
/* Answers and downloads wait for queue room below half of it, and keep two entries spare. */
#if TCP_SND_QUEUELEN < 8
#error \
    "TCP_SND_QUEUELEN must be at least 8 (4 * TCP_SND_BUF / TCP_MSS recommended): answers wait while half the queue is taken"
#endif
#if TCP_MSS < 536
#error "TCP_MSS must be at least 536: a download chunk and a listing entry are sized on it"
#endif

/* Received data: each connection holds up to POSTERN_CONN_PBUFS_MAX pool
 * pbufs at rest; the pool must hold them all, and one more segment. */
#if PBUF_POOL_SIZE < POSTERN_MAX_CONNS * POSTERN_CONN_PBUFS_MAX + 2
#error \
    "PBUF_POOL_SIZE must be at least POSTERN_MAX_CONNS * POSTERN_CONN_PBUFS_MAX + 2: every connection may hold its pool pbufs at once"
#endif
#if PBUF_POOL_BUFSIZE < TCP_MSS + 40
#error \
    "PBUF_POOL_BUFSIZE must hold a full segment (TCP_MSS + 40 bytes of headers): a request head of POSTERN_HEAD_MAX must fit POSTERN_CONN_PBUFS_MAX of them"
#endif

/* Pcbs: the connection pool, the 503 answers to those beyond it, the
 * self-test services; listeners for HTTP, HTTPS, echo and discard. */
#if MEMP_NUM_TCP_PCB < POSTERN_MAX_CONNS + 1
#error \
    "MEMP_NUM_TCP_PCB must be at least POSTERN_MAX_CONNS + 1 (2 * POSTERN_MAX_CONNS + POSTERN_SELFTEST_MAX_CONNS recommended): a client beyond the pool gets its 503 on a pcb of its own"
#endif
#if MEMP_NUM_TCP_PCB_LISTEN < 3 + POSTERN_TLS
#error \
    "MEMP_NUM_TCP_PCB_LISTEN must count postern's listeners: HTTP, HTTPS when POSTERN_TLS, and the echo and discard self-test services"
#endif

/* The heap: answers and unacknowledged segments, of which downloads leave POSTERN_HEAP_RESERVE free. */
#if MEM_LIBC_MALLOC
#error \
    "postern needs lwIP's own heap (MEM_LIBC_MALLOC 0): it keeps POSTERN_HEAP_RESERVE of it free for answers and ACKs"
#endif
#if !LWIP_STATS || !MEM_STATS || !MEMP_STATS
#error \
    "postern needs LWIP_STATS, MEM_STATS and MEMP_STATS 1: downloads read the heap's use, and /_status reports the pools"
#endif
#if POSTERN_HEAP_RESERVE + POSTERN_SEND_MAX > MEM_SIZE
#error \
    "MEM_SIZE must hold POSTERN_HEAP_RESERVE plus POSTERN_SEND_MAX: one download's queue and the reserve for everyone's answers"
#endif
#if MEM_SIZE < 4096
#error "MEM_SIZE must be at least 4096 bytes: answers, ACKs and a download's queue come from lwIP's heap"
#endif

#endif /* POSTERN_LWIP_CHECK_H */
