/*
 * header.c - the managed header: building it, validating an image of it, the attach table.
 *
 * Validation trusts nothing: it reads a private copy of the header page and checks every field
 * before any offset in it is used, so a corrupt or hostile segment gives an error, never a
 * crash (this file is fuzzed). The attach table is shared by every process that has the
 * segment open; its protocol is described beside struct shml_attach in layout.h.
 */
#include "os/os.h"
#include "segment/backend.h"

#include <string.h>

uint64_t shml__round_up(uint64_t v, uint64_t align)
{
    uint64_t r = (v + align - 1) & ~(align - 1);
    return r < v ? 0 : r;
}

uint32_t shml__hdr_checksum(const struct shml_hdr *h)
{
    const uint8_t *p = (const uint8_t *)h;
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < SHML_HDR_CHECKED_LEN; i++) {
        x ^= p[i];
        x *= 16777619u;
    }
    return x;
}

void shml__hdr_init(struct shml_hdr *h, uint32_t kind, uint32_t flags, uint32_t header_size,
                    uint64_t size, uint64_t map_size, const char *label)
{
    /* The object is fresh (all zero) but the header may be a reused buffer: clear it all. */
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, SHML_MAGIC_BYTES, SHML_MAGIC_LEN);
    h->version = SHML_LAYOUT_VERSION;
    h->header_size = header_size;
    h->kind = kind;
    h->flags = flags;
    h->size = size;
    h->map_size = map_size;
    h->creator_pid = shml__os_pid();
    h->owner_uid = shml__os_euid();
    uint64_t start = 0;
    (void)shml__os_proc_start(h->creator_pid, &start);
    h->creator_start = start;
    h->created_ns = shml__os_real_ns();
    (void)shml__os_boot_id(h->boot_id);
    if (label)
        strncpy(h->label, label, sizeof(h->label) - 1);
    h->attach_off = SHML_ATTACH_OFF;
    h->attach_cap = SHML_ATTACH_CAP;
    h->attach_size = SHML_ATTACH_SIZE;
    h->check = shml__hdr_checksum(h);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

int shml__hdr_validate(const void *image, size_t len, uint64_t object_size)
{
    const uint8_t *b = image;
    if (len < SHML_MAGIC_LEN || object_size < SHML_MAGIC_LEN) {
        if (object_size == 0)
            return -EAGAIN; /* created, not yet sized */
        return shml__fail(SHML_ENOTSHML, "object is only %llu bytes: too small for a shmlink "
                                         "header (open it raw)",
                          (unsigned long long)object_size);
    }
    if (memcmp(b, SHML_MAGIC_BYTES, SHML_MAGIC_LEN) != 0) {
        if (all_zero(b, SHML_MAGIC_LEN))
            return -EAGAIN; /* blank: a creator may be about to write it */
        return shml__fail(SHML_ENOTSHML, "no shmlink header (magic bytes absent): open it raw");
    }
    if (len < SHML_HDR_PAGE || object_size < SHML_HDR_PAGE)
        return shml__fail(SHML_ECORRUPT, "truncated: object has %llu bytes, less than the "
                                         "%u-byte header",
                          (unsigned long long)object_size, SHML_HDR_PAGE);

    /* The image is a private copy, so plain reads are fine; the layout is the struct's. */
    struct shml_hdr h;
    memcpy(&h, b, sizeof(h));
    if (h.version != SHML_LAYOUT_VERSION) {
        /*
         * Every layout keeps magic, version and the check of the first bytes where version 1
         * puts them (docs/FORMAT.md), so another version is believed only when that check
         * holds; otherwise the bytes after the magic are garbage, not a later layout.
         */
        if (shml__hdr_checksum(&h) != h.check)
            return shml__fail(SHML_ECORRUPT, "header checksum mismatch (stored 0x%08x, "
                                             "computed 0x%08x): the header was overwritten",
                              h.check, shml__hdr_checksum(&h));
        return shml__fail(SHML_EVERSION, "layout version %u; this library reads version %u",
                          h.version, SHML_LAYOUT_VERSION);
    }
    uint32_t state = atomic_load_explicit(&h.state, memory_order_relaxed); /* local copy */
    if (state == SHML_STATE_INIT)
        return -EAGAIN;
    if (state != SHML_STATE_READY)
        return shml__fail(SHML_ECORRUPT, "state word 0x%08x is not a known state", state);
    if (shml__hdr_checksum(&h) != h.check)
        return shml__fail(SHML_ECORRUPT, "header checksum mismatch (stored 0x%08x, computed "
                                         "0x%08x): the header was overwritten",
                          h.check, shml__hdr_checksum(&h));
    if (h.flags & ~SHML_HDRF_KNOWN)
        return shml__fail(SHML_EVERSION, "header flags 0x%x include features this library does "
                                         "not know",
                          h.flags);
    if (h.header_size < SHML_HDR_PAGE || h.header_size > SHML_HDR_SIZE_MAX ||
        h.header_size % SHML_HDR_PAGE != 0)
        return shml__fail(SHML_ECORRUPT, "header size %u is not a multiple of %u in [%u, %u]",
                          h.header_size, SHML_HDR_PAGE, SHML_HDR_PAGE, SHML_HDR_SIZE_MAX);
    if (h.kind == 0)
        return shml__fail(SHML_ECORRUPT, "kind is 0");
    if (h.size == 0)
        return shml__fail(SHML_ECORRUPT, "logical size is 0");
    uint64_t need = h.header_size + h.size;
    if (need < h.size || h.map_size < need || h.map_size % SHML_HDR_PAGE != 0 ||
        h.map_size - need >= h.header_size)
        return shml__fail(SHML_ECORRUPT, "sizes disagree: header %u + data %llu, mapped %llu",
                          h.header_size, (unsigned long long)h.size,
                          (unsigned long long)h.map_size);
    if (h.map_size > object_size)
        return shml__fail(SHML_ECORRUPT, "truncated: object has %llu bytes, header needs %llu",
                          (unsigned long long)object_size, (unsigned long long)h.map_size);
    if (h.attach_off != SHML_ATTACH_OFF || h.attach_cap != SHML_ATTACH_CAP ||
        h.attach_size != SHML_ATTACH_SIZE)
        return shml__fail(SHML_ECORRUPT, "attach table at %u (%u x %u bytes) is not where "
                                         "version 1 puts it",
                          h.attach_off, h.attach_cap, h.attach_size);
    if (memchr(h.label, '\0', sizeof(h.label)) == NULL)
        return shml__fail(SHML_ECORRUPT, "label is not NUL-terminated");
    return 0;
}

