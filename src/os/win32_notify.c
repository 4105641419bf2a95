/*
 * win32_notify.c - notifiers and the poller for event loops (os.h) on Windows: named
 * manual-reset events, and waiter threads that feed one ready list.
 *
 * Notifiers. A manual-reset event "Local\shmln-PID-ID" (ID in 16 lower-case hex digits): found
 * by name (unrelated processes need no handshake), it coalesces (SetEvent on a set event
 * changes nothing), it stays set until its owner resets it, and anything that waits on
 * handles (WaitForMultipleObjects, an I/O completion loop's RegisterWaitForSingleObject, a
 * shml_waitset) waits on it. Its security descriptor comes from the segment's mode bits as a
 * section's does (shml__win_security()): a class with `w` may signal it. A signaller opens it
 * with EVENT_MODIFY_STATE | SYNCHRONIZE; an event whose owner died stays alive only while a
 * signaller's cached handle does, and SetEvent on it harms nobody. The event goes with its
 * last handle, so remove has nothing to do and a dead owner leaves nothing behind.
 *
 * The handle the owner waits on is what shml_channel_fd() returns, as an int: Windows keeps
 * kernel handle values below 2^24 (the handle table's limit) and documents that a handle may be
 * truncated to 32 bits and sign-extended back, so the int names the handle exactly and a
 * program gets it back with (HANDLE)(intptr_t)fd.
 *
 * The poller. WaitForMultipleObjects takes 64 handles; a wait set takes thousands. So the
 * poller runs waiter threads, each waiting on up to PER_WAITER members and on its own `update`
 * event at once; a waiter whose member is signalled puts it on the poller's ready list under
 * the lock and sets the poller's auto-reset `wake` event, which shml__os_poller_wait() sleeps
 * on. A member is in exactly one of three states:
 *
 *   ARMED     in its waiter's wait; only the waiter moves it (to QUEUED);
 *   QUEUED    on the ready list, in the order the waiters found them;
 *   REPORTED  given to the caller by the last wait, on the `reported` list.
 *
 * Level-triggered as epoll is: the next wait looks at each REPORTED member once more
 * (WaitForSingleObject with timeout 0, in the caller's thread): still signalled, it goes to the
 * tail of the ready list (behind members that have waited longer, so nobody starves); not, it
 * is ARMED again and its waiter told (`update`). A member found signalled leaves its waiter's
 * array, so the others get their turn (WaitForMultipleObjects reports the lowest index).
 *
 * A wait acquires what it waits on, like any wait: an auto-reset event or a semaphore is
 * reported once per signal or unit taken (by a waiter or by the look again), which is exact
 * but takes the unit from its other waiters; a mutex must not be a member (a waiter thread
 * would own it). Members are waited on for SHML_POLL_IN only (signalled): a handle has no
 * "writable".
 *
 * Removal, and why waiter threads rather than the system's thread-pool waits: a waiter holds
 * pointers to the members it waits on, from the moment it builds its handle array under the
 * lock until it takes the lock again after the wait. Each change a waiter must see bumps its
 * `epoch`; it records the epoch it built from in `seen`. Removing an ARMED member bumps the
 * epoch, sets `update`, and sleeps on `caught_up` until `seen` reaches it: the waiter has
 * left its wait and dropped its array, so the member can be freed. (Wine's thread-pool waits
 * cannot promise that: a wait satisfied just before SetThreadpoolWait(NULL) is still submitted
 * once its wait thread takes its lock again, after WaitForThreadpoolWaitCallbacks may have
 * returned, and the callback then runs on a freed member.) A member that is not ARMED is in
 * no waiter's array: only the waiter makes it leave ARMED, and it rebuilds before it waits
 * again, in the same hold of the lock.
 *
 * Concurrency: a poller is used by one thread at a time (its wait set's); its waiters run
 * concurrently and touch only the ready list, the states, their own arrays and `wake`, under
 * the lock. Costs: a report is one WaitForSingleObject and, unless the member is still
 * signalled, one SetEvent of its waiter's `update` (one per waiter and wait, whatever the
 * number of its members armed again), which wakes the waiter to wait anew.
 */
#include "os/os.h"
#include "os/win32.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

_Atomic uint64_t shml__note_calls;

