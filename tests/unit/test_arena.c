/* test_arena.c: the bounded arena allocator: two instances keep separate books, calloc, limits, fault injection. */
#include <stdint.h>

#include "arena.h"
#include "unit.h"

static _Alignas(16) uint8_t mem_a[4096], mem_b[2048];

static void test_two_instances_keep_separate_counters(void)
{
  arena_t a, b;
  arena_init(&a, mem_a, sizeof mem_a);
  arena_init(&b, mem_b, sizeof mem_b);
  void *pa = arena_realloc(&a, NULL, 100);
  CHECK(pa != NULL && (uint8_t *)pa >= mem_a && (uint8_t *)pa < mem_a + sizeof mem_a);
  CHECK(arena_in_use(&a) > 100);
  CHECK_EQ(arena_in_use(&b), 0);
  void *pb = arena_calloc(&b, 10, 20);
  CHECK(pb != NULL && (uint8_t *)pb >= mem_b && (uint8_t *)pb < mem_b + sizeof mem_b);
  arena_free(&a, pa);
  CHECK_EQ(arena_in_use(&a), 0);
  CHECK(arena_high_water(&a) > 100);
  CHECK(arena_in_use(&b) > 200);
  arena_free(&b, pb);
  CHECK_EQ(arena_in_use(&b), 0);
}

static void test_calloc_zeroes_and_rejects_overflow(void)
{
  arena_t a;
  arena_init(&a, mem_a, sizeof mem_a);
  uint8_t *p = arena_realloc(&a, NULL, 64);
  memset(p, 0xa5, 64);
  arena_free(&a, p);
  uint8_t *q = arena_calloc(&a, 8, 8);
  int zero = 1;
  for (int i = 0; i < 64; i++) {
    zero &= q[i] == 0;
  }
  CHECK(zero);
  CHECK(arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
  CHECK(arena_calloc(&a, 0, 4) == NULL);
  arena_free(&a, NULL); /* ignored */
  arena_free(&a, q);
  CHECK_EQ(arena_in_use(&a), 0);
}

static void test_full_arena_fails_and_recovers(void)
{
  arena_t a;
  arena_init(&a, mem_b, sizeof mem_b);
  void *blocks[64];
  int n = 0;
  while (n < 64 && (blocks[n] = arena_calloc(&a, 1, 100)) != NULL) {
    n++;
  }
  CHECK(n > 10 && n < 64);
  CHECK(arena_in_use(&a) <= sizeof mem_b);
  for (int i = 0; i < n; i += 2) {
    arena_free(&a, blocks[i]);
  }
  CHECK(arena_calloc(&a, 1, 300) == NULL); /* no hole is that large */
  for (int i = 1; i < n; i += 2) {
    arena_free(&a, blocks[i]);
  }
  CHECK_EQ(arena_in_use(&a), 0);
  void *all = arena_realloc(&a, NULL, sizeof mem_b - 8);
  CHECK(all != NULL); /* everything merged back into one block */
  arena_free(&a, all);
  arena_reset_high_water(&a);
  CHECK_EQ(arena_high_water(&a), 0);
}

static void test_fault_injection(void)
{
  arena_t a;
  arena_init(&a, mem_a, sizeof mem_a);
  arena_fail_after(&a, 1);
  void *x = arena_calloc(&a, 1, 16);
  CHECK(x != NULL);
  CHECK(arena_calloc(&a, 1, 16) == NULL);
  CHECK(arena_realloc(&a, x, 8) == x); /* shrinking never fails */
  arena_fail_after(&a, -1);
  void *y = arena_realloc(&a, x, 200);
  CHECK(y != NULL);
  arena_free(&a, y);
  CHECK_EQ(arena_in_use(&a), 0);
}

int main(void)
{
  RUN(test_two_instances_keep_separate_counters);
  RUN(test_calloc_zeroes_and_rejects_overflow);
  RUN(test_full_arena_fails_and_recovers);
  RUN(test_fault_injection);
  return UNIT_END();
}
