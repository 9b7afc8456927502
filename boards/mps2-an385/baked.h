/* baked.h: settings, policy, storage capacity, entropy seed and TLS credentials baked into an image at build time (scripts/bake.sh). */
#ifndef POSTERN_BAKED_H
#define POSTERN_BAKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "postern_opts.h"

/** Settings from SET="NAME=VALUE ..." (capacity excluded), seen by Lua as config.NAME. */
extern const char *const baked_setting_names[];
extern const char *const baked_setting_values[];
extern const int baked_setting_count;

/** The policy script's text (POLICY=...), its length and its base name for error messages. */
extern const char baked_policy[];
extern const size_t baked_policy_len;
extern const char baked_policy_name[];

/** The emulated flash medium (SET capacity=..., default 3M), placed outside RAM by the linker script. */
extern uint8_t baked_medium[];
extern const uint32_t baked_medium_size;

/** The flash model's timing profile (FLASH_TIMING=instant|nor|slow; flash_timing_find). */
extern const char baked_flash_timing[];

/** 32 bytes from the build machine's /dev/urandom: the entropy seed (emulation only, see board.c). */
extern const uint8_t baked_entropy_seed[32];

#if POSTERN_TLS
/** The HTTPS server's certificate chain and private key (CERT=, KEY=; PEM with its NUL counted, or DER). */
extern const uint8_t baked_tls_cert[];
extern const size_t baked_tls_cert_len;
extern const uint8_t baked_tls_key[];
extern const size_t baked_tls_key_len;
/** The CA of client certificates (CLIENT_CA=; length 0 when none is asked for) and CLIENT_CERT=required. */
extern const uint8_t baked_tls_client_ca[];
extern const size_t baked_tls_client_ca_len;
extern const bool baked_tls_client_cert_required;
#endif /* POSTERN_TLS */

/** The image's variant name (VARIANT=..., default "default"). */
extern const char baked_variant[];

#endif /* POSTERN_BAKED_H */
