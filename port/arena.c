/* arena.c: first-fit, address-ordered, coalescing allocator over one caller-owned array (Lua VM, TLS heap). */
#include "arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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
#define HDR 8u                  /* block header: size word + aux word */
#define MIN_BLOCK (HDR + ALIGN) /* smallest block worth splitting off */
#define NIL UINT32_MAX          /* end of the free list */
#define USED 1u                 /* low bit of the size word */

/*
 * Every block starts with a header: size (bytes of the whole block, a
 * multiple of 8, low bit set when in use) and aux (in use: the size asked
 * for; free: offset of the next free block, in address order, or NIL).
 */
typedef struct block {
  uint32_t size;
  uint32_t aux;
} block_t;

static block_t *blk(arena_t *a, uint32_t off)
{
  return (block_t *)(void *)(a->base + off);
}

static uint32_t bsize(arena_t *a, uint32_t off)
{
  return blk(a, off)->size & ~USED;
}

/* Writes a header (its 8 bytes become addressable first). */
static void set_hdr(arena_t *a, uint32_t off, uint32_t size, uint32_t aux)
{
  ARENA_UNPOISON(a->base + off, HDR);
  blk(a, off)->size = size;
  blk(a, off)->aux = aux;
}

static void mark_free(arena_t *a, uint32_t off)
{
  ARENA_POISON(a->base + off + HDR, bsize(a, off) - HDR);
}

static void mark_used(arena_t *a, uint32_t off, size_t n)
{
  ARENA_UNPOISON(a->base + off + HDR, n);
  ARENA_POISON(a->base + off + HDR + n, bsize(a, off) - HDR - n);
}

static uint32_t need_for(size_t n)
{
  size_t need = ((n + ALIGN - 1) & ~(size_t)(ALIGN - 1)) + HDR;
  return need < MIN_BLOCK ? MIN_BLOCK : (uint32_t)need;
}

static void account(arena_t *a, long delta)
{
  a->in_use = (size_t)((long)a->in_use + delta);
  if (a->in_use > a->high_water) {
    a->high_water = a->in_use;
  }
}

/* Inserts free block off (size already set) in address order and merges it
 * with its free neighbours. */
static void insert_free(arena_t *a, uint32_t off)
{
  uint32_t prev = NIL, cur = a->free_head;
  while (cur != NIL && cur < off) {
    prev = cur;
    cur = blk(a, cur)->aux;
  }
  uint32_t size = bsize(a, off);
  if (cur != NIL && off + size == cur) { /* merge with the next one */
    size += bsize(a, cur);
    cur = blk(a, cur)->aux;
  }
  if (prev != NIL && prev + bsize(a, prev) == off) { /* merge into the previous one */
    set_hdr(a, prev, bsize(a, prev) + size, cur);
    ARENA_POISON(a->base + off, HDR);
    mark_free(a, prev);
    return;
  }
  set_hdr(a, off, size, cur);
  mark_free(a, off);
  if (prev == NIL) {
    a->free_head = off;
  } else {
    blk(a, prev)->aux = off;
  }
}

/* Trims used block off to `need` bytes, returning the tail to the free list. */
static void trim(arena_t *a, uint32_t off, uint32_t need)
{
  uint32_t size = bsize(a, off);
  if (size - need >= MIN_BLOCK) {
    blk(a, off)->size = need | USED;
    set_hdr(a, off + need, size - need, NIL);
    insert_free(a, off + need);
    account(a, -(long)(size - need));
  }
}

static void *block_alloc(arena_t *a, size_t n)
{
  uint32_t need = need_for(n);
  uint32_t prev = NIL, cur = a->free_head;
  while (cur != NIL && bsize(a, cur) < need) {
    prev = cur;
    cur = blk(a, cur)->aux;
  }
  if (cur == NIL) {
    return NULL;
  }
  uint32_t size = bsize(a, cur), next = blk(a, cur)->aux;
  if (size - need >= MIN_BLOCK) { /* split: the tail stays free */
    set_hdr(a, cur + need, size - need, next);
    mark_free(a, cur + need);
    next = cur + need;
    size = need;
  }
  if (prev == NIL) {
    a->free_head = next;
  } else {
    blk(a, prev)->aux = next;
  }
  set_hdr(a, cur, size | USED, (uint32_t)n);
  mark_used(a, cur, n);
  account(a, (long)size);
  return a->base + cur + HDR;
}

