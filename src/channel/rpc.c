/*
 * rpc.c - request/reply: requests go through the queue's ring, replies into mailboxes.
 *
 * A client (SHML_CLIENT) has a mailbox, the one of its endpoint table entry (layout.h has the
 * states). To make request `t`, it stores "waiting for t" in its mailbox, then sends through
 * the queue ring a message tagged with its entry index and t. A server (SHML_SERVER) receives
 * it like a queue consumer, and takes the request by CAS of the mailbox from "waiting for t" to
 * "taken by me"; the CAS fails if the client has gone (its entry was freed, which makes the
 * mailbox idle), and the request is dropped and counted. The server's next send is the reply:
 * CAS "taken" to "writing", write it into the mailbox, CAS "writing" to "replied" (release),
 * wake the client. The client reads the reply in place and stores "idle".
 *
 * No server. A request needs a server to answer it: with none attached (hdr.servers == 0) a
 * client's request fails at once with -ENOTCONN, and a client waiting for a reply when the last
 * server closes gets -ENOTCONN too, unless the client was opened SHML_WAIT: then its request
 * waits for a server to attach, within the call's timeout. Either way a request given up (its
 * mailbox made idle) is never taken by a server that comes later: the server's CAS of the
 * mailbox fails and it drops the request unanswered, so no command runs for nobody.
 *
 * Death. A client that waits for a reply looks now and then (after each sleep, at most every
 * 50 ms) at the server that took its request, and at whether any server is left; if the server
 * died, or every server did (servers that closed do not count), it gets -ECONNRESET rather
 * than a hang, and its mailbox is made idle so that a late reply is dropped. A server that
 * closes with a request unanswered publishes a reply of length SHML_RPC_GONE, which the client
 * reads as -ECONNRESET.
 *
 * Counting: sent = received + lost + queued holds exactly, whatever a kill interrupts. A
 * request is counted by its slot as a queue message (queue.c, Counting: the client's
 * send_rec, the server's recv_rec). A reply: the server records it (send_rec names the
 * client's entry), counts it sent, delivers it by CAS of writing to replied, clears the
 * record; the client records it (recv_rec names the ticket), counts it received, makes the
 * mailbox idle, clears the record. Whoever makes idle a mailbox a dead server was writing
 * counts the reply lost if that server's record says it was counted (box_reset);
 * whoever frees a client's entry counts a delivered reply lost unless the client's record
 * says it was counted (settle_mailbox). A request dropped because its client had gone is
 * received and dropped; a reply to a gone client is not sent, and dropped.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "sync/futex.h"

#include <stdlib.h>
#include <string.h>


static inline void *box_payload(struct shml_rpc_box *b)
{
    return (char *)b + SHML_BOX_HDR;
}

/* Open: a server is counted among the servers; a client's ticket goes on from its mailbox. */
static int rpc_attach(shml_channel *ch)
{
    shml__chan_set_role(ch);
    if (ch->role & SHML_SERVER)
        atomic_fetch_add_explicit(&ch->hdr->servers, 1, memory_order_relaxed); /* a fact */
    /* Relaxed: the entry is ours, and its mailbox idle (made so when the entry was freed). */
    uint64_t st = atomic_load_explicit(&shml__chan_box(&ch->geo, ch->ep_index)->state,
                                       memory_order_relaxed);
    ch->ticket = shml_box_ticket(st);
    return 0;
}

/* Free of a server's entry: one server fewer (live or dead) for the clients to count on. */
static void rpc_entry_freed(const struct shml__chan_geo *g, uint32_t role)
{
    if (role & SHML_SERVER)
        atomic_fetch_sub_explicit(&g->hdr->servers, 1, memory_order_relaxed); /* a fact */
}

/*
 * Request `ticket` of the client at entry `client` will never be answered (the server reading
 * it died): make its mailbox idle and wake the client. True if this call did it, false if the
 * mailbox no longer waited for that request. Counts nothing (the request's slot is what is
 * counted).
 */
