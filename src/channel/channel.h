/*
 * channel.h - what the channel files share: the endpoint handle, the endpoint table, waiting,
 * and each kind's descriptor (struct shml__kind: its operations, its lifecycle, recovery and
 * check steps; one per kind file: queue.c, bus.c, latest.c, rpc.c), which channel.c and
 * check.c dispatch to.
 */
#ifndef SHML_CHANNEL_INTERNAL_H
#define SHML_CHANNEL_INTERNAL_H

#include "internal.h"
#include "layout.h"
#include "shmlink/channel.h"
#include "sync/futex.h"

#include <stdbool.h>

/*
 * A channel's geometry: the fixed fields of its control block (layout.h: bytes 0-127 and the
 * message type at 768-1023), copied from the mapping once and validated on that copy
 * (shml__chan_geo_load()). Private memory, not a layout. Every loop bound, offset, index,
 * stride, kind, policy and max_msg is taken from here, never from the mapping again: a
 * process that can write the segment may change the mapped fields at any time, and an offset
 * or count read twice could then lead outside the mapping.
 */
struct shml__chan_geo {
    struct shml_chan_hdr *hdr; /* the control block in this process's mapping: its atomics */
    char *slots;               /* the first slot (latest: buffer): hdr + slots_off */
    const struct shml__kind *k; /* what the kind does (below) */
    uint32_t kind;             /* SHML_QUEUE .. SHML_RPC */
    uint32_t flags;            /* SHML_CHANF_* */
    uint32_t nslots;
    uint32_t stride;
    uint64_t max_msg;
    uint64_t slots_off;
    uint32_t policy;
    uint32_t nendpoints;
    uint64_t ep_off;
    uint64_t box_off;
    uint32_t box_stride;
    uint64_t type_bytes;       /* typed channel: the one size a message has; 0 when untyped */
    uint64_t type_itemsize;
    uint32_t type_ndim;
    uint32_t type_format_len;
    uint64_t type_shape[SHML_TYPE_NDIM_MAX];
    char type_format[176];     /* NUL-ended; all zero when untyped */
};

/*
 * Copy the control block at h (in a segment of `size` data bytes) into *g once, and validate
 * the copy. 0, or -SHML_ECORRUPT / -SHML_EVERSION (reason recorded; *g is then unusable).
 * Whatever the mapping holds later, *g stays what was validated.
 */
SHML_INTERNAL int shml__chan_geo_load(struct shml_chan_hdr *h, size_t size,
                                      struct shml__chan_geo *g);

