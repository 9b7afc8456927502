/* main.c: the mps2-an385 firmware: board, storage, policy, lwIP over the LAN9118, the NO_SYS main loop. */
#include <string.h>

#include "baked.h"
#include "board.h"
#include "flash_model.h"
#include "http_conn.h"
#include "ipv6.h"
#include "lan9118.h"
#include "log.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "policy.h"
#include "selftest.h"
#include "storage.h"
#include "storage_flash.h"
#if POSTERN_TLS
#include "tls.h"
#endif

/* Static addressing on QEMU's user-mode network. */
#define MAIN_IP "10.0.2.15"
#define MAIN_MASK "255.255.255.0"
#define MAIN_GW "10.0.2.2"

static flash_model_t main_medium;
static struct netif main_netif;

/* Creates the policy VM with the baked settings and runs the baked script. */
static int main_load_policy(void)
{
  if (policy_init(baked_setting_names, baked_setting_values, baked_setting_count) != 0) {
    log_line("postern: cannot create the Lua VM");
    return -1;
  }
  if (policy_load(baked_policy_name, baked_policy, baked_policy_len) != 0) {
    log_line("postern: policy %s did not load; not starting", baked_policy_name);
    return -1;
  }
  log_line("postern: policy %s loaded (Lua arena %u bytes in use)", baked_policy_name,
           (unsigned)policy_memory_in_use());
  return 0;
}

#if POSTERN_TLS
/* Starts HTTPS on device port 443 with the baked certificate and key (CERT=, KEY=, CLIENT_CA=). */
static int main_start_tls(void)
{
  tls_server_params_t p = {
    .cert = baked_tls_cert,
    .cert_len = baked_tls_cert_len,
    .key = baked_tls_key,
    .key_len = baked_tls_key_len,
  };
  if (baked_tls_client_ca_len > 0) {
    p.client_ca = baked_tls_client_ca;
    p.client_ca_len = baked_tls_client_ca_len;
    p.client_cert = baked_tls_client_cert_required ? TLS_CLIENT_CERT_REQUIRED : TLS_CLIENT_CERT_OPTIONAL;
  }
  if (tls_server_init(&p) != 0) {
    log_line("postern: TLS did not start; not starting");
    return -1;
  }
  if (http_listen(tls_allocator(), 443) != ERR_OK) {
    log_line("postern: cannot listen on device port 443");
    return -1;
  }
  log_line("postern: https on device port 443%s", p.client_ca == NULL ? ""
                                                   : baked_tls_client_cert_required ? ", client certificates required"
                                                                                    : ", client certificates optional");
  return 0;
}
#endif /* POSTERN_TLS */

/* At most once a second, logs the main stack's high-water mark when it has grown. */
static void main_watch_stack(void)
{
  static uint32_t last_check, reported;
  uint32_t now = sys_now();
  if (now - last_check < 1000u) {
    return;
  }
  last_check = now;
  uint32_t hw = board_stack_high_water();
  if (hw > reported) {
    reported = hw;
    log_line("postern: main stack high water %u of %u bytes", (unsigned)hw, (unsigned)board_stack_size());
  }
}

/* What storage_poll() last answered: how long the medium can wait for the next step. */
static uint32_t main_storage_wait = STORAGE_POLL_IDLE;

/* Work for the loop without sleeping: frames waiting, or a medium that wants its next step within a tick. */
static int main_busy(void)
{
  return lan9118_rx_pending() || main_storage_wait < BOARD_TICK_MS;
}

/* The flash's timing, baked into the image (FLASH_TIMING=instant|nor|slow). */
static void main_flash_timing(void)
{
  const flash_timing_t *t = flash_timing_find(baked_flash_timing);
  if (t == NULL) {
    board_panic("unknown FLASH_TIMING", 0);
  }
  flash_model_set_timing(&main_medium, t, board_now_us);
  log_line("postern: flash timing '%s': %u us per erase, %u us per %u-byte program unit", t->name,
           (unsigned)t->erase_us, (unsigned)t->unit_us, (unsigned)FLASH_PROG_UNIT);
}

/* QEMU's memory starts zeroed; a new flash part comes erased (all ones). */
static void main_fresh_medium(void)
{
  for (uint32_t i = 0; i < baked_medium_size; i++) {
    if (baked_medium[i] != 0) {
      return;
    }
  }
  memset(baked_medium, 0xFF, baked_medium_size);
}

int main(void)
{
  board_init();
  log_line("postern: mps2-an385 image '%s' booting", baked_variant);
  main_fresh_medium();
  flash_model_init(&main_medium, baked_medium, baked_medium_size);
  main_flash_timing();
  if (storage_flash_init(&main_medium) != 0) {
    board_panic("storage did not start", 0);
  }
  if (main_load_policy() != 0) {
    board_panic("policy did not load", 0);
  }
  lwip_init();
  ip4_addr_t ip, mask, gw;
  ip4addr_aton(MAIN_IP, &ip);
  ip4addr_aton(MAIN_MASK, &mask);
  ip4addr_aton(MAIN_GW, &gw);
  if (netif_add(&main_netif, &ip, &mask, &gw, NULL, lan9118_netif_init, ethernet_input) == NULL) {
    board_panic("no network interface", 0);
  }
  netif_set_default(&main_netif);
  netif_set_up(&main_netif);
  ipv6_start(&main_netif, true); /* link-local now, SLAAC once QEMU's router advertisement comes */
  if (selftest_start(0) != ERR_OK) {
    board_panic("cannot start the self-test services", 0);
  }
  if (http_listen(NULL, 80) != ERR_OK) {
    board_panic("cannot listen on port 80", 0);
  }
#if POSTERN_TLS
  if (main_start_tls() != 0) {
    board_panic("cannot start HTTPS", 0);
  }
#else
  log_line("postern: built without TLS (TLS=0): no https on device port 443");
#endif /* POSTERN_TLS */
  log_line("postern: echo on device port 7, discard on device port 9");
  log_line("postern: ready (lwIP %s, device %s%s)", LWIP_VERSION_STRING, MAIN_IP,
           LWIP_IPV6 ? " and IPv6 by SLAAC" : "");

  /* The NO_SYS main loop: interrupts only queue frames; lwIP and the medium work run here. */
  for (;;) {
    lan9118_poll(&main_netif);
    sys_check_timeouts();
    main_storage_wait = storage_poll();
    ipv6_poll(&main_netif);
    main_watch_stack();
    board_idle(main_busy);
  }
}
