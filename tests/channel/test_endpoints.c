/*
 * What every kind shares: options per kind, the endpoint table (-EUSERS, a dead process's
 * entry reclaimed), shml_channel_inspect() and exact stats after known traffic,
 * shml_channel_interrupt() from a thread and from a signal handler, and
 * shml_channel_check() with and without SHML_CHECK_REPAIR on channels that a SIGKILLed
 * endpoint left behind.
 *
 * Reading of the header where it leaves room: -EINTR comes only from
 * shml_channel_interrupt(); a signal whose handler does not call it leaves the wait running.
 */
#include "chan_util.h"
#include "layout.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const uint32_t all_kinds[] = {SHML_QUEUE, SHML_BUS, SHML_LATEST, SHML_RPC};
static const char *const kind_names[] = {"?", "?", "queue", "bus", "latest", "rpc"};

static shml_segment *try_open_segment(const char *addr, int want)
{
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), want);
    return seg;
}

TEST(kinds_create_and_options)
{
    for (size_t i = 0; i < 4; i++) {
        uint32_t k = all_kinds[i];
        const char *addr;
        shml_channel *ch = chan_make(&addr, k, 0, 0, 0, 0);
        struct shml_channel_stats st = chan_stats(ch);
        ASSERT_EQ(st.kind, k);
        ASSERT_EQ(st.max_msg, 4096);
        ASSERT_EQ(st.endpoints, 64);
        ASSERT_EQ(st.attached, 1);
        ASSERT_EQ(st.policy, SHML_BLOCK);
        if (k == SHML_LATEST)
            ASSERT_GE(st.slots, 4);
        else
            ASSERT_GE(st.slots, 2);
        /* Every role combination opens. */
        shml_channel *a = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
        shml_channel *b = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
        shml_channel *x = (shml_channel *)&x;
        shml_channel *c = NULL;
        if (k == SHML_RPC) {
            /* An rpc endpoint is a client or a server. */
            ASSERT_ERR(shml_channel_open(addr, SHML_CLIENT | SHML_SERVER, NULL, &x), -EINVAL);
            ASSERT_NULL(x);
            ASSERT_EQ(chan_stats(a).attached, 3);
        } else {
            c = chan_open(addr, SHML_PRODUCER | SHML_CONSUMER, SHML_WAIT_SPIN);
            ASSERT_EQ(chan_stats(a).attached, 4);
        }
        ASSERT_ERR(shml_channel_open(addr, 0, NULL, &x), -EINVAL);
        ASSERT_NULL(x);
        ASSERT_ERR(shml_channel_open(addr, 4, NULL, &x), -EINVAL);
        if (c)
            shml_channel_close(c);
        shml_channel_close(b);
        shml_channel_close(a);
        ASSERT_EQ(chan_stats(ch).attached, 1);
        shml_channel_close(ch);
        ASSERT_EQ(chan_inspect(addr).attached, 0);
    }
    /* The creator's role: opts.role, or by default both (queue, latest), publisher (bus),
       server (rpc); an rpc creator cannot be both. */
    for (size_t i = 0; i < 4; i++) {
        const char *a = chan_addr();
        struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
        o.kind = all_kinds[i];
        o.role = SHML_CONSUMER;
        shml_channel *x = NULL;
        ASSERT_OK(shml_channel_create(a, &o, &x));
        /* A consumer cannot send; an rpc server sends replies only (none asked for). */
        ASSERT_ERR(shml_send(x, "x", 1, 0), all_kinds[i] == SHML_RPC ? -EPROTO : -EBADF);
        shml_channel_close(x);
        struct shml_endpoint_stats ep[2];
        size_t n = 0;
        struct shml_channel_stats st0;
        ASSERT_OK(shml_channel_inspect(a, &st0, ep, 2, &n));
        ASSERT_EQ(n, 0);
        a = chan_addr();
        o.role = 4;
        ASSERT_ERR(shml_channel_create(a, &o, &x), -EINVAL);
        try_open_segment(a, -ENOENT);
    }
    {
        const char *a = chan_addr();
        struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
        o.kind = SHML_RPC;
        o.role = SHML_CLIENT | SHML_SERVER;
        shml_channel *x = (shml_channel *)&x;
        ASSERT_ERR(shml_channel_create(a, &o, &x), -EINVAL);
        ASSERT_NULL(x);
        try_open_segment(a, -ENOENT);
    }
    /* The table's size: 1 and 4096 are fine, 4097 is not. */
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_OVERWRITE, 0, 64, 4096);
    ASSERT_EQ(chan_stats(ch).endpoints, 4096);
    ASSERT_EQ(chan_stats(ch).policy, SHML_OVERWRITE);
    shml_channel_close(ch);
    ch = chan_make(&addr, SHML_QUEUE, 0, 0, 64, 1);
    ASSERT_EQ(chan_stats(ch).endpoints, 1);
    shml_channel_close(ch);

    struct {
        uint32_t kind, policy, flags, endpoints;
        size_t max_msg;
    } bad[] = {
        {1, 0, 0, 0, 0}, /* not a channel kind */
        {6, 0, 0, 0, 0},
        {SHML_QUEUE, SHML_OVERWRITE, 0, 0, 0}, /* overwrite is the bus's */
        {SHML_LATEST, SHML_OVERWRITE, 0, 0, 0},
        {SHML_RPC, SHML_OVERWRITE, 0, 0, 0},
        {SHML_BUS, 2, 0, 0, 0},         /* unknown policy */
        {SHML_BUS, 0, SHML_SPSC, 0, 0}, /* SPSC is the queue's */
        {SHML_LATEST, 0, SHML_SPSC, 0, 0},
        {SHML_RPC, 0, SHML_SPSC, 0, 0},
        {SHML_BUS, 0, 0x10, 0, 0}, /* unknown flag */
        {SHML_BUS, 0, 0, 4097, 0}, /* table too large */
        {SHML_LATEST, 0, 0, 5000, 0},
        {SHML_RPC, 0, 0, 0, ((size_t)1 << 30) + 1}, /* message too large */
        {SHML_BUS, 0, 0, 0, ((size_t)1 << 30) + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
        o.kind = bad[i].kind;
        o.policy = bad[i].policy;
        o.flags = bad[i].flags;
        o.endpoints = bad[i].endpoints;
        o.max_msg = bad[i].max_msg;
        const char *a = chan_addr();
        shml_channel *x = (shml_channel *)&x;
        int r = shml_channel_create(a, &o, &x);
        if (r != -EINVAL)
            shmt_fail(__FILE__, __LINE__, "bad options #%zu gave %d (%s), want -EINVAL", i, r,
                      shml_strerror(r));
        ASSERT_NULL(x);
        try_open_segment(a, -ENOENT); /* nothing left behind */
    }
}

