/*
 * The sync objects on Windows (src/os/win32_mutex.c, win32_futex.c, win32_region.c), between
 * processes started by the harness, in "win:" segments:
 *
 *   - the robust mutex: an exact counter under it across three processes; holders killed with
 *     TerminateProcess (kill_peer) at random points, each death inside the lock reported as
 *     -EOWNERDEAD and repaired with consistent(); a sleeper woken by the holder's death;
 *     -ENOTRECOVERABLE after an unlock without consistent(); relock, foreign unlock and a
 *     holder thread that exits, in one process;
 *   - the event: 10^5 rounds of ping-pong between two processes with no lost wake-up;
 *   - the semaphore across processes;
 *   - no wake-up call when nobody sleeps (the library's counter, src/sync/futex.h), and the
 *     count of a killed sleeper healed after one or two needless calls;
 *   - a cancellation token that ends a wait on a shared word at once (wait2's event).
 *
 * The binary links the static library and sees src/ (futex.h's counter, layout.h's sleeper
 * count). Every wait is bounded (WAIT_BOUND); none asserts on speed: the costs are logged.
 */
#include "harness.h"

#include "layout.h"
#include "sync/futex.h"

#include <windows.h>

#include <stdatomic.h>
#include <stdlib.h>

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)
/* The bound on a wait that must succeed: reaching it is a failure (a lost wake-up). */
#define WAIT_BOUND (10 * SEC)
/* kill_peer()'s signal: Windows has no SIGKILL; the harness ends the peer with
   TerminateProcess whatever the number. */
#define KILL_SIG 9

static int64_t now_ns(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER c;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    return (int64_t)((double)c.QuadPart * 1e9 / (double)freq.QuadPart);
}

static uint64_t wake_calls(void)
{
    return atomic_load_explicit(&shml__futex_wake_calls, memory_order_relaxed);
}

/*
 * Create a "win:" segment of `size` zeroed bytes with a name unique to this test process;
 * *addr receives its address (valid until the test ends). Skips the test while the build has
 * no win: backend.
 */
static void *seg_create(size_t size, const char **addr, shml_segment **seg)
{
    /* Not shmt_fmt(): its pool is reused after 128 strings, and the address must last. */
    static char addrs[8][64];
    static unsigned n;
    if (n == 8)
        shmt_fail(__FILE__, __LINE__, "more than 8 segments in one test");
    char *a = addrs[n];
    snprintf(a, sizeof addrs[0], "win:shmt-sync-%lu-%u", (unsigned long)GetCurrentProcessId(), n);
    n++;
    int r = shml_segment_create(a, size, NULL, seg);
    if (r == -ENOTSUP)
        SKIP("no win: backend in this build (%s)", shml_last_error());
    ASSERT_OK(r);
    void *data = shml_segment_data(*seg);
    ASSERT_NOT_NULL(data);
    memset(data, 0, size);
    *addr = a;
    return data;
}

static void *seg_open(const char *addr, shml_segment **seg)
{
    ASSERT_OK(shml_segment_open(addr, NULL, seg));
    void *data = shml_segment_data(*seg);
    ASSERT_NOT_NULL(data);
    return data;
}

static void seg_done(shml_segment *seg, const char *addr)
{
    ASSERT_OK(shml_segment_close(seg));
    shml_segment_unlink(addr); /* a win: segment also goes with its last handle */
}

/* ---- the mutex ---- */

struct counter_area {
    shml_mutex m;
    uint64_t count;
    _Atomic uint32_t inside; /* threads between lock and unlock: never above 1 */
    uint32_t pad;
};

