/*
 * harness.c - main() of every test binary, the part that is the same on every platform:
 * registry, assertions and their output, names, the cleanup registry, the line protocol
 * between a test and its peers, the runner's report. Processes, pipes, time and the removal
 * of what tests made are the platform file's (harness_unix.c, harness_win32.c), behind
 * harness_sys.h. See harness.h for the contract.
 */
#include "harness_sys.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ---- registry ---- */

#define MAX_TESTS 512
#define MAX_PEERS 256

struct peer_entry {
    const char *name;
    shmt_peer_fn fn;
};

static struct shmt_test tests[MAX_TESTS];
static size_t n_tests;
static struct peer_entry peers[MAX_PEERS];
static size_t n_peers;

void shmt_register_test(const char *name, shmt_test_fn fn, int timeout_s)
{
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "harness: too many tests (raise MAX_TESTS)\n");
        abort();
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    tests[n_tests].timeout_s = timeout_s > 0 ? timeout_s : SHMT_DEFAULT_TIMEOUT;
    n_tests++;
}

void shmt_register_peer(const char *name, shmt_peer_fn fn)
{
    if (n_peers == MAX_PEERS) {
        fprintf(stderr, "harness: too many peers (raise MAX_PEERS)\n");
        abort();
    }
    peers[n_peers].name = name;
    peers[n_peers].fn = fn;
    n_peers++;
}

const struct shmt_test *shmt__find_test(const char *name)
{
    for (size_t i = 0; i < n_tests; i++)
        if (strcmp(tests[i].name, name) == 0)
            return &tests[i];
    return NULL;
}

/* ---- process-wide state ---- */

struct shmt_shared *shmt__shared; /* the runner's, mapped before each test process starts */
const char *shmt__current = "harness";
bool shmt__in_peer;
char shmt__self_exe[SHMT_TEXT_MAX];
static unsigned name_counter;

const char *shmt_current(void)
{
    return shmt__current;
}

const char *shmt_self_exe(void)
{
    return shmt__self_exe;
}

/* ---- output ---- */

static void vreport(const char *fmt, va_list ap)
{
    char buf[8192];
    int n = snprintf(buf, sizeof buf, shmt__in_peer ? "[peer %s %d] " : "[%s] ", shmt__current,
                     shmt_sys_pid());
    if (n < 0)
        n = 0;
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    /* One write so that lines of concurrent processes do not interleave. */
    size_t len = strlen(buf);
    if (len + 1 < sizeof buf) {
        buf[len++] = '\n';
    }
    fflush(stdout);
    shmt_sys_write_err(buf, len);
}

void shmt_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
}

static SHMT_NORETURN void die(void)
{
    fflush(stdout);
    fflush(stderr);
    /* No exit(): a failed assertion leaves handles open on purpose; no leak report for those. */
    shmt_sys_exit(1);
}

void shmt_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shmt_log("%s:%d: %s", file, line, msg);
    die();
}

const char *shmt_errname(intmax_t err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "0";
    if (err > 4095)
        return "E?";
    const char *n = shmt_sys_errname((int)err);
    return n ? n : "E?";
}

static void fmt_val(char *buf, size_t cap, struct shmt_val v)
{
    if (v.is_signed) {
        if (v.s < -1 && v.s > -4096) /* probably an error code */
            snprintf(buf, cap, "%jd (-%s)", v.s, shmt_errname(v.s));
        else
            snprintf(buf, cap, "%jd", v.s);
    } else if (v.u > 0xffff) {
        snprintf(buf, cap, "%ju (0x%jx)", v.u, v.u);
    } else {
        snprintf(buf, cap, "%ju", v.u);
    }
}

int shmt_cmp(struct shmt_val a, struct shmt_val b)
{
    if (a.is_signed && b.is_signed)
        return a.s < b.s ? -1 : a.s > b.s;
    if (!a.is_signed && !b.is_signed)
        return a.u < b.u ? -1 : a.u > b.u;
    if (a.is_signed && a.s < 0)
        return -1;
    if (b.is_signed && b.s < 0)
        return 1;
    uintmax_t ua = a.is_signed ? (uintmax_t)a.s : a.u;
    uintmax_t ub = b.is_signed ? (uintmax_t)b.s : b.u;
    return ua < ub ? -1 : ua > ub;
}

