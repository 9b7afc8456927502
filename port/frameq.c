/* frameq.c: a fixed ring of Ethernet frames between a network driver and the main loop. */
#include "frameq.h"

#include <string.h>

/*
 * Memory ordering. The producer may run in an interrupt (LAN9118) or another
 * callback context (libslirp) than the consumer, the main loop. It copies a
 * frame into a slot, then publishes the slot by advancing head with a
 * release store; the consumer loads head with acquire before it reads the
 * slot, so the copy is visible first. The consumer releases a slot by
 * advancing tail with a release store after reading it; the producer loads
 * tail with acquire before it overwrites the slot. Each index has a single
 * writer, which reads its own index relaxed. Only 32-bit loads and stores
 * are used, no read-modify-write: they are lock-free on every target
 * (Cortex-M3: LDR/STR with DMB, no libatomic), and safe in an interrupt.
 */

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
  atomic_init(&q->head, 0);
  atomic_init(&q->tail, 0);
  atomic_init(&q->dropped, 0);
  atomic_init(&q->high_water, 0);
}

/** Frames waiting to be read, from either side. Indices run freely and wrap at 2^32. */
uint32_t frameq_count(const frameq_t *q)
{
  uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
  return atomic_load_explicit(&q->head, memory_order_acquire) - tail;
}

/* Producer-only counter update: a single writer needs no read-modify-write. */
static void frameq_bump(_Atomic uint32_t *counter, uint32_t value)
{
  atomic_store_explicit(counter, value, memory_order_relaxed);
}

/** Copies a frame in (producer side). Returns 0, or -1 when it was dropped. */
int frameq_push(frameq_t *q, const void *frame, size_t len)
{
  uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  uint32_t waiting = head - atomic_load_explicit(&q->tail, memory_order_acquire);
  if (len == 0 || len > FRAMEQ_FRAME_MAX || waiting >= q->slots) {
    frameq_bump(&q->dropped, atomic_load_explicit(&q->dropped, memory_order_relaxed) + 1);
    return -1;
  }
  uint32_t slot = head & (q->slots - 1);
  memcpy(q->frames[slot], frame, len);
  q->lengths[slot] = (uint16_t)len;
  atomic_store_explicit(&q->head, head + 1, memory_order_release); /* publish after the copy */
  if (waiting + 1 > atomic_load_explicit(&q->high_water, memory_order_relaxed)) {
    frameq_bump(&q->high_water, waiting + 1);
  }
  return 0;
}

/** The oldest frame, or NULL when empty (consumer side). It stays queued until frameq_pop(). */
const uint8_t *frameq_peek(frameq_t *q, size_t *len)
{
  uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  if (atomic_load_explicit(&q->head, memory_order_acquire) == tail) {
    return NULL;
  }
  uint32_t slot = tail & (q->slots - 1);
  *len = q->lengths[slot];
  return q->frames[slot];
}

/** Releases the frame returned by frameq_peek() (consumer side). */
void frameq_pop(frameq_t *q)
{
  uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  if (atomic_load_explicit(&q->head, memory_order_acquire) != tail) {
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release); /* the slot is read: reusable */
  }
}
