/*
 * bus.c - publish/subscribe: every subscriber reads every message, from its own cursor.
 *
 * Algorithm: a ring of nslots slots written by publishers in position order, read by any
 * number of subscribers, each with a cursor (the next position it reads) in its endpoint
 * table entry. Slot states are in layout.h. A publisher claims the slot of position p = enq by
 * CAS of its state from "holds p - nslots" to "being written by me", then advances enq past p
 * (anyone may help), writes, and publishes "holds p" with a release store. A subscriber at
 * cursor c reads the slot while it says "holds c", then stores cursor c + 1 (release).
 *
 * Policies. SHML_BLOCK: a publisher claims position p only while p - nslots is below every
 * live subscriber's cursor (it keeps a lower bound of the cursors, and recomputes it from the
 * table when the bound says full), so no subscriber is ever lapped; a full bus makes the
 * publisher wait on not_full, which subscribers wake. SHML_OVERWRITE: publishers ignore the
 * cursors; a subscriber reads with a check before and after (the state must be the same, or
 * the copy may be torn), and one that finds its slot rewritten jumps to half a ring behind the
 * newest position and adds the distance to its gap and its drops.
 *
 * Joining: a subscriber stores a provisional cursor, publishes its role (seq_cst), reads enq
 * again and starts there. A publisher whose bound was computed before the role became visible
 * computed it no higher than enq was then, which is no higher than the cursor the subscriber
 * starts at: the bound never lets it lap a subscriber that was joining.
 *
 * Death. A publisher that dies between claim and publish leaves "being written by P"; the
 * subscriber (or publisher, a lap later) that needs the slot finds P dead and turns it into a
 * hole, which subscribers skip; the message is counted lost once, by whoever made the hole. A
 * subscriber that dies stops advancing its cursor; a blocked publisher looks at the owners of
 * the slowest cursors and detaches the dead (frees their entries).
 *
 * A stuck publisher (SHML_OVERWRITE). A live publisher P that holds its claim of position p
 * while the bus goes a whole ring past it (a claim never committed, a debugger, SIGSTOP) is
 * "left behind": the publisher of p + nslots, which needs the slot, does not wait for it. It
 * turns "being written for p by P" into "left behind by P at p + nslots" (seq p + nslots + 1,
 * holder P, not busy), counts message p lost, and moves enq past p + nslots: there is no message
 * p + nslots, and subscribers skip that position as they skip a hole. The slot stays P's
 * (nobody else writes it, so whatever P still writes into its claim corrupts nothing): each
 * lap, the publisher that reaches it moves it on the same way (no loss: no message was
 * there). P's commit (or discard, or close) finds its claim gone, turns the slot into a hole
 * (its holder gone, so that the next lap claims it as usual) and reports -ESTALE; a P that died
 * instead is found dead by the publisher that reaches its slot, which takes it back. "Too
 * long" is thus counted in messages, not time: nslots - 1 later claims, the point where the
 * next publisher must either wait or pass. A SHML_BLOCK bus never passes a claim: like a
 * queue, it waits for a live holder (head of line), as shmlink/channel.h says.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "sync/futex.h"

#include <string.h>

/*
 * Turn the slot of position p, claimed by a publisher (state st) that died or gave up the
 * message, into a hole; `lost` counts it (a death, a close) or not (shml_discard()). False if
 * the state was no longer st (someone else made the hole, or passed the claim).
 */
static bool make_hole(const struct shml__chan_geo *g, struct shml_chan_slot *s, uint64_t st,
                      uint64_t p, bool lost)
{
    /* Release: a subscriber that sees the hole sees nothing else of the slot; the pairing is
       with its acquire load of the state. */
    if (atomic_compare_exchange_strong_explicit(&s->state, &st,
                                                shml_slot_state(p + 1, SHML_SLOT_HOLE, false),
                                                memory_order_release, memory_order_relaxed)) {
        if (lost)
            atomic_fetch_add_explicit(&g->hdr->lost, 1, memory_order_relaxed); /* a statistic */
        shml__chan_wake_all(g, NULL, &g->hdr->not_empty);
        return true;
    }
    return false;
}

