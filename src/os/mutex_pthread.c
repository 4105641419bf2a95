/*
 * mutex_pthread.c - the robust process-shared mutex over POSIX threads (glibc).
 *
 * A pthread_mutex_t with PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST: glibc links a held
 * robust mutex into the thread's robust list, which the kernel walks when the thread dies,
 * releasing each mutex and marking it FUTEX_OWNER_DIED. The next locker gets EOWNERDEAD at
 * once, with no polling. ERRORCHECK makes relocking by the holder EDEADLK and unlocking by
 * another thread EPERM instead of undefined behaviour.
 *
 * shml__os_mutex_inspect() reads two fields of glibc's pthread_mutex_t (the futex word and the
 * owner) to tell tools who holds a mutex; that layout is part of glibc's ABI and is described
 * in docs/FORMAT.md.
 */
#include "layout.h"
#include "os/os.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(pthread_mutex_t) <= SHML_MUTEX_OS_BYTES, "pthread_mutex_t fits");
_Static_assert(_Alignof(pthread_mutex_t) <= 8, "pthread_mutex_t alignment");

/* glibc's robust futex word bits (linux/futex.h) and owner values (pthreadP.h). */
#define ROBUST_WAITERS    0x80000000u
#define ROBUST_OWNER_DIED 0x40000000u
#define ROBUST_TID_MASK   0x3fffffffu
#define OWNER_NOTRECOVERABLE 0x7ffffffe
#define OWNER_INCONSISTENT   0x7fffffff

int shml__os_mutex_init(void *os)
{
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r != 0)
        return -r;
    r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (r == 0)
        r = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    if (r == 0) {
        memset(os, 0, SHML_MUTEX_OS_BYTES);
        r = pthread_mutex_init((pthread_mutex_t *)os, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    return -r;
}

/* glibc's owner field (__data.__owner, the int at offset 8), read as glibc itself does. */
static int owner_of(void *os)
{
    return __atomic_load_n((int *)((char *)os + 8), __ATOMIC_RELAXED);
}

#if defined(__SANITIZE_THREAD__)
#define SHML_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHML_TSAN 1
#endif
#endif

static int timed_lock(pthread_mutex_t *m, int64_t timeout_ns)
{
#ifdef SHML_TSAN
    /*
     * ThreadSanitizer (gcc 12, clang 14) does not intercept pthread_mutex_clocklock, so it
     * would not see the lock taken. Its builds use timedlock, whose realtime deadline moves if
     * the clock is set; only sanitizer builds accept that.
     */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t deadline = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + timeout_ns;
    struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
    return pthread_mutex_timedlock(m, &ts);
#else
    /* An absolute deadline on the monotonic clock: immune to the clock being set. */
    int64_t deadline = shml__os_mono_ns() + timeout_ns;
    struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
    return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#endif
}

int shml__os_mutex_lock(void *os, int64_t timeout_ns)
{
    pthread_mutex_t *m = os;
    int r;
    /*
     * glibc 2.36's timed and try paths do not check for a not-recoverable robust mutex: they
     * report EDEADLK and leave a state in which unlock crashes. Only pthread_mutex_lock checks,
     * so check here for all three.
     */
    if (owner_of(os) == OWNER_NOTRECOVERABLE)
        return -ENOTRECOVERABLE;
    if (timeout_ns == 0) {
        r = pthread_mutex_trylock(m);
        if (r == EBUSY)
            r = ETIMEDOUT;
    } else if (timeout_ns < 0) {
        r = pthread_mutex_lock(m);
    } else {
        r = timed_lock(m, timeout_ns);
    }
    return -r;
}

int shml__os_mutex_unlock(void *os)
{
    if (owner_of(os) == OWNER_NOTRECOVERABLE)
        return -EPERM; /* nobody can hold it; see shml__os_mutex_lock() */
    return -pthread_mutex_unlock((pthread_mutex_t *)os);
}

int shml__os_mutex_consistent(void *os)
{
    return -pthread_mutex_consistent((pthread_mutex_t *)os);
}

/* The process (thread group) a thread id belongs to, or 0 if the thread is gone. */
static int32_t tid_process(int32_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nTgid:");
    return p ? (int32_t)strtol(p + 6, NULL, 10) : 0;
}

void shml__os_mutex_inspect(const void *os, struct shml_mutex_state *st)
{
    /* __data.__lock at offset 0 and __data.__owner at offset 8 (glibc, every architecture). */
    const unsigned char *b = os;
    uint32_t word;
    int32_t owner;
    memcpy(&word, b, sizeof(word));
    memcpy(&owner, b + 8, sizeof(owner));
    memset(st, 0, sizeof(*st));
    st->alive = -1;
    st->waiters = (word & ROBUST_WAITERS) != 0;
    int32_t tid = (int32_t)(word & ROBUST_TID_MASK);
    if (owner == OWNER_NOTRECOVERABLE) {
        st->state = SHML_MUTEX_NOT_RECOVERABLE;
        return;
    }
    if (tid == 0 && (word & ROBUST_OWNER_DIED)) {
        /* Released by the kernel at the holder's death; __owner still names the holder. */
        st->state = SHML_MUTEX_OWNER_DEAD;
        st->owner = owner > 0 && owner < OWNER_NOTRECOVERABLE ? owner : 0;
        st->alive = 0;
        return;
    }
    if (tid == 0) {
        st->state = SHML_MUTEX_FREE;
        return;
    }
    st->state = owner == OWNER_INCONSISTENT ? SHML_MUTEX_REPAIRING : SHML_MUTEX_HELD;
    st->owner = tid;
    st->pid = tid_process(tid);
    st->alive = st->pid != 0 ? shml__os_proc_alive(st->pid, 0) : 0;
}

int32_t shml__os_mutex_holder(const void *os)
{
    /* The robust futex word, read as glibc and the kernel treat it: atomically. */
    uint32_t word = __atomic_load_n((const uint32_t *)os, __ATOMIC_RELAXED);
    if (word & ROBUST_OWNER_DIED)
        return 0;
    return (int32_t)(word & ROBUST_TID_MASK);
}

int shml__os_mutex_abandon(void *os, int32_t tid)
{
    uint32_t *word = os;
    uint32_t old = __atomic_load_n(word, __ATOMIC_RELAXED);
    if ((old & ROBUST_OWNER_DIED) || (int32_t)(old & ROBUST_TID_MASK) != tid || tid == 0)
        return 0;
    /*
     * Exactly what the kernel's robust-list walk does at a holder's death (handle_futex_death):
     * keep the waiters bit, set owner-died, clear the owner. Release pairs with the acquire CAS
     * of glibc's next lock, which then sees the died bit and returns EOWNERDEAD; the data the
     * dead holder wrote was already ordered by its own stores before it died. A failed CAS
     * means the word moved (a locker took over first, or the holder was not gone after all).
     */
    uint32_t dead = (old & ROBUST_WAITERS) | ROBUST_OWNER_DIED;
    if (!__atomic_compare_exchange_n(word, &old, dead, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        return 0;
    /* As the kernel does: a sleeper is woken to take the lock (the futex word is shared). */
    if (old & ROBUST_WAITERS)
        shml__os_futex_wake((shml_atomic_u32 *)word, 1);
    return 1;
}
