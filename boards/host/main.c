/* main.c: the host simulator: postern's lwIP stack in a Linux process, wired to libslirp. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipv6.h"
#include "log.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "options.h"
#include "policy.h"
#include "policy_store_host.h"
#include "postern.h"
#include "rtos_host.h"
#include "slirp_netif.h"
#include "storage_host.h"

/** Largest policy script the simulator loads (the firmware embeds its own). */
#define MAIN_POLICY_MAX (64 * 1024)

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
  main_stop = sig;
}

/* Reads the policy script into a static buffer; *name is its file name, for Lua's messages. */
static int main_read_policy(const char *path, const char **source, size_t *len, const char **name)
{
  static char buf[MAIN_POLICY_MAX];
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    log_line("postern: cannot open policy %s", path);
    return -1;
  }
  size_t n = fread(buf, 1, sizeof buf, f);
  int too_big = n == sizeof buf;
  fclose(f);
  if (too_big) {
    log_line("postern: policy %s is larger than %d bytes", path, MAIN_POLICY_MAX);
    return -1;
  }
  const char *base = strrchr(path, '/');
  *source = buf;
  *len = n;
  *name = base != NULL ? base + 1 : path;
  return 0;
}

#if POSTERN_TLS
/** Largest certificate or key file the simulator loads. */
#define MAIN_PEM_MAX (16 * 1024)

/* Reads a PEM (or DER) file into buf; PEM gets its NUL counted, as mbedTLS wants. */
static int main_read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    log_line("postern: cannot open %s", path);
    return -1;
  }
  size_t n = fread(buf, 1, cap - 1, f);
  int too_big = n == cap - 1 && fgetc(f) != EOF;
  fclose(f);
  if (too_big || n == 0) {
    log_line("postern: %s is empty or larger than %u bytes", path, (unsigned)(cap - 1));
    return -1;
  }
  buf[n] = '\0';
  *len = memmem(buf, n, "-----BEGIN", 10) != NULL ? n + 1 : n;
  return 0;
}

static uint8_t main_cert[MAIN_PEM_MAX], main_key[MAIN_PEM_MAX], main_ca[MAIN_PEM_MAX];

/* Reads the certificate files into static buffers for HTTPS on device port 443. */
static int main_read_tls(const host_options_t *opt, postern_tls_t *t)
{
  uint8_t *cert = main_cert, *key = main_key, *ca = main_ca;
  *t = (postern_tls_t){.cert = cert, .key = key, .client_cert_required = opt->client_cert_required};
  if (main_read_file(opt->cert, cert, MAIN_PEM_MAX, &t->cert_len) != 0 ||
      main_read_file(opt->key, key, MAIN_PEM_MAX, &t->key_len) != 0) {
    return -1;
  }
  if (opt->client_ca != NULL) {
    if (main_read_file(opt->client_ca, ca, MAIN_PEM_MAX, &t->client_ca_len) != 0) {
      return -1;
    }
    t->client_ca = ca;
  }
  return 0;
}
#endif /* POSTERN_TLS */

/* The settings accepted last by PUT /_config replace the --set ones. */
static void main_stored_settings(const host_options_t *opt, postern_config_t *cfg)
{
  static char config[4 * POSTERN_CONFIG_MAX];
  long len = policy_store_host_read(POLICY_STORE_HOST_CONFIG, config, sizeof config);
  if (len < 0) {
    return;
  }
  const char *const *names, *const *values;
  char why[160];
  int count = policy_config_parse(config, (size_t)len, &names, &values, why, sizeof why);
  if (count < 0) {
    log_line("postern: the stored %s/%s is not valid (%s); the --set settings run", opt->storage,
             POLICY_STORE_HOST_CONFIG, why);
    return;
  }
  cfg->setting_names = names;
  cfg->setting_values = values;
  cfg->n_settings = count;
  log_line("postern: %d settings from the stored %s/%s (not --set)", count, opt->storage, POLICY_STORE_HOST_CONFIG);
}

static char main_stored_name[2][512];
static char main_stored_source[2][POSTERN_POLICY_MAX];
static const char *const main_kept[2] = {POLICY_STORE_HOST_CURRENT, POLICY_STORE_HOST_PREVIOUS};
static int main_stored_which[2];

/* A stored policy that did not load is set aside: it never becomes a fallback. */
static void main_stored_failed(int index)
{
  policy_store_host_set_aside(main_kept[main_stored_which[index]]);
  log_line("postern: %s moved aside as .policy.bad.lua", main_stored_name[index]);
}

/* The policy accepted last by PUT /_policy, then the one before it: postern_start() tries them before --policy. */
static void main_stored_policies(const host_options_t *opt, postern_config_t *cfg)
{
  static postern_policy_t stored[2];
  int n = 0;
  for (int i = 0; i < 2; i++) {
    long len = policy_store_host_read(main_kept[i], main_stored_source[n], sizeof main_stored_source[n]);
    if (len < 0) {
      continue;
    }
    snprintf(main_stored_name[n], sizeof main_stored_name[n], "%s/%s", opt->storage, main_kept[i]);
    stored[n] = (postern_policy_t){main_stored_name[n], main_stored_source[n], (size_t)len};
    main_stored_which[n] = i;
    n++;
  }
  cfg->stored = stored;
  cfg->n_stored = n;
  cfg->stored_failed = main_stored_failed;
}

/** What the start needs, in lwIP's context: the options and postern's configuration. */
typedef struct main_setup {
  const host_options_t *opt;
  const postern_config_t *cfg;
} main_setup_t;

