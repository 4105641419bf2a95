/*
 * bench_channel.c - what shmlink's channels cost, next to the raw mechanisms and the kernel's.
 *
 * One program measures, in the same run and with the same harness, each channel operation and
 * the baselines it is judged against, so that their ratios mean something on a noisy machine:
 *
 *   round trip of a 64-byte message between two processes pinned to two CPUs
 *     raw spin        two 128-byte mailboxes (a sequence word and 64 bytes), polled with C11
 *                     acquire loads and written with release stores, no pause instruction
 *     queue, spin     two SHML_SPSC queues, one each way, endpoints in SHML_WAIT_SPIN:
 *                     the target is a median <= 1.3x the raw spin
 *     raw futex       the same mailboxes with FUTEX_WAIT / FUTEX_WAKE (always a wake call)
 *     queue, blocking the same queues in SHML_WAIT_BLOCK: the target is <= 1.15x the raw futex
 *     kernel          two pipes, a Unix stream socket pair, two POSIX message queues
 *     diagnostics     the queue in the default adaptive mode, without SHML_SPSC, and with
 *                     SHML_FOREVER instead of a bounded timeout; the raw spin with a pause
 *   zero-copy round trip of 1 MiB and 16 MiB messages (shml_claim/shml_commit, shml_peek/
 *   shml_release, spin mode): the target is <= 2x the 64-byte queue round trip. Each side
 *   writes an 8-byte stamp in the first cache line of the message and the other checks it
 *   ("header"); the "line per page" rows stamp and check the first line of every 4 KiB page,
 *   to show what touching the data costs (the bytes, not the channel)
 *   one-way streaming of 64 B, 4 KiB and 64 KiB messages (the peer produces, this process
 *   consumes)
 *     raw ring        a single-producer single-consumer ring of the same slot count and slot
 *                     size as the queue, whose producer and consumer publish their index with a
 *                     release store after every message, or after every 16
 *     shml_send/recv  per message, spin mode: the target is >= 0.8x the raw ring publishing
 *                     every message (in messages per second; for 4 KiB and 64 KiB, in GB/s)
 *     batch           shml_send_batch/shml_recv_batch of up to 16 messages, spin mode: the
 *                     target is >= 0.7x the raw ring publishing every 16
 *     kernel          a pipe, a Unix stream socket pair, a POSIX message queue (not 64 KiB:
 *                     larger than the default msgsize_max)
 *   bus (SHML_BUS, SHML_BLOCK) of 64-byte messages with 1 and 4 subscribers: the target is a
 *   publisher rate with 4 >= 0.5x that with 1. The subscribers all run on the second CPU, in
 *   the adaptive mode (spinning subscribers that share a CPU would burn one another's time
 *   slices), so on a 2-CPU machine the 4 subscribers share what the 1 had to itself.
 *
 * Method (that of bench_sync.c). Repetitions are interleaved: repetition r runs every
 * benchmark once before repetition r+1 starts, so a slow minute of a shared machine hurts all
 * of them alike. The peer processes are forked for each repetition of each benchmark, pinned
 * with sched_setaffinity() to the second CPU (this process is on the first), and die with this
 * process (PR_SET_PDEATHSIG).
 *
 * Round trips are timed one by one: one CLOCK_MONOTONIC read (vDSO) after each round trip,
 * each sample the difference from the previous read, so that every sample includes exactly one
 * clock read (its cost is measured and printed at the start). The percentiles are over all
 * round trips of all repetitions, after untimed warm-up round trips. Streaming and bus rows
 * time chunks of messages (at least 16 messages and 256 KiB) on the receiving side (the
 * publishing side for the bus), after a warm-up of a tenth of the messages; their percentiles
 * are over chunks. The targets are ratios of medians of the same run; each is followed by the
 * same ratio taken repetition by repetition (median and range), which a machine that changes
 * between repetitions disturbs less.
 *
 * Bounds and cleanup. Every wait on shared memory is bounded (WAIT_LIMIT_NS; the library's
 * calls get it as their timeout, the raw loops read the clock once every 2^20 polls), so a lost
 * wake-up shows as an error, never as a hang. The kernel mechanisms' calls have no timeout that
 * costs nothing, so an alarm bounds every repetition of every benchmark instead. The raw
 * baselines share a memfd: segment (nothing in /dev/shm); the channels, which need a name, are
 * created at a unique posix: name that is unlinked as soon as the peers have opened it (and by
 * the handler of SIGINT, SIGTERM, SIGHUP and SIGALRM before that); the message queues are
 * unlinked right after they are opened, before the fork.
 *
 * Usage: bench_channel [--quick] [--rounds N] [--reps N] [--msgs N] [--cpus A,B]
 *                      [--only TEXT,...]
 * (No benchmark's name has a comma, so that --only can name any of them.)
 * Exit status: 0 when every benchmark ran or was not available in this library (targets met
 * or not: this is a measurement, not a test), 1 when one failed (a timeout, a wrong message,
 * a failed call), 2 for a usage error.
 */
#include <shmlink.h>

#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The batch calls arrive in the library separately from this benchmark: referenced weakly, a
 * library without them still links and runs it, and their rows say "not available".
 */
#pragma weak shml_send_batch
#pragma weak shml_recv_batch

/* No single wait in a benchmark may take longer than this: past it, the run has failed. */
#define WAIT_LIMIT_NS ((int64_t)10 * 1000000000)
#define WAIT_LIMIT_S (WAIT_LIMIT_NS / 1000000000) /* the futex waits' bound, per sleep */
/* The small message of the round trips, the streams and the bus. */
#define SMALL 64
/* Messages per batch call, and the raw ring's publication interval to compare them with. */
#define BATCH 16
/* The channels of the streaming rows and the bus: the library's default capacity. */
#define STREAM_CAPACITY ((size_t)1 << 20)
/* The slot header the library puts before each message (shmlink/channel.h: 16 bytes). */
#define SLOT_HDR 16
/* Most subscribers of a bus row. */
#define MAX_PEERS 4
/* A page, for the zero-copy rows that touch one line per page. */
#define PAGE 4096

/* ---- options ---- */

struct opts {
    long rounds; /* round trips per repetition (64-byte rows; the large rows run fewer) */
    long reps;   /* repetitions of every benchmark */
    long msgs;   /* 64-byte messages streamed per repetition (larger sizes: fewer) */
    int cpu[2];  /* this process's and the peers' CPU; -1: not pinned */
    bool quick;
    const char *only; /* TEXT[,TEXT...]: run only the benchmarks whose name contains one */
};

/* ---- the shared mapping of the raw baselines ---- */

/*
 * A one-message mailbox: the number of the message in it, then the message, laid out as a
 * queue slot is (a 16-byte header, then the bytes), on its own 128-byte slot.
 */
struct mbox {
    alignas(128) _Atomic uint32_t seq; /* the message's number; also the futex word */
    uint32_t len;
    uint64_t pad;
    unsigned char data[SMALL];
};

/* The raw ring's bytes: the largest geometry of a STREAM_CAPACITY queue. */
#define RING_BYTES STREAM_CAPACITY

/*
 * Everything the processes touch through the memfd: segment. Each word one process writes
 * and another polls sits on its own 128-byte slot (two cache lines, because adjacent-line
 * prefetch pairs them), so the benchmarks measure the hand-over of one line, not false sharing.
 */
struct shared {
    alignas(128) _Atomic uint32_t ready; /* peers that are pinned, set up and about to start */
    alignas(128) _Atomic uint32_t fail;  /* a peer saw an error (its text is in why[]) */
    char why[256];
    alignas(128) struct mbox ping;      /* raw round trips: this process -> peer */
    alignas(128) struct mbox pong;      /* raw round trips: peer -> this process */
    alignas(128) _Atomic uint64_t head; /* raw ring: messages the producer has published */
    alignas(128) _Atomic uint64_t tail; /* raw ring: messages the consumer is done with */
    alignas(128) unsigned char ring[RING_BYTES];
};

/* ---- small tools ---- */

/* The message stamp: a message's number in its first 8 bytes. */
static void stamp(unsigned char *msg, uint64_t n)
{
    memcpy(msg, &n, sizeof n);
}

static int check_stamp(const unsigned char *msg, size_t len, size_t want_len, uint64_t n)
{
    uint64_t got;
    if (len != want_len)
        return -EMSGSIZE;
    memcpy(&got, msg, sizeof got);
    return got == n ? 0 : -EBADMSG; /* a lost, repeated or torn message */
}

