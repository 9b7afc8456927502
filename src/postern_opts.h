/* postern_opts.h: every postern limit and knob, with #ifndef defaults (board options first). */
#ifndef POSTERN_OPTS_H
#define POSTERN_OPTS_H

/* The board's own choices come first; everything below only fills gaps. */
#include "board_opts.h"

/* ---- HTTP request head ------------------------------------------------ */

/** Request line plus header fields, in bytes, CRLFs included (431 above). */
#ifndef POSTERN_HEAD_MAX
#define POSTERN_HEAD_MAX 2048
#endif

/** Header fields kept per request (431 above). */
#ifndef POSTERN_MAX_HEADERS
#define POSTERN_MAX_HEADERS 24
#endif

/** Longest accepted method token (501 above: no such method is served). */
#ifndef POSTERN_METHOD_MAX
#define POSTERN_METHOD_MAX 16
#endif

/** Longest request-target (414 above). */
#ifndef POSTERN_TARGET_MAX
#define POSTERN_TARGET_MAX 512
#endif

/** Longest stored file name under /files/ (after percent-decoding). */
#ifndef POSTERN_NAME_MAX
#define POSTERN_NAME_MAX 64
#endif

/** Longest chunk extension accepted in a chunked body (400 above). */
#ifndef POSTERN_CHUNK_EXT_MAX
#define POSTERN_CHUNK_EXT_MAX 64
#endif

/** Longest trailer section accepted after the last chunk (400 above). */
#ifndef POSTERN_TRAILER_MAX
#define POSTERN_TRAILER_MAX 512
#endif

/** A form upload (POST /files/, multipart/form-data): bytes besides the file
 *  part's content and the delimiters, all counted together (400 above): the
 *  preamble, every part's header lines, the other fields' values (read and
 *  dropped) and the epilogue. */
#ifndef POSTERN_FORM_FIELD_MAX
#define POSTERN_FORM_FIELD_MAX 2048
#endif

/** Form uploads (POST /files/, multipart/form-data) in progress at once;
 *  each costs 556 bytes of static RAM (the decoder, a SHA-256 of the form)
 *  and, until the policy has seen the file's name, a copy of the request
 *  head from lwIP's heap. One more gets 503 while they last; PUT uploads are
 *  not counted. 0 leaves form uploads out of the image (about 5.5 KiB of
 *  flash on a Cortex-M3): POST /files/ is then a 405. */
#ifndef POSTERN_FORM_UPLOADS
#define POSTERN_FORM_UPLOADS 1
#endif

/** Longest header line of a form part, CRLF excluded (400 above); each
 *  connection keeps one such line (the file part's Content-Disposition). */
#ifndef POSTERN_FORM_LINE_MAX
#define POSTERN_FORM_LINE_MAX 256
#endif

/* ---- Connections and timeouts ---------------------------------------- */

/** Concurrent HTTP connections (plain and TLS together). */
#ifndef POSTERN_MAX_CONNS
#define POSTERN_MAX_CONNS 4
#endif

/** Pool pbufs of received data a connection holds at rest, whatever the
 *  segmentation: longer chains are copied into fewer pbufs, and a connection
 *  that cannot consume refuses more (the window stays shut). Two hold a
 *  request head of POSTERN_HEAD_MAX. */
#ifndef POSTERN_CONN_PBUFS_MAX
#define POSTERN_CONN_PBUFS_MAX 2
#endif

/** Pool pbufs an upload that waits on storage leaves free when it holds
 *  more than POSTERN_CONN_PBUFS_MAX of what its window brings: the frames of
 *  every other connection land in them. Beyond, it refuses like any other. */
#ifndef POSTERN_POOL_RESERVE
#define POSTERN_POOL_RESERVE 4
#endif

/** lwIP heap bytes that downloads and listings leave free, for what every
 *  connection must still be able to send: answers, ACKs, handshakes. A body
 *  streamed to a client that does not read stops at this line, it never
 *  takes the heap the others' answers need. */
#ifndef POSTERN_HEAP_RESERVE
#define POSTERN_HEAP_RESERVE (MEM_SIZE / 4)
#endif

/** Bytes of a download or a listing one connection may keep queued in lwIP
 *  (at most TCP_SND_BUF): two clients that do not read leave the reserve and
 *  room for a third. */
