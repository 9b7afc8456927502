/* lua_arena.h: the bounded allocator behind the policy's Lua VM: a static arena of POSTERN_LUA_ARENA_SIZE bytes. */
#ifndef POSTERN_LUA_ARENA_H
#define POSTERN_LUA_ARENA_H

#include <stddef.h>

/** Empties the arena (every block is forgotten): call before lua_newstate. */
void lua_arena_init(void);
/**
 * The lua_Alloc of the policy VM: frees when nsize == 0, allocates when ptr is
 * NULL, otherwise reallocates (shrinking in place never fails; growing moves
 * the block when it cannot grow in place). Returns NULL when the arena cannot
 * hold the request; Lua then collects and retries, and finally raises a
 * memory error. ud is unused.
 */
void *lua_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/** Bytes in use now, block headers and alignment included. */
size_t lua_arena_in_use(void);
/** Most bytes in use since lua_arena_init or the last reset. */
size_t lua_arena_high_water(void);
/** Restarts the high-water mark from the bytes in use now. */
void lua_arena_reset_high_water(void);
/**
 * Fault injection for tests: after n more successful allocations (or grows),
 * every further one fails until lua_arena_fail_after(-1). n == 0 fails the
 * very next one. Frees and shrinks always succeed.
 */
void lua_arena_fail_after(long n);

#endif /* POSTERN_LUA_ARENA_H */