struct shml_channel {
    shml_segment *seg;
    struct shml_chan_hdr *hdr;
    /* Hot copies of the validated geometry (geo, below): what send and receive use. */
    const struct shml__kind *k; /* the kind's descriptor (geo.k) */
    char *slots;          /* the first slot */
    uint64_t mask;        /* nslots - 1 */
    uint32_t stride;
    uint64_t max_msg;
    uint64_t type_bytes;  /* typed channel: the one size a message has; 0 when untyped */
    uint32_t policy;
    unsigned role;        /* SHML_PRODUCER | SHML_CONSUMER */
    uint32_t wait;        /* SHML_WAIT_* */
    uint32_t spin;        /* polls before sleeping (adaptive) */
    bool spsc;
    bool bridge; /* opened SHML_BRIDGE (its entry says so: SHML_EP_FLAG_BRIDGE) */
    uint32_t durable_tag; /* opened durable: its name's tag (shml_ep_tag()); else 0 */
    /* queue, durable: a message the dead predecessor was reading, which this handle now
       holds (being read by ch->me) and delivers first; its position */
    void *held;
    uint64_t held_pos;
    bool received_any;    /* peeked_pos names a message (shml_channel_position()) */
    /* queue or bus, durable producer: the mark its next messages carry
       (shml_channel_set_mark()), the mark of the last message published (shml_channel_mark())
       and whether that names a message published (else SHML_EP_FLAG_NOMARK is set in the
       entry); the previous two while a bus publication may still fail */
    uint64_t mark;
    uint64_t published_mark, prev_mark;
    bool mark_known, prev_known;
    uint32_t taken_flags; /* a durable successor: the dead predecessor's entry flags */
    uint32_t pid; /* own pid, as the endpoint entry holds it */
    uint32_t me;  /* this handle as slot, buffer, mailbox states name it (shml_holder()) */
    /* this handle's endpoint table entry and the counters it mirrors there */
    struct shml_chan_ep *ep;
    uint32_t ep_index;
    uint64_t n_sent, b_sent, n_recv, b_recv, n_drops, n_sleeps;
    /* shml_channel_interrupt(): a pending interrupt, and the event a wait sleeps on */
    _Atomic int intr;
    _Atomic(struct shml_event_layout *) sleeping_on;
    uint64_t gap;         /* shml_recv_gap() */
    /* the deadline of the public call in progress, computed at its first wait (so that a call
       that need not wait reads no clock, and one that waits twice keeps one bound) */
    int64_t deadline;
    bool has_deadline;
    bool probe;           /* set after a sleep: look for dead holders (system calls) now */
    uint32_t ticks;       /* tries since the last such look */
    void *scratch;        /* rpc server: where a reply to a client that has gone is written */
    /* an open zero-copy operation on this handle */
    void *claimed;        /* shml_claim() .. shml_commit(): the slot or buffer */
    uint64_t claimed_pos;
    size_t claimed_len;
    void *peeked;         /* shml_peek() .. shml_release() */
    uint64_t peeked_pos;
    /* The length of the message the last successful try to read took (queue, bus, rpc) or
       pinned (latest): read once from shared memory and checked against max_msg and the
       caller's capacity there. Peek reports it, release counts it, a copy uses it; the `len`
       in shared memory is never read again, as a hostile peer may change it at any time. */
    size_t peeked_len;
    uint64_t peeked_state; /* bus: the slot state the peek saw */
    /* bus subscriber: next position to read */
    uint64_t cursor;
    uint64_t min_cache;   /* bus publisher: a lower bound of the subscribers' cursors */
    /* latest reader: last version read */
    uint64_t last_version;
    /* rpc client: ticket of the request in flight (awaiting) ; server: the request taken */
    uint32_t ticket;
    bool awaiting;
    bool wait_server;     /* rpc client opened SHML_WAIT: a request waits for a server */
    bool has_request;
    uint32_t req_client;  /* endpoint index of the client */
    uint32_t req_ticket;
    /* shml_channel_fd(): this endpoint's notifier (notify.c), the deadline by which a call
       should look again although nothing signalled it (-1: none), and, as a waker, the
       notifiers of other endpoints it opened (one per entry, made at the first signal). */
    bool has_note;
    intptr_t note;
    uint64_t note_id;
    int64_t note_retry;
    struct shml__note_peer *peers;
    struct shml_waitset *ws; /* the wait set the handle is in (waitset.c), or NULL */
    /* The geometry validated at open (the mapping's is never read again); last, so that the
       fields the hot path uses stay together at the front. */
    struct shml__chan_geo geo;
};

/*
 * Each kind's operations. Arguments are checked by channel.c (role, open claims, sizes). A
 * peek gives *len <= cap (its callers copy that many bytes into a buffer of cap) and no more
 * than max_msg, or an error.
 */
struct shml__chan_ops {
    int (*claim)(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns);
    int (*commit)(shml_channel *ch, size_t len);
    int (*peek)(shml_channel *ch, size_t cap, const void **buf, size_t *len,
                int64_t timeout_ns);
    int (*release)(shml_channel *ch);
    void (*abandon)(shml_channel *ch); /* close: give up an open claim or peek */
    void (*discard)(shml_channel *ch); /* shml_discard: withdraw the open claim */
};
SHML_INTERNAL extern const struct shml__chan_ops shml__queue_ops;

struct shml__checker; /* check.c: what a kind's check step reports through */

/*
 * A channel kind: everything that varies by kind, in one place. Each kind's file defines its
 * own (queue.c, bus.c, latest.c, rpc.c); channel.c keeps the table (shml__kind()) and the
 * code every kind shares, and asks the descriptor wherever kinds differ. A NULL hook means
 * the kind has nothing to do there. Recovery hooks take the validated geometry, never a
 * handle, so that the runtime and a repair (check.c) run the same steps.
 */
