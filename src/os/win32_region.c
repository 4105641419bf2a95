/*
 * win32_region.c - the registry of this process's mappings of segments (os.h's guards), and
 * the cache of the kernel objects named after their words.
 *
 * Nothing can take a mapping away from under a Windows process: a section backed by the paging
 * file cannot shrink, and a file with a mapped view cannot be truncated (SetEndOfFile fails
 * with ERROR_USER_MAPPED_FILE). So, unlike sigbus_unix.c, no fault is ever caught here and
 * shml__os_guard_lost() is always false. (An I/O error under a "file:" mapping raises
 * EXCEPTION_IN_PAGE_ERROR, which the library does not handle: it ends the process, as a SIGBUS
 * of a disk file does on Linux.)
 *
 * What Windows needs instead is names. Its waits across processes are kernel objects, and two
 * processes reach the same object only by name, while they map a segment at different
 * addresses. So each mapping is registered with the segment's canonical address (its ident,
 * the same in every process), and a word in it is named by the hash of that ident and the
 * word's offset in the mapping (shml__win_region_name()). A word in no registered mapping is
 * the process's own memory and is waited on with WaitOnAddress (win32_futex.c).
 *
 * A kernel call costs 50-400 us under Wine (a round trip to wineserver) and still a few us on
 * Windows, so each process opens a word's object once and keeps the handle in its region,
 * keyed by offset: after the first wait or wake on a word, a wait is one wait call and a wake
 * one release call, nothing else.
 *
 * Concurrency: one SRWLOCK guards the sorted array of regions and every region's cache; lookups
 * take it shared (no kernel call unless an exclusive holder makes them wait), additions and
 * removals exclusive, and no kernel call is made while it is held exclusive. Each region counts
 * references: the registry holds one from add to remove, and every wait or wake holds one while
 * it uses a cached handle, so a handle is closed only when nobody can be using it.
 *
 * A thread still asleep on a word of a region being removed is a use after close (the caller
 * is unmapping memory another of its threads waits in). It does not crash the library: the
 * sleeper's reference keeps the region's handles open, and a sleeper looks at
 * shml__win_region_removed() before each look at its word, so it returns 0 (a spurious wake-up)
 * within a wait slice (win32_futex.c) without touching the unmapped word; the handles are
 * closed when it leaves. What its caller then reads is the caller's own problem, as on Linux.
 */
#include "os/os.h"
#include "os/win32.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One cached handle: key is the word's offset + 1 (0 marks an empty slot). */
struct slot {
    uint64_t key;
    HANDLE h;
};

struct shml__os_guard {
    uintptr_t base;
    size_t len;
    uint64_t hash;        /* FNV-1a 64 of the ident (see ident_hash()) */
    bool global;          /* a "win:Global\..." segment: its objects live in Global\ */
    _Atomic long refs;    /* the registry's one, plus one per user of a cached handle */
    _Atomic bool removed; /* set by shml__os_guard_remove() */
    struct slot *slots;   /* open addressing, linear probing; under reg_lock */
    size_t cap;           /* a power of two, or 0 */
    size_t used;
};

static SRWLOCK reg_lock = SRWLOCK_INIT;
static struct shml__os_guard **regs; /* sorted by base; under reg_lock */
static size_t nregs, capregs;

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/*
 * The hash that names a segment's objects: FNV-1a 64 of its ident. "win:Local\X" and "win:X"
 * are the same section (Local\ is the default namespace), so a Local\ prefix is left out of
 * what is hashed, and both spellings name the same objects. A NULL ident hashes as "".
 */
static uint64_t ident_hash(const char *ident, bool *global)
{
    uint64_t h = 0xcbf29ce484222325ull;
    *global = false;
    if (!ident)
        return h;
    size_t skip = 0; /* bytes left out after "win:" */
    if (strncmp(ident, "win:", 4) == 0) {
        if (strncmp(ident + 4, "Global\\", 7) == 0)
            *global = true;
        else if (strncmp(ident + 4, "Local\\", 6) == 0)
            skip = 6;
    }
    if (skip == 0)
        return fnv1a(h, ident, strlen(ident));
    h = fnv1a(h, ident, 4);
    return fnv1a(h, ident + 4 + skip, strlen(ident + 4 + skip));
}

/* Index of the last region whose base is <= addr, or -1. Under reg_lock. */
static ptrdiff_t find_at(uintptr_t addr)
{
    size_t lo = 0, hi = nregs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (regs[mid]->base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

static size_t slot_hash(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* The cached handle for key in r, or NULL. Under reg_lock (shared is enough). */
static HANDLE slot_get(const struct shml__os_guard *r, uint64_t key)
{
    if (r->cap == 0)
        return NULL;
    for (size_t i = slot_hash(key, r->cap);; i = (i + 1) & (r->cap - 1)) {
        if (r->slots[i].key == key)
            return r->slots[i].h;
        if (r->slots[i].key == 0)
            return NULL;
    }
}

/* Put (key, h) into a table that has room for it. */
static void slot_put(struct slot *slots, size_t cap, uint64_t key, HANDLE h)
{
    size_t i = slot_hash(key, cap);
    while (slots[i].key != 0)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].h = h;
}

static void region_destroy(struct shml__os_guard *r)
{
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i].key != 0)
            CloseHandle(r->slots[i].h);
    free(r->slots);
    free(r);
}

