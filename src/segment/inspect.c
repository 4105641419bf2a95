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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A corrupt shmlink segment younger than this may be a creator at work on an older library. */
#define SHML_CORRUPT_GRACE_NS ((int64_t)5000000000)

/*
 * The segment exists but the caller may not open or stat it: describe it from what the
 * system shows anyone, through its backend, with status `err`. Returns 0, or `err` when not
 * even that can be found.
 */
static int describe_unopened(const struct shml__backend *be, const struct shml__addr *a,
                             int32_t id, struct shml_segment_info *info, int err)
{
    if (!be->describe_unopened)
        return err;
    return be->describe_unopened(a, id, info, err);
}

/*
 * Fill `info` (and the attach array) for an address already parsed. With `keep`, the object
 * opened to describe it is handed to the caller, who releases it (keep stays closed,
 * shml__obj_is_open() false, if nothing could be opened).
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

    struct shml__obj obj = SHML__OBJ_CLOSED;
    int r = be->open(a, true, &obj);
    if (r == -EACCES || r == -EPERM)
        return describe_unopened(be, a, -1, info, r);
    if (r < 0)
        return r;
    struct shml__objstat st;
    r = be->stat(&obj, &st);
    if (r < 0) {
        int32_t shmid = shml__obj_id(&obj);
        be->release(&obj);
        if (r == -EACCES || r == -EPERM)
            return describe_unopened(be, a, shmid, info, r);
        return shml__fail_keep(-r, "stat %s: %s", a->canon, shml__os_strerror(-r));
    }
    /* The key beside the id, whichever named it (an ftok address's is resolved here). */
    info->sysv_id = st.sysv_id;
    info->sysv_key = st.sysv_key;
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

/* Made by shmlink, or not known: the caller may not open it to look (listed by default). */
static bool maybe_shmlink(const struct shml_segment_info *info)
{
    return info->shmlink || info->status == -EACCES || info->status == -EPERM;
}

/* shml_segment_list() as it goes through one backend's objects. */
struct lister {
    const struct shml__backend *be;
    struct list *l;
    bool all;
};

static int list_one(void *ctx, const struct shml__addr *a, const char *shown,
                    const struct shml_segment_info *outside)
{
    struct lister *ls = ctx;
    struct shml_segment_info tmp;
    if (outside) {
        tmp = *outside;
    } else {
        int r = stat_parsed(a, &tmp, NULL, 0, NULL, NULL);
        if (r == -ENOENT)
            return 0; /* removed meanwhile */
        if (r < 0 && describe_unopened(ls->be, a, a->shmid, &tmp, r) != 0)
            tmp.status = r; /* whatever stopped the look: what could be seen stays */
    }
    snprintf(tmp.address, sizeof(tmp.address), "%s", shown);
    if (!ls->all && !maybe_shmlink(&tmp))
        return 0;
    struct shml_segment_info *slot = list_push(ls->l);
    if (!slot)
        return -ENOMEM;
    *slot = tmp;
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
    int r = 0;
    for (int b = 1; r == 0 && b <= SHML__BACKEND_LAST; b++) {
        struct lister ls = {shml__backend_get(b), &l, (flags & SHML_LIST_ALL) != 0};
        if (ls.be && ls.be->list)
            r = ls.be->list(list_one, &ls);
    }
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
 * Does any process map the segment? Asks the system through the backend, which also sees
 * untracked openers. 1 yes, 0 no, -1 cannot tell (another user's process may: its maps are
 * not ours to read).
 */
static int mapped_by_anyone(const struct shml_segment_info *s)
{
    struct shml__addr a;
    if (shml__addr_parse(s->address, &a) < 0)
        return -1;
    const struct shml__backend *be = shml__backend_get(a.backend);
    return be && be->mapped ? be->mapped(&a) : -1;
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

/* A temporary object of a creator that died before publishing, removed (or not: dry run). */
static int tmp_one(void *ctx, const char *addr, int32_t pid)
{
    struct shml_segment_info *slot = list_push(ctx);
    if (!slot)
        return -ENOMEM;
    memset(slot, 0, sizeof(*slot));
    snprintf(slot->address, sizeof(slot->address), "%s", addr);
    struct shml__addr a;
    slot->backend = shml__addr_parse(addr, &a) == 0 ? a.backend : 0;
    slot->creator_pid = pid;
    slot->status = -SHML_ECORRUPT;
    slot->shmlink = true;
    return 0;
}

static int gc_temporaries(bool dry_run, struct list *out)
{
    int r = 0;
    for (int b = 1; r == 0 && b <= SHML__BACKEND_LAST; b++) {
        const struct shml__backend *be = shml__backend_get(b);
        if (be && be->gc_temporaries)
            r = be->gc_temporaries(dry_run, tmp_one, out);
    }
    return r;
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
    struct shml__obj obj = SHML__OBJ_CLOSED;
    r = stat_parsed(&a, &now, NULL, 0, NULL, &obj);
    if (r < 0)
        return r;
    if (!shml__obj_is_open(&obj))
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
