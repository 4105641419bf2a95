/*
 * Chaos for the bus, the latest-value channel and request/reply: endpoints killed with
 * SIGKILL at random moments while traffic flows, again and again, and replaced. The survivors
 * go on (every wait bounded), what they receive is whole and in order, and the counters
 * account for every message lost: each death loses at most the one message it held.
 */
#include "chan_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define KC_MAX 256u
/* Peer ids per role: its count plus one per kill, so at most count + rounds (checked). */
#define KC_IDS 128

struct kc_area {
    _Atomic uint32_t stop_senders;   /* publishers, writers, clients: finish and exit */
    _Atomic uint32_t stop_receivers; /* subscribers, readers, servers */
    _Atomic uint64_t begun[KC_IDS];  /* sender id: seq of the send in progress + 1 */
    _Atomic uint64_t done[KC_IDS];   /* sender id: sends that returned */
    _Atomic uint64_t got[KC_IDS];    /* receiver id: messages received and checked */
    _Atomic uint64_t resets[KC_IDS]; /* rpc client id: -ECONNRESET */
    _Atomic uint64_t answered[KC_IDS];
    _Atomic uint64_t served;
};

static void kc_check(const void *m, size_t len, struct chan_msg *h)
{
    const char *why = chan_msg_check(m, len);
    if (why)
        shmt_fail(__FILE__, __LINE__, "corrupt: %s", why);
    memcpy(h, m, sizeof *h);
    if (h->producer >= KC_IDS)
        shmt_fail(__FILE__, __LINE__, "sender %u out of range", h->producer);
}

/* ---- bus (SHML_BLOCK) ---- */

/* argv: channel, area, id, seed. Odd ids claim/commit. */
PEER(kc_pub)
{
    ASSERT_EQ(argc, 4);
    shml_segment *seg;
    struct kc_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    unsigned seed = (unsigned)strtoul(argv[3], NULL, 10);
    shml_channel *ch = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t msg[KC_MAX];
    for (uint64_t seq = 0; !atomic_load(&a->stop_senders); seq++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (KC_MAX - CHAN_MSG_MIN + 1));
        atomic_store(&a->begun[id], seq + 1);
        for (;;) {
            int r;
            if (id & 1) {
                void *w;
                r = shml_claim(ch, len, &w, 100 * MS);
                if (r == 0) {
                    chan_msg_fill(w, len, id, seq);
                    ASSERT_OK(shml_commit(ch, len));
                }
            } else {
                chan_msg_fill(msg, len, id, seq);
                ssize_t s = shml_send(ch, msg, len, 100 * MS);
                r = s < 0 ? (int)s : 0;
            }
            if (r == 0)
                break;
            if (r != -ETIMEDOUT)
                shmt_fail(__FILE__, __LINE__, "publisher %u: %d (%s) %s", id, r, shml_strerror(r),
                          shml_last_error());
            if (atomic_load(&a->stop_senders))
                goto out;
        }
        atomic_store(&a->done[id], seq + 1);
    }
out:
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

