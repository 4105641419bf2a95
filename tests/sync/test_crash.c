/*
 * A mutex holder killed with SIGKILL: the next locker gets -EOWNERDEAD holding the lock,
 * repairs, calls consistent() and goes on; one that unlocks without consistent() makes the
 * mutex -ENOTRECOVERABLE for everybody. inspect() shows the dead holder throughout.
 */
#include "sync_util.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/*
 * The torn-record invariant: a writer sets `a`, does some work, then sets `b` to the same
 * value; a reader that finds a != b knows a writer died in between. `in_cs` is the writer's own
 * statement "I hold the lock", set right after lock returns and cleared right before unlock:
 * if it reads 1 after the writer died, the writer died holding the lock.
 */
struct crash_area {
    shml_mutex m;
    _Atomic uint32_t in_cs;
    uint32_t pad;
    uint64_t a;
    uint64_t work[64];
    uint64_t b;
};

/*
 * Open argv[0]; lock, write the record, unlock, forever (until killed). Says "ready" after the
 * first round, so the test kills it while it runs its loop, not while it starts.
 */
PEER(crash_writer)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct crash_area *c = sync_seg_open(argv[0], &seg);
    for (uint64_t i = 1;; i++) {
        int r = shml_mutex_lock(&c->m, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "writer lock: %d (%s)", r, shml_strerror(r));
        /* Relaxed is enough: only a SIGKILL observer reads it, after the kernel released the
           lock and this process is gone; the lock orders the rest. */
        atomic_store_explicit(&c->in_cs, 1, memory_order_relaxed);
        if (c->a != c->b)
            shmt_fail(__FILE__, __LINE__, "writer found a torn record: %ju != %ju",
                      (uintmax_t)c->a, (uintmax_t)c->b);
        c->a = i;
        /* Much of the loop is spent here, between a and b, so many kills land mid-update. */
        for (int k = 0; k < 64; k++)
            c->work[k] = c->work[k] * 31 + i;
        c->b = i;
        atomic_store_explicit(&c->in_cs, 0, memory_order_relaxed);
        r = shml_mutex_unlock(&c->m);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "writer unlock: %d (%s)", r, shml_strerror(r));
        if (i == 1)
            ASSERT_EQ(parent_send("ready"), 0);
    }
}

/*
 * 150 times: a writer runs its loop, is killed with SIGKILL after 0-20 ms, and the test locks
 * with a bound. A writer that said it held the lock, or left a torn record, must have been
 * reported with -EOWNERDEAD; then the test repairs the record and calls consistent().
 */
TEST_TIMEOUT(mutex_holder_killed_repeatedly, 300)
{
    enum { ROUNDS = 150 };
    unsigned seed = sync_seed();
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    int dead_holding = 0, dead_outside = 0, torn_seen = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t w = spawn_peer("crash_writer", addr);
        ASSERT_EQ(peer_expect(w, "ready", 30000), 0);
        int delay_us = (int)(rand_r(&seed) % 20001);
        struct timespec ts = {0, (long)delay_us * 1000};
        nanosleep(&ts, NULL);
        ASSERT_EQ(kill_peer(w, SIGKILL), 128 + SIGKILL);

        uint32_t said_held = atomic_load_explicit(&c->in_cs, memory_order_relaxed);
        bool torn = c->a != c->b;
        struct shml_mutex_state st;
        ASSERT_OK(shml_mutex_inspect(&c->m, &st));
        if (said_held) {
            /* It died holding the lock: the kernel released it for the next locker. (Whether
               inspect() also names the dead process is mutex_inspect_dead_pid's business.) */
            if (st.state != SHML_MUTEX_OWNER_DEAD || st.owner != w || st.alive != 0)
                shmt_fail(__FILE__, __LINE__,
                          "round %d: writer %d died holding the lock; inspect: state %d owner "
                          "%d alive %d, want OWNER_DEAD (%d), owner %d, alive 0",
                          round, (int)w, st.state, (int)st.owner, st.alive,
                          SHML_MUTEX_OWNER_DEAD, (int)w);
        }
        int64_t t0 = now_ns();
        int r = shml_mutex_lock(&c->m, WAIT_BOUND);
        if (r == -ETIMEDOUT)
            shmt_fail(__FILE__, __LINE__, "round %d: lock after the writer died timed out after "
                      "%.1f s: deadlock", round, (double)(now_ns() - t0) / SEC);
        if ((said_held || torn) && r != -EOWNERDEAD)
            shmt_fail(__FILE__, __LINE__,
                      "round %d (delay %d us): writer died %s%s; lock returned %d (%s), want "
                      "-EOWNERDEAD",
                      round, delay_us, said_held ? "saying it held the lock" : "",
                      torn ? " leaving a torn record" : "", r, r ? shml_strerror(r) : "success");
        torn_seen += torn;
        if (r == -EOWNERDEAD) {
            dead_holding++;
            /* Holding the lock now, in the owner-dead state until consistent(). */
            c->b = c->a;
            atomic_store_explicit(&c->in_cs, 0, memory_order_relaxed);
            ASSERT_ERR(shml_mutex_consistent(&c->m), 0);
        } else {
            ASSERT_ERR(r, 0);
            dead_outside++;
        }
        ASSERT_OK(shml_mutex_inspect(&c->m, &st));
        ASSERT_EQ(st.state, SHML_MUTEX_HELD);
        ASSERT_EQ(st.pid, getpid());
        ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
        ASSERT_OK(shml_mutex_inspect(&c->m, &st));
        ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    }
    shmt_log("%d rounds: the writer died holding the lock %d times (leaving a torn record %d "
             "times), outside it %d times",
             ROUNDS, dead_holding, torn_seen, dead_outside);
    /* Much of a writer's loop is inside the lock: a run that never saw -EOWNERDEAD tested
       nothing. */
    ASSERT_GT(dead_holding, 0);
    ASSERT_OK(shml_segment_close(seg));
}

