/*
 * inspect.c - what exists, who is attached, what can be cleaned: shml_segment_stat(),
 * shml_segment_list() and shml_gc().
 *
 * Inspection never attaches and never trusts a header it has not validated; it reads headers
 * through the backend (pread or a transient read-only shmat), so a foreign, corrupt or
 * shrinking object is described, not crashed on.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <dirent.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A corrupt shmlink segment younger than this may be a creator at work on an older library. */
#define SHML_CORRUPT_GRACE_NS ((int64_t)5000000000)

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
    FILE *f = fopen("/proc/sysvipc/shm", "re");
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

/* What a System V segment's row tells, for one that cannot be (or was not) stat'ed. */
static void describe_sysv_row(struct shml_segment_info *info, const struct sysv_row *row)
{
    info->object_size = row->size;
    info->size = row->size;
    info->mode = row->perms & 0777;
    info->uid = row->uid;
    info->created_ns = row->ctime * 1000000000;
    info->creator_pid = row->cpid;
    info->creator_alive = row->cpid > 0 ? shml__os_proc_alive(row->cpid, 0) : -1;
    info->attached = row->nattch >= 0 ? (uint32_t)row->nattch : 0;
    info->sysv_id = row->id;
    info->sysv_key = (uint32_t)row->key;
}

static void describe_unreadable(struct shml_segment_info *info, const char *path, int err);

/*
 * The segment exists but the caller may not open or stat it: describe it from what the
 * system shows anyone (the /dev/shm or file entry, /proc/sysvipc/shm), with status `err`.
 * Returns 0, or `err` when not even that can be found.
 */
static int describe_unopened(const struct shml__addr *a, int32_t shmid,
                             struct shml_segment_info *info, int err)
{
    char path[PATH_MAX + 16];
    struct sysv_row row;
    switch (a->backend) {
    case SHML_BACKEND_POSIX:
        snprintf(path, sizeof(path), "/dev/shm%s", a->name);
        describe_unreadable(info, path, err);
        return info->mode || info->object_size ? 0 : err;
    case SHML_BACKEND_FILE:
        describe_unreadable(info, a->path, err);
        return info->mode || info->object_size ? 0 : err;
    case SHML_BACKEND_SYSV: {
        int32_t key = a->key;
        if (shmid < 0 && a->has_id)
            shmid = a->shmid;
        if (shmid < 0 && a->path[0] != '\0' && shml__sysv_key(a, &key) < 0)
            return err;
        if (sysv_row_find(shmid, key, &row) < 0)
            return err;
        describe_sysv_row(info, &row);
        info->status = err;
        return 0;
    }
    default:
        return err;
    }
}

/*
 * Fill `info` (and the attach array) for an address already parsed. With `keep`, the object
 * opened to describe it is handed to the caller, who releases it (keep->fd and keep->shmid
 * stay -1 if nothing could be opened).
 */
static int stat_parsed(const struct shml__addr *a, struct shml_segment_info *info,
                       struct shml_attach_info *att, size_t att_cap, size_t *att_n,
                       struct shml__obj *keep)
{
    memset(info, 0, sizeof(*info));
    if (att_n)
        *att_n = 0;
    snprintf(info->address, sizeof(info->address), "%s", a->canon);
    info->backend = a->backend;
    info->creator_alive = -1;
    info->sysv_id = -1;
    const struct shml__backend *be = shml__backend_get(a->backend);
    if (!be)
        return shml__fail(ENOTSUP, "the backend of %s is not available here", a->canon);
    if (a->backend == SHML_BACKEND_MEMFD)
        return shml__fail(ENOTSUP, "a memfd segment has no name to look up");

