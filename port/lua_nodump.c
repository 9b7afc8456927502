/* lua_nodump.c: Lua's binary chunk reader and writer, left out: the policy sandbox loads text only and has no string.dump.
 *
 * policy.c loads every script with mode "t" (a bytecode loader is a way around a
 * VM without a verifier) and removes string.dump, so lundump.c and ldump.c
 * would be dead weight: 2.6 KiB of Cortex-M3 code. These two stand in for
 * them and fail like Lua's own refusals, should anything reach them.
 */
#include "luaconf_postern.h" /* first, as every Lua source file has it */

#include "ldo.h"
#include "lobject.h"
#include "lundump.h"

LClosure *luaU_undump(lua_State *L, ZIO *Z, const char *name)
{
  (void)Z;
  luaO_pushfstring(L, "%s: binary chunks are not loaded", name);
  luaD_throw(L, LUA_ERRSYNTAX);
  return NULL; /* not reached */
}

int luaU_dump(lua_State *L, const Proto *f, lua_Writer w, void *data, int strip)
{
  (void)L, (void)f, (void)w, (void)data, (void)strip;
  return 1; /* lua_dump's caller says "unable to dump given function" */
}
