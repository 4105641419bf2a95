/*
 * futex.h - what the sync layer shares about waiting on shared words (the mechanism itself
 * is the platform's: shml__os_futex_wait/wake in os.h).
 */
#ifndef SHML_SYNC_FUTEX_H
#define SHML_SYNC_FUTEX_H

#include "internal.h"
#include "layout.h"
#include "shmlink/sync.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Number of wake-up system calls made by this process (all events and semaphores). Tests use
 * it to check that notifying with nobody asleep costs no system call.
 */
extern SHML_INTERNAL _Atomic uint64_t shml__futex_wake_calls;

/*
 * Set when the kernel cannot sleep on two words at once (no futex_waitv): waits then look at
 * their cancellation token between slices. Tests set it to run that path.
 */
extern SHML_INTERNAL _Atomic bool shml__futex_waitv_missing;

/* ---- cancellation (cancel.c): the waits of the library honour the thread's bound token ---- */

/* The longest a wait sleeps before it looks at its token, where the kernel cannot wake it. */
#define SHML__CANCEL_POLL_NS ((int64_t)20 * 1000000)

/* Has the calling thread's bound token fired? (false when none is bound) */
SHML_INTERNAL bool shml__cancelled(void);
/*
 * The wake-up of token c (made at the first call, by the thread that waits: not in a signal
 * handler), signalled by every fire from then on and drained by every reset, so that a poller
 * can end its wait when the token fires (waitset.c). After this call, look at the token
 * (shml_cancel_fired()): a fire that came before it may not have signalled. 0 or -errno.
 */
SHML_INTERNAL int shml__cancel_wakeup(shml_cancel *c, intptr_t *h);

/*
 * shml__os_futex_wait() for the library's waits: with no token bound to the calling thread,
 * exactly that; with one, it also returns -ECANCELED when the token fires (or has fired),
 * and, for a token with SHML_CANCEL_SIGNALS, fires it and returns -ECANCELED where a signal
 * handler interrupted the sleep.
 */
SHML_INTERNAL int shml__futex_wait(shml_atomic_u32 *word, uint32_t expected, int64_t deadline);

/*
 * Sleep `ns` nanoseconds (a poll interval), or less: 0, or -ECANCELED as soon as the bound
 * token fires (the sleep is then cut short).
 */
SHML_INTERNAL int shml__nap(int64_t ns);

/* Absolute monotonic deadline for a relative timeout (negative: none). */
SHML_INTERNAL int64_t shml__deadline(int64_t timeout_ns);

/*
 * Waiting for a condition other than an event's generation (a channel's slots), with an
 * event's sleeper count and futex word, so that wakers make no system call when nobody sleeps:
 *
 *   waiter:  gen = shml__event_gen(e); t = shml__event_arrive(e);
 *            (seq_cst fence) check the condition; if true: shml__event_depart(e, t), done;
 *            else shml__event_sleep(e, gen, t, deadline) (which departs), and check again.
 *   waker:   make the condition true; shml__event_wake(e) (a seq_cst fence, then a notify
 *            only if the count says someone sleeps).
 */
SHML_INTERNAL uint32_t shml__event_gen(struct shml_event_layout *e);
SHML_INTERNAL uint64_t shml__event_arrive(struct shml_event_layout *e);
SHML_INTERNAL void shml__event_depart(struct shml_event_layout *e, uint64_t ticket);
/*
 * Sleep while the generation is `gen`, until the deadline; departs. 0, -ETIMEDOUT, or
 * -ECANCELED (shml__futex_wait()).
 */
SHML_INTERNAL int shml__event_sleep(struct shml_event_layout *e, uint32_t gen, uint64_t ticket,
                                    int64_t deadline);
SHML_INTERNAL void shml__event_wake(struct shml_event_layout *e);
/* As shml__event_wake(), waking every sleeper (for conditions every waiter needs). */
SHML_INTERNAL void shml__event_wake_all(struct shml_event_layout *e);

#endif /* SHML_SYNC_FUTEX_H */
