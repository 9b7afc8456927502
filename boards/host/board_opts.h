/* board_opts.h: postern options chosen by the host simulator board (defaults in src/postern_opts.h). */
#ifndef POSTERN_BOARD_OPTS_H
#define POSTERN_BOARD_OPTS_H

/* The host simulator keeps the firmware's limits, so it behaves like the device.
 * Only the alignment differs: lwIP's pools hold 64-bit pointers here. */
#define MEM_ALIGNMENT 8

/* Two TLS sessions at once, so the tests can hold one while another works;
 * plain connections keep the other two slots. */
#define POSTERN_MAX_TLS_CONNS 2

/* No waiting room here (POSTERN_TLS_ACCEPT_WAIT_S 0): a new TLS client takes a
 * stalled handshake's session at the instant it connects, or is closed. A
 * client that keeps its stalled handshakes fresh by reconnecting the moment
 * they yield makes them young whenever a session frees up, so the grace must
 * be shorter than a real client's pause between two connections (its
 * handshake takes tens of ms here). The board waits instead, with 2 s. */
#define POSTERN_TLS_HANDSHAKE_GRACE_MS 500

#endif /* POSTERN_BOARD_OPTS_H */