/** The device's netif (the slirp wire). */
static struct netif main_netif;

/* The device's netif and postern, in lwIP's context (NO_SYS 0: tcpip_thread); 0 or -1. */
static int main_start(void *arg)
{
  const main_setup_t *setup = arg;
  const host_options_t *opt = setup->opt;
  const slirp_forward_t fwds[] = {
      {opt->http_port, 80, "http"},
      {opt->https_port, 443, "https"},
      {opt->echo_port, 7, "echo"},
      {opt->discard_port, 9, "discard"},
  };
#if LWIP_IPV6
  const bool ipv6 = opt->ipv6;
#else
  const bool ipv6 = false;
  if (opt->ipv6) {
    log_line("postern: built without IPv6 (IPV6=0): forwards on 127.0.0.1 only");
  }
#endif
  if (slirp_netif_start(&main_netif, fwds, (int)(sizeof fwds / sizeof fwds[0]), ipv6) != 0) {
    return -1;
  }
  if (postern_start(setup->cfg) != 0) {
    return -1;
  }
#if POSTERN_TLS
  memset(main_key, 0, sizeof main_key); /* the parsed key lives in the TLS heap now */
  if (opt->client_ca != NULL) {
    log_line("postern: client certificates %s, CA %s", opt->client_cert_required ? "required" : "optional",
             opt->client_ca);
  }
#endif
  bool https = setup->cfg->https_port != 0;
  for (size_t i = 0; i < sizeof fwds / sizeof fwds[0]; i++) {
    char also6[24] = "";
    if (ipv6) {
      snprintf(also6, sizeof also6, " and [::1]:%u", fwds[i].host_port);
    }
    if (fwds[i].host_port != 0 && fwds[i].device_port == 443 && !https) {
      log_line("postern: https forward 127.0.0.1:%u%s idle: no --cert/--key given", fwds[i].host_port, also6);
    } else if (fwds[i].host_port != 0) {
      log_line("postern: %s on 127.0.0.1:%u%s (device port %u)", fwds[i].what, fwds[i].host_port, also6,
               fwds[i].device_port);
    }
  }
  log_line("postern: ready (lwIP %s, device 10.0.2.15%s%s)", LWIP_VERSION_STRING, ipv6 ? " and fec0::/64 by SLAAC" : "",
           NO_SYS ? "" : "; NO_SYS 0: tcpip_thread");
  return 0;
}

/* Once a turn of the main loop (NO_SYS 0: every RTOS_HOST_TICK_MS in tcpip_thread): the IPv6 addresses' log lines. */
static void main_tick(void *arg)
{
  (void)arg;
  ipv6_poll(&main_netif);
}

/* The wire goes, then the connections and the policy VM (NO_SYS 0: in tcpip_thread, the other threads ended). */
static void main_shutdown(void *arg)
{
  (void)arg;
  slirp_netif_stop();
  postern_stop();
  log_line("postern: stopped");
}

int main(int argc, char **argv)
{
  host_options_t opt;
  int rc = options_parse(&opt, argc, argv);
  if (rc != OPTIONS_RUN) {
    return rc;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = main_on_signal; /* no SA_RESTART: poll() returns EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  postern_config_t cfg = {.http_port = 80,
                          .selftest = true,
                          .selftest_idle_s = opt.selftest_idle_s,
                          .setting_names = opt.setting_names,
                          .setting_values = opt.setting_values,
                          .n_settings = opt.n_settings};
  if (main_read_policy(opt.policy, &cfg.policy, &cfg.policy_len, &cfg.policy_name) != 0) {
    return 1;
  }
#if POSTERN_TLS
  postern_tls_t tls;
  if (opt.cert != NULL) {
    if (main_read_tls(&opt, &tls) != 0) {
      return 1;
    }
    cfg.https_port = 443;
    cfg.tls = &tls;
  }
#else
  if (opt.cert != NULL) {
    log_line("postern: built without TLS (TLS=0): --cert and --key are ignored");
  }
#endif
  storage_host_timing(opt.storage_latency_ms, NULL);
  policy_store_host_init(opt.storage);
  main_stored_settings(&opt, &cfg);
  main_stored_policies(&opt, &cfg);
  if (storage_host_init(opt.storage, opt.capacity) != 0) {
    return 1;
  }
  main_setup_t setup = {&opt, &cfg};
#if !NO_SYS
  /* RTOS mode: tcpip_thread, the slirp thread and the storage thread (rtos_host.c). */
  return rtos_host_run(main_start, main_tick, main_shutdown, &setup) < 0 ? 1 : 0;
#else
  lwip_init();
  if (main_start(&setup) != 0) {
    return 1;
  }

  /* The NO_SYS main loop: wait for the wire, the next lwIP timer or the medium's next step. */
  while (!main_stop) {
    uint32_t storage_ms = postern_poll(); /* first: storage_ready() may queue output and timers */
    u32_t sleep_ms = sys_timeouts_sleeptime();
    if (sleep_ms > storage_ms) {
      sleep_ms = storage_ms;
    }
    if (sleep_ms > 1000) {
      sleep_ms = 1000;
    }
    slirp_netif_poll(sleep_ms);
    sys_check_timeouts();
    main_tick(NULL);
  }

  log_line("postern: stopping on signal %d", (int)main_stop);
  main_shutdown(NULL);
  return 0;
#endif /* NO_SYS */
}
