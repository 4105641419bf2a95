/*
 * bench_sync.c - what shmlink's synchronisation costs, next to what the machine can do.
 *
 * One program measures, in the same run and through the same shared mapping, each shmlink
 * primitive and the raw mechanism it is built on, so their ratio means something even on a
 * noisy machine:
 *
 *   ping-pong round trip between two processes pinned to two cores
 *     raw futex       two futex words, FUTEX_WAIT / FUTEX_WAKE (shared, not private)
 *     shml_event      blocking mode (spin 0): the target is <= 1.1x the raw futex
 *     raw spin        two words polled with C11 acquire loads, written with release stores
 *     shml_event      spin mode (spin budget 1000000): the target is <= 1.2x the raw spin
 *     diagnostics     the raw spin with one of the two things the spin-mode event does
 *                     differently: a pause instruction in the poll, and a seq_cst
 *                     read-modify-write plus a waiter-count load as the post; both; and
 *                     the same handshake with a store and a fence instead of the RMW
 *   uncontended lock + unlock in one thread (target: shml_mutex <= 30 ns)
 *     shml_mutex, pthread_mutex_t (default: not robust, not shared), a robust process-shared
 *     pthread_mutex_t (the mechanism under shml_mutex, to tell its cost from the wrapper's),
 *     and an atomic-exchange spinlock
 *   contended hand-off: two processes each lock, increment a shared counter, unlock, in a loop
 *     shml_mutex, and a process-shared pthread_mutex_t (not robust) for reference
 *
 * Method. Repetitions are interleaved: repetition r runs every benchmark once before
 * repetition r+1 starts, so a slow minute of a shared machine hurts all of them alike instead
 * of one. Each ping-pong repetition starts with untimed warm-up round trips, then times
 * batches of --batch round trips (two clock reads per batch, so the clock's cost is spread
 * over the batch); the median and p99 are taken over all batches of all repetitions. The same
 * goes for the uncontended locks with batches of 1000 pairs. A contended repetition is timed
 * whole (wall time over the locks of both processes), so its median and p99 are over
 * repetitions. The targets are ratios of those medians; each is followed by the same ratio
 * taken repetition by repetition (median and range), which a machine that changes between
 * repetitions disturbs less.
 *
 * The peer process is forked for each repetition, pinned with sched_setaffinity() to the
 * second CPU (the parent is on the first), and dies with the parent (PR_SET_PDEATHSIG). Every
 * wait is bounded (WAIT_LIMIT_NS), without reading the clock in a round trip that completes:
 * a lost wake-up shows as an error, never as a hang. The contended locks wait without a bound,
 * as the pthread reference does, and an alarm bounds each contended repetition instead. The
 * shared bytes are a memfd: segment, which vanishes with the processes: nothing is left in
 * /dev/shm whatever happens.
 *
 * The interleaved loop, the pooled samples, the statistics and the options both C benchmarks
 * take are the generic runner's (runner.h); this file holds the cases and the report.
 *
 * Usage: bench_sync [--quick] [--rounds N] [--reps N] [--batch N] [--lock-pairs N]
 *                   [--cpus A,B] [--only TEXT,...]
 * Exit status: 0 when every benchmark ran (targets missed or not: this is a measurement, not a
 * test), 1 when one failed (a timeout, a wrong count, a failed call), 2 for a usage error.
 */
#include <shmlink.h>

#include "bench_util.h"
#include "runner.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* No single wait in a benchmark may take longer than this: past it, the run has failed. */
#define WAIT_LIMIT_NS ((int64_t)10 * 1000000000)
#define WAIT_LIMIT_S (WAIT_LIMIT_NS / 1000000000) /* the futex waits' bound, per sleep */
/* Uncontended lock pairs per timed batch. */
#define LOCK_BATCH 1000
/* The spin budget of shml_event in spin mode: the largest the API accepts. */
#define EVENT_SPIN 1000000u

/* ---- options ---- */

struct opts {
    long rounds;     /* ping-pong round trips (and contended iterations per process) per rep */
    long reps;       /* repetitions of every benchmark */
    long batch;      /* round trips per timed batch */
    long lock_pairs; /* uncontended lock+unlock pairs per repetition */
    int cpu[2];      /* the parent's and the peer's CPU; -1: not pinned */
    bool quick;
    const char *only; /* TEXT[,TEXT...]: run only the benchmarks whose name contains one */
};

/* ---- the shared mapping ---- */

/*
 * Everything both processes touch. Each word one process writes and the other polls sits on
 * its own 128-byte slot (two cache lines, because adjacent-line prefetch pairs them), so the
 * benchmarks measure the hand-over of one line and not false sharing.
 */
