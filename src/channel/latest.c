/*
 * latest.c - one newest value: writers never wait, readers never see a torn value.
 *
 * Algorithm: nslots buffers (at least 4) and one word, hdr.enq, naming the current value
 * (version << 16 | buffer). A writer takes a buffer that is neither current nor read by
 * anyone (CAS of its state from 0 to "writing by me"), writes the value and its version, makes
 * it current by CAS of hdr.enq (retrying with a newer version if another writer got there
 * first: the last to publish wins), and only then drops its writing mark (release store of 0).
 * A reader pins the current buffer (CAS readers + 1, which fails while a writer holds it),
 * reads, and unpins (atomic decrement). A pinned buffer is never chosen by a writer, and the
 * buffer a writer holds is never pinned, so no read overlaps a write: no value is ever torn.
 *
 * Writers never wait: a handle pins at most one buffer, and a channel takes at most
 * nslots - 2 readers (latest_attach() refuses more), so some buffer is neither current
 * nor pinned. Pins of readers that died count until their entries are reclaimed, which a
 * writer that finds no buffer does at once.
 *
 * Readers wait for a version newer than the last they read, on not_empty, which writers wake.
 *
 * Death. A reader's pin is also recorded in its endpoint entry (`pin`), and the record is
 * what a reclaim trusts: the record is made before the count (pin) and cleared after it
 * (unpin), so that a buffer's count never includes a reader without a record, whatever
 * instruction a reader dies at. A dead reader leaves a record with or without its count, and
 * nobody can tell which; so a reclaim does not decrement: it clears the record and recounts
 * the buffer (shml__latest_recount): the count is lowered to the live records on it, never
 * below (a reader between its record and its count, or between its uncount and the clearing
 * of its record, is counted by the recount: at worst one pin too many, until the next
 * recount). The recount's compare-and-swap expects the state it read before the records, and
 * every pin and unpin changes the state's tag (bits 48-63), so a count that changed meanwhile
 * is not overwritten.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "sync/futex.h"

#include <string.h>

static inline struct shml_latest_buf *buf_at(const shml_channel *ch, uint32_t i)
{
    return (struct shml_latest_buf *)(ch->slots + (uint64_t)i * ch->stride);
}

bool shml__latest_recount(const struct shml__chan_geo *g, uint32_t i)
{
    struct shml_latest_buf *b = shml__chan_slot_at(g, i);
    /* seq_cst: this load precedes the loads of the records below in the single total order,
       and pairs with the readers' seq_cst record-then-pin and unpin-then-clear: a reader
       counted in st has its record stored before it (the header comment). */
    uint64_t st = atomic_load_explicit(&b->state, memory_order_seq_cst);
    uint32_t readers = shml_latest_readers(st);
    if (readers == 0)
        return false;
    uint32_t live = 0;
    for (uint32_t k = 0; k < g->nendpoints && live < readers; k++) {
        struct shml_chan_ep *e = shml__chan_ep(g, k);
        /* seq_cst: as above. An entry being claimed or freed counts if it records a pin. */
        if (atomic_load_explicit(&e->pin, memory_order_seq_cst) == i + 1 &&
            shml__chan_ep_alive(e) != 0)
            live++;
    }
    if (live >= readers)
        return false;
    /* seq_cst: as above; fails if any pin or unpin (each changes the tag) came meanwhile. */
    return atomic_compare_exchange_strong_explicit(
        &b->state, &st, (shml_latest_tag(st) + SHML_LATEST_TAG_ONE) |
                        shml_latest_state(live, shml_latest_writer(st), shml_latest_writing(st)),
        memory_order_seq_cst, memory_order_relaxed);
}

