/* policy.h: the Lua policy bridge: a sandboxed Lua 5.4 VM that decides on every request. */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "postern_opts.h"

/** A byte string; p == NULL means absent (nil in Lua). */
typedef struct policy_str {
  const char *p;
  size_t n;
} policy_str_t;

/** The TLS facts of a connection (client certificate subject and fingerprint). */
typedef struct policy_tls {
  policy_str_t version, cipher, subject, fingerprint;
} policy_tls_t;

/** What the policy sees of a request: everything is read-only to Lua. */
typedef struct policy_request {
  policy_str_t method, path, query, version; /* path is percent-decoded; version like "HTTP/1.1" */
  policy_str_t name;                         /* file name for /files/<name> routes, absent otherwise */
  const policy_str_t *header_names, *header_values; /* names as received: lower-cased for Lua, */
  int n_headers;                                    /* a repeated name joins its values with ", " */
  bool has_length;                           /* false for chunked: length is nil */
  uint64_t length;
  policy_str_t expect;                       /* raw Expect value or absent */
  policy_str_t peer;                         /* "10.0.2.2:54321", over IPv6 "[fec0::2]:54321" */
  const policy_tls_t *tls;                   /* NULL -> nil */
} policy_request_t;

/** The policy's answer. */
typedef struct policy_decision {
  int status;                           /* 100 = accept (go on); otherwise the final HTTP status (200..599) */
  bool retryable;                       /* a 417 that only means "send it again without Expect" */
  char message[POSTERN_MESSAGE_MAX];    /* may be empty; control bytes are replaced by '?' */
  char name[POSTERN_NAME_MAX + 1];      /* storage name chosen by the policy, empty = the request's own name */
  char www_authenticate[96];            /* for 401: the challenge; empty = core default */
  bool policy_error;                    /* true when the status is the fail-closed 500 */
} policy_decision_t;

/** Creates the VM in the Lua arena with the sandboxed libraries and helpers;
 *  settings become config.NAME. Returns 0, or -1 (logged). */
int policy_init(const char *const *setting_names, const char *const *setting_values, int n_settings);
/** Runs a policy script once (text only); it must define a global function
 *  on_request. Returns 0, or -1 with Lua's message (file:line) logged. */
int policy_load(const char *chunkname, const char *source, size_t len);
/** Calls on_request(req) under the sandbox; fails closed (500, policy_error). */
void policy_decide(const policy_request_t *req, policy_decision_t *out);
/** Calls the optional on_stored(req, {size=, sha256=}) before the commit;
 *  without that function the upload is accepted (status 100). */
void policy_after_body(const policy_request_t *req, uint64_t size, const char *sha256_hex,
                       policy_decision_t *out);
/** Bytes the VM holds now in its arena. */
size_t policy_memory_in_use(void);
/** Runs a full collection, then returns the bytes still live. */
size_t policy_memory_live(void);
/** Most bytes the VM has held since policy_init. */
size_t policy_memory_high_water(void);
/** Closes the VM and returns every arena byte. */
void policy_shutdown(void);

#endif /* POSTERN_POLICY_H */
