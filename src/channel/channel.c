/*
 * channel.c - creating, opening and closing channels; the endpoint table; waiting; the public
 * calls, checked here and dispatched to the kind's operations (queue.c, bus.c, latest.c,
 * rpc.c); stats and inspection. What differs by kind is asked of the kind's descriptor
 * (struct shml__kind, channel.h; the table is `kinds` below), never decided here by kind.
 *
 * A channel is a managed segment of the channel's kind whose data starts with the control
 * block of layout.h. The creator initialises the block before the segment is published (the
 * segment header's READY state, released last, orders it for openers), so an opener that got
 * the segment sees a finished block; it still validates every field before trusting one.
 */
#include "channel/channel.h"
#include "shmlink/names.h"
#include "os/os.h"
#include "segment/backend.h"
#include "sync/futex.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CAPACITY ((size_t)1 << 20)
#define DEFAULT_MAX_MSG  ((size_t)4096)
#define MAX_MAX_MSG      ((size_t)1 << 30)
#define MAX_SLOTS        ((uint64_t)1 << 30)
#define DEFAULT_SPIN     2000u

/* How long a waiter blocked behind another endpoint sleeps before it looks again. */
#define HOLDER_CHECK_NS ((int64_t)50000000)
/*
 * The longest a waiter sleeps before it looks at the mapping again: if another process
 * truncated the object, nobody will wake it (the others lose the segment too), and that look
 * faults and tells it (-SHML_ETRUNCATED) instead of leaving it asleep forever.
 */
#define LOST_CHECK_NS ((int64_t)1000000000)

static const struct shml_channel_opts default_opts = SHML_CHANNEL_OPTS_INIT;

/* The first version's size: the smallest struct shml_channel_opts a caller may pass. */
#define CHANNEL_OPTS_V1_SIZE sizeof(struct shml_channel_opts)

/* Read the caller's options by common.h's rule for structs that can grow (NULL: defaults). */
static int read_opts(const struct shml_channel_opts *in, struct shml_channel_opts *o)
{
    return shml__opts_copy(o, &default_opts, sizeof(*o),
                           offsetof(struct shml_channel_opts, reserved), CHANNEL_OPTS_V1_SIZE,
                           in, "shml_channel_opts", "SHML_CHANNEL_OPTS_INIT");
}

/* The kinds: the one table of what varies by kind (channel.h). */
static const struct shml__kind *const kinds[] = {&shml__queue_kind, &shml__bus_kind,
                                                 &shml__latest_kind, &shml__rpc_kind};

const struct shml__kind *shml__kind(uint32_t kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i]->kind == kind)
            return kinds[i];
    return NULL;
}

static const struct shml__chan_ops *ops_of(const shml_channel *ch)
{
    return ch->k->ops;
}

/* Bytes of slot header plus whatever a message carries besides its bytes. */
static uint64_t slot_overhead(const struct shml__kind *k)
{
    return (uint64_t)k->slot_hdr + k->msg_extra;
}

/* A mailbox's stride for messages of max_msg bytes, or 0 for a kind without mailboxes. */
static uint64_t box_stride_for(const struct shml__kind *k, uint64_t max_msg)
{
    return k->mailboxes ? shml__round_up(SHML_BOX_HDR + max_msg, 64) : 0;
}

/* Where the slots start, from the table sizes. */
static uint64_t layout_slots_off(const struct shml__kind *k, uint32_t nep, uint64_t box_stride,
                                 uint64_t *box_off)
{
    uint64_t end = SHML_CHAN_HDR + (uint64_t)nep * SHML_EP_SIZE;
    *box_off = 0;
    if (k->mailboxes) {
        *box_off = end;
        end += (uint64_t)nep * box_stride;
    }
    return shml__round_up(end, 128);
}

/*
 * Bytes of one message of a type (itemsize times the shape's product), or 0 if the type is
 * inconsistent (a bad format, ndim, itemsize, or an overflow).
 */
static uint64_t type_size(const char *format, size_t format_cap, uint64_t itemsize,
                          uint32_t ndim, const uint64_t *shape)
{
    size_t len = strnlen(format, format_cap);
    if (len == format_cap || len == 0 || itemsize == 0 || itemsize > MAX_MAX_MSG ||
        ndim > SHML_TYPE_NDIM_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)format[i] < 0x20 || (unsigned char)format[i] > 0x7e)
            return 0;
    uint64_t n = itemsize;
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] == 0 || shape[d] > MAX_MAX_MSG || n > MAX_MAX_MSG / shape[d])
            return 0;
        n *= shape[d];
    }
    return n;
}

/* Check a geometry copied from a segment of `size` data bytes. 0 or -SHML_ECORRUPT /
   -SHML_EVERSION (reason recorded). */
static int validate(const struct shml__chan_geo *g, uint32_t magic, uint32_t version,
                    size_t size)
{
    if (magic != SHML_CHAN_MAGIC)
        return shml__fail(SHML_ECORRUPT, "no channel control block at the start of the data");
    if (version != SHML_CHAN_VERSION)
        return shml__fail(SHML_EVERSION, "channel layout version %u; this library reads %u",
                          version, SHML_CHAN_VERSION);
    const struct shml__kind *k = g->k;
    if (!k)
        return shml__fail(SHML_ECORRUPT, "channel kind %u is unknown", g->kind);
    uint64_t n = g->nslots;
    if (n < k->min_slots || n > MAX_SLOTS || (n & (n - 1)) != 0 || g->stride % 64 != 0 ||
        g->max_msg > MAX_MAX_MSG || g->stride < slot_overhead(k) + g->max_msg)
        return shml__fail(SHML_ECORRUPT, "channel geometry is inconsistent (%u slots of %u "
                                         "bytes for messages of %llu)",
                          g->nslots, g->stride, (unsigned long long)g->max_msg);
    if (g->policy > SHML_OVERWRITE || (g->policy == SHML_OVERWRITE && !k->overwrite) ||
        (g->flags & ~SHML_CHANF_SPSC) || ((g->flags & SHML_CHANF_SPSC) && !k->spsc))
        return shml__fail(SHML_ECORRUPT, "channel policy %u or flags 0x%x are invalid",
                          g->policy, g->flags);
    if (g->nendpoints < 1 || g->nendpoints > SHML_EP_MAX || g->ep_off != SHML_CHAN_HDR)
        return shml__fail(SHML_ECORRUPT, "channel endpoint table is inconsistent (%u entries "
                                         "at %llu)",
                          g->nendpoints, (unsigned long long)g->ep_off);
    uint64_t want_box_stride = box_stride_for(k, g->max_msg);
    uint64_t box_off;
    uint64_t slots_off = layout_slots_off(k, g->nendpoints, want_box_stride, &box_off);
    if (g->box_stride != want_box_stride || g->box_off != box_off || g->slots_off != slots_off)
        return shml__fail(SHML_ECORRUPT, "channel tables are misplaced (mailboxes at %llu, "
                                         "slots at %llu)",
                          (unsigned long long)g->box_off, (unsigned long long)g->slots_off);
    if (slots_off > size || n * g->stride > size - slots_off)
        return shml__fail(SHML_ECORRUPT, "channel slots run past the %zu-byte data", size);
    if (g->type_format_len != 0 || g->type_itemsize != 0) {
        uint64_t ts = type_size(g->type_format, sizeof(g->type_format), g->type_itemsize,
                                g->type_ndim, g->type_shape);
        if (ts == 0 || ts > g->max_msg || g->type_format_len != strlen(g->type_format))
            return shml__fail(SHML_ECORRUPT, "channel message type is inconsistent");
    }
    return 0;
}

