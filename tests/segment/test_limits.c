/*
 * Limits of the system and of permissions: -EACCES for another user, permission bits as
 * asked (umask ignored), a full /dev/shm (-ENOSPC, no SIGBUS, nothing left), RLIMIT_FSIZE on
 * the file backend (-EFBIG, nothing left), huge pages with none reserved, and SHML_PREFAULT.
 */
#include "seg_util.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- permissions ---- */

/* Run fn(addr) in a forked child that became user nobody; returns its exit code. */
static int as_nobody(void (*fn)(const char *), const char *addr)
{
    pid_t pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
            shmt_log("cannot become nobody: %s", strerror(errno));
            _exit(3);
        }
        fn(addr);
        _exit(0);
    }
    int st;
    int64_t deadline = shmt_now_ms() + 20000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (shmt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        shmt_sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void denied(const char *addr)
{
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -EACCES);
    struct shml_segment_opts o = opts_of(SHML_RDONLY);
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -EACCES);
    o = opts_of(SHML_RAW);
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -EACCES);
    int r = shml_segment_unlink(addr);
    if (r != -EACCES && r != -EPERM)
        shmt_fail(__FILE__, __LINE__, "unlink of another user's segment: %d (%s), want -EACCES or -EPERM",
                  r, shml_strerror(r));
}

static void permission_denied(enum bk b)
{
    if (geteuid() != 0)
        SKIP("needs root to switch to user nobody");
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &seg)); /* default mode 0600 */
    ASSERT_EQ(as_nobody(denied, addr), 0);
    ASSERT_OK(shml_segment_close(seg));
    /* It is still there and intact for its owner. */
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(permission_denied_posix)
{
    permission_denied(BK_POSIX);
}

TEST(permission_denied_sysv)
{
    permission_denied(BK_SYSV_KEY);
}

TEST(permission_denied_file)
{
    permission_denied(BK_FILE);
}

static void readable(const char *addr)
{
    shml_segment *seg = NULL;
    struct shml_segment_opts o = opts_of(SHML_RDONLY);
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    ASSERT_PATTERN(shml_segment_data(seg), 5000, 51);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -EACCES); /* no write bit for others */
}

TEST(mode_lets_others_read)
{
    if (geteuid() != 0)
        SKIP("needs root to switch to user nobody");
    const char *addr = new_addr(BK_POSIX);
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.mode = 0644;
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, &o, &seg));
    shmt_fill(shml_segment_data(seg), 5000, 51);
    ASSERT_EQ(as_nobody(readable, addr), 0);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

static uint32_t object_mode(const char *addr, shml_segment *seg)
{
    if (strncmp(addr, "sysv:", 5) == 0) {
        struct shmid_ds ds;
        ASSERT_SYS(shmctl(addr_sysv_id(addr), IPC_STAT, &ds));
        return ds.shm_perm.mode & 0777;
    }
    struct stat st;
    ASSERT_SYS(fstat(shml_segment_fd(seg), &st));
    return st.st_mode & 0777;
}

static void mode_of(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    /* Default: 0600. */
    ASSERT_OK(shml_segment_create(addr, 100, NULL, &seg));
    ASSERT_EQ(object_mode(addr, seg), 0600u);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));

    /* Asked: 0640, and stat reports it. */
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.mode = 0640;
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    ASSERT_EQ(object_mode(addr, seg), 0640u);
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.mode & 0777, 0640u);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));

    /* The umask does not apply. */
    mode_t old = umask(077);
    o.mode = 0666;
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    umask(old);
    ASSERT_EQ(object_mode(addr, seg), 0666u);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(mode_posix)
{
    mode_of(BK_POSIX);
}

TEST(mode_sysv)
{
    mode_of(BK_SYSV_KEY);
}

TEST(mode_file)
{
    mode_of(BK_FILE);
}

TEST(mode_memfd_default)
{
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create("memfd:shmt-mode", 100, NULL, &seg));
    struct stat st;
    ASSERT_SYS(fstat(shml_segment_fd(seg), &st));
    ASSERT_EQ(st.st_mode & 0077, 0u); /* never readable by others by default */
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- /dev/shm full ---- */

static void die_on_sigbus(int sig)
{
    (void)sig;
    static const char msg[] = "SIGBUS while creating a segment on a full /dev/shm\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(99);
}

static void devshm_full(bool raw)
{
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) != 0)
        SKIP("no /dev/shm");
    uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    /*
     * More than the file system's whole size: tmpfs refuses such a reservation outright
     * instead of filling memory page by page first (which would take this machine's RAM).
     */
    uint64_t size = total + ((uint64_t)1 << 30);
    signal(SIGBUS, die_on_sigbus);
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg = NULL;
    struct shml_segment_opts o = opts_of(raw ? SHML_RAW : 0);
    shmt_log("/dev/shm: %llu bytes free of %llu; asking for %llu", (unsigned long long)avail,
             (unsigned long long)total, (unsigned long long)size);
    ASSERT_ERR(shml_segment_create(addr, (size_t)size, &o, &seg), -ENOSPC);
    ASSERT_NULL(seg);
    ASSERT_TRUE(shml_last_error()[0] != '\0'); /* with a hint */
    shmt_log("last error: %s", shml_last_error());
    struct stat st;
    ASSERT_EQ(stat(object_path(addr), &st), -1); /* nothing left behind */
    ASSERT_EQ(errno, ENOENT);
}

