/*
 * Event loops on Windows (src/os/win32_notify.c): shml_channel_fd() is a manual-reset event's
 * handle as an int, signalled while the endpoint may make progress, and a shml_waitset waits
 * on any number of channels and plain waitable handles through its waiter threads.
 *
 *   - the descriptor protocol of a queue and a bus consumer, a producer's room and an rpc
 *     reply, with WaitForSingleObject on the handle, signalled from this process and from
 *     another one; the event's DACL from the channel's mode;
 *   - no notifier call by a producer while nobody is armed (the library's counters, which is
 *     why this binary links the static library), and one per arming;
 *   - a wait set of MANY channels and a manual-reset event and a semaphore, all fed by another
 *     process: every message received once, every semaphore unit reported once;
 *   - more than 64 plain handles signalled at once, and members removed while their waiter
 *     threads find them signalled;
 *   - a consumer killed (TerminateProcess) while armed: the producer neither blocks nor keeps
 *     paying;
 *   - the edges: bad handles, SHML_WRITABLE, a process handle, level-triggered reports,
 *     cancellation.
 *
 * Every wait is bounded; none asserts on speed: the costs are logged.
 */
#include "chan_util.h"

#include "os/os.h"
#include "sync/futex.h"

#include <windows.h>

#include <aclapi.h>
#include <stdlib.h>

static HANDLE handle_of(int fd)
{
    return (HANDLE)(intptr_t)fd;
}

/* Is the descriptor signalled within ms? (The owner's handle is a manual-reset event: the
   wait takes nothing.) */
static bool signalled(int fd, DWORD ms)
{
    DWORD w = WaitForSingleObject(handle_of(fd), ms);
    if (w != WAIT_OBJECT_0 && w != WAIT_TIMEOUT)
        shmt_fail(__FILE__, __LINE__, "WaitForSingleObject(%d): %lu, error %lu", fd,
                  (unsigned long)w, (unsigned long)GetLastError());
    return w == WAIT_OBJECT_0;
}

static uint64_t note_calls(void)
{
    return atomic_load_explicit(&shml__note_calls, memory_order_relaxed);
}

static uint64_t wake_calls(void)
{
    return atomic_load_explicit(&shml__futex_wake_calls, memory_order_relaxed);
}

/* The consumer side of the protocol on `in` while `out` sends: signalled at first, not once a
   receive said -ETIMEDOUT (a wait on it times out), signalled by a send, and so until a
   receive says -ETIMEDOUT. */
static void check_rx_protocol(shml_channel *out, shml_channel *in, const char *what)
{
    shmt_log("%s", what);
    int fd = shml_channel_fd(in);
    ASSERT_GT(fd, 0);
    ASSERT_EQ(shml_channel_fd(in), fd);
    ASSERT_TRUE(signalled(fd, 0)); /* it starts signalled */
    char buf[64];
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!signalled(fd, 50));
    ASSERT_EQ(shml_send(out, "abc", 3, 0), 3);
    ASSERT_TRUE(signalled(fd, 5000));
    ASSERT_TRUE(signalled(fd, 0)); /* level: still */
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), 3);
    ASSERT_EQ(memcmp(buf, "abc", 3), 0);
    ASSERT_TRUE(signalled(fd, 0)); /* until a receive says -ETIMEDOUT */
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!signalled(fd, 0));
    /* Two sends, one readiness; both messages are there. */
    ASSERT_EQ(shml_send(out, "d", 1, 0), 1);
    ASSERT_EQ(shml_send(out, "e", 1, 0), 1);
    ASSERT_TRUE(signalled(fd, 5000));
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), 1);
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), 1);
    ASSERT_EQ(buf[0], 'e');
    ASSERT_EQ(shml_recv(in, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!signalled(fd, 0));
}

/* argv: channel, messages. Open as a producer, say "ready", and on each "send" line send one
   message ("m") and say "sent" (its signal is then complete: see queue_bus_protocol). */
PEER(evw_sender)
{
    ASSERT_EQ(argc, 2);
    shml_channel *p = chan_open(argv[0], SHML_PRODUCER, SHML_WAIT_BLOCK);
    ASSERT_EQ(parent_send("ready"), 0);
    for (long i = atol(argv[1]); i > 0; i--) {
        ASSERT_EQ(parent_expect("send", 30000), 0);
        ASSERT_EQ(shml_send(p, "m", 1, WAIT_BOUND), 1);
        ASSERT_EQ(parent_send("sent"), 0);
    }
    ASSERT_OK(shml_channel_close(p));
    return 0;
}

