/* pool_free.c: gives the receive pool back what out-of-sequence segments hold when a frame waits for it. */
#include "pool_free.h"

#include "lwip/opt.h"
#include "lwip/priv/tcp_priv.h"
#if !NO_SYS
#include "lwip/tcpip.h"
#endif

#if LWIP_TCP && TCP_QUEUE_OOSEQ

static volatile u8_t pool_reclaim_queued; /* NO_SYS 0: a call is on its way to tcpip_thread */

/* In lwIP's context: the first pcb that holds out-of-sequence segments drops
 * them. Its sender retransmits them; a frame that waited can come in. */
static void pool_reclaim_now(void *arg)
{
  (void)arg;
  pool_reclaim_queued = 0;
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
    if (pcb->ooseq != NULL) {
      tcp_free_ooseq(pcb);
      return;
    }
  }
}

void pool_reclaim(void)
{
#if NO_SYS
  pool_reclaim_now(NULL);
#else
  if (!pool_reclaim_queued) {
    pool_reclaim_queued = 1;
    if (tcpip_try_callback(pool_reclaim_now, NULL) != ERR_OK) {
      pool_reclaim_queued = 0; /* the mailbox is full: the driver's next try asks again */
    }
  }
#endif
}

#else

void pool_reclaim(void)
{
}

#endif /* LWIP_TCP && TCP_QUEUE_OOSEQ */