struct shared {
    alignas(128) _Atomic uint32_t ready; /* the peer is pinned and about to start */
    alignas(128) _Atomic uint32_t done;  /* the peer finished its half */
    alignas(128) _Atomic uint32_t fail;  /* the peer saw an error (its text is in why[]) */
    char why[256];
    alignas(128) _Atomic uint32_t ping; /* raw futex / raw spin: parent -> peer */
    alignas(128) _Atomic uint32_t pong; /* raw futex / raw spin: peer -> parent */
    /* Diagnostics: a word and a waiter count on one line, as in shml_event ([0] and [1]). */
    alignas(128) _Atomic uint32_t ping2[2];
    alignas(128) _Atomic uint32_t pong2[2];
    alignas(128) shml_event ev_ping;
    alignas(128) shml_event ev_pong;
    alignas(128) shml_mutex mutex;
    alignas(128) pthread_mutex_t pmutex; /* process-shared, not robust: contended reference */
    alignas(128) uint64_t counter;       /* protected by the mutex under test */
    uint32_t last_owner;                 /* 1 parent, 2 peer: who incremented last */
    uint64_t handoffs;                   /* times the lock changed process */
};

/* ---- the peer process ---- */

static _Noreturn void peer_fail(struct shared *sh, const char *what, int err)
{
    snprintf(sh->why, sizeof sh->why, "%s: %s", what, shml_strerror(err));
    /* Release: the text above is visible to a parent that sees fail != 0 (acquire). */
    atomic_store_explicit(&sh->fail, 1, memory_order_release);
    _exit(1);
}

typedef void (*peer_fn)(struct shared *sh, const struct opts *o, long rounds);

/*
 * Fork the peer, pinned to the second CPU, and wait until it runs. The peer calls fn, then
 * reports done and exits; it never closes the segment (the parent's handle owns it).
 * Returns its pid, or -1.
 */
static pid_t start_peer(struct shared *sh, const struct opts *o, peer_fn fn, long rounds)
{
    atomic_store_explicit(&sh->ready, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->done, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->fail, 0, memory_order_relaxed);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench_sync: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        bench_pin("bench_sync", o->cpu[1]);
        /* Release: pairs with the parent's acquire load of ready; nothing else to publish. */
        atomic_store_explicit(&sh->ready, 1, memory_order_release);
        fn(sh, o, rounds);
        /* Release: the peer's writes (counter, handoffs) are visible once done is seen. */
        atomic_store_explicit(&sh->done, 1, memory_order_release);
        _exit(0);
    }
    int64_t deadline = now_ns() + WAIT_LIMIT_NS;
    /* Acquire: pairs with the peer's release store of ready. */
    while (!atomic_load_explicit(&sh->ready, memory_order_acquire)) {
        if (now_ns() > deadline) {
            fprintf(stderr, "bench_sync: the peer did not start\n");
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        sched_yield();
    }
    return pid;
}

/* Wait for the peer to exit (bounded); report its failure. Returns 0 or -1. */
static int finish_peer(struct shared *sh, pid_t pid, const char *bench)
{
    int64_t deadline = now_ns() + WAIT_LIMIT_NS;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "bench_sync: %s: waitpid: %s\n", bench, strerror(errno));
            return -1;
        }
        if (now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "bench_sync: %s: the peer did not finish in time (killed)\n", bench);
            return -1;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* Acquire: pairs with peer_fail()'s release store, so why[] is complete. */
    if (atomic_load_explicit(&sh->fail, memory_order_acquire)) {
        fprintf(stderr, "bench_sync: %s: peer: %s\n", bench, sh->why);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_sync: %s: the peer ended abnormally (status 0x%x)\n", bench,
                status);
        return -1;
    }
    return 0;
}

/* ---- raw futex ping-pong ---- */

static void futex_post(_Atomic uint32_t *word, uint32_t val)
{
    /* Release: pairs with the acquire load in bench_futex_wait() of the other process. */
    atomic_store_explicit(word, val, memory_order_release);
    /* Always a wake: the classic raw futex ping-pong keeps no waiter count. */
    futex(word, FUTEX_WAKE, 1, NULL);
}

static void peer_futex(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    for (long i = 1; i <= rounds; i++) {
        int rc = bench_futex_wait(&sh->ping, (uint32_t)i, WAIT_LIMIT_S);
        if (rc < 0)
            peer_fail(sh, "raw futex wait", rc);
        futex_post(&sh->pong, (uint32_t)i);
    }
}

