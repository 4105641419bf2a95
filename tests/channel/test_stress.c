/*
 * Multi-process stress: P producers and C consumers, each its own process, move N messages per
 * producer of random sizes carrying producer id, sequence number and checksum. Consumers mark
 * each (producer, seq) in a bitmap in shared memory: a bit found set is a duplicate, a bit
 * left clear at the end a loss; each consumer checks that it sees every producer's sequence
 * numbers in increasing order, and every checksum.
 */
#include "chan_util.h"

#include <stdlib.h>
#include <unistd.h>

#define MAX_MSG 512u

struct stress_area {
    _Atomic uint64_t received; /* messages taken by all consumers */
    uint64_t words;            /* bitmap words per producer */
    _Atomic uint64_t bits[];   /* [producer][words] */
};

static size_t area_size(long producers, long n)
{
    return sizeof(struct stress_area) + (size_t)producers * (size_t)((n + 63) / 64) * 8;
}

/* argv: channel, id, n, mode ("copy" or "zc"), seed */
PEER(producer)
{
    ASSERT_EQ(argc, 5);
    uint32_t id = (uint32_t)atoi(argv[1]);
    long n = atol(argv[2]);
    bool zc = strcmp(argv[3], "zc") == 0;
    unsigned seed = (unsigned)strtoul(argv[4], NULL, 10);
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_PRODUCER, NULL, &ch));
    static uint8_t msg[MAX_MSG];
    for (long i = 0; i < n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (MAX_MSG - CHAN_MSG_MIN + 1));
        if (zc) {
            void *w;
            /* Claim more than needed half the time: commit may be shorter than the claim. */
            size_t want = (i & 1) ? MAX_MSG : len;
            int r = shml_claim(ch, want, &w, WAIT_BOUND * 3);
            if (r != 0)
                shmt_fail(__FILE__, __LINE__, "producer %u claim %ld: %d (%s) %s", id, i, r,
                          shml_strerror(r), shml_last_error());
            chan_msg_fill(w, len, id, (uint64_t)i);
            ASSERT_OK(shml_commit(ch, len));
        } else {
            chan_msg_fill(msg, len, id, (uint64_t)i);
            ssize_t r = shml_send(ch, msg, len, WAIT_BOUND * 3);
            if (r != (ssize_t)len)
                shmt_fail(__FILE__, __LINE__, "producer %u send %ld: %zd (%s) %s", id, i, r,
                          shml_strerror((int)r), shml_last_error());
        }
    }
    shml_channel_close(ch);
    return 0;
}

/* argv: channel, area, producers, n, mode */
PEER(consumer)
{
    ASSERT_EQ(argc, 5);
    long producers = atol(argv[2]);
    long n = atol(argv[3]);
    bool zc = strcmp(argv[4], "zc") == 0;
    shml_segment *seg;
    struct stress_area *a = chan_shared_open(argv[1], &seg);
    shml_channel *ch;
    ASSERT_OK(shml_channel_open(argv[0], SHML_CONSUMER, NULL, &ch));
    int64_t *last = malloc(sizeof(int64_t) * (size_t)producers);
    ASSERT_NOT_NULL(last);
    for (long p = 0; p < producers; p++)
        last[p] = -1;
    uint64_t total = (uint64_t)producers * (uint64_t)n, mine = 0;
    static uint8_t buf[MAX_MSG];
    int64_t deadline = now_ns() + 240 * SEC;
    while (atomic_load(&a->received) < total) {
        if (now_ns() > deadline)
            shmt_fail(__FILE__, __LINE__, "consumer: %ju of %ju messages after 240 s",
                      (uintmax_t)atomic_load(&a->received), (uintmax_t)total);
        const void *m;
        size_t len;
        int r;
        if (zc) {
            r = shml_peek(ch, &m, &len, 100 * MS);
        } else {
            ssize_t got = shml_recv(ch, buf, sizeof buf, 100 * MS);
            r = got < 0 ? (int)got : 0;
            m = buf;
            len = got < 0 ? 0 : (size_t)got;
        }
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "consumer receive: %d (%s) %s", r, shml_strerror(r),
                      shml_last_error());
        const char *why = chan_msg_check(m, len);
        if (why)
            shmt_fail(__FILE__, __LINE__, "consumer: corrupt message: %s", why);
        struct chan_msg h;
        memcpy(&h, m, sizeof h);
        if (zc)
            ASSERT_OK(shml_release(ch));
        if (h.producer >= producers || h.seq >= (uint64_t)n)
            shmt_fail(__FILE__, __LINE__, "consumer: message from producer %u seq %ju is out "
                      "of range", h.producer, (uintmax_t)h.seq);
        if ((int64_t)h.seq <= last[h.producer])
            shmt_fail(__FILE__, __LINE__, "consumer: producer %u's seq %ju after %jd: order "
                      "broken", h.producer, (uintmax_t)h.seq, (intmax_t)last[h.producer]);
        last[h.producer] = (int64_t)h.seq;
        uint64_t bit = 1ull << (h.seq % 64);
        uint64_t old = atomic_fetch_or(&a->bits[h.producer * a->words + h.seq / 64], bit);
        if (old & bit)
            shmt_fail(__FILE__, __LINE__, "consumer: duplicate: producer %u seq %ju",
                      h.producer, (uintmax_t)h.seq);
        atomic_fetch_add(&a->received, 1);
        mine++;
    }
    parent_send(shmt_fmt("got %ju", (uintmax_t)mine));
    free(last);
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

