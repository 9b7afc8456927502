/* options.c: the host simulator's command line, parsed and validated before anything starts. */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPTIONS_STR_(x) #x
#define OPTIONS_STR(x) OPTIONS_STR_(x)

static const char options_usage[] =
    "usage: postern [options]\n"
    "  --http PORT          forward 127.0.0.1:PORT and [::1]:PORT to device port 80 (default 8080, 0: off)\n"
    "  --https PORT         forward 127.0.0.1:PORT and [::1]:PORT to device port 443 (default 8443, 0: off)\n"
    "  --echo PORT          forward 127.0.0.1:PORT and [::1]:PORT to the echo self-test, port 7 (default 8007, 0: "
    "off)\n"
    "  --discard PORT       forward 127.0.0.1:PORT and [::1]:PORT to the discard self-test, port 9 (default 8009, 0: "
    "off)\n"
    "  --ipv6 MODE          on or off: IPv6 on the device and the [::1] forwards (default on)\n"
    "  --policy FILE        Lua policy script (default scripts/policy.lua)\n"
    "  --storage DIR        directory of the simulated flash (default build/host/storage)\n"
    "  --capacity SIZE      bytes the simulated flash holds, with K, M or G (default 16M)\n"
    "  --storage-latency MS every 4 KiB written, commit and remove keeps the medium busy MS ms (0 to 60000,\n"
    "                       default 0: synchronous); calls meanwhile answer pending\n"
    "  --set NAME=VALUE     a setting the policy reads as config.NAME (repeatable)\n"
    "  --cert FILE          TLS server certificate, PEM\n"
    "  --key FILE           TLS server private key, PEM\n"
    "  --client-ca FILE     CA for client certificates, PEM (asks for a client certificate)\n"
    "  --client-cert MODE   optional or required, with --client-ca (default optional)\n"
    "  --selftest-idle S    close a self-test connection silent for S seconds (1 to 3600, default " OPTIONS_STR(
        POSTERN_SELFTEST_IDLE_S) ")\n"
                                 "  --help               this text\n";

static int options_fail(const char *fmt, const char *a, const char *b)
{
  fprintf(stderr, "postern: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, " (see --help)\n");
  return 2;
}

static int options_port(const char *s, uint16_t *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > 65535) {
    return -1;
  }
  *out = (uint16_t)v;
  return 0;
}

static int options_size(const char *s, uint64_t *out)
{
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9') {
    return -1;
  }
  unsigned long long v = strtoull(s, &end, 10);
  uint64_t scale = 1;
  if (*end == 'K' || *end == 'k') {
    scale = 1024, end++;
  } else if (*end == 'M' || *end == 'm') {
    scale = 1024 * 1024, end++;
  } else if (*end == 'G' || *end == 'g') {
    scale = 1024 * 1024 * 1024, end++;
  }
  if (errno != 0 || *end != '\0' || v == 0 || v > UINT64_MAX / scale) {
    return -1;
  }
  *out = (uint64_t)v * scale;
  return 0;
}

static int options_readable(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0 ? 0 : -1;
}

static int options_setting_name_ok(const char *name, size_t len)
{
  if (len == 0 || len > 32 || (name[0] >= '0' && name[0] <= '9')) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return 0;
    }
  }
  return 1;
}

/**
 * Parses argv into o. Returns OPTIONS_RUN to go on, or the exit status:
 * 0 after --help, 2 after a one-line error on stderr.
 */