/* ---- the endpoint table ---- */

static void table_full(uint32_t kind)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, kind, 0, 0, 64, 3);
    shml_channel *a = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *b = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *x = (shml_channel *)&x;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &x), -EUSERS);
    ASSERT_NULL(x);
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER, NULL, &x), -EUSERS);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.endpoints, 3);
    ASSERT_EQ(st.attached, 3);
    /* A closed entry is free again at once. */
    ASSERT_OK(shml_channel_close(b));
    ASSERT_EQ(chan_stats(ch).attached, 2);
    b = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &x), -EUSERS);
    /* Inspecting takes no entry. */
    ASSERT_EQ(chan_inspect(addr).attached, 3);
    shml_channel_close(a);
    shml_channel_close(b);
    shml_channel_close(ch);
    /* A table of one: the creator's. */
    ch = chan_make(&addr, kind, 0, 0, 64, 1);
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &x), -EUSERS);
    shml_channel_close(ch);
    a = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel_close(a);
}

TEST(endpoints_table_full)
{
    for (size_t i = 0; i < 4; i++)
        table_full(all_kinds[i]);
}

/*
 * argv: channel, role, action. Open with the role; then "idle": nothing; "claim": claim a
 * message and hold it; "peek": peek at one (a latest reader: the current value) and hold it;
 * "take": (rpc server) receive one request and never reply. Say "ready" and hang.
 */
PEER(ep_hold)
{
    ASSERT_EQ(argc, 3);
    shml_channel *ch = chan_open(argv[0], (unsigned)atoi(argv[1]), SHML_WAIT_BLOCK);
    if (strcmp(argv[2], "claim") == 0) {
        void *w;
        ASSERT_OK(shml_claim(ch, 10, &w, WAIT_BOUND));
        memset(w, 'C', 10);
    } else if (strcmp(argv[2], "peek") == 0) {
        ASSERT_EQ(parent_send("joined"), 0);
        const void *p;
        size_t len;
        ASSERT_OK(shml_peek(ch, &p, &len, WAIT_BOUND));
    } else if (strcmp(argv[2], "take") == 0) {
        ASSERT_EQ(parent_send("joined"), 0);
        char buf[64];
        ASSERT_OK(shml_recv(ch, buf, sizeof buf, WAIT_BOUND));
    }
    ASSERT_EQ(parent_send("ready"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

static pid_t hold(const char *addr, unsigned role, const char *action)
{
    pid_t p = spawn_peer("ep_hold", addr, shmt_fmt("%u", role), action);
    if (strcmp(action, "peek") == 0 || strcmp(action, "take") == 0)
        ASSERT_EQ(peer_expect(p, "joined", 30000), 0);
    return p;
}

static size_t endpoints_of(const char *addr, struct shml_endpoint_stats *eps, size_t cap)
{
    struct shml_channel_stats st;
    size_t n = 0;
    ASSERT_OK(shml_channel_inspect(addr, &st, eps, cap, &n));
    ASSERT_EQ(n, st.attached);
    return n;
}

static struct shml_endpoint_stats *find_pid(struct shml_endpoint_stats *eps, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (eps[i].pid == pid)
            return &eps[i];
    return NULL;
}

/* The creator's role by default. */
static uint32_t creator_role(uint32_t kind)
{
    return kind == SHML_BUS   ? SHML_PRODUCER
           : kind == SHML_RPC ? SHML_SERVER
                              : SHML_PRODUCER | SHML_CONSUMER;
}

static void dead_entry_reclaimed(uint32_t kind)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, kind, 0, 0, 64, 2);
    pid_t p = hold(addr, SHML_CONSUMER, "idle");
    ASSERT_EQ(peer_expect(p, "ready", 30000), 0);
    shml_channel *x = (shml_channel *)&x;
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER, NULL, &x), -EUSERS);
    struct shml_endpoint_stats eps[8];
    ASSERT_EQ(endpoints_of(addr, eps, 8), 2);
    struct shml_endpoint_stats *e = find_pid(eps, 2, p);
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->alive, 1);
    ASSERT_EQ(e->role, SHML_CONSUMER);
    e = find_pid(eps, 2, getpid());
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->role, creator_role(kind));
    ASSERT_EQ(e->alive, 1);
    ASSERT_NE(eps[0].index, eps[1].index);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    /* Dead, not yet reclaimed: shown as such (inspect only reads). */
    ASSERT_EQ(endpoints_of(addr, eps, 8), 2);
    e = find_pid(eps, 2, p);
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->alive, 0);
    /* The next opener reclaims it. */
    x = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    ASSERT_EQ(endpoints_of(addr, eps, 8), 2);
    ASSERT_NULL(find_pid(eps, 2, p));
    for (size_t i = 0; i < 2; i++)
        ASSERT_EQ(eps[i].alive, 1);
    shml_channel_close(x);
    shml_channel_close(ch);
}

