/*
 * harness.c - main() of every test binary: registry, forked runner with timeouts, peers,
 * cleanup of what tests made. See harness.h for the contract.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- registry ---- */

#define MAX_TESTS 512
#define MAX_PEERS 256

struct test_entry {
    const char *name;
    shmt_test_fn fn;
    int timeout_s;
};
struct peer_entry {
    const char *name;
    shmt_peer_fn fn;
};

static struct test_entry tests[MAX_TESTS];
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

/* ---- state shared between the runner and a test child (survives the child's death) ---- */

enum cleanup_kind { CL_POSIX = 1, CL_SYSV_KEY, CL_SYSV_ID, CL_PATH };

#define MAX_CLEANUP 256
struct cleanup_item {
    int kind;
    int32_t num;
    char text[PATH_MAX];
};
struct shared_state {
    atomic_uint n_cleanup;
    char skip_reason[512];
    struct cleanup_item items[MAX_CLEANUP];
};

static struct shared_state *shared;  /* mapped MAP_SHARED before each fork */
static const char *current_name = "harness";
static bool in_peer;
static char self_exe[PATH_MAX];
static unsigned name_counter;

const char *shmt_current(void)
{
    return current_name;
}

const char *shmt_self_exe(void)
{
    return self_exe;
}

/* ---- output ---- */

static void vreport(const char *fmt, va_list ap)
{
    char buf[8192];
    int n = snprintf(buf, sizeof buf, in_peer ? "[peer %s %d] " : "[%s] ", current_name,
                     (int)getpid());
    if (n < 0)
        n = 0;
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    /* One write so that lines of concurrent processes do not interleave. */
    size_t len = strlen(buf);
    if (len + 1 < sizeof buf) {
        buf[len++] = '\n';
    }
    fflush(stdout);
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
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
    /* _exit: a failed assertion leaves handles open on purpose; no leak report for those. */
    _exit(1);
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
    const char *n = strerrorname_np((int)err);
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
    if (shared && !in_peer)
        snprintf(shared->skip_reason, sizeof shared->skip_reason, "%s", msg);
    else
        shmt_log("skipped: %s", msg);
    fflush(stdout);
    fflush(stderr);
    _exit(SHMT_EXIT_SKIP);
}

/* ---- strings that live as long as the test ---- */

/* Names of objects live as long as the test: a pool that is never recycled. */
#define NAMES_N 512
static char names[NAMES_N][64];
static unsigned names_next;