int options_parse(host_options_t *o, int argc, char **argv)
{
  memset(o, 0, sizeof *o);
  o->http_port = 8080;
  o->https_port = 8443;
  o->echo_port = 8007;
  o->discard_port = 8009;
  o->policy = "scripts/policy.lua";
  o->storage = "build/host/storage";
  o->capacity = 16u * 1024 * 1024;
  o->selftest_idle_s = POSTERN_SELFTEST_IDLE_S;
  o->ipv6 = true;

  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      fputs(options_usage, stdout);
      return 0;
    }
    if (strncmp(opt, "--", 2) != 0) {
      return options_fail("unexpected argument '%s'%s", opt, "");
    }
    if (i + 1 >= argc) {
      return options_fail("%s needs a value%s", opt, "");
    }
    const char *val = argv[++i];
    uint16_t *port = NULL;
    if (strcmp(opt, "--http") == 0) {
      port = &o->http_port;
    } else if (strcmp(opt, "--https") == 0) {
      port = &o->https_port;
    } else if (strcmp(opt, "--echo") == 0) {
      port = &o->echo_port;
    } else if (strcmp(opt, "--discard") == 0) {
      port = &o->discard_port;
    }
    if (port != NULL) {
      if (options_port(val, port) != 0) {
        return options_fail("%s: '%s' is not a port (0 to 65535)", opt, val);
      }
    } else if (strcmp(opt, "--policy") == 0) {
      if (options_readable(val) != 0) {
        return options_fail("--policy: cannot read '%s'%s", val, "");
      }
      o->policy = val;
    } else if (strcmp(opt, "--storage") == 0) {
      if (*val == '\0') {
        return options_fail("--storage: empty path%s%s", "", "");
      }
      o->storage = val;
    } else if (strcmp(opt, "--capacity") == 0) {
      if (options_size(val, &o->capacity) != 0) {
        return options_fail("--capacity: '%s' is not a size (like 4096, 512K, 16M, 1G)%s", val, "");
      }
    } else if (strcmp(opt, "--set") == 0) {
      const char *eq = strchr(val, '=');
      if (eq == NULL || !options_setting_name_ok(val, (size_t)(eq - val))) {
        return options_fail("--set: '%s' is not NAME=VALUE (NAME: letters, digits, _)%s", val, "");
      }
      if (o->n_settings >= POSTERN_MAX_SETTINGS) {
        return options_fail("--set: more than POSTERN_MAX_SETTINGS settings at '%s'%s", val, "");
      }
      /* NAME is cut out in place; argv strings are writable. */
      argv[i][eq - val] = '\0';
      o->setting_names[o->n_settings] = argv[i];
      o->setting_values[o->n_settings] = eq + 1;
      o->n_settings++;
    } else if (strcmp(opt, "--cert") == 0 || strcmp(opt, "--key") == 0 || strcmp(opt, "--client-ca") == 0) {
      if (options_readable(val) != 0) {
        return options_fail("%s: cannot read '%s'", opt, val);
      }
      if (opt[2] == 'c' && opt[3] == 'e') {
        o->cert = val;
      } else if (opt[2] == 'k') {
        o->key = val;
      } else {
        o->client_ca = val;
      }
    } else if (strcmp(opt, "--selftest-idle") == 0) {
      char *end;
      errno = 0;
      long v = strtol(val, &end, 10);
      if (errno != 0 || *val < '0' || *val > '9' || *end != '\0' || v < 1 || v > 3600) {
        return options_fail("--selftest-idle: '%s' is not a number of seconds (1 to 3600)%s", val, "");
      }
      o->selftest_idle_s = (uint32_t)v;
    } else if (strcmp(opt, "--ipv6") == 0) {
      if (strcmp(val, "on") == 0) {
        o->ipv6 = true;
      } else if (strcmp(val, "off") == 0) {
        o->ipv6 = false;
      } else {
        return options_fail("--ipv6: '%s' is not on or off%s", val, "");
      }
    } else if (strcmp(opt, "--storage-latency") == 0) {
      char *end;
      errno = 0;
      long v = strtol(val, &end, 10);
      if (errno != 0 || *val < '0' || *val > '9' || *end != '\0' || v > 60000) {
        return options_fail("--storage-latency: '%s' is not a number of milliseconds (0 to 60000)%s", val, "");
      }
      o->storage_latency_ms = (uint32_t)v;
    } else if (strcmp(opt, "--client-cert") == 0) {
      if (strcmp(val, "optional") == 0) {
        o->client_cert_required = false;
      } else if (strcmp(val, "required") == 0) {
        o->client_cert_required = true;
      } else {
        return options_fail("--client-cert: '%s' is not optional or required%s", val, "");
      }
    } else {
      return options_fail("unknown option '%s'%s", opt, "");
    }
  }
  if ((o->cert == NULL) != (o->key == NULL)) {
    return options_fail("--cert and --key go together%s%s", "", "");
  }
  if (o->client_ca != NULL && o->cert == NULL) {
    return options_fail("--client-ca needs --cert and --key%s%s", "", "");
  }
  return OPTIONS_RUN;
}
