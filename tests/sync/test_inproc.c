/*
 * In-process variants: the mutex counter, the event ping-pong and the bounded buffer with
 * threads of one process instead of processes, so that ThreadSanitizer (which sees one
 * process only) can check them: every plain field here is handed between threads only by the
 * library's primitives, so a missing acquire or release in them shows as a data race. The
 * objects still live in a managed segment, as they would between processes. ctest label
 * `inproc`; the TSan phase of scripts/test runs these.
 */
#include "sync_util.h"

#if defined(__SANITIZE_THREAD__)
#define SHMT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMT_TSAN 1
#endif
#endif

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int r = pthread_create(t, NULL, fn, arg);
    if (r != 0)
        shmt_fail(__FILE__, __LINE__, "pthread_create: %s", strerror(r));
}

static void join(pthread_t t)
{
    void *ret;
    ASSERT_EQ(pthread_join(t, &ret), 0);
    ASSERT_NULL(ret);
}

/* Threads fail through the harness too: shmt_fail() ends the whole test process. */
#define CHECK_R(r, what, i)                                                                     \
    do {                                                                                       \
        int r_ = (r);                                                                          \
        if (r_ != 0)                                                                           \
            shmt_fail(__FILE__, __LINE__, "%s, iteration %ld: %d (%s)", (what), (long)(i), r_, \
                      shml_strerror(r_));                                                      \
    } while (0)

/* ---- mutex ---- */

struct mx_area {
    shml_mutex m;
    uint64_t counter;
    long iters;
    int64_t duration;
    pthread_barrier_t go;
};

struct mx_arg {
    struct mx_area *a;
    long done;
};

/* As mx_count in test_mutex.c: at least a->iters times and for a->duration. */
static void *mx_count(void *arg)
{
    struct mx_arg *p = arg;
    struct mx_area *a = p->a;
    pthread_barrier_wait(&a->go);
    int64_t end = now_ns() + a->duration;
    long i = 0;
    /* The clock is read once in 1024 rounds, at the round that yields. */
    for (; i < a->iters || i % 1024 != 0 || now_ns() < end; i++) {
        CHECK_R(shml_mutex_lock(&a->m, WAIT_BOUND), "lock", i);
        a->counter++;
        if (i % 1024 == 0)
            sched_yield();
        CHECK_R(shml_mutex_unlock(&a->m), "unlock", i);
    }
    p->done = i;
    return NULL;
}

TEST_TIMEOUT(inproc_mutex_counter, 240)
{
    enum { N = 4 };
    const char *addr;
    shml_segment *seg;
    struct mx_area *a = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&a->m));
    a->iters = sync_iters(200000, 1000);
    a->duration = sync_iters(2000, 200) * MS;
    ASSERT_EQ(pthread_barrier_init(&a->go, NULL, N), 0);
    pthread_t t[N];
    struct mx_arg args[N];
    int64_t t0 = now_ns();
    for (int i = 0; i < N; i++) {
        args[i].a = a;
        args[i].done = 0;
        start(&t[i], mx_count, &args[i]);
    }
    uint64_t sum = 0;
    for (int i = 0; i < N; i++) {
        join(t[i]);
        ASSERT_GE(args[i].done, a->iters);
        sum += (uint64_t)args[i].done;
    }
    shmt_log("%d threads, %ju lock/increment/unlock: %.2f s", N, (uintmax_t)sum,
             (double)(now_ns() - t0) / SEC);
    ASSERT_EQ(a->counter, sum);
    pthread_barrier_destroy(&a->go);
    ASSERT_OK(shml_segment_close(seg));
}

struct mx_pair {
    shml_mutex *m;
    shml_event held, release;
    pid_t tid;
};

static void *mx_hold_thread(void *arg)
{
    struct mx_pair *p = arg;
    CHECK_R(shml_mutex_lock(p->m, WAIT_BOUND), "holder lock", 0);
    p->tid = sync_gettid();
    shml_event_notify(&p->held, SHML_WAKE_ALL);
    CHECK_R(shml_event_wait(&p->release, 0, WAIT_BOUND), "holder wait for release", 0);
    CHECK_R(shml_mutex_unlock(p->m), "holder unlock", 0);
    return NULL;
}