static const char *new_name(const char *fmt_prefix)
{
    if (names_next == NAMES_N)
        shmt_fail(__FILE__, __LINE__, "harness: out of names (raise NAMES_N)");
    char *p = names[names_next++];
    snprintf(p, sizeof names[0], "%sshmt.%d.%u", fmt_prefix, (int)getpid(), name_counter++);
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

static void add_cleanup(int kind, int32_t num, const char *text)
{
    if (!shared) {
        /* A peer cannot register: its objects are named and registered by the test. */
        return;
    }
    unsigned i = atomic_fetch_add_explicit(&shared->n_cleanup, 1, memory_order_relaxed);
    if (i >= MAX_CLEANUP) {
        shmt_log("harness: cleanup registry full");
        return;
    }
    struct cleanup_item *it = &shared->items[i];
    it->kind = kind;
    it->num = num;
    snprintf(it->text, sizeof it->text, "%s", text ? text : "");
}

void shmt_cleanup_posix(const char *name)
{
    add_cleanup(CL_POSIX, 0, name[0] == '/' ? name + 1 : name);
}

void shmt_cleanup_sysv_key(int32_t key)
{
    add_cleanup(CL_SYSV_KEY, key, NULL);
}

void shmt_cleanup_sysv_id(int32_t id)
{
    add_cleanup(CL_SYSV_ID, id, NULL);
}

void shmt_cleanup_path(const char *path)
{
    add_cleanup(CL_PATH, 0, path);
}

const char *shmt_posix_name(void)
{
    const char *n = new_name("");
    shmt_cleanup_posix(n);
    return n;
}

/* Keys of a test process: 0x40000000 | (pid & 0x3fffff) << 8 | n, so they can also be swept. */
#define KEY_MARK 0x40000000u
static int32_t key_of(pid_t pid, unsigned n)
{
    return (int32_t)(KEY_MARK | (((uint32_t)pid & 0x3fffffu) << 8) | (n & 0xffu));
}

int32_t shmt_sysv_key(void)
{
    static unsigned n;
    for (unsigned tries = 0; tries < 256; tries++) {
        int32_t key = key_of(getpid(), n++);
        if (shmget(key, 0, 0) == -1 && errno == ENOENT) {
            shmt_cleanup_sysv_key(key);
            return key;
        }
    }
    shmt_fail(__FILE__, __LINE__, "no free System V key left for this test");
}

const char *shmt_tmpdir(void)
{
    const char *d = new_name("/tmp/");
    shmt_cleanup_path(d);
    if (mkdir(d, 0755) != 0)
        shmt_fail(__FILE__, __LINE__, "mkdir %s: %s", d, strerror(errno));
    /* mkdir applies the umask; the permission tests need others to be able to enter. */
    chmod(d, 0755);
    return d;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void remove_sysv_id(int id)
{
    if (shmctl(id, IPC_RMID, NULL) != 0 && errno != EINVAL && errno != EIDRM)
        fprintf(stderr, "harness: cleanup: shmctl(%d, IPC_RMID): %s\n", id, strerror(errno));
}

/* Remove what the test process `pid` registered or named with its prefix. */
static void run_cleanup(pid_t pid)
{
    unsigned n = atomic_load_explicit(&shared->n_cleanup, memory_order_relaxed);
    if (n > MAX_CLEANUP)
        n = MAX_CLEANUP;
    for (unsigned i = n; i-- > 0;) {
        struct cleanup_item *it = &shared->items[i];
        switch (it->kind) {
        case CL_POSIX: {
            char nm[PATH_MAX + 2];
            snprintf(nm, sizeof nm, "/%s", it->text);
            shm_unlink(nm);
            break;
        }
        case CL_SYSV_KEY: {
            int id = shmget(it->num, 0, 0);
            if (id >= 0)
                remove_sysv_id(id);
            break;
        }
        case CL_SYSV_ID:
            remove_sysv_id(it->num);
            break;
        case CL_PATH: {
            struct stat st;
            if (lstat(it->text, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                    nftw(it->text, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
                else
                    unlink(it->text);
            }
            break;
        }
        }
    }

    /* Sweep: anything named with the test process's prefix, registered or not. */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmt.%d.", (int)pid);
    DIR *d = opendir("/dev/shm");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                char nm[300];
                snprintf(nm, sizeof nm, "/%s", e->d_name);
                shm_unlink(nm);
            }
        }
        closedir(d);
    }
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    if (f) {
        char line[512];
        if (fgets(line, sizeof line, f)) { /* header line */
            while (fgets(line, sizeof line, f)) {
                long long key;
                int id;
                if (sscanf(line, "%lld %d", &key, &id) != 2)
                    continue;
                uint32_t k = (uint32_t)key;
                if ((k & 0xc0000000u) == KEY_MARK &&
                    ((k >> 8) & 0x3fffffu) == ((uint32_t)pid & 0x3fffffu))
                    remove_sysv_id(id);
            }
        }
        fclose(f);
    }
    memset(shared->items, 0, sizeof(shared->items[0]) * n);
    atomic_store_explicit(&shared->n_cleanup, 0, memory_order_relaxed);
}

/* ---- time ---- */

int64_t shmt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void shmt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ---- processes ---- */

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/*
 * Wait for `pid` up to timeout_ms, polling with short sleeps (bounded; no busy loop).
 * Returns the raw status in *st and 0, or -ETIMEDOUT.
 */
static int wait_bounded(pid_t pid, int timeout_ms, int *st)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    int nap = 1;
    for (;;) {
        pid_t r = waitpid(pid, st, WNOHANG);
        if (r == pid)
            return 0;
        if (r == -1 && errno != EINTR)
            return -errno;
        if (shmt_now_ms() >= deadline)
            return -ETIMEDOUT;
        shmt_sleep_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
}

#define MAX_PEER_PROCS 64
struct peer_proc {
    pid_t pid;
    int to_fd;   /* write end: test -> peer */
    int from_fd; /* read end: peer -> test */
};
static struct peer_proc procs[MAX_PEER_PROCS];
/* In a peer: the pipe ends to the test. */
static int parent_in_fd = -1, parent_out_fd = -1;

static struct peer_proc *find_proc(pid_t pid)
{
    for (int i = 0; i < MAX_PEER_PROCS; i++)
        if (procs[i].pid == pid && pid > 0)
            return &procs[i];
    return NULL;
}

pid_t shmt_spawn_peer(const char *const *args)
{
    struct peer_proc *slot = find_proc(0);
    for (int i = 0; i < MAX_PEER_PROCS && !slot; i++)
        if (procs[i].pid == 0)
            slot = &procs[i];
    if (!slot)
        shmt_fail(__FILE__, __LINE__, "too many peers at once");
    size_t n = 0;
    while (args[n])
        n++;
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
        shmt_fail(__FILE__, __LINE__, "pipe2: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        shmt_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only the peer's own ends cross exec. */
        fcntl(down[0], F_SETFD, 0);
        fcntl(up[1], F_SETFD, 0);
        char fds[64];
        snprintf(fds, sizeof fds, "%d,%d", down[0], up[1]);
        setenv("SHMT_PEER_FDS", fds, 1);
        const char **argv = calloc(n + 3, sizeof *argv);
        if (!argv)
            _exit(127);
        argv[0] = self_exe;
        argv[1] = "--peer";
        for (size_t i = 0; i < n; i++)
            argv[2 + i] = args[i];
        execv(self_exe, (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", self_exe, strerror(errno));
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    slot->pid = pid;
    slot->to_fd = down[1];
    slot->from_fd = up[0];
    return pid;
}

static void forget_proc(pid_t pid)
{
    struct peer_proc *p = find_proc(pid);
    if (p) {
        close(p->to_fd);
        close(p->from_fd);
        p->pid = 0;
    }
}

int wait_peer(pid_t pid, int timeout_ms)
{
    int st = 0;
    int r = wait_bounded(pid, timeout_ms, &st);
    if (r == -ETIMEDOUT) {
        shmt_log("peer %d did not end within %d ms: killing it", (int)pid, timeout_ms);
        kill(pid, SIGKILL);
        wait_bounded(pid, 5000, &st);
        forget_proc(pid);
        return -1;
    }
    forget_proc(pid);
    if (r < 0)
        return -1;
    return status_code(st);
}

int kill_peer(pid_t pid, int sig)
{
    kill(pid, sig);
    return wait_peer(pid, 10000);
}

static int write_line(int fd, const char *line)
{
    size_t len = strlen(line);
    char buf[1024];
    if (len + 1 > sizeof buf)
        return -EMSGSIZE;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)w;
    }
    return 0;
}

/* Read one line (without '\n') within timeout_ms: 0, -ETIMEDOUT, -EPIPE (closed), -EMSGSIZE. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    size_t n = 0;
    for (;;) {
        int64_t left = deadline - shmt_now_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EPIPE;
        if (c == '\n') {
            buf[n] = '\0';
            return 0;
        }
        if (n + 1 >= cap)
            return -EMSGSIZE;
        buf[n++] = c;
    }
}

static int expect_line(int fd, const char *want, int timeout_ms, const char *who)
{
    char buf[1024];
    int r = read_line(fd, buf, sizeof buf, timeout_ms);
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
    struct peer_proc *p = find_proc(pid);
    if (!p)
        return -ESRCH;
    return write_line(p->to_fd, line);
}

int peer_expect(pid_t pid, const char *line, int timeout_ms)
{
    struct peer_proc *p = find_proc(pid);
    if (!p)
        return -ESRCH;
    return expect_line(p->from_fd, line, timeout_ms, shmt_fmt("peer %d", (int)pid));
}

int peer_recv(pid_t pid, char *buf, size_t cap, int timeout_ms)
{
    struct peer_proc *p = find_proc(pid);
    if (!p)
        return -ESRCH;
    return read_line(p->from_fd, buf, cap, timeout_ms);
}

int parent_send(const char *line)
{
    if (parent_out_fd < 0)
        return -ENOTCONN;
    return write_line(parent_out_fd, line);
}

int parent_expect(const char *line, int timeout_ms)
{
    if (parent_in_fd < 0)
        return -ENOTCONN;
    return expect_line(parent_in_fd, line, timeout_ms, "the test");
}

int parent_recv(char *buf, size_t cap, int timeout_ms)
{
    if (parent_in_fd < 0)
        return -ENOTCONN;
    return read_line(parent_in_fd, buf, cap, timeout_ms);
}

int shmt_run(const char *const *argv, char **out, size_t *out_len, int timeout_ms)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(pfd[1], STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t deadline = shmt_now_ms() + timeout_ms;
    bool timed_out = false;
    for (;;) {
        int64_t left = deadline - shmt_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            timed_out = true;
            break;
        }
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t got = read(pfd[0], buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(pfd[0]);
    int st = 0;
    if (timed_out) {
        shmt_log("%s did not finish within %d ms: killing it", argv[0], timeout_ms);
        kill(pid, SIGKILL);
    }
    int64_t left = deadline - shmt_now_ms();
    if (wait_bounded(pid, timed_out ? 5000 : (int)(left > 1000 ? left : 1000), &st) != 0) {
        kill(pid, SIGKILL);
        wait_bounded(pid, 5000, &st);
        timed_out = true;
    }
    if (buf)
        buf[len] = '\0';
    if (out)
        *out = buf;
    else
        free(buf);
    if (out_len)
        *out_len = len;
    return timed_out ? -1 : status_code(st);
}

uint64_t shmt_proc_start(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    /* After ")" come fields 3.. ; starttime is field 22. */
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    return strtoull(p + 1, NULL, 10);
}

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

static const char *signame(int sig)
{
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

/* Reap every leftover process of the test (we are their subreaper), within a bound. */
static void reap_group(pid_t pgid)
{
    kill(-pgid, SIGKILL);
    int64_t deadline = shmt_now_ms() + 5000;
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r > 0)
            continue;
        if (r == -1 && errno == ECHILD)
            return;
        if (shmt_now_ms() >= deadline) {
            fprintf(stderr, "harness: processes of the test did not go away\n");
            return;
        }
        kill(-pgid, SIGKILL);
        shmt_sleep_ms(2);
    }
}