    struct shml__obj obj = {.fd = -1, .shmid = -1};
    int r = be->open(a, true, &obj);
    if (r == -EACCES || r == -EPERM)
        return describe_unopened(a, -1, info, r);
    if (r < 0)
        return r;
    struct shml__objstat st;
    r = be->stat(&obj, &st);
    if (r < 0) {
        int32_t shmid = obj.shmid;
        be->release(&obj);
        if (r == -EACCES || r == -EPERM)
            return describe_unopened(a, shmid, info, r);
        return shml__fail_keep(-r, "stat %s: %s", a->canon, shml__os_strerror(-r));
    }
    if (a->backend == SHML_BACKEND_SYSV) {
        /* The key beside the id, whichever named it (an ftok address's is resolved here). */
        struct sysv_row row;
        info->sysv_id = obj.shmid;
        if (sysv_row_find(obj.shmid, 0, &row) == 0)
            info->sysv_key = (uint32_t)row.key;
    }
    info->object_size = st.size;
    info->size = st.size;
    info->mode = st.mode;
    info->uid = st.uid;
    info->created_ns = st.ctime_ns;
    info->creator_pid = st.cpid;
    if (st.nattch >= 0)
        info->attached = (uint32_t)st.nattch;
    if (st.cpid > 0)
        info->creator_alive = shml__os_proc_alive(st.cpid, 0);

    uint8_t image[SHML_HDR_PAGE];
    size_t len = st.size < sizeof(image) ? (size_t)st.size : sizeof(image);
    ssize_t n = len ? be->pread(&obj, NULL, 0, image, len) : 0;
    if (keep)
        *keep = obj;
    else
        be->release(&obj);
    if (n < 0) {
        info->status = (int)n;
        return 0;
    }
    r = shml__hdr_validate(image, len, st.size);
    bool magic = len >= SHML_MAGIC_LEN && memcmp(image, SHML_MAGIC_BYTES, SHML_MAGIC_LEN) == 0;
    if (r == -EAGAIN && !magic)
        r = -SHML_ENOTSHML; /* blank: for inspection, a foreign object */
    info->shmlink = magic;
    if (r == -EAGAIN && len >= sizeof(struct shml_hdr)) {
        /* Initialising: or abandoned by a creator that died before publishing READY. */
        const struct shml_hdr *h = (const struct shml_hdr *)image;
        if (h->creator_pid != 0 && shml__os_proc_alive(h->creator_pid, h->creator_start) == 0)
            r = -SHML_ECORRUPT;
    }
    if (r < 0) {
        info->status = r;
        return 0;
    }

    const struct shml_hdr *h = (const struct shml_hdr *)image;
    uint8_t boot[16];
    info->managed = true;
    info->kind = h->kind;
    info->version = h->version;
    info->header_size = h->header_size;
    info->hdr_flags = ((h->flags & SHML_HDRF_HUGEPAGES) ? SHML_HUGEPAGES : 0) |
                      ((h->flags & SHML_HDRF_OWNED) ? SHML_OWNED : 0);
    info->size = h->size;
    info->creator_pid = h->creator_pid;
    info->creator_start = h->creator_start;
    info->created_ns = h->created_ns;
    info->other_boot = shml__os_boot_id(boot) == 0 && memcmp(boot, h->boot_id, 16) != 0;
    memcpy(info->label, h->label, sizeof(info->label)); /* NUL-terminated: validated */
    info->creator_alive =
        info->other_boot ? 0 : shml__os_proc_alive(h->creator_pid, h->creator_start);
    info->attached = 0;
    info->untracked = atomic_load_explicit(&h->untracked, memory_order_relaxed);

    size_t total = 0;
    for (uint32_t i = 0; i < SHML_ATTACH_CAP; i++) {
        const struct shml_attach *e = &h->attach[i];
        /* The image is a private copy: relaxed loads read it, ordering nothing. */
        uint32_t pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
        if (pid == 0 || pid == SHML_ATTACH_BUSY || pid > INT32_MAX)
            continue;
        struct shml_attach_info ai = {.pid = (int32_t)pid};
        uint32_t ns = 0;
        if (atomic_load_explicit(&e->valid, memory_order_relaxed)) {
            ai.start_time = atomic_load_explicit(&e->start_time, memory_order_relaxed);
            ai.since_ns = (int64_t)atomic_load_explicit(&e->since_ns, memory_order_relaxed);
            ai.role = atomic_load_explicit(&e->role, memory_order_relaxed);
            ns = atomic_load_explicit(&e->pid_ns, memory_order_relaxed);
        }
        /* A process of another pid namespace cannot be judged from ours: unknown. So is the
           creator, when this is its own entry. */
        bool other_ns = !info->other_boot && shml__os_pid_ns_other(ns);
        if (other_ns && ai.pid == info->creator_pid && ai.start_time == info->creator_start &&
            info->creator_alive == 0)
            info->creator_alive = -1;
        ai.alive = info->other_boot ? 0
                   : other_ns       ? -1
                                    : shml__os_proc_alive(ai.pid, ai.start_time);
        if (ai.alive == 0)
            info->attach_dead++;
        else
            info->attached++;
        if (att && total < att_cap)
            att[total] = ai;
        total++;
    }
    if (att_n)
        *att_n = total;
    return 0;
}

