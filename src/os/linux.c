/*
 * linux.c - the platform mechanisms of os.h on Linux.
 */
#include "os/os.h"
#include "shmlink/segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *shml__os_strerror(int err)
{
    /* strerror() may format unknown codes into a shared buffer; strerrordesc_np never does. */
    const char *s = strerrordesc_np(err);
    return s ? s : "unknown error";
}

size_t shml__os_page_size(void)
{
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? (size_t)v : 4096;
}

/* Read one "Key:   value kB" line of /proc/meminfo; returns the number, or -errno. */
static long meminfo_value(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return -errno;
    char line[256];
    size_t klen = strlen(key);
    long v = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

size_t shml__os_hugepage_size(void)
{
    long kb = meminfo_value("Hugepagesize");
    return kb > 0 ? (size_t)kb * 1024 : 0;
}

long shml__os_hugepages_free(void)
{
    return meminfo_value("HugePages_Free");
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t shml__os_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t shml__os_real_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

void shml__os_sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int shml__os_cwd(char *buf, size_t cap)
{
    return getcwd(buf, cap) ? 0 : -errno;
}

bool shml__os_path_absolute(const char *path)
{
    return path[0] == '/';
}

/*
 * getpid() is a system call in glibc >= 2.25, too slow for a lock's fast path: the pid is
 * cached, and forgotten in the child of every fork() (pthread_atfork).
 */
static _Atomic int32_t cached_pid;
static _Atomic uint32_t cached_pid_ns;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
    atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
    /* A child forked after unshare(CLONE_NEWPID) lives in another namespace than its parent. */
    atomic_store_explicit(&cached_pid_ns, 0, memory_order_relaxed);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

int32_t shml__os_pid(void)
{
    /* Relaxed: every thread of a process computes the same value. */
    int32_t pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (pid == 0) {
        pthread_once(&atfork_once, register_atfork);
        pid = (int32_t)getpid();
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return pid;
}

uint32_t shml__os_pid_ns(void)
{
    /* Relaxed: every thread of a process computes the same value. */
    uint32_t ns = atomic_load_explicit(&cached_pid_ns, memory_order_relaxed);
    if (ns == 0) {
        pthread_once(&atfork_once, register_atfork);
        /* The namespace's inode number names it for as long as any process lives in it. */
        struct stat st;
        if (stat("/proc/self/ns/pid", &st) != 0)
            return 0;
        ns = (uint32_t)st.st_ino;
        atomic_store_explicit(&cached_pid_ns, ns, memory_order_relaxed);
    }
    return ns;
}

uint32_t shml__os_euid(void)
{
    return (uint32_t)geteuid();
}

/* Read state (field 3) and starttime (field 22) of /proc/PID/stat. */
static int read_stat(int32_t pid, char *state, uint64_t *start)
{
    if (pid <= 0)
        return -ESRCH;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int saved = errno;
    close(fd);
    if (n < 0)
        return saved == ESRCH ? -ESRCH : -saved;
    buf[n] = '\0';
    /*
     * The command name (field 2) may itself hold spaces and parentheses, so the fields are
     * counted from the last ')'. Field 3 (state) follows it; starttime is field 22.
     */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == '\0')
        return -EIO;
    *state = p[2];
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -EIO;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p + 1, &end, 10);
    if (errno != 0 || end == p + 1)
        return -EIO;
    *start = v;
    return 0;
}

int shml__os_proc_start(int32_t pid, uint64_t *start)
{
    char state;
    return read_stat(pid, &state, start);
}

int shml__os_proc_alive(int32_t pid, uint64_t start)
{
    char state;
    uint64_t now;
    int r = read_stat(pid, &state, &now);
    if (r == -ESRCH) {
        /*
         * Not in our /proc. That is death only if the kernel agrees: /proc mounted with
         * hidepid hides other users' processes, which kill() still finds (EPERM, or 0 for
         * root). Such a process exists, but its start time cannot be read: unknown.
         */
        if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
            return 0;
        return -1;
    }
    if (r < 0)
        return -1;
    /* A zombie keeps its /proc entry but is dead for every purpose of ours; so is a reused pid. */
    if (state == 'Z' || state == 'X')
        return 0;
    return start == 0 || now == start ? 1 : 0;
}

int shml__os_thread_start(int32_t tid, uint64_t *start)
{
    /* /proc/TID resolves any thread, not only group leaders, and its stat is the thread's. */
    char state;
    int r = read_stat(tid, &state, start);
    if (r == 0 && (state == 'Z' || state == 'X'))
        return -ESRCH;
    return r;
}

int shml__os_random(void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom((char *)buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        got += (size_t)n;
    }
    return 0;
}

int shml__os_boot_id(uint8_t id[16])
{
    memset(id, 0, 16);
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 32)
        return -EIO;
    buf[n] = '\0';
    /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx": 32 hex digits, dashes skipped. */
    int nib = 0;
    for (ssize_t i = 0; i < n && nib < 32; i++) {
        char c = buf[i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            continue;
        id[nib / 2] = (uint8_t)(id[nib / 2] | (nib % 2 ? v : v << 4));
        nib++;
    }
    return nib == 32 ? 0 : -EIO;
}

int shml__os_fd_address(int fd, char *buf, size_t cap)
{
    char link[64], target[4096 + 32];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return errno == ENOENT ? -EBADF : -errno;
    target[n] = '\0';
    /* A memfd reads "/memfd:NAME (deleted)"; a POSIX object lives in /dev/shm. */
    if (strncmp(target, "/memfd:", 7) == 0) {
        char *del = strstr(target, " (deleted)");
        if (del)
            *del = '\0';
        snprintf(buf, cap, "memfd:%s", target + 7);
        return SHML_BACKEND_MEMFD;
    }
    if (strncmp(target, "/dev/shm/", 9) == 0 && strchr(target + 9, '/') == NULL) {
        snprintf(buf, cap, "posix:/%s", target + 9);
        return SHML_BACKEND_POSIX;
    }
    snprintf(buf, cap, "file:%s", target);
    return SHML_BACKEND_FILE;
}

int shml__os_path_mapped(const char *path)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    size_t plen = strlen(path);
    int found = 0;
    struct dirent *e;
    char line[4096 + 256];
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char maps[300];
        snprintf(maps, sizeof(maps), "/proc/%s/maps", e->d_name);
        FILE *f = fopen(maps, "re");
        /*
         * A user may not read another user's maps: whether that process maps the object
         * cannot be told. Root reads every maps file but those the kernel withholds from it
         * too (a process outside its namespaces, say), as it always has: those are skipped.
         */
        if (!f && (errno == EACCES || errno == EPERM) && geteuid() != 0) {
            found = -EACCES;
            break;
        }
        if (!f)
            continue; /* gone meanwhile */
        while (fgets(line, sizeof(line), f)) {
            /* The path is the last field; a deleted object is followed by " (deleted)". */
            char *p = strchr(line, '/');
            if (p && strncmp(p, path, plen) == 0 && (p[plen] == '\n' || p[plen] == ' ')) {
                found = 1;
                break;
            }
        }
        fclose(f);
    }
    closedir(d);
    return found;
}
