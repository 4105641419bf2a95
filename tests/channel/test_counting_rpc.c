/*
 * Counting under kill -9, step by step, for rpc: a client or a server dies at each step of
 * counting a request or a reply (record, count, hand-over: layout.h, shml_ep_rec()), and
 * whoever settles what it held (a repair, or the client that finds its server dead) counts it
 * so that sent == received + lost + queued holds exactly. A request is counted by its slot
 * (lost if nobody counted it received), a reply by its mailbox (lost if counted sent and never
 * counted received). The steps a kill would interrupt are made by writing the dead child's
 * record and counter by hand, as a foreign program would.
 */
#include "chan_util.h"
#include "counting_steps.h"

#include <sys/wait.h>
#include <unistd.h>

static char *data_of(shml_channel *ch)
{
    return shml_segment_data(shml_channel_segment(ch));
}

static struct shml_chan_hdr *hdr_of(shml_channel *ch)
{
    return (struct shml_chan_hdr *)data_of(ch);
}

/* The entry of the endpoint of process `pid`. */
static struct shml_chan_ep *entry_of(shml_channel *ch, pid_t pid, uint32_t *index)
{
    struct shml_chan_hdr *h = hdr_of(ch);
    for (uint32_t i = 0; i < h->nendpoints; i++) {
        struct shml_chan_ep *e = (void *)(data_of(ch) + h->ep_off + (uint64_t)i * SHML_EP_SIZE);
        uint64_t st = atomic_load(&e->state);
        if (shml_ep_used(st) && shml_ep_pid(st) == (uint32_t)pid) {
            *index = i;
            return e;
        }
    }
    shmt_fail(__FILE__, __LINE__, "no entry of pid %d", (int)pid);
    return NULL;
}

static struct shml_rpc_box *box_of(shml_channel *ch, uint32_t i)
{
    struct shml_chan_hdr *h = hdr_of(ch);
    return (void *)(data_of(ch) + h->box_off + (uint64_t)i * h->box_stride);
}

/* The one busy slot of the request ring. */
static struct shml_chan_slot *held_slot(shml_channel *ch)
{
    struct shml_chan_hdr *h = hdr_of(ch);
    struct shml_chan_slot *found = NULL;
    for (uint32_t i = 0; i < h->nslots; i++) {
        struct shml_chan_slot *s = (void *)(data_of(ch) + h->slots_off + (uint64_t)i * h->stride);
        if (shml_slot_busy(atomic_load(&s->state))) {
            ASSERT_TRUE(found == NULL);
            found = s;
        }
    }
    ASSERT_TRUE(found != NULL);
    return found;
}

/* What a child does before it dies without closing. */
enum act {
    CLIENT_CLAIMS,   /* a client claims a request and dies */
    SERVER_PEEKS,    /* a server takes a request (peek) and dies */
    SERVER_REPLIES,  /* a server receives a request, claims the reply and dies */
    CLIENT_PEEKS,    /* a client sends, peeks at the reply and dies */
};

static pid_t child(const char *addr, enum act act)
{
    pid_t c = fork();
    ASSERT_GE(c, 0);
    if (c != 0)
        return c;
    bool server = act == SERVER_PEEKS || act == SERVER_REPLIES;
    shml_channel *own = NULL;
    if (shml_channel_open(addr, server ? SHML_SERVER : SHML_CLIENT, NULL, &own) != 0)
        _exit(1);
    void *w;
    const void *m;
    size_t len;
    char buf[8];
    switch (act) {
    case CLIENT_CLAIMS:
        if (shml_claim(own, 1, &w, 0) != 0)
            _exit(2);
        *(char *)w = 'Q';
        break;
    case SERVER_PEEKS:
        if (shml_peek(own, &m, &len, WAIT_BOUND) != 0)
            _exit(3);
        break;
    case SERVER_REPLIES:
        if (shml_recv(own, buf, sizeof buf, WAIT_BOUND) != 1 || shml_claim(own, 1, &w, 0) != 0)
            _exit(4);
        *(char *)w = 'R';
        break;
    case CLIENT_PEEKS:
        if (shml_send(own, "Q", 1, 0) != 1 || shml_peek(own, &m, &len, WAIT_BOUND) != 0)
            _exit(5);
        break;
    }
    _exit(0); /* no close: what it holds stays held by a dead endpoint */
}

