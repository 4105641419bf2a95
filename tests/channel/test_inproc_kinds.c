/*
 * The bus (SHML_BLOCK), the latest-value channel and request/reply with threads of one
 * process (one handle per thread, as the API asks), so that TSan watches their memory
 * ordering: scripts/test runs label inproc under TSan. The same checks as the multi-process
 * tests: every subscriber gets every message in order; values are never torn and versions
 * increase; each reply is its client's. (The bus with SHML_OVERWRITE reads optimistically and
 * checks afterwards, a seqlock that TSan reports by design: it is left out here.)
 */
#include "chan_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define IK_MAX 256u

struct ik_run {
    const char *addr;
    long senders, n;
    unsigned seed;
    _Atomic uint32_t senders_done;
    _Atomic uint64_t total;
};

struct ik_worker {
    struct ik_run *run;
    uint32_t id;
    uint32_t mode; /* 0 copy, 1 zero-copy, 2 batch */
    char error[256];
};

#define IK_FAIL(w, ...)                                                                            \
    do {                                                                                           \
        snprintf((w)->error, sizeof(w)->error, __VA_ARGS__);                                       \
        goto out;                                                                                  \
    } while (0)

static shml_channel *ik_open(struct ik_worker *w, unsigned role)
{
    shml_channel *ch = NULL;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_ADAPTIVE;
    /* An rpc client may start before the server threads have attached: it waits for one. */
    o.flags = role == SHML_CLIENT ? SHML_WAIT : 0;
    int r = shml_channel_open(w->run->addr, role, &o, &ch);
    if (r < 0)
        snprintf(w->error, sizeof w->error, "open: %d (%s)", r, shml_strerror(r));
    return ch;
}

static void ik_spawn(pthread_t *t, void *(*fn)(void *), struct ik_worker *w)
{
    ASSERT_EQ(pthread_create(t, NULL, fn, w), 0);
}

static void ik_join(pthread_t *t, struct ik_worker *w, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < n; i++)
        if (w[i].error[0])
            shmt_fail(__FILE__, __LINE__, "%s", w[i].error);
}

/* ---- bus ---- */

static void *bus_publisher(void *arg)
{
    struct ik_worker *w = arg;
    struct ik_run *run = w->run;
    shml_channel *ch = ik_open(w, SHML_PRODUCER);
    if (!ch)
        return NULL;
    unsigned seed = run->seed + w->id * 7919u;
    uint8_t msg[IK_MAX];
    for (long i = 0; i < run->n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (IK_MAX - CHAN_MSG_MIN + 1));
        int r;
        if (w->mode == 1) {
            void *p;
            r = shml_claim(ch, IK_MAX, &p, 3 * WAIT_BOUND);
            if (r == 0) {
                chan_msg_fill(p, len, w->id, (uint64_t)i);
                r = shml_commit(ch, len);
            }
        } else {
            chan_msg_fill(msg, len, w->id, (uint64_t)i);
            ssize_t s = shml_send(ch, msg, len, 3 * WAIT_BOUND);
            r = s == (ssize_t)len ? 0 : (int)s;
        }
        if (r != 0)
            IK_FAIL(w, "publisher %u message %ld: %d (%s)", w->id, i, r, shml_strerror(r));
    }
out:
    shml_channel_close(ch);
    return NULL;
}

