/*
 * shmlink/sync.h - process-shared synchronisation that survives crashes: mutex, event,
 * semaphore.
 *
 * Each primitive is a plain struct of fixed size and alignment, meant to be placed inside a
 * shared layout (a segment's data, a struct the application shares). Initialise it once, in
 * place, before any other process uses it (typically by the segment's creator, before it
 * publishes the segment's existence to others); after that any process that maps the bytes
 * may use it. The bytes are documented in docs/FORMAT.md. They hold no pointer, so the
 * segment may be mapped at different addresses in different processes.
 *
 * Timeouts are int64_t nanoseconds, measured on the monotonic clock: SHML_FOREVER waits
 * without bound, 0 only tries. A wait interrupted by a signal is resumed internally, with the
 * remaining time, unless SHML_WAIT_EINTR is given to the _flags variants, which then return
 * -EINTR, or the calling thread's cancellation token was made with SHML_CANCEL_SIGNALS, which
 * fires it (-ECANCELED; see "cancelling waits").
 *
 * Any wait of the library (these, the channel calls, the opens that wait) can be cancelled
 * from another thread or from a signal handler through a token bound to the waiting thread:
 * see "cancelling waits" below.
 *
 * A process that dies never blocks the living: a mutex held by a dead process is handed to
 * the next locker with -EOWNERDEAD; a waiter that dies in an event or semaphore wait leaves
 * nothing that blocks others, and costs one or two superfluous wake-up system calls, once.
 */
#ifndef SHMLINK_SYNC_H
#define SHMLINK_SYNC_H

#include "shmlink/common.h"
#include "shmlink/segment.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags for the _flags waits. */
#define SHML_WAIT_EINTR 0x1u /* return -EINTR when a signal interrupts the wait */

/* ---- mutex ---- */

/*
 * A robust, process-shared mutex: 64 bytes, 8-byte aligned.
 *
 * Mechanism: on Linux a POSIX process-shared robust mutex (pthread_mutex_t with
 * PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST) in the first bytes. The kernel's robust
 * futex list releases it the instant its holder dies, whatever the way (kill -9 included), and
 * marks it so the next locker learns of the death: no polling, no timeout to guess. The
 * uncontended path is one atomic instruction each way, no system call. The rest of the 64
 * bytes hold an initialisation mark, so using a mutex that was never initialised is -EINVAL
 * rather than undefined behaviour, and room for other platforms' mechanisms.
 *
 * Recursive locking is not supported: a second lock by the holding thread is -EDEADLK.
 * Unlocking a mutex the caller does not hold is -EPERM.
 *
 * Whatever way a holder goes (returns from main or calls exit, dies of a signal, kill -9,
 * exec, a thread that exits), the next locker gets the lock with -EOWNERDEAD. The kernel hands
 * it over at once while the mutex is still mapped in the holder; a holder that closed (or
 * unmapped) the segment before it went is found gone by a waiter, which checks the holding
 * thread after each wait slice (10 ms, doubling to 200 ms): so within about 200 ms. Closing a
 * segment does not release the locks the caller holds in it: they stay held (and the caller
 * can no longer unlock them) until the holding thread exits; so unlock before closing. A holder
 * in another pid namespace (a container sharing the segment) is never judged from outside it.
 */
typedef struct shml_mutex {
    SHML_ALIGNAS(8) unsigned char opaque[64];
} shml_mutex;

/*
 * Initialise a mutex in place, unlocked. Must not be called while any process uses it.
 * Returns 0 or -EINVAL (NULL or misaligned), -ENOMEM, -EAGAIN (system resources).
 */
SHML_API int shml_mutex_init(shml_mutex *m);

