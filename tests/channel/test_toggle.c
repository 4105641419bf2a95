/*
 * A peer that toggles message lengths: a thread, standing for any process that can write the
 * segment, flips the `len` field of every slot (queue, bus, rpc requests), latest buffer or
 * rpc mailbox between a valid value and hostile ones (0, 7, max_msg + 1, 0xffffffff, the
 * receiver's capacity + 1) in a tight loop, while other threads send and receive with buffers
 * smaller than max_msg. A receiver must only ever get a length that fits its buffer (shml_recv)
 * or max_msg (shml_peek), or an error; a guard after each buffer must stay whole, and the
 * byte counters must count no more than max_msg per message. The library reads each length
 * once, checks it and uses only that copy; a second read would let the toggler slip a length
 * past the check. Each run is bounded by a number of operations and by time; the sanitizer
 * build (phase 2 of CI) reports any stray byte the guard would not catch.
 */
#include "chan_util.h"
#include "layout.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MAX_MSG 64u
#define CAP 16u   /* the receivers' buffer: smaller than max_msg */
#define GUARD 64u /* bytes after each buffer that nothing may write */
#define GUARD_BYTE 0xa5
#define STEP (10 * MS) /* the timeout of each call: runs keep moving */
#define RUN_NS (2 * SEC)
#define MAX_LENS 64

/* ---- the toggler ---- */

struct toggler {
    shml_segment *seg;
    uint32_t *lens[MAX_LENS]; /* the len fields flipped */
    size_t n;
    uint32_t valid;
    atomic_bool stop;
    pthread_t thread;
};

static void *toggle_loop(void *arg)
{
    struct toggler *t = arg;
    static const uint32_t hostile[] = {0, 7, MAX_MSG + 1, 0xffffffffu, CAP + 1};
    size_t k = 0;
    /* Relaxed throughout: the toggler promises nothing, as a hostile peer would not. */
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        uint32_t bad = hostile[k++ % (sizeof hostile / sizeof hostile[0])];
        for (size_t i = 0; i < t->n; i++)
            atomic_store_explicit((shml_atomic_u32 *)t->lens[i], bad, memory_order_relaxed);
        for (size_t i = 0; i < t->n; i++)
            atomic_store_explicit((shml_atomic_u32 *)t->lens[i], t->valid, memory_order_relaxed);
    }
    return NULL;
}

/*
 * Start flipping the len fields of channel `addr` (opened raw, as any process that can write
 * the segment could): the mailboxes' (rpc, `boxes`) or the slots' / latest buffers'.
 */
static void toggler_start(struct toggler *t, const char *addr, bool boxes, uint32_t valid)
{
    memset(t, 0, sizeof *t);
    ASSERT_OK(shml_segment_open(addr, NULL, &t->seg));
    char *base = shml_segment_data(t->seg);
    struct shml_chan_hdr *h = (struct shml_chan_hdr *)base;
    uint32_t n = boxes ? h->nendpoints : h->nslots;
    ASSERT_LE(n, MAX_LENS);
    for (uint32_t i = 0; i < n; i++) {
        if (boxes) {
            char *box = base + h->box_off + (uint64_t)i * h->box_stride;
            t->lens[t->n++] = &((struct shml_rpc_box *)box)->len;
        } else if (h->kind == SHML_LATEST) {
            char *buf = base + h->slots_off + (uint64_t)i * h->stride;
            t->lens[t->n++] = &((struct shml_latest_buf *)buf)->len;
        } else {
            char *slot = base + h->slots_off + (uint64_t)i * h->stride;
            t->lens[t->n++] = &((struct shml_chan_slot *)slot)->len;
        }
    }
    t->valid = valid;
    atomic_init(&t->stop, false);
    ASSERT_EQ(pthread_create(&t->thread, NULL, toggle_loop, t), 0);
}

static void toggler_stop(struct toggler *t)
{
    atomic_store_explicit(&t->stop, true, memory_order_relaxed);
    ASSERT_EQ(pthread_join(t->thread, NULL), 0);
    shml_segment_close(t->seg);
}

/* ---- the receiver's checks ---- */

/* A buffer of `cap` bytes and the guard after it. */
struct guarded {
    unsigned char buf[MAX_MSG];
    unsigned char guard[GUARD];
};

static void guard_set(struct guarded *g, size_t cap)
{
    memset(g->buf + cap, GUARD_BYTE, sizeof g->buf - cap);
    memset(g->guard, GUARD_BYTE, sizeof g->guard);
}

static void guard_check(const struct guarded *g, size_t cap, const char *what)
{
    for (size_t i = cap; i < sizeof g->buf; i++)
        if (g->buf[i] != GUARD_BYTE)
            shmt_fail(__FILE__, __LINE__, "%s: byte %zu past a %zu-byte buffer written", what,
                      i - cap, cap);
    for (size_t i = 0; i < sizeof g->guard; i++)
        if (g->guard[i] != GUARD_BYTE)
            shmt_fail(__FILE__, __LINE__, "%s: guard byte %zu written", what, i);
}

