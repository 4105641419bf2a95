/*
 * cancel.c - cancellation tokens (sync.h), and the sleeps through which every wait of the
 * library honours the token bound to its thread.
 *
 * A token is one 32-bit word in the process's own memory: bit 0 says fired, the bits above
 * count resets. A wait reads the word, returns -ECANCELED if it is fired, and otherwise
 * sleeps on its shared word and on the token's word at once (shml__os_futex_wait2), expecting
 * the value it read. A fire sets bit 0 and wakes the token's word: whether it comes before the
 * sleep (the kernel finds the word changed and refuses to sleep) or during it (the wake-up),
 * the wait returns. No Dekker handshake is needed, because the kernel compares the token's
 * word itself; the fire's one system call is made only on the transition to fired.
 *
 * A reset adds 2 and clears bit 0 in one step, so the word never returns to a value a sleeper
 * saw: a fire and a reset between a wait's read and its sleep still wake it (spuriously: it
 * finds the token not fired and sleeps again).
 *
 * Where the kernel cannot sleep on two words (before Linux 5.16: -ENOSYS), a wait sleeps on
 * its shared word alone in slices of CANCEL_POLL_NS and looks at the token between them. The
 * robust mutex, whose sleep is the C library's, does the same (mutex.c).
 *
 * Progress: fire, reset and fired are wait-free and async-signal-safe (atomics and one
 * futex system call).
 */
#include "os/os.h"
#include "sync/futex.h"

#include <errno.h>
#include <stdlib.h>

#define FIRED 1u
#define RESET_STEP 2u

struct shml_cancel {
    shml_atomic_u32 word; /* bit 0: fired; above: resets */
    unsigned flags;       /* SHML_CANCEL_* */
    /* A wake-up that a poller can wait on (shml__cancel_wakeup()), made by the first wait set
       that waits with the token bound; signalled by every fire from then on. */
    _Atomic int has_wakeup;
    intptr_t wakeup;
};

/* The token bound to each thread (shml_cancel_bind()). */
static _Thread_local shml_cancel *bound;

int shml_cancel_create(shml_cancel **out, unsigned flags)
{
    if (!out || (flags & ~SHML_CANCEL_SIGNALS))
        return -EINVAL;
    shml_cancel *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->flags = flags;
    *out = c;
    return 0;
}

void shml_cancel_destroy(shml_cancel *c)
{
    if (c && atomic_load_explicit(&c->has_wakeup, memory_order_relaxed))
        shml__os_wakeup_close(c->wakeup);
    free(c);
}

int shml__cancel_wakeup(shml_cancel *c, intptr_t *h)
{
    if (!atomic_load_explicit(&c->has_wakeup, memory_order_relaxed)) {
        int r = shml__os_wakeup_create(&c->wakeup);
        if (r < 0)
            return r;
        /* seq_cst: pairs with the load in shml_cancel_fire(): either the fire sees the
           wake-up (and signals it), or our caller's look at the word after this sees the
           fire. */
        atomic_store_explicit(&c->has_wakeup, 1, memory_order_seq_cst);
    }
    *h = c->wakeup;
    return 0;
}

shml_cancel *shml_cancel_bind(shml_cancel *c)
{
    shml_cancel *before = bound;
    bound = c;
    return before;
}

shml_cancel *shml_cancel_bound(void)
{
    return bound;
}

int shml_cancel_fire(shml_cancel *c)
{
    if (!c)
        return -EINVAL;
    /* Release (in seq_cst) pairs with the acquire loads of the word in the waits: what the
       firer wrote before firing is visible to a wait that returns -ECANCELED. seq_cst: our
       half of the handshake with shml__cancel_wakeup(). */
    uint32_t w = atomic_fetch_or_explicit(&c->word, FIRED, memory_order_seq_cst);
    if (!(w & FIRED)) {
        int saved = errno; /* a signal handler's caller keeps its errno */
        shml__os_futex_wake_private(&c->word);
        /* seq_cst: pairs with the store in shml__cancel_wakeup() (see there). */
        if (atomic_load_explicit(&c->has_wakeup, memory_order_seq_cst))
            shml__os_wakeup_signal(c->wakeup);
        errno = saved;
    }
    return 0;
}

