/*
 * shmlink/channel.h - message channels over shared memory.
 *
 * A channel is a managed segment of a channel kind (docs/FORMAT.md has every byte). Four kinds:
 *
 *   SHML_QUEUE   bounded queue; each message goes to exactly one consumer. Any number of
 *                producers and consumers, with a fast path when created SHML_SPSC.
 *   SHML_BUS     publish/subscribe; every subscriber (SHML_CONSUMER) sees every message sent
 *                after it joined (a late joiner starts at the next message). Policy SHML_BLOCK:
 *                publishers wait for the slowest live subscriber; SHML_OVERWRITE: publishers
 *                never wait, and a lapped subscriber skips ahead and learns exactly how many
 *                messages it missed (shml_recv_gap()). Publishers never wait for each other
 *                either: a claim held (uncommitted, or its process stopped) while the bus
 *                goes a whole ring past it is passed and its message counted lost (its
 *                commit then fails with -ESTALE); subscribers go on with the others'
 *                messages.
 *   SHML_LATEST  one newest value. Writers never wait; a reader gets a complete copy of the
 *                newest value it has not read yet (a torn read is impossible: the buffer it
 *                reads is pinned, and writers write elsewhere).
 *   SHML_RPC     request/reply. A client (SHML_CLIENT) sends a request and receives its reply;
 *                a server (SHML_SERVER) receives a request and its next send is the reply to
 *                that request's client (or shml_refuse() says it cannot answer). One request
 *                in flight per client handle.
 *
 * Two ways to move a message: copy (shml_send, shml_recv, and the batch forms), or zero-copy
 * (shml_claim a slot, write in place, shml_commit; shml_peek at the next message in place,
 * shml_release it).
 *
 * Endpoints: every open handle takes an entry in the channel's endpoint table (its size is
 * fixed at create, struct shml_channel_opts.endpoints), where it keeps its counters (messages,
 * bytes, drops, sleeps) and, for a subscriber or reader, its cursor. Entries of processes that
 * died are reclaimed by whoever needs one, and a dead subscriber is detached by the publisher
 * it would block. shml_channel_inspect() and the `shmlink` tool read the table without
 * touching any endpoint's hot path.
 *
 * Crash safety: a producer that dies between claim and commit, or a consumer that dies between
 * peek and release, cannot wedge a channel: the next endpoint to need the slot finds the
 * holder dead and frees it; the message is lost and counted (stats.lost). Delivery is at most
 * once for messages in flight when an endpoint dies, exactly once otherwise. An RPC client
 * whose server died while holding its request gets -ECONNRESET instead of waiting for ever;
 * replies to a client that died are dropped and counted.
 *
 * Head of line: messages are handed over in position order, so a live endpoint that holds a
 * slot (a claim not committed, a peek not released, a process stopped by a debugger or
 * SIGSTOP, or busy elsewhere) holds up those behind it, as long as it holds it. Queue and
 * rpc: consumers (servers) wait at a claimed position, and producers (clients) wait once the
 * ring comes round to a slot being read. Bus SHML_BLOCK: subscribers wait at a claimed
 * position, and publishers wait for a subscriber that peeks. Latest never waits, and a bus
 * SHML_OVERWRITE passes a claim held for a whole ring (above). Nothing but a death frees what
 * a live endpoint holds: hold claims and peeks briefly.
 *
 * fork(): a handle belongs to the process that opened it. In a child, every call on a handle
 * inherited from the parent (send, recv, claim, commit, discard, peek, release and the batch
 * calls) fails with -ECHILD, and closing it (or the child's exit) only unmaps it: the
 * parent's endpoint, with its claims and peeks, goes on untouched. A child opens the channel
 * again to use it.
 *
 * Truncation: if another process shrinks the channel's object, the access that finds a page
 * gone faults, the library's SIGBUS handler replaces the mapping with zeros (README "Truncated
 * objects and SIGBUS"), and from then on every call on the handle (but shml_channel_close())
 * returns -SHML_ETRUNCATED; a call already waiting notices within a second. A call that was
 * under way when it happened returns -SHML_ETRUNCATED rather than what it read or wrote.
 *
 * Concurrency: a shml_channel handle is used by one thread at a time (open one handle per
 * thread); any number of handles in any number of processes use one channel concurrently,
 * within the endpoint table's size.
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
#define SHML_BUS    3u
#define SHML_LATEST 4u
#define SHML_RPC    5u

/* Policies when the channel is full. */
#define SHML_BLOCK     0u /* the producer waits, bounded by its timeout */
#define SHML_OVERWRITE 1u /* bus only: the publisher never waits; lapped subscribers skip */