TEST(devshm_full_managed)
{
    devshm_full(false);
}

TEST(devshm_full_raw)
{
    devshm_full(true);
}

/* ---- RLIMIT_FSIZE ---- */

static void fsize_limit(const char *addr, bool ignore_sigxfsz)
{
    pid_t pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        signal(SIGXFSZ, ignore_sigxfsz ? SIG_IGN : SIG_DFL);
        struct rlimit rl = {64 * 1024, 64 * 1024};
        ASSERT_SYS(setrlimit(RLIMIT_FSIZE, &rl));
        shml_segment *seg = NULL;
        ASSERT_ERR(shml_segment_create(addr, 1 << 20, NULL, &seg), -EFBIG);
        struct shml_segment_opts raw = opts_of(SHML_RAW);
        ASSERT_ERR(shml_segment_create(addr, 1 << 20, &raw, &seg), -EFBIG);
        /* Within the limit it works. */
        ASSERT_OK(shml_segment_create(addr, 8192, NULL, &seg));
        ASSERT_OK(shml_segment_close(seg));
        ASSERT_OK(shml_segment_unlink(addr));
        _exit(0);
    }
    int st = wait_child(pid, 20000);
    if (WIFSIGNALED(st))
        shmt_fail(__FILE__, __LINE__, "creating past RLIMIT_FSIZE killed the process with SIG%s",
                  sigabbrev_np(WTERMSIG(st)));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT_EQ(access(object_path(addr), F_OK), -1); /* no file left */
}

TEST(rlimit_fsize_file)
{
    fsize_limit(new_addr(BK_FILE), false);
}

TEST(rlimit_fsize_file_sigxfsz_ignored)
{
    fsize_limit(new_addr(BK_FILE), true);
}

/* ---- huge pages ---- */

static long meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            v = strtol(line + klen + 1, NULL, 10);
    fclose(f);
    return v;
}

static void no_hugepages_or_skip(void)
{
    long free_hp = meminfo("HugePages_Free");
    if (free_hp < 0)
        SKIP("no huge page support in /proc/meminfo");
    if (free_hp > 0)
        SKIP("%ld huge pages are reserved; this test needs none", free_hp);
}

TEST(hugepages_none_sysv)
{
    no_hugepages_or_skip();
    const char *addr = new_addr(BK_SYSV_KEY);
    struct shml_segment_opts o = opts_of(SHML_HUGEPAGES);
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_create(addr, 1 << 20, &o, &seg), -ENOMEM);
    ASSERT_TRUE(shml_last_error()[0] != '\0');
    shmt_log("last error: %s", shml_last_error());
    ASSERT_EQ(addr_sysv_id(addr), -1);
}

TEST(hugepages_none_memfd)
{
    no_hugepages_or_skip();
    struct shml_segment_opts o = opts_of(SHML_HUGEPAGES);
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_create("memfd:shmt-huge", 1 << 20, &o, &seg), -ENOMEM);
    ASSERT_TRUE(shml_last_error()[0] != '\0');
    shmt_log("last error: %s", shml_last_error());
}

TEST(hugepages_posix_refused)
{
    /*
     * segment.h: SHML_HUGEPAGES is for the sysv: and memfd: backends. It does not say what
     * the others answer; a clear refusal (-EINVAL bad option, or -ENOTSUP) with nothing
     * created is what is required here.
     */
    struct shml_segment_opts o = opts_of(SHML_HUGEPAGES);
    const char *addrs[] = {new_addr(BK_POSIX), new_addr(BK_FILE)};
    for (size_t i = 0; i < 2; i++) {
        shml_segment *seg = NULL;
        int r = shml_segment_create(addrs[i], 1 << 20, &o, &seg);
        if (r != -EINVAL && r != -ENOTSUP)
            shmt_fail(__FILE__, __LINE__, "%s with SHML_HUGEPAGES: %d (%s), want -EINVAL or -ENOTSUP",
                      addrs[i], r, r < 0 ? shml_strerror(r) : "success");
        ASSERT_NULL(seg);
        ASSERT_TRUE(shml_last_error()[0] != '\0');
        ASSERT_EQ(access(object_path(addrs[i]), F_OK), -1);
    }
}

/* ---- prefault ---- */

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Minor faults taken by writing one byte in each page of a new segment. */
static long faults_to_touch(uint32_t flags, size_t size)
{
    const char *addr = new_addr(BK_POSIX);
    struct shml_segment_opts o = opts_of(flags);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, size, &o, &seg));
    volatile uint8_t *d = shml_segment_data(seg);
    long before = minor_faults();
    for (size_t i = 0; i < size; i += 4096)
        d[i] = 1;
    long after = minor_faults();
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
    return after - before;
}

TEST(prefault)
{
    const size_t size = 16u << 20;
    const long pages = (long)(size / 4096);
    long cold = faults_to_touch(0, size);
    long warm = faults_to_touch(SHML_PREFAULT, size);
    shmt_log("minor faults touching %ld pages: %ld without SHML_PREFAULT, %ld with", pages, cold,
             warm);
    if (cold < pages / 2)
        SKIP("first touch costs few faults here (%ld for %ld pages: huge pages?); cannot tell",
             cold, pages);
    ASSERT_LT(warm, pages / 4);
}