static int run_one(const struct test_entry *t)
{
    shared->skip_reason[0] = '\0';
    int64_t t0 = shmt_now_ms();
    fflush(stdout);
    fflush(stderr);
    /* SHMT_NOFORK=1: run in this process, for a debugger (no timeout; cleanup still runs). */
    pid_t pid = getenv("SHMT_NOFORK") ? 0 : fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", t->name, strerror(errno));
        return R_FAIL;
    }
    if (pid == 0 && getenv("SHMT_NOFORK")) {
        current_name = t->name;
        t->fn();
        run_cleanup(getpid());
        printf("PASS %s\n", t->name);
        return R_PASS;
    }
    if (pid == 0) {
        setpgid(0, 0);
        current_name = t->name;
        signal(SIGPIPE, SIG_IGN);
        t->fn();
        fflush(stdout);
        fflush(stderr);
        exit(0); /* exit(), not _exit(): let the leak checker of sanitizer builds run */
    }
    setpgid(pid, pid);
    int st = 0;
    int r = wait_bounded(pid, t->timeout_s * 1000, &st);
    bool timed_out = r == -ETIMEDOUT;
    if (timed_out) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        wait_bounded(pid, 10000, &st);
    }
    reap_group(pid);
    run_cleanup(pid);
    int64_t ms = shmt_now_ms() - t0;

    if (timed_out) {
        printf("FAIL %s: timed out after %d s (process group killed)\n", t->name, t->timeout_s);
        return R_FAIL;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("PASS %s (%lld ms)\n", t->name, (long long)ms);
        return R_PASS;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == SHMT_EXIT_SKIP) {
        printf("SKIP %s: %s\n", t->name,
               shared->skip_reason[0] ? shared->skip_reason : "(no reason given)");
        return R_SKIP;
    }
    if (WIFSIGNALED(st))
        printf("FAIL %s: killed by signal %d (SIG%s)\n", t->name, WTERMSIG(st),
               signame(WTERMSIG(st)));
    else
        printf("FAIL %s: exit code %d\n", t->name, WEXITSTATUS(st));
    return R_FAIL;
}