int shml__os_guard_add(void *base, size_t len, bool rdonly, const char *ident,
                       struct shml__os_guard **out)
{
    (void)rdonly; /* a read-only mapping's words are still waited on */
    struct shml__os_guard *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base = (uintptr_t)base;
    r->len = len;
    r->hash = ident_hash(ident, &r->global);
    atomic_init(&r->refs, 1); /* the registry's */
    atomic_init(&r->removed, false);

    AcquireSRWLockExclusive(&reg_lock); /* released below, on every path */
    if (nregs == capregs) {
        size_t cap = capregs ? capregs * 2 : 16;
        struct shml__os_guard **grown = realloc(regs, cap * sizeof(*grown));
        if (!grown) {
            ReleaseSRWLockExclusive(&reg_lock);
            free(r);
            return -ENOMEM;
        }
        regs = grown;
        capregs = cap;
    }
    size_t at = (size_t)(find_at(r->base) + 1);
    memmove(regs + at + 1, regs + at, (nregs - at) * sizeof(*regs));
    regs[at] = r;
    nregs++;
    ReleaseSRWLockExclusive(&reg_lock);
    *out = r;
    return 0;
}

void shml__os_guard_remove(struct shml__os_guard *g)
{
    if (!g)
        return;
    AcquireSRWLockExclusive(&reg_lock); /* released below */
    for (size_t i = 0; i < nregs; i++) {
        if (regs[i] == g) {
            memmove(regs + i, regs + i + 1, (nregs - i - 1) * sizeof(*regs));
            nregs--;
            break;
        }
    }
    /* Release pairs with the acquire load in shml__win_region_removed(): a sleeper that sees
       the flag knows its word may be unmapped from now on. */
    atomic_store_explicit(&g->removed, true, memory_order_release);
    ReleaseSRWLockExclusive(&reg_lock);
    shml__win_region_put(g); /* the registry's reference */
}

bool shml__os_guard_lost(const struct shml__os_guard *g)
{
    (void)g; /* nothing can shrink a mapping here (file comment) */
    return false;
}

/* ---- for win32_futex.c and win32_mutex.c (win32.h) ---- */

struct shml__os_guard *shml__win_region_get(const void *addr, uint64_t *off, HANDLE *cached)
{
    uintptr_t a = (uintptr_t)addr;
    struct shml__os_guard *r = NULL;
    *cached = NULL;
    AcquireSRWLockShared(&reg_lock); /* released below */
    ptrdiff_t i = find_at(a);
    if (i >= 0 && a - regs[i]->base < regs[i]->len && regs[i]->len - (a - regs[i]->base) >= 4) {
        r = regs[i];
        /* Relaxed: the lock keeps r in the registry, so its count is at least 1 here; the
           matching decrement in shml__win_region_put() is acq_rel. */
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
        *off = a - r->base;
        *cached = slot_get(r, *off + 1);
    }
    ReleaseSRWLockShared(&reg_lock);
    return r;
}

void shml__win_region_put(struct shml__os_guard *r)
{
    if (!r)
        return;
    /* Acq_rel: every user's work with the handles comes before the last one closes them. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        region_destroy(r);
}

HANDLE shml__win_region_keep(struct shml__os_guard *r, uint64_t off, HANDLE h)
{
    uint64_t key = off + 1;
    HANDLE use = h, drop = NULL;
    AcquireSRWLockExclusive(&reg_lock); /* released below; no kernel call inside */
    HANDLE had = slot_get(r, key);
    if (had) {
        use = had; /* another thread of this process opened it first */
        drop = h;
    } else {
        if ((r->used + 1) * 2 > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            struct slot *grown = calloc(cap, sizeof(*grown));
            if (grown) {
                for (size_t i = 0; i < r->cap; i++)
                    if (r->slots[i].key != 0)
                        slot_put(grown, cap, r->slots[i].key, r->slots[i].h);
                free(r->slots);
                r->slots = grown;
                r->cap = cap;
            }
        }
        if ((r->used + 1) * 2 <= r->cap) {
            slot_put(r->slots, r->cap, key, h);
            r->used++;
        } else {
            use = NULL; /* no memory for the entry */
            drop = h;
        }
    }
    ReleaseSRWLockExclusive(&reg_lock);
    if (drop)
        CloseHandle(drop);
    return use;
}

void shml__win_region_name(const struct shml__os_guard *r, uint64_t off,
                           char name[SHML__WIN_NAME_MAX])
{
    snprintf(name, SHML__WIN_NAME_MAX, "%s\\shmlw-%016llx-%llx", r->global ? "Global" : "Local",
             (unsigned long long)r->hash, (unsigned long long)off);
}

bool shml__win_region_removed(const struct shml__os_guard *r)
{
    /* Acquire pairs with the release store in shml__os_guard_remove(). */
    return atomic_load_explicit(&((struct shml__os_guard *)r)->removed, memory_order_acquire);
}
