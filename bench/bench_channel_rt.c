/*
 * bench_channel_rt.c - bench_channel's round trips of one message between two processes: the
 * raw spin and futex mailboxes, the queue in each wait mode, the zero-copy calls at 1 and
 * 16 MiB, and the kernel's mechanisms (bench_channel_kernel.c) in one table. Each round trip
 * is timed by the clock read that follows it (bench_channel.c says why).
 */
#include "bench_channel.h"

#include "bench_util.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>

/* A round trip's state: the repetition's, and whether the zero-copy rows touch every page. */
struct rt_run {
    struct chan_run c; /* first: the harness and the table's functions see this part */
    bool pages;        /* zero-copy: stamp every page, not only the first line */
};

/* The round trip that a chan_run of this file is part of. */
static struct rt_run *rt_of(struct chan_run *c)
{
    return (struct rt_run *)c;
}

/* ---- raw spin and futex round trips ---- */

/*
 * Put message n in a mailbox. The other side reads the previous message out before it
 * answers it, and this side writes the next only after the answer, so the bytes are free.
 */
static void mbox_put(struct mbox *m, const unsigned char *msg, uint32_t n)
{
    m->len = SMALL;
    memcpy(m->data, msg, SMALL);
    /* Release: pairs with the acquire load in bench_spin_wait(), bench_spin_wait_pause() or
       bench_futex_wait() of the other process: len and data come before the number. */
    atomic_store_explicit(&m->seq, n, memory_order_release);
}

/* Copy message n out of a mailbox (its number was seen with acquire) and check it. */
static int mbox_take(const struct mbox *m, unsigned char *buf, uint32_t n)
{
    memcpy(buf, m->data, SMALL);
    return check_stamp(buf, m->len, SMALL, n);
}

enum { RAW_SPIN, RAW_PAUSE, RAW_FUTEX };

static int raw_wait(int how, struct mbox *m, uint32_t n)
{
    switch (how) {
    case RAW_SPIN:
        return bench_spin_wait(&m->seq, n, WAIT_LIMIT_NS);
    case RAW_PAUSE:
        return bench_spin_wait_pause(&m->seq, n, WAIT_LIMIT_NS);
    default:
        return bench_futex_wait(&m->seq, n, WAIT_LIMIT_S);
    }
}

static void raw_post(int how, struct mbox *m, const unsigned char *msg, uint32_t n)
{
    mbox_put(m, msg, n);
    if (how == RAW_FUTEX)
        futex(&m->seq, FUTEX_WAKE, 1, NULL); /* always a wake: the classic raw ping-pong */
}

static int setup_raw(struct chan_run *c)
{
    atomic_store_explicit(&c->sh->ping.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh->pong.seq, 0, memory_order_relaxed);
    return 0;
}

static void peer_raw(struct chan_run *c, int how)
{
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        int rc = raw_wait(how, &c->sh->ping, (uint32_t)i);
        if (rc == 0)
            rc = mbox_take(&c->sh->ping, c->buf, (uint32_t)i);
        if (rc < 0)
            peer_fail(c, "raw wait", rc);
        raw_post(how, &c->sh->pong, c->buf, (uint32_t)i);
    }
}

static int round_raw(struct chan_run *c, int how, uint32_t i)
{
    stamp(c->msg, i);
    raw_post(how, &c->sh->ping, c->msg, i);
    int rc = raw_wait(how, &c->sh->pong, i);
    return rc < 0 ? rc : mbox_take(&c->sh->pong, c->buf, i);
}

static void peer_raw_spin(struct chan_run *c, int k)
{
    (void)k;
    peer_raw(c, RAW_SPIN);
}

static void peer_raw_pause(struct chan_run *c, int k)
{
    (void)k;
    peer_raw(c, RAW_PAUSE);
}

static void peer_raw_futex(struct chan_run *c, int k)
{
    (void)k;
    peer_raw(c, RAW_FUTEX);
}

static int round_raw_spin(struct chan_run *c, uint32_t i)
{
    return round_raw(c, RAW_SPIN, i);
}

static int round_raw_pause(struct chan_run *c, uint32_t i)
{
    return round_raw(c, RAW_PAUSE, i);
}

static int round_raw_futex(struct chan_run *c, uint32_t i)
{
    return round_raw(c, RAW_FUTEX, i);
}

/* ---- queue round trips: channel 0 carries the ping, channel 1 the pong ---- */

