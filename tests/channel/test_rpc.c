/*
 * The request/reply channel's API (SHML_RPC): the protocol errors (-EPROTO, -EBUSY), each
 * reply to its own client, several clients and servers, -EMSGSIZE, timeouts, zero-copy
 * requests and replies, a killed client (its reply dropped and counted) and a killed server
 * (its client gets -ECONNRESET within a bound, not a hang).
 *
 * Readings of the header where it leaves room: the creating handle is client and server, so
 * it is closed or left idle (it takes no request unless it calls recv); a request seen with
 * shml_peek() and released counts as received, so the next send of that server is its reply.
 */
#include "chan_util.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define RPC_MAX 128u

static shml_channel *mk_rpc(const char **addr, bool keep_creator)
{
    shml_channel *ch = chan_make(addr, SHML_RPC, 0, 8 * 192, RPC_MAX, 0);
    if (!keep_creator) {
        shml_channel_close(ch);
        return NULL;
    }
    return ch;
}

/* The server's answer to request `req` of n bytes: "R:" then the request reversed. */
static size_t transform(const char *req, size_t n, char *out)
{
    out[0] = 'R';
    out[1] = ':';
    for (size_t i = 0; i < n; i++)
        out[2 + i] = req[n - 1 - i];
    return n + 2;
}

static void serve_one(shml_channel *srv)
{
    char req[RPC_MAX], rep[RPC_MAX + 2];
    ssize_t n = shml_recv(srv, req, sizeof req, WAIT_BOUND);
    ASSERT_OK(n);
    ASSERT_LE(n, RPC_MAX - 2);
    size_t m = transform(req, (size_t)n, rep);
    ASSERT_EQ(shml_send(srv, rep, m, WAIT_BOUND), (ssize_t)m);
}

static void expect_reply(shml_channel *cli, const char *req)
{
    char rep[RPC_MAX], want[RPC_MAX + 2];
    size_t m = transform(req, strlen(req), want);
    ssize_t n = shml_recv(cli, rep, sizeof rep, WAIT_BOUND);
    ASSERT_EQ(n, (ssize_t)m);
    ASSERT_MEM_EQ(rep, want, m);
}

TEST(rpc_protocol_errors_and_round_trip)
{
    const char *addr;
    shml_channel *ch = mk_rpc(&addr, true);
    ASSERT_EQ(chan_stats(ch).kind, SHML_RPC);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    char buf[RPC_MAX];
    /* Nothing asked, nothing taken. */
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 0), -EPROTO);
    ASSERT_ERR(shml_send(srv, "x", 1, 0), -EPROTO);
    ASSERT_ERR(shml_recv(srv, buf, sizeof buf, 0), -ETIMEDOUT);
    /* Roles. */
    void *w;
    const void *p;
    size_t len, lens[2];
    struct shml_iov iov = {"x", 1};
    ASSERT_ERR(shml_peek(cli, &p, &len, 0), -EPROTO);
    ASSERT_ERR(shml_send_batch(cli, &iov, 1, 0), -ENOTSUP);
    ASSERT_ERR(shml_recv_batch(srv, buf, sizeof buf, lens, 2, 0), -ENOTSUP);
    (void)w;

    ASSERT_EQ(shml_send(cli, "hello", 5, 0), 5);
    ASSERT_ERR(shml_send(cli, "again", 5, 0), -EBUSY); /* one request in flight */
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 0), -ETIMEDOUT);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    /* The server's buffer too small: -EMSGSIZE, the request stays. */
    ASSERT_ERR(shml_recv(srv, buf, 4, 0), -EMSGSIZE);
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    static char big[RPC_MAX + 1];
    ASSERT_ERR(shml_send(srv, big, RPC_MAX + 1, SHML_FOREVER), -EMSGSIZE);
    ASSERT_EQ(shml_send(srv, "R:olleh", 7, 0), 7);
    ASSERT_ERR(shml_send(srv, "twice", 5, 0), -EPROTO); /* replied already */
    /* The client's buffer too small: -EMSGSIZE, the reply stays. */
    ASSERT_ERR(shml_recv(cli, buf, 6, 0), -EMSGSIZE);
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, 0), 7);
    ASSERT_MEM_EQ(buf, "R:olleh", 7);
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 0), -EPROTO); /* no request outstanding */
    ASSERT_ERR(shml_send(cli, big, RPC_MAX + 1, SHML_FOREVER), -EMSGSIZE);
    /* Again, with the other's timeouts. */
    t0 = now_ns();
    ASSERT_ERR(shml_recv(srv, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 50 * MS);
    ASSERT_EQ(shml_send(cli, "abc", 3, 0), 3);
    serve_one(srv);
    expect_reply(cli, "abc");
    struct shml_channel_stats st = chan_stats(cli);
    ASSERT_EQ(st.sent, 4);     /* two requests, two replies */
    ASSERT_EQ(st.received, 4); /* two taken, two read */
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.queued, 0);
    shml_channel_close(srv);
    shml_channel_close(cli);
    shml_channel_close(ch);
}

