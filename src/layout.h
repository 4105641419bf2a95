/*
 * layout.h - the on-memory format: the one place that declares bytes in shared memory.
 *
 * Everything here is a wire format read by other processes, other builds of shmlink and other
 * languages (docs/FORMAT.md documents it byte by byte; the two change together). Fixed-width
 * types, explicit padding, little-endian (the only byte order shmlink runs on), offsets never
 * pointers, and a _Static_assert on every size and offset.
 */
#ifndef SHML_LAYOUT_H
#define SHML_LAYOUT_H

#include "atomic.h"

#include <stddef.h>
#include <stdint.h>

/* "SHMLINK" followed by a NUL: bytes 53 48 4d 4c 49 4e 4b 00. */
#define SHML_MAGIC_BYTES "SHMLINK"
#define SHML_MAGIC_LEN   8

/* Layout version of the header below. An opener refuses versions it does not know. */
#define SHML_LAYOUT_VERSION 1u

/* Bytes of the header page, and so the smallest header_size. */
#define SHML_HDR_PAGE 4096u
/* Largest header_size an opener accepts (a 1 GiB huge page). */
#define SHML_HDR_SIZE_MAX (1u << 30)

/* hdr.state: the word published last. */
#define SHML_STATE_INIT  0u          /* creator is still writing the header */
#define SHML_STATE_READY 0x59444552u /* "REDY": every other header field is final */

/* hdr.flags */
#define SHML_HDRF_HUGEPAGES 0x1u /* backed by huge pages; header_size is one huge page */
#define SHML_HDRF_OWNED     0x2u /* belongs to its creator: gc removes it once the creator and
                                    every attached process are gone */
#define SHML_HDRF_KNOWN     0x3u /* flags this version understands */

/* Bytes covered by hdr.check: every field before it, which never changes after creation. */
#define SHML_HDR_CHECKED_LEN 156u

/* The attach table: where and how large, fixed in version 1. */
#define SHML_ATTACH_OFF  1024u
#define SHML_ATTACH_CAP  96u
#define SHML_ATTACH_SIZE 32u

/*
 * One process attached to the segment. An entry is free while pid == 0.
 *
 * Claim: CAS pid 0 -> own pid; write start_time, since_ns, role, pid_ns (relaxed); then store
 * valid = 1 (release, pairs with the acquire load of valid by readers, so a reader that sees
 * valid == 1 sees the fields). Release (close): store valid = 0, then pid = 0 (release).
 * Reclaim of a dead process's entry: CAS pid DEAD -> SHML_ATTACH_BUSY, valid = 0, pid = 0.
 * pid and start_time mean something only inside the pid namespace pid_ns names: a process of
 * another namespace neither judges nor reclaims the entry (0: unknown, judged as the caller's).
 */
struct shml_attach {
    shml_atomic_u32 pid;        /* 0: free; SHML_ATTACH_BUSY: being reclaimed */
    shml_atomic_u32 valid;      /* 1 once the fields below are written */
    shml_atomic_u64 start_time; /* process start time, clock ticks since boot */
    shml_atomic_u64 since_ns;   /* CLOCK_REALTIME ns of the attach */
    shml_atomic_u32 role;       /* SHML_ROLE_* or application-defined */
    shml_atomic_u32 pid_ns;     /* the process's pid namespace tag (shml__os_pid_ns()), 0 unknown */
};
#define SHML_ATTACH_BUSY 0xffffffffu

_Static_assert(sizeof(struct shml_attach) == SHML_ATTACH_SIZE, "attach entry size");
_Static_assert(offsetof(struct shml_attach, pid) == 0, "attach.pid");
_Static_assert(offsetof(struct shml_attach, valid) == 4, "attach.valid");
_Static_assert(offsetof(struct shml_attach, start_time) == 8, "attach.start_time");
_Static_assert(offsetof(struct shml_attach, since_ns) == 16, "attach.since_ns");
_Static_assert(offsetof(struct shml_attach, role) == 24, "attach.role");
_Static_assert(offsetof(struct shml_attach, pid_ns) == 28, "attach.pid_ns");

/*
 * The directory of declared objects (shml_segment_declare()): up to SHML_DECL_MAX entries
 * at SHML_DECL_OFF in the header, naming synchronisation objects in the data so that tools
 * can show their state. An entry is free while type == 0.
 *
 * Declare: CAS type 0 -> SHML_DECL_BUSY (acquire), write offset and name, then store the real
 * type (release, pairs with the acquire load of type by readers: a reader that sees a type
 * sees the offset and name). Entries are never removed.
 */
struct shml_decl {
    shml_atomic_u32 type; /* 0 free, SHML_DECL_BUSY being written, else SHML_DECL_* */
    uint32_t reserved;    /* zero */
    uint64_t offset;      /* from the start of the data */
    char name[24];        /* NUL-terminated */
};
#define SHML_DECL_OFF  256u
#define SHML_DECL_BUSY 0xffffffffu
_Static_assert(sizeof(struct shml_decl) == 40, "declared-object entry size");
_Static_assert(offsetof(struct shml_decl, type) == 0, "decl.type");
_Static_assert(offsetof(struct shml_decl, reserved) == 4, "decl.reserved");
_Static_assert(offsetof(struct shml_decl, offset) == 8, "decl.offset");
_Static_assert(offsetof(struct shml_decl, name) == 16, "decl.name");

/*
 * The managed segment header: the first SHML_HDR_PAGE bytes of the object. The caller's data
 * starts at header_size (a multiple of the page size; one huge page for huge-page segments).
 *
 * Creation: the creator makes the object (all zero), writes every field with state == INIT,
 * computes check, then stores state = READY with release (pairs with the opener's acquire load
 * of state: an opener that sees READY sees every field). Fields before `check` never change
 * afterwards; state, untracked and the attach table do.
 */