/* argv: channel, area, id. Odd ids peek/release. Checks order and contiguity per publisher. */
PEER(kc_sub)
{
    ASSERT_EQ(argc, 3);
    shml_segment *seg;
    struct kc_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    bool zc = id & 1;
    static uint64_t lo[KC_IDS], hi[KC_IDS];
    static int64_t next[KC_IDS];
    for (int p = 0; p < KC_IDS; p++) {
        lo[p] = atomic_load(&a->done[p]);
        next[p] = -1;
    }
    shml_channel *ch = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    for (int p = 0; p < KC_IDS; p++)
        hi[p] = atomic_load(&a->begun[p]);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t buf[KC_MAX];
    bool drain_seen = false;
    for (;;) {
        const void *m = buf;
        size_t len;
        int r;
        if (zc) {
            r = shml_peek(ch, &m, &len, 100 * MS);
        } else {
            ssize_t n = shml_recv(ch, buf, sizeof buf, 100 * MS);
            r = n < 0 ? (int)n : 0;
            len = n < 0 ? 0 : (size_t)n;
        }
        if (r == -ETIMEDOUT) {
            if (drain_seen)
                break;
            drain_seen = atomic_load(&a->stop_receivers) != 0;
            continue;
        }
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "subscriber %u: %d (%s) %s", id, r, shml_strerror(r),
                      shml_last_error());
        struct chan_msg h;
        kc_check(m, len, &h);
        if (zc)
            ASSERT_OK(shml_release(ch));
        uint32_t p = h.producer;
        if (next[p] < 0) {
            if (h.seq < lo[p] || h.seq > hi[p])
                shmt_fail(__FILE__, __LINE__,
                          "subscriber %u: first of publisher %u is seq %ju, "
                          "want %ju..%ju",
                          id, p, (uintmax_t)h.seq, (uintmax_t)lo[p], (uintmax_t)hi[p]);
        } else if (h.seq != (uint64_t)next[p]) {
            shmt_fail(__FILE__, __LINE__, "subscriber %u: publisher %u seq %ju, want %jd", id, p,
                      (uintmax_t)h.seq, (intmax_t)next[p]);
        }
        next[p] = (int64_t)h.seq + 1;
        atomic_fetch_add(&a->got[id], 1);
    }
    /* Every message sent after the join arrived: up to the last send that returned, and at
       most the one in flight when its publisher died. */
    for (int p = 0; p < KC_IDS; p++) {
        uint64_t done = atomic_load(&a->done[p]), begun = atomic_load(&a->begun[p]);
        if (done > hi[p] && (next[p] < 0 || (uint64_t)next[p] < done))
            shmt_fail(__FILE__, __LINE__,
                      "subscriber %u: publisher %d ended at %jd, sent %ju "
                      "(joined before seq %ju)",
                      id, p, (intmax_t)next[p], (uintmax_t)done, (uintmax_t)hi[p]);
        if (next[p] > 0 && (uint64_t)next[p] > begun)
            shmt_fail(__FILE__, __LINE__, "subscriber %u: publisher %d seq %jd never begun", id, p,
                      (intmax_t)next[p] - 1);
    }
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

/* ---- latest ---- */

/* argv: channel, area, id, seed. Writes until stopped; every write with timeout 0 succeeds. */
PEER(kc_writer)
{
    ASSERT_EQ(argc, 4);
    shml_segment *seg;
    struct kc_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    unsigned seed = (unsigned)strtoul(argv[3], NULL, 10);
    shml_channel *w = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t v[KC_MAX];
    for (uint64_t seq = 1; !atomic_load(&a->stop_senders); seq++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (KC_MAX - CHAN_MSG_MIN + 1));
        atomic_store(&a->begun[id], seq);
        if (id & 1) {
            void *p;
            int r = shml_claim(w, len, &p, 0);
            if (r != 0)
                shmt_fail(__FILE__, __LINE__, "writer %u claim: %d (%s) %s", id, r,
                          shml_strerror(r), shml_last_error());
            chan_msg_fill(p, len, id, seq);
            ASSERT_OK(shml_commit(w, len));
        } else {
            chan_msg_fill(v, len, id, seq);
            ssize_t r = shml_send(w, v, len, 0);
            if (r != (ssize_t)len)
                shmt_fail(__FILE__, __LINE__, "writer %u: %zd (%s) %s", id, r,
                          shml_strerror((int)r), shml_last_error());
        }
        atomic_store(&a->done[id], seq);
        if (seq % 64 == 0)
            usleep(100); /* values, not a flood: readers also get the CPU */
    }
    shml_channel_close(w);
    shml_segment_close(seg);
    return 0;
}

