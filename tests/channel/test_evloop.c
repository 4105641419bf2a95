/*
 * Event loops: shml_channel_fd() and shml_waitset (channel.h). The descriptor's protocol for
 * every kind, a wait set of 1000 channels and 10 plain descriptors fed by another process,
 * producers and armed consumers killed, and the cost to a producer: no system call while no
 * consumer is armed, counted with the library's own counters (src/os/os.h, src/sync/futex.h),
 * which is why this binary links the static library.
 */
#include "chan_util.h"

#include "channel/channel.h"
#include "os/os.h"
#include "sync/futex.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    ASSERT_GE(r, 0);
    return r == 1 && (p.revents & POLLIN);
}

/* Descriptors of process `pid` in /dev/shm (.shml-fd-PID-*). */
static int notes_of(pid_t pid)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), ".shml-fd-%d-", (int)pid);
    DIR *d = opendir("/dev/shm");
    ASSERT_NOT_NULL(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static uint64_t note_calls(void)
{
    return atomic_load_explicit(&shml__note_calls, memory_order_relaxed);
}

static uint64_t wake_calls(void)
{
    return atomic_load_explicit(&shml__futex_wake_calls, memory_order_relaxed);
}

/* The consumer side of the protocol on `in` (its fd) while `out` sends: readable at first,
   not once a receive said -ETIMEDOUT, readable again after a send, and stays so until a
   receive says -ETIMEDOUT. */
static void check_rx_protocol(shml_channel *out, shml_channel *in, const char *what)
{
    shmt_log("%s", what);
    int fd = shml_channel_fd(in);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(shml_channel_fd(in), fd);
    ASSERT_TRUE(readable(fd, 0)); /* it starts readable */
    char buf[64];
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
    ASSERT_EQ(shml_send(out, "abc", 3, 0), 3);
    ASSERT_TRUE(readable(fd, 5000));
    ASSERT_TRUE(readable(fd, 0)); /* level: still */
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), 3);
    ASSERT_EQ(memcmp(buf, "abc", 3), 0);
    ASSERT_TRUE(readable(fd, 0)); /* until a receive says -ETIMEDOUT */
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
    /* Two sends, one readiness; both messages are there. */
    ASSERT_EQ(shml_send(out, "d", 1, 0), 1);
    ASSERT_EQ(shml_send(out, "e", 1, 0), 1);
    ASSERT_TRUE(readable(fd, 5000));
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), 1);
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), 1);
    ASSERT_EQ(buf[0], 'e');
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
}

TEST(evloop_queue_bus_latest_protocol)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 4096, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    check_rx_protocol(q, c, "queue consumer");
    ASSERT_EQ(notes_of(getpid()), 1);
    ASSERT_OK(shml_channel_close(c));
    ASSERT_EQ(notes_of(getpid()), 0); /* close removes it */
    ASSERT_OK(shml_channel_close(q));

    shml_channel *b = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4096, 64, 8);
    shml_channel *s = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    check_rx_protocol(b, s, "bus subscriber");
    ASSERT_OK(shml_channel_close(s));
    ASSERT_OK(shml_channel_close(b));

    shml_channel *l = chan_make(&addr, SHML_LATEST, SHML_BLOCK, 4096, 64, 8);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(r);
    ASSERT_GE(fd, 0);
    char buf[64];
    ASSERT_EQ(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT); /* nothing written yet */
    ASSERT_TRUE(!readable(fd, 0));
    ASSERT_EQ(shml_send(l, "v1", 2, 0), 2);
    ASSERT_EQ(shml_send(l, "v2", 2, 0), 2);
    ASSERT_TRUE(readable(fd, 5000));
    ASSERT_EQ(shml_recv(r, buf, sizeof buf, 0), 2);
    ASSERT_EQ(memcmp(buf, "v2", 2), 0);
    ASSERT_EQ(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
    ASSERT_OK(shml_channel_close(r));
    ASSERT_OK(shml_channel_close(l));
    ASSERT_EQ(notes_of(getpid()), 0);
}

