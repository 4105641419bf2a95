/*
 * Durable endpoints (opts.durable): a queue consumer or bus subscriber killed with SIGKILL and
 * opened again under its name takes its place: the message it was reading comes first, a
 * subscriber goes on from its position, and the counters still add up. Another name does not
 * take it; a message its predecessor had counted received is not delivered twice.
 */
#include "chan_util.h"

#include "layout.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Open addr as a durable endpoint `name` in `role`. */
static shml_channel *open_durable_as(const char *addr, const char *name, unsigned role)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.durable = name;
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(addr, role, &o, &ch));
    return ch;
}

static shml_channel *open_durable(const char *addr, const char *name)
{
    return open_durable_as(addr, name, SHML_CONSUMER);
}

/* argv: channel, durable name, messages to receive first. Receive them, peek at the next one,
   say "peeked X" and hang there until killed. */
PEER(durable_peek_and_hang)
{
    ASSERT_EQ(argc, 3);
    shml_channel *ch = open_durable(argv[0], argv[1]);
    char buf[64];
    for (int i = 0; i < atoi(argv[2]); i++)
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    const void *m;
    size_t len;
    ASSERT_OK(shml_peek(ch, &m, &len, WAIT_BOUND));
    ASSERT_EQ(len, 1);
    ASSERT_EQ(parent_send(shmt_fmt("peeked %c", ((const char *)m)[0])), 0);
    shmt_sleep_ms(120000);
    return 1;
}

/* A durable consumer `name` of addr receives `skip` messages, peeks at the next (it says
   `said`) and is killed with SIGKILL there. */
static void die_peeking(const char *addr, const char *name, const char *skip, const char *said)
{
    pid_t dead = spawn_peer("durable_peek_and_hang", addr, name, skip);
    ASSERT_EQ(peer_expect(dead, said, 30000), 0);
    ASSERT_EQ(kill_peer(dead, SIGKILL), 128 + SIGKILL);
}

static const char *queue_of(const char *msgs, shml_channel **producer)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 16 * 128;
    o.max_msg = 64;
    o.role = SHML_PRODUCER;
    ASSERT_OK(shml_channel_create(addr, &o, producer));
    for (const char *m = msgs; *m; m++)
        ASSERT_EQ(shml_send(*producer, m, 1, 0), 1);
    return addr;
}

static void assert_balanced(shml_channel *ch)
{
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.sent, st.received + st.lost + st.queued);
}

static char recv_one(shml_channel *ch)
{
    char buf[64];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    return buf[0];
}

/* Receive one-byte messages from ch, which must be those of `msgs`, in order. */
static void expect_msgs(shml_channel *ch, const char *msgs)
{
    for (const char *m = msgs; *m; m++)
        ASSERT_EQ(recv_one(ch), *m);
}

