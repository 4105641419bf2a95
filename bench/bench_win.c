/*
 * bench_win.c - shmlink's waits on Windows against the raw Windows mechanisms, measured by the
 * same program in the same run (see docs/PERFORMANCE.md). Two pairs of cases, each a round
 * trip between this process and a peer it starts (itself again, with CreateProcess):
 *
 *   event   shml_event ping-pong in a win: segment       vs  two named auto-reset events
 *   spin    spin-mode queue channels, one each way        vs  a word in a named section polled
 *
 * Repetitions interleave the four cases (A B A B), so that a slow minute of a shared machine
 * hurts both sides of a ratio alike; the ratios are taken repetition by repetition. Times are
 * reported only as ratios and medians of this run: they say nothing about another machine.
 *
 * Usage: bench_win [--rounds N] [--reps R] [--quick]
 */
#include <windows.h>

#include <shmlink.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_TIMEOUT_MS 60000
#define MSG_LEN 64

static int64_t now_ns(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER c;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    return (int64_t)((double)c.QuadPart * 1e9 / (double)freq.QuadPart);
}

static void die(const char *what, long err)
{
    fprintf(stderr, "bench_win: %s: %ld (%s) %s\n", what, err,
            err < 0 ? shml_strerror((int)err) : "", err < 0 ? shml_last_error() : "");
    exit(1);
}

/* Run on CPU `cpu` (0 or 1), so that two spinning processes never share one. */
static void pin(int cpu)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    if (si.dwNumberOfProcessors >= 2)
        SetProcessAffinityMask(GetCurrentProcess(), (DWORD_PTR)1 << cpu);
}

/* ---- the cases' two sides ---- */

/* The shared page of the raw spin case: the ping word and the pong word, a line apart. */
struct spin_page {
    _Alignas(64) _Atomic uint32_t ping;
    _Alignas(64) _Atomic uint32_t pong;
};

/* The shmlink event case: two events in one segment. */
struct ev_page {
    shml_event ping;
    shml_event pong;
};

static void raw_event_names(const char *tag, char *a, char *b, size_t cap)
{
    snprintf(a, cap, "Local\\bw-%s-a", tag);
    snprintf(b, cap, "Local\\bw-%s-b", tag);
}

/* One side of case `which`; the peer answers `rounds` pings. Returns ns per round trip
   (measured by the initiator), or 0 on the peer's side. */