/* How an endpoint waits. */
#define SHML_WAIT_ADAPTIVE 0u /* spin briefly, then sleep (the default) */
#define SHML_WAIT_SPIN     1u /* poll without sleeping: lowest latency, burns a core */
#define SHML_WAIT_BLOCK    2u /* sleep at once */

/* Roles for shml_channel_open(). Queue: producer/consumer; bus: publisher/subscriber;
   latest: writer/reader; rpc: client/server. */
#define SHML_PRODUCER 1u
#define SHML_CONSUMER 2u
#define SHML_CLIENT   SHML_PRODUCER /* rpc: sends requests, receives replies */
#define SHML_SERVER   SHML_CONSUMER /* rpc: receives requests, sends replies */

/* Flags for struct shml_channel_opts.flags. */
#define SHML_SPSC 0x1u /* create, queue: one producer and one consumer at a time (no CAS) */
/* open: this endpoint carries the channel to or from elsewhere (`shmlink bridge`): the
   endpoint table says so (shml_endpoint_stats.flags), and the tool shows its counters. */
#define SHML_BRIDGE 0x0100u
/* shml_endpoint_stats.flags: the endpoint was opened durable (opts.durable). */
#define SHML_DURABLE 0x0200u
/* SHML_WAIT (segment.h), at open: see struct shml_channel_opts.
   SHML_OWNED (segment.h), at create: the channel belongs to its creator, and shml_gc() removes
   it once the creator and every endpoint are gone. By default a channel lives until removed. */

/*
 * The type of a typed channel's messages, so that programs in any language agree on their
 * layout: each message is an array of `shape` (ndim dimensions, C order) of elements whose
 * layout is the PEP 3118 struct format `format` (what Python's buffer protocol and numpy use:
 * "B" for uint8, "<d" for a little-endian double, "T{<Q:seq:<d:t:}" for a structure) and whose
 * size is itemsize. The library stores and returns it; it does not parse the format, but it
 * refuses to send a message whose size is not itemsize times the shape's product (-EMSGSIZE),
 * since no reader could view it as the type.
 */
#define SHML_TYPE_FORMAT_MAX 176u /* bytes of format, its NUL included */
#define SHML_TYPE_NDIM_MAX   8u
struct shml_channel_type {
    char format[SHML_TYPE_FORMAT_MAX]; /* "" for untyped bytes */
    uint64_t itemsize;                 /* bytes of one element (> 0 when typed) */
    uint32_t ndim;                     /* 0: one element per message */
    uint64_t shape[SHML_TYPE_NDIM_MAX];
    uint64_t reserved[4];              /* room for fields to come; zero today (and zero when
                                          passed in opts->type, else -EINVAL) */
};

/*
 * Options. `opts` may be NULL for the defaults: 1 MiB of slots for messages up to 4 KiB, 64
 * endpoints, mode 0600, adaptive waits; SHML_CHANNEL_OPTS_INIT gives the same. Start from the
 * macro and set fields: `size` and `reserved` follow the rule for structs that can grow
 * (common.h); a struct from `= {0}` has size 0 and is refused with -EINVAL.
 *
 * At create, capacity and max_msg fix the geometry: the channel has the largest power of two
 * of slots of max_msg bytes (plus 16 bytes of slot header, rounded up to 64) that fits in
 * capacity, and at least 2. A latest channel has at least 4 buffers and takes at most
 * nslots - 2 readers (a writer needs a buffer that is neither current nor pinned by a reader:
 * with that bound one always exists, so writers never wait). At open, only `wait`, `spin`,
 * `timeout_ns` and the flag SHML_WAIT matter.
 *
 * SHML_WAIT (segment.h), at open: a channel that does not exist yet is waited for, up to
 * timeout_ns (a consumer started before its producer); and an rpc client's request waits for
 * a server to attach, within the send's own timeout. Without it, open fails with -ENOENT and a
 * request with no server attached fails with -ENOTCONN, at once.
 */
