/*
 * The queue's API: options and geometry, errors, timeouts, roles, zero-copy calls, stats,
 * and close with a zero-copy operation open.
 */
#include "chan_util.h"

#include <stdlib.h>

static shml_channel *mk(const char **addr, size_t capacity, size_t max_msg, uint32_t flags)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = capacity;
    o.max_msg = max_msg;
    o.flags = flags;
    *addr = chan_addr();
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(*addr, &o, &ch));
    ASSERT_NOT_NULL(ch);
    return ch;
}

static struct shml_channel_stats stats(shml_channel *ch)
{
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    return st;
}

TEST(create_defaults)
{
    const char *addr = chan_addr();
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, NULL, &ch));
    struct shml_channel_stats st = stats(ch);
    ASSERT_EQ(st.kind, SHML_QUEUE);
    ASSERT_EQ(st.max_msg, 4096);
    /* 1 MiB of slots of 4096 + 16 bytes rounded to 64 (4160): 128 of them fit, 256 do not. */
    ASSERT_EQ(st.slots, 128);
    ASSERT_EQ(st.sent, 0);
    ASSERT_EQ(st.received, 0);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.queued, 0);
    ASSERT_OK(shml_channel_close(ch));
    ASSERT_OK(shml_channel_close(NULL));
}

TEST(capacity_rounds_to_power_of_two)
{
    const char *addr;
    /* Slots of 100 + 16 -> 128 bytes. 1000 bytes hold 7: the largest power of two is 4. */
    shml_channel *ch = mk(&addr, 1000, 100, 0);
    struct shml_channel_stats st = stats(ch);
    ASSERT_EQ(st.slots, 4);
    ASSERT_EQ(st.max_msg, 100);
    shml_channel_close(ch);
    /* Exactly 8 slots' worth: 8. */
    ch = mk(&addr, 8 * 128, 100, 0);
    ASSERT_EQ(stats(ch).slots, 8);
    shml_channel_close(ch);
    /* Below two slots: rounded up to 2, not refused. */
    ch = mk(&addr, 1, 100, 0);
    ASSERT_EQ(stats(ch).slots, 2);
    shml_channel_close(ch);
    /* max_msg 48: 48 + 16 = 64 bytes a slot exactly. */
    ch = mk(&addr, 64 * 64, 48, 0);
    ASSERT_EQ(stats(ch).slots, 64);
    ASSERT_EQ(stats(ch).max_msg, 48);
    shml_channel_close(ch);
}

TEST(open_roles_and_options)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 4096, 64, SHML_SPSC);
    shml_channel *p, *c, *pc;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_BLOCK;
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER, &o, &p));
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, NULL, &c));
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, NULL, &pc));
    /* At open, capacity and max_msg are ignored: the geometry is the creator's. */
    o.capacity = 1 << 20;
    o.max_msg = 1000;
    shml_channel *x;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &o, &x));
    ASSERT_EQ(stats(x).max_msg, 64);
    ASSERT_EQ(stats(x).slots, stats(ch).slots);
    shml_channel_close(x);

    char buf[64];
    ASSERT_EQ(shml_send(p, "hello", 5, 0), 5);
    ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);

    /* Wrong role: -EBADF, for every call of the other side. */
    void *w;
    const void *r;
    size_t len;
    ASSERT_ERR(shml_recv(p, buf, sizeof buf, 0), -EBADF);
    ASSERT_ERR(shml_peek(p, &r, &len, 0), -EBADF);
    ASSERT_ERR(shml_send(c, "x", 1, 0), -EBADF);
    ASSERT_ERR(shml_claim(c, 1, &w, 0), -EBADF);
    ASSERT_OK(shml_channel_close(p));
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(pc));
    ASSERT_OK(shml_channel_close(ch));
}

