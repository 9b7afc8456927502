/* rtos_host.h: the host simulator with NO_SYS 0: lwIP's tcpip_thread, a slirp thread and a storage thread. */
#ifndef POSTERN_RTOS_HOST_H
#define POSTERN_RTOS_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/opt.h"
#include "storage.h"

#if !NO_SYS
/** How often tick() runs, in tcpip_thread: what the NO_SYS main loop does once a turn besides postern_poll(). */
#define RTOS_HOST_TICK_MS 100

/**
 * Runs the simulator until SIGINT or SIGTERM. tcpip_init(); start(arg) in
 * tcpip_thread (the netif, postern's services; nonzero: returns -1 at once);
 * then the slirp thread (every slirp call: slirp_netif_poll()), the storage
 * thread (postern_poll() in tcpip_thread, through tcpip_callback(), when the
 * medium's next step is due) and tick(arg) (NULL: none) every
 * RTOS_HOST_TICK_MS, an lwIP timer. On the signal both threads end, and
 * stop(arg) runs in tcpip_thread. Returns the signal, or -1.
 */
int rtos_host_run(int (*start)(void *arg), void (*tick)(void *arg), void (*stop)(void *arg), void *arg);

/*
 * The storage calls that may answer STORAGE_PENDING reach the backend
 * through these (board.mk links with -Wl,--wrap=storage_NAME): a pending
 * answer wakes the storage thread, which then polls until the medium is idle.
 * A backend written for an RTOS would signal its storage task itself.
 */
int __wrap_storage_open(const char *name, uint64_t length, storage_upload_t **out);
int __wrap_storage_write(storage_upload_t *u, const void *data, size_t len);
int __wrap_storage_commit(storage_upload_t *u, bool *replaced);
int __wrap_storage_remove(const char *name);
long __wrap_storage_read(storage_reader_t *r, void *buf, size_t len);
#endif /* !NO_SYS */

#endif /* POSTERN_RTOS_HOST_H */
