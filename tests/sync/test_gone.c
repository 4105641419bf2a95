/*
 * A mutex holder that goes where the kernel's robust list cannot follow: it unmapped the
 * segment (closed it) before it exited, or its thread exited after another thread closed the
 * segment. The lock word then names a thread that no longer exists; the next locker must still
 * get -EOWNERDEAD with the lock, within a bounded time, whatever its timeout. A holder that is
 * alive, or that lives in another pid namespace (its thread id means nothing here), is never
 * robbed. The holder's identity fields are poked at their documented offsets (docs/FORMAT.md),
 * as a foreign program would, to stand for a reused thread id and a foreign namespace.
 */
#include "layout.h"
#include "sync_util.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

struct gone_area {
    shml_mutex m;
    uint64_t data;
};

/* Offsets in the mutex's 64 bytes (src/layout.h, docs/FORMAT.md). */
#define HOLDER_NS_OFF offsetof(struct shml_mutex_layout, holder_ns)
#define HOLDER_ID_OFF offsetof(struct shml_mutex_layout, holder_id)

static _Atomic uint32_t *holder_ns(shml_mutex *m)
{
    return (_Atomic uint32_t *)(void *)((unsigned char *)m + HOLDER_NS_OFF);
}

static _Atomic uint64_t *holder_id(shml_mutex *m)
{
    return (_Atomic uint64_t *)(void *)((unsigned char *)m + HOLDER_ID_OFF);
}

/*
 * Lock and write; with argv[1] "close", close the segment with the lock held (else keep it
 * mapped); say "locked"; then exit normally when told "exit", or stay until killed.
 */
PEER(gone_holder)
{
    ASSERT_EQ(argc, 2);
    shml_segment *seg;
    struct gone_area *g = sync_seg_open(argv[0], &seg);
    ASSERT_ERR(shml_mutex_lock(&g->m, WAIT_BOUND), 0);
    g->data = 42;
    if (strcmp(argv[1], "close") == 0)
        ASSERT_OK(shml_segment_close(seg));
    ASSERT_EQ(parent_send("locked"), 0);
    ASSERT_EQ(parent_expect("exit", 60000), 0);
    return 0;
}

static shml_mutex *thread_mutex;
static _Atomic int thread_locked;

static void *lock_and_linger(void *arg)
{
    (void)arg;
    if (shml_mutex_lock(thread_mutex, WAIT_BOUND) != 0)
        return NULL;
    atomic_store(&thread_locked, 1);
    while (atomic_load(&thread_locked) != 2)
        usleep(1000);
    return NULL; /* exits holding the lock, whose mapping is gone */
}

/*
 * A thread locks; the main thread closes the segment; the thread exits holding the lock. The
 * process stays alive: only the holding thread is gone.
 */
PEER(gone_thread)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct gone_area *g = sync_seg_open(argv[0], &seg);
    thread_mutex = &g->m;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, lock_and_linger, NULL), 0);
    while (atomic_load(&thread_locked) != 1)
        usleep(1000);
    ASSERT_OK(shml_segment_close(seg));
    atomic_store(&thread_locked, 2);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(parent_send("locked"), 0);
    ASSERT_EQ(parent_expect("never", 60000), 0);
    return 1;
}

/* Lock and keep the segment mapped, then exec another program with the lock held. */
PEER(gone_exec)
{
    ASSERT_EQ(argc, 1);
    shml_segment *seg;
    struct gone_area *g = sync_seg_open(argv[0], &seg);
    ASSERT_ERR(shml_mutex_lock(&g->m, WAIT_BOUND), 0);
    ASSERT_EQ(parent_send("locked"), 0);
    execl("/bin/sleep", "sleep", "60", (char *)NULL);
    return 1;
}

/*
 * A fresh mutex in a new segment, locked by PEER(peer) started with `how` (NULL: no second
 * argument); returns once the peer says it holds the lock, with the peer's pid in *h.
 */
static struct gone_area *locked_by(const char *peer, const char *how, shml_segment **seg,
                                   pid_t *h)
{
    const char *addr;
    struct gone_area *g = sync_seg_create(4096, &addr, seg);
    ASSERT_OK(shml_mutex_init(&g->m));
    *h = how ? spawn_peer(peer, addr, how) : spawn_peer(peer, addr);
    ASSERT_EQ(peer_expect(*h, "locked", 20000), 0);
    return g;
}

/* The next locker gets the lock with -EOWNERDEAD, repairs, and the mutex works again. */
static void expect_taken_over(struct gone_area *g, int64_t timeout_ns)
{
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_mutex_lock(&g->m, timeout_ns), -EOWNERDEAD);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    ASSERT_ERR(shml_mutex_consistent(&g->m), 0);
    ASSERT_ERR(shml_mutex_unlock(&g->m), 0);
    ASSERT_ERR(shml_mutex_lock(&g->m, 0), 0);
    ASSERT_ERR(shml_mutex_unlock(&g->m), 0);
}