int shml__chan_geo_load(struct shml_chan_hdr *h, size_t size, struct shml__chan_geo *g)
{
    if (size < SHML_CHAN_HDR)
        return shml__fail(SHML_ECORRUPT, "no channel control block at the start of the data");
    /* One snapshot of the fixed fields: each read once, whole (a single load, so that a
       value being rewritten is the old or the new one, never a mix of both that might pass
       the checks), and everything below decides on this copy alone. Relaxed: the block was
       written before the segment was published, and the acquire load of the header's READY
       state at open (segment.c) orders it; a later writer is hostile and orders nothing. */
    const char *m = (const char *)h;
#define ONCE32(f)                                                                               \
    atomic_load_explicit((const shml_atomic_u32 *)(m + offsetof(struct shml_chan_hdr, f)),     \
                         memory_order_relaxed)
#define ONCE64(f)                                                                               \
    atomic_load_explicit((const shml_atomic_u64 *)(m + offsetof(struct shml_chan_hdr, f)),     \
                         memory_order_relaxed)
    memset(g, 0, sizeof(*g));
    g->hdr = h;
    uint32_t magic = ONCE32(magic), version = ONCE32(version);
    g->kind = ONCE32(kind);
    g->k = shml__kind(g->kind); /* NULL for an unknown kind: validate() refuses it */
    g->flags = ONCE32(flags);
    g->nslots = ONCE32(nslots);
    g->stride = ONCE32(stride);
    g->max_msg = ONCE64(max_msg);
    g->slots_off = ONCE64(slots_off);
    g->policy = ONCE32(policy);
    g->nendpoints = ONCE32(nendpoints);
    g->ep_off = ONCE64(ep_off);
    g->box_off = ONCE64(box_off);
    g->box_stride = ONCE32(box_stride);
    g->type_itemsize = ONCE64(type_itemsize);
    g->type_ndim = ONCE32(type_ndim);
    g->type_format_len = ONCE32(type_format_len);
    for (uint32_t d = 0; d < SHML_TYPE_NDIM_MAX; d++)
        g->type_shape[d] = atomic_load_explicit(
            (const shml_atomic_u64 *)(m + offsetof(struct shml_chan_hdr, type_shape) + 8 * d),
            memory_order_relaxed);
#undef ONCE32
#undef ONCE64
    /* Text: a torn copy is just other text, checked as it is. */
    _Static_assert(sizeof(g->type_format) == sizeof(h->type_format), "type format size");
    memcpy(g->type_format, m + offsetof(struct shml_chan_hdr, type_format),
           sizeof(g->type_format));
    int r = validate(g, magic, version, size);
    if (r < 0)
        return r;
    g->slots = (char *)h + g->slots_off;
    if (g->type_format_len != 0 || g->type_itemsize != 0) {
        g->type_bytes = type_size(g->type_format, sizeof(g->type_format), g->type_itemsize,
                                  g->type_ndim, g->type_shape);
    } else {
        /* Untyped: whatever the unused type bytes hold is not a type. */
        memset(g->type_format, 0, sizeof(g->type_format));
        g->type_ndim = 0;
        memset(g->type_shape, 0, sizeof(g->type_shape));
    }
    return 0;
}

/* ---- the endpoint table ---- */

int shml__chan_ep_alive(struct shml_chan_ep *e)
{
    /* Acquire pairs with the release of the entry's last hand-over (ep_free's store, or the
       CAS of ep_reclaim): `start` is then the new owner's, or 0 while it is being taken,
       never the previous owner's. Liveness is re-checked by whoever acts on it (by CAS). */
    uint64_t st = atomic_load_explicit(&e->state, memory_order_acquire);
    if (!shml_ep_used(st))
        return 0;
    uint64_t start = atomic_load_explicit(&e->start, memory_order_relaxed);
    /* Relaxed, as start. 0 while the entry is being taken or freed: judged by pid then, as
       an owner that could not tell its namespace. */
    if (shml__os_pid_ns_other(atomic_load_explicit(&e->pid_ns, memory_order_relaxed)))
        return -1; /* its pid names another process here, or none: never "dead" */
    return shml__os_proc_alive((int32_t)shml_ep_pid(st), start);
}

/* The entry `holder` names, if it is still the holder's (used, of the holder's generation),
   with its state in *st; else NULL. */
static struct shml_chan_ep *holder_entry(const struct shml__chan_geo *g, uint32_t holder, uint64_t *st)
{
    uint32_t i;
    if (!shml_holder_index(holder, &i) || i >= g->nendpoints)
        return NULL;
    struct shml_chan_ep *e = shml__chan_ep(g, i);
    /* Relaxed: ep_alive() loads the state again as it needs; a generation seen moving on is
       final (it only grows while the holder's entry is freed once). */
    *st = atomic_load_explicit(&e->state, memory_order_relaxed);
    if (!shml_ep_used(*st) || !shml_holder_gen_is(holder, shml_ep_gen(*st)))
        return NULL;
    return e;
}

bool shml__chan_holder_dead(const struct shml__chan_geo *g, uint32_t holder)
{
    uint64_t st;
    struct shml_chan_ep *e = holder_entry(g, holder, &st);
    return !e || shml__chan_ep_alive(e) == 0;
}

int shml__chan_holder_counted(const struct shml__chan_geo *g, uint32_t holder, bool sending,
                              uint32_t pos)
{
    uint64_t st;
    struct shml_chan_ep *e = holder_entry(g, holder, &st);
    /* Acquire (fence after holder_entry's relaxed load of the state): pairs with the release
       store of a free state by ep_free(); an entry seen freed was settled first, so the
       caller's compare-and-swap of the slot fails if the record named it. */
    atomic_thread_fence(memory_order_acquire);
    if (!e)
        return 0;
    /* Relaxed, checked below as a seqlock: the owner is dead (or the caller), so nobody but
       a freer changes these, and a freer changes `state` first. */
    uint64_t rec = atomic_load_explicit(sending ? &e->send_rec : &e->recv_rec,
                                        memory_order_relaxed);
    uint64_t n = atomic_load_explicit(sending ? &e->sent : &e->received, memory_order_relaxed);
    /* Acquire: pairs with the release fence in ep_free() before it clears the records and
       counters: if we read a cleared one, the freer's compare-and-swap of `state` (and its
       settling of the slot) happened before the load below (and before our slot CAS). */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->state, memory_order_relaxed) != st)
        return -1;
    return shml_ep_rec_names(rec, pos) && shml_ep_rec_counted(rec, n);
}

uint32_t shml__chan_holder_pid(const struct shml__chan_geo *g, uint32_t holder)
{
    uint64_t st;
    return holder_entry(g, holder, &st) ? shml_ep_pid(st) : 0;
}

/* Add an entry's counters to the channel's totals. Relaxed: statistics. */
static void fold(struct shml_chan_hdr *h, struct shml_chan_ep *e)
{
    struct shml_chan_totals *t = &h->closed;
#define FOLD(f)                                                                                \
    atomic_fetch_add_explicit(&t->f, atomic_load_explicit(&e->f, memory_order_relaxed),        \
                              memory_order_relaxed)
    FOLD(sent);
    FOLD(bytes_sent);
    FOLD(received);
    FOLD(bytes_received);
    FOLD(drops);
    FOLD(sleeps);
#undef FOLD
}

/* Undo what an entry's owner held (its kind's settle step): a queue slot, a latest pin, an
   rpc request or an unread reply. seq_cst: as the role loads of the inspectors (the role is
   still the owner's). */
static void ep_undo(const struct shml__chan_geo *g, uint32_t i)
{
    if (g->k->settle)
        g->k->settle(g, i, atomic_load_explicit(&shml__chan_ep(g, i)->role, memory_order_seq_cst));
}

/* Free entry i, which this process holds in state `mine`: fold, clear, publish free. */
static void ep_free(const struct shml__chan_geo *g, uint32_t i, uint64_t mine)
{
    struct shml_chan_hdr *h = g->hdr;
    struct shml_chan_ep *e = shml__chan_ep(g, i);
    /* seq_cst: publishers and inspectors stop counting it (pairs with their role loads). */
    uint32_t role = atomic_exchange_explicit(&e->role, 0, memory_order_seq_cst);
    if (g->k->entry_freed)
        g->k->entry_freed(g, role);
    fold(h, e);
    /* Release: pairs with the acquire fence of shml__chan_holder_counted(): who reads a
       cleared record or counter below sees our taking of the entry and our settling of its
       slots (ep_undo) done. */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->send_rec, 0, memory_order_relaxed);
    atomic_store_explicit(&e->recv_rec, 0, memory_order_relaxed);
    atomic_store_explicit(&e->sent, 0, memory_order_relaxed);
    atomic_store_explicit(&e->bytes_sent, 0, memory_order_relaxed);
    atomic_store_explicit(&e->received, 0, memory_order_relaxed);
    atomic_store_explicit(&e->bytes_received, 0, memory_order_relaxed);
    atomic_store_explicit(&e->drops, 0, memory_order_relaxed);
    atomic_store_explicit(&e->sleeps, 0, memory_order_relaxed);
    atomic_store_explicit(&e->flags, 0, memory_order_relaxed);
    atomic_store_explicit(&e->reconnects, 0, memory_order_relaxed);
    atomic_store_explicit(&e->redelivered, 0, memory_order_relaxed);
    /* Unknown start until the next owner stores its own: meanwhile ep_alive() goes by the
       pid alone, so the new owner is never taken for a dead one. The pid namespace stays
       ours (not 0, which would have a process of another namespace judge our pid by its own
       /proc while the entry is still ours, above, and free it under us). */
    atomic_store_explicit(&e->start, 0, memory_order_relaxed);
    /* Release: the clearing above before the entry is anyone's again (pairs with the claim's
       acquire CAS and with ep_alive()). The generation moves on: holders naming the entry
       (shml_holder()) are gone. */
    atomic_store_explicit(&e->state, shml_ep_state((uint64_t)shml_ep_gen(mine) + 1, 0, false),
                          memory_order_release);
}

