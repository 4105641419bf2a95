/*
 * queue.c - the queue: a bounded ring of message slots, any number of producers and consumers.
 *
 * Algorithm: a ring of nslots slots, each with a state word (layout.h) in the manner of
 * Vyukov's bounded MPMC queue, with the holder (its endpoint entry and the entry's generation:
 * shml_holder(), never a pid another process may take over) in the state so that a dead holder
 * can be recognised. Positions are free-running 64-bit counters; enq and deq are the next
 * positions to claim for sending and for receiving. A producer claims the slot of position p
 * by CAS of its state from "free for p" to "claimed by me", then advances enq past p (anyone
 * may help advance it); it writes the message and publishes it with a release store of "full for
 * p". A consumer claims "full for p" by CAS to "read by me", advances deq, reads, and releases the
 * slot with a release store of "free for p + nslots". With SHML_SPSC, each side is alone, so claims
 * and index updates are plain stores.
 *
 * Invariants: enq >= deq; the slot of p holds seq p (free or claimed) or p + 1 (full or being
 * read) for the lap in progress; every state change is made by the slot's holder, or by a CAS
 * that names the expected holder, so two endpoints never both believe they own a slot.
 *
 * Progress: lock-free between live endpoints (a claim fails only because another succeeded).
 * A waiting endpoint sleeps on an event (not_empty, not_full) only after announcing itself,
 * so publishers make no system call while nobody sleeps.
 *
 * Death: a producer that dies between claim and publish leaves "claimed by P"; the consumer
 * that reaches that slot finds P dead and frees it ("free for p + nslots", the message lost).
 * A consumer that dies between claim and release leaves "read by C"; the producer that needs
 * the slot finds C dead and frees it. Either way `lost` counts it (below). A waiter that sleeps
 * behind a live holder wakes every 50 ms to look again, so a holder's later death is noticed.
 *
 * Counting: sent = received + lost + queued holds exactly, whatever a kill interrupts, because
 * the one who frees a dead holder's slot knows whether the holder counted its message. Each
 * endpoint records the message in hand per direction (send_rec, recv_rec: layout.h). Producer:
 * claim, record, count sent, publish, clear the record. Consumer: claim, copy, record, count
 * received, give back, clear. A kill leaves a prefix of these steps: relaxed stores suffice
 * between processes (the dead do not race), and compiler-only fences (atomic_signal_fence: a
 * kill interrupts like a signal) keep the steps in program order; retired stores are never
 * discarded, so no processor fence is needed. The reclaimer of a dead producer's claim counts
 * it lost, and sent on the producer's behalf (in closed.sent) unless its record says it is
 * counted; of a dead consumer's, lost unless counted received. An entry is freed only after
 * the slots its records name are settled (shml__queue_settle()): the records go with it.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "sync/futex.h"

#include <string.h>

/* Is the holder recorded in a busy state dead? */
static bool holder_dead(shml_channel *ch, uint64_t s)
{
    return shml__chan_holder_dead(&ch->geo, shml_slot_holder(s));
}

/*
 * Free a slot of channel g (queue or rpc) whose holder died (state still s), for position
 * `next`; count the loss. Needs no handle, so that a repair uses it too.
 */
