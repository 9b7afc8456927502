/* lua_arena.c: first-fit, address-ordered, coalescing allocator over one static array, for Lua. */
#include "lua_arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "postern_opts.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifndef ARENA_ASAN
#define ARENA_ASAN 0
#endif

#if ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 8u
#define HDR 8u                       /* block header: size word + aux word */
#define MIN_BLOCK (HDR + ALIGN)      /* smallest block worth splitting off */
#define ARENA_BYTES ((uint32_t)(POSTERN_LUA_ARENA_SIZE) & ~(uint32_t)(ALIGN - 1))
#define NIL UINT32_MAX               /* end of the free list */
#define USED 1u                      /* low bit of the size word */

#if POSTERN_LUA_ARENA_SIZE < 1024 || POSTERN_LUA_ARENA_SIZE > 0x7FFFFFF0
#error "POSTERN_LUA_ARENA_SIZE must lie between 1 KiB and 2 GiB"
#endif

/*
 * Every block starts with a header: size (bytes of the whole block, a
 * multiple of 8, low bit set when in use) and aux (in use: the size Lua asked
 * for; free: offset of the next free block, in address order, or NIL).
 */
typedef struct block {
  uint32_t size;
  uint32_t aux;
} block_t;

static _Alignas(16) uint8_t arena[ARENA_BYTES];
static uint32_t free_head = NIL;
static size_t in_use;
static size_t high_water;
static long fail_countdown = -1;

static block_t *blk(uint32_t off) {
  return (block_t *)(void *)(arena + off);
}

static uint32_t bsize(uint32_t off) {
  return blk(off)->size & ~USED;
}

/* Writes a header (its 8 bytes become addressable first). */
static void set_hdr(uint32_t off, uint32_t size, uint32_t aux) {
  ARENA_UNPOISON(arena + off, HDR);
  blk(off)->size = size;
  blk(off)->aux = aux;
}

static void mark_free(uint32_t off) {
  ARENA_POISON(arena + off + HDR, bsize(off) - HDR);
}

static void mark_used(uint32_t off, size_t n) {
  ARENA_UNPOISON(arena + off + HDR, n);
  ARENA_POISON(arena + off + HDR + n, bsize(off) - HDR - n);
}

static uint32_t need_for(size_t n) {
  size_t need = ((n + ALIGN - 1) & ~(size_t)(ALIGN - 1)) + HDR;
  return need < MIN_BLOCK ? MIN_BLOCK : (uint32_t)need;
}

static void account(long delta) {
  in_use = (size_t)((long)in_use + delta);
  if (in_use > high_water) {
    high_water = in_use;
  }
}

/* Inserts free block off (size already set) in address order and merges it
 * with its free neighbours. */
static void insert_free(uint32_t off) {
  uint32_t prev = NIL, cur = free_head;
  while (cur != NIL && cur < off) {
    prev = cur;
    cur = blk(cur)->aux;
  }
  uint32_t size = bsize(off);
  if (cur != NIL && off + size == cur) { /* merge with the next one */
    size += bsize(cur);
    cur = blk(cur)->aux;
  }
  if (prev != NIL && prev + bsize(prev) == off) { /* merge into the previous one */
    set_hdr(prev, bsize(prev) + size, cur);
    ARENA_POISON(arena + off, HDR);
    mark_free(prev);
    return;
  }
  set_hdr(off, size, cur);
  mark_free(off);
  if (prev == NIL) {
    free_head = off;
  } else {
    blk(prev)->aux = off;
  }
}

/* Trims used block off to `need` bytes, returning the tail to the free list. */
static void trim(uint32_t off, uint32_t need) {
  uint32_t size = bsize(off);
  if (size - need >= MIN_BLOCK) {
    blk(off)->size = need | USED;
    set_hdr(off + need, size - need, NIL);
    insert_free(off + need);
    account(-(long)(size - need));
  }
}