int shml_segment_stat(const char *addr, struct shml_segment_info *info,
                      struct shml_attach_info *att, size_t att_cap, size_t *att_n)
{
    shml__clear_error();
    if (!info)
        return shml__fail(EINVAL, "info is NULL");
    struct shml__addr a;
    int r = shml__addr_resolve(addr, &a);
    if (r < 0)
        return r;
    return stat_parsed(&a, info, att, att_cap, att_n, NULL);
}

/* A growable array of infos. */
struct list {
    struct shml_segment_info *v;
    size_t n, cap;
};

static struct shml_segment_info *list_push(struct list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->v, cap * sizeof(*l->v));
        if (!p)
            return NULL;
        l->v = p;
        l->cap = cap;
    }
    return &l->v[l->n++];
}

/* Describe one object that could not be opened from what the directory entry shows. */
static void describe_unreadable(struct shml_segment_info *info, const char *path, int err)
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
}

/* Made by shmlink, or not known: the caller may not open it to look (listed by default). */
static bool maybe_shmlink(const struct shml_segment_info *info)
{
    return info->shmlink || info->status == -EACCES || info->status == -EPERM;
}

static int list_posix(struct list *l, bool all)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return errno == ENOENT ? 0 : shml__fail(errno, "/dev/shm: %s", shml__os_strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
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
        struct shml_segment_info tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.backend = SHML_BACKEND_POSIX;
        tmp.creator_alive = -1;
        tmp.sysv_id = -1;
        snprintf(tmp.address, sizeof(tmp.address), "posix:/%s", e->d_name);
        char path[300];
        snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
        if (strlen(e->d_name) > SHML_NAME_MAX) {
            /* Not a name shmlink would make: describe it, don't open it. */
            describe_unreadable(&tmp, path, -ENAMETOOLONG);
        } else {
            a.name[0] = '/';
            memcpy(a.name + 1, e->d_name, strlen(e->d_name) + 1);
            snprintf(a.canon, sizeof(a.canon), "posix:%s", a.name);
            int r = stat_parsed(&a, &tmp, NULL, 0, NULL, NULL);
            if (r == -ENOENT)
                continue; /* removed meanwhile */
            if (r < 0)
                describe_unreadable(&tmp, path, r);
        }
        if (!all && !maybe_shmlink(&tmp))
            continue;
        struct shml_segment_info *slot = list_push(l);
        if (!slot) {
            closedir(d);
            return -ENOMEM;
        }
        *slot = tmp;
    }
    closedir(d);
    return 0;
}

static int list_sysv(struct list *l, bool all)
{
    FILE *f = fopen("/proc/sysvipc/shm", "re");
    if (!f)
        return errno == ENOENT ? 0 : shml__fail(errno, "/proc/sysvipc/shm: %s",
                                                shml__os_strerror(errno));
    char line[512];
    if (!fgets(line, sizeof(line), f)) { /* the column titles */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        struct sysv_row row;
        if (!sysv_row_parse(line, &row))
            continue;
        struct shml__addr a;
        memset(&a, 0, sizeof(a));
        a.backend = SHML_BACKEND_SYSV;
        a.has_id = true;
        a.shmid = row.id;
        snprintf(a.canon, sizeof(a.canon), "sysv:id=%d", row.id);
        struct shml_segment_info tmp;
        int r = stat_parsed(&a, &tmp, NULL, 0, NULL, NULL);
        if (r == -ENOENT)
            continue;
        if (r < 0) {
            /* Whatever stopped the look, the kernel's row still says what it is. */
            describe_sysv_row(&tmp, &row);
            tmp.status = r;
        }
        tmp.sysv_id = row.id;
        tmp.sysv_key = (uint32_t)row.key;
        /* Name it by key where it has one: that is what programs use to find it. */
        if (row.key != 0)
            snprintf(tmp.address, sizeof(tmp.address), "sysv:0x%08x", (unsigned)row.key);
        if (!all && !maybe_shmlink(&tmp))
            continue;
        struct shml_segment_info *slot = list_push(l);
        if (!slot) {
            fclose(f);
            return -ENOMEM;
        }
        *slot = tmp;
    }
    fclose(f);
    return 0;
}

