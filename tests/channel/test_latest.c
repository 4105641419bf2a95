/*
 * The latest-value channel's API (SHML_LATEST): the newest value not yet read, the first read
 * of a handle at once, skipped values counted (shml_recv_gap, stats.drops), writers that
 * never wait behind readers inside a peek, pinned peeks, -EMSGSIZE, roles, and readers killed
 * inside a peek.
 *
 * A latest channel takes at most nslots - 2 readers (-EUSERS past that), so that a writer
 * always finds a buffer neither current nor pinned. Reading of the header where it leaves
 * room: before any value was written, a read has nothing to return and times out.
 */
#include "chan_util.h"
#include "layout.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define LV_MAX 200u

static void put(shml_channel *w, uint64_t version, uint32_t len)
{
    uint8_t v[LV_MAX];
    chan_msg_fill(v, len, 7, version);
    ssize_t r = shml_send(w, v, len, 0); /* never waits */
    if (r != (ssize_t)len)
        shmt_fail(__FILE__, __LINE__, "write %ju: %zd (%s) %s", (uintmax_t)version, r,
                  shml_strerror((int)r), shml_last_error());
}

static uint64_t get(shml_channel *r)
{
    uint8_t buf[LV_MAX];
    ssize_t n = shml_recv(r, buf, sizeof buf, 0);
    ASSERT_OK(n);
    const char *why = chan_msg_check(buf, (size_t)n);
    if (why)
        shmt_fail(__FILE__, __LINE__, "%s", why);
    struct chan_msg m;
    memcpy(&m, buf, sizeof m);
    return m.seq;
}

TEST(latest_create_roles_geometry)
{
    const char *addr;
    /* A tiny capacity still gets 4 buffers. */
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.kind, SHML_LATEST);
    ASSERT_GE(st.slots, 4);
    ASSERT_EQ(st.max_msg, LV_MAX);
    ASSERT_EQ(st.policy, SHML_BLOCK);
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    uint8_t buf[LV_MAX];
    void *p;
    const void *cp;
    size_t len, lens[2];
    struct shml_iov iov = {"x", 1};
    ASSERT_ERR(shml_recv(w, buf, sizeof buf, 0), -EBADF);
    ASSERT_ERR(shml_peek(w, &cp, &len, 0), -EBADF);
    ASSERT_ERR(shml_send(r, "x", 1, 0), -EBADF);
    ASSERT_ERR(shml_claim(r, 1, &p, 0), -EBADF);
    /* Batches are for queues and buses. */
    ASSERT_ERR(shml_send_batch(w, &iov, 1, 0), -ENOTSUP);
    ASSERT_ERR(shml_recv_batch(r, buf, sizeof buf, lens, 2, 0), -ENOTSUP);
    /* Nothing written yet: nothing to read. */
    ASSERT_ERR(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT);
    /* The creator writes and reads. */
    put(ch, 1, 50);
    ASSERT_EQ(get(ch), 1);
    ASSERT_EQ(get(r), 1);
    shml_channel_close(w);
    shml_channel_close(r);
    shml_channel_close(ch);
}

