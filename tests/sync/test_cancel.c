/*
 * Cancellation tokens (sync.h): every kind of wait of the library, asleep in the kernel, ends
 * with -ECANCELED when the token bound to its thread is fired from another thread or from a
 * signal handler; what can be done without waiting still is; nothing is taken or lost; the
 * waits of other threads are untouched; the same holds where the kernel cannot sleep on two
 * words (the fallback in slices, forced through the library's internal switch, which is why
 * this file is in the binary that links the static library).
 *
 * Each wait is bounded by WAIT_BOUND: a cancellation that does not wake it shows as
 * -ETIMEDOUT. The tests fire only once the waiter sleeps in the kernel (AWAIT_FUTEX), so
 * the wake-up, not a look before sleeping, is what ends it.
 */
#include "sync_util.h"

#include "sync/futex.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One wait, run by a thread with `tok` bound. */
struct waiter {
    int (*op)(struct waiter *w);
    shml_cancel *tok;
    void *obj;     /* what the op waits on */
    char buf[64];  /* what a receive got */
    _Atomic pid_t tid;
    int result;
    pthread_t thread;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    shml_cancel_bind(w->tok);
    atomic_store_explicit(&w->tid, sync_gettid(), memory_order_relaxed);
    w->result = w->op(w);
    shml_cancel_bind(NULL);
    return NULL;
}

static void waiter_start(struct waiter *w)
{
    atomic_store_explicit(&w->tid, 0, memory_order_relaxed);
    ASSERT_EQ(pthread_create(&w->thread, NULL, waiter_main, w), 0);
    int64_t deadline = now_ns() + WAIT_BOUND;
    while (atomic_load_explicit(&w->tid, memory_order_relaxed) == 0 && now_ns() < deadline)
        shmt_sleep_ms(1);
    ASSERT_NE(atomic_load_explicit(&w->tid, memory_order_relaxed), 0);
}

/* Start `w`, wait until it sleeps in the kernel, fire its token, and return its result. */
static int cancel_asleep(struct waiter *w)
{
    waiter_start(w);
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&w->tid, memory_order_relaxed), 10000);
    ASSERT_OK(shml_cancel_fire(w->tok));
    pthread_join(w->thread, NULL);
    return w->result;
}

static shml_cancel *new_token(unsigned flags)
{
    shml_cancel *c = NULL;
    ASSERT_OK(shml_cancel_create(&c, flags));
    return c;
}

TEST(cancel_token_api)
{
    shml_cancel *c = NULL;
    ASSERT_ERR(shml_cancel_create(NULL, 0), -EINVAL);
    ASSERT_ERR(shml_cancel_create(&c, 0x80), -EINVAL);
    ASSERT_OK(shml_cancel_create(&c, SHML_CANCEL_SIGNALS));
    ASSERT_FALSE(shml_cancel_fired(c));
    ASSERT_FALSE(shml_cancel_fired(NULL));
    ASSERT_ERR(shml_cancel_fire(NULL), -EINVAL);
    ASSERT_ERR(shml_cancel_reset(NULL), -EINVAL);
    ASSERT_OK(shml_cancel_fire(c));
    ASSERT_OK(shml_cancel_fire(c)); /* twice is once */
    ASSERT_TRUE(shml_cancel_fired(c));
    ASSERT_OK(shml_cancel_reset(c));
    ASSERT_FALSE(shml_cancel_fired(c));
    shml_cancel *d = new_token(0);
    ASSERT_NULL(shml_cancel_bound());
    ASSERT_NULL(shml_cancel_bind(c));
    ASSERT_PTR_EQ(shml_cancel_bind(d), c);
    ASSERT_PTR_EQ(shml_cancel_bound(), d);
    ASSERT_PTR_EQ(shml_cancel_bind(NULL), d);
    ASSERT_STR_EQ(shml_strerror(-ECANCELED), "cancelled");
    shml_cancel_destroy(c);
    shml_cancel_destroy(d);
    shml_cancel_destroy(NULL);
}

/* ---- events, semaphores, mutexes ---- */