int setup_queues(struct chan_run *c)
{
    /* 16 slots: more than a ping-pong needs; small, so it stays in cache. */
    size_t cap = 16 * ((SLOT_HDR + c->size + 63) / 64 * 64);
    int rc = create_queue(c, 0, cap);
    if (rc >= 0)
        rc = create_queue(c, 1, cap);
    return rc;
}

static void peer_queue(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER), *out = peer_open(c, 1, SHML_PRODUCER);
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        ssize_t n = shml_recv(in, c->buf, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv", n);
        int rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        n = shml_send(out, c->buf, (size_t)n, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send", n);
    }
    shml_channel_close(in);
    shml_channel_close(out);
}

static int round_queue(struct chan_run *c, uint32_t i)
{
    stamp(c->msg, i);
    ssize_t n = shml_send(c->ch[0], c->msg, c->size, c->timeout);
    if (n < 0)
        return (int)n;
    n = shml_recv(c->ch[1], c->buf, c->size, c->timeout);
    if (n < 0)
        return (int)n;
    return check_stamp(c->buf, (size_t)n, c->size, i);
}

/* ---- zero-copy round trips ---- */

/* Stamp a message in place: its first line, or the first line of every page. */
static void zc_write(unsigned char *p, size_t len, bool pages, uint64_t n)
{
    size_t step = pages ? PAGE : len;
    for (size_t off = 0; off < len; off += step)
        stamp(p + off, n);
}

static int zc_check(const unsigned char *p, size_t len, size_t want, bool pages, uint64_t n)
{
    if (len != want)
        return -EMSGSIZE;
    size_t step = pages ? PAGE : len;
    for (size_t off = 0; off < len; off += step) {
        uint64_t got;
        memcpy(&got, p + off, sizeof got);
        if (got != n)
            return -EBADMSG;
    }
    return 0;
}

static int setup_zc(struct chan_run *c)
{
    int rc = create_queue(c, 0, 0);
    if (rc >= 0)
        rc = create_queue(c, 1, 0);
    return rc;
}

static void peer_zc(struct chan_run *c, int k)
{
    bool pages = rt_of(c)->pages;
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER), *out = peer_open(c, 1, SHML_PRODUCER);
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        const void *q;
        size_t len;
        int rc = shml_peek(in, &q, &len, c->timeout);
        if (rc < 0)
            peer_fail(c, "shml_peek", rc);
        rc = zc_check(q, len, c->size, pages, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        rc = shml_release(in);
        if (rc < 0)
            peer_fail(c, "shml_release", rc);
        void *p;
        rc = shml_claim(out, c->size, &p, c->timeout);
        if (rc < 0)
            peer_fail(c, "shml_claim", rc);
        zc_write(p, c->size, pages, (uint64_t)i);
        rc = shml_commit(out, c->size);
        if (rc < 0)
            peer_fail(c, "shml_commit", rc);
    }
    shml_channel_close(in);
    shml_channel_close(out);
}

static int round_zc(struct chan_run *c, uint32_t i)
{
    bool pages = rt_of(c)->pages;
    void *p;
    int rc = shml_claim(c->ch[0], c->size, &p, c->timeout);
    if (rc < 0)
        return rc;
    zc_write(p, c->size, pages, i);
    rc = shml_commit(c->ch[0], c->size);
    if (rc < 0)
        return rc;
    const void *q;
    size_t len;
    rc = shml_peek(c->ch[1], &q, &len, c->timeout);
    if (rc < 0)
        return rc;
    rc = zc_check(q, len, c->size, pages, i);
    int rr = shml_release(c->ch[1]);
    return rc < 0 ? rc : rr;
}

/* ---- the round-trip table ---- */

typedef int (*round_fn)(struct chan_run *c, uint32_t i);

struct rt_bench {
    const char *name;
    setup_fn setup;
    peer_fn peer;
    round_fn round;
    size_t size;
    uint32_t wait;
    uint32_t flags;
    int64_t timeout;
    bool pages;
    long div; /* runs rounds / div round trips */
};

#define MiB ((size_t)1 << 20)