/* argv: address, rounds. Add 1 to count under the lock `rounds` times. */
PEER(count_adder)
{
    ASSERT_EQ(argc, 2);
    shml_segment *seg;
    struct counter_area *c = seg_open(argv[0], &seg);
    long rounds = atol(argv[1]);
    ASSERT_EQ(parent_expect("go", 30000), 0);
    for (long i = 0; i < rounds; i++) {
        int r = shml_mutex_lock(&c->m, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "lock %ld: %d (%s)", i, r, shml_strerror(r));
        /* Relaxed: the lock orders it; the check is that nobody else is inside. */
        if (atomic_fetch_add_explicit(&c->inside, 1, memory_order_relaxed) != 0)
            shmt_fail(__FILE__, __LINE__, "two holders at once");
        c->count++;
        atomic_fetch_sub_explicit(&c->inside, 1, memory_order_relaxed);
        ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

TEST_TIMEOUT(mutex_counter_exact, 120)
{
    enum { PEERS = 3, ROUNDS = 20000 };
    const char *addr;
    shml_segment *seg;
    struct counter_area *c = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    pid_t p[PEERS];
    for (int i = 0; i < PEERS; i++)
        p[i] = spawn_peer("count_adder", addr, shmt_fmt("%d", ROUNDS));
    for (int i = 0; i < PEERS; i++)
        ASSERT_EQ(peer_send(p[i], "go"), 0);
    int64_t t0 = now_ns();
    for (int i = 0; i < PEERS; i++)
        ASSERT_EQ(wait_peer(p[i], 90000), 0);
    shmt_log("%d processes x %d locks: %.1f us per lock", PEERS, ROUNDS,
             (double)(now_ns() - t0) / 1e3 / (PEERS * ROUNDS));
    ASSERT_EQ(c->count, (uint64_t)PEERS * ROUNDS);
    seg_done(seg, addr);
}

/*
 * The torn-record invariant of tests/sync/test_crash.c: a writer sets `a`, works, sets `b` to
 * the same value; in_cs is its own "I hold the lock".
 */
struct crash_area {
    shml_mutex m;
    _Atomic uint32_t in_cs;
    uint32_t pad;
    uint64_t a;
    uint64_t work[64];
    uint64_t b;
};

/* argv: address. Lock, write the record, unlock, until killed; "ready" after the first round. */
PEER(crash_writer)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct crash_area *c = seg_open(argv[0], &seg);
    for (uint64_t i = 1;; i++) {
        int r = shml_mutex_lock(&c->m, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "writer lock: %d (%s)", r, shml_strerror(r));
        /* Relaxed: read only after this process is gone; the lock orders the rest. */
        atomic_store_explicit(&c->in_cs, 1, memory_order_relaxed);
        if (c->a != c->b)
            shmt_fail(__FILE__, __LINE__, "writer found a torn record");
        c->a = i;
        for (int k = 0; k < 64; k++)
            c->work[k] = c->work[k] * 31 + i;
        c->b = i;
        atomic_store_explicit(&c->in_cs, 0, memory_order_relaxed);
        ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
        if (i == 1)
            ASSERT_EQ(parent_send("ready"), 0);
    }
}

/*
 * A writer killed at a random point, again and again, until 50 have died inside the lock: each
 * such death is -EOWNERDEAD for the next locker, who repairs and calls consistent(); a death
 * outside the lock leaves it free.
 */
TEST_TIMEOUT(mutex_holder_terminated_repeatedly, 400)
{
    enum { DEATHS = 50, ROUNDS_MAX = 200 };
    srand((unsigned)GetCurrentProcessId());
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    int dead_holding = 0, dead_outside = 0, round = 0;
    int64_t worst = 0;
    for (; dead_holding < DEATHS && round < ROUNDS_MAX; round++) {
        pid_t w = spawn_peer("crash_writer", addr);
        ASSERT_EQ(peer_expect(w, "ready", 30000), 0);
        Sleep((DWORD)(rand() % 21));
        ASSERT_NE(kill_peer(w, KILL_SIG), -1);

        uint32_t said_held = atomic_load_explicit(&c->in_cs, memory_order_relaxed);
        bool torn = c->a != c->b;
        if (said_held) {
            struct shml_mutex_state st;
            ASSERT_OK(shml_mutex_inspect(&c->m, &st));
            ASSERT_EQ(st.state, SHML_MUTEX_OWNER_DEAD);
            ASSERT_EQ(st.alive, 0);
        }
        int64_t t0 = now_ns();
        int r = shml_mutex_lock(&c->m, WAIT_BOUND);
        int64_t took = now_ns() - t0;
        worst = took > worst ? took : worst;
        if (r == -ETIMEDOUT)
            shmt_fail(__FILE__, __LINE__, "round %d: lock after the writer died timed out", round);
        if ((said_held || torn) && r != -EOWNERDEAD)
            shmt_fail(__FILE__, __LINE__,
                      "round %d: writer died %s%s; lock returned %d, want "
                      "-EOWNERDEAD",
                      round, said_held ? "holding the lock" : "",
                      torn ? " leaving a torn record" : "", r);
        if (r == -EOWNERDEAD) {
            dead_holding++;
            c->b = c->a;
            atomic_store_explicit(&c->in_cs, 0, memory_order_relaxed);
            ASSERT_ERR(shml_mutex_consistent(&c->m), 0);
        } else {
            ASSERT_ERR(r, 0);
            dead_outside++;
        }
        struct shml_mutex_state st;
        ASSERT_OK(shml_mutex_inspect(&c->m, &st));
        ASSERT_EQ(st.state, SHML_MUTEX_HELD);
        ASSERT_EQ(st.pid, (int32_t)GetCurrentProcessId());
        ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    }
    shmt_log("%d rounds: died holding the lock %d times, outside it %d; slowest lock after a "
             "death %.2f ms",
             round, dead_holding, dead_outside, (double)worst / 1e6);
    ASSERT_GE(dead_holding, DEATHS);
    seg_done(seg, addr);
}

/* argv: address. Lock, tear the record, say "locked", wait to be killed. */
PEER(crash_hold)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct crash_area *c = seg_open(argv[0], &seg);
    ASSERT_ERR(shml_mutex_lock(&c->m, WAIT_BOUND), 0);
    c->a = 7; /* torn: b is not written */
    ASSERT_EQ(parent_send("locked"), 0);
    ASSERT_EQ(parent_expect("never", 60000), 0);
    return 1;
}

