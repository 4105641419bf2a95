/*
 * Real segments whose header or object went wrong: a corrupt or future header, an object
 * truncated before open or while mapped (no SIGBUS, -SHML_ETRUNCATED), and a creator still
 * initialising (waited for, bounded) or dead mid-initialisation (-SHML_ECORRUPT).
 */
#include "seg_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS ((int64_t)1000000)

/* Rewrite bytes of a segment's header through a raw handle (as a stray writer would). */
static void poke(const char *addr, size_t off, const void *bytes, size_t len)
{
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    ASSERT_EQ(shml_segment_write(seg, off, bytes, len), (ssize_t)len);
    ASSERT_OK(shml_segment_close(seg));
}

/* Read the header of a segment through a raw handle. */
static void peek_header(const char *addr, struct shml_hdr *h)
{
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    ASSERT_EQ(shml_segment_read(seg, 0, h, sizeof *h), (ssize_t)sizeof *h);
    ASSERT_OK(shml_segment_close(seg));
}

static const char *make_segment(enum bk b, size_t size, unsigned seed)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, size, NULL, &seg));
    shmt_fill(shml_segment_data(seg), size, seed);
    ASSERT_OK(shml_segment_close(seg));
    return addr;
}

static void expect_open_error(const char *addr, int err)
{
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), err);
    ASSERT_NULL(seg);
    struct shml_segment_opts ro = opts_of(SHML_RDONLY);
    ASSERT_ERR(shml_segment_open(addr, &ro, &seg), err);
    /* stat is not refused: it says why in status, and calls the segment unmanaged. */
    struct shml_segment_info info;
    STAT_OK(addr, &info, NULL, NULL);
    ASSERT_FALSE(info.managed);
    ASSERT_TRUE(info.shmlink); /* made by shmlink, header fails validation */
    ASSERT_EQ(info.status, err);
    /* And it is listed among shmlink's segments (list covers POSIX and System V). */
    if (strncmp(addr, "file:", 5) != 0) {
        struct shml_segment_info *v = NULL;
        size_t n = 0;
        ASSERT_OK(shml_segment_list(0, &v, &n));
        bool found = false;
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].address, info.address) == 0) {
                found = true;
                ASSERT_TRUE(v[i].shmlink);
                ASSERT_FALSE(v[i].managed);
                ASSERT_EQ(v[i].status, err);
            }
        shml_free(v);
        if (!found)
            shmt_fail(__FILE__, __LINE__, "%s (status %d) is not in shml_segment_list(0)",
                      info.address, err);
    }
    /* Raw opens still work: that is how one looks at a broken segment. */
    struct shml_segment_opts raw = opts_of(SHML_RAW);
    ASSERT_OK(shml_segment_open(addr, &raw, &seg));
    ASSERT_OK(shml_segment_close(seg));
}