/*
 * Lock `m`, waiting at most timeout_ns (0: try once; SHML_FOREVER: without bound).
 *
 * Returns 0: locked. -EOWNERDEAD: locked, but the previous holder died holding it, so the
 * data it protects may be half-updated: repair it, then call shml_mutex_consistent() before
 * shml_mutex_unlock(); unlocking without doing so makes the mutex unusable for good.
 * -ENOTRECOVERABLE: a holder died and nobody made it consistent: every lock fails from now on
 * (re-initialise it when no process uses it). -ETIMEDOUT (-EBUSY is never returned: a failed
 * try is -ETIMEDOUT too). -EDEADLK: the calling thread holds it. -EINVAL: not initialised.
 * -ECANCELED: the thread's cancellation token fired (seen within 20 ms: see "cancelling
 * waits"). Thread- and process-safe; blocking; never interrupted by signals. A lock that
 * waits (or a try that finds the lock busy) checks the holder's thread in /proc, at most once
 * per wait slice (see above); an uncontended lock makes no system call.
 */
SHML_API int shml_mutex_lock(shml_mutex *m, int64_t timeout_ns);

/*
 * Declare the data protected by `m` repaired after -EOWNERDEAD. The caller must hold the lock
 * (obtained with -EOWNERDEAD). Returns 0, or -EINVAL if the mutex is not in that state.
 */
SHML_API int shml_mutex_consistent(shml_mutex *m);

/* Unlock `m`, which the calling thread holds. Returns 0, -EPERM (not the holder), -EINVAL. */
SHML_API int shml_mutex_unlock(shml_mutex *m);

/* What shml_mutex_inspect() reports: a snapshot, for tools. */
struct shml_mutex_state {
    int state;       /* SHML_MUTEX_FREE, _HELD, _OWNER_DEAD, _NOT_RECOVERABLE */
    int32_t owner;   /* holding thread id (equal to its pid for single-threaded programs) */
    int32_t pid;     /* process of that thread; for OWNER_DEAD and NOT_RECOVERABLE the
                        process that died holding it (recorded at lock), 0 if unknown */
    int alive;       /* 1 the holder is alive, 0 dead, -1 unknown */
    bool waiters;    /* some thread sleeps on it */
    uint64_t reserved[2]; /* room for fields to come; zero today */
};
#define SHML_MUTEX_FREE            0
#define SHML_MUTEX_HELD            1
#define SHML_MUTEX_OWNER_DEAD      2 /* released by the kernel; next locker gets -EOWNERDEAD */
#define SHML_MUTEX_NOT_RECOVERABLE 3
#define SHML_MUTEX_REPAIRING       4 /* held by a locker that got -EOWNERDEAD and has not yet
                                        called shml_mutex_consistent() */

/*
 * Describe `m` without locking it (racy by nature: a snapshot). Reads only; `m` may be in a
 * read-only mapping. Returns 0 or -EINVAL (not initialised).
 */
SHML_API int shml_mutex_inspect(const shml_mutex *m, struct shml_mutex_state *st);

/* ---- event ---- */

/*
 * An event: a 32-bit generation counter that waiters wait to see change. 32 bytes, 32-byte
 * aligned (so it never straddles two cache lines). notify increments the generation and wakes waiters; a waiter passes the generation
 * it has seen and returns as soon as the current one differs, so a notify between reading the
 * generation and waiting is never lost. notify makes no system call when nobody sleeps.
 */
typedef struct shml_event {
    SHML_ALIGNAS(32) unsigned char opaque[32];
} shml_event;

#define SHML_WAKE_ONE 1
#define SHML_WAKE_ALL 2

/*
 * Initialise in place: generation 0, no spinning before sleeping. Returns 0, or -EINVAL (NULL
 * or not 8-byte aligned).
 */
SHML_API int shml_event_init(shml_event *e);

/*
 * How many times a waiter polls the generation before it sleeps (0 to 1000000). Spinning
 * saves the sleep and wake-up system calls when notifies come quickly, at the cost of a busy
 * core; stored in the event, so it applies to every process. Returns 0 or -EINVAL.
 */
SHML_API int shml_event_set_spin(shml_event *e, uint32_t spins);

/* The current generation (acquire: what the notifier wrote before notifying is visible). */
SHML_API uint32_t shml_event_read(const shml_event *e);