TEST(queue_bus_protocol)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 4096, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    check_rx_protocol(q, c, "queue consumer, sends from another handle");

    /* Signalled from another process, which opens the event by its name. */
    pid_t p = spawn_peer("evw_sender", addr, "2");
    ASSERT_OK(peer_expect(p, "ready", 30000));
    int fd = shml_channel_fd(c);
    char buf[64];
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(!signalled(fd, 20));
        int64_t t0 = now_ns();
        ASSERT_OK(peer_send(p, "send"));
        ASSERT_TRUE(signalled(fd, 10000));
        shmt_log("signalled by another process in %.0f us (%s)", (double)(now_ns() - t0) / 1e3,
                 i == 0 ? "its first signal: open + SetEvent" : "its handle cached: SetEvent");
        /* A waker sets the event, then marks the arming signalled. A receive between the two
           finds the arming still armed and leaves the event set (one spurious readiness,
           cleared by the next call that finds nothing): the checks below need the send
           complete. */
        ASSERT_OK(peer_expect(p, "sent", 30000));
        ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), 1);
        ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    }
    ASSERT_EQ(wait_peer(p, 30000), 0);
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(q));

    shml_channel *b = chan_make(&addr, SHML_BUS, SHML_BLOCK, 4096, 64, 8);
    shml_channel *s = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    check_rx_protocol(b, s, "bus subscriber");
    ASSERT_OK(shml_channel_close(s));
    ASSERT_OK(shml_channel_close(b));
}

TEST(room_and_rpc)
{
    /* A producer's descriptor: room. */
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 2 * 128, 64, 8);
    shml_channel *p = chan_open(addr, SHML_PRODUCER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(p);
    ASSERT_GT(fd, 0);
    int sent = 0;
    while (shml_send(p, "x", 1, 0) == 1)
        sent++;
    ASSERT_EQ(sent, 2);
    ASSERT_TRUE(!signalled(fd, 50)); /* the failed send armed it */
    char buf[64];
    ASSERT_EQ(shml_recv(q, buf, sizeof buf, 0), 1);
    ASSERT_TRUE(signalled(fd, 5000));
    ASSERT_EQ(shml_send(p, "y", 1, 0), 1);
    ASSERT_OK(shml_channel_close(p));
    ASSERT_OK(shml_channel_close(q));

    /* rpc: the server's descriptor says a request waits, the client's that its reply does. */
    shml_channel *srv = chan_make(&addr, SHML_RPC, SHML_BLOCK, 4096, 64, 8);
    shml_channel *cli = chan_open(addr, SHML_CLIENT, SHML_WAIT_ADAPTIVE);
    int sfd = shml_channel_fd(srv), cfd = shml_channel_fd(cli);
    ASSERT_GT(sfd, 0);
    ASSERT_GT(cfd, 0);
    ASSERT_NE(sfd, cfd);
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), -ETIMEDOUT);
    ASSERT_TRUE(!signalled(sfd, 0));
    ASSERT_EQ(shml_send(cli, "ping", 4, 0), 4);
    ASSERT_TRUE(signalled(sfd, 5000));
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, 0), -ETIMEDOUT); /* no reply yet: armed */
    ASSERT_TRUE(!signalled(cfd, 50));
    ASSERT_EQ(shml_recv(srv, buf, sizeof buf, 0), 4);
    ASSERT_EQ(shml_send(srv, "pong", 4, 0), 4);
    ASSERT_TRUE(signalled(cfd, 5000));
    ASSERT_EQ(shml_recv(cli, buf, sizeof buf, 0), 4);
    ASSERT_EQ(memcmp(buf, "pong", 4), 0);
    ASSERT_OK(shml_channel_close(cli));
    ASSERT_OK(shml_channel_close(srv));
}

