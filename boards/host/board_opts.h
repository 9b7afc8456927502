/* board_opts.h: postern options chosen by the host simulator board (defaults in src/postern_opts.h). */
#ifndef POSTERN_BOARD_OPTS_H
#define POSTERN_BOARD_OPTS_H

/* The host simulator keeps the firmware's defaults, so it behaves like the device. */

#endif /* POSTERN_BOARD_OPTS_H */
