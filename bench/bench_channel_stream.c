/*
 * bench_channel_stream.c - bench_channel's one-way streams (the peer produces, this process
 * consumes) of 64 B, 4 KiB and 64 KiB messages: the raw ring publishing after every message
 * or every 16, shml_send/shml_recv, the batch calls, and the kernel's mechanisms
 * (bench_channel_kernel.c), in one table; and the chunked timing the bus rows share.
 */
#include "bench_channel.h"

#include "bench_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*
 * A stream's state: the repetition's, and the raw ring's, in each process: its own index, a
 * cached copy of the other's, the geometry, and how often the index is published.
 */
struct st_run {
    struct chan_run c; /* first: the harness and the table's functions see this part */
    int every;         /* raw ring: publish the index every `every` messages */
    uint64_t mine, cache, slots;
    uint32_t stride;
};

/* The stream that a chan_run of this file is part of. */
static struct st_run *st_of(struct chan_run *c)
{
    return (struct st_run *)c;
}

typedef long (*recv_fn)(struct chan_run *c, uint64_t next, long want);

/* ---- one-way streams: the peer produces c->count messages, this process consumes ---- */

/* Spin until *idx moves past `have`; return its value (acquire), or 0 after WAIT_LIMIT_NS. */
static uint64_t ring_wait(_Atomic uint64_t *idx, uint64_t have, bool *timed_out)
{
    uint32_t n = 0;
    int64_t deadline = 0;
    for (;;) {
        /* Acquire: pairs with the other side's release store of this index in ring_put() or
           ring_get(): the slots it covers are written (head) or read out (tail). */
        uint64_t v = atomic_load_explicit(idx, memory_order_acquire);
        if (v != have)
            return v;
        if ((++n & 0xfffff) == 0) {
            int64_t t = now_ns();
            if (deadline == 0) {
                deadline = t + WAIT_LIMIT_NS;
            } else if (t > deadline) {
                *timed_out = true;
                return have;
            }
        }
    }
}

static unsigned char *ring_slot(struct chan_run *c, uint64_t pos)
{
    struct st_run *r = st_of(c);
    return c->sh->ring + (pos & (r->slots - 1)) * r->stride;
}

/*
 * The raw ring's producer: wait for room, write the slot (a length, then the message at the
 * queue's 16-byte offset), publish the head every r->every messages.
 */
static int ring_put(struct chan_run *c, const unsigned char *msg, size_t len)
{
    struct st_run *r = st_of(c);
    uint64_t h = r->mine;
    while (h - r->cache >= r->slots) {
        bool late = false;
        r->cache = ring_wait(&c->sh->tail, r->cache, &late);
        if (late)
            return -ETIMEDOUT;
    }
    unsigned char *s = ring_slot(c, h);
    uint32_t l = (uint32_t)len;
    memcpy(s, &l, sizeof l);
    memcpy(s + SLOT_HDR, msg, len);
    r->mine = ++h;
    if (h % (uint64_t)r->every == 0)
        /* Release: pairs with the consumer's acquire load in ring_wait(): the slots before
           h are written before it sees h. */
        atomic_store_explicit(&c->sh->head, h, memory_order_release);
    return 0;
}

static int ring_get(struct chan_run *c, uint64_t n)
{
    struct st_run *r = st_of(c);
    uint64_t t = r->mine;
    while (t == r->cache) {
        bool late = false;
        r->cache = ring_wait(&c->sh->head, r->cache, &late);
        if (late)
            return -ETIMEDOUT;
    }
    const unsigned char *s = ring_slot(c, t);
    uint32_t l;
    memcpy(&l, s, sizeof l);
    if (l > c->size)
        return -EMSGSIZE;
    memcpy(c->buf, s + SLOT_HDR, l);
    r->mine = ++t;
    if (t % (uint64_t)r->every == 0)
        /* Release: pairs with the producer's acquire load in ring_wait(): our copy out of
           the slots before t is done before it may overwrite them. */
        atomic_store_explicit(&c->sh->tail, t, memory_order_release);
    return check_stamp(c->buf, l, c->size, n);
}

/* The queue's geometry for c->size at STREAM_CAPACITY (shmlink/channel.h), for the raw ring. */
static void ring_geometry(size_t size, uint64_t *slots, uint32_t *stride)
{
    *stride = (uint32_t)((SLOT_HDR + size + 63) / 64 * 64);
    *slots = 2;
    while (*slots * 2 * *stride <= STREAM_CAPACITY)
        *slots *= 2;
}

static int setup_ring(struct chan_run *c)
{
    struct st_run *r = st_of(c);
    ring_geometry(c->size, &r->slots, &r->stride);
    atomic_store_explicit(&c->sh->head, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh->tail, 0, memory_order_relaxed);
    return 0;
}