/* An error a toggled length may cause: a corrupt length, one longer than the buffer, nothing
   readable within the step (its message held back meanwhile). */
static bool toggle_error(intmax_t r)
{
    return r == -SHML_ECORRUPT || r == -EMSGSIZE || r == -ETIMEDOUT;
}

/*
 * One receive on `ch`: shml_recv into CAP bytes (odd i) or shml_peek, copying what it gives
 * into MAX_MSG bytes (even i). Returns the length received, or the error (one of
 * toggle_error(), or `also`, which the caller handles).
 */
static intmax_t receive_once(shml_channel *ch, long i, int also)
{
    struct guarded g;
    if (i & 1) {
        guard_set(&g, CAP);
        ssize_t r = shml_recv(ch, g.buf, CAP, STEP);
        guard_check(&g, CAP, "shml_recv");
        if (r >= 0)
            ASSERT_LE(r, (ssize_t)CAP);
        else if (!toggle_error(r) && r != also)
            shmt_fail(__FILE__, __LINE__, "shml_recv: %zd (%s): %s", r, shml_strerror((int)r),
                      shml_last_error());
        return r;
    }
    guard_set(&g, MAX_MSG);
    const void *p;
    size_t len;
    int r = shml_peek(ch, &p, &len, STEP);
    if (r < 0) {
        if (!toggle_error(r) && r != also)
            shmt_fail(__FILE__, __LINE__, "shml_peek: %d (%s): %s", r, shml_strerror(r),
                      shml_last_error());
        return r;
    }
    ASSERT_LE(len, (size_t)MAX_MSG);
    memcpy(g.buf, p, len);
    guard_check(&g, MAX_MSG, "shml_peek");
    ASSERT_OK(shml_release(ch));
    return (intmax_t)len;
}

/* Counters count the checked lengths: never more than max_msg a message. */
static void check_counters(const char *addr)
{
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_LE(st.bytes_received, st.received * MAX_MSG);
    ASSERT_LE(st.bytes_sent, st.sent * MAX_MSG);
}

/* A run ends after this many messages received (a toggled length makes most calls fail at
   once, and only a call that gets a message has a length to misuse), or RUN_NS. */
static bool run_over(int64_t t0, long got)
{
    return got >= chan_iters(20000, 2000) || now_ns() - t0 >= RUN_NS;
}

/* ---- queue, bus, latest: a sender thread, this thread receives ---- */

struct sender {
    shml_channel *ch;
    const char *addr; /* rpc client thread: opens its own endpoints */
    atomic_bool stop;
    pthread_t thread;
};

static void *send_loop(void *arg)
{
    struct sender *s = arg;
    unsigned char msg[CAP];
    memset(msg, 'm', sizeof msg);
    for (uint32_t i = 0; !atomic_load_explicit(&s->stop, memory_order_relaxed); i++) {
        ssize_t r = shml_send(s->ch, msg, 1 + i % CAP, STEP);
        if (r < 0 && r != -ETIMEDOUT)
            shmt_fail(__FILE__, __LINE__, "shml_send: %zd (%s)", r, shml_strerror((int)r));
        sched_yield(); /* a latest writer never waits: let the others run */
    }
    return NULL;
}

static void toggle_one_way(uint32_t kind)
{
    const char *addr;
    shml_channel *mk = chan_make(&addr, kind, 0, 8 * 128, MAX_MSG, 0);
    shml_channel_close(mk);
    shml_channel *rx = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    struct sender s = {.ch = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE)};
    atomic_init(&s.stop, false);
    struct toggler t;
    toggler_start(&t, addr, false, 8);
    ASSERT_EQ(pthread_create(&s.thread, NULL, send_loop, &s), 0);
    long done = 0, got = 0;
    for (int64_t t0 = now_ns(); !run_over(t0, got); done++)
        if (receive_once(rx, done, 0) >= 0)
            got++;
    toggler_stop(&t);
    atomic_store_explicit(&s.stop, true, memory_order_relaxed);
    ASSERT_EQ(pthread_join(s.thread, NULL), 0);
    shmt_log("%ld receives, %ld messages", done, got);
    shml_channel_close(s.ch);
    shml_channel_close(rx);
    check_counters(addr);
}

TEST(toggle_queue_len)
{
    toggle_one_way(SHML_QUEUE);
}

TEST(toggle_bus_len)
{
    toggle_one_way(SHML_BUS);
}

TEST(toggle_latest_len)
{
    toggle_one_way(SHML_LATEST);
}

/* ---- rpc ---- */

