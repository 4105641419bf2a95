/*
 * Raw mode (objects made outside shmlink), the open/create flags, and the errors of the
 * segment calls: -EEXIST, -ENOENT, -SHML_EWRONGKIND, -SHML_ENOTSHML, -EBADF on a read-only
 * handle, -ERANGE past the end, -EINVAL / -EOVERFLOW for impossible sizes.
 */
#include "seg_util.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOREIGN_SIZE 12345u

/* ---- objects made the classic way, opened raw ---- */

static void make_foreign_posix(const char *name, size_t size, unsigned seed)
{
    int fd = shm_open(shmt_fmt("/%s", name), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, (off_t)size));
    uint8_t *buf = malloc(size);
    ASSERT_NOT_NULL(buf);
    shmt_fill(buf, size, seed);
    ASSERT_EQ(pwrite(fd, buf, size, 0), (ssize_t)size);
    free(buf);
    close(fd);
}

static void make_foreign_file(const char *path, size_t size, unsigned seed)
{
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    uint8_t *buf = malloc(size);
    ASSERT_NOT_NULL(buf);
    shmt_fill(buf, size, seed);
    ASSERT_EQ(pwrite(fd, buf, size, 0), (ssize_t)size);
    free(buf);
    close(fd);
}

static int make_foreign_sysv(int32_t key, size_t size, unsigned seed)
{
    int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
    ASSERT_SYS(id);
    shmt_cleanup_sysv_id(id);
    void *p = shmat(id, NULL, 0);
    ASSERT_TRUE(p != (void *)-1);
    shmt_fill(p, size, seed);
    ASSERT_SYS(shmdt(p));
    return id;
}

/* Open `addr` raw; it must hold `size` bytes of pattern `seed`; a managed open is refused. */
static void check_raw(const char *addr, size_t size, unsigned seed)
{
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    ASSERT_FALSE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_size(seg), size);
    ASSERT_PATTERN(shml_segment_data(seg), size, seed);
    /* Writes through the handle land in the object. */
    uint8_t b = 0xab;
    ASSERT_EQ(shml_segment_write(seg, size - 1, &b, 1), 1);
    ASSERT_EQ(((uint8_t *)shml_segment_data(seg))[size - 1], 0xab);
    b = shmt_pattern(size - 1, seed);
    ASSERT_EQ(shml_segment_write(seg, size - 1, &b, 1), 1);
    ASSERT_OK(shml_segment_close(seg));

    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -SHML_ENOTSHML);

    /* stat describes it as raw. */
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_FALSE(info.managed);
    ASSERT_FALSE(info.shmlink);
    ASSERT_EQ(info.size, size);
}

TEST(raw_posix_foreign)
{
    const char *name = shmt_posix_name();
    make_foreign_posix(name, FOREIGN_SIZE, 11);
    check_raw(shmt_fmt("posix:/%s", name), FOREIGN_SIZE, 11);
    check_raw(name, FOREIGN_SIZE, 11);
    /* Still there: raw opens never remove or reshape a foreign object. */
    struct stat st;
    ASSERT_SYS(stat(shmt_fmt("/dev/shm/%s", name), &st));
    ASSERT_EQ(st.st_size, (off_t)FOREIGN_SIZE);
}

TEST(raw_posix_foreign_small)
{
    /* Smaller than a header page: still not a shmlink segment, and no fault reading it. */
    const char *name = shmt_posix_name();
    make_foreign_posix(name, 100, 12);
    check_raw(shmt_fmt("posix:/%s", name), 100, 12);
}

TEST(raw_sysv_foreign)
{
    int32_t key = shmt_sysv_key();
    int id = make_foreign_sysv(key, FOREIGN_SIZE, 13);
    check_raw(shmt_fmt("sysv:0x%x", (unsigned)key), FOREIGN_SIZE, 13);
    check_raw(shmt_fmt("sysv:%d", key), FOREIGN_SIZE, 13);
    check_raw(shmt_fmt("sysv:id=%d", id), FOREIGN_SIZE, 13);
    struct shml_segment_info info;
    STAT_OK(shmt_fmt("sysv:id=%d", id), &info, NULL, NULL);
    ASSERT_EQ(info.creator_pid, getpid()); /* shm_cpid */
    ASSERT_EQ(info.backend, SHML_BACKEND_SYSV);
}