static void reap(pid_t c)
{
    int status = 0;
    ASSERT_EQ(waitpid(c, &status, 0), c);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

static void assert_identity(const char *addr, uint64_t want_lost)
{
    struct shml_channel_stats st = chan_inspect(addr);
    shmt_log("sent %ju, received %ju, lost %ju, queued %ju", (uintmax_t)st.sent,
             (uintmax_t)st.received, (uintmax_t)st.lost, (uintmax_t)st.queued);
    ASSERT_EQ(st.lost, want_lost);
    ASSERT_EQ(st.sent, st.received + st.lost + st.queued);
}

static const char *mk(void)
{
    const char *addr;
    shml_channel *ch = chan_make(&addr, SHML_RPC, 0, 4 * 128, 100, 0);
    shml_channel_close(ch);
    return addr;
}

/* A client dies with its request claimed at `step`: the request is lost (and counted sent
   on its behalf if it had not counted it). */
static void client_dies_claiming(enum step step)
{
    const char *addr = mk();
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    pid_t c = child(addr, CLIENT_CLAIMS);
    reap(c);
    uint32_t i;
    struct shml_chan_ep *e = entry_of(srv, c, &i);
    struct shml_chan_slot *s = held_slot(srv);
    if (step != HELD) {
        /* As client_commit(): "waiting" for the next ticket before the record. */
        struct shml_rpc_box *b = box_of(srv, i);
        atomic_store(&b->state, shml_box_state(shml_box_ticket(atomic_load(&b->state)) + 1, 0,
                                               false, false));
    }
    fake_step(e, true, shml_slot_seq(atomic_load(&s->state)), step);
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    char buf[8];
    ASSERT_ERR(shml_recv(srv, buf, sizeof buf, 0), -ETIMEDOUT); /* skipped */
    assert_identity(addr, 1);
    shml_channel_close(srv);
}

/*
 * A server dies at `step` (act SERVER_PEEKS: reading a request, lost unless it counted it
 * received; SERVER_REPLIES: delivering a reply, lost if it counted it sent). The client is
 * told either way (-ECONNRESET), by itself or by a repair.
 */
static void server_dies(enum act act, enum step step, bool repair_first)
{
    const char *addr = mk();
    shml_channel *cli = chan_open_flags(addr, SHML_CLIENT, SHML_WAIT_BLOCK, SHML_WAIT);
    pid_t c = child(addr, act);
    ASSERT_EQ(shml_send(cli, "Q", 1, WAIT_BOUND), 1);
    reap(c);
    uint32_t server_index, client_index;
    struct shml_chan_ep *e = entry_of(cli, c, &server_index);
    bool replying = act == SERVER_REPLIES;
    if (replying) {
        entry_of(cli, getpid(), &client_index);
        ASSERT_TRUE(shml_box_writing(atomic_load(&box_of(cli, client_index)->state)));
        fake_step(e, true, client_index, step);
    } else {
        fake_step(e, false, shml_slot_seq(atomic_load(&held_slot(cli)->state)) - 1, step);
    }
    if (repair_first)
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    char buf[8];
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, WAIT_BOUND), -ECONNRESET);
    if (!repair_first)
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    assert_identity(addr, (step == COUNTED) == replying ? 1 : 0);
    shml_channel_close(cli);
}

/* A client dies with its reply delivered, at `step` of reading it: lost unless it counted it
   received. */