/* The order matters: the report takes the ratios of RT_* entries (bench_channel.h). */
static const struct rt_bench rts[] = {
    {"raw spin ping-pong", setup_raw, peer_raw_spin, round_raw_spin, SMALL, 0, 0, 0, false, 1},
    {"queue SPSC (spin)", setup_queues, peer_queue, round_queue, SMALL, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, false, 1},
    {"raw futex ping-pong", setup_raw, peer_raw_futex, round_raw_futex, SMALL, 0, 0, 0, false, 2},
    {"queue SPSC (blocking)", setup_queues, peer_queue, round_queue, SMALL, SHML_WAIT_BLOCK,
     SHML_SPSC, WAIT_LIMIT_NS, false, 2},
    {"zero-copy 1 MiB (header)", setup_zc, peer_zc, round_zc, MiB, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, false, 1},
    {"zero-copy 16 MiB (header)", setup_zc, peer_zc, round_zc, 16 * MiB, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, false, 1},
    {"zero-copy 1 MiB (line/page)", setup_zc, peer_zc, round_zc, MiB, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, true, 10},
    {"zero-copy 16 MiB (line/page)", setup_zc, peer_zc, round_zc, 16 * MiB, SHML_WAIT_SPIN,
     SHML_SPSC, WAIT_LIMIT_NS, true, 100},
    {"pipe (two)", setup_pipes, peer_pipe_rt, round_pipe, SMALL, 0, 0, 0, false, 2},
    {"unix stream socketpair", setup_socketpair, peer_sock_rt, round_sock, SMALL, 0, 0, 0, false,
     2},
    {"POSIX mq (two)", setup_mqs, peer_mq_rt, round_mq, SMALL, 0, 0, 0, false, 2},
    {"raw FIFO (two) + epoll", setup_fifos, peer_fifo_rt, round_fifo, SMALL, 0, 0, 0, false, 2},
    {"queue SPSC, fd + epoll", setup_evloop_queues, peer_evloop_rt, round_evloop, SMALL,
     SHML_WAIT_ADAPTIVE, SHML_SPSC, WAIT_LIMIT_NS, false, 2},
    {"  diag: queue SPSC, fd + waitset", setup_waitset_queues, peer_evloop_rt, round_evloop, SMALL,
     SHML_WAIT_ADAPTIVE, SHML_SPSC, WAIT_LIMIT_NS, false, 2},
    {"  diag: queue SPSC (adaptive)", setup_queues, peer_queue, round_queue, SMALL,
     SHML_WAIT_ADAPTIVE, SHML_SPSC, WAIT_LIMIT_NS, false, 1},
    {"  diag: queue MPMC (spin)", setup_queues, peer_queue, round_queue, SMALL, SHML_WAIT_SPIN, 0,
     WAIT_LIMIT_NS, false, 1},
    {"  diag: queue SPSC (spin) FOREVER", setup_queues, peer_queue, round_queue, SMALL,
     SHML_WAIT_SPIN, SHML_SPSC, SHML_FOREVER, false, 1},
    {"  diag: raw spin + pause in poll", setup_raw, peer_raw_pause, round_raw_pause, SMALL, 0, 0, 0,
     false, 1},
};
_Static_assert(sizeof rts / sizeof rts[0] == N_RT && RT_PAUSE + 1 == N_RT,
               "RT_PAUSE names the last row");

/*
 * One repetition: warm-up round trips, then `rounds` round trips, each timed by the clock read
 * that follows it. The peer runs warm-up and timed rounds in one go.
 */
static int run_rt(struct rt_run *r, const struct chan_env *e, const struct rt_bench *b,
                  struct bench_series *s)
{
    long rounds = e->o->rounds / b->div;
    if (rounds < 20)
        rounds = 20;
    long warm = rounds / 10 < 1000 ? rounds / 10 : 1000;
    struct chan_run *c = &r->c;
    chan_run_init(c, e, b->name, b->size, b->wait, b->flags, b->timeout);
    r->pages = b->pages;
    c->count = warm + rounds;
    if (bench_series_reserve(s, (size_t)rounds) < 0)
        return -1;
    pid_t pid[1];
    int rc = begin_rep(c, b->name, b->setup, b->peer, 1, pid, s);
    if (rc <= 0)
        return rc;
    uint32_t i = 0;
    for (long w = 0; w < warm && rc >= 0; w++)
        rc = b->round(c, ++i);
    int64_t prev = now_ns();
    for (long k = 0; k < rounds && rc >= 0; k++) {
        rc = b->round(c, ++i);
        int64_t t = now_ns();
        s->v[s->n++] = (double)(t - prev);
        prev = t;
    }
    if (rc < 0) {
        char what[64];
        snprintf(what, sizeof what, "round %" PRIu32, i);
        report(b->name, what, rc);
    }
    return end_rep(c, pid, 1, rc, s, 2 * c->count);
}

const char *rt_case_name(size_t i)
{
    return rts[i].name;
}

int rt_case_run(void *env, size_t i, struct bench_series *s)
{
    struct rt_run r;
    return run_rt(&r, env, &rts[i], s);
}