TEST(raw_file_foreign)
{
    const char *path = shmt_fmt("%s/foreign.bin", shmt_tmpdir());
    make_foreign_file(path, FOREIGN_SIZE, 14);
    check_raw(shmt_fmt("file:%s", path), FOREIGN_SIZE, 14);
}

TEST(raw_open_of_managed_sees_header)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg = NULL, *raw = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &seg));
    shmt_fill(shml_segment_data(seg), 5000, 15);
    struct shml_segment_opts o = opts_of(SHML_RAW);
    ASSERT_OK(shml_segment_open(addr, &o, &raw));
    ASSERT_FALSE(shml_segment_is_managed(raw));
    ASSERT_EQ(shml_segment_size(raw), managed_map_size(5000));
    const uint8_t *b = shml_segment_data(raw);
    ASSERT_MEM_EQ(b, "SHMLINK\0", 8);
    ASSERT_PATTERN(b + 4096, 5000, 15);
    ASSERT_OK(shml_segment_close(raw));
    ASSERT_OK(shml_segment_close(seg));
}

TEST(raw_create_has_no_header)
{
    const char *addr = new_addr(BK_POSIX);
    struct shml_segment_opts o = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, FOREIGN_SIZE, &o, &seg));
    ASSERT_FALSE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_size(seg), FOREIGN_SIZE);
    struct stat st;
    ASSERT_SYS(stat(object_path(addr), &st));
    ASSERT_EQ(st.st_size, (off_t)FOREIGN_SIZE); /* exactly the size asked, no header */
    const uint8_t *b = shml_segment_data(seg);
    for (size_t i = 0; i < FOREIGN_SIZE; i++)
        ASSERT_EQ(b[i], 0);
    shmt_fill(shml_segment_data(seg), FOREIGN_SIZE, 16);
    ASSERT_OK(shml_segment_close(seg));
    check_raw(addr, FOREIGN_SIZE, 16);
}

TEST(raw_create_sysv_and_file)
{
    struct shml_segment_opts o = opts_of(SHML_RAW);
    const enum bk bks[] = {BK_SYSV_KEY, BK_FILE};
    for (size_t i = 0; i < 2; i++) {
        const char *addr = new_addr(bks[i]);
        shml_segment *seg = NULL;
        ASSERT_OK(shml_segment_create(addr, FOREIGN_SIZE, &o, &seg));
        ASSERT_FALSE(shml_segment_is_managed(seg));
        ASSERT_EQ(shml_segment_size(seg), FOREIGN_SIZE);
        shmt_fill(shml_segment_data(seg), FOREIGN_SIZE, 17);
        ASSERT_OK(shml_segment_close(seg));
        check_raw(addr, FOREIGN_SIZE, 17);
        ASSERT_OK(shml_segment_unlink(addr));
    }
}

/* ---- SHML_OPEN_OR_CREATE ---- */

static void open_or_create(enum bk b)
{
    const char *addr = new_addr(b);
    struct shml_segment_opts o = opts_of(SHML_OPEN_OR_CREATE);
    shml_segment *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, &o, &s1)); /* creates */
    ASSERT_EQ(shml_segment_size(s1), 5000u);
    shmt_fill(shml_segment_data(s1), 5000, 21);
    ASSERT_OK(shml_segment_create(addr, 5000, &o, &s2)); /* opens: the data stays */
    ASSERT_TRUE(shml_segment_is_managed(s2));
    ASSERT_EQ(shml_segment_size(s2), 5000u);
    ASSERT_PATTERN(shml_segment_data(s2), 5000, 21);
    ASSERT_OK(shml_segment_create(addr, 3000, &o, &s3)); /* smaller is fine */
    ASSERT_EQ(shml_segment_size(s3), 5000u);
    ASSERT_PATTERN(shml_segment_data(s3), 5000, 21);
    /* Larger than what exists is refused, and the segment is untouched. */
    int r = shml_segment_create(addr, 9000, &o, &s4);
    if (r >= 0)
        shmt_fail(__FILE__, __LINE__,
                  "OPEN_OR_CREATE of 9000 bytes over a 5000-byte segment succeeded (size %zu)",
                  shml_segment_size(s4));
    ASSERT_PATTERN(shml_segment_data(s1), 5000, 21);
    ASSERT_OK(shml_segment_close(s3));
    ASSERT_OK(shml_segment_close(s2));
    ASSERT_OK(shml_segment_close(s1));
    /* Without the flag, it exists. */
    ASSERT_ERR(shml_segment_create(addr, 5000, NULL, &s1), -EEXIST);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(open_or_create_posix)
{
    open_or_create(BK_POSIX);
}

