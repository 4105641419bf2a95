/*
 * bench_channel_harness.c - how bench_channel runs one repetition of a case (bench_channel.h):
 * the peers it forks and waits for, the channels it creates at unique names and unlinks (also
 * from a signal handler), what it releases, and the message stamp every case checks.
 */
#include "bench_channel.h"

#include "bench_util.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- small tools ---- */

/* The message stamp: a message's number in its first 8 bytes. */
void stamp(unsigned char *msg, uint64_t n)
{
    memcpy(msg, &n, sizeof n);
}

int check_stamp(const unsigned char *msg, size_t len, size_t want_len, uint64_t n)
{
    uint64_t got;
    if (len != want_len)
        return -EMSGSIZE;
    memcpy(&got, msg, sizeof got);
    return got == n ? 0 : -EBADMSG; /* a lost, repeated or torn message */
}

/* ---- cleanup of names, also from a signal handler ---- */

/*
 * The paths that exist under a name right now: the /dev/shm paths of channels and of the
 * raw FIFOs until the peers have opened them, and the descriptors' FIFOs (shml_channel_fd())
 * of this process's endpoints and of the peer's, which the library removes at close but
 * nobody removes after a kill. The handler unlinks them and ends the process (the peers die
 * with it), so a run that is interrupted or hangs leaves nothing behind; unlink() is
 * async-signal-safe.
 */
enum { NAME_CH = 0, NAME_FIFO = 2, NAME_NOTE = 4, NAME_PEER_NOTE = 6, N_NAMES = 8 };
static char name_path[N_NAMES][96];
static volatile sig_atomic_t name_armed[N_NAMES];
static const char *volatile current_bench = "";

static void arm_name(int slot, const char *path)
{
    snprintf(name_path[slot], sizeof name_path[slot], "%s", path);
    name_armed[slot] = 1;
}

static void unlink_name(int slot)
{
    if (name_armed[slot])
        unlink(name_path[slot]);
    name_armed[slot] = 0;
}

