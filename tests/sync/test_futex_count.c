/*
 * "notify makes no system call when nobody sleeps": counted with the library's own counter of
 * wake-up system calls (shml__futex_wake_calls, src/sync/futex.h), which is why this binary
 * links the static library. The counter must stay still over 100000 notifies and posts with
 * nobody asleep, and move when somebody is asleep (proof that it counts at all).
 */
#include "sync_util.h"

#include "sync/futex.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t wake_calls(void)
{
    return atomic_load_explicit(&shml__futex_wake_calls, memory_order_relaxed);
}

struct sleeper {
    shml_event *e;
    shml_sem *s;
    _Atomic pid_t tid;
    int result;
};

static void *event_sleeper(void *arg)
{
    struct sleeper *sl = arg;
    atomic_store_explicit(&sl->tid, sync_gettid(), memory_order_relaxed);
    sl->result = shml_event_wait(sl->e, 0, WAIT_BOUND);
    return NULL;
}

static void *sem_sleeper(void *arg)
{
    struct sleeper *sl = arg;
    atomic_store_explicit(&sl->tid, sync_gettid(), memory_order_relaxed);
    sl->result = shml_sem_wait(sl->s, WAIT_BOUND);
    return NULL;
}

/* Start fn in a thread and return once that thread sleeps in futex(). */
static pthread_t start_sleeper(void *(*fn)(void *), struct sleeper *sl)
{
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fn, sl), 0);
    int64_t deadline = shmt_now_ms() + 10000;
    while (atomic_load_explicit(&sl->tid, memory_order_relaxed) == 0) {
        ASSERT_LT(shmt_now_ms(), deadline);
        shmt_sleep_ms(1);
    }
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&sl->tid, memory_order_relaxed), 10000);
    return t;
}

TEST(event_notify_without_waiters_no_syscall)
{
    const char *addr;
    shml_segment *seg;
    shml_event *e = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(e));

    uint64_t c0 = wake_calls();
    for (int i = 0; i < 100000; i++) {
        int r = shml_event_notify(e, (i & 1) ? SHML_WAKE_ALL : SHML_WAKE_ONE);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "notify %d with nobody asleep returned %d", i, r);
    }
    ASSERT_EQ(wake_calls(), c0);
    ASSERT_EQ(shml_event_read(e), 100000u);

    /* Somebody asleep: the wake-up is a system call, and the counter sees it. */
    struct sleeper sl;
    memset(&sl, 0, sizeof sl);
    sl.e = e;
    ASSERT_OK(shml_event_init(e));
    pthread_t t = start_sleeper(event_sleeper, &sl);
    uint64_t c1 = wake_calls();
    ASSERT_ERR(shml_event_notify(e, SHML_WAKE_ONE), 1);
    ASSERT_GT(wake_calls(), c1);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_ERR(sl.result, 0);

    /* The sleeper is gone: no system call again. */
    uint64_t c2 = wake_calls();
    for (int i = 0; i < 1000; i++)
        ASSERT_ERR(shml_event_notify(e, SHML_WAKE_ALL), 0);
    ASSERT_EQ(wake_calls(), c2);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(sem_post_without_waiters_no_syscall)
{
    const char *addr;
    shml_segment *seg;
    shml_sem *s = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(s, 0));

    uint64_t c0 = wake_calls();
    for (int i = 0; i < 100000; i++) {
        int r = shml_sem_post(s);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "post %d returned %d", i, r);
    }
    ASSERT_EQ(wake_calls(), c0);
    ASSERT_EQ(shml_sem_value(s), 100000u);
    for (int i = 0; i < 100000; i++)
        ASSERT_ERR(shml_sem_trywait(s), 0);
    ASSERT_EQ(wake_calls(), c0);
    ASSERT_EQ(shml_sem_value(s), 0u);

    struct sleeper sl;
    memset(&sl, 0, sizeof sl);
    sl.s = s;
    pthread_t t = start_sleeper(sem_sleeper, &sl);
    uint64_t c1 = wake_calls();
    ASSERT_ERR(shml_sem_post(s), 0);
    ASSERT_GT(wake_calls(), c1);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_ERR(sl.result, 0);
    ASSERT_EQ(shml_sem_value(s), 0u);

    uint64_t c2 = wake_calls();
    for (int i = 0; i < 1000; i++)
        ASSERT_ERR(shml_sem_post(s), 0);
    ASSERT_EQ(wake_calls(), c2);
    ASSERT_OK(shml_segment_close(seg));
}

/*
 * A waiter killed in its sleep leaves its count behind; the library heals it, so the dead
 * waiter costs a needless wake-up system call once (twice for an event, whose waker must see
 * two fruitless wake-ups before it may reset the count), not one per notify forever.
 */
static void killed_sleeper_heals(bool sem)
{
    const char *addr;
    shml_segment *seg;
    struct {
        shml_event e;
        shml_sem s;
    } *o = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(&o->e));
    ASSERT_OK(shml_sem_init(&o->s, 0));
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (sem)
            shml_sem_wait(&o->s, WAIT_BOUND);
        else
            shml_event_wait(&o->e, 0, WAIT_BOUND);
        _exit(0);
    }
    AWAIT_FUTEX(child, child, 10000);
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status;
    ASSERT_EQ(waitpid(child, &status, 0), child);

    uint64_t c0 = wake_calls();
    for (int i = 0; i < 1000; i++) {
        if (sem)
            ASSERT_ERR(shml_sem_post(&o->s), 0);
        else
            ASSERT_ERR(shml_event_notify(&o->e, SHML_WAKE_ONE), 0);
    }
    ASSERT_LE(wake_calls() - c0, sem ? 1u : 2u);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(event_killed_sleeper_heals)
{
    killed_sleeper_heals(false);
}

TEST(sem_killed_sleeper_heals)
{
    killed_sleeper_heals(true);
}