#ifndef POSTERN_SEND_MAX
#define POSTERN_SEND_MAX ((MEM_SIZE - POSTERN_HEAP_RESERVE) / 2)
#endif

/** Seconds for a request head to arrive completely, from its first byte (408 after). */
#ifndef POSTERN_HEAD_TIMEOUT_S
#define POSTERN_HEAD_TIMEOUT_S 10
#endif

/** Seconds without a body byte before an upload is aborted. */
#ifndef POSTERN_BODY_TIMEOUT_S
#define POSTERN_BODY_TIMEOUT_S 20
#endif

/** An upload's minimum rate: each window of POSTERN_BODY_RATE_S seconds must
 *  bring POSTERN_BODY_MIN_BYTES body bytes (408, nothing stored, below it).
 *  The default, 8 KiB per 10 s, spares any real link and stops a body
 *  dripped a byte at a time. */
#ifndef POSTERN_BODY_RATE_S
#define POSTERN_BODY_RATE_S 10
#endif
#ifndef POSTERN_BODY_MIN_BYTES
#define POSTERN_BODY_MIN_BYTES 8192
#endif

/** Milliseconds a new client keeps its slot against newcomers when the pool
 *  is full while its head is unfinished (or not begun), or its upload is
 *  below the minimum rate; after that the oldest such gives way. A client on
 *  any real link sends its head, and its body's first bytes, well within it;
 *  a client that holds slots with heads it never finishes keeps each one
 *  this long at most once others need it. */
#ifndef POSTERN_EVICT_GRACE_MS
#define POSTERN_EVICT_GRACE_MS 500
#endif

/** Seconds an idle keep-alive connection is kept. */
#ifndef POSTERN_IDLE_TIMEOUT_S
#define POSTERN_IDLE_TIMEOUT_S 15
#endif

/** Seconds a request may wait on a busy medium without any progress (a
 *  pending open, write, commit or remove) before it fails: 503 for a request
 *  not begun, 500 and nothing stored for an upload. Time spent waiting does
 *  not count against the client's body deadlines. */
#ifndef POSTERN_STORAGE_WAIT_S
#define POSTERN_STORAGE_WAIT_S 30
#endif

/** Seconds of lingering close: bytes are read and dropped before closing. */
#ifndef POSTERN_LINGER_S
#define POSTERN_LINGER_S 2
#endif

/** Bytes a lingering close swallows at most before it closes anyway. */
#ifndef POSTERN_LINGER_MAX
#define POSTERN_LINGER_MAX (256u * 1024u)
#endif

/** Bytes of a refused request's body that are drained (read and dropped,
 *  never parsed) on top of POSTERN_LINGER_MAX, so that a client that writes
 *  its whole body before it reads (Go, Node) sees the answer instead of a
 *  reset. A body announced larger is drained this far, then the connection
 *  closes anyway. */
#ifndef POSTERN_DRAIN_MAX
#define POSTERN_DRAIN_MAX (8u * 1024u * 1024u)
#endif

/** Seconds a lingering close and its drain may last in all. */
#ifndef POSTERN_DRAIN_S
#define POSTERN_DRAIN_S 30
#endif

/* ---- Self-test services (echo on port 7, discard on port 9) ------------ */

/** Self-test connections open at once, echo and discard together; one more
 *  is closed as soon as it is accepted. lwIP's pcb pool (MEMP_NUM_TCP_PCB)
 *  holds this many on top of what HTTP needs, and self-test pcbs have the
 *  lowest lwIP priority, so that HTTP takes theirs if the pool runs out. */
#ifndef POSTERN_SELFTEST_MAX_CONNS
#define POSTERN_SELFTEST_MAX_CONNS 4
#endif

/** Seconds a self-test connection may pass without a byte received or
 *  acknowledged before it is closed (the simulator's --selftest-idle). */
#ifndef POSTERN_SELFTEST_IDLE_S
#define POSTERN_SELFTEST_IDLE_S 30
#endif

/** Bytes an echo connection holds in each direction: received and not yet
 *  echoed (its receive window is kept this small), and echoed and not yet
 *  acknowledged (lwIP's heap). A client that does not read stops there. */