static int by_address(const void *x, const void *y)
{
    const struct shml_segment_info *a = x, *b = y;
    return strcmp(a->address, b->address);
}

int shml_segment_list(unsigned flags, struct shml_segment_info **out, size_t *count)
{
    shml__clear_error();
    if (!out || !count)
        return shml__fail(EINVAL, "out or count is NULL");
    *out = NULL;
    *count = 0;
    struct list l = {0};
    bool all = (flags & SHML_LIST_ALL) != 0;
    int r = list_posix(&l, all);
    if (r == 0)
        r = list_sysv(&l, all);
    if (r < 0) {
        free(l.v);
        return r;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), by_address);
    *out = l.v;
    *count = l.n;
    return 0;
}

/*
 * Does any process map the segment? Asks the kernel, which also sees untracked openers.
 * 1 yes, 0 no, -1 cannot tell (another user's process may: its maps are not ours to read).
 */
static int mapped_by_anyone(const struct shml_segment_info *s)
{
    if (s->backend == SHML_BACKEND_SYSV) {
        struct shml__addr a;
        struct shml__obj obj = {.fd = -1, .shmid = -1};
        struct shml__objstat st;
        const struct shml__backend *be = shml__backend_get(SHML_BACKEND_SYSV);
        if (shml__addr_parse(s->address, &a) < 0)
            return -1;
        int r = be->open(&a, true, &obj);
        if (r == -ENOENT)
            return 0; /* gone (removed by a gc, say): nobody maps it */
        if (r < 0)
            return -1;
        r = be->stat(&obj, &st);
        be->release(&obj);
        return r < 0 ? -1 : st.nattch != 0;
    }
    if (s->backend == SHML_BACKEND_POSIX) {
        char path[300];
        snprintf(path, sizeof(path), "/dev/shm/%s", s->address + strlen("posix:/"));
        int r = shml__os_path_mapped(path);
        return r < 0 ? -1 : r;
    }
    return -1;
}

static int verdict(int v, const char *text, const char **why)
{
    if (why)
        *why = text;
    return v;
}

int shml_gc_verdict(const struct shml_segment_info *s, const char **why)
{
    if (!s)
        return -EINVAL;
    if (s->status == -EACCES || s->status == -EPERM)
        return verdict(SHML_GC_KEEP_UNKNOWN, "unreadable here: permission denied", why);
    if (!s->shmlink)
        return verdict(SHML_GC_KEEP_FOREIGN, "foreign: not made by shmlink", why);
    if (s->managed) {
        if (!(s->hdr_flags & SHML_OWNED))
            return verdict(SHML_GC_KEEP_PERSISTENT, "persistent: lives until removed", why);
        if (s->creator_alive != 0)
            return verdict(SHML_GC_KEEP_IN_USE, "owned: its creator is alive", why);
        if (s->attached != 0 || s->untracked != 0)
            return verdict(SHML_GC_KEEP_IN_USE, "owned: attached processes are alive", why);
        int m = mapped_by_anyone(s);
        if (m > 0)
            return verdict(SHML_GC_KEEP_IN_USE, "owned: a process maps it", why);
        if (m < 0)
            return verdict(SHML_GC_KEEP_IN_USE,
                           "owned: another user's process may map it (cannot tell)", why);
        return verdict(SHML_GC_REMOVE_ORPHANED,
                       "owned, and its creator and every attached process are gone", why);
    }
    if (s->status != -SHML_ECORRUPT)
        return verdict(SHML_GC_KEEP_UNKNOWN, "another layout version, or being created", why);
    if (shml__os_real_ns() - s->created_ns < SHML_CORRUPT_GRACE_NS)
        return verdict(SHML_GC_KEEP_UNKNOWN, "unfinished, and too young to judge", why);
    if (mapped_by_anyone(s) != 0)
        return verdict(SHML_GC_KEEP_IN_USE, "unfinished, but a process maps it (or may)", why);
    return verdict(SHML_GC_REMOVE_UNFINISHED, "unfinished: its creator died creating it", why);
}