bool shml__chan_ep_reclaim(const struct shml__chan_geo *g, uint32_t i, uint64_t st)
{
    struct shml_chan_ep *e = shml__chan_ep(g, i);
    uint64_t mine = shml_ep_state(shml_ep_gen(st), (uint32_t)shml__os_pid(), true);
    if (!shml_ep_used(st))
        return false;
    /* The dead owner's start time must not be read with our pid once the CAS below names
       us (we would look dead): clear it first. Until then it goes with the dead pid, which
       kill() finds dead, or alive and taken over (harmless: nobody reclaims it then). Only
       the dead owner's is cleared: if the entry changed hands meanwhile, the CAS on start
       fails (or the one on state below does). Relaxed: ordered by the CAS below. */
    uint64_t start = atomic_load_explicit(&e->start, memory_order_relaxed);
    if (atomic_load_explicit(&e->state, memory_order_relaxed) != st)
        return false;
    atomic_compare_exchange_strong_explicit(&e->start, &start, 0, memory_order_relaxed,
                                            memory_order_relaxed);
    /* Acquire: the dead owner's writes to the entry before our reading of it. Release
       pairs with ep_alive()'s acquire load: the cleared start comes with our pid. */
    if (!atomic_compare_exchange_strong_explicit(&e->state, &st, mine, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return false;
    shml__chan_note_release(g, i, (int32_t)shml_ep_pid(st));
    ep_undo(g, i);
    ep_free(g, i, mine);
    return true;
}

uint32_t shml__chan_ep_flags(const shml_channel *ch)
{
    uint32_t f = ch->bridge ? SHML_EP_FLAG_BRIDGE : 0;
    if (ch->durable_tag)
        f |= SHML_EP_FLAG_DURABLE | (ch->durable_tag << SHML_EP_TAG_SHIFT);
    if (ch->durable_tag && ch->role == SHML_PRODUCER && !ch->mark_known)
        f |= SHML_EP_FLAG_NOMARK;
    return f;
}

/* Start this process's ownership of entry e, just taken: its namespace, start time, and a
   descriptor state of its own. */
static void ep_own(shml_channel *ch, struct shml_chan_ep *e, uint64_t start)
{
    atomic_store_explicit(&e->pid_ns, shml__os_pid_ns(), memory_order_relaxed);
    atomic_store_explicit(&e->start, start, memory_order_relaxed);
    atomic_store_explicit(&e->pin, 0, memory_order_relaxed);
    atomic_store_explicit(&e->notify, 0, memory_order_relaxed);
    atomic_store_explicit(&e->note_id, 0, memory_order_relaxed);
    atomic_store_explicit(&e->flags, shml__chan_ep_flags(ch), memory_order_relaxed);
}

/*
 * A durable opener (opts.durable): take the place of a dead endpoint of the same role and name
 * tag, keeping its role, counters, records and cursor. The CAS that makes the entry ours keeps
 * its generation, so the dead one's holder (*old) names a live endpoint from then on and no
 * new reclaimer touches what it held; the kind's take_over step then takes that over from the
 * reclaimers already under way (queue.c) and moves the generation on
 * (shml__chan_ep_renew()). Returns 1 with the entry ours, 0 when there is none to take.
 */
static int ep_take_over(shml_channel *ch, uint64_t start, uint32_t *old)
{
    const struct shml__chan_geo *g = &ch->geo;
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(g, i);
        /* Relaxed: a candidate, confirmed by the CAS below. */
        uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
        uint32_t f = atomic_load_explicit(&e->flags, memory_order_relaxed);
        if (!shml_ep_used(st) || !(f & SHML_EP_FLAG_DURABLE) ||
            (f >> SHML_EP_TAG_SHIFT) != ch->durable_tag ||
            atomic_load_explicit(&e->role, memory_order_seq_cst) != ch->role ||
            shml_ep_pid(st) == ch->pid || shml__chan_ep_alive(e) != 0)
            continue; /* a dead owner with our (reused) pid: the CAS below would not change
                         the state, so a reclaimer's would still succeed; theirs to free */
        /* As in shml__chan_ep_reclaim(): the dead owner's start time goes before the state
           names us (Relaxed: ordered by the CAS below). */
        uint64_t dead_start = atomic_load_explicit(&e->start, memory_order_relaxed);
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != st)
            continue;
        atomic_compare_exchange_strong_explicit(&e->start, &dead_start, 0, memory_order_relaxed,
                                                memory_order_relaxed);
        uint64_t mine = shml_ep_state(shml_ep_gen(st), ch->pid, true);
        /* Acquire: the dead owner's writes to the entry (counters, records, cursor) before our
           reading them. Release pairs with ep_alive()'s acquire load: the cleared start comes
           with our pid. */
        if (!atomic_compare_exchange_strong_explicit(&e->state, &st, mine, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        shml__chan_note_release(g, i, (int32_t)shml_ep_pid(st));
        /* The dead owner's flags, read again now that the entry is ours: f was read before
           the CAS, and an owner that took the entry since (and died) may have changed them.
           Relaxed: the dead do not race (the CAS above orders what we read of the entry). */
        ch->taken_flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
        ep_own(ch, e, start);
        ch->ep = e;
        ch->ep_index = i;
        ch->me = shml_holder(i, shml_ep_gen(mine));
        *old = ch->me;
        /* Relaxed: the dead owner's, made visible by the CAS above; ours from now on. */
        ch->n_sent = atomic_load_explicit(&e->sent, memory_order_relaxed);
        ch->b_sent = atomic_load_explicit(&e->bytes_sent, memory_order_relaxed);
        ch->n_recv = atomic_load_explicit(&e->received, memory_order_relaxed);
        ch->b_recv = atomic_load_explicit(&e->bytes_received, memory_order_relaxed);
        ch->n_drops = atomic_load_explicit(&e->drops, memory_order_relaxed);
        ch->n_sleeps = atomic_load_explicit(&e->sleeps, memory_order_relaxed);
        return 1;
    }
    return 0;
}

void shml__chan_ep_renew(shml_channel *ch)
{
    uint64_t st = atomic_load_explicit(&ch->ep->state, memory_order_relaxed); /* ours */
    uint32_t gen = shml_ep_gen(st) + 1;
    /* Release: what the kind's take_over step did under the old generation comes before
       anyone sees the new one (pairs with holder_entry()'s loads, through ep_alive()'s
       acquire). */
    atomic_store_explicit(&ch->ep->state, shml_ep_state(gen, ch->pid, true),
                          memory_order_release);
    ch->me = shml_holder(ch->ep_index, gen);
}

void shml__chan_producer_take_over(shml_channel *ch, uint32_t old,
                                   bool (*published)(shml_channel *ch, struct shml_chan_slot *s,
                                                     uint32_t p, uint32_t old))
{
    struct shml_chan_ep *e = ch->ep;
    /* Relaxed: the dead owner's record and mark (the CAS that gave us the entry came after
       its last write). */
    uint64_t rec = atomic_load_explicit(&e->send_rec, memory_order_relaxed);
    uint64_t mark = atomic_load_explicit(&e->cursor, memory_order_relaxed);
    bool known = !(ch->taken_flags & SHML_EP_FLAG_NOMARK);
    if (rec & SHML_EP_REC_SET) {
        uint32_t p = shml_ep_rec_pos(rec);
        bool sent = published(ch, shml__chan_slot_at(&ch->geo, p & (ch->geo.nslots - 1)), p, old);
        known = known && sent;
    }
    /* Not known: the dead one's mark may be of the message it did not publish, so it is not
       carried on (our messages carry 0 until the caller sets one). */
    ch->mark_known = known;
    ch->published_mark = ch->mark = known ? mark : 0;
    atomic_store_explicit(&e->flags, shml__chan_ep_flags(ch), memory_order_relaxed);
    /* Release pairs with the acquire fence of shml__chan_holder_counted(): a reclaimer that
       reads the cleared record sees what `published` settled done (as ep_free()'s fence). A
       release store rather than a fence, which ThreadSanitizer does not model; the signal
       fence keeps it after the steps above for a kill, as shml__chan_clear_rec(). */
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&e->send_rec, 0, memory_order_release);
    shml__chan_ep_renew(ch);
}

/* Take a free entry (reclaiming the dead's on the way), or for a durable opener a dead
   predecessor's (ep_take_over(), then 1 with its holder in *old). 0, 1 or -EUSERS. */
static int ep_claim(shml_channel *ch, uint32_t *old)
{
    const struct shml__chan_geo *g = &ch->geo;
    uint64_t start = 0;
    shml__os_proc_start((int32_t)ch->pid, &start);
    if (ch->durable_tag && ep_take_over(ch, start, old))
        return 1;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < g->nendpoints; i++) {
            struct shml_chan_ep *e = shml__chan_ep(g, i);
            uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
            if (shml_ep_used(st)) {
                /* Second pass: free the entries of processes that died. */
                if (pass == 0 || shml__chan_ep_alive(e) != 0 || !shml__chan_ep_reclaim(g, i, st))
                    continue;
                st = atomic_load_explicit(&e->state, memory_order_relaxed);
                if (shml_ep_used(st))
                    continue;
            }
            uint64_t mine = shml_ep_state(shml_ep_gen(st), ch->pid, true);
            /* Acquire pairs with the release that freed the entry. */
            if (!atomic_compare_exchange_strong_explicit(&e->state, &st, mine,
                                                         memory_order_acquire,
                                                         memory_order_relaxed))
                continue;
            ep_own(ch, e, start);
            atomic_store_explicit(&e->cursor, 0, memory_order_relaxed);
            atomic_store_explicit(&e->reconnects, 0, memory_order_relaxed);
            atomic_store_explicit(&e->redelivered, 0, memory_order_relaxed);
            ch->ep = e;
            ch->ep_index = i;
            ch->me = shml_holder(i, shml_ep_gen(mine));
            return 0;
        }
    }
    return shml__fail(EUSERS, "all %u endpoints of the channel are in use by live processes",
                      g->nendpoints);
}