#ifndef POSTERN_SELFTEST_ECHO_BUF
#define POSTERN_SELFTEST_ECHO_BUF 2920
#endif

/* ---- TLS --------------------------------------------------------------- */

/** 1: HTTPS on port 443 is built in (make TLS=0 leaves mbedTLS's TLS out). */
/**
 * SHA-256 engine: 0 hashes with mbedTLS; 1 with the board's own (a hash
 * engine), declared by a header "sha256_engine.h" on the board's include path:
 * a type sha256_engine_t and sha256_engine_start(sha256_engine_t *),
 * sha256_engine_update(sha256_engine_t *, const uint8_t *, size_t) and
 * sha256_engine_finish(sha256_engine_t *, uint8_t out[32]) (which also wipes
 * the context). Uploads, Content-Digest, crypto.sha256 and the policy's
 * fingerprint all go through it; TLS keeps mbedTLS's own.
 */
/** 1: a bench build (make BENCH=1): the board times decisions and counts its busy
 *  instructions (src/bench.h); never in a product image. */
#ifndef POSTERN_BENCH
#define POSTERN_BENCH 0
#endif

#ifndef POSTERN_SHA256_ENGINE
#define POSTERN_SHA256_ENGINE 0
#endif

#ifndef POSTERN_TLS
#define POSTERN_TLS 1
#endif

/** Concurrent TLS sessions, handshakes included; they share POSTERN_MAX_CONNS
 *  with plain connections, which always keep the remaining slots. A TLS
 *  connection beyond it is closed before any handshake memory is taken. */
#ifndef POSTERN_MAX_TLS_CONNS
#define POSTERN_MAX_TLS_CONNS 1
#endif

/** Seconds a TLS connection beyond POSTERN_MAX_TLS_CONNS may wait, unanswered,
 *  for a session to free up before it is closed (0: closed at once, before
 *  any TLS byte). A board with one session sets it, so that a client that
 *  reconnects while its previous connection is still closing is served. */
#ifndef POSTERN_TLS_ACCEPT_WAIT_S
#define POSTERN_TLS_ACCEPT_WAIT_S 0
#endif

/** TLS connections that may wait for a session at once (each holds a TCP pcb
 *  and its first bytes, unacknowledged); beyond them a connection is closed. */
#ifndef POSTERN_TLS_WAITING_MAX
#define POSTERN_TLS_WAITING_MAX 2
#endif

/** Bytes of the static mbedTLS heap: the certificates and keys (about 2 KiB,
 *  4 with a client CA), plus each session at its handshake peak (16 KiB in and
 *  4 KiB out record buffers, handshake state, a client certificate chain). */
#ifndef POSTERN_TLS_HEAP_SIZE
#define POSTERN_TLS_HEAP_SIZE (6u * 1024u + POSTERN_MAX_TLS_CONNS * 30u * 1024u)
#endif

/** 1: postern gives mbedTLS its static heap of POSTERN_TLS_HEAP_SIZE
 *  (mbedtls_platform_set_calloc_free() at tls_server_init(); the allocator is
 *  global in mbedTLS, so every other mbedTLS user of the firmware shares that
 *  heap). 0: a firmware that already configures mbedTLS keeps its own
 *  allocator; postern reserves no heap and /_status shows no TLS heap use. */
#ifndef POSTERN_TLS_OWN_HEAP
#define POSTERN_TLS_OWN_HEAP 1
#endif

/** Seconds a TLS handshake may take before the connection is closed. */
#ifndef POSTERN_TLS_HANDSHAKE_TIMEOUT_S
#define POSTERN_TLS_HANDSHAKE_TIMEOUT_S 10
#endif

/** Milliseconds after which a TLS handshake (or a close still flushing) gives
 *  its session to a new TLS connection when every session is taken: the
 *  oldest such one is closed. A real client finishes its handshake well
 *  within it (tens of ms on the host, a few hundred under QEMU); a client
 *  that opens handshakes and stalls them holds a session this long, not
 *  POSTERN_TLS_HANDSHAKE_TIMEOUT_S. Established sessions never yield to a
 *  handshake: only idle ones, through the application (tls_set_reclaim). */
#ifndef POSTERN_TLS_HANDSHAKE_GRACE_MS
#define POSTERN_TLS_HANDSHAKE_GRACE_MS 2000
#endif

