/*
 * bench_channel_bus.c - bench_channel's bus rows (bench_channel.h): this process publishes
 * 64-byte messages on a SHML_BUS, 1 or 4 peers subscribe (with shml_recv, shml_recv_batch, or
 * lapped on a SHML_OVERWRITE bus); the publisher's chunks are timed as the streams' are.
 */
#include "bench_channel.h"

#include <errno.h>
#include <stdio.h>

/* ---- the bus: this process publishes, the peers subscribe ---- */

static int setup_bus(struct chan_run *c)
{
    struct shml_channel_opts co = SHML_CHANNEL_OPTS_INIT;
    co.kind = SHML_BUS;
    co.capacity = STREAM_CAPACITY;
    co.max_msg = c->size;
    co.policy = c->flags; /* run_bus() puts the policy here */
    co.wait = c->wait;
    co.role = SHML_PRODUCER; /* the default for a bus; said, because a subscriber that never
                                reads would hold a SHML_BLOCK publisher back */
    return create_channel(c, 0, &co);
}

static void peer_subscribe(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER);
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        ssize_t n = shml_recv(in, c->buf, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv", n);
        int rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "a published message", rc);
    }
    shml_channel_close(in);
}

/*
 * A subscriber of a SHML_OVERWRITE bus: it may be lapped, so it checks that each message is
 * the one after the last plus the gap the library reports, and stops at the last message
 * (which no publisher overwrites).
 */
static void peer_subscribe_lapped(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER);
    peer_ready(c);
    uint64_t want = 0;
    while (want < (uint64_t)c->count) {
        ssize_t n = shml_recv(in, c->buf, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv", n);
        want += shml_recv_gap(in);
        int rc = check_stamp(c->buf, (size_t)n, c->size, want);
        if (rc < 0)
            peer_fail(c, "a published message (after the gap)", rc);
        want++;
    }
    shml_channel_close(in);
}

/* A subscriber that takes up to BATCH messages per call (shml_recv_batch). */
static void peer_subscribe_batch(struct chan_run *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER);
    peer_ready(c);
    for (long i = 0; i < c->count;) {
        size_t lens[BATCH];
        size_t m = c->count - i < BATCH ? (size_t)(c->count - i) : BATCH;
        ssize_t n = shml_recv_batch(in, c->buf, m * c->size, lens, m, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv_batch", n);
        if (n == 0 || (size_t)n > m)
            peer_fail(c, "shml_recv_batch received a wrong count", -EPROTO);
        for (ssize_t j = 0; j < n; j++) {
            int rc = check_stamp(c->buf + (size_t)j * c->size, lens[j], c->size, (uint64_t)(i + j));
            if (rc < 0)
                peer_fail(c, "a published message", rc);
        }
        i += n;
    }
    shml_channel_close(in);
}

/* The publisher's "receive": send one message (the chunks time the publisher). */
static long publish_one(struct chan_run *c, uint64_t next, long want)
{
    (void)want;
    stamp(c->msg, next);
    ssize_t n = shml_send(c->ch[0], c->msg, c->size, c->timeout);
    return n < 0 ? n : 1;
}

struct bus_case {
    const char *name;
    int subs; /* subscribers, each a peer */
    peer_fn peer;
    uint32_t policy;
};

static const struct bus_case buses[] = {
    {"bus (1 subscriber)", 1, peer_subscribe, SHML_BLOCK},
    {"bus (4 subscribers)", 4, peer_subscribe, SHML_BLOCK},
    {"  diag: bus (1 sub) recv_batch", 1, peer_subscribe_batch, SHML_BLOCK},
    {"  diag: bus (4 subs) recv_batch", 4, peer_subscribe_batch, SHML_BLOCK},
    {"  diag: bus (1 sub) OVERWRITE", 1, peer_subscribe_lapped, SHML_OVERWRITE},
    {"  diag: bus (4 subs) OVERWRITE", 4, peer_subscribe_lapped, SHML_OVERWRITE},
};
_Static_assert(sizeof buses / sizeof buses[0] == N_BUS, "N_BUS counts the rows");

static int run_bus(const struct chan_env *e, const struct bus_case *b, struct bench_series *s)
{
    if (b->peer == peer_subscribe_batch && !shml_recv_batch) {
        snprintf(s->na, sizeof s->na, "shml_recv_batch is not in the library");
        return 0;
    }
    struct chan_run run, *c = &run;
    chan_run_init(c, e, b->name, SMALL, SHML_WAIT_ADAPTIVE, b->policy, WAIT_LIMIT_NS);
    long count = stream_count(c->o, SMALL, 2);
    long chunk = chunk_of(SMALL);
    c->count = count;
    if (bench_series_reserve(s, (size_t)(count / (chunk / 2) + 2)) < 0)
        return -1;
    pid_t pid[MAX_PEERS];
    int rc = begin_rep(c, b->name, setup_bus, b->peer, b->subs, pid, s);
    if (rc <= 0)
        return rc;
    rc = time_chunks(c, publish_one, count, count / 10, chunk, s);
    return end_rep(c, pid, b->subs, rc, s, count);
}

const char *bus_case_name(size_t i)
{
    return buses[i].name;
}

int bus_case_run(void *env, size_t i, struct bench_series *s)
{
    return run_bus(env, &buses[i], s);
}
