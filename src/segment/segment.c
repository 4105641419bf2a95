/*
 * segment.c - named segments: create, open, close, unlink, and the managed header's life.
 *
 * Creation: the backend makes the object with its memory reserved; the creator maps it, writes
 * the header with state INIT, records itself in the attach table and publishes state READY
 * last. Opening: the header is read through the backend (a private copy, never the mapping, so
 * a truncated object cannot SIGBUS us), validated completely, and only then mapped; a header
 * still being initialised is waited for, bounded by the caller's timeout; a creator that died
 * before publishing makes the segment corrupt, not a hang.
 */
#include "os/os.h"
#include "segment/backend.h"
#include "shmlink/names.h"
#include "sync/futex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shml_segment {
    struct shml__addr addr;
    const struct shml__backend *be;
    struct shml__obj obj;
    void *base;          /* the mapping */
    size_t map_len;      /* its length */
    struct shml__os_guard *guard; /* its entry in the SIGBUS guard (os.h) */
    struct shml_hdr *hdr; /* managed: the header at base; NULL when raw */
    char *data;          /* the caller's bytes */
    size_t size;         /* their number */
    size_t data_off;     /* their offset in the object */
    uint32_t kind;       /* managed: the header's kind; 0 when raw */
    /* data, size, data_off and kind are taken from the validated private copy of the header
       at open (or from what create wrote): a process that can write the segment may change
       the mapped header at any time, so it is never read for them again. */
    uint32_t flags;      /* SHML_* open flags */
    int slot;            /* attach table entry, or -1 */
    bool untracked;      /* counted in hdr->untracked instead of holding an entry */
    int32_t pid;         /* the process that attached (entries are per process) */
};

/* Blank headers this young may still be a creator at work; older ones are foreign objects. */
#define BLANK_GRACE_NS ((int64_t)5000000000)

static const struct shml_segment_opts default_opts = SHML_SEGMENT_OPTS_INIT;

/* The first version's size: the smallest struct shml_segment_opts a caller may pass. */
#define SEGMENT_OPTS_V1_SIZE sizeof(struct shml_segment_opts)

/* Read the caller's options (common.h's rule for structs that can grow), check them and fill
   in the defaults. */
static int normalize_opts(const struct shml_segment_opts *in, struct shml_segment_opts *o)
{
    int r = shml__opts_copy(o, &default_opts, sizeof(*o),
                            offsetof(struct shml_segment_opts, reserved), SEGMENT_OPTS_V1_SIZE,
                            in, "shml_segment_opts", "SHML_SEGMENT_OPTS_INIT");
    if (r < 0)
        return r;
    if (o->mode == 0)
        o->mode = 0600;
    if (o->mode & ~07777u)
        return shml__fail(EINVAL, "mode %o has bits outside 07777", o->mode);
    const uint32_t known = SHML_RDONLY | SHML_RAW | SHML_OPEN_OR_CREATE | SHML_HUGEPAGES |
                           SHML_PREFAULT | SHML_NOATTACH | SHML_OWNED | SHML_WAIT;
    if (o->flags & ~known)
        return shml__fail(EINVAL, "unknown flags 0x%x", o->flags & ~known);
    if (o->label && strnlen(o->label, SHML_LABEL_MAX) >= SHML_LABEL_MAX)
        return shml__fail(EINVAL, "label is longer than %d bytes", SHML_LABEL_MAX - 1);
    return 0;
}

int shml__addr_resolve(const char *s, struct shml__addr *a)
{
    int r = shml__addr_parse(s, a);
    if (r < 0 || a->backend != SHML_BACKEND_FILE || shml__os_path_absolute(a->path))
        return r;
    char cwd[PATH_MAX];
    r = shml__os_cwd(cwd, sizeof(cwd));
    if (r < 0)
        return shml__fail(-r, "resolving the relative path %s: %s", a->path,
                          shml__os_strerror(-r));
    size_t clen = strlen(cwd), plen = strlen(a->path);
    if (clen + 1 + plen >= sizeof(a->path))
        return shml__fail(EINVAL, "%s%c%s is longer than %d bytes", cwd, SHML_OS_PATH_SEP,
                          a->path, PATH_MAX - 1);
    if (clen > 0 && cwd[clen - 1] == SHML_OS_PATH_SEP)
        clen--; /* a root ("/", "C:\\"): root + separator + path would double the separator */
    memmove(a->path + clen + 1, a->path, plen + 1);
    memcpy(a->path, cwd, clen);
    a->path[clen] = SHML_OS_PATH_SEP;
    snprintf(a->canon, sizeof(a->canon), "file:%s", a->path);
    return 0;
}