static void client_dies_reading_reply(enum step step)
{
    const char *addr = mk();
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    pid_t c = child(addr, CLIENT_PEEKS);
    char buf[8];
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, WAIT_BOUND), 1);
    ASSERT_EQ(shml_send(srv, "R", 1, WAIT_BOUND), 1);
    reap(c);
    uint32_t i;
    struct shml_chan_ep *e = entry_of(srv, c, &i);
    uint64_t st = atomic_load(&box_of(srv, i)->state);
    ASSERT_TRUE(shml_box_replied(st) && shml_box_server(st) != 0);
    fake_step(e, false, shml_box_ticket(st), step);
    ASSERT_EQ(chan_inspect(addr).queued, 1); /* the reply waits in the mailbox */
    ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    assert_identity(addr, step == COUNTED ? 0 : 1);
    shml_channel_close(srv);
}

TEST(count_rpc_client_killed_after_claim)
{
    client_dies_claiming(HELD);
}
TEST(count_rpc_client_killed_after_record)
{
    client_dies_claiming(RECORDED);
}
TEST(count_rpc_client_killed_after_count)
{
    client_dies_claiming(COUNTED);
}
TEST_TIMEOUT(count_rpc_server_killed_reading, 60)
{
    for (int repair_first = 0; repair_first < 2; repair_first++) {
        server_dies(SERVER_PEEKS, HELD, repair_first);
        server_dies(SERVER_PEEKS, RECORDED, repair_first);
        server_dies(SERVER_PEEKS, COUNTED, repair_first);
    }
}
TEST_TIMEOUT(count_rpc_server_killed_replying, 60)
{
    for (int repair_first = 0; repair_first < 2; repair_first++) {
        server_dies(SERVER_REPLIES, HELD, repair_first);
        server_dies(SERVER_REPLIES, RECORDED, repair_first);
        server_dies(SERVER_REPLIES, COUNTED, repair_first);
    }
}
TEST(count_rpc_client_killed_reading_reply)
{
    client_dies_reading_reply(HELD);
    client_dies_reading_reply(RECORDED);
    client_dies_reading_reply(COUNTED);
}

/* The entry of role `role` (one of a kind in the table). */
static uint32_t index_of_role(shml_channel *ch, uint32_t role)
{
    struct shml_chan_hdr *h = hdr_of(ch);
    for (uint32_t i = 0; i < h->nendpoints; i++) {
        struct shml_chan_ep *e = (void *)(data_of(ch) + h->ep_off + (uint64_t)i * SHML_EP_SIZE);
        if (shml_ep_used(atomic_load(&e->state)) && atomic_load(&e->role) == role)
            return i;
    }
    shmt_fail(__FILE__, __LINE__, "no entry of role %u", role);
    return 0;
}

/* The mailbox a live server writes its reply into is reset under it, as the freer of its
   client's entry does once it stops waiting for the server: the reply is neither delivered
   nor counted sent, but dropped, and the client is told. */
TEST(count_rpc_reply_into_reset_mailbox)
{
    const char *addr = mk();
    shml_channel *srv = chan_open(addr, SHML_SERVER, SHML_WAIT_BLOCK);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_BLOCK);
    ASSERT_EQ(shml_send(cli, "Q", 1, 0), 1);
    char buf[8];
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, WAIT_BOUND), 1);
    void *w;
    ASSERT_OK(shml_claim(srv, 1, &w, 0));
    *(char *)w = 'R';
    struct shml_rpc_box *b = box_of(srv, index_of_role(srv, SHML_CLIENT));
    uint64_t st = atomic_load(&b->state);
    ASSERT_TRUE(shml_box_writing(st));
    atomic_store(&b->state, shml_box_state(shml_box_ticket(st), 0, false, true));
    ASSERT_OK(shml_commit(srv, 1));
    ASSERT_EQ(chan_endpoint(addr, getpid(), SHML_SERVER).drops, 1);
    ASSERT_ERR(shml_recv(cli, buf, sizeof buf, WAIT_BOUND), -ECONNRESET);
    assert_identity(addr, 0);
    ASSERT_EQ(chan_inspect(addr).sent, 1); /* the request only */
    shml_channel_close(cli);
    shml_channel_close(srv);
}