static int round_futex(struct shared *sh, uint32_t i)
{
    futex_post(&sh->ping, i);
    return bench_futex_wait(&sh->pong, i, WAIT_LIMIT_S);
}

/* ---- raw spin ping-pong ---- */

static void spin_post(_Atomic uint32_t *word, uint32_t val)
{
    /* Release: pairs with the acquire load in bench_spin_wait() of the other process. */
    atomic_store_explicit(word, val, memory_order_release);
}

static void peer_spin(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    for (long i = 1; i <= rounds; i++) {
        int rc = bench_spin_wait(&sh->ping, (uint32_t)i, WAIT_LIMIT_NS);
        if (rc < 0)
            peer_fail(sh, "raw spin wait", rc);
        spin_post(&sh->pong, (uint32_t)i);
    }
}

static int round_spin(struct shared *sh, uint32_t i)
{
    spin_post(&sh->ping, i);
    return bench_spin_wait(&sh->pong, i, WAIT_LIMIT_NS);
}

/*
 * Diagnostics: the raw spin ping-pong with one of the two things a spin-mode shml_event does
 * differently, so the table shows where a gap between the two comes from.
 *
 * "pause": the poll runs the CPU's pause instruction (cpu_relax()) before each load, as the
 * library's spin loop does (shml__os_cpu_relax), which saves power and the sibling
 * hyperthread's time but can see a change later.
 */
static void peer_spin_pause(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    for (long i = 1; i <= rounds; i++) {
        if (bench_spin_wait_pause(&sh->ping, (uint32_t)i, WAIT_LIMIT_NS) < 0)
            peer_fail(sh, "raw spin wait", -ETIMEDOUT);
        spin_post(&sh->pong, (uint32_t)i);
    }
}

static int round_spin_pause(struct shared *sh, uint32_t i)
{
    spin_post(&sh->ping, i);
    return bench_spin_wait_pause(&sh->pong, i, WAIT_LIMIT_NS);
}

/*
 * "RMW post": the post is a seq_cst fetch-add of the word followed by a seq_cst load of a
 * waiter count on the same line, as shml_event_notify() does (the Dekker handshake that
 * lets it skip the wake-up call). A locked RMW waits for the line in exclusive state and
 * drains the store buffer, where a plain release store would retire at once.
 */
static void rmw_post(_Atomic uint32_t *w)
{
    /* seq_cst: the waker's half of the handshake, as in the library (orders the RMW before
       the load of the waiter count); also releases to the acquire load of the poller. */
    atomic_fetch_add_explicit(&w[0], 1, memory_order_seq_cst);
    if (atomic_load_explicit(&w[1], memory_order_seq_cst) != 0)
        futex(&w[0], FUTEX_WAKE, 1, NULL); /* never: nobody sleeps in this benchmark */
}

static void peer_spin_rmw(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    for (long i = 1; i <= rounds; i++) {
        if (bench_spin_wait(&sh->ping2[0], (uint32_t)i, WAIT_LIMIT_NS) < 0)
            peer_fail(sh, "raw spin wait", -ETIMEDOUT);
        rmw_post(sh->pong2);
    }
}

static int round_spin_rmw(struct shared *sh, uint32_t i)
{
    rmw_post(sh->ping2);
    return bench_spin_wait(&sh->pong2[0], i, WAIT_LIMIT_NS);
}

/*
 * "fence post": the same handshake without a locked instruction: a release store of the
 * next value, a seq_cst fence (the StoreLoad barrier the handshake needs), then the load of
 * the waiter count. Correct only with one poster per word (no increment), so it is not a
 * drop-in for shml_event_notify(); it shows whether the cost is the ordering or the lock.
 */
static void fence_post(_Atomic uint32_t *w, uint32_t val)
{
    /* Release: pairs with the poller's acquire load of the word. */
    atomic_store_explicit(&w[0], val, memory_order_release);
    /* seq_cst fence: orders the store above before the load below (StoreLoad), the waker's
       half of the handshake, as the RMW does in rmw_post(). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&w[1], memory_order_relaxed) != 0)
        futex(&w[0], FUTEX_WAKE, 1, NULL); /* never: nobody sleeps in this benchmark */
}

static void peer_spin_fence(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    for (long i = 1; i <= rounds; i++) {
        if (bench_spin_wait(&sh->ping2[0], (uint32_t)i, WAIT_LIMIT_NS) < 0)
            peer_fail(sh, "raw spin wait", -ETIMEDOUT);
        fence_post(sh->pong2, (uint32_t)i);
    }
}

static int round_spin_fence(struct shared *sh, uint32_t i)
{
    fence_post(sh->ping2, i);
    return bench_spin_wait(&sh->pong2[0], i, WAIT_LIMIT_NS);
}

