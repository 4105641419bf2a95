/*
 * bench_util.c - what the C benchmarks share (bench_util.h).
 */
#include "bench_util.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE_FLAG: the two processes share the word through a shared mapping. */
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bool bench_selected(const char *only, const char *name)
{
    if (!only)
        return true;
    for (const char *p = only; *p;) {
        size_t len = strcspn(p, ",");
        char word[64];
        if (len > 0 && len < sizeof word) {
            memcpy(word, p, len);
            word[len] = '\0';
            if (strstr(name, word))
                return true;
        }
        p += len + (p[len] == ',');
    }
    return false;
}