static ssize_t write_full(int fd, const void *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static ssize_t read_full(int fd, void *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, (char *)p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE; /* EOF: the other side is gone */
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* ---- samples of one benchmark, pooled over its repetitions ---- */

struct series {
    const char *name;
    double *v; /* ns per round trip, or ns per message */
    size_t n, cap;
    double *rep; /* the median of each repetition's samples */
    size_t nrep;
    bool failed;
    char na[200];  /* not empty: the library cannot run it, and why */
    double sleeps; /* library rows: sleeps per message, summed over repetitions (stats) */
    long sleep_reps;
};

static int series_reserve(struct series *s, size_t more)
{
    if (s->n + more <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->n + more)
        cap *= 2;
    double *v = realloc(s->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->v = v;
    s->cap = cap;
    return 0;
}

static double median_of(const double *v, size_t n)
{
    double *w = malloc((n ? n : 1) * sizeof *w);
    if (!w)
        return 0;
    memcpy(w, v, n * sizeof *w);
    qsort(w, n, sizeof *w, cmp_double);
    double m = bench_pct_sorted(w, n, 50);
    free(w);
    return m;
}

/* Close a repetition: its median goes to rep[] for the per-repetition ratios. */
static void series_end_rep(struct series *s, size_t first)
{
    if (s->n > first)
        s->rep[s->nrep++] = median_of(s->v + first, s->n - first);
}

static bool series_ok(const struct series *s)
{
    return !s->failed && !s->na[0] && s->n > 0;
}

/* ---- cleanup of names, also from a signal handler ---- */

/*
 * The /dev/shm paths of channels that exist under a name right now. The handler unlinks them
 * and ends the process (the peers die with it), so a run that is interrupted or hangs leaves
 * nothing behind; unlink() is async-signal-safe.
 */
static char name_path[2][96];
static volatile sig_atomic_t name_armed[2];
static const char *volatile current_bench = "";

static void on_fatal_signal(int sig)
{
    for (int k = 0; k < 2; k++)
        if (name_armed[k])
            unlink(name_path[k]);
    static const char pre[] = "bench_channel: ";
    const char *what =
        sig == SIGALRM ? ": a repetition takes too long: a lost wake-up?\n" : ": interrupted\n";
    const char *b = current_bench;
    if (write(STDERR_FILENO, pre, sizeof pre - 1) < 0 || write(STDERR_FILENO, b, strlen(b)) < 0 ||
        write(STDERR_FILENO, what, strlen(what)) < 0) {
        /* nothing more to say */
    }
    _exit(1); /* the peers die with us (PR_SET_PDEATHSIG) */
}

/* ---- one benchmark's state ---- */

struct ctx {
    struct shared *sh;
    const struct opts *o;
    const char *bench;
    size_t size;         /* message bytes */
    long count;          /* round trips, or messages, of this repetition (warm-up included) */
    uint32_t wait;       /* SHML_WAIT_* of every endpoint */
    uint32_t flags;      /* channel flags: SHML_SPSC or 0 */
    int64_t timeout;     /* the library calls' timeout */
    bool pages;          /* zero-copy: stamp every page, not only the first line */
    int every;           /* raw ring: publish the index every `every` messages */
    char addr[2][80];    /* channel addresses (posix:), "" if none */
    shml_channel *ch[2]; /* this process's endpoints */
    int fd[4];           /* pipes: [0]->[1] out, [2]->[3] back; socket pair: [0], [1] */
    mqd_t mq[2];
    unsigned char *msg; /* a message to send (BATCH of the largest size) */
    unsigned char *buf; /* where messages are received (as large) */
    /* the raw ring, in each process: its own index and a cached copy of the other's */
    uint64_t rmine, rcache, rslots;
    uint32_t rstride;
};

static void ctx_reset(struct ctx *c)
{
    c->ch[0] = c->ch[1] = NULL;
    c->addr[0][0] = c->addr[1][0] = '\0';
    for (int k = 0; k < 4; k++)
        c->fd[k] = -1;
    c->mq[0] = c->mq[1] = (mqd_t)-1;
    c->rmine = c->rcache = 0;
}

/* ---- peers ---- */

typedef void (*peer_fn)(struct ctx *c, int k);

static _Noreturn void peer_fail(struct ctx *c, const char *what, long err)
{
    const char *detail = shml_last_error();
    snprintf(c->sh->why, sizeof c->sh->why, "%s: %s%s%s%s", what, shml_strerror((int)err),
             detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
    /* Release: pairs with the parent's acquire loads of fail in start_peers() and
       finish_peers(): the text above is complete when it sees fail != 0. */
    atomic_store_explicit(&c->sh->fail, 1, memory_order_release);
    _exit(1);
}

static void peer_ready(struct ctx *c)
{
    /* Release: pairs with the parent's acquire load of ready; what the peer set up (its
       endpoints) is in place before the parent goes on and unlinks the names. */
    atomic_fetch_add_explicit(&c->sh->ready, 1, memory_order_release);
}

static void kill_all(const pid_t *pid, int n)
{
    for (int k = 0; k < n; k++)
        if (pid[k] > 0) {
            kill(pid[k], SIGKILL);
            waitpid(pid[k], NULL, 0);
        }
}

/*
 * Fork n peers, pinned to the second CPU, each calling fn(c, k) (which reports ready itself
 * once set up), and wait until all are ready. Returns 0, or -1 (reported; peers killed).
 */
static int start_peers(struct ctx *c, peer_fn fn, int n, pid_t *pid)
{
    atomic_store_explicit(&c->sh->ready, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh->fail, 0, memory_order_relaxed);
    for (int k = 0; k < n; k++)
        pid[k] = 0;
    fflush(NULL);
    for (int k = 0; k < n; k++) {
        pid[k] = fork();
        if (pid[k] < 0) {
            fprintf(stderr, "bench_channel: %s: fork: %s\n", c->bench, strerror(errno));
            kill_all(pid, k);
            return -1;
        }
        if (pid[k] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() == 1)
                _exit(1);
            bench_pin("bench_channel", c->o->cpu[1]);
            fn(c, k);
            _exit(0);
        }
    }
    int64_t deadline = now_ns() + WAIT_LIMIT_NS;
    /* Acquire: pairs with each peer's release in peer_ready(). */
    while (atomic_load_explicit(&c->sh->ready, memory_order_acquire) < (uint32_t)n) {
        /* Acquire: pairs with peer_fail()'s release store, so why[] is complete. */
        if (atomic_load_explicit(&c->sh->fail, memory_order_acquire)) {
            fprintf(stderr, "bench_channel: %s: peer: %s\n", c->bench, c->sh->why);
            kill_all(pid, n);
            return -1;
        }
        if (now_ns() > deadline) {
            fprintf(stderr, "bench_channel: %s: the peers did not start\n", c->bench);
            kill_all(pid, n);
            return -1;
        }
        sched_yield();
    }
    return 0;
}

/* Wait for the peers to exit (bounded); report a failure. Returns 0 or -1. */
static int finish_peers(struct ctx *c, pid_t *pid, int n)
{
    int64_t deadline = now_ns() + WAIT_LIMIT_NS;
    int rc = 0;
    for (int k = 0; k < n; k++) {
        int status = 0;
        for (;;) {
            pid_t r = waitpid(pid[k], &status, WNOHANG);
            if (r == pid[k])
                break;
            if (r < 0 && errno != EINTR) {
                fprintf(stderr, "bench_channel: %s: waitpid: %s\n", c->bench, strerror(errno));
                return -1;
            }
            if (now_ns() > deadline) {
                kill_all(pid + k, n - k);
                fprintf(stderr, "bench_channel: %s: a peer did not finish in time (killed)\n",
                        c->bench);
                return -1;
            }
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        pid[k] = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = -1;
    }
    /* Acquire: pairs with peer_fail()'s release store, so why[] is complete. */
    if (atomic_load_explicit(&c->sh->fail, memory_order_acquire)) {
        fprintf(stderr, "bench_channel: %s: peer: %s\n", c->bench, c->sh->why);
        return -1;
    }
    if (rc < 0)
        fprintf(stderr, "bench_channel: %s: a peer ended abnormally\n", c->bench);
    return rc;
}

/* ---- channels at unique names ---- */

static void report(const char *bench, const char *what, long rc)
{
    const char *detail = shml_last_error();
    fprintf(stderr, "bench_channel: %s: %s: %s%s%s%s\n", bench, what, shml_strerror((int)rc),
            detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

/*
 * Create channel k of this benchmark at a fresh posix: name (this process's endpoint in
 * c->ch[k]), armed for the signal handler until unlink_names(). Returns 0 or the error.
 */
static int create_channel(struct ctx *c, int k, const struct shml_channel_opts *co)
{
    static unsigned serial;
    char name[64];
    snprintf(name, sizeof name, "shml-bench-ch-%d-%u", (int)getpid(), serial++);
    snprintf(c->addr[k], sizeof c->addr[k], "posix:/%s", name);
    snprintf(name_path[k], sizeof name_path[k], "/dev/shm/%s", name);
    name_armed[k] = 1;
    int rc = shml_channel_create(c->addr[k], co, &c->ch[k]);
    if (rc < 0) {
        name_armed[k] = 0;
        c->addr[k][0] = '\0';
    }
    return rc;
}

/* Unlink the names of this benchmark's channels: the peers have them open by now. */
static void unlink_names(struct ctx *c)
{
    for (int k = 0; k < 2; k++) {
        if (c->addr[k][0]) {
            shml_segment_unlink(c->addr[k]);
            c->addr[k][0] = '\0';
        }
        name_armed[k] = 0;
    }
}

/* Close this process's endpoints, pipes, sockets and queues (names unlinked first). */
static void release_all(struct ctx *c)
{
    unlink_names(c);
    for (int k = 0; k < 2; k++) {
        shml_channel_close(c->ch[k]);
        c->ch[k] = NULL;
        if (c->mq[k] != (mqd_t)-1)
            mq_close(c->mq[k]);
        c->mq[k] = (mqd_t)-1;
    }
    for (int k = 0; k < 4; k++) {
        if (c->fd[k] >= 0)
            close(c->fd[k]);
        c->fd[k] = -1;
    }
}

/* The peer's end of channel k, opened with role `role` and the benchmark's wait. */
static shml_channel *peer_open(struct ctx *c, int k, unsigned role)
{
    struct shml_channel_opts co = {.wait = c->wait};
    shml_channel *ch = NULL;
    int rc = shml_channel_open(c->addr[k], role, &co, &ch);
    if (rc < 0)
        peer_fail(c, "shml_channel_open", rc);
    return ch;
}

/* A queue for messages of c->size bytes with `capacity` bytes of slots (0: two slots). */
static int create_queue(struct ctx *c, int k, size_t capacity)
{
    size_t stride = (SLOT_HDR + c->size + 63) / 64 * 64;
    struct shml_channel_opts co = {
        .kind = SHML_QUEUE,
        .capacity = capacity ? capacity : 2 * stride,
        .max_msg = c->size,
        .wait = c->wait,
        .flags = c->flags,
    };
    return create_channel(c, k, &co);
}

/* Sleeps per message over the channel's life so far, from its stats (0 if none counted). */
static void add_sleeps(struct ctx *c, struct series *s, long messages)
{
    struct shml_channel_stats st;
    double sl = 0;
    for (int k = 0; k < 2; k++)
        if (c->ch[k] && shml_channel_get_stats(c->ch[k], &st) == 0)
            sl += (double)st.sleeps;
    if (messages > 0) {
        s->sleeps += sl / (double)messages;
        s->sleep_reps++;
    }
}

/* ---- raw spin and futex round trips ---- */

/*
 * Put message n in a mailbox. The other side reads the previous message out before it
 * answers it, and this side writes the next only after the answer, so the bytes are free.
 */
static void mbox_put(struct mbox *m, const unsigned char *msg, uint32_t n)
{
    m->len = SMALL;
    memcpy(m->data, msg, SMALL);
    /* Release: pairs with the acquire load in bench_spin_wait(), bench_spin_wait_pause() or
       bench_futex_wait() of the other process: len and data come before the number. */
    atomic_store_explicit(&m->seq, n, memory_order_release);
}

/* Copy message n out of a mailbox (its number was seen with acquire) and check it. */
static int mbox_take(const struct mbox *m, unsigned char *buf, uint32_t n)
{
    memcpy(buf, m->data, SMALL);
    return check_stamp(buf, m->len, SMALL, n);
}

enum { RAW_SPIN, RAW_PAUSE, RAW_FUTEX };

static int raw_wait(int how, struct mbox *m, uint32_t n)
{
    switch (how) {
    case RAW_SPIN:
        return bench_spin_wait(&m->seq, n, WAIT_LIMIT_NS);
    case RAW_PAUSE:
        return bench_spin_wait_pause(&m->seq, n, WAIT_LIMIT_NS);
    default:
        return bench_futex_wait(&m->seq, n, WAIT_LIMIT_S);
    }
}

static void raw_post(int how, struct mbox *m, const unsigned char *msg, uint32_t n)
{
    mbox_put(m, msg, n);
    if (how == RAW_FUTEX)
        futex(&m->seq, FUTEX_WAKE, 1, NULL); /* always a wake: the classic raw ping-pong */
}

static int setup_raw(struct ctx *c)
{
    atomic_store_explicit(&c->sh->ping.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh->pong.seq, 0, memory_order_relaxed);
    return 0;
}

static void peer_raw(struct ctx *c, int how)
{
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        int rc = raw_wait(how, &c->sh->ping, (uint32_t)i);
        if (rc == 0)
            rc = mbox_take(&c->sh->ping, c->buf, (uint32_t)i);
        if (rc < 0)
            peer_fail(c, "raw wait", rc);
        raw_post(how, &c->sh->pong, c->buf, (uint32_t)i);
    }
}

static int round_raw(struct ctx *c, int how, uint32_t i)
{
    stamp(c->msg, i);
    raw_post(how, &c->sh->ping, c->msg, i);
    int rc = raw_wait(how, &c->sh->pong, i);
    return rc < 0 ? rc : mbox_take(&c->sh->pong, c->buf, i);
}

static void peer_raw_spin(struct ctx *c, int k)
{
    (void)k;
    peer_raw(c, RAW_SPIN);
}

static void peer_raw_pause(struct ctx *c, int k)
{
    (void)k;
    peer_raw(c, RAW_PAUSE);
}

static void peer_raw_futex(struct ctx *c, int k)
{
    (void)k;
    peer_raw(c, RAW_FUTEX);
}

static int round_raw_spin(struct ctx *c, uint32_t i)
{
    return round_raw(c, RAW_SPIN, i);
}

static int round_raw_pause(struct ctx *c, uint32_t i)
{
    return round_raw(c, RAW_PAUSE, i);
}

static int round_raw_futex(struct ctx *c, uint32_t i)
{
    return round_raw(c, RAW_FUTEX, i);
}

/* ---- queue round trips: channel 0 carries the ping, channel 1 the pong ---- */

static int setup_queues(struct ctx *c)
{
    /* 16 slots: more than a ping-pong needs; small, so it stays in cache. */
    size_t cap = 16 * ((SLOT_HDR + c->size + 63) / 64 * 64);
    int rc = create_queue(c, 0, cap);
    if (rc >= 0)
        rc = create_queue(c, 1, cap);
    return rc;
}

static void peer_queue(struct ctx *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER), *out = peer_open(c, 1, SHML_PRODUCER);
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        ssize_t n = shml_recv(in, c->buf, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv", n);
        int rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        n = shml_send(out, c->buf, (size_t)n, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send", n);
    }
    shml_channel_close(in);
    shml_channel_close(out);
}

static int round_queue(struct ctx *c, uint32_t i)
{
    stamp(c->msg, i);
    ssize_t n = shml_send(c->ch[0], c->msg, c->size, c->timeout);
    if (n < 0)
        return (int)n;
    n = shml_recv(c->ch[1], c->buf, c->size, c->timeout);
    if (n < 0)
        return (int)n;
    return check_stamp(c->buf, (size_t)n, c->size, i);
}

/* ---- zero-copy round trips ---- */

/* Stamp a message in place: its first line, or the first line of every page. */
static void zc_write(unsigned char *p, size_t len, bool pages, uint64_t n)
{
    size_t step = pages ? PAGE : len;
    for (size_t off = 0; off < len; off += step)
        stamp(p + off, n);
}

static int zc_check(const unsigned char *p, size_t len, size_t want, bool pages, uint64_t n)
{
    if (len != want)
        return -EMSGSIZE;
    size_t step = pages ? PAGE : len;
    for (size_t off = 0; off < len; off += step) {
        uint64_t got;
        memcpy(&got, p + off, sizeof got);
        if (got != n)
            return -EBADMSG;
    }
    return 0;
}

static int setup_zc(struct ctx *c)
{
    int rc = create_queue(c, 0, 0);
    if (rc >= 0)
        rc = create_queue(c, 1, 0);
    return rc;
}

static void peer_zc(struct ctx *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER), *out = peer_open(c, 1, SHML_PRODUCER);
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        const void *q;
        size_t len;
        int rc = shml_peek(in, &q, &len, c->timeout);
        if (rc < 0)
            peer_fail(c, "shml_peek", rc);
        rc = zc_check(q, len, c->size, c->pages, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        rc = shml_release(in);
        if (rc < 0)
            peer_fail(c, "shml_release", rc);
        void *p;
        rc = shml_claim(out, c->size, &p, c->timeout);
        if (rc < 0)
            peer_fail(c, "shml_claim", rc);
        zc_write(p, c->size, c->pages, (uint64_t)i);
        rc = shml_commit(out, c->size);
        if (rc < 0)
            peer_fail(c, "shml_commit", rc);
    }
    shml_channel_close(in);
    shml_channel_close(out);
}

static int round_zc(struct ctx *c, uint32_t i)
{
    void *p;
    int rc = shml_claim(c->ch[0], c->size, &p, c->timeout);
    if (rc < 0)
        return rc;
    zc_write(p, c->size, c->pages, i);
    rc = shml_commit(c->ch[0], c->size);
    if (rc < 0)
        return rc;
    const void *q;
    size_t len;
    rc = shml_peek(c->ch[1], &q, &len, c->timeout);
    if (rc < 0)
        return rc;
    rc = zc_check(q, len, c->size, c->pages, i);
    int rr = shml_release(c->ch[1]);
    return rc < 0 ? rc : rr;
}

/* ---- kernel round trips: pipes, a socket pair, message queues ---- */

static int setup_pipes(struct ctx *c)
{
    if (pipe(c->fd) != 0 || pipe(c->fd + 2) != 0)
        return -errno;
    return 0;
}

static int setup_socketpair(struct ctx *c)
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, c->fd) == 0 ? 0 : -errno;
}

/* Two message queues of c->size messages, unlinked at once: the descriptors outlive the
   names, and the fork hands them to the peer. */
static int setup_mqs(struct ctx *c)
{
    static unsigned serial;
    struct mq_attr at = {.mq_maxmsg = 10, .mq_msgsize = (long)c->size};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "/shml-bench-mq-%d-%u", (int)getpid(), serial++);
        c->mq[k] = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
        if (c->mq[k] == (mqd_t)-1)
            return -errno;
        mq_unlink(name);
    }
    return 0;
}

