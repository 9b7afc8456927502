/* lua_math.h: the policy sandbox's math library (integer and rounding helpers; no trigonometry, logarithms or random numbers). */
#ifndef POSTERN_LUA_MATH_H
#define POSTERN_LUA_MATH_H

#include "lua.h"

/** Opens the sandbox's `math` table (a lua_CFunction for luaL_requiref, like luaopen_math). */
int lua_math_open(lua_State *L);

#endif /* POSTERN_LUA_MATH_H */