struct shml_hdr {
    uint8_t magic[SHML_MAGIC_LEN];   /*   0: "SHMLINK\0" */
    uint32_t version;                /*   8: SHML_LAYOUT_VERSION */
    uint32_t header_size;            /*  12: bytes before the data; page multiple >= 4096 */
    uint32_t kind;                   /*  16: SHML_KIND_* (never 0) */
    uint32_t flags;                  /*  20: SHML_HDRF_* */
    uint64_t size;                   /*  24: logical size of the data, > 0 */
    uint64_t map_size;               /*  32: header_size + size rounded up to the page */
    int32_t creator_pid;             /*  40 */
    uint32_t owner_uid;              /*  44: euid of the creator */
    uint64_t creator_start;          /*  48: creator start time, ticks since boot */
    int64_t created_ns;              /*  56: CLOCK_REALTIME ns at creation */
    uint8_t boot_id[16];             /*  64: /proc/sys/kernel/random/boot_id of that boot */
    char label[64];                  /*  80: NUL-terminated, NUL-padded */
    uint32_t attach_off;             /* 144: SHML_ATTACH_OFF */
    uint32_t attach_cap;             /* 148: SHML_ATTACH_CAP */
    uint32_t attach_size;            /* 152: SHML_ATTACH_SIZE */
    uint32_t check;                  /* 156: FNV-1a 32 of bytes 0..155 */
    shml_atomic_u32 state;           /* 160: SHML_STATE_*, published last */
    shml_atomic_u32 untracked;       /* 164: attaches that found the table full */
    uint8_t reserved[SHML_DECL_OFF - 168]; /* 168: zero, reserved */
    struct shml_decl decl[8];        /* 256: declared objects (SHML_DECL_MAX) */
    uint8_t reserved2[SHML_ATTACH_OFF - 576]; /* 576: zero, reserved */
    struct shml_attach attach[SHML_ATTACH_CAP]; /* 1024 */
};

_Static_assert(sizeof(struct shml_hdr) == SHML_HDR_PAGE, "header is one 4 KiB page");
_Static_assert(offsetof(struct shml_hdr, magic) == 0, "hdr.magic");
_Static_assert(offsetof(struct shml_hdr, version) == 8, "hdr.version");
_Static_assert(offsetof(struct shml_hdr, header_size) == 12, "hdr.header_size");
_Static_assert(offsetof(struct shml_hdr, kind) == 16, "hdr.kind");
_Static_assert(offsetof(struct shml_hdr, flags) == 20, "hdr.flags");
_Static_assert(offsetof(struct shml_hdr, size) == 24, "hdr.size");
_Static_assert(offsetof(struct shml_hdr, map_size) == 32, "hdr.map_size");
_Static_assert(offsetof(struct shml_hdr, creator_pid) == 40, "hdr.creator_pid");
_Static_assert(offsetof(struct shml_hdr, owner_uid) == 44, "hdr.owner_uid");
_Static_assert(offsetof(struct shml_hdr, creator_start) == 48, "hdr.creator_start");
_Static_assert(offsetof(struct shml_hdr, created_ns) == 56, "hdr.created_ns");
_Static_assert(offsetof(struct shml_hdr, boot_id) == 64, "hdr.boot_id");
_Static_assert(offsetof(struct shml_hdr, label) == 80, "hdr.label");
_Static_assert(offsetof(struct shml_hdr, attach_off) == 144, "hdr.attach_off");
_Static_assert(offsetof(struct shml_hdr, attach_cap) == 148, "hdr.attach_cap");
_Static_assert(offsetof(struct shml_hdr, attach_size) == 152, "hdr.attach_size");
_Static_assert(offsetof(struct shml_hdr, check) == SHML_HDR_CHECKED_LEN, "hdr.check");
_Static_assert(offsetof(struct shml_hdr, state) == 160, "hdr.state");
_Static_assert(offsetof(struct shml_hdr, untracked) == 164, "hdr.untracked");
_Static_assert(offsetof(struct shml_hdr, reserved) == 168, "hdr.reserved");
_Static_assert(offsetof(struct shml_hdr, decl) == SHML_DECL_OFF, "hdr.decl");
_Static_assert(offsetof(struct shml_hdr, reserved2) == 576, "hdr.reserved2");
_Static_assert(offsetof(struct shml_hdr, attach) == SHML_ATTACH_OFF, "hdr.attach");

/*
 * Synchronisation objects (shmlink/sync.h), embedded by applications in their own layouts.
 * Their public types are opaque byte arrays of the same size and alignment; these are the
 * bytes inside.
 */

/*
 * shml_mutex: the platform's robust process-shared lock in the first SHML_MUTEX_OS_BYTES
 * (on Linux a glibc pthread_mutex_t: 40 bytes, whose int at offset 0 is the robust futex word
 * (holder's thread id | 0x80000000 waiters | 0x40000000 owner died) and whose int at offset 8
 * is the holder's thread id), then the initialisation mark, stored last at init (release, pairs
 * with the acquire load at every call), then who holds it.
 *
 * holder_ns and holder_id name the holding thread beyond its thread id, which the system
 * reuses and which means something only inside one pid namespace: holder_ns is a tag of the
 * holder's pid namespace (shml__os_pid_ns(), 0 unknown); holder_id packs the thread id in the
 * high 32 bits and the low 32 bits of the thread's start time (clock ticks since boot; 0
 * unknown) in the low 32. The holder writes holder_ns (relaxed) then holder_id (release, pairs
 * with the acquire load of a waiter that judges the holder: seeing this holder's id, it sees
 * this holder's namespace) right after it locks, and clears holder_id right before it unlocks
 * (relaxed: the unlock's release orders it for the next holder). A waiter whose lock word and
 * holder_id name different threads knows the holder has not written its identity yet.
 */