TEST_TIMEOUT(durable_queue_consumer_gets_the_peeked_message_again, 60)
{
    shml_channel *p;
    const char *addr = queue_of("ABC", &p);
    die_peeking(addr, "bridge-out", "0", "peeked A");
    shml_channel *c = open_durable(addr, "bridge-out");
    uint64_t pos = 99;
    ASSERT_ERR(shml_channel_position(c, &pos), -ENOENT);
    const void *m;
    size_t len;
    ASSERT_OK(shml_peek(c, &m, &len, WAIT_BOUND));
    ASSERT_EQ(len, 1);
    ASSERT_EQ(((const char *)m)[0], 'A');
    ASSERT_OK(shml_channel_position(c, &pos));
    ASSERT_EQ(pos, 0); /* A's own position, as its predecessor saw it */
    ASSERT_OK(shml_release(c));
    ASSERT_EQ(recv_one(c), 'B');
    ASSERT_OK(shml_channel_position(c, &pos));
    ASSERT_EQ(pos, 1);
    ASSERT_EQ(recv_one(c), 'C');
    char buf[64];
    ASSERT_ERR(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_stats(c);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.sent, 3);
    ASSERT_EQ(st.received, 3);
    assert_balanced(c);
    /* One entry: the successor's, in the predecessor's place, with its counts. */
    struct shml_endpoint_stats e = chan_endpoint(addr, getpid(), SHML_CONSUMER);
    ASSERT_EQ(e.redelivered, 1);
    ASSERT_EQ(e.messages, 3);
    ASSERT_EQ(e.flags & SHML_DURABLE, SHML_DURABLE);
    ASSERT_EQ(chan_stats(c).attached, 2);
    shml_channel_close(c);
    shml_channel_close(p);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_successor_after_messages_received, 60)
{
    /* The predecessor received two, then died holding the third. */
    shml_channel *p;
    const char *addr = queue_of("ABCD", &p);
    die_peeking(addr, "d", "2", "peeked C");
    shml_channel *c = open_durable(addr, "d");
    expect_msgs(c, "CD");
    struct shml_endpoint_stats e = chan_endpoint(addr, getpid(), SHML_CONSUMER);
    ASSERT_EQ(e.messages, 4); /* the predecessor's two, and ours */
    ASSERT_EQ(chan_stats(c).lost, 0);
    assert_balanced(c);
    shml_channel_close(c);
    shml_channel_close(p);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_successor_killed_holding_it_passes_it_on, 60)
{
    /* The successor dies too, holding the message it took over: a third gets it, once. */
    shml_channel *p;
    const char *addr = queue_of("AB", &p);
    die_peeking(addr, "d", "0", "peeked A");
    die_peeking(addr, "d", "0", "peeked A");
    shml_channel *c = open_durable(addr, "d");
    expect_msgs(c, "AB");
    char buf[64];
    ASSERT_ERR(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_stats(c);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.received, 2);
    assert_balanced(c);
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_CONSUMER).redelivered, 2);
    shml_channel_close(c);
    shml_channel_close(p);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_other_name_does_not_take_the_place, 60)
{
    shml_channel *p;
    const char *addr = queue_of("ABC", &p);
    die_peeking(addr, "one", "0", "peeked A");
    shml_channel *c = open_durable(addr, "two");
    ASSERT_EQ(recv_one(c), 'B'); /* A stays with the dead "one" */
    ASSERT_EQ(recv_one(c), 'C');
    ASSERT_EQ(chan_stats(c).attached, 3);
    /* A repair settles the dead one's message as lost: the books balance. */
    ASSERT_OK(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL));
    struct shml_channel_stats st = chan_stats(c);
    ASSERT_EQ(st.lost, 1);
    assert_balanced(c);
    shml_channel_close(c);
    shml_channel_close(p);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_predecessor_counted_it_received, 60)
{
    /* Killed after counting its message received and before giving the slot back (made by
       hand here: the record and the count a kill at that point leaves): the successor gives
       the slot back and does not deliver the message again. */
    shml_channel *p;
    const char *addr = queue_of("AB", &p);
    die_peeking(addr, "d", "0", "peeked A");
    shml_segment *seg;
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    struct shml_chan_hdr *h = shml_segment_data(seg);
    bool found = false;
    for (uint32_t i = 0; i < h->nendpoints; i++) {
        struct shml_chan_ep *e =
            (struct shml_chan_ep *)((char *)h + h->ep_off + (uint64_t)i * SHML_EP_SIZE);
        if (atomic_load(&e->role) != SHML_CONSUMER || !shml_ep_used(atomic_load(&e->state)))
            continue;
        atomic_store(&e->recv_rec, shml_ep_rec(0, 1));
        atomic_store(&e->received, 1);
        atomic_store(&e->bytes_received, 1);
        found = true;
    }
    ASSERT_TRUE(found);
    shml_segment_close(seg);
    shml_channel *c = open_durable(addr, "d");
    ASSERT_EQ(recv_one(c), 'B');
    char buf[64];
    ASSERT_ERR(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_stats(c);
    ASSERT_EQ(st.received, 2);
    ASSERT_EQ(st.lost, 0);
    assert_balanced(c);
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_CONSUMER).redelivered, 0);
    /* The slot is free again: the ring goes round. */
    for (int i = 0; i < 40; i++) {
        ASSERT_EQ(shml_send(p, "z", 1, WAIT_BOUND), 1);
        ASSERT_EQ(recv_one(c), 'z');
    }
    shml_channel_close(c);
    shml_channel_close(p);
    shml_segment_unlink(addr);
}

