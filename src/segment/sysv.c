/*
 * sysv.c - the System V backend: shmget()/shmat() segments named by key, ftok() or id.
 *
 * A System V segment cannot be resized once made, so no SIGBUS can come from a shrinking
 * object here; copies go through the mapping.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int shml__sysv_key(const struct shml__addr *a, int32_t *key)
{
    if (a->path[0] != '\0') {
        key_t k = ftok(a->path, a->proj);
        if (k == (key_t)-1)
            return shml__fail(errno, "ftok(%s, %d): %s", a->path, a->proj,
                              shml__os_strerror(errno));
        *key = (int32_t)k;
        return 0;
    }
    *key = a->key;
    return 0;
}

/* Resolve the key of a key or ftok address. */
static int sysv_key(const struct shml__addr *a, key_t *key)
{
    int32_t k = 0;
    int r = shml__sysv_key(a, &k);
    *key = (key_t)k;
    return r;
}

static int sysv_error(int err, const struct shml__addr *a, const char *doing)
{
    switch (err) {
    case ENOENT:
        return shml__fail(ENOENT, "no System V segment %s (see ipcs -m)", a->canon);
    case EEXIST:
        return shml__fail(EEXIST, "System V segment %s already exists", a->canon);
    case EACCES:
        return shml__fail(EACCES, "permission denied on System V segment %s", a->canon);
    case EINVAL:
        return shml__fail(EINVAL, "%s System V segment %s: size outside SHMMIN..SHMMAX, or the "
                                  "existing segment is smaller",
                          doing, a->canon);
    case ENOSPC:
        return shml__fail(ENOSPC, "%s System V segment %s: the system's limits on shared memory "
                                  "(kernel.shmall, kernel.shmmni) are reached",
                          doing, a->canon);
    default:
        return shml__fail(err, "%s System V segment %s: %s", doing, a->canon,
                          shml__os_strerror(err));
    }
}

static int sysv_create(const struct shml__addr *a, uint64_t size, uint32_t mode, uint32_t flags,
                       bool hidden, struct shml__obj *o)
{
    (void)hidden; /* no publish: a System V segment is visible from shmget() on */
    if (a->has_id)
        return shml__fail(EINVAL, "sysv:id= names an existing segment; create with a key "
                                  "(sysv:0x1234) or ftok path (sysv:/path#1)");
    key_t key;
    int r = sysv_key(a, &key);
    if (r < 0)
        return r;
    if (size > (uint64_t)SIZE_MAX)
        return shml__fail(EOVERFLOW, "size too large");
    int shmflg = IPC_CREAT | IPC_EXCL | (int)(mode & 0777);
    if (flags & SHML_HUGEPAGES) {
        r = shml__hugepages_check(size);
        if (r < 0)
            return r;
        shmflg |= SHM_HUGETLB;
    }
    /*
     * System V memory is accounted at shmget() against kernel.shmall and the overcommit policy
     * (unless SHM_NORESERVE), and the object can never shrink: nothing more to reserve.
     */
    int id = shmget(key, (size_t)size, shmflg);
    if (id < 0)
        return sysv_error(errno, a, "creating");
    o->shmid = id;
    o->created = true;
    return 0;
}

static int sysv_open(const struct shml__addr *a, bool rdonly, struct shml__obj *o)
{
    (void)rdonly; /* permission is checked at shmat() */
    int id;
    if (a->has_id) {
        struct shmid_ds ds;
        if (shmctl(a->shmid, IPC_STAT, &ds) != 0) {
            if (errno == EINVAL || errno == EIDRM)
                return shml__fail(ENOENT, "no System V segment with id %d (see ipcs -m)",
                                  a->shmid);
            return sysv_error(errno, a, "opening");
        }
        id = a->shmid;
    } else {
        key_t key;
        int r = sysv_key(a, &key);
        if (r < 0)
            return r;
        id = shmget(key, 0, 0);
        if (id < 0)
            return sysv_error(errno, a, "opening");
    }
    o->shmid = id;
    return 0;
}