#define SHML_MUTEX_OS_BYTES 40u
#define SHML_MUTEX_MAGIC    0x5854554du /* "MUTX" */
struct shml_mutex_layout {
    _Alignas(8) uint8_t os[SHML_MUTEX_OS_BYTES]; /*  0: the platform's lock */
    shml_atomic_u32 holder_ns;                  /* 40: pid namespace tag of the holder */
    uint32_t reserved;                          /* 44: zero */
    shml_atomic_u32 magic;                      /* 48: SHML_MUTEX_MAGIC once initialised */
    shml_atomic_u32 holder_pid;                 /* 52: pid of the last process that locked */
    shml_atomic_u64 holder_id;                  /* 56: SHML_MUTEX_HOLDER_ID; 0 while free */
};
#define SHML_MUTEX_HOLDER_ID(tid, start) (((uint64_t)(uint32_t)(tid) << 32) | (uint32_t)(start))
#define SHML_MUTEX_HOLDER_TID(id)        ((int32_t)(uint32_t)((id) >> 32))
#define SHML_MUTEX_HOLDER_START(id)      ((uint32_t)(id))
_Static_assert(sizeof(struct shml_mutex_layout) == 64, "mutex size");
_Static_assert(offsetof(struct shml_mutex_layout, holder_ns) == 40, "mutex.holder_ns");
_Static_assert(offsetof(struct shml_mutex_layout, reserved) == 44, "mutex.reserved");
_Static_assert(offsetof(struct shml_mutex_layout, magic) == 48, "mutex.magic");
_Static_assert(offsetof(struct shml_mutex_layout, holder_pid) == 52, "mutex.holder_pid");
_Static_assert(offsetof(struct shml_mutex_layout, holder_id) == 56, "mutex.holder_id");

/*
 * The sleeper count of events and semaphores (src/sync/wait.c): a waiter adds one to `count`
 * and to `arrivals` before it sleeps, and takes one from `count` after, unless `epoch` changed
 * meanwhile. A waker whose wake-up call found nobody asleep although `count` is not 0 resets
 * `count` and bumps `epoch` with one compare-and-swap of the whole word: `arrivals`, which
 * only grows, makes that CAS fail if any waiter arrived since the waker read the word, so a
 * reset never erases a live waiter. It exists to heal the count left by waiters that died.
 */
#define SHML_WAITERS_COUNT(w)   ((uint32_t)((w) & 0xffffu))
#define SHML_WAITERS_COUNT_MAX  0xffffu
#define SHML_WAITERS_EPOCH_ONE  ((uint64_t)1 << 16)
#define SHML_WAITERS_ARRIVE     (((uint64_t)1 << 32) | 1u)
#define SHML_WAITERS_EPOCH_MASK ((uint64_t)0xffff0000u)
/* The epoch of w (its bits in place, as arrive() returns it). */
static inline uint64_t shml_waiters_epoch(uint64_t w)
{
    return w & SHML_WAITERS_EPOCH_MASK;
}
/* The arrivals of w (they only grow, and wrap). */
static inline uint32_t shml_waiters_arrivals(uint64_t w)
{
    return (uint32_t)(w >> 32);
}
/* w with its count reset to 0 in the next epoch, its arrivals kept. */
static inline uint64_t shml_waiters_reset(uint64_t w)
{
    return (w & ~(SHML_WAITERS_EPOCH_MASK | SHML_WAITERS_COUNT_MAX)) |
           ((w + SHML_WAITERS_EPOCH_ONE) & SHML_WAITERS_EPOCH_MASK);
}

/*
 * shml_event: gen is the futex word that waiters sleep on; waiters is the sleeper count
 * (above), so notify skips the wake-up system call when nobody sleeps; spin is the number of
 * polls before sleeping. armed, in a channel's events only (0 in an application's): how many
 * channel endpoints are armed on it (SHML_NOTE_ARMED, below), so that a waker looks for
 * descriptors to signal only when it is not 0 (it reads it, after its seq_cst fence, from the
 * line it reads waiters from).
 */
#define SHML_EVENT_MAGIC 0x544e5645u /* "EVNT" */
struct shml_event_layout {
    shml_atomic_u32 gen;     /*  0: generation, the futex word */
    shml_atomic_u32 spin;    /*  4: polls before sleeping */
    shml_atomic_u64 waiters; /*  8: count (bits 0-15), epoch (16-31), arrivals (32-63) */
    shml_atomic_u32 magic;   /* 16: SHML_EVENT_MAGIC once initialised */
    shml_atomic_u32 stale;   /* 20: arrivals | 1 seen by a fruitless wake-up, or 0 */
    shml_atomic_u32 armed;   /* 24: channel events: endpoints armed here; else 0 */
    uint32_t reserved;       /* 28: zero */
};
_Static_assert(sizeof(struct shml_event_layout) == 32, "event size");
_Static_assert(offsetof(struct shml_event_layout, gen) == 0, "event.gen");
_Static_assert(offsetof(struct shml_event_layout, spin) == 4, "event.spin");
_Static_assert(offsetof(struct shml_event_layout, waiters) == 8, "event.waiters");
_Static_assert(offsetof(struct shml_event_layout, magic) == 16, "event.magic");
_Static_assert(offsetof(struct shml_event_layout, stale) == 20, "event.stale");
_Static_assert(offsetof(struct shml_event_layout, armed) == 24, "event.armed");

