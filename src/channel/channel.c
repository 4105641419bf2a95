/*
 * channel.c - creating, opening and closing channels; the kind-independent parts.
 *
 * A channel is a managed segment of the channel's kind whose data starts with the control
 * block of layout.h. The creator initialises the block before the segment is published (the
 * segment header's READY state, released last, orders it for openers), so an opener that got
 * the segment sees a finished block; it still validates every field before trusting one.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "segment/backend.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CAPACITY ((size_t)1 << 20)
#define DEFAULT_MAX_MSG  ((size_t)4096)
#define MAX_MAX_MSG      ((size_t)1 << 30)
#define MAX_SLOTS        ((uint64_t)1 << 30)
#define DEFAULT_SPIN     2000u

static const struct shml_channel_opts default_opts = {0};

int shml__chan_validate(const struct shml_chan_hdr *h, size_t size)
{
    if (size < SHML_CHAN_HDR || h->magic != SHML_CHAN_MAGIC)
        return shml__fail(SHML_ECORRUPT, "no channel control block at the start of the data");
    if (h->version != SHML_CHAN_VERSION)
        return shml__fail(SHML_EVERSION, "channel layout version %u; this library reads %u",
                          h->version, SHML_CHAN_VERSION);
    uint64_t n = h->nslots;
    if (n < 2 || n > MAX_SLOTS || (n & (n - 1)) != 0 || h->stride % 64 != 0 ||
        h->max_msg > MAX_MAX_MSG || h->stride < SHML_SLOT_HDR + h->max_msg ||
        h->slots_off != SHML_CHAN_HDR)
        return shml__fail(SHML_ECORRUPT, "channel geometry is inconsistent (%u slots of %u "
                                         "bytes for messages of %llu)",
                          h->nslots, h->stride, (unsigned long long)h->max_msg);
    if (n * h->stride > size - h->slots_off)
        return shml__fail(SHML_ECORRUPT, "channel slots run past the %zu-byte data", size);
    if (h->kind != SHML_QUEUE)
        return shml__fail(SHML_ECORRUPT, "channel kind %u is unknown", h->kind);
    return 0;
}

/* Build the endpoint for a mapped, validated channel. */
static int endpoint(shml_segment *seg, unsigned role, const struct shml_channel_opts *o,
                    shml_channel **out)
{
    shml_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->seg = seg;
    ch->hdr = shml_segment_data(seg);
    ch->slots = (char *)ch->hdr + ch->hdr->slots_off;
    ch->mask = ch->hdr->nslots - 1;
    ch->stride = ch->hdr->stride;
    ch->max_msg = ch->hdr->max_msg;
    ch->role = role;
    ch->wait = o->wait;
    ch->spin = o->spin ? o->spin : DEFAULT_SPIN;
    ch->spsc = (ch->hdr->flags & SHML_CHANF_SPSC) != 0;
    ch->me = (uint32_t)shml__os_pid();
    *out = ch;
    return 0;
}

/*
 * Write the control block and free every slot, in the fresh data of a segment nobody can open
 * yet (shml__segment_create_with() publishes it READY afterwards, with release).
 */
static void init_block(void *data, size_t size, void *ctx)
{
    (void)size;
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
    shml_event_init((shml_event *)&h->not_empty);
    shml_event_init((shml_event *)&h->not_full);
    char *slots = (char *)h + h->slots_off;
    for (uint64_t i = 0; i < h->nslots; i++) {
        struct shml_chan_slot *s = (struct shml_chan_slot *)(slots + i * h->stride);
        /* Free for position i: seq i, no holder. Relaxed: published with the segment. */
        atomic_store_explicit(&s->state, i << 32, memory_order_relaxed);
    }
}

static int check_opts(const struct shml_channel_opts *o)
{
    if (o->kind != 0 && o->kind != SHML_QUEUE) {
        if (o->kind == SHML_BUS || o->kind == SHML_LATEST || o->kind == SHML_RPC)
            return shml__fail(ENOTSUP, "channel kind %u is not implemented yet", o->kind);
        return shml__fail(EINVAL, "unknown channel kind %u", o->kind);
    }
    if (o->policy != SHML_BLOCK)
        return shml__fail(EINVAL, "a queue's only policy is SHML_BLOCK");
    if (o->wait > SHML_WAIT_BLOCK)
        return shml__fail(EINVAL, "unknown wait strategy %u", o->wait);
    if (o->flags & ~SHML_SPSC)
        return shml__fail(EINVAL, "unknown channel flags 0x%x", o->flags & ~SHML_SPSC);
    if (o->max_msg > MAX_MAX_MSG)
        return shml__fail(EINVAL, "max_msg %zu is larger than %zu", o->max_msg, MAX_MAX_MSG);
    return 0;
}