void shmt_fail_cmp(const char *file, int line, const char *sa, const char *op, const char *sb,
                   struct shmt_val a, struct shmt_val b)
{
    char va[64], vb[64];
    fmt_val(va, sizeof va, a);
    fmt_val(vb, sizeof vb, b);
    shmt_fail(file, line, "assertion %s %s %s failed:\n    %s = %s\n    %s = %s", sa, op, sb, sa,
              va, sb, vb);
}

void shmt_fail_ok(const char *file, int line, const char *expr, intmax_t got, const char *desc,
                  const char *detail)
{
    shmt_fail(file, line, "ASSERT_OK(%s) failed: %jd (-%s): %s%s%s", expr, got,
              shmt_errname(got), desc, detail && *detail ? " -- " : "", detail ? detail : "");
}

void shmt_fail_err(const char *file, int line, const char *expr, intmax_t got, intmax_t want,
                   const char *want_expr, const char *desc, const char *detail)
{
    shmt_fail(file, line,
              "ASSERT_ERR(%s, %s) failed:\n    want %jd (%s%s)\n    got  %jd (%s%s): %s%s%s",
              expr, want_expr, want, want < 0 ? "-" : "", shmt_errname(want), got,
              got < 0 ? "-" : "", got < 0 ? shmt_errname(got) : "success", desc,
              detail && *detail ? " -- " : "", detail ? detail : "");
}

void shmt_fail_str(const char *file, int line, const char *sa, const char *sb, const char *a,
                   const char *b)
{
    shmt_fail(file, line, "ASSERT_STR_EQ(%s, %s) failed:\n    %s = %s%s%s\n    %s = %s%s%s", sa, sb,
              sa, a ? "\"" : "", a ? a : "NULL", a ? "\"" : "", sb, b ? "\"" : "",
              b ? b : "NULL", b ? "\"" : "");
}

void shmt_fail_mem(const char *file, int line, const char *sa, const char *sb, const void *a,
                   const void *b, size_t n)
{
    const uint8_t *pa = a, *pb = b;
    size_t i = 0;
    while (i < n && pa[i] == pb[i])
        i++;
    shmt_fail(file, line, "ASSERT_MEM_EQ(%s, %s, %zu) failed: first difference at byte %zu: 0x%02x != 0x%02x",
              sa, sb, n, i, pa[i], pb[i]);
}

void shmt_skip(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (shmt__shared && !shmt__in_peer)
        snprintf(shmt__shared->skip_reason, sizeof shmt__shared->skip_reason, "%s", msg);
    else
        shmt_log("skipped: %s", msg);
    fflush(stdout);
    fflush(stderr);
    shmt_sys_exit(SHMT_EXIT_SKIP);
}

/* ---- strings that live as long as the test ---- */

/* Names of objects live as long as the test: a pool that is never recycled. */
#define NAMES_N 512
static char names[NAMES_N][64];
static unsigned names_next;

const char *shmt__new_name(const char *fmt_prefix)
{
    if (names_next == NAMES_N)
        shmt_fail(__FILE__, __LINE__, "harness: out of names (raise NAMES_N)");
    char *p = names[names_next++];
    snprintf(p, sizeof names[0], "%sshmt.%d.%u", fmt_prefix, shmt_sys_pid(), name_counter++);
    return p;
}