/*
 * The lowest cursor of the live subscribers, or p if there is none. With `probe`, subscribers
 * whose process died are detached on the way (their cursors no longer count).
 */
static uint64_t min_cursor(shml_channel *ch, uint64_t p, bool probe)
{
    uint64_t low = p;
    for (uint32_t i = 0; i < ch->geo.nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(&ch->geo, i);
        /* seq_cst: pairs with the subscriber's store of its role when joining (bus.c head). */
        if (!(atomic_load_explicit(&e->role, memory_order_seq_cst) & SHML_CONSUMER))
            continue;
        /* Acquire pairs with the subscriber's release store of its cursor: its reads of the
           slots below the cursor are done before we reuse them. */
        uint64_t c = atomic_load_explicit(&e->cursor, memory_order_acquire);
        if ((int64_t)(p - c) <= (int64_t)(p - low))
            continue;
        if (probe && (int64_t)(p - c) > (int64_t)ch->mask && e != ch->ep) {
            uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
            if (shml__chan_ep_alive(e) == 0 && shml__chan_ep_reclaim(&ch->geo, i, st))
                continue;
        }
        low = c;
    }
    return low;
}

/*
 * Turn a slot left behind (state *st) into a hole at the same seq, so that the next lap
 * claims it as usual: by its stuck publisher giving it back, or by whoever found that
 * publisher dead. False (with *st the state now) if the state was no longer *st.
 */
static bool hole_left_behind(struct shml_chan_slot *s, uint64_t *st)
{
    /* Release: the stuck publisher's writes into its claim are done before the slot is
       reused; pairs with the publishers' acquire load and CAS of the state. */
    return atomic_compare_exchange_strong_explicit(
        &s->state, st, shml_slot_state(shml_slot_seq(*st), SHML_SLOT_HOLE, false),
        memory_order_release, memory_order_relaxed);
}

/* Is state st of a slot "left behind" by a stuck publisher (the header comment)? */
static bool left_behind(uint64_t st)
{
    return !shml_slot_busy(st) && shml_slot_holder(st) != 0 && shml_slot_holder(st) != SHML_SLOT_HOLE;
}

/*
 * Overwrite: pass the slot of position p, which holds either the claim of p - nslots by a live
 * publisher (state st, busy) or a slot left behind (st): it becomes "left behind at p" and enq
 * moves past p. False if the state changed meanwhile (look again).
 */
static bool pass_slot(shml_channel *ch, struct shml_chan_slot *s, uint64_t st, uint64_t p)
{
    struct shml_chan_hdr *h = ch->hdr;
    /* Relaxed: the slot stays the stuck publisher's, whose bytes nobody reads; subscribers
       learn only that there is no message p (the acquire of their load of the state is
       enough, as nothing else of the slot is published with it). */
    if (!atomic_compare_exchange_strong_explicit(&s->state, &st,
                                                 shml_slot_state(p + 1, shml_slot_holder(st), false),
                                                 memory_order_relaxed, memory_order_relaxed))
        return false;
    if (shml_slot_busy(st))
        atomic_fetch_add_explicit(&h->lost, 1, memory_order_relaxed); /* a statistic */
    uint64_t q = p;
    /* Release: pairs with the acquire loads of enq. */
    atomic_compare_exchange_strong_explicit(&h->enq, &q, p + 1, memory_order_release,
                                            memory_order_relaxed);
    shml__chan_wake_all(&ch->geo, ch, &h->not_empty); /* subscribers waiting on message p - nslots */
    return true;
}