TEST(latest_newest_unread_and_gaps)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 0, LV_MAX, 0);
    shml_channel_close(ch);
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    uint8_t buf[LV_MAX];
    put(w, 1, 40);
    ASSERT_EQ(get(r), 1);
    ASSERT_EQ(shml_recv_gap(r), 0);
    /* Read already: nothing new. */
    ASSERT_ERR(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT);
    for (int i = 0; i < 2; i++) {
        int64_t t0 = now_ns();
        ASSERT_ERR(shml_recv(r, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
        const void *p;
        size_t len;
        t0 = now_ns();
        ASSERT_ERR(shml_peek(r, &p, &len, 50 * MS), -ETIMEDOUT);
        ASSERT_GE(now_ns() - t0, 50 * MS);
    }
    put(w, 2, 41);
    put(w, 3, 42);
    put(w, 4, 43);
    ASSERT_EQ(get(r), 4);
    ASSERT_EQ(shml_recv_gap(r), 2);
    put(w, 5, LV_MAX);
    ASSERT_EQ(get(r), 5);
    ASSERT_EQ(shml_recv_gap(r), 0);
    ASSERT_EQ(chan_stats(w).drops, 2);
    /* A reader that opens now gets the current value at once, then only newer ones. (Whether
       the values before it joined count as skipped is left open: g is taken as reported.) */
    shml_channel *late = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(get(late), 5);
    uint64_t g = shml_recv_gap(late);
    ASSERT_LE(g, 4);
    ASSERT_ERR(shml_recv(late, buf, sizeof buf, 0), -ETIMEDOUT);
    put(w, 6, 44);
    ASSERT_EQ(get(late), 6);
    ASSERT_EQ(shml_recv_gap(late), 0);
    /* Too small a buffer: -EMSGSIZE, and the value is still unread. */
    put(w, 7, 150);
    ASSERT_ERR(shml_recv(r, buf, 149, 0), -EMSGSIZE);
    ASSERT_EQ(get(r), 7);
    ASSERT_EQ(shml_recv_gap(r), 1);
    /* -EMSGSIZE at once on send. */
    static uint8_t big[LV_MAX + 1];
    ASSERT_ERR(shml_send(w, big, LV_MAX + 1, SHML_FOREVER), -EMSGSIZE);
    void *cl;
    ASSERT_ERR(shml_claim(w, LV_MAX + 1, &cl, SHML_FOREVER), -EMSGSIZE);
    struct shml_channel_stats st = chan_stats(w);
    ASSERT_EQ(st.sent, 7);
    ASSERT_EQ(st.received, 6);  /* r: 1 4 5 7, late: 5 6 */
    ASSERT_EQ(st.drops, 3 + g); /* r skipped 2, 3 and 6 */
    shml_channel_close(late);
    shml_channel_close(r);
    shml_channel_close(w);
}

TEST(latest_claim_commit)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 0, LV_MAX, 0);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    void *p;
    ASSERT_OK(shml_claim(ch, LV_MAX, &p, 0));
    ASSERT_ERR(shml_send(ch, "x", 1, 0), -EBUSY);
    chan_msg_fill(p, 77, 7, 1);
    ASSERT_ERR(shml_commit(ch, LV_MAX + 1), -EINVAL);
    ASSERT_OK(shml_commit(ch, 77));
    ASSERT_ERR(shml_commit(ch, 1), -EINVAL);
    ASSERT_EQ(get(r), 1);
    /* A claim not committed is not a value. */
    ASSERT_OK(shml_claim(ch, 10, &p, 0));
    uint8_t buf[LV_MAX];
    ASSERT_ERR(shml_recv(r, buf, sizeof buf, 0), -ETIMEDOUT);
    memset(p, 'z', 10);
    ASSERT_ERR(shml_commit(ch, 40), -EINVAL);
    ASSERT_OK(shml_commit(ch, 0));
    const void *cp;
    size_t len = 99;
    ASSERT_OK(shml_peek(r, &cp, &len, 0));
    ASSERT_EQ(len, 0);
    ASSERT_OK(shml_release(r));
    ASSERT_ERR(shml_release(r), -EINVAL);
    shml_channel_close(r);
    shml_channel_close(ch);
}