/*
 * Wait until the generation differs from `seen`, at most timeout_ns. Returns 0 (changed;
 * read it with shml_event_read()), -ETIMEDOUT, -ECANCELED (the thread's cancellation token
 * fired), -EINVAL; with SHML_WAIT_EINTR in the _flags variant, also -EINTR. Spurious
 * wake-ups are absorbed: 0 means the generation changed. Any number of waiters in any number
 * of processes.
 */
SHML_API int shml_event_wait(shml_event *e, uint32_t seen, int64_t timeout_ns);
SHML_API int shml_event_wait_flags(shml_event *e, uint32_t seen, int64_t timeout_ns,
                                   unsigned flags);

/*
 * Increment the generation (release: pairs with the acquire in shml_event_read()/_wait()) and
 * wake one waiter (SHML_WAKE_ONE) or all (SHML_WAKE_ALL). Returns the number of waiters woken
 * (0 without a system call when none sleeps), or -EINVAL. Wait-free when nobody sleeps.
 */
SHML_API int shml_event_notify(shml_event *e, int how);

/* ---- semaphore ---- */

/*
 * A counting semaphore: 32 bytes, 32-byte aligned (so it never straddles two cache lines).
 * The count is at most SHML_SEM_MAX.
 */
typedef struct shml_sem {
    SHML_ALIGNAS(32) unsigned char opaque[32];
} shml_sem;

#define SHML_SEM_MAX 0x7fffffffu

/* Initialise in place with `value` (<= SHML_SEM_MAX). Returns 0 or -EINVAL (also: NULL, or
   not 8-byte aligned). */
SHML_API int shml_sem_init(shml_sem *s, uint32_t value);

/*
 * Decrement the count, waiting at most timeout_ns for it to be positive (0: try once).
 * Returns 0, -ETIMEDOUT, -ECANCELED (the thread's cancellation token fired), -EINVAL; with
 * SHML_WAIT_EINTR in the _flags variant, also -EINTR.
 */
SHML_API int shml_sem_wait(shml_sem *s, int64_t timeout_ns);
SHML_API int shml_sem_wait_flags(shml_sem *s, int64_t timeout_ns, unsigned flags);
/* Same as shml_sem_wait(s, 0): 0 or -ETIMEDOUT when the count is 0. */
SHML_API int shml_sem_trywait(shml_sem *s);

/*
 * Increment the count and wake one waiter if any sleeps (no system call otherwise).
 * Returns 0, -EOVERFLOW (count at SHML_SEM_MAX; unchanged), -EINVAL.
 */
SHML_API int shml_sem_post(shml_sem *s);

/* The current count (a snapshot). */
SHML_API uint32_t shml_sem_value(const shml_sem *s);

/* ---- cancelling waits ---- */

/*
 * A cancellation token: a flag private to the process that, once fired, ends the waits of the
 * threads it is bound to. Fire it from any thread or from a signal handler; the waits return
 * -ECANCELED at once, woken by the kernel, without slices or polling. It is how a program
 * stops a thread blocked in shmlink on Ctrl-C, at shutdown, or when a request is abandoned.
 *
 * A token is bound to a thread (shml_cancel_bind()); every wait that thread then makes in
 * the library honours it: shml_mutex_lock, shml_event_wait(_flags), shml_sem_wait(_flags),
 * the channel calls that wait (shml_send, shml_recv, shml_claim, shml_peek, the batches, an
 * rpc client's wait for a server), shml_segment_open/shml_channel_open with SHML_WAIT, and
 * shml_waitset_wait.
 * Once the token is fired, each such call behaves as if its timeout had just run out, except
 * that it returns -ECANCELED instead of -ETIMEDOUT: what can be done without waiting is still
 * done (a message already there is received), nothing is taken or lost otherwise, and the call
 * may be made again after shml_cancel_reset(). A token stays fired until reset.
 *
 * How soon: a sleeping wait returns as soon as the kernel wakes it, microseconds after the
 * fire. Two waits cannot be woken by the kernel and look at the token every 20 ms instead: a
 * mutex lock (the platform lock sleeps inside the C library) and, on a kernel older than
 * Linux 5.16 (no futex_waitv), every wait.
 *
 * One token may be bound to any number of threads, and fired any number of times.
 */
