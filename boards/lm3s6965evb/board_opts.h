/* board_opts.h: postern and lwIP options of the lm3s6965evb firmware, sized for the LM3S6965's 64 KiB of SRAM. */
#ifndef POSTERN_BOARD_OPTS_H
#define POSTERN_BOARD_OPTS_H

/*
 * 64 KiB of SRAM hold everything: static data, pools, arenas and the stack;
 * there is no heap. HTTP only (no TLS: a TLS 1.3 handshake alone needs about
 * 25 KiB of heap, and a record buffer 16 KiB more), two connection slots.
 * `make BOARD=lm3s6965evb size` prints the figures per component, the
 * README the budget and GET /_status the high-water marks.
 */
#define MEM_ALIGNMENT 4
#ifndef POSTERN_MAX_CONNS
#define POSTERN_MAX_CONNS 2
#endif
#ifndef MEM_SIZE
#define MEM_SIZE (5 * 1024)
#endif
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 6
#endif
/* Two segments in flight per connection: what the pool can take from two clients at once. */
#ifndef TCP_WND
#define TCP_WND (2 * TCP_MSS)
#endif
#ifndef TCP_SND_BUF
#define TCP_SND_BUF (2 * TCP_MSS)
#endif
#ifndef POSTERN_POOL_RESERVE
#define POSTERN_POOL_RESERVE 2
#endif
#ifndef MEMP_NUM_TCP_PCB
#define MEMP_NUM_TCP_PCB (POSTERN_MAX_CONNS + 3)
#endif
#ifndef STORAGE_SD_MAX_FILES
#define STORAGE_SD_MAX_FILES 8
#endif
#ifndef POSTERN_TARGET_MAX
#define POSTERN_TARGET_MAX 256
#endif
#ifndef POSTERN_LUA_ARENA_SIZE
#define POSTERN_LUA_ARENA_SIZE (22u * 1024u)
#endif
#ifndef POSTERN_HEAD_MAX
#define POSTERN_HEAD_MAX 1024
#endif

/* PUT /_policy collects into 2 KiB (the default policy without its comments is 1.5 KiB); a
 * policy on the card is read into a buffer of the same size. No /_config: the settings live on
 * the card, written by scripts/card.py. */
#ifndef POSTERN_POLICY_MAX
#define POSTERN_POLICY_MAX 2048u
#endif
#ifndef POSTERN_CONFIG_ROUTE
#define POSTERN_CONFIG_ROUTE 0
#endif

/* A policy call starts about 2.2 KiB into the 6 KiB main stack; nested pattern functions stop 2.5 KiB below it. */
#ifndef POSTERN_POLICY_C_STACK
#define POSTERN_POLICY_C_STACK (2560u)
#endif

/* One self-test connection (echo or discard) at a time. */
#ifndef POSTERN_SELFTEST_MAX_CONNS
#define POSTERN_SELFTEST_MAX_CONNS 1
#endif
#ifndef POSTERN_SELFTEST_ECHO_BUF
#define POSTERN_SELFTEST_ECHO_BUF 1460
#endif

/* lwIP asserts print through the console logger and stop the device (no stdio on the board). */
void board_assert_failed(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(msg) board_assert_failed((msg), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
  } while (0)

#endif /* POSTERN_BOARD_OPTS_H */