static int resolve(const char *addr, struct shml__addr *a, const struct shml__backend **be)
{
    int r = shml__addr_resolve(addr, a);
    if (r < 0)
        return r;
    *be = shml__backend_get(a->backend);
    if (!*be)
        return shml__fail(ENOTSUP, "the %s backend is not available on this platform",
                          shml_backend_name(a->backend));
    return 0;
}

/* The start of every call that names a segment: check out, options, address. */
static int begin(const char *addr, const struct shml_segment_opts *opts, shml_segment **out,
                 struct shml_segment_opts *o, struct shml__addr *a,
                 const struct shml__backend **be)
{
    shml__clear_error();
    if (!out)
        return shml__fail(EINVAL, "out is NULL");
    *out = NULL;
    int r = normalize_opts(opts, o);
    return r < 0 ? r : resolve(addr, a, be);
}

static void seg_free(shml_segment *seg)
{
    /* Out of the guard first: once unmapped, the address may be given to another mapping. */
    shml__os_guard_remove(seg->guard);
    if (seg->base)
        seg->be->unmap(&seg->obj, seg->base, seg->map_len);
    seg->be->release(&seg->obj);
    free(seg);
}

/*
 * Map the object and register the mapping with the SIGBUS guard, so that a peer truncating the
 * object later costs us the segment (-SHML_ETRUNCATED), not the process.
 */
static int seg_map(shml_segment *seg, size_t len, bool rdonly, uint32_t flags)
{
    int r = seg->be->map(&seg->obj, len, rdonly, flags, &seg->base);
    if (r < 0)
        return r;
    seg->map_len = len;
    r = shml__os_guard_add(seg->base, len, rdonly, seg->addr.canon, &seg->guard);
    return r < 0 ? shml__fail(-r, "no memory to register the mapping") : 0;
}

uint32_t shml__segment_mode(const shml_segment *seg)
{
    struct shml__objstat st;
    memset(&st, 0, sizeof(st));
    if (seg->be->stat && seg->be->stat(&seg->obj, &st) == 0 && st.mode != 0)
        return st.mode & 0777u;
    return 0600u;
}

int shml__segment_lost(const shml_segment *seg)
{
    if (!shml__os_guard_lost(seg->guard))
        return 0;
    return shml__fail(SHML_ETRUNCATED, "%s: the object was truncated under the mapping, whose "
                                       "contents are gone: close the handle",
                      seg->addr.canon);
}

static shml_segment *seg_new(const struct shml__addr *a, const struct shml__backend *be)
{
    shml_segment *seg = calloc(1, sizeof(*seg));
    if (!seg)
        return NULL;
    seg->addr = *a;
    seg->be = be;
    seg->obj = (struct shml__obj)SHML__OBJ_CLOSED;
    seg->slot = -1;
    return seg;
}

/* Record this process in the attach table (managed, writable, not NOATTACH). */
static void attach(shml_segment *seg, uint32_t role)
{
    if (!seg->hdr || (seg->flags & (SHML_RDONLY | SHML_NOATTACH)))
        return;
    seg->pid = shml__os_pid();
    uint64_t start = 0;
    (void)shml__os_proc_start(seg->pid, &start);
    shml__attach_reap(seg->hdr);
    int slot = shml__attach_add(seg->hdr, seg->pid, start, role);
    if (slot >= 0) {
        seg->slot = slot;
    } else {
        /* Relaxed: a statistic for inspection, ordered by nothing else. */
        atomic_fetch_add_explicit(&seg->hdr->untracked, 1, memory_order_relaxed);
        seg->untracked = true;
    }
}

/*
 * Could a blank object be a shmlink segment whose creator has not written the header yet?
 * Backends that publish a managed segment only once its header is READY (posix, file) never
 * show one blank. A System V segment is visible from shmget() on, so a blank one may be a
 * creator at work if that creator is alive and made it moments ago. Anything else blank is a
 * foreign object, reported at once rather than after the whole timeout.
 */
static bool creator_may_be_at_work(const struct shml_segment *seg, const struct shml__objstat *st)
{
    if (seg->be->publish != NULL || st->cpid <= 0)
        return false;
    if (shml__os_real_ns() - st->ctime_ns > BLANK_GRACE_NS)
        return false;
    return shml__os_proc_alive(st->cpid, 0) != 0;
}

/*
 * Read, wait for and validate the header of an opened object, then map it. On success the
 * segment's base, hdr, data and size are set.
 */