/* Held by another thread of this process: not ours to unlock, try and timed lock fail. */
TEST(inproc_mutex_other_thread)
{
    const char *addr;
    shml_segment *seg;
    shml_mutex *m = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(m));
    struct mx_pair p;
    memset(&p, 0, sizeof p);
    p.m = m;
    ASSERT_OK(shml_event_init(&p.held));
    ASSERT_OK(shml_event_init(&p.release));
    pthread_t t;
    start(&t, mx_hold_thread, &p);
    ASSERT_ERR(shml_event_wait(&p.held, 0, WAIT_BOUND), 0);

    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_EQ(st.owner, p.tid);
    ASSERT_EQ(st.pid, getpid());
    ASSERT_EQ(st.alive, 1);
#ifndef SHMT_TSAN
    /* TSan reports any unlock by a thread that does not hold the mutex, even this deliberate
       one that the library turns into -EPERM; mutex_held_by_another_process checks it too. */
    ASSERT_ERR(shml_mutex_unlock(m), -EPERM);
#endif
    ASSERT_ERR(shml_mutex_lock(m, 0), -ETIMEDOUT);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_mutex_lock(m, 30 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 30 * MS);

    ASSERT_OK(shml_event_notify(&p.release, SHML_WAKE_ALL));
    join(t);
    ASSERT_ERR(shml_mutex_lock(m, 0), 0);
    ASSERT_ERR(shml_mutex_unlock(m), 0);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- event ---- */

struct ev_area {
    shml_event ab, ba;
    uint64_t ping, pong; /* plain: handed over by notify/wait */
    long rounds;
};

static void *ev_pong(void *arg)
{
    struct ev_area *a = arg;
    uint32_t seen = 0;
    for (long i = 0; i < a->rounds; i++) {
        CHECK_R(shml_event_wait(&a->ab, seen, WAIT_BOUND), "pong side: wait (lost wake-up?)", i);
        uint32_t g = shml_event_read(&a->ab);
        if (g != seen + 1)
            shmt_fail(__FILE__, __LINE__, "round %ld: generation %u after %u", i, g, seen);
        seen = g;
        if (a->ping != (uint64_t)i)
            shmt_fail(__FILE__, __LINE__, "round %ld: ping %ju", i, (uintmax_t)a->ping);
        a->pong = (uint64_t)i;
        if (shml_event_notify(&a->ba, SHML_WAKE_ONE) < 0)
            shmt_fail(__FILE__, __LINE__, "notify failed");
    }
    return NULL;
}

static void inproc_pingpong(long rounds, uint32_t spin)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(&a->ab));
    ASSERT_OK(shml_event_init(&a->ba));
    ASSERT_OK(shml_event_set_spin(&a->ab, spin));
    ASSERT_OK(shml_event_set_spin(&a->ba, spin));
    a->rounds = rounds;
    pthread_t t;
    start(&t, ev_pong, a);
    int64_t t0 = now_ns();
    uint32_t seen = 0;
    for (long i = 0; i < rounds; i++) {
        a->ping = (uint64_t)i;
        ASSERT_OK(shml_event_notify(&a->ab, SHML_WAKE_ONE));
        CHECK_R(shml_event_wait(&a->ba, seen, WAIT_BOUND), "ping side: wait (lost wake-up?)", i);
        uint32_t g = shml_event_read(&a->ba);
        if (g != seen + 1)
            shmt_fail(__FILE__, __LINE__, "round %ld: generation %u after %u", i, g, seen);
        seen = g;
        if (a->pong != (uint64_t)i)
            shmt_fail(__FILE__, __LINE__, "round %ld: pong %ju", i, (uintmax_t)a->pong);
    }
    join(t);
    shmt_log("%ld round trips between threads, spin %u: %.2f s", rounds, spin,
             (double)(now_ns() - t0) / SEC);
    ASSERT_OK(shml_segment_close(seg));
}

TEST_TIMEOUT(inproc_event_pingpong, 300)
{
    inproc_pingpong(sync_iters(200000, 2000), 0);
}

TEST_TIMEOUT(inproc_event_pingpong_spin, 300)
{
    inproc_pingpong(sync_iters(50000, 1000), 2000);
}

struct ev_many {
    shml_event e;
    _Atomic uint32_t woken;
    _Atomic pid_t tid[3];
};