TEST(evloop_room_and_rpc)
{
    /* A producer's descriptor: room. */
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 2 * 128, 64, 8);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(p);
    ASSERT_GE(fd, 0);
    int sent = 0;
    while (shml_send(p, "x", 1, 0) == 1)
        sent++;
    ASSERT_EQ(sent, 2);
    ASSERT_TRUE(!readable(fd, 0)); /* the failed send armed it */
    char buf[64];
    ASSERT_EQ(shml_recv(q, buf, sizeof buf, 0), 1);
    ASSERT_TRUE(readable(fd, 5000));
    ASSERT_EQ(shml_send(p, "y", 1, 0), 1);
    ASSERT_OK(shml_channel_close(p));
    ASSERT_OK(shml_channel_close(q));

    /* rpc: the server's descriptor says a request waits, the client's that its reply does. */
    shml_channel *srv = chan_make(&addr, SHML_RPC, SHML_BLOCK, 4096, 64, 8);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE);
    int sfd = shml_channel_fd(srv), cfd = shml_channel_fd(cli);
    ASSERT_GE(sfd, 0);
    ASSERT_GE(cfd, 0);
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(sfd, 0));
    ASSERT_EQ(shml_send(cli, "ping", 4, 0), 4);
    ASSERT_TRUE(readable(sfd, 5000));
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, 0), -ETIMEDOUT); /* no reply yet: armed */
    ASSERT_TRUE(!readable(cfd, 0));
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), 4);
    ASSERT_EQ(shml_send(srv, "pong", 4, 0), 4);
    ASSERT_TRUE(readable(cfd, 5000));
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, 0), 4);
    ASSERT_EQ(memcmp(buf, "pong", 4), 0);
    ASSERT_OK(shml_channel_close(cli));
    ASSERT_OK(shml_channel_close(srv));
    ASSERT_EQ(notes_of(getpid()), 0);
}

/* A producer pays no system call while no consumer is armed: not even with a consumer that
   has a descriptor, as long as it has not armed it; and one signal per arming. */
TEST(evloop_no_syscall_unarmed)
{
    const char *addr;
    shml_channel *p = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 64 * 128, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(c);
    ASSERT_GE(fd, 0);
    char buf[64];
    uint64_t notes = note_calls(), wakes = wake_calls();
    long n = chan_iters(100000, 1000);
    for (long i = 0; i < n; i++) {
        ASSERT_EQ(shml_send(p, &i, sizeof i, 0), (ssize_t)sizeof i);
        ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), (ssize_t)sizeof i);
    }
    ASSERT_EQ(note_calls() - notes, 0);
    ASSERT_EQ(wake_calls() - wakes, 0);
    /* Armed: the next send signals (the counters do count), once. */
    ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    uint64_t armed = note_calls();
    ASSERT_EQ(shml_send(p, "a", 1, 0), 1);
    uint64_t first = note_calls() - armed;
    ASSERT_GE(first, 1);
    ASSERT_TRUE(readable(fd, 5000));
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(shml_send(p, "b", 1, 0), 1);
    ASSERT_EQ(note_calls() - armed, first); /* signalled: no more calls until it re-arms */
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(p));
}

/* ---- a wait set of 1000 channels and 10 plain descriptors ---- */

#define MANY 1000
#define PIPES 10

static char many_names[MANY][96];

static void many_name(const char *base, int i, char *out, size_t cap)
{
    snprintf(out, cap, "posix:/%s.%d", base, i);
}

/* argv: base name, messages. Opens every channel as a producer, then sends message k (its
   number, 8 bytes) to channel k * 7919 % MANY, waiting for room. */
PEER(evloop_feeder)
{
    ASSERT_EQ(argc, 2);
    long n = atol(argv[1]);
    static shml_channel *chs[MANY];
    for (int i = 0; i < MANY; i++) {
        char a[128];
        many_name(argv[0], i, a, sizeof a);
        chs[i] = chan_open(a, SHML_PRODUCER, SHML_WAIT_BLOCK);
    }
    ASSERT_EQ(parent_send("ready"), 0);
    for (long k = 0; k < n; k++) {
        uint64_t v = (uint64_t)k;
        ssize_t r = shml_send(chs[(k * 7919) % MANY], &v, sizeof v, WAIT_BOUND);
        if (r != (ssize_t)sizeof v)
            shmt_fail(__FILE__, __LINE__, "send %ld: %zd %s", k, r, shml_last_error());
    }
    for (int i = 0; i < MANY; i++)
        shml_channel_close(chs[i]);
    return 0;
}