static double side(const char *which, const char *tag, long rounds, bool initiator)
{
    char a[128], b[128];
    if (strcmp(which, "raw-event") == 0) {
        raw_event_names(tag, a, b, sizeof a);
        HANDLE ping = CreateEventA(NULL, FALSE, FALSE, a);
        HANDLE pong = CreateEventA(NULL, FALSE, FALSE, b);
        if (!ping || !pong)
            die("CreateEvent", (long)GetLastError());
        HANDLE send = initiator ? ping : pong, recv = initiator ? pong : ping;
        if (!initiator)
            SetEvent(pong); /* ready */
        else if (WaitForSingleObject(recv, PEER_TIMEOUT_MS) != WAIT_OBJECT_0)
            die("peer not ready", 0);
        int64_t t0 = now_ns();
        for (long i = 0; i < rounds; i++) {
            if (initiator) {
                SetEvent(send);
                if (WaitForSingleObject(recv, PEER_TIMEOUT_MS) != WAIT_OBJECT_0)
                    die("raw event: lost round", i);
            } else {
                if (WaitForSingleObject(recv, PEER_TIMEOUT_MS) != WAIT_OBJECT_0)
                    die("raw event: lost round", i);
                SetEvent(send);
            }
        }
        double per = (double)(now_ns() - t0) / (double)rounds;
        CloseHandle(ping);
        CloseHandle(pong);
        return initiator ? per : 0;
    }
    if (strcmp(which, "shml-event") == 0) {
        snprintf(a, sizeof a, "win:bw-%s-ev", tag);
        shml_segment *seg;
        long r = shml_segment_open(a, NULL, &seg);
        if (r < 0)
            die("open event segment", r);
        struct ev_page *p = shml_segment_data(seg);
        shml_event *send = initiator ? &p->ping : &p->pong, *recv = initiator ? &p->pong : &p->ping;
        if (!initiator)
            shml_event_notify(&p->pong, SHML_WAKE_ONE); /* ready */
        uint32_t seen = 0; /* both events start at generation 0; the peer's ready made pong 1 */
        if (initiator) {
            if (shml_event_wait(recv, 0, (int64_t)PEER_TIMEOUT_MS * 1000000) < 0)
                die("peer not ready", 0);
            seen = 1;
        }
        int64_t t0 = now_ns();
        for (long i = 0; i < rounds; i++) {
            if (initiator) {
                shml_event_notify(send, SHML_WAKE_ONE);
                r = shml_event_wait(recv, seen, (int64_t)PEER_TIMEOUT_MS * 1000000);
                seen++;
            } else {
                r = shml_event_wait(recv, seen, (int64_t)PEER_TIMEOUT_MS * 1000000);
                seen++;
                shml_event_notify(send, SHML_WAKE_ONE);
            }
            if (r < 0)
                die("shmlink event: lost round", r);
        }
        double per = (double)(now_ns() - t0) / (double)rounds;
        shml_segment_close(seg);
        return initiator ? per : 0;
    }
    if (strcmp(which, "raw-spin") == 0) {
        snprintf(a, sizeof a, "Local\\bw-%s-spin", tag);
        HANDLE m = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, a);
        if (!m)
            die("OpenFileMapping", (long)GetLastError());
        struct spin_page *p = MapViewOfFile(m, FILE_MAP_ALL_ACCESS, 0, 0, sizeof *p);
        if (!p)
            die("MapViewOfFile", (long)GetLastError());
        _Atomic uint32_t *send = initiator ? &p->ping : &p->pong;
        _Atomic uint32_t *recv = initiator ? &p->pong : &p->ping;
        int64_t limit = now_ns() + (int64_t)PEER_TIMEOUT_MS * 1000000;
        if (!initiator)
            atomic_store_explicit(send, 1, memory_order_release); /* ready */
        else
            while (atomic_load_explicit(recv, memory_order_acquire) != 1)
                if (now_ns() > limit)
                    die("peer not ready", 0);
        int64_t t0 = now_ns();
        for (uint32_t i = 1; i <= (uint32_t)rounds; i++) {
            /* Release pairs with the other side's acquire load of the same word: the value is
               the round, so nothing else needs ordering here. */
            if (initiator)
                atomic_store_explicit(send, i + 1, memory_order_release);
            uint32_t spins = 0;
            while (atomic_load_explicit(recv, memory_order_acquire) != i + 1) {
                __builtin_ia32_pause();
                if (++spins == 0x100000) {
                    spins = 0;
                    if (now_ns() > limit)
                        die("raw spin: lost round", (long)i);
                }
            }
            if (!initiator)
                atomic_store_explicit(send, i + 1, memory_order_release);
        }
        double per = (double)(now_ns() - t0) / (double)rounds;
        UnmapViewOfFile(p);
        CloseHandle(m);
        return initiator ? per : 0;
    }
    if (strcmp(which, "shml-spin") == 0) {
        char q1[128], q2[128];
        snprintf(q1, sizeof q1, "win:bw-%s-q1", tag);
        snprintf(q2, sizeof q2, "win:bw-%s-q2", tag);
        struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
        o.wait = SHML_WAIT_SPIN;
        shml_channel *tx, *rx;
        long r = shml_channel_open(initiator ? q1 : q2, SHML_PRODUCER, &o, &tx);
        if (r >= 0)
            r = shml_channel_open(initiator ? q2 : q1, SHML_CONSUMER, &o, &rx);
        if (r < 0)
            die("open queue", r);
        char msg[MSG_LEN] = {0};
        int64_t timeout = (int64_t)PEER_TIMEOUT_MS * 1000000, t0 = 0;
        /* Round -1 is the handshake (both ends attached and polling); the rest are timed. */
        for (long i = -1; i < rounds; i++) {
            if (i == 0)
                t0 = now_ns();
            if (initiator) {
                r = shml_send(tx, msg, sizeof msg, timeout);
                if (r >= 0)
                    r = shml_recv(rx, msg, sizeof msg, timeout);
            } else {
                r = shml_recv(rx, msg, sizeof msg, timeout);
                if (r >= 0)
                    r = shml_send(tx, msg, sizeof msg, timeout);
            }
            if (r < 0)
                die("shmlink spin queue: lost round", r);
        }
        double per = (double)(now_ns() - t0) / (double)rounds;
        shml_channel_close(tx);
        shml_channel_close(rx);
        return initiator ? per : 0;
    }
    die("unknown case", 0);
    return 0;
}

/* ---- the measuring side ---- */