struct shml__kind {
    uint32_t kind;         /* SHML_QUEUE .. SHML_RPC */
    uint32_t slot_hdr;     /* bytes before a message in a slot (latest: a buffer) */
    uint32_t msg_extra;    /* bytes a slot holds besides the message (rpc: the tag) */
    uint32_t min_slots;    /* fewest slots (buffers) a channel of the kind has */
    bool mailboxes;        /* a reply mailbox per endpoint entry (rpc) */
    bool overwrite;        /* SHML_OVERWRITE is one of its policies (bus) */
    bool spsc;             /* SHML_SPSC is one of its flags (queue) */
    bool two_way;          /* every endpoint sends and receives, as a client or a server, never
                              both (rpc) */
    unsigned default_role; /* the creator's role when the options give none */
    const struct shml__chan_ops *ops;
    /* Create: write the initial slot (and mailbox) states into the fresh block h, from the
       creator's private geometry g. */
    void (*init)(struct shml_chan_hdr *h, const struct shml_chan_hdr *g);
    /* Open: the entry is claimed, its role not yet stored: store it (shml__chan_set_role())
       and join. 0, or -errno (the entry is then freed). NULL: store the role. */
    int (*attach)(shml_channel *ch);
    /* Open of a durable endpoint that took a dead one's place (its entry, role, counters and
       cursor kept; the entry's generation moved on, so the dead one's holder is `old`): take
       over what `old` held. NULL: the kind has no durable endpoints. */
    void (*take_over)(shml_channel *ch, uint32_t old);
    /* Close, once the entry is freed. */
    void (*detach)(shml_channel *ch);
    /* Free of entry i (dead or closing, of role `role`), before its records go with it: undo
       what its owner held (layout.h, the endpoint table). */
    void (*settle)(const struct shml__chan_geo *g, uint32_t i, uint32_t role);
    /* Free of an entry of role `role`, as its role is cleared. */
    void (*entry_freed)(const struct shml__chan_geo *g, uint32_t role);
    /* A slot being read was freed from a dead holder: read_tag reads what it must tell
       (before the slot is freed), request_lost tells it (after). */
    uint64_t (*read_tag)(const struct shml__chan_geo *g, const struct shml_chan_slot *s);
    void (*request_lost)(const struct shml__chan_geo *g, uint64_t tag);
    /* shml_send_batch(), shml_recv_batch(); NULL: -ENOTSUP. */
    ssize_t (*send_batch)(shml_channel *ch, const struct shml_iov *msgs, size_t n,
                          int64_t timeout_ns);
    ssize_t (*recv_batch)(shml_channel *ch, char *buf, size_t cap, size_t *lens, size_t n,
                          int64_t timeout_ns);
    /* Stats: a consumer's lag from its cursor (NULL: 0), and the messages waiting, from the
       indices and the slowest consumer's cursor (UINT64_MAX: none). */
    uint64_t (*lag)(uint64_t enq, uint64_t cursor);
    uint64_t (*queued)(const struct shml__chan_geo *g, uint64_t enq, uint64_t deq,
                       uint64_t slowest);
    /* shml_channel_check(): the kind's slots (and mailboxes). */
    void (*check)(struct shml__checker *c, const struct shml__chan_geo *g);
};
SHML_INTERNAL extern const struct shml__kind shml__queue_kind, shml__bus_kind, shml__latest_kind,
    shml__rpc_kind;
/* shml_refuse() on an rpc channel's handle: 0, or -EPROTO (not a server holding a request). */
SHML_INTERNAL int shml__rpc_refuse(shml_channel *ch);

/* The descriptor of kind `kind`, or NULL for a kind that is not a channel's. */
SHML_INTERNAL const struct shml__kind *shml__kind(uint32_t kind);

/* A durable endpoint's take_over step (struct shml__kind): move its entry's generation on, once
   what the dead predecessor held is taken from the reclaimers; ch->me names the new one. */
SHML_INTERNAL void shml__chan_ep_renew(shml_channel *ch);

/*
 * A durable producer's take_over step (queue.c, bus.c): its mark (`cursor`) names the last
 * message the dead one published unless its send record names a position p it was publishing
 * when it was killed (layout.h, SHML_EP_FLAG_NOMARK); then `published` settles the slot s of p,
 * whose claim `old` may still hold (freeing it, counted lost, if so), and says whether the
 * message was published: false also when that cannot be told. A mark not known is not carried
 * on. Then the record is cleared and the generation moves on (shml__chan_ep_renew()).
 */
SHML_INTERNAL void shml__chan_producer_take_over(
    shml_channel *ch, uint32_t old,
    bool (*published)(shml_channel *ch, struct shml_chan_slot *s, uint32_t p, uint32_t old));

