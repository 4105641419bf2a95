/*
 * waitset.c - shml_waitset: many channels and plain descriptors in one wait, over the
 * platform's poller (os.h). Members live in a table whose index is the poller's key; free
 * entries are chained. A channel knows its set (shml_channel.ws), so that closing it takes it
 * out.
 */
#include "channel/channel.h"
#include "os/os.h"
#include "sync/futex.h"

#include <errno.h>
#include <stdlib.h>

struct member {
    shml_channel *ch; /* NULL: a plain descriptor, or a free entry */
    int fd;           /* the plain descriptor, or the channel's; -1: free */
    uint32_t events;
    void *user;
    uint32_t next_free;
};

struct shml_waitset {
    intptr_t poller;
    struct member *m;
    uint32_t n, cap;     /* entries in use or freed, and allocated */
    uint32_t free_head;  /* UINT32_MAX: none */
    uint32_t channels;   /* channel members (to skip the retry scan when there are none) */
};

#define NONE UINT32_MAX

int shml_waitset_create(shml_waitset **out)
{
    if (!out)
        return -EINVAL;
    shml_waitset *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -ENOMEM;
    int r = shml__os_poller_create(&ws->poller);
    if (r < 0) {
        free(ws);
        return shml__fail(-r, "cannot make a poller: %s", shml__os_strerror(-r));
    }
    ws->free_head = NONE;
    *out = ws;
    return 0;
}

