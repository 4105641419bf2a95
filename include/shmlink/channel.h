/*
 * shmlink/channel.h - message channels over shared memory.
 *
 * A channel is a managed segment of a channel kind. This version implements the queue: a
 * bounded queue of messages of up to max_msg bytes, each delivered to exactly one consumer,
 * with any number of producers and consumers in any number of processes (and a fast path when
 * created with SHML_SPSC for one producer and one consumer). The bus, latest-value and
 * request/reply kinds are declared and answer -ENOTSUP until they land.
 *
 * Two ways to move a message: copy (shml_send, shml_recv), or zero-copy (shml_claim a slot,
 * write the message in place, shml_commit it; shml_peek at the next message in place,
 * shml_release it). The bytes are documented in docs/FORMAT.md.
 *
 * Crash safety: a producer that dies between claim and commit, or a consumer that dies between
 * peek and release, cannot wedge the queue: the next endpoint to reach its slot finds the
 * holder dead (by pid) and frees the slot; the message is lost and counted in
 * struct shml_channel_stats.lost. Delivery is therefore at most once for messages in flight
 * when an endpoint dies, exactly once otherwise.
 *
 * Concurrency: a shml_channel handle is used by one thread at a time (open one handle per
 * thread); any number of handles in any number of processes use one channel concurrently.
 */
#ifndef SHMLINK_CHANNEL_H
#define SHMLINK_CHANNEL_H

#include "shmlink/common.h"
#include "shmlink/segment.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shml_channel shml_channel; /* opaque endpoint, process-local */

/* Kinds (also the kind of the segment). */
#define SHML_QUEUE  2u
#define SHML_BUS    3u /* not yet: -ENOTSUP */
#define SHML_LATEST 4u /* not yet: -ENOTSUP */
#define SHML_RPC    5u /* not yet: -ENOTSUP */

/* Policies when the channel is full. */
#define SHML_BLOCK     0u /* the producer waits, bounded by its timeout (the queue's only one) */
#define SHML_OVERWRITE 1u /* bus only: the producer never waits */

/* How an endpoint waits. */
#define SHML_WAIT_ADAPTIVE 0u /* spin briefly, then sleep (the default) */
#define SHML_WAIT_SPIN     1u /* poll without sleeping: lowest latency, burns a core */
#define SHML_WAIT_BLOCK    2u /* sleep at once */

/* Roles for shml_channel_open(). */
#define SHML_PRODUCER 1u
#define SHML_CONSUMER 2u

/* Flags for struct shml_channel_opts.flags. */
#define SHML_SPSC 0x1u /* create: one producer and one consumer at a time (no CAS per message) */

/*
 * Options. `opts` may be NULL for the defaults: a queue of 1 MiB with messages up to 4 KiB,
 * mode 0600, adaptive waits. At create, capacity and max_msg fix the geometry: the queue has
 * the largest power of two of slots of max_msg bytes (plus 16 bytes of slot header, rounded up
 * to 64) that fits in capacity, and at least 2. At open, only `wait` matters.
 */
struct shml_channel_opts {
    uint32_t kind;     /* SHML_QUEUE (0 = SHML_QUEUE) */
    size_t capacity;   /* bytes of message slots (0 = 1 MiB) */
    size_t max_msg;    /* largest message in bytes (0 = 4096) */
    uint32_t policy;   /* SHML_BLOCK */
    uint32_t wait;     /* SHML_WAIT_* for this endpoint */
    uint32_t mode;     /* permission bits of the segment (0 = 0600) */
    uint32_t flags;    /* SHML_SPSC */
    uint32_t spin;     /* adaptive: polls before sleeping (0 = 2000) */
};

