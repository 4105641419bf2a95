/*
 * sigbus_unix.c - surviving an object that shrinks under its mapping.
 *
 * Touching a page of a MAP_SHARED mapping that lies past the end of its object (another
 * process truncated it), or that tmpfs cannot back (a sparse object when /dev/shm is full),
 * raises SIGBUS, whose default action kills the process. Any process allowed to write a
 * segment can truncate it, so without help one faulty peer kills every user of a channel.
 *
 * Algorithm: every mapping the library makes is recorded in a registry (base, length,
 * protection) that a signal handler can read without locks. A SIGBUS handler, installed when
 * a segment is mapped, looks the faulting address up: inside a registered mapping, it maps
 * anonymous zero pages over the whole mapping (MAP_FIXED: same address, same length, so no
 * offset the library computed points outside it) and marks the entry lost; the faulting access
 * then completes on zeros, and the segment's calls report -SHML_ETRUNCATED from then on. The
 * segment's contents are gone either way: the object no longer has them.
 *
 * Chaining: a SIGBUS outside our mappings, or one sent by kill(), is not ours. The handler puts
 * back the disposition it found when it was installed and lets the signal happen again (a
 * fault re-executes the access; a sent signal is raised again), so the program's own handler,
 * or the default action with its core dump, sees it as if we had never been there. A handler
 * installed after ours (Python's faulthandler, say) is found at the next mapping, and ours goes
 * on top of it again, chaining to it. SHML_NO_SIGBUS_GUARD=1 in the environment (read once)
 * leaves SIGBUS alone.
 *
 * Registry: chunks of entries, the first static, more appended with a CAS and never freed, so
 * the handler walks a list that only grows. An entry is FREE, BUSY (being filled or emptied)
 * or LIVE; the handler only looks at LIVE ones. A segment closed by one thread while another
 * faults in it is a use after close, which this does not make safe.
 */
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

enum { GUARD_FREE, GUARD_BUSY, GUARD_LIVE };

struct shml__os_guard {
    shml_atomic_u32 state;       /* GUARD_* */
    shml_atomic_u32 lost;        /* 1 once the handler replaced the mapping */
    int prot;                    /* the mapping's protection, kept by the zero pages */
    _Atomic uintptr_t base;
    _Atomic size_t len;
};

#define CHUNK_ENTRIES 64

struct chunk {
    struct shml__os_guard e[CHUNK_ENTRIES];
    _Atomic(struct chunk *) next;
};

static struct chunk first_chunk;

/* The disposition found when the handler was last installed: two copies, so that a
   reinstall writes the one the handler is not reading. */
static struct sigaction prev_act[2];
static atomic_int prev_cur;
/* Set when the handler gave a signal away; a second one then takes the default action (the
   handler given it may have put ours back, and would be handed it again forever). */
static atomic_int gave_away;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int opted_out = -1; /* under install_lock */

static bool acts_ours(const struct sigaction *sa);

static void give_away(int sig, const siginfo_t *si)
{
    /* Acquire pairs with the release store of prev_cur in install(): the copy is complete. */
    struct sigaction prev = prev_act[atomic_load_explicit(&prev_cur, memory_order_acquire)];
    /* Relaxed: a flag of this process, read and set by the handler only (install resets it). */
    if (acts_ours(&prev) || atomic_exchange_explicit(&gave_away, 1, memory_order_relaxed)) {
        memset(&prev, 0, sizeof(prev));
        prev.sa_handler = SIG_DFL;
    }
    sigaction(sig, &prev, NULL);
    /* A fault happens again when the access is re-executed; a signal sent by someone does
       not: send it again, to whoever handles it now (it stays blocked until we return). */
    if (si->si_code <= 0)
        raise(sig);
}

/* The LIVE entry whose mapping holds addr, or NULL. */
static struct shml__os_guard *lookup(uintptr_t addr)
{
    for (struct chunk *c = &first_chunk; c;
         c = atomic_load_explicit(&c->next, memory_order_acquire)) { /* pairs: take_entry */
        for (int i = 0; i < CHUNK_ENTRIES; i++) {
            struct shml__os_guard *g = &c->e[i];
            /* Acquire pairs with the release store of LIVE in shml__os_guard_add(). */
            if (atomic_load_explicit(&g->state, memory_order_acquire) != GUARD_LIVE)
                continue;
            uintptr_t base = atomic_load_explicit(&g->base, memory_order_relaxed);
            size_t len = atomic_load_explicit(&g->len, memory_order_relaxed);
            if (addr - base < len)
                return g;
        }
    }
    return NULL;
}

/* Async-signal-safe: atomics that are lock-free, mmap, sigaction, raise. */
static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    int saved = errno;
    /* si_code > 0: raised by the kernel for an access, so si_addr is where it faulted. */
    struct shml__os_guard *g = si->si_code > 0 ? lookup((uintptr_t)si->si_addr) : NULL;
    if (g) {
        void *base = (void *)atomic_load_explicit(&g->base, memory_order_relaxed);
        size_t len = atomic_load_explicit(&g->len, memory_order_relaxed);
        void *p = mmap(base, len, g->prot,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED) {
            /* Release pairs with the acquire in shml__os_guard_lost(): whoever sees the flag
               sees the zero pages in place. */
            atomic_store_explicit(&g->lost, 1, memory_order_release);
            errno = saved;
            return;
        }
        /* No memory even for zeros: this fault cannot be survived. */
    }
    give_away(sig, si);
    errno = saved;
}