/* Both: what a spin-mode shml_event does, minus the library's calls and checks. */
static void peer_spin_both(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    for (long i = 1; i <= rounds; i++) {
        if (bench_spin_wait_pause(&sh->ping2[0], (uint32_t)i, WAIT_LIMIT_NS) < 0)
            peer_fail(sh, "raw spin wait", -ETIMEDOUT);
        rmw_post(sh->pong2);
    }
}

static int round_spin_both(struct shared *sh, uint32_t i)
{
    rmw_post(sh->ping2);
    return bench_spin_wait_pause(&sh->pong2[0], i, WAIT_LIMIT_NS);
}

/* ---- shml_event ping-pong (blocking and spin modes: the spin budget is in the events) ---- */

/*
 * The peer waits for ev_ping to move past the generation it has seen, then notifies ev_pong.
 * Both events start at generation 0 (initialised before the fork) and move once per round,
 * so `seen` is simply the previous round's value; no notify can be lost, because a wait
 * returns at once when the generation already differs from `seen`.
 */
static void peer_event(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    uint32_t seen = 0;
    for (long i = 1; i <= rounds; i++) {
        int rc = shml_event_wait(&sh->ev_ping, seen, WAIT_LIMIT_NS);
        if (rc < 0)
            peer_fail(sh, "shml_event_wait", rc);
        seen = shml_event_read(&sh->ev_ping);
        rc = shml_event_notify(&sh->ev_pong, SHML_WAKE_ONE);
        if (rc < 0)
            peer_fail(sh, "shml_event_notify", rc);
    }
}

static int round_event(struct shared *sh, uint32_t i)
{
    (void)i;
    /* Read the generation to wait past before notifying, or the answer could come first. */
    uint32_t seen = shml_event_read(&sh->ev_pong);
    int rc = shml_event_notify(&sh->ev_ping, SHML_WAKE_ONE);
    if (rc < 0)
        return rc;
    return shml_event_wait(&sh->ev_pong, seen, WAIT_LIMIT_NS);
}

/* ---- one ping-pong repetition ---- */

typedef int (*setup_fn)(struct shared *sh);
typedef int (*round_fn)(struct shared *sh, uint32_t i);

static int setup_words(struct shared *sh)
{
    atomic_store_explicit(&sh->ping, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->pong, 0, memory_order_relaxed);
    for (int k = 0; k < 2; k++) {
        atomic_store_explicit(&sh->ping2[k], 0, memory_order_relaxed);
        atomic_store_explicit(&sh->pong2[k], 0, memory_order_relaxed);
    }
    return 0;
}

static int setup_events(struct shared *sh, uint32_t spin)
{
    int rc = shml_event_init(&sh->ev_ping);
    if (rc >= 0)
        rc = shml_event_init(&sh->ev_pong);
    if (rc >= 0)
        rc = shml_event_set_spin(&sh->ev_ping, spin);
    if (rc >= 0)
        rc = shml_event_set_spin(&sh->ev_pong, spin);
    return rc;
}

static int setup_event_block(struct shared *sh)
{
    return setup_events(sh, 0);
}

static int setup_event_spin(struct shared *sh)
{
    return setup_events(sh, EVENT_SPIN);
}

struct pingpong {
    const char *name;
    setup_fn setup;
    peer_fn peer;
    round_fn round;
};

/* The order matters: main() takes the ratios of PP_* entries. */
enum { PP_FUTEX, PP_EVENT_BLOCK, PP_SPIN, PP_EVENT_SPIN, PP_DIAG };
static const struct pingpong pingpongs[] = {
    {"raw futex ping-pong", setup_words, peer_futex, round_futex},
    {"shml_event, blocking (spin 0)", setup_event_block, peer_event, round_event},
    {"raw spin ping-pong", setup_words, peer_spin, round_spin},
    {"shml_event, spin 1000000", setup_event_spin, peer_event, round_event},
    {"  diag: raw spin + pause in poll", setup_words, peer_spin_pause, round_spin_pause},
    {"  diag: raw spin + RMW post", setup_words, peer_spin_rmw, round_spin_rmw},
    {"  diag: raw spin + both", setup_words, peer_spin_both, round_spin_both},
    {"  diag: raw spin + fence post", setup_words, peer_spin_fence, round_spin_fence},
};
#define N_PINGPONG (sizeof pingpongs / sizeof pingpongs[0])

/*
 * One repetition: warm-up round trips, then rounds/batch timed batches, each adding its mean
 * round trip to `s`. The peer runs warm-up + timed rounds in one go.
 */