/* argv: address. Lock with a 100 ms timeout, report the result as a line, end. */
PEER(crash_try_lock)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct crash_area *c = seg_open(argv[0], &seg);
    int r = shml_mutex_lock(&c->m, 100 * MS);
    ASSERT_EQ(parent_send(shmt_fmt("%d", r)), 0);
    if (r == 0 || r == -EOWNERDEAD)
        shml_mutex_unlock(&c->m);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

struct killer {
    pid_t victim;
    int delay_ms;
    int result;
};

static DWORD WINAPI kill_later(void *arg)
{
    struct killer *k = arg;
    Sleep((DWORD)k->delay_ms);
    k->result = kill_peer(k->victim, KILL_SIG);
    return 0;
}

/* A locker asleep behind a holder that is terminated wakes with the lock at once. */
TEST(mutex_sleeper_woken_by_holder_death)
{
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    pid_t h = spawn_peer("crash_hold", addr);
    ASSERT_EQ(peer_expect(h, "locked", 30000), 0);
    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    ASSERT_EQ(st.pid, (int32_t)h);
    ASSERT_EQ(st.alive, 1);

    struct killer k = {h, 300, 0};
    HANDLE t = CreateThread(NULL, 0, kill_later, &k, 0, NULL);
    ASSERT_NOT_NULL(t);
    int64_t t0 = now_ns();
    int r = shml_mutex_lock(&c->m, WAIT_BOUND);
    int64_t took = now_ns() - t0;
    ASSERT_EQ(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
    CloseHandle(t);
    ASSERT_NE(k.result, -1);
    ASSERT_ERR(r, -EOWNERDEAD);
    shmt_log("holder terminated 300 ms into the wait; the sleeper had the lock after %.1f ms",
             (double)took / 1e6);
    ASSERT_NE(c->a, c->b);
    c->b = c->a;
    ASSERT_ERR(shml_mutex_consistent(&c->m), 0);
    ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    seg_done(seg, addr);
}

TEST(mutex_not_recoverable)
{
    const char *addr;
    shml_segment *seg;
    struct crash_area *c = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_mutex_init(&c->m));
    struct shml_mutex_state st;

    pid_t h = spawn_peer("crash_hold", addr);
    ASSERT_EQ(peer_expect(h, "locked", 30000), 0);
    ASSERT_NE(kill_peer(h, KILL_SIG), -1);
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_OWNER_DEAD);
    ASSERT_EQ(st.alive, 0);

    ASSERT_ERR(shml_mutex_lock(&c->m, WAIT_BOUND), -EOWNERDEAD);
    ASSERT_NE(c->a, c->b);
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_REPAIRING);
    /* While it is held, nobody else gets it. */
    pid_t p = spawn_peer("crash_try_lock", addr);
    ASSERT_EQ(peer_expect(p, shmt_fmt("%d", -ETIMEDOUT), 30000), 0);
    ASSERT_EQ(wait_peer(p, 30000), 0);
    /* Unlocking without consistent(): lost for good, for every process. */
    ASSERT_ERR(shml_mutex_unlock(&c->m), 0);
    ASSERT_OK(shml_mutex_inspect(&c->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_NOT_RECOVERABLE);
    ASSERT_ERR(shml_mutex_lock(&c->m, 0), -ENOTRECOVERABLE);
    ASSERT_ERR(shml_mutex_lock(&c->m, 50 * MS), -ENOTRECOVERABLE);
    ASSERT_ERR(shml_mutex_lock(&c->m, SHML_FOREVER), -ENOTRECOVERABLE);
    ASSERT_ERR(shml_mutex_unlock(&c->m), -EPERM);
    p = spawn_peer("crash_try_lock", addr);
    ASSERT_EQ(peer_expect(p, shmt_fmt("%d", -ENOTRECOVERABLE), 30000), 0);
    ASSERT_EQ(wait_peer(p, 30000), 0);
    seg_done(seg, addr);
}