struct shml_channel_opts {
    uint32_t size;      /* sizeof(struct shml_channel_opts): SHML_CHANNEL_OPTS_INIT sets it */
    uint32_t kind;      /* SHML_QUEUE, SHML_BUS, SHML_LATEST, SHML_RPC (0 = SHML_QUEUE) */
    size_t capacity;    /* bytes of message slots (0 = 1 MiB) */
    size_t max_msg;     /* largest message in bytes (0 = 4096) */
    uint32_t policy;    /* SHML_BLOCK, or SHML_OVERWRITE (bus) */
    uint32_t wait;      /* SHML_WAIT_* for this endpoint */
    uint32_t mode;      /* permission bits of the segment (0 = 0600) */
    uint32_t flags;     /* create: SHML_SPSC, SHML_OWNED; open: SHML_WAIT */
    uint32_t spin;      /* adaptive: polls before sleeping (0 = 2000) */
    uint32_t endpoints; /* create: entries in the endpoint table, 1..4096 (0 = 64) */
    uint32_t role;      /* create: the creator's role (0: queue and latest both, bus
                           publisher, rpc server) */
    const struct shml_channel_type *type; /* create: typed messages (NULL: untyped bytes);
                           max_msg 0 then means one message of the type */
    int64_t timeout_ns; /* open with SHML_WAIT: how long to wait for the channel to appear
                           (SHML_FOREVER: no limit; 0: not at all) */
    const char *durable; /* open, a queue consumer or bus subscriber: the name of a durable
                           endpoint (NULL: not durable; see "Durable endpoints" below) */
    uint64_t reserved[6]; /* room for fields to come; zero */
};
#define SHML_CHANNEL_OPTS_INIT                                                                     \
    {(uint32_t)sizeof(struct shml_channel_opts), 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, NULL, 0, \
     NULL, {0}}

/*
 * Durable endpoints. A queue consumer (of a queue made without SHML_SPSC), a queue producer, a
 * bus subscriber or a bus publisher opened with opts.durable = NAME (1 to 255 bytes) is
 * durable: when its process
 * dies, the next endpoint opened with the same role and name, by any process, takes its place
 * in the endpoint table. The message the dead one was reading (a peek not released, a receive
 * not finished) is that endpoint's first message, counted redelivered in its entry
 * (shml_endpoint_stats.redelivered), and a bus subscriber goes on from the dead one's
 * position: what was published meanwhile, less what lapped it (drops, under SHML_OVERWRITE).
 * A message the dead one had received and counted is not delivered again. A producer's
 * successor gets the dead one's mark (shml_channel_mark(), below); a message the dead one was
 * writing is lost, as for any producer. It is best effort: until a successor comes, the dead endpoint is
 * like any other, reclaimed when the channel needs it (a producer that wraps around to its
 * slot, a publisher it blocks, an opener that finds the table full, a repair, gc), and what it
 * held is then lost and counted as before. The entry keeps a 24-bit tag of the name, not the
 * name: names whose tags collide take each other's place. A durable endpoint that closes
 * leaves for good. The tool shows such entries as "(durable)" after their role.
 */

/*
 * Create the channel at `addr` (any segment address but memfd:) and open it as an endpoint
 * in opts->role (by default: producer and consumer of a queue, writer and reader of a latest
 * value, publisher of a bus, server of an rpc channel). Errors as shml_segment_create(), and -EINVAL (bad options: a size common.h's rule refuses, an unknown kind, policy,
 * wait or flag; SHML_OVERWRITE on a kind other than bus; SHML_SPSC on a kind other than queue;
 * max_msg larger than 1 GiB; endpoints above 4096; an rpc endpoint both client and server; a
 * type whose format is not NUL-ended printable text, has more than 8 dimensions, a zero
 * itemsize or a size past max_msg),
 * -EOVERFLOW (geometry too large).
 * Ownership: *out is the caller's, closed with shml_channel_close(); the channel persists
 * until shml_segment_unlink(addr).
 */
SHML_API int shml_channel_create(const char *addr, const struct shml_channel_opts *opts,
                                 shml_channel **out);

/*
 * Open the channel at `addr` as SHML_PRODUCER, SHML_CONSUMER or both (OR them). Errors as
 * shml_segment_open(), and -SHML_EWRONGKIND (not a channel), -SHML_ECORRUPT (channel header
 * fails validation), -SHML_EVERSION, -EINVAL (role 0, both roles on an rpc channel, options whose size common.h's rule refuses, or opts.durable other than 1 to 255 bytes, or for other than one role of a queue or bus, or for a consumer of a queue made with SHML_SPSC), -EUSERS (the endpoint table is full of
 * live endpoints, or a latest channel has its nslots - 2 readers already).
 */
SHML_API int shml_channel_open(const char *addr, unsigned role,
                               const struct shml_channel_opts *opts, shml_channel **out);

/*
 * The type of the channel's messages (format "" and itemsize 0 if untyped). Returns 0, or
 * -EINVAL for NULL arguments.
 */
SHML_API int shml_channel_get_type(const shml_channel *ch, struct shml_channel_type *type);

/* Close an endpoint (NULL is fine): free its table entry, adding its counters to the
   channel's totals. An uncommitted claim or unreleased peek is abandoned: the slot is freed
   and the message counted as lost. Returns 0. */
