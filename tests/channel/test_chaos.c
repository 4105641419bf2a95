/*
 * Chaos: producers and consumers killed with SIGKILL at random moments while traffic flows,
 * and the deterministic cases (a producer dies holding a claim, a consumer dies holding a
 * peek, with another endpoint blocked behind it). The survivors go on, every wait is bounded,
 * and the accounting holds: each death loses at most one message, `lost` counts it, and the
 * counters add up exactly (sent = received + lost + queued).
 */
#include "chan_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define CHAOS_MAX_MSG 256u
#define MAX_IDS 128
#define SEQ_CAP (1u << 17) /* a producer sends at most this many, so the bitmap stays small */
#define WORDS (SEQ_CAP / 64)

struct chaos_area {
    _Atomic uint32_t stop_producers;
    _Atomic uint32_t stop_consumers;
    _Atomic uint64_t attempted[MAX_IDS]; /* producer id: sends begun */
    _Atomic uint64_t sent[MAX_IDS];      /* producer id: sends that returned success */
    _Atomic uint64_t received[MAX_IDS];  /* consumer id: messages taken and marked */
    _Atomic uint64_t bits[MAX_IDS][WORDS];
};

static void mark(struct chaos_area *a, const void *m, size_t len, int64_t *last)
{
    const char *why = chan_msg_check(m, len);
    if (why)
        shmt_fail(__FILE__, __LINE__, "corrupt message: %s", why);
    struct chan_msg h;
    memcpy(&h, m, sizeof h);
    if (h.producer >= MAX_IDS || h.seq >= SEQ_CAP)
        shmt_fail(__FILE__, __LINE__, "message from producer %u seq %ju out of range",
                  h.producer, (uintmax_t)h.seq);
    if (last) {
        if ((int64_t)h.seq <= last[h.producer])
            shmt_fail(__FILE__, __LINE__, "producer %u's seq %ju after %jd: order broken",
                      h.producer, (uintmax_t)h.seq, (intmax_t)last[h.producer]);
        last[h.producer] = (int64_t)h.seq;
    }
    uint64_t bit = 1ull << (h.seq % 64);
    if (atomic_fetch_or(&a->bits[h.producer][h.seq / 64], bit) & bit)
        shmt_fail(__FILE__, __LINE__, "duplicate: producer %u seq %ju", h.producer,
                  (uintmax_t)h.seq);
}

/* argv: channel, area, id, seed. Odd ids use claim/commit. */
PEER(chaos_producer)
{
    ASSERT_EQ(argc, 4);
    shml_segment *seg;
    struct chaos_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    unsigned seed = (unsigned)strtoul(argv[3], NULL, 10);
    bool zc = id & 1;
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_PRODUCER, NULL, &ch));
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t msg[CHAOS_MAX_MSG];
    for (uint64_t seq = 0; seq < SEQ_CAP && !atomic_load(&a->stop_producers); seq++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (CHAOS_MAX_MSG - CHAN_MSG_MIN + 1));
        atomic_store(&a->attempted[id], seq + 1);
        for (;;) {
            int r;
            if (zc) {
                void *w;
                r = shml_claim(ch, len, &w, 100 * MS);
                if (r == 0) {
                    chan_msg_fill(w, len, id, seq);
                    r = shml_commit(ch, len);
                    ASSERT_OK(r);
                }
            } else {
                chan_msg_fill(msg, len, id, seq);
                ssize_t s = shml_send(ch, msg, len, 100 * MS);
                r = s < 0 ? (int)s : 0;
            }
            if (r == 0)
                break;
            if (r != -ETIMEDOUT)
                shmt_fail(__FILE__, __LINE__, "producer %u: %d (%s) %s", id, r,
                          shml_strerror(r), shml_last_error());
            if (atomic_load(&a->stop_producers)) {
                shml_channel_close(ch);
                shml_segment_close(seg);
                return 0;
            }
        }
        atomic_store(&a->sent[id], seq + 1);
    }
    while (!atomic_load(&a->stop_producers))
        shmt_sleep_ms(5);
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