struct sync_area {
    shml_event ev;
    shml_sem sem;
    shml_mutex mx;
};

/* The objects, in a segment of the test's; *seg is closed by the test. */
static struct sync_area *sync_area(shml_segment **seg)
{
    const char *addr;
    struct sync_area *a = sync_seg_create(4096, &addr, seg);
    ASSERT_OK(shml_event_init(&a->ev));
    ASSERT_OK(shml_sem_init(&a->sem, 0));
    ASSERT_OK(shml_mutex_init(&a->mx));
    return a;
}

static int op_event(struct waiter *w)
{
    struct sync_area *a = w->obj;
    return shml_event_wait(&a->ev, shml_event_read(&a->ev), WAIT_BOUND);
}

static int op_sem(struct waiter *w)
{
    struct sync_area *a = w->obj;
    return shml_sem_wait(&a->sem, WAIT_BOUND);
}

static int op_mutex(struct waiter *w)
{
    struct sync_area *a = w->obj;
    int r = shml_mutex_lock(&a->mx, WAIT_BOUND);
    if (r == 0)
        shml_mutex_unlock(&a->mx);
    return r;
}

/* The sync waits end with -ECANCELED, and leave the object as it was. */
static void sync_waits_cancelled(void)
{
    shml_segment *seg;
    struct sync_area *a = sync_area(&seg);
    struct waiter w = {.tok = new_token(0), .obj = a};

    uint32_t gen = shml_event_read(&a->ev);
    w.op = op_event;
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_EQ(shml_event_read(&a->ev), gen);

    ASSERT_OK(shml_cancel_reset(w.tok));
    w.op = op_sem;
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_EQ(shml_sem_value(&a->sem), 0u);

    /* The mutex sleeps in the C library, which a fire cannot wake: it looks between slices. */
    ASSERT_OK(shml_cancel_reset(w.tok));
    ASSERT_OK(shml_mutex_lock(&a->mx, WAIT_BOUND));
    w.op = op_mutex;
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_OK(shml_mutex_unlock(&a->mx)); /* still ours: the cancelled wait took nothing */
    shml_cancel_destroy(w.tok);
    shml_segment_close(seg);
}

TEST(cancel_sync_waits)
{
    sync_waits_cancelled();
}

/* Without futex_waitv every wait looks at its token between slices; the result is the same. */
TEST(cancel_sync_waits_without_waitv)
{
    atomic_store_explicit(&shml__futex_waitv_missing, true, memory_order_relaxed);
    sync_waits_cancelled();
}

/* A thread that holds the mutex of `a` until `release` is set. */
struct holder {
    struct sync_area *a;
    _Atomic int held, release;
};

static void *hold_mutex(void *arg)
{
    struct holder *h = arg;
    if (shml_mutex_lock(&h->a->mx, WAIT_BOUND) != 0)
        return NULL;
    atomic_store(&h->held, 1);
    int64_t deadline = now_ns() + WAIT_BOUND;
    while (!atomic_load(&h->release) && now_ns() < deadline)
        shmt_sleep_ms(1);
    shml_mutex_unlock(&h->a->mx);
    return NULL;
}

