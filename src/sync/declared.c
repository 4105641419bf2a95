/*
 * declared.c - shml_segment_declared(): the state of the synchronisation objects a segment
 * declares, read without attaching, mapping or locking (copies through the backend, so a
 * corrupt or shrinking segment cannot make a tool crash).
 */
#include "layout.h"
#include "os/os.h"
#include "segment/backend.h"

#include <string.h>

/* Describe one object from a private copy of its bytes. */
static void describe(struct shml_decl_info *di, const void *bytes)
{
    switch (di->type) {
    case SHML_DECL_MUTEX:
        di->status = shml_mutex_inspect(bytes, &di->mutex);
        break;
    case SHML_DECL_EVENT: {
        const struct shml_event_layout *e = bytes;
        /* Relaxed: a private copy. */
        if (atomic_load_explicit(&e->magic, memory_order_relaxed) != SHML_EVENT_MAGIC) {
            di->status = -EINVAL;
            break;
        }
        di->generation = atomic_load_explicit(&e->gen, memory_order_relaxed);
        di->waiters = SHML_WAITERS_COUNT(atomic_load_explicit(&e->waiters, memory_order_relaxed));
        break;
    }
    case SHML_DECL_SEM: {
        const struct shml_sem_layout *s = bytes;
        if (atomic_load_explicit(&s->magic, memory_order_relaxed) != SHML_SEM_MAGIC) {
            di->status = -EINVAL;
            break;
        }
        di->value = atomic_load_explicit(&s->value, memory_order_relaxed);
        di->waiters = SHML_WAITERS_COUNT(atomic_load_explicit(&s->waiters, memory_order_relaxed));
        break;
    }
    default:
        di->status = -EINVAL;
    }
}

static size_t shape(uint32_t type)
{
    switch (type) {
    case SHML_DECL_MUTEX:
        return sizeof(struct shml_mutex_layout);
    case SHML_DECL_EVENT:
        return sizeof(struct shml_event_layout);
    case SHML_DECL_SEM:
        return sizeof(struct shml_sem_layout);
    default:
        return 0;
    }
}

int shml_segment_declared(const char *addr, struct shml_decl_info *out, size_t cap, size_t *n)
{
    shml__clear_error();
    if (n)
        *n = 0;
    if (!out && cap)
        return shml__fail(EINVAL, "out is NULL");
    struct shml__addr a;
    int r = shml__addr_resolve(addr, &a);
    if (r < 0)
        return r;
    const struct shml__backend *be = shml__backend_get(a.backend);
    if (!be)
        return shml__fail(ENOTSUP, "the backend of %s is not available here", a.canon);
    struct shml__obj obj = SHML__OBJ_CLOSED;
    r = be->open(&a, true, &obj);
    if (r < 0)
        return r;
    struct shml__objstat st;
    _Alignas(8) uint8_t image[SHML_HDR_PAGE];
    r = be->stat(&obj, &st);
    if (r == 0 && st.size < sizeof(image))
        r = shml__fail(SHML_ENOTSHML, "%s is too small for a shmlink header", a.canon);
    if (r == 0) {
        ssize_t got = be->pread(&obj, NULL, 0, image, sizeof(image));
        r = got < 0 ? (int)got : shml__hdr_validate(image, sizeof(image), st.size);
        bool magic = memcmp(image, SHML_MAGIC_BYTES, SHML_MAGIC_LEN) == 0;
        if (r == -EAGAIN && !magic)
            r = shml__fail(SHML_ENOTSHML, "%s has no shmlink header (it is blank)", a.canon);
        else if (r == -EAGAIN)
            r = shml__fail(ETIMEDOUT, "%s is still being initialised", a.canon);
    }
    size_t count = 0;
    const struct shml_hdr *h = (const struct shml_hdr *)image;
    for (int i = 0; r == 0 && i < SHML_DECL_MAX; i++) {
        const struct shml_decl *d = &h->decl[i];
        /* Relaxed: a private copy of the header. */
        uint32_t type = atomic_load_explicit(&d->type, memory_order_relaxed);
        if (type == 0 || type == SHML_DECL_BUSY)
            continue;
        if (count < cap) {
            struct shml_decl_info *di = &out[count];
            memset(di, 0, sizeof(*di));
            memcpy(di->name, d->name, sizeof(di->name) - 1);
            di->type = type;
            di->offset = d->offset;
            size_t size = shape(type);
            _Alignas(32) uint8_t bytes[64];
            if (size == 0) {
                di->status = -EINVAL;
            } else if (d->offset > h->size || size > h->size - d->offset) {
                di->status = -ERANGE;
            } else {
                ssize_t got = be->pread(&obj, NULL, h->header_size + d->offset, bytes, size);
                if (got < 0)
                    di->status = (int)got;
                else
                    describe(di, bytes);
            }
        }
        count++;
    }
    be->release(&obj);
    if (r == 0 && n)
        *n = count;
    return r;
}
