/*
 * harness.h - the one test harness of shmlink (in the style of libuv's test/task.h and
 * test/run-tests.c).
 *
 * A test binary is one or more source files of TEST()s and PEER()s linked with harness.c,
 * which provides main():
 *
 *   bin                 run every test, each in its own forked child
 *   bin --list          print the test names
 *   bin --run NAME      run the tests whose name matches NAME (a shell pattern); also `bin NAME`
 *   bin --peer NAME ... run peer NAME (what spawn_peer() does; not for people)
 *
 * Each test runs in a forked child that leads its own process group, with a timeout (30 s
 * unless TEST_TIMEOUT says otherwise); on timeout the whole group is killed and the test fails.
 * A test ends by returning (pass), by a failed ASSERT_* (exit 1 after printing both values), by
 * SKIP() (exit 77 with the reason), or by dying. After the child ends, the parent kills what is
 * left of its process group and removes every object the test registered for cleanup (the
 * registry lives in memory shared with the parent, so it survives a child that crashed).
 * The last line of the output is "N passed, N failed, N skipped".
 *
 * Multi-process tests re-execute the binary as a peer: spawn_peer("name", "arg", ...) runs
 * PEER(name) in a new process with the arguments, connected to the test by a line-oriented
 * pipe pair (peer_send/peer_expect in the test, parent_send/parent_expect in the peer).
 * Every wait is bounded.
 *
 * Names: every test binary defines SHMT_AREA ("unit", "segment", ...); test NAME is
 * registered as "AREA.NAME". Names of shared objects come from shmt_addr(),
 * shmt_posix_name() and friends, unique per test process and registered for cleanup.
 *
 * Windows (harness_win32.c; Linux is harness_unix.c, the rest is harness.c): a test runs in
 * a process the runner starts from this binary ("bin --child NAME") inside a job object that
 * kills every process of the job when it closes; on timeout the runner terminates the job.
 * The cleanup registry is a named file mapping the runner shares with the test process. Peers
 * are started the same way with a duplex named pipe for the line messages. kill_peer() ends a
 * peer with TerminateProcess() whatever the signal, and its exit code is 128 + sig; a process
 * ended by an exception reports 128 + the closest signal (an access violation: SIGSEGV).
 */
#ifndef SHMT_HARNESS_H
#define SHMT_HARNESS_H

#include <shmlink.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

/* kill_peer(pid, SIGKILL) everywhere: Windows has no SIGKILL, and no signals to send. */
#ifndef SIGKILL
#define SIGKILL 9
#endif

#ifndef SHMT_AREA
#error "each test binary defines SHMT_AREA (\"unit\", \"segment\", \"interop\")"
#endif

#define SHMT_DEFAULT_TIMEOUT 30 /* seconds */
#define SHMT_EXIT_SKIP 77

#define SHMT_NORETURN __attribute__((noreturn))
/* printf checking in the dialect the C library's headers chose (mingw: C99's, with %zu). */
#ifdef __MINGW_PRINTF_FORMAT
#define SHMT_PRINTF(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#else
#define SHMT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

/* ---- registration (done by the macros; not called directly) ---- */

typedef void (*shmt_test_fn)(void);
typedef int (*shmt_peer_fn)(int argc, char **argv);
void shmt_register_test(const char *name, shmt_test_fn fn, int timeout_s);
void shmt_register_peer(const char *name, shmt_peer_fn fn);

