/* postern.h: the integrator's API: postern on a firmware's lwIP, started with a configuration and the board's hooks.
 *
 * What the firmware does, in this order:
 *   1. brings up its board and its storage medium (the storage.h backend it
 *      links: host directory, flash, SD card, or its own);
 *   2. lwip_init() (NO_SYS) or tcpip_init() (an RTOS), and a netif that is up;
 *   3. postern_start() in lwIP's context (the NO_SYS main loop, or
 *      tcpip_thread through tcpip_callback());
 *   4. on every pass of its main loop, beside sys_check_timeouts():
 *      postern_poll(), which drives the storage medium's background work;
 *      its answer bounds how long the loop may sleep.
 *
 * The hooks the firmware links (no registration, one implementation each):
 *   - storage.h: the storage backend, with its time contract (every call may
 *     answer STORAGE_PENDING; storage_poll() resumes them);
 *   - platform.h: console, wall clock, random numbers and TLS entropy;
 *   - policy_store.h: where a policy (PUT /_policy) and settings (PUT
 *     /_config) accepted at run time are kept for the next boot, or not;
 *   - lwIP's own sys_now() and, with an RTOS, its sys_arch.
 *
 * postern's compile-time options live in postern_opts.h (a board overrides
 * them in its board_opts.h); the lwIP options it needs are checked against
 * the firmware's lwipopts.h by lwip_check.h, at build time.
 */
#ifndef POSTERN_H
#define POSTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "postern_opts.h"
#include "storage.h"

/** The HTTPS listener's credentials: PEM (NUL counted in the length) or DER; only read during postern_start(). */
typedef struct postern_tls {
  const uint8_t *cert; /* server certificate chain (ECDSA P-256) */
  size_t cert_len;
  const uint8_t *key; /* its private key */
  size_t key_len;
  const uint8_t *client_ca; /* CA of client certificates, or NULL: none asked */
  size_t client_ca_len;
  bool client_cert_required; /* with client_ca: refuse the handshake without a trusted certificate */
} postern_tls_t;

/** A policy script: Lua 5.4 source (text) and the name its error messages cite. */
typedef struct postern_policy {
  const char *name;
  const char *source;
  size_t len;
} postern_policy_t;

typedef struct postern_config {
  /* The built-in policy (the image's, or the --policy file). */
  const char *policy_name;
  const char *policy;
  size_t policy_len;
  /* Policies stored by PUT /_policy, the newest first, tried before the
   * built-in one: the first that loads runs. One that does not is handed to
   * stored_failed(index) (the board sets it aside) and the next is tried. */
  const postern_policy_t *stored;
  int n_stored;
  void (*stored_failed)(int index);
  /* Settings the policy reads as config.NAME. */
  const char *const *setting_names;
  const char *const *setting_values;
  int n_settings;
  /* Listeners, on any address of the netif; 0: none. */
  uint16_t http_port;
  uint16_t https_port; /* needs a build with POSTERN_TLS 1 and `tls` */
  const postern_tls_t *tls;
  /* The echo (7) and discard (9) services, for link tests; connections idle
   * for selftest_idle_s seconds close (0: POSTERN_SELFTEST_IDLE_S). */
  bool selftest;
  uint32_t selftest_idle_s;
} postern_config_t;

/**
 * Creates the policy VM and runs the first stored policy that loads, else
 * the built-in one (the console says which), starts TLS and opens the
 * listeners. Returns 0, or -1 with the reason on the console; after a
 * failure nothing listens (call postern_stop() before trying again).
 */
int postern_start(const postern_config_t *cfg);

/**
 * postern's own work in the main loop: the storage medium's next bounded
 * step (storage_poll()), which resumes connections waiting on it. Returns
 * the milliseconds the loop may sleep before calling again
 * (STORAGE_POLL_IDLE: until the network or lwIP's timers wake it).
 */
uint32_t postern_poll(void);

/** Closes the listeners and every connection (an upload in progress stores nothing) and the policy VM. */
void postern_stop(void);

/** What a firmware may read of a running postern (GET /_status shows the same and more). */
typedef struct postern_status {
  uint32_t uptime_s;
  uint32_t conns_active, conns_high_water;
  uint64_t storage_capacity, storage_free;
  size_t lua_in_use, lua_high_water; /* bytes of the Lua arena */
} postern_status_t;

void postern_get_status(postern_status_t *st);

#endif /* POSTERN_H */
