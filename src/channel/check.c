/*
 * check.c - validating a channel, and repairing what dead processes left behind.
 *
 * What is checked: the control block (as an open does), the endpoint table (owners that died
 * without closing), the indices against each other, every slot's state against its index
 * (queue, bus, rpc) or every buffer (latest), and holders that died. Repair changes only what
 * belongs to dead processes, with the same compare-and-swaps the endpoints use, so it is safe
 * while the channel is in use; anything else is reported and left alone.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "segment/backend.h"
#include "sync/futex.h"
#include "shmlink/names.h"

#include <stdarg.h>
#include <stdio.h>

struct checker {
    shml_check_fn fn;
    void *ctx;
    bool repair;
    int left; /* findings not repaired */
};

/*
 * Report a finding: `repairable` if a repair acts on it (what a check tells, so it must be
 * exactly what the repair below does), `repaired` if this repair did.
 */
static void finding(struct checker *c, bool repairable, bool repaired, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void finding(struct checker *c, bool repairable, bool repaired, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (!repaired)
        c->left++;
    if (c->fn)
        c->fn(c->ctx,
              repaired                   ? 1
              : !c->repair && repairable ? (int)SHML_CHECK_REPAIRABLE
                                         : 0,
              line);
}

/* Who a holder (shml_holder()) was, in words: "endpoint I (pid P)", or "endpoint I (freed
   since)" when its entry has moved on; for a corrupt holder, its value. */
static const char *holder_text(const struct shml__chan_geo *g, uint32_t holder, char *buf,
                               size_t cap)
{
    uint32_t i;
    uint32_t pid = shml__chan_holder_pid(g, holder);
    if (!shml_holder_index(holder, &i) || i >= g->nendpoints)
        snprintf(buf, cap, "holder 0x%x (no endpoint)", holder);
    else if (pid != 0)
        snprintf(buf, cap, "endpoint %u (pid %u)", i, pid);
    else
        snprintf(buf, cap, "endpoint %u (freed since)", i);
    return buf;
}

/* An endpoint's role in the words every face uses (shmlink/names.h). */
static const char *role_name(uint32_t kind, uint32_t role)
{
    const char *name = shml_role_name(kind, role);
    return name ? name : "endpoint";
}

static void check_endpoints(struct checker *c, const struct shml__chan_geo *g)
{
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_chan_ep *e = shml__chan_ep(g, i);
        /* Relaxed: a snapshot; repair acts by CAS on what it saw. */
        uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
        if (!shml_ep_used(st) || shml__chan_ep_alive(e) != 0)
            continue;
        uint32_t role = atomic_load_explicit(&e->role, memory_order_relaxed);
        uint32_t pid = shml_ep_pid(st);
        bool fixed = c->repair && shml__chan_ep_reclaim(g, i, st);
        finding(c, true, fixed, "endpoint %u (%s, pid %u) belongs to a process that died%s", i,
                role_name(g->kind, role), pid, fixed ? ": detached, counters kept" : "");
    }
}

/* Queue and rpc slots. */
static void check_queue_slots(struct checker *c, const struct shml__chan_geo *g)
{
    struct shml_chan_hdr *h = g->hdr;
    uint64_t n = g->nslots, mask = n - 1;
    uint64_t enq = atomic_load_explicit(&h->enq, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&h->deq, memory_order_relaxed);
    if ((deq > enq && deq - enq > g->nendpoints) || (enq > deq && enq - deq > n + g->nendpoints))
        finding(c, false, false, "indices are inconsistent: enq %llu, deq %llu, %llu slots",
                (unsigned long long)enq, (unsigned long long)deq, (unsigned long long)n);
    uint64_t limit = g->max_msg + (g->kind == SHML_RPC ? SHML_RPC_TAG : 0);
    for (uint64_t i = 0; i < n; i++) {
        struct shml_chan_slot *s = shml__chan_slot_at(g, i);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        uint32_t seq = shml_slot_seq(st);
        uint32_t phase = (seq - (uint32_t)i) & (uint32_t)mask;
        if (phase > 1 && n > 2) {
            finding(c, false, false, "slot %llu: state 0x%016llx does not belong to this slot",
                    (unsigned long long)i, (unsigned long long)st);
            continue;
        }
        uint32_t len = shml__len_once(&s->len);
        if (phase == 1 && !shml_slot_busy(st) && len > limit)
            finding(c, false, false, "slot %llu: message of %u bytes in slots for %llu",
                    (unsigned long long)i, len, (unsigned long long)limit);
        if (!shml_slot_busy(st) || !shml__chan_holder_dead(g, shml_slot_holder(st)))
            continue;
        /* A dead holder: a claim being written (seq p) or a message being read (seq p + 1);
           either way the slot becomes free for the next lap, and the message is lost. */
        bool writing = phase == 0;
        uint64_t next = writing ? (uint64_t)seq + n : (uint64_t)seq - 1 + n;
        char who[64];
        holder_text(g, shml_slot_holder(st), who, sizeof(who)); /* before a repair frees it */
        bool fixed = false;
        if (c->repair && (fixed = shml__queue_reclaim(g, s, st, next)))
            shml__event_wake_all(writing ? &h->not_empty : &h->not_full);
        finding(c, true, fixed, "slot %llu: %s by %s, which died%s", (unsigned long long)i,
                writing ? "being written" : "being read", who,
                fixed ? ": freed, 1 message lost" : "");
    }
}