/* A server that cannot answer refuses: its client's receive fails at once (-EHOSTUNREACH), the
   request counts as received and dropped, and both go on. */
TEST(rpc_refuse)
{
    const char *addr;
    shml_channel *ch = mk_rpc(&addr, true);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    char buf[RPC_MAX];
    ASSERT_ERR(shml_refuse(srv), -EPROTO); /* nothing received */
    ASSERT_ERR(shml_refuse(cli), -EPROTO); /* not a server */
    ASSERT_ERR(shml_refuse(NULL), -EINVAL);
    ASSERT_EQ(shml_send(cli, "q1", 2, 0), 2);
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), 2);
    ASSERT_OK(shml_refuse(srv));
    ASSERT_ERR(shml_refuse(srv), -EPROTO); /* once */
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 5000 * MS), -EHOSTUNREACH);
    ASSERT_LT(now_ns() - t0, 4000 * MS); /* told, not timed out */
    /* Refused after claiming the reply: the claim goes with it. */
    ASSERT_EQ(shml_send(cli, "q2", 2, 0), 2);
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), 2);
    void *w;
    ASSERT_OK(shml_claim(srv, 8, &w, 0));
    ASSERT_OK(shml_refuse(srv));
    ASSERT_ERR(shml_commit(srv, 1), -EINVAL);
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 5000 * MS), -EHOSTUNREACH);
    /* And a plain round trip after. */
    ASSERT_EQ(shml_send(cli, "abc", 3, 0), 3);
    serve_one(srv);
    expect_reply(cli, "abc");
    struct shml_channel_stats st = chan_stats(cli);
    ASSERT_EQ(st.sent, 4);     /* three requests, one reply */
    ASSERT_EQ(st.received, 4); /* three taken, one read */
    ASSERT_EQ(st.drops, 2);    /* the two refused */
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.queued, 0);
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 0, 64, 4);
    ASSERT_ERR(shml_refuse(q), -EINVAL);
    shml_channel_close(q);
    shml_channel_close(srv);
    shml_channel_close(cli);
    shml_channel_close(ch);
}

TEST(rpc_each_reply_to_its_client)
{
    const char *addr;
    shml_channel *ch = mk_rpc(&addr, true);
    shml_channel *cli[5], *srv[2];
    for (int i = 0; i < 5; i++)
        cli[i] = chan_open(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE);
    for (int i = 0; i < 2; i++)
        srv[i] = chan_open(addr, SHML_SERVER, SHML_WAIT_ADAPTIVE);
    char reqs[5][32];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 5; i++) {
            snprintf(reqs[i], sizeof reqs[i], "client %d round %d", i, round);
            ASSERT_EQ(shml_send(cli[i], reqs[i], strlen(reqs[i]), 0), (ssize_t)strlen(reqs[i]));
        }
        /* Two servers take them in turn, in any order. */
        for (int k = 0; k < 5; k++)
            serve_one(srv[(k + round) % 2]);
        char buf[RPC_MAX];
        ASSERT_ERR(shml_recv(srv[0], buf, sizeof buf, 0), -ETIMEDOUT);
        /* Answer the clients in reverse order of asking. */
        for (int i = 4; i >= 0; i--)
            expect_reply(cli[i], reqs[i]);
    }
    struct shml_channel_stats st = chan_stats(ch);
    ASSERT_EQ(st.sent, 500);
    ASSERT_EQ(st.received, 500);
    for (int i = 0; i < 5; i++)
        shml_channel_close(cli[i]);
    for (int i = 0; i < 2; i++)
        shml_channel_close(srv[i]);
    shml_channel_close(ch);
}