bool shml__queue_reclaim(const struct shml__chan_geo *g, struct shml_chan_slot *slot,
                         uint64_t s, uint64_t next)
{
    struct shml_chan_hdr *h = g->hdr;
    /* A message being read by a consumer that died: whom its kind must tell (an rpc
       request's client) is read before the slot is freed (the dead holder no longer changes
       it). */
    bool being_read = (uint32_t)next - shml_slot_seq(s) == g->nslots - 1;
    uint64_t tag = being_read && g->k->read_tag ? g->k->read_tag(g, slot) : 0;
    /* Whether the holder counted its message (Counting, above). */
    int counted = shml__chan_holder_counted(g, shml_slot_holder(s), !being_read,
                                            shml_slot_seq(s) - (being_read ? 1u : 0u));
    if (counted < 0)
        return false; /* the holder's entry is being freed, and its freer settles it */
    /* Acquire: the dead holder's writes to the slot come before our reuse of it. */
    if (!atomic_compare_exchange_strong_explicit(&slot->state, &s, shml_slot_state(next, 0, false),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    if (being_read && g->k->request_lost)
        g->k->request_lost(g, tag); /* tell the client, unless it knows */
    /* Relaxed: statistics. A message received and counted is not lost; one claimed but not
       counted sent is counted sent now, on behalf of its producer, so that it is lost. */
    if (being_read && counted)
        return true;
    if (!being_read && !counted)
        atomic_fetch_add_explicit(&h->closed.sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->lost, 1, memory_order_relaxed);
    return true;
}

void shml__queue_settle(const struct shml__chan_geo *g, uint32_t i, bool sends, bool receives)
{
    struct shml_chan_ep *e = shml__chan_ep(g, i);
    /* Relaxed: the owner is dead and we hold its entry (ep_reclaim's acquire CAS). */
    uint32_t me = shml_holder(i, shml_ep_gen(atomic_load_explicit(&e->state, memory_order_relaxed)));
    uint64_t r = sends ? atomic_load_explicit(&e->send_rec, memory_order_relaxed) : 0;
    if (r & SHML_EP_REC_SET) {
        /* A claim for position p: "claimed by me" for p, freed for p + nslots. */
        uint32_t p = shml_ep_rec_pos(r);
        struct shml_chan_slot *s = shml__chan_slot_at(g, p & (g->nslots - 1));
        if (shml__queue_reclaim(g, s, shml_slot_state(p, me, true), (uint64_t)p + g->nslots))
            shml__chan_wake_all(g, NULL, &g->hdr->not_empty);
    }
    r = receives ? atomic_load_explicit(&e->recv_rec, memory_order_relaxed) : 0;
    if (r & SHML_EP_REC_SET) {
        /* Message p being read: "read by me" (seq p + 1), freed for p + nslots. */
        uint32_t p = shml_ep_rec_pos(r);
        struct shml_chan_slot *s = shml__chan_slot_at(g, p & (g->nslots - 1));
        if (shml__queue_reclaim(g, s, shml_slot_state((uint64_t)p + 1, me, true),
                                (uint64_t)p + g->nslots))
            shml__chan_wake_all(g, NULL, &g->hdr->not_full);
    }
}

/*
 * A claim that keeps failing for many more rounds than contention explains has met indices
 * and slot states that disagree (a corrupt or hostile channel): check the indices, and give
 * -SHML_ECORRUPT rather than loop for ever.
 */
static int too_many_rounds(shml_channel *ch, unsigned *rounds)
{
    if (++*rounds < 1024u + 2u * (unsigned)(ch->mask + 1))
        return 0;
    *rounds = 0;
    /* Relaxed: a consistency check of two snapshots. */
    uint64_t enq = atomic_load_explicit(&ch->hdr->enq, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&ch->hdr->deq, memory_order_relaxed);
    /* deq may pass enq by the claims of producers that died before advancing enq. */
    if (deq > enq + 2 * (ch->mask + 1) || (enq > deq && enq - deq > 4 * (ch->mask + 1)))
        return shml__fail(SHML_ECORRUPT, "channel indices are inconsistent (enq %llu, deq %llu, "
                                         "%llu slots)",
                          (unsigned long long)enq, (unsigned long long)deq,
                          (unsigned long long)(ch->mask + 1));
    return -EAGAIN; /* consistent, just busy: let the caller wait */
}

/* Advance an index from pos to pos + 1 if nobody did (helping is harmless). */
static void advance(shml_channel *ch, shml_atomic_u64 *index, uint64_t pos)
{
    if (ch->spsc) {
        /* Release: pairs with the other side's acquire of the index in stats and waits. */
        atomic_store_explicit(index, pos + 1, memory_order_release);
        return;
    }
    atomic_compare_exchange_strong_explicit(index, &pos, pos + 1, memory_order_release,
                                            memory_order_relaxed);
}

/*
 * Take slot s, seen in state st, as `mine` (claimed or being read by us), then move the index
 * past position p. Alone (SPSC) a plain store does; otherwise a CAS, which fails (false) if
 * anyone changed the state since st was read.
 */
static bool take(shml_channel *ch, struct shml_chan_slot *s, uint64_t st, uint64_t mine,
                 shml_atomic_u64 *index, uint64_t p)
{
    if (ch->spsc) {
        atomic_store_explicit(&s->state, mine, memory_order_relaxed); /* alone */
    } else if (!atomic_compare_exchange_weak_explicit(&s->state, &st, mine, memory_order_acquire,
                                                      memory_order_relaxed)) {
        /* Acquire on success pairs with the release that handed the slot over (publish or
           give_back): its writes or reads are done before ours begin. */
        return false;
    }
    advance(ch, index, p);
    return true;
}

/*
 * Try once to claim a slot for sending. Returns 0 with *slot and *pos set, or -EAGAIN (full;
 * *behind is set when the blocking slot is held by a live consumer).
 */
int shml__queue_try_send(shml_channel *ch, size_t arg, void **slot, uint64_t *pos, bool *behind)
{
    (void)arg;
    struct shml_chan_hdr *h = ch->hdr;
    /* Acquire pairs with the release in advance(): the slots of earlier positions are ours
       to look at. */
    uint64_t p = atomic_load_explicit(&h->enq, memory_order_acquire);
    unsigned rounds = 0;
    for (;;) {
        int bad = too_many_rounds(ch, &rounds);
        if (bad < 0)
            return bad;
        struct shml_chan_slot *s = shml__chan_slot(ch, p);
        /* Acquire pairs with the consumer's release of the slot: its reads are done. */
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        int32_t d = (int32_t)(shml_slot_seq(st) - (uint32_t)p);
        if (d == 0 && !shml_slot_busy(st)) {
            if (!take(ch, s, st, shml_slot_state(p, ch->me, true), &h->enq, p))
                continue; /* another producer, or a spurious failure: look again */
            *slot = s;
            *pos = p;
            return 0;
        }
        if (d == 0 || d == 1) {
            /* Claimed, published or being read for p: enq lags; help it on. */
            advance(ch, &h->enq, p);
            p = atomic_load_explicit(&h->enq, memory_order_acquire); /* as above */
            continue;
        }
        if (d < 0) {
            /* The slot still holds the message of the previous lap: full. */
            if (shml_slot_busy(st) && shml__chan_probe(ch) && holder_dead(ch, st)) {
                shml__queue_reclaim(&ch->geo, s, st, p);
                continue;
            }
            *behind = shml_slot_busy(st);
            return -EAGAIN;
        }
        /*
         * Already past position p: p was written and read (enq has moved on, and the CAS in
         * advance() fails), or a consumer freed the claim of a producer that died before it
         * advanced enq, and enq must skip p.
         */
        if (!ch->spsc || shml_slot_seq(st) == (uint32_t)(p + ch->mask + 1))
            advance(ch, &h->enq, p);
        p = atomic_load_explicit(&h->enq, memory_order_acquire); /* as above */
    }
}

/*
 * The length of the message in slot s, read once (only this copy is used: ch->peeked_len):
 * 0 with *len set, -EMSGSIZE (longer than cap), or -SHML_ECORRUPT (longer than any producer
 * writes).
 */
static int slot_len(shml_channel *ch, struct shml_chan_slot *s, size_t cap, uint32_t *len)
{
    *len = shml__len_once(&s->len);
    if (*len > ch->max_msg + ch->k->msg_extra)
        return shml__fail(SHML_ECORRUPT, "message of %u bytes in slots for %llu", *len,
                          (unsigned long long)ch->max_msg);
    return *len > cap ? -EMSGSIZE : 0;
}

/*
 * Try once to claim the next message. Returns 0 with *slot and *pos set, -EAGAIN (empty;
 * *behind set when a live producer is writing the next message), or -EMSGSIZE (the next
 * message is longer than cap; not claimed).
 */
int shml__queue_try_recv(shml_channel *ch, size_t cap, void **slot, uint64_t *pos, bool *behind)
{
    struct shml_chan_hdr *h = ch->hdr;
    if (ch->held) {
        /* A durable consumer's first message: the one its dead predecessor was reading
           (queue_take_over()), ours already ("read by" this handle). */
        struct shml_chan_slot *s = ch->held;
        uint32_t len;
        int r = slot_len(ch, s, cap, &len);
        if (r < 0)
            return r;
        ch->peeked_len = len;
        *slot = s;
        *pos = ch->held_pos;
        ch->held = NULL;
        return 0;
    }
    uint64_t p = atomic_load_explicit(&h->deq, memory_order_acquire); /* as in send */
    unsigned rounds = 0;
    for (;;) {
        int bad = too_many_rounds(ch, &rounds);
        if (bad < 0)
            return bad;
        struct shml_chan_slot *s = shml__chan_slot(ch, p);
        /* Acquire pairs with the producer's release store of "full": the message is there. */
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        int32_t d = (int32_t)(shml_slot_seq(st) - (uint32_t)(p + 1));
        if (d == 0 && !shml_slot_busy(st)) {
            /* Read before the take: the producer wrote it before publishing (the acquire
               above), and nobody else writes it while the state the take expects stays. */
            uint32_t len;
            int r = slot_len(ch, s, cap, &len);
            if (r < 0)
                return r;
            if (!take(ch, s, st, shml_slot_state(p + 1, ch->me, true), &h->deq, p))
                continue; /* another consumer, or a spurious failure: look again */
            ch->peeked_len = len;
            *slot = s;
            *pos = p;
            return 0;
        }
        if (d == 0) {
            /* Being read by another consumer: deq lags; help it on. */
            advance(ch, &h->deq, p);
            p = atomic_load_explicit(&h->deq, memory_order_acquire);
            continue;
        }
        if (d < 0) {
            /* Free or claimed for p (or still the previous lap's): nothing to read yet. */
            if (shml_slot_busy(st) && shml__chan_probe(ch) && holder_dead(ch, st)) {
                uint32_t seq = shml_slot_seq(st);
                if (seq == (uint32_t)p) {
                    /* A producer died writing message p: skip it. */
                    if (shml__queue_reclaim(&ch->geo, s, st, p + ch->mask + 1))
                        advance(ch, &h->deq, p);
                } else {
                    /* A consumer died reading the previous lap's message. */
                    shml__queue_reclaim(&ch->geo, s, st, (uint64_t)seq - 1 + ch->mask + 1);
                }
                continue;
            }
            *behind = shml_slot_busy(st);
            return -EAGAIN;
        }
        /*
         * Already free for a later lap: message p was consumed (deq has moved on, and the CAS in
         * advance() fails), or its slot was freed without a message (a producer died,
         * discarded or abandoned its claim), and deq must skip p. Alone (SPSC) the consumer
         * did not consume p, so p was freed; the producer may have reused the slot since
         * (claimed or published for p + nslots): skip p all the same.
         */
        advance(ch, &h->deq, p);
        p = atomic_load_explicit(&h->deq, memory_order_acquire);
    }
}

/* Publish a claimed slot (release: the message before the state) and wake a consumer. */
static void publish_quiet(struct shml_chan_slot *s, uint64_t pos, size_t len)
{
    s->len = (uint32_t)len;
    /* Release pairs with the consumer's acquire load of the state: it sees len and bytes. */
    atomic_store_explicit(&s->state, shml_slot_state(pos + 1, 0, false), memory_order_release);
}

/* Give a read slot back to producers (release: our reads before the state) and wake one. */
static void give_back_quiet(shml_channel *ch, struct shml_chan_slot *s, uint64_t pos)
{
    /* Release pairs with the producer's acquire load of the state. */
    atomic_store_explicit(&s->state, shml_slot_state(pos + ch->mask + 1, 0, false),
                          memory_order_release);
}

void shml__queue_give_back(shml_channel *ch, struct shml_chan_slot *s, uint64_t pos)
{
    give_back_quiet(ch, s, pos);
    shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
}

void shml__queue_produce(shml_channel *ch, struct shml_chan_slot *s, uint64_t pos, size_t len,
                         size_t counted_len)
{
    shml__chan_count_sent_at(ch, pos, counted_len);
    shml__chan_mark_message(ch);
    publish_quiet(s, pos, len);
    shml__chan_clear_rec(&ch->ep->send_rec);
    shml__chan_wake(&ch->geo, ch, &ch->hdr->not_empty);
}

void shml__queue_consume(shml_channel *ch, struct shml_chan_slot *s, uint64_t pos,
                         size_t counted_len)
{
    shml__chan_count_recv_at(ch, pos, counted_len);
    give_back_quiet(ch, s, pos);
    shml__chan_clear_rec(&ch->ep->recv_rec);
    shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
}

/* ---- the queue's operations ---- */

static int q_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    return shml__chan_claim(ch, shml__queue_try_send, len, SHML_SLOT_HDR, buf, timeout_ns);
}

static int q_commit(shml_channel *ch, size_t len)
{
    shml__queue_produce(ch, ch->claimed, ch->claimed_pos, len, len);
    ch->claimed = NULL;
    return 0;
}

static int q_peek(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                  int64_t timeout_ns)
{
    void *s;
    uint64_t pos;
    int r = shml__chan_wait(ch, shml__queue_try_recv, cap, &ch->hdr->not_empty, timeout_ns, &s,
                            &pos);
    if (r < 0)
        return r;
    ch->peeked = s;
    ch->peeked_pos = pos;
    *buf = slot_payload(s);
    *len = ch->peeked_len; /* checked by try_recv */
    return 0;
}

static int q_release(shml_channel *ch)
{
    shml__queue_consume(ch, ch->peeked, ch->peeked_pos, ch->peeked_len);
    ch->peeked = NULL;
    return 0;
}

/*
 * Free this handle's open claim without publishing it (publishing an empty message would
 * deliver something never sent): the slot becomes free for the next lap, so consumers skip
 * its position. `lost` counts it (a close abandons the message), or not (shml_discard()
 * withdraws it).
 */
void shml__queue_abandon_claim(shml_channel *ch, bool lost)
{
    if (!ch->claimed)
        return;
    struct shml_chan_slot *s = ch->claimed;
    uint64_t st = shml_slot_state(ch->claimed_pos, ch->me, true);
    uint64_t next = ch->claimed_pos + ch->mask + 1;
    bool freed;
    if (lost) {
        freed = shml__queue_reclaim(&ch->geo, s, st, next);
    } else {
        /* Release pairs with the acquire loads of the state in try_send() and try_recv():
           our writes to the slot are done before the next lap's producer writes it. */
        freed =
            atomic_compare_exchange_strong_explicit(&s->state, &st, shml_slot_state(next, 0, false),
                                                    memory_order_release, memory_order_relaxed);
    }
    if (freed) {
        /* A consumer waiting for this position skips it; a producer waiting for room may
           take the slot. */
        shml__chan_wake(&ch->geo, ch, &ch->hdr->not_empty);
        shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
    }
    ch->claimed = NULL;
}

static void q_discard(shml_channel *ch)
{
    shml__queue_abandon_claim(ch, false);
}

static void q_abandon(shml_channel *ch)
{
    shml__queue_abandon_claim(ch, true);
    if (ch->held) {
        /* A durable consumer leaving before it took its predecessor's message: lost. */
        shml__queue_give_back(ch, ch->held, ch->held_pos);
        atomic_fetch_add_explicit(&ch->hdr->lost, 1, memory_order_relaxed); /* a statistic */
        ch->held = NULL;
    }
    if (ch->peeked) {
        shml__queue_give_back(ch, ch->peeked, ch->peeked_pos);
        atomic_fetch_add_explicit(&ch->hdr->lost, 1, memory_order_relaxed); /* a statistic */
        ch->peeked = NULL;
    }
}

const struct shml__chan_ops shml__queue_ops = {
    .claim = q_claim,
    .commit = q_commit,
    .peek = q_peek,
    .release = q_release,
    .abandon = q_abandon,
    .discard = q_discard,
};

/* Check (and repair): every slot's state against its position, holders that died. The
   rpc kind checks its request ring so too. */
void shml__queue_check(struct shml__checker *c, const struct shml__chan_geo *g)
{
    struct shml_chan_hdr *h = g->hdr;
    uint64_t n = g->nslots, mask = n - 1;
    uint64_t enq = atomic_load_explicit(&h->enq, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&h->deq, memory_order_relaxed);
    if ((deq > enq && deq - enq > g->nendpoints) || (enq > deq && enq - deq > n + g->nendpoints))
        shml__check_finding(
            c, false, false, "indices are inconsistent: enq %llu, deq %llu, %llu slots",
            (unsigned long long)enq, (unsigned long long)deq, (unsigned long long)n);
    uint64_t limit = g->max_msg + g->k->msg_extra;
    for (uint64_t i = 0; i < n; i++) {
        struct shml_chan_slot *s = shml__chan_slot_at(g, i);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        uint32_t seq = shml_slot_seq(st);
        uint32_t phase = (seq - (uint32_t)i) & (uint32_t)mask;
        if (phase > 1 && n > 2) {
            shml__check_finding(c, false, false,
                                "slot %llu: state 0x%016llx does not belong to this slot",
                                (unsigned long long)i, (unsigned long long)st);
            continue;
        }
        uint32_t len = shml__len_once(&s->len);
        if (phase == 1 && !shml_slot_busy(st) && len > limit)
            shml__check_finding(c, false, false, "slot %llu: message of %u bytes in slots for %llu",
                                (unsigned long long)i, len, (unsigned long long)limit);
        if (!shml_slot_busy(st) || !shml__chan_holder_dead(g, shml_slot_holder(st)))
            continue;
        /* A dead holder: a claim being written (seq p) or a message being read (seq p + 1);
           either way the slot becomes free for the next lap, and the message is lost. */
        bool writing = phase == 0;
        uint64_t next = writing ? (uint64_t)seq + n : (uint64_t)seq - 1 + n;
        char who[64];
        shml__check_holder_text(g, shml_slot_holder(st), who,
                                sizeof(who)); /* before a repair frees it */
        bool fixed = false;
        if (shml__check_repairing(c) && (fixed = shml__queue_reclaim(g, s, st, next)))
            shml__chan_wake_all(g, NULL, writing ? &h->not_empty : &h->not_full);
        shml__check_finding(c, true, fixed, "slot %llu: %s by %s, which died%s",
                            (unsigned long long)i, writing ? "being written" : "being read", who,
                            fixed ? ": freed, 1 message lost" : "");
    }
}

/* ---- batches: one wake-up for the lot ---- */

ssize_t shml__queue_send_batch(shml_channel *ch, const struct shml_iov *msgs, size_t n,
                               int64_t timeout_ns)
{
    void *s;
    uint64_t pos;
    int r = shml__chan_wait(ch, shml__queue_try_send, 0, &ch->hdr->not_full, timeout_ns, &s,
                            &pos);
    if (r < 0)
        return r;
    size_t i = 0;
    for (;;) {
        if (msgs[i].len)
            memcpy(slot_payload(s), msgs[i].base, msgs[i].len);
        shml__chan_count_sent_at(ch, pos, msgs[i].len);
        shml__chan_mark_message(ch);
        publish_quiet(s, pos, msgs[i].len);
        shml__chan_clear_rec(&ch->ep->send_rec);
        if (++i == n)
            break;
        bool behind = false;
        if (shml__queue_try_send(ch, 0, &s, &pos, &behind) < 0)
            break;
    }
    shml__chan_wake(&ch->geo, ch, &ch->hdr->not_empty);
    return (ssize_t)i;
}

ssize_t shml__queue_recv_batch(shml_channel *ch, char *buf, size_t cap, size_t *lens, size_t n,
                               int64_t timeout_ns)
{
    void *sv;
    uint64_t pos;
    int r = shml__chan_wait(ch, shml__queue_try_recv, cap, &ch->hdr->not_empty, timeout_ns,
                            &sv, &pos);
    if (r < 0)
        return r;
    size_t i = 0, used = 0;
    for (;;) {
        struct shml_chan_slot *s = sv;
        size_t len = ch->peeked_len; /* checked by try_recv against cap - used */
        if (len)
            memcpy(buf + used, slot_payload(s), len);
        shml__chan_count_recv_at(ch, pos, len);
        give_back_quiet(ch, s, pos);
        shml__chan_clear_rec(&ch->ep->recv_rec);
        lens[i] = len;
        used += len;
        if (++i == n)
            break;
        bool behind = false;
        if (shml__queue_try_recv(ch, cap - used, &sv, &pos, &behind) < 0)
            break;
    }
    ch->gap = 0;
    shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
    return (ssize_t)i;
}

/* ---- the kind ---- */

void shml__queue_init(struct shml_chan_hdr *h, const struct shml_chan_hdr *g)
{
    char *slots = (char *)h + g->slots_off;
    for (uint64_t i = 0; i < g->nslots; i++) {
        struct shml_chan_slot *s = (struct shml_chan_slot *)(slots + i * g->stride);
        /* Relaxed: published with the segment. Free for position i. */
        atomic_store_explicit(&s->state, shml_slot_state(i, 0, false), memory_order_relaxed);
    }
}

/*
 * A durable consumer took its dead predecessor's entry (channel.c, ep_take_over(), which kept
 * the generation: holder `old` looks alive again, so no new reclaimer starts on its slots).
 * What the predecessor was reading is ours to deliver again, unless its record says it counted
 * it received: then it is given back, as the predecessor would have. Then the generation moves
 * on, and the slot "being read" by `old` becomes "being read" by the new holder, by CAS. A
 * reclaimer may free that slot first (one that judged `old` dead before the take-over, or one
 * that sees `old` dead for good after the generation moved): then our CAS fails, the message
 * is counted lost as for any dead consumer (the predecessor did not count it), and there is
 * nothing to deliver; if our CAS wins, theirs fails. The slot is busy throughout, so whatever
 * kills us on the way leaves a state every reclaimer handles.
 */
static void queue_take_over(shml_channel *ch, uint32_t old)
{
    const struct shml__chan_geo *g = &ch->geo;
    struct shml_chan_ep *e = ch->ep;
    /* Relaxed: the dead owner's record (a dead process does not race; the CAS that gave us
       the entry came after its last write); ch->n_recv holds its count of received messages. */
    uint64_t rec = atomic_load_explicit(&e->recv_rec, memory_order_relaxed);
    /* Acquire pairs with the release in advance(): the positions below deq were claimed. */
    uint64_t deq = atomic_load_explicit(&ch->hdr->deq, memory_order_acquire);
    struct shml_chan_slot *held = NULL;
    uint64_t held_pos = 0, held_st = 0;
    for (uint64_t i = 0; i < g->nslots && !held; i++) {
        struct shml_chan_slot *s = shml__chan_slot_at(g, i);
        /* Relaxed: a candidate; the CAS that takes it orders what follows. */
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        uint32_t seq = shml_slot_seq(st);
        if (!shml_slot_busy(st) || shml_slot_holder(st) != old ||
            ((seq - (uint32_t)i) & (uint32_t)(g->nslots - 1)) != 1)
            continue; /* not a message it was reading (a consumer reads one at a time) */
        uint64_t p = deq - (uint32_t)((uint32_t)deq - (seq - 1u));
        if (shml_ep_rec_names(rec, seq - 1u) && shml_ep_rec_counted(rec, ch->n_recv)) {
            /* Received and counted: give it back on its behalf. Release pairs with the
               producer's acquire load of the state, as give_back_quiet(). */
            if (atomic_compare_exchange_strong_explicit(
                    &s->state, &st, shml_slot_state(p + g->nslots, 0, false),
                    memory_order_release, memory_order_relaxed))
                shml__chan_wake(g, ch, &ch->hdr->not_full);
            continue;
        }
        held = s;
        held_pos = p;
        held_st = st;
    }
    /* Release pairs with the acquire fence of shml__chan_holder_counted(): a reclaimer that
       reads the cleared record sees the give-back above done (as ep_free()'s fence; a store,
       as in shml__chan_producer_take_over()). */
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&e->recv_rec, 0, memory_order_release);
    shml__chan_ep_renew(ch);
    if (!held)
        return;
    /* Acquire: the producer's writes of the message before our reads (its release store of
       "full", which the predecessor's take continued, a read-modify-write). */
    if (atomic_compare_exchange_strong_explicit(&held->state, &held_st,
                                                shml_slot_state(held_pos + 1, ch->me, true),
                                                memory_order_acquire, memory_order_relaxed)) {
        ch->held = held;
        ch->held_pos = held_pos;
        atomic_fetch_add_explicit(&e->redelivered, 1, memory_order_relaxed); /* a statistic */
    }
}