static void *arena_malloc(size_t n) {
  uint32_t need = need_for(n);
  uint32_t prev = NIL, cur = free_head;
  while (cur != NIL && bsize(cur) < need) {
    prev = cur;
    cur = blk(cur)->aux;
  }
  if (cur == NIL) {
    return NULL;
  }
  uint32_t size = bsize(cur), next = blk(cur)->aux;
  if (size - need >= MIN_BLOCK) { /* split: the tail stays free */
    set_hdr(cur + need, size - need, next);
    mark_free(cur + need);
    next = cur + need;
    size = need;
  }
  if (prev == NIL) {
    free_head = next;
  } else {
    blk(prev)->aux = next;
  }
  set_hdr(cur, size | USED, (uint32_t)n);
  mark_used(cur, n);
  account((long)size);
  return arena + cur + HDR;
}

static void arena_free(uint32_t off) {
  account(-(long)bsize(off));
  blk(off)->size = bsize(off);
  insert_free(off);
}

/* Grows used block off in place to `need` bytes when the next block is free
 * and big enough. */
static bool grow_in_place(uint32_t off, uint32_t need) {
  uint32_t size = bsize(off), next = off + size;
  uint32_t prev = NIL, cur = free_head;
  while (cur != NIL && cur < next) {
    prev = cur;
    cur = blk(cur)->aux;
  }
  if (cur != next || size + bsize(cur) < need) {
    return false;
  }
  uint32_t after = blk(cur)->aux, total = size + bsize(cur);
  if (prev == NIL) {
    free_head = after;
  } else {
    blk(prev)->aux = after;
  }
  ARENA_POISON(arena + cur, HDR);
  blk(off)->size = total | USED;
  account((long)(total - size));
  trim(off, need);
  return true;
}

/** Empties the arena (every block is forgotten): call before lua_newstate. */
void lua_arena_init(void) {
  ARENA_UNPOISON(arena, sizeof arena);
  set_hdr(0, ARENA_BYTES, NIL);
  mark_free(0);
  free_head = 0;
  in_use = 0;
  high_water = 0;
}

/** The lua_Alloc of the policy VM (see lua_arena.h for the contract). */
void *lua_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) {
    osize = 0; /* osize is an object type tag then */
  }
  if (nsize == 0) {
    if (ptr != NULL) {
      arena_free((uint32_t)((uint8_t *)ptr - arena) - HDR);
    }
    return NULL;
  }
  if (nsize > ARENA_BYTES) {
    return NULL;
  }
  if (ptr == NULL || nsize > osize) { /* an allocation or a grow: may fail */
    if (fail_countdown == 0) {
      return NULL;
    }
    if (fail_countdown > 0) {
      fail_countdown--;
    }
  }
  if (ptr == NULL) {
    return arena_malloc(nsize);
  }
  uint32_t off = (uint32_t)((uint8_t *)ptr - arena) - HDR;
  uint32_t need = need_for(nsize);
  size_t old = blk(off)->aux;
  if (need <= bsize(off)) { /* fits: shrink (or stay) in place */
    blk(off)->aux = (uint32_t)nsize;
    mark_used(off, nsize);
    trim(off, need);
    return ptr;
  }
  if (grow_in_place(off, need)) {
    blk(off)->aux = (uint32_t)nsize;
    mark_used(off, nsize);
    return ptr;
  }
  void *moved = arena_malloc(nsize);
  if (moved == NULL) {
    return NULL; /* the old block stays intact */
  }
  memcpy(moved, ptr, old < nsize ? old : nsize);
  arena_free(off);
  return moved;
}

/** Bytes in use now, block headers and alignment included. */
size_t lua_arena_in_use(void) {
  return in_use;
}

/** Most bytes in use since lua_arena_init or the last reset. */
size_t lua_arena_high_water(void) {
  return high_water;
}

/** Restarts the high-water mark from the bytes in use now. */
void lua_arena_reset_high_water(void) {
  high_water = in_use;
}

/** Fault injection: after n more successful allocations every one fails; -1 disables. */
void lua_arena_fail_after(long n) {
  fail_countdown = n < 0 ? -1 : n;
}