static bool drop_request(const struct shml__chan_geo *g, uint32_t client, uint32_t ticket)
{
    /* The client index comes from a request's tag, a shared word: bounded here. */
    if (client >= g->nendpoints)
        return true;
    struct shml_rpc_box *b = shml__chan_box(g, client);
    uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
    /* Waiting for that request, or taken (by the server that died): nothing replied yet. */
    if (shml_box_ticket(st) != ticket || shml_box_writing(st) || shml_box_replied(st))
        return false;
    /* Relaxed: as in client_reset(); the client, waking, finds it idle: dropped. */
    if (!atomic_compare_exchange_strong_explicit(&b->state, &st,
                                                 shml_box_state(ticket, 0, false, true),
                                                 memory_order_relaxed, memory_order_relaxed))
        return false;
    shml__chan_wake_all(g, NULL, &b->ready);
    return true;
}

/*
 * Make mailbox i, seen in state st, idle (its ticket kept), so that no server delivers to it,
 * and wake its client. A reply being written by a server that died (`writer_dead`) is counted
 * lost if that server counted it sent (its record). Returns 1 if it did and counted a lost
 * reply, 0 if it did, -1 if the state changed meanwhile (or the dead server's entry is being
 * freed, whose freer settles the mailbox): look again.
 */
static int box_reset(const struct shml__chan_geo *g, uint32_t i, uint64_t st, bool writer_dead)
{
    struct shml_rpc_box *b = shml__chan_box(g, i);
    /* A live writer's reply is not ours to count: its delivery fails, and it takes its
       count back (server_commit). A dead one's counts as its record says. */
    int counted = 0;
    if (shml_box_writing(st) && writer_dead &&
        (counted = shml__chan_holder_counted(g, shml_box_server(st), true, i)) < 0)
        return -1;
    /* Relaxed: nothing is handed over; a server's CAS on the old state then fails. */
    if (!atomic_compare_exchange_strong_explicit(
            &b->state, &st, shml_box_state(shml_box_ticket(st), 0, false, true),
            memory_order_relaxed, memory_order_relaxed))
        return -1;
    if (counted)
        atomic_fetch_add_explicit(&g->hdr->lost, 1, memory_order_relaxed); /* a statistic */
    shml__chan_wake_all(g, NULL, &b->ready);
    return counted;
}

/* How long a freer waits for a live server to finish a reply into the mailbox it frees. */
#define WRITER_PATIENCE 100000

/* A client's mailbox, as its entry is freed: nothing more may be delivered to it. */
static void settle_mailbox(const struct shml__chan_geo *g, uint32_t i)
{
    struct shml_rpc_box *b = shml__chan_box(g, i);
    struct shml_chan_ep *e = shml__chan_ep(g, i);
    /* Bounded: a state that keeps changing under us is a hostile peer's; the mailbox is
       then left as it is. */
    for (int tries = 0; tries < 2 * WRITER_PATIENCE; tries++) {
        /* Acquire pairs with the server's release of "replied": len is its own. */
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        uint32_t server = shml_box_server(st);
        if (server == 0 && shml_box_replied(st))
            return; /* idle */
        if (shml_box_writing(st)) {
            /* Let a live server finish, within bounds: then its delivery fails instead. */
            bool dead = shml__chan_holder_dead(g, server);
            if (!dead && tries < WRITER_PATIENCE) {
                shml__os_cpu_relax();
                continue;
            }
            if (box_reset(g, i, st, dead) >= 0)
                return;
            continue;
        }
        /* A reply delivered and not read is lost, unless the client counted it received
           (its record names the ticket: client_release). Waiting or taken: the request is
           counted by its slot. Relaxed: the owner is dead or is us. */
        bool lost = false;
        if (shml_box_replied(st) && !shml_rpc_no_reply(shml__len_once(&b->len))) {
            uint64_t rec = atomic_load_explicit(&e->recv_rec, memory_order_relaxed);
            uint64_t n = atomic_load_explicit(&e->received, memory_order_relaxed);
            lost = !(shml_ep_rec_names(rec, shml_box_ticket(st)) && shml_ep_rec_counted(rec, n));
        }
        if (box_reset(g, i, st, false) < 0)
            continue;
        if (lost)
            atomic_fetch_add_explicit(&g->hdr->lost, 1, memory_order_relaxed); /* a statistic */
        return;
    }
}