/*
 * Create the channel at `addr` (any segment address but memfd:) and open it as an endpoint
 * that may both send and receive. Errors as shml_segment_create(), and -EINVAL (bad options:
 * max_msg larger than 1 GiB or capacity below two slots' worth is rounded up, not refused),
 * -ENOTSUP (a kind not implemented yet).
 * Ownership: *out is the caller's, closed with shml_channel_close(); the channel persists
 * until shml_segment_unlink(addr).
 */
SHML_API int shml_channel_create(const char *addr, const struct shml_channel_opts *opts,
                                 shml_channel **out);

/*
 * Open the channel at `addr` as SHML_PRODUCER, SHML_CONSUMER or both (OR them). Errors as
 * shml_segment_open(), and -SHML_EWRONGKIND (not a channel), -SHML_ECORRUPT (channel header
 * fails validation), -EINVAL (role 0).
 */
SHML_API int shml_channel_open(const char *addr, unsigned role,
                               const struct shml_channel_opts *opts, shml_channel **out);

/* Close an endpoint (NULL is fine). An uncommitted claim or unreleased peek is abandoned:
   the slot is freed and the message counted as lost. Returns 0. */
SHML_API int shml_channel_close(shml_channel *ch);

/*
 * Send `len` bytes, waiting at most timeout_ns for room. Returns len, or -ETIMEDOUT (full),
 * -EMSGSIZE (len > max_msg: at once, whatever the timeout), -EBADF (not a producer), -EBUSY
 * (a claim is open on this handle), -EINTR is never returned. Lock-free among producers.
 */
SHML_API ssize_t shml_send(shml_channel *ch, const void *msg, size_t len, int64_t timeout_ns);

/*
 * Receive the next message into buf, waiting at most timeout_ns for one. Returns its length,
 * or -ETIMEDOUT (empty), -EMSGSIZE (cap smaller than the next message, which stays queued),
 * -EBADF (not a consumer), -EBUSY (a peek is open on this handle).
 */
SHML_API ssize_t shml_recv(shml_channel *ch, void *buf, size_t cap, int64_t timeout_ns);

/*
 * Zero-copy send: reserve room for a message of up to `len` bytes and point *buf at it; write
 * the message there, then shml_commit() it. Errors as shml_send().
 */
SHML_API int shml_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns);
/* Publish the claimed message with its final length (<= the claimed len). -EINVAL if no claim
   is open or len is larger than claimed. */
SHML_API int shml_commit(shml_channel *ch, size_t len);

/*
 * Zero-copy receive: point *buf at the next message in place and *len at its length; read it,
 * then shml_release() it. The bytes stay valid, untouched by producers, until the release.
 * Errors as shml_recv() but -EMSGSIZE.
 */
SHML_API int shml_peek(shml_channel *ch, const void **buf, size_t *len, int64_t timeout_ns);
/* Give the peeked slot back to producers. -EINVAL if no peek is open. */
SHML_API int shml_release(shml_channel *ch);

/* Counters kept in shared memory, read without touching the hot path. */
struct shml_channel_stats {
    uint32_t kind;
    uint32_t flags;    /* SHML_SPSC if created so */
    uint32_t slots;    /* number of message slots */
    uint32_t slot_size; /* bytes per slot (header, message, padding) */
    uint64_t max_msg;  /* largest message */
    uint64_t sent;     /* messages committed (and claims lost with a producer that died) */
    uint64_t received; /* messages consumed (and reads lost with a consumer that died) */
    uint64_t lost;     /* messages freed because their producer or consumer died */
    uint64_t queued;   /* messages waiting now (a snapshot) */
};

/* Fill `st` from the channel behind `ch` (reads every slot's state: not for a hot loop).
   Returns 0 or -EINVAL. */
SHML_API int shml_channel_stats(const shml_channel *ch, struct shml_channel_stats *st);

/* The segment behind the channel (for its address, fd, stat ...). Owned by the channel. */
SHML_API shml_segment *shml_channel_segment(const shml_channel *ch);

#ifdef __cplusplus
}
#endif

#endif /* SHMLINK_CHANNEL_H */