/* argv: channel, area, id. Odd ids use peek/release. */
PEER(chaos_consumer)
{
    ASSERT_EQ(argc, 3);
    shml_segment *seg;
    struct chaos_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    bool zc = id & 1;
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_CONSUMER, NULL, &ch));
    static int64_t last[MAX_IDS];
    for (int i = 0; i < MAX_IDS; i++)
        last[i] = -1;
    ASSERT_EQ(parent_send("ready"), 0);
    static uint8_t buf[CHAOS_MAX_MSG];
    while (!atomic_load(&a->stop_consumers)) {
        if (zc) {
            const void *m;
            size_t len;
            int r = shml_peek(ch, &m, &len, 100 * MS);
            if (r == -ETIMEDOUT)
                continue;
            ASSERT_OK(r);
            mark(a, m, len, last);
            ASSERT_OK(shml_release(ch));
        } else {
            ssize_t n = shml_recv(ch, buf, sizeof buf, 100 * MS);
            if (n == -ETIMEDOUT)
                continue;
            ASSERT_OK(n);
            mark(a, buf, (size_t)n, last);
        }
        atomic_fetch_add(&a->received[id], 1);
    }
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

static uint64_t popcount_below(struct chaos_area *a, int id, uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t s = 0; s < n; s++)
        c += (atomic_load_explicit(&a->bits[id][s / 64], memory_order_relaxed) >> (s % 64)) & 1;
    return c;
}

static void chaos(int rounds, int producers, int consumers)
{
    unsigned seed = chan_seed();
    const char *area_addr;
    shml_segment *seg;
    struct chaos_area *a = chan_shared_create(sizeof(struct chaos_area), &area_addr, &seg);
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 16 * 320; /* 16 slots of 256 + 16 -> 320 bytes: full often */
    o.max_msg = CHAOS_MAX_MSG;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    int next_pid = 0, next_cid = 0;
    pid_t prod[8], cons[8];
    int prod_id[8], cons_id[8];
    int pkills = 0, ckills = 0;
#define SPAWN_P(i)                                                                              \
    do {                                                                                       \
        prod_id[i] = next_pid++;                                                               \
        prod[i] = spawn_peer("chaos_producer", addr, area_addr, shmt_fmt("%d", prod_id[i]),   \
                             shmt_fmt("%u", rand_r(&seed)));                                   \
        ASSERT_EQ(peer_expect(prod[i], "ready", 30000), 0);                                    \
    } while (0)
#define SPAWN_C(i)                                                                              \
    do {                                                                                       \
        cons_id[i] = next_cid++;                                                               \
        cons[i] = spawn_peer("chaos_consumer", addr, area_addr, shmt_fmt("%d", cons_id[i]));  \
        ASSERT_EQ(peer_expect(cons[i], "ready", 30000), 0);                                    \
    } while (0)
    for (int i = 0; i < producers; i++)
        SPAWN_P(i);
    for (int i = 0; i < consumers; i++)
        SPAWN_C(i);
    int64_t t0 = now_ns();
    for (int r = 0; r < rounds; r++) {
        shmt_sleep_ms((int)(rand_r(&seed) % 30));
        int victim = (int)(rand_r(&seed) % (unsigned)(producers + consumers));
        if (victim < producers) {
            ASSERT_EQ(kill_peer(prod[victim], SIGKILL), 128 + SIGKILL);
            pkills++;
            ASSERT_LT(next_pid, MAX_IDS);
            SPAWN_P(victim);
        } else {
            victim -= producers;
            ASSERT_EQ(kill_peer(cons[victim], SIGKILL), 128 + SIGKILL);
            ckills++;
            ASSERT_LT(next_cid, MAX_IDS);
            SPAWN_C(victim);
        }
    }
    atomic_store(&a->stop_producers, 1);
    for (int i = 0; i < producers; i++)
        ASSERT_EQ(wait_peer(prod[i], 20000), 0);
    atomic_store(&a->stop_consumers, 1);
    for (int i = 0; i < consumers; i++)
        ASSERT_EQ(wait_peer(cons[i], 20000), 0);
    /* Detach the dead endpoints (settling the slots they held) before anyone reaches those
       slots, so that the repair's accounting is the one tested below. */
    ASSERT_GE(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    /* Drain what is left (a dead producer's claim at the head is skipped, not waited for). */
    uint64_t drained = 0;
    static uint8_t buf[CHAOS_MAX_MSG];
    for (;;) {
        ssize_t n = shml_recv(ch, buf, sizeof buf, 0);
        if (n == -ETIMEDOUT)
            break;
        ASSERT_OK(n);
        mark(a, buf, (size_t)n, NULL);
        drained++;
    }
    /* The queue works afterwards; two laps of round trips also reach every slot a dead
       consumer may still hold, so `lost` is complete afterwards. */
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    for (uint32_t i = 0; i < 2 * st.slots + 2; i++) {
        ASSERT_EQ(shml_send(ch, "ping", 4, WAIT_BOUND), 4);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 4);
        ASSERT_MEM_EQ(buf, "ping", 4);
    }
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    uint64_t published = 0, attempted = 0, received = drained, marked = 0, missing = 0;
    for (int i = 0; i < next_pid; i++) {
        uint64_t s = atomic_load(&a->sent[i]), at = atomic_load(&a->attempted[i]);
        published += s;
        attempted += at;
        marked += popcount_below(a, i, at);
        missing += s - popcount_below(a, i, s);
    }
    for (int i = 0; i < next_cid; i++)
        received += atomic_load(&a->received[i]);
    shmt_log("%d rounds in %.1f s: %d producers and %d consumers killed; %ju published, %ju "
             "received (%ju drained), %ju marked, %ju lost, %ju missing",
             rounds, (double)(now_ns() - t0) / 1e9, pkills, ckills, (uintmax_t)published,
             (uintmax_t)received, (uintmax_t)drained, (uintmax_t)marked, (uintmax_t)st.lost,
             (uintmax_t)missing);
    ASSERT_EQ(st.queued, 0);
    /* The counters add up exactly, whatever the kills interrupted (docs/FORMAT.md, Counters). */
    struct shml_channel_stats in;
    ASSERT_OK(shml_channel_inspect(addr, &in, NULL, 0, NULL));
    shmt_log("identity: sent %ju, received %ju + lost %ju + queued %ju (off by %jd)",
             (uintmax_t)in.sent, (uintmax_t)in.received, (uintmax_t)in.lost,
             (uintmax_t)in.queued, (intmax_t)(in.sent - in.received - in.lost - in.queued));
    ASSERT_EQ(in.sent, in.received + in.lost + in.queued);
    /* Each death loses at most the one message its claim or peek held. */
    ASSERT_LE(st.lost, (uint64_t)(pkills + ckills));
    /* A published message is received, or lost with a consumer that died holding it (counted
       in lost), or taken by a consumer killed before it marked it (at most one per kill). */
    ASSERT_LE(missing, st.lost + (uint64_t)ckills);
    ASSERT_GE(marked + st.lost + (uint64_t)ckills, published);
    /* Nothing appears that was not begun, and counted receipts were all marked. A message is
       both marked and lost when a consumer that peeked at it was killed after marking it and
       before releasing it (the channel never saw it received): one per consumer killed, at
       most. */
    ASSERT_LE(marked + st.lost, attempted + (uint64_t)ckills);
    ASSERT_LE(received, marked);
    ASSERT_GE(received + (uint64_t)ckills, marked);
    shml_channel_close(ch);
    shml_segment_close(seg);
#undef SPAWN_P
#undef SPAWN_C
}

