/*
 * win32_futex.c - waiting on a 32-bit word on Windows: a named semaphore per word of shared
 * memory, WaitOnAddress for the process's own memory.
 *
 * Windows has no futex across processes (WaitOnAddress wakes only threads of one process), so
 * a word of a registered mapping (win32_region.c) gets a named semaphore, created by its first
 * waiter (count 0) and opened by wakers. The protocol keeps the futex contract that a wake-up
 * after a change of the word is never lost:
 *
 *   waiter: get (or create) the semaphore, THEN compare the word (seq_cst), THEN wait on it;
 *   waker:  change the word (the caller did, before it read its sleeper count), THEN open the
 *           semaphore and release it.
 *
 * If the waker's open comes before the waiter's create, the change came before it too, and the
 * waiter's comparison sees it (-EAGAIN). Otherwise the release finds the semaphore and stays in
 * its count until a waiter takes it, however late that waiter gets to its wait call. An open
 * that finds no semaphore means nobody ever waited on the word: the wake returns 0 and creates
 * nothing.
 *
 * A semaphore counts releases, not sleepers: a release nobody takes stays. So a wake reports
 * "nobody woken" (0) when the count it found was already above 0 (an earlier release still
 * waits for a taker: nobody is asleep), which is the answer wait.c uses to reset the sleeper
 * count of waiters that died; and a leftover release costs a later waiter one spurious wake-up.
 * A semaphore cannot wake "all": the caller says how many sleepers it knows of (os.h), and at
 * most WAKE_BOUND units are released at once.
 *
 * What a semaphore cannot do is tie a release to the value its taker slept on. A thread that
 * compared the word before a change and has not reached its wait call yet can see the release
 * meant for it taken by a thread that arrived after the change (an uncounted arrival, asleep
 * on the new value), and then sleep on with the old value. Each shared wait therefore sleeps in
 * slices of at most SHARED_SLICE_MS and compares its word again between them: such a stolen
 * wake-up costs its owner at most one slice, never the wake-up. (Nothing of the kind can happen
 * to a word with one sleeper at a time, as in a ping-pong; and the thief is not harmed: it
 * finds its word unchanged and is back asleep.)
 *
 * Words outside every registered mapping (cancellation tokens, an event in malloc'd memory)
 * are the process's own memory: WaitOnAddress and WakeByAddress*, which wake threads of this
 * process only. Such a word in memory shared some other way is NOT waited on across processes.
 *
 * Two words at once (shml__os_futex_wait2, for cancellation): the shared word's semaphore and
 * an event of this process for the token's word, in one WaitForMultipleObjects; the token's
 * wake (shml__os_futex_wake_private) sets that event. A token's event is made by its first
 * such wait and kept in a small table keyed by the word's address (TOKEN_EVENTS entries).
 *
 * Timeouts: a deadline on shml__os_mono_ns() becomes whole milliseconds rounded up, and a wait
 * that times out before the deadline (timer granularity) waits again, so a wait never ends
 * early. -EINTR is never returned: nothing interrupts a wait on Windows.
 *
 * Costs: a wake with nobody asleep makes no call at all (the callers count their sleepers);
 * otherwise a wake is one ReleaseSemaphore and a sleep one WaitForMultipleObjects, plus one
 * create or open per word and process, the first time. Under Wine each is a round trip to
 * wineserver: 35-150 us measured on a loaded 2-core machine, where an event ping-pong between
 * two processes took 56-60 us per round trip (raw named events: 92 us).
 */
#include "os/os.h"
#include "os/win32.h"
#include "sync/futex.h"

#include <errno.h>
#include <limits.h>

/* Relaxed: a statistic read by tests, ordering nothing. */
_Atomic uint64_t shml__futex_wake_calls;

/* Relaxed: a test switch (cancel.c then sleeps in slices, as where wait2 is refused). */
_Atomic bool shml__futex_waitv_missing;

/* Longest sleep on a shared word before it is compared again (see the file comment). */
#define SHARED_SLICE_MS 50u
/* Longest sleep on a private word before a handle waited on alongside is looked at. */
#define PRIVATE_SLICE_MS 10u
/* Polling period of a shared word that has no semaphore (wait_polling()). */
#define POLL_MS 1u
/* Most units one wake releases: far above any real count of sleepers (wait.c's count stops at
   65535), small enough that a release for sleepers that are gone costs a bounded number of
   spurious wake-ups. */
