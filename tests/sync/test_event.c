/*
 * The event across processes: a 10^6-round ping-pong with no lost wake-up (blocking, then a
 * shorter run with a spin budget), timeouts, WAKE_ALL and WAKE_ONE with several sleepers,
 * SHML_WAIT_EINTR, and a waiter killed in its wait.
 */
#include "sync_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct ev_area {
    shml_event ab; /* A (the test) -> B (the peer) */
    shml_event ba; /* B -> A */
    uint64_t ping; /* plain: written before notify(ab), read after a wait on ab returned */
    uint64_t pong;
    _Atomic uint32_t woken;
};

static struct ev_area *ev_create(const char **addr, shml_segment **seg)
{
    struct ev_area *a = sync_seg_create(4096, addr, seg);
    ASSERT_OK(shml_event_init(&a->ab));
    ASSERT_OK(shml_event_init(&a->ba));
    return a;
}

/*
 * Wait (bounded by WAIT_BOUND) for `e` to move past `seen`; it must move by exactly one.
 * A timeout means a notify was lost.
 */
static uint32_t next_gen(shml_event *e, uint32_t seen, long round, const char *who)
{
    int r = shml_event_wait(e, seen, WAIT_BOUND);
    if (r != 0)
        shmt_fail(__FILE__, __LINE__, "%s, round %ld: wait(seen %u) returned %d (%s)%s", who,
                  round, seen, r, shml_strerror(r),
                  r == -ETIMEDOUT ? ": a lost wake-up (or the other side died)" : "");
    uint32_t g = shml_event_read(e);
    if (g != seen + 1)
        shmt_fail(__FILE__, __LINE__, "%s, round %ld: generation %u after %u, want +1", who,
                  round, g, seen);
    return g;
}

/* B: argv[0] address, argv[1] rounds. Answers each ping with a pong. */
PEER(ev_pong)
{
    ASSERT_EQ(argc, 2);
    long rounds = strtol(argv[1], NULL, 10);
    shml_segment *seg;
    struct ev_area *a = sync_seg_open(argv[0], &seg);
    uint32_t seen = 0;
    for (long i = 0; i < rounds; i++) {
        seen = next_gen(&a->ab, seen, i, "pong side");
        if (a->ping != (uint64_t)i)
            shmt_fail(__FILE__, __LINE__, "round %ld: ping %ju, want %ld", i,
                      (uintmax_t)a->ping, i);
        a->pong = (uint64_t)i;
        ASSERT_OK(shml_event_notify(&a->ba, SHML_WAKE_ONE));
    }
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

/* `rounds` pings, each answered; 2 x rounds notifies and waits in all. */
static void pingpong(long rounds, uint32_t spin)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    ASSERT_OK(shml_event_set_spin(&a->ab, spin));
    ASSERT_OK(shml_event_set_spin(&a->ba, spin));
    pid_t b = spawn_peer("ev_pong", addr, shmt_fmt("%ld", rounds));
    int64_t t0 = now_ns();
    uint32_t seen = 0;
    for (long i = 0; i < rounds; i++) {
        a->ping = (uint64_t)i;
        ASSERT_OK(shml_event_notify(&a->ab, SHML_WAKE_ONE));
        int r = shml_event_wait(&a->ba, seen, WAIT_BOUND);
        if (r != 0) {
            int st = wait_peer(b, 1000);
            shmt_fail(__FILE__, __LINE__,
                      "ping side, round %ld: wait returned %d (%s); the pong side %s (%d)", i, r,
                      shml_strerror(r), st == -1 ? "was still running: a lost wake-up" : "ended",
                      st);
        }
        uint32_t g = shml_event_read(&a->ba);
        if (g != seen + 1)
            shmt_fail(__FILE__, __LINE__, "round %ld: generation %u after %u, want +1", i, g,
                      seen);
        seen = g;
        if (a->pong != (uint64_t)i)
            shmt_fail(__FILE__, __LINE__, "round %ld: pong %ju, want %ld", i,
                      (uintmax_t)a->pong, i);
    }
    double s = (double)(now_ns() - t0) / SEC;
    ASSERT_EQ(wait_peer(b, 30000), 0);
    shmt_log("%ld round trips (%ld wake-ups), spin %u: %.2f s", rounds, 2 * rounds, spin, s);
    ASSERT_EQ(shml_event_read(&a->ab), (uint32_t)rounds);
    ASSERT_EQ(shml_event_read(&a->ba), (uint32_t)rounds);
    ASSERT_OK(shml_segment_close(seg));
}