/* A fired token makes a wait a try: what is there is taken; nothing else is. */
TEST(cancel_fired_is_a_try)
{
    shml_segment *seg;
    struct sync_area *a = sync_area(&seg);
    shml_cancel *c = new_token(0);
    ASSERT_OK(shml_cancel_fire(c));
    shml_cancel_bind(c);
    ASSERT_ERR(shml_sem_wait(&a->sem, WAIT_BOUND), -ECANCELED);
    ASSERT_OK(shml_sem_post(&a->sem));
    ASSERT_OK(shml_sem_wait(&a->sem, WAIT_BOUND));
    ASSERT_EQ(shml_sem_value(&a->sem), 0u);
    uint32_t gen = shml_event_read(&a->ev);
    ASSERT_ERR(shml_event_wait(&a->ev, gen, WAIT_BOUND), -ECANCELED);
    ASSERT_OK(shml_event_notify(&a->ev, SHML_WAKE_ALL));
    ASSERT_OK(shml_event_wait(&a->ev, gen, WAIT_BOUND));
    ASSERT_OK(shml_mutex_lock(&a->mx, WAIT_BOUND)); /* free: taken */
    ASSERT_OK(shml_mutex_unlock(&a->mx));
    /* Busy: a wait is cancelled, a try fails as any try does. */
    struct holder h = {.a = a};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, hold_mutex, &h), 0);
    int64_t deadline = now_ns() + WAIT_BOUND;
    while (!atomic_load(&h.held) && now_ns() < deadline)
        shmt_sleep_ms(1);
    ASSERT_TRUE(atomic_load(&h.held));
    ASSERT_ERR(shml_mutex_lock(&a->mx, WAIT_BOUND), -ECANCELED);
    ASSERT_ERR(shml_mutex_lock(&a->mx, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_sem_wait(&a->sem, 0), -ETIMEDOUT);
    ASSERT_ERR(shml_event_wait(&a->ev, shml_event_read(&a->ev), 0), -ETIMEDOUT);
    atomic_store(&h.release, 1);
    pthread_join(t, NULL);
    /* After a reset, a wait waits again (and times out here). */
    ASSERT_OK(shml_cancel_reset(c));
    ASSERT_ERR(shml_sem_wait(&a->sem, 20 * MS), -ETIMEDOUT);
    shml_cancel_bind(NULL);
    shml_cancel_destroy(c);
    shml_segment_close(seg);
}

/* A token bound to one thread leaves the waits of others alone. */
TEST(cancel_other_threads_untouched)
{
    shml_segment *seg;
    struct sync_area *a = sync_area(&seg);
    shml_cancel *c = new_token(0);
    struct waiter cancelled = {.tok = c, .obj = a, .op = op_sem};
    struct waiter plain = {.tok = NULL, .obj = a, .op = op_sem};
    waiter_start(&plain);
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&plain.tid, memory_order_relaxed), 10000);
    ASSERT_ERR(cancel_asleep(&cancelled), -ECANCELED);
    ASSERT_TRUE(in_futex(getpid(), atomic_load_explicit(&plain.tid, memory_order_relaxed)));
    ASSERT_OK(shml_sem_post(&a->sem));
    pthread_join(plain.thread, NULL);
    ASSERT_OK(plain.result);
    shml_cancel_destroy(c);
    shml_segment_close(seg);
}

/* ---- from a signal handler ---- */

static shml_cancel *alarm_token;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    shml_cancel_fire(alarm_token); /* async-signal-safe by contract */
    errno = saved;
}

/* Set by the handler in the waiting thread, read by the test's: an atomic, lock-free. */
static _Atomic int usr1_seen;

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&usr1_seen, 1);
    errno = saved;
}

static void handle(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the sleep sees EINTR */
    ASSERT_OK(sigaction(sig, &sa, NULL));
}

TEST(cancel_fired_by_signal_handler)
{
    shml_segment *seg;
    struct sync_area *a = sync_area(&seg);
    alarm_token = new_token(0);
    handle(SIGALRM, on_alarm);
    struct waiter w = {.tok = alarm_token, .obj = a, .op = op_event};
    waiter_start(&w);
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&w.tid, memory_order_relaxed), 10000);
    /* To the waiting thread itself, as a Ctrl-C usually comes. */
    ASSERT_EQ(pthread_kill(w.thread, SIGALRM), 0);
    pthread_join(w.thread, NULL);
    ASSERT_ERR(w.result, -ECANCELED);
    shml_cancel_destroy(alarm_token);
    shml_segment_close(seg);
}

