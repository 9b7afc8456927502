/* bench.h: the marks a bench build (POSTERN_BENCH=1) times a decision by; nothing in any other build. */
#ifndef POSTERN_BENCH_H
#define POSTERN_BENCH_H

#include "postern_opts.h"

#if POSTERN_BENCH
/*
 * The board implements both. A decision runs from the receive callback of the
 * segment that completes a request head (the last begin before an end wins)
 * to the first answer bytes queued on the connection (100, 417 or any other
 * response), or, for an upload accepted without Expect, to the ACK queued
 * once the upload is open. An end without a begin is ignored.
 */
void bench_decision_begin(void);
void bench_decision_end(void);
/* The share of it inside the policy call (policy_decide). */
void bench_policy(int end);
#define BENCH_DECISION_BEGIN() bench_decision_begin()
#define BENCH_DECISION_END() bench_decision_end()
#define BENCH_POLICY(end) bench_policy(end)
#else
#define BENCH_DECISION_BEGIN() ((void)0)
#define BENCH_DECISION_END() ((void)0)
#define BENCH_POLICY(end) ((void)0)
#endif

#endif /* POSTERN_BENCH_H */
