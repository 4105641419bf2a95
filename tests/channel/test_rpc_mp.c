/*
 * Request/reply between processes: C client processes each make N requests (client id,
 * request number, checksum, random size); S server processes answer each with a
 * transformation of the request (another id, number and size, its own checksum). Every reply
 * reaches the client that asked and matches its request; every request is served once.
 */
#include "chan_util.h"

#include <stdlib.h>
#include <unistd.h>

#define RPC_MP_MAX 1024u
#define REPLY_TAG  0x10000u

struct rpc_area {
    _Atomic uint32_t stop;
    _Atomic uint64_t served;
    _Atomic uint64_t answered; /* replies clients received and checked */
};

/* The reply to request (producer, seq, len): what the server sends and the client expects. */
static void rpc_reply_of(const struct chan_msg *req, uint32_t *rlen, uint32_t *rprod,
                         uint64_t *rseq)
{
    *rprod = req->producer | REPLY_TAG;
    *rseq = req->seq * 3 + 1;
    *rlen = CHAN_MSG_MIN + (req->len * 7u + 13u) % (RPC_MP_MAX - CHAN_MSG_MIN + 1);
}

/* argv: channel, area, mode ("copy", "zc"). Serve until told to stop. */
PEER(rpc_server)
{
    ASSERT_EQ(argc, 3);
    shml_segment *seg;
    struct rpc_area *a = chan_shared_open(argv[1], &seg);
    bool zc = strcmp(argv[2], "zc") == 0;
    shml_channel *s = chan_open(argv[0], SHML_SERVER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t req[RPC_MP_MAX], rep[RPC_MP_MAX];
    uint64_t served = 0;
    while (!atomic_load(&a->stop)) {
        const uint8_t *m;
        size_t len;
        if (zc) {
            const void *p;
            int r = shml_peek(s, &p, &len, 100 * MS);
            if (r == -ETIMEDOUT)
                continue;
            ASSERT_OK(r);
            m = p;
        } else {
            ssize_t n = shml_recv(s, req, sizeof req, 100 * MS);
            if (n == -ETIMEDOUT)
                continue;
            ASSERT_OK(n);
            m = req;
            len = (size_t)n;
        }
        const char *why = chan_msg_check(m, len);
        if (why)
            shmt_fail(__FILE__, __LINE__, "server: corrupt request: %s", why);
        struct chan_msg h;
        memcpy(&h, m, sizeof h);
        if (zc)
            ASSERT_OK(shml_release(s));
        uint32_t rlen, rprod;
        uint64_t rseq;
        rpc_reply_of(&h, &rlen, &rprod, &rseq);
        if (zc) {
            void *w;
            ASSERT_OK(shml_claim(s, RPC_MP_MAX, &w, WAIT_BOUND));
            chan_msg_fill(w, rlen, rprod, rseq);
            ASSERT_OK(shml_commit(s, rlen));
        } else {
            chan_msg_fill(rep, rlen, rprod, rseq);
            ssize_t r = shml_send(s, rep, rlen, WAIT_BOUND);
            if (r != (ssize_t)rlen)
                shmt_fail(__FILE__, __LINE__, "server reply: %zd (%s) %s", r, shml_strerror((int)r),
                          shml_last_error());
        }
        served++;
        atomic_fetch_add(&a->served, 1);
    }
    ASSERT_EQ(parent_send(shmt_fmt("served %ju", (uintmax_t)served)), 0);
    shml_channel_close(s);
    shml_segment_close(seg);
    return 0;
}

/* argv: channel, area, id, n, seed. n requests, each reply checked. */
PEER(rpc_client)
{
    ASSERT_EQ(argc, 5);
    shml_segment *seg;
    struct rpc_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    long n = atol(argv[3]);
    unsigned seed = (unsigned)strtoul(argv[4], NULL, 10);
    /* SHML_WAIT: the servers may attach after this client's first request. */
    shml_channel *c = chan_open_flags(argv[0], SHML_CLIENT, SHML_WAIT_ADAPTIVE, SHML_WAIT);
    static uint8_t req[RPC_MP_MAX], rep[RPC_MP_MAX];
    for (long i = 0; i < n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (RPC_MP_MAX - CHAN_MSG_MIN + 1));
        chan_msg_fill(req, len, id, (uint64_t)i);
        ssize_t r = shml_send(c, req, len, WAIT_BOUND);
        if (r != (ssize_t)len)
            shmt_fail(__FILE__, __LINE__, "client %u request %ld: %zd (%s) %s", id, i, r,
                      shml_strerror((int)r), shml_last_error());
        r = shml_recv(c, rep, sizeof rep, 3 * WAIT_BOUND);
        if (r < 0)
            shmt_fail(__FILE__, __LINE__, "client %u reply %ld: %zd (%s) %s", id, i, r,
                      shml_strerror((int)r), shml_last_error());
        const char *why = chan_msg_check(rep, (size_t)r);
        if (why)
            shmt_fail(__FILE__, __LINE__, "client %u: corrupt reply: %s", id, why);
        struct chan_msg q, h;
        memcpy(&q, req, sizeof q);
        memcpy(&h, rep, sizeof h);
        uint32_t rlen, rprod;
        uint64_t rseq;
        rpc_reply_of(&q, &rlen, &rprod, &rseq);
        if (h.producer != rprod || h.seq != rseq || h.len != rlen)
            shmt_fail(__FILE__, __LINE__,
                      "client %u request %ld: reply is %x:%ju (%u bytes), "
                      "want %x:%ju (%u bytes): another client's?",
                      id, i, h.producer, (uintmax_t)h.seq, h.len, rprod, (uintmax_t)rseq, rlen);
        atomic_fetch_add(&a->answered, 1);
    }
    shml_channel_close(c);
    shml_segment_close(seg);
    return 0;
}