TEST(rpc_zero_copy)
{
    const char *addr;
    shml_channel *ch = mk_rpc(&addr, true);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    void *w;
    ASSERT_OK(shml_claim(cli, RPC_MAX, &w, 0));
    memcpy(w, "zero-copy", 9);
    ASSERT_OK(shml_commit(cli, 9));
    const void *p;
    size_t len;
    ASSERT_OK(shml_peek(srv, &p, &len, WAIT_BOUND));
    ASSERT_EQ(len, 9);
    ASSERT_MEM_EQ(p, "zero-copy", 9);
    ASSERT_OK(shml_release(srv));
    ASSERT_OK(shml_claim(srv, 20, &w, 0));
    memcpy(w, "ypoc-orez:R", 11);
    ASSERT_OK(shml_commit(srv, 11));
    ASSERT_OK(shml_peek(cli, &p, &len, WAIT_BOUND));
    ASSERT_EQ(len, 11);
    ASSERT_MEM_EQ(p, "ypoc-orez:R", 11);
    ASSERT_OK(shml_release(cli));
    char buf[RPC_MAX];
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 0), -EPROTO);
    shml_channel_close(srv);
    shml_channel_close(cli);
    shml_channel_close(ch);
}

/* ---- deaths ---- */

/* argv: channel, request. Send the request, say "asked", hang until killed. */
PEER(rpc_client_ask_hang)
{
    ASSERT_EQ(argc, 2);
    shml_channel *c = chan_open(argv[0], SHML_CLIENT, SHML_WAIT_BLOCK);
    ASSERT_EQ(shml_send(c, argv[1], strlen(argv[1]), WAIT_BOUND), (ssize_t)strlen(argv[1]));
    ASSERT_EQ(parent_send("asked"), 0);
    shmt_sleep_ms(120000);
    return 1;
}

/* argv: channel, mode ("take": take one request, then hang; "idle": hang). */
PEER(rpc_server_hang)
{
    ASSERT_EQ(argc, 2);
    shml_channel *s = chan_open(argv[0], SHML_SERVER, SHML_WAIT_BLOCK);
    ASSERT_EQ(parent_send("ready"), 0);
    if (strcmp(argv[1], "take") == 0) {
        char buf[RPC_MAX];
        ssize_t n = shml_recv(s, buf, sizeof buf, WAIT_BOUND);
        ASSERT_OK(n);
        ASSERT_EQ(parent_send(shmt_fmt("took %.*s", (int)n, buf)), 0);
    }
    shmt_sleep_ms(120000);
    return 1;
}