/** Pool pbufs of ciphertext a TLS connection queues for mbedTLS at most:
 *  small segments are copied together into one, and beyond the bound a
 *  segment is refused (lwIP keeps it and drops what follows until it is
 *  taken), so the segmentation a client picks cannot empty the pool. */
#ifndef POSTERN_TLS_RX_PBUFS
#define POSTERN_TLS_RX_PBUFS 2
#endif

/** Pool pbufs of plaintext per TLS connection at most, staged in the TLS
 *  layer or handed to the application and not yet let go of: records are
 *  decrypted into one pbuf until it is full or no more is there, so one-byte
 *  records cost one pbuf, not one each. */
#ifndef POSTERN_TLS_PLAIN_PBUFS
#define POSTERN_TLS_PLAIN_PBUFS 3
#endif

/** Plaintext bytes the application may hold unconsumed before the TLS layer
 *  stops decrypting and stops opening the TCP window: one request head, which
 *  the HTTP layer must see whole before it consumes any of it. */
#ifndef POSTERN_TLS_RX_HELD_MAX
#define POSTERN_TLS_RX_HELD_MAX POSTERN_HEAD_MAX
#endif

/* ---- Lua policy -------------------------------------------------------- */

/** Bytes of the Lua arena: the memory cap of the policy VM. */
#ifndef POSTERN_LUA_ARENA_SIZE
#define POSTERN_LUA_ARENA_SIZE (48u * 1024u)
#endif

/** VM instructions one policy call may run before it fails closed. */
#ifndef POSTERN_LUA_BUDGET
#define POSTERN_LUA_BUDGET 200000
#endif

/** Instructions between two budget checks of the count hook. */
#ifndef POSTERN_LUA_HOOK_STEP
#define POSTERN_LUA_HOOK_STEP 1000
#endif

/** Nested levels of the policy's pattern matcher (string.find, match,
 *  gmatch, gsub): one per quantifier, '?' or capture still undecided, so a
 *  pattern's depth grows with its items, not with the subject. Deeper fails
 *  with "pattern too complex". On the board a level takes 32 bytes of main
 *  stack, 56 for a capture's opening (measured by its high water): 64 levels
 *  stay under 3 KiB on top of the ~2.2 KiB a policy call already uses. */
#ifndef POSTERN_PATTERN_DEPTH
#define POSTERN_PATTERN_DEPTH 64
#endif

/** Bytes of C stack a policy call may take below its start before a pattern
 *  function refuses to go deeper ("C stack overflow", fails closed). A
 *  board with a small stack lowers it (mps2-an385: 8 KiB stack). */
#ifndef POSTERN_POLICY_C_STACK
#define POSTERN_POLICY_C_STACK (16u * 1024u)
#endif

/** Settings given with --set / SET=, seen by Lua as config.NAME. */
#ifndef POSTERN_MAX_SETTINGS
#define POSTERN_MAX_SETTINGS 16
#endif

/** Bytes of the buffer a policy sent with PUT /_policy is collected in; it
 *  keeps the running policy too when that came the same way, so a
 *  replacement may have POSTERN_POLICY_MAX less the running one's size (413
 *  beyond). */
#ifndef POSTERN_POLICY_MAX
#define POSTERN_POLICY_MAX (64u * 1024u)
#endif

/** 1: GET and PUT /_config read and replace the settings at run time; 0
 *  leaves the route (404) and its JSON parser out, about 2.8 KiB of flash. */
#ifndef POSTERN_CONFIG_ROUTE
#define POSTERN_CONFIG_ROUTE 1
#endif

/** Bytes of the settings PUT /_config sets, names and values decoded, a NUL
 *  after each; two such slots are kept (the running settings and the next). */
#ifndef POSTERN_CONFIG_MAX
#define POSTERN_CONFIG_MAX 2048
#endif

/** Longest policy message copied into a response or log line. */
#ifndef POSTERN_MESSAGE_MAX
#define POSTERN_MESSAGE_MAX 160
#endif

/** 1: GET / answers the upload page (src/page.html, gzip-compressed: make
 *  size lists it); 0 leaves the page and its route out (404). */
#ifndef POSTERN_PAGE
#define POSTERN_PAGE 1
#endif