/* ---- create, open, close ---- */

void shml__chan_set_role(shml_channel *ch)
{
    /* seq_cst: pairs with the role loads of publishers, inspectors and server scans. */
    atomic_store_explicit(&ch->ep->role, ch->role, memory_order_seq_cst);
}

/* Build the endpoint for a mapped channel of validated geometry g (copied into the handle). */
static int endpoint(shml_segment *seg, const struct shml__chan_geo *g, unsigned role,
                    const struct shml_channel_opts *o, shml_channel **out)
{
    shml_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->seg = seg;
    ch->geo = *g;
    ch->hdr = g->hdr;
    ch->k = g->k;
    ch->slots = g->slots;
    ch->mask = g->nslots - 1;
    ch->stride = g->stride;
    ch->max_msg = g->max_msg;
    ch->type_bytes = g->type_bytes;
    ch->policy = g->policy;
    ch->role = role;
    ch->wait = o->wait;
    ch->spin = o->spin ? o->spin : DEFAULT_SPIN;
    ch->wait_server = (o->flags & SHML_WAIT) != 0;
    ch->bridge = (o->flags & SHML_BRIDGE) != 0;
    ch->spsc = (g->flags & SHML_CHANF_SPSC) != 0;
    ch->pid = (uint32_t)shml__os_pid();
    if (o->durable)
        ch->durable_tag = shml_ep_tag(o->durable);
    uint32_t old = 0;
    int r = ep_claim(ch, &old);
    if (r < 0) {
        free(ch);
        return r;
    }
    if (r == 1)
        g->k->take_over(ch, old); /* the role is the dead one's, already stored */
    else if (!g->k->attach)
        shml__chan_set_role(ch);
    else if ((r = g->k->attach(ch)) < 0) {
        uint64_t mine = atomic_load_explicit(&ch->ep->state, memory_order_relaxed);
        ep_free(&ch->geo, ch->ep_index, mine);
        free(ch);
        return r;
    }
    *out = ch;
    return 0;
}

/*
 * Write the control block, the tables and every slot, in the fresh data of a segment nobody
 * can open yet (shml__segment_create_with() publishes it READY afterwards, with release).
 */
static int init_block(shml_segment *seg, void *ctx)
{
    void *data = shml_segment_data(seg);
    const struct shml_chan_hdr *g = ctx;
    struct shml_chan_hdr *h = data;
    h->magic = g->magic;
    h->version = g->version;
    h->kind = g->kind;
    h->flags = g->flags;
    h->nslots = g->nslots;
    h->stride = g->stride;
    h->max_msg = g->max_msg;
    h->slots_off = g->slots_off;
    h->policy = g->policy;
    h->nendpoints = g->nendpoints;
    h->ep_off = g->ep_off;
    h->box_off = g->box_off;
    h->box_stride = g->box_stride;
    h->type_itemsize = g->type_itemsize;
    h->type_ndim = g->type_ndim;
    h->type_format_len = g->type_format_len;
    memcpy(h->type_shape, g->type_shape, sizeof(h->type_shape));
    memcpy(h->type_format, g->type_format, sizeof(h->type_format));
    shml_event_init((shml_event *)&h->not_empty);
    shml_event_init((shml_event *)&h->not_full);
    /* The slots and mailboxes, from the creator's own geometry (ctx, private). */
    const struct shml__kind *k = shml__kind(g->kind);
    if (k->init)
        k->init(h, g);
    return 0;
}

static int check_opts(const struct shml_channel_opts *o)
{
    const struct shml__kind *k = shml__kind(o->kind ? o->kind : SHML_QUEUE);
    if (!k)
        return shml__fail(EINVAL, "unknown channel kind %u", o->kind);
    if (o->policy > SHML_OVERWRITE)
        return shml__fail(EINVAL, "unknown policy %u", o->policy);
    if (o->policy == SHML_OVERWRITE && !k->overwrite)
        return shml__fail(EINVAL, "SHML_OVERWRITE is a bus policy; this kind only blocks");
    if (o->wait > SHML_WAIT_BLOCK)
        return shml__fail(EINVAL, "unknown wait strategy %u", o->wait);
    if (o->flags & ~(SHML_SPSC | SHML_OWNED))
        return shml__fail(EINVAL, "unknown channel flags 0x%x",
                          o->flags & ~(SHML_SPSC | SHML_OWNED));
    if ((o->flags & SHML_SPSC) && !k->spsc)
        return shml__fail(EINVAL, "SHML_SPSC is for queues");
    if (o->max_msg > MAX_MAX_MSG)
        return shml__fail(EINVAL, "max_msg %zu is larger than %zu", o->max_msg, MAX_MAX_MSG);
    if (o->role & ~(SHML_PRODUCER | SHML_CONSUMER))
        return shml__fail(EINVAL, "unknown role 0x%x", o->role);
    if (k->two_way && o->role == (SHML_CLIENT | SHML_SERVER))
        return shml__fail(EINVAL, "an rpc endpoint is a client or a server, not both");
    if (o->type && o->type->format[0] != '\0') {
        const struct shml_channel_type *t = o->type;
        for (size_t i = 0; i < SHML_ARRAY_LEN(t->reserved); i++) {
            if (t->reserved[i] != 0)
                return shml__fail(EINVAL, "the message type's reserved space is not zero: "
                                          "a field of a newer shmlink, or a type not "
                                          "zeroed before it was filled");
        }
        uint64_t ts = type_size(t->format, sizeof(t->format), t->itemsize, t->ndim, t->shape);
        if (ts == 0)
            return shml__fail(EINVAL, "the message type is invalid: its format must be "
                                      "printable text of at most %u bytes, its itemsize above "
                                      "0, its shape at most %u non-zero dimensions",
                              SHML_TYPE_FORMAT_MAX - 1, SHML_TYPE_NDIM_MAX);
        if (o->max_msg && ts > o->max_msg)
            return shml__fail(EINVAL, "a message of the type has %llu bytes, above max_msg %zu",
                              (unsigned long long)ts, o->max_msg);
        if (ts > MAX_MAX_MSG)
            return shml__fail(EINVAL, "a message of the type has %llu bytes, above %zu",
                              (unsigned long long)ts, MAX_MAX_MSG);
    }
    if (o->endpoints > SHML_EP_MAX)
        return shml__fail(EINVAL, "%u endpoints; a channel has at most %u", o->endpoints,
                          SHML_EP_MAX);
    if (o->durable)
        return shml__fail(EINVAL, "opts.durable is for shml_channel_open(): a durable endpoint "
                                  "opens a channel that exists");
    return 0;
}

