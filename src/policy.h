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
/* The longest peer text with its NUL: "[", an IPv6 address (45), "]:", five digits. */
#define POLICY_PEER_MAX 56

typedef struct policy_request {
  policy_str_t method, path, query, version;        /* path is percent-decoded; version like "HTTP/1.1" */
  policy_str_t name;                                /* file name for /files/<name> routes, absent otherwise */
  const policy_str_t *header_names, *header_values; /* names as received: lower-cased for Lua, */
  int n_headers;                                    /* a repeated name joins its values with ", " */
  bool has_length;                                  /* false for chunked: length is nil */
  uint64_t length;
  policy_str_t expect; /* raw Expect value or absent */
  policy_str_t peer;   /* "10.0.2.2:54321", over IPv6 "[fec0::2]:54321"; or, when absent, */
  size_t (*peer_of)(const void *ctx, char *out, size_t cap); /* written here when a script reads it */
  const void *peer_ctx;
  const policy_tls_t *tls; /* NULL -> nil */
} policy_request_t;

/** The policy's answer. */
typedef struct policy_decision {
  int status;                        /* 100 = accept (go on); otherwise the final HTTP status (200..599) */
  bool retryable;                    /* a 417 that only means "send it again without Expect" */
  char message[POSTERN_MESSAGE_MAX]; /* may be empty; control bytes are replaced by '?' */
  char name[POSTERN_NAME_MAX + 1];   /* storage name chosen by the policy, empty = the request's own name */
  char www_authenticate[96];         /* for 401: the challenge; empty = core default */
  /* CORS (the policy's allow_origin, allow_methods, allow_headers, max_age): an origin that may
   * read the answer ("*" or a serialized origin; empty = none); on an accepted OPTIONS preflight
   * also the methods and request headers it may use (token lists) and how long the browser may
   * keep that (-1 = not said). */
  char allow_origin[POSTERN_ORIGIN_MAX + 1];
  char allow_methods[POSTERN_CORS_LIST_MAX + 1];
  char allow_headers[POSTERN_CORS_LIST_MAX + 1];
  int32_t max_age;
  bool policy_error; /* true when the status is the fail-closed 500 */
  bool no_digest;    /* digest = false: the upload is stored without its SHA-256 */
} policy_decision_t;

/** Creates the VM in the Lua arena with the sandboxed libraries and helpers;
 *  settings become config.NAME. Returns 0, or -1 (logged). */
int policy_init(const char *const *setting_names, const char *const *setting_values, int n_settings);
/** Runs a policy script once (text only); it must define a global function
 *  on_request. Returns 0, or -1 with Lua's message (file:line) logged. */
int policy_load(const char *chunkname, const char *source, size_t len);
/** Runs the policy's optional self_test() under the budget: 0 when it returned
 *  anything but false, 1 when there is none, -1 (logged, see policy_last_error). */
int policy_self_test(void);
/** The budget the last call spent: VM instructions (counted by POSTERN_LUA_HOOK_STEP) and matcher steps. */
long policy_instructions_used(void);
/** The message of the last call that failed, as logged (Lua's, with name:line). */
const char *policy_last_error(void);
/** The running policy: its source (len bytes; NULL when none runs), name, SHA-256, and a
 *  number that changes with every policy that starts running. Any pointer may be NULL. */
const char *policy_running(size_t *len, const char **name, uint8_t sha256[32], uint32_t *gen);

/*
 * Replacement at run time. The script is collected in a static buffer of
 * POSTERN_POLICY_MAX bytes, which also keeps the running source when that
 * came from a replacement (the board's own sources stay where they are).
 * The commit closes the running VM, builds one from the new script in the
 * same arena, with the same sandbox, settings and limits, and requires
 * on_request and a passing self_test(); on failure it builds the old one
 * again from its source. The arena never holds two VMs. policy_init and
 * policy_load keep pointers to the settings, the name and the source: they
 * must stay valid while the policy runs.
 */
/** Bytes a replacement may have now: POSTERN_POLICY_MAX less the running source it holds. */
size_t policy_stage_room(void);
/** Starts collecting a replacement for owner; false while another owner collects one. */
bool policy_stage_begin(const void *owner);
/** Appends n bytes; false (nothing kept) past policy_stage_room() or for another owner. */
bool policy_stage_write(const void *owner, const void *data, size_t n);
/** Drops owner's collection, if it has one (NULL or another owner: nothing). */
void policy_stage_abort(const void *owner);
/** Checks owner's script and swaps it in: 0, or -1 with the reason (Lua's message, name:line) in
 *  policy_last_error() and the previous policy running again. *peak: the arena's high water
 *  during the check. */
int policy_stage_commit(const void *owner, size_t *peak);

/*
 * Settings at run time (PUT /_config): a JSON object of strings, collected
 * like a replacement (policy_stage_begin/write/abort), parsed into one of two
 * static slots of POSTERN_CONFIG_MAX bytes, then checked by rebuilding the
 * running policy with them (it must load and pass its self_test).
 */
/** Parses a JSON object of strings into a static slot: the count, *names and *values valid until
 *  the parse after next; -1 with the reason in msg. */
int policy_config_parse(const char *json, size_t len, const char *const **names, const char *const **values, char *msg,
                        size_t cap);
/** Swaps owner's collected settings in: 0; -1 malformed (nothing changed); -2 the policy refused
 *  them (the previous settings run again); the reason in policy_last_error(). */
int policy_stage_commit_config(const void *owner);
/** The settings the policy runs with (config.NAME); the count. */
int policy_settings(const char *const **names, const char *const **values);
/** True when GET /_config must not show the setting: the policy's global list secret_settings
 *  names it, or, without such a list, it is "token". Fails closed (true). */
bool policy_setting_secret(const char *name);

/** Calls on_request(req) under the sandbox; fails closed (500, policy_error). */
void policy_decide(const policy_request_t *req, policy_decision_t *out);
/** Calls the optional on_stored(req, {size=, sha256=}) before the commit (sha256 nil when
 *  sha256_hex is NULL: an upload stored without a digest); without that function the upload
 *  is accepted (status 100). */
void policy_after_body(const policy_request_t *req, uint64_t size, const char *sha256_hex, policy_decision_t *out);
/** Bytes the VM holds now in its arena. */
size_t policy_memory_in_use(void);
/** Runs a full collection, then returns the bytes still live. */
size_t policy_memory_live(void);
/** Most bytes the VM has held since policy_init. */
size_t policy_memory_high_water(void);
/** Closes the VM and returns every arena byte. */
void policy_shutdown(void);

#endif /* POSTERN_POLICY_H */
