/*
 * wait.c - shml_event and shml_sem: futex words with a count of sleepers.
 *
 * Both use the same handshake so that a wake-up is never lost and never costs a system call
 * when nobody sleeps. A waiter announces itself in the sleeper count, then checks its
 * condition, then sleeps on a futex word only if the word still holds the value it saw (the
 * kernel re-checks that atomically). A waker makes the condition true, then reads the count,
 * and calls the kernel only if it is not 0. Those four accesses are seq_cst: in the single
 * total order either the waker's read of the count comes after the waiter's announcement (it
 * wakes), or the waiter's check comes after the waker's change (it does not sleep). This is
 * Dekker's pattern; acquire and release alone would allow both reads to miss.
 *
 * The futex word never returns to a value a waiter saw: the event sleeps on its generation,
 * the semaphore on a post counter of its own, not on its count (a count can go 0, 1, 0 while a
 * waiter is on its way to sleep).
 *
 * The count heals itself after a waiter dies inside a wait (kill -9), which leaves its
 * announcement behind. When a wake-up system call finds nobody asleep although the count says
 * otherwise, each counted waiter is dead, or has just woken, or is on its way to sleep; the
 * last kind will find the futex word changed (the kernel refuses to sleep then) if it read the
 * word before the waker changed it. The semaphore's waker reads the count before it changes the
 * word, so that holds for all it counted, and it resets the count at once. The event's waker
 * changes the word first (its generation is what waiters read), so a waiter that arrived in
 * between may sleep on the new generation, legitimately; the event therefore resets only at
 * the second fruitless wake-up that sees no new arrival since the first. A reset starts a new
 * epoch, so that the late departures of the waiters it erased are dropped instead of erasing
 * new waiters; and it is a compare-and-swap of the whole word, whose arrivals field only grows,
 * so it fails if anyone arrived meanwhile (layout.h). A dead waiter thus costs one or two
 * needless system calls, once.
 *
 * Progress: notify is wait-free, post lock-free (a CAS loop on the bounded count); at most
 * one system call each. Waits are blocking, bounded by their deadline.
 */
#include "layout.h"
#include "os/os.h"
#include "sync/futex.h"

#include <limits.h>
#include <stdbool.h>

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

/* Announce a sleep; returns the epoch to depart from (bit 0 set if not counted). */
static uint64_t arrive(shml_atomic_u64 *waiters)
{
    uint64_t w = atomic_load_explicit(waiters, memory_order_relaxed);
    uint64_t add;
    do {
        /* At 65535 sleepers, arrive without counting rather than carry into the epoch. */
        add = SHML_WAITERS_COUNT(w) == SHML_WAITERS_COUNT_MAX ? SHML_WAITERS_ARRIVE - 1
                                                             : SHML_WAITERS_ARRIVE;
        /* seq_cst: the waiter's half of the handshake, before it checks its condition. */
    } while (!atomic_compare_exchange_weak_explicit(waiters, &w, w + add, memory_order_seq_cst,
                                                    memory_order_relaxed));
    return shml_waiters_epoch(w) | ((add & 1u) ? 0u : 1u);
}

