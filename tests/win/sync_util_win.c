/*
 * sync_util_win.c - sync_util.h on Windows, for the tests of tests/sync that run there. The
 * segment, clock, knobs and seed are as in tests/sync/sync_util.c; what differs:
 *
 *   - "asleep in a wait" cannot be read from /proc: a thread counts as asleep when it is alive
 *     and its CPU time (kernel + user, GetThreadTimes) does not move over 50 ms. A wait blocks
 *     in the kernel (under Wine: in wineserver) without running, so this holds for a waiter
 *     and not for a thread that computes or spins; it also holds for one in Sleep(), which the
 *     tests' waiters do not call between their "waiting" line and their wait.
 *   - a tid equal to the pid (in_futex(p, p) for a single-threaded peer) means the process's
 *     main thread, the one created first, since Windows numbers threads apart from processes.
 *   - there are no signals to interrupt a wait: sigstorm_start() skips the test.
 */
#include "sync_util.h"

#include <windows.h> /* first: the other Windows headers need its types */

#include <stdlib.h>
#include <tlhelp32.h>

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
    static LARGE_INTEGER freq; /* a race writes the same value */
    LARGE_INTEGER c;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    return (int64_t)(c.QuadPart / freq.QuadPart) * SEC +
           (int64_t)(c.QuadPart % freq.QuadPart) * SEC / freq.QuadPart;
}

pid_t sync_gettid(void)
{
    return (pid_t)GetCurrentThreadId();
}

/* The thread of process pid created first, or 0. */
static DWORD main_thread(DWORD pid)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    THREADENTRY32 te;
    te.dwSize = sizeof te;
    DWORD best = 0;
    uint64_t best_t = UINT64_MAX;
    for (BOOL ok = Thread32First(snap, &te); ok; ok = Thread32Next(snap, &te)) {
        if (te.th32OwnerProcessID != pid)
            continue;
        HANDLE h = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, te.th32ThreadID);
        if (!h)
            continue;
        FILETIME c, x, k, u;
        if (GetThreadTimes(h, &c, &x, &k, &u)) {
            uint64_t t = ((uint64_t)c.dwHighDateTime << 32) | c.dwLowDateTime;
            if (t < best_t) {
                best_t = t;
                best = te.th32ThreadID;
            }
        }
        CloseHandle(h);
    }
    CloseHandle(snap);
    return best;
}

/* Kernel + user time of a live thread (100 ns units), or -1 if it ended or cannot be read. */
static int64_t cpu_time(HANDLE h)
{
    FILETIME c, x, k, u;
    DWORD code;
    if (!GetExitCodeThread(h, &code) || code != STILL_ACTIVE || !GetThreadTimes(h, &c, &x, &k, &u))
        return -1;
    return (int64_t)((((uint64_t)k.dwHighDateTime << 32) | k.dwLowDateTime) +
                     (((uint64_t)u.dwHighDateTime << 32) | u.dwLowDateTime));
}

bool in_futex(pid_t pid, pid_t tid)
{
    DWORD t = tid == pid ? main_thread((DWORD)pid) : (DWORD)tid;
    if (t == 0)
        return false;
    HANDLE h = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, t);
    if (!h)
        return false;
    int64_t before = cpu_time(h);
    shmt_sleep_ms(50);
    int64_t after = cpu_time(h);
    CloseHandle(h);
    return before >= 0 && after == before;
}

void await_futex_at(const char *file, int line, pid_t pid, pid_t tid, int timeout_ms)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    /* Twice in a row: a thread that merely paused between two steps is not asleep. */
    int seen = 0;
    while (seen < 2) {
        if (shmt_now_ms() > deadline)
            shmt_fail(file, line, "thread %d of process %d did not sleep in a wait within %d ms",
                      (int)tid, (int)pid, timeout_ms);
        seen = in_futex(pid, tid) ? seen + 1 : 0;
    }
}

/* ---- periodic signals: none on Windows ---- */

void sigstorm_start(int period_ms)
{
    (void)period_ms;
    SKIP("Windows has no signals to interrupt a wait with");
}

void sigstorm_stop(void)
{
}

unsigned sigstorm_count(void)
{
    return 0;
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
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)(now_ns() ^ GetCurrentProcessId());
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
