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
 *     event loop      each side waits in epoll: two named FIFOs (epoll_wait, read, write),
 *                     against two SHML_SPSC queues whose receivers wait for their descriptor
 *                     (shml_channel_fd(): epoll_wait, shml_recv(..., 0) until -ETIMEDOUT,
 *                     shml_send): the target is <= 1.2x the FIFOs; a diag row waits in a
 *                     shml_waitset instead of epoll
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
 * The files. This one holds the options, the session (runner.h runs the cases interleaved)
 * and the report; bench_channel_harness.c runs one repetition of a case (peers, names,
 * cleanup); the cases are in bench_channel_rt.c (round trips), bench_channel_stream.c
 * (streams), bench_channel_bus.c (the bus), bench_channel_kernel.c (pipes, sockets and
 * message queues for both) and bench_channel_evloop.c (round trips through epoll), each with
 * its own state (bench_channel.h).
 *
 * Usage: bench_channel [--quick] [--rounds N] [--reps N] [--msgs N] [--cpus A,B]
 *                      [--only TEXT,...]
 * (No benchmark's name has a comma, so that --only can name any of them.)
 * Exit status: 0 when every benchmark ran or was not available in this library (targets met
 * or not: this is a measurement, not a test), 1 when one failed (a timeout, a wrong message,
 * a failed call), 2 for a usage error.
 */
#include "bench_channel.h"

#include "bench_util.h"
#include "runner.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- report ---- */

static void print_na(const struct bench_series *s)
{
    printf("  %-34s n/a (not available: %s)\n", s->name, s->na);
}

/* Sleeps per message, when the library counted any. */
static void print_sleeps(const struct bench_series *s)
{
    if (s->extra_n > 0 && s->extra > 0)
        printf("  %.3g sleeps/msg", s->extra / (double)s->extra_n);
}

static void print_rt_row(const struct bench_series *s)
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

static void print_st_row(const struct bench_series *s, size_t size)
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
 * One target line: num against den, as a ratio of median times (at most `limit`) or, with
 * `rate`, of rates (at least `limit`).
 */
static void print_target(const char *what, const struct bench_series *num,
                         const struct bench_series *den, bool rate, double limit)
{
    if (!num->failed && !den->failed && !num->na[0] && !den->na[0] && (num->n == 0 || den->n == 0))
        return; /* not selected */
    if (!bench_series_ok(num) || !bench_series_ok(den)) {
        const struct bench_series *bad = bench_series_ok(num) ? den : num;
        printf("  %-40s    n/a   target %s %.2fx  (%s: %s)\n", what, rate ? ">=" : "<=", limit,
               bad->name, bad->na[0] ? "not available" : "failed");
        return;
    }
    double a = bench_median(num->v, num->n), b = bench_median(den->v, den->n);
    double x = rate ? b / a : a / b;
    bool met = rate ? x >= limit : x <= limit;
    printf("  %-40s %6.2fx  target %s %.2fx  %s\n", what, x, rate ? ">=" : "<=", limit,
           met ? "met" : "MISSED");
    bench_print_rep_ratios(num, den, rate);
}

/* A ratio of medians that is no target but helps to read one. */
static void print_info(const char *what, const struct bench_series *num,
                       const struct bench_series *den)
{
    if (!bench_series_ok(num) || !bench_series_ok(den))
        return;
    double x = bench_median(num->v, num->n) / bench_median(den->v, den->n);
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
    char source[64] = "?";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        if (fgets(source, sizeof source, f))
            source[strcspn(source, "\n")] = '\0';
        fclose(f);
    }
    bench_print_system("bench_channel");
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

static const char usage_text[] =
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
    "  --only TEXT,... run only the benchmarks whose name contains one of the TEXTs\n";

static void quick_opts(void *arg)
{
    struct opts *o = arg;
    o->rounds = 2000;
    o->reps = 2;
    o->msgs = 20000;
}

static const struct bench_num_opt nums[] = {
    {"--rounds", offsetof(struct opts, rounds), 1},
    {"--reps", offsetof(struct opts, reps), 1},
    {"--msgs", offsetof(struct opts, msgs), 1},
};

static const struct bench_cli cli = {
    .prog = "bench_channel",
    .usage_text = usage_text,
    .nums = nums,
    .n_nums = sizeof nums / sizeof nums[0],
    .quick = quick_opts,
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){20000, 7, 400000, {-1, -1}, false, NULL};
    bench_parse_cli(&cli, o, argc, argv, &o->quick, o->cpu, &o->only);
    if (o->rounds > (long)UINT32_MAX / 2)
        bench_usage(&cli, "--rounds too large");
}