static void raise_fd_limit(int need)
{
    struct rlimit rl;
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur >= (rlim_t)need)
        return;
    if (rl.rlim_max < (rlim_t)need)
        shmt_skip("needs %d descriptors, the hard limit is %llu", need,
                  (unsigned long long)rl.rlim_max);
    rl.rlim_cur = (rlim_t)need;
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
}

TEST_TIMEOUT(evloop_waitset_1000, 120)
{
    raise_fd_limit(3 * MANY + 100); /* and the feeder inherits it */
    const char *base = shmt_posix_name();
    static shml_channel *chs[MANY];
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 4 * 128;
    o.max_msg = 64;
    o.endpoints = 4;
    o.role = SHML_CONSUMER;
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    for (int i = 0; i < MANY; i++) {
        many_name(base, i, many_names[i], sizeof many_names[i]); /* the harness sweeps base* */
        ASSERT_OK(shml_channel_create(many_names[i], &o, &chs[i]));
        ASSERT_OK(shml_waitset_add(ws, chs[i], &chs[i]));
    }
    ASSERT_EQ(shml_waitset_add(ws, chs[0], NULL), -EEXIST);
    int pipes[PIPES][2];
    for (int i = 0; i < PIPES; i++) {
        ASSERT_OK(pipe(pipes[i]));
        ASSERT_OK(shml_waitset_add_fd(ws, pipes[i][0], SHML_READABLE, &pipes[i]));
    }
    long n = chan_iters(20000, 2000);
    uint8_t *seen = calloc((size_t)n, 1);
    ASSERT_NOT_NULL(seen);
    pid_t peer = spawn_peer("evloop_feeder", base, shmt_fmt("%ld", n));
    ASSERT_OK(peer_expect(peer, "ready", 60000));
    long got = 0, pipe_writes = 0, pipe_reads = 0;
    struct shml_waitset_event ev[64];
    while (got < n) {
        int k = shml_waitset_wait(ws, ev, 64, WAIT_BOUND);
        if (k < 0)
            shmt_fail(__FILE__, __LINE__, "wait: %d (%s) after %ld of %ld", k, shml_strerror(k),
                      got, n);
        for (int j = 0; j < k; j++) {
            if (!ev[j].ch) {
                char b[16];
                ASSERT_EQ(ev[j].events, SHML_READABLE);
                ssize_t r = read(ev[j].fd, b, sizeof b);
                ASSERT_GE(r, 1);
                pipe_reads += r;
                continue;
            }
            ASSERT_TRUE(*(shml_channel **)ev[j].user == ev[j].ch);
            for (;;) {
                uint64_t v;
                ssize_t r = shml_recv(ev[j].ch, &v, sizeof v, 0);
                if (r == -ETIMEDOUT)
                    break;
                ASSERT_EQ(r, (ssize_t)sizeof v);
                ASSERT_TRUE(v < (uint64_t)n);
                ASSERT_EQ(seen[v], 0);
                ASSERT_TRUE(ev[j].ch == chs[(v * 7919) % MANY]);
                seen[v] = 1;
                if (++got % 1000 == 0) {
                    ASSERT_EQ(write(pipes[pipe_writes % PIPES][1], "p", 1), 1);
                    pipe_writes++;
                }
            }
        }
    }
    ASSERT_EQ(wait_peer(peer, 60000), 0);
    /* Every plain descriptor written to was reported and drained. */
    while (pipe_reads < pipe_writes) {
        int k = shml_waitset_wait(ws, ev, 64, WAIT_BOUND);
        ASSERT_GE(k, 1);
        for (int j = 0; j < k; j++)
            if (!ev[j].ch) {
                char b[16];
                pipe_reads += read(ev[j].fd, b, sizeof b);
            } else {
                uint64_t v;
                ASSERT_EQ(shml_recv(ev[j].ch, &v, sizeof v, 0), -ETIMEDOUT);
            }
    }
    ASSERT_EQ(pipe_reads, pipe_writes);
    /* Nothing is left, and the set goes quiet: a channel may still be reported once (a
       signal that raced its last drain: allowed, a hint), but a call finds nothing and arms
       it, and the next look sees it armed. */
    for (int quiet = 0; quiet < 4; quiet++) {
        int k = shml_waitset_wait(ws, ev, 64, 0);
        if (k == -ETIMEDOUT)
            break;
        ASSERT_TRUE(quiet < 3);
        ASSERT_GE(k, 1);
        for (int j = 0; j < k; j++) {
            uint64_t v;
            ASSERT_TRUE(ev[j].ch != NULL);
            ASSERT_EQ(shml_recv(ev[j].ch, &v, sizeof v, 0), -ETIMEDOUT);
        }
    }
    for (int i = 0; i < PIPES; i++) {
        ASSERT_OK(shml_waitset_remove_fd(ws, pipes[i][0]));
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    ASSERT_EQ(shml_waitset_remove_fd(ws, pipes[0][0]), -ENOENT);
    ASSERT_OK(shml_waitset_remove(ws, chs[1]));
    ASSERT_EQ(shml_waitset_remove(ws, chs[1]), -ENOENT);
    for (int i = 0; i < MANY; i++)
        ASSERT_OK(shml_channel_close(chs[i])); /* takes it out of the set */
    ASSERT_OK(shml_waitset_destroy(ws));
    free(seen);
    ASSERT_EQ(notes_of(getpid()), 0);
}

/* ---- deaths ---- */

/* argv: channel, mode. "claim": claim a slot and stay (killed holding it); "send": send 3
   messages and stay. */
PEER(evloop_producer)
{
    ASSERT_EQ(argc, 2);
    shml_channel *p = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_BLOCK);
    if (strcmp(argv[1], "claim") == 0) {
        void *w;
        ASSERT_OK(shml_claim(p, 8, &w, WAIT_BOUND));
    } else {
        for (int i = 0; i < 3; i++)
            ASSERT_EQ(shml_send(p, "m", 1, WAIT_BOUND), 1);
    }
    ASSERT_EQ(parent_send("done"), 0);
    shmt_sleep_ms(60000);
    return 0;
}

