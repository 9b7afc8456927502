/* main.c: the host simulator: postern's lwIP stack in a Linux process, wired to libslirp. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "options.h"
#include "selftest.h"
#include "slirp_netif.h"

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
  main_stop = sig;
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

  lwip_init();
  static struct netif netif;
  const slirp_forward_t fwds[] = {
    {opt.http_port, 80, "http"},
    {opt.https_port, 443, "https"},
    {opt.echo_port, 7, "echo"},
    {opt.discard_port, 9, "discard"},
  };
  if (slirp_netif_start(&netif, fwds, (int)(sizeof fwds / sizeof fwds[0])) != 0) {
    return 1;
  }
  if (selftest_start() != ERR_OK) {
    log_line("postern: cannot start the self-test services");
    return 1;
  }

  for (size_t i = 0; i < sizeof fwds / sizeof fwds[0]; i++) {
    if (fwds[i].host_port != 0) {
      log_line("postern: %s on 127.0.0.1:%u (device port %u)", fwds[i].what, fwds[i].host_port,
               fwds[i].device_port);
    }
  }
  log_line("postern: ready (lwIP %s, device 10.0.2.15)", LWIP_VERSION_STRING);

  /* The NO_SYS main loop: wait for the wire or the next lwIP timer. */
  while (!main_stop) {
    u32_t sleep_ms = sys_timeouts_sleeptime();
    if (sleep_ms > 1000) {
      sleep_ms = 1000;
    }
    slirp_netif_poll(sleep_ms);
    sys_check_timeouts();
  }

  log_line("postern: stopping on signal %d", (int)main_stop);
  slirp_netif_stop();
  log_line("postern: stopped");
  return 0;
}