/* 10^6 round trips (2 x 10^6 notify/wait hand-offs) between two processes, blocking: none
   may be lost. */
TEST_TIMEOUT(event_pingpong_procs, 600)
{
    pingpong(sync_iters(1000000, 2000), 0);
}

/* The same with a spin budget: waiters poll before they sleep. Shorter: it burns a core. */
TEST_TIMEOUT(event_pingpong_procs_spin, 300)
{
    pingpong(sync_iters(50000, 1000), 2000);
}

TEST(event_basics)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    ASSERT_EQ(shml_event_read(&a->ab), 0u);
    /* Nobody sleeps: notify wakes nobody, and still moves the generation. */
    ASSERT_ERR(shml_event_notify(&a->ab, SHML_WAKE_ONE), 0);
    ASSERT_ERR(shml_event_notify(&a->ab, SHML_WAKE_ALL), 0);
    ASSERT_EQ(shml_event_read(&a->ab), 2u);
    /* A generation already past `seen` returns at once, whatever the timeout. */
    ASSERT_ERR(shml_event_wait(&a->ab, 0, 0), 0);
    ASSERT_ERR(shml_event_wait(&a->ab, 1, SHML_FOREVER), 0);
    ASSERT_ERR(shml_event_wait_flags(&a->ab, 0, SHML_FOREVER, SHML_WAIT_EINTR), 0);
    /* Unchanged: a zero timeout only checks. */
    ASSERT_ERR(shml_event_wait(&a->ab, 2, 0), -ETIMEDOUT);
    /* Bad arguments. */
    ASSERT_ERR(shml_event_notify(&a->ab, 0), -EINVAL);
    ASSERT_ERR(shml_event_notify(&a->ab, 3), -EINVAL);
    ASSERT_ERR(shml_event_set_spin(&a->ab, 1000001), -EINVAL);
    ASSERT_OK(shml_event_set_spin(&a->ab, 1000000));
    ASSERT_OK(shml_event_set_spin(&a->ab, 0));
    ASSERT_ERR(shml_event_init(NULL), -EINVAL);
    ASSERT_EQ(shml_event_read(&a->ab), 2u);
    ASSERT_OK(shml_segment_close(seg));
}

/*
 * A wait that nobody notifies returns -ETIMEDOUT, never before its timeout. The median
 * overshoot over 5 tries must stay within 40 ms: this checks the deadline computation (a
 * timeout taken as microseconds, or restarted in full after a spurious wake-up, overshoots by
 * 50 ms or more), not the machine's speed; the median absorbs a try the scheduler delays, and
 * the bound leaves room for a loaded machine (15 ms medians were seen under load).
 */
TEST(event_wait_timeout)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    int64_t over[5];
    for (int i = 0; i < 5; i++) {
        int64_t t0 = now_ns();
        ASSERT_ERR(shml_event_wait(&a->ab, 0, 50 * MS), -ETIMEDOUT);
        int64_t took = now_ns() - t0;
        ASSERT_GE(took, 50 * MS);
        over[i] = took - 50 * MS;
    }
    int64_t med = median_i64(over, 5);
    shmt_log("wait(50 ms) overshoot: median %.2f ms", (double)med / MS);
    ASSERT_LE(med, 40 * MS);
    /* A spin budget does not change the deadline. */
    ASSERT_OK(shml_event_set_spin(&a->ab, 1000));
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_event_wait(&a->ab, 0, 20 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 20 * MS);
    ASSERT_OK(shml_segment_close(seg));
}