static void *bus_subscriber(void *arg)
{
    struct ik_worker *w = arg;
    struct ik_run *run = w->run;
    shml_channel *ch = ik_open(w, SHML_CONSUMER);
    if (!ch)
        return NULL;
    uint64_t next[8] = {0};
    long finished = 0;
    uint64_t got = 0;
    int64_t deadline = now_ns() + 200 * SEC;
    static _Thread_local uint8_t buf[8 * IK_MAX];
    size_t lens[8];
    while (finished < run->senders) {
        if (now_ns() > deadline)
            IK_FAIL(w, "subscriber %u: %ju after 200 s", w->id, (uintmax_t)got);
        size_t k = 1;
        int r;
        const void *m = buf;
        if (w->mode == 1) {
            r = shml_peek(ch, &m, &lens[0], 50 * MS);
        } else if (w->mode == 2) {
            ssize_t n = shml_recv_batch(ch, buf, sizeof buf, lens, 8, 50 * MS);
            r = n < 0 ? (int)n : 0;
            k = n < 0 ? 0 : (size_t)n;
        } else {
            ssize_t n = shml_recv(ch, buf, IK_MAX, 50 * MS);
            r = n < 0 ? (int)n : 0;
            lens[0] = n < 0 ? 0 : (size_t)n;
        }
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0)
            IK_FAIL(w, "subscriber %u: %d (%s)", w->id, r, shml_strerror(r));
        size_t off = 0;
        for (size_t j = 0; j < k; j++) {
            const uint8_t *p = (const uint8_t *)m + off;
            off += lens[j];
            const char *why = chan_msg_check(p, lens[j]);
            if (why)
                IK_FAIL(w, "subscriber %u: corrupt: %s", w->id, why);
            struct chan_msg h;
            memcpy(&h, p, sizeof h);
            if (h.producer >= run->senders || h.seq != next[h.producer])
                IK_FAIL(w, "subscriber %u: publisher %u seq %ju, want %ju", w->id, h.producer,
                        (uintmax_t)h.seq, (uintmax_t)next[h.producer]);
            next[h.producer]++;
            if (h.seq == (uint64_t)run->n - 1)
                finished++;
            got++;
        }
        if (w->mode == 1 && (r = shml_release(ch)) != 0)
            IK_FAIL(w, "subscriber %u release: %d", w->id, r);
    }
    atomic_fetch_add(&run->total, got);
out:
    shml_channel_close(ch);
    return NULL;
}

TEST_TIMEOUT(inproc_bus_block, 300)
{
    struct ik_run run = {0};
    run.senders = 2;
    run.n = chan_iters(100000, 1000);
    run.seed = chan_seed();
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 32 * 320, IK_MAX, 0);
    shml_channel_close(ch);
    run.addr = addr;
    struct ik_worker w[8];
    pthread_t t[8];
    int nt = 0;
    int64_t t0 = now_ns();
    for (uint32_t s = 0; s < 3; s++, nt++) {
        w[nt] = (struct ik_worker){&run, s, s, ""};
        ik_spawn(&t[nt], bus_subscriber, &w[nt]);
    }
    /* Subscribers must have joined before the first message: wait until all three are in. */
    int64_t until = now_ns() + WAIT_BOUND;
    while (chan_inspect(addr).attached < 3 && now_ns() < until)
        shmt_sleep_ms(1);
    ASSERT_EQ(chan_inspect(addr).attached, 3);
    for (uint32_t p = 0; p < 2; p++, nt++) {
        w[nt] = (struct ik_worker){&run, p, p, ""};
        ik_spawn(&t[nt], bus_publisher, &w[nt]);
    }
    ik_join(t, w, nt);
    shmt_log("bus: %ld x %ld messages to 3 subscriber threads in %.2f s", run.senders, run.n,
             (double)(now_ns() - t0) / 1e9);
    ASSERT_EQ(atomic_load(&run.total), (uint64_t)(3 * run.senders * run.n));
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.sent, (uint64_t)(run.senders * run.n));
    ASSERT_EQ(st.received, (uint64_t)(3 * run.senders * run.n));
    ASSERT_EQ(st.lost, 0);
}

/* ---- latest ---- */

static void *lv_writer_thread(void *arg)
{
    struct ik_worker *w = arg;
    struct ik_run *run = w->run;
    shml_channel *ch = ik_open(w, SHML_PRODUCER);
    if (!ch)
        return NULL;
    unsigned seed = run->seed;
    uint8_t v[IK_MAX];
    for (long i = 1; i <= run->n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (IK_MAX - CHAN_MSG_MIN + 1));
        int r;
        if (i & 1) {
            void *p;
            r = shml_claim(ch, len, &p, 0);
            if (r == 0) {
                chan_msg_fill(p, len, 0, (uint64_t)i);
                r = shml_commit(ch, len);
            }
        } else {
            chan_msg_fill(v, len, 0, (uint64_t)i);
            ssize_t s = shml_send(ch, v, len, 0);
            r = s == (ssize_t)len ? 0 : (int)s;
        }
        if (r != 0)
            IK_FAIL(w, "writer value %ld: %d (%s)", i, r, shml_strerror(r));
    }