struct thread_lock {
    shml_mutex *m;
    int hold_ms;
    int result;
};

/* Lock, keep it hold_ms, and end the thread without unlocking. */
static DWORD WINAPI lock_and_exit(void *arg)
{
    struct thread_lock *t = arg;
    t->result = shml_mutex_lock(t->m, WAIT_BOUND);
    Sleep((DWORD)t->hold_ms);
    return 0;
}

/* Unlock by a thread that does not hold it. */
static DWORD WINAPI foreign_unlock(void *arg)
{
    struct thread_lock *t = arg;
    t->result = shml_mutex_unlock(t->m);
    return 0;
}

static void run_thread(LPTHREAD_START_ROUTINE fn, struct thread_lock *t)
{
    HANDLE h = CreateThread(NULL, 0, fn, t, 0, NULL);
    ASSERT_NOT_NULL(h);
    ASSERT_EQ(WaitForSingleObject(h, 30000), WAIT_OBJECT_0);
    CloseHandle(h);
}

/*
 * In one process, in a segment and in the process's own memory (the WaitOnAddress path):
 * relock is -EDEADLK, another thread's unlock -EPERM, and a thread that ends holding the lock
 * leaves it to the next locker with -EOWNERDEAD, whether that locker comes after the end or
 * sleeps through it (as a thread that exits holding a robust mutex does on Linux).
 */
TEST(mutex_errors_and_thread_exit)
{
    const char *addr;
    shml_segment *seg;
    struct crash_area *in_seg = seg_create(4096, &addr, &seg);
    shml_mutex *own = _aligned_malloc(sizeof(shml_mutex), 64);
    ASSERT_NOT_NULL(own);
    shml_mutex *ms[2] = {&in_seg->m, own};
    for (int i = 0; i < 2; i++) {
        shml_mutex *m = ms[i];
        ASSERT_OK(shml_mutex_init(m));
        ASSERT_ERR(shml_mutex_lock(m, 0), 0);
        ASSERT_ERR(shml_mutex_lock(m, 0), -EDEADLK);
        ASSERT_ERR(shml_mutex_lock(m, SHML_FOREVER), -EDEADLK);
        struct thread_lock t = {m, 0, 1};
        run_thread(foreign_unlock, &t);
        ASSERT_ERR(t.result, -EPERM);
        ASSERT_ERR(shml_mutex_consistent(m), -EINVAL); /* consistent already */
        ASSERT_ERR(shml_mutex_unlock(m), 0);
        ASSERT_ERR(shml_mutex_unlock(m), -EPERM);

        /* The holder ends before anyone waits. */
        t.result = 1;
        run_thread(lock_and_exit, &t);
        ASSERT_ERR(t.result, 0);
        ASSERT_ERR(shml_mutex_lock(m, WAIT_BOUND), -EOWNERDEAD);
        ASSERT_ERR(shml_mutex_consistent(m), 0);
        ASSERT_ERR(shml_mutex_unlock(m), 0);

        /* The holder ends while this thread sleeps behind it. */
        struct thread_lock t2 = {m, 200, 1};
        HANDLE h = CreateThread(NULL, 0, lock_and_exit, &t2, 0, NULL);
        ASSERT_NOT_NULL(h);
        int64_t deadline = now_ns() + WAIT_BOUND;
        struct shml_mutex_state st;
        do {
            ASSERT_LT(now_ns(), deadline);
            Sleep(1);
            ASSERT_OK(shml_mutex_inspect(m, &st));
        } while (st.state != SHML_MUTEX_HELD);
        int64_t t0 = now_ns();
        ASSERT_ERR(shml_mutex_lock(m, WAIT_BOUND), -EOWNERDEAD);
        shmt_log("%s: the sleeper had the lock %.1f ms after it began to wait (holder ended "
                 "after about 200 ms)",
                 i == 0 ? "segment" : "own memory", (double)(now_ns() - t0) / 1e6);
        ASSERT_EQ(WaitForSingleObject(h, 30000), WAIT_OBJECT_0);
        CloseHandle(h);
        ASSERT_ERR(t2.result, 0);
        ASSERT_ERR(shml_mutex_consistent(m), 0);
        ASSERT_ERR(shml_mutex_unlock(m), 0);
    }
    _aligned_free(own);
    seg_done(seg, addr);
}