TEST_TIMEOUT(rpc_client_killed_reply_dropped, 60)
{
    const char *addr;
    mk_rpc(&addr, false); /* no idle server: the endpoint counters below are srv's */
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    pid_t c = spawn_peer("rpc_client_ask_hang", addr, "doomed");
    ASSERT_EQ(peer_expect(c, "asked", 30000), 0);
    char buf[RPC_MAX];
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, WAIT_BOUND), 6);
    ASSERT_MEM_EQ(buf, "doomed", 6);
    ASSERT_EQ(kill_peer(c, SIGKILL), 128 + SIGKILL);
    ASSERT_EQ(chan_stats(srv).lost, 0);
    /* The reply goes nowhere: dropped and counted (the server's drops; it was never sent, so
       not lost), and the server goes on. */
    ASSERT_EQ(shml_send(srv, "R:demood", 8, WAIT_BOUND), 8);
    ASSERT_EQ(chan_stats(srv).lost, 0);
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_SERVER).drops, 1);
    /* A client that dies with its request still queued: the reply to it is dropped too. */
    c = spawn_peer("rpc_client_ask_hang", addr, "queued");
    ASSERT_EQ(peer_expect(c, "asked", 30000), 0);
    ASSERT_EQ(kill_peer(c, SIGKILL), 128 + SIGKILL);
    ssize_t n = shml_recv(srv, buf, sizeof buf, 200 * MS);
    if (n >= 0) {
        ASSERT_EQ(n, 6);
        ASSERT_EQ(shml_send(srv, "R:deueuq", 8, WAIT_BOUND), 8);
    } else {
        ASSERT_ERR(n, -ETIMEDOUT); /* or the request was dropped with its client */
    }
    /* Either way one more drop: the reply, or the request (received, and dropped). */
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_SERVER).drops, 2);
    /* A repair finds nothing more to count, and the counters add up. */
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    struct shml_channel_stats st = chan_stats(srv);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.sent, st.received + st.lost + st.queued);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(shml_send(cli, "live", 4, WAIT_BOUND), 4);
        serve_one(srv);
        expect_reply(cli, "live");
    }
    ASSERT_EQ(chan_stats(srv).lost, 0);
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_SERVER).drops, 2);
    shml_channel_close(cli);
    shml_channel_close(srv);
}

TEST_TIMEOUT(rpc_server_killed_holding_request, 60)
{
    const char *addr;
    mk_rpc(&addr, false);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    pid_t s = spawn_peer("rpc_server_hang", addr, "take");
    ASSERT_EQ(peer_expect(s, "ready", 30000), 0);
    ASSERT_EQ(shml_send(cli, "help", 4, WAIT_BOUND), 4);
    ASSERT_EQ(peer_expect(s, "took help", 30000), 0);
    /* A second server, alive, does not make the lost request any less lost. */
    shml_channel *live = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    char buf[RPC_MAX];
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    ASSERT_EQ(kill_peer(s, SIGKILL), 128 + SIGKILL);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 3 * WAIT_BOUND), -ECONNRESET);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND); /* a bound, not a speed: not the 30 s timeout */
    shmt_log("-ECONNRESET %.1f ms after the kill", (double)(now_ns() - t0) / 1e6);
    /* The request was received (the server counted it before it hung): nothing is lost,
       and no reply was ever made. */
    ASSERT_EQ(chan_stats(cli).lost, 0);
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    struct shml_channel_stats st = chan_stats(cli);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.sent, st.received + st.lost + st.queued);
    /* The client asks again; the live server answers. */
    ASSERT_EQ(shml_send(cli, "again", 5, WAIT_BOUND), 5);
    serve_one(live);
    expect_reply(cli, "again");
    shml_channel_close(live);
    shml_channel_close(cli);
}

/* argv: channel. Peek at one request (zero-copy: the slot stays held), say so, hang. */
PEER(rpc_server_peek_hang)
{
    ASSERT_EQ(argc, 1);
    shml_channel *s = chan_open(argv[0], SHML_SERVER, SHML_WAIT_BLOCK);
    ASSERT_EQ(parent_send("ready"), 0);
    const void *p;
    size_t len;
    ASSERT_OK(shml_peek(s, &p, &len, WAIT_BOUND));
    ASSERT_EQ(parent_send(shmt_fmt("peeked %zu", len)), 0);
    shmt_sleep_ms(120000);
    return 1;
}

/* A server that dies inside a peek of a request: the request is lost once (counted once),
   its client gets -ECONNRESET, and the slot it held is freed for the ring's next lap. */