static void corrupt_header(enum bk b)
{
    const char *addr = make_segment(b, 5000, 31);
    /* A flipped label byte: the checksum no longer matches. */
    struct shml_hdr h;
    peek_header(addr, &h);
    uint8_t c = (uint8_t)(h.label[2] ^ 0x01);
    poke(addr, offsetof(struct shml_hdr, label) + 2, &c, 1);
    expect_open_error(addr, -SHML_ECORRUPT);

    /* A field changed and resealed: the field itself is checked. */
    peek_header(addr, &h);
    h.label[2] = (char)(h.label[2] ^ 0x01);
    h.header_size = 4097;
    h.check = hdr_check(&h);
    poke(addr, 0, &h, SHML_HDR_CHECKED_LEN + 4);
    expect_open_error(addr, -SHML_ECORRUPT);

    /* An absurd size: would map far past the object. */
    peek_header(addr, &h);
    h.header_size = 4096;
    h.size = (uint64_t)1 << 40;
    h.map_size = managed_map_size(h.size);
    h.check = hdr_check(&h);
    poke(addr, 0, &h, SHML_HDR_CHECKED_LEN + 4);
    expect_open_error(addr, -SHML_ECORRUPT);

    /* A state word that is neither INIT nor READY. */
    peek_header(addr, &h);
    h.size = 5000;
    h.map_size = managed_map_size(5000);
    h.check = hdr_check(&h);
    poke(addr, 0, &h, SHML_HDR_CHECKED_LEN + 4);
    uint32_t st = 0xdeadbeef;
    poke(addr, offsetof(struct shml_hdr, state), &st, 4);
    expect_open_error(addr, -SHML_ECORRUPT);

    /* Put right again, it opens with the data intact. */
    st = SHML_STATE_READY;
    poke(addr, offsetof(struct shml_hdr, state), &st, 4);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_PATTERN(shml_segment_data(seg), 5000, 31);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(corrupt_header_posix)
{
    corrupt_header(BK_POSIX);
}

TEST(corrupt_header_sysv)
{
    corrupt_header(BK_SYSV_KEY);
}

TEST(corrupt_header_file)
{
    corrupt_header(BK_FILE);
}

static void version_bump(enum bk b)
{
    const char *addr = make_segment(b, 5000, 32);
    struct shml_hdr h;
    peek_header(addr, &h);
    h.version = SHML_LAYOUT_VERSION + 1;
    h.check = hdr_check(&h);
    poke(addr, 0, &h, SHML_HDR_CHECKED_LEN + 4);
    expect_open_error(addr, -SHML_EVERSION);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(version_bump_posix)
{
    version_bump(BK_POSIX);
}

TEST(version_bump_sysv)
{
    version_bump(BK_SYSV_KEY);
}

TEST(version_bump_file)
{
    version_bump(BK_FILE);
}

/* ---- truncation ---- */

static void truncated_before_open(enum bk b)
{
    const char *addr = make_segment(b, 10000, 33);
    const char *path = object_path(addr);
    ASSERT_SYS(truncate(path, (off_t)managed_map_size(10000) - 1));
    expect_open_error(addr, -SHML_ECORRUPT);
    ASSERT_SYS(truncate(path, 4096)); /* the header alone */
    expect_open_error(addr, -SHML_ECORRUPT);
    ASSERT_SYS(truncate(path, 100)); /* part of the header */
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -SHML_ECORRUPT);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(truncated_before_open_posix)
{
    truncated_before_open(BK_POSIX);
}

TEST(truncated_before_open_file)
{
    truncated_before_open(BK_FILE);
}

/* Truncate the file at argv[0] (or the inherited fd "fd:N") to argv[1] bytes. */
PEER(truncate)
{
    ASSERT_EQ(argc, 2);
    off_t len = (off_t)strtoll(argv[1], NULL, 10);
    if (strncmp(argv[0], "fd:", 3) == 0)
        ASSERT_SYS(ftruncate(atoi(argv[0] + 3), len));
    else
        ASSERT_SYS(truncate(argv[0], len));
    return 0;
}

static void die_on_sigbus(int sig)
{
    static const char msg[] = "SIGBUS: the library touched a truncated mapping (exit 99)\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(99);
}

/*
 * The test process keeps `seg` (size 10000, pattern 34, whose object is `target`, the data at
 * `data_off` in it) mapped while a peer truncates the object; the copy calls and check report
 * it, nothing faults. Then the object is restored to `full` bytes and the handle closed.
 */
static void truncated_while_mapped(shml_segment *seg, const char *target, size_t data_off,
                                   size_t full)
{
    signal(SIGBUS, die_on_sigbus);
    uint8_t buf[256];
    ASSERT_OK(shml_segment_check(seg));
    ASSERT_EQ(shml_segment_read(seg, 0, buf, sizeof buf), (ssize_t)sizeof buf);

    /* Cut inside the data: the first 100 bytes remain. */
    pid_t p = spawn_peer("truncate", target, shmt_fmt("%zu", data_off + 100));
    ASSERT_EQ(wait_peer(p, 10000), 0);
    ASSERT_ERR(shml_segment_check(seg), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_read(seg, 0, buf, 200), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_read(seg, 5000, buf, 10), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_write(seg, 5000, buf, 10), -SHML_ETRUNCATED);
    ASSERT_EQ(shml_segment_read(seg, 0, buf, 50), 50); /* still there */
    ASSERT_PATTERN(buf, 50, 34);

    /* Cut everything, header included. */
    p = spawn_peer("truncate", target, "0");
    ASSERT_EQ(wait_peer(p, 10000), 0);
    ASSERT_ERR(shml_segment_check(seg), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_read(seg, 0, buf, 1), -SHML_ETRUNCATED);
    ASSERT_ERR(shml_segment_write(seg, 0, buf, 1), -SHML_ETRUNCATED);

    /* Grown back (zero-filled), the handle works again and closes. */
    p = spawn_peer("truncate", target, shmt_fmt("%zu", full));
    ASSERT_EQ(wait_peer(p, 10000), 0);
    ASSERT_OK(shml_segment_check(seg));
    ASSERT_EQ(shml_segment_read(seg, 0, buf, sizeof buf), (ssize_t)sizeof buf);
    ASSERT_EQ(buf[0], 0);
    shml_segment_close(seg);
    signal(SIGBUS, SIG_DFL);
}

static void truncate_mapped_named(enum bk b, bool raw)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    struct shml_segment_opts o = opts_of(raw ? SHML_RAW : 0);
    ASSERT_OK(shml_segment_create(addr, 10000, &o, &seg));
    shmt_fill(shml_segment_data(seg), 10000, 34);
    truncated_while_mapped(seg, object_path(addr), raw ? 0 : 4096,
                           raw ? 10000 : managed_map_size(10000));
    if (!raw) {
        /* Its header is gone (zeros now): whoever opens it does not get a segment. */
        shml_segment *other = NULL;
        struct shml_segment_opts quick = SHML_SEGMENT_OPTS_INIT;
        quick.timeout_ns = 0;
        ASSERT_LT(shml_segment_open(addr, &quick, &other), 0);
    }
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(truncated_while_mapped_posix)
{
    truncate_mapped_named(BK_POSIX, false);
}

TEST(truncated_while_mapped_posix_raw)
{
    truncate_mapped_named(BK_POSIX, true);
}

TEST(truncated_while_mapped_file)
{
    truncate_mapped_named(BK_FILE, false);
}

TEST(truncated_while_mapped_memfd)
{
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create("memfd:shmt-trunc", 10000, NULL, &seg));
    shmt_fill(shml_segment_data(seg), 10000, 34);
    int fd = dup(shml_segment_fd(seg)); /* for the peer, without CLOEXEC */
    ASSERT_SYS(fd);
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_SHRINK)) {
        /* Sealed against shrinking: nobody can truncate it, which meets the contract too. */
        pid_t p = spawn_peer("truncate", shmt_fmt("fd:%d", fd), "0");
        ASSERT_NE(wait_peer(p, 10000), 0);
        ASSERT_OK(shml_segment_check(seg));
        uint8_t buf[64];
        ASSERT_EQ(shml_segment_read(seg, 9000, buf, sizeof buf), (ssize_t)sizeof buf);
        ASSERT_OK(shml_segment_close(seg));
    } else {
        truncated_while_mapped(seg, shmt_fmt("fd:%d", fd), 4096, managed_map_size(10000));
    }
    close(fd);
}

