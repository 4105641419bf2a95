/*
 * bench_util.h - what the C benchmarks share: the clock, the pause instruction, the futex
 * call, sorting samples, and the --only filter.
 */
#ifndef SHML_BENCH_UTIL_H
#define SHML_BENCH_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
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

/* futex(2) on a word shared between processes (so not FUTEX_PRIVATE_FLAG). */
long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts);

/* qsort comparator for doubles. */
int cmp_double(const void *a, const void *b);

/* Does `name` contain one of the comma-separated TEXTs of --only (NULL: everything)? */
bool bench_selected(const char *only, const char *name);

#endif