/* Clear what dead processes hold: pins of dead readers, buffers of dead writers. */
static void clear_dead(shml_channel *ch)
{
    for (uint32_t i = 0; i < ch->geo.nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(&ch->geo, i);
        uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
        if (shml_ep_used(st) && atomic_load_explicit(&e->pin, memory_order_relaxed) != 0 &&
            shml__chan_ep_alive(e) == 0)
            shml__chan_ep_reclaim(&ch->geo, i, st);
    }
    for (uint32_t i = 0; i <= ch->mask; i++) {
        /* Counts no record backs (a reclaim's, or a hostile one). */
        shml__latest_recount(&ch->geo, i);
        struct shml_latest_buf *b = buf_at(ch, i);
        uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        if (shml_latest_writing(st) && shml__chan_holder_dead(&ch->geo, shml_latest_writer(st)))
            shml__latest_free_dead_writer(b, st);
    }
}

bool shml__latest_free_dead_writer(struct shml_latest_buf *b, uint64_t st)
{
    /* Its value is whole if it is current (published before the mark is dropped), and unused
       otherwise. Only the mark goes: the tag and the readers' count are kept. Release: pairs
       with the readers' acquire CAS. */
    return atomic_compare_exchange_strong_explicit(
        &b->state, &st, shml_latest_tag(st) | shml_latest_state(shml_latest_readers(st), 0, false),
        memory_order_release, memory_order_relaxed);
}

/* Take a buffer that is neither current nor pinned. 0 with *slot, or -EAGAIN. */
static int try_pick(shml_channel *ch, size_t arg, void **slot, uint64_t *pos, bool *behind)
{
    /* Acquire pairs with the CAS that published the current value. */
    uint64_t cur = atomic_load_explicit(&ch->hdr->enq, memory_order_acquire);
    uint32_t n = (uint32_t)ch->mask + 1;
    uint32_t current = shml_latest_cur_version(cur) ? shml_latest_cur_buffer(cur) : n;
    for (uint32_t k = 1; k <= n; k++) {
        uint32_t i = (current + k) % n;
        if (i == current)
            continue;
        struct shml_latest_buf *b = buf_at(ch, i);
        /* Relaxed: a guess; the CAS decides. No reader and no writer: only the tag set. */
        uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        if (st != shml_latest_tag(st))
            continue;
        /* Acquire pairs with the readers' release decrement: their reads are done. */
        if (atomic_compare_exchange_strong_explicit(&b->state, &st,
                                                    st | shml_latest_state(0, ch->me, true),
                                                    memory_order_acquire, memory_order_relaxed)) {
            /* Another writer may have made it current since we read enq (it held it then):
               give it back. Nobody else can make it current while we hold it. Acquire: as
               above. */
            uint64_t now = atomic_load_explicit(&ch->hdr->enq, memory_order_acquire);
            if (shml_latest_cur_version(now) && shml_latest_cur_buffer(now) == i) {
                atomic_store_explicit(&b->state, st, memory_order_release); /* as in commit */
                continue;
            }
            *slot = b;
            *pos = i;
            return 0;
        }
    }
    /* Only pins of dead readers (or a leaked one) can leave no buffer: clear them, once. */
    if (arg == 0) {
        clear_dead(ch);
        return try_pick(ch, 1, slot, pos, behind);
    }
    *behind = true;
    return -EAGAIN;
}

/*
 * Unpin buffer b: the count, then the record (the header comment), so that a death between
 * the two leaves a record without a count, which a reclaim undoes by recounting.
 */
static void drop_pin(shml_channel *ch, struct shml_latest_buf *b)
{
    /* seq_cst: release for our reads (done before a writer's acquire CAS takes the buffer),
       and ordered before the clearing of the record below, as the recount needs. */
    atomic_fetch_add_explicit(&b->state, SHML_LATEST_TAG_ONE - SHML_LATEST_READER_ONE, memory_order_seq_cst);
    atomic_store_explicit(&ch->ep->pin, 0, memory_order_seq_cst); /* as above */
}