/* Descriptors of the three mechanisms: where this process and the peer send and receive. */
enum { K_PIPE, K_SOCK, K_MQ };

static ssize_t k_send(struct ctx *c, int kind, bool peer, const void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return write_full(peer ? c->fd[3] : c->fd[1], p, len);
    case K_SOCK:
        return write_full(peer ? c->fd[1] : c->fd[0], p, len);
    default:
        return mq_send(c->mq[peer ? 1 : 0], p, len, 0) == 0 ? (ssize_t)len : -errno;
    }
}

static ssize_t k_recv(struct ctx *c, int kind, bool peer, void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return read_full(peer ? c->fd[0] : c->fd[2], p, len);
    case K_SOCK:
        return read_full(peer ? c->fd[1] : c->fd[0], p, len);
    default:
        return mq_receive(c->mq[peer ? 0 : 1], p, len, NULL);
    }
}

static void peer_kernel_rt(struct ctx *c, int kind)
{
    peer_ready(c);
    for (long i = 1; i <= c->count; i++) {
        ssize_t n = k_recv(c, kind, true, c->buf, c->size);
        if (n < 0)
            peer_fail(c, "receive", n);
        int rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "the ping", rc);
        n = k_send(c, kind, true, c->buf, c->size);
        if (n < 0)
            peer_fail(c, "send", n);
    }
}