static int bus_try_send(shml_channel *ch, size_t arg, void **slot, uint64_t *pos, bool *behind)
{
    (void)arg;
    struct shml_chan_hdr *h = ch->hdr;
    uint64_t n = ch->mask + 1;
    /* Acquire pairs with the release in the CAS that advanced enq. */
    uint64_t p = atomic_load_explicit(&h->enq, memory_order_acquire);
    for (unsigned rounds = 0;; rounds++) {
        if (rounds > 1024u + 4u * (unsigned)n)
            return shml__fail(SHML_ECORRUPT, "bus slots disagree with enq %llu",
                              (unsigned long long)p);
        if (ch->policy == SHML_BLOCK && p - ch->min_cache >= n) {
            bool probe = shml__chan_probe(ch);
            ch->min_cache = min_cursor(ch, p, probe);
            if (p - ch->min_cache >= n) {
                *behind = true; /* look for dead subscribers now and then */
                return -EAGAIN;
            }
        }
        struct shml_chan_slot *s = shml__chan_slot(ch, p);
        /* Acquire pairs with the release store that published the previous lap's message. */
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        int32_t d = (int32_t)(shml_slot_seq(st) - (uint32_t)(p + 1 - n));
        if (d == 0 && left_behind(st) &&
            !(shml__chan_probe(ch) && shml__chan_holder_dead(&ch->geo, shml_slot_holder(st)))) {
            /* Left behind by a publisher still alive: skip position p (no message). */
            pass_slot(ch, s, st, p);
            p = atomic_load_explicit(&h->enq, memory_order_acquire); /* as above */
            continue;
        }
        if (d == 0 && !shml_slot_busy(st)) {
            uint64_t mine = shml_slot_state(p, ch->me, true);
            /* Acquire on success: as the load above. */
            if (!atomic_compare_exchange_weak_explicit(&s->state, &st, mine,
                                                       memory_order_acquire,
                                                       memory_order_relaxed))
                continue;
            uint64_t q = p;
            /* Release: pairs with the acquire loads of enq. */
            atomic_compare_exchange_strong_explicit(&h->enq, &q, p + 1, memory_order_release,
                                                    memory_order_relaxed);
            *slot = s;
            *pos = p;
            return 0;
        }
        if (d == -1 && shml_slot_busy(st)) {
            /* A publisher of the previous lap is still writing this slot. */
            if (shml__chan_probe(ch) && shml__chan_holder_dead(&ch->geo, shml_slot_holder(st))) {
                make_hole(&ch->geo, s, st, p - n, true);
                continue;
            }
            if (ch->policy == SHML_OVERWRITE) {
                /* Alive but a whole ring behind: publishers never wait (header comment). */
                pass_slot(ch, s, st, p);
                p = atomic_load_explicit(&h->enq, memory_order_acquire); /* as above */
                continue;
            }
            *behind = true;
            return -EAGAIN;
        }
        if ((d == (int32_t)n - 1 && shml_slot_busy(st)) || d == (int32_t)n) {
            /* Claimed or published for p: enq lags; help it on. */
            uint64_t q = p;
            atomic_compare_exchange_strong_explicit(&h->enq, &q, p + 1, memory_order_release,
                                                    memory_order_relaxed); /* as above */
        }
        p = atomic_load_explicit(&h->enq, memory_order_acquire); /* as above */
    }
}