/* Pin the current buffer if it holds a version newer than the last read. */
static int try_pin(shml_channel *ch, size_t cap, void **slot, uint64_t *pos, bool *behind)
{
    for (unsigned rounds = 0; rounds < 100000u; rounds++) {
        /* Acquire pairs with the writer's release CAS of enq. */
        uint64_t cur = atomic_load_explicit(&ch->hdr->enq, memory_order_acquire);
        uint64_t v = shml_latest_cur_version(cur);
        uint32_t i = shml_latest_cur_buffer(cur);
        if (v == 0 || v <= ch->last_version)
            return -EAGAIN;
        if (i > ch->mask)
            return shml__fail(SHML_ECORRUPT, "latest value names buffer %u of %llu", i,
                              (unsigned long long)(ch->mask + 1));
        struct shml_latest_buf *b = buf_at(ch, i);
        uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        if (shml_latest_writing(st)) {
            /* Its writer is between publishing and dropping its mark (or died there). */
            if (shml__chan_probe(ch) && shml__chan_holder_dead(&ch->geo, shml_latest_writer(st)))
                clear_dead(ch);
            *behind = true;
            return -EAGAIN;
        }
        if (shml_latest_readers(st) == SHML_LATEST_READERS_MAX)
            return -EAGAIN;
        /* The record before the count (the header comment). seq_cst: pairs with the
           recount's seq_cst loads of the state, then of the records. */
        atomic_store_explicit(&ch->ep->pin, i + 1, memory_order_seq_cst);
        /* seq_cst (acquire at least: pairs with the writer's release store that dropped its
           mark: the value is whole); the tag changes with every pin (the recount). */
        if (!atomic_compare_exchange_weak_explicit(&b->state, &st, st + SHML_LATEST_READER_ONE + SHML_LATEST_TAG_ONE,
                                                   memory_order_seq_cst, memory_order_relaxed)) {
            /* Not counted: the record may go (a record without a count is harmless). */
            atomic_store_explicit(&ch->ep->pin, 0, memory_order_relaxed);
            continue;
        }
        uint64_t version = b->version;
        /* Read once, checked, and only this copy used (ch->peeked_len). */
        uint32_t len = shml__len_once(&b->len);
        if (len > cap || len > ch->max_msg) {
            drop_pin(ch, b);
            return len > ch->max_msg
                       ? shml__fail(SHML_ECORRUPT, "latest value of %u bytes in a channel "
                                                   "of %llu",
                                    len, (unsigned long long)ch->max_msg)
                       : -EMSGSIZE;
        }
        ch->peeked_len = len;
        *slot = b;
        *pos = version;
        return 0;
    }
    return shml__fail(SHML_ECORRUPT, "latest value keeps changing under the reader");
}

/* Open: a reader takes a place among the nslots - 2 (Readers, above). */
static int latest_attach(shml_channel *ch)
{
    shml__chan_set_role(ch);
    if (!(ch->role & SHML_CONSUMER))
        return 0;
    /* The current value counts as unread: the lag starts at 1 (or 0 before any write).
       Relaxed: a statistic. */
    uint64_t v = shml_latest_cur_version(atomic_load_explicit(&ch->hdr->enq, memory_order_relaxed));
    atomic_store_explicit(&ch->ep->cursor, v ? v - 1 : 0, memory_order_relaxed);
    /* Count after our role is visible (seq_cst, as every role load): two openers racing may
       both give up, never both stay past the bound. */
    uint32_t readers = 0;
    for (uint32_t i = 0; i < ch->geo.nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(&ch->geo, i);
        if (!(atomic_load_explicit(&e->role, memory_order_seq_cst) & SHML_CONSUMER))
            continue;
        /* A reader that died gives its place (and its pin) back. */
        uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
        if (e != ch->ep && shml__chan_ep_alive(e) == 0 && shml__chan_ep_reclaim(&ch->geo, i, st))
            continue;
        readers++;
    }
    if (readers + 2 > ch->mask + 1)
        return shml__fail(EUSERS, "the latest channel's %llu buffers take at most %llu readers",
                          (unsigned long long)(ch->mask + 1),
                          (unsigned long long)(ch->mask - 1));
    return 0;
}

