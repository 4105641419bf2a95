/*
 * shml_send_batch() and shml_recv_batch() on a queue and on a bus: counts, packing back to
 * back, stopping early at a message that does not fit, -EMSGSIZE (none sent; the first does
 * not fit: it stays), timeouts, and what every subscriber of a bus gets.
 */
#include "chan_util.h"

#include <stdlib.h>

#define B_MAX 100u

static struct shml_iov iovs[64];
static uint8_t store[64][B_MAX + 1];

/* n test messages, message i of lens[i] bytes filled with pattern seed base + i. */
static const struct shml_iov *make(size_t n, const size_t *lens, unsigned base)
{
    for (size_t i = 0; i < n; i++) {
        shmt_fill(store[i], lens[i], base + (unsigned)i);
        iovs[i].base = store[i];
        iovs[i].len = lens[i];
    }
    return iovs;
}

static size_t queued(shml_channel *ch)
{
    return (size_t)chan_stats(ch).queued;
}

static void batch_basics(uint32_t kind)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, kind, SHML_BLOCK, 8 * 128, B_MAX, 0);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_EQ(chan_stats(ch).slots, 8);
    size_t lens[10] = {10, 20, 30, 40, 50, 0, 100, 1, 2, 3};
    /* Five fit: five sent. */
    ASSERT_EQ(shml_send_batch(p, make(5, lens, 100), 5, 0), 5);
    ASSERT_EQ(queued(ch), 5);
    /* Five more, room for three: three sent, without waiting. */
    ASSERT_EQ(shml_send_batch(p, make(5, lens + 5, 105), 5, 0), 3);
    ASSERT_EQ(queued(ch), 8);
    /* Full: the first cannot go. */
    ASSERT_ERR(shml_send_batch(p, make(2, lens, 0), 2, 0), -ETIMEDOUT);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_send_batch(p, make(2, lens, 0), 2, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    /* -EMSGSIZE for any message too long, at once, whatever the room: none sent. */
    size_t badl[3] = {5, 6, B_MAX + 1};
    ASSERT_ERR(shml_send_batch(p, make(3, badl, 0), 3, SHML_FOREVER), -EMSGSIZE);

    /* Receive: the first fits in 5 bytes? No (10): -EMSGSIZE, and it stays. */
    static uint8_t buf[4096];
    size_t got[16];
    ASSERT_ERR(shml_recv_batch(c, buf, 9, got, 16, 0), -EMSGSIZE);
    ASSERT_EQ(queued(ch), 8);
    /* 10 + 20 fit in 35, 30 does not: two, and the rest stays. */
    ASSERT_EQ(shml_recv_batch(c, buf, 35, got, 16, 0), 2);
    ASSERT_EQ(got[0], 10);
    ASSERT_EQ(got[1], 20);
    ASSERT_PATTERN(buf, 10, 100);
    ASSERT_PATTERN(buf + 10, 20, 101);
    ASSERT_EQ(queued(ch), 6);
    /* At most n. */
    ASSERT_EQ(shml_recv_batch(c, buf, sizeof buf, got, 1, 0), 1);
    ASSERT_EQ(got[0], 30);
    ASSERT_PATTERN(buf, 30, 102);
    /* The rest, packed back to back: 40 50 | 0 100 1 (the batch of three). */
    ASSERT_EQ(shml_recv_batch(c, buf, sizeof buf, got, 16, 0), 5);
    size_t want[5] = {40, 50, 0, 100, 1};
    unsigned seeds[5] = {103, 104, 105, 106, 107};
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(got[i], want[i]);
        ASSERT_PATTERN(buf + off, want[i], seeds[i]);
        off += got[i];
    }
    /* Empty. */
    ASSERT_ERR(shml_recv_batch(c, buf, sizeof buf, got, 16, 0), -ETIMEDOUT);
    t0 = now_ns();
    ASSERT_ERR(shml_recv_batch(c, buf, sizeof buf, got, 16, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    /* A batch of zero-length messages fits a buffer of 0 bytes. */
    size_t zl[3] = {0, 0, 0};
    ASSERT_EQ(shml_send_batch(p, make(3, zl, 0), 3, 0), 3);
    ASSERT_EQ(shml_recv_batch(c, buf, 0, got, 16, 0), 3);
    /* A batch and single calls interleave in order. */
    ASSERT_EQ(shml_send(p, "one", 3, 0), 3);
    ASSERT_EQ(shml_send_batch(p, make(2, lens, 200), 2, 0), 2);
    ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), 3);
    ASSERT_EQ(shml_recv_batch(c, buf, sizeof buf, got, 16, 0), 2);
    ASSERT_PATTERN(buf, 10, 200);
    ASSERT_PATTERN(buf + 10, 20, 201);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.sent, 8 + 3 + 3);
    ASSERT_EQ(st.received, 8 + 3 + 3);
    ASSERT_EQ(st.bytes_sent, 150 + 101 + 0 + 3 + 30);
    ASSERT_EQ(st.bytes_received, st.bytes_sent);
    ASSERT_EQ(st.queued, 0);
    shml_channel_close(c);
    shml_channel_close(p);
    shml_channel_close(ch);
}