/* Free of an entry: what a client or a server held (channel.h, shml__kind.settle). */
static void rpc_settle(const struct shml__chan_geo *g, uint32_t i, uint32_t role)
{
    if (role & SHML_CLIENT) {
        shml__queue_settle(g, i, true, false); /* a request claimed, not yet sent */
        settle_mailbox(g, i);
        return;
    }
    if (!(role & SHML_SERVER))
        return;
    shml__queue_settle(g, i, false, true); /* a request being read */
    /* The reply being delivered, if the mailbox its record names is still being written by
       this entry: counted lost if the record says it was counted sent. Relaxed: the owner is
       dead or is us, and the record's client index is a shared word, bounded here. */
    struct shml_chan_ep *e = shml__chan_ep(g, i);
    uint64_t rec = atomic_load_explicit(&e->send_rec, memory_order_relaxed);
    uint32_t client = shml_ep_rec_pos(rec);
    if (!(rec & SHML_EP_REC_SET) || client >= g->nendpoints)
        return;
    uint32_t me =
        shml_holder(i, shml_ep_gen(atomic_load_explicit(&e->state, memory_order_relaxed)));
    uint64_t st = atomic_load_explicit(&shml__chan_box(g, client)->state, memory_order_relaxed);
    if (shml_box_writing(st) && shml_box_server_is(st, me))
        box_reset(g, client, st, true);
}

/* Replies delivered to mailboxes and not yet read (a snapshot, for stats). */
static uint64_t replies_waiting(const struct shml__chan_geo *g)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_rpc_box *b = shml__chan_box(g, i);
        /* Acquire pairs with the server's release of "replied": len is that reply's. */
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        if (shml_box_replied(st) && shml_box_server(st) != 0 &&
            !shml_rpc_no_reply(shml__len_once(&b->len)))
            n++;
    }
    return n;
}

/* Is any server alive? */
static bool server_alive(shml_channel *ch)
{
    for (uint32_t i = 0; i < ch->geo.nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(&ch->geo, i);
        /* seq_cst: as the role loads of min_cursor() in bus.c. */
        if ((atomic_load_explicit(&e->role, memory_order_seq_cst) & SHML_SERVER) &&
            shml__chan_ep_alive(e) != 0)
            return true;
    }
    return false;
}

/* ---- client: the request (claim, commit) and the reply (peek, release) ---- */

/* Servers attached, live or dead (those that closed are not counted). */
static uint64_t servers(const shml_channel *ch)
{
    /* Relaxed: a fact about the endpoint table, checked again by whoever acts on it. */
    return atomic_load_explicit(&ch->hdr->servers, memory_order_relaxed);
}

/* How often a client opened SHML_WAIT looks for a server to come. */
#define SERVER_POLL_NS ((int64_t)10 * 1000000)

/* Wait, within the call's deadline, for a server to attach (a client opened SHML_WAIT). */
static int await_server(shml_channel *ch, int64_t timeout_ns)
{
    if (timeout_ns == 0) {
        /* A server's attach signals nobody: a descriptor waiting for room looks again after
           the retry time (shml_channel_fd_timeout()). */
        if (ch->has_note)
            shml__chan_arm(ch, &ch->hdr->not_full, true);
        return shml__fail(ETIMEDOUT, "no server is attached to the channel");
    }
    if (!ch->has_deadline) {
        ch->deadline = shml__deadline(timeout_ns);
        ch->has_deadline = true;
    }
    while (servers(ch) == 0) {
        /* Relaxed: the interrupt flag is a request, re-read at every look. */
        if (atomic_exchange_explicit(&ch->intr, 0, memory_order_relaxed))
            return -EINTR;
        int64_t now = shml__os_mono_ns(), nap = SERVER_POLL_NS;
        if (ch->deadline >= 0 && now >= ch->deadline)
            return shml__fail(ETIMEDOUT, "no server attached to the channel in time");
        if (ch->deadline >= 0 && ch->deadline - now < nap)
            nap = ch->deadline - now;
        if (shml__nap(nap) == -ECANCELED && servers(ch) == 0)
            return shml__fail(ECANCELED, "cancelled while waiting for a server to attach");
    }
    return 0;
}