static int round_kernel(struct ctx *c, int kind, uint32_t i)
{
    stamp(c->msg, i);
    ssize_t n = k_send(c, kind, false, c->msg, c->size);
    if (n < 0)
        return (int)n;
    n = k_recv(c, kind, false, c->buf, c->size);
    if (n < 0)
        return (int)n;
    return check_stamp(c->buf, (size_t)n, c->size, i);
}

static void peer_pipe_rt(struct ctx *c, int k)
{
    (void)k;
    peer_kernel_rt(c, K_PIPE);
}

static void peer_sock_rt(struct ctx *c, int k)
{
    (void)k;
    peer_kernel_rt(c, K_SOCK);
}

static void peer_mq_rt(struct ctx *c, int k)
{
    (void)k;
    peer_kernel_rt(c, K_MQ);
}

static int round_pipe(struct ctx *c, uint32_t i)
{
    return round_kernel(c, K_PIPE, i);
}

static int round_sock(struct ctx *c, uint32_t i)
{
    return round_kernel(c, K_SOCK, i);
}

static int round_mq(struct ctx *c, uint32_t i)
{
    return round_kernel(c, K_MQ, i);
}

/* ---- the round-trip table ---- */

typedef int (*setup_fn)(struct ctx *c);
typedef int (*round_fn)(struct ctx *c, uint32_t i);

struct rt_bench {
    const char *name;
    setup_fn setup;
    peer_fn peer;
    round_fn round;
    size_t size;
    uint32_t wait;
    uint32_t flags;
    int64_t timeout;
    bool pages;
    long div; /* runs rounds / div round trips */
};

#define MiB ((size_t)1 << 20)

/* The order matters: main() takes the ratios of RT_* entries. */
enum { RT_SPIN, RT_Q_SPIN, RT_FUTEX, RT_Q_BLOCK, RT_ZC1, RT_ZC16, RT_PAUSE = 14 };
static const struct rt_bench rts[] = {
    {"raw spin ping-pong", setup_raw, peer_raw_spin, round_raw_spin, SMALL, 0, 0, 0, false, 1},
    {"queue SPSC (spin)", setup_queues, peer_queue, round_queue, SMALL, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, false, 1},
    {"raw futex ping-pong", setup_raw, peer_raw_futex, round_raw_futex, SMALL, 0, 0, 0, false, 2},
    {"queue SPSC (blocking)", setup_queues, peer_queue, round_queue, SMALL, SHML_WAIT_BLOCK,
     SHML_SPSC, WAIT_LIMIT_NS, false, 2},
    {"zero-copy 1 MiB (header)", setup_zc, peer_zc, round_zc, MiB, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, false, 1},
    {"zero-copy 16 MiB (header)", setup_zc, peer_zc, round_zc, 16 * MiB, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, false, 1},
    {"zero-copy 1 MiB (line/page)", setup_zc, peer_zc, round_zc, MiB, SHML_WAIT_SPIN, SHML_SPSC,
     WAIT_LIMIT_NS, true, 10},
    {"zero-copy 16 MiB (line/page)", setup_zc, peer_zc, round_zc, 16 * MiB, SHML_WAIT_SPIN,
     SHML_SPSC, WAIT_LIMIT_NS, true, 100},
    {"pipe (two)", setup_pipes, peer_pipe_rt, round_pipe, SMALL, 0, 0, 0, false, 2},
    {"unix stream socketpair", setup_socketpair, peer_sock_rt, round_sock, SMALL, 0, 0, 0, false,
     2},
    {"POSIX mq (two)", setup_mqs, peer_mq_rt, round_mq, SMALL, 0, 0, 0, false, 2},
    {"  diag: queue SPSC (adaptive)", setup_queues, peer_queue, round_queue, SMALL,
     SHML_WAIT_ADAPTIVE, SHML_SPSC, WAIT_LIMIT_NS, false, 1},
    {"  diag: queue MPMC (spin)", setup_queues, peer_queue, round_queue, SMALL, SHML_WAIT_SPIN, 0,
     WAIT_LIMIT_NS, false, 1},
    {"  diag: queue SPSC (spin) FOREVER", setup_queues, peer_queue, round_queue, SMALL,
     SHML_WAIT_SPIN, SHML_SPSC, SHML_FOREVER, false, 1},
    {"  diag: raw spin + pause in poll", setup_raw, peer_raw_pause, round_raw_pause, SMALL, 0, 0, 0,
     false, 1},
};
#define N_RT (sizeof rts / sizeof rts[0])
_Static_assert(N_RT == RT_PAUSE + 1, "RT_PAUSE names the last row");
/* Where each group of the printed table starts. */
#define RT_FIRST_ZC    4
#define RT_FIRST_OTHER 8

static void ctx_bench(struct ctx *c, const char *name, size_t size, uint32_t wait, uint32_t flags,
                      int64_t timeout)
{
    ctx_reset(c);
    c->bench = name;
    current_bench = name;
    c->size = size;
    c->wait = wait;
    c->flags = flags;
    c->timeout = timeout;
}

/* The bound of one repetition of any benchmark: far more than any needs on a loaded machine. */
static unsigned rep_alarm(const struct opts *o)
{
    return 30 + (unsigned)((o->rounds + o->msgs) / 10000);
}

/*
 * Set up one repetition and start its `n` peers: 1 when they run (the names are unlinked
 * already), 0 when the benchmark is not available here (the reason is in s->na), -1 on a
 * failure (reported). Either way but 1, everything is released.
 */
static int begin_rep(struct ctx *c, const char *name, int (*setup)(struct ctx *), peer_fn peer,
                     int n, pid_t *pid, struct series *s)
{
    int rc = setup(c);
    if (rc == -ENOTSUP || rc == -ENOSYS) {
        snprintf(s->na, sizeof s->na, "%s",
                 rc == -ENOSYS ? "shml_send_batch/shml_recv_batch are not in the library"
                               : shml_last_error());
        if (!s->na[0])
            snprintf(s->na, sizeof s->na, "%s", shml_strerror(rc));
        release_all(c);
        return 0;
    }
    if (rc < 0) {
        report(name, "setup", rc);
        release_all(c);
        return -1;
    }
    if (start_peers(c, peer, n, pid) < 0) {
        release_all(c);
        return -1;
    }
    unlink_names(c);
    return 1;
}

/*
 * End a repetition whose timed part returned rc (< 0: failed, and reported): wait for the
 * `n` peers (or kill them), count the sleeps of `messages` messages, release everything.
 */
static int end_rep(struct ctx *c, pid_t *pid, int n, int rc, struct series *s, size_t first,
                   long messages)
{
    if (rc < 0) {
        kill_all(pid, n);
        release_all(c);
        return -1;
    }
    rc = finish_peers(c, pid, n);
    if (rc == 0 && c->ch[0])
        add_sleeps(c, s, messages);
    series_end_rep(s, first);
    release_all(c);
    return rc;
}

/*
 * One repetition: warm-up round trips, then `rounds` round trips, each timed by the clock read
 * that follows it. The peer runs warm-up and timed rounds in one go.
 */
static int run_rt(struct ctx *c, const struct rt_bench *b, struct series *s)
{
    long rounds = c->o->rounds / b->div;
    if (rounds < 20)
        rounds = 20;
    long warm = rounds / 10 < 1000 ? rounds / 10 : 1000;
    ctx_bench(c, b->name, b->size, b->wait, b->flags, b->timeout);
    c->pages = b->pages;
    c->count = warm + rounds;
    if (series_reserve(s, (size_t)rounds) < 0)
        return -1;
    pid_t pid[1];
    int rc = begin_rep(c, b->name, b->setup, b->peer, 1, pid, s);
    if (rc <= 0)
        return rc;
    size_t first = s->n;
    uint32_t i = 0;
    for (long w = 0; w < warm && rc >= 0; w++)
        rc = b->round(c, ++i);
    int64_t prev = now_ns();
    for (long k = 0; k < rounds && rc >= 0; k++) {
        rc = b->round(c, ++i);
        int64_t t = now_ns();
        s->v[s->n++] = (double)(t - prev);
        prev = t;
    }
    if (rc < 0) {
        char what[64];
        snprintf(what, sizeof what, "round %" PRIu32, i);
        report(b->name, what, rc);
    }
    return end_rep(c, pid, 1, rc, s, first, 2 * c->count);
}

