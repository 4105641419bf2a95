/*
 * futex_linux.c - waiting on a shared 32-bit word with the futex system call.
 *
 * The futexes are not FUTEX_PRIVATE: the words live in memory shared between processes, where
 * the kernel must key them by the physical page, not the address space.
 */
#include "os/os.h"
#include "sync/futex.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Relaxed: a statistic read by tests, ordering nothing. */
_Atomic uint64_t shml__futex_wake_calls;

int shml__os_futex_wait(shml_atomic_u32 *word, uint32_t expected, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns >= 0) {
        ts.tv_sec = deadline_ns / 1000000000;
        ts.tv_nsec = deadline_ns % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline: no drift over retries. */
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    switch (errno) {
    case EAGAIN:
        return -EAGAIN;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        return -errno;
    }
}

int shml__os_futex_wake(shml_atomic_u32 *word, int n)
{
    atomic_fetch_add_explicit(&shml__futex_wake_calls, 1, memory_order_relaxed);
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}