/* The holder closed the segment and exited: every kind of wait takes the lock over. */
TEST(mutex_holder_closed_and_exited)
{
    const int64_t timeouts[] = {2 * SEC, SHML_FOREVER, 0};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        shml_segment *seg;
        pid_t h;
        struct gone_area *g = locked_by("gone_holder", "close", &seg, &h);
        ASSERT_EQ(peer_send(h, "exit"), 0);
        ASSERT_EQ(wait_peer(h, 20000), 0);
        ASSERT_EQ(g->data, 42u);
        /* Left held by a thread that is gone: inspect says so before anyone locks. */
        struct shml_mutex_state st;
        ASSERT_OK(shml_mutex_inspect(&g->m, &st));
        ASSERT_EQ(st.state, SHML_MUTEX_HELD);
        ASSERT_EQ(st.pid, h);
        ASSERT_EQ(st.alive, 0);
        expect_taken_over(g, timeouts[i]);
        ASSERT_OK(shml_segment_close(seg));
    }
}

/*
 * Closing a segment does not release the locks held in it: while the holder lives, the lock
 * stays held; once it is gone (here killed), the next locker takes it over.
 */
TEST(mutex_holder_closed_stays_held_until_gone)
{
    shml_segment *seg;
    pid_t h;
    struct gone_area *g = locked_by("gone_holder", "close", &seg, &h);
    ASSERT_ERR(shml_mutex_lock(&g->m, 300 * MS), -ETIMEDOUT);
    ASSERT_ERR(shml_mutex_lock(&g->m, 0), -ETIMEDOUT);
    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(&g->m, &st));
    ASSERT_EQ(st.alive, 1);
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);
    expect_taken_over(g, 5 * SEC);
    ASSERT_OK(shml_segment_close(seg));
}

/* PEER(peer) locks and goes its way while its process lives on: the lock is taken over. */
static void taken_over_while_peer_lives(const char *peer)
{
    shml_segment *seg;
    pid_t h;
    struct gone_area *g = locked_by(peer, NULL, &seg, &h);
    expect_taken_over(g, 5 * SEC);
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);
    ASSERT_OK(shml_segment_close(seg));
}

/* Only the holding thread is gone; its process lives on. */
TEST(mutex_holder_thread_gone_after_unmap)
{
    taken_over_while_peer_lives("gone_thread");
}

/* exec with the lock held and the segment mapped: the kernel releases it at the exec. */
TEST(mutex_holder_exec)
{
    taken_over_while_peer_lives("gone_exec");
}

/*
 * The lock word's thread id now belongs to a thread that started at another time (a reused
 * id): the recorded start time tells, and the lock is taken over although that id is alive.
 */
TEST(mutex_holder_id_reused)
{
    shml_segment *seg;
    pid_t h;
    struct gone_area *g = locked_by("gone_holder", "keep", &seg, &h);
    uint64_t id = atomic_load(holder_id(&g->m));
    ASSERT_EQ((pid_t)SHML_MUTEX_HOLDER_TID(id), h);
    /* The live holder is not robbed... */
    ASSERT_ERR(shml_mutex_lock(&g->m, 100 * MS), -ETIMEDOUT);
    /* ...but a holder that started at another time than the thread now bearing its id is. */
    atomic_store(holder_id(&g->m), id ^ 0x5a5au);
    expect_taken_over(g, 5 * SEC);
    ASSERT_EQ(kill_peer(h, SIGKILL), 128 + SIGKILL);
    ASSERT_OK(shml_segment_close(seg));
}

/*
 * A holder of another pid namespace is never judged, even if no thread here bears its id:
 * the lock stays held (it is released normally, or by the kernel, in that namespace).
 */
TEST(mutex_holder_other_namespace_not_judged)
{
    shml_segment *seg;
    pid_t h;
    struct gone_area *g = locked_by("gone_holder", "close", &seg, &h);
    ASSERT_EQ(peer_send(h, "exit"), 0);
    ASSERT_EQ(wait_peer(h, 20000), 0);
    uint32_t ns = atomic_load(holder_ns(&g->m));
    ASSERT_NE(ns, 0u);
    atomic_store(holder_ns(&g->m), ns ^ 1u);
    ASSERT_ERR(shml_mutex_lock(&g->m, 300 * MS), -ETIMEDOUT);
    struct shml_mutex_state st;
    ASSERT_OK(shml_mutex_inspect(&g->m, &st));
    ASSERT_EQ(st.state, SHML_MUTEX_HELD);
    /* Back in this namespace, the holder is judged gone. */
    atomic_store(holder_ns(&g->m), ns);
    expect_taken_over(g, 5 * SEC);
    ASSERT_OK(shml_segment_close(seg));
}