static bool acts_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigbus;
}

/* Put the handler on top of SIGBUS unless it is there already (or the user opted out). */
static void install(void)
{
    pthread_mutex_lock(&install_lock); /* released below, on every path */
    if (opted_out < 0) {
        const char *e = getenv("SHML_NO_SIGBUS_GUARD");
        opted_out = e && *e && strcmp(e, "0") != 0;
    }
    struct sigaction cur;
    if (!opted_out && sigaction(SIGBUS, NULL, &cur) == 0 && !acts_ours(&cur)) {
        int next = 1 - atomic_load_explicit(&prev_cur, memory_order_relaxed);
        prev_act[next] = cur;
        /* Release pairs with the acquire in give_away(). */
        atomic_store_explicit(&prev_cur, next, memory_order_release);
        atomic_store_explicit(&gave_away, 0, memory_order_relaxed);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        /* SA_ONSTACK: a thread that set up an alternate stack gets it (its own may be full). */
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, NULL);
    }
    pthread_mutex_unlock(&install_lock); /* pairs with the lock above */
}

/* A FREE entry of the registry, made BUSY; a new chunk when all are taken. */
static struct shml__os_guard *take_entry(void)
{
    for (struct chunk *c = &first_chunk;;) {
        for (int i = 0; i < CHUNK_ENTRIES; i++) {
            uint32_t expect = GUARD_FREE;
            /* Acquire pairs with the release store of FREE in shml__os_guard_remove(): the
               last user is done with the entry. */
            if (atomic_compare_exchange_strong_explicit(&c->e[i].state, &expect, GUARD_BUSY,
                                                        memory_order_acquire,
                                                        memory_order_relaxed))
                return &c->e[i];
        }
        /* Acquire pairs with the release CAS below: the chunk is zeroed (all FREE). */
        struct chunk *next = atomic_load_explicit(&c->next, memory_order_acquire);
        if (!next) {
            struct chunk *fresh = calloc(1, sizeof(*fresh));
            if (!fresh)
                return NULL;
            /* Release pairs with the acquire loads of next, here and in the handler. */
            if (atomic_compare_exchange_strong_explicit(&c->next, &next, fresh,
                                                        memory_order_release,
                                                        memory_order_acquire))
                next = fresh;
            else
                free(fresh); /* another thread appended one first: use that */
        }
        c = next;
    }
}

int shml__os_guard_add(void *base, size_t len, bool rdonly, const char *ident,
                       struct shml__os_guard **out)
{
    (void)ident; /* futexes need no names */
    install();
    struct shml__os_guard *g = take_entry();
    if (!g)
        return -ENOMEM;
    g->prot = rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
    atomic_store_explicit(&g->base, (uintptr_t)base, memory_order_relaxed);
    atomic_store_explicit(&g->len, len, memory_order_relaxed);
    atomic_store_explicit(&g->lost, 0, memory_order_relaxed);
    /* Release pairs with the handler's acquire load of state: it sees base, len, prot. */
    atomic_store_explicit(&g->state, GUARD_LIVE, memory_order_release);
    *out = g;
    return 0;
}

void shml__os_guard_remove(struct shml__os_guard *g)
{
    if (!g)
        return;
    /* Relaxed: BUSY hides the entry from the handler before its fields change; the caller
       unmaps only after this returns, so no new fault can be in it. */
    atomic_store_explicit(&g->state, GUARD_BUSY, memory_order_relaxed);
    atomic_store_explicit(&g->base, 0, memory_order_relaxed);
    atomic_store_explicit(&g->len, 0, memory_order_relaxed);
    /* Release pairs with the acquire CAS in take_entry(): the entry is empty. */
    atomic_store_explicit(&g->state, GUARD_FREE, memory_order_release);
}

bool shml__os_guard_lost(const struct shml__os_guard *g)
{
    /* Acquire pairs with the handler's release store of lost. */
    return g && atomic_load_explicit((shml_atomic_u32 *)&g->lost, memory_order_acquire) != 0;
}

uint64_t shml__os_fd_unbacked(int fd, uint64_t size)
{
    /*
     * Only tmpfs (/dev/shm, memfd, a tmpfs /tmp) is asked: there st_blocks counts exactly the
     * pages the object has, in 512-byte units, and a page it lacks is a SIGBUS waiting for a
     * full file system. Elsewhere blocks can be fewer for other reasons (compression,
     * deduplication, inline data), and a disk file system grows a file by writing to it.
     */
    struct statfs sfs;
    struct stat sb;
    if (fstatfs(fd, &sfs) != 0 || sfs.f_type != TMPFS_MAGIC || fstat(fd, &sb) != 0)
        return 0;
    uint64_t have = (uint64_t)sb.st_blocks * 512;
    return have < size ? size - have : 0;
}