TEST(open_or_create_sysv)
{
    open_or_create(BK_SYSV_KEY);
}

TEST(open_or_create_file)
{
    open_or_create(BK_FILE);
}

/* ---- SHML_RDONLY ---- */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;

static void on_fault(int sig)
{
    fault_sig = sig;
    siglongjmp(fault_jmp, 1);
}

static void rdonly(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *w = NULL, *r = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &w));
    shmt_fill(shml_segment_data(w), 5000, 22);
    struct shml_segment_opts o = opts_of(SHML_RDONLY);
    ASSERT_OK(shml_segment_open(addr, &o, &r));
    ASSERT_PATTERN(shml_segment_data(r), 5000, 22);
    uint8_t buf[16];
    ASSERT_EQ(shml_segment_read(r, 100, buf, sizeof buf), (ssize_t)sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        ASSERT_EQ(buf[i], shmt_pattern(100 + i, 22));
    ASSERT_ERR(shml_segment_write(r, 0, buf, sizeof buf), -EBADF);
    ASSERT_PATTERN(shml_segment_data(w), 5000, 22);

    /* A store through the read-only mapping faults; the byte stays. */
    struct sigaction sa, old_segv, old_bus;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    volatile uint8_t *p = shml_segment_data(r);
    fault_sig = 0;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        p[10] = 0x77;
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);
        shmt_fail(__FILE__, __LINE__, "a store through an SHML_RDONLY mapping did not fault");
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    ASSERT_EQ(fault_sig, SIGSEGV);
    ASSERT_EQ(((uint8_t *)shml_segment_data(w))[10], shmt_pattern(10, 22));

    ASSERT_OK(shml_segment_close(r));
    ASSERT_OK(shml_segment_close(w));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(rdonly_posix)
{
    rdonly(BK_POSIX);
}

TEST(rdonly_sysv)
{
    rdonly(BK_SYSV_KEY);
}

TEST(rdonly_file)
{
    rdonly(BK_FILE);
}

TEST(rdonly_raw_foreign)
{
    const char *name = shmt_posix_name();
    make_foreign_posix(name, 100, 23);
    /* A read-only object (0400) can be opened read-only. */
    ASSERT_SYS(chmod(shmt_fmt("/dev/shm/%s", name), 0400));
    struct shml_segment_opts o = opts_of(SHML_RAW | SHML_RDONLY);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(name, &o, &seg));
    ASSERT_PATTERN(shml_segment_data(seg), 100, 23);
    uint8_t b = 0;
    ASSERT_ERR(shml_segment_write(seg, 0, &b, 1), -EBADF);
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- -EEXIST, -ENOENT ---- */

static void eexist(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL, *other = NULL;
    ASSERT_OK(shml_segment_create(addr, 5000, NULL, &seg));
    shmt_fill(shml_segment_data(seg), 5000, 24);
    ASSERT_ERR(shml_segment_create(addr, 5000, NULL, &other), -EEXIST);
    ASSERT_NULL(other);
    ASSERT_ERR(shml_segment_create(addr, 100, NULL, &other), -EEXIST);
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_ERR(shml_segment_create(addr, 100, &raw, &other), -EEXIST);
    /* The existing segment is untouched by the failed creates. */
    ASSERT_PATTERN(shml_segment_data(seg), 5000, 24);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_EQ(shml_segment_size(seg), 5000u);
    ASSERT_PATTERN(shml_segment_data(seg), 5000, 24);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(eexist_posix)
{
    eexist(BK_POSIX);
}

TEST(eexist_sysv)
{
    eexist(BK_SYSV_KEY);
}

TEST(eexist_file)
{
    eexist(BK_FILE);
}

TEST(enoent)
{
    shml_segment *seg = NULL;
    struct shml_segment_info info;
    const char *addrs[] = {
        new_addr(BK_POSIX),
        new_addr(BK_SYSV_KEY),
        new_addr(BK_FILE),
        new_addr(BK_SYSV_FTOK), /* the ftok file exists, the segment does not */
        shmt_fmt("sysv:%s/no-such-file#1", shmt_tmpdir()),
        shmt_fmt("file:%s/no-such-dir/x", shmt_tmpdir()),
    };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        shmt_log("open of missing %s", addrs[i]);
        ASSERT_ERR(shml_segment_open(addrs[i], NULL, &seg), -ENOENT);
        ASSERT_NULL(seg);
        struct shml_segment_opts raw = opts_of(SHML_RAW);
        ASSERT_ERR(shml_segment_open(addrs[i], &raw, &seg), -ENOENT);
        ASSERT_ERR(shml_segment_unlink(addrs[i]), -ENOENT);
        ASSERT_ERR(shml_segment_stat(addrs[i], &info, NULL, 0, NULL), -ENOENT);
    }
}