TEST(bad_options)
{
    const char *addr = chan_addr();
    shml_channel *ch = (shml_channel *)&ch;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = 99;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL);
    ASSERT_NULL(ch);
    o.kind = 0;
    o.policy = SHML_OVERWRITE;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL);
    o.policy = 7;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL);
    o.policy = SHML_BLOCK;
    o.wait = 3;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL);
    o.wait = 0;
    o.flags = 0x2;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL);
    o.flags = 0;
    o.max_msg = ((size_t)1 << 30) + 1;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL);
    ASSERT_ERR(shml_channel_create(addr, NULL, NULL), -EINVAL);
    /* Nothing was created by the failures. */
    shml_segment *seg;
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -ENOENT);

    ch = mk(&addr, 4096, 64, 0);
    shml_channel *x = (shml_channel *)&x;
    ASSERT_ERR(shml_channel_open(addr, 0, NULL, &x), -EINVAL);
    ASSERT_NULL(x);
    ASSERT_ERR(shml_channel_open(addr, 4, NULL, &x), -EINVAL);
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER | 8, NULL, &x), -EINVAL);
    struct shml_channel_opts w = SHML_CHANNEL_OPTS_INIT;
    w.wait = 9;
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER, &w, &x), -EINVAL);
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER, NULL, NULL), -EINVAL);
    ASSERT_ERR(shml_channel_open(chan_addr(), SHML_PRODUCER, NULL, &x), -ENOENT);
    struct shml_channel_stats st;
    ASSERT_ERR(shml_channel_get_stats(NULL, &st), -EINVAL);
    ASSERT_ERR(shml_channel_get_stats(ch, NULL), -EINVAL);
    ASSERT_NULL(shml_channel_segment(NULL));
    shml_channel_close(ch);
}

TEST(open_plain_segment_is_wrong_kind)
{
    const char *addr = chan_addr();
    shml_segment *seg;
    ASSERT_OK(shml_segment_create(addr, 1 << 16, NULL, &seg));
    shml_channel *ch;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &ch), -SHML_EWRONGKIND);
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER, NULL, &ch), -SHML_EWRONGKIND);
    shml_segment_close(seg);
}

TEST(msgsize_at_once)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 4096, 100, 0);
    static char big[200];
    void *w;
    /* Empty queue, forever: still refused at once (the test's timeout would catch a wait). */
    ASSERT_ERR(shml_send(ch, big, 101, SHML_FOREVER), -EMSGSIZE);
    ASSERT_ERR(shml_claim(ch, 101, &w, SHML_FOREVER), -EMSGSIZE);
    ASSERT_EQ(shml_send(ch, big, 100, 0), 100);
    ASSERT_EQ(shml_send(ch, big, 0, 0), 0);
    /* Full queue: -EMSGSIZE, not a wait, whatever the timeout. */
    while (shml_send(ch, big, 1, 0) == 1) {
    }
    ASSERT_EQ(stats(ch).queued, stats(ch).slots);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_send(ch, big, 101, SHML_FOREVER), -EMSGSIZE);
    ASSERT_ERR(shml_send(ch, big, 1u << 31, 5 * SEC), -EMSGSIZE);
    ASSERT_ERR(shml_claim(ch, 101, &w, SHML_FOREVER), -EMSGSIZE);
    ASSERT_LT(now_ns() - t0, 4 * SEC); /* not a speed bound: the 5 s timeout was not waited */
    shml_channel_close(ch);
}

TEST(recv_small_buffer_keeps_message)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 4096, 100, 0);
    char msg[50], buf[100];
    shmt_fill(msg, sizeof msg, 7);
    ASSERT_EQ(shml_send(ch, msg, sizeof msg, 0), 50);
    ASSERT_ERR(shml_recv(ch, buf, 49, 0), -EMSGSIZE);
    ASSERT_ERR(shml_recv(ch, buf, 0, SHML_FOREVER), -EMSGSIZE);
    ASSERT_EQ(stats(ch).queued, 1);
    /* The message stays and is whole. */
    ASSERT_EQ(shml_recv(ch, buf, 50, 0), 50);
    ASSERT_PATTERN(buf, 50, 7);
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    /* A zero-length message fits any buffer. */
    ASSERT_EQ(shml_send(ch, msg, 0, 0), 0);
    ASSERT_EQ(shml_recv(ch, buf, 0, 0), 0);
    shml_channel_close(ch);
}