int shml__attach_add(struct shml_hdr *h, int32_t pid, uint64_t start, uint32_t role)
{
    for (uint32_t i = 0; i < SHML_ATTACH_CAP; i++) {
        struct shml_attach *e = &h->attach[i];
        uint32_t expect = 0;
        /*
         * Acquire on success pairs with the release store of pid = 0 by whoever freed the
         * entry, so their last writes to it happen before ours.
         */
        if (!atomic_compare_exchange_strong_explicit(&e->pid, &expect, (uint32_t)pid,
                                                     memory_order_acquire, memory_order_relaxed))
            continue;
        atomic_store_explicit(&e->start_time, start, memory_order_relaxed);
        atomic_store_explicit(&e->since_ns, (uint64_t)shml__os_real_ns(), memory_order_relaxed);
        atomic_store_explicit(&e->role, role, memory_order_relaxed);
        atomic_store_explicit(&e->pid_ns, shml__os_pid_ns(), memory_order_relaxed);
        /* Release pairs with the acquire load of valid by readers: they see the fields above. */
        atomic_store_explicit(&e->valid, 1, memory_order_release);
        return (int)i;
    }
    return -ENOSPC;
}

void shml__attach_remove(struct shml_hdr *h, int slot, int32_t pid)
{
    if (slot < 0 || slot >= (int)SHML_ATTACH_CAP)
        return;
    struct shml_attach *e = &h->attach[slot];
    /* Only our own entry: a reaper may have taken it if it wrongly believed us dead. */
    if (atomic_load_explicit(&e->pid, memory_order_relaxed) != (uint32_t)pid)
        return;
    atomic_store_explicit(&e->valid, 0, memory_order_relaxed);
    atomic_store_explicit(&e->pid_ns, 0, memory_order_relaxed);
    /* Release pairs with the acquire CAS of the next claimant: our writes come before its. */
    atomic_store_explicit(&e->pid, 0, memory_order_release);
}

int shml__attach_reap(struct shml_hdr *h)
{
    int reaped = 0;
    for (uint32_t i = 0; i < SHML_ATTACH_CAP; i++) {
        struct shml_attach *e = &h->attach[i];
        uint32_t pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
        if (pid == 0 || pid == SHML_ATTACH_BUSY || pid > INT32_MAX)
            continue;
        /* Acquire pairs with the claimant's release store of valid: start_time and pid_ns
           are final. */
        uint64_t start = 0;
        uint32_t ns = 0;
        if (atomic_load_explicit(&e->valid, memory_order_acquire)) {
            start = atomic_load_explicit(&e->start_time, memory_order_relaxed);
            ns = atomic_load_explicit(&e->pid_ns, memory_order_relaxed);
        }
        /* A process of another pid namespace: its pid names another process here, or none. */
        if (shml__os_pid_ns_other(ns) || shml__os_proc_alive((int32_t)pid, start) != 0)
            continue; /* alive, or unknown: never reclaim what might be in use */
        uint32_t expect = pid;
        /* Acquire: the dead process's writes to the entry happen before our reset. */
        if (!atomic_compare_exchange_strong_explicit(&e->pid, &expect, SHML_ATTACH_BUSY,
                                                     memory_order_acquire, memory_order_relaxed))
            continue;
        atomic_store_explicit(&e->valid, 0, memory_order_relaxed);
        atomic_store_explicit(&e->pid_ns, 0, memory_order_relaxed);
        /* Release pairs with the acquire CAS in shml__attach_add(), as a close does. */
        atomic_store_explicit(&e->pid, 0, memory_order_release);
        reaped++;
    }
    return reaped;
}