#define WAKE_BOUND 65536
/* The semaphores' maximum count. */
#define SEM_MAX 0x7fffffffL

/*
 * Milliseconds to sleep towards `deadline` (negative: none), rounded up, at most `cap`; 0 once
 * the deadline has passed.
 */
static DWORD ms_until(int64_t deadline, DWORD cap)
{
    if (deadline < 0)
        return cap;
    int64_t left = deadline - shml__os_mono_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms < (int64_t)cap ? (DWORD)ms : cap;
}

/*
 * The semaphore of word `off` of r: cached, else created (create) or opened. NULL with *err
 * set: -ENOENT (open: nobody ever waited on it), -EACCES (another user's, whose security
 * does not let this one in), -ENOMEM, or the system's error.
 */
static HANDLE word_sem(struct shml__os_guard *r, uint64_t off, bool create, int *err)
{
    char name[SHML__WIN_NAME_MAX];
    shml__win_region_name(r, off, name);
    HANDLE h = NULL;
    if (create)
        h = CreateSemaphoreA(NULL, 0, SEM_MAX, name);
    /* Create asks for all rights; an existing semaphore may grant only these two. */
    if (!h && (!create || GetLastError() == ERROR_ACCESS_DENIED))
        h = OpenSemaphoreA(SEMAPHORE_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
    if (!h) {
        *err = -shml__win_errno(GetLastError());
        return NULL;
    }
    h = shml__win_region_keep(r, off, h);
    if (!h)
        *err = -ENOMEM;
    return h;
}

/*
 * A shared word whose semaphore cannot be had (no memory, or one this user may not open):
 * compare it every POLL_MS instead, so that the wait still ends when it changes. Returns as
 * shml__win_futex_wait_handle().
 */
static int wait_polling(struct shml__os_guard *r, shml_atomic_u32 *word, uint32_t expected,
                        HANDLE extra, int64_t deadline)
{
    for (bool first = true;; first = false) {
        /* seq_cst, as the semaphore path's comparison. */
        if (shml__win_region_removed(r) ||
            atomic_load_explicit(word, memory_order_seq_cst) != expected)
            return first ? -EAGAIN : 0;
        DWORD ms = ms_until(deadline, POLL_MS);
        if (ms == 0)
            return -ETIMEDOUT;
        if (!extra)
            Sleep(ms);
        else if (WaitForSingleObject(extra, ms) == WAIT_OBJECT_0)
            return 1;
    }
}

/* The private path of shml__win_futex_wait_handle(): WaitOnAddress, in slices if `extra`. */
static int wait_private(shml_atomic_u32 *word, uint32_t expected, HANDLE extra, int64_t deadline)
{
    /* seq_cst, as the shared path's comparison (the callers' handshakes assume it). */
    if (atomic_load_explicit(word, memory_order_seq_cst) != expected)
        return -EAGAIN;
    for (;;) {
        DWORD ms = ms_until(deadline, extra ? PRIVATE_SLICE_MS : INFINITE);
        if (ms == 0)
            return -ETIMEDOUT;
        /* WaitOnAddress compares the word itself, atomically with its sleep. */
        if (WaitOnAddress((volatile void *)word, &expected, sizeof(expected), ms))
            return 0; /* woken, or spuriously: the caller looks again */
        if (GetLastError() != ERROR_TIMEOUT)
            return -shml__win_errno(GetLastError());
        if (extra && WaitForSingleObject(extra, 0) == WAIT_OBJECT_0)
            return 1;
        if (atomic_load_explicit(word, memory_order_seq_cst) != expected)
            return 0;
    }
}

int shml__win_futex_wait_handle(shml_atomic_u32 *word, uint32_t expected, HANDLE extra,
                                int64_t deadline)
{
    uint64_t off;
    HANDLE sem;
    struct shml__os_guard *r = shml__win_region_get((const void *)word, &off, &sem);
    if (!r)
        return wait_private(word, expected, extra, deadline);
    int ret;
    if (!sem && !(sem = word_sem(r, off, true, &ret))) {
        ret = wait_polling(r, word, expected, extra, deadline);
        goto out;
    }
    /* seq_cst: after the create above, so that a waker whose open missed the semaphore changed
       the word before this load (file comment); pairs with the caller's handshake. */
    if (atomic_load_explicit(word, memory_order_seq_cst) != expected) {
        ret = -EAGAIN;
        goto out;
    }
    HANDLE hs[2] = {sem, extra};
    for (;;) {
        DWORD ms = ms_until(deadline, SHARED_SLICE_MS);
        if (ms == 0) {
            ret = -ETIMEDOUT;
            break;
        }
        DWORD w = WaitForMultipleObjects(extra ? 2 : 1, hs, FALSE, ms);
        if (w == WAIT_OBJECT_0) {
            ret = 0; /* a release: for this sleeper, or for one on an older value */
            break;
        }
        if (w == WAIT_OBJECT_0 + 1) {
            ret = 1;
            break;
        }
        if (w != WAIT_TIMEOUT) {
            ret = -shml__win_errno(GetLastError());
            break;
        }
        /* A slice ended: the mapping may be going (a use after close: return without reading
           the word), or a release meant for this sleeper may have been taken by another. */
        if (shml__win_region_removed(r) ||
            atomic_load_explicit(word, memory_order_seq_cst) != expected) {
            ret = 0;
            break;
        }
    }
out:
    shml__win_region_put(r);
    return ret;
}

int shml__os_futex_wait(shml_atomic_u32 *word, uint32_t expected, int64_t deadline_ns)
{
    int r = shml__win_futex_wait_handle(word, expected, NULL, deadline_ns);
    return r == 1 ? 0 : r;
}

int shml__os_futex_wake(shml_atomic_u32 *word, int n)
{
    atomic_fetch_add_explicit(&shml__futex_wake_calls, 1, memory_order_relaxed);
    if (n <= 0)
        return 0;
    uint64_t off;
    HANDLE sem;
    struct shml__os_guard *r = shml__win_region_get((const void *)word, &off, &sem);
    if (!r) {
        /* The process's own memory: how many woke cannot be told; say all did. */
        if (n == 1)
            WakeByAddressSingle((void *)word);
        else
            WakeByAddressAll((void *)word);
        return n;
    }
    int ret;
    if (!sem && !(sem = word_sem(r, off, false, &ret))) {
        /*
         * No semaphore: nobody ever waited on this word (-ENOENT). One this process may not
         * open (another user's) or cannot keep: its sleepers see the change at the end of
         * their slice; nobody was woken now. Either way 0, never an error: wakers cannot
         * handle one (a futex wake does not fail).
         */
        ret = 0;
        goto out;
    }
    LONG prev = 0;
    if (!ReleaseSemaphore(sem, n < WAKE_BOUND ? n : WAKE_BOUND, &prev)) {
        /* ERROR_TOO_MANY_POSTS: releases nobody took fill it, so nobody is asleep. Anything
           else: as an unopenable semaphore above, left to the sleepers' slices. */
        ret = 0;
        goto out;
    }
    /* A count above 0 holds an earlier release nobody has taken: nobody was asleep. */
    ret = prev > 0 ? 0 : n;
out:
    shml__win_region_put(r);
    return ret;
}

/* ---- the process's own words, and cancellation tokens ---- */

/*
 * The events of the tokens' words that shml__os_futex_wait2() sleeps on: manual-reset, set by
 * shml__os_futex_wake_private(). An entry in use (refs > 0) stays; an unused one is reused for
 * another address when the table is full. Under ev_lock.
 */
#define TOKEN_EVENTS 64
static struct {
    const void *addr;
    HANDLE ev;
    long refs;
} tokens[TOKEN_EVENTS];
static SRWLOCK ev_lock = SRWLOCK_INIT;

/* The event of the word `mine`, with a reference (token_put()); NULL if none can be had. */
static HANDLE token_get(const void *mine, int *slot)
{
    AcquireSRWLockExclusive(&ev_lock); /* released below, on every path */
    int free_at = -1, unused_at = -1;
    for (int i = 0; i < TOKEN_EVENTS; i++) {
        if (tokens[i].addr == mine && tokens[i].ev) {
            tokens[i].refs++;
            *slot = i;
            ReleaseSRWLockExclusive(&ev_lock);
            return tokens[i].ev;
        }
        if (!tokens[i].ev && free_at < 0)
            free_at = i;
        else if (tokens[i].ev && tokens[i].refs == 0 && unused_at < 0)
            unused_at = i;
    }
    int i = free_at >= 0 ? free_at : unused_at;
    if (i < 0) {
        ReleaseSRWLockExclusive(&ev_lock);
        return NULL; /* TOKEN_EVENTS tokens waited on at once: the caller sleeps in slices */
    }
    if (!tokens[i].ev) {
        /* The one kernel call under the lock: a token's first wait, once per process. */
        tokens[i].ev = CreateEventA(NULL, TRUE, FALSE, NULL);
        if (!tokens[i].ev) {
            ReleaseSRWLockExclusive(&ev_lock);
            return NULL;
        }
    } else {
        /* Another token's event, now this one's: a set left from the other is stale. */
        ResetEvent(tokens[i].ev);
    }
    tokens[i].addr = mine;
    tokens[i].refs = 1;
    *slot = i;
    ReleaseSRWLockExclusive(&ev_lock);
    return tokens[i].ev;
}

static void token_put(int slot)
{
    AcquireSRWLockExclusive(&ev_lock); /* released below */
    tokens[slot].refs--;
    ReleaseSRWLockExclusive(&ev_lock);
}

int shml__os_futex_wait2(shml_atomic_u32 *word, uint32_t expected, shml_atomic_u32 *mine,
                         uint32_t mine_expected, int64_t deadline_ns)
{
    if (atomic_load_explicit(&shml__futex_waitv_missing, memory_order_relaxed))
        return -ENOSYS;
    uint64_t off;
    HANDLE sem;
    struct shml__os_guard *r = shml__win_region_get((const void *)word, &off, &sem);
    shml__win_region_put(r);
    if (!r)
        return -ENOSYS; /* two private words: the caller sleeps in slices */
    int slot;
    HANDLE ev = token_get((const void *)mine, &slot);
    if (!ev)
        return -ENOSYS;
    int ret;
    for (bool first = true;; first = false) {
        /* seq_cst: after the event exists, so that a fire that found no event changed the
           token's word before this load; a later fire sets the event. */
        if (atomic_load_explicit(mine, memory_order_seq_cst) != mine_expected) {
            ret = first ? -EAGAIN : 0;
            break;
        }
        ret = shml__win_futex_wait_handle(word, expected, ev, deadline_ns);
        if (ret == -EAGAIN && !first)
            ret = 0; /* changed during the wait, not on entry */
        if (ret != 1)
            break;
        if (atomic_load_explicit(mine, memory_order_seq_cst) != mine_expected) {
            ret = 0; /* the token's word changed: a fire */
            break;
        }
        /* Set for a fire that a reset has since undone: clear it and look again (the load at
           the top comes after the clearing, so a fire in between is seen). */
        ResetEvent(ev);
    }
    token_put(slot);
    return ret;
}

int shml__os_futex_wait_private(shml_atomic_u32 *mine, uint32_t expected, int64_t deadline_ns)
{
    return wait_private(mine, expected, NULL, deadline_ns);
}

/*
 * Wake every sleeper on the word `mine`: WaitOnAddress sleepers, and wait2 sleepers through the
 * word's event if it has one. Safe from a console control handler (a thread of its own): an
 * SRWLOCK taken shared and SetEvent.
 */
int shml__os_futex_wake_all(shml_atomic_u32 *word, int sleepers)
{
    /* A semaphore cannot wake "all": as many releases as the caller counted sleepers. */
    return shml__os_futex_wake(word, sleepers);
}

int shml__os_futex_wake_private(shml_atomic_u32 *mine)
{
    WakeByAddressAll((void *)mine);
    AcquireSRWLockShared(&ev_lock); /* released below */
    for (int i = 0; i < TOKEN_EVENTS; i++)
        if (tokens[i].addr == (const void *)mine && tokens[i].ev)
            SetEvent(tokens[i].ev);
    ReleaseSRWLockShared(&ev_lock);
    return 0;
}