/* argv: channel, area, id. Ids 0 mod 3 copy, 1 peek, 2 peek and hold a while. */
PEER(kc_reader)
{
    ASSERT_EQ(argc, 3);
    shml_segment *seg;
    struct kc_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    shml_channel *r = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint64_t last[KC_IDS];
    static uint8_t buf[KC_MAX];
    while (!atomic_load(&a->stop_receivers)) {
        const void *m = buf;
        size_t len;
        int rc;
        if (id % 3) {
            rc = shml_peek(r, &m, &len, 100 * MS);
            if (rc == 0 && id % 3 == 2)
                usleep(500);
        } else {
            ssize_t n = shml_recv(r, buf, sizeof buf, 100 * MS);
            rc = n < 0 ? (int)n : 0;
            len = n < 0 ? 0 : (size_t)n;
        }
        if (rc == -ETIMEDOUT)
            continue;
        if (rc != 0)
            shmt_fail(__FILE__, __LINE__, "reader %u: %d (%s) %s", id, rc, shml_strerror(rc),
                      shml_last_error());
        struct chan_msg h;
        kc_check(m, len, &h);
        if (id % 3)
            ASSERT_OK(shml_release(r));
        if (h.seq <= last[h.producer])
            shmt_fail(__FILE__, __LINE__, "reader %u: writer %u version %ju after %ju", id,
                      h.producer, (uintmax_t)h.seq, (uintmax_t)last[h.producer]);
        last[h.producer] = h.seq;
        atomic_fetch_add(&a->got[id], 1);
    }
    shml_channel_close(r);
    shml_segment_close(seg);
    return 0;
}

/* ---- rpc ---- */

/* argv: channel, area, id. Serve until stopped; the reply is the request with seq * 2 + 1. */
PEER(kc_server)
{
    ASSERT_EQ(argc, 3);
    shml_segment *seg;
    struct kc_area *a = chan_shared_open(argv[1], &seg);
    shml_channel *s = chan_open(argv[0], SHML_SERVER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t req[KC_MAX], rep[KC_MAX];
    while (!atomic_load(&a->stop_receivers)) {
        ssize_t n = shml_recv(s, req, sizeof req, 100 * MS);
        if (n == -ETIMEDOUT)
            continue;
        ASSERT_OK(n);
        struct chan_msg h;
        kc_check(req, (size_t)n, &h);
        chan_msg_fill(rep, h.len, h.producer, h.seq * 2 + 1);
        ssize_t r = shml_send(s, rep, h.len, WAIT_BOUND);
        if (r != (ssize_t)h.len)
            shmt_fail(__FILE__, __LINE__, "server reply: %zd (%s) %s", r, shml_strerror((int)r),
                      shml_last_error());
        atomic_fetch_add(&a->served, 1);
    }
    shml_channel_close(s);
    shml_segment_close(seg);
    return 0;
}

/* argv: channel, area, id, seed. Ask until stopped; a reset request is counted, not retried. */
PEER(kc_client)
{
    ASSERT_EQ(argc, 4);
    shml_segment *seg;
    struct kc_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    unsigned seed = (unsigned)strtoul(argv[3], NULL, 10);
    /* SHML_WAIT: between a server's death and its replacement no server may be attached. */
    shml_channel *c = chan_open_flags(argv[0], SHML_CLIENT, SHML_WAIT_ADAPTIVE, SHML_WAIT);
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t req[KC_MAX], rep[KC_MAX];
    for (uint64_t seq = 0; !atomic_load(&a->stop_senders); seq++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (KC_MAX - CHAN_MSG_MIN + 1));
        chan_msg_fill(req, len, id, seq);
        atomic_store(&a->begun[id], seq + 1);
        ssize_t r = shml_send(c, req, len, WAIT_BOUND);
        if (r != (ssize_t)len)
            shmt_fail(__FILE__, __LINE__, "client %u request: %zd (%s) %s", id, r,
                      shml_strerror((int)r), shml_last_error());
        atomic_store(&a->done[id], seq + 1);
        /* A reply or -ECONNRESET, within a bound, whatever dies meanwhile. */
        r = shml_recv(c, rep, sizeof rep, 3 * WAIT_BOUND);
        if (r == -ECONNRESET) {
            atomic_fetch_add(&a->resets[id], 1);
            shmt_log("client %u request %ju: reset (%s)", id, (uintmax_t)seq, shml_last_error());
            continue;
        }
        if (r < 0)
            shmt_fail(__FILE__, __LINE__, "client %u reply to %ju: %zd (%s) %s", id, (uintmax_t)seq,
                      r, shml_strerror((int)r), shml_last_error());
        struct chan_msg h;
        kc_check(rep, (size_t)r, &h);
        if (h.producer != id || h.seq != seq * 2 + 1 || h.len != len)
            shmt_fail(__FILE__, __LINE__,
                      "client %u request %ju: reply %u:%ju (%u bytes) is "
                      "not its own",
                      id, (uintmax_t)seq, h.producer, (uintmax_t)h.seq, h.len);
        atomic_fetch_add(&a->answered[id], 1);
    }
    shml_channel_close(c);
    shml_segment_close(seg);
    return 0;
}

