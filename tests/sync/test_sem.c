/*
 * The semaphore across processes: limits (SHML_SEM_MAX, -EOVERFLOW, -EINVAL), try and timed
 * waits, a wait ended by a post from another process, SHML_WAIT_EINTR, a waiter killed in its
 * wait, and a bounded buffer between producer and consumer processes (two semaphores and a
 * mutex) that delivers every item exactly once.
 */
#include "sync_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

TEST(sem_limits)
{
    const char *addr;
    shml_segment *seg;
    shml_sem *s = sync_seg_create(4096, &addr, &seg);

    ASSERT_ERR(shml_sem_init(s, SHML_SEM_MAX + 1u), -EINVAL);
    ASSERT_ERR(shml_sem_init(s, UINT32_MAX), -EINVAL);
    ASSERT_ERR(shml_sem_init(NULL, 0), -EINVAL);

    ASSERT_OK(shml_sem_init(s, 0));
    ASSERT_EQ(shml_sem_value(s), 0u);
    ASSERT_ERR(shml_sem_trywait(s), -ETIMEDOUT);
    ASSERT_ERR(shml_sem_wait(s, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_sem_wait_flags(s, 0, SHML_WAIT_EINTR), -ETIMEDOUT);
    ASSERT_ERR(shml_sem_post(s), 0);
    ASSERT_ERR(shml_sem_post(s), 0);
    ASSERT_EQ(shml_sem_value(s), 2u);
    ASSERT_ERR(shml_sem_trywait(s), 0);
    ASSERT_ERR(shml_sem_wait(s, SHML_FOREVER), 0);
    ASSERT_EQ(shml_sem_value(s), 0u);
    ASSERT_ERR(shml_sem_trywait(s), -ETIMEDOUT);

    ASSERT_OK(shml_sem_init(s, SHML_SEM_MAX));
    ASSERT_EQ(shml_sem_value(s), SHML_SEM_MAX);
    ASSERT_ERR(shml_sem_post(s), -EOVERFLOW);
    ASSERT_EQ(shml_sem_value(s), SHML_SEM_MAX);
    ASSERT_ERR(shml_sem_trywait(s), 0);
    ASSERT_EQ(shml_sem_value(s), SHML_SEM_MAX - 1u);
    ASSERT_ERR(shml_sem_post(s), 0);
    ASSERT_ERR(shml_sem_post(s), -EOVERFLOW);
    ASSERT_EQ(shml_sem_value(s), SHML_SEM_MAX);
    ASSERT_OK(shml_segment_close(seg));
}

/* The timeout is honoured; median overshoot within 40 ms (see event_wait_timeout: it checks
   the deadline computation, not speed). */
TEST(sem_wait_timeout)
{
    const char *addr;
    shml_segment *seg;
    shml_sem *s = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(s, 0));
    int64_t over[5];
    for (int i = 0; i < 5; i++) {
        int64_t t0 = now_ns();
        ASSERT_ERR(shml_sem_wait(s, 50 * MS), -ETIMEDOUT);
        int64_t took = now_ns() - t0;
        ASSERT_GE(took, 50 * MS);
        over[i] = took - 50 * MS;
    }
    int64_t med = median_i64(over, 5);
    shmt_log("sem_wait(50 ms) overshoot: median %.2f ms", (double)med / MS);
    ASSERT_LE(med, 40 * MS);
    ASSERT_EQ(shml_sem_value(s), 0u);
    ASSERT_OK(shml_segment_close(seg));
}

struct sem_area {
    shml_sem s;
    _Atomic uint32_t got;
};

/* Wait (bounded) for one unit of argv[0]'s semaphore; count it in `got`. */
PEER(sem_waiter)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct sem_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_send("waiting"), 0);
    ASSERT_ERR(shml_sem_wait(&a->s, 30 * SEC), 0);
    atomic_fetch_add_explicit(&a->got, 1, memory_order_relaxed);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

static void await_got(struct sem_area *a, uint32_t n)
{
    int64_t deadline = shmt_now_ms() + 10000;
    while (atomic_load_explicit(&a->got, memory_order_relaxed) < n) {
        if (shmt_now_ms() > deadline)
            shmt_fail(__FILE__, __LINE__, "%u of %u waiters got a unit within 10 s",
                      atomic_load_explicit(&a->got, memory_order_relaxed), n);
        shmt_sleep_ms(1);
    }
}

