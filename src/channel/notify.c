/*
 * notify.c - descriptor waits: shml_channel_fd(), arming, and the signals wakers send to armed
 * endpoints (layout.h, "Descriptor waits", has the protocol; os.h the notifiers).
 *
 * An endpoint that asked for a descriptor arms it whenever a call that may not wait finds
 * nothing to do (shml__chan_wait(): -ETIMEDOUT), and looks once more after arming; a waker
 * that made progress possible signals every endpoint armed on the event it wakes. So the
 * descriptor is readable from the moment the endpoint may make progress until a call of it
 * returns -ETIMEDOUT again. A waker pays one load (the event's `armed`, on the line it reads
 * anyway) while no endpoint is armed, and one signal per arming otherwise.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "segment/backend.h"

#include <errno.h>
#include <stdlib.h>

/* What a waker keeps of another endpoint's notifier: the handle it opened for entry i. */
struct shml__note_peer {
    uint64_t id; /* 0: none */
    int32_t pid;
    intptr_t h;
};

/* How long an armed endpoint blocked by a live holder waits before it looks again (that
   holder may have died: only a look finds out). As shml__chan_wait()'s own. */
#define RETRY_NS ((int64_t)50000000)

/* The wait point of event e in channel g, and for a mailbox the client entry it belongs to;
   -1 for an event that is none of the channel's. */
static int point_of(const struct shml__chan_geo *g, const struct shml_event_layout *e,
                    uint32_t *client)
{
    if (e == &g->hdr->not_empty)
        return SHML_NOTE_RX;
    if (e == &g->hdr->not_full)
        return SHML_NOTE_TX;
    if (g->k->mailboxes && g->box_stride != 0) {
        uintptr_t base = (uintptr_t)g->hdr + g->box_off, at = (uintptr_t)e;
        if (at >= base && (at - base) % g->box_stride == 0 &&
            (at - base) / g->box_stride < g->nendpoints) {
            *client = (uint32_t)((at - base) / g->box_stride);
            return SHML_NOTE_REPLY;
        }
    }
    return -1;
}

static struct shml_event_layout *event_of(const struct shml__chan_geo *g, uint32_t point,
                                          uint32_t i)
{
    if (point == SHML_NOTE_RX)
        return &g->hdr->not_empty;
    if (point == SHML_NOTE_TX)
        return &g->hdr->not_full;
    return g->k->mailboxes ? &shml__chan_box(g, i)->ready : NULL;
}

/* Take one from an event's armed count, never below 0 (a peer may write any value there). */
static void armed_down(struct shml_event_layout *e)
{
    uint32_t a = atomic_load_explicit(&e->armed, memory_order_relaxed);
    /* Relaxed: the count is a hint that makes wakers look; the states are what they CAS. */
    while (a != 0 && !atomic_compare_exchange_weak_explicit(&e->armed, &a, a - 1,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed))
        ;
}

int shml_channel_fd(shml_channel *ch)
{
    if (!ch)
        return -EINVAL;
    if (ch->pid != (uint32_t)shml__os_pid())
        return shml__fail(ECHILD, "this handle was opened by the parent process before fork(): "
                                  "open the channel again in the child");
    if (ch->has_note)
        return shml__os_note_fd(ch->note);
    uint64_t id = 0;
    int r;
    while (id == 0)
        if ((r = shml__os_random(&id, sizeof(id))) < 0)
            return shml__fail(-r, "no random id for the descriptor: %s", shml__os_strerror(-r));
    r = shml__os_note_create((int32_t)ch->pid, id, shml__segment_mode(ch->seg), &ch->note);
    if (r < 0)
        return shml__fail(-r, "cannot make the descriptor of %s: %s",
                          shml_segment_address(ch->seg), shml__os_strerror(-r));
    ch->has_note = true;
    ch->note_id = id;
    ch->note_retry = -1;
    /* Relaxed: wakers read it after their acquire CAS of an arming that comes later. */
    atomic_store_explicit(&ch->ep->note_id, id, memory_order_relaxed);
    /* Readable at first: the first call finds out what there is, and arms if nothing. */
    shml__os_note_signal(ch->note);
    return shml__os_note_fd(ch->note);
}

