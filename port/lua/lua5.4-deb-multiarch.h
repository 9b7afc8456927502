/* lua5.4-deb-multiarch.h: satisfies the include Debian's Lua patch adds to luaconf.h (module paths, unused: postern loads no modules). */
#ifndef POSTERN_LUA_DEB_MULTIARCH_H
#define POSTERN_LUA_DEB_MULTIARCH_H

#define DEB_HOST_MULTIARCH "postern"

#endif /* POSTERN_LUA_DEB_MULTIARCH_H */