static void stress(long producers, long consumers, long n, bool zc, uint32_t flags)
{
    unsigned seed = chan_seed();
    const char *area_addr;
    shml_segment *seg;
    struct stress_area *a = chan_shared_create(area_size(producers, n), &area_addr, &seg);
    a->words = (uint64_t)(n + 63) / 64;
    const char *addr = chan_addr();
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 64 * 1024;
    o.max_msg = MAX_MSG;
    o.flags = flags;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    const char *mode = zc ? "zc" : "copy";
    pid_t pids[16];
    int np = 0;
    int64_t t0 = now_ns();
    for (long c = 0; c < consumers; c++)
        pids[np++] = spawn_peer("consumer", addr, area_addr, shmt_fmt("%ld", producers),
                                shmt_fmt("%ld", n), mode);
    for (long p = 0; p < producers; p++)
        pids[np++] = spawn_peer("producer", addr, shmt_fmt("%ld", p), shmt_fmt("%ld", n), mode,
                                shmt_fmt("%u", seed + (unsigned)p * 7919u));
    char line[64];
    for (long c = 0; c < consumers; c++) {
        ASSERT_EQ(peer_recv(pids[c], line, sizeof line, 270000), 0);
        shmt_log("consumer %ld: %s", c, line);
    }
    for (int i = 0; i < np; i++)
        ASSERT_EQ(wait_peer(pids[i], 30000), 0);
    double secs = (double)(now_ns() - t0) / 1e9;
    uint64_t total = (uint64_t)producers * (uint64_t)n;
    shmt_log("%ju messages (%ldx%ld, %s%s) in %.2f s", (uintmax_t)total, producers, consumers,
             mode, flags & SHML_SPSC ? ", spsc" : "", secs);
    ASSERT_EQ(atomic_load(&a->received), total);
    for (long p = 0; p < producers; p++)
        for (long s = 0; s < n; s++)
            if (!(atomic_load_explicit(&a->bits[(uint64_t)p * a->words + (uint64_t)s / 64],
                                       memory_order_relaxed) &
                  (1ull << (s % 64))))
                shmt_fail(__FILE__, __LINE__, "lost: producer %ld seq %ld", p, s);
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_EQ(st.sent, total);
    ASSERT_EQ(st.received, total);
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(st.lost, 0);
    shml_channel_close(ch);
    shml_segment_close(seg);
}

TEST_TIMEOUT(stress_mpmc_copy, 300)
{
    stress(4, 4, chan_iters(1000000, 2000), false, 0);
}

TEST_TIMEOUT(stress_mpmc_zero_copy, 300)
{
    stress(4, 4, chan_iters(1000000, 2000), true, 0);
}

TEST_TIMEOUT(stress_spsc_copy, 300)
{
    stress(1, 1, chan_iters(2000000, 5000), false, SHML_SPSC);
}

TEST_TIMEOUT(stress_spsc_zero_copy, 300)
{
    stress(1, 1, chan_iters(2000000, 5000), true, SHML_SPSC);
}

TEST_TIMEOUT(stress_mpmc_on_spsc_off_flags, 300)
{
    /* One producer and one consumer on a channel without the SPSC flag (the CAS path). */
    stress(1, 1, chan_iters(2000000, 5000), false, 0);
}
