/*
 * win32_mutex.c - the robust process-shared mutex on Windows, in the 40-byte platform area of
 * struct shml_mutex_layout (src/layout.h).
 *
 * Windows offers no robust lock in shared memory, and its kernel mutex is no substitute: it
 * costs 200-400 us per lock and unlock under Wine, it is recursive, and when its holder dies
 * while no other process has a handle to it, the mutex dies too and the next CreateMutex makes
 * a fresh one: the death is lost. So the lock is a word in the segment, and a sleeper watches
 * the holder's thread for its end:
 *
 *   offset  size  field
 *        0     8  lock   0 when free (never locked, or unlocked); else bits 0-31 the holder's
 *                        thread id, bits 32-60 its tag (the low 29 bits of the thread's
 *                        creation time, a FILETIME), bit 61 WAITERS (someone may sleep on
 *                        `wait`), bit 62 DIED (the holder named by bits 0-60 is gone: the lock
 *                        is free, and the next locker gets -EOWNERDEAD), bit 63 NOTREC (not
 *                        recoverable, for ever: every lock gets -ENOTRECOVERABLE)
 *        8     4  wait   futex word the sleepers sleep on (a named semaphore: win32_futex.c);
 *                        each unlock that finds WAITERS adds 1 and wakes one sleeper
 *       12     4  state  0 consistent; 1 inconsistent: held by a locker that got -EOWNERDEAD
 *                        and has not called shml_mutex_consistent() yet
 *       16    24  zero
 *
 * Lock: one compare-and-swap of the lock word from 0 to the caller's id; no kernel call. Busy:
 * set WAITERS, then sleep on {the wait word's semaphore, a handle to the holder's thread}. A
 * thread handle is signalled when the thread ends, for whatever reason: it returned, it was
 * terminated, or its process exited, crashed or was killed with TerminateProcess. The sleeper
 * then takes the lock over with a compare-and-swap of the exact word it judged, sets state
 * inconsistent and returns -EOWNERDEAD with the lock held: what glibc's robust mutexes do. So a
 * death is seen at once by a sleeper, and by the next locker otherwise (it finds the thread
 * gone, or its id now another thread's: the tag differs). A thread rather than a process is
 * watched because a lock is a thread's, as on Linux, where a thread that exits holding a
 * robust mutex releases it too.
 *
 * The tag makes the holder's identity part of the one compare-and-swap that takes the lock:
 * there is no moment at which the lock is held by a thread that has not said who it is, so a
 * holder killed anywhere is recognised. A thread whose id is reused by a thread created a
 * multiple of 2^29 * 100 ns (53.7 s) later, to the 100 ns, would pass for the dead one: one
 * chance in 2^29, and only if nothing of this process still holds a handle to the dead thread
 * (a handle keeps its id from being reused).
 *
 * Relock by the holder: -EDEADLK. Unlock by a thread that does not hold it: -EPERM. Unlock
 * while inconsistent (no shml_mutex_consistent() after -EOWNERDEAD): the lock becomes NOTREC,
 * and every lock from then on returns -ENOTRECOVERABLE, the sleepers woken one after another.
 *
 * Handles of holder threads are kept in a small per-process cache (HOLDERS entries), so that
 * a contended lock costs its wait and the holder's unlock one release, nothing more, once each
 * holder thread has been opened. A holder whose thread this process may not open (another
 * user's, with a DACL that shuts it out) is not watched: its sleepers wake each wait slice,
 * and mutex.c's probe of the holder's identity (thread start time) still frees a lock it left.
 *
 * Progress: lock and unlock are lock-free when uncontended (one compare-and-swap each); a
 * contended lock blocks, bounded by its timeout.
 */
#include "layout.h"
#include "os/os.h"
#include "os/win32.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