/*
 * shml_sem: value is the count; posts counts the posts that found sleepers and is the futex
 * word they sleep on (it never returns to a value a waiter saw, as the count can); waiters as
 * in the event.
 */
#define SHML_SEM_MAGIC 0x414d4553u /* "SEMA" */
struct shml_sem_layout {
    shml_atomic_u32 value;   /*  0: the count */
    shml_atomic_u32 posts;   /*  4: the futex word */
    shml_atomic_u64 waiters; /*  8: as in the event */
    shml_atomic_u32 magic;   /* 16: SHML_SEM_MAGIC once initialised */
    uint32_t reserved[3];    /* 20: zero */
};
_Static_assert(sizeof(struct shml_sem_layout) == 32, "semaphore size");
_Static_assert(offsetof(struct shml_sem_layout, value) == 0, "sem.value");
_Static_assert(offsetof(struct shml_sem_layout, posts) == 4, "sem.posts");
_Static_assert(offsetof(struct shml_sem_layout, waiters) == 8, "sem.waiters");
_Static_assert(offsetof(struct shml_sem_layout, magic) == 16, "sem.magic");

/*
 * Channels (shmlink/channel.h). A channel is a managed segment whose kind is the channel kind
 * (SHML_QUEUE 2, SHML_BUS 3, SHML_LATEST 4, SHML_RPC 5). Its data starts with the control
 * block, then the endpoint table at ep_off, the RPC mailboxes at box_off (rpc only), and the
 * slots at slots_off. Each index and each event sits on its own 128-byte line, so producers and
 * consumers do not share a line on the hot path.
 */
#define SHML_CHAN_MAGIC   0x4e414843u /* "CHAN" */
/* 3: slots, buffers and mailboxes name their holders' endpoints (shml_holder()), not pids;
   latest buffer states carry a tag; a bus slot can be "left behind" by a stuck publisher */
#define SHML_CHAN_VERSION 3u
#define SHML_CHAN_HDR     1024u /* bytes of the control block; ep_off since version 2 */
#define SHML_CHANF_SPSC   0x1u  /* flags: one producer and one consumer (queue) */

/* Totals of endpoints that closed or were reclaimed (their counters folded in at that time). */
struct shml_chan_totals {
    shml_atomic_u64 sent;           /* messages sent */
    shml_atomic_u64 bytes_sent;
    shml_atomic_u64 received;       /* messages received */
    shml_atomic_u64 bytes_received;
    shml_atomic_u64 drops;
    shml_atomic_u64 sleeps;
};
_Static_assert(sizeof(struct shml_chan_totals) == 48, "channel totals size");

struct shml_chan_hdr {
    uint32_t magic;                 /*    0: SHML_CHAN_MAGIC */
    uint32_t version;               /*    4: SHML_CHAN_VERSION */
    uint32_t kind;                  /*    8: SHML_QUEUE .. SHML_RPC, as the segment's kind */
    uint32_t flags;                 /*   12: SHML_CHANF_* */
    uint32_t nslots;                /*   16: a power of two >= 2 (latest: >= 4) */
    uint32_t stride;                /*   20: bytes per slot, a multiple of 64 */
    uint64_t max_msg;               /*   24: largest message (rpc: without its 8-byte tag) */
    uint64_t slots_off;             /*   32: from the start of the data */
    uint32_t policy;                /*   40: SHML_BLOCK or SHML_OVERWRITE (bus) */
    uint32_t nendpoints;            /*   44: entries in the endpoint table, 1..4096 */
    uint64_t ep_off;                /*   48: the endpoint table: SHML_CHAN_HDR */
    uint64_t box_off;               /*   56: rpc: the mailboxes (one per endpoint); else 0 */
    uint32_t box_stride;            /*   64: rpc: bytes per mailbox, a multiple of 64; else 0 */
    uint8_t reserved0[60];          /*   68: zero */
    _Alignas(128) shml_atomic_u64 enq; /* 128: queue, bus, rpc: next position to claim for
                                          sending; latest: the current value
                                          (shml_latest_cur()), 0 before the first write */
    uint8_t pad1[120];
    _Alignas(128) shml_atomic_u64 deq; /* 256: queue, rpc: next position to claim for
                                          receiving; bus, latest: unused (0) */
    uint8_t pad2[120];
    _Alignas(128) struct shml_event_layout not_empty; /* 384: receivers sleep here */
    uint8_t pad3[96];
    _Alignas(128) struct shml_event_layout not_full;  /* 512: senders sleep here */
    uint8_t pad4[96];
    _Alignas(128) shml_atomic_u64 lost; /* 640: messages freed because a holder died */
    shml_atomic_u64 servers;        /* 648: rpc: entries of servers (live or dead); else 0 */
    struct shml_chan_totals closed; /* 656: counters of endpoints gone */
    uint8_t reserved1[64];          /* 704: zero */
    /* 768: the type of a message, for typed channels (all zero: untyped bytes). Written at
       create, never changed. */
    uint64_t type_itemsize;         /* 768: bytes of one element */
    uint32_t type_ndim;             /* 776: dimensions, 0 .. SHML_TYPE_NDIM_MAX */
    uint32_t type_format_len;       /* 780: bytes of type_format before its NUL */
    uint64_t type_shape[8];         /* 784: the shape; unused dimensions 0 */
    char type_format[176];          /* 848: PEP 3118 struct format of an element, NUL-ended */
};
_Static_assert(sizeof(struct shml_chan_hdr) == SHML_CHAN_HDR, "channel header size");
_Static_assert(offsetof(struct shml_chan_hdr, nslots) == 16, "chan.nslots");
_Static_assert(offsetof(struct shml_chan_hdr, max_msg) == 24, "chan.max_msg");
_Static_assert(offsetof(struct shml_chan_hdr, slots_off) == 32, "chan.slots_off");
_Static_assert(offsetof(struct shml_chan_hdr, policy) == 40, "chan.policy");
_Static_assert(offsetof(struct shml_chan_hdr, ep_off) == 48, "chan.ep_off");
_Static_assert(offsetof(struct shml_chan_hdr, box_off) == 56, "chan.box_off");
_Static_assert(offsetof(struct shml_chan_hdr, box_stride) == 64, "chan.box_stride");
_Static_assert(offsetof(struct shml_chan_hdr, enq) == 128, "chan.enq");
_Static_assert(offsetof(struct shml_chan_hdr, deq) == 256, "chan.deq");
_Static_assert(offsetof(struct shml_chan_hdr, not_empty) == 384, "chan.not_empty");
_Static_assert(offsetof(struct shml_chan_hdr, not_full) == 512, "chan.not_full");
_Static_assert(offsetof(struct shml_chan_hdr, lost) == 640, "chan.lost");
_Static_assert(offsetof(struct shml_chan_hdr, servers) == 648, "chan.servers");
_Static_assert(offsetof(struct shml_chan_hdr, closed) == 656, "chan.closed");
_Static_assert(offsetof(struct shml_chan_hdr, type_itemsize) == 768, "chan.type_itemsize");
_Static_assert(offsetof(struct shml_chan_hdr, type_shape) == 784, "chan.type_shape");
_Static_assert(offsetof(struct shml_chan_hdr, type_format) == 848, "chan.type_format");