static void rpc_run(int clients, int servers, long n, bool zc_servers)
{
    unsigned seed = chan_seed();
    const char *area_addr;
    shml_segment *seg;
    struct rpc_area *a = chan_shared_create(sizeof *a, &area_addr, &seg);
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_RPC, 0, 16 * 1088, RPC_MP_MAX, 0);
    shml_channel_close(ch);
    pid_t sp[8], cp[16];
    int64_t t0 = now_ns();
    for (int i = 0; i < servers; i++) {
        sp[i] = spawn_peer("rpc_server", addr, area_addr, zc_servers && i % 2 ? "zc" : "copy");
        ASSERT_EQ(peer_expect(sp[i], "ready", 30000), 0);
    }
    for (int i = 0; i < clients; i++)
        cp[i] = spawn_peer("rpc_client", addr, area_addr, shmt_fmt("%d", i), shmt_fmt("%ld", n),
                           shmt_fmt("%u", seed + (unsigned)i * 31u));
    for (int i = 0; i < clients; i++)
        ASSERT_EQ(wait_peer(cp[i], 240000), 0);
    double secs = (double)(now_ns() - t0) / 1e9;
    atomic_store(&a->stop, 1);
    char line[64];
    for (int i = 0; i < servers; i++) {
        ASSERT_EQ(peer_recv(sp[i], line, sizeof line, 30000), 0);
        shmt_log("server %d: %s", i, line);
        ASSERT_EQ(wait_peer(sp[i], 30000), 0);
    }
    uint64_t total = (uint64_t)clients * (uint64_t)n;
    shmt_log("%d clients x %ld requests, %d servers: %.2f s (%.0f round trips/s)", clients, n,
             servers, secs, (double)total / secs);
    ASSERT_EQ(atomic_load(&a->served), total);
    ASSERT_EQ(atomic_load(&a->answered), total);
    struct shml_channel_stats st = chan_inspect(addr);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.attached, 0);
    /* sent: requests and replies; received: requests taken and replies read. */
    ASSERT_EQ(st.sent, 2 * total);
    ASSERT_EQ(st.received, 2 * total);
    shml_segment_close(seg);
}

TEST_TIMEOUT(rpc_stress_4_clients_2_servers, 300)
{
    rpc_run(4, 2, chan_iters(50000, 500), false);
}

TEST_TIMEOUT(rpc_stress_6_clients_3_servers_zero_copy, 300)
{
    rpc_run(6, 3, chan_iters(20000, 300), true);
}