/* ---- the event ---- */

struct pingpong_area {
    shml_event ping;
    shml_event pong;
};

/* argv: address, rounds. Answer each ping with a pong. */
PEER(pong)
{
    ASSERT_EQ(argc, 2);
    shml_segment *seg;
    struct pingpong_area *a = seg_open(argv[0], &seg);
    long rounds = atol(argv[1]);
    uint32_t seen = shml_event_read(&a->ping);
    ASSERT_EQ(parent_send("ready"), 0);
    for (long i = 0; i < rounds; i++) {
        int r = shml_event_wait(&a->ping, seen, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "round %ld: wait for ping: %d (%s)", i, r,
                      shml_strerror(r));
        seen = shml_event_read(&a->ping);
        ASSERT_OK(shml_event_notify(&a->pong, SHML_WAKE_ONE));
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* 10^5 rounds between two processes: a lost wake-up is a wait that reaches its bound. */
TEST_TIMEOUT(event_pingpong_100k, 300)
{
    enum { ROUNDS = 100000 };
    const char *addr;
    shml_segment *seg;
    struct pingpong_area *a = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(&a->ping));
    ASSERT_OK(shml_event_init(&a->pong));
    pid_t p = spawn_peer("pong", addr, shmt_fmt("%d", ROUNDS));
    ASSERT_EQ(peer_expect(p, "ready", 30000), 0);
    uint32_t seen = shml_event_read(&a->pong);
    uint64_t c0 = wake_calls();
    int64_t t0 = now_ns();
    for (long i = 0; i < ROUNDS; i++) {
        ASSERT_OK(shml_event_notify(&a->ping, SHML_WAKE_ONE));
        int r = shml_event_wait(&a->pong, seen, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "round %ld: wait for pong: %d (%s)", i, r,
                      shml_strerror(r));
        seen = shml_event_read(&a->pong);
    }
    int64_t took = now_ns() - t0;
    ASSERT_EQ(wait_peer(p, 30000), 0);
    shmt_log("%d round trips: %.1f us each; this side made %llu wake-up calls", ROUNDS,
             (double)took / 1e3 / ROUNDS, (unsigned long long)(wake_calls() - c0));
    seg_done(seg, addr);
}

/* ---- the semaphore ---- */

struct sem_area {
    shml_sem s;
    _Atomic uint64_t taken;
};

/* argv: address, count. Take `count` units, each within the bound. */
PEER(sem_taker)
{
    ASSERT_EQ(argc, 2);
    shml_segment *seg;
    struct sem_area *a = seg_open(argv[0], &seg);
    long n = atol(argv[1]);
    ASSERT_EQ(parent_send("ready"), 0);
    for (long i = 0; i < n; i++) {
        int r = shml_sem_wait(&a->s, WAIT_BOUND);
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "unit %ld: %d (%s)", i, r, shml_strerror(r));
        atomic_fetch_add_explicit(&a->taken, 1, memory_order_relaxed);
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* Two takers, units posted one by one, sometimes after a pause so that takers sleep. */
TEST_TIMEOUT(sem_across_processes, 120)
{
    enum { TAKERS = 2, EACH = 5000 };
    const char *addr;
    shml_segment *seg;
    struct sem_area *a = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_sem_init(&a->s, 0));
    pid_t p[TAKERS];
    for (int i = 0; i < TAKERS; i++) {
        p[i] = spawn_peer("sem_taker", addr, shmt_fmt("%d", EACH));
        ASSERT_EQ(peer_expect(p[i], "ready", 30000), 0);
    }
    for (int i = 0; i < TAKERS * EACH; i++) {
        ASSERT_ERR(shml_sem_post(&a->s), 0);
        if (i % 100 == 0)
            Sleep(1);
    }
    for (int i = 0; i < TAKERS; i++)
        ASSERT_EQ(wait_peer(p[i], 60000), 0);
    ASSERT_EQ(atomic_load(&a->taken), (uint64_t)TAKERS * EACH);
    ASSERT_EQ(shml_sem_value(&a->s), 0u);
    seg_done(seg, addr);
}

/* ---- no kernel call when nobody sleeps ---- */

struct sleeper {
    shml_event *e;
    int result;
};

static DWORD WINAPI event_sleeper(void *arg)
{
    struct sleeper *sl = arg;
    sl->result = shml_event_wait(sl->e, 0, WAIT_BOUND);
    return 0;
}

/* The event's count of sleepers (layout.h). */
static uint32_t sleepers(shml_event *e)
{
    struct shml_event_layout *l = (struct shml_event_layout *)e;
    return SHML_WAITERS_COUNT(atomic_load_explicit(&l->waiters, memory_order_relaxed));
}

TEST(notify_and_post_without_sleepers_no_call)
{
    const char *addr;
    shml_segment *seg;
    struct {
        shml_event e;
        shml_sem s;
    } *o = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(&o->e));
    ASSERT_OK(shml_sem_init(&o->s, 0));
    uint64_t c0 = wake_calls();
    for (int i = 0; i < 100000; i++) {
        ASSERT_ERR(shml_event_notify(&o->e, i % 2 ? SHML_WAKE_ONE : SHML_WAKE_ALL), 0);
        ASSERT_ERR(shml_sem_post(&o->s), 0);
        ASSERT_ERR(shml_sem_trywait(&o->s), 0);
    }
    ASSERT_EQ(wake_calls(), c0);

    /* Somebody asleep: the counter moves (it counts at all). */
    ASSERT_OK(shml_event_init(&o->e));
    struct sleeper sl = {&o->e, 1};
    HANDLE t = CreateThread(NULL, 0, event_sleeper, &sl, 0, NULL);
    ASSERT_NOT_NULL(t);
    int64_t deadline = now_ns() + WAIT_BOUND;
    while (sleepers(&o->e) == 0) {
        ASSERT_LT(now_ns(), deadline);
        Sleep(1);
    }
    ASSERT_OK(shml_event_notify(&o->e, SHML_WAKE_ALL)); /* how many it woke */
    ASSERT_EQ(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
    CloseHandle(t);
    ASSERT_ERR(sl.result, 0);
    ASSERT_GT(wake_calls(), c0);
    uint64_t c1 = wake_calls();
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(shml_event_notify(&o->e, SHML_WAKE_ALL));
    ASSERT_EQ(wake_calls(), c1);
    seg_done(seg, addr);
}

struct heal_area {
    shml_event e;
    shml_sem s;
};

/* argv: address, "sem" or "event". Wait (to be killed in the wait). */
PEER(heal_sleeper)
{
    ASSERT_EQ(argc, 2);
    shml_segment *seg;
    struct heal_area *o = seg_open(argv[0], &seg);
    if (strcmp(argv[1], "sem") == 0)
        shml_sem_wait(&o->s, WAIT_BOUND);
    else
        shml_event_wait(&o->e, 0, WAIT_BOUND);
    return 0;
}

/*
 * A sleeper terminated in its wait leaves its count behind; the wakers heal it after one
 * needless wake-up call (two for an event, which needs two fruitless ones), not one per
 * notify for ever: the semaphore of the word died with the sleeper's handle, so the open
 * fails, and a wake-up that reaches nobody says 0.
 */
static void killed_sleeper_heals(bool sem)
{
    const char *addr;
    shml_segment *seg;
    struct heal_area *o = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(&o->e));
    ASSERT_OK(shml_sem_init(&o->s, 0));
    pid_t p = spawn_peer("heal_sleeper", addr, sem ? "sem" : "event");
    struct shml_sem_layout *sl = (struct shml_sem_layout *)&o->s;
    struct shml_event_layout *el = (struct shml_event_layout *)&o->e;
    shml_atomic_u64 *waiters = sem ? &sl->waiters : &el->waiters;
    int64_t deadline = now_ns() + 30 * SEC;
    while (SHML_WAITERS_COUNT(atomic_load_explicit(waiters, memory_order_relaxed)) == 0) {
        ASSERT_LT(now_ns(), deadline);
        Sleep(1);
    }
    Sleep(100); /* from counted to asleep: a few calls */
    ASSERT_NE(kill_peer(p, KILL_SIG), -1);
    uint64_t c0 = wake_calls();
    for (int i = 0; i < 1000; i++) {
        if (sem)
            ASSERT_ERR(shml_sem_post(&o->s), 0);
        else
            ASSERT_OK(shml_event_notify(&o->e, SHML_WAKE_ONE));
    }
    ASSERT_LE(wake_calls() - c0, sem ? 1u : 2u);
    seg_done(seg, addr);
}

