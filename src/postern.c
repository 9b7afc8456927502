/* postern.c: the integrator's API: start, poll, stop and status, over the policy bridge, TLS and the listeners. */
#include "postern.h"

#include "http_conn.h"
#include "http_status.h"
#include "listen.h"
#include "log.h"
#include "policy.h"
#include "selftest.h"
#if POSTERN_TLS
#include "tls.h"
#endif

#if POSTERN_TLS
/* TLS with the configuration's credentials, and its listener. */
static int postern_start_tls(const postern_config_t *cfg)
{
  const postern_tls_t *t = cfg->tls;
  if (t == NULL) {
    log_line("postern: https port %u asked without credentials", cfg->https_port);
    return -1;
  }
  tls_server_params_t p = {
      .cert = t->cert,
      .cert_len = t->cert_len,
      .key = t->key,
      .key_len = t->key_len,
  };
  if (t->client_ca != NULL) {
    p.client_ca = t->client_ca;
    p.client_ca_len = t->client_ca_len;
    p.client_cert = t->client_cert_required ? TLS_CLIENT_CERT_REQUIRED : TLS_CLIENT_CERT_OPTIONAL;
  }
  if (tls_server_init(&p) != 0) {
    log_line("postern: TLS did not start");
    return -1;
  }
  if (http_listen(tls_allocator(), cfg->https_port) != ERR_OK) {
    log_line("postern: cannot listen on device port %u", cfg->https_port);
    return -1;
  }
  log_line("postern: https on device port %u%s", cfg->https_port,
           t->client_ca == NULL      ? ""
           : t->client_cert_required ? ", client certificates required"
                                     : ", client certificates optional");
  return 0;
}
#endif /* POSTERN_TLS */

/* The first stored policy that loads, else the built-in one: a bad update never bricks the device. */
static int postern_load_policy(const postern_config_t *cfg)
{
  for (int i = 0; i < cfg->n_stored; i++) {
    const postern_policy_t *p = &cfg->stored[i];
    if (policy_init(cfg->setting_names, cfg->setting_values, cfg->n_settings) != 0) {
      log_line("postern: cannot create the Lua VM");
      return -1;
    }
    if (policy_load(p->name, p->source, p->len) == 0) {
      log_line("postern: running the stored policy %s (Lua arena %u bytes in use)", p->name,
               (unsigned)policy_memory_in_use());
      return 0;
    }
    log_line("postern: the stored policy %s did not load; falling back", p->name);
    if (cfg->stored_failed != NULL) {
      cfg->stored_failed(i);
    }
  }
  if (policy_init(cfg->setting_names, cfg->setting_values, cfg->n_settings) != 0) {
    log_line("postern: cannot create the Lua VM");
    return -1;
  }
  if (policy_load(cfg->policy_name, cfg->policy, cfg->policy_len) != 0) {
    log_line("postern: policy %s did not load; not starting", cfg->policy_name);
    return -1;
  }
  log_line("postern: running the built-in policy %s (Lua arena %u bytes in use)", cfg->policy_name,
           (unsigned)policy_memory_in_use());
  return 0;
}

int postern_start(const postern_config_t *cfg)
{
  if (postern_load_policy(cfg) != 0) {
    postern_stop();
    return -1;
  }
  if (cfg->selftest && selftest_start(cfg->selftest_idle_s) != ERR_OK) {
    log_line("postern: cannot start the self-test services");
    postern_stop();
    return -1;
  }
  if (cfg->http_port != 0 && http_listen(NULL, cfg->http_port) != ERR_OK) {
    log_line("postern: cannot listen on device port %u", cfg->http_port);
    postern_stop();
    return -1;
  }
  if (cfg->https_port != 0) {
#if POSTERN_TLS
    if (postern_start_tls(cfg) != 0) {
      postern_stop();
      return -1;
    }
#else
    log_line("postern: built without TLS (POSTERN_TLS 0): no https on device port %u", cfg->https_port);
#endif
  }
  return 0;
}

uint32_t postern_poll(void)
{
  return storage_poll();
}

void postern_stop(void)
{
  listen_close_all();
  http_close_all();
  policy_shutdown();
}

void postern_get_status(postern_status_t *st)
{
  st->uptime_s = http_status_uptime_s();
  st->conns_active = http_conns_active();
  st->conns_high_water = http_conns_high_water();
  st->storage_capacity = storage_capacity();
  st->storage_free = storage_free();
  st->lua_in_use = policy_memory_in_use();
  st->lua_high_water = policy_memory_high_water();
}