/* Readers inside peeks: the writer never waits, and the peeked bytes never change. */
TEST(latest_writer_never_waits_behind_peeks)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    uint32_t bufs = chan_stats(ch).slots;
    shml_channel_close(ch);
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    /* As many readers inside a read as the buffers allow (two fewer than buffers). */
    uint32_t nr = bufs - 2 > 8 ? 8 : bufs - 2;
    shml_channel *r[8];
    const void *p[8];
    size_t len[8];
    uint64_t v = 0;
    for (uint32_t i = 0; i < nr; i++) {
        r[i] = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
        put(w, ++v, 60 + i);
        ASSERT_OK(shml_peek(r[i], &p[i], &len[i], 0));
        ASSERT_EQ(len[i], 60 + i);
    }
    int64_t t0 = now_ns();
    for (int k = 0; k < 1000; k++)
        put(w, ++v, CHAN_MSG_MIN + (uint32_t)(k % 150));
    ASSERT_LT(now_ns() - t0, 5 * SEC); /* sanity, not speed: no write waited */
    for (uint32_t i = 0; i < nr; i++) {
        ASSERT_TRUE(chan_msg_check(p[i], len[i]) == NULL);
        struct chan_msg m;
        memcpy(&m, p[i], sizeof m);
        ASSERT_EQ(m.seq, i + 1);
        ASSERT_OK(shml_release(r[i])); /* pinned: never stale */
        ASSERT_EQ(get(r[i]), v);
        ASSERT_EQ(shml_recv_gap(r[i]), v - (i + 1) - 1);
    }
    for (uint32_t i = 0; i < nr; i++)
        shml_channel_close(r[i]);
    ASSERT_EQ(chan_stats(w).sent, v);
    shml_channel_close(w);
}

/* argv: channel. Peek the current value, say "peeked", hang until killed. */
PEER(latest_peek_hang)
{
    ASSERT_EQ(argc, 1);
    shml_channel *r = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_BLOCK);
    const void *p;
    size_t len;
    ASSERT_OK(shml_peek(r, &p, &len, WAIT_BOUND));
    ASSERT_EQ(parent_send("peeked"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

TEST(latest_reader_limit)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    ASSERT_EQ(chan_stats(ch).slots, 4);
    /* The creator reads too: one more reader fits, then none. */
    shml_channel *r1 = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *x = (shml_channel *)&x;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &x), -EUSERS);
    ASSERT_NULL(x);
    ASSERT_ERR(shml_channel_open(addr, SHML_PRODUCER | SHML_CONSUMER, NULL, &x), -EUSERS);
    /* Writers are not limited. */
    shml_channel *w[5];
    for (int i = 0; i < 5; i++)
        w[i] = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    ASSERT_OK(shml_channel_close(ch));
    shml_channel *r2 = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &x), -EUSERS);
    /* Both readers inside a read, five writers writing: none waits. */
    put(w[0], 1, 40);
    const void *p1, *p2;
    size_t l1, l2;
    ASSERT_OK(shml_peek(r1, &p1, &l1, 0));
    put(w[1], 2, 41);
    ASSERT_OK(shml_peek(r2, &p2, &l2, 0));
    for (uint64_t v = 3; v < 300; v++)
        put(w[v % 5], v, 42);
    ASSERT_OK(shml_release(r1));
    ASSERT_OK(shml_release(r2));
    ASSERT_EQ(get(r1), 299);
    for (int i = 0; i < 5; i++)
        shml_channel_close(w[i]);
    shml_channel_close(r1);
    shml_channel_close(r2);
}