static int client_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    if (ch->awaiting)
        return shml__fail(EBUSY, "the reply to the last request has not been received");
    if (servers(ch) == 0) {
        if (!ch->wait_server)
            return shml__fail(ENOTCONN, "no server is attached to the channel (a client "
                                        "opened with SHML_WAIT waits for one)");
        int r = await_server(ch, timeout_ns);
        if (r < 0)
            return r;
    }
    return shml__chan_claim(ch, shml__queue_try_send, len, SHML_SLOT_HDR + SHML_RPC_TAG, buf,
                            timeout_ns);
}

static int client_commit(shml_channel *ch, size_t len)
{
    struct shml_chan_slot *s = ch->claimed;
    uint32_t t = ch->ticket + 1;
    uint32_t tag[2] = {ch->ep_index, t};
    memcpy((char *)s + SHML_SLOT_HDR, tag, sizeof(tag));
    /* Release pairs with the server's acquire CAS that takes the request. */
    atomic_store_explicit(&shml__chan_box(&ch->geo, ch->ep_index)->state,
                          shml_box_state(t, 0, false, false), memory_order_release);
    /* Counted as a queue producer counts (queue.c): the request without its tag. */
    shml__queue_produce(ch, s, ch->claimed_pos, len + SHML_RPC_TAG, len);
    ch->claimed = NULL;
    ch->ticket = t;
    ch->awaiting = true;
    return 0;
}

/*
 * The request is lost: make the mailbox idle (so that no server delivers), report it. Returns
 * -err, or 1 if the mailbox changed meanwhile (a reply may have landed: look again).
 */
static int client_reset(shml_channel *ch, uint64_t st, bool writer_dead, int err, const char *why)
{
    /* The request itself is counted by its slot (received, or lost with a server that died
       reading it); a reply a dead server counted sent is counted lost here. */
    if (st != shml_box_state(ch->ticket, 0, false, true) &&
        box_reset(&ch->geo, ch->ep_index, st, writer_dead) < 0)
        return 1;
    ch->awaiting = false;
    return shml__fail(err, "%s", why);
}

static int try_reply_once(shml_channel *ch, size_t cap, void **slot, uint64_t *pos,
                          bool *behind)
{
    struct shml_rpc_box *b = shml__chan_box(&ch->geo, ch->ep_index);
    /* Acquire pairs with the server's release CAS to "replied" (deliver()): the reply is
       there. */
    uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
    if (shml_box_ticket(st) != ch->ticket)
        return client_reset(ch, st, false, ECONNRESET,
                            "the mailbox was reset (by a repair?)");
    if (shml_box_replied(st) && shml_box_server(st) != 0) {
        /* Read once, checked, and only this copy used (ch->peeked_len). */
        uint32_t len = shml__len_once(&b->len);
        if (len == SHML_RPC_GONE)
            return client_reset(ch, st, false, ECONNRESET,
                                "the server closed without replying");
        if (len == SHML_RPC_REFUSED)
            return client_reset(ch, st, false, EHOSTUNREACH,
                                "the server could not answer the request");
        if (len > ch->max_msg)
            return shml__fail(SHML_ECORRUPT, "reply of %u bytes in a channel of %llu", len,
                              (unsigned long long)ch->max_msg);
        if (len > cap)
            return -EMSGSIZE;
        ch->peeked_len = len;
        *slot = b;
        *pos = st;
        return 0;
    }
    if (shml_box_replied(st))
        return client_reset(ch, st, false, ECONNRESET, "the request was dropped");
    *behind = true; /* keep looking at the servers now and then */
    if (shml__chan_probe(ch)) {
        uint32_t server = shml_box_server(st);
        if (server != 0 && shml__chan_holder_dead(&ch->geo, server))
            return client_reset(ch, st, true, ECONNRESET,
                                "the server that took the request died");
        if (server == 0 && servers(ch) != 0 && !server_alive(ch))
            return client_reset(ch, st, false, ECONNRESET, "every server of the channel died");
        if (server == 0 && servers(ch) == 0 && !ch->wait_server)
            return client_reset(ch, st, false, ENOTCONN,
                                "every server closed before taking the request");
    }
    return -EAGAIN;
}

