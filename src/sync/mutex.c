/*
 * mutex.c - shml_mutex: the platform's robust process-shared mutex behind an initialisation
 * mark, so that a mutex nobody initialised is an error, not undefined behaviour, and a waiter
 * that frees a lock whose holder went where the platform could not see it.
 *
 * The platform releases a dead holder's lock itself (Linux: the kernel walks the thread's
 * robust list at exit and at exec), but only a lock it can still reach: a holder that unmapped
 * the segment first (closed it, or a Python program whose interpreter closed it on exit) leaves
 * the lock word naming a thread that no longer exists, for ever. So a locker waits in slices;
 * after a slice in which the lock did not come free, it checks the holder the lock word names
 * against the identity the holder recorded (holder_ns, holder_id: src/layout.h):
 *
 *   - a holder of another pid namespace, or one that has not recorded its identity yet, is
 *     never judged (its thread id means nothing here, or not yet): the locker keeps waiting;
 *   - a holder whose thread no longer exists, or whose thread id now belongs to a thread that
 *     started at another time, is gone: shml__os_mutex_abandon() turns the lock into what a
 *     death leaves, and the locker (or a sleeper it wakes) gets -EOWNERDEAD with the lock.
 *
 * So whatever way a holder goes, the lock is taken over within one slice (at most
 * PROBE_MAX_NS) plus the check. A live holder is never robbed: the abandon is a compare-and-
 * swap on the exact word judged, and a thread that exists with the recorded start time is
 * alive. (The one window: the judged thread exits and a new thread receives its id and locks
 * this same mutex between the check and the swap, a few microseconds; it would then get the
 * lock taken over as if it had died.)
 */
#include "layout.h"
#include "os/os.h"
#include "sync/futex.h"

_Static_assert(sizeof(shml_mutex) == sizeof(struct shml_mutex_layout), "public mutex size");
_Static_assert(_Alignof(shml_mutex) == _Alignof(struct shml_mutex_layout), "mutex alignment");

static struct shml_mutex_layout *layout(shml_mutex *m)
{
    return (struct shml_mutex_layout *)m;
}

/* The mutex if initialised, else NULL. */
static struct shml_mutex_layout *checked(shml_mutex *m)
{
    if (!m || ((uintptr_t)m & 7u) != 0)
        return NULL;
    struct shml_mutex_layout *l = layout(m);
    /* Acquire pairs with the release store of magic in shml_mutex_init(): the lock is built. */
    if (atomic_load_explicit(&l->magic, memory_order_acquire) != SHML_MUTEX_MAGIC)
        return NULL;
    return l;
}

int shml_mutex_init(shml_mutex *m)
{
    if (!m || ((uintptr_t)m & 7u) != 0)
        return -EINVAL;
    struct shml_mutex_layout *l = layout(m);
    atomic_store_explicit(&l->magic, 0, memory_order_relaxed);
    atomic_store_explicit(&l->holder_pid, 0, memory_order_relaxed);
    atomic_store_explicit(&l->holder_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&l->holder_id, 0, memory_order_relaxed);
    l->reserved = 0;
    int r = shml__os_mutex_init(l->os);
    if (r < 0)
        return r;
    /* Release pairs with the acquire load in checked(): users see a finished lock. */
    atomic_store_explicit(&l->magic, SHML_MUTEX_MAGIC, memory_order_release);
    return 0;
}

/* Wait slices between checks of the holder: short at first (most waits end quickly), then
   longer, so a long wait behind a live holder costs a few /proc reads a second. */
#define PROBE_FIRST_NS ((int64_t)10 * 1000000)
#define PROBE_MAX_NS   ((int64_t)200 * 1000000)

/* The calling thread's id and start time, as last looked up (a thread's start never changes;
   a fork()ed child's thread has another id, so the cache misses there). */
static _Thread_local int32_t self_tid;
static _Thread_local uint64_t self_start;

/*
 * Record the calling thread, which has just locked `l`, as its holder. The pid is recorded only
 * after a normal lock: after -EOWNERDEAD the dead holder's pid stays, the one to blame if the
 * mutex ends up not recoverable.
 */
static void record_holder(struct shml_mutex_layout *l, bool owner_died)
{
    /* The lock word names the caller now: the cheapest way to learn its own thread id. */
    int32_t tid = shml__os_mutex_holder(l->os);
    if (tid != self_tid) {
        uint64_t start = 0;
        if (shml__os_thread_start(tid, &start) < 0)
            start = 0; /* unknown: waiters then judge by the thread's existence alone */
        self_start = start;
        self_tid = tid;
    }
    /*
     * Remember which process holds it, so that tools can name it after it dies (the platform
     * lock keeps only a thread id). Relaxed: read only by inspection, a snapshot anyway.
     */
    if (!owner_died)
        atomic_store_explicit(&l->holder_pid, (uint32_t)shml__os_pid(), memory_order_relaxed);
    atomic_store_explicit(&l->holder_ns, shml__os_pid_ns(), memory_order_relaxed);
    /* Release pairs with the acquire load in holder_gone(): the namespace above goes with it. */
    atomic_store_explicit(&l->holder_id, SHML_MUTEX_HOLDER_ID(tid, self_start),
                          memory_order_release);
}

/*
 * Is the thread that holds `l` provably gone, the lock left held for ever? Then *tid is that
 * thread. False whenever it cannot be told (see the file comment).
 */