/*
 * Closing a managed handle whose object another process truncated to nothing: close updates
 * the attach table, which lived in the vanished header page. It must notice, not fault.
 */
static void close_after_truncation(enum bk b)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 10000, NULL, &seg));
    pid_t p = spawn_peer("truncate", object_path(addr), "0");
    ASSERT_EQ(wait_peer(p, 10000), 0);
    ASSERT_ERR(shml_segment_check(seg), -SHML_ETRUNCATED);
    signal(SIGBUS, die_on_sigbus);
    shml_segment_close(seg); /* any return value; no SIGBUS */
    signal(SIGBUS, SIG_DFL);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(close_after_truncation_posix)
{
    close_after_truncation(BK_POSIX);
}

TEST(close_after_truncation_file)
{
    close_after_truncation(BK_FILE);
}

/* ---- a creator still initialising ---- */

/* Make object `path` of a managed segment of `size` bytes whose header says INIT. */
static struct shml_hdr *make_initialising(const char *path, int is_shm, size_t size,
                                         int32_t creator, uint64_t start)
{
    int fd = is_shm ? shm_open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600)
                    : open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    uint64_t map = managed_map_size(size);
    /* Memory reserved, as docs/FORMAT.md asks of a creator (a sparse object is refused). */
    ASSERT_EQ(posix_fallocate(fd, 0, (off_t)map), 0);
    void *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    close(fd);
    hdr_make(p, size, creator, start);
    return p;
}

