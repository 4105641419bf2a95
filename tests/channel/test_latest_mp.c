/*
 * The latest-value channel between processes: a writer writes values (version, checksum,
 * random size) at full speed, never waiting (every send has timeout 0 and must succeed), while
 * readers read by copy and by peek, some holding their peeks open for a while. Never a torn
 * value; versions strictly increase; every skipped value is counted (version jumps equal
 * shml_recv_gap(), reads + skips = versions, stats.drops = the sum of the gaps). With two
 * writers: never torn, each writer's versions increase.
 */
#include "chan_util.h"

#include <stdlib.h>
#include <unistd.h>

#define LV_MP_MAX 2048u

struct lv_area {
    _Atomic uint32_t writers_done;
    _Atomic uint64_t reads;
    _Atomic uint64_t gaps;
};

/* argv: channel, area, id, n, seed. Values id:1..n; odd ids use claim/commit. */
PEER(lv_writer)
{
    ASSERT_EQ(argc, 5);
    shml_segment *seg;
    struct lv_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    long n = atol(argv[3]);
    unsigned seed = (unsigned)strtoul(argv[4], NULL, 10);
    shml_channel *w = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_BLOCK);
    static uint8_t v[LV_MP_MAX];
    for (long i = 1; i <= n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (LV_MP_MAX - CHAN_MSG_MIN + 1));
        if (id & 1) {
            void *p;
            int r = shml_claim(w, len, &p, 0);
            if (r != 0)
                shmt_fail(__FILE__, __LINE__, "writer %u claim %ld: %d (%s) %s", id, i, r,
                          shml_strerror(r), shml_last_error());
            chan_msg_fill(p, len, id, (uint64_t)i);
            ASSERT_OK(shml_commit(w, len));
        } else {
            chan_msg_fill(v, len, id, (uint64_t)i);
            ssize_t r = shml_send(w, v, len, 0); /* a writer never waits */
            if (r != (ssize_t)len)
                shmt_fail(__FILE__, __LINE__, "writer %u value %ld: %zd (%s) %s", id, i, r,
                          shml_strerror((int)r), shml_last_error());
        }
    }
    atomic_fetch_add(&a->writers_done, 1);
    shml_channel_close(w);
    shml_segment_close(seg);
    return 0;
}

/*
 * argv: channel, area, writers, n, mode ("copy", "peek", "hold": peek and keep it open a
 * while). Reads until every writer is done and nothing newer comes. With one writer, checks that
 * each version jump equals shml_recv_gap(). Prints "reads R gaps G".
 */
PEER(lv_reader)
{
    ASSERT_EQ(argc, 5);
    shml_segment *seg;
    struct lv_area *a = chan_shared_open(argv[1], &seg);
    long writers = atol(argv[2]);
    long n = atol(argv[3]);
    const char *mode = argv[4];
    shml_channel *r = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    ASSERT_EQ(parent_send("ready"), 0);
    uint64_t last[4] = {0, 0, 0, 0}, reads = 0, gaps = 0, unexplained = 0;
    static uint8_t buf[LV_MP_MAX];
    bool done_seen = false;
    int64_t deadline = now_ns() + 200 * SEC;
    for (;;) {
        if (now_ns() > deadline)
            shmt_fail(__FILE__, __LINE__, "reader: %ju reads after 200 s", (uintmax_t)reads);
        const uint8_t *m;
        size_t len;
        bool peek = strcmp(mode, "copy") != 0;
        if (peek) {
            const void *p;
            int rc = shml_peek(r, &p, &len, 100 * MS);
            if (rc == -ETIMEDOUT) {
                if (done_seen) /* this wait began after the writers were done */
                    break;
                done_seen = atomic_load(&a->writers_done) == (uint32_t)writers;
                continue;
            }
            ASSERT_OK(rc);
            m = p;
            if (strcmp(mode, "hold") == 0 && reads % 16 == 0)
                usleep(2000); /* the writer goes on meanwhile, elsewhere */
        } else {
            ssize_t got = shml_recv(r, buf, sizeof buf, 100 * MS);
            if (got == -ETIMEDOUT) {
                if (done_seen) /* this wait began after the writers were done */
                    break;
                done_seen = atomic_load(&a->writers_done) == (uint32_t)writers;
                continue;
            }
            ASSERT_OK(got);
            m = buf;
            len = (size_t)got;
        }
        const char *why = chan_msg_check(m, len);
        if (why)
            shmt_fail(__FILE__, __LINE__, "reader (%s): torn value: %s", mode, why);
        struct chan_msg h;
        memcpy(&h, m, sizeof h);
        if (peek)
            ASSERT_OK(shml_release(r)); /* pinned: never stale */
        if (h.producer >= (uint32_t)writers || h.seq < 1 || h.seq > (uint64_t)n)
            shmt_fail(__FILE__, __LINE__, "value %u:%ju out of range", h.producer,
                      (uintmax_t)h.seq);
        if (h.seq <= last[h.producer])
            shmt_fail(__FILE__, __LINE__, "writer %u: version %ju after %ju", h.producer,
                      (uintmax_t)h.seq, (uintmax_t)last[h.producer]);
        uint64_t gap = shml_recv_gap(r);
        /* The first read of a handle: whether the values written between its open and its
           first read count as skipped, the header leaves open (the library says no). */
        if (writers == 1 && reads == 0 && gap == 0)
            unexplained = h.seq - 1;
        else if (writers == 1 && h.seq - last[0] - 1 != gap)
            shmt_fail(__FILE__, __LINE__, "version %ju after %ju, but shml_recv_gap() says %ju",
                      (uintmax_t)h.seq, (uintmax_t)last[0], (uintmax_t)gap);
        last[h.producer] = h.seq;
        reads++;
        gaps += gap;
    }
    /* The last value read is the newest: some writer's last. */
    bool saw_last = false;
    for (long w = 0; w < writers; w++)
        saw_last |= last[w] == (uint64_t)n;
    if (!saw_last)
        shmt_fail(__FILE__, __LINE__, "reader ended without any writer's last value");
    atomic_fetch_add(&a->reads, reads);
    atomic_fetch_add(&a->gaps, gaps);
    ASSERT_EQ(parent_send(shmt_fmt("reads %ju gaps %ju first %ju", (uintmax_t)reads,
                                   (uintmax_t)gaps, (uintmax_t)unexplained)),
              0);
    shml_channel_close(r);
    shml_segment_close(seg);
    return 0;
}