TEST_TIMEOUT(endpoints_dead_entry_reclaimed, 60)
{
    for (size_t i = 0; i < 4; i++)
        dead_entry_reclaimed(all_kinds[i]);
}

TEST(inspect_errors_and_caps)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 0, 64, 8);
    shml_channel *h[4];
    for (int i = 0; i < 4; i++)
        h[i] = chan_open(addr, i % 2 ? SHML_CONSUMER : SHML_PRODUCER, SHML_WAIT_BLOCK);
    struct shml_channel_stats st;
    struct shml_endpoint_stats eps[2];
    size_t n = 0;
    ASSERT_OK(shml_channel_inspect(addr, &st, eps, 2, &n));
    ASSERT_EQ(n, 5); /* more than cap: the count is still whole */
    ASSERT_EQ(st.attached, 5);
    ASSERT_EQ(st.endpoints, 8);
    ASSERT_OK(shml_channel_inspect(addr, &st, NULL, 0, &n));
    ASSERT_EQ(n, 5);
    ASSERT_OK(shml_channel_inspect(addr, &st, NULL, 0, NULL));
    ASSERT_ERR(shml_channel_inspect(chan_addr(), &st, NULL, 0, NULL), -ENOENT);
    shml_segment *seg;
    const char *plain = chan_addr();
    ASSERT_OK(shml_segment_create(plain, 4096, NULL, &seg));
    ASSERT_ERR(shml_channel_inspect(plain, &st, NULL, 0, NULL), -SHML_EWRONGKIND);
    shml_segment_close(seg);
    for (int i = 0; i < 4; i++)
        shml_channel_close(h[i]);
    shml_channel_close(ch);
}

/* A bridge's endpoint: marked in the table, with the counters it adds (shml_channel_count());
   the entry's next owner starts from none. */
TEST(endpoint_bridge_counters)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 0, 64, 4);
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.flags = SHML_BRIDGE;
    shml_channel *b;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &o, &b));
    ASSERT_OK(shml_channel_count(b, SHML_COUNT_RECONNECTS, 2));
    ASSERT_OK(shml_channel_count(b, SHML_COUNT_RECONNECTS, 1));
    ASSERT_OK(shml_channel_count(b, SHML_COUNT_REDELIVERED, 7));
    ASSERT_OK(shml_channel_count(b, SHML_COUNT_DROPS, 5));
    ASSERT_ERR(shml_channel_count(b, 99, 1), -EINVAL);
    ASSERT_ERR(shml_channel_count(NULL, SHML_COUNT_DROPS, 1), -EINVAL);
    struct shml_channel_stats st;
    struct shml_endpoint_stats eps[4];
    size_t n = 0;
    ASSERT_OK(shml_channel_inspect(addr, &st, eps, 4, &n));
    ASSERT_EQ(n, 2);
    for (size_t i = 0; i < n; i++) {
        bool bridge = eps[i].role == SHML_CONSUMER;
        ASSERT_EQ(eps[i].flags, bridge ? SHML_BRIDGE : 0u);
        ASSERT_EQ(eps[i].reconnects, bridge ? 3u : 0u);
        ASSERT_EQ(eps[i].redelivered, bridge ? 7u : 0u);
        ASSERT_EQ(eps[i].drops, bridge ? 5u : 0u);
    }
    ASSERT_EQ(st.drops, 5);
    uint32_t index = eps[0].role == SHML_CONSUMER ? eps[0].index : eps[1].index;
    ASSERT_OK(shml_channel_close(b));
    ASSERT_EQ(chan_stats(ch).drops, 5); /* folded into the channel's totals */
    /* The entry again, by a plain subscriber: nothing of the bridge's is left in it. */
    shml_channel *s = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_OK(shml_channel_inspect(addr, &st, eps, 4, &n));
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (eps[i].index != index)
            continue;
        found++;
        ASSERT_EQ(eps[i].flags, 0u);
        ASSERT_EQ(eps[i].reconnects, 0u);
        ASSERT_EQ(eps[i].redelivered, 0u);
    }
    ASSERT_EQ(found, 1); /* the first free entry: the bridge's */
    ASSERT_OK(shml_channel_close(s));
    ASSERT_OK(shml_channel_close(ch));
}

