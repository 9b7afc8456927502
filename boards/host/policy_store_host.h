/* policy_store_host.h: the host's keeping of an accepted policy, in the storage folder (see policy_store.h). */
#ifndef POSTERN_POLICY_STORE_HOST_H
#define POSTERN_POLICY_STORE_HOST_H

#include <stdbool.h>
#include <stddef.h>

/** The policy accepted last, and the one accepted before it (the fallback at boot). */
#define POLICY_STORE_HOST_CURRENT ".policy.lua"
#define POLICY_STORE_HOST_PREVIOUS ".policy.prev.lua"
/** The settings accepted last by PUT /_config, a JSON object of strings. */
#define POLICY_STORE_HOST_CONFIG ".config.json"

/** Where the store lives: the storage folder (its backend hides dot-files from listings). */
void policy_store_host_init(const char *dir);
/** Moves a kept policy that did not load aside as .policy.bad.lua, so that a later save never keeps it as the fallback. */
void policy_store_host_set_aside(const char *name);
/** Reads a kept file (one of the POLICY_STORE_HOST_* names) into buf; its length, or -1 when absent or too large. */
long policy_store_host_read(const char *name, char *buf, size_t cap);

#endif /* POSTERN_POLICY_STORE_HOST_H */