out:
    atomic_fetch_add(&run->senders_done, 1);
    shml_channel_close(ch);
    return NULL;
}

static void *lv_reader_thread(void *arg)
{
    struct ik_worker *w = arg;
    struct ik_run *run = w->run;
    shml_channel *ch = ik_open(w, SHML_CONSUMER);
    if (!ch)
        return NULL;
    uint64_t last = 0, reads = 0, gaps = 0, first = 0;
    bool done_seen = false;
    uint8_t buf[IK_MAX];
    for (;;) {
        const void *m = buf;
        size_t len = 0;
        int r;
        if (w->mode) {
            r = shml_peek(ch, &m, &len, 50 * MS);
        } else {
            ssize_t n = shml_recv(ch, buf, sizeof buf, 50 * MS);
            r = n < 0 ? (int)n : 0;
            len = n < 0 ? 0 : (size_t)n;
        }
        if (r == -ETIMEDOUT) {
            if (done_seen)
                break;
            done_seen = atomic_load(&run->senders_done) == 1;
            continue;
        }
        if (r != 0)
            IK_FAIL(w, "reader %u: %d (%s)", w->id, r, shml_strerror(r));
        const char *why = chan_msg_check(m, len);
        struct chan_msg h;
        memcpy(&h, m, sizeof h);
        if (w->mode && (r = shml_release(ch)) != 0)
            IK_FAIL(w, "reader %u release: %d", w->id, r);
        if (why)
            IK_FAIL(w, "reader %u: torn: %s", w->id, why);
        uint64_t gap = shml_recv_gap(ch);
        /* Values before a handle's first read may or may not count as skipped. */
        if (reads == 0 && gap == 0 && h.seq > 0)
            first = h.seq - 1;
        else if (h.seq <= last || h.seq - last - 1 != gap)
            IK_FAIL(w, "reader %u: version %ju after %ju, gap %ju", w->id, (uintmax_t)h.seq,
                    (uintmax_t)last, (uintmax_t)gap);
        last = h.seq;
        reads++;
        gaps += gap;
    }
    if (last != (uint64_t)run->n || reads + gaps + first != (uint64_t)run->n)
        IK_FAIL(w, "reader %u: ended at %ju; %ju reads + %ju skipped, of %ld", w->id,
                (uintmax_t)last, (uintmax_t)reads, (uintmax_t)gaps, run->n);
    atomic_fetch_add(&run->total, reads);
out:
    shml_channel_close(ch);
    return NULL;
}

TEST_TIMEOUT(inproc_latest, 300)
{
    struct ik_run run = {0};
    run.n = chan_iters(300000, 3000);
    run.seed = chan_seed();
    const char *addr;
    /* 8 buffers: up to 6 readers (nslots - 2). */
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 8 * 320, IK_MAX, 0);
    shml_channel_close(ch);
    run.addr = addr;
    struct ik_worker w[4];
    pthread_t t[4];
    int64_t t0 = now_ns();
    for (uint32_t r = 0; r < 3; r++) {
        w[r] = (struct ik_worker){&run, r, r % 2, ""};
        ik_spawn(&t[r], lv_reader_thread, &w[r]);
    }
    int64_t until = now_ns() + WAIT_BOUND;
    while (chan_inspect(addr).attached < 3 && now_ns() < until)
        shmt_sleep_ms(1);
    w[3] = (struct ik_worker){&run, 0, 0, ""};
    ik_spawn(&t[3], lv_writer_thread, &w[3]);
    ik_join(t, w, 4);
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("latest: %ld values, 3 reader threads, %.2f s: %ju reads, %ju skipped", run.n,
             (double)(now_ns() - t0) / 1e9, (uintmax_t)st.received, (uintmax_t)st.drops);
    ASSERT_EQ(st.sent, (uint64_t)run.n);
    ASSERT_EQ(st.received, atomic_load(&run.total));
    ASSERT_LE(st.received + st.drops, 3 * (uint64_t)run.n);
}

/* ---- rpc ---- */