/* SHML_CANCEL_SIGNALS: any handler that interrupts the sleep fires the token. */
TEST(cancel_on_signals)
{
    shml_segment *seg;
    struct sync_area *a = sync_area(&seg);
    handle(SIGUSR1, on_usr1);
    /* Without the flag, the wait goes on after the handler ran (and times out here). */
    struct waiter w = {.tok = new_token(0), .obj = a};
    w.op = op_sem;
    waiter_start(&w);
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&w.tid, memory_order_relaxed), 10000);
    ASSERT_EQ(pthread_kill(w.thread, SIGUSR1), 0);
    int64_t t0 = now_ns();
    while (!atomic_load(&usr1_seen) && now_ns() - t0 < WAIT_BOUND)
        shmt_sleep_ms(1);
    ASSERT_TRUE(atomic_load(&usr1_seen));
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&w.tid, memory_order_relaxed), 10000);
    ASSERT_OK(shml_sem_post(&a->sem));
    pthread_join(w.thread, NULL);
    ASSERT_OK(w.result);
    ASSERT_FALSE(shml_cancel_fired(w.tok));
    shml_cancel_destroy(w.tok);

    /* With it, the wait ends, the token fired. */
    atomic_store(&usr1_seen, 0);
    w.tok = new_token(SHML_CANCEL_SIGNALS);
    waiter_start(&w);
    AWAIT_FUTEX(getpid(), atomic_load_explicit(&w.tid, memory_order_relaxed), 10000);
    ASSERT_EQ(pthread_kill(w.thread, SIGUSR1), 0);
    pthread_join(w.thread, NULL);
    ASSERT_ERR(w.result, -ECANCELED);
    ASSERT_TRUE(atomic_load(&usr1_seen));
    ASSERT_TRUE(shml_cancel_fired(w.tok));
    ASSERT_EQ(shml_sem_value(&a->sem), 0u);
    shml_cancel_destroy(w.tok);
    shml_segment_close(seg);
}

/* ---- channels ---- */

static shml_channel *chan_create(const char *addr, uint32_t kind, unsigned role, size_t cap)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.kind = kind;
    o.role = role;
    o.capacity = cap;
    o.max_msg = 64;
    shml_channel *ch = NULL;
    ASSERT_OK(shml_channel_create(addr, &o, &ch));
    return ch;
}

static shml_channel *chan_open(const char *addr, unsigned role)
{
    shml_channel *ch = NULL;
    ASSERT_OK(shml_channel_open(addr, role, NULL, &ch));
    return ch;
}

static int op_recv(struct waiter *w)
{
    ssize_t n = shml_recv(w->obj, w->buf, sizeof w->buf, WAIT_BOUND);
    return n < 0 ? (int)n : 0;
}

static int op_send(struct waiter *w)
{
    ssize_t n = shml_send(w->obj, "more", 4, WAIT_BOUND);
    return n < 0 ? (int)n : 0;
}

static int op_peek(struct waiter *w)
{
    const void *p;
    size_t len;
    int r = shml_peek(w->obj, &p, &len, WAIT_BOUND);
    if (r == 0)
        shml_release(w->obj);
    return r;
}

/*
 * Cancel a receive asleep on `rx`, then show nothing was lost: a message sent after is what the
 * next receive gets, and the counters add up.
 */
static void recv_cancelled(shml_channel *rx, shml_channel *tx, int (*op)(struct waiter *))
{
    struct waiter w = {.tok = new_token(0), .obj = rx, .op = op};
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_EQ(shml_send(tx, "after", 5, WAIT_BOUND), 5);
    ASSERT_OK(shml_cancel_reset(w.tok));
    waiter_start(&w);
    pthread_join(w.thread, NULL);
    ASSERT_OK(w.result);
    if (op == op_recv)
        ASSERT_STR_EQ(w.buf, "after");
    shml_cancel_destroy(w.tok);
}

/* A channel made with one role and opened with another, by this process. */
struct pair {
    shml_channel *made, *opened;
};

static struct pair pair_make(uint32_t kind, unsigned made_role, unsigned opened_role, size_t cap)
{
    const char *a = shmt_posix_name();
    struct pair p = {chan_create(a, kind, made_role, cap), NULL};
    p.opened = chan_open(a, opened_role);
    return p;
}

static void pair_close(struct pair p)
{
    shml_channel_close(p.opened);
    shml_channel_close(p.made);
}