/* Publish READY in the header of the object at argv[0] after argv[1] milliseconds. */
PEER(publish_ready)
{
    ASSERT_EQ(argc, 2);
    int fd = open(argv[0], O_RDWR | O_CLOEXEC);
    ASSERT_SYS(fd);
    struct shml_hdr *h = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(h != MAP_FAILED);
    close(fd);
    ASSERT_EQ(parent_send("mapped"), 0);
    shmt_sleep_ms(atoi(argv[1]));
    /* Release: every other header field is final before READY (pairs with the opener). */
    atomic_store_explicit(&h->state, SHML_STATE_READY, memory_order_release);
    munmap(h, 4096);
    return 0;
}

static void waits_for_creator(enum bk b)
{
    const char *addr = new_addr(b);
    const char *path = object_path(addr);
    bool shm = b == BK_POSIX;
    struct shml_hdr *h = make_initialising(shm ? addr + 6 : path, shm, 100, getpid(),
                                           shmt_proc_start(getpid()));
    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;

    /* timeout 0: never waits. */
    o.timeout_ns = 0;
    int64_t t0 = shmt_now_ms();
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -ETIMEDOUT);
    ASSERT_LT(shmt_now_ms() - t0, 2000);

    /* 200 ms: waits that long (the creator is alive), then gives up. */
    o.timeout_ns = 200 * MS;
    t0 = shmt_now_ms();
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -ETIMEDOUT);
    int64_t waited = shmt_now_ms() - t0;
    ASSERT_GE(waited, 190);
    ASSERT_LT(waited, 10000);
    ASSERT_NULL(seg);

    /* The creator publishes READY 100 ms into a 5 s wait: the open succeeds. */
    pid_t p = spawn_peer("publish_ready", path, "100");
    ASSERT_EQ(peer_expect(p, "mapped", 10000), 0);
    o.timeout_ns = 5000 * MS;
    ASSERT_OK(shml_segment_open(addr, &o, &seg));
    ASSERT_EQ(wait_peer(p, 10000), 0);
    ASSERT_TRUE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_size(seg), 100u);
    ASSERT_OK(shml_segment_close(seg));
    munmap(h, managed_map_size(100));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(waits_for_creator_posix)
{
    waits_for_creator(BK_POSIX);
}

TEST(waits_for_creator_file)
{
    waits_for_creator(BK_FILE);
}

PEER(report_and_wait)
{
    (void)argc;
    (void)argv;
    ASSERT_EQ(parent_send("up"), 0);
    parent_expect("bye", 30000);
    return 0;
}