static int try_reply(shml_channel *ch, size_t cap, void **slot, uint64_t *pos, bool *behind)
{
    int r;
    while ((r = try_reply_once(ch, cap, slot, pos, behind)) == 1)
        ;
    return r;
}

static int client_peek(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                       int64_t timeout_ns)
{
    if (!ch->awaiting)
        return shml__fail(EPROTO, "no request is waiting for a reply: send one first");
    struct shml_rpc_box *b = shml__chan_box(&ch->geo, ch->ep_index);
    void *slot;
    uint64_t st;
    ch->probe = true;
    int r = shml__chan_wait(ch, try_reply, cap, &b->ready, timeout_ns, &slot, &st);
    if (r < 0)
        return r;
    ch->peeked = b;
    ch->peeked_pos = st;
    *buf = box_payload(b);
    *len = ch->peeked_len; /* checked by try_reply_once */
    return 0;
}

static int client_release(shml_channel *ch)
{
    struct shml_rpc_box *b = ch->peeked;
    /* Counted before the mailbox goes idle, with a record naming the ticket (layout.h): a
       client killed in between leaves a reply its freer knows was received. */
    shml__chan_count_recv_at(ch, ch->ticket, ch->peeked_len);
    /* Release: our reads of the reply are done before a server may write the next one. */
    atomic_store_explicit(&b->state, shml_box_state(ch->ticket, 0, false, true),
                          memory_order_release);
    shml__chan_clear_rec(&ch->ep->recv_rec);
    ch->peeked = NULL;
    ch->awaiting = false;
    return 0;
}

/* ---- server: the request (peek, release) and the reply (claim, commit) ---- */

static int server_peek(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                       int64_t timeout_ns)
{
    if (ch->has_request)
        return shml__fail(EBUSY, "reply to the request received first");
    struct shml_chan_hdr *h = ch->hdr;
    size_t room = cap > SIZE_MAX - SHML_RPC_TAG ? SIZE_MAX : cap + SHML_RPC_TAG;
    for (;;) {
        void *sv;
        uint64_t pos;
        int r = shml__chan_wait(ch, shml__queue_try_recv, room, &h->not_empty, timeout_ns, &sv,
                                &pos);
        if (r < 0)
            return r;
        struct shml_chan_slot *s = sv;
        /* The length try_recv read once and checked against max_msg + the tag and room: the
           slot's own may have changed since. */
        size_t whole = ch->peeked_len;
        uint32_t tag[2];
        memcpy(tag, (char *)s + SHML_SLOT_HDR, sizeof(tag));
        bool ok = whole >= SHML_RPC_TAG && tag[0] < ch->geo.nendpoints;
        if (ok) {
            struct shml_rpc_box *b = shml__chan_box(&ch->geo, tag[0]);
            uint64_t want = shml_box_state(tag[1], 0, false, false);
            /* Acquire pairs with the client's release store of "waiting". */
            ok = atomic_compare_exchange_strong_explicit(
                &b->state, &want, shml_box_state(tag[1], ch->me, false, false),
                memory_order_acquire, memory_order_relaxed);
        }
        if (ok) {
            ch->peeked = s;
            ch->peeked_pos = pos;
            ch->has_request = true;
            ch->req_client = tag[0];
            ch->req_ticket = tag[1];
            ch->peeked_len = whole - SHML_RPC_TAG; /* the request, for release */
            *buf = (char *)s + SHML_SLOT_HDR + SHML_RPC_TAG;
            *len = ch->peeked_len;
            return 0;
        }
        /* Its client has gone or gave up on it, or the tag is bad: received, and dropped
           (counted in drops); wait for the next, within the same deadline. */
        shml__queue_consume(ch, s, pos, whole >= SHML_RPC_TAG ? whole - SHML_RPC_TAG : 0);
        shml__chan_count_drops(ch, 1);
    }
}