/* Is the segment abandoned (see shml_gc() for the rules)? */
static bool abandoned(const struct shml_segment_info *s)
{
    int v = shml_gc_verdict(s, NULL);
    return v == SHML_GC_REMOVE_ORPHANED || v == SHML_GC_REMOVE_UNFINISHED;
}

/* Temporary objects of creators that died before publishing: /dev/shm/.shml-tmp-PID-RANDOM. */
static int gc_temporaries(bool dry_run, struct list *out)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    struct dirent *e;
    size_t plen = strlen(SHML_TMP_PREFIX);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, SHML_TMP_PREFIX "-", plen + 1) != 0)
            continue;
        int pid = atoi(e->d_name + plen + 1);
        if (pid <= 0 || shml__os_proc_alive(pid, 0) != 0)
            continue;
        char name[300];
        snprintf(name, sizeof(name), "/%s", e->d_name);
        if (!dry_run && shm_unlink(name) != 0)
            continue;
        struct shml_segment_info *slot = list_push(out);
        if (!slot) {
            closedir(d);
            return -ENOMEM;
        }
        memset(slot, 0, sizeof(*slot));
        snprintf(slot->address, sizeof(slot->address), "posix:%s", name);
        slot->backend = SHML_BACKEND_POSIX;
        slot->creator_pid = pid;
        slot->status = -SHML_ECORRUPT;
        slot->shmlink = true;
    }
    closedir(d);
    return 0;
}

/*
 * Remove the segment `judged` describes, if the object under its name is still that one and
 * still abandoned: opened again, described again, compared on what never changes (creator,
 * creation time, size), and removed by the backend only if the name still holds it. So a
 * segment made under the same name since gc listed the old one is never removed.
 */
static int remove_judged(const struct shml_segment_info *judged)
{
    struct shml__addr a;
    int r = shml__addr_parse(judged->address, &a);
    if (r < 0)
        return r;
    const struct shml__backend *be = shml__backend_get(a.backend);
    if (!be || !be->remove_same)
        return -ENOTSUP;
    struct shml_segment_info now;
    struct shml__obj obj = {.fd = -1, .shmid = -1};
    r = stat_parsed(&a, &now, NULL, 0, NULL, &obj);
    if (r < 0)
        return r;
    if (obj.fd < 0 && obj.shmid < 0)
        return -ESTALE; /* described without opening (not ours to read): not removed */
    bool same = now.shmlink == judged->shmlink && now.managed == judged->managed &&
                now.creator_pid == judged->creator_pid &&
                now.creator_start == judged->creator_start &&
                now.created_ns == judged->created_ns && now.size == judged->size;
    int v = shml_gc_verdict(&now, NULL);
    if (same && (v == SHML_GC_REMOVE_ORPHANED || v == SHML_GC_REMOVE_UNFINISHED))
        r = be->remove_same(&a, &obj);
    else
        r = -ESTALE;
    be->release(&obj);
    return r;
}

int shml_gc(bool dry_run, struct shml_segment_info **removed, size_t *n_removed)
{
    shml__clear_error();
    if (removed)
        *removed = NULL;
    if (n_removed)
        *n_removed = 0;
    struct shml_segment_info *all;
    size_t n;
    int r = shml_segment_list(0, &all, &n);
    if (r < 0)
        return r;
    struct list gone = {.v = all, .n = 0, .cap = n};
    for (size_t i = 0; i < n; i++) {
        if (!abandoned(&all[i]))
            continue;
        if (!dry_run && remove_judged(&all[i]) < 0)
            continue; /* gone or made again meanwhile, or not ours to remove: not fatal */
        all[gone.n++] = all[i];
    }
    r = gc_temporaries(dry_run, &gone);
    shml__clear_error();
    if (r == 0 && removed && gone.n)
        *removed = gone.v;
    else
        free(gone.v);
    if (r == 0 && n_removed)
        *n_removed = gone.n;
    return r;
}