void on_fatal_signal(int sig)
{
    for (int k = 0; k < N_NAMES; k++)
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

/* ---- one repetition ---- */

void chan_run_init(struct chan_run *c, const struct chan_env *e, const char *name, size_t size,
                   uint32_t wait, uint32_t flags, int64_t timeout)
{
    *c = (struct chan_run){
        .sh = e->sh,
        .o = e->o,
        .bench = name,
        .size = size,
        .wait = wait,
        .flags = flags,
        .timeout = timeout,
        .fd = {-1, -1, -1, -1},
        .mq = {(mqd_t)-1, (mqd_t)-1},
        .msg = e->msg,
        .buf = e->buf,
    };
    current_bench = name;
}

/* The path a descriptor was opened at (/proc/self/fd), into out (cap bytes); "" if unknown. */
static void path_of_fd(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* ---- peers ---- */

_Noreturn void peer_fail(struct chan_run *c, const char *what, long err)
{
    const char *detail = shml_last_error();
    snprintf(c->sh->why, sizeof c->sh->why, "%s: %s%s%s%s", what, shml_strerror((int)err),
             detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
    /* Release: pairs with the parent's acquire loads of fail in start_peers() and
       finish_peers(): the text above is complete when it sees fail != 0. */
    atomic_store_explicit(&c->sh->fail, 1, memory_order_release);
    _exit(1);
}

void peer_publish_fd(struct chan_run *c, int k, int fd)
{
    char path[sizeof c->sh->peer_note[k]];
    path_of_fd(fd, path, sizeof path);
    memcpy(c->sh->peer_note[k], path, sizeof path); /* whole, with its terminator */
}

void peer_ready(struct chan_run *c)
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
static int start_peers(struct chan_run *c, peer_fn fn, int n, pid_t *pid)
{
    atomic_store_explicit(&c->sh->ready, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh->fail, 0, memory_order_relaxed);
    for (int k = 0; k < 2; k++)
        c->sh->peer_note[k][0] = '\0';
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
static int finish_peers(struct chan_run *c, pid_t *pid, int n)
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

void report(const char *bench, const char *what, long rc)
{
    const char *detail = shml_last_error();
    fprintf(stderr, "bench_channel: %s: %s: %s%s%s%s\n", bench, what, shml_strerror((int)rc),
            detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

/*
 * Create channel k of this benchmark at a fresh posix: name (this process's endpoint in
 * c->ch[k]), armed for the signal handler until unlink_names(). Returns 0 or the error.
 */
int create_channel(struct chan_run *c, int k, const struct shml_channel_opts *co)
{
    static unsigned serial;
    char name[64], path[96];
    snprintf(name, sizeof name, "shml-bench-ch-%d-%u", (int)getpid(), serial++);
    snprintf(c->addr[k], sizeof c->addr[k], "posix:/%s", name);
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    arm_name(NAME_CH + k, path);
    int rc = shml_channel_create(c->addr[k], co, &c->ch[k]);
    if (rc < 0) {
        name_armed[NAME_CH + k] = 0;
        c->addr[k][0] = '\0';
    }
    return rc;
}

int create_fifo(struct chan_run *c, int k)
{
    static unsigned serial;
    snprintf(c->fifo[k], sizeof c->fifo[k], "/dev/shm/shml-bench-fifo-%d-%u", (int)getpid(),
             serial++);
    arm_name(NAME_FIFO + k, c->fifo[k]);
    if (mkfifo(c->fifo[k], 0600) != 0) {
        int err = errno;
        name_armed[NAME_FIFO + k] = 0;
        c->fifo[k][0] = '\0';
        return -err;
    }
    return 0;
}

int channel_fd(struct chan_run *c, int k)
{
    int fd = shml_channel_fd(c->ch[k]);
    if (fd >= 0) {
        char path[96];
        path_of_fd(fd, path, sizeof path);
        if (path[0])
            arm_name(NAME_NOTE + k, path);
    }
    return fd;
}

/* Unlink the names of this benchmark's channels and FIFOs: the peers have them open by now. */
static void unlink_names(struct chan_run *c)
{
    for (int k = 0; k < 2; k++) {
        if (c->addr[k][0]) {
            shml_segment_unlink(c->addr[k]);
            c->addr[k][0] = '\0';
        }
        name_armed[NAME_CH + k] = 0;
        unlink_name(NAME_FIFO + k);
        c->fifo[k][0] = '\0';
    }
}

/*
 * Close this process's endpoints, pipes, sockets and queues (names unlinked first); then
 * remove the descriptors' FIFOs that are left: none after a normal end (each endpoint's close
 * removed its own), the peer's after it was killed.
 */
static void release_all(struct chan_run *c)
{
    unlink_names(c);
    shml_waitset_destroy(c->ws);
    c->ws = NULL;
    for (int k = 0; k < 2; k++) {
        shml_channel_close(c->ch[k]);
        c->ch[k] = NULL;
        unlink_name(NAME_NOTE + k);
        unlink_name(NAME_PEER_NOTE + k);
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
shml_channel *peer_open(struct chan_run *c, int k, unsigned role)
{
    struct shml_channel_opts co = SHML_CHANNEL_OPTS_INIT;
    co.wait = c->wait;
    shml_channel *ch = NULL;
    int rc = shml_channel_open(c->addr[k], role, &co, &ch);
    if (rc < 0)
        peer_fail(c, "shml_channel_open", rc);
    return ch;
}

/* A queue for messages of c->size bytes with `capacity` bytes of slots (0: two slots). */
int create_queue(struct chan_run *c, int k, size_t capacity)
{
    size_t stride = (SLOT_HDR + c->size + 63) / 64 * 64;
    struct shml_channel_opts co = SHML_CHANNEL_OPTS_INIT;
    co.kind = SHML_QUEUE;
    co.capacity = capacity ? capacity : 2 * stride;
    co.max_msg = c->size;
    co.wait = c->wait;
    co.flags = c->flags;
    return create_channel(c, k, &co);
}

/* Sleeps per message over the channel's life so far, from its stats (0 if none counted). */
static void add_sleeps(struct chan_run *c, struct bench_series *s, long messages)
{
    struct shml_channel_stats st;
    double sl = 0;
    for (int k = 0; k < 2; k++)
        if (c->ch[k] && shml_channel_get_stats(c->ch[k], &st) == 0)
            sl += (double)st.sleeps;
    if (messages > 0) {
        s->extra += sl / (double)messages;
        s->extra_n++;
    }
}

/*
 * Set up one repetition and start its `n` peers: 1 when they run (the names are unlinked
 * already), 0 when the benchmark is not available here (the reason is in s->na), -1 on a
 * failure (reported). Either way but 1, everything is released.
 */
int begin_rep(struct chan_run *c, const char *name, setup_fn setup, peer_fn peer, int n, pid_t *pid,
              struct bench_series *s)
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
    int started = start_peers(c, peer, n, pid);
    /* The peer's descriptors, which it published before it said it was ready (the acquire
       load of ready in start_peers() orders them): removed if it is killed. */
    for (int k = 0; k < 2; k++)
        if (c->sh->peer_note[k][0])
            arm_name(NAME_PEER_NOTE + k, c->sh->peer_note[k]);
    if (started < 0) {
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
int end_rep(struct chan_run *c, pid_t *pid, int n, int rc, struct bench_series *s, long messages)
{
    if (rc < 0) {
        kill_all(pid, n);
        release_all(c);
        return -1;
    }
    rc = finish_peers(c, pid, n);
    if (rc == 0 && c->ch[0])
        add_sleeps(c, s, messages);
    release_all(c);
    return rc;
}
