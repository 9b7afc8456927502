/* test_options.c: the host simulator's command line: defaults, every option, and clear refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "options.h"
#include "unit.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int parse(host_options_t *o, int argc, char **argv)
{
  /* Refusals print one line on stderr; keep the test output readable. */
  fflush(stderr);
  FILE *saved = stderr;
  stderr = fopen("/dev/null", "w");
  int rc = options_parse(o, argc, argv);
  fclose(stderr);
  stderr = saved;
  return rc;
}

static void test_defaults(void)
{
  host_options_t o;
  char *argv[] = {"postern"};
  CHECK_EQ(parse(&o, ARGC(argv), argv), OPTIONS_RUN);
  CHECK_EQ(o.http_port, 8080);
  CHECK_EQ(o.https_port, 8443);
  CHECK_EQ(o.echo_port, 8007);
  CHECK_EQ(o.discard_port, 8009);
  CHECK_EQ(o.capacity, 16u * 1024 * 1024);
  CHECK_STR(o.policy, "scripts/policy.lua");
  CHECK_EQ(o.n_settings, 0);
  CHECK(o.ipv6);
  CHECK_EQ(o.storage_latency_ms, 0);
}

static void test_every_option(void)
{
  char path[] = "/tmp/postern-opt-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  char set1[] = "token=T0k=en", set2[] = "max_size=1024";
  char *argv[] = {"postern",  "--http",
                  "18080",    "--https",
                  "0",        "--policy",
                  path,       "--storage",
                  "/tmp/x",   "--capacity",
                  "512K",     "--set",
                  set1,       "--set",
                  set2,       "--cert",
                  path,       "--key",
                  path,       "--client-ca",
                  path,       "--client-cert",
                  "required", "--ipv6",
                  "off",      "--storage-latency",
                  "200"};
  host_options_t o;
  CHECK_EQ(parse(&o, ARGC(argv), argv), OPTIONS_RUN);
  CHECK_EQ(o.http_port, 18080);
  CHECK_EQ(o.https_port, 0);
  CHECK_EQ(o.capacity, 512u * 1024);
  CHECK_EQ(o.n_settings, 2);
  CHECK_STR(o.setting_names[0], "token");
  CHECK_STR(o.setting_values[0], "T0k=en");
  CHECK_STR(o.setting_names[1], "max_size");
  CHECK_STR(o.setting_values[1], "1024");
  CHECK(o.client_cert_required);
  CHECK_STR(o.client_ca, path);
  CHECK(!o.ipv6);
  CHECK_EQ(o.storage_latency_ms, 200);
  unlink(path);
}

static void test_refusals_exit_2(void)
{
  const char *bad[][3] = {
      {"--http", "65536", NULL},
      {"--http", "-1", NULL},
      {"--http", "80x", NULL},
      {"--capacity", "0", NULL},
      {"--capacity", "1T", NULL},
      {"--capacity", "-5", NULL},
      {"--set", "=v", NULL},
      {"--set", "1abc=v", NULL},
      {"--set", "a-b=v", NULL},
      {"--policy", "/nonexistent/p.lua", NULL},
      {"--frobnicate", "1", NULL},
      {"--http", NULL, NULL},
      {"stray", NULL, NULL},
      {"--cert", "/nonexistent", NULL},
      {"--client-cert", "maybe", NULL},
      {"--ipv6", "yes", NULL},
      {"--ipv6", "", NULL},
      {"--storage-latency", "60001", NULL},
      {"--storage-latency", "-1", NULL},
      {"--storage-latency", "5ms", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char a0[] = "postern", a1[64], a2[64];
    snprintf(a1, sizeof a1, "%s", bad[i][0]);
    snprintf(a2, sizeof a2, "%s", bad[i][1] ? bad[i][1] : "");
    char *argv[] = {a0, a1, a2};
    host_options_t o;
    int rc = parse(&o, bad[i][1] ? 3 : 2, argv);
    if (rc != 2) {
      fprintf(stderr, "accepted: %s %s\n", a1, a2);
    }
    CHECK_EQ(rc, 2);
  }
}

static void test_too_many_settings(void)
{
  char *argv[2 + 2 * (POSTERN_MAX_SETTINGS + 1)];
  static char sets[POSTERN_MAX_SETTINGS + 1][16];
  int argc = 0;
  argv[argc++] = "postern";
  for (int i = 0; i <= POSTERN_MAX_SETTINGS; i++) {
    snprintf(sets[i], sizeof sets[i], "k%d=v", i);
    argv[argc++] = "--set";
    argv[argc++] = sets[i];
  }
  host_options_t o;
  CHECK_EQ(parse(&o, argc, argv), 2);
}

static void test_cert_needs_key(void)
{
  char path[] = "/tmp/postern-opt-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  char *argv[] = {"postern", "--cert", path};
  host_options_t o;
  CHECK_EQ(parse(&o, ARGC(argv), argv), 2);
  unlink(path);
}

int main(void)
{
  RUN(test_defaults);
  RUN(test_every_option);
  RUN(test_refusals_exit_2);
  RUN(test_too_many_settings);
  RUN(test_cert_needs_key);
  return UNIT_END();
}
