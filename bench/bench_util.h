/*
 * bench_util.h - what the C benchmarks share: the clock, the pause instruction, the raw spin
 * waits they measure against, the futex call, pinning, percentiles, the options both take
 * (--cpus, --only, numbers) and the machine's CPU model.
 */
#ifndef SHML_BENCH_UTIL_H
#define SHML_BENCH_UTIL_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t now_ns(void);

/* The CPU's spin-wait hint (nothing where there is none). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A spin wait's bound: true once limit_ns have passed since the 2^20th poll. */
static inline bool bench_spin_expired(uint32_t *n, int64_t *deadline, int64_t limit_ns)
{
    if ((++*n & 0xfffff) != 0)
        return false;
    int64_t t = now_ns();
    if (*deadline == 0)
        *deadline = t + limit_ns;
    return t > *deadline;
}

/*
 * The raw baselines: poll until *word == want, -ETIMEDOUT after limit_ns. bench_spin_wait is
 * a plain loop of acquire loads, no pause instruction and no yield: the fastest a change can
 * be seen. bench_spin_wait_pause runs the pause instruction before each load, as the
 * library's spin loops do. The clock is read once every 2^20 polls (the first read sets the
 * deadline), so the bound costs nothing in a round trip that completes. Inline, so that the
 * baselines compile as they would in the caller.
 */
static inline int bench_spin_wait(_Atomic uint32_t *word, uint32_t want, int64_t limit_ns)
{
    uint32_t n = 0;
    int64_t deadline = 0;
    /* Acquire: pairs with the other process's release store of the word (the message bytes
       written before it are visible after this load). */
    while (atomic_load_explicit(word, memory_order_acquire) != want)
        if (bench_spin_expired(&n, &deadline, limit_ns))
            return -ETIMEDOUT;
    return 0;
}

static inline int bench_spin_wait_pause(_Atomic uint32_t *word, uint32_t want, int64_t limit_ns)
{
    uint32_t n = 0;
    int64_t deadline = 0;
    for (;;) {
        cpu_relax();
        /* Acquire: pairs with the other process's release store of the word. */
        if (atomic_load_explicit(word, memory_order_acquire) == want)
            return 0;
        if (bench_spin_expired(&n, &deadline, limit_ns))
            return -ETIMEDOUT;
    }
}

/* futex(2) on a word shared between processes (so not FUTEX_PRIVATE_FLAG). */
long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts);

/*
 * The raw futex baseline: wait until *word == want, sleeping in FUTEX_WAIT while it holds
 * anything else. The bound is a constant relative timeout per sleep (limit_s seconds), so it
 * reads no clock. Returns 0, or -ETIMEDOUT when nothing came for a whole sleep.
 */
static inline int bench_futex_wait(_Atomic uint32_t *word, uint32_t want, time_t limit_s)
{
    const struct timespec limit = {limit_s, 0};
    for (;;) {
        /* Acquire: pairs with the other process's release store of the word. */
        uint32_t cur = atomic_load_explicit(word, memory_order_acquire);
        if (cur == want)
            return 0;
        if (futex(word, FUTEX_WAIT, cur, &limit) != 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
    }
}

/* qsort comparator for doubles. */
int cmp_double(const void *a, const void *b);

/* Nearest-rank percentile (0 < p <= 100) of the sorted v[0..n); 0 when n is 0. */
double bench_pct_sorted(const double *v, size_t n, double p);

/* Send SIGINT, SIGTERM, SIGHUP and SIGALRM (the bound of a run) to `handler`, which cleans up
   and ends the process. */
void bench_catch_fatal(void (*handler)(int));

/* Pin this process to `cpu` (nothing if cpu < 0); a failure is reported for `prog`. */
void bench_pin(const char *prog, int cpu);

/* A decimal number >= min into *out; false if `s` is not one. */
bool bench_parse_long(const char *s, long min, long *out);

/* --cpus A,B: two different CPU numbers into cpu[0..1]; false if `s` is not that. */
bool bench_parse_cpus(const char *s, int cpu[2]);

/* No --cpus: the first two CPUs this process may run on, or -1, -1 with fewer than two. */
void bench_default_cpus(int cpu[2]);

/* The CPU's model name from /proc/cpuinfo into buf ("?" when unknown). */
void bench_cpu_model(char *buf, size_t cap);

/* Does `name` contain one of the comma-separated TEXTs of --only (NULL: everything)? */
bool bench_selected(const char *only, const char *name);

#endif
