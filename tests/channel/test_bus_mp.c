/*
 * The bus between processes. SHML_BLOCK stress: P publishers and S subscribers, each its own
 * process, messages of random sizes carrying publisher id, sequence number and checksum;
 * every subscriber gets every message, each publisher's in order (so, per publisher, seq is
 * exactly the previous one plus one), none corrupt. SHML_OVERWRITE: one publisher at full
 * speed and subscribers of different speeds; every gap is reported exactly (the sequence
 * jumps add up to the sum of shml_recv_gap() values, and received + missed = published), and
 * a message read with peek whose release did not say -ESTALE is whole. Late joiners start at
 * the next message.
 */
#include "chan_util.h"

#include <stdlib.h>
#include <unistd.h>

#define BUS_MP_MAX   512u
#define MAXPUB       8
#define BUS_STRESS_N 1000000L /* the 4 x 4 x 10^6 */

struct bus_area {
    _Atomic uint64_t begun[MAXPUB]; /* publisher p: seq of the send in progress + 1 */
    _Atomic uint64_t done[MAXPUB];  /* publisher p: sends returned */
    _Atomic uint64_t received;      /* all subscribers */
    _Atomic uint64_t gaps;
    _Atomic uint64_t stale;
    _Atomic uint32_t stop;
};

static int64_t deadline_after(int secs)
{
    return now_ns() + (int64_t)secs * SEC;
}

/* argv: channel, area, id, n, mode ("copy", "zc", "batch"), seed */
PEER(bus_pub)
{
    ASSERT_EQ(argc, 6);
    shml_segment *seg;
    struct bus_area *a = chan_shared_open(argv[1], &seg);
    uint32_t id = (uint32_t)atoi(argv[2]);
    long n = atol(argv[3]);
    const char *mode = argv[4];
    unsigned seed = (unsigned)strtoul(argv[5], NULL, 10);
    shml_channel *ch = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    static uint8_t msgs[8][BUS_MP_MAX];
    for (long i = 0; i < n;) {
        uint32_t len = CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (BUS_MP_MAX - CHAN_MSG_MIN + 1));
        atomic_store(&a->begun[id], (uint64_t)i + 1);
        if (strcmp(mode, "zc") == 0) {
            void *w;
            int r = shml_claim(ch, (i & 1) ? BUS_MP_MAX : len, &w, 3 * WAIT_BOUND);
            if (r != 0)
                shmt_fail(__FILE__, __LINE__, "publisher %u claim %ld: %d (%s) %s", id, i, r,
                          shml_strerror(r), shml_last_error());
            chan_msg_fill(w, len, id, (uint64_t)i);
            ASSERT_OK(shml_commit(ch, len));
            i++;
        } else if (strcmp(mode, "batch") == 0) {
            struct shml_iov v[8];
            size_t k = (size_t)(rand_r(&seed) % 8) + 1;
            if ((long)k > n - i)
                k = (size_t)(n - i);
            for (size_t j = 0; j < k; j++) {
                uint32_t l =
                    j ? CHAN_MSG_MIN + (uint32_t)(rand_r(&seed) % (BUS_MP_MAX - CHAN_MSG_MIN + 1))
                      : len;
                chan_msg_fill(msgs[j], l, id, (uint64_t)i + j);
                v[j].base = msgs[j];
                v[j].len = l;
            }
            atomic_store(&a->begun[id], (uint64_t)i + k);
            ssize_t r = shml_send_batch(ch, v, k, 3 * WAIT_BOUND);
            if (r < 1 || r > (ssize_t)k)
                shmt_fail(__FILE__, __LINE__, "publisher %u batch at %ld: %zd (%s) %s", id, i, r,
                          shml_strerror((int)r), shml_last_error());
            i += r;
        } else {
            chan_msg_fill(msgs[0], len, id, (uint64_t)i);
            ssize_t r = shml_send(ch, msgs[0], len, 3 * WAIT_BOUND);
            if (r != (ssize_t)len)
                shmt_fail(__FILE__, __LINE__, "publisher %u send %ld: %zd (%s) %s", id, i, r,
                          shml_strerror((int)r), shml_last_error());
            i++;
        }
        atomic_store(&a->done[id], (uint64_t)i);
    }
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