TEST(sem_killed_sleeper_heals)
{
    killed_sleeper_heals(true);
}

TEST(event_killed_sleeper_heals)
{
    killed_sleeper_heals(false);
}

/* ---- cancellation ---- */

struct cancel_wait {
    shml_event *e;
    shml_cancel *token;
    _Atomic int asleep;
    int result;
    int64_t ended;
};

static DWORD WINAPI cancellable_wait(void *arg)
{
    struct cancel_wait *cw = arg;
    shml_cancel_bind(cw->token);
    atomic_store(&cw->asleep, 1);
    cw->result = shml_event_wait(cw->e, shml_event_read(cw->e), WAIT_BOUND);
    cw->ended = now_ns();
    shml_cancel_bind(NULL);
    return 0;
}

/*
 * A wait on a segment's event, bound to a token, ends with -ECANCELED when another thread
 * fires the token: at once through the token's event (wait2), and, with wait2 switched off,
 * within a poll slice. A fire undone by a reset before the wait leaves it asleep.
 */
TEST(cancel_ends_shared_wait)
{
    const char *addr;
    shml_segment *seg;
    shml_event *e = seg_create(4096, &addr, &seg);
    ASSERT_OK(shml_event_init(e));
    shml_cancel *token;
    ASSERT_OK(shml_cancel_create(&token, 0));
    for (int missing = 0; missing < 2; missing++) {
        atomic_store(&shml__futex_waitv_missing, missing != 0);
        for (int round = 0; round < 3; round++) {
            ASSERT_OK(shml_cancel_reset(token));
            struct cancel_wait cw = {e, token, 0, 1, 0};
            HANDLE t = CreateThread(NULL, 0, cancellable_wait, &cw, 0, NULL);
            ASSERT_NOT_NULL(t);
            while (!atomic_load(&cw.asleep))
                Sleep(1);
            Sleep(50 + 13 * round);
            int64_t fired = now_ns();
            ASSERT_OK(shml_cancel_fire(token));
            ASSERT_EQ(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
            CloseHandle(t);
            ASSERT_ERR(cw.result, -ECANCELED);
            shmt_log("%s: the wait ended %.2f ms after the fire", missing ? "polling" : "wait2",
                     (double)(cw.ended - fired) / 1e6);
        }
    }
    atomic_store(&shml__futex_waitv_missing, false);
    ASSERT_OK(shml_cancel_fire(token));
    ASSERT_OK(shml_cancel_reset(token));
    shml_cancel_bind(token);
    ASSERT_ERR(shml_event_wait(e, shml_event_read(e), 100 * MS), -ETIMEDOUT);
    shml_cancel_bind(NULL);
    shml_cancel_destroy(token);
    seg_done(seg, addr);
}
