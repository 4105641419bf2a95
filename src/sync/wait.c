/*
 * wait.c - shml_event and shml_sem: futex words with a count of sleepers.
 *
 * Both use the same handshake so that a wake-up is never lost and never costs a system call
 * when nobody sleeps. A waiter increments `waiters`, then reads the futex word, then sleeps
 * only if the word still holds the value it waits to see change (the kernel re-checks that
 * atomically). A waker changes the word, then reads `waiters`, and calls the kernel only if it
 * is not 0. All four accesses are seq_cst: in the single total order either the waker's read
 * of `waiters` comes after the waiter's increment (it wakes), or the waiter's read of the word
 * comes after the waker's change (it does not sleep). This is Dekker's pattern; acquire and
 * release alone would allow both reads to miss.
 *
 * Progress: notify and post are wait-free (one atomic RMW, one load, at most one system call).
 * A waiter that dies (kill -9) inside a wait leaves `waiters` one too high: later wakers make
 * one needless system call each; nothing blocks.
 */
#include "layout.h"
#include "os/os.h"
#include "sync/futex.h"

#include <limits.h>

_Static_assert(sizeof(shml_event) == sizeof(struct shml_event_layout), "public event size");
_Static_assert(sizeof(shml_sem) == sizeof(struct shml_sem_layout), "public semaphore size");

#define SPIN_MAX 1000000u

int64_t shml__deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t now = shml__os_mono_ns();
    return timeout_ns > INT64_MAX - now ? -1 : now + timeout_ns;
}

/*
 * Sleep while *word == value, announced in *waiters, until the deadline. Returns 0 when it is
 * worth looking at the word again (woken, spurious wake-up, word changed, or a signal that
 * the caller does not want to see), -ETIMEDOUT, or -EINTR (flags has SHML_WAIT_EINTR).
 */
static int sleep_on(shml_atomic_u32 *word, shml_atomic_u32 *waiters, uint32_t value,
                    int64_t deadline, unsigned flags)
{
    /* seq_cst: the announcement must be ordered before our read of the word (header). */
    atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
    int r = 0;
    if (atomic_load_explicit(word, memory_order_seq_cst) == value)
        r = shml__os_futex_wait(word, value, deadline);
    /* Relaxed: the count only decides whether wakers call the kernel; a late decrement costs
       at most one needless wake-up. */
    atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
    if (r == -EINTR && (flags & SHML_WAIT_EINTR))
        return -EINTR;
    return r == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* ---- event ---- */

static struct shml_event_layout *event_checked(const shml_event *e)
{
    if (!e || ((uintptr_t)e & 3u) != 0)
        return NULL;
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    /* Relaxed: the magic guards against use before init, and orders nothing else. */
    return atomic_load_explicit(&l->magic, memory_order_relaxed) == SHML_EVENT_MAGIC ? l : NULL;
}

int shml_event_init(shml_event *e)
{
    if (!e || ((uintptr_t)e & 3u) != 0)
        return -EINVAL;
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    atomic_store_explicit(&l->gen, 0, memory_order_relaxed);
    atomic_store_explicit(&l->waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&l->spin, 0, memory_order_relaxed);
    /* Release: a process that sees the magic sees the fields above (it publishes them). */
    atomic_store_explicit(&l->magic, SHML_EVENT_MAGIC, memory_order_release);
    return 0;
}

int shml_event_set_spin(shml_event *e, uint32_t spins)
{
    struct shml_event_layout *l = event_checked(e);
    if (!l || spins > SPIN_MAX)
        return -EINVAL;
    atomic_store_explicit(&l->spin, spins, memory_order_relaxed); /* a tuning knob only */
    return 0;
}

uint32_t shml_event_read(const shml_event *e)
{
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    /* Acquire pairs with the increment in shml_event_notify(): what the notifier wrote before
       notifying is visible to whoever reads the new generation. */
    return atomic_load_explicit(&l->gen, memory_order_acquire);
}

int shml_event_wait_flags(shml_event *e, uint32_t seen, int64_t timeout_ns, unsigned flags)
{
    struct shml_event_layout *l = event_checked(e);
    if (!l)
        return -EINVAL;
    /* Acquire pairs with the notifier's increment, as in shml_event_read(). */
    if (atomic_load_explicit(&l->gen, memory_order_acquire) != seen)
        return 0;
    uint32_t spins = atomic_load_explicit(&l->spin, memory_order_relaxed);
    for (uint32_t i = 0; i < spins; i++) {
        shml__os_cpu_relax();
        if (atomic_load_explicit(&l->gen, memory_order_acquire) != seen) /* as above */
            return 0;
    }
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    int64_t deadline = shml__deadline(timeout_ns);
    for (;;) {
        int r = sleep_on(&l->gen, &l->waiters, seen, deadline, flags);
        /* Acquire, as above: the caller reads what the notifier published. */
        if (atomic_load_explicit(&l->gen, memory_order_acquire) != seen)
            return 0;
        if (r < 0)
            return r;
    }
}

int shml_event_wait(shml_event *e, uint32_t seen, int64_t timeout_ns)
{
    return shml_event_wait_flags(e, seen, timeout_ns, 0);
}

int shml_event_notify(shml_event *e, int how)
{
    if (!e || ((uintptr_t)e & 3u) != 0 || (how != SHML_WAKE_ONE && how != SHML_WAKE_ALL))
        return -EINVAL;
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    /*
     * The increment comes before the magic check: the line is polled by the waiters, and
     * reading it first would fetch it shared and then again exclusive, two transfers between
     * cores where one will do. An uninitialised event gets its increment undone.
     *
     * seq_cst: releases the notifier's writes to readers of gen, and is the waker's half of
     * the handshake (header) with the read of waiters below.
     */
    atomic_fetch_add_explicit(&l->gen, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&l->magic, memory_order_relaxed) != SHML_EVENT_MAGIC) {
        atomic_fetch_sub_explicit(&l->gen, 1, memory_order_relaxed);
        return -EINVAL;
    }
    if (atomic_load_explicit(&l->waiters, memory_order_seq_cst) == 0)
        return 0;
    return shml__os_futex_wake(&l->gen, how == SHML_WAKE_ALL ? INT_MAX : 1);
}

