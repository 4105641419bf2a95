/*
 * shml_discard(): a claim withdrawn for every kind. Nothing is delivered, no counter moves,
 * the room is usable again (many more discards than slots), messages around a discarded one
 * arrive in order, a receiver asleep at the discarded position wakes for the next message,
 * and an rpc server that discards its reply still owes it.
 */
#include "chan_util.h"

#include <pthread.h>
#include <unistd.h>

#define MAX 64u

static shml_channel *mk_queue(const char **addr, uint32_t flags)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 4 * 128; /* 4 slots of 64 + 16 bytes rounded to 128 */
    o.max_msg = MAX;
    o.flags = flags;
    *addr = chan_addr();
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(*addr, &o, &ch));
    return ch;
}

/* Claim room for `text`, write it, then discard it. */
static void claim_and_discard(shml_channel *ch, const char *text)
{
    void *w;
    ASSERT_OK(shml_claim(ch, strlen(text), &w, WAIT_BOUND));
    memcpy(w, text, strlen(text));
    ASSERT_OK(shml_discard(ch));
    ASSERT_ERR(shml_discard(ch), -EINVAL); /* nothing open any more */
    ASSERT_ERR(shml_commit(ch, 0), -EINVAL);
}

static void expect(shml_channel *ch, const char *text)
{
    char buf[MAX];
    ssize_t n = shml_recv(ch, buf, sizeof buf, WAIT_BOUND);
    ASSERT_EQ(n, (ssize_t)strlen(text));
    ASSERT_MEM_EQ(buf, text, strlen(text));
}

static void queue_discards(uint32_t flags)
{
    const char *addr;
    shml_channel *ch = mk_queue(&addr, flags);
    ASSERT_ERR(shml_discard(ch), -EINVAL);
    ASSERT_ERR(shml_discard(NULL), -EINVAL);
    char buf[MAX];
    /* Ten times the slots: a discarded slot must come back, or the ring fills. */
    for (int i = 0; i < 40; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "m%d", i);
        claim_and_discard(ch, "never");
        ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
        ASSERT_EQ(shml_send(ch, msg, strlen(msg), WAIT_BOUND), (ssize_t)strlen(msg));
        claim_and_discard(ch, "never");
        expect(ch, msg);
    }
    /* A full ring but for a discarded claim in the middle: order is kept. */
    ASSERT_EQ(shml_send(ch, "a", 1, 0), 1);
    claim_and_discard(ch, "never");
    ASSERT_EQ(shml_send(ch, "b", 1, 0), 1);
    ASSERT_EQ(shml_send(ch, "c", 1, 0), 1);
    expect(ch, "a");
    expect(ch, "b");
    expect(ch, "c");
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.sent, 43);
    ASSERT_EQ(st.received, 43);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.queued, 0);
    ASSERT_OK(shml_channel_close(ch));
}

TEST(discard_queue)
{
    queue_discards(0);
}

TEST(discard_queue_spsc)
{
    queue_discards(SHML_SPSC);
}

struct sleeper {
    const char *addr;
    char got[MAX];
    ssize_t n;
};

static void *recv_asleep(void *arg)
{
    struct sleeper *s = arg;
    shml_channel *c = chan_open(s->addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    s->n = shml_recv(c, s->got, sizeof s->got, WAIT_BOUND);
    shml_channel_close(c);
    return NULL;
}

TEST(discard_wakes_nobody_then_the_next_message_arrives)
{
    const char *addr;
    shml_channel *ch = mk_queue(&addr, 0);
    shml_channel *prod = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    struct sleeper s = {.addr = addr};
    void *w;
    /* The consumer goes to sleep on the position the claim holds. */
    ASSERT_OK(shml_claim(prod, 5, &w, WAIT_BOUND));
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, recv_asleep, &s), 0);
    int64_t until = now_ns() + WAIT_BOUND;
    while (chan_stats(ch).sleeps == 0 && now_ns() < until)
        usleep(1000);
    ASSERT_NE(chan_stats(ch).sleeps, 0);
    ASSERT_OK(shml_discard(prod));
    ASSERT_EQ(shml_send(prod, "after", 5, WAIT_BOUND), 5);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(s.n, 5);
    ASSERT_MEM_EQ(s.got, "after", 5);
    ASSERT_EQ(chan_stats(ch).lost, 0);
    shml_channel_close(prod);
    shml_channel_close(ch);
}

