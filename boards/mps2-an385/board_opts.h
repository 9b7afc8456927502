/* board_opts.h: postern and lwIP options of the mps2-an385 firmware, sized for its 128 KiB RAM budget. */
#ifndef POSTERN_BOARD_OPTS_H
#define POSTERN_BOARD_OPTS_H

/*
 * RAM budget (PRODUCT.md section 10: 128 KiB for static data and heaps):
 *   Lua arena                      40 KiB  (the default policy keeps 16 KiB live; the collector uses the rest)
 *   lwIP heap (MEM_SIZE)           12 KiB  (responses and unacknowledged segments)
 *   lwIP PBUF_POOL 10 x 1.5 KiB   ~15 KiB  (received frames: the 6-MSS window and out-of-order segments)
 *   LAN9118 frame queue 4 x 1.5   ~6 KiB  (the controller's own 10,560-byte FIFO holds the rest)
 *   main stack                      8 KiB  (mps2_an385.ld)
 *   the rest: pcbs, connections, storage index, libc, Lua and lwIP globals
 * `make BOARD=mps2-an385 size` prints the measured figures.
 */
#define MEM_ALIGNMENT 4
#ifndef MEM_SIZE
#define MEM_SIZE (12 * 1024)
#endif
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 10
#endif
#ifndef LAN9118_RX_SLOTS
#define LAN9118_RX_SLOTS 4
#endif
#ifndef POSTERN_LUA_ARENA_SIZE
#define POSTERN_LUA_ARENA_SIZE (24u * 1024u)
#endif
/* One TLS session: a client that reconnects while its last connection is
 * still closing (a lingering close lasts POSTERN_LINGER_S) waits for it. */
#ifndef POSTERN_TLS_ACCEPT_WAIT_S
#define POSTERN_TLS_ACCEPT_WAIT_S 4
#endif
#ifndef POSTERN_TLS_HEAP_SIZE
#define POSTERN_TLS_HEAP_SIZE (32u * 1024u)
#endif

/* lwIP asserts print through the console logger and stop the device (no stdio on the board). */
void board_assert_failed(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(msg) board_assert_failed((msg), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
  } while (0)

#endif /* POSTERN_BOARD_OPTS_H */
