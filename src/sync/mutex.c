/*
 * mutex.c - shml_mutex: the platform's robust process-shared mutex behind an initialisation
 * mark, so that a mutex nobody initialised is an error, not undefined behaviour.
 */
#include "layout.h"
#include "os/os.h"

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
    l->reserved[0] = l->reserved[1] = 0;
    int r = shml__os_mutex_init(l->os);
    if (r < 0)
        return r;
    /* Release pairs with the acquire load in checked(): users see a finished lock. */
    atomic_store_explicit(&l->magic, SHML_MUTEX_MAGIC, memory_order_release);
    return 0;
}

int shml_mutex_lock(shml_mutex *m, int64_t timeout_ns)
{
    struct shml_mutex_layout *l = checked(m);
    if (!l)
        return -EINVAL;
    int r = shml__os_mutex_lock(l->os, timeout_ns);
    /*
     * Remember which process holds it, so that tools can name it after it dies (the platform
     * lock keeps only a thread id). After EOWNERDEAD the dead holder's pid stays: if the mutex
     * ends up not recoverable, that is the process to blame. Relaxed: read only by inspection,
     * a snapshot anyway.
     */
    if (r == 0)
        atomic_store_explicit(&l->holder_pid, (uint32_t)shml__os_pid(), memory_order_relaxed);
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
    return l ? shml__os_mutex_unlock(l->os) : -EINVAL;
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
    return 0;
}