/* argv: channel, durable name, messages to receive. Receive them, say "read N", hang. */
PEER(durable_subscriber)
{
    ASSERT_EQ(argc, 3);
    shml_channel *ch = open_durable(argv[0], argv[1]);
    ASSERT_EQ(parent_send("joined"), 0);
    char buf[64];
    int n = atoi(argv[2]);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(parent_send(shmt_fmt("read %d", n)), 0);
    shmt_sleep_ms(120000);
    return 1;
}

TEST_TIMEOUT(durable_bus_subscriber_goes_on_from_its_position, 60)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = SHML_BUS;
    o.capacity = 16 * 128;
    o.max_msg = 64;
    shml_channel *pub;
    ASSERT_OK(shml_channel_create(addr, &o, &pub));
    pid_t dead = spawn_peer("durable_subscriber", addr, "tap", "2");
    ASSERT_EQ(peer_expect(dead, "joined", 30000), 0);
    for (char m = 'a'; m <= 'c'; m++)
        ASSERT_EQ(shml_send(pub, &m, 1, WAIT_BOUND), 1);
    ASSERT_EQ(peer_expect(dead, "read 2", 30000), 0);
    ASSERT_EQ(kill_peer(dead, SIGKILL), 128 + SIGKILL);
    for (char m = 'd'; m <= 'e'; m++) /* published while nobody reads */
        ASSERT_EQ(shml_send(pub, &m, 1, WAIT_BOUND), 1);
    shml_channel *sub = open_durable(addr, "tap");
    for (char m = 'c'; m <= 'e'; m++)
        ASSERT_EQ(recv_one(sub), m);
    char buf[64];
    ASSERT_ERR(shml_recv(sub, buf, sizeof buf, 0), -ETIMEDOUT);
    uint64_t pos;
    ASSERT_OK(shml_channel_position(sub, &pos));
    ASSERT_EQ(pos, 4);
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_CONSUMER).messages, 5);
    shml_channel_close(sub);
    shml_channel_close(pub);
    shml_segment_unlink(addr);
}

