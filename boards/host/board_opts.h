/* board_opts.h: postern options chosen by the host simulator board (defaults in src/postern_opts.h). */
#ifndef POSTERN_BOARD_OPTS_H
#define POSTERN_BOARD_OPTS_H

/* The host simulator keeps the firmware's limits, so it behaves like the device.
 * Only the alignment differs: lwIP's pools hold 64-bit pointers here. */
#define MEM_ALIGNMENT 8

/* Two TLS sessions at once, so the tests can hold one while another works;
 * plain connections keep the other two slots. */
#define POSTERN_MAX_TLS_CONNS 2

#endif /* POSTERN_BOARD_OPTS_H */