/* Relaxed: a statistic for tests. */
#define COUNT() atomic_fetch_add_explicit(&shml__note_calls, 1, memory_order_relaxed)

/* "Local\shmln-" + pid + '-' + 16 hex digits + NUL, with room to spare. */
#define NOTE_NAME_MAX 64

/* What each permission class may do with a notifier: wait on it (r), signal it too (w). */
static const struct shml__win_rights event_rights = {
    .read = SYNCHRONIZE | READ_CONTROL,
    .write = SYNCHRONIZE | EVENT_MODIFY_STATE | READ_CONTROL,
    .read_any = SYNCHRONIZE,
    .write_any = EVENT_MODIFY_STATE,
};

static int note_name(int32_t pid, uint64_t id, wchar_t out[NOTE_NAME_MAX])
{
    char name[NOTE_NAME_MAX];
    snprintf(name, sizeof(name), "Local\\shmln-%" PRId32 "-%016" PRIx64, pid, id);
    return shml__win_wide(name, out, NOTE_NAME_MAX);
}

int shml__os_note_create(int32_t pid, uint64_t id, uint32_t mode, intptr_t *h)
{
    wchar_t name[NOTE_NAME_MAX];
    int r = note_name(pid, id, name);
    if (r < 0)
        return r;
    void *sa;
    /* The mode asked, and owner read and write always (os.h); x bits mean nothing here. */
    if ((r = shml__win_security((mode & 0666u) | 0600u, &event_rights, &sa)) < 0)
        return r;
    HANDLE e = CreateEventW(sa, TRUE, FALSE, name);
    DWORD err = GetLastError();
    free(sa);
    if (!e)
        return -shml__win_errno(err); /* a name of another type: -EBADF, as on Linux */
    if (err == ERROR_ALREADY_EXISTS) {
        /* Someone made the name first (a random id that collided, or a squatter's object,
           whose security is not ours): refuse it, as mkfifo does. */
        CloseHandle(e);
        return -EEXIST;
    }
    *h = (intptr_t)e;
    return 0;
}

int shml__os_note_open(int32_t pid, uint64_t id, intptr_t *h)
{
    wchar_t name[NOTE_NAME_MAX];
    int r = note_name(pid, id, name);
    if (r < 0)
        return r;
    COUNT();
    /* An object of another type under the name fails here (ERROR_INVALID_HANDLE: -EBADF). */
    HANDLE e = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
    if (!e)
        return -shml__win_errno(GetLastError()); /* gone: ERROR_FILE_NOT_FOUND, -ENOENT */
    *h = (intptr_t)e;
    return 0;
}

void shml__os_note_signal(intptr_t h)
{
    COUNT();
    SetEvent((HANDLE)h);
}

void shml__os_note_drain(intptr_t h)
{
    COUNT();
    ResetEvent((HANDLE)h);
}

void shml__os_note_close(intptr_t h)
{
    COUNT();
    CloseHandle((HANDLE)h);
}

/* The event goes with its last handle: no name to remove, and no system call to count. */
void shml__os_note_remove(int32_t pid, uint64_t id)
{
    (void)pid, (void)id;
}

int shml__os_note_fd(intptr_t h)
{
    return (int)h; /* exact: see the file comment */
}

/* ---- the poller ---- */

/* Members per waiter thread: WaitForMultipleObjects' 64 handles, less the waiter's `update`. */
#define PER_WAITER (MAXIMUM_WAIT_OBJECTS - 1)
/* A waiter's stack: it calls WaitForMultipleObjects with two small arrays, nothing more. */
#define WAITER_STACK (64 * 1024)

enum { ARMED, QUEUED, REPORTED };

struct waiter;

struct member {
    HANDLE h;
    uint64_t key;
    int state;                  /* under the poller's lock */
    struct member *prev, *next; /* on the ready list (QUEUED) or the reported list */
    struct waiter *w;           /* the waiter it belongs to, at w->m[slot] */
    uint32_t slot;
    uint32_t at; /* index in the poller's `all` */
};

/* A doubly linked list with a head and a tail. */
struct list {
    struct member *head, *tail;
};

struct poller;

/* A thread waiting on up to PER_WAITER members (m, n, epoch and seen under the poller's lock;
   kick the caller's thread's only). */