TEST_TIMEOUT(rpc_server_killed_inside_peek, 60)
{
    const char *addr;
    mk_rpc(&addr, false);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    pid_t s = spawn_peer("rpc_server_peek_hang", addr);
    ASSERT_EQ(peer_expect(s, "ready", 30000), 0);
    ASSERT_EQ(shml_send(cli, "peeked", 6, WAIT_BOUND), 6);
    ASSERT_EQ(peer_expect(s, "peeked 6", 30000), 0);
    ASSERT_EQ(kill_peer(s, SIGKILL), 128 + SIGKILL);
    char buf[RPC_MAX];
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 3 * WAIT_BOUND), -ECONNRESET);
    shml_channel *live = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    /* Three laps of the 8-slot ring reach the dead server's slot. */
    for (int i = 0; i < 24; i++) {
        ASSERT_EQ(shml_send(cli, "lap", 3, WAIT_BOUND), 3);
        serve_one(live);
        expect_reply(cli, "lap");
    }
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    ASSERT_EQ(chan_stats(cli).lost, 1);
    shml_channel_close(live);
    shml_channel_close(cli);
}

/*
 * A dead client's entry (and mailbox) taken over by a new client, with the dead client's
 * request still queued or taken: the new client gets its own replies only, never the old
 * request's, and no -ECONNRESET; the old request's reply is dropped and counted once.
 */
static void dead_client_entry_reused(bool taken_first)
{
    const char *addr;
    /* Two entries: the server's and one client's. */
    shml_channel *ch = chan_make(&addr, SHML_RPC, 0, 8 * 192, RPC_MAX, 2);
    shml_channel_close(ch);
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    char buf[RPC_MAX], rep[RPC_MAX + 2];
    for (int round = 0; round < 3; round++) {
        pid_t c = spawn_peer("rpc_client_ask_hang", addr, "old");
        ASSERT_EQ(peer_expect(c, "asked", 30000), 0);
        ssize_t n = 0;
        if (taken_first) {
            n = shml_recv(srv, buf, sizeof buf, WAIT_BOUND);
            ASSERT_EQ(n, 3);
        }
        ASSERT_EQ(kill_peer(c, SIGKILL), 128 + SIGKILL);
        /* The table is full of one live server and one dead client: the new one reclaims. */
        shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
        ASSERT_EQ(shml_send(cli, "new", 3, WAIT_BOUND), 3);
        if (taken_first) {
            size_t m = transform(buf, (size_t)n, rep);
            ASSERT_EQ(shml_send(srv, rep, m, WAIT_BOUND), (ssize_t)m); /* dropped */
        } else {
            /* The old request comes first: dropped by the server (its client is gone), or
               answered into nowhere; then the new one. */
            n = shml_recv(srv, buf, sizeof buf, WAIT_BOUND);
            ASSERT_OK(n);
            if (n == 3 && memcmp(buf, "old", 3) == 0) {
                size_t m = transform(buf, (size_t)n, rep);
                ASSERT_EQ(shml_send(srv, rep, m, WAIT_BOUND), (ssize_t)m);
                n = shml_recv(srv, buf, sizeof buf, WAIT_BOUND);
            }
            ASSERT_EQ(n, 3);
            ASSERT_MEM_EQ(buf, "new", 3);
            size_t m = transform(buf, (size_t)n, rep);
            ASSERT_EQ(shml_send(srv, rep, m, WAIT_BOUND), (ssize_t)m);
        }
        if (taken_first)
            serve_one(srv);
        expect_reply(cli, "new");
        /* The old request, or the reply to it, was dropped (the server's drops), not lost. */
        ASSERT_EQ(chan_stats(srv).lost, 0);
        ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_SERVER).drops, (uint64_t)round + 1);
        shml_channel_close(cli);
    }
    shml_channel_close(srv);
}

TEST_TIMEOUT(rpc_dead_client_entry_reused_request_taken, 60)
{
    dead_client_entry_reused(true);
}

TEST_TIMEOUT(rpc_dead_client_entry_reused_request_queued, 60)
{
    dead_client_entry_reused(false);
}