/* opts.durable at open, once the kind is known: a named queue or bus endpoint of one role.
   No consumer on a SHML_SPSC queue, whose consumer takes a slot with a plain store, which a
   successor's acquire cannot pair the producer's writes through (a producer's successor reads
   no message: it only tells published from not, by the slot's state). */
static int check_durable(const struct shml_channel_opts *o, const struct shml__chan_geo *g,
                         unsigned role)
{
    if (!o->durable)
        return 0;
    size_t n = strnlen(o->durable, 256);
    if (n == 0 || n > 255)
        return shml__fail(EINVAL, "a durable endpoint's name has 1 to 255 bytes");
    if (!g->k->take_over || (role != SHML_CONSUMER && role != SHML_PRODUCER))
        return shml__fail(EINVAL, "durable endpoints are queue consumers and producers, and bus "
                                  "subscribers and publishers");
    if ((g->flags & SHML_CHANF_SPSC) && role == SHML_CONSUMER)
        return shml__fail(EINVAL, "a durable consumer needs a queue made without SHML_SPSC");
    return 0;
}

int shml_channel_create(const char *addr, const struct shml_channel_opts *opts,
                        shml_channel **out)
{
    shml__clear_error();
    if (!out)
        return shml__fail(EINVAL, "out is NULL");
    *out = NULL;
    struct shml_channel_opts oc;
    int r = read_opts(opts, &oc);
    if (r < 0)
        return r;
    const struct shml_channel_opts *o = &oc;
    r = check_opts(o);
    if (r < 0)
        return r;
    uint32_t kind = o->kind ? o->kind : SHML_QUEUE;
    const struct shml__kind *k = shml__kind(kind); /* known: check_opts() */
    const struct shml_channel_type *type = o->type && o->type->format[0] ? o->type : NULL;
    size_t max_msg = o->max_msg ? o->max_msg : DEFAULT_MAX_MSG;
    if (type && !o->max_msg)
        max_msg = (size_t)type_size(type->format, sizeof(type->format), type->itemsize,
                                    type->ndim, type->shape);
    size_t capacity = o->capacity ? o->capacity : DEFAULT_CAPACITY;
    uint32_t nep = o->endpoints ? o->endpoints : SHML_EP_DEFAULT;
    uint64_t stride = shml__round_up(slot_overhead(k) + (uint64_t)max_msg, 64);
    uint64_t n = k->min_slots;
    while (n * 2 <= MAX_SLOTS && n * 2 * stride <= capacity)
        n *= 2;
    uint64_t box_stride = box_stride_for(k, max_msg);
    uint64_t box_off;
    uint64_t slots_off = layout_slots_off(k, nep, box_stride, &box_off);
    if (stride > UINT32_MAX || box_stride > UINT32_MAX ||
        n * stride > SIZE_MAX - slots_off - 4096 || nep * box_stride > SIZE_MAX / 2)
        return shml__fail(EOVERFLOW, "channel of %llu slots of %llu bytes is too large",
                          (unsigned long long)n, (unsigned long long)stride);

    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.mode = o->mode;
    so.flags = o->flags & SHML_OWNED;
    so.kind = kind;
    struct shml_chan_hdr geometry = {
        .magic = SHML_CHAN_MAGIC,
        .version = SHML_CHAN_VERSION,
        .kind = kind,
        .flags = (o->flags & SHML_SPSC) ? SHML_CHANF_SPSC : 0,
        .nslots = (uint32_t)n,
        .stride = (uint32_t)stride,
        .max_msg = max_msg,
        .slots_off = slots_off,
        .policy = o->policy,
        .nendpoints = nep,
        .ep_off = SHML_CHAN_HDR,
        .box_off = box_off,
        .box_stride = (uint32_t)box_stride,
    };
    if (type) {
        geometry.type_itemsize = type->itemsize;
        geometry.type_ndim = type->ndim;
        geometry.type_format_len = (uint32_t)strlen(type->format);
        memcpy(geometry.type_format, type->format, geometry.type_format_len + 1);
        for (uint32_t d = 0; d < type->ndim; d++)
            geometry.type_shape[d] = type->shape[d];
    }
    shml_segment *seg;
    r = shml__segment_create_with(addr, (size_t)(slots_off + n * stride), &so, init_block,
                                  &geometry, &seg);
    if (r < 0)
        return r;
    unsigned role = o->role ? o->role : k->default_role;
    /* Our own block, but copied and validated as an opener's: from here on the mapping is
       shared, and the handle keeps what was checked. */
    struct shml__chan_geo g;
    r = shml__chan_geo_load(shml_segment_data(seg), shml_segment_size(seg), &g);
    if (r == 0)
        r = endpoint(seg, &g, role, o, out);
    if (r < 0) {
        shml_segment_close(seg);
        shml_segment_unlink(addr);
    }
    return r;
}

/* Open the segment at addr, check that it holds a channel, and copy its geometry into *g. */
static int open_checked(const char *addr, struct shml_segment_opts *so, shml_segment **out,
                        struct shml__chan_geo *g)
{
    shml_segment *seg;
    int r = shml_segment_open(addr, so, &seg);
    if (r < 0)
        return r;
    uint32_t kind = shml__segment_kind(seg);
    if (!shml__kind(kind))
        r = shml__fail(SHML_EWRONGKIND, "%s is a segment of kind %u, not a channel", addr,
                       kind);
    if (r == 0)
        r = shml__chan_geo_load(shml_segment_data(seg), shml_segment_size(seg), g);
    if (r == 0 && g->kind != kind)
        r = shml__fail(SHML_ECORRUPT, "channel kind %u differs from the segment's %u", g->kind,
                       kind);
    if (shml__segment_lost(seg) < 0)
        r = -SHML_ETRUNCATED; /* truncated since open: what was validated was zeros */
    if (r < 0) {
        shml_segment_close(seg);
        return r;
    }
    *out = seg;
    return 0;
}

int shml_channel_open(const char *addr, unsigned role, const struct shml_channel_opts *opts,
                      shml_channel **out)
{
    shml__clear_error();
    if (!out)
        return shml__fail(EINVAL, "out is NULL");
    *out = NULL;
    if (role == 0 || (role & ~(SHML_PRODUCER | SHML_CONSUMER)))
        return shml__fail(EINVAL, "role must be SHML_PRODUCER, SHML_CONSUMER or both");
    struct shml_channel_opts oc;
    int r = read_opts(opts, &oc);
    if (r < 0)
        return r;
    const struct shml_channel_opts *o = &oc;
    if (o->wait > SHML_WAIT_BLOCK)
        return shml__fail(EINVAL, "unknown wait strategy %u", o->wait);
    const uint32_t known = SHML_SPSC | SHML_OWNED | SHML_WAIT | SHML_BRIDGE;
    if (o->flags & ~known)
        return shml__fail(EINVAL, "unknown channel flags 0x%x", o->flags & ~known);
    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    if (o->flags & SHML_WAIT) {
        so.flags = SHML_WAIT;
        so.timeout_ns = o->timeout_ns;
    }
    so.role = role == SHML_PRODUCER   ? SHML_ROLE_PRODUCER
              : role == SHML_CONSUMER ? SHML_ROLE_CONSUMER
                                      : SHML_ROLE_ENDPOINT;
    shml_segment *seg;
    struct shml__chan_geo g;
    r = open_checked(addr, &so, &seg, &g);
    if (r < 0)
        return r;
    if (g.k->two_way && role == (SHML_CLIENT | SHML_SERVER))
        r = shml__fail(EINVAL, "an rpc endpoint is a client or a server, not both");
    else if ((r = check_durable(o, &g, role)) == 0)
        r = endpoint(seg, &g, role, o, out);
    if (r == 0 && shml__segment_lost(seg) < 0) {
        r = -SHML_ETRUNCATED; /* truncated while the endpoint was taken */
        shml_channel_close(*out);
        *out = NULL;
        return r;
    }
    if (r < 0)
        shml_segment_close(seg);
    return r;
}