static int sysv_stat(const struct shml__obj *o, struct shml__objstat *st)
{
    struct shmid_ds ds;
    if (shmctl(o->shmid, IPC_STAT, &ds) != 0)
        return errno == EINVAL || errno == EIDRM ? -ENOENT : -errno;
    st->size = (uint64_t)ds.shm_segsz;
    st->mode = (uint32_t)(ds.shm_perm.mode & 0777);
    st->uid = (uint32_t)ds.shm_perm.uid;
    st->ctime_ns = (int64_t)ds.shm_ctime * 1000000000;
    st->cpid = (int32_t)ds.shm_cpid;
    st->nattch = (int32_t)ds.shm_nattch;
    st->unbacked = 0; /* its memory is charged at shmget(); no holes can be made in it */
    return 0;
}

static int sysv_map(const struct shml__obj *o, size_t len, bool rdonly, uint32_t flags, void **base)
{
    (void)len; /* shmat maps the whole segment */
    void *p = shmat(o->shmid, NULL, rdonly ? SHM_RDONLY : 0);
    if (p == (void *)-1) {
        int err = errno;
        if (err == EACCES)
            return shml__fail(EACCES, "permission denied attaching System V segment id %d",
                              o->shmid);
        if (err == EINVAL || err == EIDRM)
            return shml__fail(ENOENT, "System V segment id %d was removed", o->shmid);
        return shml__fail(err, "shmat: %s", shml__os_strerror(err));
    }
    if (flags & SHML_PREFAULT) {
        /* shmat has no MAP_POPULATE: read one byte per page (writing would dirty them). */
        size_t page = shml__os_page_size();
        const volatile char *c = p;
        for (size_t off = 0; off < len; off += page)
            (void)c[off];
    }
    *base = p;
    return 0;
}

static void sysv_unmap(const struct shml__obj *o, void *base, size_t len)
{
    (void)o;
    (void)len;
    if (base)
        shmdt(base);
}

static ssize_t sysv_pread(const struct shml__obj *o, void *base, uint64_t off, void *buf,
                          size_t len)
{
    void *p = base;
    if (!p) {
        p = shmat(o->shmid, NULL, SHM_RDONLY);
        if (p == (void *)-1)
            return -errno;
    }
    memcpy(buf, (const char *)p + off, len);
    if (!base)
        shmdt(p);
    return (ssize_t)len;
}

static ssize_t sysv_pwrite(const struct shml__obj *o, void *base, uint64_t off, const void *buf,
                           size_t len)
{
    (void)o;
    if (!base)
        return -EBADF;
    memcpy((char *)base + off, buf, len);
    return (ssize_t)len;
}

static int sysv_unlink(const struct shml__addr *a)
{
    struct shml__obj o = {.fd = -1, .shmid = -1};
    int r = sysv_open(a, true, &o);
    if (r < 0)
        return r;
    if (shmctl(o.shmid, IPC_RMID, NULL) != 0)
        return sysv_error(errno == EPERM ? EPERM : errno, a, "removing");
    return 0;
}

static void sysv_discard(const struct shml__addr *a, const struct shml__obj *o)
{
    (void)a;
    if (o->shmid >= 0)
        shmctl(o->shmid, IPC_RMID, NULL);
}

static int sysv_remove_same(const struct shml__addr *a, const struct shml__obj *o)
{
    /* By id: a segment made since under the same key has another id, and stays. */
    if (shmctl(o->shmid, IPC_RMID, NULL) != 0)
        return errno == EINVAL || errno == EIDRM ? -ESTALE : sysv_error(errno, a, "removing");
    return 0;
}

static void sysv_release(struct shml__obj *o)
{
    o->shmid = -1;
}

const struct shml__backend shml__backend_sysv = {
    .name = "sysv",
    .create = sysv_create,
    .open = sysv_open,
    .stat = sysv_stat,
    .map = sysv_map,
    .unmap = sysv_unmap,
    .pread = sysv_pread,
    .pwrite = sysv_pwrite,
    .sync = NULL,
    .unlink = sysv_unlink,
    .discard = sysv_discard,
    .remove_same = sysv_remove_same,
    .release = sysv_release,
};
