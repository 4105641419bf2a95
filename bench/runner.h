/*
 * runner.h - the generic part of the C benchmarks, kept apart from their cases (in the manner
 * of zstd's programs/benchfn.h): the samples of one case pooled over its repetitions, the
 * interleaved loop that runs every case of a session once per repetition, the statistics the
 * reports take (medians, percentiles, ratios repetition by repetition), the first line of a
 * report and the command line both programs share.
 *
 * What a case measures, how its peers run and how its rows look stay with the program
 * (bench_sync.c; bench_channel.c and its bench_channel_*.c cases). Nothing here is shared
 * between processes: the runner lives in the measuring process only.
 */
#ifndef SHML_BENCH_RUNNER_H
#define SHML_BENCH_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The samples of one case, pooled over its repetitions. `v` holds every sample (ns per round
 * trip, per message, per lock...); `rep` the median of each repetition's samples, for the
 * ratios taken repetition by repetition. A case that failed once is not run again; a case the
 * library cannot run says why in `na`.
 */
struct bench_series {
    const char *name;
    double *v;
    size_t n, cap;
    double *rep; /* room for one median per repetition */
    size_t nrep;
    bool failed;
    char na[200]; /* not empty: the library cannot run it, and why */
    double extra; /* a figure the case adds up over its repetitions (sleeps/msg, hand-offs/s) */
    long extra_n; /* repetitions that added to `extra` */
};

/* Name the series and make room for `reps` repetition medians. 0, or -ENOMEM. The series
   owns what it allocates until bench_series_fini(). */
int bench_series_init(struct bench_series *s, const char *name, long reps);
void bench_series_fini(struct bench_series *s);

/* Room for `more` samples after the n there are. 0, or -ENOMEM. */
int bench_series_reserve(struct bench_series *s, size_t more);

/* Append one sample (growing as needed). 0, or -ENOMEM. */
int bench_series_add(struct bench_series *s, double x);

/* Neither failed nor unavailable, and with samples. */
bool bench_series_ok(const struct bench_series *s);

/* Nearest-rank percentile (0 < p <= 100) of v[0..n), left unsorted (a sorted copy is taken;
   0 when n is 0 or memory is short). */
double bench_pct(const double *v, size_t n, double p);

/* The median of v[0..n), left unsorted. */
static inline double bench_median(const double *v, size_t n)
{
    return bench_pct(v, n, 50);
}

/*
 * One group of cases run by the same function: run(ctx, i, s) runs one repetition of case i
 * and adds its samples to s. It returns >= 0 when the repetition ran or the case is not
 * available (s->na says why), < 0 when it failed (reported by run itself). With alarm_s > 0,
 * an alarm of that many seconds bounds each repetition (the program's SIGALRM handler ends
 * the run).
 */
struct bench_group {
    struct bench_series *s; /* one series per case */
    size_t n;
    int (*run)(void *ctx, size_t i, struct bench_series *s);
    void *ctx;
    unsigned alarm_s;
};

/*
 * Run `reps` interleaved repetitions: repetition r runs every selected case of every group,
 * in order, before repetition r+1 starts, so that a slow minute of a shared machine hurts all
 * cases alike. A case runs when its name contains one of the comma-separated TEXTs of `only`
 * (NULL: all) and it has neither failed nor been found unavailable. After each repetition
 * that ran, the median of its samples goes to s->rep. Progress goes to stderr when it is a
 * terminal. Returns true when a case failed.
 */
bool bench_run_interleaved(const struct bench_group *g, size_t ngroups, long reps,
                           const char *only);

/* Whether any of s[0..n) has a row to print (samples, a failure, or a reason it could not
   run): --only may leave a group empty. */
bool bench_any_ran(const struct bench_series *s, size_t n);

/*
 * A target's ratio, repetition by repetition: each repetition of the two cases ran within
 * seconds of each other, so a shift of the machine between repetitions (another tenant, a
 * vCPU moved to another host core) cancels out of that repetition's ratio. num / den of the
 * repetition medians, or with `inverse` den / num (the ratio of rates when they are times).
 * Prints nothing with fewer than two repetitions.
 */
void bench_print_rep_ratios(const struct bench_series *num, const struct bench_series *den,
                            bool inverse);

/* The same for a difference: num - den of the repetition medians, in `unit` ("ns"). */
void bench_print_rep_diffs(const struct bench_series *num, const struct bench_series *den,
                           const char *unit);

/* The report's first line: "<prog>: shmlink V, <system> <release>, N CPUs online (<model>)". */
void bench_print_system(const char *prog);

/*
 * The command line. Each program names its number options (--rounds, --reps, ...) by where
 * they sit in its options struct, with the smallest value each takes; --quick calls
 * quick(opts) where it appears (later options still count); --cpus A,B and --only TEXT,...
 * are common, as are --help and -h (usage_text on stderr, exit 2). A usage error prints
 * "<prog>: <why>" and usage_text, and exits with 2. Without --cpus, cpu[] gets the first two
 * CPUs this process may run on.
 */
struct bench_num_opt {
    const char *name; /* "--rounds" */
    size_t offset;    /* of its long in the program's options struct */
    long min;
};

struct bench_cli {
    const char *prog;
    const char *usage_text;
    const struct bench_num_opt *nums;
    size_t n_nums;
    void (*quick)(void *opts);
};

void bench_parse_cli(const struct bench_cli *cli, void *opts, int argc, char **argv, bool *quick,
                     int cpu[2], const char **only);

/* Print "<prog>: <why>" (when why is not NULL) and the usage text on stderr, exit with 2. */
_Noreturn void bench_usage(const struct bench_cli *cli, const char *why);

#endif
