/*
 * futex_linux.c - waiting on a shared 32-bit word with the futex system call.
 *
 * The futexes of shared words are not FUTEX_PRIVATE: the words live in memory shared between
 * processes, where the kernel must key them by the physical page, not the address space. A
 * cancellation token's word lives in the process's own memory and is private.
 *
 * Waiting on a shared word and a token's word at once is futex_waitv (Linux 5.16). Where the
 * kernel lacks it, shml__os_futex_wait2() says -ENOSYS once and for all, and the caller sleeps
 * on the shared word alone, in bounded slices (sync/cancel.c).
 */
#include "os/os.h"
#include "sync/futex.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* futex_waitv's number, flag and waiter, as Linux 5.16 defines them: declared here so that
   the library builds with older kernel headers (and falls back where the kernel lacks it). */
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449 /* the same number on every architecture */
#endif
#define WAITV_U32 2u        /* FUTEX_32: a 32-bit word */
struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};
_Static_assert(sizeof(struct waitv) == 24, "struct futex_waitv of linux/futex.h");

/* Relaxed: a statistic read by tests, ordering nothing. */
_Atomic uint64_t shml__futex_wake_calls;

/* Relaxed: set once (by the first -ENOSYS, or by a test), read as a hint. */
_Atomic bool shml__futex_waitv_missing;

/* An absolute monotonic deadline as the futex calls take it; NULL for none. */
static struct timespec *abs_deadline(int64_t deadline_ns, struct timespec *ts)
{
    if (deadline_ns < 0)
        return NULL;
    ts->tv_sec = deadline_ns / 1000000000;
    ts->tv_nsec = deadline_ns % 1000000000;
    return ts;
}

/* A failed futex call's errno as the os.h contract names it. */
static int wait_error(int err)
{
    switch (err) {
    case EAGAIN:
        return -EAGAIN;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        return -err;
    }
}

/* A FUTEX_WAIT_BITSET(_PRIVATE) `op` on word: an absolute CLOCK_MONOTONIC deadline, so that
   retries do not drift. */
static int wait_bitset(shml_atomic_u32 *word, int op, uint32_t expected, int64_t deadline_ns)
{
    struct timespec ts;
    long r = syscall(SYS_futex, (uint32_t *)word, op, expected, abs_deadline(deadline_ns, &ts),
                     NULL, FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : wait_error(errno);
}

int shml__os_futex_wait(shml_atomic_u32 *word, uint32_t expected, int64_t deadline_ns)
{
    return wait_bitset(word, FUTEX_WAIT_BITSET, expected, deadline_ns);
}

int shml__os_futex_wake(shml_atomic_u32 *word, int n)
{
    atomic_fetch_add_explicit(&shml__futex_wake_calls, 1, memory_order_relaxed);
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

int shml__os_futex_wake_all(shml_atomic_u32 *word, int sleepers)
{
    (void)sleepers; /* every sleeper, in whatever order the kernel keeps them (os.h) */
    return shml__os_futex_wake(word, INT_MAX);
}

int shml__os_futex_wait2(shml_atomic_u32 *word, uint32_t expected, shml_atomic_u32 *mine,
                         uint32_t mine_expected, int64_t deadline_ns)
{
    if (atomic_load_explicit(&shml__futex_waitv_missing, memory_order_relaxed))
        return -ENOSYS;
    struct waitv w[2] = {
        {.val = expected, .uaddr = (uintptr_t)word, .flags = WAITV_U32},
        {.val = mine_expected, .uaddr = (uintptr_t)mine, .flags = WAITV_U32 | FUTEX_PRIVATE_FLAG},
    };
    struct timespec ts;
    long r = syscall(SYS_futex_waitv, w, 2u, 0u, abs_deadline(deadline_ns, &ts), CLOCK_MONOTONIC);
    if (r >= 0)
        return 0;
    int err = errno;
    if (err == EAGAIN || err == ETIMEDOUT || err == EINTR)
        return wait_error(err);
    /* ENOSYS (before Linux 5.16), or a sandbox that refuses the call (EPERM from a seccomp
       profile that does not know it): never again; the caller sleeps in slices instead. */
    atomic_store_explicit(&shml__futex_waitv_missing, true, memory_order_relaxed);
    return -ENOSYS;
}

int shml__os_futex_wait_private(shml_atomic_u32 *mine, uint32_t expected, int64_t deadline_ns)
{
    return wait_bitset(mine, FUTEX_WAIT_BITSET_PRIVATE, expected, deadline_ns);
}

int shml__os_futex_wake_private(shml_atomic_u32 *mine)
{
    long r = syscall(SYS_futex, (uint32_t *)mine, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}