TEST(timeouts)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 2 * 128, 100, 0);
    char buf[100] = {0};
    void *w;
    const void *r;
    size_t len;
    /* 0: at once. */
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_peek(ch, &r, &len, 0), -ETIMEDOUT);
    ASSERT_LT(now_ns() - t0, 2 * SEC); /* sanity, not speed: 0 means no wait */
    /* 50 ms on an empty queue: honoured, never early. */
    for (int i = 0; i < 3; i++) {
        t0 = now_ns();
        ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
        t0 = now_ns();
        ASSERT_ERR(shml_peek(ch, &r, &len, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
    }
    /* Full queue. */
    ASSERT_EQ(stats(ch).slots, 2);
    ASSERT_EQ(shml_send(ch, buf, 1, 0), 1);
    ASSERT_EQ(shml_send(ch, buf, 1, 0), 1);
    ASSERT_ERR(shml_send(ch, buf, 1, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_claim(ch, 1, &w, 0), -ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        t0 = now_ns();
        ASSERT_ERR(shml_send(ch, buf, 1, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
        t0 = now_ns();
        ASSERT_ERR(shml_claim(ch, 1, &w, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
    }
    /* The same with the blocking strategy. */
    shml_channel *b;
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_BLOCK;
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, &o, &b));
    t0 = now_ns();
    ASSERT_ERR(shml_send(b, buf, 1, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    ASSERT_EQ(shml_recv(b, buf, sizeof buf, 0), 1);
    ASSERT_EQ(shml_recv(b, buf, sizeof buf, 0), 1);
    t0 = now_ns();
    ASSERT_ERR(shml_recv(b, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    shml_channel_close(b);
    shml_channel_close(ch);
}

TEST(one_claim_one_peek_per_handle)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 8 * 128, 100, 0);
    void *w, *w2;
    ASSERT_OK(shml_claim(ch, 10, &w, 0));
    ASSERT_ERR(shml_claim(ch, 10, &w2, 0), -EBUSY);
    ASSERT_ERR(shml_send(ch, "x", 1, 0), -EBUSY);
    memcpy(w, "0123456789", 10);
    ASSERT_OK(shml_commit(ch, 10));
    ASSERT_ERR(shml_commit(ch, 1), -EINVAL); /* no claim open */
    ASSERT_EQ(shml_send(ch, "abc", 3, 0), 3);

    const void *r, *r2;
    size_t len, len2;
    char buf[100];
    ASSERT_OK(shml_peek(ch, &r, &len, 0));
    ASSERT_EQ(len, 10);
    ASSERT_MEM_EQ(r, "0123456789", 10);
    ASSERT_ERR(shml_peek(ch, &r2, &len2, 0), -EBUSY);
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -EBUSY);
    ASSERT_OK(shml_release(ch));
    ASSERT_ERR(shml_release(ch), -EINVAL); /* no peek open */
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    shml_channel_close(ch);
}

TEST(claim_commit_lengths)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 8 * 128, 100, 0);
    void *w;
    ASSERT_OK(shml_claim(ch, 100, &w, 0));
    shmt_fill(w, 100, 3);
    /* Longer than claimed: refused, and the claim stays open. */
    ASSERT_ERR(shml_commit(ch, 101), -EINVAL);
    /* Shorter than claimed: published with the shorter length. */
    ASSERT_OK(shml_commit(ch, 40));
    ASSERT_OK(shml_claim(ch, 0, &w, 0));
    ASSERT_OK(shml_commit(ch, 0));
    ASSERT_OK(shml_claim(ch, 5, &w, 0));
    memcpy(w, "hello", 5);
    ASSERT_OK(shml_commit(ch, 5));

    char buf[100];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 40);
    ASSERT_PATTERN(buf, 40, 3);
    const void *r;
    size_t len = 99;
    ASSERT_OK(shml_peek(ch, &r, &len, 0));
    ASSERT_EQ(len, 0);
    ASSERT_OK(shml_release(ch));
    /* Peek has no capacity: it sees a message of any length in place. */
    ASSERT_OK(shml_peek(ch, &r, &len, 0));
    ASSERT_EQ(len, 5);
    ASSERT_MEM_EQ(r, "hello", 5);
    ASSERT_OK(shml_release(ch));
    struct shml_channel_stats st = stats(ch);
    ASSERT_EQ(st.sent, 3);
    ASSERT_EQ(st.received, 3);
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.lost, 0);
    shml_channel_close(ch);
}

TEST(fifo_and_wraparound)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 4 * 128, 100, 0);
    char msg[100], buf[100];
    /* Many laps of a 4-slot ring, with the queue holding 0..4 messages. */
    uint64_t next_send = 0, next_recv = 0;
    unsigned seed = chan_seed();
    for (int i = 0; i < 20000; i++) {
        if (rand_r(&seed) % 2 && next_send - next_recv < 4) {
            uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (100 - CHAN_MSG_MIN + 1));
            chan_msg_fill(msg, len, 1, next_send++);
            ASSERT_EQ(shml_send(ch, msg, len, 0), (ssize_t)len);
        } else if (next_recv < next_send) {
            ssize_t n = shml_recv(ch, buf, sizeof buf, 0);
            ASSERT_OK(n);
            const char *why = chan_msg_check(buf, (size_t)n);
            if (why)
                shmt_fail(__FILE__, __LINE__, "%s", why);
            struct chan_msg m;
            memcpy(&m, buf, sizeof m);
            ASSERT_EQ(m.seq, next_recv);
            next_recv++;
        }
        struct shml_channel_stats st = stats(ch);
        ASSERT_EQ(st.queued, next_send - next_recv);
    }
    struct shml_channel_stats st = stats(ch);
    ASSERT_EQ(st.sent, next_send);
    ASSERT_EQ(st.received, next_recv);
    shml_channel_close(ch);
}