/*
 * Is `ch` a handle this process inherited through fork()? Its endpoint entry, claims and
 * peeks are the parent's (they name the parent's pid): the child must neither use nor free
 * them. The pid is cached by the os layer and reset in every fork()ed child: one load.
 */
static bool inherited(const shml_channel *ch)
{
    return ch->pid != (uint32_t)shml__os_pid();
}

/* -ECHILD, said, for a call on a handle inherited through fork(). */
static int refuse_inherited(void)
{
    return shml__fail(ECHILD, "this handle was opened by the parent process before fork(): "
                              "open the channel again in the child");
}

int shml_channel_close(shml_channel *ch)
{
    if (!ch)
        return 0;
    shml__waitset_forget(ch);
    if (inherited(ch)) {
        /* The parent's endpoint goes on: the child only unmaps what it inherited (and closes
           the descriptors it inherited, whose names stay the parent's). */
        shml__chan_note_close(ch, false);
        free(ch->scratch);
        shml_segment_close(ch->seg);
        free(ch);
        return 0;
    }
    if (shml__segment_lost(ch->seg) < 0) {
        /* The mapping is zeros since a peer truncated the object: nothing left to give back. */
        shml__chan_note_close(ch, true);
        free(ch->scratch);
        shml_segment_close(ch->seg);
        free(ch);
        return 0;
    }
    ops_of(ch)->abandon(ch);
    uint64_t mine = atomic_load_explicit(&ch->ep->state, memory_order_relaxed);
    shml__chan_note_release(&ch->geo, ch->ep_index, (int32_t)ch->pid);
    ep_undo(&ch->geo, ch->ep_index);
    ep_free(&ch->geo, ch->ep_index, mine);
    if (ch->k->detach)
        ch->k->detach(ch);
    /* Last: the wakes above signal armed peers through this handle's table of their
       descriptors, which this frees. */
    shml__chan_note_close(ch, false);
    shml_segment_close(ch->seg);
    free(ch);
    return 0;
}

/* ---- waiting ---- */

static int wait_on(shml_channel *ch, shml__try_fn try, size_t arg, struct shml_event_layout *e,
                   int64_t timeout_ns, void **slot, uint64_t *pos, bool *behind_out)
{
    bool behind = false;
    int r = try(ch, arg, slot, pos, &behind);
    *behind_out = behind;
    if (r != -EAGAIN)
        return r;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    if (!ch->has_deadline) {
        ch->deadline = shml__deadline(timeout_ns);
        ch->has_deadline = true;
    }
    int64_t deadline = ch->deadline;
    if (ch->wait != SHML_WAIT_BLOCK) {
        uint32_t spins = ch->wait == SHML_WAIT_SPIN ? UINT32_MAX : ch->spin;
        for (uint32_t i = 0; i < spins; i++) {
            shml__os_cpu_relax();
            r = try(ch, arg, slot, pos, &behind);
            if (r != -EAGAIN)
                return r;
            if ((i & 1023) == 1023) {
                /* Relaxed: the interrupt flag is a request, re-read at every look. */
                if (atomic_exchange_explicit(&ch->intr, 0, memory_order_relaxed))
                    return -EINTR;
                if (shml__cancelled())
                    return -ECANCELED;
                if ((r = shml__segment_lost(ch->seg)) < 0)
                    return r;
                if (deadline >= 0 && shml__os_mono_ns() >= deadline) {
                    *behind_out = behind;
                    return -ETIMEDOUT;
                }
            }
        }
    }
    /* seq_cst: pairs with the load in shml_channel_interrupt() (see the loop below). */
    atomic_store_explicit(&ch->sleeping_on, e, memory_order_seq_cst);
    for (;;) {
        uint32_t gen = shml__event_gen(e);
        uint64_t ticket = shml__event_arrive(e);
        r = try(ch, arg, slot, pos, &behind);
        /* seq_cst: pairs with the store of intr in shml_channel_interrupt(), which then reads
           sleeping_on: either we see the flag here, or it wakes the event we sleep on. */
        if (r == -EAGAIN && atomic_exchange_explicit(&ch->intr, 0, memory_order_seq_cst))
            r = -EINTR;
        if (r != -EAGAIN) {
            shml__event_depart(e, ticket);
            break;
        }
        /* Look again soon if a live endpoint holds what we need (it may die), and now and then
           anyway (the object may have been truncated: LOST_CHECK_NS). */
        int64_t soon = shml__os_mono_ns() + (behind ? HOLDER_CHECK_NS : LOST_CHECK_NS);
        int64_t until = deadline < 0 || soon < deadline ? soon : deadline;
        atomic_store_explicit(&ch->ep->sleeps, ++ch->n_sleeps, memory_order_relaxed);
        int slept = shml__event_sleep(e, gen, ticket, until);
        bool timed_out = slept == -ETIMEDOUT;
        ch->probe = true;
        r = try(ch, arg, slot, pos, &behind);
        if (r == -EAGAIN && shml__segment_lost(ch->seg) < 0) {
            r = -SHML_ETRUNCATED;
            break;
        }
        if (r != -EAGAIN)
            break;
        if (slept == -ECANCELED) {
            r = -ECANCELED; /* the thread's token fired (sync.h); the try above came first */
            break;
        }
        if (timed_out && deadline >= 0 && shml__os_mono_ns() >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
    }
    atomic_store_explicit(&ch->sleeping_on, NULL, memory_order_relaxed);
    *behind_out = behind;
    return r;
}

int shml__chan_wait(shml_channel *ch, shml__try_fn try, size_t arg, struct shml_event_layout *e,
                    int64_t timeout_ns, void **slot, uint64_t *pos)
{
    bool behind = false;
    int r = wait_on(ch, try, arg, e, timeout_ns, slot, pos, &behind);
    if (r != -ETIMEDOUT || !ch->has_note)
        return r;
    /* Nothing to do: arm the descriptor, then look once more (a waker that came before the
       arming signalled nobody; notify.c). */
    shml__chan_arm(ch, e, behind);
    behind = false;
    r = try(ch, arg, slot, pos, &behind);
    if (r == -EAGAIN) {
        /* Never arm again here: a waker may have signalled the arming since the look, and an
           arming drains the descriptor first, without a look after it. */
        if (behind)
            shml__chan_retry_soon(ch);
        return -ETIMEDOUT;
    }
    /* Found after all: the arming drained the descriptor, and more may wait behind this
       one. Readable again, so that a loop that stops after this call is woken (the next call
       that finds nothing arms it again). */
    shml__chan_disarm(ch, e);
    shml__chan_note_self(ch);
    return r;
}

int shml__chan_claim(shml_channel *ch, shml__try_fn try, size_t len, size_t skip, void **buf,
                     int64_t timeout_ns)
{
    void *slot;
    uint64_t pos;
    int r = shml__chan_wait(ch, try, 0, &ch->hdr->not_full, timeout_ns, &slot, &pos);
    if (r < 0)
        return r;
    ch->claimed = slot;
    ch->claimed_pos = pos;
    ch->claimed_len = len;
    *buf = (char *)slot + skip;
    return 0;
}

int shml_channel_interrupt(shml_channel *ch)
{
    if (!ch)
        return -EINVAL;
    /* seq_cst: pairs with the exchange in shml__chan_wait() (see there). */
    atomic_store_explicit(&ch->intr, 1, memory_order_seq_cst);
    struct shml_event_layout *e = atomic_load_explicit(&ch->sleeping_on, memory_order_seq_cst);
    if (e)
        shml_event_notify((shml_event *)e, SHML_WAKE_ALL);
    return 0;
}

/* ---- the public calls ---- */

/*
 * The result of a call that touched the mapping, or -SHML_ETRUNCATED if the mapping was lost
 * meanwhile (a peer truncated the object): what the call read or wrote there was zeros.
 */
static ssize_t unless_lost(const shml_channel *ch, ssize_t r)
{
    int lost = shml__segment_lost(ch->seg);
    return lost < 0 ? lost : r;
}

/* -ECHILD or -SHML_ETRUNCATED (said) for a handle that cannot be used any more, else 0. */
static int check_usable(const shml_channel *ch)
{
    return inherited(ch) ? refuse_inherited() : shml__segment_lost(ch->seg);
}

/*
 * A typed channel's readers view each message as one array of the type (the Python module
 * refuses any other size), so a message of another size would be sent only to be lost.
 */
static int check_type_size(const shml_channel *ch, size_t len)
{
    if (ch->type_bytes && len != ch->type_bytes)
        return shml__fail(EMSGSIZE, "message of %zu bytes; a message of this typed channel is "
                                    "one array of its type: %llu bytes",
                          len, (unsigned long long)ch->type_bytes);
    return 0;
}

static int check_send(shml_channel *ch, size_t len)
{
    if (!ch)
        return -EINVAL;
    int r = check_usable(ch);
    if (r < 0)
        return r;
    if (!(ch->role & SHML_PRODUCER) && !ch->k->two_way)
        return shml__fail(EBADF, "this endpoint was opened without SHML_PRODUCER");
    if (ch->claimed)
        return shml__fail(EBUSY, "a claim is open on this endpoint: commit it first");
    if (len > ch->max_msg)
        return shml__fail(EMSGSIZE, "message of %zu bytes; the channel takes at most %llu", len,
                          (unsigned long long)ch->max_msg);
    return 0;
}

static int check_recv(shml_channel *ch)
{
    if (!ch)
        return -EINVAL;
    int r = check_usable(ch);
    if (r < 0)
        return r;
    if (!(ch->role & SHML_CONSUMER) && !ch->k->two_way)
        return shml__fail(EBADF, "this endpoint was opened without SHML_CONSUMER");
    if (ch->peeked)
        return shml__fail(EBUSY, "a peek is open on this endpoint: release it first");
    return 0;
}

ssize_t shml_send(shml_channel *ch, const void *msg, size_t len, int64_t timeout_ns)
{
    int r = check_send(ch, len);
    if (r == 0)
        r = check_type_size(ch, len);
    if (r < 0)
        return r;
    if (!msg && len)
        return -EINVAL;
    const struct shml__chan_ops *ops = ops_of(ch);
    void *buf;
    ch->has_deadline = false;
    r = ops->claim(ch, len, &buf, timeout_ns);
    if (r < 0)
        return unless_lost(ch, r);
    if (len)
        memcpy(buf, msg, len);
    r = ops->commit(ch, len);
    return unless_lost(ch, r < 0 ? r : (ssize_t)len);
}

ssize_t shml_recv(shml_channel *ch, void *buf, size_t cap, int64_t timeout_ns)
{
    int r = check_recv(ch);
    if (r < 0)
        return r;
    if (!buf && cap)
        return -EINVAL;
    const struct shml__chan_ops *ops = ops_of(ch);
    ch->has_deadline = false;
    uint64_t gap = 0;
    for (;;) {
        const void *src;
        size_t len;
        r = ops->peek(ch, cap, &src, &len, timeout_ns);
        if (r == -EMSGSIZE)
            return shml__fail(EMSGSIZE, "the next message is longer than the %zu-byte buffer",
                              cap);
        if (r < 0)
            return unless_lost(ch, r);
        gap += ch->gap;
        if (len)
            memcpy(buf, src, len);
        ch->received_any = true; /* peeked_pos names it */
        r = ops->release(ch);
        if (r != -ESTALE) {
            ch->gap = gap;
            return unless_lost(ch, r < 0 ? r : (ssize_t)len);
        }
        /* Bus, overwrite: lapped while copying; the gap is counted; read the next one
           (within the same deadline). */
        gap += ch->gap;
    }
}

int shml_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns)
{
    int r = check_send(ch, len);
    if (r < 0)
        return r;
    if (!buf)
        return -EINVAL;
    ch->has_deadline = false;
    return (int)unless_lost(ch, ops_of(ch)->claim(ch, len, buf, timeout_ns));
}

