/*
 * The stress test with threads of one process (each thread its own handle, as the API asks),
 * so that TSan can watch the queue's memory ordering: scripts/test runs label inproc under
 * TSan. Same checks: no loss, no duplicate, no corruption, per-producer order per consumer.
 */
#include "chan_util.h"

#include <pthread.h>
#include <stdlib.h>

#define MAX_MSG 256u
#define MAXP 4

struct run {
    const char *addr;
    long producers, n;
    bool zc;
    _Atomic uint64_t received;
    _Atomic uint64_t *bits; /* [producer][words] */
    uint64_t words;
    unsigned seed;
};

struct worker {
    struct run *run;
    uint32_t id;
    char error[256];
};

static void *producer(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    shml_channel *ch;
    int r = shml_channel_open(run->addr, SHML_PRODUCER, NULL, &ch);
    if (r < 0) {
        snprintf(w->error, sizeof w->error, "producer open: %d", r);
        return NULL;
    }
    unsigned seed = run->seed + w->id * 7919u;
    uint8_t msg[MAX_MSG];
    for (long i = 0; i < run->n; i++) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (MAX_MSG - CHAN_MSG_MIN + 1));
        if (run->zc) {
            void *p;
            r = shml_claim(ch, MAX_MSG, &p, 3 * WAIT_BOUND);
            if (r == 0) {
                chan_msg_fill(p, len, w->id, (uint64_t)i);
                r = shml_commit(ch, len);
            }
        } else {
            chan_msg_fill(msg, len, w->id, (uint64_t)i);
            ssize_t s = shml_send(ch, msg, len, 3 * WAIT_BOUND);
            r = s == (ssize_t)len ? 0 : (int)s;
        }
        if (r != 0) {
            snprintf(w->error, sizeof w->error, "producer %u message %ld: %d (%s)", w->id, i, r,
                     shml_strerror(r));
            break;
        }
    }
    shml_channel_close(ch);
    return NULL;
}

static void *consumer(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    shml_channel *ch;
    int r = shml_channel_open(run->addr, SHML_CONSUMER, NULL, &ch);
    if (r < 0) {
        snprintf(w->error, sizeof w->error, "consumer open: %d", r);
        return NULL;
    }
    int64_t last[MAXP] = {-1, -1, -1, -1};
    uint64_t total = (uint64_t)run->producers * (uint64_t)run->n;
    int64_t deadline = now_ns() + 200 * SEC;
    uint8_t buf[MAX_MSG];
    while (atomic_load(&run->received) < total) {
        if (now_ns() > deadline) {
            snprintf(w->error, sizeof w->error, "consumer: %ju of %ju after 200 s",
                     (uintmax_t)atomic_load(&run->received), (uintmax_t)total);
            break;
        }
        const void *m;
        size_t len;
        if (run->zc) {
            r = shml_peek(ch, &m, &len, 50 * MS);
        } else {
            ssize_t got = shml_recv(ch, buf, sizeof buf, 50 * MS);
            r = got < 0 ? (int)got : 0;
            m = buf;
            len = got < 0 ? 0 : (size_t)got;
        }
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0) {
            snprintf(w->error, sizeof w->error, "consumer: %d (%s)", r, shml_strerror(r));
            break;
        }
        const char *why = chan_msg_check(m, len);
        struct chan_msg h;
        memcpy(&h, m, sizeof h);
        if (run->zc)
            shml_release(ch);
        if (why) {
            snprintf(w->error, sizeof w->error, "corrupt: %s", why);
            break;
        }
        if (h.producer >= run->producers || h.seq >= (uint64_t)run->n) {
            snprintf(w->error, sizeof w->error, "producer %u seq %ju out of range", h.producer,
                     (uintmax_t)h.seq);
            break;
        }
        if ((int64_t)h.seq <= last[h.producer]) {
            snprintf(w->error, sizeof w->error, "producer %u seq %ju after %jd: order broken",
                     h.producer, (uintmax_t)h.seq, (intmax_t)last[h.producer]);
            break;
        }
        last[h.producer] = (int64_t)h.seq;
        uint64_t bit = 1ull << (h.seq % 64);
        if (atomic_fetch_or(&run->bits[h.producer * run->words + h.seq / 64], bit) & bit) {
            snprintf(w->error, sizeof w->error, "duplicate: producer %u seq %ju", h.producer,
                     (uintmax_t)h.seq);
            break;
        }
        atomic_fetch_add(&run->received, 1);
    }
    shml_channel_close(ch);
    return NULL;
}

static void stress_threads(long producers, long consumers, long n, bool zc, uint32_t flags)
{
    struct run run = {0};
    run.addr = chan_addr();
    run.producers = producers;
    run.n = n;
    run.zc = zc;
    run.seed = chan_seed();
    run.words = (uint64_t)(n + 63) / 64;
    run.bits = calloc((size_t)producers * run.words, sizeof *run.bits);
    ASSERT_NOT_NULL(run.bits);
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 32 * 320;
    o.max_msg = MAX_MSG;
    o.flags = flags;
    shml_channel *ch;
    ASSERT_OK(shml_channel_create(run.addr, &o, &ch));
    struct worker w[8];
    pthread_t t[8];
    int nt = 0;
    int64_t t0 = now_ns();
    for (long c = 0; c < consumers; c++, nt++) {
        w[nt] = (struct worker){&run, (uint32_t)c, ""};
        ASSERT_EQ(pthread_create(&t[nt], NULL, consumer, &w[nt]), 0);
    }
    for (long p = 0; p < producers; p++, nt++) {
        w[nt] = (struct worker){&run, (uint32_t)p, ""};
        ASSERT_EQ(pthread_create(&t[nt], NULL, producer, &w[nt]), 0);
    }
    for (int i = 0; i < nt; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    shmt_log("%ju messages (%ldx%ld threads, %s) in %.2f s", (uintmax_t)(producers * n),
             producers, consumers, zc ? "zero-copy" : "copy", (double)(now_ns() - t0) / 1e9);
    for (int i = 0; i < nt; i++)
        if (w[i].error[0])
            shmt_fail(__FILE__, __LINE__, "%s", w[i].error);
    ASSERT_EQ(atomic_load(&run.received), (uint64_t)(producers * n));
    for (long p = 0; p < producers; p++)
        for (long s = 0; s < n; s++)
            if (!(atomic_load(&run.bits[(uint64_t)p * run.words + (uint64_t)s / 64]) &
                  (1ull << (s % 64))))
                shmt_fail(__FILE__, __LINE__, "lost: producer %ld seq %ld", p, s);
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(ch, &st));
    ASSERT_EQ(st.sent, (uint64_t)(producers * n));
    ASSERT_EQ(st.received, (uint64_t)(producers * n));
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.queued, 0);
    shml_channel_close(ch);
    free(run.bits);
}

TEST_TIMEOUT(inproc_stress_mpmc_copy, 300)
{
    stress_threads(4, 4, chan_iters(100000, 1000), false, 0);
}

TEST_TIMEOUT(inproc_stress_mpmc_zero_copy, 300)
{
    stress_threads(4, 4, chan_iters(100000, 1000), true, 0);
}

TEST_TIMEOUT(inproc_stress_spsc, 300)
{
    stress_threads(1, 1, chan_iters(300000, 3000), false, SHML_SPSC);
}

TEST_TIMEOUT(inproc_stress_spsc_zero_copy, 300)
{
    stress_threads(1, 1, chan_iters(300000, 3000), true, SHML_SPSC);
}