/*
 * An endpoint table entry: one per open handle, 128 bytes so that no two endpoints share a
 * line. `state` is gen (bits 32-63, +1 at each free) | pid (bits 1-31) | used (bit 0), made
 * and read by the SHML_EP_STATE codec below only.
 *
 * Claim: CAS state from free (used 0) to used by own pid (acquire); write pid_ns, start,
 * counters, cursor, pin (relaxed); then store role (seq_cst, pairs with the loads of role by
 * publishers and inspectors: who sees a role sees the fields). Free (close, or reclaim of an
 * entry whose owner died): CAS state to used by the freeing process (so that one process frees
 * it), store role 0 (seq_cst), on reclaim settle the slots its counting records name (queue:
 * below), add the counters to the channel's totals, then (after a release fence) clear the
 * records and counters, and store state free with gen + 1 (release). A freer that dies in
 * between leaves an entry used by a dead process, which the next one frees again (its counters
 * may then be counted twice).
 * The counters are written by the owner alone (relaxed stores) and read by anyone (relaxed).
 * The pid and start time mean something only in the pid namespace pid_ns names: a process of
 * another namespace never judges the owner dead (0: unknown, judged as the caller's own).
 */
#define SHML_EP_SIZE    128u
#define SHML_EP_MAX     4096u
#define SHML_EP_DEFAULT 64u

static inline uint64_t shml_ep_state(uint64_t gen, uint32_t pid, int used)
{
    return (gen << 32) | ((uint64_t)(pid & 0x7fffffffu) << 1) | (used ? 1u : 0u);
}
static inline uint32_t shml_ep_gen(uint64_t st)
{
    return (uint32_t)(st >> 32);
}
static inline uint32_t shml_ep_pid(uint64_t st)
{
    return (uint32_t)(st >> 1) & 0x7fffffffu;
}
static inline int shml_ep_used(uint64_t st)
{
    return (int)(st & 1u);
}

/*
 * Who holds a slot, a latest buffer or an rpc mailbox: not a pid, which another process may
 * take over once the holder died, but the holder's endpoint entry and that entry's generation
 * at the time (every holder holds its entry while it holds anything; the generation moves on
 * when the entry is freed). 30 bits: the entry index + 1 in bits 0-12 (0: no holder) and the
 * low 17 bits of the generation in bits 13-29. The holder is gone when the entry is free or
 * of another generation, or its owner is dead (so a reused pid never keeps a dead holder's
 * slot); an entry freed 2^17 times meanwhile would pass for the holder's own.
 */
#define SHML_HOLDER_INDEX_BITS 13u
#define SHML_HOLDER_GEN_BITS   17u
#define SHML_HOLDER_GEN_MASK   ((1u << SHML_HOLDER_GEN_BITS) - 1u)
_Static_assert(SHML_EP_MAX < (1u << SHML_HOLDER_INDEX_BITS), "holder index bits");
static inline uint32_t shml_holder(uint32_t index, uint32_t gen)
{
    return ((gen & SHML_HOLDER_GEN_MASK) << SHML_HOLDER_INDEX_BITS) | (index + 1u);
}
/* 0 when h names no entry (no holder, a hole, a corrupt value), else 1 with *index set. */
static inline int shml_holder_index(uint32_t h, uint32_t *index)
{
    uint32_t i = h & ((1u << SHML_HOLDER_INDEX_BITS) - 1u);
    if (i == 0 || i > SHML_EP_MAX || h >> (SHML_HOLDER_INDEX_BITS + SHML_HOLDER_GEN_BITS))
        return 0;
    *index = i - 1u;
    return 1;
}
static inline uint32_t shml_holder_gen(uint32_t h)
{
    return (h >> SHML_HOLDER_INDEX_BITS) & SHML_HOLDER_GEN_MASK;
}
/* Does holder h name generation `gen` of its entry (the full generation of the entry)? */
static inline int shml_holder_gen_is(uint32_t h, uint32_t gen)
{
    return shml_holder_gen(h) == (gen & SHML_HOLDER_GEN_MASK);
}

