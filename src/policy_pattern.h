/* policy_pattern.h: the sandbox's own Lua 5.4 pattern functions, metered step by step (used by policy.c only). */
#ifndef POSTERN_POLICY_PATTERN_H
#define POSTERN_POLICY_PATTERN_H

#include "lua.h"

/** Called with the matcher steps taken since the last call (about every
 *  POSTERN_LUA_HOOK_STEP steps, and the rest when a function returns or
 *  calls back into Lua); it raises a Lua error to stop the match once the
 *  call's budget is spent. */
typedef void (*policy_pattern_charge_fn)(lua_State *L, unsigned long steps);

/** Replaces find, match, gmatch and gsub in the table at idx (the string
 *  library, which is also the strings' __index) with the metered versions.
 *  charge is the one meter of the process (the policy has one VM). */
void policy_pattern_install(lua_State *L, int idx, policy_pattern_charge_fn charge);

/** Marks the C stack's depth where a policy call begins: a pattern function
 *  entered more than POSTERN_POLICY_C_STACK bytes below it (a gsub whose
 *  replacement function calls gsub, and so on) raises "C stack overflow"
 *  instead of overrunning a board's small stack. */
void policy_pattern_mark_stack(void);

#endif /* POSTERN_POLICY_PATTERN_H */