static int bus_try_recv(shml_channel *ch, size_t cap, void **slot, uint64_t *pos, bool *behind)
{
    struct shml_chan_hdr *h = ch->hdr;
    uint64_t n = ch->mask + 1;
    for (unsigned rounds = 0;; rounds++) {
        if (rounds > 1024u + 4u * (unsigned)n)
            return shml__fail(SHML_ECORRUPT, "bus slots disagree with the cursor %llu",
                              (unsigned long long)ch->cursor);
        uint64_t c = ch->cursor;
        struct shml_chan_slot *s = shml__chan_slot(ch, c);
        /* Acquire pairs with the publisher's release store of "holds c". */
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        int32_t d = (int32_t)(shml_slot_seq(st) - (uint32_t)(c + 1));
        if (d == 0 && !shml_slot_busy(st)) {
            if (shml_slot_holder(st) != 0) {
                /* No message c: a hole, or a slot left behind by a stuck publisher. */
                ch->cursor = c + 1;
                /* Release: as in release() (a publisher may reuse the slot). */
                atomic_store_explicit(&ch->ep->cursor, c + 1, memory_order_release);
                continue;
            }
            /* Read once, checked, and only this copy used (ch->peeked_len). */
            uint32_t len = shml__len_once(&s->len);
            if (ch->policy == SHML_OVERWRITE) {
                /* Acquire fence: the len read above is done before the state is read again;
                   pairs with the publisher's acquire CAS of the state before it writes. */
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&s->state, memory_order_relaxed) != st)
                    continue; /* rewritten meanwhile: look again (lapped) */
            }
            /* Publishers write at most max_msg (and overwrite: the state checked above is
               the one that published this len), so a longer one is no publisher's. */
            if (len > ch->max_msg)
                return shml__fail(SHML_ECORRUPT, "message of %u bytes in slots for %llu", len,
                                  (unsigned long long)ch->max_msg);
            if (len > cap)
                return -EMSGSIZE;
            ch->peeked_len = len;
            ch->peeked_state = st;
            *slot = s;
            *pos = c;
            return 0;
        }
        if (d < 0) {
            /* Not yet: holds an older lap's message, or message c is being written. */
            if (shml_slot_busy(st) && shml_slot_seq(st) == (uint32_t)c && shml__chan_probe(ch) &&
                shml__chan_holder_dead(&ch->geo, shml_slot_holder(st))) {
                make_hole(&ch->geo, s, st, c, true);
                continue;
            }
            *behind = shml_slot_busy(st);
            return -EAGAIN;
        }
        /* Lapped: the slot holds (or is being written for) a later message. Jump to half a
           ring behind the newest position; what lies between is what this subscriber missed. */
        uint64_t e = atomic_load_explicit(&h->enq, memory_order_acquire); /* as in send */
        uint64_t to = e > n / 2 ? e - n / 2 : 0;
        if (to <= c)
            to = c + 1;
        ch->gap += to - c;
        shml__chan_count_drops(ch, to - c);
        ch->cursor = to;
        /* Release: as in release(). */
        atomic_store_explicit(&ch->ep->cursor, to, memory_order_release);
    }
}

/* Join as a subscriber (a publisher only stores its role). */
static int bus_attach(shml_channel *ch)
{
    if (!(ch->role & SHML_CONSUMER)) {
        shml__chan_set_role(ch);
        return 0;
    }
    struct shml_chan_hdr *h = ch->hdr;
    /* The joining order of the header comment: provisional cursor, role, cursor. seq_cst
       throughout: pairs with the publishers' seq_cst loads of role in min_cursor(). */
    uint64_t c0 = atomic_load_explicit(&h->enq, memory_order_seq_cst);
    atomic_store_explicit(&ch->ep->cursor, c0, memory_order_seq_cst);
    atomic_store_explicit(&ch->ep->role, ch->role, memory_order_seq_cst);
    uint64_t c1 = atomic_load_explicit(&h->enq, memory_order_seq_cst);
    atomic_store_explicit(&ch->ep->cursor, c1, memory_order_seq_cst);
    ch->cursor = c1;
    return 0;
}

/*
 * A durable publisher's take-over (channel.c, shml__chan_producer_take_over()): was message p,
 * its dead predecessor's record, published? Its slot tells. Still "being written" by `old`:
 * not published, made a hole here (counted lost, as whoever finds a dead publisher's claim
 * does; a finder may make it first). "Holds p": published. Anything else (a hole, left behind,
 * a later lap): false.
 */
static bool bus_published(shml_channel *ch, struct shml_chan_slot *s, uint32_t p, uint32_t old)
{
    uint64_t claimed = shml_slot_state(p, old, true);
    /* Acquire pairs with the release CAS that published or made a hole of the slot. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st == claimed && make_hole(&ch->geo, s, st, p, true))
        return false;
    if (st == claimed) /* a finder made the hole first */
        st = atomic_load_explicit(&s->state, memory_order_acquire); /* as above */
    return st == shml_slot_state((uint64_t)p + 1, 0, false);
}

/* A durable subscriber took its dead predecessor's entry (channel.c, ep_take_over()): it goes
   on from the predecessor's cursor, which its publishers have counted all along. A durable
   publisher: above. */