struct shml_chan_ep {
    shml_atomic_u64 state;          /*   0: gen | pid | used */
    shml_atomic_u64 start;          /*   8: owner's process start time (0: unknown) */
    shml_atomic_u32 role;           /*  16: SHML_PRODUCER | SHML_CONSUMER; 0 while not ready */
    shml_atomic_u32 pin;            /*  20: latest: buffer + 1 pinned by this reader; else 0 */
    shml_atomic_u64 sent;           /*  24: messages sent */
    shml_atomic_u64 bytes_sent;     /*  32 */
    shml_atomic_u64 received;       /*  40: messages received */
    shml_atomic_u64 bytes_received; /*  48 */
    shml_atomic_u64 drops;          /*  56: bus: missed; latest: skipped; rpc server: dropped */
    shml_atomic_u64 sleeps;         /*  64: times the owner slept in a wait */
    shml_atomic_u64 cursor;         /*  72: bus subscriber: next position to read; latest
                                            reader: last version read; rpc client: ticket of
                                            the last request; durable producer: the
                                            mark of the message it sends (below) */
    shml_atomic_u32 pid_ns;         /*  80: owner's pid namespace tag (0: unknown) */
    shml_atomic_u32 notify;         /*  84: arming of the owner's descriptor (below) */
    shml_atomic_u64 send_rec;       /*  88: the message being sent (shml_ep_rec()) */
    shml_atomic_u64 recv_rec;       /*  96: the message being received */
    shml_atomic_u64 note_id;        /* 104: the owner's notifier, with its pid (0: none) */
    shml_atomic_u32 flags;          /* 112: SHML_EP_FLAG_*, as the owner opened it */
    shml_atomic_u32 reconnects;     /* 116: a bridge: times it connected to its server again */
    shml_atomic_u64 redelivered;    /* 120: a bridge: messages delivered to it again */
};
_Static_assert(sizeof(struct shml_chan_ep) == SHML_EP_SIZE, "endpoint entry size");
_Static_assert(offsetof(struct shml_chan_ep, role) == 16, "ep.role");
_Static_assert(offsetof(struct shml_chan_ep, sent) == 24, "ep.sent");
_Static_assert(offsetof(struct shml_chan_ep, sleeps) == 64, "ep.sleeps");
_Static_assert(offsetof(struct shml_chan_ep, cursor) == 72, "ep.cursor");
_Static_assert(offsetof(struct shml_chan_ep, pid_ns) == 80, "ep.pid_ns");
_Static_assert(offsetof(struct shml_chan_ep, send_rec) == 88, "ep.send_rec");
_Static_assert(offsetof(struct shml_chan_ep, recv_rec) == 96, "ep.recv_rec");
_Static_assert(offsetof(struct shml_chan_ep, notify) == 84, "ep.notify");
_Static_assert(offsetof(struct shml_chan_ep, note_id) == 104, "ep.note_id");
_Static_assert(offsetof(struct shml_chan_ep, flags) == 112, "ep.flags");
_Static_assert(offsetof(struct shml_chan_ep, reconnects) == 116, "ep.reconnects");
_Static_assert(offsetof(struct shml_chan_ep, redelivered) == 120, "ep.redelivered");
/* Endpoint flags, as the owner opened it. Bits 8-31 hold the tag of a durable endpoint's
   name (shml_ep_tag()), which an opener of the same name and role looks for to take a dead
   one's place; nothing else in the channel acts on them. */
#define SHML_EP_FLAG_BRIDGE  1u /* opened SHML_BRIDGE: it carries the channel elsewhere */
#define SHML_EP_FLAG_DURABLE 2u /* opened durable (opts.durable): its tag is in bits 8-31 */
/* A durable queue producer or bus publisher whose `cursor` names no message known to be
   published: set by every claim or take-over of the entry, and kept by a successor that
   cannot tell whether its dead predecessor's last message was published; cleared (with
   `cursor` stored) between a message's record and its publication. Marks: a durable producer
   stores the mark its message carries in `cursor` after the send record (send_rec) and before
   the publication, so that a kill before the record leaves the previous message's mark, and
   one after it leaves a record its successor settles (channel.c,
   shml__chan_producer_take_over()). */
#define SHML_EP_FLAG_NOMARK  4u
#define SHML_EP_TAG_SHIFT    8u
/* The tag of a durable name: 24 bits of its FNV-1a hash, never 0. */
static inline uint32_t shml_ep_tag(const char *name)
{
    uint32_t h = 2166136261u;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    h = (h ^ (h >> 24)) & 0xffffffu;
    return h ? h : 1u;
}

/*
 * Descriptor waits (shml_channel_fd()). An endpoint with a descriptor has a notifier named by
 * its pid (in `state`) and note_id (os.h: a FIFO or an event). `notify` holds 2 bits per wait
 * point (bits 0-5), the event the endpoint would sleep on: SHML_NOTE_RX (not_empty),
 * SHML_NOTE_TX (not_full), SHML_NOTE_REPLY (its own rpc mailbox's `ready`), each IDLE, ARMED
 * or SIGNALLED; and in bits 8-31 the number of armings (it wraps), so that a waker's CAS made
 * on what it read before an arming fails after it.
 * Arm (the owner, when a call that may not wait finds nothing to do): drain the notifier,
 * CAS the point to ARMED with the armings + 1, add 1 to that event's `armed`, then (seq_cst
 * fence, pairs with the waker's fence) look again; never arm without that look after it (a
 * signal given after the last look would be drained and lost). Signal (a waker whose fence is followed by
 * a non-zero `armed`): while a point reads ARMED (acquire: note_id, stored before the owner
 * armed, is then visible), signal the notifier, then CAS the word it read to the point
 * SIGNALLED; if the CAS wins, take 1 from `armed`, else read again. A signal is thus always
 * followed by a CAS from the arming it saw: one that lands before the owner's drain (and is
 * eaten by it) belongs to an earlier arming, whose CAS then fails. An armed endpoint costs one
 * signal per waker that saw it armed, even when its owner died: its `armed` count is back to
 * 0 at once. Disarm (the owner, or whoever frees the entry): CAS ARMED -> IDLE and take 1
 * from `armed`.
 */
