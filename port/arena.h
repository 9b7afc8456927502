/* arena.h: a bounded first-fit allocator over one caller-owned static array, with in-use and high-water counters. */
#ifndef POSTERN_ARENA_H
#define POSTERN_ARENA_H

#include <stddef.h>
#include <stdint.h>

/** One arena: the array it carves and its bookkeeping (fields are private). */
typedef struct arena {
  uint8_t *base;
  uint32_t bytes;
  uint32_t free_head;
  size_t in_use;
  size_t high_water;
  long fail_countdown;
} arena_t;

/**
 * Makes `a` manage `bytes` bytes at `mem` (8-byte aligned; the size is rounded
 * down to 8). Every block is forgotten; the high-water mark restarts at 0.
 */
void arena_init(arena_t *a, void *mem, size_t bytes);
/**
 * Realloc-style entry: frees when nsize == 0, allocates when ptr is NULL,
 * otherwise resizes (shrinking in place never fails; growing moves the block
 * when it cannot grow in place). Returns NULL when the arena cannot hold the
 * request; the old block then stays intact.
 */
void *arena_realloc(arena_t *a, void *ptr, size_t nsize);
/** calloc(n, size) from the arena: zeroed, NULL on overflow or when full. */
void *arena_calloc(arena_t *a, size_t n, size_t size);
/** Frees a block of the arena (NULL is ignored). */
void arena_free(arena_t *a, void *ptr);
/** Bytes in use now, block headers and alignment included. */
size_t arena_in_use(const arena_t *a);
/** Most bytes in use since arena_init or the last reset. */
size_t arena_high_water(const arena_t *a);
/** Restarts the high-water mark from the bytes in use now. */
void arena_reset_high_water(arena_t *a);
/**
 * Fault injection for tests: after n more successful allocations (or grows),
 * every further one fails until arena_fail_after(a, -1). Frees and shrinks
 * always succeed.
 */
void arena_fail_after(arena_t *a, long n);

#endif /* POSTERN_ARENA_H */
