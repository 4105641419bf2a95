/*
 * posix.c - the POSIX backend: shm_open() objects, which Linux keeps as files in /dev/shm.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int posix_error(int err, const struct shml__addr *a, const char *doing)
{
    switch (err) {
    case ENOENT:
        return shml__fail(ENOENT, "no POSIX shared memory object %s (see /dev/shm)", a->name);
    case EEXIST:
        return shml__fail(EEXIST, "POSIX object %s already exists", a->name);
    case EACCES:
        return shml__fail(EACCES, "permission denied on POSIX object %s", a->name);
    default:
        return shml__fail(err, "%s POSIX object %s: %s", doing, a->name, shml__os_strerror(err));
    }
}

/* Where shm_open() keeps its objects on Linux, so that a name can be linked to another. */
#define SHM_DIR "/dev/shm"

static int posix_create(const struct shml__addr *a, uint64_t size, uint32_t mode, uint32_t flags,
                        bool hidden, struct shml__obj *o)
{
    if (flags & SHML_HUGEPAGES)
        return shml__fail(ENOTSUP, "the posix backend cannot use huge pages (/dev/shm is not "
                                   "hugetlbfs): use sysv: or memfd: with huge pages");
    char tmp[64];
    const char *name = a->name;
    if (hidden) {
        /* Fail before reserving memory if the name is taken (publish checks again). */
        char path[sizeof(SHM_DIR) + sizeof(a->name)];
        snprintf(path, sizeof(path), SHM_DIR "%s", a->name);
        if (access(path, F_OK) == 0)
            return posix_error(EEXIST, a, "creating");
        int r = shml__tmp_name(tmp, sizeof(tmp), "/");
        if (r < 0)
            return r;
        name = tmp;
    }
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return posix_error(errno, a, "creating");
    int r = shml__fd_setup(fd, mode, size, "the POSIX object in /dev/shm");
    if (r < 0) {
        shm_unlink(name);
        close(fd);
        return r;
    }
    o->fd = fd;
    o->created = true;
    if (hidden)
        snprintf(o->tmp, sizeof(o->tmp), "%s", tmp);
    return 0;
}

static int posix_publish(const struct shml__addr *a, struct shml__obj *o)
{
    char from[sizeof(SHM_DIR) + sizeof(o->tmp)], to[sizeof(SHM_DIR) + sizeof(a->name)];
    snprintf(from, sizeof(from), SHM_DIR "%s", o->tmp);
    snprintf(to, sizeof(to), SHM_DIR "%s", a->name);
    /* link() never replaces: the name appears atomically, or EEXIST. */
    if (link(from, to) != 0)
        return posix_error(errno, a, "publishing");
    shm_unlink(o->tmp);
    o->tmp[0] = '\0';
    return 0;
}

static int posix_open(const struct shml__addr *a, bool rdonly, struct shml__obj *o)
{
    /* O_NONBLOCK: a FIFO at the name must not block open() (shml__fd_check_regular). */
    int fd = shm_open(a->name, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK, 0);
    if (fd < 0)
        return posix_error(errno, a, "opening");
    char path[sizeof(SHM_DIR) + sizeof(a->name)];
    snprintf(path, sizeof(path), SHM_DIR "%s", a->name);
    int r = shml__fd_check_regular(fd, path, "a shared-memory object");
    if (r < 0) {
        close(fd);
        return r;
    }
    o->fd = fd;
    return 0;
}

static int posix_unlink(const struct shml__addr *a)
{
    if (shm_unlink(a->name) != 0)
        return posix_error(errno, a, "removing");
    return 0;
}

static void posix_discard(const struct shml__addr *a, const struct shml__obj *o)
{
    shm_unlink(o->tmp[0] ? o->tmp : a->name);
}

const struct shml__backend shml__backend_posix = {
    .name = "posix",
    .create = posix_create,
    .publish = posix_publish,
    .open = posix_open,
    .stat = shml__fd_stat,
    .map = shml__fd_map,
    .unmap = shml__fd_unmap,
    .pread = shml__fd_pread,
    .pwrite = shml__fd_pwrite,
    .sync = NULL,
    .unlink = posix_unlink,
    .discard = posix_discard,
    .release = shml__fd_release,
};