static bool holder_gone(const struct shml_mutex_layout *l, int32_t *tid)
{
    int32_t holder = shml__os_mutex_holder(l->os);
    if (holder <= 0)
        return false;
    /* Acquire pairs with the release store in record_holder(): this holder's namespace. */
    uint64_t id = atomic_load_explicit(&l->holder_id, memory_order_acquire);
    if (SHML_MUTEX_HOLDER_TID(id) != holder)
        return false; /* it has not recorded itself yet */
    uint32_t ns = atomic_load_explicit(&l->holder_ns, memory_order_relaxed);
    if (ns == 0 || ns != shml__os_pid_ns())
        return false; /* its thread id names another thread here, or none */
    uint64_t start;
    int r = shml__os_thread_start(holder, &start);
    if (r == -ESRCH || (r == 0 && SHML_MUTEX_HOLDER_START(id) != 0 &&
                        SHML_MUTEX_HOLDER_START(id) != (uint32_t)start)) {
        *tid = holder;
        return true;
    }
    return false;
}

/* Free `l` if its holder is gone (see holder_gone()); true if it did, so a retry takes it. */
static bool take_over_gone_holder(struct shml_mutex_layout *l)
{
    int32_t tid;
    return holder_gone(l, &tid) && shml__os_mutex_abandon(l->os, tid) == 1;
}

/* shml_mutex_lock() once a try found the lock busy: wait in slices, looking at the holder. */
static int lock_waiting(struct shml_mutex_layout *l, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns > 0 ? shml__os_mono_ns() + timeout_ns : 0;
    int64_t slice = PROBE_FIRST_NS;
    /* The platform lock sleeps where a cancellation cannot wake it: with a token bound, the
       slices are short enough to see a fire soon (cancel.c). */
    bool cancellable = shml_cancel_bound() != NULL;
    int r;
    for (;;) {
        bool cancelled = cancellable && shml__cancelled();
        int64_t wait = slice;
        if (timeout_ns == 0 || cancelled) {
            wait = 0;
        } else if (timeout_ns > 0) {
            int64_t left = deadline - shml__os_mono_ns();
            wait = left < 0 ? 0 : left < slice ? left : slice;
        }
        if (cancellable && wait > SHML__CANCEL_POLL_NS)
            wait = SHML__CANCEL_POLL_NS;
        r = shml__os_mutex_lock(l->os, wait);
        if (r != -ETIMEDOUT)
            return r;
        /* Busy for a whole slice (or, for a try, busy now): is anyone left to free it? */
        if (take_over_gone_holder(l))
            continue; /* the next try finds the lock as a death leaves it */
        if (cancelled && timeout_ns != 0)
            return -ECANCELED; /* a try made, as a timeout that ran out would */
        if (wait == 0 && timeout_ns >= 0)
            return r; /* a try, or the deadline passed */
        slice = slice * 2 > PROBE_MAX_NS ? PROBE_MAX_NS : slice * 2;
    }
}

int shml_mutex_lock(shml_mutex *m, int64_t timeout_ns)
{
    struct shml_mutex_layout *l = checked(m);
    if (!l)
        return -EINVAL;
    /* Uncontended: one try, with no clock read and no look at a cancellation token. */
    int r = shml__os_mutex_lock(l->os, 0);
    if (r == -ETIMEDOUT)
        r = lock_waiting(l, timeout_ns);
    if (r == 0 || r == -EOWNERDEAD)
        record_holder(l, r == -EOWNERDEAD);
    return r;
}

int shml_mutex_consistent(shml_mutex *m)
{
    struct shml_mutex_layout *l = checked(m);
    return l ? shml__os_mutex_consistent(l->os) : -EINVAL;
}

int shml_mutex_unlock(shml_mutex *m)
{
    struct shml_mutex_layout *l = checked(m);
    if (!l)
        return -EINVAL;
    /* Only the holder may clear its identity: anyone else's unlock is refused below anyway. */
    uint64_t id = atomic_load_explicit(&l->holder_id, memory_order_relaxed);
    bool mine = SHML_MUTEX_HOLDER_TID(id) == self_tid && self_tid != 0 &&
                shml__os_mutex_holder(l->os) == self_tid;
    /* Relaxed: the unlock's release store of the lock word orders it before the next lock. */
    if (mine)
        atomic_store_explicit(&l->holder_id, 0, memory_order_relaxed);
    int r = shml__os_mutex_unlock(l->os);
    if (r < 0 && mine) /* still held (not-recoverable checks): keep the identity true */
        atomic_store_explicit(&l->holder_id, id, memory_order_relaxed);
    return r;
}

int shml_mutex_inspect(const shml_mutex *m, struct shml_mutex_state *st)
{
    struct shml_mutex_layout *l = checked((shml_mutex *)m);
    if (!l || !st)
        return -EINVAL;
    shml__os_mutex_inspect(l->os, st);
    /* The platform knows the holder's thread; a dead thread's process is known only here. */
    if (st->state != SHML_MUTEX_FREE && st->pid == 0)
        st->pid = (int32_t)atomic_load_explicit(&l->holder_pid, memory_order_relaxed);
    if (st->state == SHML_MUTEX_OWNER_DEAD || st->state == SHML_MUTEX_NOT_RECOVERABLE)
        st->alive = 0; /* the holder these states name is dead by definition */
    int32_t tid;
    if (st->state == SHML_MUTEX_HELD && holder_gone(l, &tid))
        st->alive = 0; /* left held by a thread that is gone: the next locker takes it over */
    return 0;
}