/* ---- the driver ---- */

struct kc_role {
    const char *peer;
    int count;
    bool sender; /* ids from the sender range, else the receiver range */
    bool victim; /* killed in the rounds */
};

struct kc_result {
    int kills[2];   /* senders, receivers */
    int spawned[2]; /* ids used */
    uint64_t sends, got, resets, answered;
};

static void kc_run(const char *addr, const char *area_addr, struct kc_area *a,
                   const struct kc_role *roles, int rounds, struct kc_result *res)
{
    unsigned seed = chan_seed();
    pid_t pids[2][8];
    int ids[2][8];
    memset(res, 0, sizeof *res);
    /* Every round may kill a peer of the same role: ids must not run out, whatever the draw. */
    for (int k = 0; k < 2; k++)
        ASSERT_LE(roles[k].count + rounds, KC_IDS);
#define KC_SPAWN(k, i)                                                                             \
    do {                                                                                           \
        ASSERT_LT(res->spawned[k], KC_IDS);                                                        \
        ids[k][i] = res->spawned[k]++;                                                             \
        pids[k][i] = roles[k].sender                                                               \
                         ? spawn_peer(roles[k].peer, addr, area_addr, shmt_fmt("%d", ids[k][i]),   \
                                      shmt_fmt("%u", rand_r(&seed)))                               \
                         : spawn_peer(roles[k].peer, addr, area_addr, shmt_fmt("%d", ids[k][i]));  \
        ASSERT_EQ(peer_expect(pids[k][i], "ready", 30000), 0);                                     \
    } while (0)
    /* Receivers first: clients must find a server (none at all is -ECONNRESET). */
    for (int k = 1; k >= 0; k--)
        for (int i = 0; i < roles[k].count; i++)
            KC_SPAWN(k, i);
    for (int r = 0; r < rounds; r++) {
        shmt_sleep_ms((int)(rand_r(&seed) % 30));
        int c0 = roles[0].victim ? roles[0].count : 0, c1 = roles[1].victim ? roles[1].count : 0;
        int v = (int)(rand_r(&seed) % (unsigned)(c0 + c1));
        int k = v < c0 ? 0 : 1;
        int i = k ? v - c0 : v;
        ASSERT_EQ(kill_peer(pids[k][i], SIGKILL), 128 + SIGKILL);
        res->kills[k]++;
        KC_SPAWN(k, i);
    }
#undef KC_SPAWN
    /* Traffic still flows after the last death: a bound, not a speed. */
    uint64_t before = 0, after = 0;
    for (int p = 0; p < KC_IDS; p++)
        before += atomic_load(&a->done[p]);
    int64_t until = now_ns() + WAIT_BOUND;
    while (now_ns() < until) {
        after = 0;
        for (int p = 0; p < KC_IDS; p++)
            after += atomic_load(&a->done[p]);
        if (after >= before + 20)
            break;
        shmt_sleep_ms(10);
    }
    ASSERT_GE(after, before + 20);
    atomic_store(&a->stop_senders, 1);
    for (int i = 0; i < roles[0].count; i++)
        ASSERT_EQ(wait_peer(pids[0][i], 40000), 0);
    atomic_store(&a->stop_receivers, 1);
    for (int i = 0; i < roles[1].count; i++)
        ASSERT_EQ(wait_peer(pids[1][i], 40000), 0);
    for (int p = 0; p < KC_IDS; p++) {
        res->sends += atomic_load(&a->done[p]);
        res->got += atomic_load(&a->got[p]);
        res->resets += atomic_load(&a->resets[p]);
        res->answered += atomic_load(&a->answered[p]);
    }
}