struct waiter {
    struct poller *p;
    HANDLE thread;
    HANDLE update; /* auto-reset: its members changed, or the poller closes */
    struct member *m[PER_WAITER];
    uint32_t n;
    uint64_t epoch; /* bumped by each change the waiter must see */
    uint64_t seen;  /* the epoch its current array was built from */
    bool kick;      /* members were armed again: set `update` once for all */
};

struct poller {
    SRWLOCK lock;
    CONDITION_VARIABLE caught_up; /* a waiter's `seen` moved */
    HANDLE wake;                  /* auto-reset: a waiter queued a member */
    struct list ready;            /* QUEUED members, oldest first */
    struct list reported;         /* REPORTED members */
    struct member **all;          /* every member (the caller's thread only) */
    uint32_t n, cap;
    struct waiter **waiters; /* (the caller's thread only; their fields under the lock) */
    uint32_t nwaiters;
    bool closing; /* under the lock */
};

static void list_append(struct list *l, struct member *m)
{
    m->next = NULL;
    m->prev = l->tail;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
}

static void list_unlink(struct list *l, struct member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        l->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        l->tail = m->prev;
    m->prev = m->next = NULL;
}

/* Move m from ARMED to QUEUED (the waiter, under the lock). */
static void queue(struct poller *p, struct member *m)
{
    m->state = QUEUED;
    list_append(&p->ready, m);
}

static DWORD WINAPI waiter_main(void *arg)
{
    struct waiter *w = arg;
    struct poller *p = w->p;
    HANDLE hs[MAXIMUM_WAIT_OBJECTS];
    struct member *ms[MAXIMUM_WAIT_OBJECTS];
    bool queued = false;
    /* Acquire: pairs with the release of every other holder of the lock (the caller's thread
       and the other waiters): the states, arrays and lists they left are whole. */
    AcquireSRWLockExclusive(&p->lock);
    while (!p->closing) {
        DWORD k = 0;
        hs[k] = w->update;
        ms[k++] = NULL;
        for (uint32_t i = 0; i < w->n; i++)
            if (w->m[i]->state == ARMED) {
                hs[k] = w->m[i]->h;
                ms[k++] = w->m[i];
            }
        /* The members of ms[] stay allocated until `seen` passes this epoch (removals wait). */
        w->seen = w->epoch;
        WakeAllConditionVariable(&p->caught_up);
        /* Release: pairs with the acquire of the next holder (a remover sees `seen`). */
        ReleaseSRWLockExclusive(&p->lock);
        if (queued) {
            /* After the release: the poller's thread takes what was queued under the lock. */
            SetEvent(p->wake);
            queued = false;
        }
        DWORD r = WaitForMultipleObjects(k, hs, FALSE, INFINITE);
        /* Acquire: as above. */
        AcquireSRWLockExclusive(&p->lock);
        DWORD i = r >= WAIT_ABANDONED_0 && r < WAIT_ABANDONED_0 + k ? r - WAIT_ABANDONED_0
                                                                    : r - WAIT_OBJECT_0;
        if (i > 0 && i < k) {
            /* A member removed meanwhile is still allocated (its remover waits for `seen`),
               and no longer ours. */
            if (ms[i]->w == w && ms[i]->state == ARMED) {
                queue(p, ms[i]);
                queued = true;
            }
        } else if (r == WAIT_FAILED) {
            /* A handle closed under the set: find it (and any that is signalled: its unit is
               taken, so it is reported too), and report them, never to wait on them again
               until the caller looked. */
            for (DWORD j = 1; j < k; j++) {
                if (ms[j]->w != w || ms[j]->state != ARMED)
                    continue;
                DWORD one = WaitForSingleObject(ms[j]->h, 0);
                if (one != WAIT_TIMEOUT) {
                    queue(p, ms[j]);
                    queued = true;
                }
            }
        }
    }
    ReleaseSRWLockExclusive(&p->lock);
    return 0;
}

int shml__os_poller_create(intptr_t *p)
{
    struct poller *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return -ENOMEM;
    InitializeSRWLock(&pl->lock);
    InitializeConditionVariable(&pl->caught_up);
    pl->wake = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (!pl->wake) {
        int err = shml__win_errno(GetLastError());
        free(pl);
        return -err;
    }
    *p = (intptr_t)pl;
    return 0;
}