static HANDLE start_peer(const char *which, const char *tag, long rounds)
{
    char exe[MAX_PATH], line[MAX_PATH + 256];
    GetModuleFileNameA(NULL, exe, sizeof exe);
    snprintf(line, sizeof line, "\"%s\" --peer %s %s %ld", exe, which, tag, rounds);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    /* Wine under load now and then fails a start with ERROR_INTERNAL_ERROR: try again. */
    for (int tries = 1; !CreateProcessA(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi);
         tries++) {
        if (GetLastError() != ERROR_INTERNAL_ERROR || tries == 5)
            die("CreateProcess", (long)GetLastError());
        Sleep(100);
    }
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

static void end_peer(HANDLE p)
{
    if (WaitForSingleObject(p, PEER_TIMEOUT_MS) != WAIT_OBJECT_0) {
        TerminateProcess(p, 1);
        die("peer did not end", 0);
    }
    DWORD code = 1;
    GetExitCodeProcess(p, &code);
    CloseHandle(p);
    if (code != 0)
        die("peer failed", (long)code);
}

/* One repetition of a case: ns per round trip, as the initiator timed it. */
static double run_case(const char *which, const char *tag, long rounds)
{
    HANDLE peer = start_peer(which, tag, rounds);
    double per = side(which, tag, rounds, true);
    end_peer(peer);
    return per;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--peer") == 0) {
        pin(1);
        side(argv[2], argv[3], atol(argv[4]), false);
        return 0;
    }
    long rounds = 20000, reps = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            rounds = 500;
            reps = 2;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atol(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atol(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_win [--rounds N] [--reps R] [--quick]\n");
            return 2;
        }
    }
    if (rounds < 1 || reps < 1 || reps > 1000)
        return 2;
    pin(0);
    char tag[32];
    snprintf(tag, sizeof tag, "%lu", (unsigned long)GetCurrentProcessId());

    /* The shared objects, made once: the event segment, the two queues, the raw page. */
    char a[128];
    snprintf(a, sizeof a, "win:bw-%s-ev", tag);
    shml_segment *evseg;
    long r = shml_segment_create(a, sizeof(struct ev_page), NULL, &evseg);
    if (r < 0)
        die("create event segment", r);
    struct ev_page *ev = shml_segment_data(evseg);
    shml_event_init(&ev->ping);
    shml_event_init(&ev->pong);
    /* A Windows mapping lives while a handle is open: the queues' segments stay open here,
       without an endpoint, while the sides open theirs. */
    shml_segment *queues[2];
    for (int q = 0; q < 2; q++) {
        snprintf(a, sizeof a, "win:bw-%s-q%d", tag, q + 1);
        struct shml_channel_opts o = SHML_CHANNEL_OPTS_INIT;
        o.capacity = 64 * 1024;
        o.max_msg = MSG_LEN;
        o.flags = SHML_SPSC;
        shml_channel *ch;
        r = shml_channel_create(a, &o, &ch);
        if (r >= 0)
            r = shml_segment_open(a, NULL, &queues[q]);
        if (r < 0)
            die("create queue", r);
        shml_channel_close(ch);
    }
    snprintf(a, sizeof a, "Local\\bw-%s-spin", tag);
    HANDLE spin = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
                                     sizeof(struct spin_page), a);
    if (!spin)
        die("CreateFileMapping", (long)GetLastError());

    static const char *const cases[4] = {"raw-event", "shml-event", "raw-spin", "shml-spin"};
    double *per[4], *ratio[2];
    for (int c = 0; c < 4; c++)
        per[c] = calloc((size_t)reps, sizeof(double));
    ratio[0] = calloc((size_t)reps, sizeof(double));
    ratio[1] = calloc((size_t)reps, sizeof(double));
    for (long rep = 0; rep < reps; rep++) {
        for (int c = 0; c < 4; c++) {
            /* The events restart from generation 0 for each repetition. */
            shml_event_init(&ev->ping);
            shml_event_init(&ev->pong);
            struct spin_page *sp = MapViewOfFile(spin, FILE_MAP_ALL_ACCESS, 0, 0, 0);
            if (sp) {
                atomic_store(&sp->ping, 0);
                atomic_store(&sp->pong, 0);
                UnmapViewOfFile(sp);
            }
            per[c][rep] = run_case(cases[c], tag, rounds);
        }
        ratio[0][rep] = per[1][rep] / per[0][rep];
        ratio[1][rep] = per[3][rep] / per[2][rep];
    }
    printf("bench_win: shmlink %s, %ld rounds x %ld repetitions, interleaved\n", shml_version(),
           rounds, reps);
    printf("  case         median round trip (ns, this run only)\n");
    for (int c = 0; c < 4; c++)
        printf("  %-12s %10.0f\n", cases[c], median(per[c], (size_t)reps));
    printf("  event ratio  shml-event / raw-event = %.3f (median of per-repetition ratios)\n",
           median(ratio[0], (size_t)reps));
    printf("  spin ratio   shml-spin / raw-spin   = %.3f (median of per-repetition ratios)\n",
           median(ratio[1], (size_t)reps));

    CloseHandle(spin);
    for (int q = 0; q < 2; q++) {
        shml_segment_close(queues[q]);
        snprintf(a, sizeof a, "win:bw-%s-q%d", tag, q + 1);
        shml_segment_unlink(a);
    }
    shml_segment_close(evseg);
    snprintf(a, sizeof a, "win:bw-%s-ev", tag);
    shml_segment_unlink(a);
    return 0;
}
