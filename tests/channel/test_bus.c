/*
 * The bus's API (shmlink/channel.h, SHML_BUS): roles, every subscriber gets every message, a
 * late joiner starts at the next message, SHML_BLOCK waits for the slowest live subscriber,
 * SHML_OVERWRITE never waits and reports every gap exactly, peek/release under both policies,
 * -EMSGSIZE at once, bounded timeouts, a dead subscriber detached.
 *
 * The creating handle is a publisher only unless opts.role says otherwise. Reading of the
 * header where it leaves room (noted so that a reviewer can disagree):
 *  - a SHML_BLOCK bus without any live subscriber never makes its publisher wait (there is no
 *    slowest live subscriber to wait for).
 */
#include "chan_util.h"

#include <signal.h>
#include <unistd.h>
#include <stdlib.h>

#define BUS_MAX 100u

static void send_seq(shml_channel *pub, uint32_t producer, uint64_t seq, uint32_t len)
{
    uint8_t msg[BUS_MAX];
    chan_msg_fill(msg, len, producer, seq);
    ssize_t r = shml_send(pub, msg, len, 0);
    if (r != (ssize_t)len)
        shmt_fail(__FILE__, __LINE__, "send seq %ju: %zd (%s) %s", (uintmax_t)seq, r,
                  shml_strerror((int)r), shml_last_error());
}

/* Receive one chan_msg with timeout 0 into *m (checks the checksum); -ETIMEDOUT if none. */
static ssize_t recv_msg(shml_channel *sub, struct chan_msg *m)
{
    uint8_t buf[BUS_MAX];
    ssize_t n = shml_recv(sub, buf, sizeof buf, 0);
    if (n == -ETIMEDOUT)
        return n;
    ASSERT_OK(n);
    const char *why = chan_msg_check(buf, (size_t)n);
    if (why)
        shmt_fail(__FILE__, __LINE__, "%s", why);
    memcpy(m, buf, sizeof *m);
    return n;
}

/* Receive one chan_msg with timeout 0; returns its seq. */
static uint64_t recv_seq(shml_channel *sub)
{
    struct chan_msg m;
    ASSERT_OK(recv_msg(sub, &m));
    return m.seq;
}

TEST(bus_create_roles_geometry)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 8 * 128, BUS_MAX, 0);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.kind, SHML_BUS);
    ASSERT_EQ(st.policy, SHML_BLOCK);
    ASSERT_EQ(st.slots, 8);
    ASSERT_EQ(st.slot_size, 128);
    ASSERT_EQ(st.max_msg, BUS_MAX);
    ASSERT_EQ(st.endpoints, 64);
    ASSERT_EQ(st.attached, 1);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_EQ(chan_stats(sub).attached, 3);

    /* By default the creator publishes only. */
    char buf[BUS_MAX];
    ASSERT_EQ(shml_send(ch, "from creator", 12, 0), 12);
    ASSERT_EQ(shml_send(pub, "from pub", 8, 0), 8);
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -EBADF);
    ASSERT_EQ(shml_recv(sub, buf, sizeof buf, 0), 12);
    ASSERT_MEM_EQ(buf, "from creator", 12);
    ASSERT_EQ(shml_recv(sub, buf, sizeof buf, 0), 8);
    ASSERT_MEM_EQ(buf, "from pub", 8);
    /* opts.role makes it a subscriber too (or only). */
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_BUS;
    o.role = SHML_PRODUCER | SHML_CONSUMER;
    const char *addr2 = chan_addr();
    shml_channel *both;
    ASSERT_OK(shml_channel_create(addr2, &o, &both));
    ASSERT_EQ(shml_send(both, "self", 4, 0), 4);
    ASSERT_EQ(shml_recv(both, buf, sizeof buf, 0), 4);
    ASSERT_MEM_EQ(buf, "self", 4);
    shml_channel_close(both);
    o.role = SHML_CONSUMER;
    const char *addr3 = chan_addr();
    shml_channel *subonly;
    ASSERT_OK(shml_channel_create(addr3, &o, &subonly));
    ASSERT_ERR(shml_send(subonly, "x", 1, 0), -EBADF);
    ASSERT_ERR(shml_recv(subonly, buf, sizeof buf, 0), -ETIMEDOUT);
    shml_channel_close(subonly);

    /* Wrong role: -EBADF for every call of the other side. */
    void *w;
    const void *r;
    size_t len, lens[2];
    struct shml_iov iov = {"x", 1};
    ASSERT_ERR(shml_recv(pub, buf, sizeof buf, 0), -EBADF);
    ASSERT_ERR(shml_peek(pub, &r, &len, 0), -EBADF);
    ASSERT_ERR(shml_recv_batch(pub, buf, sizeof buf, lens, 2, 0), -EBADF);
    ASSERT_ERR(shml_send(sub, "x", 1, 0), -EBADF);
    ASSERT_ERR(shml_claim(sub, 1, &w, 0), -EBADF);
    ASSERT_ERR(shml_send_batch(sub, &iov, 1, 0), -EBADF);
    shml_channel *x = (shml_channel *)&x;
    ASSERT_ERR(shml_channel_open(addr, 0, NULL, &x), -EINVAL);
    ASSERT_NULL(x);
    ASSERT_EQ(shml_recv_gap(sub), 0);
    shml_channel_close(pub);
    shml_channel_close(sub);
    shml_channel_close(ch);
}