TEST(discard_bus)
{
    const char *addr;
    shml_channel *pub = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4 * 128, MAX, 0);
    shml_channel *sub = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[MAX];
    for (int i = 0; i < 40; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "m%d", i);
        claim_and_discard(pub, "never");
        ASSERT_EQ(shml_send(pub, msg, strlen(msg), WAIT_BOUND), (ssize_t)strlen(msg));
        expect(sub, msg);
        ASSERT_ERR(shml_recv(sub, buf, sizeof buf, 0), -ETIMEDOUT);
    }
    struct shml_channel_stats st = chan_stats(pub);
    ASSERT_EQ(st.sent, 40);
    ASSERT_EQ(st.received, 40);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.drops, 0);
    ASSERT_EQ(shml_recv_gap(sub), 0);
    shml_channel_close(sub);
    shml_channel_close(pub);
}

TEST(discard_latest)
{
    const char *addr;
    shml_channel *w = chan_make(&addr, SHML_LATEST, 0, 0, MAX, 0);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char buf[MAX];
    claim_and_discard(w, "never");
    ASSERT_ERR(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT); /* still no value */
    ASSERT_EQ(shml_send(w, "v1", 2, 0), 2);
    /* More discards than buffers: each one's buffer is free again. */
    for (int i = 0; i < 20; i++)
        claim_and_discard(w, "never");
    expect(r, "v1"); /* the current value is untouched */
    ASSERT_ERR(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_EQ(shml_recv_gap(r), 0);
    ASSERT_EQ(shml_send(w, "v2", 2, 0), 2);
    expect(r, "v2");
    struct shml_channel_stats st = chan_stats(w);
    ASSERT_EQ(st.sent, 2);
    ASSERT_EQ(st.drops, 0);
    ASSERT_EQ(st.lost, 0);
    shml_channel_close(r);
    shml_channel_close(w);
}

TEST(discard_rpc_request_and_reply)
{
    const char *addr;
    shml_channel *creator = chan_make(&addr, SHML_RPC, 0, 8 * 192, MAX, 0);
    shml_channel_close(creator);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    char buf[MAX];
    /* A discarded request was never sent: no reply is awaited, the server sees nothing. */
    claim_and_discard(cli, "never");
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 0), -EPROTO);
    ASSERT_ERR(shml_recv(srv, buf, sizeof buf, 0), -ETIMEDOUT);
    /* A discarded reply is still owed: the client waits, then gets the one sent after. */
    ASSERT_EQ(shml_send(cli, "ask", 3, WAIT_BOUND), 3);
    expect(srv, "ask");
    claim_and_discard(srv, "never");
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 0), -ETIMEDOUT);
    void *w;
    ASSERT_OK(shml_claim(srv, 6, &w, WAIT_BOUND));
    memcpy(w, "answer", 6);
    ASSERT_OK(shml_commit(srv, 6));
    expect(cli, "answer");
    /* And the next round trip is as usual. */
    ASSERT_EQ(shml_send(cli, "again", 5, WAIT_BOUND), 5);
    expect(srv, "again");
    ASSERT_EQ(shml_send(srv, "ok", 2, WAIT_BOUND), 2);
    expect(cli, "ok");
    struct shml_channel_stats st = chan_stats(cli);
    ASSERT_EQ(st.sent, 4);
    ASSERT_EQ(st.lost, 0);
    shml_channel_close(srv);
    shml_channel_close(cli);
}

/* A producer that closes with its claim open, and one after it that laps the freed slot
   before the consumer comes by: the consumer skips the position, SPSC or not. */
static void close_with_claim_then_lap(uint32_t flags)
{
    const char *addr;
    shml_channel *ch = mk_queue(&addr, flags);
    shml_channel_close(ch);
    shml_channel *cons = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *a = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    void *w;
    ASSERT_OK(shml_claim(a, 5, &w, WAIT_BOUND));
    ASSERT_OK(shml_channel_close(a));
    shml_channel *b = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    const char *msgs[] = {"one", "two", "three", "four"}; /* the 4th reuses the freed slot */
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(shml_send(b, msgs[i], strlen(msgs[i]), WAIT_BOUND), (ssize_t)strlen(msgs[i]));
    for (int i = 0; i < 4; i++)
        expect(cons, msgs[i]);
    struct shml_channel_stats st = chan_stats(cons);
    ASSERT_EQ(st.lost, 1); /* closing with a claim open loses its message */
    ASSERT_EQ(st.received, 4);
    shml_channel_close(b);
    shml_channel_close(cons);
}

TEST(close_with_claim_then_lap)
{
    close_with_claim_then_lap(0);
}

TEST(close_with_claim_then_lap_spsc)
{
    close_with_claim_then_lap(SHML_SPSC);
}