/* Readers that died (inside a read or not) give their places back to the next opener. */
TEST_TIMEOUT(latest_dead_readers_reclaimed_at_open, 60)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    ASSERT_EQ(chan_stats(ch).slots, 4);
    shml_channel_close(ch);
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    put(w, 1, 40);
    pid_t idle = spawn_peer("ep_hold", addr, shmt_fmt("%u", SHML_CONSUMER), "idle");
    ASSERT_EQ(peer_expect(idle, "ready", 30000), 0);
    pid_t peek = spawn_peer("latest_peek_hang", addr);
    ASSERT_EQ(peer_expect(peek, "peeked", 30000), 0);
    shml_channel *x = (shml_channel *)&x;
    ASSERT_ERR(shml_channel_open(addr, SHML_CONSUMER, NULL, &x), -EUSERS);
    ASSERT_EQ(kill_peer(idle, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(kill_peer(peek, SIGKILL), 128 + SIGKILL);
    shml_channel *r1 = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    shml_channel *r2 = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    for (uint64_t v = 2; v < 50; v++)
        put(w, v, 40);
    ASSERT_EQ(get(r1), 49);
    ASSERT_EQ(get(r2), 49);
    shml_channel_close(r1);
    shml_channel_close(r2);
    shml_channel_close(w);
}

TEST_TIMEOUT(latest_reader_killed_inside_peek, 60)
{
    const char *addr;
    /* 8 buffers: 6 readers, r and five that die inside a read each round. */
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 8 * 256, LV_MAX, 0);
    uint32_t bufs = chan_stats(ch).slots;
    shml_channel_close(ch);
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    uint64_t v = 0;
    /* Round after round, every reader place but r's is taken by a reader that pins a buffer
       and dies: from the second round on, new readers need the dead readers' places (open
       reclaims them) and the writer their buffers, and every write has timeout 0 (a writer
       never waits). */
    for (int round = 0; round < 4; round++) {
        pid_t pk[8];
        uint32_t n = bufs - 3 > 8 ? 8 : bufs - 3;
        for (uint32_t i = 0; i < n; i++) {
            put(w, ++v, 50);
            pk[i] = spawn_peer("latest_peek_hang", addr);
            ASSERT_EQ(peer_expect(pk[i], "peeked", 30000), 0);
        }
        for (uint32_t i = 0; i < n; i++)
            ASSERT_EQ(kill_peer(pk[i], SIGKILL), 128 + SIGKILL);
        /* The writer still never waits, and a live reader gets the newest value. */
        for (int k = 0; k < 200; k++)
            put(w, ++v, CHAN_MSG_MIN + (uint32_t)(k % 150));
        ASSERT_EQ(get(r), v);
    }
    ASSERT_EQ(chan_stats(w).sent, v);
    shml_channel_close(r);
    shml_channel_close(w);
}

/* ---- a reader that dies inside its unpin: repair undoes what it left ---- */

/* Fields of the channel's shared memory, by the offsets of docs/FORMAT.md. */
static char *chan_data(shml_channel *ch)
{
    return shml_segment_data(shml_channel_segment(ch));
}

/* The `pin` of the endpoint entry of process pid. */
static _Atomic uint32_t *entry_pin(shml_channel *ch, pid_t pid)
{
    struct shml_chan_hdr *h = (struct shml_chan_hdr *)chan_data(ch);
    for (uint32_t i = 0; i < h->nendpoints; i++) {
        struct shml_chan_ep *e =
            (struct shml_chan_ep *)((char *)h + h->ep_off + (uint64_t)i * SHML_EP_SIZE);
        uint64_t st = atomic_load(&e->state);
        if (shml_ep_used(st) && (pid_t)shml_ep_pid(st) == pid)
            return &e->pin;
    }
    shmt_fail(__FILE__, __LINE__, "no endpoint entry of pid %d", (int)pid);
}

/* The buffer the current value is in (the control block's enq: shml_latest_cur()). */
static uint64_t current_buffer(shml_channel *ch)
{
    return shml_latest_cur_buffer(atomic_load((_Atomic uint64_t *)((char *)chan_data(ch) + 128)));
}

/* The state of buffer i. */
static _Atomic uint64_t *buffer_state(shml_channel *ch, uint64_t i)
{
    char *h = chan_data(ch);
    uint32_t stride;
    uint64_t slots_off;
    memcpy(&stride, h + 20, 4);
    memcpy(&slots_off, h + 32, 8);
    return (_Atomic uint64_t *)(h + slots_off + i * stride);
}

/* The state of the buffer the current value is in. */
static _Atomic uint64_t *current_state(shml_channel *ch)
{
    return buffer_state(ch, current_buffer(ch));
}

static void count_finding(void *ctx, int repaired, const char *finding)
{
    shmt_log("%s: %s", repaired ? "repaired" : "left", finding);
    if (!repaired)
        ++*(int *)ctx;
}

/*
 * A reader killed between the two steps of an unpin that clears its record first, then its
 * count (the order before): the count stays, no record. --repair puts it right, and the
 * buffer is in use again.
 */