static int server_release(shml_channel *ch)
{
    /* Counted as a queue consumer counts (queue.c): the request without its tag. */
    shml__queue_consume(ch, ch->peeked, ch->peeked_pos, ch->peeked_len);
    ch->peeked = NULL;
    return 0;
}

static int server_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    (void)timeout_ns;
    if (!ch->has_request)
        return shml__fail(EPROTO, "no request to reply to: receive one first");
    struct shml_rpc_box *b = shml__chan_box(&ch->geo, ch->req_client);
    /* A client that died: free its entry (which makes its mailbox idle), so that the CAS
       below fails and the reply is dropped and counted now, not when the entry is reused. */
    struct shml_chan_ep *e = shml__chan_ep(&ch->geo, ch->req_client);
    uint64_t est = atomic_load_explicit(&e->state, memory_order_relaxed);
    if (shml_ep_used(est) && shml__chan_ep_alive(e) == 0)
        shml__chan_ep_reclaim(&ch->geo, ch->req_client, est);
    uint64_t want = shml_box_state(ch->req_ticket, ch->me, false, false);
    /* Acquire pairs with the client's release of "idle" after reading an earlier reply. */
    if (atomic_compare_exchange_strong_explicit(&b->state, &want,
                                                shml_box_state(ch->req_ticket, ch->me, true, false),
                                                memory_order_acquire, memory_order_relaxed)) {
        *buf = box_payload(b);
        ch->claimed = b;
    } else {
        /* The client has gone: the reply goes nowhere. */
        if (!ch->scratch && !(ch->scratch = malloc(ch->max_msg ? ch->max_msg : 1)))
            return -ENOMEM;
        *buf = ch->scratch;
        ch->claimed = ch->scratch;
    }
    ch->claimed_len = len;
    return 0;
}

/*
 * Is the mailbox we claimed for the reply still ours (writing, by us)? It is not once its
 * client's entry was freed while we wrote and the freer stopped waiting for us (settle_mailbox
 * resets it). Relaxed: a look before we count and write; deliver()'s CAS decides.
 */
static bool box_still_ours(const shml_channel *ch, struct shml_rpc_box *b)
{
    return atomic_load_explicit(&b->state, memory_order_relaxed) ==
           shml_box_state(ch->req_ticket, ch->me, true, false);
}

/*
 * Publish a reply of `len` bytes (or SHML_RPC_GONE) into the claimed mailbox. False if it is
 * no longer ours (box_still_ours()): nothing is delivered, and len is not written once that
 * is seen. (Bytes a server writes into its claim after its mailbox was reset, or between the
 * look and the CAS, can still land in a mailbox that another client's request has taken
 * since: docs/FORMAT.md, Rpc mailboxes.)
 */
static bool deliver(shml_channel *ch, struct shml_rpc_box *b, uint32_t len)
{
    if (!box_still_ours(ch, b))
        return false;
    b->len = len;
    uint64_t writing = shml_box_state(ch->req_ticket, ch->me, true, false);
    /* Release pairs with the client's acquire load of the state: it sees len and the reply. */
    if (!atomic_compare_exchange_strong_explicit(
            &b->state, &writing, shml_box_state(ch->req_ticket, ch->me, false, true),
            memory_order_release, memory_order_relaxed))
        return false;
    shml__chan_wake(&ch->geo, ch, &b->ready);
    return true;
}

