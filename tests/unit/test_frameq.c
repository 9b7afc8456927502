/* test_frameq.c: the driver-to-main-loop frame queue under bursts, overflow and index wrap-around. */
#include <stdint.h>
#include <string.h>

#include "frameq.h"
#include "unit.h"

#define SLOTS 8
static uint8_t frames[SLOTS][FRAMEQ_FRAME_MAX];
static uint16_t lengths[SLOTS];
static frameq_t q;

static void fill(uint8_t *buf, size_t len, uint32_t seq)
{
  for (size_t i = 0; i < len; i++) {
    buf[i] = (uint8_t)(seq * 31u + i);
  }
}

static int matches(const uint8_t *buf, size_t len, uint32_t seq)
{
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != (uint8_t)(seq * 31u + i)) {
      return 0;
    }
  }
  return 1;
}

static void test_fifo_order_and_contents(void)
{
  uint8_t buf[FRAMEQ_FRAME_MAX];
  frameq_init(&q, frames, lengths, SLOTS);
  for (uint32_t s = 0; s < 5; s++) {
    fill(buf, 60 + s, s);
    CHECK_EQ(frameq_push(&q, buf, 60 + s), 0);
  }
  for (uint32_t s = 0; s < 5; s++) {
    size_t len = 0;
    const uint8_t *f = frameq_peek(&q, &len);
    CHECK(f != NULL);
    CHECK_EQ(len, 60 + s);
    CHECK(f != NULL && matches(f, len, s));
    frameq_pop(&q);
  }
  size_t len;
  CHECK(frameq_peek(&q, &len) == NULL);
}

static void test_burst_overflow_drops_newest_and_keeps_order(void)
{
  uint8_t buf[FRAMEQ_FRAME_MAX];
  frameq_init(&q, frames, lengths, SLOTS);
  int accepted = 0;
  for (uint32_t s = 0; s < 3 * SLOTS; s++) {
    fill(buf, 1514, s);
    accepted += frameq_push(&q, buf, 1514) == 0;
  }
  CHECK_EQ(accepted, SLOTS);
  CHECK_EQ(q.dropped, 2 * SLOTS);
  CHECK_EQ(q.high_water, SLOTS);
  for (uint32_t s = 0; s < SLOTS; s++) {
    size_t len = 0;
    const uint8_t *f = frameq_peek(&q, &len);
    CHECK(f != NULL && len == 1514 && matches(f, len, s));
    frameq_pop(&q);
  }
  CHECK_EQ(frameq_count(&q), 0);
}

static void test_rejects_empty_and_oversize_frames(void)
{
  static uint8_t big[FRAMEQ_FRAME_MAX + 1];
  frameq_init(&q, frames, lengths, SLOTS);
  CHECK_EQ(frameq_push(&q, big, 0), -1);
  CHECK_EQ(frameq_push(&q, big, sizeof big), -1);
  CHECK_EQ(frameq_push(&q, big, FRAMEQ_FRAME_MAX), 0);
  CHECK_EQ(q.dropped, 2);
}

static void test_indices_wrap_at_2_pow_32(void)
{
  uint8_t buf[64];
  frameq_init(&q, frames, lengths, SLOTS);
  q.head = q.tail = UINT32_MAX - 3; /* as after four billion frames */
  for (uint32_t round = 0; round < 4; round++) {
    for (uint32_t s = 0; s < SLOTS; s++) {
      fill(buf, sizeof buf, round * 100 + s);
      CHECK_EQ(frameq_push(&q, buf, sizeof buf), 0);
    }
    CHECK_EQ(frameq_push(&q, buf, sizeof buf), -1);
    for (uint32_t s = 0; s < SLOTS; s++) {
      size_t len = 0;
      const uint8_t *f = frameq_peek(&q, &len);
      CHECK(f != NULL && matches(f, len, round * 100 + s));
      frameq_pop(&q);
    }
  }
  CHECK_EQ(frameq_count(&q), 0);
}

static void test_non_power_of_two_slots_use_a_power_of_two(void)
{
  uint8_t buf[16] = {0};
  frameq_init(&q, frames, lengths, 6);
  int accepted = 0;
  for (int i = 0; i < 10; i++) {
    accepted += frameq_push(&q, buf, sizeof buf) == 0;
  }
  CHECK_EQ(accepted, 4);
}

static void test_empty_queue_peek_and_pop_do_nothing(void)
{
  uint8_t buf[32] = {0};
  size_t len = 99;
  frameq_init(&q, frames, lengths, SLOTS);
  CHECK(frameq_peek(&q, &len) == NULL);
  CHECK_EQ(len, 99); /* untouched */
  frameq_pop(&q);    /* on an empty queue: no underflow of the count */
  CHECK_EQ(frameq_count(&q), 0);
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), 0);
  CHECK_EQ(frameq_count(&q), 1);
  frameq_pop(&q);
  frameq_pop(&q);
  CHECK_EQ(frameq_count(&q), 0);
  CHECK(frameq_peek(&q, &len) == NULL);
}

