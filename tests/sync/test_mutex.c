/*
 * The mutex across processes: every error the header promises (-EINVAL uninitialised,
 * -EDEADLK relock, -EPERM not the holder, -ETIMEDOUT try and timed lock), what inspect()
 * reports about a holder and its waiters, and 4 processes incrementing a plain counter under
 * the lock for 2 seconds: the count must come out exact.
 */
#include "sync_util.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct mx_area {
    shml_mutex m;
    uint64_t counter; /* plain: only the mutex protects it */
};

static struct mx_area *mx_create(const char **addr, shml_segment **seg)
{
    struct mx_area *a = sync_seg_create(4096, addr, seg);
    ASSERT_OK(shml_mutex_init(&a->m));
    return a;
}

/* ---- one process ---- */

TEST(mutex_uninitialised_is_einval)
{
    const char *addr;
    shml_segment *seg;
    struct mx_area *a = sync_seg_create(4096, &addr, &seg);
    /* Zeroed bytes, never initialised. */
    struct shml_mutex_state st;
    ASSERT_ERR(shml_mutex_lock(&a->m, 0), -EINVAL);
    ASSERT_ERR(shml_mutex_lock(&a->m, 10 * MS), -EINVAL);
    ASSERT_ERR(shml_mutex_lock(&a->m, SHML_FOREVER), -EINVAL);
    ASSERT_ERR(shml_mutex_unlock(&a->m), -EINVAL);
    ASSERT_ERR(shml_mutex_consistent(&a->m), -EINVAL);
    ASSERT_ERR(shml_mutex_inspect(&a->m, &st), -EINVAL);
    /* Bad pointers to init. */
    ASSERT_ERR(shml_mutex_init(NULL), -EINVAL);
    unsigned char *bytes = (unsigned char *)a + 1024;
    ASSERT_ERR(shml_mutex_init((shml_mutex *)(void *)(bytes + 4)), -EINVAL);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(mutex_errors_of_the_holder)
{
    const char *addr;
    shml_segment *seg;
    struct mx_area *a = mx_create(&addr, &seg);
    struct shml_mutex_state st;

    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    ASSERT_FALSE(st.waiters);
    /* Unlocking a free mutex. */
    ASSERT_ERR(shml_mutex_unlock(&a->m), -EPERM);
    /* consistent() on a mutex that is not in the owner-dead state. */
    ASSERT_ERR(shml_mutex_consistent(&a->m), -EINVAL);

    ASSERT_ERR(shml_mutex_lock(&a->m, 0), 0);
    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_EQ(st.owner, sync_gettid());
    ASSERT_EQ(st.pid, getpid());
    ASSERT_EQ(st.alive, 1);
    ASSERT_FALSE(st.waiters);
    /* A second lock by the holder never waits, whatever the timeout. */
    ASSERT_ERR(shml_mutex_lock(&a->m, 0), -EDEADLK);
    ASSERT_ERR(shml_mutex_lock(&a->m, 50 * MS), -EDEADLK);
    ASSERT_ERR(shml_mutex_lock(&a->m, SHML_FOREVER), -EDEADLK);
    ASSERT_ERR(shml_mutex_consistent(&a->m), -EINVAL);
    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);

    ASSERT_ERR(shml_mutex_unlock(&a->m), 0);
    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    ASSERT_ERR(shml_mutex_unlock(&a->m), -EPERM);
    /* Usable again. */
    ASSERT_ERR(shml_mutex_lock(&a->m, SHML_FOREVER), 0);
    ASSERT_ERR(shml_mutex_unlock(&a->m), 0);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- another process holds it ---- */

/*
 * Open argv[0], lock its mutex, say "locked"; on "unlock" unlock and say "unlocked"; then wait
 * for "bye". The test may kill it at any point instead.
 */
PEER(mx_hold)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct mx_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_ERR(shml_mutex_lock(&a->m, WAIT_BOUND), 0);
    ASSERT_EQ(parent_send("locked"), 0);
    ASSERT_EQ(parent_expect("unlock", 60000), 0);
    ASSERT_ERR(shml_mutex_unlock(&a->m), 0);
    ASSERT_EQ(parent_send("unlocked"), 0);
    ASSERT_EQ(parent_expect("bye", 60000), 0);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* Open argv[0], say "waiting", lock (bounded): 0 expected; report "got", unlock, end. */
PEER(mx_lock_once)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct mx_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_send("waiting"), 0);
    ASSERT_ERR(shml_mutex_lock(&a->m, WAIT_BOUND), 0);
    a->counter++;
    ASSERT_EQ(parent_send("got"), 0);
    ASSERT_ERR(shml_mutex_unlock(&a->m), 0);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

