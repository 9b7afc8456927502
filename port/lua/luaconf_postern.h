/* luaconf_postern.h: postern's Lua settings, forced in front of every Lua source file. */
#ifndef POSTERN_LUACONF_H
#define POSTERN_LUACONF_H

/* Nested C calls and parser levels: a policy cannot recurse the device's
 * small C stack away (Lua's default is 200). */
#define LUAI_MAXCCALLS 64

#endif /* POSTERN_LUACONF_H */