/* Wait on one channel in a set, draining; returns the messages received before it timed out
   (or got `want`). */
static long drain_until(shml_waitset *ws, long want, int64_t bound)
{
    long got = 0;
    struct shml_waitset_event ev[4];
    int64_t end = now_ns() + bound;
    while (got < want && now_ns() < end) {
        int k = shml_waitset_wait(ws, ev, 4, end - now_ns());
        if (k == -ETIMEDOUT)
            break;
        ASSERT_GE(k, 1);
        char b[64];
        ssize_t r;
        while ((r = shml_recv(ev[0].ch, b, sizeof b, 0)) > 0)
            got++;
        ASSERT_EQ(r, -ETIMEDOUT);
    }
    return got;
}

TEST(evloop_producer_killed)
{
    const char *addr;
    shml_channel *c = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 16 * 128, 64, 8);
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    ASSERT_OK(shml_waitset_add(ws, c, NULL));
    /* Killed after its sends: its messages arrive, then the wait times out (no hang). */
    pid_t p = spawn_peer("evloop_producer", addr, "send");
    ASSERT_OK(peer_expect(p, "done", 10000));
    ASSERT_EQ(drain_until(ws, 3, 10 * SEC), 3);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    struct shml_waitset_event ev[4];
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 100 * MS), -ETIMEDOUT);
    /* Killed holding a claim at the head: the consumer's arming found a live holder in the
       way, so the set looks again by itself and the next call finds the holder dead; what a
       new producer sends then arrives. */
    p = spawn_peer("evloop_producer", addr, "claim");
    ASSERT_OK(peer_expect(p, "done", 10000));
    char b[64];
    ASSERT_EQ(shml_recv(c, b, sizeof b, 0), -ETIMEDOUT);
    ASSERT_GE(shml_channel_fd_timeout(c), 0);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    shml_channel *q = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    ASSERT_EQ(shml_send(q, "after", 5, 0), 5);
    ASSERT_EQ(drain_until(ws, 1, 10 * SEC), 1);
    ASSERT_EQ(chan_stats(c).lost, 1);
    ASSERT_OK(shml_channel_close(q));
    ASSERT_OK(shml_waitset_destroy(ws));
    ASSERT_OK(shml_channel_close(c));
}

