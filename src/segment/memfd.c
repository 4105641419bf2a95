/*
 * memfd.c - the memfd backend: anonymous memory with no name in any namespace, shared by
 * inheriting the fd or passing it over a Unix socket. Its size is sealed once set, so no holder
 * of the fd can shrink it under another's mapping (no SIGBUS is possible).
 */
#include "os/os.h"
#include "segment/backend.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int memfd_create_obj(const struct shml__addr *a, uint64_t size, uint32_t mode,
                            uint32_t flags, bool hidden, struct shml__obj *o)
{
    (void)hidden; /* never named: nothing to hide */
    unsigned mfd = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    if (flags & SHML_HUGEPAGES) {
        int r = shml__hugepages_check(size);
        if (r < 0)
            return r;
        mfd |= MFD_HUGETLB;
    }
    int fd = memfd_create(a->name, mfd);
    if (fd < 0)
        return shml__fail(errno, "memfd_create: %s", shml__os_strerror(errno));
    /* Others can still reach it through /proc/PID/fd/N, where the mode is what protects it. */
    int r = shml__fd_setup(fd, mode, size, "the memfd");
    if (r == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        r = shml__fail(errno, "sealing the memfd: %s", shml__os_strerror(errno));
    if (r < 0) {
        close(fd);
        return r;
    }
    o->fd = fd;
    o->created = true;
    return 0;
}

static int memfd_open(const struct shml__addr *a, bool rdonly, struct shml__obj *o)
{
    (void)a;
    (void)rdonly;
    (void)o;
    return shml__fail(ENOTSUP, "a memfd segment has no name to open: inherit its fd or receive "
                               "it (shml_segment_recv), then call shml_segment_from_fd");
}

static int memfd_unlink(const struct shml__addr *a)
{
    (void)a;
    return shml__fail(ENOTSUP, "a memfd segment has no name to remove: it is freed with its "
                               "last fd and mapping");
}

static void memfd_discard(const struct shml__addr *a, const struct shml__obj *o)
{
    (void)a;
    (void)o;
}

const struct shml__backend shml__backend_memfd = {
    .name = "memfd",
    .create = memfd_create_obj,
    .open = memfd_open,
    .stat = shml__fd_stat,
    .map = shml__fd_map,
    .unmap = shml__fd_unmap,
    .pread = shml__fd_pread,
    .pwrite = shml__fd_pwrite,
    .sync = NULL,
    .unlink = memfd_unlink,
    .discard = memfd_discard,
    .release = shml__fd_release,
};