#define SHML_NOTE_RX    0u
#define SHML_NOTE_TX    1u
#define SHML_NOTE_REPLY 2u
#define SHML_NOTE_POINTS 3u
#define SHML_NOTE_IDLE      0u
#define SHML_NOTE_ARMED     1u
#define SHML_NOTE_SIGNALLED 2u
static inline uint32_t shml_note_get(uint32_t w, uint32_t point)
{
    return (w >> (2u * point)) & 3u;
}
static inline uint32_t shml_note_set(uint32_t w, uint32_t point, uint32_t v)
{
    return (w & ~(3u << (2u * point))) | ((v & 3u) << (2u * point));
}
#define SHML_NOTE_ARMING_ONE (1u << 8) /* added to the word by each arming */

/*
 * The counting records of a queue or rpc endpoint (send_rec, recv_rec): which message the owner
 * holds in that direction and what its counter (sent, received) reads once that message is
 * counted, so that whoever settles the slot of an owner killed with it knows whether the
 * owner counted it. The low 32 bits of the position p in bits 32-63, bit 31 set (0: no
 * record), the low 31 bits of the counter after counting in bits 0-30. The owner stores the
 * record after its claim and before it counts, and clears it (0) after its hand-over
 * (publish, give back): a kill leaves a prefix of these steps (queue.c, Counting). Rpc: a
 * client's send_rec and a server's recv_rec are these records for the request ring; a server's
 * send_rec names the reply it delivers by the client's entry index instead of a position, a
 * client's recv_rec the reply it reads by its ticket (rpc.c, Counting). A durable bus
 * publisher's send_rec names the position it is publishing (counter bits 0), for its
 * successor alone (channel.c, shml__chan_producer_take_over()); nobody else reads a bus's
 * records.
 */
#define SHML_EP_REC_SET 0x80000000u
static inline uint64_t shml_ep_rec(uint64_t pos, uint64_t count)
{
    return ((pos & 0xffffffffu) << 32) | SHML_EP_REC_SET | (count & 0x7fffffffu);
}
/* Does record r name position pos (low 32 bits)? */
static inline int shml_ep_rec_names(uint64_t r, uint32_t pos)
{
    return (r & SHML_EP_REC_SET) && (uint32_t)(r >> 32) == pos;
}
/* Does the owner's counter n include the message of record r? */
static inline int shml_ep_rec_counted(uint64_t r, uint64_t n)
{
    return (r & 0x7fffffffu) == (n & 0x7fffffffu);
}
static inline uint32_t shml_ep_rec_pos(uint64_t r)
{
    return (uint32_t)(r >> 32);
}

/*
 * A message slot (queue, bus, rpc). `state` says whose the slot is, for which position p
 * (free-running 64-bit counters; the state keeps their low 32 bits, compared by unsigned
 * difference):
 *   seq (bits 32-63)   holder (bits 1-31: shml_holder())   busy (bit 0)
 * Queue and rpc:
 *   p                  0                        0   free for the producer of position p
 *   p                  producer                 1   claimed: being written
 *   p + 1              0                        0   full: message p is ready
 *   p + 1              consumer                 1   being read
 * and after the read, free for position p + nslots.
 * Bus (subscribers only read; nobody frees a slot):
 *   p + 1 - nslots     0                        0   holds message p - nslots: free for p
 *   p                  publisher                1   being written
 *   p + 1              0                        0   holds message p
 *   p + 1              SHML_SLOT_HOLE           0   no message p (its publisher died or
 *                                                   discarded it)
 *   p + 1              stuck publisher          0   overwrite: no message p; the slot is
 *                                                   left behind by a live publisher whose
 *                                                   claim the bus went a ring past (bus.c)
 * Changes of owner are compare-and-swaps (acquire); hand-overs (publish, release) are release
 * stores. An rpc request starts with a tag: the client's endpoint index and ticket (u32 each).
 */
struct shml_chan_slot {
    shml_atomic_u64 state; /*  0 */
    uint32_t len;          /*  8: length of the message, written before it is published */
    uint32_t reserved;     /* 12: zero */
    /* 16: the message, max_msg bytes (rpc: 8 more for the tag), then padding to the stride */
};
#define SHML_SLOT_HDR  16u
#define SHML_SLOT_HOLE 0x7fffffffu /* never a holder: more than 30 bits */

static inline uint64_t shml_slot_state(uint64_t seq, uint32_t holder, int busy)
{
    return ((seq & 0xffffffffu) << 32) | ((uint64_t)(holder & 0x7fffffffu) << 1) | (busy ? 1u : 0u);
}
static inline uint32_t shml_slot_seq(uint64_t st)
{
    return (uint32_t)(st >> 32);
}
static inline uint32_t shml_slot_holder(uint64_t st)
{
    return (uint32_t)(st >> 1) & 0x7fffffffu;
}
static inline int shml_slot_busy(uint64_t st)
{
    return (int)(st & 1u);
}
#define SHML_RPC_TAG   8u
_Static_assert(sizeof(struct shml_chan_slot) == SHML_SLOT_HDR, "slot header size");