static int run_pingpong(struct shared *sh, const struct opts *o, const struct pingpong *pp,
                        struct bench_series *s)
{
    long batches = o->rounds / o->batch;
    if (batches < 1)
        batches = 1;
    long warm = o->rounds / 10 < 1000 ? o->rounds / 10 : 1000;
    long total = warm + batches * o->batch;
    int rc = pp->setup(sh);
    if (rc < 0) {
        fprintf(stderr, "bench_sync: %s: setup: %s\n", pp->name, shml_strerror(rc));
        return -1;
    }
    pid_t pid = start_peer(sh, o, pp->peer, total);
    if (pid < 0)
        return -1;
    uint32_t i = 0;
    for (long w = 0; w < warm && rc >= 0; w++)
        rc = pp->round(sh, ++i);
    for (long b = 0; b < batches && rc >= 0; b++) {
        int64_t t0 = now_ns();
        for (long k = 0; k < o->batch && rc >= 0; k++)
            rc = pp->round(sh, ++i);
        int64_t t1 = now_ns();
        if (rc >= 0 && bench_series_add(s, (double)(t1 - t0) / (double)o->batch) < 0)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        fprintf(stderr, "bench_sync: %s: round %" PRIu32 ": %s\n", pp->name, i,
                shml_strerror(rc));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return finish_peer(sh, pid, pp->name);
}

/* ---- uncontended lock + unlock, one thread ---- */

struct locker {
    const char *name;
    int (*setup)(struct shared *sh);
    int (*pair)(struct shared *sh); /* one lock + unlock; < 0 on failure */
};

static int setup_shml(struct shared *sh)
{
    return shml_mutex_init(&sh->mutex);
}

static int pair_shml(struct shared *sh)
{
    int rc = shml_mutex_lock(&sh->mutex, SHML_FOREVER);
    if (rc < 0)
        return rc;
    return shml_mutex_unlock(&sh->mutex);
}

/* Process-local references: they live in this process's memory, not in the mapping. */
static pthread_mutex_t local_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t robust_mutex;
static alignas(128) _Atomic uint32_t spinlock;

static int setup_none(struct shared *sh)
{
    (void)sh;
    return 0;
}

static int pair_pthread(struct shared *sh)
{
    (void)sh;
    int rc = pthread_mutex_lock(&local_mutex);
    if (rc != 0)
        return -rc;
    return -pthread_mutex_unlock(&local_mutex);
}

/*
 * A robust process-shared mutex, what shml_mutex is made of on Linux. It sits in this
 * process's memory: those attributes choose glibc's code path, not where the bytes are, and
 * one thread pays the same either way. Initialised once.
 */
static bool robust_ready;

static int setup_robust(struct shared *sh)
{
    (void)sh;
    if (robust_ready)
        return 0;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&robust_mutex, &a);
    pthread_mutexattr_destroy(&a);
    robust_ready = rc == 0;
    return -rc;
}

static int pair_robust(struct shared *sh)
{
    (void)sh;
    int rc = pthread_mutex_lock(&robust_mutex);
    if (rc != 0)
        return -rc;
    return -pthread_mutex_unlock(&robust_mutex);
}

static int pair_spin(struct shared *sh)
{
    (void)sh;
    /* Acquire: pairs with the release store below (of the previous pair); a real lock's
     * critical section would be ordered after it. */
    while (atomic_exchange_explicit(&spinlock, 1, memory_order_acquire) != 0)
        ;
    /* Release: orders the (empty) critical section before the next acquirer's exchange. */
    atomic_store_explicit(&spinlock, 0, memory_order_release);
    return 0;
}

static const struct locker lockers[] = {
    {"shml_mutex", setup_shml, pair_shml},
    {"pthread_mutex_t (default)", setup_none, pair_pthread},
    {"pthread robust pshared", setup_robust, pair_robust},
    {"atomic xchg spinlock", setup_none, pair_spin},
};
#define N_LOCKER (sizeof lockers / sizeof lockers[0])