int shml_commit(shml_channel *ch, size_t len)
{
    if (!ch || !ch->claimed)
        return -EINVAL;
    int r = check_usable(ch);
    if (r < 0)
        return r;
    if (len > ch->claimed_len)
        return shml__fail(EINVAL, "commit of %zu bytes after a claim of %zu", len,
                          ch->claimed_len);
    r = check_type_size(ch, len);
    if (r < 0) {
        /* Withdrawn, so the handle is usable again and nothing half-typed is published. */
        ops_of(ch)->discard(ch);
        return r;
    }
    return (int)unless_lost(ch, ops_of(ch)->commit(ch, len));
}

int shml_discard(shml_channel *ch)
{
    if (!ch || !ch->claimed)
        return -EINVAL;
    int r = check_usable(ch);
    if (r < 0)
        return r;
    ops_of(ch)->discard(ch);
    return 0;
}

int shml_peek(shml_channel *ch, const void **buf, size_t *len, int64_t timeout_ns)
{
    int r = check_recv(ch);
    if (r < 0)
        return r;
    if (!buf || !len)
        return -EINVAL;
    ch->has_deadline = false;
    r = (int)unless_lost(ch, ops_of(ch)->peek(ch, SIZE_MAX, buf, len, timeout_ns));
    if (r == 0)
        ch->received_any = true; /* peeked_pos names it */
    return r;
}

int shml_release(shml_channel *ch)
{
    if (!ch || !ch->peeked)
        return -EINVAL;
    int r = check_usable(ch);
    if (r < 0)
        return r;
    return (int)unless_lost(ch, ops_of(ch)->release(ch));
}

ssize_t shml_send_batch(shml_channel *ch, const struct shml_iov *msgs, size_t n,
                        int64_t timeout_ns)
{
    int r = check_send(ch, 0);
    if (r < 0)
        return r;
    if (!msgs || n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].len > ch->max_msg)
            return shml__fail(EMSGSIZE, "message %zu of the batch has %zu bytes; the channel "
                                        "takes at most %llu",
                              i, msgs[i].len, (unsigned long long)ch->max_msg);
        r = check_type_size(ch, msgs[i].len);
        if (r < 0)
            return r;
        if (!msgs[i].base && msgs[i].len)
            return -EINVAL;
    }
    ch->has_deadline = false;
    if (!ch->k->send_batch)
        return shml__fail(ENOTSUP, "batch calls are for queues and buses");
    return unless_lost(ch, ch->k->send_batch(ch, msgs, n, timeout_ns));
}

ssize_t shml_recv_batch(shml_channel *ch, void *buf, size_t cap, size_t *lens, size_t n,
                        int64_t timeout_ns)
{
    int r = check_recv(ch);
    if (r < 0)
        return r;
    if ((!buf && cap) || !lens || n == 0)
        return -EINVAL;
    ch->has_deadline = false;
    if (!ch->k->recv_batch)
        return shml__fail(ENOTSUP, "batch calls are for queues and buses");
    ssize_t got = ch->k->recv_batch(ch, buf, cap, lens, n, timeout_ns);
    if (got == -EMSGSIZE)
        return shml__fail(EMSGSIZE, "the next message is longer than the %zu-byte buffer", cap);
    return unless_lost(ch, got);
}

uint64_t shml_recv_gap(const shml_channel *ch)
{
    return ch ? ch->gap : 0;
}

int shml_channel_position(const shml_channel *ch, uint64_t *pos)
{
    if (!ch || !pos || !ch->k->take_over)
        return -EINVAL;
    if (!ch->received_any)
        return -ENOENT;
    *pos = ch->peeked_pos;
    return 0;
}

/* A durable queue producer's or bus publisher's handle? */
static bool durable_producer(const shml_channel *ch)
{
    return ch->durable_tag && ch->role == SHML_PRODUCER &&
           (ch->k->kind == SHML_QUEUE || ch->k->kind == SHML_BUS);
}

int shml_channel_set_mark(shml_channel *ch, uint64_t mark)
{
    if (!ch || !durable_producer(ch))
        return -EINVAL;
    ch->mark = mark;
    return 0;
}

int shml_channel_mark(const shml_channel *ch, uint64_t *mark)
{
    if (!ch || !mark || !durable_producer(ch))
        return -EINVAL;
    if (!ch->mark_known)
        return -ENOENT;
    *mark = ch->published_mark;
    return 0;
}