int shml_cancel_reset(shml_cancel *c)
{
    if (!c)
        return -EINVAL;
    /* Drained before the fired bit is cleared: a fire after the clearing signals again,
       never into this drain. Relaxed: a wait set that wakes for a drained signal's sake only
       looks at the word. */
    if (atomic_load_explicit(&c->has_wakeup, memory_order_relaxed))
        shml__os_wakeup_drain(c->wakeup);
    /* Relaxed: the reset publishes nothing; the waits read the word with the kernel's check. */
    uint32_t w = atomic_load_explicit(&c->word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&c->word, &w, (w + RESET_STEP) & ~FIRED,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    return 0;
}

bool shml_cancel_fired(const shml_cancel *c)
{
    /* Acquire pairs with the release in shml_cancel_fire(). */
    return c && (atomic_load_explicit(&((shml_cancel *)c)->word, memory_order_acquire) & FIRED);
}

/* ---- the library's waits (futex.h) ---- */

bool shml__cancelled(void)
{
    return shml_cancel_fired(bound);
}

/*
 * After a bound wait that a signal handler interrupted: with SHML_CANCEL_SIGNALS the token
 * fires (the wait returns -ECANCELED); otherwise -EINTR stays what it was.
 */
static int interrupted(shml_cancel *c)
{
    if (!(c->flags & SHML_CANCEL_SIGNALS))
        return -EINTR;
    shml_cancel_fire(c);
    return -ECANCELED;
}

/* The end of a slice of at most CANCEL_POLL_NS, within `deadline` (negative: none). */
static int64_t slice_end(int64_t deadline)
{
    int64_t end = shml__os_mono_ns() + SHML__CANCEL_POLL_NS;
    return deadline >= 0 && deadline < end ? deadline : end;
}

int shml__futex_wait(shml_atomic_u32 *word, uint32_t expected, int64_t deadline)
{
    shml_cancel *c = bound;
    if (!c)
        return shml__os_futex_wait(word, expected, deadline);
    /* Acquire pairs with the release in shml_cancel_fire(). */
    uint32_t w = atomic_load_explicit(&c->word, memory_order_acquire);
    if (w & FIRED)
        return -ECANCELED;
    int r = shml__os_futex_wait2(word, expected, &c->word, w, deadline);
    if (r == -ENOSYS) {
        /* Slices, each comparing the word again, with a look at the token between them. */
        for (;;) {
            int64_t end = slice_end(deadline);
            r = shml__os_futex_wait(word, expected, end);
            if (r != -ETIMEDOUT || end == deadline)
                break;
            if (shml_cancel_fired(c))
                return -ECANCELED;
        }
    }
    if (r == -EINTR)
        r = interrupted(c);
    if (shml_cancel_fired(c))
        return -ECANCELED;
    return r;
}

int shml__nap(int64_t ns)
{
    shml_cancel *c = bound;
    if (!c) {
        shml__os_sleep_ns(ns);
        return 0;
    }
    int64_t deadline = shml__os_mono_ns() + (ns > 0 ? ns : 0);
    for (;;) {
        /* Acquire pairs with the release in shml_cancel_fire(). */
        uint32_t w = atomic_load_explicit(&c->word, memory_order_acquire);
        if (w & FIRED)
            return -ECANCELED;
        int r = shml__os_futex_wait_private(&c->word, w, deadline);
        if (r == -ETIMEDOUT)
            return 0;
        if (r == -EINTR && interrupted(c) == -ECANCELED)
            return -ECANCELED;
        /* woken (a fire, or a reset: look again), or a signal the token does not follow */
    }
}
