/*
 * bench_wake.c - what the descriptor waits (shml_channel_fd()) add to a hand-over while no
 * endpoint is armed: one relaxed load of the event's `armed` count after each wake
 * (shml__chan_wake() in src/channel/channel.h), made by every send and every receive.
 *
 * The same program is built twice (bench/CMakeLists.txt): bench_wake against the library as
 * it is, bench_wake_nofd against a second static library built from the same sources with
 * SHML_BENCH_NO_DESCRIPTORS, which leaves that load out. Both are linked statically, with the
 * same flags, so that the load is the only difference. bench_wake is the driver: for each
 * repetition it runs itself and bench_wake_nofd once each in "--child" mode, the order
 * alternating (with, without; then without, with: ABBA), so that the two variants of one
 * repetition run within a fraction of a second of each other on the same state of the
 * machine, and a first-of-the-pair effect cancels out.
 *
 * What a child measures, in one process pinned to the first CPU, every endpoint created
 * without a descriptor (so none is ever armed):
 *   queue   a SHML_QUEUE of 256 slots of 64-byte messages, a producer and a consumer handle
 *   bus     a SHML_BUS (SHML_BLOCK) of 256 slots, a publisher and one subscriber handle
 * in batches: BATCH shml_send()s, then BATCH shml_recv()s, each half timed by a clock read
 * at its end (BATCH messages amortise the read: about 0.2 ns a message). A sample is one
 * batch: ns per send, ns per receive. Every message carries its number, which the receive
 * checks. The calls have timeout 0: they never wait (a full or empty channel would be an
 * error here, not a wait), so they read no clock either.
 *
 * Report: p50 and p99 of each row over all batches of all repetitions, then for send and
 * receive the difference with - without of the medians (the target: at most 2 ns per send),
 * followed by that difference taken repetition by repetition (median and range), which a
 * machine that changes between repetitions disturbs less.
 *
 * Usage: bench_wake [--quick] [--reps N] [--msgs N] [--cpus A,B] [--only TEXT,...]
 *                   [--nofd PATH]
 *        bench_wake(_nofd) --child queue|bus MSGS CPU      (one run; the driver's)
 * Exit status: 0 when every run finished (targets met or not: a measurement, not a test), 1
 * when one failed, 2 for a usage error.
 */
#include <shmlink.h>

#include "bench_util.h"
#include "runner.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BENCH_WAKE_VARIANT
#error "bench/CMakeLists.txt defines BENCH_WAKE_VARIANT (with or without)"
#endif

#define SMALL         64
#define BATCH         128                           /* sends, then receives, per sample */
#define SLOTS         256                           /* room for a batch, with some to spare */
#define STRIDE        ((16 + SMALL + 63) / 64 * 64) /* a slot: 16-byte header, message */
#define CHILD_ALARM_S 120u                          /* the bound of one child run */

/* ---- the child: one run of one kind, one variant ---- */

/* The channel's /dev/shm path while it has a name, for the signal handler. */
static char name_path[96];
static volatile sig_atomic_t name_armed;

static void child_on_signal(int sig)
{
    (void)sig;
    if (name_armed)
        unlink(name_path);
    static const char msg[] = "bench_wake: child interrupted or too slow\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to say */
    }
    _exit(1);
}