TEST(cancel_channel_waits)
{
    /* queue: a receive, a peek, and a send into a full ring */
    struct pair q = pair_make(SHML_QUEUE, SHML_PRODUCER, SHML_CONSUMER, 2 * 128);
    recv_cancelled(q.opened, q.made, op_recv);
    recv_cancelled(q.opened, q.made, op_peek);
    while (shml_send(q.made, "fill", 4, 0) == 4) {
    }
    struct waiter w = {.tok = new_token(0), .obj = q.made, .op = op_send};
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(q.made, &st));
    ASSERT_EQ(st.sent, st.received + st.queued);
    shml_cancel_destroy(w.tok);
    pair_close(q);

    /* bus: a subscriber's receive */
    struct pair b = pair_make(SHML_BUS, SHML_PRODUCER, SHML_CONSUMER, 0);
    recv_cancelled(b.opened, b.made, op_recv);
    pair_close(b);

    /* latest: a reader waiting for a value newer than the one it read */
    struct pair l = pair_make(SHML_LATEST, SHML_PRODUCER, SHML_CONSUMER, 0);
    ASSERT_EQ(shml_send(l.made, "v1", 2, 0), 2);
    ASSERT_EQ(shml_recv(l.opened, (char[64]){0}, 64, 0), 2);
    recv_cancelled(l.opened, l.made, op_recv);
    pair_close(l);

    /* rpc: a server waiting for a request, a client waiting for its reply */
    struct pair r = pair_make(SHML_RPC, SHML_SERVER, SHML_CLIENT, 0);
    shml_channel *srv = r.made, *cli = r.opened;
    recv_cancelled(srv, cli, op_recv);
    ASSERT_EQ(shml_send(srv, "r", 1, 0), 1);
    ASSERT_EQ(shml_recv(cli, (char[64]){0}, 64, WAIT_BOUND), 1);
    ASSERT_EQ(shml_send(cli, "q", 1, 0), 1);
    ASSERT_EQ(shml_recv(srv, (char[64]){0}, 64, 0), 1);
    w = (struct waiter){.tok = new_token(0), .obj = cli, .op = op_recv};
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_EQ(shml_send(srv, "a", 1, 0), 1);
    ASSERT_OK(shml_cancel_reset(w.tok));
    waiter_start(&w);
    pthread_join(w.thread, NULL);
    ASSERT_OK(w.result); /* the reply waited for the cancelled client */
    ASSERT_STR_EQ(w.buf, "a");
    shml_cancel_destroy(w.tok);
    pair_close(r);
}

/* ---- opens that wait ---- */

static int op_open_segment(struct waiter *w)
{
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.flags = SHML_WAIT;
    o.timeout_ns = WAIT_BOUND;
    shml_segment *seg = NULL;
    int r = shml_segment_open(w->obj, &o, &seg);
    if (r == 0)
        shml_segment_close(seg);
    else
        snprintf(w->buf, sizeof w->buf, "%s", shml_last_error());
    return r;
}

static int op_open_channel(struct waiter *w)
{
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.flags = SHML_WAIT;
    o.timeout_ns = WAIT_BOUND;
    shml_channel *ch = NULL;
    int r = shml_channel_open(w->obj, SHML_CONSUMER, &o, &ch);
    if (r == 0)
        shml_channel_close(ch);
    return r;
}

static int op_request(struct waiter *w)
{
    ssize_t n = shml_send(w->obj, "q", 1, WAIT_BOUND);
    if (n < 0)
        snprintf(w->buf, sizeof w->buf, "%s", shml_last_error());
    return n < 0 ? (int)n : 0;
}

