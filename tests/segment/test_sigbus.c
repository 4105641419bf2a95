/*
 * The SIGBUS guard (src/os/sigbus_unix.c): touching the mapping of an object that another
 * process truncated costs the segment (zeros, then -SHML_ETRUNCATED from every call), never
 * the process; a SIGBUS that is not ours still reaches the handler that was there before (or
 * the default action); SHML_NO_SIGBUS_GUARD=1 turns the guard off. A sparse object made
 * outside the library is refused at open, and on a full private /dev/shm a raw mapping of one
 * survives the fault.
 */
#include "seg_util.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE ((size_t)64 * 1024)

static void truncate_path(const char *path, off_t len)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, len));
    close(fd);
}

/* Touch the data of `seg` past what a truncation left: a read and a write of the mapping. */
static void touch_lost(shml_segment *seg, size_t at)
{
    volatile uint8_t *p = (volatile uint8_t *)shml_segment_data(seg);
    ASSERT_EQ(p[at], 0); /* the fault replaced the mapping with zeros */
    p[at] = 7;           /* and it stays usable memory: no second fault */
    ASSERT_EQ(p[at], 7);
}

static void expect_lost(shml_segment *seg)
{
    uint8_t buf[16];
    ASSERT_ERR(shml_segment_check(seg), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_read(seg, 0, buf, sizeof buf), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_write(seg, 0, buf, sizeof buf), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_sync(seg), -SHML_ETRUNCATED);
    ASSERT_TRUE(strstr(shml_last_error(), "truncated") != NULL);
}

/* Truncate a mapped managed segment of backend b to `keep` bytes and touch past them. */
static void truncated_then_touched(enum bk b, uint32_t flags, off_t keep)
{
    const char *addr = new_addr(b);
    struct shml_segment_opts o = opts_of(flags);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, SIZE, &o, &seg));
    memset(shml_segment_data(seg), 0x5a, SIZE);
    truncate_path(object_path(addr), keep);
    touch_lost(seg, SIZE - 1);
    expect_lost(seg);
    /* Bytes that the truncation kept are zeros too: the whole mapping went. */
    ASSERT_EQ(((volatile uint8_t *)shml_segment_data(seg))[0], 0);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(truncated_to_zero_posix)
{
    truncated_then_touched(BK_POSIX, 0, 0);
}

TEST(truncated_in_data_posix_raw)
{
    truncated_then_touched(BK_POSIX, SHML_RAW, 8192);
}

TEST(truncated_to_zero_file)
{
    truncated_then_touched(BK_FILE, 0, 0);
}

TEST(truncated_in_data_file)
{
    truncated_then_touched(BK_FILE, 0, 4096 + 8192);
}

/* A memfd made by another program is not sealed: whoever holds its fd can shrink it. */
TEST(truncated_unsealed_memfd)
{
    int fd = memfd_create("shmt-unsealed", MFD_CLOEXEC);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, (off_t)SIZE));
    struct shml_segment_opts o = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_from_fd(fd, &o, &seg));
    memset(shml_segment_data(seg), 1, SIZE);
    ASSERT_SYS(ftruncate(fd, 0));
    touch_lost(seg, 100);
    expect_lost(seg);
    ASSERT_OK(shml_segment_close(seg));
    close(fd);
}

/* Run fn in a child process; returns its wait status. */
static int in_child(void (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    return wait_child(pid, 20000);
}

/* A SIGBUS of a mapping that is not shmlink's: a file of ours, truncated, then touched. */
static void foreign_fault(void)
{
    const char *path = shmt_fmt("%s/foreign", shmt_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 8192) != 0)
        _exit(90);
    volatile uint8_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED || ftruncate(fd, 0) != 0)
        _exit(91);
    (void)p[4096];
    _exit(92); /* survived: the fault was swallowed */
}

static void exit_42(int sig)
{
    (void)sig;
    _exit(42);
}

/* Map a segment, so the guard is installed on top of whatever handles SIGBUS now. */
static shml_segment *map_one(void)
{
    shml_segment *seg = NULL;
    if (shml_segment_create("memfd:shmt-guard", 4096, NULL, &seg) < 0)
        _exit(93);
    return seg;
}

static void foreign_with_default(void *arg)
{
    (void)arg;
    signal(SIGBUS, SIG_DFL); /* a sanitizer may have put its own handler there */
    map_one();
    foreign_fault();
}

static void foreign_with_handler(void *arg)
{
    (void)arg;
    signal(SIGBUS, exit_42);
    map_one();
    foreign_fault();
}

static void sent_with_handler(void *arg)
{
    (void)arg;
    signal(SIGBUS, exit_42);
    map_one();
    kill(getpid(), SIGBUS); /* sent, not a fault: handed over too */
    _exit(94);
}

TEST(foreign_fault_takes_the_default_action)
{
    int st = in_child(foreign_with_default, NULL);
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGBUS);
}

TEST(foreign_fault_reaches_the_previous_handler)
{
    int st = in_child(foreign_with_handler, NULL);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 42);
    st = in_child(sent_with_handler, NULL);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 42);
}

/*
 * Another handler installed after our first mapping (as Python's faulthandler can be): the
 * next mapping puts the guard back on top, chaining to it, and both mappings are guarded.
 */
