/* frameq.c: a fixed ring of Ethernet frames between a network driver and the main loop. */
#include "frameq.h"

#include <string.h>

/**
 * Sets up an empty queue over caller-owned storage of `slots` frames.
 * Only a power of two of the slots is used, so that the free-running
 * indices stay consistent when they wrap at 2^32.
 */
void frameq_init(frameq_t *q, uint8_t (*frames)[FRAMEQ_FRAME_MAX], uint16_t *lengths, uint32_t slots)
{
  uint32_t usable = 1;
  while (usable * 2 != 0 && usable * 2 <= slots) {
    usable *= 2;
  }
  q->frames = frames;
  q->lengths = lengths;
  q->slots = slots == 0 ? 0 : usable;
  q->head = 0;
  q->tail = 0;
  q->dropped = 0;
  q->high_water = 0;
}

/** Frames waiting to be read. Indices run freely and wrap at 2^32. */
uint32_t frameq_count(const frameq_t *q)
{
  return q->head - q->tail;
}

/** Copies a frame in (producer side). Returns 0, or -1 when it was dropped. */
int frameq_push(frameq_t *q, const void *frame, size_t len)
{
  uint32_t waiting = frameq_count(q);
  if (len == 0 || len > FRAMEQ_FRAME_MAX || waiting >= q->slots) {
    q->dropped++;
    return -1;
  }
  uint32_t slot = (q->head & (q->slots - 1));
  memcpy(q->frames[slot], frame, len);
  q->lengths[slot] = (uint16_t)len;
  q->head = q->head + 1; /* publish only after the copy */
  if (waiting + 1 > q->high_water) {
    q->high_water = waiting + 1;
  }
  return 0;
}

/** The oldest frame, or NULL when empty (consumer side). It stays queued until frameq_pop(). */
const uint8_t *frameq_peek(frameq_t *q, size_t *len)
{
  if (frameq_count(q) == 0) {
    return NULL;
  }
  uint32_t slot = (q->tail & (q->slots - 1));
  *len = q->lengths[slot];
  return q->frames[slot];
}

/** Releases the frame returned by frameq_peek(). */
void frameq_pop(frameq_t *q)
{
  if (frameq_count(q) != 0) {
    q->tail = q->tail + 1;
  }
}