/*
 * A durable producer's take-over (channel.c, shml__chan_producer_take_over(); the entry taken
 * as for queue_take_over(), above): was message p, its dead predecessor's record, published?
 * Its slot tells. Still claimed by `old`: not published; the claim is freed here, counted lost
 * as a reclaimer would (a reclaimer already under way may free it first: the same outcome).
 * Holding p (full, or being read): published. Anything else (freed, by a consumer that read it
 * or by a reclaimer, or reused by a later lap) cannot be told: false.
 */
static bool queue_published(shml_channel *ch, struct shml_chan_slot *s, uint32_t p, uint32_t old)
{
    const struct shml__chan_geo *g = &ch->geo;
    uint64_t claimed = shml_slot_state(p, old, true);
    /* Acquire pairs with the release stores of the slot's state (publish, give back,
       reclaim): the state read is one of the lap's, in order. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st == claimed && shml__queue_reclaim(g, s, st, (uint64_t)p + g->nslots)) {
        shml__chan_wake(g, ch, &ch->hdr->not_empty); /* a consumer skips p */
        return false;
    }
    if (st == claimed) /* a reclaimer freed it first */
        st = atomic_load_explicit(&s->state, memory_order_acquire); /* as above */
    return shml_slot_seq(st) == p + 1u;
}