static volatile sig_atomic_t touched;

/* The later handler: 42 for the foreign fault at the end, 43 if a guarded access reached it. */
static void exit_42_after_touches(int sig)
{
    (void)sig;
    _exit(touched ? 42 : 43);
}

static void replaced_then_mapped(void *arg)
{
    const char *a1 = ((const char **)arg)[0], *a2 = ((const char **)arg)[1];
    shml_segment *s1 = NULL, *s2 = NULL;
    if (shml_segment_create(a1, SIZE, NULL, &s1) < 0)
        _exit(80);
    signal(SIGBUS, exit_42_after_touches);
    if (shml_segment_create(a2, SIZE, NULL, &s2) < 0)
        _exit(81);
    truncate_path(object_path(a1), 0);
    truncate_path(object_path(a2), 0);
    ((volatile uint8_t *)shml_segment_data(s1))[10] = 1;
    ((volatile uint8_t *)shml_segment_data(s2))[10] = 1;
    touched = 1;
    if (shml_segment_check(s1) != -SHML_ETRUNCATED || shml_segment_check(s2) != -SHML_ETRUNCATED)
        _exit(82);
    shml_segment_close(s1);
    shml_segment_close(s2);
    shml_segment_unlink(a1);
    shml_segment_unlink(a2);
    foreign_fault(); /* still the handler installed in between */
}

TEST(guard_goes_back_on_top_of_a_later_handler)
{
    const char *addrs[2] = {new_addr(BK_POSIX), new_addr(BK_POSIX)}; /* removed by the harness */
    int st = in_child(replaced_then_mapped, addrs);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 42);
}

static void opted_out(void *arg)
{
    const char *addr = arg;
    signal(SIGBUS, SIG_DFL); /* a sanitizer may have put its own handler there */
    setenv("SHML_NO_SIGBUS_GUARD", "1", 1);
    shml_segment *seg = NULL;
    if (shml_segment_create(addr, SIZE, NULL, &seg) < 0)
        _exit(80);
    truncate_path(object_path(addr), 0);
    ((volatile uint8_t *)shml_segment_data(seg))[10] = 1;
    _exit(83);
}

TEST(opt_out_leaves_sigbus_alone)
{
    const char *addr = new_addr(BK_POSIX);
    int st = in_child(opted_out, (void *)addr);
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGBUS);
    shml_segment_unlink(addr);
}

/* ---- sparse objects ---- */

/* Make the managed segment at addr sparse: punch its data out (as a foreign program may). */
static void punch(const char *addr)
{
    int fd = open(object_path(addr), O_RDWR | O_CLOEXEC);
    ASSERT_SYS(fd);
    ASSERT_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, (off_t)SIZE));
    close(fd);
}

TEST(sparse_managed_object_is_refused)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, SIZE, NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    /* The library's own object passes: create reserved every page. */
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    punch(addr);
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -SHML_ETRUNCATED);
    ASSERT_TRUE(strstr(shml_last_error(), "sparse") != NULL);
    /* Raw, it opens: foreign objects are commonly sparse (ftruncate only); the guard covers
       a page that cannot be had later. */
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

/*
 * In a private mount namespace with a 1 MiB tmpfs on /dev/shm: shmlink's create of more is
 * -ENOSPC; a sparse object of 4 MiB (ftruncate) opened raw faults once the tmpfs is full, and
 * the guard turns that into -SHML_ETRUNCATED; a sparse managed one is refused at open.
 */
static void full_devshm(void *arg)
{
    (void)arg;
    if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        _exit(77);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("shmt", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
        _exit(77);
    shml_segment *seg = NULL;
    if (shml_segment_create("shmt-big", 2 << 20, NULL, &seg) != -ENOSPC)
        _exit(60);
    /* A managed segment that fits, then punched: refused. */
    if (shml_segment_create("shmt-managed", SIZE, NULL, &seg) < 0)
        _exit(61);
    shml_segment_close(seg);
    punch("posix:/shmt-managed");
    if (shml_segment_open("shmt-managed", NULL, &seg) != -SHML_ETRUNCATED)
        _exit(62);
    /* A sparse foreign object larger than the file system, opened raw, written through. */
    int fd = shm_open("/shmt-sparse", O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, 4 << 20) != 0)
        _exit(63);
    close(fd);
    struct shml_segment_opts raw = SHML_SEGMENT_OPTS_INIT;
    raw.flags = SHML_RAW;
    if (shml_segment_open("shmt-sparse", &raw, &seg) < 0)
        _exit(64);
    volatile uint8_t *p = shml_segment_data(seg);
    for (size_t i = 0; i < shml_segment_size(seg); i += 4096)
        p[i] = 1; /* faults once the 1 MiB are used */
    if (shml_segment_check(seg) != -SHML_ETRUNCATED)
        _exit(65);
    shml_segment_close(seg);
    /* The namespace's tmpfs goes with this process. */
}

TEST(sparse_object_on_a_full_devshm)
{
    int st = in_child(full_devshm, NULL);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        SKIP("no private mount namespace (unshare needs CAP_SYS_ADMIN or user namespaces)");
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
}