/* Entries of the event's DACL: how many, and the rights of Everyone (0 without an entry). */
static void event_dacl(int fd, DWORD *n, ACCESS_MASK *world)
{
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    ASSERT_EQ(GetSecurityInfo(handle_of(fd), SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL,
                              NULL, &dacl, NULL, &sd),
              ERROR_SUCCESS);
    ASSERT_NOT_NULL(dacl); /* never a NULL DACL */
    unsigned char ws[SECURITY_MAX_SID_SIZE];
    DWORD wn = sizeof(ws);
    ASSERT_TRUE(CreateWellKnownSid(WinWorldSid, NULL, ws, &wn));
    *n = dacl->AceCount;
    *world = 0;
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACCESS_ALLOWED_ACE *ace;
        ASSERT_TRUE(GetAce(dacl, i, (void **)&ace));
        if (EqualSid((PSID)&ace->SidStart, ws))
            *world = ace->Mask;
    }
    LocalFree(sd);
}

/* The event's security descriptor comes from the channel's mode bits, as the section's does. */
TEST(descriptor_dacl_from_mode)
{
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 4096, 64, 8);
    DWORD n;
    ACCESS_MASK world;
    event_dacl(shml_channel_fd(q), &n, &world);
    ASSERT_EQ(n, 1); /* 0600: the user alone */
    ASSERT_EQ(world, 0);
    ASSERT_OK(shml_channel_close(q));

    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.mode = 0666;
    o.capacity = 4096;
    o.max_msg = 64;
    const char *a = chan_addr();
    ASSERT_OK(shml_channel_create(a, &o, &q));
    event_dacl(shml_channel_fd(q), &n, &world);
    ASSERT_EQ(n, 3); /* the user, Authenticated Users, Everyone */
    ASSERT_EQ(world & (EVENT_MODIFY_STATE | SYNCHRONIZE), EVENT_MODIFY_STATE | SYNCHRONIZE);
    ASSERT_OK(shml_channel_close(q));
}

/* A producer pays no call while no consumer is armed, even one that has a descriptor; and
   one signal per arming. */
TEST(no_call_unarmed)
{
    const char *addr;
    shml_channel *p = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 64 * 128, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_ADAPTIVE);
    int fd = shml_channel_fd(c);
    ASSERT_GT(fd, 0);
    char buf[64];
    uint64_t notes = note_calls(), wakes = wake_calls();
    long n = chan_iters(100000, 1000);
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        ASSERT_EQ(shml_send(p, &i, sizeof i, 0), (ssize_t)sizeof i);
        ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), (ssize_t)sizeof i);
    }
    shmt_log("%ld unarmed send + recv: %.2f us each", n, (double)(now_ns() - t0) / 1e3 / n);
    ASSERT_EQ(note_calls() - notes, 0);
    ASSERT_EQ(wake_calls() - wakes, 0);
    /* Armed: the next send signals (the producer opens the consumer's event by its name the
       first time, then keeps the handle), once. */
    ASSERT_EQ(shml_recv(c, buf, sizeof buf, 0), -ETIMEDOUT);
    uint64_t armed = note_calls();
    ASSERT_EQ(shml_send(p, "a", 1, 0), 1);
    uint64_t first = note_calls() - armed;
    ASSERT_TRUE(first >= 1 && first <= 2); /* OpenEventW, SetEvent */
    ASSERT_TRUE(signalled(fd, 5000));
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(shml_send(p, "b", 1, 0), 1);
    ASSERT_EQ(note_calls() - armed, first); /* signalled: no more calls until it re-arms */
    /* Armed again: one SetEvent on the handle kept. */
    while (shml_recv(c, buf, sizeof buf, 0) > 0)
        ;
    armed = note_calls();
    ASSERT_EQ(shml_send(p, "c", 1, 0), 1);
    ASSERT_EQ(note_calls() - armed, 1);
    ASSERT_TRUE(signalled(fd, 5000));
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(p));
}

/* ---- a wait set of MANY channels and two plain handles, fed by another process ---- */

#define MANY 1000
/* Every EVERY messages the feeder sets the event and releases the semaphore once. */
#define EVERY 500

static void many_name(const char *base, int i, char *out, size_t cap)
{
    snprintf(out, cap, "%s.%d", base, i);
}

/* argv: base address, messages, event name, semaphore name. Opens every channel as a
   producer, then sends message k (its number, 8 bytes) to channel k * 7919 % MANY, waiting for
   room; every EVERY messages sets the event, then releases the semaphore. */
