/*
 * futex.h - what the sync layer shares about waiting on shared words (the mechanism itself
 * is the platform's: shml__os_futex_wait/wake in os.h).
 */
#ifndef SHML_SYNC_FUTEX_H
#define SHML_SYNC_FUTEX_H

#include "internal.h"

#include <stdint.h>

/*
 * Number of wake-up system calls made by this process (all events and semaphores). Tests use
 * it to check that notifying with nobody asleep costs no system call.
 */
extern SHML_INTERNAL _Atomic uint64_t shml__futex_wake_calls;

/* Absolute monotonic deadline for a relative timeout (negative: none). */
SHML_INTERNAL int64_t shml__deadline(int64_t timeout_ns);

#endif /* SHML_SYNC_FUTEX_H */
