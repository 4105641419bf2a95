/*
 * sysv.c - the System V backend: shmget()/shmat() segments named by key, ftok() or id.
 *
 * A System V segment cannot be resized once made, so no SIGBUS can come from a shrinking
 * object here; copies go through the mapping.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

/* The kernel's table of System V segments, readable by anyone. */
#define SYSV_TABLE "/proc/sysvipc/shm"

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
    st->sysv_id = o->shmid;
    st->sysv_key = (uint32_t)ds.shm_perm.__key;
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
    struct shml__obj o = SHML__OBJ_CLOSED;
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

/* ---- inspection ---- */

/* One line of /proc/sysvipc/shm: what the kernel shows of a System V segment to anyone,
   where shmctl(IPC_STAT) needs read permission. */
struct sysv_row {
    int32_t key;
    int32_t id;
    uint32_t perms;
    uint64_t size;
    int32_t cpid;
    int32_t nattch;
    uint32_t uid;
    int64_t ctime;
};

static bool sysv_row_parse(const char *line, struct sysv_row *r)
{
    /* key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ... */
    int lpid;
    unsigned gid, cuid, cgid;
    long long atime, dtime, ctime;
    unsigned long long size;
    if (sscanf(line, "%d %d %o %llu %d %d %d %u %u %u %u %lld %lld %lld", &r->key, &r->id,
               &r->perms, &size, &r->cpid, &lpid, &r->nattch, &r->uid, &gid, &cuid, &cgid,
               &atime, &dtime, &ctime) != 14)
        return false;
    r->size = size;
    r->ctime = ctime;
    return true;
}

/* The row of segment `id` (when id >= 0), else the one of `key`. Returns 0, or -ENOENT. */
static int sysv_row_find(int32_t id, int32_t key, struct sysv_row *out)
{
    FILE *f = fopen(SYSV_TABLE, "re");
    if (!f)
        return -ENOENT;
    char line[512];
    int r = -ENOENT;
    while (r != 0 && fgets(line, sizeof(line), f)) {
        struct sysv_row row;
        if (sysv_row_parse(line, &row) && (id >= 0 ? row.id == id : row.key == key)) {
            *out = row;
            r = 0;
        }
    }
    fclose(f);
    return r;
}

static int sysv_list(shml__list_fn each, void *ctx)
{
    FILE *f = fopen(SYSV_TABLE, "re");
    if (!f)
        return errno == ENOENT ? 0 : shml__fail(errno, SYSV_TABLE ": %s",
                                                shml__os_strerror(errno));
    char line[512];
    if (!fgets(line, sizeof(line), f)) { /* the column titles */
        fclose(f);
        return 0;
    }
    int r = 0;
    while (r == 0 && fgets(line, sizeof(line), f)) {
        struct sysv_row row;
        if (!sysv_row_parse(line, &row))
            continue;
        struct shml__addr a;
        memset(&a, 0, sizeof(a));
        a.backend = SHML_BACKEND_SYSV;
        a.has_id = true;
        a.shmid = row.id;
        snprintf(a.canon, sizeof(a.canon), "sysv:id=%d", row.id);
        /* Name it by key where it has one: that is what programs use to find it. */
        char shown[SHML_ADDR_MAX];
        if (row.key != 0)
            snprintf(shown, sizeof(shown), "sysv:0x%08x", (unsigned)row.key);
        else
            snprintf(shown, sizeof(shown), "%s", a.canon);
        r = each(ctx, &a, shown, NULL);
    }
    fclose(f);
    return r;
}

/* What the kernel's table shows of a segment the caller may not stat. */
static int sysv_describe_unopened(const struct shml__addr *a, int32_t id,
                                  struct shml_segment_info *info, int err)
{
    int32_t key = a->key;
    if (id < 0 && a->has_id)
        id = a->shmid;
    if (id < 0 && a->path[0] != '\0' && shml__sysv_key(a, &key) < 0)
        return err;
    struct sysv_row row;
    if (sysv_row_find(id, key, &row) < 0)
        return err;
    info->object_size = row.size;
    info->size = row.size;
    info->mode = row.perms & 0777;
    info->uid = row.uid;
    info->created_ns = row.ctime * 1000000000;
    info->creator_pid = row.cpid;
    info->creator_alive = row.cpid > 0 ? shml__os_proc_alive(row.cpid, 0) : -1;
    info->attached = row.nattch >= 0 ? (uint32_t)row.nattch : 0;
    info->sysv_id = row.id;
    info->sysv_key = (uint32_t)row.key;
    info->status = err;
    return 0;
}

/* The kernel's attach count: it sees every process that maps the segment. */
static int sysv_mapped(const struct shml__addr *a)
{
    struct shml__obj obj = SHML__OBJ_CLOSED;
    struct shml__objstat st;
    int r = sysv_open(a, true, &obj);
    if (r == -ENOENT)
        return 0; /* gone (removed by a gc, say): nobody maps it */
    if (r < 0)
        return -1;
    r = sysv_stat(&obj, &st);
    sysv_release(&obj);
    return r < 0 ? -1 : st.nattch != 0;
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
    .list = sysv_list,
    .describe_unopened = sysv_describe_unopened,
    .mapped = sysv_mapped,
};