TEST(stats_count)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 8 * 128, 100, 0);
    shml_channel *other;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, NULL, &other));
    char buf[100];
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(shml_send(ch, buf, 10, 0), 10);
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 10);
    ASSERT_EQ(shml_recv(other, buf, sizeof buf, 0), 10);
    /* Counters are the channel's, the same through every handle. */
    struct shml_channel_stats a = stats(ch), b = stats(other);
    ASSERT_EQ(a.sent, 5);
    ASSERT_EQ(a.received, 2);
    ASSERT_EQ(a.queued, 3);
    ASSERT_EQ(a.lost, 0);
    ASSERT_EQ(b.sent, 5);
    ASSERT_EQ(b.received, 2);
    ASSERT_EQ(b.queued, 3);
    /* An open claim is not a committed message: "sent: messages committed". */
    void *w;
    ASSERT_OK(shml_claim(ch, 10, &w, 0));
    ASSERT_EQ(stats(ch).sent, 5);
    ASSERT_OK(shml_commit(ch, 10));
    ASSERT_EQ(stats(ch).sent, 6);
    shml_channel_close(other);
    shml_channel_close(ch);
}

TEST(close_with_claim_open)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 4 * 128, 100, 0);
    shml_channel *p;
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER, NULL, &p));
    char buf[100];
    ASSERT_EQ(shml_send(p, "a", 1, 0), 1);
    void *w;
    ASSERT_OK(shml_claim(p, 50, &w, 0));
    memset(w, 'x', 50);
    ASSERT_EQ(shml_send(ch, "c", 1, 0), 1);
    ASSERT_OK(shml_channel_close(p)); /* abandons the claim */
    ASSERT_EQ(stats(ch).lost, 1);
    /* The consumer gets a and c, never the abandoned message, and does not wait for it. */
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'a');
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'c');
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    /* Many more laps: not wedged. */
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(shml_send(ch, buf, 7, WAIT_BOUND), 7);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 7);
    }
    ASSERT_EQ(stats(ch).lost, 1);
    ASSERT_EQ(stats(ch).queued, 0);
    shml_channel_close(ch);
}

