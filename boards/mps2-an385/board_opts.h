/* board_opts.h: postern and lwIP options of the mps2-an385 firmware, sized for its 128 KiB RAM budget. */
#ifndef POSTERN_BOARD_OPTS_H
#define POSTERN_BOARD_OPTS_H

/*
 * RAM budget (128 KiB for static data and heaps, with
 * 1 TLS and 3 plain connections). Measured under QEMU, 2026-11-22:
 *   TLS heap                       32 KiB  (1 session; peak 24,624 B for a TLS 1.3 or 1.2 handshake and a
 *                                           1 MiB upload, 24,800 B with P-256 or a HelloRetryRequest,
 *                                           28,576 B with a client certificate; 28 KiB failed mutual TLS
 *                                           through fragmentation, 29 KiB passed: 4 KiB margin)
 *   Lua arena                      24 KiB  (default policy 16,488 B live; the examples up to 18,536 B live,
 *                                           quota.lua peaks at 24,496 B compiling; at 20 KiB
 *                                           basic_users.lua and quota.lua do not load)
 *   lwIP heap (MEM_SIZE)           10 KiB  (responses and unacknowledged segments; high water 6,160 B)
 *   lwIP PBUF_POOL 10 x 1.5 KiB   ~15 KiB  (received frames: the 6-MSS window and out-of-order segments)
 *   LAN9118 frame queue 4 x 1.5   ~6 KiB  (the controller's own 10,560-byte FIFO holds the rest)
 *   main stack                      8 KiB  (mps2_an385.ld; high water 2,592 B with TLS)
 *   TLS state outside its heap     ~2.7 KiB (session, configuration, certificates, PSA)
 *   flash storage                 ~8.9 KiB (queue 2 KiB, names 2 KiB, block states and links 2 KiB, index
 *                                           with each file's SHA-256 3 KiB)
 *   policy buffer                 1.5 KiB (POSTERN_POLICY_MAX, below)
 *   the rest: pcbs, connections, libc, Lua and lwIP globals
 *   form uploads                  556 B (POSTERN_FORM_UPLOADS 1; none without TLS, below)
 *   total data + bss + stack      127.9 KiB with TLS
 * `make BOARD=mps2-an385 size` prints the static figures, GET /_status the high-water marks.
 */
#define MEM_ALIGNMENT 4
#ifndef MEM_SIZE
#define MEM_SIZE (10 * 1024)
#endif
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 10
#endif
#ifndef LAN9118_RX_SLOTS
#define LAN9118_RX_SLOTS 3
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

/* PUT /_policy collects into 1.5 KiB, the running replacement included: what
 * the RAM budget leaves (the default policy without its comments is 1.3 KiB).
 * No /_config: its 2.8 KiB of flash do not fit the 192 KiB budget without
 * TLS; the baked settings are the settings. */
#ifndef POSTERN_POLICY_MAX
#define POSTERN_POLICY_MAX 1536u
#endif
#ifndef POSTERN_CONFIG_ROUTE
#define POSTERN_CONFIG_ROUTE 0
#endif
/* Form uploads (POST /files/) take about 5.5 KiB of flash: the TLS=0 image,
 * 192 KiB, leaves them out (PUT uploads only there). */
#if !POSTERN_TLS && !defined(POSTERN_FORM_UPLOADS)
#define POSTERN_FORM_UPLOADS 0
#endif

/* A policy call starts about 2.2 KiB into the 8 KiB main stack; nested pattern functions stop 3 KiB below it. */
#ifndef POSTERN_POLICY_C_STACK
#define POSTERN_POLICY_C_STACK (3u * 1024u)
#endif

/* Two self-test connections: each may hold 2 pool pbufs and 2.9 KiB of heap
 * (POSTERN_SELFTEST_ECHO_BUF) while a client does not read its echo, and
 * HTTP keeps the rest of the 10 pbufs and the 10 KiB heap. */
#ifndef POSTERN_SELFTEST_MAX_CONNS
#define POSTERN_SELFTEST_MAX_CONNS 2
#endif

/* lwIP asserts print through the console logger and stop the device (no stdio on the board). */
void board_assert_failed(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(msg) board_assert_failed((msg), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
  } while (0)

#endif /* POSTERN_BOARD_OPTS_H */