SHML_API int shml_channel_close(shml_channel *ch);

/*
 * Send `len` bytes, waiting at most timeout_ns for room (negative: no limit; 0: do not wait).
 * Returns len, or -ETIMEDOUT (full), -EMSGSIZE (len > max_msg, or, on a typed channel, len
 * other than the bytes of one message of the type: at once, whatever the timeout), -EBADF
 * (not a producer), -EBUSY (a claim is open on this handle), -EINTR
 * (shml_channel_interrupt()), -ECANCELED (the thread's cancellation token fired: sync.h),
 * -SHML_ECORRUPT. Queue and bus: lock-free among producers.
 * Latest: never waits. RPC server: the reply to the request last received (-EPROTO if there
 * is none; the reply is dropped, and counted, when its client has gone); RPC client: the
 * request (-EBUSY while a reply is awaited; -ENOTCONN at once if no server is attached, unless
 * the client was opened SHML_WAIT: then it waits for one within timeout_ns, -ETIMEDOUT past
 * it). A request whose client gave up (closed, or died) is dropped by the server that finds it,
 * unanswered.
 */
SHML_API ssize_t shml_send(shml_channel *ch, const void *msg, size_t len, int64_t timeout_ns);

/*
 * Receive the next message into buf, waiting at most timeout_ns for one. Returns its length,
 * or -ETIMEDOUT (empty), -EMSGSIZE (cap smaller than the next message, which stays queued),
 * -EBADF (not a consumer), -EBUSY (a peek is open on this handle), -EINTR, -ECANCELED (as
 * shml_send()), -SHML_ECORRUPT.
 * Latest: the newest value this handle has not read (the first read of a handle returns the
 * current value at once). RPC client: the reply (-EPROTO if no request was sent,
 * -ECONNRESET if the server that took the request died, or every server of the channel died;
 * -ENOTCONN if every server closed before taking it, unless the client was opened SHML_WAIT:
 * then it waits for a server to come).
 */
SHML_API ssize_t shml_recv(shml_channel *ch, void *buf, size_t cap, int64_t timeout_ns);

/*
 * Zero-copy send: reserve room for a message of up to `len` bytes and point *buf at it; write
 * the message there, then shml_commit() it. Errors as shml_send().
 */
SHML_API int shml_claim(shml_channel *ch, size_t len, void **buf, int64_t timeout_ns);
/* Publish the claimed message with its final length (<= the claimed len). -EINVAL if no claim
   is open or len is larger than claimed (the claim stays open); -EMSGSIZE on a typed channel
   when len is not the bytes of one message of the type (the claim is withdrawn, as by
   shml_discard(): nothing is sent). Bus with SHML_OVERWRITE: -ESTALE if the claim was held
   while other publishers went a whole ring (nslots messages) past it: it was passed, its
   message is not sent and was counted lost (stats.lost), the claim is over; what was written
   into it meanwhile reached nobody. shml_send() and shml_send_batch() report the same when
   the sender was held up that long between its claim and its commit. A claim itself is
   bounded by max_msg only. */
SHML_API int shml_commit(shml_channel *ch, size_t len);
/*
 * Withdraw the open claim without publishing anything (the message could not be completed):
 * no counter changes, and the room is free again. Queue: consumers skip the position; bus:
 * subscribers skip it; rpc client: no request was sent; rpc server: the request still awaits
 * its reply (claim again, or send, to give one). Returns 0, or -EINVAL if no claim is open.
 */
SHML_API int shml_discard(shml_channel *ch);
/*
 * rpc server: answer the request received last with a failure instead of a reply, for a server
 * that cannot answer it (one that passes requests on, and found nobody to answer): its client's
 * receive returns -EHOSTUNREACH at once, rather than waiting for a reply that will not come.
 * The request counts as received, and as dropped by this server. Returns 0, -EINVAL (no
 * handle, or not an rpc channel), -EPROTO (not a server, or no request received since its last
 * reply), -ECHILD (inherited through fork()).
 */
SHML_API int shml_refuse(shml_channel *ch);

/*
 * Zero-copy receive: point *buf at the next message in place and *len at its length; read it,
 * then shml_release() it. Until the release, producers leave the bytes alone (queue, latest,
 * rpc, bus with SHML_BLOCK). Errors as shml_recv() but -EMSGSIZE.
 */
SHML_API int shml_peek(shml_channel *ch, const void **buf, size_t *len, int64_t timeout_ns);
/* Give the peeked message back. -EINVAL if no peek is open. Bus with SHML_OVERWRITE, whose
   publishers never wait: -ESTALE if a publisher lapped the message during the peek, so that
   what was read may be torn (the gap is counted as for shml_recv). */