static int map_managed(shml_segment *seg, const struct shml_segment_opts *o)
{
    const struct shml__backend *be = seg->be;
    int64_t deadline = o->timeout_ns < 0 ? INT64_MAX : shml__os_mono_ns() + o->timeout_ns;
    int64_t nap = 100000; /* 0.1 ms, doubling to 10 ms: a creator needs well under a second */
    uint8_t image[SHML_HDR_PAGE];
    struct shml__objstat st;
    int r;
    for (;;) {
        r = be->stat(&seg->obj, &st);
        if (r < 0)
            return shml__fail_keep(-r, "stat: %s", shml__os_strerror(-r));
        size_t len = st.size < sizeof(image) ? (size_t)st.size : sizeof(image);
        r = 0;
        if (len > 0) {
            ssize_t n = be->pread(&seg->obj, NULL, 0, image, len);
            if (n == -SHML_ETRUNCATED && shml__os_mono_ns() < deadline)
                continue; /* shrank between stat and read: look again */
            if (n < 0)
                return shml__fail_keep((int)-n, "reading the header: %s",
                                       shml__os_strerror((int)-n));
        }
        shml__clear_error();
        r = shml__hdr_validate(image, len, st.size);
        if (r != -EAGAIN)
            break;
        /* Still being initialised, or a blank foreign object: tell them apart. */
        struct shml_hdr *h = (struct shml_hdr *)image;
        bool has_magic = len >= SHML_MAGIC_LEN && memcmp(image, SHML_MAGIC_BYTES, 8) == 0;
        if (has_magic && len >= sizeof(*h) && h->creator_pid != 0 &&
            shml__os_proc_alive(h->creator_pid, h->creator_start) == 0)
            return shml__fail(SHML_ECORRUPT, "creator (pid %d) died before it finished "
                                             "initialising the header; remove the segment",
                              h->creator_pid);
        if (!has_magic && !creator_may_be_at_work(seg, &st))
            return shml__fail(SHML_ENOTSHML, "%s: no shmlink header (the object is %s): open "
                                             "it raw",
                              seg->addr.canon, st.size ? "blank" : "empty");
        int64_t now = shml__os_mono_ns();
        if (now >= deadline)
            return shml__fail(ETIMEDOUT, "%s: its creator has not finished initialising the "
                                         "header within the timeout",
                              seg->addr.canon);
        if (shml__nap(nap < deadline - now ? nap : deadline - now) == -ECANCELED)
            return shml__fail(ECANCELED, "%s: the wait for its creator to finish initialising "
                                         "the header was cancelled",
                              seg->addr.canon);
        if (nap < 10000000)
            nap *= 2;
    }
    if (r < 0) {
        /* Validation recorded the reason: prefix the address so the caller knows which. */
        char reason[400];
        snprintf(reason, sizeof(reason), "%s", shml_last_error());
        return shml__fail(-r, "%s: %s", seg->addr.canon, reason);
    }
    if (st.unbacked > 0)
        /* shmlink reserves all of its objects' memory at create: this one was made elsewhere. */
        return shml__fail(SHML_ETRUNCATED, "%s: %llu of its %llu bytes have no memory behind "
                                           "them (a sparse object, not made by shmlink): "
                                           "touching them would fail with SIGBUS once the file "
                                           "system is full",
                          seg->addr.canon, (unsigned long long)st.unbacked,
                          (unsigned long long)st.size);
    const struct shml_hdr *img = (const struct shml_hdr *)image;
    if (o->kind != SHML_KIND_ANY && img->kind != o->kind)
        return shml__fail(SHML_EWRONGKIND, "%s is of kind %u, not the %u asked for",
                          seg->addr.canon, img->kind, o->kind);

    size_t map_len = (size_t)img->map_size;
    uint8_t first[SHML_HDR_CHECKED_LEN];
    memcpy(first, image, sizeof(first));
    r = seg_map(seg, map_len, (o->flags & SHML_RDONLY) != 0, o->flags);
    if (r < 0)
        return r;
    struct shml_hdr *h = seg->base;
    /*
     * Acquire pairs with the creator's release store of READY: the header we validate from the
     * mapping is the finished one. Validate the mapped copy again so that what we trust is what
     * is mapped, not what pread saw a moment ago.
     */
    (void)atomic_load_explicit(&h->state, memory_order_acquire);
    memcpy(image, h, sizeof(image));
    r = shml__segment_lost(seg); /* truncated since the check: the copy is zeros */
    if (r < 0)
        return r;
    if (be->stat(&seg->obj, &st) < 0)
        st.size = 0;
    r = shml__hdr_validate(image, sizeof(image), st.size);
    if (r < 0 || memcmp(image, first, sizeof(first)) != 0)
        return shml__fail(SHML_ECORRUPT, "%s: header changed while opening", seg->addr.canon);
    /* From the validated copy, never from the mapping: a writer may have changed it since. */
    const struct shml_hdr *valid = (const struct shml_hdr *)image;
    seg->hdr = h;
    seg->data_off = valid->header_size;
    seg->data = (char *)seg->base + valid->header_size;
    seg->size = (size_t)valid->size;
    seg->kind = valid->kind;
    return 0;
}