static void *ev_sleeper(void *arg)
{
    struct ev_many *a = arg;
    for (int i = 0; i < 3; i++) {
        pid_t zero = 0;
        if (atomic_compare_exchange_strong_explicit(&a->tid[i], &zero, sync_gettid(),
                                                    memory_order_relaxed,
                                                    memory_order_relaxed))
            break;
    }
    CHECK_R(shml_event_wait(&a->e, 0, WAIT_BOUND), "sleeper wait", 0);
    atomic_fetch_add_explicit(&a->woken, 1, memory_order_relaxed);
    return NULL;
}

/* WAKE_ALL wakes every sleeping thread. */
TEST(inproc_event_wake_all)
{
    const char *addr;
    shml_segment *seg;
    struct ev_many *a = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(&a->e));
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        start(&t[i], ev_sleeper, a);
    for (int i = 0; i < 3; i++) {
        int64_t deadline = shmt_now_ms() + 10000;
        while (atomic_load_explicit(&a->tid[i], memory_order_relaxed) == 0) {
            ASSERT_LT(shmt_now_ms(), deadline);
            shmt_sleep_ms(1);
        }
        AWAIT_FUTEX(getpid(), atomic_load_explicit(&a->tid[i], memory_order_relaxed), 10000);
    }
    ASSERT_ERR(shml_event_notify(&a->e, SHML_WAKE_ALL), 3);
    for (int i = 0; i < 3; i++)
        join(t[i]);
    ASSERT_EQ(atomic_load_explicit(&a->woken, memory_order_relaxed), 3u);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- semaphore: bounded buffer ---- */

#define SLOTS 16
struct pc_area {
    shml_sem empty, full;
    shml_mutex m;
    uint64_t head, tail, ring[SLOTS]; /* plain: under m, handed over by the semaphores */
    long per;
    uint8_t *seen;
};

struct pc_arg {
    struct pc_area *a;
    long idx;
};

static void *producer(void *arg)
{
    struct pc_arg *p = arg;
    struct pc_area *a = p->a;
    for (long i = 0; i < a->per; i++) {
        CHECK_R(shml_sem_wait(&a->empty, WAIT_BOUND), "producer: wait for a slot", i);
        CHECK_R(shml_mutex_lock(&a->m, WAIT_BOUND), "producer: lock", i);
        a->ring[a->head++ % SLOTS] = (uint64_t)(p->idx * a->per + i);
        CHECK_R(shml_mutex_unlock(&a->m), "producer: unlock", i);
        CHECK_R(shml_sem_post(&a->full), "producer: post", i);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pc_arg *p = arg;
    struct pc_area *a = p->a;
    for (long i = 0; i < a->per; i++) {
        CHECK_R(shml_sem_wait(&a->full, WAIT_BOUND), "consumer: wait for an item", i);
        CHECK_R(shml_mutex_lock(&a->m, WAIT_BOUND), "consumer: lock", i);
        uint64_t item = a->ring[a->tail++ % SLOTS];
        a->seen[item]++;
        CHECK_R(shml_mutex_unlock(&a->m), "consumer: unlock", i);
        CHECK_R(shml_sem_post(&a->empty), "consumer: free a slot", i);
    }
    return NULL;
}

TEST_TIMEOUT(inproc_sem_producer_consumer, 240)
{
    enum { P = 2 }; /* producers, and as many consumers */
    const char *addr;
    shml_segment *seg;
    struct pc_area *a = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(&a->empty, SLOTS));
    ASSERT_OK(shml_sem_init(&a->full, 0));
    ASSERT_OK(shml_mutex_init(&a->m));
    a->per = sync_iters(100000, 500);
    long total = a->per * P;
    a->seen = calloc((size_t)total, 1);
    ASSERT_NOT_NULL(a->seen);
    pthread_t t[2 * P];
    struct pc_arg args[P];
    for (int i = 0; i < P; i++) {
        args[i].a = a;
        args[i].idx = i;
        start(&t[i], producer, &args[i]);
        start(&t[P + i], consumer, &args[i]);
    }
    for (int i = 0; i < 2 * P; i++)
        join(t[i]);
    ASSERT_EQ(a->head, (uint64_t)total);
    ASSERT_EQ(a->tail, (uint64_t)total);
    for (long i = 0; i < total; i++)
        if (a->seen[i] != 1)
            shmt_fail(__FILE__, __LINE__, "item %ld consumed %u times", i, a->seen[i]);
    ASSERT_EQ(shml_sem_value(&a->full), 0u);
    ASSERT_EQ(shml_sem_value(&a->empty), (uint32_t)SLOTS);
    free(a->seen);
    ASSERT_OK(shml_segment_close(seg));
}