/* ---- exact numbers after known traffic ---- */

static struct shml_endpoint_stats *find(struct shml_endpoint_stats *eps, size_t n, uint32_t role,
                                        uint64_t messages)
{
    for (size_t i = 0; i < n; i++)
        if (eps[i].role == role && eps[i].messages == messages)
            return &eps[i];
    shmt_fail(__FILE__, __LINE__, "no endpoint of role %u with %ju messages", role,
              (uintmax_t)messages);
}

TEST(stats_exact_queue)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_QUEUE, 0, 16 * 128, 100, 0);
    shml_channel_close(ch);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[100] = {0};
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(shml_send(p, buf, 10, 0), 10);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), 10);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.sent, 5);
    ASSERT_EQ(st.received, 3);
    ASSERT_EQ(st.bytes_sent, 50);
    ASSERT_EQ(st.bytes_received, 30);
    ASSERT_EQ(st.queued, 2);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.drops, 0);
    ASSERT_EQ(st.attached, 2);
    struct shml_endpoint_stats eps[8];
    size_t n = endpoints_of(addr, eps, 8);
    ASSERT_EQ(n, 2);
    struct shml_endpoint_stats *e = find(eps, n, SHML_PRODUCER, 5);
    ASSERT_EQ(e->bytes, 50);
    ASSERT_EQ(e->pid, getpid());
    ASSERT_EQ(e->alive, 1);
    e = find(eps, n, SHML_CONSUMER, 3);
    ASSERT_EQ(e->bytes, 30);
    /* Closing folds the counters into the totals: nothing changes. */
    shml_channel_close(c);
    shml_channel_close(p);
    st = chan_inspect(addr);
    ASSERT_EQ(st.sent, 5);
    ASSERT_EQ(st.received, 3);
    ASSERT_EQ(st.bytes_sent, 50);
    ASSERT_EQ(st.bytes_received, 30);
    ASSERT_EQ(st.attached, 0);
}

TEST(stats_exact_bus)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 16 * 128, 100, 0);
    shml_channel_close(ch);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *s1 = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *s2 = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[100] = {0};
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(shml_send(p, buf, 10, 0), 10);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(shml_recv(s1, buf, sizeof buf, 0), 10);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(shml_recv(s2, buf, sizeof buf, 0), 10);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.sent, 10);
    ASSERT_EQ(st.received, 14);
    ASSERT_EQ(st.bytes_sent, 100);
    ASSERT_EQ(st.bytes_received, 140);
    ASSERT_EQ(st.queued, 6);
    ASSERT_EQ(st.drops, 0);
    ASSERT_EQ(st.lost, 0);
    struct shml_endpoint_stats eps[8];
    size_t n = endpoints_of(addr, eps, 8);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(find(eps, n, SHML_PRODUCER, 10)->bytes, 100);
    ASSERT_EQ(find(eps, n, SHML_CONSUMER, 10)->lag, 0);
    ASSERT_EQ(find(eps, n, SHML_CONSUMER, 4)->lag, 6);
    ASSERT_EQ(find(eps, n, SHML_CONSUMER, 4)->bytes, 40);
    shml_channel_close(s2);
    /* The slowest is gone: nothing queued for anyone. */
    ASSERT_EQ(chan_inspect(addr).queued, 0);
    ASSERT_EQ(chan_inspect(addr).received, 14);
    shml_channel_close(s1);
    shml_channel_close(p);
}

TEST(stats_exact_latest)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 0, 100, 0);
    shml_channel_close(ch);
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[100] = {0};
    ASSERT_EQ(shml_send(w, buf, 10, 0), 10);
    ASSERT_EQ(shml_recv(r, buf, sizeof buf, 0), 10);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(shml_send(w, buf, 10, 0), 10);
    ASSERT_EQ(shml_recv(r, buf, sizeof buf, 0), 10);
    ASSERT_EQ(shml_recv_gap(r), 3);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.sent, 5);
    ASSERT_EQ(st.received, 2);
    ASSERT_EQ(st.bytes_sent, 50);
    ASSERT_EQ(st.bytes_received, 20);
    ASSERT_EQ(st.drops, 3);
    struct shml_endpoint_stats eps[8];
    size_t n = endpoints_of(addr, eps, 8);
    struct shml_endpoint_stats *e = find(eps, n, SHML_CONSUMER, 2);
    ASSERT_EQ(e->drops, 3);
    ASSERT_EQ(e->lag, 0);
    ASSERT_EQ(shml_send(w, buf, 10, 0), 10);
    ASSERT_EQ(shml_send(w, buf, 10, 0), 10);
    n = endpoints_of(addr, eps, 8);
    ASSERT_EQ(find(eps, n, SHML_CONSUMER, 2)->lag, 2);
    ASSERT_EQ(find(eps, n, SHML_PRODUCER, 7)->bytes, 70);
    shml_channel_close(r);
    shml_channel_close(w);
}