TEST_TIMEOUT(chaos_kill9_2x2, 300)
{
    chaos((int)chan_iters(100, 10), 2, 2);
}

TEST_TIMEOUT(chaos_kill9_3x1, 300)
{
    chaos((int)chan_iters(60, 10), 3, 1);
}

TEST_TIMEOUT(chaos_kill9_1x3, 300)
{
    chaos((int)chan_iters(60, 10), 1, 3);
}

/* ---- deterministic deaths ---- */

/* argv: channel. Send "A", claim a second message, say "claimed", hang until killed. */
PEER(claim_and_hang)
{
    ASSERT_EQ(argc, 1);
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_PRODUCER, NULL, &ch));
    ASSERT_EQ(shml_send(ch, "A", 1, WAIT_BOUND), 1);
    void *w;
    ASSERT_OK(shml_claim(ch, 50, &w, WAIT_BOUND));
    memset(w, 'X', 50);
    ASSERT_EQ(parent_send("claimed"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

/* argv: channel. Peek one message, say "peeked", hang until killed. */
PEER(peek_and_hang)
{
    ASSERT_EQ(argc, 1);
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_CONSUMER, NULL, &ch));
    const void *m;
    size_t len;
    ASSERT_OK(shml_peek(ch, &m, &len, WAIT_BOUND));
    ASSERT_EQ(len, 1);
    ASSERT_EQ(((const char *)m)[0], 'A');
    ASSERT_EQ(parent_send("peeked"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

/* argv: channel, wait. Receive one message with a 20 s bound; report it. */
PEER(blocked_recv)
{
    ASSERT_EQ(argc, 2);
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = (uint32_t)atoi(argv[1]);
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_CONSUMER, &o, &ch));
    ASSERT_EQ(parent_send("ready"), 0);
    char buf[100];
    ssize_t n = shml_recv(ch, buf, sizeof buf, 20 * SEC);
    ASSERT_EQ(parent_send(n == 1 ? shmt_fmt("got %c", buf[0]) : shmt_fmt("error %zd", n)), 0);
    shml_channel_close(ch);
    return 0;
}

/* argv: channel, wait. Send "C" with a 20 s bound; report. */
PEER(blocked_send)
{
    ASSERT_EQ(argc, 2);
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = (uint32_t)atoi(argv[1]);
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_PRODUCER, &o, &ch));
    ASSERT_EQ(parent_send("ready"), 0);
    ssize_t n = shml_send(ch, "C", 1, 20 * SEC);
    ASSERT_EQ(parent_send(shmt_fmt("sent %zd", n)), 0);
    shml_channel_close(ch);
    return 0;
}