static int map_raw(shml_segment *seg, const struct shml_segment_opts *o)
{
    struct shml__objstat st;
    int r = seg->be->stat(&seg->obj, &st);
    if (r < 0)
        return shml__fail_keep(-r, "stat: %s", shml__os_strerror(-r));
    if (st.size == 0)
        return shml__fail(EINVAL, "%s has 0 bytes: nothing to map", seg->addr.canon);
    if (st.size > SIZE_MAX / 2)
        return shml__fail(EOVERFLOW, "%s is too large to map", seg->addr.canon);
    r = seg_map(seg, (size_t)st.size, (o->flags & SHML_RDONLY) != 0, o->flags);
    if (r < 0)
        return r;
    seg->data = seg->base;
    seg->size = (size_t)st.size;
    seg->data_off = 0;
    return 0;
}

/* Map an opened object and attach; frees seg on failure. */
static int finish_open(shml_segment *seg, const struct shml_segment_opts *o, shml_segment **out)
{
    seg->flags = o->flags;
    int r = (o->flags & SHML_RAW) ? map_raw(seg, o) : map_managed(seg, o);
    if (r < 0) {
        seg_free(seg);
        return r;
    }
    attach(seg, o->role);
    *out = seg;
    return 0;
}

int shml_segment_open(const char *addr, const struct shml_segment_opts *opts, shml_segment **out)
{
    struct shml_segment_opts o;
    struct shml__addr a;
    const struct shml__backend *be;
    int r = begin(addr, opts, out, &o, &a, &be);
    if (r < 0)
        return r;
    if (o.flags & (SHML_OPEN_OR_CREATE | SHML_OWNED))
        return shml__fail(EINVAL, "SHML_OPEN_OR_CREATE and SHML_OWNED belong to "
                                  "shml_segment_create");
    shml_segment *seg = seg_new(&a, be);
    if (!seg)
        return -ENOMEM;
    /*
     * SHML_WAIT: a segment that does not exist yet is looked for again, ever less often (its
     * creator may be seconds away), until the timeout; what remains of it then bounds the wait
     * for a creator still initialising the header.
     */
    int64_t start = shml__os_mono_ns(), nap = 1000000;
    bool cancelled = false; /* the thread's token fired (sync.h): one more look, then stop */
    while ((r = be->open(&a, (o.flags & SHML_RDONLY) != 0, &seg->obj)) == -ENOENT &&
           (o.flags & SHML_WAIT) && o.timeout_ns != 0 && !cancelled) {
        int64_t now = shml__os_mono_ns();
        if (o.timeout_ns > 0 && now - start >= o.timeout_ns)
            break;
        if (o.timeout_ns > 0 && o.timeout_ns - (now - start) < nap)
            nap = o.timeout_ns - (now - start);
        cancelled = shml__nap(nap) == -ECANCELED;
        if (nap < 50000000)
            nap *= 2;
    }
    if (r < 0) {
        free(seg);
        if (r != -ENOENT || !(o.flags & SHML_WAIT) || o.timeout_ns == 0)
            return r;
        return cancelled ? shml__fail(ECANCELED, "%s: the wait for it to appear was cancelled",
                                      a.canon)
                         : shml__fail(ETIMEDOUT, "%s did not appear within the timeout", a.canon);
    }
    if (o.timeout_ns > 0) {
        int64_t left = o.timeout_ns - (shml__os_mono_ns() - start);
        o.timeout_ns = left > 0 ? left : 0;
    }
    return finish_open(seg, &o, out);
}