/* ---- one-way streams: the peer produces c->count messages, this process consumes ---- */

/* Spin until *idx moves past `have`; return its value (acquire), or 0 after WAIT_LIMIT_NS. */
static uint64_t ring_wait(_Atomic uint64_t *idx, uint64_t have, bool *timed_out)
{
    uint32_t n = 0;
    int64_t deadline = 0;
    for (;;) {
        /* Acquire: pairs with the other side's release store of this index in ring_put() or
           ring_get(): the slots it covers are written (head) or read out (tail). */
        uint64_t v = atomic_load_explicit(idx, memory_order_acquire);
        if (v != have)
            return v;
        if ((++n & 0xfffff) == 0) {
            int64_t t = now_ns();
            if (deadline == 0) {
                deadline = t + WAIT_LIMIT_NS;
            } else if (t > deadline) {
                *timed_out = true;
                return have;
            }
        }
    }
}

static unsigned char *ring_slot(struct ctx *c, uint64_t pos)
{
    return c->sh->ring + (pos & (c->rslots - 1)) * c->rstride;
}

/*
 * The raw ring's producer: wait for room, write the slot (a length, then the message at the
 * queue's 16-byte offset), publish the head every c->every messages.
 */
static int ring_put(struct ctx *c, const unsigned char *msg, size_t len)
{
    uint64_t h = c->rmine;
    while (h - c->rcache >= c->rslots) {
        bool late = false;
        c->rcache = ring_wait(&c->sh->tail, c->rcache, &late);
        if (late)
            return -ETIMEDOUT;
    }
    unsigned char *s = ring_slot(c, h);
    uint32_t l = (uint32_t)len;
    memcpy(s, &l, sizeof l);
    memcpy(s + SLOT_HDR, msg, len);
    c->rmine = ++h;
    if (h % (uint64_t)c->every == 0)
        /* Release: pairs with the consumer's acquire load in ring_wait(): the slots before
           h are written before it sees h. */
        atomic_store_explicit(&c->sh->head, h, memory_order_release);
    return 0;
}

static int ring_get(struct ctx *c, uint64_t n)
{
    uint64_t t = c->rmine;
    while (t == c->rcache) {
        bool late = false;
        c->rcache = ring_wait(&c->sh->head, c->rcache, &late);
        if (late)
            return -ETIMEDOUT;
    }
    const unsigned char *s = ring_slot(c, t);
    uint32_t l;
    memcpy(&l, s, sizeof l);
    if (l > c->size)
        return -EMSGSIZE;
    memcpy(c->buf, s + SLOT_HDR, l);
    c->rmine = ++t;
    if (t % (uint64_t)c->every == 0)
        /* Release: pairs with the producer's acquire load in ring_wait(): our copy out of
           the slots before t is done before it may overwrite them. */
        atomic_store_explicit(&c->sh->tail, t, memory_order_release);
    return check_stamp(c->buf, l, c->size, n);
}

/* The queue's geometry for c->size at STREAM_CAPACITY (shmlink/channel.h), for the raw ring. */
static int setup_ring(struct ctx *c)
{
    c->rstride = (uint32_t)((SLOT_HDR + c->size + 63) / 64 * 64);
    c->rslots = 2;
    while (c->rslots * 2 * c->rstride <= STREAM_CAPACITY)
        c->rslots *= 2;
    atomic_store_explicit(&c->sh->head, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh->tail, 0, memory_order_relaxed);
    return 0;
}

static void peer_ring(struct ctx *c, int k)
{
    (void)k;
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        stamp(c->msg, (uint64_t)i);
        int rc = ring_put(c, c->msg, c->size);
        if (rc < 0)
            peer_fail(c, "raw ring put", rc);
    }
    /* Release: pairs with the consumer's acquire load in ring_wait(), as in ring_put(), for
       the messages after the last multiple of c->every. */
    atomic_store_explicit(&c->sh->head, c->rmine, memory_order_release);
}

static long recv_ring(struct ctx *c, uint64_t next, long want)
{
    (void)want;
    int rc = ring_get(c, next);
    return rc < 0 ? rc : 1;
}

static int setup_stream_queue(struct ctx *c)
{
    return create_queue(c, 0, STREAM_CAPACITY);
}

/* Check that the queue has the raw ring's geometry, so that the two compare like with like. */
static int check_geometry(struct ctx *c)
{
    struct shml_channel_stats st;
    int rc = shml_channel_get_stats(c->ch[0], &st);
    if (rc < 0)
        return rc;
    struct ctx r = *c;
    setup_ring(&r);
    if (st.slots != r.rslots || st.slot_size != r.rstride)
        fprintf(stderr,
                "bench_channel: %s: the queue has %u slots of %u bytes, the raw ring "
                "%" PRIu64 " of %u\n",
                c->bench, st.slots, st.slot_size, r.rslots, r.rstride);
    return 0;
}

static int setup_stream_queue_checked(struct ctx *c)
{
    int rc = setup_stream_queue(c);
    return rc < 0 ? rc : check_geometry(c);
}

static void peer_send(struct ctx *c, int k)
{
    (void)k;
    shml_channel *out = peer_open(c, 0, SHML_PRODUCER);
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        stamp(c->msg, (uint64_t)i);
        ssize_t n = shml_send(out, c->msg, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send", n);
    }
    shml_channel_close(out);
}

static long recv_queue(struct ctx *c, uint64_t next, long want)
{
    (void)want;
    ssize_t n = shml_recv(c->ch[0], c->buf, c->size, c->timeout);
    if (n < 0)
        return n;
    int rc = check_stamp(c->buf, (size_t)n, c->size, next);
    return rc < 0 ? rc : 1;
}

/*
 * The batch calls may be missing from this library (weak references) or answer -ENOTSUP:
 * try both on this process's endpoint, which has both roles, and leave the queue empty.
 */
static int setup_batch(struct ctx *c)
{
    int rc = setup_stream_queue(c);
    if (rc < 0)
        return rc;
    if (!shml_send_batch || !shml_recv_batch)
        return -ENOSYS;
    struct shml_iov iov = {c->msg, c->size};
    ssize_t n = shml_send_batch(c->ch[0], &iov, 1, 0);
    if (n < 0)
        return (int)n;
    size_t len;
    n = shml_recv_batch(c->ch[0], c->buf, c->size, &len, 1, 0);
    if (n < 0) {
        shml_recv(c->ch[0], c->buf, c->size, 0); /* take the probe out */
        return (int)n;
    }
    return n == 1 && len == c->size ? 0 : -EPROTO;
}

static void peer_send_batch(struct ctx *c, int k)
{
    (void)k;
    shml_channel *out = peer_open(c, 0, SHML_PRODUCER);
    struct shml_iov iov[BATCH];
    peer_ready(c);
    for (long i = 0; i < c->count;) {
        long m = c->count - i < BATCH ? c->count - i : BATCH;
        for (long j = 0; j < m; j++) {
            stamp(c->msg + (size_t)j * c->size, (uint64_t)(i + j));
            iov[j] = (struct shml_iov){c->msg + (size_t)j * c->size, c->size};
        }
        ssize_t n = shml_send_batch(out, iov, (size_t)m, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_send_batch", n);
        if (n == 0 || n > m)
            peer_fail(c, "shml_send_batch sent a wrong count", -EPROTO);
        i += n;
    }
    shml_channel_close(out);
}

static long recv_batch(struct ctx *c, uint64_t next, long want)
{
    size_t lens[BATCH];
    size_t m = want < BATCH ? (size_t)want : BATCH;
    ssize_t n = shml_recv_batch(c->ch[0], c->buf, m * c->size, lens, m, c->timeout);
    if (n < 0)
        return n;
    if (n == 0 || (size_t)n > m)
        return -EPROTO;
    for (ssize_t j = 0; j < n; j++) {
        int rc = check_stamp(c->buf + j * c->size, lens[j], c->size, next + (uint64_t)j);
        if (rc < 0)
            return rc;
    }
    return n;
}

/* Kernel streams: one pipe, one socket pair, one message queue (this process receives). */
static int setup_pipe1(struct ctx *c)
{
    return pipe(c->fd) == 0 ? 0 : -errno;
}

static int setup_mq1(struct ctx *c)
{
    int rc = setup_mqs(c);
    if (rc >= 0) {
        mq_close(c->mq[1]);
        c->mq[1] = (mqd_t)-1;
    }
    return rc;
}

static ssize_t stream_send(struct ctx *c, int kind, const void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return write_full(c->fd[1], p, len);
    case K_SOCK:
        return write_full(c->fd[1], p, len);
    default:
        return mq_send(c->mq[0], p, len, 0) == 0 ? (ssize_t)len : -errno;
    }
}