/* argv: channel. Arm a consumer's descriptor and stay (killed armed). */
PEER(evloop_armed)
{
    ASSERT_EQ(argc, 1);
    shml_channel *c = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_GE(shml_channel_fd(c), 0);
    char b[64];
    while (shml_recv(c, b, sizeof b, 0) > 0)
        ;
    ASSERT_EQ(parent_send("armed"), 0);
    shmt_sleep_ms(60000);
    return 0;
}

TEST_TIMEOUT(evloop_armed_consumer_killed, 120)
{
    const char *addr;
    shml_channel *p = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 1024 * 128, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char b[64];
    int rounds = (int)chan_iters(20, 4);
    for (int i = 0; i < rounds; i++) {
        pid_t k = spawn_peer("evloop_armed", addr);
        ASSERT_OK(peer_expect(k, "armed", 10000));
        ASSERT_EQ(kill_peer(k, SIGKILL), 128 + SIGKILL);
        ASSERT_EQ(notes_of(k), 1); /* left by the kill */
        /* The producer neither blocks nor keeps paying: the first send signals the dead
           endpoint once, the others make no system call. */
        uint64_t before = note_calls();
        ASSERT_EQ(shml_send(p, "x", 1, 0), 1);
        uint64_t first = note_calls();
        for (int j = 0; j < 100; j++)
            ASSERT_EQ(shml_send(p, "y", 1, 0), 1);
        ASSERT_EQ(note_calls(), first);
        /* write, on a handle opened now (and the one of the last round's endpoint closed) */
        ASSERT_TRUE(first - before >= 1 && first - before <= 3);
        for (int j = 0; j < 101; j++)
            ASSERT_EQ(shml_recv(c, b, sizeof b, 0), 1);
        /* The reclaim (a repair here; the next endpoint that needs the entry does the same)
           removes its descriptor. */
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
        ASSERT_EQ(notes_of(k), 0);
    }
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(p));
}

/* shml_gc() removes the descriptor of a dead owner whose entry nobody reclaimed (the
   channel itself was removed meanwhile), and never a live one's. */
TEST(evloop_gc_removes_dead_descriptor)
{
    const char *addr;
    shml_channel *p = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 16 * 128, 64, 8);
    pid_t k = spawn_peer("evloop_armed", addr);
    ASSERT_OK(peer_expect(k, "armed", 10000));
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_GE(shml_channel_fd(c), 0);
    ASSERT_EQ(kill_peer(k, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(notes_of(k), 1);
    ASSERT_OK(shml_gc(false, NULL, NULL));
    ASSERT_EQ(notes_of(k), 0);
    ASSERT_EQ(notes_of(getpid()), 1); /* ours, alive */
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(p));
    ASSERT_EQ(notes_of(getpid()), 0);
}