/* Open argv[0], lock with a 100 ms timeout, report the result as a line ("0", "-110"), end. */
PEER(crash_try_lock)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct crash_area *c = sync_seg_open(argv[0], &seg);
    int r = shml_mutex_lock(&c->m, 100 * MS);
    ASSERT_EQ(parent_send(shmt_fmt("%d", r)), 0);
    if (r == 0 || r == -EOWNERDEAD)
        shml_mutex_unlock(&c->m);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* Lock, tear the record (a set, b not), say "locked", and wait to be killed. */
PEER(crash_hold)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct crash_area *c = sync_seg_open(argv[0], &seg);
    ASSERT_ERR(shml_mutex_lock(&c->m, WAIT_BOUND), 0);
    c->a = 7; /* torn: b is not written */
    ASSERT_EQ(parent_send("locked"), 0);
    ASSERT_EQ(parent_expect("never", 60000), 0);
    return 1;
}

TEST(mutex_not_recoverable)
{
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    struct shml_mutex_state st;

    pid_t h = spawn_peer("crash_hold", addr);
    ASSERT_EQ(peer_expect(h, "locked", 20000), 0);
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_EQ(st.pid, h);
    ASSERT_EQ(st.alive, 1);
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);

    /* Dead holder, seen without locking (single-threaded: its thread id is its pid). */
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_OWNER_DEAD);
    ASSERT_EQ(st.owner, h);
    ASSERT_EQ(st.alive, 0);

    /* The next locker learns of it, holding the lock... */
    ASSERT_ERR(shml_mutex_lock(&c->m, WAIT_BOUND), -EOWNERDEAD);
    ASSERT_NE(c->a, c->b);
    /* ...and, while it holds it, nobody else gets it. */
    pid_t p = spawn_peer("crash_try_lock", addr);
    ASSERT_EQ(peer_expect(p, shmt_fmt("%d", -ETIMEDOUT), 20000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    /* Unlocking without consistent(): the mutex is lost for good. */
    ASSERT_ERR(shml_mutex_unlock(&c->m), 0);

    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_NOT_RECOVERABLE);
    /* Every later lock, whatever its timeout, fails at once; in any process. */
    ASSERT_ERR(shml_mutex_lock(&c->m, 0), -ENOTRECOVERABLE);
    ASSERT_ERR(shml_mutex_lock(&c->m, 50 * MS), -ENOTRECOVERABLE);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_mutex_lock(&c->m, SHML_FOREVER), -ENOTRECOVERABLE);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    ASSERT_ERR(shml_mutex_consistent(&c->m), -EINVAL);
    ASSERT_ERR(shml_mutex_unlock(&c->m), -EPERM);
    p = spawn_peer("crash_try_lock", addr);
    ASSERT_EQ(peer_expect(p, shmt_fmt("%d", -ENOTRECOVERABLE), 20000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_NOT_RECOVERABLE);

    /* Re-initialised when nobody uses it, it works again. */
    ASSERT_OK(shml_mutex_init(&c->m));
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    ASSERT_ERR(shml_mutex_lock(&c->m, 0), 0);
    ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    ASSERT_OK(shml_segment_close(seg));
}

/* consistent() is what saves it: after it, the next holder gets 0 and inspect() shows FREE. */
TEST(mutex_owner_dead_then_consistent)
{
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    pid_t h = spawn_peer("crash_hold", addr);
    ASSERT_EQ(peer_expect(h, "locked", 20000), 0);
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);
    /* A try is enough: the kernel released the lock when the holder died. */
    ASSERT_ERR(shml_mutex_lock(&c->m, 0), -EOWNERDEAD);
    ASSERT_ERR(shml_mutex_lock(&c->m, 0), -EDEADLK);
    c->b = c->a;
    ASSERT_ERR(shml_mutex_consistent(&c->m), 0);
    ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_FREE);
    pid_t p = spawn_peer("crash_try_lock", addr);
    ASSERT_EQ(peer_expect(p, "0", 20000), 0);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_OK(shml_segment_close(seg));
}

/*
 * inspect() names the dead holder's process, in both states a death leaves (what a tool shows:
 * "held by pid N, dead"). The holder is single-threaded, so its thread id is its pid too.
 */
TEST(mutex_inspect_dead_pid)
{
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = sync_seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    pid_t h = spawn_peer("crash_hold", addr);
    ASSERT_EQ(peer_expect(h, "locked", 20000), 0);
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);
    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_OWNER_DEAD);
    ASSERT_EQ(st.alive, 0);
    ASSERT_EQ(st.pid, h);

    ASSERT_ERR(shml_mutex_lock(&c->m, 0), -EOWNERDEAD);
    ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_NOT_RECOVERABLE);
    ASSERT_EQ(st.alive, 0);
    ASSERT_EQ(st.pid, h);
    ASSERT_OK(shml_segment_close(seg));
}