static ssize_t stream_recv(struct ctx *c, int kind, void *p, size_t len)
{
    switch (kind) {
    case K_PIPE:
        return read_full(c->fd[0], p, len);
    case K_SOCK:
        return read_full(c->fd[0], p, len);
    default:
        return mq_receive(c->mq[0], p, len, NULL);
    }
}

static void peer_kernel_stream(struct ctx *c, int kind)
{
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        stamp(c->msg, (uint64_t)i);
        ssize_t n = stream_send(c, kind, c->msg, c->size);
        if (n < 0)
            peer_fail(c, "send", n);
    }
}

static long recv_kernel(struct ctx *c, int kind, uint64_t next)
{
    ssize_t n = stream_recv(c, kind, c->buf, c->size);
    if (n < 0)
        return n;
    int rc = check_stamp(c->buf, (size_t)n, c->size, next);
    return rc < 0 ? rc : 1;
}

static void peer_pipe_stream(struct ctx *c, int k)
{
    (void)k;
    peer_kernel_stream(c, K_PIPE);
}

static void peer_sock_stream(struct ctx *c, int k)
{
    (void)k;
    peer_kernel_stream(c, K_SOCK);
}

static void peer_mq_stream(struct ctx *c, int k)
{
    (void)k;
    peer_kernel_stream(c, K_MQ);
}

static long recv_pipe(struct ctx *c, uint64_t next, long want)
{
    (void)want;
    return recv_kernel(c, K_PIPE, next);
}

static long recv_sock(struct ctx *c, uint64_t next, long want)
{
    (void)want;
    return recv_kernel(c, K_SOCK, next);
}

static long recv_mq(struct ctx *c, uint64_t next, long want)
{
    (void)want;
    return recv_kernel(c, K_MQ, next);
}

struct st_bench {
    const char *name;
    size_t size;
    setup_fn setup;
    peer_fn peer;
    long (*recv)(struct ctx *c, uint64_t next, long want); /* >= 1 messages, or -err */
    int every;                                             /* raw ring: publication interval */
    long div;      /* streams msgs * 64 / size / div messages */
    bool adaptive; /* the library's endpoints wait in SHML_WAIT_ADAPTIVE, not SHML_WAIT_SPIN */
};

/* The order matters: main() takes the ratios of ST_* entries. */
enum {
    ST_RING1,
    ST_SEND,
    ST_RING16,
    ST_BATCH,
    ST_4K_RING = 7,
    ST_4K_SEND,
    ST_64K_RING = 12,
    ST_64K_SEND,
};
static const struct st_bench sts[] = {
    {"64 B raw ring (publish each)", SMALL, setup_ring, peer_ring, recv_ring, 1, 1, false},
    {"64 B shml_send/recv", SMALL, setup_stream_queue_checked, peer_send, recv_queue, 0, 1, false},
    {"64 B raw ring (publish per 16)", SMALL, setup_ring, peer_ring, recv_ring, BATCH, 1, false},
    {"64 B shml batch of 16", SMALL, setup_batch, peer_send_batch, recv_batch, 0, 1, false},
    {"64 B pipe", SMALL, setup_pipe1, peer_pipe_stream, recv_pipe, 0, 8, false},
    {"64 B unix socketpair", SMALL, setup_socketpair, peer_sock_stream, recv_sock, 0, 8, false},
    {"64 B POSIX mq", SMALL, setup_mq1, peer_mq_stream, recv_mq, 0, 8, false},
    {"4 KiB raw ring", 4096, setup_ring, peer_ring, recv_ring, 1, 1, false},
    {"4 KiB shml_send/recv", 4096, setup_stream_queue_checked, peer_send, recv_queue, 0, 1, false},
    {"4 KiB pipe", 4096, setup_pipe1, peer_pipe_stream, recv_pipe, 0, 2, false},
    {"4 KiB unix socketpair", 4096, setup_socketpair, peer_sock_stream, recv_sock, 0, 2, false},
    {"4 KiB POSIX mq", 4096, setup_mq1, peer_mq_stream, recv_mq, 0, 2, false},
    {"64 KiB raw ring", 65536, setup_ring, peer_ring, recv_ring, 1, 1, false},
    {"64 KiB shml_send/recv", 65536, setup_stream_queue_checked, peer_send, recv_queue, 0, 1,
     false},
    {"64 KiB pipe", 65536, setup_pipe1, peer_pipe_stream, recv_pipe, 0, 2, false},
    {"64 KiB unix socketpair", 65536, setup_socketpair, peer_sock_stream, recv_sock, 0, 2, false},
    {"  diag: 64 B shml_send/recv adaptive", SMALL, setup_stream_queue, peer_send, recv_queue, 0, 1,
     true},
};
#define N_ST (sizeof sts / sizeof sts[0])

/* Messages per timed chunk: at least 16 and 256 KiB. */
static long chunk_of(size_t size)
{
    long c = (long)(((size_t)256 << 10) / size);
    return c < 16 ? 16 : c;
}

/* Messages of one repetition: o->msgs of 64 bytes (25.6 MB by default), 16 times fewer of
   4 KiB and 256 times fewer of 64 KiB (100 MB each), divided by the row's divisor. */
static long stream_count(const struct opts *o, size_t size, long div)
{
    long n = o->msgs / (size <= SMALL ? 1 : size <= 4096 ? 16 : 256) / div;
    long min = 5 * chunk_of(size);
    return n < min ? min : n;
}

/*
 * Time a run of messages: chunks of `chunk` messages, each a sample of ns per message, after
 * `warm` messages. recv() gives at least one message, at most `want`.
 */
static int time_chunks(struct ctx *c, long (*recv)(struct ctx *, uint64_t, long), long count,
                       long warm, long chunk, struct series *s)
{
    long got = 0, mark = 0;
    int64_t t_mark = now_ns();
    while (got < count) {
        long want = count - got;
        long n = recv(c, (uint64_t)got, want);
        if (n < 0) {
            char what[64];
            snprintf(what, sizeof what, "message %ld", got);
            report(c->bench, what, n);
            return -1;
        }
        got += n;
        if (got - mark >= chunk || got == count) {
            int64_t t = now_ns();
            if (mark >= warm && got - mark >= chunk / 2)
                s->v[s->n++] = (double)(t - t_mark) / (double)(got - mark);
            mark = got;
            t_mark = t;
        }
    }
    return 0;
}

static int run_stream(struct ctx *c, const struct st_bench *b, struct series *s)
{
    ctx_bench(c, b->name, b->size, b->adaptive ? SHML_WAIT_ADAPTIVE : SHML_WAIT_SPIN, SHML_SPSC,
              WAIT_LIMIT_NS);
    c->every = b->every;
    long count = stream_count(c->o, b->size, b->div);
    long chunk = chunk_of(b->size);
    c->count = count;
    if (series_reserve(s, (size_t)(count / (chunk / 2) + 2)) < 0)
        return -1;
    pid_t pid[1];
    int rc = begin_rep(c, b->name, b->setup, b->peer, 1, pid, s);
    if (rc <= 0)
        return rc;
    size_t first = s->n;
    rc = time_chunks(c, b->recv, count, count / 10, chunk, s);
    return end_rep(c, pid, 1, rc, s, first, count);
}

/* ---- the bus: this process publishes, the peers subscribe ---- */

static int setup_bus(struct ctx *c)
{
    struct shml_channel_opts co = {
        .kind = SHML_BUS,
        .capacity = STREAM_CAPACITY,
        .max_msg = c->size,
        .policy = c->flags, /* run_bus() puts the policy here */
        .wait = c->wait,
        .role = SHML_PRODUCER, /* the default for a bus; said, because a subscriber that never
                                  reads would hold a SHML_BLOCK publisher back */
    };
    return create_channel(c, 0, &co);
}

static void peer_subscribe(struct ctx *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER);
    peer_ready(c);
    for (long i = 0; i < c->count; i++) {
        ssize_t n = shml_recv(in, c->buf, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv", n);
        int rc = check_stamp(c->buf, (size_t)n, c->size, (uint64_t)i);
        if (rc < 0)
            peer_fail(c, "a published message", rc);
    }
    shml_channel_close(in);
}

/*
 * A subscriber of a SHML_OVERWRITE bus: it may be lapped, so it checks that each message is
 * the one after the last plus the gap the library reports, and stops at the last message
 * (which no publisher overwrites).
 */
static void peer_subscribe_lapped(struct ctx *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER);
    peer_ready(c);
    uint64_t want = 0;
    while (want < (uint64_t)c->count) {
        ssize_t n = shml_recv(in, c->buf, c->size, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv", n);
        want += shml_recv_gap(in);
        int rc = check_stamp(c->buf, (size_t)n, c->size, want);
        if (rc < 0)
            peer_fail(c, "a published message (after the gap)", rc);
        want++;
    }
    shml_channel_close(in);
}