static void bus_take_over(shml_channel *ch, uint32_t old)
{
    if (ch->role == SHML_PRODUCER) {
        shml__chan_producer_take_over(ch, old, bus_published);
        return;
    }
    shml__chan_ep_renew(ch); /* a subscriber holds no slot */
    /* Acquire pairs with the predecessor's release store of its cursor (after its reads). */
    ch->cursor = atomic_load_explicit(&ch->ep->cursor, memory_order_acquire);
}

/* A subscriber that leaves may have been the one its publishers wait for. */
static void bus_detach(shml_channel *ch)
{
    if (ch->role & SHML_CONSUMER)
        shml__chan_wake_all(&ch->geo, ch, &ch->hdr->not_full);
}

/* ---- the bus's operations ---- */

static int b_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    return shml__chan_claim(ch, bus_try_send, len, SHML_SLOT_HDR, buf, timeout_ns);
}

/*
 * The open claim was passed (overwrite, the header comment): the slot is left behind by this
 * process; make it a hole, so that the next lap claims it as usual. Its message was counted
 * lost when it was passed.
 */
static void give_back_passed(shml_channel *ch)
{
    struct shml_chan_slot *s = ch->claimed;
    /* Relaxed: a snapshot; the CAS below decides. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* The slot stays ours while left behind (only we or a finder of our death change that),
       but publishers move its seq on each lap: retry until we win or it is no longer ours. */
    while (left_behind(st) && shml_slot_holder(st) == ch->me && !hole_left_behind(s, &st))
        ;
    ch->claimed = NULL;
}

/* Publish the open claim; -ESTALE (nothing sent) if it was passed while held. */
static int publish_quiet(shml_channel *ch, size_t len)
{
    struct shml_chan_slot *s = ch->claimed;
    s->len = (uint32_t)len;
    uint64_t mine = shml_slot_state(ch->claimed_pos, ch->me, true);
    if (ch->durable_tag) {
        /* A durable publisher records the position it publishes, then its mark (channel.h,
           shml__chan_mark_message(); its successor settles the record: bus_published()).
           Relaxed: read by a successor once we are dead. */
        atomic_store_explicit(&ch->ep->send_rec, shml_ep_rec(ch->claimed_pos, 0),
                              memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the record before the mark */
        shml__chan_mark_message(ch);
    }
    /* Release on success pairs with the subscribers' acquire loads of the state. A CAS, not
       a store: a publisher may have passed this claim (overwrite), and the slot is then no
       longer at position claimed_pos. */
    if (!atomic_compare_exchange_strong_explicit(&s->state, &mine,
                                                 shml_slot_state(ch->claimed_pos + 1, 0, false),
                                                 memory_order_release, memory_order_relaxed)) {
        shml__chan_unmark_message(ch);
        if (ch->durable_tag)
            shml__chan_clear_rec(&ch->ep->send_rec);
        give_back_passed(ch);
        return shml__fail(ESTALE, "the bus went a whole ring past this claim while it was "
                                  "held: not sent (counted lost)");
    }
    if (ch->durable_tag)
        shml__chan_clear_rec(&ch->ep->send_rec);
    ch->claimed = NULL;
    shml__chan_count_sent(ch, len);
    return 0;
}

static int b_commit(shml_channel *ch, size_t len)
{
    int r = publish_quiet(ch, len);
    if (r == 0)
        shml__chan_wake_all(&ch->geo, ch, &ch->hdr->not_empty);
    return r;
}

static int b_peek(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                  int64_t timeout_ns)
{
    void *s;
    uint64_t pos;
    ch->gap = 0;
    int r = shml__chan_wait(ch, bus_try_recv, cap, &ch->hdr->not_empty, timeout_ns, &s, &pos);
    if (r < 0)
        return r;
    ch->peeked = s;
    ch->peeked_pos = pos;
    *buf = slot_payload(s);
    *len = ch->peeked_len; /* checked by bus_try_recv */
    return 0;
}

/* Move past the peeked message; -ESTALE if it was rewritten while read (overwrite). */
static int release_quiet(shml_channel *ch)
{
    struct shml_chan_slot *s = ch->peeked;
    uint64_t c = ch->peeked_pos;
    ch->peeked = NULL;
    ch->cursor = c + 1;
    int r = 0;
    if (ch->policy == SHML_OVERWRITE) {
        /* Acquire fence: our reads of the message come before this second look at the state
           (pairs with the publisher's acquire CAS that precedes its writes). */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != ch->peeked_state) {
            ch->gap = 1;
            shml__chan_count_drops(ch, 1);
            r = -ESTALE;
        }
    }
    /* Release pairs with the publishers' acquire loads of cursors in min_cursor(): our reads
       are done before they reuse the slot. */
    atomic_store_explicit(&ch->ep->cursor, c + 1, memory_order_release);
    if (r == 0)
        shml__chan_count_recv(ch, ch->peeked_len);
    return r;
}