TEST(cancel_opens_that_wait)
{
    struct waiter w = {.tok = new_token(0), .obj = (void *)shmt_posix_name()};
    w.op = op_open_segment;
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_TRUE(strstr(w.buf, "cancelled") != NULL);
    ASSERT_OK(shml_cancel_reset(w.tok));
    w.op = op_open_channel;
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);

    /* an rpc client opened SHML_WAIT waits for a server to attach */
    const char *r = shmt_posix_name();
    shml_channel *srv = chan_create(r, SHML_RPC, SHML_SERVER, 0);
    ASSERT_OK(shml_channel_close(srv));
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.flags = SHML_WAIT;
    shml_channel *cli = NULL;
    ASSERT_OK(shml_channel_open(r, SHML_CLIENT, &o, &cli));
    ASSERT_OK(shml_cancel_reset(w.tok));
    w.obj = cli;
    w.op = op_request;
    ASSERT_ERR(cancel_asleep(&w), -ECANCELED);
    ASSERT_TRUE(strstr(w.buf, "cancelled while waiting for a server") != NULL); /* says why */
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(cli, &st));
    ASSERT_EQ(st.sent, 0u);
    shml_channel_close(cli);
    shml_cancel_destroy(w.tok);
}

/* ---- a storm: cancellations while messages flow lose none ---- */

struct storm {
    shml_channel *rx;
    shml_cancel *tok;
    long want;
    long got;
    long cancels;
};

static void *storm_receiver(void *arg)
{
    struct storm *s = arg;
    shml_cancel_bind(s->tok);
    char buf[64];
    while (s->got < s->want) {
        ssize_t n = shml_recv(s->rx, buf, sizeof buf, WAIT_BOUND);
        if (n == -ECANCELED) {
            s->cancels++;
            shml_cancel_reset(s->tok);
            continue;
        }
        if (n < 0)
            shmt_fail(__FILE__, __LINE__, "recv: %s", shml_strerror((int)n));
        long v = strtol(buf, NULL, 10);
        if (v != s->got)
            shmt_fail(__FILE__, __LINE__, "message %ld where %ld was due", v, s->got);
        s->got++;
    }
    return NULL;
}

TEST(cancel_storm_loses_nothing)
{
    const char *a = shmt_posix_name();
    shml_channel *tx = chan_create(a, SHML_QUEUE, SHML_PRODUCER, 8 * 128);
    struct storm s = {.rx = chan_open(a, SHML_CONSUMER), .tok = new_token(0),
                      .want = sync_iters(20000, 2000)};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, storm_receiver, &s), 0);
    unsigned seed = sync_seed();
    for (long i = 0; i < s.want; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "%ld", i);
        ASSERT_EQ(shml_send(tx, msg, (size_t)len + 1, WAIT_BOUND), len + 1);
        if (rand_r(&seed) % 4 == 0)
            shml_cancel_fire(s.tok);
        if (rand_r(&seed) % 64 == 0)
            shmt_sleep_ms(1); /* let the receiver catch up and sleep */
    }
    pthread_join(t, NULL);
    ASSERT_EQ(s.got, s.want);
    ASSERT_GT(s.cancels, 0);
    struct shml_channel_stats st;
    ASSERT_OK(shml_channel_get_stats(tx, &st));
    ASSERT_EQ(st.sent, (uint64_t)s.want);
    ASSERT_EQ(st.received, (uint64_t)s.want);
    shml_channel_close(s.rx);
    shml_channel_close(tx);
    shml_cancel_destroy(s.tok);
}

/* The channel waits without futex_waitv: slices that look at the token. */
TEST(cancel_channel_wait_without_waitv)
{
    atomic_store_explicit(&shml__futex_waitv_missing, true, memory_order_relaxed);
    struct pair q = pair_make(SHML_QUEUE, SHML_PRODUCER, SHML_CONSUMER, 2 * 128);
    recv_cancelled(q.opened, q.made, op_recv);
    /* The slices are the sleep's own business: a wait still counts one sleep. */
    struct shml_channel_stats before, after;
    ASSERT_OK(shml_channel_get_stats(q.made, &before));
    shml_cancel *c = new_token(0);
    shml_cancel_bind(c);
    ASSERT_ERR(shml_recv(q.opened, (char[64]){0}, 64, 200 * MS), -ETIMEDOUT);
    shml_cancel_bind(NULL);
    ASSERT_OK(shml_channel_get_stats(q.made, &after));
    ASSERT_EQ(after.sleeps - before.sleeps, 1u);
    shml_cancel_destroy(c);
    pair_close(q);
}