int64_t shml_channel_fd_timeout(const shml_channel *ch)
{
    if (!ch || !ch->has_note || ch->note_retry < 0)
        return -1;
    int64_t left = ch->note_retry - shml__os_mono_ns();
    return left > 0 ? left : 0;
}

void shml__chan_retry_soon(shml_channel *ch)
{
    ch->note_retry = shml__os_mono_ns() + RETRY_NS;
    ch->probe = true; /* the next call looks whether the holder in the way died */
}

void shml__chan_arm(shml_channel *ch, struct shml_event_layout *e, bool behind)
{
    uint32_t client = 0;
    int p = point_of(&ch->geo, e, &client);
    if (p < 0)
        return;
    if (behind)
        shml__chan_retry_soon(ch);
    else
        ch->note_retry = -1;
    struct shml_chan_ep *ep = ch->ep;
    uint32_t w = atomic_load_explicit(&ep->notify, memory_order_relaxed);
    /* Armed since the last look, and not signalled: nothing came for this point, and the
       handshake was made when it was armed. A loop that polls costs no system call. */
    if (shml_note_get(w, (uint32_t)p) == SHML_NOTE_ARMED)
        return;
    /* Before arming: a signal that comes after the arming is never drained here. */
    shml__os_note_drain(ch->note);
    for (;;) {
        /* seq_cst: the arming comes before the look again that follows (our half of the
           handshake with the waker's fence and load of `armed`, layout.h). */
        uint32_t armed = shml_note_set(w, (uint32_t)p, SHML_NOTE_ARMED) + SHML_NOTE_ARMING_ONE;
        if (atomic_compare_exchange_weak_explicit(&ep->notify, &w, armed, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            atomic_fetch_add_explicit(&e->armed, 1, memory_order_seq_cst); /* as above */
            break;
        }
    }
    /* seq_cst: pairs with the waker's fence (shml__event_wake()): either it reads our arming,
       or our caller's look again sees what it published. */
    atomic_thread_fence(memory_order_seq_cst);
    /* Another point was signalled, and its byte may have gone with the drain above. */
    w = atomic_load_explicit(&ep->notify, memory_order_relaxed);
    for (uint32_t q = 0; q < SHML_NOTE_POINTS; q++)
        if (q != (uint32_t)p && shml_note_get(w, q) == SHML_NOTE_SIGNALLED) {
            shml__os_note_signal(ch->note);
            break;
        }
}

void shml__chan_disarm(shml_channel *ch, struct shml_event_layout *e)
{
    uint32_t client = 0;
    int p = point_of(&ch->geo, e, &client);
    if (p < 0)
        return;
    ch->note_retry = -1;
    struct shml_chan_ep *ep = ch->ep;
    uint32_t w = atomic_load_explicit(&ep->notify, memory_order_relaxed);
    /* Relaxed: a waker that CASes first signals (harmless: one call too many finds nothing). */
    while (shml_note_get(w, (uint32_t)p) == SHML_NOTE_ARMED)
        if (atomic_compare_exchange_weak_explicit(&ep->notify, &w,
                                                  shml_note_set(w, (uint32_t)p, SHML_NOTE_IDLE),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            armed_down(e);
            break;
        }
}

void shml__chan_note_self(shml_channel *ch)
{
    if (ch->has_note)
        shml__os_note_signal(ch->note);
}

/* Signal entry i's notifier (its owner armed). */
static void ping(const struct shml__chan_geo *g, shml_channel *by, uint32_t i)
{
    struct shml_chan_ep *ep = shml__chan_ep(g, i);
    /* Relaxed: the acquire CAS that made us the signaller ordered the owner's stores. */
    uint64_t id = atomic_load_explicit(&ep->note_id, memory_order_relaxed);
    int32_t pid = (int32_t)shml_ep_pid(atomic_load_explicit(&ep->state, memory_order_relaxed));
    if (id == 0 || pid <= 0)
        return;
    if (by && by->has_note && i == by->ep_index && id == by->note_id) {
        shml__os_note_signal(by->note);
        return;
    }
    if (!by) {
        intptr_t h;
        if (shml__os_note_open(pid, id, &h) == 0) {
            shml__os_note_signal(h);
            shml__os_note_close(h);
        }
        return;
    }
    if (!by->peers && !(by->peers = calloc(g->nendpoints, sizeof(*by->peers))))
        return;
    struct shml__note_peer *c = &by->peers[i];
    if (c->id != id || c->pid != pid) {
        if (c->id != 0)
            shml__os_note_close(c->h);
        c->id = 0;
        if (shml__os_note_open(pid, id, &c->h) < 0)
            return;
        c->id = id;
        c->pid = pid;
    }
    shml__os_note_signal(c->h);
}

void shml__chan_signal(const struct shml__chan_geo *g, shml_channel *by,
                       struct shml_event_layout *e)
{
    uint32_t client = 0;
    int p = point_of(g, e, &client);
    if (p < 0)
        return;
    uint32_t lo = 0, hi = g->nendpoints;
    if (p == SHML_NOTE_REPLY) {
        lo = client;
        hi = client + 1;
    }
    uint32_t left = atomic_load_explicit(&e->armed, memory_order_relaxed);
    for (uint32_t i = lo; i < hi && left != 0; i++) {
        struct shml_chan_ep *ep = shml__chan_ep(g, i);
        /* Acquire: pairs with the owner's seq_cst arming CAS (its note_id before it). */
        uint32_t w = atomic_load_explicit(&ep->notify, memory_order_acquire);
        if (shml_note_get(w, (uint32_t)p) != SHML_NOTE_ARMED)
            continue;
        /*
         * The signal first, then the swap to signalled, from the very word read. The other
         * order would let a signal land after the owner, finding the point signalled, drained
         * and armed it again: the descriptor would stay readable while the point says armed,
         * and the owner, whose call skips the drain while the point is armed, would spin. And
         * a swap from an older arming than the one signalled would say "signalled" to an
         * arming whose drain ate the signal: the owner would wait for ever, as wakers skip a
         * signalled point. The armings count in the word makes such a swap fail; the waker
         * then signals again for the arming it reads now. Wakers that saw the same arming
         * may each signal, once.
         */
        while (shml_note_get(w, (uint32_t)p) == SHML_NOTE_ARMED) {
            ping(g, by, i);
            /* Acquire (on failure too): the word read again is used as the first one was. */
            if (atomic_compare_exchange_strong_explicit(
                    &ep->notify, &w, shml_note_set(w, (uint32_t)p, SHML_NOTE_SIGNALLED),
                    memory_order_acquire, memory_order_acquire)) {
                left--;
                armed_down(e);
                break;
            }
        }
    }
}

void shml__chan_note_release(const struct shml__chan_geo *g, uint32_t i, int32_t pid)
{
    struct shml_chan_ep *ep = shml__chan_ep(g, i);
    /* Relaxed: the entry's freeing publishes it; wakers CAS states that are gone then. */
    uint32_t w = atomic_exchange_explicit(&ep->notify, 0, memory_order_relaxed);
    for (uint32_t p = 0; p < SHML_NOTE_POINTS; p++) {
        struct shml_event_layout *e;
        if (shml_note_get(w, p) == SHML_NOTE_ARMED && (e = event_of(g, p, i)) != NULL)
            armed_down(e);
    }
    uint64_t id = atomic_exchange_explicit(&ep->note_id, 0, memory_order_relaxed);
    if (id != 0 && pid > 0)
        shml__os_note_remove(pid, id);
}

void shml__chan_note_close(shml_channel *ch, bool remove)
{
    if (ch->has_note) {
        shml__os_note_close(ch->note);
        if (remove)
            shml__os_note_remove((int32_t)ch->pid, ch->note_id);
        ch->has_note = false;
    }
    if (ch->peers) {
        for (uint32_t i = 0; i < ch->geo.nendpoints; i++)
            if (ch->peers[i].id != 0)
                shml__os_note_close(ch->peers[i].h);
        free(ch->peers);
        ch->peers = NULL;
    }
}