static int run_peer(int argc, char **argv)
{
    const char *name = argv[2];
    in_peer = true;
    current_name = name;
    const char *fds = getenv("SHMT_PEER_FDS");
    if (fds) {
        if (sscanf(fds, "%d,%d", &parent_in_fd, &parent_out_fd) != 2)
            parent_in_fd = parent_out_fd = -1;
        unsetenv("SHMT_PEER_FDS");
        if (parent_in_fd >= 0)
            fcntl(parent_in_fd, F_SETFD, FD_CLOEXEC);
        if (parent_out_fd >= 0)
            fcntl(parent_out_fd, F_SETFD, FD_CLOEXEC);
    }
    signal(SIGPIPE, SIG_IGN);
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
    return strcmp(((const struct test_entry *)a)->name, ((const struct test_entry *)b)->name);
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
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
    else
        self_exe[n] = '\0';

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

    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Orphaned peers of a test come back to us, so we can reap them after killing the group. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("harness: mmap");
        return 1;
    }

    int passed = 0, failed = 0, skipped = 0, matched = 0;
    for (size_t i = 0; i < n_tests; i++) {
        if (pattern && fnmatch(pattern, tests[i].name, 0) != 0)
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
    munmap(shared, sizeof *shared);
    if (matched == 0) {
        fprintf(stderr, "no test matches \"%s\"\n", pattern ? pattern : "");
        printf("0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
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
    pthread_t thread;
};

static void toggler_store(const struct shmt_toggler *t, uint64_t v)
{
    /* Relaxed: the toggler promises nothing, as a hostile peer would not. */
    if (t->width == 8)
        atomic_store_explicit((_Atomic uint64_t *)t->word, v, memory_order_relaxed);
    else
        atomic_store_explicit((_Atomic uint32_t *)t->word, (uint32_t)v, memory_order_relaxed);
}

static void *toggler_loop(void *arg)
{
    struct shmt_toggler *t = arg;
    for (size_t k = 0; !atomic_load_explicit(&t->stop, memory_order_relaxed); k++) {
        toggler_store(t, t->hostile[k % t->n]);
        toggler_store(t, t->valid);
    }
    return NULL;
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
    ASSERT_EQ(pthread_create(&t->thread, NULL, toggler_loop, t), 0);
    return t;
}

void shmt_toggler_stop(struct shmt_toggler *t)
{
    atomic_store_explicit(&t->stop, true, memory_order_relaxed);
    ASSERT_EQ(pthread_join(t->thread, NULL), 0);
    toggler_store(t, t->valid);
    free(t);
}