static int take_entry(shml_waitset *ws, uint32_t *at)
{
    if (ws->free_head != NONE) {
        *at = ws->free_head;
        ws->free_head = ws->m[*at].next_free;
        return 0;
    }
    if (ws->n == ws->cap) {
        uint32_t cap = ws->cap ? ws->cap * 2 : 16;
        struct member *m = realloc(ws->m, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        ws->m = m;
        ws->cap = cap;
    }
    *at = ws->n++;
    return 0;
}

static void give_entry(shml_waitset *ws, uint32_t at)
{
    ws->m[at].ch = NULL;
    ws->m[at].fd = -1;
    ws->m[at].next_free = ws->free_head;
    ws->free_head = at;
}

static int find(const shml_waitset *ws, const shml_channel *ch, int fd)
{
    for (uint32_t i = 0; i < ws->n; i++)
        if (ws->m[i].fd >= 0 && ws->m[i].ch == ch && (ch || ws->m[i].fd == fd))
            return (int)i;
    return -1;
}

static int add(shml_waitset *ws, shml_channel *ch, int fd, uint32_t events, void *user)
{
    uint32_t at;
    if (find(ws, ch, fd) >= 0)
        return -EEXIST;
    if (take_entry(ws, &at) < 0)
        return -ENOMEM;
    int r = shml__os_poller_add(ws->poller, fd, events, at);
    if (r < 0) {
        give_entry(ws, at);
        return r == -EPERM ? shml__fail(EINVAL, "descriptor %d cannot be polled", fd)
                           : shml__fail(-r, "cannot poll descriptor %d: %s", fd,
                                        shml__os_strerror(-r));
    }
    ws->m[at] = (struct member){.ch = ch, .fd = fd, .events = events, .user = user,
                                .next_free = NONE};
    return 0;
}

int shml_waitset_add(shml_waitset *ws, shml_channel *ch, void *user)
{
    if (!ws || !ch)
        return -EINVAL;
    if (ch->ws == ws)
        return -EEXIST;
    if (ch->ws)
        return shml__fail(EBUSY, "the channel is in another wait set already");
    int fd = shml_channel_fd(ch);
    if (fd < 0)
        return fd;
    int r = add(ws, ch, fd, SHML_POLL_IN, user);
    if (r < 0)
        return r;
    ch->ws = ws;
    ws->channels++;
    return 0;
}

int shml_waitset_add_fd(shml_waitset *ws, int fd, uint32_t events, void *user)
{
    if (!ws || fd < 0 || events == 0 || (events & ~(SHML_READABLE | SHML_WRITABLE)))
        return -EINVAL;
    return add(ws, NULL, fd,
               ((events & SHML_READABLE) ? SHML_POLL_IN : 0u) |
                   ((events & SHML_WRITABLE) ? SHML_POLL_OUT : 0u),
               user);
}

static int remove_at(shml_waitset *ws, int at)
{
    struct member *m = &ws->m[at];
    shml__os_poller_remove(ws->poller, m->fd);
    if (m->ch) {
        m->ch->ws = NULL;
        ws->channels--;
    }
    give_entry(ws, (uint32_t)at);
    return 0;
}

int shml_waitset_remove(shml_waitset *ws, shml_channel *ch)
{
    if (!ws || !ch)
        return -EINVAL;
    int at = ch->ws == ws ? find(ws, ch, -1) : -1;
    return at < 0 ? -ENOENT : remove_at(ws, at);
}

int shml_waitset_remove_fd(shml_waitset *ws, int fd)
{
    if (!ws || fd < 0)
        return -EINVAL;
    int at = find(ws, NULL, fd);
    return at < 0 ? -ENOENT : remove_at(ws, at);
}

void shml__waitset_forget(shml_channel *ch)
{
    if (ch->ws)
        shml_waitset_remove(ch->ws, ch);
}

static void fill(struct shml_waitset_event *ev, const struct member *m, uint32_t events)
{
    ev->user = m->user;
    ev->ch = m->ch;
    ev->fd = m->fd;
    ev->events = m->ch ? SHML_READABLE
                       : ((events & SHML_POLL_IN) && (m->events & SHML_POLL_IN) ? SHML_READABLE : 0u) |
                             ((events & SHML_POLL_OUT) && (m->events & SHML_POLL_OUT)
                                  ? SHML_WRITABLE
                                  : 0u);
    if (ev->events == 0) /* a hang-up or error on a descriptor polled for one direction */
        ev->events = m->events & SHML_POLL_IN ? SHML_READABLE : SHML_WRITABLE;
}

/* The key of the bound token's wake-up in the poller: never a member's index. */
#define TOKEN_KEY UINT64_MAX

/* Put the wake-up of the thread's token (if one is bound) in the poller for this wait.
   1 if it is there (*h set), 0 no token, or -errno. */
static int token_in(shml_waitset *ws, intptr_t *h)
{
    shml_cancel *tok = shml_cancel_bound();
    if (!tok)
        return 0;
    int r = shml__cancel_wakeup(tok, h);
    if (r < 0 || (r = shml__os_poller_add(ws->poller, *h, SHML_POLL_IN, TOKEN_KEY)) < 0)
        return shml__fail(-r, "cannot wait for the cancellation token: %s",
                          shml__os_strerror(-r));
    return 1;
}

static int wait_members(shml_waitset *ws, struct shml_waitset_event *ready, size_t cap,
                        int64_t deadline, intptr_t token_h);

int shml_waitset_wait(shml_waitset *ws, struct shml_waitset_event *ready, size_t cap,
                      int64_t timeout_ns)
{
    if (!ws || !ready || cap == 0)
        return -EINVAL;
    int64_t deadline = shml__deadline(timeout_ns);
    intptr_t h = 0;
    int tok = token_in(ws, &h);
    if (tok < 0)
        return tok;
    /* After the wake-up is in place (shml__cancel_wakeup()): a fire from now on wakes us. */
    int r = shml__cancelled() ? -ECANCELED : wait_members(ws, ready, cap, deadline, h);
    if (tok)
        shml__os_poller_remove(ws->poller, h);
    return r;
}

static int wait_members(shml_waitset *ws, struct shml_waitset_event *ready, size_t cap,
                        int64_t deadline, intptr_t token_h)
{
    for (;;) {
        /* Channels whose last arming found a live holder in the way are due for a look by
           their retry time: wait no longer than the earliest. */
        int64_t until = deadline;
        bool due = false;
        if (ws->channels) {
            int64_t now = shml__os_mono_ns();
            for (uint32_t i = 0; i < ws->n; i++) {
                int64_t t;
                if (!ws->m[i].ch || (t = shml_channel_fd_timeout(ws->m[i].ch)) < 0)
                    continue;
                if (t == 0)
                    due = true;
                if (until < 0 || now + t < until)
                    until = now + t;
            }
        }
        struct shml__os_poll_ready got[64];
        int max = cap < 64 ? (int)cap : 64;
        int n = shml__os_poller_wait(ws->poller, got, max, due ? 0 : until);
        if (n < 0)
            return n == -EINTR ? -EINTR : shml__fail(-n, "poll: %s", shml__os_strerror(-n));
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            uint64_t at = got[i].key;
            if (at == TOKEN_KEY) {
                if (shml__cancelled())
                    return -ECANCELED;
                shml__os_wakeup_drain(token_h); /* a fire undone by a reset since */
                continue;
            }
            if (at >= ws->n || ws->m[at].fd < 0)
                continue;
            fill(&ready[k++], &ws->m[at], got[i].events);
        }
        /* Channels due for a look that the poller did not report. */
        if (ws->channels)
            for (uint32_t i = 0; i < ws->n && k < cap; i++) {
                if (!ws->m[i].ch || shml_channel_fd_timeout(ws->m[i].ch) != 0)
                    continue;
                bool listed = false;
                for (size_t j = 0; j < k && !listed; j++)
                    listed = ready[j].ch == ws->m[i].ch;
                if (!listed)
                    fill(&ready[k++], &ws->m[i], SHML_POLL_IN);
            }
        if (k > 0)
            return (int)k;
        if (deadline >= 0 && shml__os_mono_ns() >= deadline)
            return -ETIMEDOUT;
    }
}

int shml_waitset_destroy(shml_waitset *ws)
{
    if (!ws)
        return 0;
    for (uint32_t i = 0; i < ws->n; i++)
        if (ws->m[i].ch)
            ws->m[i].ch->ws = NULL;
    shml__os_poller_close(ws->poller);
    free(ws->m);
    free(ws);
    return 0;
}