static void peer_ring(struct chan_run *c, int k)
{
    struct st_run *r = st_of(c);
    (void)k;
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        stamp(c->msg, (uint64_t)i);
        int rc = ring_put(c, c->msg, c->size);
        if (rc < 0)
            peer_fail(c, "raw ring put", rc);
    }
    /* Release: pairs with the consumer's acquire load in ring_wait(), as in ring_put(), for
       the messages after the last multiple of r->every. */
    atomic_store_explicit(&c->sh->head, r->mine, memory_order_release);
}

static long recv_ring(struct chan_run *c, uint64_t next, long want)
{
    (void)want;
    int rc = ring_get(c, next);
    return rc < 0 ? rc : 1;
}

static int setup_stream_queue(struct chan_run *c)
{
    return create_queue(c, 0, STREAM_CAPACITY);
}

/* Check that the queue has the raw ring's geometry, so that the two compare like with like. */
static int check_geometry(struct chan_run *c)
{
    struct shml_channel_stats st;
    int rc = shml_channel_get_stats(c->ch[0], &st);
    if (rc < 0)
        return rc;
    uint64_t slots;
    uint32_t stride;
    ring_geometry(c->size, &slots, &stride);
    if (st.slots != slots || st.slot_size != stride)
        fprintf(stderr,
                "bench_channel: %s: the queue has %u slots of %u bytes, the raw ring "
                "%" PRIu64 " of %u\n",
                c->bench, st.slots, st.slot_size, slots, stride);
    return 0;
}

static int setup_stream_queue_checked(struct chan_run *c)
{
    int rc = setup_stream_queue(c);
    return rc < 0 ? rc : check_geometry(c);
}

static void peer_send(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *out = peer_open(c, 0, SHML_PRODUCER);
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        stamp(c->msg, (uint64_t)i);
        ssize_t n = shml_send(out, c->msg, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send", n);
    }
    shml_channel_close(out);
}

static long recv_queue(struct chan_run *c, uint64_t next, long want)
{
    (void)want;
    ssize_t n = shml_recv(c->ch[0], c->buf, c->size, c->timeout);
    if (n < 0)
        return n;
    int rc = check_stamp(c->buf, (size_t)n, c->size, next);
    return rc < 0 ? rc : 1;
}

/*
 * The batch calls may be missing from this library (weak references) or answer -ENOTSUP:
 * try both on this process's endpoint, which has both roles, and leave the queue empty.
 */
static int setup_batch(struct chan_run *c)
{
    int rc = setup_stream_queue(c);
    if (rc < 0)
        return rc;
    if (!shml_send_batch || !shml_recv_batch)
        return -ENOSYS;
    struct shml_iov iov = {c->msg, c->size};
    ssize_t n = shml_send_batch(c->ch[0], &iov, 1, 0);
    if (n < 0)
        return (int)n;
    size_t len;
    n = shml_recv_batch(c->ch[0], c->buf, c->size, &len, 1, 0);
    if (n < 0) {
        shml_recv(c->ch[0], c->buf, c->size, 0); /* take the probe out */
        return (int)n;
    }
    return n == 1 && len == c->size ? 0 : -EPROTO;
}

