/* frameq.h: a fixed ring of Ethernet frames between a network driver and the main loop. */
#ifndef POSTERN_FRAMEQ_H
#define POSTERN_FRAMEQ_H

#include <stddef.h>
#include <stdint.h>

/** Largest frame kept: 1514 bytes of Ethernet plus room for a VLAN tag. */
#define FRAMEQ_FRAME_MAX 1536

/**
 * A single-producer, single-consumer queue. The producer (an interrupt
 * handler, or libslirp's output callback) only pushes; the main loop only
 * pops. Frames that find the ring full are dropped and counted, as a real
 * controller drops frames when its FIFO overflows; TCP resends them.
 */
typedef struct frameq {
  uint8_t (*frames)[FRAMEQ_FRAME_MAX];
  uint16_t *lengths;
  uint32_t slots;
  volatile uint32_t head; /* next slot to fill; written by the producer */
  volatile uint32_t tail; /* next slot to read; written by the consumer */
  uint32_t dropped;       /* frames lost to a full ring or oversize */
  uint32_t high_water;    /* most frames ever waiting */
} frameq_t;

void frameq_init(frameq_t *q, uint8_t (*frames)[FRAMEQ_FRAME_MAX], uint16_t *lengths, uint32_t slots);
int frameq_push(frameq_t *q, const void *frame, size_t len);
const uint8_t *frameq_peek(frameq_t *q, size_t *len);
void frameq_pop(frameq_t *q);
uint32_t frameq_count(const frameq_t *q);

#endif /* POSTERN_FRAMEQ_H */