/* Take back an arrival's count, unless a waker reset the count since (a new epoch). */
static void depart(shml_atomic_u64 *waiters, uint64_t epoch)
{
    if (epoch & 1u)
        return; /* was not counted */
    /* Relaxed: the count only decides whether wakers call the kernel. */
    uint64_t w = atomic_load_explicit(waiters, memory_order_relaxed);
    while (shml_waiters_epoch(w) == epoch && SHML_WAITERS_COUNT(w) != 0 &&
           !atomic_compare_exchange_weak_explicit(waiters, &w, w - 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/*
 * Map a futex wait's result: 0 to look again, -ETIMEDOUT, -ECANCELED (the thread's token), or
 * -EINTR if the caller wants it.
 */
static int wait_result(int r, unsigned flags)
{
    if (r == -EINTR && (flags & SHML_WAIT_EINTR))
        return -EINTR;
    return r == -ETIMEDOUT || r == -ECANCELED ? r : 0;
}

/* A count in w that only departed or dead waiters can hold: reset it in a new epoch. */
static void reset_count(shml_atomic_u64 *waiters, uint64_t w)
{
    uint64_t reset = shml_waiters_reset(w);
    /* Relaxed: a hint; the CAS fails if anyone arrived since w was read (header). */
    atomic_compare_exchange_strong_explicit(waiters, &w, reset, memory_order_relaxed,
                                            memory_order_relaxed);
}

/* ---- event ---- */

static struct shml_event_layout *event_checked(const shml_event *e)
{
    if (!e || ((uintptr_t)e & 7u) != 0)
        return NULL;
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    /* Relaxed: the magic guards against use before init, and orders nothing else. */
    return atomic_load_explicit(&l->magic, memory_order_relaxed) == SHML_EVENT_MAGIC ? l : NULL;
}

int shml_event_init(shml_event *e)
{
    if (!e || ((uintptr_t)e & 7u) != 0)
        return -EINVAL;
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    atomic_store_explicit(&l->gen, 0, memory_order_relaxed);
    atomic_store_explicit(&l->waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&l->spin, 0, memory_order_relaxed);
    atomic_store_explicit(&l->stale, 0, memory_order_relaxed);
    atomic_store_explicit(&l->armed, 0, memory_order_relaxed);
    l->reserved = 0;
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
        uint64_t epoch = arrive(&l->waiters);
        int r = 0;
        /* seq_cst: the waiter's check, after its announcement (header). */
        if (atomic_load_explicit(&l->gen, memory_order_seq_cst) == seen)
            r = shml__futex_wait(&l->gen, seen, deadline);
        depart(&l->waiters, epoch);
        r = wait_result(r, flags);
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
    if (!e || ((uintptr_t)e & 7u) != 0 || (how != SHML_WAKE_ONE && how != SHML_WAKE_ALL))
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
    /* seq_cst: the waker's read of the count, after its change of gen (header). */
    uint64_t w = atomic_load_explicit(&l->waiters, memory_order_seq_cst);
    if (SHML_WAITERS_COUNT(w) == 0)
        return 0;
    /*
     * Wake all: every sleeper where the platform can, else as many as the count says (every
     * sleeper on the old generation is counted: it arrived before it slept, before the
     * increment), or INT_MAX when the count is saturated and says nothing.
     */
    uint32_t counted = SHML_WAITERS_COUNT(w);
    int r = how == SHML_WAKE_ONE
                ? shml__os_futex_wake(&l->gen, 1)
                : shml__os_futex_wake_all(&l->gen, counted == SHML_WAITERS_COUNT_MAX
                                                       ? INT_MAX
                                                       : (int)counted);
    if (r == 0) {
        /*
         * Counted, yet nobody asleep. Reset only if the previous fruitless wake-up saw the same
         * arrivals: then every counted waiter arrived before our increment of gen (header).
         * Relaxed: a hint between wakers.
         */
        uint32_t arrivals = shml_waiters_arrivals(w) | 1u; /* never 0, the "no suspicion" mark */
        if (atomic_exchange_explicit(&l->stale, arrivals, memory_order_relaxed) == arrivals)
            reset_count(&l->waiters, w);
    }
    return r;
}

/* ---- waits on other conditions (futex.h) ---- */

uint32_t shml__event_gen(struct shml_event_layout *e)
{
    /* Acquire pairs with the increment in shml_event_notify(), as shml_event_read() does. */
    return atomic_load_explicit(&e->gen, memory_order_acquire);
}

uint64_t shml__event_arrive(struct shml_event_layout *e)
{
    uint64_t ticket = arrive(&e->waiters);
    /* seq_cst: the caller's check of its condition comes after the announcement (header). */
    atomic_thread_fence(memory_order_seq_cst);
    return ticket;
}

void shml__event_depart(struct shml_event_layout *e, uint64_t ticket)
{
    depart(&e->waiters, ticket);
}

int shml__event_sleep(struct shml_event_layout *e, uint32_t gen, uint64_t ticket,
                      int64_t deadline)
{
    int r = shml__futex_wait(&e->gen, gen, deadline);
    depart(&e->waiters, ticket);
    return r == -ETIMEDOUT || r == -ECANCELED ? r : 0;
}

void shml__event_wake(struct shml_event_layout *e)
{
    /* seq_cst: the waker's change of the condition comes before its read of the count. */
    atomic_thread_fence(memory_order_seq_cst);
    if (SHML_WAITERS_COUNT(atomic_load_explicit(&e->waiters, memory_order_relaxed)) != 0)
        shml_event_notify((shml_event *)e, SHML_WAKE_ONE);
}

void shml__event_wake_all(struct shml_event_layout *e)
{
    /* seq_cst: as in shml__event_wake(). */
    atomic_thread_fence(memory_order_seq_cst);
    if (SHML_WAITERS_COUNT(atomic_load_explicit(&e->waiters, memory_order_relaxed)) != 0)
        shml_event_notify((shml_event *)e, SHML_WAKE_ALL);
}

/* ---- semaphore ---- */

static struct shml_sem_layout *sem_checked(const shml_sem *s)
{
    if (!s || ((uintptr_t)s & 7u) != 0)
        return NULL;
    struct shml_sem_layout *l = (struct shml_sem_layout *)s;
    /* Relaxed: the magic guards against use before init, and orders nothing else. */
    return atomic_load_explicit(&l->magic, memory_order_relaxed) == SHML_SEM_MAGIC ? l : NULL;
}

int shml_sem_init(shml_sem *s, uint32_t value)
{
    if (!s || ((uintptr_t)s & 7u) != 0 || value > SHML_SEM_MAX)
        return -EINVAL;
    struct shml_sem_layout *l = (struct shml_sem_layout *)s;
    atomic_store_explicit(&l->value, value, memory_order_relaxed);
    atomic_store_explicit(&l->posts, 0, memory_order_relaxed);
    atomic_store_explicit(&l->waiters, 0, memory_order_relaxed);
    l->reserved[0] = l->reserved[1] = l->reserved[2] = 0;
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
        /* Acquire pairs with the increment of posts in shml_sem_post(); read before arrive so
           that a post after this read changes the word we would sleep on. */
        uint32_t posts = atomic_load_explicit(&l->posts, memory_order_acquire);
        uint64_t epoch = arrive(&l->waiters);
        /* seq_cst: the waiter's check, after its announcement (header). */
        if (atomic_load_explicit(&l->value, memory_order_seq_cst) != 0 && sem_take(l)) {
            depart(&l->waiters, epoch);
            return 0;
        }
        int r = shml__futex_wait(&l->posts, posts, deadline);
        depart(&l->waiters, epoch);
        r = wait_result(r, flags);
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
    /* seq_cst: the waker's read of the count, after its change of value (header); read before
       the increment of posts, so every waiter it counts slept, or will see posts change. */
    uint64_t w = atomic_load_explicit(&l->waiters, memory_order_seq_cst);
    if (SHML_WAITERS_COUNT(w) == 0)
        return 0;
    /* Release pairs with the waiter's acquire load of posts. */
    atomic_fetch_add_explicit(&l->posts, 1, memory_order_release);
    int r = shml__os_futex_wake(&l->posts, 1);
    if (r == 0)
        reset_count(&l->waiters, w); /* counted, yet nobody asleep: stale (header) */
    return r < 0 ? r : 0;
}

uint32_t shml_sem_value(const shml_sem *s)
{
    const struct shml_sem_layout *l = (const struct shml_sem_layout *)s;
    return atomic_load_explicit(&((struct shml_sem_layout *)l)->value, memory_order_relaxed);
}