static void peer_send_batch(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *out = peer_open(c, 0, SHML_PRODUCER);
    struct shml_iov iov[BATCH];
    peer_ready(c);
    for (long i = 0; i < c->count;) {
        long m = c->count - i < BATCH ? c->count - i : BATCH;
        for (long j = 0; j < m; j++) {
            stamp(c->msg + (size_t)j * c->size, (uint64_t)(i + j));
            iov[j] = (struct shml_iov){c->msg + (size_t)j * c->size, c->size};
        }
        ssize_t n = shml_send_batch(out, iov, (size_t)m, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send_batch", n);
        if (n == 0 || n > m)
            peer_fail(c, "shml_send_batch sent a wrong count", -EPROTO);
        i += n;
    }
    shml_channel_close(out);
}

static long recv_batch(struct chan_run *c, uint64_t next, long want)
{
    size_t lens[BATCH];
    size_t m = want < BATCH ? (size_t)want : BATCH;
    ssize_t n = shml_recv_batch(c->ch[0], c->buf, m * c->size, lens, m, c->timeout);
    if (n < 0)
        return n;
    if (n == 0 || (size_t)n > m)
        return -EPROTO;
    for (ssize_t j = 0; j < n; j++) {
        int rc = check_stamp(c->buf + j * c->size, lens[j], c->size, next + (uint64_t)j);
        if (rc < 0)
            return rc;
    }
    return n;
}

struct st_bench {
    const char *name;
    size_t size;
    setup_fn setup;
    peer_fn peer;
    recv_fn recv;  /* >= 1 messages, or -err */
    int every;     /* raw ring: publication interval */
    long div;      /* streams msgs * 64 / size / div messages */
    bool adaptive; /* the library's endpoints wait in SHML_WAIT_ADAPTIVE, not SHML_WAIT_SPIN */
};

/* The order matters: the report takes the ratios of ST_* entries (bench_channel.h). */
static const struct st_bench sts[] = {
    {"64 B raw ring (publish each)", SMALL, setup_ring, peer_ring, recv_ring, 1, 1, false},
    {"64 B shml_send/recv", SMALL, setup_stream_queue_checked, peer_send, recv_queue, 0, 1, false},
    {"64 B raw ring (publish per 16)", SMALL, setup_ring, peer_ring, recv_ring, BATCH, 1, false},
    {"64 B shml batch of 16", SMALL, setup_batch, peer_send_batch, recv_batch, 0, 1, false},
    {"64 B pipe", SMALL, setup_pipe1, peer_pipe_stream, recv_pipe, 0, 8, false},
    {"64 B unix socketpair", SMALL, setup_socketpair, peer_sock_stream, recv_sock, 0, 8, false},
    {"64 B POSIX mq", SMALL, setup_mq1, peer_mq_stream, recv_mq, 0, 8, false},
    {"4 KiB raw ring", 4096, setup_ring, peer_ring, recv_ring, 1, 1, false},
    {"4 KiB shml_send/recv", 4096, setup_stream_queue_checked, peer_send, recv_queue, 0, 1, false},
    {"4 KiB pipe", 4096, setup_pipe1, peer_pipe_stream, recv_pipe, 0, 2, false},
    {"4 KiB unix socketpair", 4096, setup_socketpair, peer_sock_stream, recv_sock, 0, 2, false},
    {"4 KiB POSIX mq", 4096, setup_mq1, peer_mq_stream, recv_mq, 0, 2, false},
    {"64 KiB raw ring", 65536, setup_ring, peer_ring, recv_ring, 1, 1, false},
    {"64 KiB shml_send/recv", 65536, setup_stream_queue_checked, peer_send, recv_queue, 0, 1,
     false},
    {"64 KiB pipe", 65536, setup_pipe1, peer_pipe_stream, recv_pipe, 0, 2, false},
    {"64 KiB unix socketpair", 65536, setup_socketpair, peer_sock_stream, recv_sock, 0, 2, false},
    {"  diag: 64 B shml_send/recv adaptive", SMALL, setup_stream_queue, peer_send, recv_queue, 0, 1,
     true},
};
_Static_assert(sizeof sts / sizeof sts[0] == N_ST, "N_ST counts the rows");

/* Messages per timed chunk: at least 16 and 256 KiB. */
long chunk_of(size_t size)
{
    long c = (long)(((size_t)256 << 10) / size);
    return c < 16 ? 16 : c;
}

/* Messages of one repetition: o->msgs of 64 bytes (25.6 MB by default), 16 times fewer of
   4 KiB and 256 times fewer of 64 KiB (100 MB each), divided by the row's divisor. */
long stream_count(const struct opts *o, size_t size, long div)
{
    long n = o->msgs / (size <= SMALL ? 1 : size <= 4096 ? 16 : 256) / div;
    long min = 5 * chunk_of(size);
    return n < min ? min : n;
}

/*
 * Time a run of messages: chunks of `chunk` messages, each a sample of ns per message, after
 * `warm` messages. recv() gives at least one message, at most `want`.
 */
int time_chunks(struct chan_run *c, long (*recv)(struct chan_run *, uint64_t, long), long count,
                long warm, long chunk, struct bench_series *s)
{
    long got = 0, mark = 0;
    int64_t t_mark = now_ns();
    while (got < count) {
        long want = count - got;
        long n = recv(c, (uint64_t)got, want);
        if (n < 0) {
            char what[64];
            snprintf(what, sizeof what, "message %ld", got);
            report(c->bench, what, n);
            return -1;
        }
        got += n;
        if (got - mark >= chunk || got == count) {
            int64_t t = now_ns();
            if (mark >= warm && got - mark >= chunk / 2)
                s->v[s->n++] = (double)(t - t_mark) / (double)(got - mark);
            mark = got;
            t_mark = t;
        }
    }
    return 0;
}

static int run_stream(struct st_run *r, const struct chan_env *e, const struct st_bench *b,
                      struct bench_series *s)
{
    struct chan_run *c = &r->c;
    chan_run_init(c, e, b->name, b->size, b->adaptive ? SHML_WAIT_ADAPTIVE : SHML_WAIT_SPIN,
                  SHML_SPSC, WAIT_LIMIT_NS);
    r->every = b->every;
    r->mine = r->cache = 0;
    long count = stream_count(c->o, b->size, b->div);
    long chunk = chunk_of(b->size);
    c->count = count;
    if (bench_series_reserve(s, (size_t)(count / (chunk / 2) + 2)) < 0)
        return -1;
    pid_t pid[1];
    int rc = begin_rep(c, b->name, b->setup, b->peer, 1, pid, s);
    if (rc <= 0)
        return rc;
    rc = time_chunks(c, b->recv, count, count / 10, chunk, s);
    return end_rep(c, pid, 1, rc, s, count);
}

const char *st_case_name(size_t i)
{
    return sts[i].name;
}

size_t st_case_size(size_t i)
{
    return sts[i].size;
}

int st_case_run(void *env, size_t i, struct bench_series *s)
{
    struct st_run r;
    return run_stream(&r, env, &sts[i], s);
}