/*
 * argv: channel, area, publishers, n, mode ("copy", "peek", "batch"), policy, slow ("0" or
 * the microseconds to sleep every 64 messages), late ("0" or "1": joined mid-stream).
 * BLOCK: per publisher, seq must be exactly the last plus one; runs until each publisher's
 * n-th message. OVERWRITE (one publisher): seq jumps must equal shml_recv_gap().
 * Prints "got R gaps G stale S".
 */
PEER(bus_sub)
{
    ASSERT_EQ(argc, 8);
    shml_segment *seg;
    struct bus_area *a = chan_shared_open(argv[1], &seg);
    long pubs = atol(argv[2]);
    long n = atol(argv[3]);
    const char *mode = argv[4];
    bool overwrite = atoi(argv[5]) == (int)SHML_OVERWRITE;
    long slow = atol(argv[6]);
    bool late = atoi(argv[7]) != 0;
    ASSERT_LE(pubs, MAXPUB);
    uint64_t lo[MAXPUB], hi[MAXPUB];
    for (long p = 0; p < pubs; p++)
        lo[p] = atomic_load(&a->done[p]); /* sent before the join: never delivered */
    shml_channel *ch = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    for (long p = 0; p < pubs; p++)
        hi[p] = atomic_load(&a->begun[p]); /* begun after the join: always delivered */
    if (!late)
        ASSERT_EQ(parent_send("ready"), 0);
    int64_t next[MAXPUB];
    for (long p = 0; p < pubs; p++)
        next[p] = late ? -1 : 0; /* -1: not seen yet; -2: after a stale peek */
    long finished = 0;
    int idle = 0;
    uint64_t got = 0, gaps = 0, stale = 0;
    static uint8_t buf[8 * BUS_MP_MAX];
    size_t lens[8];
    int64_t deadline = deadline_after(200);
    while (finished < pubs) {
        if (now_ns() > deadline)
            shmt_fail(__FILE__, __LINE__, "subscriber: %ju messages after 200 s", (uintmax_t)got);
        size_t k = 1;
        const void *pk = NULL;
        int r;
        if (strcmp(mode, "peek") == 0) {
            size_t len;
            r = shml_peek(ch, &pk, &len, 100 * MS);
            if (r == 0) {
                uint64_t g = shml_recv_gap(ch);
                lens[0] = len;
                memcpy(buf, pk, len < BUS_MP_MAX ? len : BUS_MP_MAX);
                int rr = shml_release(ch);
                if (rr == -ESTALE && overwrite) {
                    /* Possibly torn: neither checked nor received; it counts as missed, with
                       what was skipped before it (the gap is counted as for shml_recv). With
                       one publisher, positions are its sequence numbers: account exactly. */
                    stale++;
                    if (shml_recv_gap(ch) < 1)
                        shmt_fail(__FILE__, __LINE__, "release -ESTALE, but a gap of %ju",
                                  (uintmax_t)shml_recv_gap(ch));
                    gaps += g + 1;
                    if (pubs == 1 && next[0] >= 0) {
                        next[0] += (int64_t)(g + 1);
                    } else {
                        for (long p = 0; p < pubs; p++)
                            if (next[p] >= 0)
                                next[p] = -2 - next[p]; /* resynchronise on the next one */
                    }
                    continue;
                }
                ASSERT_OK(rr);
            }
        } else if (strcmp(mode, "batch") == 0) {
            ssize_t m = shml_recv_batch(ch, buf, sizeof buf, lens, 8, 100 * MS);
            r = m < 0 ? (int)m : 0;
            k = m < 0 ? 0 : (size_t)m;
        } else {
            ssize_t m = shml_recv(ch, buf, BUS_MP_MAX, 100 * MS);
            r = m < 0 ? (int)m : 0;
            lens[0] = m < 0 ? 0 : (size_t)m;
        }
        if (r == -ETIMEDOUT) {
            /* A late joiner may have joined after the end: every publisher done, and quiet. */
            if (late) {
                long done = 0;
                for (long p = 0; p < pubs; p++)
                    done += atomic_load(&a->done[p]) == (uint64_t)n;
                if (done == pubs && ++idle >= 5)
                    break;
            }
            continue;
        }
        idle = 0;
        if (r != 0)
            shmt_fail(__FILE__, __LINE__, "subscriber receive: %d (%s) %s", r, shml_strerror(r),
                      shml_last_error());
        uint64_t gap = shml_recv_gap(ch), batch_jump = 0;
        bool joined_in_batch = false;
        size_t off = 0;
        for (size_t j = 0; j < k; j++) {
            const uint8_t *m = buf + off;
            off += lens[j];
            const char *why = chan_msg_check(m, lens[j]);
            if (why)
                shmt_fail(__FILE__, __LINE__, "subscriber: corrupt message: %s", why);
            struct chan_msg h;
            memcpy(&h, m, sizeof h);
            if (h.producer >= pubs || h.seq >= (uint64_t)n)
                shmt_fail(__FILE__, __LINE__, "publisher %u seq %ju out of range", h.producer,
                          (uintmax_t)h.seq);
            /* A batch's gap: what it skipped before and among its messages (the library's
               reading; the header says "just before the message ... returned"). */
            uint64_t g = j == 0 ? gap : 0;
            int64_t *nx = &next[h.producer];
            if (*nx == -1) {
                /* A joiner's first message of this publisher: it starts where it joined. */
                uint64_t start = h.seq - (g <= h.seq ? g : h.seq);
                if (start < lo[h.producer] || start > hi[h.producer])
                    shmt_fail(__FILE__, __LINE__,
                              "joiner: first message of publisher %u is seq "
                              "%ju after a gap of %ju, want a start in %ju..%ju",
                              h.producer, (uintmax_t)h.seq, (uintmax_t)g, (uintmax_t)lo[h.producer],
                              (uintmax_t)hi[h.producer]);
                if (!overwrite && g != 0)
                    shmt_fail(__FILE__, __LINE__, "joiner told of a gap of %ju", (uintmax_t)g);
                joined_in_batch = true;
            } else if (*nx <= -2) {
                /* After a stale peek: in order, the jump not checked. */
                if (h.seq < (uint64_t)(-2 - *nx))
                    shmt_fail(__FILE__, __LINE__, "seq %ju after %jd: order broken",
                              (uintmax_t)h.seq, (intmax_t)(-3 - *nx));
            } else if (overwrite && k > 1) {
                if (h.seq < (uint64_t)*nx)
                    shmt_fail(__FILE__, __LINE__, "seq %ju after %jd: order broken",
                              (uintmax_t)h.seq, (intmax_t)*nx - 1);
                batch_jump += h.seq - (uint64_t)*nx;
            } else if (h.seq != (uint64_t)*nx + (overwrite ? g : 0)) {
                shmt_fail(__FILE__, __LINE__,
                          "publisher %u: seq %ju after %jd, shml_recv_gap() "
                          "%ju (%s)",
                          h.producer, (uintmax_t)h.seq, (intmax_t)*nx - 1, (uintmax_t)g,
                          overwrite               ? "a jump that is not the gap"
                          : h.seq < (uint64_t)*nx ? "duplicate or out of order"
                                                  : "missing");
            }
            *nx = (int64_t)h.seq + 1;
            if (h.seq == (uint64_t)n - 1)
                finished++;
            got++;
        }
        if (overwrite && k > 1 && !joined_in_batch && batch_jump != gap)
            shmt_fail(__FILE__, __LINE__,
                      "a batch of %zu skipped %ju messages among and "
                      "before its own, but shml_recv_gap() says %ju",
                      k, (uintmax_t)batch_jump, (uintmax_t)gap);
        gaps += gap;
        if (!overwrite && gap != 0)
            shmt_fail(__FILE__, __LINE__, "SHML_BLOCK subscriber told of a gap of %ju",
                      (uintmax_t)gap);
        if (slow && got % 64 == 0)
            usleep((useconds_t)slow);
    }
    /* Everything begun after the join was delivered (or, overwriting, missed and counted). */
    for (long p = 0; p < pubs; p++)
        if (hi[p] < (uint64_t)n && next[p] != n && next[p] != -2 - n)
            shmt_fail(__FILE__, __LINE__,
                      "publisher %ld: ended at %jd of %ld (joined before "
                      "seq %ju)",
                      p, (intmax_t)next[p], n, (uintmax_t)hi[p]);
    atomic_fetch_add(&a->received, got);
    atomic_fetch_add(&a->gaps, gaps);
    atomic_fetch_add(&a->stale, stale);
    ASSERT_EQ(parent_send(shmt_fmt("got %ju gaps %ju stale %ju", (uintmax_t)got, (uintmax_t)gaps,
                                   (uintmax_t)stale)),
              0);
    shml_channel_close(ch);
    shml_segment_close(seg);
    return 0;
}