static void test_full_ring_takes_a_frame_once_one_is_popped(void)
{
  uint8_t buf[100];
  frameq_init(&q, frames, lengths, SLOTS);
  for (uint32_t s = 0; s < SLOTS; s++) {
    fill(buf, sizeof buf, s);
    CHECK_EQ(frameq_push(&q, buf, sizeof buf), 0);
  }
  CHECK_EQ(frameq_count(&q), SLOTS);
  fill(buf, sizeof buf, 999);
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), -1); /* full: dropped, the oldest stays */
  CHECK_EQ(q.dropped, 1);
  size_t len = 0;
  const uint8_t *f = frameq_peek(&q, &len);
  CHECK(f != NULL && matches(f, len, 0));
  frameq_pop(&q);
  fill(buf, sizeof buf, SLOTS); /* lands in slot 0, which was just read */
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), 0);
  CHECK_EQ(frameq_count(&q), SLOTS);
  for (uint32_t s = 1; s <= SLOTS; s++) {
    f = frameq_peek(&q, &len);
    CHECK(f != NULL && len == sizeof buf && matches(f, len, s));
    frameq_pop(&q);
  }
  CHECK_EQ(frameq_count(&q), 0);
  CHECK_EQ(q.high_water, SLOTS);
}

static void test_one_frame_at_a_time_across_the_ring_and_index_wrap(void)
{
  uint8_t buf[64];
  frameq_init(&q, frames, lengths, SLOTS);
  q.head = q.tail = UINT32_MAX - 2 * SLOTS + 3; /* the ring boundary and 2^32 both pass */
  for (uint32_t s = 0; s < 4 * SLOTS; s++) {
    fill(buf, 1 + s % sizeof buf, s);
    CHECK_EQ(frameq_push(&q, buf, 1 + s % sizeof buf), 0);
    CHECK_EQ(frameq_count(&q), 1);
    size_t len = 0;
    const uint8_t *f = frameq_peek(&q, &len);
    CHECK(f != NULL && len == 1 + s % sizeof buf && matches(f, len, s));
    frameq_pop(&q);
    CHECK_EQ(frameq_count(&q), 0);
  }
  CHECK(q.head < SLOTS * 4); /* wrapped */
  CHECK_EQ(q.dropped, 0);
  CHECK_EQ(q.high_water, 1);
}

static void test_full_exactly_at_the_index_wrap(void)
{
  uint8_t buf[16];
  frameq_init(&q, frames, lengths, SLOTS);
  q.head = q.tail = UINT32_MAX - SLOTS + 1; /* the last push takes head to 0 */
  for (uint32_t s = 0; s < SLOTS; s++) {
    fill(buf, sizeof buf, s);
    CHECK_EQ(frameq_push(&q, buf, sizeof buf), 0);
  }
  CHECK_EQ(q.head, 0);
  CHECK_EQ(frameq_count(&q), SLOTS);
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), -1);
  for (uint32_t s = 0; s < SLOTS; s++) {
    size_t len = 0;
    const uint8_t *f = frameq_peek(&q, &len);
    CHECK(f != NULL && matches(f, len, s));
    frameq_pop(&q);
  }
  CHECK_EQ(frameq_count(&q), 0);
  CHECK_EQ(q.tail, 0);
}

static void test_zero_and_one_slot(void)
{
  uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  size_t len = 0;
  frameq_init(&q, frames, lengths, 0);
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), -1); /* no storage: every frame is dropped */
  CHECK(frameq_peek(&q, &len) == NULL);
  CHECK_EQ(q.dropped, 1);
  frameq_init(&q, frames, lengths, 1);
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), 0);
  CHECK_EQ(frameq_push(&q, buf, sizeof buf), -1);
  const uint8_t *f = frameq_peek(&q, &len);
  CHECK(f != NULL && len == sizeof buf && f[7] == 8);
  frameq_pop(&q);
  CHECK_EQ(frameq_push(&q, buf, 3), 0);
  f = frameq_peek(&q, &len);
  CHECK(f != NULL && len == 3);
}

int main(void)
{
  RUN(test_fifo_order_and_contents);
  RUN(test_burst_overflow_drops_newest_and_keeps_order);
  RUN(test_rejects_empty_and_oversize_frames);
  RUN(test_indices_wrap_at_2_pow_32);
  RUN(test_non_power_of_two_slots_use_a_power_of_two);
  RUN(test_empty_queue_peek_and_pop_do_nothing);
  RUN(test_full_ring_takes_a_frame_once_one_is_popped);
  RUN(test_one_frame_at_a_time_across_the_ring_and_index_wrap);
  RUN(test_full_exactly_at_the_index_wrap);
  RUN(test_zero_and_one_slot);
  return UNIT_END();
}