TEST(close_with_peek_open)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 2 * 128, 100, 0);
    ASSERT_EQ(stats(ch).slots, 2);
    shml_channel *c;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, NULL, &c));
    char buf[100];
    ASSERT_EQ(shml_send(ch, "a", 1, 0), 1);
    ASSERT_EQ(shml_send(ch, "b", 1, 0), 1);
    const void *r;
    size_t len;
    ASSERT_OK(shml_peek(c, &r, &len, 0));
    ASSERT_EQ(len, 1);
    ASSERT_OK(shml_channel_close(c)); /* abandons the peek: a is lost */
    ASSERT_EQ(stats(ch).lost, 1);
    /* The slot of a is free again: the ring takes two more. */
    ASSERT_EQ(shml_send(ch, "c", 1, WAIT_BOUND), 1);
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'b');
    ASSERT_EQ(shml_send(ch, "d", 1, WAIT_BOUND), 1);
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'c');
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(buf[0], 'd');
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_EQ(stats(ch).lost, 1);
    shml_channel_close(ch);
}

TEST(spsc_basics)
{
    const char *addr;
    shml_channel *ch = mk(&addr, 4 * 128, 100, SHML_SPSC);
    shml_channel *p, *c;
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER, NULL, &p));
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, NULL, &c));
    char msg[100], buf[100];
    for (uint64_t i = 0; i < 10000; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(i % (100 - CHAN_MSG_MIN + 1));
        chan_msg_fill(msg, len, 2, i);
        if (i % 2) {
            ASSERT_EQ(shml_send(p, msg, len, WAIT_BOUND), (ssize_t)len);
        } else {
            void *w;
            ASSERT_OK(shml_claim(p, len, &w, WAIT_BOUND));
            memcpy(w, msg, len);
            ASSERT_OK(shml_commit(p, len));
        }
        if (i % 3 == 0) {
            const void *r;
            size_t n;
            ASSERT_OK(shml_peek(c, &r, &n, WAIT_BOUND));
            ASSERT_EQ(n, len);
            ASSERT_MEM_EQ(r, msg, len);
            ASSERT_OK(shml_release(c));
        } else {
            ASSERT_EQ(shml_recv(c, buf, sizeof buf, WAIT_BOUND), (ssize_t)len);
            ASSERT_MEM_EQ(buf, msg, len);
        }
    }
    ASSERT_EQ(stats(ch).sent, 10000);
    ASSERT_EQ(stats(ch).received, 10000);
    shml_channel_close(p);
    shml_channel_close(c);
    shml_channel_close(ch);
}