struct sub_spec {
    const char *mode;
    long slow_us;
};

static void bus_run(long pubs, long n, const char *pub_mode, const struct sub_spec *subs, int nsubs,
                    uint32_t policy, size_t capacity, int late)
{
    unsigned seed = chan_seed();
    const char *area_addr;
    shml_segment *seg;
    struct bus_area *a = chan_shared_create(sizeof *a, &area_addr, &seg);
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_BUS, policy, capacity, BUS_MP_MAX, 0);
    shml_channel_close(ch); /* the creator would be a subscriber that never reads */
    pid_t sp[16], pp[MAXPUB];
    int64_t t0 = now_ns();
    for (int s = 0; s < nsubs; s++) {
        sp[s] =
            spawn_peer("bus_sub", addr, area_addr, shmt_fmt("%ld", pubs), shmt_fmt("%ld", n),
                       subs[s].mode, shmt_fmt("%u", policy), shmt_fmt("%ld", subs[s].slow_us), "0");
        ASSERT_EQ(peer_expect(sp[s], "ready", 30000), 0);
    }
    for (long p = 0; p < pubs; p++)
        pp[p] = spawn_peer("bus_pub", addr, area_addr, shmt_fmt("%ld", p), shmt_fmt("%ld", n),
                           pub_mode, shmt_fmt("%u", seed + (unsigned)p * 7919u));
    /* Late joiners, spawned while the publishers run. */
    for (int l = 0; l < late; l++) {
        shmt_sleep_ms((int)(rand_r(&seed) % 40));
        sp[nsubs + l] = spawn_peer("bus_sub", addr, area_addr, shmt_fmt("%ld", pubs),
                                   shmt_fmt("%ld", n), "copy", shmt_fmt("%u", policy), "0", "1");
    }
    char line[128];
    uint64_t sum_got = 0, sum_gaps = 0;
    for (int s = 0; s < nsubs + late; s++) {
        ASSERT_EQ(peer_recv(sp[s], line, sizeof line, 240000), 0);
        unsigned long long got, gaps, stale;
        ASSERT_EQ(sscanf(line, "got %llu gaps %llu stale %llu", &got, &gaps, &stale), 3);
        shmt_log("subscriber %d (%s%s): %s", s, s < nsubs ? subs[s].mode : "late",
                 s < nsubs && subs[s].slow_us ? ", slow" : "", line);
        if (s < nsubs) {
            if (policy == SHML_BLOCK)
                ASSERT_EQ(got, (uint64_t)(pubs * n));
            else if (pubs == 1) /* every message received, or counted missed */
                ASSERT_EQ(got + gaps, (uint64_t)n);
            else
                ASSERT_LE(got + gaps, (uint64_t)(pubs * n));
        }
        sum_got += got;
        sum_gaps += gaps;
    }
    for (long p = 0; p < pubs; p++)
        ASSERT_EQ(wait_peer(pp[p], 60000), 0);
    for (int s = 0; s < nsubs + late; s++)
        ASSERT_EQ(wait_peer(sp[s], 30000), 0);
    double secs = (double)(now_ns() - t0) / 1e9;
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("%ld x %ld messages (%s), %d + %d subscribers, %s: %.2f s; %ju deliveries, %ju "
             "missed, %ju stale",
             pubs, n, pub_mode, nsubs, late, policy == SHML_BLOCK ? "block" : "overwrite", secs,
             (uintmax_t)sum_got, (uintmax_t)sum_gaps, (uintmax_t)atomic_load(&a->stale));
    ASSERT_EQ(st.sent, (uint64_t)(pubs * n));
    ASSERT_GE(st.received, sum_got); /* release -ESTALE may count as a delivery or not */
    ASSERT_LE(st.received, sum_got + atomic_load(&a->stale));
    ASSERT_EQ(st.lost, 0);
    if (policy == SHML_BLOCK) {
        ASSERT_EQ(st.drops, 0);
        ASSERT_EQ(st.received, sum_got);
    } else {
        ASSERT_EQ(st.drops, sum_gaps);
    }
    ASSERT_EQ(st.attached, 0);
    shml_segment_close(seg);
}