static int b_release(shml_channel *ch)
{
    int r = release_quiet(ch);
    if (ch->policy == SHML_BLOCK)
        shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
    return r;
}

/* A claim never published: a hole, so that subscribers skip it. */
static void hole_claim(shml_channel *ch, bool lost)
{
    if (!ch->claimed)
        return;
    if (!make_hole(&ch->geo, ch->claimed, shml_slot_state(ch->claimed_pos, ch->me, true),
                   ch->claimed_pos, lost)) {
        give_back_passed(ch); /* passed (overwrite): counted lost then */
        return;
    }
    ch->claimed = NULL;
}

static void b_discard(shml_channel *ch)
{
    hole_claim(ch, false);
}

static void b_abandon(shml_channel *ch)
{
    hole_claim(ch, true);
    ch->peeked = NULL; /* the entry is freed: the cursor no longer counts */
}

static const struct shml__chan_ops bus_ops = {
    .claim = b_claim,
    .commit = b_commit,
    .peek = b_peek,
    .release = b_release,
    .abandon = b_abandon,
    .discard = b_discard,
};

/* ---- batches ---- */

static ssize_t bus_send_batch(shml_channel *ch, const struct shml_iov *msgs, size_t n,
                              int64_t timeout_ns)
{
    void *s;
    uint64_t pos;
    int r = shml__chan_wait(ch, bus_try_send, 0, &ch->hdr->not_full, timeout_ns, &s, &pos);
    if (r < 0)
        return r;
    size_t i = 0;
    for (;;) {
        ch->claimed = s;
        ch->claimed_pos = pos;
        if (msgs[i].len)
            memcpy(slot_payload(s), msgs[i].base, msgs[i].len);
        if (publish_quiet(ch, msgs[i].len) < 0) {
            if (i == 0)
                return -ESTALE; /* passed while copying (stopped meanwhile): nothing sent */
            break;
        }
        if (++i == n)
            break;
        bool behind = false;
        if (bus_try_send(ch, 0, &s, &pos, &behind) < 0)
            break;
    }
    shml__chan_wake_all(&ch->geo, ch, &ch->hdr->not_empty);
    return (ssize_t)i;
}

static ssize_t bus_recv_batch(shml_channel *ch, char *buf, size_t cap, size_t *lens, size_t n,
                              int64_t timeout_ns)
{
    uint64_t gap = 0;
    size_t i = 0, used = 0;
    ch->gap = 0;
    while (i < n) {
        void *s;
        uint64_t pos;
        int r;
        if (i == 0) {
            r = shml__chan_wait(ch, bus_try_recv, cap, &ch->hdr->not_empty, timeout_ns, &s,
                                &pos);
        } else {
            bool behind = false;
            r = bus_try_recv(ch, cap - used, &s, &pos, &behind);
        }
        gap += ch->gap;
        ch->gap = 0;
        if (r < 0) {
            if (i == 0) {
                ch->gap = gap;
                return r;
            }
            break; /* nothing more without waiting, or it does not fit */
        }
        size_t len = ch->peeked_len; /* checked by bus_try_recv against cap - used */
        if (len)
            memcpy(buf + used, slot_payload(s), len);
        ch->peeked = s;
        ch->peeked_pos = pos;
        r = release_quiet(ch);
        gap += ch->gap;
        ch->gap = 0;
        if (r == -ESTALE)
            continue; /* torn: skipped (counted); the first waits within the same deadline */
        lens[i++] = len;
        used += len;
    }
    ch->gap = gap;
    if (ch->policy == SHML_BLOCK)
        shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
    return (ssize_t)i;
}

