/* baked.h: settings, policy, storage capacity and entropy seed baked into an image at build time (scripts/bake.sh). */
#ifndef POSTERN_BAKED_H
#define POSTERN_BAKED_H

#include <stddef.h>
#include <stdint.h>

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

/** 32 bytes from the build machine's /dev/urandom: the entropy seed (emulation only, see board.c). */
extern const uint8_t baked_entropy_seed[32];

/** The image's variant name (VARIANT=..., default "default"). */
extern const char baked_variant[];

#endif /* POSTERN_BAKED_H */