TEST_TIMEOUT(latest_count_without_record_repaired, 60)
{
    const char *addr;
    shml_channel *w = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    put(w, 1, 40);
    pid_t pk = spawn_peer("latest_peek_hang", addr);
    ASSERT_EQ(peer_expect(pk, "peeked", 30000), 0);
    atomic_store(entry_pin(w, pk), 0);
    ASSERT_EQ(kill_peer(pk, SIGKILL), 128 + SIGKILL);
    _Atomic uint64_t *state = current_state(w);
    ASSERT_EQ(shml_latest_readers(atomic_load(state)), 1);
    int left = 0;
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, count_finding, &left), 0);
    ASSERT_EQ(left, 0);
    ASSERT_EQ(shml_latest_readers(atomic_load(state)), 0);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    shml_channel_close(w);
}

/*
 * A buffer counting two readers nobody records and marked writing by a writer whose entry is
 * free (forged, or left by deaths): --repair recounts it, then drops the dead writer's mark,
 * keeping what the recount made (readers 0) and the tag (5, +1 by the recount).
 */
TEST_TIMEOUT(latest_repair_of_dead_writer_keeps_recount_and_tag, 60)
{
    const char *addr;
    shml_channel *w = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    put(w, 1, 40);
    _Atomic uint64_t *state = buffer_state(w, (current_buffer(w) + 1) % 4); /* not current */
    /* tag 5, readers 2, writer: the holder of entry 2 (free), generation 0, writing */
    atomic_store(state, 5 * SHML_LATEST_TAG_ONE | shml_latest_state(2, shml_holder(2, 0), true));
    int left = 0;
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, count_finding, &left), 0);
    ASSERT_EQ(left, 0);
    uint64_t st = atomic_load(state);
    ASSERT_EQ(shml_latest_readers(st), 0); /* the recount stands */
    ASSERT_EQ(shml_latest_writer(st), 0);  /* no writer */
    ASSERT_EQ(shml_latest_writing(st), 0);
    ASSERT_EQ(shml_latest_tag(st), 6 * SHML_LATEST_TAG_ONE); /* the tag kept (+1 by the recount) */
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    put(w, 2, 40); /* the buffer is in use again */
    shml_channel_close(w);
}

/*
 * A reader killed between the two steps of its unpin as it is now: the count gone, the record
 * left. Reclaiming its entry must not take the count of a live reader of the same buffer:
 * the live reader's peek stays whole while a writer writes on.
 */
TEST_TIMEOUT(latest_record_without_count_spares_live_pin, 60)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, 1, LV_MAX, 0);
    ASSERT_EQ(chan_stats(ch).slots, 4);
    shml_channel_close(ch); /* it reads too: the two reader places are r's and the peer's */
    shml_channel *w = chan_open(addr, SHML_PRODUCER, SHML_WAIT_BLOCK);
    shml_channel *r = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    put(w, 1, 60);
    pid_t pk = spawn_peer("latest_peek_hang", addr);
    ASSERT_EQ(peer_expect(pk, "peeked", 30000), 0);
    const void *p;
    size_t len;
    ASSERT_OK(shml_peek(r, &p, &len, 0));
    ASSERT_EQ(len, 60);
    uint8_t copy[LV_MAX];
    memcpy(copy, p, len);
    _Atomic uint64_t *state = current_state(w);
    ASSERT_EQ(shml_latest_readers(atomic_load(state)), 2);
    atomic_fetch_sub(state, SHML_LATEST_READER_ONE); /* the peer's count gone, its record kept */
    ASSERT_EQ(kill_peer(pk, SIGKILL), 128 + SIGKILL);
    int left = 0;
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, count_finding, &left), 0);
    ASSERT_EQ(shml_latest_readers(atomic_load(state)), 1); /* r's */
    for (uint64_t v = 2; v < 100; v++)
        put(w, v, 50);
    ASSERT_MEM_EQ(p, copy, len);
    ASSERT_OK(shml_release(r));
    ASSERT_EQ(get(r), 99);
    ASSERT_EQ(shml_channel_check(addr, 0, NULL, NULL), 0);
    shml_channel_close(r);
    shml_channel_close(w);
}