/* Wait-set edges: plain descriptors writable, timeouts, cancellation, bad arguments. */
TEST(evloop_waitset_edges)
{
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    struct shml_waitset_event ev[4];
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 10 * MS), -ETIMEDOUT);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 0, 0), -EINVAL);
    ASSERT_EQ(shml_waitset_add_fd(ws, -1, SHML_READABLE, NULL), -EINVAL);
    ASSERT_EQ(shml_waitset_add_fd(ws, 0, 0, NULL), -EINVAL);
    int pp[2];
    ASSERT_OK(pipe(pp));
    ASSERT_OK(shml_waitset_add_fd(ws, pp[1], SHML_WRITABLE, (void *)7));
    ASSERT_EQ(shml_waitset_add_fd(ws, pp[1], SHML_WRITABLE, NULL), -EEXIST);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 0), 1);
    ASSERT_TRUE(ev[0].user == (void *)7);
    ASSERT_EQ(ev[0].events, SHML_WRITABLE);
    ASSERT_EQ(ev[0].fd, pp[1]);
    ASSERT_TRUE(ev[0].ch == NULL);
    ASSERT_OK(shml_waitset_remove_fd(ws, pp[1]));
    /* A channel in one set is refused by another. */
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 16 * 128, 64, 8);
    shml_waitset *other;
    ASSERT_OK(shml_waitset_create(&other));
    ASSERT_OK(shml_waitset_add(ws, q, NULL));
    ASSERT_EQ(shml_waitset_add(other, q, NULL), -EBUSY);
    ASSERT_OK(shml_waitset_destroy(ws)); /* the channel is free again */
    ASSERT_OK(shml_waitset_add(other, q, NULL));
    /* The thread's cancellation token, fired before the wait. */
    shml_cancel *tok;
    ASSERT_OK(shml_cancel_create(&tok, 0));
    shml_cancel *was = shml_cancel_bind(tok);
    ASSERT_OK(shml_cancel_fire(tok));
    ASSERT_EQ(shml_waitset_wait(other, ev, 4, SHML_FOREVER), -ECANCELED);
    shml_cancel_bind(was);
    shml_cancel_destroy(tok);
    ASSERT_OK(shml_waitset_destroy(other));
    ASSERT_OK(shml_channel_close(q));
    close(pp[0]);
    close(pp[1]);
    ASSERT_EQ(shml_channel_fd(NULL), -EINVAL);
    ASSERT_EQ(shml_waitset_create(NULL), -EINVAL);
    ASSERT_OK(shml_waitset_destroy(NULL));
}

static void *fire_later(void *arg)
{
    shmt_sleep_ms(100);
    shml_cancel_fire(arg);
    return NULL;
}

/* A token fired while a wait set waits ends the wait at once (its wake-up is in the poll);
   after a reset the set waits normally again. */
TEST(evloop_waitset_token_during_wait)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 16 * 128, 64, 8);
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    ASSERT_OK(shml_waitset_add(ws, q, NULL));
    char b[64];
    ASSERT_EQ(shml_recv(q, b, sizeof b, 0), -ETIMEDOUT);
    shml_cancel *tok;
    ASSERT_OK(shml_cancel_create(&tok, 0));
    shml_cancel *was = shml_cancel_bind(tok);
    struct shml_waitset_event ev[4];
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 20 * MS), -ETIMEDOUT); /* makes the wake-up */
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, fire_later, tok));
    int64_t t0 = now_ns();
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, WAIT_BOUND), -ECANCELED);
    ASSERT_TRUE(now_ns() - t0 < 5 * SEC);
    ASSERT_OK(pthread_join(t, NULL));
    ASSERT_OK(shml_cancel_reset(tok));
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 50 * MS), -ETIMEDOUT);
    ASSERT_EQ(shml_send(q, "m", 1, 0), 1);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, WAIT_BOUND), 1);
    shml_cancel_bind(was);
    shml_cancel_destroy(tok);
    ASSERT_OK(shml_waitset_destroy(ws));
    ASSERT_OK(shml_channel_close(q));
}

/* An rpc client opened SHML_WAIT whose request finds no server: its descriptor is armed for
   a retry (a server's attach signals nobody), and the request goes once a server came. A
   loop that polls an armed, empty channel makes no system call. */