static uint64_t stats_lost_of(shml_channel *ch)
{
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    return st.lost;
}

static void producer_dies_holding_claim(uint32_t wait)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 4 * 128;
    o.max_msg = 100;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    pid_t claimer = spawn_peer("claim_and_hang", addr);
    ASSERT_EQ(peer_expect(claimer, "claimed", 30000), 0);
    char buf[100];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'A');
    /* A consumer waits behind the live claim; a message is queued after it. */
    pid_t waiter = spawn_peer("blocked_recv", addr, shmt_fmt("%u", wait));
    ASSERT_EQ(peer_expect(waiter, "ready", 30000), 0);
    ASSERT_EQ(shml_send(ch, "C", 1, WAIT_BOUND), 1);
    shmt_sleep_ms(200); /* let it sleep behind the claim (either way the test holds) */
    ASSERT_EQ(stats_lost_of(ch), 0);
    ASSERT_EQ(kill_peer(claimer, SIGKILL), 128 + SIGKILL);
    /* Released within a bound (50 ms checks; 10 s is for a loaded machine). */
    ASSERT_EQ(peer_expect(waiter, "got C", 10000), 0);
    ASSERT_EQ(wait_peer(waiter, 10000), 0);
    ASSERT_EQ(stats_lost_of(ch), 1);
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(shml_send(ch, "z", 1, WAIT_BOUND), 1);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
        ASSERT_EQ(buf[0], 'z');
    }
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_EQ(stats_lost_of(ch), 1);
    shml_channel_close(ch);
}

static void consumer_dies_holding_peek(uint32_t wait)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 2 * 128;
    o.max_msg = 100;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    ASSERT_EQ(shml_send(ch, "A", 1, 0), 1);
    ASSERT_EQ(shml_send(ch, "B", 1, 0), 1);
    pid_t peeker = spawn_peer("peek_and_hang", addr);
    ASSERT_EQ(peer_expect(peeker, "peeked", 30000), 0);
    /* Full: a producer waits behind the live peek of A's slot. */
    pid_t sender = spawn_peer("blocked_send", addr, shmt_fmt("%u", wait));
    ASSERT_EQ(peer_expect(sender, "ready", 30000), 0);
    shmt_sleep_ms(200);
    ASSERT_EQ(stats_lost_of(ch), 0);
    ASSERT_EQ(kill_peer(peeker, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(peer_expect(sender, "sent 1", 10000), 0);
    ASSERT_EQ(wait_peer(sender, 10000), 0);
    ASSERT_EQ(stats_lost_of(ch), 1);
    char buf[100];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'B');
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'C');
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(shml_send(ch, "z", 1, WAIT_BOUND), 1);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    }
    ASSERT_EQ(stats_lost_of(ch), 1);
    shml_channel_close(ch);
}

TEST_TIMEOUT(producer_dies_holding_claim, 60)
{
    producer_dies_holding_claim(SHML_WAIT_ADAPTIVE);
}

TEST_TIMEOUT(producer_dies_holding_claim_blocking_waiter, 60)
{
    producer_dies_holding_claim(SHML_WAIT_BLOCK);
}

TEST_TIMEOUT(consumer_dies_holding_peek, 60)
{
    consumer_dies_holding_peek(SHML_WAIT_ADAPTIVE);
}

TEST_TIMEOUT(consumer_dies_holding_peek_blocking_waiter, 60)
{
    consumer_dies_holding_peek(SHML_WAIT_BLOCK);
}