TEST(enoent_sysv_id)
{
    /* An id that is not in use: make one, remove it. */
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    ASSERT_SYS(id);
    ASSERT_SYS(shmctl(id, IPC_RMID, NULL));
    shml_segment *seg = NULL;
    const char *addr = shmt_fmt("sysv:id=%d", id);
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -ENOENT);
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_ERR(shml_segment_open(addr, &raw, &seg), -ENOENT);
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT);
}

/* ---- kinds ---- */

TEST(wrong_kind)
{
    const char *addr = new_addr(BK_POSIX);
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.kind = 7;
    shml_segment *seg = NULL, *other = NULL;
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    struct shml_segment_opts want = SHML_SEGMENT_OPTS_INIT;
    want.kind = SHML_KIND_PLAIN;
    ASSERT_ERR(shml_segment_open(addr, &want, &other), -SHML_EWRONGKIND);
    ASSERT_NULL(other);
    want.kind = 8;
    ASSERT_ERR(shml_segment_open(addr, &want, &other), -SHML_EWRONGKIND);
    want.kind = 7;
    ASSERT_OK(shml_segment_open(addr, &want, &other));
    ASSERT_OK(shml_segment_close(other));
    want.kind = SHML_KIND_ANY;
    ASSERT_OK(shml_segment_open(addr, &want, &other));
    ASSERT_OK(shml_segment_close(other));
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_EQ(info.kind, 7u);
    /* A plain create records SHML_KIND_PLAIN. */
    const char *addr2 = new_addr(BK_POSIX);
    ASSERT_OK(shml_segment_create(addr2, 100, NULL, &other));
    STAT_OK(addr2, &info, NULL, NULL);
    ASSERT_EQ(info.kind, SHML_KIND_PLAIN);
    ASSERT_OK(shml_segment_close(other));
    ASSERT_OK(shml_segment_close(seg));
}

/* ---- sizes and bounds ---- */

static void no_object_left(const char *addr)
{
    shml_segment *seg = NULL;
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_ERR(shml_segment_open(addr, &raw, &seg), -ENOENT);
}

TEST(size_zero)
{
    const enum bk bks[] = {BK_POSIX, BK_SYSV_KEY, BK_FILE};
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    for (size_t i = 0; i < 3; i++) {
        const char *addr = new_addr(bks[i]);
        shml_segment *seg = NULL;
        ASSERT_ERR(shml_segment_create(addr, 0, NULL, &seg), -EINVAL);
        ASSERT_ERR(shml_segment_create(addr, 0, &raw, &seg), -EINVAL);
        ASSERT_NULL(seg);
        no_object_left(addr);
    }
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_create("memfd:shmt-zero", 0, NULL, &seg), -EINVAL);
}

TEST(size_unrepresentable)
{
    const enum bk bks[] = {BK_POSIX, BK_SYSV_KEY, BK_FILE};
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)INT64_MAX + 1};
    for (size_t i = 0; i < 3; i++) {
        const char *addr = new_addr(bks[i]);
        for (size_t j = 0; j < 3; j++) {
            shml_segment *seg = NULL;
            shmt_log("%s, size %zu", addr, sizes[j]);
            ASSERT_ERR(shml_segment_create(addr, sizes[j], NULL, &seg), -EOVERFLOW);
            ASSERT_ERR(shml_segment_create(addr, sizes[j], &raw, &seg), -EOVERFLOW);
            ASSERT_NULL(seg);
            no_object_left(addr);
        }
    }
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_create("memfd:shmt-huge", SIZE_MAX, NULL, &seg), -EOVERFLOW);
}