/* argv[0] address, argv[1] seen: wait (bounded) for ab to move past it; count in `woken`. */
PEER(ev_waiter)
{
    ASSERT_EQ(argc, 2);
    uint32_t seen = (uint32_t)strtoul(argv[1], NULL, 10);
    shml_segment *seg;
    struct ev_area *a = sync_seg_open(argv[0], &seg);
    ASSERT_EQ(parent_send("waiting"), 0);
    ASSERT_ERR(shml_event_wait(&a->ab, seen, 30 * SEC), 0);
    ASSERT_NE(shml_event_read(&a->ab), seen);
    atomic_fetch_add_explicit(&a->woken, 1, memory_order_relaxed);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

enum { SLEEPERS = 3 };

static void start_sleepers(const char *addr, struct ev_area *a, pid_t *p)
{
    uint32_t g = shml_event_read(&a->ab);
    for (int i = 0; i < SLEEPERS; i++)
        p[i] = spawn_peer("ev_waiter", addr, shmt_fmt("%u", g));
    for (int i = 0; i < SLEEPERS; i++) {
        ASSERT_EQ(peer_expect(p[i], "waiting", 20000), 0);
        AWAIT_FUTEX(p[i], p[i], 10000);
    }
}

/* Bounded poll until `woken` reaches n. */
static void await_woken(struct ev_area *a, uint32_t n)
{
    int64_t deadline = shmt_now_ms() + 10000;
    while (atomic_load_explicit(&a->woken, memory_order_relaxed) < n) {
        if (shmt_now_ms() > deadline)
            shmt_fail(__FILE__, __LINE__, "%u of %u waiters woke within 10 s",
                      atomic_load_explicit(&a->woken, memory_order_relaxed), n);
        shmt_sleep_ms(1);
    }
}

TEST(event_wake_all)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    pid_t p[SLEEPERS];
    start_sleepers(addr, a, p);
    ASSERT_ERR(shml_event_notify(&a->ab, SHML_WAKE_ALL), SLEEPERS);
    await_woken(a, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        ASSERT_EQ(wait_peer(p[i], 20000), 0);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(event_wake_one)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    pid_t p[SLEEPERS];
    start_sleepers(addr, a, p);
    int r = shml_event_notify(&a->ab, SHML_WAKE_ONE);
    ASSERT_GE(r, 1);
    ASSERT_LE(r, SLEEPERS);
    /* At least one wakes (more may: a waiter sees the generation moved at its next check). */
    await_woken(a, 1);
    ASSERT_OK(shml_event_notify(&a->ab, SHML_WAKE_ALL));
    await_woken(a, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        ASSERT_EQ(wait_peer(p[i], 20000), 0);
    ASSERT_OK(shml_segment_close(seg));
}

/*
 * Signals (handler without SA_RESTART) every 20 ms during waits: with SHML_WAIT_EINTR the wait
 * returns -EINTR; without it the wait goes on and still ends at its timeout.
 */
TEST(event_wait_eintr)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    sigstorm_start(20);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_event_wait_flags(&a->ab, 0, 5 * SEC, SHML_WAIT_EINTR), -EINTR);
    ASSERT_LT(now_ns() - t0, 5 * SEC);
    ASSERT_ERR(shml_event_wait_flags(&a->ab, 0, SHML_FOREVER, SHML_WAIT_EINTR), -EINTR);

    unsigned n0 = sigstorm_count();
    t0 = now_ns();
    ASSERT_ERR(shml_event_wait_flags(&a->ab, 0, 300 * MS, 0), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 300 * MS);
    t0 = now_ns();
    ASSERT_ERR(shml_event_wait(&a->ab, 0, 300 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 300 * MS);
    /* The signals did arrive during those waits. */
    ASSERT_GE(sigstorm_count() - n0, 2u);
    sigstorm_stop();
    ASSERT_EQ(shml_event_read(&a->ab), 0u);
    ASSERT_OK(shml_segment_close(seg));
}

/* A waiter killed in its wait leaves the event usable by everyone else. */
TEST(event_waiter_killed)
{
    const char *addr;
    shml_segment *seg;
    struct ev_area *a = ev_create(&addr, &seg);
    pid_t w = spawn_peer("ev_waiter", addr, "0");
    ASSERT_EQ(peer_expect(w, "waiting", 20000), 0);
    AWAIT_FUTEX(w, w, 10000);
    ASSERT_EQ(kill_peer(w, SIGKILL), 128 + SIGKILL);
    /* At most a superfluous wake-up for the dead waiter. */
    int r = shml_event_notify(&a->ab, SHML_WAKE_ALL);
    ASSERT_GE(r, 0);
    ASSERT_EQ(shml_event_read(&a->ab), 1u);

    pid_t p[SLEEPERS];
    start_sleepers(addr, a, p);
    ASSERT_ERR(shml_event_notify(&a->ab, SHML_WAKE_ALL), SLEEPERS);
    await_woken(a, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        ASSERT_EQ(wait_peer(p[i], 20000), 0);
    /* And a timed wait still times out. */
    ASSERT_ERR(shml_event_wait(&a->ab, shml_event_read(&a->ab), 20 * MS), -ETIMEDOUT);
    ASSERT_OK(shml_segment_close(seg));
}