/* ---- main ---- */

/* The bound of one repetition of any benchmark: far more than any needs on a loaded machine. */
static unsigned rep_alarm(const struct opts *o)
{
    return 30 + (unsigned)((o->rounds + o->msgs) / 10000);
}

static int init_series(struct bench_series *s, size_t n, const char *(*name)(size_t), long reps)
{
    for (size_t b = 0; b < n; b++)
        if (bench_series_init(&s[b], name(b), reps) < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);

    bench_catch_fatal(on_fatal_signal);
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
    size_t bufsize = BATCH * (size_t)65536;
    struct chan_env env = {.sh = shml_segment_data(seg), .o = &o};
    env.msg = calloc(1, bufsize);
    env.buf = calloc(1, bufsize);

    struct bench_series rt[N_RT], st[N_ST], bus[N_BUS];
    if (!env.msg || !env.buf || init_series(rt, N_RT, rt_case_name, o.reps) < 0 ||
        init_series(st, N_ST, st_case_name, o.reps) < 0 ||
        init_series(bus, N_BUS, bus_case_name, o.reps) < 0) {
        fprintf(stderr, "bench_channel: out of memory\n");
        return 1;
    }

    unsigned limit = rep_alarm(&o);
    const struct bench_group groups[] = {
        {rt, N_RT, rt_case_run, &env, limit},
        {st, N_ST, st_case_run, &env, limit},
        {bus, N_BUS, bus_case_run, &env, limit},
    };
    bool failed = bench_run_interleaved(groups, sizeof groups / sizeof groups[0], o.reps, o.only);

    if (bench_any_ran(rt, RT_FIRST_ZC)) {
        printf("round trip of a 64-byte message (samples are single round trips)\n");
        printf("  %-34s %10s %10s %10s %8s\n", "ns per round trip", "p50", "p99", "p99.9",
               "samples");
    }
    for (size_t b = 0; b < RT_FIRST_ZC; b++)
        print_rt_row(&rt[b]);
    for (size_t b = RT_FIRST_OTHER; b < N_RT; b++)
        print_rt_row(&rt[b]);
    if (bench_any_ran(rt + RT_FIRST_ZC, RT_FIRST_OTHER - RT_FIRST_ZC))
        printf("zero-copy round trip, spin: claim, stamp, commit; peek, check, release "
               "(single round trips)\n");
    for (size_t b = RT_FIRST_ZC; b < RT_FIRST_OTHER; b++)
        print_rt_row(&rt[b]);
    if (bench_any_ran(st, N_ST)) {
        printf("one-way stream, peer -> this process, spin unless said (samples are chunks of "
               "messages)\n");
        printf("  %-34s %10s %10s %8s %8s %8s\n", "ns per message", "p50", "p99", "Mmsg/s", "GB/s",
               "samples");
    }
    for (size_t b = 0; b < N_ST; b++)
        print_st_row(&st[b], st_case_size(b));
    if (bench_any_ran(bus, N_BUS)) {
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
    print_target("queue RTT, fd+epoll / raw FIFO+epoll", &rt[RT_Q_EPOLL], &rt[RT_FIFO], false,
                 1.20);
    print_target("64 B send/recv / raw ring, each (rate)", &st[ST_SEND], &st[ST_RING1], true, 0.80);
    print_target("64 B batch / raw ring, per 16 (rate)", &st[ST_BATCH], &st[ST_RING16], true, 0.70);
    print_target("4 KiB send/recv / raw ring (GB/s)", &st[ST_4K_SEND], &st[ST_4K_RING], true, 0.80);
    print_target("64 KiB send/recv / raw ring (GB/s)", &st[ST_64K_SEND], &st[ST_64K_RING], true,
                 0.80);
    print_target("zero-copy 1 MiB RTT / queue 64 B RTT", &rt[RT_ZC1], &rt[RT_Q_SPIN], false, 2.00);
    print_target("zero-copy 16 MiB RTT / queue 64 B RTT", &rt[RT_ZC16], &rt[RT_Q_SPIN], false,
                 2.00);
    print_target("bus publisher rate, 4 subs / 1 sub", &bus[1], &bus[0], true, 0.50);

    for (size_t b = 0; b < N_RT; b++)
        bench_series_fini(&rt[b]);
    for (size_t b = 0; b < N_ST; b++)
        bench_series_fini(&st[b]);
    for (size_t b = 0; b < N_BUS; b++)
        bench_series_fini(&bus[b]);
    free(env.msg);
    free(env.buf);
    shml_segment_close(seg);
    return failed ? 1 : 0;
}