/* Sleepers in other processes: each post wakes exactly one, and only one unit is taken. */
TEST(sem_post_wakes_sleepers)
{
    enum { W = 3 };
    const char *addr;
    shml_segment *seg;
    struct sem_area *a = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(&a->s, 0));
    pid_t p[W];
    for (int i = 0; i < W; i++)
        p[i] = spawn_peer("sem_waiter", addr);
    for (int i = 0; i < W; i++) {
        ASSERT_EQ(peer_expect(p[i], "waiting", 20000), 0);
        AWAIT_FUTEX(p[i], p[i], 10000);
    }
    for (uint32_t k = 1; k <= W; k++) {
        ASSERT_ERR(shml_sem_post(&a->s), 0);
        await_got(a, k);
        /* No second waiter took a unit that was not posted. */
        shmt_sleep_ms(20);
        ASSERT_EQ(atomic_load_explicit(&a->got, memory_order_relaxed), k);
    }
    for (int i = 0; i < W; i++)
        ASSERT_EQ(wait_peer(p[i], 20000), 0);
    ASSERT_EQ(shml_sem_value(&a->s), 0u);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(sem_wait_eintr)
{
    const char *addr;
    shml_segment *seg;
    shml_sem *s = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(s, 0));
    sigstorm_start(20);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_sem_wait_flags(s, 5 * SEC, SHML_WAIT_EINTR), -EINTR);
    ASSERT_LT(now_ns() - t0, 5 * SEC);
    ASSERT_ERR(shml_sem_wait_flags(s, SHML_FOREVER, SHML_WAIT_EINTR), -EINTR);
    unsigned n0 = sigstorm_count();
    t0 = now_ns();
    ASSERT_ERR(shml_sem_wait_flags(s, 300 * MS, 0), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 300 * MS);
    t0 = now_ns();
    ASSERT_ERR(shml_sem_wait(s, 300 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 300 * MS);
    ASSERT_GE(sigstorm_count() - n0, 2u);
    sigstorm_stop();
    ASSERT_EQ(shml_sem_value(s), 0u);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(sem_waiter_killed)
{
    const char *addr;
    shml_segment *seg;
    struct sem_area *a = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(&a->s, 0));
    pid_t w = spawn_peer("sem_waiter", addr);
    ASSERT_EQ(peer_expect(w, "waiting", 20000), 0);
    AWAIT_FUTEX(w, w, 10000);
    ASSERT_EQ(kill_peer(w, SIGKILL), 128 + SIGKILL);
    /* The dead waiter takes nothing: the unit posted now stays. */
    ASSERT_ERR(shml_sem_post(&a->s), 0);
    ASSERT_EQ(shml_sem_value(&a->s), 1u);
    ASSERT_ERR(shml_sem_trywait(&a->s), 0);
    ASSERT_EQ(shml_sem_value(&a->s), 0u);
    /* A new waiter sleeps and is woken by a post. */
    w = spawn_peer("sem_waiter", addr);
    ASSERT_EQ(peer_expect(w, "waiting", 20000), 0);
    AWAIT_FUTEX(w, w, 10000);
    ASSERT_ERR(shml_sem_post(&a->s), 0);
    ASSERT_EQ(wait_peer(w, 20000), 0);
    ASSERT_EQ(atomic_load_explicit(&a->got, memory_order_relaxed), 1u);
    ASSERT_EQ(shml_sem_value(&a->s), 0u);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- producer/consumer through a bounded buffer ---- */

#define PC_SLOTS 64
#define PC_PRODUCERS 2
#define PC_CONSUMERS 2
#define PC_MAX_ITEMS 200000

struct pc_area {
    shml_sem empty; /* free slots */
    shml_sem full;  /* items in the ring */
    shml_mutex m;   /* head, tail and the ring: several producers and consumers */
    uint64_t head, tail;
    uint64_t ring[PC_SLOTS];
    uint8_t seen[PC_MAX_ITEMS]; /* by item number: how many times it was consumed */
};

static void must(int r, const char *what, long i)
{
    if (r != 0)
        shmt_fail(__FILE__, __LINE__, "%s, item %ld: %d (%s)", what, i, r, shml_strerror(r));
}

/* argv: address, producer index, items per producer. Puts items idx*per .. idx*per+per-1. */
PEER(pc_producer)
{
    ASSERT_EQ(argc, 3);
    long idx = strtol(argv[1], NULL, 10), per = strtol(argv[2], NULL, 10);
    shml_segment *seg;
    struct pc_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_expect("go", 60000), 0);
    for (long i = 0; i < per; i++) {
        must(shml_sem_wait(&a->empty, WAIT_BOUND), "producer: wait for a free slot", i);
        must(shml_mutex_lock(&a->m, WAIT_BOUND), "producer: lock", i);
        a->ring[a->head++ % PC_SLOTS] = (uint64_t)(idx * per + i);
        must(shml_mutex_unlock(&a->m), "producer: unlock", i);
        must(shml_sem_post(&a->full), "producer: post an item", i);
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* argv: address, items to take. */
PEER(pc_consumer)
{
    ASSERT_EQ(argc, 2);
    long n = strtol(argv[1], NULL, 10);
    shml_segment *seg;
    struct pc_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_expect("go", 60000), 0);
    for (long i = 0; i < n; i++) {
        must(shml_sem_wait(&a->full, WAIT_BOUND), "consumer: wait for an item", i);
        must(shml_mutex_lock(&a->m, WAIT_BOUND), "consumer: lock", i);
        uint64_t item = a->ring[a->tail++ % PC_SLOTS];
        ASSERT_LT(item, (uint64_t)PC_MAX_ITEMS);
        a->seen[item]++;
        must(shml_mutex_unlock(&a->m), "consumer: unlock", i);
        must(shml_sem_post(&a->empty), "consumer: free a slot", i);
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

TEST_TIMEOUT(sem_producer_consumer_procs, 240)
{
    long per = sync_iters(PC_MAX_ITEMS / PC_PRODUCERS, 500);
    long total = per * PC_PRODUCERS;
    const char *addr;
    shml_segment *seg;
    struct pc_area *a = sync_seg_create(sizeof(struct pc_area), &addr, &seg);
    ASSERT_OK(shml_sem_init(&a->empty, PC_SLOTS));
    ASSERT_OK(shml_sem_init(&a->full, 0));
    ASSERT_OK(shml_mutex_init(&a->m));
    pid_t p[PC_PRODUCERS + PC_CONSUMERS];
    for (int i = 0; i < PC_PRODUCERS; i++)
        p[i] = spawn_peer("pc_producer", addr, shmt_fmt("%d", i), shmt_fmt("%ld", per));
    for (int i = 0; i < PC_CONSUMERS; i++)
        p[PC_PRODUCERS + i] =
            spawn_peer("pc_consumer", addr, shmt_fmt("%ld", total / PC_CONSUMERS));
    int64_t t0 = now_ns();
    for (int i = 0; i < PC_PRODUCERS + PC_CONSUMERS; i++)
        ASSERT_EQ(peer_send(p[i], "go"), 0);
    for (int i = 0; i < PC_PRODUCERS + PC_CONSUMERS; i++)
        ASSERT_EQ(wait_peer(p[i], 200000), 0);
    shmt_log("%ld items through %d slots: %.2f s", total, PC_SLOTS,
             (double)(now_ns() - t0) / SEC);
    ASSERT_EQ(a->head, (uint64_t)total);
    ASSERT_EQ(a->tail, (uint64_t)total);
    for (long i = 0; i < total; i++)
        if (a->seen[i] != 1)
            shmt_fail(__FILE__, __LINE__, "item %ld consumed %u times", i, a->seen[i]);
    ASSERT_EQ(shml_sem_value(&a->full), 0u);
    ASSERT_EQ(shml_sem_value(&a->empty), (uint32_t)PC_SLOTS);
    ASSERT_ERR(shml_sem_trywait(&a->full), -ETIMEDOUT);
    ASSERT_OK(shml_segment_close(seg));
}