/* The flags shml_endpoint_stats shows of an entry's (layout.h) flags word. */
static uint32_t ep_public_flags(uint32_t f)
{
    return ((f & SHML_EP_FLAG_BRIDGE) ? SHML_BRIDGE : 0) |
           ((f & SHML_EP_FLAG_DURABLE) ? SHML_DURABLE : 0);
}

/* ---- stats and inspection ---- */

/* The stored type, from the validated private geometry (NUL-ended format, ndim <= 8). */
static void copy_type(const struct shml__chan_geo *g, struct shml_channel_type *type)
{
    _Static_assert(sizeof(type->format) <= sizeof(g->type_format), "type format size");
    memset(type, 0, sizeof(*type));
    memcpy(type->format, g->type_format, sizeof(type->format));
    type->format[sizeof(type->format) - 1] = '\0';
    type->itemsize = g->type_itemsize;
    type->ndim = g->type_ndim;
    for (uint32_t d = 0; d < type->ndim; d++)
        type->shape[d] = g->type_shape[d];
}

/* Stats of a mapped channel of validated geometry g, plus the endpoint table into eps. */
static void fill_stats(const struct shml__chan_geo *g, struct shml_channel_stats *st,
                       struct shml_endpoint_stats *eps, size_t cap, size_t *count)
{
    struct shml_chan_hdr *h = g->hdr;
    memset(st, 0, sizeof(*st));
    st->kind = g->kind;
    st->flags = (g->flags & SHML_CHANF_SPSC) ? SHML_SPSC : 0;
    st->slots = g->nslots;
    st->slot_size = g->stride;
    st->max_msg = g->max_msg;
    st->policy = g->policy;
    st->endpoints = g->nendpoints;
    copy_type(g, &st->type);
    /* Relaxed loads throughout: a snapshot of statistics. */
    uint64_t enq = atomic_load_explicit(&h->enq, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&h->deq, memory_order_relaxed);
    st->sent = atomic_load_explicit(&h->closed.sent, memory_order_relaxed);
    st->bytes_sent = atomic_load_explicit(&h->closed.bytes_sent, memory_order_relaxed);
    st->received = atomic_load_explicit(&h->closed.received, memory_order_relaxed);
    st->bytes_received = atomic_load_explicit(&h->closed.bytes_received, memory_order_relaxed);
    st->drops = atomic_load_explicit(&h->closed.drops, memory_order_relaxed);
    st->sleeps = atomic_load_explicit(&h->closed.sleeps, memory_order_relaxed);
    st->lost = atomic_load_explicit(&h->lost, memory_order_relaxed);
    uint64_t slowest = UINT64_MAX;
    size_t used = 0;
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(g, i);
        uint64_t state = atomic_load_explicit(&e->state, memory_order_relaxed);
        /* seq_cst: pairs with the store of role when the entry was claimed. */
        uint32_t role = atomic_load_explicit(&e->role, memory_order_seq_cst);
        if (!shml_ep_used(state))
            continue;
        used++;
        struct shml_endpoint_stats es = {
            .index = i,
            .pid = (int32_t)shml_ep_pid(state),
            .role = role,
            .alive = shml__chan_ep_alive(e) != 0,
            .messages = atomic_load_explicit(&e->sent, memory_order_relaxed) +
                        atomic_load_explicit(&e->received, memory_order_relaxed),
            .bytes = atomic_load_explicit(&e->bytes_sent, memory_order_relaxed) +
                     atomic_load_explicit(&e->bytes_received, memory_order_relaxed),
            .drops = atomic_load_explicit(&e->drops, memory_order_relaxed),
            .sleeps = atomic_load_explicit(&e->sleeps, memory_order_relaxed),
            .flags = ep_public_flags(atomic_load_explicit(&e->flags, memory_order_relaxed)),
            .reconnects = atomic_load_explicit(&e->reconnects, memory_order_relaxed),
            .redelivered = atomic_load_explicit(&e->redelivered, memory_order_relaxed),
        };
        uint64_t cursor = atomic_load_explicit(&e->cursor, memory_order_relaxed);
        if ((role & SHML_CONSUMER) && g->k->lag) {
            es.lag = g->k->lag(enq, cursor);
            if (cursor < slowest)
                slowest = cursor;
        }
        st->sent += atomic_load_explicit(&e->sent, memory_order_relaxed);
        st->bytes_sent += atomic_load_explicit(&e->bytes_sent, memory_order_relaxed);
        st->received += atomic_load_explicit(&e->received, memory_order_relaxed);
        st->bytes_received += atomic_load_explicit(&e->bytes_received, memory_order_relaxed);
        st->drops += es.drops;
        st->sleeps += es.sleeps;
        if (used <= cap)
            eps[used - 1] = es;
    }
    st->attached = (uint32_t)used;
    if (count)
        *count = used;
    st->queued = g->k->queued ? g->k->queued(g, enq, deq, slowest) : 0;
}

int shml_refuse(shml_channel *ch)
{
    if (!ch)
        return -EINVAL;
    if (inherited(ch))
        return refuse_inherited();
    if (ch->k->kind != SHML_RPC)
        return shml__fail(EINVAL, "shml_refuse() answers an rpc request; this is a %s channel",
                          shml_kind_name(ch->k->kind));
    int r = check_usable(ch);
    if (r < 0)
        return r;
    return (int)unless_lost(ch, shml__rpc_refuse(ch));
}

int shml_channel_count(shml_channel *ch, uint32_t counter, uint64_t n)
{
    if (!ch)
        return -EINVAL;
    if (inherited(ch))
        return refuse_inherited();
    /* Relaxed: counters this handle alone writes, read as statistics. */
    switch (counter) {
    case SHML_COUNT_DROPS:
        shml__chan_count_drops(ch, n);
        return 0;
    case SHML_COUNT_RECONNECTS:
        atomic_fetch_add_explicit(&ch->ep->reconnects, (uint32_t)n, memory_order_relaxed);
        return 0;
    case SHML_COUNT_REDELIVERED:
        atomic_fetch_add_explicit(&ch->ep->redelivered, n, memory_order_relaxed);
        return 0;
    default:
        return shml__fail(EINVAL, "unknown counter %u", counter);
    }
}

int shml_channel_get_stats(const shml_channel *ch, struct shml_channel_stats *st)
{
    if (!ch || !st)
        return -EINVAL;
    fill_stats(&ch->geo, st, NULL, 0, NULL);
    return (int)unless_lost(ch, 0);
}

int shml_channel_inspect(const char *addr, struct shml_channel_stats *st,
                         struct shml_endpoint_stats *eps, size_t cap, size_t *n)
{
    shml__clear_error();
    if (!st || (!eps && cap))
        return shml__fail(EINVAL, "st is NULL, or eps is NULL with cap %zu", cap);
    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.flags = SHML_RDONLY | SHML_NOATTACH;
    shml_segment *seg;
    struct shml__chan_geo g;
    int r = open_checked(addr, &so, &seg, &g);
    if (r < 0)
        return r;
    fill_stats(&g, st, eps, cap, n);
    r = shml__segment_lost(seg); /* truncated while we read it: what we read was zeros */
    shml_segment_close(seg);
    return r;
}

int shml_channel_check(const char *addr, unsigned flags, shml_check_fn fn, void *ctx)
{
    shml__clear_error();
    if (flags & ~SHML_CHECK_REPAIR)
        return shml__fail(EINVAL, "unknown check flags 0x%x", flags);
    bool repair = (flags & SHML_CHECK_REPAIR) != 0;
    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.flags = SHML_NOATTACH | (repair ? 0 : SHML_RDONLY);
    shml_segment *seg;
    int r = shml_segment_open(addr, &so, &seg);
    if (r < 0)
        return r;
    r = shml__chan_check(seg, repair, fn, ctx);
    int lost = shml__segment_lost(seg); /* truncated meanwhile: what it read was zeros */
    shml_segment_close(seg);
    if (lost < 0)
        return lost;
    return r;
}

int shml_channel_get_type(const shml_channel *ch, struct shml_channel_type *type)
{
    if (!ch || !type)
        return -EINVAL;
    copy_type(&ch->geo, type);
    return (int)unless_lost(ch, 0);
}

shml_segment *shml_channel_segment(const shml_channel *ch)
{
    return ch ? ch->seg : NULL;
}