static struct member *find(const struct poller *p, HANDLE h)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->all[i]->h == h)
            return p->all[i];
    return NULL;
}

/* A waiter with room for one more member: one that has it, or a new one. NULL with *err. */
static struct waiter *waiter_with_room(struct poller *p, int *err)
{
    for (uint32_t i = 0; i < p->nwaiters; i++)
        if (p->waiters[i]->n < PER_WAITER) /* n changes only in the caller's thread */
            return p->waiters[i];
    struct waiter **ws = realloc(p->waiters, (p->nwaiters + 1) * sizeof(*ws));
    struct waiter *w = ws ? calloc(1, sizeof(*w)) : NULL;
    if (ws)
        p->waiters = ws;
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    w->p = p;
    w->update = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (w->update)
        w->thread = CreateThread(NULL, WAITER_STACK, waiter_main, w,
                                 STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (!w->thread) {
        *err = -shml__win_errno(GetLastError());
        if (w->update)
            CloseHandle(w->update);
        free(w);
        return NULL;
    }
    p->waiters[p->nwaiters++] = w;
    return w;
}

/* Is h signalled now? (A wait with timeout 0: it takes what an acquiring wait takes.) 1 yes,
   0 no, -errno when h cannot be waited on. */
static int signalled(HANDLE h)
{
    DWORD w = WaitForSingleObject(h, 0);
    if (w == WAIT_OBJECT_0 || w == WAIT_ABANDONED)
        return 1;
    if (w == WAIT_TIMEOUT)
        return 0;
    DWORD e = GetLastError();
    return e == ERROR_ACCESS_DENIED ? -EPERM : -shml__win_errno(e);
}

int shml__os_poller_add(intptr_t pp, intptr_t hh, uint32_t events, uint64_t key)
{
    struct poller *p = (struct poller *)pp;
    HANDLE h = (HANDLE)hh;
    if (events & SHML_POLL_OUT)
        return -EPERM; /* a handle is signalled or not: nothing to wait on for "writable" */
    if (!(events & SHML_POLL_IN))
        return -EINVAL;
    if (find(p, h))
        return -EEXIST;
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 16;
        struct member **all = realloc(p->all, cap * sizeof(*all));
        if (!all)
            return -ENOMEM;
        p->all = all;
        p->cap = cap;
    }
    int err = 0;
    struct waiter *w = waiter_with_room(p, &err);
    if (!w)
        return err;
    struct member *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    /* A handle that is no waitable object fails here (-EBADF; no SYNCHRONIZE right: -EPERM),
       rather than in a waiter later. Last, as it may take a unit (a semaphore's) that only a
       report may consume. */
    int now = signalled(h);
    if (now < 0) {
        free(m);
        return now;
    }
    m->h = h;
    m->key = key;
    m->at = p->n;
    p->all[p->n++] = m;
    /* Acquire and release: pair with the waiters' (waiter_main()), which read the arrays and
       states and append to the ready list under the same lock. */
    AcquireSRWLockExclusive(&p->lock);
    m->w = w;
    m->slot = w->n;
    w->m[w->n++] = m;
    if (now) {
        queue(p, m); /* the next wait takes it from the list */
    } else {
        m->state = ARMED;
        w->epoch++;
    }
    ReleaseSRWLockExclusive(&p->lock);
    if (!now)
        SetEvent(w->update);
    return 0;
}

/* Take m out of its waiter and the lists, then free it (the caller's thread). */
static void drop(struct poller *p, struct member *m)
{
    /* Acquire and release: as in shml__os_poller_add(). */
    AcquireSRWLockExclusive(&p->lock);
    struct waiter *w = m->w;
    if (m->slot != --w->n) {
        w->m[m->slot] = w->m[w->n];
        w->m[m->slot]->slot = m->slot;
    }
    m->w = NULL;
    if (m->state == QUEUED)
        list_unlink(&p->ready, m);
    else if (m->state == REPORTED)
        list_unlink(&p->reported, m);
    if (m->state == ARMED) {
        /* The waiter may be waiting on m->h with m in its array: have it build a new one,
           and free m only once it has. The sleep releases the lock, which the waiter takes. */
        uint64_t want = ++w->epoch;
        SetEvent(w->update);
        while (w->seen < want && !p->closing)
            SleepConditionVariableSRW(&p->caught_up, &p->lock, INFINITE, 0);
    }
    ReleaseSRWLockExclusive(&p->lock);
    free(m);
}