static struct kc_area *kc_area(const char **area_addr, shml_segment **seg)
{
    return chan_shared_create(sizeof(struct kc_area), area_addr, seg);
}

static void bus_chaos(int rounds, int pubs, int subs)
{
    const char *area_addr;
    shml_segment *seg;
    struct kc_area *a = kc_area(&area_addr, &seg);
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 16 * 320, KC_MAX, 0);
    shml_channel_close(ch);
    struct kc_role roles[2] = {{"kc_pub", pubs, true, true}, {"kc_sub", subs, false, true}};
    struct kc_result res;
    int64_t t0 = now_ns();
    kc_run(addr, area_addr, a, roles, rounds, &res);
    /* Dead endpoints nobody needed to reclaim yet: detached now, and then none is left. */
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("bus: %d rounds in %.1f s: %d publishers and %d subscribers killed; %ju sent, %ju "
             "delivered and checked, stats: sent %ju received %ju lost %ju",
             rounds, (double)(now_ns() - t0) / 1e9, res.kills[0], res.kills[1],
             (uintmax_t)res.sends, (uintmax_t)res.got, (uintmax_t)st.sent, (uintmax_t)st.received,
             (uintmax_t)st.lost);
    /* A publisher's send that did not return may still have been published. */
    ASSERT_GE(st.sent, res.sends);
    ASSERT_LE(st.sent, res.sends + (uint64_t)res.kills[0]);
    ASSERT_LE(st.lost, (uint64_t)(res.kills[0] + res.kills[1]));
    ASSERT_GE(st.received, res.got);
    ASSERT_EQ(st.drops, 0);
    /* Nothing is held for anyone: the survivors closed, the dead were detached. */
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.attached, 0);
    shml_segment_close(seg);
}

TEST_TIMEOUT(chaos_bus_kill9_2x3, 300)
{
    bus_chaos((int)chan_iters(80, 10), 2, 3);
}

TEST_TIMEOUT(chaos_bus_kill9_1x4, 300)
{
    bus_chaos((int)chan_iters(60, 10), 1, 4);
}

TEST_TIMEOUT(chaos_latest_kill9, 300)
{
    const char *area_addr;
    shml_segment *seg;
    struct kc_area *a = kc_area(&area_addr, &seg);
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 1, KC_MAX, 0);
    ASSERT_GE(chan_stats(ch).slots, 4);
    shml_channel_close(ch);
    /* Four buffers: two readers inside a read at most (src/channel/latest.c's bound), and
       the writer needs back the buffers of readers killed inside theirs. */
    struct kc_role roles[2] = {{"kc_writer", 1, true, true}, {"kc_reader", 2, false, true}};
    struct kc_result res;
    int64_t t0 = now_ns();
    kc_run(addr, area_addr, a, roles, (int)chan_iters(80, 10), &res);
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("latest: %.1f s: %d writers and %d readers killed; %ju written, %ju read, stats: "
             "sent %ju received %ju drops %ju lost %ju",
             (double)(now_ns() - t0) / 1e9, res.kills[0], res.kills[1], (uintmax_t)res.sends,
             (uintmax_t)res.got, (uintmax_t)st.sent, (uintmax_t)st.received, (uintmax_t)st.drops,
             (uintmax_t)st.lost);
    ASSERT_GE(st.sent, res.sends);
    ASSERT_LE(st.sent, res.sends + (uint64_t)res.kills[0]);
    ASSERT_GE(st.received, res.got);
    ASSERT_LE(st.received, res.got + (uint64_t)res.kills[1]);
    ASSERT_EQ(st.attached, 0);
    shml_segment_close(seg);
}

static void log_finding(void *ctx, int repaired, const char *finding)
{
    (void)ctx;
    shmt_log("check: %s%s", finding, repaired ? " (repaired)" : "");
}