/* ---- check and repair ---- */

/* Check (and repair): every slot's state against its position, publishers that died. */
static void bus_check(struct shml__checker *c, const struct shml__chan_geo *g)
{
    uint64_t n = g->nslots, mask = n - 1;
    for (uint64_t i = 0; i < n; i++) {
        struct shml_chan_slot *s = shml__chan_slot_at(g, i);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        uint32_t seq = shml_slot_seq(st);
        uint32_t phase = (seq - (uint32_t)i) & (uint32_t)mask;
        if ((shml_slot_busy(st) ? phase != 0 : phase != (1u & (uint32_t)mask))) {
            shml__check_finding(c, false, false,
                                "slot %llu: state 0x%016llx does not belong to this slot",
                                (unsigned long long)i, (unsigned long long)st);
            continue;
        }
        /* Not busy with a holder: left behind by a stuck publisher, overwrite only. */
        bool behind = left_behind(st);
        if (behind && g->policy != SHML_OVERWRITE) {
            shml__check_finding(c, false, false, "slot %llu: a published message names holder 0x%x",
                                (unsigned long long)i, shml_slot_holder(st));
            continue;
        }
        if (!(shml_slot_busy(st) || behind) || !shml__chan_holder_dead(g, shml_slot_holder(st)))
            continue;
        char who[64];
        shml__check_holder_text(g, shml_slot_holder(st), who, sizeof(who));
        /* The runtime's steps: a dead publisher's claim becomes a hole (its message
           lost), a slot it left behind is taken back. */
        uint64_t want = st;
        bool fixed = shml__check_repairing(c) &&
                     (behind ? hole_left_behind(s, &want) : make_hole(g, s, st, seq, true));
        if (behind)
            shml__check_finding(c, true, fixed, "slot %llu: left behind by %s, which died%s",
                                (unsigned long long)i, who, fixed ? ": freed" : "");
        else
            shml__check_finding(c, true, fixed, "slot %llu: being written by %s, which died%s",
                                (unsigned long long)i, who,
                                fixed ? ": skipped, 1 message lost" : "");
    }
}

/* ---- the kind ---- */

/* Create: slot i holds message i - nslots, so that position i is free to publish. */
static void bus_init(struct shml_chan_hdr *h, const struct shml_chan_hdr *g)
{
    char *slots = (char *)h + g->slots_off;
    for (uint64_t i = 0; i < g->nslots; i++) {
        struct shml_chan_slot *s = (struct shml_chan_slot *)(slots + i * g->stride);
        /* Relaxed: published with the segment. */
        atomic_store_explicit(&s->state, shml_slot_state(i + 1 - g->nslots, 0, false),
                              memory_order_relaxed);
    }
}

static uint64_t bus_lag(uint64_t enq, uint64_t cursor)
{
    return enq > cursor ? enq - cursor : 0;
}

/* Waiting: what the slowest subscriber has not read. */
static uint64_t bus_queued(const struct shml__chan_geo *g, uint64_t enq, uint64_t deq,
                           uint64_t slowest)
{
    (void)g;
    (void)deq;
    return slowest != UINT64_MAX && enq > slowest ? enq - slowest : 0;
}

const struct shml__kind shml__bus_kind = {
    .kind = SHML_BUS,
    .slot_hdr = SHML_SLOT_HDR,
    .min_slots = 2,
    .overwrite = true,
    .default_role = SHML_PRODUCER,
    .ops = &bus_ops,
    .init = bus_init,
    .attach = bus_attach,
    .take_over = bus_take_over,
    .detach = bus_detach,
    .send_batch = bus_send_batch,
    .recv_batch = bus_recv_batch,
    .lag = bus_lag,
    .queued = bus_queued,
    .check = bus_check,
};