/* A typed channel: the type is stored at create and read back by any opener. */
TEST(typed_channel)
{
    const char *addr = chan_addr();
    struct shml_channel_type t = {.format = "T{<Q:seq:<d:t:}", .itemsize = 16, .ndim = 2,
                                  .shape = {480, 640}};
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_BUS;
    o.type = &t;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_EQ(st.max_msg, 16u * 480 * 640); /* max_msg 0: one message of the type */
    shml_channel *r;
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, NULL, &r));
    struct shml_channel_type got;
    ASSERT_OK(shml_channel_get_type(r, &got));
    ASSERT_STR_EQ(got.format, "T{<Q:seq:<d:t:}");
    ASSERT_EQ(got.itemsize, 16);
    ASSERT_EQ(got.ndim, 2);
    ASSERT_EQ(got.shape[0], 480);
    ASSERT_EQ(got.shape[1], 640);
    ASSERT_EQ(got.shape[2], 0);
    ASSERT_ERR(shml_channel_get_type(r, NULL), -EINVAL);
    shml_channel_close(r);
    shml_channel_close(ch);

    /* Untyped: format "" and itemsize 0. */
    const char *plain = chan_addr();
    ASSERT_OK(shml_channel_create(plain, NULL, &ch));
    ASSERT_OK(shml_channel_get_type(ch, &got));
    ASSERT_STR_EQ(got.format, "");
    ASSERT_EQ(got.itemsize, 0);
    shml_channel_close(ch);

    /* Invalid types, refused before anything is made. */
    const char *bad = chan_addr();
    struct shml_channel_type b = t;
    b.itemsize = 0;
    o.type = &b;
    ASSERT_ERR(shml_channel_create(bad, &o, &ch), -EINVAL);
    b = t;
    b.ndim = 9;
    ASSERT_ERR(shml_channel_create(bad, &o, &ch), -EINVAL);
    b = t;
    b.shape[1] = 0;
    ASSERT_ERR(shml_channel_create(bad, &o, &ch), -EINVAL);
    b = t;
    b.format[3] = '\n';
    ASSERT_ERR(shml_channel_create(bad, &o, &ch), -EINVAL);
    b = t;
    memset(b.format, 'B', sizeof b.format); /* no NUL */
    ASSERT_ERR(shml_channel_create(bad, &o, &ch), -EINVAL);
    o.type = &t;
    o.max_msg = 1000; /* smaller than one message of the type */
    ASSERT_ERR(shml_channel_create(bad, &o, &ch), -EINVAL);
    ASSERT_ERR(shml_segment_unlink(bad), -ENOENT);
}

/*
 * A typed channel takes only whole messages of its type, by every way of sending: a reader
 * (the Python module, `shmlink recv`) views each message as one array of the type.
 */
TEST(typed_channel_refuses_other_sizes)
{
    const char *addr = chan_addr();
    struct shml_channel_type t = {.format = "<f", .itemsize = 4, .ndim = 1, .shape = {2}};
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_QUEUE;
    o.type = &t;
    o.max_msg = 64;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    float pair[2] = {1.5f, 2.5f};
    ASSERT_ERR(shml_send(ch, "hello", 5, 0), -EMSGSIZE);
    ASSERT_ERR(shml_send(ch, pair, 4, 0), -EMSGSIZE);
    ASSERT_ERR(shml_send(ch, pair, 0, 0), -EMSGSIZE);
    ASSERT_EQ(shml_send(ch, pair, sizeof pair, 0), (ssize_t)sizeof pair);
    struct shml_iov iov[2] = {{pair, sizeof pair}, {pair, 3}};
    ASSERT_ERR(shml_send_batch(ch, iov, 2, 0), -EMSGSIZE);
    /* A claim is bounded by max_msg only; the commit must be one message: otherwise the
       claim is withdrawn and the handle can claim again. */
    void *buf;
    ASSERT_OK(shml_claim(ch, 16, &buf, 0));
    ASSERT_ERR(shml_commit(ch, 5), -EMSGSIZE);
    ASSERT_OK(shml_claim(ch, 8, &buf, 0));
    memcpy(buf, pair, sizeof pair);
    ASSERT_OK(shml_commit(ch, sizeof pair));
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_EQ(st.sent, 2);
    float got[16];
    ASSERT_EQ(shml_recv(ch, got, sizeof got, 0), (ssize_t)sizeof pair);
    ASSERT_EQ(shml_recv(ch, got, sizeof got, 0), (ssize_t)sizeof pair);
    ASSERT_ERR(shml_recv(ch, got, sizeof got, 0), -ETIMEDOUT);
    shml_channel_close(ch);
}