/* Server thread (client-side test): answer every request with a reply that fits CAP. */
static void *serve_loop(void *arg)
{
    struct sender *s = arg;
    unsigned char req[MAX_MSG], rep[CAP];
    memset(rep, 'r', sizeof rep);
    for (uint32_t i = 0; !atomic_load_explicit(&s->stop, memory_order_relaxed); i++) {
        ssize_t n = shml_recv(s->ch, req, sizeof req, STEP);
        if (n == -ETIMEDOUT)
            continue;
        if (n < 0)
            shmt_fail(__FILE__, __LINE__, "server recv: %zd (%s)", n, shml_strerror((int)n));
        ssize_t r = shml_send(s->ch, rep, 1 + i % CAP, STEP);
        if (r < 0)
            shmt_fail(__FILE__, __LINE__, "server send: %zd (%s)", r, shml_strerror((int)r));
    }
    return NULL;
}

/* The reply lengths in the mailboxes are toggled; this thread is the client. A length of
   0xffffffff is the protocol's "server closed without replying": -ECONNRESET. */
TEST(toggle_rpc_reply_len)
{
    const char *addr;
    shml_channel *mk = chan_make(&addr, SHML_RPC, 0, 8 * 128, MAX_MSG, 0);
    shml_channel_close(mk);
    struct sender s = {.ch = chan_open(addr, SHML_SERVER, SHML_WAIT_ADAPTIVE)};
    atomic_init(&s.stop, false);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE);
    struct toggler t;
    toggler_start(&t, addr, true, 8);
    ASSERT_EQ(pthread_create(&s.thread, NULL, serve_loop, &s), 0);
    long done = 0, got = 0;
    bool pending = false;
    for (int64_t t0 = now_ns(); !run_over(t0, got); done++) {
        if (!pending) {
            ASSERT_EQ(shml_send(cli, "request", 7, WAIT_BOUND), 7);
            pending = true;
        }
        intmax_t r = receive_once(cli, done, -ECONNRESET);
        if (r >= 0)
            got++;
        if (r >= 0 || r == -ECONNRESET)
            pending = false; /* else the reply is still awaited */
    }
    toggler_stop(&t);
    atomic_store_explicit(&s.stop, true, memory_order_relaxed);
    ASSERT_EQ(pthread_join(s.thread, NULL), 0);
    shmt_log("%ld receives, %ld replies", done, got);
    shml_channel_close(cli);
    shml_channel_close(s.ch);
    check_counters(addr);
}

/* Client thread (server-side test): ask, await the reply a step; a request whose toggled
   length made the server drop it is given up by closing the client and opening another. */
static void *ask_loop(void *arg)
{
    struct sender *s = arg;
    const char *addr = s->addr;
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE);
    unsigned char rep[MAX_MSG], req[CAP];
    memset(req, 'q', sizeof req);
    for (uint32_t i = 0; !atomic_load_explicit(&s->stop, memory_order_relaxed); i++) {
        ssize_t r = shml_send(cli, req, 1 + i % CAP, STEP);
        if (r == -ETIMEDOUT)
            continue;
        if (r < 0)
            shmt_fail(__FILE__, __LINE__, "client send: %zd (%s)", r, shml_strerror((int)r));
        r = shml_recv(cli, rep, sizeof rep, STEP);
        if (r == -ETIMEDOUT) {
            shml_channel_close(cli);
            cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE);
        } else if (r < 0) {
            shmt_fail(__FILE__, __LINE__, "client recv: %zd (%s)", r, shml_strerror((int)r));
        }
    }
    shml_channel_close(cli);
    return NULL;
}

/* The request lengths in the ring are toggled; this thread is the server. A length below the
   tag's 8 bytes makes the server drop the request (counted lost). */
TEST(toggle_rpc_request_len)
{
    const char *addr;
    shml_channel *mk = chan_make(&addr, SHML_RPC, 0, 8 * 128, MAX_MSG, 0);
    shml_channel_close(mk);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_ADAPTIVE);
    struct sender s = {.addr = addr};
    atomic_init(&s.stop, false);
    struct toggler t;
    toggler_start(&t, addr, false, SHML_RPC_TAG + 8);
    ASSERT_EQ(pthread_create(&s.thread, NULL, ask_loop, &s), 0);
    long done = 0, got = 0;
    for (int64_t t0 = now_ns(); !run_over(t0, got); done++) {
        if (receive_once(srv, done, 0) < 0)
            continue;
        got++;
        ssize_t r = shml_send(srv, "ok", 2, STEP);
        ASSERT_EQ(r, 2); /* delivered, or dropped for a client that gave up */
    }
    toggler_stop(&t);
    atomic_store_explicit(&s.stop, true, memory_order_relaxed);
    ASSERT_EQ(pthread_join(s.thread, NULL), 0);
    shmt_log("%ld receives, %ld requests", done, got);
    shml_channel_close(srv);
    check_counters(addr);
}