int shml__os_poller_remove(intptr_t pp, intptr_t hh)
{
    struct poller *p = (struct poller *)pp;
    struct member *m = find(p, (HANDLE)hh);
    if (!m)
        return -ENOENT;
    /* Out of the table first: the last member takes m's place, unless m is the last. */
    uint32_t at = m->at;
    if (at != --p->n) {
        p->all[at] = p->all[p->n];
        p->all[at]->at = at;
    }
    drop(p, m);
    return 0;
}

/* Milliseconds to sleep towards `deadline` (negative: none), rounded up so that a wait never
   ends early; 0 once it has passed. */
static DWORD ms_until(int64_t deadline)
{
    if (deadline < 0)
        return INFINITE;
    int64_t left = deadline - shml__os_mono_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms < (int64_t)0x7fffffff ? (DWORD)ms : (DWORD)0x7fffffff;
}

int shml__os_poller_wait(intptr_t pp, struct shml__os_poll_ready *out, int max, int64_t deadline_ns)
{
    struct poller *p = (struct poller *)pp;
    if (max <= 0)
        return -EINVAL;
    /* Level-triggered: what the last wait reported and is still signalled is ready again;
       the rest is armed. The looks are made outside the lock, the moves under it. */
    struct member *m = p->reported.head;
    while (m) {
        struct member *next = m->next;
        /* An error (the handle was closed under the set) is reported too, at every wait until
           the member is removed, as epoll reports one. */
        int now = signalled(m->h);
        /* Acquire and release: as in shml__os_poller_add(). */
        AcquireSRWLockExclusive(&p->lock);
        list_unlink(&p->reported, m);
        if (now != 0) {
            queue(p, m);
        } else {
            m->state = ARMED;
            m->w->epoch++;
            m->w->kick = true;
        }
        ReleaseSRWLockExclusive(&p->lock);
        m = next;
    }
    for (uint32_t i = 0; i < p->nwaiters; i++)
        if (p->waiters[i]->kick) { /* written by this thread only */
            p->waiters[i]->kick = false;
            SetEvent(p->waiters[i]->update);
        }
    for (;;) {
        int n = 0;
        /* Acquire: pairs with the release in waiter_main(): the members it queued are whole. */
        AcquireSRWLockExclusive(&p->lock);
        while (n < max && (m = p->ready.head) != NULL) {
            list_unlink(&p->ready, m);
            m->state = REPORTED;
            list_append(&p->reported, m);
            out[n].key = m->key;
            out[n].events = SHML_POLL_IN;
            n++;
        }
        ReleaseSRWLockExclusive(&p->lock);
        if (n > 0)
            return n;
        DWORD ms = ms_until(deadline_ns);
        if (ms == 0)
            return 0;
        /* Woken by a waiter after it queued, or at the time: look again either way (a timer
           that ends a little early only makes one more round). */
        if (WaitForSingleObject(p->wake, ms) == WAIT_FAILED)
            return -shml__win_errno(GetLastError());
    }
}

void shml__os_poller_close(intptr_t pp)
{
    struct poller *p = (struct poller *)pp;
    /* Release: pairs with each waiter's acquire after its wait, which then sees `closing`
       and returns without touching a member again. */
    AcquireSRWLockExclusive(&p->lock);
    p->closing = true;
    ReleaseSRWLockExclusive(&p->lock);
    for (uint32_t i = 0; i < p->nwaiters; i++)
        SetEvent(p->waiters[i]->update);
    for (uint32_t i = 0; i < p->nwaiters; i++) {
        WaitForSingleObject(p->waiters[i]->thread, INFINITE);
        CloseHandle(p->waiters[i]->thread);
        CloseHandle(p->waiters[i]->update);
        free(p->waiters[i]);
    }
    for (uint32_t i = 0; i < p->n; i++)
        free(p->all[i]);
    CloseHandle(p->wake);
    free(p->waiters);
    free(p->all);
    free(p);
}