TEST(stats_exact_rpc)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_RPC, 0, 0, 100, 0);
    shml_channel_close(ch);
    shml_channel *c = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    shml_channel *s = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    char buf[100] = {0};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(shml_send(c, buf, 10, 0), 10);
        ASSERT_EQ(shml_recv(s, buf, sizeof buf, WAIT_BOUND), 10);
        ASSERT_EQ(shml_send(s, buf, 20, 0), 20);
        ASSERT_EQ(shml_recv(c, buf, sizeof buf, WAIT_BOUND), 20);
    }
    ASSERT_EQ(shml_send(c, buf, 10, 0), 10);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.sent, 3 + 3 + 1);  /* requests and replies */
    ASSERT_EQ(st.received, 3 + 3);  /* requests taken and replies read */
    ASSERT_EQ(st.bytes_sent, 4 * 10 + 3 * 20);
    ASSERT_EQ(st.bytes_received, 3 * 10 + 3 * 20);
    ASSERT_EQ(st.queued, 1);
    ASSERT_EQ(st.lost, 0);
    struct shml_endpoint_stats eps[8];
    size_t n = endpoints_of(addr, eps, 8);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(find(eps, n, SHML_CLIENT, 4 + 3)->bytes, 4 * 10 + 3 * 20);
    ASSERT_EQ(find(eps, n, SHML_SERVER, 3 + 3)->bytes, 3 * 10 + 3 * 20);
    ASSERT_EQ(shml_recv(s, buf, sizeof buf, WAIT_BOUND), 10);
    ASSERT_EQ(shml_send(s, buf, 20, 0), 20);
    ASSERT_EQ(shml_recv(c, buf, sizeof buf, WAIT_BOUND), 20);
    st = chan_inspect(addr);
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.sent, 8);
    ASSERT_EQ(st.received, 8);
    shml_channel_close(s);
    shml_channel_close(c);
}

/* ---- interrupt ---- */

struct intr_arg {
    shml_channel *ch;
    int delay_ms;
};

static void *interrupter(void *arg)
{
    struct intr_arg *a = arg;
    shmt_sleep_ms(a->delay_ms);
    shml_channel_interrupt(a->ch);
    return NULL;
}

/* Run `op` on ch while another thread interrupts it after 100 ms: -EINTR, well in bound. */
#define EXPECT_INTERRUPTED(ch, op)                                                                 \
    do {                                                                                           \
        struct intr_arg ia_ = {(ch), 100};                                                         \
        pthread_t t_;                                                                              \
        ASSERT_EQ(pthread_create(&t_, NULL, interrupter, &ia_), 0);                                \
        int64_t t0_ = now_ns();                                                                    \
        ASSERT_ERR(op, -EINTR);                                                                    \
        ASSERT_LT(now_ns() - t0_, WAIT_BOUND);                                                     \
        ASSERT_EQ(pthread_join(t_, NULL), 0);                                                      \
    } while (0)