/* ---- semaphore ---- */

static struct shml_sem_layout *sem_checked(const shml_sem *s)
{
    if (!s || ((uintptr_t)s & 3u) != 0)
        return NULL;
    struct shml_sem_layout *l = (struct shml_sem_layout *)s;
    /* Relaxed: the magic guards against use before init, and orders nothing else. */
    return atomic_load_explicit(&l->magic, memory_order_relaxed) == SHML_SEM_MAGIC ? l : NULL;
}

int shml_sem_init(shml_sem *s, uint32_t value)
{
    if (!s || ((uintptr_t)s & 3u) != 0 || value > SHML_SEM_MAX)
        return -EINVAL;
    struct shml_sem_layout *l = (struct shml_sem_layout *)s;
    atomic_store_explicit(&l->value, value, memory_order_relaxed);
    atomic_store_explicit(&l->waiters, 0, memory_order_relaxed);
    l->reserved = 0;
    /* Release: a process that sees the magic sees the fields above. */
    atomic_store_explicit(&l->magic, SHML_SEM_MAGIC, memory_order_release);
    return 0;
}

/* Take one unit if the count is positive; true on success. */
static bool sem_take(struct shml_sem_layout *l)
{
    uint32_t v = atomic_load_explicit(&l->value, memory_order_relaxed);
    while (v > 0) {
        /* Acquire on success pairs with the release in shml_sem_post(): what the poster wrote
           before posting is visible to the taker. */
        if (atomic_compare_exchange_weak_explicit(&l->value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

int shml_sem_wait_flags(shml_sem *s, int64_t timeout_ns, unsigned flags)
{
    struct shml_sem_layout *l = sem_checked(s);
    if (!l)
        return -EINVAL;
    if (sem_take(l))
        return 0;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    int64_t deadline = shml__deadline(timeout_ns);
    for (;;) {
        int r = sleep_on(&l->value, &l->waiters, 0, deadline, flags);
        if (sem_take(l))
            return 0;
        if (r < 0)
            return r;
    }
}

int shml_sem_wait(shml_sem *s, int64_t timeout_ns)
{
    return shml_sem_wait_flags(s, timeout_ns, 0);
}

int shml_sem_trywait(shml_sem *s)
{
    return shml_sem_wait_flags(s, 0, 0);
}

int shml_sem_post(shml_sem *s)
{
    struct shml_sem_layout *l = sem_checked(s);
    if (!l)
        return -EINVAL;
    uint32_t v = atomic_load_explicit(&l->value, memory_order_relaxed);
    do {
        if (v >= SHML_SEM_MAX)
            return -EOVERFLOW;
        /* seq_cst: releases the poster's writes to the taker (pairs with the acquire in
           sem_take()) and is the waker's half of the handshake (header). */
    } while (!atomic_compare_exchange_weak_explicit(&l->value, &v, v + 1, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (atomic_load_explicit(&l->waiters, memory_order_seq_cst) != 0) {
        int r = shml__os_futex_wake(&l->value, 1);
        if (r < 0)
            return r;
    }
    return 0;
}

uint32_t shml_sem_value(const shml_sem *s)
{
    const struct shml_sem_layout *l = (const struct shml_sem_layout *)s;
    return atomic_load_explicit(&((struct shml_sem_layout *)l)->value, memory_order_relaxed);
}