TEST(mutex_held_by_another_process)
{
    const char *addr;
    shml_segment *seg;
    struct mx_area *a = mx_create(&addr, &seg);
    struct shml_mutex_state st;

    pid_t holder = spawn_peer("mx_hold", addr);
    ASSERT_EQ(peer_expect(holder, "locked", 20000), 0);

    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_EQ(st.owner, holder); /* single-threaded: thread id == pid */
    ASSERT_EQ(st.pid, holder);
    ASSERT_EQ(st.alive, 1);

    /* A try fails at once with -ETIMEDOUT, never -EBUSY. */
    ASSERT_ERR(shml_mutex_lock(&a->m, 0), -ETIMEDOUT);
    /* A timed lock waits its whole timeout (and returns: it is bounded). */
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_mutex_lock(&a->m, 100 * MS), -ETIMEDOUT);
    int64_t took = now_ns() - t0;
    ASSERT_GE(took, 100 * MS);
    ASSERT_LT(took, WAIT_BOUND);
    /* Not ours to unlock; it stays held by the peer. */
    ASSERT_ERR(shml_mutex_unlock(&a->m), -EPERM);
    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_EQ(st.pid, holder);

    /* A second process blocks on it: inspect() sees a waiter. */
    pid_t waiter = spawn_peer("mx_lock_once", addr);
    ASSERT_EQ(peer_expect(waiter, "waiting", 20000), 0);
    AWAIT_FUTEX(waiter, waiter, 10000);
    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_TRUE(st.waiters);

    /* The holder unlocks: the waiter gets it. */
    ASSERT_EQ(peer_send(holder, "unlock"), 0);
    ASSERT_EQ(peer_expect(holder, "unlocked", 20000), 0);
    ASSERT_EQ(peer_expect(waiter, "got", 20000), 0);
    ASSERT_EQ(wait_peer(waiter, 20000), 0);
    ASSERT_EQ(a->counter, 1u);
    ASSERT_EQ(peer_send(holder, "bye"), 0);
    ASSERT_EQ(wait_peer(holder, 20000), 0);

    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    ASSERT_FALSE(st.waiters);
    ASSERT_ERR(shml_mutex_lock(&a->m, 0), 0);
    ASSERT_ERR(shml_mutex_unlock(&a->m), 0);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- contention ---- */

/*
 * Open argv[0]; on "go": lock, counter++, unlock, at least argv[1] times and for at least
 * argv[2] ms; then report how many times. Every 1024th time it yields holding the lock, so the
 * others sleep in the kernel and the wake-up path is exercised, not only the fast path.
 */
PEER(mx_count)
{
    ASSERT_EQ(argc, 3);
    long min_iters = strtol(argv[1], NULL, 10);
    int64_t duration = strtol(argv[2], NULL, 10) * MS;
    shml_segment *seg;
    struct mx_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_send("ready"), 0);
    ASSERT_EQ(parent_expect("go", 60000), 0);
    int64_t end = now_ns() + duration;
    long i = 0;
    /* The clock is read once in 1024 rounds, at the round that yields. */
    for (; i < min_iters || i % 1024 != 0 || now_ns() < end; i++) {
        int r = shml_mutex_lock(&a->m, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "lock %ld: %d (%s)", i, r, shml_strerror(r));
        a->counter++;
        if (i % 1024 == 0)
            sched_yield();
        r = shml_mutex_unlock(&a->m);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "unlock %ld: %d (%s)", i, r, shml_strerror(r));
    }
    ASSERT_EQ(parent_send(shmt_fmt("%ld", i)), 0);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/*
 * 4 processes increment a plain counter under the lock, each at least 200000 times and for 2
 * seconds (so they contend for that long whatever the machine's speed): the final count is
 * exactly the sum of what each did.
 */
TEST_TIMEOUT(mutex_counter_procs, 240)
{
    enum { N = 4 };
    long m = sync_iters(200000, 1000), ms = sync_iters(2000, 200);
    const char *addr;
    shml_segment *seg;
    struct mx_area *a = mx_create(&addr, &seg);
    pid_t p[N];
    for (int i = 0; i < N; i++)
        p[i] = spawn_peer("mx_count", addr, shmt_fmt("%ld", m), shmt_fmt("%ld", ms));
    for (int i = 0; i < N; i++)
        ASSERT_EQ(peer_expect(p[i], "ready", 60000), 0);
    int64_t t0 = now_ns();
    for (int i = 0; i < N; i++)
        ASSERT_EQ(peer_send(p[i], "go"), 0);
    uint64_t sum = 0;
    for (int i = 0; i < N; i++) {
        char line[64];
        ASSERT_EQ(peer_recv(p[i], line, sizeof line, 200000), 0);
        long done = strtol(line, NULL, 10);
        ASSERT_GE(done, m);
        sum += (uint64_t)done;
        ASSERT_EQ(wait_peer(p[i], 20000), 0);
    }
    shmt_log("%d processes, %ju lock/increment/unlock in %.2f s", N, (uintmax_t)sum,
             (double)(now_ns() - t0) / SEC);
    ASSERT_EQ(a->counter, sum);
    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(&a->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    ASSERT_OK(shml_segment_close(seg));
}