const char *shmt_fmt(const char *fmt, ...)
{
    /*
     * Each string is its own allocation, kept reachable from `kept` until the test process
     * ends, so that it is valid as long as the header promises however many a test makes.
     */
    static char **kept;
    static size_t n_kept, cap_kept;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = malloc(len < 0 ? 1 : (size_t)len + 1);
    if (n_kept == cap_kept) {
        size_t cap = cap_kept ? cap_kept * 2 : 64;
        char **grown = realloc(kept, cap * sizeof(*kept));
        if (grown) {
            kept = grown;
            cap_kept = cap;
        }
    }
    if (!p || n_kept == cap_kept) {
        shmt_log("harness: out of memory in shmt_fmt");
        abort();
    }
    kept[n_kept++] = p;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- cleanup registry ---- */

void shmt__add_cleanup(int kind, int32_t num, const char *text)
{
    if (!shmt__shared) {
        /* A peer cannot register: its objects are named and registered by the test. */
        return;
    }
    /* Relaxed: only this process writes the registry; the runner reads it after we ended. */
    unsigned i = atomic_fetch_add_explicit(&shmt__shared->n_cleanup, 1, memory_order_relaxed);
    if (i >= SHMT_MAX_CLEANUP) {
        shmt_log("harness: cleanup registry full");
        return;
    }
    struct shmt_cleanup_item *it = &shmt__shared->items[i];
    it->kind = kind;
    it->num = num;
    snprintf(it->text, sizeof it->text, "%s", text ? text : "");
}

void shmt_cleanup_posix(const char *name)
{
    shmt__add_cleanup(SHMT_CL_POSIX, 0, name[0] == '/' ? name + 1 : name);
}

void shmt_cleanup_sysv_key(int32_t key)
{
    shmt__add_cleanup(SHMT_CL_SYSV_KEY, key, NULL);
}

void shmt_cleanup_sysv_id(int32_t id)
{
    shmt__add_cleanup(SHMT_CL_SYSV_ID, id, NULL);
}

void shmt_cleanup_path(const char *path)
{
    shmt__add_cleanup(SHMT_CL_PATH, 0, path);
}

void shmt_cleanup_addr(const char *addr)
{
    if (strncmp(addr, "posix:", 6) == 0)
        shmt_cleanup_posix(addr + 6);
    else if (strncmp(addr, "win:", 4) == 0)
        shmt__add_cleanup(SHMT_CL_WIN, 0, addr);
    else if (strncmp(addr, "file:", 5) == 0)
        shmt_cleanup_path(addr + 5);
    else if (strncmp(addr, "sysv:id=", 8) == 0)
        shmt_cleanup_sysv_id((int32_t)strtol(addr + 8, NULL, 0));
    else if (strncmp(addr, "sysv:", 5) == 0 && addr[5] != '/')
        shmt_cleanup_sysv_key((int32_t)strtoul(addr + 5, NULL, 0));
    /* memfd: has nothing to remove; sysv:PATH#N needs ftok(): register its key instead. */
}

const char *shmt_posix_name(void)
{
    const char *n = shmt__new_name("");
    shmt_cleanup_posix(n);
    return n;
}

/* ---- the line protocol between a test and its peers ---- */

static int write_line(struct shmt_link *l, const char *line)
{
    size_t len = strlen(line);
    char buf[1024];
    if (len + 1 > sizeof buf)
        return -EMSGSIZE;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    return shmt_sys_link_write(l, buf, len);
}

/* Read one line (without '\n') within timeout_ms: 0, -ETIMEDOUT, -EPIPE (closed), -EMSGSIZE. */
static int read_line(struct shmt_link *l, char *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    size_t n = 0;
    for (;;) {
        int64_t left = deadline - shmt_now_ms();
        if (left < 0)
            left = 0;
        char c;
        int r = shmt_sys_link_read(l, &c, (int)left);
        if (r < 0)
            return r;
        if (c == '\n') {
            buf[n] = '\0';
            return 0;
        }
        if (n + 1 >= cap)
            return -EMSGSIZE;
        buf[n++] = c;
    }
}

static int expect_line(struct shmt_link *l, const char *want, int timeout_ms, const char *who)
{
    char buf[1024];
    int r = read_line(l, buf, sizeof buf, timeout_ms);
    if (r < 0) {
        shmt_log("waiting for \"%s\" from %s: %s", want, who,
                 r == -ETIMEDOUT ? "timed out" : r == -EPIPE ? "it closed the pipe" : strerror(-r));
        return r;
    }
    if (strcmp(buf, want) != 0) {
        shmt_log("waiting for \"%s\" from %s: got \"%s\"", want, who, buf);
        return -EPROTO;
    }
    return 0;
}

int peer_send(pid_t pid, const char *line)
{
    struct shmt_link *l = pid > 0 ? shmt_sys_link(pid) : NULL;
    if (!l)
        return -ESRCH;
    return write_line(l, line);
}

int peer_expect(pid_t pid, const char *line, int timeout_ms)
{
    struct shmt_link *l = pid > 0 ? shmt_sys_link(pid) : NULL;
    if (!l)
        return -ESRCH;
    return expect_line(l, line, timeout_ms, shmt_fmt("peer %d", (int)pid));
}

int peer_recv(pid_t pid, char *buf, size_t cap, int timeout_ms)
{
    struct shmt_link *l = pid > 0 ? shmt_sys_link(pid) : NULL;
    if (!l)
        return -ESRCH;
    return read_line(l, buf, cap, timeout_ms);
}

int parent_send(const char *line)
{
    struct shmt_link *l = shmt_sys_link(0);
    if (!l)
        return -ENOTCONN;
    return write_line(l, line);
}

int parent_expect(const char *line, int timeout_ms)
{
    struct shmt_link *l = shmt_sys_link(0);
    if (!l)
        return -ENOTCONN;
    return expect_line(l, line, timeout_ms, "the test");
}

int parent_recv(char *buf, size_t cap, int timeout_ms)
{
    struct shmt_link *l = shmt_sys_link(0);
    if (!l)
        return -ENOTCONN;
    return read_line(l, buf, cap, timeout_ms);
}

/* ---- test patterns ---- */

void shmt_fill(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = shmt_pattern(i, seed);
}

ptrdiff_t shmt_check(const void *p, size_t n, unsigned seed)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != shmt_pattern(i, seed))
            return (ptrdiff_t)i;
    return -1;
}