/* A subscriber that takes up to BATCH messages per call (shml_recv_batch). */
static void peer_subscribe_batch(struct ctx *c, int k)
{
    (void)k;
    shml_channel *in = peer_open(c, 0, SHML_CONSUMER);
    peer_ready(c);
    for (long i = 0; i < c->count;) {
        size_t lens[BATCH];
        size_t m = c->count - i < BATCH ? (size_t)(c->count - i) : BATCH;
        ssize_t n = shml_recv_batch(in, c->buf, m * c->size, lens, m, c->timeout);
        if (n < 0)
            peer_fail(c, "shml_recv_batch", n);
        if (n == 0 || (size_t)n > m)
            peer_fail(c, "shml_recv_batch received a wrong count", -EPROTO);
        for (ssize_t j = 0; j < n; j++) {
            int rc = check_stamp(c->buf + (size_t)j * c->size, lens[j], c->size, (uint64_t)(i + j));
            if (rc < 0)
                peer_fail(c, "a published message", rc);
        }
        i += n;
    }
    shml_channel_close(in);
}

/* The publisher's "receive": send one message (the chunks time the publisher). */
static long publish_one(struct ctx *c, uint64_t next, long want)
{
    (void)want;
    stamp(c->msg, next);
    ssize_t n = shml_send(c->ch[0], c->msg, c->size, c->timeout);
    return n < 0 ? n : 1;
}

static const struct {
    const char *name;
    int subs;
    peer_fn peer;
    uint32_t policy;
} buses[] = {
    {"bus (1 subscriber)", 1, peer_subscribe, SHML_BLOCK},
    {"bus (4 subscribers)", 4, peer_subscribe, SHML_BLOCK},
    {"  diag: bus (1 sub) recv_batch", 1, peer_subscribe_batch, SHML_BLOCK},
    {"  diag: bus (4 subs) recv_batch", 4, peer_subscribe_batch, SHML_BLOCK},
    {"  diag: bus (1 sub) OVERWRITE", 1, peer_subscribe_lapped, SHML_OVERWRITE},
    {"  diag: bus (4 subs) OVERWRITE", 4, peer_subscribe_lapped, SHML_OVERWRITE},
};
#define N_BUS (sizeof buses / sizeof buses[0])

static int run_bus(struct ctx *c, int subs, peer_fn peer, uint32_t policy, const char *name,
                   struct series *s)
{
    if (peer == peer_subscribe_batch && !shml_recv_batch) {
        snprintf(s->na, sizeof s->na, "shml_recv_batch is not in the library");
        return 0;
    }
    ctx_bench(c, name, SMALL, SHML_WAIT_ADAPTIVE, policy, WAIT_LIMIT_NS);
    long count = stream_count(c->o, SMALL, 2);
    long chunk = chunk_of(SMALL);
    c->count = count;
    if (series_reserve(s, (size_t)(count / (chunk / 2) + 2)) < 0)
        return -1;
    pid_t pid[MAX_PEERS];
    int rc = begin_rep(c, name, setup_bus, peer, subs, pid, s);
    if (rc <= 0)
        return rc;
    size_t first = s->n;
    rc = time_chunks(c, publish_one, count, count / 10, chunk, s);
    return end_rep(c, pid, subs, rc, s, first, count);
}

/* ---- report ---- */

static void print_na(const struct series *s)
{
    printf("  %-34s n/a (not available: %s)\n", s->name, s->na);
}

/* Sleeps per message, when the library counted any. */
static void print_sleeps(const struct series *s)
{
    if (s->sleep_reps > 0 && s->sleeps > 0)
        printf("  %.3g sleeps/msg", s->sleeps / (double)s->sleep_reps);
}

static void print_rt_row(const struct series *s)
{
    if (s->na[0]) {
        print_na(s);
        return;
    }
    if (!s->failed && s->n == 0)
        return; /* not selected (--only) */
    if (s->failed) {
        printf("  %-34s %10s %10s %10s %8s\n", s->name, "failed", "-", "-", "-");
        return;
    }
    double *w = malloc(s->n * sizeof *w);
    if (!w)
        return;
    memcpy(w, s->v, s->n * sizeof *w);
    qsort(w, s->n, sizeof *w, cmp_double);
    printf("  %-34s %10.1f %10.1f %10.1f %8zu", s->name, bench_pct_sorted(w, s->n, 50),
           bench_pct_sorted(w, s->n, 99), bench_pct_sorted(w, s->n, 99.9), s->n);
    print_sleeps(s);
    printf("\n");
    free(w);
}

static void print_st_row(const struct series *s, size_t size)
{
    if (s->na[0]) {
        print_na(s);
        return;
    }
    if (!s->failed && s->n == 0)
        return;
    if (s->failed) {
        printf("  %-34s %10s %10s %8s %8s %8s\n", s->name, "failed", "-", "-", "-", "-");
        return;
    }
    double *w = malloc(s->n * sizeof *w);
    if (!w)
        return;
    memcpy(w, s->v, s->n * sizeof *w);
    qsort(w, s->n, sizeof *w, cmp_double);
    double med = bench_pct_sorted(w, s->n, 50);
    printf("  %-34s %10.1f %10.1f %8.2f %8.2f %8zu", s->name, med, bench_pct_sorted(w, s->n, 99),
           1e3 / med, (double)size / med, s->n);
    print_sleeps(s);
    printf("\n");
    free(w);
}

/*
 * A target's ratio, repetition by repetition: each repetition of the two benchmarks ran
 * within seconds of each other, so a shift of the machine between repetitions (another
 * tenant, a vCPU moved to another host core) cancels out of that repetition's ratio.
 * `inverse`: the ratio of rates, den / num of the times.
 */
static void print_rep_ratios(const struct series *num, const struct series *den, bool inverse)
{
    size_t n = num->nrep < den->nrep ? num->nrep : den->nrep;
    if (n < 2)
        return;
    double *r = malloc(n * sizeof *r);
    if (!r)
        return;
    for (size_t i = 0; i < n; i++) {
        double a = num->rep[i], b = den->rep[i];
        r[i] = inverse ? (a > 0 ? b / a : 0) : (b > 0 ? a / b : 0);
    }
    qsort(r, n, sizeof *r, cmp_double);
    printf("      repetition by repetition: median %.2fx, from %.2fx to %.2fx (%zu)\n",
           bench_pct_sorted(r, n, 50), r[0], r[n - 1], n);
    free(r);
}

/*
 * One target line: num against den, as a ratio of median times (at most `limit`) or, with
 * `rate`, of rates (at least `limit`).
 */
static void print_target(const char *what, const struct series *num, const struct series *den,
                         bool rate, double limit)
{
    if (!num->failed && !den->failed && !num->na[0] && !den->na[0] && (num->n == 0 || den->n == 0))
        return; /* not selected */
    if (!series_ok(num) || !series_ok(den)) {
        const struct series *bad = series_ok(num) ? den : num;
        printf("  %-40s    n/a   target %s %.2fx  (%s: %s)\n", what, rate ? ">=" : "<=", limit,
               bad->name, bad->na[0] ? "not available" : "failed");
        return;
    }
    double a = median_of(num->v, num->n), b = median_of(den->v, den->n);
    double x = rate ? b / a : a / b;
    bool met = rate ? x >= limit : x <= limit;
    printf("  %-40s %6.2fx  target %s %.2fx  %s\n", what, x, rate ? ">=" : "<=", limit,
           met ? "met" : "MISSED");
    print_rep_ratios(num, den, rate);
}

/* A ratio of medians that is no target but helps to read one. */
static void print_info(const char *what, const struct series *num, const struct series *den)
{
    if (!series_ok(num) || !series_ok(den))
        return;
    double x = median_of(num->v, num->n) / median_of(den->v, den->n);
    printf("  %-40s %6.2fx  no target: the library spins with a pause)\n", what, x);
}

static double clock_cost(void)
{
    int64_t t0 = now_ns(), t = t0;
    for (int i = 0; i < 100000; i++)
        t = now_ns();
    return (double)(t - t0) / 100000.0;
}

static void print_machine(const struct opts *o)
{
    struct utsname u;
    char model[128], source[64] = "?";
    bench_cpu_model(model, sizeof model);
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        if (fgets(source, sizeof source, f))
            source[strcspn(source, "\n")] = '\0';
        fclose(f);
    }
    uname(&u);
    printf("bench_channel: shmlink %s, %s %s, %ld CPUs online (%s)\n", shml_version(), u.sysname,
           u.release, sysconf(_SC_NPROCESSORS_ONLN), model);
    if (o->cpu[0] >= 0)
        printf("this process on CPU %d, the peers on CPU %d; ", o->cpu[0], o->cpu[1]);
    else
        printf("processes NOT pinned (fewer than 2 CPUs allowed); ");
    printf("%ld repetitions (interleaved), %ld round trips and %ld 64-byte messages each%s\n",
           o->reps, o->rounds, o->msgs,
           o->quick ? " (--quick: a smoke run, numbers mean little)" : "");
    printf("a clock read (CLOCK_MONOTONIC, clocksource %s) costs %.1f ns; every round-trip "
           "sample includes one\n\n",
           source, clock_cost());
}

/* ---- options ---- */