static void queue_take_over_any(shml_channel *ch, uint32_t old)
{
    if (ch->role == SHML_PRODUCER)
        shml__chan_producer_take_over(ch, old, queue_published);
    else
        queue_take_over(ch, old);
}

/* The slots a dead (or closing) endpoint's records name. */
static void queue_settle(const struct shml__chan_geo *g, uint32_t i, uint32_t role)
{
    (void)role;
    shml__queue_settle(g, i, true, true);
}

uint64_t shml__queue_queued(const struct shml__chan_geo *g, uint64_t enq, uint64_t deq,
                            uint64_t slowest)
{
    (void)g;
    (void)slowest;
    return enq > deq ? enq - deq : 0;
}

const struct shml__kind shml__queue_kind = {
    .kind = SHML_QUEUE,
    .slot_hdr = SHML_SLOT_HDR,
    .min_slots = 2,
    .spsc = true,
    .default_role = SHML_PRODUCER | SHML_CONSUMER,
    .ops = &shml__queue_ops,
    .init = shml__queue_init,
    .settle = queue_settle,
    .take_over = queue_take_over_any,
    .send_batch = shml__queue_send_batch,
    .recv_batch = shml__queue_recv_batch,
    .queued = shml__queue_queued,
    .check = shml__queue_check,
};