/* The entry flags of this handle's endpoint (layout.h): bridge, durable with its tag, and
   for a durable producer whether its mark names a message published. */
SHML_INTERNAL uint32_t shml__chan_ep_flags(const shml_channel *ch);

/* Store the handle's role in its entry (seq_cst: pairs with the role loads of publishers,
   inspectors and the rpc server scan). */
SHML_INTERNAL void shml__chan_set_role(shml_channel *ch);
/*
 * Latest: lower buffer i's reader count to the pins live endpoints record on it, undoing the
 * count of readers that died (latest.c, Death). Needs no handle (reclaim and repair use it).
 * True if it lowered the count.
 */
SHML_INTERNAL bool shml__latest_recount(const struct shml__chan_geo *g, uint32_t i);
/*
 * Latest: buffer b, in state st, is marked writing by a writer found dead: drop the mark,
 * keeping the tag and the readers' count. Needs no handle (the runtime and repair use it).
 * True if this call dropped it (false: the state changed since st).
 */
SHML_INTERNAL bool shml__latest_free_dead_writer(struct shml_latest_buf *b, uint64_t st);

/* The endpoint table entry i < g->nendpoints, from the private geometry. */
static inline struct shml_chan_ep *shml__chan_ep(const struct shml__chan_geo *g, uint32_t i)
{
    return (struct shml_chan_ep *)((char *)g->hdr + g->ep_off + (uint64_t)i * SHML_EP_SIZE);
}
/* The rpc mailbox i < g->nendpoints. */
static inline struct shml_rpc_box *shml__chan_box(const struct shml__chan_geo *g, uint32_t i)
{
    return (struct shml_rpc_box *)((char *)g->hdr + g->box_off + (uint64_t)i * g->box_stride);
}
/* The slot (latest: buffer) i < g->nslots. */
static inline void *shml__chan_slot_at(const struct shml__chan_geo *g, uint64_t i)
{
    return g->slots + i * g->stride;
}

/* Is the owner recorded in an endpoint entry alive? 1, 0 dead, -1 unknown (among others: an
   owner of another pid namespace than the caller's, whose pid means nothing here). */
SHML_INTERNAL int shml__chan_ep_alive(struct shml_chan_ep *e);
/*
 * Free entry i if its owner is dead (state still `st`): fold its counters into the totals and
 * undo what it held (a latest pin, an rpc request). Returns true if this call freed it.
 */
SHML_INTERNAL bool shml__chan_ep_reclaim(const struct shml__chan_geo *g, uint32_t i, uint64_t st);

/*
 * Read a `len` field of shared memory (slot, latest buffer, rpc mailbox: a plain uint32_t in
 * layout.h) with one load the compiler may not repeat: a process that can write the segment
 * may change it between two reads, so the caller checks this value and uses only it. Relaxed:
 * what orders it is the acquire of the state that handed the slot over (its caller's).
 */
static inline uint32_t shml__len_once(const uint32_t *len)
{
    return atomic_load_explicit((const shml_atomic_u32 *)len, memory_order_relaxed);
}

/* The slot of position pos. */
static inline void *shml__chan_slot(const shml_channel *ch, uint64_t pos)
{
    return ch->slots + (pos & ch->mask) * ch->stride;
}

/* Where a slot's message starts. */
static inline void *slot_payload(void *slot)
{
    return (char *)slot + SHML_SLOT_HDR;
}

/*
 * Is `holder` (shml_holder() in layout.h), recorded in a slot, buffer or mailbox of channel g,
 * gone? Every holder holds its endpoint entry while it holds anything (taken at open, freed at
 * close after what it held is given back): it is gone when that entry is free, of another
 * generation, or owned by a dead process. A holder that names no entry (corrupt) is gone.
 * An owner of another pid namespace is never dead (shml__chan_ep_alive()).
 */
SHML_INTERNAL bool shml__chan_holder_dead(const struct shml__chan_geo *g, uint32_t holder);
/* The pid of holder `holder` as its entry records it, or 0 if the entry is no longer its. */
SHML_INTERNAL uint32_t shml__chan_holder_pid(const struct shml__chan_geo *g, uint32_t holder);

/*
 * Try once to claim something (a slot to send into, a message to read): 0 with *slot and *pos
 * set, -EAGAIN to wait (*behind: a live endpoint holds what we need, so look again now and
 * then in case it dies), or another error to return.
 */