static void block_free(arena_t *a, uint32_t off)
{
  account(a, -(long)bsize(a, off));
  blk(a, off)->size = bsize(a, off);
  insert_free(a, off);
}

/* Grows used block off in place to `need` bytes when the next block is free
 * and big enough. */
static bool grow_in_place(arena_t *a, uint32_t off, uint32_t need)
{
  uint32_t size = bsize(a, off), next = off + size;
  uint32_t prev = NIL, cur = a->free_head;
  while (cur != NIL && cur < next) {
    prev = cur;
    cur = blk(a, cur)->aux;
  }
  if (cur != next || size + bsize(a, cur) < need) {
    return false;
  }
  uint32_t after = blk(a, cur)->aux, total = size + bsize(a, cur);
  if (prev == NIL) {
    a->free_head = after;
  } else {
    blk(a, prev)->aux = after;
  }
  ARENA_POISON(a->base + cur, HDR);
  blk(a, off)->size = total | USED;
  account(a, (long)(total - size));
  trim(a, off, need);
  return true;
}

/* Consumes one unit of the fault-injection countdown; false: fail this one. */
static bool may_grow(arena_t *a)
{
  if (a->fail_countdown == 0) {
    return false;
  }
  if (a->fail_countdown > 0) {
    a->fail_countdown--;
  }
  return true;
}

/** Makes `a` manage `bytes` bytes at `mem`; every block is forgotten. */
void arena_init(arena_t *a, void *mem, size_t bytes)
{
  if (bytes > 0x7FFFFFF0u) {
    bytes = 0x7FFFFFF0u;
  }
  a->base = mem;
  a->bytes = (uint32_t)bytes & ~(uint32_t)(ALIGN - 1);
  a->in_use = 0;
  a->high_water = 0;
  a->fail_countdown = -1;
  ARENA_UNPOISON(a->base, a->bytes);
  set_hdr(a, 0, a->bytes, NIL);
  mark_free(a, 0);
  a->free_head = 0;
}

/** Realloc-style allocation from the arena (see arena.h for the contract). */
void *arena_realloc(arena_t *a, void *ptr, size_t nsize)
{
  if (nsize == 0) {
    arena_free(a, ptr);
    return NULL;
  }
  if (nsize > a->bytes) {
    return NULL;
  }
  if (ptr == NULL) {
    return may_grow(a) ? block_alloc(a, nsize) : NULL;
  }
  uint32_t off = (uint32_t)((uint8_t *)ptr - a->base) - HDR;
  uint32_t need = need_for(nsize);
  size_t old = blk(a, off)->aux;
  if (nsize > old && !may_grow(a)) {
    return NULL;
  }
  if (need <= bsize(a, off)) { /* fits: shrink (or stay) in place */
    blk(a, off)->aux = (uint32_t)nsize;
    mark_used(a, off, nsize);
    trim(a, off, need);
    return ptr;
  }
  if (grow_in_place(a, off, need)) {
    blk(a, off)->aux = (uint32_t)nsize;
    mark_used(a, off, nsize);
    return ptr;
  }
  void *moved = block_alloc(a, nsize);
  if (moved == NULL) {
    return NULL; /* the old block stays intact */
  }
  memcpy(moved, ptr, old < nsize ? old : nsize);
  block_free(a, off);
  return moved;
}

/** calloc(n, size) from the arena: zeroed, NULL on overflow or when full. */
void *arena_calloc(arena_t *a, size_t n, size_t size)
{
  if (n == 0 || size == 0 || n > SIZE_MAX / size) {
    return NULL;
  }
  void *p = arena_realloc(a, NULL, n * size);
  if (p != NULL) {
    memset(p, 0, n * size);
  }
  return p;
}

/** Frees a block of the arena (NULL is ignored). */
void arena_free(arena_t *a, void *ptr)
{
  if (ptr != NULL) {
    block_free(a, (uint32_t)((uint8_t *)ptr - a->base) - HDR);
  }
}

/** Bytes in use now, block headers and alignment included. */
size_t arena_in_use(const arena_t *a)
{
  return a->in_use;
}

/** Most bytes in use since arena_init or the last reset. */
size_t arena_high_water(const arena_t *a)
{
  return a->high_water;
}

/** Restarts the high-water mark from the bytes in use now. */
void arena_reset_high_water(arena_t *a)
{
  a->high_water = a->in_use;
}

/** Fault injection: after n more successful allocations every one fails; -1 disables. */
void arena_fail_after(arena_t *a, long n)
{
  a->fail_countdown = n < 0 ? -1 : n;
}