int shml_channel_create(const char *addr, const struct shml_channel_opts *opts,
                        shml_channel **out)
{
    shml__clear_error();
    if (!out)
        return shml__fail(EINVAL, "out is NULL");
    *out = NULL;
    const struct shml_channel_opts *o = opts ? opts : &default_opts;
    int r = check_opts(o);
    if (r < 0)
        return r;
    size_t max_msg = o->max_msg ? o->max_msg : DEFAULT_MAX_MSG;
    size_t capacity = o->capacity ? o->capacity : DEFAULT_CAPACITY;
    uint64_t stride = shml__round_up(SHML_SLOT_HDR + (uint64_t)max_msg, 64);
    uint64_t n = 2;
    while (n * 2 <= MAX_SLOTS && n * 2 * stride <= capacity)
        n *= 2;
    if (n * stride > SIZE_MAX - SHML_CHAN_HDR || stride > UINT32_MAX)
        return shml__fail(EOVERFLOW, "channel of %llu slots of %llu bytes is too large",
                          (unsigned long long)n, (unsigned long long)stride);

    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.mode = o->mode;
    so.kind = SHML_QUEUE;
    struct shml_chan_hdr geometry = {
        .magic = SHML_CHAN_MAGIC,
        .version = SHML_CHAN_VERSION,
        .kind = SHML_QUEUE,
        .flags = (o->flags & SHML_SPSC) ? SHML_CHANF_SPSC : 0,
        .nslots = (uint32_t)n,
        .stride = (uint32_t)stride,
        .max_msg = max_msg,
        .slots_off = SHML_CHAN_HDR,
    };
    shml_segment *seg;
    r = shml__segment_create_with(addr, SHML_CHAN_HDR + (size_t)(n * stride), &so, init_block,
                                  &geometry, &seg);
    if (r < 0)
        return r;
    r = endpoint(seg, SHML_PRODUCER | SHML_CONSUMER, o, out);
    if (r < 0) {
        shml_segment_close(seg);
        shml_segment_unlink(addr);
    }
    return r;
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
    const struct shml_channel_opts *o = opts ? opts : &default_opts;
    if (o->wait > SHML_WAIT_BLOCK)
        return shml__fail(EINVAL, "unknown wait strategy %u", o->wait);
    struct shml_segment_opts so = SHML_SEGMENT_OPTS_INIT;
    so.kind = SHML_QUEUE;
    so.role = role == SHML_PRODUCER   ? SHML_ROLE_PRODUCER
              : role == SHML_CONSUMER ? SHML_ROLE_CONSUMER
                                      : SHML_ROLE_ENDPOINT;
    shml_segment *seg;
    int r = shml_segment_open(addr, &so, &seg);
    if (r < 0)
        return r;
    r = shml__chan_validate(shml_segment_data(seg), shml_segment_size(seg));
    if (r == 0)
        r = endpoint(seg, role, o, out);
    if (r < 0)
        shml_segment_close(seg);
    return r;
}

int shml_channel_close(shml_channel *ch)
{
    if (!ch)
        return 0;
    shml__queue_abandon(ch);
    shml_segment_close(ch->seg);
    free(ch);
    return 0;
}

int shml_channel_stats(const shml_channel *ch, struct shml_channel_stats *st)
{
    if (!ch || !st)
        return -EINVAL;
    const struct shml_chan_hdr *h = ch->hdr;
    memset(st, 0, sizeof(*st));
    st->kind = h->kind;
    st->flags = (h->flags & SHML_CHANF_SPSC) ? SHML_SPSC : 0;
    st->slots = h->nslots;
    st->slot_size = h->stride;
    st->max_msg = h->max_msg;
    /*
     * Relaxed: a snapshot. The indices count claims; claims still open (being written or
     * read) are found in the slots, so that sent and received count finished messages. This
     * reads every slot's state: it costs the caller, never the hot path.
     */
    struct shml_chan_hdr *m = (struct shml_chan_hdr *)h;
    uint64_t enq = atomic_load_explicit(&m->enq, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&m->deq, memory_order_relaxed);
    uint64_t writing = 0, reading = 0;
    for (uint64_t i = 0; i <= ch->mask; i++) {
        const struct shml_chan_slot *s =
            (const struct shml_chan_slot *)(ch->slots + i * ch->stride);
        uint64_t state = atomic_load_explicit(&((struct shml_chan_slot *)s)->state,
                                              memory_order_relaxed);
        if (!(state & 1u))
            continue;
        /* Busy: claimed for writing holds seq p (== i mod nslots), being read holds p + 1. */
        if (((state >> 32) & ch->mask) == i)
            writing++;
        else
            reading++;
    }
    st->sent = enq > writing ? enq - writing : 0;
    st->received = deq > reading ? deq - reading : 0;
    st->lost = atomic_load_explicit(&m->lost, memory_order_relaxed);
    st->queued = enq > deq ? enq - deq : 0;
    return 0;
}

shml_segment *shml_channel_segment(const shml_channel *ch)
{
    return ch ? ch->seg : NULL;
}
