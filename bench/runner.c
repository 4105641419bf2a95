/*
 * runner.c - the generic part of the C benchmarks (runner.h).
 */
#include "runner.h"

#include "bench_util.h"

#include <shmlink.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

int bench_series_init(struct bench_series *s, const char *name, long reps)
{
    *s = (struct bench_series){.name = name};
    s->rep = calloc((size_t)reps, sizeof *s->rep);
    return s->rep ? 0 : -ENOMEM;
}

void bench_series_fini(struct bench_series *s)
{
    free(s->v);
    free(s->rep);
    s->v = s->rep = NULL;
}

int bench_series_reserve(struct bench_series *s, size_t more)
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

int bench_series_add(struct bench_series *s, double x)
{
    if (bench_series_reserve(s, 1) < 0)
        return -ENOMEM;
    s->v[s->n++] = x;
    return 0;
}

bool bench_series_ok(const struct bench_series *s)
{
    return !s->failed && !s->na[0] && s->n > 0;
}

double bench_pct(const double *v, size_t n, double p)
{
    double *w = malloc((n ? n : 1) * sizeof *w);
    if (!w)
        return 0;
    memcpy(w, v, n * sizeof *w);
    qsort(w, n, sizeof *w, cmp_double);
    double x = bench_pct_sorted(w, n, p);
    free(w);
    return x;
}

bool bench_run_interleaved(const struct bench_group *g, size_t ngroups, long reps, const char *only)
{
    bool failed = false, tty = isatty(STDERR_FILENO);
    for (long r = 0; r < reps; r++) {
        if (tty)
            fprintf(stderr, "\rrepetition %ld/%ld", r + 1, reps);
        for (size_t k = 0; k < ngroups; k++)
            for (size_t i = 0; i < g[k].n; i++) {
                struct bench_series *s = &g[k].s[i];
                if (!bench_selected(only, s->name) || s->failed || s->na[0])
                    continue;
                size_t first = s->n;
                if (g[k].alarm_s)
                    alarm(g[k].alarm_s);
                int rc = g[k].run(g[k].ctx, i, s);
                if (g[k].alarm_s)
                    alarm(0);
                if (rc < 0) {
                    s->failed = failed = true;
                    continue;
                }
                /* This repetition's median, for the ratios taken repetition by repetition. */
                if (s->n > first)
                    s->rep[s->nrep++] = bench_median(s->v + first, s->n - first);
            }
    }
    if (tty)
        fprintf(stderr, "\r%*s\r", 30, "");
    return failed;
}

bool bench_any_ran(const struct bench_series *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].failed || s[i].n || s[i].na[0])
            return true;
    return false;
}

/* How a repetition's figure is made of the two cases' medians a and b. */
enum rep_figure { REP_RATIO, REP_INVERSE, REP_DIFF };

/* The figure of each repetition both cases ran, sorted: its count, and *out (to free). */
static size_t rep_figures(const struct bench_series *num, const struct bench_series *den,
                          enum rep_figure how, double **out)
{
    size_t n = num->nrep < den->nrep ? num->nrep : den->nrep;
    double *r = n ? malloc(n * sizeof *r) : NULL;
    *out = r;
    if (!r)
        return 0;
    for (size_t i = 0; i < n; i++) {
        double a = num->rep[i], b = den->rep[i];
        r[i] = how == REP_DIFF      ? a - b
               : how == REP_INVERSE ? (a > 0 ? b / a : 0)
                                    : (b > 0 ? a / b : 0);
    }
    qsort(r, n, sizeof *r, cmp_double);
    return n;
}

void bench_print_rep_ratios(const struct bench_series *num, const struct bench_series *den,
                            bool inverse)
{
    double *r;
    size_t n = rep_figures(num, den, inverse ? REP_INVERSE : REP_RATIO, &r);
    if (n >= 2)
        printf("      repetition by repetition: median %.2fx, from %.2fx to %.2fx (%zu)\n",
               bench_pct_sorted(r, n, 50), r[0], r[n - 1], n);
    free(r);
}

void bench_print_rep_diffs(const struct bench_series *num, const struct bench_series *den,
                           const char *unit)
{
    double *r;
    size_t n = rep_figures(num, den, REP_DIFF, &r);
    if (n >= 2)
        printf("      repetition by repetition: median %+.2f %s, from %+.2f to %+.2f %s (%zu)\n",
               bench_pct_sorted(r, n, 50), unit, r[0], r[n - 1], unit, n);
    free(r);
}

void bench_print_system(const char *prog)
{
    struct utsname u;
    char model[128];
    bench_cpu_model(model, sizeof model);
    uname(&u);
    printf("%s: shmlink %s, %s %s, %ld CPUs online (%s)\n", prog, shml_version(), u.sysname,
           u.release, sysconf(_SC_NPROCESSORS_ONLN), model);
}

_Noreturn void bench_usage(const struct bench_cli *cli, const char *why)
{
    if (why)
        fprintf(stderr, "%s: %s\n", cli->prog, why);
    fputs(cli->usage_text, stderr);
    exit(2);
}

static const struct bench_num_opt *find_num(const struct bench_cli *cli, const char *name)
{
    for (size_t k = 0; k < cli->n_nums; k++)
        if (strcmp(cli->nums[k].name, name) == 0)
            return &cli->nums[k];
    return NULL;
}

void bench_parse_cli(const struct bench_cli *cli, void *opts, int argc, char **argv, bool *quick,
                     int cpu[2], const char **only)
{
    bool cpus_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const struct bench_num_opt *num = find_num(cli, a);
        if (strcmp(a, "--quick") == 0) {
            *quick = true;
            cli->quick(opts);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            bench_usage(cli, NULL);
        } else if (!v) {
            bench_usage(cli, num || strcmp(a, "--cpus") == 0 || strcmp(a, "--only") == 0
                                 ? "missing value"
                                 : "unknown option");
        } else if (num) {
            if (!bench_parse_long(v, num->min, (long *)((char *)opts + num->offset)))
                bench_usage(cli, "bad number");
            i++;
        } else if (strcmp(a, "--only") == 0) {
            *only = v;
            i++;
        } else if (strcmp(a, "--cpus") == 0) {
            if (!bench_parse_cpus(v, cpu))
                bench_usage(cli, "--cpus takes two different CPU numbers, e.g. 0,1");
            cpus_given = true;
            i++;
        } else {
            bench_usage(cli, "unknown option");
        }
    }
    if (!cpus_given)
        bench_default_cpus(cpu);
}
