/*
 * fd_common.c - what the fd-backed backends (posix, file, memfd) share: sizing with memory
 * reserved up front, mapping, and copies through the fd that survive a truncated object.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int shml__hugepages_check(uint64_t size)
{
    long free_pages = shml__os_hugepages_free();
    uint64_t hp = shml__os_hugepage_size();
    if (hp == 0)
        return shml__fail(ENOMEM, "this system has no huge pages");
    uint64_t need = size / hp + (size % hp != 0);
    if (free_pages < 0 || (uint64_t)free_pages < need)
        return shml__fail(ENOMEM, "%llu huge pages of %llu bytes needed, %ld free "
                                  "(HugePages_Free): reserve them with sysctl vm.nr_hugepages=N",
                          (unsigned long long)need, (unsigned long long)hp,
                          free_pages < 0 ? 0 : free_pages);
    return 0;
}

/* Size the object and reserve every byte of it. */
static int fd_reserve(int fd, uint64_t size, const char *what)
{
    if (size > (uint64_t)INT64_MAX)
        return shml__fail(EOVERFLOW, "size %llu does not fit a file offset",
                          (unsigned long long)size);
    /*
     * Growing a file past RLIMIT_FSIZE raises SIGXFSZ, which kills the process by default: check
     * the limit first so the caller gets an error instead of a signal.
     */
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && size > rl.rlim_cur)
        return shml__fail(EFBIG, "%s of %llu bytes exceeds the file size limit (RLIMIT_FSIZE, "
                                 "ulimit -f) of %llu bytes",
                          what, (unsigned long long)size, (unsigned long long)rl.rlim_cur);
    /*
     * Reserve every block now: on tmpfs and most file systems a sparse file maps fine and then
     * raises SIGBUS on first touch of a page that no longer fits. fallocate() fails instead.
     */
    int r;
    do {
        r = fallocate(fd, 0, 0, (off_t)size);
    } while (r != 0 && errno == EINTR);
    if (r != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        /* No fallocate here (some file systems): size it and let libc write the blocks. */
        if (ftruncate(fd, (off_t)size) != 0)
            r = errno;
        else
            r = posix_fallocate(fd, 0, (off_t)size);
        errno = r;
        r = r ? -1 : 0;
    }
    if (r == 0)
        return 0;
    int err = errno;
    if (err == ENOSPC) {
        struct statvfs vfs;
        unsigned long long avail = 0;
        if (fstatvfs(fd, &vfs) == 0)
            avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
        return shml__fail(ENOSPC, "not enough room for %s: %llu bytes asked, %llu free (for "
                                  "/dev/shm in a container, raise its shm size, e.g. docker "
                                  "--shm-size)",
                          what, (unsigned long long)size, avail);
    }
    if (err == EFBIG)
        return shml__fail(EFBIG, "%s of %llu bytes is larger than the file system allows", what,
                          (unsigned long long)size);
    return shml__fail(err, "reserving %llu bytes for %s: %s", (unsigned long long)size, what,
                      shml__os_strerror(err));
}

int shml__fd_setup(int fd, uint32_t mode, uint64_t size, const char *what)
{
    if (fchmod(fd, (mode_t)mode) != 0)
        return shml__fail(errno, "setting the mode of %s: %s", what, shml__os_strerror(errno));
    return fd_reserve(fd, size, what);
}

/* What a file of type `mode` is, for an error detail. */
static const char *file_type_name(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISSOCK(mode))
        return "a socket";
    return "of an unknown file type";
}

int shml__fd_check_regular(int fd, const char *path, const char *expected)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return shml__fail(errno, "stat %s: %s", path, shml__os_strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return shml__fail(EINVAL, "%s is %s, not %s", path, file_type_name(sb.st_mode),
                          expected);
    /* Back to blocking mode: the descriptor is handed out (shml_segment_fd) and duplicated. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
        return shml__fail(errno, "fcntl %s: %s", path, shml__os_strerror(errno));
    return 0;
}

int shml__fd_stat(const struct shml__obj *o, struct shml__objstat *st)
{
    struct stat sb;
    if (fstat(o->fd, &sb) != 0)
        return -errno;
    st->size = (uint64_t)sb.st_size;
    st->mode = (uint32_t)(sb.st_mode & 07777);
    st->uid = (uint32_t)sb.st_uid;
    st->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
    st->cpid = 0;
    st->nattch = -1;
    st->unbacked = shml__os_fd_unbacked(o->fd, st->size);
    st->sysv_id = -1;
    st->sysv_key = 0;
    return 0;
}

int shml__fd_describe_path(const char *path, struct shml_segment_info *info, int err)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        info->object_size = (uint64_t)sb.st_size;
        info->size = info->object_size;
        info->mode = (uint32_t)(sb.st_mode & 07777);
        info->uid = (uint32_t)sb.st_uid;
        info->created_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
    }
    info->status = err;
    return info->mode || info->object_size ? 0 : err;
}

int shml__fd_map(const struct shml__obj *o, size_t len, bool rdonly, uint32_t flags, void **base)
{
    int prot = rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
    int mflags = MAP_SHARED;
    if (flags & SHML_PREFAULT)
        mflags |= MAP_POPULATE;
    void *p = mmap(NULL, len, prot, mflags, o->fd, 0);
    if (p == MAP_FAILED)
        return shml__fail(errno, "mmap of %zu bytes: %s", len, shml__os_strerror(errno));
    *base = p;
    return 0;
}

void shml__fd_unmap(const struct shml__obj *o, void *base, size_t len)
{
    (void)o;
    if (base)
        munmap(base, len);
}

ssize_t shml__fd_pread(const struct shml__obj *o, void *base, uint64_t off, void *buf, size_t len)
{
    (void)base;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(o->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return shml__fail(SHML_ETRUNCATED, "object ends at %llu bytes: another process "
                                               "truncated it",
                              (unsigned long long)(off + done));
        done += (size_t)n;
    }
    return (ssize_t)done;
}

ssize_t shml__fd_pwrite(const struct shml__obj *o, void *base, uint64_t off, const void *buf,
                        size_t len)
{
    /* pwrite() past the end would silently grow a truncated object again: check first. */
    struct shml__objstat st;
    int r = shml__fd_stat(o, &st);
    if (r < 0)
        return r;
    if (off + len > st.size)
        return shml__fail(SHML_ETRUNCATED, "object is %llu bytes: another process truncated it",
                          (unsigned long long)st.size);
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(o->fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && base != NULL && done == 0) {
            /* hugetlbfs has no write(): copy through the mapping (it cannot be truncated). */
            memcpy((char *)base + off, buf, len);
            return (ssize_t)len;
        }
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int shml__tmp_name(char *buf, size_t cap, const char *before)
{
    /*
     * The pid (gc removes the names of dead pids) and 64 unpredictable bits: a name another
     * user could guess and take first would make create fail with a false "exists".
     */
    uint64_t n;
    int r = shml__os_random(&n, sizeof n);
    if (r < 0)
        return shml__fail(-r, "no random bytes for a temporary name: %s", shml__os_strerror(-r));
    int len = snprintf(buf, cap, "%s%s-%d-%016llx", before, SHML_TMP_PREFIX, (int)shml__os_pid(),
                       (unsigned long long)n);
    if (len < 0 || (size_t)len >= cap)
        return shml__fail(ENAMETOOLONG, "no room for a temporary name beside %s", before);
    return 0;
}

void shml__fd_release(struct shml__obj *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
}