/* ---- the runner ---- */

enum { R_PASS, R_FAIL, R_SKIP };

void shmt__run_test_here(const struct shmt_test *t)
{
    shmt__current = t->name;
    t->fn();
    fflush(stdout);
    fflush(stderr);
    exit(0); /* exit(), not _exit(): let the leak checker of sanitizer builds run */
}

static int run_one(const struct shmt_test *t)
{
    shmt__shared->skip_reason[0] = '\0';
    int64_t t0 = shmt_now_ms();
    fflush(stdout);
    fflush(stderr);
    /* SHMT_NOFORK=1: run in this process, for a debugger (no timeout; cleanup still runs). */
    if (getenv("SHMT_NOFORK")) {
        shmt__current = t->name;
        t->fn();
        shmt_sys_cleanup(shmt_sys_pid());
        printf("PASS %s\n", t->name);
        return R_PASS;
    }
    struct shmt_outcome o;
    memset(&o, 0, sizeof o);
    shmt_sys_run_test(t, &o);
    int64_t ms = shmt_now_ms() - t0;

    int result = R_FAIL;
    switch (o.end) {
    case SHMT_END_NOSTART:
        printf("FAIL %s: %s\n", t->name, o.why);
        break;
    case SHMT_END_TIMEOUT:
        printf("FAIL %s: timed out after %d s (%s killed)\n", t->name, t->timeout_s,
               shmt_sys_group_word);
        break;
    case SHMT_END_SIGNAL:
        printf("FAIL %s: killed by signal %d (SIG%s)\n", t->name, o.code,
               shmt_sys_signame(o.code));
        break;
    case SHMT_END_EXCEPTION:
        printf("FAIL %s: ended by exception 0x%08x\n", t->name, (unsigned)o.code);
        break;
    case SHMT_END_EXIT:
        if (o.code == 0) {
            printf("PASS %s (%lld ms)\n", t->name, (long long)ms);
            result = R_PASS;
        } else if (o.code == SHMT_EXIT_SKIP) {
            printf("SKIP %s: %s\n", t->name,
                   shmt__shared->skip_reason[0] ? shmt__shared->skip_reason
                                                : "(no reason given)");
            result = R_SKIP;
        } else {
            printf("FAIL %s: exit code %d\n", t->name, o.code);
        }
        break;
    }
    fflush(stdout);
    return result;
}