TEST(bad_addresses_public)
{
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_create(NULL, 100, NULL, &seg), -EINVAL);
    ASSERT_ERR(shml_segment_open(NULL, NULL, &seg), -EINVAL);
    ASSERT_ERR(shml_segment_create("a/b", 100, NULL, &seg), -EINVAL);
    ASSERT_TRUE(shml_last_error()[0] != '\0');
    ASSERT_ERR(shml_segment_open("..", NULL, &seg), -EINVAL);
    ASSERT_ERR(shml_segment_unlink("foo:bar"), -EINVAL);
    ASSERT_ERR(shml_segment_create("win:x", 100, NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_open("win:x", NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_unlink("win:x"), -ENOTSUP);
}

TEST(bad_options)
{
    const char *addr = new_addr(BK_POSIX);
    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    char label[SHML_LABEL_MAX + 1];
    memset(label, 'l', SHML_LABEL_MAX);
    label[SHML_LABEL_MAX] = '\0';
    o.label = label; /* 64 characters: one too many */
    ASSERT_ERR(shml_segment_create(addr, 100, &o, &seg), -EINVAL);
    no_object_left(addr);
    label[SHML_LABEL_MAX - 1] = '\0'; /* 63: fits */
    ASSERT_OK(shml_segment_create(addr, 100, &o, &seg));
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_STR_EQ(info.label, label);
    ASSERT_OK(shml_segment_close(seg));

    o = opts_of(0x80000000u); /* unknown flag */
    ASSERT_ERR(shml_segment_create(new_addr(BK_POSIX), 100, &o, &seg), -EINVAL);
}

static void bounds(enum bk b)
{
    const char *addr = new_addr(b);
    const size_t size = 5000;
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, size, NULL, &seg));
    uint8_t *d = shml_segment_data(seg);
    shmt_fill(d, size, 25);
    uint8_t buf[64];
    memset(buf, 0xcc, sizeof buf);

    /* Straddling the end: refused, nothing written. */
    ASSERT_ERR(shml_segment_write(seg, size - 10, buf, 20), -ERANGE);
    ASSERT_PATTERN(d, size, 25);
    ASSERT_ERR(shml_segment_write(seg, size, buf, 1), -ERANGE);
    ASSERT_ERR(shml_segment_write(seg, size + 4096, buf, 1), -ERANGE);
    /* offset + len wraps around: still past the end. */
    ASSERT_ERR(shml_segment_write(seg, SIZE_MAX, buf, 2), -ERANGE);
    ASSERT_ERR(shml_segment_write(seg, 1, buf, SIZE_MAX), -ERANGE);
    ASSERT_PATTERN(d, size, 25);
    /* Bytes past the logical size (the page padding) are not the caller's either. */
    ASSERT_ERR(shml_segment_write(seg, size, buf, 8), -ERANGE);
    ASSERT_EQ(d[size], 0);

    ASSERT_ERR(shml_segment_read(seg, size - 10, buf, 20), -ERANGE);
    ASSERT_ERR(shml_segment_read(seg, SIZE_MAX, buf, 2), -ERANGE);
    ASSERT_ERR(shml_segment_read(seg, 1, buf, SIZE_MAX), -ERANGE);

    /* Exactly up to the end is fine; so is an empty copy at the end. */
    ASSERT_EQ(shml_segment_write(seg, size - 20, buf, 20), 20);
    ASSERT_EQ(d[size - 20], 0xcc);
    ASSERT_EQ(d[size - 1], 0xcc);
    ASSERT_EQ(d[size - 21], shmt_pattern(size - 21, 25));
    ASSERT_EQ(shml_segment_read(seg, size - 20, buf, 20), 20);
    ASSERT_EQ(shml_segment_write(seg, size, buf, 0), 0);
    ASSERT_EQ(shml_segment_read(seg, size, buf, 0), 0);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(bounds_posix)
{
    bounds(BK_POSIX);
}

TEST(bounds_sysv)
{
    bounds(BK_SYSV_KEY);
}

TEST(bounds_file)
{
    bounds(BK_FILE);
}
