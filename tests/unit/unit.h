/* unit.h: a minimal test harness for postern's C unit tests (one binary per module). */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_cases_passed;
static int unit_cases_failed;

/* CHECK(cond): records a failure with file:line and keeps going. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      unit_failed_checks++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/* CHECK_EQ(a, b): integer comparison that prints both values on failure. */
#define CHECK_EQ(a, b)                                                                                          \
  do {                                                                                                          \
    long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                                               \
    if (unit_a_ != unit_b_) {                                                                                   \
      unit_failed_checks++;                                                                                     \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, unit_a_, \
              unit_b_);                                                                                         \
    }                                                                                                           \
  } while (0)

/* CHECK_STR(a, b): NUL-terminated string comparison. */
#define CHECK_STR(a, b)                                                                  \
  do {                                                                                   \
    const char *unit_sa_ = (a), *unit_sb_ = (b);                                         \
    if (unit_sa_ == NULL || unit_sb_ == NULL || strcmp(unit_sa_, unit_sb_) != 0) {       \
      unit_failed_checks++;                                                              \
      fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
              unit_sa_ ? unit_sa_ : "(null)", unit_sb_ ? unit_sb_ : "(null)");           \
    }                                                                                    \
  } while (0)

/* RUN(fn): runs one test case and counts it as passed or failed. */
#define RUN(fn)                               \
  do {                                        \
    int unit_before_ = unit_failed_checks;    \
    fn();                                     \
    if (unit_failed_checks == unit_before_) { \
      unit_cases_passed++;                    \
    } else {                                  \
      unit_cases_failed++;                    \
      fprintf(stderr, "FAIL %s\n", #fn);      \
    }                                         \
  } while (0)

/* UNIT_END(): prints the summary line and returns the exit status. */
#define UNIT_END() (printf("%d passed, %d failed\n", unit_cases_passed, unit_cases_failed), unit_cases_failed ? 1 : 0)

#endif /* POSTERN_UNIT_H */