static const struct sub_spec four_mixed[] = {{"copy", 0}, {"peek", 0}, {"batch", 0}, {"copy", 0}};

TEST_TIMEOUT(bus_stress_block_4x4, 300)
{
    /* The 4 x 4 x 10^6 took 33 s alone and 60 s beside other tests on 2 vCPUs:
       half of it keeps the test under 30 s. */
    bus_run(4, chan_iters(BUS_STRESS_N / 2, 2000), "copy", four_mixed, 4, SHML_BLOCK, 64 * 1024, 0);
}

TEST_TIMEOUT(bus_stress_block_4x4_zero_copy, 300)
{
    bus_run(4, chan_iters(BUS_STRESS_N / 4, 1000), "zc", four_mixed, 4, SHML_BLOCK, 64 * 1024, 0);
}

TEST_TIMEOUT(bus_stress_block_batches, 300)
{
    bus_run(2, chan_iters(BUS_STRESS_N / 4, 1000), "batch", four_mixed, 3, SHML_BLOCK, 16 * 1024,
            0);
}

TEST_TIMEOUT(bus_stress_block_late_joiners, 300)
{
    static const struct sub_spec one[] = {{"copy", 0}};
    bus_run(3, chan_iters(100000, 2000), "copy", one, 1, SHML_BLOCK, 16 * 1024, 3);
}

TEST_TIMEOUT(bus_stress_overwrite_gaps, 300)
{
    /* One publisher at full speed; a fast, a slow and a very slow subscriber, by copy. */
    static const struct sub_spec subs[] = {
        {"copy", 0}, {"copy", 200}, {"batch", 100}, {"copy", 3000}};
    bus_run(1, chan_iters(1000000, 5000), "copy", subs, 4, SHML_OVERWRITE, 16 * 576, 0);
}

TEST_TIMEOUT(bus_stress_overwrite_peek_stale, 300)
{
    /* Peeks of a bus that overwrites: a release that does not say -ESTALE read whole bytes. */
    static const struct sub_spec subs[] = {{"peek", 0}, {"peek", 100}, {"peek", 1000}};
    bus_run(1, chan_iters(500000, 5000), "copy", subs, 3, SHML_OVERWRITE, 4 * 576, 0);
}

TEST_TIMEOUT(bus_stress_overwrite_late_joiners, 300)
{
    static const struct sub_spec one[] = {{"copy", 0}};
    bus_run(1, chan_iters(300000, 3000), "copy", one, 1, SHML_OVERWRITE, 16 * 576, 3);
}