typedef int (*shml__try_fn)(shml_channel *ch, size_t arg, void **slot, uint64_t *pos,
                            bool *behind);

/*
 * Call `try` until it stops answering -EAGAIN, waiting on event `e` as the endpoint's strategy
 * says: spin, then announce and sleep (whoever makes `try` succeed wakes `e`). Returns try's
 * result, -ETIMEDOUT, or -EINTR (shml_channel_interrupt()).
 */
SHML_INTERNAL int shml__chan_wait(shml_channel *ch, shml__try_fn try, size_t arg,
                                  struct shml_event_layout *e, int64_t timeout_ns, void **slot,
                                  uint64_t *pos);

/* ---- descriptor waits (notify.c; layout.h, "Descriptor waits") ---- */

/* Arm this handle's notifier on event e (a call that may not wait found nothing to do);
   `behind`: a live holder is in the way (look again by RETRY_NS). The caller looks again
   afterwards, and disarms if that look succeeds. */
SHML_INTERNAL void shml__chan_arm(shml_channel *ch, struct shml_event_layout *e, bool behind);
SHML_INTERNAL void shml__chan_disarm(shml_channel *ch, struct shml_event_layout *e);
/* A live endpoint holds what an armed call needs: the descriptor's user looks again after
   the retry time (shml_channel_fd_timeout()), as that holder may die and signal nobody. */
SHML_INTERNAL void shml__chan_retry_soon(shml_channel *ch);
/* Make the handle's own descriptor readable. */
SHML_INTERNAL void shml__chan_note_self(shml_channel *ch);
/* Signal the endpoints armed on e (called when e->armed was read non-zero after a wake's
   fence). `by`: the waking handle, whose cache of opened notifiers is used; NULL: none. */
SHML_INTERNAL void shml__chan_signal(const struct shml__chan_geo *g, shml_channel *by,
                                     struct shml_event_layout *e);
/* Entry i is being freed (closed by its owner `pid`, or reclaimed from it dead): disarm it
   and remove its notifier's name. */
SHML_INTERNAL void shml__chan_note_release(const struct shml__chan_geo *g, uint32_t i, int32_t pid);
/* The handle is closing: take it out of its wait set (waitset.c). */
SHML_INTERNAL void shml__waitset_forget(shml_channel *ch);
/* Close the handle's own notifier (and remove its name if `remove`) and the ones it opened. */
SHML_INTERNAL void shml__chan_note_close(shml_channel *ch, bool remove);

/*
 * Wake the sleepers of channel event e (one, or all) and signal the endpoints armed on it.
 * The load of `armed` follows the wake's seq_cst fence (pairs with the arming's fence in
 * shml__chan_arm()); it reads the line the wake read `waiters` from, so it costs nothing more
 * while no endpoint is armed.
 *
 * SHML_BENCH_NO_DESCRIPTORS exists for bench/bench_wake.c only: bench/CMakeLists.txt builds a
 * second library with it, without that load, so that the benchmark can measure what the load
 * adds to a hand-over. A library built with it never signals an armed descriptor: never
 * define it anywhere else.
 */
static inline void shml__chan_wake(const struct shml__chan_geo *g, shml_channel *by,
                                   struct shml_event_layout *e)
{
    shml__event_wake(e);
#ifndef SHML_BENCH_NO_DESCRIPTORS
    if (atomic_load_explicit(&e->armed, memory_order_relaxed) != 0)
        shml__chan_signal(g, by, e);
#else
    (void)g;
    (void)by;
#endif
}
static inline void shml__chan_wake_all(const struct shml__chan_geo *g, shml_channel *by,
                                       struct shml_event_layout *e)
{
    shml__event_wake_all(e);
#ifndef SHML_BENCH_NO_DESCRIPTORS /* as above */
    if (atomic_load_explicit(&e->armed, memory_order_relaxed) != 0)
        shml__chan_signal(g, by, e);
#else
    (void)g;
    (void)by;
#endif
}

/* Time for the system calls that find dead holders? After a sleep, and every 256 tries. */
static inline bool shml__chan_probe(shml_channel *ch)
{
    if (ch->probe || (++ch->ticks & 255u) == 0) {
        ch->probe = false;
        return true;
    }
    return false;
}

/*
 * Wait (on not_full) for `try` to give a slot to send into, and record it as this handle's
 * open claim of `len` bytes; *buf points `skip` bytes into the slot (past its header). Returns
 * 0 or the wait's error.
 */