TEST(evloop_rpc_client_waits_for_server)
{
    const char *addr;
    shml_channel *srv = chan_make(&addr, SHML_RPC, SHML_BLOCK, 4096, 64, 8);
    ASSERT_OK(shml_channel_close(srv));
    shml_channel *cli = chan_open_flags(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE, SHML_WAIT);
    int fd = shml_channel_fd(cli);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(shml_send(cli, "q", 1, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
    int64_t t = shml_channel_fd_timeout(cli);
    ASSERT_TRUE(t >= 0 && t <= 100 * MS);
    srv = chan_open(addr, SHML_SERVER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(shml_send(cli, "q", 1, 0), 1);
    char b[8];
    ASSERT_EQ(shml_recv(srv, b, sizeof b, 0), 1);
    ASSERT_EQ(shml_send(srv, "r", 1, 0), 1);
    ASSERT_EQ(shml_recv(cli, b, sizeof b, 0), 1);
    ASSERT_OK(shml_channel_close(cli));
    /* Polling an armed, empty queue: no system call after the arming. */
    int sfd = shml_channel_fd(srv);
    ASSERT_GE(sfd, 0);
    ASSERT_EQ(shml_recv(srv, b, sizeof b, 0), -ETIMEDOUT);
    uint64_t calls = note_calls();
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ(shml_recv(srv, b, sizeof b, 0), -ETIMEDOUT);
    ASSERT_EQ(note_calls(), calls);
    ASSERT_OK(shml_channel_close(srv));
}

/* A peer that can write the channel names the notifiers wakers signal (an entry's pid and
   note_id): it can make them signal /dev/shm/.shml-fd-PID-ID FIFOs, never write into a
   regular file of that name, nor follow a symbolic link of that name elsewhere. */
TEST(evloop_hostile_notifier_names)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 16 * 128, 64, 8);
    struct shml_chan_hdr *h = shml_segment_data(shml_channel_segment(q));
    struct shml_chan_ep *e = (struct shml_chan_ep *)((char *)h + h->ep_off + 5 * SHML_EP_SIZE);
    char file[96], link[96], target[256];
    snprintf(file, sizeof file, "/dev/shm/.shml-fd-%d-00000000deadbee1", (int)getpid());
    snprintf(link, sizeof link, "/dev/shm/.shml-fd-%d-00000000deadbee2", (int)getpid());
    snprintf(target, sizeof target, "%s/target", shmt_tmpdir());
    shmt_cleanup_path(file);
    shmt_cleanup_path(link);
    FILE *f = fopen(file, "w");
    ASSERT_NOT_NULL(f);
    fputs("data", f);
    fclose(f);
    f = fopen(target, "w");
    ASSERT_NOT_NULL(f);
    fputs("orig", f);
    fclose(f);
    ASSERT_OK(symlink(target, link));
    uint64_t ids[2] = {0xdeadbee1u, 0xdeadbee2u};
    for (int k = 0; k < 2; k++) {
        /* Entry 5 "armed" by a live process (ours), naming the planted file. */
        atomic_store(&e->state, shml_ep_state(0, (uint32_t)getpid(), 1));
        atomic_store(&e->note_id, ids[k]);
        atomic_store(&e->notify, shml_note_set(0, SHML_NOTE_RX, SHML_NOTE_ARMED));
        atomic_store(&h->not_empty.armed, 1);
        ASSERT_EQ(shml_send(q, "m", 1, 0), 1);
        ASSERT_EQ(atomic_load(&h->not_empty.armed), 0); /* the waker took it as signalled */
        char b[8];
        ASSERT_EQ(shml_recv(q, b, sizeof b, 0), 1);
    }
    const char *paths[2] = {file, target}, *want[2] = {"data", "orig"};
    for (int k = 0; k < 2; k++) {
        char got[16] = {0};
        f = fopen(paths[k], "r");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(fread(got, 1, sizeof got - 1, f), 4);
        fclose(f);
        ASSERT_STR_EQ(got, want[k]);
    }
    atomic_store(&e->notify, 0);
    atomic_store(&e->note_id, 0);
    atomic_store(&e->state, 0);
    ASSERT_OK(shml_channel_close(q));
}

/* A look that finds a live producer in the way, while that producer publishes and signals
   right after it (the look loaded the slot before the message was there). */
struct late_publish {
    shml_channel *producer;
    int looks;
};

static int look_behind_then_publish(shml_channel *ch, size_t arg, void **slot, uint64_t *pos,
                                    bool *behind)
{
    (void)ch;
    (void)slot;
    (void)pos;
    struct late_publish *lp = (struct late_publish *)arg;
    if (++lp->looks == 2) {
        /* The look after the arming: the consumer is armed, so this send signals it. */
        ASSERT_EQ(shml_send(lp->producer, "m", 1, 0), 1);
        *behind = true;
    }
    return -EAGAIN;
}

/* The look after the arming finds a producer in the way (its claim), which publishes and
   signals just after: the descriptor stays readable. (It once armed a second time to start
   the retry clock, and that arming drained the signal: the loop slept with a message
   queued.) */
TEST(evloop_signal_after_a_look_behind)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 4 * 128, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(c);
    ASSERT_GE(fd, 0);
    char b[8];
    ASSERT_EQ(shml_recv(c, b, sizeof b, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
    struct late_publish lp = {p, 0};
    void *slot;
    uint64_t pos;
    ASSERT_EQ(shml__chan_wait(c, look_behind_then_publish, (size_t)&lp, &c->hdr->not_empty, 0,
                              &slot, &pos),
              -ETIMEDOUT);
    ASSERT_EQ(lp.looks, 2);
    ASSERT_TRUE(readable(fd, 0));
    ASSERT_GE(shml_channel_fd_timeout(c), 0); /* the producer in the way: look again soon */
    ASSERT_EQ(shml_recv(c, b, sizeof b, 0), 1);
    ASSERT_EQ(shml_recv(c, b, sizeof b, 0), -ETIMEDOUT);
    ASSERT_TRUE(!readable(fd, 0));
    ASSERT_OK(shml_channel_close(p));
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(q));
}

/* A subscriber that leaves lets its publishers on: its close signals a publisher armed for
   room. (That signal, given after the closing handle had released its descriptors, once
   allocated a table of peers nobody freed: the ASan build's leak check saw it.) */
TEST(evloop_subscriber_leaving_signals_publisher)
{
    const char *addr;
    shml_channel *b = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4 * 128, 64, 8);
    shml_channel *s = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(p);
    ASSERT_GE(fd, 0);
    int sent = 0;
    while (shml_send(p, "x", 1, 0) == 1)
        sent++;
    ASSERT_EQ(sent, 4); /* the subscriber read none: full, and the failed send armed */
    ASSERT_TRUE(!readable(fd, 0));
    ASSERT_OK(shml_channel_close(s));
    ASSERT_TRUE(readable(fd, 5000));
    ASSERT_EQ(shml_send(p, "y", 1, 0), 1);
    ASSERT_OK(shml_channel_close(p));
    ASSERT_OK(shml_channel_close(b));
}

