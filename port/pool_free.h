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
 * True when pbuf_alloc(PBUF_RAW, len, PBUF_POOL) finds its pbufs now. A
 * driver asks first and leaves the frame where it waits (its queue, the
 * controller's FIFO): a frame that waits for the pool is back-pressure, not
 * a failure, so lwIP's pool error counter counts only real ones.
 */
static inline int pool_has_room(u16_t len)
{
  return pool_free() >= (int)((len + PBUF_POOL_BUFSIZE - 1u) / PBUF_POOL_BUFSIZE);
}

#endif /* POSTERN_POOL_FREE_H */