SHML_INTERNAL int shml__chan_claim(shml_channel *ch, shml__try_fn try, size_t len, size_t skip,
                                   void **buf, int64_t timeout_ns);

/* Count a message sent or received by this handle (in its endpoint entry). */
static inline void shml__chan_count_sent(shml_channel *ch, size_t len)
{
    /* Relaxed: counters written by this handle alone, read as statistics. */
    atomic_store_explicit(&ch->ep->sent, ++ch->n_sent, memory_order_relaxed);
    atomic_store_explicit(&ch->ep->bytes_sent, ch->b_sent += len, memory_order_relaxed);
}
static inline void shml__chan_count_recv(shml_channel *ch, size_t len)
{
    /* Relaxed: as above. */
    atomic_store_explicit(&ch->ep->received, ++ch->n_recv, memory_order_relaxed);
    atomic_store_explicit(&ch->ep->bytes_received, ch->b_recv += len, memory_order_relaxed);
}
static inline void shml__chan_count_drops(shml_channel *ch, uint64_t n)
{
    /* Relaxed: as above. */
    atomic_store_explicit(&ch->ep->drops, ch->n_drops += n, memory_order_relaxed);
}
/* Take back the count of a message that was not sent after all (rpc.c, server_commit). */
static inline void shml__chan_uncount_sent(shml_channel *ch, size_t len)
{
    /* Relaxed: as above. */
    atomic_store_explicit(&ch->ep->sent, --ch->n_sent, memory_order_relaxed);
    atomic_store_explicit(&ch->ep->bytes_sent, ch->b_sent -= len, memory_order_relaxed);
}

/*
 * The counting steps around a hand-over (queue.c, Counting): record what is in hand (`what`:
 * a position, or for rpc replies a client index or ticket: layout.h), count it, hand it over,
 * clear the record. The signal fences are compiler barriers only: they keep record, count,
 * hand-over and clearing in program order, which is what a kill leaves a prefix of.
 */