static void lv_run(long writers, long n, const char *const *modes, int readers, size_t capacity)
{
    unsigned seed = chan_seed();
    const char *area_addr;
    shml_segment *seg;
    struct lv_area *a = chan_shared_create(sizeof *a, &area_addr, &seg);
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_LATEST, 0, capacity, LV_MP_MAX, 0);
    uint32_t bufs = chan_stats(ch).slots;
    shml_channel_close(ch);
    /* Writers never wait while at most buffers - 2 readers are inside a read at once. */
    ASSERT_LE((uint32_t)readers, bufs - 2);
    pid_t rp[8], wp[4];
    int64_t t0 = now_ns();
    for (int i = 0; i < readers; i++) {
        rp[i] = spawn_peer("lv_reader", addr, area_addr, shmt_fmt("%ld", writers),
                           shmt_fmt("%ld", n), modes[i]);
        ASSERT_EQ(peer_expect(rp[i], "ready", 30000), 0);
    }
    for (long w = 0; w < writers; w++)
        wp[w] = spawn_peer("lv_writer", addr, area_addr, shmt_fmt("%ld", w), shmt_fmt("%ld", n),
                           shmt_fmt("%u", seed + (unsigned)w));
    /* The writers first: one that fails (a write that did not succeed at once) ends the test
       now, not when the readers give up. */
    for (long w = 0; w < writers; w++)
        ASSERT_EQ(wait_peer(wp[w], 240000), 0);
    char line[128];
    for (int i = 0; i < readers; i++) {
        ASSERT_EQ(peer_recv(rp[i], line, sizeof line, 60000), 0);
        unsigned long long reads, gaps, first;
        ASSERT_EQ(sscanf(line, "reads %llu gaps %llu first %llu", &reads, &gaps, &first), 3);
        shmt_log("reader %d (%s): %s", i, modes[i], line);
        if (writers == 1) /* each value read, counted skipped, or before the first read */
            ASSERT_EQ(reads + gaps + first, (uint64_t)n);
    }
    for (int i = 0; i < readers; i++)
        ASSERT_EQ(wait_peer(rp[i], 30000), 0);
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("%ld writer(s) x %ld values, %d readers, %u buffers: %.2f s; %ju reads, %ju "
             "skipped",
             writers, n, readers, bufs, (double)(now_ns() - t0) / 1e9,
             (uintmax_t)atomic_load(&a->reads), (uintmax_t)atomic_load(&a->gaps));
    ASSERT_EQ(st.sent, (uint64_t)(writers * n));
    ASSERT_EQ(st.received, atomic_load(&a->reads));
    ASSERT_EQ(st.drops, atomic_load(&a->gaps));
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.attached, 0);
    shml_segment_close(seg);
}

TEST_TIMEOUT(latest_stress_one_writer, 300)
{
    /* The fewest buffers (4): two readers inside a read at most. */
    static const char *const modes[] = {"copy", "hold"};
    lv_run(1, chan_iters(1000000, 5000), modes, 2, 1);
}

TEST_TIMEOUT(latest_stress_one_writer_three_readers, 300)
{
    static const char *const modes[] = {"peek", "hold", "copy"};
    lv_run(1, chan_iters(1000000, 5000), modes, 3, 8 * 2112);
}

TEST_TIMEOUT(latest_stress_two_writers, 300)
{
    static const char *const modes[] = {"copy", "hold", "peek"};
    lv_run(2, chan_iters(500000, 5000), modes, 3, 8 * 2112);
}