/* TEST(name) { body } : a test with the default timeout. */
#define TEST(name) TEST_TIMEOUT(name, SHMT_DEFAULT_TIMEOUT)
/* TEST_TIMEOUT(name, seconds) { body } : a test with its own timeout. */
#define TEST_TIMEOUT(name, secs)                                                                \
    static void shmt_test_##name(void);                                                        \
    __attribute__((constructor)) static void shmt_register_test_##name(void)                    \
    {                                                                                          \
        shmt_register_test(SHMT_AREA "." #name, shmt_test_##name, (secs));                     \
    }                                                                                          \
    static void shmt_test_##name(void)

/*
 * PEER(name) { body; return exit_code; } : a process a test starts with spawn_peer(); argc and
 * argv hold the arguments given to spawn_peer() after the name (argv[0] is the first of them).
 */
#define PEER(name)                                                                              \
    static int shmt_peer_##name(int argc, char **argv);                                         \
    __attribute__((constructor)) static void shmt_register_peer_##name(void)                    \
    {                                                                                          \
        shmt_register_peer(#name, shmt_peer_##name);                                           \
    }                                                                                          \
    static int shmt_peer_##name(int argc, char **argv)

/* ---- assertions ---- */

/* An integer of any type, kept with its signedness so that both sides print and compare right. */
struct shmt_val {
    bool is_signed;
    intmax_t s;
    uintmax_t u;
};
static inline struct shmt_val shmt_val_s(intmax_t v)
{
    struct shmt_val r = {true, v, (uintmax_t)v};
    return r;
}
static inline struct shmt_val shmt_val_u(uintmax_t v)
{
    struct shmt_val r = {false, (intmax_t)v, v};
    return r;
}
#define SHMT_VAL(x)                                                                             \
    _Generic((x),                                                                              \
        char: shmt_val_s,                                                                      \
        signed char: shmt_val_s,                                                               \
        short: shmt_val_s,                                                                     \
        int: shmt_val_s,                                                                       \
        long: shmt_val_s,                                                                      \
        long long: shmt_val_s,                                                                 \
        default: shmt_val_u)(x)

/* -1, 0, 1 as a <, ==, > b, exact across signedness. */
int shmt_cmp(struct shmt_val a, struct shmt_val b);

SHMT_NORETURN void shmt_fail(const char *file, int line, const char *fmt, ...) SHMT_PRINTF(3, 4);
SHMT_NORETURN void shmt_fail_cmp(const char *file, int line, const char *sa, const char *op,
                                 const char *sb, struct shmt_val a, struct shmt_val b);
SHMT_NORETURN void shmt_fail_ok(const char *file, int line, const char *expr, intmax_t got,
                                const char *desc, const char *detail);
SHMT_NORETURN void shmt_fail_err(const char *file, int line, const char *expr, intmax_t got,
                                 intmax_t want, const char *want_expr, const char *desc,
                                 const char *detail);
SHMT_NORETURN void shmt_fail_str(const char *file, int line, const char *sa, const char *sb,
                                 const char *a, const char *b);
SHMT_NORETURN void shmt_fail_mem(const char *file, int line, const char *sa, const char *sb,
                                 const void *a, const void *b, size_t n);
/* Name of an errno value ("ENOENT"), or "E?" */
const char *shmt_errname(intmax_t err);

#define SHMT_ASSERT_CMP(a, op, b)                                                               \
    do {                                                                                       \
        struct shmt_val shmt_a_ = SHMT_VAL(a);                                                 \
        struct shmt_val shmt_b_ = SHMT_VAL(b);                                                 \
        if (!(shmt_cmp(shmt_a_, shmt_b_) op 0))                                                \
            shmt_fail_cmp(__FILE__, __LINE__, #a, #op, #b, shmt_a_, shmt_b_);                  \
    } while (0)

#define ASSERT_EQ(a, b) SHMT_ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) SHMT_ASSERT_CMP(a, !=, b)
#define ASSERT_LT(a, b) SHMT_ASSERT_CMP(a, <, b)
#define ASSERT_LE(a, b) SHMT_ASSERT_CMP(a, <=, b)
#define ASSERT_GT(a, b) SHMT_ASSERT_CMP(a, >, b)
#define ASSERT_GE(a, b) SHMT_ASSERT_CMP(a, >=, b)

#define ASSERT_TRUE(x)                                                                          \
    do {                                                                                       \
        if (!(x))                                                                              \
            shmt_fail(__FILE__, __LINE__, "ASSERT_TRUE(%s) failed", #x);                       \
    } while (0)
#define ASSERT_FALSE(x)                                                                         \
    do {                                                                                       \
        if (x)                                                                                 \
            shmt_fail(__FILE__, __LINE__, "ASSERT_FALSE(%s) failed", #x);                      \
    } while (0)
#define ASSERT_NULL(p)                                                                          \
    do {                                                                                       \
        const void *shmt_p_ = (p);                                                             \
        if (shmt_p_ != NULL)                                                                   \
            shmt_fail(__FILE__, __LINE__, "ASSERT_NULL(%s) failed: %p", #p, shmt_p_);          \
    } while (0)
#define ASSERT_NOT_NULL(p)                                                                      \
    do {                                                                                       \
        if ((p) == NULL)                                                                       \
            shmt_fail(__FILE__, __LINE__, "ASSERT_NOT_NULL(%s) failed", #p);                   \
    } while (0)
#define ASSERT_PTR_EQ(a, b)                                                                     \
    do {                                                                                       \
        const void *shmt_pa_ = (a), *shmt_pb_ = (b);                                           \
        if (shmt_pa_ != shmt_pb_)                                                              \
            shmt_fail(__FILE__, __LINE__, "ASSERT_PTR_EQ(%s, %s) failed: %p != %p", #a, #b,    \
                      shmt_pa_, shmt_pb_);                                                     \
    } while (0)
#define ASSERT_STR_EQ(a, b)                                                                     \
    do {                                                                                       \
        const char *shmt_sa_ = (a), *shmt_sb_ = (b);                                           \
        if (shmt_sa_ == NULL || shmt_sb_ == NULL || strcmp(shmt_sa_, shmt_sb_) != 0)           \
            shmt_fail_str(__FILE__, __LINE__, #a, #b, shmt_sa_, shmt_sb_);                     \
    } while (0)
#define ASSERT_MEM_EQ(a, b, n)                                                                  \
    do {                                                                                       \
        const void *shmt_ma_ = (a), *shmt_mb_ = (b);                                           \
        size_t shmt_n_ = (n);                                                                  \
        if (memcmp(shmt_ma_, shmt_mb_, shmt_n_) != 0)                                          \
            shmt_fail_mem(__FILE__, __LINE__, #a, #b, shmt_ma_, shmt_mb_, shmt_n_);            \
    } while (0)

/* expr >= 0 (a shmlink call that succeeded); prints the code, its text and shml_last_error(). */
#define ASSERT_OK(expr)                                                                         \
    do {                                                                                       \
        intmax_t shmt_r_ = (intmax_t)(expr);                                                   \
        if (shmt_r_ < 0)                                                                       \
            shmt_fail_ok(__FILE__, __LINE__, #expr, shmt_r_, shml_strerror((int)shmt_r_),      \
                         shml_last_error());                                                   \
    } while (0)

/* expr == err exactly (err is negative: -ENOENT, -SHML_ECORRUPT). */
#define ASSERT_ERR(expr, err)                                                                   \
    do {                                                                                       \
        intmax_t shmt_r_ = (intmax_t)(expr);                                                   \
        intmax_t shmt_w_ = (intmax_t)(err);                                                    \
        if (shmt_r_ != shmt_w_)                                                                \
            shmt_fail_err(__FILE__, __LINE__, #expr, shmt_r_, shmt_w_, #err,                   \
                          shmt_r_ < 0 ? shml_strerror((int)shmt_r_) : "success",               \
                          shml_last_error());                                                  \
    } while (0)

/* A plain system call that returns -1 and sets errno on failure. */
#define ASSERT_SYS(expr)                                                                        \
    do {                                                                                       \
        if ((expr) == -1)                                                                      \
            shmt_fail(__FILE__, __LINE__, "%s failed: %s (%s)", #expr, strerror(errno),        \
                      shmt_errname(errno));                                                    \
    } while (0)

/* End the test (or peer) as skipped, saying why. */
#define SKIP(...) shmt_skip(__VA_ARGS__)
SHMT_NORETURN void shmt_skip(const char *fmt, ...) SHMT_PRINTF(1, 2);

/* Print a note in the test's output (prefixed with who prints it). */
void shmt_log(const char *fmt, ...) SHMT_PRINTF(1, 2);

/* ---- names and cleanup ---- */

/*
 * A fresh POSIX shm name ("shmt.PID.N", no leading '/'), unique for this test process and
 * registered for removal after the test. The string stays valid until the test ends.
 */
const char *shmt_posix_name(void);
/*
 * A fresh address of the platform's default named backend, unique for this test process and
 * registered for removal after the test: "posix:/shmt.PID.N" on Linux (the name is
 * shmt_posix_name()'s), "win:shmt.PID.N" on Windows. Valid until the test ends.
 */
const char *shmt_addr(void);
/* A fresh System V key that no segment uses now, registered for removal (Windows: SKIP). */
int32_t shmt_sysv_key(void);
/*
 * A fresh directory under /tmp (mode 0755; Windows: under GetTempPath()), removed with its
 * contents after the test.
 */
const char *shmt_tmpdir(void);
/* Register objects made some other way (by peers, helpers, ftok keys) for removal. */
void shmt_cleanup_posix(const char *name); /* with or without the leading '/' */
void shmt_cleanup_sysv_key(int32_t key);
void shmt_cleanup_sysv_id(int32_t id);
void shmt_cleanup_path(const char *path);
/* Register the object at a posix:, win:, file:, sysv:KEY or sysv:id= address for removal. */
void shmt_cleanup_addr(const char *addr);
/*
 * Keep the segment at `addr` (it must exist) open in this process until the process ends,
 * where a segment lives only while some process has it open (Windows): a test written for
 * systems whose named segments persist may then close its last handle and open the address
 * again, or have peers open it later. Does nothing where segments persist (Linux). Fails the
 * test if the segment cannot be opened.
 */
void shmt_hold(const char *addr);

/* printf into a string that stays valid until the test ends (a pool; do not free). */
const char *shmt_fmt(const char *fmt, ...) SHMT_PRINTF(1, 2);

/* ---- peers ---- */

/* Start PEER(name) with string arguments: spawn_peer("writer", addr, "42"). Returns its pid. */
#define spawn_peer(...) shmt_spawn_peer((const char *const[]){__VA_ARGS__, NULL})
pid_t shmt_spawn_peer(const char *const *name_and_args);
/*
 * Wait for a peer to end, up to timeout_ms. Returns its exit code, 128 + signal if it was
 * killed, or -1 if it did not end in time (it is then killed with SIGKILL and reaped).
 */
int wait_peer(pid_t pid, int timeout_ms);
/* Send `sig` to a peer and reap it; returns as wait_peer(). */
int kill_peer(pid_t pid, int sig);

/* Line messages between a test and its peers. Each returns 0 or -errno (-ETIMEDOUT, -EPIPE). */
int peer_send(pid_t pid, const char *line);
int peer_expect(pid_t pid, const char *line, int timeout_ms);
int peer_recv(pid_t pid, char *buf, size_t cap, int timeout_ms);
int parent_send(const char *line);
int parent_expect(const char *line, int timeout_ms);
int parent_recv(char *buf, size_t cap, int timeout_ms);

/*
 * Run a program (argv[0] is a path) with stdin from /dev/null (NUL) and stdout captured into a
 * malloc'd buffer (*out, *out_len; may be NULL to discard). Returns its exit code, 128 + signal,
 * or -1 on timeout (killed) or failure to start.
 */
int shmt_run(const char *const *argv, char **out, size_t *out_len, int timeout_ms);

/* ---- small utilities ---- */

/*
 * Start time of a process in clock ticks since boot (/proc/PID/stat field 22); on Windows its
 * creation time (a FILETIME), as shmlink records it. 0 if unknown.
 */
uint64_t shmt_proc_start(pid_t pid);
/* Monotonic clock in milliseconds. */
int64_t shmt_now_ms(void);
/* Sleep for ms milliseconds. */
void shmt_sleep_ms(int ms);
/* The byte at offset i of the test pattern `seed`. */
static inline uint8_t shmt_pattern(size_t i, unsigned seed)
{
    return (uint8_t)((i * 131u + (i >> 8) * 7u + seed * 17u + 1u) & 0xffu);
}
void shmt_fill(void *p, size_t n, unsigned seed);
/* Offset of the first byte that differs from the pattern, or -1 if all match. */
ptrdiff_t shmt_check(const void *p, size_t n, unsigned seed);
#define ASSERT_PATTERN(p, n, seed)                                                              \
    do {                                                                                       \
        ptrdiff_t shmt_off_ = shmt_check((p), (n), (seed));                                    \
        if (shmt_off_ >= 0)                                                                    \
            shmt_fail(__FILE__, __LINE__,                                                      \
                      "ASSERT_PATTERN(%s, %s, %s) failed: byte %td is 0x%02x, want 0x%02x", #p, \
                      #n, #seed, shmt_off_, ((const uint8_t *)(p))[shmt_off_],                 \
                      shmt_pattern((size_t)shmt_off_, (seed)));                                \
    } while (0)

/*
 * A hostile peer, as a thread: flips the `width`-byte (4 or 8) word at `word` (in shared
 * memory) between the value it holds and each of hostile[0..n-1] in a tight loop, one store
 * per value, until shmt_toggler_stop(), which puts back the value it found and frees t.
 */
struct shmt_toggler;
struct shmt_toggler *shmt_toggler_start(void *word, size_t width, const uint64_t *hostile,
                                        size_t n);
void shmt_toggler_stop(struct shmt_toggler *t);

/* Name of the running test, or of the running peer. */
const char *shmt_current(void);
/* Path of this test binary (for peers and for `spawn` of itself). */
const char *shmt_self_exe(void);

#endif /* SHMT_HARNESS_H */
