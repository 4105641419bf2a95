/*
 * _shmlink.h - the CPython extension over the shmlink C API: what its files share.
 *
 * Types: Segment (a mapped segment that exports its bytes through the buffer protocol),
 * Mutex, Event, Semaphore (placed at an offset of a Segment), Channel (one endpoint of a
 * queue, bus, latest or rpc channel) and Message (a zero-copy claim or peek of a channel,
 * used as a context manager). The pure-Python package `shmlink` builds its classes on these.
 *
 * Memory safety: every pointer into shared memory handed to Python goes through a buffer
 * export that is counted. A Segment refuses to close while exports are alive (BufferError),
 * sync objects and Messages hold an export of their segment or a reference to their channel,
 * a channel refuses to close while a Message is open, and a channel closed while views of
 * finished messages (a slice, a numpy array kept after its `with` block) are alive keeps its
 * endpoint and mapping until the last of them is released. So no Python object can ever see
 * an unmapped address. (A mapping whose object another process truncated can still fault:
 * Segment.read/write copy through the fd instead; see python/README.md.)
 *
 * Blocking: every wait first tries without waiting while holding the GIL (the fast path),
 * then waits in one library call for the rest of its timeout with the GIL released. In the
 * main thread a cancellation token ends that call when a signal comes, so that the Python
 * handlers run (Ctrl-C raises KeyboardInterrupt at once) and the wait goes on if none raised.
 * See wait.c. asyncio waits on the channel's descriptor in the loop itself (arecv/asend:
 * _channel.py), with no thread.
 *
 * Threads: a C handle is used by one thread at a time. A Channel is marked busy while one of
 * its calls runs with the GIL released; a second thread calling it meanwhile gets
 * RuntimeError rather than undefined behaviour.
 *
 * The extension never imports numpy: typed messages are exported with their PEP 3118 format
 * and shape, which numpy (in the Python layer) reads.
 *
 * Files (python/src/): module.c (the exception classes and raising them, choice arguments,
 * the functions of the module that belong to no type, PyInit), wait.c (timeouts and the wait
 * loop), segment.c (Segment), sync.c (Mutex, Event, Semaphore), channel.c (Channel),
 * message.c (Message), typed.c (the type-format whitelist and TypeProbe), inspect.c
 * (ls/info/gc facts as dicts). Functions and objects one file shares with another are
 * declared here, named shmlpy_*, each with its contract; everything else is static to its
 * file.
 */
#ifndef SHMLPY_SHMLINK_H
#define SHMLPY_SHMLINK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <shmlink.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- module state: the exception classes (module.c; created by PyInit__shmlink) ---- */

extern PyObject *shmlpy_Error;          /* shmlink.Error(OSError) */
extern PyObject *shmlpy_OwnerDied;      /* a mutex's holder died; the lock is held */
extern PyObject *shmlpy_NotRecoverable; /* a mutex nobody made consistent */
extern PyObject *shmlpy_Corrupt;        /* header or channel corrupt */
extern PyObject *shmlpy_NotShmlink;     /* not a shmlink segment (open it raw) */
extern PyObject *shmlpy_WrongKind;      /* a segment of another kind */
extern PyObject *shmlpy_VersionError;   /* layout version unknown */
extern PyObject *shmlpy_Truncated;      /* another process shrank the object under the mapping */

/*
 * Raise the exception for `err` (negative errno) from operation `what` on `addr` (may be
 * NULL). The message names the address and carries shml_last_error(), which must be read
 * right after the failing call, in the same thread: callers do not call the library between.
 * ValueError has no errno: it gets the message only. Always returns NULL. GIL held.
 */
PyObject *shmlpy_raise_err(int err, const char *what, const char *addr);

/*
 * Map a string argument `o` to one of `values` by its name in `names` (n of each); None (or
 * NULL) leaves *out. 0, or -1 with ValueError ("unknown <what> ...") or TypeError set.
 */
int shmlpy_parse_choice(PyObject *o, const char *what, const char *const *names,
                        const uint32_t *values, size_t n, uint32_t *out);

/* ---- timeouts and waits (wait.c) ---- */

/* Returned by shmlpy_wait_loop() when a Python exception (from a signal handler) is set. */
#define WAIT_PYERR ((ssize_t)INT_MIN)

/* Convert a Python timeout (None: forever; seconds >= 0) to nanoseconds. 0 or -1 (error). */
int shmlpy_parse_timeout(PyObject *o, int64_t *ns);

/* One attempt of a blocking operation, waiting at most timeout_ns. */
typedef ssize_t (*wait_op)(void *ctx, int64_t timeout_ns);

/*
 * Make the main thread's cancellation token and learn which thread is the main one (wait.c).
 * Called once by PyInit__shmlink. 0, or -1 with an exception set.
 */
int shmlpy_wait_init(void);

/*
 * Run `op` once without waiting with the GIL held, then, if it returned -ETIMEDOUT or
 * -EINTR, for the rest of timeout_ns with the GIL released: in the main thread bound to the
 * token that a signal fires, after which the signal handlers run and `op` is called again
 * with what is left of the timeout. Returns what op returned, -ETIMEDOUT, or WAIT_PYERR with
 * the exception a signal handler raised. Called with the GIL held.
 */
ssize_t shmlpy_wait_loop(wait_op op, void *ctx, int64_t timeout_ns);

