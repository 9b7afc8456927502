/* main.c: the mps2-an385 firmware: board bring-up, the flash medium, lwIP over the LAN9118, postern, the NO_SYS main loop. */
#include <string.h>

#include "baked.h"
#include "board_bench.h"
#include "board.h"
#include "flash_model.h"
#include "ipv6.h"
#include "lan9118.h"
#include "log.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "policy_store.h"
#include "postern.h"
#include "storage_flash.h"

/* Static addressing on QEMU's user-mode network. */
#define MAIN_IP "10.0.2.15"
#define MAIN_MASK "255.255.255.0"
#define MAIN_GW "10.0.2.2"

static flash_model_t main_medium;
static struct netif main_netif;

/* A policy accepted by PUT /_policy stays in the policy's RAM buffer: it runs until reset. */
int policy_store_save(const char *source, size_t len)
{
  (void)source;
  (void)len;
  return POLICY_STORE_RAM;
}

/* postern with what the image bakes: the policy and settings, HTTP on 80, HTTPS on 443 (CERT=, KEY=, CLIENT_CA=). */
static int main_start_postern(void)
{
  postern_config_t cfg = {
      .policy_name = baked_policy_name,
      .policy = baked_policy,
      .policy_len = baked_policy_len,
      .setting_names = baked_setting_names,
      .setting_values = baked_setting_values,
      .n_settings = baked_setting_count,
      .http_port = 80,
      .selftest = true,
  };
#if POSTERN_TLS
  postern_tls_t tls = {
      .cert = baked_tls_cert,
      .cert_len = baked_tls_cert_len,
      .key = baked_tls_key,
      .key_len = baked_tls_key_len,
  };
  if (baked_tls_client_ca_len > 0) {
    tls.client_ca = baked_tls_client_ca;
    tls.client_ca_len = baked_tls_client_ca_len;
    tls.client_cert_required = baked_tls_client_cert_required;
  }
  cfg.https_port = 443;
  cfg.tls = &tls;
#else
  log_line("postern: built without TLS (TLS=0): no https on device port 443");
#endif
  return postern_start(&cfg);
}

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
  if (main_start_postern() != 0) {
    board_panic("postern did not start", 0);
  }
  log_line("postern: echo on device port 7, discard on device port 9");
  log_line("postern: ready (lwIP %s, device %s%s)", LWIP_VERSION_STRING, MAIN_IP,
           LWIP_IPV6 ? " and IPv6 by SLAAC" : "");

  /* The NO_SYS main loop: interrupts only queue frames; lwIP and the medium work run here. */
#if POSTERN_BENCH
  bench_boot();
#endif
  for (;;) {
#if POSTERN_BENCH
    bench_poll(lan9118_poll(&main_netif));
#else
    lan9118_poll(&main_netif);
#endif
    sys_check_timeouts();
    main_storage_wait = postern_poll();
    ipv6_poll(&main_netif);
    main_watch_stack();
    board_idle(main_busy);
  }
}
