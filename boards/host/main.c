/* main.c: the host simulator: postern's lwIP stack in a Linux process, wired to libslirp. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http_conn.h"
#include "ipv6.h"
#include "log.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "options.h"
#include "policy.h"
#include "postern.h"
#include "rtos_host.h"
#include "selftest.h"
#include "slirp_netif.h"
#include "storage.h"
#include "storage_host.h"
#if POSTERN_TLS
#include "tls.h"
#endif

/** Largest policy script the simulator loads (the firmware embeds its own). */
#define MAIN_POLICY_MAX (64 * 1024)

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
  main_stop = sig;
}

/* Reads and runs the policy script; a script that does not load stops the start. */
static int main_load_policy(const host_options_t *opt)
{
  static char source[MAIN_POLICY_MAX];
  FILE *f = fopen(opt->policy, "rb");
  if (f == NULL) {
    log_line("postern: cannot open policy %s", opt->policy);
    return -1;
  }
  size_t n = fread(source, 1, sizeof source, f);
  int too_big = n == sizeof source;
  fclose(f);
  if (too_big) {
    log_line("postern: policy %s is larger than %d bytes", opt->policy, MAIN_POLICY_MAX);
    return -1;
  }
  if (policy_init(opt->setting_names, opt->setting_values, opt->n_settings) != 0) {
    log_line("postern: cannot create the Lua VM");
    return -1;
  }
  const char *base = strrchr(opt->policy, '/');
  if (policy_load(base != NULL ? base + 1 : opt->policy, source, n) != 0) {
    log_line("postern: policy %s did not load; not starting", opt->policy);
    return -1;
  }
  log_line("postern: policy %s loaded (Lua arena %zu bytes in use)", opt->policy, policy_memory_in_use());
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

/* Loads the certificate files into static buffers and starts HTTPS on device port 443. */
static int main_start_tls(const host_options_t *opt)
{
  static uint8_t cert[MAIN_PEM_MAX], key[MAIN_PEM_MAX], ca[MAIN_PEM_MAX];
  tls_server_params_t p = {.cert = cert, .key = key};
  if (main_read_file(opt->cert, cert, sizeof cert, &p.cert_len) != 0 ||
      main_read_file(opt->key, key, sizeof key, &p.key_len) != 0) {
    return -1;
  }
  if (opt->client_ca != NULL) {
    if (main_read_file(opt->client_ca, ca, sizeof ca, &p.client_ca_len) != 0) {
      return -1;
    }
    p.client_ca = ca;
    p.client_cert = opt->client_cert_required ? TLS_CLIENT_CERT_REQUIRED : TLS_CLIENT_CERT_OPTIONAL;
  }
  if (tls_server_init(&p) != 0) {
    log_line("postern: TLS did not start; not starting");
    return -1;
  }
  memset(key, 0, sizeof key); /* the parsed key lives in the TLS heap now */
  if (http_listen(tls_allocator(), 443) != ERR_OK) {
    log_line("postern: cannot listen on device port 443");
    return -1;
  }
  if (opt->client_ca != NULL) {
    log_line("postern: client certificates %s, CA %s", opt->client_cert_required ? "required" : "optional",
             opt->client_ca);
  }
  return 0;
}
#endif /* POSTERN_TLS */

/** The device's netif (the slirp wire). */
static struct netif main_netif;

/* The policy, the device's netif and postern's services, in lwIP's context (NO_SYS 0: tcpip_thread); 0 or -1. */
static int main_start(void *arg)
{
  const host_options_t *opt = arg;
  if (main_load_policy(opt) != 0) {
    return -1;
  }
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
  if (selftest_start(opt->selftest_idle_s) != ERR_OK) {
    log_line("postern: cannot start the self-test services");
    return -1;
  }
  if (http_listen(NULL, 80) != ERR_OK) {
    log_line("postern: cannot listen on device port 80");
    return -1;
  }
  bool https = false;
#if POSTERN_TLS
  if (opt->cert != NULL) {
    if (main_start_tls(opt) != 0) {
      return -1;
    }
    https = true;
  }
#else
  if (opt->cert != NULL) {
    log_line("postern: built without TLS (TLS=0): --cert and --key are ignored");
  }
#endif

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
  log_line("postern: ready (lwIP %s, device 10.0.2.15%s%s)", LWIP_VERSION_STRING,
           ipv6 ? " and fec0::/64 by SLAAC" : "", NO_SYS ? "" : "; NO_SYS 0: tcpip_thread");
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

  storage_host_timing(opt.storage_latency_ms, NULL);
  if (storage_host_init(opt.storage, opt.capacity) != 0) {
    return 1;
  }
#if !NO_SYS
  /* RTOS mode: tcpip_thread, the slirp thread and the storage thread (rtos_host.c). */
  return rtos_host_run(main_start, main_tick, main_shutdown, &opt) < 0 ? 1 : 0;
#else
  lwip_init();
  if (main_start(&opt) != 0) {
    return 1;
  }

  /* The NO_SYS main loop: wait for the wire, the next lwIP timer or the medium's next step. */
  while (!main_stop) {
    uint32_t storage_ms = storage_poll(); /* first: storage_ready() may queue output and timers */
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