TEST(bus_every_subscriber_every_message)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 16 * 128, BUS_MAX, 0);
    shml_channel_close(ch); /* not a subscriber that holds the publisher back */
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    shml_channel *sub[3];
    for (int i = 0; i < 3; i++)
        sub[i] = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    for (uint64_t s = 0; s < 10; s++)
        send_seq(pub, 1, s, CHAN_MSG_MIN + (uint32_t)s * 7);
    for (int i = 0; i < 3; i++) {
        for (uint64_t s = 0; s < 10; s++) {
            ASSERT_EQ(recv_seq(sub[i]), s);
            ASSERT_EQ(shml_recv_gap(sub[i]), 0);
        }
        char buf[BUS_MAX];
        ASSERT_ERR(shml_recv(sub[i], buf, sizeof buf, 0), -ETIMEDOUT);
    }
    struct shml_channel_stats st = chan_stats(pub);
    ASSERT_EQ(st.sent, 10);
    ASSERT_EQ(st.received, 30); /* deliveries */
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.drops, 0);
    ASSERT_EQ(st.lost, 0);
    for (int i = 0; i < 3; i++)
        shml_channel_close(sub[i]);
    shml_channel_close(pub);
}

TEST(bus_late_joiner_starts_at_next_message)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 8 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    shml_channel *early = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    for (uint64_t s = 0; s < 3; s++)
        send_seq(pub, 1, s, 40);
    shml_channel *late = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[BUS_MAX];
    ASSERT_ERR(shml_recv(late, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_recv(late, buf, sizeof buf, 20 * MS), -ETIMEDOUT);
    send_seq(pub, 1, 3, 40);
    ASSERT_EQ(recv_seq(late), 3);
    ASSERT_EQ(shml_recv_gap(late), 0); /* joining is not missing */
    for (uint64_t s = 0; s < 4; s++)
        ASSERT_EQ(recv_seq(early), s);
    ASSERT_ERR(shml_recv(late, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_EQ(chan_stats(pub).drops, 0);
    shml_channel_close(late);
    shml_channel_close(early);
    shml_channel_close(pub);
}

TEST(bus_block_waits_for_slowest)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *fast = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    shml_channel *slow = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(chan_stats(pub).slots, 4);
    for (uint64_t s = 0; s < 4; s++)
        send_seq(pub, 1, s, 40);
    uint8_t msg[BUS_MAX];
    chan_msg_fill(msg, 40, 1, 4);
    ASSERT_ERR(shml_send(pub, msg, 40, 0), -ETIMEDOUT);
    void *w;
    ASSERT_ERR(shml_claim(pub, 40, &w, 0), -ETIMEDOUT);
    for (uint64_t s = 0; s < 4; s++)
        ASSERT_EQ(recv_seq(fast), s);
    /* Still full: the slow subscriber has read nothing. */
    ASSERT_EQ(chan_stats(pub).queued, 4);
    for (int i = 0; i < 2; i++) {
        int64_t t0 = now_ns();
        ASSERT_ERR(shml_send(pub, msg, 40, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
    }
    ASSERT_EQ(recv_seq(slow), 0);
    ASSERT_EQ(chan_stats(pub).queued, 3);
    ASSERT_EQ(shml_send(pub, msg, 40, 0), 40);
    ASSERT_ERR(shml_send(pub, msg, 40, 0), -ETIMEDOUT);
    for (uint64_t s = 1; s < 5; s++)
        ASSERT_EQ(recv_seq(slow), s);
    ASSERT_EQ(recv_seq(fast), 4);
    ASSERT_EQ(chan_stats(pub).queued, 0);
    ASSERT_EQ(chan_stats(pub).drops, 0);
    /* A subscriber that closes no longer holds the publisher back. */
    for (uint64_t s = 5; s < 9; s++)
        send_seq(pub, 1, s, 40);
    ASSERT_EQ(recv_seq(fast), 5);
    ASSERT_ERR(shml_send(pub, msg, 40, 0), -ETIMEDOUT);
    ASSERT_OK(shml_channel_close(slow));
    chan_msg_fill(msg, 40, 1, 9);
    ASSERT_EQ(shml_send(pub, msg, 40, WAIT_BOUND), 40);
    shml_channel_close(fast);
    shml_channel_close(pub);
}

TEST(bus_block_without_subscribers_never_full)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    for (uint64_t s = 0; s < 50; s++)
        send_seq(pub, 1, s, 40);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[BUS_MAX];
    ASSERT_ERR(shml_recv(sub, buf, sizeof buf, 0), -ETIMEDOUT);
    send_seq(pub, 1, 50, 40);
    ASSERT_EQ(recv_seq(sub), 50);
    ASSERT_EQ(chan_stats(pub).sent, 51);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

TEST(bus_overwrite_gaps_exact)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_OVERWRITE, 4 * 128, BUS_MAX, 0);
    ASSERT_EQ(chan_stats(ch).policy, SHML_OVERWRITE);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *peeker = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    uint64_t next = 0, total_gap = 0, total_gap_p = 0, got = 0, got_p = 0;
    unsigned seed = chan_seed();
    for (int round = 0; round < 200; round++) {
        /* Publish 0..12 messages (never waits), then read all with both subscribers: every
           message published so far is received or counted in a gap. */
        int k = (int)(rand_r(&seed) % 13);
        for (int i = 0; i < k; i++, next++)
            send_seq(pub, 1, next, CHAN_MSG_MIN + (uint32_t)(next % 60));
        for (;;) {
            uint8_t buf[BUS_MAX];
            ssize_t n = shml_recv(sub, buf, sizeof buf, 0);
            if (n == -ETIMEDOUT)
                break;
            ASSERT_OK(n);
            ASSERT_TRUE(chan_msg_check(buf, (size_t)n) == NULL);
            struct chan_msg m;
            memcpy(&m, buf, sizeof m);
            got++;
            total_gap += shml_recv_gap(sub);
            ASSERT_EQ(m.seq + 1, got + total_gap);
        }
        ASSERT_EQ(got + total_gap, next);
        for (;;) {
            const void *p;
            size_t len;
            int r = shml_peek(peeker, &p, &len, 0);
            if (r == -ETIMEDOUT)
                break;
            ASSERT_OK(r);
            ASSERT_TRUE(chan_msg_check(p, len) == NULL);
            struct chan_msg m;
            memcpy(&m, p, sizeof m);
            got_p++;
            total_gap_p += shml_recv_gap(peeker);
            ASSERT_EQ(m.seq + 1, got_p + total_gap_p);
            ASSERT_OK(shml_release(peeker)); /* nobody published meanwhile: not stale */
        }
        ASSERT_EQ(got_p + total_gap_p, next);
    }
    ASSERT_GT(total_gap, 0);
    struct shml_channel_stats st = chan_stats(pub);
    ASSERT_EQ(st.sent, next);
    ASSERT_EQ(st.drops, total_gap + total_gap_p);
    ASSERT_EQ(st.received + st.drops, 2 * next);
    ASSERT_EQ(st.queued, 0);
    shmt_log("%ju messages, %ju + %ju missed", (uintmax_t)next, (uintmax_t)total_gap,
             (uintmax_t)total_gap_p);
    shml_channel_close(peeker);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

TEST(bus_overwrite_lapped_reader_skips_and_counts)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_OVERWRITE, 4 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    /* 100 messages into 4 slots: the publisher never waits. */
    int64_t t0 = now_ns();
    for (uint64_t s = 0; s < 100; s++)
        send_seq(pub, 1, s, 40);
    ASSERT_LT(now_ns() - t0, 5 * SEC); /* sanity, not speed: no send waited */
    uint64_t s0 = recv_seq(sub);
    ASSERT_EQ(shml_recv_gap(sub), s0);
    ASSERT_GE(s0, 96); /* at most the 4 newest are still there */
    uint64_t last = s0;
    while (last < 99) {
        uint64_t s = recv_seq(sub);
        ASSERT_EQ(shml_recv_gap(sub), s - last - 1);
        last = s;
    }
    char buf[BUS_MAX];
    ASSERT_ERR(shml_recv(sub, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_stats(sub);
    ASSERT_EQ(st.drops, s0);
    ASSERT_EQ(st.received, 100 - s0);
    struct shml_endpoint_stats e = chan_endpoint(addr, getpid(), SHML_CONSUMER);
    ASSERT_EQ(e.drops, s0);
    ASSERT_EQ(e.messages, 100 - s0);
    ASSERT_EQ(e.lag, 0);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

TEST(bus_overwrite_release_stale)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_OVERWRITE, 4 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    send_seq(pub, 1, 0, 60);
    send_seq(pub, 1, 1, 60);
    const void *p;
    size_t len;
    ASSERT_OK(shml_peek(sub, &p, &len, 0));
    ASSERT_EQ(len, 60);
    ASSERT_TRUE(chan_msg_check(p, len) == NULL);
    ASSERT_OK(shml_release(sub)); /* untouched: fine */
    ASSERT_OK(shml_peek(sub, &p, &len, 0));
    ASSERT_TRUE(chan_msg_check(p, len) == NULL);
    /* Lap the peeked message: the publisher does not wait for the peek. */
    for (uint64_t s = 2; s < 2 + 8; s++)
        send_seq(pub, 1, s, 40);
    ASSERT_ERR(shml_release(sub), -ESTALE);
    ASSERT_ERR(shml_release(sub), -EINVAL); /* the peek is over either way */
    /* The subscriber goes on with a newer message, and its gap is counted. */
    uint64_t s = recv_seq(sub);
    ASSERT_GT(s, 2);
    ASSERT_LE(s, 9);
    ASSERT_GE(chan_stats(sub).drops, s - 2);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

TEST(bus_block_peek_pins_bytes)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 2 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    send_seq(pub, 1, 0, 90);
    const void *p;
    size_t len;
    ASSERT_OK(shml_peek(sub, &p, &len, 0));
    char buf[BUS_MAX];
    ASSERT_ERR(shml_peek(sub, &p, &len, 0), -EBUSY);
    ASSERT_ERR(shml_recv(sub, buf, sizeof buf, 0), -EBUSY);
    /* Fill the rest and try to lap it: refused while the peek is open. */
    send_seq(pub, 1, 1, 90);
    uint8_t msg[BUS_MAX];
    chan_msg_fill(msg, 90, 1, 2);
    ASSERT_ERR(shml_send(pub, msg, 90, 20 * MS), -ETIMEDOUT);
    ASSERT_TRUE(chan_msg_check(p, len) == NULL);
    struct chan_msg m;
    memcpy(&m, p, sizeof m);
    ASSERT_EQ(m.seq, 0);
    ASSERT_OK(shml_release(sub));
    ASSERT_EQ(shml_send(pub, msg, 90, 0), 90);
    ASSERT_EQ(recv_seq(sub), 1);
    ASSERT_EQ(recv_seq(sub), 2);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

TEST(bus_msgsize_timeouts_small_buffer)
{
    const char *addr;
    shml_channel *pub = chan_make(&addr, SHML_BUS, SHML_BLOCK, 2 * 128, BUS_MAX, 0);
    shml_channel *ch = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    static char big[4096];
    void *w;
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_send(pub, big, BUS_MAX + 1, SHML_FOREVER), -EMSGSIZE);
    ASSERT_ERR(shml_claim(pub, BUS_MAX + 1, &w, SHML_FOREVER), -EMSGSIZE);
    ASSERT_EQ(shml_send(pub, big, BUS_MAX, 0), BUS_MAX);
    ASSERT_EQ(shml_send(pub, big, 10, 0), 10);
    /* Full (the subscriber has read nothing): -EMSGSIZE still comes at once. */
    ASSERT_ERR(shml_send(pub, big, 1, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_send(pub, big, BUS_MAX + 1, SHML_FOREVER), -EMSGSIZE);
    ASSERT_ERR(shml_send(pub, big, 4096, 5 * SEC), -EMSGSIZE);
    ASSERT_LT(now_ns() - t0, 4 * SEC); /* not speed: no 5 s wait happened */
    /* A buffer too small: -EMSGSIZE, and the message stays for this subscriber. */
    char buf[BUS_MAX];
    ASSERT_ERR(shml_recv(ch, buf, BUS_MAX - 1, 0), -EMSGSIZE);
    ASSERT_EQ(shml_recv(ch, buf, BUS_MAX, 0), BUS_MAX);
    ASSERT_EQ(shml_recv(ch, buf, BUS_MAX, 0), 10);
    /* Empty: 0 is at once, 50 ms is honoured. */
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    const void *p;
    size_t len;
    for (int i = 0; i < 2; i++) {
        t0 = now_ns();
        ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
        t0 = now_ns();
        ASSERT_ERR(shml_peek(ch, &p, &len, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
    }
    shml_channel_close(pub);
    shml_channel_close(ch);
}

/* ---- a dead subscriber never blocks a SHML_BLOCK publisher for long ---- */

/* argv: channel, mode ("idle", "peek"). Subscribe, maybe peek one message, hang. */
PEER(bus_sub_hang)
{
    ASSERT_EQ(argc, 2);
    shml_channel *ch = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_BLOCK);
    if (strcmp(argv[1], "peek") == 0) {
        ASSERT_EQ(parent_send("joined"), 0);
        const void *p;
        size_t len;
        ASSERT_OK(shml_peek(ch, &p, &len, WAIT_BOUND));
    }
    ASSERT_EQ(parent_send("ready"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

static void dead_subscriber(const char *mode)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *live = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    pid_t p = spawn_peer("bus_sub_hang", addr, mode);
    if (strcmp(mode, "peek") == 0) {
        ASSERT_EQ(peer_expect(p, "joined", 30000), 0);
        send_seq(pub, 1, 0, 40);
    }
    ASSERT_EQ(peer_expect(p, "ready", 30000), 0);
    uint64_t s = strcmp(mode, "peek") == 0 ? 1 : 0;
    while (chan_stats(pub).queued < 4)
        send_seq(pub, 1, s++, 40);
    uint8_t msg[BUS_MAX];
    chan_msg_fill(msg, 40, 1, s);
    ASSERT_ERR(shml_send(pub, msg, 40, 0), -ETIMEDOUT);
    /* The live subscriber keeps up; the hung one holds the publisher. */
    for (uint64_t i = 0; i < s; i++)
        ASSERT_EQ(recv_seq(live), i);
    ASSERT_ERR(shml_send(pub, msg, 40, 20 * MS), -ETIMEDOUT);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    /* Within a bound (10 s on a loaded machine), the publisher detaches it and goes on. */
    int64_t t0 = now_ns();
    ASSERT_EQ(shml_send(pub, msg, 40, WAIT_BOUND), 40);
    shmt_log("publisher went on %.1f ms after the kill", (double)(now_ns() - t0) / 1e6);
    for (uint64_t i = s + 1; i < s + 20; i++) {
        send_seq(pub, 1, i, 40);
        ASSERT_EQ(recv_seq(live), i - 1);
    }
    ASSERT_EQ(recv_seq(live), s + 19);
    ASSERT_EQ(chan_stats(pub).queued, 0);
    shml_channel_close(live);
    shml_channel_close(pub);
}

TEST_TIMEOUT(bus_dead_subscriber_detached, 60)
{
    dead_subscriber("idle");
}

TEST_TIMEOUT(bus_dead_subscriber_inside_peek_detached, 60)
{
    dead_subscriber("peek");
}

/* ---- overwrite: a stuck publisher never holds up the others ---- */

/* Receive with timeout 0 until empty; every message whole, seqs of `producer` increasing.
   Returns how many were read, *last the last seq. */
static uint64_t drain_seq(shml_channel *sub, uint32_t producer, uint64_t *last)
{
    uint64_t got = 0;
    for (;;) {
        struct chan_msg m;
        if (recv_msg(sub, &m) == -ETIMEDOUT)
            return got;
        ASSERT_EQ(m.producer, producer);
        if (got)
            ASSERT_GT(m.seq, *last);
        *last = m.seq;
        got++;
    }
}

/*
 * The publisher `pub` sends 3 rings' worth past a claim held by another publisher (never
 * waiting), and a subscriber that was waiting behind the claim goes on: it receives the
 * newest messages, whole, then every message of a lock-step exchange, laps after lap, while
 * the claim stays held. Returns the next seq.
 */
static uint64_t send_past_stuck(shml_channel *pub, shml_channel *sub, uint64_t seq)
{
    uint64_t n = chan_stats(pub).slots, last = 0;
    uint64_t first = seq;
    for (uint64_t i = 0; i < 3 * n; i++)
        send_seq(pub, 1, seq++, 40); /* timeout 0: would fail if it had to wait */
    ASSERT_GE(drain_seq(sub, 1, &last), 2);
    ASSERT_EQ(last, seq - 1);
    ASSERT_GT(last, first);
    for (uint64_t i = 0; i < 3 * n; i++) {
        send_seq(pub, 1, seq, 40);
        ASSERT_EQ(recv_seq(sub), seq);
        seq++;
    }
    return seq;
}

TEST(bus_overwrite_stuck_claim_passed)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_OVERWRITE, 8 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    shml_channel *pub = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *stuck = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    send_seq(pub, 1, 0, 40);
    ASSERT_EQ(recv_seq(sub), 0);
    void *b;
    ASSERT_OK(shml_claim(stuck, 60, &b, 0));
    uint64_t seq = send_past_stuck(pub, sub, 1);
    ASSERT_EQ(chan_stats(pub).lost, 1);
    /* What the stuck publisher writes now reaches nobody and spoils nothing. */
    memset(b, 0xa5, 60);
    send_seq(pub, 1, seq, 40);
    ASSERT_EQ(recv_seq(sub), seq++);
    /* Its commit finds the claim passed; the handle goes on, the slot is reused. */
    ASSERT_ERR(shml_commit(stuck, 60), -ESTALE);
    ASSERT_ERR(shml_commit(stuck, 60), -EINVAL);
    send_seq(stuck, 2, 0, 40);
    uint8_t buf[BUS_MAX];
    ASSERT_EQ(shml_recv(sub, buf, sizeof buf, 0), 40);
    ASSERT_TRUE(chan_msg_check(buf, 40) == NULL);
    seq = send_past_stuck(pub, sub, seq);
    ASSERT_EQ(chan_stats(pub).lost, 1);
    /* Discarded and closed when passed: no second count, and the slot comes back. */
    ASSERT_OK(shml_claim(stuck, 60, &b, 0));
    seq = send_past_stuck(pub, sub, seq);
    ASSERT_OK(shml_discard(stuck));
    ASSERT_OK(shml_claim(stuck, 60, &b, 0));
    seq = send_past_stuck(pub, sub, seq);
    shml_channel_close(stuck);
    seq = send_past_stuck(pub, sub, seq);
    struct shml_channel_stats st = chan_stats(pub);
    ASSERT_EQ(st.lost, 3);
    ASSERT_EQ(st.sent, seq + 1);
    /* Nothing is left held: --check finds every slot in order. */
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

/* argv: channel. Claim, say "claimed", wait for "go" (the parent stops or kills us
   meanwhile), then commit (-ESTALE expected) and send seq 7 as producer 3. */
PEER(bus_pub_stuck)
{
    ASSERT_EQ(argc, 1);
    shml_channel *ch = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_BLOCK);
    void *b;
    ASSERT_OK(shml_claim(ch, 60, &b, 0));
    ASSERT_EQ(parent_send("claimed"), 0);
    ASSERT_EQ(parent_expect("go", 30000), 0);
    memset(b, 0x5a, 60);
    ASSERT_ERR(shml_commit(ch, 60), -ESTALE);
    send_seq(ch, 3, 7, 40);
    ASSERT_OK(shml_channel_close(ch));
    return 0;
}

/* An overwrite bus with a publisher pub and a subscriber sub, and a peer publisher (returned)
   that holds a claim. */
static pid_t stuck_peer(const char **addr, shml_channel **pub, shml_channel **sub)
{
    shml_channel *ch = chan_make(addr, SHML_BUS, SHML_OVERWRITE, 8 * 128, BUS_MAX, 0);
    shml_channel_close(ch);
    *pub = chan_open(*addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    *sub = chan_open(*addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    pid_t p = spawn_peer("bus_pub_stuck", *addr);
    ASSERT_EQ(peer_expect(p, "claimed", 30000), 0);
    return p;
}

TEST_TIMEOUT(bus_overwrite_stopped_publisher_passed, 60)
{
    const char *addr;
    shml_channel *pub, *sub;
    pid_t p = stuck_peer(&addr, &pub, &sub);
    ASSERT_SYS(kill(p, SIGSTOP));
    uint64_t seq = send_past_stuck(pub, sub, 0);
    ASSERT_EQ(chan_stats(pub).lost, 1);
    ASSERT_SYS(kill(p, SIGCONT));
    ASSERT_EQ(peer_send(p, "go"), 0);
    ASSERT_EQ(wait_peer(p, 30000), 0);
    struct chan_msg m;
    ASSERT_EQ(recv_msg(sub, &m), 40);
    ASSERT_EQ(m.producer, 3);
    ASSERT_EQ(m.seq, 7);
    send_past_stuck(pub, sub, seq);
    ASSERT_EQ(chan_stats(pub).lost, 1);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

static void log_finding(void *ctx, int repaired, const char *finding)
{
    shmt_log("finding (%d): %s", repaired, finding);
    if (repaired == SHML_CHECK_REPAIRABLE)
        ++*(int *)ctx;
}

/* A stuck publisher killed after the bus passed its claim: its slot, left behind by a dead
   process, is what --check calls repairable and --repair frees; publishers take it back. */
TEST_TIMEOUT(bus_overwrite_passed_claim_of_dead_publisher, 60)
{
    const char *addr;
    shml_channel *pub, *sub;
    pid_t p = stuck_peer(&addr, &pub, &sub);
    uint64_t seq = send_past_stuck(pub, sub, 0);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    int repairable = 0;
    ASSERT_EQ(shml_channel_check(addr, 0, log_finding, &repairable), 2);
    ASSERT_EQ(repairable, 2); /* its endpoint, its slot */
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, log_finding, &repairable), 0);
    seq = send_past_stuck(pub, sub, seq);
    ASSERT_EQ(chan_stats(pub).lost, 1);
    ASSERT_EQ(chan_stats(pub).sent, seq);
    shml_channel_close(sub);
    shml_channel_close(pub);
}
