/*
 * live.c - the hostile peer of the concurrent fuzz targets (live.h has the schedule).
 */
#include "live.h"

#include "segment/backend.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void parse(struct live *lv, const uint8_t *data, size_t size)
{
    const uint32_t skip_lo = offsetof(struct shml_hdr, state), skip_hi = skip_lo + 4;
    for (size_t i = 0; i + 3 <= size;) {
        uint32_t off = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8;
        uint8_t ctl = data[i + 2];
        size_t n = (size_t)(ctl & 7) + 1;
        i += 3;
        if (n > size - i)
            n = size - i;
        if (n == 0)
            break;
        const uint8_t *bytes = data + i;
        i += n;
        off = (uint32_t)(off % lv->len);
        if (off + n > lv->len)
            n = lv->len - off;
        if (off < skip_hi && off + n > skip_lo)
            continue; /* never the state word (live.h) */
        bool initial = (ctl & 8) != 0;
        size_t *count = initial ? &lv->n_init : &lv->n_step;
        if (*count == LIVE_MAX)
            continue;
        struct live_patch *p = initial ? &lv->init[*count] : &lv->step[*count];
        (*count)++;
        p->off = off;
        p->len = (uint8_t)n;
        memcpy(p->bytes, bytes, n);
    }
}

/*
 * Byte stores, relaxed: the peer promises nothing, as a hostile one would not, and a field
 * wider than a byte may be seen half written (a reader must cope with that too).
 */
static void put(struct live *lv, uint32_t off, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        __atomic_store_n(&lv->map[off + i], bytes[i], __ATOMIC_RELAXED);
    if (!lv->reseal || off >= SHML_HDR_CHECKED_LEN || lv->len < sizeof(struct shml_hdr))
        return;
    /* A peer that knows the format keeps the header's check word right. */
    struct shml_hdr copy;
    for (size_t i = 0; i < SHML_HDR_CHECKED_LEN; i++)
        ((uint8_t *)&copy)[i] = __atomic_load_n(&lv->map[i], __ATOMIC_RELAXED);
    uint32_t check = shml__hdr_checksum(&copy);
    const uint8_t *c = (const uint8_t *)&check;
    for (size_t i = 0; i < sizeof(check); i++)
        __atomic_store_n(&lv->map[SHML_HDR_CHECKED_LEN + i], c[i], __ATOMIC_RELAXED);
}

static void apply(struct live *lv, uint64_t k)
{
    const struct live_patch *p = &lv->step[k % lv->n_step];
    put(lv, p->off, (k / lv->n_step) % 2 == 0 ? p->bytes : p->orig, p->len);
}

static void *mutate(void *arg)
{
    struct live *lv = arg;
    /* Relaxed: the flag only ends the loop; it orders nothing. */
    for (uint64_t k = 0; !atomic_load_explicit(&lv->stop, memory_order_relaxed); k++) {
        apply(lv, k);
        atomic_fetch_add_explicit(&lv->steps, 1, memory_order_relaxed);
    }
    return NULL;
}

void live_begin(struct live *lv, const char *path, const uint8_t *data, size_t size,
                bool reseal, bool threaded)
{
    memset(lv, 0, sizeof(*lv));
    int fd = open(path, O_RDWR);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0)
        abort();
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        abort();
    lv->map = m;
    lv->len = (size_t)sb.st_size;
    lv->reseal = reseal;
    atomic_init(&lv->stop, false);
    atomic_init(&lv->steps, 0);
    parse(lv, data, size);
    for (size_t i = 0; i < lv->n_init; i++)
        put(lv, lv->init[i].off, lv->init[i].bytes, lv->init[i].len);
    for (size_t i = 0; i < lv->n_step; i++)
        memcpy(lv->step[i].orig, lv->map + lv->step[i].off, lv->step[i].len);
    if (!threaded || lv->n_step == 0)
        return;
    if (pthread_create(&lv->thread, NULL, mutate, lv) != 0)
        return; /* no thread: the run goes on as a stepped one without steps */
    lv->threaded = true;
    /* One step before the library starts, so even a fast run meets a mutation. */
    while (atomic_load_explicit(&lv->steps, memory_order_relaxed) == 0)
        sched_yield();
}

void live_step(struct live *lv)
{
    if (!lv->threaded && lv->n_step > 0)
        apply(lv, lv->next++);
}

void live_end(struct live *lv)
{
    if (lv->threaded) {
        atomic_store_explicit(&lv->stop, true, memory_order_relaxed);
        pthread_join(lv->thread, NULL);
        lv->threaded = false;
    }
    if (lv->map)
        munmap(lv->map, lv->len);
    lv->map = NULL;
}