int shml_segment_from_fd(int fd, const struct shml_segment_opts *opts, shml_segment **out)
{
    shml__clear_error();
    if (!out)
        return shml__fail(EINVAL, "out is NULL");
    *out = NULL;
    struct shml_segment_opts o;
    int r = normalize_opts(opts, &o);
    if (r < 0)
        return r;
    if (fd < 0)
        return shml__fail(EBADF, "fd %d is not open", fd);
    struct shml__addr a;
    memset(&a, 0, sizeof(a));
    a.shmid = -1;
    int backend = shml__os_fd_address(fd, a.canon, sizeof(a.canon));
    if (backend < 0)
        return shml__fail(-backend, "fd %d: %s", fd, shml__os_strerror(-backend));
    a.backend = backend;
    const struct shml__backend *be = shml__backend_get(backend);
    shml_segment *seg = seg_new(&a, be);
    if (!seg)
        return -ENOMEM;
    int mine = shml__os_fd_dup(fd);
    if (mine < 0) {
        r = shml__fail(-mine, "fd %d: %s", fd, shml__os_strerror(-mine));
        free(seg);
        return r;
    }
    shml__obj_adopt_fd(&seg->obj, mine);
    return finish_open(seg, &o, out);
}

/* SHML_OPEN_OR_CREATE found the segment there: open it, provided it is large enough. */
static int open_existing(const char *addr, const struct shml_segment_opts *o, size_t size,
                         shml_segment **out)
{
    struct shml_segment_opts oo = *o;
    oo.flags &= ~(SHML_OPEN_OR_CREATE | SHML_OWNED); /* create flags: it exists already */
    shml_segment *seg;
    int r = shml_segment_open(addr, &oo, &seg);
    if (r < 0)
        return r;
    /*
     * Only the caller's own: another user's object under the name (mode 0666, say) may have
     * been put there to receive what the caller meant to write into a segment of its own.
     */
    struct shml__objstat st;
    uint32_t me = shml__os_euid();
    if (seg->be->stat(&seg->obj, &st) == 0 && st.uid != me) {
        char canon[SHML_ADDR_MAX];
        snprintf(canon, sizeof(canon), "%s", seg->addr.canon);
        shml_segment_close(seg);
        return shml__fail(EACCES, "%s exists and belongs to uid %u, not to the caller (uid %u): "
                                  "not opened by SHML_OPEN_OR_CREATE (shml_segment_open() "
                                  "opens another user's segment knowingly)",
                          canon, st.uid, me);
    }
    if (seg->size < size) {
        size_t have = seg->size;
        char canon[SHML_ADDR_MAX];
        snprintf(canon, sizeof(canon), "%s", seg->addr.canon);
        shml_segment_close(seg);
        return shml__fail(EINVAL, "%s exists with %zu bytes, fewer than the %zu asked for",
                          canon, have, size);
    }
    *out = seg;
    return 0;
}

int shml_segment_create(const char *addr, size_t size, const struct shml_segment_opts *opts,
                        shml_segment **out)
{
    return shml__segment_create_with(addr, size, opts, NULL, NULL, out);
}

int shml_segment_create_init(const char *addr, size_t size,
                             const struct shml_segment_opts *opts, shml_segment_init_fn init,
                             void *arg, shml_segment **out)
{
    shml__clear_error();
    if (out)
        *out = NULL;
    if (!init)
        return shml__fail(EINVAL, "init is NULL");
    /* The flags are the caller's only once the options' size says they are there. */
    struct shml_segment_opts o;
    int r = normalize_opts(opts, &o);
    if (r < 0)
        return r;
    if (o.flags & SHML_RAW)
        return shml__fail(EINVAL, "a raw segment has no header to publish it after init");
    return shml__segment_create_with(addr, size, &o, init, arg, out);
}