static int run_peer(int argc, char **argv)
{
    const char *name = argv[2];
    shmt__in_peer = true;
    shmt__current = name;
    shmt_sys_peer_init();
    for (size_t i = 0; i < n_peers; i++) {
        if (strcmp(peers[i].name, name) == 0) {
            int rc = peers[i].fn(argc - 3, argv + 3);
            fflush(stdout);
            fflush(stderr);
            return rc;
        }
    }
    fprintf(stderr, "harness: no peer named %s\n", name);
    return 127;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct shmt_test *)a)->name, ((const struct shmt_test *)b)->name);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s               run every test\n"
            "       %s --list        list the tests\n"
            "       %s --run PATTERN run the tests matching PATTERN (also: %s PATTERN)\n"
            "environment: SHMT_NOFORK=1 runs a test in the runner itself (for a debugger)\n",
            argv0, argv0, argv0, argv0);
}

int main(int argc, char **argv)
{
    int rc;
    if (shmt_sys_init(argc, argv, &rc))
        return rc;

    if (argc >= 3 && strcmp(argv[1], "--peer") == 0)
        return run_peer(argc, argv);

    qsort(tests, n_tests, sizeof tests[0], by_name);
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n_tests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    const char *pattern = NULL;
    if (argc >= 3 && strcmp(argv[1], "--run") == 0)
        pattern = argv[2];
    else if (argc == 2 && argv[1][0] != '-')
        pattern = argv[1];
    else if (argc != 1) {
        usage(argv[0]);
        return 2;
    }

    if (shmt_sys_runner_init() != 0)
        return 1;

    int passed = 0, failed = 0, skipped = 0, matched = 0;
    for (size_t i = 0; i < n_tests; i++) {
        if (pattern && !shmt_sys_match(pattern, tests[i].name))
            continue;
        matched++;
        switch (run_one(&tests[i])) {
        case R_PASS:
            passed++;
            break;
        case R_SKIP:
            skipped++;
            break;
        default:
            failed++;
        }
    }
    shmt_sys_runner_fini();
    if (matched == 0) {
        fprintf(stderr, "no test matches \"%s\"\n", pattern ? pattern : "");
        printf("0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    fflush(stdout);
    if (failed)
        return 1;
    /* A single test that skipped tells ctest so (SKIP_RETURN_CODE 77). */
    if (matched == 1 && skipped == 1)
        return SHMT_EXIT_SKIP;
    return 0;
}

/* ---- a toggling peer ---- */

struct shmt_toggler {
    void *word;
    size_t width;
    uint64_t valid;
    const uint64_t *hostile;
    size_t n;
    atomic_bool stop;
    struct shmt_thread *thread;
};

static void toggler_store(const struct shmt_toggler *t, uint64_t v)
{
    /* Relaxed: the toggler promises nothing, as a hostile peer would not. */
    if (t->width == 8)
        atomic_store_explicit((_Atomic uint64_t *)t->word, v, memory_order_relaxed);
    else
        atomic_store_explicit((_Atomic uint32_t *)t->word, (uint32_t)v, memory_order_relaxed);
}

static void toggler_loop(void *arg)
{
    struct shmt_toggler *t = arg;
    /* Relaxed: `stop` only ends the loop; the join orders everything after it. */
    for (size_t k = 0; !atomic_load_explicit(&t->stop, memory_order_relaxed); k++) {
        toggler_store(t, t->hostile[k % t->n]);
        toggler_store(t, t->valid);
    }
}

struct shmt_toggler *shmt_toggler_start(void *word, size_t width, const uint64_t *hostile,
                                        size_t n)
{
    struct shmt_toggler *t = calloc(1, sizeof *t);
    ASSERT_NOT_NULL(t);
    ASSERT_TRUE((width == 4 || width == 8) && n > 0);
    t->word = word;
    t->width = width;
    t->hostile = hostile;
    t->n = n;
    t->valid = width == 8 ? atomic_load((_Atomic uint64_t *)word)
                          : atomic_load((_Atomic uint32_t *)word);
    atomic_init(&t->stop, false);
    t->thread = shmt_sys_thread_start(toggler_loop, t);
    ASSERT_NOT_NULL(t->thread);
    return t;
}

void shmt_toggler_stop(struct shmt_toggler *t)
{
    atomic_store_explicit(&t->stop, true, memory_order_relaxed);
    shmt_sys_thread_join(t->thread);
    toggler_store(t, t->valid);
    free(t);
}