struct win_mutex {
    shml_atomic_u64 lock;
    shml_atomic_u32 wait;
    shml_atomic_u32 state;
    uint32_t zero[6];
};
_Static_assert(sizeof(struct win_mutex) == SHML_MUTEX_OS_BYTES, "the platform area, exactly");
_Static_assert(offsetof(struct win_mutex, lock) == 0, "win mutex.lock");
_Static_assert(offsetof(struct win_mutex, wait) == 8, "win mutex.wait");
_Static_assert(offsetof(struct win_mutex, state) == 12, "win mutex.state");

#define LOCK_TID     0x00000000ffffffffull
#define TAG_BITS     0x1fffffffu
#define LOCK_ID      0x1fffffffffffffffull /* tid and tag */
#define LOCK_WAITERS (1ull << 61)
#define LOCK_DIED    (1ull << 62)
#define LOCK_NOTREC  (1ull << 63)

#define STATE_CONSISTENT   0u
#define STATE_INCONSISTENT 1u

static uint64_t filetime_u64(FILETIME ft)
{
    return ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

/* The lock word's id of thread `tid` created at `created` (a FILETIME). */
static uint64_t thread_id(uint32_t tid, uint64_t created)
{
    return (uint64_t)tid | ((created & TAG_BITS) << 32);
}

/* The calling thread's id in the lock word, as computed once per thread. */
static _Thread_local uint64_t self_id;

static uint64_t self(void)
{
    if (self_id == 0) {
        FILETIME c, x, k, u;
        uint64_t created = 0;
        if (GetThreadTimes(GetCurrentThread(), &c, &x, &k, &u))
            created = filetime_u64(c);
        self_id = thread_id(GetCurrentThreadId(), created);
    }
    return self_id;
}

/* ---- the cache of holder threads' handles ---- */

#define HOLDERS 32
static struct {
    uint64_t id; /* the thread's lock-word id (tid and tag); 0: free entry */
    HANDLE h;    /* SYNCHRONIZE: signalled when the thread ends */
    long refs;   /* users now; an entry in use is never evicted */
} holders[HOLDERS];
static unsigned holders_next; /* round robin of evictions */
static SRWLOCK holders_lock = SRWLOCK_INIT;

enum { HOLDER_OK, HOLDER_GONE, HOLDER_UNKNOWN };

/*
 * A handle to the thread the lock word names (id: tid and tag), to wait on; with a reference
 * given back by holder_put(*slot). HOLDER_GONE: no such thread, or its id now names another
 * thread (the tag differs). HOLDER_UNKNOWN: it cannot be opened (*h is NULL).
 */
static int holder_get(uint64_t id, HANDLE *h, int *slot)
{
    uint32_t tid = (uint32_t)(id & LOCK_TID);
    *h = NULL;
    *slot = -1;
    AcquireSRWLockExclusive(&holders_lock); /* released below, on every path */
    for (int i = 0; i < HOLDERS; i++) {
        if (holders[i].id != 0 && (uint32_t)(holders[i].id & LOCK_TID) == tid) {
            /* The handle keeps tid from being reused: a word naming tid with another tag was
               written by an earlier thread of that id, which is gone. */
            if (holders[i].id != id) {
                ReleaseSRWLockExclusive(&holders_lock);
                return HOLDER_GONE;
            }
            holders[i].refs++;
            *h = holders[i].h;
            *slot = i;
            ReleaseSRWLockExclusive(&holders_lock);
            return HOLDER_OK;
        }
    }
    ReleaseSRWLockExclusive(&holders_lock);

    HANDLE t = OpenThread(SYNCHRONIZE | THREAD_QUERY_LIMITED_INFORMATION, FALSE, tid);
    if (!t)
        return GetLastError() == ERROR_INVALID_PARAMETER ? HOLDER_GONE : HOLDER_UNKNOWN;
    FILETIME c, x, k, u;
    if (!GetThreadTimes(t, &c, &x, &k, &u)) {
        CloseHandle(t);
        return HOLDER_UNKNOWN;
    }
    if (thread_id(tid, filetime_u64(c)) != id) {
        CloseHandle(t);
        return HOLDER_GONE; /* the id is another thread's now */
    }

    HANDLE drop = NULL;
    AcquireSRWLockExclusive(&holders_lock); /* released below; no kernel call inside */
    int at = -1;
    for (int i = 0; i < HOLDERS && at < 0; i++)
        if (holders[i].id == id)
            at = i; /* another thread of this process opened it meanwhile */
    if (at >= 0) {
        drop = t;
    } else {
        for (int n = 0; n < HOLDERS && at < 0; n++) {
            int i = (int)(holders_next++ % HOLDERS);
            if (holders[i].refs == 0)
                at = i;
        }
        if (at >= 0) {
            drop = holders[at].id ? holders[at].h : NULL; /* the oldest unused: evicted */
            holders[at].id = id;
            holders[at].h = t;
        }
    }
    if (at >= 0) {
        holders[at].refs++;
        *h = holders[at].h;
        *slot = at;
    } else {
        *h = t; /* every entry in use: an uncached handle, closed by holder_put() */
    }
    ReleaseSRWLockExclusive(&holders_lock);
    if (drop)
        CloseHandle(drop);
    return HOLDER_OK;
}

static void holder_put(HANDLE h, int slot)
{
    if (!h)
        return;
    if (slot < 0) {
        CloseHandle(h);
        return;
    }
    AcquireSRWLockExclusive(&holders_lock); /* released below */
    holders[slot].refs--;
    ReleaseSRWLockExclusive(&holders_lock);
}

/* ---- the lock ---- */

/* Wake one sleeper on m's wait word (an unlock, an abandon, a not-recoverable relay). */
static void wake_one(struct win_mutex *m)
{
    /* seq_cst: after the lock word's change, which the caller made; a sleeper that read the
       wait word before that change finds it different (pairs with its load in lock_slow()). */
    atomic_fetch_add_explicit(&m->wait, 1, memory_order_seq_cst);
    shml__os_futex_wake(&m->wait, 1);
}

int shml__os_mutex_init(void *os)
{
    memset(os, 0, SHML_MUTEX_OS_BYTES);
    return 0;
}

/*
 * Take over the lock whose word was `seen` (held by a thread that is gone): one CAS of exactly
 * that word, so that nobody else's lock is taken. `slept`: the caller slept on it before, so
 * other sleepers may remain and WAITERS is kept set. True with the lock held, inconsistent.
 */
static bool take_over(struct win_mutex *m, uint64_t seen, uint64_t me, bool slept)
{
    uint64_t want = me | (seen & LOCK_WAITERS) | (slept ? LOCK_WAITERS : 0);
    /* Acquire pairs with the release of the dead holder's last unlock or with the stores it
       made before it died (they are in the segment; whatever it wrote, the caller is told
       -EOWNERDEAD to repair). */
    if (!atomic_compare_exchange_strong_explicit(&m->lock, &seen, want, memory_order_acquire,
                                                 memory_order_relaxed))
        return false;
    /* Relaxed: only the holder writes state; the unlock's release publishes it. */
    atomic_store_explicit(&m->state, STATE_INCONSISTENT, memory_order_relaxed);
    return true;
}

/* shml__os_mutex_lock() once the first compare-and-swap failed. */
static int lock_slow(struct win_mutex *m, uint64_t me, int64_t timeout_ns)
{
    int64_t deadline = -1;
    if (timeout_ns > 0) {
        int64_t now = shml__os_mono_ns();
        deadline = timeout_ns > INT64_MAX - now ? -1 : now + timeout_ns;
    }
    bool slept = false; /* then other sleepers may remain: keep WAITERS when taking it */
    for (;;) {
        /* seq_cst: the wait word before the lock word, so that an unlock after this read of
           the lock word changes the wait word before its wake (pairs with wake_one()). */
        uint32_t w = atomic_load_explicit(&m->wait, memory_order_seq_cst);
        uint64_t seen = atomic_load_explicit(&m->lock, memory_order_seq_cst);
        if (seen & LOCK_NOTREC) {
            if (slept && (seen & LOCK_WAITERS))
                wake_one(m); /* the next sleeper learns it too */
            return -ENOTRECOVERABLE;
        }
        if ((seen & LOCK_TID) == 0 || (seen & LOCK_DIED)) {
            uint64_t want = me | (seen & LOCK_WAITERS) | (slept ? LOCK_WAITERS : 0);
            /* Acquire pairs with the release CAS in shml__os_mutex_unlock() (or the one in
               shml__os_mutex_abandon()): the previous holder's writes are visible. */
            if (!atomic_compare_exchange_strong_explicit(
                    &m->lock, &seen, want, memory_order_acquire, memory_order_relaxed))
                continue;
            if (!(seen & LOCK_DIED))
                return 0;
            /* Relaxed: only the holder writes state. */
            atomic_store_explicit(&m->state, STATE_INCONSISTENT, memory_order_relaxed);
            return -EOWNERDEAD;
        }
        if ((seen & LOCK_ID) == me)
            return -EDEADLK;
        HANDLE h;
        int slot;
        int judged = holder_get(seen & LOCK_ID, &h, &slot);
        if (judged == HOLDER_GONE) {
            if (take_over(m, seen, me, slept))
                return -EOWNERDEAD;
            continue; /* the word moved: judge it again */
        }
        if (timeout_ns == 0) {
            holder_put(h, slot);
            return -ETIMEDOUT;
        }
        /* seq_cst: WAITERS set while the lock is held, so the holder's unlock (a later CAS
           of the same word) sees it and wakes. */
        if (!(seen & LOCK_WAITERS) &&
            !atomic_compare_exchange_strong_explicit(&m->lock, &seen, seen | LOCK_WAITERS,
                                                     memory_order_seq_cst, memory_order_relaxed)) {
            holder_put(h, slot);
            continue;
        }
        seen |= LOCK_WAITERS;
        slept = true;
        int r = shml__win_futex_wait_handle(&m->wait, w, h, deadline);
        holder_put(h, slot);
        if (r == 1) {
            /* The holder's thread ended. */
            if (take_over(m, seen, me, slept))
                return -EOWNERDEAD;
            continue;
        }
        if (r == -ETIMEDOUT)
            return -ETIMEDOUT;
        /* 0 or -EAGAIN: an unlock (or a spurious wake-up): look again. Anything else is an
           error of the system's, already turned into a bounded poll by the wait. */
    }
}

int shml__os_mutex_lock(void *os, int64_t timeout_ns)
{
    struct win_mutex *m = os;
    uint64_t me = self();
    uint64_t free_word = 0;
    /* Acquire pairs with the release CAS in shml__os_mutex_unlock(): the previous holder's
       writes are visible to the new one. */
    if (atomic_compare_exchange_strong_explicit(&m->lock, &free_word, me, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    return lock_slow(m, me, timeout_ns);
}

int shml__os_mutex_unlock(void *os)
{
    struct win_mutex *m = os;
    uint64_t me = self();
    uint64_t seen = atomic_load_explicit(&m->lock, memory_order_relaxed);
    uint64_t next;
    do {
        if ((seen & (LOCK_DIED | LOCK_NOTREC)) || (seen & LOCK_ID) != me)
            return -EPERM;
        /* Relaxed: state is the holder's own (the caller's). */
        next = atomic_load_explicit(&m->state, memory_order_relaxed) == STATE_INCONSISTENT
                   ? LOCK_NOTREC
                   : 0;
        /* seq_cst: releases the critical section to the next locker (pairs with its acquire
           CAS), and orders this read of WAITERS against the sleepers' setting of it. */
    } while (!atomic_compare_exchange_weak_explicit(&m->lock, &seen, next, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (seen & LOCK_WAITERS)
        wake_one(m);
    return 0;
}

int shml__os_mutex_consistent(void *os)
{
    struct win_mutex *m = os;
    uint64_t seen = atomic_load_explicit(&m->lock, memory_order_relaxed);
    /* Only its holder may, and only after -EOWNERDEAD: anything else is "not in that state"
       (sync.h), as glibc says for a mutex that is not inconsistent. */
    if ((seen & (LOCK_DIED | LOCK_NOTREC)) || (seen & LOCK_ID) != self() ||
        atomic_load_explicit(&m->state, memory_order_relaxed) != STATE_INCONSISTENT)
        return -EINVAL;
    /* Relaxed: the holder's own field, published by its unlock. */
    atomic_store_explicit(&m->state, STATE_CONSISTENT, memory_order_relaxed);
    return 0;
}

void shml__os_mutex_inspect(const void *os, struct shml_mutex_state *st)
{
    struct win_mutex *m = (struct win_mutex *)os; /* read only */
    uint64_t seen = atomic_load_explicit(&m->lock, memory_order_relaxed);
    memset(st, 0, sizeof(*st));
    st->alive = -1;
    st->waiters = (seen & LOCK_WAITERS) != 0;
    int32_t tid = (int32_t)(seen & LOCK_TID);
    if (seen & LOCK_NOTREC) {
        st->state = SHML_MUTEX_NOT_RECOVERABLE;
        return;
    }
    if (seen & LOCK_DIED) {
        st->state = SHML_MUTEX_OWNER_DEAD;
        st->owner = tid;
        st->alive = 0;
        return;
    }
    if (tid == 0) {
        st->state = SHML_MUTEX_FREE;
        return;
    }
    st->owner = tid;
    st->state = atomic_load_explicit(&m->state, memory_order_relaxed) == STATE_INCONSISTENT
                    ? SHML_MUTEX_REPAIRING
                    : SHML_MUTEX_HELD;
    HANDLE t = OpenThread(SYNCHRONIZE | THREAD_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)tid);
    if (!t) {
        if (GetLastError() == ERROR_INVALID_PARAMETER)
            st->alive = 0;
    } else {
        FILETIME c, x, k, u;
        if (GetThreadTimes(t, &c, &x, &k, &u)) {
            if (thread_id((uint32_t)tid, filetime_u64(c)) != (seen & LOCK_ID) ||
                WaitForSingleObject(t, 0) == WAIT_OBJECT_0)
                st->alive = 0;
            else
                st->alive = 1;
        }
        if (st->alive == 1)
            st->pid = (int32_t)GetProcessIdOfThread(t);
        CloseHandle(t);
    }
    /* Held by a thread that is gone: what Linux shows once the kernel released it, and what
       the next locker gets (-EOWNERDEAD). */
    if (st->alive == 0)
        st->state = SHML_MUTEX_OWNER_DEAD;
}

int32_t shml__os_mutex_holder(const void *os)
{
    const struct win_mutex *m = os;
    uint64_t seen = atomic_load_explicit(&((struct win_mutex *)m)->lock, memory_order_relaxed);
    if (seen & (LOCK_DIED | LOCK_NOTREC))
        return 0;
    return (int32_t)(seen & LOCK_TID);
}

int shml__os_mutex_abandon(void *os, int32_t tid)
{
    struct win_mutex *m = os;
    uint64_t seen = atomic_load_explicit(&m->lock, memory_order_relaxed);
    if (tid == 0 || (seen & (LOCK_DIED | LOCK_NOTREC)) || (int32_t)(seen & LOCK_TID) != tid)
        return 0;
    /*
     * What a sleeper does when it sees the holder's thread end, left for the next locker: the
     * word keeps the dead holder's id (for inspection) with DIED set. Release pairs with the
     * acquire CAS of that locker. A failed CAS means the word moved (a locker took over first,
     * or the holder was not gone after all).
     */
    if (!atomic_compare_exchange_strong_explicit(&m->lock, &seen, seen | LOCK_DIED,
                                                 memory_order_release, memory_order_relaxed))
        return 0;
    if (seen & LOCK_WAITERS)
        wake_one(m);
    return 1;
}