static int run_uncontended(struct shared *sh, const struct opts *o, const struct locker *l,
                           struct bench_series *s)
{
    int rc = l->setup(sh);
    if (rc < 0) {
        fprintf(stderr, "bench_sync: %s: init: %s\n", l->name, shml_strerror(rc));
        return -1;
    }
    long batches = o->lock_pairs / LOCK_BATCH;
    if (batches < 1)
        batches = 1;
    for (long w = 0; w < LOCK_BATCH && rc >= 0; w++)
        rc = l->pair(sh);
    for (long b = 0; b < batches && rc >= 0; b++) {
        int64_t t0 = now_ns();
        for (long k = 0; k < LOCK_BATCH && rc >= 0; k++)
            rc = l->pair(sh);
        int64_t t1 = now_ns();
        if (rc >= 0 && bench_series_add(s, (double)(t1 - t0) / LOCK_BATCH) < 0)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        fprintf(stderr, "bench_sync: %s: lock/unlock: %s\n", l->name, shml_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- contended hand-off between two processes ---- */

/*
 * Both processes run `rounds` iterations of lock, increment, unlock. The counter and the
 * hand-off count are plain fields: the mutex under test is what orders them, and the final
 * count checks that it did.
 */
static int contend_shml(struct shared *sh, long rounds, uint32_t me)
{
    for (long i = 0; i < rounds; i++) {
        /* SHML_FOREVER, the call the reference's pthread_mutex_lock() matches (a timed lock
           reads the clock); an alarm bounds the whole repetition instead (contended_alarm()). */
        int rc = shml_mutex_lock(&sh->mutex, SHML_FOREVER);
        if (rc < 0)
            return rc;
        sh->counter++;
        if (sh->last_owner != me) {
            sh->handoffs++;
            sh->last_owner = me;
        }
        rc = shml_mutex_unlock(&sh->mutex);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int contend_pthread(struct shared *sh, long rounds, uint32_t me)
{
    for (long i = 0; i < rounds; i++) {
        int rc = pthread_mutex_lock(&sh->pmutex);
        if (rc != 0)
            return -rc;
        sh->counter++;
        if (sh->last_owner != me) {
            sh->handoffs++;
            sh->last_owner = me;
        }
        rc = pthread_mutex_unlock(&sh->pmutex);
        if (rc != 0)
            return -rc;
    }
    return 0;
}

static void peer_contend_shml(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    int rc = contend_shml(sh, rounds, 2);
    if (rc < 0)
        peer_fail(sh, "shml_mutex", rc);
}

static void peer_contend_pthread(struct shared *sh, const struct opts *o, long rounds)
{
    (void)o;
    int rc = contend_pthread(sh, rounds, 2);
    if (rc < 0)
        peer_fail(sh, "pthread_mutex", rc);
}

struct contender {
    const char *name;
    int (*setup)(struct shared *sh);
    peer_fn peer;
    int (*run)(struct shared *sh, long rounds, uint32_t me);
};

static int setup_pshared(struct shared *sh)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int rc = pthread_mutex_init(&sh->pmutex, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

static const struct contender contenders[] = {
    {"shml_mutex", setup_shml, peer_contend_shml, contend_shml},
    {"pthread pshared (not robust)", setup_pshared, peer_contend_pthread, contend_pthread},
};
#define N_CONTENDER (sizeof contenders / sizeof contenders[0])

static int run_contended_rep(struct shared *sh, const struct opts *o, const struct contender *c,
                             struct bench_series *s)
{
    int rc = c->setup(sh);
    if (rc < 0) {
        fprintf(stderr, "bench_sync: contended %s: init: %s\n", c->name, shml_strerror(rc));
        return -1;
    }
    sh->counter = 0;
    sh->handoffs = 0;
    sh->last_owner = 0;
    pid_t pid = start_peer(sh, o, c->peer, o->rounds);
    if (pid < 0)
        return -1;
    /* The peer is running from here: time from its start, so both halves are inside. */
    int64_t t0 = now_ns();
    rc = c->run(sh, o->rounds, 1);
    if (rc < 0) {
        fprintf(stderr, "bench_sync: contended %s: %s\n", c->name, shml_strerror(rc));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    int64_t deadline = now_ns() + WAIT_LIMIT_NS;
    /* Acquire: pairs with the peer's release store of done: its increments are visible. */
    while (!atomic_load_explicit(&sh->done, memory_order_acquire) &&
           !atomic_load_explicit(&sh->fail, memory_order_acquire) && now_ns() < deadline)
        ;
    int64_t t1 = now_ns();
    if (finish_peer(sh, pid, c->name) < 0)
        return -1;
    if (sh->counter != 2 * (uint64_t)o->rounds) {
        fprintf(stderr, "bench_sync: contended %s: counter %" PRIu64 ", expected %ld: the lock "
                "did not exclude\n", c->name, sh->counter, 2 * o->rounds);
        return -1;
    }
    double secs = (double)(t1 - t0) / 1e9;
    if (bench_series_add(s, (double)(t1 - t0) / (double)(2 * o->rounds)) < 0)
        return -1;
    s->extra += (double)sh->handoffs / secs;
    return 0;
}

/* The watchdog of a contended repetition: the locks there wait without a bound. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "bench_sync: a contended repetition hangs: a lost wake-up?\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to say */
    }
    _exit(1); /* the peer dies with us (PR_SET_PDEATHSIG) */
}

/* The bound of a contended repetition: far more than one needs (about 1 us per lock even on a
   loaded machine). */
static unsigned contended_alarm(const struct opts *o)
{
    return 60 + (unsigned)(o->rounds / 10000);
}

/* ---- the cases, as the runner calls them ---- */

struct sync_env {
    struct shared *sh;
    const struct opts *o;
};

static int run_pingpong_case(void *ctx, size_t i, struct bench_series *s)
{
    struct sync_env *e = ctx;
    return run_pingpong(e->sh, e->o, &pingpongs[i], s);
}

static int run_uncontended_case(void *ctx, size_t i, struct bench_series *s)
{
    struct sync_env *e = ctx;
    return run_uncontended(e->sh, e->o, &lockers[i], s);
}

static int run_contended_case(void *ctx, size_t i, struct bench_series *s)
{
    struct sync_env *e = ctx;
    return run_contended_rep(e->sh, e->o, &contenders[i], s);
}

/* ---- report ---- */

static double median_of(const struct bench_series *s)
{
    return bench_median(s->v, s->n);
}

static void print_row(const struct bench_series *s, const char *unit, const char *note)
{
    if (!s->failed && s->n == 0)
        return; /* not selected (--only) */
    if (s->failed) {
        printf("  %-32s %10s %10s %8s  %s\n", s->name, "failed", "-", "-", unit);
        return;
    }
    printf("  %-32s %10.1f %10.1f %8zu  %s%s\n", s->name, median_of(s), bench_pct(s->v, s->n, 99),
           s->n, unit, note ? note : "");
}

static const char *verdict(double value, double target)
{
    return value <= target ? "met" : "MISSED";
}

static void print_machine(const struct opts *o)
{
    bench_print_system("bench_sync");
    if (o->cpu[0] >= 0)
        printf("processes pinned to CPUs %d and %d; ", o->cpu[0], o->cpu[1]);
    else
        printf("processes NOT pinned (fewer than 2 CPUs allowed); ");
    printf("%ld repetitions (interleaved), %ld round trips each in batches of %ld, %ld lock "
           "pairs in batches of %d%s\n\n",
           o->reps, o->rounds, o->batch, o->lock_pairs, LOCK_BATCH,
           o->quick ? " (--quick: a smoke run, numbers mean little)" : "");
}

/* ---- options ---- */

static const char usage_text[] =
    "usage: bench_sync [--quick] [--rounds N] [--reps N] [--batch N] [--lock-pairs N] "
    "[--cpus A,B] [--only TEXT,...]\n"
    "  --quick         a short smoke run (checks that everything runs)\n"
    "  --rounds N      ping-pong round trips per repetition, and contended iterations\n"
    "                  per process (default 50000)\n"
    "  --reps N        repetitions of every benchmark, interleaved (default 7)\n"
    "  --batch N       round trips per timed batch (default 100)\n"
    "  --lock-pairs N  uncontended lock+unlock pairs per repetition (default 2000000)\n"
    "  --cpus A,B      the CPUs of the two processes (default: the first two allowed)\n"
    "  --only TEXT,... run only the benchmarks whose name contains one of the TEXTs\n";

static void quick_opts(void *arg)
{
    struct opts *o = arg;
    o->rounds = 2000;
    o->reps = 2;
    o->lock_pairs = 20000;
}

static const struct bench_num_opt nums[] = {
    {"--rounds", offsetof(struct opts, rounds), 1},
    {"--reps", offsetof(struct opts, reps), 1},
    {"--batch", offsetof(struct opts, batch), 1},
    {"--lock-pairs", offsetof(struct opts, lock_pairs), 1},
};

static const struct bench_cli cli = {
    .prog = "bench_sync",
    .usage_text = usage_text,
    .nums = nums,
    .n_nums = sizeof nums / sizeof nums[0],
    .quick = quick_opts,
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){50000, 7, 100, 2000000, {-1, -1}, false, NULL};
    bench_parse_cli(&cli, o, argc, argv, &o->quick, o->cpu, &o->only);
    if (o->batch > o->rounds)
        o->batch = o->rounds;
    if (o->rounds > (long)UINT32_MAX / 2)
        bench_usage(&cli, "--rounds too large");
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    print_machine(&o);

    /*
     * memfd: the bytes are shared with the forked peers by inheritance and vanish with the
     * last process, so a killed benchmark leaves nothing behind.
     */
    shml_segment *seg = NULL;
    int rc = shml_segment_create("memfd:shml-bench-sync", sizeof(struct shared), NULL, &seg);
    if (rc < 0) {
        fprintf(stderr, "bench_sync: create memfd:shml-bench-sync: %s (%s)\n", shml_strerror(rc),
                shml_last_error());
        return 1;
    }
    struct sync_env env = {shml_segment_data(seg), &o};
    bench_pin("bench_sync", o.cpu[0]);

    struct bench_series pp[N_PINGPONG], lk[N_LOCKER], ct[N_CONTENDER];
    bool oom = false;
    for (size_t b = 0; b < N_PINGPONG; b++)
        oom |= bench_series_init(&pp[b], pingpongs[b].name, o.reps) < 0;
    for (size_t b = 0; b < N_LOCKER; b++)
        oom |= bench_series_init(&lk[b], lockers[b].name, o.reps) < 0;
    for (size_t b = 0; b < N_CONTENDER; b++)
        oom |= bench_series_init(&ct[b], contenders[b].name, o.reps) < 0;
    if (oom) {
        fprintf(stderr, "bench_sync: out of memory\n");
        return 1;
    }

    signal(SIGALRM, on_alarm);
    const struct bench_group groups[] = {
        {pp, N_PINGPONG, run_pingpong_case, &env, 0},
        {lk, N_LOCKER, run_uncontended_case, &env, 0},
        {ct, N_CONTENDER, run_contended_case, &env, contended_alarm(&o)},
    };
    bool failed = bench_run_interleaved(groups, sizeof groups / sizeof groups[0], o.reps, o.only);

    printf("  %-32s %10s %10s %8s  %s\n", "benchmark", "median", "p99", "samples", "unit");
    if (bench_any_ran(pp, N_PINGPONG))
        printf("ping-pong between two processes (round trip; samples are batches)\n");
    for (size_t b = 0; b < N_PINGPONG; b++)
        print_row(&pp[b], "ns/round trip", NULL);
    if (bench_any_ran(lk, N_LOCKER))
        printf("uncontended lock+unlock, one thread (samples are batches of %d)\n", LOCK_BATCH);
    for (size_t b = 0; b < N_LOCKER; b++)
        print_row(&lk[b], "ns/lock+unlock", NULL);
    if (bench_any_ran(ct, N_CONTENDER))
        printf("contended: 2 processes x (lock, increment, unlock) (samples are repetitions)\n");
    for (size_t b = 0; b < N_CONTENDER; b++) {
        char note[64] = "";
        if (!ct[b].failed && ct[b].n)
            snprintf(note, sizeof note, ", %.2fM hand-offs/s", ct[b].extra / (double)ct[b].n / 1e6);
        print_row(&ct[b], "ns/lock", note);
    }

    printf("\ntargets (ratios of medians from this run)\n");
    if (!pp[PP_FUTEX].failed && !pp[PP_EVENT_BLOCK].failed && pp[PP_FUTEX].n &&
        pp[PP_EVENT_BLOCK].n) {
        double x = median_of(&pp[PP_EVENT_BLOCK]) / median_of(&pp[PP_FUTEX]);
        printf("  blocking event RTT / raw futex RTT   %6.2fx   target <= 1.10x  %s\n", x,
               verdict(x, 1.10));
        bench_print_rep_ratios(&pp[PP_EVENT_BLOCK], &pp[PP_FUTEX], false);
    }
    if (!pp[PP_SPIN].failed && !pp[PP_EVENT_SPIN].failed && pp[PP_SPIN].n &&
        pp[PP_EVENT_SPIN].n) {
        double x = median_of(&pp[PP_EVENT_SPIN]) / median_of(&pp[PP_SPIN]);
        printf("  spin event RTT / raw spin RTT        %6.2fx   target <= 1.20x  %s\n", x,
               verdict(x, 1.20));
        bench_print_rep_ratios(&pp[PP_EVENT_SPIN], &pp[PP_SPIN], false);
    }
    if (!lk[0].failed && lk[0].n) {
        double x = median_of(&lk[0]);
        printf("  uncontended shml_mutex lock+unlock  %6.1f ns  target <= 30 ns   %s\n", x,
               verdict(x, 30.0));
    }

    for (size_t b = 0; b < N_PINGPONG; b++)
        bench_series_fini(&pp[b]);
    for (size_t b = 0; b < N_LOCKER; b++)
        bench_series_fini(&lk[b]);
    for (size_t b = 0; b < N_CONTENDER; b++)
        bench_series_fini(&ct[b]);
    shml_segment_close(seg);
    return failed ? 1 : 0;
}
