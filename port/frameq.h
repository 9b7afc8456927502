/* frameq.h: a fixed ring of Ethernet frames between a network driver and the main loop. */
#ifndef POSTERN_FRAMEQ_H
#define POSTERN_FRAMEQ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** Largest frame kept: 1514 bytes of Ethernet plus room for a VLAN tag. */
#define FRAMEQ_FRAME_MAX 1536

/**
 * A single-producer, single-consumer queue. The producer (an interrupt
 * handler, or libslirp's output callback) only pushes; the main loop only
 * pops. Frames that find the ring full are dropped and counted, as a real
 * controller drops frames when its FIFO overflows; TCP resends them.
 *
 * The indices are C11 atomics: each side publishes its index with a release
 * store and reads the other's with an acquire load, so a slot's frame and
 * length are complete before the consumer sees the slot, and read before the
 * producer fills it again. volatile alone orders neither the compiler's nor
 * the core's accesses to the slots. The counters are atomic only so that the
 * main loop may read them while an interrupt updates them.
 */
typedef struct frameq {
  uint8_t (*frames)[FRAMEQ_FRAME_MAX];
  uint16_t *lengths;
  uint32_t slots;
  _Atomic uint32_t head;       /* next slot to fill; written by the producer */
  _Atomic uint32_t tail;       /* next slot to read; written by the consumer */
  _Atomic uint32_t dropped;    /* frames lost to a full ring or oversize (producer) */
  _Atomic uint32_t high_water; /* most frames ever waiting (producer) */
} frameq_t;

void frameq_init(frameq_t *q, uint8_t (*frames)[FRAMEQ_FRAME_MAX], uint16_t *lengths, uint32_t slots);
int frameq_push(frameq_t *q, const void *frame, size_t len);
const uint8_t *frameq_peek(frameq_t *q, size_t *len);
void frameq_pop(frameq_t *q);
uint32_t frameq_count(const frameq_t *q);

#endif /* POSTERN_FRAMEQ_H */
