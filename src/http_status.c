/* http_status.c: counters by response status and the /_status JSON document. */
#include "http_status.h"

#include "http_conn.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "policy.h"
#include "postern_opts.h"
#include "storage.h"
#if POSTERN_TLS
#include "tls.h"
#endif

/* One counter per row of the status table, the last for any other status. */
static uint32_t status_counts[HTTP_STATUS_KNOWN + 1];
static uint32_t status_boot_ms;

/** Marks the start of service: uptime counts from here. */
void http_status_boot(void)
{
  status_boot_ms = sys_now();
}

uint32_t http_status_uptime_s(void)
{
  return (sys_now() - status_boot_ms) / 1000u;
}

/** Counts one response with this status. */
void http_status_count(int status)
{
  status_counts[http_status_slot(status)]++;
}

/* One memory line; size is the bytes of one element (0 for the heap). */
static void status_mem(wbuf_t *b, const char *name, const struct stats_mem *counters, size_t size, bool comma)
{
  /* A copy under lwIP's protection: with an RTOS, a driver's thread takes
   * pool pbufs (and counts them) while this runs in tcpip_thread. */
  struct stats_mem copy;
  SYS_ARCH_DECL_PROTECT(lev);
  SYS_ARCH_PROTECT(lev);
  copy = *counters;
  SYS_ARCH_UNPROTECT(lev);
  const struct stats_mem *m = &copy;
  wb_str(b, comma ? ",\"" : "\"");
  wb_str(b, name);
  wb_lit(b, "\":{\"size\":");
  wb_u64(b, size);
  wb_lit(b, ",\"used\":");
  wb_u64(b, m->used);
  wb_lit(b, ",\"max\":");
  wb_u64(b, m->max);
  wb_lit(b, ",\"avail\":");
  wb_u64(b, m->avail);
  wb_lit(b, ",\"err\":");
  wb_u64(b, m->err);
  wb_lit(b, "}");
}

/** Renders /_status: uptime, storage, memory high-water marks, connections, counters. */
void http_status_render(wbuf_t *b)
{
  static const struct {
    const char *name;
    memp_t pool;
  } pools[] = {
      {"tcp_pcb", MEMP_TCP_PCB},         {"tcp_pcb_listen", MEMP_TCP_PCB_LISTEN}, {"tcp_seg", MEMP_TCP_SEG},
      {"altcp_pcb", MEMP_ALTCP_PCB},     {"pbuf_pool", MEMP_PBUF_POOL},           {"pbuf_ref", MEMP_PBUF},
      {"sys_timeout", MEMP_SYS_TIMEOUT},
  };
  wb_lit(b, "{\"uptime_s\":");
  wb_u64(b, http_status_uptime_s());
  wb_lit(b, ",\"storage\":{\"capacity\":");
  wb_u64(b, storage_capacity());
  wb_lit(b, ",\"free\":");
  wb_u64(b, storage_free());
  wb_lit(b, "},\"memory\":{\"lwip\":{");
  status_mem(b, "heap", &lwip_stats.mem, 0, false);
  for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
    status_mem(b, pools[i].name, lwip_stats.memp[pools[i].pool], memp_pools[pools[i].pool]->size, true);
  }
  wb_lit(b, "},\"lua\":{\"in_use\":");
  wb_u64(b, policy_memory_in_use());
  wb_lit(b, ",\"live\":");
  wb_u64(b, policy_memory_live());
  wb_lit(b, ",\"high_water\":");
  wb_u64(b, policy_memory_high_water());
  wb_lit(b, ",\"cap\":");
  wb_u64(b, POSTERN_LUA_ARENA_SIZE);
  wb_lit(b, "},\"tls_heap\":");
#if POSTERN_TLS
  tls_stats_t t;
  tls_get_stats(&t);
  wb_lit(b, "{\"size\":");
  wb_u64(b, t.heap_size);
  wb_lit(b, ",\"in_use\":");
  wb_u64(b, t.heap_in_use);
  wb_lit(b, ",\"high_water\":");
  wb_u64(b, t.heap_high_water);
  wb_lit(b, "}},\"tls\":{\"sessions\":");
  wb_u64(b, t.sessions);
  wb_lit(b, ",\"high_water\":");
  wb_u64(b, t.sessions_high_water);
  wb_lit(b, ",\"max\":");
  wb_u64(b, t.sessions_max);
  wb_lit(b, ",\"handshakes\":");
  wb_u64(b, t.handshakes);
  wb_lit(b, ",\"failed\":");
  wb_u64(b, t.handshake_failures);
  wb_lit(b, ",\"refused_over_limit\":");
  wb_u64(b, t.refused_over_limit);
  wb_lit(b, "},\"connections\":{\"active\":");
#else
  wb_lit(b, "null},\"tls\":null,\"connections\":{\"active\":");
#endif
  wb_u64(b, http_conns_active());
  wb_lit(b, ",\"high_water\":");
  wb_u64(b, http_conns_high_water());
  wb_lit(b, ",\"max\":");
  wb_u64(b, POSTERN_MAX_CONNS);
  wb_lit(b, ",\"slot_bytes\":");
  wb_u64(b, http_conn_slot_bytes());
  wb_lit(b, "},\"responses\":{");
  bool first = true;
  for (size_t i = 0; i <= HTTP_STATUS_KNOWN; i++) {
    if (status_counts[i] == 0) {
      continue;
    }
    wb_str(b, first ? "\"" : ",\"");
    if (i < HTTP_STATUS_KNOWN) {
      wb_u64(b, (uint64_t)http_status_code(i));
    } else {
      wb_lit(b, "other");
    }
    wb_lit(b, "\":");
    wb_u64(b, status_counts[i]);
    first = false;
  }
  wb_lit(b, "}}\n");
}
