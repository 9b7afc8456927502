/* http_status.h: counters by response status and the /_status JSON document. */
#ifndef POSTERN_HTTP_STATUS_H
#define POSTERN_HTTP_STATUS_H

#include "http_response.h"

/** Marks the start of service: uptime counts from here. */
void http_status_boot(void);
/** Seconds since http_status_boot(). */
uint32_t http_status_uptime_s(void);
/** Counts one response with this status. */
void http_status_count(int status);
/** Renders /_status: uptime, storage, memory high-water marks, connections, counters. */
void http_status_render(wbuf_t *b);

#endif /* POSTERN_HTTP_STATUS_H */