SHML_API int shml_release(shml_channel *ch);

/* A message for shml_send_batch(). */
struct shml_iov {
    const void *base;
    size_t len;
};

/*
 * Send up to n messages with one wake-up of the receivers: waits (as shml_send) for room for
 * the first, then sends as many as fit without waiting. Returns the number sent (>= 1), or
 * the error of the first as shml_send() (-EMSGSIZE if any message is too long, or not one
 * message of a typed channel's type: none is sent).
 * Queue and bus; other kinds: -ENOTSUP.
 */
SHML_API ssize_t shml_send_batch(shml_channel *ch, const struct shml_iov *msgs, size_t n,
                                 int64_t timeout_ns);

/*
 * Receive up to n messages with one wake-up of the senders: waits (as shml_recv) for the
 * first, then takes those already there, packed back to back into buf (cap bytes), their
 * lengths into lens[]. Returns the number received (>= 1), or the error as shml_recv() for the
 * first (-EMSGSIZE: the first does not fit in cap). Stops early at a message that does not
 * fit in what is left of buf. Queue and bus; other kinds: -ENOTSUP.
 */
SHML_API ssize_t shml_recv_batch(shml_channel *ch, void *buf, size_t cap, size_t *lens,
                                 size_t n, int64_t timeout_ns);

/*
 * Messages (bus with SHML_OVERWRITE) or values (latest) this handle skipped just before the
 * message its last successful recv, peek or batch returned. 0 for other kinds.
 */
SHML_API uint64_t shml_recv_gap(const shml_channel *ch);

/*
 * Make the waits of this handle (current and next) return -EINTR, once, from another thread
 * or a signal handler (async-signal-safe). Returns 0, or -EINVAL for NULL. To end every wait
 * of a thread, whatever it waits on, bind a cancellation token to it instead (sync.h).
 */
SHML_API int shml_channel_interrupt(shml_channel *ch);

/* Channel-wide facts and counters (the totals include endpoints that have closed or died). */
struct shml_channel_stats {
    uint32_t kind;
    uint32_t flags;     /* SHML_SPSC if created so */
    uint32_t slots;     /* number of message slots (latest: buffers) */
    uint32_t slot_size; /* bytes per slot (header, message, padding) */
    uint64_t max_msg;   /* largest message */
    uint32_t policy;    /* SHML_BLOCK or SHML_OVERWRITE */
    uint32_t endpoints; /* entries in the endpoint table */
    uint32_t attached;  /* entries in use now, live or not yet reclaimed */
    uint32_t reserved;  /* zero */
    uint64_t sent;      /* messages sent (latest: values written; rpc: requests and replies) */
    uint64_t received;  /* messages received (bus: deliveries to subscribers; rpc: requests
                           taken and replies read) */
    uint64_t bytes_sent;
    uint64_t bytes_received;
    uint64_t lost;      /* messages sent and freed because their producer or consumer died
                           (rpc: requests whose server died reading them, replies whose
                           server died delivering them or whose client died before reading
                           them) */
    uint64_t drops;     /* bus: messages lapped subscribers missed; latest: values readers
                           skipped; rpc: requests (received) and replies (not sent) servers
                           dropped because their client had gone */
    uint64_t sleeps;    /* times an endpoint went to sleep in a wait */
    uint64_t queued;    /* messages waiting now (bus: newest - slowest subscriber; rpc:
                           requests, and replies not yet read); snapshot */
    /* The counts of a queue and of an rpc channel add up exactly, also after endpoints were
       killed: once no endpoint is inside a send or receive and what dead endpoints held was
       freed (shml_channel_check() with SHML_CHECK_REPAIR), sent == received + lost + queued
       (messages, not bytes; a claim abandoned by a death or a close counts as sent and lost;
       an rpc request received by a server that then died unanswering is received, not
       lost). A bus counts each delivery per subscriber and a subscriber's misses in drops; a
       latest channel counts skipped values in drops: neither has this identity. */
    struct shml_channel_type type; /* what shml_channel_get_type() returns */
    uint64_t reserved2[8]; /* room for fields to come; zero today */
};

