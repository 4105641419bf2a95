/*
 * Round trips over every backend: the test creates a managed segment and writes a pattern, a
 * peer process opens it by address (or receives its fd), checks the pattern and writes another
 * one back, and the test checks that. Memfd segments travel by fd inheritance and by
 * shml_segment_send()/shml_segment_recv() over a Unix socket.
 */
#include "seg_util.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define RT_SIZE 10000u /* not a page multiple, more than two pages */

/* Open `addr`, check `size` and pattern `seed_in`, write pattern `seed_out`, close. */
PEER(verify_and_write)
{
    ASSERT_EQ(argc, 4);
    const char *addr = argv[0];
    size_t size = strtoul(argv[1], NULL, 10);
    unsigned seed_in = (unsigned)atoi(argv[2]), seed_out = (unsigned)atoi(argv[3]);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_TRUE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_size(seg), size);
    ASSERT_PATTERN(shml_segment_data(seg), size, seed_in);
    shmt_fill(shml_segment_data(seg), size, seed_out);
    ASSERT_OK(shml_segment_close(seg));
    return 0;
}

static void roundtrip(enum bk b, bool by_id)
{
    const char *addr = new_addr(b);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, RT_SIZE, NULL, &seg));
    ASSERT_NOT_NULL(seg);
    ASSERT_TRUE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_size(seg), RT_SIZE);
    ASSERT_EQ(shml_segment_backend(seg), bk_backend(b));
    uint8_t *d = shml_segment_data(seg);
    ASSERT_NOT_NULL(d);
    ASSERT_EQ((uintptr_t)d % 4096, 0u); /* data starts page-aligned after the header */
    for (size_t i = 0; i < RT_SIZE; i++)
        ASSERT_EQ(d[i], 0); /* a new segment is zero */

    const char *canon = shml_segment_address(seg);
    ASSERT_NOT_NULL(canon);
    if (b == BK_POSIX || b == BK_FILE)
        ASSERT_STR_EQ(canon, addr);
    else
        ASSERT_EQ(strncmp(canon, "sysv:", 5), 0);

    shmt_fill(d, RT_SIZE, 1);
    const char *peer_addr = addr;
    if (by_id) {
        int32_t id = addr_sysv_id(addr);
        ASSERT_GE(id, 0);
        peer_addr = shmt_fmt("sysv:id=%d", id);
    }
    pid_t p = spawn_peer("verify_and_write", peer_addr, shmt_fmt("%u", RT_SIZE), "1", "2");
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_PATTERN(d, RT_SIZE, 2);
    /* Also through the copy API. */
    uint8_t *buf = malloc(RT_SIZE);
    ASSERT_NOT_NULL(buf);
    ASSERT_EQ(shml_segment_read(seg, 0, buf, RT_SIZE), (ssize_t)RT_SIZE);
    ASSERT_PATTERN(buf, RT_SIZE, 2);
    free(buf);
    ASSERT_OK(shml_segment_close(seg));

    /* The segment outlives its handles until unlinked. */
    ASSERT_OK(shml_segment_open(addr, NULL, &seg));
    ASSERT_PATTERN(shml_segment_data(seg), RT_SIZE, 2);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
    ASSERT_ERR(shml_segment_open(addr, NULL, &seg), -ENOENT);
    ASSERT_ERR(shml_segment_unlink(addr), -ENOENT);
}

TEST(roundtrip_posix)
{
    roundtrip(BK_POSIX, false);
}

TEST(roundtrip_sysv_key)
{
    roundtrip(BK_SYSV_KEY, false);
}

TEST(roundtrip_sysv_ftok)
{
    roundtrip(BK_SYSV_FTOK, false);
}

TEST(roundtrip_sysv_id)
{
    roundtrip(BK_SYSV_KEY, true);
}

TEST(roundtrip_file)
{
    roundtrip(BK_FILE, false);
}