typedef struct shml_cancel shml_cancel;

/* Flags for shml_cancel_create(). */
#define SHML_CANCEL_SIGNALS 0x1u /* a signal handler that interrupts a bound wait's sleep
                                    fires the token (the wait returns -ECANCELED): the thread
                                    can then act on what the handler recorded. A handler
                                    installed with SA_RESTART does not interrupt the sleep,
                                    nor does any handler interrupt a mutex lock's; and a
                                    signal that lands just before the sleep interrupts
                                    nothing: a handler that must end the wait fires the
                                    token itself */

/*
 * Create a token, not fired, with `flags` (0 or SHML_CANCEL_SIGNALS). Returns 0 with *out
 * owned by the caller (shml_cancel_destroy()), -EINVAL (NULL out, unknown flag), -ENOMEM.
 */
SHML_API int shml_cancel_create(shml_cancel **out, unsigned flags);

/*
 * Destroy a token. No thread may have it bound, and no fire may be under way (a signal
 * handler that fires it must be gone first). NULL is fine.
 */
SHML_API void shml_cancel_destroy(shml_cancel *c);

/*
 * Bind `c` to the calling thread (NULL: unbind), replacing what was bound. Returns the token
 * bound before (NULL if none), so that a library can bind its own around a call and put the
 * caller's back. The binding ends with the thread; it is not inherited by new threads, and a
 * fork()ed child's thread keeps it.
 */
SHML_API shml_cancel *shml_cancel_bind(shml_cancel *c);

/* The token bound to the calling thread, or NULL. */
SHML_API shml_cancel *shml_cancel_bound(void);

/*
 * Fire `c`: every wait bound to it returns -ECANCELED (see above), now and until a reset.
 * Async-signal-safe; callable from any thread. Returns 0, or -EINVAL for NULL.
 */
SHML_API int shml_cancel_fire(shml_cancel *c);

/*
 * Make `c` not fired again. Meant for the thread that waits, between two waits: a fire that
 * lands between a wait's return and the reset is forgotten (check what the fire stood for
 * after resetting, as a program checks a flag its signal handler sets). Returns 0 or -EINVAL.
 */
SHML_API int shml_cancel_reset(shml_cancel *c);

/* Is `c` fired? (false for NULL) Async-signal-safe. */
SHML_API bool shml_cancel_fired(const shml_cancel *c);

/* ---- the objects a segment declares (shml_segment_declare()) ---- */

/* One declared object and its state, as read by shml_segment_declared(). */
struct shml_decl_info {
    char name[SHML_DECL_NAME_MAX];
    uint32_t type;                 /* SHML_DECL_MUTEX, _EVENT, _SEM */
    uint64_t offset;               /* bytes from the start of the data */
    int status;                    /* 0, or why its state is unknown: -EINVAL (not
                                      initialised), -ERANGE (past the end) */
    struct shml_mutex_state mutex; /* SHML_DECL_MUTEX */
    uint32_t generation;           /* SHML_DECL_EVENT */
    uint32_t value;                /* SHML_DECL_SEM: the count */
    uint32_t waiters;              /* event, semaphore: threads counted asleep in a wait */
    uint64_t reserved[4];          /* room for fields to come; zero today */
};

/*
 * Read the declared objects of the managed segment at `addr` and the state of each, without
 * attaching or locking anything (a snapshot). Up to `cap` entries go to `out`; *n receives how
 * many the segment declares. Errors as shml_segment_stat(): -EINVAL, -ENOENT, -EACCES,
 * -SHML_ENOTSHML (raw objects declare nothing), -SHML_ECORRUPT, ...
 */
SHML_API int shml_segment_declared(const char *addr, struct shml_decl_info *out, size_t cap,
                                   size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* SHMLINK_SYNC_H */