/* One endpoint table entry. */
struct shml_endpoint_stats {
    uint32_t index;     /* its entry in the table */
    int32_t pid;        /* its process */
    uint32_t role;      /* SHML_PRODUCER | SHML_CONSUMER */
    uint32_t alive;     /* 1 if its process runs (or may: one of another pid namespace,
                           where `pid` means another process), 0 if it died without closing */
    uint64_t messages;  /* sent plus received */
    uint64_t bytes;
    uint64_t drops;     /* bus subscriber: missed; latest reader: skipped; rpc server: requests
                           and replies dropped */
    uint64_t sleeps;
    uint64_t lag;       /* bus subscriber: messages behind the newest; latest: values behind */
    uint32_t flags;       /* SHML_BRIDGE, SHML_DURABLE if it was opened so */
    uint32_t reconnects;  /* what its owner counted (shml_channel_count()): a bridge's */
    uint64_t redelivered; /* reconnections to its server, messages delivered to it again */
    uint64_t reserved[2]; /* room for fields to come; zero today */
};

/* The counters shml_channel_count() adds to. */
#define SHML_COUNT_DROPS       1u /* messages the endpoint knows it missed (drops) */
#define SHML_COUNT_RECONNECTS  2u /* times it connected to its server again (reconnects) */
#define SHML_COUNT_REDELIVERED 3u /* messages delivered to it again (redelivered) */

/*
 * Add n to one of this endpoint's counters in the endpoint table, where shml_channel_inspect()
 * and the tool read them: for a program that carries the channel elsewhere (a bridge) and
 * knows of losses, reconnections or redeliveries the channel cannot see. Returns 0, -EINVAL
 * (no handle, an unknown counter) or -ECHILD (a handle inherited through fork()).
 * Concurrency: as every call on a handle: one thread at a time; wait-free.
 */
SHML_API int shml_channel_count(shml_channel *ch, uint32_t counter, uint64_t n);

/*
 * The position of the message this endpoint holds (shml_peek()) or received last (shml_recv(),
 * shml_peek()): queue and bus, counted from 0 at the channel's creation, each message its own.
 * With the channel's creation time (created_ns of shml_segment_stat()) it names the
 * message for good: a durable endpoint's successor gets a message again under its position.
 * Returns 0 with *pos set, -EINVAL (no handle, or not a queue or bus), or -ENOENT (nothing
 * received yet). Concurrency: as every call on a handle.
 */
SHML_API int shml_channel_position(const shml_channel *ch, uint64_t *pos);

/*
 * Marks of a durable queue producer or bus publisher (opts.durable on SHML_PRODUCER): a number
 * of the caller's
 * that goes with each message, so that its successor knows how far it got. A bridge marks each
 * message with its sequence in the system it came from; after a kill, the successor does not
 * send again the message its predecessor had already put into the channel.
 *
 * shml_channel_set_mark(): the messages this handle publishes from now on (shml_send(),
 * shml_commit(), each message of shml_send_batch()) carry `mark`, until the next call; before
 * any call they carry 0 (a successor's: its predecessor's mark when that is known). A message's
 * mark becomes the endpoint's in the same step as the message is published, for a successor
 * too. All the messages of one batch carry the same mark, so a batch killed half-way leaves it
 * as the mark: set one that its first message may carry (a mark of a message before it).
 * Returns 0, or -EINVAL (no handle, or not a durable queue producer or bus publisher).
 *
 * shml_channel_mark(): the mark of the last message this endpoint published, or the dead one
 * whose place it took. Returns 0 with *mark set; -ENOENT when that is not known: nothing
 * published yet (an endpoint new, or opened after its predecessor closed or was reclaimed), or
 * the dead one was killed publishing a message and the channel no longer shows whether that
 * message arrived (its slot freed since, by a consumer that read it or by a reclaimer, or
 * reused; or the successor before this one was killed before publishing anything): the caller
 * then sends what it is unsure of again, and a message may arrive twice, never not at all.
 * (Positions are compared in their low 32 bits: a dead one's slot found again only after 2^32
 * more messages may be taken for its own.) -EINVAL: no handle or *mark, or not a durable queue
 * producer or bus publisher. Concurrency: as every call on a handle.
 */
SHML_API int shml_channel_set_mark(shml_channel *ch, uint64_t mark);
SHML_API int shml_channel_mark(const shml_channel *ch, uint64_t *mark);

/* Fill `st` from the channel behind `ch` (reads every slot's state: not for a hot loop).
   Returns 0 or -EINVAL. */
SHML_API int shml_channel_get_stats(const shml_channel *ch, struct shml_channel_stats *st);

/*
 * Read a channel's stats and endpoint table by address, without opening an endpoint (the
 * segment is mapped read-only, not attached). eps may be NULL (cap 0); *n (if not NULL)
 * receives the number of entries in use, which may exceed cap. Errors as
 * shml_channel_open() but -EUSERS, and -EACCES where the segment cannot be read.
 */
SHML_API int shml_channel_inspect(const char *addr, struct shml_channel_stats *st,
                                  struct shml_endpoint_stats *eps, size_t cap, size_t *n);