/*
 * A latest-value buffer (the slots of a latest channel). `state` is tag (bits 48-63, +1 at
 * each pin, unpin and recount) | readers (bits 32-47, the readers inside a read) | writer
 * (bits 1-31: shml_holder()) | writing (bit 0). A writer takes a buffer that is not the
 * current one and has no reader by CAS tag -> tag | writing by me, writes version, len and
 * the value, makes it current (CAS of hdr.enq), then stores the tag alone (release). A reader
 * records its pin in its endpoint entry, pins the current buffer by CAS readers + 1 (it fails
 * while a writer holds the buffer), reads, unpins by an atomic decrement (release), then
 * clears its record (all seq_cst: latest.c, Death).
 */
struct shml_latest_buf {
    shml_atomic_u64 state;  /*  0: tag | readers | writer | writing */
    uint64_t version;       /*  8: version of the value held (1, 2, ...) */
    uint32_t len;           /* 16: length of the value */
    uint32_t reserved[3];   /* 20: zero */
    /* 32: the value, max_msg bytes, then padding to the stride */
};
#define SHML_LATEST_HDR 32u
#define SHML_LATEST_READER_ONE ((uint64_t)1 << 32) /* added to state by a pin */
#define SHML_LATEST_TAG_ONE    ((uint64_t)1 << 48) /* added to state by a pin, unpin, recount */

#define SHML_LATEST_READERS_MAX 0xffffu /* readers one buffer's state can count */
static inline uint64_t shml_latest_state(uint32_t readers, uint32_t writer, int writing)
{
    return ((uint64_t)(readers & SHML_LATEST_READERS_MAX) << 32) | ((uint64_t)(writer & 0x7fffffffu) << 1) |
           (writing ? 1u : 0u);
}
static inline uint32_t shml_latest_readers(uint64_t st)
{
    return (uint32_t)(st >> 32) & SHML_LATEST_READERS_MAX;
}
static inline uint32_t shml_latest_writer(uint64_t st)
{
    return (uint32_t)(st >> 1) & 0x7fffffffu;
}
static inline int shml_latest_writing(uint64_t st)
{
    return (int)(st & 1u);
}
/* The tag bits of a state, in place (the rest zero): a state with no reader and no writer. */
static inline uint64_t shml_latest_tag(uint64_t st)
{
    return st & ~(SHML_LATEST_TAG_ONE - 1);
}
_Static_assert(sizeof(struct shml_latest_buf) == SHML_LATEST_HDR, "latest buffer size");

/*
 * A latest channel's current value (the control block's `enq`): the version of the value
 * (bits 16-63, 1 for the first write) and the buffer it is in (bits 0-15); 0 before the
 * first write.
 */
static inline uint64_t shml_latest_cur(uint64_t version, uint32_t buffer)
{
    return (version << 16) | (buffer & 0xffffu);
}
static inline uint64_t shml_latest_cur_version(uint64_t cur)
{
    return cur >> 16;
}
static inline uint32_t shml_latest_cur_buffer(uint64_t cur)
{
    return (uint32_t)(cur & 0xffffu);
}

/*
 * An rpc mailbox: where a client receives its reply. `state` is ticket (bits 32-63) | server
 * (bits 2-31: shml_holder()) | writing (bit 1) | replied (bit 0):
 *   ticket             0         0  0   request `ticket` sent, not yet taken by a server
 *   ticket             server    0  0   taken by that server
 *   ticket             server    1  0   the server is writing the reply
 *   ticket             server    0  1   replied: len and the reply are there
 * The client stores (ticket, 0, 0, 0) before it sends request `ticket` (release); a server
 * CASes it to taken when it receives the request, to writing when it replies, and publishes
 * with a release CAS from writing to replied, then wakes `ready`.
 */
#define SHML_RPC_GONE    0xffffffffu /* the mailbox's len: the server closed without replying */
#define SHML_RPC_REFUSED 0xfffffffeu /* the mailbox's len: the server could not answer
                                        (shml_refuse()) */
/* Is a mailbox's len one of these, which say why no reply came, rather than a reply's? */
static inline int shml_rpc_no_reply(uint32_t len)
{
    return len == SHML_RPC_GONE || len == SHML_RPC_REFUSED;
}
struct shml_rpc_box {
    struct shml_event_layout ready; /*  0: the client sleeps here */
    shml_atomic_u64 state;          /* 32 */
    uint32_t len;                   /* 40: length of the reply */
    uint32_t reserved[5];           /* 44: zero */
    /* 64: the reply, max_msg bytes, then padding to box_stride */
};
#define SHML_BOX_HDR 64u

static inline uint64_t shml_box_state(uint32_t ticket, uint32_t server, int writing, int replied)
{
    return ((uint64_t)ticket << 32) | ((uint64_t)(server & 0x3fffffffu) << 2) |
           (writing ? 2u : 0u) | (replied ? 1u : 0u);
}
static inline uint32_t shml_box_ticket(uint64_t st)
{
    return (uint32_t)(st >> 32);
}
static inline uint32_t shml_box_server(uint64_t st)
{
    return (uint32_t)(st >> 2) & 0x3fffffffu;
}
static inline int shml_box_writing(uint64_t st)
{
    return (int)((st >> 1) & 1u);
}
static inline int shml_box_replied(uint64_t st)
{
    return (int)(st & 1u);
}
/* Is holder h (shml_holder()) the server that state st names? */
static inline int shml_box_server_is(uint64_t st, uint32_t h)
{
    return shml_box_server(st) == (h & 0x3fffffffu);
}
_Static_assert(sizeof(struct shml_rpc_box) == SHML_BOX_HDR, "rpc mailbox header size");
_Static_assert(offsetof(struct shml_rpc_box, state) == 32, "box.state");

#endif /* SHML_LAYOUT_H */