static void check_bus_slots(struct checker *c, const struct shml__chan_geo *g)
{
    struct shml_chan_hdr *h = g->hdr;
    uint64_t n = g->nslots, mask = n - 1;
    for (uint64_t i = 0; i < n; i++) {
        struct shml_chan_slot *s = shml__chan_slot_at(g, i);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        uint32_t seq = shml_slot_seq(st);
        uint32_t phase = (seq - (uint32_t)i) & (uint32_t)mask;
        if ((shml_slot_busy(st) ? phase != 0 : phase != (1u & (uint32_t)mask))) {
            finding(c, false, false, "slot %llu: state 0x%016llx does not belong to this slot",
                    (unsigned long long)i, (unsigned long long)st);
            continue;
        }
        /* Not busy with a holder: left behind by a stuck publisher (bus.c), overwrite only. */
        bool behind = !shml_slot_busy(st) && shml_slot_holder(st) != SHML_SLOT_HOLE &&
                      shml_slot_holder(st) != 0;
        if (behind && g->policy != SHML_OVERWRITE) {
            finding(c, false, false, "slot %llu: a published message names holder 0x%x",
                    (unsigned long long)i, shml_slot_holder(st));
            continue;
        }
        if (!(shml_slot_busy(st) || behind) || !shml__chan_holder_dead(g, shml_slot_holder(st)))
            continue;
        char who[64];
        holder_text(g, shml_slot_holder(st), who, sizeof(who));
        bool fixed = false;
        if (c->repair) {
            uint64_t want = st;
            /* A claim becomes a hole (as make_hole() in bus.c); a slot left behind keeps its
               seq, as its publisher's give-back does. Release: as there. */
            fixed = atomic_compare_exchange_strong_explicit(
                &s->state, &want,
                shml_slot_state(behind ? seq : (uint64_t)seq + 1, SHML_SLOT_HOLE, false),
                memory_order_release, memory_order_relaxed);
            if (fixed && !behind) {
                atomic_fetch_add_explicit(&h->lost, 1, memory_order_relaxed); /* a statistic */
                shml__event_wake_all(&h->not_empty);
            }
        }
        if (behind)
            finding(c, true, fixed, "slot %llu: left behind by %s, which died%s",
                    (unsigned long long)i, who, fixed ? ": freed" : "");
        else
            finding(c, true, fixed, "slot %llu: being written by %s, which died%s",
                    (unsigned long long)i, who, fixed ? ": skipped, 1 message lost" : "");
    }
}

static void check_latest(struct checker *c, const struct shml__chan_geo *g)
{
    struct shml_chan_hdr *h = g->hdr;
    uint64_t cur = atomic_load_explicit(&h->enq, memory_order_relaxed);
    if (shml_latest_cur_version(cur) && shml_latest_cur_buffer(cur) >= g->nslots) {
        finding(c, false, false, "the current value names buffer %u of %u",
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
            bool fixed = c->repair && shml__latest_recount(g, i);
            finding(c, true, fixed, "buffer %u: %u readers counted, %u recorded%s", i, readers,
                    pins, fixed ? ": recounted" : "");
            if (fixed)
                st = atomic_load_explicit(&b->state, memory_order_relaxed);
        }
        if (shml_latest_writing(st) && shml__chan_holder_dead(g, shml_latest_writer(st))) {
            char who[64];
            holder_text(g, shml_latest_writer(st), who, sizeof(who));
            bool fixed = c->repair && shml__latest_free_dead_writer(b, st);
            finding(c, true, fixed, "buffer %u: being written by %s, which died%s", i, who,
                    fixed ? ": freed" : "");
        }
        uint32_t len = shml__len_once(&b->len);
        if (!shml_latest_writing(st) && len > g->max_msg)
            finding(c, false, false, "buffer %u: value of %u bytes in buffers for %llu", i, len,
                    (unsigned long long)g->max_msg);
    }
}

/* rpc: requests taken by servers that died: the clients would learn it only by probing. */
static void check_mailboxes(struct checker *c, const struct shml__chan_geo *g)
{
    for (uint32_t i = 0; i < g->nendpoints; i++) {
        struct shml_rpc_box *b = shml__chan_box(g, i);
        uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        uint32_t server = shml_box_server(st);
        if (shml_box_replied(st) || server == 0 || !shml__chan_holder_dead(g, server))
            continue;
        char who[64];
        holder_text(g, server, who, sizeof(who));
        int reset = c->repair ? shml__rpc_box_reset(g, i, st, true) : -1;
        finding(c, true, reset >= 0, "mailbox %u: request %u taken by %s, which died%s", i,
                shml_box_ticket(st), who,
                reset > 0 ? ": client told, 1 reply lost" : reset == 0 ? ": client told" : "");
    }
}

int shml__chan_check(shml_segment *seg, bool repair, shml_check_fn fn, void *ctx)
{
    struct checker c = {.fn = fn, .ctx = ctx, .repair = repair};
    uint32_t kind = shml__segment_kind(seg);
    if (kind < SHML_QUEUE || kind > SHML_RPC)
        return shml__fail(SHML_EWRONGKIND, "%s is a segment of kind %u, not a channel",
                          shml_segment_address(seg), kind);
    /* Everything below works from this private, validated copy of the geometry, whatever
       the mapping says meanwhile. */
    struct shml__chan_geo g;
    int r = shml__chan_geo_load(shml_segment_data(seg), shml_segment_size(seg), &g);
    if (r < 0) {
        finding(&c, false, false, "control block: %s", shml_last_error());
        return c.left;
    }
    if (g.kind != kind) {
        finding(&c, false, false, "channel kind %u differs from the segment's %u", g.kind, kind);
        return c.left;
    }
    check_endpoints(&c, &g);
    if (kind == SHML_BUS)
        check_bus_slots(&c, &g);
    else if (kind == SHML_LATEST)
        check_latest(&c, &g);
    else
        check_queue_slots(&c, &g);
    if (kind == SHML_RPC)
        check_mailboxes(&c, &g);
    return c.left;
}