/* What shml_channel_check() reports through its callback. */
#define SHML_CHECK_REPAIR 0x1u /* flags: repair what can be repaired */
/* The callback's `repaired`: 1 repaired (with SHML_CHECK_REPAIR); SHML_CHECK_REPAIRABLE (2)
   not repaired, but a check with SHML_CHECK_REPAIR repairs it (without the flag); 0 left: a
   repair does not change it (or, with the flag, did not this time). */
#define SHML_CHECK_REPAIRABLE 2
typedef void (*shml_check_fn)(void *ctx, int repaired, const char *finding);

/*
 * Validate the channel at `addr`: its control block, every slot's state against the indices,
 * holders and endpoints of dead processes, pins, mailboxes. Each finding is passed to `fn`
 * (may be NULL) as one line of text, with repaired = 1 if it was repaired, and without
 * SHML_CHECK_REPAIR, SHML_CHECK_REPAIRABLE for what a repair would act on. With
 * SHML_CHECK_REPAIR (which needs write access), dead holders' slots are freed and the
 * messages counted lost (a bus: made holes), dead endpoints are detached and their counters
 * folded into the totals (undoing their pins and requests), and a latest buffer's reader
 * count no endpoint records is recounted. Inconsistent indices or slot states, and messages
 * longer than max_msg, are reported, never "repaired" by guesswork. Repair is safe while
 * other endpoints run: it changes only what belongs to dead processes, by the same
 * compare-and-swaps they use. Returns the number of findings left unrepaired (0: healthy), or
 * a negative error as shml_channel_inspect().
 */
SHML_API int shml_channel_check(const char *addr, unsigned flags, shml_check_fn fn, void *ctx);

/* The segment behind the channel (for its address, fd, stat ...). Owned by the channel. */
SHML_API shml_segment *shml_channel_segment(const shml_channel *ch);

/* ---- event loops: a descriptor per endpoint, and wait sets ---- */

/*
 * A descriptor (a file descriptor on Linux) that is readable while this endpoint may be able
 * to make progress, for epoll, poll, select, libuv, asyncio or a shml_waitset: a consumer,
 * subscriber, reader or rpc server when a message (a request) waits; an rpc client when its
 * reply waits; a producer or publisher when there is room (with policies that can make it
 * wait). It works between unrelated processes and for every kind.
 *
 * The protocol: when the descriptor is readable, make the handle's calls with timeout 0
 * (shml_recv, shml_peek, shml_recv_batch for what comes in; shml_send, shml_claim,
 * shml_send_batch for room) until one returns -ETIMEDOUT; that call arms the descriptor
 * again, and it becomes readable as soon as a peer makes that call's progress possible.
 * The descriptor stays readable until such a call returns -ETIMEDOUT (stopping early is
 * fine: the loop wakes again), and a readable descriptor may find nothing (it is a hint;
 * -ETIMEDOUT re-arms). Never read, write or close it: it is the handle's. It starts readable.
 * Only the -ETIMEDOUT of a call arms: a handle with both roles that waits for room only
 * after a send failed, and for messages only after a receive did.
 *
 * What it costs: nothing to a peer while no endpoint is armed (one load it makes anyway), one
 * signal (a write(2); on Windows a SetEvent) per arming otherwise. A handle armed while a live
 * peer holds what it needs (a slot claimed or being read: channel.h, "Head of line") is not
 * signalled if that peer dies: shml_channel_fd_timeout() says when to call again anyway.
 *
 * Linux: the descriptor is a FIFO at /dev/shm/.shml-fd-PID-ID (ID: random, recorded in the
 * endpoint's entry), with the segment's permission bits; shml_channel_close() removes it, and
 * after a kill -9 the next endpoint that reclaims the entry, shml_channel_check() with
 * SHML_CHECK_REPAIR, or shml_gc() does.
 *
 * Windows: the descriptor is the HANDLE of a manual-reset event, Local\shmln-PID-ID, as an int
 * (handles fit in 32 bits): get it back with (HANDLE)(intptr_t)fd and wait on it
 * (WaitForSingleObject, WaitForMultipleObjects, RegisterWaitForSingleObject); "readable" is
 * "signalled". Never set, reset or close it. Its DACL comes from the segment's permission
 * bits, as the segment's does; it goes with its last handle, so a killed owner leaves nothing.
 * Peers signal it by name in their own session's namespace: a channel shared across sessions
 * (win:Global\...) does not wake a descriptor of another session.
 *
 * Returns the descriptor (the same one at every call), or -EINVAL (NULL), -ECHILD (a handle
 * inherited through fork()), -errno from making the FIFO or the event (-EACCES, -ENOSPC,
 * -EMFILE ...).
 * Concurrency: as any call on the handle (one thread at a time).
 */