TEST_TIMEOUT(rpc_every_server_gone, 60)
{
    const char *addr;
    mk_rpc(&addr, false);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    pid_t s = spawn_peer("rpc_server_hang", addr, "idle");
    ASSERT_EQ(peer_expect(s, "ready", 30000), 0);
    ASSERT_EQ(shml_send(cli, "anyone", 6, WAIT_BOUND), 6);
    char buf[RPC_MAX];
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    ASSERT_EQ(kill_peer(s, SIGKILL), 128 + SIGKILL);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 3 * WAIT_BOUND), -ECONNRESET);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    shml_channel_close(cli);
}

/* A server that attaches after `argv[1]` ms, answers one request, and waits to be told. */
PEER(rpc_server_late)
{
    ASSERT_EQ(argc, 2);
    usleep((useconds_t)atoi(argv[1]) * 1000);
    shml_channel *srv = chan_open(argv[0], SHML_SERVER, SHML_WAIT_BLOCK);
    ASSERT_EQ(parent_send("ready"), 0);
    serve_one(srv);
    ASSERT_EQ(parent_expect("bye", 30000), 0);
    shml_channel_close(srv);
    return 0;
}

/*
 * No server attached: a request fails at once with -ENOTCONN (whatever its timeout), and a
 * client opened SHML_WAIT waits for a server instead, within the call's timeout.
 */
TEST_TIMEOUT(rpc_no_server, 60)
{
    const char *addr;
    mk_rpc(&addr, false);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_send(cli, "hello", 5, SHML_FOREVER), -ENOTCONN);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    void *buf;
    ASSERT_ERR(shml_claim(cli, 5, &buf, WAIT_BOUND), -ENOTCONN);
    shml_channel_close(cli);

    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.wait = SHML_WAIT_BLOCK;
    o.flags = SHML_WAIT;
    ASSERT_OK(shml_channel_open(addr, SHML_CLIENT, &o, &cli));
    ASSERT_ERR(shml_send(cli, "hello", 5, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_send(cli, "hello", 5, 100 * MS), -ETIMEDOUT);
    pid_t s = spawn_peer("rpc_server_late", addr, "200");
    ASSERT_EQ(shml_send(cli, "hello", 5, WAIT_BOUND), 5);
    expect_reply(cli, "hello");
    ASSERT_EQ(peer_send(s, "bye"), 0);
    ASSERT_EQ(wait_peer(s, 20000), 0);
    /* Gone again: a client opened SHML_WAIT waits, a plain one fails at once. */
    ASSERT_ERR(shml_send(cli, "again", 5, 50 * MS), -ETIMEDOUT);
    shml_channel_close(cli);
    cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    ASSERT_ERR(shml_send(cli, "again", 5, WAIT_BOUND), -ENOTCONN);
    shml_channel_close(cli);
}

/*
 * The only server closes while a request waits in the ring: the client learns it (-ENOTCONN),
 * and a server that comes later drops the request unanswered instead of serving nobody.
 */
TEST_TIMEOUT(rpc_request_given_up_not_served_later, 60)
{
    const char *addr;
    shml_channel *srv = mk_rpc(&addr, true);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    ASSERT_EQ(shml_send(cli, "stale", 5, WAIT_BOUND), 5);
    ASSERT_OK(shml_channel_close(srv));
    char buf[RPC_MAX];
    int64_t t0 = now_ns();
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, 3 * WAIT_BOUND), -ENOTCONN);
    ASSERT_LT(now_ns() - t0, WAIT_BOUND);
    srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    ASSERT_ERR(shml_recv(srv, buf, sizeof buf, 100 * MS), -ETIMEDOUT);
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(srv, &st));
    ASSERT_EQ(st.queued, 0u);
    /* The client goes on with a new request, answered. */
    ASSERT_EQ(shml_send(cli, "fresh", 5, WAIT_BOUND), 5);
    serve_one(srv);
    expect_reply(cli, "fresh");
    shml_channel_close(cli);
    shml_channel_close(srv);
}