static void rpc_chaos(int rounds, int clients, int servers, int victims)
{
    const char *area_addr;
    shml_segment *seg;
    struct kc_area *a = kc_area(&area_addr, &seg);
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_RPC, 0, 16 * 320, KC_MAX, 0);
    shml_channel_close(ch);
    struct kc_role roles[2] = {{"kc_client", clients, true, (victims & 1) != 0},
                               {"kc_server", servers, false, (victims & 2) != 0}};
    struct kc_result res;
    int64_t t0 = now_ns();
    kc_run(addr, area_addr, a, roles, rounds, &res);
    uint64_t lost_before_repair = chan_inspect(addr).lost;
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, log_finding, NULL), 0);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    /* A server drops the requests of dead clients left in the ring (received and dropped). */
    uint64_t lost_after_repair = chan_inspect(addr).lost;
    shml_channel *drain = chan_open(addr, SHML_SERVER, SHML_WAIT_ADAPTIVE);
    static uint8_t buf[KC_MAX];
    ASSERT_EQ(shml_recv(drain, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_inspect(addr);
    uint64_t dropped = st.drops;
    shml_channel_close(drain);
    st = chan_inspect(addr);
    shmt_log("rpc: lost %ju before the final repair, %ju after; %ju requests of dead clients "
             "dropped", (uintmax_t)lost_before_repair, (uintmax_t)lost_after_repair,
             (uintmax_t)dropped);
    /* The counters add up exactly, whatever the kills interrupted (docs/FORMAT.md). */
    shmt_log("identity: sent %ju, received %ju + lost %ju + queued %ju (off by %jd)",
             (uintmax_t)st.sent, (uintmax_t)st.received, (uintmax_t)st.lost,
             (uintmax_t)st.queued, (intmax_t)(st.sent - st.received - st.lost - st.queued));
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.sent, st.received + st.lost);
    uint64_t served = atomic_load(&a->served);
    shmt_log("rpc: %d rounds in %.1f s: %d clients and %d servers killed; %ju requests, %ju "
             "answered, %ju reset, %ju served; stats: sent %ju received %ju lost %ju",
             rounds, (double)(now_ns() - t0) / 1e9, res.kills[0], res.kills[1],
             (uintmax_t)res.sends, (uintmax_t)res.answered, (uintmax_t)res.resets,
             (uintmax_t)served, (uintmax_t)st.sent, (uintmax_t)st.received, (uintmax_t)st.lost);
    int ck = res.kills[0], sk = res.kills[1];
    /* Each request sent is answered, reset, or outstanding when its client died. */
    ASSERT_LE(res.answered + res.resets, res.sends);
    ASSERT_GE(res.answered + res.resets + (uint64_t)ck, res.sends);
    /* A reset only where a server died holding the request. */
    ASSERT_LE(res.resets, (uint64_t)sk);
    /* Lost: a request or a reply its sender counted and a death kept from its receiver (a
       claim, a request being read, a reply being delivered or not read), one per death at
       most. A reset request its server had counted received is not lost: no reply was
       made. */
    ASSERT_LE(st.lost, (uint64_t)(ck + sk));
    ASSERT_EQ(st.attached, 0);
    /* sent: requests and replies (a reply to a dead client is dropped, not sent; a request or
       reply in flight when its sender died may count); received: requests taken (and those of
       dead clients, dropped) and replies read (one each in flight with a dead taker). */
    ASSERT_GE(st.sent + (uint64_t)ck, res.sends + served);
    ASSERT_LE(st.sent, res.sends + served + (uint64_t)(ck + sk));
    ASSERT_GE(st.received, served + res.answered);
    ASSERT_LE(st.received, served + res.answered + (uint64_t)(ck + sk));
    shml_segment_close(seg);
}

TEST_TIMEOUT(chaos_rpc_kill9_3x2, 300)
{
    rpc_chaos((int)chan_iters(80, 10), 3, 2, 3);
}

TEST_TIMEOUT(chaos_rpc_kill9_2x3, 300)
{
    rpc_chaos((int)chan_iters(60, 10), 2, 3, 3);
}

TEST_TIMEOUT(chaos_rpc_kill9_clients_only, 300)
{
    rpc_chaos((int)chan_iters(60, 10), 3, 2, 1);
}

TEST_TIMEOUT(chaos_rpc_kill9_servers_only, 300)
{
    rpc_chaos((int)chan_iters(60, 10), 2, 3, 2);
}