/* ---- the latest channel's operations ---- */

static int l_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    return shml__chan_claim(ch, try_pick, len, SHML_LATEST_HDR, buf, timeout_ns);
}

static int l_commit(shml_channel *ch, size_t len)
{
    struct shml_latest_buf *b = ch->claimed;
    struct shml_chan_hdr *h = ch->hdr;
    b->len = (uint32_t)len;
    /* Acquire pairs with the release CAS of another writer (its version is ours to exceed). */
    uint64_t cur = atomic_load_explicit(&h->enq, memory_order_acquire);
    for (;;) {
        uint64_t v = shml_latest_cur_version(cur) + 1;
        b->version = v;
        /* Release pairs with the readers' acquire load of enq: value, len and version are
           written before the buffer is current. */
        if (atomic_compare_exchange_weak_explicit(&h->enq, &cur,
                                                  shml_latest_cur(v, (uint32_t)ch->claimed_pos),
                                                  memory_order_release, memory_order_acquire))
            break;
    }
    /* Release pairs with the readers' acquire CAS that pins it. Only we change the state
       while it says writing: its tag is as we took it. */
    atomic_store_explicit(&b->state,
                          shml_latest_tag(atomic_load_explicit(&b->state, memory_order_relaxed)),
                          memory_order_release);
    ch->claimed = NULL;
    shml__chan_count_sent(ch, len);
    shml__chan_wake_all(&ch->geo, ch, &h->not_empty);
    return 0;
}

static int l_peek(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                  int64_t timeout_ns)
{
    void *b;
    uint64_t version;
    int r = shml__chan_wait(ch, try_pin, cap, &ch->hdr->not_empty, timeout_ns, &b, &version);
    if (r < 0)
        return r;
    ch->gap = ch->last_version && version > ch->last_version + 1
                  ? version - ch->last_version - 1
                  : 0;
    ch->peeked = b;
    ch->peeked_pos = version;
    *buf = (char *)b + SHML_LATEST_HDR;
    *len = ch->peeked_len; /* checked by try_pin */
    return 0;
}

static void unpin(shml_channel *ch)
{
    struct shml_latest_buf *b = ch->peeked;
    ch->peeked = NULL;
    drop_pin(ch, b);
    shml__chan_wake(&ch->geo, ch, &ch->hdr->not_full);
}

static int l_release(shml_channel *ch)
{
    ch->last_version = ch->peeked_pos;
    /* Relaxed: a statistic (the lag shown by inspection). */
    atomic_store_explicit(&ch->ep->cursor, ch->last_version, memory_order_relaxed);
    if (ch->gap)
        shml__chan_count_drops(ch, ch->gap);
    unpin(ch);
    shml__chan_count_recv(ch, ch->peeked_len);
    return 0;
}

static void l_discard(shml_channel *ch)
{
    if (!ch->claimed)
        return;
    /* Release pairs with the acquire CAS of the writer that takes the buffer next: our
       writes to it are done. Nothing was published: the buffer is simply free again (its tag
       kept: only we change the state while it says writing). */
    shml_atomic_u64 *state = &((struct shml_latest_buf *)ch->claimed)->state;
    atomic_store_explicit(state, shml_latest_tag(atomic_load_explicit(state, memory_order_relaxed)),
                          memory_order_release);
    ch->claimed = NULL;
}

static void l_abandon(shml_channel *ch)
{
    l_discard(ch);
    if (ch->peeked)
        unpin(ch);
}

static const struct shml__chan_ops latest_ops = {
    .claim = l_claim,
    .commit = l_commit,
    .peek = l_peek,
    .release = l_release,
    .abandon = l_abandon,
    .discard = l_discard,
};

