/*
 * sync_util.h - what the sync tests share: the managed segment that holds a test's objects,
 * the monotonic clock in nanoseconds, "is this thread asleep in futex()" (so a test knows a
 * waiter really sleeps before it notifies, instead of sleeping and hoping), a periodic signal
 * to interrupt waits, and the iteration scale.
 *
 * Every wait in these tests is bounded; none asserts on speed. Where a test needs another
 * party to be in a given state, it polls for that state with short sleeps up to a bound.
 */
#ifndef SHMT_SYNC_UTIL_H
#define SHMT_SYNC_UTIL_H

#include "harness.h"

#include <stdatomic.h>

#define MS ((int64_t)1000000)  /* nanoseconds in a millisecond */
#define SEC ((int64_t)1000000000)

/* The bound on a wait that must succeed: reaching it is a failure (a lost wake-up). */
#define WAIT_BOUND (10 * SEC)

/*
 * Create a managed POSIX segment of `size` bytes (zero-filled), named uniquely and removed
 * after the test even if it fails. *addr receives its address (for peers; valid until the
 * test ends; at most 16 per test), *seg the handle. Returns the data.
 */
void *sync_seg_create(size_t size, const char **addr, shml_segment **seg);
/* In a peer: open the segment at `addr` read-write; returns the data. */
void *sync_seg_open(const char *addr, shml_segment **seg);

/* Monotonic clock in nanoseconds. */
int64_t now_ns(void);

/* The calling thread's id. */
pid_t sync_gettid(void);

/*
 * Whether thread `tid` of process `pid` is blocked in the futex system call right now
 * (/proc/PID/task/TID/syscall). A single-threaded peer: in_futex(p, p).
 */
bool in_futex(pid_t pid, pid_t tid);
/* Wait, polling, until thread `tid` of `pid` sleeps in futex(); fail the test after timeout_ms. */
#define AWAIT_FUTEX(pid, tid, timeout_ms)                                                       \
    await_futex_at(__FILE__, __LINE__, (pid), (tid), (timeout_ms))
void await_futex_at(const char *file, int line, pid_t pid, pid_t tid, int timeout_ms);

/*
 * A signal every period_ms to this process, with a handler installed without SA_RESTART, so
 * that a blocking system call in progress fails with EINTR. sigstorm_count() is the number of
 * signals handled so far. Stop restores the previous disposition.
 */
void sigstorm_start(int period_ms);
void sigstorm_stop(void);
unsigned sigstorm_count(void);

/*
 * Iteration counts of the stress tests, divided by SHMT_SYNC_DIV when set (the valgrind
 * phase of scripts/test sets it: memcheck is ~50x slower, and what it checks does not need
 * a million rounds). Never below `min`.
 */
long sync_iters(long n, long min);

/* The seed of a test's random choices: SHMT_SEED if set, else from the clock; logged. */
unsigned sync_seed(void);

/* Median of n values (sorts them). */
int64_t median_i64(int64_t *v, size_t n);

#endif