TEST(posix_bare_name_is_canonicalised)
{
    const char *name = shmt_posix_name();
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(name, 100, NULL, &seg));
    ASSERT_STR_EQ(shml_segment_address(seg), shmt_fmt("posix:/%s", name));
    struct stat st;
    ASSERT_SYS(stat(shmt_fmt("/dev/shm/%s", name), &st));
    ASSERT_OK(shml_segment_close(seg));
    /* All three spellings name the same object. */
    ASSERT_OK(shml_segment_open(shmt_fmt("posix:%s", name), NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_open(shmt_fmt("posix:/%s", name), NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(name));
}

TEST(file_persists_and_is_flushed)
{
    const char *addr = new_addr(BK_FILE);
    const char *path = object_path(addr);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, RT_SIZE, NULL, &seg));
    shmt_fill(shml_segment_data(seg), RT_SIZE, 9);
    ASSERT_OK(shml_segment_sync(seg));
    ASSERT_OK(shml_segment_close(seg));

    /* The file holds header + data, readable by plain read(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(fd);
    struct stat st;
    ASSERT_SYS(fstat(fd, &st));
    ASSERT_EQ((uint64_t)st.st_size, managed_map_size(RT_SIZE));
    uint8_t *buf = malloc(RT_SIZE);
    ASSERT_NOT_NULL(buf);
    ASSERT_EQ(pread(fd, buf, 8, 0), 8);
    ASSERT_MEM_EQ(buf, "SHMLINK\0", 8);
    ASSERT_EQ(pread(fd, buf, RT_SIZE, 4096), (ssize_t)RT_SIZE);
    ASSERT_PATTERN(buf, RT_SIZE, 9);
    close(fd);
    free(buf);
    ASSERT_OK(shml_segment_unlink(addr));
    ASSERT_EQ(access(path, F_OK), -1);
}

TEST(file_relative_path_is_made_absolute)
{
    const char *dir = shmt_tmpdir();
    ASSERT_SYS(chdir(dir));
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create("file:rel.seg", 100, NULL, &seg));
    ASSERT_STR_EQ(shml_segment_address(seg), shmt_fmt("file:%s/rel.seg", dir));
    ASSERT_OK(shml_segment_close(seg));
    /* The address means the same file from anywhere once resolved. */
    ASSERT_SYS(chdir("/"));
    ASSERT_OK(shml_segment_open(shmt_fmt("file:%s/rel.seg", dir), NULL, &seg));
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_ERR(shml_segment_open("file:rel.seg", NULL, &seg), -ENOENT); /* relative to "/" now */
    ASSERT_OK(shml_segment_unlink(shmt_fmt("file:%s/rel.seg", dir)));
}

/* ---- memfd ---- */

/* Open the segment behind inherited fd argv[0], check and write back like verify_and_write. */
PEER(verify_fd)
{
    ASSERT_EQ(argc, 5);
    int fd = atoi(argv[0]);
    size_t size = strtoul(argv[1], NULL, 10);
    unsigned seed_in = (unsigned)atoi(argv[2]), seed_out = (unsigned)atoi(argv[3]);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_from_fd(fd, NULL, &seg));
    ASSERT_TRUE(shml_segment_is_managed(seg));
    ASSERT_EQ(shml_segment_backend(seg), SHML_BACKEND_MEMFD);
    ASSERT_STR_EQ(shml_segment_address(seg), argv[4]);
    ASSERT_EQ(shml_segment_size(seg), size);
    ASSERT_PATTERN(shml_segment_data(seg), size, seed_in);
    shmt_fill(shml_segment_data(seg), size, seed_out);
    ASSERT_OK(shml_segment_close(seg));
    /* The fd was duplicated: ours is still open. */
    ASSERT_NE(fcntl(fd, F_GETFD), -1);
    close(fd);
    return 0;
}

TEST(roundtrip_memfd_inherited_fd)
{
    const char *addr = "memfd:shmt-inherit";
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, RT_SIZE, NULL, &seg));
    ASSERT_EQ(shml_segment_backend(seg), SHML_BACKEND_MEMFD);
    ASSERT_STR_EQ(shml_segment_address(seg), addr);
    ASSERT_TRUE(shml_segment_is_managed(seg));
    shmt_fill(shml_segment_data(seg), RT_SIZE, 3);
    int fd = shml_segment_fd(seg);
    ASSERT_GE(fd, 0);
    int child_fd = dup(fd); /* without FD_CLOEXEC, so it crosses exec */
    ASSERT_SYS(child_fd);
    pid_t p = spawn_peer("verify_fd", shmt_fmt("%d", child_fd), shmt_fmt("%u", RT_SIZE), "3", "4",
                         addr);
    close(child_fd);
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_PATTERN(shml_segment_data(seg), RT_SIZE, 4);
    ASSERT_OK(shml_segment_close(seg));
}

/* Receive a segment on socket argv[0], check it, write back, tell the test "done". */
PEER(recv_and_write)
{
    ASSERT_EQ(argc, 5);
    int sock = atoi(argv[0]);
    size_t size = strtoul(argv[1], NULL, 10);
    unsigned seed_in = (unsigned)atoi(argv[2]), seed_out = (unsigned)atoi(argv[3]);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_recv(sock, NULL, 10 * 1000000000LL, &seg));
    ASSERT_EQ(shml_segment_backend(seg), SHML_BACKEND_MEMFD);
    ASSERT_STR_EQ(shml_segment_address(seg), argv[4]);
    ASSERT_EQ(shml_segment_size(seg), size);
    ASSERT_PATTERN(shml_segment_data(seg), size, seed_in);
    shmt_fill(shml_segment_data(seg), size, seed_out);
    ASSERT_OK(shml_segment_close(seg));
    close(sock);
    return 0;
}