int shml__segment_create_with(const char *addr, size_t size,
                              const struct shml_segment_opts *opts, shml__init_fn init,
                              void *ctx, shml_segment **out)
{
    struct shml_segment_opts o;
    struct shml__addr a;
    const struct shml__backend *be;
    int r = begin(addr, opts, out, &o, &a, &be);
    if (r < 0)
        return r;
    if (size == 0)
        return shml__fail(EINVAL, "size is 0: a segment needs at least one byte");
    if (o.flags & (SHML_RDONLY | SHML_NOATTACH | SHML_WAIT))
        return shml__fail(EINVAL, "SHML_RDONLY, SHML_NOATTACH and SHML_WAIT are open flags, "
                                  "not create flags");
    bool raw = (o.flags & SHML_RAW) != 0;
    bool huge = (o.flags & SHML_HUGEPAGES) != 0;
    if (raw && (o.flags & SHML_OWNED))
        return shml__fail(EINVAL, "SHML_OWNED needs a header to record it in: not with SHML_RAW");
    uint64_t page = huge ? shml__os_hugepage_size() : shml__os_page_size();
    if (page == 0)
        return shml__fail(ENOTSUP, "this system has no huge pages");
    uint64_t header_size = raw ? 0 : (page > SHML_HDR_PAGE ? page : SHML_HDR_PAGE);
    uint64_t object_size = (uint64_t)size + header_size;
    if (object_size < size || object_size > (uint64_t)INT64_MAX || size > SIZE_MAX / 2 ||
        header_size > SHML_HDR_SIZE_MAX)
        return shml__fail(EOVERFLOW, "size %zu is too large", size);
    if (!raw || huge)
        object_size = shml__round_up(object_size, page);
    if (object_size == 0)
        return shml__fail(EOVERFLOW, "size %zu is too large", size);

    shml_segment *seg = seg_new(&a, be);
    if (!seg)
        return -ENOMEM;
    /* Managed segments appear under their name only once READY, where the backend can. */
    bool hidden = !raw && be->publish != NULL;
    r = be->create(&a, object_size, o.mode, o.flags, hidden, &seg->obj);
    if (r < 0) {
        free(seg);
        if (r == -EEXIST && (o.flags & SHML_OPEN_OR_CREATE))
            return open_existing(addr, &o, size, out);
        return r;
    }
    seg->flags = o.flags;
    r = seg_map(seg, (size_t)object_size, false, o.flags);
    if (r < 0) {
        be->discard(&a, &seg->obj);
        seg_free(seg);
        return r;
    }
    seg->data = seg->base;
    seg->size = size;
    if (!raw) {
        struct shml_hdr *h = seg->base;
        uint32_t hflags = (huge ? SHML_HDRF_HUGEPAGES : 0) |
                          ((o.flags & SHML_OWNED) ? SHML_HDRF_OWNED : 0);
        shml__hdr_init(h, o.kind ? o.kind : SHML_KIND_PLAIN, hflags,
                       (uint32_t)header_size, size, object_size, o.label);
        seg->hdr = h;
        seg->kind = o.kind ? o.kind : SHML_KIND_PLAIN;
        seg->data_off = (size_t)header_size;
        seg->data = (char *)seg->base + header_size;
        attach(seg, SHML_ROLE_CREATOR);
        r = init ? init(seg, ctx) : 0;
        if (r < 0) {
            /* Nobody has seen it: the header is not READY, and a hidden object not named. */
            be->discard(&a, &seg->obj);
            seg_free(seg);
            return r;
        }
        /*
         * Release pairs with the opener's acquire load of state in map_managed(): every
         * header field written above is visible to whoever sees READY.
         */
        atomic_store_explicit(&h->state, SHML_STATE_READY, memory_order_release);
    }
    if (hidden) {
        r = be->publish(&a, &seg->obj);
        if (r < 0) {
            be->discard(&a, &seg->obj);
            seg_free(seg);
            if (r == -EEXIST && (o.flags & SHML_OPEN_OR_CREATE))
                return open_existing(addr, &o, size, out);
            return r;
        }
    }
    *out = seg;
    return 0;
}

int shml_segment_close(shml_segment *seg)
{
    if (!seg)
        return 0;
    int r = 0;
    struct shml__objstat st;
    /*
     * Leaving the attach table writes to the header page: if another process truncated the
     * object below it, touching it would raise SIGBUS, and the table is gone anyway.
     */
    bool lost = shml__os_guard_lost(seg->guard); /* the mapping is zeros: nothing to undo */
    bool header_there = !lost && seg->be->stat(&seg->obj, &st) == 0 && st.size >= SHML_HDR_PAGE;
    /*
     * A handle inherited through fork(): the attach entry is the parent's (it names the
     * parent's pid), and the parent still uses it. The child only unmaps.
     */
    bool inherited = seg->pid != shml__os_pid();
    if (seg->hdr && header_there && !inherited) {
        if (seg->slot >= 0)
            shml__attach_remove(seg->hdr, seg->slot, seg->pid);
        if (seg->untracked)
            atomic_fetch_sub_explicit(&seg->hdr->untracked, 1, memory_order_relaxed);
    }
    if (seg->be->sync && !(seg->flags & SHML_RDONLY) && !lost)
        r = seg->be->sync(&seg->obj, seg->base, seg->map_len);
    seg_free(seg);
    return r;
}

int shml_segment_unlink(const char *addr)
{
    shml__clear_error();
    struct shml__addr a;
    const struct shml__backend *be;
    int r = resolve(addr, &a, &be);
    if (r < 0)
        return r;
    return be->unlink(&a);
}

void *shml_segment_data(const shml_segment *seg)
{
    return seg ? seg->data : NULL;
}