PEER(evw_feeder)
{
    ASSERT_EQ(argc, 4);
    long n = atol(argv[1]);
    static shml_channel *chs[MANY];
    for (int i = 0; i < MANY; i++) {
        char a[128];
        many_name(argv[0], i, a, sizeof a);
        chs[i] = chan_open(a, SHML_PRODUCER, SHML_WAIT_BLOCK);
    }
    HANDLE ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, argv[2]);
    HANDLE sem = OpenSemaphoreA(SEMAPHORE_MODIFY_STATE, FALSE, argv[3]);
    ASSERT_NOT_NULL(ev);
    ASSERT_NOT_NULL(sem);
    ASSERT_EQ(parent_send("ready"), 0);
    for (long k = 0; k < n; k++) {
        uint64_t v = (uint64_t)k;
        ssize_t r = shml_send(chs[(k * 7919) % MANY], &v, sizeof v, WAIT_BOUND);
        if (r != (ssize_t)sizeof v)
            shmt_fail(__FILE__, __LINE__, "send %ld: %zd %s", k, r, shml_last_error());
        if ((k + 1) % EVERY == 0) {
            ASSERT_TRUE(SetEvent(ev));
            ASSERT_TRUE(ReleaseSemaphore(sem, 1, NULL));
        }
    }
    for (int i = 0; i < MANY; i++)
        ASSERT_OK(shml_channel_close(chs[i]));
    CloseHandle(ev);
    CloseHandle(sem);
    return 0;
}

/* Drain one ready channel member; returns the messages it had. */
static long drain_member(const struct shml_waitset_event *e, uint8_t *seen, long n,
                         shml_channel *const *chs)
{
    long got = 0;
    for (;;) {
        uint64_t v;
        ssize_t r = shml_recv(e->ch, &v, sizeof v, 0);
        if (r == -ETIMEDOUT)
            return got;
        ASSERT_EQ(r, (ssize_t)sizeof v);
        ASSERT_TRUE(v < (uint64_t)n);
        ASSERT_EQ(seen[v], 0);
        ASSERT_TRUE(e->ch == chs[(v * 7919) % MANY]);
        seen[v] = 1;
        got++;
    }
}

