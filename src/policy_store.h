/* policy_store.h: the board's hook that keeps a policy accepted by PUT /_policy for the next boot. */
#ifndef POSTERN_POLICY_STORE_H
#define POSTERN_POLICY_STORE_H

#include <stddef.h>

/** What policy_store_save() did. */
enum policy_store_result {
  POLICY_STORE_KEPT = 0,   /* durable: the next boot runs it (the one kept before is its fallback) */
  POLICY_STORE_RAM = 1,    /* the board keeps nothing across a reset: it runs until then */
  POLICY_STORE_FAILED = -1 /* not kept (logged): the next boot runs what it ran before */
};

/** Keeps source[0..len) as the policy of the next boot; a policy_store_result. */
int policy_store_save(const char *source, size_t len);
/** Keeps the n settings (PUT /_config) for the next boot, secrets included; a policy_store_result. */
int policy_store_save_config(const char *const *names, const char *const *values, int n);

#endif /* POSTERN_POLICY_STORE_H */
