/*
 * Counting under kill -9, step by step: a queue endpoint dies holding a message at each step
 * of its counting (layout.h, shml_ep_rec(): record, count, hand-over), and whoever frees its
 * slot (a repair that frees its entry first, or an endpoint that reaches the slot) counts it
 * so that sent == received + lost + queued holds exactly. The steps a kill would interrupt
 * are made by writing the dead child's record and counter by hand, as a foreign program would.
 */
#include "chan_util.h"
#include "counting_steps.h"

#include <sys/wait.h>
#include <unistd.h>

/* Fork a child that opens `addr` with `role`, holds a claim (producer, after one send) or a
   peek (consumer), and exits without closing: a holder that died. */
static void child_dies_holding(const char *addr, unsigned role)
{
    pid_t c = fork();
    ASSERT_GE(c, 0);
    if (c == 0) {
        shml_channel *own = NULL;
        if (shml_channel_open(addr, role, NULL, &own) != 0)
            _exit(1);
        if (role == SHML_PRODUCER) {
            void *w;
            if (shml_send(own, "A", 1, 0) != 1 || shml_claim(own, 1, &w, 0) != 0)
                _exit(2);
            *(char *)w = 'B';
        } else {
            const void *m;
            size_t len;
            if (shml_peek(own, &m, &len, 0) != 0 || len != 1)
                _exit(3);
        }
        _exit(0); /* no close: the claim or peek stays held by a dead endpoint */
    }
    int status = 0;
    ASSERT_EQ(waitpid(c, &status, 0), c);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* The busy slot of a queue's ring (exactly one), with the holder's entry. */
static struct shml_chan_slot *held_slot(shml_channel *ch, struct shml_chan_ep **ep)
{
    char *d = shml_segment_data(shml_channel_segment(ch));
    struct shml_chan_hdr *h = (struct shml_chan_hdr *)d;
    struct shml_chan_slot *found = NULL;
    for (uint32_t i = 0; i < h->nslots; i++) {
        struct shml_chan_slot *s = (void *)(d + h->slots_off + (uint64_t)i * h->stride);
        if (shml_slot_busy(atomic_load(&s->state))) {
            ASSERT_TRUE(found == NULL);
            found = s;
        }
    }
    ASSERT_TRUE(found != NULL);
    uint32_t idx;
    ASSERT_TRUE(shml_holder_index(shml_slot_holder(atomic_load(&found->state)), &idx));
    *ep = (struct shml_chan_ep *)(d + h->ep_off + (uint64_t)idx * SHML_EP_SIZE);
    return found;
}

/* A child with `role` dies holding a message at `step`; then a repair frees its entry (and
   so the slot) if `repair`. */
static void die_at(shml_channel *ch, const char *addr, unsigned role, enum step step,
                   bool repair)
{
    child_dies_holding(addr, role);
    struct shml_chan_ep *e = NULL;
    struct shml_chan_slot *s = held_slot(ch, &e);
    /* The message's position: a claim holds seq p, a message being read seq p + 1. */
    bool sending = role == SHML_PRODUCER;
    fake_step(e, sending, shml_slot_seq(atomic_load(&s->state)) - (sending ? 0u : 1u), step);
    if (repair)
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
}

static void assert_identity(const char *addr, uint64_t want_lost)
{
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("sent %ju, received %ju, lost %ju, queued %ju", (uintmax_t)st.sent,
             (uintmax_t)st.received, (uintmax_t)st.lost, (uintmax_t)st.queued);
    ASSERT_EQ(st.lost, want_lost);
    ASSERT_EQ(st.sent, st.received + st.lost + st.queued);
}

/* A producer dies holding its second message at `step`; repair or a consumer frees it. */
static void producer_dies(enum step step, bool repair)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_QUEUE, 0, 4 * 128, 100, 0);
    die_at(ch, addr, SHML_PRODUCER, step, repair);
    char buf[8];
    ASSERT_EQ(shml_recv(ch, buf, sizeof buf, 0), 1);
    ASSERT_EQ(buf[0], 'A');
    /* B is skipped, lost: by this consumer, which looks at a holder again after a wait (50
       ms) when no repair freed it. */
    ASSERT_ERR(shml_recv(ch, buf, sizeof buf, repair ? 0 : 300 * MS), -ETIMEDOUT);
    if (!repair)
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    assert_identity(addr, 1);
    shml_channel_close(ch);
}

/* A consumer dies holding a message at `step`; repair or a producer that needs the slot
   frees it. Lost unless it was counted received. */
static void consumer_dies(enum step step, bool repair)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_QUEUE, 0, 2 * 128, 100, 0);
    ASSERT_EQ(shml_send(ch, "A", 1, 0), 1);
    die_at(ch, addr, SHML_CONSUMER, step, repair);
    /* Two laps: the producer reaches the dead consumer's slot. */
    char buf[8];
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(shml_send(ch, "z", 1, WAIT_BOUND), 1);
        ASSERT_EQ(shml_recv(ch, buf, sizeof buf, WAIT_BOUND), 1);
        ASSERT_EQ(buf[0], 'z');
    }
    if (!repair)
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    assert_identity(addr, step == COUNTED ? 0 : 1);
    shml_channel_close(ch);
}

TEST(count_producer_killed_after_claim_repaired)
{
    producer_dies(HELD, true);
}
TEST(count_producer_killed_after_record_repaired)
{
    producer_dies(RECORDED, true);
}
TEST(count_producer_killed_after_count_repaired)
{
    producer_dies(COUNTED, true);
}
TEST(count_producer_killed_after_claim_skipped)
{
    producer_dies(HELD, false);
}
TEST(count_producer_killed_after_record_skipped)
{
    producer_dies(RECORDED, false);
}
TEST(count_producer_killed_after_count_skipped)
{
    producer_dies(COUNTED, false);
}
TEST(count_consumer_killed_after_claim_repaired)
{
    consumer_dies(HELD, true);
}
TEST(count_consumer_killed_after_record_repaired)
{
    consumer_dies(RECORDED, true);
}
TEST(count_consumer_killed_after_count_repaired)
{
    consumer_dies(COUNTED, true);
}
TEST(count_consumer_killed_after_claim_reclaimed)
{
    consumer_dies(HELD, false);
}
TEST(count_consumer_killed_after_record_reclaimed)
{
    consumer_dies(RECORDED, false);
}
TEST(count_consumer_killed_after_count_reclaimed)
{
    consumer_dies(COUNTED, false);
}