struct burst {
    shml_channel *p;
    long n;
};

static void *send_bursts(void *arg)
{
    struct burst *b = arg;
    for (long i = 0; i < b->n; i++) {
        ASSERT_EQ(shml_send(b->p, &i, sizeof i, WAIT_BOUND), (ssize_t)sizeof i);
        if (i % 7 == 0)
            sched_yield();
    }
    return NULL;
}

/* "Stopping early is fine": a loop that takes one message per readiness is woken again while
   messages remain, also when the call that took it had armed the descriptor and found the
   message on its look after arming (the race where a producer publishes in between). */
TEST_TIMEOUT(evloop_one_message_per_readiness, 120)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 64 * 128, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    int fd = shml_channel_fd(c);
    ASSERT_GE(fd, 0);
    struct burst b = {p, chan_iters(200000, 5000)};
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, send_bursts, &b));
    long got = 0;
    while (got < b.n) {
        if (!readable(fd, 5000))
            shmt_fail(__FILE__, __LINE__, "not readable with %ld of %ld received, %llu queued",
                      got, b.n, (unsigned long long)chan_stats(c).queued);
        long v;
        ssize_t r = shml_recv(c, &v, sizeof v, 0);
        if (r == -ETIMEDOUT)
            continue;
        ASSERT_EQ(r, (ssize_t)sizeof v);
        ASSERT_EQ(v, got);
        got++;
    }
    ASSERT_OK(pthread_join(t, NULL));
    ASSERT_OK(shml_channel_close(p));
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(q));
}
