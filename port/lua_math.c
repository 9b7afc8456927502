/* lua_math.c: the policy sandbox's math library: integer and rounding helpers, without trigonometry, logarithms or random numbers.
 *
 * Lua's own lmathlib.c pulls libm's sin, cos, tan, asin, acos, atan, exp and
 * log into the image (about 10 KiB of Cortex-M3 code) and a random generator
 * a policy cannot seed from anything secret. A policy compares sizes, names
 * and tokens; what it may need of math is here, with Lua 5.4's semantics:
 * abs, ceil, floor, fmod, max, min, tointeger, type, ult, huge, pi,
 * maxinteger and mininteger. The `^` operator stays (it is the VM's).
 */
#include "lua_math.h"

#include <math.h>
#include <stdbool.h>

#include "lauxlib.h"

/* A float that holds an integer value becomes that integer when it fits, as floor and ceil answer. */
static void math_push_rounded(lua_State *L, lua_Number f)
{
  lua_Integer n;
  if (lua_numbertointeger(f, &n)) {
    lua_pushinteger(L, n);
  } else {
    lua_pushnumber(L, f);
  }
}

static int math_abs(lua_State *L)
{
  if (lua_isinteger(L, 1)) {
    lua_Integer n = lua_tointeger(L, 1);
    lua_pushinteger(L, n < 0 ? (lua_Integer)(0u - (lua_Unsigned)n) : n); /* wraps for mininteger, as Lua does */
  } else {
    lua_pushnumber(L, fabs(luaL_checknumber(L, 1)));
  }
  return 1;
}

static int math_floor(lua_State *L)
{
  if (lua_isinteger(L, 1)) {
    lua_settop(L, 1);
  } else {
    math_push_rounded(L, floor(luaL_checknumber(L, 1)));
  }
  return 1;
}

static int math_ceil(lua_State *L)
{
  if (lua_isinteger(L, 1)) {
    lua_settop(L, 1);
  } else {
    math_push_rounded(L, ceil(luaL_checknumber(L, 1)));
  }
  return 1;
}

static int math_fmod(lua_State *L)
{
  if (lua_isinteger(L, 1) && lua_isinteger(L, 2)) {
    lua_Integer a = lua_tointeger(L, 1), b = lua_tointeger(L, 2);
    if (b == 0) {
      return luaL_argerror(L, 2, "zero");
    }
    lua_pushinteger(L, b == -1 ? 0 : a % b); /* C's %: the sign of the dividend, as fmod; -1 avoids overflow */
  } else {
    lua_pushnumber(L, fmod(luaL_checknumber(L, 1), luaL_checknumber(L, 2)));
  }
  return 1;
}

/* max (op LUA_OPLT with the arguments swapped) and min share one walk. */
static int math_pick(lua_State *L, bool want_max)
{
  int n = lua_gettop(L);
  luaL_argcheck(L, n >= 1, 1, "number expected");
  int best = 1;
  for (int i = 1; i <= n; i++) {
    luaL_checknumber(L, i);
    if (i > 1 && (want_max ? lua_compare(L, best, i, LUA_OPLT) : lua_compare(L, i, best, LUA_OPLT))) {
      best = i;
    }
  }
  lua_pushvalue(L, best);
  return 1;
}

static int math_max(lua_State *L)
{
  return math_pick(L, true);
}

static int math_min(lua_State *L)
{
  return math_pick(L, false);
}

static int math_tointeger(lua_State *L)
{
  int ok = 0;
  lua_Integer n = lua_type(L, 1) == LUA_TNUMBER ? lua_tointegerx(L, 1, &ok) : 0;
  luaL_checkany(L, 1);
  if (ok) {
    lua_pushinteger(L, n);
  } else {
    luaL_pushfail(L);
  }
  return 1;
}

static int math_type(lua_State *L)
{
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_pushstring(L, lua_isinteger(L, 1) ? "integer" : "float");
  } else {
    luaL_checkany(L, 1);
    luaL_pushfail(L);
  }
  return 1;
}

static int math_ult(lua_State *L)
{
  lua_pushboolean(L, (lua_Unsigned)luaL_checkinteger(L, 1) < (lua_Unsigned)luaL_checkinteger(L, 2));
  return 1;
}

int lua_math_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
      {"abs", math_abs}, {"ceil", math_ceil}, {"floor", math_floor},         {"fmod", math_fmod}, {"max", math_max},
      {"min", math_min}, {"type", math_type}, {"tointeger", math_tointeger}, {"ult", math_ult},   {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_pushnumber(L, (lua_Number)HUGE_VAL);
  lua_setfield(L, -2, "huge");
  lua_pushnumber(L, (lua_Number)3.141592653589793238462643383279502884);
  lua_setfield(L, -2, "pi");
  lua_pushinteger(L, LUA_MAXINTEGER);
  lua_setfield(L, -2, "maxinteger");
  lua_pushinteger(L, LUA_MININTEGER);
  lua_setfield(L, -2, "mininteger");
  return 1;
}
