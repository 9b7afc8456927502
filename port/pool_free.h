/* pool_free.h: free pbufs in lwIP's pool, read under lwIP's protection (an RTOS driver thread takes them too). */
#ifndef POSTERN_POOL_FREE_H
#define POSTERN_POOL_FREE_H

#include "lwip/memp.h"
#include "lwip/stats.h"
#include "lwip/sys.h"

/** Pbufs of PBUF_POOL not in use now (MEMP_STATS). */
static inline int pool_free(void)
{
  SYS_ARCH_DECL_PROTECT(lev);
  SYS_ARCH_PROTECT(lev);
  int n = lwip_stats.memp[MEMP_PBUF_POOL]->avail - lwip_stats.memp[MEMP_PBUF_POOL]->used;
  SYS_ARCH_UNPROTECT(lev);
  return n;
}

/**
 * Frees out-of-sequence segments (one pcb's) to make room for a frame that
 * waits. lwIP does this itself only when pbuf_alloc() fails, which
 * pool_has_room() spares it. With NO_SYS it runs at once (the driver polls
 * in lwIP's context); otherwise it is posted to tcpip_thread.
 */
void pool_reclaim(void);

/**
 * True when pbuf_alloc(PBUF_RAW, len, PBUF_POOL) finds its pbufs now. A
 * driver asks first and leaves the frame where it waits (its queue, the
 * controller's FIFO): a frame that waits for the pool is back-pressure, not
 * a failure, so lwIP's pool error counter counts only real ones.
 *
 * Short of room, it first gives back out-of-sequence segments
 * (pool_reclaim; with NO_SYS they are free before it answers). A few
 * connections that each queue segments past a lost one can fill the pool,
 * and then the one segment that would let them drain never comes in: lwIP
 * drops such queues only at its out-of-sequence timeout, six retransmission
 * timeouts later (17 s on the mps2-an385).
 */
static inline int pool_has_room(u16_t len)
{
  int need = (int)((len + PBUF_POOL_BUFSIZE - 1u) / PBUF_POOL_BUFSIZE);
  if (pool_free() >= need) {
    return 1;
  }
  pool_reclaim();
  return pool_free() >= need;
}

#endif /* POSTERN_POOL_FREE_H */