TEST_TIMEOUT(waitset_many, 300)
{
    static shml_channel *chs[MANY];
    static char names[MANY][96];
    /* The win: segments go with their last handle: no cleanup to register (the harness keeps
       256 entries). */
    const char *base = shmt_fmt("win:shmt-evw-%lu", (unsigned long)GetCurrentProcessId());
    struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
    o.capacity = 4 * 128;
    o.max_msg = 64;
    o.endpoints = 4;
    o.role = SHML_CONSUMER;
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    int64_t t0 = now_ns();
    for (int i = 0; i < MANY; i++) {
        many_name(base, i, names[i], sizeof names[i]);
        ASSERT_OK(shml_channel_create(names[i], &o, &chs[i]));
        ASSERT_OK(shml_waitset_add(ws, chs[i], &chs[i]));
    }
    shmt_log("%d channels created and added in %.2f s", MANY, (double)(now_ns() - t0) / 1e9);
    ASSERT_EQ(shml_waitset_add(ws, chs[0], NULL), -EEXIST);
    /* Two plain handles: a manual-reset event (reset when reported) and a semaphore (each
       report takes one unit). */
    char evname[64], semname[64];
    snprintf(evname, sizeof evname, "Local\\shmt-evw-ev-%lu", (unsigned long)GetCurrentProcessId());
    snprintf(semname, sizeof semname, "Local\\shmt-evw-sem-%lu",
             (unsigned long)GetCurrentProcessId());
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, evname);
    HANDLE sem = CreateSemaphoreA(NULL, 0, 1 << 20, semname);
    ASSERT_NOT_NULL(ev);
    ASSERT_NOT_NULL(sem);
    int evfd = (int)(intptr_t)ev, semfd = (int)(intptr_t)sem;
    ASSERT_OK(shml_waitset_add_fd(ws, evfd, SHML_READABLE, &ev));
    ASSERT_OK(shml_waitset_add_fd(ws, semfd, SHML_READABLE, &sem));

    long n = chan_iters(20000, 2000);
    uint8_t *seen = calloc((size_t)n, 1);
    ASSERT_NOT_NULL(seen);
    t0 = now_ns();
    pid_t peer = spawn_peer("evw_feeder", base, shmt_fmt("%ld", n), evname, semname);
    ASSERT_OK(peer_expect(peer, "ready", 120000));
    shmt_log("the feeder opened %d channels in %.2f s", MANY, (double)(now_ns() - t0) / 1e9);
    long got = 0, ev_reports = 0, sem_reports = 0, waits = 0, reported = 0;
    long want_units = n / EVERY;
    struct shml_waitset_event evs[64];
    t0 = now_ns();
    while (got < n || sem_reports < want_units) {
        int k = shml_waitset_wait(ws, evs, 64, WAIT_BOUND);
        if (k < 0)
            shmt_fail(__FILE__, __LINE__, "wait: %d (%s) after %ld of %ld, %ld of %ld units", k,
                      shml_strerror(k), got, n, sem_reports, want_units);
        waits++;
        reported += k;
        for (int j = 0; j < k; j++) {
            if (evs[j].ch) {
                ASSERT_TRUE(*(shml_channel **)evs[j].user == evs[j].ch);
                got += drain_member(&evs[j], seen, n, chs);
            } else if (evs[j].fd == evfd) {
                ASSERT_TRUE(evs[j].user == &ev);
                ASSERT_EQ(evs[j].events, SHML_READABLE);
                ResetEvent(ev);
                ev_reports++;
            } else {
                ASSERT_EQ(evs[j].fd, semfd);
                ASSERT_TRUE(evs[j].user == &sem);
                sem_reports++;
            }
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    shmt_log("%ld messages over %d channels in %.2f s (%.0f per s): %ld waits, %.1f members "
             "per wait; event reported %ld times, semaphore %ld of %ld units",
             n, MANY, secs, (double)n / secs, waits, (double)reported / (double)waits, ev_reports,
             sem_reports, want_units);
    ASSERT_EQ(wait_peer(peer, 60000), 0);
    ASSERT_GE(ev_reports, 1);
    ASSERT_LE(ev_reports, want_units);
    /* Nothing more: a report still in flight is taken, then every member is quiet. */
    int k;
    while ((k = shml_waitset_wait(ws, evs, 64, 300 * MS)) > 0)
        for (int j = 0; j < k; j++) {
            if (evs[j].ch)
                ASSERT_EQ(drain_member(&evs[j], seen, n, chs), 0);
            else if (evs[j].fd == evfd)
                ResetEvent(ev);
            else
                shmt_fail(__FILE__, __LINE__, "a semaphore unit too many");
        }
    ASSERT_EQ(k, -ETIMEDOUT);
    ASSERT_EQ(sem_reports, want_units);
    for (long v = 0; v < n; v++)
        ASSERT_EQ(seen[v], 1);
    ASSERT_OK(shml_waitset_remove_fd(ws, evfd));
    ASSERT_OK(shml_waitset_remove_fd(ws, semfd));
    ASSERT_EQ(shml_waitset_remove_fd(ws, evfd), -ENOENT);
    ASSERT_OK(shml_waitset_remove(ws, chs[1]));
    ASSERT_EQ(shml_waitset_remove(ws, chs[1]), -ENOENT);
    t0 = now_ns();
    for (int i = 0; i < MANY; i++)
        ASSERT_OK(shml_channel_close(chs[i])); /* takes it out of the set */
    shmt_log("%d channels closed in %.2f s", MANY, (double)(now_ns() - t0) / 1e9);
    ASSERT_OK(shml_waitset_destroy(ws));
    CloseHandle(ev);
    CloseHandle(sem);
    free(seen);
}

/* ---- plain handles: more than 64 at once, removal while they fire ---- */

#define PLAIN 300

struct setter {
    HANDLE *evs;
    int n;
    _Atomic int stop;
};

static DWORD WINAPI set_all(void *arg)
{
    struct setter *s = arg;
    /* Relaxed: a stop flag; the thread's handle is waited on before anything is freed. */
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
        for (int i = 0; i < s->n; i++) {
            SetEvent(s->evs[i]);
            if (i % 7 == 0)
                ResetEvent(s->evs[(i * 13) % s->n]);
        }
    return 0;
}

TEST_TIMEOUT(waitset_plain_handles, 120)
{
    static HANDLE evs[PLAIN];
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    for (int i = 0; i < PLAIN; i++) {
        evs[i] = CreateEventA(NULL, TRUE, FALSE, NULL);
        ASSERT_NOT_NULL(evs[i]);
        ASSERT_OK(shml_waitset_add_fd(ws, (int)(intptr_t)evs[i], SHML_READABLE, &evs[i]));
    }
    /* All signalled at once: every one is reported, at most 64 per wait, each once per wait. */
    for (int i = 0; i < PLAIN; i++)
        SetEvent(evs[i]);
    static bool seen[PLAIN];
    int distinct = 0, waits = 0;
    struct shml_waitset_event ev[64];
    int64_t t0 = now_ns();
    while (distinct < PLAIN) {
        int k = shml_waitset_wait(ws, ev, 64, WAIT_BOUND);
        ASSERT_GE(k, 1);
        ASSERT_LE(k, 64);
        waits++;
        for (int j = 0; j < k; j++) {
            int i = (int)((HANDLE *)ev[j].user - evs);
            ASSERT_TRUE(i >= 0 && i < PLAIN);
            ASSERT_EQ(ev[j].fd, (int)(intptr_t)evs[i]);
            for (int l = 0; l < j; l++)
                ASSERT_TRUE(ev[l].user != ev[j].user);
            if (!seen[i]) {
                seen[i] = true;
                distinct++;
            }
        }
    }
    shmt_log("%d signalled handles reported in %d waits, %.1f ms", PLAIN, waits,
             (double)(now_ns() - t0) / 1e6);
    /* Level: still signalled, reported again; reset, no more. */
    ASSERT_GE(shml_waitset_wait(ws, ev, 64, WAIT_BOUND), 1);
    for (int i = 0; i < PLAIN; i++)
        ResetEvent(evs[i]);
    int k;
    while ((k = shml_waitset_wait(ws, ev, 64, 0)) > 0)
        ; /* reports queued before the resets */
    ASSERT_EQ(k, -ETIMEDOUT);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 64, 50 * MS), -ETIMEDOUT);

    /* Members removed and added again while another thread sets and resets them: no waiter
       may touch a removed member (a crash or a hang here), and the set keeps working. */
    struct setter s = {evs, PLAIN, 0};
    HANDLE th = CreateThread(NULL, 0, set_all, &s, 0, NULL);
    ASSERT_NOT_NULL(th);
    int rounds = (int)chan_iters(20, 5);
    long reports = 0;
    t0 = now_ns();
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < PLAIN; i++)
            ASSERT_OK(shml_waitset_remove_fd(ws, (int)(intptr_t)evs[i]));
        for (int i = 0; i < PLAIN; i++)
            ASSERT_OK(shml_waitset_add_fd(ws, (int)(intptr_t)evs[i], SHML_READABLE, &evs[i]));
        for (int w = 0; w < 5; w++) {
            k = shml_waitset_wait(ws, ev, 64, WAIT_BOUND);
            ASSERT_GE(k, 1);
            reports += k;
            /* Half of them out while the setter fires them (their waiter may have just
               found them signalled); back in. */
            for (int j = 0; j < k; j += 2)
                ASSERT_OK(shml_waitset_remove_fd(ws, ev[j].fd));
            for (int j = 0; j < k; j += 2)
                ASSERT_OK(shml_waitset_add_fd(ws, ev[j].fd, SHML_READABLE, ev[j].user));
        }
    }
    /* Relaxed: as in set_all(). */
    atomic_store_explicit(&s.stop, 1, memory_order_relaxed);
    ASSERT_EQ(WaitForSingleObject(th, 10000), WAIT_OBJECT_0);
    CloseHandle(th);
    shmt_log("%d rounds of %d removals and adds under fire, %ld reports: %.2f s", rounds, PLAIN,
             reports, (double)(now_ns() - t0) / 1e9);
    ASSERT_OK(shml_waitset_destroy(ws)); /* with members armed, queued and reported */
    for (int i = 0; i < PLAIN; i++)
        CloseHandle(evs[i]);
}

