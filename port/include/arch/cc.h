/* cc.h: lwIP's compiler and platform glue for postern (shared by every board). */
#ifndef POSTERN_ARCH_CC_H
#define POSTERN_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>

#include "board_opts.h" /* a board may bring its own diagnostics */
#include "platform.h"

/* lwIP's diagnostics and asserts: stdio by default; a board without stdio
 * defines its own in board_opts.h. */
#ifndef LWIP_PLATFORM_DIAG
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    printf x;                 \
  } while (0)
#endif /* LWIP_PLATFORM_DIAG */

#ifndef LWIP_PLATFORM_ASSERT
#define LWIP_PLATFORM_ASSERT(msg)                                     \
  do {                                                                \
    printf("lwip assert \"%s\" at %s:%d\n", msg, __FILE__, __LINE__); \
    fflush(stdout);                                                   \
    abort();                                                          \
  } while (0)
#endif /* LWIP_PLATFORM_ASSERT */

/* SYS_ARCH_PROTECT's saved level (NO_SYS 0; an RTOS's sys_arch may use another type in its own cc.h). */
typedef unsigned int sys_prot_t;

/* Initial sequence numbers and ephemeral ports come from the board. */
#define LWIP_RAND() (platform_random())

#endif /* POSTERN_ARCH_CC_H */