static int server_commit(shml_channel *ch, size_t len)
{
    if (ch->claimed == ch->scratch || !box_still_ours(ch, ch->claimed)) {
        /* The client had gone: not sent, dropped. */
        shml__chan_count_drops(ch, 1);
    } else {
        /* Counted before it is delivered, with a record naming the mailbox (layout.h): a
           server killed in between leaves a reply whoever resets the mailbox counts lost.
           Reset between the look above and the delivery, it is taken back. */
        shml__chan_count_sent_at(ch, ch->req_client, len);
        if (!deliver(ch, ch->claimed, (uint32_t)len)) {
            shml__chan_uncount_sent(ch, len);
            shml__chan_count_drops(ch, 1);
        }
        shml__chan_clear_rec(&ch->ep->send_rec);
    }
    ch->claimed = NULL;
    ch->has_request = false;
    return 0;
}

static void answer_without_reply(shml_channel *ch, uint32_t len);

static void server_abandon(shml_channel *ch)
{
    if (ch->peeked)
        server_release(ch);
    if (!ch->has_request)
        return;
    answer_without_reply(ch, SHML_RPC_GONE);
}

/* Deliver the marker `len` (SHML_RPC_GONE, SHML_RPC_REFUSED) instead of the reply to the
   request this server holds: its client's receive fails instead of waiting. */
static void answer_without_reply(shml_channel *ch, uint32_t len)
{
    struct shml_rpc_box *b = shml__chan_box(&ch->geo, ch->req_client);
    if (ch->claimed == b) {
        (void)deliver(ch, b, len); /* false: reset, its client told already */
    } else if (!ch->claimed) {
        uint64_t want = shml_box_state(ch->req_ticket, ch->me, false, false);
        /* Acquire: as in server_claim(). */
        if (atomic_compare_exchange_strong_explicit(
                &b->state, &want, shml_box_state(ch->req_ticket, ch->me, true, false),
                memory_order_acquire, memory_order_relaxed))
            (void)deliver(ch, b, len); /* as above */
    }
    ch->claimed = NULL;
    ch->has_request = false;
}

int shml__rpc_refuse(shml_channel *ch)
{
    if (!(ch->role & SHML_SERVER) || !ch->has_request)
        return shml__fail(EPROTO, "no request to refuse: receive one first");
    if (ch->peeked)
        server_release(ch);
    answer_without_reply(ch, SHML_RPC_REFUSED);
    shml__chan_count_drops(ch, 1);
    return 0;
}

/*
 * Withdraw the reply's claim: the mailbox goes back to "request taken" (unless its client has
 * gone meanwhile), and the request still awaits its reply.
 */
static void server_discard(shml_channel *ch)
{
    struct shml_rpc_box *b = shml__chan_box(&ch->geo, ch->req_client);
    if (ch->claimed == b) {
        uint64_t writing = shml_box_state(ch->req_ticket, ch->me, true, false);
        /* Relaxed: nothing was delivered for the client to see, and server_claim() takes
           the mailbox again with its own acquire CAS. A failure means the client's entry
           was reclaimed (it died): nothing is owed any more. */
        atomic_compare_exchange_strong_explicit(
            &b->state, &writing, shml_box_state(ch->req_ticket, ch->me, false, false),
            memory_order_relaxed, memory_order_relaxed);
    }
    ch->claimed = NULL;
}

/* ---- dispatch on the role ---- */

static int r_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    return ch->role == SHML_SERVER ? server_claim(ch, len, buf, timeout_ns)
                                   : client_claim(ch, len, buf, timeout_ns);
}

static int r_commit(shml_channel *ch, size_t len)
{
    return ch->role == SHML_SERVER ? server_commit(ch, len) : client_commit(ch, len);
}

static int r_peek(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                  int64_t timeout_ns)
{
    return ch->role == SHML_SERVER ? server_peek(ch, cap, buf, len, timeout_ns)
                                   : client_peek(ch, cap, buf, len, timeout_ns);
}