static void interrupt_waits(uint32_t wait)
{
    char buf[64];
    const void *p;
    size_t len;
    void *w;
    int64_t T = 3 * WAIT_BOUND; /* longer than the bound: an interrupt must end it */
    /* Queue: recv and peek on empty, send and claim on full. */
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, 0, 2 * 128, 64, 0);
    shml_channel *qw = chan_open(addr, SHML_PRODUCER | SHML_CONSUMER, wait);
    EXPECT_INTERRUPTED(qw, shml_recv(qw, buf, sizeof buf, T));
    EXPECT_INTERRUPTED(qw, shml_peek(qw, &p, &len, T));
    ASSERT_EQ(shml_send(qw, "a", 1, 0), 1);
    ASSERT_EQ(shml_send(qw, "b", 1, 0), 1);
    EXPECT_INTERRUPTED(qw, shml_send(qw, "c", 1, T));
    EXPECT_INTERRUPTED(qw, shml_claim(qw, 1, &w, T));
    struct shml_iov iov = {"d", 1};
    EXPECT_INTERRUPTED(qw, shml_send_batch(qw, &iov, 1, T));
    ASSERT_EQ(shml_recv(qw, buf, sizeof buf, 0), 1);
    ASSERT_EQ(shml_recv(qw, buf, sizeof buf, 0), 1);
    size_t lens[4];
    EXPECT_INTERRUPTED(qw, shml_recv_batch(qw, buf, sizeof buf, lens, 4, T));
    /* Once: the next wait runs its course. */
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(qw, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    /* Interrupted before it waits: the next wait returns -EINTR at once, only that one. */
    ASSERT_OK(shml_channel_interrupt(qw));
    t0 = now_ns();
    ASSERT_ERR(shml_recv(qw, buf, sizeof buf, T), -EINTR);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    ASSERT_ERR(shml_recv(qw, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    shml_channel_close(qw);
    shml_channel_close(q);

    /* Bus: a subscriber waiting, a publisher held by a slow subscriber. */
    shml_channel *b = chan_make(&addr, SHML_BUS, SHML_BLOCK, 2 * 128, 64, 0);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, wait);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, wait);
    EXPECT_INTERRUPTED(sub, shml_recv(sub, buf, sizeof buf, T));
    ASSERT_EQ(shml_send(pub, "a", 1, 0), 1);
    ASSERT_EQ(shml_send(pub, "b", 1, 0), 1);
    EXPECT_INTERRUPTED(pub, shml_send(pub, "c", 1, T));
    shml_channel_close(sub);
    shml_channel_close(pub);
    shml_channel_close(b);

    /* Latest: a reader that has read the current value. */
    shml_channel *l = chan_make(&addr, SHML_LATEST, 0, 0, 64, 0);
    shml_channel *rd = chan_open(addr, SHML_CONSUMER, wait);
    ASSERT_EQ(shml_send(l, "v", 1, 0), 1);
    ASSERT_EQ(shml_recv(rd, buf, sizeof buf, 0), 1);
    EXPECT_INTERRUPTED(rd, shml_recv(rd, buf, sizeof buf, T));
    EXPECT_INTERRUPTED(rd, shml_peek(rd, &p, &len, T));
    shml_channel_close(rd);
    shml_channel_close(l);

    /* RPC: a server waiting for a request, a client waiting for its reply. */
    shml_channel *r = chan_make(&addr, SHML_RPC, 0, 0, 64, 0);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, wait);
    shml_channel *srv = chan_open(addr, SHML_SERVER, wait);
    EXPECT_INTERRUPTED(srv, shml_recv(srv, buf, sizeof buf, T));
    ASSERT_EQ(shml_send(cli, "q", 1, 0), 1);
    EXPECT_INTERRUPTED(cli, shml_recv(cli, buf, sizeof buf, T));
    /* The request is still in flight, and answered. */
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(shml_send(srv, "A", 1, 0), 1);
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'A');
    shml_channel_close(srv);
    shml_channel_close(cli);
    shml_channel_close(r);
    ASSERT_ERR(shml_channel_interrupt(NULL), -EINVAL);
}

TEST_TIMEOUT(interrupt_from_thread_blocking, 60)
{
    interrupt_waits(SHML_WAIT_BLOCK);
}

TEST_TIMEOUT(interrupt_from_thread_adaptive, 60)
{
    interrupt_waits(SHML_WAIT_ADAPTIVE);
}

static shml_channel *volatile g_intr_ch;
static volatile sig_atomic_t g_signals;

static void on_alarm(int sig)
{
    (void)sig;
    g_signals++;
    shml_channel_interrupt(g_intr_ch);
}

static void on_usr2(int sig)
{
    (void)sig;
    g_signals++;
}

static void arm(int ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    ASSERT_SYS(setitimer(ITIMER_REAL, &it, NULL));
}

static void signal_case(uint32_t kind, uint32_t wait)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, kind, 0, 2 * 128, 64, 0);
    shml_channel *h = chan_open(addr, SHML_CONSUMER, wait);
    char buf[64];
    g_intr_ch = h;
    g_signals = 0;
    arm(100);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(h, buf, sizeof buf, 3 * WAIT_BOUND), -EINTR);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    ASSERT_EQ(g_signals, 1);
    shml_channel_close(h);
    shml_channel_close(ch);
}

TEST_TIMEOUT(interrupt_from_signal_handler, 60)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART; /* the wait must end because of the interrupt, not EINTR */
    sigemptyset(&sa.sa_mask);
    ASSERT_SYS(sigaction(SIGALRM, &sa, NULL));
    for (size_t i = 0; i < 4; i++) {
        if (all_kinds[i] == SHML_RPC || all_kinds[i] == SHML_LATEST)
            continue; /* their consumer waits need a request or a first value: below */
        signal_case(all_kinds[i], SHML_WAIT_BLOCK);
        signal_case(all_kinds[i], SHML_WAIT_ADAPTIVE);
    }
    /* An rpc server waiting for a request. */
    signal_case(SHML_RPC, SHML_WAIT_BLOCK);
    /* A signal that does not interrupt the channel leaves the wait running (SA_RESTART or
       not). */
    sa.sa_handler = on_usr2;
    sa.sa_flags = 0;
    ASSERT_SYS(sigaction(SIGALRM, &sa, NULL));
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_QUEUE, 0, 0, 64, 0);
    char buf[64];
    g_signals = 0;
    arm(50);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 300 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 300 * MS);
    ASSERT_EQ(g_signals, 1);
    shml_channel_close(ch);
}

/* ---- check and repair ---- */

struct findings {
    int n, repaired, repairable;
    char last[256];
};

