/* options.h: the host simulator's command line, parsed and validated before anything starts. */
#ifndef POSTERN_HOST_OPTIONS_H
#define POSTERN_HOST_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "postern_opts.h"

typedef struct host_options {
  uint16_t http_port;    /* host port forwarded to device :80 (0: none) */
  uint16_t https_port;   /* host port forwarded to device :443 (0: none) */
  uint16_t echo_port;    /* host port forwarded to device :7 (0: none) */
  uint16_t discard_port; /* host port forwarded to device :9 (0: none) */
  const char *policy;    /* Lua policy script */
  const char *storage;   /* directory that holds the stored files */
  uint64_t capacity;     /* bytes the simulated flash holds */
  const char *cert;      /* TLS server certificate (PEM) */
  const char *key;       /* TLS server key (PEM) */
  const char *client_ca; /* CA that signs client certificates (PEM) */
  bool client_cert_required;
  bool ipv6;                   /* forwards on [::1] too, and the device takes IPv6 addresses (--ipv6) */
  uint32_t selftest_idle_s;    /* seconds before a silent self-test connection closes */
  uint32_t storage_latency_ms; /* ms each unit of medium work is busy (0: synchronous) */
  int n_settings;
  const char *setting_names[POSTERN_MAX_SETTINGS];
  const char *setting_values[POSTERN_MAX_SETTINGS];
} host_options_t;

/* Result of options_parse(): run, or exit with the given status. */
enum { OPTIONS_RUN = -1 };

int options_parse(host_options_t *o, int argc, char **argv);

#endif /* POSTERN_HOST_OPTIONS_H */
