/*
 * file.c - the file backend: a regular file mapped MAP_SHARED. It persists across reboots, and
 * is flushed with msync on demand (shml_segment_sync) and on close.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_error(int err, const struct shml__addr *a, const char *doing)
{
    switch (err) {
    case ENOENT:
        return shml__fail(ENOENT, "no file %s", a->path);
    case EEXIST:
        return shml__fail(EEXIST, "file %s already exists", a->path);
    case EACCES:
        return shml__fail(EACCES, "permission denied on file %s", a->path);
    default:
        return shml__fail(err, "%s file %s: %s", doing, a->path, shml__os_strerror(err));
    }
}

static int file_create(const struct shml__addr *a, uint64_t size, uint32_t mode, uint32_t flags,
                       bool hidden, struct shml__obj *o)
{
    if (flags & SHML_HUGEPAGES)
        return shml__fail(ENOTSUP, "the file backend cannot use huge pages: use sysv: or memfd: "
                                   "with huge pages");
    char tmp[PATH_MAX];
    const char *path = a->path;
    if (hidden) {
        struct stat sb;
        if (lstat(a->path, &sb) == 0)
            return file_error(EEXIST, a, "creating");
        path = tmp;
    }
    int fd = -1;
    /* A temporary name someone took already (it is random: a squatter's guess) is retried. */
    for (int tries = 0; fd < 0 && tries < (hidden ? SHML_TMP_TRIES : 1); tries++) {
        /* Beside the file, so that link() stays within one file system. */
        int r = hidden ? shml__tmp_name(tmp, sizeof(tmp), a->path) : 0;
        if (r < 0)
            return r;
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return file_error(errno, a, "creating");
    int r = shml__fd_setup(fd, mode, size, "the file");
    if (r < 0) {
        unlink(path);
        close(fd);
        return r;
    }
    o->fd = fd;
    o->created = true;
    if (hidden)
        snprintf(o->tmp, sizeof(o->tmp), "%s", tmp);
    return 0;
}

static int file_publish(const struct shml__addr *a, struct shml__obj *o)
{
    /* link() never replaces: the name appears atomically, or EEXIST. */
    if (link(o->tmp, a->path) != 0)
        return file_error(errno, a, "publishing");
    unlink(o->tmp);
    o->tmp[0] = '\0';
    return 0;
}

static int file_open(const struct shml__addr *a, bool rdonly, struct shml__obj *o)
{
    /*
     * O_NONBLOCK: a FIFO at the path must not block open() (shml__fd_check_regular); O_NOCTTY:
     * a terminal there must not become the caller's controlling terminal.
     */
    int fd = open(a->path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return file_error(errno, a, "opening");
    int r = shml__fd_check_regular(fd, a->path, "a regular file");
    if (r < 0) {
        close(fd);
        return r;
    }
    o->fd = fd;
    return 0;
}

static int file_sync(const struct shml__obj *o, void *base, size_t len)
{
    (void)o;
    if (base && msync(base, len, MS_SYNC) != 0)
        return shml__fail(errno, "msync: %s", shml__os_strerror(errno));
    return 0;
}

static int file_unlink(const struct shml__addr *a)
{
    struct stat sb;
    if (lstat(a->path, &sb) != 0)
        return file_error(errno, a, "removing");
    if (!S_ISREG(sb.st_mode))
        return shml__fail(EINVAL, "%s is not a regular file: not removed", a->path);
    if (unlink(a->path) != 0)
        return file_error(errno, a, "removing");
    return 0;
}

static void file_discard(const struct shml__addr *a, const struct shml__obj *o)
{
    unlink(o->tmp[0] ? o->tmp : a->path);
}

static int file_describe_unopened(const struct shml__addr *a, int32_t id,
                                  struct shml_segment_info *info, int err)
{
    (void)id;
    return shml__fd_describe_path(a->path, info, err);
}

const struct shml__backend shml__backend_file = {
    .name = "file",
    .create = file_create,
    .publish = file_publish,
    .open = file_open,
    .stat = shml__fd_stat,
    .map = shml__fd_map,
    .unmap = shml__fd_unmap,
    .pread = shml__fd_pread,
    .pwrite = shml__fd_pwrite,
    .sync = file_sync,
    .unlink = file_unlink,
    .discard = file_discard,
    .release = shml__fd_release,
    .describe_unopened = file_describe_unopened,
};
