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

struct shml__checker {
    shml_check_fn fn;
    void *ctx;
    bool repair;
    int left; /* findings not repaired */
};

void shml__check_finding(struct shml__checker *c, bool repairable, bool repaired, const char *fmt,
                         ...)
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

bool shml__check_repairing(const struct shml__checker *c)
{
    return c->repair;
}

const char *shml__check_holder_text(const struct shml__chan_geo *g, uint32_t holder, char *buf,
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

static void check_endpoints(struct shml__checker *c, const struct shml__chan_geo *g)
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
        shml__check_finding(
            c, true, fixed, "endpoint %u (%s, pid %u) belongs to a process that died%s", i,
            role_name(g->kind, role), pid, fixed ? ": detached, counters kept" : "");
    }
}

int shml__chan_check(shml_segment *seg, bool repair, shml_check_fn fn, void *ctx)
{
    struct shml__checker c = {.fn = fn, .ctx = ctx, .repair = repair};
    uint32_t kind = shml__segment_kind(seg);
    if (!shml__kind(kind))
        return shml__fail(SHML_EWRONGKIND, "%s is a segment of kind %u, not a channel",
                          shml_segment_address(seg), kind);
    /* Everything below works from this private, validated copy of the geometry, whatever
       the mapping says meanwhile. */
    struct shml__chan_geo g;
    int r = shml__chan_geo_load(shml_segment_data(seg), shml_segment_size(seg), &g);
    if (r < 0) {
        shml__check_finding(&c, false, false, "control block: %s", shml_last_error());
        return c.left;
    }
    if (g.kind != kind) {
        shml__check_finding(&c, false, false, "channel kind %u differs from the segment's %u",
                            g.kind, kind);
        return c.left;
    }
    check_endpoints(&c, &g);
    g.k->check(&c, &g);
    return c.left;
}