size_t shml_segment_size(const shml_segment *seg)
{
    return seg ? seg->size : 0;
}

uint32_t shml__segment_kind(const shml_segment *seg)
{
    /* The validated copy's (seg->kind): the mapped one may have been changed since. */
    return seg ? seg->kind : 0;
}

const char *shml_segment_address(const shml_segment *seg)
{
    return seg ? seg->addr.canon : "";
}

int shml_segment_backend(const shml_segment *seg)
{
    return seg ? seg->addr.backend : -EINVAL;
}

bool shml_segment_is_managed(const shml_segment *seg)
{
    return seg && seg->hdr != NULL;
}

int shml_segment_fd(const shml_segment *seg)
{
    if (!seg)
        return -EINVAL;
    int fd = shml__obj_fd(&seg->obj);
    if (fd < 0)
        return shml__fail(ENOTSUP, "%s segments have no file descriptor", seg->be->name);
    return fd;
}

static int check_range(const shml_segment *seg, size_t offset, size_t len)
{
    if (offset > seg->size || len > seg->size - offset)
        return shml__fail(ERANGE, "%zu bytes at offset %zu run past the end of the %zu-byte "
                                  "segment",
                          len, offset, seg->size);
    return 0;
}

ssize_t shml_segment_read(const shml_segment *seg, size_t offset, void *buf, size_t len)
{
    shml__clear_error();
    if (!seg || (!buf && len))
        return shml__fail(EINVAL, "NULL segment or buffer");
    int r = check_range(seg, offset, len);
    if (r == 0)
        r = shml__segment_lost(seg);
    if (r < 0)
        return r;
    if (len == 0)
        return 0;
    return seg->be->pread(&seg->obj, seg->base, seg->data_off + offset, buf, len);
}

ssize_t shml_segment_write(shml_segment *seg, size_t offset, const void *buf, size_t len)
{
    shml__clear_error();
    if (!seg || (!buf && len))
        return shml__fail(EINVAL, "NULL segment or buffer");
    if (seg->flags & SHML_RDONLY)
        return shml__fail(EBADF, "segment was opened read-only");
    int r = check_range(seg, offset, len);
    if (r == 0)
        r = shml__segment_lost(seg);
    if (r < 0)
        return r;
    if (len == 0)
        return 0;
    return seg->be->pwrite(&seg->obj, seg->base, seg->data_off + offset, buf, len);
}

int shml_segment_check(const shml_segment *seg)
{
    shml__clear_error();
    if (!seg)
        return -EINVAL;
    int r = shml__segment_lost(seg);
    if (r < 0)
        return r;
    struct shml__objstat st;
    r = seg->be->stat(&seg->obj, &st);
    if (r < 0)
        return r;
    if (st.size < seg->map_len)
        return shml__fail(SHML_ETRUNCATED, "object has %llu bytes, %zu are mapped: another "
                                           "process truncated it",
                          (unsigned long long)st.size, seg->map_len);
    return 0;
}

int shml_segment_sync(shml_segment *seg)
{
    shml__clear_error();
    if (!seg)
        return -EINVAL;
    int r = shml__segment_lost(seg);
    if (r < 0 || !seg->be->sync || (seg->flags & SHML_RDONLY))
        return r;
    return seg->be->sync(&seg->obj, seg->base, seg->map_len);
}

/* Bytes and alignment each declared type needs. */
static int decl_shape(uint32_t type, size_t *size, size_t *align)
{
    switch (type) {
    case SHML_DECL_MUTEX:
        *size = sizeof(struct shml_mutex_layout);
        *align = 8;
        return 0;
    case SHML_DECL_EVENT:
        *size = sizeof(struct shml_event_layout);
        *align = 8;
        return 0;
    case SHML_DECL_SEM:
        *size = sizeof(struct shml_sem_layout);
        *align = 8;
        return 0;
    default:
        return -EINVAL;
    }
}

