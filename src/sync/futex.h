/*
 * futex.h - what the sync layer shares about waiting on shared words (the mechanism itself
 * is the platform's: shml__os_futex_wait/wake in os.h).
 */
#ifndef SHML_SYNC_FUTEX_H
#define SHML_SYNC_FUTEX_H

#include "internal.h"
#include "layout.h"

#include <stdint.h>

/*
 * Number of wake-up system calls made by this process (all events and semaphores). Tests use
 * it to check that notifying with nobody asleep costs no system call.
 */
extern SHML_INTERNAL _Atomic uint64_t shml__futex_wake_calls;

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
/* Sleep while the generation is `gen`, until the deadline; departs. 0 or -ETIMEDOUT. */
SHML_INTERNAL int shml__event_sleep(struct shml_event_layout *e, uint32_t gen, uint64_t ticket,
                                    int64_t deadline);
SHML_INTERNAL void shml__event_wake(struct shml_event_layout *e);
/* As shml__event_wake(), waking every sleeper (for conditions every waiter needs). */
SHML_INTERNAL void shml__event_wake_all(struct shml_event_layout *e);

#endif /* SHML_SYNC_FUTEX_H */
