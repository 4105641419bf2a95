/*
 * Something other than a regular file at an address (a FIFO someone made with mkfifo in
 * /dev/shm or at a file: path, a device): every call that opens it fails at once with -EINVAL
 * naming the path and what it is, instead of blocking in open() until a writer comes (which a
 * FIFO opened for reading does), and shml_segment_list() is not held up by it either.
 * Each test is bounded at 20 s, so an open that blocks fails it by timing out.
 */
#include "seg_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


/* A FIFO at a fresh posix: or file: address, registered for removal first (a test killed by
   its timeout still leaves nothing). */
static const char *fifo_addr(enum bk b)
{
    const char *addr = new_addr(b);
    ASSERT_SYS(mkfifo(object_path(addr), 0600));
    return addr;
}

/* The last error names the object's path and what it is. */
static void expect_detail(const char *path, const char *what)
{
    const char *e = shml_last_error();
    if (!strstr(e, path) || !strstr(e, what))
        shmt_fail(__FILE__, __LINE__, "error detail '%s' does not name %s and '%s'", e, path,
                  what);
}

/* Every opening call on `addr` fails with -EINVAL, saying `path` is `what`. */
static void expect_refused(const char *addr, const char *path, const char *what)
{
    static const uint32_t flags[] = {SHML_RDONLY, SHML_RDONLY | SHML_RAW, 0, SHML_RAW,
                                     SHML_RDONLY | SHML_WAIT};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct shml_segment_opts o = opts_of(flags[i]);
        o.timeout_ns = 2000000000; /* 2 s: the refusal comes before any wait */
        shml_segment *seg = NULL;
        int r = shml_segment_open(addr, &o, &seg);
        if (r != -EINVAL)
            shmt_fail(__FILE__, __LINE__, "open %s with flags 0x%x: %d (%s), not -EINVAL", addr,
                      (unsigned)flags[i], r, shml_last_error());
        ASSERT_NULL(seg);
        expect_detail(path, what);
    }
    struct shml_segment_info info;
    ASSERT_ERR(shml_segment_stat(addr, &info, NULL, 0, NULL), -EINVAL);
    expect_detail(path, what);
    /* Creating over it is refused as over anything else that exists. */
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_create(addr, 4096, NULL, &seg), -EEXIST);
    ASSERT_NULL(seg);
}

TEST_TIMEOUT(fifo_posix_refused, 20)
{
    const char *addr = fifo_addr(BK_POSIX);
    expect_refused(addr, object_path(addr), "is a FIFO");
    struct stat sb;
    ASSERT_SYS(lstat(object_path(addr), &sb));
    ASSERT_TRUE(S_ISFIFO(sb.st_mode)); /* looked at, not touched */
}

TEST_TIMEOUT(fifo_file_refused, 20)
{
    const char *addr = fifo_addr(BK_FILE);
    expect_refused(addr, object_path(addr), "is a FIFO");
}

TEST_TIMEOUT(device_file_refused, 20)
{
    struct stat sb;
    if (stat("/dev/null", &sb) != 0 || !S_ISCHR(sb.st_mode))
        SKIP("no /dev/null character device here");
    struct shml_segment_opts o = opts_of(SHML_RDONLY | SHML_RAW);
    shml_segment *seg = NULL;
    ASSERT_ERR(shml_segment_open("file:/dev/null", &o, &seg), -EINVAL);
    expect_detail("/dev/null", "is a character device");
    struct shml_segment_info info;
    ASSERT_ERR(shml_segment_stat("file:/dev/null", &info, NULL, 0, NULL), -EINVAL);
    expect_detail("/dev/null", "is a character device");
}

TEST_TIMEOUT(fifo_not_listed_as_segment, 20)
{
    const char *addr = fifo_addr(BK_POSIX);
    for (uint32_t flags = 0; flags <= SHML_LIST_ALL; flags += SHML_LIST_ALL) {
        struct shml_segment_info *v = NULL;
        size_t n = 0;
        ASSERT_OK(shml_segment_list(flags, &v, &n));
        /* Listed or not (it is no shared-memory object), it is never a usable segment. */
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].address, addr) == 0 && (v[i].status == 0 || v[i].shmlink))
                shmt_fail(__FILE__, __LINE__, "%s listed as a segment (status %d)", addr,
                          v[i].status);
        shml_free(v);
    }
}
