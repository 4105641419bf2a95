#include "sync_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *sync_seg_create(size_t size, const char **addr, shml_segment **seg)
{
    const char *a = shmt_addr();
    ASSERT_OK(shml_segment_create(a, size, NULL, seg));
    ASSERT_EQ(shml_segment_size(*seg), size);
    void *data = shml_segment_data(*seg);
    ASSERT_NOT_NULL(data);
    memset(data, 0, size);
    *addr = a;
    return data;
}

void *sync_seg_open(const char *addr, shml_segment **seg)
{
    ASSERT_OK(shml_segment_open(addr, NULL, seg));
    void *data = shml_segment_data(*seg);
    ASSERT_NOT_NULL(data);
    return data;
}

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

pid_t sync_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449 /* Linux 5.16; older headers lack the name */
#endif

bool in_futex(pid_t pid, pid_t tid)
{
    char path[96], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* "202 0x... ..." while blocked in a system call; "running" or "-1 ..." otherwise. A wait
       bound to a cancellation token sleeps in futex_waitv. */
    char *end;
    long nr = strtol(buf, &end, 10);
    return end != buf && (nr == SYS_futex || nr == SYS_futex_waitv);
}

void await_futex_at(const char *file, int line, pid_t pid, pid_t tid, int timeout_ms)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    /* Twice in a row, a millisecond apart: a thread passing through futex() is not asleep. */
    int seen = 0;
    while (seen < 2) {
        if (shmt_now_ms() > deadline)
            shmt_fail(file, line, "thread %d of process %d did not sleep in futex() within %d ms",
                      (int)tid, (int)pid, timeout_ms);
        seen = in_futex(pid, tid) ? seen + 1 : 0;
        shmt_sleep_ms(1);
    }
}

/* ---- periodic signals ---- */

static _Atomic unsigned storm_count;
static timer_t storm_timer;
static struct sigaction storm_old;

static void on_storm(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&storm_count, 1, memory_order_relaxed);
}

void sigstorm_start(int period_ms)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_storm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: an interrupted futex() fails with EINTR */
    ASSERT_SYS(sigaction(SIGUSR1, &sa, &storm_old));
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    ASSERT_SYS(timer_create(CLOCK_MONOTONIC, &sev, &storm_timer));
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = (long)period_ms * 1000000L;
    its.it_interval = its.it_value;
    ASSERT_SYS(timer_settime(storm_timer, 0, &its, NULL));
}

void sigstorm_stop(void)
{
    ASSERT_SYS(timer_delete(storm_timer));
    ASSERT_SYS(sigaction(SIGUSR1, &storm_old, NULL));
}

unsigned sigstorm_count(void)
{
    return atomic_load_explicit(&storm_count, memory_order_relaxed);
}

/* ---- knobs ---- */

long sync_iters(long n, long min)
{
    const char *d = getenv("SHMT_SYNC_DIV");
    long div = d ? strtol(d, NULL, 10) : 1;
    if (div > 1)
        n /= div;
    return n < min ? min : n;
}

unsigned sync_seed(void)
{
    const char *s = getenv("SHMT_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)(now_ns() ^ getpid());
    shmt_log("seed %u (set SHMT_SEED=%u to repeat)", seed, seed);
    return seed;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t median_i64(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
    return v[n / 2];
}