TEST(roundtrip_memfd_send_recv)
{
    const char *addr = "memfd:shmt-sent";
    int sv[2];
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)); /* no CLOEXEC: sv[1] goes to the peer */
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, RT_SIZE, NULL, &seg));
    shmt_fill(shml_segment_data(seg), RT_SIZE, 5);
    pid_t p = spawn_peer("recv_and_write", shmt_fmt("%d", sv[1]), shmt_fmt("%u", RT_SIZE), "5",
                         "6", addr);
    close(sv[1]);
    ASSERT_OK(shml_segment_send(sv[0], seg));
    ASSERT_EQ(wait_peer(p, 20000), 0);
    ASSERT_PATTERN(shml_segment_data(seg), RT_SIZE, 6);
    close(sv[0]);
    ASSERT_OK(shml_segment_close(seg));
}

TEST(roundtrip_posix_send_recv)
{
    /* Any fd-backed segment can be passed, not only memfd ones. */
    const char *addr = new_addr(BK_POSIX);
    int sv[2];
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, RT_SIZE, NULL, &seg));
    shmt_fill(shml_segment_data(seg), RT_SIZE, 7);
    ASSERT_OK(shml_segment_send(sv[0], seg));
    shml_segment *got = NULL;
    ASSERT_OK(shml_segment_recv(sv[1], NULL, 5 * 1000000000LL, &got));
    ASSERT_STR_EQ(shml_segment_address(got), addr);
    ASSERT_EQ(shml_segment_backend(got), SHML_BACKEND_POSIX);
    ASSERT_PATTERN(shml_segment_data(got), RT_SIZE, 7);
    ASSERT_OK(shml_segment_close(got));
    ASSERT_OK(shml_segment_close(seg));
    close(sv[0]);
    close(sv[1]);
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(recv_errors)
{
    int sv[2];
    shml_segment *seg = NULL;
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    /* Nothing sent: a bounded wait. */
    int64_t t0 = shmt_now_ms();
    ASSERT_ERR(shml_segment_recv(sv[1], NULL, 100 * 1000000LL, &seg), -ETIMEDOUT);
    int64_t waited = shmt_now_ms() - t0;
    ASSERT_GE(waited, 90);
    ASSERT_LT(waited, 10000);
    /* Zero timeout: a poll. */
    ASSERT_ERR(shml_segment_recv(sv[1], NULL, 0, &seg), -ETIMEDOUT);
    /* Bytes without an fd. */
    ASSERT_EQ(write(sv[0], "hello, this is not a segment", 28), 28);
    ASSERT_ERR(shml_segment_recv(sv[1], NULL, 1000 * 1000000LL, &seg), -EPROTO);
    close(sv[0]);
    close(sv[1]);

    /* The peer went away. */
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    close(sv[0]);
    ASSERT_ERR(shml_segment_recv(sv[1], NULL, 1000 * 1000000LL, &seg), -ECONNRESET);
    close(sv[1]);
}

TEST(memfd_has_no_name_to_open)
{
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open("memfd:shmt-nothing", NULL, &seg), -ENOTSUP);
    ASSERT_ERR(shml_segment_unlink("memfd:shmt-nothing"), -ENOTSUP);
}

TEST(sysv_has_no_fd)
{
    const char *addr = new_addr(BK_SYSV_KEY);
    shml_segment *seg = NULL;
    ASSERT_OK(shml_segment_create(addr, 100, NULL, &seg));
    ASSERT_ERR(shml_segment_fd(seg), -ENOTSUP);
    int sv[2];
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_ERR(shml_segment_send(sv[0], seg), -ENOTSUP);
    close(sv[0]);
    close(sv[1]);
    ASSERT_OK(shml_segment_close(seg));
    ASSERT_OK(shml_segment_unlink(addr));
}

TEST(from_fd_bad_fd)
{
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_from_fd(-1, NULL, &seg), -EBADF);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(fd);
    close(fd);
    ASSERT_ERR(shml_segment_from_fd(fd, NULL, &seg), -EBADF);
}

TEST(close_null)
{
    ASSERT_EQ(shml_segment_close(NULL), 0);
}