/* An open that waits (SHML_WAIT) for its object, through shmlpy_wait_loop(). */
struct open_ctx {
    const char *addr;
    void *opts; /* struct shml_segment_opts or struct shml_channel_opts */
    unsigned role;
    void *out;  /* shml_segment ** or shml_channel ** */
};

/* ---- Segment (segment.c) ---- */

typedef struct {
    PyObject_HEAD
    shml_segment *seg; /* NULL once closed */
    char *addr;        /* canonical address (kept after close, for messages and unlink) */
    bool readonly, raw, created;
    Py_ssize_t exports; /* live buffer exports of the bytes */
} SegmentObject;

extern PyTypeObject shmlpy_Segment_Type;

/* ---- Mutex, Event, Semaphore (sync.c) ---- */

extern PyTypeObject shmlpy_Mutex_Type;
extern PyTypeObject shmlpy_Event_Type;
extern PyTypeObject shmlpy_Sem_Type;

/* ---- typed channels and TypeProbe (typed.c) ---- */

/*
 * 0 if type `t` is plain data whose size fits its itemsize (the whitelist in typed.c); else
 * raise shmlink.Corrupt naming the channel `addr`, the format and the offending code (or,
 * with addr NULL, a ValueError: a format that comes from the caller, not from a channel), and
 * return -1. GIL held.
 */
int shmlpy_check_type(const struct shml_channel_type *t, const char *addr);

extern PyTypeObject shmlpy_Probe_Type;

/* type_probe(format, itemsize, shape=()) -> object exporting one zeroed element array */
PyObject *shmlpy_mod_type_probe(PyObject *mod, PyObject *args);

/* ---- Channel (channel.c) and Message (message.c) ---- */

typedef struct MessageObject MessageObject;

typedef struct {
    PyObject_HEAD
    shml_channel *ch; /* NULL once closed */
    char *addr;
    uint32_t kind;
    size_t max_msg;
    bool busy;            /* a call runs with the GIL released */
    MessageObject *open;  /* the open claim or peek (borrowed; it holds a reference to us) */
    char *scratch;        /* receive buffer of max_msg bytes, allocated on first recv */
    struct shml_channel_type type; /* read at open: a later change in shared memory is unseen */
    bool type_plain;      /* `type` passed shmlpy_check_type() once (it never changes after
                             open) */
    Py_ssize_t orphans;   /* exports of finished messages still alive (arrays kept after their
                             `with` block): the mapping must outlive them */
    bool close_pending;   /* close() came while orphans lived: the endpoint closes when the
                             last of them is released (Message_releasebuffer) */
} ChannelObject;

/* A zero-copy message: a claim (writable) or a peek (read-only), exported as a buffer. */
struct MessageObject {
    PyObject_HEAD
    ChannelObject *chan;
    bool claim;      /* claim (send side) or peek (receive side) */
    bool typed;      /* export with the channel's format and shape */
    bool aborted;    /* a claim whose block raised: discard it, never publish it */
    int state;       /* MSG_NEW, MSG_OPEN, MSG_DONE */
    int64_t timeout; /* for __enter__ */
    void *ptr;
    size_t len;        /* claimed or peeked length */
    size_t commit_len; /* claim: what commit at exit publishes */
    Py_ssize_t exports;
    bool orphaned;     /* finished while exports were alive: they count in chan->orphans */
    PyObject *view;    /* the memoryview __enter__ returned */
    Py_ssize_t shape[SHML_TYPE_NDIM_MAX + 1];
};

#define MSG_NEW      0
#define MSG_OPEN     1
#define MSG_DONE     3

extern PyTypeObject shmlpy_Channel_Type;
extern PyTypeObject shmlpy_Message_Type;
extern PyTypeObject shmlpy_WaitSet_Type; /* waitset.c */

/* shmlpy_check_type() of the channel's type, once per handle: 0, or -1 with Corrupt raised. */
int shmlpy_channel_type_plain(ChannelObject *self);

/* Check that the channel can run a call now: open, not busy in another thread, no open
   zero-copy message. 0, or -1 with ValueError, RuntimeError or BufferError set. */
int shmlpy_channel_ready(ChannelObject *self);

/* A new Message of channel `ch` (a new reference to it is taken), every field set
   (PyObject_New leaves them undefined), in state MSG_NEW. NULL with MemoryError set. */
MessageObject *shmlpy_message_new(ChannelObject *ch, bool claim, bool typed, int64_t timeout,
                                  size_t len);

/* ---- inspection (inspect.c) ---- */

/* A channel's stats as a dict of the C fields, its type as type_dict() makes it (None for
   untyped bytes). A new reference, or NULL with an exception set. */
PyObject *shmlpy_stats_dict(const struct shml_channel_stats *st);

/* _list(all=False) -> list of raw info dicts */
PyObject *shmlpy_mod_list(PyObject *mod, PyObject *args);
/* _gc(dry_run) -> list of raw info dicts of what was (or would be) removed */
PyObject *shmlpy_mod_gc(PyObject *mod, PyObject *args);
/* _stat(addr) -> (info dict, [attach dicts], [declared dicts], channel dict or None) */
PyObject *shmlpy_mod_stat(PyObject *mod, PyObject *args);

#endif /* SHMLPY_SHMLINK_H */
