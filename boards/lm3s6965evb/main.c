/* main.c: the lm3s6965evb firmware: board bring-up, the SD card and its store, settings and policy from the card, lwIP over the Ethernet MAC, postern, the NO_SYS main loop. */
#include <string.h>

#include "baked.h"
#include "board.h"
#include "board_bench.h"
#include "ipv6.h"
#include "log.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "policy_store.h"
#include "postern.h"
#include "sd_spi.h"
#include "stellaris_eth.h"
#include "storage_sd.h"

/* Static addressing on QEMU's user-mode network. */
#define MAIN_IP "10.0.2.15"
#define MAIN_MASK "255.255.255.0"
#define MAIN_GW "10.0.2.2"

/* The card's settings and policy sectors (storage_sd.h's layout; scripts/card.py writes them). */
#define MAIN_MAGIC_SETTINGS 0x54455350u /* "PSET" */
#define MAIN_MAGIC_POLICY 0x4C4F5050u   /* "PPOL" */
#define MAIN_CARD_SECTOR 512u
#define MAIN_POLICY_NAME 32u

/* A settings or policy header sector: magic, length and CRC-32 of the text, then the settings' text or the policy's name. */
typedef struct __attribute__((aligned(4))) main_card_hdr {
  uint32_t magic, len, crc;
  char text[MAIN_CARD_SECTOR - 12];
} main_card_hdr_t;

static struct netif main_netif;
static blockdev_t main_card;
static char main_settings[MAIN_CARD_SECTOR - 12];
static const char *main_setting_names[POSTERN_MAX_SETTINGS];
static const char *main_setting_values[POSTERN_MAX_SETTINGS];
static char main_policy[POSTERN_POLICY_MAX] __attribute__((aligned(4)));
static char main_policy_name[MAIN_POLICY_NAME + 8];

/* A policy accepted by PUT /_policy stays in the policy's RAM buffer: it runs until reset. */
int policy_store_save(const char *source, size_t len)
{
  (void)source;
  (void)len;
  return POLICY_STORE_RAM;
}

/* Says what the store found on the card. */
static void main_storage_start(sd_spi_kind_t kind)
{
  storage_sd_state_t st = storage_sd_init(kind == SD_SPI_NONE ? NULL : &main_card);
  unsigned kib = (unsigned)(main_card.sectors / 2u);
  switch (st) {
  case STORAGE_SD_READY:
    log_line("storage: SD card (%s, %u KiB): %u of %u KiB free, clusters of %u bytes",
             kind == SD_SPI_SDHC ? "SDHC" : "SDSC", kib, (unsigned)(storage_free() / 1024u),
             (unsigned)(storage_capacity() / 1024u), (unsigned)storage_sd_cluster_bytes());
    if (storage_free() == 0) {
      log_line("storage: the SD card is full: uploads are refused (507) until files are removed");
    }
    return;
  case STORAGE_SD_NO_CARD:
    log_line("storage: no SD card: nothing is stored, uploads are refused (507)");
    return;
  case STORAGE_SD_TOO_SMALL:
    log_line("storage: the SD card is too small (%u KiB, at least %u KiB): nothing is stored, uploads are refused "
             "(507)",
             kib, (unsigned)(STORAGE_SD_MIN_SECTORS / 2u));
    return;
  case STORAGE_SD_FOREIGN:
    log_line("storage: the SD card holds no postern layout (sector 0 is not blank) and is left untouched: "
             "uploads are refused (507); make BOARD=lm3s6965evb card makes one");
    return;
  default:
    log_line("storage: the SD card failed while the store started: uploads are refused (507)");
    return;
  }
}

/* Reads a header sector into *h; true when it holds `magic` and a text of at most `max` bytes. */
static bool main_card_hdr(main_card_hdr_t *h, uint32_t lba, uint32_t magic, uint32_t max)
{
  return storage_sd_read_sync(lba, 1, h) && h->magic == magic && h->len <= max;
}

/* The settings on the card (NAME=VALUE lines), or the baked ones; returns the count and sets the arrays. */
static int main_card_settings(const char *const **names, const char *const **values)
{
  main_card_hdr_t main_sector; /* boot only: the stack is nearly empty */
  *names = baked_setting_names;
  *values = baked_setting_values;
  if (!main_card_hdr(&main_sector, STORAGE_SD_LBA_SETTINGS, MAIN_MAGIC_SETTINGS, sizeof main_settings - 1u)) {
    log_line("postern: no settings on the card: the %d baked ones", baked_setting_count);
    return baked_setting_count;
  }
  if (storage_sd_crc32(main_sector.text, main_sector.len) != main_sector.crc) {
    log_line("postern: the card's settings fail their CRC: the %d baked ones", baked_setting_count);
    return baked_setting_count;
  }
  memcpy(main_settings, main_sector.text, main_sector.len);
  main_settings[main_sector.len] = '\0';
  int n = 0;
  for (char *line = main_settings; *line != '\0' && n < POSTERN_MAX_SETTINGS;) {
    char *end = strchr(line, '\n');
    if (end != NULL) {
      *end = '\0';
    }
    char *eq = strchr(line, '=');
    if (eq != NULL && eq != line) {
      *eq = '\0';
      main_setting_names[n] = line;
      main_setting_values[n] = eq + 1;
      n++;
    }
    if (end == NULL) {
      break;
    }
    line = end + 1;
  }
  *names = main_setting_names;
  *values = main_setting_values;
  log_line("postern: %d settings from the card", n);
  return n;
}