static int r_release(shml_channel *ch)
{
    return ch->role == SHML_SERVER ? server_release(ch) : client_release(ch);
}

static void r_discard(shml_channel *ch)
{
    if (ch->role == SHML_SERVER)
        server_discard(ch);
    else
        shml__queue_abandon_claim(ch, false);
}

static void r_abandon(shml_channel *ch)
{
    if (ch->role == SHML_SERVER) {
        server_abandon(ch);
    } else {
        shml__queue_abandon_claim(ch, true);
        if (ch->peeked)
            client_release(ch);
    }
    free(ch->scratch);
    ch->scratch = NULL;
}

static const struct shml__chan_ops rpc_ops = {
    .claim = r_claim,
    .commit = r_commit,
    .peek = r_peek,
    .release = r_release,
    .abandon = r_abandon,
    .discard = r_discard,
};

/* ---- check and repair ---- */

/* rpc: requests taken by servers that died: the clients would learn it only by probing. */
static void check_mailboxes(struct shml__checker *c, const struct shml__chan_geo *g)
{
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_rpc_box *b = shml__chan_box(g, i);
        uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        uint32_t server = shml_box_server(st);
        if (shml_box_replied(st) || server == 0 || !shml__chan_holder_dead(g, server))
            continue;
        char who[64];
        shml__check_holder_text(g, server, who, sizeof(who));
        int reset = shml__check_repairing(c) ? box_reset(g, i, st, true) : -1;
        shml__check_finding(c, true, reset >= 0, "mailbox %u: request %u taken by %s, which died%s",
                            i, shml_box_ticket(st), who,
                            reset > 0    ? ": client told, 1 reply lost"
                            : reset == 0 ? ": client told"
                                         : "");
    }
}

/* Requests in the ring, and replies not yet read. */
static uint64_t rpc_queued(const struct shml__chan_geo *g, uint64_t enq, uint64_t deq,
                           uint64_t slowest)
{
    return shml__queue_queued(g, enq, deq, slowest) + replies_waiting(g);
}

/* The request ring as a queue's, then the mailboxes. */
static void rpc_check(struct shml__checker *c, const struct shml__chan_geo *g)
{
    shml__queue_check(c, g);
    check_mailboxes(c, g);
}

/* ---- the kind ---- */

/* Create: every mailbox idle (ticket 0), and the request ring as a queue's. */
static void rpc_init(struct shml_chan_hdr *h, const struct shml_chan_hdr *g)
{
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_rpc_box *b =
            (struct shml_rpc_box *)((char *)h + g->box_off + (uint64_t)i * g->box_stride);
        shml_event_init((shml_event *)&b->ready);
        /* Relaxed: published with the segment. */
        atomic_store_explicit(&b->state, shml_box_state(0, 0, false, true), memory_order_relaxed);
    }
    shml__queue_init(h, g);
}

/* A request being read by a server that died: the tag names whom to tell. */
static uint64_t rpc_read_tag(const struct shml__chan_geo *g, const struct shml_chan_slot *s)
{
    (void)g;
    uint32_t tag[2];
    memcpy(tag, (const char *)s + SHML_SLOT_HDR, sizeof(tag));
    return (uint64_t)tag[0] << 32 | tag[1];
}

static void rpc_request_lost(const struct shml__chan_geo *g, uint64_t tag)
{
    drop_request(g, (uint32_t)(tag >> 32), (uint32_t)tag);
}

const struct shml__kind shml__rpc_kind = {
    .kind = SHML_RPC,
    .slot_hdr = SHML_SLOT_HDR,
    .msg_extra = SHML_RPC_TAG,
    .min_slots = 2,
    .mailboxes = true,
    .two_way = true,
    .default_role = SHML_SERVER,
    .ops = &rpc_ops,
    .init = rpc_init,
    .attach = rpc_attach,
    .settle = rpc_settle,
    .entry_freed = rpc_entry_freed,
    .read_tag = rpc_read_tag,
    .request_lost = rpc_request_lost,
    .queued = rpc_queued,
    .check = rpc_check,
};