TEST(durable_refusals)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.durable = "x";
    shml_channel *ch;
    ASSERT_ERR(shml_channel_create(addr, &o, &ch), -EINVAL); /* open only */
    o.durable = NULL;
    o.kind = SHML_LATEST;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    struct shml_channel_opts d = SHML_CHANNEL_OPTS_INIT;
    d.durable = "x";
    shml_channel *other;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, &d, &other), -EINVAL); /* latest */
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER, &d, &other), -EINVAL);
    uint64_t pos;
    ASSERT_ERR(shml_channel_position(ch, &pos), -EINVAL);
    shml_channel_close(ch);
    shml_segment_unlink(addr);
    o.kind = SHML_BUS;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, &d, &other), -EINVAL);
    shml_channel_close(ch);
    shml_segment_unlink(addr);
    o.kind = SHML_QUEUE;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, &d, &other), -EINVAL);
    uint64_t mark;
    ASSERT_ERR(shml_channel_set_mark(ch, 1), -EINVAL); /* not durable */
    ASSERT_ERR(shml_channel_mark(ch, &mark), -EINVAL);
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &d, &other));
    ASSERT_ERR(shml_channel_set_mark(other, 1), -EINVAL); /* a durable consumer */
    shml_channel_close(other);
    d.durable = "";
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, &d, &other), -EINVAL);
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    d.durable = long_name;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, &d, &other), -EINVAL);
    shml_channel_close(ch);
    shml_segment_unlink(addr);
    o.flags = SHML_SPSC; /* its consumer takes slots with plain stores */
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    d.durable = "x";
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, &d, &other), -EINVAL);
    ASSERT_OK(shml_channel_open(addr, SHML_PRODUCER, &d, &other)); /* its producer may be */
    shml_channel_close(other);
    shml_channel_close(ch);
    shml_segment_unlink(addr);
    o.flags = 0;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    /* A durable endpoint that closes leaves for good: the next one starts afresh. */
    d.durable = "x";
    ASSERT_EQ(shml_send(ch, "A", 1, 0), 1);
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &d, &other));
    const void *m;
    size_t len;
    ASSERT_OK(shml_peek(other, &m, &len, 0));
    shml_channel_close(other); /* a peek not released at close: lost, as for any endpoint */
    ASSERT_OK(shml_channel_open(addr, SHML_CONSUMER, &d, &other));
    char buf[8];
    ASSERT_ERR(shml_recv(other, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_EQ(chan_stats(ch).lost, 1);
    shml_channel_close(other);
    shml_channel_close(ch);
    shml_segment_unlink(addr);
}

/* ---- durable producers and their marks ---- */

static shml_channel *open_durable_producer(const char *addr, const char *name)
{
    return open_durable_as(addr, name, SHML_PRODUCER);
}

/* argv: channel, durable name, messages (one byte each) to send, each marked 41, 42, ...;
   then "claim": claim the next slot with the next mark set and hang there holding it; or
   "hang": hang. Says "sent" before hanging. */
PEER(durable_producer_hang)
{
    ASSERT_EQ(argc, 4);
    shml_channel *ch = open_durable_producer(argv[0], argv[1]);
    uint64_t mark = 99;
    ASSERT_ERR(shml_channel_mark(ch, &mark), -ENOENT); /* nothing published yet */
    uint64_t next = 41;
    for (const char *m = argv[2]; *m; m++) {
        ASSERT_OK(shml_channel_set_mark(ch, next));
        ASSERT_EQ(shml_send(ch, m, 1, WAIT_BOUND), 1);
        ASSERT_OK(shml_channel_mark(ch, &mark));
        ASSERT_EQ(mark, next++);
    }
    if (strcmp(argv[3], "claim") == 0) {
        void *buf;
        ASSERT_OK(shml_channel_set_mark(ch, next));
        ASSERT_OK(shml_claim(ch, 1, &buf, WAIT_BOUND));
        ((char *)buf)[0] = '!';
    }
    ASSERT_EQ(parent_send("sent"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

/* A queue (or a bus: kind) whose creator consumes; a durable producer `name` sends msgs,
   marked 41, 42, ..., (and claims one more, marked next, if `then` is "claim") and is killed
   there. */
static const char *produced_then_killed_in(uint32_t kind, const char *name, const char *msgs,
                                           const char *then, shml_channel **consumer)
{
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = kind;
    o.capacity = 16 * 128;
    o.max_msg = 64;
    o.role = SHML_CONSUMER;
    ASSERT_OK(shml_channel_create(addr, &o, consumer));
    pid_t dead = spawn_peer("durable_producer_hang", addr, name, msgs, then);
    ASSERT_EQ(peer_expect(dead, "sent", 30000), 0);
    ASSERT_EQ(kill_peer(dead, SIGKILL), 128 + SIGKILL);
    return addr;
}

static const char *produced_then_killed(const char *name, const char *msgs, const char *then,
                                        shml_channel **consumer)
{
    return produced_then_killed_in(SHML_QUEUE, name, msgs, then, consumer);
}

/* Make by hand what a kill between two instructions of a send leaves (white-box): the dead
   durable producer's record in addr names position `pos` with counter `count` (its counters
   set to it, one byte a message, unless 0), and its mark is `mark` unless NO_MARK. */
#define NO_MARK UINT64_MAX
static void forge_send_record(const char *addr, uint32_t pos, uint64_t count, uint64_t mark)
{
    shml_segment *seg;
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    struct shml_chan_hdr *h = shml_segment_data(seg);
    struct shml_chan_ep *dead = NULL;
    for (uint32_t i = 0; i < h->nendpoints && !dead; i++) {
        struct shml_chan_ep *e =
            (struct shml_chan_ep *)((char *)h + h->ep_off + (uint64_t)i * SHML_EP_SIZE);
        if (atomic_load(&e->role) == SHML_PRODUCER && shml_ep_used(atomic_load(&e->state)))
            dead = e;
    }
    ASSERT_TRUE(dead != NULL);
    atomic_store(&dead->send_rec, shml_ep_rec(pos, count));
    if (count) {
        atomic_store(&dead->sent, count);
        atomic_store(&dead->bytes_sent, count);
    }
    if (mark != NO_MARK)
        atomic_store(&dead->cursor, mark);
    shml_segment_close(seg);
}

TEST_TIMEOUT(durable_producer_successor_gets_the_mark, 60)
{
    /* Killed holding a claim for a third message marked 43 (not published): the mark is the
       second's, the claim is lost, the successor goes on under its own marks. */
    shml_channel *c;
    const char *addr = produced_then_killed("bridge-in", "AB", "claim", &c);
    shml_channel *p = open_durable_producer(addr, "bridge-in");
    uint64_t mark = 0;
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 42);
    ASSERT_EQ(shml_send(p, "C", 1, 0), 1); /* carries 42 still: nothing set since */
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 42);
    /* A mark set, its message withdrawn: the mark is still the last published message's. */
    ASSERT_OK(shml_channel_set_mark(p, 99));
    void *buf;
    ASSERT_OK(shml_claim(p, 1, &buf, 0));
    shml_discard(p);
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 42);
    ASSERT_OK(shml_channel_set_mark(p, 7));
    ASSERT_EQ(shml_send(p, "D", 1, 0), 1);
    expect_msgs(c, "ABCD"); /* the dead one's claim between B and C skipped, counted lost */
    struct shml_channel_stats st = chan_stats(c);
    ASSERT_EQ(st.lost, 1);
    assert_balanced(c);
    struct shml_endpoint_stats e = chan_endpoint(addr, getpid(), SHML_PRODUCER);
    ASSERT_EQ(e.messages, 4);
    ASSERT_EQ(e.flags & SHML_DURABLE, SHML_DURABLE);
    shml_channel_close(p);
    /* A durable producer that closes leaves for good: the next one knows no mark. */
    p = open_durable_producer(addr, "bridge-in");
    ASSERT_ERR(shml_channel_mark(p, &mark), -ENOENT);
    shml_channel_close(p);
    shml_channel_close(c);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_producer_killed_before_publishing, 60)
{
    /* Killed between recording and counting its third message (marked 43) and publishing it
       (made by hand: the record, count and mark such a kill leaves): it was not published,
       so the mark is not known, and the message is lost, counted. */
    shml_channel *c;
    const char *addr = produced_then_killed("in", "AB", "claim", &c);
    forge_send_record(addr, 2, 3, 43);
    shml_channel *p = open_durable_producer(addr, "in");
    uint64_t mark = 0;
    ASSERT_ERR(shml_channel_mark(p, &mark), -ENOENT);
    expect_msgs(c, "AB");
    char buf[8];
    ASSERT_ERR(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    struct shml_channel_stats st = chan_stats(c);
    ASSERT_EQ(st.sent, 3);
    ASSERT_EQ(st.lost, 1);
    assert_balanced(c);
    /* Its own message, no mark set: it carries 0, not the dead one's 43 (never published). */
    ASSERT_EQ(shml_send(p, "C", 1, 0), 1);
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 0);
    ASSERT_EQ(recv_one(c), 'C');
    shml_channel_close(p);
    shml_channel_close(c);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_producer_killed_after_publishing, 60)
{
    /* Killed after publishing its second message (marked 42) and before clearing its record
       (made by hand): while the message is in the channel, the mark is known; once read (its
       slot freed, as a reclaimer would free an unpublished one) it cannot be told. */
    for (int read_first = 0; read_first < 2; read_first++) {
        shml_channel *c;
        const char *addr = produced_then_killed("in", "AB", "hang", &c);
        forge_send_record(addr, 1, 2, NO_MARK);
        if (read_first) {
            expect_msgs(c, "AB");
        }
        shml_channel *p = open_durable_producer(addr, "in");
        uint64_t mark = 0;
        if (read_first) {
            ASSERT_ERR(shml_channel_mark(p, &mark), -ENOENT);
        } else {
            ASSERT_OK(shml_channel_mark(p, &mark));
            ASSERT_EQ(mark, 42);
            expect_msgs(c, "AB");
        }
        ASSERT_EQ(chan_stats(c).lost, 0);
        assert_balanced(c);
        shml_channel_close(p);
        shml_channel_close(c);
        shml_segment_unlink(addr);
    }
}

/* argv: channel, durable name. Open as a durable producer, say its mark ("mark N" or "no
   mark"), hang. */
PEER(durable_producer_say_mark)
{
    ASSERT_EQ(argc, 2);
    shml_channel *ch = open_durable_producer(argv[0], argv[1]);
    uint64_t mark;
    int r = shml_channel_mark(ch, &mark);
    ASSERT_EQ(parent_send(r == 0 ? shmt_fmt("mark %llu", (unsigned long long)mark) : "no mark"),
              0);
    shmt_sleep_ms(120000);
    return 1;
}

TEST_TIMEOUT(durable_producer_unknown_mark_passes_on, 60)
{
    /* A successor that cannot tell (its predecessor's message read meanwhile), killed before
       it publishes anything: its own successor does not take the stale mark for known. */
    shml_channel *c;
    const char *addr = produced_then_killed("in", "AB", "hang", &c);
    forge_send_record(addr, 1, 2, NO_MARK);
    expect_msgs(c, "AB");
    pid_t second = spawn_peer("durable_producer_say_mark", addr, "in");
    ASSERT_EQ(peer_expect(second, "no mark", 30000), 0);
    ASSERT_EQ(kill_peer(second, SIGKILL), 128 + SIGKILL);
    pid_t third = spawn_peer("durable_producer_say_mark", addr, "in");
    ASSERT_EQ(peer_expect(third, "no mark", 30000), 0);
    ASSERT_EQ(kill_peer(third, SIGKILL), 128 + SIGKILL);
    shml_channel *p = open_durable_producer(addr, "in");
    ASSERT_OK(shml_channel_set_mark(p, 44));
    ASSERT_EQ(shml_send(p, "C", 1, 0), 1);
    shml_channel_close(p);
    /* ... and one that published goes on with its mark, killed right after. */
    pid_t fourth = spawn_peer("durable_producer_hang", addr, "in", "D", "hang");
    ASSERT_EQ(peer_expect(fourth, "sent", 30000), 0);
    ASSERT_EQ(kill_peer(fourth, SIGKILL), 128 + SIGKILL);
    pid_t fifth = spawn_peer("durable_producer_say_mark", addr, "in");
    ASSERT_EQ(peer_expect(fifth, "mark 41", 30000), 0);
    ASSERT_EQ(kill_peer(fifth, SIGKILL), 128 + SIGKILL);
    expect_msgs(c, "CD");
    ASSERT_EQ(chan_stats(c).lost, 0);
    shml_channel_close(c);
    shml_segment_unlink(addr);
}

TEST_TIMEOUT(durable_bus_publisher_marks, 60)
{
    /* A bus publisher: the same three cases. Killed holding a claim: the mark is the last
       published message's, the claim a hole, counted lost. */
    shml_channel *sub;
    const char *addr = produced_then_killed_in(SHML_BUS, "pub", "AB", "claim", &sub);
    shml_channel *p = open_durable_producer(addr, "pub");
    uint64_t mark = 0;
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 42);
    ASSERT_OK(shml_channel_set_mark(p, 44));
    ASSERT_EQ(shml_send(p, "C", 1, 0), 1);
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 44);
    expect_msgs(sub, "ABC"); /* the dead one's claim between B and C a hole, skipped */
    ASSERT_EQ(chan_stats(sub).lost, 1);
    shml_channel_close(p);
    shml_channel_close(sub);
    shml_segment_unlink(addr);

    /* Killed between its mark and its publication (made by hand): not known, a hole. */
    addr = produced_then_killed_in(SHML_BUS, "pub", "AB", "claim", &sub);
    forge_send_record(addr, 2, 0, 43);
    p = open_durable_producer(addr, "pub");
    ASSERT_ERR(shml_channel_mark(p, &mark), -ENOENT);
    ASSERT_EQ(chan_stats(sub).lost, 1);
    ASSERT_EQ(shml_send(p, "C", 1, 0), 1);
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 0); /* not the dead one's 43 */
    expect_msgs(sub, "ABC");
    shml_channel_close(p);
    shml_channel_close(sub);
    shml_segment_unlink(addr);

    /* Killed after publishing B and before clearing its record (by hand): B holds its slot,
       so the mark is known. */
    addr = produced_then_killed_in(SHML_BUS, "pub", "AB", "hang", &sub);
    forge_send_record(addr, 1, 0, NO_MARK);
    p = open_durable_producer(addr, "pub");
    ASSERT_OK(shml_channel_mark(p, &mark));
    ASSERT_EQ(mark, 42);
    expect_msgs(sub, "AB");
    ASSERT_EQ(chan_stats(sub).lost, 0);
    shml_channel_close(p);
    shml_channel_close(sub);
    shml_segment_unlink(addr);
}