TEST(batch_queue)
{
    batch_basics(SHML_QUEUE);
}

TEST(batch_bus)
{
    batch_basics(SHML_BUS);
}

TEST(batch_bus_every_subscriber)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_BLOCK, 16 * 128, B_MAX, 0);
    shml_channel_close(ch);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    size_t lens[12];
    for (int i = 0; i < 12; i++)
        lens[i] = (size_t)(i * 8);
    ASSERT_EQ(shml_send_batch(p, make(12, lens, 50), 12, 0), 12);
    static uint8_t buf[4096];
    size_t got[32];
    for (int i = 0; i < 3; i++) {
        /* Subscriber i takes them in batches of i + 1 at most. */
        size_t k = 0;
        while (k < 12) {
            ssize_t n = shml_recv_batch(s[i], buf, sizeof buf, got, (size_t)i + 1, 0);
            ASSERT_GE(n, 1);
            ASSERT_LE(n, i + 1);
            size_t off = 0;
            for (ssize_t j = 0; j < n; j++, k++) {
                ASSERT_EQ(got[j], lens[k]);
                ASSERT_PATTERN(buf + off, got[j], 50 + (unsigned)k);
                off += got[j];
            }
            ASSERT_EQ(shml_recv_gap(s[i]), 0);
        }
        ASSERT_ERR(shml_recv_batch(s[i], buf, sizeof buf, got, 32, 0), -ETIMEDOUT);
    }
    ASSERT_EQ(chan_stats(p).received, 36);
    for (int i = 0; i < 3; i++)
        shml_channel_close(s[i]);
    shml_channel_close(p);
}

TEST(batch_bus_overwrite_never_waits)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, SHML_OVERWRITE, 4 * 128, B_MAX, 0);
    shml_channel_close(ch);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *s = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    /* Ten chan_msgs into four slots: all ten go (nothing to wait for). */
    static uint8_t msgs[10][B_MAX];
    struct shml_iov v[10];
    for (int i = 0; i < 10; i++) {
        chan_msg_fill(msgs[i], 40, 1, (uint64_t)i);
        v[i].base = msgs[i];
        v[i].len = 40;
    }
    ASSERT_EQ(shml_send_batch(p, v, 10, 0), 10);
    static uint8_t buf[4096];
    size_t got[16];
    ssize_t n = shml_recv_batch(s, buf, sizeof buf, got, 16, 0);
    ASSERT_GE(n, 1);
    ASSERT_LE(n, 4);
    struct chan_msg m = {0};
    for (ssize_t j = 0; j < n; j++) {
        ASSERT_EQ(got[j], 40);
        ASSERT_TRUE(chan_msg_check(buf + 40 * j, 40) == NULL);
        memcpy(&m, buf + 40 * j, sizeof m);
        if (j == 0)
            ASSERT_EQ(shml_recv_gap(s), m.seq); /* skipped before the first */
    }
    ASSERT_EQ(m.seq, 9); /* the batch ran to the newest, contiguous from the first */
    memcpy(&m, buf, sizeof m);
    ASSERT_EQ(m.seq + (uint64_t)n, 10);
    ASSERT_EQ(chan_stats(p).drops, 10 - (uint64_t)n);
    shml_channel_close(s);
    shml_channel_close(p);
}