/** Longest origin a policy may allow (allow_origin; RFC 6454 serialized, e.g.
 *  "https://dash.example:8443"). Each connection keeps one for its answer. */
#ifndef POSTERN_ORIGIN_MAX
#define POSTERN_ORIGIN_MAX 80
#endif

/** Longest method or header list a policy may allow on a CORS preflight. */
#ifndef POSTERN_CORS_LIST_MAX
#define POSTERN_CORS_LIST_MAX 96
#endif

/* ---- Conflicting options ----------------------------------------------- */

#if POSTERN_HEAD_MAX > 65535
#error "POSTERN_HEAD_MAX must fit in 16 bits (head offsets are uint16_t)"
#endif
#if POSTERN_TARGET_MAX >= POSTERN_HEAD_MAX
#error "POSTERN_TARGET_MAX must be smaller than POSTERN_HEAD_MAX"
#endif
#if POSTERN_MAX_HEADERS > 255
#error "POSTERN_MAX_HEADERS must fit in 8 bits"
#endif
#if POSTERN_TLS && (POSTERN_MAX_TLS_CONNS < 1 || POSTERN_MAX_TLS_CONNS >= POSTERN_MAX_CONNS)
#error "POSTERN_MAX_TLS_CONNS must lie between 1 and POSTERN_MAX_CONNS - 1, so plain connections keep a slot"
#endif
#if POSTERN_TLS && POSTERN_TLS_HANDSHAKE_GRACE_MS >= POSTERN_TLS_HANDSHAKE_TIMEOUT_S * 1000
#error "POSTERN_TLS_HANDSHAKE_GRACE_MS must be shorter than POSTERN_TLS_HANDSHAKE_TIMEOUT_S"
#endif
#if POSTERN_TLS && (POSTERN_TLS_RX_PBUFS < 1 || POSTERN_TLS_PLAIN_PBUFS < 2)
#error "a TLS connection needs at least 1 ciphertext and 2 plaintext pool pbufs"
#endif
#if POSTERN_TLS_RX_HELD_MAX < POSTERN_HEAD_MAX
#error "POSTERN_TLS_RX_HELD_MAX must hold a whole request head"
#endif
#if POSTERN_FORM_UPLOADS < 0 || POSTERN_FORM_UPLOADS > 255
#error "POSTERN_FORM_UPLOADS must lie between 0 and 255"
#endif
#if POSTERN_FORM_LINE_MAX < 64 || POSTERN_FORM_LINE_MAX > 4096
#error "POSTERN_FORM_LINE_MAX must lie between 64 and 4096"
#endif
#if POSTERN_FORM_FIELD_MAX > 0x7fffffffu
#error "POSTERN_FORM_FIELD_MAX must fit in 31 bits"
#endif
#if POSTERN_DRAIN_MAX > 0x7fffffffu - POSTERN_LINGER_MAX
#error "POSTERN_DRAIN_MAX + POSTERN_LINGER_MAX must fit in 31 bits"
#endif
#if POSTERN_EVICT_GRACE_MS >= POSTERN_HEAD_TIMEOUT_S * 1000
#error "POSTERN_EVICT_GRACE_MS must be shorter than POSTERN_HEAD_TIMEOUT_S"
#endif
#if POSTERN_DRAIN_S < POSTERN_LINGER_S
#error "POSTERN_DRAIN_S must not be shorter than POSTERN_LINGER_S"
#endif
#if POSTERN_SELFTEST_MAX_CONNS < 1 || POSTERN_SELFTEST_MAX_CONNS > 255
#error "POSTERN_SELFTEST_MAX_CONNS must lie between 1 and 255"
#endif
#if POSTERN_SELFTEST_IDLE_S < 1 || POSTERN_SELFTEST_IDLE_S > 3600
#error "POSTERN_SELFTEST_IDLE_S must lie between 1 and 3600"
#endif
#if POSTERN_SELFTEST_ECHO_BUF < 536
#error "POSTERN_SELFTEST_ECHO_BUF must hold one segment of the smallest MSS (536)"
#endif
#if POSTERN_LUA_HOOK_STEP > POSTERN_LUA_BUDGET
#error "POSTERN_LUA_HOOK_STEP must not exceed POSTERN_LUA_BUDGET"
#endif

#endif /* POSTERN_OPTS_H */