static void *rpc_server_thread(void *arg)
{
    struct ik_worker *w = arg;
    struct ik_run *run = w->run;
    shml_channel *ch = ik_open(w, SHML_SERVER);
    if (!ch)
        return NULL;
    uint8_t req[IK_MAX], rep[IK_MAX];
    while (atomic_load(&run->senders_done) < (uint32_t)run->senders) {
        ssize_t n = shml_recv(ch, req, sizeof req, 20 * MS);
        if (n == -ETIMEDOUT)
            continue;
        if (n < 0)
            IK_FAIL(w, "server: %zd (%s)", n, shml_strerror((int)n));
        const char *why = chan_msg_check(req, (size_t)n);
        if (why)
            IK_FAIL(w, "server: corrupt request: %s", why);
        struct chan_msg h;
        memcpy(&h, req, sizeof h);
        uint32_t rlen = CHAN_MSG_MIN + (h.len * 3u) % (IK_MAX - CHAN_MSG_MIN + 1);
        chan_msg_fill(rep, rlen, h.producer + 100, h.seq + 1000000);
        ssize_t s = shml_send(ch, rep, rlen, WAIT_BOUND);
        if (s != (ssize_t)rlen)
            IK_FAIL(w, "server reply: %zd (%s)", s, shml_strerror((int)s));
        atomic_fetch_add(&run->total, 1);
    }
out:
    shml_channel_close(ch);
    return NULL;
}

static void *rpc_client_thread(void *arg)
{
    struct ik_worker *w = arg;
    struct ik_run *run = w->run;
    shml_channel *ch = ik_open(w, SHML_CLIENT);
    if (!ch)
        return NULL;
    unsigned seed = run->seed + w->id;
    uint8_t req[IK_MAX], rep[IK_MAX];
    for (long i = 0; i < run->n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (IK_MAX - CHAN_MSG_MIN + 1));
        chan_msg_fill(req, len, w->id, (uint64_t)i);
        ssize_t s = shml_send(ch, req, len, WAIT_BOUND);
        if (s != (ssize_t)len)
            IK_FAIL(w, "client %u request %ld: %zd (%s)", w->id, i, s, shml_strerror((int)s));
        s = shml_recv(ch, rep, sizeof rep, 3 * WAIT_BOUND);
        if (s < 0)
            IK_FAIL(w, "client %u reply %ld: %zd (%s)", w->id, i, s, shml_strerror((int)s));
        const char *why = chan_msg_check(rep, (size_t)s);
        struct chan_msg h;
        memcpy(&h, rep, sizeof h);
        uint32_t rlen = CHAN_MSG_MIN + (len * 3u) % (IK_MAX - CHAN_MSG_MIN + 1);
        if (why || h.producer != w->id + 100 || h.seq != (uint64_t)i + 1000000 || h.len != rlen)
            IK_FAIL(w, "client %u request %ld: wrong reply %u:%ju (%s)", w->id, i, h.producer,
                    (uintmax_t)h.seq, why ? why : "not its own");
    }
out:
    atomic_fetch_add(&run->senders_done, 1);
    shml_channel_close(ch);
    return NULL;
}

TEST_TIMEOUT(inproc_rpc, 300)
{
    struct ik_run run = {0};
    run.senders = 4;
    run.n = chan_iters(20000, 300);
    run.seed = chan_seed();
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_RPC, 0, 16 * 320, IK_MAX, 0);
    shml_channel_close(ch);
    run.addr = addr;
    struct ik_worker w[8];
    pthread_t t[8];
    int nt = 0;
    int64_t t0 = now_ns();
    for (uint32_t s = 0; s < 2; s++, nt++) {
        w[nt] = (struct ik_worker){&run, s, 0, ""};
        ik_spawn(&t[nt], rpc_server_thread, &w[nt]);
    }
    for (uint32_t c = 0; c < 4; c++, nt++) {
        w[nt] = (struct ik_worker){&run, c, 0, ""};
        ik_spawn(&t[nt], rpc_client_thread, &w[nt]);
    }
    ik_join(t, w, nt);
    shmt_log("rpc: 4 client threads x %ld requests, 2 servers, %.2f s", run.n,
             (double)(now_ns() - t0) / 1e9);
    ASSERT_EQ(atomic_load(&run.total), 4 * (uint64_t)run.n);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.sent, 2 * 4 * (uint64_t)run.n); /* requests and replies */
    ASSERT_EQ(st.received, 2 * 4 * (uint64_t)run.n);
    ASSERT_EQ(st.lost, 0);
}