/* ---- deaths ---- */

/* argv: channel. Arm a consumer's descriptor and stay (killed armed). */
PEER(evw_armed)
{
    ASSERT_EQ(argc, 1);
    shml_channel *c = chan_open(argv[0], SHML_CONSUMER, SHML_WAIT_BLOCK);
    int fd = shml_channel_fd(c);
    ASSERT_GT(fd, 0);
    char b[64];
    while (shml_recv(c, b, sizeof b, 0) > 0)
        ;
    ASSERT_EQ(WaitForSingleObject(handle_of(fd), 0), WAIT_TIMEOUT);
    ASSERT_EQ(parent_send("armed"), 0);
    shmt_sleep_ms(60000);
    return 0;
}

TEST_TIMEOUT(armed_consumer_killed, 120)
{
    const char *addr;
    shml_channel *p = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 1024 * 128, 64, 8);
    shml_channel *c = chan_open(addr, SHML_CONSUMER, SHML_WAIT_BLOCK);
    char b[64];
    int rounds = (int)chan_iters(20, 4);
    for (int i = 0; i < rounds; i++) {
        pid_t k = spawn_peer("evw_armed", addr);
        ASSERT_OK(peer_expect(k, "armed", 30000));
        ASSERT_EQ(kill_peer(k, SIGKILL), 128 + SIGKILL);
        /* The producer neither blocks nor keeps paying: the first send tries the dead
           endpoint's event once (gone with its process: the open fails), the others make no
           call. */
        uint64_t before = note_calls();
        int64_t t0 = now_ns();
        ASSERT_EQ(shml_send(p, "x", 1, WAIT_BOUND), 1);
        uint64_t first = note_calls();
        for (int j = 0; j < 100; j++)
            ASSERT_EQ(shml_send(p, "y", 1, 0), 1);
        ASSERT_EQ(note_calls(), first);
        /* open (and the close of the last round's cached handle, if one was opened) */
        ASSERT_TRUE(first - before >= 1 && first - before <= 3);
        if (i == 0)
            shmt_log("101 sends after the kill: %.0f us, %llu notifier calls",
                     (double)(now_ns() - t0) / 1e3, (unsigned long long)(first - before));
        for (int j = 0; j < 101; j++)
            ASSERT_EQ(shml_recv(c, b, sizeof b, 0), 1);
        ASSERT_EQ(shml_channel_check(addr, SHML_CHECK_REPAIR, NULL, NULL), 0);
    }
    ASSERT_OK(shml_channel_close(c));
    ASSERT_OK(shml_channel_close(p));
}