/* The policy on the card into main_policy; its length, or 0 when there is none fit to run. */
static size_t main_card_policy(void)
{
  main_card_hdr_t main_sector; /* boot only */
  if (!main_card_hdr(&main_sector, STORAGE_SD_LBA_POLICY, MAIN_MAGIC_POLICY,
                     STORAGE_SD_POLICY_SECTORS * MAIN_CARD_SECTOR)) {
    log_line("postern: no policy on the card: the baked %s", baked_policy_name);
    return 0;
  }
  size_t len = main_sector.len;
  uint32_t crc = main_sector.crc;
  memcpy(main_policy_name, "card:", 5);
  memcpy(main_policy_name + 5, main_sector.text, MAIN_POLICY_NAME);
  main_policy_name[5 + MAIN_POLICY_NAME] = '\0';
  if (len > sizeof main_policy) {
    log_line("postern: the card's policy %s is %u bytes, more than the %u this board holds: the baked %s",
             main_policy_name, (unsigned)len, (unsigned)sizeof main_policy, baked_policy_name);
    return 0;
  }
  uint32_t sectors = (uint32_t)(len / MAIN_CARD_SECTOR);
  uint32_t tail = (uint32_t)(len % MAIN_CARD_SECTOR);
  /* Whole sectors straight into the buffer (one multiple-block read), the last part through the header's buffer. */
  bool ok = sectors == 0 || storage_sd_read_sync(STORAGE_SD_LBA_POLICY + 1u, sectors, main_policy);
  if (ok && tail > 0) {
    ok = storage_sd_read_sync(STORAGE_SD_LBA_POLICY + 1u + sectors, 1, &main_sector);
    memcpy(main_policy + sectors * MAIN_CARD_SECTOR, &main_sector, tail);
  }
  if (!ok || storage_sd_crc32(main_policy, len) != crc) {
    log_line("postern: the card's policy %s is unreadable or fails its CRC: the baked %s", main_policy_name,
             baked_policy_name);
    return 0;
  }
  return len;
}

/* A card policy that does not load: the built-in one runs (postern_start() says so). */
static void main_card_policy_failed(int index)
{
  (void)index;
  log_line("postern: the card's policy %s did not load: the baked %s runs", main_policy_name, baked_policy_name);
}

/* postern with the card's settings and policy, or the baked ones; HTTP on 80 (no HTTPS on this board). */
static int main_start_postern(void)
{
  postern_config_t cfg = {
      .policy_name = baked_policy_name,
      .policy = baked_policy,
      .policy_len = baked_policy_len,
      .http_port = 80,
      .selftest = true,
  };
  cfg.n_settings = main_card_settings(&cfg.setting_names, &cfg.setting_values);
  static postern_policy_t stored;
  stored.len = main_card_policy();
  if (stored.len > 0) {
    stored.name = main_policy_name;
    stored.source = main_policy;
    cfg.stored = &stored;
    cfg.n_stored = 1;
    cfg.stored_failed = main_card_policy_failed;
  }
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

/* What storage_poll() last answered: how long the card can wait for the next step. */
static uint32_t main_storage_wait = STORAGE_POLL_IDLE;

/* Work for the loop without sleeping: frames waiting, or a card transfer in progress. */
static int main_busy(void)
{
  return stellaris_eth_rx_pending() || main_storage_wait < BOARD_TICK_MS;
}

int main(void)
{
  board_init();
  log_line("postern: lm3s6965evb image '%s' booting", baked_variant);
  sd_spi_kind_t kind = sd_spi_init(&main_card);
  if (kind != SD_SPI_NONE) {
    log_line("sd: %s card, %lu sectors", kind == SD_SPI_SDHC ? "SDHC" : "SDSC", (unsigned long)main_card.sectors);
  }
  main_storage_start(kind);
  lwip_init();
  ip4_addr_t ip, mask, gw;
  ip4addr_aton(MAIN_IP, &ip);
  ip4addr_aton(MAIN_MASK, &mask);
  ip4addr_aton(MAIN_GW, &gw);
  if (netif_add(&main_netif, &ip, &mask, &gw, NULL, stellaris_eth_netif_init, ethernet_input) == NULL) {
    board_panic("no network interface", 0);
  }
  netif_set_default(&main_netif);
  netif_set_up(&main_netif);
  ipv6_start(&main_netif, true);
  if (main_start_postern() != 0) {
    board_panic("postern did not start", 0);
  }
  log_line("postern: built without TLS: HTTP only, no https on device port 443");
  log_line("postern: echo on device port 7, discard on device port 9");
  log_line("postern: ready (lwIP %s, device %s%s)", LWIP_VERSION_STRING, MAIN_IP,
           LWIP_IPV6 ? " and IPv6 by SLAAC" : "");

  /* The NO_SYS main loop: interrupts only queue frames; lwIP and the card work run here. */
#if POSTERN_BENCH
  bench_boot();
#endif
  for (;;) {
#if POSTERN_BENCH
    bench_poll(stellaris_eth_poll(&main_netif));
#else
    stellaris_eth_poll(&main_netif);
#endif
    sys_check_timeouts();
    main_storage_wait = postern_poll();
    ipv6_poll(&main_netif);
    main_watch_stack();
    board_idle(main_busy);
  }
}