static inline void shml__chan_count_sent_at(shml_channel *ch, uint64_t what, size_t len)
{
    /* Relaxed: read by a reclaimer only once we are dead. */
    atomic_store_explicit(&ch->ep->send_rec, shml_ep_rec(what, ch->n_sent + 1),
                          memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    shml__chan_count_sent(ch, len);
}
static inline void shml__chan_count_recv_at(shml_channel *ch, uint64_t what, size_t len)
{
    atomic_store_explicit(&ch->ep->recv_rec, shml_ep_rec(what, ch->n_recv + 1),
                          memory_order_relaxed); /* as above */
    atomic_signal_fence(memory_order_seq_cst);
    shml__chan_count_recv(ch, len);
}
static inline void shml__chan_clear_rec(shml_atomic_u64 *rec)
{
    atomic_signal_fence(memory_order_seq_cst); /* after the hand-over, as above */
    atomic_store_explicit(rec, 0, memory_order_relaxed);
}

/*
 * A durable producer's mark goes with the message it publishes (layout.h, SHML_EP_FLAG_NOMARK):
 * stored after the send record that names the message and before the publication, so that a
 * kill before the record leaves the previous message's mark, and one after it a record naming
 * the message, which the successor settles (the kind's take_over step). Relaxed, with
 * compiler-only fences as the counting steps above: read by a successor once we are dead. The
 * caller publishes right after, or (a bus claim passed meanwhile) calls
 * shml__chan_unmark_message() before it clears the record.
 */
static inline void shml__chan_mark_message(shml_channel *ch)
{
    if (!ch->durable_tag)
        return;
    atomic_store_explicit(&ch->ep->cursor, ch->mark, memory_order_relaxed);
    ch->prev_mark = ch->published_mark;
    ch->prev_known = ch->mark_known;
    ch->published_mark = ch->mark;
    if (!ch->mark_known) {
        ch->mark_known = true;
        atomic_store_explicit(&ch->ep->flags, shml__chan_ep_flags(ch), memory_order_relaxed);
    }
    atomic_signal_fence(memory_order_seq_cst); /* the mark before the publication */
}
/* The message marked was not published after all: the mark goes back to the previous one. */
static inline void shml__chan_unmark_message(shml_channel *ch)
{
    if (!ch->durable_tag)
        return;
    ch->published_mark = ch->prev_mark;
    ch->mark_known = ch->prev_known;
    atomic_store_explicit(&ch->ep->cursor, ch->prev_mark, memory_order_relaxed);
    atomic_store_explicit(&ch->ep->flags, shml__chan_ep_flags(ch), memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* before the record is cleared */
}

/* Queue internals that rpc reuses for its request ring. */
SHML_INTERNAL int shml__queue_try_send(shml_channel *ch, size_t arg, void **slot, uint64_t *pos,
                                       bool *behind);
SHML_INTERNAL int shml__queue_try_recv(shml_channel *ch, size_t cap, void **slot, uint64_t *pos,
                                       bool *behind);
/* Count (with its record) and publish a claimed slot holding len bytes, of which counted_len
   count as the message; wake a consumer. */
SHML_INTERNAL void shml__queue_produce(shml_channel *ch, struct shml_chan_slot *s, uint64_t pos,
                                       size_t len, size_t counted_len);
/* Count (with its record) the slot read at pos as received, give it back, wake a producer. */
SHML_INTERNAL void shml__queue_consume(shml_channel *ch, struct shml_chan_slot *s, uint64_t pos,
                                       size_t counted_len);
SHML_INTERNAL void shml__queue_give_back(shml_channel *ch, struct shml_chan_slot *s,
                                         uint64_t pos);
/* Close: free an uncommitted claim (counted lost) and wake a consumer. */
SHML_INTERNAL void shml__queue_abandon_claim(shml_channel *ch, bool lost);
SHML_INTERNAL bool shml__queue_reclaim(const struct shml__chan_geo *g, struct shml_chan_slot *slot,
                                       uint64_t s, uint64_t next);
/* Queue and rpc requests: settle the slots entry i's records name (its send_rec if `sends`,
   its recv_rec if `receives`), if its dead owner still holds them (before the entry is freed,
   which loses the records: queue.c, Counting). */
SHML_INTERNAL void shml__queue_settle(const struct shml__chan_geo *g, uint32_t i, bool sends,
                                      bool receives);
/*
 * Queue: did `holder` count the message at position pos (low 32 bits) it holds, sending or
 * receiving? 1 yes, 0 no (also when the holder's entry is gone: its records went with it), -1
 * the entry is changing hands (its freer settles the slot: leave it). The holder must be
 * dead or the caller itself.
 */
SHML_INTERNAL int shml__chan_holder_counted(const struct shml__chan_geo *g, uint32_t holder,
                                            bool sending, uint32_t pos);

/* The queue's steps that rpc's request ring reuses (rpc builds on queue, never the reverse):
   the batch calls, the initial slot states, the messages waiting, the check. */
SHML_INTERNAL ssize_t shml__queue_send_batch(shml_channel *ch, const struct shml_iov *msgs,
                                             size_t n, int64_t timeout_ns);
SHML_INTERNAL ssize_t shml__queue_recv_batch(shml_channel *ch, char *buf, size_t cap,
                                             size_t *lens, size_t n, int64_t timeout_ns);
SHML_INTERNAL void shml__queue_init(struct shml_chan_hdr *h, const struct shml_chan_hdr *g);
SHML_INTERNAL uint64_t shml__queue_queued(const struct shml__chan_geo *g, uint64_t enq,
                                          uint64_t deq, uint64_t slowest);
SHML_INTERNAL void shml__queue_check(struct shml__checker *c, const struct shml__chan_geo *g);

/* Check and repair (check.c) */
SHML_INTERNAL int shml__chan_check(shml_segment *seg, bool repair, shml_check_fn fn, void *ctx);
/*
 * What a kind's check step (shml__kind.check) reports through. A finding is `repairable` if a
 * repair acts on it (what a check tells must be exactly what the repair does), `repaired` if
 * this repair did. shml__check_repairing(): whether this run repairs (else it only looks).
 * shml__check_holder_text(): who a holder (shml_holder()) was, in words, into buf.
 */
SHML_INTERNAL void shml__check_finding(struct shml__checker *c, bool repairable, bool repaired,
                                       const char *fmt, ...) SHML_PRINTF(4, 5);
SHML_INTERNAL bool shml__check_repairing(const struct shml__checker *c);
SHML_INTERNAL const char *shml__check_holder_text(const struct shml__chan_geo *g, uint32_t holder,
                                                  char *buf, size_t cap);

#endif /* SHML_CHANNEL_INTERNAL_H */