/* argv: none. Say "up" and wait for "exit". */
PEER(evw_idle)
{
    ASSERT_EQ(argc, 0);
    (void)argv;
    ASSERT_EQ(parent_send("up"), 0);
    ASSERT_EQ(parent_expect("exit", 30000), 0);
    return 0;
}

/* Wait-set edges: bad handles and events, a process handle, timeouts, cancellation. */
TEST(waitset_edges)
{
    shml_waitset *ws;
    ASSERT_OK(shml_waitset_create(&ws));
    struct shml_waitset_event ev[4];
    int64_t t0 = now_ns();
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 30 * MS), -ETIMEDOUT);
    ASSERT_GE(now_ns() - t0, 30 * MS); /* never early */
    ASSERT_EQ(shml_waitset_wait(ws, ev, 0, 0), -EINVAL);
    ASSERT_EQ(shml_waitset_add_fd(ws, -1, SHML_READABLE, NULL), -EINVAL);
    HANDLE e = CreateEventA(NULL, TRUE, FALSE, NULL);
    ASSERT_NOT_NULL(e);
    int efd = (int)(intptr_t)e;
    ASSERT_EQ(shml_waitset_add_fd(ws, efd, 0, NULL), -EINVAL);
    ASSERT_EQ(shml_waitset_add_fd(ws, efd, SHML_WRITABLE, NULL), -EINVAL); /* no "writable" */
    ASSERT_EQ(shml_waitset_add_fd(ws, efd, SHML_READABLE | SHML_WRITABLE, NULL), -EINVAL);
    /* A value that is no handle of this process (far above any handle table's size). */
    ASSERT_EQ(shml_waitset_add_fd(ws, 0x3ffffff0, SHML_READABLE, NULL), -EBADF);
    /* A handle without SYNCHRONIZE cannot be waited on. */
    HANDLE nosync;
    ASSERT_TRUE(DuplicateHandle(GetCurrentProcess(), e, GetCurrentProcess(), &nosync,
                                EVENT_MODIFY_STATE, FALSE, 0));
    ASSERT_EQ(shml_waitset_add_fd(ws, (int)(intptr_t)nosync, SHML_READABLE, NULL), -EINVAL);
    CloseHandle(nosync);

    /* A manual-reset event: reported while set (level), not once reset. */
    ASSERT_OK(shml_waitset_add_fd(ws, efd, SHML_READABLE, (void *)7));
    ASSERT_EQ(shml_waitset_add_fd(ws, efd, SHML_READABLE, NULL), -EEXIST);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 20 * MS), -ETIMEDOUT);
    t0 = now_ns();
    SetEvent(e);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, WAIT_BOUND), 1);
    shmt_log("SetEvent to its report: %.0f us", (double)(now_ns() - t0) / 1e3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(shml_waitset_wait(ws, ev, 4, WAIT_BOUND), 1);
        ASSERT_TRUE(ev[0].user == (void *)7);
        ASSERT_EQ(ev[0].events, SHML_READABLE);
        ASSERT_EQ(ev[0].fd, efd);
        ASSERT_TRUE(ev[0].ch == NULL);
    }
    ResetEvent(e);
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 0), -ETIMEDOUT); /* looked at again at once */
    ASSERT_OK(shml_waitset_remove_fd(ws, efd));
    ASSERT_EQ(shml_waitset_remove_fd(ws, efd), -ENOENT);

    /* A process handle: reported when the process ends. */
    pid_t p = spawn_peer("evw_idle");
    ASSERT_OK(peer_expect(p, "up", 30000));
    HANDLE ph = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)p);
    ASSERT_NOT_NULL(ph);
    ASSERT_OK(shml_waitset_add_fd(ws, (int)(intptr_t)ph, SHML_READABLE, (void *)9));
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, 20 * MS), -ETIMEDOUT);
    ASSERT_OK(peer_send(p, "exit"));
    ASSERT_EQ(shml_waitset_wait(ws, ev, 4, WAIT_BOUND), 1);
    ASSERT_TRUE(ev[0].user == (void *)9);
    ASSERT_EQ(wait_peer(p, 10000), 0);
    ASSERT_OK(shml_waitset_remove_fd(ws, (int)(intptr_t)ph));
    CloseHandle(ph);

    /* A channel in one set is refused by another; destroying the set frees it. */
    const char *addr;
    shml_channel *q = chan_make(&addr, SHML_QUEUE, SHML_BLOCK, 16 * 128, 64, 8);
    shml_waitset *other;
    ASSERT_OK(shml_waitset_create(&other));
    ASSERT_OK(shml_waitset_add(ws, q, NULL));
    ASSERT_EQ(shml_waitset_add(other, q, NULL), -EBUSY);
    ASSERT_OK(shml_waitset_add_fd(ws, efd, SHML_READABLE, NULL));
    SetEvent(e);
    ASSERT_OK(shml_waitset_destroy(ws)); /* members armed and queued */
    ASSERT_OK(shml_waitset_add(other, q, NULL));
    /* A channel member starts ready (its descriptor starts signalled). */
    ASSERT_EQ(shml_waitset_wait(other, ev, 4, WAIT_BOUND), 1);
    ASSERT_TRUE(ev[0].ch == q);
    char b[16];
    ASSERT_EQ(shml_recv(q, b, sizeof b, 0), -ETIMEDOUT);
    ASSERT_EQ(shml_waitset_wait(other, ev, 4, 0), -ETIMEDOUT);
    /* The thread's cancellation token, fired before the wait. */
    shml_cancel *tok;
    ASSERT_OK(shml_cancel_create(&tok, 0));
    shml_cancel *was = shml_cancel_bind(tok);
    ASSERT_OK(shml_cancel_fire(tok));
    ASSERT_EQ(shml_waitset_wait(other, ev, 4, SHML_FOREVER), -ECANCELED);
    shml_cancel_bind(was);
    shml_cancel_destroy(tok);
    ASSERT_OK(shml_waitset_destroy(other));
    ASSERT_OK(shml_channel_close(q));
    CloseHandle(e);
}