static void on_finding(void *ctx, int repaired, const char *finding)
{
    struct findings *f = ctx;
    f->n++;
    ASSERT_TRUE(repaired == 0 || repaired == 1 || repaired == SHML_CHECK_REPAIRABLE);
    f->repaired += repaired == 1;
    f->repairable += repaired == SHML_CHECK_REPAIRABLE;
    ASSERT_NOT_NULL(finding);
    ASSERT_GT(strlen(finding), 0);
    snprintf(f->last, sizeof f->last, "%s", finding);
    shmt_log("finding (%s): %s",
             repaired == 1 ? "repaired"
             : repaired    ? "repairable"
                           : "left",
             finding);
}

static void check_healthy(const char *addr)
{
    struct findings f = {0};
    ASSERT_EQ(shml_channel_check(addr, 0, on_finding, &f), 0);
    ASSERT_EQ(f.n, 0);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
}

#define LOST_0_OR_1 ((uint64_t)-1) /* the header leaves open whether it counts */

/*
 * A peer with `role` does `action` and is killed; check finds it, leaves it, repairs it; the
 * channel is healthy afterwards, with `lost` up by want_lost.
 */
static void check_repair(uint32_t kind, unsigned role, const char *action, uint64_t want_lost,
                         shml_channel **keep, const char **addr_out)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, kind, 0, 4 * 128, 100, 0);
    check_healthy(addr);
    shml_channel *me = NULL;
    if (kind == SHML_RPC) {
        shml_channel_close(ch);
        ch = NULL;
        me = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    }
    pid_t p = hold(addr, role, action);
    if (strcmp(action, "peek") == 0 || strcmp(action, "take") == 0)
        ASSERT_EQ(shml_send(kind == SHML_RPC ? me : ch, "M", 1, WAIT_BOUND), 1);
    ASSERT_EQ(peer_expect(p, "ready", 30000), 0);
    check_healthy(addr); /* a live holder is no finding */
    uint64_t lost0 = chan_inspect(addr).lost;
    uint32_t att0 = chan_inspect(addr).attached;
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    struct findings f = {0};
    int left = shml_channel_check(addr, 0, on_finding, &f);
    ASSERT_GE(left, 1);
    ASSERT_EQ(f.n, left);
    ASSERT_EQ(f.repaired, 0);
    ASSERT_EQ(f.repairable, f.n); /* what dead processes leave, a repair repairs */
    /* Without REPAIR nothing changed. */
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), left);
    ASSERT_EQ(chan_inspect(addr).lost, lost0);
    ASSERT_EQ(chan_inspect(addr).attached, att0);
    memset(&f, 0, sizeof f);
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, on_finding, &f), 0);
    ASSERT_GE(f.repaired, 1);
    ASSERT_EQ(f.repaired, f.n);
    check_healthy(addr);
    struct shml_channel_stats st = chan_inspect(addr);
    if (want_lost == LOST_0_OR_1) {
        ASSERT_GE(st.lost, lost0);
        ASSERT_LE(st.lost, lost0 + 1);
    } else {
        ASSERT_EQ(st.lost, lost0 + want_lost);
    }
    ASSERT_EQ(st.attached, att0 - 1); /* the dead endpoint detached */
    *keep = kind == SHML_RPC ? me : ch;
    *addr_out = addr;
}

TEST_TIMEOUT(check_repair_queue_dead_producer_claim, 60)
{
    shml_channel *ch;
    const char *addr;
    check_repair(SHML_QUEUE, SHML_PRODUCER, "claim", 1, &ch, &addr);
    char buf[100];
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(shml_send(ch, "x", 1, WAIT_BOUND), 1);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    }
    shml_channel_close(ch);
}

TEST_TIMEOUT(check_repair_queue_dead_consumer_peek, 60)
{
    shml_channel *ch;
    const char *addr;
    check_repair(SHML_QUEUE, SHML_CONSUMER, "peek", 1, &ch, &addr);
    char buf[100];
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT); /* M was lost */
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(shml_send(ch, "x", 1, WAIT_BOUND), 1);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    }
    shml_channel_close(ch);
}

TEST_TIMEOUT(check_repair_dead_idle_endpoint, 60)
{
    for (size_t i = 0; i < 4; i++) {
        shml_channel *ch;
        const char *addr;
        check_repair(all_kinds[i], SHML_CONSUMER, "idle", 0, &ch, &addr);
        shml_channel_close(ch);
    }
}

TEST_TIMEOUT(check_repair_bus_dead_subscriber_peek, 60)
{
    shml_channel *ch;
    const char *addr;
    /* Whether the dead subscriber's peek counts as lost (the others still get the message)
       the header leaves open. */
    check_repair(SHML_BUS, SHML_CONSUMER, "peek", LOST_0_OR_1, &ch, &addr);
    /* Nothing holds the publisher (the creator) back now: it laps the ring without waiting. */
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(shml_send(ch, "y", 1, 0), 1);
    ASSERT_EQ(chan_inspect(addr).queued, 0);
    shml_channel_close(ch);
}

