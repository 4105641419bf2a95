/*
 * posix.c - the POSIX backend: shm_open() objects, which Linux keeps as files in /dev/shm.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        name = tmp;
    }
    int fd = -1;
    /* A temporary name someone took already (it is random: a squatter's guess) is retried. */
    for (int tries = 0; fd < 0 && tries < (hidden ? SHML_TMP_TRIES : 1); tries++) {
        int r = hidden ? shml__tmp_name(tmp, sizeof(tmp), "/") : 0;
        if (r < 0)
            return r;
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (fd < 0 && errno != EEXIST)
            break;
    }
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

/*
 * The name cannot be removed "if it is still this object" in one call, so it is first moved
 * aside, atomically: whatever the name held at that instant is now under a private name (a
 * segment made under the name afterwards is untouched), and is removed if it is the object
 * judged; else it is put back, never over one made meanwhile. The private name is a temporary
 * name of this process (SHML_TMP_PREFIX-PID-...), so a gc that dies between the two steps
 * leaves what the next gc removes.
 */
static int posix_remove_same(const struct shml__addr *a, const struct shml__obj *o)
{
    static _Atomic unsigned seq;
    struct stat held, now;
    if (fstat(o->fd, &held) != 0)
        return posix_error(errno, a, "removing");
    char name[sizeof(SHM_DIR) + sizeof(a->name)], aside[sizeof(SHM_DIR) + 64];
    snprintf(name, sizeof(name), SHM_DIR "%s", a->name);
    snprintf(aside, sizeof(aside), SHM_DIR "/" SHML_TMP_PREFIX "-%d-gc%u", (int)getpid(),
             atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed)); /* only unique */
    if (rename(name, aside) != 0)
        return errno == ENOENT ? -ESTALE : posix_error(errno, a, "removing");
    if (stat(aside, &now) == 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev) {
        unlink(aside);
        return 0;
    }
    if (renameat2(AT_FDCWD, aside, AT_FDCWD, name, RENAME_NOREPLACE) != 0)
        return shml__fail(EEXIST, "%s was made again twice while gc removed it; the one it "
                                  "replaced is at %s", a->canon, aside);
    return -ESTALE;
}

/* ---- inspection ---- */

static int posix_list(shml__list_fn each, void *ctx)
{
    DIR *d = opendir(SHM_DIR);
    if (!d)
        return errno == ENOENT ? 0 : shml__fail(errno, SHM_DIR ": %s", shml__os_strerror(errno));
    struct dirent *e;
    int r = 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
            continue;
        /* POSIX semaphores live here as sem.NAME: they are not shared memory objects. */
        if (strncmp(e->d_name, "sem.", 4) == 0)
            continue;
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
            continue;
        struct shml__addr a;
        memset(&a, 0, sizeof(a));
        a.backend = SHML_BACKEND_POSIX;
        a.shmid = -1;
        snprintf(a.canon, sizeof(a.canon), "posix:/%s", e->d_name);
        if (strlen(e->d_name) > SHML_NAME_MAX) {
            /* Not a name shmlink would make: describe it, don't open it. */
            struct shml_segment_info outside;
            memset(&outside, 0, sizeof(outside));
            outside.backend = SHML_BACKEND_POSIX;
            outside.creator_alive = -1;
            outside.sysv_id = -1;
            snprintf(outside.address, sizeof(outside.address), "%s", a.canon);
            char path[sizeof(SHM_DIR) + sizeof(e->d_name)];
            snprintf(path, sizeof(path), SHM_DIR "/%s", e->d_name);
            shml__fd_describe_path(path, &outside, -ENAMETOOLONG);
            r = each(ctx, &a, a.canon, &outside);
        } else {
            a.name[0] = '/';
            memcpy(a.name + 1, e->d_name, strlen(e->d_name) + 1);
            r = each(ctx, &a, a.canon, NULL);
        }
    }
    closedir(d);
    return r;
}

static int posix_describe_unopened(const struct shml__addr *a, int32_t id,
                                   struct shml_segment_info *info, int err)
{
    (void)id;
    char path[sizeof(SHM_DIR) + sizeof(a->name)];
    snprintf(path, sizeof(path), SHM_DIR "%s", a->name);
    return shml__fd_describe_path(path, info, err);
}

static int posix_mapped(const struct shml__addr *a)
{
    char path[sizeof(SHM_DIR) + sizeof(a->name)];
    snprintf(path, sizeof(path), SHM_DIR "%s", a->name);
    int r = shml__os_path_mapped(path);
    return r < 0 ? -1 : r;
}

/*
 * The descriptor of a channel endpoint (os.h, notifiers: /dev/shm/.shml-fd-PID-ID) whose
 * owner died without closing, and whose entry no endpoint has reclaimed yet: removed once its
 * pid is dead and no process holds it open for reading (a FIFO opened for writing without
 * blocking fails with ENXIO exactly then), so that an owner of another pid namespace, which
 * holds its own open, keeps it.
 */
static int gc_note(bool dry_run, const char *name, shml__tmp_fn each, void *ctx)
{
    int pid = atoi(name + strlen(SHML_NOTE_PREFIX) + 1);
    if (pid <= 0 || shml__os_proc_alive(pid, 0) != 0)
        return 0;
    char path[sizeof(SHM_DIR) + 256];
    snprintf(path, sizeof(path), SHM_DIR "/%s", name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISFIFO(st.st_mode))
        return 0;
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENXIO || (!dry_run && unlink(path) != 0))
        return 0;
    char addr[sizeof(path) + 8];
    snprintf(addr, sizeof(addr), "posix:/%s", name);
    return each(ctx, addr, pid);
}

/* Temporary objects of creators that died before publishing: /dev/shm/.shml-tmp-PID-N. */
static int posix_gc_temporaries(bool dry_run, shml__tmp_fn each, void *ctx)
{
    DIR *d = opendir(SHM_DIR);
    if (!d)
        return 0;
    struct dirent *e;
    size_t plen = strlen(SHML_TMP_PREFIX);
    int r = 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, SHML_NOTE_PREFIX "-", strlen(SHML_NOTE_PREFIX) + 1) == 0) {
            r = gc_note(dry_run, e->d_name, each, ctx);
            continue;
        }
        if (strncmp(e->d_name, SHML_TMP_PREFIX "-", plen + 1) != 0)
            continue;
        int pid = atoi(e->d_name + plen + 1);
        if (pid <= 0 || shml__os_proc_alive(pid, 0) != 0)
            continue;
        char name[sizeof(e->d_name) + 1], addr[sizeof(name) + 8];
        snprintf(name, sizeof(name), "/%s", e->d_name);
        if (!dry_run && shm_unlink(name) != 0)
            continue;
        snprintf(addr, sizeof(addr), "posix:%s", name);
        r = each(ctx, addr, pid);
    }
    closedir(d);
    return r;
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
    .remove_same = posix_remove_same,
    .release = shml__fd_release,
    .list = posix_list,
    .describe_unopened = posix_describe_unopened,
    .mapped = posix_mapped,
    .gc_temporaries = posix_gc_temporaries,
};