static int child_fail(const char *what, long rc)
{
    const char *detail = shml_last_error();
    fprintf(stderr, "bench_wake (%s): %s: %s%s%s%s\n", BENCH_WAKE_VARIANT, what,
            shml_strerror((int)rc), detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
    return 1;
}

/* Create the channel (producer or publisher handle) and open its consumer; unlink the name. */
static int child_open(bool bus, shml_channel **tx, shml_channel **rx)
{
    char addr[96];
    snprintf(addr, sizeof addr, "posix:/shml-bench-wake-%d", (int)getpid());
    snprintf(name_path, sizeof name_path, "/dev/shm/shml-bench-wake-%d", (int)getpid());
    struct shml_channel_opts co = SHML_CHANNEL_OPTS_INIT;
    co.kind = bus ? SHML_BUS : SHML_QUEUE;
    co.capacity = (size_t)SLOTS * STRIDE;
    co.max_msg = SMALL;
    co.role = SHML_PRODUCER;
    name_armed = 1;
    int rc = shml_channel_create(addr, &co, tx);
    if (rc < 0) {
        name_armed = 0;
        return child_fail("shml_channel_create", rc);
    }
    co = (struct shml_channel_opts)SHML_CHANNEL_OPTS_INIT;
    rc = shml_channel_open(addr, SHML_CONSUMER, &co, rx);
    shml_segment_unlink(addr);
    name_armed = 0;
    return rc < 0 ? child_fail("shml_channel_open", rc) : 0;
}

static void stamp(unsigned char *msg, uint64_t n)
{
    memcpy(msg, &n, sizeof n);
}

/*
 * One batch: BATCH sends of messages next.., then BATCH receives, each checked. The send and
 * receive times (ns per message) go to out[0], out[1]. 0, or 1 after a message.
 */
static int batch(shml_channel *tx, shml_channel *rx, uint64_t next, double out[2])
{
    unsigned char msg[SMALL] = {0}, buf[SMALL];
    int64_t t0 = now_ns();
    for (uint64_t i = 0; i < BATCH; i++) {
        stamp(msg, next + i);
        ssize_t n = shml_send(tx, msg, SMALL, 0);
        if (n < 0)
            return child_fail("shml_send", n);
    }
    int64_t t1 = now_ns();
    for (uint64_t i = 0; i < BATCH; i++) {
        ssize_t n = shml_recv(rx, buf, sizeof buf, 0);
        if (n < 0)
            return child_fail("shml_recv", n);
        uint64_t got;
        memcpy(&got, buf, sizeof got);
        if (n != SMALL || got != next + i)
            return child_fail("a received message", -EBADMSG);
    }
    int64_t t2 = now_ns();
    out[0] = (double)(t1 - t0) / BATCH;
    out[1] = (double)(t2 - t1) / BATCH;
    return 0;
}

/*
 * --child KIND MSGS CPU: a tenth of the messages as warm-up, then MSGS messages in batches.
 * Prints "variant with|without" and one line "SEND RECV" (ns per message) per batch.
 */
static int child_main(const char *kind, const char *msgs_arg, const char *cpu_arg)
{
    bench_catch_fatal(child_on_signal);
    alarm(CHILD_ALARM_S);
    long msgs, cpu;
    bool bus = strcmp(kind, "bus") == 0;
    if ((!bus && strcmp(kind, "queue") != 0) || !bench_parse_long(msgs_arg, BATCH, &msgs) ||
        !bench_parse_long(cpu_arg, -1, &cpu)) {
        fprintf(stderr, "bench_wake: bad --child arguments\n");
        return 2;
    }
    bench_pin("bench_wake", (int)cpu);
    long batches = msgs / BATCH, warm = batches / 10 + 1;
    double *v = malloc((size_t)batches * 2 * sizeof *v);
    if (!v) {
        fprintf(stderr, "bench_wake: out of memory\n");
        return 1;
    }
    shml_channel *tx = NULL, *rx = NULL;
    int rc = child_open(bus, &tx, &rx);
    uint64_t next = 0;
    double w[2];
    for (long b = 0; b < warm && rc == 0; b++, next += BATCH)
        rc = batch(tx, rx, next, w);
    for (long b = 0; b < batches && rc == 0; b++, next += BATCH)
        rc = batch(tx, rx, next, v + 2 * b);
    shml_channel_close(rx);
    shml_channel_close(tx);
    if (rc == 0) {
        printf("variant %s\n", BENCH_WAKE_VARIANT);
        for (long b = 0; b < batches; b++)
            printf("%.3f %.3f\n", v[2 * b], v[2 * b + 1]);
        rc = fflush(stdout) == 0 ? 0 : 1;
    }
    free(v);
    return rc;
}

/* ---- the driver (in both programs, so that they differ in the library alone) ---- */

struct opts {
    long reps;
    long msgs;
    int cpu[2];
    bool quick;
    const char *only;
    const char *nofd; /* the bench_wake_nofd program */
};

enum { V_WITH, V_WITHOUT, N_V };
enum { OP_SEND, OP_RECV, N_OP };
enum { K_QUEUE, K_BUS, N_K };
static const char *const kind_arg[N_K] = {"queue", "bus"};
static const char *const variant_name[N_V] = {"with", "without"};

/* The series of kind k, variant v, operation op. */
struct session {
    struct bench_series s[N_K][N_V][N_OP];
    char names[N_K][N_V][N_OP][64];
    char self[PATH_MAX];
    const struct opts *o;
};

static volatile pid_t running_child;

static void on_fatal_signal(int sig)
{
    pid_t p = running_child;
    if (p > 0)
        kill(p, SIGTERM); /* its handler unlinks its channel's name */
    static const char pre[] = "bench_wake: ";
    const char *what = sig == SIGALRM ? "a run takes too long\n" : "interrupted\n";
    if (write(STDERR_FILENO, pre, sizeof pre - 1) < 0 ||
        write(STDERR_FILENO, what, strlen(what)) < 0) {
        /* nothing more to say */
    }
    _exit(1);
}

/*
 * Run variant v of kind k once (its program with --child), and add its samples to the
 * session's series, with this repetition's medians. 0, or -1 (reported).
 */
static int run_child(struct session *ss, int k, int v)
{
    const struct opts *o = ss->o;
    const char *prog = v == V_WITH ? ss->self : o->nofd;
    char msgs[32], cpu[16];
    snprintf(msgs, sizeof msgs, "%ld", o->msgs);
    snprintf(cpu, sizeof cpu, "%d", o->cpu[0]);
    int fd[2];
    if (pipe(fd) != 0) {
        perror("bench_wake: pipe");
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        perror("bench_wake: fork");
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        /* SIGTERM, not SIGKILL: the child's handler unlinks its channel's name. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execl(prog, prog, "--child", kind_arg[k], msgs, cpu, (char *)NULL);
        fprintf(stderr, "bench_wake: cannot run %s: %s\n", prog, strerror(errno));
        _exit(1);
    }
    running_child = pid;
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    struct bench_series *s[N_OP] = {&ss->s[k][v][OP_SEND], &ss->s[k][v][OP_RECV]};
    size_t first[N_OP] = {s[0]->n, s[1]->n};
    bool ok = f != NULL;
    char line[128], want[64];
    snprintf(want, sizeof want, "variant %s\n", variant_name[v]);
    if (ok && (!fgets(line, sizeof line, f) || strcmp(line, want) != 0)) {
        fprintf(stderr, "bench_wake: %s did not run as the variant \"%s\"\n", prog,
                variant_name[v]);
        ok = false;
    }
    double a, b;
    while (ok && fgets(line, sizeof line, f))
        if (sscanf(line, "%lf %lf", &a, &b) != 2 || bench_series_add(s[0], a) < 0 ||
            bench_series_add(s[1], b) < 0)
            ok = false;
    if (f)
        fclose(f);
    else
        close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    running_child = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !ok) {
        fprintf(stderr, "bench_wake: %s %s (%s) failed\n", kind_arg[k], variant_name[v], prog);
        return -1;
    }
    for (int op = 0; op < N_OP; op++)
        if (s[op]->n > first[op])
            s[op]->rep[s[op]->nrep++] = bench_median(s[op]->v + first[op], s[op]->n - first[op]);
    return 0;
}

static void print_row(const struct bench_series *s)
{
    if (s->n == 0)
        return;
    printf("  %-34s %10.2f %10.2f %8zu\n", s->name, bench_pct(s->v, s->n, 50),
           bench_pct(s->v, s->n, 99), s->n);
}

/*
 * A target line (limit > 0; none: limit 0): with - without, in ns per message (and as a
 * ratio), then the same repetition by repetition.
 */
static void print_target(const char *what, const struct bench_series *with,
                         const struct bench_series *without, double limit)
{
    if (!bench_series_ok(with) || !bench_series_ok(without))
        return;
    double a = bench_median(with->v, with->n), b = bench_median(without->v, without->n);
    double d = a - b;
    if (limit > 0)
        printf("  %-40s %+6.2f ns  (%.3fx)  target <= %.1f ns  %s\n", what, d, a / b, limit,
               d <= limit ? "met" : "MISSED");
    else
        printf("  %-40s %+6.2f ns  (%.3fx)  no target\n", what, d, a / b);
    bench_print_rep_diffs(with, without, "ns");
    bench_print_rep_ratios(with, without, false);
}

static const char usage_text[] =
    "usage: bench_wake [--quick] [--reps N] [--msgs N] [--cpus A,B] [--only TEXT,...]\n"
    "                  [--nofd PATH]\n"
    "  --quick         a short smoke run (checks that everything runs)\n"
    "  --reps N        repetitions, each running both variants of each kind (default 21)\n"
    "  --msgs N        64-byte messages sent and received per run (default 1000000)\n"
    "  --cpus A,B      the CPU of the runs is A (default: the first allowed)\n"
    "  --only TEXT,... run only the kinds (queue, bus) whose name contains one of the TEXTs\n"
    "  --nofd PATH     the program built without the load (default: bench_wake_nofd beside\n"
    "                  this one)\n";

static void quick_opts(void *arg)
{
    struct opts *o = arg;
    o->reps = 4;
    o->msgs = 50000;
}

static const struct bench_num_opt nums[] = {
    {"--reps", offsetof(struct opts, reps), 1},
    {"--msgs", offsetof(struct opts, msgs), BATCH},
};

static const struct bench_cli cli = {
    .prog = "bench_wake",
    .usage_text = usage_text,
    .nums = nums,
    .n_nums = sizeof nums / sizeof nums[0],
    .quick = quick_opts,
};

/* --nofd PATH is this program's own option: take it out before the common parser. */
static int take_nofd(int argc, char **argv, const char **nofd)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nofd") == 0) {
            if (i + 1 >= argc)
                bench_usage(&cli, "missing value");
            *nofd = argv[++i];
            continue;
        }
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv[3], argv[4]);
    if (strcmp(BENCH_WAKE_VARIANT, "with") != 0) {
        fprintf(stderr, "bench_wake_nofd is run by bench_wake (see bench/bench_wake.c)\n");
        return 2;
    }

    static struct session ss;
    static char nofd_default[PATH_MAX];
    struct opts o = {21, 1000000, {-1, -1}, false, NULL, NULL};
    argc = take_nofd(argc, argv, &o.nofd);
    bench_parse_cli(&cli, &o, argc, argv, &o.quick, o.cpu, &o.only);
    ss.o = &o;

    ssize_t len = readlink("/proc/self/exe", ss.self, sizeof ss.self - 1);
    if (len <= 0) {
        perror("bench_wake: /proc/self/exe");
        return 1;
    }
    ss.self[len] = '\0';
    if (!o.nofd) {
        snprintf(nofd_default, sizeof nofd_default, "%s", ss.self);
        char *slash = strrchr(nofd_default, '/');
        size_t at = slash ? (size_t)(slash - nofd_default) + 1 : 0;
        snprintf(nofd_default + at, sizeof nofd_default - at, "bench_wake_nofd");
        o.nofd = nofd_default;
    }
    if (access(o.nofd, X_OK) != 0) {
        fprintf(stderr, "bench_wake: %s: %s (build the target bench_wake_nofd, or --nofd PATH)\n",
                o.nofd, strerror(errno));
        return 1;
    }

    bench_catch_fatal(on_fatal_signal);

    for (int k = 0; k < N_K; k++)
        for (int v = 0; v < N_V; v++)
            for (int op = 0; op < N_OP; op++) {
                snprintf(ss.names[k][v][op], sizeof ss.names[k][v][op], "%s %s (%s)", kind_arg[k],
                         op == OP_SEND ? "shml_send" : "shml_recv", variant_name[v]);
                if (bench_series_init(&ss.s[k][v][op], ss.names[k][v][op], o.reps) < 0) {
                    fprintf(stderr, "bench_wake: out of memory\n");
                    return 1;
                }
            }

    bench_print_system("bench_wake");
    printf("runs on CPU %d, one process each; %ld repetitions, each running both variants of "
           "each kind (ABBA), %ld 64-byte messages per run in batches of %d%s\n",
           o.cpu[0], o.reps, o.msgs, BATCH,
           o.quick ? " (--quick: a smoke run, numbers mean little)" : "");
    printf("with: the library as built; without: the same sources with "
           "SHML_BENCH_NO_DESCRIPTORS (%s)\n\n",
           o.nofd == nofd_default ? "bench_wake_nofd, beside this program" : o.nofd);
    fflush(stdout);

    bool failed = false, tty = isatty(STDERR_FILENO);
    for (long r = 0; r < o.reps && !failed; r++) {
        if (tty)
            fprintf(stderr, "\rrepetition %ld/%ld", r + 1, o.reps);
        for (int k = 0; k < N_K && !failed; k++) {
            if (!bench_selected(o.only, kind_arg[k]))
                continue;
            for (int j = 0; j < N_V && !failed; j++) {
                int v = (r & 1) ? N_V - 1 - j : j; /* ABBA */
                alarm(CHILD_ALARM_S + 10);
                failed = run_child(&ss, k, v) < 0;
                alarm(0);
            }
        }
    }
    if (tty)
        fprintf(stderr, "\r%*s\r", 30, "");

    printf("one process, no descriptor armed: ns per message (samples are batches of %d)\n", BATCH);
    printf("  %-34s %10s %10s %8s\n", "ns per message", "p50", "p99", "samples");
    for (int k = 0; k < N_K; k++)
        for (int op = 0; op < N_OP; op++)
            for (int v = 0; v < N_V; v++)
                print_row(&ss.s[k][v][op]);
    printf("\ntargets (with - without, medians from this run)\n");
    print_target("queue shml_send, what the load adds", &ss.s[K_QUEUE][V_WITH][OP_SEND],
                 &ss.s[K_QUEUE][V_WITHOUT][OP_SEND], 2.0);
    print_target("bus shml_send, what the load adds", &ss.s[K_BUS][V_WITH][OP_SEND],
                 &ss.s[K_BUS][V_WITHOUT][OP_SEND], 2.0);
    /* The receive makes the same load (it wakes senders). */
    print_target("queue shml_recv, what the load adds", &ss.s[K_QUEUE][V_WITH][OP_RECV],
                 &ss.s[K_QUEUE][V_WITHOUT][OP_RECV], 0);
    print_target("bus shml_recv, what the load adds", &ss.s[K_BUS][V_WITH][OP_RECV],
                 &ss.s[K_BUS][V_WITHOUT][OP_RECV], 0);

    for (int k = 0; k < N_K; k++)
        for (int v = 0; v < N_V; v++)
            for (int op = 0; op < N_OP; op++)
                bench_series_fini(&ss.s[k][v][op]);
    return failed ? 1 : 0;
}