/* A process that existed and is gone: its pid and start time. */
static pid_t dead_process(uint64_t *start)
{
    pid_t p = spawn_peer("report_and_wait");
    ASSERT_EQ(peer_expect(p, "up", 10000), 0);
    *start = shmt_proc_start(p);
    ASSERT_GT(*start, 0u);
    ASSERT_EQ(kill_peer(p, SIGKILL), 128 + SIGKILL);
    return p;
}

TEST(creator_died_mid_init)
{
    const char *addr = new_addr(BK_POSIX);
    uint64_t start;
    pid_t dead = dead_process(&start);
    struct shml_hdr *h = make_initialising(addr + 6, 1, 100, dead, start);
    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.timeout_ns = 3000 * MS;
    /* Not a wait for someone who will never come: corrupt, at once. */
    ASSERT_ERR(shml_segment_open(addr, &o, &seg), -SHML_ECORRUPT);
    munmap(h, managed_map_size(100));
}

/*
 * FORMAT.md: POSIX and file segments appear under their name only once READY, so a blank
 * object there is foreign at once. A System V segment is visible from shmget() on: a blank one
 * is waited for while its creator lives and it is young (< 5 s), and foreign otherwise.
 */
TEST(blank_object_posix_file_is_foreign)
{
    const char *name = shmt_posix_name();
    int fd = shm_open(shmt_fmt("/%s", name), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, 8192));
    close(fd);
    const char *path = shmt_fmt("%s/blank", shmt_tmpdir());
    fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, 8192));
    close(fd);

    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.timeout_ns = 5000 * MS;
    int64_t t0 = shmt_now_ms();
    ASSERT_ERR(shml_segment_open(name, &o, &seg), -SHML_ENOTSHML);
    ASSERT_ERR(shml_segment_open(shmt_fmt("file:%s", path), &o, &seg), -SHML_ENOTSHML);
    ASSERT_LT(shmt_now_ms() - t0, 4000); /* not a wait for a creator */
}

static int blank_sysv(int32_t key)
{
    int id = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
    ASSERT_SYS(id);
    shmt_cleanup_sysv_id(id);
    return id;
}

TEST(blank_sysv_young_live_creator_is_waited_for)
{
    int32_t key = shmt_sysv_key();
    blank_sysv(key); /* we made it and live: maybe a creator between shmget and its header */
    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.timeout_ns = 200 * MS;
    int64_t t0 = shmt_now_ms();
    ASSERT_ERR(shml_segment_open(shmt_fmt("sysv:%d", key), &o, &seg), -ETIMEDOUT);
    ASSERT_GE(shmt_now_ms() - t0, 190);
}

/* Make a blank System V segment with key argv[0], print nothing, exit. */
PEER(blank_sysv_exit)
{
    ASSERT_EQ(argc, 1);
    ASSERT_SYS(shmget((key_t)strtol(argv[0], NULL, 0), 8192, IPC_CREAT | IPC_EXCL | 0600));
    return 0;
}

TEST(blank_sysv_dead_creator_is_foreign)
{
    int32_t key = shmt_sysv_key();
    pid_t p = spawn_peer("blank_sysv_exit", shmt_fmt("%d", key));
    ASSERT_EQ(wait_peer(p, 10000), 0);
    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.timeout_ns = 5000 * MS;
    int64_t t0 = shmt_now_ms();
    ASSERT_ERR(shml_segment_open(shmt_fmt("sysv:%d", key), &o, &seg), -SHML_ENOTSHML);
    ASSERT_LT(shmt_now_ms() - t0, 4000);
}

TEST_TIMEOUT(blank_sysv_old_is_foreign, 60)
{
    int32_t key = shmt_sysv_key();
    blank_sysv(key);
    shmt_sleep_ms(5500);
    shml_segment *seg = NULL;
    struct shml_segment_opts o = SHML_SEGMENT_OPTS_INIT;
    o.timeout_ns = 200 * MS;
    ASSERT_ERR(shml_segment_open(shmt_fmt("sysv:%d", key), &o, &seg), -SHML_ENOTSHML);
}