SHML_API int shml_channel_fd(shml_channel *ch);

/*
 * Nanoseconds after which the handle's calls should be made again even if its descriptor is
 * not readable: when the last arming found a live peer in the way, whose death only a call
 * notices (0: now). -1 when there is no such need (or no descriptor). A loop waits at most
 * that long (a shml_waitset does so by itself).
 */
SHML_API int64_t shml_channel_fd_timeout(const shml_channel *ch);

/*
 * A wait set: waits for any of many channels and plain descriptors at once (Linux: epoll;
 * Windows: any number of handles, through a waiter thread per 63 of them), from one thread.
 * Each member carries a user pointer, given back when it is ready. A channel is ready as its
 * descriptor is (shml_channel_fd(): the same protocol: call with timeout 0 until -ETIMEDOUT),
 * or when shml_channel_fd_timeout() runs out. A channel belongs to one wait set at a time;
 * shml_channel_close() takes it out of its set. Level-triggered: a member still ready is
 * reported again by the next wait.
 *
 * Concurrency: a wait set is used by one thread at a time, as are its channels' handles.
 */
typedef struct shml_waitset shml_waitset;

/* Events of a plain descriptor (shml_waitset_add_fd()), and what a ready member reports. */
#define SHML_READABLE 0x1u
#define SHML_WRITABLE 0x2u

/* One ready member (shml_waitset_wait()). */
struct shml_waitset_event {
    void *user;         /* the pointer given when it was added */
    shml_channel *ch;   /* the channel, or NULL for a plain descriptor */
    int fd;             /* the plain descriptor, or the channel's */
    uint32_t events;    /* SHML_READABLE, SHML_WRITABLE (a channel: SHML_READABLE) */
};

/* Make an empty wait set: 0 with *out set (the caller's, freed with shml_waitset_destroy()),
   -EINVAL, -ENOMEM, -EMFILE. */
SHML_API int shml_waitset_create(shml_waitset **out);

/*
 * Add a channel (its descriptor is made if it has none: errors as shml_channel_fd()). Returns
 * 0, -EINVAL (NULL), -EEXIST (already in this set), -EBUSY (in another set), -ENOMEM.
 */
SHML_API int shml_waitset_add(shml_waitset *ws, shml_channel *ch, void *user);

/*
 * Add a plain descriptor for `events` (SHML_READABLE and/or SHML_WRITABLE; an error or hang-up
 * on it reports both). The descriptor stays the caller's: remove it before closing it. 0,
 * -EINVAL (bad fd or events), -EEXIST, -ENOMEM, -EBADF.
 *
 * Windows: `fd` is a waitable HANDLE as an int ((int)(intptr_t)h), with SYNCHRONIZE access,
 * for SHML_READABLE only ("signalled"; SHML_WRITABLE is -EINVAL, as is a handle that cannot be
 * waited on; one that is no handle is -EBADF). The set waits on it as any wait does: a
 * manual-reset event, a process or a thread is reported while signalled; an auto-reset event
 * or a semaphore is taken by the set, one report per signal or unit; never add a mutex.
 */
SHML_API int shml_waitset_add_fd(shml_waitset *ws, int fd, uint32_t events, void *user);

/* Take a channel, or a plain descriptor, out of the set. 0, -EINVAL, -ENOENT (not a member). */
SHML_API int shml_waitset_remove(shml_waitset *ws, shml_channel *ch);
SHML_API int shml_waitset_remove_fd(shml_waitset *ws, int fd);

/*
 * Wait up to timeout_ns (SHML_FOREVER, 0: just look) for members to be ready, and fill up to
 * cap of them into ready[]. Returns how many (>= 1), -ETIMEDOUT, -EINTR (a signal handler ran
 * during the wait; never on Windows), -ECANCELED (the thread's cancellation token fired,
 * before or during the wait: sync.h), -EINVAL.
 *
 * Windows: the set learns that a member was signalled from one of its waiter threads, a
 * moment after: a wait with timeout 0 made just after a member was signalled may report it
 * only at the next wait. Members reported by a wait are looked at again directly by the next
 * one.
 */
SHML_API int shml_waitset_wait(shml_waitset *ws, struct shml_waitset_event *ready, size_t cap,
                               int64_t timeout_ns);

/* Free the set (NULL is fine); its channels stay open, out of any set. Returns 0. */
SHML_API int shml_waitset_destroy(shml_waitset *ws);

#ifdef __cplusplus
}
#endif

#endif /* SHMLINK_CHANNEL_H */