static _Noreturn void usage(const char *why)
{
    if (why)
        fprintf(stderr, "bench_channel: %s\n", why);
    fprintf(stderr,
            "usage: bench_channel [--quick] [--rounds N] [--reps N] [--msgs N] [--cpus A,B] "
            "[--only TEXT,...]\n"
            "  --quick         a short smoke run (checks that everything runs)\n"
            "  --rounds N      64-byte round trips per repetition (default 20000; the blocking\n"
            "                  and kernel rows run half as many, the zero-copy rows that touch\n"
            "                  every page 10 and 100 times fewer)\n"
            "  --reps N        repetitions of every benchmark, interleaved (default 7)\n"
            "  --msgs N        64-byte messages streamed per repetition (default 400000; 16 times\n"
            "                  fewer of 4 KiB, 256 times fewer of 64 KiB; the kernel rows fewer)\n"
            "  --cpus A,B      the CPUs of this process and of the peers (default: the first two\n"
            "                  allowed)\n"
            "  --only TEXT,... run only the benchmarks whose name contains one of the TEXTs\n");
    exit(2);
}

static long parse_long(const char *s, long min)
{
    long v;
    if (!bench_parse_long(s, min, &v))
        usage("bad number");
    return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){20000, 7, 400000, {-1, -1}, false, NULL};
    bool cpus_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o->quick = true;
            o->rounds = 2000;
            o->reps = 2;
            o->msgs = 20000;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(NULL);
        } else if (!v) {
            char word[64];
            snprintf(word, sizeof word, " %s ", a);
            usage(strstr(" --rounds --reps --msgs --cpus --only ", word) ? "missing value"
                                                                         : "unknown option");
        } else if (strcmp(a, "--rounds") == 0) {
            o->rounds = parse_long(v, 1), i++;
        } else if (strcmp(a, "--reps") == 0) {
            o->reps = parse_long(v, 1), i++;
        } else if (strcmp(a, "--msgs") == 0) {
            o->msgs = parse_long(v, 1), i++;
        } else if (strcmp(a, "--only") == 0) {
            o->only = v;
            i++;
        } else if (strcmp(a, "--cpus") == 0) {
            if (!bench_parse_cpus(v, o->cpu))
                usage("--cpus takes two different CPU numbers, e.g. 0,1");
            cpus_given = true;
            i++;
        } else {
            usage("unknown option");
        }
    }
    if (o->rounds > (long)UINT32_MAX / 2)
        usage("--rounds too large");
    if (!cpus_given)
        bench_default_cpus(o->cpu);
}

/* ---- main ---- */

static int init_series(struct series *s, size_t n, const char *const *names, long reps)
{
    for (size_t b = 0; b < n; b++) {
        s[b] = (struct series){.name = names[b]};
        s[b].rep = calloc((size_t)reps, sizeof *s[b].rep);
        if (!s[b].rep)
            return -1;
    }
    return 0;
}

static bool any_ran(const struct series *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].failed || s[i].n || s[i].na[0])
            return true;
    return false;
}

static bool runnable(const struct opts *o, const struct series *s)
{
    return bench_selected(o->only, s->name) && !s->failed && !s->na[0];
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);

    struct sigaction sa = {.sa_handler = on_fatal_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer that died shows as EPIPE */

    bench_pin("bench_channel", o.cpu[0]);
    print_machine(&o);

    /*
     * memfd: the raw baselines' bytes are shared with the forked peers by inheritance and
     * vanish with the last process, so a killed benchmark leaves nothing behind.
     */
    shml_segment *seg = NULL;
    int rc = shml_segment_create("memfd:shml-bench-channel", sizeof(struct shared), NULL, &seg);
    if (rc < 0) {
        fprintf(stderr, "bench_channel: create memfd:shml-bench-channel: %s (%s)\n",
                shml_strerror(rc), shml_last_error());
        return 1;
    }
    struct ctx c = {.sh = shml_segment_data(seg), .o = &o};
    size_t bufsize = BATCH * (size_t)65536;
    c.msg = calloc(1, bufsize);
    c.buf = calloc(1, bufsize);

    const char *rt_names[N_RT], *st_names[N_ST], *bus_names[N_BUS];
    for (size_t b = 0; b < N_RT; b++)
        rt_names[b] = rts[b].name;
    for (size_t b = 0; b < N_ST; b++)
        st_names[b] = sts[b].name;
    for (size_t b = 0; b < N_BUS; b++)
        bus_names[b] = buses[b].name;
    struct series rt[N_RT], st[N_ST], bus[N_BUS];
    if (!c.msg || !c.buf || init_series(rt, N_RT, rt_names, o.reps) < 0 ||
        init_series(st, N_ST, st_names, o.reps) < 0 ||
        init_series(bus, N_BUS, bus_names, o.reps) < 0) {
        fprintf(stderr, "bench_channel: out of memory\n");
        return 1;
    }

    bool failed = false, tty = isatty(STDERR_FILENO);
    unsigned limit = rep_alarm(&o);
    for (long r = 0; r < o.reps; r++) {
        if (tty)
            fprintf(stderr, "\rrepetition %ld/%ld", r + 1, o.reps);
        for (size_t b = 0; b < N_RT; b++) {
            if (!runnable(&o, &rt[b]))
                continue;
            alarm(limit);
            if (run_rt(&c, &rts[b], &rt[b]) < 0)
                rt[b].failed = failed = true;
            alarm(0);
        }
        for (size_t b = 0; b < N_ST; b++) {
            if (!runnable(&o, &st[b]))
                continue;
            alarm(limit);
            if (run_stream(&c, &sts[b], &st[b]) < 0)
                st[b].failed = failed = true;
            alarm(0);
        }
        for (size_t b = 0; b < N_BUS; b++) {
            if (!runnable(&o, &bus[b]))
                continue;
            alarm(limit);
            if (run_bus(&c, buses[b].subs, buses[b].peer, buses[b].policy, buses[b].name, &bus[b]) <
                0)
                bus[b].failed = failed = true;
            alarm(0);
        }
    }
    if (tty)
        fprintf(stderr, "\r%*s\r", 30, "");

    if (any_ran(rt, RT_FIRST_ZC)) {
        printf("round trip of a 64-byte message (samples are single round trips)\n");
        printf("  %-34s %10s %10s %10s %8s\n", "ns per round trip", "p50", "p99", "p99.9",
               "samples");
    }
    for (size_t b = 0; b < RT_FIRST_ZC; b++)
        print_rt_row(&rt[b]);
    for (size_t b = RT_FIRST_OTHER; b < N_RT; b++)
        print_rt_row(&rt[b]);
    if (any_ran(rt + RT_FIRST_ZC, RT_FIRST_OTHER - RT_FIRST_ZC))
        printf("zero-copy round trip, spin: claim, stamp, commit; peek, check, release "
               "(single round trips)\n");
    for (size_t b = RT_FIRST_ZC; b < RT_FIRST_OTHER; b++)
        print_rt_row(&rt[b]);
    if (any_ran(st, N_ST)) {
        printf("one-way stream, peer -> this process, spin unless said (samples are chunks of "
               "messages)\n");
        printf("  %-34s %10s %10s %8s %8s %8s\n", "ns per message", "p50", "p99", "Mmsg/s", "GB/s",
               "samples");
    }
    for (size_t b = 0; b < N_ST; b++)
        print_st_row(&st[b], sts[b].size);
    if (any_ran(bus, N_BUS)) {
        printf("bus, SHML_BLOCK unless said, 64-byte messages, adaptive waits, the subscribers "
               "share CPU %d (the publisher's chunks)\n",
               o.cpu[1]);
        printf("  %-34s %10s %10s %8s %8s %8s\n", "ns per message", "p50", "p99", "Mmsg/s", "GB/s",
               "samples");
    }
    for (size_t b = 0; b < N_BUS; b++)
        print_st_row(&bus[b], SMALL);

    printf("\ntargets (ratios of medians from this run)\n");
    print_target("queue RTT, spin / raw spin", &rt[RT_Q_SPIN], &rt[RT_SPIN], false, 1.30);
    print_info("  (queue RTT, spin / raw spin + pause", &rt[RT_Q_SPIN], &rt[RT_PAUSE]);
    print_target("queue RTT, blocking / raw futex", &rt[RT_Q_BLOCK], &rt[RT_FUTEX], false, 1.15);
    print_target("64 B send/recv / raw ring, each (rate)", &st[ST_SEND], &st[ST_RING1], true, 0.80);
    print_target("64 B batch / raw ring, per 16 (rate)", &st[ST_BATCH], &st[ST_RING16], true, 0.70);
    print_target("4 KiB send/recv / raw ring (GB/s)", &st[ST_4K_SEND], &st[ST_4K_RING], true, 0.80);
    print_target("64 KiB send/recv / raw ring (GB/s)", &st[ST_64K_SEND], &st[ST_64K_RING], true,
                 0.80);
    print_target("zero-copy 1 MiB RTT / queue 64 B RTT", &rt[RT_ZC1], &rt[RT_Q_SPIN], false, 2.00);
    print_target("zero-copy 16 MiB RTT / queue 64 B RTT", &rt[RT_ZC16], &rt[RT_Q_SPIN], false,
                 2.00);
    print_target("bus publisher rate, 4 subs / 1 sub", &bus[1], &bus[0], true, 0.50);

    struct series *all[] = {rt, st, bus};
    size_t counts[] = {N_RT, N_ST, N_BUS};
    for (size_t g = 0; g < 3; g++)
        for (size_t b = 0; b < counts[g]; b++) {
            free(all[g][b].v);
            free(all[g][b].rep);
        }
    free(c.msg);
    free(c.buf);
    shml_segment_close(seg);
    return failed ? 1 : 0;
}
