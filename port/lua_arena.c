/* lua_arena.c: the policy VM's instance of the bounded arena: POSTERN_LUA_ARENA_SIZE static bytes behind lua_Alloc. */
#include "lua_arena.h"

#include <stdint.h>

#include "arena.h"
#include "postern_opts.h"

#if POSTERN_LUA_ARENA_SIZE < 1024 || POSTERN_LUA_ARENA_SIZE > 0x7FFFFFF0
#error "POSTERN_LUA_ARENA_SIZE must lie between 1 KiB and 2 GiB"
#endif

static _Alignas(16) uint8_t lua_arena_mem[POSTERN_LUA_ARENA_SIZE];
static arena_t lua_arena;

/** Empties the arena (every block is forgotten): call before lua_newstate. */
void lua_arena_init(void)
{
  arena_init(&lua_arena, lua_arena_mem, sizeof lua_arena_mem);
}

/** The lua_Alloc of the policy VM (see lua_arena.h for the contract). */
void *lua_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  (void)ud;
  (void)osize; /* the arena knows each block's size; osize is a type tag for new objects */
  return arena_realloc(&lua_arena, ptr, nsize);
}

/** Bytes in use now, block headers and alignment included. */
size_t lua_arena_in_use(void)
{
  return arena_in_use(&lua_arena);
}

/** Most bytes in use since lua_arena_init or the last reset. */
size_t lua_arena_high_water(void)
{
  return arena_high_water(&lua_arena);
}

/** Restarts the high-water mark from the bytes in use now. */
void lua_arena_reset_high_water(void)
{
  arena_reset_high_water(&lua_arena);
}

/** Fault injection: after n more successful allocations every one fails; -1 disables. */
void lua_arena_fail_after(long n)
{
  arena_fail_after(&lua_arena, n);
}
