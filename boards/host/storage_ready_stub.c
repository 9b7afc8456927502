/* storage_ready_stub.c: TEMPORARY stand-in for the core's storage_ready() until http_conn.c has it (main). */
#include "storage.h"

/** Nothing pends without --storage-latency; with it, pending calls are never resumed by this stub. */
void storage_ready(void)
{
}
