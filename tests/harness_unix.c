/*
 * harness_unix.c - the harness on Linux: each test in a forked child that leads its own
 * process group (the runner is the subreaper of what it leaves), peers by fork + exec of this
 * binary with a pipe pair, the shared state in a MAP_SHARED mapping, cleanup of POSIX and
 * System V objects and files. See harness_sys.h.
 */
#include "harness_sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const shmt_sys_group_word = "process group";

int shmt_sys_pid(void)
{
    return (int)getpid();
}

void shmt_sys_write_err(const char *buf, size_t len)
{
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}

void shmt_sys_exit(int code)
{
    _exit(code);
}

const char *shmt_sys_errname(int err)
{
    return strerrorname_np(err);
}

const char *shmt_sys_signame(int sig)
{
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

bool shmt_sys_match(const char *pattern, const char *name)
{
    return fnmatch(pattern, name, 0) == 0;
}

/* ---- names ---- */

const char *shmt_addr(void)
{
    const char *a = shmt__new_name("posix:/");
    shmt_cleanup_posix(a + strlen("posix:/"));
    return a;
}

/* Named segments persist here until they are unlinked. */
void shmt_hold(const char *addr)
{
    (void)addr;
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
    const char *d = shmt__new_name("/tmp/");
    shmt_cleanup_path(d);
    if (mkdir(d, 0755) != 0)
        shmt_fail(__FILE__, __LINE__, "mkdir %s: %s", d, strerror(errno));
    /* mkdir applies the umask; the permission tests need others to be able to enter. */
    chmod(d, 0755);
    return d;
}

/* ---- cleanup ---- */

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
void shmt_sys_cleanup(int pid)
{
    struct shmt_shared *shared = shmt__shared;
    unsigned n = atomic_load_explicit(&shared->n_cleanup, memory_order_relaxed);
    if (n > SHMT_MAX_CLEANUP)
        n = SHMT_MAX_CLEANUP;
    for (unsigned i = n; i-- > 0;) {
        struct shmt_cleanup_item *it = &shared->items[i];
        switch (it->kind) {
        case SHMT_CL_POSIX: {
            char nm[SHMT_TEXT_MAX + 2];
            snprintf(nm, sizeof nm, "/%s", it->text);
            shm_unlink(nm);
            break;
        }
        case SHMT_CL_SYSV_KEY: {
            int id = shmget(it->num, 0, 0);
            if (id >= 0)
                remove_sysv_id(id);
            break;
        }
        case SHMT_CL_SYSV_ID:
            remove_sysv_id(it->num);
            break;
        case SHMT_CL_PATH: {
            struct stat st;
            if (lstat(it->text, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                    nftw(it->text, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
                else
                    unlink(it->text);
            }
            break;
        }
        case SHMT_CL_WIN: /* no such objects here */
            break;
        }
    }

    /* Channel descriptors (/dev/shm/.shml-fd-PID-ID) of processes that are gone: the test
       process and its peers, killed or failed before they closed (what gc removes too). */
    DIR *fifos = opendir("/dev/shm");
    if (fifos) {
        struct dirent *e;
        while ((e = readdir(fifos)) != NULL) {
            int owner;
            if (sscanf(e->d_name, ".shml-fd-%d-", &owner) == 1 && owner > 0 &&
                kill(owner, 0) != 0 && errno == ESRCH) {
                char nm[300];
                snprintf(nm, sizeof nm, "/dev/shm/%s", e->d_name);
                unlink(nm);
            }
        }
        closedir(fifos);
    }

    /* Sweep: anything named with the test process's prefix, registered or not. */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmt.%d.", pid);
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

/* The pipe ends between a test and a peer: rd the end to read, wr the end to write. */
struct shmt_link {
    int rd;
    int wr;
};

#define MAX_PEER_PROCS 64
struct peer_proc {
    pid_t pid;
    struct shmt_link link; /* rd: peer -> test; wr: test -> peer */
};
static struct peer_proc procs[MAX_PEER_PROCS];
/* In a peer: the pipe ends to the test. */
static struct shmt_link parent_link = {-1, -1};

static struct peer_proc *find_proc(pid_t pid)
{
    for (int i = 0; i < MAX_PEER_PROCS; i++)
        if (procs[i].pid == pid && pid > 0)
            return &procs[i];
    return NULL;
}

struct shmt_link *shmt_sys_link(pid_t pid)
{
    if (pid == 0)
        return parent_link.rd >= 0 && parent_link.wr >= 0 ? &parent_link : NULL;
    struct peer_proc *p = find_proc(pid);
    return p ? &p->link : NULL;
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
        argv[0] = shmt__self_exe;
        argv[1] = "--peer";
        for (size_t i = 0; i < n; i++)
            argv[2 + i] = args[i];
        execv(shmt__self_exe, (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", shmt__self_exe, strerror(errno));
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    slot->pid = pid;
    slot->link.wr = down[1];
    slot->link.rd = up[0];
    return pid;
}

static void forget_proc(pid_t pid)
{
    struct peer_proc *p = find_proc(pid);
    if (p) {
        close(p->link.wr);
        close(p->link.rd);
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

int shmt_sys_link_write(struct shmt_link *l, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(l->wr, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)w;
    }
    return 0;
}

int shmt_sys_link_read(struct shmt_link *l, char *c, int timeout_ms)
{
    int64_t deadline = shmt_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - shmt_now_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = {l->rd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t got = read(l->rd, c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EPIPE;
        return 0;
    }
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

/* ---- the runner ---- */

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

void shmt_sys_run_test(const struct shmt_test *t, struct shmt_outcome *o)
{
    pid_t pid = fork();
    if (pid < 0) {
        o->end = SHMT_END_NOSTART;
        snprintf(o->why, sizeof o->why, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGPIPE, SIG_IGN);
        shmt__run_test_here(t);
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
    shmt_sys_cleanup(pid);

    if (timed_out) {
        o->end = SHMT_END_TIMEOUT;
    } else if (WIFSIGNALED(st)) {
        o->end = SHMT_END_SIGNAL;
        o->code = WTERMSIG(st);
    } else {
        o->end = SHMT_END_EXIT;
        o->code = WEXITSTATUS(st);
    }
}

static void peer_fd_cloexec(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void shmt_sys_peer_init(void)
{
    const char *fds = getenv("SHMT_PEER_FDS");
    if (fds) {
        if (sscanf(fds, "%d,%d", &parent_link.rd, &parent_link.wr) != 2)
            parent_link.rd = parent_link.wr = -1;
        unsetenv("SHMT_PEER_FDS");
        peer_fd_cloexec(parent_link.rd);
        peer_fd_cloexec(parent_link.wr);
    }
    signal(SIGPIPE, SIG_IGN);
}

int shmt_sys_init(int argc, char **argv, int *rc)
{
    (void)argc;
    (void)rc;
    ssize_t n = readlink("/proc/self/exe", shmt__self_exe, sizeof shmt__self_exe - 1);
    if (n <= 0)
        snprintf(shmt__self_exe, sizeof shmt__self_exe, "%s", argv[0]);
    else
        shmt__self_exe[n] = '\0';
    return 0;
}

int shmt_sys_runner_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Orphaned peers of a test come back to us, so we can reap them after killing the group. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    void *m = mmap(NULL, sizeof *shmt__shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED) {
        perror("harness: mmap");
        return -1;
    }
    shmt__shared = m;
    return 0;
}

void shmt_sys_runner_fini(void)
{
    munmap(shmt__shared, sizeof *shmt__shared);
}

/* ---- threads ---- */

struct shmt_thread {
    pthread_t thread;
    void (*fn)(void *);
    void *arg;
};

static void *thread_main(void *arg)
{
    struct shmt_thread *t = arg;
    t->fn(t->arg);
    return NULL;
}

struct shmt_thread *shmt_sys_thread_start(void (*fn)(void *), void *arg)
{
    struct shmt_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void shmt_sys_thread_join(struct shmt_thread *t)
{
    pthread_join(t->thread, NULL);
    free(t);
}