/* ---- check and repair ---- */

static void latest_check(struct shml__checker *c, const struct shml__chan_geo *g)
{
    struct shml_chan_hdr *h = g->hdr;
    uint64_t cur = atomic_load_explicit(&h->enq, memory_order_relaxed);
    if (shml_latest_cur_version(cur) && shml_latest_cur_buffer(cur) >= g->nslots) {
        shml__check_finding(c, false, false, "the current value names buffer %u of %u",
                            shml_latest_cur_buffer(cur), g->nslots);
        return;
    }
    for (uint32_t i = 0; i < g->nslots; i++) {
        struct shml_latest_buf *b = shml__chan_slot_at(g, i);
        uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        uint32_t readers = shml_latest_readers(st);
        uint32_t pins = 0;
        for (uint32_t k = 0; k < g->nendpoints; k++) {
            struct shml_chan_ep *e = shml__chan_ep(g, k);
            if (shml_ep_used(atomic_load_explicit(&e->state, memory_order_relaxed)) &&
                atomic_load_explicit(&e->pin, memory_order_relaxed) == i + 1)
                pins++;
        }
        if (readers > pins) {
            /* A count no endpoint records (left by a reader that died between its count and
               its record, or forged): the recount the runtime makes (latest.c). */
            bool fixed = shml__check_repairing(c) && shml__latest_recount(g, i);
            shml__check_finding(c, true, fixed, "buffer %u: %u readers counted, %u recorded%s", i,
                                readers, pins, fixed ? ": recounted" : "");
            if (fixed)
                st = atomic_load_explicit(&b->state, memory_order_relaxed);
        }
        if (shml_latest_writing(st) && shml__chan_holder_dead(g, shml_latest_writer(st))) {
            char who[64];
            shml__check_holder_text(g, shml_latest_writer(st), who, sizeof(who));
            bool fixed = shml__check_repairing(c) && shml__latest_free_dead_writer(b, st);
            shml__check_finding(c, true, fixed, "buffer %u: being written by %s, which died%s", i,
                                who, fixed ? ": freed" : "");
        }
        uint32_t len = shml__len_once(&b->len);
        if (!shml_latest_writing(st) && len > g->max_msg)
            shml__check_finding(c, false, false, "buffer %u: value of %u bytes in buffers for %llu",
                                i, len, (unsigned long long)g->max_msg);
    }
}

/* ---- the kind ---- */

/* The fewest buffers: the current one, one being written, and room for two readers. */
#define LATEST_MIN_BUFS 4u

/* Free of a reader's entry: the record of its pin. Whether the dead reader's count is still
   in the buffer nobody knows, so the buffer is recounted from the records left (Death,
   above). seq_cst: the clearing comes before the recount's loads. The pin is a shared word:
   a buffer number is used only within the private bound. */
static void latest_settle(const struct shml__chan_geo *g, uint32_t i, uint32_t role)
{
    (void)role;
    uint32_t pin = atomic_exchange_explicit(&shml__chan_ep(g, i)->pin, 0, memory_order_seq_cst);
    if (pin != 0 && pin <= g->nslots)
        shml__latest_recount(g, pin - 1);
}

/* A reader's lag: the versions written since the one it read last. */
static uint64_t latest_lag(uint64_t enq, uint64_t cursor)
{
    uint64_t newest = shml_latest_cur_version(enq);
    return newest > cursor ? newest - cursor : 0;
}

const struct shml__kind shml__latest_kind = {
    .kind = SHML_LATEST,
    .slot_hdr = SHML_LATEST_HDR,
    .min_slots = LATEST_MIN_BUFS,
    .default_role = SHML_PRODUCER | SHML_CONSUMER,
    .ops = &latest_ops,
    .attach = latest_attach,
    .settle = latest_settle,
    .lag = latest_lag,
    .check = latest_check,
};