TEST_TIMEOUT(check_repair_latest_dead_reader_pin, 60)
{
    shml_channel *ch;
    const char *addr;
    check_repair(SHML_LATEST, SHML_CONSUMER, "peek", 0, &ch, &addr);
    char buf[100];
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(shml_send(ch, "z", 1, 0), 1);
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 1);
    shml_channel_close(ch);
}

TEST_TIMEOUT(check_repair_rpc_dead_server_request, 60)
{
    shml_channel *cli;
    const char *addr;
    /* The server received the request (counted) before it died: the client is told, and
       nothing is lost (no reply was made). */
    check_repair(SHML_RPC, SHML_SERVER, "take", 0, &cli, &addr);
    char buf[100];
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, WAIT_BOUND), -ECONNRESET);
    ASSERT_EQ(chan_inspect(addr).lost, 0);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    ASSERT_EQ(shml_send(cli, "Q", 1, 0), 1);
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(shml_send(srv, "A", 1, 0), 1);
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, WAIT_BOUND), 1);
    shml_channel_close(srv);
    shml_channel_close(cli);
}

/*
 * --check tells what --repair does: a finding it calls repairable is repaired, one it does not
 * (a message longer than max_msg: nobody can tell what it should be) is left by a repair too.
 */
TEST_TIMEOUT(check_says_what_repair_does, 60)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_QUEUE, 0, 4 * 128, 100, 0);
    ASSERT_EQ(shml_send(ch, "M", 1, 0), 1);
    /* Slot 0's len (docs/FORMAT.md: slots_off at 32 of the control block, len at 8). */
    char *h = shml_segment_data(shml_channel_segment(ch));
    uint64_t slots_off;
    memcpy(&slots_off, h + 32, 8);
    uint32_t bad = 101;
    memcpy(h + slots_off + 8, &bad, 4);
    pid_t p = hold(addr, SHML_CONSUMER, "idle");
    ASSERT_EQ(peer_expect(p, "ready", 30000), 0);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    struct findings f = {0};
    ASSERT_EQ(shml_channel_check(addr, 0, on_finding, &f), 2);
    ASSERT_EQ(f.n, 2);
    ASSERT_EQ(f.repairable, 1);
    memset(&f, 0, sizeof f);
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, on_finding, &f), 1);
    ASSERT_EQ(f.n, 2);
    ASSERT_EQ(f.repaired, 1);
    ASSERT_EQ(f.repairable, 0);
    memset(&f, 0, sizeof f);
    ASSERT_EQ(shml_channel_check(addr, 0, on_finding, &f), 1);
    ASSERT_EQ(f.repairable, 0); /* what is left is not for a repair */
    ASSERT_TRUE(strstr(f.last, "message of 101 bytes") != NULL);
    shml_channel_close(ch);
}

TEST(check_errors)
{
    ASSERT_ERR(shml_channel_check(chan_addr(), 0, NULL, NULL), -ENOENT);
    const char *plain = chan_addr();
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(plain, 4096, NULL, &seg));
    ASSERT_ERR(shml_channel_check(plain, 0, NULL, NULL), -SHML_EWRONGKIND);
    shml_segment_close(seg);
    (void)kind_names;
}

/*
 * A holder whose endpoint entry moved on: the slot names an earlier generation of a live
 * entry, as when the holder died and its entry was freed and taken again (by a process that
 * may even have the holder's pid: tests/channel/test_pidns.c). It must count as dead: check
 * reports it, and the consumer that needs the slot reclaims it instead of waiting for a
 * process that will never give it back.
 */
TEST_TIMEOUT(holder_of_an_earlier_generation_is_dead, 60)
{
    const char *addr;
    shml_channel *creator = chan_make(&addr, SHML_QUEUE, 0, 4 * 128, 64, 0);
    shml_channel_close(creator);
    shml_channel *cons = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *old = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    /* The claim's slot header (docs/FORMAT.md: state, then len, then the message at 16)
       now names the previous generation of the claimer's entry as its writer. */
    void *w;
    ASSERT_OK(shml_claim(old, 5, &w, WAIT_BOUND));
    _Atomic uint64_t *state = (_Atomic uint64_t *)((char *)w - 16);
    uint64_t st = atomic_load(state);
    uint32_t holder = shml_slot_holder(st), index;
    ASSERT_TRUE(shml_holder_index(holder, &index));
    uint32_t earlier = shml_holder(index, shml_holder_gen(holder) - 1);
    atomic_store(state, shml_slot_state(shml_slot_seq(st), earlier, shml_slot_busy(st)));
    ASSERT_OK(shml_channel_close(old)); /* its claim is no longer its own: left alone */

    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 1);
    shml_channel *prod = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    ASSERT_EQ(shml_send(prod, "after", 5, WAIT_BOUND), 5);
    char buf[64];
    ASSERT_EQ(shml_recv(cons, buf, sizeof buf, 5 * SEC), 5);
    ASSERT_MEM_EQ(buf, "after", 5);
    ASSERT_EQ(chan_stats(cons).lost, 1);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);

    shml_channel_close(prod);
    shml_channel_close(cons);
}