int shml_segment_declare(shml_segment *seg, const char *name, uint32_t type, size_t offset)
{
    shml__clear_error();
    size_t size, align;
    if (!seg || !name)
        return shml__fail(EINVAL, "NULL segment or name");
    if (!seg->hdr)
        return shml__fail(EINVAL, "a raw segment has no header to declare objects in");
    if (seg->flags & SHML_RDONLY)
        return shml__fail(EBADF, "segment was opened read-only");
    if (decl_shape(type, &size, &align) < 0)
        return shml__fail(EINVAL, "unknown declared type %u", type);
    int r = shml__segment_lost(seg);
    if (r < 0)
        return r;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= SHML_DECL_NAME_MAX)
        return shml__fail(EINVAL, "declared name must be 1 to %d bytes", SHML_DECL_NAME_MAX - 1);
    if (offset % align != 0 || offset > seg->size || size > seg->size - offset)
        return shml__fail(EINVAL, "offset %zu is misaligned (needs %zu) or the object runs past "
                                  "the %zu-byte data",
                          offset, align, seg->size);
    struct shml_decl *d = seg->hdr->decl;
    int mine = -1;
    for (int pass = 0; pass < 2; pass++) {
        /*
         * Pass 0 refuses a name already published; pass 1, after publishing ours, withdraws
         * it if a concurrent declarer published the same name in an earlier entry.
         */
        for (int i = 0; i < SHML_DECL_MAX; i++) {
            /* Acquire pairs with the release store of type below: name is final. */
            uint32_t t = atomic_load_explicit(&d[i].type, memory_order_acquire);
            if (i == mine || t == 0 || t == SHML_DECL_BUSY)
                continue;
            if (strncmp(d[i].name, name, sizeof(d[i].name)) == 0 && (pass == 0 || i < mine)) {
                if (mine >= 0)
                    atomic_store_explicit(&d[mine].type, SHML_DECL_BUSY, memory_order_relaxed);
                return shml__fail(EEXIST, "an object named '%s' is already declared", name);
            }
        }
        if (pass == 1)
            break;
        for (int i = 0; i < SHML_DECL_MAX && mine < 0; i++) {
            uint32_t expect = 0;
            /* Acquire: nothing to pair with yet (entries are never freed); claim only. */
            if (atomic_compare_exchange_strong_explicit(&d[i].type, &expect, SHML_DECL_BUSY,
                                                        memory_order_acquire,
                                                        memory_order_relaxed))
                mine = i;
        }
        if (mine < 0)
            return shml__fail(ENOSPC, "all %d declared-object entries are used", SHML_DECL_MAX);
        d[mine].offset = offset;
        memset(d[mine].name, 0, sizeof(d[mine].name));
        memcpy(d[mine].name, name, nlen);
        /* Release pairs with the acquire loads of type by readers: they see offset and name. */
        atomic_store_explicit(&d[mine].type, type, memory_order_release);
    }
    return shml__segment_lost(seg); /* lost meanwhile: the entry went with the mapping */
}

/* The payload of a segment passed over a socket: a tag, then the address. */
static const char FD_TAG[8] = "SHMLFD1";

int shml_segment_send(int sock, const shml_segment *seg)
{
    shml__clear_error();
    if (!seg)
        return -EINVAL;
    int fd = shml__obj_fd(&seg->obj);
    if (fd < 0)
        return shml__fail(ENOTSUP, "%s segments have no fd to send: send the address",
                          seg->be->name);
    char payload[sizeof(FD_TAG) + SHML_ADDR_MAX];
    memcpy(payload, FD_TAG, sizeof(FD_TAG));
    size_t alen = strlen(seg->addr.canon) + 1;
    memcpy(payload + sizeof(FD_TAG), seg->addr.canon, alen);
    int r = shml__os_fd_send(sock, fd, payload, sizeof(FD_TAG) + alen);
    if (r < 0)
        return shml__fail(-r, "sending the fd: %s", shml__os_strerror(-r));
    return 0;
}

int shml_segment_recv(int sock, const struct shml_segment_opts *opts, int64_t timeout_ns,
                      shml_segment **out)
{
    shml__clear_error();
    if (!out)
        return shml__fail(EINVAL, "out is NULL");
    *out = NULL;
    char payload[sizeof(FD_TAG) + SHML_ADDR_MAX];
    int fd;
    ssize_t n = shml__os_fd_recv(sock, &fd, payload, sizeof(payload), timeout_ns);
    if (n < 0)
        return shml__fail((int)-n, "receiving a segment: %s", shml__os_strerror((int)-n));
    if ((size_t)n <= sizeof(FD_TAG) || memcmp(payload, FD_TAG, sizeof(FD_TAG)) != 0 ||
        payload[n - 1] != '\0') {
        shml__os_fd_close(fd);
        return shml__fail(EPROTO, "the peer sent an fd that is not a shmlink segment message");
    }
    int r = shml_segment_from_fd(fd, opts, out);
    shml__os_fd_close(fd);
    if (r == 0) {
        /* The sender's name is the better one (a memfd's name is not unique to /proc). */
        snprintf((*out)->addr.canon, sizeof((*out)->addr.canon), "%s",
                 payload + sizeof(FD_TAG));
    }
    return r;
}
